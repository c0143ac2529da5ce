/*
 * log.h - the logging module: levels, key=value fields, replaceable sink.
 *
 * One event is one line.  The default sink writes to stderr: a readable
 * line ("15:04:05 INFO  agent: message key=value") when stderr is a
 * terminal, a JSON object per line (time, level, component, message,
 * fields) otherwise.  fl_log_open_file() adds a JSON-lines file that
 * receives every event as well (the migration-execution.log of the old
 * framework).  Tests replace the sink with fl_log_set_sink() to capture
 * and assert on events.
 *
 * Libraries return errors; the code that finally handles an error logs it
 * once.  Never log a secret: pass connection strings through
 * fl_dsn_redact() first.
 *
 * Thread safety: every function may be called from any thread; the
 * emitting path holds one mutex while a sink runs.
 */
#ifndef FL_COMMON_LOG_H
#define FL_COMMON_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"

typedef enum {
    FL_LOG_ERROR = 0,
    FL_LOG_WARNING,
    FL_LOG_NOTICE,
    FL_LOG_INFO,
    FL_LOG_DEBUG
} fl_log_level;

typedef enum {
    FL_LOG_FORMAT_AUTO = 0, /* text on a terminal, JSON otherwise */
    FL_LOG_FORMAT_TEXT,
    FL_LOG_FORMAT_JSON
} fl_log_format;

typedef struct {
    const char *key;
    const char *value;
} fl_log_field;

/* One event as handed to a sink; every pointer is lent for the call. */
typedef struct {
    int64_t time_us; /* microseconds since the epoch */
    fl_log_level level;
    const char *component;
    const char *message;
    const fl_log_field *fields;
    size_t nfields;
} fl_log_record;

typedef void (*fl_log_sink_fn)(const fl_log_record *rec, void *arg);

/* Replaces the console sink; NULL restores the default stderr sink. */
void fl_log_set_sink(fl_log_sink_fn fn, void *arg);
/* Events above this level are dropped before formatting.  Default info. */
void fl_log_set_level(fl_log_level level);
fl_log_level fl_log_level_get(void);
void fl_log_set_format(fl_log_format format);

/*
 * Appends every event, as JSON lines, to the file at path as well
 * (created mode 0640 if missing).  Replaces a previously opened file.
 * Fails with FL_EIO naming the path.
 */
int fl_log_open_file(const char *path, fl_error_t *err) FL_NODISCARD;
void fl_log_close_file(void);

/* Parses "error", "warning", "notice", "info", "debug". */
int fl_log_level_parse(fl_log_level *out, const char *name,
                       fl_error_t *err) FL_NODISCARD;
const char *fl_log_level_name(fl_log_level level);

/* Emits one event; fields may be NULL when nfields is 0. */
void fl_log_emit(fl_log_level level, const char *component,
                 const fl_log_field *fields, size_t nfields, const char *fmt,
                 ...) FL_PRINTF(5, 6);
/*
 * The same for an event that happened at time_us (microseconds since the
 * epoch) and is reported later, so its record keeps the time it happened.
 */
void fl_log_emit_at(int64_t time_us, fl_log_level level, const char *component,
                    const fl_log_field *fields, size_t nfields,
                    const char *fmt, ...) FL_PRINTF(6, 7);

/*
 * Formats a record as one JSON object without a newline; returns a new
 * string.  Used by the file sink and by the agent's step events.
 */
char *fl_log_record_json(const fl_log_record *rec);
/* Formats a record as one readable line without a newline. */
char *fl_log_record_text(const fl_log_record *rec);

#define fl_log_error(comp, ...) fl_log_emit(FL_LOG_ERROR, comp, NULL, 0, __VA_ARGS__)
#define fl_log_warning(comp, ...) fl_log_emit(FL_LOG_WARNING, comp, NULL, 0, __VA_ARGS__)
#define fl_log_notice(comp, ...) fl_log_emit(FL_LOG_NOTICE, comp, NULL, 0, __VA_ARGS__)
#define fl_log_info(comp, ...) fl_log_emit(FL_LOG_INFO, comp, NULL, 0, __VA_ARGS__)
#define fl_log_debug(comp, ...) fl_log_emit(FL_LOG_DEBUG, comp, NULL, 0, __VA_ARGS__)

#endif
