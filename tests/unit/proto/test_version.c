/*
 * Unit tests of proto/version.[ch]: parsing (canonical text, strict
 * refusals) and the one total order.  The order is checked on generated
 * versions: seeds 1 to FLOTILLA_GEN_SEEDS (default 2000), each a set of
 * random versions of one to four digit runs, with leading zeros and runs
 * far beyond 64 bits, compared against a reference that pads every run to
 * FL_VERSION_MAX digits (a different algorithm: no length rule), against
 * strtoull where a version fits in 64 bits, and against the order's own
 * laws (antisymmetry, transitivity, equality iff equal text).  A failing
 * seed is printed; FLOTILLA_GEN_SEED=N runs it alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/version.h"
#include "testsupport.h"

static void
s_parse_ok(const char *text, const char *canonical)
{
    fl_version_t v = FL_VERSION_INIT;
    fl_error_t err = FL_ERROR_INIT;

    if (fl_version_parse_str(&v, text, &err) != 0)
        fail_msg("\"%s\" refused: %s", text, err.message);
    assert_string_equal(v.text, canonical);
    assert_true(fl_version_is_canonical(canonical));
}

static void
s_parse_bad(const char *text, const char *why)
{
    fl_version_t v = FL_VERSION_INIT;
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_version_parse_str(&v, text, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "invalid migration version"));
    if (err.detail == NULL || strstr(err.detail, why) == NULL)
        fail_msg("\"%s\": detail \"%s\" lacks \"%s\"", text,
                 err.detail ? err.detail : "", why);
    assert_non_null(err.hint);
    fl_error_clear(&err);
}

static void
test_version_parse_keeps_each_tools_text_without_leading_zeros(void **state)
{
    (void)state;
    s_parse_ok("42", "42");
    s_parse_ok("0003", "3");
    s_parse_ok("20190226002946", "20190226002946");   /* diesel */
    s_parse_ok("00000000000000", "0");                /* diesel's setup */
    s_parse_ok("20210410175418123456", "20210410175418123456"); /* pop */
    s_parse_ok("1.2", "1.2");                         /* Flyway */
    s_parse_ok("1.02.000", "1.2.0");
    s_parse_ok("18446744073709551616", "18446744073709551616"); /* 2^64 */
}

static void
test_version_parse_refuses_what_is_not_a_version(void **state)
{
    char longest[FL_VERSION_MAX + 2];

    (void)state;
    s_parse_bad("", "empty");
    s_parse_bad("1..2", "dot");
    s_parse_bad(".1", "dot");
    s_parse_bad("1.", "dot");
    s_parse_bad("1-2", "other than digits");
    s_parse_bad("v1", "other than digits");
    s_parse_bad("1 ", "other than digits");
    memset(longest, '9', sizeof(longest) - 1);
    longest[FL_VERSION_MAX + 1] = '\0';
    s_parse_bad(longest, "longer than 64");
    longest[FL_VERSION_MAX] = '\0';
    s_parse_ok(longest, longest);
    assert_false(fl_version_is_canonical("01"));
    assert_false(fl_version_is_canonical("1.01"));
}

/* As tools name their versions (for lint.enforce_from), and no more. */
static void
test_version_parse_tool_reads_names_as_ledgers_write_them(void **state)
{
    static const char *const bad[] = {"", "-1", "1-", "1--2", "1__2",
                                      "1_", "a-1", "2019-02-26-00294x"};
    fl_version_t v = FL_VERSION_INIT;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(fl_version_parse_tool(&v, "2019-02-26-002946", NULL), 0);
    assert_string_equal(v.text, "20190226002946");
    assert_int_equal(fl_version_parse_tool(&v, "1_2", NULL), 0);
    assert_string_equal(v.text, "1.2");
    assert_int_equal(fl_version_parse_tool(&v, "0003", NULL), 0);
    assert_string_equal(v.text, "3");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fl_version_parse_tool(&v, bad[i], &err), FL_EINVAL);
        /* The text as given, not as it was read. */
        assert_non_null(strstr(err.message, bad[i]));
        fl_error_clear(&err);
    }
}

static void
test_version_cmp_orders_runs_by_value_then_by_count(void **state)
{
    static const char *const sorted[] = {
        "",  "0", "1", "1.0", "1.0.1", "1.1", "1.9", "1.10", "2", "9", "10",
        "99", "100", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "18446744073709551616",
        "20210410175418123456", "100000000000000000000"};
    size_t n = sizeof(sorted) / sizeof(sorted[0]);

    (void)state;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = fl_version_cmp_text(sorted[i], sorted[j]);
            int want = (i > j) - (i < j);
            if (c != want)
                fail_msg("cmp(\"%s\", \"%s\") = %d, want %d", sorted[i],
                         sorted[j], c, want);
        }
    assert_int_equal(fl_version_cmp_text(NULL, ""), 0);
}

static void
test_version_u64_round_trips_and_refuses_what_does_not_fit(void **state)
{
    fl_version_t v = FL_VERSION_INIT;
    uint64_t x = 0;

    (void)state;
    fl_version_set_u64(&v, 0);
    assert_string_equal(v.text, "0");
    fl_version_set_u64(&v, UINT64_MAX);
    assert_string_equal(v.text, "18446744073709551615");
    assert_true(fl_version_to_u64(&v, &x));
    assert_true(x == UINT64_MAX);
    assert_int_equal(fl_version_parse_str(&v, "18446744073709551616", NULL),
                     0);
    assert_false(fl_version_to_u64(&v, &x));
    assert_int_equal(fl_version_parse_str(&v, "1.2", NULL), 0);
    assert_false(fl_version_to_u64(&v, &x));
    v.text[0] = '\0';
    assert_false(fl_version_to_u64(&v, &x));
}

/* ---- generated versions ---- */

/* A number below n from the sequence s. */
static size_t
s_below(uint64_t *s, size_t n)
{
    return (size_t)(fl_test_rng_next(s) % n);
}

/* A random version text, maybe with leading zeros, at most max bytes. */
static void
s_random(char *out, size_t max, uint64_t *s)
{
    /* Mostly one run (most tools), often long (pop, diesel, beyond 64
     * bits), and small first digits so that equal runs happen. */
    size_t runs = s_below(s, 3) == 0 ? 1 + s_below(s, 4) : 1;
    size_t k = 0;

    for (size_t r = 0; r < runs && k + 2 < max; r++) {
        size_t len = 1 + s_below(s, s_below(s, 4) == 0 ? 30 : 3);
        size_t zeros = s_below(s, 5) == 0 ? s_below(s, 3) : 0;

        if (r > 0)
            out[k++] = '.';
        for (size_t i = 0; i < zeros && k + 1 < max; i++)
            out[k++] = '0';
        for (size_t i = 0; i < len && k + 1 < max; i++)
            out[k++] = (char)('0' + s_below(s, i == 0 ? 3 : 10));
        if (out[k - 1] == '.') /* no room for a digit after the dot */
            k--;
    }
    out[k] = '\0';
}

/*
 * The reference: every run left-padded with zeros to FL_VERSION_MAX
 * digits, then the runs compared as strings one by one, fewer runs first.
 */
static int
s_reference(const char *a, const char *b)
{
    for (;;) {
        char pa[FL_VERSION_MAX + 1], pb[FL_VERSION_MAX + 1];
        size_t al = strcspn(a, "."), bl = strcspn(b, ".");
        int c;

        if (*a == '\0' || *b == '\0')
            return (*a != '\0') - (*b != '\0');
        memset(pa, '0', FL_VERSION_MAX);
        memset(pb, '0', FL_VERSION_MAX);
        memcpy(pa + FL_VERSION_MAX - al, a, al);
        memcpy(pb + FL_VERSION_MAX - bl, b, bl);
        c = memcmp(pa, pb, FL_VERSION_MAX);
        if (c != 0)
            return c < 0 ? -1 : 1;
        a += al + (a[al] == '.');
        b += bl + (b[bl] == '.');
    }
}

#define S_SET 12

/*
 * The same version as a tool names it: dashes between digits (diesel's
 * 2019-02-26-002946), underscores for dots (Flyway's 1_2); read by
 * fl_version_parse_tool() as the version itself, and the plain text too.
 */
static void
s_check_tool_text(uint64_t seed, const char *raw, const fl_version_t *want,
                  uint64_t *s)
{
    char tool[3 * FL_VERSION_MAX + 1];
    size_t k = 0;
    fl_version_t got = FL_VERSION_INIT;

    for (size_t i = 0; raw[i]; i++) {
        tool[k++] = raw[i] == '.' ? '_' : raw[i];
        if (raw[i] != '.' && raw[i + 1] && raw[i + 1] != '.' &&
            s_below(s, 4) == 0)
            tool[k++] = '-';
    }
    tool[k] = '\0';
    if (fl_version_parse_tool(&got, tool, NULL) != 0 ||
        strcmp(got.text, want->text) != 0 ||
        fl_version_parse_tool(&got, raw, NULL) != 0 ||
        strcmp(got.text, want->text) != 0)
        fail_msg("seed %llu: \"%s\" (as a tool names it: \"%s\") is not "
                 "read as \"%s\"", (unsigned long long)seed, raw, tool,
                 want->text);
}

static void
s_check_seed(uint64_t seed)
{
    uint64_t s = seed;
    char raw[S_SET][FL_VERSION_MAX + 1];
    fl_version_t v[S_SET];

    for (int i = 0; i < S_SET; i++) {
        fl_error_t err = FL_ERROR_INIT;

        s_random(raw[i], sizeof(raw[i]), &s);
        if (fl_version_parse_str(&v[i], raw[i], &err) != 0)
            fail_msg("seed %llu: \"%s\" refused: %s",
                     (unsigned long long)seed, raw[i], err.message);
        /* Parsing drops leading zeros only: the same version. */
        if (s_reference(raw[i], v[i].text) != 0 ||
            !fl_version_is_canonical(v[i].text))
            fail_msg("seed %llu: \"%s\" parsed as \"%s\"",
                     (unsigned long long)seed, raw[i], v[i].text);
        s_check_tool_text(seed, raw[i], &v[i], &s);
    }
    for (int i = 0; i < S_SET; i++)
        for (int j = 0; j < S_SET; j++) {
            int c = fl_version_cmp(&v[i], &v[j]);
            int want = s_reference(raw[i], raw[j]);
            uint64_t x = 0, y = 0;

            if (c != want || c != -fl_version_cmp(&v[j], &v[i]) ||
                (c == 0) != (strcmp(v[i].text, v[j].text) == 0))
                fail_msg("seed %llu: cmp(\"%s\", \"%s\") = %d, reference %d",
                         (unsigned long long)seed, v[i].text, v[j].text, c,
                         want);
            if (fl_version_to_u64(&v[i], &x) &&
                fl_version_to_u64(&v[j], &y) &&
                c != (x > y) - (x < y))
                fail_msg("seed %llu: cmp(\"%s\", \"%s\") = %d against the "
                         "numbers", (unsigned long long)seed, v[i].text,
                         v[j].text, c);
            for (int k = 0; k < S_SET; k++)
                if (c <= 0 && fl_version_cmp(&v[j], &v[k]) <= 0 &&
                    fl_version_cmp(&v[i], &v[k]) > 0)
                    fail_msg("seed %llu: not transitive: %s <= %s <= %s",
                             (unsigned long long)seed, v[i].text, v[j].text,
                             v[k].text);
        }
}

static void
test_version_cmp_generated_versions_match_the_reference(void **state)
{
    long one = fl_test_env_long("FLOTILLA_GEN_SEED", 0);
    long n = fl_test_env_long("FLOTILLA_GEN_SEEDS", 2000);

    (void)state;
    for (long seed = one ? one : 1; seed <= (one ? one : n); seed++)
        s_check_seed((uint64_t)seed);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_version_parse_keeps_each_tools_text_without_leading_zeros),
        cmocka_unit_test(test_version_parse_refuses_what_is_not_a_version),
        cmocka_unit_test(
            test_version_parse_tool_reads_names_as_ledgers_write_them),
        cmocka_unit_test(test_version_cmp_orders_runs_by_value_then_by_count),
        cmocka_unit_test(
            test_version_u64_round_trips_and_refuses_what_does_not_fit),
        cmocka_unit_test(
            test_version_cmp_generated_versions_match_the_reference),
    };

    return cmocka_run_group_tests_name("version", tests, NULL, NULL);
}
