/*
 * pipeline.c - the public API of the pipeline on one target (open, apply,
 * plan, rollback, cancel), its events and the log queue, the verify step
 * over the whole source, and the orchestration of apply and rollback.
 * One migration's steps are in apply.c, one statement's in runner.c, the
 * dry run in plan.c, one rollback in rollback.c, the target's lock in
 * targetlock.c (see pipeline.h for the steps and their guarantees).
 *
 * The state machine of one migration, as its ledger row says it
 * (flotilla.schema_migrations.status, with statements_done = k of n and
 * down_done = d), and the function that makes each transition:
 *
 *   (none), failed(0), rolled_back
 *       --apply, transactional, ok-------------> applied
 *                 (s_mig_transactional: the row commits with the statements)
 *       --apply, transactional, fails----------> failed(0)
 *                 (s_finish -> s_record_failure, after the rollback)
 *       --apply, refused by validation---------> unchanged
 *                 (s_finish: nothing committed, exit 3)
 *       --apply, no-transaction, statement k---> running(k)
 *                 (s_run_unit with its progress row in one transaction, or
 *                  s_mig_alone for CONCURRENTLY: the statement, then the row)
 *   running(k) --statement k+1-----------------> running(k+1) ... applied(n)
 *   running(k) --a statement fails, or a check
 *                refuses after k > 0-----------> failed(k) (s_finish, exit 1)
 *   running(k), failed(k) --apply, same checksum--> resumes at k+1
 *                 (s_mig_validate; another checksum is refused)
 *   applied --rollback, transactional down-----> rolled_back
 *                 (fl__rollback_one: down, restore, proof, row, one COMMIT)
 *   applied --rollback, no-transaction down----> rolling_back(d) per down
 *                 statement, then rolled_back when the restore commits
 *   rolling_back(d) --rollback------------------> resumes at down d+1
 *
 * Invariants: applied means every statement committed and the row carries
 * the source's checksum; running(k) and failed(k) mean exactly the first
 * k statements committed (a CONCURRENTLY index built before a crash is
 * found and counted on resume, fl__index_left_behind); failed(0) means
 * nothing of it committed; rolling_back(d) means the first d down
 * statements committed and its data is not restored yet.  A rollback
 * never reaches below a migration left running(k > 0) or failed(k > 0)
 * (s_half_applied_above).  The whole source is verified first (drift,
 * out of order, an applied migration missing or renumbered: refused, exit
 * 3, nothing changed), and the exit code 3 is only ever given when
 * nothing changed (cli/cmd_apply.c turns a refusal after applied
 * migrations into 1).
 *
 * A transactional migration's row is written in the transaction that runs
 * its statements, so "applied" and the schema change commit together;
 * the "failed" row is written after the rollback.  Log rows
 * (flotilla.migration_logs) are queued during a transaction and written
 * after it ends, so the logs of a failed migration survive its rollback,
 * and the event callback never runs while a migration's locks are held.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/pipeline.h"

#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/hash.h"
#include "common/log.h"

const char *
fl_step_name(fl_step step)
{
    static const char *const names[] = {
        "lock", "verify", "validate", "backup", "execute", "verify-after",
        "rollback", "restore", "baseline",
    };
    return (unsigned)step < sizeof(names) / sizeof(names[0]) ? names[step] : "?";
}

const char *
fl_step_status_name(fl_step_status status)
{
    static const char *const names[] = {
        "started", "ok", "failed", "skipped", "refused", "retry",
        "overridden",
    };
    return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status]
                                                                : "?";
}

int
fl__cancelled(fl_pipeline_t *p)
{
    return __atomic_load_n(&p->cancelled, __ATOMIC_SEQ_CST);
}

static int64_t
s_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
s_error_copy(fl_error_t *dst, const fl_error_t *src)
{
    *dst = *src;
    dst->message = src->message ? fl_strdup(src->message) : NULL;
    dst->detail = src->detail ? fl_strdup(src->detail) : NULL;
    dst->hint = src->hint ? fl_strdup(src->hint) : NULL;
}

void
fl__deliver_events(fl_pipeline_t *p)
{
    size_t n = p->nevents;
    fl__queued_event *q = p->events;

    if (n == 0 || fl_pg_in_transaction(p->pg))
        return;
    /* The callback may report another event: start a new queue first. */
    p->events = NULL;
    p->nevents = 0;
    for (size_t i = 0; i < n; i++) {
        if (p->opts.on_event)
            p->opts.on_event(&q[i].ev, p->opts.arg);
        free(q[i].name);
        free(q[i].message);
        fl_error_clear(&q[i].error);
    }
    free(q);
}

void
fl__event(fl_pipeline_t *p, fl_step step, fl_step_status status,
          const fl_migration_t *m, int64_t duration_ms, const fl_error_t *error,
          const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    fl__queued_event *e = NULL;

    va_start(ap, fmt);
    msg = fl_vasprintf(fmt, ap);
    va_end(ap);
    if (error && error->message) {
        char *full = fl_asprintf("%s: %s", msg, error->message);
        free(msg);
        msg = full;
    }
    p->events = fl_reallocarray(p->events, p->nevents + 1, sizeof(*p->events));
    e = &p->events[p->nevents++];
    memset(e, 0, sizeof(*e));
    e->name = m ? fl_strdup(m->name) : NULL;
    e->message = msg;
    e->ev.step = step;
    e->ev.status = status;
    if (m)
        e->ev.version = m->version;
    e->ev.duration_ms = duration_ms;
    e->ev.time_us = s_wall_us();
    if (error) {
        s_error_copy(&e->error, error);
        e->ev.error = &e->error;
    }
    e->ev.name = e->name;
    e->ev.message = e->message;
    if (!p->dry_run && status != FL_STEP_STARTED) {
        fl__queued_log *q = NULL;
        p->logs = fl_reallocarray(p->logs, p->nlogs + 1, sizeof(*p->logs));
        q = &p->logs[p->nlogs++];
        memset(q, 0, sizeof(*q));
        q->name = m ? fl_strdup(m->name) : NULL;
        q->message = fl_strdup(msg);
        if (m)
            q->e.version = m->version;
        q->e.name = q->name;
        q->e.step = fl_step_name(step);
        q->e.status = fl_step_status_name(status);
        q->e.duration_ms = duration_ms;
        q->e.message = q->message;
        q->e.bundle_id = p->opts.bundle_id;
        q->e.rollout_id = p->opts.rollout_id;
        q->e.target = p->target;
        q->e.time_us = e->ev.time_us;
    }
    fl__deliver_events(p);
}

/*
 * Writes the queued log rows in one statement; outside a transaction
 * only.  A failure to log is reported and does not fail the migration:
 * the console and the log file still have every event.
 */
void
fl__flush_logs(fl_pipeline_t *p)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_ledger_log_t *rows = NULL;

    if (fl_pg_in_transaction(p->pg))
        return;
    if (p->nlogs) {
        rows = fl_calloc(p->nlogs, sizeof(*rows));
        for (size_t i = 0; i < p->nlogs; i++)
            rows[i] = p->logs[i].e;
        if (fl_ledger_log(p->pg, rows, p->nlogs, &err) != 0) {
            fl_log_warning("pipeline", "could not write %zu row%s to "
                           "flotilla.migration_logs: %s", p->nlogs,
                           p->nlogs == 1 ? "" : "s", err.message);
            fl_error_clear(&err);
        }
        free(rows);
    }
    for (size_t i = 0; i < p->nlogs; i++) {
        free(p->logs[i].name);
        free(p->logs[i].message);
    }
    fl_free(&p->logs);
    p->nlogs = 0;
    fl__deliver_events(p);
}

/* Sleeps ms milliseconds in slices, returning early when cancelled. */
void
fl__sleep(fl_pipeline_t *p, int64_t ms)
{
    while (ms > 0 && !fl__cancelled(p)) {
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

void
fl__rollback_quietly(fl_pipeline_t *p)
{
    fl_error_t ignore = FL_ERROR_INIT;

    /* Called on a failure path: the first error is the one reported. */
    if (__atomic_load_n(&p->cancelled, __ATOMIC_SEQ_CST))
        fl_pg_cancel_settled(p->pg);
    if (fl_pg_in_transaction(p->pg)) {
        FL_IGNORE(fl_pg_exec(p->pg, "ROLLBACK", &ignore));
        /* The transaction's set_config calls are undone: pinned again. */
        p->session.in_migration = 0;
    }
    fl_error_clear(&ignore);
    fl__deliver_events(p);
}

/* The schema snapshots' scope: every managed schema, or the target's. */
const char *
fl__scope(const fl_pipeline_t *p)
{
    return *p->target ? p->target : NULL;
}

int
fl_pipeline_schema_check(fl_pg_t *pg, const char *schema, fl_error_t *err)
{
    const char *params[1] = {schema};
    char *v = NULL;
    int rc;

    if (strlen(schema) > 63)
        return FL_ERR(err, FL_EINVAL, "schema name \"%.80s...\" is longer "
                      "than PostgreSQL's 63 bytes", schema);
    rc = fl_pg_query_value(pg, &v, "SELECT pg_catalog.count(*) FROM"
                           " pg_catalog.pg_namespace WHERE nspname"
                           " OPERATOR(pg_catalog.=) $1", 1, params, err);
    if (rc != 0)
        return rc;
    if (v == NULL || strcmp(v, "1") != 0) {
        free(v);
        FL_ERR(err, FL_ENOTFOUND, "schema \"%s\" does not exist in "
               "database \"%s\"", schema, fl_pg_describe(pg));
        fl_error_set_hint(err, "A schema target names a schema that exists; "
                               "create it first (CREATE SCHEMA), or check "
                               "--schema.");
        return FL_ENOTFOUND;
    }
    free(v);
    return 0;
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
        char *q = NULL;

        if ((rc = fl_pipeline_schema_check(p->pg, p->target, err)) != 0)
            return rc;
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
    /*
     * public alone, not "$user", public: a schema named after flotilla's
     * role came first, which a tenant may create (its functions then
     * shadowed public's), and for a role named flotilla it was the
     * ledger's (found by an audit).
     */
    if ((rc = fl__session_pin(p->pg, &p->session, path ? path : "public",
                              err)) != 0)
        return rc;
    return fl__own_timeouts(p, err);
}

int
fl_pipeline_open(fl_pipeline_t **out, const fl_pipeline_opts_t *opts,
                 fl_error_t *err)
{
    fl_pipeline_t *p = fl_calloc(1, sizeof(*p));
    int rc;

    *out = NULL;
    if (opts->lock_timeout_ms <= 0) {
        free(p);
        return FL_ERR(err, FL_EINVAL, "lock_timeout_ms must be above 0 (%lld "
                      "would let statements wait for their locks forever)",
                      (long long)opts->lock_timeout_ms);
    }
    p->opts = *opts;
    p->dump_lock = -1;
    p->schema_kinds = p->kinds_committed = FL_SCHEMA_KINDS_ASK;
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

void
fl_pipeline_abort(fl_pipeline_t *p)
{
    if (p == NULL)
        return;
    __atomic_store_n(&p->cancelled, 1, __ATOMIC_SEQ_CST);
    fl_pg_abort(p->pg);
}

int
fl_pipeline_ledger(fl_pipeline_t *p, fl_ledger_t *out, fl_error_t *err)
{
    /* A run that failed may have left its transaction open. */
    fl__rollback_quietly(p);
    return fl_ledger_load(p->pg, p->target, out, err);
}

void
fl_pipeline_close(fl_pipeline_t **pp)
{
    fl_pipeline_t *p = pp ? *pp : NULL;

    if (p == NULL)
        return;
    fl__rollback_quietly(p);
    fl__flush_logs(p);
    fl__unlock_target(p);
    fl_pg_close(&p->pg);
    fl__session_release(&p->session);
    for (size_t i = 0; i < p->npartial; i++)
        free(p->partial[i]);
    free(p->partial);
    fl__dump_dir_release(p);
    free(p->search_path);
    free(p->described);
    free(p->own_tables);
    fl_schema_dirty_forget(&p->dirty);
    free(p);
    *pp = NULL;
}

/*
 * Whether the bundle of src may run here (proto/bundle.h's contract):
 * its signed scope must admit this target's environment and labels, and
 * its release must not be older than the highest applied on its channel
 * nor another bundle numbered as that one.  A release refusal becomes a
 * note in *override (for the log) when opts.allow_older_release says so.
 * Directories, for development, carry no release and no scope.
 */
int
fl__check_release(fl_pipeline_t *p, const fl_source_t *src, char **override,
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
 * An applied migration the source lacks is refused: a file that
 * disappeared (status, drift detection and rollback need it), or one
 * renumbered to a version not applied yet, which apply would run a
 * second time.
 */
static int
s_verify_gaps(fl_pipeline_t *p, const fl_migration_list_t *migs,
              const fl_ledger_t *ledger, fl_error_t *err)
{
    fl_ledger_gap_t *gaps = NULL;
    size_t n = fl_ledger_gaps(ledger, migs, p->opts.bundle_id, &gaps);
    fl_buf_t detail = FL_BUF_INIT(0);
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        const fl_ledger_row_t *row = gaps[i].row;
        const fl_migration_t *m = gaps[i].renumbered_as;
        if (m)
            fl_buf_addf(&detail, "%s%s is migration %s (%s, %s) "
                        "renumbered", i ? "; " : "", m->file,
                        row->version.text,
                        row->file ? row->file : row->name, row->status);
        else
            fl_buf_addf(&detail, "%smigration %s (%s, %s) is not in the "
                        "source", i ? "; " : "", row->version.text,
                        row->file ? row->file : row->name, row->status);
    }
    if (n > 0) {
        int renumbered = 0;
        for (size_t i = 0; i < n; i++)
            renumbered |= gaps[i].renumbered_as != NULL;
        rc = FL_ERR(err, FL_EINVAL, "%zu migration%s the ledger says %s "
                    "applied %s missing from the source", n,
                    n == 1 ? "" : "s", n == 1 ? "is" : "are",
                    n == 1 ? "is" : "are");
        fl_error_set_detail(err, "%s.", fl_buf_str(&detail));
        fl_error_set_hint(err, "%s", renumbered
            ? "Give each renumbered file back the number it was applied "
              "under: apply would run it a second time under the new one."
            : "Restore each file as it was applied (an applied migration "
              "stays in the source: status, drift detection and rollback "
              "need it); to undo one, roll it back before removing it.");
    }
    fl_buf_release(&detail);
    free(gaps);
    return rc;
}

/*
 * --to names a migration of the source, as Flyway's target must by
 * default (failOnMissingTarget).  Before, a mistyped --to 20 for 2
 * applied, planned or baselined every migration (found by an audit).
 */
int
fl__to_in_source(const fl_pipeline_t *p, const fl_migration_list_t *migs,
                 fl_error_t *err)
{
    int rc = 0;

    if (!fl_version_is_set(&p->opts.to_version))
        return 0;
    for (size_t i = 0; i < migs->count; i++)
        if (fl_version_cmp(&migs->items[i].version,
                           &p->opts.to_version) == 0)
            return 0;
    rc = FL_ERR(err, FL_EINVAL, "--to %s: the source has no migration of "
                "that version", p->opts.to_version.text);
    fl_error_set_hint(err, "Name the version of one of its migrations "
                           "(flotilla status lists them): those up to it "
                           "are taken, the later ones stay pending.");
    return rc;
}

/*
 * The verify step over the whole source: drift (an applied migration
 * whose checksum changed) and out-of-order versions.  Fills pending[i]
 * for each migration that still has to run.
 */
int
fl__verify_source(fl_pipeline_t *p, const fl_migration_list_t *migs,
                  const fl_ledger_t *ledger, int *pending, fl_error_t *err)
{
    fl_version_t max_applied = FL_VERSION_INIT;
    fl_buf_t drift = FL_BUF_INIT(0);
    int ndrift = 0;
    int rc = 0;

    if ((rc = fl__to_in_source(p, migs, err)) != 0)
        return rc;
    for (size_t i = 0; i < ledger->count; i++)
        if ((strcmp(ledger->items[i].status, "applied") == 0 ||
             strcmp(ledger->items[i].status, "rolling_back") == 0) &&
            fl_version_cmp(&ledger->items[i].version, &max_applied) > 0)
            max_applied = ledger->items[i].version;
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_ledger_row_t *row = fl_ledger_find(ledger, &m->version);

        pending[i] = 0;
        /*
         * Half rolled back (its down's statements committed in part): not
         * pending, and its up must not run again over what stays of it
         * (before, it did: an UPDATE of the up ran twice, found by an
         * audit).  The rollback finishes it first.
         */
        if (row && strcmp(row->status, "rolling_back") == 0) {
            if (rc == 0) {
                rc = FL_ERR(err, FL_EINVAL, "migration %s is being rolled "
                            "back: a rollback stopped after %d of its down's "
                            "statements", m->file, row->down_done);
                fl_error_set_hint(err, "Run flotilla rollback again to "
                                       "finish it (it resumes), then apply.");
            }
            continue;
        }
        if (row && strcmp(row->status, "applied") == 0) {
            if (!fl_ledger_row_matches(row, m)) {
                /* Its down may differ: only what up runs is drift. */
                const char *was = NULL;
                char now[65];
                fl_ledger_drift_sums(row, m, &was, now);
                fl_buf_addf(&drift, "%s%s (applied %.12s, source "
                                    "%.12s)", ndrift ? "; " : "", m->file,
                                    was, now);
                ndrift++;
            }
            continue;
        }
        if (fl_version_is_set(&p->opts.to_version) &&
            fl_version_cmp(&m->version, &p->opts.to_version) > 0)
            continue;
        pending[i] = 1;
        if (fl_version_cmp(&m->version, &max_applied) < 0 &&
            !p->opts.allow_out_of_order && rc == 0) {
            rc = FL_ERR(err, FL_EINVAL, "migration %s is pending but a later "
                        "version (%s) is already applied", m->file,
                        max_applied.text);
            fl_error_set_hint(err, "Renumber it after %s, or pass "
                                   "--allow-out-of-order if it is independent.",
                          max_applied.text);
        }
    }
    if (ndrift == 0) {
        /* A gap explains a pending version below an applied one too. */
        fl_error_t gap = FL_ERROR_INIT;
        if (s_verify_gaps(p, migs, ledger, &gap) != 0) {
            fl_error_clear(err);
            fl_error_move(err, &gap);
            rc = FL_EINVAL;
        }
        fl_error_clear(&gap);
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

static int
s_apply(fl_pipeline_t *p, const fl_source_t *src, fl_apply_result_t *result,
        fl_error_t *err)
{
    const fl_migration_list_t *migs = src->migs;
    fl_ledger_t ledger = {NULL, 0};
    int *pending = fl_calloc(migs->count ? migs->count : 1, sizeof(int));
    int64_t t0 = fl__now_ms();
    char *override = NULL;
    int beyond = 0, rc = 0;

    FL_ASSERT(src->verified == FL_SOURCE_VERIFIED);
    p->signed_gate = src->bundle ? fl_bundle_lint_enforce_from(src->bundle)
                                 : NULL;
    if (src->bundle_id)
        p->opts.bundle_id = src->bundle_id;
    memset(result, 0, sizeof(*result));
    p->dry_run = 0;
    /* Before anything is made (a ledger, on a new database). */
    if ((rc = fl__to_in_source(p, migs, err)) != 0 ||
        (rc = fl__lock_target(p, err)) != 0)
        goto cleanup;
    if ((rc = fl_ledger_ensure_load(p->pg, p->target, &ledger, err)) != 0 ||
        (rc = fl__own_tables(p, err)) != 0)
        goto cleanup;
    rc = fl__tenant_casts(p, err);
    if (rc == 0)
        rc = fl__check_release(p, src, &override, err);
    if (rc == 0)
        rc = fl__verify_source(p, migs, &ledger, pending, err);
    if (rc != 0) {
        fl__event(p, FL_STEP_VERIFY, FL_STEP_REFUSED, NULL, fl__now_ms() - t0,
                  err, "verify refused");
        goto cleanup;
    }
    if (override)
        fl__event(p, FL_STEP_VERIFY, FL_STEP_OK, NULL, 0, NULL, "%s; applied "
                  "anyway (--allow-older-release, reason: %s)", override,
                  p->opts.reason ? p->opts.reason : "none given");
    for (size_t i = 0; i < migs->count; i++) {
        const fl_ledger_row_t *row = fl_ledger_find(&ledger,
                                                    &migs->items[i].version);
        /* Versions after --to stay pending: they are counted as such. */
        if (pending[i])
            result->pending++;
        else if (row == NULL || strcmp(row->status, "applied") != 0)
            beyond++;
    }
    result->pending += beyond;
    if (beyond)
        fl__event(p, FL_STEP_VERIFY, FL_STEP_OK, NULL, fl__now_ms() - t0,
                  NULL, "%zu migration%s in source, %d pending, %d of them "
                  "after --to %s", migs->count, migs->count == 1 ? "" : "s",
                  result->pending, beyond, p->opts.to_version.text);
    else
        fl__event(p, FL_STEP_VERIFY, FL_STEP_OK, NULL, fl__now_ms() - t0,
                  NULL, "%zu migration%s in source, %d pending", migs->count,
                  migs->count == 1 ? "" : "s", result->pending);
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];

        if (!pending[i]) {
            if (fl_ledger_find(&ledger, &m->version))
                result->skipped++;
            continue;
        }
        rc = fl__apply_migration(p, m, fl_ledger_find(&ledger, &m->version),
                                 err);
        if (rc != 0 && p->committed_anyway) {
            /* Its COMMIT ran before the failure: it counts as applied. */
            result->applied++;
            result->pending--;
        }
        if (rc != 0)
            break;
        result->applied++;
        result->pending--;
    }
    if (rc == 0)
        rc = fl__apply_repeatables(p, src, result, err);
cleanup:
    fl__flush_logs(p);
    fl__unlock_target(p);
    p->release = NULL;
    fl_ledger_release(&ledger);
    free(override);
    free(pending);
    return rc;
}

/*
 * Whether a bundle's rollback takes ledger row row: a row of the bundle,
 * and when the rollback undoes a rollout, a row that rollout wrote (an
 * earlier rollout of the same bundle applied the others).
 */
static int
s_of_bundle(const fl_pipeline_t *p, const fl_ledger_row_t *row,
            const char *bundle_id)
{
    const char *undo = p->opts.undo_rollout;

    return bundle_id != NULL && row->bundle_id != NULL &&
           strcmp(row->bundle_id, bundle_id) == 0 &&
           (undo == NULL ||
            (row->rollout_id != NULL && strcmp(row->rollout_id, undo) == 0));
}

/*
 * Whether a rollback in mode asks for a state without half-applied
 * migration h (fl_ledger_row_partial) when no migration it rolls back
 * lies below h: to a version below it, the last migration when none is
 * applied above the rest, or h's bundle.
 */
static int
s_asks_past(const fl_pipeline_t *p, const fl_ledger_row_t *h,
            fl_rollback_mode mode, const fl_version_t *to_version,
            const fl_version_t *lowest, const char *bundle_id)
{
    switch (mode) {
    case FL_ROLLBACK_TO:
        return !fl_version_is_set(to_version) ||
               fl_version_cmp(&h->version, to_version) > 0;
    case FL_ROLLBACK_LAST:
        return !fl_version_is_set(lowest);
    case FL_ROLLBACK_BUNDLE:
        return s_of_bundle(p, h, bundle_id);
    }
    return 0;
}

/*
 * Refuses a rollback that would roll back a migration underneath a later
 * one left half-applied: the later one's committed statements would then
 * stand on a schema they were not written for, and its down could not
 * undo them.  r holds the candidates (applied or rolling_back), newest
 * first; the lowest one this mode reaches is compared.  Rolling back to
 * a version is refused under any half-applied migration above it, also
 * when none of the candidates is (the state asked for cannot be reached).
 */
static int
s_half_applied_above(fl_pipeline_t *p, const fl_ledger_t *ledger,
                     const fl_pg_result_t *r, fl_rollback_mode mode,
                     const fl_version_t *to_version, const char *bundle_id,
                     fl_error_t *err)
{
    fl_version_t lowest = FL_VERSION_INIT;

    for (size_t i = 0; i < r->nrows; i++) {
        fl_version_t v = FL_VERSION_INIT;
        const fl_ledger_row_t *row = NULL;

        /* The ledger was read and checked under the same lock. */
        if (fl_version_parse_str(&v, fl_pg_value(r, i, 0), NULL) != 0)
            continue;
        row = fl_ledger_find(ledger, &v);
        if (row == NULL ||
            (mode == FL_ROLLBACK_TO && fl_version_cmp(&v, to_version) <= 0))
            continue;
        if (mode == FL_ROLLBACK_BUNDLE && !s_of_bundle(p, row, bundle_id))
            continue;
        lowest = v;
        if (mode == FL_ROLLBACK_LAST)
            break;
    }
    for (size_t i = 0; i < ledger->count; i++) {
        const fl_ledger_row_t *h = &ledger->items[i];
        int under = fl_version_is_set(&lowest) &&
                    fl_version_cmp(&h->version, &lowest) > 0;
        const char *name = h->file ? h->file : h->name;

        if (!fl_ledger_row_partial(h) ||
            (!under &&
             !s_asks_past(p, h, mode, to_version, &lowest, bundle_id)))
            continue;
        if (under) {
            FL_ERR(err, FL_EINVAL, "%s is partly applied (%d of %d "
                   "statements): rolling back migration %s underneath it is "
                   "refused", name, h->statements_done, h->statements_total,
                   lowest.text);
            fl_error_set_detail(err, "Its committed statements would stand "
                                "on a schema they were not written for, and "
                                "its down could not undo them.");
        } else {
            FL_ERR(err, FL_EINVAL, "%s is partly applied (%d of %d "
                   "statements): a rollback does not undo part of a "
                   "migration", name, h->statements_done,
                   h->statements_total);
            fl_error_set_detail(err, "A rollback runs the down of migrations "
                                "applied whole; %s's committed statements "
                                "would stay.", name);
        }
        fl_error_set_hint(err, "Finish it first (flotilla apply resumes it at "
                               "statement %d), then roll back.  When that "
                               "statement can never succeed: flotilla "
                               "rollback --skip-down %s --reason TEXT marks "
                               "it rolled back, its committed statements "
                               "left in place.", h->statements_done + 1,
                          h->version.text);
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_REFUSED, NULL, 0, err,
                  "rollback refused");
        return FL_EINVAL;
    }
    return 0;
}

/*
 * Refuses a bundle's rollback that would leave a later migration of
 * another bundle (or of none, or of the same bundle by a later rollout
 * when it undoes a rollout) applied above one it rolls back: that
 * migration would then stand on a schema it was not written for, and
 * the ledger would still say it is applied (a down that drops a table
 * took the rows a later bundle's migration put in it).  --last and --to
 * reach only the newest migrations and cannot leave one behind.  r holds
 * the candidates (applied or rolling_back), newest first.
 */
static int
s_other_bundle_above(fl_pipeline_t *p, const fl_ledger_t *ledger,
                     const fl_pg_result_t *r, const char *bundle_id,
                     fl_error_t *err)
{
    const fl_ledger_row_t *above = NULL;

    for (size_t i = 0; i < r->nrows; i++) {
        fl_version_t v = FL_VERSION_INIT;
        const fl_ledger_row_t *row = NULL;

        if (fl_version_parse_str(&v, fl_pg_value(r, i, 0), NULL) != 0 ||
            (row = fl_ledger_find(ledger, &v)) == NULL)
            continue;
        if (!s_of_bundle(p, row, bundle_id)) {
            if (above == NULL)
                above = row;
            continue;
        }
        if (above == NULL)
            continue;
        FL_ERR(err, FL_EINVAL, "%s (%s) is applied above %s of bundle %s: "
               "rolling the bundle back underneath it is refused",
               above->file ? above->file : above->name,
               above->bundle_id == NULL ? "applied without a bundle"
               : strcmp(above->bundle_id, bundle_id) != 0
                   ? "of another bundle"
                   : "of the same bundle, by a later rollout",
               row->file ? row->file : row->name, bundle_id);
        fl_error_set_detail(err, "It would stay applied on a schema it was "
                            "not written for, and what it changed in %s's "
                            "objects could go with them.",
                            row->file ? row->file : row->name);
        fl_error_set_hint(err, "Roll back the later migrations first: the "
                          "later bundle or rollout, or every migration "
                          "above %s (flotilla rollback --to %s).",
                          row->version.text, row->version.text);
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_REFUSED, NULL, 0, err,
                  "rollback refused");
        return FL_EINVAL;
    }
    return 0;
}

static int
s_rollback(fl_pipeline_t *p, const fl_source_t *src, fl_rollback_mode mode,
           const fl_version_t *to_version, const char *bundle_id, int *count,
           fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_ledger_t ledger = {NULL, 0};
    fl_version_t all = FL_VERSION_INIT;
    int rc = 0;

    if (to_version == NULL)
        to_version = &all;
    FL_ASSERT(src == NULL || src->verified == FL_SOURCE_VERIFIED);
    FL_ASSERT(src != NULL || p->opts.down_from_ledger);
    if (mode == FL_ROLLBACK_BUNDLE && bundle_id == NULL)
        return FL_ERR(err, FL_EINVAL, "a rollback of a bundle needs the "
                      "bundle's id");
    p->signed_gate = src && src->bundle
                         ? fl_bundle_lint_enforce_from(src->bundle) : NULL;
    /* Its log rows name the bundle whose downs run. */
    if (src && src->bundle_id)
        p->opts.bundle_id = src->bundle_id;
    *count = 0;
    p->dry_run = 0;
    if ((rc = fl__lock_target(p, err)) != 0)
        goto cleanup;
    if ((rc = fl_ledger_ensure_load(p->pg, p->target, &ledger, err)) != 0 ||
        (rc = fl__own_tables(p, err)) != 0 ||
        (rc = fl__tenant_casts(p, err)) != 0)
        goto cleanup;
    if (mode == FL_ROLLBACK_BUNDLE && p->opts.bundle_known) {
        int known = 0;

        for (size_t i = 0; i < ledger.count && !known; i++)
            known = ledger.items[i].bundle_id != NULL &&
                    strcmp(ledger.items[i].bundle_id, bundle_id) == 0;
        if (!known) {
            /* Before, "rolled back 0 migrations", exit 0 (found by an
             * audit: a 16-digit id copied from rollout list). */
            rc = FL_ERR(err, FL_EINVAL, "no migration of bundle %s is in "
                        "the ledger%s%s: nothing to roll back", bundle_id,
                        p->target[0] ? " of schema " : "", p->target);
            fl_error_set_hint(err, "Check the id: flotilla status --json "
                                   "names the bundle of each migration "
                                   "applied.");
            goto cleanup;
        }
    }
    {
        const char *params[1] = {p->target};
        rc = fl_pg_query(p->pg, &r,
            "SELECT version, down_sql, down_line FROM flotilla.schema_migrations"
            " WHERE status IN ('applied', 'rolling_back') AND target"
            " OPERATOR(pg_catalog.=) $1 ORDER BY version_order DESC", 1,
            params, err);
    }
    if (rc != 0 || (rc = s_half_applied_above(p, &ledger, &r, mode, to_version,
                                              bundle_id, err)) != 0 ||
        (mode == FL_ROLLBACK_BUNDLE &&
         (rc = s_other_bundle_above(p, &ledger, &r, bundle_id, err)) != 0))
        goto cleanup;
    for (size_t i = 0; i < r.nrows; i++) {
        fl_version_t v = FL_VERSION_INIT;
        const fl_ledger_row_t *row = NULL;

        if (fl_version_parse_str(&v, fl_pg_value(&r, i, 0), NULL) != 0)
            continue; /* not in the ledger as loaded: checked there */
        row = fl_ledger_find(&ledger, &v);
        if (row == NULL)
            continue;
        if (mode == FL_ROLLBACK_LAST && *count > 0)
            break;
        if (mode == FL_ROLLBACK_TO && fl_version_cmp(&v, to_version) <= 0)
            break;
        if (mode == FL_ROLLBACK_BUNDLE && !s_of_bundle(p, row, bundle_id))
            continue;
        {
            const char *down = NULL;
            int line = 0;
            rc = fl__down_for(p, src, row, &r, i, &down, &line, err);
            /* Before the first down: a crash after it must not leave the
             * repeatable migrations marked current (agent/repeatable.c). */
            if (rc == 0 && *count == 0)
                rc = fl__repeatables_forget(p, &v, err);
            p->committed_anyway = 0;
            if (rc == 0)
                rc = fl__rollback_one(p, row, down, line, err);
        }
        /* Its COMMIT ran before the failure: it counts as rolled back. */
        if (rc != 0 && p->committed_anyway)
            (*count)++;
        if (rc != 0)
            break;
        (*count)++;
    }
cleanup:
    fl__flush_logs(p);
    fl__unlock_target(p);
    fl_pg_result_release(&r);
    fl_ledger_release(&ledger);
    return rc;
}

/*
 * The public entry points.  The pipeline decides what an error means from
 * its code (retry a lock timeout, refuse or fail), so it always works on
 * an error object of its own when the caller passes none.
 */
int
fl_pipeline_apply(fl_pipeline_t *p, const fl_source_t *src,
                  fl_apply_result_t *result, fl_error_t *err)
{
    fl_error_t local = FL_ERROR_INIT;
    int rc = s_apply(p, src, result, err ? err : &local);

    fl_error_clear(&local);
    return rc;
}

int
fl_pipeline_plan(fl_pipeline_t *p, const fl_source_t *src, fl_plan_t *out,
                 fl_error_t *err)
{
    fl_error_t local = FL_ERROR_INIT;
    int rc = fl__plan(p, src, out, err ? err : &local);

    fl_error_clear(&local);
    return rc;
}

int
fl_pipeline_rollback(fl_pipeline_t *p, const fl_source_t *src,
                     fl_rollback_mode mode, const fl_version_t *to_version,
                     const char *bundle_id, int *count, fl_error_t *err)
{
    fl_error_t local = FL_ERROR_INIT;
    int rc;

    p->kept = 0;
    rc = s_rollback(p, src, mode, to_version, bundle_id, count,
                    err ? err : &local);
    fl_error_clear(&local);
    return rc;
}

int
fl_pipeline_kept(const fl_pipeline_t *p)
{
    return p->kept;
}

int
fl_pipeline_skip_down(fl_pipeline_t *p, const fl_version_t *version,
                      const char *reason, fl_error_t *err)
{
    fl_error_t local = FL_ERROR_INIT;
    int rc = fl__skip_down(p, version, reason, err ? err : &local);

    fl_error_clear(&local);
    return rc;
}

const char *
fl__lint_gate_version(const fl_pipeline_t *p)
{
    return p->signed_gate ? p->signed_gate : p->opts.lint_enforce_from;
}

int
fl__lint_enforced(const fl_pipeline_t *p, const fl_migration_t *m)
{
    const char *gate = fl__lint_gate_version(p);
    fl_version_t g = FL_VERSION_INIT;
    fl_error_t ignore = FL_ERROR_INIT;
    int rc;

    /* A repeatable migration runs now, whatever the history: held to
     * lint like the migrations after the gate. */
    if (gate == NULL || m->repeatable)
        return 1;
    /* Checked where it came in (fl_bundle_check_gate): a version, maybe
     * as the tool names its files (diesel's 2019-02-26-002946). */
    rc = fl_version_parse_tool(&g, gate, &ignore);
    fl_error_clear(&ignore);
    FL_ASSERT(rc == 0);
    return fl_version_cmp(&m->version, &g) >= 0;
}
