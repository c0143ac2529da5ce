/*
 * Unit tests for proto/codec: the bounded msgpack reader on hostile input
 * (counts larger than the input, depth, limits, integer forms, trailing
 * bytes) and the writer's limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/codec.h"

static void
s_reader(fl_codec_reader_t *r, const char *data, size_t len, fl_error_t *err)
{
    fl_codec_reader_init(r, data, len, 16, "test input", err);
}

static void
test_codec_counts_larger_than_input_are_refused(void **state)
{
    /* array32 and map32 claiming 2^32-1 entries, map16 claiming 3 in 4 bytes */
    const char arr[] = "\xdd\xff\xff\xff\xff\x01";
    const char map[] = "\xdf\xff\xff\xff\xff\x01\x01";
    const char map16[] = "\xde\x00\x03\x01\x01\x01\x01\x01";
    fl_codec_reader_t r;
    fl_error_t err = FL_ERROR_INIT;
    size_t n = 0;

    (void)state;
    s_reader(&r, arr, sizeof(arr) - 1, &err);
    assert_int_equal(fl_codec_read_array(&r, &n), FL_EPROTO);
    assert_non_null(strstr(err.message, "malformed test input: array of "
                                        "4294967295 entries"));
    fl_error_clear(&err);
    s_reader(&r, map, sizeof(map) - 1, &err);
    assert_int_equal(fl_codec_skip(&r), FL_EPROTO);
    fl_error_clear(&err);
    s_reader(&r, map16, sizeof(map16) - 1, &err);
    assert_int_equal(fl_codec_read_map(&r, &n), FL_EPROTO);
    fl_error_clear(&err);
    s_reader(&r, map16, sizeof(map16), &err); /* 6 bytes left: fits */
    assert_int_equal(fl_codec_read_map(&r, &n), 0);
    assert_int_equal(n, 3);
}

static void
test_codec_skip_limits_depth(void **state)
{
    char deep[64];
    fl_codec_reader_t r;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] */
    deep[FL_CODEC_MAX_DEPTH] = 0x01;
    s_reader(&r, deep, FL_CODEC_MAX_DEPTH + 1, &err);
    assert_int_equal(fl_codec_skip(&r), 0);
    assert_int_equal(fl_codec_reader_finish(&r), 0);
    deep[FL_CODEC_MAX_DEPTH] = (char)0x91;
    deep[FL_CODEC_MAX_DEPTH + 1] = 0x01;
    s_reader(&r, deep, FL_CODEC_MAX_DEPTH + 2, &err);
    assert_int_equal(fl_codec_skip(&r), FL_EPROTO);
    assert_non_null(strstr(err.message, "nesting deeper than"));
    fl_error_clear(&err);
}

static void
test_codec_skip_handles_every_scalar_form(void **state)
{
    /* float32, float64, fixext1, ext8 (2 bytes), bin8, str8, nil, true */
    const char all[] = "\x98\xca\x00\x00\x00\x00\xcb\x00\x00\x00\x00\x00\x00"
                       "\x00\x00\xd4\x01\x02\xc7\x02\x05\x01\x02\xc4\x01\x07"
                       "\xd9\x01z\xc0\xc3";
    fl_codec_reader_t r;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    s_reader(&r, all, sizeof(all) - 1, &err);
    assert_int_equal(fl_codec_skip(&r), 0);
    assert_int_equal(fl_codec_reader_finish(&r), 0);
    s_reader(&r, "\xc1", 1, &err);
    assert_int_equal(fl_codec_skip(&r), FL_EPROTO);
    assert_non_null(strstr(err.message, "reserved"));
    fl_error_clear(&err);
    /* ext8 longer than the limit of 16 */
    s_reader(&r, "\xc7\x20\x01", 3, &err);
    assert_int_equal(fl_codec_skip(&r), FL_EPROTO);
    fl_error_clear(&err);
}

static void
test_codec_integers_in_every_form(void **state)
{
    struct {
        const char *bytes;
        size_t len;
        int64_t want;
    } cases[] = {
        {"\x05", 1, 5},
        {"\xff", 1, -1},
        {"\xe0", 1, -32},
        {"\xcc\xff", 2, 255},
        {"\xcd\x01\x00", 3, 256},
        {"\xd0\x80", 2, -128},
        {"\xd1\xff\x7f", 3, -129},
        {"\xd2\x80\x00\x00\x00", 5, INT32_MIN},
        {"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, INT64_MIN},
        {"\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, INT64_MAX},
    };
    fl_codec_reader_t r;
    fl_error_t err = FL_ERROR_INIT;
    int64_t v = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_reader(&r, cases[i].bytes, cases[i].len, &err);
        assert_int_equal(fl_codec_read_int(&r, &v), 0);
        assert_true(v == cases[i].want);
        assert_int_equal(fl_codec_reader_finish(&r), 0);
    }
    s_reader(&r, "\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 9, &err);
    assert_int_equal(fl_codec_read_int(&r, &v), FL_EPROTO);
    fl_error_clear(&err);
    s_reader(&r, "\xcd\x01", 2, &err);
    assert_int_equal(fl_codec_read_int(&r, &v), FL_EPROTO);
    assert_non_null(strstr(err.message, "input ends early"));
    fl_error_clear(&err);
}

static void
test_codec_strings_are_limited_and_checked(void **state)
{
    fl_codec_reader_t r;
    fl_error_t err = FL_ERROR_INIT;
    const char *p = NULL;
    char *s = NULL;
    size_t n = 0;
    int b = 0;

    (void)state;
    /* str32 of 2^32-1 bytes: over the limit, refused before any read. */
    s_reader(&r, "\xdb\xff\xff\xff\xff", 5, &err);
    assert_int_equal(fl_codec_read_str(&r, &p, &n), FL_EPROTO);
    assert_non_null(strstr(err.message, "exceeds the limit of 16"));
    fl_error_clear(&err);
    s_reader(&r, "\xa5" "abc", 4, &err);
    assert_int_equal(fl_codec_read_str(&r, &p, &n), FL_EPROTO);
    fl_error_clear(&err);
    s_reader(&r, "\xa3" "abc", 4, &err);
    assert_int_equal(fl_codec_read_strdup(&r, &s), 0);
    assert_string_equal(s, "abc");
    free(s);
    s_reader(&r, "\xc4\x01x", 3, &err);
    assert_int_equal(fl_codec_read_str(&r, &p, &n), FL_EPROTO);
    assert_non_null(strstr(err.message, "expected string, found binary"));
    fl_error_clear(&err);
    s_reader(&r, "\x01", 1, &err);
    assert_int_equal(fl_codec_read_bool(&r, &b), FL_EPROTO);
    fl_error_clear(&err);
    assert_int_equal(fl_codec_take_nil(&r), 0);
}

/*
 * A key repeated in one map is refused whether the reader knows it or
 * not, and so is a map of more unknown keys than the bound; a map of
 * distinct unknown keys is read (peers may add fields).  Before, an
 * unknown key could be repeated (found by an audit).
 */
typedef struct {
    int64_t a;
} s_one;

static const fl_codec_field_t s_one_fields[] = {
    {"a", FL_CODEC_I64, 0, offsetof(s_one, a), 0, 0, NULL},
};
static const fl_codec_schema_t s_one_schema = {"test map", s_one_fields, 1,
                                               sizeof(s_one)};

static void
test_codec_repeated_keys_are_refused_known_or_not(void **state)
{
    /* {"a":1,"x":1,"y":2} and {"x":1,"a":1,"x":2} */
    const char ok[] = "\x83\xa1" "a\x01\xa1x\x01\xa1y\x02";
    const char dup[] = "\x83\xa1x\x01\xa1" "a\x01\xa1x\x02";
    const char *const keys[] = {"a"};
    fl_codec_reader_t r;
    fl_codec_keys_t seen = FL_CODEC_KEYS_INIT;
    fl_error_t err = FL_ERROR_INIT;
    s_one one = {0};
    size_t n = 0;
    int k = 0;

    (void)state;
    fl_codec_reader_init(&r, ok, sizeof(ok) - 1, 16, "test input", &err);
    assert_int_equal(fl_codec_decode(&r, &s_one_schema, &one), 0);
    assert_int_equal(one.a, 1);
    fl_codec_reader_init(&r, dup, sizeof(dup) - 1, 16, "test input", &err);
    assert_int_equal(fl_codec_decode(&r, &s_one_schema, &one), FL_EPROTO);
    assert_non_null(strstr(err.message, "duplicate key \"x\" in test map"));
    fl_error_clear(&err);
    /* The same through fl_codec_read_key (the envelopes). */
    fl_codec_reader_init(&r, dup, sizeof(dup) - 1, 16, "test input", &err);
    assert_int_equal(fl_codec_read_map(&r, &n), 0);
    assert_int_equal(fl_codec_read_key(&r, keys, 1, &seen, &k), 0);
    assert_int_equal(k, -1);
    assert_int_equal(fl_codec_skip(&r), 0);
    assert_int_equal(fl_codec_read_key(&r, keys, 1, &seen, &k), 0);
    assert_int_equal(k, 0);
    assert_int_equal(fl_codec_skip(&r), 0);
    assert_int_equal(fl_codec_read_key(&r, keys, 1, &seen, &k), FL_EPROTO);
    assert_non_null(strstr(err.message, "duplicate key \"x\""));
    fl_error_clear(&err);
    /* 33 distinct unknown keys: more than the bound. */
    {
        size_t at = 0;
        char buf[3 + 33 * 4];

        buf[at++] = (char)0xde;
        buf[at++] = 0;
        buf[at++] = 33;
        for (int i = 0; i < 33; i++) {
            buf[at++] = (char)0xa2;
            buf[at++] = (char)('a' + i / 26);
            buf[at++] = (char)('a' + i % 26);
            buf[at++] = 0x01;
        }
        fl_codec_reader_init(&r, buf, at, 16, "test input", &err);
        assert_int_equal(fl_codec_decode(&r, &s_one_schema, &one), FL_EPROTO);
        assert_non_null(strstr(err.message, "more than 32 keys"));
        fl_error_clear(&err);
    }
}

static void
test_codec_writer_respects_buffer_limit(void **state)
{
    fl_buf_t buf = FL_BUF_INIT(8);
    fl_codec_writer_t w;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    fl_codec_writer_init(&w, &buf);
    fl_codec_write_str(&w, "far too long for eight bytes");
    assert_int_equal(fl_codec_writer_finish(&w, "thing", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "thing is too large"));
    fl_error_clear(&err);
    fl_buf_release(&buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_counts_larger_than_input_are_refused),
        cmocka_unit_test(test_codec_skip_limits_depth),
        cmocka_unit_test(test_codec_skip_handles_every_scalar_form),
        cmocka_unit_test(test_codec_integers_in_every_form),
        cmocka_unit_test(test_codec_strings_are_limited_and_checked),
        cmocka_unit_test(test_codec_writer_respects_buffer_limit),
        cmocka_unit_test(test_codec_repeated_keys_are_refused_known_or_not),
    };
    return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
