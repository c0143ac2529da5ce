/*
 * secret.h - reading secret files (keys, passwords) safely.
 *
 * A secret file must be a regular file owned by the user flotilla runs as
 * (or root) with no group or other permission bits (mode 0600 or
 * stricter), as ssh and PostgreSQL demand for their keys; anything else
 * is refused before a byte is read.  Another user's file is refused even
 * at 0600: its owner could rewrite it.  The content is
 * read into libsodium secure memory (guarded, locked, never swapped) and
 * wiped when released.
 */
#ifndef FL_COMMON_SECRET_H
#define FL_COMMON_SECRET_H

#include <stddef.h>

#include "common/error.h"

typedef struct {
    unsigned char *data; /* sodium_malloc'd; NULL when empty */
    size_t len;
} fl_secret_t;

#define FL_SECRET_INIT {NULL, 0}

/* Checks type, owner and mode of the file at path (not following links). */
int fl_secret_check_file(const char *path, fl_error_t *err) FL_NODISCARD;

/*
 * Reads the file at path (at most max bytes, else FL_EINVAL) into out
 * after fl_secret_check_file().  out must be empty; release it with
 * fl_secret_release().
 */
int fl_secret_load(fl_secret_t *out, const char *path, size_t max,
                   fl_error_t *err) FL_NODISCARD;

/* Allocates len bytes of secure memory into out (zeroed). */
void fl_secret_alloc(fl_secret_t *out, size_t len);

/* Wipes and frees; accepts an empty secret. */
void fl_secret_release(fl_secret_t *s);

/*
 * Writes data to path with mode 0600, refusing to replace an existing
 * file unless overwrite is set.  The file is created with O_EXCL (or
 * replaced through a temporary file and rename) so no window exists in
 * which it is readable by others.
 */
int fl_secret_save(const char *path, const void *data, size_t len,
                   int overwrite, fl_error_t *err) FL_NODISCARD;

/*
 * The same for a file others may read (a public key, a public
 * certificate): mode 0644, written as a new file or renamed over the
 * old one, never through a link there.
 */
int fl_file_save_public(const char *path, const void *data, size_t len,
                        int overwrite, fl_error_t *err) FL_NODISCARD;

#endif
