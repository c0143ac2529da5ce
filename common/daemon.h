/*
 * daemon.h - what flotilla-coordinator and flotilla-agent share as
 * processes (neither may link the other's code): logging set up from
 * their settings, signals turned into bytes on a pipe their event loop
 * polls, and the report of a failed start.
 *
 * Signals: SIGHUP, SIGTERM and SIGINT are caught and written, one byte
 * each, to a non-blocking pipe; SIGPIPE is ignored.  A handler does
 * nothing else, so everything a signal causes runs on the loop's thread.
 * One process, one set of handlers.
 */
#ifndef FL_COMMON_DAEMON_H
#define FL_COMMON_DAEMON_H

#include "common/error.h"

/* Sets the log level (a valid name) and opens log_file when not NULL. */
int fl_daemon_logging(const char *level, const char *log_file,
                      fl_error_t *err) FL_NODISCARD;

/*
 * At SIGHUP: opens log_file (when not NULL) again, so that a log moved
 * away (logrotate) is made anew; when it cannot be opened, the old file
 * stays and the error is logged there.
 */
void fl_daemon_reopen_log(const char *component, const char *log_file);

/* Installs the handlers; returns the pipe's read end, or a negative code. */
int fl_daemon_signals(fl_error_t *err) FL_NODISCARD;

/* The next signal caught (SIGHUP, SIGTERM, SIGINT), or 0 when none. */
int fl_daemon_next_signal(void);

/* Logs "could not start: ..." with err for component; returns 1. */
int fl_daemon_failed(const char *component, const fl_error_t *err);

#endif
