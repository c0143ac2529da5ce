/*
 * secret.c - reading and writing secret files (see secret.h).
 */
#include "common/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/perm.h"

static void
s_sodium_init(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "flotilla: could not initialise libsodium\n");
        abort();
    }
}

/*
 * The secret beside path when path is the public half of a pair
 * (PREFIX.cert beside PREFIX.cert_secret, NAME.pub beside NAME.key), a
 * new string; NULL otherwise.
 */
static char *
s_secret_beside(const char *path)
{
    size_t n = strlen(path);
    struct stat st;
    char *other = NULL;

    if (n > 4 && strcmp(path + n - 4, ".pub") == 0)
        other = fl_asprintf("%.*s.key", (int)(n - 4), path);
    else
        other = fl_asprintf("%s_secret", path);
    if (lstat(other, &st) == 0 && S_ISREG(st.st_mode))
        return other;
    free(other);
    return NULL;
}

static int
s_check_stat(const struct stat *st, const char *path, fl_error_t *err)
{
    if (S_ISLNK(st->st_mode)) {
        FL_ERR(err, FL_EINVAL, "secret file \"%s\" is a symbolic link", path);
        fl_error_set_detail(err, "Whoever can change the link chooses what is "
                                 "read, so secrets are read from the file "
                                 "itself.");
        fl_error_set_hint(err, "Give the path the link points to (readlink "
                               "-f %s).", path);
        return FL_EINVAL;
    }
    if (!S_ISREG(st->st_mode))
        return FL_ERR(err, FL_EINVAL, "secret file \"%s\" is not a regular file",
                      path);
    /*
     * At 0600 another user's file is still theirs to rewrite: whoever owns
     * it could swap the key that flotilla (perhaps root) then reads.
     */
    if (fl_perm_check_owner(st, path, "secret file", geteuid(), err) != 0)
        return FL_EINVAL;
    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        char *secret = s_secret_beside(path);

        FL_ERR(err, FL_EINVAL, "secret file \"%s\" has group or world access",
               path);
        fl_error_set_detail(err, "Its mode is %04o; secret files must be 0600 "
                                 "or stricter.", (unsigned)(st->st_mode & 07777));
        /* A public file given for its secret: chmod is not the answer. */
        if (secret != NULL)
            fl_error_set_hint(err, "\"%s\" looks like the public half of a "
                                   "pair: give its secret, %s.", path,
                              secret);
        else
            fl_error_set_hint(err, "Run: chmod 600 %s", path);
        free(secret);
        return FL_EINVAL;
    }
    return 0;
}

int
fl_secret_check_file(const char *path, fl_error_t *err)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                      "could not open secret file \"%s\": %s", path,
                      strerror(errno));
    return s_check_stat(&st, path, err);
}

void
fl_secret_alloc(fl_secret_t *out, size_t len)
{
    s_sodium_init();
    out->data = sodium_malloc(len ? len : 1);
    if (out->data == NULL) {
        fprintf(stderr, "flotilla: out of secure memory (%zu bytes)\n", len);
        abort();
    }
    sodium_memzero(out->data, len ? len : 1);
    out->len = len;
}

void
fl_secret_release(fl_secret_t *s)
{
    if (s == NULL || s->data == NULL)
        return;
    sodium_free(s->data); /* wipes before freeing */
    s->data = NULL;
    s->len = 0;
}

int
fl_secret_load(fl_secret_t *out, const char *path, size_t max, fl_error_t *err)
{
    struct stat st;
    int fd = -1;
    int rc = 0;
    size_t got = 0;

    /* No link followed; a FIFO or device does not block the open. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ELOOP)
        return fl_secret_check_file(path, err);
    if (fd < 0) {
        rc = FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                    "could not open secret file \"%s\": %s", path,
                    strerror(errno));
        fl_error_set_hint(err, "Check the path; the file must be a regular "
                               "file of mode 0600 owned by this user.");
        return rc;
    }
    /* fstat on the open descriptor: no race between check and read. */
    if (fstat(fd, &st) != 0) {
        rc = FL_ERR(err, FL_EIO, "could not stat secret file \"%s\": %s", path,
                    strerror(errno));
        goto cleanup;
    }
    if ((rc = s_check_stat(&st, path, err)) != 0)
        goto cleanup;
    if ((size_t)st.st_size > max) {
        rc = FL_ERR(err, FL_EINVAL, "secret file \"%s\" is too large", path);
        fl_error_set_detail(err, "It has %lld bytes; at most %zu are accepted.",
                            (long long)st.st_size, max);
        goto cleanup;
    }
    fl_secret_alloc(out, (size_t)st.st_size);
    while (got < out->len) {
        ssize_t n = read(fd, out->data + got, out->len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = FL_ERR(err, FL_EIO, "could not read secret file \"%s\": %s",
                        path, n < 0 ? strerror(errno) : "unexpected end of file");
            fl_secret_release(out);
            goto cleanup;
        }
        got += (size_t)n;
    }
cleanup:
    close(fd);
    return rc;
}

/* fsyncs the directory holding path, so a rename in it is durable. */
static int
s_sync_dir(const char *path, fl_error_t *err)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? fl_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : fl_strdup(".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0 || fsync(fd) != 0)
        rc = FL_ERR(err, FL_EIO, "could not fsync directory \"%s\": %s", dir,
                    strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* fl_secret_save and fl_file_save_public: the file made with mode. */
static int
s_save(const char *path, const void *data, size_t len, int overwrite,
       mode_t mode, fl_error_t *err)
{
    char *tmp = NULL;
    const char *target = path;
    int fd = -1;
    int rc = 0;
    int created = 0;
    size_t done = 0;

    if (overwrite) {
        unsigned char r[8];
        char hex[2 * sizeof(r) + 1];

        /* A name no other process is using; O_EXCL makes sure. */
        s_sodium_init();
        randombytes_buf(r, sizeof(r));
        sodium_bin2hex(hex, sizeof(hex), r, sizeof(r));
        tmp = fl_asprintf("%s.tmp.%ld.%s", path, (long)getpid(), hex);
        target = tmp;
    }
    fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0) {
        if (errno == EEXIST && !overwrite) {
            rc = FL_ERR(err, FL_ECONFLICT, "file \"%s\" already exists", path);
            fl_error_set_hint(err, "Use --force to replace it.");
        } else {
            rc = FL_ERR(err, FL_EIO, "could not create \"%s\": %s", target,
                        strerror(errno));
        }
        goto cleanup;
    }
    created = 1;
    /* On the descriptor: the umask does not decide, and no path does. */
    if (fchmod(fd, mode) != 0) {
        rc = FL_ERR(err, FL_EIO, "could not set the mode of \"%s\": %s",
                    target, strerror(errno));
        goto cleanup;
    }
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = FL_ERR(err, FL_EIO, "could not write \"%s\": %s", target,
                        strerror(errno));
            goto cleanup;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = FL_ERR(err, FL_EIO, "could not fsync \"%s\": %s", target,
                    strerror(errno));
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = FL_ERR(err, FL_EIO, "could not close \"%s\": %s", target,
                    strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (tmp && rename(tmp, path) != 0) {
        rc = FL_ERR(err, FL_EIO, "could not rename \"%s\" to \"%s\": %s", tmp,
                    path, strerror(errno));
        goto cleanup;
    }
    created = tmp == NULL;
    rc = s_sync_dir(path, err);
cleanup:
    if (fd >= 0)
        close(fd);
    /* Only a temporary file this call created is removed. */
    if (rc != 0 && tmp && created)
        unlink(tmp);
    free(tmp);
    return rc;
}

int
fl_secret_save(const char *path, const void *data, size_t len, int overwrite,
               fl_error_t *err)
{
    return s_save(path, data, len, overwrite, 0600, err);
}

int
fl_file_save_public(const char *path, const void *data, size_t len,
                    int overwrite, fl_error_t *err)
{
    return s_save(path, data, len, overwrite, 0644, err);
}
