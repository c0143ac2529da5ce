/*
 * dispatch.c - dispatches, their commands, results and reconciliation
 * (see dispatch.h).
 *
 * A command, one per target of a dispatch:
 *
 *   writing --committed--> queued --sent--> sent --result--> recording
 *      |                     ^                |                  |
 *      |                     +--re-queued-----+ (agent back, not  |
 *      |                       holding it, ledger undecided)      |
 *      +--write failed: the dispatch is refused                   v
 *                          sent --outcome in the ledger--> recording --> done
 *
 *   writing    its row is being written with the dispatch's, in batches
 *              (fl_dispatch_create).  Nothing is sent before the commit.
 *   queued     in its agent's send queue; fl_dispatch_pump() sends up to
 *              the agent's window while the agent is online.
 *   sent       on the wire, or maybe (after a restart every pending
 *              command is "sent": we cannot know).  When the agent comes
 *              back (fl_dispatch_agent_back) a sent command is resolved:
 *              held by the agent (queued, running, or answered and not
 *              acknowledged, from its hello): it stays sent; its outcome
 *              is in the target's ledger: recorded from it; otherwise it
 *              is queued again with the same id (the agent answers a
 *              command it already carried out from its ledger, never
 *              runs it twice).
 *   recording  its outcome is being written (fl_dispatch_result, or the
 *              ledger).  A duplicate result is ignored meanwhile.
 *   done       written; the agent's result is acknowledged (result_ack),
 *              and only then may the agent forget it.  A rollout's command
 *              cancelled by halt --abort goes back to held on resume, as
 *              a retry with a new id (fl_dispatch_retry): its own
 *              outcome comes later, once.
 *
 * Invariants: a decision is written before it is sent; an outcome is
 * written before it is acknowledged; a command has at most one outcome
 * per attempt (the commands row goes from pending once, and again only
 * as a retry, under a new id).  A dispatch is done when
 * every command is; its waiters are answered as outcomes are written.
 */
#include "coordinator/dispatch.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "coordinator/registry.h"
#include "coordinator/rollout.h"
#include "coordinator/store.h"

/* Results per long-poll reply. */
#define S_REPLY_MAX 1000

static const char *const s_status_names[] = {"pending", "ok", "failed",
                                             "refused", "cancelled",
                                             "unreachable"};

static int
s_status_parse(const char *s)
{
    for (int i = FL_CO_OK; i <= FL_CO_UNREACHABLE; i++)
        if (strcmp(s, s_status_names[i]) == 0)
            return i;
    return -1;
}

/* Bundles. */

static fl_co_bundle_t *
s_bundle_add(fl_co_server_t *s, fl_bundle_t *b, const unsigned char *bytes,
             size_t len)
{
    fl_co_bundle_t *cb = fl_calloc(1, sizeof(*cb));
    fl_wire_msg_t m;
    fl_buf_t out = FL_BUF_INIT(0);

    memcpy(cb->id, fl_bundle_id(b), FL_BUNDLE_ID_HEX);
    cb->bytes = fl_malloc(len ? len : 1);
    memcpy(cb->bytes, bytes, len);
    cb->len = len;
    cb->bundle = b;
    /* The transfer, encoded once for every agent that asks for it. */
    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_BUNDLE;
    m.u.bundle.bundle_id = cb->id;
    m.u.bundle.data = cb->bytes;
    m.u.bundle.len = len;
    fl_hash_sha256(m.u.bundle.sha256, bytes, len);
    FL_ASSERT(fl_wire_encode(&out, &m, NULL) == 0); /* size-checked above */
    cb->wire_len = out.len;
    cb->wire = (unsigned char *)fl_buf_detach(&out);
    fl_map_puts(s->bundles, cb->id, cb);
    return cb;
}

static void
s_bundle_free(fl_co_bundle_t *cb)
{
    fl_bundle_destroy(&cb->bundle);
    free(cb->bytes);
    free(cb->wire);
    free(cb);
}

/*
 * A round's results or events job past this many bytes is written at
 * once, not at the round's end: a round of many long texts (each cut to
 * FL_CO_TEXT_MAX, which cleaning and COPY's escapes can make five times
 * longer) then stays under the job's 256 MiB (common/buf.h), past which
 * the coordinator would abort.
 */
#define S_JOB_FLUSH ((size_t)32 * 1024 * 1024)

static void
s_flush_events(fl_co_server_t *s)
{
    if (s->events_job != NULL) {
        fl_store_submit(s->store, s->events_job);
        s->events_job = NULL;
    }
}

/* Events: rows of this loop round, written at its end (or S_JOB_FLUSH). */

void
fl_dispatch_event(fl_co_server_t *s, const char *kind, const char *agent_key,
                  const char *target, const char *dispatch_id,
                  const char *step, const char *status, const char *message)
{
    if (s->events_job == NULL)
        s->events_job = fl_store_job_new(FL_STORE_EVENTS);
    fl_store_field(s->events_job, kind, 0);
    fl_store_field(s->events_job, agent_key, 0);
    fl_store_field(s->events_job, target, 0);
    fl_store_field(s->events_job, dispatch_id, 0);
    fl_store_field(s->events_job, step, 0);
    fl_store_field(s->events_job, status, 0);
    fl_store_field(s->events_job, message, 1);
    if (s->events_job->rows.len >= S_JOB_FLUSH)
        s_flush_events(s);
}

/* The agent's list of open commands. */

static void
s_open_add(fl_co_command_t *c)
{
    fl_co_agent_t *a = c->agent;

    c->open_prev = NULL;
    c->open_next = a->open;
    if (a->open != NULL)
        a->open->open_prev = c;
    a->open = c;
}

static void
s_open_remove(fl_co_command_t *c)
{
    if (c->open_prev != NULL)
        c->open_prev->open_next = c->open_next;
    else if (c->agent->open == c)
        c->agent->open = c->open_next;
    if (c->open_next != NULL)
        c->open_next->open_prev = c->open_prev;
    c->open_prev = c->open_next = NULL;
}

static void
s_enqueue(fl_co_command_t *c)
{
    fl_co_agent_t *a = c->agent;

    c->state = FL_CO_CMD_QUEUED;
    c->out_next = NULL;
    if (a->outq_tail != NULL)
        a->outq_tail->out_next = c;
    else
        a->outq_head = c;
    a->outq_tail = c;
}

static void
s_detail_free(fl_co_detail_t **d)
{
    if (*d == NULL)
        return;
    free((*d)->message);
    free((*d)->error);
    free((*d)->detail);
    free((*d)->hint);
    free((*d)->sqlstate);
    free((*d)->late_why);
    fl_free(d);
}

static void
s_dispatch_free(fl_co_server_t *s, fl_co_dispatch_t *d)
{
    for (size_t i = 0; i < d->ncommands; i++) {
        fl_co_command_t *c = &d->commands[i];
        if (c->state != FL_CO_CMD_DONE)
            s_open_remove(c);
        fl_map_removes(s->commands, c->id);
        s_detail_free(&c->detail);
    }
    fl_co_waiters_free(&d->waiters);
    free(d->commands);
    free(d->done_order);
    free(d->action);
    free(d->from);
    free(d->selector);
    free(d->operator_name);
    free(d);
}

static fl_co_dispatch_t *
s_dispatch_new(fl_co_server_t *s, const char *id, fl_co_bundle_t *b,
               const char *action, const fl_version_t *to_version,
               const char *selector,
               const char *operator_name, size_t n)
{
    fl_co_dispatch_t *d = fl_calloc(1, sizeof(*d));

    snprintf(d->id, sizeof(d->id), "%s", id);
    d->bundle = b;
    d->action = fl_strdup(action);
    d->to_version = *to_version;
    d->selector = fl_strdup(selector ? selector : "");
    d->operator_name = fl_strdup(operator_name ? operator_name : "");
    d->created_wall = fl_co_wall_s();
    d->commands = fl_calloc(n ? n : 1, sizeof(*d->commands));
    d->ncommands = n;
    d->order_cap = n ? n : 1;
    d->done_order = fl_calloc(d->order_cap, sizeof(*d->done_order));
    fl_map_puts(s->dispatches, d->id, d);
    if (s->latest == NULL || s->latest->created_wall <= d->created_wall)
        s->latest = d;
    return d;
}

/* Replies to every waiter of d with what is new to it. */
static void s_answer_waiters(fl_co_server_t *s, fl_co_dispatch_t *d,
                             int force);

/* The outcome of a command is written: counts, order, waiters. */

/* Every command of d has its outcome: d is done, written and said. */
static void
s_dispatch_done(fl_co_server_t *s, fl_co_dispatch_t *d)
{
    fl_store_job_t *job = fl_store_job_new(FL_STORE_SQL);
    const char *p[1] = {d->id};
    char counts[160];
    fl_log_field f[2] = {{"dispatch", d->id}, {"bundle", d->bundle->id}};

    d->finished = 1;
    d->finished_ms = fl_co_now_ms();
    fl_store_job_sql(job, "UPDATE flotilla_control.dispatches SET status"
                          " = 'done', finished_at = now() WHERE id = $1",
                     1, p);
    fl_store_submit(s->store, job);
    snprintf(counts, sizeof(counts), "%zu ok, %zu failed, %zu refused, "
             "%zu cancelled, %zu unreachable", d->nok, d->nfailed,
             d->nrefused, d->ncancelled, d->nunreachable);
    fl_log_emit(FL_LOG_INFO, "dispatch", f, 2, "dispatch %s is done: %s",
                d->id, counts);
    fl_dispatch_event(s, "dispatch.done", NULL, NULL, d->id, NULL, NULL,
                      counts);
}

static void
s_done(fl_co_server_t *s, fl_co_command_t *c)
{
    fl_co_dispatch_t *d = c->dispatch;

    c->state = FL_CO_CMD_DONE;
    s_open_remove(c);
    if (d->norder == d->order_cap) {
        d->order_cap *= 2;
        d->done_order = fl_reallocarray(d->done_order, d->order_cap,
                                        sizeof(*d->done_order));
    }
    d->done_order[d->norder++] = c;
    d->ndone++;
    switch (c->status) {
    case FL_CO_OK: d->nok++; break;
    case FL_CO_FAILED: d->nfailed++; break;
    case FL_CO_REFUSED: d->nrefused++; break;
    case FL_CO_UNREACHABLE: d->nunreachable++; break;
    default: d->ncancelled++; break;
    }
    if (d->rollout != NULL)
        fl_rollout_command_done(s, c);
    if (d->ndone == d->ncommands && !d->finished)
        s_dispatch_done(s, d);
}

/* Results: written in batches, acknowledged once written. */

typedef struct {
    fl_co_server_t *s;
    fl_co_command_t **cmds;
    size_t n;
} s_batch_t;

static void
s_batch_release(void *arg)
{
    s_batch_t *b = arg;

    free(b->cmds);
    free(b);
}

static void
s_ack(fl_co_server_t *s, fl_co_agent_t *a, const char *id)
{
    if (a->nacks == 0) {
        if (s->nackers == s->ackers_cap) {
            s->ackers_cap = s->ackers_cap ? s->ackers_cap * 2 : 16;
            s->ackers = fl_reallocarray(s->ackers, s->ackers_cap,
                                        sizeof(*s->ackers));
        }
        s->ackers[s->nackers++] = a;
    }
    if (a->nacks == a->acks_cap) {
        a->acks_cap = a->acks_cap ? a->acks_cap * 2 : 64;
        a->acks = fl_reallocarray(a->acks, a->acks_cap, sizeof(*a->acks));
    }
    a->acks[a->nacks++] = fl_strdup(id);
}

static void s_record_late(fl_co_server_t *s, fl_co_command_t *c,
                          int status, const fl_version_t *version,
                          const char *why);

static void
s_results_written(fl_store_job_t *job, int rc, const fl_error_t *err,
                  void *arg)
{
    s_batch_t *b = arg;
    fl_co_server_t *s = b->s;

    (void)job;
    for (size_t i = 0; i < b->n; i++) {
        fl_co_command_t *c = b->cmds[i];

        if (rc != 0) {
            /* Not written: not acknowledged; the agent sends it again. */
            c->state = FL_CO_CMD_SENT;
            c->status = FL_CO_PENDING;
            s_detail_free(&c->detail);
            continue;
        }
        s_done(s, c);
        if (c->cancel_written) {
            c->cancel_written = 0;
            fl_dispatch_cancel(s, c);
        }
        if (!c->reconciled && !c->decided)
            s_ack(s, c->agent, c->id);
        if (c->detail != NULL && c->detail->late) {
            c->detail->late = 0;
            /* As for one come after (fl_dispatch_result): once. */
            if (c->detail->detail == NULL)
                s_record_late(s, c, c->detail->late_status,
                              &c->detail->late_version, c->detail->late_why);
        }
    }
    if (rc != 0)
        fl_log_error("dispatch", "could not record %zu results: %s", b->n,
                     err ? err->message : "?");
    for (size_t i = 0; i < b->n; i++)
        if (i == 0 || b->cmds[i]->dispatch != b->cmds[i - 1]->dispatch)
            s_answer_waiters(s, b->cmds[i]->dispatch, 0);
}

static void
s_flush_results(fl_co_server_t *s)
{
    s_batch_t *b = NULL;

    if (s->results_job == NULL)
        return;
    b = fl_calloc(1, sizeof(*b));
    b->s = s;
    b->cmds = s->results_cmds;
    b->n = s->nresults;
    s->results_cmds = NULL;
    s->nresults = s->results_cap = 0;
    s->results_job->done = s_results_written;
    s->results_job->arg = b;
    s->results_job->release = s_batch_release;
    fl_store_submit(s->store, s->results_job);
    s->results_job = NULL;
}

/*
 * Moves c to recording with its outcome, into this round's results job
 * (written at the round's end, or at S_JOB_FLUSH).
 */
static void
s_record(fl_co_server_t *s, fl_co_command_t *c, int status,
         const fl_version_t *version,
         int64_t duration_ms, int64_t kept, int reconciled,
         const char *message, const char *error, const char *detail,
         const char *hint, const char *sqlstate)
{
    fl_store_job_t *job = NULL;

    if (c->state == FL_CO_CMD_SENT && c->agent->inflight > 0 &&
        !reconciled)
        c->agent->inflight--;
    if (c->state == FL_CO_CMD_QUEUED) {
        /* Reconciled while queued: take it out of the queue. */
        fl_co_command_t **pp = &c->agent->outq_head, *prev = NULL;
        while (*pp != NULL && *pp != c) {
            prev = *pp;
            pp = &(*pp)->out_next;
        }
        if (*pp == c) {
            *pp = c->out_next;
            if (c->agent->outq_tail == c)
                c->agent->outq_tail = prev;
        }
    }
    c->state = FL_CO_CMD_RECORDING;
    c->status = (uint8_t)status;
    c->version = *version;
    c->duration_ms = duration_ms;
    c->kept = kept;
    c->reconciled = (uint8_t)reconciled;
    c->seq = ++c->dispatch->next_seq;
    c->state_seq = c->target->state_seq;
    if (status != FL_CO_OK || message != NULL) {
        c->detail = fl_calloc(1, sizeof(*c->detail));
        c->detail->message = fl_co_clean_cut(message, FL_CO_TEXT_MAX);
        c->detail->error = fl_co_clean_cut(error, FL_CO_TEXT_MAX);
        c->detail->detail = fl_co_clean_cut(detail, FL_CO_TEXT_MAX);
        c->detail->hint = fl_co_clean_cut(hint, FL_CO_TEXT_MAX);
        c->detail->sqlstate = fl_co_clean_cut(sqlstate, FL_CO_NAME_MAX);
    }
    if (s->results_job == NULL)
        s->results_job = fl_store_job_new(FL_STORE_RESULTS);
    job = s->results_job;
    fl_store_field(job, c->id, 0);
    fl_store_field(job, s_status_names[status], 0);
    fl_store_field(job, version->text, 0);
    fl_store_field_int(job, duration_ms, 0);
    fl_store_field(job, c->detail ? c->detail->message : NULL, 0);
    fl_store_field(job, c->detail ? c->detail->error : NULL, 0);
    fl_store_field(job, c->detail ? c->detail->detail : NULL, 0);
    fl_store_field(job, c->detail ? c->detail->hint : NULL, 0);
    fl_store_field(job, c->detail ? c->detail->sqlstate : NULL, 0);
    fl_store_field(job, reconciled ? "t" : "f", 0);
    fl_store_field_int(job, c->seq, 0);
    fl_store_field_int(job, kept, 1);
    if (s->nresults == s->results_cap) {
        s->results_cap = s->results_cap ? s->results_cap * 2 : 256;
        s->results_cmds = fl_reallocarray(s->results_cmds, s->results_cap,
                                          sizeof(*s->results_cmds));
    }
    s->results_cmds[s->nresults++] = c;
    if (job->rows.len >= S_JOB_FLUSH)
        s_flush_results(s);
}

/* Whether c was failed by the coordinator for its target_timeout. */
static int
s_timed_out(const fl_co_command_t *c)
{
    return c->status == FL_CO_FAILED && c->detail != NULL &&
           c->detail->message != NULL &&
           strcmp(c->detail->message, FL_CO_TIMED_OUT) == 0;
}

typedef struct {
    fl_co_server_t *s;
    fl_co_agent_t *agent;
    char id[FL_CO_CMD_ID_MAX];
} s_late_t;

static void
s_late_written(fl_store_job_t *job, int rc, const fl_error_t *err, void *arg)
{
    s_late_t *l = arg;
    fl_co_command_t *c = fl_map_gets(l->s->commands, l->id);

    (void)job;
    if (rc == 0) {
        s_ack(l->s, l->agent, l->id);
        return;
    }
    /* Not written: not acknowledged; the agent sends it again. */
    fl_log_error("dispatch", "could not record what command %s reported "
                 "after its timeout: %s", l->id, err ? err->message : "?");
    if (c != NULL && c->detail != NULL)
        fl_free(&c->detail->detail);
}

/*
 * The result of a command failed for its target_timeout, which its agent
 * finished after all (the cancel came too late, or never reached it):
 * the decision stands (it counted against the budget, and may have
 * halted the rollout), but what the target did is the truth an operator
 * needs: kept in the command's detail, with the version the agent
 * reports, written before it is acknowledged.
 */
static void
s_record_late(fl_co_server_t *s, fl_co_command_t *c, int status,
              const fl_version_t *version, const char *why)
{
    fl_log_field f[2] = {{"agent", c->agent->name}, {"command", c->id}};
    const char *p[3];
    s_late_t *l = fl_calloc(1, sizeof(*l));
    fl_store_job_t *job = NULL;
    char *text = NULL;

    if (status < 0 || status == FL_CO_UNREACHABLE)
        status = FL_CO_FAILED;
    text = fl_asprintf(
        "after target_timeout its run ended %s%s%s%s%s",
        s_status_names[status],
        fl_version_is_set(version) ? ", at version " : "",
        fl_version_is_set(version) ? version->text : "",
        why != NULL && *why ? ": " : "", why != NULL ? why : "");
    c->detail->detail = fl_co_clean(text);
    free(text);
    if (fl_version_is_set(version))
        c->version = *version;
    fl_log_emit(FL_LOG_WARNING, "dispatch", f, 2, "target \"%s\", failed "
                "for its target_timeout: %s", c->target->name,
                c->detail->detail);
    l->s = s;
    l->agent = c->agent;
    snprintf(l->id, sizeof(l->id), "%s", c->id);
    p[0] = c->id;
    p[1] = c->detail->detail;
    p[2] = c->version.text;
    job = fl_store_job_new(FL_STORE_SQL);
    fl_store_job_sql(job, "UPDATE flotilla_control.commands SET detail = $2,"
                          " version = $3 WHERE id = $1", 3, p);
    job->done = s_late_written;
    job->arg = l;
    job->release = free;
    fl_store_submit(s->store, job);
}

void
fl_dispatch_result(fl_co_server_t *s, fl_co_agent_t *a,
                   const fl_wire_result_t *r)
{
    fl_co_command_t *c = fl_map_gets(s->commands, r->id);
    int status = s_status_parse(r->status);
    fl_log_field f[2] = {{"agent", a->name}, {"command", r->id}};

    if (c == NULL) {
        /* Not ours (a dispatch forgotten, or another coordinator's): the
         * agent would send it for ever otherwise. */
        fl_log_emit(FL_LOG_NOTICE, "dispatch", f, 2, "agent \"%s\" answered "
                    "command %s, which this coordinator does not know; "
                    "acknowledged and dropped", a->name, r->id);
        s_ack(s, a, r->id);
        return;
    }
    if (c->agent != a || strcmp(c->target->name, r->target) != 0) {
        fl_log_emit(FL_LOG_WARNING, "dispatch", f, 2, "agent \"%s\" answered "
                    "command %s of target \"%s\" (agent \"%s\"); ignored",
                    a->name, r->id, c->target->name, c->agent->name);
        return;
    }
    if (c->state == FL_CO_CMD_DONE) {
        if (s_timed_out(c) && c->detail->detail == NULL)
            s_record_late(s, c, status, &r->version,
                          r->error ? r->error : r->message);
        else
            s_ack(s, a, r->id); /* a repeat: the first ack was lost */
        return;
    }
    if (c->state == FL_CO_CMD_RECORDING && s_timed_out(c) &&
        !c->detail->late) {
        /*
         * The run the timeout cancelled ended while the decision is being
         * written (the cancel goes out with the decision): kept, and
         * recorded once the decision is.  Before, it was dropped here
         * and never acknowledged, and the failure never said how the run
         * ended (until the agent reconnected and sent it again).
         */
        c->detail->late = 1;
        c->detail->late_status = status;
        c->detail->late_version = r->version;
        c->detail->late_why = fl_co_clean_cut(r->error ? r->error
                                                       : r->message,
                                              FL_CO_TEXT_MAX);
        return;
    }
    if (c->state == FL_CO_CMD_RECORDING)
        return; /* acknowledged once the first is written */
    if (status < 0 || status == FL_CO_UNREACHABLE) {
        fl_log_emit(FL_LOG_WARNING, "dispatch", f, 2, "agent \"%s\" answered "
                    "command %s with an unknown status; recorded as failed",
                    a->name, r->id);
        status = FL_CO_FAILED;
    }
    if (c->state == FL_CO_CMD_HELD) {
        /* Never sent by this coordinator: a forged or stale answer. */
        fl_log_emit(FL_LOG_WARNING, "dispatch", f, 2, "agent \"%s\" answered "
                    "command %s, which was never sent; ignored", a->name,
                    r->id);
        return;
    }
    if (strcmp(c->dispatch->action, "plan") == 0 && status != FL_CO_FAILED &&
        status != FL_CO_CANCELLED) {
        /* A plan's verdict, classified from its report for the summary. */
        char *why = NULL;
        const char *verdict = fl_rollout_plan_verdict(r->report, &why);
        s_record(s, c, status, &r->version, r->duration_ms, 0, 0, verdict,
                 why ? why : r->error, r->detail, r->hint, r->sqlstate);
        free(why);
        fl_dispatch_pump(s, a);
        return;
    }
    s_record(s, c, status, &r->version, r->duration_ms, r->kept, 0,
             r->message, r->error, r->detail, r->hint, r->sqlstate);
    fl_dispatch_pump(s, a);
}

void
fl_dispatch_step_event(fl_co_server_t *s, fl_co_agent_t *a,
                       const fl_wire_step_event_t *e)
{
    fl_co_target_t *t = fl_map_gets(s->targets, e->target);
    char *msg = NULL, *rollout = NULL, *step = NULL, *status = NULL;

    if (t == NULL || t->agent != a)
        return; /* only an agent's own targets are recorded */
    /*
     * Cleaned and cut, each of them: text that is not UTF-8 made the
     * control database refuse the round's events (and the coordinator
     * exit, at every start again), and a round of 1 MiB messages grew
     * the events job past its limit (the coordinator aborted; found by
     * an audit).
     */
    msg = fl_co_clean_cut(e->error ? e->error : e->message, FL_CO_TEXT_MAX);
    rollout = fl_co_clean_cut(e->rollout, FL_CO_NAME_MAX);
    step = fl_co_clean_cut(e->step, FL_CO_NAME_MAX);
    status = fl_co_clean_cut(e->status, FL_CO_NAME_MAX);
    fl_dispatch_event(s, "step", a->key, t->name,
                      fl_map_gets(s->dispatches, rollout) ? rollout : NULL,
                      step, status, msg);
    if (e->status != NULL && strcmp(e->status, "failed") == 0 &&
        rollout != NULL) {
        for (fl_co_command_t *c = a->open; c != NULL; c = c->open_next)
            if (c->target == t && strcmp(c->dispatch->id, rollout) == 0)
                c->failed_step = fl_rollout_step_name(e->step);
    }
    free(msg);
    free(rollout);
    free(step);
    free(status);
}

/* Sending. */

static int
s_wire_type(const char *action)
{
    if (strcmp(action, "rollback") == 0)
        return FL_WIRE_ROLLBACK;
    if (strcmp(action, "plan") == 0)
        return FL_WIRE_PLAN;
    if (strcmp(action, "baseline") == 0)
        return FL_WIRE_BASELINE;
    return FL_WIRE_APPLY;
}

void
fl_dispatch_pump(fl_co_server_t *s, fl_co_agent_t *a)
{
    while (a->state == FL_CO_AGENT_ONLINE && a->outq_head != NULL &&
           a->inflight < (size_t)s->cfg->agent_window) {
        fl_co_command_t *c = a->outq_head;
        fl_wire_msg_t m;
        int rc;

        if (c->dispatch->rollout != NULL && !fl_rollout_may_send(c)) {
            /* The halt latch, checked before every send: taken back. */
            a->outq_head = c->out_next;
            if (a->outq_head == NULL)
                a->outq_tail = NULL;
            c->out_next = NULL;
            c->state = FL_CO_CMD_HELD;
            fl_rollout_command_held(s, c);
            continue;
        }
        memset(&m, 0, sizeof(m));
        m.type = (fl_wire_type)s_wire_type(c->dispatch->action);
        m.u.command.id = c->id;
        m.u.command.rollout = c->dispatch->id;
        m.u.command.target = c->target->name;
        m.u.command.bundle_id = c->dispatch->bundle->id;
        m.u.command.to_version = c->dispatch->to_version;
        m.u.command.from = c->dispatch->from;
        m.u.command.attempt = c->attempt;
        m.u.command.undoes = (char *)fl_rollout_undoes(c);
        rc = fl_co_send_agent(s, a, &m);
        if (rc == FL_ETIMEOUT) {
            s->pump_pending = 1;
            return;
        }
        if (rc != 0)
            return; /* offline now (or logged); stays queued */
        a->outq_head = c->out_next;
        if (a->outq_head == NULL)
            a->outq_tail = NULL;
        c->out_next = NULL;
        c->state = FL_CO_CMD_SENT;
        c->sent_once = 1;
        a->inflight++;
    }
}

void
fl_dispatch_bundle_request(fl_co_server_t *s, fl_co_agent_t *a,
                           const char *bundle_id)
{
    fl_co_bundle_t *b = fl_map_gets(s->bundles, bundle_id);

    if (b == NULL) {
        fl_wire_msg_t m;
        memset(&m, 0, sizeof(m));
        m.type = FL_WIRE_ERROR;
        m.u.error.code = (char *)fl_error_code_name(FL_ENOTFOUND);
        m.u.error.message = "no such bundle";
        FL_IGNORE(fl_co_send_agent(s, a, &m)); /* it asks again */
        return;
    }
    /* Queued behind nothing: a full pipe makes the agent ask again. */
    FL_IGNORE(fl_co_send_agent_raw(s, a, b->wire, b->wire_len));
}

/* Reconciliation from the ledger. */

/*
 * What the target's ledger says about c: FL_CO_OK or FL_CO_FAILED when
 * it records the outcome, -1 when it cannot tell (the command is then
 * sent, again or for the first time; the agent never runs it twice).
 */
static int
s_ledger_outcome(const fl_co_command_t *c, const char **why)
{
    const fl_co_target_t *t = c->target;
    const fl_migration_list_t *migs = fl_bundle_migrations(c->dispatch->bundle->bundle);
    const fl_version_t *to = &c->dispatch->to_version;
    int all = 1;

    /* A plan changes nothing; a baseline answers from the ledger itself. */
    if (!t->known || strcmp(c->dispatch->action, "plan") == 0 ||
        strcmp(c->dispatch->action, "baseline") == 0)
        return -1;
    /*
     * The registry holds the versioned rows only: whether the bundle's
     * repeatable migrations ran after them, only the agent can tell (it
     * skips those that are up to date, so sending again runs nothing
     * twice).
     */
    if (strcmp(c->dispatch->action, "apply") == 0 &&
        fl_bundle_repeatables(c->dispatch->bundle->bundle)->count > 0)
        return -1;
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_co_row_t *row = fl_registry_row(t, &m->version);

        if (strcmp(c->dispatch->action, "apply") == 0) {
            if (fl_version_is_set(to) && fl_version_cmp(&m->version, to) > 0)
                continue;
            /* A retry's failed row is the cancelled run's, or its own
             * (then its agent still holds it: never asked here). */
            if (c->attempt == 0 && row != NULL &&
                row->status == FL_CO_ROW_FAILED && row->rollout != NULL &&
                strcmp(row->rollout, c->dispatch->id) == 0) {
                *why = "the target's ledger records this dispatch's apply "
                       "as failed";
                return FL_CO_FAILED;
            }
            if (row == NULL || row->status != FL_CO_ROW_APPLIED ||
                !fl_migration_is_applied_as(m, row->checksum))
                all = 0;
        } else {
            if (fl_version_is_set(to) && fl_version_cmp(&m->version, to) <= 0)
                continue;
            if (row != NULL && row->status != FL_CO_ROW_ROLLED_BACK)
                all = 0;
        }
    }
    if (!all)
        return -1;
    *why = strcmp(c->dispatch->action, "apply") == 0
               ? "reconciled from the target's ledger: every migration of "
                 "the bundle is applied"
               : "reconciled from the target's ledger: no migration of the "
                 "bundle is applied";
    return FL_CO_OK;
}

/* Whether another command of c's target is open on c's agent. */
static int
s_other_open(const fl_co_command_t *c)
{
    for (const fl_co_command_t *o = c->agent->open; o != NULL;
         o = o->open_next)
        if (o != c && o->target == c->target && o->state != FL_CO_CMD_DONE)
            return 1;
    return 0;
}

static void
s_reconcile(fl_co_server_t *s, fl_co_command_t *c)
{
    fl_co_agent_t *a = c->agent;
    const char *why = NULL;
    int outcome;

    c->await_state = 0;
    if (c->state != FL_CO_CMD_SENT)
        return;
    if (fl_map_gets(a->holding, c->id) != NULL) {
        a->inflight++;
        /*
         * Its rollout halted with --abort while the agent was away (the
         * cancels went to the agents online then): cancelled now.  Before,
         * the agent, restarted, ran it to the end from its journal.
         */
        if (c->dispatch->rollout != NULL && fl_rollout_aborted(c))
            fl_dispatch_cancel(s, c);
        return;
    }
    if (!c->target->known) {
        c->await_state = 1; /* wait for its state */
        return;
    }
    /*
     * A rollback is not settled from the ledger while another command
     * of its target is open (its rollout's apply, still running or
     * waiting on the agent): the ledger shows nothing of the bundle yet,
     * the apply then commits, and the target was counted rolled back
     * while applied (found by an audit).  Sent instead: the agent runs
     * it after the apply.
     */
    if (strcmp(c->dispatch->action, "rollback") == 0 && s_other_open(c)) {
        s_enqueue(c);
        return;
    }
    outcome = s_ledger_outcome(c, &why);
    if (outcome >= 0) {
        fl_version_t applied = fl_registry_applied_version(c->target);

        s_record(s, c, outcome, &applied, 0, 0, 1,
                 why, outcome == FL_CO_FAILED ? why : NULL, NULL, NULL,
                 NULL);
        return;
    }
    if (c->dispatch->rollout != NULL && !fl_rollout_may_send(c)) {
        /* Not running on the agent, nothing in the ledger, and the
         * rollout halted: it is not sent again until a resume. */
        c->state = FL_CO_CMD_HELD;
        fl_rollout_command_held(s, c);
        return;
    }
    s_enqueue(c);
}

void
fl_dispatch_agent_back(fl_co_server_t *s, fl_co_agent_t *a)
{
    fl_co_command_t **sent = NULL;
    size_t n = 0, cap = 0;

    a->inflight = 0;
    /* Collect first: reconciling moves commands between lists. */
    for (fl_co_command_t *c = a->open; c != NULL; c = c->open_next)
        if (c->state == FL_CO_CMD_SENT) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                sent = fl_reallocarray(sent, cap, sizeof(*sent));
            }
            sent[n++] = c;
        }
    for (size_t i = 0; i < n; i++)
        s_reconcile(s, sent[i]);
    free(sent);
    fl_dispatch_pump(s, a);
}

void
fl_dispatch_target_known(fl_co_server_t *s, fl_co_target_t *t)
{
    fl_co_command_t *c = t->agent->open, *next = NULL;

    if (t->agent->state != FL_CO_AGENT_ONLINE)
        return;
    /*
     * Only the commands the agent's hello left undecided: a command sent
     * in this session is on its way or running, whatever a ledger read
     * from before it says.  Before, a ledger read that came after it was
     * sent (the one the agent sends after an earlier command on the
     * target) took it back as held in a halted rollout, and sent it again
     * in a running one.
     */
    for (; c != NULL; c = next) {
        next = c->open_next;
        if (c->target == t && c->await_state)
            s_reconcile(s, c);
    }
    fl_dispatch_pump(s, t->agent);
}

/* Operators: create and wait. */

static fl_store_job_t *s_write_dispatch(fl_co_server_t *s,
                                        fl_co_dispatch_t *d,
                                        fl_co_target_t *const *targets,
                                        const int32_t *waves,
                                        const char *rollout_id);

typedef struct {
    fl_co_server_t *s;
    fl_co_dispatch_t *d;
    unsigned char rid[FL_LINK_PEER_MAX];
    size_t rid_len;
    char *request_id;
} s_create_t;

static void
s_create_release(void *arg)
{
    s_create_t *cr = arg;

    free(cr->request_id);
    free(cr);
}

static void
s_created(fl_store_job_t *job, int rc, const fl_error_t *err, void *arg)
{
    s_create_t *cr = arg;
    fl_co_server_t *s = cr->s;
    fl_co_dispatch_t *d = cr->d;
    fl_co_agent_t *last = NULL;

    (void)job;
    if (rc != 0) {
        fl_co_reply_error(s, cr->rid, cr->rid_len, cr->request_id,
                          FL_CO_EXIT_FAILED, err);
        if (s->latest == d)
            s->latest = NULL;
        fl_map_removes(s->dispatches, d->id);
        s_dispatch_free(s, d);
        return;
    }
    for (size_t i = 0; i < d->ncommands; i++)
        s_enqueue(&d->commands[i]);
    for (size_t i = 0; i < d->ncommands; i++)
        if (d->commands[i].agent != last) {
            last = d->commands[i].agent;
            fl_dispatch_pump(s, last);
        }
    fl_co_reply(s, cr->rid, cr->rid_len, cr->request_id, FL_CO_EXIT_OK,
                fl_json_pack("{s:s, s:s, s:s, s:I}", "id", d->id, "bundle",
                             d->bundle->id, "action", d->action, "targets",
                             (json_int_t)d->ncommands));
}

static int
s_target_cmp(const void *x, const void *y)
{
    const fl_co_target_t *a = *(fl_co_target_t *const *)x;
    const fl_co_target_t *b = *(fl_co_target_t *const *)y;

    return strcmp(a->name, b->name);
}

/* Selects, sorted by name, the reported targets whose labels match sel. */
static fl_co_target_t **
s_select(fl_co_server_t *s, const fl_selector_t *sel, size_t *n)
{
    fl_co_target_t **out = fl_calloc(fl_map_count(s->targets) + 1,
                                     sizeof(*out));
    fl_co_target_t *t = NULL;
    size_t pos = 0;

    *n = 0;
    while ((t = fl_map_next(s->targets, &pos)) != NULL)
        if (t->reported && t->agent->state != FL_CO_AGENT_REVOKED &&
            fl_co_labels_match(&t->labels, sel))
            out[(*n)++] = t;
    qsort(out, *n, sizeof(*out), s_target_cmp);
    return out;
}

/* Writes a new bundle's row (before the dispatch that names it). */
static void
s_write_bundle(fl_co_server_t *s, const fl_co_bundle_t *cb)
{
    fl_store_job_t *job = fl_store_job_new(FL_STORE_SQL);
    char *hex = fl_malloc(cb->len * 2 + 3);
    char seq[24], created[24], expires[24];
    const char *p[9];

    memcpy(hex, "\\x", 2);
    for (size_t i = 0; i < cb->len; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", cb->bytes[i]);
    hex[2 + 2 * cb->len] = '\0';
    snprintf(seq, sizeof(seq), "%lld",
             (long long)fl_bundle_sequence(cb->bundle));
    snprintf(created, sizeof(created), "%lld",
             (long long)fl_bundle_created(cb->bundle));
    snprintf(expires, sizeof(expires), "%lld",
             (long long)fl_bundle_expires(cb->bundle));
    p[0] = cb->id;
    p[1] = hex;
    p[2] = fl_bundle_signer(cb->bundle);
    p[3] = fl_bundle_channel(cb->bundle);
    p[4] = seq;
    p[5] = fl_bundle_environment(cb->bundle);
    p[6] = fl_bundle_selector(cb->bundle);
    p[7] = created;
    p[8] = expires;
    fl_store_job_sql(job,
        "INSERT INTO flotilla_control.bundles (id, bytes, signer, channel,"
        " sequence, environment, selector, created, expires) VALUES ($1,"
        " $2::bytea, $3, $4, $5, $6, $7, to_timestamp($8::bigint),"
        " to_timestamp($9::bigint)) ON CONFLICT (id) DO NOTHING", 9, p);
    fl_store_submit(s->store, job);
    free(hex);
}

void
fl_dispatch_create(fl_co_server_t *s, const unsigned char *rid,
                   size_t rid_len, const char *operator_name,
                   const fl_wire_control_request_t *req)
{
    const char *selector = fl_co_arg(req, "selector");
    const char *action = fl_co_arg(req, "action");
    const char *to = fl_co_arg(req, "to_version");
    fl_co_bundle_t *cb = NULL;
    fl_co_target_t **targets = NULL;
    fl_co_dispatch_t *d = NULL;
    fl_store_job_t *job = NULL;
    s_create_t *cr = NULL;
    fl_version_t to_version = FL_VERSION_INIT;
    size_t n = 0;
    char id[33];
    fl_error_t err = FL_ERROR_INIT;
    int status = FL_CO_EXIT_USAGE;

    if (action == NULL)
        action = "apply";
    if (strcmp(action, "apply") != 0 && strcmp(action, "rollback") != 0 &&
        strcmp(action, "plan") != 0) {
        FL_ERR(&err, FL_EINVAL, "unknown action \"%.32s\"", action);
        fl_error_set_hint(&err, "Actions are apply, rollback and plan.");
        goto failed;
    }
    if (to != NULL && to[0] != '\0' &&
        fl_version_parse_str(&to_version, to, &err) != 0)
        goto failed;
    if (fl_dispatch_prepare(s, req, "dispatch", &cb, &targets, &n, &status,
                            &err) != 0)
        goto failed;
    fl_co_new_id(id);
    d = s_dispatch_new(s, id, cb, action, &to_version, selector, operator_name,
                       n);
    job = s_write_dispatch(s, d, targets, NULL, NULL);
    cr = fl_calloc(1, sizeof(*cr));
    cr->s = s;
    cr->d = d;
    memcpy(cr->rid, rid, rid_len);
    cr->rid_len = rid_len;
    cr->request_id = fl_strdup(req->id);
    job->done = s_created;
    job->arg = cr;
    job->release = s_create_release;
    fl_store_submit(s->store, job);
    {
        fl_log_field f[3] = {{"dispatch", d->id}, {"bundle", cb->id},
                             {"operator", d->operator_name}};
        fl_log_emit(FL_LOG_INFO, "dispatch", f, 3, "dispatch %s: %s bundle "
                    "%s on %zu targets (selector \"%s\"), by %s", d->id,
                    action, cb->id, n, d->selector, d->operator_name);
    }
    fl_dispatch_event(s, "dispatch.created", NULL, NULL, d->id, NULL, NULL,
                      d->selector);
    goto cleanup;
failed:
    fl_co_reply_error(s, rid, rid_len, req->id, status, &err);
cleanup:
    free(targets);
    fl_error_clear(&err);
}

/*
 * Makes d's commands (one per target, in that order) and queues the
 * dispatch's row; returns the commands' job for the caller to submit.
 * With waves (a rollout's: rollout_id set) the commands are held, each
 * with its wave and position; without, they are released at once.
 */
static fl_store_job_t *
s_write_dispatch(fl_co_server_t *s, fl_co_dispatch_t *d,
                 fl_co_target_t *const *targets, const int32_t *waves,
                 const char *rollout_id)
{
    fl_store_job_t *job = fl_store_job_new(FL_STORE_SQL);
    char ntext[24];
    const char *p[9] = {d->id, d->bundle->id, d->action, d->to_version.text,
                        d->selector, d->operator_name, ntext, rollout_id,
                        d->from};

    snprintf(ntext, sizeof(ntext), "%zu", d->ncommands);
    fl_store_job_sql(job, "INSERT INTO flotilla_control.dispatches (id,"
                          " bundle_id, action, to_version, selector,"
                          " operator, ntargets, rollout_id, baseline_from)"
                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9,
                          p);
    fl_store_submit(s->store, job);
    job = fl_store_job_new(FL_STORE_COMMANDS);
    /* A command's id is its dispatch's random prefix (96 bits) and its
     * index: unique, and in ascending order within a dispatch, so that
     * writing and updating its rows touch the primary key's pages in
     * order rather than at random (bench/fleet.sh). */
    FL_ASSERT(d->ncommands <= UINT32_MAX);
    for (size_t i = 0; i < d->ncommands; i++) {
        fl_co_command_t *c = &d->commands[i];

        snprintf(c->id, sizeof(c->id), "%.24s%08x", d->id, (unsigned)i);
        c->dispatch = d;
        c->target = targets[i];
        c->agent = targets[i]->agent;
        c->state = waves ? FL_CO_CMD_HELD : FL_CO_CMD_WRITING;
        c->released = waves == NULL;
        c->wave = waves ? waves[i] : -1;
        c->position = (int32_t)i;
        fl_map_puts(s->commands, c->id, c);
        s_open_add(c);
        fl_store_field(job, c->id, 0);
        fl_store_field(job, d->id, 0);
        fl_store_field(job, d->id, 0);
        fl_store_field(job, c->target->name, 0);
        fl_store_field(job, c->agent->key, 0);
        fl_store_field(job, d->action, 0);
        fl_store_field(job, waves ? "f" : "t", 0);
        if (waves) {
            fl_store_field_int(job, waves[i], 0);
            fl_store_field_int(job, (int64_t)i, 1);
        } else {
            fl_store_field(job, NULL, 0);
            fl_store_field(job, NULL, 1);
        }
    }
    return job;
}

/* The bundle of a request, verified; one past its expiry only to roll
 * it back (allow_expired), which expiry never stops. */
static fl_co_bundle_t *
s_verified_bundle(fl_co_server_t *s, const unsigned char *data, size_t len,
                  int allow_expired, fl_error_t *err)
{
    fl_bundle_verify_opts_t vo = FL_BUNDLE_VERIFY_OPTS_INIT;
    fl_bundle_t *b = NULL;
    fl_co_bundle_t *cb = NULL;

    vo.max_lifetime_s = s->cfg->max_bundle_lifetime_ms / 1000;
    vo.allow_expired = allow_expired;
    if (fl_bundle_verify_bytes(&b, data, len, s->trust, &vo, err) != 0) {
        fl_error_prefix(err, "the coordinator refuses the bundle: ");
        return NULL;
    }
    cb = fl_map_gets(s->bundles, fl_bundle_id(b));
    if (cb == NULL) {
        cb = s_bundle_add(s, b, data, len);
        b = NULL;
        s_write_bundle(s, cb);
    }
    fl_bundle_destroy(&b);
    return cb;
}

int
fl_dispatch_prepare(fl_co_server_t *s, const fl_wire_control_request_t *req,
                    const char *what, fl_co_bundle_t **cb,
                    fl_co_target_t ***targets, size_t *n, int *status,
                    fl_error_t *err)
{
    const char *selector = fl_co_arg(req, "selector");
    const char *action = fl_co_arg(req, "action");
    int rollback = strcmp(what, "dispatch") == 0 && action != NULL &&
                   strcmp(action, "rollback") == 0;
    fl_selector_t sel = {NULL, 0};
    int rc = 0;

    *targets = NULL;
    *n = 0;
    *status = FL_CO_EXIT_USAGE;
    if ((rc = fl_selector_parse(&sel, selector ? selector : "", err)) != 0)
        return rc;
    if (req->len == 0) {
        rc = FL_ERR(err, FL_EINVAL, "a %s needs a bundle", what);
        goto cleanup;
    }
    *status = FL_CO_EXIT_REFUSED;
    if ((*cb = s_verified_bundle(s, req->data, req->len, rollback,
                                 err)) == NULL) {
        rc = FL_EINVAL;
        goto cleanup;
    }
    *status = FL_CO_EXIT_FAILED;
    *targets = s_select(s, &sel, n);
    if (*n == 0) {
        rc = FL_ERR(err, FL_ENOTFOUND, "no target matches the selector "
                    "\"%s\"", selector ? selector : "");
        fl_error_set_hint(err, "\"flotilla targets\" lists the targets and "
                               "their labels.");
    }
cleanup:
    fl_selector_release(&sel);
    return rc;
}

fl_co_dispatch_t *
fl_dispatch_new_held(fl_co_server_t *s, const char *id, fl_co_bundle_t *cb,
                     const char *action, const char *from,
                     const fl_version_t *to, const char *selector,
                     const char *operator_name, fl_co_target_t *const *targets,
                     const int32_t *waves, size_t n, const char *rollout_id)
{
    fl_version_t all = FL_VERSION_INIT;
    fl_co_dispatch_t *d = s_dispatch_new(s, id, cb, action, to ? to : &all,
                                         selector, operator_name, n);

    d->from = from ? fl_strdup(from) : NULL;

    fl_store_submit(s->store, s_write_dispatch(s, d, targets, waves,
                                               rollout_id));
    /*
     * One with no command (the rollback of a rollout that touched no
     * target) is done at once: before, no outcome ever ended it, and it
     * stayed running in the control database, loaded at every start
     * (found by an audit).
     */
    if (n == 0)
        s_dispatch_done(s, d);
    return d;
}

void
fl_dispatch_forget(fl_co_server_t *s, fl_co_dispatch_t *d)
{
    if (s->latest == d)
        s->latest = NULL;
    fl_map_removes(s->dispatches, d->id);
    s_dispatch_free(s, d);
}

/* The release of some held commands is written: they may go. */
typedef struct {
    fl_co_server_t *s;
    fl_co_command_t **cmds;
    size_t n;
} s_release_t;

static void
s_released(fl_store_job_t *job, int rc, const fl_error_t *err, void *arg)
{
    s_release_t *r = arg;
    fl_co_agent_t *last = NULL;

    (void)job;
    for (size_t i = 0; i < r->n; i++) {
        fl_co_command_t *c = r->cmds[i];

        if (c->state != FL_CO_CMD_WRITING)
            continue; /* decided meanwhile (halted, timed out) */
        if (rc != 0) {
            c->state = FL_CO_CMD_HELD;
            fl_rollout_command_held(r->s, c);
            continue;
        }
        c->released = 1;
        s_enqueue(c);
    }
    if (rc != 0)
        fl_log_error("dispatch", "could not write the release of %zu "
                     "commands: %s", r->n, err ? err->message : "?");
    for (size_t i = 0; i < r->n; i++)
        if (r->cmds[i]->agent != last) {
            last = r->cmds[i]->agent;
            fl_dispatch_pump(r->s, last);
        }
}

static void
s_release_free(void *arg)
{
    s_release_t *r = arg;

    free(r->cmds);
    free(r);
}

void
fl_dispatch_release(fl_co_server_t *s, fl_co_command_t *const *cmds,
                    size_t n)
{
    fl_store_job_t *job = NULL;
    s_release_t *r = NULL;
    fl_buf_t ids = FL_BUF_INIT(0);
    const char *p[1];

    if (n == 0)
        return;
    r = fl_calloc(1, sizeof(*r));
    r->s = s;
    r->cmds = fl_calloc(n, sizeof(*r->cmds));
    r->n = n;
    fl_buf_adds(&ids, "{");
    for (size_t i = 0; i < n; i++) {
        FL_ASSERT(cmds[i]->state == FL_CO_CMD_HELD);
        cmds[i]->state = FL_CO_CMD_WRITING;
        r->cmds[i] = cmds[i];
        fl_buf_addf(&ids, "%s%s", i ? "," : "", cmds[i]->id);
    }
    fl_buf_adds(&ids, "}");
    p[0] = ids.data;
    job = fl_store_job_new(FL_STORE_SQL);
    fl_store_job_sql(job, "UPDATE flotilla_control.commands SET released ="
                          " true WHERE id = ANY ($1::text[])", 1, p);
    job->done = s_released;
    job->arg = r;
    job->release = s_release_free;
    fl_store_submit(s->store, job);
    fl_buf_release(&ids);
}

void
fl_dispatch_decide(fl_co_server_t *s, fl_co_command_t *c, int status,
                   const char *message, const char *error)
{
    fl_version_t applied = FL_VERSION_INIT;

    if (c->state == FL_CO_CMD_RECORDING || c->state == FL_CO_CMD_DONE)
        return;
    applied = fl_registry_applied_version(c->target);
    c->decided = 1;
    s_record(s, c, status, &applied, 0, 0, 0,
             message, error, NULL, NULL, NULL);
}

void
fl_dispatch_cancel(fl_co_server_t *s, fl_co_command_t *c)
{
    fl_wire_msg_t m;
    char id[33];

    if (c->agent->state != FL_CO_AGENT_ONLINE)
        return;
    fl_co_new_id(id);
    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_CANCEL;
    m.u.command.id = id;
    m.u.command.rollout = c->dispatch->id;
    m.u.command.target = c->target->name;
    m.u.command.bundle_id = c->dispatch->bundle->id;
    /* A lost cancel leaves the statement to finish: logged by the send. */
    FL_IGNORE(fl_co_send_agent(s, c->agent, &m));
}

/*
 * Takes c's outcome back out of its dispatch's counts.  Its entry in the
 * order stays (positions are waiters' cursors); s_progress skips it while
 * c is not done.
 */
static void
s_undone(fl_co_command_t *c)
{
    fl_co_dispatch_t *d = c->dispatch;

    FL_ASSERT(d->ndone > 0);
    d->ndone--;
    switch (c->status) {
    case FL_CO_OK: d->nok--; break;
    case FL_CO_FAILED: d->nfailed--; break;
    case FL_CO_REFUSED: d->nrefused--; break;
    case FL_CO_UNREACHABLE: d->nunreachable--; break;
    default: d->ncancelled--; break;
    }
}

void
fl_dispatch_retry(fl_co_server_t *s, fl_co_command_t *const *cmds, size_t n)
{
    fl_store_job_t *job = NULL;
    fl_co_dispatch_t *d = NULL;
    fl_buf_t olds = FL_BUF_INIT(0), news = FL_BUF_INIT(0);
    fl_buf_t attempts = FL_BUF_INIT(0);
    const char *p[4];

    if (n == 0)
        return;
    d = cmds[0]->dispatch;
    fl_buf_adds(&olds, "{");
    fl_buf_adds(&news, "{");
    fl_buf_adds(&attempts, "{");
    for (size_t i = 0; i < n; i++) {
        fl_co_command_t *c = cmds[i];
        char base[33];

        FL_ASSERT(c->dispatch == d && c->state == FL_CO_CMD_DONE &&
                  c->attempt < INT32_MAX);
        fl_buf_addf(&olds, "%s%s", i ? "," : "", c->id);
        fl_map_removes(s->commands, c->id);
        s_undone(c);
        /* A new id: an answer to the cancelled run still in its agent's
         * outbox (its acknowledgement lost) is then not this one's. */
        snprintf(base, sizeof(base), "%.32s", c->id);
        c->attempt++;
        snprintf(c->id, sizeof(c->id), "%s-r%d", base, (int)c->attempt);
        fl_map_puts(s->commands, c->id, c);
        fl_buf_addf(&news, "%s%s", i ? "," : "", c->id);
        fl_buf_addf(&attempts, "%s%d", i ? "," : "", (int)c->attempt);
        c->state = FL_CO_CMD_HELD;
        c->status = FL_CO_PENDING;
        c->reconciled = c->released = c->decided = 0;
        c->version.text[0] = '\0';
        c->duration_ms = 0;
        c->seq = 0;
        c->failed_step = NULL;
        s_detail_free(&c->detail);
        s_open_add(c);
    }
    fl_buf_adds(&olds, "}");
    fl_buf_adds(&news, "}");
    fl_buf_adds(&attempts, "}");
    if (d->finished) {
        d->finished = 0;
        d->finished_ms = 0;
    }
    p[0] = olds.data;
    p[1] = news.data;
    p[2] = attempts.data;
    p[3] = d->id;
    job = fl_store_job_new(FL_STORE_SQL);
    fl_store_job_sql(job,
        "WITH u AS (UPDATE flotilla_control.commands c SET id = n.new_id,"
        " attempt = n.attempt, status = 'pending', version = NULL,"
        " duration_ms = NULL, message = NULL, error = NULL, detail = NULL,"
        " hint = NULL, sqlstate = NULL, reconciled = false, seq = NULL,"
        " finished_at = NULL, released = false FROM unnest($1::text[],"
        " $2::text[], $3::int[]) AS n(old_id, new_id, attempt)"
        " WHERE c.id = n.old_id)"
        " UPDATE flotilla_control.dispatches SET status = 'running',"
        " finished_at = NULL WHERE id = $4 AND status = 'done'", 4, p);
    fl_store_submit(s->store, job);
    fl_buf_release(&olds);
    fl_buf_release(&news);
    fl_buf_release(&attempts);
}

static json_t *
s_result_json(const fl_co_command_t *c)
{
    const fl_co_detail_t *dt = c->detail;

    return fl_json_pack("{s:s, s:s, s:s, s:s?, s:I, s:I, s:b, s:s?, s:s?, "
                        "s:s?, s:s?, s:s?}",
                        "target", c->target->name, "agent", c->agent->name,
                        "status", s_status_names[c->status], "version",
                        fl_version_is_set(&c->version) ? c->version.text
                                                       : NULL,
                        "duration_ms",
                        (json_int_t)c->duration_ms, "kept",
                        (json_int_t)c->kept, "reconciled",
                        c->reconciled, "message", dt ? dt->message : NULL,
                        "error", dt ? dt->error : NULL, "detail",
                        dt ? dt->detail : NULL, "hint", dt ? dt->hint : NULL,
                        "sqlstate", dt ? dt->sqlstate : NULL);
}

/* The reply to a wait: counts and the results after the cursor. */
static json_t *
s_progress(const fl_co_server_t *s, const fl_co_dispatch_t *d, int64_t after)
{
    json_t *results = json_array();
    size_t from = after < 0 ? 0 : (size_t)after;
    size_t to = d->norder;
    json_t *o = NULL;

    if (from > d->norder)
        from = d->norder;
    if (to - from > S_REPLY_MAX)
        to = from + S_REPLY_MAX;
    /* A retried command's earlier entry: its outcome comes again later. */
    for (size_t i = from; i < to; i++)
        if (d->done_order[i]->state == FL_CO_CMD_DONE)
            json_array_append_new(results, s_result_json(d->done_order[i]));
    o = fl_json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I, s:I, s:I}",
                     "id", d->id, "status",
                     d->ndone == d->ncommands ? "done" : "running", "bundle",
                     d->bundle->id, "action", d->action, "total",
                     (json_int_t)d->ncommands, "done", (json_int_t)d->ndone,
                     "succeeded", (json_int_t)d->nok, "failed",
                     (json_int_t)d->nfailed, "refused",
                     (json_int_t)d->nrefused, "cancelled",
                     (json_int_t)d->ncancelled, "unreachable",
                     (json_int_t)d->nunreachable, "pending",
                     (json_int_t)(d->ncommands - d->ndone), "cursor",
                     (json_int_t)to);
    /* Where the cursor ends once every outcome was read (past total when
     * commands were retried). */
    json_object_set_new(o, "outcomes", json_integer((json_int_t)d->norder));
    json_object_set_new(o, "life", json_string(s->life));
    json_object_set_new(o, "results", results);
    return o;
}

static void
s_answer_waiters(fl_co_server_t *s, fl_co_dispatch_t *d, int force)
{
    fl_co_waiter_t **pp = &d->waiters;
    int64_t now = fl_co_now_ms();

    while (*pp != NULL) {
        fl_co_waiter_t *w = *pp;

        if (force || w->after < (int64_t)d->norder || now >= w->deadline_ms ||
            d->ndone == d->ncommands) {
            fl_co_reply(s, w->rid, w->rid_len, w->request_id, FL_CO_EXIT_OK,
                        s_progress(s, d, w->after));
            *pp = w->next;
            free(w->request_id);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

void
fl_dispatch_wait(fl_co_server_t *s, const unsigned char *rid, size_t rid_len,
                 const fl_wire_control_request_t *req)
{
    const char *id = fl_co_arg(req, "id");
    fl_co_dispatch_t *d = id ? fl_map_gets(s->dispatches, id) : NULL;
    fl_co_waiter_t *w = NULL;
    fl_error_t err = FL_ERROR_INIT;

    if (d == NULL) {
        FL_ERR(&err, FL_ENOTFOUND, "no dispatch \"%.40s\" in this "
               "coordinator's memory", id ? id : "");
        fl_error_set_hint(&err, "Finished dispatches are kept in memory for "
                                "dispatch_retention; every outcome stays in "
                                "flotilla_control.commands.");
        fl_co_reply_error(s, rid, rid_len, req->id, FL_CO_EXIT_FAILED, &err);
        fl_error_clear(&err);
        return;
    }
    if ((w = fl_co_waiter_new(s, rid, rid_len, req, 0)) == NULL)
        return;
    /* A cursor from before a restart: this life's order differs. */
    if (fl_co_arg(req, "life") != NULL &&
        strcmp(fl_co_arg(req, "life"), s->life) != 0)
        w->after = 0;
    w->next = d->waiters;
    d->waiters = w;
    s_answer_waiters(s, d, 0);
}

/* Rounds, ticks. */

static void
s_send_acks(fl_co_server_t *s)
{
    for (size_t i = 0; i < s->nackers; i++) {
        fl_co_agent_t *a = s->ackers[i];
        fl_wire_msg_t m;

        memset(&m, 0, sizeof(m));
        m.type = FL_WIRE_RESULT_ACK;
        m.u.result_ack.ids = a->acks;
        m.u.result_ack.nids = a->nacks;
        /* A lost ack costs a repeated result, answered with another. */
        if (a->state == FL_CO_AGENT_ONLINE)
            FL_IGNORE(fl_co_send_agent(s, a, &m));
        for (size_t k = 0; k < a->nacks; k++)
            free(a->acks[k]);
        a->nacks = 0;
    }
    s->nackers = 0;
}

void
fl_dispatch_flush(fl_co_server_t *s)
{
    s_flush_results(s);
    s_flush_events(s);
    s_send_acks(s);
}

void
fl_dispatch_tick(fl_co_server_t *s)
{
    fl_co_dispatch_t *d = NULL;
    fl_co_dispatch_t **old = NULL;
    size_t pos = 0, nold = 0;
    int64_t now = fl_co_now_ms();

    if (s->pump_pending) {
        fl_co_agent_t *a = NULL;
        size_t apos = 0;

        s->pump_pending = 0;
        while ((a = fl_map_next(s->agents, &apos)) != NULL)
            fl_dispatch_pump(s, a);
    }
    while ((d = fl_map_next(s->dispatches, &pos)) != NULL) {
        s_answer_waiters(s, d, 0);
        if (d->finished && d->waiters == NULL && d != s->latest &&
            d->rollout == NULL &&
            now - d->finished_ms >= s->cfg->dispatch_retention_ms) {
            old = fl_reallocarray(old, nold + 1, sizeof(*old));
            old[nold++] = d;
        }
    }
    for (size_t i = 0; i < nold; i++) {
        fl_map_removes(s->dispatches, old[i]->id);
        s_dispatch_free(s, old[i]);
    }
    free(old);
}

char *
fl_dispatch_drift(const fl_co_server_t *s, const fl_co_target_t *t)
{
    const fl_migration_list_t *migs = NULL;
    size_t pending = 0;

    if (s->latest == NULL)
        return fl_strdup("no bundle yet");
    if (!t->known)
        return fl_strdup("unknown");
    migs = fl_bundle_migrations(s->latest->bundle->bundle);
    for (size_t i = 0; i < migs->count; i++) {
        const fl_co_row_t *row = fl_registry_row(t, &migs->items[i].version);

        if (row != NULL && row->status == FL_CO_ROW_APPLIED &&
            !fl_migration_is_applied_as(&migs->items[i], row->checksum))
            return fl_asprintf("drift at %s", row->version.text);
        if (row == NULL || row->status != FL_CO_ROW_APPLIED)
            pending++;
    }
    if (pending == 0)
        return fl_strdup("current");
    return fl_asprintf("%zu pending", pending);
}

/* Loading at start. */

static fl_co_bundle_t *
s_load_bundle(fl_co_server_t *s, const char *id, fl_error_t *err)
{
    fl_co_bundle_t *cb = fl_map_gets(s->bundles, id);
    fl_store_rows_t r = {0, 0, NULL};
    const char *p[1] = {id};
    const char *hex = NULL;
    unsigned char *bytes = NULL;
    size_t len = 0;
    fl_bundle_t *b = NULL;

    if (cb != NULL)
        return cb;
    if (fl_store_query(s->store, &r, "SELECT encode(bytes, 'hex') FROM "
                       "flotilla_control.bundles WHERE id = $1", 1, p,
                       err) != 0)
        return NULL;
    if (r.nrows != 1 || (hex = fl_store_value(&r, 0, 0)) == NULL) {
        FL_ERR(err, FL_ENOTFOUND, "bundle \"%s\" of a dispatch is missing "
               "from the control database", id);
        goto cleanup;
    }
    len = strlen(hex) / 2;
    bytes = fl_malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) {
        unsigned int x = 0;
        FL_ASSERT(sscanf(hex + 2 * i, "%2x", &x) == 1); /* encode() wrote it */
        bytes[i] = (unsigned char)x;
    }
    /* Expired or signed by a key removed since, it still names the
     * migrations its dispatch applied: decoded without the checks. */
    if (fl_bundle_decode_unverified(&b, bytes, len, err) != 0)
        goto cleanup;
    cb = s_bundle_add(s, b, bytes, len);
cleanup:
    free(bytes);
    fl_store_rows_release(&r);
    return cb;
}

static int
s_load_commands(fl_co_server_t *s, fl_co_dispatch_t *d, fl_error_t *err)
{
    fl_store_rows_t r = {0, 0, NULL};
    const char *p[1] = {d->id};
    size_t n = 0;

    if (fl_store_query(s->store, &r, "SELECT id, target, agent_key, status,"
                       " version, duration_ms, message, error, detail, hint,"
                       " sqlstate, reconciled, seq, released, wave, position,"
                       " attempt, kept FROM"
                       " flotilla_control.commands WHERE dispatch_id = $1"
                       " ORDER BY seq NULLS LAST, target", 1, p, err) != 0)
        return FL_EDB;
    free(d->commands);
    free(d->done_order);
    d->commands = fl_calloc(r.nrows + 1, sizeof(*d->commands));
    d->order_cap = r.nrows + 1;
    d->done_order = fl_calloc(d->order_cap, sizeof(*d->done_order));
    d->norder = 0;
    d->ndone = 0;
    d->ncommands = r.nrows;
    for (size_t i = 0; i < r.nrows; i++) {
        fl_co_command_t *c = &d->commands[n++];
        fl_co_agent_t *a = fl_registry_agent(s, fl_store_value(&r, i, 2), 1);
        fl_co_target_t *t = fl_map_gets(s->targets, fl_store_value(&r, i, 1));
        int st = s_status_parse(fl_store_value(&r, i, 3));
        int64_t v = 0;

        if (t == NULL) {
            /* A target no agent reports any more: kept for the record. */
            t = fl_calloc(1, sizeof(*t));
            t->name = fl_strdup(fl_store_value(&r, i, 1));
            t->agent = a;
            fl_map_puts(s->targets, t->name, t);
        }
        snprintf(c->id, sizeof(c->id), "%s", fl_store_value(&r, i, 0));
        c->dispatch = d;
        c->target = t;
        c->agent = a;
        fl_map_puts(s->commands, c->id, c);
        c->released = strcmp(fl_store_value(&r, i, 13), "t") == 0;
        c->wave = -1;
        if (fl_store_value(&r, i, 14) != NULL &&
            fl_parse_int(&v, fl_store_value(&r, i, 14), 0, INT32_MAX,
                         NULL) == 0)
            c->wave = (int32_t)v;
        if (fl_store_value(&r, i, 15) != NULL &&
            fl_parse_int(&v, fl_store_value(&r, i, 15), 0, INT32_MAX,
                         NULL) == 0)
            c->position = (int32_t)v;
        if (fl_parse_int(&v, fl_store_value(&r, i, 16), 0, INT32_MAX,
                         NULL) == 0)
            c->attempt = (int32_t)v;
        if (st < 0) {
            /* Released: maybe sent before the restart.  Not released: a
             * rollout's target whose turn has not come. */
            c->state = c->released ? FL_CO_CMD_SENT : FL_CO_CMD_HELD;
            c->sent_once = c->released;
            s_open_add(c);
            continue;
        }
        c->sent_once = c->released;
        c->status = (uint8_t)st;
        if (fl_store_value(&r, i, 4) != NULL &&
            fl_store_value(&r, i, 4)[0] != '\0' &&
            fl_version_parse_str(&c->version, fl_store_value(&r, i, 4),
                                 NULL) != 0)
            c->version.text[0] = '\0';
        if (fl_store_value(&r, i, 5) != NULL &&
            fl_parse_int(&v, fl_store_value(&r, i, 5), 0, INT64_MAX,
                         NULL) == 0)
            c->duration_ms = v;
        if (fl_store_value(&r, i, 17) != NULL &&
            fl_parse_int(&v, fl_store_value(&r, i, 17), 0, INT32_MAX,
                         NULL) == 0)
            c->kept = v;
        c->reconciled = strcmp(fl_store_value(&r, i, 11), "t") == 0;
        if (fl_store_value(&r, i, 12) != NULL &&
            fl_parse_int(&v, fl_store_value(&r, i, 12), 0, INT64_MAX,
                         NULL) == 0 && v > d->next_seq)
            d->next_seq = v;
        if (c->status != FL_CO_OK || fl_store_value(&r, i, 6) != NULL) {
            c->detail = fl_calloc(1, sizeof(*c->detail));
            c->detail->message = fl_co_clean(fl_store_value(&r, i, 6));
            c->detail->error = fl_co_clean(fl_store_value(&r, i, 7));
            c->detail->detail = fl_co_clean(fl_store_value(&r, i, 8));
            c->detail->hint = fl_co_clean(fl_store_value(&r, i, 9));
            c->detail->sqlstate = fl_co_clean(fl_store_value(&r, i, 10));
        }
        c->agent = a;
        s_open_add(c);
        s_done(s, c);
    }
    fl_store_rows_release(&r);
    return 0;
}

#define S_DISPATCH_COLS                                                     \
    "SELECT id, bundle_id, action, to_version, selector, operator,"         \
    " extract(epoch FROM created_at)::bigint, status, baseline_from FROM"   \
    " flotilla_control.dispatches"

static int
s_load_rows(fl_co_server_t *s, fl_store_rows_t *r, fl_error_t *err)
{
    int rc = 0;

    for (size_t i = 0; i < r->nrows && rc == 0; i++) {
        fl_co_bundle_t *cb = NULL;
        fl_co_dispatch_t *d = NULL;
        fl_version_t to = FL_VERSION_INIT;
        int64_t created = 0;

        if (fl_map_gets(s->dispatches, fl_store_value(r, i, 0)) != NULL)
            continue;
        if ((cb = s_load_bundle(s, fl_store_value(r, i, 1), err)) == NULL) {
            rc = FL_EDB;
            break;
        }
        /* '' (all) or a version (the table's CHECK-free text: a version
         * that does not parse is taken as all, and said). */
        if (fl_store_value(r, i, 3)[0] != '\0' &&
            fl_version_parse_str(&to, fl_store_value(r, i, 3), NULL) != 0)
            fl_log_warning("dispatch", "dispatch %s has an invalid "
                           "to_version \"%.80s\"; read as all",
                           fl_store_value(r, i, 0), fl_store_value(r, i, 3));
        FL_IGNORE(fl_parse_int(&created, fl_store_value(r, i, 6), 0,
                               INT64_MAX, NULL));
        d = s_dispatch_new(s, fl_store_value(r, i, 0), cb,
                           fl_store_value(r, i, 2), &to,
                           fl_store_value(r, i, 4),
                           fl_store_value(r, i, 5), 0);
        d->created_wall = created;
        if (fl_store_value(r, i, 8) != NULL)
            d->from = fl_strdup(fl_store_value(r, i, 8));
        s->latest = d;
        /* A dispatch recorded done stays so; one whose every outcome is
         * written but not its end (a crash in between) is ended now. */
        if (strcmp(fl_store_value(r, i, 7), "done") == 0) {
            d->finished = 1;
            d->finished_ms = fl_co_now_ms();
        }
        rc = s_load_commands(s, d, err);
    }
    return rc;
}

int
fl_dispatch_load(fl_co_server_t *s, fl_error_t *err)
{
    fl_store_rows_t r = {0, 0, NULL};
    int rc = 0;

    rc = fl_store_query(s->store, &r, S_DISPATCH_COLS
        " WHERE status = 'running' OR id ="
        " (SELECT id FROM flotilla_control.dispatches ORDER BY created_at"
        " DESC LIMIT 1) ORDER BY created_at", 0, NULL, err);
    if (rc == 0)
        rc = s_load_rows(s, &r, err);
    fl_store_rows_release(&r);
    return rc;
}

fl_co_dispatch_t *
fl_dispatch_load_id(fl_co_server_t *s, const char *id, fl_error_t *err)
{
    fl_store_rows_t r = {0, 0, NULL};
    fl_co_dispatch_t *d = fl_map_gets(s->dispatches, id);
    fl_co_dispatch_t *latest = s->latest;
    const char *p[1] = {id};

    if (d != NULL)
        return d;
    if (fl_store_query(s->store, &r, S_DISPATCH_COLS " WHERE id = $1", 1, p,
                       err) == 0 &&
        s_load_rows(s, &r, err) == 0) {
        d = fl_map_gets(s->dispatches, id);
        if (d == NULL)
            FL_ERR(err, FL_ENOTFOUND, "dispatch \"%s\" is missing from the "
                   "control database", id);
    }
    /* An older dispatch loaded for its rollout is not the newest. */
    if (latest != NULL)
        s->latest = latest;
    fl_store_rows_release(&r);
    return d;
}

void
fl_dispatch_free_all(fl_co_server_t *s)
{
    fl_co_dispatch_t *d = NULL;
    fl_co_bundle_t *b = NULL;
    size_t pos = 0;

    while ((d = fl_map_next(s->dispatches, &pos)) != NULL)
        s_dispatch_free(s, d);
    pos = 0;
    while ((b = fl_map_next(s->bundles, &pos)) != NULL)
        s_bundle_free(b);
}
