/*
 * Integration tests of the pipeline library itself, as the agent daemon
 * will drive it: events through the callback, and cancellation from
 * another thread leaving nothing applied.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/pipeline.h"
#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "pgproxy.h"
#include "testsupport.h"

/*
 * Retry jitter comes from a random source, not a seed both pipelines of a
 * process share (time ^ pid made them retry in step, as a herd).
 */
static void
test_pipelines_of_one_process_do_not_retry_in_step(void **state)
{
    fl_test_db_t db;
    fl_pipeline_opts_t opts = FL_PIPELINE_OPTS_INIT;
    fl_pipeline_t *a = NULL, *b = NULL;
    fl_error_t err = FL_ERROR_INIT;
    int same = 0;

    (void)state;
    fl_test_db_create(&db, "jit");
    opts.dsn = db.conninfo;
    assert_int_equal(fl_pipeline_open(&a, &opts, &err), 0);
    assert_int_equal(fl_pipeline_open(&b, &opts, &err), 0);
    for (int i = 0; i < 32; i++) {
        int64_t x = fl__pipeline_backoff(a, 1000, 3);
        int64_t y = fl__pipeline_backoff(b, 1000, 3);
        assert_true(x >= 4000 && x <= 8000);
        assert_true(y >= 4000 && y <= 8000);
        same += x == y;
    }
    /* Two independent draws in 4,001 values agree rarely, not 32 times. */
    assert_true(same < 4);
    fl_pipeline_close(&a);
    fl_pipeline_close(&b);
    fl_test_db_drop(&db);
}

typedef struct {
    fl_buf_t events; /* "step:status version\n" per event */
    pthread_mutex_t lock;
} s_events;

static void
s_on_event(const fl_pipeline_event_t *ev, void *arg)
{
    s_events *e = arg;

    pthread_mutex_lock(&e->lock);
    fl_buf_addf(&e->events, "%s:%s %s\n", fl_step_name(ev->step),
                        fl_step_status_name(ev->status),
                        fl_version_is_set(&ev->version) ? ev->version.text
                                                        : "0");
    pthread_mutex_unlock(&e->lock);
}

static void
s_write(const char *dir, const char *file, const char *text)
{
    char *path = fl_asprintf("%s/%s", dir, file);

    fl_test_write_file(path, text);
    free(path);
}

/* The pipeline takes only what fl_source_open verified. */
static void
s_open(fl_source_t *src, const char *dir)
{
    fl_error_t err = FL_ERROR_INIT;

    if (fl_source_open(src, dir, NULL, 0, 0, &err) != 0)
        fail_msg("%s: %s", dir, err.message);
}


/*
 * A pipeline on a fresh database, over a migrations directory the test
 * fills (s_lib_open then opens the source and the pipeline).
 */
typedef struct {
    fl_test_db_t db;
    PGconn *conn;
    char *dir;
    fl_source_t src;
    fl_pipeline_opts_t opts;
    fl_pipeline_t *p;
} s_lib;

static void
s_lib_init(s_lib *l, const char *prefix)
{
    fl_pipeline_opts_t init = FL_PIPELINE_OPTS_INIT;

    memset(l, 0, sizeof(*l));
    l->opts = init;
    l->dir = fl_test_tmpdir();
    fl_test_db_create(&l->db, prefix);
    l->conn = fl_test_db_connect(&l->db);
    l->opts.dsn = l->db.conninfo;
}

static void
s_lib_open(s_lib *l)
{
    fl_error_t err = FL_ERROR_INIT;

    s_open(&l->src, l->dir);
    if (fl_pipeline_open(&l->p, &l->opts, &err) != 0)
        fail_msg("fl_pipeline_open: %s", err.message);
}

static void
s_lib_release(s_lib *l)
{
    fl_pipeline_close(&l->p);
    PQfinish(l->conn);
    fl_source_close(&l->src);
    fl_test_rmtree(l->dir);
    free(l->dir);
    fl_test_db_drop(&l->db);
}

static void
test_events_follow_the_steps_in_order(void **state)
{
    fl_test_db_t db;
    fl_pipeline_opts_t opts = FL_PIPELINE_OPTS_INIT;
    fl_pipeline_t *p = NULL;
    fl_source_t src = FL_SOURCE_INIT;
    fl_apply_result_t res;
    fl_error_t err = FL_ERROR_INIT;
    s_events ev = {FL_BUF_INIT(0), PTHREAD_MUTEX_INITIALIZER};
    const char *got = NULL;
    char *dir = fl_test_tmpdir();

    (void)state;
    fl_test_db_create(&db, "lib");
    s_write(dir, "0001_t.sql", "-- flotilla:up\nCREATE TABLE t (id int);\n"
                               "INSERT INTO t VALUES (1);\n"
                               "-- flotilla:down\nDROP TABLE t;\n");
    s_write(dir, "0002_u.sql", "-- flotilla:up\nDELETE FROM t;\n"
                               "-- flotilla:down\nSELECT 1;\n");
    s_open(&src, dir);
    opts.dsn = db.conninfo;
    opts.on_event = s_on_event;
    opts.arg = &ev;
    assert_int_equal(fl_pipeline_open(&p, &opts, &err), 0);
    assert_int_equal(fl_pipeline_apply(p, &src, &res, &err), 0);
    assert_int_equal(res.applied, 2);
    fl_pipeline_close(&p);
    assert_null(p);
    got = fl_buf_str(&ev.events);
    assert_string_equal(got,
        "verify:ok 0\n"
        "validate:started 1\nvalidate:ok 1\nexecute:started 1\nexecute:ok 1\n"
        "verify-after:ok 1\n"
        "validate:started 2\nvalidate:ok 2\nexecute:started 2\nbackup:ok 2\n"
        "execute:ok 2\nverify-after:ok 2\n");
    fl_buf_release(&ev.events);
    fl_source_close(&src);
    fl_test_rmtree(dir);
    free(dir);
    fl_test_db_drop(&db);
}

/* What the callback sees of the pipeline's own session when it runs. */
typedef struct {
    PGconn *conn;        /* a second session, to look at the first */
    char *pid;           /* the pipeline's backend */
    fl_buf_t violations; /* events delivered inside a transaction */
    int64_t last_time;
    int count;
} s_watch;

static void
s_watch_event(const fl_pipeline_event_t *ev, void *arg)
{
    s_watch *w = arg;
    char *sql = fl_asprintf("SELECT state || ' ' || (SELECT count(*) FROM"
                            " pg_locks l JOIN pg_class c ON c.oid = l.relation"
                            " WHERE l.pid = a.pid AND c.relname = 't')"
                            " FROM pg_stat_activity a WHERE pid = %s", w->pid);
    char *v = fl_test_query_value(w->conn, sql);

    /* idle, holding no lock on the migrated table */
    if (v == NULL || strcmp(v, "idle 0") != 0)
        fl_buf_addf(&w->violations, "%s:%s during \"%s\"; ",
                    fl_step_name(ev->step), fl_step_status_name(ev->status),
                    v ? v : "?");
    /* Delivered in order, each with the time it happened. */
    if (ev->time_us < w->last_time || ev->time_us == 0)
        fl_buf_addf(&w->violations, "%s:%s out of order; ",
                    fl_step_name(ev->step), fl_step_status_name(ev->status));
    w->last_time = ev->time_us;
    w->count++;
    free(v);
    free(sql);
}

/*
 * The callback may block (a slow terminal, a coordinator far away): it
 * must never run while the migration's transaction holds its locks.
 * Every event of a run that validates, backs up, executes and fails is
 * delivered with the pipeline's session idle.
 */
static void
test_event_callback_never_runs_inside_a_transaction(void **state)
{
    s_lib l;
    fl_apply_result_t res;
    fl_error_t err = FL_ERROR_INIT;
    s_watch w;

    (void)state;
    memset(&w, 0, sizeof(w));
    fl_buf_init(&w.violations, 0);
    s_lib_init(&l, "evlock");
    w.conn = l.conn;
    fl_test_exec(w.conn, "CREATE TABLE t (id int PRIMARY KEY, n int);"
                         "INSERT INTO t SELECT g, g FROM generate_series(1, 9) g");
    s_write(l.dir, "0001_a.sql", "-- flotilla:up\nALTER TABLE t ADD COLUMN m int;\n"
                                 "UPDATE t SET n = n + 1;\n"
                                 "-- flotilla:down\nALTER TABLE t DROP COLUMN m;\n");
    s_write(l.dir, "0002_b.sql", "-- flotilla:up\nDELETE FROM t WHERE id = 1;\n"
                                 "SELECT 1 / 0;\n"
                                 "-- flotilla:down\nSELECT 1;\n");
    l.opts.on_event = s_watch_event;
    l.opts.arg = &w;
    s_lib_open(&l);
    w.pid = fl_test_query_value(w.conn, "SELECT pid FROM pg_stat_activity"
                                        " WHERE application_name = 'flotilla'"
                                        " AND datname = current_database()");
    assert_non_null(w.pid);
    assert_int_not_equal(fl_pipeline_apply(l.p, &l.src, &res, &err), 0);
    assert_int_equal(res.applied, 1);
    fl_pipeline_close(&l.p);
    if (w.violations.len)
        fail_msg("the callback ran inside the migration's transaction: %s",
                 fl_buf_str(&w.violations));
    assert_true(w.count >= 10);
    fl_error_clear(&err);
    fl_buf_release(&w.violations);
    free(w.pid);
    s_lib_release(&l);
}

/* The blocker lets go when the pipeline reports its first lock retry. */
typedef struct {
    PGconn *blocker;
    int retries;
} s_unblock;

static void
s_unblock_on_retry(const fl_pipeline_event_t *ev, void *arg)
{
    s_unblock *u = arg;

    if (ev->status == FL_STEP_RETRY && u->retries++ == 0)
        fl_test_exec(u->blocker, "COMMIT");
}

/*
 * Errors are classified inside the library by their code, never through
 * the caller's optional error object: with err == NULL a lock timeout is
 * still retried (it was not, and the migration failed).
 */
static void
test_lock_timeout_is_retried_without_an_error_object(void **state)
{
    s_lib l;
    fl_apply_result_t res;
    s_unblock u = {NULL, 0};
    char *v = NULL;

    (void)state;
    s_lib_init(&l, "errnull");
    fl_test_exec(l.conn, "CREATE TABLE t (id int PRIMARY KEY)");
    s_write(l.dir, "0001_a.sql", "-- flotilla:up\nALTER TABLE t ADD COLUMN m int;\n"
                                 "-- flotilla:down\nALTER TABLE t DROP COLUMN m;\n");
    u.blocker = fl_test_db_connect(&l.db);
    fl_test_exec(u.blocker, "BEGIN; LOCK TABLE t IN ACCESS SHARE MODE");
    l.opts.lock_timeout_ms = 100;
    l.opts.retry_base_ms = 20;
    l.opts.on_event = s_unblock_on_retry;
    l.opts.arg = &u;
    s_lib_open(&l);
    assert_int_equal(fl_pipeline_apply(l.p, &l.src, &res, NULL), 0);
    assert_int_equal(res.applied, 1);
    assert_int_equal(u.retries, 1);
    v = fl_test_query_value(l.conn, "SELECT retries FROM flotilla.schema_migrations");
    assert_string_equal(v, "1");
    free(v);
    PQfinish(u.blocker);
    s_lib_release(&l);
}

/*
 * The ledger's checks run as statements prepared on the connection (an
 * agent reads the ledger up to four times on one): a ledger given away
 * or damaged between two reads on the same connection is still seen by
 * the second, whose plan PostgreSQL makes again.
 */
static void
test_a_ledger_changed_between_two_reads_of_one_connection_is_seen(void **state)
{
    s_lib l;
    fl_apply_result_t res;
    fl_ledger_t led = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    char *role = NULL, *sql = NULL;

    (void)state;
    s_lib_init(&l, "ledger2");
    role = fl_asprintf("%s_tenant", l.db.name);
    s_write(l.dir, "0001_a.sql", "-- flotilla:up\nCREATE TABLE t (id int);\n"
                                 "-- flotilla:down\nDROP TABLE t;\n");
    s_lib_open(&l);
    assert_int_equal(fl_pipeline_apply(l.p, &l.src, &res, &err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fl_pipeline_ledger(l.p, &led, &err), 0);
        assert_int_equal(led.count, 1);
        fl_ledger_release(&led);
    }
    /* Given away: a table of the ledger now belongs to a tenant's role. */
    sql = fl_asprintf("CREATE ROLE %s; ALTER TABLE flotilla.backups OWNER"
                      " TO %s", role, role);
    fl_test_exec(l.conn, sql);
    free(sql);
    assert_int_not_equal(fl_pipeline_ledger(l.p, &led, &err), 0);
    if (strstr(err.message, "is not owned by the role flotilla runs as") == NULL)
        fail_msg("expected the ledger to be refused as foreign: %s", err.message);
    fl_error_clear(&err);
    sql = fl_asprintf("ALTER TABLE flotilla.backups OWNER TO CURRENT_USER;"
                      " DROP ROLE %s", role);
    fl_test_exec(l.conn, sql);
    free(sql);
    assert_int_equal(fl_pipeline_ledger(l.p, &led, &err), 0);
    fl_ledger_release(&led);
    /* Damaged: a column of schema_migrations dropped. */
    fl_test_exec(l.conn, "ALTER TABLE flotilla.schema_migrations DROP COLUMN file");
    assert_int_not_equal(fl_pipeline_ledger(l.p, &led, &err), 0);
    if (strstr(err.message, "is damaged: column flotilla.schema_migrations.file"
                            " is missing") == NULL)
        fail_msg("expected the ledger to be named damaged: %s", err.message);
    fl_error_clear(&err);
    s_lib_release(&l);
    free(role);
}

typedef struct {
    s_lib *l;
    int rc;
    fl_error_t err;
    int done;            /* atomic: set when the apply has returned */
} s_bg;

static void *
s_bg_apply(void *arg)
{
    s_bg *b = arg;
    fl_apply_result_t res;

    b->rc = fl_pipeline_apply(b->l->p, &b->l->src, &res, &b->err);
    __atomic_store_n(&b->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Waits (bounded) until the pipeline's backend runs a query like like. */
static void
s_await_query(PGconn *conn, const char *like)
{
    const char *params[1] = {like};
    int seen = 0;

    for (int i = 0; i < 1200 && !seen; i++) {
        PGresult *r = PQexecParams(conn, "SELECT count(*) FROM pg_stat_activity"
                                         " WHERE application_name = 'flotilla'"
                                         " AND datname = current_database()"
                                         " AND state = 'active' AND query LIKE $1",
                                   1, NULL, params, NULL, NULL, 0);
        seen = PQresultStatus(r) == PGRES_TUPLES_OK &&
               strcmp(PQgetvalue(r, 0, 0), "1") == 0;
        PQclear(r);
        if (!seen)
            usleep(25000);
    }
    if (!seen)
        fail_msg("the pipeline never ran a query like %s", like);
}

/*
 * A table t whose CHECK (slow(n)) takes 600 s to count, and a migration
 * that adds it (notx: without a transaction, after a first statement).
 */
static void
s_slow_check(s_lib *l, int notx)
{
    fl_test_exec(l->conn, "CREATE TABLE t (id int PRIMARY KEY, n int);"
                          "INSERT INTO t VALUES (1, 1);"
                          "CREATE FUNCTION slow(int) RETURNS boolean"
                          " LANGUAGE sql AS"
                          " $$ SELECT true FROM pg_sleep(600) $$");
    s_write(l->dir, "0001_a.sql", notx
        ? "-- flotilla:options no-transaction"
          " allow=constraint-missing-not-valid test\n"
          "-- flotilla:up\nCREATE TABLE u (id int);\n"
          "ALTER TABLE t ADD CONSTRAINT t_slow CHECK (slow(n));\n"
          "-- flotilla:down\nDROP TABLE u;\n"
        : "-- flotilla:options allow=constraint-missing-not-valid test\n"
          "-- flotilla:up\n"
          "ALTER TABLE t ADD CONSTRAINT t_slow CHECK (slow(n));\n"
          "-- flotilla:down\nALTER TABLE t DROP CONSTRAINT t_slow;\n");
}

/*
 * A cancel that arrives while a live check runs is a cancellation, not a
 * refusal (it said "refused, nothing changed"): in a transactional
 * migration, and in a no-transaction one after a statement committed.
 * The check is slow because the CHECK it validates calls pg_sleep.
 */
static void
test_cancel_during_a_check_is_a_cancellation(void **state)
{
    for (int notx = 0; notx <= 1; notx++) {
        s_lib l;
        s_bg b;
        pthread_t th;
        char *v = NULL;

        (void)state;
        s_lib_init(&l, "cancheck");
        s_slow_check(&l, notx);
        s_lib_open(&l);
        memset(&b, 0, sizeof(b));
        b.l = &l;
        pthread_create(&th, NULL, s_bg_apply, &b);
        s_await_query(l.conn, "%slow(n)%");
        fl_pipeline_cancel(l.p);
        pthread_join(th, NULL);
        if (b.rc != FL_ECANCELLED)
            fail_msg("%s: a cancel during the check returned %s: %s",
                     notx ? "no-transaction" : "transactional",
                     fl_error_code_name(b.rc), b.err.message);
        fl_pipeline_close(&l.p);
        v = fl_test_query_value(l.conn, "SELECT status || ' ' || statements_done"
                                        " FROM flotilla.schema_migrations");
        assert_string_equal(v, notx ? "failed 1" : "failed 0");
        free(v);
        fl_error_clear(&b.err);
        s_lib_release(&l);
    }
}

/* Waits (bounded) until the pipeline's backend waits for its client. */
static void
s_await_idle(PGconn *conn)
{
    char *v = NULL;
    int seen = 0;

    for (int i = 0; i < 1200 && !seen; i++) {
        v = fl_test_query_value(conn, "SELECT count(*) FROM pg_stat_activity"
                                      " WHERE application_name = 'flotilla'"
                                      " AND datname = current_database()"
                                      " AND state LIKE 'idle%'");
        seen = v != NULL && strcmp(v, "1") == 0;
        free(v);
        if (!seen)
            usleep(25000);
    }
    if (!seen)
        fail_msg("the pipeline's backend never went idle");
}

/*
 * A cancel request stops only a statement that runs when it arrives: one
 * that comes while the backend waits for its client is dropped by the
 * server.  A check is several round trips (what its count query would
 * run, then the count, then a sample), so a cancel may come between two
 * of them, and the next must not start: it did, and the count ran
 * slow(n) for its 600 s (the CI hang of test_cancel_during_a_check_is_a_
 * cancellation, which saw the probe's text and cancelled just after it).
 * Here the proxy holds the answer to the probe while the backend idles,
 * the cancel goes out and the server drops it, then the answer goes on.
 */
static void
test_a_cancel_between_two_queries_of_a_check_is_not_lost(void **state)
{
    for (int notx = 0; notx <= 1; notx++) {
        fl_test_proxy_t *px = fl_test_proxy_start();
        s_lib l;
        s_bg b;
        pthread_t th;
        char *v = NULL;
        int ended = 0, waited = 0;
        int wait_ms = (int)(10000 * fl_test_timeout_scale());

        (void)state;
        s_lib_init(&l, "cangap");
        l.opts.dsn = fl_asprintf("%s %s", l.db.conninfo,
                                 fl_test_proxy_conninfo(px));
        s_slow_check(&l, notx);
        s_lib_open(&l);
        /* The probe is the run's only CREATE VIEW (checks.c, s_own_code). */
        fl_test_proxy_hold(px, "CREATE VIEW", 1);
        memset(&b, 0, sizeof(b));
        b.l = &l;
        pthread_create(&th, NULL, s_bg_apply, &b);
        for (int i = 0; i < 1200 && !fl_test_proxy_cut(px); i++)
            usleep(25000);
        if (!fl_test_proxy_cut(px))
            fail_msg("the check never ran its probe");
        s_await_idle(l.conn);
        ended = fl_test_proxy_ended(px);
        fl_pipeline_cancel(l.p);
        /* The server has acted on it when it closes its connection. */
        for (int i = 0; i < 1200 && fl_test_proxy_ended(px) == ended; i++)
            usleep(25000);
        if (fl_test_proxy_ended(px) == ended)
            fail_msg("the cancel request never reached the server");
        fl_test_proxy_release(px);
        while (!__atomic_load_n(&b.done, __ATOMIC_SEQ_CST) &&
               waited < wait_ms) {
            usleep(25000);
            waited += 25;
        }
        /* Lost: the count runs on; stopped here, then failed. */
        while (!__atomic_load_n(&b.done, __ATOMIC_SEQ_CST)) {
            free(fl_test_query_value(l.conn, "SELECT pg_cancel_backend(pid)"
                                     " FROM pg_stat_activity"
                                     " WHERE application_name = 'flotilla'"
                                     " AND datname = current_database()"));
            usleep(100000);
        }
        pthread_join(th, NULL);
        if (waited >= wait_ms)
            fail_msg("%s: a cancel sent between two queries of a check was "
                     "lost: the check ran on for %d ms after it",
                     notx ? "no-transaction" : "transactional", waited);
        if (b.rc != FL_ECANCELLED)
            fail_msg("%s: the cancel returned %s: %s",
                     notx ? "no-transaction" : "transactional",
                     fl_error_code_name(b.rc), b.err.message);
        fl_pipeline_close(&l.p);
        v = fl_test_query_value(l.conn, "SELECT status || ' ' ||"
                                        " statements_done"
                                        " FROM flotilla.schema_migrations");
        assert_string_equal(v, notx ? "failed 1" : "failed 0");
        free(v);
        fl_error_clear(&b.err);
        free((char *)l.opts.dsn);
        s_lib_release(&l);
        fl_test_proxy_stop(&px);
    }
}

typedef struct {
    s_lib *l;
    fl_step step;       /* cancels when this step of version is done */
    const char *version;
    int sent;
} s_cancel_after;

static void
s_cancel_after_step(const fl_pipeline_event_t *ev, void *arg)
{
    s_cancel_after *c = arg;

    if (!c->sent && ev->step == c->step && ev->status == FL_STEP_OK &&
        strcmp(ev->version.text, c->version) == 0) {
        c->sent = 1;
        fl_pipeline_cancel(c->l->p);
    }
}

/* The pipeline again over the same source, with l->opts as they are now. */
static void
s_lib_open_again(s_lib *l)
{
    fl_error_t err = FL_ERROR_INIT;

    if (fl_pipeline_open(&l->p, &l->opts, &err) != 0)
        fail_msg("fl_pipeline_open: %s", err.message);
}

/*
 * A cancel that comes between two migrations stops the run before the
 * next one starts: that one gets no ledger row and none of its statements
 * runs (it was begun, rolled back and recorded failed, "cancelled before
 * statement 1", though nothing of it had run), and the one before stays
 * applied with its schema recorded.  The same for rollback.
 */
static void
test_a_cancel_between_migrations_starts_no_other(void **state)
{
    s_lib l;
    s_cancel_after c = {NULL, FL_STEP_EXECUTE, "1", 0};
    fl_version_t all = FL_VERSION_INIT;
    fl_apply_result_t res;
    fl_error_t err = FL_ERROR_INIT;
    char *v = NULL;
    int n = 0;

    (void)state;
    s_lib_init(&l, "cancelgap");
    s_write(l.dir, "0001_a.sql", "-- flotilla:up\nCREATE TABLE a (id int);\n"
                                 "-- flotilla:down\nDROP TABLE a;\n");
    s_write(l.dir, "0002_b.sql", "-- flotilla:up\nCREATE TABLE b (id int);\n"
                                 "-- flotilla:down\nDROP TABLE b;\n");
    c.l = &l;
    l.opts.on_event = s_cancel_after_step;
    l.opts.arg = &c;
    s_lib_open(&l);
    assert_int_equal(fl_pipeline_apply(l.p, &l.src, &res, &err),
                     FL_ECANCELLED);
    assert_int_equal(c.sent, 1);
    assert_int_equal(res.applied, 1);
    assert_non_null(strstr(err.message, "0002_b.sql"));
    fl_error_clear(&err);
    v = fl_test_query_value(l.conn, "SELECT string_agg(version || ' ' || status"
                                    " || ' ' || (schema_fingerprint IS NOT NULL),"
                                    " ', ' ORDER BY version)"
                                    " FROM flotilla.schema_migrations");
    assert_string_equal(v, "1 applied true");
    free(v);
    v = fl_test_query_value(l.conn, "SELECT to_regclass('b') IS NULL");
    assert_string_equal(v, "t");
    free(v);
    fl_pipeline_close(&l.p);

    /* Both applied; a rollback cancelled after the first down stops. */
    l.opts.on_event = NULL;
    s_lib_open_again(&l);
    assert_int_equal(fl_pipeline_apply(l.p, &l.src, &res, &err), 0);
    fl_pipeline_close(&l.p);
    c.sent = 0;
    c.step = FL_STEP_ROLLBACK;
    c.version = "2";
    l.opts.on_event = s_cancel_after_step;
    s_lib_open_again(&l);
    assert_int_equal(fl_pipeline_rollback(l.p, &l.src, FL_ROLLBACK_TO, &all,
                                          NULL, &n, &err), FL_ECANCELLED);
    assert_int_equal(c.sent, 1);
    assert_non_null(strstr(err.message, "0001_a.sql"));
    fl_error_clear(&err);
    v = fl_test_query_value(l.conn, "SELECT string_agg(version || ' ' || status,"
                                    " ', ' ORDER BY version)"
                                    " FROM flotilla.schema_migrations");
    assert_string_equal(v, "1 applied, 2 rolled_back");
    free(v);
    /* Nor did it log a rollback of 1 that began and failed. */
    v = fl_test_query_value(l.conn, "SELECT count(*) FROM flotilla.migration_logs"
                                    " WHERE version = '1' AND step = 'rollback'");
    assert_string_equal(v, "0");
    free(v);
    v = fl_test_query_value(l.conn, "SELECT to_regclass('a') IS NOT NULL");
    assert_string_equal(v, "t");
    free(v);
    s_lib_release(&l);
}

typedef struct {
    fl_pipeline_t *p;
    const fl_source_t *src;
    int rc;
    fl_error_t err;
} s_job;

static void *
s_apply_thread(void *arg)
{
    s_job *j = arg;
    fl_apply_result_t res;

    j->rc = fl_pipeline_apply(j->p, j->src, &res, &j->err);
    return NULL;
}

static void
test_cancel_from_another_thread_leaves_nothing_applied(void **state)
{
    fl_test_db_t db;
    fl_pipeline_opts_t opts = FL_PIPELINE_OPTS_INIT;
    fl_source_t src = FL_SOURCE_INIT;
    s_job job;
    pthread_t th;
    PGconn *conn = NULL;
    char *v = NULL;
    char *dir = fl_test_tmpdir();
    int seen = 0;

    (void)state;
    memset(&job, 0, sizeof(job));
    fl_test_db_create(&db, "cancel");
    conn = fl_test_db_connect(&db);
    s_write(dir, "0001_slow.sql", "-- flotilla:up\nCREATE TABLE slow (id int);\n"
                                  "SELECT pg_sleep(30);\n"
                                  "-- flotilla:down\nDROP TABLE slow;\n");
    s_open(&src, dir);
    opts.dsn = db.conninfo;
    assert_int_equal(fl_pipeline_open(&job.p, &opts, &job.err), 0);
    job.src = &src;
    pthread_create(&th, NULL, s_apply_thread, &job);
    for (int i = 0; i < 600 && !seen; i++) {
        v = fl_test_query_value(conn, "SELECT count(*) FROM pg_stat_activity"
                                      " WHERE query LIKE 'SELECT pg_sleep(30)%'"
                                      " AND datname = current_database()");
        seen = strcmp(v, "1") == 0;
        free(v);
        usleep(50000);
    }
    assert_true(seen);
    fl_pipeline_cancel(job.p);
    pthread_join(th, NULL);
    assert_int_equal(job.rc, FL_ECANCELLED);
    assert_non_null(strstr(job.err.message, "0001_slow.sql:3:1"));
    fl_pipeline_close(&job.p);
    v = fl_test_query_value(conn, "SELECT to_regclass('slow') IS NULL");
    assert_string_equal(v, "t");
    free(v);
    v = fl_test_query_value(conn, "SELECT status FROM flotilla.schema_migrations");
    assert_string_equal(v, "failed");
    free(v);
    fl_error_clear(&job.err);
    PQfinish(conn);
    fl_source_close(&src);
    fl_test_rmtree(dir);
    free(dir);
    fl_test_db_drop(&db);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_follow_the_steps_in_order),
        cmocka_unit_test(test_pipelines_of_one_process_do_not_retry_in_step),
        cmocka_unit_test(test_cancel_from_another_thread_leaves_nothing_applied),
        cmocka_unit_test(test_event_callback_never_runs_inside_a_transaction),
        cmocka_unit_test(test_a_cancel_between_migrations_starts_no_other),
        cmocka_unit_test(test_lock_timeout_is_retried_without_an_error_object),
        cmocka_unit_test(test_cancel_during_a_check_is_a_cancellation),
        cmocka_unit_test(
            test_a_cancel_between_two_queries_of_a_check_is_not_lost),
        cmocka_unit_test(test_a_ledger_changed_between_two_reads_of_one_connection_is_seen),
    };
    return cmocka_run_group_tests_name("pipeline_lib", tests, NULL, NULL);
}
