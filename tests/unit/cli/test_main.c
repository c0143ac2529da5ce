/* Tests of the `flotilla` dispatcher through the built executable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "testsupport.h"

static void
test_cli_help_lists_commands(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "--help", NULL};

    (void)state;
    fl_test_run(&r, "flotilla", argv, NULL, 30);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: flotilla COMMAND"));
    assert_non_null(strstr(r.out, "version"));
    fl_test_proc_release(&r);
}

static void
test_cli_unknown_command_is_usage_error(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "frobnicate", NULL};
    const char *none[] = {"flotilla", NULL};

    (void)state;
    fl_test_run(&r, "flotilla", argv, NULL, 30);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown command \"frobnicate\""));
    fl_test_proc_release(&r);
    fl_test_run(&r, "flotilla", none, NULL, 30);
    assert_int_equal(r.status, 2);
    fl_test_proc_release(&r);
}

static void
test_cli_version_json(void **state)
{
    fl_test_proc_t r;
    const char *argv[] = {"flotilla", "version", "--json", NULL};
    json_error_t jerr;
    json_t *o = NULL;

    (void)state;
    fl_test_run(&r, "flotilla", argv, NULL, 30);
    assert_int_equal(r.status, 0);
    o = json_loads(r.out, 0, &jerr);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "flotilla")),
                        FLOTILLA_VERSION);
    json_decref(o);
    fl_test_proc_release(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_help_lists_commands),
        cmocka_unit_test(test_cli_unknown_command_is_usage_error),
        cmocka_unit_test(test_cli_version_json),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
