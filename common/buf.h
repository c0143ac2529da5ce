/*
 * buf.h - a growable byte buffer with a maximum size.
 *
 * Modelled on curl's dynbuf: every buffer has a hard limit so that hostile
 * input cannot make it grow without bound.  Appending past the limit fails
 * with FL_EINVAL and leaves the buffer as it was.  The content is always
 * NUL-terminated (the NUL is not counted in len) so text can be used as a
 * C string.  A zero limit means FL_BUF_DEFAULT_MAX.
 */
#ifndef FL_COMMON_BUF_H
#define FL_COMMON_BUF_H

#include <stddef.h>

#include "common/error.h"

#define FL_BUF_DEFAULT_MAX ((size_t)256 * 1024 * 1024)

typedef struct {
    char *data;  /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max;
} fl_buf_t;

#define FL_BUF_INIT(max) {NULL, 0, 0, (max)}

void fl_buf_init(fl_buf_t *b, size_t max);
/* Frees the content; the buffer can be reused. */
void fl_buf_release(fl_buf_t *b);
/* Empties the buffer, keeping its allocation. */
void fl_buf_reset(fl_buf_t *b);

int fl_buf_append(fl_buf_t *b, const void *data, size_t len) FL_NODISCARD;
int fl_buf_puts(fl_buf_t *b, const char *s) FL_NODISCARD;
/*
 * printf into the buffer; returns 0, or FL_EINVAL past the limit (the
 * buffer unchanged).  For buffers that hold what an input made.
 */
int fl_buf_printf(fl_buf_t *b, const char *fmt, ...) FL_PRINTF(2, 3)
    FL_NODISCARD;
/*
 * The same for text flotilla builds itself (SQL from the catalog, a
 * message): there, passing the limit is a bug, not an input, so it aborts
 * the process with a message, as running out of memory does, rather than
 * go on with a fragment missing.
 */
void fl_buf_addf(fl_buf_t *b, const char *fmt, ...) FL_PRINTF(2, 3);
/* fl_buf_puts with the same contract as fl_buf_addf. */
void fl_buf_adds(fl_buf_t *b, const char *s);

/*
 * Returns the content as a new NUL-terminated string owned by the caller
 * ("" when empty) and leaves the buffer empty.
 */
char *fl_buf_detach(fl_buf_t *b);

/* The content, or "" when empty; lent until the next change. */
const char *fl_buf_str(const fl_buf_t *b);

#endif
