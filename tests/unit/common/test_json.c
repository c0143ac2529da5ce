/* Unit tests for common/json: values that cannot be NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/json.h"

/* A string that is not UTF-8 makes json_pack return NULL; ours does not. */
static void
test_json_pack_never_returns_null(void **state)
{
    json_t *o = NULL;

    (void)state;
    assert_null(json_pack("{s:s}", "name", "caf\xe9"));
    o = fl_json_pack("{s:s}", "name", "caf\xe9");
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "error")),
                        "could not be encoded as JSON");
    assert_non_null(json_object_get(o, "reason"));
    json_decref(o);
    o = fl_json_pack("{s:s, s:i}", "name", "caf\xc3\xa9", "n", 3);
    assert_string_equal(json_string_value(json_object_get(o, "name")),
                        "caf\xc3\xa9");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 3);
    json_decref(o);
}

static void
s_assert_text(const char *in, const char *want)
{
    json_t *v = fl_json_text(in);

    assert_non_null(v);
    assert_string_equal(json_string_value(v), want);
    json_decref(v);
}

/* Bytes that are not UTF-8 are shown as \xHH; valid text is unchanged. */
static void
test_json_text_replaces_what_is_not_utf8(void **state)
{
    json_t *v = NULL;

    (void)state;
    s_assert_text("plain", "plain");
    s_assert_text("caf\xc3\xa9 \xf0\x9f\x9a\xa2", "caf\xc3\xa9 \xf0\x9f\x9a\xa2");
    s_assert_text("a\xff" "b", "a\\xff" "b");
    /* Overlong "/", a UTF-16 surrogate, a truncated sequence. */
    s_assert_text("\xc0\xaf", "\\xc0\\xaf");
    s_assert_text("\xed\xa0\x80", "\\xed\\xa0\\x80");
    s_assert_text("x\xe2\x82", "x\\xe2\\x82");
    v = fl_json_text(NULL);
    assert_true(json_is_null(v));
    json_decref(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_pack_never_returns_null),
        cmocka_unit_test(test_json_text_replaces_what_is_not_utf8),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
