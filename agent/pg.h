/*
 * pg.h - the libpq wrapper the pipeline talks to PostgreSQL through.
 *
 * One fl_pg_t is one connection, used by one thread at a time; another
 * thread may call fl_pg_cancel() to interrupt the running statement.
 * Every failed command becomes an fl_error_t with code FL_EDB, PostgreSQL's
 * primary message, detail, hint and SQLSTATE, and the error position (a
 * 1-based character offset into the statement) in fl_pg_last_position().
 * libpq's headers appear only here and in pg.c.
 */
#ifndef FL_AGENT_PG_H
#define FL_AGENT_PG_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct fl_pg fl_pg_t;

/* A query result: rows of text values (NULL for SQL NULL). */
typedef struct {
    size_t nrows;
    size_t ncols;
    char **names;   /* ncols column names */
    char **values;  /* nrows * ncols, row-major; NULL entries are SQL NULL */
} fl_pg_result_t;

#define FL_PG_RESULT_INIT {0, 0, NULL, NULL}

/* How a connection is made. */
typedef struct {
    int64_t timeout_ms;   /* the whole connect; 0: 10 s */
    const int *cancel;    /* read atomically while connecting: nonzero
                             ends the attempt with FL_ECANCELLED; may be
                             NULL */
} fl_pg_connect_opts_t;

#define FL_PG_CONNECT_OPTS_INIT {0, NULL}

/*
 * Opens a connection without blocking past o->timeout_ms, polling o->cancel.
 * dsn is a libpq string or URI (NULL or "" means the PG* environment).
 * Flotilla's connection parameters (pg.c: keepalives, tcp_user_timeout and
 * connect_timeout, which the dsn may change; application_name app and
 * client_encoding UTF8, which it may not) apply, and the session's
 * search_path is pinned to pg_catalog, pg_temp.  On failure returns FL_EDB
 * with libpq's message and the redacted target, FL_ETIMEOUT or
 * FL_ECANCELLED.
 */
int fl_pg_open_opts(fl_pg_t **out, const char *dsn, const char *app,
                    const fl_pg_connect_opts_t *o, fl_error_t *err) FL_NODISCARD;
/*
 * A query of set_configs that makes the server end this session soon
 * after its client is gone, whatever it is running: client_connection_
 * check_interval (PostgreSQL 14 and later: a statement of a flotilla
 * killed with SIGKILL stops within a second instead of running on with
 * its locks) and the server's own TCP keepalives and tcp_user_timeout (a
 * client lost without a word, the network cut: the server notices in
 * about a minute, not the system's two hours).  Session-level: run when
 * the connection opens, and again after a RESET ALL.
 */
const char *fl_pg_liveness_sql(const fl_pg_t *pg);
/* fl_pg_open_opts with the defaults. */
int fl_pg_open(fl_pg_t **out, const char *dsn, const char *app,
               fl_error_t *err) FL_NODISCARD;
void fl_pg_close(fl_pg_t **pg);

/* Runs one or more commands, discarding results. */
int fl_pg_exec(fl_pg_t *pg, const char *sql, fl_error_t *err) FL_NODISCARD;
/*
 * Runs one statement of a migration as fl_pg_exec does, its rows read one
 * at a time and dropped (libpq's single-row mode), so that a statement
 * returning millions of rows holds none of them in memory.
 */
int fl_pg_run(fl_pg_t *pg, const char *sql, fl_error_t *err) FL_NODISCARD;
/*
 * Runs one statement of a migration that answers a question (validate):
 * out gets at most the first keep rows and *rows how many it returned,
 * read one at a time as fl_pg_run does.
 */
int fl_pg_run_head(fl_pg_t *pg, const char *sql, fl_pg_result_t *out,
                   size_t keep, size_t *rows, fl_error_t *err) FL_NODISCARD;
/* printf-style fl_pg_exec; format only trusted text, quote the rest. */
int fl_pg_execf(fl_pg_t *pg, fl_error_t *err, const char *fmt, ...)
    FL_PRINTF(3, 4) FL_NODISCARD;

/*
 * Runs exactly one statement, printf-style, through the extended query
 * protocol (which refuses a second statement), discarding any rows.
 * Format only trusted text; quote identifiers at use.
 */
int fl_pg_commandf(fl_pg_t *pg, fl_error_t *err, const char *fmt, ...)
    FL_PRINTF(3, 4) FL_NODISCARD;

/*
 * Runs sql with text parameters ($1...) and fills out (which the caller
 * releases) with every row.
 */
int fl_pg_query(fl_pg_t *pg, fl_pg_result_t *out, const char *sql, int nparams,
                const char *const *params, fl_error_t *err) FL_NODISCARD;
void fl_pg_result_release(fl_pg_result_t *r);
/* Value at row, col; NULL for SQL NULL. */
const char *fl_pg_value(const fl_pg_result_t *r, size_t row, size_t col);

/* fl_pg_query_value of a printf-built query (trusted text only). */
int fl_pg_query_valuef(fl_pg_t *pg, char **out, fl_error_t *err,
                       const char *fmt, ...) FL_PRINTF(4, 5) FL_NODISCARD;

/*
 * fl_pg_query through a statement prepared on this connection under name
 * (prepared on first use): for queries run often enough that planning
 * them costs more than running them.  name must be a constant that
 * always goes with the same sql.
 */
int fl_pg_query_prepared(fl_pg_t *pg, fl_pg_result_t *out, const char *name,
                         const char *sql, int nparams,
                         const char *const *params, fl_error_t *err) FL_NODISCARD;

/* fl_pg_query_value through a statement prepared as fl_pg_query_prepared. */
int fl_pg_query_prepared_value(fl_pg_t *pg, char **out, const char *name,
                               const char *sql, int nparams,
                               const char *const *params,
                               fl_error_t *err) FL_NODISCARD;

/* One statement of fl_pg_batch(). */
typedef struct {
    const char *name;           /* prepared under this name (as
                                   fl_pg_query_prepared), or NULL */
    const char *sql;            /* one statement */
    int nparams;
    const char *const *params;  /* lent for the call */
    fl_pg_result_t *out;        /* its rows (the caller releases), or NULL */
} fl_pg_step_t;

/*
 * Runs steps in order in one round trip (libpq's pipeline mode; a named
 * statement this connection has not prepared yet is prepared in the same
 * round trip), as the same statements one by one would: inside or outside
 * a transaction block, an explicit BEGIN and COMMIT among them included.
 * The first failure is returned as fl_pg_query's would be; the server
 * skips the steps after it (their out stays empty), and a transaction
 * block a step opened is left aborted for the caller to roll back.  For a
 * few statements with small results: nothing is read before all are sent.
 */
int fl_pg_batch(fl_pg_t *pg, const fl_pg_step_t *steps, size_t n,
                fl_error_t *err) FL_NODISCARD;

/*
 * The index of the step whose failure the last fl_pg_batch() returned
 * (its server error, or the connection lost while it was read); n when
 * none failed or nothing could be sent.  A COMMIT among the steps ran
 * when a later one failed, and did not when it failed itself (a deferred
 * constraint checked there: the transaction ended, rolled back).
 */
size_t fl_pg_batch_failed(const fl_pg_t *pg);

/*
 * Runs a query that returns one row and one column; *out is a new string
 * or NULL for SQL NULL.  FL_ENOTFOUND when no row.
 */
int fl_pg_query_value(fl_pg_t *pg, char **out, const char *sql, int nparams,
                      const char *const *params, fl_error_t *err) FL_NODISCARD;

/*
 * COPY ... TO STDOUT: runs sql and hands every chunk of data to sink
 * (which returns 0, or a negative code to stop with its error set).
 */
typedef int (*fl_pg_copy_sink_fn)(const char *data, size_t len, void *arg,
                                  fl_error_t *err);
int fl_pg_copy_out(fl_pg_t *pg, const char *sql, fl_pg_copy_sink_fn sink,
                   void *arg, fl_error_t *err) FL_NODISCARD;

/*
 * COPY ... FROM STDIN: runs sql and sends what source produces; source
 * fills buf (up to cap bytes), sets *len (0 at the end) and returns 0, or
 * a negative code to abort the COPY with its error set.
 */
typedef int (*fl_pg_copy_source_fn)(char *buf, size_t cap, size_t *len,
                                    void *arg, fl_error_t *err);
int fl_pg_copy_in(fl_pg_t *pg, const char *sql, fl_pg_copy_source_fn source,
                  void *arg, fl_error_t *err) FL_NODISCARD;

/* Quotes an identifier; a new string. */
char *fl_pg_quote_ident(fl_pg_t *pg, const char *name);
/*
 * Quotes a literal; a new string, or NULL when value is not valid UTF-8
 * (the caller must refuse it, never paste NULL).
 */
char *fl_pg_quote_literal(fl_pg_t *pg, const char *value);

/*
 * Interrupts the running command from another thread.  Safe at any time,
 * and returns at once: the request goes out on a thread of its own, which
 * waits as long as the server takes to answer it (pg.c).  Once a cancel
 * has stopped a statement, a later one stopped by it again (a stray: the
 * server may deliver one request twice, or late) is run again when it ran
 * on its own or was ROLLBACK (pg.c, fl_pg_cancel).
 */
void fl_pg_cancel(fl_pg_t *pg);

/*
 * Shuts the connection's socket down from another thread, so that what
 * waits on the server (a statement a cancel request did not stop: the
 * server does not answer at all) fails at once as a connection lost.
 * The server ends the session, and rolls back its transaction (unless a
 * COMMIT was on its way: the caller finds out from the ledger, as after
 * any connection lost), when it sees the connection closed.  Safe at any
 * time; the connection is unusable after.
 */
void fl_pg_abort(fl_pg_t *pg);

/*
 * Says that the cancel sent on pg has done its work (the caller saw its
 * statement stop, or stopped on its own), so that the next cancelled
 * statement counts as a stray.  No effect when no cancel was sent.
 */
void fl_pg_cancel_settled(fl_pg_t *pg);

/*
 * Whether the database is SQL_ASCII: its text is bytes no encoding
 * describes, which PostgreSQL refuses to send to flotilla's UTF-8
 * session when they are not UTF-8.
 */
int fl_pg_sql_ascii(const fl_pg_t *pg);

/*
 * sql, a query of one text column, as a query of that column that a
 * SQL_ASCII database can send: bytes above 127 written \nnn (and a
 * backslash \\); the same sql elsewhere.  New string.
 */
char *fl_pg_sendable_text_sql(const fl_pg_t *pg, const char *sql);

/* The server version number (150004), and this backend's PID. */
int fl_pg_server_version(const fl_pg_t *pg);
int fl_pg_backend_pid(const fl_pg_t *pg);
/* The session's role is a superuser (the server says so at each change). */
int fl_pg_is_superuser(const fl_pg_t *pg);
/* 1-based character position of the last error in its statement, or 0. */
int fl_pg_last_position(const fl_pg_t *pg);
/* True while the connection is usable (not lost or closed by the server). */
int fl_pg_is_open(const fl_pg_t *pg);
/* True when the connection is inside a transaction block. */
int fl_pg_in_transaction(const fl_pg_t *pg);
/* "dbname@host:port" for messages (no secrets). */
const char *fl_pg_describe(const fl_pg_t *pg);

/* Notices (RAISE NOTICE, "already exists, skipping") go to this callback. */
typedef void (*fl_pg_notice_fn)(const char *severity, const char *message,
                                void *arg);
void fl_pg_set_notice(fl_pg_t *pg, fl_pg_notice_fn fn, void *arg);

/*
 * The SQL that writes timestamptz column col as every --json output
 * shows a time: RFC 3339 in UTC, to the microsecond
 * ("2026-12-05T13:12:16.646112Z"), whatever the session's TimeZone.
 */
#define FL_PG_TIME_TEXT(col)                                                \
    "pg_catalog.to_char((" col ") AT TIME ZONE 'UTC',"                      \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#endif
