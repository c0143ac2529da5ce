/*
 * lint_internal.h - what facts.c and rules.c share inside lint/: the
 * parse trees kept alongside the statement facts, a generic walk over the
 * libpg_query protobuf tree, a string set, and source positions.
 *
 * Nothing here is part of the library's API; only the sources in lint/ include it.
 */
#ifndef FL_LINT_INTERNAL_H
#define FL_LINT_INTERNAL_H

#include <stddef.h>

#include <pg_query/pg_query.pb-c.h>

#include "common/error.h"
#include "lint/facts.h"
#include "lint/lint.h"

/*
 * The trees behind a statement list.  nodes[i] is statement i's tree
 * (NULL when it did not parse); node locations inside it are byte offsets
 * relative to base[i], so base[i] + location is an offset in the input.
 * Owns the unpacked parse results; released with fl_lint_tree_release().
 */
typedef struct {
    PgQuery__ParseResult **results;
    size_t nresults;
    const PgQuery__Node **nodes;
    size_t *base;
    size_t count;
} fl_lint_tree_t;

/* Line starts of a text, to turn byte offsets into lines and columns. */
typedef struct {
    const char *text;
    size_t len;
    size_t *starts; /* starts[i] = offset of line i + 1 */
    size_t nlines;
} fl_lint_lines_t;

void fl_lint_lines_init(fl_lint_lines_t *lines, const char *text, size_t len);
void fl_lint_lines_release(fl_lint_lines_t *lines);
/* 1-based line (without base_line) and 1-based column in characters. */
void fl_lint_lines_pos(const fl_lint_lines_t *lines, size_t offset, int *line,
                       int *column);

/*
 * As fl_facts_analyze(), also filling tree (which the caller releases)
 * with the parse trees of the statements in out.
 */
int fl_facts_analyze_tree(fl_stmt_list_t *out, fl_lint_tree_t *tree,
                          const char *sql, int base_line, int pg_version,
                          fl_error_t *err) FL_NODISCARD;
void fl_lint_tree_release(fl_lint_tree_t *tree);

/*
 * Calls fn on msg and on every message below it, depth first, following
 * the protobuf-c descriptors (so it covers every node type without a
 * switch).  fn returns nonzero to stop; the walk returns that value.
 */
typedef int (*fl_lint_walk_fn)(const ProtobufCMessage *msg, void *arg);
int fl_lint_walk(const ProtobufCMessage *msg, fl_lint_walk_fn fn, void *arg);

/* An open-addressing set of strings (copied).  Zero-initialise to use. */
typedef struct {
    char **slots;
    size_t cap;
    size_t count;
} fl_lint_set_t;

void fl_lint_set_add(fl_lint_set_t *set, const char *key);
void fl_lint_set_remove(fl_lint_set_t *set, const char *key);
int fl_lint_set_has(const fl_lint_set_t *set, const char *key);
void fl_lint_set_release(fl_lint_set_t *set);

/* "schema.name" or "name" as a new string; the key of table sets. */
char *fl_lint_table_key(const char *schema, const char *name);

/* The String value of a node, or NULL when it is not a String. */
const char *fl_lint_node_str(const PgQuery__Node *node);

/*
 * True when an expression may be volatile: anything but constants, casts,
 * operators and a list of stable or immutable built-in functions.
 */
int fl_lint_expr_is_volatile(const PgQuery__Node *expr);

/* True when a DefElem list holds the option (and it is not false). */
int fl_lint_has_option(PgQuery__Node **opts, size_t n, const char *name);

/* Deparses an expression node to SQL; new string, or NULL if it cannot. */
char *fl_lint_deparse_expr(const PgQuery__Node *expr);

/*
 * One lint run over one text: the facts and trees of its statements and
 * the findings so far (before suppressions), with the statement each one
 * belongs to (SIZE_MAX for none) so statement-level comments apply.
 */
typedef struct {
    const fl_lint_options_t *opts;
    const char *sql;
    const char *file;
    int base_line;
    fl_lint_lines_t lines;
    fl_stmt_list_t stmts;
    fl_lint_tree_t tree;
    fl_finding_list_t found;
    size_t *found_stmt;
    size_t *found_offset;
} fl_lint_run_t;

/*
 * Adds a finding for rule at byte offset (in run->sql) of statement stmt,
 * unless the rule is off under run->opts.
 */
void fl_lint_report(fl_lint_run_t *run, const char *rule, size_t stmt,
                    size_t offset, const char *fmt, ...) FL_PRINTF(5, 6);

/* Runs every statement rule over run->stmts (rules.c). */
void fl_lint_check(fl_lint_run_t *run);

#endif
