/*
 * A generative test of the promise that each migration runs under the
 * settings it would have alone under psql (docs/pipeline.md, "The
 * session"): what one migration SETs (search_path, work_mem, the role,
 * the session authorization, the date and number formats, RESET ALL,
 * SET LOCAL, set_config()) holds for its later statements, in one
 * transaction or statement by statement (and when flotilla runs a
 * transaction again because a DO block deleted rows no backup covered),
 * never for the next migration,
 * and a migration without a transaction resumed after a failure sees, in
 * the statements after the resume point, what one run would have shown
 * them.
 *
 * Each seed makes (for the database, or one seed in three for schema
 * app as a target) 2 to 4 migrations of random settings and probes (a
 * probe records the settings its statement sees), some of them without a
 * transaction, one with a gate that fails until it is opened, and their
 * downs the same way (a down runs statement by statement when it has a
 * VACUUM).  Flotilla applies them to one database
 * (stopping at the gate), the gate opens, and it applies the rest; then
 * it rolls them all back the same way.  The oracle runs the same
 * statements on a twin database the way psql would, each migration and
 * each down on a new connection: in one transaction, or each statement
 * alone.  The seed passes when the two databases recorded the same
 * probes; and `flotilla plan` before, which must say OK (or NOT PROVEN
 * when a migration runs without a transaction) and leave nothing behind.
 *
 *   FLOTILLA_GEN_SEEDS=N   how many seeds (1..N; default 12)
 *   FLOTILLA_GEN_SEED=N    only seed N
 */
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
#include "testsupport.h"

#define G_MAX_MIGS 4
#define G_MAX_STMTS 12

typedef struct {
    uint64_t s;
    int nmigs;
    int notx[G_MAX_MIGS];
    int nstmts[G_MAX_MIGS];
    char *stmts[G_MAX_MIGS][G_MAX_STMTS];
    /* Its down: run statement by statement when down_notx (it starts
     * with a VACUUM), else in one transaction. */
    int down_notx[G_MAX_MIGS];
    int ndown[G_MAX_MIGS];
    char *down[G_MAX_MIGS][G_MAX_STMTS];
    int schema;   /* the target is schema app (--schema), not the database */
} g_gen_t;

static int
g_range(g_gen_t *g, int lo, int hi)
{
    return lo + (int)(fl_test_rng_next(&g->s) % (uint64_t)(hi - lo + 1));
}

/* What a probe records: every setting a migration may change here. */
#define G_PROBE                                                             \
    "INSERT INTO public.seen VALUES (%d, %d,"                               \
    " current_setting('search_path'), current_setting('work_mem'),"        \
    " current_user::text, session_user::text,"                              \
    " current_setting('TimeZone'), current_setting('DateStyle'),"           \
    " current_setting('IntervalStyle'),"                                    \
    " current_setting('extra_float_digits'),"                               \
    " current_setting('bytea_output'), current_setting('enable_seqscan'),"  \
    " current_setting('standard_conforming_strings'),"                      \
    " current_setting('client_encoding'),"                                  \
    " current_setting('transaction_isolation'))"

/* The gates: fail until a row is in public.gate (dgate for downs). */
#define G_GATE "SELECT 1 / (SELECT count(*)::int FROM public.gate)"
#define G_DGATE "SELECT 1 / (SELECT count(*)::int FROM public.dgate)"
/* Makes a down run statement by statement (as the owner: first). */
#define G_NOTX "VACUUM public.dgate"

/* A random statement that changes a setting (tx: in a transaction). */
static char *
g_setting(g_gen_t *g)
{
    int kb = 64 * g_range(g, 1, 64);

    switch (g_range(g, 0, 23)) {
    case 21: return fl_strdup("SET standard_conforming_strings = off");
    case 22: return fl_strdup("SET client_encoding = 'LATIN1'");
    case 23:
        /*
         * Not default_transaction_isolation any more: flotilla runs every
         * transaction at read committed, so that a backup taken once a
         * lock is held sees every row the statement changes (docs/
         * pipeline.md, "The session"); a migration's later statement
         * without a transaction would see repeatable read under psql.
         */
        return fl_strdup("SET array_nulls = off");
    case 20:
        /*
         * Not a setting: rows deleted where no backup was taken (the
         * analyser cannot see into DO), which makes flotilla run the
         * transaction again, from the settings it started with, with the
         * table backed up first.
         */
        return fl_asprintf("DO $$ BEGIN DELETE FROM public.victim WHERE id"
                           " = %d; END $$", g_range(g, 1, 50));
    case 0: return fl_strdup("SET search_path = app, public");
    case 1: return fl_strdup("SET LOCAL search_path = other, public");
    case 2: return fl_strdup("RESET search_path");
    case 3: return fl_asprintf("SET work_mem = '%dkB'", kb);
    case 4: return fl_asprintf("SET LOCAL work_mem = '%dkB'", kb);
    case 5:
        return fl_asprintf("SELECT pg_catalog.set_config('work_mem', '%dkB',"
                           " false)", kb);
    case 6:
        return fl_asprintf("SELECT set_config('work_mem', '%dkB', true)", kb);
    case 7:
        return fl_strdup("SELECT pg_catalog.set_config('search_path',"
                         " 'other, public', false)");
    case 8: return fl_strdup("SET ROLE fl_gen_app");
    case 9: return fl_strdup("RESET ROLE");
    case 10: return fl_strdup("SET SESSION AUTHORIZATION fl_gen_app");
    case 11: return fl_strdup("RESET SESSION AUTHORIZATION");
    case 12: return fl_strdup("RESET ALL");
    case 13: return fl_strdup("SET TIME ZONE 'Asia/Tokyo'");
    case 14: return fl_strdup("SET DateStyle = 'SQL, DMY'");
    case 15: return fl_strdup("SET IntervalStyle = 'iso_8601'");
    case 16: return fl_strdup("SET extra_float_digits = 3");
    case 17: return fl_strdup("SET bytea_output = 'escape'");
    case 18: return fl_strdup("SET enable_seqscan = off");
    default: return fl_strdup("SET LOCAL enable_seqscan = off");
    }
}

static void
g_make(g_gen_t *g)
{
    int gated = g_range(g, 0, 3); /* a migration with the gate, or none */

    g->nmigs = g_range(g, 2, G_MAX_MIGS);
    for (int m = 0; m < g->nmigs; m++) {
        int n = g_range(g, 3, G_MAX_STMTS - 2), k = 0, probes = 0;

        g->notx[m] = g_range(g, 0, 1);
        for (int i = 0; i < n; i++) {
            if (g_range(g, 0, 2) == 0)
                g->stmts[m][k++] = fl_asprintf(G_PROBE, m + 1, probes++);
            else
                g->stmts[m][k++] = g_setting(g);
            if (m == gated && i == n / 2)
                g->stmts[m][k++] = fl_strdup(G_GATE);
        }
        /* Every migration ends with a probe: what its settings came to. */
        g->stmts[m][k++] = fl_asprintf(G_PROBE, m + 1, probes++);
        g->nstmts[m] = k;
    }
    /* Downs, probing as migration -(m + 1); one may have a gate. */
    gated = g_range(g, 0, 2 * g->nmigs);
    for (int m = 0; m < g->nmigs; m++) {
        int n = g_range(g, 1, G_MAX_STMTS - 4), k = 0, probes = 0;

        g->down_notx[m] = g->notx[m] && g_range(g, 0, 2) > 0;
        if (g->down_notx[m])
            g->down[m][k++] = fl_strdup(G_NOTX);
        for (int i = 0; i < n; i++) {
            if (g_range(g, 0, 2) == 0)
                g->down[m][k++] = fl_asprintf(G_PROBE, -(m + 1), probes++);
            else
                g->down[m][k++] = g_setting(g);
            if (m == gated && i == n / 2)
                g->down[m][k++] = fl_strdup(G_DGATE);
        }
        g->down[m][k++] = fl_asprintf(G_PROBE, -(m + 1), probes++);
        g->ndown[m] = k;
    }
}

static void
g_release(g_gen_t *g)
{
    for (int m = 0; m < g->nmigs; m++) {
        for (int i = 0; i < g->nstmts[m]; i++)
            free(g->stmts[m][i]);
        for (int i = 0; i < g->ndown[m]; i++)
            free(g->down[m][i]);
    }
}

static void
g_setup(PGconn *c)
{
    fl_test_exec(c,
        "CREATE SCHEMA app; CREATE SCHEMA other;"
        "CREATE TABLE public.gate (id int); CREATE TABLE public.dgate (id int);"
        "CREATE TABLE public.victim (id int PRIMARY KEY);"
        "INSERT INTO public.victim SELECT generate_series(1, 50);"
        "GRANT SELECT, DELETE ON public.victim TO fl_gen_app;"
        "CREATE TABLE public.seen (mig int, probe int, search_path text,"
        " work_mem text, cur text, sess text, tz text, ds text, istyle text,"
        " efd text, bytea text, seqscan text, scs text, enc text, iso text);"
        "GRANT USAGE ON SCHEMA app, other TO fl_gen_app;"
        "GRANT INSERT ON public.seen TO fl_gen_app;"
        "GRANT SELECT ON public.gate, public.dgate TO fl_gen_app");
}

static const char g_seen[] =
    "SELECT coalesce(string_agg(concat_ws(' | ', mig, probe, search_path,"
    " work_mem, cur, sess, tz, ds, istyle, efd, bytea, seqscan, scs, enc,"
    " iso), E'\\n'"
    " ORDER BY mig, probe), '') FROM public.seen";

/* Statements as psql runs a file: on a new connection, -1 unless notx. */
static void
g_psql(fl_test_db_t *db, char *const *stmts, int n, int notx, int mig,
       int schema)
{
    PGconn *c = fl_test_db_connect(db);

    /*
     * A schema target's migrations start with its schema first (set as
     * flotilla sets it: SET would print it app, not "app"), a whole
     * database's with public.
     */
    if (schema)
        fl_test_exec(c, "SELECT set_config('search_path', '\"app\", public',"
                        " false)");
    else /* a whole database's: public alone (no "$user") */
        fl_test_exec(c, "SELECT set_config('search_path', 'public', false)");
    if (!notx)
        fl_test_exec(c, "BEGIN");
    for (int i = 0; i < n; i++) {
        PGresult *r = PQexec(c, stmts[i]);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            fail_msg("oracle, migration %d statement %d (%s): %s", mig,
                     i + 1, stmts[i], PQerrorMessage(c));
        PQclear(r);
    }
    if (!notx)
        fl_test_exec(c, "COMMIT");
    PQfinish(c);
}

/* The migrations as psql runs them, then their downs, newest first. */
static char *
g_oracle(const g_gen_t *g, fl_test_db_t *db)
{
    PGconn *c = fl_test_db_connect(db);
    char *seen = NULL;

    g_setup(c);
    fl_test_exec(c, "INSERT INTO public.gate VALUES (1);"
                    "INSERT INTO public.dgate VALUES (1)");
    PQfinish(c);
    for (int m = 0; m < g->nmigs; m++)
        g_psql(db, g->stmts[m], g->nstmts[m], g->notx[m], m + 1, g->schema);
    for (int m = g->nmigs - 1; m >= 0; m--)
        g_psql(db, g->down[m], g->ndown[m], g->down_notx[m], -(m + 1),
               g->schema);
    c = fl_test_db_connect(db);
    seen = fl_test_query_value(c, g_seen);
    PQfinish(c);
    return seen;
}

/* The same by flotilla apply, in two runs around the gate. */
static char *
g_flotilla(const g_gen_t *g, fl_test_ws_t *ws, fl_buf_t *log)
{
    fl_test_proc_t r;
    const char *const extra[] = {"--allow-lint-errors",
                                 g->schema ? "--schema" : NULL, "app", NULL};

    g_setup(ws->conn);
    for (int m = 0; m < g->nmigs; m++) {
        fl_buf_t text = FL_BUF_INIT(0);
        char file[32];

        fl_buf_adds(&text, g->notx[m]
                               ? "-- flotilla:options no-transaction\n" : "");
        fl_buf_adds(&text, "-- flotilla:up\n");
        for (int i = 0; i < g->nstmts[m]; i++)
            fl_buf_addf(&text, "%s;\n", g->stmts[m][i]);
        fl_buf_adds(&text, "-- flotilla:down\n");
        for (int i = 0; i < g->ndown[m]; i++)
            fl_buf_addf(&text, "%s;\n", g->down[m][i]);
        snprintf(file, sizeof(file), "%04d_m%d.sql", m + 1, m + 1);
        fl_test_ws_write(ws, file, fl_buf_str(&text));
        fl_buf_addf(log, "--- %s:\n%s", file, fl_buf_str(&text));
        fl_buf_release(&text);
    }
    /*
     * The plan first, with the gates open: it rehearses what it can (not
     * what runs without a transaction: NOT PROVEN, exit 3) and leaves
     * nothing behind.
     */
    fl_test_exec(ws->conn, "INSERT INTO public.gate VALUES (1);"
                           "INSERT INTO public.dgate VALUES (1)");
    fl_test_ws_flotilla(ws, &r, "plan", extra, 1);
    fl_buf_addf(log, "--- plan: exit %d\n%s%s", r.status, r.out, r.err);
    {
        int notx = 0;
        char *left = NULL;
        for (int m = 0; m < g->nmigs; m++)
            notx |= g->notx[m];
        left = fl_test_query_value(ws->conn,
            "SELECT (SELECT count(*) FROM public.seen) || ' '"
            " || (SELECT count(*) FROM public.victim)");
        if (r.status != (notx ? 3 : 0) ||
            (notx && strstr(r.out, "NOT PROVEN") == NULL) ||
            strcmp(left, "0 50") != 0) {
            fprintf(stderr, "%s", fl_buf_str(log));
            fail_msg("plan: exit %d, probes and rows left %s (above)",
                     r.status, left);
        }
        free(left);
    }
    fl_test_proc_release(&r);
    fl_test_exec(ws->conn, "DELETE FROM public.gate; DELETE FROM public.dgate");
    for (int run = 0; run < 4; run++) {
        const char *const rb[] = {"--to", "0", "--allow-lint-errors",
                                  g->schema ? "--schema" : NULL, "app",
                                  NULL};
        fl_test_ws_flotilla(ws, &r, run < 2 ? "apply" : "rollback",
                            run < 2 ? extra : rb, 1);
        fl_buf_addf(log, "--- %s %d: exit %d\n%s%s", run < 2 ? "apply"
                    : "rollback", run % 2 + 1, r.status, r.out, r.err);
        if (r.status != 0 && (run % 2 == 1 || r.status != 1 ||
                              strstr(r.err, "division by zero") == NULL)) {
            fprintf(stderr, "%s", fl_buf_str(log));
            fail_msg("run %d: exit %d (above)", run + 1, r.status);
        }
        fl_test_proc_release(&r);
        if (run % 2 == 0)
            fl_test_exec(ws->conn, run == 0
                                       ? "INSERT INTO public.gate VALUES (1)"
                                       : "INSERT INTO public.dgate VALUES (1)");
    }
    return fl_test_query_value(ws->conn, g_seen);
}

static void
test_generated_settings_hold_as_under_psql(void **state)
{
    long only = fl_test_env_long("FLOTILLA_GEN_SEED", 0);
    long nseeds = fl_test_env_long("FLOTILLA_GEN_SEEDS", 12);
    long first = only ? only : 1, last = only ? only : nseeds;
    int failed = 0, gated = 0, dgated = 0;

    (void)state;
    fl_test_create_role("fl_gen_app");
    for (long seed = first; seed <= last; seed++) {
        g_gen_t g;
        fl_test_ws_t ws;
        fl_test_db_t twin;
        fl_buf_t log = FL_BUF_INIT(0);
        char *want = NULL, *got = NULL;

        memset(&g, 0, sizeof(g));
        g.s = (uint64_t)seed * 7919;
        g.schema = seed % 3 == 0;
        g_make(&g);
        fl_test_ws_open(&ws, "gset");
        fl_test_db_create(&twin, "gsettwin");
        want = g_oracle(&g, &twin);
        got = g_flotilla(&g, &ws, &log);
        gated += strstr(fl_buf_str(&log), "apply 1: exit 1") != NULL;
        dgated += strstr(fl_buf_str(&log), "rollback 1: exit 1") != NULL;
        if (strcmp(want, got) != 0 || only) {
            char *diff = fl_test_diff(want, got);
            fprintf(stderr, "=== seed %ld (FLOTILLA_GEN_SEED=%ld runs it "
                    "alone)\n%s--- probes, psql (-) and flotilla (+):\n%s\n",
                    seed, seed, fl_buf_str(&log), diff);
            free(diff);
            failed += strcmp(want, got) != 0;
        }
        fprintf(stderr, "=== seed %ld: %d migrations%s, %s\n", seed, g.nmigs,
                g.schema ? " (schema target)" : "",
                strcmp(want, got) == 0 ? "the same probes" : "FAILED");
        free(want);
        free(got);
        fl_buf_release(&log);
        fl_test_db_drop(&twin);
        fl_test_ws_close(&ws);
        g_release(&g);
    }
    fprintf(stderr, "=== %ld seeds, %d failed; %d applies and %d rollbacks "
                    "stopped at their gate and resumed\n", last - first + 1,
            failed, gated, dgated);
    if (failed > 0)
        fail_msg("%d of %ld seeds failed (listed above); FLOTILLA_GEN_SEED=N"
                 " runs seed N alone", failed, last - first + 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_settings_hold_as_under_psql),
    };
    return cmocka_run_group_tests_name("settings_gen", tests, NULL, NULL);
}
