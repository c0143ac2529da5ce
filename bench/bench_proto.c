/*
 * bench_proto.c - benchmark of bundle verification and wire decoding,
 * each against a baseline measured in the same run (bench/proto.sh).
 *
 * 1. Verify a bundle holding 1 MiB of SQL (16 migrations of 64 KiB):
 *    median of many fl_bundle_verify_bytes() calls (signature, strict
 *    decode, SHA-256 digest, SHA-256 checksums, copies), against the bare
 *    crypto work on the same bytes: crypto_sign_verify_detached() plus
 *    libsodium's crypto_hash_sha256() (kept as the baseline of earlier
 *    runs; fl_hash_sha256(), which verification uses, is shown apart).
 *    Target: under 5 ms.
 * 2. Decode 100,000 step-event messages with fl_wire_decode() (and free
 *    them), against msgpack-c's msgpack_unpack() into a reused zone on
 *    the same bytes.  Target: over 500,000 messages/s.
 */
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "proto/bundle.h"
#include "proto/wire.h"
#include "bench_internal.h"

#define VERIFY_RUNS 201
#define NMSG 100000
#define DECODE_ROUNDS 5

static void
s_make_bundle(fl_buf_t *out, fl_trust_t **trust)
{
    unsigned char seed[32] = {42};
    fl_key_t *key = fl_key_new_from_seed(seed);
    fl_migration_t m[16];
    fl_migration_list_t l = {m, 16};
    fl_bundle_opts_t opts = {1700000000, 0, "bench"};
    fl_buf_t sql = FL_BUF_INIT(0);

    for (int i = 0; i < 16; i++) {
        char *name = fl_asprintf("%04d_step.sql", i + 1);

        fl_buf_reset(&sql);
        if (fl_buf_puts(&sql, "-- flotilla:up\n") != 0)
            exit(1);
        while (sql.len < 64 * 1024)
            if (fl_buf_printf(&sql, "INSERT INTO t%d VALUES (%zu, 'row "
                                    "%zu of the benchmark');\n",
                              i, sql.len, sql.len) != 0)
                exit(1);
        if (fl_migration_parse(&m[i], name, sql.data, sql.len, NULL) != 0)
            exit(1);
        free(name);
    }
    if (fl_bundle_build(out, &l, key, &opts, NULL) != 0)
        exit(1);
    *trust = fl_trust_new();
    fl_trust_add(*trust, fl_key_public(key));
    for (int i = 0; i < 16; i++)
        fl_migration_release(&m[i]);
    fl_buf_release(&sql);
    fl_key_destroy(&key);
}

static void
s_bench_verify(void)
{
    fl_buf_t bytes = FL_BUF_INIT(0);
    fl_trust_t *trust = NULL;
    double *ours = fl_calloc(VERIFY_RUNS, sizeof(double));
    double *base = fl_calloc(VERIFY_RUNS, sizeof(double));
    double *part[4] = {fl_calloc(VERIFY_RUNS, sizeof(double)),
                       fl_calloc(VERIFY_RUNS, sizeof(double)),
                       fl_calloc(VERIFY_RUNS, sizeof(double)),
                       fl_calloc(VERIFY_RUNS, sizeof(double))};
    unsigned char seed[32] = {42};
    fl_key_t *key = fl_key_new_from_seed(seed);
    const unsigned char *p;
    size_t n;
    unsigned char h[32];

    s_make_bundle(&bytes, &trust);
    p = (const unsigned char *)bytes.data;
    n = bytes.len;
    for (int i = 0; i < VERIFY_RUNS; i++) {
        fl_bundle_t *b = NULL;
        double t0 = fl_bench_now();

        if (fl_bundle_verify_bytes(&b, p, n, trust, 1700000001, NULL) != 0)
            exit(1);
        fl_bundle_destroy(&b);
        ours[i] = fl_bench_now() - t0;
        t0 = fl_bench_now();
        if (crypto_sign_verify_detached(p + n - 64, p, n - 64,
                                        fl_key_public(key)) != 0)
            exit(1);
        crypto_hash_sha256(h, p, n);
        base[i] = fl_bench_now() - t0;
        /* The parts: where the time goes on this machine. */
        t0 = fl_bench_now();
        if (crypto_sign_verify_detached(p + n - 64, p, n - 64,
                                        fl_key_public(key)) != 0)
            exit(1);
        part[0][i] = fl_bench_now() - t0;
        t0 = fl_bench_now();
        crypto_hash_sha256(h, p, n);
        part[1][i] = fl_bench_now() - t0;
        t0 = fl_bench_now();
        crypto_generichash(h, sizeof(h), p, n, NULL, 0);
        part[2][i] = fl_bench_now() - t0;
        t0 = fl_bench_now();
        fl_hash_sha256(h, p, n);
        part[3][i] = fl_bench_now() - t0;
    }
    printf("verify: bundle of %zu bytes (1 MiB of SQL in 16 migrations), "
           "%d runs\n", n, VERIFY_RUNS);
    printf("  fl_bundle_verify_bytes             median %.3f ms\n",
           fl_bench_median(ours, VERIFY_RUNS) * 1e3);
    printf("  baseline sign_verify + sha256      median %.3f ms\n",
           fl_bench_median(base, VERIFY_RUNS) * 1e3);
    printf("    of which sign_verify alone       median %.3f ms\n",
           fl_bench_median(part[0], VERIFY_RUNS) * 1e3);
    printf("    of which sha256 alone            median %.3f ms\n",
           fl_bench_median(part[1], VERIFY_RUNS) * 1e3);
    printf("  (blake2b-256 of the same bytes     median %.3f ms)\n",
           fl_bench_median(part[2], VERIFY_RUNS) * 1e3);
    printf("  (fl_hash_sha256 of the same bytes  median %.3f ms)\n",
           fl_bench_median(part[3], VERIFY_RUNS) * 1e3);
    for (int k = 0; k < 4; k++)
        free(part[k]);
    free(ours);
    free(base);
    fl_trust_destroy(&trust);
    fl_key_destroy(&key);
    fl_buf_release(&bytes);
}

static void
s_bench_decode(void)
{
    fl_buf_t all = FL_BUF_INIT(0);
    size_t *off = fl_calloc(NMSG + 1, sizeof(size_t));
    double ours[DECODE_ROUNDS], base[DECODE_ROUNDS];
    msgpack_zone zone;

    for (size_t i = 0; i < NMSG; i++) {
        char target[32], rollout[32];
        fl_wire_msg_t m;

        memset(&m, 0, sizeof(m));
        snprintf(target, sizeof(target), "tenant_%zu", i);
        snprintf(rollout, sizeof(rollout), "r-%zu", i % 17);
        m.type = FL_WIRE_STEP_EVENT;
        m.u.step_event = (fl_wire_step_event_t){
            rollout, target, "execute", i % 10 ? "ok" : "failed",
            (int64_t)(i % 5000), "applied 0042_add_email", NULL, NULL, NULL,
            NULL};
        off[i] = all.len;
        if (fl_wire_encode(&all, &m, NULL) != 0)
            exit(1);
    }
    off[NMSG] = all.len;
    msgpack_zone_init(&zone, 4096);
    for (int r = 0; r < DECODE_ROUNDS; r++) {
        double t0 = fl_bench_now();

        for (size_t i = 0; i < NMSG; i++) {
            fl_wire_msg_t m;

            if (fl_wire_decode(&m, (unsigned char *)all.data + off[i],
                               off[i + 1] - off[i], NULL) != 0)
                exit(1);
            fl_wire_msg_release(&m);
        }
        ours[r] = fl_bench_now() - t0;
        t0 = fl_bench_now();
        for (size_t i = 0; i < NMSG; i++) {
            msgpack_object obj;
            size_t o = 0;

            if (msgpack_unpack(all.data + off[i], off[i + 1] - off[i], &o,
                               &zone, &obj) != MSGPACK_UNPACK_SUCCESS)
                exit(1);
            msgpack_zone_clear(&zone);
        }
        base[r] = fl_bench_now() - t0;
    }
    printf("decode: %d step-event messages (%zu bytes, %.0f bytes each), "
           "median of %d rounds\n", NMSG, all.len, (double)all.len / NMSG,
           DECODE_ROUNDS);
    printf("  fl_wire_decode + release           %.0f messages/s\n",
           NMSG / fl_bench_median(ours, DECODE_ROUNDS));
    printf("  baseline msgpack_unpack            %.0f messages/s\n",
           NMSG / fl_bench_median(base, DECODE_ROUNDS));
    msgpack_zone_destroy(&zone);
    free(off);
    fl_buf_release(&all);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    s_bench_verify();
    s_bench_decode();
    return 0;
}
