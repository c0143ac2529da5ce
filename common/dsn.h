/*
 * dsn.h - PostgreSQL connection strings: validation and redaction.
 *
 * Flotilla accepts whatever libpq accepts (key=value strings and
 * postgres:// URIs) and passes it to libpq unchanged.  Nothing that came
 * from a connection string may be logged or shown without going through
 * fl_dsn_redact(), which drops passwords whatever form they take.
 */
#ifndef FL_COMMON_DSN_H
#define FL_COMMON_DSN_H

#include "common/error.h"

/*
 * Checks that libpq can parse dsn.  The error never repeats the string
 * (it may hold a password).
 */
int fl_dsn_check(const char *dsn, fl_error_t *err) FL_NODISCARD;

/*
 * Returns a new string safe to log: the options set in dsn in key=value
 * form, with password (and sslpassword) removed.  A string libpq cannot
 * parse becomes "(invalid connection string)".  Never NULL.
 */
char *fl_dsn_redact(const char *dsn);

/*
 * Returns a new connection string: dsn (key=value or URI) with its dbname
 * replaced by dbname, in key=value form, every other option kept
 * (passwords too: for connecting, never for showing).  NULL when libpq
 * cannot parse dsn.  The agent's discovery connects to each database of a
 * server this way.
 */
char *fl_dsn_with_dbname(const char *dsn, const char *dbname);

/*
 * Returns a new short name for messages, "dbname@host:port", with the
 * libpq defaults filled in from the environment.  Never NULL.
 */
char *fl_dsn_describe(const char *dsn);

#endif
