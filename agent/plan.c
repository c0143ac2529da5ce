/*
 * plan.c - the dry run: for each pending migration, what it would lock,
 * rewrite, scan and back up, its lint findings and live checks, and a
 * rehearsal of its statements that is rolled back.
 *
 * The rehearsal holds the target lock, as apply does, so that no apply
 * runs under it.  All pending migrations run in one transaction, each
 * behind a savepoint of its own that is released as soon as the
 * migration has run (so later migrations see its effects, as they will
 * when applied, and savepoints do not nest: the cost of a plan grows
 * with the number of migrations, not its square).  Each runs under
 * apply's lock_timeout and statement_timeout, with a default statement
 * timeout (S_PLAN_STATEMENT_TIMEOUT_MS) when none is set, so a rehearsal
 * never waits for a lock or runs without bound.  It takes the locks its
 * statements take, and holds them until the transaction is rolled back
 * at the end of the plan.  Sequences do not roll back: those the
 * rehearsal moved are put back afterwards when nobody used them since.
 * What cannot be rehearsed in that transaction is "not rehearsed": a
 * no-transaction migration, and one with a statement that acts outside
 * its transaction (fl_stmt_t.outside: ends a session, writes a file on
 * the server), which the rollback would not undo (those after either are
 * rehearsed without its effects; one that then fails may depend on it,
 * so it is not rehearsed either, nor anything after it), and a migration
 * that uses an enum value an earlier migration of the plan adds (nor
 * anything after it).  The plan then does not say that apply would go
 * ahead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/lintcheck.h"
#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"

/*
 * Appends a zeroed element of size to *items (*n of them) and returns it:
 * the report's arrays grow one element at a time.
 */
static void *
s_push(void *items, size_t *n, size_t size)
{
    void **pp = items;
    char *base = fl_reallocarray(*pp, *n + 1, size);

    *pp = base;
    memset(base + *n * size, 0, size);
    return base + (*n)++ * size;
}

static char *
s_qualified(const char *schema, const char *name)
{
    return fl_asprintf("%s%s%s", schema ? schema : "", schema ? "." : "",
                       name);
}

/* A statement's facts for the plan. */
static void
s_stmt_facts(fl_plan_stmt_t *ps, const fl_stmt_t *st, size_t index)
{
    ps->index = (int)index + 1;
    ps->line = st->line;
    ps->column = st->column;
    ps->kind = fl_strdup(st->kind ? st->kind : "");
    ps->sql = fl_strdup(st->sql);
    ps->rewrites = st->rewrites;
    ps->scans = st->scans;
    ps->destructive = st->destructive;
    ps->no_transaction = st->no_transaction;
    for (size_t i = 0; i < st->ntables; i++) {
        fl_plan_lock_t *l = s_push(&ps->locks, &ps->nlocks, sizeof(*l));
        l->table = s_qualified(st->tables[i].schema, st->tables[i].name);
        l->lock = fl_lock_level_name(st->tables[i].lock);
        l->writes = st->tables[i].writes;
    }
    for (size_t i = 0; i < st->ndestroys; i++) {
        char **t = NULL;
        if (!st->destroys[i].table)
            continue; /* DROP SCHEMA: no table named in the statement */
        t = s_push(&ps->backups, &ps->nbackups, sizeof(*t));
        *t = s_qualified(st->destroys[i].schema, st->destroys[i].table);
    }
}

static void s_strings_release(char **items, size_t n);

static int
s_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The backups apply takes before st, read from the catalog now that the
 * statements before it have run (fl__type_backups): a composite type it
 * names stands for the tables of its columns.
 */
static int
s_backups_of(fl_pipeline_t *p, const fl_stmt_t *st, fl_plan_stmt_t *ps,
             fl_error_t *err)
{
    char **list = NULL;
    size_t n = 0;
    int rc;

    if (st->ndestroys == 0)
        return 0;
    if ((rc = fl__type_backups(p, st, &list, &n, err)) != 0) {
        s_strings_release(list, n);
        return rc;
    }
    /* In a stable order (the catalog's is not). */
    if (n > 1)
        qsort(list, n, sizeof(char *), s_strcmp);
    s_strings_release(ps->backups, ps->nbackups);
    ps->backups = list;
    ps->nbackups = n;
    return 0;
}

/* Adds text to a list of strings. */
static void
s_push_string(char ***items, size_t *n, const char *text)
{
    char **t = s_push(items, n, sizeof(*t));
    *t = fl_strdup(text);
}

/*
 * What a statement did, read off the server around it: the table locks
 * it newly took and the tables it rewrote (a changed relfilenode).  Only
 * the tables the statement names are checked for a rewrite (a table
 * rewritten through a function or a DO block is not seen), so that check
 * costs what the statement touches.  The locks are read from pg_locks,
 * which lists every lock the rehearsal holds so far: once it holds more
 * than S_OBSERVE_MAX_LOCKS, they are no longer read (observed_locks is
 * null), so that a plan's cost stays linear in its migrations.
 */
#define S_OBSERVE_MAX_LOCKS 1000

typedef struct {
    json_t *locks;      /* "oid mode" of every relation lock held */
    uint32_t oids[8];   /* the statement's tables, resolved (0: none) */
    char kinds[8];
    char *nodes[8];     /* their relfilenodes */
    size_t n;
} s_observation;

static void
s_observation_release(s_observation *o)
{
    json_decref(o->locks);
    o->locks = NULL;
    for (size_t i = 0; i < o->n; i++) {
        free(o->nodes[i]);
        o->nodes[i] = NULL;
    }
}

static int
s_observe(fl_pipeline_t *p, const fl_stmt_t *st, s_observation *o,
          int resolve, int read_locks, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = 0;

    o->locks = read_locks ? json_object() : NULL;
    if (read_locks)
        rc = fl_pg_query(p->pg, &r,
        "SELECT l.relation, l.mode FROM pg_catalog.pg_locks l WHERE l.pid"
        " OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() AND l.locktype"
        " OPERATOR(pg_catalog.=) 'relation' AND l.granted", 0, NULL, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        char key[96];
        snprintf(key, sizeof(key), "%s %s", fl_pg_value(&r, i, 0),
                 fl_pg_value(&r, i, 1));
        json_object_set_new(o->locks, key, json_true());
    }
    fl_pg_result_release(&r);
    if (rc == 0 && resolve) {
        const char *schemas[8], *names[8];
        o->n = st->ntables < 8 ? st->ntables : 8;
        for (size_t i = 0; i < o->n; i++) {
            schemas[i] = st->tables[i].schema;
            names[i] = st->tables[i].name;
        }
        rc = fl__resolve(p, schemas, names, o->n, o->oids, o->kinds, err);
    }
    for (size_t i = 0; rc == 0 && i < o->n; i++) {
        char oid[16];
        const char *params[1] = {oid};
        free(o->nodes[i]);
        o->nodes[i] = NULL;
        if (o->oids[i] == 0)
            continue;
        snprintf(oid, sizeof(oid), "%u", o->oids[i]);
        /* NULL once the statement dropped it. */
        rc = fl_pg_query_value(p->pg, &o->nodes[i],
            "SELECT (SELECT relfilenode::pg_catalog.text FROM"
            " pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=)"
            " $1::pg_catalog.oid)", 1, params, err);
    }
    return rc;
}

/* Records in ps what the statement took and rewrote (before: b, after: a). */
static int
s_observed(fl_pipeline_t *p, fl_plan_stmt_t *ps, const s_observation *b,
           const s_observation *a, fl_error_t *err)
{
    json_t *fresh = json_array(), *v = NULL;
    const char *key = NULL;
    int rc = 0;

    ps->observed = 1;
    ps->observed_locks_read = b->locks && a->locks;
    json_object_foreach(a->locks, key, v) {
        if (json_object_get(b->locks, key) == NULL)
            json_array_append_new(fresh, json_string(key));
    }
    if (json_array_size(fresh) > 0) {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        char *text = json_dumps(fresh, JSON_COMPACT);
        const char *params[1] = {text};
        rc = fl_pg_query(p->pg, &r,
            "SELECT c.oid::pg_catalog.regclass::pg_catalog.text"
            " OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||)"
            " pg_catalog.split_part(e, ' ', 2)"
            " FROM pg_catalog.json_array_elements_text($1::pg_catalog.json)"
            " WITH ORDINALITY AS u(e, i) JOIN pg_catalog.pg_class c ON c.oid"
            " OPERATOR(pg_catalog.=) pg_catalog.split_part(e, ' ', 1)"
            "::pg_catalog.oid JOIN pg_catalog.pg_namespace n ON n.oid"
            " OPERATOR(pg_catalog.=) c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN"
            " ('pg_catalog', 'information_schema', 'flotilla',"
            " 'flotilla_backup') ORDER BY u.i", 1, params, err);
        for (size_t i = 0; rc == 0 && i < r.nrows; i++)
            s_push_string(&ps->observed_locks, &ps->nobserved_locks,
                          fl_pg_value(&r, i, 0));
        fl_pg_result_release(&r);
        free(text);
    }
    json_decref(fresh);
    for (size_t i = 0; rc == 0 && i < a->n; i++) {
        char *name = NULL;
        char oid[16];
        const char *params[1] = {oid};
        if (b->nodes[i] == NULL || a->nodes[i] == NULL ||
            strcmp(b->nodes[i], a->nodes[i]) == 0 ||
            (a->kinds[i] != 'r' && a->kinds[i] != 'm'))
            continue;
        snprintf(oid, sizeof(oid), "%u", a->oids[i]);
        rc = fl_pg_query_value(p->pg, &name,
            "SELECT $1::pg_catalog.oid::pg_catalog.regclass::pg_catalog.text",
            1, params, err);
        if (rc == 0 && name)
            s_push_string(&ps->observed_rewrites, &ps->nobserved_rewrites,
                          name);
        free(name);
    }
    return rc;
}

#define S_NO_TRANSACTION                                                    \
    "a no-transaction migration cannot run inside the rehearsal transaction"
#define S_AFTER_UNPROVEN                                                    \
    "an earlier migration could not be rehearsed, and one after it may "   \
    "depend on it"

/* Whether a statement of stmts is an ALTER TYPE (ADD VALUE among them). */
static int
s_alters_a_type(const fl_stmt_list_t *stmts)
{
    for (size_t i = 0; i < stmts->count; i++)
        if (stmts->items[i].kind &&
            strcmp(stmts->items[i].kind, "ALTER TYPE") == 0)
            return 1;
    return 0;
}

/* The checks' and validate statements' JSON reports (checks.c, runner.c). */
static void
s_checks_from_json(fl_plan_stmt_t *ps, const json_t *a)
{
    size_t i;
    json_t *o = NULL;

    json_array_foreach(a, i, o) {
        fl_plan_check_t *c = s_push(&ps->checks, &ps->nchecks, sizeof(*c));
        const char *sample = json_string_value(json_object_get(o, "sample"));
        const char *problem = json_string_value(json_object_get(o, "problem"));
        const char *skipped = json_string_value(json_object_get(o, "skipped"));
        const char *holds = json_string_value(json_object_get(o, "holds"));
        c->check = fl_strdup(json_string_value(json_object_get(o, "check")));
        c->target = fl_strdup(json_string_value(json_object_get(o, "target")));
        c->ok = json_is_true(json_object_get(o, "ok"));
        c->count = json_integer_value(json_object_get(o, "count"));
        c->sample = sample ? fl_strdup(sample) : NULL;
        c->problem = problem ? fl_strdup(problem) : NULL;
        c->skipped = skipped ? fl_strdup(skipped) : NULL;
        c->holds = holds ? fl_strdup(holds) : NULL;
    }
}

static void
s_validate_from_json(fl_plan_migration_t *pm, const json_t *a)
{
    size_t i;
    json_t *o = NULL;

    json_array_foreach(a, i, o) {
        fl_plan_validate_t *v = s_push(&pm->validate, &pm->nvalidate,
                                       sizeof(*v));
        const char *result = json_string_value(json_object_get(o, "result"));
        v->statement = fl_strdup(json_string_value(json_object_get(o,
                                                               "statement")));
        v->at = fl_strdup(json_string_value(json_object_get(o, "at")));
        v->ok = json_is_true(json_object_get(o, "ok"));
        v->result = result ? fl_strdup(result) : NULL;
    }
}

/*
 * Plans one migration: its text validated, then, unless *why_not says
 * why it cannot be, rehearsed inside the plan's transaction behind a
 * savepoint of its own, released (its effects kept for the migrations
 * after it) or rolled back at once.  Fills pm.  When this migration
 * fails or is refused, *why_not gets why the migrations after it are not
 * rehearsed (a static string).  A no-transaction migration is not
 * rehearsed (*skipped gets the first one's file), but those after it
 * are, without its effects: one that then fails or is refused may depend
 * on it, so it is "not rehearsed" rather than failed.
 */
static int
s_plan_one(fl_pipeline_t *p, const fl_migration_t *m,
           const fl_ledger_row_t *row, const char **why_not,
           const char **skipped, size_t *held, fl_plan_migration_t *pm,
           fl_error_t *err)
{
    fl_stmt_list_t stmts = {NULL, 0};
    json_t *validate = json_array();
    fl_error_t perr = FL_ERROR_INIT;
    fl__stats_t stats = {0, 0, 0, NULL};
    fl_finding_list_t findings = {NULL, 0};
    const char *verdict = "ok";
    char *problem = NULL;
    s_observation before, after;
    char *outside[2] = {NULL, NULL};
    char *acts = NULL;
    int rc = 0;

    memset(&before, 0, sizeof(before));
    memset(&after, 0, sizeof(after));
    /* As apply: a file changed since it ran in part is refused (before,
     * plan said OK of it, found by an audit). */
    if (fl__validate_text(p, m, &stmts, &findings, &perr) != 0 ||
        fl__partial_changed(m, row, &perr) != 0) {
        verdict = "refused";
        problem = fl_strdup(perr.message);
        fl_error_clear(&perr);
    }
    for (size_t i = 0; i < findings.count; i++) {
        const fl_finding_t *f = &findings.items[i];
        fl_plan_finding_t *pf = s_push(&pm->lint, &pm->nlint, sizeof(*pf));
        pf->rule = fl_strdup(f->rule);
        pf->severity = fl_lint_severity_name(f->severity);
        pf->message = fl_strdup(f->message);
        pf->line = f->line;
        pf->column = f->column;
        pf->help = f->help ? fl_strdup(f->help) : NULL;
        pf->not_enforced = f->not_enforced;
    }
    fl_finding_list_release(&findings);
    for (size_t i = 0; i < stmts.count; i++)
        s_stmt_facts(s_push(&pm->stmts, &pm->nstmts, sizeof(fl_plan_stmt_t)),
                     &stmts.items[i], i);
    /* As apply: what cannot run in a transaction stays in the scope. */
    for (size_t i = 0; i < stmts.count && strcmp(verdict, "ok") == 0; i++)
        if (fl__reach_check(p, m, &stmts.items[i], 0, &perr) != 0) {
            verdict = "refused";
            problem = fl_strdup(perr.message);
            fl_error_clear(&perr);
        }
    /*
     * What a statement would do outside the rehearsal's transaction (end
     * another session, write a file on the server) its rollback would not
     * undo, and a plan changes nothing: not run, as a no-transaction
     * migration is not.
     */
    for (size_t i = 0; i < stmts.count && acts == NULL; i++)
        if (stmts.items[i].outside)
            acts = fl_asprintf("line %d: %s acts outside the transaction, "
                               "which the rehearsal's rollback would not "
                               "undo", stmts.items[i].line,
                               stmts.items[i].outside);
    if (*why_not != NULL || stmts.count == 0 || m->no_transaction || acts ||
        strcmp(verdict, "ok") != 0) {
        const char *why = *why_not ? *why_not
                          : m->no_transaction ? S_NO_TRANSACTION : acts;
        for (size_t i = 0; why && i < pm->nstmts; i++)
            pm->stmts[i].rehearsal = fl_strdup("not rehearsed");
        if (why && strcmp(verdict, "ok") == 0) {
            verdict = "not rehearsed";
            problem = fl_strdup(why);
            if ((m->no_transaction || acts) && *skipped == NULL)
                *skipped = m->file;
        }
        if (strcmp(verdict, "refused") == 0 && *why_not == NULL)
            *why_not = "an earlier migration of this plan is refused";
        goto done;
    }
    if ((rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_plan", err)) != 0 ||
        (rc = fl__set_timeouts(p, m, 1, err)) != 0 ||
        (p->target[0] &&
         (rc = fl__net_outside_before(p->pg, p->target, outside, err)) != 0))
        goto done;
    if (fl__custom_validate(p, m, validate, &perr) != 0) {
        verdict = "refused";
        problem = fl_strdup(perr.message);
        fl_error_clear(&perr);
    }
    for (size_t i = 0; i < stmts.count && strcmp(verdict, "ok") == 0; i++) {
        const fl_stmt_t *st = &stmts.items[i];
        fl_plan_stmt_t *ps = &pm->stmts[i];
        json_t *checks = json_array();
        int crc = fl__run_checks(p, m, &stmts, i, checks, &perr);

        s_checks_from_json(ps, checks);
        json_decref(checks);
        if (crc != 0 && *skipped) {
            verdict = "not rehearsed";
            problem = fl_asprintf("a check refused it (%s), perhaps because "
                                  "this migration depends on %s, which could "
                                  "not be rehearsed", perr.message, *skipped);
            *why_not = S_AFTER_UNPROVEN;
            fl_error_clear(&perr);
            break;
        }
        if (crc != 0) {
            verdict = "refused";
            problem = fl_strdup(perr.message);
            fl_error_clear(&perr);
            break;
        }
        if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
            (rc = s_observe(p, st, &before, 1,
                            *held <= S_OBSERVE_MAX_LOCKS, err)) != 0 ||
            (rc = s_backups_of(p, st, ps, err)) != 0)
            goto done;
        if (fl__run(p, m, &stmts, (int)i, 1, 0, &stats, &perr) != 0) {
            /*
             * A value an earlier migration added to an enum cannot be used
             * in the transaction that added it; apply commits that
             * migration first, so this is the rehearsal's limit, not the
             * migration's failure.
             */
            if (strcmp(perr.sqlstate, "55P04") == 0 && !s_alters_a_type(&stmts)) {
                verdict = "not rehearsed";
                *why_not = "it uses an enum value an earlier migration of "
                           "this plan adds, which PostgreSQL refuses in the "
                           "transaction that added it (apply commits that "
                           "migration first)";
                problem = fl_strdup(*why_not);
                ps->rehearsal = fl_strdup("not rehearsed");
            } else if (*skipped) {
                verdict = "not rehearsed";
                problem = fl_asprintf("the rehearsal failed (%s), perhaps "
                                      "because this migration depends on %s, "
                                      "which could not be rehearsed",
                                      perr.message, *skipped);
                ps->rehearsal = fl_strdup(perr.message);
                *why_not = S_AFTER_UNPROVEN;
            } else {
                verdict = "failed";
                problem = fl_strdup(perr.message);
                ps->rehearsal = fl_strdup(perr.message);
            }
            fl_error_clear(&perr);
            break;
        }
        ps->rehearsal = fl_strdup("ok");
        memcpy(after.oids, before.oids, sizeof(after.oids));
        memcpy(after.kinds, before.kinds, sizeof(after.kinds));
        after.n = before.n;
        if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
            (rc = s_observe(p, st, &after, 0, before.locks != NULL, err)) != 0 ||
            (rc = s_observed(p, ps, &before, &after, err)) != 0)
            goto done;
        if (after.locks)
            *held = json_object_size(after.locks);
        s_observation_release(&before);
        s_observation_release(&after);
    }
    /*
     * Its COMMIT: deferred constraints are checked there, and one that
     * fails commits nothing (before, plan said OK of such a migration,
     * found by an audit).  Checked at once behind a savepoint, rolled
     * back, so that they stay deferred for what follows.
     */
    if (strcmp(verdict, "ok") == 0) {
        if ((rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_plan_commit",
                             err)) != 0)
            goto done;
        if (fl_pg_exec(p->pg, "SET CONSTRAINTS ALL IMMEDIATE", &perr) != 0) {
            verdict = "failed";
            problem = fl_asprintf("its COMMIT would fail: %s",
                                  perr.message);
            fl_error_clear(&perr);
        }
        if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT"
                             " flotilla_plan_commit", err)) != 0 ||
            (rc = fl_pg_exec(p->pg, "RELEASE SAVEPOINT"
                             " flotilla_plan_commit", err)) != 0)
            goto done;
    }
    /*
     * As apply before its COMMIT: a schema target's migration stays in its
     * scope, flotilla's own tables are untouched (the net), and the
     * target's lock is still held.
     */
    if (strcmp(verdict, "ok") == 0) {
        /* In apply's order: the net's refusals, then the target's scope. */
        rc = fl__own_check(p, m, 1, err);
        if (rc == 0 && p->target[0])
            rc = fl__outside_check(p, m, outside, "flotilla_plan", err);
        if (rc == 0)
            rc = fl__lock_check(p, m, 0, err);
        if (rc == FL_EINVAL) {
            verdict = "refused";
            problem = fl_strdup(err->message);
            fl_error_clear(err);
            rc = 0;
        }
        if (rc != 0)
            goto done;
    }
    if (strcmp(verdict, "ok") != 0) {
        /* Undo it (a failed query aborted the subtransaction). */
        if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_plan",
                             err)) != 0)
            goto done;
        p->session.in_migration = 0;
        if (*why_not == NULL)
            *why_not = "an earlier migration of this plan fails or is "
                       "refused";
    }
    rc = fl_pg_exec(p->pg, "RELEASE SAVEPOINT flotilla_plan", err);
done:
    {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl__session_leave(p->pg, &p->session, &ignore));
        fl_error_clear(&ignore);
    }
    s_observation_release(&before);
    s_observation_release(&after);
    s_validate_from_json(pm, validate);
    json_decref(validate);
    pm->verdict = verdict;
    pm->problem = problem;
    fl__stats_release(&stats);
    fl_error_clear(&perr);
    fl_stmt_list_release(&stmts);
    free(outside[0]);
    free(outside[1]);
    free(acts);
    return rc;
}

/*
 * Sequences do not roll back: what the rehearsal moved.  Before it, the
 * position of every sequence the role can read (pg_sequence_last_value:
 * NULL when never called), read outside its transaction
 * (fl__net_positions: reading a position locks the sequence until the
 * transaction ends, and all of them at once can fill the server's lock
 * table); after it, in its transaction, the ones it holds a lock on (it
 * locked every one it used), with their storage (relfilenode); those that
 * moved are set back, each only if it still stands where the rehearsal
 * left it (nobody used it since; one who calls nextval between that test
 * and the setval, in the same statement, is not seen).  Where the
 * rehearsal left one whose storage it replaced (ALTER SEQUENCE ...
 * RESTART) is where the old storage stands once it is rolled back (a
 * setval before the restart moved it, for good), not what it read in
 * its transaction: the rehearsal held the sequence locked from the
 * restart on, so nobody else used it meanwhile.  Adds a "sequences"
 * array to the report.
 */
#define S_SEQUENCES_LOCKED                                                  \
    "SELECT c.oid::pg_catalog.int8, pg_catalog.pg_sequence_last_value(c.oid)," \
    " c.relfilenode::pg_catalog.text"                                      \
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid"  \
    " OPERATOR(pg_catalog.=) c.relnamespace WHERE CASE WHEN c.relkind"     \
    " OPERATOR(pg_catalog.=) 'S' AND n.nspname NOT IN ('pg_catalog',"      \
    " 'information_schema', 'flotilla', 'flotilla_backup') THEN"           \
    " pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE') END"        \
    " AND c.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT l.relation"        \
    " FROM pg_catalog.pg_locks l WHERE l.locktype OPERATOR(pg_catalog.=)"  \
    " 'relation' AND l.granted AND l.pid OPERATOR(pg_catalog.=)"           \
    " pg_catalog.pg_backend_pid()))"

/* Before the rehearsal's transaction: every position, as a json object. */
static int
s_sequences_before(fl_pipeline_t *p, json_t **out, fl_error_t *err)
{
    fl_net_positions_t pos = {NULL, 0};
    int rc = fl__net_positions(p->pg, "", &pos, err);

    *out = json_object();
    for (size_t i = 0; rc == 0 && i < pos.n; i++) {
        char oid[16];

        snprintf(oid, sizeof(oid), "%u", pos.v[i].oid);
        json_object_set_new(*out, oid, fl_json_text(pos.v[i].last));
    }
    fl__net_positions_release(&pos);
    return rc;
}

/* In it, after the rehearsal: the positions of those it locked. */
static int
s_sequences_read(fl_pipeline_t *p, json_t **out, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query(p->pg, &r, S_SEQUENCES_LOCKED, 0, NULL, err);

    *out = json_object();
    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        json_object_set_new(*out, fl_pg_value(&r, i, 0),
                            json_pack("[o, s]",
                                      fl_json_text(fl_pg_value(&r, i, 1)),
                                      fl_pg_value(&r, i, 2)));
    fl_pg_result_release(&r);
    return rc;
}

static int
s_sequences_put_back(fl_pipeline_t *p, json_t *before, json_t *left,
                     fl_plan_t *plan, fl_error_t *err)
{
    const char *oid = NULL;
    json_t *v = NULL;
    int rc = 0;

    json_object_foreach(left, oid, v) {
        json_t *b = json_object_get(before, oid);
        json_t *in = json_array_get(v, 0);
        const char *was = json_string_value(b);
        const char *params[4] = {oid, was, json_string_value(in),
                                 json_string_value(json_array_get(v, 1))};
        fl_pg_result_t r = FL_PG_RESULT_INIT;

        if (b == NULL)
            continue; /* created by the rehearsal: gone with it */
        /*
         * NULL: not moved; true: put back; false: used since.  Where the
         * rehearsal left it: what it read, or where the old storage
         * stands when it replaced the storage.
         */
        rc = fl_pg_query(p->pg, &r,
            "SELECT c.oid::pg_catalog.regclass::pg_catalog.text, CASE"
            " WHEN x.left IS NOT DISTINCT FROM $2::pg_catalog.int8 THEN NULL"
            " WHEN x.left IS NOT DISTINCT FROM"
            " pg_catalog.pg_sequence_last_value(c.oid) THEN pg_catalog.setval("
            "c.oid, coalesce($2::pg_catalog.int8, s.seqstart), $2 IS NOT NULL)"
            " IS NOT NULL ELSE false END, x.left"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequence s"
            " ON s.seqrelid OPERATOR(pg_catalog.=) c.oid, LATERAL (SELECT"
            " CASE WHEN c.relfilenode::pg_catalog.text OPERATOR(pg_catalog.=)"
            " $4 THEN $3::pg_catalog.int8 ELSE"
            " pg_catalog.pg_sequence_last_value(c.oid) END AS left) x"
            " WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.oid",
            4, params, err);
        if (rc == 0 && r.nrows == 1 && fl_pg_value(&r, 0, 1) != NULL) {
            const char *now = fl_pg_value(&r, 0, 2);
            fl_plan_sequence_t *q = s_push(&plan->sequences,
                                           &plan->nsequences, sizeof(*q));
            q->sequence = fl_strdup(fl_pg_value(&r, 0, 0));
            q->has_before = was != NULL;
            q->before = was ? strtoll(was, NULL, 10) : 0;
            q->has_after = now != NULL;
            q->after_rehearsal = now ? strtoll(now, NULL, 10) : 0;
            q->put_back = strcmp(fl_pg_value(&r, 0, 1), "t") == 0;
        }
        fl_pg_result_release(&r);
        if (rc != 0)
            break;
    }
    return rc;
}

/* Default statement_timeout of a rehearsal when none is set. */
#define S_PLAN_STATEMENT_TIMEOUT_MS 60000

/*
 * The source's repeatable migrations as apply would take them
 * (agent/repeatable.c): each that needs a run would run after the
 * versioned ones, unless one of those would be left pending (after
 * --to).  Listed, not rehearsed.
 */
static void
s_plan_repeatables(fl_plan_t *plan, const fl_source_t *src,
                   const fl_ledger_t *ledger,
                   const fl_ledger_repeatables_t *rows, const int *pending)
{
    const fl_migration_list_t *r = src->repeatables;
    int held = 0;

    for (size_t i = 0; i < src->migs->count; i++) {
        const fl_ledger_row_t *row = fl_ledger_find(ledger,
                                                    &src->migs->items[i].version);
        held |= !pending[i] && (row == NULL || strcmp(row->status,
                                                      "applied") != 0);
    }
    if (r == NULL || r->count == 0)
        return;
    plan->repeatables = fl_calloc(r->count, sizeof(*plan->repeatables));
    for (size_t i = 0; i < r->count; i++) {
        const fl_migration_t *m = &r->items[i];
        fl_plan_repeatable_t *x = &plan->repeatables[plan->nrepeatables++];

        x->name = fl_strdup(m->name);
        x->file = fl_strdup(m->file);
        x->checksum = fl_strdup(m->checksum_hex);
        x->state = fl_ledger_repeatable_state(
            fl_ledger_find_repeatable(rows, m->name), m);
        x->held = held && strcmp(x->state, "up to date") != 0;
        x->would_run = !held && strcmp(x->state, "up to date") != 0;
    }
}

/*
 * Whether the schema is as flotilla left it (agent/schema.h), from a
 * snapshot taken before the rehearsal, into plan->schema_state (not
 * known when no state was recorded, or when the snapshot failed: a
 * warning).
 */
static void
s_plan_schema_state(fl_pipeline_t *p, fl_plan_t *plan)
{
    fl_error_t err = FL_ERROR_INIT;

    if (fl_schema_snapshot(p->pg, 1, fl__scope(p), &err) != 0 ||
        fl_schema_state_check(p->pg, p->target, 1, &plan->schema_state,
                              &err) != 0) {
        fl_log_warning("plan", "could not compare the schema with the one "
                       "flotilla left: %s", err.message);
        fl_schema_state_release(&plan->schema_state);
    }
    /* The rehearsal takes its own first snapshot, and says nothing. */
    fl__forget_schema(p);
    p->state_checked = 1;
    fl_error_clear(&err);
}

int
fl__plan(fl_pipeline_t *p, const fl_source_t *src, fl_plan_t *plan,
         fl_error_t *err)
{
    const fl_migration_list_t *migs = src->migs;
    fl_ledger_t ledger = {NULL, 0};
    fl_ledger_repeatables_t reps = {NULL, 0};
    int *pending = fl_calloc(migs->count ? migs->count : 1, sizeof(int));
    json_t *seq_before = NULL, *seq_left = NULL;
    fl_error_t verr = FL_ERROR_INIT;
    const char *why_not = NULL, *skipped = NULL;
    int64_t statement_timeout = p->opts.statement_timeout_ms;
    size_t held = 0;
    int in_tx = 0, refused = 0;
    int rc = 0;

    FL_ASSERT(src->verified == FL_SOURCE_VERIFIED);
    p->signed_gate = src->bundle ? fl_bundle_lint_enforce_from(src->bundle)
                                 : NULL;
    memset(plan, 0, sizeof(*plan));
    p->dry_run = 1;
    if (p->opts.statement_timeout_ms <= 0)
        p->opts.statement_timeout_ms = S_PLAN_STATEMENT_TIMEOUT_MS;
    plan->target = fl_strdup(fl_pg_describe(p->pg));
    plan->server_version = fl_pg_server_version(p->pg);
    plan->rehearse = !p->opts.no_rehearse;
    plan->ok = 1;
    /* No apply may run under the rehearsal, nor the rehearsal under it. */
    if ((rc = fl__lock_target(p, err)) != 0)
        goto cleanup;
    /* Reading the ledger changes nothing; a missing one is an empty one. */
    if ((rc = fl_ledger_load(p->pg, p->target, &ledger, err)) != 0 ||
        (rc = fl_ledger_load_repeatables(p->pg, p->target, &reps, err)) != 0 ||
        (rc = fl__own_tables(p, err)) != 0)
        goto cleanup;
    s_plan_schema_state(p, plan);
    refused = fl__tenant_casts(p, &verr) != 0 ||
              fl__check_release(p, src, &plan->release_override, &verr) != 0;
    p->release = NULL;
    if (!refused)
        refused = fl__verify_source(p, migs, &ledger, pending, &verr) != 0;
    if (refused) {
        plan->ok = 0;
        plan->problem = fl_strdup(verr.message);
        plan->detail = verr.detail ? fl_strdup(verr.detail) : NULL;
        why_not = "the source is refused";
    } else if (p->opts.no_rehearse) {
        why_not = "--no-rehearse: a plan from the catalog and the text only";
    }
    if (why_not == NULL) {
        if ((rc = s_sequences_before(p, &seq_before, err)) != 0 ||
            (rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0)
            goto cleanup;
        in_tx = 1;
    }
    plan->migrations = fl_calloc(migs->count ? migs->count : 1,
                                 sizeof(*plan->migrations));
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_ledger_row_t *row = fl_ledger_find(&ledger, &m->version);
        fl_plan_migration_t *pm = &plan->migrations[plan->nmigrations++];

        pm->version = m->version;
        pm->name = fl_strdup(m->name);
        pm->file = fl_strdup(m->file);
        pm->checksum = fl_strdup(m->checksum_hex);
        pm->no_transaction = m->no_transaction;
        pm->transaction_why = m->note && m->no_transaction
                                  ? fl_strdup(m->note) : NULL;
        pm->note = m->note && m->nparts ? fl_strdup(m->note) : NULL;
        pm->pending = pending[i];
        pm->state = fl_strdup(row ? row->status
                                  : pending[i] ? "pending" : "not selected");
        if (!pending[i])
            continue;
        plan->pending++;
        /* As apply: nothing an earlier migration SET holds for this one. */
        if ((rc = fl__session_reset_all(p->pg, &p->session, p->target, err)) != 0)
            goto cleanup;
        if ((rc = s_plan_one(p, m, row, &why_not, &skipped, &held, pm,
                             err)) != 0)
            goto cleanup;
        if (strcmp(pm->verdict, "ok") == 0)
            plan->rehearsed++;
        else if (strcmp(pm->verdict, "not rehearsed") != 0)
            plan->ok = 0;
    }
    s_plan_repeatables(plan, src, &ledger, &reps, pending);
    if (in_tx && (rc = s_sequences_read(p, &seq_left, err)) != 0)
        goto cleanup;
    /*
     * Proven: every pending migration rehearsed (or a catalog-only plan
     * asked for and nothing refused).  Only then does the plan say that
     * apply would go ahead.
     */
    plan->proven = plan->ok && (plan->rehearsed == plan->pending ||
                                p->opts.no_rehearse);
    plan->not_rehearsed_because =
        !plan->ok || plan->rehearsed == plan->pending ? NULL
        : why_not                                     ? why_not
                                                      : S_NO_TRANSACTION;
    /* A repeatable migration apply would run is not rehearsed: the plan
     * does not prove it. */
    for (size_t i = 0; i < plan->nrepeatables && plan->proven; i++)
        if (plan->repeatables[i].would_run && !p->opts.no_rehearse) {
            plan->proven = 0;
            plan->not_rehearsed_because = "repeatable migrations are not "
                                          "rehearsed";
        }
cleanup:
    fl__rollback_quietly(p);
    if (rc == 0 && seq_left)
        rc = s_sequences_put_back(p, seq_before, seq_left, plan, err);
    fl__unlock_target(p);
    p->opts.statement_timeout_ms = statement_timeout;
    json_decref(seq_before);
    json_decref(seq_left);
    fl_error_clear(&verr);
    fl_ledger_release(&ledger);
    fl_ledger_repeatables_release(&reps);
    free(pending);
    return rc;
}

static void
s_strings_release(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

void
fl_plan_release(fl_plan_t *plan)
{
    fl_schema_state_release(&plan->schema_state);
    for (size_t i = 0; i < plan->nmigrations; i++) {
        fl_plan_migration_t *pm = &plan->migrations[i];
        free(pm->transaction_why);
        free(pm->note);
        for (size_t j = 0; j < pm->nstmts; j++) {
            fl_plan_stmt_t *ps = &pm->stmts[j];
            for (size_t k = 0; k < ps->nlocks; k++)
                free(ps->locks[k].table);
            free(ps->locks);
            for (size_t k = 0; k < ps->nchecks; k++) {
                free(ps->checks[k].check);
                free(ps->checks[k].target);
                free(ps->checks[k].sample);
                free(ps->checks[k].problem);
                free(ps->checks[k].skipped);
                free(ps->checks[k].holds);
            }
            free(ps->checks);
            s_strings_release(ps->backups, ps->nbackups);
            s_strings_release(ps->observed_locks, ps->nobserved_locks);
            s_strings_release(ps->observed_rewrites, ps->nobserved_rewrites);
            free(ps->kind);
            free(ps->sql);
            free(ps->rehearsal);
        }
        free(pm->stmts);
        for (size_t j = 0; j < pm->nlint; j++) {
            free(pm->lint[j].rule);
            free(pm->lint[j].message);
            free(pm->lint[j].help);
        }
        free(pm->lint);
        for (size_t j = 0; j < pm->nvalidate; j++) {
            free(pm->validate[j].statement);
            free(pm->validate[j].at);
            free(pm->validate[j].result);
        }
        free(pm->validate);
        free(pm->name);
        free(pm->file);
        free(pm->checksum);
        free(pm->state);
        free(pm->problem);
    }
    free(plan->migrations);
    for (size_t i = 0; i < plan->nrepeatables; i++) {
        free(plan->repeatables[i].name);
        free(plan->repeatables[i].file);
        free(plan->repeatables[i].checksum);
    }
    free(plan->repeatables);
    for (size_t i = 0; i < plan->nsequences; i++)
        free(plan->sequences[i].sequence);
    free(plan->sequences);
    free(plan->target);
    free(plan->problem);
    free(plan->detail);
    free(plan->release_override);
    memset(plan, 0, sizeof(*plan));
}
