/*
 * `flotilla baseline` on databases another tool migrated, through the
 * real executable and a real PostgreSQL.  For each tool (diesel,
 * golang-migrate, pop, sqlx, dbmate, Flyway) the test writes a small
 * history in the tool's layout, creates the tool's ledger table exactly
 * as the tool does and runs the migrations as the tool runs them (libpq's
 * simple query protocol, each in a transaction with its ledger row, or
 * golang-migrate's dirty flag around one multi-statement query); then
 * baselines from that ledger, baselines again (nothing new), checks what
 * flotilla's ledger and log say, applies the next migration of the
 * same tree with flotilla apply, rolls back through a baselined
 * migration (its down from the tool's tree) and re-applies, with the
 * canonical dump as before and the tool-era row kept.  The refusals: a database that does
 * not look migrated (with the difference), a dirty or failed migration in
 * the tool's ledger, a version the source lacks, a gap, flotilla's ledger
 * disagreeing, a missing tool table.  Flotilla's own source baselines by
 * --to and then takes the next migration with apply.
 *
 * The generative part holds lint/shape.h to the server: seeded histories
 * of CREATE TABLE, ADD/DROP/RENAME COLUMN, RENAME and DROP TABLE are run
 * on the database and the shape computed from their text must equal the
 * tables and columns the catalog has (FLOTILLA_TEST_SEEDS, default 40).
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
#include <libpq-fe.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/file.h"
#include "lint/shape.h"
#include "testsupport.h"

#define S_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

typedef enum {
    S_DIESEL,
    S_GOLANG,
    S_POP,
    S_SQLX,
    S_DBMATE,
    S_FLYWAY
} s_tool;

static const char *const s_tool_names[] = {
    "diesel", "golang-migrate", "pop", "sqlx", "dbmate", "flyway"};

/* The history every tool's fixture holds, and a fourth migration. */
static const struct {
    const char *name, *up, *down;
} s_migs[] = {
    {"create_accounts",
     "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n",
     "DROP TABLE accounts;\n"},
    {"add_notes",
     "ALTER TABLE accounts ADD COLUMN name text;\n"
     "CREATE TABLE notes (id bigint PRIMARY KEY,\n"
     "  account_id bigint REFERENCES accounts, body text);\n",
     "DROP TABLE notes;\nALTER TABLE accounts DROP COLUMN name;\n"},
    {"rename_body",
     "ALTER TABLE notes RENAME COLUMN body TO content;\n",
     "ALTER TABLE notes RENAME COLUMN content TO body;\n"},
    {"add_tags",
     "CREATE TABLE tags (id bigint PRIMARY KEY, label text);\n",
     "DROP TABLE tags;\n"},
};

/*
 * The rows of Flotilla's ledger, 0 when there is none: a refused
 * baseline makes no ledger.  query_to_xml runs the count only when the
 * table is there (a plain subquery would be refused at parse time).
 */
#define S_LEDGER_ROWS                                                      \
    "SELECT CASE WHEN to_regclass('flotilla.schema_migrations') IS NULL"   \
    " THEN 0 ELSE (pg_catalog.xpath('/row/c/text()', query_to_xml("        \
    "'SELECT count(*) AS c FROM flotilla.schema_migrations', false, true," \
    " '')))[1]::text::int END"

/* Migration i (0-based) as the tool records its version. */
static char *
s_version(s_tool t, int i)
{
    if (t == S_GOLANG)
        return fl_asprintf("%d", i + 1);
    /* Flyway's V1_2 is "1.2"; pop's versions may pass 64 bits. */
    if (t == S_FLYWAY)
        return fl_asprintf("1.%d", i + 1);
    if (t == S_POP)
        return fl_asprintf("2019022600000000000%d", i + 1);
    return fl_asprintf("2019022600000%d", i + 1);
}

/* The tool's project directory under the workspace, and its migrations. */
static char *
s_project(fl_test_ws_t *e, s_tool t)
{
    return fl_asprintf("%s/%s", e->dir, s_tool_names[t]);
}

static char *
s_source(fl_test_ws_t *e, s_tool t)
{
    return fl_asprintf("%s/%s/migrations", e->dir, s_tool_names[t]);
}

static void
s_mkdir(const char *path)
{
    if (mkdir(path, 0700) != 0)
        fail_msg("could not make %s", path);
}

static void
s_write(const char *dir, const char *name, const char *text)
{
    char *path = fl_asprintf("%s/%s", dir, name);
    fl_test_write_file(path, text);
    free(path);
}

/* Writes migration i in the tool's layout. */
static void
s_write_migration(fl_test_ws_t *e, s_tool t, int i)
{
    char *src = s_source(e, t), *v = s_version(t, i), *n = NULL, *text = NULL;
    const char *name = s_migs[i].name;

    switch (t) {
    case S_DIESEL: {
        char *dir = fl_asprintf("%s/2019-02-26-00000%d_%s", src, i + 1, name);
        s_mkdir(dir);
        s_write(dir, "up.sql", s_migs[i].up);
        s_write(dir, "down.sql", s_migs[i].down);
        free(dir);
        break;
    }
    case S_GOLANG:
    case S_SQLX:
        n = fl_asprintf("%s_%s.up.sql", v, name);
        s_write(src, n, s_migs[i].up);
        free(n);
        n = fl_asprintf("%s_%s.down.sql", v, name);
        s_write(src, n, s_migs[i].down);
        break;
    case S_POP:
        n = fl_asprintf("%s_%s.postgres.up.sql", v, name);
        s_write(src, n, s_migs[i].up);
        free(n);
        n = fl_asprintf("%s_%s.postgres.down.sql", v, name);
        s_write(src, n, s_migs[i].down);
        break;
    case S_DBMATE:
        n = fl_asprintf("%s_%s.sql", v, name);
        text = fl_asprintf("-- migrate:up\n%s\n-- migrate:down\n%s", s_migs[i].up,
                           s_migs[i].down);
        s_write(src, n, text);
        break;
    case S_FLYWAY:
        n = fl_asprintf("V1_%d__%s.sql", i + 1, name);
        s_write(src, n, s_migs[i].up);
        free(n);
        n = fl_asprintf("U1_%d__%s.sql", i + 1, name);
        s_write(src, n, s_migs[i].down);
        break;
    }
    free(n);
    free(text);
    free(v);
    free(src);
}

/* The project around the migrations, with what tells sqlx from golang. */
static void
s_write_project(fl_test_ws_t *e, s_tool t, int count)
{
    char *proj = s_project(e, t), *src = s_source(e, t);

    s_mkdir(proj);
    s_mkdir(src);
    if (t == S_SQLX)
        s_write(proj, "Cargo.toml", "[package]\nname = \"app\"\n");
    if (t == S_GOLANG)
        s_write(proj, "go.mod", "module app\n");
    for (int i = 0; i < count; i++)
        s_write_migration(e, t, i);
    free(proj);
    free(src);
}

/* The tool's ledger table, as the tool creates it. */
static const char *const s_ledger_ddl[] = {
    /* diesel_migrations: CREATE_MIGRATIONS_TABLE */
    "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations ("
    " version VARCHAR(50) PRIMARY KEY NOT NULL,"
    " run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    /* golang-migrate database/postgres ensureVersionTable */
    "CREATE TABLE IF NOT EXISTS \"public\".\"schema_migrations\""
    " (version bigint not null primary key, dirty boolean not null)",
    /* pop as kratos runs it (ory/x popx): 48 characters, for its
     * 20-digit versions (pop's own table has 14) */
    "CREATE TABLE \"schema_migration\" (\"version\" VARCHAR (48) NOT NULL,"
    " \"version_self\" INT NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX \"schema_migration_version_idx\" ON"
    " \"schema_migration\" (version)",
    /* sqlx-postgres ensure_migrations_table */
    "CREATE TABLE IF NOT EXISTS _sqlx_migrations ("
    " version BIGINT PRIMARY KEY, description TEXT NOT NULL,"
    " installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),"
    " success BOOLEAN NOT NULL, checksum BYTEA NOT NULL,"
    " execution_time BIGINT NOT NULL)",
    /* dbmate's postgres driver CreateMigrationsTable */
    "create table if not exists public.schema_migrations"
    " (version varchar(128) primary key)",
    /* Flyway's PostgreSQL createMetaDataTable.sql */
    "CREATE TABLE \"public\".\"flyway_schema_history\" ("
    " \"installed_rank\" INT NOT NULL, \"version\" VARCHAR(50),"
    " \"description\" VARCHAR(200) NOT NULL, \"type\" VARCHAR(20) NOT NULL,"
    " \"script\" VARCHAR(1000) NOT NULL, \"checksum\" INTEGER,"
    " \"installed_by\" VARCHAR(100) NOT NULL,"
    " \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),"
    " \"execution_time\" INTEGER NOT NULL, \"success\" BOOLEAN NOT NULL);"
    "ALTER TABLE \"public\".\"flyway_schema_history\" ADD CONSTRAINT"
    " \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\");"
    "CREATE INDEX \"flyway_schema_history_s_idx\" ON"
    " \"public\".\"flyway_schema_history\" (\"success\")",
};

/* The ledger row the tool writes for migration i (ran: its SQL ran). */
static char *
s_ledger_row(s_tool t, int i)
{
    char *v = s_version(t, i), *sql = NULL;

    switch (t) {
    case S_DIESEL:
        sql = fl_asprintf("INSERT INTO __diesel_schema_migrations (version)"
                          " VALUES ('%s')", v);
        break;
    case S_GOLANG:
        sql = fl_asprintf("TRUNCATE \"public\".\"schema_migrations\";"
                          "INSERT INTO \"public\".\"schema_migrations\""
                          " (version, dirty) VALUES (%s, false)", v);
        break;
    case S_POP:
        sql = fl_asprintf("INSERT INTO schema_migration (version) VALUES"
                          " ('%s')", v);
        break;
    case S_SQLX:
        sql = fl_asprintf("INSERT INTO _sqlx_migrations (version, description,"
                          " success, checksum, execution_time) VALUES (%s,"
                          " '%s', TRUE, sha384(convert_to($q$%s$q$,"
                          " 'UTF8')), -1)", v, s_migs[i].name, s_migs[i].up);
        break;
    case S_DBMATE:
        sql = fl_asprintf("insert into public.schema_migrations (version)"
                          " values ('%s')", v);
        break;
    case S_FLYWAY:
        sql = fl_asprintf("INSERT INTO \"public\".\"flyway_schema_history\""
                          " (installed_rank, version, description, type,"
                          " script, checksum, installed_by, execution_time,"
                          " success) VALUES (%d, '%s', '%s', 'SQL',"
                          " 'V1_%d__%s.sql', 0, current_user, 3, true)",
                          i + 1, v, s_migs[i].name, i + 1, s_migs[i].name);
        break;
    }
    free(v);
    return sql;
}

/*
 * Runs migrations [0, count) as the tool does, each with its ledger row;
 * skip (-1: none) is recorded but not run, for a database that does not
 * look migrated.
 */
static void
s_migrate_as_tool(PGconn *conn, s_tool t, int count, int skip)
{
    fl_test_exec(conn, s_ledger_ddl[t]);
    for (int i = 0; i < count; i++) {
        char *row = s_ledger_row(t, i);
        const char *up = i == skip ? "" : s_migs[i].up;
        char *sql;

        if (t == S_GOLANG) {
            /* Dirty first, the file as one query, then clean. */
            char *dirty = fl_asprintf("BEGIN; TRUNCATE \"public\"."
                                      "\"schema_migrations\"; INSERT INTO"
                                      " \"public\".\"schema_migrations\""
                                      " (version, dirty) VALUES (%d, true);"
                                      " COMMIT", i + 1);
            fl_test_exec(conn, dirty);
            free(dirty);
            if (*up)
                fl_test_exec(conn, up);
            sql = fl_asprintf("BEGIN; %s; COMMIT", row);
        } else {
            sql = fl_asprintf("BEGIN; %s %s; COMMIT", up, row);
        }
        fl_test_exec(conn, sql);
        free(sql);
        free(row);
    }
}

static void
s_expect_value(fl_test_ws_t *e, const char *sql, const char *want)
{
    fl_test_expect_value(e->conn, sql, want);
}

static void
s_flotilla(fl_test_ws_t *e, int status, const char *says, const char *cmd,
           const char *const *extra, const char *source)
{
    fl_test_proc_t r;

    fl_test_flotilla(&r, e->dir, e->db.conninfo, e->log, cmd, extra, source);
    fl_test_expect(&r, status, says);
    fl_test_proc_release(&r);
}

/*
 * A database the tool migrated is baselined from the tool's ledger:
 * every migration recorded as applied, none run again, each logged;
 * baselining again records nothing new.
 */
static void
s_baseline_tool(fl_test_ws_t *e, s_tool t)
{
    char *src = s_source(e, t);
    const char *tool = s_tool_names[t];
    char *want = NULL;

    s_write_project(e, t, 3);
    s_migrate_as_tool(e->conn, t, 3, -1);
    fl_test_exec(e->conn, "INSERT INTO notes VALUES (1, NULL, 'kept')");
    s_flotilla(e, 0, "baselined 3 migrations", "baseline",
               S_ARGS("--from", tool), src);
    s_expect_value(e, "SELECT count(*) FILTER (WHERE status = 'applied')"
                      "::text || '/' || count(*) FROM flotilla.schema_migrations",
                   "3/3");
    want = fl_asprintf("%s", tool);
    s_expect_value(e, "SELECT string_agg(DISTINCT baseline_source, ',')"
                      " FROM flotilla.schema_migrations", want);
    s_expect_value(e, "SELECT count(*) FROM flotilla.migration_logs WHERE"
                      " step = 'baseline' AND status = 'ok' AND version IS"
                      " NOT NULL", "3");
    /* Nothing ran: the row inserted after the tool's run is still there. */
    s_expect_value(e, "SELECT content FROM notes", "kept");
    /* Idempotent. */
    s_flotilla(e, 0, "\"verdict\": \"already\"", "baseline",
               S_ARGS("--from", tool, "--json"), src);
    s_flotilla(e, 0, "3 migrations through version", "baseline",
               S_ARGS("--from", tool), src);
    s_expect_value(e, S_LEDGER_ROWS, "3");
    /* Then flotilla apply takes the next migration of the same tree. */
    s_write_migration(e, t, 3);
    s_flotilla(e, 0, "applied 1 migration", "apply", NULL, src);
    s_expect_value(e, "SELECT count(*) FILTER (WHERE baseline_source IS NULL)"
                      " || '/' || count(*) FROM flotilla.schema_migrations"
                      " WHERE status = 'applied'", "1/4");
    s_expect_value(e, "SELECT count(*) FROM flotilla.migration_logs WHERE"
                      " step = 'execute' AND status = 'ok'", "1");
    s_expect_value(e, "SELECT to_regclass('tags') IS NOT NULL", "t");
    /*
     * A baselined migration rolls back (its down, from the tool's tree)
     * and re-applies like any other: back to the second, then forward.
     */
    {
        char *before = fl_test_canonical_dump(e->conn);
        char *to = s_version(t, 1), *after = NULL, *gate = NULL;

        s_flotilla(e, 0, "rolled back 2", "rollback", S_ARGS("--to", to),
                   src);
        s_expect_value(e, "SELECT (to_regclass('tags') IS NULL) AND"
                          " (SELECT count(*) FROM pg_attribute WHERE attrelid"
                          " = 'notes'::regclass AND attname = 'body') = 1",
                       "t");
        s_expect_value(e, "SELECT body FROM notes", "kept");
        /*
         * The history's rename is a lint error: the gate a team adopting
         * Flotilla sets starts after its history (docs/adopting.md).
         */
        gate = s_version(t, 3);
        s_flotilla(e, 0, "applied 2 migrations", "apply",
                   S_ARGS("--lint-enforce-from", gate), src);
        after = fl_test_canonical_dump(e->conn);
        assert_string_equal(before, after);
        s_expect_value(e, "SELECT content FROM notes", "kept");
        free(before);
        free(after);
        free(to);
        free(gate);
    }
    free(want);
    free(src);
}

static void
test_diesel_is_baselined_from_its_ledger(void **state)
{
    s_baseline_tool(*state, S_DIESEL);
}

static void
test_golang_migrate_is_baselined_from_its_ledger(void **state)
{
    s_baseline_tool(*state, S_GOLANG);
}

static void
test_pop_is_baselined_from_its_ledger(void **state)
{
    s_baseline_tool(*state, S_POP);
}

static void
test_sqlx_is_baselined_from_its_ledger(void **state)
{
    s_baseline_tool(*state, S_SQLX);
}

static void
test_dbmate_is_baselined_from_its_ledger(void **state)
{
    s_baseline_tool(*state, S_DBMATE);
}

static void
test_flyway_is_baselined_from_its_ledger(void **state)
{
    s_baseline_tool(*state, S_FLYWAY);
}

/*
 * The tool's ledger says migration 3 ran, but its column rename is not
 * there: refused, naming the missing column and the migration, and
 * nothing written.
 */
static void
test_a_database_that_does_not_look_migrated_is_refused(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_DIESEL);

    s_write_project(e, S_DIESEL, 3);
    s_migrate_as_tool(e->conn, S_DIESEL, 3, 2);
    s_flotilla(e, 3, "column notes.content (from "
               "2019-02-26-000003_rename_body)", "baseline",
               S_ARGS("--from", "diesel"), src);
    s_flotilla(e, 3, "does not look migrated", "baseline",
               S_ARGS("--from", "diesel"), src);
    /* Refused, nothing written to the database, not even a ledger: the
     * refusals are in the log file. */
    s_expect_value(e, S_LEDGER_ROWS, "0");
    s_expect_value(e, "SELECT to_regnamespace('flotilla') IS NULL", "t");
    {
        unsigned char *log = NULL;
        size_t len = 0, n = 0;

        assert_int_equal(fl_file_read(&log, &len, e->log, 1 << 22, "log",
                                      NULL), 0);
        for (const char *p = (const char *)log;
             (p = strstr(p, "\"baseline refused")) != NULL; p++)
            n++;
        assert_int_equal(n, 2);
        free(log);
    }
    free(src);
}

/* golang-migrate's dirty flag and sqlx's success = false are refused. */
static void
test_a_dirty_or_failed_migration_is_refused(void **state)
{
    fl_test_ws_t *e = *state;
    char *go = s_source(e, S_GOLANG), *sqlx = s_source(e, S_SQLX);

    s_write_project(e, S_GOLANG, 3);
    s_write_project(e, S_SQLX, 3);
    s_migrate_as_tool(e->conn, S_GOLANG, 2, -1);
    fl_test_exec(e->conn, "UPDATE public.schema_migrations SET dirty = true");
    s_flotilla(e, 3, "says migration 2 is dirty", "baseline",
               S_ARGS("--from", "golang-migrate"), go);
    fl_test_exec(e->conn, "DROP TABLE notes, accounts, schema_migrations");
    s_migrate_as_tool(e->conn, S_SQLX, 1, -1);
    fl_test_exec(e->conn, "UPDATE _sqlx_migrations SET success = false");
    s_flotilla(e, 3, "says migration 20190226000001 failed", "baseline",
               S_ARGS("--from", "sqlx"), sqlx);
    s_expect_value(e, S_LEDGER_ROWS, "0");
    free(go);
    free(sqlx);
}

/*
 * sqlx records the SHA-384 of each file it ran: a file changed since is
 * refused, as sqlx refuses it, naming the file and nothing written; the
 * file as it ran is baselined (test_sqlx_is_baselined_from_its_ledger
 * shows the sums agree for every file).
 */
static void
test_a_sqlx_file_changed_since_it_ran_is_refused(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_SQLX);
    char *changed = fl_asprintf("%s\n-- reviewed\n", s_migs[1].up);

    s_write_project(e, S_SQLX, 3);
    s_migrate_as_tool(e->conn, S_SQLX, 3, -1);
    s_write(src, "20190226000002_add_notes.up.sql", changed);
    s_flotilla(e, 3, "Changed since sqlx ran them: "
               "20190226000002_add_notes.up.sql (sqlx ran", "baseline",
               S_ARGS("--from", "sqlx"), src);
    s_expect_value(e, S_LEDGER_ROWS, "0");
    s_write(src, "20190226000002_add_notes.up.sql", s_migs[1].up);
    s_flotilla(e, 0, "baselined 3 migrations", "baseline",
               S_ARGS("--from", "sqlx"), src);
    free(changed);
    free(src);
}

/*
 * A version in the tool's ledger that the source lacks, and a source
 * migration the tool skipped below one it ran, are both reported.
 */
static void
test_a_version_not_in_the_source_and_a_gap_are_refused(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_DBMATE);

    s_write_project(e, S_DBMATE, 3);
    s_migrate_as_tool(e->conn, S_DBMATE, 3, -1);
    fl_test_exec(e->conn, "INSERT INTO public.schema_migrations VALUES"
                          " ('20190226000009')");
    s_flotilla(e, 3, "Ran but not in the source: 20190226000009", "baseline",
               S_ARGS("--from", "dbmate"), src);
    fl_test_exec(e->conn, "DELETE FROM public.schema_migrations WHERE version"
                          " IN ('20190226000009', '20190226000002')");
    s_flotilla(e, 3, "(a gap)", "baseline", S_ARGS("--from", "dbmate"), src);
    s_flotilla(e, 3, "20190226000002_add_notes.sql", "baseline",
               S_ARGS("--from", "dbmate"), src);
    /*
     * Up to the gap is not a remedy: 0003 ran, and apply would run it
     * again above --to.  A --to below a version the tool ran is refused,
     * naming it (before, the gap's hint proposed it, "baselined 1
     * migration", and apply then ran 0003 a second time).
     */
    s_flotilla(e, 3, "20190226000003", "baseline",
               S_ARGS("--from", "dbmate", "--to", "20190226000001"), src);
    s_expect_value(e, S_LEDGER_ROWS,
                   "0");
    free(src);
}

/* No tool table: refused, naming the table it looked for. */
static void
test_a_missing_tool_ledger_is_refused(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_POP);

    s_write_project(e, S_POP, 3);
    s_flotilla(e, 3, "public.schema_migration does not exist", "baseline",
               S_ARGS("--from", "pop"), src);
    s_flotilla(e, 2, "--from", "baseline", S_ARGS("--from", "liquibase"), src);
    free(src);
}

/*
 * Flyway: a BASELINE row stands for every version up to it (whether or
 * not it is a migration's own), an undone version is not baselined.
 */
static void
test_flyway_baseline_and_undo_rows_are_followed(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_FLYWAY);

    s_write_project(e, S_FLYWAY, 3);
    fl_test_exec(e->conn, s_ledger_ddl[S_FLYWAY]);
    fl_test_exec(e->conn, s_migs[0].up);
    fl_test_exec(e->conn, s_migs[1].up);
    fl_test_exec(e->conn, s_migs[2].up);
    fl_test_exec(e->conn,
        "INSERT INTO flyway_schema_history (installed_rank, version,"
        " description, type, script, checksum, installed_by, execution_time,"
        " success) VALUES (1, '1.2', '<< Flyway Baseline >>', 'BASELINE',"
        " '<< Flyway Baseline >>', NULL, 'x', 0, true),"
        " (2, '1.3', 'rename body', 'SQL', 'V1_3__rename_body.sql', 0, 'x', 1,"
        " true), (3, NULL, 'views', 'SQL', 'R__views.sql', 0, 'x', 1, true)");
    s_flotilla(e, 0, "baselined 3 migrations", "baseline",
               S_ARGS("--from", "flyway"), src);
    fl_test_exec(e->conn, "DELETE FROM flotilla.schema_migrations;"
                          "ALTER TABLE notes RENAME COLUMN content TO body;"
                          "INSERT INTO flyway_schema_history VALUES (4,"
                          " '1.3', 'rename body', 'UNDO_SQL',"
                          " 'U1_3__rename_body.sql',"
                          " 0, 'x', now(), 1, true)");
    s_flotilla(e, 0, "baselined 2 migrations", "baseline",
               S_ARGS("--from", "flyway"), src);
    /*
     * Two versions undone, newest first: only the first is baselined,
     * with no gap.  Before, the newest version the ledger named stayed
     * 1.3, and 1.2, undone, was refused as a gap below it (found by an
     * audit).
     */
    fl_test_exec(e->conn, "DELETE FROM flotilla.schema_migrations;"
                          "DELETE FROM flyway_schema_history;"
                          "DROP TABLE notes;"
                          "ALTER TABLE accounts DROP COLUMN name;"
                          "INSERT INTO flyway_schema_history VALUES"
                          " (1, '1.1', 'create accounts', 'SQL',"
                          " 'V1_1__create_accounts.sql', 0, 'x', now(), 1,"
                          " true), (2, '1.2', 'add notes', 'SQL',"
                          " 'V1_2__add_notes.sql', 0, 'x', now(), 1, true),"
                          " (3, '1.3', 'rename body', 'SQL',"
                          " 'V1_3__rename_body.sql', 0, 'x', now(), 1, true),"
                          " (4, '1.3', 'rename body', 'UNDO_SQL',"
                          " 'U1_3__rename_body.sql', 0, 'x', now(), 1, true),"
                          " (5, '1.2', 'add notes', 'UNDO_SQL',"
                          " 'U1_2__add_notes.sql', 0, 'x', now(), 1, true)");
    s_flotilla(e, 0, "baselined 1 migration ", "baseline",
               S_ARGS("--from", "flyway"), src);
    fl_test_exec(e->conn, "DELETE FROM flotilla.schema_migrations;"
                          "DELETE FROM flyway_schema_history;"
                          "ALTER TABLE accounts ADD COLUMN name text;"
                          "CREATE TABLE notes (id bigint PRIMARY KEY,"
                          " account_id bigint REFERENCES accounts,"
                          " body text)");
    /* A baseline version of no migration of the source (flyway baseline
     * -baselineVersion=9): every migration up to it. */
    fl_test_exec(e->conn, "DELETE FROM flotilla.schema_migrations;"
                          "DELETE FROM flyway_schema_history;"
                          "ALTER TABLE notes RENAME COLUMN body TO content;"
                          "INSERT INTO flyway_schema_history VALUES (1, '9',"
                          " '<< Flyway Baseline >>', 'BASELINE',"
                          " '<< Flyway Baseline >>', NULL, 'x', now(), 0,"
                          " true)");
    s_flotilla(e, 0, "baselined 3 migrations", "baseline",
               S_ARGS("--from", "flyway"), src);
    /*
     * The tool's table is the tenant's: a repeatable's row planted with a
     * NULL success is not a run, and crashes nothing (before: strcmp of
     * NULL; through a fleet the agent died, and again at each restart as
     * it read the command back from its journal).
     */
    s_write(src, "R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;\n");
    fl_test_exec(e->conn, "DELETE FROM flotilla.schema_migrations;"
                          "DELETE FROM flotilla.repeatable_migrations;"
                          "DELETE FROM flyway_schema_history;"
                          "ALTER TABLE flyway_schema_history ALTER COLUMN"
                          " success DROP NOT NULL;"
                          "INSERT INTO flyway_schema_history VALUES (1, '9',"
                          " '<< Flyway Baseline >>', 'BASELINE',"
                          " '<< Flyway Baseline >>', NULL, 'x', now(), 0,"
                          " true), (2, NULL, 'views', 'SQL', 'R__views.sql',"
                          " 0, 'x', now(), 1, NULL)");
    s_flotilla(e, 0, "baselined 3 migrations", "baseline",
               S_ARGS("--from", "flyway"), src);
    fl_test_expect_value(e->conn, "SELECT count(*) FROM"
                                  " flotilla.repeatable_migrations", "0");
    /*
     * The tool's table (and tables) in the schema first on the
     * database's search_path, baselined as that schema (a whole
     * database is refused then:
     * test_a_schema_target_is_baselined_from_its_own_ledger): the
     * repeatables are read from it too (before, from public: the
     * baseline failed after recording the versions, and failed again at
     * every try).
     */
    fl_test_exec(e->conn, "CREATE SCHEMA app;"
                          "ALTER TABLE flyway_schema_history SET SCHEMA app;"
                          "ALTER TABLE accounts SET SCHEMA app;"
                          "ALTER TABLE notes SET SCHEMA app;"
                          "UPDATE app.flyway_schema_history SET success ="
                          " true WHERE version IS NULL;"
                          "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET"
                          " search_path = app, public', current_database());"
                          " END$$");
    s_flotilla(e, 0, "baselined", "baseline",
               S_ARGS("--from", "flyway", "--schema", "app"), src);
    fl_test_expect_value(e->conn, "SELECT count(*) FROM"
                                  " flotilla.repeatable_migrations", "1");
    /*
     * Flyway compares versions as numbers, a missing part as 0: a
     * BASELINE row "1" stands for V1_0 too (before, "1" sorted below
     * "1.0", and apply ran V1_0 again: "relation already exists").
     */
    {
        char *zero = fl_asprintf("%s/zero", e->dir);

        s_mkdir(zero);
        s_write(zero, "V1_0__init.sql", "CREATE TABLE legacy (id int);\n");
        s_write(zero, "V1_1__add.sql", "CREATE TABLE later (id int);\n");
        fl_test_exec(e->conn, "DELETE FROM flotilla.schema_migrations;"
                              "DELETE FROM flotilla.repeatable_migrations;"
                              "DELETE FROM app.flyway_schema_history;"
                              "CREATE TABLE app.legacy (id int);"
                              "INSERT INTO app.flyway_schema_history VALUES"
                              " (1, '1', '<< Flyway Baseline >>', 'BASELINE',"
                              " '<< Flyway Baseline >>', NULL, 'x', now(), 0,"
                              " true)");
        s_flotilla(e, 0, "baselined 1 migration", "baseline",
                   S_ARGS("--from", "flyway", "--schema", "app"), zero);
        fl_test_expect_value(e->conn, "SELECT string_agg(version, ',') FROM"
                                      " flotilla.schema_migrations", "1.0");
        free(zero);
    }
    free(src);
}

/*
 * pop's files sharing one name and stamp (kratos cuts one change into
 * several) are one Flotilla migration, and pop's ledger has a row per
 * file: the group is baselined when every file's row is there, and
 * refused, naming the missing file, when only some are (Flotilla would
 * apply or roll back the group only whole).  Once baselined, the next
 * migration applies, and a rollback undoes the group whole, downs in
 * reverse order.
 */
static void
test_pop_files_sharing_a_name_are_baselined_as_one(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_POP), *proj = s_project(e, S_POP);

    s_mkdir(proj);
    s_mkdir(src);
    for (int i = 0; i < 3; i++) {
        char *up = fl_asprintf("20190226000000%06d_accounts.postgres.up.sql",
                               i);
        char *down = fl_asprintf("20190226000000%06d_accounts.postgres."
                                 "down.sql", i);
        s_write(src, up, s_migs[i].up);
        s_write(src, down, s_migs[i].down);
        free(up);
        free(down);
    }
    fl_test_exec(e->conn, s_ledger_ddl[S_POP]);
    for (int i = 0; i < 3; i++) {
        char *sql = fl_asprintf("BEGIN; %s INSERT INTO schema_migration"
                                " (version) VALUES ('20190226000000%06d');"
                                " COMMIT", s_migs[i].up, i);
        if (i == 2) /* pop stopped after the second file */
            s_flotilla(e, 3, "has 2 of the 3 files of migration "
                       "20190226000000000002", "baseline",
                       S_ARGS("--from", "pop"), src);
        if (i == 2)
            s_flotilla(e, 3, "Not in pop's ledger: 20190226000000000002.",
                       "baseline", S_ARGS("--from", "pop"), src);
        fl_test_exec(e->conn, sql);
        free(sql);
    }
    s_expect_value(e, S_LEDGER_ROWS, "0");
    s_flotilla(e, 0, "baselined 1 migration", "baseline",
               S_ARGS("--from", "pop"), src);
    s_expect_value(e, "SELECT string_agg(version || ' ' || status || ' ' ||"
                      " baseline_source, ',') FROM flotilla.schema_migrations",
                   "20190226000000000002 applied pop");
    s_flotilla(e, 0, "\"verdict\": \"already\"", "baseline",
               S_ARGS("--from", "pop", "--json"), src);
    s_write(src, "20190301000000000000_add_tags.postgres.up.sql",
            s_migs[3].up);
    s_write(src, "20190301000000000000_add_tags.postgres.down.sql",
            s_migs[3].down);
    s_flotilla(e, 0, "applied 1 migration", "apply", NULL, src);
    /* Below the group's first file: the group and the next undone. */
    s_flotilla(e, 0, "rolled back 2", "rollback",
               S_ARGS("--to", "20190225000000000000"), src);
    s_expect_value(e, "SELECT count(*) FROM pg_class WHERE relname IN"
                      " ('accounts', 'notes', 'tags')", "0");
    free(proj);
    free(src);
}

/*
 * A schema target (schema-per-tenant): the tool migrated the schema (its
 * ledger table in it, its migrations run with it first on search_path);
 * the baseline reads that table, checks that schema, and records the
 * rows as the schema's.  Without --schema, the tool's ledger is where the
 * tool put it when told nothing: in the first schema of the connection's
 * default search_path.  That must be where apply runs a whole database's
 * migrations (public): a database or role setting that puts
 * tenant1 first is refused, naming it and --schema tenant1, and nothing
 * is recorded (before, the baseline read tenant1's ledger and tables and
 * recorded the history for the whole database, and the next apply, run
 * with public first, did not find its tables); as --schema tenant1,
 * apply then takes the next migration there.
 */
static void
test_a_schema_target_is_baselined_from_its_own_ledger(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_DIESEL);

    s_write_project(e, S_DIESEL, 3);
    fl_test_exec(e->conn, "CREATE SCHEMA tenant1; CREATE SCHEMA tenant2;"
                          "SET search_path = tenant1");
    s_migrate_as_tool(e->conn, S_DIESEL, 3, -1);
    fl_test_exec(e->conn, "SET search_path = tenant2");
    s_migrate_as_tool(e->conn, S_DIESEL, 3, 2);
    fl_test_exec(e->conn, "RESET search_path");
    s_flotilla(e, 0, "baselined 3 migrations", "baseline",
               S_ARGS("--schema", "tenant1", "--from", "diesel"), src);
    s_flotilla(e, 3, "column notes.content (from "
               "2019-02-26-000003_rename_body)", "baseline",
               S_ARGS("--schema", "tenant2", "--from", "diesel"), src);
    s_flotilla(e, 3, "public.__diesel_schema_migrations does not exist",
               "baseline", S_ARGS("--from", "diesel"), src);
    s_expect_value(e, "SELECT string_agg(DISTINCT target, ',') || ' ' ||"
                      " count(*) FROM flotilla.schema_migrations", "tenant1 3");
    fl_test_exec(e->conn, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET"
                          " search_path = tenant1, public',"
                          " current_database()); END $$");
    s_flotilla(e, 3, "puts schema \"tenant1\" first, where flotilla apply "
               "does not run its migrations", "baseline",
               S_ARGS("--from", "diesel"), src);
    s_flotilla(e, 3, "(--schema tenant1)", "baseline", S_ARGS("--to", "1"),
               src);
    /* A role's setting in the database is the same. */
    fl_test_exec(e->conn, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I"
                          " RESET search_path', current_database());"
                          " EXECUTE format('ALTER ROLE CURRENT_USER IN"
                          " DATABASE %I SET search_path = tenant1, public',"
                          " current_database()); END $$");
    s_flotilla(e, 3, "puts schema \"tenant1\" first", "baseline",
               S_ARGS("--from", "diesel"), src);
    s_expect_value(e, "SELECT count(*) FROM flotilla.schema_migrations WHERE"
                      " target = ''", "0");
    s_write_migration(e, S_DIESEL, 3);
    s_flotilla(e, 0, "applied 1 migration", "apply",
               S_ARGS("--schema", "tenant1"), src);
    s_expect_value(e, "SELECT to_regclass('tenant1.tags') IS NOT NULL AND"
                      " to_regclass('public.tags') IS NULL", "t");
    free(src);
}

/*
 * A schema target's migrations create their unqualified tables in that
 * schema, so its baseline looks for them there, not in public: a tenant
 * schema left empty while the whole database (public) holds the tables
 * is refused, nothing recorded, and nothing of public changed by the
 * apply after.  Before, public's tables passed for the tenant's, the
 * history was recorded on the empty schema, and the next apply altered
 * public's table (found by an audit).
 */
static void
test_a_schema_target_is_not_baselined_from_publics_tables(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_DIESEL);

    s_write_project(e, S_DIESEL, 2);
    s_migrate_as_tool(e->conn, S_DIESEL, 2, -1);
    fl_test_exec(e->conn, "CREATE SCHEMA tenant3");
    s_flotilla(e, 3, "table accounts (from ", "baseline",
               S_ARGS("--schema", "tenant3", "--to", "20190226000001"), src);
    s_flotilla(e, 0, "0 migrations in the ledger", "status",
               S_ARGS("--schema", "tenant3"), src);
    s_expect_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid ="
                      " 'public.accounts'::regclass AND attnum > 0", "3");
    free(src);
}

/*
 * A baseline refused writes nothing, not even Flotilla's ledger: on a
 * database that has none, the refusal (the tool's table is not there;
 * the tables are not) leaves no flotilla schema.  Before, the ledger's
 * schema and tables were made before any check (found by an audit).
 */
static void
test_a_refused_baseline_makes_no_ledger(void **state)
{
    fl_test_ws_t *e = *state;
    char *src = s_source(e, S_GOLANG);

    s_write_project(e, S_GOLANG, 2);
    s_flotilla(e, 3, "schema_migrations does not exist", "baseline",
               S_ARGS("--from", "golang-migrate"), src);
    s_flotilla(e, 3, "does not look migrated", "baseline",
               S_ARGS("--to", "1"), src);
    s_expect_value(e, "SELECT to_regnamespace('flotilla') IS NULL", "t");
    free(src);
}

/*
 * Flotilla's own source, baselined by --to: the next migration is then
 * taken by apply, and a source that no longer matches what was recorded
 * (a migration edited since) is refused.
 */
static void
test_own_source_baselined_by_version_then_applied(void **state)
{
    fl_test_ws_t *e = *state;

    for (int i = 0; i < 3; i++) {
        char *file = fl_asprintf("000%d_%s.sql", i + 1, s_migs[i].name);
        char *text = fl_asprintf("-- flotilla:up\n%s-- flotilla:down\n%s",
                                 s_migs[i].up, s_migs[i].down);
        fl_test_ws_write(e, file, text);
        free(file);
        free(text);
    }
    fl_test_exec(e->conn, s_migs[0].up);
    fl_test_exec(e->conn, s_migs[1].up);
    /* Migration 3 did not run: baselining all of them is refused. */
    s_flotilla(e, 3, "column notes.content (from 0003_rename_body.sql)",
               "baseline", NULL, e->mdir);
    /* A --to of no migration (a typo of 2) is refused, recording none.
     * Before, it baselined every migration up to 20 (found by an
     * audit). */
    s_flotilla(e, 3, "--to 20: the source has no migration of that version",
               "baseline", S_ARGS("--to", "20"), e->mdir);
    s_expect_value(e, S_LEDGER_ROWS, "0");
    s_flotilla(e, 0, "baselined 2 migrations", "baseline",
               S_ARGS("--to", "2"), e->mdir);
    s_expect_value(e, "SELECT string_agg(version || ':' || baseline_source,"
                      " ',' ORDER BY version) FROM flotilla.schema_migrations",
                   "1:--to,2:--to");
    s_flotilla(e, 0, "baselined, not run: --to", "status", NULL, e->mdir);
    s_flotilla(e, 0, "\"baselined_from\": \"--to\"", "status",
               S_ARGS("--json"), e->mdir);
    s_flotilla(e, 0, "applied 1", "apply", S_ARGS("--allow-lint-errors"),
               e->mdir);
    s_expect_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid ="
                      " 'notes'::regclass AND attname = 'content'", "1");
    s_expect_value(e, "SELECT baseline_source IS NULL FROM"
                      " flotilla.schema_migrations WHERE version = '3'", "t");
    s_flotilla(e, 0, "nothing to baseline", "baseline", NULL, e->mdir);
    /* A baselined migration rolls back like any other: its down runs. */
    s_flotilla(e, 0, "rolled back 2", "rollback", S_ARGS("--to", "1"),
               e->mdir);
    s_expect_value(e, "SELECT count(*) FROM pg_class WHERE relname ="
                      " 'notes'", "0");
    s_expect_value(e, "SELECT string_agg(version || ':' || status, ','"
                      " ORDER BY version) FROM flotilla.schema_migrations",
                   "1:applied,2:rolled_back,3:rolled_back");
    /*
     * A down changed since it was recorded is not drift, for baseline
     * as for apply: baselining again records nothing and says so
     * (before, it compared the whole checksum and refused, so switching
     * to a directory flotilla import wrote, whose empty down became a
     * comment, broke a baseline run on every deployment).
     */
    fl_test_ws_write(e, "0001_create_accounts.sql",
                     "-- flotilla:up\nCREATE TABLE accounts (id bigint"
                     " PRIMARY KEY, email text NOT NULL);\n"
                     "-- flotilla:down\n-- Nothing to undo.\n");
    s_flotilla(e, 0, "nothing to baseline", "baseline", S_ARGS("--to", "1"),
               e->mdir);
    /* Edited since it was recorded: flotilla's ledger disagrees. */
    fl_test_ws_write(e, "0001_create_accounts.sql",
                     "-- flotilla:up\nCREATE TABLE accounts (id bigint"
                     " PRIMARY KEY, email text);\n");
    s_flotilla(e, 3, "disagrees", "baseline", S_ARGS("--to", "2"), e->mdir);
}

/* ---- generative: the shape of a history against the catalog ---- */

typedef struct {
    char name[16];
    char cols[6][16];
    int ncols;
    int alive;
} s_gen_table_t;

static int
s_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A random history of table and column changes, as SQL statements. */
static char *
s_gen_history(uint64_t *rng, int steps)
{
    s_gen_table_t t[6];
    int nt = 0, serial = 0;
    fl_buf_t sql = FL_BUF_INIT(0);
    char *out;

    memset(t, 0, sizeof(t));
    for (int s = 0; s < steps; s++) {
        int k = (int)(fl_test_rng_next(rng) % 7);
        int alive[6], na = 0;
        s_gen_table_t *x;

        for (int i = 0; i < nt; i++)
            if (t[i].alive)
                alive[na++] = i;
        if (na == 0 || (k == 0 && nt < 6)) {
            if (nt == 6)
                continue;
            x = &t[nt++];
            snprintf(x->name, sizeof(x->name), "t%d", serial++);
            x->alive = 1;
            x->ncols = 1 + (int)(fl_test_rng_next(rng) % 3);
            fl_buf_addf(&sql, "CREATE TABLE %s%s (", fl_test_rng_next(rng) % 2
                        ? "public." : "", x->name);
            for (int c = 0; c < x->ncols; c++) {
                snprintf(x->cols[c], sizeof(x->cols[c]), "c%d", serial++);
                fl_buf_addf(&sql, "%s%s int", c ? ", " : "", x->cols[c]);
            }
            fl_buf_adds(&sql, ");\n");
            continue;
        }
        x = &t[alive[fl_test_rng_next(rng) % (uint64_t)na]];
        switch (k) {
        case 1:
        case 2:
            if (x->ncols == 6)
                break;
            snprintf(x->cols[x->ncols], sizeof(x->cols[0]), "c%d", serial++);
            fl_buf_addf(&sql, "ALTER TABLE %s ADD COLUMN %s text;\n", x->name,
                        x->cols[x->ncols]);
            x->ncols++;
            break;
        case 3:
            if (x->ncols < 2)
                break;
            fl_buf_addf(&sql, "ALTER TABLE %s DROP COLUMN %s;\n", x->name,
                        x->cols[x->ncols - 1]);
            x->ncols--;
            break;
        case 4: {
            int c = (int)(fl_test_rng_next(rng) % (uint64_t)x->ncols);
            char nn[16];
            snprintf(nn, sizeof(nn), "c%d", serial++);
            fl_buf_addf(&sql, "ALTER TABLE %s RENAME COLUMN %s TO %s;\n",
                        x->name, x->cols[c], nn);
            memcpy(x->cols[c], nn, sizeof(nn));
            break;
        }
        case 5: {
            char nn[16];
            snprintf(nn, sizeof(nn), "t%d", serial++);
            fl_buf_addf(&sql, "ALTER TABLE %s RENAME TO %s;\n", x->name, nn);
            memcpy(x->name, nn, sizeof(nn));
            break;
        }
        default:
            fl_buf_addf(&sql, "DROP TABLE %s;\n", x->name);
            x->alive = 0;
            break;
        }
    }
    out = fl_strdup(fl_buf_str(&sql));
    fl_buf_release(&sql);
    return out;
}

/*
 * Seeds 1..N: each history, cut into migrations at random statement
 * boundaries, is run in a fresh schema; the shape of its text must list
 * exactly the tables and columns the catalog has there.
 */
static void
test_shape_matches_the_catalog_generated(void **state)
{
    fl_test_ws_t *e = *state;
    long seeds = fl_test_env_long("FLOTILLA_TEST_SEEDS", 40);

    for (long seed = 1; seed <= seeds; seed++) {
        uint64_t rng = (uint64_t)seed;
        char *hist = s_gen_history(&rng, 4 + (int)(seed % 12));
        fl_shape_t shape = FL_SHAPE_INIT;
        fl_error_t err = FL_ERROR_INIT;
        fl_buf_t got = FL_BUF_INIT(0);
        char *want = NULL;
        char *line = hist;
        int mig = 0;

        fl_test_exec(e->conn, "SET client_min_messages = warning;"
                              "DROP SCHEMA public CASCADE; CREATE SCHEMA"
                              " public;");
        fl_test_exec(e->conn, hist);
        /* Each line is a statement; migrations of 1 to 3 lines. */
        while (*line) {
            fl_buf_t part = FL_BUF_INIT(0);
            int n = 1 + (int)(fl_test_rng_next(&rng) % 3);
            char label[32];

            for (int i = 0; i < n && *line; i++) {
                char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
                fl_buf_addf(&part, "%.*s", (int)len, line);
                line += len;
            }
            snprintf(label, sizeof(label), "m%d", ++mig);
            if (fl_shape_add(&shape, fl_buf_str(&part), label, &err) != 0)
                fail_msg("seed %ld: %s", seed, err.message);
            fl_buf_release(&part);
        }
        {
            char **keys = fl_calloc(shape.count + 1, sizeof(char *));
            size_t nk = 0;
            for (size_t i = 0; i < shape.count; i++)
                if (shape.items[i].column)
                    keys[nk++] = fl_asprintf("%s.%s", shape.items[i].table,
                                             shape.items[i].column);
            qsort(keys, nk, sizeof(char *), s_strcmp);
            for (size_t i = 0; i < nk; i++) {
                fl_buf_addf(&got, "%s%s", i ? "," : "", keys[i]);
                free(keys[i]);
            }
            free(keys);
        }
        want = fl_test_query_value(e->conn,
            "SELECT coalesce(string_agg(c.relname || '.' || a.attname, ','"
            " ORDER BY (c.relname || '.' || a.attname) COLLATE \"C\"), '')"
            " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind ="
            " 'r' AND a.attnum > 0 AND NOT a.attisdropped");
        if (want == NULL || strcmp(want, fl_buf_str(&got)) != 0)
            fail_msg("seed %ld: the shape of\n%s\nis\n  %s\nthe catalog "
                     "has\n  %s", seed, hist, fl_buf_str(&got),
                     want ? want : "NULL");
        fl_shape_release(&shape);
        fl_buf_release(&got);
        free(want);
        free(hist);
        fl_error_clear(&err);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define S_T(fn) cmocka_unit_test_setup_teardown(fn, fl_test_ws_setup,        \
                                                fl_test_ws_teardown)
        S_T(test_diesel_is_baselined_from_its_ledger),
        S_T(test_golang_migrate_is_baselined_from_its_ledger),
        S_T(test_pop_is_baselined_from_its_ledger),
        S_T(test_sqlx_is_baselined_from_its_ledger),
        S_T(test_dbmate_is_baselined_from_its_ledger),
        S_T(test_flyway_is_baselined_from_its_ledger),
        S_T(test_a_database_that_does_not_look_migrated_is_refused),
        S_T(test_a_dirty_or_failed_migration_is_refused),
        S_T(test_a_sqlx_file_changed_since_it_ran_is_refused),
        S_T(test_a_version_not_in_the_source_and_a_gap_are_refused),
        S_T(test_a_missing_tool_ledger_is_refused),
        S_T(test_flyway_baseline_and_undo_rows_are_followed),
        S_T(test_pop_files_sharing_a_name_are_baselined_as_one),
        S_T(test_a_schema_target_is_baselined_from_its_own_ledger),
        S_T(test_a_schema_target_is_not_baselined_from_publics_tables),
        S_T(test_a_refused_baseline_makes_no_ledger),
        S_T(test_own_source_baselined_by_version_then_applied),
        S_T(test_shape_matches_the_catalog_generated),
#undef S_T
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (set PGHOST/PGPORT)\n");
        return 1;
    }
    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("baseline", tests, NULL, NULL);
}
