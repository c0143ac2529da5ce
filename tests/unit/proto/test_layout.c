/*
 * Unit tests for proto/layout: the fixture tree of each tool under
 * tests/fixtures/layouts/ recognised with its versions, order,
 * transaction rules and down parts; single files read with their folder;
 * files a tool would refuse listed with their problem while the rest is
 * still listed; versions compared as each tool orders them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "proto/layout.h"
#include "testsupport.h"

/* Scans tests/fixtures/layouts/REL; the caller releases out. */
static void
scan_fixture(fl_layout_t *out, const char *rel, fl_layout_tool prefer)
{
    char *path = fl_asprintf("tests/fixtures/layouts/%s", rel);
    char *full = fl_test_source_path(path);
    fl_layout_options_t opts = FL_LAYOUT_OPTIONS_INIT;
    fl_error_t err = FL_ERROR_INIT;

    opts.prefer = prefer;
    if (fl_layout_scan(out, full, &opts, &err) != 0)
        fail_msg("scan of %s failed: %s", full, err.message);
    free(full);
    free(path);
}

/* The only source of the scan, which must be of tool. */
static const fl_layout_source_t *
only_source(const fl_layout_t *l, fl_layout_tool tool)
{
    if (l->count != 1)
        fail_msg("%zu sources, expected 1", l->count);
    assert_int_equal(l->sources[0].tool, tool);
    return &l->sources[0];
}

static void
expect(const fl_layout_migration_t *m, const char *version, const char *name,
       fl_layout_tx up_tx, int has_down)
{
    if (version)
        assert_string_equal(m->version, version);
    else
        assert_null(m->version);
    assert_string_equal(m->name, name);
    assert_null(m->problem);
    assert_non_null(m->up.text);
    assert_int_equal(m->up.tx, up_tx);
    assert_int_equal(m->down.path != NULL, has_down);
}

static void
test_layout_scan_flotilla_reads_sections_and_options(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;

    (void)state;
    scan_fixture(&l, "flotilla", FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_FLOTILLA);
    assert_int_equal(s->count, 2);
    expect(&s->items[0], "1", "users", FL_LAYOUT_TX_WRAPPED, 1);
    assert_int_equal(s->items[0].up.line, 3);
    assert_int_equal(s->items[0].down.line, 8);
    assert_non_null(s->items[0].flotilla);
    assert_int_equal(s->items[0].flotilla->lock_timeout_ms, 2000);
    expect(&s->items[1], "2", "email_index", FL_LAYOUT_TX_NONE, 1);
    fl_layout_release(&l);
}

static void
test_layout_scan_diesel_folders_versions_and_metadata(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;

    (void)state;
    scan_fixture(&l, "diesel", FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_DIESEL);
    assert_int_equal(s->count, 3);
    expect(&s->items[0], "00000000000000", "diesel_initial_setup",
           FL_LAYOUT_TX_WRAPPED, 1);
    /* diesel drops the dashes of its stamps and orders the strings */
    expect(&s->items[1], "20190226002946", "create_users", FL_LAYOUT_TX_WRAPPED, 1);
    assert_string_equal(s->items[1].label, "2019-02-26-002946_create_users");
    assert_non_null(strstr(s->items[1].up.path, "create_users/up.sql"));
    assert_non_null(strstr(s->items[1].down.path, "create_users/down.sql"));
    /* run_in_transaction = false: batch_execute sends one query string */
    expect(&s->items[2], "20190301101010", "index_email", FL_LAYOUT_TX_IMPLICIT, 1);
    assert_int_equal(s->items[2].down.tx, FL_LAYOUT_TX_IMPLICIT);
    fl_layout_release(&l);
}

static void
test_layout_scan_golang_migrate_pairs_up_and_down(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;

    (void)state;
    scan_fixture(&l, "golang-migrate", FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_GOLANG_MIGRATE);
    assert_int_equal(s->count, 2);
    expect(&s->items[0], "1", "create_users", FL_LAYOUT_TX_IMPLICIT, 1);
    expect(&s->items[1], "2", "email_index", FL_LAYOUT_TX_IMPLICIT, 1);
    assert_non_null(strstr(s->items[1].down.path, "2_email_index.down.sql"));
    fl_layout_release(&l);
}

static void
test_layout_scan_pop_dialects_autocommit_and_fizz(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;
    size_t i;
    int mysql = 0, fizz = 0;

    (void)state;
    scan_fixture(&l, "pop", FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_POP);
    assert_int_equal(s->count, 6);
    /* 20 digits, beyond int64, kept as text */
    expect(&s->items[0], "20210410175418000000", "identities",
           FL_LAYOUT_TX_WRAPPED, 1);
    assert_non_null(strstr(s->items[0].up.path, ".postgres.up.sql"));
    expect(&s->items[1], "20210410175418000001", "identities",
           FL_LAYOUT_TX_IMPLICIT, 1);
    expect(&s->items[2], "20210410175418000002", "networks",
           FL_LAYOUT_TX_WRAPPED, 1);
    /* One name, one stamp: files of one migration (agent/source.c groups
     * them); the dialect-neutral file takes the version no PostgreSQL
     * file has. */
    expect(&s->items[3], "20210520120000000000", "sessions",
           FL_LAYOUT_TX_WRAPPED, 1);
    expect(&s->items[4], "20210520120000000001", "sessions",
           FL_LAYOUT_TX_WRAPPED, 1);
    expect(&s->items[5], "20210520120000000002", "sessions",
           FL_LAYOUT_TX_WRAPPED, 1);
    assert_null(strstr(s->items[5].up.path, ".postgres."));
    for (i = 0; i < l.nskipped; i++) {
        mysql += strstr(l.skipped[i].path, ".mysql.") != NULL;
        fizz += strstr(l.skipped[i].path, ".fizz") != NULL;
    }
    assert_int_equal(mysql, 3);
    assert_int_equal(fizz, 1);
    fl_layout_release(&l);
}

static void
test_layout_scan_sqlx_in_a_rust_project(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;

    (void)state;
    scan_fixture(&l, "sqlx", FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_SQLX);
    assert_int_equal(s->count, 3);
    expect(&s->items[0], "20220101000000", "users", FL_LAYOUT_TX_WRAPPED, 0);
    /* -- no-transaction: sqlx runs the file as one query string */
    expect(&s->items[1], "20220102000000", "email_index", FL_LAYOUT_TX_IMPLICIT, 0);
    expect(&s->items[2], "20220103000000", "last_seen", FL_LAYOUT_TX_WRAPPED, 1);
    fl_layout_release(&l);
}

static void
test_layout_scan_dbmate_sections_and_transaction_option(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;

    (void)state;
    scan_fixture(&l, "dbmate", FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_DBMATE);
    assert_int_equal(s->count, 2);
    expect(&s->items[0], "20200101000000", "create_users", FL_LAYOUT_TX_WRAPPED, 1);
    assert_int_equal(s->items[0].up.line, 1);
    assert_int_equal(s->items[0].down.line, 4);
    assert_null(strstr(s->items[0].up.text, "DROP TABLE"));
    expect(&s->items[1], "20200102000000", "email_index", FL_LAYOUT_TX_IMPLICIT, 1);
    assert_int_equal(s->items[1].down.tx, FL_LAYOUT_TX_IMPLICIT);
    fl_layout_release(&l);
}

static void
test_layout_scan_flyway_versions_undo_repeatable_and_conf(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;

    (void)state;
    scan_fixture(&l, "flyway", FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_FLYWAY);
    assert_int_equal(s->count, 5);
    expect(&s->items[0], "1", "create_users", FL_LAYOUT_TX_AUTO, 0);
    expect(&s->items[1], "1.1", "add_name", FL_LAYOUT_TX_AUTO, 1);
    assert_non_null(strstr(s->items[1].down.path, "U1_1__add_name.sql"));
    expect(&s->items[2], "2", "email_index", FL_LAYOUT_TX_AUTO, 1);
    /* V10 after V2; its .sql.conf says executeInTransaction=false */
    expect(&s->items[3], "10", "reindex", FL_LAYOUT_TX_NONE, 1);
    expect(&s->items[4], NULL, "views", FL_LAYOUT_TX_AUTO, 0);
    assert_int_equal(s->items[4].repeatable, 1);
    fl_layout_release(&l);
}

static void
test_layout_scan_plain_sql_and_whole_tree(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;
    size_t i;
    int tools[FL_LAYOUT_FLYWAY + 1] = {0};

    (void)state;
    scan_fixture(&l, "plain", FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_SQL);
    assert_int_equal(s->count, 2);
    /* NNNN_name.sql without markers outside a Rust project: plain SQL */
    expect(&s->items[0], NULL, "0001_seed.sql", FL_LAYOUT_TX_NONE, 0);
    expect(&s->items[1], NULL, "schema.sql", FL_LAYOUT_TX_NONE, 0);
    fl_layout_release(&l);

    scan_fixture(&l, "", FL_LAYOUT_AUTO);
    for (i = 0; i < l.count; i++)
        tools[l.sources[i].tool]++;
    for (i = FL_LAYOUT_SQL; i <= FL_LAYOUT_FLYWAY; i++)
        if (tools[i] != 1)
            fail_msg("%d sources of %s in the whole tree", tools[i],
                     fl_layout_tool_name((fl_layout_tool)i));
    assert_int_equal(fl_layout_count(&l), 2 + 3 + 2 + 6 + 3 + 2 + 5 + 2);
    fl_layout_release(&l);
}

static void
test_layout_scan_prefer_decides_shared_names(void **state)
{
    fl_layout_t l;

    (void)state;
    scan_fixture(&l, "golang-migrate", FL_LAYOUT_SQLX);
    assert_int_equal(only_source(&l, FL_LAYOUT_SQLX)->items[0].up.tx,
                     FL_LAYOUT_TX_WRAPPED);
    fl_layout_release(&l);
    scan_fixture(&l, "sqlx", FL_LAYOUT_SQL);
    assert_int_equal(only_source(&l, FL_LAYOUT_SQL)->count, 4);
    fl_layout_release(&l);
}

static void
test_layout_scan_single_file_keeps_its_part(void **state)
{
    fl_layout_t l;
    const fl_layout_source_t *s;

    (void)state;
    scan_fixture(&l, "golang-migrate/db/migrations/2_email_index.down.sql",
                 FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_GOLANG_MIGRATE);
    assert_int_equal(s->count, 1);
    assert_null(s->items[0].up.path);
    assert_null(s->items[0].problem);
    assert_non_null(s->items[0].down.text);
    fl_layout_release(&l);

    scan_fixture(&l, "diesel/migrations/2019-03-01-101010_index_email/up.sql",
                 FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_DIESEL);
    assert_int_equal(s->count, 1);
    expect(&s->items[0], "20190301101010", "index_email", FL_LAYOUT_TX_IMPLICIT, 0);
    fl_layout_release(&l);

    scan_fixture(&l, "diesel/migrations/2019-02-26-002946_create_users",
                 FL_LAYOUT_AUTO);
    s = only_source(&l, FL_LAYOUT_DIESEL);
    assert_int_equal(s->count, 1);
    expect(&s->items[0], "20190226002946", "create_users", FL_LAYOUT_TX_WRAPPED, 1);
    fl_layout_release(&l);
}

static void
write_at(const char *dir, const char *name, const char *text, size_t len)
{
    char *p = fl_asprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(p);
}

#define WRITE(dir, name, text) write_at(dir, name, text, sizeof(text) - 1)

/*
 * R__name.sql with flotilla's markers beside flotilla's files is a
 * flotilla repeatable migration (parsed, no version, after the numbered
 * ones); without them it is Flyway's.
 */
static void
test_layout_scan_flotilla_repeatable_beside_numbered_files(void **state)
{
    char *dir = fl_test_tmpdir();
    fl_layout_t l;
    const fl_layout_source_t *s;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    WRITE(dir, "0001_t.sql", "-- flotilla:up\nSELECT 1;\n-- flotilla:down\nSELECT 2;\n");
    WRITE(dir, "R__v.sql", "-- flotilla:options no-transaction\n-- flotilla:up\nSELECT 3;\n");
    assert_int_equal(fl_layout_scan(&l, dir, NULL, &err), 0);
    s = only_source(&l, FL_LAYOUT_FLOTILLA);
    assert_int_equal(s->count, 2);
    expect(&s->items[0], "1", "t", FL_LAYOUT_TX_WRAPPED, 1);
    expect(&s->items[1], NULL, "v", FL_LAYOUT_TX_NONE, 0);
    assert_true(s->items[1].repeatable);
    assert_non_null(s->items[1].flotilla);
    assert_true(s->items[1].flotilla->repeatable);
    assert_int_equal(s->items[1].up.line, 3);
    fl_layout_release(&l);
    fl_test_rmtree(dir);
    free(dir);
}

static void
test_layout_scan_problems_do_not_hide_the_rest(void **state)
{
    char *dir = fl_test_tmpdir();
    fl_layout_t l;
    fl_error_t err = FL_ERROR_INIT;
    size_t i, k, problems = 0, fine = 0;

    (void)state;
    WRITE(dir, "0001_ok.sql", "-- flotilla:up\nSELECT 1;\n-- flotilla:down\nSELECT 2;\n");
    WRITE(dir, "0002_bad.sql", "-- flotilla:options frobnicate\n-- flotilla:up\nSELECT 1;\n");
    WRITE(dir, "3_x.down.sql", "DROP TABLE x;\n");
    WRITE(dir, "4_a.up.sql", "SELECT 1;\n");
    WRITE(dir, "04_b.up.sql", "SELECT 1;\n");
    WRITE(dir, "nul.sql", "SELECT 1;\0 trailing\n");
    WRITE(dir, "20200101_dbmate.sql", "SELECT 0;\n-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n");
    assert_int_equal(fl_layout_scan(&l, dir, NULL, &err), 0);
    for (i = 0; i < l.count; i++) {
        for (k = 0; k < l.sources[i].count; k++) {
            const fl_layout_migration_t *m = &l.sources[i].items[k];
            if (m->problem) {
                problems++;
                assert_non_null(m->problem_path);
            } else {
                fine++;
            }
        }
    }
    /* bad options, a down without up, two ups for version 4, a NUL byte,
     * a statement before dbmate's up block */
    assert_int_equal(problems, 5);
    assert_int_equal(fine, 1);
    fl_layout_release(&l);

    assert_int_equal(fl_layout_scan(&l, "/nonexistent/flotilla", NULL, &err),
                     FL_ENOTFOUND);
    assert_non_null(strstr(err.message, "/nonexistent/flotilla"));
    fl_error_clear(&err);
    fl_layout_release(&l);
    fl_test_rmtree(dir);
    free(dir);
}

/*
 * A file of the tree read through a symbolic link that leads out of the
 * scanned directory is a problem of its migration, naming the link (its
 * text, a key or a password file, was read as the migration's SQL and
 * could be packed into a bundle); a link within the tree is read.
 */
static void
test_layout_scan_refuses_links_out_of_the_tree(void **state)
{
    char *dir = fl_test_tmpdir(), *other = fl_test_tmpdir();
    char *secret = fl_asprintf("%s/secret.txt", other);
    char *out = fl_asprintf("%s/2_b.up.sql", dir);
    char *in = fl_asprintf("%s/3_c.up.sql", dir);
    fl_layout_t l;
    fl_error_t err = FL_ERROR_INIT;
    size_t problems = 0, fine = 0;

    (void)state;
    fl_test_write_file(secret, "SELECT 'a password';\n");
    WRITE(dir, "1_a.up.sql", "SELECT 1;\n");
    WRITE(dir, "1_a.down.sql", "SELECT 2;\n");
    WRITE(dir, "shared.txt", "SELECT 3;\n");
    assert_int_equal(symlink(secret, out), 0);
    assert_int_equal(symlink("shared.txt", in), 0);
    assert_int_equal(fl_layout_scan(&l, dir, NULL, &err), 0);
    for (size_t i = 0; i < l.count; i++)
        for (size_t k = 0; k < l.sources[i].count; k++) {
            const fl_layout_migration_t *m = &l.sources[i].items[k];
            if (m->problem == NULL) {
                fine++;
                continue;
            }
            problems++;
            if (strstr(m->problem, "symbolic link") == NULL ||
                strstr(m->problem, "outside") == NULL ||
                strstr(m->problem_path, "2_b.up.sql") == NULL)
                fail_msg("the problem: %s (%s)", m->problem, m->problem_path);
        }
    assert_int_equal(problems, 1);
    assert_int_equal(fine, 2);
    fl_layout_release(&l);
    fl_test_rmtree(dir);
    fl_test_rmtree(other);
    free(in);
    free(out);
    free(secret);
    free(other);
    free(dir);
}

/*
 * A migration file that is a link to nothing, or a FIFO, is a problem of
 * the tree named with its path, never left out without a word (the tool
 * lists it and then fails to open it; leaving it out made baseline
 * record an incomplete history and apply later run it out of order).
 * Before, both were skipped as if they were not there (found by an
 * audit).
 */
static void
test_layout_scan_names_a_dangling_link_and_a_fifo(void **state)
{
    char *dir = fl_test_tmpdir();
    char *dangling = fl_asprintf("%s/2_b.up.sql", dir);
    char *fifo = fl_asprintf("%s/3_c.up.sql", dir);
    fl_layout_t l;
    fl_error_t err = FL_ERROR_INIT;
    size_t problems = 0, fine = 0;

    (void)state;
    WRITE(dir, "1_a.up.sql", "SELECT 1;\n");
    WRITE(dir, "4_d.up.sql", "SELECT 4;\n");
    assert_int_equal(symlink("nowhere/2_b.sql", dangling), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10);
    assert_int_equal(fl_layout_scan(&l, dir, NULL, &err), 0);
    alarm(0);
    for (size_t i = 0; i < l.count; i++)
        for (size_t k = 0; k < l.sources[i].count; k++) {
            const fl_layout_migration_t *m = &l.sources[i].items[k];
            if (m->problem == NULL) {
                fine++;
                continue;
            }
            problems++;
            if (strstr(m->problem_path, "2_b.up.sql") == NULL &&
                strstr(m->problem_path, "3_c.up.sql") == NULL)
                fail_msg("the problem: %s (%s)", m->problem, m->problem_path);
        }
    assert_int_equal(problems, 2);
    assert_int_equal(fine, 2);
    fl_layout_release(&l);
    fl_test_rmtree(dir);
    free(dangling);
    free(fifo);
    free(dir);
}

/*
 * A transaction setting in a comment line is not set: Flyway's .conf
 * (Java properties: '#' and '!' comments) and diesel's metadata.toml
 * ('#') each read only their live keys, the last one winning, and a key
 * is read whole (not inside a longer one).  Before, a commented
 * "# executeInTransaction=false" ran the migration statement by
 * statement where Flyway runs it in one transaction (found by an audit).
 */
static void
test_layout_scan_transaction_settings_in_comments_are_not_set(void **state)
{
    char *dir = fl_test_tmpdir();
    char *sub = fl_asprintf("%s/2019-01-01-000001_a", dir);
    fl_layout_t l;
    fl_error_t err = FL_ERROR_INIT;
    const fl_layout_source_t *s;

    (void)state;
    WRITE(dir, "V1__a.sql", "SELECT 1;\n");
    WRITE(dir, "V1__a.sql.conf", "# executeInTransaction=false\n");
    WRITE(dir, "V2__b.sql", "SELECT 2;\n");
    WRITE(dir, "V2__b.sql.conf", "  ! executeInTransaction=false\n"
                                 "notexecuteInTransaction=false\n");
    WRITE(dir, "V3__c.sql", "SELECT 3;\n");
    WRITE(dir, "V3__c.sql.conf", "executeInTransaction=true\n"
                                 "  executeInTransaction = false\n");
    assert_int_equal(fl_layout_scan(&l, dir, NULL, &err), 0);
    s = only_source(&l, FL_LAYOUT_FLYWAY);
    assert_int_equal(s->count, 3);
    expect(&s->items[0], "1", "a", FL_LAYOUT_TX_AUTO, 0);
    expect(&s->items[1], "2", "b", FL_LAYOUT_TX_AUTO, 0);
    expect(&s->items[2], "3", "c", FL_LAYOUT_TX_NONE, 0);
    fl_layout_release(&l);
    fl_test_rmtree(dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    WRITE(sub, "up.sql", "SELECT 1;\n");
    WRITE(sub, "metadata.toml", "# run_in_transaction = false\n");
    assert_int_equal(fl_layout_scan(&l, dir, NULL, &err), 0);
    s = only_source(&l, FL_LAYOUT_DIESEL);
    assert_int_equal(s->count, 1);
    expect(&s->items[0], "20190101000001", "a", FL_LAYOUT_TX_WRAPPED, 0);
    fl_layout_release(&l);
    fl_test_rmtree(dir);
    free(sub);
    free(dir);
}

/*
 * In a dbmate directory, every .sql file whose name starts with digits
 * is a migration to dbmate: one without "-- migrate:up" at the start of
 * a line (none at all, or a byte-order mark before it) is refused with
 * its path, as dbmate refuses it, never left out while the ones after
 * it run.  Before, both were read as plain SQL files that dbmate does
 * not read (found by an audit).
 */
static void
test_layout_scan_dbmate_file_without_up_block_is_refused(void **state)
{
    char *dir = fl_test_tmpdir();
    fl_layout_t l;
    fl_error_t err = FL_ERROR_INIT;
    const fl_layout_source_t *s;
    size_t problems = 0;

    (void)state;
    WRITE(dir, "20200101000000_a.sql", "-- migrate:up\nCREATE TABLE a (id int);\n"
                                       "-- migrate:down\nDROP TABLE a;\n");
    WRITE(dir, "20200102000000_b.sql", "CREATE TABLE b (id int);\n");
    WRITE(dir, "20200103000000_c.sql", "-- migrate:up\nCREATE TABLE c (id int);\n"
                                       "-- migrate:down\nDROP TABLE c;\n");
    WRITE(dir, "20200104000000_d.sql", "\xef\xbb\xbf-- migrate:up\nSELECT 4;\n"
                                       "-- migrate:down\nSELECT 5;\n");
    assert_int_equal(fl_layout_scan(&l, dir, NULL, &err), 0);
    s = only_source(&l, FL_LAYOUT_DBMATE);
    assert_int_equal(s->count, 4);
    for (size_t k = 0; k < s->count; k++) {
        const fl_layout_migration_t *m = &s->items[k];
        if (m->problem == NULL)
            continue;
        problems++;
        if ((strstr(m->problem_path, "_b.sql") == NULL &&
             strstr(m->problem_path, "_d.sql") == NULL) ||
            strstr(m->problem, "migrate:up") == NULL)
            fail_msg("the problem: %s (%s)", m->problem, m->problem_path);
    }
    assert_int_equal(problems, 2);
    fl_layout_release(&l);
    fl_test_rmtree(dir);
    free(dir);
}

/*
 * Two Flyway undo files for one version are refused, naming both, as
 * Flyway refuses them; before, the later by name silently became the
 * down (found by an audit).
 */
static void
test_layout_scan_two_flyway_undo_files_are_refused(void **state)
{
    char *dir = fl_test_tmpdir();
    fl_layout_t l;
    fl_error_t err = FL_ERROR_INIT;
    const fl_layout_source_t *s;

    (void)state;
    WRITE(dir, "V1__init.sql", "CREATE TABLE a (id int);\n");
    WRITE(dir, "U1__drop_a.sql", "DROP TABLE a;\n");
    WRITE(dir, "U1__noop.sql", "SELECT 1;\n");
    assert_int_equal(fl_layout_scan(&l, dir, NULL, &err), 0);
    s = only_source(&l, FL_LAYOUT_FLYWAY);
    assert_int_equal(s->count, 1);
    assert_non_null(s->items[0].problem);
    if (strstr(s->items[0].problem, "U1__drop_a.sql") == NULL ||
        strstr(s->items[0].problem, "U1__noop.sql") == NULL ||
        strstr(s->items[0].problem, "undo") == NULL)
        fail_msg("the problem: %s", s->items[0].problem);
    fl_layout_release(&l);
    fl_test_rmtree(dir);
    free(dir);
}

static void
test_layout_version_cmp_orders_as_each_tool(void **state)
{
    (void)state;
    assert_true(fl_layout_version_cmp(FL_LAYOUT_GOLANG_MIGRATE, "9", "10") < 0);
    assert_true(fl_layout_version_cmp(FL_LAYOUT_SQLX, "0010", "10") == 0);
    assert_true(fl_layout_version_cmp(FL_LAYOUT_FLYWAY, "1.9", "1.10") < 0);
    assert_true(fl_layout_version_cmp(FL_LAYOUT_FLYWAY, "1", "1.0") == 0);
    assert_true(fl_layout_version_cmp(FL_LAYOUT_FLYWAY, "2", "1.10") > 0);
    /* diesel and pop compare strings, as their sorts do */
    assert_true(fl_layout_version_cmp(FL_LAYOUT_DIESEL, "9", "10") > 0);
    assert_true(fl_layout_version_cmp(FL_LAYOUT_POP, "20210410175418000000",
                                      "20210410175418000001") < 0);
    assert_true(fl_layout_version_cmp(FL_LAYOUT_FLYWAY, NULL, "1") > 0);
}

static void
test_layout_tool_names_round_trip(void **state)
{
    fl_layout_tool t;
    fl_error_t err = FL_ERROR_INIT;
    int i;

    (void)state;
    for (i = FL_LAYOUT_AUTO; i <= FL_LAYOUT_FLYWAY; i++) {
        assert_int_equal(fl_layout_tool_from_name(
                             &t, fl_layout_tool_name((fl_layout_tool)i), &err), 0);
        assert_int_equal(t, i);
    }
    assert_int_equal(fl_layout_tool_from_name(&t, "liquibase", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "\"liquibase\""));
    fl_error_clear(&err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_scan_flotilla_reads_sections_and_options),
        cmocka_unit_test(test_layout_scan_flotilla_repeatable_beside_numbered_files),
        cmocka_unit_test(test_layout_scan_diesel_folders_versions_and_metadata),
        cmocka_unit_test(test_layout_scan_golang_migrate_pairs_up_and_down),
        cmocka_unit_test(test_layout_scan_pop_dialects_autocommit_and_fizz),
        cmocka_unit_test(test_layout_scan_sqlx_in_a_rust_project),
        cmocka_unit_test(test_layout_scan_dbmate_sections_and_transaction_option),
        cmocka_unit_test(test_layout_scan_flyway_versions_undo_repeatable_and_conf),
        cmocka_unit_test(test_layout_scan_plain_sql_and_whole_tree),
        cmocka_unit_test(test_layout_scan_prefer_decides_shared_names),
        cmocka_unit_test(test_layout_scan_single_file_keeps_its_part),
        cmocka_unit_test(test_layout_scan_problems_do_not_hide_the_rest),
        cmocka_unit_test(test_layout_scan_refuses_links_out_of_the_tree),
        cmocka_unit_test(test_layout_scan_names_a_dangling_link_and_a_fifo),
        cmocka_unit_test(test_layout_scan_two_flyway_undo_files_are_refused),
        cmocka_unit_test(
            test_layout_scan_dbmate_file_without_up_block_is_refused),
        cmocka_unit_test(
            test_layout_scan_transaction_settings_in_comments_are_not_set),
        cmocka_unit_test(test_layout_version_cmp_orders_as_each_tool),
        cmocka_unit_test(test_layout_tool_names_round_trip),
    };
    return cmocka_run_group_tests_name("layout", tests, NULL, NULL);
}
