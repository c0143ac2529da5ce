/* Unit tests for common/buf: growth, limit, detach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

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

/*
 * fl_buf_addf is for text flotilla builds itself: past the limit it stops
 * the process instead of going on with a fragment missing (a WHERE clause
 * lost from a DELETE).  Run in a child, which must die of SIGABRT.
 */
static void
test_buf_addf_past_the_limit_aborts(void **state)
{
    fl_buf_t b = FL_BUF_INIT(8);
    pid_t pid;
    int status = 0;

    (void)state;
    fl_buf_addf(&b, "%s", "1234567");
    assert_string_equal(fl_buf_str(&b), "1234567");
    fl_buf_adds(&b, "8");
    assert_string_equal(fl_buf_str(&b), "12345678");
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        fl_buf_addf(&b, "%s", " WHERE id = 1");
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    fl_buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_grows_and_terminates),
        cmocka_unit_test(test_buf_limit_refuses_and_keeps_content),
        cmocka_unit_test(test_buf_addf_past_the_limit_aborts),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
