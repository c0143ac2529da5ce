/*
 * control.c - the operators' requests (see control.h).
 */
#include "coordinator/control.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"
#include "coordinator/dispatch.h"
#include "coordinator/registry.h"
#include "coordinator/rollout.h"
#include "coordinator/store.h"

static json_t *
s_labels(const fl_co_labels_t *l)
{
    json_t *o = json_object();

    for (size_t i = 0; i < l->n; i++)
        json_object_set_new(o, l->keys[i], fl_json_text(l->values[i]));
    return o;
}

static json_t *
s_agents(fl_co_server_t *s)
{
    json_t *a = json_array();
    fl_co_agent_t *ag = NULL;
    size_t pos = 0;

    while ((ag = fl_map_next(s->agents, &pos)) != NULL) {
        json_t *o = fl_json_pack(
            "{s:s, s:s, s:s?, s:s, s:s?, s:I, s:I, s:I, s:I}", "name",
            ag->name, "key", ag->key, "claimed_name", ag->claimed, "state",
            fl_registry_state_name(ag->state), "version", ag->version,
            "targets", (json_int_t)ag->ntargets, "last_seen",
            (json_int_t)ag->last_seen_wall, "queued_commands",
            (json_int_t)ag->inflight, "malformed_messages",
            (json_int_t)ag->malformed);
        json_object_set_new(o, "labels", s_labels(&ag->labels));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *
s_targets(fl_co_server_t *s, const fl_selector_t *sel)
{
    json_t *a = json_array();
    fl_co_target_t *t = NULL;
    size_t pos = 0;

    while ((t = fl_map_next(s->targets, &pos)) != NULL) {
        json_t *o = NULL;
        char *drift = NULL;
        int running = 0;
        fl_version_t applied;

        if (!fl_co_labels_match(&t->labels, sel))
            continue;
        for (size_t i = 0; i < t->nrows; i++)
            running |= t->rows[i].status == FL_CO_ROW_RUNNING;
        drift = fl_dispatch_drift(s, t);
        applied = fl_registry_applied_version(t);
        o = fl_json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:b, s:s, "
                         "s:s?}",
                         "target", t->name, "agent", t->agent->name,
                         "agent_key", t->agent->key, "kind", t->kind,
                         "environment", t->environment, "reachability",
                         fl_registry_reachability(t), "applied_version",
                         fl_version_is_set(&applied) ? applied.text : NULL,
                         "running", running, "drift", drift, "error",
                         t->error);
        json_object_set_new(o, "labels", s_labels(&t->labels));
        json_array_append_new(a, o);
        free(drift);
    }
    return a;
}

static json_t *
s_status(fl_co_server_t *s)
{
    uint64_t tx = 0, rows = 0, retries = 0, admitted = 0, refused = 0;
    size_t online = 0, pos = 0;
    fl_co_agent_t *a = NULL;

    fl_store_stats(s->store, &tx, &rows, &retries);
    fl_zap_counts(s->zap, &admitted, &refused);
    while ((a = fl_map_next(s->agents, &pos)) != NULL)
        online += a->state == FL_CO_AGENT_ONLINE;
    return fl_json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "name", s->cfg->name, "agents", (json_int_t)fl_map_count(s->agents),
        "agents_online", (json_int_t)online, "targets",
        (json_int_t)fl_map_count(s->targets), "dispatches_in_memory",
        (json_int_t)fl_map_count(s->dispatches), "store_transactions",
        (json_int_t)tx, "store_rows", (json_int_t)rows, "store_retries",
        (json_int_t)retries, "store_backlog",
        (json_int_t)fl_store_backlog(s->store), "messages_in",
        (json_int_t)s->stats.messages_in, "messages_out",
        (json_int_t)s->stats.messages_out, "handshakes_admitted",
        (json_int_t)admitted, "handshakes_refused", (json_int_t)refused);
}

void
fl_control_message(fl_co_server_t *s, const fl_link_msg_t *m)
{
    const fl_cert_entry_t *op = fl_certset_find(s->operator_keys, m->user_id);
    fl_wire_msg_t msg;
    const fl_wire_control_request_t *req = NULL;
    fl_error_t err = FL_ERROR_INIT;

    if (op == NULL) {
        /* Enrolled at its handshake, revoked since: nothing for it. */
        fl_log_field f[1] = {{"key", m->user_id}};
        fl_log_emit(FL_LOG_WARNING, "control", f, 1, "dropped a request "
                    "from key %s, which is not an enrolled operator's",
                    m->user_id[0] ? m->user_id : "(none)");
        return;
    }
    if (fl_wire_decode(&msg, m->data, m->len, &err) != 0 ||
        msg.type != FL_WIRE_CONTROL_REQUEST) {
        fl_log_field f[2] = {{"operator", op->name}, {"key", op->key}};
        fl_log_emit(FL_LOG_WARNING, "control", f, 2, "dropped a malformed "
                    "request from operator \"%s\": %s", op->name,
                    err.message ? err.message : "not a control request");
        if (err.message == NULL)
            fl_wire_msg_release(&msg);
        fl_error_clear(&err);
        return;
    }
    req = &msg.u.control_request;
    if (strcmp(req->command, "agents") == 0) {
        fl_co_reply(s, m->peer, m->peer_len, req->id, FL_CO_EXIT_OK,
                    s_agents(s));
    } else if (strcmp(req->command, "targets") == 0) {
        fl_selector_t sel = {NULL, 0};
        const char *text = fl_co_arg(req, "selector");
        if (fl_selector_parse(&sel, text ? text : "", &err) != 0)
            fl_co_reply_error(s, m->peer, m->peer_len, req->id,
                              FL_CO_EXIT_USAGE, &err);
        else
            fl_co_reply(s, m->peer, m->peer_len, req->id, FL_CO_EXIT_OK,
                        s_targets(s, &sel));
        fl_selector_release(&sel);
    } else if (strcmp(req->command, "dispatch") == 0) {
        fl_dispatch_create(s, m->peer, m->peer_len, op->name, req);
    } else if (strcmp(req->command, "dispatch.wait") == 0) {
        fl_dispatch_wait(s, m->peer, m->peer_len, req);
    } else if (strncmp(req->command, "rollout.", 8) == 0) {
        fl_rollout_request(s, m->peer, m->peer_len, op->name, req);
    } else if (strcmp(req->command, "status") == 0) {
        fl_co_reply(s, m->peer, m->peer_len, req->id, FL_CO_EXIT_OK,
                    s_status(s));
    } else {
        FL_ERR(&err, FL_EINVAL, "unknown command \"%.40s\"", req->command);
        fl_error_set_hint(&err, "This coordinator knows agents, targets, "
                                "dispatch, dispatch.wait, rollout.start, "
                                "rollout.status, rollout.list, rollout.halt, "
                                "rollout.resume, rollout.rollback and "
                                "status.");
        fl_co_reply_error(s, m->peer, m->peer_len, req->id, FL_CO_EXIT_USAGE,
                          &err);
    }
    fl_wire_msg_release(&msg);
    fl_error_clear(&err);
}
