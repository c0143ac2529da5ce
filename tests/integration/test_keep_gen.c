/*
 * A generative test of what a rollback keeps (docs/pipeline.md, "What
 * down drops is kept"): seeded random additive migrations over a schema
 * with a partitioned table, an inheritance family and a plain table --
 * columns of text, of a domain or of a composite type added to any of
 * them, and composite columns (or arrays of them) whose field is of a
 * domain; new tables, partitioned tables, inheritance families, children
 * of the existing parent, partitions of the existing partitioned table,
 * schemas -- each with a down that removes it one of several ways (DROP
 * COLUMN, DROP DOMAIN or TYPE ... CASCADE, the domain of a composite's
 * field dropped with CASCADE before the type, DROP TABLE, TRUNCATE then
 * DROP, DROP ... CASCADE of a parent, DROP SCHEMA ... CASCADE); and rows
 * added to an existing table, which the down deletes (DELETE, UPDATE then
 * DELETE, DELETE in a WITH query), the application's edits of them and
 * rows of another table that refer to them ON DELETE CASCADE going with
 * them; a third of the downs inside a DO block.  Between
 * apply and rollback the application writes a distinct token into every
 * row of what the migration added.  A seed passes when the rollback
 * succeeds, the database is as it was before the migration (pg_dump and
 * every row), and the copies the rollback kept hold every token the
 * application wrote, as many times as it wrote it (or more: a copy keeps
 * whole rows), and none of the rows the migration wrote itself (it seeds
 * the tables it creates, and the rows it adds to an existing one that its
 * down deletes are seeds too).
 *
 *   FLOTILLA_GEN_SEEDS=N   how many seeds (1..N; default 20: CI time)
 *   FLOTILLA_GEN_SEED=N    only seed N
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
#include <libpq-fe.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "testsupport.h"

/* What every seed starts from. */
static const char k_schema[] =
    "CREATE SCHEMA gen;"
    "CREATE TABLE public.plain (id int PRIMARY KEY, b text);"
    "INSERT INTO public.plain SELECT g, 'b' || g FROM generate_series(1, 12) g;"
    "CREATE TABLE public.pt (id int, at int, b text) PARTITION BY RANGE (at);"
    "CREATE TABLE public.pt_a PARTITION OF public.pt FOR VALUES FROM (0) TO (100);"
    "CREATE TABLE public.pt_b PARTITION OF public.pt"
    " FOR VALUES FROM (100) TO (200);"
    "INSERT INTO public.pt SELECT g, g * 37 % 200, 'b' || g"
    " FROM generate_series(1, 16) g;"
    "CREATE TABLE gen.par (id int, b text);"
    "CREATE TABLE gen.kid (extra int) INHERITS (gen.par);"
    "INSERT INTO gen.par SELECT g, 'p' || g FROM generate_series(1, 5) g;"
    "INSERT INTO gen.kid SELECT g, 'k' || g, g FROM generate_series(6, 11) g;"
    "CREATE TABLE public.cat (id int PRIMARY KEY, b text);"
    "INSERT INTO public.cat SELECT g, 'c' || g FROM generate_series(1, 4) g;"
    "CREATE TABLE public.item (id int, b text,"
    " cat int REFERENCES public.cat ON DELETE CASCADE);"
    "INSERT INTO public.item SELECT g, 'i' || g, g % 4 + 1"
    " FROM generate_series(1, 8) g;";

static const char *const k_tables[] = {"public.plain", "public.pt", "gen.par"};

typedef struct {
    uint64_t s;
    long seed;
    fl_buf_t up, app, log;
    char *down[16]; /* run in reverse */
    int ndown;
    int tokens;     /* tokens handed out so far */
} k_gen_t;

static int
k_range(k_gen_t *g, int lo, int hi)
{
    return lo + (int)(fl_test_rng_next(&g->s) % (uint64_t)(hi - lo + 1));
}

static void
k_down(k_gen_t *g, const char *fmt, ...) FL_PRINTF(2, 3);

static void
k_down(k_gen_t *g, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (g->ndown < 16) {
        char *stmt = fl_vasprintf(fmt, ap);
        /*
         * A third of the downs in a DO block: only running it tells.  Not
         * a SELECT (a data-modifying WITH): PL/pgSQL refuses a SELECT
         * whose result goes nowhere, so the down failed, which 8 of 200
         * seeds showed (91 and 196 among them), none of CI's 20.
         */
        if (k_range(g, 0, 2) == 0 && strncmp(stmt, "WITH ", 5) != 0) {
            char *block = fl_asprintf("DO $$ BEGIN %s END $$;", stmt);
            free(stmt);
            stmt = block;
        }
        g->down[g->ndown++] = stmt;
    }
    va_end(ap);
}

/* An INSERT of n rows of tokens into the table fmt names (id and b). */
static void
k_insert(k_gen_t *g, int n, const char *fmt, ...) FL_PRINTF(3, 4);

static void
k_insert(k_gen_t *g, int n, const char *fmt, ...)
{
    va_list ap;
    char *q = NULL;

    va_start(ap, fmt);
    q = fl_vasprintf(fmt, ap);
    va_end(ap);
    fl_buf_addf(&g->app, "INSERT INTO %s (id, b) SELECT g, 'app-%ld-%d-' || g"
                " FROM generate_series(1, %d) g;\n", q, g->seed, g->tokens++,
                n);
    free(q);
}

/* The down of table <prefix>k: DROP TABLE, or TRUNCATE then DROP. */
static void
k_drop_table(k_gen_t *g, const char *prefix, int k)
{
    if (k_range(g, 0, 1))
        k_down(g, "DROP TABLE %s%d;", prefix, k);
    else
        k_down(g, "TRUNCATE %s%d;\nDROP TABLE %s%d;", prefix, k, prefix, k);
}

/* One addition, numbered k, with its down and the application's writes. */
static void
k_feature(k_gen_t *g, int k)
{
    int kind = k_range(g, 0, 8);

    switch (kind) {
    case 0: { /* a column of text, a domain or a composite type */
        const char *t = k_tables[k_range(g, 0, 2)];
        int type = k_range(g, 0, 2), cascade = type && k_range(g, 0, 1);
        const char *tn = type == 0 ? "text" : NULL;
        char *own = fl_asprintf("public.ty%d", k);

        if (type == 1)
            fl_buf_addf(&g->up, "CREATE DOMAIN %s AS text;\n", own);
        else if (type == 2)
            fl_buf_addf(&g->up, "CREATE TYPE %s AS (v text, n int);\n", own);
        fl_buf_addf(&g->up, "ALTER TABLE %s ADD COLUMN c%d %s;\n", t, k,
                    tn ? tn : own);
        if (type == 0)
            k_down(g, "ALTER TABLE %s DROP COLUMN c%d;", t, k);
        else if (cascade)
            k_down(g, "DROP %s %s CASCADE;", type == 1 ? "DOMAIN" : "TYPE",
                   own);
        else
            k_down(g, "ALTER TABLE %s DROP COLUMN c%d;\nDROP %s %s;", t, k,
                   type == 1 ? "DOMAIN" : "TYPE", own);
        fl_buf_addf(&g->app, "UPDATE %s SET c%d = %s'app-%ld-%d-' || id%s"
                    " WHERE id %% %d <> 0;\n", t, k,
                    type == 2 ? "ROW(" : "", g->seed, g->tokens++,
                    type == 2 ? ", 1)" : "", k_range(g, 2, 4));
        free(own);
        break;
    }
    case 1: /* a table, which the migration seeds */
        fl_buf_addf(&g->up, "CREATE TABLE public.n%d (id int, b text);\n"
                    "INSERT INTO public.n%d VALUES (0, 'mig-seed');\n", k, k);
        k_drop_table(g, "public.n", k);
        k_insert(g, 3, "public.n%d", k);
        break;
    case 2: /* a partitioned table */
        fl_buf_addf(&g->up, "CREATE TABLE public.np%d (id int, b text)"
                    " PARTITION BY RANGE (id);\n"
                    "CREATE TABLE public.np%d_a PARTITION OF public.np%d"
                    " FOR VALUES FROM (0) TO (3);\n"
                    "CREATE TABLE public.np%d_b PARTITION OF public.np%d"
                    " FOR VALUES FROM (3) TO (100);\n"
                    "INSERT INTO public.np%d VALUES (50, 'mig-seed');\n",
                    k, k, k, k, k, k);
        k_drop_table(g, "public.np", k);
        k_insert(g, 5, "public.np%d", k);
        break;
    case 3: /* an inheritance family */
        fl_buf_addf(&g->up, "CREATE TABLE public.r%d (id int, b text);\n"
                    "CREATE TABLE public.l%d (x int) INHERITS (public.r%d);\n",
                    k, k, k);
        switch (k_range(g, 0, 2)) {
        case 0:
            k_down(g, "DROP TABLE public.r%d CASCADE;", k);
            break;
        case 1:
            k_down(g, "TRUNCATE public.r%d;\nDROP TABLE public.r%d CASCADE;",
                   k, k);
            break;
        default:
            k_down(g, "DROP TABLE public.l%d;\nDROP TABLE public.r%d;", k, k);
        }
        k_insert(g, 2, "public.r%d", k);
        k_insert(g, 3, "public.l%d", k);
        break;
    case 4: /* a child of the existing parent */
        fl_buf_addf(&g->up, "CREATE TABLE gen.c%d () INHERITS (gen.par);\n", k);
        k_down(g, "DROP TABLE gen.c%d;", k);
        k_insert(g, 2, "gen.c%d", k);
        break;
    case 5: /* a partition of the existing partitioned table */
        fl_buf_addf(&g->up, "CREATE TABLE public.pt%d PARTITION OF public.pt"
                    " FOR VALUES FROM (%d) TO (%d);\n", k, 200 + 100 * k,
                    300 + 100 * k);
        k_down(g, "DROP TABLE public.pt%d;", k);
        fl_buf_addf(&g->app, "INSERT INTO public.pt (id, at, b) SELECT g, %d"
                    " + g, 'app-%ld-%d-' || g FROM generate_series(1, 4) g;\n",
                    200 + 100 * k, g->seed, g->tokens++);
        break;
    case 6: { /* a composite column whose field's domain is dropped */
        const char *t = k_tables[k_range(g, 0, 2)];
        int array = k_range(g, 0, 1);

        fl_buf_addf(&g->up, "CREATE DOMAIN public.dm%d AS text;\n"
                    "CREATE TYPE public.cp%d AS (v public.dm%d, n int);\n"
                    "ALTER TABLE %s ADD COLUMN c%d public.cp%d%s;\n", k, k, k,
                    t, k, k, array ? "[]" : "");
        k_down(g, "DROP DOMAIN public.dm%d CASCADE;\n"
               "DROP TYPE public.cp%d CASCADE;", k, k);
        fl_buf_addf(&g->app, "UPDATE %s SET c%d = %sROW('app-%ld-%d-' || id,"
                    " 1)::public.cp%d%s WHERE id %% %d <> 0;\n", t, k,
                    array ? "ARRAY[" : "", g->seed, g->tokens++, k,
                    array ? "]" : "", k_range(g, 2, 4));
        break;
    }
    case 7: { /* rows of an existing table, deleted by the down */
        int a = 100 * (k + 1), b = a + 2;

        fl_buf_addf(&g->up, "INSERT INTO public.cat SELECT g, 'mig-seed'"
                    " FROM generate_series(%d, %d) g;\n", a, b);
        switch (k_range(g, 0, 2)) {
        case 0:
            k_down(g, "DELETE FROM public.cat WHERE id BETWEEN %d AND %d;", a,
                   b);
            break;
        case 1: /* changed first (a copy of each), then deleted */
            k_down(g, "UPDATE public.cat SET b = 'undone' WHERE id BETWEEN %d"
                   " AND %d;\nDELETE FROM public.cat WHERE id BETWEEN %d AND"
                   " %d;", a, b, a, b);
            break;
        default:
            k_down(g, "WITH d AS (DELETE FROM public.cat WHERE id BETWEEN %d"
                   " AND %d RETURNING id) SELECT count(*) FROM d;", a, b);
        }
        /* The application edits two of them and gives one children, which
         * the down's DELETE removes by ON DELETE CASCADE. */
        fl_buf_addf(&g->app, "UPDATE public.cat SET b = 'app-%ld-%d-' || id"
                    " WHERE id BETWEEN %d AND %d;\n", g->seed, g->tokens++,
                    a, a + 1);
        fl_buf_addf(&g->app, "INSERT INTO public.item SELECT g, 'app-%ld-%d-'"
                    " || g, %d FROM generate_series(1, 3) g;\n", g->seed,
                    g->tokens++, b);
        break;
    }
    default: /* a schema */
        fl_buf_addf(&g->up, "CREATE SCHEMA s%d;\n"
                    "CREATE TABLE s%d.t (id int, b text);\n", k, k);
        k_down(g, "DROP SCHEMA s%d CASCADE;", k);
        k_insert(g, 2, "s%d.t", k);
        break;
    }
}

/*
 * Every token in the tables a query lists (one qualified name a row),
 * sorted, one a line, repeats kept.
 */
static char *
k_tokens(PGconn *conn, const char *tables)
{
    PGresult *res = PQexec(conn, tables);
    fl_buf_t q = FL_BUF_INIT(0);
    char *v = NULL;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", tables, PQresultErrorMessage(res));
    fl_buf_adds(&q, "SELECT coalesce(string_agg(v, E'\\n' ORDER BY v), '')"
                    " FROM (SELECT NULL::text AS v WHERE false");
    for (int i = 0; i < PQntuples(res); i++)
        fl_buf_addf(&q, " UNION ALL SELECT m[1] FROM ONLY %s t,"
                    " regexp_matches(t::text, '(app-[0-9]+-[0-9]+-[0-9]+)',"
                    " 'g') m", PQgetvalue(res, i, 0));
    fl_buf_adds(&q, ") x");
    PQclear(res);
    v = fl_test_query_value(conn, fl_buf_str(&q));
    fl_buf_release(&q);
    return v;
}

/* How many lines of list (one a line) are line. */
static int
k_count(const char *list, const char *line, size_t n)
{
    int c = 0;

    while (*list) {
        size_t m = strcspn(list, "\n");
        c += m == n && strncmp(list, line, n) == 0;
        list += m + (list[m] == '\n');
    }
    return c;
}

/*
 * The first token wrote holds more often than kept does, or NULL.  A
 * copy holds every column of the rows it keeps, so a token can be kept
 * more often than it was written (a row kept for its dropped column, and
 * again with its dropped table), never less.
 */
static char *
k_lost(const char *wrote, const char *kept)
{
    for (const char *w = wrote; *w;) {
        size_t n = strcspn(w, "\n");

        if (n > 0 && k_count(wrote, w, n) > k_count(kept, w, n))
            return fl_strndup(w, n);
        w += n + (w[n] == '\n');
    }
    return NULL;
}

/* The user tables: every plain table but flotilla's. */
static const char k_user_tables[] =
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'flotilla',"
    " 'flotilla_backup') AND n.nspname !~ '^pg_'";

/* The copies a rollback kept. */
static const char k_kept_tables[] =
    "SELECT location FROM flotilla.backups WHERE statement_index = -2";

/* How many rows of the kept copies the migration wrote ('mig-seed'). */
static int
k_seeds_kept(PGconn *conn)
{
    PGresult *res = PQexec(conn, k_kept_tables);
    fl_buf_t q = FL_BUF_INIT(0);
    char *v = NULL;
    int n = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", k_kept_tables, PQresultErrorMessage(res));
    fl_buf_adds(&q, "SELECT 0");
    for (int i = 0; i < PQntuples(res); i++)
        fl_buf_addf(&q, " + (SELECT count(*) FROM %s t WHERE t::text LIKE"
                    " '%%mig-seed%%')", PQgetvalue(res, i, 0));
    PQclear(res);
    v = fl_test_query_value(conn, fl_buf_str(&q));
    n = (int)strtol(v, NULL, 10);
    free(v);
    fl_buf_release(&q);
    return n;
}

typedef struct {
    char *dir;
} k_run_t;

static int
k_seed(long n, int alone, void *arg)
{
    k_run_t *run = arg;
    k_gen_t g;
    fl_test_db_t db;
    PGconn *conn = NULL;
    fl_test_proc_t r;
    char *mdir = fl_asprintf("%s/m", run->dir);
    char *file = fl_asprintf("%s/0001_added.sql", mdir);
    char *log = fl_asprintf("%s/migration-execution.log", run->dir);
    char *before = NULL, *after = NULL, *diff = NULL, *wrote = NULL,
         *kept = NULL, *lost = NULL, *why = NULL;
    fl_buf_t text = FL_BUF_INIT(0);
    int nfeatures;

    memset(&g, 0, sizeof(g));
    g.s = (uint64_t)n * 7919u;
    g.seed = n;
    nfeatures = k_range(&g, 1, 5);
    for (int k = 0; k < nfeatures; k++)
        k_feature(&g, k);
    fl_buf_addf(&text, "-- flotilla:up\n%s-- flotilla:down\n",
                fl_buf_str(&g.up));
    for (int i = g.ndown - 1; i >= 0; i--)
        fl_buf_addf(&text, "%s\n", g.down[i]);
    fl_buf_addf(&g.log, "--- migration:\n%s--- app:\n%s", fl_buf_str(&text),
                fl_buf_str(&g.app));
    (void)mkdir(mdir, 0755);
    fl_test_write_file(file, fl_buf_str(&text));

    fl_test_db_create(&db, "keepgen");
    conn = fl_test_db_connect(&db);
    fl_test_exec(conn, k_schema);
    before = fl_test_canonical_dump_full(conn);
    fl_test_flotilla(&r, run->dir, db.conninfo, log, "apply",
                     (const char *const[]){"--quiet", "--allow-lint-errors",
                                           NULL}, mdir);
    if (r.status != 0) {
        why = fl_asprintf("apply exited %d: %s", r.status, r.err);
        goto done;
    }
    fl_test_proc_release(&r);
    fl_test_exec(conn, fl_buf_str(&g.app));
    wrote = k_tokens(conn, k_user_tables);
    fl_test_flotilla(&r, run->dir, db.conninfo, log, "rollback",
                     (const char *const[]){"--quiet", "--last", NULL}, mdir);
    fl_buf_addf(&g.log, "--- rollback exited %d\n%s%s", r.status, r.out,
                r.err);
    if (r.status != 0) {
        why = fl_asprintf("rollback exited %d", r.status);
        goto done;
    }
    after = fl_test_canonical_dump_full(conn);
    if ((diff = fl_test_diff(before, after)) != NULL) {
        why = fl_asprintf("the database is not as it was:\n%s", diff);
        goto done;
    }
    kept = k_tokens(conn, k_kept_tables);
    if ((lost = k_lost(wrote, kept)) != NULL)
        why = fl_asprintf("the kept copies lost %s, which the application "
                          "wrote\n--- wrote:\n%s\n--- kept:\n%s", lost, wrote,
                          kept);
    else if (k_seeds_kept(conn) > 0)
        why = fl_asprintf("the kept copies hold %d of the rows the migration "
                          "wrote itself", k_seeds_kept(conn));
done:
    fl_test_proc_release(&r);
    if (why != NULL || alone)
        fprintf(stderr, "=== seed %ld (FLOTILLA_GEN_SEED=%ld runs it alone)\n"
                "%s%s%s\n", n, n, fl_buf_str(&g.log), why ? "--- FAILED: " : "",
                why ? why : "");
    else
        fprintf(stderr, "=== seed %ld: passed (%d additions, %d tokens)\n", n,
                nfeatures, g.tokens);
    PQfinish(conn);
    fl_test_db_drop(&db);
    for (int i = 0; i < g.ndown; i++)
        free(g.down[i]);
    fl_buf_release(&g.up);
    fl_buf_release(&g.app);
    fl_buf_release(&g.log);
    fl_buf_release(&text);
    fl_test_rmtree(mdir);
    free(mdir);
    free(file);
    free(log);
    free(before);
    free(after);
    free(diff);
    free(wrote);
    free(kept);
    free(lost);
    {
        int failed = why != NULL;
        free(why);
        return failed;
    }
}

static void
test_generated_downs_keep_what_they_drop(void **state)
{
    k_run_t run = {fl_test_tmpdir()};

    (void)state;
    fl_test_gen_seeds(20, k_seed, &run);
    fl_test_rmtree(run.dir);
    free(run.dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_downs_keep_what_they_drop),
    };
    return cmocka_run_group_tests_name("keep_gen", tests, NULL, NULL);
}
