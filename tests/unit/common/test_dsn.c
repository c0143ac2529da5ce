/* Unit tests for common/dsn: passwords never reach a log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

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
    /* An unknown option is named (a key, not a value)... */
    assert_int_equal(fl_dsn_check("bogus_opt=1 password=hunter2", &err),
                     FL_EINVAL);
    assert_string_equal(err.message, "invalid connection string: unknown "
                                     "option \"bogus_opt\"");
    fl_error_clear(&err);
    /* ...unless it follows a password: it may be the rest of one with a
     * space in it (before, "horsebattery" of "correct horsebattery=..."
     * was shown). */
    assert_int_equal(fl_dsn_check("host=db1 password=correct horsebattery="
                                  "staple", &err), FL_EINVAL);
    assert_null(strstr(err.message, "horse"));
    assert_non_null(strstr(err.hint, "password='"));
    fl_error_clear(&err);
    /* An '@' left in a URI's password is not taken for the host's, which
     * libpq then names (before: "could not translate host name
     * \"ssSECRET@db1\""). */
    assert_int_equal(fl_dsn_check("postgresql://u:p@ssSECRET@db1/app", &err),
                     FL_EINVAL);
    assert_null(strstr(err.message, "SECRET"));
    assert_non_null(strstr(err.hint, "%40"));
    fl_error_clear(&err);
    assert_int_equal(fl_dsn_check("postgresql://u:p%40ss@db1/app", &err), 0);
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

/* The value of keyword in dsn as libpq parses it (new), or NULL. */
static char *
s_parsed(const char *dsn, const char *keyword)
{
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    char *v = NULL;

    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val != NULL)
            v = strdup(o->val);
    PQconninfoFree(opts);
    return v;
}

/*
 * A database name is whatever its owner chose (an agent discovers it),
 * so it must reach libpq as the dbname and nothing else, whatever its
 * bytes: a tab, newline, carriage return, vertical tab or form feed
 * ends a value for libpq as a space does, and "tenant\thost=/evil" made
 * the agent connect (and send its password) where the tenant chose.
 * Seeded random names of every byte but NUL, and the hostile ones: the
 * dbname parses back the same and host, port and user stay.
 */
static void
test_dsn_with_dbname_any_name_is_only_the_dbname(void **state)
{
    static const char *const hostile[] = {
        "t\thost=/tmp/evil", "t\nhost=/tmp/evil", "t\rport=1",
        "t\vuser=x", "t\fdbname=other", "a=b", "'", "\\", "x' host='y",
        " ", "\t", "postgresql://evil/x", "dbname=x host=y",
    };
    const char *base = "host=/tmp/good port=5433 user=agent dbname=postgres";
    unsigned seed = getenv("SEED") ? (unsigned)strtoul(getenv("SEED"), NULL,
                                                      10) : 1;
    int bad = 0;

    (void)state;
    for (int i = 0; i < 2000 + (int)(sizeof(hostile) / sizeof(*hostile));
         i++) {
        char name[64];
        const char *n = name;
        char *dsn = NULL, *db = NULL, *host = NULL, *port = NULL, *user = NULL;

        if (i < (int)(sizeof(hostile) / sizeof(*hostile))) {
            n = hostile[i];
        } else {
            unsigned s = seed * 1000003u + (unsigned)i;
            size_t len = 1 + (s = s * 1103515245u + 12345u) % 20;
            for (size_t k = 0; k < len; k++) {
                s = s * 1103515245u + 12345u;
                /* Bytes 1..255, whitespace and quotes often. */
                name[k] = (s >> 16) % 4 == 0 ? " \t\n\r\v\f='\\"[(s >> 8) % 10]
                                            : (char)(1 + (s >> 8) % 255);
            }
            name[len] = '\0';
        }
        dsn = fl_dsn_with_dbname(base, n);
        db = dsn ? s_parsed(dsn, "dbname") : NULL;
        host = dsn ? s_parsed(dsn, "host") : NULL;
        port = dsn ? s_parsed(dsn, "port") : NULL;
        user = dsn ? s_parsed(dsn, "user") : NULL;
        if (db == NULL || strcmp(db, n) != 0 || host == NULL ||
            strcmp(host, "/tmp/good") != 0 || port == NULL ||
            strcmp(port, "5433") != 0 || user == NULL ||
            strcmp(user, "agent") != 0) {
            print_message("seed %u, name %d: dbname parsed as %s, host %s, "
                          "port %s, user %s\n", seed, i, db ? db : "(none)",
                          host ? host : "(none)", port ? port : "(none)",
                          user ? user : "(none)");
            bad++;
        }
        free(dsn);
        free(db);
        free(host);
        free(port);
        free(user);
    }
    if (bad)
        fail_msg("%d database names did not reach libpq as the dbname alone",
                 bad);
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
        cmocka_unit_test(test_dsn_with_dbname_any_name_is_only_the_dbname),
        cmocka_unit_test(test_dsn_check_rejects_garbage_without_echo),
        cmocka_unit_test(test_dsn_describe_short_name),
    };
    return cmocka_run_group_tests_name("dsn", tests, NULL, NULL);
}
