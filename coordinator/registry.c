/*
 * registry.c - agents, their sessions and their targets (see registry.h).
 *
 * An agent's session, as this coordinator sees it:
 *
 *   unknown --hello--> online --silence > heartbeat_timeout--> offline
 *                         ^  \--its pipe is gone (send: no such peer)-/
 *                         |   \--a malformed message-----------------/
 *                         +---------------------hello----------------+
 *   any --its key leaves the agents directory, SIGHUP--> revoked
 *   revoked --re-enrolled, SIGHUP, then hello--> online
 *
 *   unknown   loaded from the control database at start; not heard from.
 *             Its targets are unreachable; its open commands wait.
 *   online    fl_registry_hello() opened a session: we know its routing
 *             id, we send it heartbeats and commands; every message
 *             resets last_seen.  Invariant: rid and session are set.
 *   offline   fl_registry_offline(): no commands are sent; those sent are
 *             reconciled at its next hello.  A message other than hello
 *             is answered with an error asking for a hello.
 *   revoked   fl_registry_revoke_unenrolled(): its frames are ignored and
 *             its handshakes refused by the ZAP handler.
 *
 * Every transition is logged and written (agents.status, and an event).
 */
#include "coordinator/registry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"
#include "coordinator/dispatch.h"
#include "coordinator/store.h"

const char *
fl_registry_state_name(fl_co_agent_state st)
{
    switch (st) {
    case FL_CO_AGENT_ONLINE: return "online";
    case FL_CO_AGENT_OFFLINE: return "offline";
    case FL_CO_AGENT_REVOKED: return "revoked";
    default: return "unknown";
    }
}

/*
 * Target names: 1 to 255 of [A-Za-z0-9._/:@+-%] (discovery writes any
 * other byte of a database's or schema's name %XX).
 */
static int
s_valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 255)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._/:@+-%") == n;
}

static int
s_row_status(const char *s)
{
    static const char *const names[] = {"applied", "running", "failed",
                                        "rolling_back", "rolled_back"};

    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return FL_CO_ROW_APPLIED + i;
    return FL_CO_ROW_OTHER;
}

static const char *
s_row_status_name(int st)
{
    static const char *const names[] = {"applied", "running", "failed",
                                        "rolling_back", "rolled_back"};

    return st >= FL_CO_ROW_APPLIED && st <= FL_CO_ROW_ROLLED_BACK
               ? names[st - FL_CO_ROW_APPLIED]
               : "other";
}

fl_co_agent_t *
fl_registry_agent(fl_co_server_t *s, const char *key, int create)
{
    fl_co_agent_t *a = fl_map_gets(s->agents, key);
    const fl_cert_entry_t *e = NULL;

    if (a != NULL || !create)
        return a;
    a = fl_calloc(1, sizeof(*a));
    memcpy(a->key, key, FL_KEY_Z85_LEN + 1);
    e = fl_certset_find(s->agent_keys, key);
    a->name = fl_strdup(e ? e->name : "");
    a->holding = fl_map_new();
    fl_map_puts(s->agents, a->key, a);
    return a;
}

static void
s_rows_release(fl_co_target_t *t)
{
    for (size_t i = 0; i < t->nrows; i++)
        free(t->rows[i].rollout);
    fl_free(&t->rows);
    t->nrows = 0;
}

static void
s_agent_add_target(fl_co_agent_t *a, fl_co_target_t *t)
{
    for (size_t i = 0; i < a->ntargets; i++)
        if (a->targets[i] == t)
            return;
    if (a->ntargets == a->targets_cap) {
        a->targets_cap = a->targets_cap ? a->targets_cap * 2 : 16;
        a->targets = fl_reallocarray(a->targets, a->targets_cap,
                                     sizeof(*a->targets));
    }
    a->targets[a->ntargets++] = t;
}

static void
s_agent_drop_target(fl_co_agent_t *a, fl_co_target_t *t)
{
    for (size_t i = 0; i < a->ntargets; i++)
        if (a->targets[i] == t) {
            a->targets[i] = a->targets[--a->ntargets];
            return;
        }
}

static fl_co_target_t *
s_target(fl_co_server_t *s, const char *name, fl_co_agent_t *owner)
{
    fl_co_target_t *t = fl_map_gets(s->targets, name);

    if (t != NULL)
        return t;
    t = fl_calloc(1, sizeof(*t));
    t->name = fl_strdup(name);
    t->agent = owner;
    fl_map_puts(s->targets, t->name, t);
    s_agent_add_target(owner, t);
    return t;
}

/* Labels from a JSON object (the store's text). */
static void
s_labels_from_json(fl_co_labels_t *out, const char *text)
{
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    const char *k = NULL;
    json_t *v = NULL;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(o)) {
        json_decref(o);
        return;
    }
    out->keys = fl_calloc(json_object_size(o) + 1, sizeof(char *));
    out->values = fl_calloc(json_object_size(o) + 1, sizeof(char *));
    json_object_foreach(o, k, v) {
        if (!json_is_string(v))
            continue;
        out->keys[out->n] = fl_strdup(k);
        out->values[out->n++] = fl_strdup(json_string_value(v));
    }
    json_decref(o);
}

static json_t *
s_labels_json(const fl_co_labels_t *l)
{
    json_t *o = json_object();

    for (size_t i = 0; i < l->n; i++)
        json_object_set_new(o, l->keys[i], fl_json_text(l->values[i]));
    return o;
}

static void
s_rows_from_json(fl_co_target_t *t, const char *text)
{
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    size_t i;
    json_t *r = NULL;

    s_rows_release(t);
    if (!json_is_array(a) || json_array_size(a) == 0) {
        json_decref(a);
        return;
    }
    t->rows = fl_calloc(json_array_size(a), sizeof(*t->rows));
    json_array_foreach(a, i, r) {
        fl_co_row_t *row = &t->rows[t->nrows];
        const char *hex = json_string_value(json_object_get(r, "c"));
        const char *st = json_string_value(json_object_get(r, "s"));
        const char *ro = json_string_value(json_object_get(r, "r"));

        if (hex == NULL || strlen(hex) != 64 || st == NULL)
            continue;
        {
            /* Text since store version 3; a number before. */
            json_t *v = json_object_get(r, "v");

            if (json_is_string(v)) {
                if (fl_version_parse_str(&row->version, json_string_value(v),
                                         NULL) != 0)
                    continue;
            } else if (json_is_integer(v) && json_integer_value(v) > 0) {
                fl_version_set_u64(&row->version,
                                   (uint64_t)json_integer_value(v));
            } else {
                continue;
            }
        }
        for (int b = 0; b < 32; b++) {
            unsigned int x = 0;
            if (sscanf(hex + 2 * b, "%2x", &x) != 1)
                break;
            row->checksum[b] = (unsigned char)x;
        }
        row->status = (uint8_t)s_row_status(st);
        row->rollout = ro ? fl_strdup(ro) : NULL;
        t->nrows++;
    }
    json_decref(a);
}

static json_t *
s_rows_json(const fl_co_target_t *t)
{
    json_t *a = json_array();

    for (size_t i = 0; i < t->nrows; i++) {
        char hex[65];
        for (int b = 0; b < 32; b++)
            snprintf(hex + 2 * b, 3, "%02x", t->rows[i].checksum[b]);
        json_array_append_new(a, fl_json_pack("{s:s, s:s, s:s, s:s?}", "v",
                                              t->rows[i].version.text,
                                              "c", hex, "s",
                                              s_row_status_name(t->rows[i].status),
                                              "r", t->rows[i].rollout));
    }
    return a;
}

int
fl_registry_load(fl_co_server_t *s, fl_error_t *err)
{
    fl_store_rows_t r = {0, 0, NULL};
    int rc = 0;

    rc = fl_store_query(s->store, &r, "SELECT key, name, claimed_name, "
                        "version, labels::text, status FROM "
                        "flotilla_control.agents", 0, NULL, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < r.nrows; i++) {
        fl_co_agent_t *a = NULL;

        if (!fl_key_z85_valid(fl_store_value(&r, i, 0)))
            continue;
        a = fl_registry_agent(s, fl_store_value(&r, i, 0), 1);
        if (a->name[0] == '\0') {
            free(a->name);
            a->name = fl_strdup(fl_store_value(&r, i, 1));
        }
        a->claimed = fl_co_clean(fl_store_value(&r, i, 2));
        a->version = fl_co_clean(fl_store_value(&r, i, 3));
        s_labels_from_json(&a->labels, fl_store_value(&r, i, 4));
        if (strcmp(fl_store_value(&r, i, 5), "revoked") == 0)
            a->state = FL_CO_AGENT_REVOKED;
    }
    fl_store_rows_release(&r);
    rc = fl_store_query(s->store, &r, "SELECT name, agent_key, kind, "
                        "environment, labels::text, ledger::text, known, "
                        "error, reported FROM flotilla_control.targets", 0,
                        NULL, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < r.nrows; i++) {
        fl_co_agent_t *a = fl_registry_agent(s, fl_store_value(&r, i, 1), 0);
        fl_co_target_t *t = NULL;

        if (a == NULL)
            continue;
        t = s_target(s, fl_store_value(&r, i, 0), a);
        t->kind = fl_co_clean(fl_store_value(&r, i, 2));
        t->environment = fl_co_clean(fl_store_value(&r, i, 3));
        s_labels_from_json(&t->labels, fl_store_value(&r, i, 4));
        s_rows_from_json(t, fl_store_value(&r, i, 5));
        t->known = strcmp(fl_store_value(&r, i, 6), "t") == 0;
        t->error = fl_co_clean(fl_store_value(&r, i, 7));
        t->reported = strcmp(fl_store_value(&r, i, 8), "t") == 0;
    }
    fl_store_rows_release(&r);
    return 0;
}

/* Writes an event row (batched with the others of this loop round). */
static void
s_event(fl_co_server_t *s, const char *kind, const fl_co_agent_t *a,
        const char *target, const char *message)
{
    fl_dispatch_event(s, kind, a ? a->key : NULL, target, NULL, NULL, NULL,
                      message);
}

static void
s_write_status(fl_co_server_t *s, fl_co_agent_t *a)
{
    fl_store_job_t *job = fl_store_job_new(FL_STORE_SQL);
    const char *p[2] = {a->key, fl_registry_state_name(a->state)};

    fl_store_job_sql(job, "UPDATE flotilla_control.agents SET status = $2,"
                          " last_seen = now() WHERE key = $1", 2, p);
    fl_store_submit(s->store, job);
}

static void
s_write_agent(fl_co_server_t *s, fl_co_agent_t *a)
{
    fl_store_job_t *job = fl_store_job_new(FL_STORE_SQL);
    json_t *labels = s_labels_json(&a->labels);
    char *text = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
    const char *p[6] = {a->key, a->name[0] ? a->name : a->claimed,
                        a->claimed, a->version, text,
                        fl_registry_state_name(a->state)};

    fl_store_job_sql(job,
        "INSERT INTO flotilla_control.agents (key, name, claimed_name,"
        " version, labels, status, last_seen) VALUES ($1, $2, $3, $4,"
        " $5::jsonb, $6, now()) ON CONFLICT (key) DO UPDATE SET"
        " name = EXCLUDED.name, claimed_name = EXCLUDED.claimed_name,"
        " version = EXCLUDED.version, labels = EXCLUDED.labels,"
        " status = EXCLUDED.status, last_seen = now()", 6, p);
    fl_store_submit(s->store, job);
    free(text);
    json_decref(labels);
}

/* Appends one target's row to a targets job. */
static void
s_target_row(fl_store_job_t *job, const fl_co_target_t *t)
{
    json_t *labels = s_labels_json(&t->labels);
    json_t *rows = s_rows_json(t);
    char *lt = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
    char *rt = json_dumps(rows, JSON_COMPACT);

    fl_store_field(job, t->name, 0);
    fl_store_field(job, t->agent->key, 0);
    fl_store_field(job, t->kind, 0);
    fl_store_field(job, t->environment, 0);
    fl_store_field(job, lt, 0);
    fl_store_field(job, rt, 0);
    fl_store_field(job, t->known ? "t" : "f", 0);
    fl_store_field(job, t->error, 0);
    fl_store_field(job, t->reported ? "t" : "f", 1);
    free(lt);
    free(rt);
    json_decref(labels);
    json_decref(rows);
}

/* Valid label keys and values, as selectors can name them. */
static int
s_valid_label(const char *k, const char *v)
{
    static const char word[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                               "QRSTUVWXYZ0123456789._-";
    size_t kn = strlen(k), vn = strlen(v);

    return kn > 0 && kn <= 63 && vn <= 63 &&
           strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._/-") == kn &&
           strspn(v, word) == vn;
}

static void
s_labels_take(fl_co_labels_t *out, const fl_codec_kv_t *kv, size_t n,
              const char *who)
{
    size_t ok = 0;

    fl_co_labels_release(out);
    out->keys = fl_calloc(n + 1, sizeof(char *));
    out->values = fl_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        if (!s_valid_label(kv[i].key, kv[i].value)) {
            char *k = fl_co_clean(kv[i].key);
            fl_log_warning("registry", "%s: label \"%s\" ignored: keys are "
                           "[A-Za-z0-9._/-]{1,63}, values [A-Za-z0-9._-]"
                           "{0,63}", who, k);
            free(k);
            continue;
        }
        out->keys[ok] = fl_strdup(kv[i].key);
        out->values[ok++] = fl_strdup(kv[i].value);
    }
    out->n = ok;
}

/* Takes a target's state from the wire into t. */
static void
s_take_state(fl_co_target_t *t, const fl_wire_target_t *w)
{
    free(t->kind);
    free(t->environment);
    free(t->error);
    t->kind = fl_co_clean(w->kind);
    t->environment = fl_co_clean(w->environment);
    t->error = fl_co_clean(w->error);
    s_labels_take(&t->labels, w->labels, w->nlabels, t->name);
    s_rows_release(t);
    t->known = w->known;
    if (w->napplied > 0)
        t->rows = fl_calloc(w->napplied, sizeof(*t->rows));
    for (size_t i = 0; i < w->napplied; i++) {
        t->rows[i].version = w->applied[i].version;
        memcpy(t->rows[i].checksum, w->applied[i].checksum, 32);
        t->rows[i].status = (uint8_t)s_row_status(w->applied[i].status);
        t->rows[i].rollout = fl_co_clean(w->applied[i].rollout);
    }
    t->nrows = w->napplied;
    t->reported = 1;
    t->state_seq++;
}

/*
 * The target w names, if agent a may have it: unclaimed, a's own, or
 * a's to take over from an owner whose key was revoked.  NULL (logged)
 * otherwise.
 */
static fl_co_target_t *
s_claim(fl_co_server_t *s, fl_co_agent_t *a, const char *name)
{
    fl_co_target_t *t = NULL;
    char *shown = NULL;

    if (!s_valid_name(name)) {
        shown = fl_co_clean(name);
        fl_log_warning("registry", "agent \"%s\" reported a target named "
                       "\"%.80s\", which is not a valid target name; it is "
                       "ignored", a->name, shown);
        free(shown);
        return NULL;
    }
    t = fl_map_gets(s->targets, name);
    if (t == NULL)
        return s_target(s, name, a);
    if (t->agent == a)
        return t;
    if (t->agent->state == FL_CO_AGENT_REVOKED ||
        fl_certset_find(s->agent_keys, t->agent->key) == NULL) {
        fl_log_notice("registry", "target \"%s\" moves from agent \"%s\" "
                      "(revoked) to agent \"%s\"", name, t->agent->name,
                      a->name);
        s_agent_drop_target(t->agent, t);
        t->agent = a;
        s_agent_add_target(a, t);
        return t;
    }
    {
        fl_log_field f[3] = {{"target", name}, {"agent", a->name},
                             {"owner", t->agent->name}};
        fl_log_emit(FL_LOG_ERROR, "registry", f, 3,
                    "agent \"%s\" reported target \"%s\", which agent \"%s\" "
                    "owns; target names must be unique in the fleet, so it "
                    "is refused to \"%s\"", a->name, name, t->agent->name,
                    a->name);
        s_event(s, "target.conflict", a, name, "owned by another agent");
    }
    return NULL;
}

static void
s_send_welcome(fl_co_server_t *s, fl_co_agent_t *a)
{
    fl_wire_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_WELCOME;
    m.u.welcome.coordinator = s->cfg->name;
    m.u.welcome.session = a->session;
    m.u.welcome.heartbeat_ms = s->cfg->heartbeat_ms;
    m.u.welcome.timeout_ms = s->cfg->heartbeat_timeout_ms;
    FL_IGNORE(fl_co_send_agent(s, a, &m)); /* a lost welcome: it says
                                              hello again */
}

void
fl_registry_hello(fl_co_server_t *s, fl_co_agent_t *a,
                  const unsigned char *rid, size_t rid_len,
                  const fl_wire_hello_t *h)
{
    fl_store_job_t *job = fl_store_job_new(FL_STORE_TARGETS);
    fl_co_agent_state was = a->state;
    char **ids = NULL;
    size_t refused = 0;

    memcpy(a->rid, rid, rid_len);
    a->rid_len = rid_len;
    fl_co_new_id(a->session);
    a->state = FL_CO_AGENT_ONLINE;
    a->last_seen_ms = fl_co_now_ms();
    a->last_seen_wall = fl_co_wall_s();
    free(a->claimed);
    free(a->version);
    a->claimed = fl_co_clean(h->agent);
    a->version = fl_co_clean(h->agent_version);
    s_labels_take(&a->labels, h->labels, h->nlabels, a->name);
    /* What it holds: queued, running, or answered but not acknowledged. */
    for (size_t i = 0; i < a->nholding; i++)
        free(a->holding_ids[i]);
    fl_map_destroy(&a->holding);
    a->holding = fl_map_new();
    ids = fl_calloc(h->nholding + 1, sizeof(char *));
    for (size_t i = 0; i < h->nholding; i++) {
        ids[i] = fl_strdup(h->holding[i]);
        fl_map_puts(a->holding, ids[i], ids[i]);
    }
    free(a->holding_ids);
    a->holding_ids = ids;
    a->nholding = h->nholding;

    for (size_t i = 0; i < a->ntargets; i++)
        a->targets[i]->reported = 0;
    for (size_t i = 0; i < h->ntargets; i++) {
        fl_co_target_t *t = s_claim(s, a, h->targets[i].target);
        if (t != NULL)
            s_take_state(t, &h->targets[i]);
        else
            refused++;
    }
    for (size_t i = 0; i < a->ntargets; i++)
        s_target_row(job, a->targets[i]);
    s_write_agent(s, a);
    fl_store_submit(s->store, job);
    {
        char n[32];
        fl_log_field f[3] = {{"agent", a->name}, {"key", a->key},
                             {"targets", n}};
        /* The targets it holds now: those refused are not its. */
        snprintf(n, sizeof(n), "%zu", h->ntargets - refused);
        fl_log_emit(FL_LOG_INFO, "registry", f, 3,
                    "agent \"%s\" is online (%s before), %zu targets%s, "
                    "holding %zu commands", a->name,
                    fl_registry_state_name(was), h->ntargets - refused,
                    refused > 0 ? " (others it reported refused)" : "",
                    h->nholding);
    }
    s_event(s, "agent.online", a, NULL, NULL);
    s_send_welcome(s, a);
    fl_dispatch_agent_back(s, a);
}

/*
 * At most this many bytes of hello parts kept per agent.  The hello's
 * targets are written as one job, whose text a target's strings can
 * make 7 times their wire size (a byte fl_co_clean shows as \xff, then
 * escaped for JSON and for COPY): 32 MiB keeps it under the job's 256
 * MiB buffer (common/buf.h), past which the coordinator would abort.
 * Twice what one message may carry by default (max_message).
 */
#define S_HELLO_BYTES ((size_t)32 * 1024 * 1024)

void
fl_registry_hello_parts_drop(fl_co_agent_t *a)
{
    for (size_t i = 0; i < a->nhello_parts; i++)
        fl_wire_msg_release(&a->hello_parts[i]);
    fl_free(&a->hello_parts);
    a->nhello_parts = 0;
    a->hello_bytes = 0;
}

int
fl_registry_hello_part(fl_co_server_t *s, fl_co_agent_t *a,
                       const unsigned char *rid, size_t rid_len,
                       fl_wire_msg_t *m, size_t len)
{
    const fl_wire_hello_t *h = &m->u.hello;
    int parts = h->parts > 0 ? h->parts : 1;
    const char *wrong = NULL;
    fl_wire_hello_t all;
    size_t n = 0;

    if (h->part < 0 || h->part >= parts || parts > FL_WIRE_HELLO_PARTS)
        wrong = "its part number is out of range";
    else if (h->part != (int)a->nhello_parts && h->part != 0)
        wrong = "a part is missing before it";
    else if (h->part > 0 && parts != a->hello_parts[0].u.hello.parts)
        wrong = "its count of parts differs from its first part's";
    else if (a->hello_bytes + len > S_HELLO_BYTES)
        wrong = "its parts pass 32 MiB";
    if (h->part == 0 || wrong != NULL)
        fl_registry_hello_parts_drop(a);
    if (wrong != NULL) {
        /* An agent's garbage must not flood the log: logged as the count
         * doubles, as a malformed message is (server.c). */
        a->malformed++;
        if (a->malformed <= 3 || (a->malformed & (a->malformed - 1)) == 0)
            fl_log_warning("registry", "agent \"%s\": hello part %d of %d "
                           "ignored, %s (%llu so far); its next hello "
                           "starts again", a->name, h->part + 1, parts, wrong,
                           (unsigned long long)a->malformed);
        return 0;
    }
    if (parts == 1) {
        fl_registry_hello(s, a, rid, rid_len, h);
        return 0;
    }
    a->hello_parts = fl_reallocarray(a->hello_parts, a->nhello_parts + 1,
                                     sizeof(*a->hello_parts));
    a->hello_parts[a->nhello_parts++] = *m;
    a->hello_bytes += len;
    if (h->part < parts - 1)
        return 1;
    /* The last part: one hello, the targets of every part in order. */
    all = a->hello_parts[0].u.hello;
    for (size_t i = 0; i < a->nhello_parts; i++)
        n += a->hello_parts[i].u.hello.ntargets;
    all.targets = fl_calloc(n + 1, sizeof(*all.targets));
    all.ntargets = 0;
    for (size_t i = 0; i < a->nhello_parts; i++) {
        const fl_wire_hello_t *p = &a->hello_parts[i].u.hello;
        for (size_t k = 0; k < p->ntargets; k++)
            all.targets[all.ntargets++] = p->targets[k];
    }
    fl_registry_hello(s, a, rid, rid_len, &all);
    free(all.targets);
    fl_registry_hello_parts_drop(a);
    return 1;
}

void
fl_registry_target_state(fl_co_server_t *s, fl_co_agent_t *a,
                         const fl_wire_target_t *w)
{
    fl_co_target_t *t = fl_map_gets(s->targets, w->target);
    fl_store_job_t *job = NULL;

    if (t == NULL || t->agent != a) {
        /* A target it did not announce (a new one says hello again). */
        t = s_claim(s, a, w->target);
        if (t == NULL)
            return;
    }
    s_take_state(t, w);
    job = fl_store_job_new(FL_STORE_TARGETS);
    s_target_row(job, t);
    fl_store_submit(s->store, job);
    if (t->known)
        fl_dispatch_target_known(s, t);
}

/* Moves a to state st: logged (why), written, and an event. */
static void
s_transition(fl_co_server_t *s, fl_co_agent_t *a, fl_co_agent_state st,
             const char *why)
{
    fl_log_field f[2] = {{"agent", a->name}, {"key", a->key}};
    char *kind = fl_asprintf("agent.%s", fl_registry_state_name(st));

    a->state = st;
    a->inflight = 0;
    fl_log_emit(FL_LOG_WARNING, "registry", f, 2, "agent \"%s\" is %s: %s",
                a->name, fl_registry_state_name(st), why);
    s_write_status(s, a);
    s_event(s, kind, a, NULL, why);
    free(kind);
}

void
fl_registry_offline(fl_co_server_t *s, fl_co_agent_t *a, const char *why)
{
    char *text = NULL;

    fl_registry_hello_parts_drop(a); /* its next hello starts again */
    if (a->state != FL_CO_AGENT_ONLINE)
        return;
    text = fl_asprintf("%s; its targets are unreachable", why);
    s_transition(s, a, FL_CO_AGENT_OFFLINE, text);
    free(text);
}

void
fl_registry_revoke_unenrolled(fl_co_server_t *s)
{
    fl_co_agent_t *a = NULL;
    size_t pos = 0;

    while ((a = fl_map_next(s->agents, &pos)) != NULL) {
        const fl_cert_entry_t *e = fl_certset_find(s->agent_keys, a->key);

        if (e != NULL) {
            if (strcmp(a->name, e->name) != 0) {
                free(a->name);
                a->name = fl_strdup(e->name);
            }
            continue;
        }
        if (a->state == FL_CO_AGENT_REVOKED)
            continue;
        if (a->state == FL_CO_AGENT_ONLINE) {
            fl_wire_msg_t m;
            memset(&m, 0, sizeof(m));
            m.type = FL_WIRE_ERROR;
            m.u.error.code = "revoked";
            m.u.error.message = "this agent's certificate is no longer "
                                "enrolled; its session is closed";
            FL_IGNORE(fl_co_send_agent(s, a, &m)); /* gone is as good */
        }
        s_transition(s, a, FL_CO_AGENT_REVOKED,
                     "its certificate left the agents directory; its "
                     "session is dropped and its frames are ignored");
    }
}

void
fl_registry_tick(fl_co_server_t *s)
{
    fl_co_agent_t *a = NULL;
    size_t pos = 0;
    int64_t now = fl_co_now_ms();
    static int64_t seq = 0;
    fl_co_agent_t **late = NULL;
    size_t nlate = 0;

    while ((a = fl_map_next(s->agents, &pos)) != NULL) {
        fl_wire_msg_t m;

        if (a->state != FL_CO_AGENT_ONLINE)
            continue;
        if (now - a->last_seen_ms > s->cfg->heartbeat_timeout_ms) {
            late = fl_reallocarray(late, nlate + 1, sizeof(*late));
            late[nlate++] = a;
            continue;
        }
        memset(&m, 0, sizeof(m));
        m.type = FL_WIRE_HEARTBEAT;
        m.u.heartbeat.seq = ++seq;
        m.u.heartbeat.time_ms = fl_co_wall_s() * 1000;
        FL_IGNORE(fl_co_send_agent(s, a, &m)); /* silence is detected by
                                                  the timeout */
    }
    for (size_t i = 0; i < nlate; i++) {
        char *why = fl_asprintf("no message for %lld ms (heartbeat_timeout "
                                "%lld ms)",
                                (long long)(now - late[i]->last_seen_ms),
                                (long long)s->cfg->heartbeat_timeout_ms);
        fl_registry_offline(s, late[i], why);
        free(why);
    }
    free(late);
}

const char *
fl_registry_reachability(const fl_co_target_t *t)
{
    if (!t->reported)
        return "gone";
    if (t->agent->state != FL_CO_AGENT_ONLINE)
        return "unreachable";
    if (t->error != NULL)
        return "error";
    return t->known ? "reachable" : "unknown";
}

fl_version_t
fl_registry_applied_version(const fl_co_target_t *t)
{
    fl_version_t v = FL_VERSION_INIT;

    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].status == FL_CO_ROW_APPLIED &&
            fl_version_cmp(&t->rows[i].version, &v) > 0)
            v = t->rows[i].version;
    return v;
}

const fl_co_row_t *
fl_registry_row(const fl_co_target_t *t, const fl_version_t *version)
{
    for (size_t i = 0; i < t->nrows; i++)
        if (fl_version_cmp(&t->rows[i].version, version) == 0)
            return &t->rows[i];
    return NULL;
}
