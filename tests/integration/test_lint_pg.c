/*
 * The lint rules changed in issue 13, each checked against what a real
 * PostgreSQL 15 does: the lock a statement takes (pg_locks), whether a
 * statement reads the table (pg_stat_user_tables.seq_tup_read) or
 * rewrites it (pg_relation_filenode), what a setting ends up as (SHOW),
 * and what the server refuses.  Each test states the server's behaviour
 * first, then lint's verdict on the same SQL.  A fix lint suggests is run
 * on the server too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "common/alloc.h"
#include "lint/facts.h"
#include "lint/lint.h"
#include "testsupport.h"

typedef struct {
    fl_test_db_t db;
    PGconn *conn;
} fixture_t;

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    fl_test_db_create(&f->db, "lintpg");
    f->conn = fl_test_db_connect(&f->db);
    fl_test_exec(f->conn,
                 "CREATE TABLE p (id int PRIMARY KEY);"
                 "INSERT INTO p SELECT g FROM generate_series(1, 10) g;"
                 "CREATE TABLE c (id int, at timestamp);"
                 "INSERT INTO c SELECT g, now() FROM generate_series(1, 20000) g;"
                 "CREATE INDEX c_id_idx ON c (id);"
                 "CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS "
                 "  $$BEGIN RETURN NEW; END$$;"
                 "CREATE TRIGGER c_trg BEFORE INSERT ON c FOR EACH ROW "
                 "  EXECUTE FUNCTION trg();"
                 "CREATE POLICY c_pol ON c USING (true);"
                 "CREATE RULE c_rule AS ON UPDATE TO c DO ALSO NOTHING;");
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;
    PQfinish(f->conn);
    fl_test_db_drop(&f->db);
    free(f);
    return 0;
}

/* The findings of rule when linting sql with opts (NULL: defaults). */
static size_t
lint_count(const char *sql, const fl_lint_options_t *opts, const char *rule,
           fl_finding_list_t *keep)
{
    fl_finding_list_t out = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    size_t k, n = 0;

    assert_int_equal(fl_lint_sql(&out, sql, "t.sql", 0, opts, &err), 0);
    for (k = 0; k < out.count; k++)
        n += strcmp(out.items[k].rule, rule) == 0;
    if (keep)
        *keep = out;
    else
        fl_finding_list_release(&out);
    return n;
}

/* The message of the first finding of rule in out. */
static const char *
message_of(const fl_finding_list_t *out, const char *rule)
{
    size_t k;
    for (k = 0; k < out->count; k++)
        if (strcmp(out->items[k].rule, rule) == 0)
            return out->items[k].message;
    fail_msg("no %s finding", rule);
    return "";
}

/* The lock modes this session holds on table, comma-separated. */
static char *
locks_on(PGconn *conn, const char *table)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(l.mode, ',' ORDER BY l.mode) FROM pg_locks l "
             "JOIN pg_class r ON r.oid = l.relation "
             "WHERE l.pid = pg_backend_pid() AND r.relname = '%s'", table);
    return fl_test_query_value(conn, sql);
}

/* Rows of table read by sequential scans so far (stats flushed first). */
static long
seq_read(PGconn *conn, const char *table)
{
    char sql[256], *v;
    long n;

    free(fl_test_query_value(conn, "SELECT pg_stat_force_next_flush()"));
    snprintf(sql, sizeof(sql),
             "SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = '%s'",
             table);
    v = fl_test_query_value(conn, sql);
    n = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return n;
}

/* Runs sql and returns its SQLSTATE ("" when it succeeded; new string). */
static char *
sqlstate_of(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char *out = fl_strdup(st ? st : "");
    PQclear(r);
    return out;
}

/*
 * DROP INDEX, DROP TRIGGER ... ON, CREATE/ALTER/DROP POLICY ... ON,
 * CREATE RULE ... TO, DROP RULE ... ON and ALTER TRIGGER ... RENAME take
 * ACCESS EXCLUSIVE on the table, so each needs a lock timeout.
 */
static void
test_lint_pg_table_locking_ddl_needs_lock_timeout(void **state)
{
    fixture_t *f = *state;
    static const char *const stmts[] = {
        "DROP INDEX c_id_idx",
        "DROP TRIGGER c_trg ON c",
        "CREATE POLICY c_pol2 ON c USING (true)",
        "ALTER POLICY c_pol ON c USING (false)",
        "DROP POLICY c_pol ON c",
        "CREATE RULE c_rule2 AS ON INSERT TO c DO ALSO NOTHING",
        "DROP RULE c_rule ON c",
        "ALTER TRIGGER c_trg ON c RENAME TO c_trg2",
    };
    size_t i;

    for (i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        char *locks;
        fl_test_exec(f->conn, "BEGIN");
        fl_test_exec(f->conn, stmts[i]);
        locks = locks_on(f->conn, "c");
        fl_test_exec(f->conn, "ROLLBACK");
        if (!locks || !strstr(locks, "AccessExclusiveLock"))
            fail_msg("PostgreSQL: %s took %s on c", stmts[i], locks ? locks : "nothing");
        free(locks);
        if (lint_count(stmts[i], NULL, "require-lock-timeout", NULL) != 1)
            fail_msg("lint: no require-lock-timeout for %s", stmts[i]);
    }
}

/* lock_timeout set to 0, '0s' or DEFAULT is no timeout at all. */
static void
test_lint_pg_zero_lock_timeout_is_none(void **state)
{
    fixture_t *f = *state;
    static const char *const sets[] = {
        "SET lock_timeout = 0", "SET lock_timeout = '0s'",
        "SET lock_timeout TO DEFAULT",
    };
    size_t i;

    for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        char *v, sql[128];
        fl_test_exec(f->conn, "SET lock_timeout = '2s'");
        fl_test_exec(f->conn, sets[i]);
        v = fl_test_query_value(f->conn, "SHOW lock_timeout");
        assert_string_equal(v, "0");
        free(v);
        snprintf(sql, sizeof(sql), "%s;\nDROP INDEX c_id_idx;", sets[i]);
        assert_int_equal(lint_count(sql, NULL, "require-lock-timeout", NULL), 1);
    }
    fl_test_exec(f->conn, "RESET lock_timeout");
}

/*
 * ADD COLUMN ... REFERENCES reads no row when the new column has no
 * DEFAULT clause, and every row with one (even DEFAULT NULL): lint flags
 * exactly the second, once, and its fix runs on the server.
 */
static void
test_lint_pg_foreign_key_scans_only_with_a_default(void **state)
{
    fixture_t *f = *state;
    fl_finding_list_t out = {NULL, 0};
    long before, after;
    char *fix = NULL, *st;
    size_t k;

    before = seq_read(f->conn, "c");
    fl_test_exec(f->conn, "ALTER TABLE c ADD COLUMN p0 int REFERENCES p (id)");
    after = seq_read(f->conn, "c");
    assert_int_equal(after - before, 0);
    assert_int_equal(lint_count("ALTER TABLE c ADD COLUMN p0 int REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", NULL), 0);
    assert_int_equal(lint_count("ALTER TABLE c ADD COLUMN p0 int REFERENCES p (id);",
                                NULL, "constraint-missing-not-valid", NULL), 0);

    before = after;
    fl_test_exec(f->conn, "ALTER TABLE c ADD COLUMN p1 int DEFAULT 1 REFERENCES p (id)");
    after = seq_read(f->conn, "c");
    assert_int_equal(after - before, 20000);
    before = after;
    fl_test_exec(f->conn, "ALTER TABLE c ADD COLUMN p2 int DEFAULT NULL REFERENCES p (id)");
    after = seq_read(f->conn, "c");
    assert_int_equal(after - before, 20000);

    assert_int_equal(lint_count("ALTER TABLE c ADD COLUMN p3 int DEFAULT 1 REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", &out), 1);
    for (k = 0; k < out.count; k++) {
        assert_string_not_equal(out.items[k].rule, "constraint-missing-not-valid");
        if (strcmp(out.items[k].rule, "adding-foreign-key-constraint") == 0)
            fix = out.items[k].fix;
    }
    assert_non_null(fix);
    st = sqlstate_of(f->conn, fix); /* the fix as lint wrote it */
    if (*st)
        fail_msg("the fix failed on PostgreSQL (%s):\n%s", st, fix);
    free(st);
    fl_finding_list_release(&out);
    st = sqlstate_of(f->conn, "ALTER TABLE c ADD COLUMN p4 int REFERENCES p (id) NOT VALID");
    assert_string_equal(st, "42601"); /* the old advice: a syntax error */
    free(st);
}

/* A table filled by CREATE TABLE AS is read when a key is validated on
 * it, under SHARE ROW EXCLUSIVE on the referenced, live table. */
static void
test_lint_pg_table_filled_in_the_file_is_scanned(void **state)
{
    fixture_t *f = *state;
    static const char sql[] =
        "CREATE TABLE c2 AS SELECT (id % 10) + 1 AS p_id FROM c;\n"
        "ALTER TABLE c2 ADD CONSTRAINT c2_p FOREIGN KEY (p_id) REFERENCES p (id);";
    char *locks;
    long before, after;

    fl_test_exec(f->conn, "CREATE TABLE c2 AS SELECT (id % 10) + 1 AS p_id FROM c");
    before = seq_read(f->conn, "c2");
    fl_test_exec(f->conn, "BEGIN");
    fl_test_exec(f->conn, "ALTER TABLE c2 ADD CONSTRAINT c2_p FOREIGN KEY (p_id) "
                          "REFERENCES p (id)");
    locks = locks_on(f->conn, "p");
    fl_test_exec(f->conn, "COMMIT");
    after = seq_read(f->conn, "c2");
    assert_non_null(strstr(locks, "ShareRowExclusiveLock"));
    free(locks);
    assert_int_equal(after - before, 20000);
    assert_int_equal(lint_count(sql, NULL, "adding-foreign-key-constraint", NULL), 1);
}

/*
 * An unnamed CREATE INDEX CONCURRENTLY cannot take IF NOT EXISTS, and run
 * twice builds two indexes; lint's message says that, not "add IF NOT
 * EXISTS" or "use a transaction" (CONCURRENTLY refuses one).
 */
static void
test_lint_pg_unnamed_concurrent_index(void **state)
{
    fixture_t *f = *state;
    fl_finding_list_t out = {NULL, 0};
    char *v, *st;

    st = sqlstate_of(f->conn, "CREATE INDEX CONCURRENTLY IF NOT EXISTS ON c (at)");
    assert_string_equal(st, "42601");
    free(st);
    fl_test_exec(f->conn, "CREATE INDEX CONCURRENTLY ON c (at)");
    fl_test_exec(f->conn, "CREATE INDEX CONCURRENTLY ON c (at)");
    v = fl_test_query_value(f->conn, "SELECT count(*) FROM pg_indexes "
                                     "WHERE tablename = 'c' AND indexdef LIKE '%(at)'");
    assert_string_equal(v, "2");
    free(v);
    st = sqlstate_of(f->conn, "BEGIN; CREATE INDEX CONCURRENTLY ON c (at); COMMIT");
    assert_string_equal(st, "25001");
    free(st);
    assert_int_equal(lint_count("CREATE INDEX CONCURRENTLY ON c (at);", NULL,
                                "prefer-robust-stmts", &out), 1);
    assert_non_null(strstr(message_of(&out, "prefer-robust-stmts"), "second one"));
    fl_finding_list_release(&out);
}

/* timestamp -> timestamptz keeps the table file under TimeZone UTC and
 * rewrites it under another zone. */
static void
test_lint_pg_timestamptz_rewrite_depends_on_timezone(void **state)
{
    fixture_t *f = *state;
    fl_finding_list_t out = {NULL, 0};
    char *a, *b, *c;

    fl_test_exec(f->conn, "ALTER TABLE c ADD COLUMN at2 timestamp");
    a = fl_test_query_value(f->conn, "SELECT pg_relation_filenode('c')");
    fl_test_exec(f->conn, "SET TimeZone = 'UTC'");
    fl_test_exec(f->conn, "ALTER TABLE c ALTER COLUMN at TYPE timestamptz");
    b = fl_test_query_value(f->conn, "SELECT pg_relation_filenode('c')");
    fl_test_exec(f->conn, "SET TimeZone = 'Europe/Paris'");
    fl_test_exec(f->conn, "ALTER TABLE c ALTER COLUMN at2 TYPE timestamptz");
    c = fl_test_query_value(f->conn, "SELECT pg_relation_filenode('c')");
    assert_string_equal(a, b);
    assert_string_not_equal(b, c);
    free(a);
    free(b);
    free(c);
    assert_int_equal(lint_count("ALTER TABLE c ALTER COLUMN at TYPE timestamptz;",
                                NULL, "changing-column-type", &out), 1);
    assert_non_null(strstr(message_of(&out, "changing-column-type"), "TimeZone is UTC"));
    fl_finding_list_release(&out);
}

/*
 * Several statements in one query string run as one transaction, so
 * CREATE INDEX CONCURRENTLY fails there and not alone: how golang-migrate,
 * and diesel, pop, sqlx and dbmate outside their transaction, send a file.
 */
static void
test_lint_pg_one_query_string_is_one_transaction(void **state)
{
    fixture_t *f = *state;
    fl_lint_options_t opts;
    static const char two[] =
        "SELECT 1; CREATE INDEX CONCURRENTLY IF NOT EXISTS c_at_idx ON c (at)";
    static const char one[] = "CREATE INDEX CONCURRENTLY IF NOT EXISTS c_at_idx ON c (at)";
    char *st;

    st = sqlstate_of(f->conn, two);
    assert_string_equal(st, "25001");
    free(st);
    st = sqlstate_of(f->conn, one);
    assert_string_equal(st, "");
    free(st);
    fl_lint_options_init(&opts);
    opts.assume_in_transaction = FL_LINT_TX_IMPLICIT;
    assert_int_equal(lint_count(two, &opts,
                                "ban-concurrent-index-creation-in-transaction", NULL), 1);
    assert_int_equal(lint_count(one, &opts,
                                "ban-concurrent-index-creation-in-transaction", NULL), 0);
}

/* The PostgreSQL 15 server refuses PostgreSQL 17 syntax as lint does, and
 * lint names the version. */
static void
test_lint_pg_newer_syntax(void **state)
{
    fixture_t *f = *state;
    fl_finding_list_t out = {NULL, 0};
    static const char sql[] =
        "SELECT * FROM JSON_TABLE('[{\"a\":1}]', '$[*]' COLUMNS (a int PATH '$.a'))";
    char *st = sqlstate_of(f->conn, sql);

    assert_string_equal(st, "42601");
    free(st);
    assert_int_equal(lint_count(sql, NULL, "syntax-error", &out), 1);
    assert_non_null(strstr(message_of(&out, "syntax-error"),
                           "JSON_TABLE is PostgreSQL 17 syntax"));
    fl_finding_list_release(&out);
}

/* The lock levels of lint/facts.h by PostgreSQL's mode names. */
static fl_lock_level
level_of_mode(const char *mode)
{
    static const char *const modes[] = {
        "", "AccessShareLock", "RowShareLock", "RowExclusiveLock",
        "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
        "ExclusiveLock", "AccessExclusiveLock",
    };
    size_t i;
    for (i = 1; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(mode, modes[i]) == 0)
            return (fl_lock_level)i;
    fail_msg("unknown lock mode %s", mode);
    return FL_LOCK_NONE;
}

/* The strongest lock lint says stmt takes on relation name, if any. */
static fl_lock_level
lint_lock_on(const fl_stmt_list_t *list, const char *name)
{
    fl_lock_level best = FL_LOCK_NONE;
    size_t i, k;
    for (i = 0; i < list->count; i++)
        for (k = 0; k < list->items[i].ntables; k++) {
            const fl_table_ref_t *t = &list->items[i].tables[k];
            if (strcmp(t->name, name) == 0 && t->lock > best)
                best = t->lock;
        }
    return best;
}

/*
 * Lint never says a statement takes a weaker lock on a table, view or
 * materialized view it names than PostgreSQL 15 takes (pg_locks, read
 * inside the statement's transaction): a lock lint understates is a
 * stall nobody was warned of.  Tables only the catalog knows (the table
 * of an index, the referenced side of a foreign key being dropped, the
 * users of a domain, the tables a materialized view reads) are
 * documented limits (docs/lint.md) and not asked here.  Every mismatch
 * is printed before the test fails.
 */
static void
test_lint_pg_locks_are_never_understated(void **state)
{
    fixture_t *f = *state;
    static const char *const stmts[] = {
        "ALTER TABLE c ADD COLUMN x int",
        "ALTER TABLE c ADD COLUMN x int NOT NULL DEFAULT 1",
        "ALTER TABLE c ALTER COLUMN id SET NOT NULL",
        "ALTER TABLE c ALTER COLUMN id SET STATISTICS 100",
        "ALTER TABLE c ALTER COLUMN at SET DEFAULT now()",
        "ALTER TABLE c ALTER COLUMN at TYPE timestamptz",
        "ALTER TABLE c RENAME COLUMN at TO at2",
        "ALTER TABLE c RENAME TO c9",
        "ALTER TABLE c SET (fillfactor = 70)",
        "ALTER TABLE c SET (autovacuum_enabled = false)",
        "ALTER TABLE c SET (user_catalog_table = true)",
        "ALTER TABLE c RESET (user_catalog_table)",
        "ALTER TABLE c SET (toast_tuple_target = 256)",
        "ALTER TABLE c SET (parallel_workers = 2)",
        "ALTER VIEW vv SET (security_barrier = true)",
        "ALTER VIEW vv SET (check_option = local)",
        "ALTER TABLE c ADD CONSTRAINT c_chk CHECK (id > 0) NOT VALID",
        "ALTER TABLE c ADD FOREIGN KEY (id) REFERENCES p NOT VALID",
        "ALTER TABLE c ADD PRIMARY KEY (id)",
        "ALTER TABLE c CLUSTER ON c_id_idx",
        "ALTER TABLE c ENABLE TRIGGER c_trg",
        "ALTER TABLE c DISABLE TRIGGER ALL",
        "ALTER TABLE c REPLICA IDENTITY FULL",
        "ALTER TABLE c ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE c OWNER TO CURRENT_USER",
        "CREATE INDEX ON c (at)",
        "CREATE STATISTICS c_st ON id, at FROM c",
        "COMMENT ON TABLE c IS 'x'",
        "COMMENT ON COLUMN c.id IS 'x'",
        "CREATE PUBLICATION c_pub FOR TABLE c",
        "SELECT * FROM c WHERE id = 1 FOR UPDATE",
        "SELECT * FROM c WHERE id = 1 FOR SHARE",
        "SELECT * FROM c JOIN p ON p.id = c.id WHERE c.id = 1 FOR UPDATE OF p",
        "WITH w AS (SELECT id FROM p FOR NO KEY UPDATE) SELECT * FROM w",
        "UPDATE c SET id = id WHERE id = 1",
        "DELETE FROM p WHERE id = 100",
        "INSERT INTO c SELECT id, now() FROM p",
        "TRUNCATE c",
        "LOCK TABLE c IN SHARE MODE",
        "ANALYZE c",
        "CREATE TRIGGER t2 AFTER UPDATE ON c EXECUTE FUNCTION trg()",
        "CREATE TABLE c2 (LIKE c INCLUDING ALL)",
        "CREATE TABLE c3 (id int REFERENCES p)",
        "CREATE VIEW vv2 AS SELECT * FROM c",
        "CREATE TABLE part1 PARTITION OF part FOR VALUES FROM (1) TO (10)",
        "ALTER TABLE part ATTACH PARTITION part0 FOR VALUES FROM (10) TO (20)",
        "DROP TABLE part0",
        "DROP VIEW vv",
        "DROP MATERIALIZED VIEW mv",
        "GRANT SELECT ON c TO PUBLIC",
    };
    size_t i, bad = 0;

    fl_test_exec(f->conn,
                 "CREATE VIEW vv AS SELECT * FROM p;"
                 "CREATE MATERIALIZED VIEW mv AS SELECT id FROM p;"
                 "CREATE TABLE part (id int) PARTITION BY RANGE (id);"
                 "CREATE TABLE part0 (id int)");
    for (i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        fl_stmt_list_t list = {NULL, 0};
        fl_error_t err = FL_ERROR_INIT;
        PGresult *r, *held;
        int k;

        /* The relations' names before the statement (RENAME TO). */
        r = PQexec(f->conn,
                   "SELECT r.oid, r.relname FROM pg_class r "
                   "WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f') "
                   "AND r.relnamespace = 'public'::regnamespace");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        fl_test_exec(f->conn, "BEGIN");
        fl_test_exec(f->conn, stmts[i]);
        held = PQexec(f->conn,
                      "SELECT l.relation, l.mode FROM pg_locks l "
                      "WHERE l.pid = pg_backend_pid() AND l.granted "
                      "AND l.relation IS NOT NULL");
        assert_int_equal(PQresultStatus(held), PGRES_TUPLES_OK);
        fl_test_exec(f->conn, "ROLLBACK");
        assert_int_equal(fl_facts_analyze(&list, stmts[i], 0, 150000, &err),
                         0);
        for (k = 0; k < PQntuples(held); k++) {
            fl_lock_level pg = level_of_mode(PQgetvalue(held, k, 1));
            const char *rel = NULL;
            int j;
            for (j = 0; j < PQntuples(r) && !rel; j++)
                if (strcmp(PQgetvalue(r, j, 0), PQgetvalue(held, k, 0)) == 0)
                    rel = PQgetvalue(r, j, 1);
            if (rel && lint_lock_on(&list, rel) < pg) {
                fl_lock_level lint = lint_lock_on(&list, rel);
                print_message("%s: PostgreSQL holds %s on %s, lint says %s\n",
                              stmts[i], fl_lock_level_name(pg), rel,
                              lint ? fl_lock_level_name(lint) : "none");
                bad++;
            }
        }
        PQclear(held);
        PQclear(r);
        fl_stmt_list_release(&list);
    }
    if (bad)
        fail_msg("%zu lock(s) understated of %zu statements", bad,
                 sizeof(stmts) / sizeof(stmts[0]));
}

/* fl_stmt_t.no_transaction of the one statement sql. */
static int
lint_no_transaction(const char *sql)
{
    fl_stmt_list_t list = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    int no;

    assert_int_equal(fl_facts_analyze(&list, sql, 0, 150000, &err), 0);
    assert_int_equal(list.count, 1);
    no = list.items[0].no_transaction;
    fl_stmt_list_release(&list);
    return no;
}

/*
 * Lint says a statement cannot run in a transaction block exactly when
 * PostgreSQL 15 refuses it in one (SQLSTATE 25001), so a migration that
 * would run it in one is refused before anything runs
 * (no-transaction-statement-in-transaction), not failed at execute.
 */
static void
test_lint_pg_no_transaction_as_the_server_says(void **state)
{
    fixture_t *f = *state;
    static const char *const stmts[] = {
        "ALTER DATABASE postgres SET TABLESPACE pg_default",
        "ALTER DATABASE postgres SET work_mem = '4MB'",
        "CREATE SUBSCRIPTION lint_s2 CONNECTION 'host=/nonexistent' "
        "PUBLICATION p",
        "CREATE SUBSCRIPTION lint_s2 CONNECTION 'host=/nonexistent' "
        "PUBLICATION p WITH (connect = false)",
        "CREATE SUBSCRIPTION lint_s2 CONNECTION 'host=/nonexistent' "
        "PUBLICATION p WITH (connect = true, create_slot = true)",
        "ALTER SUBSCRIPTION lint_s REFRESH PUBLICATION",
        "ALTER SUBSCRIPTION lint_s REFRESH PUBLICATION WITH (copy_data = off)",
        "ALTER SUBSCRIPTION lint_s ADD PUBLICATION p2",
        "ALTER SUBSCRIPTION lint_s SET PUBLICATION p2",
        "ALTER SUBSCRIPTION lint_s ADD PUBLICATION p2 WITH (refresh = false)",
        "ALTER SUBSCRIPTION lint_s DROP PUBLICATION p3",
        "ALTER SUBSCRIPTION lint_s DROP PUBLICATION p3 WITH (refresh = off)",
        "ALTER SUBSCRIPTION lint_s DISABLE",
    };
    size_t i, bad = 0;

    /* Enabled without a slot: the catalog is all the statements read
     * before they refuse to run in a transaction. */
    fl_test_exec(f->conn,
                 "CREATE SUBSCRIPTION lint_s CONNECTION 'host=/nonexistent' "
                 "PUBLICATION p, p3 WITH (connect = false)");
    fl_test_exec(f->conn, "ALTER SUBSCRIPTION lint_s ENABLE");
    for (i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        char *st;
        int server, lint;

        fl_test_exec(f->conn, "BEGIN");
        st = sqlstate_of(f->conn, stmts[i]);
        fl_test_exec(f->conn, "ROLLBACK");
        server = strcmp(st, "25001") == 0;
        lint = lint_no_transaction(stmts[i]);
        if (server != lint) {
            print_message("%s: PostgreSQL %s (%s), lint says %s\n", stmts[i],
                          server ? "refuses it in a transaction" : "does not",
                          st, lint ? "no transaction" : "transaction");
            bad++;
        }
        free(st);
    }
    fl_test_exec(f->conn, "ALTER SUBSCRIPTION lint_s DISABLE");
    fl_test_exec(f->conn, "ALTER SUBSCRIPTION lint_s SET (slot_name = NONE)");
    fl_test_exec(f->conn, "DROP SUBSCRIPTION lint_s");
    if (bad)
        fail_msg("%zu statement(s) of %zu misjudged", bad,
                 sizeof(stmts) / sizeof(stmts[0]));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lint_pg_table_locking_ddl_needs_lock_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_zero_lock_timeout_is_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_foreign_key_scans_only_with_a_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_table_filled_in_the_file_is_scanned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_unnamed_concurrent_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_timestamptz_rewrite_depends_on_timezone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_one_query_string_is_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_newer_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_locks_are_never_understated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint_pg_no_transaction_as_the_server_says, setup, teardown),
    };
    return cmocka_run_group_tests_name("lint_pg", tests, NULL, NULL);
}
