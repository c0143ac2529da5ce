/*
 * rollout.c - the rollout engine (see rollout.h).
 *
 * A rollout is one bundle, a target set frozen when it starts, and a
 * policy.  Its targets are put in order (deterministic: by the first
 * label-selector wave they match, then their labels, then their names;
 * or shuffled with a seed that is recorded) and cut into waves (a count,
 * a percentage of the targets not yet in a wave, or a label selector;
 * targets left after the last wave make one more).  The frozen set, each
 * target's wave and place in the order are the commands of the forward
 * dispatch, written before anything is sent; nothing outside that set is
 * ever sent anything.
 *
 * States of a rollout (status, with wave_state while running):
 *
 *                 +---------- resume -----------+
 *                 v                             |
 *   running[dispatching] --wave done--> running[baking] --bake over-->
 *      |   ^          \                                 running[gated]
 *      |   +--next wave-+---- (no bake, no gate) ----+       |
 *      |                                                resume
 *      +--budget exceeded / halt--> halted --resume--> running
 *      |                              |
 *      +--last wave done--> completed |   (on_failure: rollback, once,
 *                                     |    or "rollout rollback")
 *                                     v
 *   rolling_back --a rollback failed--> rollback_failed --rollback--+
 *      |    ^                                                      |
 *      |    +------------------------------------------------------+
 *      +--every touched target rolled back--> rolled_back
 *
 *   running      s_step() releases the current wave's held commands
 *                within the caps (max_parallel overall, per agent, per
 *                PostgreSQL server), each release written before the
 *                command is queued (fl_dispatch_release); a target whose
 *                agent is offline is recorded unreachable, not sent.  When
 *                every command of the wave has an outcome and the budget
 *                holds, the wave bakes (bake_until, a wall-clock time in
 *                the control database), then waits at a manual gate, then
 *                the next wave starts (s_next_wave).  After the last wave:
 *                completed.
 *   halted       the latch (rollouts.halted) is set: by an operator
 *                (s_halt from "rollout.halt") or because a failure budget
 *                is exceeded (s_check_budget: more failures than allowed,
 *                never "as many as").  fl_rollout_may_send() is checked
 *                by the pump before every send and by reconciliation
 *                after a restart, so a command queued or released before
 *                the halt is taken back, not sent.  In-flight commands
 *                finish, or with --abort are cancelled on their agents
 *                (their transactions roll back); the abort is stored
 *                (rollouts.aborted), and an agent offline then has the
 *                runs it holds cancelled at its hello (fl_rollout_aborted,
 *                from reconciliation) once the halt is written, until the
 *                latch is cleared.  "rollout.resume" clears
 *                the latch, acknowledges the failures seen so far and
 *                holds again, as retries, the current wave's targets
 *                whose runs were cancelled (s_retry_cancelled): they are
 *                released again like any held command.
 *   rolling_back s_rollback_start() creates a rollback dispatch over
 *                exactly the touched targets: those whose ledgers record
 *                a row of this rollout not rolled back, and those sent
 *                something whose ledger is not known yet, which applied,
 *                or whose agent has not reported its ledger since the
 *                result (the ledger as reported may lag it); never a
 *                target already rolled back by an earlier attempt.  Its
 *                waves run newest first, one at a time, within the same
 *                caps, without bake or gate.  A failed rollback pauses it:
 *                nothing more is released, and once the rollbacks in
 *                flight have their outcomes, rollback_failed, until
 *                "rollout.rollback" again (which therefore never sends a
 *                target a rollback while an earlier one is in flight).
 *                A halt here sets the latch as in running: nothing more
 *                of the rollback is sent (what its agents hold finishes),
 *                the status stays rolling_back with "halted" shown, and
 *                resume clears the latch and goes on with the rollback,
 *                its runs that --abort cancelled sent again
 *                (s_retry_cancelled).
 *   completed, rolled_back   final; commands never sent are recorded
 *                cancelled ("not dispatched") so that the dispatch ends.
 *
 * Invariants:
 *   - Every decision is written before it acts: the rollout's row, the
 *     frozen set and each release go through the store, whose jobs commit
 *     in the order they are submitted, and a command is queued only in
 *     the callback of its release.
 *   - Wave k+1 has no released command before every command of wave k
 *     has an outcome, the budget holds, the bake time has passed and the
 *     gate (if any) is open.
 *   - While the latch is set no command of the forward dispatch is sent,
 *     across restarts (the latch is read back at load).
 *   - A command is sent at most once per release; the agent answers a
 *     command it already carried out from the target's ledger, so a
 *     restart never applies anything twice.  A retry (attempt > 0, a new
 *     command id) is not answered from the failed row of the run it
 *     retries; the agent holds it by its id until its outcome is
 *     written, and the pipeline skips what is applied.
 *
 * The "plan" kind is one wave of 100% with the same caps, no budget and
 * plan commands: agents rehearse in rolled-back transactions.  The
 * "baseline" kind is shaped the same, with baseline commands: each agent
 * records on its target what the tool's ledger (the dispatch's from) says
 * already ran, or refuses with the difference; nothing is rolled back.
 * Both are "probes" below: no failure budget, no rollback, a verdict per
 * target.
 *
 * Restart: fl_rollout_load() reads the rollouts, their dispatches and
 * commands; released commands without an outcome are in flight (their
 * target_timeout starts again), held ones wait for their wave.
 */
#include "coordinator/rollout.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/map.h"
#include "common/parse.h"
#include "coordinator/dispatch.h"
#include "coordinator/registry.h"
#include "coordinator/store.h"
#include "coordinator/waves.h"
#include "proto/layout.h"

/* Finished rollouts kept in memory after a restart (for list, status). */
#define S_LOAD_FINISHED 200
/* Failures listed in a status reply. */
#define S_FAILURES_MAX 200

typedef enum {
    S_RUNNING = 0,
    S_HALTED,
    S_COMPLETED,
    S_ROLLING_BACK,
    S_ROLLBACK_FAILED,
    S_ROLLED_BACK
} s_status;

static const char *const s_status_names[] = {
    "running", "halted", "completed", "rolling_back", "rollback_failed",
    "rolled_back"};

typedef enum {
    S_DISPATCHING = 0,
    S_BAKING,
    S_GATED
} s_wave_state;

static const char *const s_wave_state_names[] = {"dispatching", "baking",
                                                 "gated"};

/* One dispatch as the engine walks it: its commands in order, in waves. */
typedef struct {
    fl_co_dispatch_t *d;
    size_t *order;            /* indexes into d->commands */
    size_t *start;            /* nranges + 1 offsets into order */
    size_t nranges;
    uint32_t *agent_of, *server_of; /* per command: group indexes */
    int64_t *flight_agent, *flight_server;
    size_t nagents, nservers;
    uint8_t *inflight;        /* per command: counted in the flights */
    int64_t flight;
    size_t cur;               /* the range being run */
} s_phase_t;

struct fl_co_rollout {
    char id[33];
    char kind[12];            /* apply, plan, baseline */
    fl_co_bundle_t *bundle;
    char *selector;
    char *operator_name;
    fl_waves_policy_t pol;
    char **specs;             /* each wave as written */
    size_t nwaves;
    s_phase_t fwd;
    fl_co_dispatch_t **rbs;   /* rollback dispatches, oldest first */
    size_t nrbs;
    s_phase_t rb;             /* the newest one's */
    int status;
    int halted;
    int aborted;              /* the halt came with --abort (until resume) */
    int abort_written;        /* ... and is written: fl_rollout_aborted */
    char *halt_reason;
    int wave;                 /* the current wave, from 0 */
    int wave_state;
    int64_t bake_until;       /* Unix ms */
    int64_t failures_acked, wave_failures_acked;
    int auto_rolled_back;
    int64_t created_wall, finished_wall; /* Unix seconds */
    int64_t version;          /* bumped on every change, for watchers;
                                 starts from the wall clock (s_version0) */
    int started;              /* its row is written: it may step */
    fl_co_waiter_t *waiters;  /* long-polls of rollout.status */
};

/* Bake times outlive a restart: they are wall-clock times. */
static int64_t
s_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The policy from a request's arguments, or from the JSON it is stored as. */

static const char *
s_get_req(void *ctx, const char *key)
{
    return fl_co_arg(ctx, key);
}

static const char *
s_get_json(void *ctx, const char *key)
{
    static char num[32];
    json_t *v = json_object_get(ctx, key);

    if (json_is_integer(v)) {
        /* Used at once by the parser, before the next call. */
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        return num;
    }
    return json_string_value(v);
}

/* Phases. */

static const char *
s_server_of(const fl_co_target_t *t)
{
    /* Targets say which PostgreSQL server they live on with the label
     * "server"; otherwise an agent sits beside one server (DESIGN.md). */
    for (size_t i = 0; i < t->labels.n; i++)
        if (strcmp(t->labels.keys[i], "server") == 0)
            return t->labels.values[i];
    return t->agent->key;
}

static uint32_t
s_intern(fl_map_t *m, const char *key, size_t *n)
{
    void *v = fl_map_gets(m, key);

    if (v == NULL) {
        v = (void *)(uintptr_t)(++*n);
        fl_map_puts(m, key, v);
    }
    return (uint32_t)((uintptr_t)v - 1);
}

/* A plan or a baseline: one wave, no budget, no rollback, verdicts. */
static int
s_probe(const fl_co_rollout_t *r)
{
    return strcmp(r->kind, "plan") == 0 || strcmp(r->kind, "baseline") == 0;
}

static int
s_order_fwd(const void *x, const void *y, void *arg)
{
    const fl_co_command_t *c = arg;
    const fl_co_command_t *a = &c[*(const size_t *)x];
    const fl_co_command_t *b = &c[*(const size_t *)y];

    if (a->wave != b->wave)
        return a->wave < b->wave ? -1 : 1;
    return a->position < b->position ? -1 : a->position > b->position;
}

static int
s_order_rb(const void *x, const void *y, void *arg)
{
    return -s_order_fwd(x, y, arg);
}

static void
s_phase_release(s_phase_t *p)
{
    free(p->order);
    free(p->start);
    free(p->agent_of);
    free(p->server_of);
    free(p->flight_agent);
    free(p->flight_server);
    free(p->inflight);
    memset(p, 0, sizeof(*p));
}

/* Orders d's commands (forward: waves ascending; rollback: descending). */
static void
s_phase_init(s_phase_t *p, fl_co_dispatch_t *d, int reverse)
{
    size_t n = d->ncommands;
    fl_map_t *agents = fl_map_new(), *servers = fl_map_new();

    s_phase_release(p);
    p->d = d;
    p->order = fl_calloc(n + 1, sizeof(*p->order));
    p->start = fl_calloc(n + 2, sizeof(*p->start));
    p->agent_of = fl_calloc(n + 1, sizeof(*p->agent_of));
    p->server_of = fl_calloc(n + 1, sizeof(*p->server_of));
    p->inflight = fl_calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++)
        p->order[i] = i;
    qsort_r(p->order, n, sizeof(*p->order),
            reverse ? s_order_rb : s_order_fwd, d->commands);
    for (size_t i = 0; i < n; i++) {
        const fl_co_command_t *c = &d->commands[p->order[i]];
        if (i == 0 || c->wave != d->commands[p->order[i - 1]].wave)
            p->start[p->nranges++] = i;
    }
    p->start[p->nranges] = n;
    for (size_t i = 0; i < n; i++) {
        fl_co_command_t *c = &d->commands[i];
        p->agent_of[i] = s_intern(agents, c->agent->key, &p->nagents);
        p->server_of[i] = s_intern(servers, s_server_of(c->target),
                                   &p->nservers);
    }
    p->flight_agent = fl_calloc(p->nagents + 1, sizeof(int64_t));
    p->flight_server = fl_calloc(p->nservers + 1, sizeof(int64_t));
    /* Released and without an outcome: in flight (after a restart). */
    for (size_t i = 0; i < n; i++) {
        fl_co_command_t *c = &d->commands[i];
        if (c->released && c->status == FL_CO_PENDING &&
            c->state != FL_CO_CMD_HELD) {
            p->inflight[i] = 1;
            p->flight++;
            p->flight_agent[p->agent_of[i]]++;
            p->flight_server[p->server_of[i]]++;
            c->sent_ms = fl_co_now_ms();
        }
    }
    fl_map_destroy(&agents);
    fl_map_destroy(&servers);
}

static void
s_flight_add(s_phase_t *p, size_t i, int delta)
{
    p->inflight[i] = delta > 0;
    p->flight += delta;
    p->flight_agent[p->agent_of[i]] += delta;
    p->flight_server[p->server_of[i]] += delta;
}

/* Rollouts in memory. */

static void s_answer_waiters(fl_co_server_t *s, fl_co_rollout_t *r,
                             int force);

static void
s_rollout_free(fl_co_rollout_t *r)
{
    fl_co_waiters_free(&r->waiters);
    for (size_t i = 0; i < r->nwaves; i++)
        free(r->specs[i]);
    free(r->specs);
    s_phase_release(&r->fwd);
    s_phase_release(&r->rb);
    free(r->rbs);
    free(r->selector);
    free(r->operator_name);
    free(r->halt_reason);
    fl_waves_policy_release(&r->pol);
    free(r);
}

void
fl_rollout_free_all(fl_co_server_t *s)
{
    fl_co_rollout_t *r = NULL;
    size_t pos = 0;

    if (s->rollouts == NULL)
        return;
    while ((r = fl_map_next(s->rollouts, &pos)) != NULL) {
        r->fwd.d->rollout = NULL;
        for (size_t i = 0; i < r->nrbs; i++)
            r->rbs[i]->rollout = NULL;
        s_rollout_free(r);
    }
    fl_map_destroy(&s->rollouts);
}

static int
s_final(const fl_co_rollout_t *r)
{
    return r->status == S_COMPLETED || r->status == S_ROLLED_BACK;
}

static const char *
s_shown_status(const fl_co_rollout_t *r)
{
    if (r->status == S_RUNNING && r->wave_state == S_GATED)
        return "waiting";
    return s_status_names[r->status];
}

/*
 * Where a rollout's version starts: the wall clock in microseconds, so
 * that it is greater than any version the rollout had in an earlier life
 * of the coordinator (one per change: far fewer than one a microsecond).
 * A watcher that asked before a restart with its last version is then
 * answered at once; before, a restarted coordinator counted from 0 and
 * held such a watcher until its wait ended, or until the rollout had
 * changed as often again.  A clock set back across a restart brings that
 * wait back, once.
 */
static int64_t
s_version0(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Writes the rollout's row; done (may be NULL) runs once it is written. */
static void
s_save(fl_co_server_t *s, fl_co_rollout_t *r, fl_store_done_fn done,
       void *arg, void (*release)(void *))
{
    fl_store_job_t *job = fl_store_job_new(FL_STORE_SQL);
    char wave[16], bake[24], fa[24], wfa[24];
    fl_buf_t rbs = FL_BUF_INIT(0);
    const char *p[12];

    snprintf(wave, sizeof(wave), "%d", r->wave);
    snprintf(bake, sizeof(bake), "%lld", (long long)r->bake_until);
    snprintf(fa, sizeof(fa), "%lld", (long long)r->failures_acked);
    snprintf(wfa, sizeof(wfa), "%lld", (long long)r->wave_failures_acked);
    fl_buf_adds(&rbs, "");
    for (size_t i = 0; i < r->nrbs; i++)
        fl_buf_addf(&rbs, "%s%s", i ? "," : "", r->rbs[i]->id);
    p[0] = r->id;
    p[1] = s_status_names[r->status];
    p[2] = r->halted ? "t" : "f";
    p[3] = r->halt_reason;
    p[4] = wave;
    p[5] = s_wave_state_names[r->wave_state];
    p[6] = r->wave_state == S_BAKING ? bake : NULL;
    p[7] = fa;
    p[8] = wfa;
    p[9] = r->nrbs ? rbs.data : NULL;
    p[10] = r->auto_rolled_back ? "t" : "f";
    p[11] = r->halted && r->aborted ? "t" : "f";
    fl_store_job_sql(job,
        "UPDATE flotilla_control.rollouts SET status = $2, halted = $3,"
        " halt_reason = $4, wave = $5, wave_state = $6, bake_until ="
        " to_timestamp($7::bigint / 1000.0), failures_acked = $8,"
        " wave_failures_acked = $9, rollback_id = $10,"
        " auto_rolled_back = $11, aborted = $12, updated_at = now(),"
        " finished_at = CASE WHEN $2 IN ('completed', 'rolled_back') THEN"
        " now() END WHERE id = $1", 12, p);
    job->done = done;
    job->arg = arg;
    job->release = release;
    fl_store_submit(s->store, job);
    fl_buf_release(&rbs);
    r->version++;
    s_answer_waiters(s, r, 0);
}

static void
s_event(fl_co_server_t *s, fl_co_rollout_t *r, const char *kind,
        const char *message)
{
    fl_log_field f[2] = {{"rollout", r->id}, {"bundle", r->bundle->id}};

    fl_log_emit(FL_LOG_INFO, "rollout", f, 2, "rollout %s: %s", r->id,
                message);
    fl_dispatch_event(s, kind, NULL, NULL, r->id, NULL,
                      s_shown_status(r), message);
}

/* Counting. */

static int
s_is_failure(const fl_co_rollout_t *r, const fl_co_command_t *c)
{
    switch (c->status) {
    case FL_CO_FAILED:
    case FL_CO_REFUSED:
        return 1;
    case FL_CO_CANCELLED:
        /*
         * Sent, then cancelled (halt --abort, or its agent stopping): the
         * statement was cancelled and its transaction rolled back, so the
         * target is as it was: not a failure of the bundle, and not
         * counted against the budget.  Never sent: not dispatched.
         */
        return 0;
    case FL_CO_UNREACHABLE:
        return !r->pol.unreachable_skip;
    default:
        return 0;
    }
}

/*
 * deciding: failures decided (by an agent's result, or by the
 * coordinator: unreachable, timed out) whose outcome is still being
 * written.  Nothing more is released while they would exceed the budget
 * (s_release_range): a batch of results runs one scheduling pass per
 * result, and a pass after the one that decided targets unreachable did
 * not see them, so it released the next targets of the wave, whose
 * releases were written, and sent, before the outcomes that exceeded
 * the budget.  The halt itself waits for them to be written, so that
 * the accounting it shows counts them (s_check_budget).
 */
typedef struct {
    size_t size, done, ok, failures, unreachable, flight, held, deciding;
    size_t unsent; /* of done: settled without being sent ("not
                      dispatched": the rollout ended first) */
} s_counts_t;

static s_counts_t
s_range_counts(const fl_co_rollout_t *r, const s_phase_t *p, size_t k)
{
    s_counts_t n;

    memset(&n, 0, sizeof(n));
    if (p->d == NULL || k >= p->nranges)
        return n; /* a phase not started (no rollback yet) */
    for (size_t i = p->start[k]; i < p->start[k + 1]; i++) {
        size_t ci = p->order[i];
        const fl_co_command_t *c = &p->d->commands[ci];

        n.size++;
        if (c->state == FL_CO_CMD_DONE) {
            n.done++;
            n.ok += c->status == FL_CO_OK;
            n.failures += s_is_failure(r, c);
            n.unreachable += c->status == FL_CO_UNREACHABLE;
            n.unsent += c->status == FL_CO_CANCELLED && !c->sent_once;
        } else if (s_final(r) && !c->sent_once) {
            /* Being ended as not dispatched (s_finish, the decision being
             * written): said so already, not "waiting" (the status a
             * watch gets at the end). */
            n.done++;
            n.unsent++;
        } else if (c->state == FL_CO_CMD_HELD) {
            n.held++;
        } else if (c->state == FL_CO_CMD_RECORDING) {
            n.deciding += s_is_failure(r, c);
        }
        n.flight += p->inflight[ci];
    }
    return n;
}

static size_t
s_total_failures(const fl_co_rollout_t *r)
{
    size_t n = 0;

    FL_ASSERT(r->fwd.d != NULL); /* every rollout has its forward dispatch */
    for (size_t i = 0; i < r->fwd.d->ncommands; i++)
        n += r->fwd.d->commands[i].state == FL_CO_CMD_DONE &&
             s_is_failure(r, &r->fwd.d->commands[i]);
    return n;
}


/* State changes. */

static void s_step(fl_co_server_t *s, fl_co_rollout_t *r);
static void s_rollback_start(fl_co_server_t *s, fl_co_rollout_t *r,
                             const char *why);

/* Commands never sent are ended so that the dispatch ends. */
static void
s_end_held(fl_co_server_t *s, fl_co_rollout_t *r)
{
    for (size_t i = 0; i < r->fwd.d->ncommands; i++) {
        fl_co_command_t *c = &r->fwd.d->commands[i];
        if (c->state == FL_CO_CMD_HELD)
            fl_dispatch_decide(s, c, FL_CO_CANCELLED, "not dispatched: the "
                               "rollout ended before its turn", NULL);
    }
}

static void
s_finish(fl_co_server_t *s, fl_co_rollout_t *r, int status, const char *msg)
{
    r->status = status;
    r->finished_wall = fl_co_wall_s();
    s_save(s, r, NULL, NULL, NULL);
    s_event(s, r, status == S_COMPLETED ? "rollout.completed"
                                        : "rollout.rolled_back", msg);
    s_end_held(s, r);
}

/*
 * Clears the latch (a resume, a rollback starting) and the abort with
 * it: an abort belongs to the halt it came with, so a later plain halt
 * (of the rollback, say) must not cancel the runs agents hold at their
 * hello.
 */
static void
s_unhalt(fl_co_rollout_t *r)
{
    r->halted = 0;
    r->aborted = 0;
    r->abort_written = 0;
}

static void
s_halt(fl_co_server_t *s, fl_co_rollout_t *r, const char *reason,
       fl_store_done_fn done, void *arg, void (*release)(void *))
{
    r->halted = 1;
    free(r->halt_reason);
    r->halt_reason = fl_strdup(reason);
    if (r->status == S_RUNNING)
        r->status = S_HALTED;
    s_save(s, r, done, arg, release);
    s_event(s, r, "rollout.halted", reason);
}

/*
 * Whether a failure budget is exceeded by the wave's failures (w, those
 * being written included) and the rollout's, with `more` failures not
 * yet counted in either; why (when not NULL) gets which.
 */
static int
s_over_budget(const fl_co_rollout_t *r, const s_counts_t *w, size_t more,
              char *why, size_t whylen)
{
    int64_t wf = (int64_t)w->failures + (int64_t)w->deciding +
                 (int64_t)more - r->wave_failures_acked;
    int64_t tf = (int64_t)s_total_failures(r) + (int64_t)w->deciding +
                 (int64_t)more - r->failures_acked;
    char budget[32];

    FL_ASSERT(r->fwd.d != NULL); /* every rollout has its forward dispatch */
    if (s_probe(r))
        return 0;
    if (fl_waves_exceeded(&r->pol.max_failures, wf, w->size)) {
        fl_waves_budget_text(budget, sizeof(budget), &r->pol.max_failures);
        if (why != NULL)
            snprintf(why, whylen, "wave %d: %lld failures of %zu targets "
                     "exceed the wave's budget (max_failures %s)",
                     r->wave + 1, (long long)wf, w->size, budget);
        return 1;
    }
    if (r->pol.has_total &&
        fl_waves_exceeded(&r->pol.max_failures_total, tf,
                          r->fwd.d->ncommands)) {
        fl_waves_budget_text(budget, sizeof(budget),
                             &r->pol.max_failures_total);
        if (why != NULL)
            snprintf(why, whylen, "%lld failures of %zu targets exceed the "
                     "rollout's budget (max_failures_total %s)",
                     (long long)tf, r->fwd.d->ncommands, budget);
        return 1;
    }
    return 0;
}

/* 1 (and the rollout halted) when a failure budget is exceeded by the
 * failures written. */
static int
s_check_budget(fl_co_server_t *s, fl_co_rollout_t *r, const s_counts_t *w)
{
    char why[256];
    s_counts_t written = *w;

    written.deciding = 0;
    if (!s_over_budget(r, &written, 0, why, sizeof(why)))
        return 0;
    if (r->pol.on_failure_rollback && !r->auto_rolled_back) {
        /*
         * Straight to the rollback, whose start is written: the halt's
         * own write answered the watchers, and a `watch` then saw the
         * rollout halted, and ended (exit 7), while its rollback began
         * (seen in CI once failures being written counted against the
         * budget, in a pass no answer had just preceded).
         */
        free(r->halt_reason);
        r->halt_reason = fl_strdup(why);
        s_event(s, r, "rollout.halted", why);
        r->auto_rolled_back = 1;
        s_rollback_start(s, r, "on_failure: rollback");
        return 1;
    }
    s_halt(s, r, why, NULL, NULL, NULL);
    return 1;
}

/*
 * Its agent offline (or never seen, once the agents have had the
 * restart_grace to come back after a restart), the target gone from its
 * agent's reports, or its database not answering.
 */
static int
s_unreachable(const fl_co_target_t *t)
{
    return !t->reported || t->agent->state != FL_CO_AGENT_ONLINE ||
           t->error != NULL;
}

/* Releases range k of phase p within the caps; returns what it released. */
static size_t
s_release_range(fl_co_server_t *s, fl_co_rollout_t *r, s_phase_t *p,
                size_t k)
{
    fl_co_command_t **out = NULL;
    size_t n = 0, failed = 0;
    s_counts_t w;
    int over = 0, in_grace = 0;
    int64_t grace = 0;

    if (k >= p->nranges)
        return 0;
    /*
     * Agents not seen since a restart may be reconnecting, after a delay
     * that grew while the coordinator was down (up to their
     * reconnect_max, 30 s by default): waited for during restart_grace,
     * never less than heartbeat_timeout.  Before, a heartbeat timeout
     * (10 s), and a routine restart failed a healthy wave as unreachable
     * (found by an audit).
     */
    grace = s->cfg->restart_grace_ms > s->cfg->heartbeat_timeout_ms
                ? s->cfg->restart_grace_ms
                : s->cfg->heartbeat_timeout_ms;
    in_grace = fl_co_now_ms() - s->started_ms < grace;
    w = s_range_counts(r, p, k);
    /* Failures being written already exceed it: nothing is sent. */
    over = p == &r->fwd && s_over_budget(r, &w, 0, NULL, 0);
    out = fl_calloc(p->start[k + 1] - p->start[k] + 1, sizeof(*out));
    for (size_t i = p->start[k]; i < p->start[k + 1]; i++) {
        size_t ci = p->order[i];
        fl_co_command_t *c = &p->d->commands[ci];

        if (!over && r->pol.max_parallel > 0 &&
            p->flight >= r->pol.max_parallel)
            break;
        if (c->state != FL_CO_CMD_HELD)
            continue;
        if (r->pol.per_agent > 0 &&
            p->flight_agent[p->agent_of[ci]] >= r->pol.per_agent)
            continue;
        if (r->pol.per_server > 0 &&
            p->flight_server[p->server_of[ci]] >= r->pol.per_server)
            continue;
        if (c->agent->state == FL_CO_AGENT_UNKNOWN && in_grace)
            continue;
        if (s_unreachable(c->target)) {
            char *why = fl_asprintf("target \"%s\" is %s (agent \"%s\" %s)",
                                    c->target->name,
                                    fl_registry_reachability(c->target),
                                    c->agent->name,
                                    fl_registry_state_name(c->agent->state));
            fl_dispatch_decide(s, c, FL_CO_UNREACHABLE, "unreachable: not "
                               "dispatched", why);
            free(why);
            /*
             * Recording: no longer held, not in flight, and not counted
             * yet.  Once these failures exceed the budget, nothing after
             * them is sent (the next step halts); before, the rest of the
             * wave was released in this same pass.
             */
            failed += !r->pol.unreachable_skip;
            over = over || (p == &r->fwd && s_over_budget(r, &w, failed,
                                                          NULL, 0));
            continue;
        }
        if (over)
            continue; /* the unreachable ones after it are still decided */
        s_flight_add(p, ci, 1);
        c->sent_ms = fl_co_now_ms();
        c->failed_step = NULL;
        out[n++] = c;
    }
    fl_dispatch_release(s, out, n);
    free(out);
    return n;
}

static void
s_next_wave(fl_co_server_t *s, fl_co_rollout_t *r)
{
    char msg[160];

    r->wave++;
    r->wave_state = S_DISPATCHING;
    r->wave_failures_acked = 0;
    r->fwd.cur = (size_t)r->wave;
    s_save(s, r, NULL, NULL, NULL);
    snprintf(msg, sizeof(msg), "wave %d of %zu (%s) starts", r->wave + 1,
             r->nwaves, r->specs[r->wave]);
    s_event(s, r, "rollout.wave", msg);
}

static void
s_step_forward(fl_co_server_t *s, fl_co_rollout_t *r)
{
    for (;;) {
        s_counts_t w;

        /*
         * Halted by an operator, its runs in flight go on and may fail
         * past the budget: on_failure: rollback still rolls back.  Before,
         * failures that came while halted were never checked against the
         * budget, and a resume acknowledged them (found by an audit).
         */
        if (r->halted && r->status == S_HALTED &&
            r->pol.on_failure_rollback && !r->auto_rolled_back) {
            w = s_range_counts(r, &r->fwd, (size_t)r->wave);
            if (s_over_budget(r, &w, 0, NULL, 0))
                FL_IGNORE(s_check_budget(s, r, &w));
            return;
        }
        if (r->halted || r->status != S_RUNNING)
            return;
        if (r->wave_state == S_GATED)
            return;
        if (r->wave_state == S_BAKING) {
            if (s_wall_ms() < r->bake_until)
                return;
            if (r->pol.gate_manual) {
                char msg[160];
                r->wave_state = S_GATED;
                s_save(s, r, NULL, NULL, NULL);
                snprintf(msg, sizeof(msg), "wave %d baked; waiting at the "
                         "manual gate for \"flotilla rollout resume\"",
                         r->wave + 1);
                s_event(s, r, "rollout.gate", msg);
                return;
            }
            s_next_wave(s, r);
            continue;
        }
        w = s_range_counts(r, &r->fwd, (size_t)r->wave);
        if (s_check_budget(s, r, &w))
            return;
        if (w.held > 0)
            s_release_range(s, r, &r->fwd, (size_t)r->wave);
        w = s_range_counts(r, &r->fwd, (size_t)r->wave);
        if (w.done < w.size)
            return;
        /* The wave is finished and within budget. */
        if ((size_t)r->wave + 1 >= r->nwaves) {
            char msg[160];
            snprintf(msg, sizeof(msg), "every wave finished: %zu targets "
                     "applied, %zu failed", r->fwd.d->nok,
                     s_total_failures(r));
            s_finish(s, r, S_COMPLETED, msg);
            return;
        }
        if (r->pol.bake_ms > 0) {
            char msg[160], d[32];
            r->wave_state = S_BAKING;
            r->bake_until = s_wall_ms() + r->pol.bake_ms;
            s_save(s, r, NULL, NULL, NULL);
            fl_format_duration(d, sizeof(d), r->pol.bake_ms);
            snprintf(msg, sizeof(msg), "wave %d finished; baking for %s",
                     r->wave + 1, d);
            s_event(s, r, "rollout.bake", msg);
            return;
        }
        if (r->pol.gate_manual) {
            r->wave_state = S_BAKING;
            r->bake_until = 0;
            continue; /* straight to the gate */
        }
        s_next_wave(s, r);
    }
}

/* The first wave of p with a command held, or p->nranges. */
static size_t
s_first_held(const s_phase_t *p)
{
    for (size_t k = 0; k < p->nranges; k++)
        for (size_t i = p->start[k]; i < p->start[k + 1]; i++)
            if (p->d->commands[p->order[i]].state == FL_CO_CMD_HELD)
                return k;
    return p->nranges;
}

static void
s_step_rollback(fl_co_server_t *s, fl_co_rollout_t *r)
{
    s_phase_t *p = &r->rb;

    while (!r->halted && r->status == S_ROLLING_BACK) {
        s_counts_t w = s_range_counts(r, p, p->cur);
        const fl_co_command_t *failed = NULL;
        size_t busy = 0;

        /*
         * Any failed rollback pauses the whole rollback: nothing more is
         * released, and once the rollbacks in flight have finished (their
         * outcomes recorded, so that what is reported, and what a second
         * "rollout rollback" sends again, is final) it is rollback_failed.
         */
        for (size_t i = 0; i < p->d->ncommands; i++) {
            const fl_co_command_t *c = &p->d->commands[i];
            if (c->state == FL_CO_CMD_DONE && c->status != FL_CO_OK &&
                failed == NULL)
                failed = c;
            busy += c->state != FL_CO_CMD_DONE && c->state != FL_CO_CMD_HELD;
        }
        if (failed != NULL && busy > 0)
            return;
        if (failed != NULL) {
            char *msg = fl_asprintf("the rollback of target \"%s\" failed: "
                                    "paused for the operator (\"flotilla "
                                    "rollout rollback %s\" tries again)",
                                    failed->target->name, r->id);
            r->status = S_ROLLBACK_FAILED;
            s_save(s, r, NULL, NULL, NULL);
            s_event(s, r, "rollout.rollback_failed", msg);
            free(msg);
            return;
        }
        if (p->cur >= p->nranges && s_first_held(p) < p->nranges) {
            /* One held in a wave behind: never finished unsent. */
            p->cur = s_first_held(p);
            continue;
        }
        if (p->cur >= p->nranges) {
            char msg[160];
            snprintf(msg, sizeof(msg), "every touched target is rolled back "
                     "(%zu)", p->d->nok);
            s_finish(s, r, S_ROLLED_BACK, msg);
            return;
        }
        if (w.held > 0)
            s_release_range(s, r, p, p->cur);
        w = s_range_counts(r, p, p->cur);
        if (w.done < w.size)
            return;
        p->cur++;
    }
}

static void
s_step(fl_co_server_t *s, fl_co_rollout_t *r)
{
    if (!r->started || s_final(r))
        return;
    if (r->status == S_RUNNING || r->status == S_HALTED)
        s_step_forward(s, r);
    else if (r->status == S_ROLLING_BACK)
        s_step_rollback(s, r);
}

/* Rollback. */

static int
s_rolled_back_before(const fl_co_rollout_t *r, const fl_co_target_t *t)
{
    for (size_t k = 0; k < r->nrbs; k++)
        for (size_t i = 0; i < r->rbs[k]->ncommands; i++)
            if (r->rbs[k]->commands[i].target == t &&
                r->rbs[k]->commands[i].status == FL_CO_OK)
                return 1;
    return 0;
}

static void
s_rollback_start(fl_co_server_t *s, fl_co_rollout_t *r, const char *why)
{
    fl_co_target_t **targets = fl_calloc(r->fwd.d->ncommands + 1,
                                         sizeof(*targets));
    int32_t *waves = fl_calloc(r->fwd.d->ncommands + 1, sizeof(*waves));
    fl_co_dispatch_t *d = NULL;
    size_t n = 0;
    char id[33], msg[200];

    for (size_t i = 0; i < r->fwd.nranges; i++)
        for (size_t j = r->fwd.start[i]; j < r->fwd.start[i + 1]; j++) {
            fl_co_command_t *c = &r->fwd.d->commands[r->fwd.order[j]];
            if (fl_waves_touched(c, r->id) &&
                !s_rolled_back_before(r, c->target)) {
                targets[n] = c->target;
                waves[n] = c->wave;
                n++;
            }
        }
    fl_co_new_id(id);
    d = fl_dispatch_new_held(s, id, r->bundle, "rollback", NULL, NULL,
                             r->selector,
                             r->operator_name, targets, waves, n, r->id);
    d->rollout = r;
    r->rbs = fl_reallocarray(r->rbs, r->nrbs + 1, sizeof(*r->rbs));
    r->rbs[r->nrbs++] = d;
    s_phase_init(&r->rb, d, 1);
    /* The forward dispatch can send nothing more: the status says so. */
    r->status = S_ROLLING_BACK;
    s_unhalt(r);
    s_save(s, r, NULL, NULL, NULL);
    snprintf(msg, sizeof(msg), "rollback of %zu touched targets, newest "
             "wave first (%s)", n, why);
    s_event(s, r, "rollout.rollback", msg);
    free(targets);
    free(waves);
    s_step(s, r);
}

/* Hooks from dispatch.c. */

static fl_co_rollout_t *
s_of(const fl_co_command_t *c, s_phase_t **p)
{
    fl_co_rollout_t *r = c->dispatch->rollout;

    *p = c->dispatch == r->fwd.d ? &r->fwd
         : (r->rb.d == c->dispatch ? &r->rb : NULL);
    return r;
}

static void s_retry_cancelled(fl_co_server_t *s, fl_co_rollout_t *r);

void
fl_rollout_command_done(fl_co_server_t *s, fl_co_command_t *c)
{
    s_phase_t *p = NULL;
    fl_co_rollout_t *r = s_of(c, &p);

    if (p != NULL && p->inflight[c - p->d->commands])
        s_flight_add(p, (size_t)(c - p->d->commands), -1);
    r->version++;
    /*
     * A run cancelled (halt --abort) whose outcome came after a resume:
     * the resume sent again only those already written, so these stayed
     * cancelled and the wave passed without them (found by an audit:
     * `halt --abort && resume` completed the rollout, three targets not
     * applied).  Sent again now, as the resume would have.
     */
    if (p != NULL && c->status == FL_CO_CANCELLED && !r->halted)
        s_retry_cancelled(s, r);
    s_answer_waiters(s, r, 0);
    s_step(s, r);
}

void
fl_rollout_command_held(fl_co_server_t *s, fl_co_command_t *c)
{
    s_phase_t *p = NULL;
    fl_co_rollout_t *r = s_of(c, &p);

    (void)s;
    if (p != NULL && p->inflight[c - p->d->commands])
        s_flight_add(p, (size_t)(c - p->d->commands), -1);
    r->version++;
}

int
fl_rollout_may_send(const fl_co_command_t *c)
{
    const fl_co_rollout_t *r = c->dispatch->rollout;

    if (r->halted)
        return 0;
    if (c->dispatch == r->fwd.d)
        return r->status == S_RUNNING;
    return r->status == S_ROLLING_BACK && c->dispatch == r->rb.d;
}

int
fl_rollout_aborted(const fl_co_command_t *c)
{
    const fl_co_rollout_t *r = c->dispatch->rollout;

    return r->halted && r->aborted && r->abort_written &&
           (c->dispatch == r->fwd.d || c->dispatch == r->rb.d);
}

const char *
fl_rollout_undoes(const fl_co_command_t *c)
{
    const fl_co_rollout_t *r = c->dispatch->rollout;

    return r != NULL && c->dispatch != r->fwd.d ? r->id : NULL;
}

const char *
fl_rollout_step_name(const char *step)
{
    static const char *const names[] = {"verify", "validate", "lint",
                                        "backup", "execute", "log", "verify",
                                        "rollback", "lock", "connect"};

    for (size_t i = 0; step != NULL && i < sizeof(names) / sizeof(*names);
         i++)
        if (strcmp(step, names[i]) == 0)
            return names[i];
    return "other";
}

const char *
fl_rollout_plan_verdict(const char *report, char **why)
{
    json_t *j = report ? json_loads(report, 0, NULL) : NULL;
    json_t *m = NULL;
    const char *verdict = "would fail";
    size_t i;

    *why = NULL;
    if (j == NULL)
        return "refused";
    if (json_is_true(json_object_get(j, "ok"))) {
        fl_buf_t b = FL_BUF_INIT(0);
        json_int_t pending = json_integer_value(json_object_get(j, "pending"));
        const char *because =
            json_string_value(json_object_get(j, "not_rehearsed_because"));
        size_t n = 0;

        verdict = pending > 0 ? "would apply" : "already applied";
        /*
         * What the rehearsal could not run (a migration without a
         * transaction; what fails after it may depend on it) is not
         * proven, as the single-database plan says: a verdict of its own,
         * never counted as "would apply".
         */
        fl_buf_adds(&b, "");
        json_array_foreach(json_object_get(j, "migrations"), i, m) {
            const char *v = json_string_value(json_object_get(m, "verdict"));
            if (v != NULL && strcmp(v, "not rehearsed") == 0)
                fl_buf_addf(&b, "%s%s", n++ ? ", " : "",
                            json_string_value(json_object_get(m, "version"))
                                ? json_string_value(
                                      json_object_get(m, "version"))
                                : "?");
        }
        if (n > 0 ||
            (pending > 0 && !json_is_true(json_object_get(j, "proven")))) {
            verdict = "not proven";
            *why = fl_asprintf("NOT PROVEN: %zu of %lld pending migration%s "
                               "not rehearsed%s%s%s%s%s",
                               n, (long long)pending, pending == 1 ? "" : "s",
                               n > 0 ? " (" : "", b.data, n > 0 ? ")" : "",
                               because != NULL ? ": " : "",
                               because != NULL ? because : "");
        }
        fl_buf_release(&b);
        goto done;
    }
    if (json_is_string(json_object_get(j, "problem"))) {
        /* The ledger disagrees with the bundle before anything runs. */
        verdict = "drift";
        *why = fl_strdup(json_string_value(json_object_get(j, "problem")));
        goto done;
    }
    json_array_foreach(json_object_get(j, "migrations"), i, m) {
        const char *v = json_string_value(json_object_get(m, "verdict"));
        const char *problem = json_string_value(json_object_get(m,
                                                                "problem"));
        if (v != NULL && strcmp(v, "ok") != 0 &&
            strcmp(v, "not rehearsed") != 0) {
            const char *ver = json_string_value(json_object_get(m,
                                                                "version"));

            *why = fl_asprintf("migration %s: %s", ver ? ver : "?",
                               problem ? problem : v);
            break;
        }
    }
done:
    {
        /*
         * A schema changed outside flotilla, whatever the verdict.  The
         * report is an agent's: a field missing or not text is "?".
         */
        const json_t *st = json_object_get(j, "schema_state");
        if (json_is_true(json_object_get(st, "changed"))) {
            const char *after = json_string_value(json_object_get(
                st, "recorded_after"));
            const char *at = json_string_value(json_object_get(
                st, "recorded_at"));
            char *note = fl_asprintf("the schema changed outside flotilla "
                                     "since %s at %s", after ? after : "?",
                                     at ? at : "?");
            char *both = *why ? fl_asprintf("%s; %s", *why, note) : NULL;
            if (both) {
                free(*why);
                free(note);
                *why = both;
            } else {
                *why = note;
            }
        }
    }
    json_decref(j);
    return verdict;
}

/* Status. */

static json_t *
s_counts_json(const s_counts_t *n)
{
    /* What never ran is not done (before, a wave the rollout never
     * reached said "13/13 done": found by an audit). */
    return fl_json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "size",
                        (json_int_t)n->size, "done",
                        (json_int_t)(n->done - n->unsent), "not_dispatched",
                        (json_int_t)n->unsent, "applied", (json_int_t)n->ok,
                        "failures", (json_int_t)n->failures, "unreachable",
                        (json_int_t)n->unreachable, "in_flight",
                        (json_int_t)n->flight);
}

/*
 * Where the rollbacks kept copies of the application's data (what a down
 * dropped, rows the restore replaced, written since the migration: never
 * restored, each target's `flotilla backups list` shows them): one entry
 * a target, its copies summed over the rollout's rollbacks, the first
 * S_FAILURES_MAX targets listed; *targets and *copies count them all.
 */
static json_t *
s_kept(const fl_co_rollout_t *r, size_t *targets, int64_t *copies)
{
    static char unlisted;
    json_t *list = json_array();
    fl_map_t *seen = fl_map_new();

    *targets = 0;
    *copies = 0;
    for (size_t k = 0; k < r->nrbs; k++)
        for (size_t i = 0; i < r->rbs[k]->ncommands; i++) {
            const fl_co_command_t *c = &r->rbs[k]->commands[i];
            void *v = NULL;
            json_t *e = NULL;

            if (c->state != FL_CO_CMD_DONE || c->kept <= 0)
                continue;
            *copies += c->kept;
            if ((v = fl_map_gets(seen, c->target->name)) == &unlisted)
                continue;
            if ((e = v) != NULL) {
                json_object_set_new(
                    e, "copies",
                    json_integer(json_integer_value(json_object_get(
                                     e, "copies")) + (json_int_t)c->kept));
                continue;
            }
            (*targets)++;
            if (json_array_size(list) >= S_FAILURES_MAX) {
                fl_map_puts(seen, c->target->name, &unlisted);
                continue;
            }
            e = fl_json_pack("{s:s, s:s, s:I}", "target", c->target->name,
                             "agent", c->agent->name, "copies",
                             (json_int_t)c->kept);
            json_array_append_new(list, e);
            fl_map_puts(seen, c->target->name, e);
        }
    fl_map_destroy(&seen);
    return list;
}

static json_t *
s_accounting(const fl_co_rollout_t *r)
{
    size_t dispatched = 0, applied = 0, failed = 0, unreachable = 0;
    size_t cancelled = 0;
    size_t not_dispatched = 0, pending = 0, untouched = 0, unconfirmed = 0;
    size_t rolled_back = 0, rollback_failed = 0;

    for (size_t i = 0; i < r->fwd.d->ncommands; i++) {
        const fl_co_command_t *c = &r->fwd.d->commands[i];
        const fl_co_target_t *t = c->target;
        int touched = 0;

        dispatched += c->sent_once;
        if (c->state == FL_CO_CMD_DONE) {
            applied += c->status == FL_CO_OK;
            failed += c->status == FL_CO_FAILED ||
                      c->status == FL_CO_REFUSED;
            cancelled += c->status == FL_CO_CANCELLED && c->sent_once;
            unreachable += c->status == FL_CO_UNREACHABLE;
            not_dispatched += c->status == FL_CO_CANCELLED && !c->sent_once;
        } else if (s_final(r) && !c->sent_once) {
            not_dispatched++; /* being ended so (s_range_counts) */
        } else {
            pending++;
        }
        /* Untouched: never sent anything, and its ledger (as its agent
         * last reported it) confirms it: no row names the rollout. */
        touched = fl_waves_has_row_of(t, r->id, 0);
        for (size_t k = 0; k < r->nrbs && !touched; k++)
            touched = fl_waves_has_row_of(t, r->rbs[k]->id, 0);
        if (c->sent_once)
            continue;
        /* Its ledger not known now: its agent offline, or the read
         * failed (a stale report confirms nothing). */
        if (!t->known || s_unreachable(t))
            unconfirmed++;
        else if (!touched)
            untouched++;
    }
    for (size_t k = 0; k < r->nrbs; k++) {
        rolled_back += r->rbs[k]->nok;
        if (k + 1 == r->nrbs)
            rollback_failed = r->rbs[k]->nfailed + r->rbs[k]->nrefused +
                              r->rbs[k]->ncancelled +
                              r->rbs[k]->nunreachable;
    }
    return fl_json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                        "s:I, s:I}",
                        "planned", (json_int_t)r->fwd.d->ncommands,
                        "dispatched", (json_int_t)dispatched, "applied",
                        (json_int_t)applied, "failed", (json_int_t)failed,
                        "cancelled", (json_int_t)cancelled,
                        "unreachable", (json_int_t)unreachable,
                        "rolled_back", (json_int_t)rolled_back,
                        "rollback_failed", (json_int_t)rollback_failed,
                        "untouched", (json_int_t)untouched,
                        "untouched_unconfirmed", (json_int_t)unconfirmed,
                        "not_dispatched", (json_int_t)not_dispatched,
                        "pending", (json_int_t)pending);
}

static json_t *
s_failure_json(const fl_co_command_t *c, const char *phase)
{
    const fl_co_detail_t *d = c->detail;
    static const char *const names[] = {"pending", "ok", "failed", "refused",
                                        "cancelled", "unreachable"};

    return fl_json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?, s:s?, s:s?}",
                        "phase", phase, "target", c->target->name, "agent",
                        c->agent->name, "wave", (json_int_t)c->wave + 1,
                        "status", names[c->status], "step", c->failed_step,
                        "reason",
                        d ? (d->error ? d->error : d->message) : NULL,
                        "detail", d ? d->detail : NULL);
}

static json_t *
s_json(const fl_co_rollout_t *r, int full)
{
    json_t *o = NULL, *waves = json_array(), *fails = json_array();
    size_t nf = 0;
    int64_t bake_left = 0;

    if (r->wave_state == S_BAKING && r->status == S_RUNNING &&
        r->bake_until > s_wall_ms())
        bake_left = r->bake_until - s_wall_ms();
    for (size_t k = 0; k < r->fwd.nranges && k < r->nwaves; k++) {
        s_counts_t n = s_range_counts(r, &r->fwd, k);
        json_t *w = s_counts_json(&n);
        const char *state = (int)k < r->wave    ? "finished"
                            : (int)k > r->wave  ? "waiting"
                            : s_final(r) || r->status >= S_ROLLING_BACK
                                ? "finished"
                                : s_wave_state_names[r->wave_state];

        if ((int)k == r->wave && r->status == S_RUNNING &&
            r->wave_state == S_DISPATCHING && n.done == n.size)
            state = "finished";
        if (n.size > 0 && n.unsent == n.size)
            state = "not dispatched";
        json_object_set_new(w, "wave", json_integer((json_int_t)k + 1));
        json_object_set_new(w, "spec", json_string(r->specs[k]));
        json_object_set_new(w, "state", json_string(state));
        json_array_append_new(waves, w);
    }
    for (size_t i = 0; i < r->fwd.d->ncommands && nf < S_FAILURES_MAX; i++) {
        const fl_co_command_t *c = &r->fwd.d->commands[i];
        if (c->state == FL_CO_CMD_DONE && c->status != FL_CO_OK &&
            !(c->status == FL_CO_CANCELLED && !c->sent_once) &&
            !s_probe(r)) {
            json_array_append_new(fails, s_failure_json(c, "apply"));
            nf++;
        }
    }
    for (size_t k = 0; k < r->nrbs; k++)
        for (size_t i = 0; i < r->rbs[k]->ncommands && nf < S_FAILURES_MAX;
             i++) {
            const fl_co_command_t *c = &r->rbs[k]->commands[i];
            if (c->state == FL_CO_CMD_DONE && c->status != FL_CO_OK) {
                json_array_append_new(fails, s_failure_json(c, "rollback"));
                nf++;
            }
        }
    o = fl_json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s?, s:I, s:I, "
                     "s:s, s:I, s:I, s:I, s:I, s:I}",
                     "id", r->id, "kind", r->kind, "bundle", r->bundle->id,
                     "selector", r->selector, "operator", r->operator_name,
                     "status", s_shown_status(r), "halted", r->halted,
                     "halt_reason", r->halt_reason, "wave",
                     (json_int_t)r->wave + 1, "waves_total",
                     (json_int_t)r->nwaves, "wave_state",
                     s_wave_state_names[r->wave_state], "bake_remaining_ms",
                     (json_int_t)bake_left, "created", (json_int_t)r->created_wall,
                     "finished", (json_int_t)r->finished_wall, "version",
                     (json_int_t)r->version, "rollbacks",
                     (json_int_t)r->nrbs);
    json_object_set_new(o, "policy", fl_waves_policy_json(&r->pol));
    {
        size_t kept_targets = 0;
        int64_t kept_copies = 0;
        json_t *acc = s_accounting(r);

        json_object_set_new(o, "kept", s_kept(r, &kept_targets,
                                              &kept_copies));
        json_object_set_new(acc, "kept_targets",
                            json_integer((json_int_t)kept_targets));
        json_object_set_new(acc, "kept_copies",
                            json_integer((json_int_t)kept_copies));
        /* A plan or a baseline applies nothing: its verdicts say what it
         * found (before, a plan's JSON counted targets "applied"). */
        if (s_probe(r)) {
            json_object_del(acc, "applied");
            json_object_del(acc, "rolled_back");
            json_object_del(acc, "rollback_failed");
            json_object_del(acc, "kept_targets");
            json_object_del(acc, "kept_copies");
        }
        json_object_set_new(o, "accounting", acc);
    }
    if (r->rb.d != NULL) {
        /* The newest rollback: its waves run newest first. */
        const fl_co_dispatch_t *d = r->rb.d;
        json_object_set_new(
            o, "rollback",
            fl_json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "id", d->id,
                         "targets", (json_int_t)d->ncommands, "done",
                         (json_int_t)d->ndone, "rolled_back",
                         (json_int_t)d->nok, "failed",
                         (json_int_t)(d->ndone - d->nok), "wave",
                         (json_int_t)(r->rb.cur < r->rb.nranges
                                          ? r->rb.cur + 1
                                          : r->rb.nranges),
                         "waves", (json_int_t)r->rb.nranges));
    }
    json_object_set_new(o, "waves", waves);
    json_object_set_new(o, "failures", fails);
    if (s_probe(r)) {
        json_t *summary = json_object(), *targets = json_array();
        for (size_t i = 0; i < r->fwd.d->ncommands; i++) {
            const fl_co_command_t *c = &r->fwd.d->commands[i];
            const char *v = NULL;
            json_t *cur = NULL;

            if (c->state != FL_CO_CMD_DONE)
                v = "pending";
            else if (c->status == FL_CO_UNREACHABLE)
                v = "unreachable";
            else if (c->status == FL_CO_FAILED ||
                     c->status == FL_CO_CANCELLED)
                v = "error";
            else
                v = c->detail && c->detail->message ? c->detail->message
                                                    : "refused";
            {
                /* Keys in snake_case, as every other key (the verdicts
                 * themselves stay words: "would apply"). */
                char key[64];
                size_t n = 0;

                for (; v[n] && n + 1 < sizeof(key); n++)
                    key[n] = v[n] == ' ' ? '_' : v[n];
                key[n] = '\0';
                cur = json_object_get(summary, key);
                json_object_set_new(summary, key,
                                    json_integer(json_integer_value(cur) + 1));
            }
            if (full)
                json_array_append_new(
                    targets,
                    fl_json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "target",
                                 c->target->name, "agent", c->agent->name,
                                 "verdict", v, "reason",
                                 c->detail ? (c->detail->error
                                                  ? c->detail->error
                                                  : NULL)
                                           : NULL,
                                 "detail",
                                 c->detail ? c->detail->detail : NULL));
        }
        json_object_set_new(o, r->kind, summary);
        if (r->fwd.d->from != NULL)
            json_object_set_new(o, "from", fl_json_text(r->fwd.d->from));
        if (fl_version_is_set(&r->fwd.d->to_version))
            json_object_set_new(o, "to_version",
                                json_string(r->fwd.d->to_version.text));
        if (full)
            json_object_set_new(o, "targets", targets);
        else
            json_decref(targets);
    }
    if (!full) {
        json_object_del(o, "failures");
        json_object_del(o, "waves");
    }
    return o;
}

static void
s_answer_waiters(fl_co_server_t *s, fl_co_rollout_t *r, int force)
{
    fl_co_waiter_t **pp = &r->waiters;
    int64_t now = fl_co_now_ms();

    while (*pp != NULL) {
        fl_co_waiter_t *w = *pp;

        if (force || w->after < r->version || now >= w->deadline_ms) {
            fl_co_reply(s, w->rid, w->rid_len, w->request_id, FL_CO_EXIT_OK,
                        s_json(r, 1));
            *pp = w->next;
            free(w->request_id);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

/* Requests. */

typedef struct {
    fl_co_server_t *s;
    fl_co_rollout_t *r;
    unsigned char rid[FL_LINK_PEER_MAX];
    size_t rid_len;
    char *request_id;
    int abort;         /* halt --abort: cancel in flight once written */
} s_pending_t;

static s_pending_t *
s_pending_new(fl_co_server_t *s, fl_co_rollout_t *r, const unsigned char *rid,
              size_t rid_len, const char *request_id)
{
    s_pending_t *p = fl_calloc(1, sizeof(*p));

    p->s = s;
    p->r = r;
    memcpy(p->rid, rid, rid_len);
    p->rid_len = rid_len;
    p->request_id = fl_strdup(request_id);
    return p;
}

static void
s_pending_free(void *arg)
{
    s_pending_t *p = arg;

    free(p->request_id);
    free(p);
}

/* The rollout's row is written (or not): reply, and start. */
static void
s_created(fl_store_job_t *job, int rc, const fl_error_t *err, void *arg)
{
    s_pending_t *p = arg;
    fl_co_rollout_t *r = p->r;

    (void)job;
    if (rc != 0) {
        fl_co_reply_error(p->s, p->rid, p->rid_len, p->request_id,
                          FL_CO_EXIT_FAILED, err);
        fl_map_removes(p->s->rollouts, r->id);
        r->fwd.d->rollout = NULL;
        fl_dispatch_forget(p->s, r->fwd.d);
        s_rollout_free(r);
        return;
    }
    r->started = 1;
    fl_co_reply(p->s, p->rid, p->rid_len, p->request_id, FL_CO_EXIT_OK,
                s_json(r, 1));
    s_step(p->s, r);
}

static void s_abort_in_flight(fl_co_server_t *s, s_phase_t *p);

/*
 * Replies once the state the request changed is written.  halt --abort
 * cancels the statements in flight only then: a halt the control
 * database refused stops the coordinator, and its cancels, sent before,
 * would have failed targets of a rollout that, restarted, is not halted.
 */
static void
s_written(fl_store_job_t *job, int rc, const fl_error_t *err, void *arg)
{
    s_pending_t *p = arg;

    (void)job;
    /* Still halted with --abort: a resume that came while the halt was
     * being written took it back (a plain halt after the resume too),
     * and its rollout's runs are not to be cancelled. */
    if (rc == 0 && p->abort && p->r->halted && p->r->aborted) {
        p->r->abort_written = 1;
        s_abort_in_flight(p->s, &p->r->fwd);
        if (p->r->rb.d != NULL)
            s_abort_in_flight(p->s, &p->r->rb);
    }
    if (rc != 0)
        fl_co_reply_error(p->s, p->rid, p->rid_len, p->request_id,
                          FL_CO_EXIT_FAILED, err);
    else
        fl_co_reply(p->s, p->rid, p->rid_len, p->request_id, FL_CO_EXIT_OK,
                    s_json(p->r, 1));
}

/*
 * A rollout of bundle cb still running (not halted, not ended) refuses a
 * second one of it: two would stage the same bundle side by side, each
 * with its own canary and budget, and a start retried after its reply
 * timed out (created all the same) would be the second.  0, or
 * FL_ECONFLICT naming the running one.
 */
static int
s_running_of(fl_co_server_t *s, const fl_co_bundle_t *cb,
             const fl_co_rollout_t *self, fl_error_t *err)
{
    const fl_co_rollout_t *o = NULL;
    size_t pos = 0;

    while ((o = fl_map_next(s->rollouts, &pos)) != NULL) {
        /* Rolling back too: its downs and a second rollout's applies
         * would run on the same targets at once. */
        if (o == self || o->bundle == NULL ||
            strcmp(o->bundle->id, cb->id) != 0 ||
            s_probe(o) || s_final(o) || o->halted ||
            (o->status != S_RUNNING && o->status != S_ROLLING_BACK))
            continue;
        FL_ERR(err, FL_ECONFLICT, "rollout %s of bundle %s is %s (started "
               "by %s): a second rollout of the same bundle is refused",
               o->id, cb->id, o->status == S_RUNNING ? "running"
                                                     : "rolling back",
               o->operator_name);
        fl_error_set_hint(err, "Follow it with \"flotilla rollout watch %s\""
                          "; halt it first to start another.", o->id);
        return FL_ECONFLICT;
    }
    return 0;
}

static void
s_start(fl_co_server_t *s, const unsigned char *rid, size_t rid_len,
        const char *operator_name, const fl_wire_control_request_t *req)
{
    const char *kind = fl_co_arg(req, "kind");
    const char *selector = fl_co_arg(req, "selector");
    const char *from = fl_co_arg(req, "from");
    const char *to_text = fl_co_arg(req, "to_version");
    fl_version_t to = FL_VERSION_INIT;
    fl_co_rollout_t *r = fl_calloc(1, sizeof(*r));
    fl_waves_spec_t *w = NULL;
    size_t nw = 0, n = 0;
    fl_co_target_t **sel_targets = NULL, **targets = NULL;
    int32_t *waves = NULL;
    fl_co_bundle_t *cb = NULL;
    json_t *pj = NULL, *wj = NULL;
    char *ptext = NULL, *wtext = NULL, seed[24];
    fl_error_t err = FL_ERROR_INIT;
    int status = FL_CO_EXIT_USAGE;

    if (kind == NULL)
        kind = "apply";
    if (strcmp(kind, "apply") != 0 && strcmp(kind, "plan") != 0 &&
        strcmp(kind, "baseline") != 0) {
        FL_ERR(&err, FL_EINVAL, "unknown rollout kind \"%.32s\"", kind);
        goto failed;
    }
    snprintf(r->kind, sizeof(r->kind), "%s", kind);
    if (strcmp(kind, "baseline") == 0) {
        fl_layout_tool tool = FL_LAYOUT_AUTO;
        if (from == NULL && (to_text == NULL || to_text[0] == '\0')) {
            FL_ERR(&err, FL_EINVAL, "a baseline needs \"from\" (the tool "
                   "whose ledger says what ran on each target) or "
                   "\"to_version\" (what ran: every migration up to it)");
            goto failed;
        }
        if (to_text != NULL && to_text[0] != '\0' &&
            fl_version_parse_str(&to, to_text, &err) != 0) {
            fl_error_prefix(&err, "to_version: ");
            goto failed;
        }
        if (from != NULL &&
            fl_layout_tool_from_name(&tool, from, &err) != 0)
            goto failed;
        if (from != NULL && (tool == FL_LAYOUT_AUTO || tool == FL_LAYOUT_SQL ||
                             tool == FL_LAYOUT_FLOTILLA)) {
            FL_ERR(&err, FL_EINVAL, "from \"%.32s\": flotilla reads the "
                   "ledgers of diesel, golang-migrate, pop, sqlx, dbmate and "
                   "flyway", from);
            goto failed;
        }
    } else {
        from = NULL;
    }
    if (fl_waves_policy_parse(&r->pol, s_get_req, (void *)req, &err) != 0)
        goto failed;
    if (s_probe(r)) {
        /* Everywhere at once, within the same caps. */
        free(r->pol.waves);
        r->pol.waves = fl_strdup("100%");
        r->pol.bake_ms = 0;
        r->pol.gate_manual = 0;
        r->pol.on_failure_rollback = 0;
        r->pol.unreachable_skip = 1;
    }
    if (fl_waves_parse(&w, &nw, r->pol.waves, &err) != 0 ||
        fl_dispatch_prepare(s, req, "rollout", &cb, &sel_targets, &n,
                            &status, &err) != 0)
        goto failed;
    if (!s_probe(r) && s_running_of(s, cb, NULL, &err) != 0) {
        status = FL_CO_EXIT_REFUSED;
        goto failed;
    }
    if (r->pol.shuffle && r->pol.seed == 0) {
        char id[33];
        int64_t v = 0;
        fl_co_new_id(id);
        id[15] = '\0';
        for (int i = 0; i < 15; i++)
            v = v * 16 + (id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
        r->pol.seed = v ? v : 1;
    }
    fl_waves_cut(sel_targets, n, w, nw, r->pol.shuffle,
                 (uint64_t)r->pol.seed, &targets, &waves, &r->specs,
                 &r->nwaves);
    fl_co_new_id(r->id);
    r->version = s_version0();
    r->bundle = cb;
    r->selector = fl_strdup(selector ? selector : "");
    r->operator_name = fl_strdup(operator_name ? operator_name : "");
    r->created_wall = fl_co_wall_s();
    r->fwd.d = fl_dispatch_new_held(s, r->id, cb, kind, from, &to,
                                    r->selector,
                                    r->operator_name, targets, waves, n,
                                    r->id);
    r->fwd.d->rollout = r;
    s_phase_init(&r->fwd, r->fwd.d, 0);
    fl_map_puts(s->rollouts, r->id, r);
    pj = fl_waves_policy_json(&r->pol);
    wj = json_array();
    for (size_t i = 0; i < r->nwaves; i++)
        json_array_append_new(wj, json_string(r->specs[i]));
    ptext = json_dumps(pj, JSON_COMPACT);
    wtext = json_dumps(wj, JSON_COMPACT);
    snprintf(seed, sizeof(seed), "%lld", (long long)r->pol.seed);
    {
        const char *p[9] = {r->id, r->kind, cb->id, r->selector,
                            r->operator_name, ptext, seed, wtext,
                            "running"};
        fl_store_job_t *job = fl_store_job_new(FL_STORE_SQL);

        fl_store_job_sql(job,
            "INSERT INTO flotilla_control.rollouts (id, kind, bundle_id,"
            " selector, operator, policy, seed, waves, status) VALUES ($1,"
            " $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9)", 9, p);
        job->done = s_created;
        job->arg = s_pending_new(s, r, rid, rid_len, req->id);
        job->release = s_pending_free;
        fl_store_submit(s->store, job);
    }
    {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s of bundle %s on %zu targets in %zu "
                 "waves, by %s", kind, cb->id, n, r->nwaves,
                 r->operator_name);
        s_event(s, r, "rollout.created", msg);
    }
    r = NULL;
    goto cleanup;
failed:
    fl_co_reply_error(s, rid, rid_len, req->id, status, &err);
cleanup:
    if (r != NULL)
        s_rollout_free(r);
    if (w != NULL)
        fl_waves_release(w, nw);
    free(sel_targets);
    free(targets);
    free(waves);
    json_decref(pj);
    json_decref(wj);
    free(ptext);
    free(wtext);
    fl_error_clear(&err);
}

static fl_co_rollout_t *
s_find(fl_co_server_t *s, const unsigned char *rid, size_t rid_len,
       const fl_wire_control_request_t *req)
{
    const char *id = fl_co_arg(req, "id");
    fl_co_rollout_t *r = id ? fl_map_gets(s->rollouts, id) : NULL;
    fl_error_t err = FL_ERROR_INIT;

    if (r == NULL) {
        FL_ERR(&err, FL_ENOTFOUND, "no rollout \"%.40s\"", id ? id : "");
        fl_error_set_hint(&err, "\"flotilla rollout list\" lists the "
                                "rollouts this coordinator knows.");
        fl_co_reply_error(s, rid, rid_len, req->id, FL_CO_EXIT_FAILED, &err);
        fl_error_clear(&err);
    }
    return r;
}

static void
s_refuse(fl_co_server_t *s, const unsigned char *rid, size_t rid_len,
         const fl_wire_control_request_t *req, const fl_co_rollout_t *r,
         const char *what)
{
    fl_error_t err = FL_ERROR_INIT;

    FL_ERR(&err, FL_ECONFLICT, "rollout %s is %s: %s", r->id,
           s_shown_status(r), what);
    fl_co_reply_error(s, rid, rid_len, req->id, FL_CO_EXIT_FAILED, &err);
    fl_error_clear(&err);
}

static void
s_status_request(fl_co_server_t *s, const unsigned char *rid,
                 size_t rid_len, const fl_wire_control_request_t *req)
{
    fl_co_rollout_t *r = s_find(s, rid, rid_len, req);
    fl_co_waiter_t *w = NULL;

    if (r == NULL ||
        (w = fl_co_waiter_new(s, rid, rid_len, req, -1)) == NULL)
        return;
    w->next = r->waiters;
    r->waiters = w;
    s_answer_waiters(s, r, 0);
}

static int
s_created_cmp(const void *x, const void *y)
{
    const fl_co_rollout_t *a = *(fl_co_rollout_t *const *)x;
    const fl_co_rollout_t *b = *(fl_co_rollout_t *const *)y;

    if (a->created_wall != b->created_wall)
        return a->created_wall < b->created_wall ? -1 : 1;
    return strcmp(a->id, b->id);
}

static json_t *
s_list(fl_co_server_t *s)
{
    fl_co_rollout_t **all = fl_calloc(fl_map_count(s->rollouts) + 1,
                                      sizeof(*all));
    fl_co_rollout_t *r = NULL;
    json_t *a = json_array();
    size_t n = 0, pos = 0;

    while ((r = fl_map_next(s->rollouts, &pos)) != NULL)
        if (r->started)
            all[n++] = r;
    qsort(all, n, sizeof(*all), s_created_cmp);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, s_json(all[i], 0));
    free(all);
    return a;
}

/*
 * On resume: the targets of the current wave whose runs halt --abort
 * cancelled (sent, answered cancelled: rolled back, as they were) are
 * held again as retries (fl_dispatch_retry, written before anything is
 * released), so that s_step() sends them again within the caps and each
 * is counted when it finishes.  Only while the wave is dispatching: a
 * cancelled target of a wave already finished stays cancelled (its wave
 * passed; sending it now would run it beside a later wave).  Rolling
 * back: every rollback of the rollback's dispatch so cancelled (its
 * target not rolled back, as it was), whatever its wave: each must be
 * rolled back.  Before, they counted as failed rollbacks, and resume
 * ended in rollback_failed (found by an audit).
 */
static void
s_retry_cancelled(fl_co_server_t *s, fl_co_rollout_t *r)
{
    int rb = r->status == S_ROLLING_BACK && r->rb.d != NULL;
    s_phase_t *p = rb ? &r->rb : &r->fwd;
    fl_co_command_t **cmds = NULL;
    size_t n = 0, lo = 0, hi = 0;
    char msg[160], where[32] = "";

    if (rb) {
        hi = p->start[p->nranges]; /* every wave of the rollback */
    } else if (r->status == S_RUNNING && r->wave_state == S_DISPATCHING &&
               !s_probe(r) && p->cur < p->nranges) {
        lo = p->start[p->cur];
        hi = p->start[p->cur + 1];
        snprintf(where, sizeof(where), " of wave %d", r->wave + 1);
    }
    if (lo == hi)
        return;
    cmds = fl_calloc(hi - lo + 1, sizeof(*cmds));
    for (size_t i = lo; i < hi; i++) {
        fl_co_command_t *c = &p->d->commands[p->order[i]];

        if (c->state == FL_CO_CMD_DONE && c->status == FL_CO_CANCELLED &&
            c->sent_once) {
            /*
             * Rolling back, its wave is current again: a wave whose
             * every command had an outcome, cancelled ones included, is
             * behind a coordinator that loaded it (fl_rollout_load), and
             * only the current wave is sent.  Before, a resume after a
             * restart sent the waves after it only, and ended rolled_back
             * with these never sent (found by an audit).
             */
            if (rb) {
                size_t k = 0;
                while (k + 1 < p->nranges && p->start[k + 1] <= i)
                    k++;
                if (k < p->cur)
                    p->cur = k;
            }
            cmds[n++] = c;
        }
    }
    if (n > 0) {
        fl_dispatch_retry(s, cmds, n);
        snprintf(msg, sizeof(msg), "%zu %s%s%s cancelled by halt --abort "
                 "sent again", n, rb ? "rollback" : "target",
                 n == 1 ? "" : "s", where);
        s_event(s, r, "rollout.retry", msg);
    }
    free(cmds);
}

static void
s_abort_in_flight(fl_co_server_t *s, s_phase_t *p)
{
    for (size_t i = 0; i < p->d->ncommands; i++) {
        fl_co_command_t *c = &p->d->commands[i];
        if (c->state == FL_CO_CMD_SENT)
            fl_dispatch_cancel(s, c);
    }
}

void
fl_rollout_request(fl_co_server_t *s, const unsigned char *rid,
                   size_t rid_len, const char *operator_name,
                   const fl_wire_control_request_t *req)
{
    const char *cmd = req->command + strlen("rollout.");
    fl_co_rollout_t *r = NULL;
    fl_error_t err = FL_ERROR_INIT;

    if (strcmp(cmd, "start") == 0) {
        s_start(s, rid, rid_len, operator_name, req);
        return;
    }
    if (strcmp(cmd, "list") == 0) {
        fl_co_reply(s, rid, rid_len, req->id, FL_CO_EXIT_OK, s_list(s));
        return;
    }
    if (strcmp(cmd, "status") != 0 && strcmp(cmd, "halt") != 0 &&
        strcmp(cmd, "resume") != 0 && strcmp(cmd, "rollback") != 0) {
        FL_ERR(&err, FL_EINVAL, "unknown command \"%.40s\"", req->command);
        fl_co_reply_error(s, rid, rid_len, req->id, FL_CO_EXIT_USAGE, &err);
        fl_error_clear(&err);
        return;
    }
    if (strcmp(cmd, "status") == 0) {
        s_status_request(s, rid, rid_len, req);
        return;
    }
    if ((r = s_find(s, rid, rid_len, req)) == NULL)
        return;
    if (!r->started) {
        s_refuse(s, rid, rid_len, req, r, "it is still being created");
        return;
    }
    if (strcmp(cmd, "halt") == 0) {
        const char *abort = fl_co_arg(req, "abort");
        int ab = abort != NULL && strcmp(abort, "true") == 0;
        char *why = NULL;
        s_pending_t *p = NULL;

        if (s_final(r)) {
            s_refuse(s, rid, rid_len, req, r, "there is nothing to halt");
            return;
        }
        /* Halted already (a budget, another operator): why it halted
         * stays said; an --abort is added to it, once (each one added
         * it again, and the reason grew without end). */
        if (r->halted && r->halt_reason != NULL)
            why = ab && strstr(r->halt_reason, "--abort") == NULL
                      ? fl_asprintf("%s; then --abort by %s: statements in "
                                    "flight cancelled", r->halt_reason,
                                    operator_name)
                      : fl_strdup(r->halt_reason);
        else
            why = fl_asprintf("halted by %s%s", operator_name,
                              ab ? " (--abort: statements in flight "
                                   "cancelled)" : "");
        p = s_pending_new(s, r, rid, rid_len, req->id);
        p->abort = ab;
        r->aborted |= ab;
        s_halt(s, r, why, s_written, p, s_pending_free);
        free(why);
        return;
    }
    if (strcmp(cmd, "resume") == 0) {
        const char *what = fl_co_arg(req, "what");

        if (what != NULL && strcmp(what, "halt") != 0 &&
            strcmp(what, "gate") != 0) {
            FL_ERR(&err, FL_EINVAL, "resume what: \"%.16s\" is neither "
                   "halt nor gate", what);
            fl_co_reply_error(s, rid, rid_len, req->id, FL_CO_EXIT_USAGE,
                              &err);
            fl_error_clear(&err);
            return;
        }
        /* What the operator saw and means to resume: a resume of a halt
         * that another operator resumed first must not open the gate
         * the rollout then waits at. */
        if (what != NULL && strcmp(what, "halt") == 0 && !r->halted) {
            s_refuse(s, rid, rid_len, req, r, "it is not halted (another "
                     "resume came first?); resume it again to resume what "
                     "it waits on now");
            return;
        }
        if (what != NULL && strcmp(what, "gate") == 0 &&
            (r->halted || r->status != S_RUNNING ||
             r->wave_state != S_GATED)) {
            s_refuse(s, rid, rid_len, req, r, "it is not waiting at a gate; "
                     "resume it again to resume what it waits on now");
            return;
        }
        /*
         * A second rollout of the bundle may have started while this one
         * was halted: both running would stage it side by side (found by
         * an audit: the second's canary was the first's, applied).
         */
        if (r->halted && !s_probe(r) && r->bundle != NULL &&
            s_running_of(s, r->bundle, r, &err) != 0) {
            fl_error_prefix(&err, "rollout %s stays halted: ", r->id);
            fl_co_reply_error(s, rid, rid_len, req->id, FL_CO_EXIT_REFUSED,
                              &err);
            fl_error_clear(&err);
            return;
        }
        if (r->halted) {
            s_unhalt(r);
            if (r->status == S_HALTED)
                r->status = S_RUNNING;
            s_retry_cancelled(s, r);
            /* The failures seen so far are acknowledged by the operator:
             * the budget counts from here. */
            r->failures_acked = (int64_t)s_total_failures(r);
            r->wave_failures_acked =
                (int64_t)s_range_counts(r, &r->fwd, (size_t)r->wave).failures;
            s_save(s, r, s_written,
                   s_pending_new(s, r, rid, rid_len, req->id),
                   s_pending_free);
            s_event(s, r, "rollout.resumed", "resumed by the operator");
        } else if (r->status == S_RUNNING && r->wave_state == S_GATED) {
            s_next_wave(s, r);
            s_save(s, r, s_written,
                   s_pending_new(s, r, rid, rid_len, req->id),
                   s_pending_free);
        } else {
            s_refuse(s, rid, rid_len, req, r, "neither halted nor waiting at "
                     "a gate");
            return;
        }
        s_step(s, r);
        return;
    }
    /* rollback */
    if (s_probe(r)) {
        s_refuse(s, rid, rid_len, req, r, strcmp(r->kind, "plan") == 0
                 ? "a plan changes nothing to roll back"
                 : "a baseline ran nothing to roll back (roll back each "
                   "migration as usual, or flotilla rollback)");
        return;
    }
    if (r->status == S_ROLLED_BACK || r->status == S_ROLLING_BACK) {
        s_refuse(s, rid, rid_len, req, r, "a rollback is already done or "
                 "under way");
        return;
    }
    s_rollback_start(s, r, "requested by the operator");
    s_save(s, r, s_written, s_pending_new(s, r, rid, rid_len, req->id),
           s_pending_free);
}

void
fl_rollout_tick(fl_co_server_t *s)
{
    fl_co_rollout_t *r = NULL;
    size_t pos = 0;
    int64_t now = fl_co_now_ms();

    while ((r = fl_map_next(s->rollouts, &pos)) != NULL) {
        s_phase_t *p = r->status == S_ROLLING_BACK ? &r->rb : &r->fwd;

        s_answer_waiters(s, r, 0);
        if (!r->started || s_final(r))
            continue;
        /* A target still running after target_timeout has failed. */
        if (r->pol.target_timeout_ms > 0 && p->d != NULL)
            for (size_t i = 0; i < p->d->ncommands; i++) {
                fl_co_command_t *c = &p->d->commands[i];
                char d[32], *why = NULL;

                if (!p->inflight[i] || c->state == FL_CO_CMD_RECORDING ||
                    c->state == FL_CO_CMD_DONE ||
                    now - c->sent_ms < r->pol.target_timeout_ms)
                    continue;
                fl_format_duration(d, sizeof(d), r->pol.target_timeout_ms);
                why = fl_asprintf("target \"%s\" did not finish within "
                                  "target_timeout (%s)", c->target->name, d);
                /*
                 * The run is cancelled once the failure is written (in
                 * dispatch.c): cancelled first, a coordinator that died
                 * before the write found the run's answer, cancelled,
                 * after its restart, and counted no failure (found by an
                 * audit: the next wave went on).
                 */
                c->cancel_written = c->state == FL_CO_CMD_SENT;
                fl_dispatch_decide(s, c, FL_CO_FAILED, FL_CO_TIMED_OUT, why);
                free(why);
            }
        s_step(s, r);
    }
}

/* Loading. */

int
fl_rollout_load(fl_co_server_t *s, fl_error_t *err)
{
    fl_store_rows_t rows = {0, 0, NULL};
    char lim[16];
    const char *p[1] = {lim};
    int rc = 0;

    if (s->rollouts == NULL)
        s->rollouts = fl_map_new();
    snprintf(lim, sizeof(lim), "%d", S_LOAD_FINISHED);
    rc = fl_store_query(s->store, &rows,
        "SELECT id, kind, bundle_id, selector, operator, policy::text,"
        " waves::text, status, halted, halt_reason, wave, wave_state,"
        " (extract(epoch FROM bake_until) * 1000)::bigint, failures_acked,"
        " wave_failures_acked, rollback_id, auto_rolled_back,"
        " extract(epoch FROM created_at)::bigint,"
        " COALESCE(extract(epoch FROM finished_at)::bigint, 0), aborted"
        " FROM flotilla_control.rollouts WHERE finished_at IS NULL OR id IN"
        " (SELECT id FROM flotilla_control.rollouts ORDER BY created_at DESC"
        " LIMIT $1) ORDER BY created_at", 1, p, err);
    for (size_t i = 0; rc == 0 && i < rows.nrows; i++) {
        fl_co_rollout_t *r = fl_calloc(1, sizeof(*r));
        json_t *pj = json_loads(fl_store_value(&rows, i, 5), 0, NULL);
        json_t *wj = json_loads(fl_store_value(&rows, i, 6), 0, NULL);
        const char *st = fl_store_value(&rows, i, 7);
        const char *ws = fl_store_value(&rows, i, 11);
        const char *rbs = fl_store_value(&rows, i, 15);
        int64_t v = 0;
        json_t *x = NULL;
        size_t k;

        snprintf(r->id, sizeof(r->id), "%s", fl_store_value(&rows, i, 0));
        snprintf(r->kind, sizeof(r->kind), "%s", fl_store_value(&rows, i, 1));
        r->version = s_version0();
        r->selector = fl_strdup(fl_store_value(&rows, i, 3));
        r->operator_name = fl_strdup(fl_store_value(&rows, i, 4));
        if (pj == NULL || wj == NULL ||
            fl_waves_policy_parse(&r->pol, s_get_json, pj, err) != 0) {
            if (pj == NULL || wj == NULL)
                FL_ERR(err, FL_EDB, "rollout %s: its policy or waves are "
                       "not JSON", r->id);
            rc = FL_EDB;
        }
        if (rc == 0 && json_is_integer(json_object_get(pj, "seed")))
            r->pol.seed = json_integer_value(json_object_get(pj, "seed"));
        r->nwaves = json_array_size(wj);
        r->specs = fl_calloc(r->nwaves + 1, sizeof(*r->specs));
        json_array_foreach(wj, k, x)
            r->specs[k] = fl_strdup(json_string_value(x) ? json_string_value(x)
                                                         : "?");
        json_decref(pj);
        json_decref(wj);
        for (int j = 0; j <= S_ROLLED_BACK; j++)
            if (strcmp(st, s_status_names[j]) == 0)
                r->status = j;
        for (int j = 0; j <= S_GATED; j++)
            if (strcmp(ws, s_wave_state_names[j]) == 0)
                r->wave_state = j;
        r->halted = strcmp(fl_store_value(&rows, i, 8), "t") == 0;
        if (fl_store_value(&rows, i, 9) != NULL)
            r->halt_reason = fl_strdup(fl_store_value(&rows, i, 9));
        FL_IGNORE(fl_parse_int(&v, fl_store_value(&rows, i, 10), 0,
                               INT32_MAX, NULL)); /* an int column */
        r->wave = (int)v;
        if (fl_store_value(&rows, i, 12) != NULL &&
            fl_parse_int(&v, fl_store_value(&rows, i, 12), INT64_MIN,
                         INT64_MAX, NULL) == 0)
            r->bake_until = v;
        FL_IGNORE(fl_parse_int(&r->failures_acked,
                               fl_store_value(&rows, i, 13), 0, INT64_MAX,
                               NULL));
        FL_IGNORE(fl_parse_int(&r->wave_failures_acked,
                               fl_store_value(&rows, i, 14), 0, INT64_MAX,
                               NULL));
        r->auto_rolled_back = strcmp(fl_store_value(&rows, i, 16), "t") == 0;
        r->aborted = r->halted &&
                     strcmp(fl_store_value(&rows, i, 19), "t") == 0;
        r->abort_written = r->aborted;
        FL_IGNORE(fl_parse_int(&r->created_wall, fl_store_value(&rows, i, 17),
                               0, INT64_MAX, NULL));
        FL_IGNORE(fl_parse_int(&r->finished_wall,
                               fl_store_value(&rows, i, 18), 0, INT64_MAX,
                               NULL));
        if (rc == 0 &&
            (r->fwd.d = fl_dispatch_load_id(s, r->id, err)) == NULL)
            rc = FL_EDB;
        if (rc == 0) {
            r->bundle = r->fwd.d->bundle;
            r->fwd.d->rollout = r;
            s_phase_init(&r->fwd, r->fwd.d, 0);
            r->fwd.cur = (size_t)r->wave;
        }
        while (rc == 0 && rbs != NULL && *rbs) {
            size_t len = strcspn(rbs, ",");
            char *one = fl_strndup(rbs, len);
            fl_co_dispatch_t *d = fl_dispatch_load_id(s, one, err);

            free(one);
            if (d == NULL) {
                rc = FL_EDB;
                break;
            }
            d->rollout = r;
            r->rbs = fl_reallocarray(r->rbs, r->nrbs + 1, sizeof(*r->rbs));
            r->rbs[r->nrbs++] = d;
            rbs += len;
            if (*rbs == ',')
                rbs++;
        }
        if (rc == 0 && r->nrbs > 0) {
            s_phase_init(&r->rb, r->rbs[r->nrbs - 1], 1);
            /* Ranges whose every command has an outcome are behind us. */
            while (r->rb.cur < r->rb.nranges) {
                s_counts_t n = s_range_counts(r, &r->rb, r->rb.cur);
                if (n.done < n.size)
                    break;
                r->rb.cur++;
            }
        }
        if (rc != 0) {
            fl_error_prefix(err, "loading rollout %s: ", r->id);
            if (r->fwd.d != NULL)
                r->fwd.d->rollout = NULL;
            for (size_t j = 0; j < r->nrbs; j++)
                r->rbs[j]->rollout = NULL;
            s_rollout_free(r);
            break;
        }
        r->started = 1;
        fl_map_puts(s->rollouts, r->id, r);
    }
    fl_store_rows_release(&rows);
    return rc;
}
