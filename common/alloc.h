/*
 * alloc.h - allocation wrappers that abort on out-of-memory.
 *
 * Flotilla cannot do anything useful without memory, and checking every
 * allocation would bury the real error paths; so, as in Redis' zmalloc,
 * running out of memory prints a message and aborts.  Everything returned
 * is owned by the caller and released with free().
 */
#ifndef FL_COMMON_ALLOC_H
#define FL_COMMON_ALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *fl_malloc(size_t size);
void *fl_calloc(size_t n, size_t size);
void *fl_realloc(void *ptr, size_t size);
/* Grows an array to n elements of size each, checking the multiplication. */
void *fl_reallocarray(void *ptr, size_t n, size_t size);
char *fl_strdup(const char *s);
/* fl_strdup, or NULL for NULL. */
char *fl_strdup_or_null(const char *s);
/* Copies at most n bytes and terminates. */
char *fl_strndup(const char *s, size_t n);
char *fl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *fl_vasprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

/* Frees *p and sets it to NULL.  Accepts NULL and *p == NULL. */
void fl_free(void *pp);

#endif
