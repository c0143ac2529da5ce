/*
 * lint.h - migration safety rules over the statement facts (facts.h).
 *
 * Every rule of squawk under squawk's id, Flotilla's own rules, and the
 * migration-level checks.  Rules know the target PostgreSQL version, have
 * a default severity that options may change, and honour suppression
 * comments (docs/lint.md):
 *
 *   -- flotilla:allow RULE REASON        the next statement (or the one the
 *                                        comment trails on the same line)
 *   -- flotilla:allow-file RULE REASON   the whole file
 *   -- flotilla:options allow=RULE REASON  the whole file (migration header)
 *   -- squawk-ignore RULE[,RULE]         the next statement
 *   -- squawk-ignore-file [RULE,...]     the whole file (all rules if none)
 *
 * A suppression that suppresses nothing is reported by unused-ignore.
 * Everything here is thread safe: no global state.
 */
#ifndef FL_LINT_LINT_H
#define FL_LINT_LINT_H

#include <stddef.h>

#include "common/error.h"

typedef enum {
    FL_LINT_OFF = 0,
    FL_LINT_WARNING = 1,
    FL_LINT_ERROR = 2
} fl_lint_severity;

/* "off", "warning", "error". */
const char *fl_lint_severity_name(fl_lint_severity sev);

typedef struct {
    const char *id;            /* squawk's id where squawk has the rule */
    fl_lint_severity severity; /* default */
    int opt_in;                /* off unless enabled (require-table-schema) */
    const char *help;          /* one line: what to do instead */
} fl_lint_rule_t;

/* The rule table, lent for the life of the process. */
const fl_lint_rule_t *fl_lint_rules(size_t *count);
/* The rule with this id, or NULL. */
const fl_lint_rule_t *fl_lint_rule_find(const char *id);

#define FL_LINT_MAX_RULES 64

typedef struct {
    int pg_version;            /* server version number; 150000 for 15 */
    int assume_in_transaction; /* the runner wraps the input in BEGIN/COMMIT */
    int lock_timeout_set;      /* set outside the SQL (migration options) */
    int statement_timeout_set;
    /* Per rule (index in fl_lint_rules()): -1 default, else a severity. */
    signed char severity[FL_LINT_MAX_RULES];
} fl_lint_options_t;

/* Defaults: PostgreSQL 15, no transaction assumed, default severities. */
void fl_lint_options_init(fl_lint_options_t *opts);

/*
 * Sets one rule's severity from "error", "warning" or "off" (NULL means
 * "enable at its default severity", for opt-in rules).  FL_EINVAL names
 * the unknown rule or value.
 */
int fl_lint_options_set(fl_lint_options_t *opts, const char *rule,
                        const char *severity, fl_error_t *err) FL_NODISCARD;

/* The severity a rule has under opts (FL_LINT_OFF when disabled). */
fl_lint_severity fl_lint_options_severity(const fl_lint_options_t *opts,
                                          const fl_lint_rule_t *rule);

typedef struct {
    const char *rule;          /* the rule id (static) */
    fl_lint_severity severity;
    char *message;
    const char *help;          /* the rule's help line (static) */
    char *file;                /* as passed in; may be "" */
    int line;                  /* 1-based, base_line added */
    int column;                /* 1-based, in characters */
    char *excerpt;             /* the statement's first line, shortened */
} fl_finding_t;

typedef struct {
    fl_finding_t *items;
    size_t count;
} fl_finding_list_t;

void fl_finding_list_release(fl_finding_list_t *list);
/* How many findings have exactly this severity. */
size_t fl_finding_list_count(const fl_finding_list_t *list,
                             fl_lint_severity sev);

/*
 * Lints sql and appends findings to out (which the caller owns and
 * releases), ordered by position.  file is copied into each finding;
 * base_line is added to every line.  Statements the grammar rejects give
 * a syntax-error finding and the rest is still checked.  Fails only on
 * internal errors (the input is never the cause).
 */
int fl_lint_sql(fl_finding_list_t *out, const char *sql, const char *file,
                int base_line, const fl_lint_options_t *opts,
                fl_error_t *err) FL_NODISCARD;

/* One migration: its sections and where they start in the file. */
typedef struct {
    const char *file;
    const char *header;  /* text before the first section (options); may be NULL */
    const char *up;      /* required */
    int up_line;         /* 1-based line where up's text begins */
    const char *down;    /* NULL when the file has no down section */
    int down_line;
    int no_transaction;  /* -- flotilla:options no-transaction */
} fl_lint_migration_t;

/*
 * Lints a migration's up section as the pipeline runs it (in one
 * transaction unless no_transaction; lock and statement timeouts given in
 * the header count as set), then the migration-level checks: a missing
 * down section (migration-missing-down) and a down that cannot restore
 * what up destroys without the pipeline's backup (down-needs-backup).
 * Appends to out.
 */
int fl_lint_migration(fl_finding_list_t *out, const fl_lint_migration_t *m,
                      const fl_lint_options_t *opts, fl_error_t *err) FL_NODISCARD;

#endif
