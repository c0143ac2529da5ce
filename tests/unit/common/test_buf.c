/* Unit tests for common/buf: growth, limit, detach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"

static void
test_buf_append_grows_and_terminates(void **state)
{
    fl_buf_t b = FL_BUF_INIT(0);
    char *s = NULL;

    (void)state;
    assert_string_equal(fl_buf_str(&b), "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fl_buf_puts(&b, "ab"), 0);
    assert_int_equal(b.len, 2000);
    assert_int_equal(b.data[2000], '\0');
    assert_int_equal(fl_buf_printf(&b, "%d", 7), 0);
    s = fl_buf_detach(&b);
    assert_int_equal(strlen(s), 2001);
    assert_int_equal(s[2000], '7');
    assert_null(b.data);
    free(s);
}

static void
test_buf_limit_refuses_and_keeps_content(void **state)
{
    fl_buf_t b = FL_BUF_INIT(8);

    (void)state;
    assert_int_equal(fl_buf_puts(&b, "12345678"), 0);
    assert_int_equal(fl_buf_puts(&b, "9"), FL_EINVAL);
    assert_int_equal(fl_buf_printf(&b, "x"), FL_EINVAL);
    assert_string_equal(fl_buf_str(&b), "12345678");
    fl_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(fl_buf_str(&b), "");
    fl_buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_grows_and_terminates),
        cmocka_unit_test(test_buf_limit_refuses_and_keeps_content),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
