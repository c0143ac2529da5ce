/*
 * buf.c - a growable byte buffer with a maximum size (see buf.h).
 */
#include "common/buf.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

void
fl_buf_init(fl_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void
fl_buf_release(fl_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
fl_buf_reset(fl_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int
s_reserve(fl_buf_t *b, size_t extra)
{
    size_t max = b->max ? b->max : FL_BUF_DEFAULT_MAX;
    size_t need;
    size_t cap;

    if (extra > max || b->len > max - extra)
        return FL_EINVAL;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = fl_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

/* Passing the limit of a buffer flotilla fills itself: a bug; stop. */
static void
s_overflow(const fl_buf_t *b, int n)
{
    fprintf(stderr, "flotilla: internal error: a buffer of %zu bytes would "
            "pass its limit of %zu bytes (adding %d)\n", b->len,
            b->max ? b->max : FL_BUF_DEFAULT_MAX, n);
    abort();
}

int
fl_buf_append(fl_buf_t *b, const void *data, size_t len)
{
    if (s_reserve(b, len) != 0)
        return FL_EINVAL;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int
fl_buf_puts(fl_buf_t *b, const char *s)
{
    return fl_buf_append(b, s, strlen(s));
}

/*
 * vprintf into the buffer; FL_EINVAL past the limit, the buffer
 * unchanged.  *n gets the length of the text.
 */
static int s_vprintf(fl_buf_t *b, int *n, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static int
s_vprintf(fl_buf_t *b, int *n, const char *fmt, va_list ap)
{
    va_list again;

    va_copy(again, ap);
    *n = vsnprintf(NULL, 0, fmt, ap);
    if (*n < 0 || s_reserve(b, (size_t)*n) != 0) {
        va_end(again);
        return FL_EINVAL;
    }
    vsnprintf(b->data + b->len, (size_t)*n + 1, fmt, again);
    va_end(again);
    b->len += (size_t)*n;
    return 0;
}

int
fl_buf_printf(fl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int rc, n;

    va_start(ap, fmt);
    rc = s_vprintf(b, &n, fmt, ap);
    va_end(ap);
    return rc;
}

void
fl_buf_addf(fl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int rc, n;

    va_start(ap, fmt);
    rc = s_vprintf(b, &n, fmt, ap);
    va_end(ap);
    if (rc != 0)
        s_overflow(b, n);
}

void
fl_buf_adds(fl_buf_t *b, const char *s)
{
    size_t n = strlen(s);

    if (s_reserve(b, n) != 0)
        s_overflow(b, (int)(n > INT_MAX ? INT_MAX : n));
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

char *
fl_buf_detach(fl_buf_t *b)
{
    char *s = b->data;

    if (s == NULL)
        s = fl_strdup("");
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return s;
}

const char *
fl_buf_str(const fl_buf_t *b)
{
    return b->data ? b->data : "";
}
