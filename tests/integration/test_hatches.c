/*
 * Integration tests of the escape hatches (issue 14), through the real
 * `flotilla` executable on a real PostgreSQL: rollback --skip-down for a
 * migration whose down cannot run, backups prune --id for one backup, the
 * leftovers a rollback leaves (listed by backups list, removed by backups
 * prune --leftovers), with a seeded generator of histories held to the
 * leftover invariant.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "testsupport.h"

#define S_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/*
 * The fixed history of n migrations: v1 creates tables t2 .. tn, each
 * with a column c and five rows; v >= 2 drops column c of tv (backed up
 * before), its down adds it back (and, when v is broken_down, drops a
 * column that does not exist, so it cannot run).  Each migration backs
 * up its own table, so any of them can be rolled back alone.
 */
static void
s_write_history(fl_test_ws_t *ws, int n, int broken_down)
{
    fl_buf_t up = FL_BUF_INIT(0), down = FL_BUF_INIT(0);

    for (int v = 2; v <= n; v++) {
        fl_buf_addf(&up, "CREATE TABLE t%d (id bigint PRIMARY KEY, c text);\n"
                    "INSERT INTO t%d SELECT g, 'c' || g FROM"
                    " generate_series(1, 5) g;\n", v, v);
        fl_buf_addf(&down, "DROP TABLE t%d;\n", v);
    }
    {
        char *text = fl_asprintf("-- flotilla:up\n%s-- flotilla:down\n%s",
                                 fl_buf_str(&up), fl_buf_str(&down));
        fl_test_ws_write(ws, "0001_tables.sql", text);
        free(text);
    }
    for (int v = 2; v <= n; v++) {
        char file[64];
        char *text = fl_asprintf(
            "-- flotilla:options allow=ban-drop-column the test drops it\n"
            "-- flotilla:up\nALTER TABLE t%d DROP COLUMN c;\n"
            "-- flotilla:down\nALTER TABLE t%d ADD COLUMN c text;\n%s", v, v,
            v == broken_down ? "ALTER TABLE t2 DROP COLUMN no_such;\n" : "");
        snprintf(file, sizeof(file), "%04d_drop_t%d_c.sql", v, v);
        fl_test_ws_write(ws, file, text);
        free(text);
    }
    fl_buf_release(&up);
    fl_buf_release(&down);
}

/* Runs flotilla CMD on the workspace and expects status and needle. */
static void
s_expect_run(fl_test_ws_t *ws, const char *cmd, const char *const *extra,
             int with_source, int status, const char *needle)
{
    fl_test_proc_t r;

    fl_test_ws_flotilla(ws, &r, cmd, extra, with_source);
    fl_test_expect(&r, status, needle);
    fl_test_proc_release(&r);
}

/*
 * A seed's fresh start in the same workspace: no ledger, no backups, an
 * empty schema public, and (with sources) an empty migrations directory.
 */
static void
s_reset(fl_test_ws_t *ws, int sources)
{
    fl_test_exec(ws->conn, "SET client_min_messages = warning;"
                           " DROP SCHEMA IF EXISTS flotilla, flotilla_backup,"
                           " public CASCADE; CREATE SCHEMA public");
    if (!sources)
        return;
    fl_test_rmtree(ws->mdir);
    if (mkdir(ws->mdir, 0755) != 0)
        fail_msg("mkdir %s failed", ws->mdir);
}

/* backups list --json, parsed; fails the test on anything else. */
static json_t *
s_backups(fl_test_ws_t *ws, int leftovers_only)
{
    fl_test_proc_t r;
    json_t *a = NULL;

    fl_test_ws_flotilla(ws, &r, "backups",
                        leftovers_only ? S_ARGS("list", "--json", "--leftovers")
                                       : S_ARGS("list", "--json"), 0);
    fl_test_expect(&r, 0, NULL);
    a = json_loads(r.out, 0, NULL);
    if (!json_is_array(a))
        fail_msg("backups list --json printed no array:\n%s", r.out);
    fl_test_proc_release(&r);
    return a;
}

/* The backup of version v in list a, or NULL. */
static json_t *
s_backup_of(json_t *a, long long v)
{
    size_t i;
    json_t *b;

    json_array_foreach(a, i, b)
        if (strtoll(json_string_value(json_object_get(b, "version")), NULL,
                    10) == v)
            return b;
    return NULL;
}

/*
 * A down that cannot run: rollback fails on it; --skip-down without a
 * reason is refused, so is one for a version with a newer one applied
 * above it and one for a version not applied; with a reason the row is
 * rolled back with the reason in the ledger, the ledger's log and the log
 * file, the column the migration dropped stays dropped, its backup is a
 * leftover, and the rollback goes on below it from the source.
 */
static void
test_skip_down_marks_one_version_with_its_reason(void **state)
{
    fl_test_ws_t *ws = *state;
    json_t *a = NULL;

    s_write_history(ws, 3, 3);
    s_expect_run(ws, "apply", NULL, 1,
                 0, "applied 3 migrations");

    s_expect_run(ws, "rollback", S_ARGS("--last"), 1,
                 1, "no_such");

    s_expect_run(ws, "rollback", S_ARGS("--skip-down", "3"), 0,
                 2, "--skip-down needs --reason");
    s_expect_run(ws, "rollback",
                        S_ARGS("--skip-down", "3", "--reason", ""), 0,
                 2, "--skip-down needs --reason");
    s_expect_run(ws, "rollback",
                        S_ARGS("--skip-down", "3", "--last", "--reason", "x"),
                        0,
                 2, "--skip-down goes alone");
    /* Only the newest: 2 has 3 above it. */
    s_expect_run(ws, "rollback",
                        S_ARGS("--skip-down", "2", "--reason", "x"), 0,
                 1, "migration 3 (0003_drop_t3_c.sql) above it is still "
                          "applied");
    s_expect_run(ws, "rollback",
                        S_ARGS("--skip-down", "7", "--reason", "x"), 0,
                 1, "migration 7 is not applied");
    fl_test_expect_value(ws->conn, "SELECT string_agg(status, ',' ORDER BY "
                         "version) FROM flotilla.schema_migrations",
                         "applied,applied,applied");

    s_expect_run(ws, "rollback",
                        S_ARGS("--skip-down", "3", "--reason",
                               "down drops a column that never existed"), 0,
                 0, "marked migration 3 rolled back without running "
                          "its down");
    fl_test_expect_value(ws->conn, "SELECT status || ': ' || rollback_note "
                         "FROM flotilla.schema_migrations WHERE version = '3'",
                         "rolled_back: down skipped: down drops a column "
                         "that never existed");
    fl_test_expect_value(ws->conn, "SELECT status FROM flotilla.schema_migrations"
                         " WHERE version = '2'", "applied");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla.migration_logs"
                         " WHERE version = '3' AND step = 'rollback' AND status ="
                         " 'skipped' AND message LIKE '%down drops a column "
                         "that never existed%'", "1");
    {
        fl_test_proc_t f;
        fl_test_run(&f, "/bin/cat", S_ARGS("cat", ws->log), NULL, 10);
        if (strstr(f.out, "\"status\":\"skipped\"") == NULL ||
            strstr(f.out, "down drops a column that never existed") == NULL)
            fail_msg("the log file does not record the skipped down:\n%s",
                     f.out);
        fl_test_proc_release(&f);
    }
    /* What it changed stays: t3.c is still dropped. */
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM information_schema."
                         "columns WHERE table_name = 't3' AND column_name = "
                         "'c'", "0");
    a = s_backups(ws, 0);
    assert_true(json_is_true(json_object_get(s_backup_of(a, 3), "leftover")));
    assert_true(json_is_false(json_object_get(s_backup_of(a, 2), "leftover")));
    json_decref(a);

    /* Rolling back further runs the source's downs below it. */
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1,
                 0, "rolled back 1 migration");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM information_schema."
                         "columns WHERE table_name = 't2' AND column_name = "
                         "'c'", "1");
    /* And a skipped version cannot be skipped twice. */
    s_expect_run(ws, "rollback",
                        S_ARGS("--skip-down", "3", "--reason", "again"), 0,
                 1, "Its ledger row says rolled_back");
}

/*
 * backups prune --id N: an unknown id is an error that says where to find
 * the ids; the backup of an applied migration is released and its row
 * kept, marked pruned, so that its rollback refuses; pruning it again
 * says it was already pruned; a leftover's row is deleted with it.
 */
static void
test_prune_id_removes_one_backup(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_proc_t r;
    json_t *a = NULL;
    long long id2 = 0, id3 = 0;
    char *sql = NULL;

    s_write_history(ws, 3, 0);
    s_expect_run(ws, "apply", NULL, 1,
                 0, "applied 3 migrations");
    a = s_backups(ws, 0);
    assert_int_equal(json_array_size(a), 2);
    id2 = json_integer_value(json_object_get(s_backup_of(a, 2), "id"));
    id3 = json_integer_value(json_object_get(s_backup_of(a, 3), "id"));
    json_decref(a);

    fl_test_ws_flotilla(ws, &r, "backups", S_ARGS("prune", "--id", "4242"), 0);
    fl_test_expect(&r, 1, "backup 4242 does not exist");
    if (strstr(r.err, "flotilla backups list shows the ids") == NULL)
        fail_msg("no hint for an unknown id:\n%s", r.err);
    fl_test_proc_release(&r);
    s_expect_run(ws, "backups", S_ARGS("prune", "--id", "x"), 0,
                 2, "--id");
    s_expect_run(ws, "backups",
                        S_ARGS("prune", "--id", "1", "--leftovers"), 0,
                 2, "one of --older-than DURATION, --id N, --leftovers");

    {
        char id[24];
        snprintf(id, sizeof(id), "%lld", id2);
        s_expect_run(ws, "backups",
                            S_ARGS("prune", "--id", id, "--dry-run"), 0,
                     0, "would prune 1 backup");
        sql = fl_asprintf("SELECT to_regclass('flotilla_backup.b%lld') IS NOT"
                          " NULL", id2);
        fl_test_expect_value(ws->conn, sql, "t");
        s_expect_run(ws, "backups", S_ARGS("prune", "--id", id), 0,
                     0, "pruned 1 backup");
        fl_test_expect_value(ws->conn, sql, "f");
        free(sql);
        /* Only that one. */
        sql = fl_asprintf("SELECT to_regclass('flotilla_backup.b%lld') IS NOT"
                          " NULL", id3);
        fl_test_expect_value(ws->conn, sql, "t");
        free(sql);
        sql = fl_asprintf("SELECT pruned_at IS NOT NULL FROM flotilla.backups"
                          " WHERE id = %lld", id2);
        fl_test_expect_value(ws->conn, sql, "t");
        free(sql);
        s_expect_run(ws, "backups", S_ARGS("prune", "--id", id), 0,
                     1, "was already pruned");
    }
    /* v3's rollback still works; v2's refuses: its backup is gone. */
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1,
                 0, "rolled back 1 migration");
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1,
                 1, "was pruned");
    /* Skipped, v2's pruned backup is not a leftover (nothing is left). */
    s_expect_run(ws, "rollback",
                        S_ARGS("--skip-down", "2", "--reason", "pruned"), 0,
                 0, NULL);
    a = s_backups(ws, 1);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    {
        /* Pruned by id once its migration is gone: the row goes too. */
        char id[24];
        snprintf(id, sizeof(id), "%lld", id2);
        s_expect_run(ws, "backups", S_ARGS("prune", "--id", id), 0,
                     0, "pruned 1 backup and deleted their rows");
        sql = fl_asprintf("SELECT count(*) FROM flotilla.backups WHERE id ="
                          " %lld", id2);
        fl_test_expect_value(ws->conn, sql, "0");
        free(sql);
    }
}

/*
 * Seeded histories: n migrations each backing up t, applied, then a
 * random mix of rollbacks, skipped downs and a ledger row deleted by hand
 * (as teams did before --skip-down).  Invariant, for every seed: a backup
 * is listed as a leftover exactly when its migration is not in effect
 * and its table is still there; prune --leftovers drops exactly those
 * tables and rows, and leaves every other backup's table in place.
 */
static void
test_leftovers_listed_and_pruned_generated(void **state)
{
    fl_test_ws_t *ws = *state;
    long seeds = fl_test_env_long("FLOTILLA_TEST_HATCH_SEEDS", 3);
    size_t nleftover = 0, nkept = 0;

    for (long seed = 1; seed <= seeds; seed++) {
        uint64_t rng = (uint64_t)seed * 7919u;
        int n = 3 + (int)(fl_test_rng_next(&rng) % 4);
        fl_test_proc_t r;
        json_t *a = NULL, *b = NULL;
        size_t i;
        char *expect = NULL, *got = NULL;
        fl_buf_t listed = FL_BUF_INIT(0);

        s_reset(ws, 1);
        s_write_history(ws, n, 0);
        s_expect_run(ws, "apply", NULL, 1,
                     0, NULL);
        /* From the top: roll back, skip a down, or forget a row. */
        for (int v = n; v >= 2; v--) {
            unsigned what = (unsigned)(fl_test_rng_next(&rng) % 4);
            char ver[16];

            snprintf(ver, sizeof(ver), "%d", v);
            if (what == 0)
                break;
            if (what == 1) {
                fl_test_ws_flotilla(ws, &r, "rollback", S_ARGS("--last"), 1);
            } else if (what == 2) {
                fl_test_ws_flotilla(ws, &r, "rollback",
                                    S_ARGS("--skip-down", ver, "--reason",
                                           "generated"), 0);
            } else {
                char *sql = fl_asprintf("DELETE FROM flotilla.schema_migrations"
                                        " WHERE version = '%d'", v);
                fl_test_exec(ws->conn, sql);
                free(sql);
                continue;
            }
            if (r.status != 0)
                fail_msg("seed %ld: step at v%d (%u) failed:\n%s%s", seed, v,
                         what, r.out, r.err);
            fl_test_proc_release(&r);
        }
        expect = fl_test_query_value(ws->conn,
            "SELECT coalesce(string_agg(b.id::text, ',' ORDER BY b.id), '')"
            " FROM flotilla.backups b WHERE b.released_at IS NULL AND"
            " b.pruned_at IS NULL AND to_regclass('flotilla_backup.b' ||"
            " b.id) IS NOT NULL AND NOT EXISTS (SELECT FROM"
            " flotilla.schema_migrations s WHERE s.version = b.version AND"
            " s.status = 'applied')");
        a = s_backups(ws, 0);
        json_array_foreach(a, i, b) {
            if (json_is_true(json_object_get(b, "leftover"))) {
                nleftover++;
                fl_buf_addf(&listed, "%s%lld", listed.len ? "," : "",
                            (long long)json_integer_value(
                                json_object_get(b, "id")));
            } else if (json_is_null(json_object_get(b, "restored_at"))) {
                nkept++;
            }
        }
        if (strcmp(expect, fl_buf_str(&listed)) != 0)
            fail_msg("seed %ld (FLOTILLA_TEST_HATCH_SEEDS): leftovers listed "
                     "[%s], expected [%s]", seed, fl_buf_str(&listed), expect);
        json_decref(a);
        s_expect_run(ws, "backups", S_ARGS("prune", "--leftovers"),
                            0,
                     0, NULL);
        got = fl_test_query_value(ws->conn,
            "SELECT coalesce(string_agg(b.id::text, ',' ORDER BY b.id), '')"
            " FROM flotilla.backups b WHERE to_regclass('flotilla_backup.b' ||"
            " b.id) IS NULL AND b.released_at IS NULL AND b.pruned_at IS NULL");
        if (*got)
            fail_msg("seed %ld: backups [%s] kept rows but lost their tables",
                     seed, got);
        free(got);
        got = fl_test_query_value(ws->conn,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid ="
            " c.relnamespace WHERE n.nspname = 'flotilla_backup' AND"
            " c.relkind = 'r' AND NOT EXISTS (SELECT FROM flotilla.backups b"
            " WHERE 'b' || b.id = c.relname OR 'a' || b.id = c.relname)");
        if (strcmp(got, "0") != 0)
            fail_msg("seed %ld: %s backup tables left without a row", seed,
                     got);
        free(got);
        a = s_backups(ws, 1);
        if (json_array_size(a) != 0)
            fail_msg("seed %ld: leftovers after prune --leftovers", seed);
        json_decref(a);
        free(expect);
        fl_buf_release(&listed);
    }
    /* The seeds exercised both sides of the invariant. */
    if (nleftover == 0 || nkept == 0)
        fail_msg("%ld seeds made %zu leftovers and kept %zu backups: the "
                 "generator must make both", seeds, nleftover, nkept);
    fprintf(stderr, "hatches: %ld seeds, %zu leftovers, %zu backups kept\n",
            seeds, nleftover, nkept);
}

/* Fails unless t's x values, by id, are want ("11,12"). */
static void
s_expect_x(fl_test_ws_t *ws, const char *want)
{
    fl_test_expect_value(ws->conn, "SELECT string_agg(x::text, ',' ORDER BY"
                         " id) FROM t", want);
}

/*
 * A leftover is never restored, not even by the rollback of a later
 * application of its migration: 0001 applied (its backup b1), its down
 * skipped (b1 a leftover: what it changed stays), applied again (b2),
 * then rolled back: the table is as the second application found it,
 * and b1 is still a leftover, not restored.  The same after a
 * no-transaction migration whose first attempt changed nothing and
 * failed: its backup is not restored by the rollback of the attempt
 * that succeeded, after the application wrote rows in between.  Before,
 * the rollback restored every backup of the version not yet restored:
 * it put back the rows from before the first application (a
 * later-written row lost its value), exit 0.
 */
static void
test_a_leftover_is_never_restored_by_a_later_application(void **state)
{
    fl_test_ws_t *ws = *state;
    json_t *a = NULL;

    fl_test_exec(ws->conn, "CREATE TABLE t (id int PRIMARY KEY, x int);"
                           " INSERT INTO t VALUES (1, 1), (2, 2)");
    fl_test_ws_write(ws, "0001_bump.sql",
                     "-- flotilla:up\nUPDATE t SET x = x + 10;\n"
                     "-- flotilla:down\nSELECT 1;\n");
    s_expect_run(ws, "apply", NULL, 1, 0, "applied 1 migration");
    s_expect_run(ws, "rollback",
                 S_ARGS("--skip-down", "1", "--reason", "keep it"), 0, 0,
                 NULL);
    s_expect_x(ws, "11,12");
    s_expect_run(ws, "apply", NULL, 1, 0, "applied 1 migration");
    s_expect_x(ws, "21,22");
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1, 0, NULL);
    s_expect_x(ws, "11,12");
    a = s_backups(ws, 1);
    if (json_array_size(a) != 1)
        fail_msg("%zu leftovers listed, wanted the first application's",
                 json_array_size(a));
    json_decref(a);
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla.backups"
                         " WHERE restored_at IS NOT NULL", "1");

    /* A no-transaction migration: a first attempt that changed nothing. */
    s_expect_run(ws, "apply", NULL, 1, 0, "applied 1 migration"); /* 21,22 */
    fl_test_ws_write(ws, "0002_notx.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\nUPDATE t SET x = x * 2;\n"
                     "-- flotilla:down\nSELECT 1;\n");
    fl_test_exec(ws->conn, "ALTER TABLE t ADD CONSTRAINT small"
                           " CHECK (x < 30) NOT VALID");
    s_expect_run(ws, "apply", NULL, 1, 1, "small"); /* 42 breaks it */
    fl_test_exec(ws->conn, "ALTER TABLE t DROP CONSTRAINT small;"
                           " UPDATE t SET x = 6 WHERE id = 1;"
                           " INSERT INTO t VALUES (3, 3)");
    s_expect_run(ws, "apply", NULL, 1, 0, "applied 1 migration");
    s_expect_x(ws, "12,44,6");
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1, 0, NULL);
    s_expect_x(ws, "6,22,3");
}

/* Rewrites migration v of the fixed history with down (and up) given. */
static void
s_rewrite(fl_test_ws_t *ws, int v, const char *up, const char *down)
{
    char file[64];
    char *text = fl_asprintf(
        "-- flotilla:options allow=ban-drop-column the test drops it\n"
        "-- flotilla:up\n%s-- flotilla:down\n%s", up, down);

    snprintf(file, sizeof(file), "%04d_drop_t%d_c.sql", v, v);
    fl_test_ws_write(ws, file, text);
    free(text);
}

/*
 * Up and down have separate checksums: a broken down fixed in the source
 * after its migration was applied is not drift (status, apply and plan
 * agree), a changed up still is; the rollback runs the source's down,
 * linted first (a lint error in the new down refuses it, with nothing
 * changed), and the ledger records which down ran.
 */
static void
test_a_fixed_down_is_not_drift(void **state)
{
    fl_test_ws_t *ws = *state;
    char *applied_down = NULL, *ran = NULL;

    s_write_history(ws, 3, 3);
    s_expect_run(ws, "apply", NULL, 1, 0, "applied 3 migrations");
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1, 1, "no_such");
    applied_down = fl_test_query_value(ws->conn, "SELECT down_checksum FROM "
                                       "flotilla.schema_migrations WHERE "
                                       "version = '3'");
    assert_non_null(applied_down);

    /* The fix: down without the broken statement. */
    s_rewrite(ws, 3, "ALTER TABLE t3 DROP COLUMN c;\n",
              "ALTER TABLE t3 ADD COLUMN c text;\n");
    s_expect_run(ws, "status", NULL, 1, 0, NULL);
    {
        fl_test_proc_t r;
        fl_test_ws_flotilla(ws, &r, "status", S_ARGS("--json"), 1);
        fl_test_expect(&r, 0, "\"drift\": []");
        fl_test_proc_release(&r);
    }
    s_expect_run(ws, "apply", NULL, 1, 0, "3 already applied");
    s_expect_run(ws, "plan", NULL, 1, 0, NULL);

    /* A changed up is still drift, everywhere. */
    s_rewrite(ws, 3, "ALTER TABLE t3 DROP COLUMN c; -- changed\n",
              "ALTER TABLE t3 ADD COLUMN c text;\n");
    s_expect_run(ws, "apply", NULL, 1, 3, "0003_drop_t3_c.sql (applied");
    s_expect_run(ws, "status", NULL, 1, 3, "DRIFT");
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1, 1,
                 "is not the one applied");
    s_rewrite(ws, 3, "ALTER TABLE t3 DROP COLUMN c;\n",
              "ALTER TABLE t3 ADD COLUMN c text;\n");

    s_expect_run(ws, "rollback", S_ARGS("--last"), 1, 0,
                 "rolled back 1 migration");
    ran = fl_test_query_value(ws->conn, "SELECT rollback_down_checksum FROM "
                              "flotilla.schema_migrations WHERE version = '3'");
    assert_non_null(ran);
    if (strcmp(ran, applied_down) == 0)
        fail_msg("the ledger records the down applied (%s) as the one that "
                 "ran, not the fixed one", ran);
    free(ran);
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla.migration_logs"
                         " WHERE version = '3' AND message LIKE '%changed since "
                         "it was applied%'", "1");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM information_schema."
                         "columns WHERE table_name = 't3' AND column_name = "
                         "'c'", "1");

    /* A new down with a lint error is refused before anything runs. */
    s_rewrite(ws, 2, "ALTER TABLE t2 DROP COLUMN c;\n",
              "ALTER TABLE t2 ADD COLUMN c text;\n"
              "CREATE INDEX t2_c ON t2 (c);\n");
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1, 1,
                 "require-concurrent-index-creation");
    fl_test_expect_value(ws->conn, "SELECT status FROM flotilla."
                         "schema_migrations WHERE version = '2'", "applied");
    fl_test_expect_value(ws->conn, "SELECT to_regclass('public.t2_c') IS NULL",
                         "t");
    /* A new down that does not parse (a ';' missing) is refused too. */
    s_rewrite(ws, 2, "ALTER TABLE t2 DROP COLUMN c;\n",
              "ALTER TABLE t2 ADD COLUMN c text\nSELECT 1;\n");
    s_expect_run(ws, "rollback", S_ARGS("--last"), 1, 1, "syntax error");
    fl_test_expect_value(ws->conn, "SELECT status FROM flotilla."
                         "schema_migrations WHERE version = '2'", "applied");
    free(applied_down);
}

/*
 * A ledger of version 5 (before separate checksums): its rows have only
 * the full checksum and the down they were applied with.  It is upgraded
 * in place (the columns added, the version recorded), and its rows keep
 * working: a fixed down is not drift for them either (the full checksum
 * recomputed with the ledger's down), a changed up is, and the fixed down
 * rolls back.
 */
static void
test_a_ledger_from_before_up_and_down_checksums_upgrades(void **state)
{
    fl_test_ws_t *ws = *state;

    s_write_history(ws, 3, 3);
    s_expect_run(ws, "apply", NULL, 1, 0, "applied 3 migrations");
    /* What version 6 left: no up or down checksums, version 6. */
    fl_test_exec(ws->conn,
        "ALTER TABLE flotilla.schema_migrations DROP COLUMN up_checksum,"
        " DROP COLUMN down_checksum, DROP COLUMN rollback_down_checksum;"
        "UPDATE flotilla.ledger_meta SET ledger_version = 6");
    s_rewrite(ws, 3, "ALTER TABLE t3 DROP COLUMN c;\n",
              "ALTER TABLE t3 ADD COLUMN c text;\n");
    s_expect_run(ws, "apply", NULL, 1, 0, "3 already applied");
    fl_test_expect_value(ws->conn, "SELECT max(ledger_version) FROM "
                         "flotilla.ledger_meta", "10");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla."
                         "schema_migrations WHERE up_checksum IS NULL", "3");
    s_rewrite(ws, 2, "ALTER TABLE t2 DROP COLUMN c; -- changed\n",
              "ALTER TABLE t2 ADD COLUMN c text;\n");
    s_expect_run(ws, "apply", NULL, 1, 3, "0002_drop_t2_c.sql (applied");
    s_rewrite(ws, 2, "ALTER TABLE t2 DROP COLUMN c;\n",
              "ALTER TABLE t2 ADD COLUMN c text;\n");
    s_expect_run(ws, "rollback", S_ARGS("--to", "1"), 1, 0,
                 "rolled back 2 migrations");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla."
                         "schema_migrations WHERE rollback_down_checksum IS "
                         "NOT NULL", "2");
}

/*
 * The ledger a release before up and down checksums wrote
 * (tests/fixtures/ledger/v4.sql: 0001, 0002 and 0010 applied, 0010's
 * backup taken) upgrades through versions 5, 6 and 7, and its rows, which
 * have only the full checksum, take a fixed down: not drift for apply or
 * status, and the rollback runs it, restores the backup and records it.
 */
static void
test_a_fixed_down_on_a_ledger_written_by_the_old_release(void **state)
{
    fl_test_ws_t *ws = *state;

    /* Applied with "SELECT 1;" as 0010's down; fixed since. */
    fl_test_ws_ledger_v4(ws, "SELECT 'restored by the backup';\n");
    s_expect_run(ws, "apply", NULL, 1, 0, "0 pending");
    {
        fl_test_proc_t r;
        fl_test_ws_flotilla(ws, &r, "status", S_ARGS("--json"), 1);
        fl_test_expect(&r, 0, "\"drift\": []");
        fl_test_proc_release(&r);
    }
    fl_test_expect_value(ws->conn, "SELECT max(ledger_version) FROM "
                         "flotilla.ledger_meta", "10");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla."
                         "schema_migrations WHERE up_checksum IS NULL", "3");
    s_expect_run(ws, "rollback", S_ARGS("--to", "2"), 1, 0,
                 "rolled back 1 migration");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM users", "4");
    fl_test_expect_value(ws->conn, "SELECT rollback_down_checksum IS NOT NULL"
                         " FROM flotilla.schema_migrations WHERE version ="
                         " '10'", "t");
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla."
                         "migration_logs WHERE version = '10' AND message"
                         " LIKE '%changed since it was applied%'", "1");
}

/*
 * One seeded history for the lint gate: migration 1 creates table g; each
 * later one adds a column, and (kind 1) also creates an index on g without
 * CONCURRENTLY, a lint error, or (kind 2) the same with an allow= line.
 * diesel: the same as diesel's folders 2019-02-26-00000V_gV (no kind 2:
 * allow= is a line of flotilla's own files).
 */
static void
s_write_gate_history(fl_test_ws_t *ws, int n, const int *kind, int diesel)
{
    for (int v = 1; diesel && v <= n; v++) {
        char *dir = fl_asprintf("%s/2019-02-26-%06d_g%d", ws->mdir, v, v);
        char *up = fl_asprintf("%s/up.sql", dir);
        char *down = fl_asprintf("%s/down.sql", dir);
        char *text = v == 1 ? fl_strdup("CREATE TABLE g (id int);\n")
                            : fl_asprintf("ALTER TABLE g ADD COLUMN c%d int;"
                                          "\n%s", v, kind[v] == 1
                                          ? "CREATE INDEX ON g (id);\n" : "");
        char *undo = v == 1 ? fl_strdup("DROP TABLE g;\n")
                            : fl_asprintf("ALTER TABLE g DROP COLUMN c%d;\n",
                                          v);

        if (mkdir(dir, 0755) != 0)
            fail_msg("mkdir %s failed", dir);
        fl_test_write_file(up, text);
        fl_test_write_file(down, undo);
        free(undo);
        free(text);
        free(down);
        free(up);
        free(dir);
    }
    if (diesel)
        return;
    fl_test_ws_write(ws, "0001_g.sql", "-- flotilla:up\nCREATE TABLE g (id int);\n"
                                       "-- flotilla:down\nDROP TABLE g;\n");
    for (int v = 2; v <= n; v++) {
        char file[64];
        char *text = fl_asprintf(
            "%s-- flotilla:up\nALTER TABLE g ADD COLUMN c%d int;\n%s"
            "-- flotilla:down\nALTER TABLE g DROP COLUMN c%d;\n",
            kind[v] == 2 ? "-- flotilla:options allow=require-concurrent-"
                           "index-creation g is small\n" : "", v,
            kind[v] ? "CREATE INDEX ON g (id);\n" : "", v);
        snprintf(file, sizeof(file), "%04d_g%d.sql", v, v);
        fl_test_ws_write(ws, file, text);
        free(text);
    }
}

/* The number in `"key": N` of a JSON text; -1 when absent. */
static long long
s_json_count(const char *text, const char *key)
{
    json_t *o = json_loads(text, 0, NULL);
    json_t *v = json_object_get(o, key);
    long long n = json_is_integer(v) ? json_integer_value(v) : -1;

    json_decref(o);
    return n;
}

/*
 * lint.enforce_from, generated: seeded histories of lint errors, some
 * allowed by allow= lines, and a gate anywhere in (or past) them.  For
 * every seed, lint, plan and apply agree with the rule: an error not
 * allowed refuses its migration exactly when the migration is at or after
 * the gate; before it, it is reported as a warning and counted.  lint's
 * error and not_enforced counts, plan's first refused migration and what
 * apply applies (and where it stops) are each checked against the rule;
 * the same gate read from the lint configuration (--lint-config) and
 * signed into a bundle (applied without the flag) gives the same result,
 * and a bundle applied with another gate is refused.  Even seeds write the
 * history as diesel's folders and give the gate as diesel names its
 * versions (2019-02-26-000003, read as the ledger's 20190226000003), the
 * bundle built with bundle build --dir.
 */
static void
test_lint_gate_generated(void **state)
{
    fl_test_ws_t *ws = *state;
    long seeds = fl_test_env_long("FLOTILLA_TEST_GATE_SEEDS", 4);
    char *key = fl_asprintf("%s/release", ws->dir);
    char *keyfile = fl_asprintf("%s/release.key", ws->dir);
    char *pub = fl_asprintf("%s/release.pub", ws->dir);
    char *bundle = fl_asprintf("%s/gate.bundle", ws->dir);
    char *conf = fl_asprintf("%s/lint.yaml", ws->dir);
    fl_test_proc_t r;
    size_t nbefore = 0, nrefused = 0;

    fl_test_run(&r, "flotilla", S_ARGS("flotilla", "keygen", "--out", key),
                NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    for (long seed = 1; seed <= seeds; seed++) {
        uint64_t rng = (uint64_t)seed * 104729u;
        int n = 3 + (int)(fl_test_rng_next(&rng) % 6);
        int kind[16] = {0};
        int gate = 1 + (int)(fl_test_rng_next(&rng) % (uint64_t)(n + 1));
        int first_refused = 0, diesel = seed % 2 == 0;
        long long errors = 0, before = 0;
        char gtext[32], other[32], *want = NULL, *text = NULL;

        for (int v = 2; v <= n; v++) {
            kind[v] = (int)(fl_test_rng_next(&rng) % 3);
            if (diesel && kind[v] == 2)
                kind[v] = 0;
            if (kind[v] != 1)
                continue;
            if (v >= gate) {
                errors++;
                if (first_refused == 0)
                    first_refused = v;
            } else {
                before++;
            }
        }
        nbefore += (size_t)before;
        nrefused += first_refused != 0;
        snprintf(gtext, sizeof(gtext), diesel ? "2019-02-26-%06d" : "%d",
                 gate);
        snprintf(other, sizeof(other), diesel ? "2019-02-26-%06d" : "%d",
                 gate + 1);
        s_reset(ws, 1);
        s_write_gate_history(ws, n, kind, diesel);

        /* lint: counts. */
        fl_test_run(&r, "flotilla", S_ARGS("flotilla", "lint", "--format",
                    "json", "--lint-enforce-from", gtext, ws->mdir), NULL, 60);
        if (r.status != (errors ? 1 : 0) ||
            s_json_count(r.out, "errors") != errors ||
            s_json_count(r.out, "not_enforced") != before)
            fail_msg("seed %ld (FLOTILLA_TEST_GATE_SEEDS), gate %d of %d: "
                     "lint exit %d, expected %d errors and %lld not "
                     "enforced:\n%s", seed, gate, n, r.status, (int)errors,
                     before, r.out);
        fl_test_proc_release(&r);
        /* The same from the configuration file. */
        text = fl_asprintf("enforce_from: \"%s\"\n", gtext);
        fl_test_write_file(conf, text);
        free(text);
        fl_test_run(&r, "flotilla", S_ARGS("flotilla", "lint", "--format",
                    "json", "--config", conf, ws->mdir), NULL, 60);
        if (s_json_count(r.out, "not_enforced") != before)
            fail_msg("seed %ld: lint --config enforce_from differs:\n%s",
                     seed, r.out);
        fl_test_proc_release(&r);

        /* plan: the first refused migration. */
        fl_test_ws_flotilla(ws, &r, "plan",
                            S_ARGS("--json", "--lint-config", conf), 1);
        {
            json_t *o = json_loads(r.out, 0, NULL), *m = NULL;
            size_t i;
            int refused = 0;
            json_array_foreach(json_object_get(o, "migrations"), i, m) {
                const char *verdict = json_string_value(
                    json_object_get(m, "verdict"));
                /* diesel's 20190226000003 is migration 3. */
                if (refused == 0 && verdict && strcmp(verdict, "refused") == 0)
                    refused = (int)(strtoll(json_string_value(
                        json_object_get(m, "version")), NULL, 10) % 1000000);
            }
            if (o == NULL || refused != first_refused)
                fail_msg("seed %ld, gate %d: plan refuses %d, expected %d:\n"
                         "%s%s", seed, gate, refused, first_refused, r.out,
                         r.err);
            json_decref(o);
        }
        fl_test_proc_release(&r);

        /* apply: everything below the first enforced error. */
        fl_test_ws_flotilla(ws, &r, "apply",
                            S_ARGS("--lint-enforce-from", gtext), 1);
        /* Exit 1: migration 1 (and those before the refusal) applied. */
        if (r.status != (first_refused ? 1 : 0)) {
            fprintf(stderr, "%s%s", r.out, r.err);
            fail_msg("seed %ld, gate %d: apply exit %d (output above)", seed,
                     gate, r.status);
        }
        if (before && strstr(r.err, "lint error reported as a warning") == NULL)
            fail_msg("seed %ld: apply did not report the errors before the "
                     "gate:\n%s", seed, r.err);
        fl_test_proc_release(&r);
        want = fl_asprintf("%d", first_refused ? first_refused - 1 : n);
        fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla."
                             "schema_migrations WHERE status = 'applied'",
                             want);

        /* A bundle signed with the gate: the same, with no flag. */
        if (diesel)
            fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle", "build",
                        "--dir", ws->mdir, "--layout", "diesel", "--sign",
                        keyfile, "--out", bundle, "--environment", "test",
                        "--lint-enforce-from", gtext), NULL, 60);
        else
            fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle", "build",
                        ws->mdir, "--sign", keyfile, "--out", bundle,
                        "--environment", "test", "--lint-enforce-from",
                        gtext), NULL, 60);
        fl_test_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
        s_reset(ws, 0);
        s_expect_run(ws, "apply", S_ARGS("--trust", pub, "--environment",
                     "test", "--lint-enforce-from", other, bundle), 0, 3,
                     "the bundle's signed lint.enforce_from");
        /* The same gate, as the tool names it: no conflict. */
        if (diesel) {
            fl_test_run(&r, "flotilla", S_ARGS("flotilla", "bundle",
                        "inspect", "--json", bundle), NULL, 60);
            text = fl_asprintf("\"lint_enforce_from\": \"20190226%06d\"",
                               gate);
            fl_test_expect(&r, 0, text);
            free(text);
            fl_test_proc_release(&r);
            fl_test_ws_flotilla(ws, &r, "apply", S_ARGS("--trust", pub,
                                "--environment", "test", "--lint-enforce-from",
                                gtext, bundle), 0);
        } else {
            fl_test_ws_flotilla(ws, &r, "apply", S_ARGS("--trust", pub,
                                "--environment", "test", bundle), 0);
        }
        if (r.status != (first_refused ? 1 : 0)) {
            fprintf(stderr, "%s%s", r.out, r.err);
            fail_msg("seed %ld, gate %d: bundle apply exit %d (output above)",
                     seed, gate, r.status);
        }
        fl_test_proc_release(&r);
        fl_test_expect_value(ws->conn, "SELECT count(*) FROM flotilla."
                             "schema_migrations WHERE status = 'applied'",
                             want);
        free(want);
    }
    if (nbefore == 0 || nrefused == 0)
        fail_msg("%ld seeds made %zu errors before the gate and %zu refusals "
                 "after it: the generator must make both", seeds, nbefore,
                 nrefused);
    fprintf(stderr, "hatches: %ld gate seeds, %zu errors before the gate, %zu "
            "refused after it\n", seeds, nbefore, nrefused);
    free(key);
    free(keyfile);
    free(pub);
    free(bundle);
    free(conf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_skip_down_marks_one_version_with_its_reason, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_prune_id_removes_one_backup, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_listed_and_pruned_generated, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_leftover_is_never_restored_by_a_later_application,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_fixed_down_is_not_drift, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_ledger_from_before_up_and_down_checksums_upgrades, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_fixed_down_on_a_ledger_written_by_the_old_release, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_lint_gate_generated, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("hatches", tests, NULL, NULL);
}
