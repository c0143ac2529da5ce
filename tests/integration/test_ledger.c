/*
 * Integration tests of what the ledger and the logs say, through the real
 * `flotilla` executable: each log row carries the time its step happened
 * and how long it took; the JSON outputs of the commands agree; a damaged
 * ledger, or a source that lost or renumbered an applied migration, is
 * named and refused; a ledger of the release whose versions were bigint
 * upgrades in place.
 */
#include <ctype.h>
#include <setjmp.h>
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
#include "common/file.h"
#include "proto/version.h"
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
        " (SELECT created_at FROM flotilla.migration_logs WHERE version = '1'"
        "  AND step = 'execute' AND status = 'ok') -"
        " (SELECT created_at FROM flotilla.migration_logs WHERE version = '1'"
        "  AND step = 'validate' AND status = 'ok')) * 1000)::bigint");
    if (gap < 450)
        fail_msg("validate and execute of 0001 logged %lld ms apart; the "
                 "statement between them took 500 ms", gap);
    build = s_number(ws, "SELECT duration_ms FROM flotilla.migration_logs"
                         " WHERE version = '2' AND step = 'execute' AND"
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

static void
s_run(fl_test_ws_t *ws, const char *cmd, const char *const *args, int status,
      const char *needle)
{
    fl_test_proc_t r;

    fl_test_ws_flotilla(ws, &r, cmd, args, 1);
    fl_test_expect(&r, status, needle);
    fl_test_proc_release(&r);
}

/* Renames file a to b in the workspace's migrations directory. */
static void
s_rename(fl_test_ws_t *ws, const char *a, const char *b)
{
    char *pa = fl_asprintf("%s/%s", ws->mdir, a);
    char *pb = b == NULL ? NULL : fl_asprintf("%s/%s", ws->mdir, b);

    if (pb == NULL ? unlink(pa) != 0 : rename(pa, pb) != 0)
        fail_msg("cannot move %s", pa);
    free(pa);
    free(pb);
}

/*
 * An applied migration whose file disappeared is reported by status and
 * refused by apply (both said nothing); a file renumbered to a version
 * not yet applied is named as the applied migration it is, and refused
 * (apply ran it a second time under its new number).
 */
static void
test_a_missing_or_renumbered_migration_is_reported_and_refused(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const json[] = {"--json", NULL};

    s_table(ws);
    fl_test_ws_write(ws, "0001_a.sql", "-- flotilla:up\nALTER TABLE t ADD"
                                       " COLUMN a int;\n-- flotilla:down\n"
                                       "ALTER TABLE t DROP COLUMN a;\n");
    fl_test_ws_write(ws, "0002_b.sql", "-- flotilla:up\nUPDATE t SET n = n"
                                       " + 1;\n-- flotilla:down\nUPDATE t SET"
                                       " n = n - 1;\n");
    s_run(ws, "apply", NULL, 0, "applied 2 migrations");
    /* Renumbered: 0002 becomes 0003, which apply would run again. */
    s_rename(ws, "0002_b.sql", "0003_b.sql");
    s_run(ws, "status", NULL, 3, "RENUMBERED: 0003_b.sql is 0002_b.sql "
                                 "(version 2, applied)");
    s_run(ws, "status", json, 3, "\"renumbered_as\": \"0003_b.sql\"");
    s_run(ws, "apply", NULL, 3, "0003_b.sql is migration 2 (0002_b.sql, "
                                "applied) renumbered");
    s_run(ws, "plan", NULL, 3, "missing from the source");
    fl_test_expect_value(ws->conn, "SELECT string_agg(n::text, ',' ORDER BY"
                                   " id) FROM t", "2,3,4,5");
    /* Gone. */
    s_rename(ws, "0003_b.sql", NULL);
    s_run(ws, "status", NULL, 3, "MISSING: 0002_b.sql (version 2, applied)"
                                 " is not in the source");
    s_run(ws, "apply", NULL, 3, "migration 2 (0002_b.sql, applied) is not in"
                                " the source");
    /* Rolled back first, it may go. */
    fl_test_ws_write(ws, "0002_b.sql", "-- flotilla:up\nUPDATE t SET n = n"
                                       " + 1;\n-- flotilla:down\nUPDATE t SET"
                                       " n = n - 1;\n");
    {
        const char *const last[] = {"--last", NULL};
        s_run(ws, "rollback", last, 0, "rolled back 1 migration");
    }
    s_rename(ws, "0002_b.sql", NULL);
    s_run(ws, "status", NULL, 0, NULL);
    s_run(ws, "apply", NULL, 0, "applied 0 migrations");
}

/*
 * A damaged ledger (a flotilla table or column dropped) is named, with a
 * hint, by every command that reads it, and never re-created: a dropped
 * schema_migrations made every migration pending again, and apply ran
 * them a second time; a dropped column gave a raw SQL error.
 */
static void
test_a_damaged_ledger_is_named_and_not_recreated(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const json[] = {"--json", NULL};
    fl_test_proc_t r;

    s_table(ws);
    fl_test_ws_write(ws, "0001_b.sql", "-- flotilla:up\nUPDATE t SET n = n"
                                       " + 1;\n-- flotilla:down\nUPDATE t SET"
                                       " n = n - 1;\n");
    s_run(ws, "apply", NULL, 0, "applied 1 migration");
    fl_test_exec(ws->conn, "ALTER TABLE flotilla.schema_migrations"
                           " DROP COLUMN file");
    s_run(ws, "status", NULL, 1, "the ledger in database");
    s_run(ws, "apply", NULL, 3, "is damaged: column "
                                "flotilla.schema_migrations.file is missing");
    fl_test_exec(ws->conn, "DROP TABLE flotilla.schema_migrations");
    s_run(ws, "apply", NULL, 3, "table flotilla.schema_migrations is "
                                "missing");
    s_run(ws, "plan", NULL, 1, "table flotilla.schema_migrations");
    s_run(ws, "status", json, 1, "pg_dump --schema=flotilla");
    fl_test_ws_flotilla(ws, &r, "log", NULL, 0);
    fl_test_expect(&r, 1, "table flotilla.schema_migrations is missing");
    fl_test_proc_release(&r);
    fl_test_exec(ws->conn, "DROP TABLE flotilla.ledger_meta");
    s_run(ws, "apply", NULL, 3, "table flotilla.ledger_meta, table "
                                "flotilla.schema_migrations are missing");
    /* Nothing ran twice, nothing was re-created. */
    fl_test_expect_value(ws->conn, "SELECT string_agg(n::text, ',' ORDER BY"
                                   " id) FROM t", "2,3,4,5");
    fl_test_expect_value(ws->conn, "SELECT to_regclass('flotilla.ledger_meta')"
                                   " IS NULL", "t");
}

/*
 * Walks v: every "version" is a version's text (proto/version.h) or null,
 * and no value is the empty string (a missing value is null in every
 * command's JSON).
 */
/* Whether t is a time as every --json output gives one: RFC 3339, UTC. */
static int
s_rfc3339_utc(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;

    for (; shape[i] != '\0'; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != shape[i])
            return 0;
    if (t[i] == '.') {
        size_t d = ++i;
        while (isdigit((unsigned char)t[i]))
            i++;
        if (i == d)
            return 0;
    }
    return t[i] == 'Z' && t[i + 1] == '\0';
}

static void
s_json_agrees(const char *what, const json_t *v, const char *key)
{
    size_t klen = key ? strlen(key) : 0;

    /* One time format (status said "...+00", log "... UTC", backups no
     * zone at all, schema_state RFC 3339). */
    if (klen > 3 && strcmp(key + klen - 3, "_at") == 0 &&
        json_is_string(v) && !s_rfc3339_utc(json_string_value(v)))
        fail_msg("%s: \"%s\" is \"%s\", not an RFC 3339 time in UTC", what,
                 key, json_string_value(v));
    if (key && strcmp(key, "version") == 0 && !json_is_null(v) &&
        !(json_is_string(v) && fl_version_is_canonical(json_string_value(v))))
        fail_msg("%s: \"version\" is neither a version nor null", what);
    if (json_is_string(v) && *json_string_value(v) == '\0')
        fail_msg("%s: \"%s\" is \"\" rather than null", what,
                 key ? key : "(array item)");
    if (json_is_object(v)) {
        const char *k = NULL;
        json_t *x = NULL;
        json_object_foreach((json_t *)v, k, x)
            s_json_agrees(what, x, k);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x = NULL;
        json_array_foreach(v, i, x)
            s_json_agrees(what, x, key);
    }
}

/* Runs cmd --json (with args), expects status, checks its output. */
static json_t *
s_json_run(fl_test_ws_t *ws, const char *cmd, const char *const *args,
           int with_source, int status)
{
    const char *argv[8] = {"--json", NULL};
    fl_test_proc_t r;
    json_error_t jerr;
    json_t *o = NULL;
    size_t n = 1;

    for (size_t i = 0; args && args[i] && n < 7; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fl_test_ws_flotilla(ws, &r, cmd, argv, with_source);
    fl_test_expect(&r, status, NULL);
    o = json_loads(r.out, 0, &jerr);
    if (o == NULL)
        fail_msg("%s --json printed no JSON: %s\n%s", cmd, jerr.text, r.out);
    s_json_agrees(cmd, o, NULL);
    fl_test_proc_release(&r);
    return o;
}

/*
 * The JSON outputs agree across commands: every time ("..._at") is RFC
 * 3339 in UTC, "version" is a version's text
 * everywhere (log said "1" and status 1; since issue 14 every one is the
 * string, as versions may not fit a JSON number), never "" for a run's rows, a missing value is
 * null, never "" (log's migration, bundle and rollout; backups'
 * restored_at; plan's kind); apply --to 1 counts the versions after it as
 * pending (it said 0).
 */
static void
test_json_outputs_agree(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const to1[] = {"--to", "1", NULL};
    const char *const list[] = {"list", NULL};
    json_t *o = NULL;

    s_table(ws);
    fl_test_ws_write(ws, "0001_a.sql", "-- flotilla:up\nDELETE FROM t WHERE"
                                       " id = 4;\n-- flotilla:down\nSELECT"
                                       " 1;\n");
    fl_test_ws_write(ws, "0002_b.sql", "-- flotilla:up\nALTER TABLE t ADD"
                                       " COLUMN b int;\n-- flotilla:down\n"
                                       "ALTER TABLE t DROP COLUMN b;\n");
    fl_test_ws_write(ws, "0003_c.sql", "-- flotilla:up\nALTER TABLE t ADD"
                                       " COLUMN c int;\n-- flotilla:down\n"
                                       "ALTER TABLE t DROP COLUMN c;\n");
    o = s_json_run(ws, "plan", NULL, 1, 0);
    json_decref(o);
    o = s_json_run(ws, "apply", to1, 1, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "applied")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "pending")), 2);
    json_decref(o);
    json_decref(s_json_run(ws, "status", NULL, 1, 0));
    json_decref(s_json_run(ws, "log", NULL, 0, 0));
    o = s_json_run(ws, "backups", list, 0, 0);
    assert_int_equal(json_array_size(o), 1);
    json_decref(o);
    json_decref(s_json_run(ws, "locks", NULL, 0, 0));
    o = s_json_run(ws, "apply", NULL, 1, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "pending")), 0);
    json_decref(o);
}

/*
 * log --limit N gives the N newest steps, --slowest the slowest first
 * (docs/pipeline.md; neither was tested): a migration held 2 s in its
 * execute step is the first of --slowest.  Each step's duration was
 * counted from the migration's start: verify-after, the last, was always
 * the slowest.
 */
static void
test_log_limit_and_slowest(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const lim[] = {"--limit", "2", NULL};
    const char *const slow[] = {"--slowest", "--limit", "1", NULL};
    json_t *o = NULL, *all = NULL;
    const json_t *row = NULL, *top = NULL;
    const char *what = NULL;
    size_t i;

    s_table(ws);
    fl_test_ws_write(ws, "0001_slow.sql", "-- flotilla:up\nSELECT"
                                          " pg_sleep(2);\n-- flotilla:down\n"
                                          "SELECT 1;\n");
    fl_test_ws_write(ws, "0002_b.sql", "-- flotilla:up\nALTER TABLE t ADD"
                                       " COLUMN b int;\n-- flotilla:down\n"
                                       "ALTER TABLE t DROP COLUMN b;\n");
    json_decref(s_json_run(ws, "apply", NULL, 1, 0));
    all = s_json_run(ws, "log", NULL, 0, 0);
    assert_true(json_array_size(all) > 2);
    o = s_json_run(ws, "log", lim, 0, 0);
    assert_int_equal(json_array_size(o), 2);
    /* The newest two: the first two of the whole log, newest first. */
    for (i = 0; i < 2; i++)
        assert_true(json_equal(json_array_get(o, i), json_array_get(all, i)));
    json_decref(o);
    o = s_json_run(ws, "log", slow, 0, 0);
    assert_int_equal(json_array_size(o), 1);
    top = json_array_get(o, 0);
    what = fl_asprintf("%s %s", json_string_value(json_object_get(top,
                                                                  "version")),
                       json_string_value(json_object_get(top, "step")));
    if (strcmp(what, "1 execute") != 0 ||
        json_integer_value(json_object_get(top, "duration_ms")) < 2000)
        fail_msg("the slowest step is not 0001's execute (2 s): %s",
                 json_dumps(top, 0));
    free((char *)what);
    json_array_foreach(all, i, row) {
        json_int_t ms = json_integer_value(json_object_get(row,
                                                           "duration_ms"));
        /* Each step's own time: none but execute took the 2 s. */
        if (ms >= 2000 && !json_equal(row, top))
            fail_msg("another step took 2 s too: %s", json_dumps(row, 0));
        assert_true(ms <= json_integer_value(json_object_get(top,
                                                             "duration_ms")));
    }
    json_decref(o);
    json_decref(all);
}

/*
 * A ledger of version 4, written by the release whose versions were
 * bigint (tests/fixtures/ledger/v4.sql: its three migrations applied, one
 * with a backup), upgrades in place on the first run of this one: the
 * version columns become text, rows and checksums hold (no drift, the
 * backup restores), and a version beyond 64 bits applies after them and
 * sorts last, in the ledger's order and in status; version 10 sorts after
 * 2 (as text it would not).
 */
static void
test_a_ledger_of_bigint_versions_upgrades_in_place(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const to2[] = {"--to", "2", NULL};
    const char *const to0[] = {"--to", "0", NULL};
    json_t *o = NULL, *m = NULL;
    size_t i;
    fl_buf_t order = FL_BUF_INIT(0);

    fl_test_ws_ledger_v4(ws, NULL);
    fl_test_expect_value(ws->conn, "SELECT data_type FROM"
                         " information_schema.columns WHERE table_schema ="
                         " 'flotilla' AND table_name = 'schema_migrations'"
                         " AND column_name = 'version'", "bigint");
    /* Everything applied already: the old checksums match. */
    s_run(ws, "apply", NULL, 0, "0 pending");
    fl_test_expect_value(ws->conn, "SELECT max(ledger_version) FROM"
                         " flotilla.ledger_meta", "10");
    fl_test_expect_value(ws->conn, "SELECT string_agg(DISTINCT data_type, ',')"
                         " FROM information_schema.columns WHERE"
                         " table_schema = 'flotilla' AND column_name ="
                         " 'version'", "text");
    fl_test_ws_write(ws, "20210410175418123456_pop.sql",
        "-- flotilla:up\nCREATE TABLE pop (id int);\n"
        "-- flotilla:down\nDROP TABLE pop;\n");
    s_run(ws, "apply", NULL, 0, "applied 1 migration");
    fl_test_expect_value(ws->conn, "SELECT string_agg(version, ',' ORDER BY"
                         " version_order) FROM flotilla.schema_migrations",
                         "1,2,10,20210410175418123456");
    o = s_json_run(ws, "status", NULL, 1, 0);
    json_array_foreach(json_object_get(o, "migrations"), i, m)
        fl_buf_addf(&order, "%s%s", i ? "," : "",
                    json_string_value(json_object_get(m, "version")));
    assert_string_equal(fl_buf_str(&order), "1,2,10,20210410175418123456");
    assert_int_equal(json_array_size(json_object_get(o, "drift")), 0);
    json_decref(o);
    fl_buf_release(&order);
    /* Back to 2: the pop table goes, the two pruned rows come back. */
    s_run(ws, "rollback", to2, 0, "rolled back 2");
    fl_test_expect_value(ws->conn, "SELECT count(*)::text || ' ' ||"
                         " (to_regclass('pop') IS NULL)::text FROM users",
                         "4 true");
    s_run(ws, "apply", NULL, 0, "applied 2 migrations");
    s_run(ws, "rollback", to0, 0, "rolled back 4");
    fl_test_expect_value(ws->conn, "SELECT to_regclass('users') IS NULL",
                         "t");
}

/* pg_dump --schema-only of schema flotilla, without comments and settings. */
static char *
s_ledger_dump(const char *conninfo)
{
    const char *bin = getenv("FL_PG_BIN");
    char *pg_dump = fl_asprintf("%s/pg_dump",
                                bin ? bin : "/usr/lib/postgresql/15/bin");
    const char *argv[] = {"pg_dump", "--schema-only", "--schema=flotilla",
                          "--dbname", conninfo, NULL};
    fl_test_proc_t r;
    fl_buf_t b = FL_BUF_INIT(0);
    char *save = NULL;

    fl_test_run(&r, pg_dump, argv, NULL, 120);
    if (r.status != 0)
        fail_msg("pg_dump failed (exit %d): %s", r.status, r.err);
    /* \restrict lines carry a random key; comments and SETs no shape. */
    for (char *l = strtok_r(r.out, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, "--", 2) != 0 && strncmp(l, "\\restrict", 9) != 0 &&
            strncmp(l, "\\unrestrict", 11) != 0 && strncmp(l, "SET ", 4) != 0 &&
            strncmp(l, "SELECT pg_catalog.set_config", 28) != 0)
            fl_buf_addf(&b, "%s\n", l);
    fl_test_proc_release(&r);
    free(pg_dump);
    return fl_buf_detach(&b);
}

/* The ledger's tables whose data file is not their first. */
#define S_REWRITTEN                                                         \
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid ="        \
    " c.relnamespace WHERE n.nspname = 'flotilla' AND c.relkind = 'r' AND"  \
    " c.relfilenode <> c.oid"

/*
 * A new ledger is created in one step in its current shape (where no
 * schema flotilla exists); it is exactly the ledger the upgrade steps
 * make, from version 1 (where the schema exists already, empty) and from
 * the version 4 fixture: pg_dump of schema flotilla gives the same text,
 * columns in the same order, constraints, indexes and sequences by the
 * same names.
 */
static void
test_a_new_ledger_has_the_shape_the_upgrades_give(void **state)
{
    fl_test_ws_t *ws = *state;
    fl_test_db_t fresh, steps;
    PGconn *c = NULL;
    fl_test_proc_t r;
    char *upgraded = NULL, *made = NULL, *stepped = NULL;

    fl_test_ws_ledger_v4(ws, NULL);
    s_run(ws, "apply", NULL, 0, "0 pending");
    upgraded = s_ledger_dump(ws->db.conninfo);
    fl_test_db_create(&fresh, "ledger_new");
    fl_test_db_create(&steps, "ledger_steps");
    c = fl_test_db_connect(&steps);
    fl_test_exec(c, "CREATE SCHEMA flotilla");
    PQfinish(c);
    fl_test_flotilla(&r, ws->dir, fresh.conninfo, ws->log, "apply", NULL,
                     ws->mdir);
    fl_test_expect(&r, 0, "applied 3 migrations");
    fl_test_proc_release(&r);
    fl_test_flotilla(&r, ws->dir, steps.conninfo, ws->log, "apply", NULL,
                     ws->mdir);
    fl_test_expect(&r, 0, "applied 3 migrations");
    fl_test_proc_release(&r);
    /* Made in one step, no table rewritten: each keeps its first file. */
    c = fl_test_db_connect(&fresh);
    fl_test_expect_value(c, S_REWRITTEN, "0");
    PQfinish(c);
    c = fl_test_db_connect(&steps);
    fl_test_expect_value(c, S_REWRITTEN, "5");
    PQfinish(c);
    made = s_ledger_dump(fresh.conninfo);
    stepped = s_ledger_dump(steps.conninfo);
    assert_non_null(strstr(made, "CREATE TABLE flotilla.schema_migrations"));
    assert_string_equal(made, stepped);
    assert_string_equal(made, upgraded);
    free(upgraded);
    free(made);
    free(stepped);
    fl_test_db_drop(&fresh);
    fl_test_db_drop(&steps);
}

/*
 * A database's first migration makes its ledger without the ownership
 * check only while neither of its schemas exists, and looks again under
 * the ledger's lock: a ledger another session made meanwhile (its
 * creation committed while this one waited for the lock) is seen there,
 * not missed by a look-up the catalog cache answers from before the
 * wait, which failed with 'schema "flotilla" already exists'.
 */
static void
test_a_ledger_made_while_waiting_for_its_lock_is_seen(void **state)
{
    fl_test_ws_t *ws = *state;
    PGconn *holder = fl_test_db_connect(&ws->db);
    fl_test_child_t c;
    fl_test_proc_t r;

    fl_test_ws_write(ws, "0001_a.sql", "-- flotilla:up\nCREATE TABLE a (id int);"
                     "\n-- flotilla:down\nDROP TABLE a;\n");
    fl_test_exec(holder, "BEGIN; SELECT pg_advisory_xact_lock(1718578273, 1)");
    fl_test_ws_spawn(ws, &c, "apply", NULL, 1);
    fl_test_ws_await_child(ws, &c, "SELECT count(*) > 0 FROM pg_locks WHERE"
                           " locktype = 'advisory' AND NOT granted AND"
                           " classid = 1718578273 AND objid = 1", 60);
    fl_test_exec(holder, "CREATE SCHEMA flotilla; COMMIT");
    PQfinish(holder);
    fl_test_child_wait(&c, &r, 120);
    fl_test_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM"
                         " flotilla.schema_migrations WHERE status = 'applied'",
                         "1");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_rows_say_when_each_step_happened_and_how_long, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_missing_or_renumbered_migration_is_reported_and_refused, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_ledger_is_named_and_not_recreated, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_json_outputs_agree, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_log_limit_and_slowest, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_ledger_of_bigint_versions_upgrades_in_place, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_new_ledger_has_the_shape_the_upgrades_give, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_ledger_made_while_waiting_for_its_lock_is_seen, fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
