/*
 * server.c - the coordinator's start-up, loop and shutdown (see
 * server.h), and the helpers coordinator_internal.h declares.
 */
#include "coordinator/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/daemon.h"
#include "common/dsn.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/str.h"
#include "coordinator/control.h"
#include "coordinator/coordinator_internal.h"
#include "coordinator/dispatch.h"
#include "coordinator/registry.h"
#include "coordinator/rollout.h"
#include "coordinator/store.h"

#define S_AGENT_DOMAIN "flotilla-agents"
#define S_OPERATOR_DOMAIN "flotilla-operators"
/* Messages taken from one endpoint per loop round, so neither starves. */
#define S_ROUND 5000

/* Helpers of coordinator_internal.h. */

int64_t
fl_co_now_ms(void)
{
    return fl_clock_ms();
}

int64_t
fl_co_wall_s(void)
{
    return (int64_t)time(NULL);
}

void
fl_co_new_id(char out[33])
{
    unsigned char r[16];

    fl_random_bytes(r, sizeof(r));
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

void
fl_co_labels_from_kv(fl_co_labels_t *out, const fl_codec_kv_t *kv, size_t n)
{
    out->keys = fl_calloc(n + 1, sizeof(char *));
    out->values = fl_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        out->keys[i] = fl_strdup(kv[i].key);
        out->values[i] = fl_strdup(kv[i].value);
    }
    out->n = n;
}

void
fl_co_labels_release(fl_co_labels_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->keys[i]);
        free(l->values[i]);
    }
    fl_free(&l->keys);
    fl_free(&l->values);
    l->n = 0;
}

int
fl_co_labels_match(const fl_co_labels_t *l, const fl_selector_t *sel)
{
    return fl_selector_matches(sel, (const char *const *)l->keys,
                               (const char *const *)l->values, l->n);
}

const char *
fl_co_arg(const fl_wire_control_request_t *req, const char *key)
{
    for (size_t i = 0; i < req->nargs; i++)
        if (strcmp(req->args[i].key, key) == 0)
            return req->args[i].value;
    return NULL;
}

char *
fl_co_clean(const char *s)
{
    return s ? fl_str_escape_controls(s, FL_STR_MULTILINE) : NULL;
}

char *
fl_co_clean_cut(const char *s, size_t max)
{
    size_t n = 0;
    char *head = NULL, *clean = NULL, *out = NULL;

    if (s == NULL)
        return NULL;
    n = strlen(s);
    if (n <= max)
        return fl_co_clean(s);
    /* Cut before a character, not inside one. */
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    head = fl_strndup(s, max);
    clean = fl_co_clean(head);
    out = fl_asprintf("%s... (%zu bytes cut)", clean, n - max);
    free(head);
    free(clean);
    return out;
}

int
fl_co_send_agent_raw(fl_co_server_t *s, fl_co_agent_t *a, const void *data,
                     size_t len)
{
    fl_error_t err = FL_ERROR_INIT;
    int rc = fl_link_send(s->agents_link, a->rid, a->rid_len, data, len,
                          &err);

    if (rc == 0) {
        s->stats.messages_out++;
    } else if (rc == FL_ENOTFOUND) {
        fl_registry_offline(s, a, "its connection is gone");
    } else if (rc != FL_ETIMEOUT) {
        fl_log_warning("coordinator", "could not send to agent \"%s\": %s",
                       a->name, err.message);
    }
    fl_error_clear(&err);
    return rc;
}

int
fl_co_send_agent(fl_co_server_t *s, fl_co_agent_t *a,
                 const fl_wire_msg_t *msg)
{
    fl_buf_t out = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;
    int rc = 0;

    if (a->rid_len == 0)
        return FL_ENOTFOUND;
    if ((rc = fl_wire_encode(&out, msg, &err)) != 0)
        fl_log_error("coordinator", "could not encode a %s for agent \"%s\": "
                     "%s", fl_wire_type_name(msg->type), a->name, err.message);
    else
        rc = fl_co_send_agent_raw(s, a, out.data, out.len);
    fl_buf_release(&out);
    fl_error_clear(&err);
    return rc;
}

void
fl_co_reply(fl_co_server_t *s, const unsigned char *rid, size_t rid_len,
            const char *request_id, int status, json_t *payload)
{
    fl_wire_msg_t m;
    fl_buf_t out = FL_BUF_INIT(0);
    char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    int rc = 0;

    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_CONTROL_REPLY;
    m.u.control_reply.id = (char *)request_id;
    m.u.control_reply.status = status;
    m.u.control_reply.payload = text;
    if (fl_wire_encode(&out, &m, NULL) == 0)
        rc = fl_link_send(s->control_link, rid, rid_len, out.data, out.len,
                          NULL);
    /* A reply that cannot go (the operator left, its pipe is full): the
     * operator's command times out and asks again. */
    if (rc != 0)
        fl_log_debug("control", "a reply could not be sent (%s)",
                     fl_error_code_name(rc));
    fl_buf_release(&out);
    free(text);
    json_decref(payload);
}

void
fl_co_reply_error(fl_co_server_t *s, const unsigned char *rid, size_t rid_len,
                  const char *request_id, int status, const fl_error_t *err)
{
    fl_co_reply(s, rid, rid_len, request_id, status,
                fl_json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "code",
                             fl_error_code_name(err->code), "message",
                             err->message ? err->message : "failed",
                             "detail", err->detail, "hint", err->hint));
}

fl_co_waiter_t *
fl_co_waiter_new(fl_co_server_t *s, const unsigned char *rid, size_t rid_len,
                 const fl_wire_control_request_t *req, int64_t min_after)
{
    const char *after = fl_co_arg(req, "after");
    const char *timeout = fl_co_arg(req, "timeout_ms");
    fl_co_waiter_t *w = NULL;
    int64_t a = min_after, t = 0;
    fl_error_t err = FL_ERROR_INIT;

    if ((after != NULL &&
         fl_parse_int(&a, after, min_after, INT64_MAX, &err) != 0) ||
        (timeout != NULL &&
         fl_parse_int(&t, timeout, 0, 3600000, &err) != 0)) {
        fl_co_reply_error(s, rid, rid_len, req->id, FL_CO_EXIT_USAGE, &err);
        fl_error_clear(&err);
        return NULL;
    }
    w = fl_calloc(1, sizeof(*w));
    memcpy(w->rid, rid, rid_len);
    w->rid_len = rid_len;
    w->request_id = fl_strdup(req->id);
    w->after = a;
    w->deadline_ms = fl_co_now_ms() + t;
    return w;
}

void
fl_co_waiters_free(fl_co_waiter_t **list)
{
    while (*list != NULL) {
        fl_co_waiter_t *w = *list;
        *list = w->next;
        free(w->request_id);
        free(w);
    }
}

/* Keys, trust: loaded at start and on SIGHUP. */

static int
s_load_keys(fl_co_server_t *s, fl_error_t *err)
{
    fl_certset_t *agents = NULL, *operators = NULL;
    fl_trust_t *trust = NULL;
    int rc = 0;

    if ((rc = fl_certset_load(&agents, s->cfg->agents_dir, "agents directory",
                              err)) != 0 ||
        (rc = fl_certset_load(&operators, s->cfg->operators_dir,
                              "operators directory", err)) != 0 ||
        (rc = fl_trust_load(&trust, s->cfg->trust, err)) != 0) {
        fl_certset_destroy(&agents);
        fl_certset_destroy(&operators);
        return rc;
    }
    fl_certset_destroy(&s->agent_keys);
    fl_certset_destroy(&s->operator_keys);
    fl_trust_destroy(&s->trust);
    s->agent_keys = agents;
    s->operator_keys = operators;
    s->trust = trust;
    if (s->zap != NULL) {
        fl_zap_set_keys(s->zap, S_AGENT_DOMAIN, s->agent_keys);
        fl_zap_set_keys(s->zap, S_OPERATOR_DOMAIN, s->operator_keys);
    }
    return 0;
}

static void
s_reload(fl_co_server_t *s)
{
    fl_error_t err = FL_ERROR_INIT;

    fl_daemon_reopen_log("coordinator", s->cfg->log_file);
    if (s_load_keys(s, &err) != 0) {
        fl_log_error("coordinator", "reload refused, the previous keys stay "
                     "in force: %s", err.message);
        fl_error_clear(&err);
        return;
    }
    fl_log_notice("coordinator", "reloaded: %zu agents and %zu operators "
                  "enrolled, %zu release keys trusted",
                  fl_certset_count(s->agent_keys),
                  fl_certset_count(s->operator_keys),
                  fl_trust_count(s->trust));
    fl_registry_revoke_unenrolled(s);
}

/* Agent messages. */

static void
s_malformed(fl_co_server_t *s, fl_co_agent_t *a, const char *what)
{
    fl_log_field f[2] = {{"agent", a->name}, {"key", a->key}};
    fl_wire_msg_t m;

    s->stats.malformed++;
    a->malformed++;
    /* Logged the first times and then at powers of two: a flood of
     * garbage must not flood the log. */
    if (a->malformed <= 3 || (a->malformed & (a->malformed - 1)) == 0)
        fl_log_emit(FL_LOG_WARNING, "coordinator", f, 2, "malformed message "
                    "from agent \"%s\" (%llu so far), its session is "
                    "closed: %s", a->name, (unsigned long long)a->malformed,
                    what);
    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_ERROR;
    m.u.error.code = (char *)fl_error_code_name(FL_EPROTO);
    m.u.error.message = "malformed message; the session is closed: say "
                        "hello again";
    FL_IGNORE(fl_co_send_agent(s, a, &m)); /* it is being dropped anyway */
    fl_registry_offline(s, a, "it sent a malformed message");
}

static void
s_agent_message(fl_co_server_t *s, const fl_link_msg_t *lm, int recv_rc,
                const fl_error_t *recv_err)
{
    fl_co_agent_t *a = NULL;
    fl_wire_msg_t m;
    fl_error_t err = FL_ERROR_INIT;

    if (fl_certset_find(s->agent_keys, lm->user_id) == NULL) {
        /* Revoked since its handshake: ignored (registry.c). */
        a = fl_registry_agent(s, lm->user_id, 0);
        if (a == NULL || a->malformed++ == 0)
            fl_log_warning("coordinator", "ignored a message from key %s, "
                           "which is not an enrolled agent's", lm->user_id);
        return;
    }
    a = fl_registry_agent(s, lm->user_id, 1);
    if (recv_rc == FL_EPROTO) {
        s_malformed(s, a, recv_err->message);
        return;
    }
    if (fl_wire_decode(&m, lm->data, lm->len, &err) != 0) {
        s_malformed(s, a, err.message);
        fl_error_clear(&err);
        return;
    }
    a->last_seen_ms = fl_co_now_ms();
    a->last_seen_wall = fl_co_wall_s();
    if (m.type == FL_WIRE_HELLO) {
        if (fl_registry_hello_part(s, a, lm->peer, lm->peer_len, &m,
                                   lm->len))
            return; /* kept until its last part */
    } else if (a->state != FL_CO_AGENT_ONLINE) {
        fl_wire_msg_t e;

        /* A session ended here (timeout, restart, revoked and back):
         * the agent must say hello again before anything else counts. */
        memcpy(a->rid, lm->peer, lm->peer_len);
        a->rid_len = lm->peer_len;
        memset(&e, 0, sizeof(e));
        e.type = FL_WIRE_ERROR;
        e.u.error.code = "session";
        e.u.error.message = "no session: say hello";
        FL_IGNORE(fl_co_send_agent(s, a, &e)); /* it asks again */
    } else {
        switch (m.type) {
        case FL_WIRE_HEARTBEAT:
            break;
        case FL_WIRE_LEDGER_REPLY:
            fl_registry_target_state(s, a, &m.u.ledger_reply.state);
            break;
        case FL_WIRE_BUNDLE_REQUEST:
            fl_dispatch_bundle_request(s, a, m.u.bundle_request.bundle_id);
            break;
        case FL_WIRE_STEP_EVENT:
            fl_dispatch_step_event(s, a, &m.u.step_event);
            break;
        case FL_WIRE_RESULT:
            fl_dispatch_result(s, a, &m.u.result);
            break;
        case FL_WIRE_ERROR: {
            char *msg = fl_co_clean(m.u.error.message);
            fl_log_warning("coordinator", "agent \"%s\" reports an error: %s",
                           a->name, msg);
            free(msg);
            break;
        }
        default: {
            char *what = fl_asprintf("an agent does not send \"%s\"",
                                     fl_wire_type_name(m.type));
            s_malformed(s, a, what);
            free(what);
        }
        }
    }
    fl_wire_msg_release(&m);
}

static void
s_drain_link(fl_co_server_t *s, fl_link_t *l, int agents)
{
    for (int i = 0; i < S_ROUND; i++) {
        fl_link_msg_t m;
        fl_error_t err = FL_ERROR_INIT;
        int rc = fl_link_recv(l, &m, &err);

        if (rc == 0)
            break;
        s->stats.messages_in++;
        if (rc < 0 && rc != FL_EPROTO) {
            fl_log_warning("coordinator", "%s", err.message);
            fl_error_clear(&err);
            break;
        }
        if (agents)
            s_agent_message(s, &m, rc, &err);
        else if (rc == 1)
            fl_control_message(s, &m);
        fl_link_msg_release(&m);
        fl_error_clear(&err);
    }
}

/* Start-up and shutdown. */

static int
s_load_dsn(char **out, const fl_co_settings_t *cfg, fl_error_t *err)
{
    fl_secret_t raw = FL_SECRET_INIT;
    size_t len;
    int rc;

    if (cfg->state_dsn != NULL) {
        *out = fl_strdup(cfg->state_dsn);
    } else {
        if ((rc = fl_secret_load(&raw, cfg->state_dsn_file, 8192, err)) != 0)
            return rc;
        len = raw.len;
        while (len > 0 &&
               (raw.data[len - 1] == '\n' || raw.data[len - 1] == '\r'))
            len--;
        *out = fl_strndup((const char *)raw.data, len);
        fl_secret_release(&raw);
    }
    /* Checked here, so that libpq's own message, which quotes what it
     * cannot parse (a password's), is never the one said. */
    if ((rc = fl_dsn_check(*out, err)) != 0) {
        fl_error_prefix(err, "%s: ", cfg->state_dsn != NULL
                                         ? "state_dsn" : "state_dsn_file");
        fl_free(out);
    }
    return rc;
}

static int
s_start(fl_co_server_t *s, fl_error_t *err)
{
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    char *dsn = NULL;
    int rc = 0;

    if ((rc = fl_transport_init(err)) != 0 ||
        (rc = fl_cert_load_secret(&s->cert, s->cfg->cert, err)) != 0 ||
        (rc = s_load_keys(s, err)) != 0 ||
        (rc = s_load_dsn(&dsn, s->cfg, err)) != 0)
        goto cleanup;
    if ((rc = fl_store_open(&s->store, dsn, s->cfg->store_batch_rows,
                            err)) != 0 ||
        (rc = fl_registry_load(s, err)) != 0 ||
        (rc = fl_dispatch_load(s, err)) != 0 ||
        (rc = fl_rollout_load(s, err)) != 0)
        goto cleanup;
    /* Keys the directories no longer hold are revoked from the start. */
    fl_registry_revoke_unenrolled(s);
    /* The ZAP handler first: a CURVE socket without one admits anyone. */
    if ((rc = fl_zap_start(&s->zap, err)) != 0)
        goto cleanup;
    fl_zap_set_keys(s->zap, S_AGENT_DOMAIN, s->agent_keys);
    fl_zap_set_keys(s->zap, S_OPERATOR_DOMAIN, s->operator_keys);
    o.heartbeat_ms = s->cfg->heartbeat_ms;
    o.heartbeat_timeout_ms = s->cfg->heartbeat_timeout_ms;
    o.sndhwm = o.rcvhwm = (int)s->cfg->hwm;
    o.linger_ms = s->cfg->linger_ms;
    o.handshake_ms = s->cfg->handshake_ms;
    o.max_message = s->cfg->max_message;
    if ((rc = fl_link_server(&s->agents_link, s->cfg->agent_endpoint, s->cert,
                             S_AGENT_DOMAIN, &o, err)) != 0)
        goto cleanup;
    o.max_message = s->cfg->control_max_message;
    if ((rc = fl_link_server(&s->control_link, s->cfg->control_endpoint,
                             s->cert, S_OPERATOR_DOMAIN, &o, err)) != 0)
        goto cleanup;
    /* Its stranger is refused on purpose: that is not worth a warning. */
    fl_zap_set_logging(s->zap, 0);
    if ((rc = fl_link_selftest(fl_link_endpoint(s->agents_link),
                               fl_cert_public(s->cert),
                               s->cfg->selftest_timeout_ms, err)) != 0 ||
        (rc = fl_link_selftest(fl_link_endpoint(s->control_link),
                               fl_cert_public(s->cert),
                               s->cfg->selftest_timeout_ms, err)) != 0) {
        fl_error_prefix(err, "refusing to run: ");
        goto cleanup;
    }
    fl_zap_set_logging(s->zap, 1);
    fl_log_info("coordinator", "self-test: both endpoints refuse a key that "
                "is enrolled nowhere");
    rc = fl_store_start(s->store, err);
cleanup:
    if (dsn != NULL) {
        memset(dsn, 0, strlen(dsn)); /* it may hold a password */
        free(dsn);
    }
    return rc;
}

static void
s_free_registry(fl_co_server_t *s)
{
    fl_co_agent_t *a = NULL;
    fl_co_target_t *t = NULL;
    size_t pos = 0;

    fl_rollout_free_all(s);
    fl_dispatch_free_all(s);
    while ((t = fl_map_next(s->targets, &pos)) != NULL) {
        for (size_t i = 0; i < t->nrows; i++)
            free(t->rows[i].rollout);
        free(t->rows);
        free(t->name);
        free(t->kind);
        free(t->environment);
        free(t->error);
        fl_co_labels_release(&t->labels);
        free(t);
    }
    pos = 0;
    while ((a = fl_map_next(s->agents, &pos)) != NULL) {
        fl_registry_hello_parts_drop(a);
        for (size_t i = 0; i < a->nholding; i++)
            free(a->holding_ids[i]);
        for (size_t i = 0; i < a->nacks; i++)
            free(a->acks[i]);
        free(a->holding_ids);
        free(a->acks);
        fl_map_destroy(&a->holding);
        free(a->targets);
        free(a->name);
        free(a->claimed);
        free(a->version);
        fl_co_labels_release(&a->labels);
        free(a);
    }
    fl_map_destroy(&s->agents);
    fl_map_destroy(&s->targets);
    fl_map_destroy(&s->commands);
    fl_map_destroy(&s->dispatches);
    fl_map_destroy(&s->bundles);
}

static void
s_stop(fl_co_server_t *s)
{
    fl_link_close(&s->agents_link);
    fl_link_close(&s->control_link);
    /* The round's last rows: written if the database answers in time. */
    if (s->store != NULL && s->results_job == NULL)
        fl_dispatch_flush(s);
    fl_store_job_free(&s->results_job);
    fl_store_stop(&s->store, s->cfg->linger_ms + 2000);
    fl_zap_stop(&s->zap);
    s_free_registry(s);
    free(s->results_cmds);
    free(s->ackers);
    fl_certset_destroy(&s->agent_keys);
    fl_certset_destroy(&s->operator_keys);
    fl_trust_destroy(&s->trust);
    fl_cert_destroy(&s->cert);
}

int
fl_coordinator_run(const fl_co_settings_t *cfg)
{
    fl_co_server_t s;
    fl_error_t err = FL_ERROR_INIT;
    int64_t next_tick = 0;
    int code = 0, sigfd = -1;

    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.agents = fl_map_new();
    s.targets = fl_map_new();
    s.commands = fl_map_new();
    s.dispatches = fl_map_new();
    s.bundles = fl_map_new();
    s.rollouts = fl_map_new();
    if (fl_daemon_logging(cfg->log_level, cfg->log_file, &err) != 0 ||
        (sigfd = fl_daemon_signals(&err)) < 0 || s_start(&s, &err) != 0) {
        code = fl_daemon_failed("coordinator", &err);
        goto cleanup;
    }
    {
        fl_log_field f[3] = {{"agent_endpoint", fl_link_endpoint(s.agents_link)},
                             {"control_endpoint",
                              fl_link_endpoint(s.control_link)},
                             {"key", fl_cert_public(s.cert)}};
        fl_log_emit(FL_LOG_NOTICE, "coordinator", f, 3, "ready: agents at %s, "
                    "operators at %s; %zu agents and %zu operators enrolled",
                    fl_link_endpoint(s.agents_link),
                    fl_link_endpoint(s.control_link),
                    fl_certset_count(s.agent_keys),
                    fl_certset_count(s.operator_keys));
    }
    s.started_ms = fl_co_now_ms();
    fl_co_new_id(s.life);
    next_tick = s.started_ms + cfg->heartbeat_ms;
    while (!s.stopping) {
        fl_poll_item_t it[4] = {
            {s.agents_link, -1, 0, 0},
            {s.control_link, -1, 0, 0},
            {NULL, fl_store_fd(s.store), 0, 0},
            {NULL, sigfd, 0, 0},
        };
        int64_t now = fl_co_now_ms();
        fl_store_job_t *job = NULL;

        if (fl_link_poll(it, 4, next_tick > now ? next_tick - now : 0,
                         &err) < 0) {
            fl_log_error("coordinator", "%s", err.message);
            fl_error_clear(&err);
            code = 1;
            break;
        }
        if (it[3].ready) {
            int sig;
            while ((sig = fl_daemon_next_signal()) != 0) {
                if (sig == SIGHUP) {
                    s_reload(&s);
                } else {
                    fl_log_notice("coordinator", "stopping on signal %d", sig);
                    s.stopping = 1;
                }
            }
        }
        while ((job = fl_store_finished(s.store)) != NULL)
            fl_store_complete(job);
        if (fl_store_broken(s.store) != NULL) {
            fl_log_error("coordinator", "stopping: %s; the control "
                         "database holds what was written before, in "
                         "order, which a restart loads (fix the database, "
                         "then start the coordinator again)",
                         fl_store_broken(s.store));
            code = 1;
            break;
        }
        if (it[0].ready)
            s_drain_link(&s, s.agents_link, 1);
        if (it[1].ready)
            s_drain_link(&s, s.control_link, 0);
        fl_dispatch_flush(&s);
        now = fl_co_now_ms();
        if (now >= next_tick) {
            fl_registry_tick(&s);
            fl_dispatch_tick(&s);
            fl_rollout_tick(&s);
            fl_dispatch_flush(&s);
            next_tick = now + cfg->heartbeat_ms;
        }
    }
cleanup:
    s_stop(&s);
    fl_error_clear(&err);
    fl_log_close_file();
    return code;
}
