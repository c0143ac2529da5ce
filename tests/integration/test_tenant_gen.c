/*
 * A generative test of guarantee 6 of DESIGN.md against a hostile tenant:
 * flotilla runs no code of the tenant's that psql running the same
 * migration would not run.
 *
 * Each seed makes a tenant (not a superuser, owner of its database) who
 * plants, at random, functions and operators shadowing the built-ins
 * flotilla's own SQL uses, triggers of every timing and event marked
 * ENABLE, ENABLE ALWAYS or ENABLE REPLICA, rules with the same marks, a
 * row security policy (FORCE or not), a CHECK constraint, an expression
 * index, a domain column and a column default: each calls the tenant's
 * trap, which records what called it and as whom.  Then a migration of 1
 * to 4 statements (about one in three without a transaction, its unique
 * index built CONCURRENTLY) drawn from what platform teams run on such a
 * table (UPDATE, DELETE, INSERT, ADD COLUMN with a default, a unique
 * index of an expression, a CHECK, a type change, a new table, a
 * search_path the tenant can reach first).
 *
 * The oracle runs the migration as psql -1 would (without -1 for one
 * without a transaction, stopping at the first error), as the same
 * superuser, on a twin database.  The seed passes when `flotilla plan`
 * left no call behind, `flotilla apply` left the same calls (what and as
 * whom) as psql, or both refused it and left none; and when `flotilla
 * rollback` put the table back as it was, with the calls psql running
 * the down makes, none of the migration's left, and none but those a
 * restore's inserts make by design (a CHECK, an index expression, a
 * domain, a default: docs/SECURITY.md), never a trigger, a rule, a
 * policy or a shadow; or refused with nothing changed.
 *
 *   FLOTILLA_GEN_SEEDS=N   how many seeds (1..N; default 16)
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

#define G_MAX_STMTS 4

typedef struct {
    uint64_t s;
    fl_buf_t plant;                  /* the tenant's objects, as fl_tenant */
    int nstmts;
    char *up[G_MAX_STMTS];
    char *down[G_MAX_STMTS];         /* run newest first */
    int has_norm, has_chk;
    int notx;                        /* -- flotilla:options no-transaction */
} g_gen_t;

static int
g_range(g_gen_t *g, int lo, int hi)
{
    return lo + (int)(fl_test_rng_next(&g->s) % (uint64_t)(hi - lo + 1));
}

static int
g_chance(g_gen_t *g, int percent)
{
    return g_range(g, 1, 100) <= percent;
}

/* What every database starts with: the trap and the tenant's table. */
static const char g_base[] =
    /* Keyed: a rollback removes exactly the rows the migration's own
     * triggers added, never one of the down's that looks the same. */
    "CREATE TABLE public.side_effects (id bigserial PRIMARY KEY, what text,"
    " who text, tag uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid());"
    "GRANT INSERT ON public.side_effects TO PUBLIC;"
    "GRANT USAGE ON SEQUENCE public.side_effects_id_seq TO PUBLIC;"
    "SET ROLE fl_tenant;"
    "CREATE FUNCTION public.trap(what text) RETURNS void LANGUAGE plpgsql"
    " AS $$BEGIN INSERT INTO public.side_effects (what, who) VALUES (what,"
    " current_user); END$$;"
    "CREATE TABLE public.items (id int PRIMARY KEY, v text, n int);"
    "INSERT INTO public.items SELECT g, 'v' || g, g"
    " FROM generate_series(1, 30) g;"
    "RESET ROLE;";

/* Shadows of built-ins flotilla's SQL calls, each a trap. */
static const char *const g_shadows[] = {
    "CREATE FUNCTION public.hashtext(t text) RETURNS int LANGUAGE plpgsql"
    " AS $$BEGIN PERFORM public.trap('shadow hashtext'); RETURN 1; END$$;",
    "CREATE FUNCTION public.format(f text, a text) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('shadow format');"
    " RETURN f; END$$;",
    "CREATE FUNCTION public.quote_ident(n name) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('shadow quote_ident');"
    " RETURN n; END$$;",
    "CREATE FUNCTION public.current_setting(t text) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap("
    "'shadow current_setting'); RETURN ''; END$$;",
    "CREATE FUNCTION public.name_eq(a name, b name) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('shadow = name');"
    " RETURN a OPERATOR(pg_catalog.=) b; END$$;"
    "CREATE OPERATOR public.= (leftarg = name, rightarg = name,"
    " function = public.name_eq);",
    "CREATE FUNCTION public.oid_eq(a oid, b oid) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('shadow = oid');"
    " RETURN a OPERATOR(pg_catalog.=) b; END$$;"
    "CREATE OPERATOR public.= (leftarg = oid, rightarg = oid,"
    " function = public.oid_eq);",
    "CREATE FUNCTION public.count_trap(s bigint, v anyelement) RETURNS bigint"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('shadow count');"
    " RETURN s + 1; END$$;"
    "CREATE AGGREGATE public.count(anyelement) (sfunc = public.count_trap,"
    " stype = bigint, initcond = '0');",
};

static const char *const g_marks[] = {"", "ALWAYS ", "REPLICA "};

static void
g_plant(g_gen_t *g)
{
    fl_buf_t *b = &g->plant;
    size_t nshadows = sizeof(g_shadows) / sizeof(g_shadows[0]);

    fl_buf_adds(b, "SET ROLE fl_tenant;");
    for (size_t i = 0; i < nshadows; i++)
        if (g_chance(g, 40))
            fl_buf_adds(b, g_shadows[i]);
    for (int i = 0, n = g_range(g, 0, 3); i < n; i++) {
        int before = g_chance(g, 50), row = g_chance(g, 70);
        const char *ev = (const char *[]){"INSERT", "UPDATE", "DELETE",
                                          "INSERT OR UPDATE OR DELETE"}
                                              [g_range(g, 0, 3)];
        fl_buf_addf(b,
            "CREATE FUNCTION public.trg%d() RETURNS trigger LANGUAGE plpgsql"
            " AS $$BEGIN PERFORM public.trap('trigger %d');"
            " IF TG_LEVEL = 'ROW' AND TG_OP = 'DELETE' THEN RETURN OLD; END IF;"
            " IF TG_LEVEL = 'ROW' THEN RETURN NEW; END IF; RETURN NULL;"
            " END$$;"
            "CREATE TRIGGER trg%d %s %s ON public.items FOR EACH %s"
            " EXECUTE FUNCTION public.trg%d();"
            "ALTER TABLE public.items ENABLE %sTRIGGER trg%d;",
            i, i, i, before ? "BEFORE" : "AFTER", ev, row ? "ROW" : "STATEMENT",
            i, g_marks[g_range(g, 0, 2)], i);
    }
    if (g_chance(g, 30))
        fl_buf_addf(b, "CREATE RULE rul AS ON %s TO public.items DO ALSO"
                       " SELECT public.trap('rule');"
                       "ALTER TABLE public.items ENABLE %sRULE rul;",
                    (const char *[]){"INSERT", "UPDATE", "DELETE"}
                        [g_range(g, 0, 2)], g_marks[g_range(g, 0, 2)]);
    if (g_chance(g, 30))
        fl_buf_addf(b, "CREATE FUNCTION public.pol(id int) RETURNS boolean"
                       " LANGUAGE plpgsql AS $$BEGIN"
                       " PERFORM public.trap('policy'); RETURN true; END$$;"
                       "ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;"
                       "%s"
                       "CREATE POLICY p ON public.items USING (public.pol(id));",
                    g_chance(g, 50) ? "ALTER TABLE public.items FORCE ROW"
                                      " LEVEL SECURITY;" : "");
    if (g_chance(g, 30))
        fl_buf_adds(b, "CREATE FUNCTION public.chk(n int) RETURNS boolean"
                       " LANGUAGE plpgsql IMMUTABLE AS $$BEGIN"
                       " PERFORM public.trap('check'); RETURN true; END$$;"
                       "ALTER TABLE public.items ADD CONSTRAINT items_chk"
                       " CHECK (public.chk(n));");
    g->has_norm = g_chance(g, 40);
    if (g->has_norm)
        fl_buf_adds(b, "CREATE FUNCTION public.norm(t text) RETURNS text"
                       " LANGUAGE plpgsql IMMUTABLE AS $$BEGIN"
                       " PERFORM public.trap('index'); RETURN"
                       " pg_catalog.lower(t); END$$;");
    if (g->has_norm && g_chance(g, 50))
        fl_buf_adds(b, "CREATE INDEX items_norm ON public.items"
                       " (public.norm(v));");
    if (g_chance(g, 25))
        fl_buf_adds(b, "CREATE FUNCTION public.dom(n int) RETURNS boolean"
                       " LANGUAGE plpgsql IMMUTABLE AS $$BEGIN"
                       " PERFORM public.trap('domain'); RETURN true; END$$;"
                       "CREATE DOMAIN public.posint AS int"
                       " CHECK (public.dom(VALUE));"
                       "ALTER TABLE public.items ADD COLUMN d public.posint"
                       " DEFAULT 1;");
    if (g_chance(g, 25))
        fl_buf_adds(b, "CREATE FUNCTION public.def() RETURNS int"
                       " LANGUAGE plpgsql AS $$BEGIN"
                       " PERFORM public.trap('default'); RETURN 7; END$$;"
                       "ALTER TABLE public.items ALTER COLUMN n"
                       " SET DEFAULT public.def();");
    g->has_chk = g_chance(g, 30);
    if (g->has_chk)
        fl_buf_adds(b, "CREATE FUNCTION public.chk2(n int) RETURNS boolean"
                       " LANGUAGE plpgsql IMMUTABLE AS $$BEGIN"
                       " PERFORM public.trap('check'); RETURN n > -1; END$$;");
    fl_buf_adds(b, "RESET ROLE; TRUNCATE public.side_effects;"
                   "ALTER SEQUENCE public.side_effects_id_seq RESTART;");
}

/* Statement i of the migration, and its down. */
static void
g_statement(g_gen_t *g, int i)
{
    int k = g_range(g, 1, 30);

    switch (g_range(g, 0, 13)) {
    case 10:
        g->up[i] = fl_asprintf("ALTER TABLE public.items RENAME COLUMN v TO"
                               " w%d", i);
        g->down[i] = fl_asprintf("ALTER TABLE public.items RENAME COLUMN w%d"
                                 " TO v", i);
        break;
    case 11:
        g->up[i] = fl_strdup("ALTER TABLE public.items DROP COLUMN n");
        g->down[i] = fl_strdup("ALTER TABLE public.items ADD COLUMN n int");
        break;
    case 12:
        g->up[i] = fl_strdup("ALTER TABLE public.items ALTER COLUMN n"
                             " SET NOT NULL");
        g->down[i] = fl_strdup("ALTER TABLE public.items ALTER COLUMN n"
                               " DROP NOT NULL");
        break;
    case 13:
        g->up[i] = fl_asprintf("CREATE INDEX %sx%d ON public.items (n)",
                               g->notx ? "CONCURRENTLY " : "", i);
        g->down[i] = fl_asprintf("DROP INDEX IF EXISTS public.x%d", i);
        break;
    case 0:
        g->up[i] = fl_asprintf("UPDATE public.items SET v = v || 'x' WHERE"
                               " id <= %d", k);
        break;
    case 1:
        g->up[i] = fl_asprintf("DELETE FROM public.items WHERE id > %d", k);
        break;
    case 2:
        g->up[i] = fl_asprintf("INSERT INTO public.items (id, v) VALUES"
                               " (%d, 'new')", 100 + i);
        g->down[i] = fl_asprintf("DELETE FROM public.items WHERE id = %d",
                                 100 + i);
        break;
    case 3:
        g->up[i] = fl_asprintf("ALTER TABLE public.items ADD COLUMN c%d int"
                               " NOT NULL DEFAULT %d", i, k);
        g->down[i] = fl_asprintf("ALTER TABLE public.items DROP COLUMN c%d",
                                 i);
        break;
    case 4:
        g->up[i] = fl_asprintf("CREATE UNIQUE INDEX %su%d ON public.items"
                               " (%s)%s", g->notx ? "CONCURRENTLY " : "", i,
                               g->has_norm ? "public.norm(v)" : "lower(v)",
                               g_chance(g, 50) ? " WHERE id > 3" : "");
        g->down[i] = fl_asprintf("DROP INDEX IF EXISTS public.u%d", i);
        break;
    case 5:
        g->up[i] = fl_asprintf("ALTER TABLE public.items ADD CONSTRAINT k%d"
                               " CHECK (%s)", i, g->has_chk
                                                     ? "public.chk2(id)"
                                                     : "id > -1");
        g->down[i] = fl_asprintf("ALTER TABLE public.items DROP CONSTRAINT"
                                 " IF EXISTS k%d", i);
        break;
    case 6:
        g->up[i] = fl_strdup("ALTER TABLE public.items ALTER COLUMN v TYPE"
                             " varchar(200)");
        g->down[i] = fl_strdup("ALTER TABLE public.items ALTER COLUMN v TYPE"
                               " text");
        break;
    case 7:
        g->up[i] = fl_asprintf("CREATE TABLE public.t%d AS SELECT id, v FROM"
                               " public.items WHERE id <= %d", i, k);
        g->down[i] = fl_asprintf("DROP TABLE public.t%d", i);
        break;
    case 8:
        /* What the tenant put in public now comes first for names. */
        g->up[i] = fl_strdup("SET search_path = public, pg_catalog");
        break;
    default:
        g->up[i] = fl_asprintf("UPDATE public.items SET n = n + 1 WHERE"
                               " v IS NOT NULL AND id %% 3 = %d", k % 3);
        break;
    }
    if (g->down[i] == NULL)
        g->down[i] = fl_strdup("SELECT 1");
}

static void
g_make(g_gen_t *g)
{
    g_plant(g);
    g->notx = g_chance(g, 30);
    g->nstmts = g_range(g, 1, G_MAX_STMTS);
    for (int i = 0; i < g->nstmts; i++)
        g_statement(g, i);
}

static void
g_release(g_gen_t *g)
{
    fl_buf_release(&g->plant);
    for (int i = 0; i < g->nstmts; i++) {
        free(g->up[i]);
        free(g->down[i]);
    }
}

/* Sets a database up as the tenant's, with the seed's plantings. */
static void
g_setup(const g_gen_t *g, fl_test_db_t *db, PGconn *c)
{
    char *sql = fl_asprintf("ALTER DATABASE %s OWNER TO fl_tenant", db->name);

    fl_test_exec(c, sql);
    free(sql);
    fl_test_exec(c, g_base);
    fl_test_exec(c, fl_buf_str(&g->plant));
}

/*
 * The calls recorded so far, one line each: what, who, how many; with
 * restore_kinds 1, leaving out the kinds a restore's inserts may call
 * (G_RESTORE_KINDS).
 */
#define G_RESTORE_KINDS "('check', 'index', 'domain', 'default')"

static char *
g_calls(PGconn *c, int restore_kinds, int only_new)
{
    char *sql = fl_asprintf(
        "SELECT coalesce(string_agg(x.what || ' as ' || x.who || ' x' || x.n,"
        " E'\\n' ORDER BY x.what, x.who), '') FROM (SELECT what, who,"
        " count(*) AS n FROM public.side_effects WHERE true%s%s"
        " GROUP BY 1, 2) x",
        only_new ? " AND tag NOT IN (SELECT tag FROM pg_temp.g_before)" : "",
        restore_kinds ? " AND what NOT IN " G_RESTORE_KINDS : "");
    char *v = fl_test_query_value(c, sql);

    free(sql);
    return v;
}

/*
 * Remembers (in c's session) the calls recorded so far, by their tags:
 * ids may come again, since a rollback sets the sequence back.
 */
static void
g_mark(PGconn *c)
{
    fl_test_exec(c, "DROP TABLE IF EXISTS pg_temp.g_before;"
                    "CREATE TEMPORARY TABLE g_before AS SELECT tag FROM"
                    " public.side_effects");
}

/* The table's rows, each with its columns by name (a column re-added by
 * down may sit at a new position). */
static const char g_rows[] =
    "SELECT md5(coalesce(string_agg(pg_catalog.to_jsonb(t)::text, ','"
    " ORDER BY t.id), '')) FROM public.items t";

/*
 * Statements as psql runs a file, on the migration's search_path and a
 * new connection: with -1 (in one transaction) unless notx, then each
 * alone as ON_ERROR_STOP stops at the first failure; newest first when
 * reverse.  1 when every one ran.
 */
static int
g_psql(fl_test_db_t *db, char *const *stmts, int n, int reverse, int notx)
{
    PGconn *c = fl_test_db_connect(db);
    int ok = 1;

    fl_test_exec(c, "SET search_path = public");
    if (!notx)
        fl_test_exec(c, "BEGIN");
    for (int k = 0; ok && k < n; k++) {
        PGresult *r = PQexec(c, stmts[reverse ? n - 1 - k : k]);
        ExecStatusType st = PQresultStatus(r);
        ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        PQclear(r);
    }
    if (!notx)
        fl_test_exec(c, ok ? "COMMIT" : "ROLLBACK");
    PQfinish(c);
    return ok;
}

/*
 * The calls of the migration as psql runs it, and in *down those of its
 * down after it, but for the kinds a restore may add (see g_seed).
 */
static char *
g_oracle(const g_gen_t *g, fl_test_db_t *db, char **down)
{
    PGconn *c = NULL;
    int ok = g_psql(db, g->up, g->nstmts, 0, g->notx);
    char *calls = NULL;

    c = fl_test_db_connect(db);
    calls = g_calls(c, 0, 0);
    *down = NULL;
    if (ok) {
        g_mark(c);
        (void)g_psql(db, g->down, g->nstmts, 1, 0);
        *down = g_calls(c, 1, 1);
    }
    PQfinish(c);
    if (!ok) {
        char *refused = fl_asprintf("refused\n%s", calls);
        free(calls);
        calls = refused;
    }
    return calls;
}

/* One seed (fl_test_seed_fn); verbose: print it all. */
static int
g_seed(long seed, int verbose, void *arg)
{
    g_gen_t g;
    fl_test_ws_t ws;
    fl_test_db_t twin;
    fl_test_proc_t r;
    fl_buf_t log = FL_BUF_INIT(0), text = FL_BUF_INIT(0);
    const char *const lint[] = {"--allow-lint-errors", NULL};
    const char *const back[] = {"--last", NULL};
    char *want = NULL, *got = NULL, *after = NULL, *rows0 = NULL,
         *rows1 = NULL, *want_down = NULL, *got_down = NULL;
    int failed = 0, refused = 0, rb_refused = 0;

    (void)arg;
    memset(&g, 0, sizeof(g));
    g.s = (uint64_t)seed * 104729;
    g_make(&g);
    fl_test_ws_open(&ws, "gten");
    fl_test_db_create(&twin, "gtentwin");
    {
        PGconn *c = fl_test_db_connect(&twin);
        g_setup(&g, &twin, c);
        PQfinish(c);
    }
    g_setup(&g, &ws.db, ws.conn);
    want = g_oracle(&g, &twin, &want_down);
    if (g.notx)
        fl_buf_adds(&text, "-- flotilla:options no-transaction\n");
    fl_buf_adds(&text, "-- flotilla:up\n");
    for (int i = 0; i < g.nstmts; i++)
        fl_buf_addf(&text, "%s;\n", g.up[i]);
    fl_buf_adds(&text, "-- flotilla:down\n");
    for (int i = g.nstmts - 1; i >= 0; i--)
        fl_buf_addf(&text, "%s;\n", g.down[i]);
    fl_test_ws_write(&ws, "0001_gen.sql", fl_buf_str(&text));
    fl_buf_addf(&log, "--- the tenant's objects:\n%s\n--- 0001_gen.sql:\n%s",
                fl_buf_str(&g.plant), fl_buf_str(&text));
    rows0 = fl_test_query_value(ws.conn, g_rows);

    fl_test_ws_flotilla(&ws, &r, "plan", lint, 1);
    fl_buf_addf(&log, "--- plan: exit %d\n%s%s", r.status, r.out, r.err);
    fl_test_proc_release(&r);
    after = g_calls(ws.conn, 0, 0);
    if (*after) {
        fl_buf_addf(&log, "=== plan left calls:\n%s\n", after);
        failed = 1;
    }
    free(after);

    fl_test_ws_flotilla(&ws, &r, "apply", lint, 1);
    fl_buf_addf(&log, "--- apply: exit %d\n%s%s", r.status, r.out, r.err);
    refused = r.status != 0;
    got = g_calls(ws.conn, 0, 0);
    if (refused) {
        char *g2 = fl_asprintf("refused\n%s", got);
        free(got);
        got = g2;
    }
    fl_test_proc_release(&r);
    if (strcmp(want, got) != 0) {
        char *diff = fl_test_diff(want, got);
        fl_buf_addf(&log, "=== calls, psql (-) and flotilla (+):\n%s\n", diff);
        free(diff);
        failed = 1;
    }

    if (!refused && !failed) {
        char *left = NULL;
        char *rows_applied = fl_test_query_value(ws.conn, g_rows);

        g_mark(ws.conn);
        fl_test_ws_flotilla(&ws, &r, "rollback", back, 1);
        fl_buf_addf(&log, "--- rollback: exit %d\n%s%s", r.status, r.out,
                    r.err);
        rb_refused = r.status == 1 && strstr(r.err, "Nothing was rolled back");
        if (r.status != 0 && !rb_refused)
            failed = 1;
        fl_test_proc_release(&r);
        rows1 = fl_test_query_value(ws.conn, g_rows);
        /*
         * A down that does not put the schema back (the tenant's default
         * on a column it re-adds): refused, and nothing changed.
         */
        if (rb_refused) {
            char *calls = g_calls(ws.conn, 0, 1);
            if (strcmp(rows1, rows_applied) != 0 || *calls) {
                fl_buf_addf(&log, "=== a refused rollback changed rows or"
                            " left calls:\n%s\n", calls);
                failed = 1;
            }
            free(calls);
        } else if (!failed && strcmp(rows0, rows1) != 0) {
            fl_buf_adds(&log, "=== the rows are not back as they were\n");
            failed = 1;
        }
        /* The down's own calls as under psql; the restore's inserts may
         * add a CHECK, an index expression, a domain or a default, and
         * nothing else. */
        free(rows_applied);
        got_down = rb_refused ? fl_strdup("") : g_calls(ws.conn, 1, 1);
        if (rb_refused) {
            free(want_down);
            want_down = fl_strdup("");
        }
        /*
         * What the migration's own calls wrote is gone with it; but for
         * an index build without a transaction (CONCURRENTLY), which the
         * net cannot watch (docs/pipeline.md).
         */
        left = g_calls(ws.conn, 0, 0);
        {
            char *sql = fl_asprintf("SELECT count(*) FROM public.side_effects"
                                    " WHERE tag IN (SELECT tag FROM"
                                    " pg_temp.g_before)%s", g.notx
                                    ? " AND what <> 'index'" : "");
            char *n = fl_test_query_value(ws.conn, sql);
            if (!failed && !rb_refused && strcmp(n, "0") != 0) {
                fl_buf_addf(&log, "=== %s rows the migration's calls wrote"
                            " are left after the rollback:\n%s\n", n, left);
                failed = 1;
            }
            free(n);
            free(sql);
        }
        free(left);
        if (want_down && strcmp(want_down, got_down) != 0) {
            char *diff = fl_test_diff(want_down, got_down);
            fl_buf_addf(&log, "=== the rollback's calls but those of a"
                        " restore's inserts, psql's down (-) and flotilla"
                        " (+):\n%s\n", diff);
            free(diff);
            failed = 1;
        }
    }
    if (failed || verbose)
        fprintf(stderr, "=== seed %ld (FLOTILLA_GEN_SEED=%ld runs it alone)\n"
                "%s", seed, seed, fl_buf_str(&log));
    fprintf(stderr, "=== seed %ld: %d statement%s%s, %s\n", seed, g.nstmts,
            g.nstmts == 1 ? "" : "s", g.notx ? " without a transaction" : "",
            failed ? "FAILED" : refused ? "refused by both, no call left"
            : rb_refused ? "the same calls as psql, rollback refused unchanged"
                         : "the same calls as psql, rolled back");
    free(want);
    free(got);
    free(rows0);
    free(rows1);
    free(want_down);
    free(got_down);
    fl_buf_release(&text);
    fl_buf_release(&log);
    fl_test_db_drop(&twin);
    fl_test_ws_close(&ws);
    g_release(&g);
    return failed;
}

static void
test_generated_tenants_code_runs_as_under_psql_only(void **state)
{
    (void)state;
    fl_test_create_role("fl_tenant");
    fl_test_gen_seeds(16, g_seed, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_tenants_code_runs_as_under_psql_only),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("tenant_gen", tests, NULL, NULL);
}
