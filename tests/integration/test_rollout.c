/*
 * Integration tests of staged rollouts (issue 12): the real coordinator,
 * three agents each beside its own PostgreSQL server (the shards
 * tests/run.sh starts) and 31 tenant databases, driven with `flotilla
 * rollout`; every claim is read from the targets' ledgers
 * (flotilla.schema_migrations, flotilla.migration_logs), their catalogs
 * and data, and the control database, not from what the processes say.
 *
 * The fleet: shard k holds tenants PREFIX_t_k_00..09 (label tier=main),
 * shard 0 also PREFIX_c_0 (tier=canary), all copies of one template with
 * a table of 20 rows.  Target names are "shard-K/DATABASE".  The label
 * "server" says which PostgreSQL server a target lives on, for the
 * per-server cap: the tenants of shards 0 and 1 say server=pg01, as if
 * their two agents owned databases of one server; shard 2's pg02.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/file.h"
#include "fleetsupport.h"
#include "pgproxy.h"

#define S_PER_SHARD 10
#define S_TENANTS (3 * S_PER_SHARD + 1)
#define S_SERVER(k) ((k) < 2 ? "pg01" : "pg02")
/* `flotilla rollout` exit codes (cli/cli.h). */
#define S_EXIT_HALTED 7
#define S_EXIT_ROLLED_BACK 8

typedef struct {
    int shard;
    char db[64];
    char name[96];
} s_tenant_t;

typedef struct {
    fl_fleet_t f;
    int passed;
    char p[32];
    s_tenant_t t[S_TENANTS]; /* t[0] is the canary */
} s_state;

/* One fleet for every test (the group's); each test resets the tenants. */
static void s_fleet(s_state *s, const char *coord_extra);
static void s_reset(s_state *s);

static int
s_group_setup(void **state)
{
    s_state *s = fl_calloc(1, sizeof(*s));

    snprintf(s->p, sizeof(s->p), "ro%ld", (long)getpid());
    *state = s;
    s_fleet(s, NULL);
    s->passed = 1;
    return 0;
}

static int
s_group_teardown(void **state)
{
    s_state *s = *state;

    if (!s->passed && s->f.dir != NULL)
        setenv("FLOTILLA_KEEP_FLEET", "1", 1);
    if (s->f.dir != NULL && s->passed)
        fl_fleet_stop_clean(&s->f);
    if (s->f.dir != NULL)
        fl_fleet_close(&s->f);
    unsetenv("FLOTILLA_KEEP_FLEET");
    free(s);
    return 0;
}

/* Before each test: every daemon running, every tenant fresh. */
static int
s_setup(void **state)
{
    s_state *s = *state;

    if (s->f.coord_pid == 0)
        fl_fleet_start_coordinator(&s->f);
    for (int k = 0; k < s->f.nagents; k++)
        if (s->f.agents[k].pid == 0)
            fl_fleet_start_agent(&s->f, k);
    s_reset(s);
    s->passed = 0;
    return 0;
}

static int
s_teardown(void **state)
{
    (void)state;
    return 0;
}

/* Values and counts on a tenant's database. */

static char *
s_value(s_state *s, int i, const char *sql)
{
    return fl_fleet_query(&s->f, s->t[i].shard, s->t[i].db, sql);
}

static long
s_long(s_state *s, int i, const char *sql)
{
    char *v = s_value(s, i, sql);
    long n = v ? strtol(v, NULL, 10) : -1;

    free(v);
    return n;
}

static int
s_has_ledger(s_state *s, int i)
{
    return s_long(s, i, "SELECT (to_regclass('flotilla.schema_migrations')"
                  " IS NOT NULL)::int") == 1;
}

/* Ledger rows (schema_migrations and migration_logs) naming rollout. */
static long
s_ledger_rows(s_state *s, int i, const char *rollout)
{
    char *sql = NULL;
    long n;

    if (!s_has_ledger(s, i))
        return 0;
    sql = fl_asprintf("SELECT (SELECT count(*) FROM flotilla.schema_migrations"
                      " WHERE rollout_id = '%s') + (SELECT count(*) FROM"
                      " flotilla.migration_logs WHERE rollout_id = '%s')",
                      rollout, rollout);
    n = s_long(s, i, sql);
    free(sql);
    return n;
}

/* How many times migration version ran its execute step to success. */
static long
s_executed(s_state *s, int i, int version)
{
    char *sql = NULL;
    long n;

    if (!s_has_ledger(s, i))
        return 0;
    sql = fl_asprintf("SELECT count(*) FROM flotilla.migration_logs WHERE"
                      " version = '%d' AND step = 'execute' AND status = 'ok'",
                      version);
    n = s_long(s, i, sql);
    free(sql);
    return n;
}

static char *
s_status_of(s_state *s, int i, int version)
{
    char *sql = NULL, *v = NULL;

    if (!s_has_ledger(s, i))
        return NULL;
    sql = fl_asprintf("SELECT (SELECT status FROM flotilla.schema_migrations"
                      " WHERE version = '%d')", version);
    v = s_value(s, i, sql);
    free(sql);
    return v;
}

static int
s_has_column(s_state *s, int i, const char *column)
{
    char *sql = fl_asprintf("SELECT count(*) FROM information_schema.columns"
                            " WHERE table_name = 'items' AND column_name ="
                            " '%s'", column);
    long n = s_long(s, i, sql);

    free(sql);
    return n == 1;
}

static char *
s_dump(s_state *s, int i)
{
    PGconn *c = fl_fleet_connect(&s->f, s->t[i].shard, s->t[i].db);
    char *d = fl_test_canonical_dump(c);

    PQfinish(c);
    return d;
}

/* Fails unless sql's one value on tenant i is want. */
static void
s_expect_value(s_state *s, int i, const char *sql, const char *want)
{
    char *v = s_value(s, i, sql);

    if (v == NULL || strcmp(v, want) != 0)
        fail_msg("%s on %s: %s, wanted %s", sql, s->t[i].name,
                 v ? v : "(nothing)", want);
    free(v);
}

static void
s_exec_on(s_state *s, int i, const char *sql)
{
    PGconn *c = fl_fleet_connect(&s->f, s->t[i].shard, s->t[i].db);

    fl_test_exec(c, sql);
    PQfinish(c);
}

/* The fleet. */

#define S_ITEMS                                                             \
    "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL DEFAULT 0,"     \
    " note text);"                                                          \
    "INSERT INTO items SELECT g, g * 10, 'note ' || g"                      \
    " FROM generate_series(1, 20) g"

typedef struct {
    s_state *s;
    int skip_shard;   /* -1: none */
    int64_t asked_ms; /* when the agents were last asked to discover */
} s_fresh_t;

static int
s_all_fresh(const json_t *rows, void *arg)
{
    s_fresh_t *w = arg;
    s_state *s = w->s;

    for (int i = 0; i < S_TENANTS; i++) {
        const json_t *r = fl_fleet_row(rows, "target", s->t[i].name);

        if (s->t[i].shard == w->skip_shard)
            continue;
        if (r == NULL ||
            strcmp(json_string_value(json_object_get(r, "reachability")),
                   "reachable") != 0 ||
            !json_is_null(json_object_get(r, "applied_version"))) {
            fl_fleet_rediscover(&s->f, &w->asked_ms);
            return 0;
        }
    }
    return 1;
}

/* Every tenant (but those of skip_shard) reachable, its ledger empty. */
static void
s_wait_fresh(s_state *s, int skip_shard)
{
    s_fresh_t w = {s, skip_shard, 0};

    fl_fleet_wait(&s->f, "targets", s_all_fresh, &w, 60,
                  "every tenant reachable with an empty ledger");
}

/*
 * Every tenant as the template made it: no ledger, no backups, the table
 * and its 20 rows again, and none of the tables the tests' bundles make
 * (a test's first_t was still there for the next test whose bundle made
 * it, whose canary then failed "already exists").  The agents read the ledgers again on their next
 * discovery, which the wait asks for (SIGHUP); the test waits until the
 * coordinator has.
 */
static void
s_reset(s_state *s)
{
    for (int i = 0; i < S_TENANTS; i++)
        s_exec_on(s, i, "SET client_min_messages = warning;"
                        "DROP SCHEMA IF EXISTS flotilla CASCADE;"
                        "DROP SCHEMA IF EXISTS flotilla_backup CASCADE;"
                        "DROP VIEW IF EXISTS rq_v;"
                        "DROP TABLE IF EXISTS items, slow_t, part_t, fx,"
                        " first_t, second_t, quick_t, rq_t, accounts"
                        " CASCADE;" S_ITEMS);
    s_wait_fresh(s, -1);
}

typedef struct {
    const char *const *names;
    int n;
    fl_fleet_t *f;    /* when set, the agents are asked to read again */
    int64_t asked_ms;
} s_all_t;

static int
s_all_reachable(const json_t *rows, void *arg)
{
    s_all_t *w = arg;

    for (int i = 0; i < w->n; i++) {
        const json_t *r = fl_fleet_row(rows, "target", w->names[i]);
        if (r == NULL || strcmp(json_string_value(json_object_get(
                                    r, "reachability")),
                                "reachable") != 0) {
            if (w->f != NULL)
                fl_fleet_rediscover(w->f, &w->asked_ms);
            return 0;
        }
    }
    return 1;
}

/*
 * Every tenant reachable: after a restart of the coordinator or an
 * agent, or a cut that failed a ledger read (the coordinator takes a
 * target whose last read failed for unreachable until the next one).
 */
static void
s_wait_reachable(s_state *s)
{
    const char *names[S_TENANTS];
    s_all_t w = {names, S_TENANTS, &s->f, 0};

    for (int i = 0; i < S_TENANTS; i++)
        names[i] = s->t[i].name;
    fl_fleet_wait(&s->f, "targets", s_all_reachable, &w, 60,
                  "all 31 tenants reachable");
}

/*
 * The coordinator (coord_extra appended to its configuration), three
 * agents and 31 tenants, every one reachable.
 */
static void
s_fleet(s_state *s, const char *coord_extra)
{
    fl_fleet_t *f = &s->f;
    const char *names[S_TENANTS];
    char tpl[64];
    int n = 0;

    fl_fleet_open(f, s->p, coord_extra);
    snprintf(tpl, sizeof(tpl), "%s_tpl", s->p);
    for (int k = 0; k < 3; k++) {
        PGconn *c = NULL;

        fl_fleet_createdb(f, k, tpl);
        c = fl_fleet_connect(f, k, tpl);
        fl_test_exec(c, S_ITEMS);
        PQfinish(c);
    }
    s->t[n].shard = 0;
    snprintf(s->t[n].db, 64, "%s_c_0", s->p);
    n++;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < S_PER_SHARD; i++) {
            s->t[n].shard = k;
            snprintf(s->t[n].db, 64, "%s_t_%d_%02d", s->p, k, i);
            n++;
        }
    for (int i = 0; i < S_TENANTS; i++) {
        fl_fleet_createdb_from(f, s->t[i].shard, s->t[i].db, tpl);
        snprintf(s->t[i].name, 96, "shard-%d/%s", s->t[i].shard, s->t[i].db);
        names[i] = s->t[i].name;
    }
    fl_fleet_start_coordinator(f);
    for (int k = 0; k < 3; k++) {
        char tail[512], name[16];
        snprintf(tail, sizeof(tail),
                 "discover:\n"
                 "  - databases: \"%s_t_%d_*\"\n"
                 "    labels: [tier=main, server=%s]\n"
                 "%s%s%s",
                 s->p, k, S_SERVER(k), k == 0 ? "  - databases: \"" : "",
                 k == 0 ? s->p : "",
                 k == 0 ? "_c_*\"\n    labels: [tier=canary, server=pg01]\n"
                        : "");
        snprintf(name, sizeof(name), "shard-%d", k);
        fl_fleet_start_agent(f, fl_fleet_add_agent(f, name, k, 1, tail));
    }
    {
        s_all_t w = {names, S_TENANTS, &s->f, 0};
        fl_fleet_wait(f, "targets", s_all_reachable, &w, 60,
                      "all 31 tenants reachable");
    }
}

static char *
s_bundle(s_state *s, const char *name, const char *const *files)
{
    fl_fleet_t *f = &s->f;
    char *dir = fl_fleet_path(f, name);
    char *file = fl_asprintf("%s.bundle", name);
    char *out = fl_fleet_path(f, file);

    assert_int_equal(mkdir(dir, 0700), 0);
    for (int i = 0; files[i] != NULL; i += 2) {
        char *p = fl_asprintf("%s/%s", dir, files[i]);
        fl_test_write_file(p, files[i + 1]);
        free(p);
    }
    fl_fleet_bundle(f, f->key, dir, out);
    free(dir);
    free(file);
    return out;
}

/* Stops shard k's agent and waits until the coordinator sees it gone. */
static void
s_stop_shard(s_state *s, int k)
{
    int64_t deadline = fl_clock_ms() + (int64_t)(30000 *
                                                 fl_test_timeout_scale());
    char name[16];

    snprintf(name, sizeof(name), "shard-%d", k);
    fl_fleet_signal_agent(&s->f, k, SIGTERM);
    for (;;) {
        json_t *rows = fl_fleet_json(&s->f, "agents", NULL);
        const json_t *r = fl_fleet_row(rows, "name", name);
        int off = r != NULL &&
                  strcmp(json_string_value(json_object_get(r, "state")),
                         "online") != 0;
        json_decref(rows);
        if (off)
            break;
        if (fl_clock_ms() > deadline)
            fail_msg("%s still online", name);
        fl_clock_sleep_ms(50);
    }
}

/* Runs `flotilla rollout ARGS... --json`; wants exit want (-1: any). */
static json_t *
s_rollout(s_state *s, int want, const char *const *args)
{
    const char *argv[32] = {"flotilla", "rollout"};
    fl_test_proc_t res = {0, NULL, NULL};
    json_t *j = NULL;
    int n = 2;

    for (int i = 0; args[i] != NULL; i++)
        argv[n++] = args[i];
    argv[n++] = "--json";
    argv[n] = NULL;
    fl_fleet_cli(&s->f, &res, argv);
    if (want >= 0 && res.status != want)
        fail_msg("flotilla rollout %s: exit %d, wanted %d\n%s\n%s", args[0],
                 res.status, want, res.out, res.err);
    j = json_loads(res.out, 0, NULL);
    if (j == NULL)
        fail_msg("flotilla rollout %s printed no JSON (exit %d):\n%s\n%s",
                 args[0], res.status, res.out, res.err);
    fl_test_proc_release(&res);
    return j;
}

static json_t *
s_status(s_state *s, const char *id)
{
    const char *args[] = {"status", id, NULL};

    return s_rollout(s, -1, args);
}

static long long
s_acc(const json_t *st, const char *key)
{
    return (long long)json_integer_value(
        json_object_get(json_object_get(st, "accounting"), key));
}

static const char *
s_st(const json_t *st)
{
    return json_string_value(json_object_get(st, "status"));
}

/* Polls the rollout's status until pred holds (at most 90 s, scaled). */
typedef int (*s_pred_fn)(const json_t *st, void *arg);

static json_t *
s_wait(s_state *s, const char *id, s_pred_fn pred, void *arg,
       const char *what)
{
    int64_t deadline = fl_clock_ms() + (int64_t)(90000 *
                                                 fl_test_timeout_scale());

    for (;;) {
        json_t *st = s_status(s, id);
        if (pred(st, arg))
            return st;
        if (fl_clock_ms() > deadline) {
            char *text = json_dumps(st, JSON_INDENT(1));
            fail_msg("rollout %s: not within 90 s: %s\n%s", id, what, text);
        }
        json_decref(st);
        /* Each poll is a process and a CURVE handshake: not too often. */
        fl_clock_sleep_ms(200);
    }
}

/* The waves a rollout's commands record, per tenant (from the control
 * database: the frozen set as written). */
static void
s_waves_of(s_state *s, const char *id, int *wave)
{
    PGconn *c = PQconnectdb(s->f.ctl.conninfo);

    for (int i = 0; i < S_TENANTS; i++) {
        char *sql = fl_asprintf("SELECT wave FROM flotilla_control.commands"
                                " WHERE dispatch_id = '%s' AND target ="
                                " '%s'", id, s->t[i].name);
        char *v = fl_test_query_value(c, sql);
        wave[i] = v ? (int)strtol(v, NULL, 10) : -1;
        free(v);
        free(sql);
    }
    PQfinish(c);
}

/*
 * The most migrations that ran at once, from the ledgers' own clocks (one
 * machine): each tenant's version-1 run, its start and end, over the
 * tenants of the shards in mask (bit k: shard k; -1: all).  A command's
 * run contains its migration's, so this is at most the commands that ran
 * at once.
 */
static int
s_max_overlap(s_state *s, int mask)
{
    double a[S_TENANTS], b[S_TENANTS];
    int n = 0, best = 0;

    for (int i = 0; i < S_TENANTS; i++) {
        char *x = NULL, *end = NULL;
        if (!(mask & (1 << s->t[i].shard)))
            continue;
        x = s_value(s, i, "SELECT extract(epoch FROM started_at) || ' ' ||"
                    " extract(epoch FROM finished_at) FROM"
                    " flotilla.schema_migrations WHERE version = '1'");
        if (x == NULL)
            fail_msg("%s: no run of version 1 in its ledger", s->t[i].name);
        a[n] = strtod(x, &end);
        b[n] = strtod(end, NULL);
        n++;
        free(x);
    }
    for (int i = 0; i < n; i++) {
        int at = 0;
        for (int j = 0; j < n; j++)
            at += a[j] <= a[i] && a[i] < b[j];
        if (at > best)
            best = at;
    }
    return best;
}

/* ADD COLUMN with a default, CREATE INDEX, UPDATE of every row. */
#define S_ADD_FLAG                                                          \
    "-- flotilla:options allow=require-concurrent-index-creation 20 rows\n"  \
    "-- flotilla:options allow=require-concurrent-index-deletion 20 rows\n"  \
    "-- flotilla:up\n"                                                       \
    "ALTER TABLE items ADD COLUMN flag int NOT NULL DEFAULT 7;\n"            \
    "CREATE INDEX items_flag ON items (flag);\n"                             \
    "UPDATE items SET v = v + 1;\n"                                          \
    "-- flotilla:down\n"                                                     \
    "DROP INDEX items_flag;\n"                                               \
    "ALTER TABLE items DROP COLUMN flag;\n"

/* A nullable column without a default: no rewrite, no lint finding. */
#define S_ADD_FLAG2                                                         \
    "-- flotilla:up\n"                                                       \
    "ALTER TABLE items ADD COLUMN flag2 int;\n"                              \
    "-- flotilla:down\n"                                                     \
    "ALTER TABLE items DROP COLUMN flag2;\n"

static const char *const s_add_column[] = {
    "0001_add_flag.sql", S_ADD_FLAG,
    NULL};

static const char *const s_add_column_and_more[] = {
    "0001_add_flag.sql", S_ADD_FLAG,
    "0002_add_flag2.sql", S_ADD_FLAG2,
    NULL};

/* Fails live validation where a note is NULL: the check counts them. */
static const char *const s_not_null[] = {
    "0001_note_required.sql",
    "-- flotilla:options allow=adding-not-nullable-field 20 rows\n"
    "-- flotilla:up\n"
    "ALTER TABLE items ALTER COLUMN note SET NOT NULL;\n"
    "-- flotilla:down\n"
    "ALTER TABLE items ALTER COLUMN note DROP NOT NULL;\n",
    NULL};

/*
 * A clean rollout through four waves (the canary by label, 10%, 50%,
 * 100%), with a bake time: every target applied exactly once, in the
 * waves written when the rollout started, each wave's first migration
 * started after the previous wave's last one finished plus the bake.
 * Then its fleet rollback, keeping what the application wrote.
 */
static void
test_rollout_staged_four_apply_every_target_once(void **state)
{
    s_state *s = *state;
    char *bundle = NULL;
    json_t *st = NULL;
    int wave[S_TENANTS], size[4] = {0, 0, 0, 0};
    const char *id = NULL;

    bundle = s_bundle(s, "b1", s_add_column);
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;10%;50%;100%",
                              "--bake", "1s", "--max-parallel-per-agent",
                              "3", "--watch", NULL};
        st = s_rollout(s, 0, args);
    }
    id = json_string_value(json_object_get(st, "id"));
    assert_string_equal(s_st(st), "completed");
    assert_int_equal(s_acc(st, "planned"), S_TENANTS);
    assert_int_equal(s_acc(st, "applied"), S_TENANTS);
    assert_int_equal(s_acc(st, "failed"), 0);
    assert_int_equal(s_acc(st, "untouched"), 0);
    s_waves_of(s, id, wave);
    for (int i = 0; i < S_TENANTS; i++) {
        assert_true(wave[i] >= 0 && wave[i] < 4);
        size[wave[i]]++;
        assert_int_equal(s_executed(s, i, 1), 1);
        assert_true(s_has_column(s, i, "flag"));
        assert_int_equal(s_long(s, i, "SELECT sum(v) FROM items"),
                         2100 + 20);
    }
    /* max_parallel_per_agent 3: never more than 3 on one agent's shard. */
    for (int k = 0; k < 3; k++)
        if (s_max_overlap(s, 1 << k) > 3)
            fail_msg("%d migrations at once on shard %d (cap 3)",
                     s_max_overlap(s, 1 << k), k);
    /* The canary alone, then 10% of 30 (3), 50% of 27 (14), the rest. */
    assert_int_equal(wave[0], 0);
    assert_int_equal(size[0], 1);
    assert_int_equal(size[1], 3);
    assert_int_equal(size[2], 14);
    assert_int_equal(size[3], 13);
    /* Wave k+1 started only after wave k finished and baked (1 s): read
     * from the ledgers' own clocks (one machine). */
    {
        double end[4] = {0, 0, 0, 0}, start[4] = {1e18, 1e18, 1e18, 1e18};
        for (int i = 0; i < S_TENANTS; i++) {
            char *a = s_value(s, i, "SELECT extract(epoch FROM started_at)"
                              " FROM flotilla.schema_migrations WHERE"
                              " version = '1'");
            char *b = s_value(s, i, "SELECT extract(epoch FROM finished_at)"
                              " FROM flotilla.schema_migrations WHERE"
                              " version = '1'");
            double x = strtod(a, NULL), y = strtod(b, NULL);
            if (x < start[wave[i]])
                start[wave[i]] = x;
            if (y > end[wave[i]])
                end[wave[i]] = y;
            free(a);
            free(b);
        }
        for (int k = 0; k < 3; k++)
            if (start[k + 1] < end[k] + 1.0)
                fail_msg("wave %d started %.3f s after wave %d ended (bake "
                         "1 s)", k + 2, start[k + 1] - end[k], k + 1);
    }
    /*
     * The application writes one flag on each of two tenants; the fleet
     * rollback drops the column everywhere and keeps, on those alone, the
     * row whose flag is not the column's DEFAULT, and the same row as the
     * restore replaces it (written since the migration: docs/pipeline.md,
     * "What down drops is kept").
     */
    s_exec_on(s, 2, "UPDATE items SET flag = 9 WHERE id = 1");
    s_exec_on(s, 5, "UPDATE items SET flag = 8 WHERE id = 4");
    {
        char *rid = fl_strdup(id);
        const char *args[] = {"rollback", rid, "--watch", NULL};
        json_t *rb = s_rollout(s, S_EXIT_ROLLED_BACK, args);
        const json_t *k = NULL;
        const char *targs[] = {"flotilla", "rollout", "status", rid, NULL};
        fl_test_proc_t text = {0, NULL, NULL};
        char *want[3] = {NULL, NULL, NULL};
        size_t i = 0;

        assert_int_equal(s_acc(rb, "rolled_back"), S_TENANTS);
        /* The operator is told where the application's data was kept. */
        assert_int_equal(s_acc(rb, "kept_targets"), 2);
        assert_int_equal(s_acc(rb, "kept_copies"), 4);
        assert_int_equal(json_array_size(json_object_get(rb, "kept")), 2);
        json_array_foreach(json_object_get(rb, "kept"), i, k) {
            const char *t = json_string_value(json_object_get(k, "target"));
            assert_true(strcmp(t, s->t[2].name) == 0 ||
                        strcmp(t, s->t[5].name) == 0);
            assert_int_equal(json_integer_value(json_object_get(k, "copies")),
                             2);
        }
        fl_fleet_cli(&s->f, &text, targs);
        want[0] = fl_strdup("kept 4 copies of data the rollbacks removed "
                            "on 2 targets: ");
        want[1] = fl_asprintf("%s (2)", s->t[2].name);
        want[2] = fl_asprintf("%s (2)", s->t[5].name);
        for (i = 0; i < 3; i++) {
            if (strstr(text.out, want[i]) == NULL)
                fail_msg("rollout status does not say \"%s\":\n%s", want[i],
                         text.out);
            free(want[i]);
        }
        /* Said once, as the block above (before, watch's event line and
         * its failures came first, then the block). */
        want[0] = fl_asprintf("rollout %s (", rid);
        want[1] = fl_asprintf("rollout %s: ", rid);
        if (strncmp(text.out, want[0], strlen(want[0])) != 0 ||
            strstr(text.out + 1, want[0]) != NULL ||
            strstr(text.out, want[1]) != NULL)
            fail_msg("rollout status does not say its state once:\n%s",
                     text.out);
        free(want[0]);
        free(want[1]);
        fl_test_proc_release(&text);
        json_decref(rb);
        /* Recorded: a restarted coordinator says the same. */
        fl_fleet_signal_coordinator(&s->f, SIGKILL);
        fl_fleet_start_coordinator(&s->f);
        rb = s_status(s, rid);
        assert_int_equal(s_acc(rb, "kept_targets"), 2);
        assert_int_equal(s_acc(rb, "kept_copies"), 4);
        json_decref(rb);
        free(rid);
    }
    for (int i = 0; i < S_TENANTS; i++) {
        assert_false(s_has_column(s, i, "flag"));
        assert_int_equal(s_long(s, i, "SELECT count(*) FROM flotilla.backups"
                                " WHERE statement_index = -2"),
                         i == 2 || i == 5 ? 2 : 0);
    }
    {
        /* The up's backup is b1; the down's copy comes next. */
        char *v = s_value(s, 2, "SELECT string_agg(location || ' '"
                          " || row_count, ',' ORDER BY id) FROM"
                          " flotilla.backups WHERE statement_index = -2");
        assert_string_equal(v, "flotilla_backup.b2 1,flotilla_backup.b3 1");
        free(v);
    }
    assert_int_equal(s_long(s, 2, "SELECT flag FROM flotilla_backup.b2"
                            " WHERE id = 1"), 9);
    json_decref(st);
    free(bundle);
    s->passed = 1;
}

/*
 * The canary's data fails live validation (NULL notes before SET NOT
 * NULL): the rollout halts after wave 1 with the count of offending rows
 * in the failure, and not one of the 30 other targets is touched: no
 * ledger row names the rollout, and their catalogs are unchanged.
 */
static void
test_rollout_staged_failed_canary_halts_nothing_else_touched(void **state)
{
    s_state *s = *state;
    char *bundle = NULL, *before[S_TENANTS];
    json_t *st = NULL;
    const char *id = NULL, *reason = NULL;

    s_exec_on(s, 0, "UPDATE items SET note = NULL WHERE id IN (3, 5, 8)");
    for (int i = 0; i < S_TENANTS; i++)
        before[i] = s_dump(s, i);
    bundle = s_bundle(s, "poison", s_not_null);
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;100%", "--watch",
                              NULL};
        st = s_rollout(s, S_EXIT_HALTED, args);
    }
    id = json_string_value(json_object_get(st, "id"));
    assert_string_equal(s_st(st), "halted");
    assert_true(json_is_true(json_object_get(st, "halted")));
    assert_int_equal(s_acc(st, "failed"), 1);
    assert_int_equal(s_acc(st, "dispatched"), 1);
    assert_int_equal(s_acc(st, "untouched"), S_TENANTS - 1);
    {
        const json_t *f = json_array_get(json_object_get(st, "failures"), 0);
        assert_non_null(f);
        assert_string_equal(json_string_value(json_object_get(f, "target")),
                            s->t[0].name);
        reason = json_string_value(json_object_get(f, "reason"));
        assert_non_null(reason);
        if (strstr(reason, "3") == NULL)
            fail_msg("the failure does not count the 3 rows: %s", reason);
    }
    for (int i = 1; i < S_TENANTS; i++) {
        char *after = s_dump(s, i);
        assert_int_equal(s_ledger_rows(s, i, id), 0);
        assert_false(s_has_ledger(s, i) &&
                     s_long(s, i, "SELECT count(*) FROM "
                            "flotilla.migration_logs") > 0);
        fl_test_assert_dumps_equal(s->t[i].name, before[i], after);
        free(after);
    }
    /* The canary's catalog is unchanged too: the column stays nullable. */
    {
        char *after = s_dump(s, 0);
        fl_test_assert_dumps_equal(s->t[0].name, before[0], after);
        free(after);
    }
    /*
     * An operator halting it again does not hide why it halted: the
     * budget's reason stays (before, it became "halted by operator").
     */
    {
        char *rid = fl_strdup(id);
        char *why = fl_strdup(json_string_value(json_object_get(
            st, "halt_reason")));
        const char *halt[] = {"halt", rid, NULL};
        const char *status[] = {"status", rid, NULL};
        json_t *again = NULL;

        assert_non_null(strstr(why, "exceed"));
        json_decref(s_rollout(s, 0, halt));
        again = s_rollout(s, S_EXIT_HALTED, status);
        assert_string_equal(json_string_value(json_object_get(
                                again, "halt_reason")), why);
        json_decref(again);
        free(why);
        /*
         * Its rollback touches nothing, and its dispatch, of no
         * target, is done at once (before, it stayed running in the
         * control database, loaded at every start).
         */
        {
            const char *rb[] = {"rollback", rid, "--watch", NULL};
            PGconn *ctl = PQconnectdb(s->f.ctl.conninfo);
            char *sql = fl_asprintf("SELECT string_agg(status, ',') FROM"
                                    " flotilla_control.dispatches WHERE"
                                    " action = 'rollback' AND rollout_id ="
                                    " '%s'", rid);
            char *n = NULL;

            /* The canary's agent sends its ledger just after its
             * result: read, it shows nothing, and the rollback has no
             * target. */
            fl_clock_sleep_ms(1500);
            again = s_rollout(s, S_EXIT_ROLLED_BACK, rb);
            assert_int_equal(s_acc(again, "rolled_back"), 0);
            json_decref(again);
            n = fl_test_query_value(ctl, sql);
            assert_string_equal(n, "done");
            free(n);
            free(sql);
            PQfinish(ctl);
        }
        free(rid);
    }
    for (int i = 0; i < S_TENANTS; i++)
        free(before[i]);
    json_decref(st);
    free(bundle);
    s->passed = 1;
}


/* Tenants of wave (from the rollout's commands). */
static int
s_in_wave(s_state *s, const char *id, int want, int *out)
{
    int wave[S_TENANTS], n = 0;

    s_waves_of(s, id, wave);
    for (int i = 0; i < S_TENANTS; i++)
        if (wave[i] == want)
            out[n++] = i;
    return n;
}

/* A generative test's seeds: *first from env SEED (default 1), how many
 * from env SEEDS (default dflt). */
static unsigned
s_seeds(const char *seed, const char *seeds, unsigned dflt, unsigned *first)
{
    const char *one = getenv(seed), *many = getenv(seeds);

    *first = one ? (unsigned)strtoul(one, NULL, 10) : 1;
    return many ? (unsigned)strtoul(many, NULL, 10) : dflt;
}

static char *
s_start_bg(s_state *s, const char *const *args)
{
    json_t *st = s_rollout(s, 0, args);
    char *id = fl_strdup(json_string_value(json_object_get(st, "id")));

    json_decref(st);
    return id;
}

/*
 * A failure budget: two targets of wave 3 fail validation.  With
 * max_failures 1 the rollout halts in wave 3 (2 exceed 1) and wave 4 is
 * never touched; with max_failures 2 (as many as allowed: not exceeded)
 * it goes on and completes, every other target applied.
 */
static void
test_rollout_staged_budget_exceeded_halts_equalled_continues(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "budget", s_not_null);
    json_t *st = NULL;
    const char *id = NULL;
    int w3[S_TENANTS], w4[S_TENANTS], n3, n4;
    const char *poisoned[2] = {NULL, NULL};

    /* t_1_00 and t_1_01: after the canary, 10% (t_0_00..02), then 50%
     * (t_0_03..09, t_1_00..06) in the deterministic order. */
    s_exec_on(s, 11, "UPDATE items SET note = NULL WHERE id = 1");
    s_exec_on(s, 12, "UPDATE items SET note = NULL WHERE id < 4");
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;10%;50%;100%",
                              "--max-failures", "1", "--watch", NULL};
        st = s_rollout(s, S_EXIT_HALTED, args);
    }
    id = json_string_value(json_object_get(st, "id"));
    assert_string_equal(s_st(st), "halted");
    assert_int_equal(json_integer_value(json_object_get(st, "wave")), 3);
    n3 = s_in_wave(s, id, 2, w3);
    n4 = s_in_wave(s, id, 3, w4);
    assert_int_equal(n3, 14);
    assert_int_equal(n4, 13);
    poisoned[0] = s->t[11].name;
    poisoned[1] = s->t[12].name;
    {
        int found = 0;
        for (int i = 0; i < n3; i++)
            found += w3[i] == 11 || w3[i] == 12;
        assert_int_equal(found, 2);
    }
    for (int i = 0; i < n4; i++) {
        assert_int_equal(s_ledger_rows(s, w4[i], id), 0);
        assert_false(s_has_ledger(s, w4[i]));
    }
    assert_int_equal(s_acc(st, "failed"), 2);
    {
        const json_t *f = NULL;
        size_t i;
        json_array_foreach(json_object_get(st, "failures"), i, f) {
            const char *t = json_string_value(json_object_get(f, "target"));
            assert_true(strcmp(t, poisoned[0]) == 0 ||
                        strcmp(t, poisoned[1]) == 0);
        }
    }
    json_decref(st);

    /* Within the budget it goes on. */
    s_reset(s);
    s_exec_on(s, 11, "UPDATE items SET note = NULL WHERE id = 1");
    s_exec_on(s, 12, "UPDATE items SET note = NULL WHERE id < 4");
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;10%;50%;100%",
                              "--max-failures", "2", "--watch", NULL};
        st = s_rollout(s, 0, args);
    }
    assert_string_equal(s_st(st), "completed");
    assert_int_equal(s_acc(st, "failed"), 2);
    assert_int_equal(s_acc(st, "applied"), S_TENANTS - 2);
    for (int i = 0; i < S_TENANTS; i++) {
        char *v = s_status_of(s, i, 1);
        if (i == 11 || i == 12)
            assert_true(v == NULL || strcmp(v, "applied") != 0);
        else
            assert_string_equal(v, "applied");
        free(v);
    }
    json_decref(st);
    free(bundle);
    s->passed = 1;
}

/* Two migrations: the second fails validation where notes are NULL. */
static const char *const s_two[] = {
    "0001_add_flag.sql", S_ADD_FLAG,
    "0002_note_required.sql",
    "-- flotilla:options allow=adding-not-nullable-field 20 rows\n"
    "-- flotilla:up\n"
    "ALTER TABLE items ALTER COLUMN note SET NOT NULL;\n"
    "-- flotilla:down\n"
    "ALTER TABLE items ALTER COLUMN note DROP NOT NULL;\n",
    NULL};

/*
 * on_failure: rollback.  Wave 3 exceeds its budget; every target the
 * rollout touched (waves 1 to 3, the failed ones included: their first
 * migration applied) is rolled back, newest wave first, to the same
 * canonical dump of schema and data as before; wave 4 is untouched.
 */
static void
test_rollout_staged_on_failure_restores_every_touched_target(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "auto-rb", s_two), *before[S_TENANTS];
    json_t *st = NULL;
    const char *id = NULL;
    int w4[S_TENANTS], n4;

    s_exec_on(s, 11, "UPDATE items SET note = NULL WHERE id = 1");
    s_exec_on(s, 12, "UPDATE items SET note = NULL WHERE id < 4");
    for (int i = 0; i < S_TENANTS; i++)
        before[i] = s_dump(s, i);
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;10%;50%;100%",
                              "--max-failures", "1", "--on-failure",
                              "rollback", "--watch", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    }
    id = json_string_value(json_object_get(st, "id"));
    assert_string_equal(s_st(st), "rolled_back");
    n4 = s_in_wave(s, id, 3, w4);
    assert_int_equal(n4, 13);
    /* Touched: waves 1-3 (1 + 3 + 14) whose first migration applied. */
    assert_int_equal(s_acc(st, "rolled_back"), 18);
    assert_int_equal(s_acc(st, "untouched"), 13);
    /* Wave 4 never ran, and says so (before: "13/13 done ... waiting",
     * its commands settled as not dispatched counted as done). */
    {
        const json_t *w = json_array_get(json_object_get(st, "waves"), 3);
        assert_int_equal(json_integer_value(json_object_get(w, "done")), 0);
        assert_int_equal(json_integer_value(json_object_get(
                             w, "not_dispatched")), 13);
        assert_string_equal(json_string_value(json_object_get(w, "state")),
                            "not dispatched");
    }
    for (int i = 0; i < S_TENANTS; i++) {
        char *after = s_dump(s, i);
        int untouched = 0;
        for (int k = 0; k < n4; k++)
            untouched |= w4[k] == i;
        fl_test_assert_dumps_equal(s->t[i].name, before[i], after);
        if (untouched) {
            assert_int_equal(s_ledger_rows(s, i, id), 0);
        } else {
            char *v = s_status_of(s, i, 1);
            assert_string_equal(v, "rolled_back");
            free(v);
        }
        free(after);
        free(before[i]);
    }
    /* Newest wave first: every wave-3 rollback finished before the
     * first wave-2 rollback started (the ledgers' clocks). */
    {
        int wave[S_TENANTS];
        double end3 = 0, start2 = 1e18;
        s_waves_of(s, id, wave);
        for (int i = 0; i < S_TENANTS; i++) {
            char *v = NULL;
            double x;
            if (wave[i] != 1 && wave[i] != 2)
                continue;
            v = s_value(s, i, "SELECT extract(epoch FROM max(created_at))"
                        " FROM flotilla.migration_logs WHERE step ="
                        " 'rollback' AND version = '1'");
            assert_non_null(v);
            x = strtod(v, NULL);
            free(v);
            if (wave[i] == 2 && x > end3)
                end3 = x;
            v = s_value(s, i, "SELECT extract(epoch FROM min(created_at))"
                        " FROM flotilla.migration_logs WHERE step ="
                        " 'rollback' AND version = '1'");
            x = strtod(v, NULL);
            free(v);
            if (wave[i] == 1 && x < start2)
                start2 = x;
        }
        if (start2 < end3)
            fail_msg("a wave-2 rollback began %.3f s before the last wave-3 "
                     "rollback ended", end3 - start2);
    }
    json_decref(st);
    free(bundle);
    s->passed = 1;
}

/*
 * A migration without a transaction whose second statement fails on a
 * tenant whose item 1 has no note: there it is applied in part.
 */
static const char *const s_half[] = {
    "0001_half.sql",
    "-- flotilla:options no-transaction\n"
    "-- flotilla:up\n"
    "CREATE TABLE part_t (id int);\n"
    "SELECT 1 / (SELECT count(*) FROM items WHERE id = 1"
    " AND note IS NOT NULL)::int;\n"
    "-- flotilla:down\n"
    "DROP TABLE part_t;\n",
    NULL};

static const json_t *
s_failure_of(const json_t *st, const char *phase, const char *target)
{
    const json_t *f = NULL;
    size_t k;

    json_array_foreach(json_object_get(st, "failures"), k, f)
        if (strcmp(json_string_value(json_object_get(f, "phase")), phase) == 0 &&
            strcmp(json_string_value(json_object_get(f, "target")), target) == 0)
            return f;
    return NULL;
}

/*
 * The fleet rollback of a rollout in which one target applied its
 * migration in part (a no-transaction migration that failed after its
 * first statement committed): the fully applied targets are rolled back
 * to their exact prior state, the half-applied one is not counted as
 * rolled back (its committed statement is still there: no down can
 * start from half an up) but rollback_failed, naming why, and the
 * rollback stops for the operator (exit 1) before the next wave (the
 * canary stays applied), once the other rollbacks of its wave are done;
 * untouched targets stay untouched.  The operator's way out, `flotilla
 * rollback --skip-down` on that target, then lets the fleet rollback
 * finish.
 */
static void
test_rollout_staged_rollback_stops_at_a_half_applied_target(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "half", s_half), *before[S_TENANTS];
    json_t *st = NULL;
    const json_t *f = NULL;
    const char *why = NULL;
    char *id = NULL;
    const int bad = 5;
    int touched = 0;

    /* A mistyped id: refused by the command, or named by the coordinator. */
    {
        const char *argv[] = {"flotilla", "rollout", "rollback", "4c4d53\xff",
                              NULL};
        const char *argv2[] = {"flotilla", "rollout", "rollback",
                               "0123456789abcdef0123456789abcdef", NULL};
        fl_test_proc_t res = {0, NULL, NULL};

        fl_fleet_cli(&s->f, &res, argv);
        if (res.status != 2 || strstr(res.err, "is not a rollout id") == NULL)
            fail_msg("a malformed id: exit %d\n%s", res.status, res.err);
        fl_test_proc_release(&res);
        fl_fleet_cli(&s->f, &res, argv2);
        if (res.status != 1 || strstr(res.err, "no rollout") == NULL)
            fail_msg("an unknown id: exit %d\n%s", res.status, res.err);
        fl_test_proc_release(&res);
    }
    s_exec_on(s, bad, "UPDATE items SET note = NULL WHERE id = 1");
    for (int i = 0; i < S_TENANTS; i++)
        before[i] = s_dump(s, i);
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "1;100%", "--max-failures", "0",
                              "--watch", NULL};
        st = s_rollout(s, S_EXIT_HALTED, args);
    }
    id = fl_strdup(json_string_value(json_object_get(st, "id")));
    assert_string_equal(s_st(st), "halted");
    assert_int_equal(s_acc(st, "failed"), 1);
    assert_int_equal(s_long(s, bad, "SELECT statements_done FROM"
                            " flotilla.schema_migrations WHERE version = '1'"
                            " AND status = 'failed'"), 1);
    assert_int_equal(s_long(s, bad, "SELECT count(*) FROM pg_class WHERE"
                            " relname = 'part_t'"), 1);
    {
        const char *args[] = {"rollback", id, "--watch", NULL};
        json_t *rb = s_rollout(s, 1, args);

        json_decref(st);
        st = rb;
    }
    assert_string_equal(s_st(st), "rollback_failed");
    assert_int_equal(s_acc(st, "rollback_failed"), 1);
    f = s_failure_of(st, "rollback", s->t[bad].name);
    if (f == NULL)
        fail_msg("no rollback failure for %s", s->t[bad].name);
    why = json_string_value(json_object_get(f, "reason"));
    if (why == NULL || strstr(why, "partly applied") == NULL)
        fail_msg("the failure does not say the migration is partly applied: "
                 "%s", why ? why : "(none)");
    /*
     * The rollback stopped in wave 2, once the rollbacks in flight there
     * had finished: wave 2's other targets are rolled back (or were never
     * touched), and the accounting says so; it did not go on to wave 1:
     * the canary is still applied.
     */
    for (int i = 1; i < S_TENANTS; i++) {
        char *v = NULL;

        if (i == bad)
            continue;
        v = s_status_of(s, i, 1);
        if (v != NULL) {
            if (strcmp(v, "rolled_back") != 0)
                fail_msg("%s is %s after the rollback paused: it should have "
                         "been rolled back before the pause was reported",
                         s->t[i].name, v);
            touched++;
        } else {
            assert_int_equal(s_ledger_rows(s, i, id), 0);
        }
        free(v);
    }
    assert_int_equal(s_acc(st, "rolled_back"), touched);
    {
        char *v = s_status_of(s, 0, 1);
        assert_string_equal(v, "applied");
        free(v);
    }
    touched = 0;
    /* Nothing of the half-applied target was claimed or undone. */
    {
        char *v = s_status_of(s, bad, 1);
        assert_string_equal(v, "failed");
        free(v);
    }
    assert_int_equal(s_long(s, bad, "SELECT count(*) FROM pg_class WHERE"
                            " relname = 'part_t'"), 1);
    /* The operator skips its down there; the fleet rollback finishes. */
    {
        char *dsn = fl_asprintf("%s dbname=%s", s->f.shards[s->t[bad].shard],
                                s->t[bad].db);
        const char *argv[] = {"flotilla", "rollback", "--db", dsn,
                              "--skip-down", "1", "--reason",
                              "part_t kept: item 1 had no note", NULL};
        fl_test_proc_t res = {0, NULL, NULL};

        fl_fleet_cli(&s->f, &res, argv);
        if (res.status != 0)
            fail_msg("rollback --skip-down: exit %d\n%s\n%s", res.status,
                     res.out, res.err);
        fl_test_proc_release(&res);
        free(dsn);
    }
    {
        const char *args[] = {"rollback", id, "--watch", NULL};
        json_t *rb = s_rollout(s, S_EXIT_ROLLED_BACK, args);

        json_decref(st);
        st = rb;
    }
    assert_string_equal(s_st(st), "rolled_back");
    {
        char *v = s_status_of(s, bad, 1);
        assert_string_equal(v, "rolled_back");
        free(v);
    }
    /* Every other target as it was before the rollout. */
    for (int i = 0; i < S_TENANTS; i++) {
        char *after = NULL, *v = NULL;

        if (i != bad) {
            after = s_dump(s, i);
            fl_test_assert_dumps_equal(s->t[i].name, before[i], after);
            v = s_status_of(s, i, 1);
            if (v != NULL) {
                assert_string_equal(v, "rolled_back");
                touched++;
            } else {
                assert_int_equal(s_ledger_rows(s, i, id), 0);
            }
        }
        free(v);
        free(after);
        free(before[i]);
    }
    /*
     * Each target once.  The half-applied one, which the operator's
     * --skip-down marked rolled back in its ledger, is not sent a
     * rollback again once its agent has reported that ledger (the
     * accounting says what the fleet's rollbacks did); before, it is,
     * finds nothing to roll back, and counts.
     */
    if (s_acc(st, "rolled_back") != touched &&
        s_acc(st, "rolled_back") != touched + 1)
        fail_msg("%lld targets counted rolled back, %d are",
                 s_acc(st, "rolled_back"), touched + 1);
    json_decref(st);
    free(id);
    free(bundle);
    s->passed = 1;
}

/* A migration that takes its time, to stop a rollout in the middle. */
static const char *const s_slow[] = {
    "0001_slow.sql",
    "-- flotilla:up\n"
    "CREATE TABLE slow_t (id int);\n"
    "SELECT pg_sleep(0.3);\n"
    "-- flotilla:down\n"
    "DROP TABLE slow_t;\n",
    NULL};

static int
s_applied_now(s_state *s)
{
    int n = 0;

    for (int i = 0; i < S_TENANTS; i++) {
        char *v = s_status_of(s, i, 1);
        n += v != NULL && strcmp(v, "applied") == 0;
        free(v);
    }
    return n;
}

static int
s_waiting_at_gate(const json_t *st, void *arg)
{
    (void)arg;
    return strcmp(s_st(st), "waiting") == 0;
}

static int
s_applied_at_least(const json_t *st, void *arg)
{
    return s_acc(st, "applied") >= *(const int *)arg;
}

static int
s_halted_and_idle(const json_t *st, void *arg)
{
    const json_t *w = NULL;
    size_t i;

    (void)arg;
    if (strcmp(s_st(st), "halted") != 0)
        return 0;
    json_array_foreach(json_object_get(st, "waves"), i, w)
        if (json_integer_value(json_object_get(w, "in_flight")) > 0)
            return 0;
    return 1;
}

/*
 * Watches rollout id to its end (`rollout watch`, exit 0): it completed,
 * every tenant applied, and each ran version 1 exactly once.  Returns the
 * final status.
 */
static json_t *
s_watch_all_applied_once(s_state *s, const char *id)
{
    const char *args[] = {"watch", id, NULL};
    json_t *st = s_rollout(s, 0, args);

    assert_string_equal(s_st(st), "completed");
    assert_int_equal(s_acc(st, "applied"), S_TENANTS);
    for (int i = 0; i < S_TENANTS; i++)
        assert_int_equal(s_executed(s, i, 1), 1);
    return st;
}

/*
 * A manual gate holds the rollout after wave 1 until resume; a halt in
 * the middle of wave 2 stops every new dispatch (in-flight targets
 * finish), holds across a kill -9 and restart of the coordinator, and
 * resume finishes the rollout with every target applied exactly once.
 */
static void
test_rollout_stops_gate_mid_wave_restart_and_resume(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "slow", s_slow), *id = NULL;
    json_t *st = NULL;
    json_int_t version = 0;
    int n = 0, want = 5;

    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "1;100%", "--gate", "manual",
                              "--max-parallel", "2", NULL};
        id = s_start_bg(s, args);
    }
    st = s_wait(s, id, s_waiting_at_gate, NULL, "waiting at the gate");
    json_decref(st);
    /*
     * A second start of the bundle while this rollout runs (a start
     * retried after its reply timed out) is refused, naming it; before,
     * it staged the same bundle beside it with its own canary.
     */
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "1;100%", NULL};
        st = s_rollout(s, 3, args);
        if (strstr(json_string_value(json_object_get(json_object_get(
                       st, "error"), "message")) ?: "", id) == NULL)
            fail_msg("the second start does not name rollout %s: %s", id,
                     json_dumps(st, 0));
        json_decref(st);
    }
    fl_clock_sleep_ms(800);
    assert_int_equal(s_applied_now(s), 1);
    st = s_status(s, id);
    assert_string_equal(s_st(st), "waiting");
    assert_int_equal(s_acc(st, "dispatched"), 1);
    json_decref(st);
    /*
     * A watch that stops waiting (--timeout) still says, in --json, which
     * rollout and where it stands (before: nothing on stdout), exit 9.
     */
    {
        const char *args[] = {"watch", id, "--timeout", "1s", NULL};
        st = s_rollout(s, 9, args);
        assert_string_equal(json_string_value(json_object_get(st, "id")), id);
        assert_string_equal(s_st(st), "waiting");
        assert_true(json_is_false(json_object_get(st, "complete")));
        assert_non_null(strstr(json_string_value(json_object_get(st,
                                                                 "error")),
                               "--timeout"));
        json_decref(st);
    }
    /*
     * Halted at the gate, and two operators resume the halt: the second
     * resume is refused and the gate stays shut (before, it opened the
     * gate: resume did whichever the rollout waited on when it came).
     */
    {
        const char *halt[] = {"halt", id, NULL};
        const char *resume[] = {"resume", id, "--only", "halt", NULL};
        const char *gate[] = {"resume", id, "--only", "gate", NULL};

        json_decref(s_rollout(s, 0, halt));
        /*
         * Halted, it lets a second rollout of the bundle start; while that
         * one runs, resuming this one is refused, naming it (before, both
         * ran at once: found by an audit).  Halted too, it lets this one
         * go on.
         */
        {
            const char *args[] = {"start", bundle, "--selector", "",
                                  "--waves", "1;100%", "--gate", "manual",
                                  NULL};
            char *b = s_start_bg(s, args);
            const char *bhalt[] = {"halt", b, NULL};

            json_decref(s_wait(s, b, s_waiting_at_gate, NULL,
                               "the second rollout at its gate"));
            st = s_rollout(s, 3, resume);
            if (strstr(json_string_value(json_object_get(json_object_get(
                           st, "error"), "message")) ?: "", b) == NULL)
                fail_msg("the resume beside rollout %s: %s", b,
                         json_dumps(st, 0));
            json_decref(st);
            json_decref(s_rollout(s, 0, bhalt));
            free(b);
        }
        st = s_rollout(s, 1, gate);
        json_decref(st);
        json_decref(s_rollout(s, 0, resume));
        st = s_rollout(s, 1, resume);
        if (strstr(json_string_value(json_object_get(json_object_get(
                       st, "error"), "message")) ?: "", "not halted") == NULL)
            fail_msg("a second resume of one halt: %s", json_dumps(st, 0));
        json_decref(st);
        fl_clock_sleep_ms(500);
        st = s_status(s, id);
        assert_string_equal(s_st(st), "waiting");
        assert_int_equal(s_acc(st, "dispatched"), 1);
        json_decref(st);
    }
    {
        const char *args[] = {"resume", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    st = s_wait(s, id, s_applied_at_least, &want, "5 targets applied");
    json_decref(st);
    {
        const char *args[] = {"halt", id, NULL};
        st = s_rollout(s, 0, args);
        assert_true(json_is_true(json_object_get(st, "halted")));
        json_decref(st);
    }
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted, nothing in flight");
    json_decref(st);
    n = s_applied_now(s);
    assert_true(n >= 5 && n < S_TENANTS);
    /* The latch holds, and survives a kill -9 of the coordinator. */
    fl_clock_sleep_ms(700);
    assert_int_equal(s_applied_now(s), n);
    st = s_status(s, id);
    version = json_integer_value(json_object_get(st, "version"));
    json_decref(st);
    fl_fleet_signal_coordinator(&s->f, SIGKILL);
    /*
     * Agent 0 comes back late, as one whose reconnect delay grew while
     * the coordinator was down: its targets wait for it (restart_grace),
     * not failed as unreachable once the heartbeat timeout has passed
     * (before, a routine restart halted a healthy wave: an audit).
     */
    fl_fleet_signal_agent(&s->f, 0, SIGSTOP);
    {
        char *extra = s->f.coord_extra;

        s->f.coord_extra = fl_asprintf("%srestart_grace: 10s\n", extra);
        fl_fleet_start_coordinator(&s->f);
        free(s->f.coord_extra);
        s->f.coord_extra = extra;
    }
    fl_clock_sleep_ms(1500);
    assert_int_equal(s_applied_now(s), n);
    st = s_status(s, id);
    assert_string_equal(s_st(st), "halted");
    /*
     * The restarted coordinator's version of the rollout is past every
     * version of the old one, so that a `rollout watch` that asked before
     * the restart is answered at once (before: counted from 0 again, and
     * such a watch waited its 10 s call after call).
     */
    if (json_integer_value(json_object_get(st, "version")) <= version)
        fail_msg("the rollout's version went from %lld back to %lld across "
                 "the restart", (long long)version,
                 (long long)json_integer_value(json_object_get(st,
                                                               "version")));
    json_decref(st);
    {
        const char *args[] = {"resume", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    fl_clock_sleep_ms(3000); /* twice the heartbeat timeout */
    fl_fleet_signal_agent(&s->f, 0, SIGCONT);
    st = s_watch_all_applied_once(s, id);
    /* max_parallel 2 over the whole fleet, through the halt and restart. */
    if (s_max_overlap(s, -1) > 2)
        fail_msg("%d migrations at once (max_parallel 2)",
                 s_max_overlap(s, -1));
    json_decref(st);
    free(id);
    free(bundle);
    s->passed = 1;
}

static long
s_sleepers(s_state *s)
{
    long n = 0;

    for (int k = 0; k < 3; k++)
        n += fl_fleet_sleepers(&s->f, k);
    return n;
}

/*
 * Waits until no migration sleeps: a run failed for its target_timeout is
 * decided (and the rollout may end) when its cancel is sent, not when
 * the agent has carried it out.
 */
static void
s_wait_no_sleepers(s_state *s)
{
    int64_t deadline = fl_clock_ms() + (int64_t)(30000 *
                                                 fl_test_timeout_scale());

    while (s_sleepers(s) != 0) {
        if (fl_clock_ms() > deadline)
            fail_msg("%ld migrations still sleep 30 s after their cancel",
                     s_sleepers(s));
        fl_clock_sleep_ms(50);
    }
}

/*
 * A migration held in pg_sleep while the tenant's items row 1 says
 * "hold", and quick once it does not: the runs halt --abort cancels are
 * stuck in it, their retries after resume are not.
 */
static const char *const s_held[] = {
    "0001_held.sql",
    "-- flotilla:up\n"
    "CREATE TABLE slow_t (id int);\n"
    "SELECT pg_sleep(60) FROM items WHERE id = 1 AND note = 'hold';\n"
    "-- flotilla:down\n"
    "DROP TABLE slow_t;\n",
    NULL};

static void
s_hold_all(s_state *s, int hold)
{
    for (int i = 0; i < S_TENANTS; i++)
        s_exec_on(s, i, hold ? "UPDATE items SET note = 'hold' WHERE id = 1"
                             : "UPDATE items SET note = 'note 1' WHERE id = 1");
}

/* No tenant has s_held's table or an applied row in its ledger. */
static void
s_assert_none_held_applied(s_state *s)
{
    for (int i = 0; i < S_TENANTS; i++) {
        assert_int_equal(s_long(s, i, "SELECT count(*) FROM pg_tables WHERE "
                                "tablename = 'slow_t'"),
                         0);
        if (s_has_ledger(s, i))
            assert_int_equal(s_long(s, i, "SELECT count(*) FROM "
                                    "flotilla.schema_migrations WHERE status"
                                    " = 'applied'"),
                             0);
    }
}

/*
 * Holds every tenant (s_hold_all), starts a rollout of bundle (s_held)
 * over all of them three at a time, and waits until three migrations
 * sleep (on_failure: --on-failure).  Its id (new).
 */
static char *
s_start_three_held_on(s_state *s, const char *bundle, const char *on_failure)
{
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());
    const char *args[] = {"start", bundle, "--selector", "", "--waves",
                          "100%", "--max-parallel", "3", "--on-failure",
                          on_failure, NULL};
    char *id = NULL;

    s_hold_all(s, 1);
    id = s_start_bg(s, args);
    while (s_sleepers(s) < 3) {
        if (fl_clock_ms() > deadline)
            fail_msg("3 migrations were not running within 60 s");
        fl_clock_sleep_ms(50);
    }
    return id;
}

static char *
s_start_three_held(s_state *s, const char *bundle)
{
    return s_start_three_held_on(s, bundle, "halt");
}

/* Tenants whose ledger logs a failed run of version 1 (the cancelled). */
static int
s_cancelled_runs(s_state *s, int *which)
{
    int n = 0;

    for (int i = 0; i < S_TENANTS; i++) {
        which[i] = s_has_ledger(s, i) &&
                   s_long(s, i, "SELECT count(*) FROM flotilla.migration_logs"
                          " WHERE version = '1' AND step = 'execute' AND"
                          " status = 'failed'") > 0;
        n += which[i];
    }
    return n;
}

/*
 * halt --abort cancels the statements in flight: their transactions roll
 * back, the targets stay as they were, and no other target is touched.
 * The cancelled targets are counted cancelled, not failed, and their wave
 * counts no failure against the budget.  resume sends them again as
 * retries (the agent runs the pipeline rather than answering from the
 * failed row the cancel left); with the coordinator killed with kill -9
 * in the middle of the resumed wave and restarted, every target, the
 * cancelled ones included, ends applied exactly once, read from the
 * ledgers.  The restart also runs the control schema's upgrades from
 * version 5 (retries) again on a database that has them: no-ops.
 */
static void
test_rollout_stops_abort_cancels_in_flight(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "held", s_held), *id = NULL;
    json_t *st = NULL;
    int cancelled[S_TENANTS], want = 5;
    PGconn *ctl = NULL;
    char *attach_out = NULL;
    pid_t attach = 0;

    id = s_start_three_held(s, bundle);
    {
        const char *args[] = {"halt", id, "--abort", NULL};
        json_decref(s_rollout(s, 0, args));
    }
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted, nothing in flight");
    assert_int_equal(s_acc(st, "applied"), 0);
    assert_int_equal(s_acc(st, "dispatched"), 3);
    assert_int_equal(s_acc(st, "cancelled"), 3);
    assert_int_equal(s_acc(st, "failed"), 0);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(st, "waves"), 0),
                         "failures")),
                     0);
    assert_int_equal(s_sleepers(s), 0);
    s_assert_none_held_applied(s);
    assert_int_equal(s_cancelled_runs(s, cancelled), 3);
    /*
     * halt --abort again, twice: the reason says the abort once (each
     * added "; then --abort by ..." to it, without end).
     */
    {
        const char *args[] = {"halt", id, "--abort", NULL};
        const char *first = json_string_value(json_object_get(st,
                                                              "halt_reason"));
        json_t *again = NULL;

        assert_non_null(first);
        json_decref(s_rollout(s, 0, args));
        json_decref(s_rollout(s, 0, args));
        again = s_status(s, id);
        assert_string_equal(json_string_value(json_object_get(again,
                                                              "halt_reason")),
                            first);
        json_decref(again);
    }
    json_decref(st);

    /*
     * An operator attached to the rollout's dispatch before the resume
     * sees each target's last outcome, through the retries and the
     * coordinator's restart: its cursor skips none.
     */
    attach_out = fl_asprintf("%s/attach.out", s->f.dir);
    {
        const char *argv[] = {"flotilla", "dispatch", "--attach", id, NULL};
        int64_t until = fl_clock_ms() + (int64_t)(60000 *
                                                  fl_test_timeout_scale());

        attach = fl_fleet_cli_spawn(&s->f, argv, attach_out);
        while (fl_fleet_log_count(attach_out, " cancelled ") < 3) {
            if (fl_clock_ms() > until)
                fail_msg("dispatch --attach did not show the 3 cancelled "
                         "targets; see %s", attach_out);
            fl_clock_sleep_ms(50);
        }
    }

    /* Resume: the three are sent again, as retries, with the rest. */
    s_hold_all(s, 0);
    {
        const char *args[] = {"resume", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    st = s_wait(s, id, s_applied_at_least, &want, "5 targets applied");
    json_decref(st);
    fl_fleet_signal_coordinator(&s->f, SIGKILL);
    ctl = PQconnectdb(s->f.ctl.conninfo);
    fl_test_exec(ctl, "DELETE FROM flotilla_control.meta WHERE version >= 5");
    fl_fleet_start_coordinator(&s->f);
    st = s_watch_all_applied_once(s, id);
    assert_int_equal(s_acc(st, "cancelled"), 0);
    json_decref(st);
    if (fl_fleet_wait_pid(attach, 120) != 0)
        fail_msg("dispatch --attach did not end with every target ok; see %s",
                 attach_out);
    for (int i = 0; i < S_TENANTS; i++) {
        char *ok = fl_asprintf("%-32s %-9s ", s->t[i].name, "ok");

        if (fl_fleet_log_count(attach_out, ok) == 0)
            fail_msg("dispatch --attach never showed %s ok; see %s",
                     s->t[i].name, attach_out);
        free(ok);
    }
    free(attach_out);
    /* The cancelled ones: one failed run (the cancel), then applied. */
    for (int i = 0; i < S_TENANTS; i++) {
        char *v = s_status_of(s, i, 1);
        assert_string_equal(v, "applied");
        free(v);
        if (cancelled[i])
            assert_int_equal(s_long(s, i, "SELECT count(*) FROM"
                                    " flotilla.migration_logs WHERE version"
                                    " = '1' AND step = 'execute' AND status"
                                    " = 'failed'"), 1);
    }
    {
        char *sql = fl_asprintf("SELECT count(*) FILTER (WHERE attempt = 1)"
                                " || '/' || count(*) FROM"
                                " flotilla_control.commands WHERE"
                                " dispatch_id = '%s'", id);
        char *v = fl_test_query_value(ctl, sql);
        char *m = fl_test_query_value(ctl, "SELECT max(version) FROM"
                                      " flotilla_control.meta");
        char want_counts[32];

        snprintf(want_counts, sizeof(want_counts), "3/%d", S_TENANTS);
        assert_string_equal(v, want_counts);
        assert_string_equal(m, "9");
        free(v);
        free(m);
        free(sql);
    }
    PQfinish(ctl);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * The canary held ("hold"), a rollout of bundle to it alone, started;
 * returns its id once a migration of the canary sleeps.
 */
static char *
s_canary_held(s_state *s, const char *bundle)
{
    const char *start[] = {"start", bundle, "--selector", "tier=canary",
                           "--waves", "100%", NULL};
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());
    char *id = NULL;

    s_exec_on(s, 0, "UPDATE items SET note = 'hold' WHERE id = 1");
    id = s_start_bg(s, start);
    while (fl_fleet_sleepers(&s->f, s->t[0].shard) < 1) {
        if (fl_clock_ms() > deadline)
            fail_msg("no migration of the canary slept within 60 s");
        fl_clock_sleep_ms(50);
    }
    return id;
}

/* A migration and a repeatable one held in pg_sleep while "hold". */
static const char *const s_held_repeatable[] = {
    "0001_rq.sql",
    "-- flotilla:up\nCREATE TABLE rq_t (id int);\n"
    "-- flotilla:down\nDROP TABLE rq_t;\n",
    "R__rq_view.sql",
    "-- flotilla:up\n"
    "SELECT pg_sleep(60) FROM items WHERE id = 1 AND note = 'hold';\n"
    "CREATE OR REPLACE VIEW rq_v AS SELECT 1 AS one;\n",
    NULL};

static int
s_completed(const json_t *st, void *arg)
{
    (void)arg;
    return strcmp(s_st(st), "completed") == 0;
}

/* 1 when tenant i's migration sleeps in pg_sleep (s_held, s_held10). */
static int
s_sleeping(s_state *s, int i)
{
    return s_long(s, i, "SELECT count(*) FROM pg_stat_activity WHERE"
                  " datname = current_database() AND state = 'active' AND"
                  " query LIKE '%pg_sleep(%' AND pid <> pg_backend_pid()")
           > 0;
}

/* Waits (60 s, scaled) until tenant i's migration sleeps; what: which. */
static void
s_await_sleeping(s_state *s, int i, const char *what)
{
    int64_t until = fl_clock_ms() + (int64_t)(60000 *
                                              fl_test_timeout_scale());

    while (!s_sleeping(s, i)) {
        if (fl_clock_ms() > until)
            fail_msg("%s did not start within 60 s", what);
        fl_clock_sleep_ms(20);
    }
}

/*
 * Kills with kill -9 the agent of a tenant whose migration sleeps, and
 * ends its sleeping sessions (as its host's restart would): its shard.
 */
static int
s_kill_an_agent_of_sleepers(s_state *s)
{
    int k = -1, on_k = 0;

    for (int i = 0; i < S_TENANTS && k < 0; i++)
        if (s_sleeping(s, i))
            k = s->t[i].shard;
    assert_true(k >= 0);
    fl_fleet_signal_agent(&s->f, k, SIGKILL);
    for (int i = 0; i < S_TENANTS; i++)
        if (s->t[i].shard == k && s_sleeping(s, i)) {
            s_exec_on(s, i, "SELECT pg_terminate_backend(pid) FROM"
                            " pg_stat_activity WHERE datname ="
                            " current_database() AND query LIKE"
                            " '%pg_sleep(%' AND pid <> pg_backend_pid()");
            on_k++;
        }
    assert_true(on_k > 0);
    return k;
}

/*
 * halt --abort reaches the runs of an agent that was down when the halt
 * was written: the agent killed with kill -9 while its migrations sleep
 * (their sessions ended by hand, as its host's restart would), the
 * rollout halted with --abort, the agent restarted carries its commands
 * out again from its journal, and the coordinator, told at the agent's
 * hello that it holds them, cancels them: nothing is applied anywhere,
 * they count cancelled, and a resume then applies every target once.
 * Before, the cancels went only to the agents online at the halt, and
 * the restarted agent ran its commands to the end under a rollout
 * halted with --abort.  The abort outlives a coordinator restart.
 */
static void
test_rollout_stops_abort_reaches_an_agent_down_at_the_halt(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "heldaway", s_held), *id = NULL;
    json_t *st = NULL;
    int k = -1;

    id = s_start_three_held(s, bundle);
    k = s_kill_an_agent_of_sleepers(s);
    {
        const char *args[] = {"halt", id, "--abort", NULL};
        json_decref(s_rollout(s, 0, args));
    }
    /* The abort is the control database's, not the process's memory. */
    fl_fleet_signal_coordinator(&s->f, SIGKILL);
    fl_fleet_start_coordinator(&s->f);
    fl_fleet_start_agent(&s->f, k);
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted, nothing in flight");
    assert_int_equal(s_acc(st, "applied"), 0);
    assert_int_equal(s_acc(st, "failed"), 0);
    assert_int_equal(s_acc(st, "cancelled"), 3);
    s_assert_none_held_applied(s);
    json_decref(st);
    s_hold_all(s, 0);
    {
        const char *args[] = {"resume", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    json_decref(s_watch_all_applied_once(s, id));
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * A command whose versioned migrations are applied but whose repeatable
 * ones are not is run again, not answered from the ledger: the canary's
 * repeatable migration held in pg_sleep after its 0001 committed, its
 * agent killed with kill -9 (its session ended by hand), the agent
 * restarted runs the command again from its journal, and the rollout
 * completes with the repeatable migration run: its view exists and its
 * row says applied.  Before, the rerun was answered "already carried out
 * by this rollout" from the versioned rows alone, and the view was never
 * made.
 */
static void
test_rollout_stops_a_rerun_runs_the_repeatables_left_undone(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "heldrep", s_held_repeatable), *id = NULL;

    id = s_canary_held(s, bundle);
    s_expect_value(s, 0, "SELECT status FROM flotilla.schema_migrations"
                   " WHERE version = '1'", "applied");
    fl_fleet_signal_agent(&s->f, s->t[0].shard, SIGKILL);
    s_exec_on(s, 0, "UPDATE items SET note = 'note 1' WHERE id = 1");
    s_exec_on(s, 0, "SELECT pg_terminate_backend(pid) FROM"
                    " pg_stat_activity WHERE datname = current_database()"
                    " AND query LIKE '%pg_sleep(60)%' AND pid <>"
                    " pg_backend_pid()");
    s_expect_value(s, 0, "SELECT to_regclass('rq_v') IS NULL", "t");
    fl_fleet_start_agent(&s->f, s->t[0].shard);
    json_decref(s_wait(s, id, s_completed, NULL, "completed"));
    s_expect_value(s, 0, "SELECT to_regclass('rq_v') IS NOT NULL", "t");
    s_expect_value(s, 0, "SELECT status FROM flotilla.repeatable_migrations"
                   " WHERE name = 'rq_view'", "applied");
    free(id);
    free(bundle);
    s->passed = 1;
}

/* A migration, then one held in pg_sleep while "hold". */
static const char *const s_quick_then_held[] = {
    "0001_first.sql",
    "-- flotilla:up\nCREATE TABLE first_t (id int);\n"
    "-- flotilla:down\nDROP TABLE first_t;\n",
    "0002_held.sql",
    "-- flotilla:up\n"
    "SELECT pg_sleep(60) FROM items WHERE id = 1 AND note = 'hold';\n"
    "CREATE TABLE second_t (id int);\n"
    "-- flotilla:down\nDROP TABLE second_t;\n",
    NULL};

/*
 * A run that `halt --abort` cancels after an earlier migration of its
 * bundle committed is a failure, never "cancelled ... as they were": the
 * canary's 0001 applied and its 0002 cancelled count one failure and no
 * cancel, and 0001 stays applied.  Before, the run was counted cancelled
 * (not against the budget, said to be as it was).
 */
static void
test_rollout_stops_abort_after_a_migration_committed_is_a_failure(
    void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "quickheld", s_quick_then_held), *id = NULL;
    json_t *st = NULL;

    id = s_canary_held(s, bundle);
    {
        const char *args[] = {"halt", id, "--abort", NULL};
        json_decref(s_rollout(s, 0, args));
    }
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted, idle");
    assert_int_equal(s_acc(st, "cancelled"), 0);
    assert_int_equal(s_acc(st, "failed"), 1);
    json_decref(st);
    s_expect_value(s, 0, "SELECT status FROM flotilla.schema_migrations"
                   " WHERE version = '1'", "applied");
    s_expect_value(s, 0, "SELECT to_regclass('second_t') IS NULL", "t");
    free(id);
    free(bundle);
    s->passed = 1;
}

/* A plan's rehearsal that sleeps 8 s, and a quick migration. */
static const char *const s_sleep_plan[] = {
    "0001_sleep.sql",
    "-- flotilla:up\nSELECT pg_sleep(8);\n-- flotilla:down\nSELECT 1;\n",
    NULL};
static const char *const s_quick[] = {
    "0001_quick.sql",
    "-- flotilla:up\nCREATE TABLE quick_t (id int);\n"
    "-- flotilla:down\nDROP TABLE quick_t;\n",
    NULL};

static int
s_dispatched_one(const json_t *st, void *arg)
{
    (void)arg;
    return s_acc(st, "dispatched") >= 1;
}

static int
s_applied_one_idle(const json_t *st, void *arg)
{
    return s_acc(st, "applied") == 1 && s_halted_and_idle(st, arg);
}

/*
 * A command sent before a halt (no --abort) finishes on its agent and is
 * counted: the canary's command waits on its agent behind a dispatched
 * plan that sleeps 8 s; the rollout is halted meanwhile; when the plan
 * ends, the agent sends the canary's ledger (read after the plan) and
 * then runs the command.  The rollout shows it applied, in flight until
 * then, and its rollback rolls it back and says so.  Before, the ledger
 * read after the plan, which did not yet record the command, made the
 * coordinator take the command back as held ("not sent"): its result
 * was ignored ("answered command ..., which was never sent"), the
 * rollout said applied 0, and its rollback recorded the command
 * "cancelled: not dispatched" and counted it "as they were" though it
 * had been applied and was rolled back.
 */
static void
test_rollout_stops_a_command_sent_before_a_halt_finishes_and_counts(
    void **state)
{
    s_state *s = *state;
    char *plan = s_bundle(s, "sleepplan", s_sleep_plan);
    char *quick = s_bundle(s, "quick", s_quick), *id = NULL;
    char *out = fl_asprintf("%s/sleepplan.out", s->f.dir);
    json_t *st = NULL;
    int64_t deadline = fl_clock_ms() + (int64_t)(30000 *
                                                 fl_test_timeout_scale());
    pid_t pl = 0;

    {
        const char *argv[] = {"flotilla", "dispatch", plan, "--selector",
                              "tier=canary", "--action", "plan", NULL};
        pl = fl_fleet_cli_spawn(&s->f, argv, out);
    }
    while (fl_fleet_sleepers(&s->f, s->t[0].shard) < 1) {
        if (fl_clock_ms() > deadline)
            fail_msg("the plan's rehearsal did not start within 30 s");
        fl_clock_sleep_ms(50);
    }
    {
        const char *args[] = {"start", quick, "--selector", "tier=canary",
                              "--waves", "100%", NULL};
        id = s_start_bg(s, args);
    }
    json_decref(s_wait(s, id, s_dispatched_one, NULL, "the canary sent"));
    {
        const char *args[] = {"halt", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    if (fl_fleet_wait_pid(pl, 60) != 0)
        fail_msg("the plan did not end well; see %s", out);
    st = s_wait(s, id, s_applied_one_idle, NULL,
                "halted, the canary applied, nothing in flight");
    assert_int_equal(s_acc(st, "dispatched"), 1);
    assert_int_equal(s_acc(st, "cancelled"), 0);
    json_decref(st);
    s_expect_value(s, 0, "SELECT status FROM flotilla.schema_migrations"
                   " WHERE version = '1'", "applied");
    assert_int_equal(fl_fleet_log_count(s->f.coord_log, "never sent"), 0);
    {
        const char *args[] = {"rollback", id, "--watch", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    }
    assert_int_equal(s_acc(st, "rolled_back"), 1);
    assert_int_equal(s_acc(st, "applied"), 1);
    assert_int_equal(s_acc(st, "cancelled"), 0);
    json_decref(st);
    s_expect_value(s, 0, "SELECT status FROM flotilla.schema_migrations"
                   " WHERE version = '1'", "rolled_back");
    free(out);
    free(id);
    free(quick);
    free(plan);
    s->passed = 1;
}

/* The detail of st's failure of target, or NULL. */
static const char *
s_failure_detail(const json_t *st, const char *target)
{
    const json_t *f = NULL;
    size_t i;

    json_array_foreach(json_object_get(st, "failures"), i, f) {
        const char *t = json_string_value(json_object_get(f, "target"));
        if (t != NULL && strcmp(t, target) == 0)
            return json_string_value(json_object_get(f, "detail"));
    }
    return NULL;
}

/* Whether a failure of target has a detail (what came after it). */
static int
s_failure_detailed(const json_t *st, void *arg)
{
    return s_failure_detail(st, arg) != NULL;
}

/* Whether one of st's failures names target and says why contains why. */
static int
s_failure_says(const json_t *st, const char *target, const char *why)
{
    const json_t *f = NULL;
    size_t i;

    json_array_foreach(json_object_get(st, "failures"), i, f) {
        const char *t = json_string_value(json_object_get(f, "target"));
        const char *r = json_string_value(json_object_get(f, "reason"));
        if (t != NULL && strcmp(t, target) == 0 && r != NULL &&
            strstr(r, why) != NULL)
            return 1;
    }
    return 0;
}

/*
 * Holds the canary (tenant 0), starts a rollout of bundle (s_held) with
 * the canary alone in its first wave and --target-timeout timeout, and
 * waits until the canary's migration sleeps.  Its id (new).
 */
static char *
s_start_canary_held(s_state *s, const char *bundle, const char *timeout)
{
    const char *args[] = {"start", bundle, "--selector", "",
                          "--waves", "tier=canary;100%",
                          "--target-timeout", timeout, NULL};
    char *id = NULL;

    s_exec_on(s, 0, "UPDATE items SET note = 'hold' WHERE id = 1");
    id = s_start_bg(s, args);
    s_await_sleeping(s, 0, "the canary's migration");
    return id;
}

/*
 * Starts a rollout of bundle whose canary holds past a 10 s
 * target_timeout (time enough, under TSan, to fetch the bundle and reach
 * the hold first), stops the canary's backend (SIGSTOP) so that the
 * timeout's cancel does not end its statement, kills the canary's agent
 * with kill -9 once it has logged the cancel and journaled its mark,
 * lets the backend go and ends it (its transaction rolls back; the
 * cancel request may not have reached it), lifts the hold, restarts the
 * agent, and waits until its journal is empty (its answer given and
 * acknowledged).  The rollout's id (new).
 */
static char *
s_cancel_then_kill(s_state *s, const char *bundle)
{
    int k = s->t[0].shard, said = 0;
    int64_t deadline = 0;
    pid_t backend = 0;
    char *id = s_start_canary_held(s, bundle, "10s"), *v = NULL;

    v = s_value(s, 0, "SELECT pid FROM pg_stat_activity WHERE datname ="
                      " current_database() AND query LIKE '%pg_sleep(%'"
                      " AND pid <> pg_backend_pid()");
    assert_non_null(v);
    backend = (pid_t)strtol(v, NULL, 10);
    free(v);
    said = fl_fleet_log_count(s->f.agents[k].log,
                              "cancelled by the coordinator");
    assert_int_equal(kill(backend, SIGSTOP), 0);
    /* The agent's log is the group's: an earlier test's cancel is in it. */
    fl_fleet_wait_log_more(s->f.agents[k].log, "cancelled by the coordinator",
                           said, 60);
    fl_fleet_signal_agent(&s->f, k, SIGKILL);
    assert_int_equal(fl_fleet_journal_files(&s->f, k, ".cancel"), 1);
    assert_int_equal(kill(backend, SIGCONT), 0);
    s_exec_on(s, 0, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE"
                    " '%pg_sleep(%' AND pid <> pg_backend_pid()");
    s_exec_on(s, 0, "UPDATE items SET note = 'note 1' WHERE id = 1");
    fl_fleet_start_agent(&s->f, k);
    deadline = fl_clock_ms() + (int64_t)(60000 * fl_test_timeout_scale());
    while (fl_fleet_journal_files(&s->f, k, ".cmd") > 0) {
        if (fl_clock_ms() > deadline)
            fail_msg("agent %d's journal still holds commands after 60 s",
                     k);
        fl_clock_sleep_ms(100);
    }
    return id;
}

/*
 * A cancel outlives its agent.  The canary held past its target_timeout
 * with its server's backend stopped (SIGSTOP), so that the cancel
 * request its agent sends does not end the statement; the agent killed
 * with kill -9 once it has logged the cancel; the backend let go and
 * ended (its transaction rolls back); the hold lifted; the agent
 * restarted: it answers the command from its
 * journal as cancelled rather than run it again, and the canary, failed
 * by its timeout and the rollout halted, stays as it was.  Before, the
 * restarted agent ran the command to the end: the canary applied under
 * a halted rollout that counted it failed.
 */
static void
test_rollout_stops_a_cancel_outlives_its_agent(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "cancelkill", s_held), *id = NULL, *v = NULL;
    json_t *st = NULL;

    id = s_cancel_then_kill(s, bundle);
    assert_int_equal(s_long(s, 0, "SELECT count(*) FROM pg_tables WHERE "
                            "tablename = 'slow_t'"), 0);
    v = s_status_of(s, 0, 1);
    assert_true(v == NULL || strcmp(v, "applied") != 0);
    free(v);
    st = s_status(s, id);
    assert_string_equal(s_st(st), "halted");
    assert_int_equal(s_acc(st, "applied"), 0);
    assert_int_equal(s_acc(st, "failed"), 1);
    json_decref(st);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * The same with a bundle whose first migration committed before the
 * cancel came (the second held): the restarted agent answers its run
 * failed, not cancelled, since the target is not as it was, and says
 * why; 0001 stays applied, 0002 never ran.  Before, it answered
 * "cancelled before it started", as if nothing had changed (found by an
 * audit).
 */
static void
test_rollout_stops_a_cancelled_rerun_after_a_commit_fails(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "cancelkill2", s_quick_then_held);
    char *id = s_cancel_then_kill(s, bundle), *v = NULL;
    const char *detail = NULL;
    json_t *st = NULL;

    st = s_wait(s, id, s_failure_detailed, s->t[0].name,
                "the canary's run after its agent's restart");
    detail = s_failure_detail(st, s->t[0].name);
    if (strstr(detail, "ended failed") == NULL ||
        strstr(detail, "not as it was") == NULL)
        fail_msg("the canary's failure detail: %s", detail);
    json_decref(st);
    v = s_status_of(s, 0, 1);
    assert_string_equal(v, "applied");
    free(v);
    assert_int_equal(s_long(s, 0, "SELECT count(*) FROM pg_tables WHERE "
                            "tablename = 'second_t'"), 0);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * target_timeout: a target still running that long after it was sent is
 * failed, counts against the budget, and its statement is cancelled (its
 * transaction rolls back: no table, no applied row, nothing left
 * running).  The canary held past the timeout halts the rollout with
 * max_failures 0, and no other tenant is touched; a tenant of the second
 * wave held past it, with max_failures 1, is one failure within the
 * budget: the rollout completes, the other 30 applied once.
 */
static void
test_rollout_stops_target_timeout_fails_and_cancels(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "timeout", s_held), *id = NULL;
    json_t *st = NULL;
    int held = 5;

    s_exec_on(s, 0, "UPDATE items SET note = 'hold' WHERE id = 1");
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;100%",
                              "--target-timeout", "2s", NULL};
        id = s_start_bg(s, args);
    }
    /*
     * The cancel goes out once the timeout's failure is written
     * (test_rollout_cuts_a_timeout_is_written_before_its_cancel), so the
     * run's answer always comes after it, and is kept in the failure's
     * detail (below).
     */
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted, nothing running");
    assert_string_equal(s_st(st), "halted");
    assert_int_equal(s_acc(st, "failed"), 1);
    assert_int_equal(s_acc(st, "applied"), 0);
    assert_int_equal(s_acc(st, "dispatched"), 1);
    if (!s_failure_says(st, s->t[0].name, "target_timeout (2s)"))
        fail_msg("no failure names %s's target_timeout: %s", s->t[0].name,
                 json_dumps(st, JSON_INDENT(1)));
    s_wait_no_sleepers(s);
    assert_int_equal(s_long(s, 0, "SELECT count(*) FROM pg_tables WHERE "
                            "tablename = 'slow_t'"), 0);
    {
        char *v = s_status_of(s, 0, 1);
        assert_true(v == NULL || strcmp(v, "applied") != 0);
        free(v);
    }
    for (int i = 1; i < S_TENANTS; i++)
        assert_false(s_has_ledger(s, i));
    json_decref(st);
    /* The cancel reached the canary's agent: what it then reported. */
    st = s_wait(s, id, s_failure_detailed, s->t[0].name,
                "the canary's cancelled run in its failure");
    if (strstr(s_failure_detail(st, s->t[0].name),
               "its run ended cancelled") == NULL)
        fail_msg("%s", s_failure_detail(st, s->t[0].name));
    json_decref(st);
    free(id);

    /*
     * Within the budget: one held tenant of the second wave.  The others
     * must finish within the timeout, 30 at once on a slow host (under
     * ThreadSanitizer 4 of them took over 2 s): 20 s.
     */
    s_reset(s);
    s_exec_on(s, held, "UPDATE items SET note = 'hold' WHERE id = 1");
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;100%",
                              "--max-failures", "1", "--target-timeout",
                              "20s", "--watch", NULL};
        st = s_rollout(s, 0, args);
    }
    assert_string_equal(s_st(st), "completed");
    assert_int_equal(s_acc(st, "failed"), 1);
    assert_int_equal(s_acc(st, "applied"), S_TENANTS - 1);
    if (!s_failure_says(st, s->t[held].name, "target_timeout"))
        fail_msg("no failure names %s's target_timeout", s->t[held].name);
    s_wait_no_sleepers(s);
    for (int i = 0; i < S_TENANTS; i++) {
        char *v = s_status_of(s, i, 1);
        if (i == held) {
            assert_true(v == NULL || strcmp(v, "applied") != 0);
            assert_int_equal(s_long(s, i, "SELECT count(*) FROM pg_tables"
                                    " WHERE tablename = 'slow_t'"), 0);
        } else {
            assert_string_equal(v, "applied");
            assert_int_equal(s_executed(s, i, 1), 1);
        }
        free(v);
    }
    json_decref(st);
    free(bundle);
    s->passed = 1;
}

/* A held migration that ends by itself after 10 seconds. */
static const char *const s_held10[] = {
    "0001_held.sql",
    "-- flotilla:up\n"
    "CREATE TABLE slow_t (id int);\n"
    "SELECT pg_sleep(10) FROM items WHERE id = 1 AND note = 'hold';\n"
    "-- flotilla:down\n"
    "DROP TABLE slow_t;\n",
    NULL};

/* Whether the coordinator sees shard 0's agent offline. */
static int
s_shard0_offline(s_state *s)
{
    json_t *rows = fl_fleet_json(&s->f, "agents", NULL);
    const json_t *r = fl_fleet_row(rows, "name", "shard-0");
    int off = r != NULL &&
              strcmp(json_string_value(json_object_get(r, "state")),
                     "online") != 0;

    json_decref(rows);
    return off;
}

/* Stops shard 0's agent (SIGSTOP) and waits until it is offline. */
static void
s_stop_shard0(s_state *s)
{
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());

    fl_fleet_signal_agent(&s->f, 0, SIGSTOP);
    while (!s_shard0_offline(s)) {
        if (fl_clock_ms() > deadline)
            fail_msg("shard-0 still online 60 s after SIGSTOP");
        fl_clock_sleep_ms(50);
    }
}

/*
 * Rolls rollout id back (--watch): the canary alone rolled back, its
 * table gone, no other tenant touched.
 */
static void
s_rollback_the_canary(s_state *s, const char *id)
{
    const char *args[] = {"rollback", id, "--watch", "--timeout", "90s",
                          NULL};
    json_t *st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    char *v = NULL;

    assert_int_equal(s_acc(st, "rolled_back"), 1);
    json_decref(st);
    v = s_status_of(s, 0, 1);
    assert_string_equal(v, "rolled_back");
    free(v);
    assert_int_equal(s_long(s, 0, "SELECT count(*) FROM pg_tables WHERE "
                            "tablename = 'slow_t'"), 0);
    for (int i = 1; i < S_TENANTS; i++)
        assert_false(s_has_ledger(s, i));
}

/*
 * A target failed for its target_timeout whose run then finished anyway
 * (its agent cut off, here stopped with SIGSTOP, so that the cancel
 * never reached it): the rollout halts on the failure as it should, and
 * what the target did once its agent came back is what the rollout says
 * of it, read from its ledger: the failure's detail says the run ended
 * ok at version 1 (before, the agent's late result was acknowledged and
 * dropped, and the rollout said only "did not finish" of a target that
 * applied the bundle), kept in the control database through a kill -9
 * of the coordinator.  The rollback then rolls the canary back, and no
 * other tenant was touched.
 */
static void
test_rollout_stops_target_timeout_then_the_target_finished(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "timeout10", s_held10), *id = NULL;
    json_t *st = NULL;
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());
    const char *detail = NULL;
    PGconn *ctl = NULL;

    id = s_start_canary_held(s, bundle, "6s");
    s_stop_shard0(s);
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted by the timeout");
    assert_int_equal(s_acc(st, "failed"), 1);
    if (!s_failure_says(st, s->t[0].name, "target_timeout (6s)"))
        fail_msg("no failure names %s's target_timeout", s->t[0].name);
    assert_null(s_failure_detail(st, s->t[0].name));
    json_decref(st);
    /* The coordinator restarted while the agent is away. */
    fl_fleet_signal_coordinator(&s->f, SIGKILL);
    fl_fleet_start_coordinator(&s->f);
    while (s_sleepers(s) > 0) {
        if (fl_clock_ms() > deadline)
            fail_msg("the canary's pg_sleep(10) still running after 60 s");
        fl_clock_sleep_ms(100);
    }
    fl_fleet_signal_agent(&s->f, 0, SIGCONT);
    st = s_wait(s, id, s_failure_detailed, s->t[0].name,
                "the canary's late result in its failure");
    detail = s_failure_detail(st, s->t[0].name);
    {
        char *v = s_status_of(s, 0, 1);
        int applied = v != NULL && strcmp(v, "applied") == 0;

        /* The cancel cannot have reached the stopped agent: it applied;
         * whatever happened, the detail says what its ledger says. */
        if (!applied || strstr(detail, "its run ended ok, at version 1")
                            == NULL)
            fail_msg("the canary's ledger says %s, the rollout: %s",
                     v ? v : "(no row)", detail);
        free(v);
    }
    assert_int_equal(s_long(s, 0, "SELECT count(*) FROM pg_tables WHERE "
                            "tablename = 'slow_t'"), 1);
    assert_string_equal(s_st(st), "halted");
    assert_int_equal(s_acc(st, "failed"), 1);
    json_decref(st);
    ctl = PQconnectdb(s->f.ctl.conninfo);
    {
        char *sql = fl_asprintf("SELECT detail || ' / ' || version FROM "
                                "flotilla_control.commands WHERE "
                                "dispatch_id = '%s' AND target = '%s'", id,
                                s->t[0].name);
        char *v = fl_test_query_value(ctl, sql);

        assert_non_null(strstr(v, "its run ended ok, at version 1"));
        assert_non_null(strstr(v, " / 1"));
        free(v);
        free(sql);
    }
    PQfinish(ctl);

    s_rollback_the_canary(s, id);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * A target failed for its target_timeout whose run still goes on when
 * its agent comes back is among those a rollback rolls back.  The
 * canary's agent is stopped (SIGSTOP) while its migration sleeps 10 s,
 * past a 6 s target_timeout, so that the timeout's cancel never reaches
 * it; let go, it says hello,
 * its ledger showing nothing yet (the migration's transaction still
 * open), and the rollback is asked for at once.  The rollback waits on
 * the agent behind the apply, which commits, then rolls it back.
 * Before, the hello's ledger made the canary untouched: the rollback
 * left it out and ended rolled_back, the canary then applied (found by
 * an audit).
 */
static void
test_rollout_stops_target_timeout_still_running_is_rolled_back(
    void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "timeoutrun", s_held10), *id = NULL;
    int online = fl_fleet_log_count(s->f.agents[0].log, "online with");

    /* 6 s: the rollback, sent after it, must wait for the apply's 10 s
     * and still end within its own target_timeout. */
    id = s_start_canary_held(s, bundle, "6s");
    s_stop_shard0(s);
    json_decref(s_wait(s, id, s_halted_and_idle, NULL,
                       "halted by the timeout"));
    fl_fleet_signal_agent(&s->f, 0, SIGCONT);
    fl_fleet_wait_log_more(s->f.agents[0].log, "online with", online, 60);
    if (s_sleepers(s) == 0)
        fail_msg("the canary's migration ended before the rollback was "
                 "asked for: the test proves nothing");
    s_rollback_the_canary(s, id);
    free(id);
    free(bundle);
    s->passed = 1;
}

/* Held like s_held, without a transaction: its first statement commits. */
static const char *const s_held_nt[] = {
    "0001_held.sql",
    "-- flotilla:options no-transaction\n"
    "-- flotilla:up\n"
    "CREATE TABLE slow_t (id int);\n"
    "SELECT pg_sleep(60) FROM items WHERE id = 1 AND note = 'hold';\n"
    "CREATE TABLE part_t (id int);\n"
    "-- flotilla:down\n"
    "DROP TABLE IF EXISTS part_t;\n"
    "DROP TABLE slow_t;\n",
    NULL};

/*
 * halt --abort of a migration without a transaction that has committed
 * some of its statements: the target is not as it was, so it is counted
 * failed, not cancelled (before: "cancelled 1 (statements cancelled and
 * rolled back: as they were)" above a failure saying it was partly
 * applied), and resume, which acknowledges the failures so far and
 * sends again only the cancelled targets, goes on without it: the other
 * 30 applied once, the canary left as its ledger says (1 of 3
 * statements).
 */
static void
test_rollout_stops_abort_of_a_part_applied_run_is_a_failure(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "heldnt", s_held_nt), *id = NULL;
    json_t *st = NULL;
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());
    const char *detail = NULL;

    s_exec_on(s, 0, "UPDATE items SET note = 'hold' WHERE id = 1");
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;100%", NULL};
        id = s_start_bg(s, args);
    }
    while (s_sleepers(s) < 1) {
        if (fl_clock_ms() > deadline)
            fail_msg("the canary's migration did not start within 60 s");
        fl_clock_sleep_ms(50);
    }
    {
        const char *args[] = {"halt", id, "--abort", NULL};
        json_decref(s_rollout(s, 0, args));
    }
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted, nothing in flight");
    assert_int_equal(s_acc(st, "failed"), 1);
    assert_int_equal(s_acc(st, "cancelled"), 0);
    assert_int_equal(s_acc(st, "applied"), 0);
    detail = s_failure_detail(st, s->t[0].name);
    if (detail == NULL || strstr(detail, "partly applied: 1 of 3") == NULL)
        fail_msg("the canary's failure: %s", detail ? detail : "(none)");
    json_decref(st);
    s_expect_value(s, 0, "SELECT status || ' ' || statements_done FROM"
                   " flotilla.schema_migrations", "failed 1");
    for (int i = 1; i < S_TENANTS; i++)
        assert_false(s_has_ledger(s, i));

    {
        const char *args[] = {"resume", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    {
        const char *args[] = {"watch", id, NULL};
        st = s_rollout(s, 0, args);
    }
    assert_string_equal(s_st(st), "completed");
    assert_int_equal(s_acc(st, "applied"), S_TENANTS - 1);
    assert_int_equal(s_acc(st, "failed"), 1);
    json_decref(st);
    s_expect_value(s, 0, "SELECT status || ' ' || statements_done FROM"
                   " flotilla.schema_migrations", "failed 1");
    for (int i = 1; i < S_TENANTS; i++)
        s_expect_value(s, i, "SELECT status || ' ' || statements_done FROM"
                       " flotilla.schema_migrations", "applied 3");
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * The coordinator killed with kill -9 in the middle of a wave and
 * restarted finishes the rollout, every target applied exactly once
 * (one successful execute step in its log, one applied row).
 */
static void
test_rollout_stops_coordinator_kill9_mid_wave_once(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "slow-k", s_slow), *id = NULL;
    json_t *st = NULL;
    int want = 6;

    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "1;100%", "--max-parallel", "4",
                              NULL};
        id = s_start_bg(s, args);
    }
    st = s_wait(s, id, s_applied_at_least, &want, "6 targets applied");
    json_decref(st);
    fl_fleet_signal_coordinator(&s->f, SIGKILL);
    assert_true(s_applied_now(s) < S_TENANTS);
    fl_fleet_start_coordinator(&s->f);
    st = s_watch_all_applied_once(s, id);
    for (int i = 0; i < S_TENANTS; i++) {
        assert_int_equal(s_long(s, i, "SELECT count(*) FROM "
                                "flotilla.schema_migrations WHERE status ="
                                " 'applied'"),
                         1);
    }
    json_decref(st);
    free(id);
    free(bundle);
    s->passed = 1;
}

static const char *const s_slow2[] = {
    "0001_slow_rows.sql",
    "-- flotilla:up\n"
    "CREATE TABLE slow_t (id int);\n"
    "INSERT INTO slow_t SELECT generate_series(1, 100);\n"
    "SELECT pg_sleep(1.5);\n"
    "-- flotilla:down\n"
    "DROP TABLE slow_t;\n",
    NULL};

/*
 * An agent killed with kill -9 in the middle of its migrations: after its
 * restart each of its targets is recovered (applied once) or failed,
 * never half-applied: the table exists exactly where the ledger says the
 * migration applied, with all its rows.
 */
static void
test_rollout_stops_agent_kill9_never_half_applied(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "slow-a", s_slow2), *id = NULL;
    json_t *st = NULL;
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());

    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "100%", "--max-failures", "100%",
                              NULL};
        id = s_start_bg(s, args);
    }
    for (;;) {
        if (fl_fleet_sleepers(&s->f, 1) >= 2)
            break;
        if (fl_clock_ms() > deadline)
            fail_msg("shard-1's migrations were not running within 60 s");
        fl_clock_sleep_ms(20);
    }
    fl_fleet_signal_agent(&s->f, 1, SIGKILL); /* shard-1's agent */
    fl_fleet_start_agent(&s->f, 1);
    {
        const char *args[] = {"watch", id, NULL};
        st = s_rollout(s, -1, args);
    }
    assert_string_equal(s_st(st), "completed");
    for (int i = 0; i < S_TENANTS; i++) {
        char *v = s_status_of(s, i, 1);
        long rows = s_long(s, i, "SELECT CASE WHEN to_regclass('slow_t') IS"
                           " NULL THEN -1 ELSE (SELECT count(*) FROM"
                           " pg_catalog.pg_class WHERE relname = 'slow_t')"
                           " END");
        if (v != NULL && strcmp(v, "applied") == 0) {
            assert_int_equal(rows, 1);
            assert_int_equal(s_long(s, i, "SELECT count(*) FROM slow_t"),
                             100);
            assert_int_equal(s_executed(s, i, 1), 1);
        } else {
            assert_int_equal(rows, -1);
        }
        free(v);
    }
    json_decref(st);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * An agent stopped as a service manager stops it (SIGTERM) in the middle
 * of its migrations: its statements are cancelled, and after its restart
 * the journal runs its commands again, so every target applies once and
 * nothing fails.  Before, the failed row the stop's own cancel left in
 * the ledger answered the command run again ("migration 1 failed in this
 * rollout"), and the rollout halted where kill -9 completed (found by an
 * audit).
 */
static void
test_rollout_stops_agent_sigterm_fails_nothing(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "slow-t", s_slow2), *id = NULL;
    json_t *st = NULL;
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());
    int n = 0;

    {
        const char *args[] = {"start", bundle, "--selector", "agent=shard-1",
                              "--waves", "100%", NULL};
        id = s_start_bg(s, args);
    }
    while (fl_fleet_sleepers(&s->f, 1) < 2) {
        if (fl_clock_ms() > deadline)
            fail_msg("shard-1's migrations were not running within 60 s");
        fl_clock_sleep_ms(20);
    }
    fl_fleet_signal_agent(&s->f, 1, SIGTERM);
    fl_fleet_start_agent(&s->f, 1);
    {
        const char *args[] = {"watch", id, NULL};
        st = s_rollout(s, 0, args);
    }
    assert_string_equal(s_st(st), "completed");
    assert_int_equal(s_acc(st, "failed"), 0);
    for (int i = 0; i < S_TENANTS; i++) {
        char *v = NULL;

        if (s->t[i].shard != 1)
            continue;
        v = s_status_of(s, i, 1);
        if (v == NULL || strcmp(v, "applied") != 0)
            fail_msg("%s: migration 1 is %s after the stop", s->t[i].name,
                     v ? v : "not in the ledger");
        assert_int_equal(s_long(s, i, "SELECT count(*) FROM slow_t"), 100);
        free(v);
        n++;
    }
    assert_int_equal(s_acc(st, "applied"), n);
    json_decref(st);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * A command carried out again from the journal after a kill -9, whose
 * target the agent no longer has (its database dropped meanwhile), is
 * answered failed: its run before the restart may have changed it.
 * Before, it was refused "Nothing ran on it", which a half-applied
 * no-transaction migration belied (found by an audit).
 */
static void
test_rollout_stops_a_target_gone_after_a_restart_is_failed(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "slow-g", s_slow2), *id = NULL, *db = NULL;
    char *tpl = fl_asprintf("%s_tpl", s->p);
    json_t *st = NULL;
    const json_t *f = NULL;
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());
    size_t i = 0;
    int found = 0;

    {
        const char *args[] = {"start", bundle, "--selector", "agent=shard-1",
                              "--waves", "100%", "--max-failures", "100%",
                              NULL};
        id = s_start_bg(s, args);
    }
    for (;;) {
        db = fl_fleet_query(&s->f, 1, "postgres",
                            "SELECT coalesce((SELECT datname FROM"
                            " pg_stat_activity WHERE state = 'active' AND"
                            " query LIKE '%pg_sleep%' AND application_name"
                            " = 'flotilla' LIMIT 1), '')");
        if (db != NULL && *db != '\0')
            break;
        free(db);
        if (fl_clock_ms() > deadline)
            fail_msg("shard-1's migrations were not running within 60 s");
        fl_clock_sleep_ms(20);
    }
    fl_fleet_signal_agent(&s->f, 1, SIGKILL);
    fl_fleet_dropdb(&s->f, 1, db);
    fl_fleet_start_agent(&s->f, 1);
    {
        const char *args[] = {"watch", id, NULL};
        st = s_rollout(s, -1, args);
    }
    json_array_foreach(json_object_get(st, "failures"), i, f) {
        const char *t = json_string_value(json_object_get(f, "target"));
        if (t == NULL || strstr(t, db) == NULL)
            continue;
        found = 1;
        if (strcmp(json_string_value(json_object_get(f, "status")),
                   "failed") != 0)
            fail_msg("the gone target is %s, not failed: %s",
                     json_string_value(json_object_get(f, "status")),
                     json_dumps(f, 0));
    }
    if (!found)
        fail_msg("no failure names the dropped %s: %s", db,
                 json_dumps(st, 0));
    fl_fleet_createdb_from(&s->f, 1, db, tpl);
    json_decref(st);
    free(db);
    free(tpl);
    free(id);
    free(bundle);
    s->passed = 1;
}

/* A down that takes a while: a fleet rollback is in flight for seconds. */
static const char *const s_slow_down[] = {
    "0001_slow_down.sql",
    "-- flotilla:up\n"
    "CREATE TABLE slow_t (id int);\n"
    "INSERT INTO slow_t SELECT generate_series(1, 100);\n"
    "-- flotilla:down\n"
    "SELECT pg_sleep(0.4);\n"
    "DROP TABLE slow_t;\n",
    NULL};

/* The same, its down slower: 3 s a target. */
static const char *const s_slower_down[] = {
    "0001_slower_down.sql",
    "-- flotilla:up\n"
    "CREATE TABLE slow_t (id int);\n"
    "INSERT INTO slow_t SELECT generate_series(1, 100);\n"
    "-- flotilla:down\n"
    "SELECT pg_sleep(3);\n"
    "DROP TABLE slow_t;\n",
    NULL};

static char *s_start_all(s_state *s, const char *bundle);
static long s_ctl_long(s_state *s, const char *sql);

static int
s_rolled_back_at_least(const json_t *st, void *arg)
{
    return s_acc(st, "rolled_back") >= *(const int *)arg;
}

/*
 * Rolls the whole fleet's rollout of s_slow_down out (every target
 * applied) and starts its fleet rollback; returns the rollout's id once
 * `want` targets are rolled back, the rest still to come.  before[i]
 * gets each tenant's canonical dump from before the rollout.
 */
static char *
s_rollback_under_way(s_state *s, const char *name, char **before, int want)
{
    char *bundle = s_bundle(s, name, strcmp(name, "slower-rbh") == 0
                                         ? s_slower_down
                                         : s_slow_down),
         *id = NULL;
    json_t *st = NULL;

    for (int i = 0; i < S_TENANTS; i++)
        before[i] = s_dump(s, i);
    id = s_start_all(s, bundle);
    {
        const char *args[] = {"rollback", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    st = s_wait(s, id, s_rolled_back_at_least, &want, "rolling back");
    assert_true(s_acc(st, "rolled_back") < S_TENANTS);
    json_decref(st);
    free(bundle);
    return id;
}

/*
 * After a fleet rollback interrupted by a crash: every tenant as it was
 * before the rollout (its canonical dump), its migration rolled back,
 * and its down run to success exactly once (one rollback step logged
 * ok: a down run twice, or one whose transaction the crash lost but
 * the ledger took for done, shows here).  agent_killed: the log rows of
 * a run are written after its COMMIT (docs/pipeline.md: count from the
 * ledger), so an agent killed between the two leaves none: at most one.
 */
static void
s_expect_rolled_back_once(s_state *s, char **before, int agent_killed)
{
    for (int i = 0; i < S_TENANTS; i++) {
        char *after = s_dump(s, i);
        char *logged = NULL;

        fl_test_assert_dumps_equal(s->t[i].name, before[i], after);
        free(after);
        free(before[i]);
        s_expect_value(s, i, "SELECT status FROM flotilla.schema_migrations"
                       " WHERE version = '1'", "rolled_back");
        logged = s_value(s, i, "SELECT count(*) FROM flotilla.migration_logs"
                         " WHERE version = '1' AND step = 'rollback' AND"
                         " status = 'ok'");
        if (logged == NULL || (strcmp(logged, "1") != 0 &&
                               (!agent_killed || strcmp(logged, "0") != 0)))
            fail_msg("%s: %s rollback steps logged ok, wanted %s",
                     s->t[i].name, logged ? logged : "(nothing)",
                     agent_killed ? "at most 1" : "1");
        free(logged);
    }
}

/*
 * The fleet's emergency rollback survives its coordinator: killed with
 * kill -9 in the middle of the rollback and restarted, the coordinator
 * finishes it (`rollout watch`: rolled_back, 31 of 31), every target
 * put back once and exactly as it was.
 */
static void
test_rollout_stops_coordinator_kill9_mid_rollback_once(void **state)
{
    s_state *s = *state;
    char *before[S_TENANTS], *id = NULL;
    json_t *st = NULL;

    id = s_rollback_under_way(s, "slow-rbk", before, 4);
    fl_fleet_signal_coordinator(&s->f, SIGKILL);
    fl_fleet_start_coordinator(&s->f);
    {
        const char *args[] = {"watch", id, NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    }
    assert_string_equal(s_st(st), "rolled_back");
    assert_int_equal(s_acc(st, "rolled_back"), S_TENANTS);
    assert_int_equal(s_acc(st, "rollback_failed"), 0);
    json_decref(st);
    s_expect_rolled_back_once(s, before, 0);
    free(id);
    s->passed = 1;
}

/*
 * A fleet rollback halted in its middle is paused, and says so: `rollout
 * watch` ends at once with exit 7 (halted), the status "rolling_back"
 * with "halted" true (the commands its agents hold finish, as a
 * forward rollout's do); after `resume` the rollback finishes (exit 8),
 * every target put back once.  Before, the watch waited for --timeout,
 * as if the rollback ran on.
 */
static void
test_rollout_stops_a_rollback_halted_is_paused_and_says_so(void **state)
{
    s_state *s = *state;
    char *before[S_TENANTS];
    char *id = s_rollback_under_way(s, "slower-rbh", before, 1);
    const char *halt[] = {"halt", id, NULL};
    char *bundle = fl_fleet_path(&s->f, "slower-rbh.bundle");
    json_t *st = NULL;

    /*
     * A second rollout of the bundle while this one rolls back is
     * refused, as while it runs (it was accepted: its applies and the
     * rollback's downs could run on the same targets at once; found by
     * an audit).
     */
    {
        const char *args[] = {"start", bundle, "--selector", "", NULL};
        json_t *again = s_rollout(s, 3, args);
        const char *msg = json_string_value(json_object_get(
            json_object_get(again, "error"), "message"));

        if (msg == NULL || strstr(msg, "rolling back") == NULL)
            fail_msg("a second rollout during the rollback: %s",
                     json_dumps(again, 0));
        json_decref(again);
    }
    free(bundle);
    json_decref(s_rollout(s, 0, halt));
    {
        const char *args[] = {"watch", id, "--timeout", "60s", NULL};
        st = s_rollout(s, S_EXIT_HALTED, args);
    }
    assert_string_equal(s_st(st), "rolling_back");
    assert_true(json_is_true(json_object_get(st, "halted")));
    json_decref(st);
    {
        const char *args[] = {"resume", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    {
        const char *args[] = {"watch", id, NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    }
    assert_int_equal(s_acc(st, "rolled_back"), S_TENANTS);
    json_decref(st);
    s_expect_rolled_back_once(s, before, 0);
    free(id);
    s->passed = 1;
}

static void s_end_sleepers(s_state *s);

/* s_held's table; its down sleeps while the tenant's note says so. */
static const char *const s_held_down[] = {
    "0001_held_down.sql",
    "-- flotilla:up\n"
    "CREATE TABLE slow_t (id int);\n"
    "-- flotilla:down\n"
    "SELECT pg_sleep(60) FROM items WHERE id = 1 AND note = 'holddown';\n"
    "DROP TABLE slow_t;\n",
    NULL};

/*
 * Rolls bundle (s_held_down) out to the canary, the rollout then waiting
 * at a manual gate; halts it (with --abort when abort); rolls it back
 * with the canary's down held, and waits until the down sleeps.  Its id
 * (new).
 */
static char *
s_canary_rollback_held(s_state *s, const char *bundle, int abort)
{
    const char *start[] = {"start", bundle, "--selector", "", "--waves",
                           "tier=canary;100%", "--gate", "manual", NULL};
    const char *halt[] = {"halt", NULL, "--abort", NULL};
    const char *rollback[] = {"rollback", NULL, NULL};
    int one = 1;
    char *id = s_start_bg(s, start);

    json_decref(s_wait(s, id, s_applied_at_least, &one, "the canary "
                       "applied"));
    halt[1] = rollback[1] = id;
    if (!abort)
        halt[2] = NULL;
    json_decref(s_rollout(s, 0, halt));
    json_decref(s_wait(s, id, s_halted_and_idle, NULL, "halted"));
    s_exec_on(s, 0, "UPDATE items SET note = 'holddown' WHERE id = 1");
    json_decref(s_rollout(s, 0, rollback));
    s_await_sleeping(s, 0, "the canary's down");
    return id;
}

/*
 * An abort ends with its halt.  The canary applied, the rollout waiting
 * at a manual gate, halted with --abort, then rolled back (the canary's
 * down held in pg_sleep), then halted plainly: the canary's agent,
 * killed with kill -9 and restarted, carries its rollback out again from
 * its journal, and its hello has it cancelled by nothing, since the halt
 * in force came without --abort.  Before, the abort outlived the halt
 * the rollback cleared (found by an audit): the plain halt was stored as
 * aborted, and the rollback held by the agent was cancelled at its
 * hello.
 */
static void
test_rollout_stops_a_plain_halt_after_an_abort_cancels_nothing(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "helddown", s_held_down), *id = NULL;
    int k = 0, online = 0;
    json_t *st = NULL;

    id = s_canary_rollback_held(s, bundle, 1);
    {
        const char *args[] = {"halt", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    k = s_kill_an_agent_of_sleepers(s);
    assert_int_equal(k, s->t[0].shard);
    online = fl_fleet_log_count(s->f.agents[k].log, "online with");
    fl_fleet_start_agent(&s->f, k);
    fl_fleet_wait_log_more(s->f.agents[k].log, "online with", online, 60);
    s_await_sleeping(s, 0, "after its agent's restart, the canary's down");
    fl_clock_sleep_ms(1000);
    st = s_status(s, id);
    if (!s_sleeping(s, 0) || s_acc(st, "rollback_failed") != 0)
        fail_msg("a plain halt of a rollback after an abort: the canary's "
                 "down %s, %lld rollbacks failed",
                 s_sleeping(s, 0) ? "runs" : "was cancelled",
                 s_acc(st, "rollback_failed"));
    json_decref(st);
    s_end_sleepers(s);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * halt --abort of a rollback, then resume: the rollback goes on.  The
 * canary applied and its rollback held in its down (pg_sleep), the
 * rollout halted with --abort (the down's statement cancelled: the
 * canary still applied), the hold lifted, resumed: the canary's rollback
 * is sent again and the rollout ends rolled back, its table gone.
 * Before, the cancelled rollback counted as failed: resume ended in
 * rollback_failed (found by an audit), where the documentation says the
 * rollback goes on.
 */
static void
test_rollout_stops_abort_of_a_rollback_then_resume_goes_on(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "helddown2", s_held_down), *id = NULL;
    json_t *st = NULL;

    id = s_canary_rollback_held(s, bundle, 0);
    {
        const char *args[] = {"halt", id, "--abort", NULL};
        json_decref(s_rollout(s, 0, args));
    }
    s_wait_no_sleepers(s);
    s_expect_value(s, 0, "SELECT count(*) FROM pg_tables WHERE tablename ="
                   " 'slow_t'", "1");
    s_exec_on(s, 0, "UPDATE items SET note = 'note 1' WHERE id = 1");
    {
        const char *args[] = {"resume", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    {
        const char *args[] = {"watch", id, "--timeout", "90s", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    }
    assert_string_equal(s_st(st), "rolled_back");
    assert_int_equal(s_acc(st, "rolled_back"), 1);
    assert_int_equal(s_acc(st, "rollback_failed"), 0);
    json_decref(st);
    s_expect_value(s, 0, "SELECT count(*) FROM pg_tables WHERE tablename ="
                   " 'slow_t'", "0");
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * halt --abort of a rollback, a kill -9 of the coordinator, then resume:
 * every touched target is rolled back.  The rollout applied everywhere
 * in two waves (the canary, then the rest); its rollback, newest wave
 * first, has tenant 1's down held in pg_sleep while the rest of that
 * wave rolls back; halted with --abort (tenant 1's rollback cancelled,
 * its table still there), the coordinator killed and started again, the
 * hold lifted, resumed: tenant 1 and the canary are rolled back too.
 * Before, the restarted coordinator took the cancelled wave for behind
 * it: the resume sent the canary's wave only, ended "rolled_back" and
 * left tenant 1 applied, its rollback held for good (found by an audit).
 */
static void
test_rollout_stops_rollback_abort_restart_resume_rolls_back_all(
    void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "helddown3", s_held_down), *id = NULL;
    const char *start[] = {"start", bundle, "--selector", "", "--waves",
                           "tier=canary;100%", NULL};
    int rest = S_TENANTS - 2;
    int64_t until = 0;
    PGconn *ctl = NULL;
    char *n = NULL;
    json_t *st = NULL;

    id = s_start_bg(s, start);
    {
        const char *args[] = {"watch", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    s_exec_on(s, 1, "UPDATE items SET note = 'holddown' WHERE id = 1");
    {
        const char *args[] = {"rollback", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    s_await_sleeping(s, 1, "tenant 1's down");
    json_decref(s_wait(s, id, s_rolled_back_at_least, &rest,
                       "the rest of the newest wave rolled back"));
    {
        const char *args[] = {"halt", id, "--abort", NULL};
        json_decref(s_rollout(s, 0, args));
    }
    s_wait_no_sleepers(s);
    /* Tenant 1's rollback recorded cancelled before the kill. */
    ctl = PQconnectdb(s->f.ctl.conninfo);
    assert_int_equal(PQstatus(ctl), CONNECTION_OK);
    until = fl_clock_ms() + (int64_t)(60000 * fl_test_timeout_scale());
    while ((n = fl_test_query_value(ctl, "SELECT count(*) FROM"
                                         " flotilla_control.commands WHERE"
                                         " action = 'rollback' AND status ="
                                         " 'cancelled'")) == NULL ||
           strcmp(n, "1") != 0) {
        free(n);
        if (fl_clock_ms() > until)
            fail_msg("tenant 1's rollback was not recorded cancelled");
        fl_clock_sleep_ms(50);
    }
    free(n);
    PQfinish(ctl);
    s_expect_value(s, 1, "SELECT count(*) FROM pg_tables WHERE tablename ="
                   " 'slow_t'", "1");
    fl_fleet_signal_coordinator(&s->f, SIGKILL);
    fl_fleet_start_coordinator(&s->f);
    s_exec_on(s, 1, "UPDATE items SET note = 'note 1' WHERE id = 1");
    {
        const char *args[] = {"resume", id, NULL};
        json_decref(s_rollout(s, 0, args));
    }
    {
        const char *args[] = {"watch", id, "--timeout", "90s", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    }
    assert_int_equal(s_acc(st, "rolled_back"), S_TENANTS);
    json_decref(st);
    free(id);
    free(bundle);
    /* Read from every tenant: its table is gone. */
    for (int i = 0; i < S_TENANTS; i++)
        s_expect_value(s, i, "SELECT count(*) FROM pg_tables WHERE"
                       " tablename = 'slow_t'", "0");
    s->passed = 1;
}

/* The status is arg. */
static int
s_status_is(const json_t *st, void *arg)
{
    return strcmp(s_st(st), (const char *)arg) == 0;
}

/*
 * An operator's halt does not stop on_failure: rollback.  Three runs
 * held in pg_sleep, the rollout halted (plainly: they go on), then the
 * three fail (their sessions ended): past the budget (0), the rollout
 * rolls back.  Before, failures that came while halted were never
 * checked against the budget: it stayed halted, and a resume
 * acknowledged them (found by a read-only audit).
 */
static void
test_rollout_stops_failures_while_halted_still_roll_back(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "heldrb", s_held);
    char *id = s_start_three_held_on(s, bundle, "rollback");
    json_t *st = NULL;

    {
        const char *halt[] = {"halt", id, NULL};
        json_decref(s_rollout(s, 0, halt));
    }
    s_end_sleepers(s);
    s_hold_all(s, 0);
    st = s_wait(s, id, s_status_is, "rolled_back", "rolled back");
    assert_int_equal(s_acc(st, "failed"), 3);
    json_decref(st);
    for (int i = 0; i < S_TENANTS; i++)
        assert_int_equal(s_long(s, i, "SELECT count(*) FROM pg_tables WHERE "
                                "tablename = 'slow_t'"), 0);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * An agent killed with kill -9 while its targets' downs run: each down's
 * transaction ends with its session, so no target is left half rolled
 * back; after the agent's restart the fleet rollback ends rolled back
 * (run again if it reported a target rollback_failed), every target put
 * back once and exactly as it was.
 */
static void
test_rollout_stops_agent_kill9_mid_rollback_once(void **state)
{
    s_state *s = *state;
    char *before[S_TENANTS], *id = NULL;
    json_t *st = NULL;
    int64_t deadline = 0;

    id = s_rollback_under_way(s, "slow-rba", before, 1);
    deadline = fl_clock_ms() + (int64_t)(60000 * fl_test_timeout_scale());
    while (fl_fleet_sleepers(&s->f, 1) < 1) {
        if (fl_clock_ms() > deadline)
            fail_msg("no down was running on shard-1 within 60 s");
        fl_clock_sleep_ms(10);
    }
    fl_fleet_signal_agent(&s->f, 1, SIGKILL);
    fl_fleet_start_agent(&s->f, 1);
    {
        const char *args[] = {"watch", id, NULL};
        st = s_rollout(s, -1, args);
    }
    if (strcmp(s_st(st), "rolled_back") != 0) {
        const char *args[] = {"rollback", id, "--watch", NULL};
        assert_string_equal(s_st(st), "rollback_failed");
        json_decref(st);
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    }
    assert_string_equal(s_st(st), "rolled_back");
    assert_int_equal(s_acc(st, "rolled_back"), S_TENANTS);
    json_decref(st);
    s_expect_rolled_back_once(s, before, 1);
    free(id);
    s->passed = 1;
}

/*
 * What the control database says was released was: every command of a
 * rollout and of its rollback that has an outcome is recorded released
 * (a restarted coordinator sends again only what it finds unreleased).
 * The release of a rollout's first commands was written in the same
 * transaction as the commands' rows, and before them: it updated no row,
 * and after a kill -9 the restarted coordinator took commands its agents
 * had carried out for never sent, ignored their results and counted the
 * targets unreachable (found by
 * test_rollout_kills_anywhere_in_a_rollout_and_its_rollback: the
 * rollback counted 29 of 31 targets rolled back).
 */
static void
test_rollout_staged_what_was_sent_is_recorded_released(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "released", s_add_column), *id = NULL;
    char *sql = NULL;
    json_t *st = NULL;

    id = s_start_all(s, bundle);
    {
        const char *args[] = {"rollback", id, "--watch", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
        assert_int_equal(s_acc(st, "rolled_back"), S_TENANTS);
        json_decref(st);
    }
    sql = fl_asprintf("SELECT count(*) FILTER (WHERE c.status <> 'pending')"
                      " * 1000 + count(*) FILTER (WHERE c.status <>"
                      " 'pending' AND NOT c.released) FROM"
                      " flotilla_control.commands c JOIN"
                      " flotilla_control.dispatches d ON d.id ="
                      " c.dispatch_id WHERE d.id = '%s' OR d.rollout_id ="
                      " '%s'", id, id);
    /* 31 applies and 31 rollbacks with an outcome, none unreleased. */
    assert_int_equal(s_ctl_long(s, sql), 2 * S_TENANTS * 1000);
    free(sql);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * The fleet-wide plan: every target validates and rehearses, the
 * poisoned one reports the check's count, and nothing changes anywhere
 * (the same canonical dump, no ledger created).
 */
static void
test_rollout_staged_plan_changes_nothing(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "plan", s_two), *before[S_TENANTS];
    json_t *st = NULL;
    const json_t *t = NULL, *plan = NULL;
    size_t i;

    s_exec_on(s, 7, "UPDATE items SET note = NULL WHERE id IN (2, 4)");
    for (int k = 0; k < S_TENANTS; k++)
        before[k] = s_dump(s, k);
    {
        const char *args[] = {"plan", bundle, "--selector", "",
                              "--max-parallel-per-agent", "2", NULL};
        st = s_rollout(s, 3, args);
    }
    plan = json_object_get(st, "plan");
    assert_int_equal(json_integer_value(json_object_get(plan, "would_apply")),
                     S_TENANTS - 1);
    assert_int_equal(json_integer_value(json_object_get(plan, "would_fail")),
                     1);
    /* A plan applies nothing: no "applied" to read (before: 30). */
    assert_null(json_object_get(json_object_get(st, "accounting"),
                                "applied"));
    json_array_foreach(json_object_get(st, "targets"), i, t) {
        const char *v = json_string_value(json_object_get(t, "verdict"));
        if (strcmp(json_string_value(json_object_get(t, "target")),
                   s->t[7].name) == 0) {
            const char *why = json_string_value(json_object_get(t, "reason"));
            assert_string_equal(v, "would fail");
            assert_non_null(why);
            if (strstr(why, "2") == NULL)
                fail_msg("the plan does not count the 2 rows: %s", why);
        } else {
            assert_string_equal(v, "would apply");
        }
    }
    /*
     * Read again, the plan says the same: status exits 3 (a target would
     * fail), and list and status name its verdicts, not targets
     * "applied" (before: exit 0, "applied 30", as if it had run).
     */
    {
        char *id = fl_strdup(json_string_value(json_object_get(st, "id")));
        const char *args[] = {"status", id, NULL};
        const char *text[] = {"flotilla", "rollout", "status", id, NULL};
        const char *list[] = {"flotilla", "rollout", "list", NULL};
        const char *bid = json_string_value(json_object_get(st, "bundle"));
        fl_test_proc_t r = {0, NULL, NULL};
        char *line = NULL;

        json_decref(s_rollout(s, 3, args));
        fl_fleet_cli(&s->f, &r, text);
        if (r.status != 3 || strstr(r.out, "would fail 1") == NULL ||
            strstr(r.out, "applied") != NULL)
            fail_msg("rollout status of the plan: exit %d, wanted 3 and "
                     "its verdicts\n%s", r.status, r.out);
        fl_test_proc_release(&r);
        fl_fleet_cli(&s->f, &r, list);
        line = strstr(r.out, id);
        /* The bundle's whole id, as rollback --bundle takes it (before,
         * its first 16 digits). */
        if (line != NULL && (bid == NULL || strlen(bid) != 32 ||
                             strstr(line, bid) == NULL))
            fail_msg("rollout list does not give the whole bundle id "
                     "%s:\n%s", bid ? bid : "(none)", r.out);
        if (line == NULL || strstr(line, "would fail 1") == NULL ||
            (strchr(line, '\n') != NULL &&
             strstr(line, "applied") != NULL &&
             strstr(line, "applied") < strchr(line, '\n')))
            fail_msg("rollout list does not give the plan's verdicts:\n%s",
                     r.out);
        fl_test_proc_release(&r);
        free(id);
    }
    for (int k = 0; k < S_TENANTS; k++) {
        char *after = s_dump(s, k);
        fl_test_assert_dumps_equal(s->t[k].name, before[k], after);
        assert_false(s_has_ledger(s, k));
        free(after);
        free(before[k]);
    }
    json_decref(st);
    free(bundle);
    s->passed = 1;
}

/*
 * max_parallel_per_server keys on the targets' label "server", not on
 * their agents: with a cap of 3, the 21 tenants of server pg01 (two
 * agents, each free to run 4 at once: keyed by agent, 6 could run) migrate
 * at most three at a time, read from the ledgers' clocks, while pg02's run
 * beside them.
 */
static void
test_rollout_staged_per_server_cap_keyed_by_server_label(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "per-server", s_add_column);
    json_t *st = NULL;

    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "100%",
                              "--max-parallel-per-server", "3", "--watch",
                              NULL};
        st = s_rollout(s, 0, args);
    }
    assert_int_equal(s_acc(st, "applied"), S_TENANTS);
    for (int i = 0; i < S_TENANTS; i++)
        assert_int_equal(s_executed(s, i, 1), 1);
    {
        int pg01 = s_max_overlap(s, 1 << 0 | 1 << 1);
        int pg02 = s_max_overlap(s, 1 << 2);
        int all = s_max_overlap(s, -1);

        if (pg01 > 3 || pg02 > 3)
            fail_msg("%d migrations at once on server pg01 (shards 0 and "
                     "1), %d on pg02 (cap 3)", pg01, pg02);
        /* The cap is per server, not overall: the servers overlapped. */
        if (all <= pg01)
            fail_msg("at most %d migrations at once over both servers, as "
                     "many as on pg01 alone: pg02's never ran beside them",
                     all);
    }
    json_decref(st);
    free(bundle);
    s->passed = 1;
}

/* Fails the test unless text contains what (said as why). */
static void
s_has(const char *text, const char *what, const char *why)
{
    if (strstr(text, what) == NULL)
        fail_msg("%s: no \"%s\" in:\n%s", why, what, text);
}

/*
 * `rollout watch` follows a live rollout (a canary wave, a bake, the
 * rest): on a terminal it redraws one block (each wave with a progress
 * bar and its counts, the accounting), moving the cursor back over the
 * block drawn before; piped, it prints plain lines, one per change of
 * state, no terminal control sequences, and the accounting at the end.
 * Both watch the same rollout at once and exit 0 when it completes.
 */
/*
 * How many lines of the screen hold needle once out has been written to
 * a terminal wide enough for every line: newlines move down, "\033[1A"
 * up, "\033[2K" clears the line (the sequences watch draws with).
 */
static int
s_screen_count(const char *out, const char *needle)
{
    enum { S_ROWS = 4096 };
    char **rows = calloc(S_ROWS, sizeof(*rows));
    size_t row = 0, nrows = 1;
    int n = 0;

    for (const char *p = out; *p != '\0' && row < S_ROWS;) {
        if (strncmp(p, "\033[1A", 4) == 0) {
            row = row > 0 ? row - 1 : 0;
            p += 4;
        } else if (strncmp(p, "\033[2K", 4) == 0) {
            free(rows[row]);
            rows[row] = NULL;
            p += 4;
        } else if (*p == '\n' || *p == '\r') {
            row += *p == '\n';
            nrows = row + 1 > nrows ? row + 1 : nrows;
            p++;
        } else {
            size_t k = strcspn(p, "\033\n\r");
            char *line = fl_asprintf("%s%.*s", rows[row] ? rows[row] : "",
                                     (int)k, p);
            free(rows[row]);
            rows[row] = line;
            p += k ? k : 1;
        }
    }
    for (size_t i = 0; i < nrows && i < S_ROWS; i++) {
        n += rows[i] != NULL && strstr(rows[i], needle) != NULL;
        free(rows[i]);
    }
    free(rows);
    return n;
}

static void
test_rollout_staged_watch_bars_on_a_terminal_lines_when_piped(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "watch", s_not_null), *id = NULL;
    char *piped = fl_fleet_path(&s->f, "watch-piped.out"), *line = NULL;
    char *head = NULL;
    unsigned char *text = NULL;
    size_t len = 0;
    fl_test_proc_t tty = {0, NULL, NULL};
    pid_t pid;

    /* One tenant of the second wave fails validation, within budget: its
     * failure is two lines (the reason, then the check's detail). */
    s_exec_on(s, 9, "UPDATE items SET note = NULL WHERE id IN (3, 5)");
    {
        const char *args[] = {"start", bundle, "--selector", "", "--waves",
                              "tier=canary;100%", "--bake", "2s",
                              "--max-failures", "1", NULL};
        id = s_start_bg(s, args);
    }
    {
        const char *argv[] = {"flotilla", "rollout", "watch", id, NULL};
        pid = fl_fleet_cli_spawn(&s->f, argv, piped);
        fl_test_run_pty(&tty, "flotilla", argv, 160, 120);
    }
    if (tty.status != 0)
        fail_msg("watch on a terminal: exit %d\n%s", tty.status, tty.out);
    assert_int_equal(fl_fleet_wait_pid(pid, 60), 0);
    /* The terminal: a block redrawn in place, with full bars at the end. */
    s_has(tty.out, "\033[1A\033[2K", "the block is never redrawn");
    s_has(tty.out, "wave 1 (tier=canary) [##############################] "
                   "1/1 done, 1 applied", "the canary's bar");
    s_has(tty.out, "wave 2 (100%) [##############################] 30/30 "
                   "done, 29 applied", "the second wave's bar");
    s_has(tty.out, "wave 2 (100%) [..............................] 0/30",
          "the second wave's bar before it starts");
    s_has(tty.out, ": completed", "the end");
    s_has(tty.out, "planned 31, dispatched 31, applied 30, failed 1",
          "the accounting");
    /* Redrawn in place, the screen holds one block at the end (before,
     * each failure's detail line was left above the next block). */
    head = fl_asprintf("rollout %s (", id);
    if (s_screen_count(tty.out, head) != 1)
        fail_msg("the terminal shows %d blocks at the end, not 1:\n%s",
                 s_screen_count(tty.out, head), tty.out);
    free(head);
    /* Piped: plain lines, no control sequences. */
    if (fl_file_read(&text, &len, piped, 1 << 20, "watch output", NULL) != 0)
        fail_msg("cannot read %s", piped);
    if (memchr(text, '\033', len) != NULL)
        fail_msg("piped output has terminal control sequences:\n%s", text);
    line = fl_asprintf("rollout %s: running, wave 1/2 (tier=canary)", id);
    s_has((char *)text, line, "the first wave's line");
    free(line);
    line = fl_asprintf("rollout %s: completed, wave 2/2 (100%%)", id);
    s_has((char *)text, line, "the last line of state");
    s_has((char *)text, "planned 31, dispatched 31, applied 30, failed 1",
          "the accounting at the end");
    assert_null(strstr((char *)text, "[#"));
    free(line);
    free(text);
    fl_test_proc_release(&tty);
    free(piped);
    free(id);
    free(bundle);
    s->passed = 1;
}

/* Fails at execute where items 1 says "fail", 3 s later where "slow". */
static const char *const s_fail_late[] = {
    "0001_div.sql",
    "-- flotilla:up\n"
    "SELECT pg_sleep(3) FROM items WHERE id = 1 AND note = 'slow';\n"
    "UPDATE items SET v = 1 / (CASE WHEN note IN ('fail', 'slow') THEN 0"
    " ELSE 1 END) WHERE id = 1;\n"
    "-- flotilla:down\nSELECT 1;\n",
    NULL};

static int
s_occurrences(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(text, needle); p != NULL;
         p = strstr(p + 1, needle))
        n++;
    return n;
}

/*
 * Piped, watch prints each failure once, whenever it comes.  The
 * coordinator lists failures in the targets' order, and watch printed
 * those past the count it had printed: a target earlier in the order
 * failing after a later one shifted the list, so the later one was
 * printed again and the earlier one never (found by an audit: 6
 * tenants, tenant_e printed twice, tenant_f three times, tenant_a to c
 * never).  Here a tenant fails at once, and one before it in the order
 * 3 s later.
 */
static void
test_rollout_staged_watch_piped_prints_each_failure_once(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "fail-late", s_fail_late), *id = NULL;
    char *piped = fl_fleet_path(&s->f, "watch-failures.out");
    unsigned char *text = NULL;
    size_t len = 0;
    int late = 1;
    pid_t pid;

    while (late == 9 || strcmp(s->t[late].name, s->t[9].name) >= 0)
        late++;
    assert_true(late < S_TENANTS);
    s_exec_on(s, 9, "UPDATE items SET note = 'fail' WHERE id = 1");
    s_exec_on(s, late, "UPDATE items SET note = 'slow' WHERE id = 1");
    {
        const char *args[] = {"start", bundle, "--selector", "", "--waves",
                              "100%", "--max-failures", "2", NULL};
        id = s_start_bg(s, args);
    }
    {
        const char *argv[] = {"flotilla", "rollout", "watch", id, NULL};
        pid = fl_fleet_cli_spawn(&s->f, argv, piped);
    }
    assert_int_equal(fl_fleet_wait_pid(pid, 120), 0);
    if (fl_file_read(&text, &len, piped, 1 << 20, "watch output", NULL) != 0)
        fail_msg("cannot read %s", piped);
    for (int k = 0; k < 2; k++) {
        int i = k == 0 ? 9 : late;
        char *needle = fl_asprintf("apply failed: %s (", s->t[i].name);

        if (s_occurrences((char *)text, needle) != 1)
            fail_msg("\"%s\" printed %d times, not once:\n%s", needle,
                     s_occurrences((char *)text, needle), text);
        free(needle);
    }
    s_has((char *)text, "applied 29, failed 2", "the accounting");
    free(text);
    free(piped);
    free(id);
    free(bundle);
    s->passed = 1;
}

/* A migration without a transaction, then one the rehearsal can run. */
static const char *const s_notx_first[] = {
    "0001_index_note.sql",
    "-- flotilla:options no-transaction\n"
    "-- flotilla:up\n"
    "CREATE INDEX CONCURRENTLY items_note ON items (note);\n"
    "-- flotilla:down\n"
    "DROP INDEX CONCURRENTLY items_note;\n",
    "0002_add_flag2.sql", S_ADD_FLAG2,
    NULL};

/*
 * The fleet plan says NOT PROVEN, per target, as the single-database plan
 * does, when the rehearsal cannot run a migration (one without a
 * transaction): a verdict of its own, not "would apply", and the plan
 * exits 3; nothing changes.
 */
static void
test_rollout_staged_plan_not_proven_past_no_transaction(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "plan-notx", s_notx_first);
    char *before = s_dump(s, 0), *after = NULL;
    const json_t *t = NULL, *plan = NULL;
    json_t *st = NULL;
    const char *why = NULL;

    {
        const char *args[] = {"plan", bundle, "--selector", "tier=canary",
                              NULL};
        st = s_rollout(s, 3, args);
    }
    plan = json_object_get(st, "plan");
    assert_int_equal(json_integer_value(json_object_get(plan, "not_proven")),
                     1);
    assert_null(json_object_get(plan, "would_apply"));
    assert_int_equal(json_array_size(json_object_get(st, "targets")), 1);
    t = json_array_get(json_object_get(st, "targets"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "target")),
                        s->t[0].name);
    assert_string_equal(json_string_value(json_object_get(t, "verdict")),
                        "not proven");
    why = json_string_value(json_object_get(t, "reason"));
    if (why == NULL ||
        strstr(why, "NOT PROVEN: 1 of 2 pending migrations "
                    "not rehearsed (1)") == NULL ||
        strstr(why, "transaction") == NULL)
        fail_msg("the reason does not say what was not rehearsed and why: "
                 "%s",
                 why ? why : "(none)");
    after = s_dump(s, 0);
    fl_test_assert_dumps_equal(s->t[0].name, before, after);
    assert_false(s_has_ledger(s, 0));
    free(after);
    free(before);
    json_decref(st);
    free(bundle);
    s->passed = 1;
}

/*
 * Shard k's agent stopped, a rollout of bundle to the whole fleet in one
 * wave, watched to its end: halted (the unreachable exceed max_failures
 * 0).  Returns its final status.
 */
static json_t *
s_halted_without_shard(s_state *s, int k, const char *bundle)
{
    const char *args[] = {"start", bundle, "--selector", "", "--waves",
                          "100%", "--watch", NULL};

    s_stop_shard(s, k);
    return s_rollout(s, S_EXIT_HALTED, args);
}

/*
 * Unreachable targets (their agent stopped) count as failures and halt
 * the rollout, unless unreachable: skip, which completes the rollout
 * without them; they are never touched.
 */
static void
test_rollout_staged_unreachable_fails_unless_skipped(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "unreach", s_add_column), *first = NULL;
    json_t *st = NULL;

    st = s_halted_without_shard(s, 2, bundle);
    assert_int_equal(s_acc(st, "unreachable"), S_PER_SHARD);
    first = fl_strdup(json_string_value(json_object_get(st, "id")));
    json_decref(st);
    /* The same migration and one more, skipping the unreachable: the
     * targets the first rollout reached apply the second migration only. */
    free(bundle);
    bundle = s_bundle(s, "unreach2", s_add_column_and_more);
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "100%", "--unreachable", "skip",
                              "--watch", NULL};
        st = s_rollout(s, 0, args);
    }
    assert_string_equal(s_st(st), "completed");
    assert_int_equal(s_acc(st, "unreachable"), S_PER_SHARD);
    assert_int_equal(s_acc(st, "applied"), S_TENANTS - S_PER_SHARD);
    /*
     * Attached to as a dispatch, the rollout did not succeed on every
     * target: exit 1, the unreachable counted, in the text too (before:
     * exit 0, and a summary whose counts did not add up to the total).
     */
    {
        char *id = fl_strdup(json_string_value(json_object_get(st, "id")));
        const char *argv[] = {"flotilla", "dispatch", "--attach", id, NULL};
        fl_test_proc_t r = {0, NULL, NULL};
        char *says = fl_asprintf("%d unreachable", S_PER_SHARD);

        fl_fleet_cli(&s->f, &r, argv);
        if (r.status != 1 || strstr(r.out, says) == NULL)
            fail_msg("dispatch --attach: exit %d, wanted 1 and \"%s\"\n%s"
                     "\n%s", r.status, says, r.out, r.err);
        fl_test_proc_release(&r);
        free(says);
        free(id);
    }
    for (int i = 0; i < S_TENANTS; i++) {
        assert_int_equal(s_has_column(s, i, "flag"), s->t[i].shard != 2);
        assert_int_equal(s_has_column(s, i, "flag2"), s->t[i].shard != 2);
    }
    json_decref(st);
    /*
     * The first rollout's rollback would take flag away under the second
     * rollout's flag2, which would stay recorded applied: each target
     * refuses it (before, every one rolled flag back), and the rollback
     * stops for the operator with nothing changed.
     */
    {
        const char *args[] = {"rollback", first, "--watch", NULL};
        const json_t *f = NULL;
        const char *why = NULL;

        st = s_rollout(s, 1, args);
        assert_string_equal(s_st(st), "rollback_failed");
        if (s_acc(st, "rollback_failed") < 1 || s_acc(st, "rolled_back") != 0)
            fail_msg("rollback_failed %lld, rolled_back %lld",
                     s_acc(st, "rollback_failed"), s_acc(st, "rolled_back"));
        for (int i = 0; i < S_TENANTS && f == NULL; i++)
            f = s_failure_of(st, "rollback", s->t[i].name);
        why = f ? json_string_value(json_object_get(f, "reason")) : NULL;
        if (why == NULL || strstr(why, "another bundle") == NULL)
            fail_msg("the rollback failure does not say why: %s",
                     why ? why : "(none)");
        json_decref(st);
    }
    for (int i = 0; i < S_TENANTS; i++) {
        assert_int_equal(s_has_column(s, i, "flag"), s->t[i].shard != 2);
        assert_int_equal(s_has_column(s, i, "flag2"), s->t[i].shard != 2);
    }
    free(first);
    free(bundle);
    s->passed = 1;
}


/*
 * Unreachable targets that exceed the budget stop the wave: no target
 * after them is sent anything.  Shard 0's agent stopped, its 11 tenants
 * come first in the wave's order; with max_failures 0 the rollout halts
 * with the 11 unreachable and nothing sent to the 20 others, whose
 * ledgers record nothing; the 11 count as untouched but unconfirmed
 * (their agent is offline: its last report confirms nothing now).
 * Before, the targets after them in the same wave were released in the
 * same pass, before the failures were counted: all 20 were migrated after
 * the budget was exceeded; and the 11 counted as confirmed untouched.
 */
static void
test_rollout_staged_unreachable_beyond_the_budget_stops_the_wave(
    void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "unreachfirst", s_add_column), *id = NULL;
    json_t *st = NULL;

    st = s_halted_without_shard(s, 0, bundle);
    id = fl_strdup(json_string_value(json_object_get(st, "id")));
    assert_int_equal(s_acc(st, "unreachable"), S_PER_SHARD + 1);
    assert_int_equal(s_acc(st, "dispatched"), 0);
    assert_int_equal(s_acc(st, "applied"), 0);
    /* The stopped agent's ledgers are not known now: not confirmed. */
    assert_int_equal(s_acc(st, "untouched"), S_TENANTS - S_PER_SHARD - 1);
    assert_int_equal(s_acc(st, "untouched_unconfirmed"), S_PER_SHARD + 1);
    json_decref(st);
    for (int i = 0; i < S_TENANTS; i++) {
        assert_int_equal(s_ledger_rows(s, i, id), 0);
        assert_false(s_has_column(s, i, "flag"));
    }
    free(id);
    free(bundle);
    s->passed = 1;
}

/* Sleeps 4 s where items 1 says "slow", then applies. */
static const char *const s_slow_some[] = {
    "0001_slow_some.sql",
    "-- flotilla:up\n"
    "SELECT pg_sleep(4) FROM items WHERE id = 1 AND note = 'slow';\n"
    "ALTER TABLE items ADD COLUMN flag int;\n"
    "-- flotilla:down\n"
    "ALTER TABLE items DROP COLUMN flag;\n",
    NULL};

/*
 * Unreachable targets decided in one pass of a batch of results count
 * against the budget in the next pass of the same batch.  The wave of
 * 30 (tier=main, two at a time): shard 0's ten first, shard 1's agent
 * stopped, shard 2's after.  Shard 0's last two sleep 4 s; meanwhile
 * the control database's writer is held behind another write, so both
 * results are written in one batch, and each runs a scheduling pass.
 * The first decides shard 1's ten unreachable (the budget is 0); the
 * second did not count them, as their outcome was still being written,
 * and released two of shard 2's, whose releases were written and sent
 * before the ten outcomes that halt the rollout (found by an audit).
 * Now the rollout halts with nothing of shard 2 touched.
 */
static void
test_rollout_staged_unreachable_in_a_batch_stops_the_wave(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "batchunreach", s_slow_some), *id = NULL;
    char *other = s_bundle(s, "batchother", s_add_column);
    const char *args[] = {"start", bundle, "--selector", "tier=main",
                          "--waves", "100%", "--max-parallel", "2", NULL};
    PGconn *ctl = NULL;
    pid_t side = 0;
    json_t *st = NULL;
    int oks[2];

    /* t[9] and t[10]: shard 0's last two (t[0] is the canary). */
    s_exec_on(s, 9, "UPDATE items SET note = 'slow' WHERE id = 1");
    s_exec_on(s, 10, "UPDATE items SET note = 'slow' WHERE id = 1");
    s_stop_shard(s, 1);
    /* The agent's log is the group's: earlier tests' lines counted. */
    for (int i = 9; i <= 10; i++) {
        char *said = fl_asprintf("%s\\\": ok", s->t[i].name);

        oks[i - 9] = fl_fleet_log_count(s->f.agents[0].log, said);
        free(said);
    }
    id = s_start_bg(s, args);
    while (fl_fleet_sleepers(&s->f, 0) < 2)
        fl_clock_sleep_ms(20);
    /* The writer held: a dispatch to the canary waits to be written. */
    ctl = PQconnectdb(s->f.ctl.conninfo);
    fl_test_exec(ctl, "BEGIN; SELECT 1 FROM flotilla_control.writer"
                      " FOR UPDATE");
    {
        const char *argv[] = {"flotilla", "dispatch", other, "--selector",
                              "tier=canary", "--json", NULL};
        char *out = fl_fleet_path(&s->f, "batch-side.out");

        side = fl_fleet_cli_spawn(&s->f, argv, out);
        free(out);
    }
    for (int i = 9; i <= 10; i++) {
        char *said = fl_asprintf("%s\\\": ok", s->t[i].name);

        fl_fleet_wait_log_more(s->f.agents[0].log, said, oks[i - 9], 60);
        free(said);
    }
    fl_clock_sleep_ms(500); /* both results in the coordinator's queue */
    fl_test_exec(ctl, "COMMIT");
    PQfinish(ctl);
    assert_int_equal(fl_fleet_wait_pid(side, 120), 0);
    {
        const char *w[] = {"watch", id, NULL};
        json_decref(s_rollout(s, S_EXIT_HALTED, w));
    }
    /* Halted as soon as the budget is exceeded: shard 0's last run may
     * still be answering then. */
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted, nothing running");
    assert_int_equal(s_acc(st, "applied"), S_PER_SHARD);
    json_decref(st);
    for (int i = 1; i < S_TENANTS; i++)
        if (s->t[i].shard == 2 && s_ledger_rows(s, i, id) != 0)
            fail_msg("%s was sent the rollout after the budget was "
                     "exceeded", s->t[i].name);
    free(id);
    free(other);
    free(bundle);
    s->passed = 1;
}

/* The target named arg reads "error" in `flotilla targets`. */
static int
s_target_in_error(const json_t *rows, void *arg)
{
    const json_t *r = fl_fleet_row(rows, "target", (const char *)arg);

    return r != NULL &&
           strcmp(json_string_value(json_object_get(r, "reachability")),
                  "error") == 0;
}

/*
 * A target whose agent could not read its ledger (here a damaged one: a
 * schema_migrations table that is not flotilla's) reads "error" in
 * `flotilla targets`, and a rollout takes it for unreachable: not sent
 * anything, counted a failure.
 */
static void
test_rollout_staged_a_ledger_read_error_is_unreachable(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "damaged", s_add_column);
    const int bad = 4;
    int64_t asked = 0;
    json_t *st = NULL;

    s_exec_on(s, bad, "CREATE SCHEMA flotilla;"
                      "CREATE TABLE flotilla.schema_migrations (x int)");
    fl_fleet_rediscover(&s->f, &asked);
    fl_fleet_wait(&s->f, "targets", s_target_in_error, s->t[bad].name, 60,
                  "the damaged target in error");
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "100%", "--max-failures", "1",
                              "--watch", NULL};
        st = s_rollout(s, 0, args);
    }
    assert_int_equal(s_acc(st, "unreachable"), 1);
    assert_int_equal(s_acc(st, "applied"), S_TENANTS - 1);
    for (int i = 0; i < S_TENANTS; i++)
        assert_int_equal(s_has_column(s, i, "flag"), i != bad);
    json_decref(st);
    free(bundle);
    s->passed = 1;
}

/* ---- adopting a fleet another tool migrated (issue 14) ---- */

static const char *const s_adopt[] = {
    "0001_accounts.sql",
    "-- flotilla:up\nCREATE TABLE accounts (id int PRIMARY KEY, email text);\n"
    "-- flotilla:down\nDROP TABLE accounts;\n",
    "0002_names.sql",
    "-- flotilla:up\nALTER TABLE accounts ADD COLUMN name text;\n"
    "-- flotilla:down\nALTER TABLE accounts DROP COLUMN name;\n",
    NULL};

/* The verdict of target i in a baseline's status, or "". */
static const char *
s_verdict(const json_t *st, const s_state *s, int i)
{
    const json_t *t = NULL;
    size_t k;

    json_array_foreach(json_object_get(st, "targets"), k, t)
        if (strcmp(json_string_value(json_object_get(t, "target")),
                   s->t[i].name) == 0)
            return json_string_value(json_object_get(t, "verdict"));
    return "";
}

/*
 * flotilla rollout baseline: every tenant golang-migrate migrated (its
 * schema_migrations table as golang-migrate creates it, each file run as
 * one query between the dirty and the clean version) records both
 * migrations without running them; a tenant whose ledger says 2 while
 * migration 2's column is missing, and one without golang-migrate's
 * table, are refused with the difference and get nothing; the agent of
 * shard 2 is stopped, its tenants unreachable.  Run again: already.
 * Then by version (--to 1, no tool's ledger): the tenant refused for
 * migration 2's missing column is baselined up to 1 (the version reaches
 * its agent), the one without migration 1's table is still refused (each
 * target is checked), the others have it already.
 */
static void
test_rollout_staged_baseline_adopts_the_fleet(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "adopt", s_adopt);
    json_t *st = NULL;
    const json_t *sum = NULL;

    for (int i = 0; i < S_TENANTS; i++) {
        if (s->t[i].shard == 2 || i == 4)
            continue;
        s_exec_on(s, i, "CREATE TABLE IF NOT EXISTS \"public\"."
                        "\"schema_migrations\" (version bigint not null"
                        " primary key, dirty boolean not null);"
                        "INSERT INTO schema_migrations VALUES (1, true)");
        s_exec_on(s, i, "CREATE TABLE accounts (id int PRIMARY KEY, email"
                        " text);");
        s_exec_on(s, i, "BEGIN; TRUNCATE schema_migrations; INSERT INTO"
                        " schema_migrations VALUES (1, false); COMMIT;"
                        "BEGIN; TRUNCATE schema_migrations; INSERT INTO"
                        " schema_migrations VALUES (2, true); COMMIT");
        if (i != 3)
            s_exec_on(s, i, "ALTER TABLE accounts ADD COLUMN name text;");
        s_exec_on(s, i, "BEGIN; TRUNCATE schema_migrations; INSERT INTO"
                        " schema_migrations VALUES (2, false); COMMIT");
    }
    s_stop_shard(s, 2);
    for (int run = 0; run < 2; run++) {
        const char *args[] = {"baseline", bundle, "--from", "golang-migrate",
                              "--selector", "", "--max-parallel-per-agent",
                              "4", NULL};
        const char *ok = run == 0 ? "baselined" : "already";

        st = s_rollout(s, 1, args);
        sum = json_object_get(st, "baseline");
        assert_int_equal(json_integer_value(json_object_get(sum, ok)),
                         S_TENANTS - S_PER_SHARD - 2);
        assert_int_equal(json_integer_value(json_object_get(sum, "refused")),
                         2);
        assert_int_equal(json_integer_value(json_object_get(sum,
                                                            "unreachable")),
                         S_PER_SHARD);
        for (int i = 0; i < S_TENANTS; i++) {
            const char *v = s_verdict(st, s, i);
            const char *want = s->t[i].shard == 2 ? "unreachable"
                               : i == 3 || i == 4 ? "refused"
                                                  : ok;
            if (strcmp(v, want) != 0)
                fail_msg("%s: verdict \"%s\", wanted \"%s\"", s->t[i].name,
                         v, want);
        }
        json_decref(st);
    }
    for (int i = 0; i < S_TENANTS; i++) {
        char *sql = NULL;
        long want = s->t[i].shard == 2 || i == 3 || i == 4 ? 0 : 2;
        if (!s_has_ledger(s, i)) {
            assert_int_equal(want, 0);
            continue;
        }
        sql = fl_asprintf("SELECT count(*) FROM flotilla.schema_migrations"
                          " WHERE status = 'applied' AND baseline_source ="
                          " 'golang-migrate' AND rollout_id <> ''");
        assert_int_equal(s_long(s, i, sql), want);
        free(sql);
        assert_int_equal(s_executed(s, i, 1) + s_executed(s, i, 2), 0);
    }
    {
        const char *args[] = {"baseline", bundle, "--to", "1", "--selector",
                              "", "--max-parallel-per-agent", "4", NULL};

        st = s_rollout(s, 1, args);
        assert_string_equal(json_string_value(json_object_get(st,
                                                              "to_version")),
                            "1");
        for (int i = 0; i < S_TENANTS; i++) {
            const char *v = s_verdict(st, s, i);
            const char *want = s->t[i].shard == 2 ? "unreachable"
                               : i == 3           ? "baselined"
                               : i == 4           ? "refused"
                                                  : "already";
            if (strcmp(v, want) != 0)
                fail_msg("--to 1: %s: verdict \"%s\", wanted \"%s\"",
                         s->t[i].name, v, want);
        }
        json_decref(st);
        assert_int_equal(s_long(s, 3, "SELECT count(*) FROM"
                                " flotilla.schema_migrations WHERE status ="
                                " 'applied' AND version = '1' AND"
                                " baseline_source = '--to'"), 1);
        assert_int_equal(s_long(s, 3, "SELECT count(*) FROM"
                                " flotilla.schema_migrations WHERE version"
                                " = '2'"), 0);
        assert_int_equal(s_executed(s, 3, 1) + s_executed(s, 3, 2), 0);
    }
    for (int i = 0; i < S_TENANTS; i++)
        if (s->t[i].shard != 2)
            s_exec_on(s, i, "SET client_min_messages = warning;"
                            "DROP TABLE IF EXISTS accounts,"
                            " schema_migrations");
    free(bundle);
    s->passed = 1;
}

/* A rollout of bundle to every tenant in one wave, to its end: its id. */
static char *
s_start_all(s_state *s, const char *bundle)
{
    const char *args[] = {"start", bundle, "--selector", "", "--waves",
                          "100%", "--watch", NULL};
    json_t *st = s_rollout(s, 0, args);
    char *id = fl_strdup(json_string_value(json_object_get(st, "id")));

    json_decref(st);
    return id;
}

/*
 * A rollout's rollback puts back what that rollout did, not what an
 * earlier rollout of the same bundle did.  Rollout A applies a bundle of
 * two migrations everywhere but on tenant P, whose data refuses the
 * second (P keeps the first); the data mended, rollout B of the same
 * bundle applies the second on P and finds everything else already
 * applied.  Rolling B back rolls back P's second migration alone: every
 * tenant keeps the first, the other 30 the second too, and B counts one
 * target rolled back.  (Before, B's rollback rolled the whole bundle
 * back on all 31 targets, A's work included, and counted 31.)  Then
 * rollout C applies P's second migration again, and A's rollback is
 * refused on P, naming the later rollout, while the other 30 roll back;
 * once C is rolled back, A's again finishes P, and every tenant has its
 * canonical dump from before A.
 */
static void
test_rollout_staged_rollback_undoes_its_own_rollout_only(void **state)
{
    s_state *s = *state;
    const char *const files[] = {
        "0001_add_flag.sql", S_ADD_FLAG,
        "0002_note_required.sql", s_not_null[1], NULL};
    char *bundle = s_bundle(s, "undo", files);
    char *dumps[S_TENANTS], *a = NULL, *b = NULL, *c = NULL;
    const int poisoned = 7;
    json_t *st = NULL;

    s_exec_on(s, poisoned, "UPDATE items SET note = NULL WHERE id = 3");
    for (int i = 0; i < S_TENANTS; i++)
        dumps[i] = s_dump(s, i);
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "100%", "--max-failures", "1",
                              "--watch", NULL};
        st = s_rollout(s, -1, args);
    }
    a = fl_strdup(json_string_value(json_object_get(st, "id")));
    assert_string_equal(s_st(st), "completed");
    assert_int_equal(s_acc(st, "failed"), 1);
    json_decref(st);
    s_expect_value(s, poisoned, "SELECT status FROM"
                   " flotilla.schema_migrations WHERE version = '1'",
                   "applied");
    s_exec_on(s, poisoned, "UPDATE items SET note = 'mended' WHERE id = 3");
    b = s_start_all(s, bundle);
    {
        const char *args[] = {"rollback", b, "--watch", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
    }
    assert_int_equal(s_acc(st, "rolled_back"), 1);
    json_decref(st);
    for (int i = 0; i < S_TENANTS; i++) {
        assert_true(s_has_column(s, i, "flag"));
        assert_int_equal(s_executed(s, i, 1), 1);
        s_expect_value(s, i, "SELECT status FROM flotilla.schema_migrations"
                       " WHERE version = '2'",
                       i == poisoned ? "rolled_back" : "applied");
        s_expect_value(s, i, "SELECT is_nullable FROM"
                       " information_schema.columns WHERE table_name ="
                       " 'items' AND column_name = 'note'",
                       i == poisoned ? "YES" : "NO");
    }
    /*
     * Rollout C applies P's second migration again; A's rollback, which
     * would take P's first from under it, is refused there (the other 30
     * roll back) until C's is done.
     */
    c = s_start_all(s, bundle);
    {
        const char *args[] = {"rollback", a, "--watch", NULL};
        const json_t *f = NULL;
        const char *why = NULL;

        st = s_rollout(s, 1, args);
        assert_string_equal(s_st(st), "rollback_failed");
        assert_int_equal(s_acc(st, "rolled_back"), S_TENANTS - 1);
        f = s_failure_of(st, "rollback", s->t[poisoned].name);
        why = f ? json_string_value(json_object_get(f, "reason")) : NULL;
        if (why == NULL || strstr(why, "by a later rollout") == NULL)
            fail_msg("%s: the rollback's failure does not name the later "
                     "rollout: %s", s->t[poisoned].name,
                     why ? why : "no failure");
        json_decref(st);
    }
    s_expect_value(s, poisoned, "SELECT string_agg(status, ',' ORDER BY"
                   " version) FROM flotilla.schema_migrations",
                   "applied,applied");
    {
        const char *args[] = {"rollback", c, "--watch", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
        assert_int_equal(s_acc(st, "rolled_back"), 1);
        json_decref(st);
    }
    {
        const char *args[] = {"rollback", a, "--watch", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
        assert_int_equal(s_acc(st, "rolled_back"), S_TENANTS);
        json_decref(st);
    }
    for (int i = 0; i < S_TENANTS; i++) {
        char *after = s_dump(s, i);
        if (strcmp(dumps[i], after) != 0)
            fail_msg("%s is not as it was before rollout A", s->t[i].name);
        free(after);
        free(dumps[i]);
    }
    free(a);
    free(b);
    free(c);
    free(bundle);
    s->passed = 1;
}

/*
 * The control database's connection cut at the worst moment: the
 * coordinator's k-th COMMIT (through tests/support/pgproxy.h, between
 * the coordinator and its control database) is carried out by the
 * server and never answered (or answered, then the connection cut).
 * The coordinator writes again on a new connection; the invariant is
 * that it neither writes a transaction twice nor takes one that
 * committed for failed: the rollout it is asked to start is started,
 * and said started, once, and runs to the end, every target applied
 * once; its fleet rollback, cut the same way, puts every target back as
 * it was (its canonical dump); and the control database holds both as a
 * restarted coordinator reads them: their status and accounting, and
 * each rollout event once.  A rollout makes about 150 COMMITs here and
 * its rollback about 100; the cut points are seeded:
 * FLOTILLA_CTLCUT_SEEDS (default 4) from FLOTILLA_CTLCUT_SEED (default
 * 1), seed 1 cutting the first COMMIT (the rollout's creation) of each;
 * a failing one prints its seed and cut.
 *
 * The same seed also fails a run of the coordinator's writes without
 * cutting anything: from its k-th statement on (any table but the
 * writer's count), 1 to 4 statements in a row fail as a lock timeout, a
 * cancelled statement, a standby that took the writes away or a lost
 * serialization race would fail them (a trigger raises the error's
 * SQLSTATE), each rolling back its whole transaction: the database
 * refuses nothing for good, so the coordinator must write all of it.
 */

/* SQLSTATEs of writes worth writing again as they are. */
static const char *const s_faults[] = {"55P03", "57014", "25006", "40001",
                                       "40P01"};

/* From the control database's write `from` on, width writes fail with
 * sqlstate (width 0: none). */
static void
s_ctl_fault(s_state *s, const char *sqlstate, long from, long width)
{
    PGconn *c = PQconnectdb(s->f.ctl.conninfo);
    static const char *const tables[] = {"agents", "targets", "bundles",
                                         "dispatches", "commands",
                                         "rollouts", "events"};
    char *sql = fl_asprintf(
        "SET client_min_messages = warning;"
        "DROP SCHEMA IF EXISTS fltest CASCADE; CREATE SCHEMA fltest;"
        "CREATE SEQUENCE fltest.writes;"
        "CREATE FUNCTION fltest.fault() RETURNS trigger LANGUAGE plpgsql"
        " AS $f$ DECLARE n bigint := nextval('fltest.writes'); BEGIN"
        " IF n >= %ld AND n < %ld THEN RAISE EXCEPTION 'injected %s at"
        " write %%', n USING ERRCODE = '%s'; END IF; RETURN NULL; END $f$",
        from, from + width, sqlstate, sqlstate);

    fl_test_exec(c, sql);
    free(sql);
    for (size_t i = 0; i < sizeof(tables) / sizeof(*tables); i++) {
        sql = fl_asprintf("CREATE TRIGGER fault BEFORE INSERT OR UPDATE ON"
                          " flotilla_control.%s FOR EACH STATEMENT EXECUTE"
                          " FUNCTION fltest.fault()", tables[i]);
        fl_test_exec(c, sql);
        free(sql);
    }
    PQfinish(c);
}

static void
s_ctl_fault_off(s_state *s)
{
    PGconn *c = PQconnectdb(s->f.ctl.conninfo);

    fl_test_exec(c, "SET client_min_messages = warning;"
                    "DROP SCHEMA IF EXISTS fltest CASCADE");
    PQfinish(c);
}

/* Restarts the coordinator with its control database at dsn (NULL: the
 * fleet's own) and waits until every tenant is reachable again. */
static void
s_coordinator_at(s_state *s, const char *dsn)
{
    fl_fleet_signal_coordinator(&s->f, SIGTERM);
    if (dsn != NULL)
        setenv("FLOTILLA_COORDINATOR_STATE_DSN", dsn, 1);
    fl_fleet_start_coordinator(&s->f);
    unsetenv("FLOTILLA_COORDINATOR_STATE_DSN");
    s_wait_reachable(s);
}

/* A number the control database holds. */
static long
s_ctl_long(s_state *s, const char *sql)
{
    PGconn *c = PQconnectdb(s->f.ctl.conninfo);
    char *v = fl_test_query_value(c, sql);
    long n = v ? strtol(v, NULL, 10) : -1;

    free(v);
    PQfinish(c);
    return n;
}

/*
 * Events of rollout id and of its rollback (each step of each target is
 * one, and so is each change of the rollout's state): how many (twice
 * 0), or how many the control database holds more than once (twice 1).
 */
static long
s_events(s_state *s, const char *id, int twice)
{
    char *sql = fl_asprintf(
        "SELECT count(*) FROM (SELECT 1 FROM flotilla_control.events"
        " WHERE dispatch_id IN (SELECT id FROM flotilla_control.rollouts"
        " WHERE id = '%s' UNION SELECT rollback_id FROM"
        " flotilla_control.rollouts WHERE id = '%s') GROUP BY %s) e", id,
        id, twice ? "kind, agent_key, target, dispatch_id, step, status,"
                    " message HAVING count(*) > 1"
                  : "id");
    long n = s_ctl_long(s, sql);

    free(sql);
    return n;
}

/* Waits until the coordinator has written nothing for 300 ms. */
static void
s_quiet(s_state *s, fl_test_proxy_t *px)
{
    int64_t deadline = fl_clock_ms() + (int64_t)(30000 *
                                                 fl_test_timeout_scale());
    int seen = -1;

    (void)s;
    fl_test_proxy_arm(px, "COMMIT", 1 << 30, 1);
    while (fl_test_proxy_count(px) != seen) {
        if (fl_clock_ms() > deadline)
            fail_msg("the coordinator kept writing for 30 s");
        seen = fl_test_proxy_count(px);
        fl_clock_sleep_ms(300);
    }
}

/* `flotilla rollout ARGS` with the proxy armed at cut; its JSON. */
static json_t *
s_cut_rollout(s_state *s, fl_test_proxy_t *px, const int *cut,
              const char *what, unsigned seed, const char *const *args)
{
    json_t *st = NULL;

    s_quiet(s, px);
    fl_test_proxy_arm(px, "COMMIT", cut[0], cut[1]);
    st = s_rollout(s, -1, args);
    fl_test_proxy_arm(px, "COMMIT", 0, 1);
    if (json_object_get(st, "id") == NULL) {
        char *text = json_dumps(st, JSON_INDENT(1));
        fail_msg("seed %u, %s cut at COMMIT %d (%s it was answered): no "
                 "rollout id:\n%s", seed, what, cut[0],
                 cut[1] ? "before" : "after", text);
    }
    return st;
}

static void
test_rollout_cuts_control_database_commit_lost(void **state)
{
    s_state *s = *state;
    fl_test_proxy_t *px = fl_test_proxy_start();
    char *dsn = fl_asprintf("%s %s", fl_test_proxy_conninfo(px),
                            s->f.ctl.conninfo);
    char *bundle = s_bundle(s, "ctlcut", s_add_column);
    unsigned first = 0;
    unsigned seeds = s_seeds("FLOTILLA_CTLCUT_SEED", "FLOTILLA_CTLCUT_SEEDS", 4, &first);

    for (unsigned seed = first; seed < first + seeds; seed++) {
        unsigned r = seed;
        int up[2], down[2];
        char *before[S_TENANTS], *id = NULL;
        json_t *st = NULL;

        const char *fault = NULL;
        long from = 0, width = 0;

        up[0] = seed == 1 ? 1 : 1 + (int)(rand_r(&r) % 160);
        up[1] = seed == 1 || rand_r(&r) % 4 != 0;
        down[0] = seed == 1 ? 1 : 1 + (int)(rand_r(&r) % 100);
        down[1] = seed == 1 || rand_r(&r) % 4 != 0;
        fault = s_faults[(seed - 1) % (sizeof(s_faults) /
                                       sizeof(*s_faults))];
        from = 1 + (long)(rand_r(&r) % 300);
        width = 1 + (long)(rand_r(&r) % 4);
        if (seed != first)
            s_reset(s);
        for (int i = 0; i < S_TENANTS; i++)
            before[i] = s_dump(s, i);
        fprintf(stderr, "seed %u: cuts at COMMIT %d and %d; %ld writes from "
                "write %ld fail with %s\n", seed, up[0], down[0], width,
                from, fault);
        s_ctl_fault(s, fault, from, width);
        s_coordinator_at(s, dsn);
        {
            const char *args[] = {"start", bundle, "--selector", "",
                                  "--waves", "tier=canary;10%;100%",
                                  "--max-parallel-per-agent", "3",
                                  "--watch", NULL};
            st = s_cut_rollout(s, px, up, "the rollout", seed, args);
        }
        id = fl_strdup(json_string_value(json_object_get(st, "id")));
        if (strcmp(s_st(st), "completed") != 0 ||
            s_acc(st, "applied") != S_TENANTS)
            fail_msg("seed %u, the rollout cut at COMMIT %d: %s, applied "
                     "%lld", seed, up[0], s_st(st), s_acc(st, "applied"));
        json_decref(st);
        for (int i = 0; i < S_TENANTS; i++)
            if (s_executed(s, i, 1) != 1)
                fail_msg("seed %u, the rollout cut at COMMIT %d: %s ran "
                         "version 1 %ld times", seed, up[0], s->t[i].name,
                         s_executed(s, i, 1));
        {
            const char *args[] = {"rollback", id, "--watch", NULL};
            st = s_cut_rollout(s, px, down, "its rollback", seed, args);
        }
        if (strcmp(s_st(st), "rolled_back") != 0 ||
            s_acc(st, "rolled_back") != S_TENANTS)
            fail_msg("seed %u, the rollback cut at COMMIT %d: %s, rolled "
                     "back %lld", seed, down[0], s_st(st),
                     s_acc(st, "rolled_back"));
        json_decref(st);
        for (int i = 0; i < S_TENANTS; i++) {
            char *after = s_dump(s, i);
            if (strcmp(before[i], after) != 0)
                fail_msg("seed %u (cuts at COMMIT %d and %d): %s is not as "
                         "it was before the rollout", seed, up[0], down[0],
                         s->t[i].name);
            free(after);
            free(before[i]);
        }
        /* What the control database holds, as a restart reads it. */
        s_ctl_fault_off(s);
        s_coordinator_at(s, NULL);
        st = s_status(s, id);
        assert_string_equal(s_st(st), "rolled_back");
        assert_int_equal(s_acc(st, "applied"), S_TENANTS);
        assert_int_equal(s_acc(st, "rolled_back"), S_TENANTS);
        json_decref(st);
        assert_true(s_events(s, id, 0) > 4 * S_TENANTS);
        if (s_events(s, id, 1) != 0)
            fail_msg("seed %u (cuts at COMMIT %d and %d): %ld events "
                     "written twice", seed, up[0], down[0],
                     s_events(s, id, 1));
        free(id);
    }
    fl_test_proxy_stop(&px);
    free(dsn);
    free(bundle);
    s->passed = 1;
}

/* Halts rollout id and waits until nothing of it is in flight. */
static void
s_halt_idle(s_state *s, const char *id)
{
    const char *args[] = {"halt", id, NULL};

    json_decref(s_rollout(s, 0, args));
    json_decref(s_wait(s, id, s_halted_and_idle, NULL,
                       "halted, nothing in flight"));
}

/* Ends the migrations held in pg_sleep(60) (their runs fail). */
static void
s_end_sleepers(s_state *s)
{
    for (int k = 0; k < 3; k++)
        free(fl_fleet_query(&s->f, k, "postgres",
                            "SELECT count(pg_terminate_backend(pid)) FROM"
                            " pg_stat_activity WHERE query LIKE"
                            " '%pg_sleep(60)%' AND pid <> pg_backend_pid()"));
}

/*
 * halt --abort whose halt the control database refuses: the coordinator
 * stops (a refused write), and must not have cancelled anything first:
 * restarted, the rollout is not halted, and a target its cancel had
 * failed would count against it for an abort that never was.  Three
 * migrations held in pg_sleep when the halt comes still run after the
 * coordinator has stopped.  Before, the cancels went out with the halt,
 * before its write.
 */
static void
test_rollout_cuts_a_refused_halt_cancels_nothing(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "heldr", s_held), *id = NULL;
    int cancelled[S_TENANTS], code = 0;

    id = s_start_three_held(s, bundle);
    s_ctl_fault(s, "23514", 1, 1000000);
    {
        const char *args[] = {"halt", id, "--abort", "--timeout", "5s",
                              NULL};
        json_decref(s_rollout(s, -1, args));
    }
    code = fl_fleet_wait_pid(s->f.coord_pid, 60);
    s->f.coord_pid = 0;
    assert_int_equal(code, 1);
    fl_clock_sleep_ms(1000);
    if (s_sleepers(s) != 3 || s_cancelled_runs(s, cancelled) != 0)
        fail_msg("after a halt --abort the control database refused, %ld "
                 "migrations still run (of 3) and %d were cancelled",
                 s_sleepers(s), s_cancelled_runs(s, cancelled));
    /* Put back: the sleepers ended, the rollout halted for the next. */
    s_end_sleepers(s);
    s_ctl_fault_off(s);
    s_hold_all(s, 0);
    fl_fleet_start_coordinator(&s->f);
    s_halt_idle(s, id);
    free(id);
    free(bundle);
    s->passed = 1;
}

/* Waits (30 s at most) until rollout id's status says halted or not. */
static void
s_wait_halted_is(s_state *s, const char *id, int want)
{
    int64_t deadline = fl_clock_ms() + (int64_t)(30000 *
                                                 fl_test_timeout_scale());

    for (;;) {
        json_t *st = s_status(s, id);
        int halted = json_is_true(json_object_get(st, "halted"));

        json_decref(st);
        if (halted == want)
            return;
        if (fl_clock_ms() > deadline)
            fail_msg("rollout %s was %shalted after 30 s", id,
                     halted ? "" : "not ");
        fl_clock_sleep_ms(50);
    }
}

/*
 * halt --abort, then resume before the halt is written (its write held
 * behind a lock on the rollouts table): the resume takes the halt back,
 * and the abort, carried out once the halt is written, must not cancel
 * the runs of a rollout no longer halted.  Before (770c298), the three
 * held migrations were cancelled after the resume.  Nor does an agent's
 * hello before the write: its runs are not cancelled either.
 */
static void
test_rollout_cuts_resume_before_the_halt_is_written_cancels_nothing(
    void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "heldq", s_held), *id = NULL;
    char *halt_out = fl_fleet_path(&s->f, "halt-abort.out");
    int cancelled[S_TENANTS];
    PGconn *ctl = PQconnectdb(s->f.ctl.conninfo);
    pid_t halt = 0;

    id = s_start_three_held(s, bundle);
    fl_test_exec(ctl, "BEGIN; LOCK TABLE flotilla_control.rollouts IN SHARE"
                      " MODE");
    {
        const char *argv[] = {"flotilla", "rollout", "halt", id, "--abort",
                              NULL};
        halt = fl_fleet_cli_spawn(&s->f, argv, halt_out);
    }
    /* The halt in force in the coordinator's memory, its write held:
     * resume it, and wait until the memory says so too. */
    s_wait_halted_is(s, id, 1);
    /*
     * An agent says hello meanwhile, holding runs (killed and restarted,
     * its runs carried out again from its journal): the abort, not
     * written, cancels none of them.  Before, the hello's runs were
     * cancelled at once.
     */
    {
        int k = s_kill_an_agent_of_sleepers(s);
        int64_t until = fl_clock_ms() + (int64_t)(60000 *
                                                  fl_test_timeout_scale());
        int online = fl_fleet_log_count(s->f.agents[k].log, "online with");

        fl_fleet_start_agent(&s->f, k);
        fl_fleet_wait_log_more(s->f.agents[k].log, "online with", online, 60);
        while (s_sleepers(s) < 3) {
            if (fl_clock_ms() > until)
                fail_msg("%ld migrations run (of 3) after the agent's "
                         "restart", s_sleepers(s));
            fl_clock_sleep_ms(50);
        }
        fl_clock_sleep_ms(1000);
        if (s_sleepers(s) != 3 || s_cancelled_runs(s, cancelled) != 0)
            fail_msg("an agent's hello while halt --abort is being written:"
                     " %ld migrations run (of 3), %d cancelled",
                     s_sleepers(s), s_cancelled_runs(s, cancelled));
    }
    {
        const char *argv[] = {"flotilla", "rollout", "resume", id, "--only",
                              "halt", NULL};
        char *resume_out = fl_fleet_path(&s->f, "resume.out");
        pid_t resume = fl_fleet_cli_spawn(&s->f, argv, resume_out);

        s_wait_halted_is(s, id, 0);
        /* Then the halt's write, and the resume's, in order. */
        fl_test_exec(ctl, "ROLLBACK");
        assert_int_equal(fl_fleet_wait_pid(halt, 60), 0);
        assert_int_equal(fl_fleet_wait_pid(resume, 60), 0);
        free(resume_out);
    }
    fl_clock_sleep_ms(1000);
    if (s_sleepers(s) != 3 || s_cancelled_runs(s, cancelled) != 0)
        fail_msg("after halt --abort and a resume before the halt was "
                 "written, %ld migrations still run (of 3) and %d were "
                 "cancelled", s_sleepers(s), s_cancelled_runs(s, cancelled));
    /* Put back: the sleepers ended, the rollout halted for the next. */
    s_end_sleepers(s);
    s_hold_all(s, 0);
    s_halt_idle(s, id);
    PQfinish(ctl);
    free(halt_out);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * halt --abort, then resume before the cancelled runs' outcomes are
 * written (held behind a lock on the commands table): those outcomes
 * land after the resume, which sent again only the cancelled runs whose
 * outcome it found written, none here.  Before, the three stayed
 * cancelled and the wave passed without them: the rollout completed
 * with three targets not applied (found by a read-only audit).  Now
 * they are sent again as they land, and every target ends applied.
 */
static void
test_rollout_cuts_resume_before_the_cancels_land_sends_them_again(
    void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "heldc", s_held), *id = NULL;
    char *resume_out = fl_fleet_path(&s->f, "resume-early.out");
    PGconn *ctl = PQconnectdb(s->f.ctl.conninfo);
    pid_t resume = 0;
    json_t *st = NULL;

    id = s_start_three_held(s, bundle);
    fl_test_exec(ctl, "BEGIN; LOCK TABLE flotilla_control.commands IN SHARE"
                      " MODE");
    {
        const char *args[] = {"halt", id, "--abort", NULL};
        json_decref(s_rollout(s, 0, args));
    }
    /* Cancelled on their servers; their outcomes wait for the lock. */
    while (s_sleepers(s) > 0)
        fl_clock_sleep_ms(50);
    fl_clock_sleep_ms(500);
    {
        const char *argv[] = {"flotilla", "rollout", "resume", id, "--only",
                              "halt", NULL};
        resume = fl_fleet_cli_spawn(&s->f, argv, resume_out);
    }
    s_wait_halted_is(s, id, 0);
    s_hold_all(s, 0);
    fl_test_exec(ctl, "ROLLBACK");
    PQfinish(ctl);
    assert_int_equal(fl_fleet_wait_pid(resume, 60), 0);
    {
        const char *args[] = {"watch", id, NULL};
        st = s_rollout(s, 0, args);
    }
    if (s_acc(st, "applied") != S_TENANTS)
        fail_msg("the rollout %s with %lld of %d targets applied (%lld "
                 "cancelled)", s_st(st), (long long)s_acc(st, "applied"),
                 S_TENANTS, (long long)s_acc(st, "cancelled"));
    json_decref(st);
    for (int i = 0; i < S_TENANTS; i++)
        s_expect_value(s, i, "SELECT status FROM flotilla.schema_migrations"
                       " WHERE version = '1'", "applied");
    free(resume_out);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * A target_timeout failure survives a coordinator killed before it is
 * written.  The canary held, its failure decided at 4 s but held (a lock
 * on the commands table), the coordinator killed with kill -9 and
 * restarted: the rollout halts with the canary failed, nothing else
 * touched (the restarted coordinator counts the timeout from its start,
 * and the agent is back well within 4 s).  Before, the cancel went out
 * with the decision, the agent answered "cancelled", and after the
 * restart that answer was recorded for the run: a cancelled run is no
 * failure, so the canary's wave passed and the next one applied every
 * other target (found by a read-only audit).  The cancel now goes out
 * once the failure is written.
 */
static void
test_rollout_cuts_a_timeout_is_written_before_its_cancel(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "timeoutk", s_held), *id = NULL;
    PGconn *ctl = PQconnectdb(s->f.ctl.conninfo);
    json_t *st = NULL;

    s_exec_on(s, 0, "UPDATE items SET note = 'hold' WHERE id = 1");
    {
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;100%",
                              "--target-timeout", "4s", NULL};
        id = s_start_bg(s, args);
    }
    while (s_sleepers(s) == 0)
        fl_clock_sleep_ms(50);
    fl_test_exec(ctl, "BEGIN; LOCK TABLE flotilla_control.commands IN"
                      " EXCLUSIVE MODE");
    fl_clock_sleep_ms(6000); /* past the timeout: decided, not written */
    fl_fleet_signal_coordinator(&s->f, SIGKILL);
    fl_test_exec(ctl, "ROLLBACK");
    PQfinish(ctl);
    fl_fleet_start_coordinator(&s->f);
    st = s_wait(s, id, s_halted_and_idle, NULL, "halted, nothing running");
    assert_int_equal(s_acc(st, "failed"), 1);
    assert_int_equal(s_acc(st, "applied"), 0);
    if (!s_failure_says(st, s->t[0].name, "target_timeout (4s)"))
        fail_msg("no failure names %s's target_timeout: %s", s->t[0].name,
                 json_dumps(st, JSON_INDENT(1)));
    json_decref(st);
    s_wait_no_sleepers(s);
    for (int i = 1; i < S_TENANTS; i++)
        if (s_has_ledger(s, i))
            fail_msg("%s was touched after the canary timed out",
                     s->t[i].name);
    s_hold_all(s, 0);
    free(id);
    free(bundle);
    s->passed = 1;
}

/*
 * A write the control database refuses for good (here a CHECK
 * violation, raised by a trigger at the coordinator's k-th write, and
 * again for up to two more) during a rollout: the coordinator cannot
 * record what it has already decided in memory (a wave released, results
 * acknowledged), so it stops (exit 1, saying why) rather than write what
 * comes after the refused write, or the rest of its transaction alone;
 * restarted with the database fixed, it goes on from what the database
 * holds.  The invariant: a rollout its operator was told started runs to
 * the end, every target applied once (one told nothing may exist or not,
 * and then every target ran the migration once or not at all; seed 1
 * refuses the rollout's creation, the first write).  Before,
 * each job of the refused transaction was written again alone: the
 * coordinator ran on with the release of a wave, or its commands, never
 * written.  Seeds: FLOTILLA_REFUSED_SEEDS (default 2) from
 * FLOTILLA_REFUSED_SEED (default 1).
 */
static void
test_rollout_cuts_a_refused_write_stops_the_coordinator(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "refused", s_add_column);
    unsigned first = 0;
    unsigned seeds = s_seeds("FLOTILLA_REFUSED_SEED",
                             "FLOTILLA_REFUSED_SEEDS", 2, &first);

    for (unsigned seed = first; seed < first + seeds; seed++) {
        unsigned r = seed;
        long from = seed == 1 ? 1 : 1 + (long)(rand_r(&r) % 120);
        long width = 1 + (long)(rand_r(&r) % 3);
        const char *args[] = {"start", bundle, "--selector", "",
                              "--waves", "tier=canary;10%;100%", NULL};
        json_t *st = NULL, *list = NULL;
        char *id = NULL;
        int code = 0;

        if (seed != first)
            s_reset(s);
        fprintf(stderr, "seed %u: %ld writes from write %ld refused\n", seed,
                width, from);
        s_ctl_fault(s, "23514", from, width);
        st = s_rollout(s, -1, args);
        if (json_string_value(json_object_get(st, "id")) != NULL)
            id = fl_strdup(json_string_value(json_object_get(st, "id")));
        json_decref(st);
        fprintf(stderr, "seed %u: the rollout %s%s\n", seed,
                id ? "started: " : "was refused", id ? id : "");
        code = fl_fleet_wait_pid(s->f.coord_pid, 60);
        s->f.coord_pid = 0;
        if (code != 1 ||
            fl_fleet_log_count(s->f.coord_log, "the control database "
                               "refused a write") == 0)
            fail_msg("seed %u: the coordinator, a write refused, exited "
                     "%d (see %s)", seed, code, s->f.coord_log);
        s_ctl_fault_off(s);
        fl_fleet_start_coordinator(&s->f);
        s_wait_reachable(s);
        /* Every rollout the database holds goes to its end. */
        {
            const char *largs[] = {"list", NULL};
            size_t i = 0;
            json_t *row = NULL;
            int found = 0;

            list = s_rollout(s, 0, largs);
            json_array_foreach(list, i, row) {
                const char *rid = json_string_value(json_object_get(row,
                                                                    "id"));
                const char *wargs[] = {"watch", rid, NULL};
                json_t *w = NULL;

                if (strcmp(json_string_value(json_object_get(row,
                           "status")), "running") != 0 &&
                    (id == NULL || strcmp(rid, id) != 0))
                    continue;
                w = s_rollout(s, -1, wargs);
                if (strcmp(s_st(w), "completed") != 0 ||
                    s_acc(w, "applied") != S_TENANTS)
                    fail_msg("seed %u: rollout %s after the restart: %s, "
                             "applied %lld", seed, rid, s_st(w),
                             s_acc(w, "applied"));
                json_decref(w);
                found |= id != NULL && strcmp(rid, id) == 0;
            }
            if (id != NULL && !found)
                fail_msg("seed %u: rollout %s, said started, is not in the "
                         "control database", seed, id);
            json_decref(list);
        }
        for (int i = 0; i < S_TENANTS; i++) {
            long n = s_executed(s, i, 1);
            if (n > 1 || (id != NULL && n != 1))
                fail_msg("seed %u: %s ran version 1 %ld times", seed,
                         s->t[i].name, n);
        }
        free(id);
    }
    free(bundle);
    s->passed = 1;
}

/*
 * The connection between an agent and its PostgreSQL server cut at the
 * worst moment: shard 0's agent reaches its server through the proxy,
 * which cuts every connection at its k-th round trip (a ReadyForQuery:
 * any statement of discovery, a ledger read, the pipeline, the in-doubt
 * COMMIT's settling), before or after the agent hears the answer, while
 * a rollout runs over the 31 tenants (its budget allows every failure).
 * The invariant, read from the ledgers and from fx, where the up and
 * the down each write a row: no target runs the migration twice; a
 * target the rollout counts applied has it applied, and one it
 * counts failed says so in its failure when its ledger has it applied
 * anyway (its COMMIT's answer lost); a second rollout of the bundle
 * finishes the work; rolling back each rollout then rolls back exactly
 * the targets it migrated, and every tenant's canonical dump is as
 * before.  Seeds: FLOTILLA_AGENTCUT_SEEDS (default 3) from
 * FLOTILLA_AGENTCUT_SEED (default 1); a failing one prints its cut.
 */

/* Restarts agent k with its server at server (NULL: the shard). */
static void
s_agent_at(s_state *s, int k, const char *server)
{
    fl_fleet_signal_agent(&s->f, k, SIGTERM);
    if (server != NULL)
        setenv("FLOTILLA_AGENT_SERVER", server, 1);
    fl_fleet_start_agent(&s->f, k);
    unsetenv("FLOTILLA_AGENT_SERVER");
    s_wait_reachable(s);
}

static void
test_rollout_cuts_agent_server_round_trip_lost(void **state)
{
    s_state *s = *state;
    fl_test_proxy_t *px = fl_fleet_proxy_to_shard(&s->f, 0);
    char *server = fl_asprintf("%s %s dbname=postgres", s->f.shards[0],
                               fl_test_proxy_conninfo(px));
    /* Each up and down says it ran in fx (the ledger's log rows written
     * after a COMMIT are lost with the connection: docs/pipeline.md). */
    const char *const files[] = {
        "0001_add_flag.sql",
        "-- flotilla:options allow=require-concurrent-index-creation 20 "
        "rows\n"
        "-- flotilla:options allow=require-concurrent-index-deletion 20 "
        "rows\n"
        "-- flotilla:up\n"
        "ALTER TABLE items ADD COLUMN flag int NOT NULL DEFAULT 7;\n"
        "CREATE INDEX items_flag ON items (flag);\n"
        "UPDATE items SET v = v + 1;\n"
        "INSERT INTO fx VALUES ('up');\n"
        "-- flotilla:down\n"
        "DROP INDEX items_flag;\n"
        "ALTER TABLE items DROP COLUMN flag;\n"
        "INSERT INTO fx VALUES ('down');\n",
        NULL};
    char *bundle = s_bundle(s, "agentcut", files);
    unsigned first = 0;
    unsigned seeds = s_seeds("FLOTILLA_AGENTCUT_SEED", "FLOTILLA_AGENTCUT_SEEDS", 3, &first);

    s_agent_at(s, 0, server);
    for (unsigned seed = first; seed < first + seeds; seed++) {
        unsigned r = seed;
        int k = 1 + (int)(rand_r(&r) % 1100);
        int before = rand_r(&r) % 4 != 0, failed = 0;
        long rolled_back = 0;
        char *dumps[S_TENANTS], *id[2] = {NULL, NULL};
        json_t *st = NULL;

        if (seed != first)
            s_reset(s);
        for (int i = 0; i < S_TENANTS; i++) {
            s_exec_on(s, i, "CREATE TABLE fx (v text)");
            dumps[i] = s_dump(s, i);
        }
        fl_test_proxy_arm(px, "", k, before);
        {
            const char *args[] = {"start", bundle, "--selector", "",
                                  "--waves", "tier=canary;100%",
                                  "--max-failures", "100%",
                                  "--max-parallel-per-agent", "3",
                                  "--watch", NULL};
            st = s_rollout(s, -1, args);
        }
        fl_test_proxy_arm(px, "", 0, 1);
        id[0] = fl_strdup(json_string_value(json_object_get(st, "id")));
        if (strcmp(s_st(st), "completed") != 0) {
            char *text = json_dumps(st, JSON_INDENT(1));
            fail_msg("seed %u (round trip %d cut %s its answer): the "
                     "rollout did not complete:\n%s", seed, k,
                     before ? "before" : "after", text);
        }
        for (int i = 0; i < S_TENANTS; i++) {
            const json_t *f = s_failure_of(st, "apply", s->t[i].name);
            char *v = s_status_of(s, i, 1);
            int applied = v != NULL && strcmp(v, "applied") == 0;
            const char *why = NULL;

            if (s_long(s, i, "SELECT count(*) FROM fx") > 1)
                fail_msg("seed %u (round trip %d cut %s its answer): %s "
                         "ran version 1 %ld times", seed, k,
                         before ? "before" : "after", s->t[i].name,
                         s_long(s, i, "SELECT count(*) FROM fx"));
            if (f != NULL) {
                const char *detail = json_string_value(json_object_get(
                    f, "detail"));
                failed++;
                why = json_string_value(json_object_get(f, "reason"));
                if (applied && (why == NULL || !strstr(why, "applied")) &&
                    (detail == NULL || !strstr(detail, "applied")))
                    fail_msg("seed %u (round trip %d cut %s its answer): %s "
                             "counted failed (%s; %s), its ledger says "
                             "applied", seed, k, before ? "before" : "after",
                             s->t[i].name, why ? why : "no reason",
                             detail ? detail : "no detail");
            } else if (!applied) {
                fail_msg("seed %u (round trip %d cut %s its answer): %s "
                         "counted applied, its ledger says %s", seed, k,
                         before ? "before" : "after", s->t[i].name,
                         v ? v : "nothing");
            }
            free(v);
        }
        assert_int_equal(s_acc(st, "applied") + failed, S_TENANTS);
        json_decref(st);
        s_wait_reachable(s);
        id[1] = s_start_all(s, bundle);
        for (int i = 0; i < S_TENANTS; i++)
            if (s_long(s, i, "SELECT count(*) FROM fx WHERE v = 'up'") != 1)
                fail_msg("seed %u (round trip %d cut %s its answer): after "
                         "a second rollout %s ran version 1 %ld times",
                         seed, k, before ? "before" : "after", s->t[i].name,
                         s_long(s, i, "SELECT count(*) FROM fx"));
        /* Each rollback takes back what its own rollout applied. */
        for (int j = 1; j >= 0; j--) {
            const char *args[] = {"rollback", id[j], "--watch", NULL};
            st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
            rolled_back += s_acc(st, "rolled_back");
            json_decref(st);
        }
        if (rolled_back != S_TENANTS)
            fail_msg("seed %u (round trip %d cut %s its answer): the two "
                     "rollbacks rolled back %ld targets, not %d", seed, k,
                     before ? "before" : "after", rolled_back, S_TENANTS);
        for (int i = 0; i < S_TENANTS; i++) {
            char *after = NULL;

            if (s_long(s, i, "SELECT count(*) FILTER (WHERE v = 'down')"
                       " * 10 + count(*) FROM fx") != 12)
                fail_msg("seed %u (round trip %d cut %s its answer): %s ran "
                         "its up and down not once each", seed, k,
                         before ? "before" : "after", s->t[i].name);
            s_exec_on(s, i, "DELETE FROM fx");
            after = s_dump(s, i);
            if (strcmp(dumps[i], after) != 0)
                fail_msg("seed %u (round trip %d cut %s its answer): %s is "
                         "not as it was before the rollouts", seed, k,
                         before ? "before" : "after", s->t[i].name);
            free(after);
            free(dumps[i]);
        }
        free(id[0]);
        free(id[1]);
    }
    s_agent_at(s, 0, NULL);
    fl_test_proxy_stop(&px);
    free(server);
    free(bundle);
    s->passed = 1;
}

/*
 * A ledger read an agent began before a command, answered after it, is
 * not the target's state.  The canary's ledger holds six migrations
 * (rollout A); the agent is asked to read every ledger (SIGHUP) and the
 * proxy holds the answer to the canary's read (its "SELECT 6"); while it
 * is held, rollout B applies migration 7 on the canary.  Released, the
 * read says six rows: taken as the state, it made the coordinator count
 * the canary untouched by B (its result said applied, the newer state
 * did not), and B's rollback rolled back nothing, leaving migration 7
 * applied, until the next read of the ledger.  The agent drops a read a
 * command overtook (and says so); B's rollback rolls the canary back.
 */
static void
test_rollout_cuts_a_ledger_read_from_before_a_command(void **state)
{
    s_state *s = *state;
    fl_test_proxy_t *px = fl_fleet_proxy_to_shard(&s->f, 0);
    char *server = fl_asprintf("%s %s dbname=postgres", s->f.shards[0],
                               fl_test_proxy_conninfo(px));
    char **files[2] = {fl_fleet_table_migrations(6),
                       fl_fleet_table_migrations(7)};
    char *bundle[2], *id[2], *v = NULL;
    const char *canary = s->t[0].name;
    int64_t deadline = 0;
    json_t *st = NULL;

    bundle[0] = s_bundle(s, "six", (const char *const *)files[0]);
    bundle[1] = s_bundle(s, "seven", (const char *const *)files[1]);
    s_agent_at(s, 0, server);
    for (int j = 0; j < 2; j++) {
        const char *args[] = {"start", bundle[j], "--selector",
                              "tier=canary", "--waves", "100%", "--watch",
                              NULL};
        if (j == 1) {
            /* The canary's ledger read, held once the server answered. */
            fl_test_proxy_hold(px, "SELECT 6", 1);
            fl_fleet_signal_agent(&s->f, 0, SIGHUP);
            deadline = fl_clock_ms() +
                       (int64_t)(30000 * fl_test_timeout_scale());
            while (!fl_test_proxy_cut(px)) {
                if (fl_clock_ms() > deadline)
                    fail_msg("the agent did not read the canary's ledger "
                             "within 30 s of a SIGHUP");
                fl_clock_sleep_ms(20);
            }
        }
        st = s_rollout(s, 0, args);
        id[j] = fl_strdup(json_string_value(json_object_get(st, "id")));
        assert_int_equal(s_acc(st, "applied"), 1);
        json_decref(st);
    }
    v = s_status_of(s, 0, 7);
    assert_non_null(v);
    assert_string_equal(v, "applied");
    free(v);
    fl_test_proxy_release(px);
    /* The stale read comes back: dropped (logged), or taken. */
    deadline = fl_clock_ms() + (int64_t)(30000 * fl_test_timeout_scale());
    while (fl_fleet_log_count(s->f.agents[0].log, "a command overtook") ==
           0) {
        json_t *rows = fl_fleet_json(&s->f, "targets", NULL);
        const char *applied = json_string_value(json_object_get(
            fl_fleet_row(rows, "target", canary), "applied_version"));

        if (applied != NULL && strcmp(applied, "6") == 0)
            fail_msg("the coordinator took the canary's ledger read from "
                     "before rollout B as its state (applied version 6): "
                     "B's rollback would skip it");
        json_decref(rows);
        if (fl_clock_ms() > deadline)
            fail_msg("the agent never answered the held ledger read");
        fl_clock_sleep_ms(100);
    }
    {
        const char *args[] = {"rollback", id[1], "--watch", NULL};
        st = s_rollout(s, S_EXIT_ROLLED_BACK, args);
        assert_int_equal(s_acc(st, "rolled_back"), 1);
        json_decref(st);
    }
    v = s_status_of(s, 0, 7);
    if (v == NULL || strcmp(v, "rolled_back") != 0)
        fail_msg("rollout B's rollback left the canary's migration 7 %s",
                 v ? v : "without a ledger row");
    free(v);
    assert_int_equal(s_long(s, 0, "SELECT count(*) FROM pg_class WHERE "
                                  "relname IN ('m6', 'm7')"), 1);
    s_agent_at(s, 0, NULL);
    fl_test_proxy_stop(&px);
    for (int j = 0; j < 2; j++) {
        fl_fleet_files_free(files[j]);
        free(bundle[j]);
        free(id[j]);
    }
    free(server);
    s->passed = 1;
}

/*
 * kill -9 anywhere (DESIGN.md's fourth guarantee: killing an agent or
 * the coordinator at any point loses no state and applies nothing
 * twice), seeded: while a rollout runs, and then while its rollback
 * runs, three times each a seeded process (the coordinator or one of
 * the three agents) is killed with kill -9 after a seeded pause (up to
 * 800 ms each: the rollout and its rollback take a few seconds) and
 * started again at once.  The invariants, read from the ledgers, the
 * catalogs and fx, where the up and the down each write a row: no
 * target runs the up twice; the up's column is there exactly where the
 * ledger says applied; every target the rollout counts applied is; a
 * second rollout of the bundle finishes the rest; the two rollbacks
 * (each run again while it ends rollback_failed, as an operator would)
 * roll back 31 targets between them, each down once, and leave every
 * tenant's canonical dump as before.  Seeds: FLOTILLA_KILL_SEEDS
 * (default 2) from FLOTILLA_KILL_SEED (default 1); a failing one prints
 * its seed and kills.
 */

static const char *const s_kill_files[] = {
    "0001_add_flag.sql",
    "-- flotilla:up\n"
    "ALTER TABLE items ADD COLUMN flag int NOT NULL DEFAULT 7;\n"
    "UPDATE items SET v = v + 1;\n"
    "SELECT pg_sleep(0.2);\n"
    "INSERT INTO fx VALUES ('up');\n"
    "-- flotilla:down\n"
    "ALTER TABLE items DROP COLUMN flag;\n"
    "UPDATE items SET v = v - 1;\n"
    "SELECT pg_sleep(0.15);\n"
    "INSERT INTO fx VALUES ('down');\n",
    NULL};

/* Three seeded kill -9s and restarts; what they were goes to done. */
static void
s_kill_three(s_state *s, unsigned *r, fl_buf_t *done)
{
    for (int n = 0; n < 3; n++) {
        int pause = (int)(rand_r(r) % 800);
        int who = (int)(rand_r(r) % 4); /* 0: the coordinator */

        fl_clock_sleep_ms(pause);
        if (who == 0) {
            fl_fleet_signal_coordinator(&s->f, SIGKILL);
            fl_fleet_start_coordinator(&s->f);
            fl_buf_addf(done, " coordinator after %d ms;", pause);
        } else {
            fl_fleet_signal_agent(&s->f, who - 1, SIGKILL);
            fl_fleet_start_agent(&s->f, who - 1);
            fl_buf_addf(done, " shard-%d's agent after %d ms;", who - 1,
                        pause);
        }
    }
}

/* Watches rollout id to its end; runs its rollback again while it ends
 * rollback_failed (at most three times).  Returns the final state. */
static json_t *
s_watch_killed(s_state *s, const char *id, int rollback)
{
    const char *watch[] = {"watch", id, NULL};
    const char *again[] = {"rollback", id, "--watch", NULL};
    json_t *st = s_rollout(s, -1, watch);

    for (int n = 0; rollback && n < 3 &&
                    strcmp(s_st(st), "rollback_failed") == 0; n++) {
        json_decref(st);
        s_wait_reachable(s);
        st = s_rollout(s, -1, again);
    }
    return st;
}

static void
test_rollout_kills_anywhere_in_a_rollout_and_its_rollback(void **state)
{
    s_state *s = *state;
    char *bundle = s_bundle(s, "kill9", s_kill_files);
    unsigned first = 0;
    unsigned seeds = s_seeds("FLOTILLA_KILL_SEED", "FLOTILLA_KILL_SEEDS", 2, &first);

    for (unsigned seed = first; seed < first + seeds; seed++) {
        unsigned r = seed;
        char *dumps[S_TENANTS], *id[2] = {NULL, NULL};
        fl_buf_t done = FL_BUF_INIT(0);
        json_t *st = NULL;
        long rolled_back = 0;
        int failed = 0;

        if (seed != first)
            s_reset(s);
        for (int i = 0; i < S_TENANTS; i++) {
            s_exec_on(s, i, "CREATE TABLE fx (v text)");
            dumps[i] = s_dump(s, i);
        }
        {
            const char *args[] = {"start", bundle, "--selector", "",
                                  "--waves", "tier=canary;10%;100%",
                                  "--max-failures", "100%",
                                  "--max-parallel-per-agent", "2", NULL};
            id[0] = s_start_bg(s, args);
        }
        fl_buf_addf(&done, "rollout:");
        s_kill_three(s, &r, &done);
        st = s_watch_killed(s, id[0], 0);
        if (strcmp(s_st(st), "completed") != 0) {
            char *text = json_dumps(st, JSON_INDENT(1));
            fail_msg("seed %u (%s): the rollout did not complete:\n%s",
                     seed, fl_buf_str(&done), text);
        }
        for (int i = 0; i < S_TENANTS; i++) {
            char *v = s_status_of(s, i, 1);
            int applied = v != NULL && strcmp(v, "applied") == 0;
            long ups = s_long(s, i, "SELECT count(*) FROM fx");

            if (ups > 1 || applied != (ups == 1) ||
                applied != s_has_column(s, i, "flag"))
                fail_msg("seed %u (%s): %s ran its up %ld times, its "
                         "ledger says %s, its column is %s", seed,
                         fl_buf_str(&done), s->t[i].name, ups,
                         v ? v : "nothing",
                         s_has_column(s, i, "flag") ? "there" : "not there");
            if (s_failure_of(st, "apply", s->t[i].name) != NULL)
                failed++;
            else if (!applied)
                fail_msg("seed %u (%s): %s counted applied, its ledger "
                         "says %s", seed, fl_buf_str(&done), s->t[i].name,
                         v ? v : "nothing");
            free(v);
        }
        if (s_acc(st, "applied") + failed != S_TENANTS)
            fail_msg("seed %u (%s): applied %lld and %d failed of %d", seed,
                     fl_buf_str(&done), s_acc(st, "applied"), failed,
                     S_TENANTS);
        json_decref(st);
        s_wait_reachable(s);
        id[1] = s_start_all(s, bundle);
        for (int i = 0; i < S_TENANTS; i++)
            if (s_long(s, i, "SELECT count(*) FROM fx") != 1)
                fail_msg("seed %u (%s): after a second rollout %s ran its "
                         "up %ld times", seed, fl_buf_str(&done),
                         s->t[i].name, s_long(s, i, "SELECT count(*) FROM fx"));
        /* Newest first; the first rollout's, which has the most to do,
         * killed three times. */
        for (int j = 1; j >= 0; j--) {
            const char *args[] = {"rollback", id[j], NULL};
            json_decref(s_rollout(s, 0, args));
            if (j == 0) {
                fl_buf_addf(&done, " its rollback:");
                s_kill_three(s, &r, &done);
            }
            st = s_watch_killed(s, id[j], 1);
            if (strcmp(s_st(st), "rolled_back") != 0) {
                char *text = json_dumps(st, JSON_INDENT(1));
                fail_msg("seed %u (%s): rollback %d did not end rolled "
                         "back:\n%s", seed, fl_buf_str(&done), j + 1, text);
            }
            rolled_back += s_acc(st, "rolled_back");
            json_decref(st);
            s_wait_reachable(s);
        }
        for (int i = 0; i < S_TENANTS; i++) {
            char *after = NULL;

            if (s_long(s, i, "SELECT count(*) FILTER (WHERE v = 'down')"
                       " * 10 + count(*) FROM fx") != 12)
                fail_msg("seed %u (%s): %s ran its up and down not once "
                         "each", seed, fl_buf_str(&done), s->t[i].name);
            s_exec_on(s, i, "DELETE FROM fx");
            after = s_dump(s, i);
            if (strcmp(dumps[i], after) != 0)
                fail_msg("seed %u (%s): %s is not as it was before the "
                         "rollouts", seed, fl_buf_str(&done), s->t[i].name);
            free(after);
            free(dumps[i]);
        }
        /* Every target put back, once: so many counted. */
        if (rolled_back != S_TENANTS) {
            for (int j = 0; j < 2; j++) {
                char *text = NULL;
                st = s_status(s, id[j]);
                text = json_dumps(json_object_get(st, "accounting"), 0);
                print_message("rollout %d: %s\n", j + 1, text);
                free(text);
                text = json_dumps(json_object_get(st, "failures"), 0);
                print_message("failures %d: %s\n", j + 1, text);
                free(text);
                json_decref(st);
            }
            fail_msg("seed %u (%s): the two rollbacks rolled back %ld "
                     "targets, not %d", seed, fl_buf_str(&done), rolled_back,
                     S_TENANTS);
        }
        fl_buf_release(&done);
        free(id[0]);
        free(id[1]);
    }
    free(bundle);
    s->passed = 1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_four_apply_every_target_once, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_failed_canary_halts_nothing_else_touched,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_budget_exceeded_halts_equalled_continues,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_on_failure_restores_every_touched_target,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_gate_mid_wave_restart_and_resume, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_abort_cancels_in_flight, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_abort_reaches_an_agent_down_at_the_halt,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_a_command_sent_before_a_halt_finishes_and_counts,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_a_rerun_runs_the_repeatables_left_undone,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_abort_after_a_migration_committed_is_a_failure,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_target_timeout_fails_and_cancels, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_a_cancel_outlives_its_agent, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_a_cancelled_rerun_after_a_commit_fails,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_target_timeout_then_the_target_finished,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_target_timeout_still_running_is_rolled_back,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_abort_of_a_part_applied_run_is_a_failure,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_coordinator_kill9_mid_wave_once, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_agent_kill9_never_half_applied, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_agent_sigterm_fails_nothing, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_a_target_gone_after_a_restart_is_failed,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_coordinator_kill9_mid_rollback_once, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_a_rollback_halted_is_paused_and_says_so,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_agent_kill9_mid_rollback_once, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_a_plain_halt_after_an_abort_cancels_nothing,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_abort_of_a_rollback_then_resume_goes_on,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_rollback_abort_restart_resume_rolls_back_all,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_stops_failures_while_halted_still_roll_back,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_plan_not_proven_past_no_transaction, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_watch_bars_on_a_terminal_lines_when_piped,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_watch_piped_prints_each_failure_once,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_per_server_cap_keyed_by_server_label,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_plan_changes_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_what_was_sent_is_recorded_released, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_unreachable_fails_unless_skipped, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_unreachable_beyond_the_budget_stops_the_wave,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_unreachable_in_a_batch_stops_the_wave,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_baseline_adopts_the_fleet, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_rollback_stops_at_a_half_applied_target,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_rollback_undoes_its_own_rollout_only,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_staged_a_ledger_read_error_is_unreachable,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_cuts_control_database_commit_lost, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_cuts_a_refused_write_stops_the_coordinator, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_cuts_a_refused_halt_cancels_nothing, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_cuts_resume_before_the_halt_is_written_cancels_nothing,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_cuts_resume_before_the_cancels_land_sends_them_again,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_cuts_a_timeout_is_written_before_its_cancel,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_cuts_agent_server_round_trip_lost, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_cuts_a_ledger_read_from_before_a_command, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollout_kills_anywhere_in_a_rollout_and_its_rollback,
            s_setup, s_teardown),
    };

    /* ctest runs the tests in groups, in parallel (rollout.cmake). */
    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("rollout", tests, s_group_setup,
                                       s_group_teardown);
}
