/*
 * Unit tests for common/hash: SHA-256 against the FIPS 180-2 vectors and
 * against libsodium's independent implementation, one-shot and
 * incremental.
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
#include "common/hash.h"

#define S_BIG ((size_t)1024 * 1024)

/* FIPS 180-2 SHA-256 of "" and of "abc". */
#define S_EMPTY_HEX                                                            \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S_ABC_HEX                                                              \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

typedef struct {
    fl_hash_t *h;
    unsigned char *big; /* S_BIG bytes of a fixed pseudo-random pattern */
} fixture;

static int
s_setup(void **state)
{
    fixture *f = fl_calloc(1, sizeof(*f));
    uint32_t x = 2463534242u;

    if (sodium_init() < 0)
        return -1;
    f->h = fl_hash_sha256_new();
    f->big = fl_malloc(S_BIG);
    for (size_t i = 0; i < S_BIG; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        f->big[i] = (unsigned char)x;
    }
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    fixture *f = *state;

    fl_hash_destroy(&f->h);
    free(f->big);
    free(f);
    return 0;
}

static void
s_assert_hex(const unsigned char d[FL_HASH_SHA256_BYTES], const char *want)
{
    char hex[2 * FL_HASH_SHA256_BYTES + 1];

    sodium_bin2hex(hex, sizeof(hex), d, FL_HASH_SHA256_BYTES);
    assert_string_equal(hex, want);
}

static void
test_hash_sha256_empty_gives_known_digest(void **state)
{
    unsigned char d[FL_HASH_SHA256_BYTES];

    (void)state;
    fl_hash_sha256(d, "", 0);
    s_assert_hex(d, S_EMPTY_HEX);
    fl_hash_sha256(d, NULL, 0);
    s_assert_hex(d, S_EMPTY_HEX);
}

static void
test_hash_sha256_abc_gives_known_digest(void **state)
{
    unsigned char d[FL_HASH_SHA256_BYTES];

    (void)state;
    fl_hash_sha256(d, "abc", 3);
    s_assert_hex(d, S_ABC_HEX);
}

static void
test_hash_sha256_two_blocks_gives_known_digest(void **state)
{
    static const char msg[] =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    unsigned char d[FL_HASH_SHA256_BYTES];

    (void)state;
    fl_hash_sha256(d, msg, strlen(msg));
    s_assert_hex(d, "248d6a61d20638b8e5c026930c3e6039"
                    "a33ce45964ff2167f6ecedd419db06c1");
}

static void
test_hash_sha256_1mib_matches_libsodium(void **state)
{
    fixture *f = *state;
    unsigned char ours[FL_HASH_SHA256_BYTES];
    unsigned char theirs[crypto_hash_sha256_BYTES];

    fl_hash_sha256(ours, f->big, S_BIG);
    crypto_hash_sha256(theirs, f->big, S_BIG);
    assert_memory_equal(ours, theirs, sizeof(theirs));
}

static void
test_hash_update_in_pieces_matches_one_shot(void **state)
{
    fixture *f = *state;
    unsigned char inc[FL_HASH_SHA256_BYTES];
    unsigned char one[FL_HASH_SHA256_BYTES];
    size_t pos = 0;
    size_t step = 1;

    /* Pieces of 1 to 1021 bytes start and end at many offsets in a block. */
    while (pos < S_BIG) {
        size_t n = step < S_BIG - pos ? step : S_BIG - pos;

        fl_hash_update(f->h, f->big + pos, n);
        pos += n;
        step = step * 3 % 1021 + 1;
    }
    fl_hash_update(f->h, NULL, 0);
    fl_hash_final(f->h, inc);
    crypto_hash_sha256(one, f->big, S_BIG);
    assert_memory_equal(inc, one, sizeof(one));
}

static void
test_hash_final_starts_again_from_empty(void **state)
{
    fixture *f = *state;
    unsigned char d[FL_HASH_SHA256_BYTES];

    fl_hash_update(f->h, "abc", 3);
    fl_hash_final(f->h, d);
    s_assert_hex(d, S_ABC_HEX);
    fl_hash_final(f->h, d);
    s_assert_hex(d, S_EMPTY_HEX);
}

static void
test_hash_destroy_twice_is_harmless(void **state)
{
    fl_hash_t *h = fl_hash_sha256_new();

    (void)state;
    fl_hash_destroy(&h);
    assert_null(h);
    fl_hash_destroy(&h);
    fl_hash_destroy(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_sha256_empty_gives_known_digest),
        cmocka_unit_test(test_hash_sha256_abc_gives_known_digest),
        cmocka_unit_test(test_hash_sha256_two_blocks_gives_known_digest),
        cmocka_unit_test(test_hash_sha256_1mib_matches_libsodium),
        cmocka_unit_test(test_hash_update_in_pieces_matches_one_shot),
        cmocka_unit_test(test_hash_final_starts_again_from_empty),
        cmocka_unit_test(test_hash_destroy_twice_is_harmless),
    };
    return cmocka_run_group_tests_name("hash", tests, s_setup, s_teardown);
}
