/*
 * facts.h - what each SQL statement of a migration does to a live
 * database, from the real PostgreSQL 15 parser (libpg_query).
 *
 * Splitting uses the parser (pg_query_split_with_parser, falling back to
 * the scanner for text that does not parse), never semicolons.  For each
 * statement: kind, position, tables read and written with the lock level
 * taken on each, rewrite/scan/destructive flags, whether it must run
 * outside a transaction block, and the live-data checks the pipeline must
 * run before executing it.
 *
 * CONTRACT used by agent/ (the pipeline) and `flotilla plan`: the fields
 * below are fixed; the implementation may add fields but not change these.
 */
#ifndef FL_LINT_FACTS_H
#define FL_LINT_FACTS_H

#include <stddef.h>

#include "common/error.h"

/* PostgreSQL's table lock levels, weakest first (PG 15 docs, 13.3.1). */
typedef enum {
    FL_LOCK_NONE = 0,
    FL_LOCK_ACCESS_SHARE,
    FL_LOCK_ROW_SHARE,
    FL_LOCK_ROW_EXCLUSIVE,
    FL_LOCK_SHARE_UPDATE_EXCLUSIVE,
    FL_LOCK_SHARE,
    FL_LOCK_SHARE_ROW_EXCLUSIVE,
    FL_LOCK_EXCLUSIVE,
    FL_LOCK_ACCESS_EXCLUSIVE
} fl_lock_level;

/* "ACCESS EXCLUSIVE", ... ; "" for FL_LOCK_NONE. */
const char *fl_lock_level_name(fl_lock_level level);

typedef struct {
    char *schema;       /* NULL when not schema-qualified */
    char *name;
    fl_lock_level lock; /* lock this statement takes on the table */
    int writes;         /* the statement changes the table or its data */
    int created;        /* the statement creates this table */
    int if_not_exists;  /* created by CREATE ... IF NOT EXISTS: the table
                           may be live already, left as it was; nothing
                           after the statement counts it as new */
    int fresh;          /* an earlier statement of the same text created a
                           table of this name (it did not exist before) */
} fl_table_ref_t;

/*
 * What a destructive statement destroys; the pipeline backs these up.
 * DELETE and UPDATE also stand for the same change made another way:
 * MERGE's WHEN MATCHED THEN DELETE / UPDATE, INSERT ... ON CONFLICT DO
 * UPDATE, and any of these in a WITH query at any depth (run even when
 * nothing reads it), in COPY (...) TO and in EXPLAIN ANALYZE.  A statement
 * lists each destroy once, its own target first.
 */
typedef enum {
    FL_DESTROY_DROP_TABLE,
    FL_DESTROY_DROP_COLUMN,
    FL_DESTROY_ALTER_TYPE,  /* ALTER COLUMN ... TYPE */
    FL_DESTROY_TRUNCATE,
    FL_DESTROY_DELETE,
    FL_DESTROY_UPDATE,
    FL_DESTROY_DROP_SCHEMA  /* DROP SCHEMA, with or without CASCADE */
} fl_destroy_kind;

typedef struct {
    fl_destroy_kind kind;
    char *schema;  /* NULL when not qualified; DROP_SCHEMA: the schema */
    char *table;   /* NULL for DROP_SCHEMA (its tables are in the catalog) */
    char *column;  /* DROP_COLUMN and ALTER_TYPE; NULL otherwise */
} fl_destroy_t;

/* Live-data checks the pipeline runs before the statement (DESIGN.md). */
typedef enum {
    FL_CHECK_TABLE_EXISTS,  /* table altered, dropped, renamed, updated... */
    FL_CHECK_COLUMN_EXISTS, /* column altered, dropped or renamed */
    FL_CHECK_NOT_NULL,      /* SET NOT NULL, ADD COLUMN ... NOT NULL, each
                               column of a primary key: count NULLs in
                               columns[0] */
    FL_CHECK_UNIQUE,        /* unique index/constraint, primary key:
                               duplicate groups */
    FL_CHECK_FOREIGN_KEY,   /* validated FK: orphan rows */
    FL_CHECK_CHECK,         /* validated CHECK: violating rows (expr) */
    FL_CHECK_DEPENDENTS,    /* DROP COLUMN/TABLE: dependent views and FKs */
    /* Added after the contract was fixed: */
    FL_CHECK_RETYPED,       /* ALTER COLUMN columns[0] TYPE: the table's
                               own NOT NULL, unique indexes and CHECKs on
                               it hold for its new values (the statement
                               validates them again) */
    FL_CHECK_VALIDATE,      /* VALIDATE CONSTRAINT columns[0] of one this
                               source did not add NOT VALID: its CHECK or
                               foreign key, as the catalog defines it, holds
                               for the rows */
    FL_CHECK_PRIMARY_INDEX  /* ADD PRIMARY KEY USING INDEX columns[0]: the
                               key columns of that index (in the table's
                               schema), which the statement makes NOT
                               NULL, hold no NULL */
} fl_check_kind;

/*
 * A column of the checked table as the check must see it, when the same
 * ALTER TABLE adds it or changes its type.  PostgreSQL adds every column
 * and changes every type of one ALTER TABLE before it validates any
 * constraint or NOT NULL of it, whatever the order of its sub-commands
 * (tablecmds.c's passes), and an added column holds its own DEFAULT in
 * the rows already there (a SET DEFAULT of the same statement comes too
 * late for them).
 */
typedef struct {
    char *name;
    char *value;       /* SQL of its value in each existing row, over the
                          row as it was (a USING names the old columns):
                          "CAST(default AS type)", "CAST(NULL AS type)",
                          "CAST(col AS newtype)"; NULL when only running
                          the statement can tell (a function that is not
                          a stable built-in, a subquery, a generated,
                          identity or serial column) */
    int added;         /* ADD COLUMN (else ALTER COLUMN ... TYPE) */
    int if_not_exists; /* ADD COLUMN IF NOT EXISTS */
    int sequence;      /* identity or serial: distinct and never NULL */
    char *type;        /* added without a DEFAULT: its type as SQL (a
                          domain's own default then applies); else NULL */
    int replaces;      /* added, and the same statement drops the column
                          of that name (DROP COLUMN runs first, whatever
                          the order): the live column is not read */
} fl_check_col_t;

/* A table, for the tables one DROP TABLE removes together. */
typedef struct {
    char *schema;        /* NULL when not qualified */
    char *name;
} fl_check_rel_t;

typedef struct {
    fl_check_kind kind;
    char *schema;        /* NULL when not qualified */
    char *table;
    char **columns;      /* may be empty (TABLE_EXISTS, DEPENDENTS on table) */
    size_t ncolumns;
    char *ref_schema;    /* FOREIGN_KEY: the referenced table */
    char *ref_table;
    char **ref_columns;  /* FOREIGN_KEY: empty means its primary key */
    size_t nref_columns;
    char *expr;          /* CHECK: the expression as SQL (deparsed) */
    /* Added after the contract was fixed: */
    /*
     * UNIQUE keys that are expressions (or carry a COLLATE): exprs[i] is
     * the SQL of key i, and columns[i] the same text for messages; NULL
     * entries (or exprs NULL) are the plain columns[i].  CHECK: columns
     * are the columns its expression names.
     */
    char **exprs;
    char *predicate;     /* UNIQUE: a partial index's WHERE, as SQL */
    int nulls_not_distinct; /* UNIQUE: NULLs are equal to each other */
    /*
     * NOT_NULL, UNIQUE, FOREIGN_KEY, CHECK from an ALTER TABLE: the
     * columns of the table that statement adds or changes the type of.
     */
    fl_check_col_t *pending;
    size_t npending;
    /*
     * The constraint belongs to column if_added of ADD COLUMN IF NOT
     * EXISTS: PostgreSQL skips it, with the column, when that column
     * already exists.  NULL otherwise.
     */
    char *if_added;
    fl_check_rel_t *dropped_with; /* DEPENDENTS of DROP TABLE: the other */
    size_t ndropped_with;         /* tables the statement drops with it;
                                     RETYPED: the constraints it drops
                                     (name only), and "" for DROP NOT
                                     NULL of the column */
    /*
     * The statement does nothing when it finds what these say, and then
     * neither does the check: if_table, ALTER TABLE IF EXISTS of a table
     * that does not exist; if_no_relation, CREATE INDEX IF NOT EXISTS of
     * that name when a relation of that name is in the table's schema.
     */
    int if_table;
    char *if_no_relation;
    /*
     * NOT_NULL, CHECK: PostgreSQL checks the rows of the table alone, not
     * those of its inheritance children (ALTER TABLE ONLY, CHECK ... NO
     * INHERIT); otherwise it checks the children's too.  A UNIQUE and a
     * FOREIGN_KEY (on both sides) always read the table's own rows; a
     * UNIQUE index ON ONLY a partitioned table reads none.
     */
    int only;
    /* FOREIGN_KEY MATCH FULL: a key NULL in some columns, not all, is a
     * violation too. */
    int match_full;
    /* FOREIGN_KEY, CHECK: of a VALIDATE CONSTRAINT (the constraint is
     * NOT VALID already: the advice is to fix the rows, then validate). */
    int validates;
} fl_check_t;

typedef struct {
    char *sql;            /* the statement text, without the final ';' */
    size_t offset;        /* byte offset of the statement in the input */
    size_t length;
    int line;             /* 1-based, base_line added */
    int column;           /* 1-based */
    const char *kind;     /* "CREATE TABLE", "ALTER TABLE", "CREATE INDEX", ... */
    int parse_error;      /* the PG 15 grammar rejected it; error says why */
    int too_deep;         /* with parse_error: not parsed, too deep to
                             analyze (FL_FACTS_MAX_DEPTH) */
    char *error;
    fl_table_ref_t *tables;
    size_t ntables;
    int rewrites;         /* rewrites the table (and its indexes) */
    int scans;            /* scans the table while holding its lock */
    int destructive;      /* destroys data (see fl_destroy_t); with no
                             destroys when only cascades tells what */
    int no_transaction;   /* must run outside a transaction block */
    fl_destroy_t *destroys;
    size_t ndestroys;
    fl_check_t *checks;
    size_t nchecks;
    char *index_schema;   /* CREATE INDEX: schema of the index, or NULL */
    char *index_name;     /* CREATE INDEX: its name, or NULL if unnamed */
    /* Added after the contract was fixed: */
    int error_line;       /* parse_error: where the grammar stopped */
    int error_column;     /* (base_line added), else 0 */
    size_t error_offset;  /* the same as a byte offset in the input */
    /*
     * Its effects cannot be known from its text, so tables, locks and
     * destroys above may be incomplete: DO, CALL, EXECUTE (of a prepared
     * statement), and a statement that runs a function other than a
     * PostgreSQL 15 built-in (named with a schema other than pg_catalog,
     * or unqualified and not the name of a function in pg_catalog).  Calls
     * stored rather than run (in CREATE FUNCTION, VIEW, RULE, POLICY,
     * TRIGGER, TABLE, DOMAIN, PREPARE, ... WITH NO DATA and EXPLAIN
     * without ANALYZE) do not count.
     */
    int opaque;
    /*
     * It also drops or empties what depends on the objects it names, which
     * tables and destroys do not list (look them up in the catalog): DROP
     * ... CASCADE of any kind of object, ALTER TABLE ... DROP COLUMN or
     * DROP CONSTRAINT ... CASCADE, TRUNCATE ... CASCADE, and DROP OWNED
     * (which drops the roles' tables, CASCADE or not).  destructive is set
     * with it for DROP OWNED and for DROP ... CASCADE of every kind whose
     * dependents can be columns or tables (all but indexes, triggers,
     * rules, policies, event triggers, statistics and publications): a
     * column of a dropped type, domain or table row type, a generated
     * column using a dropped function, a column with a dropped collation,
     * an inheritance child of a dropped table.
     */
    int cascades;
    /*
     * A plain UPDATE or DELETE of one table (no WITH, FROM or USING, no
     * WHERE CURRENT OF) whose WHERE clause can be evaluated again without
     * a side effect: every function it calls is a built-in that gives the
     * same answer twice in a transaction and changes nothing.  row_where
     * is that clause as SQL (deparsed), row_alias the name the statement
     * gives the table (its alias, or NULL: its own name); a backup of
     * only those rows is possible.  Otherwise row_where is NULL and
     * row_why says why (for UPDATE and DELETE; NULL for other statements).
     * Without a WHERE clause row_where is "true" and row_every is set:
     * every row changes, and a backup of rows is one of every row (which
     * the backup takes without evaluating anything of the statement's).
     */
    char *row_where;
    char *row_alias;
    char *row_why;
    int row_every;
    /*
     * A statement that cannot run in a transaction (no_transaction) leaves
     * no lock to read after it and cannot be undone, so a schema target
     * checks what it reaches before it runs: reach, the relations it names
     * (schema NULL when unqualified) and, for REINDEX SCHEMA, the schema
     * (name NULL); reach_all, it reaches every schema (VACUUM or CLUSTER
     * of every table, REINDEX DATABASE or SYSTEM).
     */
    fl_check_rel_t *reach;
    size_t nreach;
    int reach_all;
    /*
     * A SELECT of set_config() calls and nothing else (no FROM, WHERE,
     * ...): it changes the session's settings as SET does (pg_dump sets
     * search_path so).
     */
    int sets_config;
    /*
     * COPY that exchanges its data with the client: FL_COPY_FROM_CLIENT
     * (COPY ... FROM STDIN, whose rows psql sends from the lines after
     * it) or FL_COPY_TO_CLIENT (COPY ... TO STDOUT); 0 for any other
     * statement, a COPY from or to a file or a program on the server
     * included.
     */
    int copy_client;
    /*
     * What it does outside its transaction, which a rollback does not
     * undo, as a static text naming it, or NULL: a call it runs (not one
     * it stores, as for opaque above) of a PostgreSQL built-in that
     * signals or ends a session, reloads the configuration or rotates the
     * log, resets statistics, marks or switches the WAL or controls its
     * replay, makes, drops or advances a replication slot or origin or
     * consumes a slot's changes, emits a logical message, or writes a
     * file on the server (lo_export); or a COPY to a file, or from or to
     * a program, on the server.  An opaque statement may do the same
     * unseen.
     */
    const char *outside;
} fl_stmt_t;

#define FL_COPY_FROM_CLIENT 1
#define FL_COPY_TO_CLIENT 2

typedef struct {
    fl_stmt_t *items;
    size_t count;
} fl_stmt_list_t;

/*
 * The deepest statement analyzed, in levels of fl_facts_depth_bound():
 * past it a statement is an UNPARSED one ("nested too deeply").  A
 * thread on common/thread.h's FL_THREAD_DEEP_STACK analyzes this deep
 * (ASan included); PostgreSQL itself, at its default max_stack_depth,
 * refuses a chain of about 4,500 "+" and a UNION ALL of about 9,000
 * SELECTs, which are about 9,000 and 36,000 here.
 */
#define FL_FACTS_MAX_DEPTH 100000

/*
 * An upper bound of how deep the parse tree of any statement of sql is,
 * from its tokens alone (libpg_query's scanner, which does not
 * recurse): a statement's items (between commas, AND, OR, WHEN, THEN and
 * ELSE, which PostgreSQL's trees keep side by side) count their tokens,
 * a parenthesis, bracket or CASE ... END one more than its deepest item,
 * and each UNION, INTERSECT, EXCEPT and JOIN four more (a chain of them
 * nests across the items).
 * *line (may be NULL) gets the line, counted from 1, where the deepest
 * statement ends.  0 when sql does not scan (the parser says why).
 */
size_t fl_facts_depth_bound(const char *sql, int *line);

/*
 * Splits sql with the parser and fills out with one fl_stmt_t per
 * statement.  base_line is added to every line (pass the line of the
 * section in its file, minus one).  pg_version is the server version
 * number (150000 for 15.0).  Statements that do not parse are kept with
 * parse_error set, as is (whole) sql deeper than FL_FACTS_MAX_DEPTH; the
 * call itself fails only on input it cannot split at all (FL_EINVAL with
 * position).  Thread safe; the thread needs FL_THREAD_DEEP_STACK.
 */
int fl_facts_analyze(fl_stmt_list_t *out, const char *sql, int base_line,
                     int pg_version, fl_error_t *err) FL_NODISCARD;

void fl_stmt_list_release(fl_stmt_list_t *list);

/*
 * 1 when expression sql (one of a check's: a key, a predicate, a value)
 * can run no code but PostgreSQL's own whatever the search_path: it is
 * made only of constants, casts to types the grammar itself names in
 * pg_catalog (integer, boolean, numeric, varchar, timestamp, ...), column
 * references, IS [NOT] NULL and AND, OR, NOT.  0 for anything else (a
 * function call, an operator, a cast to a type found by name, a
 * subquery) and for a text that does not parse.  Thread safe.
 */
int fl_facts_expr_runs_nothing(const char *sql);

#endif
