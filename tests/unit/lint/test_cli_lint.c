/*
 * Tests of `flotilla lint` through the built executable: the three output
 * formats, exit codes, migrations directories and the config file.
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
    assert_non_null(strstr(r.out, "  | CREATE INDEX i ON users (email)"));
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
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(loc, "artifactLocation"), "uri")),
                        f->sql);
    region = json_object_get(loc, "region");
    assert_int_equal(json_integer_value(json_object_get(region, "startLine")), 3);
    assert_int_equal(json_integer_value(json_object_get(region, "startColumn")), 1);
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
    fl_test_write_file(cfg, "pg_version: 15\nwarnings: [require-concurrent-index-creation]\n");
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
                           "--out", bundle, NULL};
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

/* A directory without migrations: nothing to say, and no crash. */
static void
test_cli_lint_empty_directory(void **state)
{
    fixture_t *f = *state;
    fl_test_proc_t r;
    char dir[4200];
    const char *argv[] = {"flotilla", "lint", dir, NULL};

    snprintf(dir, sizeof(dir), "%s/empty", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "0 error(s), 0 warning(s)"));
    assert_null(strstr(r.err, "Sanitizer"));
    fl_test_proc_release(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_lint_human, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_clean_file_exits_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_sarif_has_required_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_rule_options_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_migrations_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_bundle_lints_each_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_lint_empty_directory, setup, teardown),
    };
    return cmocka_run_group_tests_name("cli_lint", tests, NULL, NULL);
}
