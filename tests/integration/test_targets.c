/*
 * Schema-per-tenant targets, through the real `flotilla` executable: two
 * tenants of one database, each a schema with the same tables, migrate
 * and roll back independently (--schema), in parallel, and a ledger
 * written before targets existed upgrades with its rows intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "testsupport.h"

#define S_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static int
s_setup(void **state)
{
    fl_test_ws_t *e = fl_calloc(1, sizeof(*e));

    fl_test_ws_open(e, "tgt");
    for (int t = 1; t <= 2; t++) {
        char *sql = fl_asprintf(
            "CREATE SCHEMA t%d;"
            "CREATE TABLE t%d.items (id int PRIMARY KEY, v text);"
            "INSERT INTO t%d.items SELECT g, 'v' || g"
            " FROM generate_series(1, 10) g;", t, t, t);
        fl_test_exec(e->conn, sql);
        free(sql);
    }
    *state = e;
    return 0;
}

/* flotilla CMD --schema SCHEMA EXTRA... [mdir]; expects status, says. */
static void
s_run(fl_test_ws_t *e, const char *schema, int status, const char *says,
      const char *cmd, const char *const *extra, int with_source)
{
    const char *argv[24];
    size_t n = 0;
    fl_test_proc_t r;

    if (schema) {
        argv[n++] = "--schema";
        argv[n++] = schema;
    }
    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fl_test_ws_flotilla(e, &r, cmd, argv, with_source);
    fl_test_expect(&r, status, says);
    fl_test_proc_release(&r);
}

static void
s_assert_value(fl_test_ws_t *e, const char *sql, const char *want)
{
    char *v = fl_test_query_value(e->conn, sql);

    if (v == NULL || strcmp(v, want) != 0)
        fail_msg("%s: expected \"%s\", got \"%s\"", sql, want, v ? v : "NULL");
    free(v);
}

static const char s_m1[] =
    "-- flotilla:up\n"
    "ALTER TABLE items ADD COLUMN note text;\n"
    "UPDATE items SET note = 'n' || id;\n"
    "CREATE TABLE made (id int);\n"
    "-- flotilla:down\n"
    "DROP TABLE made;\n"
    "ALTER TABLE items DROP COLUMN note;\n";
static const char s_m2[] =
    "-- flotilla:up\nDELETE FROM items WHERE id > 5;\n"
    "-- flotilla:down\nSELECT 1;\n";

/*
 * Two tenants, one database: each has its own applied versions, backups
 * and log; unqualified names resolve in the tenant's schema; rolling one
 * back leaves the other as it is.
 */
static void
test_two_tenants_of_one_database_are_independent(void **state)
{
    fl_test_ws_t *e = *state;

    fl_test_ws_write(e, "0001_note.sql", s_m1);
    fl_test_ws_write(e, "0002_trim.sql", s_m2);
    s_run(e, "t1", 0, "applied 2", "apply", NULL, 1);
    s_assert_value(e, "SELECT (SELECT count(*) FROM t1.items)::text || ' ' ||"
                      " (SELECT count(*) FROM t2.items) || ' ' ||"
                      " (to_regclass('t1.made') IS NOT NULL) || ' ' ||"
                      " (to_regclass('public.made') IS NULL)", "5 10 true true");
    /* t2 has nothing applied; the database target neither. */
    s_run(e, "t2", 0, "0 migrations", "status", NULL, 1);
    s_run(e, NULL, 0, "0 migrations", "status", NULL, 1);
    s_run(e, "t2", 0, "applied 1", "apply", S_ARGS("--to", "1"), 1);
    s_assert_value(e, "SELECT string_agg(target || ':' || version, ','"
                      " ORDER BY target, version)"
                      " FROM flotilla.schema_migrations WHERE status = 'applied'",
                      "t1:1,t1:2,t2:1");
    /* Each tenant's backups and log are its own. */
    s_run(e, "t1", 0, "t1.items", "backups", S_ARGS("list"), 0);
    s_assert_value(e, "SELECT string_agg(DISTINCT target || ':' ||"
                      " source_schema, ',') FROM flotilla.backups",
                      "t1:t1,t2:t2");
    s_run(e, "t2", 0, NULL, "log", NULL, 0);
    s_assert_value(e, "SELECT count(DISTINCT target) FROM"
                      " flotilla.migration_logs", "2");
    /* Rolling t1 back restores t1's rows and leaves t2 alone. */
    s_run(e, "t1", 0, "rolled back 2", "rollback", S_ARGS("--to", "0"), 1);
    s_assert_value(e, "SELECT (SELECT count(*) FROM t1.items)::text || ' ' ||"
                      " (SELECT count(*) FROM pg_attribute WHERE attrelid ="
                      " 't1.items'::regclass AND attname = 'note') || ' ' ||"
                      " (SELECT count(*) FROM pg_attribute WHERE attrelid ="
                      " 't2.items'::regclass AND attname = 'note') || ' ' ||"
                      " (SELECT count(*) FROM t2.items WHERE note IS NOT NULL)",
                      "10 0 1 10");
    s_run(e, "t2", 0, "applied 1", "apply", NULL, 1);
    s_assert_value(e, "SELECT count(*) FROM t2.items", "5");
}

/* A schema target names a schema that exists. */
/*
 * A tenant holds two keys: its own, and the database's shared (which keeps
 * a run on the whole database out).  Releasing either is refused, by
 * plan and by apply, and the migration's work rolled back.
 */
static void
test_a_tenant_cannot_release_its_lock(void **state)
{
    fl_test_ws_t *e = *state;
    static const char *const calls[] = {
        "SELECT pg_advisory_unlock_all();",
        "SELECT pg_advisory_unlock(1718578273, hashtext(current_database()"
        " || '/t1') & 2147483647);",
        "SELECT pg_advisory_unlock_shared(1718578273,"
        " hashtext(current_database()) & 2147483647);",
    };

    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        char *text = fl_asprintf("-- flotilla:up\nCREATE TABLE t1.made (id int);"
                                 "\n%s\n-- flotilla:down\nDROP TABLE t1.made;"
                                 "\n", calls[i]);

        fl_test_ws_write(e, "0001_unlock.sql", text);
        s_run(e, "t1", 3, "a statement released flotilla's lock on", "plan",
              NULL, 1);
        s_run(e, "t1", 3, "a statement released flotilla's lock on", "apply",
              NULL, 1);
        s_assert_value(e, "SELECT to_regclass('t1.made') IS NULL", "t");
        free(text);
    }
}

static void
test_a_missing_schema_is_refused(void **state)
{
    fl_test_ws_t *e = *state;

    fl_test_ws_write(e, "0001_note.sql", s_m1);
    s_run(e, "t9", 1, "schema \"t9\" does not exist", "apply", NULL, 1);
    s_assert_value(e, "SELECT to_regclass('public.made') IS NULL", "t");
}

/*
 * A tenant's migration that reaches another tenant's table is refused
 * (by plan and by apply) and changes nothing, whichever way it gets
 * there: by name, through a DO block, a function, a trigger, a foreign
 * key's cascade, a change of structure, or a DROP; and so is a down
 * that does, by rollback.
 * Reading another schema and adding rows to one (a shared audit table)
 * is not refused.
 */
/*
 * Migration text (with --schema t1) is refused by plan (exit 3, saying
 * plan_says, NULL: the refusal) and by apply (exit status), and query
 * before gives want after each.
 */
static void
s_refused(fl_test_ws_t *e, const char *text, const char *before,
          const char *want, const char *plan_says, int status)
{
    fl_test_ws_write(e, "0001_reach.sql", text);
    /* The plan says so first, and its rehearsal changes nothing. */
    s_run(e, "t1", 3, plan_says ? plan_says
                                : "outside its target schema \"t1\"", "plan",
          S_ARGS("--allow-lint-errors"), 1);
    s_assert_value(e, before, want);
    s_run(e, "t1", status, "outside its target schema \"t1\"", "apply",
          S_ARGS("--allow-lint-errors"), 1);
    s_assert_value(e, before, want);
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations"
                      " WHERE status = 'applied'", "0");
}

/* s_refused of each of n up sections (the down SELECT 1), exit 3. */
static void
s_refused_each(fl_test_ws_t *e, const char *const *ups, size_t n,
               const char *before, const char *want)
{
    for (size_t i = 0; i < n; i++) {
        char *text = fl_asprintf("-- flotilla:up\n%s\n"
                                 "-- flotilla:down\nSELECT 1;\n", ups[i]);
        s_refused(e, text, before, want, NULL, 3);
        free(text);
    }
}

static void
test_a_tenant_cannot_change_another_tenants_tables(void **state)
{
    fl_test_ws_t *e = *state;
    static const char *const refused[] = {
        "DELETE FROM t2.items WHERE id = 2;",
        "UPDATE t2.items SET v = 'x';",
        "TRUNCATE t2.items;",
        "ALTER TABLE t2.items DROP COLUMN v;",
        "CREATE INDEX items_v ON t2.items (v);",
        "DO $$ BEGIN EXECUTE 'DELETE FROM t2.items WHERE id > 8'; END $$;",
        "INSERT INTO log VALUES (1);",         /* its trigger deletes in t2 */
        "DELETE FROM parent WHERE id = 2;",    /* cascades to t2.items */
        "SELECT t1.wipe();",                   /* a function's UPDATE */
        "DROP TABLE t2.items;",
        "DROP TABLE parent CASCADE;",          /* t2.items loses its key */
        "DO $$ BEGIN EXECUTE 'DROP SCHEMA t2 CASCADE'; END $$;",
    };
    const char *before = "SELECT md5(string_agg(id || ':' || v || ':' ||"
                         " coalesce(p::text, '-'), ',' ORDER BY id))"
                         " || (SELECT count(*) FROM pg_attribute WHERE"
                         " attrelid = 't2.items'::regclass AND attnum > 0"
                         " AND NOT attisdropped) || (SELECT count(*) FROM"
                         " pg_index WHERE indrelid = 't2.items'::regclass)"
                         " FROM t2.items";
    char *want = NULL;

    fl_test_exec(e->conn,
        "CREATE TABLE t1.parent (id int PRIMARY KEY);"
        "INSERT INTO t1.parent VALUES (1), (2);"
        "ALTER TABLE t2.items ADD COLUMN p int"
        " REFERENCES t1.parent ON DELETE CASCADE;"
        "UPDATE t2.items SET p = 2 WHERE id < 4;"
        "CREATE TABLE t1.log (id int);"
        "CREATE FUNCTION t1.zap() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN DELETE FROM t2.items WHERE id = 9; RETURN NEW; END$$;"
        "CREATE TRIGGER zap AFTER INSERT ON t1.log"
        " FOR EACH ROW EXECUTE FUNCTION t1.zap();"
        "CREATE FUNCTION t1.wipe() RETURNS void LANGUAGE sql AS"
        " $$UPDATE t2.items SET v = NULL WHERE id = 5$$;"
        "CREATE SCHEMA shared; CREATE TABLE shared.audit (msg text);");
    want = fl_test_query_value(e->conn, before);
    s_refused_each(e, refused, sizeof(refused) / sizeof(refused[0]), before,
                   want);
    /*
     * Reading another tenant's table and adding rows to a shared one;
     * dropping what it made itself, its own table, a temporary one.
     */
    fl_test_ws_write(e, "0001_reach.sql", "-- flotilla:up\n"
                     "INSERT INTO shared.audit SELECT count(*) || ' rows'"
                     " FROM t2.items;\n"
                     "CREATE TABLE staging (id int PRIMARY KEY, v text);\n"
                     "CREATE TEMP TABLE scratch (id int);\n"
                     "DROP TABLE staging, scratch;\n"
                     "DROP TABLE log;\n"
                     "-- flotilla:down\nSELECT 1;\n");
    s_run(e, "t1", 0, "OK", "plan", S_ARGS("--allow-lint-errors"), 1);
    s_run(e, "t1", 0, "applied 1", "apply", S_ARGS("--allow-lint-errors"), 1);
    s_assert_value(e, "SELECT string_agg(msg, ',') FROM shared.audit",
                   "10 rows");
    s_assert_value(e, before, want);
    /*
     * A down that reaches another tenant is refused as an up is: in one
     * transaction, nothing rolled back; statement by statement (its first
     * cannot run in a transaction), stopped at the one that reaches.
     */
    for (int k = 0; k < 2; k++) {
        char file[32];

        snprintf(file, sizeof(file), "000%d_mine.sql", k + 2);
        fl_test_ws_write(e, file, k == 0
            ? "-- flotilla:up\nCREATE TABLE mine (id int);\n"
              "-- flotilla:down\nDELETE FROM t2.items WHERE id > 5;\n"
              "DROP TABLE mine;\n"
            : "-- flotilla:options no-transaction\n"
              "-- flotilla:up\nCREATE TABLE mine3 (id int);\n"
              "CREATE INDEX CONCURRENTLY mine3_id ON mine3 (id);\n"
              "-- flotilla:down\nDROP INDEX CONCURRENTLY mine3_id;\n"
              "UPDATE t2.items SET v = 'gone';\nDROP TABLE mine3;\n");
        s_run(e, "t1", 0, "applied 1", "apply", S_ARGS("--allow-lint-errors"),
              1);
        s_run(e, "t1", 1, "outside its target schema \"t1\"", "rollback",
              S_ARGS("--last", "--allow-lint-errors"), 1);
        s_assert_value(e, before, want);
    }
    s_assert_value(e, "SELECT string_agg(version || ' ' || down_done || ' ' ||"
                      " status, ', ' ORDER BY version) FROM"
                      " flotilla.schema_migrations WHERE version > '1'",
                   "2 0 applied, 3 1 rolling_back");
    free(want);
}

/*
 * What takes no lock on another tenant's tables but changes what they
 * hold or who may read them is refused too, by plan and by apply: a GRANT
 * on its table or schema, its enum's value renamed (every row
 * holding it now reads another), its schema or type renamed, a function
 * made or replaced in its schema (its triggers and defaults call it),
 * its default privileges, a schema made; by name or in a DO block; and
 * what belongs to the whole database or cluster (an extension, an event
 * trigger, which would run in every later DDL of flotilla's, a
 * publication of every table, a role's settings, a role).  Its
 * catalog is as it was after each.  The tenant's own grants, functions,
 * types and tables (with TOAST) are its to change.
 */
static void
test_a_tenant_cannot_change_another_tenants_definitions(void **state)
{
    fl_test_ws_t *e = *state;
    static const char *const refused[] = {
        "GRANT SELECT ON t2.items TO PUBLIC;",
        "GRANT USAGE ON SCHEMA t2 TO PUBLIC;",
        "ALTER TYPE t2.mood RENAME VALUE 'sad' TO 'glad';",
        "ALTER TYPE t2.mood ADD VALUE 'meh';",
        "ALTER TYPE t2.mood RENAME TO feeling;",
        "ALTER SCHEMA t2 RENAME TO t2x;",
        "CREATE FUNCTION t2.f() RETURNS int LANGUAGE sql AS 'SELECT 2';",
        "CREATE OR REPLACE FUNCTION t2.existing() RETURNS int LANGUAGE sql"
        " AS 'SELECT 2';",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA t2 GRANT SELECT ON TABLES"
        " TO PUBLIC;",
        "CREATE SCHEMA t3;",
        "DO $$ BEGIN EXECUTE 'GRANT SELECT ON t2.items TO PUBLIC'; END $$;",
        /* What is the whole database's or the cluster's. */
        "CREATE EXTENSION IF NOT EXISTS citext;",
        "CREATE EVENT TRIGGER fl_tgt_grab ON ddl_command_start"
        " EXECUTE FUNCTION t1.grab();",
        "CREATE PUBLICATION fl_tgt_leak FOR ALL TABLES;",
        "ALTER ROLE CURRENT_USER SET work_mem = '1MB';",
        "CREATE ROLE fl_tgt_evil;",
    };
    const char *before =
        "SELECT md5(concat_ws('|',"
        " (SELECT string_agg(nspname || coalesce(nspacl::text, ''), ','"
        "  ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 't2%'"
        "  OR nspname = 't3'),"
        " (SELECT string_agg(c.relname || coalesce(c.relacl::text, ''), ','"
        "  ORDER BY c.relname) FROM pg_class c"
        "  WHERE c.relnamespace::regnamespace::text LIKE 't2%'),"
        " (SELECT string_agg(a.attname || a.attacl::text, ',') FROM"
        "  pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        "  WHERE c.relnamespace::regnamespace::text LIKE 't2%'"
        "  AND a.attacl IS NOT NULL),"
        " (SELECT string_agg(t.typname, ',' ORDER BY t.typname) FROM pg_type t"
        "  WHERE t.typnamespace::regnamespace::text LIKE 't2%'),"
        " (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)"
        "  FROM pg_enum WHERE enumtypid IN (SELECT oid FROM pg_type"
        "  WHERE typnamespace::regnamespace::text LIKE 't2%')),"
        " (SELECT string_agg(proname || prosrc, ',' ORDER BY proname)"
        "  FROM pg_proc WHERE pronamespace::regnamespace::text LIKE 't2%'),"
        " (SELECT count(*) FROM pg_default_acl),"
        " (SELECT count(*) FROM pg_extension),"
        " (SELECT count(*) FROM pg_event_trigger),"
        " (SELECT count(*) FROM pg_publication),"
        " (SELECT count(*) FROM pg_db_role_setting),"
        " (SELECT count(*) FROM pg_roles WHERE rolname = 'fl_tgt_evil')))";
    char *want = NULL;

    fl_test_exec(e->conn,
        "CREATE TYPE t2.mood AS ENUM ('ok', 'sad');"
        "ALTER TABLE t2.items ADD COLUMN m t2.mood DEFAULT 'sad';"
        "CREATE FUNCTION t2.existing() RETURNS int LANGUAGE sql"
        " AS 'SELECT 1';"
        "CREATE FUNCTION t1.grab() RETURNS event_trigger LANGUAGE plpgsql"
        " AS $$BEGIN NULL; END$$;");
    want = fl_test_query_value(e->conn, before);
    s_refused_each(e, refused, sizeof(refused) / sizeof(refused[0]), before,
                   want);
    fl_test_ws_write(e, "0001_reach.sql", "-- flotilla:up\n"
                     "GRANT SELECT ON t1.items TO PUBLIC;\n"
                     "GRANT USAGE ON SCHEMA t1 TO PUBLIC;\n"
                     "CREATE TYPE t1.mood AS ENUM ('a');\n"
                     "ALTER TYPE t1.mood ADD VALUE 'b';\n"
                     "CREATE FUNCTION t1.g() RETURNS int LANGUAGE sql"
                     " AS 'SELECT 1';\n"
                     "CREATE TABLE t1.notes (id int, body text);\n"
                     "CREATE TEMP TABLE scratch (body text);\n"
                     "SELECT count(*) FROM t2.items;\n"
                     "-- flotilla:down\nSELECT 1;\n");
    s_run(e, "t1", 0, "OK", "plan", S_ARGS("--allow-lint-errors"), 1);
    s_run(e, "t1", 0, "applied 1", "apply", S_ARGS("--allow-lint-errors"), 1);
    s_assert_value(e, before, want);
    /* A down is checked as an up is: refused, nothing rolled back. */
    fl_test_ws_write(e, "0002_down.sql", "-- flotilla:up\nSELECT 1;\n"
                     "-- flotilla:down\nGRANT SELECT ON t2.items TO PUBLIC;\n");
    s_run(e, "t1", 0, "applied 1", "apply", S_ARGS("--allow-lint-errors"), 1);
    s_run(e, "t1", 1, "outside its target schema \"t1\"", "rollback",
          S_ARGS("--last"), 1);
    s_assert_value(e, before, want);
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations"
                      " WHERE version = '2'", "applied");
    free(want);
}

/*
 * A statement that cannot run in a transaction leaves no lock to read and
 * cannot be undone: one that reaches another tenant's schema is refused
 * before it runs, by plan and by apply, whether it names that schema or
 * reaches it through the search_path, a REINDEX of a schema or a
 * database, or a VACUUM or CLUSTER of every table.  The other tenant's
 * table, its indexes and its partitions stay as they were, files and
 * all; the tenant's own CONCURRENTLY statements run.
 */
static void
test_a_tenant_cannot_reach_another_tenant_outside_a_transaction(void **state)
{
    fl_test_ws_t *e = *state;
    static const struct {
        const char *up;
        int status;      /* of apply; plan exits 3 */
        const char *plan; /* what plan says, when not the refusal */
    } refused[] = {
        {"CREATE INDEX CONCURRENTLY items_v2 ON t2.items (v);", 3, NULL},
        {"DROP INDEX CONCURRENTLY t2.items_v;", 3, NULL},
        {"DROP INDEX CONCURRENTLY IF EXISTS t1.nothing, t2.items_v;", 3,
         NULL},
        {"REINDEX TABLE CONCURRENTLY t2.items;", 3, NULL},
        {"REINDEX INDEX CONCURRENTLY t2.items_pkey;", 3, NULL},
        {"REINDEX SCHEMA CONCURRENTLY t2;", 3, NULL},
        {"REINDEX DATABASE CONCURRENTLY", 3, NULL}, /* the database's name */
        {"VACUUM FULL t2.items;", 3, NULL},
        {"VACUUM (FULL) t1.items, t2.items;", 3, NULL},
        {"VACUUM FULL;", 3, NULL},
        {"CLUSTER;", 3, NULL},
        {"ALTER TABLE t2.parted DETACH PARTITION t2.part1 CONCURRENTLY;", 3,
         NULL},
        /* Resolved where it runs, the SET before it committed (exit 1):
         * last. */
        {"SET search_path = t2;\nCREATE INDEX CONCURRENTLY ON items (v);", 1,
         "NOT PROVEN"},
    };
    const char *before =
        "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id))"
        " || ' ' || (SELECT string_agg(c.oid || '/' || c.relfilenode || '/'"
        " || c.relname, ',' ORDER BY c.relname) FROM pg_class c"
        " WHERE c.relnamespace = 't2'::regnamespace)"
        " || ' ' || (SELECT count(*) FROM pg_inherits"
        " WHERE inhparent = 't2.parted'::regclass)"
        " FROM t2.items";
    char *want = NULL;

    fl_test_exec(e->conn,
        "CREATE INDEX items_v ON t2.items (v);"
        "CREATE TABLE t2.parted (id int, v text) PARTITION BY RANGE (id);"
        "CREATE TABLE t2.part1 PARTITION OF t2.parted"
        " FOR VALUES FROM (1) TO (100);"
        "INSERT INTO t2.parted VALUES (1, 'a'), (2, 'b');");
    want = fl_test_query_value(e->conn, before);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char *up = strchr(refused[i].up, ';') != NULL
                       ? fl_strdup(refused[i].up)
                       : fl_asprintf("%s %s;", refused[i].up, e->db.name);
        char *text = fl_asprintf("-- flotilla:options no-transaction\n"
                                 "-- flotilla:up\n%s\n"
                                 "-- flotilla:down\nSELECT 1;\n", up);

        free(up);
        s_refused(e, text, before, want, refused[i].plan, refused[i].status);
        free(text);
    }
    /* The last one's row (failed, its SET committed) makes way. */
    fl_test_exec(e->conn, "DELETE FROM flotilla.schema_migrations");
    /* Its own table, by name and through the search_path. */
    fl_test_ws_write(e, "0001_reach.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\n"
                     "CREATE INDEX CONCURRENTLY items_v ON t1.items (v);\n"
                     "REINDEX TABLE CONCURRENTLY items;\n"
                     "REINDEX SCHEMA CONCURRENTLY t1;\n"
                     "VACUUM (FULL, ANALYZE) items;\n"
                     "-- flotilla:down\n"
                     "DROP INDEX CONCURRENTLY t2.items_v;\n");
    /* Not rehearsed (no plan runs CONCURRENTLY), and not refused. */
    s_run(e, "t1", 3, "NOT PROVEN", "plan", S_ARGS("--allow-lint-errors"), 1);
    s_run(e, "t1", 0, "applied 1", "apply", S_ARGS("--allow-lint-errors"), 1);
    s_assert_value(e, "SELECT count(*) FROM pg_indexes WHERE schemaname = 't1'"
                      " AND indexname = 'items_v'", "1");
    s_assert_value(e, before, want);
    /* Its down reaches t2: refused, nothing of it run. */
    s_run(e, "t1", 1, "outside its target schema \"t1\"", "rollback",
          S_ARGS("--last", "--allow-lint-errors"), 1);
    s_assert_value(e, before, want);
    free(want);
}

/*
 * Starts `flotilla apply` of the workspace's directory (--schema schema
 * when not NULL) in a child, whose only migration runs first (statements,
 * or "") and then waits on advisory lock 4242, which holder holds;
 * returns when that migration waits there.
 */
static pid_t
s_start_held(fl_test_ws_t *e, const char *schema, const char *first)
{
    char *text = fl_asprintf("-- flotilla:up\n%s"
                             "SELECT pg_advisory_xact_lock(4242);\n"
                             "CREATE TABLE waited (id int);\n"
                             "-- flotilla:down\nDROP TABLE waited;\n", first);
    pid_t pid;

    fl_test_ws_write(e, "0001_wait.sql", text);
    free(text);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fl_test_proc_t r;
        fl_test_ws_flotilla(e, &r, "apply", schema
                                ? S_ARGS("--schema", schema, "--lock-timeout",
                                         "60s")
                                : S_ARGS("--lock-timeout", "60s"), 1);
        _exit(r.status);
    }
    for (int i = 0; i < 600; i++) {
        char *v = fl_test_query_value(e->conn,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND NOT granted AND objid = 4242");
        int waiting = strcmp(v, "1") == 0;
        free(v);
        if (waiting)
            return pid;
        usleep(50000);
    }
    fail_msg("the held migration never reached its lock");
    return pid;
}

/*
 * Applies a one-migration directory `name` (creating table name) to
 * schema (NULL: the whole database) without waiting for the target's
 * lock; expects status and says.
 */
static void
s_apply_other(fl_test_ws_t *e, const char *name, const char *schema,
              int status, const char *says)
{
    char *dir = fl_asprintf("%s/%s", e->dir, name);
    char *file = fl_asprintf("%s/0001_%s.sql", dir, name);
    char *text = fl_asprintf("-- flotilla:up\nCREATE TABLE %s (id int);\n"
                             "-- flotilla:down\nDROP TABLE %s;\n", name, name);
    const char *argv[16];
    size_t n = 0;
    fl_test_proc_t r;

    argv[n++] = "flotilla";
    argv[n++] = "apply";
    argv[n++] = "--db";
    argv[n++] = e->db.conninfo;
    if (schema != NULL) {
        argv[n++] = "--schema";
        argv[n++] = schema;
    }
    argv[n++] = "--lock-wait";
    argv[n++] = "0s";
    argv[n++] = "--log-file";
    argv[n++] = "";
    argv[n++] = dir;
    argv[n] = NULL;
    assert_int_equal(mkdir(dir, 0755), 0);
    fl_test_write_file(file, text);
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    fl_test_expect(&r, status, says);
    fl_test_proc_release(&r);
    free(text);
    free(file);
    free(dir);
}

/* Lets the held migration go; it must finish applied. */
static void
s_release_held(PGconn *holder, pid_t pid)
{
    int status = 0;

    fl_test_exec(holder, "SELECT pg_advisory_unlock(4242)");
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * Two tenants migrate at once: while t1's migration is held (it waits on
 * an advisory lock this test holds), t2 applies without waiting, and a
 * second run on t1 finds t1 locked; so does a run on the whole database,
 * whose migrations may touch t1 (it used to take a lock of its own and
 * migrate beside t1's run).
 */
static void
test_two_tenants_migrate_in_parallel(void **state)
{
    fl_test_ws_t *e = *state;
    PGconn *holder = fl_test_db_connect(&e->db);
    pid_t pid;

    fl_test_exec(holder, "SELECT pg_advisory_lock(4242)");
    pid = s_start_held(e, "t1", "");
    /* Another tenant's migrations do not wait for t1. */
    s_apply_other(e, "other", "t2", 0, "applied 1");
    /* The same tenant does, and so does the whole database. */
    s_run(e, "t1", 5, "another flotilla run is migrating it", "apply",
          S_ARGS("--lock-wait", "0s"), 1);
    s_apply_other(e, "whole", NULL, 5, "another flotilla run is migrating");
    s_release_held(holder, pid);
    s_assert_value(e, "SELECT (to_regclass('t1.waited') IS NOT NULL) AND"
                      " (to_regclass('t2.other') IS NOT NULL) AND"
                      " (to_regclass('public.whole') IS NULL)", "t");
    PQfinish(holder);
}

/*
 * The catalog check counts as the migration's only the rows its own
 * transaction wrote: another session's change of another schema,
 * committed while the migration ran and after its transaction had its
 * id (so that the rows' xmin are newer than the migration's), is not
 * the migration's and does not refuse it.
 */
static void
test_another_sessions_change_meanwhile_is_not_the_migrations(void **state)
{
    fl_test_ws_t *e = *state;
    PGconn *holder = fl_test_db_connect(&e->db);
    pid_t pid;

    fl_test_exec(holder, "SELECT pg_advisory_lock(4242)");
    pid = s_start_held(e, "t1", "CREATE TABLE early (id int);\n");
    fl_test_exec(e->conn, "GRANT SELECT ON t2.items TO PUBLIC;"
                          "CREATE FUNCTION t2.meanwhile() RETURNS int"
                          " LANGUAGE sql AS 'SELECT 1';"
                          "CREATE SCHEMA meanwhile");
    s_release_held(holder, pid);
    s_assert_value(e, "SELECT (to_regclass('t1.early') IS NOT NULL) AND"
                      " (to_regclass('t1.waited') IS NOT NULL)", "t");
    PQfinish(holder);
}

/*
 * While the whole database migrates, no tenant of it does (their run
 * used to take only its schema's lock and migrate beside it); after it,
 * they do.
 */
static void
test_the_whole_database_excludes_its_tenants(void **state)
{
    fl_test_ws_t *e = *state;
    PGconn *holder = fl_test_db_connect(&e->db);
    pid_t pid;

    fl_test_exec(holder, "SELECT pg_advisory_lock(4242)");
    pid = s_start_held(e, NULL, "");
    s_apply_other(e, "other", "t2", 5, "another flotilla run is migrating");
    s_release_held(holder, pid);
    s_assert_value(e, "SELECT (to_regclass('public.waited') IS NOT NULL) AND"
                      " (to_regclass('t2.other') IS NULL)", "t");
    s_apply_other(e, "again", "t2", 0, "applied 1");
    PQfinish(holder);
}

/*
 * A ledger written before targets (version 3: no target column, keys by
 * version) upgrades in place: its rows become the database target's, and
 * what they record still holds (applied, rolled back from the source).
 */
static void
test_a_ledger_from_before_targets_upgrades(void **state)
{
    fl_test_ws_t *e = *state;

    fl_test_ws_write(e, "0001_note.sql",
                     "-- flotilla:up\nALTER TABLE t1.items ADD COLUMN note text;\n"
                     "-- flotilla:down\nALTER TABLE t1.items DROP COLUMN note;\n");
    s_run(e, NULL, 0, "applied 1", "apply", NULL, 1);
    /* Make it what version 3 left: no target anywhere, the old keys. */
    fl_test_exec(e->conn,
        "ALTER TABLE flotilla.schema_migrations DROP COLUMN target;"
        "ALTER TABLE flotilla.schema_migrations ADD PRIMARY KEY (version);"
        "ALTER TABLE flotilla.migration_logs DROP COLUMN target;"
        "ALTER TABLE flotilla.backups DROP COLUMN target;"
        "ALTER TABLE flotilla.sequence_backups DROP COLUMN target;"
        "ALTER TABLE flotilla.release_marks DROP COLUMN target;"
        "ALTER TABLE flotilla.release_marks ADD PRIMARY KEY (channel);"
        "ALTER TABLE flotilla.schema_changes DROP COLUMN target;"
        "ALTER TABLE flotilla.schema_changes ADD PRIMARY KEY"
        " (version, kind, ident);"
        "ALTER TABLE flotilla.schema_migrations"
        " DROP COLUMN IF EXISTS baseline_source;"
        "DELETE FROM flotilla.ledger_meta WHERE ledger_version >= 4;");
    fl_test_ws_write(e, "0002_more.sql",
                     "-- flotilla:up\nCREATE TABLE public.more (id int);\n"
                     "-- flotilla:down\nDROP TABLE public.more;\n");
    s_run(e, NULL, 0, "applied 1", "apply", NULL, 1);
    s_assert_value(e, "SELECT string_agg(target || ':' || version, ','"
                      " ORDER BY version_order) FROM flotilla.schema_migrations",
                      ":1,:2");
    s_assert_value(e, "SELECT max(ledger_version) FROM flotilla.ledger_meta",
                   "8");
    s_run(e, NULL, 0, "rolled back 2", "rollback", S_ARGS("--to", "0"), 1);
    s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid ="
                      " 't1.items'::regclass AND attname = 'note'", "0");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_two_tenants_of_one_database_are_independent, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tenant_cannot_change_another_tenants_tables, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tenant_cannot_reach_another_tenant_outside_a_transaction,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tenant_cannot_change_another_tenants_definitions, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_tenant_cannot_release_its_lock,
                                        s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_missing_schema_is_refused,
                                        s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_the_whole_database_excludes_its_tenants,
                                        s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_another_sessions_change_meanwhile_is_not_the_migrations,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_two_tenants_migrate_in_parallel,
                                        s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_ledger_from_before_targets_upgrades, s_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("targets", tests, NULL, NULL);
}
