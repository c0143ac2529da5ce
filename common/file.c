/*
 * file.c - reading a whole file safely (see file.h).
 */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"

int
fl_file_read(unsigned char **data, size_t *len, const char *path, size_t max,
             const char *what, fl_error_t *err)
{
    /* O_NONBLOCK: a FIFO opens at once, and is refused below. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    int rc = 0;

    *data = NULL;
    *len = 0;
    if (fd < 0)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND
                           : errno == ELOOP ? FL_EINVAL
                                            : FL_EIO,
                      "could not open %s \"%s\": %s", what, path,
                      errno == ELOOP ? "it is a symbolic link"
                                     : strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (size_t)st.st_size > max) {
        rc = FL_ERR(err, FL_EINVAL, "%s \"%s\" is not a regular file of at "
                    "most %zu bytes", what, path, max);
        goto cleanup;
    }
    buf = fl_malloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = FL_ERR(err, FL_EIO, "could not read %s \"%s\"", what, path);
            goto cleanup;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
cleanup:
    free(buf);
    close(fd);
    return rc;
}

/*
 * fl_file_within() and fl_dir_within(): path, or the real path of the
 * link it is, inside dir's; a regular file, or a directory (want_dir).
 */
static int
s_within(const char *dir, const char *path, const char *what, int want_dir,
         fl_error_t *err)
{
    char root[PATH_MAX], real[PATH_MAX];
    struct stat st;
    size_t n;

    if (lstat(path, &st) != 0)
        return FL_ERR(err, FL_EIO, "could not look at %s \"%s\": %s", what,
                      path, strerror(errno));
    if (S_ISLNK(st.st_mode)) {
        if (realpath(dir, root) == NULL)
            return FL_ERR(err, FL_EIO, "could not resolve directory \"%s\": "
                          "%s", dir, strerror(errno));
        if (realpath(path, real) == NULL)
            return FL_ERR(err, FL_EINVAL, "%s \"%s\" is a symbolic link "
                          "that leads nowhere: %s", what, path,
                          strerror(errno));
        n = strlen(root);
        if (strncmp(real, root, n) != 0 ||
            (real[n] != '/' && strcmp(root, "/") != 0)) {
            FL_ERR(err, FL_EINVAL, "%s \"%s\" is a symbolic link to \"%s\", "
                   "outside \"%s\"", what, path, real, dir);
            fl_error_set_detail(err, "%s would be read as SQL, packed into "
                                "a bundle and run: a link can lead to any "
                                "file this user may read, a key or a "
                                "password file among them.",
                                want_dir ? "What it holds" : "Its text");
            fl_error_set_hint(err, "Copy the %s into the directory, or link "
                                   "to a %s inside it.",
                              want_dir ? "folder" : "file",
                              want_dir ? "folder" : "file");
            return FL_EINVAL;
        }
        if (stat(path, &st) != 0)
            return FL_ERR(err, FL_EIO, "could not look at %s \"%s\": %s",
                          what, path, strerror(errno));
    }
    if (want_dir && !S_ISDIR(st.st_mode))
        return FL_ERR(err, FL_EINVAL, "%s \"%s\" is not a directory", what,
                      path);
    if (!want_dir && !S_ISREG(st.st_mode)) {
        FL_ERR(err, FL_EINVAL, "%s \"%s\" is not a regular file", what, path);
        fl_error_set_hint(err, "Make it a regular file (a FIFO or a device is "
                               "never read).");
        return FL_EINVAL;
    }
    return 0;
}

int
fl_file_within(const char *dir, const char *path, const char *what,
               fl_error_t *err)
{
    return s_within(dir, path, what, 0, err);
}

int
fl_dir_within(const char *dir, const char *path, const char *what,
              fl_error_t *err)
{
    return s_within(dir, path, what, 1, err);
}
