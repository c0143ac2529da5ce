/*
 * pipeline.c - the validate -> backup -> execute -> log pipeline on one
 * target (see pipeline.h for the steps and their guarantees).
 *
 * States of one migration in the ledger (flotilla.schema_migrations):
 *
 *   (none) --apply ok--> applied --rollback--> rolled_back --apply--> applied
 *   (none) --statement failed--> failed --apply (fixed)--> applied
 *   no-transaction only: running --each statement--> running(k of n)
 *                        --last statement--> applied; a crash leaves
 *                        running(k), and the next apply resumes at k.
 *
 * A transactional migration's row is written in the transaction that runs
 * its statements, so "applied" and the schema change commit together;
 * the "failed" row is written after the rollback.  Log rows
 * (flotilla.migration_logs) are queued during a transaction and written
 * after it ends, so the logs of a failed migration survive its rollback.
 */
#include "agent/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/ledger.h"
#include "agent/lintcheck.h"
#include "agent/pg.h"
#include "agent/pipeline_internal.h"
#include "agent/schema.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/parse.h"

/*
 * Advisory lock keys: (FL_LOCK_CLASS, hash of the target): the database's
 * name, or "<database>/<schema>" for a schema target ($1 the schema, ""
 * for the whole database), so that two schema tenants of one database
 * migrate in parallel.
 */
#define FL_LOCK_CLASS 1718578273
#define S_LOCK_CLASS "1718578273"
#define S_TARGET_KEY                                                        \
    "(pg_catalog.hashtext(CASE WHEN $1 OPERATOR(pg_catalog.=) '' THEN"      \
    " pg_catalog.current_database()::pg_catalog.text ELSE"                  \
    " pg_catalog.current_database() OPERATOR(pg_catalog.||) '/'"            \
    " OPERATOR(pg_catalog.||) $1 END) OPERATOR(pg_catalog.&) 2147483647)"

typedef struct {
    fl_ledger_log_t e;
    char *name;
    char *message;
} s_queued_log;

struct fl_pipeline {
    fl_pipeline_opts_t opts;
    fl_pg_t *pg;
    int cancelled;     /* atomic */
    int locked;        /* the target's advisory lock is held */
    int dry_run;       /* plan: write nothing */
    s_queued_log *logs;
    size_t nlogs;
    fl_session_t session; /* pinned, or the migration's settings */
    char *dump_dir;    /* this target's backup file directory, absolute */
    char **partial;    /* dump files written as .partial, to rename */
    size_t npartial;   /* after COMMIT */
    int schema_gen;    /* the schema snapshot that shows the target as it
                          is now (1 or 2), or 0: none taken yet */
    const char *target; /* ledger rows' target: "" or opts.schema */
    char *search_path;  /* the migration's, when built for a schema target */
    char *described;    /* 'database "x"' or 'schema "s" of database "x"' */
    const fl_bundle_t *release; /* the bundle being applied, whose release
                                   each migration's commit records; NULL
                                   for a directory */
};

/* Per-migration execution counters, written to the ledger. */
typedef struct {
    int64_t lock_wait_ms;
    int retries;
    int done;
    char *error_position;
} s_stats;

const char *
fl_step_name(fl_step step)
{
    static const char *const names[] = {
        "lock", "verify", "validate", "backup", "execute", "verify-after",
        "rollback", "restore",
    };
    return (unsigned)step < sizeof(names) / sizeof(names[0]) ? names[step] : "?";
}

const char *
fl_step_status_name(fl_step_status status)
{
    static const char *const names[] = {
        "started", "ok", "failed", "skipped", "refused", "retry",
    };
    return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status]
                                                                : "?";
}

static int
s_cancelled(fl_pipeline_t *p)
{
    return __atomic_load_n(&p->cancelled, __ATOMIC_SEQ_CST);
}

/* Reports an event and queues its log row (not during a dry run). */
static void
s_event(fl_pipeline_t *p, fl_step step, fl_step_status status,
        const fl_migration_t *m, int64_t duration_ms, const fl_error_t *error,
        const char *fmt, ...) FL_PRINTF(7, 8);

static void
s_event(fl_pipeline_t *p, fl_step step, fl_step_status status,
        const fl_migration_t *m, int64_t duration_ms, const fl_error_t *error,
        const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    fl_pipeline_event_t ev;

    va_start(ap, fmt);
    msg = fl_vasprintf(fmt, ap);
    va_end(ap);
    if (error && error->message) {
        char *full = fl_asprintf("%s: %s", msg, error->message);
        free(msg);
        msg = full;
    }
    ev.step = step;
    ev.status = status;
    ev.version = m ? m->version : 0;
    ev.name = m ? m->name : NULL;
    ev.duration_ms = duration_ms;
    ev.message = msg;
    ev.error = error;
    if (p->opts.on_event)
        p->opts.on_event(&ev, p->opts.arg);
    if (!p->dry_run && status != FL_STEP_STARTED) {
        s_queued_log *q = NULL;
        p->logs = fl_reallocarray(p->logs, p->nlogs + 1, sizeof(*p->logs));
        q = &p->logs[p->nlogs++];
        memset(q, 0, sizeof(*q));
        q->name = m ? fl_strdup(m->name) : NULL;
        q->message = msg;
        msg = NULL;
        q->e.version = m ? m->version : 0;
        q->e.name = q->name;
        q->e.step = fl_step_name(step);
        q->e.status = fl_step_status_name(status);
        q->e.duration_ms = duration_ms;
        q->e.message = q->message;
        q->e.bundle_id = p->opts.bundle_id;
        q->e.rollout_id = p->opts.rollout_id;
        q->e.target = p->target;
    }
    free(msg);
}

/*
 * Writes the queued log rows; must be called outside a transaction.  A
 * failure to log is reported and does not fail the migration: the
 * console and the log file still have every event.
 */
static void
s_flush_logs(fl_pipeline_t *p)
{
    fl_error_t err = FL_ERROR_INIT;
    int failed = 0;

    for (size_t i = 0; i < p->nlogs; i++) {
        if (!failed && fl_pg_in_transaction(p->pg) == 0 &&
            fl_ledger_log(p->pg, &p->logs[i].e, &err) != 0) {
            fl_log_warning("pipeline", "could not write to "
                           "flotilla.migration_logs: %s", err.message);
            fl_error_clear(&err);
            failed = 1;
        }
        free(p->logs[i].name);
        free(p->logs[i].message);
    }
    fl_free(&p->logs);
    p->nlogs = 0;
}

/* Sleeps ms milliseconds in slices, returning early when cancelled. */
static void
s_sleep(fl_pipeline_t *p, int64_t ms)
{
    while (ms > 0 && !s_cancelled(p)) {
        int64_t slice = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

/*
 * base * 2^attempt, times a random factor in [0.5, 1.0], drawn from the
 * system's random source, so that the pipelines of one agent, started in
 * the same second, do not retry in step.
 */
int64_t
fl__pipeline_backoff(fl_pipeline_t *p, int64_t base, int attempt)
{
    int64_t d = base;

    (void)p;
    for (int i = 0; i < attempt && d < 60000; i++)
        d *= 2;
    return d / 2 + (int64_t)fl_random_uniform((uint32_t)(d / 2 + 1));
}

#define s_backoff fl__pipeline_backoff

static void
s_rollback_quietly(fl_pipeline_t *p)
{
    fl_error_t ignore = FL_ERROR_INIT;

    /* Called on a failure path: the first error is the one reported. */
    if (fl_pg_in_transaction(p->pg)) {
        FL_IGNORE(fl_pg_exec(p->pg, "ROLLBACK", &ignore));
        /* The transaction's set_config calls are undone: pinned again. */
        p->session.in_migration = 0;
    }
    fl_error_clear(&ignore);
}

/* The schema snapshots' scope: every managed schema, or the target's. */
static const char *
s_scope(const fl_pipeline_t *p)
{
    return *p->target ? p->target : NULL;
}

/*
 * Checks the target and pins the session for it: a schema target must
 * exist, and its migrations run with it first on search_path ("schema",
 * public) unless opts.search_path says otherwise.
 */
static int
s_open_target(fl_pipeline_t *p, fl_error_t *err)
{
    const char *path = p->opts.search_path;
    int rc;

    if (*p->target != '\0') {
        const char *params[1] = {p->target};
        char *v = NULL, *q = NULL;

        if (strlen(p->target) > 63)
            return FL_ERR(err, FL_EINVAL, "schema name \"%.80s...\" is "
                          "longer than PostgreSQL's 63 bytes", p->target);
        rc = fl_pg_query_value(p->pg, &v, "SELECT pg_catalog.count(*) FROM"
                               " pg_catalog.pg_namespace WHERE nspname"
                               " OPERATOR(pg_catalog.=) $1", 1, params, err);
        if (rc != 0)
            return rc;
        if (v == NULL || strcmp(v, "1") != 0) {
            free(v);
            FL_ERR(err, FL_ENOTFOUND, "schema \"%s\" does not exist in "
                   "database \"%s\"", p->target, fl_pg_describe(p->pg));
            fl_error_set_hint(err, "A schema target names a schema that "
                                   "exists; create it first (CREATE SCHEMA), "
                                   "or check --schema.");
            return FL_ENOTFOUND;
        }
        free(v);
        if ((q = fl_pg_quote_ident(p->pg, p->target)) == NULL)
            return FL_ERR(err, FL_EINVAL, "schema name \"%s\" cannot be "
                          "quoted", p->target);
        p->described = fl_asprintf("schema \"%s\" of database \"%s\"",
                                   p->target, fl_pg_describe(p->pg));
        if (path == NULL) {
            p->search_path = fl_asprintf("%s, public", q);
            path = p->search_path;
        }
        free(q);
    } else {
        p->described = fl_asprintf("database \"%s\"", fl_pg_describe(p->pg));
    }
    return fl__session_pin(p->pg, &p->session,
                           path ? path : "\"$user\", public", err);
}

int
fl_pipeline_open(fl_pipeline_t **out, const fl_pipeline_opts_t *opts,
                 fl_error_t *err)
{
    fl_pipeline_t *p = fl_calloc(1, sizeof(*p));
    int rc;

    *out = NULL;
    p->opts = *opts;
    if (p->opts.agent == NULL)
        p->opts.agent = "local";
    if (p->opts.rollout_id == NULL)
        p->opts.rollout_id = "";
    {
        fl_pg_connect_opts_t co = FL_PG_CONNECT_OPTS_INIT;
        co.cancel = &p->cancelled;
        rc = fl_pg_open_opts(&p->pg, opts->dsn, "flotilla", &co, err);
    }
    if (rc != 0) {
        free(p);
        return rc;
    }
    p->target = p->opts.schema ? p->opts.schema : "";
    if ((rc = s_open_target(p, err)) != 0) {
        fl_pg_close(&p->pg);
        fl__session_release(&p->session);
        free(p->search_path);
        free(p->described);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void
fl_pipeline_cancel(fl_pipeline_t *p)
{
    if (p == NULL)
        return;
    __atomic_store_n(&p->cancelled, 1, __ATOMIC_SEQ_CST);
    fl_pg_cancel(p->pg);
}

static void
s_unlock(fl_pipeline_t *p)
{
    fl_error_t ignore = FL_ERROR_INIT;

    if (!p->locked)
        return;
    /* Closing the session releases it anyway; this is only tidiness. */
    {
        const char *params[1] = {p->target};
        char *v = NULL;
        FL_IGNORE(fl_pg_query_value(p->pg, &v, "SELECT pg_catalog."
                                    "pg_advisory_unlock(" S_LOCK_CLASS ", "
                                    S_TARGET_KEY ")", 1, params, &ignore));
        free(v);
    }
    fl_error_clear(&ignore);
    p->locked = 0;
}

void
fl_pipeline_close(fl_pipeline_t **pp)
{
    fl_pipeline_t *p = pp ? *pp : NULL;

    if (p == NULL)
        return;
    s_rollback_quietly(p);
    s_flush_logs(p);
    s_unlock(p);
    fl_pg_close(&p->pg);
    fl__session_release(&p->session);
    for (size_t i = 0; i < p->npartial; i++)
        free(p->partial[i]);
    free(p->partial);
    free(p->dump_dir);
    free(p->search_path);
    free(p->described);
    free(p);
    *pp = NULL;
}

/*
 * Takes the target's session-level advisory lock, polling
 * pg_try_advisory_lock with jittered backoff until lock_wait_ms.  Never
 * the blocking pg_advisory_lock: a session waiting on it would make
 * another session's CREATE INDEX CONCURRENTLY wait for it forever.
 */
static int
s_lock_target(fl_pipeline_t *p, fl_error_t *err)
{
    int64_t start = fl__now_ms();
    int attempt = 0;
    char *v = NULL;
    const char *params[1] = {p->target};
    int rc;

    for (;;) {
        if ((rc = fl_pg_query_value(p->pg, &v, "SELECT pg_catalog."
                                    "pg_try_advisory_lock(" S_LOCK_CLASS ", "
                                    S_TARGET_KEY ")", 1, params, err)) != 0)
            return rc;
        if (v && strcmp(v, "t") == 0) {
            free(v);
            p->locked = 1;
            return 0;
        }
        free(v);
        v = NULL;
        if (s_cancelled(p))
            return FL_ERR(err, FL_ECANCELLED, "cancelled while waiting for "
                          "the lock on %s", p->described);
        if (fl__now_ms() - start >= p->opts.lock_wait_ms)
            break;
        if (attempt == 0)
            s_event(p, FL_STEP_LOCK, FL_STEP_RETRY, NULL, 0, NULL,
                    "another flotilla run holds %s; waiting up to %lld ms",
                    p->described, (long long)p->opts.lock_wait_ms);
        s_sleep(p, s_backoff(p, 100, attempt < 4 ? attempt : 4));
        attempt++;
    }
    {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        fl_error_t qerr = FL_ERROR_INIT;
        static const char q[] =
            "SELECT a.pid, COALESCE(a.application_name, ''),"
            " COALESCE(pg_catalog.host(a.client_addr), 'local'),"
            " pg_catalog.to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS'),"
            " COALESCE(a.state, '')"
            " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a"
            " ON a.pid OPERATOR(pg_catalog.=) l.pid"
            " WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted"
            " AND l.classid OPERATOR(pg_catalog.=) " S_LOCK_CLASS
            " AND l.objsubid OPERATOR(pg_catalog.=) 2"
            " AND l.objid OPERATOR(pg_catalog.=) " S_TARGET_KEY
            "::pg_catalog.oid";
        rc = FL_ERR(err, FL_ECONFLICT, "could not lock %s: another flotilla "
                    "run is migrating it", p->described);
        if (fl_pg_query(p->pg, &r, q, 1, params, &qerr) == 0 && r.nrows > 0)
            fl_error_set_detail(err, "Held by PID %s (application \"%s\", "
                                "client %s, connected %s, %s); waited %lld ms.",
                                fl_pg_value(&r, 0, 0), fl_pg_value(&r, 0, 1),
                                fl_pg_value(&r, 0, 2), fl_pg_value(&r, 0, 3),
                                fl_pg_value(&r, 0, 4),
                                (long long)p->opts.lock_wait_ms);
        fl_error_set_hint(err, "Wait for the other run to finish, or raise "
                               "--lock-wait.  \"flotilla locks\" shows the "
                               "sessions.");
        fl_pg_result_release(&r);
        fl_error_clear(&qerr);
        return rc;
    }
}

/*
 * Maps a 1-based character position inside stmt to file:line:col, using
 * the statement's own line and column in the migration file.
 */
static char *
s_position(const fl_migration_t *m, const fl_stmt_t *st, int pos)
{
    int line = st->line, col = st->column;
    int chars = 0;

    for (const char *s = st->sql; *s && pos > 0; s++) {
        if (((unsigned char)*s & 0xC0) == 0x80)
            continue; /* UTF-8 continuation byte: same character */
        if (++chars >= pos)
            break;
        if (*s == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return fl_asprintf("%s:%d:%d", m ? m->file : "?", line, col);
}

/* Statement indexes with a meaning of their own (s_run, s_blockers). */
#define S_ALL (-1)     /* every statement's tables */

/*
 * The sessions holding locks on the tables of statement index (or of
 * every statement, index S_ALL), for a report.
 */
static int s_resolve(fl_pipeline_t *p, const char *const *schemas,
                     const char *const *names, size_t n, uint32_t *oids,
                     char *relkinds, fl_error_t *err);

static char *
s_blockers(fl_pipeline_t *p, const fl_stmt_list_t *stmts, int index)
{
    fl_buf_t b = FL_BUF_INIT(4096), arr = FL_BUF_INIT(0);
    size_t n = 0, cap = 0;
    const char **schemas = NULL, **names = NULL;
    uint32_t *oids = NULL;
    char *kinds = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_error_t err = FL_ERROR_INIT;

    for (size_t s = 0; s < stmts->count; s++)
        cap += stmts->items[s].ntables;
    schemas = fl_calloc(cap + 1, sizeof(char *));
    names = fl_calloc(cap + 1, sizeof(char *));
    for (size_t s = 0; s < stmts->count; s++) {
        const fl_stmt_t *st = &stmts->items[s];
        if (index >= 0 && (int)s != index)
            continue;
        for (size_t i = 0; i < st->ntables; i++) {
            schemas[n] = st->tables[i].schema;
            names[n++] = st->tables[i].name;
        }
    }
    oids = fl_calloc(n + 1, sizeof(uint32_t));
    kinds = fl_calloc(n + 1, 1);
    if (n && s_resolve(p, schemas, names, n, oids, kinds, &err) == 0) {
        const char *params[1];
        fl_buf_adds(&arr, "{");
        for (size_t i = 0; i < n; i++)
            fl_buf_addf(&arr, "%s%u", i ? "," : "", oids[i]);
        fl_buf_adds(&arr, "}");
        params[0] = fl_buf_str(&arr);
        if (fl_pg_query(p->pg, &r,
                "SELECT DISTINCT a.pid, COALESCE(a.application_name, ''),"
                " COALESCE(a.state, ''),"
                " COALESCE(pg_catalog.to_char(pg_catalog.now() OPERATOR("
                "pg_catalog.-) a.xact_start, 'HH24:MI:SS'), ''),"
                " pg_catalog.left(pg_catalog.regexp_replace(COALESCE(a.query,"
                " ''), '\\s+', ' ', 'g'), 120),"
                " pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
                " OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)"
                " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a"
                " ON a.pid OPERATOR(pg_catalog.=) l.pid"
                " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=)"
                " l.relation JOIN pg_catalog.pg_namespace n ON n.oid"
                " OPERATOR(pg_catalog.=) c.relnamespace"
                " WHERE l.granted AND l.pid OPERATOR(pg_catalog.<>)"
                " pg_catalog.pg_backend_pid() AND l.locktype = 'relation'"
                " AND l.relation OPERATOR(pg_catalog.=) ANY"
                " ($1::pg_catalog.oid[])", 1, params, &err) == 0) {
            /* At most 4 KiB of them: the rest are counted. */
            for (size_t j = 0; j < r.nrows; j++)
                if (fl_buf_printf(&b, "%sPID %s (application \"%s\", %s, "
                                  "transaction age %s) on %s: %s",
                                  b.len ? "; " : "", fl_pg_value(&r, j, 0),
                                  fl_pg_value(&r, j, 1), fl_pg_value(&r, j, 2),
                                  fl_pg_value(&r, j, 3), fl_pg_value(&r, j, 5),
                                  fl_pg_value(&r, j, 4)) != 0) {
                    b.max = 0;
                    fl_buf_addf(&b, "; and %zu more", r.nrows - j);
                    break;
                }
        }
    }
    fl_pg_result_release(&r);
    fl_error_clear(&err);
    fl_buf_release(&arr);
    free(schemas);
    free(names);
    free(oids);
    free(kinds);
    if (b.len == 0)
        fl_buf_adds(&b, "no session holds a lock on the statement's "
                              "tables any more");
    return fl_buf_detach(&b);
}

/*
 * Drops an INVALID index that an interrupted CREATE INDEX CONCURRENTLY
 * left behind under the name the statement is about to create, so the
 * rebuild does not fail (or, with IF NOT EXISTS, silently keep a useless
 * index).
 */
static int
s_drop_invalid_index(fl_pipeline_t *p, const fl_migration_t *m,
                     const fl_stmt_t *st, fl_error_t *err)
{
    char *qi = NULL, *v = NULL;
    const char *params[1];
    int rc = 0;

    if (st->index_name == NULL || !st->no_transaction)
        return 0;
    qi = fl__qualify(p->pg, st->index_schema, st->index_name);
    params[0] = qi;
    rc = fl_pg_query_value(p->pg, &v,
        "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass($1)"
        " AND NOT indisvalid", 1, params, err);
    if (rc == 0 && v && strcmp(v, "0") != 0) {
        rc = fl_pg_execf(p->pg, err, "DROP INDEX CONCURRENTLY IF EXISTS %s", qi);
        if (rc == 0)
            s_event(p, FL_STEP_EXECUTE, FL_STEP_OK, m, 0, NULL,
                    "dropped invalid index %s left by an interrupted CREATE "
                    "INDEX CONCURRENTLY; rebuilding it", qi);
    }
    free(v);
    free(qi);
    return rc;
}

/*
 * Runs statement index of stmts in the migration's settings, retrying a
 * lock timeout up to `retries` times.  Inside a transaction with retries
 * each attempt runs behind a savepoint; a transactional migration passes
 * 0 and retries its whole transaction instead, so that it holds no lock
 * while it waits (see s_apply_migration).
 */
static int
s_run(fl_pipeline_t *p, const fl_migration_t *m, const fl_stmt_list_t *stmts,
      int index, int in_tx, int retries, s_stats *stats, fl_error_t *err)
{
    const fl_stmt_t *st = &stmts->items[index];
    int savepoint = in_tx && retries > 0;

    for (int attempt = 0;; attempt++) {
        int64_t t0 = fl__now_ms();
        int rc = 0;

        if (s_cancelled(p))
            return FL_ERR(err, FL_ECANCELLED, "migration %s cancelled before "
                          "statement %d", m->file, index + 1);
        if (savepoint &&
            (rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_stmt", err)) != 0)
            return rc;
        if (!in_tx && (rc = s_drop_invalid_index(p, m, st, err)) != 0)
            return rc;
        if ((rc = fl__session_enter(p->pg, &p->session, err)) != 0)
            return rc;
        rc = fl_pg_exec(p->pg, st->sql, err);
        if (rc == 0) {
            if (savepoint)
                rc = fl_pg_exec(p->pg, "RELEASE SAVEPOINT flotilla_stmt", err);
            return rc;
        }
        {
            /* Where it failed, read before anything else runs. */
            char *where = s_position(m, st, fl_pg_last_position(p->pg));
            free(stats->error_position);
            stats->error_position = where;
        }
        if (savepoint) {
            fl_error_t ignore = FL_ERROR_INIT;
            /* Undo the attempt; the transaction stays usable. */
            FL_IGNORE(fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_stmt",
                             &ignore));
            fl_error_clear(&ignore);
            /* The rollback put the pinned settings back. */
            p->session.in_migration = 0;
        } else if (!in_tx) {
            fl_error_t ignore = FL_ERROR_INIT;
            FL_IGNORE(fl__session_leave(p->pg, &p->session, &ignore));
            fl_error_clear(&ignore);
        }
        if (err && strcmp(err->sqlstate, "55P03") == 0 &&
            attempt < retries && !s_cancelled(p)) {
            char *who = s_blockers(p, stmts, index);
            int64_t wait = s_backoff(p, p->opts.retry_base_ms, attempt);

            s_event(p, FL_STEP_EXECUTE, FL_STEP_RETRY, m, fl__now_ms() - t0,
                    NULL, "lock timeout at %s:%d (attempt %d of %d); "
                    "retrying in %lld ms; blocked by %s", m->file, st->line,
                    attempt + 1, retries + 1, (long long)wait, who);
            free(who);
            fl_error_clear(err);
            stats->lock_wait_ms += fl__now_ms() - t0 + wait;
            stats->retries++;
            s_sleep(p, wait);
            continue;
        }
        /* Final failure: say where, and why. */
        {
            int lock = err && strcmp(err->sqlstate, "55P03") == 0;
            int cancel = err && strcmp(err->sqlstate, "57014") == 0;

            if (lock && retries > 0) {
                char *who = s_blockers(p, stmts, index);
                fl_error_set_detail(err, "Gave up after %d attempts; blocked "
                                    "by %s.", attempt + 1, who);
                fl_error_set_hint(err, "Retry when the blocking sessions are "
                                       "done, or see \"flotilla locks\".");
                free(who);
                err->code = FL_ETIMEOUT;
            } else if (cancel && s_cancelled(p)) {
                err->code = FL_ECANCELLED;
            } else if (cancel) {
                fl_error_set_hint(err, "The statement ran into "
                                       "statement_timeout; it is not retried. "
                                       "Raise statement_timeout in the "
                                       "migration's options if it is expected.");
            }
            fl_error_prefix(err, "%s: ", stats->error_position);
            return err ? err->code : FL_EDB;
        }
    }
}

/*
 * Runs the live checks of statement i, in the migration's settings, just
 * before the statement: they see what the statements before it did.
 */
static int
s_run_checks(fl_pipeline_t *p, const fl_stmt_list_t *stmts, size_t i,
             json_t *report, fl_error_t *err)
{
    const fl_stmt_t *st = &stmts->items[i];
    fl_check_opts_t co = {st->cascades, p->opts.redact_samples};
    int rc = 0;

    if (st->nchecks && (rc = fl__session_enter(p->pg, &p->session, err)) != 0)
        return rc;
    for (size_t k = 0; k < st->nchecks; k++)
        if ((rc = fl__check_run(p->pg, &st->checks[k], &co, report, err)) != 0)
            return rc;
    return 0;
}

/*
 * Runs the migration's validate statements: each must return exactly one
 * row whose first column is true.
 */
static int
s_custom_validate(fl_pipeline_t *p, const fl_migration_t *m, json_t *report,
                  fl_error_t *err)
{
    fl_stmt_list_t vs = {NULL, 0};
    int rc = 0;

    if (m->validate == NULL)
        return 0;
    rc = fl_facts_analyze(&vs, m->validate, m->validate_line - 1,
                          fl_pg_server_version(p->pg), err);
    if (rc == 0)
        rc = fl__session_enter(p->pg, &p->session, err);
    for (size_t i = 0; rc == 0 && i < vs.count; i++) {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        const fl_stmt_t *st = &vs.items[i];
        const char *v = NULL;
        char *where = fl_asprintf("%s:%d:%d", m->file, st->line, st->column);

        rc = fl_pg_query(p->pg, &r, st->sql, 0, NULL, err);
        if (rc != 0) {
            fl_error_prefix(err, "validate statement at %s: ", where);
        } else {
            v = r.nrows == 1 && r.ncols >= 1 ? fl_pg_value(&r, 0, 0) : NULL;
            if (report)
                json_array_append_new(report, fl_json_pack("{s:s, s:s, s:b, s:s?}",
                    "statement", st->sql, "at", where,
                    "ok", v && strcmp(v, "t") == 0, "result", v));
            if (v == NULL || strcmp(v, "t") != 0) {
                rc = FL_ERR(err, FL_EINVAL, "validate statement at %s did not "
                            "hold", where);
                fl_error_set_detail(err, "The statement %s returned %s%s%s.",
                                    st->sql, r.nrows != 1 ? "" : "\"",
                                    r.nrows != 1 ? (r.nrows ? "several rows"
                                                            : "no rows")
                                                 : (v ? v : "NULL"),
                                    r.nrows != 1 ? "" : "\"");
                fl_error_set_hint(err, "Each validate statement must return "
                                       "one row whose first column is true.");
            }
        }
        fl_pg_result_release(&r);
        free(where);
    }
    fl_stmt_list_release(&vs);
    return rc;
}

static int
s_set_timeouts(fl_pipeline_t *p, const fl_migration_t *m, int local,
               fl_error_t *err)
{
    int64_t lt = m->lock_timeout_ms >= 0 ? m->lock_timeout_ms
                                         : p->opts.lock_timeout_ms;
    int64_t stt = m->statement_timeout_ms >= 0 ? m->statement_timeout_ms
                                               : p->opts.statement_timeout_ms;

    return fl_pg_execf(p->pg, err, "SET %s lock_timeout = %lld; SET %s "
                       "statement_timeout = %lld", local ? "LOCAL" : "SESSION",
                       (long long)lt, local ? "LOCAL" : "SESSION",
                       (long long)stt);
}

/* Parses up into statements, refusing text the PG 15 grammar rejects. */
static int
s_statements(fl_pipeline_t *p, const fl_migration_t *m, fl_stmt_list_t *out,
             fl_error_t *err)
{
    int rc = fl_facts_analyze(out, m->up, m->up_line - 1,
                              fl_pg_server_version(p->pg), err);

    if (rc != 0) {
        fl_error_prefix(err, "%s: ", m->file);
        return rc;
    }
    for (size_t i = 0; i < out->count; i++) {
        if (out->items[i].parse_error) {
            rc = FL_ERR(err, FL_EINVAL, "%s:%d:%d: syntax error: %s", m->file,
                        out->items[i].line, out->items[i].column,
                        out->items[i].error ? out->items[i].error : "");
            fl_stmt_list_release(out);
            return rc;
        }
    }
    if (out->count == 0) {
        fl_stmt_list_release(out);
        return FL_ERR(err, FL_EINVAL, "%s: the up section holds no statement",
                      m->file);
    }
    return 0;
}

static void
s_stats_release(s_stats *s)
{
    fl_free(&s->error_position);
}

/* Records the failed state of m after its transaction was rolled back. */
static void
s_record_failure(fl_pipeline_t *p, const fl_migration_t *m, int tx, int total,
                 int64_t t0, s_stats *stats, const fl_error_t *error)
{
    fl_error_t lerr = FL_ERROR_INIT;
    fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                              p->opts.agent, "failed", tx, stats->done, total,
                              fl__now_ms() - t0, stats->lock_wait_ms,
                              stats->retries, error, stats->error_position,
                              NULL, p->target};

    s_rollback_quietly(p);
    if (fl_ledger_record(p->pg, &rec, &lerr) != 0) {
        fl_log_warning("pipeline", "could not record the failure of %s in the "
                       "ledger: %s", m->file, lerr.message);
        fl_error_clear(&lerr);
    }
}

/* The migration's verify statements, in its settings. */
static int
s_verify_statements(fl_pipeline_t *p, const fl_migration_t *m,
                    fl_error_t *err)
{
    fl_stmt_list_t vs = {NULL, 0};
    int rc = 0;

    if (m->verify == NULL)
        return 0;
    rc = fl_facts_analyze(&vs, m->verify, m->verify_line - 1,
                          fl_pg_server_version(p->pg), err);
    if (rc == 0 && vs.count)
        rc = fl__session_enter(p->pg, &p->session, err);
    for (size_t i = 0; rc == 0 && i < vs.count; i++) {
        rc = fl_pg_exec(p->pg, vs.items[i].sql, err);
        if (rc != 0)
            fl_error_prefix(err, "verify statement at %s:%d:%d: ", m->file,
                            vs.items[i].line, vs.items[i].column);
    }
    fl_stmt_list_release(&vs);
    return rc;
}

/* The snapshot of the target before migration m (see s_schema_after). */
static int
s_schema_before(fl_pipeline_t *p, int *gen, fl_error_t *err)
{
    int rc;

    if (p->schema_gen != 0) {
        *gen = p->schema_gen;
        return 0;
    }
    if ((rc = fl_schema_snapshot(p->pg, 1, s_scope(p), err)) != 0)
        return rc;
    *gen = p->schema_gen = 1;
    return 0;
}

/*
 * After m committed: a snapshot of the schema, the objects m changed
 * (against the snapshot before it) recorded for its rollback's proof,
 * and the fingerprint.  Taken outside the migration's transaction on
 * purpose: on a schema with thousands of tables the catalog scan takes
 * long enough to matter, and inside the transaction it would hold the
 * migration's locks that much longer.  The snapshot is the next
 * migration's "before", so each migration costs one.  A failure here is
 * reported and leaves the schema unrecorded (the rollback then says it
 * cannot prove the schema): the migration itself is applied.  Returns
 * the fingerprint (new string) or NULL.
 */
static char *
s_schema_after(fl_pipeline_t *p, const fl_migration_t *m, int before,
               int *changes)
{
    fl_error_t err = FL_ERROR_INIT;
    char *fp = NULL;
    char version[24];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int after = before == 1 ? 2 : 1;
    int rc = 0;

    *changes = 0;
    p->schema_gen = 0;
    snprintf(version, sizeof(version), "%lld", (long long)m->version);
    if (before == 0)
        rc = FL_ERR(&err, FL_ENOTFOUND, "no snapshot before the migration");
    if (rc == 0)
        rc = fl_schema_snapshot(p->pg, after, s_scope(p), &err);
    if (rc == 0)
        rc = fl_schema_record_changes(p->pg, p->target, m->version, before, after,
                                      changes, &err);
    if (rc == 0)
        rc = fl_schema_fingerprint(p->pg, after, &fp, &err);
    if (rc == 0) {
        const char *params[3] = {fp, version, p->target};
        rc = fl_pg_query(p->pg, &r, "UPDATE flotilla.schema_migrations SET"
                         " schema_fingerprint = $1, schema_recorded = true"
                         " WHERE version OPERATOR(pg_catalog.=)"
                         " $2::pg_catalog.int8 AND target"
                         " OPERATOR(pg_catalog.=) $3", 3, params, &err);
        fl_pg_result_release(&r);
    }
    if (rc == 0) {
        p->schema_gen = after;
        return fp;
    }
    fl_log_warning("pipeline", "could not record the schema after %s: %s",
                   m->file, err.message);
    fl_error_clear(&err);
    free(fp);
    return NULL;
}

/* ---- the net: what one run of a migration destroyed ----------------- */

/* A set of OIDs (small: the tables one migration touches). */
typedef struct {
    uint32_t *v;
    size_t n;
} s_oids;

static int
s_oids_has(const s_oids *s, uint32_t oid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == oid)
            return 1;
    return 0;
}

static void
s_oids_add(s_oids *s, uint32_t oid)
{
    if (s_oids_has(s, oid))
        return;
    s->v = fl_reallocarray(s->v, s->n + 1, sizeof(uint32_t));
    s->v[s->n++] = oid;
}

static void
s_oids_release(s_oids *s)
{
    fl_free(&s->v);
    s->n = 0;
}

/*
 * One migration (or, for a no-transaction migration, one statement) as a
 * unit of work: its statements, counters, and what the net knows.
 */
typedef struct {
    const fl_migration_t *m;
    fl_stmt_list_t stmts;
    s_stats stats;
    int64_t t0;
    fl_net_snap_t pre;      /* the managed relations at the start of the run */
    fl_backup_t *backups;   /* taken in this run */
    size_t nbackups;
    s_oids backed;          /* their tables */
    s_oids forced;          /* back up before the first statement (kept
                               across runs: the net found them) */
    s_oids explained;       /* rewritten by a statement that says so */
    s_oids named;           /* written by a statement that names them */
    fl_net_snap_t first;    /* the first run's snapshot: sequences as they
                               were before the migration */
    fl_buf_t uncovered;     /* "table: reason; ..." found by the net */
    int nuncovered;
    int restarts;
} s_unit;

static void
s_unit_reset_run(s_unit *u)
{
    fl__net_snap_release(&u->pre);
    for (size_t i = 0; i < u->nbackups; i++)
        fl__backup_release(&u->backups[i]);
    fl_free(&u->backups);
    u->nbackups = 0;
    s_oids_release(&u->backed);
    s_oids_release(&u->explained);
    s_oids_release(&u->named);
    fl_buf_reset(&u->uncovered);
    u->nuncovered = 0;
}

static void
s_unit_release(s_unit *u)
{
    s_unit_reset_run(u);
    s_oids_release(&u->forced);
    fl__net_snap_release(&u->first);
    fl_buf_release(&u->uncovered);
    s_stats_release(&u->stats);
    fl_stmt_list_release(&u->stmts);
}

/*
 * Before a run is undone: its snapshot becomes the unit's first, unless
 * an earlier run's is already kept.  Sequences ignore savepoints and
 * rollbacks, so only the first snapshot knows where they stood before
 * the migration.
 */
static void
s_keep_first(s_unit *u)
{
    if (u->first.rels != NULL || u->pre.rels == NULL)
        return;
    u->first = u->pre;
    u->pre.rels = NULL;
    u->pre.n = 0;
}

/* This target's directory for backup files (absolute), made on demand. */
static int
s_dump_dir(fl_pipeline_t *p, const char **out, fl_error_t *err)
{
    char *id = NULL, *db = NULL, *abs = NULL;
    int rc = 0;

    *out = NULL;
    if (p->dump_dir) {
        *out = p->dump_dir;
        return 0;
    }
    if (p->opts.backup_dir == NULL || p->opts.backup_dump_above <= 0)
        return 0;
    rc = fl_pg_query_value(p->pg, &id, "SELECT target_id::pg_catalog.text FROM"
                           " flotilla.ledger_meta ORDER BY created_at,"
                           " ledger_version LIMIT 1", 0, NULL, err);
    if (rc == 0)
        rc = fl_pg_query_value(p->pg, &db, "SELECT pg_catalog.current_database()",
                               0, NULL, err);
    if (rc != 0)
        goto cleanup;
    if (mkdir(p->opts.backup_dir, 0700) != 0 && errno != EEXIST) {
        rc = FL_ERR(err, FL_EIO, "could not create backup directory \"%s\": %s",
                    p->opts.backup_dir, strerror(errno));
        goto cleanup;
    }
    abs = realpath(p->opts.backup_dir, NULL);
    if (abs == NULL) {
        rc = FL_ERR(err, FL_EIO, "could not resolve backup directory \"%s\": "
                    "%s", p->opts.backup_dir, strerror(errno));
        goto cleanup;
    }
    /*
     * One directory per target: "<database>-<first 12 of its ledger's
     * target id>", so two databases of the same name on two servers, or
     * hundreds of an agent's tenants, never share a file name.
     */
    /* A schema target's: "<database>__<schema>-<target id>". */
    if (*p->target != '\0') {
        char *both = fl_asprintf("%.40s__%.40s", db, p->target);
        free(db);
        db = both;
    }
    for (char *c = db; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            *c = '_';
    p->dump_dir = fl_asprintf("%s/%.82s-%.12s", abs, db, id ? id : "");
    *out = p->dump_dir;
cleanup:
    free(abs);
    free(id);
    free(db);
    return rc;
}

/*
 * Resolves names (schema may be NULL) to OIDs as the migration's next
 * statement would: qualified names directly, others through the
 * migration's effective schemas.  oids[i] = 0 for a name that does not
 * exist; relkinds[i] its relkind.
 */
static int
s_resolve(fl_pipeline_t *p, const char *const *schemas,
          const char *const *names, size_t n, uint32_t *oids, char *relkinds,
          fl_error_t *err)
{
    json_t *a = json_array();
    char *text = NULL;
    const char *params[2];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, fl_json_pack("[s?, s]", schemas[i], names[i]));
    text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    params[0] = text;
    params[1] = fl__session_schemas(&p->session);
    rc = fl_pg_query(p->pg, &r,
        "SELECT x.oid, x.relkind FROM pg_catalog.json_array_elements("
        " $1::pg_catalog.json) WITH ORDINALITY AS u(e, i)"
        " LEFT JOIN LATERAL (SELECT c.oid, c.relkind FROM pg_catalog.pg_class c"
        "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=)"
        "  c.relnamespace WHERE c.relname OPERATOR(pg_catalog.=)"
        "  (u.e OPERATOR(pg_catalog.->>) 1)::pg_catalog.name AND CASE WHEN"
        "  (u.e OPERATOR(pg_catalog.->>) 0) IS NOT NULL THEN n.nspname"
        "  OPERATOR(pg_catalog.=) (u.e OPERATOR(pg_catalog.->>) 0)::pg_catalog.name"
        "  ELSE n.nspname::pg_catalog.text OPERATOR(pg_catalog.=) ANY"
        "  (ARRAY(SELECT pg_catalog.json_array_elements_text($2::pg_catalog.json)))"
        "  END ORDER BY pg_catalog.array_position(ARRAY(SELECT"
        "  pg_catalog.json_array_elements_text($2::pg_catalog.json)),"
        "  n.nspname::pg_catalog.text) LIMIT 1) x ON true ORDER BY u.i",
        2, params, err);
    for (size_t i = 0; rc == 0 && i < n && i < r.nrows; i++) {
        const char *o = fl_pg_value(&r, i, 0);
        const char *k = fl_pg_value(&r, i, 1);
        oids[i] = o ? (uint32_t)strtoul(o, NULL, 10) : 0;
        relkinds[i] = k ? k[0] : '\0';
    }
    fl_pg_result_release(&r);
    free(text);
    return rc;
}

/*
 * The tables a statement destroying data in roots reaches through the
 * catalog: referencing tables whose foreign keys act (CASCADE, SET NULL,
 * SET DEFAULT) on delete (DELETE, MERGE) or on update (UPDATE, upserts),
 * every referencing table for TRUNCATE ... CASCADE, recursively; and for
 * partitioned tables, their leaf partitions.  Adds to out.
 */
static int
s_reach(fl_pipeline_t *p, const s_oids *roots, int on_delete, int on_update,
        int truncate, s_oids *out, fl_error_t *err)
{
    fl_buf_t arr = FL_BUF_INIT(0);
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char flags[8];
    const char *params[2];
    int rc;

    fl_buf_adds(&arr, "{");
    for (size_t i = 0; i < roots->n; i++)
        fl_buf_addf(&arr, "%s%u", i ? "," : "", roots->v[i]);
    fl_buf_adds(&arr, "}");
    snprintf(flags, sizeof(flags), "%d%d%d", on_delete, on_update, truncate);
    params[0] = fl_buf_str(&arr);
    params[1] = flags;
    rc = fl_pg_query(p->pg, &r,
        "WITH RECURSIVE reach(oid) AS ("
        "  SELECT pg_catalog.unnest($1::pg_catalog.oid[])"
        "  UNION SELECT k.conrelid FROM pg_catalog.pg_constraint k"
        "  JOIN reach ON k.confrelid OPERATOR(pg_catalog.=) reach.oid"
        "  WHERE k.contype = 'f' AND ("
        "   (pg_catalog.substr($2, 1, 1) = '1' AND k.confdeltype IN ('c', 'n', 'd'))"
        "   OR (pg_catalog.substr($2, 2, 1) = '1' AND k.confupdtype IN ('c', 'n', 'd'))"
        "   OR pg_catalog.substr($2, 3, 1) = '1'))"
        " SELECT DISTINCT t.relid FROM reach, LATERAL ("
        "  SELECT reach.oid AS relid UNION ALL"
        "  SELECT pt.relid FROM pg_catalog.pg_partition_tree(reach.oid) pt"
        "  WHERE pt.isleaf) t",
        2, params, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        s_oids_add(out, (uint32_t)strtoul(fl_pg_value(&r, i, 0), NULL, 10));
    fl_pg_result_release(&r);
    fl_buf_release(&arr);
    return rc;
}

/* Adds the tables of the schemas named in names (a JSON array) to out. */
static int
s_schema_tables(fl_pipeline_t *p, json_t *names, s_oids *out, fl_error_t *err)
{
    char *text = json_dumps(names, JSON_COMPACT);
    const char *params[1] = {text};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query(p->pg, &r,
        "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.relkind IN"
        " ('r', 'p') AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.=) ANY"
        " (ARRAY(SELECT pg_catalog.json_array_elements_text($1::pg_catalog.json)))",
        1, params, err);

    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        s_oids_add(out, (uint32_t)strtoul(fl_pg_value(&r, i, 0), NULL, 10));
    fl_pg_result_release(&r);
    free(text);
    return rc;
}

/* Takes the backup of table oid if it pre-existed and has none yet. */
static int
s_backup_one(fl_pipeline_t *p, s_unit *u, uint32_t oid, const char *lockmode,
             int stmt_index, fl_error_t *err)
{
    const fl_net_rel_t *pre = fl__net_find(&u->pre, oid);
    fl_backup_ctx_t ctx = {u->m->version, p->opts.bundle_id, NULL,
                           p->opts.backup_dump_above, p->target};
    fl_backup_t b;
    char *where = NULL;
    int64_t t0 = fl__now_ms();
    fl_error_t lerr = FL_ERROR_INIT;
    int rc;

    /* Created by this migration, not a table, or already kept. */
    if (pre == NULL || pre->relkind != 'r' || s_oids_has(&u->backed, oid))
        return 0;
    if ((rc = s_dump_dir(p, &ctx.dump_dir, err)) != 0)
        return rc;
    rc = fl__backup_take(p->pg, &ctx, pre, lockmode, stmt_index, &b, &where,
                         &lerr);
    if (rc == FL_ECONFLICT) {
        /*
         * This run already changed the table: it is backed up before the
         * first statement of the next run instead (the net restarts).
         */
        fl_buf_addf(&u->uncovered, "%s%s.%s: %s", u->nuncovered++ ?
                            "; " : "", pre->schema, pre->name,
                            "changed by an earlier statement of the same "
                            "migration before the one that destroys its data");
        s_oids_add(&u->forced, oid);
        fl_error_clear(&lerr);
        return 0;
    }
    if (rc != 0) {
        fl_error_move(err, &lerr);
        return rc;
    }
    u->backups = fl_reallocarray(u->backups, u->nbackups + 1, sizeof(b));
    u->backups[u->nbackups++] = b;
    s_oids_add(&u->backed, oid);
    if (b.dump) {
        p->partial = fl_reallocarray(p->partial, p->npartial + 1,
                                     sizeof(char *));
        p->partial[p->npartial++] = fl_strdup(b.path);
    }
    s_event(p, FL_STEP_BACKUP, FL_STEP_OK, u->m, fl__now_ms() - t0, NULL,
            "backed up %s.%s to %s", pre->schema, pre->name, where);
    free(where);
    return 0;
}

static int
s_destroys_rows(fl_destroy_kind k)
{
    return k == FL_DESTROY_UPDATE || k == FL_DESTROY_DELETE;
}

/*
 * Before statement k runs: resolves the tables it destroys data in (under
 * the search_path the migration has set by now), follows the catalog to
 * the tables that reaches, and backs up every one that existed before the
 * migration.  A table the statement writes and a later statement destroys
 * is backed up now, before this write.  Tables a statement rewrites on
 * purpose (and says so) are noted, so the net does not take the rewrite
 * for a TRUNCATE.  Runs on the pinned session.
 */
static int
s_prepare_statement(fl_pipeline_t *p, s_unit *u, size_t k, fl_error_t *err)
{
    const fl_stmt_t *st = &u->stmts.items[k];
    size_t cap = st->ndestroys + st->ntables + 1, n = 0;
    const char **schemas = fl_calloc(cap, sizeof(char *));
    const char **names = fl_calloc(cap, sizeof(char *));
    /* 0 destroys, 1 writes and a later one destroys, 2 rewrites, 3 writes */
    int *why = fl_calloc(cap, sizeof(int));
    uint32_t *oids = NULL;
    char *kinds = NULL;
    s_oids rows = {NULL, 0}, whole = {NULL, 0}, reach = {NULL, 0};
    json_t *dropped_schemas = json_array();
    int on_delete = 0, on_update = 0, truncate = 0;
    int rc = 0;

    for (size_t i = 0; i < st->ndestroys; i++) {
        const fl_destroy_t *d = &st->destroys[i];
        if (d->kind == FL_DESTROY_DROP_SCHEMA && d->schema) {
            json_array_append_new(dropped_schemas, json_string(d->schema));
            continue;
        }
        if (d->table == NULL)
            continue;
        schemas[n] = d->schema;
        names[n] = d->table;
        why[n++] = 0;
        on_delete |= d->kind == FL_DESTROY_DELETE;
        on_update |= d->kind == FL_DESTROY_UPDATE;
        truncate |= d->kind == FL_DESTROY_TRUNCATE && st->cascades;
    }
    for (size_t i = 0; i < st->ntables; i++) {
        const fl_table_ref_t *t = &st->tables[i];
        int later = 0;
        if (!t->writes)
            continue;
        schemas[n] = t->schema;
        names[n] = t->name;
        if (st->rewrites) {
            why[n++] = 2;
            continue;
        }
        /* Written now, destroyed later (by the same name): keep it now. */
        for (size_t j = k + 1; j < u->stmts.count && !later; j++)
            for (size_t d = 0; d < u->stmts.items[j].ndestroys && !later; d++)
                later = u->stmts.items[j].destroys[d].table &&
                        strcmp(u->stmts.items[j].destroys[d].table,
                               t->name) == 0;
        why[n++] = later ? 1 : 3;
    }
    if (n == 0 && json_array_size(dropped_schemas) == 0)
        goto cleanup;
    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0)
        goto cleanup;
    oids = fl_calloc(n + 1, sizeof(uint32_t));
    kinds = fl_calloc(n + 1, 1);
    if (n && (rc = s_resolve(p, schemas, names, n, oids, kinds, err)) != 0)
        goto cleanup;
    if (json_array_size(dropped_schemas) &&
        (rc = s_schema_tables(p, dropped_schemas, &whole, err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (oids[i] == 0)
            continue; /* DROP ... IF EXISTS of nothing; a check reports it */
        if (why[i] != 0)
            s_oids_add(&u->named, oids[i]);
        if (why[i] == 2) {
            s_oids_add(&u->explained, oids[i]);
        } else if (why[i] == 3) {
            continue;
        } else if (kinds[i] == 'r' || kinds[i] == 'p') {
            int rowlevel = why[i] == 1;
            for (size_t d = 0; why[i] == 0 && d < st->ndestroys; d++)
                if (st->destroys[d].table &&
                    strcmp(st->destroys[d].table, names[i]) == 0)
                    rowlevel |= s_destroys_rows(st->destroys[d].kind);
            s_oids_add(rowlevel ? &rows : &whole, oids[i]);
        }
    }
    if (rows.n + whole.n == 0)
        goto cleanup;
    {
        s_oids roots = {NULL, 0};
        for (size_t i = 0; i < rows.n; i++)
            s_oids_add(&roots, rows.v[i]);
        for (size_t i = 0; i < whole.n; i++)
            s_oids_add(&roots, whole.v[i]);
        rc = s_reach(p, &roots, on_delete || truncate, on_update, truncate,
                     &reach, err);
        s_oids_release(&roots);
        if (rc != 0)
            goto cleanup;
    }
    /*
     * DML needs only writers kept out (EXCLUSIVE); DDL takes ACCESS
     * EXCLUSIVE anyway, so the backup takes it first.
     */
    for (size_t i = 0; rc == 0 && i < reach.n; i++)
        rc = s_backup_one(p, u, reach.v[i],
                          s_oids_has(&whole, reach.v[i]) ? "ACCESS EXCLUSIVE"
                                                         : "EXCLUSIVE",
                          (int)k, err);
cleanup:
    json_decref(dropped_schemas);
    s_oids_release(&rows);
    s_oids_release(&whole);
    s_oids_release(&reach);
    free(schemas);
    free(names);
    free(why);
    free(oids);
    free(kinds);
    return rc;
}

/*
 * The net, after the last statement and before COMMIT: compares the
 * managed relations with the snapshot taken when the run started.  A
 * table that existed before is destroyed when it is gone, its storage
 * was replaced (TRUNCATE, or a rewrite no statement announced), this
 * transaction updated or deleted rows in it, or a column it had was
 * dropped (a type change that keeps the data needs no rewrite, one that
 * does not is a rewrite); if no backup of this run covers it, it is listed in
 * u->uncovered and added to u->forced.  Sequences that were dropped,
 * restarted or moved back have their old position recorded (no restart
 * is needed for them).
 */
static int
s_net(fl_pipeline_t *p, s_unit *u, fl_net_snap_t *post, fl_error_t *err)
{
    fl_net_touched_t touched = {NULL, 0};
    fl_backup_ctx_t sctx = {u->m->version, p->opts.bundle_id, NULL, 0,
                            p->target};
    int rc;

    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0)
        return rc;
    if ((rc = fl__net_snapshot(p->pg, p->target, post, err)) != 0 ||
        (rc = fl__net_touched_columns(p->pg, &touched, err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < u->pre.n; i++) {
        const fl_net_rel_t *b = &u->pre.rels[i];
        const fl_net_rel_t *a = fl__net_find(post, b->oid);
        char reason[160] = "";

        if (b->relkind == 'S') {
            /* Against the first run: sequences ignore savepoints. */
            const fl_net_rel_t *f = fl__net_find(&u->first, b->oid);
            const char *why = NULL, *after = NULL;
            long long was = 0, is = 0;
            if (f == NULL)
                f = b;
            was = f->seq_last ? strtoll(f->seq_last, NULL, 10) : 0;
            is = a && a->seq_last ? strtoll(a->seq_last, NULL, 10) : 0;
            if (a == NULL)
                why = "dropped";
            else if (a->relfilenode != f->relfilenode)
                why = "restarted";
            else if (f->seq_last && (a->seq_last == NULL || is < was))
                why = "moved back";
            else if (a->seq_last && (f->seq_last == NULL || is > was)) {
                why = "advanced";
                after = a->seq_last;
            }
            if (why && (f->seq_last || after) &&
                (rc = fl__backup_sequence(p->pg, &sctx, f, after, why,
                                          err)) != 0)
                goto cleanup;
            continue;
        }
        if (b->relkind != 'r')
            continue;
        if (a == NULL)
            snprintf(reason, sizeof(reason), "dropped");
        else if (a->relfilenode != b->relfilenode &&
                 !s_oids_has(&u->explained, b->oid))
            snprintf(reason, sizeof(reason), "its storage was replaced "
                     "(TRUNCATE or a rewrite)");
        else if (a->n_del > b->n_del)
            snprintf(reason, sizeof(reason), "%lld rows deleted",
                     (long long)(a->n_del - b->n_del));
        else if (a->n_upd > b->n_upd)
            snprintf(reason, sizeof(reason), "%lld rows updated",
                     (long long)(a->n_upd - b->n_upd));
        else if (fl__net_lost_column(&touched, b))
            snprintf(reason, sizeof(reason), "a column dropped");
        if (reason[0] == '\0' || s_oids_has(&u->backed, b->oid))
            continue;
        fl_buf_addf(&u->uncovered, "%s%s.%s: %s",
                            u->nuncovered++ ? "; " : "", b->schema, b->name,
                            reason);
        s_oids_add(&u->forced, b->oid);
    }
    rc = 0;
cleanup:
    fl__net_touched_release(&touched);
    return rc;
}

/*
 * Before COMMIT: each backup learns which rows the migration changed, and
 * rows inserted into tables no statement names (a trigger's, a DO
 * block's) are recorded so that a rollback removes them.
 */
static int
s_reconcile(fl_pipeline_t *p, s_unit *u, const fl_net_snap_t *post,
            fl_error_t *err)
{
    fl_backup_ctx_t ctx = {u->m->version, p->opts.bundle_id, NULL, 0,
                           p->target};

    for (size_t i = 0; i < u->nbackups; i++) {
        const fl_backup_t *b = &u->backups[i];
        int rc = fl__backup_reconcile(p->pg, b, fl__net_find(&u->pre, b->oid),
                                      fl__net_find(post, b->oid), err);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < u->pre.n; i++) {
        const fl_net_rel_t *b = &u->pre.rels[i];
        const fl_net_rel_t *a = fl__net_find(post, b->oid);
        char *what = NULL;
        int rc;
        if (b->relkind != 'r' || a == NULL || a->n_ins == b->n_ins ||
            s_oids_has(&u->backed, b->oid) || s_oids_has(&u->named, b->oid))
            continue;
        rc = fl__backup_track_inserts(p->pg, &ctx, b, a, &what, err);
        if (rc != 0)
            return rc;
        s_event(p, FL_STEP_BACKUP, FL_STEP_OK, u->m, 0, NULL, "%s.%s: %s",
                b->schema, b->name, what);
        free(what);
    }
    return 0;
}

/* After COMMIT: the dump files of the committed backups get their names. */
static void
s_publish_files(fl_pipeline_t *p, int committed)
{
    for (size_t i = 0; i < p->npartial; i++) {
        char *part = fl_asprintf("%s.partial", p->partial[i]);
        if (committed ? rename(part, p->partial[i]) != 0 : unlink(part) != 0)
            fl_log_warning("pipeline", "could not %s backup file \"%s\": %s",
                           committed ? "publish" : "remove", part,
                           strerror(errno));
        free(part);
        free(p->partial[i]);
    }
    fl_free(&p->partial);
    p->npartial = 0;
}

/* Why one attempt of a unit stopped. */
typedef enum {
    S_OK,
    S_REFUSED,  /* validation: nothing of this unit changed */
    S_FAILED    /* a statement, a backup or the ledger failed */
} s_outcome;

/*
 * Raises the high-water mark of the release being applied: the highest
 * sequence applied on its channel, with that bundle's id and signer.  An
 * older release applied by override leaves the mark where it is.
 */
static int
s_mark_release(fl_pipeline_t *p, fl_error_t *err)
{
    char seq[24];
    const char *params[5];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    snprintf(seq, sizeof(seq), "%lld",
             (long long)fl_bundle_sequence(p->release));
    params[0] = fl_bundle_channel(p->release);
    params[1] = seq;
    params[2] = fl_bundle_id(p->release);
    params[3] = fl_bundle_signer(p->release);
    params[4] = p->target;
    rc = fl_pg_query(p->pg, &r,
        "INSERT INTO flotilla.release_marks (channel, sequence, bundle_id,"
        " signer, target) VALUES ($1, $2::pg_catalog.int8, $3, $4, $5)"
        " ON CONFLICT (target, channel) DO UPDATE SET sequence ="
        " EXCLUDED.sequence,"
        " bundle_id = EXCLUDED.bundle_id, signer = EXCLUDED.signer,"
        " updated_at = pg_catalog.clock_timestamp()"
        " WHERE release_marks.sequence OPERATOR(pg_catalog.<) EXCLUDED.sequence",
        5, params, err);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * Whether the bundle of src may run here (proto/bundle.h's contract):
 * its signed scope must admit this target's environment and labels, and
 * its release must not be older than the highest applied on its channel
 * nor another bundle numbered as that one.  A release refusal becomes a
 * note in *override (for the log) when opts.allow_older_release says so.
 * Directories, for development, carry no release and no scope.
 */
static int
s_check_release(fl_pipeline_t *p, const fl_source_t *src, char **override,
                fl_error_t *err)
{
    const fl_bundle_t *b = src->bundle;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[2];
    int rc;

    *override = NULL;
    p->release = NULL;
    if (b == NULL)
        return 0;
    if ((rc = fl_bundle_scope_admits(b, p->opts.environment, p->opts.labels,
                                     p->opts.nlabels, err)) != 0) {
        if (p->opts.environment == NULL)
            fl_error_set_hint(err, "Name this target's environment (apply "
                                   "--environment NAME), or build the bundle "
                                   "for it.");
        if (err)
            err->code = FL_EINVAL;
        return FL_EINVAL;
    }
    if ((rc = fl_ledger_exists(p->pg, err)) < 0)
        return rc;
    params[0] = fl_bundle_channel(b);
    params[1] = p->target;
    if (rc == 1 &&
        (rc = fl_pg_query(p->pg, &r, "SELECT sequence::pg_catalog.text,"
                          " bundle_id FROM flotilla.release_marks WHERE"
                          " channel OPERATOR(pg_catalog.=) $1 AND target"
                          " OPERATOR(pg_catalog.=) $2", 2, params,
                          err)) != 0)
        return rc;
    if (r.nrows == 1) {
        long long mark = strtoll(fl_pg_value(&r, 0, 0), NULL, 10);
        long long seq = (long long)fl_bundle_sequence(b);
        const char *mark_id = fl_pg_value(&r, 0, 1);
        char *why = NULL;

        if (seq < mark)
            why = fl_asprintf("bundle %s is release %lld of channel \"%s\", "
                              "older than release %lld (bundle %s) applied "
                              "here", fl_bundle_id(b), seq,
                              fl_bundle_channel(b), mark, mark_id);
        else if (seq == mark && strcmp(mark_id, fl_bundle_id(b)) != 0)
            why = fl_asprintf("bundle %s claims release %lld of channel "
                              "\"%s\", but another bundle (%s) was applied "
                              "here as that release", fl_bundle_id(b), seq,
                              fl_bundle_channel(b), mark_id);
        if (why && p->opts.allow_older_release) {
            *override = why;
        } else if (why) {
            rc = FL_ERR(err, FL_EINVAL, "%s", why);
            fl_error_set_detail(err, "A bundle older than one applied could "
                                     "undo a fix or be a replay; each "
                                     "channel's releases only go forward.");
            fl_error_set_hint(err, "Apply the newest release of the channel. "
                                   " To apply this one anyway, add "
                                   "--allow-older-release --reason TEXT.");
            free(why);
        }
    }
    fl_pg_result_release(&r);
    if (rc == 0)
        p->release = b;
    return rc;
}

/*
 * One attempt at statements [from, to) of u in one transaction, from
 * BEGIN to COMMIT: validation (first unit only), the net's snapshot, a
 * savepoint, then per statement its backups, checks and the statement;
 * the verify statements (last unit only); the net; at most one restart
 * behind the savepoint with the tables the net found backed up first;
 * reconciliation of the backups; the ledger row (applied, or for a
 * no-transaction migration its progress); COMMIT.
 */
static int
s_unit_once(fl_pipeline_t *p, s_unit *u, size_t from, size_t to, int notx,
            s_outcome *outcome, int *stage, fl_error_t *err)
{
    const fl_migration_t *m = u->m;
    fl_net_snap_t post = {NULL, 0};
    int rc;

    *outcome = S_FAILED;
    *stage = FL_STEP_VALIDATE;
    fl__session_reset(&p->session);
    if ((rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0 ||
        (rc = s_set_timeouts(p, m, 1, err)) != 0)
        return rc;
    if (!notx) {
        *outcome = S_REFUSED;
        if ((rc = s_custom_validate(p, m, NULL, err)) != 0)
            return rc;
        *outcome = S_FAILED;
        s_event(p, FL_STEP_VALIDATE, FL_STEP_OK, m, fl__now_ms() - u->t0, NULL,
                "%zu statement%s parsed and linted%s; live checks run before "
                "each statement", u->stmts.count,
                u->stmts.count == 1 ? "" : "s",
                m->validate ? ", validate statements hold" : "");
        s_event(p, FL_STEP_EXECUTE, FL_STEP_STARTED, m, 0, NULL,
                "executing %s", m->file);
    }
    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
        (rc = fl__net_snapshot(p->pg, p->target, &u->pre, err)) != 0 ||
        (rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_run", err)) != 0)
        return rc;

    for (;;) {
        *stage = FL_STEP_BACKUP;
        for (size_t i = 0; i < u->forced.n; i++)
            if ((rc = s_backup_one(p, u, u->forced.v[i], "EXCLUSIVE", -1,
                                   err)) != 0)
                return rc;
        for (size_t i = from; i < to; i++) {
            *stage = FL_STEP_BACKUP;
            if ((rc = s_prepare_statement(p, u, i, err)) != 0)
                return rc;
            *stage = FL_STEP_VALIDATE;
            *outcome = S_REFUSED;
            if ((rc = s_run_checks(p, &u->stmts, i, NULL, err)) != 0)
                return rc;
            *outcome = S_FAILED;
            *stage = FL_STEP_EXECUTE;
            if ((rc = s_run(p, m, &u->stmts, (int)i, 1, 0, &u->stats,
                            err)) != 0)
                return rc;
            u->stats.done = (int)i + 1;
        }
        *stage = FL_STEP_VERIFY_AFTER;
        if (to == u->stmts.count && (rc = s_verify_statements(p, m, err)) != 0)
            return rc;
        fl__net_snap_release(&post);
        if ((rc = s_net(p, u, &post, err)) != 0)
            goto cleanup;
        if (u->nuncovered == 0)
            break;
        if (u->restarts > 0) {
            *outcome = S_REFUSED;
            rc = FL_ERR(err, FL_EINVAL, "%s destroyed data that no backup "
                        "covers, even when run again with those tables "
                        "backed up first", m->file);
            fl_error_set_detail(err, "%s.", fl_buf_str(&u->uncovered));
            fl_error_set_hint(err, "The statements that reach these tables "
                              "(a DO block, a function, a trigger) destroyed "
                              "different data on each run.  Write them out "
                              "as plain statements, or split the migration.");
            goto cleanup;
        }
        /*
         * The net caught what the analyser could not see (a trigger, a DO
         * block, a cascade through the catalog): undo the run, and run it
         * again with those tables backed up before the first statement.
         */
        s_event(p, FL_STEP_BACKUP, FL_STEP_RETRY, m, 0, NULL,
                "%s destroyed data in tables no backup covered (%s); running "
                "it again with them backed up first", m->file,
                fl_buf_str(&u->uncovered));
        u->restarts++;
        if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_run",
                             err)) != 0)
            goto cleanup;
        p->session.in_migration = 0;
        fl__session_reset(&p->session);
        s_publish_files(p, 0);
        u->stats.done = (int)from;
        {
            s_oids forced = u->forced;
            u->forced.v = NULL;
            u->forced.n = 0;
            s_keep_first(u);
            s_unit_reset_run(u);
            u->forced = forced;
        }
        if ((rc = fl__net_snapshot(p->pg, p->target, &u->pre, err)) != 0)
            goto cleanup;
    }
    *stage = FL_STEP_BACKUP;
    if ((rc = s_reconcile(p, u, &post, err)) != 0)
        goto cleanup;
    *stage = FL_STEP_VERIFY_AFTER;
    {
        int last = to == u->stmts.count;
        fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                                  p->opts.agent,
                                  notx && !last ? "running" : "applied",
                                  !notx, u->stats.done,
                                  (int)u->stmts.count, fl__now_ms() - u->t0,
                                  u->stats.lock_wait_ms, u->stats.retries,
                                  NULL, NULL, NULL, p->target};
        rc = fl_ledger_record(p->pg, &rec, err);
        /* The release's mark commits with the migration that applies it. */
        if (rc == 0 && last && p->release)
            rc = s_mark_release(p, err);
    }
    if (rc == 0)
        rc = fl_pg_exec(p->pg, "COMMIT", err);
    if (rc == 0) {
        *outcome = S_OK;
        s_publish_files(p, 1);
        /* A statement may have SET a session value; pin it again. */
        rc = fl__session_repin(p->pg, &p->session, err);
    }
cleanup:
    fl__net_snap_release(&post);
    return rc;
}

/*
 * Runs statements [from, to) of u as one unit, retrying its whole
 * transaction after a lock timeout (no lock is held while it waits).
 */
static int
s_run_unit(fl_pipeline_t *p, s_unit *u, size_t from, size_t to, int notx,
           s_outcome *outcome, int *stage, fl_error_t *err)
{
    /* What the net learnt is about this unit's statements only. */
    s_oids_release(&u->forced);
    fl__net_snap_release(&u->first);
    u->restarts = 0;
    for (int attempt = 0;; attempt++) {
        int64_t ta = fl__now_ms();
        int rc = s_unit_once(p, u, from, to, notx, outcome, stage, err);
        int lock = rc != 0 && err && strcmp(err->sqlstate, "55P03") == 0;

        p->session.in_migration = 0;
        s_keep_first(u);
        s_unit_reset_run(u);
        if (rc == 0)
            return 0;
        s_rollback_quietly(p);
        s_publish_files(p, 0);
        u->stats.done = (int)from;
        if (lock && attempt < p->opts.lock_retries && !s_cancelled(p)) {
            int64_t wait = s_backoff(p, p->opts.retry_base_ms, attempt);
            char *who = s_blockers(p, &u->stmts, S_ALL);

            s_event(p, FL_STEP_EXECUTE, FL_STEP_RETRY, u->m, fl__now_ms() - ta,
                    NULL, "lock timeout at %s (attempt %d of %d); rolled "
                    "back, retrying in %lld ms; blocked by %s",
                    u->stats.error_position ? u->stats.error_position
                                            : u->m->file,
                    attempt + 1, p->opts.lock_retries + 1, (long long)wait,
                    who);
            free(who);
            fl_error_clear(err);
            u->stats.lock_wait_ms += fl__now_ms() - ta + wait;
            u->stats.retries++;
            u->restarts = 0;
            s_sleep(p, wait);
            continue;
        }
        if (lock) {
            char *who = s_blockers(p, &u->stmts, S_ALL);
            fl_error_set_detail(err, "Gave up after %d attempts; blocked by "
                                "%s.", attempt + 1, who);
            fl_error_set_hint(err, "Retry when the blocking sessions are "
                                   "done, or see \"flotilla locks\".");
            err->code = FL_ETIMEOUT;
            free(who);
        }
        return rc;
    }
}

/*
 * Applies one migration: a transactional one as one unit; a
 * no-transaction one statement by statement, each statement that can run
 * in a transaction as a unit with its progress row, the others on their
 * own, resuming after the statements the ledger says are done.
 */
static int
s_apply_migration(fl_pipeline_t *p, const fl_migration_t *m,
                  const fl_ledger_row_t *row, fl_error_t *err)
{
    s_unit u;
    char *fingerprint = NULL;
    size_t start = 0;
    int before = 0, changes = 0;
    s_outcome outcome = S_FAILED;
    int stage = FL_STEP_VALIDATE;
    int rc = 0;

    memset(&u, 0, sizeof(u));
    u.m = m;
    u.t0 = fl__now_ms();
    fl_buf_init(&u.uncovered, 0);
    s_event(p, FL_STEP_VALIDATE, FL_STEP_STARTED, m, 0, NULL, "validating %s",
            m->file);
    outcome = S_REFUSED;
    if ((rc = s_statements(p, m, &u.stmts, err)) != 0)
        goto refused;
    if ((rc = fl__lint_gate(m, fl_pg_server_version(p->pg),
                            p->opts.allow_lint_errors, NULL, err)) != 0)
        goto refused;
    if (m->no_transaction && row &&
        (strcmp(row->status, "running") == 0 ||
         strcmp(row->status, "failed") == 0) && row->statements_done > 0) {
        if (strcmp(row->checksum, m->checksum_hex) != 0) {
            rc = FL_ERR(err, FL_EINVAL, "%s was partly applied (%d of %d "
                        "statements) with different content", m->file,
                        row->statements_done, row->statements_total);
            fl_error_set_hint(err, "Restore the migration file as it was, "
                                   "let it finish, and change it in a new "
                                   "migration.");
            goto refused;
        }
        start = (size_t)row->statements_done;
        u.stats.done = row->statements_done;
        u.stats.retries = row->retries;
        u.stats.lock_wait_ms = row->lock_wait_ms;
    }
    if ((rc = s_schema_before(p, &before, err)) != 0) {
        outcome = S_FAILED;
        goto done;
    }
    if (!m->no_transaction) {
        rc = s_run_unit(p, &u, 0, u.stmts.count, 0, &outcome, &stage, err);
        if (rc != 0)
            goto done;
        s_event(p, FL_STEP_EXECUTE, FL_STEP_OK, m, fl__now_ms() - u.t0, NULL,
                "%zu statement%s executed", u.stmts.count,
                u.stmts.count == 1 ? "" : "s");
    } else {
        if ((rc = s_set_timeouts(p, m, 0, err)) != 0)
            goto done;
        if ((rc = s_custom_validate(p, m, NULL, err)) != 0 ||
            (rc = fl__session_leave(p->pg, &p->session, err)) != 0)
            goto done;
        s_event(p, FL_STEP_VALIDATE, FL_STEP_OK, m, fl__now_ms() - u.t0, NULL,
                "%zu statement%s parsed and linted%s; live checks run before "
                "each statement%s", u.stmts.count,
                u.stmts.count == 1 ? "" : "s",
                m->validate ? ", validate statements hold" : "",
                start ? " (resuming)" : "");
        if (start)
            s_event(p, FL_STEP_EXECUTE, FL_STEP_STARTED, m, 0, NULL,
                    "resuming %s at statement %zu of %zu", m->file, start + 1,
                    u.stmts.count);
        for (size_t i = start; i < u.stmts.count; i++) {
            const fl_stmt_t *st = &u.stmts.items[i];
            if (!st->no_transaction) {
                rc = s_run_unit(p, &u, i, i + 1, 1, &outcome, &stage, err);
            } else {
                /* CONCURRENTLY and friends: on their own, then progress. */
                fl_ledger_record_t rec = {m, p->opts.bundle_id,
                    p->opts.rollout_id, p->opts.agent, "running", 0, (int)i + 1,
                    (int)u.stmts.count, 0, 0, 0, NULL, NULL, NULL, p->target};
                stage = FL_STEP_VALIDATE;
                outcome = S_REFUSED;
                fl__session_reset(&p->session);
                if ((rc = s_run_checks(p, &u.stmts, i, NULL, err)) != 0)
                    goto done;
                outcome = S_FAILED;
                stage = FL_STEP_EXECUTE;
                rc = s_run(p, m, &u.stmts, (int)i, 0, p->opts.lock_retries,
                           &u.stats, err);
                if (rc == 0)
                    rc = fl__session_leave(p->pg, &p->session, err);
                if (rc == 0) {
                    u.stats.done = (int)i + 1;
                    rec.duration_ms = fl__now_ms() - u.t0;
                    rec.lock_wait_ms = u.stats.lock_wait_ms;
                    rec.retries = u.stats.retries;
                    rec.status = i + 1 == u.stmts.count ? "applied" : "running";
                    rc = fl_ledger_record(p->pg, &rec, err);
                }
                if (rc == 0)
                    rc = fl__session_repin(p->pg, &p->session, err);
            }
            if (rc != 0)
                goto done;
            s_event(p, FL_STEP_EXECUTE, FL_STEP_OK, m, 0, NULL,
                    "statement %zu of %zu done (%s:%d)", i + 1, u.stmts.count,
                    m->file, st->line);
        }
        if ((rc = s_verify_statements(p, m, err)) != 0 ||
            (rc = fl__session_leave(p->pg, &p->session, err)) != 0) {
            outcome = S_FAILED;
            goto done;
        }
    }
    fingerprint = s_schema_after(p, m, before, &changes);
    s_event(p, FL_STEP_VERIFY_AFTER, FL_STEP_OK, m, fl__now_ms() - u.t0, NULL,
            "applied %s; %d schema object%s changed; schema fingerprint %.16s",
            m->file, changes, changes == 1 ? "" : "s",
            fingerprint ? fingerprint : "(not recorded)");
    goto cleanup;
done:
    if (rc == 0)
        goto cleanup;
    /* A refusal after statements of a no-transaction migration committed
     * is a failure: something changed. */
    if (outcome == S_REFUSED && (!m->no_transaction ||
                                 u.stats.done == (int)start))
        goto refused;
    s_record_failure(p, m, !m->no_transaction, (int)u.stmts.count, u.t0,
                     &u.stats, err);
    /* Statements of a no-transaction migration may have committed. */
    if (m->no_transaction)
        p->schema_gen = 0;
    if (m->no_transaction)
        s_event(p, (fl_step)stage, FL_STEP_FAILED, m, fl__now_ms() - u.t0, err,
                "%s failed after %d of %zu statements; the next apply "
                "resumes there", m->file, u.stats.done, u.stmts.count);
    else
        s_event(p, (fl_step)stage, FL_STEP_FAILED, m, fl__now_ms() - u.t0, err,
                "%s failed and was rolled back", m->file);
    if (rc == FL_EINVAL && err)
        err->code = rc = FL_EFAIL;
    goto cleanup;
refused:
    s_rollback_quietly(p);
    s_event(p, FL_STEP_VALIDATE, FL_STEP_REFUSED, m, fl__now_ms() - u.t0, err,
            "refused %s", m->file);
    if (rc == FL_EDB)
        fl_error_prefix(err, "%s: ", m->file);
    if (rc == FL_EINVAL || rc == FL_EDB) {
        if (err)
            err->code = FL_EINVAL;
        rc = FL_EINVAL;
    }
cleanup:
    {
        fl_error_t ignore = FL_ERROR_INIT;
        /* Back to the server defaults for what follows on this session. */
        if (m->no_transaction)
            FL_IGNORE(fl_pg_exec(p->pg, "RESET lock_timeout; RESET "
                                 "statement_timeout", &ignore));
        fl_error_clear(&ignore);
    }
    free(fingerprint);
    s_unit_release(&u);
    s_flush_logs(p);
    return rc;
}

/*
 * The verify step over the whole source: drift (an applied migration
 * whose checksum changed) and out-of-order versions.  Fills pending[i]
 * for each migration that still has to run.
 */
static int
s_verify_source(fl_pipeline_t *p, const fl_migration_list_t *migs,
                const fl_ledger_t *ledger, int *pending, fl_error_t *err)
{
    int64_t max_applied = 0;
    fl_buf_t drift = FL_BUF_INIT(0);
    int ndrift = 0;
    int rc = 0;

    for (size_t i = 0; i < ledger->count; i++)
        if (strcmp(ledger->items[i].status, "applied") == 0 &&
            ledger->items[i].version > max_applied)
            max_applied = ledger->items[i].version;
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_ledger_row_t *row = fl_ledger_find(ledger, m->version);

        pending[i] = 0;
        if (row && strcmp(row->status, "applied") == 0) {
            if (strcmp(row->checksum, m->checksum_hex) != 0) {
                fl_buf_addf(&drift, "%s%s (applied %.12s, source "
                                    "%.12s)", ndrift ? "; " : "", m->file,
                                    row->checksum, m->checksum_hex);
                ndrift++;
            }
            continue;
        }
        if (p->opts.to_version && m->version > p->opts.to_version)
            continue;
        pending[i] = 1;
        if (m->version < max_applied && !p->opts.allow_out_of_order &&
            rc == 0) {
            rc = FL_ERR(err, FL_EINVAL, "migration %s is pending but a later "
                        "version (%lld) is already applied", m->file,
                        (long long)max_applied);
            fl_error_set_hint(err, "Renumber it after %lld, or pass "
                                   "--allow-out-of-order if it is independent.",
                          (long long)max_applied);
        }
    }
    if (ndrift) {
        rc = FL_ERR(err, FL_EINVAL, "drift: %d applied migration%s changed "
                    "since %s applied", ndrift, ndrift == 1 ? "" : "s",
                    ndrift == 1 ? "it was" : "they were");
        fl_error_set_detail(err, "%s.", fl_buf_str(&drift));
        fl_error_set_hint(err, "Never edit an applied migration: restore the "
                               "file and make the change in a new migration.");
    }
    fl_buf_release(&drift);
    return rc;
}

int
fl_pipeline_apply(fl_pipeline_t *p, const fl_source_t *src,
                  fl_apply_result_t *result, fl_error_t *err)
{
    const fl_migration_list_t *migs = src->migs;
    fl_ledger_t ledger = {NULL, 0};
    int *pending = fl_calloc(migs->count ? migs->count : 1, sizeof(int));
    int64_t t0 = fl__now_ms();
    char *override = NULL;
    int rc = 0;

    FL_ASSERT(src->verified == FL_SOURCE_VERIFIED);
    if (src->bundle_id)
        p->opts.bundle_id = src->bundle_id;
    memset(result, 0, sizeof(*result));
    p->dry_run = 0;
    if ((rc = s_lock_target(p, err)) != 0)
        goto cleanup;
    if ((rc = fl_ledger_ensure(p->pg, err)) != 0 ||
        (rc = fl_ledger_load(p->pg, p->target, &ledger, err)) != 0)
        goto cleanup;
    rc = s_check_release(p, src, &override, err);
    if (rc == 0)
        rc = s_verify_source(p, migs, &ledger, pending, err);
    if (rc != 0) {
        s_event(p, FL_STEP_VERIFY, FL_STEP_REFUSED, NULL, fl__now_ms() - t0,
                err, "verify refused");
        goto cleanup;
    }
    if (override)
        s_event(p, FL_STEP_VERIFY, FL_STEP_OK, NULL, 0, NULL, "%s; applied "
                "anyway (--allow-older-release, reason: %s)", override,
                p->opts.reason ? p->opts.reason : "none given");
    for (size_t i = 0; i < migs->count; i++)
        result->pending += pending[i];
    s_event(p, FL_STEP_VERIFY, FL_STEP_OK, NULL, fl__now_ms() - t0, NULL,
            "%zu migration%s in source, %d pending", migs->count,
            migs->count == 1 ? "" : "s", result->pending);
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];

        if (!pending[i]) {
            if (fl_ledger_find(&ledger, m->version))
                result->skipped++;
            continue;
        }
        rc = s_apply_migration(p, m, fl_ledger_find(&ledger, m->version),
                               err);
        if (rc != 0)
            break;
        result->applied++;
        result->pending--;
    }
cleanup:
    s_flush_logs(p);
    s_unlock(p);
    p->release = NULL;
    fl_ledger_release(&ledger);
    free(override);
    free(pending);
    return rc;
}

/* JSON description of one statement's facts for the plan. */
static json_t *
s_stmt_json(const fl_migration_t *m, const fl_stmt_t *st, size_t index)
{
    json_t *locks = json_array();
    json_t *backups = json_array();
    json_t *o = NULL;

    for (size_t i = 0; i < st->ntables; i++) {
        char *t = fl_asprintf("%s%s%s", st->tables[i].schema
                                            ? st->tables[i].schema : "",
                              st->tables[i].schema ? "." : "",
                              st->tables[i].name);
        json_array_append_new(locks, fl_json_pack("{s:s, s:s, s:b}", "table", t,
            "lock", fl_lock_level_name(st->tables[i].lock),
            "writes", st->tables[i].writes));
        free(t);
    }
    for (size_t i = 0; i < st->ndestroys; i++) {
        if (!st->destroys[i].table)
            continue; /* DROP SCHEMA: no table named in the statement */
        char *t = fl_asprintf("%s%s%s", st->destroys[i].schema
                                            ? st->destroys[i].schema : "",
                              st->destroys[i].schema ? "." : "",
                              st->destroys[i].table);
        json_array_append_new(backups, json_string(t));
        free(t);
    }
    o = fl_json_pack("{s:I, s:s, s:I, s:I, s:s, s:s, s:o, s:b, s:b, s:b, s:b, s:o}",
                  "index", (json_int_t)index + 1, "file", m->file,
                  "line", (json_int_t)st->line, "column", (json_int_t)st->column,
                  "kind", st->kind ? st->kind : "", "sql", st->sql,
                  "locks", locks, "rewrites", st->rewrites, "scans", st->scans,
                  "destructive", st->destructive,
                  "no_transaction", st->no_transaction, "backup", backups);
    return o;
}

/*
 * What the rehearsal connection holds right now: its granted table locks
 * ("table mode" keys) and the relfilenode of every user table, so a
 * statement's real locks and rewrites can be read off the difference.
 */
static int
s_observe(fl_pipeline_t *p, json_t **locks, json_t **nodes, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    *locks = json_object();
    *nodes = json_object();
    rc = fl_pg_query(p->pg, &r,
        "SELECT l.relation::regclass::text || ' ' || l.mode FROM pg_locks l"
        " JOIN pg_class c ON c.oid = l.relation"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation'"
        " AND l.granted AND c.relkind IN ('r', 'p') AND n.nspname NOT IN"
        " ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')",
        0, NULL, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        json_object_set_new(*locks, fl_pg_value(&r, i, 0), json_true());
    fl_pg_result_release(&r);
    if (rc == 0)
        rc = fl_pg_query(p->pg, &r,
            "SELECT c.oid::regclass::text, c.relfilenode::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN"
            " ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')"
            " AND n.nspname NOT LIKE 'pg\\_%'", 0, NULL, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        json_object_set_new(*nodes, fl_pg_value(&r, i, 0),
                            json_string(fl_pg_value(&r, i, 1)));
    fl_pg_result_release(&r);
    return rc;
}

/* Records in so what the statement really locked and rewrote. */
static void
s_observed(json_t *so, json_t *locks0, json_t *nodes0, json_t *locks1,
           json_t *nodes1)
{
    json_t *locks = json_array(), *rewrites = json_array(), *v = NULL;
    const char *key = NULL;

    json_object_foreach(locks1, key, v) {
        if (json_object_get(locks0, key) == NULL)
            json_array_append_new(locks, json_string(key));
    }
    json_object_foreach(nodes1, key, v) {
        json_t *before = json_object_get(nodes0, key);
        if (before && strcmp(json_string_value(before),
                             json_string_value(v)) != 0)
            json_array_append_new(rewrites, json_string(key));
    }
    json_object_set_new(so, "observed_locks", locks);
    json_object_set_new(so, "observed_rewrites", rewrites);
}

/* Plans one migration inside the rehearsal transaction; fills mo. */
static int
s_plan_one(fl_pipeline_t *p, const fl_migration_t *m, int rehearse,
           json_t *mo, fl_error_t *err)
{
    fl_stmt_list_t stmts = {NULL, 0};
    json_t *sts = json_array();
    json_t *lint = json_array();
    json_t *validate = json_array();
    fl_error_t perr = FL_ERROR_INIT;
    s_stats stats = {0, 0, 0, NULL};
    const char *verdict = "ok";
    char *problem = NULL;
    json_t *locks0 = NULL, *nodes0 = NULL, *locks1 = NULL, *nodes1 = NULL;
    int rc = 0;

    json_object_set_new(mo, "statements", sts);
    json_object_set_new(mo, "lint", lint);
    json_object_set_new(mo, "validate", validate);
    if (s_statements(p, m, &stmts, &perr) != 0) {
        verdict = "refused";
        problem = fl_strdup(perr.message);
        goto done;
    }
    if (fl__lint_gate(m, fl_pg_server_version(p->pg),
                      p->opts.allow_lint_errors, lint, &perr) != 0) {
        verdict = "refused";
        problem = fl_strdup(perr.message);
        fl_error_clear(&perr);
    }
    for (size_t i = 0; i < stmts.count; i++)
        json_array_append_new(sts, s_stmt_json(m, &stmts.items[i], i));
    if (!rehearse) {
        for (size_t i = 0; i < stmts.count; i++)
            json_object_set_new(json_array_get(sts, i), "rehearsal",
                json_string(m->no_transaction
                    ? "not rehearsed: no-transaction migrations cannot run "
                      "inside the rehearsal transaction"
                    : "not rehearsed: an earlier migration could not be"));
        if (strcmp(verdict, "ok") == 0)
            verdict = "not rehearsed";
        goto done;
    }
    if ((rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_plan", err)) != 0 ||
        (rc = s_set_timeouts(p, m, 1, err)) != 0)
        goto done;
    if (s_custom_validate(p, m, validate, &perr) != 0) {
        verdict = "refused";
        free(problem);
        problem = fl_strdup(perr.message);
        fl_error_clear(&perr);
    }
    for (size_t i = 0; i < stmts.count && strcmp(verdict, "refused") != 0; i++) {
        json_t *so = json_array_get(sts, i);
        json_t *checks = json_array();
        int crc;

        json_object_set_new(so, "checks", checks);
        crc = s_run_checks(p, &stmts, i, checks, &perr);
        if (crc != 0) {
            verdict = "refused";
            free(problem);
            problem = fl_strdup(perr.message);
            fl_error_clear(&perr);
            /* A failed check query aborts the transaction: undo to here. */
            if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_plan",
                                 err)) != 0)
                goto done;
            p->session.in_migration = 0;
            break;
        }
        if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
            (rc = s_observe(p, &locks0, &nodes0, err)) != 0)
            goto done;
        if (s_run(p, m, &stmts, (int)i, 1, 0, &stats, &perr) != 0) {
            json_object_set_new(so, "rehearsal", json_string(perr.message));
            verdict = "failed";
            free(problem);
            problem = fl_strdup(perr.message);
            fl_error_clear(&perr);
            if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_plan",
                                 err)) != 0)
                goto done;
            p->session.in_migration = 0;
            break;
        }
        json_object_set_new(so, "rehearsal", json_string("ok"));
        if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
            (rc = s_observe(p, &locks1, &nodes1, err)) != 0)
            goto done;
        s_observed(so, locks0, nodes0, locks1, nodes1);
        json_decref(locks0);
        json_decref(nodes0);
        json_decref(locks1);
        json_decref(nodes1);
        locks0 = nodes0 = locks1 = nodes1 = NULL;
    }
done:
    {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl__session_leave(p->pg, &p->session, &ignore));
        fl_error_clear(&ignore);
    }
    json_decref(locks0);
    json_decref(nodes0);
    json_decref(locks1);
    json_decref(nodes1);
    json_object_set_new(mo, "verdict", json_string(verdict));
    if (problem)
        json_object_set_new(mo, "problem", json_string(problem));
    free(problem);
    s_stats_release(&stats);
    fl_error_clear(&perr);
    fl_stmt_list_release(&stmts);
    return rc;
}

int
fl_pipeline_plan(fl_pipeline_t *p, const fl_source_t *src, json_t **out,
                 fl_error_t *err)
{
    const fl_migration_list_t *migs = src->migs;
    fl_ledger_t ledger = {NULL, 0};
    int *pending = fl_calloc(migs->count ? migs->count : 1, sizeof(int));
    json_t *report = json_object();
    json_t *list = json_array();
    fl_error_t verr = FL_ERROR_INIT;
    int ok = 1, rehearse = 1, npending = 0;
    int rc = 0;

    FL_ASSERT(src->verified == FL_SOURCE_VERIFIED);
    *out = NULL;
    p->dry_run = 1;
    json_object_set_new(report, "target", json_string(fl_pg_describe(p->pg)));
    json_object_set_new(report, "server_version",
                        json_integer(fl_pg_server_version(p->pg)));
    json_object_set_new(report, "migrations", list);
    /* Reading the ledger changes nothing; a missing one is an empty one. */
    if ((rc = fl_ledger_load(p->pg, p->target, &ledger, err)) != 0)
        goto cleanup;
    {
        char *override = NULL;
        int refused = s_check_release(p, src, &override, &verr) != 0;

        if (override)
            json_object_set_new(report, "release_override",
                                fl_json_text(override));
        free(override);
        p->release = NULL;
        if (!refused)
            refused = s_verify_source(p, migs, &ledger, pending, &verr) != 0;
        ok = !refused;
    }
    if (!ok) {
        rehearse = 0;
        json_object_set_new(report, "problem", fl_json_text(verr.message));
        if (verr.detail)
            json_object_set_new(report, "detail", fl_json_text(verr.detail));
    }
    if ((rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_ledger_row_t *row = fl_ledger_find(&ledger, m->version);
        json_t *mo = fl_json_pack("{s:I, s:s, s:s, s:s, s:s}",
                               "version", (json_int_t)m->version,
                               "name", m->name, "file", m->file,
                               "checksum", m->checksum_hex,
                               "transaction", m->no_transaction
                                   ? "none (statement by statement)"
                                   : "one transaction");
        const char *verdict = NULL;

        json_array_append_new(list, mo);
        if (!pending[i]) {
            json_object_set_new(mo, "state", json_string(row ? row->status
                                                             : "not selected"));
            continue;
        }
        npending++;
        json_object_set_new(mo, "state",
                            json_string(row ? row->status : "pending"));
        fl__session_reset(&p->session);
        rc = s_plan_one(p, m, rehearse && !m->no_transaction, mo, err);
        if (rc != 0)
            goto cleanup;
        verdict = json_string_value(json_object_get(mo, "verdict"));
        if (strcmp(verdict, "ok") != 0 && strcmp(verdict, "not rehearsed") != 0)
            ok = 0;
        /* Later migrations may depend on this one: rehearse no further. */
        if (strcmp(verdict, "ok") != 0)
            rehearse = 0;
    }
    json_object_set_new(report, "pending", json_integer(npending));
    json_object_set_new(report, "ok", json_boolean(ok));
cleanup:
    s_rollback_quietly(p);
    if (rc == 0) {
        *out = report;
        report = NULL;
    }
    json_decref(report);
    fl_error_clear(&verr);
    fl_ledger_release(&ledger);
    free(pending);
    return rc;
}

/* Records the rollback state of version (autocommit, or in the caller's tx). */
static int
s_rollback_state(fl_pipeline_t *p, int64_t version, const char *status,
                 int down_done, const char *note, fl_error_t *err)
{
    char ver[24], done[16];
    const char *params[5];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    snprintf(ver, sizeof(ver), "%lld", (long long)version);
    snprintf(done, sizeof(done), "%d", down_done);
    params[0] = status;
    params[1] = done;
    params[2] = note;
    params[3] = ver;
    params[4] = p->target;
    rc = fl_pg_query(p->pg, &r,
        "UPDATE flotilla.schema_migrations SET status = $1,"
        " down_done = $2::pg_catalog.int4,"
        " rollback_note = COALESCE($3, rollback_note),"
        " finished_at = CASE WHEN $1 = 'rolled_back'"
        "  THEN pg_catalog.clock_timestamp() ELSE finished_at END"
        " WHERE version OPERATOR(pg_catalog.=) $4::pg_catalog.int8 AND target"
        " OPERATOR(pg_catalog.=) $5", 5, params, err);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * The restore half of a rollback, in the transaction the caller opened
 * after down: backups and sequences back, the ledger row rolled_back.
 */
/* Each object the rollback re-creates is reported as a restore event. */
typedef struct {
    fl_pipeline_t *p;
    const fl_migration_t *m;
} s_note_ctx;

static void
s_recreated(const char *kind, const char *ident, void *arg)
{
    s_note_ctx *c = arg;

    s_event(c->p, FL_STEP_RESTORE, FL_STEP_OK, c->m, 0, NULL,
            "re-created %s %s, which down did not", kind, ident);
}

/*
 * The schema half of the proof: objects the migration dropped or changed
 * that down did not bring back are re-created from the recorded
 * definitions (validated, see schema.c); then the schema must equal the
 * snapshot taken before down (gen_before) with the migration's changes
 * undone.  A difference fails the rollback unless accepted, in which case
 * it joins the notes.
 */
static int
s_prove_schema(fl_pipeline_t *p, const fl_ledger_row_t *row,
               const fl_migration_t *m, int gen_before, fl_restore_t *res,
               fl_error_t *err)
{
    fl_schema_diff_list_t diff = FL_SCHEMA_DIFF_LIST_INIT;
    s_note_ctx ctx = {p, m};
    char *text = NULL;
    int n = 0, rc;

    if (!row->schema_recorded) {
        s_event(p, FL_STEP_RESTORE, FL_STEP_OK, m, 0, NULL,
                "the schema of %s is not proven: its changes were not "
                "recorded when it was applied (an older flotilla, or a crash "
                "right after its COMMIT)", m->file);
        return 0;
    }
    if ((rc = fl_schema_recreate(p->pg, p->target, m->version, s_recreated, &ctx, &n,
                                 err)) != 0 ||
        (rc = fl_schema_snapshot(p->pg, 4, s_scope(p), err)) != 0 ||
        (rc = fl_schema_prove(p->pg, p->target, m->version, gen_before ? gen_before : 4,
                              4, &diff, err)) != 0)
        goto cleanup;
    if (diff.count == 0)
        goto cleanup;
    text = fl_schema_diff_describe(&diff);
    {
        /*
         * --accept-loss accepts what is missing (a table, a column, and
         * what hung on them); an object that differs, or one that should
         * not be there, still needs --accept-schema-diff.
         */
        size_t missing = 0;
        for (size_t i = 0; i < diff.count; i++)
            missing += diff.items[i].actual == NULL;
        if (p->opts.accept_loss && missing == diff.count) {
            res->notes = fl_reallocarray(res->notes, res->nnotes + 1,
                                         sizeof(char *));
            res->notes[res->nnotes++] = fl_asprintf("accepted loss of "
                                                    "schema objects: %s",
                                                    text);
            goto cleanup;
        }
    }
    if (!p->opts.accept_schema_diff) {
        rc = FL_ERR(err, FL_EFAIL, "the schema after rolling back %s is not "
                    "what it was before it was applied (%zu object%s "
                    "differ%s)", m->file, diff.count,
                    diff.count == 1 ? "" : "s", diff.count == 1 ? "s" : "");
        fl_error_set_detail(err, "%s", text);
        fl_error_set_hint(err, "Nothing was rolled back.  Make down restore "
                               "these objects, or roll back anyway with "
                               "--accept-schema-diff --reason TEXT.");
        goto cleanup;
    }
    res->notes = fl_reallocarray(res->notes, res->nnotes + 1, sizeof(char *));
    res->notes[res->nnotes++] = fl_asprintf("accepted schema difference: %s",
                                            text);
cleanup:
    free(text);
    fl_schema_diff_list_release(&diff);
    return rc;
}

static int
s_restore(fl_pipeline_t *p, const fl_ledger_row_t *row,
          const fl_migration_t *m, int down_done, int gen_before,
          fl_restore_t *res, fl_error_t *err)
{
    fl_restore_opts_t ro = {p->opts.accept_loss,
                            p->opts.relocate_backups ? p->opts.backup_dir
                                                     : NULL, p->target};
    char *note = NULL;
    int rc;

    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
        (rc = fl__restore_backups(p->pg, &ro, m->version, res, err)) != 0 ||
        (rc = s_prove_schema(p, row, m, gen_before, res, err)) != 0)
        return rc;
    if (res->nnotes) {
        fl_buf_t b = FL_BUF_INIT(0);
        fl_buf_addf(&b, "%s", p->opts.reason ? p->opts.reason : "");
        for (size_t i = 0; i < res->nnotes; i++)
            fl_buf_addf(&b, "; %s", res->notes[i]);
        note = fl_buf_detach(&b);
    }
    rc = s_rollback_state(p, m->version, "rolled_back", down_done, note, err);
    free(note);
    return rc;
}

/*
 * Rolls back one migration from its ledger row: a transactional down,
 * the restore and the ledger row in one transaction; a down with
 * no-transaction statements statement by statement, recording progress
 * (status rolling_back, down_done), then the restore in its own
 * transaction.  A rolling_back row resumes after its done statements.
 */
static int
s_rollback_one(fl_pipeline_t *p, const fl_ledger_row_t *row,
               const char *down, int down_line, fl_error_t *err)
{
    fl_migration_t m;
    fl_stmt_list_t stmts = {NULL, 0};
    fl_restore_t res;
    s_stats stats = {0, 0, 0, NULL};
    int64_t t0 = fl__now_ms();
    int notx = 0, resumed = strcmp(row->status, "rolling_back") == 0;
    int gen_before = 0;
    size_t start = 0, done = 0;
    int rc = 0;

    memset(&m, 0, sizeof(m));
    memset(&res, 0, sizeof(res));
    m.version = row->version;
    m.name = row->name;
    m.file = row->file ? row->file : row->name;
    m.lock_timeout_ms = -1;
    m.statement_timeout_ms = -1;
    s_event(p, FL_STEP_ROLLBACK, FL_STEP_STARTED, &m, 0, NULL,
            "%s %s", resumed ? "resuming the rollback of" : "rolling back",
            m.file);
    if (down == NULL) {
        rc = FL_ERR(err, FL_EINVAL, "migration %lld (%s) has no down section",
                    (long long)row->version, row->name);
        fl_error_set_hint(err, "Write the inverse in a new migration and "
                               "apply it instead.");
        goto failed;
    }
    rc = fl_facts_analyze(&stmts, down, down_line > 0 ? down_line - 1 : 0,
                          fl_pg_server_version(p->pg), err);
    if (rc != 0)
        goto failed;
    for (size_t i = 0; i < stmts.count; i++)
        notx |= stmts.items[i].no_transaction;
    fl__session_reset(&p->session);
    p->schema_gen = 0;
    if (resumed)
        start = done = (size_t)row->down_done;
    if (notx || resumed) {
        /* CONCURRENTLY and friends: statement by statement, recorded. */
        if ((rc = s_set_timeouts(p, &m, 0, err)) != 0)
            goto failed;
        /*
         * The picture before down; a resumed rollback has lost it, and
         * proves only the objects the migration changed.
         */
        if (!resumed && row->schema_recorded) {
            if ((rc = fl_schema_snapshot(p->pg, 3, s_scope(p), err)) != 0)
                goto failed;
            gen_before = 3;
        }
        if (!resumed &&
            (rc = s_rollback_state(p, m.version, "rolling_back", 0, NULL,
                                   err)) != 0)
            goto failed;
        for (size_t i = start; i < stmts.count; i++) {
            rc = s_run(p, &m, &stmts, (int)i, 0, p->opts.lock_retries, &stats,
                       err);
            if (rc == 0)
                rc = fl__session_leave(p->pg, &p->session, err);
            if (rc == 0)
                rc = fl__session_repin(p->pg, &p->session, err);
            if (rc == 0)
                rc = s_rollback_state(p, m.version, "rolling_back",
                                      (int)i + 1, NULL, err);
            if (rc != 0)
                goto partial;
            done = i + 1;
        }
        fl__session_reset(&p->session);
        if ((rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0 ||
            (rc = s_set_timeouts(p, &m, 1, err)) != 0)
            goto partial;
    } else {
        rc = fl_pg_exec(p->pg, "BEGIN", err);
        if (rc == 0)
            rc = s_set_timeouts(p, &m, 1, err);
        if (rc == 0 && row->schema_recorded) {
            rc = fl_schema_snapshot(p->pg, 3, s_scope(p), err);
            gen_before = 3;
        }
        for (size_t i = 0; i < stmts.count && rc == 0; i++)
            rc = s_run(p, &m, &stmts, (int)i, 1, p->opts.lock_retries, &stats,
                       err);
        if (rc != 0)
            goto failed;
    }
    s_event(p, FL_STEP_ROLLBACK, FL_STEP_OK, &m, fl__now_ms() - t0, NULL,
            "down of %s ran (%zu statement%s)", m.file, stmts.count,
            stmts.count == 1 ? "" : "s");
    rc = s_restore(p, row, &m, (int)stmts.count, gen_before, &res, err);
    if (rc == 0)
        rc = fl_pg_exec(p->pg, "COMMIT", err);
    if (rc != 0) {
        s_rollback_quietly(p);
        if (notx || resumed)
            goto partial_restore;
        s_event(p, FL_STEP_RESTORE, FL_STEP_FAILED, &m, fl__now_ms() - t0, err,
                "rollback of %s failed after down ran; its transaction was "
                "rolled back, so nothing was rolled back", m.file);
        goto cleanup;
    }
    p->session.in_migration = 0;
    {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl__session_repin(p->pg, &p->session, &ignore));
        fl_error_clear(&ignore);
    }
    for (size_t i = 0; i < res.nfiles; i++) {
        fl_error_t e = FL_ERROR_INIT;
        if (fl__backup_file_remove(res.files[i], &e) != 0)
            fl_log_warning("pipeline", "could not remove restored backup "
                           "file: %s", e.message);
        fl_error_clear(&e);
    }
    for (size_t i = 0; i < res.nnotes; i++)
        s_event(p, FL_STEP_RESTORE, FL_STEP_OK, &m, 0, NULL, "%s (reason: %s)",
                res.notes[i], p->opts.reason ? p->opts.reason : "none given");
    if (res.tables || res.sequences)
        s_event(p, FL_STEP_RESTORE, FL_STEP_OK, &m, fl__now_ms() - t0, NULL,
                "restored %d backup%s of %s: %lld row%s put back, %lld added "
                "row%s removed, %d sequence%s set back; proved", res.tables,
                res.tables == 1 ? "" : "s", m.file, res.rows,
                res.rows == 1 ? "" : "s", res.removed,
                res.removed == 1 ? "" : "s", res.sequences,
                res.sequences == 1 ? "" : "s");
    goto cleanup;
partial:
    s_rollback_quietly(p);
    s_event(p, FL_STEP_ROLLBACK, FL_STEP_FAILED, &m, fl__now_ms() - t0, err,
            "rollback of %s stopped after %zu of %zu down statements (%zu "
            "committed before this run); it is left rolling_back and the next "
            "rollback resumes there", m.file, done, stmts.count, start);
    goto cleanup;
partial_restore:
    s_event(p, FL_STEP_RESTORE, FL_STEP_FAILED, &m, fl__now_ms() - t0, err,
            "down of %s ran and committed (%zu statement%s), but restoring "
            "its backups failed; it is left rolling_back: fix the cause and "
            "run rollback again to finish the restore", m.file, stmts.count,
            stmts.count == 1 ? "" : "s");
    if (err)
        fl_error_set_detail(err, "The down section of %s has run; its data "
                            "is not restored yet.", m.file);
    goto cleanup;
failed:
    s_event(p, FL_STEP_ROLLBACK, FL_STEP_FAILED, &m, fl__now_ms() - t0, err,
            "rollback of %s failed; nothing was rolled back", m.file);
    s_rollback_quietly(p);
cleanup:
    {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl_pg_exec(p->pg, "RESET lock_timeout; RESET statement_timeout",
                         &ignore));
        fl_error_clear(&ignore);
    }
    fl__restore_release(&res);
    s_stats_release(&stats);
    fl_stmt_list_release(&stmts);
    s_flush_logs(p);
    return rc;
}

/*
 * The down section to run for ledger row: from the verified source, whose
 * migration of that version must be the one applied (the same checksum),
 * or, only with --down-from-ledger, the ledger's copy.  *down and *line
 * are lent (from src or r's row i).
 */
static int
s_down_for(fl_pipeline_t *p, const fl_source_t *src,
           const fl_ledger_row_t *row, const fl_pg_result_t *r, size_t i,
           const char **down, int *line, fl_error_t *err)
{
    const fl_migration_t *m = NULL;

    for (size_t k = 0; src && src->migs && k < src->migs->count; k++)
        if (src->migs->items[k].version == row->version)
            m = &src->migs->items[k];
    if (m && strcmp(m->checksum_hex, row->checksum) == 0) {
        *down = m->down;
        *line = m->down_line;
        return 0;
    }
    if (p->opts.down_from_ledger) {
        /* Recorded (an OK event reaches the ledger's log; STARTED does not). */
        s_event(p, FL_STEP_ROLLBACK, FL_STEP_OK, NULL, 0, NULL,
                "running the ledger's copy of the down section of migration "
                "%lld (%s): --down-from-ledger", (long long)row->version,
                row->file ? row->file : row->name);
        *down = fl_pg_value(r, i, 1);
        *line = (int)strtol(fl_pg_value(r, i, 2), NULL, 10);
        return 0;
    }
    if (m) {
        FL_ERR(err, FL_EINVAL, "the source's migration %s is not the one "
               "applied", m->file);
        fl_error_set_detail(err, "Its checksum is %.12s; the ledger recorded "
                            "%.12s when it was applied.", m->checksum_hex,
                            row->checksum);
        fl_error_set_hint(err, "Roll back from the bundle or directory that "
                               "was applied.  If it is lost, "
                               "--down-from-ledger runs the copy of down the "
                               "ledger kept.");
        return FL_EINVAL;
    }
    FL_ERR(err, FL_EINVAL, "migration %lld (%s) is not in the source",
           (long long)row->version, row->file ? row->file : row->name);
    fl_error_set_hint(err, "Roll back from the bundle or directory that was "
                           "applied.  If it is lost, --down-from-ledger runs "
                           "the copy of down the ledger kept.");
    return FL_EINVAL;
}

int
fl_pipeline_rollback(fl_pipeline_t *p, const fl_source_t *src,
                     fl_rollback_mode mode, int64_t to_version,
                     const char *bundle_id, int *count, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_ledger_t ledger = {NULL, 0};
    int rc = 0;

    FL_ASSERT(src == NULL || src->verified == FL_SOURCE_VERIFIED);
    FL_ASSERT(src != NULL || p->opts.down_from_ledger);
    *count = 0;
    p->dry_run = 0;
    if ((rc = s_lock_target(p, err)) != 0)
        goto cleanup;
    if ((rc = fl_ledger_ensure(p->pg, err)) != 0 ||
        (rc = fl_ledger_load(p->pg, p->target, &ledger, err)) != 0)
        goto cleanup;
    {
        const char *params[1] = {p->target};
        rc = fl_pg_query(p->pg, &r,
            "SELECT version, down_sql, down_line FROM flotilla.schema_migrations"
            " WHERE status IN ('applied', 'rolling_back') AND target"
            " OPERATOR(pg_catalog.=) $1 ORDER BY version DESC", 1, params, err);
    }
    if (rc != 0)
        goto cleanup;
    for (size_t i = 0; i < r.nrows; i++) {
        int64_t v = strtoll(fl_pg_value(&r, i, 0), NULL, 10);
        const fl_ledger_row_t *row = fl_ledger_find(&ledger, v);

        if (row == NULL)
            continue;
        if (mode == FL_ROLLBACK_LAST && *count > 0)
            break;
        if (mode == FL_ROLLBACK_TO && v <= to_version)
            break;
        if (mode == FL_ROLLBACK_BUNDLE &&
            (row->bundle_id == NULL || strcmp(row->bundle_id, bundle_id) != 0))
            continue;
        {
            const char *down = NULL;
            int line = 0;
            rc = s_down_for(p, src, row, &r, i, &down, &line, err);
            if (rc == 0)
                rc = s_rollback_one(p, row, down, line, err);
        }
        if (rc != 0)
            break;
        (*count)++;
    }
cleanup:
    s_flush_logs(p);
    s_unlock(p);
    fl_pg_result_release(&r);
    fl_ledger_release(&ledger);
    return rc;
}
