/*
 * Tests of the statement facts (facts.h): kinds, positions, lock levels,
 * rewrite/scan/destructive flags, the must-run-outside-a-transaction list
 * and the live-data checks.  This file is the contract's usage example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pg_query.h>

#include "common/buf.h"
#include "lint/facts.h"
#include "lint/lint_internal.h"
#include "testsupport.h"

static fl_stmt_list_t
analyze(const char *sql, int pg_version)
{
    fl_stmt_list_t l;
    fl_error_t err = FL_ERROR_INIT;
    assert_int_equal(fl_facts_analyze(&l, sql, 0, pg_version, &err), 0);
    return l;
}

/* The single statement of sql (after any setup statements). */
static const fl_stmt_t *
last(const fl_stmt_list_t *l)
{
    assert_true(l->count > 0);
    return &l->items[l->count - 1];
}

static const fl_table_ref_t *
table(const fl_stmt_t *st, const char *name)
{
    size_t i;
    for (i = 0; i < st->ntables; i++)
        if (strcmp(st->tables[i].name, name) == 0)
            return &st->tables[i];
    fail_msg("table %s not in statement %s", name, st->sql);
    return NULL;
}

static const fl_check_t *
check(const fl_stmt_t *st, fl_check_kind kind)
{
    size_t i;
    for (i = 0; i < st->nchecks; i++)
        if (st->checks[i].kind == kind)
            return &st->checks[i];
    return NULL;
}

/* The destroy of this kind on this table, or NULL. */
static const fl_destroy_t *
destroy(const fl_stmt_t *st, fl_destroy_kind kind, const char *name)
{
    size_t i;
    for (i = 0; i < st->ndestroys; i++)
        if (st->destroys[i].kind == kind && st->destroys[i].table &&
            strcmp(st->destroys[i].table, name) == 0)
            return &st->destroys[i];
    return NULL;
}

typedef struct {
    const char *sql;
    const char *kind;
    const char *table;     /* NULL: no table */
    fl_lock_level lock;
    int rewrites, scans, destructive, no_transaction;
} kind_case_t;

static const kind_case_t kinds[] = {
    {"CREATE TABLE t (a int)", "CREATE TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"CREATE TABLE t2 AS SELECT * FROM t", "CREATE TABLE AS", "t", FL_LOCK_ACCESS_SHARE, 0, 0, 0, 0},
    {"CREATE VIEW v AS SELECT * FROM t", "CREATE VIEW", "t", FL_LOCK_ACCESS_SHARE, 0, 0, 0, 0},
    {"ALTER TABLE t ADD COLUMN c text", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t ADD COLUMN c int DEFAULT 0", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 1, 0, 0, 0},
    {"ALTER TABLE t ADD COLUMN c int GENERATED ALWAYS AS (a) STORED", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 1, 0, 0, 0},
    {"ALTER TABLE t ALTER COLUMN a TYPE bigint", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 1, 0, 1, 0},
    {"ALTER TABLE t ALTER COLUMN a SET NOT NULL", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 1, 0, 0},
    {"ALTER TABLE t ALTER COLUMN a DROP NOT NULL", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t DROP COLUMN a", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 1, 0},
    {"ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 1, 0, 0},
    {"ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES o", "ALTER TABLE", "t", FL_LOCK_SHARE_ROW_EXCLUSIVE, 0, 1, 0, 0},
    {"ALTER TABLE t ADD CONSTRAINT k UNIQUE (a)", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 1, 0, 0},
    {"ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX i", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t VALIDATE CONSTRAINT c", "ALTER TABLE", "t", FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0, 1, 0, 0},
    {"ALTER TABLE t SET TABLESPACE fast", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 1, 0, 0, 0},
    {"ALTER TABLE t SET (fillfactor = 70)", "ALTER TABLE", "t", FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t DISABLE TRIGGER x", "ALTER TABLE", "t", FL_LOCK_SHARE_ROW_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t DETACH PARTITION p", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t DETACH PARTITION p CONCURRENTLY", "ALTER TABLE", "t", FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0, 0, 0, 1},
    {"ALTER TABLE t RENAME TO u", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER TABLE t RENAME COLUMN a TO b", "ALTER TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"CREATE INDEX i ON t (a)", "CREATE INDEX", "t", FL_LOCK_SHARE, 0, 1, 0, 0},
    {"CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX", "t", FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0, 0, 0, 1},
    {"DROP INDEX i", "DROP INDEX", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
    {"DROP INDEX CONCURRENTLY i", "DROP INDEX", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"DROP TABLE t", "DROP TABLE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 1, 0},
    {"TRUNCATE t", "TRUNCATE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 1, 0},
    {"DELETE FROM t WHERE a = 1", "DELETE", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 1, 0},
    {"UPDATE t SET a = 1", "UPDATE", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 1, 0},
    {"INSERT INTO t SELECT * FROM s", "INSERT", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 0, 0},
    {"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "INSERT", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 0, 0},
    {"INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1", "INSERT", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 1, 0},
    {"MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 1, 0},
    {"MERGE INTO t USING s ON t.a = s.a WHEN NOT MATCHED THEN INSERT VALUES (1)", "MERGE", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 0, 0},
    {"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "SELECT", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 1, 0},
    {"COPY (DELETE FROM t RETURNING *) TO STDOUT", "COPY", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 1, 0},
    {"EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN", "t", FL_LOCK_ROW_EXCLUSIVE, 0, 0, 1, 0},
    {"EXPLAIN DELETE FROM t", "EXPLAIN", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
    {"SELECT * FROM t JOIN s ON true", "SELECT", "s", FL_LOCK_ACCESS_SHARE, 0, 0, 0, 0},
    {"VACUUM t", "VACUUM", "t", FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0, 0, 0, 1},
    {"VACUUM FULL t", "VACUUM FULL", "t", FL_LOCK_ACCESS_EXCLUSIVE, 1, 0, 0, 1},
    {"ANALYZE t", "ANALYZE", "t", FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0, 0, 0, 0},
    {"CLUSTER t USING i", "CLUSTER", "t", FL_LOCK_ACCESS_EXCLUSIVE, 1, 0, 0, 0},
    {"REINDEX TABLE t", "REINDEX", "t", FL_LOCK_SHARE, 0, 0, 0, 0},
    {"REINDEX TABLE CONCURRENTLY t", "REINDEX", "t", FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0, 0, 0, 1},
    {"REINDEX SCHEMA s", "REINDEX", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"REINDEX DATABASE d", "REINDEX", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"REINDEX SYSTEM d", "REINDEX", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"REFRESH MATERIALIZED VIEW m", "REFRESH MATERIALIZED VIEW", "m", FL_LOCK_ACCESS_EXCLUSIVE, 1, 0, 0, 0},
    {"REFRESH MATERIALIZED VIEW CONCURRENTLY m", "REFRESH MATERIALIZED VIEW", "m", FL_LOCK_EXCLUSIVE, 0, 0, 0, 0},
    {"LOCK TABLE t IN SHARE MODE", "LOCK TABLE", "t", FL_LOCK_SHARE, 0, 0, 0, 0},
    {"CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", "CREATE TRIGGER", "t", FL_LOCK_SHARE_ROW_EXCLUSIVE, 0, 0, 0, 0},
    /* ACCESS EXCLUSIVE on the table (pg_locks, tests/integration/test_lint_pg.c) */
    {"DROP TRIGGER x ON s.t", "DROP TRIGGER", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"CREATE POLICY p ON t USING (true)", "CREATE POLICY", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"ALTER POLICY p ON t USING (false)", "ALTER POLICY", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"DROP POLICY p ON t", "DROP POLICY", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"CREATE RULE r AS ON INSERT TO t DO ALSO NOTHING", "CREATE RULE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"DROP RULE r ON t", "DROP RULE", "t", FL_LOCK_ACCESS_EXCLUSIVE, 0, 0, 0, 0},
    {"CREATE DATABASE d", "CREATE DATABASE", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"DROP DATABASE d", "DROP DATABASE", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"CREATE TABLESPACE fast LOCATION '/x'", "CREATE TABLESPACE", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"DROP TABLESPACE fast", "DROP TABLESPACE", NULL, FL_LOCK_NONE, 0, 0, 0, 1},
    {"ALTER TYPE e ADD VALUE 'x'", "ALTER TYPE", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
    {"BEGIN", "BEGIN", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
    {"COMMIT", "COMMIT", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
    {"SET lock_timeout = '1s'", "SET", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
    {"DROP SCHEMA s", "DROP SCHEMA", NULL, FL_LOCK_NONE, 0, 0, 1, 0},
    {"DROP TYPE e CASCADE", "DROP TYPE", NULL, FL_LOCK_NONE, 0, 0, 1, 0},
    {"DROP OWNED BY bob", "DROP OWNED", NULL, FL_LOCK_NONE, 0, 0, 1, 0},
    {"DO $$BEGIN NULL; END$$", "DO", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
    {"CALL p()", "CALL", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
    {"EXECUTE p", "EXECUTE", NULL, FL_LOCK_NONE, 0, 0, 0, 0},
};

static void
test_facts_kinds_locks_and_flags(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const kind_case_t *c = &kinds[i];
        fl_stmt_list_t l = analyze(c->sql, 150000);
        const fl_stmt_t *st;

        assert_int_equal(l.count, 1);
        st = &l.items[0];
        if (strcmp(st->kind, c->kind) != 0)
            fail_msg("%s: kind %s, expected %s", c->sql, st->kind, c->kind);
        assert_int_equal(st->parse_error, 0);
        if (c->table) {
            const fl_table_ref_t *t = table(st, c->table);
            if (t->lock != c->lock)
                fail_msg("%s: lock %s, expected %s", c->sql,
                         fl_lock_level_name(t->lock), fl_lock_level_name(c->lock));
        }
        if (st->rewrites != c->rewrites || st->scans != c->scans ||
            st->destructive != c->destructive ||
            st->no_transaction != c->no_transaction)
            fail_msg("%s: rewrites %d scans %d destructive %d no_transaction %d",
                     c->sql, st->rewrites, st->scans, st->destructive,
                     st->no_transaction);
        fl_stmt_list_release(&l);
    }
}

static void
test_facts_enum_add_value_outside_transaction_before_pg12(void **state)
{
    fl_stmt_list_t l = analyze("ALTER TYPE e ADD VALUE 'x'", 110000);
    (void)state;
    assert_int_equal(l.items[0].no_transaction, 1);
    fl_stmt_list_release(&l);
}

/* A SELECT of set_config() calls alone sets the session as SET does. */
static void
test_facts_a_select_of_set_config_calls_sets_the_session(void **state)
{
    static const struct {
        const char *sql;
        int sets;
    } cases[] = {
        {"SELECT pg_catalog.set_config('search_path', '', false)", 1},
        {"SELECT set_config('a.b', '1', false), set_config('c.d', '2', true)",
         1},
        {"SELECT set_config('search_path', s, false) FROM t", 0},
        {"SELECT set_config('search_path', '', false) WHERE false", 0},
        {"SELECT set_config('search_path', '', false), 1", 0},
        {"SELECT app.set_config('search_path', '', false)", 0},
        {"SELECT set_config('x.y', '1', false) UNION ALL SELECT '2'", 0},
        {"SELECT 1", 0},
        {"SET search_path = app", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_stmt_list_t l = analyze(cases[i].sql, 150000);
        if (l.items[0].sets_config != cases[i].sets)
            fail_msg("%s: sets_config %d, wanted %d", cases[i].sql,
                     l.items[0].sets_config, cases[i].sets);
        fl_stmt_list_release(&l);
    }
}

/* A COPY that exchanges its rows with the client, and only that one. */
static void
test_facts_copy_with_the_client(void **state)
{
    static const struct {
        const char *sql;
        int copy;
    } cases[] = {
        {"COPY t FROM STDIN", FL_COPY_FROM_CLIENT},
        {"COPY t (a, b) FROM stdin WITH (FORMAT csv)", FL_COPY_FROM_CLIENT},
        {"COPY t TO STDOUT", FL_COPY_TO_CLIENT},
        {"COPY (SELECT 1) TO STDOUT", FL_COPY_TO_CLIENT},
        {"COPY t FROM '/srv/t.csv'", 0},
        {"COPY t TO '/srv/t.csv'", 0},
        {"COPY t FROM PROGRAM 'cat /srv/t.csv'", 0},
        {"COPY t TO PROGRAM 'gzip > /srv/t.gz'", 0},
        {"INSERT INTO t VALUES (1)", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_stmt_list_t l = analyze(cases[i].sql, 150000);
        if (l.items[0].copy_client != cases[i].copy)
            fail_msg("%s: copy_client %d, wanted %d", cases[i].sql,
                     l.items[0].copy_client, cases[i].copy);
        fl_stmt_list_release(&l);
    }
}

/*
 * What a statement does outside its transaction, which a rollback does
 * not undo (plan's rehearsal does not run it): the built-ins that signal
 * a session, reset statistics, mark or switch the WAL, change replication
 * slots or write a server file, when run (not stored in a function, view
 * or default, nor under EXPLAIN without ANALYZE), and COPY to a file or
 * from or to a program.  A function of another schema is opaque instead.
 */
static void
test_facts_what_acts_outside_the_transaction(void **state)
{
    static const struct {
        const char *sql;
        const char *outside; /* a part of it, or NULL */
    } cases[] = {
        {"SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
         " WHERE application_name = 'x'", "pg_terminate_backend()"},
        {"SELECT pg_catalog.pg_cancel_backend(42)", "pg_cancel_backend()"},
        {"SELECT pg_reload_conf()", "pg_reload_conf()"},
        {"SELECT pg_stat_reset()", "pg_stat_reset()"},
        {"SELECT pg_switch_wal()", "pg_switch_wal()"},
        {"SELECT pg_drop_replication_slot('s')", "pg_drop_replication_slot()"},
        {"SELECT lo_export(16400, '/srv/x')", "lo_export()"},
        {"UPDATE t SET a = (SELECT count(*) FROM (SELECT"
         " pg_terminate_backend(1)) x)", "pg_terminate_backend()"},
        {"EXPLAIN ANALYZE SELECT pg_cancel_backend(1)", "pg_cancel_backend()"},
        {"COPY t TO '/srv/t.csv'", "COPY"},
        {"COPY (SELECT 1) TO '/srv/t.csv'", "COPY"},
        {"COPY t TO PROGRAM 'gzip > /srv/t.gz'", "PROGRAM"},
        {"COPY t FROM PROGRAM 'cat /srv/t.csv'", "PROGRAM"},
        {"COPY t FROM '/srv/t.csv'", NULL},
        {"COPY t FROM STDIN", NULL},
        {"EXPLAIN SELECT pg_cancel_backend(1)", NULL},
        {"CREATE FUNCTION f() RETURNS bool LANGUAGE sql AS"
         " 'SELECT pg_terminate_backend(1)'", NULL},
        {"CREATE VIEW v AS SELECT pg_reload_conf()", NULL},
        {"SELECT app.pg_terminate_backend(1)", NULL},
        {"SELECT nextval('s'), pg_sleep(1), pg_notify('c', 'x')", NULL},
        {"INSERT INTO t VALUES (1)", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_stmt_list_t l = analyze(cases[i].sql, 150000);
        const char *got = l.items[0].outside;

        if (cases[i].outside == NULL ? got != NULL
            : got == NULL || strstr(got, cases[i].outside) == NULL)
            fail_msg("%s: outside \"%s\", wanted \"%s\"", cases[i].sql,
                     got ? got : "(none)",
                     cases[i].outside ? cases[i].outside : "(none)");
        fl_stmt_list_release(&l);
    }
}

static void
test_facts_positions_and_splitting(void **state)
{
    const char *sql = "-- header\n"
                      "SELECT 'a;b'; /* c; */ CREATE INDEX i\n"
                      "  ON t (a);\n"
                      "\n"
                      "  DROP TABLE t";
    fl_stmt_list_t l;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(fl_facts_analyze(&l, sql, 10, 150000, &err), 0);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.items[0].sql, "SELECT 'a;b'");
    assert_int_equal(l.items[0].line, 12);
    assert_int_equal(l.items[0].column, 1);
    assert_int_equal(l.items[0].offset, 10);
    assert_string_equal(l.items[1].kind, "CREATE INDEX");
    assert_int_equal(l.items[1].line, 12);
    assert_int_equal(l.items[1].column, 24);
    assert_string_equal(l.items[1].sql, "CREATE INDEX i\n  ON t (a)");
    assert_int_equal(l.items[1].length, strlen("CREATE INDEX i\n  ON t (a)"));
    assert_int_equal(l.items[2].line, 15);
    assert_int_equal(l.items[2].column, 3);
    assert_string_equal(l.items[2].sql, "DROP TABLE t");
    fl_stmt_list_release(&l);
}

static void
test_facts_parse_error_keeps_the_rest(void **state)
{
    fl_stmt_list_t l = analyze("SELECT 1;\nCREATE TABEL x (a int);\nDROP TABLE y;", 150000);
    (void)state;
    assert_int_equal(l.count, 3);
    assert_int_equal(l.items[1].parse_error, 1);
    assert_non_null(strstr(l.items[1].error, "TABEL"));
    assert_int_equal(l.items[1].error_line, 2);
    assert_int_equal(l.items[1].error_column, 8);
    assert_string_equal(l.items[2].kind, "DROP TABLE");
    assert_int_equal(l.items[2].line, 3);
    assert_int_equal(l.items[2].destructive, 1);
    fl_stmt_list_release(&l);

    l = analyze("SELECT 'unterminated", 150000);
    assert_int_equal(l.count, 1);
    assert_int_equal(l.items[0].parse_error, 1);
    fl_stmt_list_release(&l);
}

/* Every byte outside the statements is a blank, a comment or a ";". */
static const char *
s_uncovered(const char *sql, const fl_stmt_list_t *l)
{
    size_t len = strlen(sql), pos = 0;

    for (size_t k = 0; k <= l->count; k++) {
        size_t to = k < l->count ? l->items[k].offset : len;

        for (;;) {
            pos = fl_lint_skip_space(sql, pos, to);
            if (pos < to && sql[pos] == ';')
                pos++;
            else
                break;
        }
        if (pos < to)
            return sql + pos;
        if (k < l->count)
            pos = l->items[k].offset + l->items[k].length;
    }
    return NULL;
}

/*
 * No text of a migration is ever lost, whether it parses or not: on
 * seeded mixes of statements that parse and fragments that do not (seeds
 * 1 to FLOTILLA_GEN_SEEDS, default 500; FLOTILLA_GEN_SEED=N runs one),
 * every byte outside the statements found is a blank, a comment or a
 * ";", and some statement is a parse error exactly when PostgreSQL's
 * parser refuses the whole input.  Before, the scanner's split, used
 * when the whole input does not parse, left out what it could not end
 * ("SELEC 1;", "INSERT INTO t VALUES (1;" and every statement after an
 * unclosed parenthesis): the rest was applied and the migration recorded
 * applied, the dropped statements never run.
 */
static int
s_check_split_seed(long n_seed, int alone, void *arg)
{
    static const char *const good[] = {
        "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)",
        "SELECT 'a;b'", "DROP TABLE t", "UPDATE t SET id = (2)",
        "ALTER TABLE t ADD COLUMN c text", "SELECT $$;($$",
        "CREATE INDEX i ON t ((id + 1))", "SELECT \"(\" FROM t",
    };
    static const char *const bad[] = {
        "SELEC 1", "SELECT (", "INSERT INTO t VALUES (1", "CREAT TABLE x",
        "x", "1", "SELECT 1 1", ")", "SELECT ((1)", "(", "SELECT 1)",
        "CREATE TABLE t (a int", "UPDATE t SET", "'a' 'b'", "SELECT [1",
        "DROP TABLE", "VALUES (1,", "SELECT CASE WHEN",
    };
    static const char *const seps[] = {";\n", "; ", ";\n-- c;(\n",
                                       ";/* ; ( */", ";;\n"};
    uint64_t rng = (uint64_t)n_seed;
    fl_buf_t b = FL_BUF_INIT(0);
    size_t n = (size_t)(fl_test_rng_next(&rng) % 6) + 1, count = 0;
    fl_stmt_list_t l;
    fl_error_t err = FL_ERROR_INIT;
    PgQueryParseResult whole;
    int errors = 0, failed = 0;
    const char *lost = NULL;

    (void)arg;
    for (size_t i = 0; i < n; i++) {
        int broken = fl_test_rng_next(&rng) % 3 == 0;
        size_t pick = (size_t)fl_test_rng_next(&rng);
        const char *st = broken ? bad[pick % (sizeof(bad) / sizeof(*bad))]
                                : good[pick % (sizeof(good) / sizeof(*good))];
        const char *sep = seps[fl_test_rng_next(&rng) %
                               (sizeof(seps) / sizeof(*seps))];

        fl_buf_addf(&b, "%s%s", st,
                    i + 1 < n || fl_test_rng_next(&rng) % 2 ? sep : "");
    }
    if (fl_facts_analyze(&l, b.data, 0, 150000, &err) != 0)
        fail_msg("seed %ld: %s", n_seed, err.message);
    count = l.count;
    for (size_t i = 0; i < l.count; i++)
        errors += l.items[i].parse_error;
    whole = pg_query_parse(b.data);
    if ((whole.error != NULL) != (errors > 0)) {
        failed = 1;
        fprintf(stderr, "seed %ld: PostgreSQL's parser %s the input, "
                "flotilla found %d parse errors in %zu statements:\n%s\n",
                n_seed, whole.error ? "refuses" : "takes", errors, count,
                b.data);
    }
    if ((lost = s_uncovered(b.data, &l)) != NULL) {
        failed = 1;
        fprintf(stderr, "seed %ld: the text from \"%.40s\" is in no "
                "statement of the %zu found:\n%s\n", n_seed, lost, count,
                b.data);
    }
    pg_query_free_parse_result(whole);
    fl_stmt_list_release(&l);
    fl_buf_release(&b);
    if (alone && !failed)
        fprintf(stderr, "seed %ld: %zu statements, %d parse errors\n",
                n_seed, count, errors);
    return failed;
}

static void
test_facts_no_text_is_lost_whatever_parses(void **state)
{
    (void)state;
    fl_test_gen_seeds(500, s_check_split_seed, NULL);
}

static void
test_facts_destroys(void **state)
{
    fl_stmt_list_t l = analyze("ALTER TABLE s.t DROP COLUMN a, ALTER COLUMN b TYPE text, "
                               "ALTER COLUMN c DROP NOT NULL", 150000);
    const fl_stmt_t *st = &l.items[0];
    (void)state;
    assert_int_equal(st->ndestroys, 2);
    assert_int_equal(st->destroys[0].kind, FL_DESTROY_DROP_COLUMN);
    assert_string_equal(st->destroys[0].schema, "s");
    assert_string_equal(st->destroys[0].table, "t");
    assert_string_equal(st->destroys[0].column, "a");
    assert_int_equal(st->destroys[1].kind, FL_DESTROY_ALTER_TYPE);
    assert_string_equal(st->destroys[1].column, "b");
    fl_stmt_list_release(&l);

    l = analyze("ALTER TABLE t ALTER COLUMN c DROP NOT NULL", 150000);
    assert_int_equal(l.items[0].destructive, 0);
    assert_int_equal(l.items[0].ndestroys, 0);
    fl_stmt_list_release(&l);

    l = analyze("TRUNCATE a, b", 150000);
    assert_int_equal(l.items[0].ndestroys, 2);
    assert_int_equal(l.items[0].destroys[1].kind, FL_DESTROY_TRUNCATE);
    fl_stmt_list_release(&l);

    l = analyze("DELETE FROM a", 150000);
    assert_int_equal(l.items[0].destroys[0].kind, FL_DESTROY_DELETE);
    fl_stmt_list_release(&l);
    l = analyze("UPDATE a SET x = 1", 150000);
    assert_int_equal(l.items[0].destroys[0].kind, FL_DESTROY_UPDATE);
    fl_stmt_list_release(&l);
    l = analyze("DROP TABLE a", 150000);
    assert_int_equal(l.items[0].destroys[0].kind, FL_DESTROY_DROP_TABLE);
    fl_stmt_list_release(&l);
}

static void
test_facts_merge_destroys_once_per_matched_action(void **state)
{
    fl_stmt_list_t l = analyze(
        "MERGE INTO s.t USING src ON t.a = src.a\n"
        "WHEN MATCHED AND src.gone THEN DELETE\n"
        "WHEN MATCHED AND src.x = 1 THEN UPDATE SET b = 1\n"
        "WHEN MATCHED THEN UPDATE SET b = 2\n"
        "WHEN NOT MATCHED THEN INSERT VALUES (src.a)", 150000);
    const fl_stmt_t *st = &l.items[0];
    const fl_check_t *c;

    (void)state;
    assert_string_equal(st->kind, "MERGE");
    assert_int_equal(table(st, "t")->lock, FL_LOCK_ROW_EXCLUSIVE);
    assert_int_equal(table(st, "t")->writes, 1);
    assert_int_equal(table(st, "src")->lock, FL_LOCK_ACCESS_SHARE);
    assert_int_equal(table(st, "src")->writes, 0);
    assert_int_equal(st->destructive, 1);
    assert_int_equal(st->ndestroys, 2);
    assert_int_equal(st->destroys[0].kind, FL_DESTROY_UPDATE);
    assert_int_equal(st->destroys[1].kind, FL_DESTROY_DELETE);
    assert_string_equal(st->destroys[1].schema, "s");
    assert_string_equal(st->destroys[1].table, "t");
    assert_null(st->destroys[1].column);
    c = check(st, FL_CHECK_TABLE_EXISTS);
    assert_non_null(c);
    assert_string_equal(c->table, "t");
    fl_stmt_list_release(&l);

    /* Near miss: inserting and doing nothing destroy nothing. */
    l = analyze("MERGE INTO t USING src ON t.a = src.a\n"
                "WHEN MATCHED THEN DO NOTHING\n"
                "WHEN NOT MATCHED THEN INSERT VALUES (src.a)", 150000);
    assert_int_equal(l.items[0].destructive, 0);
    assert_int_equal(l.items[0].ndestroys, 0);
    assert_int_equal(table(&l.items[0], "t")->writes, 1);
    fl_stmt_list_release(&l);
}

static void
test_facts_upsert_do_update_destroys_do_nothing_does_not(void **state)
{
    fl_stmt_list_t l = analyze(
        "INSERT INTO s.t (a, b) VALUES (1, 2)\n"
        "ON CONFLICT (a) DO UPDATE SET b = excluded.b", 150000);
    const fl_stmt_t *st = &l.items[0];

    (void)state;
    assert_string_equal(st->kind, "INSERT");
    assert_int_equal(table(st, "t")->lock, FL_LOCK_ROW_EXCLUSIVE);
    assert_int_equal(st->ndestroys, 1);
    assert_non_null(destroy(st, FL_DESTROY_UPDATE, "t"));
    assert_string_equal(st->destroys[0].schema, "s");
    assert_non_null(check(st, FL_CHECK_TABLE_EXISTS));
    fl_stmt_list_release(&l);

    l = analyze("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING", 150000);
    assert_int_equal(l.items[0].destructive, 0);
    assert_int_equal(l.items[0].ndestroys, 0);
    assert_null(check(&l.items[0], FL_CHECK_TABLE_EXISTS));
    fl_stmt_list_release(&l);
}

static void
test_facts_data_modifying_ctes_destroy_as_if_top_level(void **state)
{
    static const struct {
        const char *sql;
        const char *kind;
        fl_destroy_kind destroy;
    } cases[] = {
        {"WITH d AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM d", "SELECT", FL_DESTROY_DELETE},
        {"WITH u AS (UPDATE t SET a = 1 RETURNING *) INSERT INTO log SELECT * FROM u", "INSERT", FL_DESTROY_UPDATE},
        {"WITH u AS (INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1 RETURNING *) DELETE FROM log USING u", "DELETE", FL_DESTROY_UPDATE},
        {"WITH d AS (DELETE FROM t RETURNING a) UPDATE log SET n = 1 FROM d", "UPDATE", FL_DESTROY_DELETE},
        {"SELECT * FROM (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) s", "SELECT", FL_DESTROY_DELETE},
        {"WITH a AS (WITH b AS (UPDATE t SET a = 2 RETURNING *) SELECT * FROM b) SELECT * FROM a", "SELECT", FL_DESTROY_UPDATE},
        {"CREATE TABLE keep AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "CREATE TABLE AS", FL_DESTROY_DELETE},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_stmt_list_t l = analyze(cases[i].sql, 150000);
        const fl_stmt_t *st = &l.items[0];
        if (strcmp(st->kind, cases[i].kind) != 0)
            fail_msg("%s: kind %s", cases[i].sql, st->kind);
        if (table(st, "t")->lock != FL_LOCK_ROW_EXCLUSIVE || !table(st, "t")->writes)
            fail_msg("%s: t not written under ROW EXCLUSIVE", cases[i].sql);
        if (!destroy(st, cases[i].destroy, "t") || !st->destructive)
            fail_msg("%s: no destroy of t", cases[i].sql);
        if (!check(st, FL_CHECK_TABLE_EXISTS))
            fail_msg("%s: no TABLE_EXISTS check", cases[i].sql);
        fl_stmt_list_release(&l);
    }
}

static void
test_facts_data_modifying_ctes_every_target_once(void **state)
{
    fl_stmt_list_t l = analyze(
        "WITH a AS (DELETE FROM t WHERE a = 1 RETURNING *),\n"
        "     b AS (DELETE FROM t WHERE a = 2 RETURNING *),\n"
        "     c AS (UPDATE s.u SET x = 1 RETURNING *)\n"
        "UPDATE v SET n = 1 FROM a, b, c", 150000);
    const fl_stmt_t *st = &l.items[0];

    (void)state;
    assert_int_equal(st->ndestroys, 3);
    assert_non_null(destroy(st, FL_DESTROY_UPDATE, "v"));
    assert_non_null(destroy(st, FL_DESTROY_DELETE, "t"));
    assert_non_null(destroy(st, FL_DESTROY_UPDATE, "u"));
    assert_string_equal(destroy(st, FL_DESTROY_UPDATE, "u")->schema, "s");
    assert_int_equal(st->tables[0].lock, FL_LOCK_ROW_EXCLUSIVE);
    assert_string_equal(st->tables[0].name, "v"); /* the statement's own first */
    fl_stmt_list_release(&l);

    /* Near misses: a plain CTE, a table created earlier, EXPLAIN alone. */
    l = analyze("WITH r AS (SELECT * FROM t) SELECT * FROM r", 150000);
    assert_int_equal(l.items[0].destructive, 0);
    assert_int_equal(table(&l.items[0], "t")->writes, 0);
    fl_stmt_list_release(&l);
    l = analyze("CREATE TABLE t (a int);\n"
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", 150000);
    assert_int_equal(l.items[1].destructive, 0);
    assert_int_equal(l.items[1].nchecks, 0);
    assert_int_equal(table(&l.items[1], "t")->writes, 1);
    fl_stmt_list_release(&l);
    l = analyze("EXPLAIN (ANALYZE false) DELETE FROM t", 150000);
    assert_int_equal(l.items[0].destructive, 0);
    fl_stmt_list_release(&l);
}

static void
test_facts_opaque_statements(void **state)
{
    static const struct {
        const char *sql;
        int opaque;
    } cases[] = {
        {"DO $$BEGIN DELETE FROM t; END$$", 1},
        {"CALL archive_orders(2024)", 1},
        {"EXECUTE purge(1)", 1},
        {"SELECT my_schema.f()", 1},
        {"SELECT f_custom()", 1},
        {"SELECT pg_catalog.f_custom()", 1},
        {"SELECT * FROM my_srf()", 1},
        {"UPDATE t SET a = b WHERE keep(a)", 1},
        {"WITH d AS (DELETE FROM t WHERE gone(a) RETURNING *) SELECT 1", 1},
        {"ALTER TABLE t ADD COLUMN c int DEFAULT seq_next()", 1},
        {"CREATE INDEX i ON t (normalise(a))", 1},
        {"EXPLAIN ANALYZE SELECT f_custom()", 1},
        {"EXPLAIN ANALYZE EXECUTE purge(1)", 1},
        {"CREATE TABLE t2 AS SELECT f_custom()", 1},
        /* built-ins, whatever the syntax that calls them */
        {"UPDATE t SET a = lower(b)", 0},
        {"SELECT pg_catalog.lower('x'), count(*), extract(year FROM now()), "
         "trim(' x '), 'a' AT TIME ZONE 'utc', substring('abc' FROM 2)", 0},
        {"SELECT * FROM generate_series(1, 3)", 0},
        {"SELECT \"RI_FKey_cascade_del\"(), abbrev(inet '1.2.3.4'), xpath_exists('a', 'b')", 0},
        {"INSERT INTO t VALUES (gen_random_uuid(), nextval('s'))", 0},
        /* stored, not run */
        {"CREATE VIEW v AS SELECT f_custom()", 0},
        {"CREATE TABLE t3 (a int DEFAULT f_custom() CHECK (ok(a)))", 0},
        {"CREATE FUNCTION g() RETURNS int LANGUAGE sql RETURN f_custom()", 0},
        {"CREATE MATERIALIZED VIEW m AS SELECT f_custom() WITH NO DATA", 0},
        {"EXPLAIN SELECT f_custom()", 0},
        {"EXPLAIN EXECUTE purge(1)", 0},
        {"PREPARE p AS SELECT f_custom()", 0},
        {"ALTER TABLE t DROP COLUMN a", 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_stmt_list_t l = analyze(cases[i].sql, 150000);
        assert_int_equal(l.count, 1);
        if (l.items[0].parse_error || l.items[0].opaque != cases[i].opaque)
            fail_msg("%s: opaque %d, expected %d (%s)", cases[i].sql,
                     l.items[0].opaque, cases[i].opaque,
                     l.items[0].error ? l.items[0].error : "parsed");
        fl_stmt_list_release(&l);
    }
}

static void
test_facts_drop_schema_destroys_the_schema(void **state)
{
    fl_stmt_list_t l = analyze("DROP SCHEMA IF EXISTS old, \"Older\" CASCADE", 150000);
    const fl_stmt_t *st = &l.items[0];

    (void)state;
    assert_string_equal(st->kind, "DROP SCHEMA");
    assert_int_equal(st->destructive, 1);
    assert_int_equal(st->cascades, 1);
    assert_int_equal(st->ndestroys, 2);
    assert_int_equal(st->destroys[0].kind, FL_DESTROY_DROP_SCHEMA);
    assert_string_equal(st->destroys[0].schema, "old");
    assert_null(st->destroys[0].table);
    assert_null(st->destroys[0].column);
    assert_string_equal(st->destroys[1].schema, "Older");
    fl_stmt_list_release(&l);

    l = analyze("DROP SCHEMA old", 150000);
    assert_int_equal(l.items[0].cascades, 0);
    assert_int_equal(l.items[0].ndestroys, 1);
    assert_int_equal(l.items[0].destroys[0].kind, FL_DESTROY_DROP_SCHEMA);
    fl_stmt_list_release(&l);
}

static void
test_facts_cascades(void **state)
{
    static const struct {
        const char *sql;
        int cascades, destructive;
        size_t ndestroys;
    } cases[] = {
        {"DROP TYPE mood CASCADE", 1, 1, 0},
        {"DROP DOMAIN posint CASCADE", 1, 1, 0},
        {"DROP EXTENSION hstore CASCADE", 1, 1, 0},
        {"DROP FUNCTION f(int) CASCADE", 1, 1, 0},
        {"DROP COLLATION c CASCADE", 1, 1, 0},
        {"DROP VIEW v CASCADE", 1, 1, 0},
        {"DROP TABLE t CASCADE", 1, 1, 1},
        {"DROP INDEX i CASCADE", 1, 0, 0},
        {"DROP TRIGGER x ON t CASCADE", 1, 0, 0},
        {"TRUNCATE t CASCADE", 1, 1, 1},
        {"DROP OWNED BY bob", 1, 1, 0},
        {"DROP OWNED BY bob RESTRICT", 1, 1, 0},
        {"ALTER TABLE t DROP COLUMN a CASCADE", 1, 1, 1},
        {"ALTER TABLE t DROP CONSTRAINT k CASCADE", 1, 0, 0},
        /* near misses */
        {"DROP TYPE mood", 0, 0, 0},
        {"DROP EXTENSION hstore RESTRICT", 0, 0, 0},
        {"DROP TABLE t", 0, 1, 1},
        {"TRUNCATE t", 0, 1, 1},
        {"ALTER TABLE t DROP COLUMN a", 0, 1, 1},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_stmt_list_t l = analyze(cases[i].sql, 150000);
        const fl_stmt_t *st = &l.items[0];
        if (st->parse_error || st->cascades != cases[i].cascades ||
            st->destructive != cases[i].destructive ||
            st->ndestroys != cases[i].ndestroys)
            fail_msg("%s: cascades %d destructive %d destroys %zu", cases[i].sql,
                     st->cascades, st->destructive, st->ndestroys);
        fl_stmt_list_release(&l);
    }
}

static void
test_facts_checks(void **state)
{
    fl_stmt_list_t l;
    const fl_check_t *c;

    (void)state;
    l = analyze("ALTER TABLE t ALTER COLUMN a SET NOT NULL", 150000);
    assert_non_null(check(&l.items[0], FL_CHECK_TABLE_EXISTS));
    c = check(&l.items[0], FL_CHECK_NOT_NULL);
    assert_non_null(c);
    assert_string_equal(c->columns[0], "a");
    assert_non_null(check(&l.items[0], FL_CHECK_COLUMN_EXISTS));
    fl_stmt_list_release(&l);

    l = analyze("CREATE UNIQUE INDEX i ON t (a, b)", 150000);
    c = check(&l.items[0], FL_CHECK_UNIQUE);
    assert_non_null(c);
    assert_int_equal(c->ncolumns, 2);
    assert_string_equal(c->columns[1], "b");
    fl_stmt_list_release(&l);

    l = analyze("ALTER TABLE t ADD PRIMARY KEY (id)", 150000);
    c = check(&l.items[0], FL_CHECK_UNIQUE);
    assert_non_null(c);
    assert_string_equal(c->columns[0], "id");
    fl_stmt_list_release(&l);

    l = analyze("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (o, p) REFERENCES s.o (a, b)", 150000);
    c = check(&l.items[0], FL_CHECK_FOREIGN_KEY);
    assert_non_null(c);
    assert_int_equal(c->ncolumns, 2);
    assert_string_equal(c->ref_schema, "s");
    assert_string_equal(c->ref_table, "o");
    assert_string_equal(c->ref_columns[1], "b");
    assert_int_equal(table(&l.items[0], "o")->lock, FL_LOCK_SHARE_ROW_EXCLUSIVE);
    fl_stmt_list_release(&l);

    l = analyze("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES o NOT VALID;\n"
                "ALTER TABLE t VALIDATE CONSTRAINT f", 150000);
    assert_null(check(&l.items[0], FL_CHECK_FOREIGN_KEY));
    c = check(&l.items[1], FL_CHECK_FOREIGN_KEY);
    assert_non_null(c);
    assert_string_equal(c->ref_table, "o");
    fl_stmt_list_release(&l);

    l = analyze("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0 AND b IS NOT NULL)", 150000);
    c = check(&l.items[0], FL_CHECK_CHECK);
    assert_non_null(c);
    assert_string_equal(c->expr, "a > 0 AND b IS NOT NULL");
    fl_stmt_list_release(&l);

    l = analyze("ALTER TABLE t DROP COLUMN a", 150000);
    c = check(&l.items[0], FL_CHECK_DEPENDENTS);
    assert_non_null(c);
    assert_string_equal(c->columns[0], "a");
    fl_stmt_list_release(&l);

    l = analyze("DROP TABLE t", 150000);
    c = check(&l.items[0], FL_CHECK_DEPENDENTS);
    assert_non_null(c);
    assert_int_equal(c->ncolumns, 0);
    fl_stmt_list_release(&l);

    l = analyze("ALTER TABLE t RENAME COLUMN a TO b", 150000);
    c = check(&l.items[0], FL_CHECK_COLUMN_EXISTS);
    assert_non_null(c);
    assert_string_equal(c->columns[0], "a");
    fl_stmt_list_release(&l);
}

/*
 * A table created earlier in the input cannot be checked for existence
 * before the migration, and is not scanned or destroyed as a live one;
 * but its data checks run, just before their statement, on the rows the
 * migration put in it.
 */
static void
test_facts_tables_created_earlier_get_data_checks_only(void **state)
{
    fl_stmt_list_t l = analyze("CREATE TABLE s.t (a int);\n"
                               "ALTER TABLE s.t ALTER COLUMN a SET NOT NULL;\n"
                               "CREATE INDEX i ON s.t (a);\n"
                               "CREATE UNIQUE INDEX u ON s.t (a);\n"
                               "DROP TABLE s.t;\n"
                               "DROP TABLE s.t", 150000);
    size_t i;
    (void)state;
    assert_int_equal(l.count, 6);
    assert_int_equal(l.items[0].tables[0].created, 1);
    assert_string_equal(l.items[0].tables[0].schema, "s");
    for (i = 1; i < 5; i++) {
        assert_null(check(&l.items[i], FL_CHECK_TABLE_EXISTS));
        assert_int_equal(l.items[i].destructive, 0);
        assert_int_equal(l.items[i].scans, 0);
    }
    assert_string_equal(check(&l.items[1], FL_CHECK_NOT_NULL)->columns[0], "a");
    assert_int_equal(l.items[2].nchecks, 0);
    assert_non_null(check(&l.items[3], FL_CHECK_UNIQUE));
    assert_non_null(check(&l.items[4], FL_CHECK_DEPENDENTS));
    /* Named by the statements after the one that created it. */
    assert_int_equal(l.items[1].tables[0].fresh, 1);
    assert_int_equal(l.items[0].tables[0].fresh, 0);
    /* Dropped, then dropped again: the second one drops a live table. */
    assert_int_equal(l.items[5].destructive, 1);
    assert_non_null(check(&l.items[5], FL_CHECK_TABLE_EXISTS));
    assert_int_equal(last(&l)->ntables, 1);
    fl_stmt_list_release(&l);
}

/*
 * After a search_path change an unqualified name may be another table
 * than the one created under that name before it: not fresh (its
 * writes are backed up), and checked as live.  Before, a DELETE from
 * public.users after "SET search_path TO staging; CREATE TABLE users"
 * and RESET was taken for the new table's (found by an audit).
 */
static void
test_facts_search_path_change_forgets_unqualified_created(void **state)
{
    fl_stmt_list_t l = analyze("SET search_path TO staging;\n"
                               "CREATE TABLE users (id int);\n"
                               "DELETE FROM users;\n"
                               "RESET search_path;\n"
                               "DELETE FROM users", 150000);
    (void)state;
    assert_int_equal(l.count, 5);
    assert_int_equal(l.items[2].tables[0].fresh, 1);
    assert_int_equal(l.items[4].tables[0].fresh, 0);
    assert_int_equal(l.items[4].destructive, 1);
    fl_stmt_list_release(&l);
}

/* A unique index's keys (columns, expressions, COLLATE), WHERE and NULLS. */
static void
test_facts_unique_index_keys_predicate_and_nulls(void **state)
{
    fl_stmt_list_t l = analyze(
        "CREATE UNIQUE INDEX i ON t (lower(email), a, b COLLATE \"C\",\n"
        "  (id * 1000 + age)) NULLS NOT DISTINCT WHERE active AND a > 0",
        150000);
    const fl_check_t *c = check(&l.items[0], FL_CHECK_UNIQUE);

    (void)state;
    assert_non_null(c);
    assert_int_equal(c->ncolumns, 4);
    assert_non_null(c->exprs);
    assert_string_equal(c->exprs[0], "lower(email)");
    assert_string_equal(c->columns[0], "lower(email)");
    assert_null(c->exprs[1]);
    assert_string_equal(c->columns[1], "a");
    assert_string_equal(c->exprs[2], "b COLLATE \"C\"");
    assert_string_equal(c->exprs[3], "(id * 1000) + age");
    assert_string_equal(c->predicate, "active AND a > 0");
    assert_int_equal(c->nulls_not_distinct, 1);
    fl_stmt_list_release(&l);

    l = analyze("CREATE UNIQUE INDEX i ON t (a)", 150000);
    c = check(&l.items[0], FL_CHECK_UNIQUE);
    assert_null(c->predicate);
    assert_int_equal(c->nulls_not_distinct, 0);
    assert_null(c->exprs[0]);
    fl_stmt_list_release(&l);
}

/* A primary key counts NULLs in each of its columns, then duplicates. */
static void
test_facts_primary_key_checks_nulls_then_duplicates(void **state)
{
    fl_stmt_list_t l = analyze("ALTER TABLE t ADD PRIMARY KEY (a, b)", 150000);
    const fl_stmt_t *st = &l.items[0];

    (void)state;
    assert_int_equal(st->nchecks, 4);
    assert_int_equal(st->checks[0].kind, FL_CHECK_TABLE_EXISTS);
    assert_int_equal(st->checks[1].kind, FL_CHECK_NOT_NULL);
    assert_string_equal(st->checks[1].columns[0], "a");
    assert_int_equal(st->checks[2].kind, FL_CHECK_NOT_NULL);
    assert_string_equal(st->checks[2].columns[0], "b");
    assert_int_equal(st->checks[3].kind, FL_CHECK_UNIQUE);
    assert_int_equal(st->checks[3].ncolumns, 2);
    fl_stmt_list_release(&l);

    /* NOT NULL PRIMARY KEY counts the NULLs once. */
    l = analyze("ALTER TABLE t ADD COLUMN id int NOT NULL PRIMARY KEY", 150000);
    assert_int_equal(l.items[0].nchecks, 3);
    assert_int_equal(l.items[0].checks[1].kind, FL_CHECK_NOT_NULL);
    assert_int_equal(l.items[0].checks[2].kind, FL_CHECK_UNIQUE);
    fl_stmt_list_release(&l);

    l = analyze("ALTER TABLE t ADD CONSTRAINT u UNIQUE NULLS NOT DISTINCT (a)",
                150000);
    assert_int_equal(check(&l.items[0], FL_CHECK_UNIQUE)->nulls_not_distinct, 1);
    assert_null(check(&l.items[0], FL_CHECK_NOT_NULL));
    fl_stmt_list_release(&l);
}

static const fl_check_col_t *
pending(const fl_check_t *c, const char *name)
{
    for (size_t i = 0; i < c->npending; i++)
        if (strcmp(c->pending[i].name, name) == 0)
            return &c->pending[i];
    fail_msg("no pending column %s", name);
    return NULL;
}

/*
 * The checks of one ALTER TABLE see the columns it adds and retypes, in
 * any order of its sub-commands: their values in the existing rows, or
 * NULL when only the statement can compute them.
 */
static void
test_facts_alter_table_checks_see_its_own_columns(void **state)
{
    fl_stmt_list_t l = analyze(
        "ALTER TABLE t ALTER COLUMN d SET DEFAULT 5,\n"
        "  ADD COLUMN d int DEFAULT 1 UNIQUE,\n"
        "  ADD COLUMN e uuid DEFAULT gen_random_uuid(),\n"
        "  ADD COLUMN f bigserial, ADD COLUMN g text,\n"
        "  ADD COLUMN h int GENERATED ALWAYS AS (d * 2) STORED,\n"
        "  ADD COLUMN k timestamptz DEFAULT now(),\n"
        "  ALTER COLUMN c TYPE bigint USING c * 2,\n"
        "  ALTER COLUMN x TYPE text,\n"
        "  ALTER COLUMN g SET NOT NULL,\n"
        "  ADD CONSTRAINT ch CHECK (c > d)", 150000);
    const fl_stmt_t *st = &l.items[0];
    const fl_check_t *u = check(st, FL_CHECK_UNIQUE);
    const fl_check_t *ch = check(st, FL_CHECK_CHECK);
    size_t i;

    (void)state;
    /* SET DEFAULT and SET NOT NULL come after the columns are added. */
    for (i = 0; i < st->nchecks; i++)
        if (st->checks[i].kind == FL_CHECK_COLUMN_EXISTS)
            assert_true(strcmp(st->checks[i].columns[0], "d") != 0 &&
                        strcmp(st->checks[i].columns[0], "g") != 0);
    assert_string_equal(check(st, FL_CHECK_COLUMN_EXISTS)->columns[0], "c");
    assert_string_equal(check(st, FL_CHECK_NOT_NULL)->columns[0], "g");
    assert_int_equal(check(st, FL_CHECK_NOT_NULL)->npending, 8);
    assert_non_null(u);
    assert_int_equal(u->npending, 8);
    assert_string_equal(pending(u, "d")->value, "1::int");
    assert_int_equal(pending(u, "d")->added, 1);
    assert_null(pending(u, "d")->type);
    assert_null(pending(u, "e")->value);
    assert_null(pending(u, "f")->value);
    assert_int_equal(pending(u, "f")->sequence, 1);
    assert_string_equal(pending(u, "g")->value, "NULL::text");
    assert_string_equal(pending(u, "g")->type, "text");
    assert_null(pending(u, "h")->value);
    assert_string_equal(pending(u, "k")->value, "now()::timestamptz");
    assert_string_equal(pending(u, "c")->value, "CAST(c * 2 AS bigint)");
    assert_int_equal(pending(u, "c")->added, 0);
    assert_string_equal(pending(u, "x")->value, "x::text");
    /* A CHECK names the columns it reads. */
    assert_int_equal(ch->ncolumns, 2);
    assert_string_equal(ch->columns[0], "c");
    assert_string_equal(ch->columns[1], "d");
    fl_stmt_list_release(&l);

    /* DROP DEFAULT and TYPE run before ADD COLUMN: the column must exist. */
    l = analyze("ALTER TABLE t ADD COLUMN d int, ALTER COLUMN d DROP DEFAULT",
                150000);
    assert_string_equal(check(&l.items[0], FL_CHECK_COLUMN_EXISTS)->columns[0],
                        "d");
    fl_stmt_list_release(&l);

    /* No columns added or retyped: nothing pending. */
    l = analyze("ALTER TABLE t ALTER COLUMN a SET NOT NULL", 150000);
    assert_int_equal(check(&l.items[0], FL_CHECK_NOT_NULL)->npending, 0);
    fl_stmt_list_release(&l);
}

/* ADD COLUMN IF NOT EXISTS: its constraints go when the column exists. */
static void
test_facts_add_column_if_not_exists_marks_its_constraints(void **state)
{
    fl_stmt_list_t l = analyze(
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS z int NOT NULL DEFAULT 1"
        " CHECK (z > 0) REFERENCES p, ADD CONSTRAINT u UNIQUE (z)", 150000);
    const fl_stmt_t *st = &l.items[0];

    (void)state;
    assert_string_equal(check(st, FL_CHECK_NOT_NULL)->if_added, "z");
    assert_string_equal(check(st, FL_CHECK_CHECK)->if_added, "z");
    assert_string_equal(check(st, FL_CHECK_CHECK)->columns[0], "z");
    assert_string_equal(check(st, FL_CHECK_FOREIGN_KEY)->if_added, "z");
    assert_null(check(st, FL_CHECK_UNIQUE)->if_added);
    assert_int_equal(pending(check(st, FL_CHECK_UNIQUE), "z")->if_not_exists, 1);
    fl_stmt_list_release(&l);
}

/*
 * A generated column holds its expression over the row, unless that reads
 * a column the statement adds, retypes or drops; a column dropped and
 * added by one statement is new (DROP COLUMN runs first).
 */
static void
test_facts_generated_and_replaced_columns(void **state)
{
    fl_stmt_list_t l = analyze(
        "ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (a * 2) STORED"
        " UNIQUE,\n"
        "  ADD COLUMN h int GENERATED ALWAYS AS (b + 1) STORED,\n"
        "  ALTER COLUMN b TYPE bigint,\n"
        "  ADD COLUMN a2 int DEFAULT 1, DROP COLUMN a2", 150000);
    const fl_check_t *u = check(&l.items[0], FL_CHECK_UNIQUE);

    (void)state;
    assert_string_equal(pending(u, "g")->value, "CAST(a * 2 AS int)");
    assert_null(pending(u, "h")->value);
    assert_int_equal(pending(u, "g")->replaces, 0);
    assert_int_equal(pending(u, "a2")->replaces, 1);
    assert_string_equal(pending(u, "a2")->value, "1::int");
    fl_stmt_list_release(&l);
}

/*
 * ALTER TABLE IF EXISTS and CREATE INDEX IF NOT EXISTS: the checks know
 * the statement may do nothing.
 */
static void
test_facts_if_exists_and_if_not_exists_mark_the_checks(void **state)
{
    fl_stmt_list_t l = analyze(
        "ALTER TABLE IF EXISTS t ADD COLUMN x int NOT NULL,"
        " ADD CONSTRAINT c CHECK (a > 0), DROP COLUMN a;\n"
        "CREATE UNIQUE INDEX IF NOT EXISTS t_a ON t (a);\n"
        "CREATE UNIQUE INDEX t_b ON t (b);\n"
        "ALTER TABLE t ADD CONSTRAINT d CHECK (a > 0);", 150000);

    (void)state;
    assert_int_equal(l.count, 4);
    assert_true(l.items[0].nchecks >= 3);
    for (size_t i = 0; i < l.items[0].nchecks; i++)
        assert_int_equal(l.items[0].checks[i].if_table, 1);
    assert_string_equal(check(&l.items[1], FL_CHECK_UNIQUE)->if_no_relation,
                        "t_a");
    assert_null(check(&l.items[2], FL_CHECK_UNIQUE)->if_no_relation);
    assert_int_equal(check(&l.items[3], FL_CHECK_CHECK)->if_table, 0);
    fl_stmt_list_release(&l);
}

/*
 * ALTER TABLE ONLY and CHECK ... NO INHERIT: PostgreSQL checks the
 * table's own rows, not its inheritance children's, and so must the
 * checks (a plain ALTER TABLE reaches the children).
 */
static void
test_facts_only_and_no_inherit_mark_the_checks(void **state)
{
    fl_stmt_list_t l = analyze(
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL, ADD CHECK (a > 0);\n"
        "ALTER TABLE ONLY t ALTER COLUMN a SET NOT NULL;\n"
        "ALTER TABLE ONLY t ADD CHECK (a > 0) NO INHERIT;\n"
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NO INHERIT;\n"
        "ALTER TABLE ONLY t ADD PRIMARY KEY (a);", 150000);

    (void)state;
    assert_int_equal(l.count, 5);
    assert_int_equal(check(&l.items[0], FL_CHECK_NOT_NULL)->only, 0);
    assert_int_equal(check(&l.items[0], FL_CHECK_CHECK)->only, 0);
    assert_int_equal(check(&l.items[1], FL_CHECK_NOT_NULL)->only, 1);
    assert_int_equal(check(&l.items[2], FL_CHECK_CHECK)->only, 1);
    assert_int_equal(check(&l.items[3], FL_CHECK_CHECK)->only, 1);
    assert_int_equal(check(&l.items[4], FL_CHECK_NOT_NULL)->only, 1);
    fl_stmt_list_release(&l);
}

/*
 * ALTER COLUMN ... TYPE: a RETYPED check of the column, with the new
 * value pending and the constraints the statement drops ("" for its DROP
 * NOT NULL).
 */
static void
test_facts_type_change_checks_what_it_validates_again(void **state)
{
    fl_stmt_list_t l = analyze(
        "ALTER TABLE t ALTER COLUMN a TYPE bigint USING a * 2,"
        " DROP CONSTRAINT t_a_check, ALTER COLUMN a DROP NOT NULL,"
        " ALTER COLUMN b DROP NOT NULL", 150000);
    const fl_check_t *c = check(&l.items[0], FL_CHECK_RETYPED);

    (void)state;
    assert_non_null(c);
    assert_string_equal(c->columns[0], "a");
    assert_string_equal(pending(c, "a")->value, "CAST(a * 2 AS bigint)");
    assert_int_equal(c->ndropped_with, 2);
    assert_string_equal(c->dropped_with[0].name, "t_a_check");
    assert_string_equal(c->dropped_with[1].name, "");
    fl_stmt_list_release(&l);
}

/* DROP TABLE b, a: each table's dependents check knows the other. */
static void
test_facts_drop_tables_know_what_goes_with_them(void **state)
{
    fl_stmt_list_t l = analyze("DROP TABLE b, s.a", 150000);
    const fl_stmt_t *st = &l.items[0];
    const fl_check_t *b = NULL, *a = NULL;
    size_t i;

    (void)state;
    for (i = 0; i < st->nchecks; i++)
        if (st->checks[i].kind == FL_CHECK_DEPENDENTS)
            *(strcmp(st->checks[i].table, "b") == 0 ? &b : &a) = &st->checks[i];
    assert_non_null(b);
    assert_non_null(a);
    assert_int_equal(b->ndropped_with, 1);
    assert_string_equal(b->dropped_with[0].schema, "s");
    assert_string_equal(b->dropped_with[0].name, "a");
    assert_int_equal(a->ndropped_with, 1);
    assert_null(a->dropped_with[0].schema);
    assert_string_equal(a->dropped_with[0].name, "b");
    fl_stmt_list_release(&l);
}

/*
 * row_where: the predicate of a plain UPDATE or DELETE, written back as
 * SQL, when evaluating it again selects the same rows and does nothing
 * else ("true", with row_every, when there is no WHERE clause); otherwise
 * row_why says why not.
 */
static void
test_facts_row_predicate_only_when_it_can_run_twice(void **state)
{
    static const struct {
        const char *sql;
        const char *where;  /* NULL: none, why must mention `why` */
        const char *alias;
        const char *why;
    } cases[] = {
        {"UPDATE t SET v = 1 WHERE id = 42", "id = 42", NULL, NULL},
        {"DELETE FROM s.t AS x WHERE x.n BETWEEN 1 AND 5 AND lower(x.v) = 'a'",
         "x.n BETWEEN 1 AND 5 AND lower(x.v) = 'a'", "x", NULL},
        {"UPDATE t SET v = 1 WHERE id IN (SELECT max(id) FROM u)",
         "id IN (SELECT max(id) FROM u)", NULL, NULL},
        {"DELETE FROM t WHERE created < now() - interval '1 day'",
         "created < (now() - '1 day'::interval)", NULL, NULL},
        {"UPDATE t SET v = 1 WHERE random() < 0.5", NULL, NULL, "random()"},
        {"DELETE FROM t WHERE id = nextval('s')", NULL, NULL, "nextval()"},
        {"DELETE FROM t WHERE f(id)", NULL, NULL, "f()"},
        {"DELETE FROM t WHERE id = pg_advisory_lock(1)", NULL, NULL,
         "pg_advisory_lock()"},
        {"DELETE FROM t WHERE id === 1", NULL, NULL, "operator ==="},
        {"DELETE FROM t", "true", NULL, NULL},
        {"UPDATE s.t AS x SET v = 1", "true", "x", NULL},
        {"UPDATE t SET v = u.v FROM u WHERE u.id = t.id", NULL, NULL, "FROM"},
        {"DELETE FROM t USING u WHERE u.id = t.id", NULL, NULL, "USING"},
        {"WITH x AS (SELECT 1) DELETE FROM t WHERE id = 1", NULL, NULL, "WITH"},
        {"DELETE FROM t WHERE CURRENT OF c", NULL, NULL, "CURRENT OF"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_stmt_list_t l = analyze(cases[i].sql, 150000);
        const fl_stmt_t *st = last(&l);
        if (cases[i].where) {
            assert_non_null(st->row_where);
            assert_string_equal(st->row_where, cases[i].where);
            if (cases[i].alias)
                assert_string_equal(st->row_alias, cases[i].alias);
            else
                assert_null(st->row_alias);
            assert_null(st->row_why);
            /* Every row: no WHERE clause at all. */
            assert_int_equal(st->row_every,
                             strstr(cases[i].sql, "WHERE") == NULL);
        } else {
            assert_null(st->row_where);
            assert_non_null(st->row_why);
            if (strstr(st->row_why, cases[i].why) == NULL)
                fail_msg("%s: \"%s\" does not say %s", cases[i].sql,
                         st->row_why, cases[i].why);
        }
        fl_stmt_list_release(&l);
    }
    {
        /* Not an UPDATE or DELETE: nothing either way. */
        fl_stmt_list_t l = analyze("INSERT INTO t VALUES (1)", 150000);
        assert_null(last(&l)->row_where);
        assert_null(last(&l)->row_why);
        fl_stmt_list_release(&l);
    }
}

static void
test_facts_lock_level_names(void **state)
{
    (void)state;
    assert_string_equal(fl_lock_level_name(FL_LOCK_NONE), "");
    assert_string_equal(fl_lock_level_name(FL_LOCK_SHARE_ROW_EXCLUSIVE), "SHARE ROW EXCLUSIVE");
    assert_string_equal(fl_lock_level_name(FL_LOCK_ACCESS_EXCLUSIVE), "ACCESS EXCLUSIVE");
}

static int
teardown(void **state)
{
    (void)state;
    pg_query_exit();
    return 0;
}

/*
 * Which expressions of a check can run no code but PostgreSQL's
 * (agent/checks.c then runs the check without asking the server what it
 * would call): casts only to the types the grammar names in pg_catalog.
 */
static void
test_facts_expr_runs_nothing_only_for_constants_casts_and_columns(
    void **state)
{
    static const struct {
        const char *sql;
        int nothing;
    } cases[] = {
        {NULL, 1},
        {"7", 1},
        {"7::integer", 1},
        {"CAST(7 AS integer)", 1},
        {"CAST(NULL AS bigint)", 1},
        {"'x'::varchar(10)", 1},
        {"'2026-12-03'::timestamp with time zone", 1},
        {"true", 1},
        {"a", 1},
        {"t.a IS NULL AND NOT (b IS NOT NULL OR c)", 1},
        {"'x'::text", 0},          /* text is found by name */
        {"a::public.dom", 0},
        {"lower(a)", 0},
        {"pg_catalog.lower(a)", 0},
        {"public.norm(a)", 0},
        {"a = 1", 0},
        {"a OPERATOR(public.===) 1", 0},
        {"-a", 0},
        {"(SELECT 1)", 0},
        {"a IN (1, 2)", 0},
        {"CASE WHEN a THEN 1 END", 0},
        {"a COLLATE \"C\"", 0},
        {"1; DROP TABLE t", 0},
        {"((", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (fl_facts_expr_runs_nothing(cases[i].sql) != cases[i].nothing)
            fail_msg("%s: runs nothing should be %d",
                     cases[i].sql ? cases[i].sql : "NULL", cases[i].nothing);
}

/*
 * fl_facts_depth_bound: an upper bound of a statement's parse tree depth
 * from its tokens, loose where PostgreSQL's trees are flat (lists, AND
 * and OR chains, CASE branches) so that such statements are never taken
 * for deep ones, and one more level for each group.
 */
static void
test_facts_depth_bound_counts_chains_not_lists(void **state)
{
    fl_buf_t b = FL_BUF_INIT(0);
    size_t n = 0;
    int line = 0;

    (void)state;
    assert_int_equal(fl_facts_depth_bound("SELECT 1+1+1", NULL), 6);
    /* Each parenthesis is one more than what it holds. */
    assert_int_equal(fl_facts_depth_bound("SELECT f(f(f(1)))", NULL), 8);
    /* Lists, AND chains and CASE branches are side by side. */
    fl_buf_addf(&b, "SELECT 1 FROM t WHERE a = 1");
    for (int i = 0; i < 1000; i++)
        fl_buf_addf(&b, " AND a = 1");
    n = fl_facts_depth_bound(fl_buf_str(&b), NULL);
    assert_true(n > 0 && n < 10);
    fl_buf_reset(&b);
    fl_buf_addf(&b, "SELECT CASE x");
    for (int i = 0; i < 1000; i++)
        fl_buf_addf(&b, " WHEN 1 THEN 2");
    fl_buf_addf(&b, " ELSE 3 END, (1), (2)");
    n = fl_facts_depth_bound(fl_buf_str(&b), NULL);
    assert_true(n > 0 && n < 10);
    /* A chain is as deep as it is long; the deepest statement counts,
     * with the line it ends on. */
    fl_buf_reset(&b);
    fl_buf_addf(&b, "SELECT 1;\nSELECT 1");
    for (int i = 0; i < 1000; i++)
        fl_buf_addf(&b, "+1");
    fl_buf_addf(&b, "\n;\nSELECT 2;\n");
    assert_int_equal(fl_facts_depth_bound(fl_buf_str(&b), &line), 2002);
    assert_int_equal(line, 3);
    /* A chain of UNIONs or JOINs nests across commas and ANDs. */
    fl_buf_reset(&b);
    fl_buf_addf(&b, "SELECT 1, 2");
    for (int i = 0; i < 1000; i++)
        fl_buf_addf(&b, " UNION ALL SELECT 1, 2");
    assert_true(fl_facts_depth_bound(fl_buf_str(&b), NULL) >= 4000);
    fl_buf_reset(&b);
    fl_buf_addf(&b, "SELECT * FROM t0");
    for (int i = 0; i < 1000; i++)
        fl_buf_addf(&b, " JOIN t ON a = 1 AND b = 2");
    assert_true(fl_facts_depth_bound(fl_buf_str(&b), NULL) >= 4000);
    /* What does not scan says nothing (the parser says why). */
    assert_int_equal(fl_facts_depth_bound("SELECT 'unterminated", NULL), 0);
    fl_buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facts_kinds_locks_and_flags),
        cmocka_unit_test(test_facts_enum_add_value_outside_transaction_before_pg12),
        cmocka_unit_test(test_facts_copy_with_the_client),
        cmocka_unit_test(test_facts_what_acts_outside_the_transaction),
        cmocka_unit_test(test_facts_positions_and_splitting),
        cmocka_unit_test(test_facts_parse_error_keeps_the_rest),
        cmocka_unit_test(test_facts_no_text_is_lost_whatever_parses),
        cmocka_unit_test(test_facts_destroys),
        cmocka_unit_test(test_facts_merge_destroys_once_per_matched_action),
        cmocka_unit_test(test_facts_upsert_do_update_destroys_do_nothing_does_not),
        cmocka_unit_test(test_facts_data_modifying_ctes_destroy_as_if_top_level),
        cmocka_unit_test(test_facts_data_modifying_ctes_every_target_once),
        cmocka_unit_test(test_facts_opaque_statements),
        cmocka_unit_test(test_facts_drop_schema_destroys_the_schema),
        cmocka_unit_test(test_facts_cascades),
        cmocka_unit_test(test_facts_checks),
        cmocka_unit_test(test_facts_tables_created_earlier_get_data_checks_only),
        cmocka_unit_test(
            test_facts_search_path_change_forgets_unqualified_created),
        cmocka_unit_test(test_facts_unique_index_keys_predicate_and_nulls),
        cmocka_unit_test(test_facts_primary_key_checks_nulls_then_duplicates),
        cmocka_unit_test(test_facts_alter_table_checks_see_its_own_columns),
        cmocka_unit_test(test_facts_add_column_if_not_exists_marks_its_constraints),
        cmocka_unit_test(test_facts_generated_and_replaced_columns),
        cmocka_unit_test(test_facts_if_exists_and_if_not_exists_mark_the_checks),
        cmocka_unit_test(test_facts_only_and_no_inherit_mark_the_checks),
        cmocka_unit_test(test_facts_type_change_checks_what_it_validates_again),
        cmocka_unit_test(test_facts_drop_tables_know_what_goes_with_them),
        cmocka_unit_test(test_facts_row_predicate_only_when_it_can_run_twice),
        cmocka_unit_test(test_facts_lock_level_names),
        cmocka_unit_test(
            test_facts_expr_runs_nothing_only_for_constants_casts_and_columns),
        cmocka_unit_test(
            test_facts_a_select_of_set_config_calls_sets_the_session),
        cmocka_unit_test(test_facts_depth_bound_counts_chains_not_lists),
    };
    return cmocka_run_group_tests_name("facts", tests, NULL, teardown);
}
