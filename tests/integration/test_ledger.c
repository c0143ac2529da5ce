/*
 * Integration tests of what the ledger and the logs say, through the real
 * `flotilla` executable: each log row carries the time its step happened
 * and how long it took; the JSON outputs of the commands agree; a damaged
 * ledger, or a source that lost or renumbered an applied migration, is
 * named and refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "testsupport.h"

/* The table the tests migrate. */
static void
s_table(fl_test_ws_t *ws)
{
    fl_test_exec(ws->conn, "CREATE TABLE t (id int PRIMARY KEY, n int);"
                           "INSERT INTO t SELECT g, g FROM"
                           " generate_series(1, 4) g");
}

/* A query's single value as a number, or fail. */
static long long
s_number(fl_test_ws_t *ws, const char *sql)
{
    char *v = fl_test_query_value(ws->conn, sql);
    long long n = 0;

    if (v == NULL)
        fail_msg("%s: NULL", sql);
    n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

/*
 * created_at is when the step happened, not when its row was written
 * (every row of a run had the same millisecond), and a no-transaction
 * statement's row says how long it ran (it said 0 ms for a 4.5 s index
 * build).
 */
static void
test_log_rows_say_when_each_step_happened_and_how_long(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    long long gap = 0, build = 0;

    s_table(ws);
    /* An index whose build takes at least 4 x 0.1 s. */
    fl_test_exec(ws->conn, "CREATE FUNCTION slow_id(int) RETURNS int"
                           " LANGUAGE sql IMMUTABLE AS"
                           " $$ SELECT $1 FROM pg_sleep(0.1) $$");
    fl_test_ws_write(ws, "0001_slow.sql",
                     "-- flotilla:up\n"
                     "SELECT pg_sleep(0.5);\n"
                     "ALTER TABLE t ADD COLUMN c int;\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN c;\n");
    fl_test_ws_write(ws, "0002_index.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\n"
                     "CREATE INDEX CONCURRENTLY t_slow ON t (slow_id(id));\n"
                     "-- flotilla:down\nDROP INDEX CONCURRENTLY t_slow;\n");
    fl_test_ws_flotilla(ws, &r, "apply", NULL, 1);
    fl_test_expect(&r, 0, "applied 2 migrations");
    fl_test_proc_release(&r);
    /* Validated before the half-second statement, executed after it. */
    gap = s_number(ws, "SELECT (extract(epoch FROM"
        " (SELECT created_at FROM flotilla.migration_logs WHERE version = 1"
        "  AND step = 'execute' AND status = 'ok') -"
        " (SELECT created_at FROM flotilla.migration_logs WHERE version = 1"
        "  AND step = 'validate' AND status = 'ok')) * 1000)::bigint");
    if (gap < 450)
        fail_msg("validate and execute of 0001 logged %lld ms apart; the "
                 "statement between them took 500 ms", gap);
    build = s_number(ws, "SELECT duration_ms FROM flotilla.migration_logs"
                         " WHERE version = 2 AND step = 'execute' AND"
                         " status = 'ok' AND message LIKE 'statement 1 of 1%'");
    if (build < 350)
        fail_msg("the index build of 0002 logged %lld ms; it took at least "
                 "400", build);
    /* Rows in the order the steps happened. */
    assert_int_equal(s_number(ws, "SELECT count(*) FROM (SELECT created_at,"
                                  " lag(created_at) OVER (ORDER BY id) AS prev"
                                  " FROM flotilla.migration_logs) x"
                                  " WHERE created_at < prev"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_rows_say_when_each_step_happened_and_how_long, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
