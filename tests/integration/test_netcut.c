/*
 * The network cut at the worst moment (DESIGN.md, guarantees 1 and 2:
 * exactly once, and a pipeline that says what it did).  `flotilla apply`
 * and `flotilla rollback` run through a proxy (tests/support/pgproxy.h)
 * that cuts every connection at the k-th COMMIT the server completes:
 * before the client hears of it (the server committed; the client only
 * knows its connection died) or just after.  Every COMMIT of a run is
 * attacked, both ways, each on a fresh database.  The invariant: what
 * flotilla says (its --json count of migrations applied or rolled back,
 * and its messages) is what the ledger and the schema say; it never says
 * a migration failed or was rolled back when it committed; and a second
 * run without the proxy finishes the work with every statement of every
 * migration run exactly once (each writes a row naming itself into fx,
 * which no migration creates).  A failing case prints k, the side of the
 * cut, and what flotilla printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "pgproxy.h"
#include "testsupport.h"

#define N_MIGRATIONS 3

typedef struct {
    fl_test_ws_t ws;
    fl_test_proxy_t *proxy;
    int signed_bundle;       /* apply a signed bundle of the migrations */
    char *bundle, *pub;
} n_state_t;

static int
n_setup(void **state)
{
    n_state_t *s = fl_calloc(1, sizeof(*s));

    s->proxy = fl_test_proxy_start();
    *state = s;
    return 0;
}

static int
n_teardown(void **state)
{
    n_state_t *s = *state;

    fl_test_proxy_stop(&s->proxy);
    free(s->bundle);
    free(s->pub);
    free(s);
    return 0;
}

/*
 * A fresh workspace: fx, and the migrations, each writing a row naming
 * itself into fx (the second's up and down run without a transaction);
 * and a repeatable one, which writes a row too.
 */
static void
n_open(n_state_t *s)
{
    fl_test_ws_open(&s->ws, "cut");
    fl_test_exec(s->ws.conn, "CREATE TABLE fx (v text)");
    for (int i = 1; i <= N_MIGRATIONS; i++) {
        char name[32];
        /*
         * The second without a transaction, up and down (an index made
         * and dropped concurrently): a COMMIT per statement.
         */
        char *text = fl_asprintf(
            "%s-- flotilla:up\n"
            "CREATE TABLE t%d (id int PRIMARY KEY);\n"
            "%s"
            "INSERT INTO fx VALUES ('up %d');\n"
            "-- flotilla:down\n"
            "%s"
            "DROP TABLE t%d;\n"
            "INSERT INTO fx VALUES ('down %d');\n",
            i == 2 ? "-- flotilla:options no-transaction\n" : "", i,
            i == 2 ? "CREATE INDEX CONCURRENTLY t2_i ON t2 (id);\n" : "", i,
            i == 2 ? "DROP INDEX CONCURRENTLY t2_i;\n" : "", i, i);
        snprintf(name, sizeof(name), "%04d_t%d.sql", i, i);
        fl_test_ws_write(&s->ws, name, text);
        free(text);
    }
    fl_test_ws_write(&s->ws, "R__view.sql",
                     "-- flotilla:up\n"
                     "CREATE OR REPLACE VIEW v AS SELECT 1 AS x;\n"
                     "INSERT INTO fx VALUES ('repeatable');\n");
    if (s->signed_bundle) {
        char *key = fl_asprintf("%s/release", s->ws.dir);
        char *secret = fl_asprintf("%s/release.key", s->ws.dir);
        const char *kg[] = {"flotilla", "keygen", "--out", key, NULL};
        fl_test_proc_t r;

        free(s->bundle);
        free(s->pub);
        s->bundle = fl_asprintf("%s/release.bundle", s->ws.dir);
        s->pub = fl_asprintf("%s/release.pub", s->ws.dir);
        fl_test_run(&r, "flotilla", kg, NULL, 60);
        fl_test_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
        {
            const char *build[] = {"flotilla", "bundle", "build",
                                   s->ws.mdir, "--sign", secret, "--out",
                                   s->bundle, "--environment", "test",
                                   NULL};
            fl_test_run(&r, "flotilla", build, NULL, 60);
            fl_test_expect(&r, 0, NULL);
            fl_test_proc_release(&r);
        }
        free(key);
        free(secret);
    }
}

/* Runs flotilla CMD through the proxy (or not) with --json. */
static void
n_run(n_state_t *s, fl_test_proc_t *res, const char *cmd, int proxied,
      const char *const *extra)
{
    char *conninfo = proxied ? fl_asprintf("%s %s",
                                           fl_test_proxy_conninfo(s->proxy),
                                           s->ws.db.conninfo)
                             : fl_strdup(s->ws.db.conninfo);
    const char *args[12] = {"--json"};
    int n = 1, bundle = s->signed_bundle && strcmp(cmd, "apply") == 0;

    for (int i = 0; extra != NULL && extra[i] != NULL && n < 7; i++)
        args[n++] = extra[i];
    if (bundle) {
        args[n++] = "--trust";
        args[n++] = s->pub;
        args[n++] = "--environment";
        args[n++] = "test";
    }
    args[n] = NULL;
    fl_test_flotilla(res, s->ws.dir, conninfo, NULL, cmd, args,
                     bundle ? s->bundle : s->ws.mdir);
    free(conninfo);
}

static long
n_count(n_state_t *s, const char *sql)
{
    char *v = fl_test_query_value(s->ws.conn, sql);
    long n = v ? strtol(v, NULL, 10) : -1;

    free(v);
    return n;
}

/* Migrations the ledger says applied (0 without a ledger). */
static long
n_applied(n_state_t *s)
{
    return n_count(s, "SELECT CASE WHEN to_regclass('flotilla."
                      "schema_migrations') IS NULL THEN 0 ELSE (SELECT"
                      " count(*) FROM flotilla.schema_migrations WHERE"
                      " status = 'applied') END");
}

/* The JSON field name of the run's output, or -1. */
static long
n_json_count(const fl_test_proc_t *r, const char *name)
{
    json_t *j = json_loads(r->out, 0, NULL);
    long n = -1;

    if (j != NULL && json_is_integer(json_object_get(j, name)))
        n = (long)json_integer_value(json_object_get(j, name));
    json_decref(j);
    return n;
}

/* The run's count of repeatable migrations run, or -1. */
static long
n_json_repeatables_run(const fl_test_proc_t *r)
{
    json_t *j = json_loads(r->out, 0, NULL);
    const json_t *n = json_object_get(json_object_get(j, "repeatables"),
                                      "run");
    long v = json_is_integer(n) ? (long)json_integer_value(n) : -1;

    json_decref(j);
    return v;
}

/* How many COMMITs the server completes in a run of cmd. */
static int
n_commits(n_state_t *s, const char *cmd, const char *const *extra,
          const char *json_count, long want)
{
    fl_test_proc_t r;
    int k;

    fl_test_proxy_arm(s->proxy, "COMMIT", 1 << 30, 0);
    n_run(s, &r, cmd, 1, extra);
    k = fl_test_proxy_count(s->proxy);
    if (r.status != 0 || n_json_count(&r, json_count) != want)
        fail_msg("%s through the proxy, not cut: exit %d\n%s\n%s", cmd,
                 r.status, r.out, r.err);
    fl_test_proc_release(&r);
    return k;
}

static void
n_fail(int k, int before, const char *cmd, const fl_test_proc_t *r,
       const char *what)
{
    /* Printed whole: cmocka cuts a long message. */
    fprintf(stderr, "exit %d\nstdout:\n%s\nstderr:\n%s\n", r->status,
            r->out, r->err);
    fail_msg("cut at COMMIT %d (%s the client heard of it), %s: %s", k,
             before ? "before" : "after", cmd, what);
}

/*
 * When the run's error detail says "WHAT N of" (a migration part done),
 * N must be the ledger's count (sql): checked, else a failure.
 */
static void
n_expect_partly(n_state_t *s, const fl_test_proc_t *r, const char *what,
                const char *sql, int k, int before, const char *cmd)
{
    json_t *j = json_loads(r->out, 0, NULL);
    const char *d = json_string_value(json_object_get(
        json_object_get(j, "error"), "detail"));
    const char *at = d ? strstr(d, what) : NULL;

    if (at != NULL) {
        long said = strtol(at + strlen(what), NULL, 10);
        long ledger = n_count(s, sql);

        if (said != ledger) {
            char *msg = fl_asprintf("it says %s%ld of, the ledger %ld",
                                    what, said, ledger);
            n_fail(k, before, cmd, r, msg);
        }
    }
    json_decref(j);
}

/* fx holds each up (and, with downs, each down) exactly once. */
static void
n_expect_once(n_state_t *s, int downs, int k, int before,
              const fl_test_proc_t *r)
{
    if (n_count(s, "SELECT count(*) FROM fx WHERE v = 'repeatable'") != 1)
        n_fail(k, before, "the second run", r, "the repeatable migration "
               "did not run exactly once");
    for (int i = 1; i <= N_MIGRATIONS; i++)
        for (int d = 0; d <= downs; d++) {
            char *sql = fl_asprintf("SELECT count(*) FROM fx WHERE v ="
                                    " '%s %d'", d ? "down" : "up", i);
            long n = n_count(s, sql);
            free(sql);
            if (n != 1) {
                char *what = fl_asprintf("after the second run, %s of "
                                         "migration %d ran %ld times",
                                         d ? "down" : "up", i, n);
                n_fail(k, before, "the second run", r, what);
            }
        }
}

/*
 * apply, cut at every COMMIT in turn: its count of migrations applied is
 * the ledger's, a migration it calls failed is not applied, and the next
 * apply finishes with every up run once.
 */
static void
n_apply_cut(n_state_t *s)
{
    int commits;

    n_open(s);
    commits = n_commits(s, "apply", NULL, "applied", N_MIGRATIONS);
    fl_test_ws_close(&s->ws);
    for (int k = 1; k <= commits; k++)
        for (int before = 1; before >= 0; before--) {
            fl_test_proc_t r, again;
            long said, ledger;

            n_open(s);
            fl_test_proxy_arm(s->proxy, "COMMIT", k, before);
            n_run(s, &r, "apply", 1, NULL);
            if (!fl_test_proxy_cut(s->proxy))
                n_fail(k, before, "apply", &r, "the cut never came");
            said = n_json_count(&r, "applied");
            ledger = n_applied(s);
            if (said != ledger) {
                char *what = fl_asprintf("it says %ld applied, the ledger "
                                         "%ld", said, ledger);
                n_fail(k, before, "apply", &r, what);
            }
            if (r.status == 0 && ledger != N_MIGRATIONS)
                n_fail(k, before, "apply", &r, "exit 0 with migrations "
                       "not applied");
            said = n_json_repeatables_run(&r);
            ledger = n_count(s, "SELECT CASE WHEN to_regclass('flotilla."
                                "repeatable_migrations') IS NULL THEN 0 ELSE"
                                " (SELECT count(*) FROM flotilla."
                                "repeatable_migrations WHERE status ="
                                " 'applied') END");
            if (said != ledger) {
                char *what = fl_asprintf("it says %ld repeatable run, the "
                                         "ledger %ld", said, ledger);
                n_fail(k, before, "apply", &r, what);
            }
            if (ledger > 0 && strstr(r.err, "was rolled back") != NULL &&
                strstr(r.err, "nothing was applied") == NULL) {
                /* "failed and was rolled back" must name an unapplied one */
                char *sql = fl_asprintf("SELECT count(*) FROM "
                                        "flotilla.schema_migrations WHERE "
                                        "status = 'applied' AND version = "
                                        "'%ld'", ledger + 1);
                if (n_count(s, sql) != 0)
                    n_fail(k, before, "apply", &r, "a migration it calls "
                           "rolled back is applied");
                free(sql);
            }
            n_expect_partly(s, &r, "partly applied: ",
                            "SELECT max(statements_done) FROM"
                            " flotilla.schema_migrations WHERE status IN"
                            " ('running', 'failed')", k, before, "apply");
            n_run(s, &again, "apply", 0, NULL);
            if (again.status != 0 || n_applied(s) != N_MIGRATIONS)
                n_fail(k, before, "the second apply", &again,
                       "it did not finish the work");
            n_expect_once(s, 0, k, before, &again);
            fl_test_proc_release(&again);
            fl_test_proc_release(&r);
            fl_test_ws_close(&s->ws);
        }
}

static void
test_apply_says_what_committed_when_the_network_is_cut(void **state)
{
    n_apply_cut(*state);
}

/*
 * The same from a signed bundle: its last migration's COMMIT also marks
 * the release (a COMMIT of its own, after the ledger row and the mark).
 */
static void
test_apply_of_a_bundle_says_what_committed_when_the_network_is_cut(
    void **state)
{
    n_state_t *s = *state;

    s->signed_bundle = 1;
    n_apply_cut(s);
}

/* Migrations the ledger says rolled back. */
static long
n_rolled_back(n_state_t *s)
{
    return n_count(s, "SELECT count(*) FROM flotilla.schema_migrations"
                      " WHERE status = 'rolled_back'");
}

/*
 * rollback --to 0 of the three, cut at every COMMIT in turn: its count of
 * migrations rolled back is the ledger's, and the next rollback finishes
 * with every down run once (and every up once, by the apply before).
 */
static void
test_rollback_says_what_committed_when_the_network_is_cut(void **state)
{
    n_state_t *s = *state;
    const char *const to0[] = {"--to", "0", NULL};
    fl_test_proc_t r;
    int commits;

    n_open(s);
    n_run(s, &r, "apply", 0, NULL);
    fl_test_proc_release(&r);
    commits = n_commits(s, "rollback", to0, "rolled_back", N_MIGRATIONS);
    fl_test_ws_close(&s->ws);
    for (int k = 1; k <= commits; k++)
        for (int before = 1; before >= 0; before--) {
            fl_test_proc_t again;
            long said, ledger;

            n_open(s);
            n_run(s, &r, "apply", 0, NULL);
            if (r.status != 0)
                n_fail(k, before, "apply", &r, "it did not apply");
            fl_test_proc_release(&r);
            fl_test_proxy_arm(s->proxy, "COMMIT", k, before);
            n_run(s, &r, "rollback", 1, to0);
            if (!fl_test_proxy_cut(s->proxy))
                n_fail(k, before, "rollback", &r, "the cut never came");
            said = n_json_count(&r, "rolled_back");
            ledger = n_rolled_back(s);
            if (said != ledger) {
                char *what = fl_asprintf("it says %ld rolled back, the "
                                         "ledger %ld", said, ledger);
                n_fail(k, before, "rollback", &r, what);
            }
            if (r.status == 0 && ledger != N_MIGRATIONS)
                n_fail(k, before, "rollback", &r, "exit 0 with migrations "
                       "not rolled back");
            n_expect_partly(s, &r, "partly rolled back: ",
                            "SELECT max(down_done) FROM"
                            " flotilla.schema_migrations WHERE status ="
                            " 'rolling_back'", k, before, "rollback");
            n_run(s, &again, "rollback", 0, to0);
            if (again.status != 0 || n_rolled_back(s) != N_MIGRATIONS)
                n_fail(k, before, "the second rollback", &again,
                       "it did not finish the work");
            n_expect_once(s, 1, k, before, &again);
            fl_test_proc_release(&again);
            fl_test_proc_release(&r);
            fl_test_ws_close(&s->ws);
        }
}

/*
 * The same cut before the first migration's COMMIT is heard of, the
 * server then out of reach: apply cannot learn whether it committed,
 * and says exactly that (never "failed and was rolled back"), pointing
 * at `flotilla status`, which reads the ledger once the server is back.
 */
static void
test_apply_in_doubt_says_so(void **state)
{
    n_state_t *s = *state;
    fl_test_proc_t r, st;
    json_t *j = NULL;
    const char *detail = NULL;

    n_open(s);
    /* Commits 1 to 3 make the ledger; the fourth is the first migration's
     * (test_apply_says_what_committed_when_the_network_is_cut). */
    fl_test_proxy_arm(s->proxy, "COMMIT", 4, 1);
    fl_test_proxy_refuse_after_cut(s->proxy, 1);
    n_run(s, &r, "apply", 1, NULL);
    fl_test_proxy_refuse_after_cut(s->proxy, 0);
    assert_true(fl_test_proxy_cut(s->proxy));
    fl_test_expect(&r, 1, "0001_t1.sql may or may not be applied");
    assert_null(strstr(r.err, "rolled back"));
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    detail = json_string_value(json_object_get(json_object_get(j, "error"),
                                               "detail"));
    if (detail == NULL || strstr(detail, "could not be learnt") == NULL)
        fail_msg("detail: %s", detail ? detail : "(none)");
    json_decref(j);
    fl_test_proc_release(&r);
    assert_int_equal(n_applied(s), 1);
    n_run(s, &st, "status", 0, NULL);
    j = json_loads(st.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_array_get(
                            json_object_get(j, "migrations"), 0), "status")),
                        "applied");
    json_decref(j);
    fl_test_proc_release(&st);
    n_run(s, &r, "apply", 0, NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(n_applied(s), N_MIGRATIONS);
    n_expect_once(s, 0, 4, 1, &r);
    fl_test_proc_release(&r);
    fl_test_ws_close(&s->ws);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_apply_says_what_committed_when_the_network_is_cut, n_setup,
            n_teardown),
        cmocka_unit_test_setup_teardown(
            test_apply_of_a_bundle_says_what_committed_when_the_network_is_cut,
            n_setup, n_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollback_says_what_committed_when_the_network_is_cut,
            n_setup, n_teardown),
        cmocka_unit_test_setup_teardown(test_apply_in_doubt_says_so, n_setup,
                                        n_teardown),
    };

    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("netcut", tests, NULL, NULL);
}
