/*
 * make_corpus.c - writes the seed corpora of the fuzz harnesses:
 * CORPUS/bundle/NAME.bundle (valid bundles signed with the fuzz key) and
 * CORPUS/wire/<type>.msgpack (one valid message of every type).
 *   fuzz_make_corpus tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/alloc.h"
#include "fuzz_key.h"
#include "proto/bundle.h"
#include "proto/wire.h"

static void
s_write(const char *dir, const char *sub, const char *name, const void *p,
        size_t n)
{
    char *path = fl_asprintf("%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");

    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "fuzz_make_corpus: could not write %s\n", path);
        exit(1);
    }
    free(path);
}

static void
s_bundles(const char *dir)
{
    static const char *const files[][2] = {
        {"0001_a.sql", "-- flotilla:options lock_timeout=2s no-transaction "
                       "allow=r1 because\n-- flotilla:validate\nSELECT true;\n"
                       "-- flotilla:up\nCREATE TABLE a (id int);\n"
                       "-- flotilla:down\nDROP TABLE a;\n"
                       "-- flotilla:verify\nSELECT id FROM a;\n"},
        {"0002_b.sql", "-- flotilla:up\nSELECT 1;\n"},
    };
    fl_key_t *key = fl_key_new_from_seed(fl_fuzz_seed);
    fl_migration_t m[2];
    fl_migration_list_t l = {m, 2};
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    fl_buf_t out = FL_BUF_INIT(0);

    opts.created = 1700000000;
    opts.expires = 1700000000 + 30 * 86400;
    opts.note = "seed";
    opts.environment = "production";
    for (int i = 0; i < 2; i++)
        if (fl_migration_parse(&m[i], files[i][0], files[i][1],
                               strlen(files[i][1]), NULL) != 0)
            exit(1);
    if (fl_bundle_build(&out, &l, key, &opts, NULL) != 0)
        exit(1);
    s_write(dir, "bundle", "two.bundle", out.data, out.len);
    fl_buf_reset(&out);
    l.count = 1;
    opts.note = NULL;
    opts.channel = "stable";
    opts.sequence = 7;
    opts.selector = "tier=canary,region!=eu,ring";
    if (fl_bundle_build(&out, &l, key, &opts, NULL) != 0)
        exit(1);
    s_write(dir, "bundle", "one-scoped.bundle", out.data, out.len);
    fl_buf_release(&out);
    fl_migration_release(&m[0]);
    fl_migration_release(&m[1]);
    fl_key_destroy(&key);
}

static void
s_messages(const char *dir)
{
    static fl_wire_applied_t applied[1] = {
        {.version = {"1"}, .checksum = {0xab}, .status = "applied",
         .rollout = "r1"}};
    static fl_codec_kv_t labels[1] = {{"tier", "canary"}};
    static fl_wire_target_t targets[1] = {
        {.target = "db1", .kind = "database", .environment = "prod",
         .labels = labels, .nlabels = 1, .known = 1, .applied = applied,
         .napplied = 1}};
    static char *ids[2] = {"c1", "c2"};
    static fl_codec_kv_t args[1] = {{"bundle", "b.bundle"}};
    static unsigned char bytes[4] = {'F', 'L', 'O', 'T'};
    fl_buf_t out = FL_BUF_INIT(0);

    for (int t = 1; t <= FL_WIRE_TYPE_COUNT; t++) {
        fl_wire_msg_t m;
        char *name = NULL;

        memset(&m, 0, sizeof(m));
        m.type = (fl_wire_type)t;
        switch (m.type) {
        case FL_WIRE_HELLO:
            m.u.hello = (fl_wire_hello_t){
                .agent = "a1", .agent_version = "0.1.0", .labels = labels,
                .nlabels = 1, .targets = targets, .ntargets = 1,
                .holding = ids, .nholding = 2};
            break;
        case FL_WIRE_WELCOME:
            m.u.welcome = (fl_wire_welcome_t){"c", "s1", 5000, 15000};
            break;
        case FL_WIRE_HEARTBEAT:
            m.u.heartbeat = (fl_wire_heartbeat_t){1, 1700000000000};
            break;
        case FL_WIRE_BUNDLE:
            m.u.bundle.bundle_id = "b1";
            m.u.bundle.data = bytes;
            m.u.bundle.len = sizeof(bytes);
            crypto_hash_sha256(m.u.bundle.sha256, bytes, sizeof(bytes));
            break;
        case FL_WIRE_APPLY:
        case FL_WIRE_ROLLBACK:
        case FL_WIRE_PLAN:
        case FL_WIRE_CANCEL:
            /* An apply as a retry, a rollback of a rollout: the seeds
             * have every field. */
            m.u.command = (fl_wire_command_t){
                "c1", "r1", "db1", "b1", {"2"}, NULL,
                m.type == FL_WIRE_APPLY,
                m.type == FL_WIRE_ROLLBACK ? "r0" : NULL};
            break;
        case FL_WIRE_BASELINE:
            m.u.command = (fl_wire_command_t){"c1", "r1", "db1", "b1",
                                              FL_VERSION_INIT, "diesel", 0,
                                              NULL};
            break;
        case FL_WIRE_STEP_EVENT:
            m.u.step_event = (fl_wire_step_event_t){
                "r1", "db1", "execute", "failed", 12, "m", "e", "d", "h",
                "55P03"};
            break;
        case FL_WIRE_RESULT:
            m.u.result = (fl_wire_result_t){
                .id = "c1", .rollout = "r1", .target = "db1",
                .action = "apply", .status = "ok", .version = {"2"},
                .duration_ms = 40};
            break;
        case FL_WIRE_LEDGER_QUERY:
            m.u.ledger_query = (fl_wire_ledger_query_t){"q1", "db1"};
            break;
        case FL_WIRE_LEDGER_REPLY:
            m.u.ledger_reply.id = "q1";
            m.u.ledger_reply.state = targets[0];
            break;
        case FL_WIRE_ERROR:
            m.u.error = (fl_wire_error_t){"c1", "protocol", "bad", NULL, "h"};
            break;
        case FL_WIRE_CONTROL_REQUEST:
            m.u.control_request = (fl_wire_control_request_t){
                .id = "o1", .command = "dispatch", .args = args, .nargs = 1,
                .data = bytes, .len = sizeof(bytes)};
            break;
        case FL_WIRE_CONTROL_REPLY:
            m.u.control_reply = (fl_wire_control_reply_t){"o1", 0, "{}"};
            break;
        case FL_WIRE_BUNDLE_REQUEST:
            m.u.bundle_request = (fl_wire_bundle_request_t){"b1"};
            break;
        case FL_WIRE_RESULT_ACK:
            m.u.result_ack = (fl_wire_result_ack_t){ids, 2};
            break;
        }
        fl_buf_reset(&out);
        if (fl_wire_encode(&out, &m, NULL) != 0)
            exit(1);
        name = fl_asprintf("%s.msgpack", fl_wire_type_name(m.type));
        s_write(dir, "wire", name, out.data, out.len);
        free(name);
    }
    fl_buf_release(&out);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "Usage: fuzz_make_corpus CORPUS_DIR\n");
        return 2;
    }
    s_bundles(argv[1]);
    s_messages(argv[1]);
    return 0;
}
