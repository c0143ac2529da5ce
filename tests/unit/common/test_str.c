/*
 * Unit tests for common/str: escaping what a terminal would act on
 * (C0 and C1 controls, DEL, bidirectional controls, invalid UTF-8) and
 * quoting shell words for hints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/str.h"

static void
s_expect(const char *in, unsigned flags, const char *want)
{
    char *got = fl_str_escape_controls(in, flags);

    if (strcmp(got, want) != 0)
        fail_msg("escaping \"%s\" gave \"%s\", wanted \"%s\"", in, got, want);
    free(got);
}

static void
test_str_escape_plain_text_is_unchanged(void **state)
{
    (void)state;
    s_expect("", 0, "");
    s_expect("release 42: add users.email", 0, "release 42: add users.email");
    /* Printable non-ASCII stays as it is. */
    s_expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80", 0,
             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80");
    /* Backslashes are not doubled. */
    s_expect("E'a\\nb'", 0, "E'a\\nb'");
}

static void
test_str_escape_c0_controls_and_del(void **state)
{
    (void)state;
    /* A colour change, a title rewrite, a line hidden by CR. */
    s_expect("\x1b[31mred\x1b[0m", 0, "\\x1b[31mred\\x1b[0m");
    s_expect("\x1b]0;pwned\x07", 0, "\\x1b]0;pwned\\x07");
    s_expect("ok\rEVIL", 0, "ok\\rEVIL");
    s_expect("a\nb\tc", 0, "a\\nb\\tc");
    s_expect("\x01\x08\x7f", 0, "\\x01\\x08\\x7f");
}

static void
test_str_escape_multiline_keeps_newlines_and_tabs_only(void **state)
{
    (void)state;
    s_expect("SELECT 1;\n\tSELECT 2;\n", FL_STR_MULTILINE,
             "SELECT 1;\n\tSELECT 2;\n");
    s_expect("a\r\nb\x1b", FL_STR_MULTILINE, "a\\r\nb\\x1b");
}

static void
test_str_escape_unicode_controls(void **state)
{
    (void)state;
    /* U+009B is CSI for a terminal that honours C1 in UTF-8. */
    s_expect("x\xc2\x9b" "31m", 0, "x\\u009b31m");
    s_expect("\xc2\x80\xc2\x9f\xc2\xa0", 0, "\\u0080\\u009f\xc2\xa0");
    /* Trojan Source: RLO ... PDF, isolates, marks, separators. */
    s_expect("a\xe2\x80\xae" "cba\xe2\x80\xac", 0, "a\\u202ecba\\u202c");
    s_expect("\xe2\x81\xa6\xe2\x81\xa9\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", 0,
             "\\u2066\\u2069\\u200e\\u200f\\u061c");
    s_expect("\xe2\x80\xa8\xe2\x80\xa9", FL_STR_MULTILINE, "\\u2028\\u2029");
}

static void
test_str_escape_invalid_utf8_byte_by_byte(void **state)
{
    (void)state;
    /* A raw 0x9b is CSI for an 8-bit terminal. */
    s_expect("\x9b" "31m", 0, "\\x9b31m");
    s_expect("\xc3", 0, "\\xc3");                 /* cut short */
    s_expect("\xc0\xaf", 0, "\\xc0\\xaf");        /* overlong '/' */
    s_expect("\xe0\x80\xaf", 0, "\\xe0\\x80\\xaf"); /* overlong */
    s_expect("\xed\xa0\x80", 0, "\\xed\\xa0\\x80"); /* surrogate */
    s_expect("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80"); /* > U+10FFFF */
    s_expect("\xff\xfe", 0, "\\xff\\xfe");
    s_expect("\xe2\x82" "x", 0, "\\xe2\\x82x");
}

static void
test_str_escape_worst_case_fits(void **state)
{
    char in[257];
    char *got = NULL;

    (void)state;
    memset(in, 0x9b, 256);
    in[256] = '\0';
    got = fl_str_escape_controls(in, 0);
    assert_int_equal(strlen(got), 4 * 256);
    free(got);
}

static void
s_expect_quote(const char *in, const char *want)
{
    char *got = fl_str_shell_quote(in);

    assert_string_equal(got, want);
    free(got);
}

static void
test_str_shell_quote(void **state)
{
    (void)state;
    s_expect_quote("/etc/flotilla/keys", "/etc/flotilla/keys");
    s_expect_quote("a-b_c.d,e=f+g@h%i:j", "a-b_c.d,e=f+g@h%i:j");
    s_expect_quote("", "''");
    s_expect_quote("/my keys", "'/my keys'");
    s_expect_quote("it's", "'it'\\''s'");
    s_expect_quote("$(rm -rf /)", "'$(rm -rf /)'");
}

static void
test_str_utf8_prefix_stops_between_characters(void **state)
{
    (void)state;
    assert_int_equal(fl_str_utf8_prefix("abc", 5), 3);
    assert_int_equal(fl_str_utf8_prefix("abc", 3), 3);
    assert_int_equal(fl_str_utf8_prefix("abcd", 3), 3);
    /* "aé": 'a', then 0xC3 0xA9: cut at 2 would split the é. */
    assert_int_equal(fl_str_utf8_prefix("a\xc3\xa9z", 2), 1);
    assert_int_equal(fl_str_utf8_prefix("a\xc3\xa9z", 3), 3);
    /* A four-byte character (U+1F600) is kept whole or not at all. */
    assert_int_equal(fl_str_utf8_prefix("\xf0\x9f\x98\x80!", 3), 0);
    assert_int_equal(fl_str_utf8_prefix("\xf0\x9f\x98\x80!", 4), 4);
    assert_int_equal(fl_str_utf8_prefix("", 0), 0);
}

/* An id is exactly so many lower-case hex digits. */
static void
test_str_is_hex(void **state)
{
    (void)state;
    assert_true(fl_str_is_hex("0123456789abcdef", 16));
    assert_false(fl_str_is_hex("0123456789abcdef", 15));
    assert_false(fl_str_is_hex("0123456789abcdeF", 16));
    assert_false(fl_str_is_hex("0123456789abcdeg", 16));
    assert_false(fl_str_is_hex("", 1));
    assert_false(fl_str_is_hex(NULL, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_is_hex),
        cmocka_unit_test(test_str_escape_plain_text_is_unchanged),
        cmocka_unit_test(test_str_escape_c0_controls_and_del),
        cmocka_unit_test(test_str_escape_multiline_keeps_newlines_and_tabs_only),
        cmocka_unit_test(test_str_escape_unicode_controls),
        cmocka_unit_test(test_str_escape_invalid_utf8_byte_by_byte),
        cmocka_unit_test(test_str_escape_worst_case_fits),
        cmocka_unit_test(test_str_shell_quote),
        cmocka_unit_test(test_str_utf8_prefix_stops_between_characters),
    };
    return cmocka_run_group_tests_name("str", tests, NULL, NULL);
}
