/*
 * Integration tests of `flotilla plan`, the dry run, through the real
 * executable: it holds the target lock, rehearses under apply's timeouts,
 * puts back the sequences its rehearsal moved, plans from the catalog
 * alone with --no-rehearse, and agrees with apply (an enum value added by
 * one migration and used by the next; what follows a no-transaction
 * migration is not summed up as OK).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "testsupport.h"

static void
s_expect_value(fl_test_ws_t *ws, const char *sql, const char *expected)
{
    fl_test_expect_value(ws->conn, sql, expected);
}

static void
s_run(fl_test_ws_t *ws, const char *cmd, const char *const *args, int status,
      const char *needle)
{
    fl_test_proc_t r;

    fl_test_ws_flotilla(ws, &r, cmd, args, 1);
    fl_test_expect(&r, status, needle);
    fl_test_proc_release(&r);
}

/*
 * The plan takes the target lock: while an apply runs, a plan waits for
 * it (up to --lock-wait) and stops with exit 5 naming the holder, rather
 * than rehearse under a migration half-way through (it took no lock).
 */
static void
test_plan_takes_the_target_lock(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_child_t c;
    fl_test_proc_t r;
    const char *const wait[] = {"--lock-wait", "1s", NULL};

    fl_test_ws_write(ws, "0001_slow.sql",
                     "-- flotilla:up\nCREATE TABLE t (id int);\n"
                     "SELECT pg_sleep(600);\n"
                     "-- flotilla:down\nDROP TABLE t;\n");
    fl_test_ws_spawn(ws, &c, "apply", NULL, 1);
    fl_test_ws_await_child(ws, &c, FL_TEST_SLEEPING, 60);
    s_run(ws, "plan", wait, 5, "lock");
    fl_test_child_signal(&c, SIGTERM);
    fl_test_child_wait(&c, &r, 60);
    fl_test_proc_release(&r);
    fl_test_ws_await(ws, FL_TEST_GONE, 60);
}

/*
 * The rehearsal runs under apply's lock_timeout (a table another session
 * locks stops it after --lock-timeout, where it waited) and, with no
 * statement timeout set, under a default one (it ran without bound).
 */
static void
test_plan_rehearses_under_apply_timeouts(void **state)
{
    fl_test_ws_t *ws = *state;
    PGconn *blocker = fl_test_db_connect(&ws->db);
    const char *const lt[] = {"--lock-timeout", "300ms", NULL};

    fl_test_exec(ws->conn, "CREATE TABLE t (id int)");
    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:up\n"
                     "DO $$ BEGIN IF current_setting('statement_timeout') <>"
                     " '1min' THEN RAISE EXCEPTION 'statement_timeout is %',"
                     " current_setting('statement_timeout'); END IF; END $$;\n"
                     "ALTER TABLE t ADD COLUMN c int;\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN c;\n");
    s_run(ws, "plan", NULL, 0, "OK, apply would go ahead: 1 migration");
    {
        /* The server's version as people write it: 15.18, not 150018. */
        char *v = fl_test_query_value(ws->conn, "SELECT '(PostgreSQL ' ||"
                                      " current_setting('server_version_num')"
                                      "::int / 10000 || '.' ||"
                                      " current_setting('server_version_num')"
                                      "::int % 10000 || ')'");
        s_run(ws, "plan", NULL, 0, v);
        free(v);
    }
    fl_test_exec(blocker, "BEGIN; LOCK TABLE t IN ACCESS SHARE MODE");
    s_run(ws, "plan", lt, 3, "lock timeout");
    fl_test_exec(blocker, "ROLLBACK");
    PQfinish(blocker);
}

/*
 * Sequences do not roll back: the rehearsal's inserts advanced items'
 * sequence by five on every plan (10 -> 15 -> 20).  It is put back, and
 * the plan says so; one another session used since is left alone.
 */
static void
test_plan_puts_sequences_back(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const json[] = {"--json", NULL};

    fl_test_exec(ws->conn, "CREATE TABLE items (id bigserial PRIMARY KEY,"
                           " v int); INSERT INTO items (v) SELECT"
                           " generate_series(1, 10)");
    fl_test_ws_write(ws, "0001_more.sql",
                     "-- flotilla:up\nINSERT INTO items (v) SELECT"
                     " generate_series(1, 5);\n"
                     "-- flotilla:down\nDELETE FROM items WHERE id > 10;\n");
    for (int i = 0; i < 2; i++) {
        s_run(ws, "plan", NULL, 0, "OK, apply would go ahead");
        s_expect_value(ws, "SELECT last_value FROM items_id_seq", "10");
    }
    s_run(ws, "plan", json, 0, "\"put_back\": true");
    s_expect_value(ws, "SELECT last_value FROM items_id_seq", "10");
    /* A sequence never called stays never called. */
    fl_test_exec(ws->conn, "CREATE TABLE fresh (id bigserial, v int)");
    fl_test_ws_write(ws, "0002_fresh.sql",
                     "-- flotilla:up\nINSERT INTO fresh (v) VALUES (1);\n"
                     "-- flotilla:down\nDELETE FROM fresh;\n");
    s_run(ws, "plan", NULL, 0, "OK, apply would go ahead: 2 migrations");
    s_expect_value(ws, "SELECT is_called::text || last_value FROM"
                       " fresh_id_seq", "false1");
    s_run(ws, "apply", NULL, 0, "applied 2 migrations");
    s_expect_value(ws, "SELECT max(id) FROM items", "15");
    s_expect_value(ws, "SELECT max(id) FROM fresh", "1");
}

/*
 * A sequence the rehearsal moved and then gave new storage (setval, then
 * ALTER SEQUENCE ... RESTART): rolling the rehearsal back brings the old
 * storage back where setval left it, which the rehearsal's own reading
 * (the new storage's) did not show.  Before, plan left s at 1000 and said
 * it could not put it back, as if another session had used it.
 */
static void
test_plan_puts_back_a_sequence_it_moved_then_restarted(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const json[] = {"--json", NULL};

    fl_test_exec(ws->conn, "CREATE SEQUENCE s; SELECT nextval('s');"
                           " SELECT nextval('s')");
    fl_test_ws_write(ws, "0001_seq.sql",
                     "-- flotilla:up\nSELECT setval('s', 1000);\n"
                     "ALTER SEQUENCE s RESTART WITH 7;\n"
                     "-- flotilla:down\nSELECT 1;\n");
    s_run(ws, "plan", NULL, 0, "OK, apply would go ahead");
    s_expect_value(ws, "SELECT last_value || ' ' || is_called FROM s",
                   "2 true");
    s_run(ws, "plan", json, 0, "\"put_back\": true");
    s_expect_value(ws, "SELECT last_value || ' ' || is_called FROM s",
                   "2 true");
}

/*
 * --no-rehearse plans from the catalog and the text: no statement runs
 * (a migration that fails when run is not found out, and the plan says
 * it did not rehearse), while a text refused is still refused.
 */
static void
test_plan_without_rehearsal_runs_nothing(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const nr[] = {"--no-rehearse", NULL};
    const char *const nrj[] = {"--no-rehearse", "--json", NULL};

    fl_test_exec(ws->conn, "CREATE TABLE t (id bigserial, n int);"
                           "INSERT INTO t (n) VALUES (0)");
    fl_test_ws_write(ws, "0001_div.sql",
                     "-- flotilla:up\nINSERT INTO t (n) SELECT 1 / n FROM t;\n"
                     "-- flotilla:down\nDELETE FROM t WHERE n <> 0;\n");
    s_run(ws, "plan", NULL, 3, "division by zero");
    s_run(ws, "plan", nr, 0, "--no-rehearse, nothing rehearsed");
    s_run(ws, "plan", nrj, 0, "\"rehearse\": false");
    s_expect_value(ws, "SELECT last_value FROM t_id_seq", "1");
    fl_test_ws_write(ws, "0002_bad.sql",
                     "-- flotilla:up\nCREATE TABLE u (id int;\n"
                     "-- flotilla:down\nDROP TABLE u;\n");
    s_run(ws, "plan", nr, 3, "NOT OK, apply would stop");
}

/*
 * Plan and apply agree.  An enum value added by one migration and used by
 * the next: apply commits the first before the second runs, the
 * rehearsal cannot (PostgreSQL refuses a new enum value in the
 * transaction that added it), so the plan says it did not rehearse the
 * second, rather than that it fails.  Migrations after a no-transaction
 * one are not rehearsed either, and the plan does not sum them up as OK.
 */
static void
test_plan_and_apply_agree(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const json[] = {"--json", NULL};

    fl_test_exec(ws->conn, "CREATE TYPE mood AS ENUM ('sad');"
                           "CREATE TABLE t (id int, m mood)");
    fl_test_ws_write(ws, "0001_happy.sql",
                     "-- flotilla:up\nALTER TYPE mood ADD VALUE 'happy';\n"
                     "-- flotilla:down\nSELECT 1;\n");
    fl_test_ws_write(ws, "0002_use.sql",
                     "-- flotilla:up\nINSERT INTO t VALUES (1, 'happy');\n"
                     "-- flotilla:down\nDELETE FROM t WHERE id = 1;\n");
    s_run(ws, "plan", NULL, 3, "NOT PROVEN: 1 of 2 pending migrations not "
                               "rehearsed (it uses an enum value");
    s_run(ws, "plan", json, 3, "\"ok\": true");
    s_run(ws, "apply", NULL, 0, "applied 2 migrations");
    fl_test_ws_write(ws, "0003_idx.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\nCREATE UNIQUE INDEX CONCURRENTLY t_id"
                     " ON t (id);\n"
                     "-- flotilla:down\nDROP INDEX CONCURRENTLY t_id;\n");
    fl_test_ws_write(ws, "0004_col.sql",
                     "-- flotilla:up\nALTER TABLE t ADD COLUMN c int;\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN c;\n");
    /* Rehearsed without 0003's index, 0004 goes ahead. */
    s_run(ws, "plan", NULL, 3, "NOT PROVEN: 1 of 2 pending migrations not "
                               "rehearsed (a no-transaction migration");
    s_run(ws, "plan", json, 3, "\"proven\": false");
    /* 0005 needs 0003's index: not proven, rather than failed. */
    fl_test_ws_write(ws, "0005_key.sql",
                     "-- flotilla:up\nALTER TABLE t ADD CONSTRAINT t_id_key"
                     " UNIQUE USING INDEX t_id;\n"
                     "-- flotilla:down\nALTER TABLE t DROP CONSTRAINT"
                     " t_id_key;\n");
    s_run(ws, "plan", NULL, 3, "perhaps because this migration depends on "
                               "0003_idx.sql");
    s_run(ws, "apply", NULL, 0, "applied 3 migrations");
}

/*
 * Plan and apply agree on a migration that ran in part, its file changed
 * since (here made to run in a transaction): apply refuses it, and so
 * does plan, with the same words.  Before, plan rehearsed the new file
 * and said "OK, apply would go ahead" (found by an audit).
 */
static void
test_plan_refuses_a_file_changed_since_it_ran_in_part(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *said = "0001_part.sql was partly applied (1 of 3 statements)"
                       " with different content";

    fl_test_exec(ws->conn, "CREATE TABLE t (id int); CREATE TABLE gate"
                           " (id int)");
    fl_test_ws_write(ws, "0001_part.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\nINSERT INTO t VALUES (1);\n"
                     "SELECT 1 / (SELECT count(*)::int FROM gate);\n"
                     "INSERT INTO t VALUES (2);\n"
                     "-- flotilla:down\nDELETE FROM t;\n");
    s_run(ws, "apply", NULL, 1, "division by zero");
    fl_test_ws_write(ws, "0001_part.sql",
                     "-- flotilla:up\nINSERT INTO t VALUES (1), (2);\n"
                     "-- flotilla:down\nDELETE FROM t;\n");
    s_run(ws, "plan", NULL, 3, said);
    s_run(ws, "apply", NULL, 3, said);
    s_expect_value(ws, "SELECT string_agg(id::text, ',') FROM t", "1");
}

/*
 * The rehearsal is rolled back; what a statement does outside its
 * transaction is not.  Before, `plan` of a migration that clears the
 * sessions in its way (pg_terminate_backend, as runbooks do before a
 * lock) ended them, and one that writes a file on the server wrote it:
 * a dry run that acts, and `rollout plan` did so on every target.  Such
 * a statement is not run: its migration is "not rehearsed" and the plan
 * not proven, naming it; apply runs it.
 */
static void
test_plan_runs_nothing_that_acts_outside_its_transaction(void **state)
{
    fl_test_ws_t *ws = *state;
    PGconn *victim = fl_test_db_connect(&ws->db);
    char *file = fl_asprintf("/tmp/flotilla-plan-%d.txt", (int)getpid());
    char *text = fl_asprintf(
        "-- flotilla:up\nCREATE TABLE t (id int);\n"
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'flotilla_victim';\n"
        "COPY (SELECT 'written') TO '%s';\n"
        "-- flotilla:down\nDROP TABLE t;\n", file);

    unlink(file);
    fl_test_exec(victim, "SET application_name = 'flotilla_victim'");
    fl_test_ws_write(ws, "0001_clear.sql", text);
    fl_test_ws_write(ws, "0002_more.sql", "-- flotilla:up\n"
                     "CREATE TABLE u (id int);\n"
                     "-- flotilla:down\nDROP TABLE u;\n");
    s_run(ws, "plan", NULL, 3, "pg_terminate_backend()");
    s_run(ws, "plan", NULL, 3, "NOT PROVEN: 1 of 2 pending migrations not "
                               "rehearsed");
    fl_test_exec(victim, "SELECT 1"); /* still there */
    if (access(file, F_OK) == 0)
        fail_msg("the plan wrote %s", file);
    s_expect_value(ws, "SELECT to_regclass('u') IS NULL", "t");
    /* Only the COPY: the same. */
    free(text);
    text = fl_asprintf("-- flotilla:up\nCREATE TABLE t (id int);\n"
                       "COPY (SELECT 'written') TO '%s';\n"
                       "-- flotilla:down\nDROP TABLE t;\n", file);
    fl_test_ws_write(ws, "0001_clear.sql", text);
    s_run(ws, "plan", NULL, 3, "COPY");
    if (access(file, F_OK) == 0)
        fail_msg("the plan wrote %s", file);
    PQfinish(victim);
    free(text);
    free(file);
}

/*
 * The plan names the backups apply takes: for a statement that drops an
 * attribute of a composite type, the tables of columns of that type
 * (and of an array of a type that holds it), as apply backs them up, not
 * the type's name (before, "backup of contact", a table that does not
 * exist, in the text and in --json).
 */
static void
test_plan_names_the_tables_a_dropped_attribute_backs_up(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const json[] = {"--json", "--allow-lint-errors", NULL};
    fl_test_proc_t r;
    json_t *o = NULL, *b = NULL;
    char *got = NULL;

    fl_test_exec(ws->conn, "CREATE TYPE contact AS (email text, phone text);"
                           "CREATE TYPE card AS (owner contact, n int);"
                           "CREATE TABLE people (id int PRIMARY KEY,"
                           " c contact);"
                           "CREATE TABLE cards (id int PRIMARY KEY, k card[]);");
    fl_test_ws_write(ws, "0001_a.sql",
                     "-- flotilla:up\n"
                     "ALTER TYPE contact DROP ATTRIBUTE phone CASCADE;\n"
                     "-- flotilla:down\n"
                     "ALTER TYPE contact ADD ATTRIBUTE phone text CASCADE;\n");
    fl_test_ws_flotilla(ws, &r, "plan", json, 1);
    fl_test_expect(&r, 0, NULL);
    o = json_loads(r.out, 0, NULL);
    b = json_object_get(json_array_get(json_object_get(json_array_get(
            json_object_get(o, "migrations"), 0), "statements"), 0),
        "backup");
    got = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(got);
    assert_string_equal(got, "[\"public.cards\",\"public.people\"]");
    free(got);
    json_decref(o);
    fl_test_proc_release(&r);
}

/*
 * A plan says when the schema is not as flotilla left it (a DBA's index
 * since the last apply), in its text and its JSON, and still changes
 * nothing; the fleet-wide plan reads the same JSON (coordinator, test_
 * planfit.c).
 */
static void
test_plan_says_when_the_schema_changed_outside_flotilla(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const json[] = {"--json", NULL};
    fl_test_proc_t r;
    json_t *o = NULL, *st = NULL;
    char *before = NULL, *after = NULL;

    fl_test_ws_write(ws, "0001_t.sql", "-- flotilla:up\n"
                     "CREATE TABLE t (id int PRIMARY KEY, v text);\n"
                     "-- flotilla:down\nDROP TABLE t;\n");
    s_run(ws, "apply", NULL, 0, NULL);
    fl_test_ws_write(ws, "0002_w.sql", "-- flotilla:up\n"
                     "ALTER TABLE t ADD COLUMN w int;\n"
                     "-- flotilla:down\nALTER TABLE t DROP COLUMN w;\n");
    s_run(ws, "plan", NULL, 0, "OK, apply would go ahead");
    fl_test_exec(ws->conn, "CREATE INDEX t_v ON t (v)");
    before = fl_test_canonical_dump_full(ws->conn);
    s_run(ws, "plan", NULL, 0, "SCHEMA CHANGED: the schema differs from the "
                               "one flotilla left after apply 1");
    fl_test_ws_flotilla(ws, &r, "plan", json, 1);
    fl_test_expect(&r, 0, NULL);
    o = json_loads(r.out, 0, NULL);
    if (o == NULL)
        fail_msg("plan --json is not JSON: %s", r.out);
    st = json_object_get(o, "schema_state");
    assert_true(json_is_true(json_object_get(st, "changed")));
    assert_string_equal(json_string_value(json_object_get(st,
                                                          "recorded_after")),
                        "apply 1");
    json_decref(o);
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump_full(ws->conn);
    fl_test_assert_dumps_equal("a plan changes nothing", before, after);
    free(before);
    free(after);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plan_takes_the_target_lock, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_plan_rehearses_under_apply_timeouts, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_plan_puts_sequences_back, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_plan_puts_back_a_sequence_it_moved_then_restarted, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_plan_without_rehearsal_runs_nothing, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_plan_and_apply_agree, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_plan_refuses_a_file_changed_since_it_ran_in_part,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_plan_runs_nothing_that_acts_outside_its_transaction, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_plan_names_the_tables_a_dropped_attribute_backs_up, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_plan_says_when_the_schema_changed_outside_flotilla, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
