/*
 * wire.c - encoding and decoding the fleet's messages (see wire.h).
 *
 * Each message type is a schema for codec.c; this file holds the tables,
 * the envelope ("v", "type") and the checks that a schema cannot express.
 * Decoding reads the map twice: once to find the envelope (skipping every
 * value, which bounds and checks the whole message before any allocation),
 * once to fill the struct of the type found.
 */
#include "proto/wire.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/str.h"

#define S_F(key, type, flags, st, field)                                    \
    {key, type, flags, offsetof(st, field), 0, 0, NULL}
#define S_REQ FL_CODEC_REQUIRED
#define S_SCHEMA(var, name, fields, st)                                     \
    static const fl_codec_schema_t var = {                                  \
        name, fields, sizeof(fields) / sizeof((fields)[0]), sizeof(st)}

#define S_MAX_TARGETS 100000
#define S_MAX_APPLIED 100000
#define S_MAX_ARGS 256
#define S_MAX_LABELS 64
#define S_MAX_IDS 1000000

/* An optional counted field: BIN, ARRAY, STRMAP or STRLIST. */
#define S_LIST(key, type, flags, st, field, count, max, elem)               \
    {key, type, flags, offsetof(st, field), offsetof(st, count), max, elem}

static const fl_codec_field_t s_applied_fields[] = {
    S_F("version", FL_CODEC_VERSION, S_REQ, fl_wire_applied_t, version),
    S_F("checksum", FL_CODEC_BIN32, S_REQ, fl_wire_applied_t, checksum),
    S_F("status", FL_CODEC_STR, S_REQ, fl_wire_applied_t, status),
    S_F("rollout", FL_CODEC_STR, 0, fl_wire_applied_t, rollout),
};
S_SCHEMA(s_applied_schema, "ledger row", s_applied_fields,
         fl_wire_applied_t);

#define S_TARGET_FIELDS(st, prefix)                                         \
    S_F("target", FL_CODEC_STR, S_REQ, st, prefix target),                  \
    S_F("kind", FL_CODEC_STR, 0, st, prefix kind),                          \
    S_F("environment", FL_CODEC_STR, 0, st, prefix environment),            \
    S_LIST("labels", FL_CODEC_STRMAP, 0, st, prefix labels,                 \
           prefix nlabels, S_MAX_LABELS, NULL),                             \
    S_F("known", FL_CODEC_BOOL, S_REQ, st, prefix known),                   \
    S_LIST("applied", FL_CODEC_ARRAY, 0, st, prefix applied,                \
           prefix napplied, S_MAX_APPLIED, &s_applied_schema),              \
    S_F("error", FL_CODEC_STR, 0, st, prefix error)

static const fl_codec_field_t s_target_fields[] = {
    S_TARGET_FIELDS(fl_wire_target_t, ),
};
S_SCHEMA(s_target_schema, "target", s_target_fields, fl_wire_target_t);

static const fl_codec_field_t s_hello_fields[] = {
    S_F("agent", FL_CODEC_STR, S_REQ, fl_wire_hello_t, agent),
    S_F("agent_version", FL_CODEC_STR, 0, fl_wire_hello_t, agent_version),
    S_F("part", FL_CODEC_INT, 0, fl_wire_hello_t, part),
    S_F("parts", FL_CODEC_INT, 0, fl_wire_hello_t, parts),
    S_LIST("labels", FL_CODEC_STRMAP, 0, fl_wire_hello_t, labels, nlabels,
           S_MAX_LABELS, NULL),
    S_LIST("targets", FL_CODEC_ARRAY, S_REQ, fl_wire_hello_t, targets,
           ntargets, S_MAX_TARGETS, &s_target_schema),
    S_LIST("holding", FL_CODEC_STRLIST, 0, fl_wire_hello_t, holding,
           nholding, S_MAX_IDS, NULL),
};
S_SCHEMA(s_hello_schema, "hello", s_hello_fields, fl_wire_hello_t);

static const fl_codec_field_t s_welcome_fields[] = {
    S_F("coordinator", FL_CODEC_STR, S_REQ, fl_wire_welcome_t, coordinator),
    S_F("session", FL_CODEC_STR, S_REQ, fl_wire_welcome_t, session),
    S_F("heartbeat_ms", FL_CODEC_I64, S_REQ, fl_wire_welcome_t, heartbeat_ms),
    S_F("timeout_ms", FL_CODEC_I64, S_REQ, fl_wire_welcome_t, timeout_ms),
};
S_SCHEMA(s_welcome_schema, "welcome", s_welcome_fields, fl_wire_welcome_t);

static const fl_codec_field_t s_heartbeat_fields[] = {
    S_F("seq", FL_CODEC_I64, S_REQ, fl_wire_heartbeat_t, seq),
    S_F("time_ms", FL_CODEC_I64, S_REQ, fl_wire_heartbeat_t, time_ms),
};
S_SCHEMA(s_heartbeat_schema, "heartbeat", s_heartbeat_fields,
         fl_wire_heartbeat_t);

static const fl_codec_field_t s_bundle_fields[] = {
    S_F("bundle_id", FL_CODEC_STR, S_REQ, fl_wire_bundle_t, bundle_id),
    S_F("sha256", FL_CODEC_BIN32, S_REQ, fl_wire_bundle_t, sha256),
    {"data", FL_CODEC_BIN, S_REQ, offsetof(fl_wire_bundle_t, data),
     offsetof(fl_wire_bundle_t, len), 0, NULL},
};
S_SCHEMA(s_bundle_schema, "bundle transfer", s_bundle_fields,
         fl_wire_bundle_t);

static const fl_codec_field_t s_command_fields[] = {
    S_F("id", FL_CODEC_STR, S_REQ, fl_wire_command_t, id),
    S_F("rollout", FL_CODEC_STR, S_REQ, fl_wire_command_t, rollout),
    S_F("target", FL_CODEC_STR, S_REQ, fl_wire_command_t, target),
    S_F("bundle_id", FL_CODEC_STR, S_REQ, fl_wire_command_t, bundle_id),
    S_F("to_version", FL_CODEC_VERSION, S_REQ, fl_wire_command_t, to_version),
    S_F("from", FL_CODEC_STR, 0, fl_wire_command_t, from),
    S_F("attempt", FL_CODEC_INT, 0, fl_wire_command_t, attempt),
    S_F("undoes", FL_CODEC_STR, 0, fl_wire_command_t, undoes),
};
S_SCHEMA(s_command_schema, "command", s_command_fields, fl_wire_command_t);

/* The optional error fields shared by step events and results. */
#define S_ERROR_FIELDS(st)                                                  \
    S_F("message", FL_CODEC_STR, 0, st, message),                           \
    S_F("error", FL_CODEC_STR, 0, st, error),                               \
    S_F("detail", FL_CODEC_STR, 0, st, detail),                             \
    S_F("hint", FL_CODEC_STR, 0, st, hint),                                 \
    S_F("sqlstate", FL_CODEC_STR, 0, st, sqlstate)

static const fl_codec_field_t s_step_event_fields[] = {
    S_F("rollout", FL_CODEC_STR, S_REQ, fl_wire_step_event_t, rollout),
    S_F("target", FL_CODEC_STR, S_REQ, fl_wire_step_event_t, target),
    S_F("step", FL_CODEC_STR, S_REQ, fl_wire_step_event_t, step),
    S_F("status", FL_CODEC_STR, S_REQ, fl_wire_step_event_t, status),
    S_F("duration_ms", FL_CODEC_I64, S_REQ, fl_wire_step_event_t,
        duration_ms),
    S_ERROR_FIELDS(fl_wire_step_event_t),
};
S_SCHEMA(s_step_event_schema, "step event", s_step_event_fields,
         fl_wire_step_event_t);

static const fl_codec_field_t s_result_fields[] = {
    S_F("id", FL_CODEC_STR, S_REQ, fl_wire_result_t, id),
    S_F("rollout", FL_CODEC_STR, S_REQ, fl_wire_result_t, rollout),
    S_F("target", FL_CODEC_STR, S_REQ, fl_wire_result_t, target),
    S_F("action", FL_CODEC_STR, S_REQ, fl_wire_result_t, action),
    S_F("status", FL_CODEC_STR, S_REQ, fl_wire_result_t, status),
    S_F("version", FL_CODEC_VERSION, S_REQ, fl_wire_result_t, version),
    S_F("duration_ms", FL_CODEC_I64, S_REQ, fl_wire_result_t, duration_ms),
    S_ERROR_FIELDS(fl_wire_result_t),
    S_F("report", FL_CODEC_STR, 0, fl_wire_result_t, report),
    S_F("kept", FL_CODEC_INT, 0, fl_wire_result_t, kept),
};
S_SCHEMA(s_result_schema, "result", s_result_fields, fl_wire_result_t);

static const fl_codec_field_t s_ledger_query_fields[] = {
    S_F("id", FL_CODEC_STR, S_REQ, fl_wire_ledger_query_t, id),
    S_F("target", FL_CODEC_STR, S_REQ, fl_wire_ledger_query_t, target),
};
S_SCHEMA(s_ledger_query_schema, "ledger query", s_ledger_query_fields,
         fl_wire_ledger_query_t);

static const fl_codec_field_t s_ledger_reply_fields[] = {
    S_F("id", FL_CODEC_STR, 0, fl_wire_ledger_reply_t, id),
    S_TARGET_FIELDS(fl_wire_ledger_reply_t, state.),
};
S_SCHEMA(s_ledger_reply_schema, "ledger reply", s_ledger_reply_fields,
         fl_wire_ledger_reply_t);

static const fl_codec_field_t s_error_fields[] = {
    S_F("id", FL_CODEC_STR, 0, fl_wire_error_t, id),
    S_F("code", FL_CODEC_STR, S_REQ, fl_wire_error_t, code),
    S_F("message", FL_CODEC_STR, S_REQ, fl_wire_error_t, message),
    S_F("detail", FL_CODEC_STR, 0, fl_wire_error_t, detail),
    S_F("hint", FL_CODEC_STR, 0, fl_wire_error_t, hint),
};
S_SCHEMA(s_error_schema, "error", s_error_fields, fl_wire_error_t);

static const fl_codec_field_t s_control_request_fields[] = {
    S_F("id", FL_CODEC_STR, S_REQ, fl_wire_control_request_t, id),
    S_F("command", FL_CODEC_STR, S_REQ, fl_wire_control_request_t, command),
    S_LIST("args", FL_CODEC_STRMAP, S_REQ, fl_wire_control_request_t, args,
           nargs, S_MAX_ARGS, NULL),
    S_LIST("data", FL_CODEC_BIN, 0, fl_wire_control_request_t, data, len, 0,
           NULL),
};
S_SCHEMA(s_control_request_schema, "control request",
         s_control_request_fields, fl_wire_control_request_t);

static const fl_codec_field_t s_control_reply_fields[] = {
    S_F("id", FL_CODEC_STR, S_REQ, fl_wire_control_reply_t, id),
    S_F("status", FL_CODEC_I64, S_REQ, fl_wire_control_reply_t, status),
    S_F("payload", FL_CODEC_STR, 0, fl_wire_control_reply_t, payload),
};
S_SCHEMA(s_control_reply_schema, "control reply", s_control_reply_fields,
         fl_wire_control_reply_t);

static const fl_codec_field_t s_bundle_request_fields[] = {
    S_F("bundle_id", FL_CODEC_STR, S_REQ, fl_wire_bundle_request_t,
        bundle_id),
};
S_SCHEMA(s_bundle_request_schema, "bundle request", s_bundle_request_fields,
         fl_wire_bundle_request_t);

static const fl_codec_field_t s_result_ack_fields[] = {
    S_LIST("ids", FL_CODEC_STRLIST, S_REQ, fl_wire_result_ack_t, ids, nids,
           S_MAX_IDS, NULL),
};
S_SCHEMA(s_result_ack_schema, "result ack", s_result_ack_fields,
         fl_wire_result_ack_t);

/* Indexed by fl_wire_type; entry 0 is unused. */
static const struct {
    const char *name;
    const fl_codec_schema_t *schema;
} s_types[FL_WIRE_TYPE_COUNT + 1] = {
    {NULL, NULL},
    {"hello", &s_hello_schema},
    {"welcome", &s_welcome_schema},
    {"heartbeat", &s_heartbeat_schema},
    {"bundle", &s_bundle_schema},
    {"apply", &s_command_schema},
    {"rollback", &s_command_schema},
    {"plan", &s_command_schema},
    {"cancel", &s_command_schema},
    {"step_event", &s_step_event_schema},
    {"result", &s_result_schema},
    {"ledger_query", &s_ledger_query_schema},
    {"ledger_reply", &s_ledger_reply_schema},
    {"error", &s_error_schema},
    {"control_request", &s_control_request_schema},
    {"control_reply", &s_control_reply_schema},
    {"bundle_request", &s_bundle_request_schema},
    {"result_ack", &s_result_ack_schema},
    {"baseline", &s_command_schema},
};

static int
s_valid_type(int type)
{
    return type >= 1 && type <= FL_WIRE_TYPE_COUNT;
}

const char *
fl_wire_type_name(fl_wire_type type)
{
    return s_valid_type((int)type) ? s_types[type].name : "unknown";
}

int
fl_wire_encode(fl_buf_t *out, const fl_wire_msg_t *msg, fl_error_t *err)
{
    const fl_codec_schema_t *s = NULL;
    fl_codec_writer_t w;
    size_t max = out->max;
    size_t start = out->len;
    size_t n = 0;
    int rc = 0;

    if (!s_valid_type((int)msg->type))
        return FL_ERR(err, FL_EINVAL, "cannot encode a message of unknown "
                                      "type %d", (int)msg->type);
    s = s_types[msg->type].schema;
    if (fl_codec_count(&n, s, &msg->u, err) != 0)
        return FL_EINVAL;
    /* Bound this message, not the whole buffer, by FL_WIRE_MAX_SIZE. */
    if (max == 0 || max - start > FL_WIRE_MAX_SIZE)
        out->max = start + FL_WIRE_MAX_SIZE;
    fl_codec_writer_init(&w, out);
    fl_codec_write_map(&w, n + 2);
    fl_codec_write_str(&w, "v");
    fl_codec_write_int(&w, FL_WIRE_VERSION);
    fl_codec_write_str(&w, "type");
    fl_codec_write_str(&w, s_types[msg->type].name);
    if ((rc = fl_codec_encode_fields(&w, s, &msg->u, err)) == 0)
        rc = fl_codec_writer_finish(&w, "message", err);
    out->max = max;
    if (rc != 0 && out->len > start) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

static int
s_key_is(const char *key, size_t klen, const char *want)
{
    /* An empty key may come as a NULL pointer: no memcmp on it. */
    return strlen(want) == klen && (klen == 0 || memcmp(key, want, klen) == 0);
}

/* Pass one: finds "v" and "type", skipping (and so checking) the rest. */
static int
s_read_envelope(fl_codec_reader_t *r, int64_t *version, int *type)
{
    static const char *const keys[2] = {"v", "type"};
    fl_codec_keys_t seen = FL_CODEC_KEYS_INIT;
    size_t n = 0;
    const char *tname = NULL;
    size_t tlen = 0;

    if (fl_codec_read_map(r, &n) != 0)
        return FL_EPROTO;
    for (size_t i = 0; i < n; i++) {
        int k = -1;

        if (fl_codec_read_key(r, keys, 2, &seen, &k) != 0)
            return FL_EPROTO;
        if (k == 0) {
            if (fl_codec_read_int(r, version) != 0)
                return FL_EPROTO;
        } else if (k == 1) {
            if (fl_codec_read_str(r, &tname, &tlen) != 0)
                return FL_EPROTO;
        } else if (fl_codec_skip(r) != 0) {
            return FL_EPROTO;
        }
    }
    if (fl_codec_reader_finish(r) != 0)
        return FL_EPROTO;
    if (seen.seen != 3)
        return fl_codec_fail(r, "message lacks the field \"%s\"",
                             (seen.seen & 1) ? "type" : "v");
    if (*version != FL_WIRE_VERSION) {
        FL_ERR(r->err, FL_EPROTO, "unsupported protocol version %lld",
               (long long)*version);
        fl_error_set_detail(r->err, "This flotilla speaks protocol version "
                                    "%d.", FL_WIRE_VERSION);
        fl_error_set_hint(r->err, "Run the same flotilla release on the "
                                  "coordinator and every agent.");
        return FL_EPROTO;
    }
    for (int t = 1; t <= FL_WIRE_TYPE_COUNT; t++)
        if (s_key_is(tname, tlen, s_types[t].name)) {
            *type = t;
            return 0;
        }
    return fl_codec_fail(r, "unknown message type \"%.*s\"",
                         (int)(tlen > 64 ? 64 : tlen), tname);
}

/* Checks that a bundle transfer's bytes have the SHA-256 it carries. */
static int
s_check_bundle_hash(const fl_wire_bundle_t *b, fl_error_t *err)
{
    unsigned char digest[32];
    char *shown = NULL;

    fl_hash_sha256(digest, b->data, b->len);
    if (sodium_memcmp(digest, b->sha256, sizeof(digest)) == 0)
        return 0;
    shown = fl_str_escape_controls(b->bundle_id, 0);
    FL_ERR(err, FL_EPROTO, "bundle transfer \"%s\" does not match its "
                           "SHA-256", shown);
    fl_error_set_detail(err, "The %zu bytes received hash to another value: "
                             "they were damaged or changed on the way.",
                        b->len);
    free(shown);
    return FL_EPROTO;
}

/* Checks a schema cannot express. */
static int
s_check(fl_codec_reader_t *r, const fl_wire_msg_t *msg)
{
    switch (msg->type) {
    case FL_WIRE_BUNDLE:
        return s_check_bundle_hash(&msg->u.bundle, r->err);
    case FL_WIRE_APPLY:
    case FL_WIRE_ROLLBACK:
    case FL_WIRE_PLAN:
    case FL_WIRE_CANCEL:
    case FL_WIRE_BASELINE:
        if (msg->u.command.attempt < 0)
            return FL_ERR(r->err, FL_EPROTO, "field \"attempt\" is negative "
                          "(%d)", msg->u.command.attempt);
        return 0;
    case FL_WIRE_RESULT:
        if (msg->u.result.kept < 0)
            return FL_ERR(r->err, FL_EPROTO, "field \"kept\" is negative "
                          "(%d)", msg->u.result.kept);
        return 0;
    default:
        return 0;
    }
}

int
fl_wire_decode(fl_wire_msg_t *out, const unsigned char *data, size_t len,
               fl_error_t *err)
{
    fl_codec_reader_t r;
    int64_t version = 0;
    int type = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (len > FL_WIRE_MAX_SIZE) {
        FL_ERR(err, FL_EPROTO, "message of %zu bytes exceeds the limit of %zu",
               len, FL_WIRE_MAX_SIZE);
        return FL_EPROTO;
    }
    /* Pass one may meet a bundle's bytes, so it allows the largest value. */
    fl_codec_reader_init(&r, data, len, FL_WIRE_MAX_SIZE, "message", err);
    if ((rc = s_read_envelope(&r, &version, &type)) != 0)
        return rc;
    out->type = (fl_wire_type)type;
    out->version = (int)version;
    /* The only large values are a bundle's bytes, in a transfer or in an
     * operator's request to dispatch it. */
    fl_codec_reader_init(&r, data, len,
                         type == FL_WIRE_BUNDLE ||
                                 type == FL_WIRE_CONTROL_REQUEST
                             ? FL_WIRE_MAX_SIZE
                             : FL_WIRE_MAX_STR,
                         "message", err);
    if ((rc = fl_codec_decode(&r, s_types[type].schema, &out->u)) != 0 ||
        (rc = s_check(&r, out)) != 0) {
        fl_error_prefix(err, "%s: ", s_types[type].name);
        fl_wire_msg_release(out);
    }
    return rc;
}

void
fl_wire_msg_release(fl_wire_msg_t *msg)
{
    if (msg == NULL)
        return;
    if (s_valid_type((int)msg->type))
        fl_codec_release(s_types[msg->type].schema, &msg->u);
    memset(msg, 0, sizeof(*msg));
}

int
fl_wire_bundle_verify(char id_out[FL_BUNDLE_ID_HEX], fl_bundle_t **out,
                      const fl_wire_bundle_t *msg, const fl_trust_t *trust,
                      const fl_bundle_verify_opts_t *opts, fl_error_t *err)
{
    fl_bundle_t *b = NULL;
    char *claimed = NULL;
    int rc = 0;

    if ((rc = s_check_bundle_hash(msg, err)) != 0 ||
        (rc = fl_bundle_verify_bytes(&b, msg->data, msg->len, trust, opts,
                                     err)) != 0) {
        fl_error_prefix(err, "bundle transfer: ");
        return rc;
    }
    if (strcmp(msg->bundle_id, fl_bundle_id(b)) != 0) {
        claimed = fl_str_escape_controls(msg->bundle_id, 0);
        rc = FL_ERR(err, FL_EPROTO, "bundle transfer claims id \"%s\", but "
                                    "its bytes are bundle \"%s\"", claimed,
                    fl_bundle_id(b));
        fl_error_set_detail(err, "A bundle's id is computed from its signed "
                                 "content; the sender named another bundle.");
        fl_error_set_hint(err, "Nothing was cached. The sender is faulty "
                               "or hostile: check the coordinator.");
        goto cleanup;
    }
    memcpy(id_out, fl_bundle_id(b), FL_BUNDLE_ID_HEX);
    if (out != NULL) {
        *out = b;
        b = NULL;
    }
cleanup:
    free(claimed);
    fl_bundle_destroy(&b);
    return rc;
}
