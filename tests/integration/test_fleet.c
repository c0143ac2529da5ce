/*
 * Integration tests of the fleet (issue 11): the real flotilla-coordinator
 * and flotilla-agent binaries on loopback, three agents each beside its
 * own PostgreSQL server (the shards tests/run.sh starts), the control
 * database on the main server, and every claim checked in the targets'
 * ledgers (flotilla.schema_migrations, flotilla.migration_logs) and the
 * control database, not in what the processes say.
 *
 * "Exactly once" is read from migration_logs: a migration's execute step
 * logs "ok" once per run that applied it, so a count of 1 per migration
 * and target means it ran once, whatever crashed in between.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <errno.h>

#include <cmocka.h>
#include <zmq.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/file.h"
#include "fleetsupport.h"
#include "proto/transport.h"
#include "proto/wire.h"

typedef struct {
    fl_fleet_t f;
    int passed;
    char p[32]; /* prefix of this test's database names */
} s_state;

static int
s_setup(void **state)
{
    s_state *s = fl_calloc(1, sizeof(*s));

    snprintf(s->p, sizeof(s->p), "ft%ld", (long)getpid());
    *state = s;
    return 0;
}

static int
s_teardown(void **state)
{
    s_state *s = *state;

    if (!s->passed && s->f.dir != NULL)
        setenv("FLOTILLA_KEEP_FLEET", "1", 1);
    if (s->f.dir != NULL)
        fl_fleet_close(&s->f);
    unsetenv("FLOTILLA_KEEP_FLEET");
    free(s);
    return 0;
}

/* A migrations directory in the fleet's directory, files from pairs. */
static char *
s_migrations(fl_fleet_t *f, const char *name, const char *const *files)
{
    char *dir = fl_fleet_path(f, name);

    assert_int_equal(mkdir(dir, 0700), 0);
    for (int i = 0; files[i] != NULL; i += 2) {
        char *p = fl_asprintf("%s/%s", dir, files[i]);
        fl_test_write_file(p, files[i + 1]);
        free(p);
    }
    return dir;
}

static char *
s_bundle(fl_fleet_t *f, const char *key, const char *name,
         const char *const *files)
{
    char *dir = s_migrations(f, name, files);
    char *file = fl_asprintf("%s.bundle", name);
    char *out = fl_fleet_path(f, file);

    fl_fleet_bundle(f, key, dir, out);
    free(dir);
    free(file);
    return out;
}

/* Predicates over `flotilla targets --json` and `flotilla agents --json`. */

typedef struct {
    const char *const *names;
    const char *reach;   /* every named target has this reachability */
} s_targets_want;

static int
s_targets_are(const json_t *rows, void *arg)
{
    const s_targets_want *w = arg;

    for (int i = 0; w->names[i] != NULL; i++) {
        const json_t *r = fl_fleet_row(rows, "target", w->names[i]);
        if (r == NULL || strcmp(json_string_value(json_object_get(
                                    r, "reachability")),
                                w->reach) != 0)
            return 0;
    }
    return 1;
}

typedef struct {
    const char *name;
    const char *state;
} s_agent_want;

static int
s_agent_is(const json_t *rows, void *arg)
{
    const s_agent_want *w = arg;
    const json_t *r = fl_fleet_row(rows, "name", w->name);

    return r != NULL &&
           strcmp(json_string_value(json_object_get(r, "state")), w->state) ==
               0;
}

static void
s_wait_targets(fl_fleet_t *f, const char *const *names, const char *reach,
               const char *what)
{
    s_targets_want w = {names, reach};

    fl_fleet_wait(f, "targets", s_targets_are, &w, 30, what);
}

static void
s_wait_agent(fl_fleet_t *f, const char *name, const char *state)
{
    s_agent_want w = {name, state};
    char *what = fl_asprintf("agent %s %s", name, state);

    fl_fleet_wait(f, "agents", s_agent_is, &w, 30, what);
    free(what);
}

/* Ledger facts of a target: its schema ("" for the database). */

static long
s_count(fl_fleet_t *f, int shard, const char *db, const char *sql)
{
    char *v = fl_fleet_query(f, shard, db, sql);
    long n = v ? strtol(v, NULL, 10) : -1;

    free(v);
    return n;
}

/* 1 when the target's database has a ledger at all. */
static int
s_has_ledger(fl_fleet_t *f, int shard, const char *db)
{
    return s_count(f, shard, db, "SELECT (to_regclass("
                   "'flotilla.schema_migrations') IS NOT NULL)::int") == 1;
}

static long
s_applied(fl_fleet_t *f, int shard, const char *db, const char *target)
{
    char *sql = NULL;
    long n;

    if (!s_has_ledger(f, shard, db))
        return 0;
    sql = fl_asprintf("SELECT count(*) FROM flotilla.schema_migrations WHERE"
                      " target = '%s' AND status = 'applied'", target);
    n = s_count(f, shard, db, sql);
    free(sql);
    return n;
}

/* How many times a migration's execute step succeeded on the target. */
static long
s_executed(fl_fleet_t *f, int shard, const char *db, const char *target,
           int version)
{
    char *sql = NULL;
    long n;

    if (!s_has_ledger(f, shard, db))
        return 0;
    sql = fl_asprintf("SELECT count(*) FROM flotilla.migration_logs WHERE"
                      " target = '%s' AND version = '%d' AND step = 'execute'"
                      " AND status = 'ok'", target, version);
    n = s_count(f, shard, db, sql);
    free(sql);
    return n;
}

static char *
s_rollout(fl_fleet_t *f, int shard, const char *db, const char *target,
          int version)
{
    char *sql = fl_asprintf("SELECT rollout_id FROM flotilla.schema_migrations"
                            " WHERE target = '%s' AND version = '%d'", target,
                            version);
    char *v = fl_fleet_query(f, shard, db, sql);

    free(sql);
    return v;
}

/* `flotilla ARGV...` (a dispatch with --json): its JSON. */
static json_t *
s_dispatch_argv(fl_fleet_t *f, const char *const *argv, int want_status)
{
    fl_test_proc_t res = {0, NULL, NULL};
    json_t *j = NULL;

    fl_fleet_cli(f, &res, argv);
    if (res.status != want_status)
        fail_msg("flotilla dispatch: exit %d, wanted %d\n%s\n%s", res.status,
                 want_status, res.out, res.err);
    j = json_loads(res.out, 0, NULL);
    if (j == NULL)
        fail_msg("flotilla dispatch printed no JSON:\n%s\n%s", res.out,
                 res.err);
    fl_test_proc_release(&res);
    return j;
}

static json_t *
s_dispatch_json(fl_fleet_t *f, const char *bundle, const char *selector,
                int want_status)
{
    const char *argv[] = {"flotilla", "dispatch", bundle, "--selector",
                          selector, "--json", NULL};

    return s_dispatch_argv(f, argv, want_status);
}

/* The dispatch's count of targets that succeeded. */
static json_int_t
s_succeeded(const json_t *d)
{
    return json_integer_value(json_object_get(d, "succeeded"));
}

static const char *
s_result_status(const json_t *d, const char *target)
{
    const json_t *r = fl_fleet_row(json_object_get(d, "results"), "target",
                                   target);
    return r ? json_string_value(json_object_get(r, "status")) : NULL;
}

static void s_expect_result(const json_t *d, const char *target,
                            const char *want, const char *says);

/*
 * Three agents, each beside its own server: a static target, databases
 * found by a pattern, and the schemas of a schema-per-tenant database.
 * All appear in `flotilla targets`; a tenant database created later
 * appears after the next discovery; a dispatch applies the bundle to
 * every selected target exactly once, in each tenant's own schema, and
 * to no other; dispatched again, it runs nothing.
 */
static void
test_fleet_targets_discovery_and_dispatch_exactly_once(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char db[12][64], tail[3][512], *bundle = NULL, *rollout = NULL;
    char names[12][96];
    const char *all[12];
    json_t *d = NULL, *rows = NULL;
    const char *const files[] = {
        "0001_fleet_table.sql",
        "-- flotilla:up\nCREATE TABLE fleet_t (id int PRIMARY KEY);\n"
        "-- flotilla:down\nDROP TABLE fleet_t;\n",
        "0002_fleet_column.sql",
        "-- flotilla:up\nALTER TABLE fleet_t ADD COLUMN note text;\n"
        "-- flotilla:down\nALTER TABLE fleet_t DROP COLUMN note;\n",
        /* A repeatable migration (a format 3 bundle): each agent runs it
         * after the versioned ones, once. */
        "R__fleet_view.sql",
        "-- flotilla:up\nCREATE OR REPLACE VIEW fleet_v AS SELECT id, note"
        " FROM fleet_t;\n",
        NULL};

    fl_fleet_open(f, s->p, NULL);
    /* shard 0: a static target and tenant databases a_1, a_2 (a_3 later) */
    snprintf(db[0], 64, "%s_static", s->p);
    snprintf(db[1], 64, "%s_a_1", s->p);
    snprintf(db[2], 64, "%s_a_2", s->p);
    /* shard 1: tenant databases b_1, b_2 */
    snprintf(db[3], 64, "%s_b_1", s->p);
    snprintf(db[4], 64, "%s_b_2", s->p);
    /* shard 2: a schema-per-tenant database and a tenant database c_1 */
    snprintf(db[5], 64, "%s_saas", s->p);
    snprintf(db[6], 64, "%s_c_1", s->p);
    fl_fleet_createdb(f, 0, db[0]);
    fl_fleet_createdb(f, 0, db[1]);
    fl_fleet_createdb(f, 0, db[2]);
    fl_fleet_createdb(f, 1, db[3]);
    fl_fleet_createdb(f, 1, db[4]);
    fl_fleet_createdb(f, 2, db[5]);
    fl_fleet_createdb(f, 2, db[6]);
    {
        PGconn *c = fl_fleet_connect(f, 2, db[5]);
        fl_test_exec(c, "CREATE SCHEMA tenant_1; CREATE SCHEMA tenant_2;"
                        " CREATE SCHEMA billing");
        PQfinish(c);
    }
    fl_fleet_start_coordinator(f);
    snprintf(tail[0], sizeof(tail[0]),
             "targets:\n"
             "  - name: shard-a/static\n"
             "    dsn: \"%s dbname=%s\"\n"
             "    labels: [kind=static]\n"
             "discover:\n"
             "  - databases: \"%s_a_*\"\n"
             "    labels: [kind=tenant]\n",
             f->shards[0], db[0], s->p);
    snprintf(tail[1], sizeof(tail[1]),
             "discover:\n"
             "  - databases: \"%s_b_*\"\n"
             "    labels: [kind=tenant, tier=canary]\n",
             s->p);
    snprintf(tail[2], sizeof(tail[2]),
             "discover:\n"
             "  - schemas: \"tenant_*\"\n"
             "    database: %s\n"
             "    labels: [kind=tenant, layout=schema]\n"
             "  - databases: \"%s_c_*\"\n"
             "    labels: [kind=tenant]\n",
             db[5], s->p);
    fl_fleet_add_agent(f, "shard-a", 0, 1, tail[0]);
    fl_fleet_add_agent(f, "shard-b", 1, 1, tail[1]);
    fl_fleet_add_agent(f, "shard-c", 2, 1, tail[2]);
    for (int i = 0; i < 3; i++)
        fl_fleet_start_agent(f, i);

    snprintf(names[0], 96, "shard-a/static");
    snprintf(names[1], 96, "shard-a/%s", db[1]);
    snprintf(names[2], 96, "shard-a/%s", db[2]);
    snprintf(names[3], 96, "shard-b/%s", db[3]);
    snprintf(names[4], 96, "shard-b/%s", db[4]);
    snprintf(names[5], 96, "shard-c/%s/tenant_1", db[5]);
    snprintf(names[6], 96, "shard-c/%s/tenant_2", db[5]);
    snprintf(names[7], 96, "shard-c/%s", db[6]);
    for (int i = 0; i < 8; i++)
        all[i] = names[i];
    all[8] = NULL;
    s_wait_targets(f, all, "reachable",
                   "every static and discovered target reachable");
    rows = fl_fleet_json(f, "targets", NULL);
    /* Exactly those: the schema "billing" does not match tenant_*. */
    assert_int_equal(json_array_size(rows), 8);
    assert_string_equal(json_string_value(json_object_get(
                            fl_fleet_row(rows, "target", names[5]), "kind")),
                        "schema");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(fl_fleet_row(rows, "target", names[3]), "labels"),
            "tier")),
        "canary");
    json_decref(rows);
    /* The text: kind and environment, and "none" applied, not "0" (a
     * real version: diesel's first). */
    {
        const char *argv[] = {"flotilla", "targets", NULL};
        fl_test_proc_t res;
        char *line = NULL;

        fl_fleet_cli(f, &res, argv);
        assert_int_equal(res.status, 0);
        line = strstr(res.out, names[5]);
        assert_non_null(line);
        line = fl_strndup(line, strcspn(line, "\n"));
        if (strstr(line, " schema ") == NULL ||
            strstr(line, " none ") == NULL || strstr(line, " 0 ") != NULL)
            fail_msg("the target's line says no kind, or an applied "
                     "version:\n%s", res.out);
        free(line);
        fl_test_proc_release(&res);
    }

    /* A tenant created now appears after the next discovery. */
    snprintf(db[7], 64, "%s_a_3", s->p);
    fl_fleet_createdb(f, 0, db[7]);
    snprintf(names[8], 96, "shard-a/%s", db[7]);
    all[8] = names[8];
    all[9] = NULL;
    s_wait_targets(f, all, "reachable", "the new tenant discovered");

    /* The dispatch: every tenant (kind=tenant), never the static one. */
    bundle = s_bundle(f, f->key, "b1", files);
    d = s_dispatch_json(f, bundle, "kind=tenant", 0);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 8);
    assert_int_equal(s_succeeded(d), 8);
    /* "ok" is a boolean, as in every command's JSON (before, the count of
     * targets that succeeded here and false on a failure). */
    assert_true(json_is_true(json_object_get(d, "ok")));
    for (int i = 1; i <= 8; i++)
        assert_string_equal(s_result_status(d, names[i]), "ok");
    assert_null(s_result_status(d, names[0]));
    {
        struct { int shard; const char *db; const char *target; } t[8] = {
            {0, db[1], ""}, {0, db[2], ""}, {0, db[7], ""}, {1, db[3], ""},
            {1, db[4], ""}, {2, db[5], "tenant_1"}, {2, db[5], "tenant_2"},
            {2, db[6], ""}};
        for (int i = 0; i < 8; i++) {
            assert_int_equal(s_applied(f, t[i].shard, t[i].db, t[i].target), 2);
            assert_int_equal(s_executed(f, t[i].shard, t[i].db, t[i].target, 1), 1);
            assert_int_equal(s_executed(f, t[i].shard, t[i].db, t[i].target, 2), 1);
            {
                char *q = fl_asprintf("SELECT count(*) FROM"
                                      " flotilla.repeatable_migrations WHERE"
                                      " target = '%s' AND name ="
                                      " 'fleet_view' AND runs = 1 AND status"
                                      " = 'applied'", t[i].target);
                assert_int_equal(s_count(f, t[i].shard, t[i].db, q), 1);
                free(q);
            }
            rollout = s_rollout(f, t[i].shard, t[i].db, t[i].target, 1);
            assert_string_equal(rollout,
                                json_string_value(json_object_get(d, "id")));
            free(rollout);
        }
        /* Each schema tenant's table is in its own schema. */
        assert_int_equal(s_count(f, 2, db[5], "SELECT count(*) FROM "
                                 "pg_tables WHERE tablename = 'fleet_t' AND "
                                 "schemaname IN ('tenant_1', 'tenant_2')"), 2);
        assert_int_equal(s_count(f, 2, db[5], "SELECT count(*) FROM "
                                 "pg_tables WHERE tablename = 'fleet_t' AND "
                                 "schemaname NOT IN ('tenant_1', "
                                 "'tenant_2')"), 0);
        /* The static target is untouched. */
        assert_int_equal(s_applied(f, 0, db[0], ""), 0);
        assert_int_equal(s_count(f, 0, db[0], "SELECT count(*) FROM "
                                 "pg_tables WHERE tablename = 'fleet_t'"), 0);
        json_decref(d);

        /* Dispatched again: answered, nothing executed a second time. */
        d = s_dispatch_json(f, bundle, "kind=tenant", 0);
        assert_int_equal(s_succeeded(d), 8);
        for (int i = 0; i < 8; i++) {
            char *q = fl_asprintf("SELECT sum(runs) FROM"
                                  " flotilla.repeatable_migrations WHERE"
                                  " target = '%s'", t[i].target);
            assert_int_equal(s_executed(f, t[i].shard, t[i].db, t[i].target, 2), 1);
            assert_int_equal(s_count(f, t[i].shard, t[i].db, q), 1);
            free(q);
        }
    }
    json_decref(d);
    /* `flotilla targets` shows where each stands against that bundle. */
    rows = fl_fleet_json(f, "targets", NULL);
    assert_string_equal(json_string_value(json_object_get(
                            fl_fleet_row(rows, "target", names[1]), "drift")),
                        "current");
    assert_string_equal(json_string_value(json_object_get(
                            fl_fleet_row(rows, "target", names[5]),
                            "applied_version")), "2");
    assert_string_equal(json_string_value(json_object_get(
                            fl_fleet_row(rows, "target", names[0]), "drift")),
                        "2 pending");
    json_decref(rows);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * An agent whose certificate is not enrolled is refused (and both sides
 * log it); an agent pinned to another coordinator key never talks; an
 * operator without an enrolled certificate gets nothing; an agent whose
 * certificate is removed is dropped at SIGHUP.
 */
static void
test_fleet_unenrolled_wrong_pin_operator_and_revocation(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbname[64], tail[256], key[FL_KEY_Z85_LEN + 1], *path = NULL;
    fl_test_proc_t res = {0, NULL, NULL};
    json_t *rows = NULL;
    int good, stranger, wrongpin;

    fl_fleet_open(f, s->p, NULL);
    snprintf(dbname, sizeof(dbname), "%s_good", s->p);
    fl_fleet_createdb(f, 0, dbname);
    fl_fleet_start_coordinator(f);
    snprintf(tail, sizeof(tail), "targets:\n  - name: good/db\n    dsn: "
             "\"%s dbname=%s\"\n", f->shards[0], dbname);
    good = fl_fleet_add_agent(f, "good", 0, 1, tail);
    stranger = fl_fleet_add_agent(f, "stranger", 1, 0, "");
    wrongpin = fl_fleet_add_agent(f, "wrongpin", 2, 1, "");
    /* wrongpin trusts another coordinator's key. */
    {
        char *fake = fl_fleet_path(f, "certs/fake-coord");
        const char *argv[] = {"flotilla", "cert", "--out", fake, NULL};
        char *yaml = NULL, *from = NULL, *text = NULL;
        FILE *fp = NULL;
        size_t len = 0;

        fl_test_run(&res, "flotilla", argv, NULL, 30);
        assert_int_equal(res.status, 0);
        fl_test_proc_release(&res);
        yaml = f->agents[wrongpin].yaml;
        fp = fopen(yaml, "r");
        assert_non_null(fp);
        text = fl_calloc(1, 8192);
        len = fread(text, 1, 8191, fp);
        fclose(fp);
        text[len] = '\0';
        from = fl_asprintf("%s/coord.cert", f->dir);
        {
            char *at = strstr(text, from);
            char *fixed = NULL;
            assert_non_null(at);
            *at = '\0';
            fixed = fl_asprintf("%s%s.cert%s", text, fake,
                                at + strlen(from));
            fl_test_write_file(yaml, fixed);
            free(fixed);
        }
        free(from);
        free(text);
        free(fake);
    }
    fl_fleet_start_agent(f, good);
    fl_fleet_start_agent(f, stranger);
    fl_fleet_start_agent(f, wrongpin);
    s_wait_agent(f, "good", "online");

    /* The stranger: refused by the ZAP handler, logged on both sides. */
    path = fl_asprintf("%s.cert", f->agents[stranger].cert);
    assert_int_equal(fl_cert_load_public(key, path, NULL), 0);
    free(path);
    fl_fleet_wait_log(f->coord_log, key, 30);
    assert_true(fl_fleet_log_count(f->coord_log, "is not enrolled for") > 0);
    fl_fleet_wait_log(f->agents[stranger].log,
                      "refused this agent's certificate", 30);
    /* The wrong pin: the handshake fails; the agent sends nothing. */
    fl_fleet_wait_log(f->agents[wrongpin].log, "does not hold the key pinned",
                      30);
    rows = fl_fleet_json(f, "agents", NULL);
    assert_non_null(fl_fleet_row(rows, "name", "good"));
    assert_null(fl_fleet_row(rows, "name", "stranger"));
    assert_null(fl_fleet_row(rows, "name", "wrongpin"));
    json_decref(rows);

    /* An operator whose certificate is not enrolled gets nothing but the
     * refusal (as JSON on stdout with --json). */
    {
        char *op = fl_fleet_path(f, "certs/intruder");
        char *secret = fl_asprintf("%s.cert_secret", op);
        const char *mk[] = {"flotilla", "cert", "--out", op, NULL};
        const char *argv[] = {"flotilla", "targets", "--json", "--cert",
                              secret, "--timeout", "20s", NULL};

        fl_test_run(&res, "flotilla", mk, NULL, 30);
        fl_test_proc_release(&res);
        fl_fleet_cli(f, &res, argv);
        assert_int_equal(res.status, 4);
        {
            json_t *j = json_loads(res.out, 0, NULL);
            const char *m = json_string_value(json_object_get(
                json_object_get(j, "error"), "message"));
            assert_true(json_is_false(json_object_get(j, "ok")));
            assert_non_null(m);
            assert_non_null(strstr(m, "refused this operator's certificate"));
            json_decref(j);
        }
        assert_non_null(strstr(res.err, "refused this operator's "
                                        "certificate"));
        fl_test_proc_release(&res);
        free(op);
        free(secret);
    }
    /* An enrolled operator at the agents' endpoint is refused there too,
     * and told which endpoint is the operators' (before, only to enrol
     * the certificate it had enrolled). */
    {
        const char *argv[] = {"flotilla", "targets", "--coordinator",
                              f->agent_endpoint, "--timeout", "20s", NULL};
        fl_fleet_cli(f, &res, argv);
        assert_int_equal(res.status, 4);
        assert_non_null(strstr(res.err, "control_endpoint"));
        fl_test_proc_release(&res);
    }

    /* Revoked: its certificate leaves the directory; SIGHUP drops it. */
    path = fl_asprintf("%s/agents/good.cert", f->dir);
    assert_int_equal(unlink(path), 0);
    free(path);
    fl_fleet_signal_coordinator(f, SIGHUP);
    s_wait_agent(f, "good", "revoked");
    {
        const char *names[] = {"good/db", NULL};
        s_wait_targets(f, names, "unreachable", "the revoked agent's target");
    }
    assert_true(fl_fleet_log_count(f->coord_log, "is revoked") > 0);
    fl_fleet_wait_log(f->agents[good].log, "revoked", 30);
    /* Nothing is sent to it any more: it has no target to select. */
    {
        const char *const files[] = {"0001_x.sql",
                                     "-- flotilla:up\nSELECT 1;\n"
                                     "-- flotilla:down\nSELECT 1;\n", NULL};
        char *bundle = s_bundle(f, f->key, "b1", files);
        const char *argv[] = {"flotilla", "dispatch", bundle, "--selector",
                              "agent=good", NULL};
        fl_fleet_cli(f, &res, argv);
        assert_int_equal(res.status, 1);
        assert_non_null(strstr(res.err, "no target matches"));
        fl_test_proc_release(&res);
        free(bundle);
    }
    assert_int_equal(s_applied(f, 0, dbname, ""), 0);

    /*
     * Enrolled (the stranger) and enrolled again (the revoked one): the
     * certificate in the directory and a SIGHUP, as docs/fleet.md says,
     * and each comes online by itself.  Before, an agent the coordinator
     * had refused once never tried again until it was restarted.
     */
    {
        const char *who[] = {"stranger", "good"};
        const int idx[] = {stranger, good};

        for (int i = 0; i < 2; i++) {
            char *from = fl_asprintf("%s.cert", f->agents[idx[i]].cert);
            char *file = fl_asprintf("agents/%s.cert", who[i]);
            char *to = fl_fleet_path(f, file);
            unsigned char *text = NULL;
            size_t len = 0;

            assert_int_equal(fl_file_read(&text, &len, from, 1 << 16,
                                          "certificate", NULL), 0);
            fl_test_write_file(to, (const char *)text);
            free(text);
            free(to);
            free(file);
            free(from);
        }
        fl_fleet_signal_coordinator(f, SIGHUP);
        s_wait_agent(f, "stranger", "online");
        s_wait_agent(f, "good", "online");
    }
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * A bundle signed by a key the coordinator trusts but the agents do not
 * is refused by every agent: nothing runs anywhere.
 */
static void
test_fleet_untrusted_bundle_refused_by_every_agent(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbs[3][64], tail[256], *bundle = NULL;
    json_t *d = NULL;
    const char *const files[] = {
        "0001_evil.sql",
        "-- flotilla:up\nCREATE TABLE evil_t (id int);\n"
        "-- flotilla:down\nDROP TABLE evil_t;\n",
        NULL};

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(dbs[i], 64, "%s_u%d", s->p, i);
        fl_fleet_createdb(f, i, dbs[i]);
        snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_u*\"\n",
                 s->p);
        snprintf(name, sizeof(name), "agent-%d", i);
        fl_fleet_start_agent(f, fl_fleet_add_agent(f, name, i, 1, tail));
    }
    {
        char names[3][96];
        const char *all[4];
        for (int i = 0; i < 3; i++) {
            snprintf(names[i], 96, "agent-%d/%s", i, dbs[i]);
            all[i] = names[i];
        }
        all[3] = NULL;
        s_wait_targets(f, all, "reachable", "three agents' targets");
        bundle = s_bundle(f, f->evil_key, "evil", files);
        d = s_dispatch_json(f, bundle, "", 3);
        assert_int_equal(json_integer_value(json_object_get(d, "refused")), 3);
        assert_true(json_is_false(json_object_get(d, "ok")));
        for (int i = 0; i < 3; i++) {
            const json_t *r = fl_fleet_row(json_object_get(d, "results"),
                                           "target", names[i]);
            assert_string_equal(json_string_value(json_object_get(r,
                                                                  "status")),
                                "refused");
            assert_non_null(strstr(json_string_value(json_object_get(
                                       r, "error")),
                                   "signed by unknown key"));
            assert_int_equal(s_applied(f, i, dbs[i], ""), 0);
            assert_int_equal(s_count(f, i, dbs[i], "SELECT count(*) FROM "
                                     "pg_tables WHERE tablename = 'evil_t'"),
                             0);
            assert_true(fl_fleet_log_count(f->agents[i].log,
                                           "signed by unknown key") > 0);
        }
    }
    json_decref(d);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * `flotilla dispatch` with --action plan and --action rollback, which the
 * rollout engine uses but no test drove by hand: a plan changes nothing
 * on any target (no ledger row, no table, no sequence moved), a rollback
 * --to 1 takes back the second migration on every target and puts back
 * the rows it changed, and a rollback of what is not applied answers
 * from the ledgers.  A second coordinator on the same control database
 * is refused while the first runs, which serves on through its control
 * database's sessions cut.
 */
/* A second coordinator's configuration, on f's control database. */
static char *
s_second_yaml(fl_fleet_t *f, const char *log)
{
    return fl_asprintf(
        "name: second-coordinator\n"
        "agent_endpoint: \"tcp://127.0.0.1:!\"\n"
        "control_endpoint: \"tcp://127.0.0.1:!\"\n"
        "state_dsn: \"%s\"\n"
        "cert: %s/coord.cert_secret\n"
        "agents_dir: %s/agents\n"
        "operators_dir: %s/operators\n"
        "trust: %s/coord-trust\n"
        "selftest_timeout: 60s\n"
        "log_file: %s\n", f->ctl.conninfo, f->dir, f->dir, f->dir,
        f->dir, log);
}

/* Sessions of the control database (but this one) waiting for a lock. */
static long
s_ctl_waiting(PGconn *c)
{
    char *v = fl_test_query_value(c, "SELECT COALESCE(max(pid), 0) FROM"
                                     " pg_catalog.pg_stat_activity WHERE"
                                     " datname = current_database() AND pid"
                                     " <> pg_backend_pid() AND"
                                     " wait_event_type = 'Lock'");
    long pid = v ? strtol(v, NULL, 10) : 0;

    free(v);
    return pid;
}

/*
 * The coordinator killed (kill -9) while its writer waits for a lock in
 * the control database: the dead coordinator's session must end within
 * seconds, or it holds the control database's lock until its statement
 * ends, and the coordinator cannot start again ("another coordinator is
 * using the control database").  Before, the session waited for as long
 * as the lock was held.
 */
static void
s_ctl_dead_session(fl_fleet_t *f, const char *bundle)
{
    PGconn *c = fl_test_db_connect(&f->ctl);
    PGconn *q = fl_test_db_connect(&f->ctl);
    char *out = fl_fleet_path(f, "blocked-dispatch.out");
    const char *argv[] = {"flotilla", "dispatch", bundle, "--action", "plan",
                          "--selector", "", NULL};
    int64_t deadline = fl_clock_ms() + (int64_t)(30000 *
                                                 fl_test_timeout_scale());
    pid_t cli = 0;
    long writer = 0;

    fl_test_exec(c, "BEGIN; LOCK TABLE flotilla_control.commands IN SHARE"
                    " MODE");
    cli = fl_fleet_cli_spawn(f, argv, out);
    while ((writer = s_ctl_waiting(q)) == 0) {
        if (fl_clock_ms() > deadline)
            fail_msg("the coordinator's writer never waited for the lock");
        fl_clock_sleep_ms(50);
    }
    fl_fleet_signal_coordinator(f, SIGKILL);
    deadline = fl_clock_ms() + 10000;
    for (;;) {
        char *sql = fl_asprintf("SELECT count(*) FROM pg_catalog."
                                "pg_stat_activity WHERE pid = %ld", writer);
        char *v = fl_test_query_value(q, sql);
        int gone = v != NULL && strcmp(v, "0") == 0;

        free(v);
        free(sql);
        if (gone)
            break;
        if (fl_clock_ms() > deadline)
            fail_msg("the killed coordinator's session (pid %ld) still "
                     "waits for its lock after 10 s, holding the control "
                     "database's", writer);
        fl_clock_sleep_ms(100);
    }
    fl_fleet_start_coordinator(f);
    fl_test_exec(c, "ROLLBACK");
    kill(cli, SIGKILL);
    (void)fl_fleet_wait_pid(cli, 30);
    PQfinish(c);
    PQfinish(q);
    free(out);
}

/*
 * The coordinator's sessions ended while it lives on (stopped here),
 * and a second coordinator takes the control database: still there when
 * the first goes on (alive), or gone again.  The first must not write
 * its state (now stale) over the database: at its next write it finds
 * the lock held by a session not its own, or the writer's count another
 * coordinator's, answers its operator with an error and stops (exit 1),
 * and starts again from the database.  Before, it waited for the lock
 * for as long as the second ran, then wrote on.
 */
static void
s_ctl_takeover(fl_fleet_t *f, const char *bundle, int alive)
{
    char *yaml = fl_fleet_path(f, "second.yaml");
    char *log = fl_fleet_path(f, alive ? "second-alive.log"
                                       : "second-gone.log");
    char *out = fl_fleet_path(f, "second-takeover.out");
    char *text = s_second_yaml(f, log);
    const char *argv[] = {"flotilla-coordinator", "--config", yaml, NULL};
    const char *disp[] = {"flotilla", "dispatch", bundle, "--action", "plan",
                          "--selector", "", "--timeout", "5s", NULL};
    const char *why = alive ? "another coordinator holds the control "
                              "database's lock"
                            : "another coordinator has written to the "
                              "control database";
    fl_test_proc_t res = {0, NULL, NULL};
    PGconn *c = fl_test_db_connect(&f->ctl);
    pid_t second = 0;
    int code = 0, said = fl_fleet_log_count(f->coord_log, why);

    fl_test_write_file(yaml, text);
    fl_fleet_signal_coordinator(f, SIGSTOP);
    fl_test_exec(c, "SELECT count(pg_catalog.pg_terminate_backend(pid))"
                    " FROM pg_catalog.pg_stat_activity WHERE datname ="
                    " current_database() AND pid <> pg_backend_pid()");
    second = fl_fleet_spawn("flotilla-coordinator", argv, out);
    fl_fleet_wait_log(log, "\"message\":\"ready:", 60);
    if (!alive) {
        kill(second, SIGTERM);
        assert_int_equal(fl_fleet_wait_pid(second, 30), 0);
    }
    fl_fleet_signal_coordinator(f, SIGCONT);
    /* Its operator is told why, or nothing if another write of the
     * coordinator found the takeover first and it stopped. */
    fl_fleet_cli(f, &res, disp);
    if (res.status == 0 ||
        (strstr(res.err, why) == NULL &&
         strstr(res.err, "no reply from the coordinator") == NULL))
        fail_msg("the first coordinator, after a second one had taken its "
                 "control database: exit %d\n%s\n%s", res.status, res.out,
                 res.err);
    fl_test_proc_release(&res);
    code = fl_fleet_wait_pid(f->coord_pid, 30);
    f->coord_pid = 0;
    assert_int_equal(code, 1);
    assert_true(fl_fleet_log_count(f->coord_log, why) > said);
    if (alive) {
        kill(second, SIGTERM);
        assert_int_equal(fl_fleet_wait_pid(second, 30), 0);
    }
    fl_fleet_start_coordinator(f);
    PQfinish(c);
    free(text);
    free(yaml);
    free(log);
    free(out);
}

static void
test_fleet_dispatch_plan_rollback_and_one_coordinator(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    fl_test_db_t decoy;
    PGconn *dc = NULL;
    char dbs[2][2][64], names[4][96], tail[256], *bundle = NULL;
    const char *all[5];
    json_t *d = NULL;
    const char *const files[] = {
        "0001_items.sql",
        "-- flotilla:up\nCREATE TABLE items (id bigserial PRIMARY KEY,"
        " v text);\nINSERT INTO items (v) SELECT 'v' || g FROM"
        " generate_series(1, 5) g;\n"
        "-- flotilla:down\nDROP TABLE items;\n",
        "0002_upper.sql",
        "-- flotilla:up\nUPDATE items SET v = upper(v) WHERE id > 2;\n"
        "INSERT INTO items (v) VALUES ('six');\n"
        "-- flotilla:down\nSELECT 1;\n",
        NULL};

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    for (int i = 0; i < 2; i++) {
        char name[16];
        for (int k = 0; k < 2; k++) {
            snprintf(dbs[i][k], 64, "%s_d%d%d", s->p, i, k);
            fl_fleet_createdb(f, i, dbs[i][k]);
            snprintf(names[i * 2 + k], 96, "agent-%d/%s", i, dbs[i][k]);
            all[i * 2 + k] = names[i * 2 + k];
        }
        snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_d*\"\n",
                 s->p);
        snprintf(name, sizeof(name), "agent-%d", i);
        fl_fleet_start_agent(f, fl_fleet_add_agent(f, name, i, 1, tail));
    }
    all[4] = NULL;
    s_wait_targets(f, all, "reachable", "two agents' four targets");
    bundle = s_bundle(f, f->key, "pr", files);

    /* A fleet-wide plan: every target would apply; nothing changed. */
    {
        const char *argv[] = {"flotilla", "dispatch", bundle, "--selector",
                              "", "--action", "plan", "--json", NULL};
        d = s_dispatch_argv(f, argv, 0);
        assert_int_equal(s_succeeded(d), 4);
        json_decref(d);
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++) {
                assert_int_equal(s_applied(f, i, dbs[i][k], ""), 0);
                assert_int_equal(s_count(f, i, dbs[i][k], "SELECT count(*)"
                                         " FROM pg_class WHERE relname IN"
                                         " ('items', 'items_id_seq')"), 0);
            }
    }
    /*
     * A migration without a transaction cannot be rehearsed: the plan is
     * not proven, and the dispatch says so and exits 3, as flotilla plan
     * and rollout plan do (before: every target "ok", exit 0).
     */
    {
        const char *const notx[] = {
            "0001_notx.sql",
            "-- flotilla:options no-transaction\n"
            "-- flotilla:up\nSELECT 1;\n-- flotilla:down\nSELECT 1;\n",
            NULL};
        char *nb = s_bundle(f, f->key, "notx", notx);
        const char *argv[] = {"flotilla", "dispatch", nb, "--selector", "",
                              "--action", "plan", "--json", NULL};

        d = s_dispatch_argv(f, argv, 3);
        assert_int_equal(json_integer_value(json_object_get(d, "refused")),
                         4);
        s_expect_result(d, all[0], "refused", "NOT PROVEN");
        json_decref(d);
        free(nb);
    }

    /* Applied, then rolled back to 1 through the fleet. */
    d = s_dispatch_json(f, bundle, "", 0);
    assert_int_equal(s_succeeded(d), 4);
    json_decref(d);
    {
        const char *argv[] = {"flotilla", "dispatch", bundle, "--selector",
                              "", "--action", "rollback", "--to", "1",
                              "--json", NULL};
        for (int round = 0; round < 2; round++) {
            d = s_dispatch_argv(f, argv, 0);
            assert_int_equal(s_succeeded(d), 4);
            json_decref(d);
            for (int i = 0; i < 2; i++)
                for (int k = 0; k < 2; k++) {
                    char *v = fl_fleet_query(f, i, dbs[i][k],
                        "SELECT string_agg(id || v, ',' ORDER BY id) || ' '"
                        " || (SELECT last_value FROM items_id_seq) || ' '"
                        " || (SELECT string_agg(version || status, ','"
                        " ORDER BY version) FROM flotilla.schema_migrations)"
                        " FROM items");
                    assert_non_null(v);
                    assert_string_equal(v, "1v1,2v2,3v3,4v4,5v5 5 1applied,"
                                           "2rolled_back");
                    free(v);
                    /* The second round ran nothing again. */
                    assert_int_equal(s_count(f, i, dbs[i][k],
                        "SELECT count(*) FROM flotilla.migration_logs"
                        " WHERE step = 'restore' AND status = 'ok'"), 1);
                }
        }
    }

    /* A second coordinator on the same control database is refused. */
    {
        char *yaml = fl_fleet_path(f, "second.yaml");
        char *log = fl_fleet_path(f, "second.log");
        char *text = s_second_yaml(f, log);
        const char *argv[] = {"flotilla-coordinator", "--config", yaml, NULL};
        fl_test_proc_t res = {0, NULL, NULL};

        fl_test_write_file(yaml, text);
        fl_test_run(&res, "flotilla-coordinator", argv, NULL, 60);
        if (res.status == 0 ||
            (strstr(res.err, "another coordinator is using the control "
                             "database") == NULL &&
             fl_fleet_log_count(log, "another coordinator is using the "
                                     "control database") == 0))
            fail_msg("a second coordinator: exit %d\n%s\n%s", res.status,
                     res.out, res.err);
        fl_test_proc_release(&res);
        free(text);
        /*
         * A state_dsn_file libpq cannot parse is refused without its text
         * (before, "invalid percent-encoded token: \"Hunter%zzSECRET\""
         * went to stderr and the log file).
         */
        {
            char *dsnf = fl_fleet_path(f, "ctl.dsn");
            char *log3 = fl_fleet_path(f, "third.log");
            unsigned char *said = NULL;
            size_t len = 0;

            fl_test_write_file(dsnf, "postgresql://flot:Hunter%zzCTLSECRET@"
                                     "127.0.0.1:1/postgres\n");
            assert_int_equal(chmod(dsnf, 0600), 0);
            text = fl_asprintf(
                "name: third-coordinator\n"
                "agent_endpoint: \"tcp://127.0.0.1:!\"\n"
                "control_endpoint: \"tcp://127.0.0.1:!\"\n"
                "state_dsn_file: %s\n"
                "cert: %s/coord.cert_secret\n"
                "agents_dir: %s/agents\n"
                "operators_dir: %s/operators\n"
                "trust: %s/coord-trust\n"
                "log_file: %s\n", dsnf, f->dir, f->dir, f->dir, f->dir,
                log3);
            fl_test_write_file(yaml, text);
            fl_test_run(&res, "flotilla-coordinator", argv, NULL, 60);
            if (fl_file_read(&said, &len, log3, 1 << 20, "log", NULL) != 0)
                said = (unsigned char *)fl_strdup("");
            if (res.status == 0 || strstr(res.out, "CTLSECRET") ||
                strstr(res.err, "CTLSECRET") ||
                strstr((char *)said, "CTLSECRET") ||
                strstr(res.err, "state_dsn_file") == NULL)
                fail_msg("a bad state_dsn_file: exit %d\n%s\n%s\n%s",
                         res.status, res.out, res.err, said);
            fl_test_proc_release(&res);
            free(said);
            free(text);
            free(dsnf);
            free(log3);
        }
        free(yaml);
        free(log);
    }
    /*
     * The first still serves, through its control database's sessions
     * cut (its server restarted, as the coordinator sees it): the writes
     * are retried on a new session, and the next bundle goes out once.
     */
    {
        const char *const more[] = {
            files[0], files[1], files[2], files[3], "0003_note.sql",
            "-- flotilla:up\nALTER TABLE items ADD COLUMN note text;\n"
            "-- flotilla:down\nALTER TABLE items DROP COLUMN note;\n",
            NULL};
        PGconn *c = fl_test_db_connect(&f->ctl);
        char *bundle2 = s_bundle(f, f->key, "pr2", more);
        int warned = fl_fleet_log_count(f->coord_log, "could not write");

        fl_test_exec(c, "SELECT count(pg_catalog.pg_terminate_backend(pid))"
                        " FROM pg_catalog.pg_stat_activity WHERE datname ="
                        " current_database() AND pid <> pg_backend_pid()");
        PQfinish(c);
        d = s_dispatch_json(f, bundle2, "", 0);
        assert_int_equal(s_succeeded(d), 4);
        json_decref(d);
        assert_true(fl_fleet_log_count(f->coord_log, "could not write") >
                    warned);
        assert_true(fl_fleet_log_count(f->coord_log, "the control database "
                                       "is writable again") > 0);
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++) {
                assert_int_equal(s_applied(f, i, dbs[i][k], ""), 3);
                assert_int_equal(s_executed(f, i, dbs[i][k], "", 3), 1);
            }
        free(bundle2);
    }
    s_ctl_dead_session(f, bundle);
    /*
     * Another coordinator's control database on the same server holds a
     * lock of the same key (advisory locks are per database): the first
     * coordinator still tells its own lock's holder from it.  Before, it
     * read both holders, took neither for the other coordinator, and
     * waited without a word for as long as the second ran (seen in CI,
     * other tests' coordinators on the server).
     */
    fl_test_db_create(&decoy, "decoy");
    dc = PQconnectdb(decoy.conninfo);
    fl_test_expect_value(dc, "SELECT pg_catalog.pg_try_advisory_lock("
                             "1718578273, 1718899820)", "t");
    s_ctl_takeover(f, bundle, 1);
    s_ctl_takeover(f, bundle, 0);
    PQfinish(dc);
    fl_test_db_drop(&decoy);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * A fleet (coord_extra appended to the coordinator's configuration) of
 * the coordinator and one agent named agent beside shard, discovering n
 * new databases PREFIX_SUFFIX0.. (dbs, and their target names in names
 * and all, NULL-terminated), every one reachable.  The agent's index.
 */
static int
s_discover_fleet(s_state *s, const char *coord_extra, const char *agent,
                 int shard, const char *suffix, int n, char (*dbs)[64],
                 char (*names)[96], const char **all)
{
    fl_fleet_t *f = &s->f;
    char tail[256];
    int k = 0;

    fl_fleet_open(f, s->p, coord_extra);
    fl_fleet_start_coordinator(f);
    for (int i = 0; i < n; i++) {
        snprintf(dbs[i], 64, "%s_%s%d", s->p, suffix, i);
        fl_fleet_createdb(f, shard, dbs[i]);
        snprintf(names[i], 96, "%s/%s", agent, dbs[i]);
        all[i] = names[i];
    }
    all[n] = NULL;
    snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_%s*\"\n",
             s->p, suffix);
    k = fl_fleet_add_agent(f, agent, shard, 1, tail);
    fl_fleet_start_agent(f, k);
    s_wait_targets(f, all, "reachable", "the agent's targets");
    return k;
}

/*
 * A command reaches an agent for a target it no longer owns: its
 * database was dropped while the agent was away, so the agent, back,
 * does not report it.  The command is refused, naming the target and
 * saying what to look at, the dispatch ends, and the agent's other target is
 * migrated once.  Meanwhile the operator's dispatch --json that stopped
 * waiting (--timeout) printed the dispatch's id and "complete": false
 * (before, nothing on stdout: a script could not attach).
 */
static void
test_fleet_command_for_a_target_the_agent_lost(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbs[2][64], names[2][96], *bundle = NULL, *id = NULL;
    const char *all[3];
    json_t *d = NULL;
    int k;
    const char *const files[] = {
        "0001_lost.sql",
        "-- flotilla:up\nCREATE TABLE lost_t (id int);\n"
        "-- flotilla:down\nDROP TABLE lost_t;\n",
        NULL};

    k = s_discover_fleet(s, NULL, "agent-l", 0, "l", 2, dbs, names, all);
    fl_fleet_signal_agent(f, k, SIGTERM);
    s_wait_agent(f, "agent-l", "offline");
    bundle = s_bundle(f, f->key, "lost", files);
    /* Both commands wait for the agent (the operator stops waiting);
     * one target goes meanwhile. */
    {
        const char *argv[] = {"flotilla", "dispatch", bundle, "--selector",
                              "", "--json", "--timeout", "1s", NULL};
        d = s_dispatch_argv(f, argv, 1);
        /* --json says what it knows when time is up: the id first. */
        assert_true(json_is_false(json_object_get(d, "complete")));
        assert_non_null(strstr(json_string_value(json_object_get(d, "error")),
                               "within --timeout"));
        id = fl_strdup(json_string_value(json_object_get(d, "id")));
        assert_non_null(id);
        json_decref(d);
    }
    fl_fleet_dropdb(f, 0, dbs[1]);
    fl_fleet_start_agent(f, k);
    {
        const char *argv[] = {"flotilla", "dispatch", "--attach", id,
                              "--json", NULL};
        const json_t *r = NULL;
        const char *status = NULL, *error = NULL;

        d = s_dispatch_argv(f, argv, 3);
        assert_true(json_is_true(json_object_get(d, "complete")));
        assert_int_equal(s_succeeded(d), 1);
        assert_string_equal(s_result_status(d, names[0]), "ok");
        r = fl_fleet_row(json_object_get(d, "results"), "target", names[1]);
        assert_non_null(r);
        status = json_string_value(json_object_get(r, "status"));
        error = json_string_value(json_object_get(r, "error"));
        if (status == NULL || strcmp(status, "refused") != 0 ||
            error == NULL || strstr(error, "is not owned by agent") == NULL ||
            strstr(error, dbs[1]) == NULL ||
            !json_is_string(json_object_get(r, "hint")))
            fail_msg("the lost target's result: %s, %s", status ? status
                     : "(none)", error ? error : "(no error)");
    }
    assert_int_equal(s_applied(f, 0, dbs[0], ""), 1);
    assert_int_equal(s_executed(f, 0, dbs[0], "", 1), 1);
    json_decref(d);
    free(id);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/* Waits until n of the shard's flotilla sessions sleep in a migration. */
static void
s_wait_sleepers(fl_fleet_t *f, int shard, int n)
{
    int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                 fl_test_timeout_scale());

    while (fl_fleet_sleepers(f, shard) < n) {
        if (fl_clock_ms() > deadline)
            fail_msg("%d migrations were not running within 60 s", n);
        fl_clock_sleep_ms(20);
    }
}

/*
 * An agent killed with kill -9 in the middle of a dispatch (its
 * migrations running) and restarted carries them out once; killed again
 * after finishing but before the coordinator (stopped) acknowledged its
 * results, it sends them again after its restart, and forgets them only
 * once they are acknowledged.
 */
static void
test_fleet_agent_kill9_mid_dispatch_and_unacknowledged_results(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbs[3][64], tail[256], *bundle1 = NULL, *bundle2 = NULL;
    char *out = NULL;
    pid_t cli;
    int k;
    const char *const v1[] = {
        "0001_slow.sql",
        "-- flotilla:up\nCREATE TABLE slow_t (id int);\nSELECT pg_sleep(2);\n"
        "-- flotilla:down\nDROP TABLE slow_t;\n",
        NULL};
    const char *const v2[] = {
        "0001_slow.sql",
        "-- flotilla:up\nCREATE TABLE slow_t (id int);\nSELECT pg_sleep(2);\n"
        "-- flotilla:down\nDROP TABLE slow_t;\n",
        "0002_slow.sql",
        "-- flotilla:up\nALTER TABLE slow_t ADD COLUMN v int;\n"
        "SELECT pg_sleep(1);\n"
        "-- flotilla:down\nALTER TABLE slow_t DROP COLUMN v;\n",
        NULL};

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    for (int i = 0; i < 3; i++) {
        snprintf(dbs[i], 64, "%s_k%d", s->p, i);
        fl_fleet_createdb(f, 0, dbs[i]);
    }
    snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_k*\"\n",
             s->p);
    k = fl_fleet_add_agent(f, "killed", 0, 1, tail);
    fl_fleet_start_agent(f, k);
    {
        char names[3][96];
        const char *all[4];
        for (int i = 0; i < 3; i++) {
            snprintf(names[i], 96, "killed/%s", dbs[i]);
            all[i] = names[i];
        }
        all[3] = NULL;
        s_wait_targets(f, all, "reachable", "the agent's targets");
    }
    bundle1 = s_bundle(f, f->key, "slow1", v1);
    bundle2 = s_bundle(f, f->key, "slow2", v2);

    /* kill -9 while the three migrations sleep inside their transactions */
    {
        const char *argv[] = {"flotilla", "dispatch", bundle1, "--selector",
                              "agent=killed", NULL};
        out = fl_fleet_path(f, "dispatch1.out");
        cli = fl_fleet_cli_spawn(f, argv, out);
    }
    s_wait_sleepers(f, 0, 3);
    fl_fleet_signal_agent(f, k, SIGKILL);
    fl_fleet_start_agent(f, k);
    fl_fleet_wait_log(f->agents[k].log, "3 commands to carry out again", 30);
    if (fl_fleet_wait_pid(cli, 120) != 0)
        fail_msg("dispatch 1 failed; see %s", out);
    free(out);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s_applied(f, 0, dbs[i], ""), 1);
        assert_int_equal(s_executed(f, 0, dbs[i], "", 1), 1);
    }
    /* The restarted agent reported its targets as their ledgers are. */
    {
        json_t *rows = fl_fleet_json(f, "targets", NULL);
        assert_int_equal(json_array_size(rows), 3);
        for (int i = 0; i < 3; i++) {
            char name[96];
            const json_t *r = NULL;
            snprintf(name, sizeof(name), "killed/%.63s", dbs[i]);
            r = fl_fleet_row(rows, "target", name);
            assert_non_null(r);
            assert_string_equal(json_string_value(json_object_get(
                                    r, "reachability")), "reachable");
            assert_string_equal(json_string_value(json_object_get(
                                    r, "applied_version")), "1");
            assert_string_equal(json_string_value(json_object_get(
                                    r, "drift")), "current");
        }
        json_decref(rows);
    }

    /* Results that were never acknowledged survive a kill -9. */
    {
        const char *argv[] = {"flotilla", "dispatch", bundle2, "--selector",
                              "agent=killed", NULL};
        out = fl_fleet_path(f, "dispatch2.out");
        cli = fl_fleet_cli_spawn(f, argv, out);
    }
    s_wait_sleepers(f, 0, 3);
    fl_fleet_signal_coordinator(f, SIGSTOP);
    {
        int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                     fl_test_timeout_scale());
        while (fl_fleet_journal_files(f, k, ".res") < 3) {
            if (fl_clock_ms() > deadline)
                fail_msg("the agent did not journal its 3 results");
            fl_clock_sleep_ms(20);
        }
    }
    fl_fleet_signal_agent(f, k, SIGKILL);
    fl_fleet_signal_coordinator(f, SIGCONT);
    fl_fleet_start_agent(f, k);
    fl_fleet_wait_log(f->agents[k].log, "journal: 3 results to send again",
                      30);
    if (fl_fleet_wait_pid(cli, 120) != 0)
        fail_msg("dispatch 2 failed; see %s", out);
    free(out);
    {
        /* Acknowledged: the journal forgets them. */
        int64_t deadline = fl_clock_ms() + (int64_t)(30000 *
                                                     fl_test_timeout_scale());
        while (fl_fleet_journal_files(f, k, ".res") +
                   fl_fleet_journal_files(f, k, ".cmd") > 0) {
            if (fl_clock_ms() > deadline)
                fail_msg("the journal still holds acknowledged results");
            fl_clock_sleep_ms(20);
        }
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s_applied(f, 0, dbs[i], ""), 2);
        assert_int_equal(s_executed(f, 0, dbs[i], "", 1), 1);
        assert_int_equal(s_executed(f, 0, dbs[i], "", 2), 1);
    }
    free(bundle1);
    free(bundle2);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * The coordinator killed with kill -9 in the middle of a dispatch, some
 * results recorded and some migrations still running, and restarted:
 * every recorded result is kept, the dispatch finishes, the operator's
 * `flotilla dispatch` waits through the restart, and nothing is applied
 * (or even sent) twice.
 */
static void
test_fleet_coordinator_kill9_mid_dispatch(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbs[4][64], tail[256], *bundle = NULL, *out = NULL, *before = NULL,
                                *after = NULL;
    pid_t cli;
    PGconn *ctl = NULL;
    const char *const files[] = {
        "0001_mixed.sql",
        "-- flotilla:up\nCREATE TABLE mixed_t (id int);\n"
        "SELECT pg_sleep(CASE WHEN current_database() LIKE '%_slow%' THEN 3 "
        "ELSE 0 END);\n"
        "-- flotilla:down\nDROP TABLE mixed_t;\n",
        NULL};

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    for (int a = 0; a < 2; a++) {
        char name[16];
        snprintf(dbs[2 * a], 64, "%s_m%d_fast", s->p, a);
        snprintf(dbs[2 * a + 1], 64, "%s_m%d_slow", s->p, a);
        fl_fleet_createdb(f, a, dbs[2 * a]);
        fl_fleet_createdb(f, a, dbs[2 * a + 1]);
        snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_m%d_*\"\n",
                 s->p, a);
        snprintf(name, sizeof(name), "crash-%d", a);
        fl_fleet_start_agent(f, fl_fleet_add_agent(f, name, a, 1, tail));
    }
    {
        char names[4][96];
        const char *all[5];
        for (int i = 0; i < 4; i++) {
            snprintf(names[i], 96, "crash-%d/%s", i / 2, dbs[i]);
            all[i] = names[i];
        }
        all[4] = NULL;
        s_wait_targets(f, all, "reachable", "both agents' targets");
    }
    bundle = s_bundle(f, f->key, "mixed", files);
    {
        const char *argv[] = {"flotilla", "dispatch", bundle, "--selector",
                              "", "--json", NULL};
        out = fl_fleet_path(f, "dispatch.out");
        cli = fl_fleet_cli_spawn(f, argv, out);
    }
    /* Both fast results recorded, both slow migrations running. */
    ctl = PQconnectdb(f->ctl.conninfo);
    {
        int64_t deadline = fl_clock_ms() + (int64_t)(60000 *
                                                     fl_test_timeout_scale());
        for (;;) {
            char *v = fl_test_query_value(ctl, "SELECT count(*) FROM "
                                          "flotilla_control.commands WHERE "
                                          "status = 'ok'");
            int n = (int)strtol(v, NULL, 10);
            free(v);
            if (n >= 2)
                break;
            if (fl_clock_ms() > deadline)
                fail_msg("no result was recorded within 60 s");
            fl_clock_sleep_ms(20);
        }
    }
    s_wait_sleepers(f, 0, 1);
    before = fl_test_query_value(ctl, "SELECT string_agg(target || ':' || "
                                 "status || ':' || version, ',' ORDER BY "
                                 "target) FROM flotilla_control.commands "
                                 "WHERE status <> 'pending'");
    fl_fleet_signal_coordinator(f, SIGKILL);
    fl_fleet_start_coordinator(f);
    if (fl_fleet_wait_pid(cli, 120) != 0)
        fail_msg("the dispatch did not succeed through the restart; see %s",
                 out);
    /* Every result recorded before the kill is still there, unchanged. */
    after = fl_test_query_value(ctl, "SELECT string_agg(target || ':' || "
                                "status || ':' || version, ',' ORDER BY "
                                "target) FROM flotilla_control.commands "
                                "WHERE status <> 'pending'");
    {
        char *b = fl_asprintf("%s,", before), *a = fl_asprintf(",%s,", after);
        char *save = NULL;
        for (char *t = strtok_r(b, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            char *needle = fl_asprintf(",%s,", t);
            if (strstr(a, needle) == NULL)
                fail_msg("result %s, recorded before the kill, is not kept: "
                         "%s", t, after);
            free(needle);
        }
        free(a);
        free(b);
    }
    free(after);
    after = fl_test_query_value(ctl, "SELECT count(*) FROM "
                                "flotilla_control.commands WHERE status = "
                                "'ok'");
    assert_string_equal(after, "4");
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s_applied(f, i / 2, dbs[i], ""), 1);
        assert_int_equal(s_executed(f, i / 2, dbs[i], "", 1), 1);
    }
    /* Not even sent twice: no agent had to answer from its ledger. */
    for (int a = 0; a < 2; a++)
        assert_int_equal(fl_fleet_log_count(f->agents[a].log,
                                            "already carried out"), 0);
    free(after);
    free(before);
    PQfinish(ctl);
    free(out);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/* Sends until the link takes the message. */
static void
s_link_send(fl_link_t *l, const void *data, size_t len)
{
    for (int i = 0; i < 500; i++) {
        int rc = fl_link_send(l, NULL, 0, data, len, NULL);
        if (rc == 0)
            return;
        fl_clock_sleep_ms(10);
    }
    fail_msg("the raw client could not send");
}

/*
 * A fleet of the coordinator and one agent named name, started, owning
 * one database of shard 1 (dbname gets its name: PREFIX_suffix) as
 * target NAME/db, reachable.  Returns the agent's index.
 */
static int
s_one_agent_fleet_with(s_state *s, const char *conf, const char *name,
                       const char *suffix, char *dbname, size_t size)
{
    fl_fleet_t *f = &s->f;
    char tail[256], target[80];
    int a;

    fl_fleet_open(f, s->p, conf);
    fl_fleet_start_coordinator(f);
    snprintf(dbname, size, "%s_%s", s->p, suffix);
    fl_fleet_createdb(f, 1, dbname);
    snprintf(target, sizeof(target), "%s/db", name);
    snprintf(tail, sizeof(tail), "targets:\n  - name: %s\n    dsn: "
             "\"%s dbname=%s\"\n", target, f->shards[1], dbname);
    a = fl_fleet_add_agent(f, name, 1, 1, tail);
    fl_fleet_start_agent(f, a);
    {
        const char *names[] = {target, NULL};
        s_wait_targets(f, names, "reachable", "the agent's target");
    }
    return a;
}

/* The same, the coordinator's configuration as by default. */
static int
s_one_agent_fleet(s_state *s, const char *name, const char *suffix,
                  char *dbname, size_t size)
{
    return s_one_agent_fleet_with(s, NULL, name, suffix, dbname, size);
}

/*
 * An agent given a bundle whose migration is as deep as PostgreSQL runs
 * (a chain of 12,000 "+", max_stack_depth raised to 7MB for it) applies
 * it: its worker threads analyzed the SQL on an 8 MB stack and the
 * agent died of the overflow, at every restart again (the bundle came
 * back with the command).  Its workers now have the stack parse trees
 * need (common/thread.h).
 */
static void
test_fleet_an_agent_applies_a_deep_statement(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbname[64], *bundle = NULL;
    fl_buf_t up = FL_BUF_INIT(0);
    json_t *d = NULL;

    fl_buf_addf(&up, "-- flotilla:up\nSET LOCAL max_stack_depth = '7MB';\n"
                     "CREATE TABLE deep AS SELECT 1");
    for (int i = 1; i < 12000; i++)
        fl_buf_addf(&up, "+1");
    fl_buf_addf(&up, " AS n;\n-- flotilla:down\nDROP TABLE deep;\n");
    s_one_agent_fleet(s, "deep", "d", dbname, sizeof(dbname));
    {
        const char *const files[] = {"0001_deep.sql", fl_buf_str(&up), NULL};
        bundle = s_bundle(f, f->key, "deep", files);
    }
    d = s_dispatch_json(f, bundle, "", 0);
    assert_string_equal(s_result_status(d, "deep/db"), "ok");
    json_decref(d);
    assert_int_equal(s_executed(f, 1, dbname, "", 1), 1);
    {
        char *v = fl_fleet_query(f, 1, dbname, "SELECT n FROM deep");
        assert_non_null(v);
        assert_string_equal(v, "12000");
        free(v);
    }
    fl_buf_release(&up);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * Discovery leaves out flotilla's own schemas, flotilla and
 * flotilla_backup, and nothing else: a tenant's schema whose name starts
 * with "flotilla" is a tenant like any other.  In a database where
 * flotilla's two schemas exist (the tenant acme migrated by hand), an
 * agent discovering every schema ("*") finds flotillacorp, acme and
 * public, nothing more, and a dispatch migrates flotillacorp.  Before,
 * every schema whose name began with "flotilla" was left out:
 * flotillacorp was never a target, never migrated, and no rollout said
 * so.
 */
/* Whether the targets named in arg (the first four with 6,001 ledger
 * rows, the others with one) are reachable at those versions. */
static int
s_hello_parts_in(const json_t *rows, void *arg)
{
    const char *const *names = arg;

    for (int i = 0; names[i] != NULL; i++) {
        const json_t *r = fl_fleet_row(rows, "target", names[i]);
        const char *v = json_string_value(json_object_get(
            r, "applied_version"));
        const char *reach = json_string_value(json_object_get(
            r, "reachability"));

        if (v == NULL || strcmp(v, i < 4 ? "6001" : "1") != 0 ||
            reach == NULL || strcmp(reach, "reachable") != 0)
            return 0;
    }
    return 1;
}

/*
 * An agent whose ledgers pass the coordinator's message limit says hello
 * all the same, in parts: four tenants of 6,001 ledger rows each (about
 * 680 KB apiece) and two of one, behind a coordinator whose max_message
 * is 1 MiB.  An agent's first hello has no ledgers (it reads them once
 * welcomed, and sends each alone); the hello that carries them all is
 * the one to a restarted coordinator.  After the restart every target
 * is reachable again with its whole ledger, as the control database and
 * `targets` show.  Before, that hello of about 2.7 MB was dropped at the
 * coordinator's socket, at every try: the agent never came back.
 */
static void
test_fleet_a_hello_past_the_message_limit_comes_in_parts(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbs[6][64], names[6][96], *bundle = NULL;
    const char *all[7];
    const char *const files[] = {
        "0001_t.sql", "-- flotilla:up\nCREATE TABLE t (id int);\n"
                      "-- flotilla:down\nDROP TABLE t;\n", NULL};
    json_t *d = NULL;
    int a = 0;

    a = s_discover_fleet(s, "max_message: 1MiB\n", "big", 1, "h", 6, dbs,
                         names, all);
    bundle = s_bundle(f, f->key, "hp", files);
    d = s_dispatch_json(f, bundle, "", 0);
    json_decref(d);
    fl_fleet_signal_agent(f, a, SIGTERM);
    for (int i = 0; i < 4; i++) {
        PGconn *c = fl_fleet_connect(f, 1, dbs[i]);
        /* Version 1's row again as versions 2 to 6001 (every column
         * but the generated ones). */
        fl_test_exec(c, "DO $$ DECLARE c text; r text; BEGIN"
                        " SELECT string_agg(quote_ident(column_name), ','"
                        " ORDER BY ordinal_position), string_agg('r.' ||"
                        " quote_ident(column_name), ',' ORDER BY"
                        " ordinal_position) INTO c, r FROM"
                        " information_schema.columns WHERE table_schema ="
                        " 'flotilla' AND table_name = 'schema_migrations'"
                        " AND is_generated = 'NEVER';"
                        " EXECUTE format('INSERT INTO flotilla."
                        "schema_migrations (%s) SELECT %s FROM"
                        " flotilla.schema_migrations m, generate_series(1,"
                        " 6000) g, LATERAL jsonb_populate_record("
                        "NULL::flotilla.schema_migrations, to_jsonb(m) ||"
                        " jsonb_build_object(''version'', g + 1)) r', c,"
                        " r); END $$");
        PQfinish(c);
    }
    fl_fleet_start_agent(f, a);
    fl_fleet_wait(f, "targets", s_hello_parts_in, all, 60,
                  "the six targets reachable with their whole ledgers");
    /* The agent holds the ledgers now: its hello to a restarted
     * coordinator carries them all. */
    fl_fleet_signal_coordinator(f, SIGTERM);
    fl_fleet_start_coordinator(f);
    fl_fleet_wait(f, "targets", s_hello_parts_in, all, 60,
                  "the six targets reachable again after the restart");
    assert_true(fl_fleet_log_count(f->agents[a].log, "hello sent: 6 "
                                   "targets in ") >= 2);
    /* The control database has them too, once its writer has. */
    {
        PGconn *c = fl_test_db_connect(&f->ctl);
        int64_t deadline = fl_clock_ms() + (int64_t)(30000 *
                                                     fl_test_timeout_scale());
        char *v = NULL;

        for (;;) {
            v = fl_test_query_value(c, "SELECT sum(jsonb_array_length("
                                       "ledger)) FROM flotilla_control."
                                       "targets");
            if ((v != NULL && strcmp(v, "24006") == 0) ||
                fl_clock_ms() > deadline)
                break;
            free(v);
            fl_clock_sleep_ms(100);
        }
        if (v == NULL || strcmp(v, "24006") != 0)
            fail_msg("the control database holds %s ledger rows, not "
                     "24006", v ? v : "no");
        free(v);
        PQfinish(c);
    }
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

static void
test_fleet_discovery_leaves_out_flotillas_schemas_only(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *const files[] = {
        "0001_t.sql",
        "-- flotilla:up\nCREATE TABLE t (i int);\nINSERT INTO t VALUES (1);\n"
        "-- flotilla:down\nDROP TABLE t;\n",
        "0002_u.sql",
        "-- flotilla:up\nUPDATE t SET i = 2;\n"
        "-- flotilla:down\nUPDATE t SET i = 1;\n", NULL};
    const char *const names[] = {"sch/flotillacorp", "sch/acme", NULL};
    char db[64], tail[256], *bundle = NULL, *dir = NULL, *dsn = NULL;
    fl_test_proc_t r;
    json_t *d = NULL, *rows = NULL;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    snprintf(db, sizeof(db), "%s_s", s->p);
    fl_fleet_createdb(f, 1, db);
    {
        PGconn *c = fl_fleet_connect(f, 1, db);
        fl_test_exec(c, "CREATE SCHEMA flotillacorp; CREATE SCHEMA acme");
        PQfinish(c);
    }
    /* acme migrated by hand first: the ledger and a backup make
     * flotilla's two schemas before the agent's first discovery. */
    dir = s_migrations(f, "m", files);
    dsn = fl_asprintf("%s dbname=%s", f->shards[1], db);
    {
        const char *argv[] = {"flotilla", "apply", "--db", dsn, "--schema",
                              "acme", "--log-file", "", "--dir", dir, NULL};
        fl_test_run(&r, "flotilla", argv, NULL, 120);
        fl_test_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
    }
    assert_int_equal(s_count(f, 1, db, "SELECT count(*) FROM"
                                       " pg_namespace WHERE nspname IN"
                                       " ('flotilla', 'flotilla_backup')"),
                     2);
    snprintf(tail, sizeof(tail),
             "discover:\n"
             "  - schemas: \"*\"\n"
             "    database: %s\n"
             "    name: \"{agent}/{schema}\"\n", db);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "sch", 1, 1, tail));
    s_wait_targets(f, names, "reachable", "both tenant schemas");
    /* Found by the same discovery: nothing else is a target. */
    rows = fl_fleet_json(f, "targets", NULL);
    assert_int_equal(json_array_size(rows), 3); /* and public */
    assert_non_null(fl_fleet_row(rows, "target", "sch/public"));
    json_decref(rows);
    bundle = s_bundle(f, f->key, "sch", files);
    d = s_dispatch_json(f, bundle, "", 0);
    for (int i = 0; names[i] != NULL; i++)
        assert_string_equal(s_result_status(d, names[i]), "ok");
    json_decref(d);
    assert_int_equal(s_executed(f, 1, db, "flotillacorp", 2), 1);
    assert_int_equal(s_executed(f, 1, db, "acme", 2), 1);
    free(bundle);
    free(dir);
    free(dsn);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/* `flotilla rollout ARGV... --json`, which must exit want (-1: any): its
 * JSON (new). */
static json_t *
s_rollout_json(fl_fleet_t *f, const char *const *args, int want)
{
    const char *argv[16] = {"flotilla", "rollout"};
    fl_test_proc_t res = {0, NULL, NULL};
    json_t *j = NULL;
    int n = 2;

    for (int i = 0; args[i] != NULL && n < 14; i++)
        argv[n++] = args[i];
    argv[n++] = "--json";
    argv[n] = NULL;
    fl_fleet_cli(f, &res, argv);
    if ((want >= 0 && res.status != want) ||
        (j = json_loads(res.out, 0, NULL)) == NULL)
        fail_msg("flotilla rollout %s: exit %d\n%s\n%s", args[0],
                 res.status, res.out, res.err);
    fl_test_proc_release(&res);
    return j;
}

/*
 * A rollback is never settled from a target's ledger while the target's
 * apply is still open.  Two agents, a tenant each, one command in flight
 * per agent (agent_window 1), on_failure rollback: t1 is refused (a NULL
 * where the migration sets NOT NULL), t2's apply runs (15 s asleep);
 * the automatic rollback's commands are released but wait behind t2's
 * apply, and the coordinator is killed and restarted: it takes the
 * released ones for sent.  At the agent's hello, t2's rollback was not
 * held and t2's ledger showed nothing applied yet (its apply running):
 * it was settled "rolled back" without being sent, then the apply
 * committed, and the rollout said rolled_back over an applied target
 * (found by a read-only audit).  Now it is sent after the apply, and t2
 * ends rolled back.
 */
static void
test_fleet_a_rollback_is_not_settled_while_the_apply_runs(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *const files[] = {
        "0001_nn.sql",
        "-- flotilla:options allow=adding-not-nullable-field the test's\n"
        "-- flotilla:up\n"
        "SELECT pg_sleep(15) FROM items WHERE id = 1 AND note = 'hold';\n"
        "ALTER TABLE items ALTER COLUMN note SET NOT NULL;\n"
        "-- flotilla:down\n"
        "ALTER TABLE items ALTER COLUMN note DROP NOT NULL;\n",
        NULL};
    char db[2][64], target[2][96], tail[256], *b = NULL, *id = NULL;
    const char *names[] = {target[0], target[1], NULL};
    json_t *j = NULL;
    int64_t until = 0;

    fl_fleet_open(f, s->p, "agent_window: 1\n");
    fl_fleet_start_coordinator(f);
    for (int i = 0; i < 2; i++) {
        char *sql = NULL;
        PGconn *c = NULL;

        /* t1 on shard 1 (agent-1), t2 on shard 0 (agent-0). */
        snprintf(db[i], sizeof(db[i]), "%s_rbw%d", s->p, i + 1);
        snprintf(target[i], sizeof(target[i]), "agent-%d/%s", 1 - i, db[i]);
        fl_fleet_createdb(f, 1 - i, db[i]);
        c = fl_fleet_connect(f, 1 - i, db[i]);

        sql = fl_asprintf("CREATE TABLE items (id int PRIMARY KEY, note"
                          " text); INSERT INTO items VALUES (1, %s)",
                          i == 0 ? "NULL" : "'hold'");
        fl_test_exec(c, sql);
        PQfinish(c);
        free(sql);
    }
    for (int k = 0; k < 2; k++) {
        char name[16];

        snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_rbw%d\"\n",
                 s->p, 2 - k);
        snprintf(name, sizeof(name), "agent-%d", k);
        fl_fleet_start_agent(f, fl_fleet_add_agent(f, name, k, 1, tail));
    }
    s_wait_targets(f, names, "reachable", "the agent's targets");
    b = s_bundle(f, f->key, "rbwin", files);
    {
        const char *start[] = {"start", b, "--selector", "", "--waves",
                               "100%", "--on-failure", "rollback", NULL};
        j = s_rollout_json(f, start, 0);
        id = fl_strdup(json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    /* t2 asleep, and the rollback under way (its releases written). */
    until = fl_clock_ms() + 60000;
    for (;;) {
        const char *st[] = {"status", id, NULL};
        const char *status = NULL;
        int ok = 0;

        j = s_rollout_json(f, st, -1);
        status = json_string_value(json_object_get(j, "status"));
        ok = status != NULL && strcmp(status, "rolling_back") == 0 &&
             fl_fleet_sleepers(f, 0) == 1;
        json_decref(j);
        if (ok)
            break;
        if (fl_clock_ms() > until)
            fail_msg("no rollback under way beside t2's apply in 60 s");
        fl_clock_sleep_ms(100);
    }
    fl_clock_sleep_ms(1000);
    fl_fleet_signal_coordinator(f, SIGKILL);
    fl_fleet_start_coordinator(f);
    {
        const char *w[] = {"watch", id, "--timeout", "120s", NULL};
        j = s_rollout_json(f, w, -1);
        json_decref(j);
    }
    /* The apply's statement over (it ran on, before, past the watch). */
    until = fl_clock_ms() + 60000;
    while (fl_fleet_sleepers(f, 0) > 0 && fl_clock_ms() < until)
        fl_clock_sleep_ms(100);
    fl_clock_sleep_ms(1000);
    /* t2's apply committed, then its rollback ran: NOT NULL is gone. */
    if (s_count(f, 0, db[1], "SELECT count(*) FROM pg_attribute WHERE"
                " attrelid = 'items'::regclass AND attname = 'note' AND"
                " attnotnull") != 0)
        fail_msg("%s is left applied after the rollout's rollback",
                 target[1]);
    assert_int_equal(s_count(f, 0, db[1], "SELECT count(*) FROM"
                             " flotilla.schema_migrations WHERE status ="
                             " 'rolled_back'"), 1);
    fl_fleet_stop_clean(f);
    free(id);
    free(b);
    s->passed = 1;
}

/*
 * A command carried out again from the journal waits for the target's
 * discovery when the first discovery after a restart fails.  A tenant
 * schema's apply of two migrations, killed (kill -9) with the first
 * committed and the second asleep; the tenant's database renamed away
 * while the agent starts again (its discovery rule cannot run), then
 * back.  Before, the journaled command was refused "nothing ran on it"
 * at once, though its first migration had committed (found by a
 * read-only audit); now it waits, and finishes the apply.
 */
static void
test_fleet_a_journaled_command_waits_for_its_target_s_discovery(
    void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *const files[] = {
        "0001_a.sql",
        "-- flotilla:up\nCREATE TABLE a1 (i int);\n"
        "-- flotilla:down\nDROP TABLE a1;\n",
        "0002_b.sql",
        "-- flotilla:up\nSELECT pg_sleep(30);\nCREATE TABLE b1 (i int);\n"
        "-- flotilla:down\nDROP TABLE b1;\n",
        NULL};
    char db[64], away[80], tail[256], target[128], *b = NULL;
    char *out = NULL, *sql = NULL;
    const char *names[] = {target, NULL};
    unsigned char *said = NULL;
    size_t len = 0;
    json_t *d = NULL;
    pid_t pid;
    int a, k;
    PGconn *c = NULL;

    fl_fleet_open(f, s->p, NULL);
    out = fl_fleet_path(f, "parked-dispatch.out");
    fl_fleet_start_coordinator(f);
    snprintf(db, sizeof(db), "%s_park", s->p);
    snprintf(away, sizeof(away), "%s_away", db);
    snprintf(target, sizeof(target), "agent-0/%s/tenant_p", db);
    fl_fleet_createdb(f, 0, db);
    c = fl_fleet_connect(f, 0, db);
    fl_test_exec(c, "CREATE SCHEMA tenant_p");
    PQfinish(c);
    snprintf(tail, sizeof(tail), "discovery_interval: 200ms\n"
             "discover:\n  - schemas: \"tenant_*\"\n    database: %s\n", db);
    a = fl_fleet_add_agent(f, "agent-0", 0, 1, tail);
    fl_fleet_start_agent(f, a);
    s_wait_targets(f, names, "reachable", "the tenant's schema");
    b = s_bundle(f, f->key, "parked", files);
    {
        const char *argv[] = {"flotilla", "dispatch", b, "--selector", "",
                              "--json", NULL};
        pid = fl_fleet_cli_spawn(f, argv, out);
    }
    for (k = 0; k < 600 && fl_fleet_sleepers(f, 0) < 1; k++)
        fl_clock_sleep_ms(100);
    assert_int_equal(s_count(f, 0, db, "SELECT count(*) FROM"
                             " flotilla.schema_migrations WHERE version ="
                             " '1' AND status = 'applied'"), 1);
    fl_fleet_signal_agent(f, a, SIGKILL);
    sql = fl_asprintf("SELECT count(pg_terminate_backend(pid)) FROM"
                      " pg_stat_activity WHERE datname = '%s'", db);
    free(fl_fleet_query(f, 0, "postgres", sql));
    free(sql);
    c = fl_fleet_connect(f, 0, "postgres");
    sql = fl_asprintf("ALTER DATABASE %s RENAME TO %s", db, away);
    fl_test_exec(c, sql);
    free(sql);
    fl_fleet_start_agent(f, a);
    fl_clock_sleep_ms(2000); /* discoveries fail, the journal is read */
    sql = fl_asprintf("ALTER DATABASE %s RENAME TO %s", away, db);
    fl_test_exec(c, sql);
    free(sql);
    PQfinish(c);
    assert_int_equal(fl_fleet_wait_pid(pid, 180), 0);
    if (fl_file_read(&said, &len, out, 1 << 20, "dispatch output",
                     NULL) != 0 ||
        (d = json_loads((const char *)said, 0, NULL)) == NULL)
        fail_msg("the dispatch printed no JSON: %s", said);
    s_expect_result(d, target, "ok", NULL);
    json_decref(d);
    assert_int_equal(s_count(f, 0, db, "SELECT count(*) FROM"
                             " flotilla.schema_migrations WHERE status ="
                             " 'applied'"), 2);
    fl_fleet_stop_clean(f);
    free(said);
    free(out);
    free(b);
    s->passed = 1;
}

/*
 * Starts a rollout of bundle (a migration that sleeps) on the targets
 * selector selects, waits until its statement sleeps on shard 1, then
 * cuts the proxy in front of it off (cut(px, 1): fl_test_proxy_stall or
 * _freeze) and halts the rollout with --abort.  Returns its id (new).
 */
static char *
s_abort_sleeper(fl_fleet_t *f, const char *bundle, const char *selector,
                fl_test_proxy_t *px, void (*cut)(fl_test_proxy_t *, int))
{
    const char *start[] = {"start", bundle, "--selector", selector, NULL};
    json_t *j = s_rollout_json(f, start, 0);
    char *id = fl_strdup(json_string_value(json_object_get(j, "id")));

    json_decref(j);
    s_wait_sleepers(f, 1, 1);
    cut(px, 1);
    {
        const char *halt[] = {"halt", id, "--abort", NULL};
        json_decref(s_rollout_json(f, halt, 0));
    }
    return id;
}

/* Waits (30 s, scaled) until no statement of the fleet sleeps on shard 1. */
static void
s_wait_no_sleeper(fl_fleet_t *f, const char *what)
{
    int64_t deadline = fl_clock_ms() +
                       (int64_t)(30000 * fl_test_timeout_scale());

    while (fl_fleet_sleepers(f, 1) > 0) {
        if (fl_clock_ms() > deadline)
            fail_msg("a statement still sleeps 30 s after %s", what);
        fl_clock_sleep_ms(50);
    }
}

/*
 * A cancel sent to a server that does not answer stalls nothing else.
 * An agent has two targets on one server, a through a proxy, b not; a's
 * migration sleeps; the proxy stops accepting connections (a server that
 * hangs, or a network that drops its packets, does the same to a cancel
 * request, a connection of its own); `rollout halt --abort` makes the
 * agent cancel a's statement.  The agent's loop sent the request itself
 * and waited for the server's answer: every other target waited with it,
 * and a rollout on b never ran.  Now the request waits on a thread of its
 * own: b's rollout completes while a's request waits, and once the proxy
 * accepts again the request goes through and a's statement stops.
 */
static void
test_fleet_a_cancel_to_a_server_that_hangs_stalls_nothing_else(
    void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *const sleep_files[] = {
        "0001_sleep.sql",
        "-- flotilla:up\nSELECT pg_sleep(600);\n"
        "-- flotilla:down\nSELECT 1;\n", NULL};
    const char *const quick_files[] = {
        "0001_q.sql",
        "-- flotilla:up\nCREATE TABLE q (i int);\n"
        "-- flotilla:down\nDROP TABLE q;\n", NULL};
    const char *const names[] = {"hang/a", "hang/b", NULL};
    fl_test_proxy_t *px = NULL;
    char db[2][64], tail[1024], *bundle[2], *id = NULL;
    json_t *j = NULL;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    px = fl_fleet_proxy_to_shard(f, 1);
    for (int i = 0; i < 2; i++) {
        snprintf(db[i], sizeof(db[i]), "%s_%c", s->p, "ab"[i]);
        fl_fleet_createdb(f, 1, db[i]);
    }
    snprintf(tail, sizeof(tail),
             "targets:\n"
             "  - name: hang/a\n    dsn: \"%s dbname=%s %s\"\n"
             "    labels: [t=a]\n"
             "  - name: hang/b\n    dsn: \"%s dbname=%s\"\n"
             "    labels: [t=b]\n",
             f->shards[1], db[0], fl_test_proxy_conninfo(px), f->shards[1],
             db[1]);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "hang", 1, 1, tail));
    s_wait_targets(f, names, "reachable", "both targets");
    bundle[0] = s_bundle(f, f->key, "sleep", sleep_files);
    bundle[1] = s_bundle(f, f->key, "quick", quick_files);
    id = s_abort_sleeper(f, bundle[0], "t=a", px, fl_test_proxy_stall);
    {
        const char *args[] = {"start", bundle[1], "--selector", "t=b",
                              "--watch", NULL};
        j = s_rollout_json(f, args, 0);
        assert_string_equal(json_string_value(json_object_get(j, "status")),
                            "completed");
        json_decref(j);
    }
    assert_int_equal(s_count(f, 1, db[1], "SELECT count(*) FROM pg_class"
                                          " WHERE relname = 'q'"), 1);
    /* a's statement runs on until its cancel gets through. */
    assert_int_equal(fl_fleet_sleepers(f, 1), 1);
    fl_test_proxy_stall(px, 0);
    s_wait_no_sleeper(f, "its cancel could get through");
    fl_fleet_stop_clean(f);
    fl_test_proxy_stop(&px);
    for (int i = 0; i < 2; i++)
        free(bundle[i]);
    free(id);
    s->passed = 1;
}

/* Whether `rollout status` says no command of the rollout is pending. */
static int
s_nothing_pending(fl_fleet_t *f, const char *id)
{
    const char *args[] = {"status", id, NULL};
    json_t *j = s_rollout_json(f, args, -1);
    int none = json_integer_value(json_object_get(
                   json_object_get(j, "accounting"), "pending")) == 0;

    json_decref(j);
    return none;
}

/*
 * A fleet of one agent (cancel_timeout 1 s) whose one target, NAME/a, is
 * reached through a proxy to shard 1 (*px); its bundle's migration
 * makes table z and sleeps (a new path in *bundle).
 */
static void
s_proxied_fleet(s_state *s, const char *name, fl_test_proxy_t **px,
                char **bundle)
{
    fl_fleet_t *f = &s->f;
    const char *const files[] = {
        "0001_sleep.sql",
        "-- flotilla:up\nCREATE TABLE z (i int);\nSELECT pg_sleep(600);\n"
        "-- flotilla:down\nDROP TABLE z;\n", NULL};
    char db[64], tail[512], target[64];
    const char *const names[] = {target, NULL};

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    *px = fl_fleet_proxy_to_shard(f, 1);
    snprintf(db, sizeof(db), "%s_a", s->p);
    snprintf(target, sizeof(target), "%s/a", name);
    fl_fleet_createdb(f, 1, db);
    snprintf(tail, sizeof(tail),
             "cancel_timeout: 1s\n"
             "targets:\n"
             "  - name: %s\n    dsn: \"%s dbname=%s %s\"\n",
             target, f->shards[1], db, fl_test_proxy_conninfo(*px));
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, name, 1, 1, tail));
    s_wait_targets(f, names, "reachable", "the target");
    *bundle = s_bundle(f, f->key, "sleep", files);
}

/*
 * A cancelled statement on a server that does not answer at all (its
 * host up, its processes stopped: here a proxy that freezes every
 * connection) cannot be stopped by a cancel request.  After the agent's
 * cancel_timeout the agent closes the statement's connection: the run
 * ends (the server rolls its transaction back when it runs again) and
 * the agent's worker is free.  Before, the worker waited in the
 * statement as long as the server did, and the rollout's command stayed
 * pending: a few such targets took every worker of the agent.
 */
static void
test_fleet_a_cancel_the_server_never_takes_closes_the_connection(
    void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    fl_test_proxy_t *px = NULL;
    char db[64], *bundle = NULL, *id = NULL;
    int64_t deadline = 0;

    s_proxied_fleet(s, "froz", &px, &bundle);
    snprintf(db, sizeof(db), "%s_a", s->p);
    id = s_abort_sleeper(f, bundle, "", px, fl_test_proxy_freeze);
    deadline = fl_clock_ms() + (int64_t)(30000 * fl_test_timeout_scale());
    while (!s_nothing_pending(f, id)) {
        if (fl_clock_ms() > deadline)
            fail_msg("the cancelled run still pending 30 s after halt "
                     "--abort, its server frozen");
        fl_clock_sleep_ms(200);
    }
    assert_int_equal(fl_fleet_log_count(f->agents[0].log,
                                        "did not end within"), 1);
    {
        const char *args[] = {"status", id, NULL};
        json_t *st = s_rollout_json(f, args, -1);
        const json_t *acc = json_object_get(st, "accounting");
        const json_t *fail = json_array_get(json_object_get(st, "failures"),
                                            0);
        const char *detail = json_string_value(json_object_get(fail,
                                                               "detail"));
        /* Failed, not cancelled: its state is known only later. */
        assert_int_equal(json_integer_value(json_object_get(acc, "failed")),
                         1);
        /* Said as what it is: the agent closed the connection. */
        if (detail == NULL || strstr(detail, "cancel_timeout") == NULL)
            fail_msg("the failure's detail does not say the agent closed "
                     "the connection: %s", detail ? detail : "(none)");
        assert_int_equal(json_integer_value(json_object_get(acc,
                                                            "cancelled")),
                         0);
        json_decref(st);
    }
    /* The statement still runs on the frozen server... */
    assert_int_equal(fl_fleet_sleepers(f, 1), 1);
    fl_test_proxy_freeze(px, 0);
    /* ...and ends once the server sees its connection closed. */
    s_wait_no_sleeper(f, "the thaw");
    assert_int_equal(s_count(f, 1, db, "SELECT count(*) FROM pg_class"
                                       " WHERE relname = 'z'"), 0);
    fl_fleet_stop_clean(f);
    fl_test_proxy_stop(&px);
    free(bundle);
    free(id);
    s->passed = 1;
}

/*
 * An agent stops (SIGTERM) while a statement of its runs on a server
 * that does not answer at all: it cancels the statement, and after
 * cancel_timeout closes its connection, so that its workers end and it
 * exits 0; the command stays in its journal for the next start.  Before,
 * it waited in the statement as long as the server did.
 */
static void
test_fleet_an_agent_stops_while_its_server_never_answers(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    fl_test_proxy_t *px = NULL;
    char *bundle = NULL;
    pid_t pid;

    s_proxied_fleet(s, "stop", &px, &bundle);
    {
        const char *args[] = {"start", bundle, "--selector", "", NULL};
        json_decref(s_rollout_json(f, args, 0));
    }
    s_wait_sleepers(f, 1, 1);
    fl_test_proxy_freeze(px, 1);
    pid = f->agents[0].pid;
    kill(pid, SIGTERM);
    assert_int_equal(fl_fleet_wait_pid(pid, 30), 0);
    f->agents[0].pid = 0;
    assert_int_equal(fl_fleet_log_count(f->agents[0].log,
                                        "did not end within"), 1);
    assert_int_equal(fl_fleet_journal_files(f, 0, ".cmd"), 1);
    fl_test_proxy_freeze(px, 0);
    s_wait_no_sleeper(f, "the thaw");
    free(bundle);
    fl_fleet_stop_clean(f);
    fl_test_proxy_stop(&px);
    s->passed = 1;
}

/*
 * A ledger read whose server never answers (here the proxy holds the
 * answer to the read of target a's six-row ledger, as a server whose
 * processes stopped mid-query would) is cut off after read_timeout: its
 * connection closed, the read fails (a shows "error"), its worker is
 * free, and the next read of a's ledger succeeds.  Before, the read and
 * its worker waited as long as the server did, and a's state was never
 * read again (one read per target at a time): with max_parallel such
 * reads the agent ran nothing else.
 */
static void
test_fleet_a_read_the_server_never_answers_is_cut_off(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *const names[] = {"rd/a", NULL};
    fl_test_proxy_t *px = NULL;
    char db[64], tail[512], **files = fl_fleet_table_migrations(6);
    char *bundle = NULL;
    s_targets_want error = {names, "error"}, ok = {names, "reachable"};
    json_t *d = NULL;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    px = fl_fleet_proxy_to_shard(f, 1);
    snprintf(db, sizeof(db), "%s_a", s->p);
    fl_fleet_createdb(f, 1, db);
    snprintf(tail, sizeof(tail),
             "read_timeout: 1s\n"
             "state_interval: 1h\n"
             "targets:\n"
             "  - name: rd/a\n    dsn: \"%s dbname=%s %s\"\n",
             f->shards[1], db, fl_test_proxy_conninfo(px));
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "rd", 1, 1, tail));
    s_wait_targets(f, names, "reachable", "the target");
    bundle = s_bundle(f, f->key, "six", (const char *const *)files);
    d = s_dispatch_json(f, bundle, "", 0);
    assert_string_equal(s_result_status(d, "rd/a"), "ok");
    json_decref(d);
    /* The next read of a's ledger: held once the server answered. */
    fl_test_proxy_hold(px, "SELECT 6", 1);
    fl_fleet_signal_agent(f, 0, SIGHUP);
    fl_fleet_wait(f, "targets", s_targets_are, &error, 30,
                  "the held read cut off (a in error)");
    assert_int_equal(fl_fleet_log_count(f->agents[0].log,
                                        "(read_timeout)"), 1);
    fl_test_proxy_release(px);
    fl_fleet_signal_agent(f, 0, SIGHUP);
    fl_fleet_wait(f, "targets", s_targets_are, &ok, 30,
                  "a read again after the cut");
    fl_fleet_files_free(files);
    free(bundle);
    fl_fleet_stop_clean(f);
    fl_test_proxy_stop(&px);
    s->passed = 1;
}

/*
 * A command's run whose ledger is locked by the tenant (here a session
 * holding its table of migrations) fails at the lock timeout, and the
 * read of the ledger its result carries, made again on a connection of
 * its own when the run's cannot, is cut off at read_timeout: the result
 * arrives.  Before, that second read had no timeout and was not among
 * the reads read_timeout cuts: the run, its worker and the target waited
 * as long as the tenant held the lock (any owner of a database could
 * stall an agent's workers so), and SIGTERM waited too.
 */
static void
test_fleet_a_run_s_ledger_read_is_cut_off_too(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *const names[] = {"lk/a", NULL};
    char db[64], tail[512], **one = fl_fleet_table_migrations(1);
    char **two = fl_fleet_table_migrations(2), *b1 = NULL, *b2 = NULL;
    PGconn *hold = NULL;
    json_t *d = NULL;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    snprintf(db, sizeof(db), "%s_lk", s->p);
    fl_fleet_createdb(f, 1, db);
    snprintf(tail, sizeof(tail),
             "read_timeout: 2s\n"
             "state_interval: 1h\n"
             "targets:\n"
             "  - name: lk/a\n    dsn: \"%s dbname=%s\"\n",
             f->shards[1], db);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "lk", 1, 1, tail));
    s_wait_targets(f, names, "reachable", "the target");
    b1 = s_bundle(f, f->key, "one", (const char *const *)one);
    d = s_dispatch_json(f, b1, "", 0);
    assert_string_equal(s_result_status(d, "lk/a"), "ok");
    json_decref(d);
    hold = fl_fleet_connect(f, 1, db);
    fl_test_exec(hold, "BEGIN");
    fl_test_exec(hold, "LOCK TABLE flotilla.schema_migrations IN ACCESS "
                       "EXCLUSIVE MODE");
    b2 = s_bundle(f, f->key, "two", (const char *const *)two);
    {
        const char *argv[] = {"flotilla", "dispatch", b2, "--selector", "",
                              "--timeout", "40s", "--json", NULL};
        d = s_dispatch_argv(f, argv, 1);
    }
    if (s_result_status(d, "lk/a") == NULL ||
        strcmp(s_result_status(d, "lk/a"), "failed") != 0)
        fail_msg("the run under a held ledger lock gave no result within "
                 "40 s: %s", json_dumps(d, 0));
    json_decref(d);
    fl_test_exec(hold, "ROLLBACK");
    PQfinish(hold);
    assert_int_equal(s_count(f, 1, db, "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'm2'"), 0);
    fl_fleet_files_free(one);
    fl_fleet_files_free(two);
    free(b1);
    free(b2);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * A raw client with agent i's enrolled key (it passes CURVE and ZAP but
 * is no flotilla-agent): a link to the coordinator, *cert its key.
 */
static fl_link_t *
s_raw_client(fl_fleet_t *f, int i, fl_cert_t **cert)
{
    char *secret = fl_asprintf("%s.cert_secret", f->agents[i].cert);
    char *server = fl_fleet_path(f, "coord.cert");
    char skey[FL_KEY_Z85_LEN + 1];
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    fl_link_t *l = NULL;

    assert_int_equal(fl_transport_init(NULL), 0);
    assert_int_equal(fl_cert_load_secret(cert, secret, NULL), 0);
    assert_int_equal(fl_cert_load_public(skey, server, NULL), 0);
    o.linger_ms = 0;
    assert_int_equal(fl_link_client(&l, f->agent_endpoint, *cert, skey, &o,
                                    1, NULL), 0);
    free(secret);
    free(server);
    return l;
}

/* Encodes m and sends it on l. */
static void
s_link_send_msg(fl_link_t *l, const fl_wire_msg_t *m)
{
    fl_buf_t b = FL_BUF_INIT(0);

    assert_int_equal(fl_wire_encode(&b, m, NULL), 0);
    s_link_send(l, b.data, b.len);
    fl_buf_release(&b);
}

/* A hello of one target t, as agent name, on l. */
static void
s_link_send_hello(fl_link_t *l, const char *name, fl_wire_target_t *t)
{
    fl_wire_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_HELLO;
    m.u.hello.agent = (char *)name;
    m.u.hello.targets = t;
    m.u.hello.ntargets = 1;
    s_link_send_msg(l, &m);
}

/*
 * An enrolled agent speaks for its own targets only (docs/fleet.md,
 * "Identity": a peer is its key, names are labels).  A rogue agent, an
 * enrolled key speaking the protocol, says hello under the steady
 * agent's very name, claiming the steady agent's target with a ledger
 * that says migration 1 applied (it is named by its enrolment, "rogue",
 * the name it gave shown as claimed_name); then, while the steady
 * agent's run of a migration that will fail is under way, sends for
 * that target's command a result "ok" at version 1, a step event, and
 * a ledger reply saying applied.  None of it counts: the conflict is
 * logged (and the rogue's log line says it holds no target), the
 * target stays the steady agent's key's in the control database, it
 * shows no version applied while the run goes on, the dispatch's
 * result is the steady agent's own ("failed"), in the control database
 * too, and no event records the rogue's step.
 */
static void
test_fleet_an_agent_speaks_only_for_its_own_targets(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbname[64], *bundle = NULL, *id = NULL, *cmd = NULL;
    char steady_key[FL_KEY_Z85_LEN + 1], *sql = NULL, *v = NULL;
    int steady, rogue;
    json_t *d = NULL, *rows = NULL;
    fl_link_t *l = NULL;
    fl_cert_t *cert = NULL;
    const char *const files[] = {
        "0001_fails.sql",
        "-- flotilla:up\nCREATE TABLE fails_t (id int);\n"
        "SELECT pg_sleep(3);\nSELECT 1 / 0;\n"
        "-- flotilla:down\nDROP TABLE fails_t;\n",
        NULL};

    steady = s_one_agent_fleet(s, "steady", "o", dbname, sizeof(dbname));
    rogue = fl_fleet_add_agent(f, "rogue", 2, 1, "");
    {
        char *pub = fl_asprintf("%s.cert", f->agents[steady].cert);

        assert_int_equal(fl_cert_load_public(steady_key, pub, NULL), 0);
        free(pub);
    }
    l = s_raw_client(f, rogue, &cert);
    /* 0. Hello parts out of order, or too many: each ignored, logged. */
    {
        fl_wire_msg_t m;
        fl_wire_target_t t;

        memset(&m, 0, sizeof(m));
        memset(&t, 0, sizeof(t));
        t.target = "rogue/x";
        m.type = FL_WIRE_HELLO;
        m.u.hello.agent = "rogue";
        m.u.hello.targets = &t;
        m.u.hello.ntargets = 1;
        m.u.hello.part = 1;
        m.u.hello.parts = 2;
        s_link_send_msg(l, &m);
        fl_fleet_wait_log(f->coord_log, "hello part 2 of 2 ignored, a part "
                                        "is missing before it", 30);
        m.u.hello.part = 0;
        m.u.hello.parts = FL_WIRE_HELLO_PARTS + 1;
        s_link_send_msg(l, &m);
        fl_fleet_wait_log(f->coord_log, "ignored, its part number is out "
                                        "of range", 30);
        /* A first part, never followed by the rest: not online. */
        m.u.hello.parts = 3;
        s_link_send_msg(l, &m);
        m.u.hello.part = 2;
        s_link_send_msg(l, &m);
        fl_fleet_wait_log(f->coord_log, "hello part 3 of 3 ignored, a part "
                                        "is missing before it", 30);
        assert_int_equal(fl_fleet_log_count(f->coord_log, "agent \\\"rogue"
                                            "\\\" is online"), 0);
        /* 200 more: logged as they double (4, 8, ... 128), not each. */
        m.u.hello.part = 5;
        m.u.hello.parts = 9;
        for (int i = 0; i < 200; i++)
            s_link_send_msg(l, &m);
        fl_fleet_wait_log(f->coord_log, "(128 so far)", 30);
        if (fl_fleet_log_count(f->coord_log, "hello part 6 of 9") > 8)
            fail_msg("%d warnings for 200 parts out of order",
                     fl_fleet_log_count(f->coord_log, "hello part 6 of 9"));
    }
    /* 1. Hello as "steady", claiming steady/db, its ledger applied. */
    {
        fl_wire_target_t t;
        fl_wire_applied_t a;

        memset(&t, 0, sizeof(t));
        memset(&a, 0, sizeof(a));
        assert_int_equal(fl_version_parse_str(&a.version, "1", NULL), 0);
        a.status = "applied";
        t.target = "steady/db";
        t.known = 1;
        t.applied = &a;
        t.napplied = 1;
        s_link_send_hello(l, "steady", &t);
    }
    fl_fleet_wait_log(f->coord_log, "reported target \\\"steady/db\\\", "
                                    "which agent", 30);
    /* Its log says it holds none (it said 1 before). */
    fl_fleet_wait_log(f->coord_log, "agent \\\"rogue\\\" is online "
                                    "(unknown before), 0 targets (others "
                                    "it reported refused)", 30);
    /* Named by its enrolment, not by what it says: one "steady". */
    rows = fl_fleet_json(f, "agents", NULL);
    {
        const json_t *r = fl_fleet_row(rows, "name", "rogue");
        const json_t *x = NULL;
        size_t i, named = 0;

        assert_non_null(r);
        assert_string_equal(json_string_value(json_object_get(
                                r, "claimed_name")), "steady");
        json_array_foreach(rows, i, x)
            named += strcmp(json_string_value(json_object_get(x, "name")),
                            "steady") == 0;
        assert_int_equal(named, 1);
        assert_string_equal(json_string_value(json_object_get(
                                fl_fleet_row(rows, "name", "steady"), "key")),
                            steady_key);
    }
    json_decref(rows);
    /* 2. A dispatch whose migration fails after 3 s: its id, at once. */
    bundle = s_bundle(f, f->key, "fails", files);
    {
        const char *argv[] = {"flotilla", "dispatch", bundle, "--selector",
                              "", "--timeout", "1s", "--json", NULL};
        d = s_dispatch_argv(f, argv, 1);
        id = fl_strdup(json_string_value(json_object_get(d, "id")));
        json_decref(d);
    }
    sql = fl_asprintf("SELECT id FROM flotilla_control.commands WHERE"
                      " dispatch_id = '%s' AND target = 'steady/db'", id);
    {
        PGconn *c = PQconnectdb(f->ctl.conninfo);
        cmd = fl_test_query_value(c, sql);
        PQfinish(c);
    }
    free(sql);
    assert_non_null(cmd);
    while (fl_fleet_sleepers(f, 1) < 1)
        fl_clock_sleep_ms(20);
    /* 3. While it runs: a result "ok", a step event, a ledger reply. */
    {
        fl_wire_msg_t m;
        fl_wire_applied_t a;

        memset(&m, 0, sizeof(m));
        m.type = FL_WIRE_STEP_EVENT;
        m.u.step_event.rollout = id;
        m.u.step_event.target = "steady/db";
        m.u.step_event.step = "execute";
        m.u.step_event.status = "ok";
        m.u.step_event.message = "rogue step";
        s_link_send_msg(l, &m);
        memset(&m, 0, sizeof(m));
        m.type = FL_WIRE_RESULT;
        m.u.result.id = cmd;
        m.u.result.rollout = id;
        m.u.result.target = "steady/db";
        m.u.result.action = "apply";
        m.u.result.status = "ok";
        m.u.result.message = "rogue result";
        assert_int_equal(fl_version_parse_str(&m.u.result.version, "1",
                                              NULL), 0);
        s_link_send_msg(l, &m);
        memset(&m, 0, sizeof(m));
        memset(&a, 0, sizeof(a));
        assert_int_equal(fl_version_parse_str(&a.version, "1", NULL), 0);
        a.status = "applied";
        m.type = FL_WIRE_LEDGER_REPLY;
        m.u.ledger_reply.state.target = "steady/db";
        m.u.ledger_reply.state.known = 1;
        m.u.ledger_reply.state.applied = &a;
        m.u.ledger_reply.state.napplied = 1;
        s_link_send_msg(l, &m);
    }
    /* While the steady agent's run goes on (it reports its ledger once
     * the run ends), the coordinator shows the target's real ledger:
     * nothing applied, not the rogue's version 1. */
    for (int n = 0; n < 4 && fl_fleet_sleepers(f, 1) >= 1; n++) {
        const json_t *t = NULL;

        rows = fl_fleet_json(f, "targets", "");
        t = fl_fleet_row(rows, "target", "steady/db");
        assert_non_null(t);
        if (json_string_value(json_object_get(t, "applied_version")))
            fail_msg("steady/db shows version %s applied, from the rogue's "
                     "ledger reply", json_string_value(json_object_get(
                                         t, "applied_version")));
        json_decref(rows);
        fl_clock_sleep_ms(150);
    }
    {
        const char *argv[] = {"flotilla", "dispatch", "--attach", id,
                              "--json", NULL};
        d = s_dispatch_argv(f, argv, 1);
    }
    assert_string_equal(s_result_status(d, "steady/db"), "failed");
    json_decref(d);
    sql = fl_asprintf("SELECT status || ' ' || (message IS NOT DISTINCT FROM"
                      " 'rogue result')::text || ' ' || agent_key FROM"
                      " flotilla_control.commands WHERE id = '%s'", cmd);
    {
        PGconn *c = PQconnectdb(f->ctl.conninfo);
        char *want = fl_asprintf("failed false %s", steady_key);
        v = fl_test_query_value(c, sql);
        assert_string_equal(v, want);
        free(v);
        free(want);
        v = fl_test_query_value(c, "SELECT agent_key FROM"
                                   " flotilla_control.targets WHERE name ="
                                   " 'steady/db'");
        assert_string_equal(v, steady_key);
        free(v);
        v = fl_test_query_value(c, "SELECT count(*) FROM"
                                   " flotilla_control.events WHERE"
                                   " target = 'steady/db' AND message LIKE"
                                   " '%rogue%'");
        PQfinish(c);
    }
    free(sql);
    assert_string_equal(v, "0");
    free(v);
    rows = fl_fleet_json(f, "targets", "");
    {
        const json_t *t = fl_fleet_row(rows, "target", "steady/db");
        assert_non_null(t);
        assert_null(json_string_value(json_object_get(t,
                                                      "applied_version")));
    }
    json_decref(rows);
    assert_int_equal(s_applied(f, 1, dbname, ""), 0);
    fl_link_close(&l);
    fl_cert_destroy(&cert);
    free(cmd);
    free(id);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * Raw ZeroMQ clients send garbage: plain TCP bytes, a client without
 * CURVE, and an enrolled key sending bytes that are not msgpack, a
 * msgpack bomb (an array claiming 2^32 entries), a hello claiming 2^32
 * targets, and a frame larger than the coordinator's limit.  Each is
 * dropped, and the coordinator keeps serving its agents.
 */
static void
test_fleet_garbage_clients_are_dropped_and_agents_still_served(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbname[64], tail[256], *bundle = NULL, host[64] = "";
    int port = 0, rogue;
    json_t *d = NULL;
    const char *const files[] = {
        "0001_after.sql",
        "-- flotilla:up\nCREATE TABLE after_t (id int);\n"
        "-- flotilla:down\nDROP TABLE after_t;\n",
        NULL};

    fl_fleet_open(f, s->p, "max_message: 1MiB\n");
    fl_fleet_start_coordinator(f);
    snprintf(dbname, sizeof(dbname), "%s_g", s->p);
    fl_fleet_createdb(f, 1, dbname);
    snprintf(tail, sizeof(tail), "targets:\n  - name: steady/db\n    dsn: "
             "\"%s dbname=%s\"\n", f->shards[1], dbname);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "steady", 1, 1, tail));
    /* An enrolled key for the raw client: it passes the handshake. */
    rogue = fl_fleet_add_agent(f, "rogue", 2, 1, "");
    {
        const char *names[] = {"steady/db", NULL};
        s_wait_targets(f, names, "reachable", "the steady agent's target");
    }
    assert_int_equal(sscanf(f->agent_endpoint, "tcp://%63[^:]:%d", host,
                            &port), 2);

    /* 1. Plain TCP garbage, no ZMTP at all. */
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa;
        char junk[4096];

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, host, &sa.sin_addr);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (char)(i * 7 + 3);
        assert_true(write(fd, junk, sizeof(junk)) > 0);
        close(fd);
    }
    /* 2. A ZeroMQ client without CURVE (the NULL mechanism). */
    {
        void *ctx = zmq_ctx_new();
        void *sock = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0;

        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
        assert_int_equal(zmq_connect(sock, f->agent_endpoint), 0);
        zmq_send(sock, "hello", 5, ZMQ_DONTWAIT);
        fl_clock_sleep_ms(200);
        zmq_close(sock);
        zmq_ctx_term(ctx);
    }
    /* 3. Garbage from an enrolled key, which passes CURVE and ZAP. */
    {
        fl_cert_t *cert = NULL;
        fl_link_t *l = s_raw_client(f, rogue, &cert);
        static const unsigned char bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
        /* {"v": 3, "type": "hello", "agent": "x", "targets": [2^32-1]} */
        static const char hello_bomb[] =
            "\x84\xa1v\x03\xa4type\xa5hello\xa5\x61gent\xa1x"
            "\xa7targets\xdd\xff\xff\xff\xff";
        char *big = fl_calloc(1, 2 * 1024 * 1024);
        int disconnected = 0;

        s_link_send(l, "this is not msgpack", 19);
        s_link_send(l, bomb, sizeof(bomb));
        s_link_send(l, hello_bomb, sizeof(hello_bomb) - 1);
        fl_fleet_wait_log(f->coord_log, "malformed message from agent "
                                        "\\\"rogue\\\"", 30);
        memset(big, 'x', 2 * 1024 * 1024 - 1);
        s_link_send(l, big, 2 * 1024 * 1024);
        /* MAXMSGSIZE: the coordinator cuts the connection. */
        for (int i = 0; i < 300 && !disconnected; i++) {
            fl_poll_item_t it = {l, -1, 0, 0};
            fl_link_event_kind kind;
            int value;
            fl_link_msg_t m;

            assert_true(fl_link_poll(&it, 1, 100, NULL) >= 0);
            while (fl_link_recv(l, &m, NULL) == 1)
                fl_link_msg_release(&m);
            while (fl_link_event(l, &kind, &value) == 1)
                disconnected |= kind == FL_LINK_EV_DISCONNECTED;
        }
        assert_true(disconnected);
        fl_link_close(&l);
        fl_cert_destroy(&cert);
        free(big);
    }
    /* The coordinator is alive and its agents are served. */
    {
        int status = 0;
        assert_int_equal(waitpid(f->coord_pid, &status, WNOHANG), 0);
    }
    s_wait_agent(f, "steady", "online");
    bundle = s_bundle(f, f->key, "after", files);
    d = s_dispatch_json(f, bundle, "agent=steady", 0);
    assert_int_equal(s_succeeded(d), 1);
    assert_int_equal(s_executed(f, 1, dbname, "", 1), 1);
    assert_true(fl_fleet_log_count(f->coord_log, "malformed message from "
                                                 "agent") >= 3);
    json_decref(d);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * What an enrolled agent writes about its own target is bounded and
 * cleaned before the control database sees it.  A rogue agent (an
 * enrolled key speaking the protocol) says hello with a target of its
 * own, then sends step events for it: one whose step and status are
 * not UTF-8, and 80 whose messages are 1 MiB of control bytes each (the
 * wire's largest string), all in one round.  The coordinator stays up,
 * records them cleaned and cut, and still serves its agents.  Before,
 * the first made the control database refuse the events' COPY
 * (SQLSTATE 22021) and the coordinator exit, at every start again; the
 * others grew the round's events job past its 256 MiB and the
 * coordinator aborted (found by an audit).
 */
static void
test_fleet_an_agent_s_text_is_bounded_and_cleaned(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbname[64], *bundle = NULL, *big = NULL, *v = NULL;
    fl_link_t *l = NULL;
    fl_cert_t *cert = NULL;
    json_t *d = NULL;
    int rogue;
    const size_t n = FL_WIRE_MAX_STR - 64;
    const char *const files[] = {"0001_after.sql",
                                 "-- flotilla:up\nCREATE TABLE after_t "
                                 "(id int);\n-- flotilla:down\n"
                                 "DROP TABLE after_t;\n",
                                 NULL};

    /* The rogue sends no heartbeats: not taken for gone meanwhile. */
    s_one_agent_fleet_with(s, "heartbeat_timeout: 60s\nrestart_grace: 60s\n",
                           "steady", "tx",
                           dbname, sizeof(dbname));
    rogue = fl_fleet_add_agent(f, "rogue", 2, 1, "");
    l = s_raw_client(f, rogue, &cert);
    {
        fl_wire_target_t t;
        fl_codec_kv_t label = {"rogue", "yes"};

        memset(&t, 0, sizeof(t));
        t.target = "rogue/own";
        t.known = 1;
        t.labels = &label;
        t.nlabels = 1;
        s_link_send_hello(l, "rogue", &t);
    }
    fl_fleet_wait_log(f->coord_log, "agent \\\"rogue\\\" is online", 30);
    big = fl_malloc(n + 1);
    memset(big, 0x01, n);
    big[n] = '\0';
    {
        fl_wire_msg_t m;

        memset(&m, 0, sizeof(m));
        m.type = FL_WIRE_STEP_EVENT;
        m.u.step_event.rollout = "no-such-rollout";
        m.u.step_event.target = "rogue/own";
        m.u.step_event.step = "\xff\xfe";
        m.u.step_event.status = "\xc3(";
        m.u.step_event.message = "not \xffUTF-8";
        s_link_send_msg(l, &m);
        m.u.step_event.step = "execute";
        m.u.step_event.status = "ok";
        m.u.step_event.message = big;
        for (int i = 0; i < 80; i++)
            s_link_send_msg(l, &m);
    }
    /* Recorded, cleaned and cut: the events the rogue sent, every one. */
    {
        PGconn *c = PQconnectdb(f->ctl.conninfo);
        int64_t deadline = fl_clock_ms() + (int64_t)(
            60000 * fl_test_timeout_scale());

        assert_int_equal(PQstatus(c), CONNECTION_OK);
        for (;;) {
            int status = 0;

            if (waitpid(f->coord_pid, &status, WNOHANG) != 0)
                fail_msg("the coordinator ended; see %s", f->coord_log);
            v = fl_test_query_value(c, "SELECT count(*) FROM"
                                       " flotilla_control.events WHERE"
                                       " target = 'rogue/own'");
            if (v != NULL && strcmp(v, "81") == 0)
                break;
            if (fl_clock_ms() > deadline)
                fail_msg("%s of the rogue's 81 events recorded in 60 s; "
                         "see %s", v ? v : "none", f->coord_log);
            free(v);
            fl_clock_sleep_ms(200);
        }
        free(v);
        v = fl_test_query_value(c, "SELECT step || ' ' || status || ' ' ||"
                                   " message FROM flotilla_control.events"
                                   " WHERE target = 'rogue/own' ORDER BY"
                                   " id LIMIT 1");
        assert_string_equal(v, "\\xff\\xfe \\xc3( not \\xffUTF-8");
        free(v);
        /* 16 KiB kept, each control byte shown as "\x01", and the cut
         * said. */
        v = fl_test_query_value(c, "SELECT max(octet_length(message)) <="
                                   " 4 * 16384 + 64 AND bool_and(message"
                                   " LIKE '%bytes cut)') FILTER (WHERE step"
                                   " = 'execute') FROM"
                                   " flotilla_control.events"
                                   " WHERE target = 'rogue/own'");
        assert_string_equal(v, "t");
        free(v);
        PQfinish(c);
    }
    /* A command for the rogue's target: its result's texts are cut. */
    bundle = s_bundle(f, f->key, "after", files);
    {
        const char *argv[] = {"flotilla", "dispatch", bundle, "--selector",
                              "rogue=yes", "--json", NULL};
        char *out = fl_fleet_path(f, "rogue-dispatch.out");
        pid_t cli = fl_fleet_cli_spawn(f, argv, out);
        int64_t deadline = fl_clock_ms() + (int64_t)(
            60000 * fl_test_timeout_scale());
        fl_wire_msg_t cmd;
        const json_t *r = NULL;
        int got = 0;

        memset(&cmd, 0, sizeof(cmd));
        while (!got) {
            fl_link_msg_t lm;
            fl_poll_item_t it = {l, -1, 0, 0};

            if (fl_clock_ms() > deadline)
                fail_msg("no command came to the rogue in 60 s");
            assert_true(fl_link_poll(&it, 1, 100, NULL) >= 0);
            while (!got && fl_link_recv(l, &lm, NULL) == 1) {
                if (fl_wire_decode(&cmd, lm.data, lm.len, NULL) == 0 &&
                    cmd.type == FL_WIRE_APPLY)
                    got = 1;
                else
                    fl_wire_msg_release(&cmd);
                fl_link_msg_release(&lm);
            }
        }
        {
            fl_wire_msg_t m;

            memset(&m, 0, sizeof(m));
            m.type = FL_WIRE_RESULT;
            m.u.result.id = cmd.u.command.id;
            m.u.result.rollout = cmd.u.command.rollout;
            m.u.result.target = "rogue/own";
            m.u.result.action = "apply";
            m.u.result.status = "failed";
            m.u.result.message = big;
            m.u.result.error = big;
            m.u.result.detail = big;
            m.u.result.hint = big;
            m.u.result.sqlstate = "\xff\xff\xff\xff\xff";
            s_link_send_msg(l, &m);
        }
        fl_wire_msg_release(&cmd);
        if (fl_fleet_wait_pid(cli, 120) != 1)
            fail_msg("the dispatch to the rogue did not end failed; see %s",
                     out);
        d = json_load_file(out, JSON_DISABLE_EOF_CHECK, NULL);
        if (d == NULL)
            fail_msg("the dispatch to the rogue printed no JSON; see %s",
                     out);
        r = json_array_get(json_object_get(d, "results"), 0);
        assert_non_null(r);
        assert_string_equal(json_string_value(json_object_get(r, "status")),
                            "failed");
        if (strlen(json_string_value(json_object_get(r, "error")) ?: "") >
                4 * 16384 + 64 ||
            strstr(json_string_value(json_object_get(r, "error")) ?: "",
                   "bytes cut)") == NULL)
            fail_msg("the rogue's error is not cut: %zu bytes",
                     strlen(json_string_value(json_object_get(r, "error"))
                                ?: ""));
        json_decref(d);
        free(out);
    }
    /* The coordinator is alive and its agents are served. */
    {
        int status = 0;
        assert_int_equal(waitpid(f->coord_pid, &status, WNOHANG), 0);
    }
    d = s_dispatch_json(f, bundle, "agent=steady", 0);
    assert_int_equal(s_succeeded(d), 1);
    json_decref(d);
    fl_link_close(&l);
    fl_cert_destroy(&cert);
    free(big);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * Heartbeat loss: an agent stopped with SIGSTOP goes offline and its
 * targets unreachable; after SIGCONT it says hello and is online again.
 */
static void
test_fleet_heartbeat_loss_offline_then_online(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char dbname[64], tail[256];
    const char *names[] = {"sleepy/db", NULL};
    int a;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    snprintf(dbname, sizeof(dbname), "%s_h", s->p);
    fl_fleet_createdb(f, 2, dbname);
    snprintf(tail, sizeof(tail), "targets:\n  - name: sleepy/db\n    dsn: "
             "\"%s dbname=%s\"\n", f->shards[2], dbname);
    a = fl_fleet_add_agent(f, "sleepy", 2, 1, tail);
    fl_fleet_start_agent(f, a);
    s_wait_targets(f, names, "reachable", "the agent's target");
    fl_fleet_signal_agent(f, a, SIGSTOP);
    s_wait_agent(f, "sleepy", "offline");
    s_wait_targets(f, names, "unreachable", "its target unreachable");
    assert_true(fl_fleet_log_count(f->coord_log, "missed") +
                    fl_fleet_log_count(f->coord_log, "no message for") >
                0);
    fl_fleet_signal_agent(f, a, SIGCONT);
    s_wait_agent(f, "sleepy", "online");
    s_wait_targets(f, names, "reachable", "its target reachable again");
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * The lint gate signed into a bundle (issue 14) holds on an agent as on a
 * local apply.  Migration 2 has a lint error: a bundle without a gate is
 * refused at 2 by the agent (1 applied); one signed with lint.enforce_from
 * 3 applies both there, the error reported as a warning in the agent's
 * log; the same bundle applied by `flotilla apply` on another database of
 * the shard does the same.
 */
static void
test_fleet_signed_lint_gate_holds_on_an_agent_as_locally(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char db[64], local[64], tail[160], target[128];
    char *plain = NULL, *gated = NULL, *pub = NULL, *dsn = NULL;
    const char *names[2] = {target, NULL};
    json_t *d = NULL;
    fl_test_proc_t r;
    const char *const files[] = {
        "0001_g.sql",
        "-- flotilla:up\nCREATE TABLE g (id int);\n"
        "-- flotilla:down\nDROP TABLE g;\n",
        "0002_idx.sql",
        "-- flotilla:up\nALTER TABLE g ADD COLUMN c int;\n"
        "CREATE INDEX ON g (id);\n"
        "-- flotilla:down\nALTER TABLE g DROP COLUMN c;\n",
        NULL};

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    snprintf(db, sizeof(db), "%s_g", s->p);
    snprintf(local, sizeof(local), "%s_local", s->p);
    fl_fleet_createdb(f, 0, db);
    fl_fleet_createdb(f, 0, local);
    snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_g\"\n",
             s->p);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "agent-0", 0, 1, tail));
    snprintf(target, sizeof(target), "agent-0/%s", db);
    s_wait_targets(f, names, "reachable", "the agent's target");
    plain = s_bundle(f, f->key, "plain", files);
    {
        char *dir = fl_fleet_path(f, "plain");
        gated = fl_fleet_path(f, "gated.bundle");
        fl_fleet_bundle_with(f, f->key, dir, gated,
                             (const char *const[]){"--lint-enforce-from", "3",
                                                   NULL});
        free(dir);
    }

    d = s_dispatch_json(f, plain, "", 3);
    assert_string_not_equal(s_result_status(d, target), "ok");
    {
        char *text = json_dumps(d, 0);
        assert_non_null(strstr(text, "require-concurrent-index-creation"));
        free(text);
    }
    json_decref(d);
    assert_int_equal(s_applied(f, 0, db, ""), 1);

    d = s_dispatch_json(f, gated, "", 0);
    assert_string_equal(s_result_status(d, target), "ok");
    json_decref(d);
    assert_int_equal(s_applied(f, 0, db, ""), 2);
    assert_true(fl_fleet_log_count(f->agents[0].log,
                                   "lint error reported as a warning") > 0);

    /* The same bundle on one database, by flotilla apply. */
    pub = fl_fleet_path(f, "trust/rel.pub");
    dsn = fl_asprintf("%s dbname=%s", f->shards[0], local);
    {
        const char *argv[] = {"flotilla", "apply", "--db", dsn, "--log-file",
                              "", "--trust", pub, "--environment", "test",
                              gated, NULL};
        fl_test_run(&r, "flotilla", argv, NULL, 120);
        fl_test_expect(&r, 0, "lint error reported as a warning");
        fl_test_proc_release(&r);
    }
    assert_int_equal(s_applied(f, 0, local, ""), 2);
    fl_fleet_stop_clean(f);
    s->passed = 1;
    free(plain);
    free(gated);
    free(pub);
    free(dsn);
}

/* Sessions ever opened on database db of shard 0 (pg_stat_database). */
static long
s_sessions(fl_fleet_t *f, const char *db)
{
    char *sql = fl_asprintf("SELECT sessions FROM pg_stat_database WHERE"
                            " datname = '%s'", db);
    char *v = fl_fleet_query(f, 0, "postgres", sql);
    long n = v != NULL ? strtol(v, NULL, 10) : -1;

    free(v);
    free(sql);
    return n;
}

/* A target's applied version in `flotilla targets` rows ("": none). */
static const char *
s_applied_in(const json_t *rows, const char *target)
{
    const json_t *v = json_object_get(fl_fleet_row(rows, "target", target),
                                      "applied_version");

    return json_is_string(v) ? json_string_value(v) : "";
}

typedef struct {
    const char *target;
    const char *version;
} s_shown_want;

static int
s_shows_applied(const json_t *rows, void *arg)
{
    const s_shown_want *w = arg;

    return strcmp(s_applied_in(rows, w->target), w->version) == 0;
}

/*
 * A database whose name is no valid target name (a space, a letter
 * outside ASCII) is a target all the same: discovery names it with the
 * bytes outside [A-Za-z0-9._/:@+-] written %XX, and it is migrated.
 * Before, discovery skipped it with a warning in the agent's log at each
 * run: that tenant was never migrated, and no rollout counted it.
 */
static void
test_fleet_discovery_names_any_database(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *const files[] = {
        "0001_t.sql",
        "-- flotilla:up\nCREATE TABLE t (i int);\n"
        "-- flotilla:down\nDROP TABLE t;\n", NULL};
    char db[3][64], name[3][96], tail[256], *bundle = NULL;
    const char *names[4] = {name[0], name[1], name[2], NULL};
    json_t *d = NULL;
    long in_postgres;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    snprintf(db[0], sizeof(db[0]), "%s_n one", s->p);
    snprintf(db[1], sizeof(db[1]), "%s_n\xc3\xa9%%", s->p);
    /* A name that reads as a second connection keyword when a tab ends
     * the value: the agent connected to "postgres" instead (a tenant's
     * choice of host sent it the agent's password). */
    snprintf(db[2], sizeof(db[2]), "%s_n\tdbname=postgres", s->p);
    snprintf(name[0], sizeof(name[0]), "enc/%s_n%%20one", s->p);
    snprintf(name[1], sizeof(name[1]), "enc/%s_n%%C3%%A9%%25", s->p);
    snprintf(name[2], sizeof(name[2]), "enc/%s_n%%09dbname%%3Dpostgres",
             s->p);
    for (int i = 0; i < 3; i++)
        fl_fleet_createdb(f, 1, db[i]);
    snprintf(tail, sizeof(tail),
             "discover:\n"
             "  - databases: \"%s_n*\"\n", s->p);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "enc", 1, 1, tail));
    s_wait_targets(f, names, "reachable", "both databases");
    bundle = s_bundle(f, f->key, "enc", files);
    in_postgres = s_count(f, 1, "postgres", "SELECT count(*) FROM pg_class "
                          "WHERE relname = 't'");
    d = s_dispatch_json(f, bundle, "", 0);
    for (int i = 0; i < 3; i++)
        assert_string_equal(s_result_status(d, name[i]), "ok");
    json_decref(d);
    for (int i = 0; i < 3; i++) {
        s_shown_want w = {name[i], "1"};
        fl_fleet_wait(f, "targets", s_shows_applied, &w, 30,
                      "migration 1 shown applied");
        assert_int_equal(s_count(f, 1, db[i], "SELECT count(*) FROM pg_class"
                                 " WHERE relname = 't'"), 1);
    }
    /* Nothing reached the database the name spelt out. */
    assert_int_equal(s_count(f, 1, "postgres", "SELECT count(*) FROM "
                             "pg_class WHERE relname = 't'"), in_postgres);
    free(bundle);
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * A fleet whose one agent discovers the databases PREFIX_TAG* of shard 0
 * every 200 ms and reads known ledgers every hour (agent_extra: more of
 * its configuration), with PREFIX_TAG1 made and shown reachable; TAG2
 * named, not made.
 */
typedef struct {
    char db[64], db2[64], target[128], target2[128];
    int agent;
} s_disc;

static void
s_disc_start(s_state *s, s_disc *x, const char *tag, const char *coord_extra,
             const char *agent_extra)
{
    fl_fleet_t *f = &s->f;
    char tail[256];
    const char *one[] = {x->target, NULL};

    fl_fleet_open(f, s->p, coord_extra);
    fl_fleet_start_coordinator(f);
    snprintf(x->db, sizeof(x->db), "%s_%s1", s->p, tag);
    snprintf(x->db2, sizeof(x->db2), "%s_%s2", s->p, tag);
    fl_fleet_createdb(f, 0, x->db);
    snprintf(tail, sizeof(tail),
             "discovery_interval: 200ms\nstate_interval: 1h\n%s"
             "discover:\n  - databases: \"%s_%s*\"\n", agent_extra, s->p,
             tag);
    x->agent = fl_fleet_add_agent(f, "agent-0", 0, 1, tail);
    fl_fleet_start_agent(f, x->agent);
    snprintf(x->target, sizeof(x->target), "agent-0/%s", x->db);
    snprintf(x->target2, sizeof(x->target2), "agent-0/%s", x->db2);
    s_wait_targets(f, one, "reachable", "the agent's target");
}

/*
 * A ledger read that ends while the agent's hello awaits its welcome.
 * A new database makes the agent say hello again (the new target's
 * state not known yet) and read the new ledger; with the coordinator
 * stopped, the read ends before the welcome.  The state read was dropped
 * (the agent was not online), and the welcome of a hello sent again
 * reads nothing: the target stayed "unknown" until the next
 * state_interval (here an hour).  The state kept is sent at the welcome.
 */
static void
test_fleet_a_ledger_read_before_the_welcome_is_sent_after_it(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    s_disc x;
    const char *both[] = {x.target, x.target2, NULL};

    /* Neither side gives up on the other while the coordinator stops. */
    s_disc_start(s, &x, "w",
                 "heartbeat_timeout: 60s\nrestart_grace: 60s\n",
                 "hello_timeout: 60s\n");
    fl_fleet_signal_coordinator(f, SIGSTOP);
    fl_fleet_createdb(f, 0, x.db2);
    fl_fleet_wait_log(f->agents[x.agent].log, "hello sent: 2 targets", 30);
    fl_clock_sleep_ms(2000); /* the new ledger read, and dropped */
    fl_fleet_signal_coordinator(f, SIGCONT);
    s_wait_targets(f, both, "reachable", "the new target, read before "
                   "the welcome");
    fl_fleet_stop_clean(f);
    s->passed = 1;
}

/*
 * Discovery and the reading of every ledger run apart.  Each ledger read
 * is a new connection to the target's database, and an agent used to
 * read every one at every discovery: at a discovery every 200 ms and a
 * state_interval of an hour, a known target's database gets no new
 * session, a new database is still found and read at once, and a ledger
 * changed behind the agent's back shows after a SIGHUP; at a
 * state_interval of 200 ms a ledger is read again and again, a static
 * target's too (before, one was read only at start, after a command or
 * on a reconnect).
 */
static void
test_fleet_ledgers_read_every_state_interval_not_every_discovery(
    void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    s_disc x;
    char tail[256], target[128];
    const char *one[] = {target, NULL}, *both[] = {x.target, x.target2, NULL};
    const char *db = x.db;
    const char *const files[] = {
        "0001_t.sql",
        "-- flotilla:up\nCREATE TABLE t (id int);\n"
        "-- flotilla:down\nDROP TABLE t;\n",
        NULL};
    char *dir = NULL, *dsn = NULL;
    json_t *shown = NULL;
    long before, after;
    int a = 0;
    int64_t asked = 0;
    s_shown_want w = {target, "1"};
    fl_test_proc_t r;

    s_disc_start(s, &x, "s", NULL, "");
    a = x.agent;
    snprintf(target, sizeof(target), "%s", x.target);

    /* Ten discoveries: the known target's ledger is not read again. */
    before = s_sessions(f, db);
    fl_clock_sleep_ms(2000);
    after = s_sessions(f, db);
    assert_true(before >= 1);
    assert_true(after - before <= 1);

    /* A new database: found and read at the next discovery. */
    fl_fleet_createdb(f, 0, x.db2);
    s_wait_targets(f, both, "reachable", "the new database's target");

    /*
     * Three more, one after the other: each changes the agent's targets,
     * and the agent says hello again, but reads only the new one's ledger.
     * Before, each such hello read every target's (a tenant owner turning
     * ALLOW_CONNECTIONS off and on cost a session on every tenant).
     */
    before = s_sessions(f, db);
    for (int i = 3; i <= 5; i++) {
        char dbn[64], tn[128];
        const char *three[] = {target, tn, NULL};

        snprintf(dbn, sizeof(dbn), "%s_s%d", s->p, i);
        snprintf(tn, sizeof(tn), "agent-0/%s", dbn);
        fl_fleet_createdb(f, 0, dbn);
        s_wait_targets(f, three, "reachable", "another new database");
    }
    fl_clock_sleep_ms(1500); /* the statistics flushed */
    after = s_sessions(f, db);
    if (after - before > 1)
        fail_msg("%ld sessions on %s for three new databases beside it",
                 after - before, db);

    /* A migration applied behind the agent's back: not read yet... */
    dir = s_migrations(f, "m", files);
    dsn = fl_asprintf("%s dbname=%s", f->shards[0], db);
    {
        const char *argv[] = {"flotilla", "apply", "--db", dsn,
                              "--log-file", "", "--dir", dir, NULL};
        fl_test_run(&r, "flotilla", argv, NULL, 120);
        fl_test_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
    }
    fl_clock_sleep_ms(1000);
    shown = fl_fleet_json(f, "targets", NULL);
    assert_string_equal(s_applied_in(shown, target), "");
    json_decref(shown);
    /* ...until a SIGHUP asks for every ledger. */
    fl_fleet_rediscover(f, &asked);
    fl_fleet_wait(f, "targets", s_shows_applied, &w, 30,
                  "the applied migration shown after SIGHUP");

    /* The first database as a static target, read every 200 ms. */
    fl_fleet_signal_agent(f, a, SIGTERM);
    snprintf(tail, sizeof(tail),
             "state_interval: 200ms\ntargets:\n  - name: static-s1\n"
             "    dsn: \"%s\"\n", dsn);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "agent-1", 0, 1, tail));
    snprintf(target, sizeof(target), "static-s1");
    s_wait_targets(f, one, "reachable", "agent-1's static target");
    before = s_sessions(f, db);
    fl_clock_sleep_ms(2000);
    after = s_sessions(f, db);
    assert_true(after - before >= 3);
    fl_fleet_stop_clean(f);
    s->passed = 1;
    free(dir);
    free(dsn);
}

/*
 * Both daemons open their log_file again at SIGHUP, so that logrotate's
 * move-then-signal works: once the file is moved away, a SIGHUP makes a
 * new one under log_file and every later line goes there, none to the
 * moved one.  Before, each daemon kept writing to the moved file, and the
 * new one was never made: a rotated log lost every line after it.
 */
static void
test_fleet_daemons_open_their_log_again_at_sighup(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *logs[2] = {NULL, NULL};
    const char *lines[2] = {"reloaded: ", "SIGHUP: trust store reloaded"};
    char *moved[2] = {NULL, NULL};
    int a = 0, before[2] = {0, 0};

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    a = fl_fleet_add_agent(f, "agent-0", 0, 1, "");
    fl_fleet_start_agent(f, a);
    fl_fleet_wait_log(f->agents[a].log, "online with coordinator", 30);
    logs[0] = f->coord_log;
    logs[1] = f->agents[a].log;
    for (int i = 0; i < 2; i++) {
        moved[i] = fl_asprintf("%s.1", logs[i]);
        if (rename(logs[i], moved[i]) != 0)
            fail_msg("rename %s: %s", logs[i], strerror(errno));
        /* The coordinator reloaded at the agent's enrolment. */
        before[i] = fl_fleet_log_count(moved[i], lines[i]);
    }
    fl_fleet_signal_coordinator(f, SIGHUP);
    fl_fleet_signal_agent(f, a, SIGHUP);
    for (int i = 0; i < 2; i++) {
        fl_fleet_wait_log(logs[i], lines[i], 30);
        assert_int_equal(fl_fleet_log_count(moved[i], lines[i]),
                         before[i]);
    }
    fl_fleet_stop_clean(f);
    for (int i = 0; i < 2; i++) {
        assert_true(fl_fleet_log_count(logs[i], "stopping on signal") >= 1);
        assert_int_equal(fl_fleet_log_count(moved[i], "stopping on signal"),
                         0);
        free(moved[i]);
    }
    s->passed = 1;
}

/* Writes path: a journaled command of type and id (rollout "r"). */
static void
s_journal_command(const char *path, int type, const char *id)
{
    fl_wire_msg_t m;
    fl_buf_t b = FL_BUF_INIT(0);
    FILE *fp = NULL;

    memset(&m, 0, sizeof(m));
    m.type = (fl_wire_type)type;
    m.u.command.id = (char *)id;
    m.u.command.rollout = "r";
    m.u.command.target = "agent-0/x";
    m.u.command.bundle_id = "b";
    assert_int_equal(fl_wire_encode(&b, &m, NULL), 0);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b.data, 1, b.len, fp), b.len);
    assert_int_equal(fclose(fp), 0);
    fl_buf_release(&b);
}

/*
 * A journal file the agent cannot read back (a disk's damage, a hand's
 * edit) is set aside as ID.cmd.damaged (ID.res.damaged) with a warning
 * that names it, and the agent starts.  Before, it was deleted without a
 * word: the command it held, and a result not yet acknowledged, were gone
 * and nothing said so.  A result file that reads but is no result of its
 * command is set aside too, and the agent stays online.  Before, it was
 * sent as it was: the coordinator closed the session on the malformed
 * message, and the agent, at each reconnection, sent it again.  So is a
 * command file holding a command of another id (before, carried out
 * under that id at every start), and its cancel mark goes with it.  A
 * cancel journaled without its answer is answered, and leaves the
 * journal once acknowledged.
 */
static void
test_fleet_a_damaged_journal_file_is_set_aside_with_a_warning(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char *dir = NULL, *cmd = NULL, *res = NULL, *kept = NULL;
    char *garbled = NULL, *misfiled = NULL, *cancel = NULL;
    int a = 0, online = 0;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    a = fl_fleet_add_agent(f, "agent-0", 0, 1, "");
    fl_fleet_start_agent(f, a);
    fl_fleet_wait_log(f->agents[a].log, "online with coordinator", 30);
    fl_fleet_signal_agent(f, a, SIGTERM);
    dir = fl_asprintf("%s/journal", f->agents[a].state);
    cmd = fl_asprintf("%s/c0ffee.cmd", dir);
    res = fl_asprintf("%s/beef.res", dir);
    fl_test_write_file(cmd, "not a message");
    fl_test_write_file(res, ""); /* unreadable: a directory below */
    unlink(res);
    if (mkdir(res, 0700) != 0)
        fail_msg("mkdir %s: %s", res, strerror(errno));
    garbled = fl_asprintf("%s/dead.res", dir);
    fl_test_write_file(garbled, "not a message");
    /* A command, but of another id. */
    misfiled = fl_asprintf("%s/f00d.cmd", dir);
    s_journal_command(misfiled, FL_WIRE_APPLY, "other");
    /* A cancel journaled, its answer not yet (a kill between the two). */
    cancel = fl_asprintf("%s/c4ncel.cmd", dir);
    s_journal_command(cancel, FL_WIRE_CANCEL, "c4ncel");
    /* The cancel mark of the damaged command, which goes with it. */
    kept = fl_asprintf("%s/c0ffee.cancel", dir);
    fl_test_write_file(kept, "");
    free(kept);
    online = fl_fleet_log_count(f->agents[a].log, "online with coordinator");
    fl_fleet_start_agent(f, a);
    fl_fleet_wait_log_more(f->agents[a].log, "online with coordinator",
                           online, 30);
    fl_fleet_wait_log(f->agents[a].log, "c0ffee.cmd", 30);
    fl_fleet_wait_log(f->agents[a].log, "dead.res", 30);
    fl_fleet_wait_log(f->agents[a].log, "f00d.cmd", 30);
    assert_int_equal(fl_fleet_log_count(f->agents[a].log, "beef.res"), 1);
    kept = fl_asprintf("%s.damaged", cmd);
    assert_int_equal(access(kept, F_OK), 0);
    assert_int_not_equal(access(cmd, F_OK), 0);
    free(kept);
    kept = fl_asprintf("%s.damaged", res);
    assert_int_equal(access(kept, F_OK), 0);
    free(kept);
    kept = fl_asprintf("%s.damaged", garbled);
    assert_int_equal(access(kept, F_OK), 0);
    assert_int_not_equal(access(garbled, F_OK), 0);
    free(kept);
    kept = fl_asprintf("%s.damaged", misfiled);
    assert_int_equal(access(kept, F_OK), 0);
    free(kept);
    kept = fl_asprintf("%s/other.res", dir);
    assert_int_not_equal(access(kept, F_OK), 0);
    free(kept);
    kept = fl_asprintf("%s/c0ffee.cancel", dir);
    assert_int_not_equal(access(kept, F_OK), 0);
    free(kept);
    /* The cancel answered (nothing to cancel), the answer acknowledged,
     * its files gone; before, it stayed in the journal for ever. */
    fl_fleet_wait_log(f->coord_log, "answered command c4ncel", 30);
    {
        int64_t until = fl_clock_ms() + 30000;

        while (access(cancel, F_OK) == 0) {
            if (fl_clock_ms() > until)
                fail_msg("%s still there 30 s after the agent's start",
                         cancel);
            fl_clock_sleep_ms(50);
        }
    }
    /* Online once, and so it stays over two heartbeats (it flapped ten
     * times a second). */
    fl_clock_sleep_ms(2000);
    assert_int_equal(fl_fleet_log_count(f->coord_log, "malformed"), 0);
    assert_int_equal(fl_fleet_log_count(f->agents[a].log,
                                        "online with coordinator"),
                     online + 1);
    fl_fleet_stop_clean(f);
    free(cancel);
    free(misfiled);
    free(garbled);
    free(res);
    free(cmd);
    free(dir);
    s->passed = 1;
}

/* Dispatches bundle (action "apply" or "plan") to every target. */
static json_t *
s_dispatch_action(fl_fleet_t *f, const char *bundle, const char *action,
                  int want_status)
{
    const char *argv[] = {"flotilla", "dispatch", bundle, "--selector", "",
                          "--action", action, "--json", NULL};

    return s_dispatch_argv(f, argv, want_status);
}

/* The result of target in dispatch d: status want, error holding says. */
static void
s_expect_result(const json_t *d, const char *target, const char *want,
                const char *says)
{
    const json_t *r = fl_fleet_row(json_object_get(d, "results"), "target",
                                   target);
    const char *st = r ? json_string_value(json_object_get(r, "status"))
                       : NULL;
    const char *er = r ? json_string_value(json_object_get(r, "error"))
                       : NULL;

    if (st == NULL || strcmp(st, want) != 0 ||
        (says != NULL && (er == NULL || strstr(er, says) == NULL)))
        fail_msg("%s: %s (%s), wanted %s saying \"%s\"", target,
                 st ? st : "no result", er ? er : "", want,
                 says ? says : "");
}

/*
 * A command that waited for its target is checked again when it starts:
 * bundle Q arrives, verified, while the target runs a slow migration of
 * S; its signer's key is then removed from the agent's trust store (and
 * a SIGHUP).  When S ends, Q is refused and nothing of it runs.  Before,
 * the bundle was checked only when it became ready: a command queued
 * behind a long migration (or parked for its target's discovery) ran a
 * bundle revoked or expired meanwhile (found by an audit).
 */
static void
test_fleet_a_bundle_is_checked_again_when_its_command_starts(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *slow = "-- flotilla:up\nCREATE TABLE slow_t (id int);\n"
                       "SELECT pg_sleep(6);\n"
                       "-- flotilla:down\nDROP TABLE slow_t;\n";
    const char *const sfiles[] = {"0001_slow.sql", slow, NULL};
    const char *const qfiles[] = {"0001_slow.sql", slow, "0002_quick.sql",
                                  "-- flotilla:up\nCREATE TABLE quick_t"
                                  " (id int);\n-- flotilla:down\n"
                                  "DROP TABLE quick_t;\n",
                                  NULL};
    char dbname[64], *sb = NULL, *qb = NULL, *out[2];
    char *pub = NULL, *off = NULL, *n = NULL;
    pid_t cli[2];
    PGconn *ctl = NULL;
    json_t *d = NULL;

    s_one_agent_fleet(s, "steady", "rc", dbname, sizeof(dbname));
    pub = fl_fleet_path(f, "trust/rel.pub");
    off = fl_fleet_path(f, "trust-rel.pub.off");
    sb = s_bundle(f, f->key, "slow", sfiles);
    qb = s_bundle(f, f->key, "quick", qfiles);
    ctl = PQconnectdb(f->ctl.conninfo);
    assert_int_equal(PQstatus(ctl), CONNECTION_OK);
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {"flotilla", "dispatch", i ? qb : sb,
                              "--selector", "", "--json", NULL};
        int64_t deadline = fl_clock_ms() + (int64_t)(
            60000 * fl_test_timeout_scale());

        out[i] = fl_fleet_path(f, i ? "quick.out" : "slow.out");
        cli[i] = fl_fleet_cli_spawn(f, argv, out[i]);
        /* S runs; Q's command is written, hence sent. */
        while (i == 0 ? fl_fleet_sleepers(f, 1) < 1
                      : (n = fl_test_query_value(
                             ctl, "SELECT count(*) FROM"
                                  " flotilla_control.commands")) == NULL ||
                            strcmp(n, "2") != 0) {
            free(n);
            n = NULL;
            if (fl_clock_ms() > deadline)
                fail_msg("dispatch %d did not get going in 60 s", i + 1);
            fl_clock_sleep_ms(50);
        }
        free(n);
        n = NULL;
    }
    PQfinish(ctl);
    fl_clock_sleep_ms(1000); /* Q received and verified: it waits for S */
    if (rename(pub, off) != 0)
        fail_msg("rename %s: %s", pub, strerror(errno));
    fl_fleet_signal_agent(f, 0, SIGHUP);
    if (fl_fleet_wait_pid(cli[0], 120) != 0)
        fail_msg("the slow dispatch failed; see %s", out[0]);
    if (fl_fleet_wait_pid(cli[1], 120) != 3)
        fail_msg("the quick dispatch was not refused; see %s", out[1]);
    d = json_load_file(out[1], JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(d);
    s_expect_result(d, "steady/db", "refused", "trust store");
    json_decref(d);
    assert_int_equal(s_count(f, 1, dbname, "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'quick_t'"), 0);
    assert_int_equal(s_applied(f, 1, dbname, ""), 1);
    fl_fleet_stop_clean(f);
    free(out[0]);
    free(out[1]);
    free(sb);
    free(qb);
    free(pub);
    free(off);
    s->passed = 1;
}

/*
 * A cancelled command still waiting for its bundle is answered at once.
 * The agent works on one target at a time (max_parallel: 1), busy with
 * a 10 s migration on x; a rollout to y (target_timeout 2s) sends a
 * command whose bundle the agent cannot verify meanwhile (its one worker
 * busy).  The timeout's cancel must be answered cancelled while x still
 * sleeps, the command leaving y's order list.  Before, it kept its place
 * until its bundle was verified and it ran, cancelled; and when its
 * bundle never came (the coordinator no longer had it, or it passed the
 * agent's max_message), every later command for y waited for good
 * (found by an audit).
 */
static void
test_fleet_a_cancelled_command_waiting_for_its_bundle_is_answered(
    void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    const char *const sfiles[] = {"0001_slow.sql",
                                  "-- flotilla:up\nCREATE TABLE slow_t (id"
                                  " int);\nSELECT pg_sleep(10);\n"
                                  "-- flotilla:down\nDROP TABLE slow_t;\n",
                                  NULL};
    char **one = fl_fleet_table_migrations(1);
    char db[2][64], tail[512], *sb = NULL, *yb = NULL, *out = NULL;
    const char *names[] = {"solo/x", "solo/y", NULL};
    pid_t cli = 0;
    json_t *st = NULL;
    int64_t deadline = 0;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    for (int i = 0; i < 2; i++) {
        snprintf(db[i], sizeof(db[i]), "%s_w%c", s->p, "xy"[i]);
        fl_fleet_createdb(f, 1, db[i]);
    }
    snprintf(tail, sizeof(tail), "max_parallel: 1\ntargets:\n"
             "  - name: solo/x\n    dsn: \"%s dbname=%s\"\n"
             "    labels: [which=x]\n"
             "  - name: solo/y\n    dsn: \"%s dbname=%s\"\n"
             "    labels: [which=y]\n",
             f->shards[1], db[0], f->shards[1], db[1]);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "solo", 1, 1, tail));
    s_wait_targets(f, names, "reachable", "the agent's targets");
    sb = s_bundle(f, f->key, "slowx", sfiles);
    yb = s_bundle(f, f->key, "forY", (const char *const *)one);
    {
        const char *argv[] = {"flotilla", "dispatch", sb, "--selector",
                              "which=x", "--json", NULL};
        out = fl_fleet_path(f, "slowx.out");
        cli = fl_fleet_cli_spawn(f, argv, out);
    }
    deadline = fl_clock_ms() + (int64_t)(60000 * fl_test_timeout_scale());
    while (fl_fleet_sleepers(f, 1) < 1) {
        if (fl_clock_ms() > deadline)
            fail_msg("x's migration did not start in 60 s");
        fl_clock_sleep_ms(20);
    }
    {
        const char *argv[] = {"flotilla", "rollout", "start", yb,
                              "--selector", "which=y", "--waves", "100%",
                              "--target-timeout", "2s", "--json", NULL};
        fl_test_proc_t r;
        fl_fleet_cli(f, &r, argv);
        if (r.status != 0)
            fail_msg("rollout start: exit %d\n%s%s", r.status, r.out, r.err);
        st = json_loads(r.out, 0, NULL);
        fl_test_proc_release(&r);
    }
    /* y's failure says its run ended cancelled, while x still sleeps. */
    for (;;) {
        const char *argv[] = {"flotilla", "rollout", "status", NULL,
                              "--json", NULL};
        fl_test_proc_t r;
        int said = 0;

        argv[3] = json_string_value(json_object_get(st, "id"));
        fl_fleet_cli(f, &r, argv);
        said = strstr(r.out, "its run ended cancelled") != NULL;
        fl_test_proc_release(&r);
        /* Still sleeping after the answer was seen: it came before. */
        if (fl_fleet_sleepers(f, 1) < 1)
            fail_msg("x's migration ended before y's cancelled command was "
                     "answered");
        if (said)
            break;
        fl_clock_sleep_ms(200);
    }
    json_decref(st);
    if (fl_fleet_wait_pid(cli, 120) != 0)
        fail_msg("x's dispatch failed; see %s", out);
    assert_int_equal(s_applied(f, 1, db[1], ""), 0);
    fl_fleet_stop_clean(f);
    fl_fleet_files_free(one);
    free(out);
    free(sb);
    free(yb);
    s->passed = 1;
}

/*
 * A bundle the agent verified before is checked again at each command:
 * once its signer's key is gone from the agent's trust store (and a
 * SIGHUP), or once it has expired, a command for it is refused and
 * nothing runs; with the key back it runs.  Before, a bundle verified
 * once stayed good for the agent's life: a release key removed to revoke
 * it, or a bundle past its expiry, still ran on every target it was sent
 * to (found by an audit, by running).
 */
static void
test_fleet_a_cached_bundle_is_checked_again_at_each_command(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char **one = fl_fleet_table_migrations(1);
    char **two = fl_fleet_table_migrations(2);
    const char *expires[] = {"--expires", "8s", NULL};
    char db[2][64], target[2][96], tail[256], *a = NULL, *b = NULL;
    char *dir = NULL, *pub = NULL, *off = NULL, *id = NULL;
    const char *names[] = {target[0], target[1], NULL};
    json_t *d = NULL;
    fl_test_proc_t r;

    fl_fleet_open(f, s->p, NULL);
    pub = fl_fleet_path(f, "trust/rel.pub");
    off = fl_fleet_path(f, "trust-rel.pub.off");
    fl_fleet_start_coordinator(f);
    for (int i = 0; i < 2; i++) {
        snprintf(db[i], sizeof(db[i]), "%s_cb%d", s->p, i + 1);
        snprintf(target[i], sizeof(target[i]), "agent-0/%s", db[i]);
        fl_fleet_createdb(f, 0, db[i]);
    }
    snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_cb*\"\n",
             s->p);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "agent-0", 0, 1, tail));
    s_wait_targets(f, names, "reachable", "the agent's targets");
    a = s_bundle(f, f->key, "cached", (const char *const *)one);
    d = s_dispatch_action(f, a, "plan", 0); /* verified, cached */
    json_decref(d);

    /* The release key revoked on the agent: refused, nothing runs. */
    if (rename(pub, off) != 0)
        fail_msg("rename %s: %s", pub, strerror(errno));
    fl_fleet_signal_agent(f, 0, SIGHUP);
    d = s_dispatch_action(f, a, "apply", 3);
    for (int i = 0; i < 2; i++)
        s_expect_result(d, target[i], "refused", "trust store");
    json_decref(d);
    assert_int_equal(s_count(f, 0, db[0], "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'm1'"), 0);
    /* Trusted again: it runs. */
    if (rename(off, pub) != 0)
        fail_msg("rename %s: %s", off, strerror(errno));
    fl_fleet_signal_agent(f, 0, SIGHUP);
    d = s_dispatch_action(f, a, "apply", 0);
    s_expect_result(d, target[0], "ok", NULL);
    json_decref(d);
    assert_int_equal(s_count(f, 0, db[0], "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'm1'"), 1);

    /*
     * A bundle of 8 s verified in a rollout's first wave and sent to its
     * second after it expired (10 s of bake): the second wave's target
     * refuses it, and the rollout halts.
     */
    dir = s_migrations(f, "expiring", (const char *const *)two);
    b = fl_fleet_path(f, "expiring.bundle");
    fl_fleet_bundle_with(f, f->key, dir, b, expires);
    {
        const char *argv[] = {"flotilla", "rollout", "start", b,
                              "--selector", "", "--waves", "1;100%",
                              "--bake", "10s", "--watch", "--json", NULL};
        fl_fleet_cli(f, &r, argv);
    }
    if (r.status != 7 || strstr(r.out, "expired") == NULL)
        fail_msg("the rollout: exit %d, wanted 7 (halted) and the second "
                 "wave refused as expired\n%s\n%s", r.status, r.out, r.err);
    d = json_loads(r.out, 0, NULL);
    id = fl_strdup(json_string_value(json_object_get(d, "id")));
    json_decref(d);
    fl_test_proc_release(&r);
    assert_int_equal(s_count(f, 0, db[0], "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'm2'"), 1);
    assert_int_equal(s_count(f, 0, db[1], "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'm2'"), 0);
    /* Expired, the bundle still rolls the rollout back (its first wave). */
    {
        const char *argv[] = {"flotilla", "rollout", "rollback", id,
                              "--watch", NULL};
        fl_fleet_cli(f, &r, argv);
    }
    if (r.status != 8)
        fail_msg("rollback of the expired bundle's rollout: exit %d, wanted "
                 "8 (rolled back)\n%s\n%s", r.status, r.out, r.err);
    fl_test_proc_release(&r);
    assert_int_equal(s_count(f, 0, db[0], "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'm2'"), 0);
    fl_fleet_stop_clean(f);
    free(id);
    free(dir);
    free(b);
    free(a);
    free(off);
    free(pub);
    fl_fleet_files_free(one);
    fl_fleet_files_free(two);
    s->passed = 1;
}

/*
 * Commands for one target run in the order they came, whatever their
 * bundles.  The agent, held with SIGSTOP, is sent an apply of bundle A
 * (version 1, a bundle it has never seen) and then one of bundle B
 * (version 2, which it verified for a plan before); let go, it must run
 * A before B.  Before, a command whose bundle was verified already went
 * to its target at once, ahead of an earlier one whose bundle was still
 * being fetched: version 2 applied first, and A's version 1 was then
 * refused as out of order (found by an audit).
 */
static void
test_fleet_commands_for_one_target_run_in_the_order_they_came(
    void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char **two = fl_fleet_table_migrations(2);
    const char *const first[] = {two[0], two[1], NULL};
    char db[64], target[96], tail[256], *a = NULL, *b = NULL, *out[2];
    const char *names[] = {target, NULL};
    pid_t cli[2];
    PGconn *ctl = NULL;
    char *order = NULL;
    json_t *d = NULL;

    /* The agent, stopped, is not taken for gone meanwhile. */
    fl_fleet_open(f, s->p,
                  "heartbeat_timeout: 60s\nrestart_grace: 60s\n");
    fl_fleet_start_coordinator(f);
    snprintf(db, sizeof(db), "%s_or1", s->p);
    snprintf(target, sizeof(target), "agent-0/%s", db);
    fl_fleet_createdb(f, 0, db);
    snprintf(tail, sizeof(tail), "discover:\n  - databases: \"%s_or*\"\n",
             s->p);
    fl_fleet_start_agent(f, fl_fleet_add_agent(f, "agent-0", 0, 1, tail));
    s_wait_targets(f, names, "reachable", "the agent's target");
    a = s_bundle(f, f->key, "first", first);
    b = s_bundle(f, f->key, "second", (const char *const *)two + 2);
    d = s_dispatch_action(f, b, "plan", 0); /* B verified on the agent */
    json_decref(d);

    fl_fleet_signal_agent(f, 0, SIGSTOP);
    ctl = PQconnectdb(f->ctl.conninfo);
    assert_int_equal(PQstatus(ctl), CONNECTION_OK);
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {"flotilla", "dispatch", i ? b : a,
                              "--selector", "", NULL};
        int64_t deadline = fl_clock_ms() + (int64_t)(
            60000 * fl_test_timeout_scale());
        char *n = NULL;

        out[i] = fl_fleet_path(f, i ? "second.out" : "first.out");
        cli[i] = fl_fleet_cli_spawn(f, argv, out[i]);
        /* Written, hence queued to the agent, before the next. */
        while ((n = fl_test_query_value(
                    ctl, "SELECT count(*) FROM flotilla_control.commands"
                         " WHERE action = 'apply'")) != NULL &&
               strtol(n, NULL, 10) < i + 1) {
            free(n);
            if (fl_clock_ms() > deadline)
                fail_msg("dispatch %d was not written", i + 1);
            fl_clock_sleep_ms(20);
        }
        free(n);
    }
    PQfinish(ctl);
    fl_clock_sleep_ms(1000); /* both sent, into the agent's socket */
    fl_fleet_signal_agent(f, 0, SIGCONT);
    for (int i = 0; i < 2; i++)
        if (fl_fleet_wait_pid(cli[i], 120) != 0)
            fail_msg("the dispatch of bundle %s failed; see %s",
                     i ? "B" : "A", out[i]);
    order = fl_fleet_query(f, 0, db, "SELECT string_agg(version::text, ','"
                           " ORDER BY id) FROM flotilla.migration_logs"
                           " WHERE step = 'execute' AND status = 'ok'");
    assert_non_null(order);
    assert_string_equal(order, "1,2");
    assert_int_equal(s_applied(f, 0, db, ""), 2);
    fl_fleet_stop_clean(f);
    free(order);
    for (int i = 0; i < 2; i++)
        free(out[i]);
    free(a);
    free(b);
    fl_fleet_files_free(two);
    s->passed = 1;
}

/*
 * max_bundle_lifetime is each daemon's own policy (docs/fleet.md): a
 * bundle valid for longer than the coordinator accepts (40 d here) is
 * refused before anything is sent; one the coordinator accepts but an
 * agent does not (20 d here) is refused by that agent, which applies
 * nothing, so a coordinator laxer than its agents cannot widen what they
 * run; one within both applies.  No test ran either daemon's key.
 */
static void
test_fleet_bundle_lifetime_is_each_daemon_s_own_policy(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char **one = fl_fleet_table_migrations(1);
    const char *days[] = {"60d", "30d", "10d"};
    char db[64], target[96], tail[256], *dir = NULL;
    const char *names[] = {target, NULL};
    json_t *d = NULL;
    int k;

    fl_fleet_open(f, s->p, "max_bundle_lifetime: 40d\n");
    fl_fleet_start_coordinator(f);
    snprintf(db, sizeof(db), "%s_life", s->p);
    snprintf(target, sizeof(target), "agent-0/%s", db);
    fl_fleet_createdb(f, 0, db);
    snprintf(tail, sizeof(tail), "max_bundle_lifetime: 20d\n"
             "discover:\n  - databases: \"%s_life\"\n", s->p);
    k = fl_fleet_add_agent(f, "agent-0", 0, 1, tail);
    fl_fleet_start_agent(f, k);
    s_wait_targets(f, names, "reachable", "the agent's target");
    dir = s_migrations(f, "life", (const char *const *)one);
    for (int i = 0; i < 3; i++) {
        char *name = fl_asprintf("life-%s.bundle", days[i]);
        char *b = fl_fleet_path(f, name);
        const char *expires[] = {"--expires", days[i], NULL};

        fl_fleet_bundle_with(f, f->key, dir, b, expires);
        if (i == 0) {
            /* The coordinator's 40 d: refused, nothing sent. */
            d = s_dispatch_json(f, b, "", 3);
            if (strstr(json_string_value(json_object_get(
                           json_object_get(d, "error"), "message")) ?: "",
                       "valid for longer than this host accepts") == NULL)
                fail_msg("a bundle of 60 d: %s", json_dumps(d, 0));
        } else if (i == 1) {
            /* The agent's 20 d: refused there, nothing applied. */
            d = s_dispatch_json(f, b, "", 3);
            s_expect_result(d, target, "refused",
                            "valid for longer than this host accepts");
        } else {
            d = s_dispatch_json(f, b, "", 0);
            s_expect_result(d, target, "ok", NULL);
        }
        json_decref(d);
        assert_int_equal(s_count(f, 0, db, "SELECT count(*) FROM pg_class"
                                 " WHERE relname = 'm1'"), i == 2);
        free(b);
        free(name);
    }
    fl_fleet_stop_clean(f);
    free(dir);
    fl_fleet_files_free(one);
    s->passed = 1;
}

/*
 * Expiry stops a bundle from being applied, never from being rolled
 * back: an emergency rollback after the bundle expired is exactly when
 * an operator needs it.  Two targets apply a bundle of 8 s; once it has
 * expired, an apply is refused, and each target's rollback runs: the
 * first with the bundle still cached by the agent, the second after the
 * agent restarted and verified it again.  Before, the agent refused
 * every command of an expired bundle, rollbacks included.
 */
static void
test_fleet_an_expired_bundle_still_rolls_back(void **state)
{
    s_state *s = *state;
    fl_fleet_t *f = &s->f;
    char **one = fl_fleet_table_migrations(1);
    const char *expires[] = {"--expires", "8s", NULL};
    char db[2][64], target[2][96], tail[512], sel[2][8], *dir, *b;
    const char *names[] = {target[0], target[1], NULL};
    int64_t built;
    json_t *d = NULL;
    int k;

    fl_fleet_open(f, s->p, NULL);
    fl_fleet_start_coordinator(f);
    for (int i = 0; i < 2; i++) {
        snprintf(db[i], sizeof(db[i]), "%s_ex%d", s->p, i + 1);
        snprintf(target[i], sizeof(target[i]), "agent-0/%s", db[i]);
        snprintf(sel[i], sizeof(sel[i]), "n=%d", i + 1);
        fl_fleet_createdb(f, 0, db[i]);
    }
    snprintf(tail, sizeof(tail),
             "discover:\n  - databases: \"%s_ex1\"\n    labels: [n=1]\n"
             "  - databases: \"%s_ex2\"\n    labels: [n=2]\n", s->p, s->p);
    k = fl_fleet_add_agent(f, "agent-0", 0, 1, tail);
    fl_fleet_start_agent(f, k);
    s_wait_targets(f, names, "reachable", "the agent's targets");
    dir = s_migrations(f, "expiring", (const char *const *)one);
    b = fl_fleet_path(f, "expiring.bundle");
    built = fl_clock_ms();
    fl_fleet_bundle_with(f, f->key, dir, b, expires);
    d = s_dispatch_json(f, b, "", 0);
    s_expect_result(d, target[0], "ok", NULL);
    s_expect_result(d, target[1], "ok", NULL);
    json_decref(d);
    while (fl_clock_ms() - built < 9000)
        fl_clock_sleep_ms(200);

    /* Applying it is refused by the coordinator, which verifies it. */
    d = s_dispatch_action(f, b, "apply", 3);
    if (strstr(json_string_value(json_object_get(
                   json_object_get(d, "error"), "message")) ?: "",
               "expired") == NULL)
        fail_msg("apply of the expired bundle: %s", json_dumps(d, 0));
    json_decref(d);
    {
        const char *argv[] = {"flotilla", "dispatch", b, "--selector", sel[0],
                              "--action", "rollback", "--json", NULL};
        d = s_dispatch_argv(f, argv, 0);
        s_expect_result(d, target[0], "ok", NULL);
        json_decref(d);
    }
    assert_int_equal(s_count(f, 0, db[0], "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'm1'"), 0);
    /* Restarted, the agent verifies the bundle again. */
    fl_fleet_signal_agent(f, k, SIGTERM);
    s_wait_agent(f, "agent-0", "offline");
    fl_fleet_start_agent(f, k);
    s_wait_targets(f, names, "reachable", "the agent's targets again");
    {
        const char *argv[] = {"flotilla", "dispatch", b, "--selector", sel[1],
                              "--action", "rollback", "--json", NULL};
        d = s_dispatch_argv(f, argv, 0);
        s_expect_result(d, target[1], "ok", NULL);
        json_decref(d);
    }
    assert_int_equal(s_count(f, 0, db[1], "SELECT count(*) FROM pg_class"
                             " WHERE relname = 'm1'"), 0);
    fl_fleet_stop_clean(f);
    free(dir);
    free(b);
    fl_fleet_files_free(one);
    s->passed = 1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_fleet_targets_discovery_and_dispatch_exactly_once, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_unenrolled_wrong_pin_operator_and_revocation, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_untrusted_bundle_refused_by_every_agent, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_agent_kill9_mid_dispatch_and_unacknowledged_results,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_coordinator_kill9_mid_dispatch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_garbage_clients_are_dropped_and_agents_still_served,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_an_agent_s_text_is_bounded_and_cleaned, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_an_agent_speaks_only_for_its_own_targets, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_an_agent_applies_a_deep_statement, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_heartbeat_loss_offline_then_online, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_cancel_to_a_server_that_hangs_stalls_nothing_else,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_discovery_leaves_out_flotillas_schemas_only, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_hello_past_the_message_limit_comes_in_parts,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_discovery_names_any_database, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_cancel_the_server_never_takes_closes_the_connection,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_an_agent_stops_while_its_server_never_answers,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_read_the_server_never_answers_is_cut_off, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_signed_lint_gate_holds_on_an_agent_as_locally, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_ledgers_read_every_state_interval_not_every_discovery,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_ledger_read_before_the_welcome_is_sent_after_it,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_dispatch_plan_rollback_and_one_coordinator, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_command_for_a_target_the_agent_lost, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_daemons_open_their_log_again_at_sighup, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_damaged_journal_file_is_set_aside_with_a_warning,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_commands_for_one_target_run_in_the_order_they_came,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_bundle_is_checked_again_when_its_command_starts,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_cancelled_command_waiting_for_its_bundle_is_answered,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_cached_bundle_is_checked_again_at_each_command,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_an_expired_bundle_still_rolls_back, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_bundle_lifetime_is_each_daemon_s_own_policy, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_rollback_is_not_settled_while_the_apply_runs,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_journaled_command_waits_for_its_target_s_discovery,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_fleet_a_run_s_ledger_read_is_cut_off_too, s_setup,
            s_teardown),
    };
    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return fl_test_run_part("fleet", tests, sizeof(tests) / sizeof(*tests));
}
