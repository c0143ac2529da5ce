/*
 * alloc.c - allocation wrappers that abort on out-of-memory (see alloc.h).
 */
#include "common/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_oom(size_t size)
{
    fprintf(stderr, "flotilla: out of memory allocating %zu bytes\n", size);
    fflush(stderr);
    abort();
}

void *
fl_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL)
        s_oom(size);
    return p;
}

void *
fl_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        s_oom(n * size);
    return p;
}

void *
fl_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);

    if (p == NULL)
        s_oom(size);
    return p;
}

void *
fl_reallocarray(void *ptr, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        s_oom(SIZE_MAX);
    return fl_realloc(ptr, n * size);
}

char *
fl_strdup(const char *s)
{
    size_t len = strlen(s);
    char *p = fl_malloc(len + 1);

    memcpy(p, s, len + 1);
    return p;
}

char *
fl_strdup_or_null(const char *s)
{
    return s != NULL ? fl_strdup(s) : NULL;
}

char *
fl_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = fl_malloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
fl_vasprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    int len;
    char *p = NULL;

    va_copy(ap2, ap);
    len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0) {
        fprintf(stderr, "flotilla: invalid format string \"%s\"\n", fmt);
        abort();
    }
    p = fl_malloc((size_t)len + 1);
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    return p;
}

char *
fl_asprintf(const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;

    va_start(ap, fmt);
    p = fl_vasprintf(fmt, ap);
    va_end(ap);
    return p;
}

void
fl_free(void *pp)
{
    void **p = pp;

    if (p == NULL)
        return;
    free(*p);
    *p = NULL;
}
