/*
 * error.h - the one error type of Flotilla.
 *
 * Fallible functions return 0 on success or a negative fl_code on failure
 * and, when the caller passes an fl_error_t, fill it with a message in
 * PostgreSQL's style (lower case, no final period, names quoted), optional
 * detail and hint, an optional SQLSTATE and the origin (file and line).
 * The error object is always the last parameter.  Pass NULL when the
 * caller only needs the code.
 *
 * An fl_error_t lives on the caller's stack: initialise it with
 * FL_ERROR_INIT, release it with fl_error_clear().  Setting an error that
 * is already set replaces it (the first error is usually the cause, so
 * callers should stop at the first failure rather than overwrite it).
 * Not thread safe per object; distinct objects are independent.
 */
#ifndef FL_COMMON_ERROR_H
#define FL_COMMON_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define FL_NODISCARD __attribute__((warn_unused_result))
#define FL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Keep this list short: only codes a caller branches on. */
typedef enum {
    FL_OK = 0,
    FL_EFAIL = -1,      /* generic failure */
    FL_ENOTFOUND = -2,  /* a named object does not exist */
    FL_ECONFLICT = -3,  /* state conflict: already exists, drift, lock held */
    FL_ETIMEOUT = -4,   /* a deadline passed */
    FL_ECANCELLED = -5, /* cancelled by request */
    FL_EPROTO = -6,     /* malformed or unauthentic wire data or bundle */
    FL_EDB = -7,        /* the database reported an error */
    FL_EIO = -8,        /* file or socket I/O */
    FL_EINVAL = -9      /* invalid input from a user or file */
} fl_code;

typedef struct {
    int code;        /* an fl_code; FL_OK when unset */
    char *message;   /* primary message; NULL when unset */
    char *detail;    /* facts; may be NULL */
    char *hint;      /* advice; may be NULL */
    char sqlstate[6];/* five characters and NUL; empty when none */
    const char *file;/* origin; a string literal */
    int line;
} fl_error_t;

/*
 * Discards the result of a FL_NODISCARD call on purpose (gcc ignores a
 * (void) cast there).  Say why in a comment next to each use.
 */
#define FL_IGNORE(call)                                                    \
    do {                                                                   \
        int fl_ignored_ = (call);                                          \
        (void)fl_ignored_;                                                 \
    } while (0)

/*
 * Programmer errors (an impossible state, a broken invariant) abort with
 * the condition and its place, in release builds too (STYLE.md §3).
 * Runtime failures are never FL_ASSERTs.
 */
#define FL_ASSERT(cond) \
    ((cond) ? (void)0 : fl_assert_fail(#cond, __FILE__, __LINE__))
void fl_assert_fail(const char *cond, const char *file, int line)
    __attribute__((noreturn));

#define FL_ERROR_INIT {FL_OK, NULL, NULL, NULL, {0}, NULL, 0}

/*
 * Fills err (if not NULL) with code and a formatted message, replacing
 * whatever it held, and returns code so callers can write
 * `return FL_ERR(err, FL_EINVAL, "...")`.
 */
#define FL_ERR(err, code, ...) \
    fl_error_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

int fl_error_set(fl_error_t *err, int code, const char *file, int line,
                 const char *fmt, ...) FL_PRINTF(5, 6);
int fl_error_setv(fl_error_t *err, int code, const char *file, int line,
                  const char *fmt, va_list ap) FL_PRINTF(5, 0);

/* Sets the detail or hint of an error that is set; no-op on NULL err. */
void fl_error_set_detail(fl_error_t *err, const char *fmt, ...) FL_PRINTF(2, 3);
void fl_error_set_hint(fl_error_t *err, const char *fmt, ...) FL_PRINTF(2, 3);
/* Appends a sentence to the detail (after two spaces when it has one). */
void fl_error_add_detail(fl_error_t *err, const char *fmt, ...) FL_PRINTF(2, 3);
/* Sets the SQLSTATE (copied, at most five characters). */
void fl_error_set_sqlstate(fl_error_t *err, const char *sqlstate);

/*
 * Prefixes the message with context ("agent \"a1\": ") at a component
 * boundary, keeping code, detail and hint.  No-op when err is unset.
 */
void fl_error_prefix(fl_error_t *err, const char *fmt, ...) FL_PRINTF(2, 3);

/* Moves src into dst (dst cleared first); src becomes unset. */
void fl_error_move(fl_error_t *dst, fl_error_t *src);

/* Releases the strings and resets err to FL_ERROR_INIT.  Accepts NULL. */
void fl_error_clear(fl_error_t *err);

/* True when err holds an error. */
int fl_error_is_set(const fl_error_t *err);

/* A short stable name for a code: "invalid input", "not found", ... */
const char *fl_error_code_name(int code);

/*
 * Formats err for a person: "error: MESSAGE\nDETAIL: ...\nHINT: ..." into
 * a new string the caller frees.
 */
char *fl_error_format(const fl_error_t *err);

#endif
