/*
 * command.c - one command on one target, on a worker thread: the agent
 * daemon's use of the pipeline library.
 *
 * In order, within one connection slot and on one connection (the
 * pipeline's, opened first: a connection costs a backend's start and its
 * cold caches, a large part of a small migration's time):
 *   1. the target's ledger: a command already carried out (this rollout's
 *      apply recorded applied, or failed; its rollback recorded rolled
 *      back) is answered with the recorded result and nothing runs.  A
 *      retry (attempt > 0: the coordinator sends one after `rollout
 *      resume` for a target whose run halt --abort cancelled) is not
 *      answered from a failed row: the pipeline runs and resumes that row
 *      as `flotilla apply` does.  A retry has a command id of its own, so
 *      a re-send of it (the coordinator restarted before it recorded the
 *      outcome) finds the agent still holding it (daemon.c: journaled
 *      until its result is acknowledged) and never runs twice; and the
 *      pipeline skips what the ledger records applied, so no migration
 *      ever applies twice;
 *   2. the bundle's signed scope must admit the target (environment and
 *      labels), else the command is refused;
 *   3. the pipeline: apply, rollback, plan or baseline, its step events
 *      posted to the loop as they happen, cancellable through the job;
 *   4. the ledger again, for the state the result reports (on a
 *      connection of its own when the pipeline's was lost).
 * The bundle was verified against this agent's own trusted keys before
 * the job was queued (daemon.c); the pipeline checks it once more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agentd_internal.h"
#include "agent/ledger.h"
#include "agent/planjson.h"
#include "agent/pg.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

/* The largest plan report a result carries. */
#define S_MAX_REPORT ((size_t)900 * 1024)

typedef struct {
    fl_ag_daemon_t *d;
    fl_ag_job_t *job;
} s_ctx;

static const char *
s_action(const fl_ag_job_t *job)
{
    switch (job->cmd.type) {
    case FL_WIRE_ROLLBACK: return "rollback";
    case FL_WIRE_PLAN: return "plan";
    case FL_WIRE_BASELINE: return "baseline";
    case FL_WIRE_CANCEL: return "cancel";
    default: return "apply";
    }
}

/* The highest version the state records applied; empty when none. */
static fl_version_t
s_applied_version(const fl_wire_target_t *st)
{
    fl_version_t v = FL_VERSION_INIT;

    for (size_t i = 0; i < st->napplied; i++)
        if (strcmp(st->applied[i].status, "applied") == 0 &&
            fl_version_cmp(&st->applied[i].version, &v) > 0)
            v = st->applied[i].version;
    return v;
}

/* Fills the job's result (strings copied). */
static void
s_result(fl_ag_job_t *job, const char *status, int64_t duration_ms,
         const char *message, const fl_error_t *err)
{
    fl_wire_result_t *r = &job->result;
    fl_version_t version = s_applied_version(&job->state);

    r->id = fl_strdup(job->cmd.u.command.id);
    r->rollout = fl_strdup(job->cmd.u.command.rollout);
    r->target = fl_strdup(job->cmd.u.command.target);
    r->action = fl_strdup(s_action(job));
    r->status = fl_strdup(status);
    r->version = version;
    r->duration_ms = duration_ms;
    r->message = message ? fl_strdup(message) : NULL;
    if (err != NULL && fl_error_is_set(err)) {
        r->error = fl_strdup(err->message);
        r->detail = err->detail ? fl_strdup(err->detail) : NULL;
        r->hint = err->hint ? fl_strdup(err->hint) : NULL;
        r->sqlstate = err->sqlstate[0] ? fl_strdup(err->sqlstate) : NULL;
    }
    job->has_result = 1;
}

/* The pipeline's events: to the log and, as step events, to the loop. */
static void
s_on_event(const fl_pipeline_event_t *ev, void *arg)
{
    s_ctx *c = arg;
    fl_ag_job_t *e = fl_calloc(1, sizeof(*e));
    fl_wire_msg_t m;
    fl_log_field f[4] = {{"target", c->job->target},
                         {"rollout", c->job->cmd.u.command.rollout},
                         {"step", fl_step_name(ev->step)},
                         {"version", fl_version_is_set(&ev->version)
                                         ? ev->version.text
                                         : "0"}};

    fl_log_emit(ev->status == FL_STEP_FAILED || ev->status == FL_STEP_REFUSED
                    ? FL_LOG_WARNING
                    : FL_LOG_INFO,
                "agent", f, 4, "%s: %s %s: %s", c->job->target,
                fl_step_name(ev->step), fl_step_status_name(ev->status),
                ev->message ? ev->message : "");
    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_STEP_EVENT;
    m.u.step_event.rollout = c->job->cmd.u.command.rollout;
    m.u.step_event.target = c->job->target;
    m.u.step_event.step = (char *)fl_step_name(ev->step);
    m.u.step_event.status = (char *)fl_step_status_name(ev->status);
    m.u.step_event.duration_ms = ev->duration_ms;
    m.u.step_event.message = (char *)ev->message;
    if (ev->error != NULL) {
        m.u.step_event.error = ev->error->message;
        m.u.step_event.detail = ev->error->detail;
        m.u.step_event.hint = ev->error->hint;
        m.u.step_event.sqlstate =
            ev->error->sqlstate[0] ? (char *)ev->error->sqlstate : NULL;
    }
    e->kind = FL_AG_JOB_EVENT;
    fl_buf_init(&e->encoded, 0);
    if (fl_wire_encode(&e->encoded, &m, NULL) != 0) {
        /* A step event too large to send: the log has it. */
        fl_buf_release(&e->encoded);
        free(e);
        return;
    }
    fl_workers_post(c->d->workers, e);
}

static const fl_wire_applied_t *
s_row(const fl_wire_target_t *st, const fl_version_t *version)
{
    for (size_t i = 0; i < st->napplied; i++)
        if (fl_version_cmp(&st->applied[i].version, version) == 0)
            return &st->applied[i];
    return NULL;
}

/*
 * Whether the ledger (job->state) records this command as carried out:
 * 1 and the result filled when it does, else 0.
 */
static int
s_recorded(fl_ag_job_t *job)
{
    const fl_wire_command_t *c = &job->cmd.u.command;
    const fl_migration_list_t *migs = job->src->migs;
    const fl_wire_applied_t *failed = NULL;
    int all = 1, ours = 0;

    /* A baseline answers a second time from the ledger by itself. */
    if (!job->state.known || job->cmd.type == FL_WIRE_PLAN ||
        job->cmd.type == FL_WIRE_BASELINE)
        return 0;
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_wire_applied_t *row = s_row(&job->state, &m->version);
        int mine = row && row->rollout && strcmp(row->rollout, c->rollout) == 0;

        if (job->cmd.type == FL_WIRE_APPLY) {
            if (fl_version_is_set(&c->to_version) &&
                fl_version_cmp(&m->version, &c->to_version) > 0)
                continue;
            if (mine && strcmp(row->status, "failed") == 0 && failed == NULL)
                failed = row;
            if (!mine || strcmp(row->status, "applied") != 0 ||
                !fl_migration_is_applied_as(m, row->checksum))
                all = 0;
        } else {
            if (fl_version_is_set(&c->to_version) &&
                fl_version_cmp(&m->version, &c->to_version) <= 0)
                continue;
            if (row == NULL)
                continue;
            ours |= mine && strcmp(row->status, "rolled_back") == 0;
            if (!mine || strcmp(row->status, "rolled_back") != 0)
                all = 0;
        }
    }
    /*
     * Repeatable migrations leave no row of the rollout's to answer from
     * (and the pipeline runs only those out of date): a bundle with them
     * is run again.  Before, a retry after halt --abort had cancelled a
     * repeatable migration was answered "already carried out" from the
     * versioned rows, and the repeatable one never ran.
     */
    if (job->cmd.type == FL_WIRE_APPLY && all &&
        (job->src->repeatables == NULL || job->src->repeatables->count == 0)) {
        s_result(job, "ok", 0, "already carried out by this rollout; "
                               "answered from the target's ledger", NULL);
        return 1;
    }
    /* Not when the failure is the cancel of this agent's own stop. */
    if (job->cmd.type == FL_WIRE_APPLY && failed != NULL &&
        c->attempt == 0 && !job->after_stop) {
        fl_error_t e = FL_ERROR_INIT;
        FL_ERR(&e, FL_EDB, "migration %s failed in this rollout, as the "
               "target's ledger records", failed->version.text);
        s_result(job, "failed", 0, "answered from the target's ledger", &e);
        fl_error_clear(&e);
        return 1;
    }
    if (job->cmd.type == FL_WIRE_ROLLBACK && all && ours) {
        s_result(job, "ok", 0, "already rolled back by this rollout; "
                               "answered from the target's ledger", NULL);
        return 1;
    }
    return 0;
}

static const char *
s_status(int rc)
{
    switch (rc) {
    case 0: return "ok";
    case FL_EINVAL:
    case FL_EPROTO: return "refused";
    case FL_ECANCELLED: return "cancelled";
    default: return "failed";
    }
}

/*
 * Opens the job's pipeline (*out, registered with the job so that a
 * cancel reaches it); ctx must outlive it.
 */
static int
s_open(fl_ag_daemon_t *d, fl_ag_job_t *job, s_ctx *ctx, fl_pipeline_t **out,
       fl_error_t *err)
{
    fl_pipeline_opts_t o = FL_PIPELINE_OPTS_INIT;
    const fl_wire_command_t *c = &job->cmd.u.command;
    int rc;

    o.dsn = job->dsn;
    o.schema = job->schema;
    o.agent = d->cfg->name;
    o.rollout_id = c->rollout;
    if (job->cmd.type == FL_WIRE_ROLLBACK)
        o.undo_rollout = c->undoes;
    o.bundle_id = job->src->bundle_id;
    if (job->cmd.type == FL_WIRE_APPLY || job->cmd.type == FL_WIRE_BASELINE)
        o.to_version = c->to_version;
    o.lock_wait_ms = d->cfg->lock_wait_ms;
    o.lock_timeout_ms = d->cfg->lock_timeout_ms;
    o.statement_timeout_ms = d->cfg->statement_timeout_ms;
    o.backup_dir = d->backup_dir;
    o.environment = job->environment;
    o.labels = (const char *const *)job->labels;
    o.nlabels = job->nlabels;
    o.on_event = s_on_event;
    o.arg = ctx;
    if ((rc = fl_pipeline_open(out, &o, err)) != 0)
        return rc;
    /*
     * A job cancelled already is not cancelled on the server here: it
     * runs no pipeline (fl_ag_run), and the cancel request, sent on a
     * thread of its own, could stop the ledger reads that say whether an
     * earlier run of it had changed the target (found by an audit).
     */
    pthread_mutex_lock(&job->lock);
    job->pipeline = *out;
    pthread_mutex_unlock(&job->lock);
    return 0;
}

static void
s_close(fl_ag_job_t *job, fl_pipeline_t **p)
{
    if (*p == NULL)
        return;
    pthread_mutex_lock(&job->lock);
    job->pipeline = NULL;
    pthread_mutex_unlock(&job->lock);
    fl_pipeline_close(p);
}

/* The target's ledger into job->state, on p's connection when it can. */
static void
s_read_state(fl_ag_job_t *job, fl_pipeline_t *p)
{
    fl_ledger_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;

    if (p != NULL && fl_pipeline_ledger(p, &l, &err) == 0)
        fl_ag_state_set(&job->state, &l, NULL);
    else
        fl_ag_read_state(job, &job->state);
    fl_ledger_release(&l);
    fl_error_clear(&err);
}

/* Runs the command on the open pipeline p; fills the job's result. */
static void
s_pipeline(fl_ag_job_t *job, fl_pipeline_t *p, int64_t t0)
{
    const fl_wire_command_t *c = &job->cmd.u.command;
    fl_error_t err = FL_ERROR_INIT;
    char *msg = NULL;
    fl_plan_t plan = FL_PLAN_INIT;
    int planned = 0, kept = 0, changed = 0;
    int rc = 0;

    if (job->cmd.type == FL_WIRE_APPLY) {
        fl_apply_result_t res = FL_APPLY_RESULT_INIT;
        rc = fl_pipeline_apply(p, job->src, &res, &err);
        msg = fl_asprintf("%d applied, %d already applied, %d pending",
                          res.applied, res.skipped, res.pending);
        changed = res.applied + res.repeatables_run;
    } else if (job->cmd.type == FL_WIRE_ROLLBACK) {
        int count = 0;
        rc = fl_version_is_set(&c->to_version)
                 ? fl_pipeline_rollback(p, job->src, FL_ROLLBACK_TO,
                                        &c->to_version, NULL, &count, &err)
                 : fl_pipeline_rollback(p, job->src, FL_ROLLBACK_BUNDLE, NULL,
                                        job->src->bundle_id, &count, &err);
        changed = count;
        kept = fl_pipeline_kept(p);
        msg = kept > 0 ? fl_asprintf("%d rolled back; %d cop%s of the "
                                     "application's data kept (flotilla "
                                     "backups list)", count, kept,
                                     kept == 1 ? "y" : "ies")
                       : fl_asprintf("%d rolled back", count);
    } else if (job->cmd.type == FL_WIRE_BASELINE) {
        fl_baseline_result_t res = {0, 0, 0, FL_VERSION_INIT, NULL};
        rc = fl_pipeline_baseline(p, job->src, c->from, &res, &err);
        /* The verdict alone: the coordinator counts targets by it. */
        msg = fl_strdup(rc != 0              ? "refused"
                        : res.baselined > 0 ? "baselined"
                        : res.already > 0   ? "already"
                                            : "none ran");
        /* No tool table is a refusal too: nothing was written. */
        if (rc == FL_ENOTFOUND)
            rc = FL_EINVAL;
        fl_baseline_result_release(&res);
    } else {
        rc = fl_pipeline_plan(p, job->src, &plan, &err);
        planned = rc == 0;
    }
    if (planned) {
        json_t *report = fl_plan_json(&plan);
        char *text = fl_plan_json_fit(report, S_MAX_REPORT);

        /* Not proven (a migration no rehearsal can run) is not "ok": the
         * single-database plan exits 3 for it too. */
        s_result(job, plan.ok && plan.proven ? "ok" : "refused",
                 fl_clock_ms() - t0,
                 plan.ok && plan.proven ? "the plan would apply"
                 : plan.ok ? "the plan is not proven: a migration without "
                             "a transaction cannot be rehearsed"
                           : "the plan would be refused",
                 NULL);
        /* Cut to fit (its "cut" says what went); the verdicts stay. */
        if (json_object_get(report, "cut") != NULL)
            fl_log_warning("agent", "the plan report of target \"%s\" was "
                           "cut to fit a result: %s", job->target,
                           json_string_value(json_object_get(report, "cut")));
        job->result.report = text;
        json_decref(report);
    } else {
        /*
         * Cancelled after this run committed a migration (or rolled one
         * back): the target is not as it was, so the run failed, never
         * "cancelled" (docs/rollouts.md, "Halt is a latch").  Before, such
         * a run was counted cancelled, not against the budget.
         */
        s_result(job, rc == FL_ECANCELLED && changed > 0 ? "failed"
                                                         : s_status(rc),
                 fl_clock_ms() - t0, msg, &err);
        job->result.kept = kept;
    }
    fl_plan_release(&plan);
    free(msg);
    fl_error_clear(&err);
}

/*
 * A cancelled run is as if it had not started, unless a migration
 * without a transaction had committed some of its statements (or a down
 * some of its own): such a run failed, the target part done (its ledger
 * row says how far; the result's detail too), and is counted and kept
 * as a failure, never as a cancel (docs/rollouts.md, "Halt is a latch").
 * Read from the rows of the ledger this command's rollout wrote; a
 * ledger that cannot be read leaves the result as it is.  before: the
 * run was cancelled before it started, carried out again after a
 * restart: the migrations its run before the restart committed (or
 * rolled back) count too.
 */
static void
s_cancel_left_partial(fl_ag_job_t *job, fl_pipeline_t *p, int before)
{
    const char *rollout = job->cmd.u.command.rollout;
    const char *done = job->cmd.type == FL_WIRE_ROLLBACK ? "rolled_back"
                                                         : "applied";
    fl_ledger_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    int partial = 0;

    if (!job->has_result || strcmp(job->result.status, "cancelled") != 0 ||
        rollout == NULL || fl_pipeline_ledger(p, &l, &err) != 0) {
        fl_error_clear(&err);
        return;
    }
    for (size_t i = 0; i < l.count && !partial; i++) {
        const fl_ledger_row_t *row = &l.items[i];

        partial = row->rollout_id != NULL &&
                  strcmp(row->rollout_id, rollout) == 0 &&
                  (fl_ledger_row_partial(row) ||
                   (strcmp(row->status, "rolling_back") == 0 &&
                    row->down_done > 0) ||
                   (before && strcmp(row->status, done) == 0));
    }
    if (partial) {
        free(job->result.status);
        job->result.status = fl_strdup("failed");
        if (before) {
            free(job->result.error);
            job->result.error = fl_asprintf(
                "cancelled before it ran again after the agent's restart, "
                "but its run before the restart had changed the target "
                "(migrations of rollout %s %s): it is not as it was",
                rollout, done);
        }
    }
    fl_ledger_release(&l);
}

void
fl_ag_run(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    fl_error_t err = FL_ERROR_INIT, open_err = FL_ERROR_INIT;
    s_ctx ctx = {d, job};
    fl_pipeline_t *p = NULL;
    int64_t t0 = fl_clock_ms();
    int cancelled, rc;

    fl_workers_conn_acquire(d->workers);
    if ((rc = s_open(d, job, &ctx, &p, &open_err)) == 0)
        s_read_state(job, p);
    else
        fl_ag_state_set(&job->state, NULL, &open_err);
    if (s_recorded(job))
        goto done;
    pthread_mutex_lock(&job->lock);
    cancelled = job->cancelled;
    pthread_mutex_unlock(&job->lock);
    if (cancelled) {
        FL_ERR(&err, FL_ECANCELLED, "cancelled before it started");
        s_result(job, "cancelled", 0, NULL, &err);
        /* Carried out again after a restart: its first run may have
         * committed migrations, or left one part done. */
        if (p != NULL)
            s_cancel_left_partial(job, p, 1);
        goto done;
    }
    if (fl_bundle_scope_admits(job->src->bundle, job->environment,
                               (const char *const *)job->labels,
                               job->nlabels, &err) != 0) {
        fl_error_prefix(&err, "target \"%s\": ", job->target);
        s_result(job, "refused", 0, "the bundle's signed scope does not "
                                    "admit this target", &err);
        goto done;
    }
    if (p == NULL) {
        /* The target cannot be reached: the open's error is the answer. */
        s_result(job, s_status(rc), fl_clock_ms() - t0, NULL, &open_err);
        goto done;
    }
    s_pipeline(job, p, t0);
    s_cancel_left_partial(job, p, 0);
    fl_ag_state_release(&job->state);
    s_read_state(job, p);
    /* The version after the run, now that the state is read again. */
    if (job->has_result)
        job->result.version = s_applied_version(&job->state);
done:
    s_close(job, &p);
    fl_workers_conn_release(d->workers);
    fl_error_clear(&open_err);
    fl_error_clear(&err);
}
