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
    fl_test_exec(blocker, "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
    fl_test_ws_flotilla(ws, &r, "apply", args, 1);
    fl_test_expect(&r, 5, "blocked by PID");
    fl_test_proc_release(&r);
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

#define S_SLEEPING                                                          \
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name ="    \
    " 'flotilla' AND datname = current_database() AND state = 'active'"     \
    " AND query = 'SELECT pg_sleep(600)'"
#define S_GONE                                                              \
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name ="    \
    " 'flotilla' AND datname = current_database()"

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
        fl_test_ws_await(&ws, S_SLEEPING, 60);
        fl_test_child_signal(&c, sigs[i]);
        fl_test_child_wait(&c, &r, 60);
        fl_test_expect(&r, 6, "interrupted");
        fl_test_proc_release(&r);
        /* Nothing of flotilla's is left on the server. */
        fl_test_ws_await(&ws, S_GONE, 60);
        s_expect_value(&ws, "SELECT count(*) FROM pg_locks WHERE relation ="
                            " 't'::regclass", "0");
        s_expect_value(&ws, "SELECT count(*) FROM pg_attribute WHERE attrelid"
                            " = 't'::regclass AND attname = 'c'", "0");
        s_expect_value(&ws, "SELECT status || ': ' || error_message FROM"
                            " flotilla.schema_migrations",
                       "failed: 0001_sleep.sql:3:1: canceling statement due"
                       " to user request");
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
    PGconn *holder = fl_test_db_connect(&ws->db);
    const char *const args[] = {"--lock-timeout", "600s", NULL};

    s_sleeper(ws);
    fl_test_ws_spawn(ws, &c, "apply", args, 1);
    fl_test_ws_await(ws, S_SLEEPING, 60);
    fl_test_exec(holder, "BEGIN; LOCK TABLE flotilla.schema_migrations");
    fl_test_child_signal(&c, SIGTERM);
    /* Cancelled and rolled back, it waits to record the failure. */
    fl_test_ws_await(ws, "SELECT count(*) = 1 FROM pg_stat_activity WHERE"
                         " application_name = 'flotilla' AND datname ="
                         " current_database() AND wait_event_type = 'Lock'", 60);
    fl_test_child_signal(&c, SIGTERM);
    fl_test_child_wait(&c, &r, 30);
    fl_test_expect(&r, 128 + SIGTERM, NULL);
    fl_test_proc_release(&r);
    fl_test_exec(holder, "ROLLBACK");
    PQfinish(holder);
    fl_test_ws_await(ws, S_GONE, 60);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_connection_lost_while_validating_is_a_failure, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_apply_never_waits_for_a_lock_without_a_timeout, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test(test_a_signal_cancels_the_statement_and_records_it),
        cmocka_unit_test_setup_teardown(test_a_second_signal_exits_at_once, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("interrupt", tests, NULL, NULL);
}
