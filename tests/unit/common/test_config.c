/* Unit tests for common/config: typed loading, line numbers, unknown keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/config.h"
#include "testsupport.h"

typedef struct {
    char *name;
    char *dsn;
} target_conf;

typedef struct {
    char *host;
    int64_t port;
} listen_conf;

typedef struct {
    char *name;
    int64_t workers;
    int verbose;
    int64_t lock_timeout_ms;
    int64_t max_message;
    listen_conf listen;
    fl_conf_strlist_t trust;
    fl_conf_list_t targets;
} sample_conf;

static const fl_conf_option s_listen[] = {
    {"host", FL_CONF_STRING, offsetof(listen_conf, host), "127.0.0.1", 0, 0, 0, 0, "address to bind", NULL, 0},
    {"port", FL_CONF_INT, offsetof(listen_conf, port), "7400", 1, 65535, 0, 0, "port to bind", NULL, 0},
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

static const fl_conf_option s_target[] = {
    {"name", FL_CONF_STRING, offsetof(target_conf, name), NULL, 0, 0, 0, 1, "target name", NULL, 0},
    {"dsn", FL_CONF_STRING, offsetof(target_conf, dsn), NULL, 0, 0, 0, 1, "connection string", NULL, 0},
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

static const fl_conf_option s_table[] = {
    {"name", FL_CONF_STRING, offsetof(sample_conf, name), NULL, 0, 0, 0, 1, "agent name", NULL, 0},
    {"workers", FL_CONF_INT, offsetof(sample_conf, workers), "4", 1, 64, 1, 0, "parallel targets", NULL, 0},
    {"verbose", FL_CONF_BOOL, offsetof(sample_conf, verbose), "false", 0, 0, 1, 0, "debug logging", NULL, 0},
    {"lock_timeout", FL_CONF_DURATION, offsetof(sample_conf, lock_timeout_ms), "2s", 1, 3600000, 0, 0, "lock timeout", NULL, 0},
    {"max_message", FL_CONF_SIZE, offsetof(sample_conf, max_message), "16MiB", 1024, 1 << 30, 0, 0, "largest message", NULL, 0},
    {"listen", FL_CONF_SECTION, offsetof(sample_conf, listen), NULL, 0, 0, 0, 0, "where to listen", s_listen, 0},
    {"trust", FL_CONF_STRLIST, offsetof(sample_conf, trust), NULL, 0, 0, 0, 0, "trusted keys", NULL, 0},
    {"targets", FL_CONF_LIST, offsetof(sample_conf, targets), NULL, 0, 0, 0, 0, "databases", s_target, sizeof(target_conf)},
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

static int
s_load(sample_conf *c, const char *yaml, fl_error_t *err)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(fl_conf_defaults(s_table, c, NULL), 0);
    return fl_conf_load_string(s_table, c, yaml, strlen(yaml), "agent.yaml", err);
}

static void
test_config_load_typed_values_and_defaults(void **state)
{
    sample_conf c;
    fl_error_t err = FL_ERROR_INIT;
    const char *yaml =
        "name: agent-1\n"
        "verbose: yes\n"
        "lock_timeout: 500ms\n"
        "listen:\n"
        "  port: 9000\n"
        "trust: [a.pub, b.pub]\n"
        "targets:\n"
        "  - name: t1\n"
        "    dsn: dbname=t1\n"
        "  - name: t2\n"
        "    dsn: dbname=t2\n";

    (void)state;
    assert_int_equal(s_load(&c, yaml, &err), 0);
    assert_string_equal(c.name, "agent-1");
    assert_int_equal(c.workers, 4);
    assert_true(c.verbose);
    assert_int_equal(c.lock_timeout_ms, 500);
    assert_int_equal(c.max_message, 16 * 1024 * 1024);
    assert_string_equal(c.listen.host, "127.0.0.1");
    assert_int_equal(c.listen.port, 9000);
    assert_int_equal(c.trust.count, 2);
    assert_string_equal(c.trust.items[1], "b.pub");
    assert_int_equal(c.targets.count, 2);
    assert_string_equal(((target_conf *)c.targets.items)[1].dsn, "dbname=t2");
    /* The environment and flags come after the file. */
    assert_int_equal(fl_conf_set(s_table, &c, "listen.port", "9100", "--port", &err), 0);
    assert_int_equal(c.listen.port, 9100);
    fl_conf_release(s_table, &c);
    assert_null(c.name);
}

static void
test_config_unknown_key_names_file_line_key(void **state)
{
    sample_conf c;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(s_load(&c, "name: a\n\nlisten:\n  prot: 9000\n", &err), FL_EINVAL);
    assert_string_equal(err.message, "agent.yaml:4: unknown key \"listen.prot\"");
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
}

/* A key given twice is refused where it is repeated (before, the last
 * won in silence: a second "trust:" replaced the first). */
static void
test_config_duplicate_key_is_refused(void **state)
{
    sample_conf c;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(s_load(&c, "name: a\nlisten:\n  port: 1\n"
                                "  port: 2\n", &err), FL_EINVAL);
    assert_string_equal(err.message, "agent.yaml:4: key \"listen.port\" "
                                     "given twice (first on line 3)");
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
    assert_int_equal(s_load(&c, "name: a\nname: b\n", &err), FL_EINVAL);
    assert_string_equal(err.message, "agent.yaml:2: key \"name\" given "
                                     "twice (first on line 1)");
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
}

static void
test_config_bad_value_names_line_key_and_reason(void **state)
{
    sample_conf c;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(s_load(&c, "name: a\nlock_timeout: 5\n", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "agent.yaml:2: key \"lock_timeout\": "
                                        "invalid duration \"5\""));
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
    assert_int_equal(s_load(&c, "name: a\nworkers: 100\n", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "agent.yaml:2: key \"workers\""));
    assert_non_null(strstr(err.detail, "1 to 64"));
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
    assert_int_equal(s_load(&c, "name: a\nlisten: 5\n", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "must be a mapping"));
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
    /* A section left empty (its keys commented out, as --sample-config
     * prints them) says so and what it takes (before: "must be a
     * mapping", which it is, to its writer: found by an audit). */
    assert_int_equal(s_load(&c, "name: a\nlisten:\n", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "agent.yaml:2: key \"listen\" is "
                                        "empty"));
    assert_non_null(strstr(err.message, "host, port"));
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
}

static void
test_config_syntax_error_has_line_and_column(void **state)
{
    sample_conf c;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(s_load(&c, "name: a\nlisten:\n  port: [1, 2\n", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "agent.yaml:4:"));
    assert_non_null(strstr(err.message, "invalid YAML"));
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
}

/*
 * An alias (*name) makes one node appear wherever it is used: a list of
 * 20,000 aliases of a target with 20,000 labels, a 470 KB file, made
 * flotilla-agent --check copy 400 million labels (more than 1.6 GB and
 * 30 s before it was stopped).  No flotilla configuration needs them:
 * aliases are refused, with the line of the first one; the file is
 * refused whole, its keys before it set nothing.
 */
static void
test_config_aliases_are_refused(void **state)
{
    sample_conf c;
    fl_error_t err = FL_ERROR_INIT;
    fl_buf_t b = FL_BUF_INIT(0);

    (void)state;
    assert_int_equal(s_load(&c, "name: a\ntargets:\n  - &t\n    name: t\n"
                            "    dsn: x\n  - *t\n", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "agent.yaml:6:"));
    assert_non_null(strstr(err.message, "alias"));
    assert_null(c.name);
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
    /* Many: refused at the first, not expanded. */
    fl_buf_addf(&b, "name: a\ntrust: &k [");
    for (int i = 0; i < 20000; i++)
        fl_buf_addf(&b, "%sk%d.pub", i ? ", " : "", i);
    fl_buf_addf(&b, "]\ntargets:\n  - &t {name: t, dsn: x}\n");
    for (int i = 0; i < 20000; i++)
        fl_buf_addf(&b, "  - *t\n");
    assert_int_equal(s_load(&c, fl_buf_str(&b), &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "alias"));
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
    fl_buf_release(&b);
}

static void
test_config_required_key_missing(void **state)
{
    sample_conf c;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(s_load(&c, "workers: 2\ntargets:\n  - name: t1\n", &err), FL_EINVAL);
    /* The first missing key found is the target's dsn, at its item's line. */
    assert_non_null(strstr(err.message, "missing required key \"targets[0].dsn\""));
    assert_non_null(strstr(err.message, "agent.yaml:3:"));
    fl_error_clear(&err);
    fl_conf_release(s_table, &c);
}

static void
test_config_file_missing_and_help(void **state)
{
    sample_conf c;
    fl_error_t err = FL_ERROR_INIT;
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/c.yaml", dir);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = NULL;

    (void)state;
    memset(&c, 0, sizeof(c));
    assert_int_equal(fl_conf_load_file(s_table, &c, path, &err), FL_ENOTFOUND);
    assert_non_null(strstr(err.message, path));
    fl_error_clear(&err);
    fl_test_write_file(path, "name: from-file\n");
    assert_int_equal(fl_conf_load_file(s_table, &c, path, &err), 0);
    assert_string_equal(c.name, "from-file");
    fl_conf_release(s_table, &c);
    f = open_memstream(&out, &outlen);
    fl_conf_print_help(s_table, f);
    fl_conf_print_sample(s_table, f);
    fclose(f);
    assert_non_null(strstr(out, "listen.port"));
    assert_non_null(strstr(out, "lock_timeout: 2s"));
    /* A list's item keys, in the help and as a commented sample item. */
    assert_non_null(strstr(out, "targets[].name"));
    assert_non_null(strstr(out, "targets[].dsn"));
    assert_non_null(strstr(out, "targets: []\n# - name:   # target name "
                                "(string, required)\n#   dsn:"));
    free(out);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

/*
 * A daemon's command line: file, then environment, then --set, into a
 * struct that held garbage before (a daemon's main declares it on the
 * stack): nothing of the garbage is freed or kept.
 */
static void
test_config_daemon_args_file_env_set_over_garbage(void **state)
{
    sample_conf c;
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/d.yaml", dir);
    char *argv[] = {"d", "--config", path, "--set", "listen.port=7500",
                    "--set", "verbose=true", NULL};
    char *bad[] = {"d", "--config", path, "--set", "nope=1", NULL};
    char *none[] = {"d", NULL};

    (void)state;
    fl_test_write_file(path, "name: filed\nworkers: 2\nlisten:\n  host: h\n");
    setenv("FLOTILLA_SAMPLE_WORKERS", "9", 1);
    setenv("FLOTILLA_SAMPLE_LISTEN_HOST", "from-env", 1);
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(fl_conf_daemon_args(s_table, &c, sizeof(c), "d", "",
                                         "FLOTILLA_SAMPLE_", NULL, 7, argv), 0);
    assert_string_equal(c.name, "filed");
    assert_int_equal(c.workers, 9);            /* the environment wins */
    assert_string_equal(c.listen.host, "from-env");
    assert_int_equal(c.listen.port, 7500);     /* --set wins */
    assert_true(c.verbose);
    assert_int_equal(c.lock_timeout_ms, 2000); /* a default */
    fl_conf_release(s_table, &c);
    /*
     * A list is set in the file only (docs/fleet.md): in the environment
     * it is refused; it was left unread without a word.
     */
    setenv("FLOTILLA_SAMPLE_TRUST", "from-env", 1);
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(fl_conf_daemon_args(s_table, &c, sizeof(c), "d", "",
                                         "FLOTILLA_SAMPLE_", NULL, 7, argv), 2);
    fl_conf_release(s_table, &c);
    unsetenv("FLOTILLA_SAMPLE_TRUST");
    /* A bad key in --set, and no --config: usage errors (2). */
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(fl_conf_daemon_args(s_table, &c, sizeof(c), "d", "",
                                         "FLOTILLA_SAMPLE_", NULL, 5, bad), 2);
    fl_conf_release(s_table, &c);
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(fl_conf_daemon_args(s_table, &c, sizeof(c), "d", "",
                                         "FLOTILLA_SAMPLE_", NULL, 1, none), 2);
    fl_conf_release(s_table, &c);
    unsetenv("FLOTILLA_SAMPLE_WORKERS");
    unsetenv("FLOTILLA_SAMPLE_LISTEN_HOST");
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

/* Workers beyond 8 need verbose logging: a check across two keys. */
static int
s_check(const void *obj, fl_error_t *err)
{
    const sample_conf *c = obj;

    if (c->workers > 8 && !c->verbose)
        return FL_ERR(err, FL_EINVAL, "key \"workers\" above 8 needs "
                      "\"verbose\"");
    return 0;
}

/*
 * The daemon's own check runs over what was loaded, with --check too: a
 * file valid key by key but not as a whole is refused before it runs,
 * and --check does not call it valid.
 */
static void
test_config_daemon_args_check_runs_with_and_without_check_flag(void **state)
{
    sample_conf c;
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/d.yaml", dir);
    char *run[] = {"d", "--config", path, NULL};
    char *check[] = {"d", "--config", path, "--check", NULL};

    (void)state;
    fl_test_write_file(path, "name: n\nworkers: 9\n");
    for (int i = 0; i < 2; i++) {
        memset(&c, 0xa5, sizeof(c));
        assert_int_equal(fl_conf_daemon_args(s_table, &c, sizeof(c), "d", "",
                                             "FLOTILLA_SAMPLE_", s_check,
                                             i ? 4 : 3, i ? check : run), 2);
        fl_conf_release(s_table, &c);
    }
    fl_test_write_file(path, "name: n\nworkers: 9\nverbose: true\n");
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(fl_conf_daemon_args(s_table, &c, sizeof(c), "d", "",
                                         "FLOTILLA_SAMPLE_", s_check, 4,
                                         check), 1);
    fl_conf_release(s_table, &c);
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(fl_conf_daemon_args(s_table, &c, sizeof(c), "d", "",
                                         "FLOTILLA_SAMPLE_", s_check, 3,
                                         run), 0);
    fl_conf_release(s_table, &c);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_load_typed_values_and_defaults),
        cmocka_unit_test(test_config_unknown_key_names_file_line_key),
        cmocka_unit_test(test_config_duplicate_key_is_refused),
        cmocka_unit_test(test_config_bad_value_names_line_key_and_reason),
        cmocka_unit_test(test_config_syntax_error_has_line_and_column),
        cmocka_unit_test(test_config_aliases_are_refused),
        cmocka_unit_test(test_config_required_key_missing),
        cmocka_unit_test(test_config_file_missing_and_help),
        cmocka_unit_test(test_config_daemon_args_file_env_set_over_garbage),
        cmocka_unit_test(
            test_config_daemon_args_check_runs_with_and_without_check_flag),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
