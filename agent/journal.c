/*
 * journal.c - the agent daemon's files (see journal.h).
 */
#include "agent/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/perm.h"
#include "proto/bundle.h"

/* Journal files stay small; bundles have their own limit. */
#define S_MAX_FILE ((size_t)FL_BUNDLE_MAX_SIZE + 4096)

struct fl_journal {
    char *dir;
    int lock_fd;
    int fsync;
    struct timespec last;    /* the newest command's mtime (s_stamp) */
};

/*
 * Makes directory path (0700) when missing, and refuses it when another
 * user owns it or others can write it, or a directory above it (perm.h):
 * whoever could would rewrite the journal or the bundles, which the
 * daemon acts on as its own.
 */
static int
s_mkdir(const char *path, fl_error_t *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return FL_ERR(err, FL_EIO, "could not create directory \"%s\": %s",
                      path, strerror(errno));
    return fl_perm_check(NULL, path, "state directory", geteuid(), err);
}

/* 1 when name ends in suffix. */
static int
s_ends(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);

    return n > k && strcmp(name + n - k, suffix) == 0;
}

/*
 * Removes from dir/sub what a kill left: files of a write not finished
 * (*.tmp), and cancel and stop marks (journal/ID.cancel, ID.stop) whose
 * command is gone.
 * Neither is ever listed or read; both stayed for ever.
 */
static void
s_sweep(const char *dir, const char *sub)
{
    char *path = fl_asprintf("%s/%s", dir, sub);
    DIR *d = opendir(path);
    struct dirent *de = NULL;

    while (d != NULL && (de = readdir(d)) != NULL) {
        char *p = NULL;

        if (s_ends(de->d_name, ".cancel") || s_ends(de->d_name, ".stop")) {
            size_t ext = s_ends(de->d_name, ".stop") ? 5 : 7;
            char *cmd = fl_asprintf("%s/%.*s.cmd", path,
                                    (int)(strlen(de->d_name) - ext),
                                    de->d_name);
            struct stat st;
            int alone = lstat(cmd, &st) != 0 && errno == ENOENT;

            free(cmd);
            if (!alone)
                continue;
        } else if (!s_ends(de->d_name, ".tmp")) {
            continue;
        }
        p = fl_asprintf("%s/%s", path, de->d_name);
        unlink(p);
        free(p);
    }
    if (d != NULL)
        closedir(d);
    free(path);
}

int
fl_journal_open(fl_journal_t **out, const char *dir, int fsync,
                fl_error_t *err)
{
    fl_journal_t *j = fl_calloc(1, sizeof(*j));
    char *p = NULL;
    int rc = 0;

    *out = NULL;
    j->dir = fl_strdup(dir);
    j->fsync = fsync;
    j->lock_fd = -1;
    if ((rc = s_mkdir(dir, err)) != 0)
        goto failed;
    p = fl_asprintf("%s/journal", dir);
    rc = s_mkdir(p, err);
    free(p);
    p = fl_asprintf("%s/bundles", dir);
    if (rc == 0)
        rc = s_mkdir(p, err);
    free(p);
    if (rc != 0)
        goto failed;
    p = fl_asprintf("%s/agent.lock", dir);
    j->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (j->lock_fd < 0) {
        rc = FL_ERR(err, FL_EIO, "could not open \"%s\": %s", p,
                    strerror(errno));
    } else if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = FL_ERR(err, FL_ECONFLICT, "another flotilla-agent uses the "
                    "state directory \"%s\"", dir);
        fl_error_set_hint(err, "Each agent needs a state directory of its "
                               "own.");
    }
    free(p);
    if (rc != 0)
        goto failed;
    /* Under the lock: no other daemon writes there. */
    s_sweep(dir, "journal");
    s_sweep(dir, "bundles");
    *out = j;
    return 0;
failed:
    fl_journal_close(&j);
    return rc;
}

void
fl_journal_close(fl_journal_t **j)
{
    if (j == NULL || *j == NULL)
        return;
    if ((*j)->lock_fd >= 0)
        close((*j)->lock_fd);
    free((*j)->dir);
    fl_free(j);
}

int
fl_journal_valid_id(const char *id)
{
    size_t n = strlen(id);

    return n > 0 && n <= 64 &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_-") == n;
}

static int
s_check_id(const char *id, fl_error_t *err)
{
    if (fl_journal_valid_id(id))
        return 0;
    return FL_ERR(err, FL_EPROTO, "id \"%.64s\" is not [A-Za-z0-9_-]{1,64}",
                  id);
}

/* Writes path through a temporary file, fsynced, renamed, dir fsynced. */
static int
s_write(const fl_journal_t *j, const char *sub, const char *path,
        const void *data, size_t len, fl_error_t *err)
{
    char *tmp = fl_asprintf("%s.tmp", path);
    char *dir = fl_asprintf("%s/%s", j->dir, sub);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                  0600);
    const char *p = data;
    size_t left = len;
    int rc = 0;

    if (fd < 0) {
        rc = FL_ERR(err, FL_EIO, "could not write \"%s\": %s", tmp,
                    strerror(errno));
        goto cleanup;
    }
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = FL_ERR(err, FL_EIO, "could not write \"%s\": %s", tmp,
                        strerror(errno));
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (rc == 0 && j->fsync && fsync(fd) != 0)
        rc = FL_ERR(err, FL_EIO, "could not fsync \"%s\": %s", tmp,
                    strerror(errno));
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = FL_ERR(err, FL_EIO, "could not rename \"%s\": %s", tmp,
                    strerror(errno));
    if (rc != 0) {
        unlink(tmp);
        goto cleanup;
    }
    if (j->fsync) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0)
            rc = FL_ERR(err, FL_EIO, "could not fsync \"%s\": %s", dir,
                        strerror(errno));
        if (dfd >= 0)
            close(dfd);
    }
cleanup:
    free(tmp);
    free(dir);
    return rc;
}

static int
s_read(const char *path, unsigned char **data, size_t *len, fl_error_t *err)
{
    return fl_file_read(data, len, path, S_MAX_FILE, "journal file", err);
}

/* -1, 0 or 1 as x is before, at or after y. */
static int
s_ts_cmp(const struct timespec *x, const struct timespec *y)
{
    if (x->tv_sec != y->tv_sec)
        return x->tv_sec < y->tv_sec ? -1 : 1;
    if (x->tv_nsec != y->tv_nsec)
        return x->tv_nsec < y->tv_nsec ? -1 : 1;
    return 0;
}

/*
 * Stamps a command's file with a modification time later than every
 * command's before it: the journal's order of arrival, which recovery
 * follows (fl_journal_list).  File times come from a coarse clock (two
 * commands of one millisecond could share one), so each is at least a
 * nanosecond after the one before.  Recovery ran the commands in the
 * directory's order (a hash's, or newest first): a target's rollback
 * could run before the apply it was sent after (found by an audit).
 */
static void
s_stamp(fl_journal_t *j, const char *path)
{
    struct timespec t[2];

    clock_gettime(CLOCK_REALTIME, &t[1]);
    if (s_ts_cmp(&t[1], &j->last) <= 0) {
        t[1] = j->last;
        if (++t[1].tv_nsec == 1000000000L) {
            t[1].tv_sec++;
            t[1].tv_nsec = 0;
        }
    }
    t[0] = t[1];
    /* Not fatal: the order falls back to the file's own time. */
    if (utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW) == 0)
        j->last = t[1];
}

int
fl_journal_put(fl_journal_t *j, const char *id, const char *ext,
               const void *data, size_t len, fl_error_t *err)
{
    char *path = NULL;
    int rc;

    if ((rc = s_check_id(id, err)) != 0)
        return rc;
    path = fl_asprintf("%s/journal/%s.%s", j->dir, id, ext);
    rc = s_write(j, "journal", path, data, len, err);
    if (rc == 0 && strcmp(ext, "cmd") == 0)
        s_stamp(j, path);
    free(path);
    return rc;
}

int
fl_journal_get(fl_journal_t *j, const char *id, const char *ext,
               unsigned char **data, size_t *len, fl_error_t *err)
{
    char *path = NULL;
    int rc;

    *data = NULL;
    *len = 0;
    if ((rc = s_check_id(id, err)) != 0)
        return rc;
    path = fl_asprintf("%s/journal/%s.%s", j->dir, id, ext);
    rc = s_read(path, data, len, err);
    free(path);
    return rc;
}

int
fl_journal_has(fl_journal_t *j, const char *id, const char *ext)
{
    char *path = NULL;
    struct stat st;
    int rc = 0;

    if (!fl_journal_valid_id(id))
        return 0;
    path = fl_asprintf("%s/journal/%s.%s", j->dir, id, ext);
    rc = lstat(path, &st) == 0;
    free(path);
    return rc;
}

void
fl_journal_drop(fl_journal_t *j, const char *id, const char *ext)
{
    char *path = NULL;

    if (!fl_journal_valid_id(id))
        return;
    path = fl_asprintf("%s/journal/%s.%s", j->dir, id, ext);
    unlink(path);
    free(path);
}

void
fl_journal_remove(fl_journal_t *j, const char *id)
{
    static const char *const order[] = {"cmd", "cancel", "stop", "res"};

    if (!fl_journal_valid_id(id))
        return;
    /*
     * The command first: acknowledged, it must never run again (a kill
     * after its result and cancel mark went, before it, left it alone to
     * be carried out again).  A result left alone is only sent again.
     * A file that stays keeps those after it.
     */
    for (size_t i = 0; i < sizeof(order) / sizeof(*order); i++) {
        char *path = fl_asprintf("%s/journal/%s.%s", j->dir, id, order[i]);
        int rc = unlink(path);
        int e = errno;

        free(path);
        if (rc != 0 && e != ENOENT)
            return;
    }
}
char *
fl_journal_set_aside(fl_journal_t *j, const char *id, const char *ext,
                     fl_error_t *err)
{
    char *path = NULL, *to = NULL;

    if (s_check_id(id, err) != 0)
        return NULL;
    path = fl_asprintf("%s/journal/%s.%s", j->dir, id, ext);
    to = fl_asprintf("%s.damaged", path);
    if (rename(path, to) != 0) {
        FL_ERR(err, FL_EIO, "could not rename \"%s\": %s", path,
               strerror(errno));
        fl_free(&to);
    }
    free(path);
    return to;
}

typedef struct {
    char *id;
    struct timespec at;      /* its command's mtime, else its result's */
} s_entry;

static int
s_entry_cmp(const void *a, const void *b)
{
    const s_entry *x = a, *y = b;
    int c = s_ts_cmp(&x->at, &y->at);

    return c != 0 ? c : strcmp(x->id, y->id);
}

/*
 * Sorts ids (n of them, in journal j) by their commands' arrival; the
 * commands written from now on are stamped after the newest of them
 * (the clock may have gone back since they were).
 */
static void
s_sort_by_arrival(fl_journal_t *j, char **ids, size_t n)
{
    s_entry *e = fl_calloc(n + 1, sizeof(*e));

    for (size_t i = 0; i < n; i++) {
        struct stat st;
        char *p = fl_asprintf("%s/journal/%s.cmd", j->dir, ids[i]);

        e[i].id = ids[i];
        if (lstat(p, &st) != 0) {
            free(p);
            p = fl_asprintf("%s/journal/%s.res", j->dir, ids[i]);
            if (lstat(p, &st) != 0)
                memset(&st, 0, sizeof(st));
        }
        e[i].at = st.st_mtim;
        free(p);
    }
    qsort(e, n, sizeof(*e), s_entry_cmp);
    for (size_t i = 0; i < n; i++)
        ids[i] = e[i].id;
    if (n > 0 && s_ts_cmp(&e[n - 1].at, &j->last) > 0)
        j->last = e[n - 1].at;
    free(e);
}

int
fl_journal_list(fl_journal_t *j, char ***ids, size_t *n, fl_error_t *err)
{
    char *path = fl_asprintf("%s/journal", j->dir);
    DIR *d = opendir(path);
    struct dirent *de = NULL;
    size_t cap = 0;

    *ids = NULL;
    *n = 0;
    if (d == NULL) {
        int rc = FL_ERR(err, FL_EIO, "could not list \"%s\": %s", path,
                        strerror(errno));
        free(path);
        return rc;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char *id = NULL;
        int dup = 0;

        if (len < 5 || (strcmp(de->d_name + len - 4, ".cmd") != 0 &&
                        strcmp(de->d_name + len - 4, ".res") != 0))
            continue;
        id = fl_strndup(de->d_name, len - 4);
        for (size_t i = 0; i < *n && !dup; i++)
            dup = strcmp((*ids)[i], id) == 0;
        if (dup || !fl_journal_valid_id(id)) {
            free(id);
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            *ids = fl_reallocarray(*ids, cap, sizeof(char *));
        }
        (*ids)[(*n)++] = id;
    }
    closedir(d);
    free(path);
    s_sort_by_arrival(j, *ids, *n);
    return 0;
}

int
fl_journal_bundle_put(fl_journal_t *j, const char *id, const void *data,
                      size_t len, fl_error_t *err)
{
    char *path = NULL;
    int rc;

    if ((rc = s_check_id(id, err)) != 0)
        return rc;
    path = fl_asprintf("%s/bundles/%s.bundle", j->dir, id);
    rc = s_write(j, "bundles", path, data, len, err);
    free(path);
    return rc;
}

int
fl_journal_bundle_get(fl_journal_t *j, const char *id, unsigned char **data,
                      size_t *len, fl_error_t *err)
{
    char *path = NULL;
    int rc;

    if ((rc = s_check_id(id, err)) != 0)
        return rc;
    path = fl_asprintf("%s/bundles/%s.bundle", j->dir, id);
    rc = s_read(path, data, len, err);
    free(path);
    return rc;
}
