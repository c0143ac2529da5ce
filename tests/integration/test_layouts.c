/*
 * Integration tests of other tools' migration trees as sources, through
 * the real `flotilla` executable on a real PostgreSQL: each fixture
 * history under tests/fixtures/layouts/<tool>/ (diesel, golang-migrate,
 * pop, sqlx, dbmate, Flyway: with their transaction markers and down or
 * undo files) is planned, applied up to its first version, applied to the
 * end, rolled back to the first version and applied again, and the
 * schema is compared each time (a canonical dump: the rollback returns to
 * the first apply's, the second apply to the first's end).  The statements
 * that cannot run in a transaction run outside one where the tool would,
 * and plan says so (a file the tool wraps in a transaction keeps it, and
 * fails as under the tool); a history a tool orders otherwise than
 * Flotilla is refused with the reason.  `flotilla import` writes each
 * history in Flotilla's format, saying where it judged, and the result
 * applied to a fresh database gives the same schema.  Then the database
 * keeps only the tool's ledger, as the tool writes it after running the
 * whole history: it is baselined from that ledger, rolled back to the
 * first version through the baselined migrations and applied again, the
 * schema compared each time.  flotilla's own run stands in for the
 * tool's there (test_baseline.c runs the migrations as each tool does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/file.h"
#include "proto/migration.h"
#include "testsupport.h"

typedef struct {
    const char *tool;
    const char *dir;      /* under tests/fixtures/layouts/ */
    const char *first;    /* the version rolled back to */
    const char *versions; /* the ledger afterwards, in order */
    const char *notx;     /* the versions run statement by statement */
    const char *index;    /* an index built CONCURRENTLY: valid at the end */
    const char *repeatable; /* a view of a repeatable migration (R__), or
                               NULL: made after the versioned migrations,
                               gone after the rollback (its down drops it),
                               made again by the re-apply */
    const char *ledger;   /* the tool's ledger table as the tool creates
                             it, with the rows it writes after running the
                             whole history (@D@: the fixture directory) */
    const char *baselined; /* what baseline says it recorded */
    const char *table;    /* the tool's ledger table, dropped once baselined */
} s_history_t;

static const s_history_t s_histories[] = {
    {"diesel", "diesel/migrations", "0",
     "0,20190226002946,20190301101010", "20190301101010",
     "users_email_idx", NULL,
     "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY"
     " KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);"
     "INSERT INTO __diesel_schema_migrations (version) VALUES"
     " ('00000000000000'), ('20190226002946'), ('20190301101010')",
     "baselined 3 migrations", "__diesel_schema_migrations"},
    {"golang-migrate", "golang-migrate/db/migrations", "1", "1,2", "2",
     "users_email_idx", NULL,
     "CREATE TABLE \"public\".\"schema_migrations\" (version bigint not null"
     " primary key, dirty boolean not null);"
     "INSERT INTO \"public\".\"schema_migrations\" VALUES (2, false)",
     "baselined 2 migrations", "schema_migrations"},
    /* Two groups of files sharing one name: identities (its index built
     * CONCURRENTLY by the .autocommit. file) and sessions.  pop ran the
     * .fizz file too, and wrote its version. */
    {"pop", "pop/migrations", "20210410175418000001",
     "20210410175418000001,20210410175418000002,20210520120000000002",
     "20210410175418000001", "identities_state_idx", NULL,
     "CREATE TABLE \"schema_migration\" (\"version\" VARCHAR (48) NOT NULL,"
     " \"version_self\" INT NOT NULL DEFAULT 0);"
     "CREATE UNIQUE INDEX \"schema_migration_version_idx\" ON"
     " \"schema_migration\" (version);"
     "INSERT INTO schema_migration (version) VALUES"
     " ('20210410175418000000'), ('20210410175418000001'),"
     " ('20210410175418000002'), ('20210410175418000003'),"
     " ('20210520120000000000'), ('20210520120000000001'),"
     " ('20210520120000000002')",
     "baselined 3 migrations", "schema_migration"},
    {"sqlx", "sqlx/migrations", "20220102000000",
     "20220101000000,20220102000000,20220103000000", "20220102000000",
     "users_email_idx", NULL,
     "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description"
     " TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),"
     " success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time"
     " BIGINT NOT NULL);"
     "INSERT INTO _sqlx_migrations (version, description, success,"
     " checksum, execution_time) VALUES"
     " (20220101000000, 'users', true, sha384(pg_read_binary_file("
     "'@D@/20220101000000_users.sql')), 1),"
     " (20220102000000, 'email index', true, sha384(pg_read_binary_file("
     "'@D@/20220102000000_email_index.sql')), 1),"
     " (20220103000000, 'last seen', true, sha384(pg_read_binary_file("
     "'@D@/20220103000000_last_seen.up.sql')), 1)",
     "baselined 3 migrations", "_sqlx_migrations"},
    {"dbmate", "dbmate/db/migrations", "20200101000000",
     "20200101000000,20200102000000", "20200102000000", "users_email_idx",
     NULL,
     "create table if not exists public.schema_migrations (version"
     " varchar(128) primary key);"
     "insert into public.schema_migrations (version) values"
     " ('20200101000000'), ('20200102000000')",
     "baselined 2 migrations", "schema_migrations"},
    /* Flyway's last row is its repeatable migration's (no version). */
    {"flyway", "flyway/src/main/resources/db/migration", "1",
     "1,1.1,2,10", "2,10", "users_email_idx", "active_users",
     "CREATE TABLE \"public\".\"flyway_schema_history\" (\"installed_rank\""
     " INT NOT NULL, \"version\" VARCHAR(50), \"description\" VARCHAR(200)"
     " NOT NULL, \"type\" VARCHAR(20) NOT NULL, \"script\" VARCHAR(1000) NOT"
     " NULL, \"checksum\" INTEGER, \"installed_by\" VARCHAR(100) NOT NULL,"
     " \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(), \"execution_time\""
     " INTEGER NOT NULL, \"success\" BOOLEAN NOT NULL);"
     "ALTER TABLE \"public\".\"flyway_schema_history\" ADD CONSTRAINT"
     " \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\");"
     "INSERT INTO \"public\".\"flyway_schema_history\" (installed_rank,"
     " version, description, type, script, checksum, installed_by,"
     " execution_time, success) VALUES"
     " (1, '1', 'create users', 'SQL', 'V1__create_users.sql', 11,"
     " current_user, 3, true),"
     " (2, '1.1', 'add name', 'SQL', 'V1_1__add_name.sql', 12,"
     " current_user, 3, true),"
     " (3, '2', 'email index', 'SQL', 'V2__email_index.sql', 13,"
     " current_user, 3, true),"
     " (4, '10', 'reindex', 'SQL', 'V10__reindex.sql', 14, current_user,"
     " 3, true),"
     " (5, NULL, 'views', 'SQL', 'R__views.sql', 15, current_user, 3,"
     " true)",
     "baselined 4 migrations", "flyway_schema_history"},
};

/*
 * Runs flotilla CMD --dir DIR --layout TOOL ARGS; expects status.  Lint
 * errors are warnings: a history that ran for years keeps migrations
 * without a down (sqlx's, Flyway's first ones), which lint refuses for new
 * ones (issue 14's lint.enforce_from is the finer gate).
 */
static char *
s_run(fl_test_ws_t *ws, const s_history_t *h, const char *cmd,
      const char *a1, const char *a2, int status, const char *needle)
{
    char *dir = fl_test_source_path("tests/fixtures/layouts");
    char *path = fl_asprintf("%s/%s", dir, h->dir);
    int lint = strcmp(cmd, "rollback") != 0;
    const char *argv[8] = {"--dir", path, "--layout", h->tool,
                           lint ? "--allow-lint-errors" : a1,
                           lint ? a1 : a2, lint ? a2 : NULL, NULL};
    fl_test_proc_t r;
    char *out = NULL;

    fl_test_ws_flotilla(ws, &r, cmd, argv, 0);
    fl_test_expect(&r, status, needle);
    out = fl_strdup(r.out);
    fl_test_proc_release(&r);
    free(path);
    free(dir);
    return out;
}

static char *
s_value(fl_test_ws_t *ws, const char *sql)
{
    char *v = fl_test_query_value(ws->conn, sql);

    if (v == NULL)
        fail_msg("%s: no value", sql);
    return v;
}

/* The plan: every migration pending, the no-transaction ones said so. */
static void
s_check_plan(fl_test_ws_t *ws, const s_history_t *h)
{
    /* Exit 3, not proven: a no-transaction migration is not rehearsed. */
    char *out = s_run(ws, h, "plan", "--json", NULL, 3, NULL);
    json_error_t jerr;
    json_t *o = json_loads(out, 0, &jerr), *m = NULL;
    fl_buf_t all = FL_BUF_INIT(0), notx = FL_BUF_INIT(0);
    size_t i;

    if (o == NULL)
        fail_msg("%s: plan --json printed no JSON: %s\n%s", h->tool,
                 jerr.text, out);
    if (!json_is_true(json_object_get(o, "ok")))
        fail_msg("%s: the plan is not ok:\n%s", h->tool, out);
    json_array_foreach(json_object_get(o, "migrations"), i, m) {
        const char *v = json_string_value(json_object_get(m, "version"));
        const char *tx = json_string_value(json_object_get(m,
                                                           "transaction"));
        fl_buf_addf(&all, "%s%s", i ? "," : "", v);
        if (tx && strncmp(tx, "none", 4) == 0) {
            fl_buf_addf(&notx, "%s%s", notx.len ? "," : "", v);
            if (json_string_value(json_object_get(m, "transaction_why")) ==
                NULL)
                fail_msg("%s: plan does not say why %s runs without a "
                         "transaction", h->tool, v);
        }
    }
    if (strcmp(fl_buf_str(&all), h->versions) != 0 ||
        strcmp(fl_buf_str(&notx), h->notx) != 0)
        fail_msg("%s: plan lists %s (no transaction: %s), expected %s (%s)",
                 h->tool, fl_buf_str(&all), fl_buf_str(&notx), h->versions,
                 h->notx);
    fl_buf_release(&all);
    fl_buf_release(&notx);
    json_decref(o);
    free(out);
}

/*
 * Applies source with extra options to a fresh database, whose schema
 * must then equal want (a canonical dump); returns the value of sql there
 * (a new string; NULL without sql).
 */
static char *
s_apply_fresh(const char *tool, const char *const *extra, const char *source,
              const char *want, const char *sql)
{
    fl_test_db_t db;
    PGconn *conn = NULL;
    fl_test_proc_t r;
    char *now = NULL, *v = NULL;

    fl_test_db_create(&db, "fresh");
    fl_test_flotilla(&r, NULL, db.conninfo, NULL, "apply", extra, source);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    conn = fl_test_db_connect(&db);
    now = fl_test_canonical_dump(conn);
    fl_test_assert_dumps_equal(tool, want, now);
    if (sql)
        v = fl_test_query_value(conn, sql);
    PQfinish(conn);
    fl_test_db_drop(&db);
    free(now);
    return v;
}

/*
 * flotilla import writes the history in Flotilla's format, says where it
 * judged (each no-transaction migration, with why), and the written
 * directory, applied to a fresh database, gives the schema the tool's
 * tree gave (end).
 */
static void
s_import(fl_test_ws_t *ws, const s_history_t *h, const char *end)
{
    char *src = fl_test_source_path("tests/fixtures/layouts");
    char *path = fl_asprintf("%s/%s", src, h->dir);
    char *dest = fl_asprintf("%s/imported-%s", ws->dir, h->tool);
    const char *argv[] = {"flotilla", "import", "--from", h->tool, "--json",
                          path, dest, NULL};
    const char *lint[] = {"--allow-lint-errors", NULL};
    fl_test_proc_t r;
    json_t *o = NULL, *j = NULL;
    size_t i, notx = 0, want = 1;

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    o = json_loads(r.out, 0, NULL);
    if (o == NULL)
        fail_msg("%s: import --json printed no JSON:\n%s", h->tool, r.out);
    /* "ok" as in its refusals (before, only a refusal had it). */
    assert_true(json_is_true(json_object_get(o, "ok")));
    json_array_foreach(json_object_get(o, "judged"), i, j)
        notx += strstr(json_string_value(json_object_get(j, "what")),
                       "no-transaction: ") != NULL;
    for (const char *c = h->notx; *c; c++)
        want += *c == ',';
    if (notx != want)
        fail_msg("%s: import judged %zu migrations no-transaction, expected "
                 "%zu:\n%s", h->tool, notx, want, r.out);
    json_decref(o);
    fl_test_proc_release(&r);
    free(s_apply_fresh(h->tool, lint, dest, end, NULL));
    free(dest);
    free(path);
    free(src);
}

/*
 * The history's repeatable migration: its view there or not, and the
 * number of times it ran (its ledger row; none before its first run).
 */
static void
s_repeatable(fl_test_ws_t *ws, const s_history_t *h, int there, int runs)
{
    char *sql = NULL, *want = NULL;

    if (h->repeatable == NULL)
        return;
    sql = fl_asprintf("SELECT to_regclass('%s') IS NOT NULL",
                      h->repeatable);
    fl_test_expect_value(ws->conn, sql, there ? "t" : "f");
    free(sql);
    want = fl_asprintf("%d", runs);
    fl_test_expect_value(ws->conn, "SELECT coalesce(sum(runs), 0) FROM"
                         " flotilla.repeatable_migrations", want);
    free(want);
}

/* text with every "@D@" replaced by dir (a new string). */
static char *
s_subst(const char *text, const char *dir)
{
    fl_buf_t b = FL_BUF_INIT(0);
    const char *p = text, *at;

    while ((at = strstr(p, "@D@")) != NULL) {
        fl_buf_addf(&b, "%.*s", (int)(at - p), p);
        fl_buf_adds(&b, dir);
        p = at + 3;
    }
    fl_buf_adds(&b, p);
    return fl_buf_detach(&b);
}

/*
 * Adoption: the database that holds the whole history (end) but only the
 * tool's ledger, as the tool leaves it (flotilla's own schemas dropped,
 * the tool's table created and filled as the tool does), is baselined
 * from that ledger: every migration recorded, none run.  Then it rolls
 * back to the first version through the baselined migrations (their down
 * or undo files, the no-transaction ones outside a transaction) to the
 * first apply's schema, and applies again to the end's.
 */
static void
s_baseline(fl_test_ws_t *ws, const s_history_t *h, const char *first,
           const char *end)
{
    char *dir = fl_test_source_path("tests/fixtures/layouts");
    char *path = fl_asprintf("%s/%s", dir, h->dir);
    char *ledger = s_subst(h->ledger, path);
    const char *argv[] = {"--dir", path, "--layout", h->tool, "--from",
                          h->tool, NULL};
    fl_test_proc_t r;
    char *now = NULL, *v = NULL, *want = NULL;

    fl_test_exec(ws->conn, "SET client_min_messages = warning;"
                           "DROP SCHEMA flotilla CASCADE;"
                           "DROP SCHEMA IF EXISTS flotilla_backup CASCADE");
    fl_test_exec(ws->conn, ledger);
    if (strcmp(h->tool, "pop") == 0) {
        /*
         * pop ran the .fizz file and wrote its version; flotilla reads
         * no fizz, so it cannot baseline a migration it has no text of,
         * and says how to go on.  The rest of the test goes on as if pop
         * had not run it.
         */
        fl_test_ws_flotilla(ws, &r, "baseline", argv, 0);
        fl_test_expect(&r, 3, "Ran but not in the source: "
                              "20210410175418000003.");
        fl_test_expect(&r, 3, "Flotilla reads no .fizz file");
        fl_test_proc_release(&r);
        /* Refused: nothing written, not even the ledger. */
        fl_test_expect_value(ws->conn, "SELECT to_regnamespace('flotilla')"
                             " IS NULL", "t");
        fl_test_exec(ws->conn, "DELETE FROM schema_migration WHERE version"
                               " = '20210410175418000003'");
    }
    fl_test_ws_flotilla(ws, &r, "baseline", argv, 0);
    fl_test_expect(&r, 0, h->baselined);
    fl_test_proc_release(&r);
    /* A team that moved to flotilla retires the tool's table. */
    {
        char *drop = fl_asprintf("DROP TABLE %s", h->table);

        fl_test_exec(ws->conn, drop);
        free(drop);
    }
    v = s_value(ws, "SELECT string_agg(version, ',' ORDER BY version_order)"
                    " || ' from ' || string_agg(DISTINCT baseline_source, ',')"
                    " FROM flotilla.schema_migrations WHERE status ="
                    " 'applied'");
    want = fl_asprintf("%s from %s", h->versions, h->tool);
    if (strcmp(v, want) != 0)
        fail_msg("%s: baselined %s, expected %s", h->tool, v, want);
    free(want);
    free(v);
    /* Nothing ran: no step but the baseline's is in the log. */
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM"
                         " flotilla.migration_logs WHERE step <> 'baseline'",
                         "0");
    now = fl_test_canonical_dump(ws->conn);
    fl_test_assert_dumps_equal(h->tool, end, now);
    free(now);
    free(s_run(ws, h, "rollback", "--to", h->first, 0, "rolled back"));
    now = fl_test_canonical_dump(ws->conn);
    fl_test_assert_dumps_equal(h->tool, first, now);
    free(now);
    free(s_run(ws, h, "apply", NULL, NULL, 0, NULL));
    now = fl_test_canonical_dump(ws->conn);
    fl_test_assert_dumps_equal(h->tool, end, now);
    free(now);
    free(ledger);
    free(path);
    free(dir);
}

static void
s_history(fl_test_ws_t *ws, const s_history_t *h)
{
    char *first = NULL, *end = NULL, *now = NULL, *v = NULL;
    char *sql = NULL;

    s_check_plan(ws, h);
    free(s_run(ws, h, "apply", "--to", h->first, 0, NULL));
    s_repeatable(ws, h, 0, 0);
    first = fl_test_canonical_dump(ws->conn);
    free(s_run(ws, h, "apply", NULL, NULL, 0, NULL));
    end = fl_test_canonical_dump(ws->conn);
    v = s_value(ws, "SELECT string_agg(version, ',' ORDER BY version_order)"
                    " FROM flotilla.schema_migrations WHERE status ="
                    " 'applied'");
    if (strcmp(v, h->versions) != 0)
        fail_msg("%s: the ledger has %s, expected %s", h->tool, v,
                 h->versions);
    free(v);
    sql = fl_asprintf("SELECT indisvalid FROM pg_index WHERE indexrelid ="
                      " '%s'::regclass", h->index);
    fl_test_expect_value(ws->conn, sql, "t");
    free(sql);
    s_repeatable(ws, h, 1, 1);
    free(s_run(ws, h, "rollback", "--to", h->first, 0, "rolled back"));
    s_repeatable(ws, h, 0, 1);
    if (h->repeatable) {
        /* The rollback forgot its checksum: status says it runs again. */
        char *dir = fl_test_source_path("tests/fixtures/layouts");
        char *path = fl_asprintf("%s/%s", dir, h->dir);
        const char *argv[] = {"--dir", path, "--layout", h->tool, NULL};
        fl_test_proc_t r;

        fl_test_ws_flotilla(ws, &r, "status", argv, 0);
        fl_test_expect(&r, 0, "needs a run");
        fl_test_proc_release(&r);
        free(path);
        free(dir);
    }
    now = fl_test_canonical_dump(ws->conn);
    fl_test_assert_dumps_equal(h->tool, first, now);
    free(now);
    free(s_run(ws, h, "apply", NULL, NULL, 0, NULL));
    s_repeatable(ws, h, 1, 2);
    now = fl_test_canonical_dump(ws->conn);
    fl_test_assert_dumps_equal(h->tool, end, now);
    free(now);
    s_import(ws, h, end);
    s_baseline(ws, h, first, end);
    free(first);
    free(end);
}

/* Writes dir/sub/file (sub made when missing) under the workspace. */
static void
s_write(fl_test_ws_t *ws, const char *sub, const char *file, const char *text)
{
    char *d = fl_asprintf("%s/%s", ws->mdir, sub);
    char *f = fl_asprintf("%s/%s", sub, file);

    if (mkdir(d, 0700) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", d, strerror(errno));
    fl_test_ws_write(ws, f, text);
    free(f);
    free(d);
}

/*
 * diesel sorts versions as text: 10_b before 9_a.  Flotilla orders them
 * by value, so it refuses the history with the reason rather than run it
 * in an order its tool did not; nothing is applied.  A statement that
 * cannot run in a transaction, in a file the tool wraps in one (pop
 * without .autocommit), stays in the transaction and fails as under the
 * tool.
 */
static void
test_an_order_the_tool_disagrees_on_is_refused(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const dir[] = {"--dir", ws->mdir, "--layout", "diesel",
                               NULL};
    fl_test_proc_t r;

    s_write(ws, "9_a", "up.sql", "CREATE TABLE a (id int);\n");
    s_write(ws, "9_a", "down.sql", "DROP TABLE a;\n");
    s_write(ws, "10_b", "up.sql", "CREATE TABLE b (id int);\n");
    s_write(ws, "10_b", "down.sql", "DROP TABLE b;\n");
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 3, "which Flotilla orders the other way");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('flotilla.ledger_meta')"
                                   " IS NULL AND to_regclass('b') IS NULL",
                         "t");
}

/*
 * dbmate takes a version as the text of its file name's digits: "01" and
 * "1" are two versions to it, one to Flotilla, whose ledger holds one
 * migration per version; the same text twice is one version to both.
 * Either is refused, naming both files and what dbmate records (before,
 * both were refused as an order dbmate "sorts as text" and Flotilla "the
 * other way"); nothing is applied.
 */
static void
test_two_migrations_of_one_version_are_refused(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const dir[] = {"--dir", ws->mdir, "--layout", "dbmate",
                               NULL};
    char *b = fl_asprintf("%s/01_b.sql", ws->mdir);
    fl_test_proc_t r;

    fl_test_ws_write(ws, "1_a.sql", "-- migrate:up\nCREATE TABLE a (id int);"
                     "\n-- migrate:down\nDROP TABLE a;\n");
    fl_test_ws_write(ws, "01_b.sql", "-- migrate:up\nCREATE TABLE b (id int);"
                     "\n-- migrate:down\nDROP TABLE b;\n");
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 3, "dbmate migrations \"01_b.sql\" and \"1_a.sql\" "
                   "have one version, 1, in Flotilla");
    fl_test_expect(&r, 3, "records them as the versions \"01\" and \"1\"");
    fl_test_proc_release(&r);
    if (unlink(b) != 0)
        fail_msg("unlink %s: %s", b, strerror(errno));
    fl_test_ws_write(ws, "1_b.sql", "-- migrate:up\nCREATE TABLE b (id int);"
                     "\n-- migrate:down\nDROP TABLE b;\n");
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 3, "records both as version \"1\"");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL AND"
                         " to_regclass('b') IS NULL", "t");
    free(b);
}

/*
 * Flyway's baseline migration B2__ stands for V1__ and V2__ (it runs
 * instead of them on an empty database only), so both are there; read
 * as one more versioned migration it would run as well.  Refused, saying
 * so and what to do (before: as an order Flyway "sorts as text" and
 * Flotilla "the other way", with the hint to give the versions the same
 * number of digits); nothing is applied.
 */
static void
test_a_flyway_baseline_migration_beside_its_version_is_refused(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const dir[] = {"--dir", ws->mdir, "--layout", "flyway",
                               NULL};
    fl_test_proc_t r;

    fl_test_ws_write(ws, "V1__a.sql", "CREATE TABLE a (id int);\n");
    fl_test_ws_write(ws, "V2__b.sql", "CREATE TABLE b (id int);\n");
    fl_test_ws_write(ws, "B2__b.sql", "CREATE TABLE a (id int);\n"
                     "CREATE TABLE b (id int);\n");
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 3, "flyway's baseline migration \"B2__b.sql\" has "
                   "the version of \"V2__b.sql\", 2: Flotilla would run "
                   "both");
    fl_test_expect(&r, 3, "Move \"B2__b.sql\" out of the directory");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
}

/*
 * A file of the tree that cannot be read (a NUL byte in it) is refused
 * with a hint that says what to do, not that the tool would refuse it
 * too (golang-migrate would send it; before, the hint said so of every
 * problem, and baseline --from rails was told to use auto, sql or
 * flotilla, which --from refuses: found by an audit).
 */
static void
test_an_unreadable_file_and_an_unknown_tool_get_true_hints(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const dir[] = {"--dir", ws->mdir, "--layout",
                               "golang-migrate", NULL};
    const char *const rails[] = {"--dir", ws->mdir, "--from", "rails", NULL};
    char *path = fl_asprintf("%s/1_a.up.sql", ws->mdir);
    FILE *fp = fopen(path, "wb");
    fl_test_proc_t r;

    assert_non_null(fp);
    assert_int_equal(fwrite("SELECT 1;\0\n", 1, 11, fp), 11);
    assert_int_equal(fclose(fp), 0);
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 3, "NUL byte");
    fl_test_expect(&r, 3, "Fix the file");
    if (strstr(r.err, "would refuse it too"))
        fail_msg("the hint:\n%s", r.err);
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(ws, &r, "baseline", rails, 0);
    fl_test_expect(&r, 2, "reads the ledgers of diesel");
    if (strstr(r.err, "use auto"))
        fail_msg("the hint:\n%s", r.err);
    fl_test_proc_release(&r);
    free(path);
}

/*
 * A golang-migrate file that is a link out of the tree is refused, saying
 * what to do about a link (the hint said golang-migrate would refuse the
 * file too, which it would not: it follows links).
 */
static void
test_a_link_out_of_the_tree_is_refused_with_what_to_do(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const dir[] = {"--dir", ws->mdir, "--layout",
                               "golang-migrate", NULL};
    char *secret = fl_asprintf("%s/secret.sql", ws->dir);
    char *link = fl_asprintf("%s/2_b.up.sql", ws->mdir);
    fl_test_proc_t r;

    fl_test_ws_write(ws, "1_a.up.sql", "CREATE TABLE a (id bigint);\n");
    fl_test_ws_write(ws, "1_a.down.sql", "DROP TABLE a;\n");
    fl_test_write_file(secret, "SELECT 'a password';\n");
    if (symlink(secret, link) != 0)
        fail_msg("symlink %s: %s", link, strerror(errno));
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 3, "Copy the file into the directory");
    if (strstr(r.err, "would refuse it too"))
        fail_msg("the hint:\n%s", r.err);
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
    free(link);
    free(secret);
}

/*
 * A diesel migration folder that is a symbolic link is a migration to
 * diesel, which follows it: followed when it leads to a folder inside
 * the directory read, refused naming it when it leads out (its files
 * would be read through it); never left out (before, both were left out
 * without a word, and apply said "applied 1 migration").
 */
static void
test_a_linked_diesel_folder_is_followed_or_refused(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const dir[] = {"--dir", ws->mdir, "--layout", "diesel",
                               "--allow-lint-errors", NULL};
    char *in = fl_asprintf("%s/2019-01-01-000002_b", ws->mdir);
    char *out = fl_asprintf("%s/2019-01-01-000003_c", ws->mdir);
    char *archive = fl_asprintf("%s/archive", ws->mdir);
    char *away = fl_asprintf("%s/away", ws->dir);
    char *c = fl_asprintf("%s/up.sql", away);
    fl_test_proc_t r;

    s_write(ws, "2019-01-01-000001_a", "up.sql", "CREATE TABLE a (id int);\n");
    s_write(ws, "2019-01-01-000001_a", "down.sql", "DROP TABLE a;\n");
    if (mkdir(archive, 0755) != 0 || mkdir(away, 0755) != 0)
        fail_msg("mkdir %s, %s: %s", archive, away, strerror(errno));
    s_write(ws, "archive/2019-01-01-000002_b", "up.sql",
            "CREATE TABLE b (id int);\n");
    s_write(ws, "archive/2019-01-01-000002_b", "down.sql", "DROP TABLE b;\n");
    if (symlink("archive/2019-01-01-000002_b", in) != 0)
        fail_msg("symlink %s: %s", in, strerror(errno));
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 0, "applied 2 migrations");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('b') IS NOT NULL", "t");

    fl_test_write_file(c, "CREATE TABLE c (id int);\n");
    if (symlink(away, out) != 0)
        fail_msg("symlink %s: %s", out, strerror(errno));
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 3, "diesel migration folder");
    fl_test_expect(&r, 3, "2019-01-01-000003_c\" is a symbolic link to");
    fl_test_expect(&r, 3, "Copy the folder into the directory");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('c') IS NULL", "t");
    free(in);
    free(out);
    free(c);
    free(away);
    free(archive);
}

static void
test_a_wrapped_file_keeps_its_transaction(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *const dir[] = {"--dir", ws->mdir, "--layout", "pop",
                               "--allow-lint-errors", NULL};
    fl_test_proc_t r;

    fl_test_ws_write(ws, "1_t.postgres.up.sql", "CREATE TABLE t (id int);\n");
    fl_test_ws_write(ws, "1_t.postgres.down.sql", "DROP TABLE t;\n");
    fl_test_ws_write(ws, "2_i.postgres.up.sql",
                     "CREATE INDEX CONCURRENTLY t_i ON t (id);\n");
    fl_test_ws_write(ws, "2_i.postgres.down.sql", "DROP INDEX t_i;\n");
    fl_test_ws_flotilla(ws, &r, "apply", dir, 0);
    fl_test_expect(&r, 1, "25001");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT string_agg(version || ' ' ||"
                         " status || ' ' || transactional, ',' ORDER BY"
                         " version_order) FROM flotilla.schema_migrations",
                         "1 applied true,2 failed true");
}

/*
 * import never writes what a Flotilla file would read otherwise: a line
 * the parser takes for a marker ("  --flotilla:down", blanks around the
 * dashes) is refused, before anything is written (before, it was
 * written: the rest of the up became the down; and a refusal of the
 * second migration left the first written, so that the next import was
 * refused for a directory already holding files); a file name holding a
 * newline and a marker is written escaped in the header comment (before,
 * its "-- flotilla:validate" line was a section plan then ran).
 */
static void
test_import_writes_no_line_a_flotilla_file_reads_otherwise(void **state)
{
    fl_test_ws_t *ws = *state;
    char *src = fl_asprintf("%s/gm", ws->dir);
    char *dest = fl_asprintf("%s/out", ws->dir);
    char *fw = fl_asprintf("%s/fw", ws->dir);
    char *fdest = fl_asprintf("%s/fout", ws->dir);
    char *odd = fl_asprintf("%s/V1__a\n-- flotilla:validate\nSELECT 1\n"
                            "--x.sql", fw);
    const char *argv[] = {"flotilla", "import", "--from", "golang-migrate",
                          src, dest, NULL};
    const char *fargv[] = {"flotilla", "import", "--from", "flyway", fw,
                           fdest, NULL};
    fl_test_proc_t r;
    fl_migration_list_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(mkdir(src, 0755), 0);
    assert_int_equal(mkdir(fw, 0755), 0);
    {
        char *a = fl_asprintf("%s/1_a.up.sql", src);
        char *b = fl_asprintf("%s/2_b.up.sql", src);
        fl_test_write_file(a, "CREATE TABLE a (id int);\n");
        fl_test_write_file(b, "CREATE TABLE b (id int);\n"
                              "  --flotilla:down\nCREATE TABLE b2 (id int);\n");
        free(a);
        free(b);
    }
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    if (r.status == 0)
        fail_msg("import took a marker line:\n%s\n%s", r.out, r.err);
    fl_test_proc_release(&r);
    if (fl_migration_dir_load(&l, dest, &err) == 0)
        fail_msg("a refused import wrote %zu migration(s) into %s", l.count,
                 dest);
    fl_migration_list_release(&l);
    fl_error_clear(&err);

    fl_test_write_file(odd, "CREATE TABLE odd (id int);\n");
    fl_test_run(&r, "flotilla", fargv, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    assert_int_equal(fl_migration_dir_load(&l, fdest, &err), 0);
    assert_int_equal(l.count, 1);
    if (l.items[0].validate != NULL)
        fail_msg("the file name's marker made a validate section: %s",
                 l.items[0].validate);
    fl_migration_list_release(&l);
    free(src);
    free(dest);
    free(fw);
    free(fdest);
    free(odd);
}

/* Writes text to dir/name (dir made when missing). */
static void
s_put(const char *dir, const char *name, const char *text)
{
    char *path = fl_asprintf("%s/%s", dir, name);

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", dir, strerror(errno));
    fl_test_write_file(path, text);
    free(path);
}

/* flotilla import SRC DEST --from tool, which must succeed: its output
 * (a new string). */
static char *
s_import_to(const char *tool, const char *src, const char *dest)
{
    const char *argv[] = {"flotilla", "import", "--from", tool, src, dest,
                          NULL};
    fl_test_proc_t r;
    char *out = NULL;

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    out = fl_strdup(r.out);
    fl_test_proc_release(&r);
    return out;
}

/* Fails unless text holds needle. */
static void
s_says(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("expected \"%s\" in:\n%s", needle, text);
}

/*
 * import keeps the tool tree's checksums where Flotilla's format can: an
 * up without a final newline is written as the file's last section, byte
 * for byte (before, it gained a newline, its checksum changed, and
 * flotilla status said DRIFT on the database the tree had migrated); a
 * down beside it that has no final newline either gains one, which is
 * not drift.  An empty down, which no Flotilla section may be, is written
 * as a comment line that runs nothing (before, as an empty section that
 * no command could load); so is an empty up, whose checksum then
 * differs, which import says.  Flyway's repeatable file keeps its bytes
 * too.
 */
static void
test_import_keeps_the_trees_checksums(void **state)
{
    fl_test_ws_t *ws = *state;
    char *src = fl_asprintf("%s/gm", ws->dir);
    char *dest = fl_asprintf("%s/out", ws->dir);
    char *dest2 = fl_asprintf("%s/out2", ws->dir);
    char *fw = fl_asprintf("%s/fw", ws->dir);
    char *fdest = fl_asprintf("%s/fout", ws->dir);
    const char *tree[] = {"--dir", src, "--layout", "golang-migrate",
                          "--allow-lint-errors", NULL};
    const char *out[] = {dest, NULL};
    const char *out2[] = {dest2, NULL};
    fl_migration_list_t l = {NULL, 0}, r = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    fl_test_proc_t p;
    char *said = NULL;

    s_put(src, "1_a.up.sql", "CREATE TABLE a (id int);");
    s_put(src, "1_a.down.sql", "DROP TABLE a;\n");
    s_put(src, "2_b.up.sql", "CREATE TABLE b (id int);");
    s_put(src, "2_b.down.sql", "DROP TABLE b;");
    said = s_import_to("golang-migrate", src, dest);
    fl_test_ws_flotilla(ws, &p, "apply", tree, 0);
    fl_test_expect(&p, 0, "applied 2 migrations");
    fl_test_proc_release(&p);
    fl_test_ws_flotilla(ws, &p, "status", out, 0);
    fl_test_expect(&p, 0, "2 migrations in the ledger");
    if (strstr(p.out, "DRIFT") != NULL)
        fail_msg("the imported directory drifted:\n%s", p.out);
    fl_test_proc_release(&p);
    s_says(said, "0002_b.sql: down given a final newline");
    free(said);

    s_put(src, "3_c.up.sql", "CREATE TABLE c (id int);\n");
    s_put(src, "3_c.down.sql", "");
    said = s_import_to("golang-migrate", src, dest2);
    s_says(said, "0003_c.sql: empty down");
    free(said);
    assert_int_equal(fl_migration_dir_load(&l, dest2, &err), 0);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.items[0].up, "CREATE TABLE a (id int);");
    assert_string_equal(l.items[0].down, "DROP TABLE a;\n");
    assert_string_equal(l.items[1].down, "DROP TABLE b;\n");
    fl_test_ws_flotilla(ws, &p, "apply", tree, 0);
    fl_test_expect(&p, 0, "applied 1 migration");
    fl_test_proc_release(&p);
    fl_test_ws_flotilla(ws, &p, "status", out2, 0);
    fl_test_expect(&p, 0, "3 migrations in the ledger");
    if (strstr(p.out, "DRIFT") != NULL)
        fail_msg("the imported directory drifted:\n%s", p.out);
    fl_test_proc_release(&p);

    s_put(fw, "V1__t.sql", "CREATE TABLE t (id int);\n");
    s_put(fw, "V2__e.sql", "");
    s_put(fw, "R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT 1");
    said = s_import_to("flyway", fw, fdest);
    s_says(said, "0002_e.sql: empty up: written with \"SELECT;\"");
    free(said);
    fl_migration_list_release(&l);
    assert_int_equal(fl_migration_dir_load_all(&l, &r, fdest, &err), 0);
    assert_int_equal(l.count, 2);
    s_says(l.items[1].up, "-- The up holds no statement in the tool's file");
    assert_int_equal(r.count, 1);
    assert_string_equal(r.items[0].up, "CREATE OR REPLACE VIEW v AS SELECT 1");
    fl_migration_list_release(&l);
    fl_migration_list_release(&r);
    fl_error_clear(&err);
    free(src);
    free(dest);
    free(dest2);
    free(fw);
    free(fdest);
}

/*
 * Only pop's files of one stamp and name, their part numbers apart, are
 * one migration: two fourteen-digit stamps of one day with the same name
 * are two (before, every stamp of the same length was cut at its last
 * six digits, so 20210410100000 and 20210410235959 made one group, and a
 * baseline of the first alone was refused, then re-ran it).
 */
static void
test_pop_stamps_of_one_day_are_two_migrations(void **state)
{
    fl_test_ws_t *ws = *state;
    const char *argv[] = {"--dir", ws->mdir, "--layout", "pop", NULL};
    fl_test_proc_t r;

    fl_test_ws_write(ws, "20210410100000_update.up.sql",
                     "CREATE TABLE a (id int);\n");
    fl_test_ws_write(ws, "20210410100000_update.down.sql", "DROP TABLE a;\n");
    fl_test_ws_write(ws, "20210410235959_update.up.sql",
                     "CREATE TABLE b (id int);\n");
    fl_test_ws_write(ws, "20210410235959_update.down.sql", "DROP TABLE b;\n");
    fl_test_ws_flotilla(ws, &r, "apply", argv, 0);
    fl_test_expect(&r, 0, "applied 2 migrations");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT count(*) FROM"
                         " flotilla.schema_migrations", "2");
}

/*
 * pop's files sharing one name and stamp are one migration: the plan
 * says so; a rollback to a version inside the group (one of its files')
 * undoes the whole group, its downs in reverse order (in file order the
 * table would be dropped before its columns), and nothing below it; the
 * group applies again whole.
 */
static void
test_pop_files_sharing_a_name_are_one_migration(void **state)
{
    fl_test_ws_t *ws = *state;
    const s_history_t *h = &s_histories[2];
    char *out = s_run(ws, h, "plan", "--json", NULL, 3, NULL);
    char *before = NULL, *end = NULL, *now = NULL;

    if (strstr(out, "a group of 3 pop files sharing the name \\\"sessions\\\"")
        == NULL ||
        strstr(out, "20210520120000000000_sessions.postgres.up.sql, "
                    "20210520120000000001_sessions.postgres.up.sql, "
                    "20210520120000000002_sessions.up.sql") == NULL)
        fail_msg("the plan does not name the group's files:\n%s", out);
    free(out);
    free(s_run(ws, h, "apply", "--to", "20210410175418000002", 0, NULL));
    before = fl_test_canonical_dump(ws->conn);
    free(s_run(ws, h, "apply", NULL, NULL, 0, "applied 1 migration"));
    end = fl_test_canonical_dump(ws->conn);
    fl_test_expect_value(ws->conn, "SELECT string_agg(attname, ',' ORDER BY"
                         " attnum) FROM pg_attribute WHERE attrelid ="
                         " 'sessions'::regclass AND attnum > 0",
                         "id,identity_id,nid,expires_at");
    free(s_run(ws, h, "rollback", "--to", "20210520120000000001", 0,
               "rolled back 1"));
    now = fl_test_canonical_dump(ws->conn);
    fl_test_assert_dumps_equal("pop group rolled back", before, now);
    free(now);
    fl_test_expect_value(ws->conn, "SELECT string_agg(version || ' ' ||"
                         " status, ',' ORDER BY version_order) FROM"
                         " flotilla.schema_migrations WHERE version LIKE"
                         " '20210520%'", "20210520120000000002 rolled_back");
    free(s_run(ws, h, "apply", NULL, NULL, 0, "applied 1 migration"));
    now = fl_test_canonical_dump(ws->conn);
    fl_test_assert_dumps_equal("pop group applied again", end, now);
    free(now);
    free(before);
    free(end);
}

/*
 * flotilla bundle build --dir TREE --layout TOOL signs another tool's tree
 * as apply --dir reads it: applied with flotilla apply BUNDLE to a fresh
 * database it gives the schema and the ledger (versions, transactional
 * flags, checksums) the tree gives with --dir; the bundle carries each
 * migration's version text, no-transaction flag and note, a pop group's
 * parts, and Flyway's repeatable migration (format 3; its view is in the
 * schema compared).
 */
static void
test_a_bundle_built_from_a_tree_applies_as_the_tree(void **state)
{
    /* diesel, golang-migrate, pop, Flyway (its R__views.sql too) */
    static const int tools[] = {0, 1, 2, 5};
    static const char ledger[] =
        "SELECT string_agg(version || ' ' || transactional || ' ' ||"
        " checksum, ',' ORDER BY version_order) FROM"
        " flotilla.schema_migrations WHERE status = 'applied'";
    fl_test_ws_t *ws = *state;
    char *key = fl_asprintf("%s/release", ws->dir);
    char *keyfile = fl_asprintf("%s/release.key", ws->dir);
    char *pub = fl_asprintf("%s/release.pub", ws->dir);
    char *src = fl_test_source_path("tests/fixtures/layouts");
    fl_test_proc_t r;

    fl_test_run(&r, "flotilla", (const char *const[]){"flotilla", "keygen",
                "--out", key, NULL}, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    for (size_t t = 0; t < sizeof(tools) / sizeof(tools[0]); t++) {
        const s_history_t *h = &s_histories[tools[t]];
        char *tree = fl_asprintf("%s/%s", src, h->dir);
        char *bundle = fl_asprintf("%s/%s.bundle", ws->dir, h->tool);
        const char *lint[] = {"--allow-lint-errors", "--trust", pub,
                              "--environment", "test", NULL};
        char *want = NULL, *want_ledger = NULL, *got_ledger = NULL;

        fl_test_exec(ws->conn, "SET client_min_messages = warning;"
                               "DROP SCHEMA IF EXISTS flotilla CASCADE;"
                               "DROP SCHEMA IF EXISTS flotilla_backup CASCADE;"
                               "DROP SCHEMA public CASCADE;"
                               "CREATE SCHEMA public");
        free(s_run(ws, h, "apply", NULL, NULL, 0, NULL));
        want = fl_test_canonical_dump(ws->conn);
        want_ledger = s_value(ws, ledger);
        fl_test_run(&r, "flotilla", (const char *const[]){"flotilla",
                    "bundle", "build", "--dir", tree, "--layout", h->tool,
                    "--sign", keyfile, "--out", bundle, "--environment",
                    "test", NULL}, NULL, 60);
        fl_test_expect(&r, 0, "(read as ");
        fl_test_proc_release(&r);
        got_ledger = s_apply_fresh(h->tool, lint, bundle, want, ledger);
        if (got_ledger == NULL || strcmp(got_ledger, want_ledger) != 0)
            fail_msg("%s: the bundle's ledger\n  %s\ndiffers from the "
                     "tree's\n  %s", h->tool, got_ledger ? got_ledger : "",
                     want_ledger);
        if (strcmp(h->tool, "pop") == 0) {
            fl_test_run(&r, "flotilla", (const char *const[]){"flotilla",
                        "bundle", "inspect", "--json", bundle, NULL}, NULL,
                        60);
            fl_test_expect(&r, 0, "\"parts\": [\n        "
                           "\"20210520120000000000\",\n        "
                           "\"20210520120000000001\",\n        "
                           "\"20210520120000000002\"");
            fl_test_expect(&r, 0, "\"note\": \"a group of 3 pop files");
            fl_test_proc_release(&r);
        }
        if (h->repeatable) {
            /* Format 3: the repeatable migration travels, and ran. */
            fl_test_run(&r, "flotilla", (const char *const[]){"flotilla",
                        "bundle", "inspect", "--json", bundle, NULL}, NULL,
                        60);
            fl_test_expect(&r, 0, "\"format\": 3");
            fl_test_expect(&r, 0, "\"file\": \"R__views.sql\"");
            fl_test_proc_release(&r);
        }
        free(got_ledger);
        free(want_ledger);
        free(want);
        free(bundle);
        free(tree);
    }
    free(src);
    free(pub);
    free(keyfile);
    free(key);
}

/*
 * import says every file of SRC it leaves out, and why: pop's .fizz
 * file and its file for another database, a Flyway file in a
 * subdirectory (which Flyway reads) and one whose name Flyway's does
 * not parse; apply --dir warns of the same.  Before, nothing was said
 * (found by an audit: the list was never filled).
 */
static void
test_import_says_every_file_it_leaves_out(void **state)
{
    fl_test_ws_t *ws = *state;
    char *pop = fl_asprintf("%s/pop", ws->dir);
    char *fw = fl_asprintf("%s/fw", ws->dir);
    char *sub = fl_asprintf("%s/fw/sub", ws->dir);
    char *out = NULL, *p1 = fl_asprintf("%s/pout", ws->dir);
    char *f1 = fl_asprintf("%s/fout", ws->dir);
    const char *apply[] = {"--dir", fw, "--layout", "flyway",
                           "--allow-lint-errors", NULL};
    fl_test_proc_t r;

    s_put(pop, "1_a.up.sql", "CREATE TABLE a (id int);\n");
    s_put(pop, "1_a.down.sql", "DROP TABLE a;\n");
    s_put(pop, "2_b.up.fizz", "create_table(\"b\") {}\n");
    s_put(pop, "3_c.mysql.up.sql", "CREATE TABLE c (id int);\n");
    out = s_import_to("pop", pop, p1);
    s_says(out, "2_b.up.fizz (pop fizz migration (not SQL))");
    s_says(out, "3_c.mysql.up.sql (pop migration for another database)");
    free(out);

    s_put(fw, "V1__a.sql", "CREATE TABLE fa (id int);\n");
    s_put(fw, "V1a__typo.sql", "CREATE TABLE typo (id int);\n");
    s_put(sub, "V2__b.sql", "CREATE TABLE fb (id int);\n");
    s_put(fw, "V3__c.sql", "CREATE TABLE fc (id int);\n");
    out = s_import_to("flyway", fw, f1);
    s_says(out, "not imported: 2 files Flotilla does not read");
    s_says(out, "sub/V2__b.sql (in a subdirectory");
    s_says(out, "V1a__typo.sql (not a flyway migration");
    free(out);
    fl_test_ws_flotilla(ws, &r, "apply", apply, 0);
    fl_test_expect(&r, 0, "warning: 2 files Flotilla does not read");
    fl_test_proc_release(&r);
    free(pop);
    free(fw);
    free(sub);
    free(p1);
    free(f1);
}

/* import SRC DEST --from tool is refused, exit 3, saying says, and DEST
 * holds nothing after. */
static void
s_import_refused(const char *tool, const char *src, const char *dest,
                 const char *says)
{
    const char *argv[] = {"flotilla", "import", "--from", tool, src, dest,
                          NULL};
    fl_test_proc_t r;
    fl_migration_list_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    if (r.status != 3 || strstr(r.err, says) == NULL)
        fail_msg("import --from %s %s: exit %d, wanted a refusal saying "
                 "\"%s\"\n%s\n%s", tool, src, r.status, says, r.out, r.err);
    fl_test_proc_release(&r);
    if (fl_migration_dir_load(&l, dest, &err) == 0)
        fail_msg("a refused import wrote %zu migration(s) into %s", l.count,
                 dest);
    fl_migration_list_release(&l);
    fl_error_clear(&err);
}

/*
 * import refuses, before writing anything, what it cannot carry as the
 * tool ran it: a Flyway baseline migration (B3) that stands for
 * versioned ones below it (Flotilla would run it after them), a Flyway
 * placeholder (Flyway replaces ${env}; Flotilla would store the text
 * "${env}"), a pop template ({{ }}, which pop executes), a file that is
 * not UTF-8 (no Flotilla command could read DEST then), repeatable
 * migrations whose written names would run in another order, and two
 * migrations whose written names would clash or are too long (before,
 * the second write failed with DEST half written, and the next import
 * refused a DEST that held files).  All found by an audit.
 */
static void
test_import_refuses_what_it_cannot_keep_before_writing(void **state)
{
    /* Each case: its tool, what it refuses, its files (name, text). */
    static const struct {
        const char *tool, *says;
        const char *files[8];
    } cases[] = {
        {"flyway", "B3__squash.sql",
         {"V1__a.sql", "CREATE TABLE a (id int);\n",
          "V2__b.sql", "CREATE TABLE b (id int);\n",
          "B3__squash.sql", "CREATE TABLE a (id int);\n"
                            "CREATE TABLE b (id int);\n", NULL}},
        /* Two baseline migrations alone: Flyway runs only the newest. */
        {"flyway", "Flyway runs only the newest",
         {"B3__three.sql", "CREATE TABLE a (id int);\n",
          "B5__five.sql", "CREATE TABLE a (id int);\n"
                          "CREATE TABLE b (id int);\n",
          "V6__c.sql", "CREATE TABLE c (id int);\n", NULL}},
        {"flyway", "placeholder ${env}",
         {"V1__a.sql", "CREATE TABLE cfg (k text, v text);\n"
                       "INSERT INTO cfg VALUES ('env', '${env}');\n", NULL}},
        {"pop", "template",
         {"1_a.up.sql", "CREATE TABLE {{ .table }} (id int);\n", NULL}},
        {"golang-migrate", "invalid UTF-8",
         {"1_a.up.sql", "CREATE TABLE caf\xe9 (id int);\n", NULL}},
        {"flyway", "R__my_views.sql",
         {"V1__a.sql", "CREATE TABLE a (id int);\n",
          "R__my.views.sql", "CREATE VIEW v1 AS SELECT 1;\n",
          "R__my_views.sql", "CREATE VIEW v2 AS SELECT 2;\n", NULL}},
        /* Renamed R__a_b.sql, it would run before R__a-c.sql, which
         * Flyway runs first and which makes the view it reads. */
        {"flyway", "would run in another order",
         {"V1__a.sql", "CREATE TABLE a (id int);\n",
          "R__a-c.sql", "CREATE VIEW base AS SELECT 1 AS x;\n",
          "R__a.b.sql", "CREATE VIEW derived AS SELECT x FROM base;\n",
          NULL}},
        /* The second name, of 255 bytes, is written as 0002_xxx...: 258
         * (made below). */
        {"dbmate", "longer than a file name can be",
         {"1_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n"
                     "-- migrate:down\nDROP TABLE a;\n",
          "", "-- migrate:up\nCREATE TABLE b (id int);\n"
              "-- migrate:down\nDROP TABLE b;\n", NULL}},
    };
    fl_test_ws_t *ws = *state;
    char *dest = fl_asprintf("%s/out", ws->dir);
    char longname[256];

    memcpy(longname, "2_", 2);
    memset(longname + 2, 'x', 249);
    memcpy(longname + 251, ".sql", 5);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *src = fl_asprintf("%s/case%zu", ws->dir, i);

        for (size_t k = 0; cases[i].files[k] != NULL; k += 2)
            s_put(src, cases[i].files[k][0] ? cases[i].files[k] : longname,
                  cases[i].files[k + 1]);
        s_import_refused(cases[i].tool, src, dest, cases[i].says);
        free(src);
    }
    free(dest);
}

/*
 * A migration whose file name is not UTF-8 is refused when the tree is
 * read, naming it with the byte escaped, before anything runs.  Before,
 * the migrations before it ran, then its ledger row could not be
 * written ("invalid byte sequence for encoding UTF8", no file named)
 * and status --json lost it (found by an audit).
 */
static void
test_a_file_name_that_is_not_utf8_is_refused_before_anything_runs(
    void **state)
{
    fl_test_ws_t *ws = *state;
    char *src = fl_asprintf("%s/latin1", ws->dir);
    const char *argv[] = {"--dir", src, "--layout", "golang-migrate",
                          "--allow-lint-errors", NULL};
    fl_test_proc_t r;

    s_put(src, "1_a.up.sql", "CREATE TABLE a (id int);\n");
    s_put(src, "2_caf\xe9.up.sql", "CREATE TABLE b (id int);\n");
    fl_test_ws_flotilla(ws, &r, "apply", argv, 0);
    fl_test_expect(&r, 3, "2_caf\\xe9.up.sql");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
    free(src);
}

/*
 * A file that starts with a UTF-8 byte-order mark is refused before
 * anything runs, naming it: PostgreSQL would read the mark as part of
 * the first statement (Flyway strips it, the others do not).  Before,
 * V1 was applied, then V2 failed with a syntax error "at or near
 * \"\xef\xbb\xbfCREATE\"" (found by an audit).
 */
static void
test_a_byte_order_mark_is_refused_before_anything_runs(void **state)
{
    fl_test_ws_t *ws = *state;
    char *src = fl_asprintf("%s/bom", ws->dir);
    const char *argv[] = {"--dir", src, "--layout", "flyway",
                          "--allow-lint-errors", NULL};
    fl_test_proc_t r;

    s_put(src, "V1__a.sql", "CREATE TABLE a (id int);\n");
    s_put(src, "V2__b.sql", "\xef\xbb\xbf" "CREATE TABLE b (id int);\n");
    fl_test_ws_flotilla(ws, &r, "apply", argv, 0);
    fl_test_expect(&r, 3, "V2__b.sql");
    fl_test_expect(&r, 3, "byte-order mark");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
    free(src);
}

/*
 * One up file named as SRC is its whole migration: import writes its
 * down, and apply records the migration with it (before, both took the
 * file alone: import judged "no down" with the down beside it, and
 * apply refused it as missing its down).  A down file named alone is
 * still the down alone: apply never runs an up nobody named.
 */
static void
test_a_single_up_file_brings_its_down(void **state)
{
    fl_test_ws_t *ws = *state;
    char *src = fl_asprintf("%s/single", ws->dir);
    char *up = fl_asprintf("%s/1_a.up.sql", src);
    char *down = fl_asprintf("%s/1_a.down.sql", src);
    char *dest = fl_asprintf("%s/single-imported", ws->dir);
    char *file = fl_asprintf("%s/0001_a.sql", dest);
    char *said = NULL, *text = NULL;
    fl_test_proc_t r;

    s_put(src, "1_a.up.sql", "CREATE TABLE a (id int);\n");
    s_put(src, "1_a.down.sql", "DROP TABLE a;\n");
    s_put(src, "2_b.up.sql", "CREATE TABLE b (id int);\n");
    said = s_import_to("golang-migrate", up, dest);
    if (strstr(said, "no down") != NULL)
        fail_msg("import judged \"no down\" with the down beside the "
                 "file:\n%s", said);
    if (fl_file_read((unsigned char **)&text, &(size_t){0}, file, 1 << 20,
                     "file", NULL) != 0)
        fail_msg("could not read %s", file);
    s_says(text, "-- flotilla:down\nDROP TABLE a;");
    if (strstr(text, "TABLE b") != NULL)
        fail_msg("import of one file wrote another:\n%s", text);
    fl_test_ws_flotilla(ws, &r, "apply", (const char *const[]){"--dir", up,
                        "--layout", "golang-migrate", NULL}, 0);
    fl_test_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(ws, &r, "rollback", (const char *const[]){"--last",
                        "--dir", up, "--layout", "golang-migrate", NULL}, 0);
    fl_test_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
    fl_test_ws_flotilla(ws, &r, "apply", (const char *const[]){"--dir", down,
                        "--layout", "golang-migrate", NULL}, 0);
    fl_test_expect(&r, 3, NULL);
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
    free(text);
    free(said);
    free(file);
    free(dest);
    free(down);
    free(up);
    free(src);
}

/*
 * The same tree signed into a bundle applies from it: the bundle carries
 * the empty up, and the agent reading it must run it as the tree's tool
 * does (before, "the up section holds no statement": a bundle decoded
 * knew no other tool).
 */
static void
s_empty_up_from_a_bundle(fl_test_ws_t *ws, const char *src)
{
    char *key = fl_asprintf("%s/release", ws->dir);
    char *keyfile = fl_asprintf("%s/release.key", ws->dir);
    char *pub = fl_asprintf("%s/release.pub", ws->dir);
    char *bundle = fl_asprintf("%s/empty.bundle", ws->dir);
    fl_test_proc_t r;

    fl_test_run(&r, "flotilla", (const char *const[]){"flotilla", "keygen",
                "--out", key, NULL}, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", (const char *const[]){"flotilla", "bundle",
                "build", "--dir", src, "--layout", "golang-migrate",
                "--sign", keyfile, "--out", bundle, "--environment", "test",
                NULL}, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_test_exec(ws->conn, "DROP TABLE IF EXISTS a, d;"
                           "DROP SCHEMA flotilla CASCADE;"
                           "DROP SCHEMA IF EXISTS flotilla_backup CASCADE");
    fl_test_ws_flotilla(ws, &r, "apply", (const char *const[]){bundle,
                        "--trust", pub, "--environment", "test",
                        "--allow-lint-errors", NULL}, 0);
    fl_test_expect(&r, 0, "applied 4 migrations");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(ws, &r, "rollback", (const char *const[]){
                        bundle, "--trust", pub, "--environment", "test",
                        "--to", "0", NULL}, 0);
    fl_test_expect(&r, 0, "rolled back 4 migrations");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
    free(bundle);
    free(pub);
    free(keyfile);
    free(key);
}

/*
 * A migration whose up is empty in the tool's tree (golang-migrate,
 * Flyway, sqlx and dbmate run it: it does nothing) applies and rolls
 * back from the tree, and from the directory import writes.  Before,
 * both refused it ("the up section holds no statement"), so a database
 * built from such a history stopped there for good (found by an audit).
 */
static void
test_an_empty_up_of_a_tools_tree_applies_and_rolls_back(void **state)
{
    fl_test_ws_t *ws = *state;
    char *src = fl_asprintf("%s/empty", ws->dir);
    char *dest = fl_asprintf("%s/empty-imported", ws->dir);
    const char *tree[] = {"--dir", src, "--layout", "golang-migrate",
                          "--allow-lint-errors", NULL};
    const char *back[] = {"--dir", src, "--layout", "golang-migrate",
                          "--to", "0", NULL};
    const char *imported[] = {"--dir", dest, "--allow-lint-errors", NULL};
    fl_test_proc_t r;

    s_put(src, "1_a.up.sql", "CREATE TABLE a (id int);\n");
    s_put(src, "1_a.down.sql", "DROP TABLE a;\n");
    s_put(src, "2_reserved.up.sql", "");
    s_put(src, "2_reserved.down.sql", "-- nothing to undo\n");
    s_put(src, "3_c.up.sql", "-- only a comment\n");
    s_put(src, "3_c.down.sql", "");
    s_put(src, "4_d.up.sql", "CREATE TABLE d (id int);\n");
    s_put(src, "4_d.down.sql", "DROP TABLE d;\n");
    fl_test_ws_flotilla(ws, &r, "apply", tree, 0);
    fl_test_expect(&r, 0, "applied 4 migrations");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('d') IS NOT NULL",
                         "t");
    fl_test_ws_flotilla(ws, &r, "rollback", back, 0);
    fl_test_expect(&r, 0, "rolled back 4 migrations");
    fl_test_proc_release(&r);
    fl_test_expect_value(ws->conn, "SELECT to_regclass('a') IS NULL", "t");
    free(s_import_to("golang-migrate", src, dest));
    fl_test_exec(ws->conn, "DROP TABLE IF EXISTS a, d;"
                           "DROP SCHEMA flotilla CASCADE;"
                           "DROP SCHEMA IF EXISTS flotilla_backup CASCADE");
    fl_test_ws_flotilla(ws, &r, "apply", imported, 0);
    fl_test_expect(&r, 0, "applied 4 migrations");
    fl_test_proc_release(&r);
    s_empty_up_from_a_bundle(ws, src);
    free(dest);
    free(src);
}

#define S_TOOL_TEST(fn, i)                                                 \
    static void fn(void **state) { s_history(*state, &s_histories[i]); }
S_TOOL_TEST(test_diesel_history_applies_rolls_back_and_reapplies, 0)
S_TOOL_TEST(test_golang_migrate_history_applies_rolls_back_and_reapplies, 1)
S_TOOL_TEST(test_pop_history_applies_rolls_back_and_reapplies, 2)
S_TOOL_TEST(test_sqlx_history_applies_rolls_back_and_reapplies, 3)
S_TOOL_TEST(test_dbmate_history_applies_rolls_back_and_reapplies, 4)
S_TOOL_TEST(test_flyway_history_applies_rolls_back_and_reapplies, 5)
#undef S_TOOL_TEST

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_diesel_history_applies_rolls_back_and_reapplies, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_file_name_that_is_not_utf8_is_refused_before_anything_runs,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_byte_order_mark_is_refused_before_anything_runs,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_an_unreadable_file_and_an_unknown_tool_get_true_hints,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_an_empty_up_of_a_tools_tree_applies_and_rolls_back,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_single_up_file_brings_its_down,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_golang_migrate_history_applies_rolls_back_and_reapplies, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_pop_history_applies_rolls_back_and_reapplies, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_sqlx_history_applies_rolls_back_and_reapplies, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_dbmate_history_applies_rolls_back_and_reapplies, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_flyway_history_applies_rolls_back_and_reapplies, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_an_order_the_tool_disagrees_on_is_refused, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_link_out_of_the_tree_is_refused_with_what_to_do, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_wrapped_file_keeps_its_transaction, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_pop_files_sharing_a_name_are_one_migration, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_pop_stamps_of_one_day_are_two_migrations, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_import_writes_no_line_a_flotilla_file_reads_otherwise, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(test_a_bundle_built_from_a_tree_applies_as_the_tree, fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_import_keeps_the_trees_checksums, fl_test_ws_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_two_migrations_of_one_version_are_refused, fl_test_ws_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_flyway_baseline_migration_beside_its_version_is_refused,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_linked_diesel_folder_is_followed_or_refused,
            fl_test_ws_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_import_says_every_file_it_leaves_out, fl_test_ws_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_import_refuses_what_it_cannot_keep_before_writing,
            fl_test_ws_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("layouts", tests, NULL, NULL);
}
