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
#include <time.h>
#include <unistd.h>

#include "agent/ledger.h"
#include "agent/lintcheck.h"
#include "agent/pg.h"
#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/parse.h"

/* Advisory lock keys: (FL_LOCK_CLASS, hash of the database name). */
#define FL_LOCK_CLASS 1718578273

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
    unsigned int seed; /* jitter */
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

/* base * 2^attempt, times a random factor in [0.5, 1.0]. */
static int64_t
s_backoff(fl_pipeline_t *p, int64_t base, int attempt)
{
    int64_t d = base;

    for (int i = 0; i < attempt && d < 60000; i++)
        d *= 2;
    return d / 2 + (int64_t)(rand_r(&p->seed) % (unsigned)(d / 2 + 1));
}

static void
s_rollback_quietly(fl_pipeline_t *p)
{
    fl_error_t ignore = FL_ERROR_INIT;

    /* Called on a failure path: the first error is the one reported. */
    if (fl_pg_in_transaction(p->pg))
        FL_IGNORE(fl_pg_exec(p->pg, "ROLLBACK", &ignore));
    fl_error_clear(&ignore);
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
    p->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    rc = fl_pg_open(&p->pg, opts->dsn, "flotilla", err);
    if (rc != 0) {
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
    FL_IGNORE(fl_pg_execf(p->pg, &ignore, "SELECT pg_advisory_unlock(%d,"
                      " hashtext(current_database()) & 2147483647)",
                      FL_LOCK_CLASS));
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
    char sql[160];
    int rc;

    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d,"
             " hashtext(current_database()) & 2147483647)", FL_LOCK_CLASS);
    for (;;) {
        if ((rc = fl_pg_query_value(p->pg, &v, sql, 0, NULL, err)) != 0)
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
                          "the lock on database \"%s\"", fl_pg_describe(p->pg));
        if (fl__now_ms() - start >= p->opts.lock_wait_ms)
            break;
        if (attempt == 0)
            s_event(p, FL_STEP_LOCK, FL_STEP_RETRY, NULL, 0, NULL,
                    "another flotilla run holds database \"%s\"; waiting up "
                    "to %lld ms", fl_pg_describe(p->pg),
                    (long long)p->opts.lock_wait_ms);
        s_sleep(p, s_backoff(p, 100, attempt < 4 ? attempt : 4));
        attempt++;
    }
    {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        fl_error_t qerr = FL_ERROR_INIT;
        char q[640];
        snprintf(q, sizeof(q),
            "SELECT a.pid, coalesce(a.application_name, ''),"
            " coalesce(host(a.client_addr), 'local'),"
            " to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS'),"
            " coalesce(a.state, '')"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.classid = %d AND l.objsubid = 2"
            " AND l.objid = (hashtext(current_database()) & 2147483647)::oid",
            FL_LOCK_CLASS);
        rc = FL_ERR(err, FL_ECONFLICT, "could not lock database \"%s\": "
                    "another flotilla run is migrating it",
                    fl_pg_describe(p->pg));
        if (fl_pg_query(p->pg, &r, q, 0, NULL, &qerr) == 0 && r.nrows > 0)
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
#define S_BACKUPS (-1) /* the backups of every destructive statement */
#define S_ALL (-2)     /* every statement's tables */

/*
 * The sessions holding locks on the tables of statement index (or of
 * every destructive statement, index S_BACKUPS), for a report.
 */
static char *
s_blockers(fl_pipeline_t *p, const fl_stmt_list_t *stmts, int index)
{
    fl_buf_t b = FL_BUF_INIT(4096);

    for (size_t s = 0; s < stmts->count; s++) {
        const fl_stmt_t *st = &stmts->items[s];
        if (index >= 0 ? (int)s != index
                       : index == S_BACKUPS && !st->destructive)
            continue;
        for (size_t i = 0; i < st->ntables; i++) {
            fl_pg_result_t r = FL_PG_RESULT_INIT;
            fl_error_t err = FL_ERROR_INIT;
            char *qt = fl__qualify(p->pg, st->tables[i].schema,
                                   st->tables[i].name);
            const char *params[1] = {qt};

            if (fl_pg_query(p->pg, &r,
                    "SELECT DISTINCT a.pid, coalesce(a.application_name, ''),"
                    " coalesce(a.state, ''),"
                    " coalesce(to_char(now() - a.xact_start, 'HH24:MI:SS'), ''),"
                    " left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ',"
                    " 'g'), 120)"
                    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.granted AND l.pid <> pg_backend_pid()"
                    " AND l.locktype = 'relation' AND l.relation = to_regclass($1)",
                    1, params, &err) == 0) {
                for (size_t j = 0; j < r.nrows; j++)
                    (void)fl_buf_printf(&b, "%sPID %s (application \"%s\", %s, "
                                        "transaction age %s) on %s: %s",
                                        b.len ? "; " : "", fl_pg_value(&r, j, 0),
                                        fl_pg_value(&r, j, 1),
                                        fl_pg_value(&r, j, 2),
                                        fl_pg_value(&r, j, 3), qt,
                                        fl_pg_value(&r, j, 4));
            }
            fl_pg_result_release(&r);
            fl_error_clear(&err);
            free(qt);
        }
    }
    if (b.len == 0)
        FL_IGNORE(fl_buf_puts(&b, "no session holds a lock on the statement's "
                              "tables any more"));
    return fl_buf_detach(&b);
}

/* Backups to take before a destructive statement (once per table). */
typedef struct {
    char **keys; /* "schema.table" already backed up in this migration */
    size_t n;
} s_backed_up;

static void
s_backed_up_release(s_backed_up *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->keys[i]);
    fl_free(&b->keys);
    b->n = 0;
}

static int
s_backup_for(fl_pipeline_t *p, const fl_migration_t *m, const fl_stmt_t *st,
             int index, s_backed_up *done, fl_error_t *err)
{
    for (size_t i = 0; i < st->ndestroys; i++) {
        const fl_destroy_t *d = &st->destroys[i];
        if (!d->table)
            continue; /* DROP SCHEMA: no table named in the statement */
        char *key = fl_asprintf("%s.%s", d->schema ? d->schema : "",
                                d->table);
        char *where = NULL;
        const char *mode = (d->kind == FL_DESTROY_UPDATE ||
                            d->kind == FL_DESTROY_DELETE) ? "EXCLUSIVE"
                                                          : "ACCESS EXCLUSIVE";
        int seen = 0;
        int64_t t0 = fl__now_ms();
        int rc;

        for (size_t j = 0; j < done->n && !seen; j++)
            seen = strcmp(done->keys[j], key) == 0;
        if (seen) {
            free(key);
            continue;
        }
        rc = fl__backup_table(p->pg, m->version, p->opts.bundle_id, index,
                              d->schema, d->table, mode, p->opts.backup_dir,
                              p->opts.backup_dump_above, &where, err);
        if (rc == FL_ENOTFOUND) {
            /* DROP ... IF EXISTS of a missing table: nothing to keep. */
            fl_error_clear(err);
            free(key);
            continue;
        }
        if (rc != 0) {
            free(key);
            return rc;
        }
        s_event(p, FL_STEP_BACKUP, FL_STEP_OK, m, fl__now_ms() - t0, NULL,
                "backed up %s%s%s to %s", d->schema ? d->schema : "",
                d->schema ? "." : "", d->table, where);
        free(where);
        done->keys = fl_reallocarray(done->keys, done->n + 1, sizeof(char *));
        done->keys[done->n++] = key;
    }
    return 0;
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
 * One attempt of s_run: statement `index` of stmts, or, when index is
 * S_BACKUPS, the backups of every destructive statement of the migration.
 */

static int
s_attempt(fl_pipeline_t *p, const fl_migration_t *m,
          const fl_stmt_list_t *stmts, int index, int in_tx,
          s_backed_up *backed, fl_error_t *err)
{
    int rc = 0;

    if (index != S_BACKUPS) {
        if (!in_tx && (rc = s_drop_invalid_index(p, m, &stmts->items[index],
                                                 err)) != 0)
            return rc;
        return fl_pg_exec(p->pg, stmts->items[index].sql, err);
    }
    if (!in_tx && (rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0)
        return rc;
    for (size_t i = 0; i < stmts->count && rc == 0; i++)
        if (stmts->items[i].destructive)
            rc = s_backup_for(p, m, &stmts->items[i], (int)i, backed, err);
    if (!in_tx && rc == 0)
        rc = fl_pg_exec(p->pg, "COMMIT", err);
    return rc;
}

/*
 * Runs statement index of stmts (or the backups, index S_BACKUPS),
 * retrying a lock timeout up to `retries` times.  Inside a transaction
 * each attempt runs behind a savepoint; the apply of a transactional
 * migration passes 0 and retries the whole transaction instead, so that
 * it holds no lock while it waits (see s_apply_tx).
 */
static int
s_run(fl_pipeline_t *p, const fl_migration_t *m, const fl_stmt_list_t *stmts,
      int index, int in_tx, int retries, s_backed_up *backed, s_stats *stats,
      fl_error_t *err)
{
    const fl_stmt_t *st = index == S_BACKUPS ? NULL : &stmts->items[index];

    for (int attempt = 0;; attempt++) {
        int64_t t0 = fl__now_ms();
        int rc = 0;

        if (s_cancelled(p))
            return FL_ERR(err, FL_ECANCELLED, "migration %s cancelled before "
                          "%s %d", m->file, st ? "statement" : "backup",
                          index + 1);
        if (in_tx && (rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_stmt", err)) != 0)
            return rc;
        rc = s_attempt(p, m, stmts, index, in_tx, backed, err);
        if (rc == 0) {
            if (in_tx)
                rc = fl_pg_exec(p->pg, "RELEASE SAVEPOINT flotilla_stmt", err);
            return rc;
        }
        if (in_tx) {
            fl_error_t ignore = FL_ERROR_INIT;
            /* Undo the attempt; the transaction stays usable. */
            FL_IGNORE(fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_stmt",
                             &ignore));
            fl_error_clear(&ignore);
        } else {
            s_rollback_quietly(p);
        }
        if (err && strcmp(err->sqlstate, "55P03") == 0 &&
            attempt < retries && !s_cancelled(p)) {
            char *who = s_blockers(p, stmts, index);
            int64_t wait = s_backoff(p, p->opts.retry_base_ms, attempt);

            s_event(p, FL_STEP_EXECUTE, FL_STEP_RETRY, m, fl__now_ms() - t0,
                    NULL, "lock timeout at %s:%d (attempt %d of %d); "
                    "retrying in %lld ms; blocked by %s", m->file,
                    st ? st->line : 0, attempt + 1, retries + 1,
                    (long long)wait, who);
            free(who);
            fl_error_clear(err);
            stats->lock_wait_ms += fl__now_ms() - t0 + wait;
            stats->retries++;
            s_sleep(p, wait);
            continue;
        }
        /* Final failure: say where, and why. */
        {
            char *where = st ? s_position(m, st, fl_pg_last_position(p->pg))
                             : fl_asprintf("%s", m->file);
            int lock = err && strcmp(err->sqlstate, "55P03") == 0;
            int cancel = err && strcmp(err->sqlstate, "57014") == 0;

            free(stats->error_position);
            stats->error_position = fl_strdup(where);
            if (lock) {
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
            fl_error_prefix(err, "%s: ", where);
            free(where);
            return err ? err->code : FL_EDB;
        }
    }
}

/* Does check c of statement i depend on an earlier statement's writes? */
static int
s_check_deferred(const fl_stmt_list_t *stmts, size_t i, const fl_check_t *c)
{
    if (c->kind == FL_CHECK_DEPENDENTS)
        return 1;
    for (size_t j = 0; j < i; j++) {
        for (size_t k = 0; k < stmts->items[j].ntables; k++) {
            const fl_table_ref_t *t = &stmts->items[j].tables[k];
            if (!t->writes || strcmp(t->name, c->table) != 0)
                continue;
            if (t->schema == NULL || c->schema == NULL ||
                strcmp(t->schema, c->schema) == 0)
                return 1;
        }
    }
    return 0;
}

/* Runs the checks of statement i; deferred selects which half. */
static int
s_run_checks(fl_pipeline_t *p, const fl_stmt_list_t *stmts, size_t i,
             int deferred, json_t *report, fl_error_t *err)
{
    const fl_stmt_t *st = &stmts->items[i];

    for (size_t k = 0; k < st->nchecks; k++) {
        int rc;
        if (s_check_deferred(stmts, i, &st->checks[k]) != deferred)
            continue;
        if ((rc = fl__check_run(p->pg, &st->checks[k], report, err)) != 0)
            return rc;
    }
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
                json_array_append_new(report, json_pack("{s:s, s:s, s:b, s:s?}",
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
                              NULL};

    s_rollback_quietly(p);
    if (fl_ledger_record(p->pg, &rec, &lerr) != 0) {
        fl_log_warning("pipeline", "could not record the failure of %s in the "
                       "ledger: %s", m->file, lerr.message);
        fl_error_clear(&lerr);
    }
}

/*
 * The verify-after step: the migration's verify statements and its
 * ledger row marked applied.  Inside the migration's transaction when tx
 * is set.
 */
static int
s_finish(fl_pipeline_t *p, const fl_migration_t *m, int tx, int total,
         int64_t t0, const s_stats *stats, fl_error_t *err)
{
    fl_stmt_list_t vs = {NULL, 0};
    int rc = 0;

    if (m->verify)
        rc = fl_facts_analyze(&vs, m->verify, m->verify_line - 1,
                              fl_pg_server_version(p->pg), err);
    for (size_t i = 0; rc == 0 && i < vs.count; i++) {
        rc = fl_pg_exec(p->pg, vs.items[i].sql, err);
        if (rc != 0)
            fl_error_prefix(err, "verify statement at %s:%d:%d: ", m->file,
                            vs.items[i].line, vs.items[i].column);
    }
    fl_stmt_list_release(&vs);
    if (rc == 0) {
        fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                                  p->opts.agent, "applied", tx, stats->done,
                                  total, fl__now_ms() - t0,
                                  stats->lock_wait_ms, stats->retries, NULL,
                                  NULL, NULL};
        rc = fl_ledger_record(p->pg, &rec, err);
    }
    return rc;
}

/*
 * Records the schema fingerprint of the target after m committed.  It is
 * computed outside the migration's transaction on purpose: on a schema
 * with thousands of tables the catalog scan takes long enough to matter,
 * and inside the transaction it would hold the migration's locks that
 * much longer.  A failure here is reported and leaves the fingerprint
 * empty: the migration itself is applied.  Returns a new string or NULL.
 */
static char *
s_fingerprint_after(fl_pipeline_t *p, const fl_migration_t *m)
{
    fl_error_t err = FL_ERROR_INIT;
    char *fp = NULL;
    char version[24];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl__schema_fingerprint(p->pg, &fp, &err);

    snprintf(version, sizeof(version), "%lld", (long long)m->version);
    if (rc == 0) {
        const char *params[2] = {fp, version};
        rc = fl_pg_query(p->pg, &r, "UPDATE flotilla.schema_migrations SET"
                         " schema_fingerprint = $1 WHERE version = $2", 2,
                         params, &err);
        fl_pg_result_release(&r);
    }
    if (rc == 0)
        return fp;
    fl_log_warning("pipeline", "could not record the schema fingerprint after "
                   "%s: %s", m->file, err.message);
    fl_error_clear(&err);
    free(fp);
    return NULL;
}

/*
 * One attempt at a transactional migration, from BEGIN to just before
 * COMMIT.  *refused is set when validation (not execution) failed.
 */
static int
s_apply_tx_once(fl_pipeline_t *p, const fl_migration_t *m,
                const fl_stmt_list_t *stmts, s_backed_up *backed,
                s_stats *stats, int *stage, int *refused, int64_t t0,
                int64_t *tv, fl_error_t *err)
{
    int rc;

    *stage = FL_STEP_VALIDATE;
    if ((rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0 ||
        (rc = s_set_timeouts(p, m, 1, err)) != 0)
        return rc;
    *refused = 1;
    if ((rc = s_custom_validate(p, m, NULL, err)) != 0)
        return rc;
    for (size_t i = 0; i < stmts->count && rc == 0; i++)
        rc = s_run_checks(p, stmts, i, 0, NULL, err);
    if (rc != 0)
        return rc;
    *refused = 0;
    s_event(p, FL_STEP_VALIDATE, FL_STEP_OK, m, fl__now_ms() - t0, NULL,
            "%zu statement%s validated", stmts->count,
            stmts->count == 1 ? "" : "s");
    *tv = fl__now_ms();
    /*
     * Back up before the first statement: the copies then hold the
     * pre-migration rows and columns, which is what rollback must restore
     * (a column added earlier in the same migration is not restored).
     */
    *stage = FL_STEP_BACKUP;
    if ((rc = s_run(p, m, stmts, S_BACKUPS, 1, 0, backed, stats, err)) != 0)
        return rc;
    *stage = FL_STEP_EXECUTE;
    s_event(p, FL_STEP_EXECUTE, FL_STEP_STARTED, m, 0, NULL, "executing %s",
            m->file);
    for (size_t i = 0; i < stmts->count; i++) {
        *stage = FL_STEP_VALIDATE;
        *refused = 1;
        if ((rc = s_run_checks(p, stmts, i, 1, NULL, err)) != 0)
            return rc;
        *refused = 0;
        *stage = FL_STEP_EXECUTE;
        if ((rc = s_run(p, m, stmts, (int)i, 1, 0, backed, stats, err)) != 0)
            return rc;
        stats->done = (int)i + 1;
    }
    *stage = FL_STEP_VERIFY_AFTER;
    return s_finish(p, m, 1, (int)stmts->count, t0, stats, err);
}

/*
 * Applies one transactional migration: validate, backup, execute, verify
 * and the ledger row in one transaction.
 */
static int
s_apply_tx(fl_pipeline_t *p, const fl_migration_t *m, fl_error_t *err)
{
    fl_stmt_list_t stmts = {NULL, 0};
    s_backed_up backed = {NULL, 0};
    s_stats stats = {0, 0, 0, NULL};
    char *fingerprint = NULL;
    int64_t t0 = fl__now_ms();
    int64_t tv = 0;
    int rc = 0;
    int stage = FL_STEP_VALIDATE;

    s_event(p, FL_STEP_VALIDATE, FL_STEP_STARTED, m, 0, NULL, "validating %s",
            m->file);
    if ((rc = s_statements(p, m, &stmts, err)) != 0)
        goto refused;
    if ((rc = fl__lint_gate(m, fl_pg_server_version(p->pg),
                            p->opts.allow_lint_errors, NULL, err)) != 0)
        goto refused;
    for (int attempt = 0;; attempt++) {
        int refused = 0;
        int64_t ta = fl__now_ms();

        rc = s_apply_tx_once(p, m, &stmts, &backed, &stats, &stage, &refused,
                             t0, &tv, err);
        if (rc == 0)
            break;
        if (refused)
            goto refused;
        if (err && strcmp(err->sqlstate, "55P03") == 0 &&
            attempt < p->opts.lock_retries && !s_cancelled(p)) {
            int64_t wait = s_backoff(p, p->opts.retry_base_ms, attempt);
            char *who = NULL;

            /* Undo it all: no lock is held while we wait. */
            s_rollback_quietly(p);
            who = s_blockers(p, &stmts, S_ALL);
            s_event(p, FL_STEP_EXECUTE, FL_STEP_RETRY, m, fl__now_ms() - ta,
                    NULL, "lock timeout at %s (attempt %d of %d); rolled "
                    "back, retrying in %lld ms; blocked by %s",
                    stats.error_position ? stats.error_position : m->file,
                    attempt + 1, p->opts.lock_retries + 1, (long long)wait,
                    who);
            free(who);
            fl_error_clear(err);
            s_backed_up_release(&backed);
            stats.lock_wait_ms += fl__now_ms() - ta + wait;
            stats.retries++;
            stats.done = 0;
            s_sleep(p, wait);
            continue;
        }
        if (err && strcmp(err->sqlstate, "55P03") == 0) {
            char *who = NULL;
            s_rollback_quietly(p);
            who = s_blockers(p, &stmts, S_ALL);
            fl_error_set_detail(err, "Gave up after %d attempts; blocked by "
                                "%s.", attempt + 1, who);
            free(who);
        }
        goto failed;
    }
    if ((rc = fl_pg_exec(p->pg, "COMMIT", err)) != 0)
        goto failed;
    s_event(p, FL_STEP_EXECUTE, FL_STEP_OK, m, fl__now_ms() - tv, NULL,
            "%zu statement%s executed", stmts.count, stmts.count == 1 ? "" : "s");
    fingerprint = s_fingerprint_after(p, m);
    s_event(p, FL_STEP_VERIFY_AFTER, FL_STEP_OK, m, 0, NULL,
            "applied %s; schema fingerprint %.16s", m->file,
            fingerprint ? fingerprint : "(not recorded)");
    goto cleanup;
refused:
    s_rollback_quietly(p);
    s_event(p, FL_STEP_VALIDATE, FL_STEP_REFUSED, m, fl__now_ms() - t0, err,
            "refused %s", m->file);
    if (rc != FL_EINVAL && rc != FL_EDB)
        goto cleanup;
    if (rc == FL_EDB)
        fl_error_prefix(err, "%s: ", m->file);
    if (err)
        err->code = FL_EINVAL;
    rc = FL_EINVAL;
    goto cleanup;
failed:
    s_record_failure(p, m, 1, (int)stmts.count, t0, &stats, err);
    s_event(p, (fl_step)stage, FL_STEP_FAILED, m, fl__now_ms() - t0, err,
            "%s failed and was rolled back", m->file);
cleanup:
    free(fingerprint);
    s_stats_release(&stats);
    s_backed_up_release(&backed);
    fl_stmt_list_release(&stmts);
    s_flush_logs(p);
    return rc;
}

/*
 * Applies one no-transaction migration statement by statement, resuming
 * after the statements the ledger says are done.
 */
static int
s_apply_notx(fl_pipeline_t *p, const fl_migration_t *m,
             const fl_ledger_row_t *row, fl_error_t *err)
{
    fl_stmt_list_t stmts = {NULL, 0};
    s_backed_up backed = {NULL, 0};
    s_stats stats = {0, 0, 0, NULL};
    char *fingerprint = NULL;
    int64_t t0 = fl__now_ms();
    size_t start = 0;
    int rc = 0;

    s_event(p, FL_STEP_VALIDATE, FL_STEP_STARTED, m, 0, NULL, "validating %s",
            m->file);
    if ((rc = s_statements(p, m, &stmts, err)) != 0)
        goto refused;
    if ((rc = fl__lint_gate(m, fl_pg_server_version(p->pg),
                            p->opts.allow_lint_errors, NULL, err)) != 0)
        goto refused;
    if (row && (strcmp(row->status, "running") == 0 ||
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
        stats.done = row->statements_done;
        stats.retries = row->retries;
        stats.lock_wait_ms = row->lock_wait_ms;
    }
    if ((rc = s_set_timeouts(p, m, 0, err)) != 0)
        goto failed;
    if ((rc = s_custom_validate(p, m, NULL, err)) != 0)
        goto refused;
    for (size_t i = start; i < stmts.count && rc == 0; i++)
        rc = s_run_checks(p, &stmts, i, 0, NULL, err);
    if (rc != 0)
        goto refused;
    s_event(p, FL_STEP_VALIDATE, FL_STEP_OK, m, fl__now_ms() - t0, NULL,
            "%zu statement%s validated%s", stmts.count,
            stmts.count == 1 ? "" : "s", start ? " (resuming)" : "");
    {
        fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                                  p->opts.agent, "running", 0, stats.done,
                                  (int)stmts.count, 0, stats.lock_wait_ms,
                                  stats.retries, NULL, NULL, NULL};
        if ((rc = fl_ledger_record(p->pg, &rec, err)) != 0)
            goto failed;
    }
    if (start)
        s_event(p, FL_STEP_EXECUTE, FL_STEP_STARTED, m, 0, NULL,
                "resuming %s at statement %zu of %zu", m->file, start + 1,
                stmts.count);
    if (start == 0 && (rc = s_run(p, m, &stmts, S_BACKUPS, 0,
                                  p->opts.lock_retries, &backed, &stats,
                                  err)) != 0)
        goto failed;
    for (size_t i = start; i < stmts.count; i++) {
        if ((rc = s_run_checks(p, &stmts, i, 1, NULL, err)) != 0)
            goto refused;
        rc = s_run(p, m, &stmts, (int)i, 0, p->opts.lock_retries, &backed, &stats,
                   err);
        if (rc != 0)
            goto failed;
        stats.done = (int)i + 1;
        {
            fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                                      p->opts.agent, "running", 0, stats.done,
                                      (int)stmts.count, fl__now_ms() - t0,
                                      stats.lock_wait_ms, stats.retries, NULL,
                                      NULL, NULL};
            if ((rc = fl_ledger_record(p->pg, &rec, err)) != 0)
                goto failed;
        }
        s_event(p, FL_STEP_EXECUTE, FL_STEP_OK, m, 0, NULL,
                "statement %zu of %zu done (%s:%d)", i + 1, stmts.count,
                m->file, stmts.items[i].line);
    }
    if ((rc = s_finish(p, m, 0, (int)stmts.count, t0, &stats, err)) != 0)
        goto failed;
    fingerprint = s_fingerprint_after(p, m);
    s_event(p, FL_STEP_VERIFY_AFTER, FL_STEP_OK, m, fl__now_ms() - t0, NULL,
            "applied %s; schema fingerprint %.16s", m->file,
            fingerprint ? fingerprint : "(not recorded)");
    goto cleanup;
refused:
    s_event(p, FL_STEP_VALIDATE, FL_STEP_REFUSED, m, fl__now_ms() - t0, err,
            "refused %s", m->file);
    if (err)
        err->code = FL_EINVAL;
    rc = FL_EINVAL;
    goto cleanup;
failed:
    s_record_failure(p, m, 0, (int)stmts.count, t0, &stats, err);
    s_event(p, FL_STEP_EXECUTE, FL_STEP_FAILED, m, fl__now_ms() - t0, err,
            "%s failed after %d of %zu statements; the next apply resumes "
            "there", m->file, stats.done, stmts.count);
cleanup:
    {
        fl_error_t ignore = FL_ERROR_INIT;
        /* Back to the server defaults for what follows on this session. */
        FL_IGNORE(fl_pg_exec(p->pg, "RESET lock_timeout; RESET statement_timeout",
                         &ignore));
        fl_error_clear(&ignore);
    }
    free(fingerprint);
    s_stats_release(&stats);
    s_backed_up_release(&backed);
    fl_stmt_list_release(&stmts);
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
                (void)fl_buf_printf(&drift, "%s%s (applied %.12s, source "
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
fl_pipeline_apply(fl_pipeline_t *p, const fl_migration_list_t *migs,
                  fl_apply_result_t *result, fl_error_t *err)
{
    fl_ledger_t ledger = {NULL, 0};
    int *pending = fl_calloc(migs->count ? migs->count : 1, sizeof(int));
    int64_t t0 = fl__now_ms();
    int rc = 0;

    memset(result, 0, sizeof(*result));
    p->dry_run = 0;
    if ((rc = s_lock_target(p, err)) != 0)
        goto cleanup;
    if ((rc = fl_ledger_ensure(p->pg, err)) != 0 ||
        (rc = fl_ledger_load(p->pg, &ledger, err)) != 0)
        goto cleanup;
    rc = s_verify_source(p, migs, &ledger, pending, err);
    if (rc != 0) {
        s_event(p, FL_STEP_VERIFY, FL_STEP_REFUSED, NULL, fl__now_ms() - t0,
                err, "verify refused");
        goto cleanup;
    }
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
        rc = m->no_transaction
                 ? s_apply_notx(p, m, fl_ledger_find(&ledger, m->version), err)
                 : s_apply_tx(p, m, err);
        if (rc != 0)
            break;
        result->applied++;
        result->pending--;
    }
cleanup:
    s_flush_logs(p);
    s_unlock(p);
    fl_ledger_release(&ledger);
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
        json_array_append_new(locks, json_pack("{s:s, s:s, s:b}", "table", t,
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
    o = json_pack("{s:I, s:s, s:I, s:I, s:s, s:s, s:o, s:b, s:b, s:b, s:b, s:o}",
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
    s_backed_up none = {NULL, 0};
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
        crc = s_run_checks(p, &stmts, i, 0, checks, &perr);
        if (crc == 0)
            crc = s_run_checks(p, &stmts, i, 1, checks, &perr);
        if (crc != 0) {
            verdict = "refused";
            free(problem);
            problem = fl_strdup(perr.message);
            fl_error_clear(&perr);
            /* A failed check query aborts the transaction: undo to here. */
            if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_plan",
                                 err)) != 0)
                goto done;
            break;
        }
        if ((rc = s_observe(p, &locks0, &nodes0, err)) != 0)
            goto done;
        if (s_run(p, m, &stmts, (int)i, 1, 0, &none, &stats, &perr) != 0) {
            json_object_set_new(so, "rehearsal", json_string(perr.message));
            verdict = "failed";
            free(problem);
            problem = fl_strdup(perr.message);
            fl_error_clear(&perr);
            if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_plan",
                                 err)) != 0)
                goto done;
            break;
        }
        json_object_set_new(so, "rehearsal", json_string("ok"));
        if ((rc = s_observe(p, &locks1, &nodes1, err)) != 0)
            goto done;
        s_observed(so, locks0, nodes0, locks1, nodes1);
        json_decref(locks0);
        json_decref(nodes0);
        json_decref(locks1);
        json_decref(nodes1);
        locks0 = nodes0 = locks1 = nodes1 = NULL;
    }
done:
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
fl_pipeline_plan(fl_pipeline_t *p, const fl_migration_list_t *migs,
                 json_t **out, fl_error_t *err)
{
    fl_ledger_t ledger = {NULL, 0};
    int *pending = fl_calloc(migs->count ? migs->count : 1, sizeof(int));
    json_t *report = json_object();
    json_t *list = json_array();
    fl_error_t verr = FL_ERROR_INIT;
    int ok = 1, rehearse = 1, npending = 0;
    int rc = 0;

    *out = NULL;
    p->dry_run = 1;
    json_object_set_new(report, "target", json_string(fl_pg_describe(p->pg)));
    json_object_set_new(report, "server_version",
                        json_integer(fl_pg_server_version(p->pg)));
    json_object_set_new(report, "migrations", list);
    /* Reading the ledger changes nothing; a missing one is an empty one. */
    if ((rc = fl_ledger_load(p->pg, &ledger, err)) != 0)
        goto cleanup;
    if (s_verify_source(p, migs, &ledger, pending, &verr) != 0) {
        ok = 0;
        rehearse = 0;
        json_object_set_new(report, "problem", json_string(verr.message));
        if (verr.detail)
            json_object_set_new(report, "detail", json_string(verr.detail));
    }
    if ((rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_ledger_row_t *row = fl_ledger_find(&ledger, m->version);
        json_t *mo = json_pack("{s:I, s:s, s:s, s:s, s:s}",
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

/* Rolls back one applied migration from its ledger row. */
static int
s_rollback_one(fl_pipeline_t *p, const fl_ledger_row_t *row,
               const char *down, int down_line, fl_error_t *err)
{
    fl_migration_t m;
    fl_stmt_list_t stmts = {NULL, 0};
    s_stats stats = {0, 0, 0, NULL};
    s_backed_up none = {NULL, 0};
    int64_t t0 = fl__now_ms();
    int notx = 0, restored = 0;
    int rc = 0;

    memset(&m, 0, sizeof(m));
    m.version = row->version;
    m.name = row->name;
    m.file = row->file ? row->file : row->name;
    m.lock_timeout_ms = -1;
    m.statement_timeout_ms = -1;
    s_event(p, FL_STEP_ROLLBACK, FL_STEP_STARTED, &m, 0, NULL,
            "rolling back %s", m.file);
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
    if (notx) {
        /* CONCURRENTLY and friends: statement by statement, then restore. */
        if ((rc = s_set_timeouts(p, &m, 0, err)) != 0)
            goto failed;
        for (size_t i = 0; i < stmts.count && rc == 0; i++)
            rc = s_run(p, &m, &stmts, (int)i, 0, p->opts.lock_retries, &none, &stats,
                       err);
        if (rc == 0)
            rc = fl_pg_exec(p->pg, "BEGIN", err);
    } else {
        rc = fl_pg_exec(p->pg, "BEGIN", err);
        if (rc == 0)
            rc = s_set_timeouts(p, &m, 1, err);
        for (size_t i = 0; i < stmts.count && rc == 0; i++)
            rc = s_run(p, &m, &stmts, (int)i, 1, p->opts.lock_retries, &none, &stats,
                       err);
    }
    if (rc != 0)
        goto failed;
    s_event(p, FL_STEP_ROLLBACK, FL_STEP_OK, &m, fl__now_ms() - t0, NULL,
            "down of %s ran (%zu statement%s)", m.file, stmts.count, stmts.count == 1 ? "" : "s");
    if ((rc = fl__restore_backups(p->pg, row->version, &restored, err)) != 0) {
        s_event(p, FL_STEP_RESTORE, FL_STEP_FAILED, &m, fl__now_ms() - t0, err,
                "restore for %s failed; nothing was rolled back", m.file);
        goto failed_quiet;
    }
    rc = fl_pg_execf(p->pg, err, "UPDATE flotilla.schema_migrations SET"
                     " status = 'rolled_back', finished_at = clock_timestamp()"
                     " WHERE version = %lld", (long long)row->version);
    if (rc == 0)
        rc = fl_pg_exec(p->pg, "COMMIT", err);
    if (rc != 0)
        goto failed;
    if (restored)
        s_event(p, FL_STEP_RESTORE, FL_STEP_OK, &m, fl__now_ms() - t0, NULL,
                "restored %d table%s from backup; checksums match", restored,
                restored == 1 ? "" : "s");
    goto cleanup;
failed:
    s_event(p, FL_STEP_ROLLBACK, FL_STEP_FAILED, &m, fl__now_ms() - t0, err,
            "rollback of %s failed", m.file);
failed_quiet:
    s_rollback_quietly(p);
cleanup:
    {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl_pg_exec(p->pg, "RESET lock_timeout; RESET statement_timeout",
                         &ignore));
        fl_error_clear(&ignore);
    }
    s_stats_release(&stats);
    fl_stmt_list_release(&stmts);
    s_flush_logs(p);
    return rc;
}

int
fl_pipeline_rollback(fl_pipeline_t *p, fl_rollback_mode mode,
                     int64_t to_version, const char *bundle_id, int *count,
                     fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_ledger_t ledger = {NULL, 0};
    int rc = 0;

    *count = 0;
    p->dry_run = 0;
    if ((rc = s_lock_target(p, err)) != 0)
        goto cleanup;
    if ((rc = fl_ledger_ensure(p->pg, err)) != 0 ||
        (rc = fl_ledger_load(p->pg, &ledger, err)) != 0)
        goto cleanup;
    rc = fl_pg_query(p->pg, &r,
        "SELECT version, down_sql, down_line FROM flotilla.schema_migrations"
        " WHERE status = 'applied' ORDER BY version DESC", 0, NULL, err);
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
        rc = s_rollback_one(p, row, fl_pg_value(&r, i, 1),
                            (int)strtol(fl_pg_value(&r, i, 2), NULL, 10), err);
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
