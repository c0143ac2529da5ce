/*
 * Tests of the lint rules (lint.h): for every rule, SQL it must flag at a
 * given line and column, and a near miss it must not flag.  The tables are
 * the rules' usage examples.
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

#include "lint/lint.h"

typedef struct {
    const char *rule;
    const char *sql;
    int line, column; /* expected position of the finding */
    int pg_major;     /* 0 means 15 */
    int in_tx;        /* assume_in_transaction */
} flag_case_t;

typedef struct {
    const char *rule;
    const char *sql;
    int pg_major;
    int in_tx;
} miss_case_t;

/* The statement before the flagged one puts it on line 2. */
#define P "SELECT 1;\n"

static const flag_case_t flags[] = {
    {"adding-field-with-default", P "ALTER TABLE u ADD COLUMN c text DEFAULT random()::text;", 2, 33, 0, 0},
    {"adding-field-with-default", P "ALTER TABLE u ADD COLUMN c int DEFAULT 0;", 2, 32, 10, 0},
    {"adding-foreign-key-constraint", P "ALTER TABLE u ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES o (id);", 2, 19, 0, 0},
    {"adding-not-nullable-field", P "ALTER TABLE u ALTER COLUMN c SET NOT NULL;", 2, 15, 0, 0},
    {"adding-required-field", P "ALTER TABLE u ADD COLUMN c text NOT NULL;", 2, 26, 0, 0},
    {"adding-serial-primary-key-field", P "ALTER TABLE u ADD PRIMARY KEY (id);", 2, 19, 0, 0},
    {"ban-alter-domain-with-add-constraint", P "ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0);", 2, 1, 0, 0},
    {"ban-char-field", P "CREATE TABLE t (c char(4));", 2, 19, 0, 0},
    {"ban-concurrent-index-creation-in-transaction", "BEGIN;\nCREATE INDEX CONCURRENTLY i ON u (c);\nCOMMIT;", 2, 1, 0, 0},
    {"ban-create-domain-with-constraint", P "CREATE DOMAIN d AS int CHECK (VALUE > 0);", 2, 24, 0, 0},
    {"ban-drop-column", P "ALTER TABLE u DROP COLUMN c;", 2, 15, 0, 0},
    {"ban-drop-database", P "DROP DATABASE d;", 2, 1, 0, 0},
    {"ban-drop-not-null", P "ALTER TABLE u ALTER COLUMN c DROP NOT NULL;", 2, 15, 0, 0},
    {"ban-drop-table", P "DROP TABLE u;", 2, 1, 0, 0},
    {"ban-duplicate-column-assignments", P "UPDATE u SET a = 1, b = 2, a = 3;", 2, 28, 0, 0},
    {"ban-duplicate-column-assignments", P "CREATE TABLE t (a text, a text);", 2, 25, 0, 0},
    {"ban-duplicate-column-assignments", P "INSERT INTO u VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1, b = 2;", 2, 63, 0, 0},
    {"ban-duplicate-column-assignments", P "MERGE INTO u USING s ON u.a = s.a WHEN MATCHED THEN UPDATE SET b = 1, b = 2;", 2, 71, 0, 0},
    {"ban-duplicate-column-assignments", P "WITH x AS (UPDATE u SET a = 1, a = 2 RETURNING *) SELECT * FROM x;", 2, 32, 0, 0},
    {"ban-truncate-cascade", P "TRUNCATE u CASCADE;", 2, 1, 0, 0},
    {"ban-uncommitted-transaction", P "BEGIN;\nSELECT 2;", 2, 1, 0, 0},
    {"changing-column-type", P "ALTER TABLE u ALTER COLUMN c TYPE bigint;", 2, 15, 0, 0},
    {"constraint-missing-not-valid", P "ALTER TABLE u ADD CONSTRAINT c CHECK (a > 0);", 2, 19, 0, 0},
    {"disallowed-unique-constraint", P "ALTER TABLE u ADD CONSTRAINT k UNIQUE (a);", 2, 19, 0, 0},
    {"identifier-too-long", P "CREATE TABLE t (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa text);", 2, 17, 0, 0},
    {"prefer-bigint-over-int", P "CREATE TABLE t (a integer);", 2, 19, 0, 0},
    {"prefer-bigint-over-smallint", P "CREATE TABLE t (a smallint);", 2, 19, 0, 0},
    {"prefer-identity", P "CREATE TABLE t (a bigserial);", 2, 19, 0, 0},
    {"prefer-robust-stmts", P "ALTER TABLE u ADD COLUMN c text;", 2, 26, 0, 0},
    {"prefer-text-field", P "CREATE TABLE t (a varchar(10));", 2, 19, 0, 0},
    {"prefer-timestamp-tz", P "CREATE TABLE t (a timestamp);", 2, 19, 0, 0},
    {"renaming-column", P "ALTER TABLE u RENAME COLUMN a TO b;", 2, 1, 0, 0},
    {"renaming-table", P "ALTER TABLE u RENAME TO v;", 2, 1, 0, 0},
    {"require-concurrent-index-creation", P "CREATE INDEX i ON u (a);", 2, 1, 0, 0},
    {"require-concurrent-index-deletion", P "DROP INDEX i;", 2, 1, 0, 0},
    {"require-concurrent-partition-detach", P "ALTER TABLE p DETACH PARTITION p1;", 2, 15, 0, 0},
    {"require-concurrent-reindex", P "REINDEX TABLE u;", 2, 1, 0, 0},
    {"require-enum-value-ordering", P "ALTER TYPE e ADD VALUE 'x';", 2, 1, 0, 0},
    {"require-lock-timeout", P "ALTER TABLE u ADD COLUMN c text;", 2, 1, 0, 0},
    {"require-statement-timeout", P "ALTER TABLE u ADD COLUMN c text;", 2, 1, 0, 0},
    {"transaction-nesting", "BEGIN;\nBEGIN;\nCOMMIT;", 2, 1, 0, 0},
    {"transaction-nesting", P "COMMIT;", 2, 1, 0, 1},
    {"syntax-error", P "CREATE TABEL t (a int);\nSELECT 2;", 2, 8, 0, 0},
    {"unused-ignore", P "-- squawk-ignore ban-drop-table\nSELECT 2;", 2, 1, 0, 0},
    {"enum-value-used-in-transaction", "ALTER TYPE e ADD VALUE 'x' AFTER 'w';\nUPDATE u SET s = 'x';", 2, 18, 0, 1},
    {"validate-constraint-in-transaction", "ALTER TABLE u ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE u VALIDATE CONSTRAINT c;", 2, 15, 0, 1},
    {"ban-vacuum-full", P "VACUUM FULL u;", 2, 1, 0, 0},
    {"ban-cluster", P "CLUSTER u USING i;", 2, 1, 0, 0},
    {"require-concurrent-refresh", P "REFRESH MATERIALIZED VIEW m;", 2, 1, 0, 0},
    {"ban-set-tablespace", P "ALTER TABLE u SET TABLESPACE fast;", 2, 15, 0, 0},
    {"ban-set-tablespace", P "ALTER TABLE ALL IN TABLESPACE pg_default SET TABLESPACE fast;", 2, 1, 0, 0},
    {"require-lock-timeout", P "ALTER TABLE ALL IN TABLESPACE pg_default SET TABLESPACE fast;", 2, 1, 0, 0},
    {"ban-set-logged", P "ALTER TABLE u SET UNLOGGED;", 2, 15, 0, 0},
    /* the CHECK that proved the column was dropped before SET NOT NULL */
    {"adding-not-nullable-field", "ALTER TABLE u ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\nALTER TABLE u VALIDATE CONSTRAINT c;\nALTER TABLE u DROP CONSTRAINT c;\nALTER TABLE u ALTER COLUMN a SET NOT NULL;", 4, 15, 0, 0},
    {"adding-not-nullable-field", "ALTER TABLE u ADD CHECK (a IS NOT NULL);\nALTER TABLE u DROP CONSTRAINT u_a_check;\nALTER TABLE u ALTER COLUMN a SET NOT NULL;", 3, 15, 0, 0},
    /* a function of that name in another schema is not the built-in */
    {"adding-field-with-default", P "ALTER TABLE u ADD COLUMN c text DEFAULT util.now();", 2, 33, 0, 0},
    /* PostgreSQL reads a boolean option's words in any case */
    {"require-concurrent-reindex", P "REINDEX (CONCURRENTLY 'OFF') TABLE u;", 2, 1, 0, 0},
    {"require-concurrent-reindex", P "REINDEX (CONCURRENTLY 'False') TABLE u;", 2, 1, 0, 0},
    /* ROLLBACK undoes a SET made in its transaction */
    {"require-lock-timeout", "BEGIN;\nSET lock_timeout = '2s';\nROLLBACK;\nALTER TABLE u ADD COLUMN c text;", 4, 1, 0, 0},
    /* COMMIT AND CHAIN starts the next transaction at once */
    {"ban-concurrent-index-creation-in-transaction", "BEGIN;\nSELECT 1;\nCOMMIT AND CHAIN;\nCREATE INDEX CONCURRENTLY i ON u (a);\nCOMMIT;", 4, 1, 0, 0},
    /* ELSE'...' is a plain string, not an E'' one: the comment is text */
    {"require-concurrent-index-creation", "UPDATE n SET b = CASE WHEN b = 'x' THEN 'y' ELSE'\\' END WHERE b = '\n-- squawk-ignore-file\n';\nCREATE INDEX i ON n (t);", 4, 1, 0, 0},
    {"ban-alter-domain-with-add-constraint", P "ALTER DOMAIN d SET NOT NULL;", 2, 1, 0, 0},
    /* after a search_path change, users is another table (public's) */
    {"require-concurrent-index-creation", "SET search_path TO staging;\nCREATE TABLE users (id int);\nRESET search_path;\nCREATE INDEX i ON users (id);", 4, 1, 0, 0},
    {"ban-set-logged", P "ALTER TABLE u SET LOGGED;", 2, 15, 0, 0},
    /* IF NOT EXISTS: the table may be live already, and stays as it was */
    {"require-concurrent-index-creation", "CREATE TABLE IF NOT EXISTS t (a text);\nCREATE INDEX i ON t (a);", 2, 1, 0, 0},
    {"adding-field-with-default", "CREATE TABLE IF NOT EXISTS t (a text);\nALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid();", 2, 33, 0, 0},
    {"adding-not-nullable-field", "CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS a;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;", 2, 15, 0, 0},
    {"adding-stored-generated-column", P "ALTER TABLE u ADD COLUMN c int GENERATED ALWAYS AS (a + 1) STORED;", 2, 32, 0, 0},
    {"ban-exclusion-constraint", P "ALTER TABLE u ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&);", 2, 19, 0, 0},
    {"no-transaction-statement-in-transaction", P "DROP INDEX CONCURRENTLY i;", 2, 1, 0, 1},
    {"allow-without-reason", P "-- flotilla:allow ban-drop-table\nDROP TABLE u;", 2, 1, 0, 0},
    {"ban-drop-cascade", P "DROP SCHEMA s CASCADE;", 2, 1, 0, 0},
    {"ban-drop-cascade", P "DROP TYPE mood CASCADE;", 2, 1, 0, 0},
    {"ban-drop-cascade", P "DROP DOMAIN posint CASCADE;", 2, 1, 0, 0},
    {"ban-drop-cascade", P "DROP EXTENSION hstore CASCADE;", 2, 1, 0, 0},
    {"ban-drop-cascade", P "DROP FUNCTION f(int) CASCADE;", 2, 1, 0, 0},
    {"ban-drop-cascade", P "DROP TABLE parent CASCADE;", 2, 1, 0, 0},
    {"ban-drop-owned", P "DROP OWNED BY bob;", 2, 1, 0, 0},
    {"opaque-statement", P "DO $$BEGIN DELETE FROM u; END$$;", 2, 1, 0, 0},
    {"opaque-statement", P "CALL archive_orders(2024);", 2, 1, 0, 0},
    {"opaque-statement", P "EXECUTE purge(1);", 2, 1, 0, 0},
    {"opaque-statement", P "UPDATE u SET a = my_schema.f(b);", 2, 18, 0, 0},
    {"opaque-statement", P "SELECT 1, f_custom();", 2, 11, 0, 0},
    {"unsupported-syntax", P "SELECT * FROM JSON_TABLE('[]', '$[*]' COLUMNS (a int PATH '$.a'));", 2, 1, 17, 0},
};

static const miss_case_t misses[] = {
    {"adding-field-with-default", "ALTER TABLE u ADD COLUMN c int DEFAULT 0;", 0, 0},
    {"adding-field-with-default", "ALTER TABLE u ADD COLUMN c timestamptz DEFAULT now();", 0, 0},
    {"adding-foreign-key-constraint", "ALTER TABLE u ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES o (id) NOT VALID;", 0, 0},
    {"adding-foreign-key-constraint", "CREATE TABLE t (id bigint);\nALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES o (id);", 0, 0},
    {"adding-not-nullable-field", "ALTER TABLE u ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\nALTER TABLE u VALIDATE CONSTRAINT c;\nALTER TABLE u ALTER COLUMN a SET NOT NULL;", 0, 0},
    {"adding-required-field", "ALTER TABLE u ADD COLUMN c text NOT NULL DEFAULT '';", 0, 0},
    {"adding-serial-primary-key-field", "ALTER TABLE u ADD CONSTRAINT p PRIMARY KEY USING INDEX i;", 0, 0},
    {"ban-alter-domain-with-add-constraint", "ALTER DOMAIN d SET DEFAULT 0;", 0, 0},
    {"ban-char-field", "CREATE TABLE t (c text, d \"char\");", 0, 0},
    {"ban-concurrent-index-creation-in-transaction", "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON u (c);", 0, 0},
    {"ban-create-domain-with-constraint", "CREATE DOMAIN d AS int;", 0, 0},
    {"ban-drop-column", "ALTER TABLE u DROP CONSTRAINT IF EXISTS c;", 0, 0},
    {"ban-drop-database", "DROP SCHEMA s;", 0, 0},
    {"ban-drop-not-null", "ALTER TABLE u ALTER COLUMN c DROP DEFAULT;", 0, 0},
    {"ban-drop-table", "DROP VIEW v;", 0, 0},
    {"ban-duplicate-column-assignments", "UPDATE u SET a = 1, b = 2;", 0, 0},
    {"ban-duplicate-column-assignments", "MERGE INTO u USING s ON u.a = s.a WHEN MATCHED THEN UPDATE SET b = 1 WHEN NOT MATCHED THEN INSERT (b) VALUES (1);", 0, 0},
    {"ban-duplicate-column-assignments", "INSERT INTO u (a, b) VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = excluded.b;", 0, 0},
    {"ban-truncate-cascade", "TRUNCATE u;", 0, 0},
    {"ban-uncommitted-transaction", "BEGIN;\nSELECT 2;\nCOMMIT;", 0, 0},
    {"changing-column-type", "CREATE TABLE t (c int);\nALTER TABLE t ALTER COLUMN c TYPE bigint;", 0, 0},
    {"constraint-missing-not-valid", "ALTER TABLE u ADD CONSTRAINT k UNIQUE (a);", 0, 0},
    {"constraint-missing-not-valid", "ALTER TABLE u ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&);", 0, 0},
    {"disallowed-unique-constraint", "ALTER TABLE u ADD CONSTRAINT k UNIQUE USING INDEX i;", 0, 0},
    {"identifier-too-long", "CREATE TABLE t (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa text);", 0, 0},
    {"identifier-too-long", "SELECT 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';", 0, 0},
    {"prefer-bigint-over-int", "CREATE TABLE t (a bigint);", 0, 0},
    {"prefer-bigint-over-smallint", "CREATE TABLE t (a bigint);", 0, 0},
    {"prefer-identity", "CREATE TABLE t (a bigint GENERATED BY DEFAULT AS IDENTITY);", 0, 0},
    {"prefer-robust-stmts", "ALTER TABLE u ADD COLUMN IF NOT EXISTS c text;", 0, 0},
    {"prefer-robust-stmts", "ALTER TABLE u ADD COLUMN c text;", 0, 1},
    {"prefer-text-field", "CREATE TABLE t (a varchar, b text);", 0, 0},
    {"prefer-timestamp-tz", "CREATE TABLE t (a timestamptz);", 0, 0},
    {"renaming-column", "ALTER TABLE u RENAME CONSTRAINT a TO b;", 0, 0},
    {"renaming-table", "ALTER INDEX i RENAME TO j;", 0, 0},
    {"require-concurrent-index-creation", "CREATE TABLE t (a text);\nCREATE INDEX i ON t (a);", 0, 0},
    {"require-concurrent-index-deletion", "DROP INDEX CONCURRENTLY i;", 0, 0},
    {"require-concurrent-partition-detach", "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;", 0, 0},
    {"require-concurrent-partition-detach", "ALTER TABLE p DETACH PARTITION p1;", 13, 0},
    {"require-concurrent-reindex", "REINDEX TABLE CONCURRENTLY u;", 0, 0},
    {"require-enum-value-ordering", "ALTER TYPE e ADD VALUE 'x' BEFORE 'y';", 0, 0},
    {"require-lock-timeout", "SET lock_timeout = '1s';\nALTER TABLE u ADD COLUMN c text;", 0, 0},
    {"require-lock-timeout", "CREATE TABLE t (a text);\nALTER TABLE t ADD COLUMN c text;", 0, 0},
    {"require-statement-timeout", "SET statement_timeout = '1min';\nALTER TABLE u ADD COLUMN c text;", 0, 0},
    {"require-table-schema", "CREATE TABLE t (a text);", 0, 0},
    {"transaction-nesting", "BEGIN;\nSELECT 1;\nCOMMIT;", 0, 0},
    {"syntax-error", "SELECT 'CREATE TABEL x';", 0, 0},
    {"unused-ignore", "-- squawk-ignore ban-drop-table\nDROP TABLE u;", 0, 0},
    {"enum-value-used-in-transaction", "ALTER TYPE e ADD VALUE 'x' AFTER 'w';\nUPDATE u SET s = 'x';", 0, 0},
    {"validate-constraint-in-transaction", "ALTER TABLE u ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nCOMMIT;\nBEGIN;\nALTER TABLE u VALIDATE CONSTRAINT c;\nCOMMIT;", 0, 0},
    {"ban-vacuum-full", "VACUUM u;", 0, 0},
    {"ban-cluster", "ALTER TABLE u SET WITHOUT CLUSTER;", 0, 0},
    {"require-concurrent-refresh", "REFRESH MATERIALIZED VIEW CONCURRENTLY m;", 0, 0},
    {"ban-set-tablespace", "CREATE TABLE t (a text);\nALTER TABLE t SET TABLESPACE fast;", 0, 0},
    {"ban-set-logged", "CREATE TABLE t (a text);\nALTER TABLE t SET UNLOGGED;", 0, 0},
    {"adding-not-nullable-field", "ALTER TABLE u ADD CHECK (a IS NOT NULL);\nALTER TABLE u DROP CONSTRAINT other;\nALTER TABLE u ALTER COLUMN a SET NOT NULL;", 0, 0},
    {"adding-field-with-default", "ALTER TABLE u ADD COLUMN c timestamptz DEFAULT pg_catalog.now();", 0, 0},
    {"require-lock-timeout", "SET lock_timeout = '2s';\nBEGIN;\nSET LOCAL lock_timeout = '5s';\nCOMMIT;\nALTER TABLE u ADD COLUMN c text;", 0, 0},
    {"require-lock-timeout", "BEGIN;\nSET lock_timeout = '2s';\nCOMMIT;\nALTER TABLE u ADD COLUMN c text;", 0, 0},
    {"transaction-nesting", "BEGIN;\nSELECT 1;\nCOMMIT AND CHAIN;\nSELECT 2;\nCOMMIT;", 0, 0},
    {"require-concurrent-index-creation", "SET search_path TO staging;\nCREATE TABLE users (id int);\nCREATE INDEX i ON users (id);", 0, 0},
    {"adding-stored-generated-column", "CREATE TABLE t (a int, c int GENERATED ALWAYS AS (a + 1) STORED);", 0, 0},
    {"ban-exclusion-constraint", "CREATE TABLE t (r tstzrange, EXCLUDE USING gist (r WITH &&));", 0, 0},
    {"no-transaction-statement-in-transaction", "DROP INDEX CONCURRENTLY i;", 0, 0},
    {"allow-without-reason", "-- flotilla:allow ban-drop-table the table moved to the archive in 2.1\nDROP TABLE u;", 0, 0},
    {"ban-drop-cascade", "DROP SCHEMA s;", 0, 0},
    {"ban-drop-cascade", "DROP TYPE mood RESTRICT;", 0, 0},
    {"ban-drop-cascade", "DROP TRIGGER x ON u CASCADE;", 0, 0},
    {"ban-drop-owned", "REASSIGN OWNED BY bob TO alice;", 0, 0},
    {"opaque-statement", "UPDATE u SET a = lower(b) WHERE pg_catalog.length(b) > 2;", 0, 0},
    {"opaque-statement", "CREATE VIEW v AS SELECT f_custom();", 0, 0},
    {"unsupported-syntax", "SELECT * FROM JSON_TABLE('[]', '$[*]' COLUMNS (a int PATH '$.a'));", 0, 0},
};

static void
lint_case(fl_finding_list_t *out, const char *sql, int pg_major, int in_tx)
{
    fl_lint_options_t opts;
    fl_error_t err = FL_ERROR_INIT;

    fl_lint_options_init(&opts);
    if (pg_major)
        opts.pg_version = pg_major * 10000;
    opts.assume_in_transaction = in_tx;
    assert_int_equal(fl_lint_sql(out, sql, "t.sql", 0, &opts, &err), 0);
    fl_error_clear(&err);
}

static void
test_rules_flag_at_position(void **state)
{
    size_t i, k;
    int bad = 0;

    (void)state;
    for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        fl_finding_list_t out = {NULL, 0};
        int hit = 0;
        lint_case(&out, flags[i].sql, flags[i].pg_major, flags[i].in_tx);
        for (k = 0; k < out.count; k++)
            if (strcmp(out.items[k].rule, flags[i].rule) == 0) {
                if (out.items[k].line != flags[i].line ||
                    out.items[k].column != flags[i].column)
                    bad++, print_error("%s: at %d:%d, expected %d:%d in: %s\n",
                                       flags[i].rule, out.items[k].line,
                                       out.items[k].column, flags[i].line,
                                       flags[i].column, flags[i].sql);
                assert_non_null(out.items[k].message);
                assert_non_null(out.items[k].help);
                hit = 1;
                break;
            }
        if (!hit)
            bad++, print_error("%s not flagged in: %s\n", flags[i].rule,
                               flags[i].sql);
        fl_finding_list_release(&out);
    }
    assert_int_equal(bad, 0);
}

static void
test_rules_near_misses_not_flagged(void **state)
{
    size_t i, k;
    int bad = 0;

    (void)state;
    for (i = 0; i < sizeof(misses) / sizeof(misses[0]); i++) {
        fl_finding_list_t out = {NULL, 0};
        lint_case(&out, misses[i].sql, misses[i].pg_major, misses[i].in_tx);
        for (k = 0; k < out.count; k++)
            if (strcmp(out.items[k].rule, misses[i].rule) == 0)
                bad++, print_error("%s flagged at %d:%d in: %s\n", misses[i].rule,
                         out.items[k].line, out.items[k].column, misses[i].sql);
        fl_finding_list_release(&out);
    }
    assert_int_equal(bad, 0);
}

static void
test_rules_every_rule_has_cases(void **state)
{
    size_t n, i, k;
    const fl_lint_rule_t *rules = fl_lint_rules(&n);

    (void)state;
    for (i = 0; i < n; i++) {
        int f = 0, m = 0;
        if (strncmp(rules[i].id, "migration-", 10) == 0 ||
            strcmp(rules[i].id, "down-needs-backup") == 0 ||
            strcmp(rules[i].id, "invalid-migration") == 0 || /* test_cli_lint */
            strcmp(rules[i].id, "require-table-schema") == 0)
            continue; /* tested below */
        for (k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
            f |= strcmp(flags[k].rule, rules[i].id) == 0;
        for (k = 0; k < sizeof(misses) / sizeof(misses[0]); k++)
            m |= strcmp(misses[k].rule, rules[i].id) == 0;
        if (!f || !m)
            fail_msg("rule %s lacks a %s case", rules[i].id, f ? "near-miss" : "flag");
    }
}

static void
test_rules_opt_in_schema_rule(void **state)
{
    fl_lint_options_t opts;
    fl_finding_list_t out = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    fl_lint_options_init(&opts);
    assert_int_equal(fl_lint_options_set(&opts, "require-table-schema", NULL, &err), 0);
    assert_int_equal(fl_lint_sql(&out, P "CREATE TABLE t (a text);\nCREATE TABLE s.t (a text);",
                                 "f.sql", 10, &opts, &err), 0);
    assert_int_equal(out.count > 0, 1);
    {
        size_t k, hits = 0;
        for (k = 0; k < out.count; k++)
            if (strcmp(out.items[k].rule, "require-table-schema") == 0) {
                assert_int_equal(out.items[k].line, 12); /* base_line added */
                assert_int_equal(out.items[k].column, 14);
                hits++;
            }
        assert_int_equal(hits, 1);
    }
    fl_finding_list_release(&out);
    assert_int_equal(fl_lint_options_set(&opts, "no-such-rule", NULL, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "no-such-rule"));
    fl_error_clear(&err);
    assert_int_equal(fl_lint_options_set(&opts, "ban-drop-table", "loud", &err), FL_EINVAL);
    fl_error_clear(&err);
}

static void
test_rules_suppressions(void **state)
{
    fl_finding_list_t out = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    const char *sql =
        "-- flotilla:allow-file require-lock-timeout set by the runner\n"
        "-- squawk-ignore-file require-statement-timeout\n"
        "DROP TABLE a; -- flotilla:allow ban-drop-table archived in 2.1\n"
        "-- squawk-ignore ban-drop-table,prefer-robust-stmts\n"
        "DROP TABLE b;\n"
        "DROP TABLE IF EXISTS c;\n";
    size_t k;

    (void)state;
    assert_int_equal(fl_lint_sql(&out, sql, "s.sql", 0, NULL, &err), 0);
    for (k = 0; k < out.count; k++) {
        const fl_finding_t *f = &out.items[k];
        assert_string_not_equal(f->rule, "require-lock-timeout");
        assert_string_not_equal(f->rule, "require-statement-timeout");
        assert_string_not_equal(f->rule, "unused-ignore");
        if (strcmp(f->rule, "ban-drop-table") == 0)
            assert_int_equal(f->line, 6);
    }
    fl_finding_list_release(&out);
}

/* The rule's finding in out, which must be the only one of that rule. */
static const fl_finding_t *
only_finding(const fl_finding_list_t *out, const char *rule)
{
    const fl_finding_t *found = NULL;
    size_t k;
    for (k = 0; k < out->count; k++)
        if (strcmp(out->items[k].rule, rule) == 0) {
            assert_null(found);
            found = &out->items[k];
        }
    return found;
}

/*
 * Lints sql and checks the only finding of rule in it: severity, position
 * and the words its message must hold (NULL-terminated).
 */
static void
expect_finding(const char *sql, const char *rule, fl_lint_severity sev,
               int line, int column, ...)
{
    fl_finding_list_t out = {NULL, 0};
    const fl_finding_t *f;
    const char *word;
    va_list ap;

    lint_case(&out, sql, 0, 0);
    f = only_finding(&out, rule);
    if (!f)
        fail_msg("%s not flagged in: %s", rule, sql);
    assert_int_equal(f->severity, sev);
    assert_int_equal(f->line, line);
    assert_int_equal(f->column, column);
    va_start(ap, column);
    while ((word = va_arg(ap, const char *)) != NULL)
        if (!strstr(f->message, word))
            fail_msg("%s: \"%s\" not in: %s", rule, word, f->message);
    va_end(ap);
    fl_finding_list_release(&out);
}

static void
test_rules_opaque_statement_names_the_function(void **state)
{
    (void)state;
    expect_finding("UPDATE u SET a = lower(b), c = billing.recalc(c, helper());",
                   "opaque-statement", FL_LINT_WARNING, 1, 32,
                   "\"billing.recalc\"", "cannot be analysed",
                   "before-commit check", NULL);
    expect_finding("CALL ops.archive_orders(2024);", "opaque-statement",
                   FL_LINT_WARNING, 1, 1, "\"ops.archive_orders\"", NULL);
    expect_finding("SELECT 1;\nEXPLAIN ANALYZE EXECUTE purge(1);", "opaque-statement",
                   FL_LINT_WARNING, 2, 1, "prepared statement \"purge\"", NULL);
    expect_finding("EXPLAIN (ANALYZE) SELECT f_custom();", "opaque-statement",
                   FL_LINT_WARNING, 1, 26, "\"f_custom\"", NULL);
    assert_non_null(strstr(fl_lint_rule_find("opaque-statement")->help,
                           "write the statements out"));
}

static void
test_rules_drop_cascade_and_owned_name_what_is_dropped(void **state)
{
    fl_finding_list_t out = {NULL, 0};

    (void)state;
    expect_finding("DROP TYPE public.mood, status CASCADE;", "ban-drop-cascade",
                   FL_LINT_ERROR, 1, 1,
                   "DROP TYPE \"public.mood\", \"status\" CASCADE",
                   "columns and tables", NULL);
    expect_finding("DROP SCHEMA IF EXISTS archive CASCADE;", "ban-drop-cascade",
                   FL_LINT_ERROR, 1, 1, "\"archive\"", "every table", NULL);
    expect_finding("SELECT 1;\n  DROP OWNED BY bob, CURRENT_USER CASCADE;",
                   "ban-drop-owned", FL_LINT_ERROR, 2, 3,
                   "\"bob\", CURRENT_USER", "tables included", NULL);
    assert_non_null(strstr(fl_lint_rule_find("ban-drop-cascade")->help,
                           "explicitly first"));
    /* DROP OWNED is not a DROP ... CASCADE of named objects. */
    lint_case(&out, "DROP OWNED BY bob CASCADE;", 0, 0);
    assert_null(only_finding(&out, "ban-drop-cascade"));
    fl_finding_list_release(&out);
}

static void
test_rules_new_rules_honour_suppressions(void **state)
{
    fl_finding_list_t out = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    const char *sql =
        "-- flotilla:allow ban-drop-cascade its only column went in 0041\n"
        "DROP TYPE mood CASCADE;\n"
        "DROP OWNED BY bob; -- flotilla:allow ban-drop-owned bob owned only views\n"
        "-- squawk-ignore opaque-statement\n"
        "SELECT audit.log_change();\n"
        "SELECT audit.log_change();\n";
    fl_lint_migration_t m = {"0002_x.sql",
                             "-- flotilla:options allow=ban-drop-cascade the schema is empty since 0040\n",
                             "DROP SCHEMA old CASCADE;\n", 3,
                             "CREATE SCHEMA old;\n", 5, 0, 0, NULL, 0, 0};
    size_t k;

    (void)state;
    assert_int_equal(fl_lint_sql(&out, sql, "s.sql", 0, NULL, &err), 0);
    for (k = 0; k < out.count; k++) {
        assert_string_not_equal(out.items[k].rule, "ban-drop-cascade");
        assert_string_not_equal(out.items[k].rule, "ban-drop-owned");
        assert_string_not_equal(out.items[k].rule, "unused-ignore");
        if (strcmp(out.items[k].rule, "opaque-statement") == 0)
            assert_int_equal(out.items[k].line, 6);
    }
    assert_non_null(only_finding(&out, "opaque-statement"));
    fl_finding_list_release(&out);

    assert_int_equal(fl_lint_migration(&out, &m, NULL, &err), 0);
    for (k = 0; k < out.count; k++) {
        assert_string_not_equal(out.items[k].rule, "ban-drop-cascade");
        assert_string_not_equal(out.items[k].rule, "unused-ignore");
    }
    fl_finding_list_release(&out);
}

static void
test_rules_migration_checks(void **state)
{
    fl_finding_list_t out = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    fl_lint_migration_t m = {"0001_x.sql",
                             "-- flotilla:options lock_timeout=2s statement_timeout=1min allow=ban-drop-column the app stopped reading it\n",
                             "SELECT 1;\nALTER TABLE u DROP COLUMN c;\n", 3, NULL, 0, 0, 0, NULL, 0, 0};
    size_t k;
    int missing = 0, backup = 0;

    (void)state;
    assert_int_equal(fl_lint_migration(&out, &m, NULL, &err), 0);
    for (k = 0; k < out.count; k++) {
        assert_string_not_equal(out.items[k].rule, "ban-drop-column");
        assert_string_not_equal(out.items[k].rule, "require-lock-timeout");
        assert_string_not_equal(out.items[k].rule, "prefer-robust-stmts");
        if (strcmp(out.items[k].rule, "migration-missing-down") == 0) {
            assert_int_equal(out.items[k].line, 3);
            missing = 1;
        }
    }
    assert_int_equal(missing, 1);
    fl_finding_list_release(&out);

    m.down = "ALTER TABLE u ADD COLUMN c text;\n";
    m.down_line = 6;
    assert_int_equal(fl_lint_migration(&out, &m, NULL, &err), 0);
    for (k = 0; k < out.count; k++) {
        assert_string_not_equal(out.items[k].rule, "migration-missing-down");
        if (strcmp(out.items[k].rule, "down-needs-backup") == 0) {
            assert_int_equal(out.items[k].line, 4);
            assert_int_equal(out.items[k].column, 1);
            backup = 1;
        }
    }
    assert_int_equal(backup, 1);
    fl_finding_list_release(&out);

    /* A dropped schema is named: no table stands in the statement. */
    m.up = "DROP SCHEMA old CASCADE;\n";
    backup = 0;
    assert_int_equal(fl_lint_migration(&out, &m, NULL, &err), 0);
    for (k = 0; k < out.count; k++)
        if (strcmp(out.items[k].rule, "down-needs-backup") == 0) {
            assert_non_null(strstr(out.items[k].message, "\"old\""));
            backup = 1;
        }
    assert_int_equal(backup, 1);
    fl_finding_list_release(&out);

    /* Near miss: nothing destroyed, nothing to back up. */
    m.up = "CREATE TABLE IF NOT EXISTS t (a text);\n";
    assert_int_equal(fl_lint_migration(&out, &m, NULL, &err), 0);
    for (k = 0; k < out.count; k++)
        assert_string_not_equal(out.items[k].rule, "down-needs-backup");
    fl_finding_list_release(&out);
}

static void
test_rules_never_crash_on_garbage(void **state)
{
    static const char *const inputs[] = {
        "", ";;;", "'unterminated", "/* open comment", "$$ no end",
        "CREATE TABLE (", "\xff\xfe garbage ;", "ALTER TABLE;", "-- only a comment",
        "SELECT 1; CREATE TABEL; SELECT 2; DROP", "\"" ,
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        fl_finding_list_t out = {NULL, 0};
        assert_int_equal(fl_lint_sql(&out, inputs[i], "g.sql", 0, NULL, NULL), 0);
        fl_finding_list_release(&out);
    }
}

/* Lints sql with opts and returns how many findings of rule it has. */
static size_t
count_rule(const char *sql, const fl_lint_options_t *opts, const char *rule,
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

static const fl_finding_t *
find_rule(const fl_finding_list_t *out, const char *rule)
{
    size_t k;
    for (k = 0; k < out->count; k++)
        if (strcmp(out->items[k].rule, rule) == 0)
            return &out->items[k];
    return NULL;
}

/*
 * Statements that take ACCESS EXCLUSIVE on a table (pg_locks on
 * PostgreSQL 15, tests/integration/test_lint_pg.c) need a lock timeout.
 */
static void
test_rules_lock_timeout_covers_table_locking_ddl(void **state)
{
    static const char *const locking[] = {
        "DROP INDEX users_email_idx;",
        "DROP TRIGGER audit ON users;",
        "CREATE POLICY tenant ON users USING (tenant_id = 1);",
        "ALTER POLICY tenant ON users USING (tenant_id = 2);",
        "DROP POLICY tenant ON users;",
        "CREATE RULE keep AS ON DELETE TO users DO INSTEAD NOTHING;",
        "DROP RULE keep ON users;",
        "ALTER TRIGGER audit ON users RENAME TO audit2;",
    };
    static const char *const not_locking[] = {
        "DROP INDEX CONCURRENTLY users_email_idx;",
        "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nDROP INDEX t_a;",
        "CREATE TABLE t (a int);\nCREATE POLICY p ON t USING (true);",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(locking) / sizeof(locking[0]); i++) {
        if (count_rule(locking[i], NULL, "require-lock-timeout", NULL) != 1)
            fail_msg("require-lock-timeout missed: %s", locking[i]);
        assert_int_equal(count_rule(locking[i], NULL, "require-statement-timeout",
                                    NULL), 1);
    }
    for (i = 0; i < sizeof(not_locking) / sizeof(not_locking[0]); i++)
        if (count_rule(not_locking[i], NULL, "require-lock-timeout", NULL) != 0)
            fail_msg("require-lock-timeout flagged: %s", not_locking[i]);
}

/* lock_timeout 0 means no timeout (SHOW lock_timeout says 0 after each). */
static void
test_rules_lock_timeout_zero_or_default_is_none(void **state)
{
    static const char *const none[] = {
        "SET lock_timeout = 0;\nDROP INDEX i;",
        "SET lock_timeout = '0';\nDROP INDEX i;",
        "SET lock_timeout = '0s';\nDROP INDEX i;",
        "SET lock_timeout TO DEFAULT;\nDROP INDEX i;",
        "SET lock_timeout = '2s';\nRESET lock_timeout;\nDROP INDEX i;",
        "SET lock_timeout = '2s';\nRESET ALL;\nDROP INDEX i;",
        "SET lock_timeout = '2s';\nSET lock_timeout = 0;\nDROP INDEX i;",
        "SET LOCAL lock_timeout = '2s';\nDROP INDEX i;", /* no transaction */
        "SELECT set_config('lock_timeout', '0', false);\nDROP INDEX i;",
    };
    static const char *const set[] = {
        "SET lock_timeout = '2s';\nDROP INDEX i;",
        "SET lock_timeout = 2000;\nDROP INDEX i;",
        "SELECT set_config('lock_timeout', '2s', false);\nDROP INDEX i;",
        "BEGIN;\nSET LOCAL lock_timeout = '2s';\nDROP INDEX i;\nCOMMIT;",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        if (count_rule(none[i], NULL, "require-lock-timeout", NULL) != 1)
            fail_msg("timeout taken as set in: %s", none[i]);
    for (i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        if (count_rule(set[i], NULL, "require-lock-timeout", NULL) != 0)
            fail_msg("timeout not taken as set in: %s", set[i]);
    /* SET LOCAL ends with the transaction */
    assert_int_equal(count_rule("BEGIN;\nSET LOCAL lock_timeout = '2s';\n"
                                "COMMIT;\nDROP INDEX i;", NULL,
                                "require-lock-timeout", NULL), 1);
}

/* The fix is SQL the PostgreSQL 15 grammar parses. */
static void
assert_fix_parses(const fl_finding_t *f, const char *must_hold)
{
    PgQueryParseResult r;

    assert_non_null(f);
    if (!f->fix)
        fail_msg("%s: no fix", f->rule);
    r = pg_query_parse(f->fix);
    if (r.error)
        fail_msg("fix does not parse: %s\n%s", r.error->message, f->fix);
    pg_query_free_parse_result(r);
    if (!strstr(f->fix, must_hold))
        fail_msg("\"%s\" not in fix:\n%s", must_hold, f->fix);
    assert_non_null(strstr(f->fix, "NOT VALID"));
    assert_non_null(strstr(f->fix, "VALIDATE CONSTRAINT"));
}

/*
 * ADD COLUMN ... REFERENCES: PostgreSQL 15 checks no row of a new column
 * without a DEFAULT clause (all NULL), and checks every row with any
 * DEFAULT, NULL included (pg_stat_user_tables.seq_tup_read in
 * tests/integration/test_lint_pg.c).  One finding per hazard, with a fix
 * that parses.
 */
static void
test_rules_foreign_key_once_where_it_scans_with_a_fix(void **state)
{
    fl_finding_list_t out = {NULL, 0};
    const fl_finding_t *f;

    (void)state;
    assert_int_equal(count_rule("ALTER TABLE c ADD COLUMN p_id bigint REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", NULL), 0);
    assert_int_equal(count_rule("ALTER TABLE c ADD COLUMN p_id bigint REFERENCES p (id);",
                                NULL, "constraint-missing-not-valid", NULL), 0);
    assert_int_equal(count_rule("ALTER TABLE c ADD COLUMN p_id bigint DEFAULT 1 REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", &out), 1);
    assert_null(find_rule(&out, "constraint-missing-not-valid"));
    f = find_rule(&out, "adding-foreign-key-constraint");
    assert_int_equal(f->severity, FL_LINT_ERROR);
    assert_fix_parses(f, "ADD COLUMN p_id bigint DEFAULT 1");
    assert_non_null(strstr(f->fix, "c_p_id_fkey"));
    fl_finding_list_release(&out);
    assert_int_equal(count_rule("ALTER TABLE c ADD COLUMN p_id bigint DEFAULT NULL REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", NULL), 1);

    assert_int_equal(count_rule("ALTER TABLE c ADD CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE CASCADE;",
                                NULL, "adding-foreign-key-constraint", &out), 1);
    assert_null(find_rule(&out, "constraint-missing-not-valid"));
    assert_fix_parses(find_rule(&out, "adding-foreign-key-constraint"),
                      "ON DELETE CASCADE");
    fl_finding_list_release(&out);
}

/* A table filled by CREATE TABLE AS is scanned when a key is validated,
 * while the referenced (live) table is locked. */
static void
test_rules_foreign_key_on_table_filled_in_the_file(void **state)
{
    (void)state;
    assert_int_equal(count_rule("CREATE TABLE c AS SELECT id AS p_id FROM old_c;\n"
                                "ALTER TABLE c ADD CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", NULL), 1);
    assert_int_equal(count_rule("CREATE TABLE c (p_id bigint);\n"
                                "INSERT INTO c SELECT id FROM old_c;\n"
                                "ALTER TABLE c ADD CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", NULL), 1);
    assert_int_equal(count_rule("CREATE TABLE c (p_id bigint);\n"
                                "ALTER TABLE c ADD CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", NULL), 0);
    assert_int_equal(count_rule("CREATE TABLE c AS SELECT id AS p_id FROM old_c WITH NO DATA;\n"
                                "ALTER TABLE c ADD CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES p (id);",
                                NULL, "adding-foreign-key-constraint", NULL), 0);
}

static void
test_rules_unnamed_concurrent_index_message(void **state)
{
    fl_finding_list_t out = {NULL, 0};
    const fl_finding_t *f;

    (void)state;
    assert_int_equal(count_rule("CREATE INDEX CONCURRENTLY ON t (a);", NULL,
                                "prefer-robust-stmts", &out), 1);
    f = find_rule(&out, "prefer-robust-stmts");
    assert_null(strstr(f->message, "IF NOT EXISTS CONCURRENTLY"));
    assert_non_null(strstr(f->message, "unnamed"));
    assert_non_null(strstr(f->help, "name the index"));
    assert_null(strstr(f->help, "transaction"));
    fl_finding_list_release(&out);
    assert_int_equal(count_rule("CREATE INDEX CONCURRENTLY t_a ON t (a);", NULL,
                                "prefer-robust-stmts", &out), 1);
    assert_non_null(strstr(find_rule(&out, "prefer-robust-stmts")->message,
                           "\"t_a\""));
    fl_finding_list_release(&out);
}

/* timestamp -> timestamptz under TimeZone UTC keeps the relfilenode on
 * PostgreSQL 15 (tests/integration/test_lint_pg.c). */
static void
test_rules_timestamptz_change_notes_utc(void **state)
{
    fl_finding_list_t out = {NULL, 0};

    (void)state;
    assert_int_equal(count_rule("ALTER TABLE t ALTER COLUMN at TYPE timestamptz;",
                                NULL, "changing-column-type", &out), 1);
    assert_non_null(strstr(find_rule(&out, "changing-column-type")->message,
                           "TimeZone is UTC"));
    fl_finding_list_release(&out);
    assert_int_equal(count_rule("SET TimeZone = 'UTC';\nALTER TABLE t ALTER COLUMN at "
                                "TYPE timestamp with time zone;", NULL,
                                "changing-column-type", &out), 1);
    assert_non_null(strstr(find_rule(&out, "changing-column-type")->message,
                           "as this file sets it"));
    fl_finding_list_release(&out);
    assert_int_equal(count_rule("ALTER TABLE t ALTER COLUMN a TYPE bigint;", NULL,
                                "changing-column-type", &out), 1);
    assert_null(strstr(find_rule(&out, "changing-column-type")->message, "UTC"));
    fl_finding_list_release(&out);
}

static void
test_rules_squawk_alias_and_pg_versions(void **state)
{
    fl_lint_options_t opts;
    fl_error_t err = FL_ERROR_INIT;
    int v = 0;

    (void)state;
    assert_int_equal(count_rule("-- squawk-ignore prefer-timestamptz\n"
                                "CREATE TABLE t (a timestamp);", NULL,
                                "prefer-timestamp-tz", NULL), 0);
    assert_int_equal(count_rule("-- squawk-ignore prefer-timestamptz\n"
                                "CREATE TABLE t (a timestamp);", NULL,
                                "unused-ignore", NULL), 0);
    assert_ptr_equal(fl_lint_rule_find("prefer-timestamptz"),
                     fl_lint_rule_find("prefer-timestamp-tz"));
    fl_lint_options_init(&opts);
    assert_int_equal(fl_lint_options_set(&opts, "prefer-timestamptz", "off", &err), 0);

    assert_int_equal(fl_lint_parse_pg_version(&v, "16", &err), 0);
    assert_int_equal(v, 160000);
    assert_int_equal(fl_lint_parse_pg_version(&v, "15.4", &err), 0);
    assert_int_equal(v, 150004);
    assert_int_equal(fl_lint_parse_pg_version(&v, "110002", &err), 0);
    assert_int_equal(v, 110002);
    assert_int_equal(fl_lint_parse_pg_version(&v, "9", &err), FL_EINVAL);
    fl_error_clear(&err);
    assert_int_equal(fl_lint_parse_pg_version(&v, "42", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "\"42\""));
    assert_non_null(strstr(err.hint, "10 to 18"));
    fl_error_clear(&err);
    assert_int_equal(fl_lint_parse_pg_version(&v, "15x", &err), FL_EINVAL);
    fl_error_clear(&err);
}

static void
test_rules_newer_syntax_is_named(void **state)
{
    fl_finding_list_t out = {NULL, 0};
    const fl_finding_t *f;
    fl_lint_options_t opts;

    (void)state;
    assert_int_equal(count_rule("ALTER TABLE t ADD CONSTRAINT t_a_nn NOT NULL a NOT VALID;",
                                NULL, "syntax-error", &out), 1);
    f = find_rule(&out, "syntax-error");
    assert_non_null(strstr(f->message, "NOT NULL ... NOT VALID is PostgreSQL 18 syntax"));
    fl_finding_list_release(&out);
    assert_int_equal(count_rule("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN "
                                "DELETE RETURNING t.id;", NULL, "syntax-error", &out), 1);
    assert_non_null(strstr(find_rule(&out, "syntax-error")->message, "PostgreSQL 17"));
    fl_finding_list_release(&out);
    assert_int_equal(count_rule("SELECT 1_000_000;", NULL, "syntax-error", &out), 1);
    assert_non_null(strstr(find_rule(&out, "syntax-error")->message, "PostgreSQL 16"));
    fl_finding_list_release(&out);
    /* a plain typo names no version */
    assert_int_equal(count_rule("CREATE TABEL t (a int);", NULL, "syntax-error", &out), 1);
    assert_null(strstr(find_rule(&out, "syntax-error")->message, "syntax, newer"));
    fl_finding_list_release(&out);
    /* on a target that has it, a warning that it was not checked */
    fl_lint_options_init(&opts);
    opts.pg_version = 180000;
    assert_int_equal(count_rule("ALTER TABLE t ADD COLUMN c int GENERATED ALWAYS AS (a * 2) VIRTUAL;",
                                &opts, "unsupported-syntax", &out), 1);
    assert_int_equal(find_rule(&out, "unsupported-syntax")->severity, FL_LINT_WARNING);
    assert_null(find_rule(&out, "syntax-error"));
    fl_finding_list_release(&out);
}

/* Findings inside a multi-line ALTER TABLE point at their sub-command. */
static void
test_rules_positions_on_sub_commands(void **state)
{
    static const char sql[] =
        "ALTER TABLE users\n"
        "    ADD COLUMN note text,\n"
        "    ALTER COLUMN email SET NOT NULL,\n"
        "    ALTER COLUMN name TYPE varchar(200),\n"
        "    DROP COLUMN legacy;\n";
    fl_finding_list_t out = {NULL, 0};
    const fl_finding_t *f;

    (void)state;
    assert_int_equal(count_rule(sql, NULL, "adding-not-nullable-field", &out), 1);
    f = find_rule(&out, "adding-not-nullable-field");
    assert_int_equal(f->line, 3);
    assert_int_equal(f->column, 5);
    assert_string_equal(f->excerpt, "    ALTER COLUMN email SET NOT NULL,");
    assert_int_equal(f->excerpt_column, 5);
    assert_int_equal(f->end_line, 3);
    assert_int_equal(f->end_column, 36);
    f = find_rule(&out, "changing-column-type");
    assert_int_equal(f->line, 4);
    assert_int_equal(f->column, 5);
    f = find_rule(&out, "prefer-text-field");
    assert_int_equal(f->line, 4);
    assert_int_equal(f->column, 28);
    f = find_rule(&out, "ban-drop-column");
    assert_int_equal(f->line, 5);
    assert_int_equal(f->column, 5);
    assert_int_equal(f->end_column, 23);
    f = find_rule(&out, "require-lock-timeout"); /* the statement's own */
    assert_int_equal(f->line, 1);
    assert_int_equal(f->column, 1);
    assert_int_equal(f->end_line, 5);
    fl_finding_list_release(&out);

    /* commas in parentheses, strings and comments do not split */
    assert_int_equal(count_rule("ALTER TABLE ONLY \"Users\"\n"
                                "  ADD CONSTRAINT c CHECK (a IN (1, 2)), -- x, y\n"
                                "  ALTER COLUMN b SET DEFAULT ',',\n"
                                "  ALTER COLUMN e SET NOT NULL;",
                                NULL, "adding-not-nullable-field", &out), 1);
    f = find_rule(&out, "adding-not-nullable-field");
    assert_int_equal(f->line, 4);
    assert_int_equal(f->column, 3);
    fl_finding_list_release(&out);
}

/* How the runner sends the file decides what is in a transaction. */
static void
test_rules_transaction_modes(void **state)
{
    fl_lint_options_t opts;
    fl_finding_list_t out = {NULL, 0};

    (void)state;
    fl_lint_options_init(&opts);
    opts.assume_in_transaction = FL_LINT_TX_IMPLICIT;
    opts.layout = "golang-migrate";
    /* alone in its file: fine; with another statement: one transaction */
    assert_int_equal(count_rule("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);",
                                &opts, "ban-concurrent-index-creation-in-transaction",
                                NULL), 0);
    assert_int_equal(count_rule("SET lock_timeout = '1s';\n"
                                "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);",
                                &opts, "ban-concurrent-index-creation-in-transaction",
                                &out), 1);
    assert_non_null(strstr(out.items[0].message, "one query string"));
    assert_non_null(strstr(find_rule(&out, "ban-concurrent-index-creation-in-transaction")->help,
                           "alone in a migration file of its own"));
    fl_finding_list_release(&out);
    /* the file is atomic: no IF NOT EXISTS needed; BEGIN/COMMIT are allowed */
    assert_int_equal(count_rule("CREATE TABLE a (x int);\nCREATE TABLE b (x int);",
                                &opts, "prefer-robust-stmts", NULL), 0);
    assert_int_equal(count_rule("BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;",
                                &opts, "transaction-nesting", NULL), 0);

    opts.assume_in_transaction = FL_LINT_TX_AUTO;
    opts.layout = "flyway";
    assert_int_equal(count_rule("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);",
                                &opts, "ban-concurrent-index-creation-in-transaction",
                                NULL), 0);
    assert_int_equal(count_rule("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n"
                                "ANALYZE t;", &opts,
                                "no-transaction-statement-in-transaction", &out), 1);
    assert_non_null(strstr(out.items[0].message, "Flyway refuses"));
    fl_finding_list_release(&out);
    /* Flyway does not see that REINDEX ... CONCURRENTLY needs no transaction */
    assert_int_equal(count_rule("REINDEX INDEX CONCURRENTLY i;", &opts,
                                "no-transaction-statement-in-transaction", &out), 1);
    assert_non_null(strstr(out.items[0].help, "executeInTransaction=false"));
    fl_finding_list_release(&out);
    assert_int_equal(count_rule("BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;",
                                &opts, "transaction-nesting", NULL), 1);

    /* plain SQL: help texts about plain SQL, no flotilla options */
    fl_lint_options_init(&opts);
    assert_int_equal(count_rule("DROP INDEX i;", &opts, "require-lock-timeout", &out), 1);
    assert_null(strstr(out.items[0].help, "flotilla"));
    fl_finding_list_release(&out);
    /* The way around a primary key's index build: its columns NOT NULL
     * first, or PRIMARY KEY USING INDEX scans under ACCESS EXCLUSIVE. */
    assert_int_equal(count_rule("ALTER TABLE u ADD PRIMARY KEY (id);", &opts,
                                "adding-serial-primary-key-field", &out), 1);
    assert_non_null(strstr(find_rule(&out, "adding-serial-primary-key-field")
                               ->help, "NOT NULL"));
    fl_finding_list_release(&out);
}

/* A down linted as the rollback it is: dropping what up made is fine. */
static void
test_rules_down_undoes_up(void **state)
{
    fl_lint_options_t opts;
    fl_finding_list_t out = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    fl_lint_migration_t m;
    size_t k;
    int drop_other = 0;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.file = "migrations/2019_x/up.sql";
    m.down_file = "migrations/2019_x/down.sql";
    /* IF NOT EXISTS of a live table leaves it be: its drop is flagged. */
    m.up = "CREATE TABLE users (id bigint);\nALTER TABLE accounts ADD COLUMN note text;\n"
           "CREATE TABLE IF NOT EXISTS orders (id bigint);\n";
    m.up_line = 1;
    m.down = "ALTER TABLE accounts DROP COLUMN note;\nDROP TABLE users;\nDROP TABLE orders;\n";
    m.down_line = 1;
    m.lint_down = 1;
    m.up_tx = m.down_tx = FL_LINT_TX_WRAPPED;
    fl_lint_options_init(&opts);
    opts.layout = "diesel";
    assert_int_equal(fl_lint_migration(&out, &m, &opts, &err), 0);
    for (k = 0; k < out.count; k++) {
        const fl_finding_t *f = &out.items[k];
        assert_string_not_equal(f->rule, "ban-drop-column");
        assert_string_not_equal(f->rule, "migration-missing-down");
        if (strcmp(f->rule, "ban-drop-table") == 0) {
            assert_string_equal(f->file, "migrations/2019_x/down.sql");
            assert_int_equal(f->line, 3);
            drop_other++;
        }
    }
    assert_int_equal(drop_other, 1);
    fl_finding_list_release(&out);
}

/* Fingerprints follow a finding when lines move, and tell twins apart. */
static void
test_rules_fingerprints_survive_moves(void **state)
{
    fl_finding_list_t a = {NULL, 0}, b = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    const fl_finding_t *fa, *fb;

    (void)state;
    assert_int_equal(fl_lint_sql(&a, "DROP TABLE x;\nDROP TABLE x;\n", "f.sql",
                                 0, NULL, &err), 0);
    assert_int_equal(fl_lint_sql(&b, "SELECT 1;\n\n  DROP   TABLE x;\nDROP TABLE x;\n",
                                 "f.sql", 0, NULL, &err), 0);
    fa = find_rule(&a, "ban-drop-table");
    fb = find_rule(&b, "ban-drop-table");
    assert_int_equal(strlen(fa->fingerprint), 16);
    assert_string_not_equal(a.items[0].fingerprint, a.items[a.count - 1].fingerprint);
    (void)fb;
    {
        size_t i, k, same = 0;
        for (i = 0; i < a.count; i++)
            for (k = 0; k < b.count; k++)
                same += strcmp(a.items[i].fingerprint, b.items[k].fingerprint) == 0;
        /* the second DROP TABLE x is byte for byte the same line in both */
        assert_true(same >= 1);
    }
    fl_finding_list_release(&a);
    fl_finding_list_release(&b);
}

static int
teardown(void **state)
{
    (void)state;
    pg_query_exit();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_flag_at_position),
        cmocka_unit_test(test_rules_near_misses_not_flagged),
        cmocka_unit_test(test_rules_every_rule_has_cases),
        cmocka_unit_test(test_rules_opt_in_schema_rule),
        cmocka_unit_test(test_rules_suppressions),
        cmocka_unit_test(test_rules_opaque_statement_names_the_function),
        cmocka_unit_test(test_rules_drop_cascade_and_owned_name_what_is_dropped),
        cmocka_unit_test(test_rules_new_rules_honour_suppressions),
        cmocka_unit_test(test_rules_migration_checks),
        cmocka_unit_test(test_rules_never_crash_on_garbage),
        cmocka_unit_test(test_rules_lock_timeout_covers_table_locking_ddl),
        cmocka_unit_test(test_rules_lock_timeout_zero_or_default_is_none),
        cmocka_unit_test(test_rules_foreign_key_once_where_it_scans_with_a_fix),
        cmocka_unit_test(test_rules_foreign_key_on_table_filled_in_the_file),
        cmocka_unit_test(test_rules_unnamed_concurrent_index_message),
        cmocka_unit_test(test_rules_timestamptz_change_notes_utc),
        cmocka_unit_test(test_rules_squawk_alias_and_pg_versions),
        cmocka_unit_test(test_rules_newer_syntax_is_named),
        cmocka_unit_test(test_rules_positions_on_sub_commands),
        cmocka_unit_test(test_rules_transaction_modes),
        cmocka_unit_test(test_rules_down_undoes_up),
        cmocka_unit_test(test_rules_fingerprints_survive_moves),
    };
    return cmocka_run_group_tests_name("rules", tests, NULL, teardown);
}
