/* Unit tests for common/dsn: passwords never reach a log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/dsn.h"
#include "common/log.h"
#include "testsupport.h"

static void
test_dsn_redact_removes_password_in_both_forms(void **state)
{
    static const char *const dsns[] = {
        "host=db1 dbname=app user=u password=s3cr3t",
        "host=db1 password='s3cr3t with space' dbname=app",
        "postgresql://u:s3cr3t@db1:5433/app?sslmode=require",
        "postgres://u@db1/app?password=s3cr3t",
        "postgresql://u:s3cr%33t@db1/app",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++) {
        char *r = fl_dsn_redact(dsns[i]);
        assert_null(strstr(r, "s3cr"));
        assert_null(strstr(r, "password"));
        assert_non_null(strstr(r, "dbname=app"));
        assert_non_null(strstr(r, "host=db1"));
        free(r);
    }
}

static void
test_dsn_redacted_in_log_line(void **state)
{
    fl_test_log_t cap;
    const char *dsn = "postgresql://admin:hunter2@db1/app";
    char *r = fl_dsn_redact(dsn);
    fl_log_field f[] = {{"dsn", r}};

    (void)state;
    fl_test_log_start(&cap);
    fl_log_emit(FL_LOG_INFO, "agent", f, 1, "connecting");
    assert_int_equal(cap.count, 1);
    assert_null(strstr(cap.lines[0], "hunter2"));
    assert_non_null(strstr(cap.lines[0], "user=admin"));
    fl_test_log_stop(&cap);
    free(r);
}

static void
test_dsn_check_rejects_garbage_without_echo(void **state)
{
    fl_error_t err = FL_ERROR_INIT;
    char *r = NULL;

    (void)state;
    assert_int_equal(fl_dsn_check("host=db1 dbname=app", &err), 0);
    assert_int_equal(fl_dsn_check("postgresql://db1/app", &err), 0);
    assert_int_equal(fl_dsn_check("password=hunter2 bogus", &err), FL_EINVAL);
    assert_null(strstr(err.message, "hunter2"));
    assert_non_null(err.hint);
    fl_error_clear(&err);
    r = fl_dsn_redact("password=hunter2 bogus");
    assert_string_equal(r, "(invalid connection string)");
    free(r);
    /* An unknown option is named (a key, not a value). */
    assert_int_equal(fl_dsn_check("password=hunter2 bogus_opt=1", &err),
                     FL_EINVAL);
    assert_string_equal(err.message, "invalid connection string: unknown "
                                     "option \"bogus_opt\"");
    fl_error_clear(&err);
    assert_int_equal(fl_dsn_check("postgresql://u:hunter2@db1/app?sslmod=on",
                                  &err), FL_EINVAL);
    assert_string_equal(err.message, "invalid connection string: unknown "
                                     "option \"sslmod\"");
    fl_error_clear(&err);
    /* libpq's other messages quote the string: never shown. */
    assert_int_equal(fl_dsn_check("host=db1 password='hunter2", &err),
                     FL_EINVAL);
    assert_string_equal(err.message, "invalid connection string");
    fl_error_clear(&err);
    assert_int_equal(fl_dsn_check("host=db1 hunter2", &err), FL_EINVAL);
    assert_string_equal(err.message, "invalid connection string");
    fl_error_clear(&err);
    assert_int_equal(fl_dsn_check("postgresql://u:hunter2%zz@db1/app", &err),
                     FL_EINVAL);
    assert_null(strstr(err.message, "hunter2"));
    fl_error_clear(&err);
}

/* Discovery connects to each database of a server through this. */
static void
test_dsn_with_dbname_replaces_only_the_database(void **state)
{
    char *a = fl_dsn_with_dbname("host=/tmp port=5433 dbname=postgres", "t 1");
    char *b = fl_dsn_with_dbname("postgresql://u:pw@db1:6000/x?sslmode=disable",
                                 "tenant_7");

    (void)state;
    assert_string_equal(a, "host=/tmp port=5433 dbname='t 1'");
    assert_non_null(strstr(b, "user=u "));
    assert_non_null(strstr(b, "password=pw "));
    assert_non_null(strstr(b, "port=6000 "));
    assert_non_null(strstr(b, "sslmode=disable "));
    assert_non_null(strstr(b, "dbname=tenant_7"));
    assert_null(strstr(b, "dbname=x"));
    assert_null(fl_dsn_with_dbname("host='unterminated", "x"));
    free(a);
    free(b);
}

static void
test_dsn_describe_short_name(void **state)
{
    char *d = fl_dsn_describe("host=db1 port=6000 dbname=app password=x");

    (void)state;
    assert_string_equal(d, "app@db1:6000");
    free(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dsn_redact_removes_password_in_both_forms),
        cmocka_unit_test(test_dsn_redacted_in_log_line),
        cmocka_unit_test(test_dsn_with_dbname_replaces_only_the_database),
        cmocka_unit_test(test_dsn_check_rejects_garbage_without_echo),
        cmocka_unit_test(test_dsn_describe_short_name),
    };
    return cmocka_run_group_tests_name("dsn", tests, NULL, NULL);
}
