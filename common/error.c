/*
 * error.c - the one error type of Flotilla (see error.h).
 */
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

void
fl_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "flotilla: internal error: assertion \"%s\" failed at "
                    "%s:%d\n", cond, file, line);
    fflush(stderr);
    abort();
}

int
fl_error_setv(fl_error_t *err, int code, const char *file, int line,
              const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    fl_error_clear(err);
    err->code = code;
    err->message = fl_vasprintf(fmt, ap);
    err->file = file;
    err->line = line;
    return code;
}

int
fl_error_set(fl_error_t *err, int code, const char *file, int line,
             const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    code = fl_error_setv(err, code, file, line, fmt, ap);
    va_end(ap);
    return code;
}

void
fl_error_set_detail(fl_error_t *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err->code == FL_OK)
        return;
    free(err->detail);
    va_start(ap, fmt);
    err->detail = fl_vasprintf(fmt, ap);
    va_end(ap);
}

void
fl_error_add_detail(fl_error_t *err, const char *fmt, ...)
{
    va_list ap;
    char *more = NULL, *was = NULL;

    if (err == NULL || err->code == FL_OK)
        return;
    va_start(ap, fmt);
    more = fl_vasprintf(fmt, ap);
    va_end(ap);
    was = err->detail;
    err->detail = was ? fl_asprintf("%s  %s", was, more) : more;
    if (was) {
        free(was);
        free(more);
    }
}

void
fl_error_set_hint(fl_error_t *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err->code == FL_OK)
        return;
    free(err->hint);
    va_start(ap, fmt);
    err->hint = fl_vasprintf(fmt, ap);
    va_end(ap);
}

void
fl_error_set_sqlstate(fl_error_t *err, const char *sqlstate)
{
    if (err == NULL)
        return;
    memset(err->sqlstate, 0, sizeof(err->sqlstate));
    if (sqlstate != NULL)
        strncpy(err->sqlstate, sqlstate, sizeof(err->sqlstate) - 1);
}

void
fl_error_prefix(fl_error_t *err, const char *fmt, ...)
{
    va_list ap;
    char *prefix = NULL;
    char *joined = NULL;

    if (err == NULL || err->code == FL_OK)
        return;
    va_start(ap, fmt);
    prefix = fl_vasprintf(fmt, ap);
    va_end(ap);
    joined = fl_asprintf("%s%s", prefix, err->message ? err->message : "");
    free(prefix);
    free(err->message);
    err->message = joined;
}

void
fl_error_move(fl_error_t *dst, fl_error_t *src)
{
    fl_error_clear(dst);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

void
fl_error_clear(fl_error_t *err)
{
    if (err == NULL)
        return;
    free(err->message);
    free(err->detail);
    free(err->hint);
    memset(err, 0, sizeof(*err));
}

int
fl_error_is_set(const fl_error_t *err)
{
    return err != NULL && err->code != FL_OK;
}

const char *
fl_error_code_name(int code)
{
    switch (code) {
    case FL_OK:         return "ok";
    case FL_EFAIL:      return "failure";
    case FL_ENOTFOUND:  return "not found";
    case FL_ECONFLICT:  return "conflict";
    case FL_ETIMEOUT:   return "timeout";
    case FL_ECANCELLED: return "cancelled";
    case FL_EPROTO:     return "protocol";
    case FL_EDB:        return "database";
    case FL_EIO:        return "I/O";
    case FL_EINVAL:     return "invalid input";
    default:            return "unknown";
    }
}

char *
fl_error_format(const fl_error_t *err)
{
    fl_buf_t b = FL_BUF_INIT(0);

    fl_buf_addf(&b, "error: %s",
                  err && err->message ? err->message : "unknown error");
    if (err && err->sqlstate[0])
        fl_buf_addf(&b, " (SQLSTATE %s)", err->sqlstate);
    if (err && err->detail)
        fl_buf_addf(&b, "\nDETAIL: %s", err->detail);
    if (err && err->hint)
        fl_buf_addf(&b, "\nHINT: %s", err->hint);
    return fl_buf_detach(&b);
}
