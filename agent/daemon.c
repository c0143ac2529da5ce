/*
 * daemon.c - flotilla-agent's event loop (see daemon.h).
 *
 * The session with the coordinator:
 *
 *   down --backoff elapsed--> connecting --hello sent--> hello_sent
 *     ^                                                      |
 *     |                         welcome (heartbeat, timeout) v
 *     +--silence > timeout, no welcome in hello_timeout-- online
 *     +--error "revoked"
 *
 *   down        no socket.  The next connect waits a backoff that doubles
 *               from reconnect_min to reconnect_max, with jitter (s_down).
 *   connecting  a DEALER with the coordinator's key pinned; the hello is
 *               sent once the CURVE handshake lets it through (never
 *               before the first discovery has run and the journal was
 *               read: the hello carries every target and every held
 *               command).  A refused or failed handshake is logged.
 *   hello_sent  waiting for the welcome, at most hello_timeout.
 *   online      welcomed: results not acknowledged are sent again, every
 *               target's ledger is read again in the background (and each
 *               sent as it comes, unless a command on its target began
 *               since: the read may predate the command's work, and the
 *               command's end sends the state read after it), heartbeats
 *               go every heartbeat_ms; an error "session" (the
 *               coordinator lost us) sends a new hello; silence longer
 *               than the welcome's timeout goes down.  A new hello is
 *               also sent when discovery changes the targets.
 *
 * A command, from its arrival to its acknowledgement:
 *   - already held (queued, running, answered): ignored, or its result
 *     sent again;
 *   - journaled (ID.cmd) before anything else;
 *   - for a target this agent does not own: refused;
 *   - waits for its bundle (asked of the coordinator once, verified by a
 *     worker against this agent's trusted keys, cached by the verified
 *     id); a bundle that fails verification refuses every command for it;
 *   - waits for its target (one command per target at a time);
 *   - runs on a worker (command.c);
 *   - its result is journaled (ID.res), then sent; both files go when
 *     result_ack names it.
 * After a restart, every ID.res is sent again and every ID.cmd without
 * one is run again: the runner answers what the ledger shows carried out
 * without running it.
 */
#include "agent/daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agentd_internal.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/daemon.h"
#include "common/hash.h"
#include "common/log.h"

/* Jobs. */

static fl_ag_job_t *
s_job_new(fl_ag_job_kind kind)
{
    fl_ag_job_t *job = fl_calloc(1, sizeof(*job));

    job->kind = kind;
    pthread_mutex_init(&job->lock, NULL);
    return job;
}

void
fl_ag_job_set_pg(fl_ag_job_t *job, fl_pg_t *pg)
{
    pthread_mutex_lock(&job->lock);
    job->pg = pg;
    job->pg_ms = pg != NULL ? fl_clock_ms() : 0;
    job->read_cut = 0; /* a run may read more than once */
    pthread_mutex_unlock(&job->lock);
}

/* The loop's list of background reads out (GATHER, DISCOVER). */
static void
s_read_out(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    job->read_prev = NULL;
    job->read_next = d->reads;
    if (d->reads != NULL)
        d->reads->read_prev = job;
    d->reads = job;
}

static void
s_read_back(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    if (job->read_prev != NULL)
        job->read_prev->read_next = job->read_next;
    else if (d->reads == job)
        d->reads = job->read_next;
    if (job->read_next != NULL)
        job->read_next->read_prev = job->read_prev;
    job->read_prev = job->read_next = NULL;
}

/*
 * Closes the connection of every background read that has waited on its
 * server longer than read_timeout (all = 1: of every one, at a stop).  A
 * server that does not answer at all (its host up, its processes not
 * running) held the read, and its worker, as long as it did: with
 * max_parallel such reads the agent ran nothing else.  The read then
 * fails: the target's ledger is unknown until the next one.
 */
static void
s_abort_reads(fl_ag_daemon_t *d, int64_t now, int all)
{
    for (fl_ag_job_t *job = d->reads; job != NULL; job = job->read_next) {
        int cut = 0;

        pthread_mutex_lock(&job->lock);
        if (job->pg != NULL && !job->read_cut &&
            (all || now - job->pg_ms >= d->cfg->read_timeout_ms)) {
            fl_pg_abort(job->pg);
            cut = job->read_cut = 1;
        }
        pthread_mutex_unlock(&job->lock);
        if (cut && !all && job->kind != FL_AG_JOB_DISCOVER)
            fl_log_warning("agent", "the ledger read of \"%s\"%s got no "
                           "answer within %lld ms (read_timeout): its "
                           "connection is closed", job->target,
                           job->kind == FL_AG_JOB_RUN ? " after a command"
                                                      : "",
                           (long long)d->cfg->read_timeout_ms);
        else if (cut && !all)
            fl_log_warning("agent", "discovery rule %zu got no answer "
                           "within %lld ms (read_timeout): its connection "
                           "is closed", job->rule,
                           (long long)d->cfg->read_timeout_ms);
    }
}

void
fl_ag_job_free(fl_ag_job_t *job)
{
    if (job == NULL)
        return;
    free(job->target);
    free(job->dsn);
    free(job->schema);
    free(job->environment);
    for (size_t i = 0; i < job->nlabels; i++)
        free(job->labels[i]);
    free(job->labels);
    fl_wire_msg_release(&job->cmd);
    if (job->has_result) {
        fl_wire_msg_t m;
        memset(&m, 0, sizeof(m));
        m.type = FL_WIRE_RESULT;
        m.u.result = job->result;
        fl_wire_msg_release(&m);
    }
    fl_ag_state_release(&job->state);
    for (size_t i = 0; i < job->nfound; i++) {
        free(job->found[i].name);
        free(job->found[i].dsn);
        free(job->found[i].schema);
        free(job->found[i].database);
    }
    free(job->found);
    free(job->bundle_id);
    free(job->bytes);
    fl_source_close(&job->verified);
    fl_buf_release(&job->encoded);
    fl_error_clear(&job->err);
    pthread_mutex_destroy(&job->lock);
    free(job);
}

static void
s_drop(void *item)
{
    fl_ag_job_free(item);
}

/* Workers: what each kind of job does on its thread. */

static void
s_verify(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    fl_trust_t *trust = NULL;
    fl_bundle_verify_opts_t vo = FL_BUNDLE_VERIFY_OPTS_INIT;

    vo.max_lifetime_s = d->cfg->max_bundle_lifetime_ms / 1000;
    /* Expiry is checked per command (s_still_good): it stops applying a
     * bundle, never rolling it back. */
    vo.allow_expired = 1;
    /* Loaded for each bundle: a SIGHUP may have changed the keys. */
    if ((job->rc = fl_trust_load(&trust, d->cfg->trust, &job->err)) != 0)
        return;
    if (job->from_cache) {
        job->rc = fl_source_open_bytes(&job->verified, job->bytes, job->len,
                                       trust, &vo, &job->err);
        if (job->rc == 0 && strcmp(job->verified.bundle_id,
                                   job->bundle_id) != 0) {
            fl_source_close(&job->verified);
            job->rc = FL_ERR(&job->err, FL_EPROTO, "the cached bundle "
                             "\"%s\" is another bundle", job->bundle_id);
        }
    } else {
        fl_wire_bundle_t t;

        memset(&t, 0, sizeof(t));
        t.bundle_id = job->bundle_id;
        t.data = job->bytes;
        t.len = job->len;
        fl_hash_sha256(t.sha256, job->bytes, job->len);
        job->rc = fl_source_open_transfer(&job->verified, &t, trust, &vo,
                                          &job->err);
    }
    fl_trust_destroy(&trust);
}

static void
s_work(void *arg, void *ctx)
{
    fl_ag_job_t *job = arg;
    fl_ag_daemon_t *d = ctx;

    switch (job->kind) {
    case FL_AG_JOB_RUN:
        fl_ag_run(d, job);
        break;
    case FL_AG_JOB_GATHER:
        fl_workers_conn_acquire(d->workers);
        fl_ag_read_state(job, &job->state);
        fl_workers_conn_release(d->workers);
        break;
    case FL_AG_JOB_DISCOVER:
        fl_ag_discover(d, job);
        break;
    case FL_AG_JOB_VERIFY:
        s_verify(d, job);
        break;
    default:
        break;
    }
    fl_workers_post(d->workers, job);
}

/* Sending. */

static int
s_send_raw(fl_ag_daemon_t *d, const void *data, size_t len)
{
    fl_error_t err = FL_ERROR_INIT;
    int rc;

    if (d->link == NULL)
        return FL_ENOTFOUND;
    rc = fl_link_send(d->link, NULL, 0, data, len, &err);
    if (rc != 0 && rc != FL_ETIMEOUT)
        fl_log_warning("agent", "could not send to the coordinator: %s",
                       err.message);
    fl_error_clear(&err);
    return rc;
}

static int
s_send(fl_ag_daemon_t *d, const fl_wire_msg_t *m)
{
    fl_buf_t out = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;
    int rc = fl_wire_encode(&out, m, &err);

    if (rc != 0)
        fl_log_error("agent", "could not encode a %s: %s",
                     fl_wire_type_name(m->type), err.message);
    else
        rc = s_send_raw(d, out.data, out.len);
    fl_buf_release(&out);
    fl_error_clear(&err);
    return rc;
}

/*
 * Sends t's state, or keeps it to send at the next welcome (t->unsent).
 * A state read while a hello awaited its welcome was dropped, and the
 * welcome of a hello sent again online reads no ledger (s_welcome): a
 * new target stayed "unknown" until the next state_interval.
 */
static void
s_send_state(fl_ag_daemon_t *d, fl_ag_target_t *t)
{
    fl_wire_msg_t m;

    t->unsent = 1;
    if (d->session != FL_AG_ONLINE)
        return;
    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_LEDGER_REPLY;
    fl_ag_target_wire(t, &m.u.ledger_reply.state);
    if (s_send(d, &m) == 0)
        t->unsent = 0;
}

/*
 * About how many bytes t takes in a hello, at least as many as its
 * encoding (msgpack): a ledger row is its four keys with their headers
 * (32 bytes), its checksum (34), its map's and three strings' headers
 * (at most 7, the strings being shorter than 256 bytes) and its
 * strings; 80 covers all but the strings.
 */
static size_t
s_target_bytes(const fl_wire_target_t *t)
{
    size_t n = 128 + strlen(t->target) +
               (t->environment ? strlen(t->environment) : 0) +
               (t->error ? strlen(t->error) : 0);

    for (size_t i = 0; i < t->nlabels; i++)
        n += 16 + strlen(t->labels[i].key) + strlen(t->labels[i].value);
    for (size_t i = 0; i < t->napplied; i++)
        n += 80 + strlen(t->applied[i].version.text) +
             strlen(t->applied[i].status) +
             (t->applied[i].rollout ? strlen(t->applied[i].rollout) : 0);
    return n;
}

/*
 * Sends the hello: in one message, or, when the targets' ledgers pass
 * FL_WIRE_HELLO_PART bytes, in parts of about that many, each with
 * whole targets (one alone when it is larger), in order; the name,
 * labels and held commands in the first.  A part that cannot be sent
 * ends the hello there: no welcome comes, and hello_timeout says hello
 * again.
 */
static void
s_send_hello(fl_ag_daemon_t *d)
{
    fl_wire_msg_t m;
    fl_wire_target_t *targets = fl_calloc(fl_map_count(d->targets) + 1,
                                          sizeof(*targets));
    char **holding = fl_calloc(fl_map_count(d->jobs) +
                                   fl_map_count(d->outbox) + 1,
                               sizeof(char *));
    fl_codec_kv_t *labels = fl_calloc(d->cfg->labels.count + 1,
                                      sizeof(*labels));
    fl_ag_target_t *t = NULL;
    fl_ag_job_t *job = NULL;
    fl_ag_outbox_t *o = NULL;
    size_t pos = 0, n = 0, ntargets = 0, *ends = NULL, nparts = 0, bytes = 0;
    int rc = 0;

    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_HELLO;
    m.u.hello.agent = (char *)d->cfg->name;
    m.u.hello.agent_version = FLOTILLA_VERSION;
    for (size_t i = 0; i < d->cfg->labels.count; i++) {
        char *l = d->cfg->labels.items[i];
        char *eq = strchr(l, '=');
        labels[i].key = fl_strndup(l, (size_t)(eq - l));
        labels[i].value = eq + 1;
    }
    m.u.hello.labels = labels;
    m.u.hello.nlabels = d->cfg->labels.count;
    while ((t = fl_map_next(d->targets, &pos)) != NULL)
        fl_ag_target_wire(t, &targets[ntargets++]);
    /* ends[k]: one past the last target of part k. */
    ends = fl_calloc(ntargets + 1, sizeof(*ends));
    for (size_t i = 0; i < ntargets; i++) {
        size_t b = s_target_bytes(&targets[i]);
        if (bytes > 0 && bytes + b > FL_WIRE_HELLO_PART) {
            ends[nparts++] = i;
            bytes = 0;
        }
        bytes += b;
    }
    ends[nparts++] = ntargets;
    if (nparts > FL_WIRE_HELLO_PARTS) {
        fl_log_error("agent", "the hello would need %zu parts of %zu KiB "
                     "(at most %d): this agent has too many targets, or "
                     "ledgers too long, for one coordinator session; split "
                     "its targets between agents", nparts,
                     FL_WIRE_HELLO_PART / 1024, FL_WIRE_HELLO_PARTS);
        rc = FL_EINVAL;
    }
    pos = 0;
    while ((job = fl_map_next(d->jobs, &pos)) != NULL)
        holding[n++] = job->cmd.u.command.id;
    pos = 0;
    while ((o = fl_map_next(d->outbox, &pos)) != NULL)
        holding[n++] = o->id;
    m.u.hello.holding = holding;
    m.u.hello.nholding = n;
    m.u.hello.parts = nparts > 1 ? (int)nparts : 0;
    for (size_t k = 0; rc == 0 && k < nparts; k++) {
        size_t from = k > 0 ? ends[k - 1] : 0;
        m.u.hello.part = (int)k;
        m.u.hello.targets = targets + from;
        m.u.hello.ntargets = ends[k] - from;
        if (k == 1) {
            /* Said in the first part. */
            m.u.hello.labels = NULL;
            m.u.hello.nlabels = 0;
            m.u.hello.holding = NULL;
            m.u.hello.nholding = 0;
        }
        rc = s_send(d, &m);
    }
    if (rc == 0)
        fl_log_debug("agent", "hello sent: %zu targets in %zu part%s",
                     ntargets, nparts, nparts == 1 ? "" : "s");
    if (rc == 0) {
        /* The hello says every target's state. */
        pos = 0;
        while ((t = fl_map_next(d->targets, &pos)) != NULL)
            t->unsent = 0;
        d->rehello = d->session == FL_AG_ONLINE;
        d->session = FL_AG_HELLO_SENT;
        d->hello_sent_ms = fl_clock_ms();
    }
    for (size_t i = 0; i < d->cfg->labels.count; i++)
        free(labels[i].key);
    free(labels);
    free(targets);
    free(holding);
    free(ends);
}

/* The session. */

static void
s_down(fl_ag_daemon_t *d, const char *why)
{
    int64_t jitter = 0;

    if (why != NULL)
        fl_log_warning("agent", "disconnecting from the coordinator: %s; "
                       "reconnecting in about %lld ms", why,
                       (long long)d->backoff_ms);
    fl_link_close(&d->link);
    d->session = FL_AG_DOWN;
    d->connected = 0;
    /* Jitter (half to all of the backoff) so that a fleet restarted at
     * once does not reconnect at once. */
    jitter = d->backoff_ms / 2 +
             (int64_t)fl_random_uniform((uint32_t)(d->backoff_ms / 2 + 1));
    d->next_connect_ms = fl_clock_ms() + jitter;
    d->backoff_ms = d->backoff_ms * 2 > d->cfg->reconnect_max_ms
                        ? d->cfg->reconnect_max_ms
                        : d->backoff_ms * 2;
}

static void
s_connect(fl_ag_daemon_t *d)
{
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    fl_error_t err = FL_ERROR_INIT;

    o.max_message = d->cfg->max_message;
    o.linger_ms = 500;
    o.reconnect_ms = d->cfg->reconnect_min_ms;
    o.reconnect_max_ms = d->cfg->reconnect_max_ms;
    o.heartbeat_ms = d->cfg->hello_timeout_ms / 4;
    o.heartbeat_timeout_ms = d->cfg->hello_timeout_ms;
    if (fl_link_client(&d->link, d->cfg->endpoint, d->cert, d->server_key,
                       &o, 1, &err) != 0) {
        fl_log_error("agent", "%s", err.message);
        fl_error_clear(&err);
        s_down(d, NULL);
        return;
    }
    d->session = FL_AG_CONNECTING;
    d->hello_sent_ms = fl_clock_ms();
}

static void
s_link_events(fl_ag_daemon_t *d)
{
    fl_link_event_kind kind;
    int value;
    int64_t now = fl_clock_ms();

    while (d->link != NULL && fl_link_event(d->link, &kind, &value) == 1) {
        int loud = now - d->last_refusal_log_ms >= 30000;

        if (kind == FL_LINK_EV_READY) {
            d->connected = 1;
            fl_log_debug("agent", "CURVE handshake with %s done",
                         d->cfg->endpoint);
        } else if (kind == FL_LINK_EV_REFUSED ||
                   kind == FL_LINK_EV_FAILED) {
            if (loud && kind == FL_LINK_EV_REFUSED)
                fl_log_error("agent", "the coordinator at %s refused this "
                             "agent's certificate (ZAP status %d): is its "
                             "public half enrolled in the coordinator's "
                             "agents directory?", d->cfg->endpoint, value);
            else if (loud)
                fl_log_error("agent", "the CURVE handshake with %s failed: "
                             "the server there does not hold the key pinned "
                             "by coordinator.public_cert (%s); nothing is "
                             "sent to it", d->cfg->endpoint,
                             d->cfg->server_cert);
            if (loud)
                d->last_refusal_log_ms = now;
            /* ZeroMQ does not try again after a refused handshake: the
             * agent does, backing off, so that enrolling it (or the
             * right key pinned, and a SIGHUP) is enough. */
            s_down(d, NULL);
        }
    }
}

/* Results: journaled, kept until acknowledged, sent when online. */

static void
s_outbox_send(fl_ag_daemon_t *d, fl_ag_outbox_t *o)
{
    if (d->session != FL_AG_ONLINE || o->sent)
        return;
    if (s_send_raw(d, o->bytes, o->len) == 0)
        o->sent = 1;
}

static void
s_outbox_add(fl_ag_daemon_t *d, const char *id, unsigned char *bytes,
             size_t len)
{
    fl_ag_outbox_t *o = fl_calloc(1, sizeof(*o));

    snprintf(o->id, sizeof(o->id), "%s", id);
    o->bytes = bytes;
    o->len = len;
    fl_map_puts(d->outbox, o->id, o);
    s_outbox_send(d, o);
}

static void
s_outbox_free(fl_ag_outbox_t *o)
{
    if (o == NULL)
        return;
    free(o->bytes);
    free(o);
}

/* A command's result: journaled, then sent; the job is done. */
static void
s_finish(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    fl_wire_msg_t m;
    fl_buf_t out = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;
    const char *id = job->cmd.u.command.id;
    size_t len = 0;
    fl_log_field f[3] = {{"target", job->cmd.u.command.target},
                         {"rollout", job->cmd.u.command.rollout},
                         {"command", id}};

    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_RESULT;
    m.u.result = job->result;
    fl_log_emit(strcmp(job->result.status, "ok") == 0 ? FL_LOG_INFO
                                                      : FL_LOG_WARNING,
                "agent", f, 3, "%s %s on \"%s\": %s%s%s",
                job->result.action, id, job->cmd.u.command.target,
                job->result.status, job->result.error ? ": " : "",
                job->result.error ? job->result.error : "");
    if (fl_wire_encode(&out, &m, &err) != 0 ||
        fl_journal_put(d->journal, id, "res", out.data, out.len, &err) != 0)
        /* The command file stays: the command runs again after a
         * restart, and the ledger answers it. */
        fl_log_error("agent", "could not keep the result of %s: %s", id,
                     err.message);
    fl_map_removes(d->jobs, id);
    len = out.len; /* before the detach empties it */
    s_outbox_add(d, id, (unsigned char *)fl_buf_detach(&out), len);
    fl_error_clear(&err);
    fl_ag_job_free(job);
}

/* Finishes a job at once, without running it. */
static void
s_answer(fl_ag_daemon_t *d, fl_ag_job_t *job, const char *status,
         const fl_error_t *err)
{
    fl_wire_result_t *r = &job->result;
    const char *action = job->cmd.type == FL_WIRE_ROLLBACK ? "rollback"
                         : job->cmd.type == FL_WIRE_PLAN   ? "plan"
                         : job->cmd.type == FL_WIRE_BASELINE ? "baseline"
                         : job->cmd.type == FL_WIRE_CANCEL ? "cancel"
                                                           : "apply";

    r->id = fl_strdup(job->cmd.u.command.id);
    r->rollout = fl_strdup(job->cmd.u.command.rollout);
    r->target = fl_strdup(job->cmd.u.command.target);
    r->action = fl_strdup(action);
    r->status = fl_strdup(status);
    if (err != NULL) {
        r->error = fl_strdup(err->message);
        r->detail = err->detail ? fl_strdup(err->detail) : NULL;
        r->hint = err->hint ? fl_strdup(err->hint) : NULL;
    }
    job->has_result = 1;
    s_finish(d, job);
}

/* Targets: one command at a time. */

static void
s_target_submit(fl_ag_daemon_t *d, fl_ag_target_t *t, fl_ag_job_t *job)
{
    t->running = job;
    t->runs++;
    job->target = fl_strdup(t->name);
    job->dsn = fl_strdup(t->dsn);
    job->schema = t->schema ? fl_strdup(t->schema) : NULL;
    job->environment = fl_strdup(t->environment);
    job->labels = fl_calloc(t->nlabels + 1, sizeof(char *));
    for (size_t i = 0; i < t->nlabels; i++)
        job->labels[i] = fl_strdup(t->labels[i]);
    job->nlabels = t->nlabels;
    /* Its read of the ledger, if made apart, is cut as the others are. */
    s_read_out(d, job);
    fl_workers_submit(d->workers, job, 1);
}

static int s_still_good(fl_ag_daemon_t *d, const fl_ag_bundle_t *b,
                        const fl_ag_job_t *job, fl_error_t *err);

/*
 * Starts job on t, its bundle checked again first: it may have waited
 * (behind another command for t, or parked for t's discovery) since it
 * was checked as the bundle became ready, and its signer's key may be
 * gone from the trust store meanwhile, or the bundle expired.  Before,
 * such a command ran (found by an audit).  0 started; -1 answered
 * refused.
 */
static int
s_target_start(fl_ag_daemon_t *d, fl_ag_target_t *t, fl_ag_job_t *job)
{
    fl_ag_bundle_t *b = fl_map_gets(d->bundles, job->cmd.u.command.bundle_id);
    fl_error_t err = FL_ERROR_INIT;

    if (b != NULL && b->state == FL_AG_BUNDLE_READY &&
        s_still_good(d, b, job, &err) != 0) {
        s_answer(d, job, "refused", &err);
        fl_error_clear(&err);
        return -1;
    }
    s_target_submit(d, t, job);
    return 0;
}

/* The first of t's waiting commands that may start, started. */
static void
s_target_next(fl_ag_daemon_t *d, fl_ag_target_t *t)
{
    while (t->running == NULL && t->wait_head != NULL) {
        fl_ag_job_t *next = t->wait_head;

        t->wait_head = next->next;
        if (t->wait_head == NULL)
            t->wait_tail = NULL;
        next->next = NULL;
        FL_IGNORE(s_target_start(d, t, next)); /* refused: the next */
    }
}

/* Appends job to the list head..tail (a target's, a bundle's, parked). */
static void
s_job_append(fl_ag_job_t **head, fl_ag_job_t **tail, fl_ag_job_t *job)
{
    job->next = NULL;
    if (*tail != NULL)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

static void s_target_enqueue(fl_ag_daemon_t *d, fl_ag_job_t *job);

/* Every rule has run: the commands parked go to their targets, or not. */
static void
s_unpark(fl_ag_daemon_t *d)
{
    fl_ag_job_t *job = d->parked_head;

    d->parked_head = d->parked_tail = NULL;
    while (job != NULL) {
        fl_ag_job_t *next = job->next;

        job->next = NULL;
        s_target_enqueue(d, job);
        job = next;
    }
}

static void
s_target_enqueue(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    fl_ag_target_t *t = fl_map_gets(d->targets, job->cmd.u.command.target);

    if (t == NULL && d->rules_ran < d->cfg->discover.count) {
        /*
         * A discovery rule has not run yet without an error (its server
         * starting after a reboot, say): the target may be one of its.
         * The command waits for it, journaled.  It was refused "nothing
         * ran on it", a command carried out again from the journal
         * after a kill -9 included, whose migrations had committed
         * (found by an audit).
         */
        fl_log_notice("agent", "command %s waits for the discovery of "
                      "\"%s\": a discovery rule has not run yet",
                      job->cmd.u.command.id, job->cmd.u.command.target);
        s_job_append(&d->parked_head, &d->parked_tail, job);
        return;
    }
    if (t == NULL) {
        fl_error_t err = FL_ERROR_INIT;
        FL_ERR(&err, FL_ENOTFOUND, "target \"%s\" is not owned by agent "
               "\"%s\"", job->cmd.u.command.target, d->cfg->name);
        /*
         * Carried out again from the journal, its run before the restart
         * may have committed statements: not "nothing ran", and failed,
         * not refused (before, a half-applied no-transaction migration
         * was answered "Nothing ran on it": found by an audit).
         */
        fl_error_set_hint(&err, "%s  The agent no longer has it among its "
                          "configured or discovered targets (its database "
                          "or schema gone, its configuration changed): see "
                          "flotilla targets.",
                          job->replayed
                              ? "This command's run before the agent's "
                                "restart may have changed it: read its "
                                "ledger (flotilla status --db ...)."
                              : "Nothing ran on it.");
        s_answer(d, job, job->replayed ? "failed" : "refused", &err);
        fl_error_clear(&err);
        return;
    }
    if (t->running == NULL) {
        FL_IGNORE(s_target_start(d, t, job)); /* or answered refused */
        return;
    }
    s_job_append(&t->wait_head, &t->wait_tail, job);
}

/* Bundles. */

static fl_ag_bundle_t *
s_bundle(fl_ag_daemon_t *d, const char *id)
{
    fl_ag_bundle_t *b = fl_map_gets(d->bundles, id);

    if (b == NULL) {
        b = fl_calloc(1, sizeof(*b));
        snprintf(b->id, sizeof(b->id), "%s", id);
        fl_map_puts(d->bundles, b->id, b);
    }
    return b;
}

static void
s_bundle_request(fl_ag_daemon_t *d, fl_ag_bundle_t *b)
{
    fl_wire_msg_t m;

    b->state = FL_AG_BUNDLE_REQUESTED;
    b->requested_ms = fl_clock_ms();
    if (d->session != FL_AG_ONLINE)
        return; /* asked again once online */
    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_BUNDLE_REQUEST;
    m.u.bundle_request.bundle_id = b->id;
    FL_IGNORE(s_send(d, &m)); /* asked again after hello_timeout */
}

/*
 * A bundle verified before is checked again at each command: its signer
 * still in the trust store (read again at most once a second, and at
 * each SIGHUP), as a bundle received now would be, and, unless job rolls
 * it back, within its lifetime.  Expiry stops a bundle from being
 * applied, planned or baselined, never from being rolled back: an
 * emergency rollback may come after it.  Before, a bundle stayed good
 * for the agent's life once verified: a release key removed to revoke
 * it, or a bundle past its expiry, still ran; and once expiry was
 * checked, it refused rollbacks too.  0, or FL_EPROTO with err set.
 */
static int
s_still_good(fl_ag_daemon_t *d, const fl_ag_bundle_t *b,
             const fl_ag_job_t *job, fl_error_t *err)
{
    int64_t now_ms = fl_clock_ms();
    int64_t expires = fl_bundle_expires(b->src.bundle);

    if (d->trust_ms == 0 || now_ms - d->trust_ms >= 1000) {
        fl_error_t lerr = FL_ERROR_INIT;

        fl_trust_destroy(&d->trust);
        fl_free(&d->trust_error);
        if (fl_trust_load(&d->trust, d->cfg->trust, &lerr) != 0)
            d->trust_error = fl_strdup(lerr.message ? lerr.message : "");
        fl_error_clear(&lerr);
        d->trust_ms = now_ms;
    }
    if (d->trust == NULL) {
        FL_ERR(err, FL_EPROTO, "bundle \"%s\" refused: the trust store "
               "could not be read: %s", b->id, d->trust_error);
        return FL_EPROTO;
    }
    if (!fl_trust_has_signer(d->trust, b->src.signer)) {
        FL_ERR(err, FL_EPROTO, "bundle \"%s\" refused: its signer \"%s\" "
               "is no longer in this agent's trust store", b->id,
               b->src.signer);
        return FL_EPROTO;
    }
    if (job->cmd.type != FL_WIRE_ROLLBACK && (int64_t)time(NULL) >= expires) {
        char at[64];

        fl_bundle_format_time(at, sizeof(at), expires);
        FL_ERR(err, FL_EPROTO, "bundle \"%s\" refused: it expired at %s",
               b->id, at);
        fl_error_set_hint(err, "Build and sign it again, with a new "
                               "release sequence.");
        return FL_EPROTO;
    }
    return 0;
}

/*
 * A target's commands run in the order they came, whatever their
 * bundles: each waits in its target's order list until every command
 * that came before it has gone to the target or been answered.  Before,
 * a command whose bundle was verified already went to its target at
 * once, ahead of an earlier one whose bundle was still being fetched or
 * verified: the later bundle applied first, and the earlier one was then
 * refused as an older release (found by an audit).
 */
static void
s_order_add(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    const char *name = job->cmd.u.command.target;
    fl_ag_order_t *o = fl_map_gets(d->orders, name);

    if (o == NULL) {
        o = fl_calloc(1, sizeof(*o));
        o->target = fl_strdup(name);
        fl_map_puts(d->orders, o->target, o);
    }
    job->order_next = NULL;
    job->order_ready = 0;
    if (o->tail != NULL)
        o->tail->order_next = job;
    else
        o->head = job;
    o->tail = job;
}

static void
s_order_free(fl_ag_order_t *o)
{
    free(o->target);
    free(o);
}

/*
 * job's bundle is settled: it may go to its target once those before it
 * have (go), or it is about to be answered and leaves its list (!go).
 * Then the commands at the head of the list that may go, go.
 */
static void
s_order_release(fl_ag_daemon_t *d, fl_ag_job_t *job, int go)
{
    fl_ag_order_t *o = fl_map_gets(d->orders, job->cmd.u.command.target);
    fl_ag_job_t **pp = NULL;

    FL_ASSERT(o != NULL);
    if (go) {
        job->order_ready = 1;
    } else {
        for (pp = &o->head; *pp != job; pp = &(*pp)->order_next)
            FL_ASSERT(*pp != NULL);
        *pp = job->order_next;
        if (o->tail == job) {
            o->tail = NULL;
            for (fl_ag_job_t *j = o->head; j != NULL; j = j->order_next)
                o->tail = j;
        }
        job->order_next = NULL;
    }
    while (o->head != NULL && o->head->order_ready) {
        fl_ag_job_t *next = o->head;

        o->head = next->order_next;
        if (o->head == NULL)
            o->tail = NULL;
        next->order_next = NULL;
        s_target_enqueue(d, next);
    }
    if (o->head == NULL) {
        fl_map_removes(d->orders, o->target);
        s_order_free(o);
    }
}

/* Takes the bundle's waiting jobs to their targets, or refuses them. */
static void
s_bundle_release(fl_ag_daemon_t *d, fl_ag_bundle_t *b)
{
    while (b->wait_head != NULL) {
        fl_ag_job_t *job = b->wait_head;
        fl_error_t err = FL_ERROR_INIT;

        b->wait_head = job->next;
        job->next = NULL;
        if (b->state == FL_AG_BUNDLE_READY &&
            s_still_good(d, b, job, &err) != 0) {
            s_order_release(d, job, 0);
            s_answer(d, job, "refused", &err);
        } else if (b->state == FL_AG_BUNDLE_READY) {
            job->src = &b->src;
            s_order_release(d, job, 1);
        } else {
            FL_ERR(&err, FL_EPROTO, "%s", b->error);
            fl_error_set_hint(&err, "This agent verifies every bundle "
                                    "against its own trusted keys "
                                    "(\"trust\"), whoever sent it.");
            s_order_release(d, job, 0);
            s_answer(d, job, "refused", &err);
        }
        fl_error_clear(&err);
    }
    b->wait_tail = NULL;
}

/* A command waits for its bundle: cached, being fetched, or asked for. */
static void
s_schedule(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    const char *id = job->cmd.u.command.bundle_id;
    fl_ag_bundle_t *b = NULL;

    if (!fl_journal_valid_id(id)) {
        fl_error_t err = FL_ERROR_INIT;
        FL_ERR(&err, FL_EPROTO, "bundle id \"%.64s\" is not a bundle id", id);
        s_answer(d, job, "refused", &err);
        fl_error_clear(&err);
        return;
    }
    s_order_add(d, job);
    b = s_bundle(d, id);
    if (b->state == FL_AG_BUNDLE_READY || b->state == FL_AG_BUNDLE_BAD) {
        job->next = NULL;
        b->wait_head = b->wait_tail = job;
        s_bundle_release(d, b);
        return;
    }
    s_job_append(&b->wait_head, &b->wait_tail, job);
    if (b->state == FL_AG_BUNDLE_NONE) {
        unsigned char *bytes = NULL;
        size_t len = 0;

        if (fl_journal_bundle_get(d->journal, id, &bytes, &len, NULL) == 0) {
            fl_ag_job_t *v = s_job_new(FL_AG_JOB_VERIFY);
            v->bundle_id = fl_strdup(id);
            v->bytes = bytes;
            v->len = len;
            v->from_cache = 1;
            b->state = FL_AG_BUNDLE_VERIFYING;
            fl_workers_submit(d->workers, v, 1);
        } else {
            s_bundle_request(d, b);
        }
    }
}

static void
s_bundle_received(fl_ag_daemon_t *d, fl_wire_bundle_t *t)
{
    fl_ag_bundle_t *b = fl_map_gets(d->bundles, t->bundle_id);
    fl_ag_job_t *v = NULL;

    if (b == NULL || b->state != FL_AG_BUNDLE_REQUESTED) {
        fl_log_debug("agent", "ignored a bundle not asked for");
        return;
    }
    v = s_job_new(FL_AG_JOB_VERIFY);
    v->bundle_id = fl_strdup(t->bundle_id);
    v->bytes = t->data;
    v->len = t->len;
    t->data = NULL; /* taken */
    t->len = 0;
    b->state = FL_AG_BUNDLE_VERIFYING;
    fl_workers_submit(d->workers, v, 1);
}

static void
s_bundle_verified(fl_ag_daemon_t *d, fl_ag_job_t *v)
{
    fl_ag_bundle_t *b = fl_map_gets(d->bundles, v->bundle_id);
    fl_log_field f[1] = {{"bundle", v->bundle_id}};

    if (b == NULL)
        return;
    if (v->rc != 0) {
        b->state = FL_AG_BUNDLE_BAD;
        free(b->error);
        b->error = fl_asprintf("bundle \"%s\" refused: %s", v->bundle_id,
                               v->err.message);
        fl_log_emit(FL_LOG_ERROR, "agent", f, 1, "%s", b->error);
    } else {
        fl_error_t err = FL_ERROR_INIT;

        b->src = v->verified;
        memset(&v->verified, 0, sizeof(v->verified));
        b->state = FL_AG_BUNDLE_READY;
        if (!v->from_cache &&
            fl_journal_bundle_put(d->journal, b->id, v->bytes, v->len,
                                  &err) != 0) {
            fl_log_warning("agent", "could not cache bundle %s: %s", b->id,
                           err.message);
            fl_error_clear(&err);
        }
        fl_log_emit(FL_LOG_INFO, "agent", f, 1, "bundle %s verified (signer "
                    "%s)", b->id, b->src.signer);
    }
    s_bundle_release(d, b);
}

/* Commands from the coordinator. */

/*
 * 1 when command id (a command's or a cancel's) needs nothing more: an
 * id that cannot name a journal file (ignored), one answered already
 * (the answer is sent again), or one queued or running (its answer will
 * come).  Without it a repeated id would replace its answer in the
 * outbox, and one too long would be cut short there, its
 * acknowledgement never matching it.
 */
static int
s_seen(fl_ag_daemon_t *d, const char *id)
{
    fl_ag_outbox_t *o = NULL;

    if (!fl_journal_valid_id(id)) {
        fl_log_warning("agent", "ignored a command whose id is not "
                       "[A-Za-z0-9_-]{1,64}");
        return 1;
    }
    if ((o = fl_map_gets(d->outbox, id)) != NULL) {
        o->sent = 0; /* answered already: the answer again */
        s_outbox_send(d, o);
        return 1;
    }
    return fl_map_gets(d->jobs, id) != NULL;
}

/* s_command's how. */
#define S_CMD_JOURNALED 1 /* carried out again from the journal */
#define S_CMD_CANCELLED 2 /* ... and cancelled before (its ID.cancel) */
#define S_CMD_STOPPED 4   /* ... and its run cut by the stop (ID.stop) */

static void
s_command(fl_ag_daemon_t *d, fl_wire_msg_t *m, const void *raw, size_t len,
          int how)
{
    const char *id = m->u.command.id;
    fl_ag_job_t *job = NULL;
    fl_error_t err = FL_ERROR_INIT;

    if (s_seen(d, id))
        return;
    job = s_job_new(FL_AG_JOB_RUN);
    job->cmd = *m;
    memset(m, 0, sizeof(*m)); /* taken */
    fl_map_puts(d->jobs, job->cmd.u.command.id, job);
    /*
     * Nobody else sees the job yet: no lock.  No cancel_timeout: the job
     * runs no statement to cancel, and s_abort_overdue closing its
     * connection would cut the ledger reads that say whether its run
     * before the restart changed the target.
     */
    job->cancelled = (how & S_CMD_CANCELLED) != 0;
    job->replayed = (how & S_CMD_JOURNALED) != 0;
    job->after_stop = (how & S_CMD_STOPPED) != 0;
    if (!(how & S_CMD_JOURNALED) &&
        fl_journal_put(d->journal, id, "cmd", raw, len, &err) != 0) {
        /* Unrecorded work could be lost: refuse it. */
        s_answer(d, job, "failed", &err);
        fl_error_clear(&err);
        return;
    }
    s_schedule(d, job);
}

/* Takes job out of list head..tail: 1 when it was there. */
static int
s_job_unlink(fl_ag_job_t **head, fl_ag_job_t **tail, fl_ag_job_t *job)
{
    fl_ag_job_t *prev = NULL;

    for (fl_ag_job_t *j = *head; j != NULL; prev = j, j = j->next) {
        if (j != job)
            continue;
        if (prev != NULL)
            prev->next = j->next;
        else
            *head = j->next;
        if (*tail == j)
            *tail = prev;
        j->next = NULL;
        return 1;
    }
    return 0;
}

/*
 * A cancelled command still waiting for its bundle is answered cancelled
 * at once, and leaves its target's order list: the commands after it go
 * on.  Before, it kept its place until the bundle came, and when it
 * never did (the coordinator no longer had it, or it was too large for
 * this agent's max_message), every later command for its target waited
 * for good (found by an audit).  Not one carried out again from the
 * journal: its run before the restart may have changed the target, which
 * only its run's ledger read tells (fl_ag_run).
 */
static void
s_cancel_waiting(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    fl_ag_bundle_t *b = fl_map_gets(d->bundles, job->cmd.u.command.bundle_id);
    fl_error_t err = FL_ERROR_INIT;

    if (job->replayed || job->src != NULL || b == NULL ||
        !s_job_unlink(&b->wait_head, &b->wait_tail, job))
        return;
    s_order_release(d, job, 0);
    FL_ERR(&err, FL_ECANCELLED, "cancelled before it started, its bundle "
           "not received yet");
    s_answer(d, job, "cancelled", &err);
    fl_error_clear(&err);
}

/*
 * Cancels the command of rollout on target, queued or running (how:
 * S_CMD_JOURNALED when the cancel is carried out again from the
 * journal).  The command's journal entry says so (ID.cancel): carried
 * out again after a restart, it is answered cancelled rather than run.
 * Before, an agent killed after a cancel (of a run whose statement had
 * not ended yet, or of a queued command) ran the command again from its
 * journal, to the end.
 */
static void
s_cancel(fl_ag_daemon_t *d, fl_wire_msg_t *m, const void *raw, size_t len,
         int how)
{
    fl_ag_job_t *job = NULL, *found = NULL;
    size_t pos = 0;
    fl_error_t err = FL_ERROR_INIT;

    if (s_seen(d, m->u.command.id))
        return;
    while ((job = fl_map_next(d->jobs, &pos)) != NULL)
        if (job->cmd.type != FL_WIRE_CANCEL &&
            strcmp(job->cmd.u.command.target, m->u.command.target) == 0 &&
            strcmp(job->cmd.u.command.rollout, m->u.command.rollout) == 0)
            found = job;
    if (found != NULL) {
        if (fl_journal_put(d->journal, found->cmd.u.command.id, "cancel",
                           "", 0, &err) != 0) {
            fl_log_warning("agent", "the cancel of command %s is not "
                           "journaled (%s): a restart before it ends runs it "
                           "again", found->cmd.u.command.id, err.message);
            fl_error_clear(&err);
        }
        fl_log_notice("agent", "command %s on \"%s\" cancelled by the "
                      "coordinator", found->cmd.u.command.id,
                      found->cmd.u.command.target);
        pthread_mutex_lock(&found->lock);
        found->cancelled = 1;
        if (found->pipeline != NULL)
            fl_pipeline_cancel(found->pipeline);
        pthread_mutex_unlock(&found->lock);
        if (found->cancel_ms == 0)
            found->cancel_ms = fl_clock_ms();
        s_cancel_waiting(d, found); /* may answer and free it */
    }
    /* The cancel's own answer: whether there was something to cancel. */
    job = s_job_new(FL_AG_JOB_RUN);
    job->cmd = *m;
    memset(m, 0, sizeof(*m));
    fl_map_puts(d->jobs, job->cmd.u.command.id, job);
    if (!(how & S_CMD_JOURNALED))
        FL_IGNORE(fl_journal_put(d->journal, job->cmd.u.command.id, "cmd",
                                 raw, len, NULL)); /* a lost cancel is only
                                                      an answer lost */
    if (found == NULL) {
        FL_ERR(&err, FL_ENOTFOUND, "nothing of rollout \"%s\" to cancel on "
               "\"%s\"", job->cmd.u.command.rollout,
               job->cmd.u.command.target);
        s_answer(d, job, "refused", &err);
    } else {
        s_answer(d, job, "ok", NULL);
    }
    fl_error_clear(&err);
}

static void
s_acked(fl_ag_daemon_t *d, const fl_wire_result_ack_t *a)
{
    for (size_t i = 0; i < a->nids; i++) {
        fl_ag_outbox_t *o = fl_map_removes(d->outbox, a->ids[i]);

        if (o == NULL)
            continue;
        fl_journal_remove(d->journal, o->id);
        s_outbox_free(o);
    }
}

static void s_gather_all(fl_ag_daemon_t *d);

static void
s_welcome(fl_ag_daemon_t *d, const fl_wire_welcome_t *w)
{
    fl_ag_outbox_t *o = NULL;
    fl_ag_bundle_t *b = NULL;
    fl_ag_target_t *t = NULL;
    size_t pos = 0;

    d->session = FL_AG_ONLINE;
    d->backoff_ms = d->cfg->reconnect_min_ms;
    d->heartbeat_ms = w->heartbeat_ms > 0 ? w->heartbeat_ms : 1000;
    d->timeout_ms = w->timeout_ms > d->heartbeat_ms ? w->timeout_ms
                                                    : 10 * d->heartbeat_ms;
    d->next_heartbeat_ms = fl_clock_ms() + d->heartbeat_ms;
    fl_log_notice("agent", "online with coordinator \"%s\" at %s: %zu "
                  "targets, %zu results to send again",
                  w->coordinator, d->cfg->endpoint, fl_map_count(d->targets),
                  fl_map_count(d->outbox));
    while ((o = fl_map_next(d->outbox, &pos)) != NULL) {
        o->sent = 0;
        s_outbox_send(d, o);
    }
    pos = 0;
    while ((b = fl_map_next(d->bundles, &pos)) != NULL)
        if (b->state == FL_AG_BUNDLE_REQUESTED)
            s_bundle_request(d, b);
    /*
     * A new session reads every ledger (it may have changed while the
     * agent was away); a hello sent again online because discovery
     * changed the targets does not: the new ones are read after the
     * discovery (s_gather_discovered), and reading every tenant's at each
     * change cost a session on every tenant database.
     */
    if (!d->rehello)
        s_gather_all(d);
    d->rehello = 0;
    pos = 0;
    while ((t = fl_map_next(d->targets, &pos)) != NULL)
        if (t->unsent)
            s_send_state(d, t);
}

static void
s_message(fl_ag_daemon_t *d, const fl_link_msg_t *lm)
{
    fl_wire_msg_t m;
    fl_error_t err = FL_ERROR_INIT;

    d->last_rx_ms = fl_clock_ms();
    if (fl_wire_decode(&m, lm->data, lm->len, &err) != 0) {
        fl_log_warning("agent", "malformed message from the coordinator: %s",
                       err.message);
        fl_error_clear(&err);
        return;
    }
    switch (m.type) {
    case FL_WIRE_WELCOME:
        s_welcome(d, &m.u.welcome);
        break;
    case FL_WIRE_HEARTBEAT:
        break;
    case FL_WIRE_APPLY:
    case FL_WIRE_ROLLBACK:
    case FL_WIRE_PLAN:
    case FL_WIRE_BASELINE:
        s_command(d, &m, lm->data, lm->len, 0);
        break;
    case FL_WIRE_CANCEL:
        s_cancel(d, &m, lm->data, lm->len, 0);
        break;
    case FL_WIRE_BUNDLE:
        s_bundle_received(d, &m.u.bundle);
        break;
    case FL_WIRE_RESULT_ACK:
        s_acked(d, &m.u.result_ack);
        break;
    case FL_WIRE_ERROR:
        if (strcmp(m.u.error.code, "session") == 0) {
            fl_log_info("agent", "the coordinator has no session for this "
                        "agent: saying hello");
            s_send_hello(d);
        } else if (strcmp(m.u.error.code, "revoked") == 0) {
            fl_log_error("agent", "the coordinator revoked this agent: %s",
                         m.u.error.message);
            s_down(d, "revoked");
        } else {
            fl_log_warning("agent", "the coordinator reports: %s",
                           m.u.error.message);
        }
        break;
    default:
        fl_log_warning("agent", "ignored a \"%s\" from the coordinator",
                       fl_wire_type_name(m.type));
    }
    fl_wire_msg_release(&m);
}

/* Background work: ledger state and discovery. */

static void
s_gather(fl_ag_daemon_t *d, fl_ag_target_t *t)
{
    fl_ag_job_t *job = NULL;

    if (t->gathering || t->running != NULL)
        return;
    job = s_job_new(FL_AG_JOB_GATHER);
    job->target = fl_strdup(t->name);
    job->dsn = fl_strdup(t->dsn);
    job->schema = t->schema ? fl_strdup(t->schema) : NULL;
    job->runs = t->runs;
    t->gathering = 1;
    s_read_out(d, job);
    fl_workers_submit(d->workers, job, 0);
}

static void
s_gather_all(fl_ag_daemon_t *d)
{
    fl_ag_target_t *t = NULL;
    size_t pos = 0;

    while ((t = fl_map_next(d->targets, &pos)) != NULL)
        s_gather(d, t);
    d->next_state_ms = fl_clock_ms() + d->cfg->state_interval_ms;
}

/*
 * After a discovery: the ledgers of the targets whose state is not known
 * (new, or unreachable when last read), or every one when a SIGHUP asked.
 * Each read is a new connection, so reading every ledger at every
 * discovery grew with the tenants (state_interval, in s_tick, reads them
 * all).
 */
static void
s_gather_discovered(fl_ag_daemon_t *d)
{
    fl_ag_target_t *t = NULL;
    size_t pos = 0;

    if (d->gather_all) {
        d->gather_all = 0;
        s_gather_all(d);
        return;
    }
    while ((t = fl_map_next(d->targets, &pos)) != NULL)
        if (!t->known)
            s_gather(d, t);
}

static void
s_discover_all(fl_ag_daemon_t *d)
{
    for (size_t i = 0; i < d->cfg->discover.count; i++) {
        fl_ag_job_t *job = s_job_new(FL_AG_JOB_DISCOVER);
        job->rule = i;
        d->discovering++;
        s_read_out(d, job);
        fl_workers_submit(d->workers, job, 0);
    }
    d->next_discovery_ms = fl_clock_ms() + d->cfg->discovery_interval_ms;
}

/*
 * A journal file that cannot be read back (a disk's damage, a hand's
 * edit) is renamed ID.EXT.damaged with a warning naming it; it was
 * deleted without a word.  A command lost this way is sent again by the
 * coordinator, which has no result for it; the ledger answers it.
 */
static void
s_set_aside(fl_ag_daemon_t *d, const char *id, const char *ext,
            const fl_error_t *why)
{
    fl_error_t err = FL_ERROR_INIT;
    char *to = fl_journal_set_aside(d->journal, id, ext, &err);

    if (to != NULL)
        fl_log_warning("agent", "journal: %s.%s could not be read back (%s); "
                       "set aside as %s", id, ext,
                       why->message ? why->message : "unknown", to);
    else
        fl_log_error("agent", "journal: %s.%s could not be read back (%s), "
                     "nor set aside: %s", id, ext,
                     why->message ? why->message : "unknown",
                     err.message);
    free(to);
    fl_error_clear(&err);
}

/*
 * 0 when data (journal/ID.res) is a result of command id; else an
 * error code, err set.  A result file that reads but is not one was
 * sent as it was: the coordinator closed the session on the malformed
 * message, and the agent sent it again at each reconnection, for ever.
 */
static int
s_result_check(const char *id, const unsigned char *data, size_t len,
               fl_error_t *err)
{
    fl_wire_msg_t m;
    int rc = 0;

    if ((rc = fl_wire_decode(&m, data, len, err)) != 0)
        return rc;
    if (m.type != FL_WIRE_RESULT || m.u.result.id == NULL ||
        strcmp(m.u.result.id, id) != 0)
        rc = FL_ERR(err, FL_EINVAL, "it is no result of command %s", id);
    fl_wire_msg_release(&m);
    return rc;
}

/*
 * 0 and *m decoded when data (journal/ID.cmd) is a command (or a
 * cancel) of id; else an error code, err set.  One that decoded as
 * something else stayed in the journal for ever, and one of another id
 * was carried out under that id at every start (found by an audit).
 */
static int
s_command_check(const char *id, const unsigned char *data, size_t len,
                fl_wire_msg_t *m, fl_error_t *err)
{
    int rc = 0;

    if ((rc = fl_wire_decode(m, data, len, err)) != 0)
        return rc;
    if ((m->type != FL_WIRE_APPLY && m->type != FL_WIRE_ROLLBACK &&
         m->type != FL_WIRE_PLAN && m->type != FL_WIRE_BASELINE &&
         m->type != FL_WIRE_CANCEL) ||
        m->u.command.id == NULL || strcmp(m->u.command.id, id) != 0) {
        rc = FL_ERR(err, FL_EINVAL, "it is no command %s", id);
        fl_wire_msg_release(m);
    }
    return rc;
}

/* After the first discovery: the journal's commands and results. */
static void
s_recover(fl_ag_daemon_t *d)
{
    char **ids = NULL;
    size_t n = 0, resent = 0, rerun = 0;
    fl_error_t err = FL_ERROR_INIT;

    if (fl_journal_list(d->journal, &ids, &n, &err) != 0) {
        fl_log_error("agent", "%s", err.message);
        fl_error_clear(&err);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char *data = NULL;
        size_t len = 0;
        fl_wire_msg_t m;
        fl_error_t res_err = FL_ERROR_INIT, cmd_err = FL_ERROR_INIT;
        int res_rc = 0, cmd_rc = 0;

        res_rc = fl_journal_get(d->journal, ids[i], "res", &data, &len,
                                &res_err);
        if (res_rc == 0 && s_result_check(ids[i], data, len, &res_err) != 0)
            res_rc = FL_EINVAL;
        if (res_rc == 0) {
            s_outbox_add(d, ids[i], data, len);
            resent++;
            goto next;
        }
        fl_free(&data);
        /*
         * A result file that exists but cannot be read, or is no result:
         * put aside, before its command, carried out again, answers.
         */
        if (res_rc != FL_ENOTFOUND)
            s_set_aside(d, ids[i], "res", &res_err);
        if ((cmd_rc = fl_journal_get(d->journal, ids[i], "cmd", &data, &len,
                                     &cmd_err)) == 0 &&
            (cmd_rc = s_command_check(ids[i], data, len, &m,
                                      &cmd_err)) == 0) {
            if (m.type != FL_WIRE_CANCEL) {
                int how = S_CMD_JOURNALED;

                if (fl_journal_has(d->journal, ids[i], "cancel"))
                    how |= S_CMD_CANCELLED;
                if (fl_journal_has(d->journal, ids[i], "stop"))
                    how |= S_CMD_STOPPED;
                s_command(d, &m, data, len, how);
                rerun++;
            } else {
                /* Its answer was not written: given now. */
                s_cancel(d, &m, data, len, S_CMD_JOURNALED);
            }
            fl_wire_msg_release(&m);
        } else if (cmd_rc != FL_ENOTFOUND) {
            /* A command file with nothing readable beside it: put aside,
             * and its cancel mark, which would be another's, goes. */
            s_set_aside(d, ids[i], "cmd", &cmd_err);
            fl_journal_drop(d->journal, ids[i], "cancel");
        }
        free(data);
    next:
        fl_error_clear(&res_err);
        fl_error_clear(&cmd_err);
        free(ids[i]);
    }
    free(ids);
    if (n > 0)
        fl_log_notice("agent", "journal: %zu results to send again, %zu "
                      "commands to carry out again", resent, rerun);
}

/* Finished work from the workers. */

static void
s_done(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    fl_ag_target_t *t = NULL;

    switch (job->kind) {
    case FL_AG_JOB_EVENT:
        if (d->session == FL_AG_ONLINE)
            FL_IGNORE(s_send_raw(d, job->encoded.data, job->encoded.len));
        break;
    case FL_AG_JOB_VERIFY:
        s_bundle_verified(d, job);
        break;
    case FL_AG_JOB_GATHER:
        s_read_back(d, job);
        t = fl_map_gets(d->targets, job->target);
        if (t == NULL)
            break;
        t->gathering = 0;
        /*
         * A command submitted since the read began (none ran when it
         * began: s_gather) may have changed the ledger after it: the read
         * is not the state.  The command's end sends the state it reads
         * after its work.
         */
        if (t->runs != job->runs) {
            fl_log_debug("agent", "the ledger of \"%s\" was read while a "
                         "command ran: a command overtook the read, which "
                         "is dropped", t->name);
            break;
        }
        fl_ag_target_take_state(t, &job->state);
        s_send_state(d, t);
        break;
    case FL_AG_JOB_DISCOVER:
        s_read_back(d, job);
        d->discovering--;
        if (fl_ag_targets_merge(d, job) && d->session == FL_AG_ONLINE)
            s_send_hello(d);
        if (job->rc == 0 && !d->rule_ran[job->rule]) {
            d->rule_ran[job->rule] = 1;
            d->rules_ran++;
        }
        if (d->discovering == 0 && !d->started) {
            d->started = 1;
            s_recover(d);
            s_gather_all(d);
        } else if (d->started && d->discovering == 0) {
            s_gather_discovered(d);
        }
        if (d->discovering == 0 && d->rules_ran == d->cfg->discover.count)
            s_unpark(d);
        break;
    case FL_AG_JOB_RUN:
        s_read_back(d, job);
        t = fl_map_gets(d->targets, job->target);
        if (t != NULL) {
            fl_ag_target_take_state(t, &job->state);
            t->running = NULL;
            s_target_next(d, t);
        }
        if (job->aborted && job->has_result) {
            /* Its error says the server closed the connection: the
             * agent did, and why. */
            char *detail = fl_asprintf(
                "%s%sThe agent closed the connection: the server did not "
                "end the cancelled statement within cancel_timeout (%lld "
                "ms); it rolls its transaction back when it runs again.",
                job->result.detail ? job->result.detail : "",
                job->result.detail ? "  " : "",
                (long long)d->cfg->cancel_timeout_ms);
            free(job->result.detail);
            job->result.detail = detail;
        }
        s_finish(d, job);
        if (t != NULL)
            s_send_state(d, t);
        return; /* s_finish freed it */
    default:
        break;
    }
    fl_ag_job_free(job);
}

/* Timers. */

/*
 * A cancelled run whose statement did not end within cancel_timeout: the
 * server took no cancel request (it does not answer at all), so the
 * run's connection is closed under it (fl_pipeline_abort); the run then
 * ends as on a connection lost, and its worker is free.
 */
static void
s_abort_overdue(fl_ag_daemon_t *d, int64_t now)
{
    fl_ag_job_t *job = NULL;
    size_t pos = 0;

    while ((job = fl_map_next(d->jobs, &pos)) != NULL) {
        int aborted = 0;

        if (job->cancel_ms == 0 || job->aborted ||
            now - job->cancel_ms < d->cfg->cancel_timeout_ms)
            continue;
        /* One not started yet (or opening its connection, whose wait is
         * bounded) is looked at again at the next tick. */
        pthread_mutex_lock(&job->lock);
        if (job->pipeline != NULL) {
            fl_pipeline_abort(job->pipeline);
            aborted = job->aborted = 1;
        }
        pthread_mutex_unlock(&job->lock);
        if (aborted)
            fl_log_warning("agent", "the cancelled statement on \"%s\" did "
                           "not end within %lld ms (cancel_timeout): its "
                           "connection is closed; the server rolls its "
                           "transaction back when it sees that",
                           job->target ? job->target : "?",
                           (long long)d->cfg->cancel_timeout_ms);
    }
}

static void
s_tick(fl_ag_daemon_t *d)
{
    int64_t now = fl_clock_ms();
    fl_ag_bundle_t *b = NULL;
    fl_ag_outbox_t *o = NULL;
    size_t pos = 0;

    if (d->started && d->cfg->discover.count > 0 &&
        now >= d->next_discovery_ms && d->discovering == 0)
        s_discover_all(d);
    if (d->started && now >= d->next_state_ms && d->discovering == 0)
        s_gather_all(d);
    /* Not at every turn of the loop: each walks every job or read out,
     * and the loop turns once per finished job (thousands after a
     * reconnect's reads). */
    if (now >= d->next_abort_ms) {
        s_abort_overdue(d, now);
        s_abort_reads(d, now, 0);
        d->next_abort_ms = now + 250;
    }
    switch (d->session) {
    case FL_AG_DOWN:
        if (now >= d->next_connect_ms)
            s_connect(d);
        break;
    case FL_AG_CONNECTING:
        if (d->started)
            s_send_hello(d);
        if (d->session == FL_AG_CONNECTING &&
            now - d->hello_sent_ms > d->cfg->hello_timeout_ms &&
            d->connected)
            s_down(d, "the hello could not be sent");
        break;
    case FL_AG_HELLO_SENT:
        if (now - d->hello_sent_ms > d->cfg->hello_timeout_ms)
            s_down(d, "no welcome within hello_timeout");
        break;
    case FL_AG_ONLINE:
        if (now - d->last_rx_ms > d->timeout_ms) {
            char *why = fl_asprintf("nothing heard from the coordinator for "
                                    "%lld ms", (long long)(now - d->last_rx_ms));
            s_down(d, why);
            free(why);
            break;
        }
        if (now >= d->next_heartbeat_ms) {
            fl_wire_msg_t m;
            memset(&m, 0, sizeof(m));
            m.type = FL_WIRE_HEARTBEAT;
            m.u.heartbeat.seq = (int64_t)++d->seq;
            m.u.heartbeat.time_ms = (int64_t)time(NULL) * 1000;
            FL_IGNORE(s_send(d, &m)); /* silence is the coordinator's cue */
            d->next_heartbeat_ms = now + d->heartbeat_ms;
        }
        while ((o = fl_map_next(d->outbox, &pos)) != NULL)
            s_outbox_send(d, o);
        pos = 0;
        while ((b = fl_map_next(d->bundles, &pos)) != NULL)
            if (b->state == FL_AG_BUNDLE_REQUESTED &&
                now - b->requested_ms > d->cfg->hello_timeout_ms)
                s_bundle_request(d, b);
        break;
    default:
        break;
    }
}

static int64_t
s_next_wake(const fl_ag_daemon_t *d)
{
    int64_t now = fl_clock_ms(), next = now + 100;

    if (d->session == FL_AG_ONLINE && d->next_heartbeat_ms < next)
        next = d->next_heartbeat_ms;
    if (d->session == FL_AG_DOWN && d->next_connect_ms < next)
        next = d->next_connect_ms;
    return next > now ? next - now : 0;
}

/* Start and stop. */

static int
s_start(fl_ag_daemon_t *d, fl_error_t *err)
{
    int rc;

    d->backup_dir = d->cfg->backup_dir
                        ? fl_strdup(d->cfg->backup_dir)
                        : fl_asprintf("%s/backups", d->cfg->state_dir);
    if ((rc = fl_transport_init(err)) != 0 ||
        (rc = fl_cert_load_secret(&d->cert, d->cfg->cert, err)) != 0 ||
        (rc = fl_cert_load_pinned(d->server_key, d->cfg->server_cert,
                                  err)) != 0 ||
        (rc = fl_journal_open(&d->journal, d->cfg->state_dir, d->cfg->fsync,
                              err)) != 0 ||
        (rc = fl_ag_targets_init(d, err)) != 0)
        return rc;
    {
        /* The trust store must load now: a typo must not wait for the
         * first bundle to show. */
        fl_trust_t *trust = NULL;
        if ((rc = fl_trust_load(&trust, d->cfg->trust, err)) != 0)
            return rc;
        fl_trust_destroy(&trust);
    }
    d->workers = fl_workers_start((int)d->cfg->max_parallel,
                                  (int)d->cfg->max_connections, s_work, d);
    d->backoff_ms = d->cfg->reconnect_min_ms;
    if (d->cfg->discover.count > 0) {
        s_discover_all(d);
    } else {
        d->started = 1;
        s_recover(d);
        s_gather_all(d);
    }
    s_connect(d);
    fl_log_notice("agent", "agent \"%s\" started: %zu static targets, %zu "
                  "discovery rules, coordinator %s", d->cfg->name,
                  d->cfg->targets.count, d->cfg->discover.count,
                  d->cfg->endpoint);
    return 0;
}

static void
s_stop(fl_ag_daemon_t *d)
{
    fl_ag_job_t *job = NULL, *next = NULL;
    fl_ag_order_t *ord = NULL;
    fl_ag_target_t *t = NULL;
    fl_ag_bundle_t *b = NULL;
    fl_ag_outbox_t *o = NULL;
    size_t pos = 0;

    /* Running statements are cancelled: their transactions roll back and
     * the journal runs the commands again at the next start. */
    while ((job = fl_map_next(d->jobs, &pos)) != NULL) {
        pthread_mutex_lock(&job->lock);
        /*
         * A run cut by this stop, not by the coordinator, leaves a failed
         * row in the ledger: marked, so that the run at the next start
         * does not take it for the command's answer (before, a SIGTERM
         * failed the targets it was migrating where kill -9 did not:
         * found by an audit).
         */
        if (job->pipeline != NULL && !job->cancelled &&
            job->cmd.type != FL_WIRE_CANCEL &&
            fl_journal_put(d->journal, job->cmd.u.command.id, "stop", "", 0,
                           NULL) != 0)
            fl_log_warning("agent", "the stop of command %s is not "
                           "journaled: at the next start its failure in "
                           "the ledger answers it", job->cmd.u.command.id);
        job->cancelled = 1;
        if (job->pipeline != NULL)
            fl_pipeline_cancel(job->pipeline);
        pthread_mutex_unlock(&job->lock);
        if (job->cancel_ms == 0)
            job->cancel_ms = fl_clock_ms();
    }
    /* A server that takes no cancel request keeps its statements: after
     * cancel_timeout their connections are closed (s_abort_overdue), so
     * that the workers end and the agent stops. */
    for (;;) {
        int64_t now = fl_clock_ms(), first = 0;

        pos = 0;
        while ((job = fl_map_next(d->jobs, &pos)) != NULL) {
            int running;

            pthread_mutex_lock(&job->lock);
            running = job->pipeline != NULL;
            pthread_mutex_unlock(&job->lock);
            if (running && !job->aborted &&
                (first == 0 || job->cancel_ms < first))
                first = job->cancel_ms;
        }
        if (first == 0)
            break;
        if (now - first >= d->cfg->cancel_timeout_ms)
            s_abort_overdue(d, now);
        else
            fl_clock_sleep_ms(20);
    }
    /* Reads are only reads: whatever they wait for, not any longer. */
    s_abort_reads(d, fl_clock_ms(), 1);
    fl_workers_stop(&d->workers, s_drop);
    fl_link_close(&d->link);
    /* Jobs never started or waiting were dropped or are in wait lists:
     * the journal keeps their commands. */
    pos = 0;
    while ((t = fl_map_next(d->targets, &pos)) != NULL) {
        while (t->wait_head != NULL) {
            job = t->wait_head;
            t->wait_head = job->next;
            fl_ag_job_free(job);
        }
        fl_ag_target_free(t);
    }
    while (d->parked_head != NULL) {
        job = d->parked_head;
        d->parked_head = job->next;
        fl_ag_job_free(job);
    }
    free(d->rule_ran);
    /* A job released by its bundle and waiting for an earlier one is in
     * its order list only; the others are in their bundle's. */
    pos = 0;
    while ((ord = fl_map_next(d->orders, &pos)) != NULL) {
        for (job = ord->head; job != NULL; job = next) {
            next = job->order_next;
            if (job->order_ready)
                fl_ag_job_free(job);
        }
        s_order_free(ord);
    }
    pos = 0;
    while ((b = fl_map_next(d->bundles, &pos)) != NULL) {
        while (b->wait_head != NULL) {
            job = b->wait_head;
            b->wait_head = job->next;
            fl_ag_job_free(job);
        }
        fl_source_close(&b->src);
        free(b->error);
        free(b);
    }
    pos = 0;
    while ((o = fl_map_next(d->outbox, &pos)) != NULL)
        s_outbox_free(o);
    fl_map_destroy(&d->targets);
    fl_map_destroy(&d->jobs);
    fl_map_destroy(&d->outbox);
    fl_map_destroy(&d->bundles);
    fl_map_destroy(&d->orders);
    fl_journal_close(&d->journal);
    fl_cert_destroy(&d->cert);
    fl_trust_destroy(&d->trust);
    free(d->trust_error);
    free(d->backup_dir);
}

static void
s_reload(fl_ag_daemon_t *d)
{
    fl_ag_bundle_t *b = NULL;
    size_t pos = 0;

    /* Bundles refused may pass now; they are asked for again when a
     * command needs them. */
    while ((b = fl_map_next(d->bundles, &pos)) != NULL)
        if (b->state == FL_AG_BUNDLE_BAD) {
            b->state = FL_AG_BUNDLE_NONE;
            fl_free(&b->error);
        }
    fl_daemon_reopen_log("agent", d->cfg->log_file);
    d->trust_ms = 0; /* read again at the next command */
    fl_log_notice("agent", "SIGHUP: trust store reloaded for the next "
                  "bundle; discovery runs now, then every ledger is read");
    if (!d->started)
        return;
    if (d->cfg->discover.count == 0) {
        s_gather_all(d);
        return;
    }
    d->gather_all = 1;
    if (d->discovering == 0)
        s_discover_all(d);
}

int
fl_agent_run(const fl_ag_settings_t *cfg)
{
    fl_ag_daemon_t d;
    fl_error_t err = FL_ERROR_INIT;
    int code = 0, sigfd = -1;

    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.targets = fl_map_new();
    d.jobs = fl_map_new();
    d.outbox = fl_map_new();
    d.bundles = fl_map_new();
    d.orders = fl_map_new();
    d.rule_ran = fl_calloc(cfg->discover.count + 1, 1);
    if (fl_daemon_logging(cfg->log_level, cfg->log_file, &err) != 0 ||
        (sigfd = fl_daemon_signals(&err)) < 0 || s_start(&d, &err) != 0) {
        code = fl_daemon_failed("agent", &err);
        goto cleanup;
    }
    while (!d.stopping) {
        fl_poll_item_t it[3] = {
            {d.link, -1, 0, 0},
            {NULL, fl_workers_fd(d.workers), 0, 0},
            {NULL, sigfd, 0, 0},
        };
        fl_ag_job_t *job = NULL;
        size_t n = d.link ? 3 : 2;

        if (d.link == NULL) {
            it[0] = it[1];
            it[1] = it[2];
        }
        if (fl_link_poll(it, n, s_next_wake(&d), &err) < 0) {
            fl_log_error("agent", "%s", err.message);
            fl_error_clear(&err);
            code = 1;
            break;
        }
        {
            int sig;
            while ((sig = fl_daemon_next_signal()) != 0) {
                if (sig == SIGHUP) {
                    s_reload(&d);
                } else {
                    fl_log_notice("agent", "stopping on signal %d", sig);
                    d.stopping = 1;
                }
            }
        }
        while ((job = fl_workers_done(d.workers)) != NULL)
            s_done(&d, job);
        if (d.link != NULL) {
            fl_link_msg_t m;
            s_link_events(&d);
            for (int i = 0; d.link != NULL && i < 1000; i++) {
                int rc = fl_link_recv(d.link, &m, &err);
                if (rc == 0)
                    break;
                if (rc == 1)
                    s_message(&d, &m);
                else
                    fl_log_warning("agent", "%s", err.message);
                fl_link_msg_release(&m);
                fl_error_clear(&err);
            }
        }
        s_tick(&d);
    }
cleanup:
    s_stop(&d);
    fl_error_clear(&err);
    fl_log_close_file();
    return code;
}
