/* Tests of the `flotilla` dispatcher through the built executable. */
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
#include <jansson.h>

#include "common/alloc.h"
#include "testsupport.h"

static void
test_cli_help_lists_commands(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "--help", NULL};

    (void)state;
    fl_test_run(&r, "flotilla", argv, NULL, 30);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: flotilla COMMAND"));
    assert_non_null(strstr(r.out, "version"));
    /* Every exit code the commands give (6 and the rollout's were
     * missing). */
    assert_non_null(strstr(r.out, "interrupted (SIGINT or SIGTERM)"));
    assert_non_null(strstr(r.out, "rollout: 7 halted"));
    assert_non_null(strstr(r.out, "9 still running"));
    fl_test_proc_release(&r);
}

/*
 * Every command the help lists, and both daemons, answer --help with
 * their usage on stdout and exit 0, and an unknown option with a usage
 * error (2) that names it; under the sanitizers a leak on either path
 * fails the run (and loses the buffered help).
 */
static void
test_cli_every_command_and_daemon_has_help(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "--help", NULL};
    char *list = NULL, *save = NULL;
    int n = 0;

    (void)state;
    fl_test_run(&r, "flotilla", argv, NULL, 30);
    assert_int_equal(r.status, 0);
    list = strstr(r.out, "Commands:\n");
    assert_non_null(list);
    list = strdup(list + strlen("Commands:\n"));
    fl_test_proc_release(&r);
    for (char *line = strtok_r(list, "\n", &save);
         line != NULL && strncmp(line, "  ", 2) == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char name[32];
        const char *help[] = {"flotilla", name, "--help", NULL};
        const char *bad[] = {"flotilla", name, "--no-such-option", NULL};

        assert_int_equal(sscanf(line, " %31s", name), 1);
        fl_test_run(&r, "flotilla", help, NULL, 30);
        /* Each says its exit codes (before, apply, rollback, log, locks,
         * backups, new, import, keygen, cert and version did not: found
         * by an audit). */
        if (r.status != 0 || strstr(r.out, "Usage: flotilla") == NULL ||
            (strstr(r.out, "Exit codes") == NULL &&
             strstr(r.out, "Exit status") == NULL))
            fail_msg("flotilla %s --help: exit %d, or no exit codes\n%s\n%s",
                     name, r.status, r.out, r.err);
        fl_test_proc_release(&r);
        fl_test_run(&r, "flotilla", bad, NULL, 30);
        if (r.status != 2 || strstr(r.err, "--no-such-option") == NULL)
            fail_msg("flotilla %s --no-such-option: exit %d\n%s", name,
                     r.status, r.err);
        fl_test_proc_release(&r);
        n++;
    }
    assert_true(n >= 16);
    free(list);
    for (int i = 0; i < 2; i++) {
        const char *prog = i ? "flotilla-coordinator" : "flotilla-agent";
        const char *help[] = {prog, "--help", NULL};
        const char *bad[] = {prog, "--no-such-option", NULL};
        char *usage = fl_asprintf("Usage: %s --config", prog);

        fl_test_run(&r, prog, help, NULL, 30);
        if (r.status != 0 || strstr(r.out, usage) == NULL ||
            strstr(r.out, "docs/fleet.md") == NULL)
            fail_msg("%s --help: exit %d\n%s\n%s", prog, r.status, r.out,
                     r.err);
        fl_test_proc_release(&r);
        fl_test_run(&r, prog, bad, NULL, 30);
        if (r.status != 2 || strstr(r.err, "--no-such-option") == NULL)
            fail_msg("%s --no-such-option: exit %d\n%s", prog, r.status,
                     r.err);
        fl_test_proc_release(&r);
        free(usage);
    }
}

/*
 * Each fleet command's help says how long it waits for the coordinator
 * unless --timeout says otherwise: 10 s for agents and targets, an hour
 * for dispatch, a day for rollout (whose single requests wait less, as
 * its help says).  Before, none said it (found by an audit).
 */
static void
test_cli_fleet_commands_say_their_timeout_default(void **state)
{
    static const char *const cases[][3] = {
        {"agents", NULL, "(default 10s)"},
        {"targets", NULL, "(default 10s)"},
        {"dispatch", NULL, "(default 1h)"},
        {"rollout", NULL, "(default 1d)"},
        {"rollout", "status", "(default 1d)"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *help[] = {"flotilla", cases[i][0], "--help", NULL,
                              NULL};
        const char *line = NULL;
        fl_test_proc_t r;

        if (cases[i][1] != NULL) {
            help[2] = cases[i][1];
            help[3] = "--help";
        }
        fl_test_run(&r, "flotilla", help, NULL, 30);
        line = strstr(r.out, "--timeout DURATION");
        if (r.status != 0 || line == NULL ||
            strstr(line, cases[i][2]) == NULL ||
            strstr(line, cases[i][2]) - line > 120)
            fail_msg("flotilla %s %s --help does not say %s:\n%s",
                     cases[i][0], cases[i][1] ? cases[i][1] : "",
                     cases[i][2], r.out);
        if (strcmp(cases[i][0], "rollout") == 0 &&
            strstr(r.out, "one request waits at most 60s") == NULL)
            fail_msg("flotilla rollout --help does not say its requests' "
                     "bound:\n%s", r.out);
        fl_test_proc_release(&r);
    }
}

/* The whole of a file (new string). */
static char *
s_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    text = fl_calloc(1, 1 << 20);
    len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = '\0';
    return text;
}

/*
 * docs/fleet.md documents every key each daemon's --help lists (as
 * `key`), and its example coordinator.yaml and agent.yaml (the first two
 * yaml blocks) pass the daemons' --check.
 */
static void
test_cli_fleet_doc_has_every_daemon_key_and_valid_examples(void **state)
{
    char *doc_path = fl_test_source_path("docs/fleet.md");
    char *doc = s_slurp(doc_path);
    char *dir = fl_test_tmpdir();
    const char *at = doc;

    (void)state;
    for (int i = 0; i < 2; i++) {
        const char *prog = i ? "flotilla-agent" : "flotilla-coordinator";
        const char *help[] = {prog, "--help", NULL};
        fl_test_proc_t r;
        char *keys = NULL, *save = NULL, *yaml = NULL, *path = NULL;
        const char *start = strstr(at, "```yaml\n"), *end = NULL;
        int n = 0;

        fl_test_run(&r, prog, help, NULL, 30);
        assert_int_equal(r.status, 0);
        keys = strstr(r.out, "in the environment):\n");
        assert_non_null(keys);
        keys = fl_strdup(strchr(keys, '\n') + 1);
        for (char *line = strtok_r(keys, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            char key[64], *quoted = NULL;

            if (sscanf(line, " %63s", key) != 1)
                continue;
            quoted = fl_asprintf("`%s`", key);
            if (strstr(doc, quoted) == NULL)
                fail_msg("docs/fleet.md does not document %s's key %s", prog,
                         quoted);
            free(quoted);
            n++;
        }
        assert_true(n > 20);
        free(keys);
        fl_test_proc_release(&r);

        assert_non_null(start);
        start += strlen("```yaml\n");
        end = strstr(start, "```");
        assert_non_null(end);
        yaml = fl_strndup(start, (size_t)(end - start));
        path = fl_asprintf("%s/%d.yaml", dir, i);
        fl_test_write_file(path, yaml);
        {
            const char *check[] = {prog, "--check", "--config", path, NULL};
            fl_test_run(&r, prog, check, NULL, 30);
            if (r.status != 0 || strstr(r.out, "configuration is valid") ==
                                     NULL)
                fail_msg("%s --check on the example of docs/fleet.md: exit "
                         "%d\n%s\n%s", prog, r.status, r.out, r.err);
            fl_test_proc_release(&r);
        }
        /* A heartbeat_timeout past restart_grace's default is valid: the
         * grace is never less (before, such a configuration was refused
         * once restart_grace existed). */
        if (i == 0) {
            const char *check[] = {prog, "--check", "--config", path,
                                   "--set", "heartbeat_timeout=90s", NULL};
            fl_test_run(&r, prog, check, NULL, 30);
            if (r.status != 0)
                fail_msg("heartbeat_timeout=90s refused: exit %d\n%s\n%s",
                         r.status, r.out, r.err);
            fl_test_proc_release(&r);
        }
        at = end + 3;
        free(path);
        free(yaml);
    }
    fl_test_rmtree(dir);
    free(dir);
    free(doc);
    free(doc_path);
}

/*
 * A discovery rule's name template must give each tenant it finds a name
 * of its own, and a valid one: `flotilla-agent --check` refuses a
 * template without {database} in a databases rule or without {schema} in
 * a schemas rule (every tenant it found had the same name: the first was
 * a target and the others were never migrated, without a word), one with
 * a placeholder it does not know or a character no target name holds
 * (every tenant was skipped, with a warning at each discovery), and takes
 * the valid ones.
 */
static void
test_cli_agent_check_refuses_name_templates_that_lose_tenants(void **state)
{
    static const struct {
        const char *rule, *name, *want;
    } cases[] = {
        {"databases: \"tenant_*\"", "{agent}/tenants", "{database}"},
        {"schemas: \"t_*\"\n    database: saas", "{agent}/{database}",
         "{schema}"},
        {"databases: \"tenant_*\"", "{agent}/{db}", "{db}"},
        {"databases: \"tenant_*\"", "{agent} {database}", "\" \""},
        {"databases: \"tenant_*\"", "{agent}/{database", "{database"},
        {"databases: \"tenant_*\"", "{agent}/x/{database}", NULL},
        {"schemas: \"t_*\"\n    database: saas", "{schema}", NULL},
    };
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/agent.yaml", dir);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[] = {"flotilla-agent", "--check", "--config", path,
                              NULL};
        fl_test_proc_t r;
        char *yaml = fl_asprintf(
            "name: shard-a\n"
            "coordinator:\n"
            "  endpoint: tcp://127.0.0.1:7600\n"
            "  public_cert: /etc/flotilla/coord.cert\n"
            "cert: /etc/flotilla/agent.cert_secret\n"
            "environment: production\n"
            "trust: /etc/flotilla/trust\n"
            "state_dir: /var/lib/flotilla-agent\n"
            "server: \"host=/tmp dbname=postgres\"\n"
            "discover:\n"
            "  - %s\n"
            "    name: \"%s\"\n", cases[i].rule, cases[i].name);

        fl_test_write_file(path, yaml);
        fl_test_run(&r, "flotilla-agent", argv, NULL, 30);
        if (cases[i].want == NULL) {
            if (r.status != 0)
                fail_msg("case %zu (%s): refused: %s", i, cases[i].name,
                         r.err);
        } else if (r.status == 0 ||
                   strstr(r.err, "discover[0]") == NULL ||
                   strstr(r.err, cases[i].want) == NULL) {
            fail_msg("case %zu (%s): exit %d, want a refusal of discover[0] "
                     "naming %s:\n%s%s", i, cases[i].name, r.status,
                     cases[i].want, r.out, r.err);
        }
        fl_test_proc_release(&r);
        free(yaml);
    }
    fl_test_rmtree(dir);
    free(path);
    free(dir);
}

/*
 * `flotilla new DIR NAME` names the file one above the highest version in
 * DIR, in the order versions have (docs/migrations.md): the last run of
 * digits counted up as text, its width kept, whatever its length; files
 * that are not migrations are left out.  Before, the version was read
 * with strtoll: "1.2_a.sql" gave 0001 (which sorts below it), and a
 * version of 20 digits overflowed (a runtime error under UBSan).
 */
static void
test_cli_new_names_the_next_version_in_version_order(void **state)
{
    static const struct {
        const char *files[4];
        const char *want;
    } cases[] = {
        {{NULL}, "0001_b.sql"},
        {{"0007_x.sql", "README.md", "12abc", NULL}, "0008_b.sql"},
        {{"0099_a.sql", "0007_x.sql", NULL}, "0100_b.sql"},
        {{"9999_a.sql", NULL}, "10000_b.sql"},
        {{"1.2_a.sql", NULL}, "1.3_b.sql"},
        {{"1.9_a.sql", "1.10_c.sql", NULL}, "1.11_b.sql"},
        {{"20190226002946123456_a.sql", "3_x.sql", NULL},
         "20190226002946123457_b.sql"},
        {{"99999999999999999999_a.sql", NULL}, "100000000000000000000_b.sql"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *dir = fl_test_tmpdir();
        char *want = fl_asprintf("%s/%s", dir, cases[i].want);
        const char *argv[] = {"flotilla", "new", dir, "b", NULL};
        fl_test_proc_t r;

        for (int k = 0; cases[i].files[k] != NULL; k++) {
            char *p = fl_asprintf("%s/%s", dir, cases[i].files[k]);
            fl_test_write_file(p, "-- flotilla:up\nSELECT 1;\n");
            free(p);
        }
        fl_test_run(&r, "flotilla", argv, NULL, 30);
        if (r.status != 0 || strstr(r.out, want) == NULL ||
            access(want, R_OK) != 0)
            fail_msg("case %zu: want %s, exit %d:\n%s%s", i, cases[i].want,
                     r.status, r.out, r.err);
        fl_test_proc_release(&r);
        fl_test_rmtree(dir);
        free(want);
        free(dir);
    }
}

/*
 * A path that is not there says what to do, not only what failed: the
 * migration source and --db-file (both said only "No such file or
 * directory").
 */
static void
test_cli_a_missing_path_has_a_hint(void **state)
{
    const char *plan[] = {"flotilla", "plan", "--db", "dbname=none",
                          "/nonexistent-flotilla/m", NULL};
    const char *status[] = {"flotilla", "status", "--db-file",
                            "/nonexistent-flotilla/db", "/tmp", NULL};
    const char *const *argvs[] = {plan, status};
    const char *hints[] = {"HINT: SOURCE is a migrations directory",
                           "HINT: Check the path"};

    (void)state;
    for (int i = 0; i < 2; i++) {
        fl_test_proc_t r;

        fl_test_run(&r, "flotilla", argvs[i], NULL, 30);
        if (r.status == 0 || strstr(r.err, hints[i]) == NULL)
            fail_msg("flotilla %s: exit %d, wanted \"%s\":\n%s",
                     argvs[i][1], r.status, hints[i], r.err);
        fl_test_proc_release(&r);
    }
}

/*
 * The commands that only read a database (log, locks, backups) take no
 * source and write no log file: their help shows neither, and --dir,
 * --layout or --log-file is a usage error (log --dir was accepted and
 * ignored, and their help listed them).
 */
static void
test_cli_read_commands_take_only_their_options(void **state)
{
    static const char *const cmds[] = {"log", "locks", "backups"};
    static const char *const bad[] = {"--dir", "--layout", "--log-file"};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        const char *help[] = {"flotilla", cmds[i], "--help", NULL};
        fl_test_proc_t r;

        fl_test_run(&r, "flotilla", help, NULL, 30);
        if (r.status != 0 || strstr(r.out, "--db-file") == NULL ||
            strstr(r.out, "--log-file") != NULL ||
            strstr(r.out, "--layout") != NULL)
            fail_msg("flotilla %s --help: exit %d\n%s", cmds[i], r.status,
                     r.out);
        fl_test_proc_release(&r);
        for (size_t k = 0; k < 3; k++) {
            const char *argv[] = {"flotilla", cmds[i], bad[k], "x", "--db",
                                  "dbname=none", NULL};

            fl_test_run(&r, "flotilla", argv, NULL, 30);
            if (r.status != 2 || strstr(r.err, bad[k]) == NULL)
                fail_msg("flotilla %s %s: exit %d, wanted a usage error "
                         "naming it\n%s", cmds[i], bad[k], r.status, r.err);
            fl_test_proc_release(&r);
        }
    }
}

/*
 * --lock-timeout and --statement-timeout take what PostgreSQL can set
 * (at most 2147483647 ms) and --lock-timeout more than 0: anything else
 * is a usage error naming the option, before any connection.  Before,
 * 30d was taken and failed at the first migration's SET.
 */
static void
test_cli_timeouts_are_ones_postgresql_can_set(void **state)
{
    static const char *const bad[][2] = {{"--lock-timeout", "30d"},
                                         {"--statement-timeout", "25d"},
                                         {"--lock-timeout", "0"}};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = {"flotilla", "apply", bad[i][0], bad[i][1],
                              "--db", "host=/nonexistent dbname=none",
                              "--dir", ".", NULL};
        fl_test_proc_t r;

        fl_test_run(&r, "flotilla", argv, NULL, 30);
        if (r.status != 2 || strstr(r.err, bad[i][0]) == NULL)
            fail_msg("apply %s %s: exit %d, wanted a usage error naming "
                     "it\n%s", bad[i][0], bad[i][1], r.status, r.err);
        fl_test_proc_release(&r);
    }
}

/*
 * status reads a database and a source: its help lists those options
 * (it listed none), and --log-file, which it never wrote, is refused;
 * locks shows the whole server's sessions: --schema, which it accepted
 * and ignored, is refused and not in its help.
 */
static void
test_cli_status_and_locks_take_what_their_help_says(void **state)
{
    static const char *const listed[] = {"--db-file", "--schema", "--dir",
                                         "--layout", "--trust", "--json"};
    const char *help[] = {"flotilla", "status", "--help", NULL};
    const char *logf[] = {"flotilla", "status", "--log-file", "x", "--db",
                          "dbname=none", NULL};
    const char *lhelp[] = {"flotilla", "locks", "--help", NULL};
    const char *lschema[] = {"flotilla", "locks", "--schema", "s", "--db",
                             "host=/nonexistent dbname=none", NULL};
    fl_test_proc_t r;

    (void)state;
    fl_test_run(&r, "flotilla", help, NULL, 30);
    assert_int_equal(r.status, 0);
    for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
        if (strstr(r.out, listed[i]) == NULL)
            fail_msg("status --help lacks %s:\n%s", listed[i], r.out);
    assert_null(strstr(r.out, "--log-file"));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", logf, NULL, 30);
    if (r.status != 2 || strstr(r.err, "--log-file") == NULL)
        fail_msg("status --log-file: exit %d\n%s", r.status, r.err);
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", lhelp, NULL, 30);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "--schema"));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", lschema, NULL, 30);
    if (r.status != 2 || strstr(r.err, "--schema") == NULL)
        fail_msg("locks --schema: exit %d\n%s", r.status, r.err);
    fl_test_proc_release(&r);
}

static void
test_cli_unknown_command_is_usage_error(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "frobnicate", NULL};
    const char *none[] = {"flotilla", NULL};

    (void)state;
    fl_test_run(&r, "flotilla", argv, NULL, 30);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown command \"frobnicate\""));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", none, NULL, 30);
    assert_int_equal(r.status, 2);
    fl_test_proc_release(&r);
}

/*
 * An option given without its value is said so, naming it, whatever the
 * command (before: `invalid option "--db"`, as if --db did not exist);
 * and an argument version does not take is a usage error (before: exit
 * 0).  Found by an audit of the docs.
 */
static void
test_cli_an_option_without_its_value_says_so(void **state)
{
    static const char *const cases[][4] = {
        {"status", "--db", NULL, NULL},
        {"log", "--limit", NULL, NULL},
        {"backups", "list", "--db", NULL},
        {"import", "--from", NULL, NULL},
        {"targets", "--selector", NULL, NULL},
        {"bundle", "build", "--out", NULL},
        {"lint", "--format", NULL, NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[6] = {"flotilla"};
        const char *opt = NULL;
        char *want = NULL;
        fl_test_proc_t r;
        size_t n = 1;

        for (size_t k = 0; k < 4 && cases[i][k]; k++)
            opt = argv[n++] = cases[i][k];
        argv[n] = NULL;
        want = fl_asprintf("option \"%s\" needs a value", opt);
        fl_test_run(&r, "flotilla", argv, NULL, 30);
        if (r.status != 2 || strstr(r.err, want) == NULL)
            fail_msg("flotilla %s ... %s: exit %d, wanted 2 saying \"%s\"\n"
                     "%s", cases[i][0], opt, r.status, want, r.err);
        fl_test_proc_release(&r);
        free(want);
    }
    /* The database given twice: one would be left unused (before, the
     * last won without a word). */
    {
        const char *argv[] = {"flotilla", "status", "--db", "dbname=a",
                              "--db", "dbname=b", NULL};
        fl_test_proc_t r;

        fl_test_run(&r, "flotilla", argv, NULL, 30);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "the database is given twice"));
        fl_test_proc_release(&r);
    }
    {
        const char *argv[] = {"flotilla", "version", "extra", NULL};
        fl_test_proc_t r;

        fl_test_run(&r, "flotilla", argv, NULL, 30);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "unexpected argument \"extra\""));
        fl_test_proc_release(&r);
    }
}

static void
test_cli_version_json(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "version", "--json", NULL};
    json_error_t jerr;
    json_t *o = NULL;

    (void)state;
    fl_test_run(&r, "flotilla", argv, NULL, 30);
    assert_int_equal(r.status, 0);
    o = json_loads(r.out, 0, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "flotilla")),
                        FLOTILLA_VERSION);
    json_decref(o);
    fl_test_proc_release(&r);
}

/*
 * A usage error of a command given --json: the error object on stdout as
 * well as the text on stderr (docs/pipeline.md, "Exit codes"; the docs
 * said text alone).
 */
static void
test_cli_usage_error_with_json_is_json_too(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "status", "--bogus", "--json", NULL};
    json_error_t jerr;
    json_t *o = NULL;

    (void)state;
    fl_test_run(&r, "flotilla", argv, NULL, 30);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--bogus"));
    o = json_loads(r.out, 0, &jerr);
    if (o == NULL)
        fail_msg("stdout is not one JSON object: %s", r.out);
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_object_get(o, "error"), "message")),
                           "--bogus"));
    json_decref(o);
    fl_test_proc_release(&r);
}

/* Runs flotilla ARGV...; fails unless it exits 0. */
static void
s_flotilla_ok(const char *const *argv)
{
    fl_test_proc_t r;

    fl_test_run(&r, "flotilla", argv, NULL, 30);
    if (r.status != 0)
        fail_msg("flotilla %s: exit %d\n%s", argv[1], r.status, r.err);
    fl_test_proc_release(&r);
}

/* Runs flotilla-agent --config path; fails unless it refuses, saying says. */
static void
s_agent_refuses(const char *path, const char *says)
{
    const char *argv[] = {"flotilla-agent", "--config", path, NULL};
    fl_test_proc_t r;

    fl_test_run(&r, "flotilla-agent", argv, NULL, 10);
    if (r.status == 0 || strstr(r.err, says) == NULL ||
        strstr(r.err, "state directory") == NULL)
        fail_msg("flotilla-agent: exit %d, wanted a refusal of its state "
                 "directory saying \"%s\":\n%s", r.status, says, r.err);
    fl_test_proc_release(&r);
}

/*
 * The agent's state_dir holds its journal of commands and results and its
 * bundle cache: one that another user owns, or that group or others can
 * write, is refused at start-up (before, it was used, and that user could
 * rewrite the journal), as is such a journal or bundles directory in it.
 * Giving a directory away takes root; other users check the mode only.
 */
static void
test_cli_agent_refuses_a_state_dir_another_user_could_change(void **state)
{
    char *dir = fl_test_tmpdir();
    char *agent = fl_asprintf("%s/agent", dir);
    char *coord = fl_asprintf("%s/coord", dir);
    char *release = fl_asprintf("%s/release", dir);
    char *sdir = fl_asprintf("%s/state", dir);
    char *journal = fl_asprintf("%s/journal", sdir);
    char *path = fl_asprintf("%s/agent.yaml", dir);
    char *yaml = NULL;
    const char *cert_a[] = {"flotilla", "cert", "--out", agent, "--name",
                            "a", NULL};
    const char *cert_c[] = {"flotilla", "cert", "--out", coord, "--name",
                            "c", NULL};
    const char *keygen[] = {"flotilla", "keygen", "--out", release, NULL};

    (void)state;
    s_flotilla_ok(cert_a);
    s_flotilla_ok(cert_c);
    s_flotilla_ok(keygen);
    yaml = fl_asprintf("name: a\n"
                       "coordinator:\n"
                       "  endpoint: tcp://127.0.0.1:1\n"
                       "  public_cert: %s.cert\n"
                       "cert: %s.cert_secret\n"
                       "environment: test\n"
                       "trust: %s.pub\n"
                       "state_dir: %s\n", coord, agent, release, sdir);
    fl_test_write_file(path, yaml);
    assert_int_equal(mkdir(sdir, 0700), 0);
    assert_int_equal(chmod(sdir, 0777), 0);
    s_agent_refuses(path, "is writable by group and others");
    assert_int_equal(chmod(sdir, 0700), 0);
    assert_int_equal(mkdir(journal, 0700), 0);
    assert_int_equal(chmod(journal, 0770), 0);
    s_agent_refuses(path, "is writable by group");
    assert_int_equal(chmod(journal, 0700), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(sdir, 65534, (gid_t)-1), 0);
        s_agent_refuses(path, "is owned by another user");
    }
    fl_test_rmtree(dir);
    free(yaml);
    free(path);
    free(journal);
    free(sdir);
    free(release);
    free(coord);
    free(agent);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_help_lists_commands),
        cmocka_unit_test(test_cli_every_command_and_daemon_has_help),
        cmocka_unit_test(test_cli_fleet_commands_say_their_timeout_default),
        cmocka_unit_test(
            test_cli_fleet_doc_has_every_daemon_key_and_valid_examples),
        cmocka_unit_test(
            test_cli_agent_check_refuses_name_templates_that_lose_tenants),
        cmocka_unit_test(
            test_cli_new_names_the_next_version_in_version_order),
        cmocka_unit_test(test_cli_a_missing_path_has_a_hint),
        cmocka_unit_test(test_cli_read_commands_take_only_their_options),
        cmocka_unit_test(test_cli_unknown_command_is_usage_error),
        cmocka_unit_test(test_cli_an_option_without_its_value_says_so),
        cmocka_unit_test(test_cli_version_json),
        cmocka_unit_test(test_cli_usage_error_with_json_is_json_too),
        cmocka_unit_test(test_cli_timeouts_are_ones_postgresql_can_set),
        cmocka_unit_test(test_cli_status_and_locks_take_what_their_help_says),
        cmocka_unit_test(
            test_cli_agent_refuses_a_state_dir_another_user_could_change),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
