/*
 * Unit tests for proto/wire: a round trip for every message type, the
 * strict decoder's refusals (version, type, truncation, trailing bytes,
 * wrong types, missing fields, SHA-256 of a bundle transfer) on hostile
 * input, and fl_wire_bundle_verify(): the id to cache a bundle under is
 * the id of the verified bytes, never the claimed one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/alloc.h"
#include "proto/wire.h"

static fl_wire_applied_t s_applied[2] = {
    {.version = {"1"}, .checksum = {1}, .status = "applied", .rollout = "r0"},
    {.version = {"2"}, .checksum = {2, 3}, .status = "running"},
};
static fl_codec_kv_t s_labels[2] = {{"tier", "canary"}, {"region", "eu"}};
static fl_wire_target_t s_targets[2] = {
    {.target = "db1", .kind = "database", .environment = "prod",
     .labels = s_labels, .nlabels = 2, .known = 1, .applied = s_applied,
     .napplied = 2},
    {.target = "db2/tenant_7", .kind = "schema", .known = 0,
     .error = "could not connect"},
};
static char *s_ids[3] = {"c1", "c2", "c3"};
static fl_codec_kv_t s_args[2] = {{"bundle", "b.bundle"}, {"waves", "1,10%"}};
static unsigned char s_bundle_bytes[5] = {'F', 'L', 'O', 'T', 0};

/* Fills msg with sample values of the given type (pointers to statics). */
static void
s_sample(fl_wire_msg_t *msg, fl_wire_type type)
{
    memset(msg, 0, sizeof(*msg));
    msg->type = type;
    switch (type) {
    case FL_WIRE_HELLO:
        msg->u.hello = (fl_wire_hello_t){
            .agent = "agent-1", .agent_version = "0.1.0", .labels = s_labels,
            .nlabels = 1, .targets = s_targets, .ntargets = 2,
            .holding = s_ids, .nholding = 2};
        break;
    case FL_WIRE_WELCOME:
        msg->u.welcome = (fl_wire_welcome_t){"coord", "s-42", 5000, 15000};
        break;
    case FL_WIRE_HEARTBEAT:
        msg->u.heartbeat = (fl_wire_heartbeat_t){-7, 1700000000123};
        break;
    case FL_WIRE_BUNDLE:
        msg->u.bundle.bundle_id = "abc";
        msg->u.bundle.data = s_bundle_bytes;
        msg->u.bundle.len = sizeof(s_bundle_bytes);
        crypto_hash_sha256(msg->u.bundle.sha256, s_bundle_bytes,
                           sizeof(s_bundle_bytes));
        break;
    case FL_WIRE_APPLY:
    case FL_WIRE_PLAN:
    case FL_WIRE_CANCEL:
        msg->u.command = (fl_wire_command_t){"c1", "r1", "db1", "abc", {"42"},
                                             NULL, 0, NULL};
        break;
    case FL_WIRE_ROLLBACK:
        /* A rollout's rollback: the rollout it undoes. */
        msg->u.command = (fl_wire_command_t){"c1", "r1", "db1", "abc", {"42"},
                                             NULL, 0, "r0"};
        break;
    case FL_WIRE_BASELINE:
        msg->u.command = (fl_wire_command_t){"c1", "r1", "db1", "abc",
                                             FL_VERSION_INIT, "diesel", 0,
                                             NULL};
        break;
    case FL_WIRE_STEP_EVENT:
        msg->u.step_event = (fl_wire_step_event_t){
            "r1", "db1", "execute", "failed", 1234, "lock timeout",
            "canceling statement due to lock timeout", NULL, "retry later",
            "55P03"};
        break;
    case FL_WIRE_RESULT:
        msg->u.result = (fl_wire_result_t){
            .id = "c1", .rollout = "r1", .target = "db1", .action = "apply",
            .status = "ok", .version = {"3"}, .duration_ms = 99};
        break;
    case FL_WIRE_LEDGER_QUERY:
        msg->u.ledger_query = (fl_wire_ledger_query_t){"q1", "db1"};
        break;
    case FL_WIRE_LEDGER_REPLY:
        msg->u.ledger_reply.id = "q1";
        msg->u.ledger_reply.state = s_targets[0];
        break;
    case FL_WIRE_ERROR:
        msg->u.error = (fl_wire_error_t){"c1", "protocol", "bad frame",
                                         "detail", NULL};
        break;
    case FL_WIRE_CONTROL_REQUEST:
        msg->u.control_request = (fl_wire_control_request_t){
            .id = "op1", .command = "dispatch", .args = s_args, .nargs = 2,
            .data = s_bundle_bytes, .len = sizeof(s_bundle_bytes)};
        break;
    case FL_WIRE_CONTROL_REPLY:
        msg->u.control_reply = (fl_wire_control_reply_t){"op1", 0, "{}"};
        break;
    case FL_WIRE_BUNDLE_REQUEST:
        msg->u.bundle_request = (fl_wire_bundle_request_t){"abc"};
        break;
    case FL_WIRE_RESULT_ACK:
        msg->u.result_ack = (fl_wire_result_ack_t){s_ids, 3};
        break;
    }
}

static void
s_encode(fl_buf_t *out, const fl_wire_msg_t *msg)
{
    fl_error_t err = FL_ERROR_INIT;

    fl_buf_reset(out);
    if (fl_wire_encode(out, msg, &err) != 0)
        fail_msg("encode: %s", err.message);
}

static void
test_wire_every_type_round_trips(void **state)
{
    (void)state;
    for (int t = 1; t <= FL_WIRE_TYPE_COUNT; t++) {
        fl_wire_msg_t in, out;
        fl_buf_t a = FL_BUF_INIT(0), b = FL_BUF_INIT(0);
        fl_error_t err = FL_ERROR_INIT;

        s_sample(&in, (fl_wire_type)t);
        s_encode(&a, &in);
        if (fl_wire_decode(&out, (unsigned char *)a.data, a.len, &err) != 0)
            fail_msg("decode %s: %s", fl_wire_type_name(t), err.message);
        assert_int_equal(out.type, t);
        assert_int_equal(out.version, FL_WIRE_VERSION);
        /* Encoding is deterministic, so equal bytes mean equal fields. */
        s_encode(&b, &out);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        fl_wire_msg_release(&out);
        fl_buf_release(&a);
        fl_buf_release(&b);
    }
}

static void
test_wire_decoded_fields_match(void **state)
{
    fl_wire_msg_t in, out;
    fl_buf_t a = FL_BUF_INIT(0);

    (void)state;
    s_sample(&in, FL_WIRE_HELLO);
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len, NULL),
                     0);
    assert_string_equal(out.u.hello.agent, "agent-1");
    assert_int_equal(out.u.hello.ntargets, 2);
    assert_string_equal(out.u.hello.targets[1].target, "db2/tenant_7");
    assert_int_equal(out.u.hello.targets[0].napplied, 2);
    assert_string_equal(out.u.hello.targets[0].applied[1].version.text, "2");
    assert_int_equal(out.u.hello.targets[0].applied[1].checksum[1], 3);
    assert_string_equal(out.u.hello.targets[0].applied[0].rollout, "r0");
    assert_null(out.u.hello.targets[0].applied[1].rollout);
    assert_string_equal(out.u.hello.targets[0].labels[1].value, "eu");
    assert_true(out.u.hello.targets[0].known);
    assert_false(out.u.hello.targets[1].known);
    assert_string_equal(out.u.hello.targets[1].error, "could not connect");
    /* Optional lists left empty come back absent. */
    assert_null(out.u.hello.targets[1].labels);
    assert_int_equal(out.u.hello.targets[1].napplied, 0);
    assert_int_equal(out.u.hello.nholding, 2);
    assert_string_equal(out.u.hello.holding[1], "c2");
    /* One part: 0 for both. */
    assert_int_equal(out.u.hello.part, 0);
    assert_int_equal(out.u.hello.parts, 0);
    fl_wire_msg_release(&out);
    in.u.hello.part = 2;
    in.u.hello.parts = 5;
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len, NULL),
                     0);
    assert_int_equal(out.u.hello.part, 2);
    assert_int_equal(out.u.hello.parts, 5);
    fl_wire_msg_release(&out);

    s_sample(&in, FL_WIRE_RESULT_ACK);
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len, NULL),
                     0);
    assert_int_equal(out.u.result_ack.nids, 3);
    assert_string_equal(out.u.result_ack.ids[2], "c3");
    fl_wire_msg_release(&out);

    s_sample(&in, FL_WIRE_STEP_EVENT);
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len, NULL),
                     0);
    assert_int_equal(out.u.step_event.duration_ms, 1234);
    assert_string_equal(out.u.step_event.sqlstate, "55P03");
    assert_null(out.u.step_event.detail);
    fl_wire_msg_release(&out);

    s_sample(&in, FL_WIRE_HEARTBEAT);
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len, NULL),
                     0);
    assert_int_equal(out.u.heartbeat.seq, -7);
    assert_int_equal(out.u.heartbeat.time_ms, 1700000000123);
    fl_wire_msg_release(&out);

    s_sample(&in, FL_WIRE_CONTROL_REQUEST);
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len, NULL),
                     0);
    assert_int_equal(out.u.control_request.nargs, 2);
    assert_string_equal(out.u.control_request.args[1].value, "1,10%");
    assert_int_equal(out.u.control_request.len, sizeof(s_bundle_bytes));
    assert_memory_equal(out.u.control_request.data, s_bundle_bytes,
                        sizeof(s_bundle_bytes));
    fl_wire_msg_release(&out);
    fl_buf_release(&a);
}

static void
s_expect_refused(const void *data, size_t len, const char *needle)
{
    fl_wire_msg_t out;
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_wire_decode(&out, data, len, &err), FL_EPROTO);
    assert_int_equal(out.type, 0);
    if (strstr(err.message, needle) == NULL)
        fail_msg("got \"%s\", wanted \"%s\"", err.message, needle);
    fl_error_clear(&err);
}

static void
test_wire_every_truncation_is_refused(void **state)
{
    (void)state;
    for (int t = 1; t <= FL_WIRE_TYPE_COUNT; t++) {
        fl_wire_msg_t in;
        fl_buf_t a = FL_BUF_INIT(0);

        s_sample(&in, (fl_wire_type)t);
        s_encode(&a, &in);
        for (size_t len = 0; len < a.len; len++) {
            unsigned char *copy = fl_malloc(len);
            fl_wire_msg_t out;

            memcpy(copy, a.data, len);
            assert_int_equal(fl_wire_decode(&out, copy, len, NULL), FL_EPROTO);
            free(copy);
        }
        fl_buf_release(&a);
    }
}

static void
test_wire_envelope_refusals(void **state)
{
    /* {"v": 3, "type": "heartbeat", "seq": 1, "time_ms": 1}: version 3,
     * whose versions were integers */
    static const char v1[] = "\x84\xa1v\x03\xa4type\xa9heartbeat"
                             "\xa3seq\x01\xa7time_ms\x01";
    static const char notype[] = "\x81\xa1v\x05";
    static const char unknown[] = "\x82\xa1v\x05\xa4type\xa4nope";
    static const char dupv[] = "\x83\xa1v\x05\xa1v\x05\xa4type\xa4nope";
    static const char ok[] = "\x85\xa1v\x05\xa4type\xa9heartbeat"
                             "\xa3seq\x01\xa7time_ms\x01"
                             "\xa5" "extra\x92\x01\x81\xa1k\xc0"; /* ignored */
    fl_wire_msg_t out;

    (void)state;
    s_expect_refused(v1, sizeof(v1) - 1, "unsupported protocol version 3");
    s_expect_refused(notype, sizeof(notype) - 1, "lacks the field \"type\"");
    s_expect_refused(unknown, sizeof(unknown) - 1,
                     "unknown message type \"nope\"");
    s_expect_refused(dupv, sizeof(dupv) - 1, "duplicate key \"v\"");
    s_expect_refused("\x91\x01", 2, "expected map, found array");
    s_expect_refused("", 0, "input ends early");
    assert_int_equal(fl_wire_decode(&out, (const unsigned char *)ok,
                                    sizeof(ok) - 1, NULL), 0);
    assert_int_equal(out.u.heartbeat.seq, 1);
    fl_wire_msg_release(&out);
    s_expect_refused(ok, sizeof(ok), "unexpected bytes after the end");
}

/* Versions travel as text: a pop version beyond 64 bits comes back as
 * it went, and a string that is not a version as version.h writes it is
 * refused (leading zeros too: equal versions have one text). */
static void
test_wire_versions_are_text_and_refused_when_not_versions(void **state)
{
    static const char *const bad[] = {"0x1", "01", "1..2", "-1", " 7"};
    fl_wire_msg_t in, out;
    fl_buf_t a = FL_BUF_INIT(0);

    (void)state;
    s_sample(&in, FL_WIRE_RESULT);
    snprintf(in.u.result.version.text, sizeof(in.u.result.version.text),
             "%s", "20210410175418123456");
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len,
                                    NULL), 0);
    assert_string_equal(out.u.result.version.text, "20210410175418123456");
    fl_wire_msg_release(&out);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(in.u.result.version.text, sizeof(in.u.result.version.text),
                 "%s", bad[i]);
        s_encode(&a, &in);
        s_expect_refused(a.data, a.len, "field \"version\" is not a version");
    }
    /* An empty to_version is "all". */
    s_sample(&in, FL_WIRE_APPLY);
    in.u.command.to_version.text[0] = '\0';
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len,
                                    NULL), 0);
    assert_false(fl_version_is_set(&out.u.command.to_version));
    fl_wire_msg_release(&out);
    fl_buf_release(&a);
}

/*
 * A retry says so with "attempt": it round trips, a command without the
 * key (an older coordinator's) is attempt 0, a negative one is refused.
 */
static void
test_wire_command_attempt_round_trips_absent_is_zero(void **state)
{
    /* apply {id, rollout, target, bundle_id, to_version}: no attempt. */
    static const char old[] = "\x87\xa1v\x05\xa4type\xa5\x61pply"
                              "\xa2id\xa2\x63\x31\xa7rollout\xa2r1"
                              "\xa6target\xa3\x64\x62\x31"
                              "\xa9\x62undle_id\xa1\x62"
                              "\xaato_version\xa0";
    fl_wire_msg_t in, out;
    fl_buf_t a = FL_BUF_INIT(0);

    (void)state;
    s_sample(&in, FL_WIRE_APPLY);
    in.u.command.attempt = 3;
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len,
                                    NULL), 0);
    assert_int_equal(out.u.command.attempt, 3);
    fl_wire_msg_release(&out);
    assert_int_equal(fl_wire_decode(&out, (const unsigned char *)old,
                                    sizeof(old) - 1, NULL), 0);
    assert_int_equal(out.u.command.attempt, 0);
    assert_string_equal(out.u.command.id, "c1");
    fl_wire_msg_release(&out);
    in.u.command.attempt = -1;
    s_encode(&a, &in);
    s_expect_refused(a.data, a.len, "field \"attempt\" is negative");
    fl_buf_release(&a);
}

/*
 * A rollback's result says how many copies of the application's data it
 * kept ("kept"): it round trips, a result without the key (an older
 * agent's) kept none, a negative count is refused.
 */
static void
test_wire_result_kept_round_trips_absent_is_zero(void **state)
{
    /* result {id, rollout, target, action, status, version,
     * duration_ms}: no kept. */
    static const char old[] = "\x89\xa1v\x05\xa4type\xa6result"
                              "\xa2id\xa2\x63\x31\xa7rollout\xa2r1"
                              "\xa6target\xa3\x64\x62\x31"
                              "\xa6\x61\x63tion\xa8rollback"
                              "\xa6status\xa2ok\xa7version\xa0"
                              "\xab\x64uration_ms\x63";
    fl_wire_msg_t in, out;
    fl_buf_t a = FL_BUF_INIT(0);

    (void)state;
    assert_int_equal(fl_wire_decode(&out, (const unsigned char *)old,
                                    sizeof(old) - 1, NULL), 0);
    assert_int_equal(out.u.result.kept, 0);
    assert_string_equal(out.u.result.action, "rollback");
    fl_wire_msg_release(&out);
    s_sample(&in, FL_WIRE_RESULT);
    in.u.result.kept = 2;
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len,
                                    NULL), 0);
    assert_int_equal(out.u.result.kept, 2);
    fl_wire_msg_release(&out);
    in.u.result.kept = 0;
    s_encode(&a, &in);
    assert_int_equal(fl_wire_decode(&out, (unsigned char *)a.data, a.len,
                                    NULL), 0);
    assert_int_equal(out.u.result.kept, 0);
    fl_wire_msg_release(&out);
    in.u.result.kept = -1;
    s_encode(&a, &in);
    s_expect_refused(a.data, a.len, "field \"kept\" is negative");
    fl_buf_release(&a);
}

static void
test_wire_field_refusals(void **state)
{
    static const char wrongtype[] = "\x84\xa1v\x05\xa4type\xa9heartbeat"
                                    "\xa3seq\xa1x\xa7time_ms\x01";
    static const char missing[] = "\x83\xa1v\x05\xa4type\xa9heartbeat"
                                  "\xa3seq\x01";
    static const char dup[] = "\x85\xa1v\x05\xa4type\xa9heartbeat"
                              "\xa3seq\x01\xa3seq\x01\xa7time_ms\x01";
    static const char nul[] = "\x84\xa1v\x05\xa4type\xacledger_query"
                              "\xa2id\xa2q\x00\xa6target\xa1t";
    static const char big[] = "\x84\xa1v\x05\xa4type\xa9heartbeat"
                              "\xa3seq\xcf\xff\xff\xff\xff\xff\xff\xff\xff"
                              "\xa7time_ms\x01";
    /* hello claiming 2^32-1 targets in a few bytes. */
    static const char hugecount[] = "\x84\xa1v\x05\xa4type\xa5hello"
                                    "\xa5\x61gent\xa1\x61"
                                    "\xa7targets\xdd\xff\xff\xff\xff";
    /* result_ack claiming 2^32-1 ids, hello claiming 2^32-1 labels. */
    static const char hugeids[] = "\x83\xa1v\x05\xa4type\xaaresult_ack"
                                  "\xa3ids\xdd\xff\xff\xff\xff";
    static const char hugelabels[] = "\x85\xa1v\x05\xa4type\xa5hello"
                                     "\xa5\x61gent\xa1\x61"
                                     "\xa7targets\x90"
                                     "\xa6labels\xdf\xff\xff\xff\xff";
    fl_wire_msg_t in;
    fl_buf_t a = FL_BUF_INIT(0);
    unsigned char *p = NULL;

    (void)state;
    s_expect_refused(wrongtype, sizeof(wrongtype) - 1,
                     "expected integer, found string");
    s_expect_refused(missing, sizeof(missing) - 1,
                     "lacks the required field \"time_ms\"");
    s_expect_refused(dup, sizeof(dup) - 1, "duplicate key \"seq\"");
    s_expect_refused(nul, sizeof(nul) - 1, "NUL byte");
    s_expect_refused(big, sizeof(big) - 1, "out of range");
    s_expect_refused(hugecount, sizeof(hugecount) - 1,
                     "longer than the 0 bytes that remain");
    s_expect_refused(hugeids, sizeof(hugeids) - 1,
                     "longer than the 0 bytes that remain");
    s_expect_refused(hugelabels, sizeof(hugelabels) - 1,
                     "longer than the 0 bytes that remain");

    s_sample(&in, FL_WIRE_BUNDLE);
    s_encode(&a, &in);
    p = memmem(a.data, a.len, "FLOT", 4);
    assert_non_null(p);
    p[0] = 'X';
    s_expect_refused(a.data, a.len, "does not match its SHA-256");
    /* Version 1 carried BLAKE2b: that hash is refused now. */
    p[0] = 'F';
    crypto_generichash(in.u.bundle.sha256, 32, s_bundle_bytes,
                       sizeof(s_bundle_bytes), NULL, 0);
    s_encode(&a, &in);
    s_expect_refused(a.data, a.len, "does not match its SHA-256");
    fl_buf_release(&a);
}

static void
test_wire_encode_refuses_missing_required_fields(void **state)
{
    fl_wire_msg_t in;
    fl_buf_t a = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    s_sample(&in, FL_WIRE_APPLY);
    in.u.command.target = NULL;
    assert_int_equal(fl_wire_encode(&a, &in, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "required field \"target\""));
    assert_int_equal(a.len, 0);
    fl_error_clear(&err);
    in.type = (fl_wire_type)99;
    assert_int_equal(fl_wire_encode(&a, &in, &err), FL_EINVAL);
    assert_string_equal(fl_wire_type_name(in.type), "unknown");
    fl_error_clear(&err);
    fl_buf_release(&a);
}

/* A real signed bundle in a transfer message, encoded and decoded. */
typedef struct {
    fl_key_t *key;
    fl_trust_t *trust;
    fl_buf_t bytes;
    fl_wire_msg_t msg; /* decoded */
} s_transfer;

static void
s_transfer_init(s_transfer *t, const char *claimed_id)
{
    static const char src[] = "-- flotilla:up\nCREATE TABLE a (id int);\n";
    unsigned char seed[32];
    fl_migration_t m;
    fl_migration_list_t l = {&m, 1};
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    fl_bundle_t *b = NULL;
    fl_wire_msg_t in;
    fl_buf_t enc = FL_BUF_INIT(0);

    memset(seed, 7, sizeof(seed));
    t->key = fl_key_new_from_seed(seed);
    t->trust = fl_trust_new();
    fl_trust_add(t->trust, fl_key_public(t->key));
    fl_buf_init(&t->bytes, 0);
    assert_int_equal(fl_migration_parse(&m, "0001_a.sql", src,
                                        sizeof(src) - 1, NULL), 0);
    opts.created = 1700000000;
    opts.expires = 1700086400;
    opts.environment = "production";
    assert_int_equal(fl_bundle_build(&t->bytes, &l, t->key, &opts, NULL), 0);
    fl_migration_release(&m);
    assert_int_equal(fl_bundle_decode_unverified(&b, (unsigned char *)
                                                 t->bytes.data, t->bytes.len,
                                                 NULL), 0);
    memset(&in, 0, sizeof(in));
    in.type = FL_WIRE_BUNDLE;
    in.u.bundle.bundle_id = (char *)(claimed_id ? claimed_id : fl_bundle_id(b));
    in.u.bundle.data = (unsigned char *)t->bytes.data;
    in.u.bundle.len = t->bytes.len;
    crypto_hash_sha256(in.u.bundle.sha256, in.u.bundle.data, in.u.bundle.len);
    s_encode(&enc, &in);
    assert_int_equal(fl_wire_decode(&t->msg, (unsigned char *)enc.data,
                                    enc.len, NULL), 0);
    fl_bundle_destroy(&b);
    fl_buf_release(&enc);
}

static void
s_transfer_release(s_transfer *t)
{
    fl_wire_msg_release(&t->msg);
    fl_buf_release(&t->bytes);
    fl_trust_destroy(&t->trust);
    fl_key_destroy(&t->key);
}

static void
test_wire_bundle_verify_returns_the_id_of_the_verified_bytes(void **state)
{
    s_transfer t;
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;
    char id[FL_BUNDLE_ID_HEX];
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    opts.now_s = 1700000001;
    s_transfer_init(&t, NULL);
    if (fl_wire_bundle_verify(id, &b, &t.msg.u.bundle, t.trust, &opts,
                              &err) != 0)
        fail_msg("verify: %s", err.message);
    assert_string_equal(id, fl_bundle_id(b));
    assert_string_equal(id, t.msg.u.bundle.bundle_id);
    assert_true(fl_bundle_is_verified(b));
    fl_bundle_destroy(&b);
    /* Without the bundle: only the id. */
    assert_int_equal(fl_wire_bundle_verify(id, NULL, &t.msg.u.bundle, t.trust,
                                           &opts, NULL), 0);
    /* The bundle's own checks still apply: expired. */
    opts.now_s = 1700086400;
    assert_int_equal(fl_wire_bundle_verify(id, NULL, &t.msg.u.bundle, t.trust,
                                           &opts, &err), FL_EPROTO);
    assert_non_null(strstr(err.message, "bundle transfer: bundle \""));
    assert_non_null(strstr(err.message, "expired"));
    fl_error_clear(&err);
    s_transfer_release(&t);
}

/*
 * Issue 9: a transfer that names one bundle and carries another is
 * refused, so a cache keyed by the claimed id cannot be poisoned.
 */
static void
test_wire_bundle_verify_refuses_a_claimed_id_not_of_the_bytes(void **state)
{
    s_transfer t;
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;
    char id[FL_BUNDLE_ID_HEX] = "untouched";
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    opts.now_s = 1700000001;
    s_transfer_init(&t, "0123456789abcdef0123456789abcdef");
    assert_int_equal(fl_wire_bundle_verify(id, &b, &t.msg.u.bundle, t.trust,
                                           &opts, &err), FL_EPROTO);
    assert_null(b);
    assert_string_equal(id, "untouched");
    assert_non_null(strstr(err.message, "bundle transfer claims id "
                                        "\"0123456789abcdef0123456789abcdef\", "
                                        "but its bytes are bundle \""));
    fl_error_clear(&err);
    s_transfer_release(&t);

    /* A claimed id with control characters is shown escaped. */
    s_transfer_init(&t, "\x1b[2J");
    assert_int_equal(fl_wire_bundle_verify(id, NULL, &t.msg.u.bundle, t.trust,
                                           &opts, &err), FL_EPROTO);
    assert_non_null(strstr(err.message, "\"\\x1b[2J\""));
    fl_error_clear(&err);
    /* An unknown signer: refused before any id is compared. */
    fl_trust_destroy(&t.trust);
    t.trust = fl_trust_new();
    assert_int_equal(fl_wire_bundle_verify(id, NULL, &t.msg.u.bundle, t.trust,
                                           &opts, &err), FL_EPROTO);
    assert_non_null(strstr(err.message, "signed by unknown key"));
    fl_error_clear(&err);
    /* Bytes changed after decoding: the SHA-256 is checked again. */
    t.msg.u.bundle.data[30] ^= 1;
    assert_int_equal(fl_wire_bundle_verify(id, NULL, &t.msg.u.bundle, t.trust,
                                           &opts, &err), FL_EPROTO);
    assert_non_null(strstr(err.message, "does not match its SHA-256"));
    fl_error_clear(&err);
    s_transfer_release(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_every_type_round_trips),
        cmocka_unit_test(test_wire_decoded_fields_match),
        cmocka_unit_test(test_wire_every_truncation_is_refused),
        cmocka_unit_test(test_wire_envelope_refusals),
        cmocka_unit_test(test_wire_command_attempt_round_trips_absent_is_zero),
        cmocka_unit_test(test_wire_result_kept_round_trips_absent_is_zero),
        cmocka_unit_test(test_wire_field_refusals),
        cmocka_unit_test(test_wire_versions_are_text_and_refused_when_not_versions),
        cmocka_unit_test(test_wire_encode_refuses_missing_required_fields),
        cmocka_unit_test(test_wire_bundle_verify_returns_the_id_of_the_verified_bytes),
        cmocka_unit_test(test_wire_bundle_verify_refuses_a_claimed_id_not_of_the_bytes),
    };
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
