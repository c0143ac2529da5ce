/*
 * Integration tests of repeatable migrations (issue 14; agent/repeatable.c
 * has their semantics) through the real `flotilla` executable on a real
 * PostgreSQL: a flotilla migrations directory with R__name.sql files.
 *
 *   - generative: seeded histories of repeatable migrations edited over
 *     rounds, with versioned migrations added between them; after each
 *     apply, exactly the new or changed ones ran, once each, after the
 *     versioned ones and in name order, and each defines what its file
 *     says now (FLOTILLA_TEST_REPEATABLE_SEEDS, default 3; a failing seed
 *     is printed);
 *   - a failing one is recorded failed, the versioned ones stay applied,
 *     and the next apply runs it (and those after it) again;
 *   - kill -9 in the middle of one's transaction: nothing of it stays,
 *     and the next apply runs it once;
 *   - apply --to below the last version runs none; one that destroys
 *     data is refused before anything runs;
 *   - a signed bundle carries them (format 3) and `apply BUNDLE` runs
 *     them; a bundle without them stays format 2;
 *   - a ledger the release before text versions wrote (v4) is upgraded to
 *     version 8 and then runs them, its applied migrations untouched;
 *   - baseline --from flyway records the R__ files Flyway ran as needing
 *     a run (no checksum it can compare), and apply runs each once.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "testsupport.h"

#define S_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* flotilla apply on the workspace's directory; expects status, needle. */
static void
s_apply(fl_test_ws_t *ws, const char *const *extra, int status,
        const char *needle)
{
    fl_test_proc_t r;

    fl_test_ws_flotilla(ws, &r, "apply", extra, 1);
    fl_test_expect(&r, status, needle);
    fl_test_proc_release(&r);
}

/* "name:runs:status,..." of the repeatable rows, by name. */
static void
s_expect_rows(fl_test_ws_t *ws, const char *want)
{
    fl_test_expect_value(ws->conn,
        "SELECT coalesce(string_agg(name || ':' || runs || ':' || status,"
        " ',' ORDER BY name), '') FROM flotilla.repeatable_migrations",
        want);
}

/*
 * `flotilla CMD --json` lists the source's repeatable migrations with
 * where they stand: "name:state,..." in run order.
 */
static void
s_expect_listed(fl_test_ws_t *ws, const char *cmd, const char *want)
{
    fl_test_proc_t r;
    json_t *o = NULL, *x = NULL;
    fl_buf_t got = FL_BUF_INIT(0);
    size_t i;

    fl_test_ws_flotilla(ws, &r, cmd, S_ARGS("--json"), 1);
    o = json_loads(r.out, 0, NULL);
    if (o == NULL)
        fail_msg("%s --json printed no JSON:\n%s%s", cmd, r.out, r.err);
    json_array_foreach(json_object_get(o, "repeatables"), i, x)
        fl_buf_addf(&got, "%s%s:%s", i ? "," : "",
                    json_string_value(json_object_get(x, "name")),
                    json_string_value(json_object_get(x, "state")));
    if (strcmp(fl_buf_str(&got), want) != 0)
        fail_msg("%s lists %s, expected %s", cmd, fl_buf_str(&got), want);
    fl_buf_release(&got);
    json_decref(o);
    fl_test_proc_release(&r);
}

static void
s_write_repeatable(fl_test_ws_t *ws, int k, int value)
{
    char *file = fl_asprintf("R__r%d.sql", k);
    char *text = fl_asprintf(
        "-- flotilla:up\n"
        "CREATE OR REPLACE FUNCTION f%d() RETURNS int LANGUAGE sql"
        " AS 'SELECT %d';\n"
        "INSERT INTO runlog (name) VALUES ('r%d');\n", k, value, k);

    fl_test_ws_write(ws, file, text);
    free(text);
    free(file);
}

/*
 * One seed: 2 to 4 repeatable migrations over 4 rounds; in each round
 * after the first, each is changed with probability 1/2 and a versioned
 * migration is added with probability 1/2.  After each apply: runlog's
 * new rows are the changed ones in name order, after the versioned
 * migration's column (its rows carry it), each row's runs count the
 * rounds it changed in, and each function returns its file's value.
 */
static void
s_seed(fl_test_ws_t *ws, long seed)
{
    uint64_t rng = (uint64_t)seed * 7919u + 17u;
    int n = 2 + (int)(fl_test_rng_next(&rng) % 3);
    int value[5] = {0}, runs[5] = {0}, versions = 1;
    long seen = 0;

    fl_test_exec(ws->conn, "SET client_min_messages = warning;"
                           "DROP SCHEMA IF EXISTS flotilla CASCADE;"
                           "DROP TABLE IF EXISTS runlog;"
                           "DROP SCHEMA public CASCADE; CREATE SCHEMA"
                           " public");
    {
        char *rm = fl_asprintf("rm -f '%s'/*.sql", ws->mdir);
        if (system(rm) != 0)
            fail_msg("%s failed", rm);
        free(rm);
    }
    fl_test_ws_write(ws, "0001_runlog.sql",
                     "-- flotilla:up\nCREATE TABLE runlog (id bigserial"
                     " PRIMARY KEY, name text NOT NULL);\n"
                     "-- flotilla:down\nDROP TABLE runlog;\n");
    for (int round = 0; round < 4; round++) {
        fl_buf_t want = FL_BUF_INIT(0), rows = FL_BUF_INIT(0);
        char *q = NULL;

        for (int k = 1; k <= n; k++) {
            if (round > 0 && fl_test_rng_next(&rng) % 2 == 0)
                continue;
            value[k] = (int)(fl_test_rng_next(&rng) % 1000) + round * 1000;
            s_write_repeatable(ws, k, value[k]);
            runs[k]++;
            fl_buf_addf(&want, "%sr%d", want.len ? "," : "", k);
        }
        if (round > 0 && fl_test_rng_next(&rng) % 2 == 0) {
            char *file = fl_asprintf("%04d_col%d.sql", versions + 1,
                                     versions + 1);
            char *text = fl_asprintf(
                "-- flotilla:up\nALTER TABLE runlog ADD COLUMN c%d int"
                " DEFAULT %d;\n-- flotilla:down\nALTER TABLE runlog DROP"
                " COLUMN c%d;\n", versions + 1, versions + 1, versions + 1);
            fl_test_ws_write(ws, file, text);
            versions++;
            free(text);
            free(file);
        }
        s_apply(ws, NULL, 0, NULL);
        q = fl_asprintf("SELECT coalesce(string_agg(name, ',' ORDER BY id),"
                        " '') FROM runlog WHERE id > %ld", seen);
        fl_test_expect_value(ws->conn, q, fl_buf_str(&want));
        free(q);
        if (versions > 1) {
            /* Every row this apply wrote has the newest column. */
            q = fl_asprintf("SELECT count(*) FILTER (WHERE c%d IS NULL)"
                            " FROM runlog WHERE id > %ld", versions, seen);
            fl_test_expect_value(ws->conn, q, "0");
            free(q);
        }
        {
            char *v = fl_test_query_value(ws->conn,
                                          "SELECT coalesce(max(id), 0) FROM"
                                          " runlog");
            seen = strtol(v, NULL, 10);
            free(v);
        }
        for (int k = 1; k <= n; k++) {
            char *want_v = fl_asprintf("%d", value[k]);
            q = fl_asprintf("SELECT f%d()", k);
            fl_test_expect_value(ws->conn, q, want_v);
            fl_buf_addf(&rows, "%sr%d:%d:applied", k > 1 ? "," : "", k,
                        runs[k]);
            free(q);
            free(want_v);
        }
        s_expect_rows(ws, fl_buf_str(&rows));
        fl_buf_release(&want);
        fl_buf_release(&rows);
    }
}

static void
test_changed_repeatables_run_again_and_only_they(void **state)
{
    fl_test_ws_t *ws = *state;
    long seeds = fl_test_env_long("FLOTILLA_TEST_REPEATABLE_SEEDS", 3);

    for (long seed = 1; seed <= seeds; seed++) {
        fprintf(stderr, "seed %ld (FLOTILLA_TEST_REPEATABLE_SEEDS)\n", seed);
        s_seed(ws, seed);
    }
}

static void
test_a_failing_repeatable_is_recorded_failed(void **state)
{
    fl_test_ws_t *ws = *state;

    fl_test_ws_write(ws, "0001_t.sql", "-- flotilla:up\nCREATE TABLE t (id"
                     " int PRIMARY KEY);\n-- flotilla:down\nDROP TABLE t;\n");
    fl_test_ws_write(ws, "0002_u.sql", "-- flotilla:up\nCREATE TABLE u (id"
                     " int PRIMARY KEY);\n-- flotilla:down\nDROP TABLE u;\n");
    fl_test_ws_write(ws, "R__a.sql", "-- flotilla:up\nCREATE OR REPLACE VIEW"
                     " va AS SELECT id FROM t;\n");
    fl_test_ws_write(ws, "R__b.sql", "-- flotilla:up\nCREATE OR REPLACE VIEW"
                     " vb AS SELECT id FROM t;\n"
                     "CREATE OR REPLACE VIEW vb2 AS SELECT nope FROM u;\n");
    fl_test_ws_write(ws, "R__c.sql", "-- flotilla:up\nCREATE OR REPLACE VIEW"
                     " vc AS SELECT id FROM u;\n");
    s_apply(ws, NULL, 1, "R__b.sql");
    fl_test_expect_value(ws->conn, "SELECT string_agg(version || ' ' ||"
                         " status, ',' ORDER BY version_order) FROM"
                         " flotilla.schema_migrations", "1 applied,2 applied");
    s_expect_rows(ws, "a:1:applied,b:0:failed");
    s_expect_listed(ws, "status", "a:up to date,b:failed,c:new");
    s_expect_listed(ws, "plan", "a:up to date,b:failed,c:new");
    fl_test_expect_value(ws->conn, "SELECT error_sqlstate FROM"
                         " flotilla.repeatable_migrations WHERE name = 'b'",
                         "42703");
    /* Its first statement went with its transaction. */
    fl_test_expect_value(ws->conn, "SELECT to_regclass('vb') IS NULL AND"
                         " to_regclass('va') IS NOT NULL", "t");
    /* Unchanged, it runs again (it failed); a is not run again. */
    s_apply(ws, NULL, 1, "R__b.sql");
    s_expect_rows(ws, "a:1:applied,b:0:failed");
    fl_test_ws_write(ws, "R__b.sql", "-- flotilla:up\nCREATE OR REPLACE VIEW"
                     " vb AS SELECT id FROM t;\n");
    s_apply(ws, NULL, 0, NULL);
    s_expect_rows(ws, "a:1:applied,b:1:applied,c:1:applied");
    fl_test_expect_value(ws->conn, "SELECT to_regclass('vb') IS NOT NULL AND"
                         " to_regclass('vc') IS NOT NULL", "t");
}

/*
 * kill -9 while a repeatable migration's transaction waits on a lock the
 * test holds: its view and its ledger row go with the transaction, and
 * the next apply runs it exactly once.
 */
static void
test_a_kill_during_a_repeatable_runs_it_once_on_resume(void **state)
{
    fl_test_ws_t *ws = *state;
    PGconn *holder = fl_test_db_connect(&ws->db);
    fl_test_child_t c;
    fl_test_proc_t r;

    fl_test_ws_write(ws, "0001_t.sql", "-- flotilla:up\nCREATE TABLE t (id"
                     " int PRIMARY KEY);\n-- flotilla:down\nDROP TABLE t;\n");
    fl_test_ws_write(ws, "R__slow.sql",
                     "-- flotilla:options lock_timeout=120s\n"
                     "-- flotilla:up\n"
                     "CREATE OR REPLACE VIEW vs AS SELECT id FROM t;\n"
                     "SELECT pg_advisory_xact_lock(4242);\n");
    fl_test_exec(holder, "SELECT pg_advisory_lock(4242)");
    fl_test_ws_spawn(ws, &c, "apply", NULL, 1);
    fl_test_ws_await_child(ws, &c, "SELECT count(*) = 1 FROM pg_stat_activity"
                           " WHERE application_name = 'flotilla' AND"
                           " datname = current_database() AND"
                           " wait_event_type = 'Lock' AND query LIKE"
                           " '%pg_advisory_xact_lock%'", 60);
    fl_test_child_signal(&c, SIGKILL);
    fl_test_child_wait(&c, &r, 30);
    fl_test_proc_release(&r);
    fl_test_exec(holder, "SELECT pg_advisory_unlock(4242)");
    fl_test_ws_await(ws, FL_TEST_GONE, 60);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('vs') IS NULL", "t");
    s_expect_rows(ws, "");
    fl_test_expect_value(ws->conn, "SELECT status FROM"
                         " flotilla.schema_migrations", "applied");
    s_apply(ws, NULL, 0, NULL);
    s_expect_rows(ws, "slow:1:applied");
    fl_test_expect_value(ws->conn, "SELECT to_regclass('vs') IS NOT NULL",
                         "t");
    s_apply(ws, NULL, 0, NULL);
    s_expect_rows(ws, "slow:1:applied");
    PQfinish(holder);
}

static void
test_apply_to_below_the_last_version_runs_none(void **state)
{
    fl_test_ws_t *ws = *state;

    fl_test_ws_write(ws, "0001_t.sql", "-- flotilla:up\nCREATE TABLE t (id"
                     " int PRIMARY KEY);\n-- flotilla:down\nDROP TABLE t;\n");
    fl_test_ws_write(ws, "0002_u.sql", "-- flotilla:up\nALTER TABLE t ADD"
                     " COLUMN u int;\n-- flotilla:down\nALTER TABLE t DROP"
                     " COLUMN u;\n");
    fl_test_ws_write(ws, "R__v.sql", "-- flotilla:up\nCREATE OR REPLACE VIEW"
                     " v AS SELECT id, u FROM t;\n");
    s_apply(ws, S_ARGS("--to", "1"), 0, "repeatable: 0 run, 0 up to date,"
            " not run: versioned migrations pending");
    s_expect_rows(ws, "");
    s_apply(ws, NULL, 0, "repeatable: 1 run, 0 up to date");
    s_expect_rows(ws, "v:1:applied");
    s_apply(ws, NULL, 0, "repeatable: 0 run, 1 up to date");
}

static void
test_a_repeatable_that_destroys_data_is_refused(void **state)
{
    fl_test_ws_t *ws = *state;

    fl_test_ws_write(ws, "0001_t.sql", "-- flotilla:up\nCREATE TABLE t (id"
                     " int PRIMARY KEY);\n-- flotilla:down\nDROP TABLE t;\n");
    s_apply(ws, NULL, 0, NULL);
    fl_test_ws_write(ws, "R__clean.sql", "-- flotilla:up\nCREATE OR REPLACE"
                     " VIEW v AS SELECT id FROM t;\nDELETE FROM t;\n");
    s_apply(ws, NULL, 3, "R__clean.sql:3:1: repeatable migration R__clean.sql"
                         " destroys data");
    /* What the analyser cannot see, the net finds: refused the same. */
    fl_test_exec(ws->conn, "INSERT INTO t VALUES (1)");
    fl_test_ws_write(ws, "R__clean.sql", "-- flotilla:up\nCREATE OR REPLACE"
                     " VIEW v AS SELECT id FROM t;\nDO $$BEGIN EXECUTE"
                     " 'DELETE FROM t'; END$$;\n");
    s_apply(ws, S_ARGS("--allow-lint-errors"), 3, "repeatable migration"
            " R__clean.sql destroyed data");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM t", "1");
    fl_test_expect_value(ws->conn, "SELECT to_regclass('v') IS NULL", "t");
    s_expect_rows(ws, "");
    /*
     * One that ran and committed before the one refused: something
     * changed, so exit 1, not 3 ("nothing changed").  Before, exit 3
     * with the first one's view made and recorded.
     */
    fl_test_ws_write(ws, "R__a_view.sql", "-- flotilla:up\nCREATE OR"
                     " REPLACE VIEW va AS SELECT id FROM t;\n");
    fl_test_ws_write(ws, "R__clean.sql", "-- flotilla:up\nDELETE FROM t"
                     " WHERE id < 0;\n");
    s_apply(ws, NULL, 1, "R__clean.sql");
    fl_test_expect_value(ws->conn, "SELECT to_regclass('va') IS NOT NULL",
                         "t");
    s_expect_rows(ws, "a_view:1:applied");
}

/* A signed bundle carries them (format 3); `apply BUNDLE` runs them. */
static void
test_a_signed_bundle_carries_repeatables(void **state)
{
    fl_test_ws_t *ws = *state;
    char *key = fl_asprintf("%s/release", ws->dir);
    char *keyfile = fl_asprintf("%s/release.key", ws->dir);
    char *pub = fl_asprintf("%s/release.pub", ws->dir);
    char *bundle = fl_asprintf("%s/r.bundle", ws->dir);
    char *plain = fl_asprintf("%s/plain.bundle", ws->dir);
    char *pdir = fl_asprintf("%s/plain", ws->dir);
    fl_test_proc_t r;

    fl_test_run(&r, "flotilla", S_ARGS("flotilla", "keygen", "--out", key),
                NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_test_ws_write(ws, "0001_t.sql", "-- flotilla:up\nCREATE TABLE t (id"
                     " int PRIMARY KEY);\n-- flotilla:down\nDROP TABLE t;\n");
    {
        char *cmd = fl_asprintf("mkdir -p '%s' && cp '%s/0001_t.sql' '%s/'",
                                pdir, ws->mdir, pdir);
        if (system(cmd) != 0)
            fail_msg("%s failed", cmd);
        free(cmd);
    }
    fl_test_ws_write(ws, "R__v.sql", "-- flotilla:up\nCREATE OR REPLACE VIEW"
                     " v AS SELECT id FROM t;\n");
    fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle", "build",
                ws->mdir, "--sign", keyfile, "--out", bundle,
                "--environment", "test"), NULL, 60);
    fl_test_expect(&r, 0, "and 1 repeatable migration");
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle", "inspect",
                bundle, "--trust", pub, "--json"), NULL, 60);
    fl_test_expect(&r, 0, "\"format\": 3");
    if (strstr(r.out, "\"R__v.sql\"") == NULL)
        fail_msg("bundle inspect does not list R__v.sql:\n%s", r.out);
    fl_test_proc_release(&r);
    /* In text too, and verify counts it: what runs on every target is
     * never left out of what a reviewer sees (it was, in both). */
    fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle", "inspect",
                bundle, "--trust", pub), NULL, 60);
    fl_test_expect(&r, 0, "R__v.sql");
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle", "verify",
                bundle, "--trust", pub), NULL, 60);
    fl_test_expect(&r, 0, "1 repeatable migration");
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle", "build", pdir,
                "--sign", keyfile, "--out", plain, "--environment", "test"),
                NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle", "inspect",
                plain, "--trust", pub, "--json"), NULL, 60);
    fl_test_expect(&r, 0, "\"format\": 2");
    fl_test_proc_release(&r);
    fl_test_flotilla(&r, ws->dir, ws->db.conninfo, NULL, "apply",
                     S_ARGS("--trust", pub, "--environment", "test"), bundle);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_expect_rows(ws, "v:1:applied");
    fl_test_expect_value(ws->conn, "SELECT bundle_id IS NOT NULL AND"
                         " to_regclass('v') IS NOT NULL FROM"
                         " flotilla.repeatable_migrations", "t");
    free(pdir);
    free(plain);
    free(bundle);
    free(pub);
    free(keyfile);
    free(key);
}

/*
 * The ledger the release before text versions wrote (version 4) is
 * upgraded to version 8 by the apply that runs a repeatable migration;
 * its applied migrations stay as they were, none run again.
 */
static void
test_a_v4_ledger_is_upgraded_and_runs_repeatables(void **state)
{
    fl_test_ws_t *ws = *state;

    fl_test_ws_ledger_v4(ws, NULL);
    fl_test_ws_write(ws, "R__v.sql", "-- flotilla:up\nCREATE OR REPLACE VIEW"
                     " v AS SELECT id, email FROM users;\n");
    s_apply(ws, NULL, 0, NULL);
    fl_test_expect_value(ws->conn, "SELECT max(ledger_version) FROM"
                         " flotilla.ledger_meta", "10");
    fl_test_expect_value(ws->conn, "SELECT string_agg(version || ' ' ||"
                         " status, ',' ORDER BY version_order) FROM"
                         " flotilla.schema_migrations",
                         "1 applied,2 applied,10 applied");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM users", "2");
    s_expect_rows(ws, "v:1:applied");
    s_apply(ws, NULL, 0, NULL);
    s_expect_rows(ws, "v:1:applied");
}

/*
 * A database Flyway migrated (its ledger as Flyway creates it, V1 and
 * R__v.sql run): `baseline --from flyway` records V1 as applied and the
 * repeatable one as run by Flyway, without a checksum to compare (zlib,
 * which Flyway's CRC32 needs, is not a dependency), so status says it
 * needs a run and the next apply runs it once, and only it.  One whose
 * last Flyway run failed is not recorded: it is new.
 */
static void
test_a_flyway_baseline_records_repeatables_as_needing_a_run(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const dir[] = {"--dir", ws->mdir, "--layout", "flyway",
                               "--from", "flyway", NULL};
    const char *const adir[] = {"--dir", ws->mdir, "--layout", "flyway",
                                NULL};
    fl_test_proc_t r;

    fl_test_exec(ws->conn,
        "CREATE TABLE \"public\".\"flyway_schema_history\" ("
        " \"installed_rank\" INT NOT NULL, \"version\" VARCHAR(50),"
        " \"description\" VARCHAR(200) NOT NULL, \"type\" VARCHAR(20) NOT"
        " NULL, \"script\" VARCHAR(1000) NOT NULL, \"checksum\" INTEGER,"
        " \"installed_by\" VARCHAR(100) NOT NULL,"
        " \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),"
        " \"execution_time\" INTEGER NOT NULL, \"success\" BOOLEAN NOT"
        " NULL);"
        "CREATE TABLE t (id int PRIMARY KEY);"
        "CREATE VIEW v AS SELECT id FROM t;"
        "INSERT INTO flyway_schema_history VALUES"
        " (1, '1', 't', 'SQL', 'V1__t.sql', 11, 'me', now(), 1, true),"
        " (2, NULL, 'v', 'SQL', 'R__v.sql', 22, 'me', now(), 1, true),"
        " (3, NULL, 'w', 'SQL', 'R__w.sql', 33, 'me', now(), 1, true),"
        " (4, NULL, 'w', 'SQL', 'R__w.sql', 44, 'me', now(), 1, false)");
    fl_test_ws_write(ws, "V1__t.sql", "CREATE TABLE t (id int PRIMARY"
                     " KEY);\n");
    fl_test_ws_write(ws, "R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT id"
                     " FROM t;\n");
    fl_test_ws_write(ws, "R__w.sql", "CREATE OR REPLACE VIEW w AS SELECT id"
                     " FROM t;\n");
    fl_test_ws_flotilla(ws, &r, "baseline", dir, 0);
    fl_test_expect(&r, 0, "recorded as run by Flyway");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT name || ' ' || status || ' ' ||"
                         " runs || ' ' || (checksum IS NULL) || ' ' ||"
                         " baseline_source FROM"
                         " flotilla.repeatable_migrations",
                         "v applied 0 true flyway");
    fl_test_ws_flotilla(ws, &r, "status", S_ARGS("--dir", ws->mdir,
                        "--layout", "flyway"), 0);
    fl_test_expect(&r, 0, "needs a run");
    fl_test_proc_release(&r);
    /* Baselined again: nothing changes. */
    fl_test_ws_flotilla(ws, &r, "baseline", dir, 0);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(ws, &r, "apply", adir, 0);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_expect_rows(ws, "v:1:applied,w:1:applied");
    fl_test_expect_value(ws->conn, "SELECT count(*) || ' ' ||"
                         " string_agg(baseline_source, ',') FROM"
                         " flotilla.schema_migrations", "1 flyway");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changed_repeatables_run_again_and_only_they, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_failing_repeatable_is_recorded_failed, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_kill_during_a_repeatable_runs_it_once_on_resume, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_apply_to_below_the_last_version_runs_none, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_repeatable_that_destroys_data_is_refused, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_signed_bundle_carries_repeatables, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_v4_ledger_is_upgraded_and_runs_repeatables, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_flyway_baseline_records_repeatables_as_needing_a_run, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "PostgreSQL is not available\n");
        return 1;
    }
    return cmocka_run_group_tests_name("repeatable", tests, NULL, NULL);
}
