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

/* rollback --to 0: every migration. */
static const char *const n_to0[] = {"--to", "0", NULL};

typedef struct {
    fl_test_ws_t ws;
    fl_test_proxy_t *proxy;
    int signed_bundle;       /* apply a signed bundle of the migrations */
    int repeatable;          /* the workspace has R__view.sql */
    const char *schema;      /* a schema target (--schema), or NULL */
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
    s->repeatable = 1;
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
    const char *args[14] = {"--json"};
    int n = 1, bundle = s->signed_bundle && strcmp(cmd, "apply") == 0;

    for (int i = 0; extra != NULL && extra[i] != NULL && n < 7; i++)
        args[n++] = extra[i];
    if (s->schema != NULL) {
        args[n++] = "--schema";
        args[n++] = s->schema;
    }
    if (bundle) {
        args[n++] = "--trust";
        args[n++] = s->pub;
        args[n++] = "--environment";
        args[n++] = "test";
    }
    args[n] = NULL;
    /* --skip-down runs no down: it takes no source. */
    fl_test_flotilla(res, s->ws.dir, conninfo, NULL, cmd, args,
                     bundle                                 ? s->bundle
                     : extra && strcmp(extra[0], "--skip-down") == 0
                         ? NULL
                         : s->ws.mdir);
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

/*
 * Rows of ledger table (schema_migrations, repeatable_migrations) whose
 * status is status; 0 when the table is not there (a cut before the run
 * made the ledger).
 */
static long
n_ledger_count(n_state_t *s, const char *table, const char *status)
{
    char *sql = fl_asprintf("SELECT count(*) FROM pg_tables WHERE schemaname"
                            " = 'flotilla' AND tablename = '%s'", table);
    long n = n_count(s, sql);

    free(sql);
    if (n == 0)
        return 0;
    sql = fl_asprintf("SELECT count(*) FROM flotilla.%s WHERE status = '%s'",
                      table, status);
    n = n_count(s, sql);
    free(sql);
    return n;
}

/* Migrations the ledger says applied (0 without a ledger). */
static long
n_applied(n_state_t *s)
{
    return n_ledger_count(s, "schema_migrations", "applied");
}

/*
 * The JSON field name of the run's output (0 in the error object of a run
 * that could not start), or -1.
 */
static long
n_json_count(const fl_test_proc_t *r, const char *name)
{
    json_t *j = json_loads(r->out, 0, NULL);
    long n = -1;

    if (j != NULL && json_is_integer(json_object_get(j, name)))
        n = (long)json_integer_value(json_object_get(j, name));
    /* Failed before it could run (no pipeline): it did nothing. */
    else if (j != NULL && json_is_false(json_object_get(j, "ok")) &&
             json_object_get(j, "error") != NULL &&
             json_object_get(j, name) == NULL)
        n = 0;
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

/* The generative tests' seed being run (0: a test of every COMMIT). */
static int n_seed;
/* What a test of every point cuts at: "COMMIT", "round trip", ... */
static const char *n_point = "COMMIT";

/*
 * Fails the test: cmd, cut at point k (the k-th COMMIT, or the k-th round
 * trip in the generative tests; 0: not cut) before or after the client
 * heard of it, did what.  r's output is printed whole first (cmocka cuts a long
 * message).
 */
static void
n_fail(int k, int before, const char *cmd, const fl_test_proc_t *r,
       const char *what)
{
    fprintf(stderr, "exit %d\nstdout:\n%s\nstderr:\n%s\n", r->status,
            r->out, r->err);
    if (n_seed > 0)
        fail_msg("seed %d: %s cut at round trip %d (%s the client heard of "
                 "it): %s (FLOTILLA_NETCUT_SEED=%d runs it alone)", n_seed,
                 cmd, k, before ? "before" : "after", what, n_seed);
    if (k == 0)
        fail_msg("%s, not cut: %s", cmd, what);
    fail_msg("%s cut at %s %d (%s the client heard of it): %s", cmd,
             n_point, k, before ? "before" : "after", what);
}

/*
 * How many statements of the second migration's up (down) have taken
 * effect, read from the schema and fx, not from the ledger: a statement
 * that cannot share a transaction with its progress row (CREATE INDEX
 * CONCURRENTLY) commits before its row does, and flotilla, which saw it
 * end, may rightly count it when the ledger does not yet.
 */
#define N_UP2_DONE                                                          \
    "SELECT (to_regclass('t2') IS NOT NULL)::int"                           \
    " + (to_regclass('t2_i') IS NOT NULL)::int"                             \
    " + (SELECT count(*) FROM fx WHERE v = 'up 2')::int"
#define N_DOWN2_DONE                                                        \
    "SELECT (to_regclass('t2_i') IS NULL)::int"                             \
    " + (to_regclass('t2') IS NULL)::int"                                   \
    " + (SELECT count(*) FROM fx WHERE v = 'down 2')::int"
#define G_UP2_DONE                                                          \
    "SELECT (to_regclass('items_v') IS NOT NULL)::int"                      \
    " + (SELECT count(*) FROM fx WHERE v = 'up 2')::int"
#define G_DOWN2_DONE                                                        \
    "SELECT (to_regclass('items_v') IS NULL)::int"                          \
    " + (SELECT count(*) FROM fx WHERE v = 'down 2')::int"

/*
 * When the run's error detail says "WHAT N of" (a migration part done),
 * N must be what sql counts, or one less when the detail says the next
 * statement, which ran outside a transaction as the connection was lost,
 * "may have taken effect": checked, else a failure.
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

        /* The next statement may have run when the run says it may. */
        if (said != ledger &&
            !(ledger == said + 1 && strstr(d, "may have taken effect"))) {
            char *msg = fl_asprintf("it says %s%ld of, but %ld took "
                                    "effect", what, said, ledger);
            n_fail(k, before, cmd, r, msg);
        }
    }
    json_decref(j);
}

/* For a failure after the runs' output was released. */
static const fl_test_proc_t n_no_output = {0, (char *)"", (char *)""};

/* fx holds each up (and, with downs, each down) exactly once. */
static void
n_expect_once(n_state_t *s, int downs, int k, int before)
{
    const fl_test_proc_t *r = &n_no_output;

    if (s->repeatable &&
        n_count(s, "SELECT count(*) FROM fx WHERE v = 'repeatable'") != 1)
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

/* Migrations the ledger says rolled back. */
static long
n_rolled_back(n_state_t *s)
{
    return n_ledger_count(s, "schema_migrations", "rolled_back");
}

/* Repeatable migrations the ledger says ran (0 without a ledger). */
static long
n_repeatables_applied(n_state_t *s)
{
    return n_ledger_count(s, "repeatable_migrations", "applied");
}

/*
 * A migration the run says "failed and was rolled back" is not applied
 * (its version is the number its file's name begins with).
 */
static void
n_expect_rolled_back_true(n_state_t *s, const fl_test_proc_t *r, int k,
                          int before, const char *cmd)
{
    static const char said[] = " failed and was rolled back";

    for (const char *at = strstr(r->err, said); at != NULL;
         at = strstr(at + 1, said)) {
        const char *name = at;
        char *sql = NULL;

        while (name > r->err && name[-1] != '"' && name[-1] != ' ')
            name--;
        sql = fl_asprintf("SELECT count(*) FROM flotilla.schema_migrations"
                          " WHERE status = 'applied' AND version = '%ld'",
                          strtol(name, NULL, 10));
        if (n_count(s, sql) != 0)
            n_fail(k, before, cmd, r, "a migration it calls rolled back is "
                   "applied");
        free(sql);
    }
}

/*
 * What the run's events say committed anyway (or may have), its error
 * says too, in its detail: an agent's result carries the error alone, so
 * a fleet target that failed so would otherwise read "lost the
 * connection" with nothing about what committed.
 */
static void
n_expect_error_says(const fl_test_proc_t *r, int k, int before,
                    const char *cmd)
{
    static const char *const said[][2] = {
        {" is applied (its COMMIT ran", " is applied: its COMMIT ran"},
        {" is rolled back (its COMMIT ran", " is rolled back: its COMMIT ran"},
        {" may or may not be applied:", " may or may not be applied:"},
    };
    json_t *j = json_loads(r->out, 0, NULL);
    const char *detail = json_string_value(json_object_get(
        json_object_get(j, "error"), "detail"));

    for (size_t w = 0; w < sizeof(said) / sizeof(said[0]); w++)
        for (const char *at = strstr(r->err, said[w][0]); at != NULL;
             at = strstr(at + 1, said[w][0])) {
            const char *name = at;
            char *want = NULL;

            while (name > r->err && name[-1] != '"' && name[-1] != ' ')
                name--;
            want = fl_asprintf("%.*s%s", (int)(at - name), name, said[w][1]);
            if (detail == NULL || strstr(detail, want) == NULL)
                n_fail(k, before, cmd, r, "its error's detail does not say "
                       "what its events say committed");
            free(want);
        }
    json_decref(j);
}

/* One command of a cut: what it counts, how to check it. */
typedef struct {
    const char *cmd;
    const char *const *extra;
    const char *count;            /* the --json count */
    long (*ledger)(n_state_t *s); /* the same, from the ledger */
    const char *partly;           /* "partly applied: " */
    const char *done_sql;         /* statements of 0002 that took effect */
} n_phase_t;

static const n_phase_t n_fixed_apply = {"apply", NULL, "applied", n_applied,
                                        "partly applied: ", N_UP2_DONE};
static const n_phase_t n_fixed_rollback = {"rollback", n_to0, "rolled_back",
                                           n_rolled_back,
                                           "partly rolled back: ",
                                           N_DOWN2_DONE};
static const n_phase_t n_phase_apply = {"apply", NULL, "applied",
                                        n_applied, "partly applied: ",
                                        G_UP2_DONE};
static const n_phase_t n_phase_rollback = {"rollback", n_to0,
                                           "rolled_back", n_rolled_back,
                                           "partly rolled back: ",
                                           G_DOWN2_DONE};

/*
 * Runs ph through the proxy cut at the k-th CommandComplete tagged tag
 * ("": the k-th round trip), before or after the client hears of it
 * (must_cut: the cut must come); checks what it says against the ledger
 * and the schema (its count, exit 0 only with the work done, the
 * repeatable migrations it ran, what it calls rolled back, what it says
 * committed in part); runs it again without the proxy, which must finish
 * the work.
 */
static void
n_cut_run(n_state_t *s, const n_phase_t *ph, const char *tag, int k,
          int before, int must_cut)
{
    fl_test_proc_t r, again;
    long said, ledger;

    fl_test_proxy_arm(s->proxy, tag, k, before);
    n_run(s, &r, ph->cmd, 1, ph->extra);
    if (must_cut && !fl_test_proxy_cut(s->proxy))
        n_fail(k, before, ph->cmd, &r, "the cut never came");
    said = n_json_count(&r, ph->count);
    ledger = ph->ledger(s);
    if (said != ledger) {
        char *what = fl_asprintf("it says %ld %s, the ledger %ld", said,
                                 ph->count, ledger);
        n_fail(k, before, ph->cmd, &r, what);
    }
    if (r.status == 0 && ledger != N_MIGRATIONS)
        n_fail(k, before, ph->cmd, &r, "exit 0 with the work not done");
    if (s->repeatable && strcmp(ph->cmd, "apply") == 0 &&
        (said = n_json_repeatables_run(&r)) != n_repeatables_applied(s)) {
        char *what = fl_asprintf("it says %ld repeatable run, the ledger "
                                 "%ld", said, n_repeatables_applied(s));
        n_fail(k, before, ph->cmd, &r, what);
    }
    n_expect_rolled_back_true(s, &r, k, before, ph->cmd);
    n_expect_error_says(&r, k, before, ph->cmd);
    n_expect_partly(s, &r, ph->partly, ph->done_sql, k, before, ph->cmd);
    n_run(s, &again, ph->cmd, 0, ph->extra);
    if (again.status != 0 || ph->ledger(s) != N_MIGRATIONS)
        n_fail(k, before, ph->cmd, &again, "the second run did not finish "
               "the work");
    fl_test_proc_release(&again);
    fl_test_proc_release(&r);
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
            n_open(s);
            n_cut_run(s, &n_fixed_apply, "COMMIT", k, before, 1);
            n_expect_once(s, 0, k, before);
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

/*
 * rollback --to 0 of the three, cut at every COMMIT in turn: its count of
 * migrations rolled back is the ledger's, and the next rollback finishes
 * with every down run once (and every up once, by the apply before).
 */
static void
test_rollback_says_what_committed_when_the_network_is_cut(void **state)
{
    n_state_t *s = *state;
    fl_test_proc_t r;
    int commits;

    n_open(s);
    n_run(s, &r, "apply", 0, NULL);
    fl_test_proc_release(&r);
    commits = n_commits(s, "rollback", n_to0, "rolled_back", N_MIGRATIONS);
    fl_test_ws_close(&s->ws);
    for (int k = 1; k <= commits; k++)
        for (int before = 1; before >= 0; before--) {
            n_open(s);
            n_run(s, &r, "apply", 0, NULL);
            if (r.status != 0)
                n_fail(k, before, "apply", &r, "it did not apply");
            fl_test_proc_release(&r);
            n_cut_run(s, &n_fixed_rollback, "COMMIT", k, before, 1);
            n_expect_once(s, 1, k, before);
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
    n_expect_once(s, 0, 4, 1);
    fl_test_proc_release(&r);
    fl_test_ws_close(&s->ws);
}

/*
 * The generative attack: a history that also backs up and restores data
 * (an UPDATE of ten rows and a DROP COLUMN, whose rollback puts them
 * back), cut at a random ReadyForQuery (the end of any round trip) of a
 * plan, of the apply and of the rollback --to 0, before or after the
 * client hears of it.  The plan must change nothing.  Each seed: the counts apply and rollback give are the
 * ledger's; second runs finish the work; every statement of every
 * migration, up and down, ran once; and the database is as it was
 * before, by the canonical dump of schema and data (fx aside).
 *
 *   FLOTILLA_NETCUT_SEEDS=N   seeds 1..N (default 12: CI time; 16 before
 *                             the 25th session)
 *   FLOTILLA_NETCUT_SEED=N    only seed N
 */
static void
n_open_gen(n_state_t *s)
{
    fl_test_ws_open(&s->ws, "cutg");
    s->repeatable = 0;
    /* A schema target: everything in it; the test's reads find it too. */
    if (s->schema != NULL) {
        char *sql = fl_asprintf("CREATE SCHEMA %s; SET search_path = %s",
                                s->schema, s->schema);
        fl_test_exec(s->ws.conn, sql);
        free(sql);
    }
    fl_test_exec(s->ws.conn,
                 "CREATE TABLE fx (v text);"
                 "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL,"
                 " note text);"
                 "INSERT INTO items SELECT g, g * 10, 'note ' || g"
                 " FROM generate_series(1, 20) g");
    fl_test_ws_write(&s->ws, "0001_t1.sql",
                     "-- flotilla:up\n"
                     "CREATE TABLE t1 (id int PRIMARY KEY);\n"
                     "INSERT INTO fx VALUES ('up 1');\n"
                     "-- flotilla:down\n"
                     "DROP TABLE t1;\n"
                     "INSERT INTO fx VALUES ('down 1');\n");
    fl_test_ws_write(&s->ws, "0002_index.sql",
                     "-- flotilla:options no-transaction\n"
                     "-- flotilla:up\n"
                     "CREATE INDEX CONCURRENTLY items_v ON items (v);\n"
                     "INSERT INTO fx VALUES ('up 2');\n"
                     "-- flotilla:down\n"
                     "DROP INDEX CONCURRENTLY items_v;\n"
                     "INSERT INTO fx VALUES ('down 2');\n");
    fl_test_ws_write(&s->ws, "0003_data.sql",
                     "-- flotilla:options allow=ban-drop-column the test's\n"
                     "-- flotilla:up\n"
                     "UPDATE items SET v = v + 1 WHERE id <= 10;\n"
                     "ALTER TABLE items DROP COLUMN note;\n"
                     "INSERT INTO fx VALUES ('up 3');\n"
                     "-- flotilla:down\n"
                     "ALTER TABLE items ADD COLUMN note text;\n"
                     "INSERT INTO fx VALUES ('down 3');\n");
}

/* Round trips of an uncut run of cmd, which exits want (the cut's range). */
static int
n_round_trips(n_state_t *s, const char *cmd, const char *const *extra,
              int want)
{
    fl_test_proc_t r;
    int n;

    fl_test_proxy_arm(s->proxy, "", 1 << 30, 0);
    n_run(s, &r, cmd, 1, extra);
    n = fl_test_proxy_count(s->proxy);
    if (r.status != want)
        fail_msg("%s through the proxy, not cut: exit %d\n%s\n%s", cmd,
                 r.status, r.out, r.err);
    fl_test_proc_release(&r);
    return n;
}

/* A random cut of ph for the seed's rng (rounds: its range). */
static void
n_gen_phase(n_state_t *s, uint64_t *rng, const n_phase_t *ph, int rounds)
{
    int k = 1 + (int)(fl_test_rng_next(rng) % (uint64_t)rounds);
    int before = (int)(fl_test_rng_next(rng) % 2);

    n_cut_run(s, ph, "", k, before, 0);
}

/*
 * plan, cut at a random round trip of kp: it changes nothing, cut or
 * not (no ledger, the same canonical dump as dump0).
 */
static void
n_gen_plan(n_state_t *s, uint64_t *rng, int kp, const char *dump0)
{
    int k = 1 + (int)(fl_test_rng_next(rng) % (uint64_t)kp);
    int before = (int)(fl_test_rng_next(rng) % 2);
    fl_test_proc_t r;
    char *dump = NULL;

    fl_test_proxy_arm(s->proxy, "", k, before);
    n_run(s, &r, "plan", 1, NULL);
    if (n_count(s, "SELECT count(*) FROM pg_namespace WHERE nspname IN"
                   " ('flotilla', 'flotilla_backup')") != 0)
        n_fail(k, before, "plan", &r, "it left a ledger");
    dump = fl_test_canonical_dump_full(s->ws.conn);
    if (strcmp(dump, dump0) != 0)
        n_fail(k, before, "plan", &r, "it changed the database");
    free(dump);
    fl_test_proc_release(&r);
}

static void
n_cut_anywhere(n_state_t *s)
{
    const char *one = getenv("FLOTILLA_NETCUT_SEED");
    const char *many = getenv("FLOTILLA_NETCUT_SEEDS");
    int first = one ? (int)strtol(one, NULL, 10) : 1;
    int last = one ? first : many ? (int)strtol(many, NULL, 10) : 12;
    int kp, ka, kb;

    n_open_gen(s);
    /* Exit 3: the migration without a transaction is not proven. */
    kp = n_round_trips(s, "plan", NULL, 3);
    ka = n_round_trips(s, "apply", NULL, 0);
    kb = n_round_trips(s, "rollback", n_to0, 0);
    fl_test_ws_close(&s->ws);
    for (int seed = first; seed <= last; seed++) {
        uint64_t rng = (uint64_t)seed;
        char *dump0 = NULL, *dump1 = NULL;

        n_seed = seed;
        n_open_gen(s);
        dump0 = fl_test_canonical_dump_full(s->ws.conn);
        n_gen_plan(s, &rng, kp, dump0);
        n_gen_phase(s, &rng, &n_phase_apply, ka);
        n_gen_phase(s, &rng, &n_phase_rollback, kb);
        n_expect_once(s, 1, 0, 0);
        fl_test_exec(s->ws.conn, "DELETE FROM fx");
        dump1 = fl_test_canonical_dump_full(s->ws.conn);
        if (strcmp(dump0, dump1) != 0) {
            fprintf(stderr, "before:\n%s\nafter:\n%s\n", dump0, dump1);
            n_fail(0, 0, "the whole seed", &n_no_output, "the database is "
                   "not as it was");
        }
        free(dump0);
        free(dump1);
        fl_test_ws_close(&s->ws);
    }
    n_seed = 0;
}

static void
test_a_cut_anywhere_loses_nothing_and_says_what_it_did(void **state)
{
    n_cut_anywhere(*state);
}

/* The same on a schema target (a tenant's schema, `--schema`). */
static void
test_a_cut_anywhere_in_a_schema_target(void **state)
{
    n_state_t *s = *state;

    s->schema = "tenant_s";
    n_cut_anywhere(s);
}

/* Rolls the gen workspace back to 0 directly; wants it as dump0 was. */
static void
n_rollback_to_dump(n_state_t *s, const char *dump0)
{
    fl_test_proc_t r;
    char *dump1 = NULL;

    n_run(s, &r, "rollback", 0, n_to0);
    if (r.status != 0 || n_rolled_back(s) != N_MIGRATIONS)
        n_fail(0, 0, "rollback", &r, "the rollback did not finish");
    fl_test_exec(s->ws.conn, "DELETE FROM fx");
    dump1 = fl_test_canonical_dump_full(s->ws.conn);
    if (strcmp(dump0, dump1) != 0) {
        fprintf(stderr, "before:\n%s\nafter:\n%s\n", dump0, dump1);
        n_fail(0, 0, "rollback", &r, "the database is not as it was");
    }
    free(dump1);
    fl_test_proc_release(&r);
}

/*
 * A run cut off just after its CREATE INDEX CONCURRENTLY ended, before
 * the statement's progress row: the index is there and the ledger row
 * (written before the statement) says it is not done.  The next apply
 * counts the index as done (an interrupted run built it), but its
 * snapshot before the migration already held it: the
 * migration's changes are not recorded (the rollback says it cannot
 * prove the schema) rather than recorded without the index, which made
 * every rollback of it fail its proof for ever ("1 object differs";
 * found by seed 35 of the test above).
 */
static void
test_an_index_a_cut_off_run_built_does_not_block_the_rollback(void **state)
{
    n_state_t *s = *state;
    const char *const to1[] = {"--to", "1", NULL};
    fl_test_proc_t r;
    char *dump0 = NULL;
    int n = 1;

    /*
     * flotilla's own statements end "CREATE INDEX" too (its snapshot's
     * temporary tables): the cut is moved on until it lands just after
     * the migration's, the index there and no ledger row for it.
     */
    for (;; n++) {
        long idx, rows;

        if (n > 20)
            fail_msg("no cut at a CREATE INDEX left the migration's index "
                     "with its ledger row saying it is not done");
        n_open_gen(s);
        dump0 = fl_test_canonical_dump_full(s->ws.conn);
        n_run(s, &r, "apply", 0, to1);
        assert_int_equal(r.status, 0);
        fl_test_proc_release(&r);
        fl_test_proxy_arm(s->proxy, "CREATE INDEX", n, 0);
        n_run(s, &r, "apply", 1, NULL);
        fl_test_proc_release(&r);
        idx = n_count(s, "SELECT count(*) FROM pg_class WHERE relname ="
                         " 'items_v'");
        rows = n_count(s, "SELECT count(*) FROM flotilla.schema_migrations"
                          " WHERE version = '2' AND statements_done = 0");
        if (fl_test_proxy_cut(s->proxy) && idx == 1 && rows == 1)
            break;
        free(dump0);
        fl_test_ws_close(&s->ws);
    }
    n_run(s, &r, "apply", 0, NULL);
    fl_test_expect(&r, 0, "an index it builds was there before this run's "
                          "snapshot");
    fl_test_proc_release(&r);
    n_rollback_to_dump(s, dump0);
    free(dump0);
    fl_test_ws_close(&s->ws);
}

/*
 * A rollback cut off as its DROP INDEX CONCURRENTLY ended, before the
 * client heard of it: the index is gone, and the run, which cannot know
 * that, says the statement may have taken effect (it said "0 of 2 down
 * statements committed" and no more; found by seed 66 above).  The next
 * rollback finishes it.
 */
static void
test_a_statement_cut_off_outside_a_transaction_may_have_run(void **state)
{
    n_state_t *s = *state;
    fl_test_proc_t r;
    json_t *j = NULL;
    const char *d = NULL;
    char *dump0 = NULL;

    n_open_gen(s);
    dump0 = fl_test_canonical_dump_full(s->ws.conn);
    n_run(s, &r, "apply", 0, NULL);
    assert_int_equal(r.status, 0);
    fl_test_proc_release(&r);
    fl_test_proxy_arm(s->proxy, "DROP INDEX", 1, 1);
    n_run(s, &r, "rollback", 1, n_to0);
    assert_true(fl_test_proxy_cut(s->proxy));
    j = json_loads(r.out, 0, NULL);
    d = json_string_value(json_object_get(json_object_get(j, "error"),
                                          "detail"));
    if (d == NULL || strstr(d, "partly rolled back: 0 of 2") == NULL ||
        strstr(d, "Statement 1 (0002_index.sql:6) ran outside a "
                  "transaction when the connection was lost: it may have "
                  "taken effect.") == NULL)
        n_fail(1, 1, "rollback", &r, "the detail does not say "
                   "statement 1 may have run");
    json_decref(j);
    fl_test_proc_release(&r);
    assert_int_equal(n_count(s, "SELECT count(*) FROM pg_class WHERE"
                                " relname = 'items_v'"), 0);
    n_rollback_to_dump(s, dump0);
    free(dump0);
    fl_test_ws_close(&s->ws);
}

/*
 * baseline --to 3 (recording the three as applied without running them:
 * adopting a database another tool migrated, here the workspace migrated
 * and its ledger dropped), cut at every round trip in turn, both sides:
 * its --json count of migrations baselined is the ledger's, a second run
 * finishes the work, and nothing ran (fx as the migrations left it).
 */
static const char *const n_to3[] = {"--to", "3", NULL};
static const n_phase_t n_phase_baseline = {"baseline", n_to3, "baselined",
                                           n_applied, "partly baselined: ",
                                           N_UP2_DONE};

/* A workspace migrated by "another tool": fx's rows, or -1. */
static long
n_open_migrated(n_state_t *s)
{
    fl_test_proc_t r;

    n_open(s);
    n_run(s, &r, "apply", 0, NULL);
    if (r.status != 0)
        fail_msg("apply: exit %d\n%s\n%s", r.status, r.out, r.err);
    fl_test_proc_release(&r);
    fl_test_exec(s->ws.conn, "SET client_min_messages = warning;"
                             "DROP SCHEMA flotilla CASCADE;"
                             "DROP SCHEMA IF EXISTS flotilla_backup CASCADE");
    return n_count(s, "SELECT count(*) FROM fx");
}

static void
test_baseline_says_what_it_recorded_when_the_network_is_cut(void **state)
{
    n_state_t *s = *state;
    int trips;

    n_open_migrated(s);
    trips = n_round_trips(s, "baseline", n_to3, 0);
    fl_test_ws_close(&s->ws);
    n_point = "round trip";
    for (int k = 1; k <= trips; k++)
        for (int before = 1; before >= 0; before--) {
            long ran = n_open_migrated(s);

            n_cut_run(s, &n_phase_baseline, "", k, before, 1);
            if (n_count(s, "SELECT count(*) FROM fx") != ran)
                fail_msg("baseline cut at round trip %d ran a migration", k);
            fl_test_ws_close(&s->ws);
        }
    n_point = "COMMIT";
    /* Cut as each COMMIT's answer comes: the one of the rows says so. */
    n_open_migrated(s);
    trips = n_commits(s, "baseline", n_to3, "baselined", N_MIGRATIONS);
    fl_test_ws_close(&s->ws);
    for (int k = 1; k <= trips; k++) {
        fl_test_proc_t r;
        json_t *j = NULL;
        const char *detail = NULL;

        n_open_migrated(s);
        fl_test_proxy_arm(s->proxy, "COMMIT", k, 1);
        n_run(s, &r, "baseline", 1, n_to3);
        j = json_loads(r.out, 0, NULL);
        detail = json_string_value(json_object_get(
            json_object_get(j, "error"), "detail"));
        if (r.status != 0 && n_applied(s) == N_MIGRATIONS &&
            (detail == NULL ||
             strstr(detail, "are recorded as applied: the COMMIT ran") ==
                 NULL))
            n_fail(k, 1, "baseline", &r, "its error does not say the "
                   "migrations it recorded are recorded");
        json_decref(j);
        fl_test_proc_release(&r);
        fl_test_ws_close(&s->ws);
    }
}

/*
 * rollback --skip-down 3 (the operator's way out: migration 3 marked
 * rolled back without running its down, one UPDATE of its ledger row),
 * cut at every UPDATE the server completes, before and after the client
 * hears of it: its --json "rolled_back" (1 or 0) is what the ledger says,
 * its exit status agrees, and running it again leaves it rolled back.
 * Before, a cut as the UPDATE's answer came said 0, exit 1, while the
 * row was marked.
 */
static void
test_skip_down_says_what_it_marked_when_the_network_is_cut(void **state)
{
    n_state_t *s = *state;
    static const char *const skip[] = {"--skip-down", "3", "--reason",
                                       "cut", NULL};
    fl_test_proc_t r;
    int updates;

    n_open(s);
    n_run(s, &r, "apply", 0, NULL);
    fl_test_proc_release(&r);
    fl_test_proxy_arm(s->proxy, "UPDATE 1", 1 << 30, 0);
    n_run(s, &r, "rollback", 1, skip);
    updates = fl_test_proxy_count(s->proxy);
    fl_test_proc_release(&r);
    fl_test_ws_close(&s->ws);
    n_point = "UPDATE";
    for (int k = 1; k <= updates; k++)
        for (int before = 1; before >= 0; before--) {
            json_t *j = NULL;
            long marked;
            int said;

            n_open(s);
            n_run(s, &r, "apply", 0, NULL);
            fl_test_proc_release(&r);
            fl_test_proxy_arm(s->proxy, "UPDATE 1", k, before);
            n_run(s, &r, "rollback", 1, skip);
            if (!fl_test_proxy_cut(s->proxy))
                n_fail(k, before, "rollback --skip-down", &r, "the cut "
                       "never came");
            j = json_loads(r.out, 0, NULL);
            /* A count, as rollback's: 1 or 0. */
            said = json_integer_value(json_object_get(j, "rolled_back")) ==
                   1;
            json_decref(j);
            marked = n_count(s, "SELECT count(*) FROM"
                             " flotilla.schema_migrations WHERE version ="
                             " '3' AND status = 'rolled_back'");
            if (said != (marked == 1))
                n_fail(k, before, "rollback --skip-down", &r, "what it "
                       "says is not what the ledger says");
            if ((r.status == 0) != said)
                n_fail(k, before, "rollback --skip-down", &r, "its exit "
                       "status and its rolled_back disagree");
            fl_test_proc_release(&r);
            n_run(s, &r, "rollback", 0, skip);
            fl_test_proc_release(&r);
            if (n_count(s, "SELECT count(*) FROM flotilla.schema_migrations"
                        " WHERE version = '3' AND status = 'rolled_back'") !=
                1)
                fail_msg("skip-down cut at UPDATE %d: not rolled back after "
                         "a second run", k);
            fl_test_ws_close(&s->ws);
        }
    n_point = "COMMIT";
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
        cmocka_unit_test_setup_teardown(
            test_a_cut_anywhere_loses_nothing_and_says_what_it_did, n_setup,
            n_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_cut_anywhere_in_a_schema_target, n_setup, n_teardown),
        cmocka_unit_test_setup_teardown(
            test_an_index_a_cut_off_run_built_does_not_block_the_rollback,
            n_setup, n_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_statement_cut_off_outside_a_transaction_may_have_run,
            n_setup, n_teardown),
        cmocka_unit_test_setup_teardown(
            test_baseline_says_what_it_recorded_when_the_network_is_cut,
            n_setup, n_teardown),
        cmocka_unit_test_setup_teardown(
            test_skip_down_says_what_it_marked_when_the_network_is_cut,
            n_setup, n_teardown),
    };

    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("netcut", tests, NULL, NULL);
}
