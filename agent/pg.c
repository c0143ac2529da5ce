/*
 * pg.c - the libpq wrapper (see pg.h).
 */
#include "agent/pg.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/alloc.h"
#include "common/dsn.h"
#include "common/log.h"
#include "common/str.h"

/*
 * What a cancel request needs (the server's address and the backend's
 * key), shared by the connection and the threads sending requests: the
 * last to let go frees it.
 */
typedef struct {
    PGcancel *cancel;
    char *describe;
    int refs;          /* atomic */
} s_canceller_t;

struct fl_pg {
    PGconn *conn;
    s_canceller_t *canceller;  /* guarded by cancel_lock */
    int sock;                  /* the connection's socket, -1 once closed:
                                  guarded by cancel_lock */
    pthread_mutex_t cancel_lock;
    char *describe;
    int last_position;
    size_t batch_failed;       /* fl_pg_batch_failed() */
    fl_pg_notice_fn notice_fn;
    void *notice_arg;
    char **prepared;   /* names of the statements prepared so far */
    size_t nprepared;
    /*
     * One of them was found gone from the server (26000: a DEALLOCATE ALL
     * or DISCARD a migration ran through dynamic SQL), so any may be:
     * all are deallocated and forgotten before the next one is used
     * outside a transaction (s_prepared_resync).
     */
    int prepared_lost;
    /*
     * Stray cancels (see fl_pg_cancel): sent is set, by any thread, as a
     * cancel request starts out; taken counts the statements a cancel
     * stopped since (or is set by fl_pg_cancel_settled); last_cancelled
     * says whether the statement that just failed was cancelled; strays
     * counts the statements run again.
     */
    int cancel_sent;
    int cancel_taken;
    int last_cancelled;
    int strays;
};

/* How many stray cancels a connection absorbs before it lets one fail. */
#define S_MAX_STRAYS 3

/* libpq messages end in a newline; ours never do. */
/* The longest message, detail or hint kept of an error (bytes). */
#define S_MAX_ERROR_TEXT 8192

static char *
s_strip(const char *msg)
{
    char *s = fl_strdup(msg ? msg : "");
    size_t len = strlen(s);

    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
        s[--len] = '\0';
    /*
     * The server's text is the statement's, or a tenant's trigger's
     * (RAISE EXCEPTION of any length): it goes to the console, the log,
     * the ledger and an agent's result, whose strings the coordinator
     * takes up to FL_WIRE_MAX_STR.  Cut where a character starts.
     */
    if (len > S_MAX_ERROR_TEXT) {
        size_t cut = fl_str_utf8_prefix(s, S_MAX_ERROR_TEXT);
        char *t = NULL;

        s[cut] = '\0';
        t = fl_asprintf("%s ... (%zu bytes more)", s, len - cut);
        free(s);
        s = t;
    }
    return s;
}

static void
s_notice_receiver(void *arg, const PGresult *res)
{
    fl_pg_t *pg = arg;
    char *msg = NULL;

    if (pg->notice_fn == NULL)
        return;
    msg = s_strip(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    pg->notice_fn(PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED), msg,
                  pg->notice_arg);
    free(msg);
}

/*
 * The connection parameters flotilla sets, in one place.  The first group
 * comes before the user's connection string, which may change them (a
 * longer connect_timeout, other keepalives); the second after it, because
 * flotilla depends on them: its own application_name (sessions are
 * recognised by it), and UTF-8, the encoding every migration file and
 * bundle is validated in (a LATIN1 database stored "café" as "cafÃ©"
 * otherwise).  search_path is pinned with the first query (fl_pg_open).
 */
static const char *const s_before_keys[] = {
    "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout",
};
static const char *const s_before_vals[] = {
    "10", "1", "30", "10", "3", "30000",
};

/*
 * The server's side of the same (see fl_pg_liveness_sql): its keepalives
 * and, from PostgreSQL 14, client_connection_check_interval.
 */
#define S_LIVENESS_12                                                       \
    "SELECT pg_catalog.set_config('tcp_keepalives_idle', '30', false),"     \
    " pg_catalog.set_config('tcp_keepalives_interval', '10', false),"       \
    " pg_catalog.set_config('tcp_keepalives_count', '3', false),"           \
    " pg_catalog.set_config('tcp_user_timeout', '30000', false)"
#define S_LIVENESS_14                                                       \
    S_LIVENESS_12 ", pg_catalog.set_config("                                \
    "'client_connection_check_interval', '1000', false)"

const char *
fl_pg_liveness_sql(const fl_pg_t *pg)
{
    return fl_pg_server_version(pg) >= 140000 ? S_LIVENESS_14
                                               : S_LIVENESS_12;
}

/* Waits for the connection's socket as PQconnectPoll asks, in slices. */
static int
s_wait_socket(PGconn *conn, PostgresPollingStatusType st, int ms)
{
    struct pollfd pfd;

    pfd.fd = PQsocket(conn);
    pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    pfd.revents = 0;
    if (pfd.fd < 0)
        return -1;
    return poll(&pfd, 1, ms);
}

int
fl_pg_open_opts(fl_pg_t **out, const char *dsn, const char *app,
                const fl_pg_connect_opts_t *o, fl_error_t *err)
{
    enum { S_NBEFORE = sizeof(s_before_keys) / sizeof(s_before_keys[0]) };
    const char *keys[S_NBEFORE + 4];
    const char *vals[S_NBEFORE + 4];
    fl_pg_t *pg = fl_calloc(1, sizeof(*pg));
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    int64_t deadline = 0, timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms
                                                               : 10000;
    char *msg = NULL;
    size_t n = 0;
    struct timespec ts;

    *out = NULL;
    pg->sock = -1;
    pthread_mutex_init(&pg->cancel_lock, NULL);
    pg->describe = fl_dsn_describe(dsn && *dsn ? dsn : "");
    if (dsn && *dsn && fl_dsn_check(dsn, err) != 0) {
        fl_pg_close(&pg);
        return FL_EINVAL;
    }
    for (size_t i = 0; i < S_NBEFORE; i++) {
        keys[n] = s_before_keys[i];
        vals[n++] = s_before_vals[i];
    }
    keys[n] = "dbname";
    vals[n++] = dsn && *dsn ? dsn : NULL;
    keys[n] = "application_name";
    vals[n++] = app;
    keys[n] = "client_encoding";
    vals[n++] = "UTF8";
    keys[n] = NULL;
    vals[n] = NULL;
    /*
     * Connecting without blocking, so that the wait is bounded by our own
     * deadline and a cancel (a daemon stopping, a rollout halted) ends it.
     */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
    pg->conn = PQconnectStartParams(keys, vals, 1);
    if (pg->conn == NULL || PQstatus(pg->conn) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        int64_t now;
        if (o && o->cancel && __atomic_load_n(o->cancel, __ATOMIC_SEQ_CST)) {
            FL_ERR(err, FL_ECANCELLED, "connecting to database \"%s\" was "
                   "cancelled", pg->describe);
            fl_pg_close(&pg);
            return FL_ECANCELLED;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (now >= deadline) {
            FL_ERR(err, FL_ETIMEOUT, "could not connect to database \"%s\" "
                   "within %lld ms", pg->describe, (long long)timeout_ms);
            fl_error_set_hint(err, "Check that the server is up and "
                                   "reachable from here.");
            fl_pg_close(&pg);
            return FL_ETIMEOUT;
        }
        if (s_wait_socket(pg->conn, st, (int)(deadline - now < 100
                                                  ? deadline - now : 100)) < 0)
            break;
        st = PQconnectPoll(pg->conn);
    }
    if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        msg = s_strip(pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
        FL_ERR(err, FL_EDB, "could not connect to database \"%s\"",
               pg->describe);
        fl_error_set_detail(err, "%s", msg);
        fl_error_set_hint(err, "Check --db (a libpq connection string or "
                               "URI) or the PGHOST, PGPORT, PGUSER and "
                               "PGDATABASE variables.");
        free(msg);
        fl_pg_close(&pg);
        return FL_EDB;
    }
    pg->sock = PQsocket(pg->conn);
    {
        PGcancel *c = PQgetCancel(pg->conn);
        if (c != NULL) {
            pg->canceller = fl_calloc(1, sizeof(*pg->canceller));
            pg->canceller->cancel = c;
            pg->canceller->describe = fl_strdup(pg->describe);
            pg->canceller->refs = 1;
        }
    }
    PQsetNoticeReceiver(pg->conn, s_notice_receiver, pg);
    /*
     * Nothing a tenant creates may run in place of a built-in: flotilla's
     * queries never search a schema the tenant can write (DESIGN.md,
     * guarantee 6).  The migration's statements get the path they ask for
     * (agent/session.c).
     */
    {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        char *sql = fl_asprintf("%s, pg_catalog.set_config('search_path',"
                                " 'pg_catalog, pg_temp', false)",
                                fl_pg_liveness_sql(pg));
        int rc = fl_pg_query(pg, &r, sql, 0, NULL, err);

        free(sql);
        fl_pg_result_release(&r);
        if (rc != 0) {
            fl_pg_close(&pg);
            return rc;
        }
    }
    *out = pg;
    return 0;
}

int
fl_pg_open(fl_pg_t **out, const char *dsn, const char *app, fl_error_t *err)
{
    return fl_pg_open_opts(out, dsn, app, NULL, err);
}

static void
s_canceller_unref(s_canceller_t *c)
{
    if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    PQfreeCancel(c->cancel);
    free(c->describe);
    free(c);
}

void
fl_pg_close(fl_pg_t **pgp)
{
    fl_pg_t *pg = pgp ? *pgp : NULL;
    s_canceller_t *c = NULL;

    if (pg == NULL)
        return;
    pthread_mutex_lock(&pg->cancel_lock);
    c = pg->canceller;
    pg->canceller = NULL;
    pg->sock = -1; /* before PQfinish closes it: fl_pg_abort */
    pthread_mutex_unlock(&pg->cancel_lock);
    s_canceller_unref(c);
    if (pg->conn)
        PQfinish(pg->conn);
    pthread_mutex_destroy(&pg->cancel_lock);
    for (size_t i = 0; i < pg->nprepared; i++)
        free(pg->prepared[i]);
    free(pg->prepared);
    free(pg->describe);
    free(pg);
    *pgp = NULL;
}

/* A cancel request, on a thread of its own (fl_pg_cancel). */
static void *
s_cancel_main(void *arg)
{
    s_canceller_t *c = arg;
    char buf[256];

    buf[0] = '\0';
    if (PQcancel(c->cancel, buf, sizeof(buf)) != 1)
        fl_log_warning("flotilla", "could not cancel the statement running "
                       "on %s: %s", c->describe, buf);
    s_canceller_unref(c);
    return NULL;
}

void
fl_pg_cancel(fl_pg_t *pg)
{
    s_canceller_t *c = NULL;
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    int rc = -1;

    if (pg == NULL)
        return;
    /*
     * A cancel request is a connection of its own to the postmaster: on a
     * loaded server it can fail, and the statement then runs on (holding
     * its locks) while the caller believes it cancelled, so a failure is
     * said.  It is not sent again: PQcancel also reports failure when the
     * request went out but the postmaster's answer did not come back, and
     * a second request would cancel whatever runs next (the bookkeeping
     * of the first).
     *
     * PQcancel waits for the postmaster's answer without a deadline (and
     * for the connection to it, as long as the network takes): a server
     * that hangs, or a network that drops its packets, keeps it waiting
     * as long.  So it runs on a detached thread of its own, never the
     * caller's: the agent's loop called it, and stopped serving every
     * target while one server did not answer; the signal thread of
     * `flotilla` did, and could not take the second signal that exits at
     * once (test_interrupt.c, test_a_second_signal_exits_while_the_
     * cancel_waits; tests/integration/test_fleet.c, test_fleet_a_cancel_
     * to_a_server_that_hangs_stalls_nothing_else).  Only when no thread
     * can be made does the caller send it.
     *
     * One request can still stop two statements: the postmaster signals
     * the backend and then its process group, and a signal that comes
     * after its statement ended cancels the next one (test_interrupt.c,
     * test_a_stray_cancel_after_ours_does_not_lose_the_failure_row).  So
     * once a cancel has stopped a statement (or the caller said it is
     * settled), a later statement cancelled "by user request" that ran on
     * its own (no transaction open before or after it; one statement, by
     * the extended protocol: fl_pg_query, never fl_pg_exec's text, which
     * may hold a COMMIT before the statement cancelled), or a ROLLBACK,
     * is run again, S_MAX_STRAYS times at most: it did nothing, and it is
     * the bookkeeping of the cancelled work.
     */
    pthread_mutex_lock(&pg->cancel_lock);
    /* Before the request: the statement it stops may fail before
     * PQcancel returns. */
    __atomic_store_n(&pg->cancel_sent, 1, __ATOMIC_SEQ_CST);
    if ((c = pg->canceller) != NULL)
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&pg->cancel_lock);
    if (c == NULL)
        return;
    /* Signals are the process's other threads' to take. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_attr_init(&attr) == 0) {
        if (pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) ==
            0)
            rc = pthread_create(&t, &attr, s_cancel_main, c);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        (void)s_cancel_main(c);
}

void
fl_pg_abort(fl_pg_t *pg)
{
    if (pg == NULL)
        return;
    /* Under the lock, so that a socket closed and its number reused is
     * never shut down in its place. */
    pthread_mutex_lock(&pg->cancel_lock);
    if (pg->sock >= 0)
        (void)shutdown(pg->sock, SHUT_RDWR);
    pthread_mutex_unlock(&pg->cancel_lock);
}

/*
 * Ends a COPY the server started with the client (a statement's COPY ...
 * FROM STDIN or TO STDOUT), which flotilla neither feeds nor reads: the
 * COPY FROM fails with no data, the rows of a COPY TO are dropped, and
 * the connection is ready for the next query.
 */
static void
s_copy_end(fl_pg_t *pg, ExecStatusType st)
{
    PGresult *r = NULL;
    char *buf = NULL;

    if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
        (void)PQputCopyEnd(pg->conn, "flotilla sends no COPY data");
    if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
        while (PQgetCopyData(pg->conn, &buf, 0) > 0) {
            PQfreemem(buf);
            buf = NULL;
        }
    while ((r = PQgetResult(pg->conn)) != NULL)
        PQclear(r);
}

/* A result that starts a COPY with the client, ended (s_copy_end). */
static int
s_copy_error(fl_pg_t *pg, ExecStatusType st, fl_error_t *err)
{
    s_copy_end(pg, st);
    pg->last_position = 0;
    pg->last_cancelled = 0;
    FL_ERR(err, FL_EDB, "the statement is a COPY %s the client, which "
           "flotilla does not serve", st == PGRES_COPY_OUT ? "to" : "from");
    fl_error_set_hint(err, "COPY from or to a file on the database server "
                           "instead, or write the rows as SQL.");
    return FL_EDB;
}

/* Converts a failed result into err; returns FL_EDB. */
static int
s_result_error(fl_pg_t *pg, const PGresult *res, fl_error_t *err)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                              : NULL;
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION)
                          : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                            : NULL;
    char *msg = NULL;

    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
        return s_copy_error(pg, st, err);
    msg = s_strip(primary ? primary : PQerrorMessage(pg->conn));
    pg->last_position = pos ? (int)strtol(pos, NULL, 10) : 0;
    pg->last_cancelled = state != NULL && strcmp(state, "57014") == 0;
    if (pg->last_cancelled &&
        __atomic_load_n(&pg->cancel_sent, __ATOMIC_SEQ_CST))
        pg->cancel_taken++;
    FL_ERR(err, FL_EDB, "%s", msg);
    free(msg);
    if (res && err) {
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
        if (detail) {
            char *d = s_strip(detail);
            fl_error_set_detail(err, "%s", d);
            free(d);
        }
        if (hint) {
            char *h = s_strip(hint);
            fl_error_set_hint(err, "%s", h);
            free(h);
        }
        fl_error_set_sqlstate(err, PQresultErrorField(res, PG_DIAG_SQLSTATE));
        /*
         * Flotilla's own queries run with row_security off (session.c), so
         * that a policy neither hides rows from a backup or a check nor
         * runs a tenant's code as flotilla's role: where one would apply,
         * PostgreSQL refuses the query, and only the role can change that.
         */
        /*
         * A statement_timeout flotilla did not set (its own queries run
         * under the connection's default, which the database, the role
         * or PGOPTIONS may give): say where to change it.  A migration's
         * statement gets a hint of its own (runner.c).
         */
        if (state && strcmp(state, "57014") == 0 && hint == NULL &&
            primary && strstr(primary, "statement timeout"))
            fl_error_set_hint(err, "The connection's statement_timeout "
                              "stopped it; flotilla's own queries run under "
                              "the default the database or the role gives "
                              "(ALTER DATABASE ... SET statement_timeout, "
                              "ALTER ROLE ... SET statement_timeout) or "
                              "PGOPTIONS: raise it for the role flotilla "
                              "connects as, or run flotilla with "
                              "PGOPTIONS='-c statement_timeout=0'.");
        /*
         * "due to user request" with no cancel of flotilla's: another
         * session's pg_cancel_backend, or the statement timeout itself,
         * which PostgreSQL 15 can report so when it fires as a statement
         * ends (a CI run saw it with a default of 1 ms).
         */
        else if (state && strcmp(state, "57014") == 0 && hint == NULL &&
                 primary && strstr(primary, "user request") &&
                 !__atomic_load_n(&pg->cancel_sent, __ATOMIC_SEQ_CST))
            fl_error_set_hint(err, "Flotilla did not cancel it: another "
                              "session did (pg_cancel_backend), or the "
                              "connection's statement timeout did, which "
                              "PostgreSQL can report so.  A statement_timeout "
                              "flotilla did not set comes from the database "
                              "or the role (ALTER DATABASE ... SET "
                              "statement_timeout, ALTER ROLE ... SET "
                              "statement_timeout) or PGOPTIONS: raise it for "
                              "the role flotilla connects as, or run flotilla "
                              "with PGOPTIONS='-c statement_timeout=0'.");
        /*
         * A read-only transaction flotilla did not ask for: a standby, or
         * a default of the database's, the role's or PGOPTIONS'.
         */
        if (state && strcmp(state, "25006") == 0 && hint == NULL)
            fl_error_set_hint(err, "The transaction is read only: the server "
                              "is a hot standby (connect to the primary), "
                              "or default_transaction_read_only is on for "
                              "the database, the role or PGOPTIONS (ALTER "
                              "DATABASE ... SET default_transaction_read_only"
                              " = off), or a migration said SET TRANSACTION "
                              "READ ONLY.");
        if (state && strcmp(state, "42501") == 0 && primary &&
            strstr(primary, "row-level security"))
            fl_error_set_hint(err, "Flotilla reads and restores whole tables "
                              "with row security off, as pg_dump does: "
                              "connect as a role with BYPASSRLS (ALTER ROLE "
                              "... BYPASSRLS) or a superuser.");
    }
    return FL_EDB;
}

void
fl_pg_cancel_settled(fl_pg_t *pg)
{
    if (pg != NULL && pg->cancel_taken == 0 &&
        __atomic_load_n(&pg->cancel_sent, __ATOMIC_SEQ_CST))
        pg->cancel_taken = 1;
}

/*
 * Whether the statement that just failed is to run again: a stray cancel
 * (see fl_pg_cancel).  taken: pg->cancel_taken before it; before: the
 * transaction status before it; rollback: it was ROLLBACK.
 */
static int
s_stray(fl_pg_t *pg, int taken, PGTransactionStatusType before, int rollback,
        fl_error_t *err)
{
    PGTransactionStatusType now = PQtransactionStatus(pg->conn);

    if (!pg->last_cancelled || taken == 0 || pg->strays >= S_MAX_STRAYS)
        return 0;
    if (!(before == PQTRANS_IDLE && now == PQTRANS_IDLE) &&
        !(rollback && now == before))
        return 0;
    pg->strays++;
    fl_log_warning("flotilla", "a cancel request stopped a statement on %s "
                   "after the one it was sent for; running it again (%d of "
                   "%d)", pg->describe, pg->strays, S_MAX_STRAYS);
    fl_error_clear(err);
    return 1;
}

int
fl_pg_exec(fl_pg_t *pg, const char *sql, fl_error_t *err)
{
    int rc, taken;
    PGTransactionStatusType before;

    do {
        PGresult *res = NULL;
        ExecStatusType st;

        taken = pg->cancel_taken;
        before = PQtransactionStatus(pg->conn);
        res = PQexec(pg->conn, sql);
        st = PQresultStatus(res);
        rc = 0;
        pg->last_position = 0;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
            st != PGRES_EMPTY_QUERY)
            rc = s_result_error(pg, res, err);
        PQclear(res);
    } while (rc != 0 && strcmp(sql, "ROLLBACK") == 0 &&
             s_stray(pg, taken, before, 1, err));
    return rc;
}

int
fl_pg_execf(fl_pg_t *pg, fl_error_t *err, const char *fmt, ...)
{
    va_list ap;
    char *sql = NULL;
    int rc;

    va_start(ap, fmt);
    sql = fl_vasprintf(fmt, ap);
    va_end(ap);
    rc = fl_pg_exec(pg, sql, err);
    free(sql);
    return rc;
}

int
fl_pg_commandf(fl_pg_t *pg, fl_error_t *err, const char *fmt, ...)
{
    va_list ap;
    char *sql = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    va_start(ap, fmt);
    sql = fl_vasprintf(fmt, ap);
    va_end(ap);
    rc = fl_pg_query(pg, &r, sql, 0, NULL, err);
    fl_pg_result_release(&r);
    free(sql);
    return rc;
}

int
fl_pg_query_valuef(fl_pg_t *pg, char **out, fl_error_t *err, const char *fmt,
                   ...)
{
    va_list ap;
    char *sql = NULL;
    int rc;

    va_start(ap, fmt);
    sql = fl_vasprintf(fmt, ap);
    va_end(ap);
    rc = fl_pg_query_value(pg, out, sql, 0, NULL, err);
    free(sql);
    return rc;
}

void
fl_pg_result_release(fl_pg_result_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->ncols; i++)
        free(r->names[i]);
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->values[i]);
    fl_free(&r->names);
    fl_free(&r->values);
    r->nrows = r->ncols = 0;
}

/*
 * Turns res into out (rows, appended to those out has) or err; clears
 * res.  Rows may come one result at a time: libpq keeps the single-row
 * mode of a statement fl_pg_run ran for the first command of a pipeline
 * that follows it (it resets the mode when the next command starts
 * outside a pipeline, and between a pipeline's commands), so that
 * command's rows arrive as PGRES_SINGLE_TUPLE results and a TUPLES_OK
 * without rows ends them.
 */
static int
s_collect(fl_pg_t *pg, PGresult *res, fl_pg_result_t *out, fl_error_t *err)
{
    ExecStatusType st = PQresultStatus(res);
    size_t first = out->nrows, n = (size_t)PQntuples(res);
    int rc = 0;

    if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE) {
        if (st != PGRES_COMMAND_OK)
            rc = s_result_error(pg, res, err);
        PQclear(res);
        return rc;
    }
    if (out->names == NULL) {
        out->ncols = (size_t)PQnfields(res);
        out->names = fl_calloc(out->ncols ? out->ncols : 1, sizeof(char *));
        for (size_t c = 0; c < out->ncols; c++)
            out->names[c] = fl_strdup(PQfname(res, (int)c));
    }
    /* Never NULL once collected, as the names: room for one at least. */
    out->values = fl_reallocarray(out->values,
                                  (first + n) * out->ncols + 1,
                                  sizeof(char *));
    memset(out->values + first * out->ncols, 0,
           (n * out->ncols + 1) * sizeof(char *));
    out->nrows = first + n;
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < out->ncols; c++)
            if (!PQgetisnull(res, (int)r, (int)c))
                out->values[(first + r) * out->ncols + c] =
                    fl_strdup(PQgetvalue(res, (int)r, (int)c));
    PQclear(res);
    return 0;
}

/* What s_query sends. */
typedef enum {
    S_PARAMS,   /* sql with params */
    S_PREPARE,  /* prepares sql as name */
    S_PREPARED  /* the statement prepared as name, with params */
} s_send;

/* One s_send of s_query. */
static PGresult *
s_send_once(fl_pg_t *pg, s_send how, const char *name, const char *sql,
            int nparams, const char *const *params)
{
    switch (how) {
    case S_PREPARE:
        return PQprepare(pg->conn, name, sql, nparams, NULL);
    case S_PREPARED:
        return PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0);
    default:
        return PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL,
                            0);
    }
}

/*
 * Sends sql or the prepared statement name (how) with params, its rows
 * into out; again after a stray cancel (s_stray).
 */
static int
s_query(fl_pg_t *pg, fl_pg_result_t *out, s_send how, const char *name,
        const char *sql, int nparams, const char *const *params,
        fl_error_t *err)
{
    int rc, taken;
    PGTransactionStatusType before;

    do {
        taken = pg->cancel_taken;
        before = PQtransactionStatus(pg->conn);
        memset(out, 0, sizeof(*out));
        pg->last_position = 0;
        rc = s_collect(pg, s_send_once(pg, how, name, sql, nparams, params),
                       out, err);
    } while (rc != 0 && s_stray(pg, taken, before, 0, err));
    return rc;
}

int
fl_pg_query(fl_pg_t *pg, fl_pg_result_t *out, const char *sql, int nparams,
            const char *const *params, fl_error_t *err)
{
    return s_query(pg, out, S_PARAMS, NULL, sql, nparams, params, err);
}

int
fl_pg_run_head(fl_pg_t *pg, const char *sql, fl_pg_result_t *out,
               size_t keep, size_t *rows, fl_error_t *err)
{
    PGresult *res = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    *rows = 0;
    pg->last_position = 0;
    if (!PQsendQuery(pg->conn, sql))
        return s_result_error(pg, NULL, err);
    (void)PQsetSingleRowMode(pg->conn);
    while ((res = PQgetResult(pg->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);

        if (st == PGRES_SINGLE_TUPLE)
            (*rows)++;
        /* Kept: the first rows, and the column names of none. */
        if (rc == 0 && (st == PGRES_TUPLES_OK ||
                        (st == PGRES_SINGLE_TUPLE && *rows <= keep)))
            rc = s_collect(pg, res, out, err); /* clears res */
        else if (rc == 0 && st != PGRES_SINGLE_TUPLE &&
                 st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY)
            rc = s_result_error(pg, res, err), PQclear(res);
        else
            PQclear(res);
    }
    if (rc != 0)
        fl_pg_result_release(out);
    return rc;
}

int
fl_pg_run(fl_pg_t *pg, const char *sql, fl_error_t *err)
{
    fl_pg_result_t none = FL_PG_RESULT_INIT;
    size_t rows = 0;
    int rc = fl_pg_run_head(pg, sql, &none, 0, &rows, err);

    fl_pg_result_release(&none);
    return rc;
}

/* Whether this connection has prepared name. */
static int
s_is_prepared(const fl_pg_t *pg, const char *name)
{
    for (size_t i = 0; i < pg->nprepared; i++)
        if (strcmp(pg->prepared[i], name) == 0)
            return 1;
    return 0;
}

/*
 * err, a failure of a statement this connection prepared, says it is gone
 * from the server: which others are is unknown (s_prepared_resync), and
 * what removed them is said.
 */
static void
s_prepared_gone(fl_pg_t *pg, int rc, fl_error_t *err)
{
    if (rc != FL_EDB || err == NULL || strcmp(err->sqlstate, "26000") != 0)
        return;
    pg->prepared_lost = 1;
    if (err->detail == NULL)
        fl_error_set_detail(err, "Flotilla prepares its statements on the "
                            "migration's connection; a statement it ran "
                            "removed them (DEALLOCATE or DISCARD, which a DO "
                            "block or a function can run where the linter "
                            "does not see it).  The transaction it was in is "
                            "rolled back.");
    if (err->hint == NULL)
        fl_error_set_hint(err, "Remove the DEALLOCATE or DISCARD from the "
                          "migration.");
}

/*
 * After s_prepared_gone, outside a transaction: the statements still
 * prepared are removed and all forgotten, to be prepared again.
 */
static int
s_prepared_resync(fl_pg_t *pg, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    if (!pg->prepared_lost || PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        return 0;
    if ((rc = s_query(pg, &r, S_PARAMS, NULL, "DEALLOCATE ALL", 0, NULL,
                      err)) != 0)
        return rc;
    fl_pg_result_release(&r);
    for (size_t i = 0; i < pg->nprepared; i++)
        free(pg->prepared[i]);
    pg->nprepared = 0;
    pg->prepared_lost = 0;
    return 0;
}

/* Prepares sql as name on this connection unless it has already. */
static int
s_prepare(fl_pg_t *pg, fl_pg_result_t *out, const char *name, const char *sql,
          int nparams, fl_error_t *err)
{
    int rc;

    if (s_is_prepared(pg, name))
        return 0;
    /* Prepared statements outlive a rolled-back transaction. */
    if ((rc = s_query(pg, out, S_PREPARE, name, sql, nparams, NULL, err)) != 0)
        return rc;
    fl_pg_result_release(out);
    pg->prepared = fl_reallocarray(pg->prepared, pg->nprepared + 1,
                                   sizeof(char *));
    pg->prepared[pg->nprepared++] = fl_strdup(name);
    return 0;
}

int
fl_pg_query_prepared(fl_pg_t *pg, fl_pg_result_t *out, const char *name,
                     const char *sql, int nparams, const char *const *params,
                     fl_error_t *err)
{
    int rc = s_prepared_resync(pg, err);

    if (rc == 0)
        rc = s_prepare(pg, out, name, sql, nparams, err);
    if (rc == 0)
        rc = s_query(pg, out, S_PREPARED, name, sql, nparams, params, err);
    /*
     * Gone from the server: prepared again, once, where no transaction was
     * aborted by the failure.
     */
    s_prepared_gone(pg, rc, err);
    if (pg->prepared_lost && rc == FL_EDB &&
        PQtransactionStatus(pg->conn) == PQTRANS_IDLE) {
        fl_error_clear(err);
        rc = s_prepared_resync(pg, err);
        if (rc == 0)
            rc = s_prepare(pg, out, name, sql, nparams, err);
        if (rc == 0)
            rc = s_query(pg, out, S_PREPARED, name, sql, nparams, params,
                         err);
    }
    return rc;
}


/*
 * Reads the results of one pipelined command up to its terminating NULL
 * into out (may be NULL); the first failure goes to err unless one is
 * there already (*rc nonzero).
 */
static void
s_batch_read(fl_pg_t *pg, fl_pg_result_t *out, int *rc, fl_error_t *err)
{
    fl_pg_result_t ignore = FL_PG_RESULT_INIT;
    PGresult *res = NULL;

    while ((res = PQgetResult(pg->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);

        if (st == PGRES_PIPELINE_ABORTED) {
            PQclear(res);
        } else if (*rc != 0 && st != PGRES_TUPLES_OK &&
                   st != PGRES_COMMAND_OK) {
            /* A later failure than the first: only the first is told. */
            PQclear(res);
        } else {
            int r = s_collect(pg, res, out ? out : &ignore,
                              *rc != 0 ? NULL : err);
            if (*rc == 0)
                *rc = r;
            fl_pg_result_release(&ignore);
        }
    }
}

int
fl_pg_batch(fl_pg_t *pg, const fl_pg_step_t *steps, size_t n,
            fl_error_t *err)
{
    char **naming = fl_calloc(n + 1, sizeof(char *));
    int *prepare = fl_calloc(n + 1, sizeof(int));
    int rc = 0, sent = 1;
    PGresult *res = NULL;

    pg->last_position = 0;
    pg->batch_failed = n;
    for (size_t i = 0; i < n; i++)
        if (steps[i].out != NULL)
            memset(steps[i].out, 0, sizeof(*steps[i].out));
    if ((rc = s_prepared_resync(pg, err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        prepare[i] = steps[i].name != NULL && !s_is_prepared(pg, steps[i].name);
        for (size_t j = 0; prepare[i] && j < i; j++)
            if (prepare[j] && strcmp(steps[j].name, steps[i].name) == 0)
                prepare[i] = 0;
    }
    if (PQenterPipelineMode(pg->conn) != 1) {
        rc = FL_ERR(err, FL_EDB, "could not send statements to the server: "
                    "%s", PQerrorMessage(pg->conn));
        goto cleanup;
    }
    for (size_t i = 0; i < n && sent; i++) {
        const fl_pg_step_t *s = &steps[i];
        if (prepare[i])
            sent = PQsendPrepare(pg->conn, s->name, s->sql, s->nparams,
                                 NULL) == 1;
        if (sent && s->name != NULL)
            sent = PQsendQueryPrepared(pg->conn, s->name, s->nparams,
                                       s->params, NULL, NULL, 0) == 1;
        else if (sent)
            sent = PQsendQueryParams(pg->conn, s->sql, s->nparams, NULL,
                                     s->params, NULL, NULL, 0) == 1;
    }
    if (!sent || PQpipelineSync(pg->conn) != 1) {
        rc = FL_ERR(err, FL_EDB, "could not send statements to the server: "
                    "%s", PQerrorMessage(pg->conn));
        /* What was sent is read below, up to the connection's failure. */
    }
    for (size_t i = 0; i < n && sent; i++) {
        int before = rc;

        if (prepare[i]) {
            s_batch_read(pg, NULL, &rc, err);
            if (before == 0 && rc == 0)
                naming[i] = fl_strdup(steps[i].name);
        }
        s_batch_read(pg, steps[i].out, &rc, err);
        if (before == 0 && rc != 0)
            pg->batch_failed = i;
    }
    /* The sync's own result, then out of pipeline mode. */
    while (sent && (res = PQgetResult(pg->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    if (PQexitPipelineMode(pg->conn) != 1 && rc == 0)
        rc = FL_ERR(err, FL_EDB, "could not leave pipeline mode: %s",
                    PQerrorMessage(pg->conn));
    for (size_t i = 0; i < n; i++) {
        if (naming[i] == NULL)
            continue;
        pg->prepared = fl_reallocarray(pg->prepared, pg->nprepared + 1,
                                       sizeof(char *));
        pg->prepared[pg->nprepared++] = naming[i];
        naming[i] = NULL;
    }
    s_prepared_gone(pg, rc, err);
cleanup:
    for (size_t i = 0; i < n; i++)
        free(naming[i]);
    free(naming);
    free(prepare);
    return rc;
}

const char *
fl_pg_value(const fl_pg_result_t *r, size_t row, size_t col)
{
    if (row >= r->nrows || col >= r->ncols)
        return NULL;
    return r->values[row * r->ncols + col];
}

/* The first value of r (released) into *out, as fl_pg_query_value's. */
static int
s_first_value(fl_pg_result_t *r, int rc, char **out, fl_error_t *err)
{
    *out = NULL;
    if (rc != 0)
        return rc;
    if (r->nrows == 0 || r->ncols == 0) {
        fl_pg_result_release(r);
        return FL_ERR(err, FL_ENOTFOUND, "query returned no rows");
    }
    if (r->values[0])
        *out = fl_strdup(r->values[0]);
    fl_pg_result_release(r);
    return 0;
}

int
fl_pg_query_value(fl_pg_t *pg, char **out, const char *sql, int nparams,
                  const char *const *params, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query(pg, &r, sql, nparams, params, err);

    return s_first_value(&r, rc, out, err);
}

int
fl_pg_query_prepared_value(fl_pg_t *pg, char **out, const char *name,
                           const char *sql, int nparams,
                           const char *const *params, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query_prepared(pg, &r, name, sql, nparams, params, err);

    return s_first_value(&r, rc, out, err);
}

char *
fl_pg_quote_ident(fl_pg_t *pg, const char *name)
{
    char *q = PQescapeIdentifier(pg->conn, name, strlen(name));
    char *copy = NULL;

    if (q == NULL) {
        /*
         * libpq refuses only text invalid in the client encoding; such a
         * name cannot match a catalog entry, so quote it by hand (doubling
         * quotes) and let the server report the missing object.
         */
        size_t len = strlen(name);
        char *s = fl_malloc(2 * len + 3);
        char *p = s;
        *p++ = '"';
        for (size_t i = 0; i < len; i++) {
            if (name[i] == '"')
                *p++ = '"';
            *p++ = name[i];
        }
        *p++ = '"';
        *p = '\0';
        return s;
    }
    copy = fl_strdup(q);
    PQfreemem(q);
    return copy;
}

char *
fl_pg_quote_literal(fl_pg_t *pg, const char *value)
{
    char *q = PQescapeLiteral(pg->conn, value, strlen(value));
    char *copy = NULL;

    /* Only text invalid in the client encoding (UTF-8) fails. */
    if (q == NULL)
        return NULL;
    copy = fl_strdup(q);
    PQfreemem(q);
    return copy;
}

int
fl_pg_server_version(const fl_pg_t *pg)
{
    return PQserverVersion(pg->conn);
}

int
fl_pg_backend_pid(const fl_pg_t *pg)
{
    return PQbackendPID(pg->conn);
}

int
fl_pg_is_superuser(const fl_pg_t *pg)
{
    const char *v = pg && pg->conn ? PQparameterStatus(pg->conn, "is_superuser")
                                   : NULL;

    return v != NULL && strcmp(v, "on") == 0;
}

size_t
fl_pg_batch_failed(const fl_pg_t *pg)
{
    return pg->batch_failed;
}

int
fl_pg_last_position(const fl_pg_t *pg)
{
    return pg->last_position;
}

int
fl_pg_is_open(const fl_pg_t *pg)
{
    return pg != NULL && PQstatus(pg->conn) == CONNECTION_OK;
}

int
fl_pg_in_transaction(const fl_pg_t *pg)
{
    PGTransactionStatusType st = PQtransactionStatus(pg->conn);

    return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

const char *
fl_pg_describe(const fl_pg_t *pg)
{
    return pg->describe;
}

void
fl_pg_set_notice(fl_pg_t *pg, fl_pg_notice_fn fn, void *arg)
{
    pg->notice_fn = fn;
    pg->notice_arg = arg;
}

/*
 * A SQL_ASCII database's text is bytes no encoding describes (a legacy
 * database's LATIN1 beside UTF-8), which PostgreSQL refuses to send to a
 * UTF-8 client ("invalid byte sequence"): a backup's COPY reads them, and
 * a restore's writes them, as they are (client_encoding SQL_ASCII for the
 * COPY, UTF-8 again after it).  Any other database's COPY is converted as
 * before, so files written before read the same.  Returns the COPY's SQL
 * to send (new).
 */
static char *
s_copy_sql(fl_pg_t *pg, const char *sql)
{
    if (fl_pg_sql_ascii(pg))
        return fl_asprintf("SET client_encoding = 'SQL_ASCII'; %s", sql);
    return fl_strdup(sql);
}

int
fl_pg_sql_ascii(const fl_pg_t *pg)
{
    const char *enc = PQparameterStatus(pg->conn, "server_encoding");

    return enc != NULL && strcmp(enc, "SQL_ASCII") == 0;
}

char *
fl_pg_sendable_text_sql(const fl_pg_t *pg, const char *sql)
{
    if (!fl_pg_sql_ascii(pg))
        return fl_strdup(sql);
    return fl_asprintf("SELECT pg_catalog.encode(pg_catalog.convert_to(s.v,"
                       " 'SQL_ASCII'), 'escape') FROM (%s) s(v)", sql);
}

/* After s_copy_sql's COPY: UTF-8 again (a failure rolls the SET back). */
static void
s_copy_done(fl_pg_t *pg)
{
    const char *enc = PQparameterStatus(pg->conn, "client_encoding");
    PGresult *res = NULL;

    if (enc == NULL || strcmp(enc, "UTF8") == 0 ||
        PQtransactionStatus(pg->conn) == PQTRANS_INERROR)
        return;
    res = PQexec(pg->conn, "SET client_encoding = 'UTF8'");
    PQclear(res);
}

static int
s_copy_out(fl_pg_t *pg, const char *copy, fl_pg_copy_sink_fn sink,
           void *arg, fl_error_t *err)
{
    char *sql = s_copy_sql(pg, copy);
    PGresult *res = PQexec(pg->conn, sql);
    int rc = 0;

    free(sql);

    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        rc = s_result_error(pg, res, err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(pg->conn, &buf, 0);
        if (n == -1)
            break; /* done; the final result follows */
        if (n < 0) {
            rc = FL_ERR(err, FL_EDB, "COPY failed: %s",
                        PQerrorMessage(pg->conn));
            break;
        }
        if (rc == 0)
            rc = sink(buf, (size_t)n, arg, err);
        PQfreemem(buf);
        /* After a sink error keep reading: the protocol must reach its end. */
    }
    while ((res = PQgetResult(pg->conn)) != NULL) {
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = s_result_error(pg, res, err);
        PQclear(res);
    }
    return rc;
}

int
fl_pg_copy_out(fl_pg_t *pg, const char *sql, fl_pg_copy_sink_fn sink,
               void *arg, fl_error_t *err)
{
    int rc = s_copy_out(pg, sql, sink, arg, err);

    s_copy_done(pg);
    return rc;
}

static int
s_copy_in(fl_pg_t *pg, const char *copy, fl_pg_copy_source_fn source,
          void *arg, fl_error_t *err)
{
    char *sql = s_copy_sql(pg, copy);
    PGresult *res = PQexec(pg->conn, sql);
    char buf[65536];
    int rc = 0;

    free(sql);

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = s_result_error(pg, res, err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    for (;;) {
        size_t len = 0;
        if ((rc = source(buf, sizeof(buf), &len, arg, err)) != 0) {
            (void)PQputCopyEnd(pg->conn, "flotilla: the source failed");
            break;
        }
        if (len == 0) {
            if (PQputCopyEnd(pg->conn, NULL) != 1)
                rc = FL_ERR(err, FL_EDB, "COPY failed: %s",
                            PQerrorMessage(pg->conn));
            break;
        }
        if (PQputCopyData(pg->conn, buf, (int)len) != 1) {
            rc = FL_ERR(err, FL_EDB, "COPY failed: %s",
                        PQerrorMessage(pg->conn));
            break;
        }
    }
    while ((res = PQgetResult(pg->conn)) != NULL) {
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = s_result_error(pg, res, err);
        PQclear(res);
    }
    return rc;
}

int
fl_pg_copy_in(fl_pg_t *pg, const char *sql, fl_pg_copy_source_fn source,
              void *arg, fl_error_t *err)
{
    int rc = s_copy_in(pg, sql, source, arg, err);

    s_copy_done(pg);
    return rc;
}
