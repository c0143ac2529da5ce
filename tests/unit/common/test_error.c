/* Unit tests for common/error: setting, context, formatting, clearing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"

static void
test_error_set_returns_code_and_records_origin(void **state)
{
    fl_error_t err = FL_ERROR_INIT;
    int rc = FL_ERR(&err, FL_EINVAL, "invalid value \"%s\"", "x");

    (void)state;
    assert_int_equal(rc, FL_EINVAL);
    assert_true(fl_error_is_set(&err));
    assert_string_equal(err.message, "invalid value \"x\"");
    assert_non_null(strstr(err.file, "test_error.c"));
    assert_true(err.line > 0);
    fl_error_clear(&err);
    assert_false(fl_error_is_set(&err));
    assert_null(err.message);
}

static void
test_error_null_err_only_returns_code(void **state)
{
    (void)state;
    assert_int_equal(FL_ERR(NULL, FL_ENOTFOUND, "missing"), FL_ENOTFOUND);
    fl_error_set_detail(NULL, "ignored");
    fl_error_clear(NULL);
}

static void
test_error_format_includes_sqlstate_detail_hint(void **state)
{
    fl_error_t err = FL_ERROR_INIT;
    char *s = NULL;

    (void)state;
    FL_ERR(&err, FL_EDB, "could not apply migration %d", 3);
    fl_error_set_sqlstate(&err, "55P03");
    fl_error_set_detail(&err, "Lock held by PID %d.", 42);
    fl_error_set_hint(&err, "Retry later.");
    fl_error_prefix(&err, "target \"%s\": ", "t1");
    s = fl_error_format(&err);
    assert_string_equal(s, "error: target \"t1\": could not apply migration 3 "
                           "(SQLSTATE 55P03)\nDETAIL: Lock held by PID 42.\n"
                           "HINT: Retry later.");
    assert_int_equal(err.code, FL_EDB);
    free(s);
    fl_error_clear(&err);
}

static void
test_error_set_twice_replaces_without_leak(void **state)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_error_t moved = FL_ERROR_INIT;

    (void)state;
    FL_ERR(&err, FL_EIO, "first");
    fl_error_set_hint(&err, "h");
    FL_ERR(&err, FL_ETIMEOUT, "second");
    assert_null(err.hint);
    assert_string_equal(err.message, "second");
    fl_error_move(&moved, &err);
    assert_false(fl_error_is_set(&err));
    assert_int_equal(moved.code, FL_ETIMEOUT);
    assert_string_equal(fl_error_code_name(moved.code), "timeout");
    fl_error_clear(&moved);
}

/* A detail added to is kept, then the sentence after two spaces. */
static void
test_error_add_detail_appends_a_sentence(void **state)
{
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    fl_error_add_detail(&err, "unset: %d", 1);
    assert_null(err.detail);
    FL_ERR(&err, FL_EDB, "lost");
    fl_error_add_detail(&err, "First %s.", "one");
    assert_string_equal(err.detail, "First one.");
    fl_error_add_detail(&err, "Second.");
    assert_string_equal(err.detail, "First one.  Second.");
    fl_error_clear(&err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_returns_code_and_records_origin),
        cmocka_unit_test(test_error_null_err_only_returns_code),
        cmocka_unit_test(test_error_format_includes_sqlstate_detail_hint),
        cmocka_unit_test(test_error_set_twice_replaces_without_leak),
        cmocka_unit_test(test_error_add_detail_appends_a_sentence),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
