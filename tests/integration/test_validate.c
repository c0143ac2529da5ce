/*
 * Integration tests of validation at apply time, through the real
 * `flotilla` executable: what is refused before anything runs (with
 * nothing changed, exit 3), what an override lets through (and says so
 * everywhere), and where an error is placed in the file.
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

/* The file's text, or "" when it cannot be read; new string. */
static char *
s_file(const char *path)
{
    fl_test_proc_t f;
    const char *const cat[] = {"cat", path, NULL};
    char *out = NULL;

    fl_test_run(&f, "/bin/cat", cat, NULL, 10);
    out = f.out;
    f.out = NULL;
    fl_test_proc_release(&f);
    return out;
}

/*
 * BEGIN, COMMIT and ROLLBACK inside a migration are refused, whatever
 * allow= says: with them, a column committed while the ledger said the
 * migration failed.
 */
static void
test_transaction_control_in_a_migration_is_refused(void **state)
{
    static const char *const bodies[] = {
        "BEGIN;\nALTER TABLE t ADD COLUMN c int;\nCOMMIT;\nSELECT 1/0;\n",
        "ALTER TABLE t ADD COLUMN c int;\nCOMMIT;\n",
        "START TRANSACTION;\nALTER TABLE t ADD COLUMN c int;\n",
        "ALTER TABLE t ADD COLUMN c int;\nROLLBACK;\n",
        "ALTER TABLE t ADD COLUMN c int;\nEND;\n",
    };
    fl_test_ws_t *ws = *state;

    fl_test_exec(ws->conn, "CREATE TABLE t (id int PRIMARY KEY)");
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        for (int notx = 0; notx <= 1; notx++) {
            fl_test_proc_t r;
            char *text = fl_asprintf(
                "-- flotilla:options %sallow=transaction-nesting x"
                " allow=prefer-bigint-over-int x\n"
                "-- flotilla:up\n%s-- flotilla:down\n"
                "ALTER TABLE t DROP COLUMN c;\n",
                notx ? "no-transaction " : "", bodies[i]);

            fl_test_ws_write(ws, "0001_tx.sql", text);
            fl_test_ws_flotilla(ws, &r, "apply", NULL, 1);
            if (r.status != 3 || !strstr(r.err, "0001_tx.sql:") ||
                !strstr(r.err, "not allowed in a migration"))
                fail_msg("%s\nwas not refused: exit %d\n%s", text, r.status,
                         r.err);
            fl_test_proc_release(&r);
            fl_test_expect_value(ws->conn, "SELECT count(*) FROM pg_attribute"
                                 " WHERE attrelid = 't'::regclass AND"
                                 " attname = 'c'", "0");
            free(text);
        }
    }
}

/*
 * down is parsed and linted when the migration is applied (a down missing
 * a ";" was found only at rollback), whatever --allow-lint-errors says
 * about lint.
 */
static void
test_a_down_that_does_not_parse_is_refused_at_apply(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    const char *const allow[] = {"--allow-lint-errors", NULL};

    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:up\nCREATE TABLE a (id bigint);\n"
                     "CREATE TABLE b (id bigint);\n"
                     "-- flotilla:down\nDROP TABLE b\nDROP TABLE a;\n");
    fl_test_ws_flotilla(ws, &r, "apply", NULL, 1);
    fl_test_expect(&r, 3, "0001_a.sql:6:1");
    fl_test_expect(&r, 3, "down");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(ws, &r, "apply", allow, 1);
    fl_test_expect(&r, 3, "0001_a.sql:6:1");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
}

/* A lint error of down refuses like one of up. */
static void
test_a_lint_error_in_down_refuses(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY);"
                           "CREATE TABLE keep (id bigint)");
    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:up\nALTER TABLE t ADD COLUMN c bigint;\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN c;\n"
                     "DROP TABLE keep;\n");
    fl_test_ws_flotilla(ws, &r, "apply", NULL, 1);
    fl_test_expect(&r, 3, "0001_a.sql:5:1");
    fl_test_proc_release(&r);
}

/*
 * --allow-lint-errors lets error findings through and reports every one
 * of them: on the console (even with --quiet), in the log file and in
 * flotilla.migration_logs.
 */
static void
test_allow_lint_errors_reports_every_finding_it_let_through(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    const char *const allow[] = {"--allow-lint-errors", "--quiet", NULL};
    char *log = NULL;

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigint PRIMARY KEY, n bigint)");
    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:up\n"
                     "ALTER TABLE t ALTER COLUMN n SET NOT NULL;\n"
                     "ALTER TABLE t DROP COLUMN n;\n"
                     "-- flotilla:down\n"
                     "ALTER TABLE t ADD COLUMN n bigint;\n");
    fl_test_ws_flotilla(ws, &r, "apply", allow, 1);
    fl_test_expect(&r, 0, "adding-not-nullable-field");
    fl_test_expect(&r, 0, "ban-drop-column");
    fl_test_expect(&r, 0, "0001_a.sql:3:");
    fl_test_proc_release(&r);
    log = s_file(ws->log);
    if (!strstr(log, "adding-not-nullable-field") ||
        !strstr(log, "ban-drop-column"))
        fail_msg("the log file lacks an overridden finding:\n%s", log);
    free(log);
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla.migration_logs"
                         " WHERE status = 'overridden' AND (message LIKE"
                         " '%adding-not-nullable-field%' OR message LIKE"
                         " '%ban-drop-column%')", "2");
}

/*
 * lock_timeout 0 means "wait forever" to PostgreSQL: refused as an
 * option of the command and of a migration.
 */
static void
test_lock_timeout_zero_is_refused(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    const char *const zero[] = {"--lock-timeout", "0s", NULL};

    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:up\nCREATE TABLE a (id bigint);\n"
                     "-- flotilla:down\nDROP TABLE a;\n");
    fl_test_ws_flotilla(ws, &r, "apply", zero, 1);
    fl_test_expect(&r, 2, "--lock-timeout");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(ws, &r, "plan", zero, 1);
    fl_test_expect(&r, 2, "--lock-timeout");
    fl_test_proc_release(&r);
    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:options lock_timeout=0ms\n"
                     "-- flotilla:up\nCREATE TABLE a (id bigint);\n"
                     "-- flotilla:down\nDROP TABLE a;\n");
    fl_test_ws_flotilla(ws, &r, "apply", NULL, 1);
    fl_test_expect(&r, 3, "lock_timeout");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transaction_control_in_a_migration_is_refused, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_down_that_does_not_parse_is_refused_at_apply, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_lint_error_in_down_refuses, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_allow_lint_errors_reports_every_finding_it_let_through, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_lock_timeout_zero_is_refused, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
