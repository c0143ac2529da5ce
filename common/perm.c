/*
 * perm.c - refusing files that another user could change (see perm.h).
 *
 * The walk goes from the resolved file up to /, checking each component
 * with lstat: after realpath() none of them is a link, and lstat makes
 * sure that stays what is checked.  Messages name the user as well as
 * the numeric id because the chown in the hint needs one of them.
 */
#include "common/perm.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/str.h"

/* The name of user uid (new string), or its number when it has none. */
static char *
s_user_name(uid_t uid, int *named)
{
    struct passwd pw;
    struct passwd *found = NULL;
    char buf[1024];

    *named = getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 &&
             found != NULL;
    return *named ? fl_strdup(found->pw_name)
                  : fl_asprintf("%lu", (unsigned long)uid);
}

/* "user \"alice\" (uid 1000)", or "uid 1000" for an id with no name. */
static char *
s_user(uid_t uid)
{
    int named = 0;
    char *name = s_user_name(uid, &named);
    char *out = named ? fl_asprintf("user \"%s\" (uid %lu)", name,
                                    (unsigned long)uid)
                      : fl_asprintf("uid %s", name);

    free(name);
    return out;
}

static const char *
s_writers(mode_t mode)
{
    if ((mode & S_IWGRP) && (mode & S_IWOTH))
        return "group and others";
    return (mode & S_IWGRP) ? "group" : "others";
}

/*
 * Refuses st, of comp (real itself when leaf, else a directory above it),
 * unless root or uid owns it.
 */
static int
s_check_owner(const struct stat *st, const char *comp, const char *real,
              int leaf, const char *what, uid_t uid, fl_error_t *err)
{
    char *owner = NULL;
    char *me = NULL;
    char *quoted = NULL;
    char *chown_to = NULL;
    int named = 0;

    if (st->st_uid == 0 || st->st_uid == uid)
        return 0;
    owner = s_user(st->st_uid);
    me = s_user(uid);
    quoted = fl_str_shell_quote(comp);
    chown_to = s_user_name(uid, &named);
    if (leaf)
        FL_ERR(err, FL_EINVAL, "%s \"%s\" is owned by another user", what,
               real);
    else
        FL_ERR(err, FL_EINVAL, "%s \"%s\" is in a directory owned by "
                               "another user", what, real);
    fl_error_set_detail(err, "\"%s\" is owned by %s; flotilla runs as %s "
                             "and trusts only what it or root owns.",
                        comp, owner, me);
    fl_error_set_hint(err, "Run as root: chown %s %s", chown_to, quoted);
    free(owner);
    free(me);
    free(quoted);
    free(chown_to);
    return FL_EINVAL;
}

int
fl_perm_check_owner(const struct stat *st, const char *path, const char *what,
                    uid_t uid, fl_error_t *err)
{
    return s_check_owner(st, path, path, 1, what, uid, err);
}

/*
 * Checks one component (comp, a resolved path) of the resolved path real;
 * leaf says whether it is the object itself (no sticky-bit allowance).
 */
static int
s_check_one(const char *comp, const char *real, int leaf, const char *what,
            uid_t uid, fl_error_t *err)
{
    struct stat st;
    char *owner = NULL;
    char *quoted = NULL;
    int rc = 0;

    if (lstat(comp, &st) != 0)
        return FL_ERR(err, FL_EIO, "could not examine \"%s\" above %s "
                                   "\"%s\": %s", comp, what, real,
                      strerror(errno));
    if ((rc = s_check_owner(&st, comp, real, leaf, what, uid, err)) != 0)
        return rc;
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) &&
        (leaf || !S_ISDIR(st.st_mode) || !(st.st_mode & S_ISVTX))) {
        owner = s_user(st.st_uid);
        quoted = fl_str_shell_quote(comp);
        if (leaf)
            FL_ERR(err, FL_EINVAL, "%s \"%s\" is writable by %s", what, real,
                   s_writers(st.st_mode));
        else
            FL_ERR(err, FL_EINVAL, "%s \"%s\" is in a directory writable by "
                                   "%s", what, real, s_writers(st.st_mode));
        fl_error_set_detail(err, "\"%s\" has mode %04o and is owned by %s; "
                                 "whoever can write it can replace the %s.",
                            comp, (unsigned)(st.st_mode & 07777), owner, what);
        fl_error_set_hint(err, "Run: chmod go-w %s", quoted);
        rc = FL_EINVAL;
    }
    free(owner);
    free(quoted);
    return rc;
}

int
fl_perm_check(char **real_out, const char *path, const char *what, uid_t uid,
              fl_error_t *err)
{
    char *real = realpath(path, NULL);
    char *comp = NULL;
    char *slash = NULL;
    int rc = 0;

    if (real == NULL)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                      "could not open %s \"%s\": %s", what, path,
                      strerror(errno));
    comp = fl_strdup(real);
    if ((rc = s_check_one(comp, real, 1, what, uid, err)) != 0)
        goto cleanup;
    /* Up to and including "/": cut the last component each time. */
    while ((slash = strrchr(comp, '/')) != NULL && comp[1] != '\0') {
        if (slash == comp)
            slash[1] = '\0';
        else
            slash[0] = '\0';
        if ((rc = s_check_one(comp, real, 0, what, uid, err)) != 0)
            goto cleanup;
    }
    if (real_out != NULL) {
        *real_out = real;
        real = NULL;
    }
cleanup:
    free(comp);
    free(real);
    return rc;
}
