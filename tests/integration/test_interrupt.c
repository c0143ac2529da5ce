/*
 * Integration tests of interruption and partial states, through the real
 * `flotilla` executable: signals in the middle of a statement, kill -9,
 * a connection lost while validating, no-transaction migrations that stop
 * half-way and resume, and rollbacks around them.  Each test reads the
 * server afterwards: pg_stat_activity, pg_locks, the ledger, the schema.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/file.h"
#include "pgproxy.h"
#include "testsupport.h"

static void
s_expect_value(fl_test_ws_t *ws, const char *sql, const char *expected)
{
    fl_test_expect_value(ws->conn, sql, expected);
}

/*
 * A connection lost while validating is a failure (exit 1) that says so,
 * not a refusal (exit 3, "nothing changed" by a verdict of validation).
 */
static void
test_a_connection_lost_while_validating_is_a_failure(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;

    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:validate\n"
                     "SELECT pg_terminate_backend(pg_backend_pid());\n"
                     "-- flotilla:up\nCREATE TABLE a (id int);\n"
                     "-- flotilla:down\nDROP TABLE a;\n");
    fl_test_ws_flotilla(ws, &r, "apply", NULL, 1);
    fl_test_expect(&r, 1, "lost the connection");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT to_regclass('a') IS NULL", "t");
}

/*
 * Nothing flotilla runs waits for a lock without a bound: with the table
 * locked by another session, apply gives up after its lock timeouts and
 * retries (it waited forever in the schema snapshot taken before the
 * migration, which took no lock_timeout).
 */
static void
test_apply_never_waits_for_a_lock_without_a_timeout(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    PGconn *blocker = fl_test_db_connect(&ws->db);
    const char *const args[] = {"--lock-timeout", "100ms", "--lock-retries",
                                "1", NULL};

    fl_test_exec(ws->conn, "CREATE TABLE t (id int PRIMARY KEY)");
    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:up\nALTER TABLE t ADD COLUMN n int;\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN n;\n");
    /* Its statement holds a secret: the blocker is named, not quoted
     * (before, the first 120 characters of another role's statement went
     * to stderr, the log file and the ledger, and through a fleet to the
     * coordinator's database). */
    fl_test_exec(blocker, "BEGIN; SELECT 'sk_live_BLOCKERSECRET';"
                          " LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
    fl_test_ws_flotilla(ws, &r, "apply", args, 1);
    fl_test_expect(&r, 5, "blocked by PID");
    if (strstr(r.out, "BLOCKERSECRET") || strstr(r.err, "BLOCKERSECRET"))
        fail_msg("the blocker's statement text is shown:\n%s\n%s", r.out,
                 r.err);
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT count(*) FROM flotilla.migration_logs WHERE"
                       " message LIKE '%BLOCKERSECRET%'", "0");
    s_expect_value(ws, "SELECT count(*) > 0 FROM flotilla.migration_logs"
                       " WHERE message LIKE '%blocked by PID%statement BEGIN%'",
                   "t");
    fl_test_exec(blocker, "COMMIT");
    PQfinish(blocker);
    fl_test_ws_flotilla(ws, &r, "apply", args, 1);
    fl_test_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
}

/* The migration the signal tests interrupt: it holds t's lock and sleeps. */
static void
s_sleeper(fl_test_ws_t *ws)
{
    fl_test_exec(ws->conn, "CREATE TABLE t (id int PRIMARY KEY)");
    fl_test_ws_write(ws, "0001_sleep.sql",
                     "-- flotilla:up\nALTER TABLE t ADD COLUMN c int;\n"
                     "SELECT pg_sleep(600);\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN c;\n");
}

/*
 * SIGINT and SIGTERM to `flotilla apply` in the middle of a statement
 * cancel it on the server (it kept running with its ACCESS EXCLUSIVE
 * lock), roll the migration back, record it (ledger row, log rows, the
 * log file) and exit 6.
 */
static void
test_a_signal_cancels_the_statement_and_records_it(void **state)
{
    const int sigs[2] = {SIGINT, SIGTERM};

    for (int i = 0; i < 2; i++) {
        fl_test_ws_t ws;
        fl_test_child_t c;
        fl_test_proc_t r;

        (void)state;
        fl_test_ws_open(&ws, "sig");
        s_sleeper(&ws);
        fl_test_ws_spawn(&ws, &c, "apply", NULL, 1);
        fl_test_ws_await_child(&ws, &c, FL_TEST_SLEEPING, 60);
        fl_test_child_signal(&c, sigs[i]);
        fl_test_child_wait(&c, &r, 60);
        fl_test_expect(&r, 6, "interrupted");
        /* Nothing of flotilla's is left on the server. */
        fl_test_ws_await(&ws, FL_TEST_GONE, 60);
        s_expect_value(&ws, "SELECT count(*) FROM pg_locks WHERE relation ="
                            " 't'::regclass", "0");
        s_expect_value(&ws, "SELECT count(*) FROM pg_attribute WHERE attrelid"
                            " = 't'::regclass AND attname = 'c'", "0");
        {
            char *row = fl_test_query_value(ws.conn, "SELECT status || ': ' ||"
                                            " error_message FROM"
                                            " flotilla.schema_migrations");
            const char *want = "failed: 0001_sleep.sql:3:1: canceling"
                               " statement due to user request";

            if (row == NULL || strcmp(row, want) != 0)
                fail_msg("the ledger row is \"%s\", not \"%s\"; flotilla"
                         " said:\n%s", row ? row : "(none)", want, r.err);
            free(row);
        }
        fl_test_proc_release(&r);
        s_expect_value(&ws, "SELECT count(*) > 0 FROM flotilla.migration_logs"
                            " WHERE status = 'failed' AND message LIKE"
                            " '%canceling statement%'", "t");
        /* The log file has the failure too. */
        {
            fl_test_proc_t f;
            const char *const cat[] = {"cat", ws.log, NULL};
            fl_test_run(&f, "/bin/cat", cat, NULL, 10);
            if (strstr(f.out, "canceling statement due to user request") == NULL)
                fail_msg("the log file lacks the cancellation:\n%s", f.out);
            fl_test_proc_release(&f);
        }
        fl_test_ws_close(&ws);
    }
}

/* flotilla waits for a lock (the ledger's, held by a test session). */
#define S_WAITING_FOR_LEDGER                                                \
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name ="   \
    " 'flotilla' AND datname = current_database() AND wait_event_type ="   \
    " 'Lock'"

/*
 * Starts apply of the sleeper, holds the ledger's table locked from a
 * session of the test's (returned, in its transaction) and sends SIGTERM:
 * the sleep is cancelled and rolled back, and flotilla waits to record
 * the failure.
 */
static PGconn *
s_interrupt_behind_ledger_lock(fl_test_ws_t *ws, fl_test_child_t *c)
{
    PGconn *holder = fl_test_db_connect(&ws->db);
    const char *const args[] = {"--lock-timeout", "600s", NULL};

    s_sleeper(ws);
    fl_test_ws_spawn(ws, c, "apply", args, 1);
    fl_test_ws_await_child(ws, c, FL_TEST_SLEEPING, 60);
    fl_test_exec(holder, "BEGIN; LOCK TABLE flotilla.schema_migrations");
    fl_test_child_signal(c, SIGTERM);
    fl_test_ws_await_child(ws, c, S_WAITING_FOR_LEDGER, 60);
    return holder;
}

static void
s_release_ledger(PGconn *holder)
{
    fl_test_exec(holder, "ROLLBACK");
    PQfinish(holder);
}

/*
 * A second signal exits at once, even while the bookkeeping of the first
 * waits (here for a lock a session holds on the ledger).
 */
static void
test_a_second_signal_exits_at_once(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_child_t c;
    fl_test_proc_t r;
    PGconn *holder = s_interrupt_behind_ledger_lock(ws, &c);

    fl_test_child_signal(&c, SIGTERM);
    fl_test_child_wait(&c, &r, 30);
    fl_test_expect(&r, 128 + SIGTERM, NULL);
    fl_test_proc_release(&r);
    s_release_ledger(holder);
    fl_test_ws_await(ws, FL_TEST_GONE, 60);
}

/* Waits (at most 30 s, scaled) for c's stderr to hold needle. */
static void
s_await_stderr(const fl_test_child_t *c, const char *needle)
{
    int64_t deadline = fl_clock_ms() +
                       (int64_t)(30000 * fl_test_timeout_scale());

    for (;;) {
        unsigned char *text = NULL;
        size_t len = 0;
        int found = fl_file_read(&text, &len, c->err_path, 1 << 20,
                                 "stderr", NULL) == 0 &&
                    strstr((const char *)text, needle) != NULL;

        if (found || fl_clock_ms() > deadline) {
            if (!found)
                fail_msg("flotilla's stderr lacks \"%s\" after 30 s:\n%s",
                         needle, text ? (const char *)text : "");
            free(text);
            return;
        }
        free(text);
        fl_clock_sleep_ms(20);
    }
}

/*
 * A cancel request is a connection to the server of its own: when the
 * server does not answer it (here a proxy that stops accepting
 * connections, as a hung server or a lost network), the request waits.
 * The signal thread waited in it, so the second signal, which exits at
 * once, was never taken: flotilla waited as long as the server did.
 * The cancel now goes out on a thread of its own.
 */
static void
test_a_second_signal_exits_while_the_cancel_waits(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proxy_t *px = fl_test_proxy_start();
    char *direct = ws->db.conninfo;
    fl_test_child_t c;
    fl_test_proc_t r;

    s_sleeper(ws);
    ws->db.conninfo = fl_asprintf("%s %s", direct, fl_test_proxy_conninfo(px));
    fl_test_ws_spawn(ws, &c, "apply", NULL, 1);
    free(ws->db.conninfo);
    ws->db.conninfo = direct;
    fl_test_ws_await_child(ws, &c, FL_TEST_SLEEPING, 60);
    fl_test_proxy_stall(px, 1);
    fl_test_child_signal(&c, SIGINT);
    s_await_stderr(&c, "interrupted by SIGINT");
    fl_test_child_signal(&c, SIGINT);
    fl_test_child_wait(&c, &r, 10);
    fl_test_expect(&r, 128 + SIGINT, NULL);
    fl_test_proc_release(&r);
    fl_test_proxy_stall(px, 0);
    s_expect_value(ws, "SELECT count(*) >= 0 FROM (SELECT"
                       " pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE application_name = 'flotilla' AND datname ="
                       " current_database()) t", "t");
    fl_test_ws_await(ws, FL_TEST_GONE, 60);
    fl_test_proxy_stop(&px);
}

/*
 * A cancel request reaches the server as a signal to the backend, and
 * may reach it again (the postmaster signals the backend and then its
 * process group) or late: after the statement it was sent for has ended,
 * it cancels whatever runs next there, here the ledger row that records
 * the interrupted migration.  Flotilla sent one cancel, its statement
 * took it, and it records the failure all the same.  The stray cancel
 * is pg_cancel_backend's, sent while the row waits for a lock.
 */
static void
test_a_stray_cancel_after_ours_does_not_lose_the_failure_row(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_child_t c;
    fl_test_proc_t r;
    PGconn *holder = s_interrupt_behind_ledger_lock(ws, &c);

    s_expect_value(ws, "SELECT count(*) FROM (SELECT pg_cancel_backend(pid)"
                       " FROM pg_stat_activity WHERE application_name ="
                       " 'flotilla' AND datname = current_database() AND"
                       " wait_event_type = 'Lock') c", "1");
    /* It waits again for the same row. */
    fl_test_ws_await_child(ws, &c, S_WAITING_FOR_LEDGER, 60);
    s_release_ledger(holder);
    fl_test_child_wait(&c, &r, 60);
    fl_test_expect(&r, 6, "interrupted");
    s_expect_value(ws, "SELECT status || ': ' || error_message FROM"
                       " flotilla.schema_migrations",
                   "failed: 0001_sleep.sql:3:1: canceling statement due to"
                   " user request");
    fl_test_proc_release(&r);
}

/*
 * rollback --last of the one migration, which leaves t.n at n and no
 * index t_n.
 */
static void
s_rolled_back_last(fl_test_ws_t *ws, const char *n)
{
    const char *const last[] = {"--last", NULL};
    fl_test_proc_t r;

    fl_test_ws_flotilla(ws, &r, "rollback", last, 1);
    fl_test_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT n FROM t", n);
    s_expect_value(ws, "SELECT to_regclass('t_n') IS NULL", "t");
}

/*
 * A trigger refuses the ledger row that matches when (as a crash between a
 * statement and its progress row would leave it unwritten).
 */
static void
s_refuse_progress(fl_test_ws_t *ws, const char *when)
{
    char *sql = fl_asprintf(
        "CREATE FUNCTION no_progress() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'progress row refused'; END $$;"
        "CREATE TRIGGER no_progress BEFORE INSERT OR UPDATE ON"
        " flotilla.schema_migrations FOR EACH ROW WHEN (%s)"
        " EXECUTE FUNCTION no_progress()", when);

    fl_test_exec(ws->conn, sql);
    free(sql);
}

/* Applies the workspace's directory; expects status and needle. */
static void
s_apply(fl_test_ws_t *ws, int status, const char *needle)
{
    fl_test_proc_t r;

    fl_test_ws_flotilla(ws, &r, "apply", NULL, 1);
    fl_test_expect(&r, status, needle);
    fl_test_proc_release(&r);
}

/*
 * (a) A no-transaction migration's statement that can run in a
 * transaction commits with its progress row, or not at all: when the
 * progress row cannot be written (a trigger refuses it, as a crash
 * between the two would), the statement is undone, and the next apply
 * runs it once.
 */
static void
test_a_statement_commits_with_its_progress_row(void **state)
{
    fl_test_ws_t *ws = *state;

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, n bigint);"
                           "INSERT INTO t VALUES (1, 1)");
    fl_test_ws_write(ws, "0001_a.sql", "-- flotilla:up\nSELECT 1;\n"
                                       "-- flotilla:down\nSELECT 1;\n");
    s_apply(ws, 0, "applied 1 migration");
    s_refuse_progress(ws, "NEW.version = '2' AND NEW.status = 'running'"
                          " AND NEW.statements_done = 1");
    fl_test_ws_write(ws, "0002_b.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\nUPDATE t SET n = n + 1;\n"
                     "CREATE INDEX CONCURRENTLY t_n ON t (n);\n"
                     "-- flotilla:down\nDROP INDEX CONCURRENTLY t_n;\n");
    s_apply(ws, 1, "progress row refused");
    s_expect_value(ws, "SELECT n FROM t", "1");
    fl_test_exec(ws->conn, "DROP TRIGGER no_progress ON"
                           " flotilla.schema_migrations");
    s_apply(ws, 0, "applied 1 migration");
    s_expect_value(ws, "SELECT n FROM t", "2");
    s_expect_value(ws, "SELECT status FROM flotilla.schema_migrations WHERE"
                       " version = '2'", "applied");
}

#define S_CIC_WAITING                                                       \
    "SELECT count(*) = 1 FROM pg_stat_progress_create_index p JOIN"         \
    " pg_stat_activity a USING (pid) WHERE a.application_name = 'flotilla'" \
    " AND a.datname = current_database()"                                   \
    " AND p.phase LIKE 'waiting for writers%'"

/*
 * (b) kill -9 during CREATE INDEX CONCURRENTLY: the server finishes the
 * index while the ledger says the statement is not done.  The next apply
 * counts an index of that name, valid and defined as the statement
 * defines it, as done (every later apply failed with "already exists");
 * one defined otherwise is named, not taken.
 */
static void
test_an_index_the_server_finished_after_a_kill_counts_as_done(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_child_t c;
    fl_test_proc_t r;
    PGconn *writer = fl_test_db_connect(&ws->db);

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, n bigint);"
                           "INSERT INTO t SELECT g, g FROM"
                           " generate_series(1, 100) g");
    fl_test_ws_write(ws, "0001_idx.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\n"
                     "CREATE INDEX CONCURRENTLY t_n ON t (n);\n"
                     "ALTER TABLE t ADD COLUMN m bigint;\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN m;\n"
                     "DROP INDEX CONCURRENTLY t_n;\n");
    /* An open write makes the build wait for it. */
    fl_test_exec(writer, "BEGIN; INSERT INTO t VALUES (101, 101)");
    fl_test_ws_spawn(ws, &c, "apply", NULL, 1);
    fl_test_ws_await_child(ws, &c, S_CIC_WAITING, 60);
    fl_test_child_signal(&c, SIGKILL);
    fl_test_child_wait(&c, &r, 30);
    fl_test_proc_release(&r);
    /* The server goes on without its client and finishes the index. */
    fl_test_exec(writer, "COMMIT");
    fl_test_ws_await(ws, "SELECT count(*) = 1 FROM pg_index WHERE indexrelid"
                         " = to_regclass('t_n') AND indisvalid", 60);
    fl_test_ws_await(ws, FL_TEST_GONE, 60);
    /* An index of that name defined otherwise is not taken for it. */
    fl_test_exec(ws->conn, "ALTER INDEX t_n RENAME TO t_n_built;"
                           "CREATE INDEX t_n ON t (id, n)");
    s_apply(ws, 1, "defined otherwise");
    fl_test_exec(ws->conn, "DROP INDEX t_n;"
                           "ALTER INDEX t_n_built RENAME TO t_n");
    s_apply(ws, 0, "counted as done");
    s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "applied 2");
    s_expect_value(ws, "SELECT count(*) FROM pg_attribute WHERE attrelid ="
                       " 't'::regclass AND attname = 'm'", "1");
    PQfinish(writer);
}

/*
 * An index of the statement's name and definition that was there before
 * the migration ever ran is not taken for one an interrupted run built:
 * apply fails on it as psql would ("already exists"), and the index
 * stays.  Before, it counted as done, and the rollback's down dropped an
 * index the migration never made (found by an audit).  An interrupted
 * run is known by the migration's ledger row, written before the
 * statement runs.
 */
static void
test_an_index_there_before_the_migration_is_not_taken_for_its_own(
    void **state)
{
    fl_test_ws_t *ws = *state;

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, v bigint);"
                           "CREATE INDEX t_v ON t (v)");
    fl_test_ws_write(ws, "0001_idx.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\n"
                     "CREATE INDEX CONCURRENTLY t_v ON t (v);\n"
                     "-- flotilla:down\nDROP INDEX CONCURRENTLY t_v;\n");
    s_apply(ws, 1, "already exists");
    s_expect_value(ws, "SELECT count(*) FROM pg_index WHERE indexrelid ="
                       " to_regclass('t_v') AND indisvalid", "1");
    s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "failed 0");
}

/*
 * DETACH PARTITION ... CONCURRENTLY interrupted in its second
 * transaction (waiting for a reader of the parent) leaves the partition
 * "pending detach": its rows gone from the parent's, and every later
 * DETACH of it failing.  The next apply finishes it (FINALIZE) and
 * counts the statement done, so the rows are where the migration puts
 * them and the migration applies.  Before, every later apply failed
 * "already pending detach", with the rows hidden (found by an audit).
 */
static void
test_a_detach_left_pending_by_an_interrupt_is_finished(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_child_t c;
    fl_test_proc_t r;
    PGconn *reader = fl_test_db_connect(&ws->db);

    fl_test_exec(ws->conn, "CREATE TABLE p (id int) PARTITION BY RANGE (id);"
                           "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM"
                           " (0) TO (100);"
                           "CREATE TABLE p2 PARTITION OF p FOR VALUES FROM"
                           " (100) TO (200);"
                           "INSERT INTO p SELECT generate_series(0, 199)");
    fl_test_ws_write(ws, "0001_det.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\n"
                     "ALTER TABLE p DETACH PARTITION p2 CONCURRENTLY;\n"
                     "CREATE TABLE after_detach (id int);\n"
                     "-- flotilla:down\nDROP TABLE after_detach;\n"
                     "ALTER TABLE p ATTACH PARTITION p2 FOR VALUES FROM"
                     " (100) TO (200);\n");
    /* A reader of p makes the detach wait in its second transaction. */
    fl_test_exec(reader, "BEGIN; SELECT count(*) FROM p");
    fl_test_ws_spawn(ws, &c, "apply", NULL, 1);
    fl_test_ws_await_child(ws, &c, "SELECT count(*) = 1 FROM pg_inherits"
                                   " WHERE inhrelid = 'p2'::regclass AND"
                                   " inhdetachpending", 60);
    fl_test_child_signal(&c, SIGINT);
    fl_test_child_wait(&c, &r, 30);
    fl_test_proc_release(&r);
    fl_test_exec(reader, "COMMIT");
    PQfinish(reader);
    fl_test_ws_await(ws, FL_TEST_GONE, 60);
    s_apply(ws, 0, "FINALIZE");
    s_expect_value(ws, "SELECT count(*) FROM pg_inherits WHERE inhrelid ="
                       " 'p2'::regclass", "0");
    s_expect_value(ws, "SELECT count(*) || ' ' || (SELECT count(*) FROM p2)"
                       " FROM p", "100 100");
    s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "applied 2");
}

/*
 * SIGINT to `flotilla plan` in the middle of its rehearsal: exit 6,
 * interrupted, as apply; not a verdict on the migration.  Before, it
 * exited 3 saying "NOT OK, apply would stop", as if the migration had
 * failed (found by an audit).
 */
static void
test_an_interrupted_plan_says_interrupted(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_child_t c;
    fl_test_proc_t r;

    s_sleeper(ws);
    fl_test_ws_spawn(ws, &c, "plan", NULL, 1);
    fl_test_ws_await_child(ws, &c, FL_TEST_SLEEPING, 60);
    fl_test_child_signal(&c, SIGINT);
    fl_test_child_wait(&c, &r, 60);
    fl_test_expect(&r, 6, "interrupted");
    if (strstr(r.out, "apply would stop") != NULL)
        fail_msg("the interrupted plan gives a verdict:\n%s", r.out);
    fl_test_proc_release(&r);
    fl_test_ws_await(ws, FL_TEST_GONE, 60);
}

/* The no-transaction migration whose third statement's check refuses. */
static void
s_refused_midway(fl_test_ws_t *ws)
{
    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, a bigint);"
                           "INSERT INTO t VALUES (1, NULL), (2, 2)");
    fl_test_ws_write(ws, "0001_nt.sql",
                     "-- flotilla:options no-transaction"
                     " allow=adding-not-nullable-field test\n"
                     "-- flotilla:up\n"
                     "ALTER TABLE t ADD COLUMN b bigint;\n"
                     "CREATE INDEX CONCURRENTLY t_b ON t (b);\n"
                     "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n"
                     "-- flotilla:down\nDROP INDEX CONCURRENTLY t_b;\n"
                     "ALTER TABLE t DROP COLUMN b;\n");
}

/*
 * (c) A check that refuses after statements of a no-transaction
 * migration committed is a failure that says what stays applied, in the
 * run that committed them and in every run that resumes (which exited 3,
 * "nothing changed", and left the row running).
 */
static void
test_a_refusal_after_statements_committed_is_a_failure(void **state)
{
    fl_test_ws_t *ws = *state;

    s_refused_midway(ws);
    for (int run = 0; run < 2; run++) {
        s_apply(ws, 1, "2 of 3 statements");
        s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                           " flotilla.schema_migrations", "failed 2");
    }
    s_expect_value(ws, "SELECT count(*) FROM flotilla.migration_logs WHERE"
                       " status = 'refused'", "0");
}

/*
 * Exit 3 says that nothing changed.  A migration refused after this run
 * applied the ones before it is a stop after changes: exit 1, saying what
 * stays applied (it exited 3); the next run, which changes nothing before
 * the same refusal, exits 3.
 */
static void
test_exit_3_only_when_nothing_changed(void **state)
{
    fl_test_ws_t *ws = *state;

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, a bigint);"
                           "INSERT INTO t VALUES (1, NULL)");
    fl_test_ws_write(ws, "0001_b.sql",
                     "-- flotilla:up\nALTER TABLE t ADD COLUMN b int;\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN b;\n");
    fl_test_ws_write(ws, "0002_a.sql",
                     "-- flotilla:options allow=adding-not-nullable-field"
                     " test\n"
                     "-- flotilla:up\nALTER TABLE t ALTER COLUMN a SET NOT"
                     " NULL;\n"
                     "-- flotilla:down\nALTER TABLE t ALTER COLUMN a DROP NOT"
                     " NULL;\n");
    s_apply(ws, 1, "1 migration applied before it stays applied");
    s_expect_value(ws, "SELECT string_agg(version || ' ' || status, ', ')"
                       " FROM flotilla.schema_migrations", "1 applied");
    s_apply(ws, 3, "1 row of \"t\" is NULL");
}

/*
 * rollback --last of migration 1 while its first down statement's
 * progress row is refused (as a kill -9 between the statement and the
 * row would leave it unwritten): it stops, the row says rolling_back with
 * no down statement done; the trigger is gone afterwards.
 */
static void
s_rollback_losing_first_progress(fl_test_ws_t *ws)
{
    const char *const last[] = {"--last", NULL};
    fl_test_proc_t r;

    s_refuse_progress(ws, "NEW.version = '1' AND NEW.status ="
                          " 'rolling_back' AND NEW.down_done = 1");
    fl_test_ws_flotilla(ws, &r, "rollback", last, 1);
    fl_test_expect(&r, 1, "progress row refused");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT status || ' ' || down_done FROM"
                       " flotilla.schema_migrations", "rolling_back 0");
    fl_test_exec(ws->conn, "DROP TRIGGER no_progress ON"
                           " flotilla.schema_migrations");
}

/*
 * Table t with one row (1, 1) and 0001_a.sql, a no-transaction migration
 * of up and down (its sections' text).
 */
static void
s_notx_migration(fl_test_ws_t *ws, const char *up, const char *down)
{
    char *text = fl_asprintf("-- flotilla:options no-transaction\n"
                             "-- flotilla:up\n%s-- flotilla:down\n%s", up,
                             down);

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, n bigint);"
                           "INSERT INTO t VALUES (1, 1)");
    fl_test_ws_write(ws, "0001_a.sql", text);
    free(text);
}

/*
 * (a) for rollback: a down with no-transaction statements runs each
 * statement that can run in a transaction in one with its progress row,
 * or not at all.  When the progress row cannot be written (a trigger
 * refuses it, as a kill -9 between the two would leave it unwritten:
 * tests/integration/test_kill9.c found the down's INSERT twice), the
 * statement is undone, and the next rollback runs it once.
 */
static void
test_a_down_statement_commits_with_its_progress_row(void **state)
{
    fl_test_ws_t *ws = *state;

    s_notx_migration(ws,
                     "CREATE INDEX CONCURRENTLY t_n ON t (n);\n",
                     "UPDATE t SET n = n + 1;\n"
                     "DROP INDEX CONCURRENTLY t_n;\n");
    s_apply(ws, 0, "applied 1 migration");
    s_rollback_losing_first_progress(ws);
    s_expect_value(ws, "SELECT n FROM t", "1");
    s_rolled_back_last(ws, "2");
}

/*
 * A no-transaction migration an earlier run left half-done is resumed by
 * the next apply, whose snapshot before it already shows what the earlier
 * run made (here the index): the changes it records would miss them, and
 * the rollback's proof then found the index the down drops "missing"
 * (tests/integration/test_kill9.c: "1 object differs" after a kill -9
 * inside the migration).  A resumed migration's schema is not recorded,
 * it says so, and its rollback runs without that proof.
 */
static void
test_a_resumed_migration_is_rolled_back_without_a_false_proof(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, n bigint);"
                           "INSERT INTO t VALUES (1, 1);"
                           "CREATE FUNCTION no_update() RETURNS trigger"
                           " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION"
                           " 'not yet'; END $$;"
                           "CREATE TRIGGER no_update BEFORE UPDATE ON t FOR"
                           " EACH ROW EXECUTE FUNCTION no_update()");
    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\n"
                     "CREATE INDEX CONCURRENTLY t_n ON t (n);\n"
                     "UPDATE t SET n = n + 1;\n"
                     "-- flotilla:down\n"
                     "UPDATE t SET n = n - 1;\n"
                     "DROP INDEX CONCURRENTLY t_n;\n");
    s_apply(ws, 1, "not yet");
    fl_test_exec(ws->conn, "DROP TRIGGER no_update ON t");
    fl_test_ws_flotilla(ws, &r, "apply", NULL, 1);
    fl_test_expect(&r, 0, "live checks run before each statement (resuming)");
    fl_test_expect(&r, 0, "schema changes are not recorded");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT status || ' ' || schema_recorded FROM"
                       " flotilla.schema_migrations", "applied false");
    /* The rollback says why it cannot prove the schema: the resume
     * (before, it blamed an older flotilla or a crash: an audit). */
    {
        const char *const last[] = {"--last", NULL};

        fl_test_ws_flotilla(ws, &r, "rollback", last, 1);
        fl_test_expect(&r, 0, "resumed after an interruption");
        fl_test_proc_release(&r);
        s_expect_value(ws, "SELECT n FROM t", "1");
        s_expect_value(ws, "SELECT to_regclass('t_n') IS NULL", "t");
    }
}

/*
 * A no-transaction migration whose verify statement fails, after its
 * first statement committed: the verify runs in the last statement's
 * transaction, so that statement is rolled back with it, and the row
 * says failed with the one statement done and why, never applied (the
 * last statement's progress row would have said applied).
 */
static void
test_a_failure_after_committed_statements_is_recorded(void **state)
{
    fl_test_ws_t *ws = *state;

    s_notx_migration(ws,
                     "CREATE INDEX CONCURRENTLY t_n ON t (n);\n"
                     "UPDATE t SET n = n + 1;\n"
                     "-- flotilla:verify\n"
                     "SELECT 1 / (SELECT count(*) FROM t WHERE n = 7)::int;\n",
                     "UPDATE t SET n = n - 1;\n"
                     "DROP INDEX CONCURRENTLY IF EXISTS t_n;\n");
    s_apply(ws, 1, "failed after 1 of 2 statements");
    s_expect_value(ws, "SELECT status || ' ' || statements_done || ' ' ||"
                       " (error_message LIKE '%division by zero%') FROM"
                       " flotilla.schema_migrations", "failed 1 true");
    s_expect_value(ws, "SELECT n || ' ' || (to_regclass('t_n') IS NOT NULL)"
                       " FROM t", "1 true");
}

/*
 * A down's DROP INDEX CONCURRENTLY runs outside a transaction: the server
 * drops the index even when flotilla dies before the statement's progress
 * row (here a trigger refuses the row, as a kill -9 between the two would
 * leave it unwritten; tests/integration/test_kill9.c found every later
 * rollback failing with "index does not exist").  The next rollback,
 * resuming at that statement, finds the index gone and counts it as done.
 */
static void
test_an_index_a_killed_down_dropped_counts_as_done(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    const char *const last[] = {"--last", NULL};

    s_notx_migration(ws,
                     "CREATE INDEX CONCURRENTLY t_n ON t (n);\n"
                     "UPDATE t SET n = n + 1;\n",
                     "DROP INDEX CONCURRENTLY t_n;\n"
                     "UPDATE t SET n = n - 1;\n");
    s_apply(ws, 0, "applied 1 migration");
    s_rollback_losing_first_progress(ws);
    s_expect_value(ws, "SELECT to_regclass('t_n') IS NULL", "t");
    fl_test_ws_flotilla(ws, &r, "rollback", last, 1);
    fl_test_expect(&r, 0, "is gone (an interrupted run dropped it): counted"
                          " as done");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT status || ' ' || n FROM"
                       " flotilla.schema_migrations, t", "rolled_back 1");
    /* A DROP INDEX CONCURRENTLY that runs first (not resumed) and finds
     * no index still fails. */
    s_apply(ws, 0, "applied 1 migration");
    fl_test_exec(ws->conn, "DROP INDEX t_n");
    fl_test_ws_flotilla(ws, &r, "rollback", last, 1);
    fl_test_expect(&r, 1, "does not exist");
    fl_test_proc_release(&r);
}

/*
 * (d) A down with no-transaction statements records its progress, says
 * which statements it undid, and resumes after them.
 */
static void
test_a_no_transaction_down_resumes_and_says_what_it_undid(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    const char *const last[] = {"--last", NULL};

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, n bigint)");
    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\n"
                     "CREATE INDEX CONCURRENTLY t_n ON t (n);\n"
                     "CREATE TABLE u (id bigint);\n"
                     "-- flotilla:down\n"
                     "DROP INDEX CONCURRENTLY t_n;\n"
                     "DROP TABLE u;\n");
    s_apply(ws, 0, "applied 1 migration");
    /* Something down did not expect stops its second statement. */
    fl_test_exec(ws->conn, "CREATE VIEW v AS SELECT * FROM u");
    fl_test_ws_flotilla(ws, &r, "rollback", last, 1);
    fl_test_expect(&r, 1, "down statement 1 of 2 (0001_a.sql:6:1 DROP INDEX) done");
    fl_test_expect(&r, 1, "stopped at down statement 2 of 2 (0001_a.sql:7:1");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT status || ' ' || down_done FROM"
                       " flotilla.schema_migrations", "rolling_back 1");
    s_expect_value(ws, "SELECT to_regclass('t_n') IS NULL", "t");
    fl_test_exec(ws->conn, "DROP VIEW v");
    fl_test_ws_flotilla(ws, &r, "rollback", last, 1);
    fl_test_expect(&r, 0, "resuming the rollback of 0001_a.sql at down statement 2 of 2");
    fl_test_expect(&r, 0, "down statement 2 of 2 (0001_a.sql:7:1 DROP TABLE) done");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT status FROM flotilla.schema_migrations",
                   "rolled_back");
    s_expect_value(ws, "SELECT to_regclass('u') IS NULL", "t");
}

/*
 * (e) Rollback does not roll back a migration underneath a later one that
 * is half-applied: it refuses, naming it, and changes nothing.
 */
static void
test_rollback_refuses_under_a_half_applied_migration(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    const char *const last[] = {"--last", NULL};

    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:up\nCREATE TABLE a (id bigint);\n"
                     "-- flotilla:down\nDROP TABLE a;\n");
    fl_test_ws_write(ws, "0002_b.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\nCREATE TABLE b (id bigint);\n"
                     "CREATE INDEX CONCURRENTLY b_x ON b (no_such_column);\n"
                     "-- flotilla:down\nDROP TABLE b;\n");
    s_apply(ws, 1, "no_such_column");
    s_expect_value(ws, "SELECT string_agg(version || ' ' || status || ' ' ||"
                       " statements_done, ', ' ORDER BY version_order) FROM"
                       " flotilla.schema_migrations",
                   "1 applied 1, 2 failed 1");
    fl_test_ws_flotilla(ws, &r, "rollback", last, 1);
    fl_test_expect(&r, 1, "0002_b.sql is partly applied");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT to_regclass('a') IS NOT NULL", "t");
    s_expect_value(ws, "SELECT status FROM flotilla.schema_migrations WHERE"
                       " version = '1'", "applied");
    /*
     * Rolling back to 1 leaves 1 applied, but cannot take 2's committed
     * statement back: refused, naming it (before, "rolled back 0
     * migrations", exit 0, with b still there).
     */
    fl_test_ws_flotilla(ws, &r, "rollback",
                        (const char *const[]){"--to", "1", NULL}, 1);
    fl_test_expect(&r, 1, "0002_b.sql is partly applied");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT string_agg(version || ' ' || status || ' ' ||"
                       " statements_done, ', ' ORDER BY version_order) FROM"
                       " flotilla.schema_migrations",
                   "1 applied 1, 2 failed 1");
    /* Below it, the same. */
    fl_test_ws_flotilla(ws, &r, "rollback",
                        (const char *const[]){"--to", "0", NULL}, 1);
    fl_test_expect(&r, 1, "0002_b.sql is partly applied");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT to_regclass('a') IS NOT NULL", "t");
}

/*
 * A no-transaction migration applied in part whose next statement can
 * never succeed: its file may not change, not even to run in one
 * transaction (before, without the option it ran again from its first
 * statement, and a row it had inserted was inserted twice), and no
 * rollback reaches it (before, neither did --skip-down: no way out).  rollback --skip-down marks it rolled back with
 * its reason, what committed staying; the fixed file then runs from its
 * start.
 */
static void
test_a_half_applied_migration_that_cannot_finish_is_skipped(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    const char *const fixed =
        "-- flotilla:options no-transaction\n"
        "-- flotilla:up\nCREATE TABLE IF NOT EXISTS b (id bigint);\n"
        "INSERT INTO hits VALUES (2);\n"
        "CREATE INDEX CONCURRENTLY b_x ON b (id);\n"
        "-- flotilla:down\nDROP TABLE b; -- flotilla:allow ban-drop-table"
        " this up's own\n";

    fl_test_exec(ws->conn, "CREATE TABLE hits (n int)");
    fl_test_ws_write(ws, "0001_b.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\nCREATE TABLE b (id bigint);\n"
                     "INSERT INTO hits VALUES (1);\n"
                     "CREATE INDEX CONCURRENTLY b_x ON b (no_such_column);\n"
                     "-- flotilla:down\nDROP TABLE b;\n");
    s_apply(ws, 1, "no_such_column");
    s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "failed 2");
    /* The same statements in one transaction: refused, nothing run. */
    fl_test_ws_write(ws, "0001_b.sql",
                     "-- flotilla:up\nCREATE TABLE IF NOT EXISTS b (id bigint);\n"
                     "INSERT INTO hits VALUES (1);\n"
                     "CREATE INDEX b_x ON b (id); -- flotilla:allow"
                     " require-concurrent-index-creation b is new\n"
                     "-- flotilla:down\nDROP TABLE b; -- flotilla:allow"
                     " ban-drop-table this up's own\n");
    s_apply(ws, 3, "partly applied (2 of 3 statements) with different content");
    s_expect_value(ws, "SELECT string_agg(n::text, ',') FROM hits", "1");
    s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "failed 2");
    /*
     * A changed file, twice: its row keeps the checksum of the file that
     * ran (before, the refusal wrote the new one, and the second apply
     * resumed the changed file at statement 3 and recorded it applied).
     */
    fl_test_ws_write(ws, "0001_b.sql", fixed);
    s_apply(ws, 3, "rollback --skip-down 1 --reason");
    s_apply(ws, 3, "with different content");
    s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "failed 2");
    fl_test_ws_flotilla(ws, &r, "rollback", (const char *const[]){"--last",
                        NULL}, 1);
    fl_test_expect(&r, 1, "rollback --skip-down 1 --reason");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(ws, &r, "rollback", (const char *const[]){
                        "--skip-down", "1", "--reason", "typo in the index",
                        NULL}, 0);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT status || ' ' || rollback_note FROM"
                       " flotilla.schema_migrations",
                   "rolled_back down skipped: typo in the index");
    s_expect_value(ws, "SELECT to_regclass('b') IS NOT NULL", "t");
    s_apply(ws, 0, "applied 1 migration");
    s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "applied 3");
    s_expect_value(ws, "SELECT string_agg(n::text, ',' ORDER BY n) FROM hits",
                   "1,2");
}

/* A release key pair made in ws's directory ("release.key", ".pub"). */
typedef struct {
    char *keyfile;
    char *pub;
} s_key;

static void
s_make_key(fl_test_ws_t *ws, s_key *k)
{
    fl_test_proc_t r;
    char *prefix = fl_asprintf("%s/release", ws->dir);

    k->keyfile = fl_asprintf("%s.key", prefix);
    k->pub = fl_asprintf("%s.pub", prefix);
    fl_test_run(&r, "flotilla", (const char *const[]){"flotilla", "keygen",
                "--out", prefix, NULL}, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    free(prefix);
}

static void
s_key_release(s_key *k)
{
    free(k->keyfile);
    free(k->pub);
}

/*
 * The same through a signed bundle: rolling back the bundle (as a fleet
 * rollback does on each target) cannot take back the committed statement
 * of its migration applied in part, and says so (before, "rolled back 0
 * migrations", exit 0, and a fleet rollback counted the target as rolled
 * back with table b still there).
 */
static void
test_a_bundle_rollback_refuses_its_half_applied_migration(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    s_key k;
    char *bundle = fl_asprintf("%s/b.bundle", ws->dir);
    char *id = NULL;

    fl_test_ws_write(ws, "0001_b.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\nCREATE TABLE b (id bigint);\n"
                     "CREATE INDEX CONCURRENTLY b_x ON b (no_such_column);\n"
                     "-- flotilla:down\nDROP TABLE b;\n");
    s_make_key(ws, &k);
    fl_test_run(&r, "flotilla", (const char *const[]){"flotilla", "bundle",
                "build", ws->mdir, "--sign", k.keyfile, "--out", bundle,
                "--environment", "test", NULL}, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(ws, &r, "apply", (const char *const[]){"--trust", k.pub,
                        "--environment", "test", bundle, NULL}, 0);
    fl_test_expect(&r, 1, "no_such_column");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "failed 1");
    id = fl_test_query_value(ws->conn, "SELECT bundle_id FROM"
                                       " flotilla.schema_migrations");
    assert_non_null(id);
    fl_test_ws_flotilla(ws, &r, "rollback", (const char *const[]){"--bundle",
                        id, "--trust", k.pub, "--environment", "test", bundle,
                        NULL}, 0);
    fl_test_expect(&r, 1, "0001_b.sql is partly applied");
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT to_regclass('b') IS NOT NULL", "t");
    free(id);
    free(bundle);
    s_key_release(&k);
}

/*
 * A bundle's rollback reaches only that bundle's migrations: when a later
 * bundle applied a migration above them, rolling them back underneath it
 * left a hole.  Before, `rollback --bundle` of the first bundle ran the
 * down of its CREATE TABLE under the second bundle's INSERT into that
 * table (exit 0): the row the second bundle added and one the application
 * added were gone, and the ledger still said the second bundle's
 * migration was applied.  It is now refused with nothing changed; the
 * bundles roll back newest first.
 */
static void
test_a_bundle_rollback_refuses_to_leave_a_later_migration_applied(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    s_key k;
    char *bundle[2], *id[2];

    s_make_key(ws, &k);
    fl_test_ws_write(ws, "0001_t.sql", "-- flotilla:up\n"
                     "CREATE TABLE t (id bigint PRIMARY KEY, v text);\n"
                     "INSERT INTO t VALUES (1, 'a'), (2, 'b');\n"
                     "-- flotilla:down\nDROP TABLE t;\n");
    for (int i = 0; i < 2; i++) {
        char seq[8];

        if (i == 1)
            fl_test_ws_write(ws, "0002_row.sql", "-- flotilla:up\n"
                             "INSERT INTO t VALUES (3, 'c');\n"
                             "-- flotilla:down\nDELETE FROM t WHERE id = 3;\n");
        snprintf(seq, sizeof(seq), "%d", i + 1);
        bundle[i] = fl_asprintf("%s/b%d.bundle", ws->dir, i + 1);
        fl_test_run(&r, "flotilla", (const char *const[]){"flotilla",
                    "bundle", "build", ws->mdir, "--sign", k.keyfile, "--out",
                    bundle[i], "--environment", "test", "--sequence", seq,
                    NULL}, NULL, 60);
        fl_test_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
        fl_test_ws_flotilla(ws, &r, "apply", (const char *const[]){"--trust",
                            k.pub, "--environment", "test", bundle[i], NULL}, 0);
        fl_test_expect(&r, 0, "applied 1 migration");
        fl_test_proc_release(&r);
        id[i] = fl_test_query_value(ws->conn, "SELECT bundle_id FROM"
                                    " flotilla.schema_migrations ORDER BY"
                                    " version_order DESC LIMIT 1");
        assert_non_null(id[i]);
    }
    assert_string_not_equal(id[0], id[1]);
    fl_test_exec(ws->conn, "INSERT INTO t VALUES (4, 'the application')");
    fl_test_ws_flotilla(ws, &r, "rollback", (const char *const[]){"--bundle",
                        id[0], "--trust", k.pub, "--environment", "test",
                        bundle[0], NULL}, 0);
    fl_test_expect(&r, 1, "0002_row.sql");
    if (strstr(r.err, "another bundle") == NULL)
        fail_msg("the refusal does not say why:\n%s", r.err);
    fl_test_proc_release(&r);
    s_expect_value(ws, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t",
                   "1,2,3,4");
    s_expect_value(ws, "SELECT string_agg(version || ' ' || status, ','"
                       " ORDER BY version_order) FROM"
                       " flotilla.schema_migrations", "1 applied,2 applied");
    /* Newest first, each rolls back. */
    for (int i = 1; i >= 0; i--) {
        fl_test_exec(ws->conn, "DELETE FROM t WHERE id = 4");
        fl_test_ws_flotilla(ws, &r, "rollback", (const char *const[]){
                            "--bundle", id[i], "--trust", k.pub,
                            "--environment", "test", bundle[i], NULL}, 0);
        fl_test_expect(&r, 0, "rolled back 1 migration");
        fl_test_proc_release(&r);
    }
    s_expect_value(ws, "SELECT to_regclass('t') IS NULL", "t");
    for (int i = 0; i < 2; i++) {
        free(bundle[i]);
        free(id[i]);
    }
    s_key_release(&k);
}

/*
 * Runs flotilla CMD (args) while a session of the test holds table held
 * and, once flotilla waits for a lock, asks for table asked (which
 * flotilla holds then): a deadlock, which fails flotilla's statement (the
 * session's deadlock_timeout is raised).  The session then commits;
 * flotilla must end with exit 0, saying it retried after the deadlock.
 */
static void
s_deadlock(fl_test_ws_t *ws, const char *cmd, const char *const *args,
           const char *held, const char *asked)
{
    PGconn *app = fl_test_db_connect(&ws->db);
    PGresult *res = NULL;
    fl_test_child_t c;
    fl_test_proc_t r;
    char *sql = fl_asprintf("SET deadlock_timeout = '30s'; BEGIN;"
                            " LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", held);

    fl_test_exec(app, sql);
    free(sql);
    fl_test_ws_spawn(ws, &c, cmd, args, 1);
    fl_test_ws_await_child(ws, &c, S_WAITING_FOR_LEDGER, 60);
    sql = fl_asprintf("SELECT count(*) FROM %s", asked);
    if (PQsendQuery(app, sql) != 1)
        fail_msg("%s", PQerrorMessage(app));
    free(sql);
    while ((res = PQgetResult(app)) != NULL) {
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("the session's query: %s", PQresultErrorMessage(res));
        PQclear(res);
    }
    fl_test_exec(app, "COMMIT");
    PQfinish(app);
    fl_test_child_wait(&c, &r, 60);
    fl_test_expect(&r, 0, "deadlock at 0001_ab.sql");
    fl_test_proc_release(&r);
}

/*
 * A deadlock with the application's session is retried like a lock
 * timeout: the migration locks a, then waits for b, which a session
 * holds and which then asks for a.  PostgreSQL ends the cycle by failing
 * flotilla's statement (its deadlock_timeout fires first: the session's
 * is raised), the migration's transaction rolls back, the session gets
 * a and commits, and the retry applies the migration once.  Before, the
 * apply failed (exit 1, "deadlock detected") on a cycle that the next
 * attempt would not meet.  The same for a rollback's down.
 */
static void
test_a_deadlock_is_retried(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const up[] = {"--lock-timeout", "30s", NULL};
    const char *const down[] = {"--last", "--lock-timeout", "30s", NULL};

    fl_test_exec(ws->conn, "CREATE TABLE a (id int); CREATE TABLE b (id int)");
    fl_test_ws_write(ws, "0001_ab.sql",
                     "-- flotilla:up\n"
                     "ALTER TABLE a ADD COLUMN x int;\n"
                     "ALTER TABLE b ADD COLUMN y int;\n"
                     "-- flotilla:down\n"
                     "ALTER TABLE b DROP COLUMN y;\n"
                     "ALTER TABLE a DROP COLUMN x;\n");
    /* The up locks a, then waits for b; the down locks b, then a. */
    s_deadlock(ws, "apply", up, "b", "a");
    s_expect_value(ws, "SELECT count(*) FROM information_schema.columns"
                       " WHERE (table_name, column_name) IN (('a', 'x'),"
                       " ('b', 'y'))", "2");
    s_expect_value(ws, "SELECT status || ' ' || retries FROM"
                       " flotilla.schema_migrations", "applied 1");
    s_deadlock(ws, "rollback", down, "a", "b");
    s_expect_value(ws, "SELECT count(*) FROM information_schema.columns"
                       " WHERE (table_name, column_name) IN (('a', 'x'),"
                       " ('b', 'y'))", "0");
    s_expect_value(ws, "SELECT status FROM flotilla.schema_migrations",
                   "rolled_back");
}

/*
 * flotilla killed with SIGKILL in the middle of a long statement (no
 * handler can run: an OOM kill, a host's agent killed): the server stops
 * the statement within seconds and releases its ACCESS EXCLUSIVE lock,
 * since flotilla's sessions set client_connection_check_interval.
 * Before, the statement ran on to its end with its lock (here a sleep of
 * 600 s; a table rewrite of an hour, every query of the table waiting
 * behind it), though nothing could ever commit it.
 */
static void
test_a_statement_of_a_killed_flotilla_stops_on_the_server(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_child_t c;
    fl_test_proc_t r;

    /* The sleeper second: what RESET ALL between migrations undid holds. */
    fl_test_exec(ws->conn, "CREATE TABLE t (id int PRIMARY KEY)");
    fl_test_ws_write(ws, "0001_first.sql",
                     "-- flotilla:up\nSET work_mem = '8MB';\n"
                     "CREATE TABLE u (id int);\n"
                     "-- flotilla:down\nDROP TABLE u;\n");
    fl_test_ws_write(ws, "0002_sleep.sql",
                     "-- flotilla:up\nALTER TABLE t ADD COLUMN c int;\n"
                     "SELECT pg_sleep(600);\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN c;\n");
    fl_test_ws_spawn(ws, &c, "apply", NULL, 1);
    fl_test_ws_await_child(ws, &c, FL_TEST_SLEEPING, 60);
    fl_test_child_signal(&c, SIGKILL);
    fl_test_child_wait(&c, &r, 30);
    fl_test_expect(&r, 128 + SIGKILL, NULL);
    fl_test_proc_release(&r);
    fl_test_ws_await(ws, FL_TEST_GONE, 10);
    s_expect_value(ws, "SET lock_timeout = '1s'; SELECT count(*) FROM t",
                   "0");
    s_expect_value(ws, "SELECT status FROM flotilla.schema_migrations"
                       " WHERE version = '1'", "applied");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_connection_lost_while_validating_is_a_failure, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_apply_never_waits_for_a_lock_without_a_timeout, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_deadlock_is_retried,
                                        fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_statement_of_a_killed_flotilla_stops_on_the_server,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test(test_a_signal_cancels_the_statement_and_records_it),
        cmocka_unit_test_setup_teardown(test_a_second_signal_exits_at_once, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_second_signal_exits_while_the_cancel_waits,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_stray_cancel_after_ours_does_not_lose_the_failure_row, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_failure_after_committed_statements_is_recorded, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_an_index_a_killed_down_dropped_counts_as_done, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_statement_commits_with_its_progress_row, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_an_index_the_server_finished_after_a_kill_counts_as_done, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_an_index_there_before_the_migration_is_not_taken_for_its_own,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_detach_left_pending_by_an_interrupt_is_finished,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_an_interrupted_plan_says_interrupted, fl_test_ws_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_refusal_after_statements_committed_is_a_failure, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_exit_3_only_when_nothing_changed, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_down_statement_commits_with_its_progress_row, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_resumed_migration_is_rolled_back_without_a_false_proof, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_no_transaction_down_resumes_and_says_what_it_undid, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_refuses_under_a_half_applied_migration, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_bundle_rollback_refuses_its_half_applied_migration, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_bundle_rollback_refuses_to_leave_a_later_migration_applied, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_half_applied_migration_that_cannot_finish_is_skipped, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("interrupt", tests, NULL, NULL);
}
