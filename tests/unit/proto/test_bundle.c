/*
 * Unit tests for proto/bundle: building, verifying and decoding signed
 * bundles, and every rejection in the verification order: size, magic,
 * format version (format 1 on its own), truncation, unknown signer, any
 * flipped byte, digest, checksums, release and scope syntax, then the
 * times (expires after created, lifetime, created in the future,
 * expiry); the scope check executors call; the trust store's
 * StrictModes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "../../fuzz/fuzz_key.h"
#include "common/alloc.h"
#include "proto/bundle.h"
#include "testsupport.h"

/* The fixture's bundle is created at S_CREATED and valid for a day. */
#define S_CREATED 1700000000
#define S_DAY 86400
#define S_NOW (S_CREATED + 1)

typedef struct {
    fl_key_t *key;
    fl_key_t *other;
    fl_trust_t *trust;
    fl_migration_list_t migs;
    fl_buf_t bytes;
} fixture;

static const char *const s_files[][2] = {
    {"0001_users.sql", "-- flotilla:options lock_timeout=2s\n"
                       "-- flotilla:up\nCREATE TABLE users (id int);\n"
                       "-- flotilla:down\nDROP TABLE users;\n"},
    {"0002_email.sql", "-- flotilla:options no-transaction allow=r1 why not\n"
                       "-- flotilla:validate\nSELECT true;\n"
                       "-- flotilla:up\nALTER TABLE users ADD email text;\n"
                       "-- flotilla:verify\nSELECT email FROM users;\n"},
};

static fl_key_t *
s_key(unsigned char fill)
{
    unsigned char seed[32];

    memset(seed, fill, sizeof(seed));
    return fl_key_new_from_seed(seed);
}

static void
s_build_opts(fixture *f, const fl_bundle_opts_t *opts)
{
    fl_error_t err = FL_ERROR_INIT;

    fl_buf_reset(&f->bytes);
    if (fl_bundle_build(&f->bytes, &f->migs, f->key, opts, &err) != 0)
        fail_msg("build: %s", err.message);
}

/* Builds for environment "production", channel and sequence by default. */
static void
s_build(fixture *f, int64_t created, int64_t expires, const char *note)
{
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;

    opts.created = created;
    opts.expires = expires;
    opts.note = note;
    opts.environment = "production";
    s_build_opts(f, &opts);
}

/* Verifies data at time now with the default limits. */
static int
s_verify(fl_bundle_t **out, const unsigned char *data, size_t len,
         const fl_trust_t *t, int64_t now, fl_error_t *err)
{
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;

    opts.now_s = now;
    return fl_bundle_verify_bytes(out, data, len, t, &opts, err);
}

static int
setup(void **state)
{
    fixture *f = fl_calloc(1, sizeof(*f));
    size_t n = sizeof(s_files) / sizeof(s_files[0]);

    f->key = s_key(1);
    f->other = s_key(2);
    f->trust = fl_trust_new();
    fl_trust_add(f->trust, fl_key_public(f->key));
    f->migs.items = fl_calloc(n, sizeof(fl_migration_t));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(fl_migration_parse(&f->migs.items[i], s_files[i][0],
                                            s_files[i][1],
                                            strlen(s_files[i][1]), NULL), 0);
        f->migs.count++;
    }
    fl_buf_init(&f->bytes, 0);
    s_build(f, S_CREATED, S_CREATED + S_DAY, "release 1");
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;

    fl_buf_release(&f->bytes);
    fl_migration_list_release(&f->migs);
    fl_trust_destroy(&f->trust);
    fl_key_destroy(&f->key);
    fl_key_destroy(&f->other);
    free(f);
    return 0;
}

static const unsigned char *
s_data(const fixture *f)
{
    return (const unsigned char *)f->bytes.data;
}

/* Verifies data and expects failure with needle in the message. */
static void
s_expect_refused(const unsigned char *data, size_t len, const fl_trust_t *t,
                 int64_t now, const char *needle)
{
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(s_verify(&b, data, len, t, now, &err), FL_EPROTO);
    assert_null(b);
    if (strstr(err.message, needle) == NULL)
        fail_msg("got \"%s\", wanted \"%s\"", err.message, needle);
    fl_error_clear(&err);
}

/*
 * Re-signs a modified bundle with the trusted key, as a compromised
 * build machine could: the signature holds, so the content checks must
 * catch the change.  Finds the body between the payload's "body" key and
 * its "digest" key.
 */
static void
s_resign(fixture *f, unsigned char *data, size_t len, int fix_digest)
{
    size_t body = FL_BUNDLE_HEADER_BYTES + 6;
    size_t end = body;
    unsigned char digest[32];
    char id[33];

    while (memcmp(data + end, "\xa6" "digest", 7) != 0)
        end++;
    if (fix_digest) {
        crypto_hash_sha256(digest, data + body, end - body);
        memcpy(data + end + 9, digest, 32);
        sodium_bin2hex(id, sizeof(id), digest, 16);
        memcpy(data + end + 9 + 32 + 3 + 2, id, 32);
    }
    fl_key_sign(f->key, data + len - 64, data, len - 64);
}

/* Writes the fixture's bundle to path. */
static void
s_write_bundle(const fixture *f, const char *path)
{
    FILE *fp = fopen(path, "wb");

    assert_non_null(fp);
    assert_int_equal(fwrite(f->bytes.data, 1, f->bytes.len, fp), f->bytes.len);
    assert_int_equal(fclose(fp), 0);
}

/*
 * The digest is SHA-256 of the body's raw bytes (docs/bundles.md), checked
 * here against libsodium's independent SHA-256.  The body runs from the
 * payload's "body" key to its "digest" key.
 */
/*
 * The lint gate (lint.enforce_from) is signed into the body and read back;
 * a bundle without one has none; an invalid one is refused at build.
 */
static void
test_bundle_lint_gate_is_signed_and_read_back(void **state)
{
    fixture *f = *state;
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;
    fl_buf_t out;

    opts.created = S_NOW - 10;
    opts.expires = S_NOW + 3600;
    opts.environment = "production";
    s_build_opts(f, &opts);
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              &err), 0);
    assert_null(fl_bundle_lint_enforce_from(b));
    fl_bundle_destroy(&b);
    opts.lint_enforce_from = "20190226002946";
    s_build_opts(f, &opts);
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              &err), 0);
    assert_string_equal(fl_bundle_lint_enforce_from(b), "20190226002946");
    fl_bundle_destroy(&b);
    opts.lint_enforce_from = "1; DROP";
    fl_buf_init(&out, 0);
    assert_int_equal(fl_bundle_build(&out, &f->migs, f->key, &opts, &err),
                     FL_EINVAL);
    assert_non_null(strstr(err.message, "invalid lint.enforce_from"));
    assert_int_equal(out.len, 0);
    fl_buf_release(&out);
    fl_error_clear(&err);
}

/*
 * Another tool's migration keeps its note and a pop group's parts in the
 * bundle; a migration without them encodes as before (the fixture's
 * bytes do not change).
 */
static void
test_bundle_carries_note_and_parts(void **state)
{
    fixture *f = *state;
    fl_migration_t *m = &f->migs.items[1];
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;
    fl_buf_t before;
    const fl_migration_t *x;

    fl_buf_init(&before, 0);
    assert_int_equal(fl_buf_append(&before, f->bytes.data, f->bytes.len), 0);
    m->note = fl_strdup("a group of 2 pop files");
    m->parts = fl_calloc(2, sizeof(char *));
    m->parts[0] = fl_strdup("1");
    m->parts[1] = fl_strdup("2");
    m->nparts = 2;
    s_build(f, S_CREATED, S_CREATED + S_DAY, "release 1");
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              &err), 0);
    x = &fl_bundle_migrations(b)->items[1];
    assert_string_equal(x->note, "a group of 2 pop files");
    assert_int_equal(x->nparts, 2);
    assert_string_equal(x->parts[0], "1");
    assert_string_equal(x->parts[1], "2");
    assert_null(fl_bundle_migrations(b)->items[0].note);
    assert_int_equal(fl_bundle_migrations(b)->items[0].nparts, 0);
    /* What an executor checks after verifying (agent/source.c). */
    assert_int_equal(fl_migration_check(x, NULL), 0);
    fl_bundle_destroy(&b);
    free(m->note);
    m->note = NULL;
    for (size_t i = 0; i < m->nparts; i++)
        free(m->parts[i]);
    free(m->parts);
    m->parts = NULL;
    m->nparts = 0;
    s_build(f, S_CREATED, S_CREATED + S_DAY, "release 1");
    assert_int_equal(f->bytes.len, before.len);
    assert_memory_equal(f->bytes.data, before.data, before.len);
    fl_buf_release(&before);
}

static void
test_bundle_digest_is_sha256_of_the_raw_body(void **state)
{
    fixture *f = *state;
    const unsigned char *data = s_data(f);
    size_t body = FL_BUNDLE_HEADER_BYTES + 6;
    size_t end = body;
    unsigned char digest[32];
    char hex[65];
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    assert_memory_equal(data + FL_BUNDLE_HEADER_BYTES + 1, "\xa4" "body", 5);
    while (memcmp(data + end, "\xa6" "digest", 7) != 0)
        end++;
    crypto_hash_sha256(digest, data + body, end - body);
    sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
    assert_int_equal(s_verify(&b, data, f->bytes.len, f->trust, S_NOW, &err),
                     0);
    assert_string_equal(fl_bundle_digest_hex(b), hex);
    fl_bundle_destroy(&b);
}

static void
test_bundle_verify_returns_the_migrations_as_built(void **state)
{
    fixture *f = *state;
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;
    const fl_migration_list_t *l;

    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              &err), 0);
    assert_true(fl_bundle_is_verified(b));
    assert_string_equal(fl_bundle_signer(b), fl_key_id(f->key));
    assert_int_equal(strlen(fl_bundle_id(b)), 32);
    assert_memory_equal(fl_bundle_id(b), fl_bundle_digest_hex(b), 32);
    assert_int_equal(fl_bundle_created(b), S_CREATED);
    assert_int_equal(fl_bundle_expires(b), S_CREATED + S_DAY);
    assert_string_equal(fl_bundle_channel(b), "default");
    assert_int_equal(fl_bundle_sequence(b), S_CREATED);
    assert_string_equal(fl_bundle_environment(b), "production");
    assert_string_equal(fl_bundle_selector(b), "");
    assert_string_equal(fl_bundle_note(b), "release 1");
    assert_int_equal(fl_bundle_format(b), FL_BUNDLE_FORMAT);
    l = fl_bundle_migrations(b);
    assert_int_equal(l->count, 2);
    for (size_t i = 0; i < l->count; i++) {
        const fl_migration_t *x = &l->items[i];
        const fl_migration_t *y = &f->migs.items[i];

        assert_string_equal(x->version.text, y->version.text);
        assert_string_equal(x->name, y->name);
        assert_string_equal(x->file, y->file);
        assert_string_equal(x->up, y->up);
        assert_int_equal(x->down == NULL, y->down == NULL);
        assert_int_equal(x->up_line, y->up_line);
        assert_int_equal(x->validate_line, y->validate_line);
        assert_int_equal(x->no_transaction, y->no_transaction);
        assert_int_equal(x->lock_timeout_ms, y->lock_timeout_ms);
        assert_int_equal(x->nallows, y->nallows);
        /* The same checksum from a directory and from a bundle. */
        assert_string_equal(x->checksum_hex, y->checksum_hex);
    }
    assert_string_equal(l->items[1].allows[0].reason, "why not");
    fl_bundle_destroy(&b);
    assert_null(b);
    fl_bundle_destroy(&b);
}

static void
test_bundle_build_is_deterministic(void **state)
{
    fixture *f = *state;
    fl_buf_t first = FL_BUF_INIT(0);

    assert_int_equal(fl_buf_append(&first, f->bytes.data, f->bytes.len), 0);
    s_build(f, S_CREATED, S_CREATED + S_DAY, "release 1");
    assert_int_equal(first.len, f->bytes.len);
    assert_memory_equal(first.data, f->bytes.data, first.len);
    s_build(f, S_CREATED + 1, S_CREATED + S_DAY, "release 1");
    assert_true(first.len != f->bytes.len ||
                memcmp(first.data, f->bytes.data, first.len) != 0);
    fl_buf_release(&first);
}

static void
test_bundle_every_flipped_byte_is_refused(void **state)
{
    fixture *f = *state;
    unsigned char *copy = fl_malloc(f->bytes.len);

    memcpy(copy, f->bytes.data, f->bytes.len);
    for (size_t i = 0; i < f->bytes.len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            fl_bundle_t *b = NULL;

            copy[i] ^= (unsigned char)(1u << bit);
            if (s_verify(&b, copy, f->bytes.len, f->trust, S_NOW, NULL) == 0)
                fail_msg("flipping bit %d of byte %zu was not detected", bit, i);
            assert_null(b);
            copy[i] ^= (unsigned char)(1u << bit);
        }
    }
    free(copy);
}

static void
test_bundle_every_truncation_is_refused(void **state)
{
    fixture *f = *state;

    for (size_t len = 0; len < f->bytes.len; len++) {
        /* A copy of exactly len bytes so ASan sees any read past it. */
        unsigned char *copy = fl_malloc(len);
        fl_bundle_t *b = NULL;

        memcpy(copy, f->bytes.data, len);
        assert_int_not_equal(s_verify(&b, copy, len, f->trust, S_NOW, NULL),
                             0);
        free(copy);
    }
    s_expect_refused(s_data(f), 40, f->trust, 0, "bundle is truncated");
    s_expect_refused(s_data(f), f->bytes.len - 1, f->trust, 0,
                     "bundle is truncated");
}

static void
test_bundle_envelope_errors_have_their_own_messages(void **state)
{
    fixture *f = *state;
    unsigned char *copy = fl_malloc(f->bytes.len + 1);
    unsigned char *huge = NULL;

    memcpy(copy, f->bytes.data, f->bytes.len);
    copy[0] = 'X';
    s_expect_refused(copy, f->bytes.len, f->trust, 0, "not a flotilla bundle");
    copy[0] = 'F';
    /* 3 is read (repeatable migrations), and a release before it
     * refused it so too; 4 is not read. */
    copy[9] = 4;
    s_expect_refused(copy, f->bytes.len, f->trust, 0,
                     "bundle format version 4 is not supported");
    copy[9] = 2;
    copy[f->bytes.len] = 0;
    s_expect_refused(copy, f->bytes.len + 1, f->trust, 0,
                     "unexpected bytes after its signature");
    s_expect_refused(copy, f->bytes.len - 64, f->trust, 0,
                     "bundle is truncated");
    copy[f->bytes.len - 1] ^= 1;
    s_expect_refused(copy, f->bytes.len, f->trust, 0,
                     "bundle signature is not valid");
    copy[f->bytes.len - 1] ^= 1;
    copy[30] ^= 1;
    s_expect_refused(copy, f->bytes.len, f->trust, 0,
                     "bundle signature is not valid");
    s_expect_refused((const unsigned char *)"", 0, f->trust, 0,
                     "not a flotilla bundle");
    /* Too large: refused before a byte is read. */
    huge = calloc(FL_BUNDLE_MAX_SIZE + 1, 1);
    assert_non_null(huge);
    s_expect_refused(huge, FL_BUNDLE_MAX_SIZE + 1, f->trust, 0,
                     "bundle is too large");
    free(huge);
    free(copy);
}

static void
test_bundle_unknown_signer_is_refused(void **state)
{
    fixture *f = *state;
    fl_trust_t *other = fl_trust_new();
    fl_trust_t *empty = fl_trust_new();

    fl_trust_add(other, fl_key_public(f->other));
    s_expect_refused(s_data(f), f->bytes.len, other, 0,
                     "bundle is signed by unknown key");
    s_expect_refused(s_data(f), f->bytes.len, empty, 0,
                     fl_key_id(f->key));
    /* Adding the signer's key makes it verify. */
    fl_trust_add(other, fl_key_public(f->key));
    fl_trust_add(other, fl_key_public(f->key));
    assert_int_equal(fl_trust_count(other), 2);
    {
        fl_bundle_t *b = NULL;

        assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, other, S_NOW,
                                  NULL), 0);
        fl_bundle_destroy(&b);
    }
    fl_trust_destroy(&other);
    fl_trust_destroy(&empty);
}

static void
test_bundle_expired_is_refused(void **state)
{
    fixture *f = *state;
    fl_bundle_t *b = NULL;

    s_build(f, S_CREATED, S_CREATED + 3600, NULL);
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust,
                              S_CREATED + 3599, NULL), 0);
    assert_int_equal(fl_bundle_expires(b), S_CREATED + 3600);
    assert_string_equal(fl_bundle_note(b), "");
    fl_bundle_destroy(&b);
    s_expect_refused(s_data(f), f->bytes.len, f->trust, S_CREATED + 3600,
                     "expired at 2023-11-14 23:13:20 UTC");
    /* For a rollback, an expired bundle passes; every other check stays. */
    {
        fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;
        fl_error_t err = FL_ERROR_INIT;

        opts.now_s = S_CREATED + 3600 * 24 * 365;
        opts.allow_expired = 1;
        assert_int_equal(fl_bundle_verify_bytes(&b, s_data(f), f->bytes.len,
                                                f->trust, &opts, &err), 0);
        fl_bundle_destroy(&b);
        opts.now_s = S_CREATED - 301;
        assert_int_not_equal(fl_bundle_verify_bytes(&b, s_data(f),
                                                    f->bytes.len, f->trust,
                                                    &opts, &err), 0);
        assert_non_null(strstr(err.message, "created in the future"));
        fl_error_clear(&err);
    }
}

/* Issue 9: a bundle dated ahead of the verifier's clock is refused. */
static void
test_bundle_created_in_the_future_is_refused(void **state)
{
    fixture *f = *state;
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    /* Within the default skew of five minutes: accepted. */
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust,
                              S_CREATED - 300, NULL), 0);
    fl_bundle_destroy(&b);
    s_expect_refused(s_data(f), f->bytes.len, f->trust, S_CREATED - 301,
                     "was created in the future");
    opts.now_s = S_CREATED - 1;
    opts.max_skew_s = 0;
    assert_int_equal(fl_bundle_verify_bytes(&b, s_data(f), f->bytes.len,
                                            f->trust, &opts, &err), FL_EPROTO);
    assert_non_null(strstr(err.detail, "1s ahead of this host's clock"));
    assert_non_null(strstr(err.detail, "the clock skew allowed is 0ms"));
    assert_non_null(strstr(err.hint, "NTP"));
    fl_error_clear(&err);
}

/*
 * Finds the msgpack uint32 that follows key in the body and replaces it
 * with v: the same length, so the bundle stays well formed.  Returns the
 * position of the value.
 */
static unsigned char *
s_patch_u32(unsigned char *data, size_t len, const char *key, uint32_t v)
{
    unsigned char *p = memmem(data, len, key, strlen(key));

    assert_non_null(p);
    p += strlen(key);
    assert_int_equal(p[0], 0xce);
    p[1] = (unsigned char)(v >> 24);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 8);
    p[4] = (unsigned char)v;
    return p;
}

/*
 * Issue 9: expires at or before created is refused, however it was
 * signed (fl_bundle_build refuses to make one, a faulty builder might).
 */
static void
test_bundle_expires_not_after_created_is_refused(void **state)
{
    fixture *f = *state;
    unsigned char *copy = fl_malloc(f->bytes.len);
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    fl_buf_t out = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;

    memcpy(copy, f->bytes.data, f->bytes.len);
    s_patch_u32(copy, f->bytes.len, "\xa7" "expires", S_CREATED);
    s_resign(f, copy, f->bytes.len, 1);
    s_expect_refused(copy, f->bytes.len, f->trust, S_NOW,
                     "expires at 2023-11-14 22:13:20 UTC, not after its "
                     "creation at 2023-11-14 22:13:20 UTC");
    s_patch_u32(copy, f->bytes.len, "\xa7" "expires", S_CREATED - 1);
    s_resign(f, copy, f->bytes.len, 1);
    s_expect_refused(copy, f->bytes.len, f->trust, S_NOW, "not after its "
                                                          "creation");
    free(copy);

    opts.created = S_CREATED;
    opts.environment = "production";
    assert_int_equal(fl_bundle_build(&out, &f->migs, f->key, &opts, &err),
                     FL_EINVAL);
    assert_non_null(strstr(err.message, "bundle expiry never is not after its "
                                        "creation time"));
    assert_int_equal(out.len, 0);
    fl_error_clear(&err);
    fl_buf_release(&out);
}

/* Issue 9: a bundle valid for longer than the verifier allows is refused. */
static void
test_bundle_lifetime_above_the_maximum_is_refused(void **state)
{
    fixture *f = *state;
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    /* Ninety days is the default maximum; a day more is refused. */
    s_build(f, S_CREATED, S_CREATED + 90 * S_DAY, NULL);
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              NULL), 0);
    fl_bundle_destroy(&b);
    s_build(f, S_CREATED, S_CREATED + 91 * S_DAY, NULL);
    opts.now_s = S_NOW;
    assert_int_equal(fl_bundle_verify_bytes(&b, s_data(f), f->bytes.len,
                                            f->trust, &opts, &err), FL_EPROTO);
    assert_non_null(strstr(err.message, "is valid for longer than this host "
                                        "accepts"));
    assert_non_null(strstr(err.detail, "It is valid for 91d"));
    assert_non_null(strstr(err.detail, "the most accepted here is 90d"));
    assert_non_null(strstr(err.hint, "--expires 90d or less"));
    fl_error_clear(&err);
    /* The limit is the verifier's. */
    opts.max_lifetime_s = 91 * S_DAY;
    assert_int_equal(fl_bundle_verify_bytes(&b, s_data(f), f->bytes.len,
                                            f->trust, &opts, &err), 0);
    fl_bundle_destroy(&b);
    opts.max_lifetime_s = 3600;
    s_build(f, S_CREATED, S_CREATED + S_DAY, NULL);
    assert_int_equal(fl_bundle_verify_bytes(&b, s_data(f), f->bytes.len,
                                            f->trust, &opts, &err), FL_EPROTO);
    assert_non_null(strstr(err.detail, "the most accepted here is 1h"));
    fl_error_clear(&err);
}

/* Issue 9: format 1 bundles (no release, scope or required expiry). */
static void
test_bundle_format_1_is_refused_with_a_rebuild_hint(void **state)
{
    char *path = fl_test_source_path("tests/unit/proto/data/format1.bundle");
    fl_key_t *key = fl_key_new_from_seed(fl_fuzz_seed);
    fl_trust_t *t = fl_trust_new();
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;
    unsigned char *data = NULL;
    size_t len = 0;

    (void)state;
    fl_trust_add(t, fl_key_public(key));
    assert_int_equal(fl_bundle_read_file(&data, &len, path, &err), 0);
    assert_int_equal(data[9], 1);
    assert_int_equal(s_verify(&b, data, len, t, S_NOW, &err), FL_EPROTO);
    assert_null(b);
    assert_string_equal(err.message, "bundle format 1 is no longer accepted");
    assert_non_null(strstr(err.hint, "Rebuild the bundle"));
    assert_non_null(strstr(err.hint, "--environment"));
    fl_error_clear(&err);
    assert_int_equal(fl_bundle_load(&b, path, t, S_NOW, &err), FL_EPROTO);
    assert_non_null(strstr(err.message, "format 1"));
    fl_error_clear(&err);
    assert_int_equal(fl_bundle_decode_unverified(&b, data, len, &err),
                     FL_EPROTO);
    fl_error_clear(&err);
    free(data);
    free(path);
    fl_trust_destroy(&t);
    fl_key_destroy(&key);
}

static void
test_bundle_release_and_scope_are_signed_and_returned(void **state)
{
    fixture *f = *state;
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    fl_bundle_t *b = NULL;

    opts.created = S_CREATED;
    opts.expires = S_CREATED + S_DAY;
    opts.channel = "stable-1.x";
    opts.sequence = 42;
    opts.environment = "staging";
    opts.selector = "tier==canary,region!=eu,ring";
    s_build_opts(f, &opts);
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              NULL), 0);
    assert_string_equal(fl_bundle_channel(b), "stable-1.x");
    assert_int_equal(fl_bundle_sequence(b), 42);
    assert_string_equal(fl_bundle_environment(b), "staging");
    /* Stored in canonical form. */
    assert_string_equal(fl_bundle_selector(b), "tier=canary,region!=eu,ring");
    fl_bundle_destroy(&b);
    /* The same through unverified decoding. */
    assert_int_equal(fl_bundle_decode_unverified(&b, s_data(f), f->bytes.len,
                                                 NULL), 0);
    assert_int_equal(fl_bundle_sequence(b), 42);
    assert_string_equal(fl_bundle_selector(b), "tier=canary,region!=eu,ring");
    fl_bundle_destroy(&b);
}

static void
s_expect_build_refused(fixture *f, const fl_bundle_opts_t *opts,
                       const char *needle)
{
    fl_buf_t out = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_bundle_build(&out, &f->migs, f->key, opts, &err),
                     FL_EINVAL);
    if (strstr(err.message, needle) == NULL)
        fail_msg("got \"%s\", wanted \"%s\"", err.message, needle);
    assert_int_equal(out.len, 0);
    fl_error_clear(&err);
    fl_buf_release(&out);
}

static void
test_bundle_build_refuses_bad_release_and_scope(void **state)
{
    fixture *f = *state;
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    char longname[FL_BUNDLE_NAME_MAX + 2];

    opts.created = S_CREATED;
    opts.expires = S_CREATED + S_DAY;
    s_expect_build_refused(f, &opts, "a bundle needs an environment");
    opts.environment = "prod uction";
    s_expect_build_refused(f, &opts, "invalid environment \"prod uction\"");
    opts.environment = "";
    s_expect_build_refused(f, &opts, "invalid environment \"\"");
    opts.environment = "production";
    opts.channel = "a/b";
    s_expect_build_refused(f, &opts, "invalid release channel \"a/b\"");
    memset(longname, 'c', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    opts.channel = longname;
    s_expect_build_refused(f, &opts, "invalid release channel");
    longname[FL_BUNDLE_NAME_MAX] = '\0';
    s_build_opts(f, &opts); /* 64 characters are fine */
    opts.channel = NULL;
    opts.sequence = -1;
    s_expect_build_refused(f, &opts, "invalid release sequence -1");
    opts.sequence = 0;
    opts.selector = "tier=canary,,x";
    s_expect_build_refused(f, &opts, "invalid label selector");
}

/*
 * A signed body whose channel breaks the rules (a compromised builder)
 * is refused after the signature, and its value is shown escaped.
 */
static void
test_bundle_signed_invalid_channel_is_refused_escaped(void **state)
{
    fixture *f = *state;
    unsigned char *copy = fl_malloc(f->bytes.len);
    unsigned char *p = NULL;

    memcpy(copy, f->bytes.data, f->bytes.len);
    p = memmem(copy, f->bytes.len, "\xa7" "default", 8);
    assert_non_null(p);
    p[4] = 0x1b;
    s_resign(f, copy, f->bytes.len, 1);
    s_expect_refused(copy, f->bytes.len, f->trust, S_NOW,
                     "bundle has an invalid release channel \"def\\x1bult\"");
    free(copy);
}

static void
s_expect_not_admitted(const fl_bundle_t *b, const char *env,
                      const char *const *labels, size_t n, int code,
                      const char *message, const char *detail)
{
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_bundle_scope_admits(b, env, labels, n, &err), code);
    if (strstr(err.message, message) == NULL)
        fail_msg("got \"%s\", wanted \"%s\"", err.message, message);
    if (detail && strstr(err.detail, detail) == NULL)
        fail_msg("got detail \"%s\", wanted \"%s\"", err.detail, detail);
    fl_error_clear(&err);
}

/* Issue 9: the signed scope an executor checks for each target. */
static void
test_bundle_scope_admits_only_its_environment_and_selection(void **state)
{
    fixture *f = *state;
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    fl_bundle_t *b = NULL;
    const char *canary_us[] = {"region=us", "tier=canary"};
    const char *canary_eu[] = {"tier=canary", "region=eu"};
    const char *bad[] = {"tier"};

    /* Without a selector: every target of the environment. */
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              NULL), 0);
    assert_int_equal(fl_bundle_scope_admits(b, "production", NULL, 0, NULL), 0);
    assert_int_equal(fl_bundle_scope_admits(b, "production", canary_eu, 2,
                                            NULL), 0);
    s_expect_not_admitted(b, "staging", NULL, 0, FL_EPROTO,
                          "is for environment \"production\", not "
                          "\"staging\"", NULL);
    s_expect_not_admitted(b, NULL, NULL, 0, FL_EPROTO,
                          "and this target names no environment", NULL);
    fl_bundle_destroy(&b);

    opts.created = S_CREATED;
    opts.expires = S_CREATED + S_DAY;
    opts.environment = "production";
    opts.selector = "tier=canary,region!=eu";
    s_build_opts(f, &opts);
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              NULL), 0);
    assert_int_equal(fl_bundle_scope_admits(b, "production", canary_us, 2,
                                            NULL), 0);
    s_expect_not_admitted(b, "production", canary_eu, 2, FL_EPROTO,
                          "does not select this target",
                          "requires region!=eu, which the target's labels "
                          "(tier=canary, region=eu) do not satisfy");
    s_expect_not_admitted(b, "production", NULL, 0, FL_EPROTO,
                          "does not select this target",
                          "requires tier=canary, which the target's labels "
                          "(none) do not satisfy");
    s_expect_not_admitted(b, "production", bad, 1, FL_EINVAL,
                          "invalid target label \"tier\"", NULL);
    fl_bundle_destroy(&b);
}

/* The form agent/source.c calls: default limits, its own clock. */
static void
test_bundle_load_with_a_clock_applies_the_default_limits(void **state)
{
    fixture *f = *state;
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/b.bundle", dir);
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    s_build(f, S_CREATED, S_CREATED + 91 * S_DAY, NULL);
    s_write_bundle(f, path);
    assert_int_equal(fl_bundle_load(&b, path, f->trust, S_NOW, &err),
                     FL_EPROTO);
    assert_non_null(strstr(err.message, "valid for longer"));
    fl_error_clear(&err);
    assert_int_equal(fl_bundle_load(&b, path, f->trust, S_CREATED - 3600,
                                    &err), FL_EPROTO);
    fl_error_clear(&err);
    fl_test_rmtree(dir);
    free(dir);
    free(path);
}

static void
test_bundle_content_checks_catch_a_resigned_change(void **state)
{
    fixture *f = *state;
    size_t len = f->bytes.len;
    unsigned char *copy = fl_malloc(len);
    unsigned char *p = NULL;

    memcpy(copy, f->bytes.data, len);
    p = memmem(copy, len, "CREATE TABLE users", 18);
    assert_non_null(p);
    p[0] = 'X';
    s_resign(f, copy, len, 0);
    s_expect_refused(copy, len, f->trust, S_NOW,
                     "bundle digest does not match its content");
    s_resign(f, copy, len, 1);
    s_expect_refused(copy, len, f->trust, S_NOW,
                     "checksum of migration 1 \"0001_users.sql\" in the "
                     "bundle does not match its content");
    free(copy);
}

/*
 * A migration whose signed file name every reader refuses (here one with
 * a control character, which the checksum does not cover), re-signed
 * with a trusted key, is refused by verification itself, so that
 * "bundle verify" never calls valid what apply and the agents refuse.
 * Before, only the executors refused it (found by an audit).
 */
static void
test_bundle_verify_refuses_what_executors_refuse(void **state)
{
    fixture *f = *state;
    size_t len = f->bytes.len;
    unsigned char *copy = fl_malloc(len);
    unsigned char *p = NULL;
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    memcpy(copy, f->bytes.data, len);
    p = memmem(copy, len, "0001_users.sql", 14);
    assert_non_null(p);
    p[9] = 0x1b;
    s_resign(f, copy, len, 1);
    s_expect_refused(copy, len, f->trust, S_NOW, "bundle content: ");
    assert_int_equal(fl_bundle_decode_unverified(&b, copy, len, &err),
                     FL_EPROTO);
    assert_non_null(strstr(err.message, "migration"));
    fl_error_clear(&err);
    free(copy);
}

/*
 * A FIFO given as a bundle is refused at once as not a regular file,
 * and is not taken for a bundle file, never waited on (the alarm ends
 * the test if an open blocks).  Before, verify, inspect and apply hung
 * on it (found by an audit).
 */
static void
test_bundle_file_that_is_a_fifo_is_refused_at_once(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/fifo.bundle", dir);
    unsigned char *data = NULL;
    size_t len = 0;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    assert_int_equal(fl_bundle_is_bundle_file(path), 0);
    assert_int_not_equal(fl_bundle_read_file(&data, &len, path, &err), 0);
    alarm(0);
    assert_null(data);
    assert_non_null(strstr(err.message, "is not a regular file"));
    fl_error_clear(&err);
    fl_test_rmtree(dir);
    free(dir);
    free(path);
}

/*
 * A bundle whose id alone is wrong (its digest matches its body) says
 * so, naming both ids; before, it said the digest did not match (found
 * by an audit).
 */
static void
test_bundle_wrong_id_is_named_as_such(void **state)
{
    fixture *f = *state;
    size_t len = f->bytes.len;
    unsigned char *copy = fl_malloc(len);
    size_t end = FL_BUNDLE_HEADER_BYTES + 6;

    memcpy(copy, f->bytes.data, len);
    while (memcmp(copy + end, "\xa6" "digest", 7) != 0)
        end++;
    /* The id's first hex digit, after the digest and the "id" key. */
    copy[end + 9 + 32 + 3 + 2] ^= 0x01;
    s_resign(f, copy, len, 0);
    s_expect_refused(copy, len, f->trust, S_NOW, "bundle id ");
    free(copy);
}

static void
test_bundle_decode_unverified_skips_only_signature_and_times(void **state)
{
    fixture *f = *state;
    fl_bundle_t *b = NULL;
    unsigned char *copy = fl_malloc(f->bytes.len);

    memcpy(copy, f->bytes.data, f->bytes.len);
    copy[f->bytes.len - 1] ^= 1;
    assert_int_equal(fl_bundle_decode_unverified(&b, copy, f->bytes.len, NULL),
                     0);
    assert_false(fl_bundle_is_verified(b));
    fl_bundle_destroy(&b);
    copy[40] ^= 1;
    assert_int_equal(fl_bundle_decode_unverified(&b, copy, f->bytes.len, NULL),
                     FL_EPROTO);
    assert_null(b);
    free(copy);
}

static void
test_bundle_build_refuses_bad_lists(void **state)
{
    fixture *f = *state;
    fl_migration_list_t empty = {NULL, 0};
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;

    opts.created = S_CREATED;
    opts.expires = S_CREATED + S_DAY;
    opts.environment = "production";
    fl_error_t err = FL_ERROR_INIT;
    fl_buf_t out = FL_BUF_INIT(0);
    fl_migration_t swap;

    assert_int_not_equal(fl_bundle_build(&out, &empty, f->key, &opts, &err), 0);
    assert_non_null(strstr(err.message, "holds no migrations"));
    fl_error_clear(&err);
    swap = f->migs.items[0];
    f->migs.items[0] = f->migs.items[1];
    f->migs.items[1] = swap;
    assert_int_not_equal(fl_bundle_build(&out, &f->migs, f->key, &opts, &err),
                         0);
    assert_non_null(strstr(err.message, "out of order"));
    assert_int_equal(out.len, 0);
    fl_error_clear(&err);
    fl_buf_release(&out);
}

static void
test_bundle_files_and_trust_directories(void **state)
{
    fixture *f = *state;
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/b.bundle", dir);
    char *keys = fl_asprintf("%s/keys", dir);
    char *prefix = fl_asprintf("%s/keys/release", dir);
    char *bad = fl_asprintf("%s/keys/bad.pub", dir);
    char id[FL_KEY_ID_HEX];
    fl_trust_t *t = NULL;
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;

    s_write_bundle(f, path);
    assert_true(fl_bundle_is_bundle_file(path));
    assert_false(fl_bundle_is_bundle_file(keys));
    assert_int_equal(fl_bundle_load(&b, path, f->trust, S_NOW, &err), 0);
    fl_bundle_destroy(&b);

    assert_int_equal(mkdir(keys, 0755), 0);
    assert_int_equal(fl_trust_load(&t, keys, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "holds no .pub files"));
    fl_error_clear(&err);
    assert_int_equal(fl_key_generate_files(prefix, 0, id, &err), 0);
    assert_int_equal(fl_trust_load(&t, keys, &err), 0);
    assert_int_equal(fl_trust_count(t), 1);
    assert_int_equal(fl_bundle_load(&b, path, t, S_NOW, &err), FL_EPROTO);
    assert_non_null(strstr(err.message, "unknown key"));
    fl_error_clear(&err);
    fl_trust_destroy(&t);
    fl_test_write_file(bad, "flotilla-ed25519-public AAAA\n");
    assert_int_equal(fl_trust_load(&t, keys, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "invalid public key file"));
    assert_null(t);
    fl_error_clear(&err);
    assert_int_equal(fl_trust_load(&t, "/nonexistent", &err), FL_ENOTFOUND);
    fl_error_clear(&err);
    assert_int_equal(fl_bundle_load(&b, "/nonexistent", f->trust, 0, &err),
                     FL_ENOTFOUND);
    fl_error_clear(&err);
    fl_test_rmtree(dir);
    free(dir);
    free(path);
    free(keys);
    free(prefix);
    free(bad);
}

/*
 * StrictModes: a trust store that someone else could write decides what
 * this host executes, so it is refused, however valid its keys.
 */
static void
test_bundle_trust_store_writable_by_others_is_refused(void **state)
{
    char *dir = fl_test_tmpdir();
    char *keys = fl_asprintf("%s/keys", dir);
    char *prefix = fl_asprintf("%s/keys/release", dir);
    char *pub = fl_asprintf("%s/keys/release.pub", dir);
    char id[FL_KEY_ID_HEX];
    fl_trust_t *t = NULL;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(mkdir(keys, 0755), 0);
    assert_int_equal(fl_key_generate_files(prefix, 0, id, &err), 0);
    assert_int_equal(fl_trust_load(&t, keys, &err), 0);
    fl_trust_destroy(&t);

    assert_int_equal(chmod(keys, 0775), 0);
    assert_int_equal(fl_trust_load(&t, keys, &err), FL_EINVAL);
    assert_null(t);
    assert_non_null(strstr(err.message, "trust store"));
    assert_non_null(strstr(err.message, "is writable by group"));
    assert_non_null(strstr(err.detail, "mode 0775"));
    assert_non_null(strstr(err.hint, "chmod go-w"));
    fl_error_clear(&err);
    assert_int_equal(chmod(keys, 0755), 0);

    assert_int_equal(chmod(pub, 0666), 0);
    assert_int_equal(fl_trust_load(&t, keys, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "trusted key file"));
    assert_non_null(strstr(err.message, "release.pub\" is writable by group "
                                        "and others"));
    fl_error_clear(&err);
    assert_int_equal(fl_trust_load(&t, pub, &err), FL_EINVAL);
    fl_error_clear(&err);
    assert_int_equal(chmod(pub, 0644), 0);

    /* A parent directory others can write: they could swap keys/. */
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(fl_trust_load(&t, pub, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "is in a directory writable by group "
                                        "and others"));
    fl_error_clear(&err);
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(fl_trust_load(&t, pub, &err), 0);
    assert_int_equal(fl_trust_count(t), 1);
    fl_trust_destroy(&t);
    fl_test_rmtree(dir);
    free(dir);
    free(keys);
    free(prefix);
    free(pub);
}

/*
 * Repeatable migrations make a format 3 bundle (the header says so, so a
 * release that reads format 2 only refuses it instead of skipping the
 * array); read back with their content and checksums; a bundle without
 * them stays format 2, byte for byte what it was.
 */
static void
test_bundle_repeatables_make_format_3(void **state)
{
    fixture *f = *state;
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    fl_migration_list_t reps = {NULL, 0};
    fl_bundle_t *b = NULL;
    fl_error_t err = FL_ERROR_INIT;
    const char *text = "-- flotilla:up\nCREATE OR REPLACE VIEW v AS SELECT"
                       " 1;\n";

    assert_int_equal(f->bytes.data[8] * 256 + f->bytes.data[9],
                     FL_BUNDLE_FORMAT);
    reps.items = fl_calloc(1, sizeof(*reps.items));
    assert_int_equal(fl_migration_parse_repeatable(&reps.items[0], "R__v.sql",
                                                   text, strlen(text), &err),
                     0);
    reps.count = 1;
    opts.created = S_CREATED;
    opts.expires = S_CREATED + S_DAY;
    opts.environment = "production";
    opts.repeatables = &reps;
    s_build_opts(f, &opts);
    assert_int_equal((unsigned char)f->bytes.data[8] * 256 +
                         (unsigned char)f->bytes.data[9],
                     FL_BUNDLE_FORMAT_REPEATABLE);
    assert_int_equal(s_verify(&b, s_data(f), f->bytes.len, f->trust, S_NOW,
                              &err), 0);
    assert_int_equal(fl_bundle_format(b), FL_BUNDLE_FORMAT_REPEATABLE);
    assert_int_equal(fl_bundle_migrations(b)->count, 2);
    assert_int_equal(fl_bundle_repeatables(b)->count, 1);
    assert_true(fl_bundle_repeatables(b)->items[0].repeatable);
    assert_string_equal(fl_bundle_repeatables(b)->items[0].up,
                        reps.items[0].up);
    assert_string_equal(fl_bundle_repeatables(b)->items[0].checksum_hex,
                        reps.items[0].checksum_hex);
    assert_int_equal(fl_migration_check(&fl_bundle_repeatables(b)->items[0],
                                        &err), 0);
    fl_bundle_destroy(&b);
    /* A versioned migration is not taken as a repeatable one. */
    opts.repeatables = &f->migs;
    fl_buf_reset(&f->bytes);
    assert_int_equal(fl_bundle_build(&f->bytes, &f->migs, f->key, &opts,
                                     &err), FL_EINVAL);
    fl_error_clear(&err);
    fl_migration_list_release(&reps);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_bundle_repeatables_make_format_3),
        T(test_bundle_verify_returns_the_migrations_as_built),
        T(test_bundle_carries_note_and_parts),
        T(test_bundle_digest_is_sha256_of_the_raw_body),
        T(test_bundle_lint_gate_is_signed_and_read_back),
        T(test_bundle_verify_refuses_what_executors_refuse),
        T(test_bundle_file_that_is_a_fifo_is_refused_at_once),
        T(test_bundle_wrong_id_is_named_as_such),
        T(test_bundle_build_is_deterministic),
        T(test_bundle_every_flipped_byte_is_refused),
        T(test_bundle_every_truncation_is_refused),
        T(test_bundle_envelope_errors_have_their_own_messages),
        T(test_bundle_unknown_signer_is_refused),
        T(test_bundle_expired_is_refused),
        T(test_bundle_created_in_the_future_is_refused),
        T(test_bundle_expires_not_after_created_is_refused),
        T(test_bundle_lifetime_above_the_maximum_is_refused),
        T(test_bundle_format_1_is_refused_with_a_rebuild_hint),
        T(test_bundle_release_and_scope_are_signed_and_returned),
        T(test_bundle_build_refuses_bad_release_and_scope),
        T(test_bundle_signed_invalid_channel_is_refused_escaped),
        T(test_bundle_scope_admits_only_its_environment_and_selection),
        T(test_bundle_load_with_a_clock_applies_the_default_limits),
        T(test_bundle_content_checks_catch_a_resigned_change),
        T(test_bundle_decode_unverified_skips_only_signature_and_times),
        T(test_bundle_build_refuses_bad_lists),
        T(test_bundle_files_and_trust_directories),
        T(test_bundle_trust_store_writable_by_others_is_refused),
#undef T
    };
    return cmocka_run_group_tests_name("bundle", tests, NULL, NULL);
}
