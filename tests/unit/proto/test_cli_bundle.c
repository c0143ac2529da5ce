/*
 * Tests of `flotilla keygen` and `flotilla bundle build|verify|inspect`
 * through the built executable: the signed release, scope and lifetime,
 * the exit code of an untrusted `inspect --trust`, and text from a
 * bundle shown escaped.
 */
#include <fcntl.h>
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
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "testsupport.h"

typedef struct {
    char *dir;
    char *migs;
    char *prefix;
    char *key;
    char *pub;
    char *bundle;
    char created[32]; /* now, fixed for the test so builds repeat */
} fixture;

static int
setup(void **state)
{
    fixture *f = fl_calloc(1, sizeof(*f));
    char *p = NULL;

    f->dir = fl_test_tmpdir();
    f->migs = fl_asprintf("%s/migrations", f->dir);
    f->prefix = fl_asprintf("%s/release", f->dir);
    f->key = fl_asprintf("%s.key", f->prefix);
    f->pub = fl_asprintf("%s.pub", f->prefix);
    f->bundle = fl_asprintf("%s/out.bundle", f->dir);
    snprintf(f->created, sizeof(f->created), "%lld", (long long)time(NULL));
    assert_int_equal(mkdir(f->migs, 0755), 0);
    p = fl_asprintf("%s/0001_users.sql", f->migs);
    fl_test_write_file(p, "-- flotilla:up\nCREATE TABLE users (id int);\n"
                          "-- flotilla:down\nDROP TABLE users;\n");
    free(p);
    p = fl_asprintf("%s/0002_email.sql", f->migs);
    fl_test_write_file(p, "-- flotilla:options lock_timeout=2s\n"
                          "-- flotilla:up\nALTER TABLE users ADD email text;\n");
    free(p);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;

    fl_test_rmtree(f->dir);
    free(f->dir);
    free(f->migs);
    free(f->prefix);
    free(f->key);
    free(f->pub);
    free(f->bundle);
    free(f);
    return 0;
}

static void
s_run(fl_test_proc_t *r, const char *const *argv)
{
    fl_test_run(r, "flotilla", argv, NULL, 60);
}

static void
s_keygen(const char *prefix)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "keygen", "--out", prefix, NULL};

    s_run(&r, argv);
    assert_int_equal(r.status, 0);
    fl_test_proc_release(&r);
}

/* Builds f->bundle with the fixed creation time, note and extra options. */
static void
s_build_with(const fixture *f, const char *note, const char *const *extra)
{
    fl_test_proc_t r;
    const char *argv[32] = {"flotilla", "bundle", "build", f->migs, "--sign",
                            f->key, "--out", f->bundle, "--created",
                            f->created, "--environment", "production",
                            "--note", note};
    size_t n = 14;

    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    s_run(&r, argv);
    if (r.status != 0)
        fail_msg("bundle build: %s", r.err);
    assert_non_null(strstr(r.out, "2 migrations"));
    fl_test_proc_release(&r);
}

static void
s_build(const fixture *f)
{
    s_build_with(f, "first release", NULL);
}

/*
 * Runs argv and expects its exit status, and out_needle in its standard
 * output and err_needle in its standard error (each when not NULL).
 */
static void
s_expect(const char *const *argv, int status, const char *out_needle,
         const char *err_needle)
{
    fl_test_proc_t r;

    s_run(&r, argv);
    if (r.status != status)
        fail_msg("%s %s exited %d, not %d: %s", argv[1], argv[2], r.status,
                 status, r.err);
    if (out_needle && strstr(r.out, out_needle) == NULL)
        fail_msg("wanted \"%s\" in the output: %s", out_needle, r.out);
    if (err_needle && strstr(r.err, err_needle) == NULL)
        fail_msg("wanted \"%s\" in the errors: %s", err_needle, r.err);
    fl_test_proc_release(&r);
}

static void
test_cli_keygen_writes_0600_key_and_refuses_overwrite(void **state)
{
    fixture *f = *state;
    fl_test_proc_t r;
    const char *again[] = {"flotilla", "keygen", "--out", f->prefix, NULL};
    const char *force[] = {"flotilla", "keygen", "--out", f->prefix, "--force",
                           NULL};
    const char *noout[] = {"flotilla", "keygen", NULL};
    const char *help[] = {"flotilla", "keygen", "--help", NULL};
    struct stat st;

    s_keygen(f->prefix);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(f->pub, &st), 0);
    s_run(&r, again);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "already exists"));
    assert_non_null(strstr(r.err, "--force"));
    fl_test_proc_release(&r);
    s_run(&r, force);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "key id "));
    fl_test_proc_release(&r);
    /* --force replaces a link at PREFIX.pub, never writes through it
     * (before, the public key went into the link's target). */
    {
        char *victim = fl_asprintf("%s.victim", f->prefix);
        char text[32] = "";
        FILE *fp = NULL;

        fl_test_write_file(victim, "victim\n");
        assert_int_equal(unlink(f->pub), 0);
        assert_int_equal(symlink(victim, f->pub), 0);
        s_run(&r, force);
        assert_int_equal(r.status, 0);
        fl_test_proc_release(&r);
        fp = fopen(victim, "r");
        assert_non_null(fp);
        assert_non_null(fgets(text, sizeof(text), fp));
        fclose(fp);
        assert_string_equal(text, "victim\n");
        assert_int_equal(lstat(f->pub, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0644);
        unlink(victim);
        free(victim);
    }
    s_run(&r, noout);
    assert_int_equal(r.status, 2);
    fl_test_proc_release(&r);
    s_run(&r, help);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: flotilla keygen"));
    fl_test_proc_release(&r);
}

/*
 * bundle build never writes through a link another user planted where
 * it writes: at the path of its temporary file (named after its pid
 * before, so predictable: the child plants it, then becomes flotilla
 * with the same pid) or at --out.  Before, the bundle went into the
 * link's target, as keygen's public key once did (found by an audit).
 */
static void
test_cli_bundle_build_never_writes_through_a_link(void **state)
{
    fixture *f = *state;
    char *victim = fl_asprintf("%s/victim", f->dir);
    char *exe = fl_asprintf("%s/flotilla", getenv("FLOTILLA_BIN_DIR"));
    char text[32] = "";
    struct stat st;
    FILE *fp = NULL;
    int status = 0;
    pid_t pid;

    s_keygen(f->prefix);
    fl_test_write_file(victim, "victim\n");
    assert_int_equal(symlink(victim, f->bundle), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *tmp = fl_asprintf("%s.tmp.%ld", f->bundle, (long)getpid());
        int devnull = open("/dev/null", O_WRONLY);

        if (symlink(victim, tmp) != 0 || devnull < 0)
            _exit(99);
        (void)dup2(devnull, 1);
        (void)dup2(devnull, 2);
        execl(exe, "flotilla", "bundle", "build", f->migs, "--sign", f->key,
              "--out", f->bundle, "--environment", "production",
              (char *)NULL);
        _exit(98);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    fp = fopen(victim, "r");
    assert_non_null(fp);
    assert_non_null(fgets(text, sizeof(text), fp));
    fclose(fp);
    assert_string_equal(text, "victim\n");
    assert_int_equal(lstat(f->bundle, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    free(victim);
    free(exe);
}

static void
test_cli_bundle_build_verify_inspect_json(void **state)
{
    fixture *f = *state;
    fl_test_proc_t r;
    const char *verify[] = {"flotilla", "bundle", "verify", f->bundle,
                            "--trust", f->pub, NULL};
    const char *inspect[] = {"flotilla", "bundle", "inspect", f->bundle,
                             "--trust", f->dir, "--json", NULL};
    json_error_t jerr;
    json_t *o = NULL;
    json_t *m = NULL;
    char *id = NULL;

    s_keygen(f->prefix);
    s_build(f);
    s_run(&r, verify);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "valid bundle"));
    assert_null(strchr(strchr(r.out, '\n') + 1, '\n')); /* one line */
    fl_test_proc_release(&r);

    s_run(&r, inspect);
    assert_int_equal(r.status, 0);
    o = json_loads(r.out, 0, &jerr);
    if (o == NULL)
        fail_msg("inspect --json printed no JSON: %s", jerr.text);
    assert_string_equal(json_string_value(json_object_get(o, "trusted")), "yes");
    assert_true(json_is_null(json_object_get(o, "trust_error")));
    assert_string_equal(json_string_value(json_object_get(o, "note")),
                        "first release");
    assert_int_equal(json_integer_value(json_object_get(o, "format")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "created")),
                     strtoll(f->created, NULL, 10));
    /* Every bundle expires: 30 days unless --expires says otherwise. */
    assert_int_equal(json_integer_value(json_object_get(o, "expires")),
                     strtoll(f->created, NULL, 10) + 30 * 86400);
    assert_string_equal(json_string_value(json_object_get(o, "channel")),
                        "default");
    assert_int_equal(json_integer_value(json_object_get(o, "sequence")),
                     strtoll(f->created, NULL, 10));
    assert_string_equal(json_string_value(json_object_get(o, "environment")),
                        "production");
    assert_true(json_is_null(json_object_get(o, "selector")));
    assert_int_equal(strlen(json_string_value(json_object_get(o, "signer"))),
                     16);
    id = fl_strdup(json_string_value(json_object_get(o, "id")));
    assert_int_equal(json_array_size(json_object_get(o, "migrations")), 2);
    m = json_array_get(json_object_get(o, "migrations"), 1);
    assert_string_equal(json_string_value(json_object_get(m, "file")),
                        "0002_email.sql");
    assert_int_equal(json_integer_value(json_object_get(m, "lock_timeout_ms")),
                     2000);
    assert_int_equal(strlen(json_string_value(json_object_get(m, "checksum"))),
                     64);
    json_decref(o);
    fl_test_proc_release(&r);

    /* Same directory and time: same bundle id. */
    s_build(f);
    s_run(&r, inspect);
    assert_non_null(strstr(r.out, id));
    fl_test_proc_release(&r);
    /* The text shows each migration's options with their values, as
     * --json does (before, only flags: not the timeout). */
    inspect[6] = NULL;
    s_run(&r, inspect);
    if (r.status != 0 || strstr(r.out, "lock_timeout=2000ms") == NULL)
        fail_msg("inspect shows no option values:\n%s", r.out);
    fl_test_proc_release(&r);
    free(id);
}

static void
test_cli_bundle_verify_refuses_wrong_trust_and_tampering(void **state)
{
    fixture *f = *state;
    char *other = fl_asprintf("%s/other", f->dir);
    char *other_pub = fl_asprintf("%s/other.pub", f->dir);
    fl_test_proc_t r;
    const char *wrong[] = {"flotilla", "bundle", "verify", f->bundle,
                           "--trust", other_pub, NULL};
    const char *right[] = {"flotilla", "bundle", "verify", f->bundle,
                           "--trust", f->pub, NULL};
    const char *inspect[] = {"flotilla", "bundle", "inspect", f->bundle,
                             "--trust", other_pub, NULL};
    const char *inspect_json[] = {"flotilla", "bundle", "inspect", f->bundle,
                                  "--trust", other_pub, "--json", NULL};
    FILE *fp = NULL;

    s_keygen(f->prefix);
    s_keygen(other);
    s_build(f);
    s_run(&r, wrong);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "bundle is signed by unknown key"));
    fl_test_proc_release(&r);
    /* A trust store that is not there: said as its own error, with what
     * one is (before: prefixed with the bundle's name, no hint). */
    {
        char *none = fl_asprintf("%s/none.pub", f->dir);
        const char *missing[] = {"flotilla", "bundle", "verify", f->bundle,
                                 "--trust", none, NULL};

        s_run(&r, missing);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "error: could not open trust store"));
        assert_non_null(strstr(r.err, "PREFIX.pub"));
        fl_test_proc_release(&r);
        free(none);
    }
    /*
     * verify --json: the verdict as one object, either way (it was
     * refused as a usage error saying --trust was missing).
     */
    {
        const char *jwrong[] = {"flotilla", "bundle", "verify", f->bundle,
                                "--trust", other_pub, "--json", NULL};
        const char *jright[] = {"flotilla", "bundle", "verify", f->bundle,
                                "--trust", f->pub, "--json", NULL};
        json_t *o = NULL;

        s_run(&r, jwrong);
        o = json_loads(r.out, 0, NULL);
        assert_int_equal(r.status, 1);
        assert_true(json_is_false(json_object_get(o, "ok")));
        assert_non_null(strstr(json_string_value(json_object_get(
                                   json_object_get(o, "error"), "message")),
                               "unknown key"));
        json_decref(o);
        fl_test_proc_release(&r);
        s_run(&r, jright);
        o = json_loads(r.out, 0, NULL);
        assert_int_equal(r.status, 0);
        assert_true(json_is_true(json_object_get(o, "ok")));
        assert_non_null(json_string_value(json_object_get(o, "id")));
        assert_non_null(json_string_value(json_object_get(o, "signer")));
        assert_true(json_is_integer(json_object_get(o, "expires")));
        assert_true(json_is_integer(json_object_get(o, "migrations")));
        json_decref(o);
        fl_test_proc_release(&r);
    }
    /* Shown, but not trusted: exit 1 (issue 9; it was 0). */
    s_run(&r, inspect);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "trusted  no (bundle is signed by unknown"));
    fl_test_proc_release(&r);
    s_expect(inspect_json, 1, "\"trusted\": \"no\"", NULL);

    fp = fopen(f->bundle, "r+b");
    assert_non_null(fp);
    fseek(fp, 60, SEEK_SET);
    fputc('!', fp);
    fclose(fp);
    s_run(&r, right);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "bundle signature is not valid"));
    fl_test_proc_release(&r);
    free(other);
    free(other_pub);
}

static void
test_cli_bundle_reports_source_errors_and_usage(void **state)
{
    fixture *f = *state;
    char *bad = fl_asprintf("%s/0003_bad.sql", f->migs);
    fl_test_proc_t r;
    const char *build[] = {"flotilla", "bundle", "build", f->migs, "--sign",
                           f->key, "--out", f->bundle, "--environment", "dev",
                           NULL};
    const char *expires[] = {"flotilla", "bundle", "build", f->migs, "--sign",
                             f->key, "--out", f->bundle, "--environment",
                             "dev", "--expires", "5", NULL};
    const char *layout[] = {"flotilla", "bundle", "build", "--dir", f->migs,
                            "--layout", "bogus", "--sign", f->key, "--out",
                            f->bundle, "--environment", "dev", NULL};
    const char *lifetime[] = {"flotilla", "bundle", "verify", f->bundle,
                              "--trust", f->key, "--max-lifetime", "5x",
                              NULL};
    const char *nosub[] = {"flotilla", "bundle", NULL};
    const char *unknown[] = {"flotilla", "bundle", "frob", "x", NULL};
    const char *alone[] = {"flotilla", "bundle", "frob", NULL};
    const char *notrust[] = {"flotilla", "bundle", "verify", f->bundle, NULL};
    const char *help[] = {"flotilla", "bundle", "--help", NULL};

    s_keygen(f->prefix);
    fl_test_write_file(bad, "-- flotilla:up\nSELECT 1;\n-- flotilla:downn\n");
    s_run(&r, build);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "unknown section \"downn\" in file "
                                  "\"0003_bad.sql\" line 3"));
    fl_test_proc_release(&r);
    /* A bad option's value is a usage error, exit 2, as in every other
     * command; an unknown subcommand is said first, whatever follows it.
     * Before, 1, the first blaming the bundle file, and "bundle frob"
     * alone said it takes one FILE argument (found by an audit). */
    s_run(&r, expires);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "invalid --expires"));
    fl_test_proc_release(&r);
    s_expect(layout, 2, NULL, "--layout");
    s_expect(lifetime, 2, NULL, "--max-lifetime");
    s_run(&r, nosub);
    assert_int_equal(r.status, 2);
    fl_test_proc_release(&r);
    s_run(&r, unknown);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown subcommand \"frob\""));
    fl_test_proc_release(&r);
    s_expect(alone, 2, NULL, "unknown subcommand \"frob\"");
    s_run(&r, notrust);
    assert_int_equal(r.status, 2);
    fl_test_proc_release(&r);
    s_run(&r, help);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "flotilla bundle verify FILE --trust PATH"));
    fl_test_proc_release(&r);
    free(bad);
}

/* Issue 9: a release, a scope and a bounded lifetime in every bundle. */
static void
test_cli_bundle_build_signs_scope_release_and_bounded_lifetime(void **state)
{
    fixture *f = *state;
    const char *noenv[] = {"flotilla", "bundle", "build", f->migs, "--sign",
                           f->key, "--out", f->bundle, NULL};
    const char *toolong[] = {"flotilla", "bundle", "build", f->migs, "--sign",
                             f->key, "--out", f->bundle, "--environment",
                             "production", "--expires", "91d", NULL};
    const char *badsel[] = {"flotilla", "bundle", "build", f->migs, "--sign",
                            f->key, "--out", f->bundle, "--environment",
                            "production", "--selector", "tier=canary,,x",
                            NULL};
    const char *longer[] = {"--expires", "91d", "--max-lifetime", "100d",
                            "--channel", "stable", "--sequence", "12",
                            "--selector", "tier=canary", NULL};
    const char *verify[] = {"flotilla", "bundle", "verify", f->bundle,
                            "--trust", f->pub, NULL};
    const char *verify100[] = {"flotilla", "bundle", "verify", f->bundle,
                               "--trust", f->pub, "--max-lifetime", "100d",
                               NULL};
    const char *inspect[] = {"flotilla", "bundle", "inspect", f->bundle,
                             "--trust", f->pub, NULL};
    const char *inspect100[] = {"flotilla", "bundle", "inspect", f->bundle,
                                "--trust", f->pub, "--max-lifetime", "100d",
                                NULL};

    s_keygen(f->prefix);
    s_expect(noenv, 2, NULL, "--environment");
    s_expect(toolong, 2, NULL, "invalid --expires: a lifetime of 91d is "
                               "longer than the maximum of 90d");
    s_expect(badsel, 1, NULL, "invalid label selector");
    /* Built with a higher maximum; agents keep theirs. */
    s_build_with(f, "long", longer);
    s_expect(verify, 1, NULL, "is valid for longer than this host accepts");
    s_expect(verify, 1, NULL, "It is valid for 91d");
    s_expect(inspect, 1, "trusted  no (bundle \"", NULL);
    s_expect(verify100, 0, "channel stable sequence 12; environment "
                           "production, selector tier=canary)", NULL);
    s_expect(inspect100, 0, "channel  stable\nsequence 12\n"
                            "env      production\nselector tier=canary\n",
             NULL);
    s_expect(inspect100, 0, "trusted  yes", NULL);
}

/*
 * Issue 9: text from a bundle reaches the terminal escaped, so a note
 * cannot recolour it, clear it, or hide a line behind a carriage return.
 */
static void
test_cli_bundle_inspect_escapes_control_characters(void **state)
{
    fixture *f = *state;
    static const char note[] = "\x1b[2J\x1b]0;owned\x07ok\rEVIL "
                               "\xe2\x80\xae" "txt.exe";
    fl_test_proc_t r;
    const char *inspect[] = {"flotilla", "bundle", "inspect", f->bundle,
                             "--trust", f->pub, NULL};
    const char *json[] = {"flotilla", "bundle", "inspect", f->bundle,
                          "--json", NULL};
    json_t *o = NULL;

    s_keygen(f->prefix);
    s_build_with(f, note, NULL);
    s_run(&r, inspect);
    assert_int_equal(r.status, 0);
    assert_null(strchr(r.out, '\x1b'));
    assert_null(strchr(r.out, '\r'));
    assert_null(strchr(r.out, '\x07'));
    assert_non_null(strstr(r.out, "note     \\x1b[2J\\x1b]0;owned\\x07ok"
                                  "\\rEVIL \\u202etxt.exe\n"));
    fl_test_proc_release(&r);
    /* JSON escapes them itself, and reads back unchanged. */
    s_run(&r, json);
    assert_int_equal(r.status, 0);
    assert_null(strchr(r.out, '\x1b'));
    assert_null(strstr(r.out, "\xe2\x80\xae"));
    assert_non_null(strstr(r.out, "\\u202E"));
    o = json_loads(r.out, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "note")), note);
    json_decref(o);
    fl_test_proc_release(&r);
}

/*
 * A bundle is built only of migrations its readers accept: a Flyway file
 * or repeatable file named with a control character is refused by bundle
 * build, by the rule apply holds a bundle to (fl_migration_check), its
 * name shown escaped, and no bundle is written.  Before, it was signed
 * and written, and apply refused it ("migration 1 has an invalid file
 * name or name").
 */
static void
test_cli_bundle_build_refuses_names_apply_refuses(void **state)
{
    fixture *f = *state;
    char *tree = fl_asprintf("%s/flyway", f->dir);
    char *v1 = fl_asprintf("%s/V1__a\tb.sql", tree);
    char *ok = fl_asprintf("%s/V1__ok.sql", tree);
    char *r = fl_asprintf("%s/R__v\x01w.sql", tree);
    const char *build[] = {"flotilla", "bundle", "build", "--dir", tree,
                           "--layout", "flyway", "--sign", f->key, "--out",
                           f->bundle, "--environment", "dev", NULL};
    struct stat sb;

    s_keygen(f->prefix);
    assert_int_equal(mkdir(tree, 0755), 0);
    fl_test_write_file(v1, "CREATE TABLE t (id int);\n");
    s_expect(build, 1, NULL, "\"V1__a\\tb.sql\" cannot go into a bundle: "
             "migration 1 has an invalid file name or name");
    assert_int_equal(stat(f->bundle, &sb), -1);
    assert_int_equal(unlink(v1), 0);
    fl_test_write_file(ok, "CREATE TABLE t (id int);\n");
    fl_test_write_file(r, "CREATE OR REPLACE VIEW v AS SELECT 1;\n");
    s_expect(build, 1, NULL, "\"R__v\\x01w.sql\" cannot go into a bundle: "
             "a repeatable migration has an invalid file name or name");
    assert_int_equal(stat(f->bundle, &sb), -1);
    free(tree);
    free(v1);
    free(ok);
    free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_cli_keygen_writes_0600_key_and_refuses_overwrite),
        T(test_cli_bundle_build_verify_inspect_json),
        T(test_cli_bundle_build_never_writes_through_a_link),
        T(test_cli_bundle_verify_refuses_wrong_trust_and_tampering),
        T(test_cli_bundle_reports_source_errors_and_usage),
        T(test_cli_bundle_build_signs_scope_release_and_bounded_lifetime),
        T(test_cli_bundle_inspect_escapes_control_characters),
        T(test_cli_bundle_build_refuses_names_apply_refuses),
#undef T
    };
    return cmocka_run_group_tests_name("cli_bundle", tests, NULL, NULL);
}
