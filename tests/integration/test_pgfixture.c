/*
 * Integration test of the PostgreSQL fixture that every other integration
 * test stands on: a scratch database is created, used through libpq, and
 * dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testsupport.h"

static void
test_fixture_creates_queries_and_drops_database(void **state)
{
    fl_test_db_t db;
    PGconn *conn = NULL;
    PGconn *admin = NULL;
    char *v = NULL;
    char sql[256];

    (void)state;
    fl_test_db_create(&db, "fixture");
    conn = fl_test_db_connect(&db);
    fl_test_exec(conn, "CREATE TABLE t (id int PRIMARY KEY, v text)");
    fl_test_exec(conn, "INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 10) g");
    v = fl_test_query_value(conn, "SELECT count(*) FROM t");
    assert_string_equal(v, "10");
    free(v);
    v = fl_test_query_value(conn, "SELECT current_database()");
    assert_string_equal(v, db.name);
    free(v);
    v = fl_test_query_value(conn, "SHOW server_version_num");
    assert_true(strtol(v, NULL, 10) >= 150000);
    free(v);
    PQfinish(conn);

    fl_test_db_drop(&db);
    assert_null(db.conninfo);
    admin = PQconnectdb("dbname=postgres");
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_database WHERE datname = '%s'", db.name);
    v = fl_test_query_value(admin, sql);
    assert_string_equal(v, "0");
    free(v);
    PQfinish(admin);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_creates_queries_and_drops_database),
    };
    return cmocka_run_group_tests_name("pgfixture", tests, NULL, NULL);
}
