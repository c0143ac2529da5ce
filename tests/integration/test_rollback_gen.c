/*
 * A generative test of guarantee 3 of DESIGN.md (issue 8): seeded random
 * schemas (3 to 6 tables in two schemas; foreign keys with every ON
 * DELETE and ON UPDATE action; audit triggers and triggers that write
 * another table, some marked ENABLE ALWAYS or ENABLE REPLICA; identity
 * ALWAYS and BY DEFAULT and serial columns; tables without a key, some
 * with duplicate rows; composite columns; indexes, comments, grants) and
 * random migrations of 1 to 4 destructive statements (a composite type's
 * field dropped among them; a key's sequence moved by setval, RESTART and
 * a change of increment), each with a down
 * that re-creates only the bare columns and tables it dropped.  A seed
 * passes when apply and rollback leave the full canonical dump as it was,
 * keeping no copy of a keyed table's rows (nobody else wrote any), or
 * when apply refuses (exit 3) with nothing changed.
 *
 * The second test runs the same seeds with the application at work
 * between apply and rollback (rows of referenced tables deleted, rows
 * re-marked, keys the migration deleted used again, and rows marked by a
 * transaction that began before the migration): a rollback that
 * succeeds leaves every value the application wrote in its table or in a
 * copy it kept, and every foreign key holding (PostgreSQL's own check,
 * each key dropped and added again in a transaction rolled back); one
 * that fails is refused for a foreign key the restore would break, with
 * nothing changed.
 *
 *   FLOTILLA_GEN_SEEDS=N   how many seeds (1..N; default 32: CI time)
 *   FLOTILLA_GEN_SEED=N    only seed N
 *   FLOTILLA_TEST_FILTER=GLOB  only the tests it matches
 */
#include <errno.h>
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

#include "common/alloc.h"
#include "common/buf.h"
#include "testsupport.h"

#define G_MAX_TABLES 6
#define G_MAX_RULES 16
/* Attempts per seed at a migration that does not fail by itself. */
#define G_ATTEMPTS 3

/* splitmix64 (fl_test_rng_next). */
typedef struct {
    uint64_t s;
} g_rng_t;

static uint64_t
g_next(g_rng_t *r)
{
    return fl_test_rng_next(&r->s);
}

/* A number in lo..hi. */
static int
g_range(g_rng_t *r, int lo, int hi)
{
    return lo + (int)(g_next(r) % (uint64_t)(hi - lo + 1));
}

static int
g_chance(g_rng_t *r, int percent)
{
    return g_range(r, 1, 100) <= percent;
}

static const char *
g_pick(g_rng_t *r, const char *const *items, int n)
{
    return items[g_range(r, 0, n - 1)];
}

enum { K_INT, K_ALWAYS, K_BY_DEFAULT, K_SERIAL, K_NONE };

static const char *const g_fk_actions[] = {"CASCADE", "SET NULL", "SET DEFAULT",
                                           "RESTRICT", "NO ACTION"};

/* One generated table, as the migration being generated leaves it. */
typedef struct {
    char schema[8];
    char name[8];
    char q[20];           /* schema.name */
    int key;              /* K_* */
    int rows;
    int has_c, has_d, has_p, has_n, has_q;  /* optional columns */
    int c_text;           /* c changed from numeric to text */
    int has_e;            /* e public.gen_ct<i>: a composite (x int, y text) */
    int e_short;          /* its type's field y dropped */
    int parent;           /* table p references, or -1 */
    const char *on_delete, *on_update;
    int dropped;
} g_table_t;

typedef struct {
    g_rng_t rng;
    int ntables;
    g_table_t t[G_MAX_TABLES];     /* as the migration so far leaves them */
    g_table_t made[G_MAX_TABLES];  /* as the schema makes them */
    fl_buf_t schema;          /* the SQL that makes it */
    fl_buf_t up;
    char *down[16];           /* statements, in the order they were made */
    int ndown;
    char *rules[G_MAX_RULES];  /* lint rules the migration allows */
    int nrules;
    fl_buf_t log;              /* what to print if the seed fails */
} g_gen_t;

/* Allows a lint rule; returns 1 when it was not allowed yet. */
static int
g_allow(g_gen_t *g, const char *rule)
{
    for (int i = 0; i < g->nrules; i++)
        if (strcmp(g->rules[i], rule) == 0)
            return 0;
    if (g->nrules == G_MAX_RULES)
        fail_msg("more than %d lint rules to allow", G_MAX_RULES);
    g->rules[g->nrules++] = fl_strdup(rule);
    return 1;
}

static void
g_down(g_gen_t *g, char *stmt)
{
    if (g->ndown < (int)(sizeof(g->down) / sizeof(g->down[0])))
        g->down[g->ndown++] = stmt;
    else
        free(stmt);
}

static int
g_keyed(const g_table_t *t)
{
    return t->key != K_NONE;
}

/* Whether a table that is still there references t. */
static int
g_referenced(const g_gen_t *g, int ti)
{
    for (int i = 0; i < g->ntables; i++)
        if (!g->t[i].dropped && g->t[i].has_p && g->t[i].parent == ti)
            return 1;
    return 0;
}

/* The column definitions of t as it is now; bare leaves out the key. */
static void
g_columns(fl_buf_t *b, const g_gen_t *g, const g_table_t *t, int bare)
{
    static const char *const key[] = {
        [K_INT] = "id int NOT NULL",
        [K_ALWAYS] = "id int GENERATED ALWAYS AS IDENTITY",
        [K_BY_DEFAULT] = "id int GENERATED BY DEFAULT AS IDENTITY",
        [K_SERIAL] = "id serial",
    };

    if (t->key != K_NONE)
        fl_buf_addf(b, "%s%s, ", key[t->key], bare ? "" : " PRIMARY KEY");
    fl_buf_adds(b, "a int, b text");
    if (t->has_e)
        fl_buf_addf(b, ", e public.gen_ct%d", (int)(t - g->t));
    if (t->has_c)
        fl_buf_addf(b, ", c %s", t->c_text ? "text" : "numeric");
    if (t->has_d)
        fl_buf_adds(b, ", d text NOT NULL DEFAULT 'd'");
    if (t->has_p) {
        fl_buf_adds(b, ", p int");
        if (!bare)
            fl_buf_addf(b, " REFERENCES %s (id) ON DELETE %s ON UPDATE %s",
                                g->t[t->parent].q, t->on_delete, t->on_update);
    }
    if (t->has_n)
        fl_buf_adds(b, ", n serial");
    if (t->has_q)
        fl_buf_adds(b, ", q int GENERATED ALWAYS AS IDENTITY");
}

/*
 * Sometimes marks trigger name of table q ENABLE ALWAYS (fires whatever
 * session_replication_role is) or ENABLE REPLICA (fires only when it is
 * replica): a restore, which turns triggers off with that setting, must
 * still run neither.
 */
static void
g_mark(g_gen_t *g, const char *q, const char *name)
{
    if (g_chance(&g->rng, 40))
        fl_buf_addf(&g->schema, "ALTER TABLE %s ENABLE %s TRIGGER %s;\n", q,
                    g_chance(&g->rng, 50) ? "ALWAYS" : "REPLICA", name);
}

/*
 * Rows from..to: a = g, b, c; p points at a parent row (only one row in 5
 * when the key restricts, so that fewer migrations fail by themselves).
 */
static void
g_rows(g_gen_t *g, const g_table_t *t, int from, int to)
{
    fl_buf_t *b = &g->schema;

    fl_buf_addf(b, "INSERT INTO %s (%sa, b%s%s%s) SELECT %sg, 'b' || g%s",
                        t->q, t->key == K_INT ? "id, " : "", t->has_c ? ", c" : "",
                        t->has_p ? ", p" : "", t->has_e ? ", e" : "",
                        t->key == K_INT ? "g, " : "",
                        t->has_c ? ", g * 1.5" : "");
    if (t->has_p) {
        int restricts = strcmp(t->on_delete, "RESTRICT") == 0 ||
                        strcmp(t->on_delete, "NO ACTION") == 0 ||
                        strcmp(t->on_update, "RESTRICT") == 0 ||
                        strcmp(t->on_update, "NO ACTION") == 0;
        fl_buf_addf(b, ", CASE WHEN g %% %d = 0 THEN g %% %d + 1 END",
                            restricts ? 5 : 1, g->t[t->parent].rows);
    }
    if (t->has_e)
        fl_buf_addf(b, ", ROW(g, 'y' || g)::public.gen_ct%d", (int)(t - g->t));
    fl_buf_addf(b, " FROM generate_series(%d, %d) g;\n", from, to);
}

static void
g_make_table(g_gen_t *g, int i)
{
    g_rng_t *r = &g->rng;
    g_table_t *t = &g->t[i];
    fl_buf_t *b = &g->schema;

    /* Pairs of tables may share a name across the two schemas. */
    snprintf(t->schema, sizeof(t->schema), "%s", i % 2 ? "gen" : "public");
    if (i % 2 && g_chance(r, 50))
        snprintf(t->name, sizeof(t->name), "u%d", i);
    else
        snprintf(t->name, sizeof(t->name), "t%d", i / 2);
    snprintf(t->q, sizeof(t->q), "%s.%s", t->schema, t->name);
    t->key = g_range(r, K_INT, K_NONE);
    t->rows = g_range(r, 5, 50);
    t->has_c = g_chance(r, 70);
    t->has_d = g_chance(r, 40);
    t->parent = -1;
    for (int tries = 0; i > 0 && tries < 3 && t->parent < 0; tries++) {
        int p = g_range(r, 0, i - 1);
        if (g_keyed(&g->t[p]) && g_chance(r, 70))
            t->parent = p;
    }
    if (t->parent >= 0) {
        t->has_p = 1;
        t->on_delete = g_pick(r, g_fk_actions, 5);
        t->on_update = g_pick(r, g_fk_actions, 5);
    }
    t->has_n = t->key == K_NONE && g_chance(r, 40);
    t->has_q = t->key == K_INT && g_chance(r, 30);
    /* Without a draw of its own: the seeds' other choices stay. */
    t->has_e = t->rows % 3 == 0;
    if (t->has_e)
        fl_buf_addf(b, "CREATE TYPE public.gen_ct%d AS (x int, y text);\n", i);
    fl_buf_addf(b, "CREATE TABLE %s (", t->q);
    g_columns(b, g, t, 0);
    fl_buf_adds(b, ");\n");
    g_rows(g, t, 1, t->rows);
    if (t->key == K_NONE && !t->has_n && g_chance(r, 60))
        g_rows(g, t, 1, g_range(r, 1, t->rows));  /* duplicate rows */
    if (g_chance(r, 60))
        fl_buf_addf(b, "CREATE INDEX ON %s (b);\n", t->q);
    if (t->has_c && g_chance(r, 40))
        fl_buf_addf(b, "CREATE INDEX ON %s (c);\n", t->q);
    if (g_chance(r, 50))
        fl_buf_addf(b, "COMMENT ON TABLE %s IS 'table %d';\n"
                               "COMMENT ON COLUMN %s.b IS 'column b of %d';\n",
                            t->q, i, t->q, i);
    if (g_chance(r, 50))
        fl_buf_addf(b, "GRANT SELECT ON %s TO fl_reader;\n"
                               "GRANT UPDATE (b) ON %s TO fl_reader;\n", t->q, t->q);
    if (g_chance(r, 30)) {
        fl_buf_addf(b, "CREATE TRIGGER gen_audit AFTER UPDATE OR DELETE ON %s"
                               " FOR EACH ROW EXECUTE FUNCTION public.gen_audit();\n",
                            t->q);
        g_mark(g, t->q, "gen_audit");
    }
}

/* A trigger on table i that writes a later table (so triggers never loop). */
static void
g_make_writer(g_gen_t *g, int i)
{
    const char *target = g->t[g_range(&g->rng, i + 1, g->ntables - 1)].q;
    char *body = g_chance(&g->rng, 50)
                     ? fl_asprintf("DELETE FROM %s WHERE a = NEW.a", target)
                     : fl_asprintf("UPDATE %s SET b = b || '+' WHERE a = NEW.a", target);

    fl_buf_addf(&g->schema,
        "CREATE FUNCTION public.gen_write_%d() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN %s; RETURN NULL; END $$;\n"
        "CREATE TRIGGER gen_write AFTER UPDATE ON %s FOR EACH ROW"
        " EXECUTE FUNCTION public.gen_write_%d();\n", i, body, g->t[i].q, i);
    g_mark(g, g->t[i].q, "gen_write");
    free(body);
}

static void
g_make_schema(g_gen_t *g)
{
    fl_buf_t *b = &g->schema;

    g->ntables = g_range(&g->rng, 3, G_MAX_TABLES);
    fl_buf_adds(b,
        "CREATE SCHEMA gen;\n"
        "CREATE TABLE public.gen_log (id bigserial PRIMARY KEY, tbl text, op text,"
        " ref int);\n"
        "CREATE FUNCTION public.gen_audit() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN INSERT INTO public.gen_log (tbl, op, ref) VALUES"
        " (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP, OLD.a); RETURN NULL;"
        " END $$;\n");
    for (int i = 0; i < g->ntables; i++)
        g_make_table(g, i);
    for (int i = 0; i + 1 < g->ntables; i++)
        if (g_chance(&g->rng, 25))
            g_make_writer(g, i);
    memcpy(g->made, g->t, sizeof(g->made));
}

/* A random table still there, or NULL. */
static g_table_t *
g_live(g_gen_t *g)
{
    int start = g_range(&g->rng, 0, g->ntables - 1);

    for (int k = 0; k < g->ntables; k++) {
        g_table_t *t = &g->t[(start + k) % g->ntables];
        if (!t->dropped)
            return t;
    }
    return NULL;
}

static void
g_where(g_gen_t *g)
{
    int m = g_range(&g->rng, 2, 5);

    fl_buf_addf(&g->up, " WHERE a %% %d = %d", m, g_range(&g->rng, 0, m - 1));
}

static void
g_drop_table(g_gen_t *g, g_table_t *t)
{
    fl_buf_t d = FL_BUF_INIT(0);
    int cascade = g_referenced(g, (int)(t - g->t)) || g_chance(&g->rng, 30);

    fl_buf_addf(&g->up, "DROP TABLE %s%s", t->q, cascade ? " CASCADE" : "");
    g_allow(g, "ban-drop-table");
    if (cascade)
        g_allow(g, "ban-drop-cascade");
    /* The down re-creates the bare table, sometimes with its key. */
    fl_buf_addf(&d, "CREATE TABLE %s (", t->q);
    g_columns(&d, g, t, 1);
    if (g_keyed(t) && g_chance(&g->rng, 50))
        fl_buf_adds(&d, ", PRIMARY KEY (id)");
    fl_buf_adds(&d, ");");
    g_down(g, fl_buf_detach(&d));
    t->dropped = 1;
}

static void
g_drop_column(g_gen_t *g, g_table_t *t)
{
    const char *col = t->has_c ? "c" : t->has_d ? "d" : "p";

    fl_buf_addf(&g->up, "ALTER TABLE %s DROP COLUMN %s", t->q, col);
    g_allow(g, "ban-drop-column");
    if (col[0] == 'c') {
        g_down(g, fl_asprintf("ALTER TABLE %s ADD COLUMN c %s;", t->q,
                              t->c_text ? "text" : "numeric"));
        t->has_c = 0;
    } else if (col[0] == 'd') {
        g_down(g, fl_asprintf("ALTER TABLE %s ADD COLUMN d text NOT NULL DEFAULT 'd';",
                              t->q));
        t->has_d = 0;
    } else {
        g_down(g, fl_asprintf("ALTER TABLE %s ADD COLUMN p int;", t->q));
        t->has_p = 0;
    }
}

static void
g_alter_type(g_gen_t *g, g_table_t *t)
{
    const char *to = t->c_text ? "numeric" : "text";
    const char *back = t->c_text ? "text" : "numeric";

    fl_buf_addf(&g->up, "ALTER TABLE %s ALTER COLUMN c TYPE %s USING c::%s",
                        t->q, to, to);
    g_allow(g, "changing-column-type");
    g_down(g, fl_asprintf("ALTER TABLE %s ALTER COLUMN c TYPE %s USING c::%s;",
                          t->q, back, back));
    t->c_text = !t->c_text;
}

enum {
    G_DELETE, G_UPDATE, G_UPDATE_KEY, G_TRUNCATE, G_DROP_COLUMN, G_DROP_TABLE,
    G_ALTER_TYPE, G_MERGE, G_UPSERT, G_CTE, G_DO, G_SEARCH_PATH, G_SEQUENCE,
    G_KINDS
};

/*
 * The key's sequence of t moved: by setval (up or down), restarted (after
 * a setval too), a change of increment (which the down changes back)
 * before or after.  Statements, each ending ";\n".
 */
static void
g_sequence(g_gen_t *g, const g_table_t *t)
{
    g_rng_t *r = &g->rng;
    fl_buf_t *u = &g->up;
    int ident = t->key == K_ALWAYS || t->key == K_BY_DEFAULT;
    int inc = g_chance(r, 60), inc_first = g_chance(r, 50);
    char *alter = ident ? fl_asprintf("ALTER TABLE %s ALTER COLUMN id", t->q)
                        : fl_asprintf("ALTER SEQUENCE %s.%s_id_seq", t->schema,
                                      t->name);

    if (inc && inc_first)
        fl_buf_addf(u, "%s %sINCREMENT BY 3;\n", alter, ident ? "SET " : "");
    /*
     * setval (s), RESTART (r), or both in either order: a RESTART after a
     * setval gives new storage, and the old keeps the setval.
     */
    static const char *const orders[] = {"s", "r", "sr", "rs"};
    for (const char *o = orders[g_range(r, 0, 3)]; *o; o++) {
        if (*o == 's')
            fl_buf_addf(u, "SELECT setval(pg_get_serial_sequence('%s',"
                        " 'id'), %d);\n", t->q, g_range(r, 1, 2000));
        else
            fl_buf_addf(u, "%s RESTART WITH %d;\n", alter,
                        g_range(r, 1, 2000));
    }
    if (inc && !inc_first)
        fl_buf_addf(u, "%s %sINCREMENT BY 3;\n", alter, ident ? "SET " : "");
    if (inc)
        g_down(g, fl_asprintf("%s %sINCREMENT BY 1;", alter,
                              ident ? "SET " : ""));
    free(alter);
}

/* One statement of kind k on a live table t (falls back to DELETE). */
static void
g_statement(g_gen_t *g, int k, g_table_t *t)
{
    fl_buf_t *u = &g->up;
    g_rng_t *r = &g->rng;

    /* Without a kind of its own: the seeds' other choices stay. */
    if ((k == G_ALTER_TYPE || k == G_DROP_COLUMN) && t->has_e && !t->e_short &&
        t->rows % 2 == 0) {
        int i = (int)(t - g->t);
        fl_buf_addf(u, "ALTER TYPE public.gen_ct%d DROP ATTRIBUTE y CASCADE;\n",
                    i);
        g_allow(g, "ban-drop-column");
        g_down(g, fl_asprintf("ALTER TYPE public.gen_ct%d ADD ATTRIBUTE y text"
                              " CASCADE;", i));
        t->e_short = 1;
        return;
    }
    if ((k == G_UPDATE_KEY && (t->key == K_NONE || t->key == K_ALWAYS)) ||
        (k == G_DROP_COLUMN && !t->has_c && !t->has_d && !t->has_p) ||
        (k == G_ALTER_TYPE && !t->has_c) || (k == G_UPSERT && !g_keyed(t)) ||
        (k == G_SEQUENCE && (t->key == K_INT || t->key == K_NONE)))
        k = G_DELETE;
    switch (k) {
    case G_UPDATE:
        fl_buf_addf(u, "UPDATE %s SET b = b || 'u', a = a + 100", t->q);
        g_where(g);
        break;
    case G_UPDATE_KEY:
        fl_buf_addf(u, "UPDATE %s SET id = id + 1000", t->q);
        g_where(g);
        break;
    case G_TRUNCATE: {
        int cascade = g_referenced(g, (int)(t - g->t)) || g_chance(r, 30);
        fl_buf_addf(u, "TRUNCATE %s%s%s", t->q,
                            g_chance(r, 50) ? " RESTART IDENTITY" : "",
                            cascade ? " CASCADE" : "");
        if (cascade)
            g_allow(g, "ban-truncate-cascade");
        break;
    }
    case G_DROP_COLUMN:
        g_drop_column(g, t);
        break;
    case G_DROP_TABLE:
        g_drop_table(g, t);
        break;
    case G_ALTER_TYPE:
        g_alter_type(g, t);
        break;
    case G_MERGE:
        fl_buf_addf(u,
            "MERGE INTO %s AS x USING (SELECT g AS a FROM generate_series(1, %d) g)"
            " AS src ON x.a = src.a\n WHEN MATCHED AND src.a %% %d = 0 THEN DELETE\n"
            " WHEN MATCHED THEN UPDATE SET b = x.b || 'm'", t->q,
            g_range(r, 3, 30), g_range(r, 2, 4));
        break;
    case G_UPSERT:
        fl_buf_addf(u,
            "INSERT INTO %s (id, a, b)%s SELECT g, g, 'new' || g FROM"
            " generate_series(%d, %d) g\n ON CONFLICT (id) DO UPDATE SET b = excluded.b",
            t->q, t->key == K_ALWAYS ? " OVERRIDING SYSTEM VALUE" : "",
            t->rows - 3, t->rows + 3);
        break;
    case G_CTE:
        fl_buf_addf(u, "WITH d AS (DELETE FROM %s", t->q);
        g_where(g);
        fl_buf_adds(u, " RETURNING 1) SELECT count(*) FROM d");
        break;
    case G_DO: {
        g_table_t *o = g_live(g);
        fl_buf_addf(u, "DO $$ BEGIN\n  UPDATE %s SET b = b || 'd'", t->q);
        g_where(g);
        fl_buf_addf(u, ";\n  DELETE FROM %s", o->q);
        g_where(g);
        fl_buf_adds(u, ";\nEND $$");
        g_allow(g, "opaque-statement");
        break;
    }
    case G_SEARCH_PATH:
        fl_buf_addf(u, "SET LOCAL search_path = %s;\nDELETE FROM %s",
                            t->schema, t->name);
        g_where(g);
        break;
    case G_SEQUENCE:
        g_sequence(g, t);
        return;
    default:
        fl_buf_addf(u, "DELETE FROM %s", t->q);
        g_where(g);
        break;
    }
    fl_buf_adds(u, ";\n");
}

static void
g_make_migration(g_gen_t *g)
{
    int n = g_range(&g->rng, 1, 4);

    fl_buf_reset(&g->up);
    for (int i = 0; i < g->ndown; i++)
        free(g->down[i]);
    g->ndown = 0;
    for (int i = 0; i < g->nrules; i++)
        free(g->rules[i]);
    g->nrules = 0;
    memcpy(g->t, g->made, sizeof(g->t));
    for (int i = 0; i < n; i++) {
        g_table_t *t = g_live(g);
        if (t == NULL)
            break;
        g_statement(g, g_range(&g->rng, 0, G_KINDS - 1), t);
    }
}

/* The migration file: options, up, and the downs newest first. */
static char *
g_migration_text(const g_gen_t *g)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (int i = 0; i < g->nrules; i++)
        fl_buf_addf(&b, "-- flotilla:options allow=%s generated test\n",
                            g->rules[i]);
    fl_buf_addf(&b, "-- flotilla:up\n%s-- flotilla:down\n", fl_buf_str(&g->up));
    for (int i = g->ndown - 1; i >= 0; i--)
        fl_buf_addf(&b, "%s\n", g->down[i]);
    if (g->ndown == 0)
        fl_buf_adds(&b, "SELECT 1;\n");
    return fl_buf_detach(&b);
}

/*
 * Adds an allow for every error `flotilla lint` reports on the migration
 * in mdir that the generator did not foresee.  Returns how many.
 */
static int
g_allow_lint_errors(g_gen_t *g, const char *mdir)
{
    const char *argv[] = {"flotilla", "lint", "--format", "json", mdir, NULL};
    fl_test_proc_t r;
    json_error_t jerr;
    json_t *o = NULL, *f = NULL;
    size_t i;
    int added = 0;

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    o = json_loads(r.out, 0, &jerr);
    if (o == NULL)
        fail_msg("flotilla lint --format json: not JSON (%s): %s %s", jerr.text,
                 r.out, r.err);
    json_array_foreach(json_object_get(o, "findings"), i, f) {
        const char *sev = json_string_value(json_object_get(f, "severity"));
        const char *rule = json_string_value(json_object_get(f, "rule"));
        if (sev == NULL || rule == NULL || strcmp(sev, "error") != 0)
            continue;
        if (strcmp(rule, "syntax-error") == 0)
            fail_msg("the generator wrote invalid SQL:\n%s\n%s", fl_buf_str(&g->up),
                     r.out);
        added += g_allow(g, rule);
    }
    json_decref(o);
    fl_test_proc_release(&r);
    return added;
}

/* Outcomes of one seed. */
enum { G_PASSED, G_REFUSED, G_INCONCLUSIVE, G_FAILED };

typedef struct {
    int seed;
    char *log;
    char *kind;    /* what failed, for the summary */
} g_result_t;

/* A short name for what differs: the kinds of the changed dump lines. */
static char *
g_diff_kind(const char *before, const char *after)
{
    static const struct {
        const char *prefix;
        const char *name;
    } kinds[] = {
        {"{", "rows"}, {"sequence ", "sequence position"},
        {"CREATE INDEX", "index"}, {"CREATE UNIQUE INDEX", "index"},
        {"    ADD CONSTRAINT", "constraint"}, {"    CONSTRAINT", "constraint"},
        {"CREATE TRIGGER", "trigger"}, {"ALTER TABLE ONLY", "default or constraint"},
        {"COMMENT ON", "comment"}, {"GRANT", "grant"}, {"REVOKE", "grant"},
        {"ALTER TABLE", "owner or table"}, {"    ", "column"},
        {"CREATE TABLE", "table"}, {"CREATE SEQUENCE", "sequence"},
    };
    const char *docs[2] = {before, after};
    int seen[sizeof(kinds) / sizeof(kinds[0])] = {0};
    fl_buf_t b = FL_BUF_INIT(0);

    /* A line of one dump absent from the other, by plain search. */
    for (int side = 0; side < 2; side++) {
        const char *p = docs[side];
        while (*p) {
            const char *end = strchr(p, '\n');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            char *line = fl_asprintf("\n%.*s\n", (int)len, p);
            char *other = fl_asprintf("\n%s", docs[1 - side]);
            if (strstr(other, line) == NULL) {
                for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
                    if (strncmp(line + 1, kinds[k].prefix, strlen(kinds[k].prefix)) == 0) {
                        seen[k] = 1;
                        break;
                    }
            }
            free(line);
            free(other);
            p += len + (end != NULL);
        }
    }
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (seen[k] && strstr(fl_buf_str(&b), kinds[k].name) == NULL)
            fl_buf_addf(&b, "%s%s", b.len ? ", " : "", kinds[k].name);
    return fl_buf_detach(&b);
}

/* The error line of a failed run, without names and numbers. */
static char *
g_error_kind(const fl_test_proc_t *r)
{
    const char *e = strstr(r->err, "error: ");
    fl_buf_t b = FL_BUF_INIT(0);
    int quoted = 0;

    if (e == NULL)
        return fl_asprintf("exit %d", r->status);
    for (e += 7; *e && *e != '\n'; e++) {
        if (*e == '"') {
            quoted = !quoted;
            if (quoted)
                fl_buf_adds(&b, "X");
        } else if (!quoted && !(*e >= '0' && *e <= '9')) {
            fl_buf_addf(&b, "%c", *e);
        }
    }
    return fl_buf_detach(&b);
}

/* Runs flotilla apply or rollback of the migration in dir/m on db. */
static void
g_flotilla(fl_test_proc_t *r, const char *dir, const fl_test_db_t *db,
           const char *cmd)
{
    char *mdir = fl_asprintf("%s/m", dir);
    char *log = fl_asprintf("%s/migration-execution.log", dir);

    fl_test_flotilla(r, dir, db->conninfo, log, cmd,
                     strcmp(cmd, "rollback") == 0
                         ? (const char *const[]){"--quiet", "--last", NULL}
                         : (const char *const[]){"--quiet", NULL},
                     mdir);
    free(mdir);
    free(log);
}

/* Writes the migration to dir/m, with an allow for every lint error. */
static void
g_write_migration(g_gen_t *g, const char *dir)
{
    char *mdir = fl_asprintf("%s/m", dir);
    char *file = fl_asprintf("%s/0001_generated.sql", mdir);
    char *text = NULL;

    if (mkdir(mdir, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", mdir, strerror(errno));
    text = g_migration_text(g);
    fl_test_write_file(file, text);
    if (g_allow_lint_errors(g, mdir) > 0) {
        free(text);
        text = g_migration_text(g);
        fl_test_write_file(file, text);
    }
    fl_buf_addf(&g->log, "--- migration:\n%s", text);
    free(text);
    free(file);
    free(mdir);
}

/*
 * One attempt: a fresh database with the seed's schema, the migration,
 * apply, rollback, and the comparison.  Returns a G_* outcome; for
 * G_FAILED sets *kind.
 */
static int
g_attempt(g_gen_t *g, const char *dir, char **kind)
{
    fl_test_db_t db;
    PGconn *conn = NULL;
    char *before = NULL, *after = NULL, *diff = NULL, *why = NULL;
    char *kept = NULL;
    fl_test_proc_t r;
    int outcome = G_PASSED, applied = 0;

    fl_test_db_create(&db, "gen");
    conn = fl_test_db_connect(&db);
    fl_test_exec(conn, fl_buf_str(&g->schema));
    g_write_migration(g, dir);
    before = fl_test_canonical_dump_full(conn);
    /* A plan changes nothing: not a row, not a sequence's position. */
    g_flotilla(&r, dir, &db, "plan");
    fl_buf_addf(&g->log, "--- plan exited %d\n%s%s", r.status, r.out, r.err);
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump_full(conn);
    diff = fl_test_diff(before, after);
    if (diff != NULL) {
        fl_buf_addf(&g->log, "--- dump before plan -> after it:\n%s", diff);
        why = g_diff_kind(before, after);
        *kind = fl_asprintf("plan changed the database in: %s", why);
        outcome = G_FAILED;
        goto done;
    }
    fl_free(&after);
    g_flotilla(&r, dir, &db, "apply");
    if (r.status == 0) {
        applied = 1;
        fl_test_proc_release(&r);
        g_flotilla(&r, dir, &db, "rollback");
    }
    fl_buf_addf(&g->log, "--- %s exited %d\n%s%s", applied ? "rollback" : "apply",
                        r.status, r.out, r.err);
    after = fl_test_canonical_dump_full(conn);
    if (!applied) {
        /* A transaction rolled back does not take back its nextval()s. */
        fl_test_dump_without(before, "sequence ");
        fl_test_dump_without(after, "sequence ");
    }
    diff = fl_test_diff(before, after);
    if (diff != NULL)
        fl_buf_addf(&g->log, "--- dump before apply -> now:\n%s", diff);
    /*
     * Nobody but the migration and the rollback wrote: a copy kept of a
     * table with a key (the rows a down rewrote taken for the
     * application's) says what did not happen.
     */
    if (applied && r.status == 0)
        kept = fl_test_query_value(conn, "SELECT string_agg(source_table"
            " || ' ' || row_count, ', ') FROM flotilla.backups"
            " WHERE statement_index = -2 AND cardinality(key_columns) > 0");
    if (applied && r.status != 0) {
        why = g_error_kind(&r);
        *kind = fl_asprintf("rollback failed: %s", why);
        outcome = G_FAILED;
    } else if (!applied && r.status != 1 && r.status != 3) {
        *kind = fl_asprintf("apply exited %d", r.status);
        outcome = G_FAILED;
    } else if (diff != NULL) {
        why = g_diff_kind(before, after);
        *kind = fl_asprintf("%s, yet the database differs in: %s",
                            applied ? "rolled back" : r.status == 3
                                ? "apply refused" : "apply failed", why);
        outcome = G_FAILED;
    } else if (kept != NULL && kept[0] != '\0') {
        *kind = fl_asprintf("rolled back, and kept copies of rows nobody "
                            "wrote since the migration (table rows: %s)",
                            kept);
        outcome = G_FAILED;
    } else if (!applied) {
        outcome = r.status == 3 ? G_REFUSED : G_INCONCLUSIVE;
        why = g_error_kind(&r);
        *kind = fl_asprintf("apply %s: %s", r.status == 3 ? "refused" : "failed", why);
    }
    fl_test_proc_release(&r);
done:
    PQfinish(conn);
    fl_test_db_drop(&db);
    free(before);
    free(after);
    free(diff);
    free(why);
    free(kept);
    return outcome;
}

/* ---- the application writes between apply and rollback --------------- */

/* Runs sql, which may fail (the application's own statement): 1 if it ran. */
static int
g_try(g_gen_t *g, PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
             PQresultStatus(res) == PGRES_TUPLES_OK;

    fl_buf_addf(&g->log, "--- app: %s%s%s", sql, ok ? "\n" : "\n    failed: ",
                ok ? "" : PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

/*
 * What an application does after the migration: rows of tables others
 * refer to deleted (where their keys allow it: a row the restore puts
 * back may then refer to nothing); in each table it left, some rows get a
 * value of b of their own ('app-...', unique), and a keyed table gets
 * rows under keys 1 to 60 it does not hold (the keys the migration
 * deleted among them), with such values too.
 */
static void
g_app_writes(g_gen_t *g, PGconn *conn)
{
    for (int i = 0; i < g->ntables; i++) {
        const g_table_t *t = &g->t[i];
        char *sql = NULL;

        if (t->dropped || !g_keyed(t) || !g_referenced(g, i))
            continue;
        sql = fl_asprintf("DELETE FROM %s WHERE id %% %d = 0", t->q,
                          g_range(&g->rng, 2, 5));
        (void)g_try(g, conn, sql);
        free(sql);
    }
    for (int i = 0; i < g->ntables; i++) {
        const g_table_t *t = &g->t[i];
        int m = g_range(&g->rng, 2, 4);
        char *sql = NULL;

        if (t->dropped)
            continue;
        sql = fl_asprintf("UPDATE %s SET b = 'app-%d-' || ctid::text"
                          " WHERE a %% %d = %d", t->q, i, m,
                          g_range(&g->rng, 0, m - 1));
        (void)g_try(g, conn, sql);
        free(sql);
        if (!g_keyed(t))
            continue;
        sql = fl_asprintf("INSERT INTO %s (id, a, b)%s SELECT k, k,"
                          " 'app-%d-new-' || k FROM generate_series(1, 60) k"
                          " WHERE k %% %d = 0 ON CONFLICT DO NOTHING", t->q,
                          t->key == K_ALWAYS ? " OVERRIDING SYSTEM VALUE" : "",
                          i, g_range(&g->rng, 1, 3));
        (void)g_try(g, conn, sql);
        free(sql);
    }
}

/*
 * Every value of a column b starting 'app-' in the managed tables, and
 * with kept 1 in the copies a rollback kept (flotilla.backups rows of
 * statement_index -2), one a line, sorted, without repeats.
 */
static char *
g_app_values(PGconn *conn, int kept)
{
    const char *tables =
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'b'"
        " AND NOT a.attisdropped WHERE c.relkind = 'r'"
        " AND (n.nspname IN ('public', 'gen') OR ($1::bool AND format('%I.%I',"
        " n.nspname, c.relname) IN (SELECT location FROM flotilla.backups"
        " WHERE statement_index = -2)))";
    const char *p[1] = {kept ? "true" : "false"};
    PGresult *res = NULL;
    fl_buf_t q = FL_BUF_INIT(0);
    char *v = NULL;

    /* Called after an apply: the ledger is there. */
    res = PQexecParams(conn, tables, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("the tables with a column b: %s", PQresultErrorMessage(res));
    fl_buf_adds(&q, "SELECT coalesce(string_agg(DISTINCT v, E'\\n' ORDER BY v),"
                    " '') FROM (SELECT NULL::text AS v");
    for (int i = 0; i < PQntuples(res); i++)
        fl_buf_addf(&q, " UNION ALL SELECT b::text FROM ONLY %s"
                        " WHERE b::text LIKE 'app-%%'", PQgetvalue(res, i, 0));
    fl_buf_adds(&q, ") x");
    PQclear(res);
    v = fl_test_query_value(conn, fl_buf_str(&q));
    fl_buf_release(&q);
    return v;
}

/* The first line of want that is not a line of have, or NULL. */
static char *
g_missing_line(const char *want, const char *have)
{
    const char *w = want;

    while (*w) {
        size_t n = strcspn(w, "\n");
        char *line = fl_strndup(w, n);
        const char *h = have;
        int found = 0;

        while (*h && !found) {
            size_t m = strcspn(h, "\n");
            found = m == n && strncmp(h, line, n) == 0;
            h += m + (h[m] == '\n');
        }
        if (!found && n > 0)
            return line;
        free(line);
        w += n + (w[n] == '\n');
    }
    return NULL;
}

/*
 * The foreign keys that rows break, as PostgreSQL sees them: each is
 * dropped and added again (which checks every row) in a transaction
 * rolled back.  Returns the first broken one, or NULL.
 */
static char *
g_broken_key(PGconn *conn)
{
    PGresult *res = PQexec(conn,
        "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I;"
        " ALTER TABLE %s ADD CONSTRAINT %I %s', k.conrelid::regclass,"
        " k.conname, k.conrelid::regclass, k.conname,"
        " pg_get_constraintdef(k.oid)), k.conname FROM pg_constraint k"
        " JOIN pg_namespace n ON n.oid = k.connamespace"
        " WHERE k.contype = 'f' AND n.nspname IN ('public', 'gen')");
    char *broken = NULL;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("foreign keys: %s", PQresultErrorMessage(res));
    for (int i = 0; i < PQntuples(res) && broken == NULL; i++) {
        PGresult *x = NULL;
        PQclear(PQexec(conn, "BEGIN"));
        x = PQexec(conn, PQgetvalue(res, i, 0));
        if (PQresultStatus(x) != PGRES_COMMAND_OK)
            broken = fl_asprintf("%s: %s", PQgetvalue(res, i, 1),
                                 PQresultErrorMessage(x));
        PQclear(x);
        PQclear(PQexec(conn, "ROLLBACK"));
    }
    PQclear(res);
    return broken;
}

/*
 * One seed with the application at work between apply and rollback: a
 * rollback that succeeds leaves every value the application wrote in its
 * table or in a copy it kept, and every foreign key holding; one that
 * fails is refused for a foreign key the restore would break, with
 * nothing changed.  A migration that does not apply is test 1's.
 */
/*
 * The application's transaction that began before the migration (its
 * xid older) and writes after it: one UPDATE of the first table left,
 * committed; a failure rolls it back (nothing written, nothing to keep).
 */
static void
g_old_writes(g_gen_t *g, PGconn *old)
{
    for (int i = 0; i < g->ntables; i++) {
        char *sql = NULL;

        if (g->t[i].dropped)
            continue;
        sql = fl_asprintf("UPDATE %s SET b = 'app-old-%d-' || ctid::text"
                          " WHERE a %% 3 = 1", g->t[i].q, i);
        if (!g_try(g, old, sql))
            (void)g_try(g, old, "ROLLBACK");
        free(sql);
        break;
    }
    (void)g_try(g, old, "COMMIT");
}

static int
g_attempt_with_app(g_gen_t *g, const char *dir, char **kind)
{
    fl_test_db_t db;
    PGconn *conn = NULL, *old = NULL;
    char *wrote = NULL, *before = NULL, *after = NULL, *missing = NULL,
         *broken = NULL;
    fl_test_proc_t r;
    int outcome = G_PASSED;

    fl_test_db_create(&db, "genapp");
    conn = fl_test_db_connect(&db);
    fl_test_exec(conn, fl_buf_str(&g->schema));
    g_write_migration(g, dir);
    /* An application transaction older than the migration (g_old_writes). */
    old = fl_test_db_connect(&db);
    fl_test_exec(old, "BEGIN; SELECT pg_current_xact_id()");
    g_flotilla(&r, dir, &db, "apply");
    if (r.status != 0) {
        *kind = fl_asprintf("apply exited %d", r.status);
        outcome = G_INCONCLUSIVE;
        goto done;
    }
    fl_test_proc_release(&r);
    g_old_writes(g, old);
    g_app_writes(g, conn);
    wrote = g_app_values(conn, 0);
    before = fl_test_canonical_dump_full(conn);
    g_flotilla(&r, dir, &db, "rollback");
    fl_buf_addf(&g->log, "--- rollback exited %d\n%s%s", r.status, r.out, r.err);
    after = fl_test_canonical_dump_full(conn);
    if (r.status == 1 && strstr(r.err, "the restore leaves") != NULL) {
        char *diff = fl_test_diff(before, after);
        outcome = diff ? G_FAILED : G_REFUSED;
        *kind = fl_strdup(diff ? "the rollback refused for a foreign key, yet"
                                 " the database changed"
                               : "refused: a foreign key the restore would"
                                 " break");
        if (diff)
            fl_buf_addf(&g->log, "--- dump before rollback -> now:\n%s", diff);
        free(diff);
        goto done;
    }
    if (r.status != 0) {
        char *why = g_error_kind(&r);
        *kind = fl_asprintf("rollback failed: %s", why);
        free(why);
        outcome = G_FAILED;
        goto done;
    }
    {
        char *now = g_app_values(conn, 1);
        missing = g_missing_line(wrote, now);
        free(now);
    }
    broken = g_broken_key(conn);
    if (missing) {
        *kind = fl_asprintf("rolled back, and the value %s the application"
                            " wrote is nowhere", missing);
        outcome = G_FAILED;
    } else if (broken) {
        *kind = fl_asprintf("rolled back, and a foreign key is broken: %s",
                            broken);
        outcome = G_FAILED;
    }
done:
    fl_test_proc_release(&r);
    PQfinish(old);
    PQfinish(conn);
    fl_test_db_drop(&db);
    free(wrote);
    free(before);
    free(after);
    free(missing);
    free(broken);
    return outcome;
}

typedef int (*g_attempt_fn)(g_gen_t *g, const char *dir, char **kind);

/*
 * Runs the seeds FLOTILLA_GEN_SEED(S) names, each through attempt (up to
 * G_ATTEMPTS migrations while it is inconclusive), printing every seed
 * and the log of a failed one; counts[] gets the outcomes.  Returns 1
 * when one seed alone was asked for.
 */
static int
g_run_seeds(const char *label, g_attempt_fn attempt, int counts[4])
{
    long only = fl_test_env_long("FLOTILLA_GEN_SEED", 0);
    long nseeds = fl_test_env_long("FLOTILLA_GEN_SEEDS", 32);
    long first = only ? only : 1, last = only ? only : nseeds;
    fl_buf_t summary = FL_BUF_INIT(0);  /* every seed that did not simply pass */
    char *dir = fl_test_tmpdir();

    fl_test_create_role("fl_reader");
    for (long seed = first; seed <= last; seed++) {
        g_gen_t g;
        int outcome = G_INCONCLUSIVE;
        char *kind = NULL;

        memset(&g, 0, sizeof(g));
        g.rng.s = (uint64_t)seed;
        fl_buf_init(&g.schema, 0);
        fl_buf_init(&g.up, 0);
        fl_buf_init(&g.log, 0);
        g_make_schema(&g);
        for (int a = 0; a < G_ATTEMPTS && outcome == G_INCONCLUSIVE; a++) {
            free(kind);
            kind = NULL;
            g_make_migration(&g);
            outcome = attempt(&g, dir, &kind);
        }
        counts[outcome]++;
        if (outcome == G_FAILED || only)
            fprintf(stderr, "=== %sseed %ld (FLOTILLA_GEN_SEED=%ld runs it"
                            " alone)\n--- schema:\n%s%s", label, seed, seed,
                    fl_buf_str(&g.schema), fl_buf_str(&g.log));
        fprintf(stderr, "=== %sseed %ld: %s%s%s\n", label, seed,
                (const char *const[]){"passed", "refused unchanged",
                                      "inconclusive (every migration failed by"
                                      " itself)", "FAILED"}[outcome],
                kind ? ": " : "", kind ? kind : "");
        if (outcome != G_PASSED)
            fl_buf_addf(&summary, "  %sseed %ld %s: %s\n", label, seed,
                        outcome == G_FAILED ? "FAILED" : "(ok)", kind);
        free(kind);
        for (int i = 0; i < g.ndown; i++)
            free(g.down[i]);
        for (int i = 0; i < g.nrules; i++)
            free(g.rules[i]);
        fl_buf_release(&g.schema);
        fl_buf_release(&g.up);
        fl_buf_release(&g.log);
    }
    fl_test_rmtree(dir);
    free(dir);
    fprintf(stderr, "=== %ld %sseeds: %d passed, %d refused unchanged, %d"
                    " inconclusive, %d failed\n%s", last - first + 1, label,
            counts[G_PASSED], counts[G_REFUSED], counts[G_INCONCLUSIVE],
            counts[G_FAILED], fl_buf_str(&summary));
    fl_buf_release(&summary);
    if (counts[G_FAILED] > 0)
        fail_msg("%d of %ld %sseeds failed (listed above); FLOTILLA_GEN_SEED=N"
                 " runs seed N alone", counts[G_FAILED], last - first + 1,
                 label);
    return only != 0;
}

static void
test_generated_migrations_roll_back_or_are_refused(void **state)
{
    int counts[4] = {0};

    (void)state;
    (void)g_run_seeds("", g_attempt, counts);
}

static void
test_generated_application_writes_are_kept_or_refused(void **state)
{
    int counts[4] = {0};
    int only;

    (void)state;
    only = g_run_seeds("app ", g_attempt_with_app, counts);
    /* The seeds reach both sides: kept and passed, refused for a key. */
    if (!only && (counts[G_PASSED] == 0 || counts[G_REFUSED] == 0))
        fail_msg("the app seeds did not reach both sides: %d passed, %d"
                 " refused", counts[G_PASSED], counts[G_REFUSED]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_migrations_roll_back_or_are_refused),
        cmocka_unit_test(test_generated_application_writes_are_kept_or_refused),
    };
    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("rollback_gen", tests, NULL, NULL);
}
