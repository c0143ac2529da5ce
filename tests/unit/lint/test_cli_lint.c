/*
 * Tests of `flotilla lint` through the built executable: the three output
 * formats (SARIF validated against the official schemas), exit codes,
 * the fixture tree of every migration tool, standard input, files that
 * cannot be linted among others that can, and the config file.
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

#include "testsupport.h"

static const char *const s_sql =
    "SET lock_timeout = '2s';\n"
    "SET statement_timeout = '1min';\n"
    "CREATE INDEX i ON users (email);\n";

typedef struct {
    char *dir;
    char *sql;   /* dir/bad.sql */
    char *good;  /* dir/good.sql */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char path[4096];

    f->dir = fl_test_tmpdir();
    snprintf(path, sizeof(path), "%s/bad.sql", f->dir);
    f->sql = strdup(path);
    fl_test_write_file(f->sql, s_sql);
    snprintf(path, sizeof(path), "%s/good.sql", f->dir);
    f->good = strdup(path);
    fl_test_write_file(f->good, "CREATE TABLE IF NOT EXISTS t (id bigint);\n");
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;
    fl_test_rmtree(f->dir);
    free(f->dir);
    free(f->sql);
    free(f->good);
    free(f);
    return 0;
}

static void
test_cli_lint_human(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "lint", f->sql, NULL};
    char want[4200];

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 1);
    snprintf(want, sizeof(want),
             "%s:3:1: error require-concurrent-index-creation: ", f->sql);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, "  help: use CREATE INDEX CONCURRENTLY"));
    assert_non_null(strstr(r.out, "    3 | CREATE INDEX i ON users (email);\n"
                                  "      | ^\n"));
    fl_test_proc_release(&r);
}

static void
test_cli_lint_clean_file_exits_zero(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "lint", f->good, NULL};

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "0 error(s)"));
    fl_test_proc_release(&r);
}

static void
test_cli_lint_json(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "lint", "--format", "json", f->sql, NULL};
    json_error_t jerr;
    json_t *o, *first;

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 1);
    o = json_loads(r.out, 0, &jerr);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "errors")), 1);
    first = json_array_get(json_object_get(o, "findings"), 1);
    assert_string_equal(json_string_value(json_object_get(first, "rule")),
                        "require-concurrent-index-creation");
    assert_int_equal(json_integer_value(json_object_get(first, "line")), 3);
    assert_int_equal(json_integer_value(json_object_get(first, "column")), 1);
    assert_string_equal(json_string_value(json_object_get(first, "severity")), "error");
    json_decref(o);
    fl_test_proc_release(&r);
}

/*
 * --json is --format json, as on every other command that prints JSON
 * (before, lint alone refused it as an invalid option); with another
 * --format it is a usage error.
 */
static void
test_cli_lint_json_flag_is_format_json(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t a, b;
    const char *fmt[] = {"flotilla", "lint", "--format", "json", f->sql,
                         NULL};
    const char *flag[] = {"flotilla", "lint", "--json", f->sql, NULL};
    const char *both[] = {"flotilla", "lint", "--json", "--format", "sarif",
                          f->sql, NULL};

    fl_test_run(&a, "flotilla", fmt, NULL, 60);
    fl_test_run(&b, "flotilla", flag, NULL, 60);
    if (b.status != a.status || strcmp(a.out, b.out) != 0)
        fail_msg("lint --json: exit %d\n%s%s\nagainst --format json: exit "
                 "%d\n%s", b.status, b.out, b.err, a.status, a.out);
    assert_int_equal(a.status, 1);
    fl_test_proc_release(&a);
    fl_test_proc_release(&b);
    fl_test_run(&a, "flotilla", both, NULL, 60);
    assert_int_equal(a.status, 2);
    assert_non_null(strstr(a.err, "--json is --format json"));
    fl_test_proc_release(&a);
}

static void
test_cli_lint_sarif_has_required_fields(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "lint", "--format", "sarif", f->sql, NULL};
    json_error_t jerr;
    json_t *o, *run, *driver, *res, *loc, *region;

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 1);
    o = json_loads(r.out, 0, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "version")), "2.1.0");
    assert_non_null(strstr(json_string_value(json_object_get(o, "$schema")), "sarif-2.1.0"));
    run = json_array_get(json_object_get(o, "runs"), 0);
    assert_non_null(run);
    driver = json_object_get(json_object_get(run, "tool"), "driver");
    assert_string_equal(json_string_value(json_object_get(driver, "name")), "flotilla");
    assert_true(json_array_size(json_object_get(driver, "rules")) > 40);
    assert_non_null(json_object_get(json_array_get(json_object_get(driver, "rules"), 0), "id"));
    /* Findings at one position are ordered by rule id. */
    res = json_array_get(json_object_get(run, "results"), 1);
    assert_non_null(res);
    assert_string_equal(json_string_value(json_object_get(res, "ruleId")),
                        "require-concurrent-index-creation");
    assert_string_equal(json_string_value(json_object_get(res, "level")), "error");
    assert_non_null(json_string_value(
        json_object_get(json_object_get(res, "message"), "text")));
    loc = json_object_get(json_array_get(json_object_get(res, "locations"), 0),
                          "physicalLocation");
    {
        char want[4300];
        snprintf(want, sizeof(want), "file://%s", f->sql);
        assert_string_equal(json_string_value(json_object_get(
                                json_object_get(loc, "artifactLocation"), "uri")),
                            want);
    }
    region = json_object_get(loc, "region");
    assert_int_equal(json_integer_value(json_object_get(region, "startLine")), 3);
    assert_int_equal(json_integer_value(json_object_get(region, "startColumn")), 1);
    assert_int_equal(json_integer_value(json_object_get(region, "endLine")), 3);
    assert_int_equal(json_integer_value(json_object_get(region, "endColumn")), 32);
    assert_int_equal(strlen(json_string_value(json_object_get(
                         json_object_get(res, "partialFingerprints"), "flotilla/v1"))),
                     16);
    json_decref(o);
    fl_test_proc_release(&r);
}

static void
test_cli_lint_usage_errors(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    const char *nopath[] = {"flotilla", "lint", NULL};
    const char *badfmt[] = {"flotilla", "lint", "--format", "xml", f->sql, NULL};
    const char *badrule[] = {"flotilla", "lint", "--rule", "nope", f->sql, NULL};
    const char *help[] = {"flotilla", "lint", "--help", NULL};

    fl_test_run(&r, "flotilla", nopath, NULL, 60);
    assert_int_equal(r.status, 2);
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", badfmt, NULL, 60);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "\"xml\""));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", badrule, NULL, 60);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown lint rule \"nope\""));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", help, NULL, 60);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "ban-drop-table"));
    fl_test_proc_release(&r);
    /* A path that is not there: what to give instead (before: no hint). */
    {
        const char *missing[] = {"flotilla", "lint", "/nonexistent/m.sql",
                                 NULL};

        fl_test_run(&r, "flotilla", missing, NULL, 60);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "HINT: Name migration files"));
        fl_test_proc_release(&r);
    }
}

static void
test_cli_lint_rule_options_and_config(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    const char *excl[] = {"flotilla", "lint", "--exclude-rule",
                          "require-concurrent-index-creation", f->sql, NULL};
    const char *warn[] = {"flotilla", "lint", "--rule",
                          "require-concurrent-index-creation=warning", f->sql, NULL};
    char cfg[4200];
    const char *withcfg[] = {"flotilla", "lint", "--config", cfg, f->sql, NULL};

    fl_test_run(&r, "flotilla", excl, NULL, 60);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "require-concurrent-index-creation"));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", warn, NULL, 60);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "warning require-concurrent-index-creation"));
    fl_test_proc_release(&r);

    snprintf(cfg, sizeof(cfg), "%s/lint.yaml", f->dir);
    fl_test_write_file(cfg, "pg_version: \"15\"\nwarnings: [require-concurrent-index-creation]\n");
    fl_test_run(&r, "flotilla", withcfg, NULL, 60);
    assert_int_equal(r.status, 0);
    fl_test_proc_release(&r);
}

static void
test_cli_lint_migrations_directory(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char dir[4200], path[4300];
    const char *argv[] = {"flotilla", "lint", "--format", "json", dir, NULL};
    json_error_t jerr;
    json_t *o, *arr;
    size_t i;
    int missing = 0, backup = 0;

    snprintf(dir, sizeof(dir), "%s/migrations", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/0001_users.sql", dir);
    fl_test_write_file(path,
        "-- flotilla:options lock_timeout=2s statement_timeout=1min\n"
        "-- flotilla:up\n"
        "CREATE TABLE users (id bigint);\n");
    snprintf(path, sizeof(path), "%s/0002_drop.sql", dir);
    fl_test_write_file(path,
        "-- flotilla:options lock_timeout=2s statement_timeout=1min "
        "allow=ban-drop-column nothing reads it since 1.4\n"
        "-- flotilla:up\n"
        "ALTER TABLE users DROP COLUMN legacy;\n"
        "-- flotilla:down\n"
        "ALTER TABLE users ADD COLUMN legacy text;\n");
    snprintf(path, sizeof(path), "%s/notes.txt", dir);
    fl_test_write_file(path, "DROP DATABASE x;");

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    o = json_loads(r.out, 0, &jerr);
    assert_non_null(o);
    arr = json_object_get(o, "findings");
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *x = json_array_get(arr, i);
        const char *rule = json_string_value(json_object_get(x, "rule"));
        const char *file = json_string_value(json_object_get(x, "file"));
        assert_string_not_equal(rule, "ban-drop-column");
        assert_string_not_equal(rule, "ban-drop-database");
        if (strcmp(rule, "migration-missing-down") == 0) {
            assert_non_null(strstr(file, "0001_users.sql"));
            missing = 1;
        }
        if (strcmp(rule, "down-needs-backup") == 0) {
            assert_non_null(strstr(file, "0002_drop.sql"));
            assert_int_equal(json_integer_value(json_object_get(x, "line")), 3);
            backup = 1;
        }
    }
    assert_int_equal(missing, 1);
    assert_int_equal(backup, 1);
    assert_int_equal(r.status, 1);
    json_decref(o);
    fl_test_proc_release(&r);
}

static void
test_cli_lint_bundle_lints_each_migration(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char dir[4200], path[4300], key[4300], bundle[4300];
    const char *kg[] = {"flotilla", "keygen", "--out", key, NULL};
    const char *build[] = {"flotilla", "bundle", "build", dir, "--sign", path,
                           "--out", bundle, "--environment", "dev", NULL};
    const char *lint[] = {"flotilla", "lint", bundle, NULL};
    char want[4400];

    snprintf(dir, sizeof(dir), "%s/bm", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/0001_drop.sql", dir);
    fl_test_write_file(path,
        "-- flotilla:options lock_timeout=2s statement_timeout=1min\n"
        "-- flotilla:up\n"
        "ALTER TABLE users DROP COLUMN legacy;\n"
        "-- flotilla:down\n"
        "ALTER TABLE users ADD COLUMN legacy text;\n");
    snprintf(key, sizeof(key), "%s/k", f->dir);
    snprintf(bundle, sizeof(bundle), "%s/release.bundle", f->dir);
    fl_test_run(&r, "flotilla", kg, NULL, 60);
    assert_int_equal(r.status, 0);
    fl_test_proc_release(&r);
    snprintf(path, sizeof(path), "%s/k.key", f->dir);
    fl_test_run(&r, "flotilla", build, NULL, 60);
    assert_int_equal(r.status, 0);
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", lint, NULL, 60);
    assert_int_equal(r.status, 1);
    snprintf(want, sizeof(want), "%s:0001_drop.sql:3:19: error ban-drop-column",
             bundle);
    assert_non_null(strstr(r.out, want));
    fl_test_proc_release(&r);
}

/*
 * A tree with nothing to lint is not a green build: exit 2 and say so,
 * unless --allow-empty.  An unreadable PATH exits 2 as well.
 */
static void
test_cli_lint_nothing_to_lint_exits_two(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char dir[4200], sub[4300];
    const char *argv[] = {"flotilla", "lint", dir, NULL};
    const char *allow[] = {"flotilla", "lint", "--allow-empty", dir, NULL};
    const char *missing[] = {"flotilla", "lint", "/nonexistent/migrations", NULL};

    snprintf(dir, sizeof(dir), "%s/empty", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(sub, sizeof(sub), "%s/README.md", dir);
    fl_test_write_file(sub, "no SQL here\n");
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "no SQL found"));
    assert_null(strstr(r.err, "Sanitizer"));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", allow, NULL, 60);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "0 error(s), 0 warning(s) in 0 file(s)"));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", missing, NULL, 60);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "\"/nonexistent/migrations\""));
    fl_test_proc_release(&r);
}

/* Runs lint --format json on tests/fixtures/layouts/REL (plus extra). */
static json_t *
lint_fixture(const char *rel, const char *extra, int want_status)
{
    char *rp = fl_test_source_path("tests/fixtures/layouts");
    char path[4200];
    const char *argv[] = {"flotilla", "lint", "--format", "json", path,
                          extra, NULL};
    fl_test_proc_t r;
    json_error_t jerr;
    json_t *o;

    snprintf(path, sizeof(path), "%s/%s", rp, rel);
    free(rp);
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    if (r.status != want_status)
        fail_msg("lint %s exited %d, not %d:\n%s%s", rel, r.status,
                 want_status, r.out, r.err);
    o = json_loads(r.out, 0, &jerr);
    if (!o)
        fail_msg("not JSON (%s):\n%s", jerr.text, r.out);
    fl_test_proc_release(&r);
    return o;
}

/* How many findings of rule name a file whose path contains file_part. */
static int
count_in(json_t *o, const char *rule, const char *file_part)
{
    json_t *arr = json_object_get(o, "findings"), *x;
    size_t i;
    int n = 0;

    json_array_foreach(arr, i, x) {
        if (strcmp(json_string_value(json_object_get(x, "rule")), rule) == 0 &&
            strstr(json_string_value(json_object_get(x, "file")), file_part))
            n++;
    }
    return n;
}

static json_int_t
jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/*
 * The fixture tree of each tool: every file linted as its tool runs it.
 * A CREATE INDEX CONCURRENTLY alone in a file its tool sends without a
 * transaction is fine in every one of them, and downs dropping what their
 * up created are not flagged.
 */
static void
test_cli_lint_each_layout_fixture(void **state)
{
    json_t *o;

    (void)state;
    o = lint_fixture("flotilla", NULL, 0);
    assert_int_equal(jint(o, "files"), 2);
    assert_int_equal(count_in(o, "ban-drop-table", "0001_users.sql"), 0);
    assert_int_equal(count_in(o, "migration-missing-down", ""), 0);
    json_decref(o);

    o = lint_fixture("diesel", NULL, 0);
    assert_int_equal(jint(o, "files"), 6);
    assert_int_equal(count_in(o, "ban-concurrent-index-creation-in-transaction", ""), 0);
    assert_int_equal(count_in(o, "ban-drop-table", "create_users/down.sql"), 0);
    assert_int_equal(count_in(o, "prefer-identity", "create_users/up.sql"), 1);
    assert_int_equal(count_in(o, "require-concurrent-index-creation", ""), 0);
    json_decref(o);

    o = lint_fixture("golang-migrate", NULL, 0);
    assert_int_equal(jint(o, "files"), 4);
    assert_int_equal(count_in(o, "ban-concurrent-index-creation-in-transaction", ""), 0);
    assert_int_equal(count_in(o, "prefer-text-field", "1_create_users.up.sql"), 1);
    /* one query string of two statements: atomic, no IF NOT EXISTS needed */
    assert_int_equal(count_in(o, "prefer-robust-stmts", "1_create_users.up.sql"), 0);
    json_decref(o);

    o = lint_fixture("pop", NULL, 0);
    assert_int_equal(jint(o, "files"), 12);
    assert_int_equal(jint(o, "skipped"), 4);
    assert_int_equal(count_in(o, "ban-concurrent-index-creation-in-transaction", ""), 0);
    assert_int_equal(count_in(o, "ban-char-field", ".mysql."), 0);
    json_decref(o);

    o = lint_fixture("sqlx", NULL, 0);
    assert_int_equal(jint(o, "files"), 4);
    assert_int_equal(count_in(o, "ban-concurrent-index-creation-in-transaction", ""), 0);
    assert_int_equal(count_in(o, "prefer-robust-stmts", "last_seen"), 0);
    json_decref(o);

    o = lint_fixture("dbmate", NULL, 0);
    assert_int_equal(jint(o, "files"), 2);
    assert_int_equal(count_in(o, "ban-concurrent-index-creation-in-transaction", ""), 0);
    assert_int_equal(count_in(o, "ban-drop-table", "create_users"), 0);
    json_decref(o);

    o = lint_fixture("flyway", NULL, 0);
    assert_int_equal(jint(o, "files"), 8);
    assert_int_equal(count_in(o, "ban-concurrent-index-creation-in-transaction", ""), 0);
    assert_int_equal(count_in(o, "no-transaction-statement-in-transaction", ""), 0);
    assert_int_equal(count_in(o, "ban-drop-column", "U1_1__add_name.sql"), 0);
    json_decref(o);

    /* plain SQL runs statement by statement unless told otherwise */
    o = lint_fixture("plain", NULL, 0);
    assert_int_equal(count_in(o, "prefer-robust-stmts", "schema.sql"), 2);
    json_decref(o);
    o = lint_fixture("plain", "--assume-in-transaction", 0);
    assert_int_equal(count_in(o, "prefer-robust-stmts", "schema.sql"), 0);
    json_decref(o);

    o = lint_fixture("", NULL, 0);
    assert_int_equal(jint(o, "files"), 2 + 6 + 4 + 12 + 4 + 2 + 8 + 2);
    json_decref(o);
}

/* One bad file among good ones: reported, and the others still linted. */
static void
test_cli_lint_bad_file_does_not_stop_the_others(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char dir[4200], path[4300];
    const char *argv[] = {"flotilla", "lint", dir, NULL};

    snprintf(dir, sizeof(dir), "%s/mixed", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/0001_bad.sql", dir);
    fl_test_write_file(path, "-- flotilla:options frobnicate\n-- flotilla:up\nSELECT 1;\n");
    snprintf(path, sizeof(path), "%s/0002_ok.sql", dir);
    fl_test_write_file(path, "-- flotilla:up\nDROP TABLE users;\n-- flotilla:down\nSELECT 1;\n");
    snprintf(path, sizeof(path), "%s/3_x.up.sql", dir);
    fl_test_write_file(path, "CREATE TABEL t (a int);\nDROP TABLE t;\n");
    /* Its finding on the line the error names (before: 1:1). */
    snprintf(path, sizeof(path), "%s/0004_bad.sql", dir);
    fl_test_write_file(path, "-- flotilla:up\nSELECT 1;\n-- flotilla:upp\n"
                             "SELECT 2;\n");
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "0001_bad.sql:1:1: error invalid-migration: "));
    assert_non_null(strstr(r.out, "frobnicate"));
    assert_non_null(strstr(r.out, "0002_ok.sql:2:1: error ban-drop-table"));
    assert_non_null(strstr(r.out, "3_x.up.sql:1:8: error syntax-error"));
    assert_non_null(strstr(r.out, "3_x.up.sql:2:1: error ban-drop-table"));
    assert_non_null(strstr(r.out, "0004_bad.sql:3:1: error invalid-migration"));
    fl_test_proc_release(&r);
}

static void
test_cli_lint_reads_standard_input(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "lint", "-", NULL};
    const char *named[] = {"flotilla", "lint", "--stdin-name", "db/up.sql",
                           "--format", "json", "-", NULL};

    (void)state;
    fl_test_run(&r, "flotilla", argv, "SELECT 1;\nDROP TABLE users;\n", 60);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "<stdin>:2:1: error ban-drop-table"));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", named, "ALTER TABLE u ADD COLUMN c int;\n", 60);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"file\":\"db/up.sql\""));
    fl_test_proc_release(&r);
}

/* Exit codes: warnings pass unless --fail-on-warning; usage errors are 2. */
static void
test_cli_lint_exit_codes(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char path[4200];
    const char *warn[] = {"flotilla", "lint", path, NULL};
    const char *strict[] = {"flotilla", "lint", "--fail-on-warning", path, NULL};
    const char *pgv[] = {"flotilla", "lint", "--pg-version", "42", path, NULL};
    const char *pg16[] = {"flotilla", "lint", "--pg-version", "16.2", path, NULL};
    const char *layout[] = {"flotilla", "lint", "--layout", "liquibase", path, NULL};

    snprintf(path, sizeof(path), "%s/warn.sql", f->dir);
    fl_test_write_file(path, "CREATE TABLE IF NOT EXISTS t (a integer);\n");
    fl_test_run(&r, "flotilla", warn, NULL, 60);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "warning prefer-bigint-over-int"));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", strict, NULL, 60);
    assert_int_equal(r.status, 1);
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", pgv, NULL, 60);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "\"42\""));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", pg16, NULL, 60);
    assert_int_equal(r.status, 0);
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", layout, NULL, 60);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "\"liquibase\""));
    fl_test_proc_release(&r);
}

/* Findings in a multi-line ALTER TABLE: the sub-command's line and caret. */
static void
test_cli_lint_caret_on_sub_command(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char path[4200], want[4400];
    const char *argv[] = {"flotilla", "lint", path, NULL};

    snprintf(path, sizeof(path), "%s/alter.sql", f->dir);
    fl_test_write_file(path,
        "SET lock_timeout = '1s';\n"
        "ALTER TABLE users\n"
        "    ADD COLUMN IF NOT EXISTS note text,\n"
        "    ALTER COLUMN email SET NOT NULL;\n");
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 1);
    snprintf(want, sizeof(want),
             "%s:4:5: error adding-not-nullable-field: SET NOT NULL on "
             "\"users\".\"email\"", path);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, "    4 |     ALTER COLUMN email SET NOT NULL;\n"
                                  "      |     ^\n"));
    fl_test_proc_release(&r);
}

/*
 * SARIF of the whole fixture tree, and of files whose names need
 * percent-encoding, valid under the official SARIF 2.1.0 schemas.
 */
static void
test_cli_lint_sarif_valid_against_schema(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r, v;
    char dir[4200], path[4400];
    char *layouts = fl_test_source_path("tests/fixtures/layouts");
    char *script = fl_test_source_path("tests/support/validate_sarif.py");
    char *s1 = fl_test_source_path("tests/fixtures/sarif/sarif-schema-2.1.0.json");
    char *s2 = fl_test_source_path("tests/fixtures/sarif/sarif-2.1.0-rtm.5.json");
    const char *argv[] = {"flotilla", "lint", "--format", "sarif", layouts, dir, NULL};
    const char *py[] = {"python3", script, s1, s2, NULL};
    static const char *const names[] = {
        "with space.sql", "colon:name.sql", "hash#pct%.sql", "caf\xc3\xa9.sql",
    };
    size_t i;

    snprintf(dir, sizeof(dir), "%s/odd names", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        fl_test_write_file(path, "ALTER TABLE u\n  ADD COLUMN c int,\n  DROP COLUMN d;\n");
    }
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "odd%20names/colon%3Aname.sql"));
    assert_non_null(strstr(r.out, "hash%23pct%25.sql"));
    assert_non_null(strstr(r.out, "caf%C3%A9.sql"));
    fl_test_run(&v, "/usr/bin/python3", py, r.out, 120);
    if (v.status != 0)
        fail_msg("SARIF invalid (%d):\n%s%s", v.status, v.out, v.err);
    assert_non_null(strstr(v.out, "0 schema error(s)"));
    fl_test_proc_release(&v);
    fl_test_proc_release(&r);
    free(layouts);
    free(script);
    free(s1);
    free(s2);
}

/*
 * What a file holds reaches no terminal raw and breaks no JSON: control
 * characters are escaped in human output, bytes that are not UTF-8 are
 * written as \xHH in JSON.
 */
static void
test_cli_lint_hostile_text_is_escaped(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char path[4200];
    const char *human[] = {"flotilla", "lint", path, NULL};
    const char *json[] = {"flotilla", "lint", "--format", "json", path, NULL};
    json_error_t jerr;
    json_t *o;

    snprintf(path, sizeof(path), "%s/odd.sql", f->dir);
    fl_test_write_file(path, "DROP TABLE t; -- caf\xe9 \x1b[2J\n");
    fl_test_run(&r, "flotilla", human, NULL, 60);
    assert_int_equal(r.status, 1);
    assert_null(strchr(r.out, '\x1b'));
    assert_non_null(strstr(r.out, "\\x1b[2J"));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", json, NULL, 60);
    assert_int_equal(r.status, 1);
    o = json_loads(r.out, 0, &jerr);
    if (!o)
        fail_msg("not JSON (%s):\n%s", jerr.text, r.out);
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(json_object_get(o, "findings"), 0),
                               "excerpt")),
                           "caf\\xe9"));
    json_decref(o);
    fl_test_proc_release(&r);
}

static void
test_cli_lint_config_keys(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char cfg[4200], path[4200];
    const char *argv[] = {"flotilla", "lint", "--config", cfg, path, NULL};

    snprintf(path, sizeof(path), "%s/plain.sql", f->dir);
    fl_test_write_file(path, "CREATE TABLE t (a bigint);\nCREATE TABLE u (a bigint);\n");
    snprintf(cfg, sizeof(cfg), "%s/lint.yaml", f->dir);
    fl_test_write_file(cfg, "pg_version: \"16\"\nassume_in_transaction: true\n"
                            "fail_on_warning: true\n");
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "prefer-robust-stmts"));
    fl_test_proc_release(&r);
    fl_test_write_file(cfg, "fail_on_warning: true\n");
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "prefer-robust-stmts"));
    fl_test_proc_release(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_lint_human, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_clean_file_exits_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_json_flag_is_format_json,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_sarif_has_required_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_rule_options_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_migrations_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_bundle_lints_each_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_nothing_to_lint_exits_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_each_layout_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_bad_file_does_not_stop_the_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_reads_standard_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_caret_on_sub_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_sarif_valid_against_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_config_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_hostile_text_is_escaped, setup, teardown),
    };
    return cmocka_run_group_tests_name("cli_lint", tests, NULL, NULL);
}
