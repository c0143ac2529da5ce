/* Unit tests for common/parse: durations, sizes, counts, selectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/parse.h"

static void
test_parse_duration_accepts_units(void **state)
{
    static const struct { const char *in; int64_t ms; } ok[] = {
        {"500ms", 500}, {"2s", 2000}, {"5min", 300000}, {"1h", 3600000},
        {"1h30min", 5400000}, {"0s", 0}, {"1500us", 2}, {"2d", 172800000},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;
        assert_int_equal(fl_parse_duration(&ms, ok[i].in, NULL), 0);
        assert_int_equal(ms, ok[i].ms);
    }
}

static void
test_parse_duration_rejects_bad_input_with_value_in_message(void **state)
{
    static const char *const bad[] = {
        "", "5", "-1s", "5 s", "5sec", "s", "1.5s", "99999999999999999999s",
        "9223372036854775807h", "5s junk",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fl_error_t err = FL_ERROR_INIT;
        int64_t ms = 0;
        assert_int_equal(fl_parse_duration(&ms, bad[i], &err), FL_EINVAL);
        assert_non_null(strstr(err.message, "invalid duration"));
        assert_non_null(strstr(err.message, bad[i]));
        assert_non_null(err.hint);
        fl_error_clear(&err);
    }
}

static void
test_format_duration_picks_largest_exact_unit(void **state)
{
    char b[32];

    (void)state;
    fl_format_duration(b, sizeof(b), 300000);
    assert_string_equal(b, "5min");
    fl_format_duration(b, sizeof(b), 2000);
    assert_string_equal(b, "2s");
    fl_format_duration(b, sizeof(b), 1500);
    assert_string_equal(b, "1500ms");
    fl_format_duration(b, sizeof(b), 7200000);
    assert_string_equal(b, "2h");
    fl_format_duration(b, sizeof(b), 90LL * 86400000);
    assert_string_equal(b, "90d");
    fl_format_duration(b, sizeof(b), 90000000);
    assert_string_equal(b, "25h");
}

static void
test_parse_size_units_and_errors(void **state)
{
    int64_t v = 0;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(fl_parse_size(&v, "64KiB", NULL), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(fl_parse_size(&v, "10MB", NULL), 0);
    assert_int_equal(v, 10000000);
    assert_int_equal(fl_parse_size(&v, "4096", NULL), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(fl_parse_size(&v, "1GiB", NULL), 0);
    assert_int_equal(v, 1073741824);
    assert_int_equal(fl_parse_size(&v, "64kib", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "unknown unit \"kib\""));
    fl_error_clear(&err);
    assert_int_equal(fl_parse_size(&v, "-1", &err), FL_EINVAL);
    fl_error_clear(&err);
    assert_int_equal(fl_parse_size(&v, "99999999999TiB", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "out of range"));
    fl_error_clear(&err);
}

static void
test_parse_count_pct_and_resolve(void **state)
{
    fl_count_pct_t cp;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(fl_parse_count_pct(&cp, "3", NULL), 0);
    assert_false(cp.is_percent);
    assert_int_equal(fl_count_pct_resolve(&cp, 10), 3);
    assert_int_equal(fl_count_pct_resolve(&cp, 2), 2);
    assert_int_equal(fl_parse_count_pct(&cp, "10%", NULL), 0);
    assert_true(cp.is_percent);
    assert_int_equal(fl_count_pct_resolve(&cp, 5), 1);
    assert_int_equal(fl_count_pct_resolve(&cp, 100), 10);
    assert_int_equal(fl_count_pct_resolve(&cp, 101), 11);
    assert_int_equal(fl_parse_count_pct(&cp, "12.5%", NULL), 0);
    assert_int_equal(fl_count_pct_resolve(&cp, 8), 1);
    static const char *const bad[] = {"0%", "101%", "%", "-5", "5x", "", "1e2%", "nan%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fl_parse_count_pct(&cp, bad[i], &err), FL_EINVAL);
        assert_non_null(strstr(err.message, "invalid count or percentage"));
        fl_error_clear(&err);
    }
}

static void
test_selector_parse_and_match(void **state)
{
    fl_selector_t sel;
    const char *keys[] = {"tier", "region"};
    const char *vals[] = {"canary", "eu"};
    const char *vals2[] = {"main", "us"};

    (void)state;
    assert_int_equal(fl_selector_parse(&sel, "tier=canary,region=eu", NULL), 0);
    assert_int_equal(sel.nterms, 2);
    assert_true(fl_selector_matches(&sel, keys, vals, 2));
    assert_false(fl_selector_matches(&sel, keys, vals2, 2));
    fl_selector_release(&sel);
    assert_int_equal(fl_selector_parse(&sel, "region!=eu,tier", NULL), 0);
    assert_int_equal(sel.terms[0].op, FL_SELECTOR_NE);
    assert_int_equal(sel.terms[1].op, FL_SELECTOR_EXISTS);
    assert_false(fl_selector_matches(&sel, keys, vals, 2));
    assert_true(fl_selector_matches(&sel, keys, vals2, 2));
    assert_false(fl_selector_matches(&sel, keys, vals2, 0));
    fl_selector_release(&sel);
    assert_int_equal(fl_selector_parse(&sel, "", NULL), 0);
    assert_true(fl_selector_matches(&sel, keys, vals, 2));
}

static void
test_selector_rejects_bad_syntax_with_position(void **state)
{
    static const struct { const char *in; const char *msg; } bad[] = {
        {"tier=canary,", "expected a label key at position 13"},
        {"=x", "expected a label key at position 1"},
        {"tier=can ary", "unexpected character ' ' at position 9"},
        {"a=b;c=d", "unexpected character ';' at position 4"},
        {"tier==x=y", "unexpected character '=' at position 8"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fl_selector_t sel;
        fl_error_t err = FL_ERROR_INIT;
        assert_int_equal(fl_selector_parse(&sel, bad[i].in, &err), FL_EINVAL);
        assert_non_null(strstr(err.message, bad[i].msg));
        assert_null(sel.terms);
        fl_error_clear(&err);
    }
}

static void
test_parse_int_and_bool(void **state)
{
    int64_t v;
    int b;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(fl_parse_int(&v, "-12", -100, 100, NULL), 0);
    assert_int_equal(v, -12);
    assert_int_equal(fl_parse_int(&v, "12a", 0, 100, &err), FL_EINVAL);
    fl_error_clear(&err);
    assert_int_equal(fl_parse_int(&v, "101", 0, 100, &err), FL_EINVAL);
    assert_non_null(strstr(err.detail, "0 to 100"));
    fl_error_clear(&err);
    assert_int_equal(fl_parse_bool(&b, "Yes", NULL), 0);
    assert_true(b);
    assert_int_equal(fl_parse_bool(&b, "off", NULL), 0);
    assert_false(b);
    assert_int_equal(fl_parse_bool(&b, "maybe", &err), FL_EINVAL);
    fl_error_clear(&err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_duration_accepts_units),
        cmocka_unit_test(test_parse_duration_rejects_bad_input_with_value_in_message),
        cmocka_unit_test(test_format_duration_picks_largest_exact_unit),
        cmocka_unit_test(test_parse_size_units_and_errors),
        cmocka_unit_test(test_parse_count_pct_and_resolve),
        cmocka_unit_test(test_selector_parse_and_match),
        cmocka_unit_test(test_selector_rejects_bad_syntax_with_position),
        cmocka_unit_test(test_parse_int_and_bool),
    };
    return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
