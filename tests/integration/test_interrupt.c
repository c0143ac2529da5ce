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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_connection_lost_while_validating_is_a_failure, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_apply_never_waits_for_a_lock_without_a_timeout, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("interrupt", tests, NULL, NULL);
}
