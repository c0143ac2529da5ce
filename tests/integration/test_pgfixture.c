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
#include <sys/stat.h>

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

/*
 * The throwaway server trusts every local connection, so only the owner
 * may reach its socket: 0700 on the socket and on its directory.
 */
static void
test_throwaway_server_is_reachable_by_its_owner_only(void **state)
{
    fl_test_db_t db;
    PGconn *conn = NULL;
    char *v = NULL;
    const char *host = getenv("PGHOST");
    struct stat st;

    (void)state;
    fl_test_db_create(&db, "sock");
    conn = fl_test_db_connect(&db);
    v = fl_test_query_value(conn, "SHOW unix_socket_permissions");
    assert_string_equal(v, "0700");
    free(v);
    v = fl_test_query_value(conn, "SHOW listen_addresses");
    assert_string_equal(v, "");
    free(v);
    PQfinish(conn);
    fl_test_db_drop(&db);
    assert_non_null(host);
    assert_int_equal(stat(host, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_creates_queries_and_drops_database),
        cmocka_unit_test(test_throwaway_server_is_reachable_by_its_owner_only),
    };
    return cmocka_run_group_tests_name("pgfixture", tests, NULL, NULL);
}
