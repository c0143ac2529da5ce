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
/* The rule with this id or one of squawk's aliases of it
 * (prefer-timestamptz), or NULL. */
const fl_lint_rule_t *fl_lint_rule_find(const char *id);

#define FL_LINT_MAX_RULES 64

/*
 * How the runner sends the input to the server, for the rules that depend
 * on transactions (the values of proto/layout.h's fl_layout_tx).
 */
enum {
    FL_LINT_TX_NONE = 0,     /* statement by statement, each on its own */
    FL_LINT_TX_WRAPPED = 1,  /* inside BEGIN ... COMMIT */
    FL_LINT_TX_IMPLICIT = 2, /* as one query string: one implicit transaction
                                when it holds more than one statement;
                                BEGIN and COMMIT in it are the author's */
    FL_LINT_TX_AUTO = 3      /* Flyway: wrapped unless a statement Flyway
                                knows cannot run in a transaction is in it,
                                then none */
};

typedef struct {
    int pg_version;            /* server version number; 150000 for 15 */
    int assume_in_transaction; /* FL_LINT_TX_*: how the runner sends it */
    int lock_timeout_set;      /* set outside the SQL (migration options) */
    int statement_timeout_set;
    /* Per rule (index in fl_lint_rules()): -1 default, else a severity. */
    signed char severity[FL_LINT_MAX_RULES];
    /* Added after the contract was fixed: */
    /* The tool that runs the input ("flotilla", "diesel", "golang-migrate",
     * "pop", "sqlx", "dbmate", "flyway"; proto/layout.h), so help texts say
     * what that tool needs; NULL for plain SQL.  Lent for the call. */
    const char *layout;
    int lint_down;  /* fl_lint_migration() lints down too (see there) */
} fl_lint_options_t;

/* Defaults: PostgreSQL 15, no transaction assumed, default severities. */
void fl_lint_options_init(fl_lint_options_t *opts);

/*
 * Parses a target PostgreSQL version for opts->pg_version: a major version
 * ("16"), with a minor ("15.4") or a server version number ("150004").
 * Only the versions the rules know are accepted, 10 to 18; FL_EINVAL
 * names the value and lists them.
 */
int fl_lint_parse_pg_version(int *out, const char *s, fl_error_t *err) FL_NODISCARD;

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
    char *excerpt;             /* the flagged line, shortened around column */
    /* Added after the contract was fixed: */
    int excerpt_column;        /* 1-based column of the flagged character
                                  in excerpt, for a caret under it */
    int end_line;              /* end of the flagged statement, or of the */
    int end_column;            /* ALTER TABLE sub-command; the column after
                                  its last character */
    /* Identifies the finding across commits whatever moved around it: hex
     * of the rule, the statement's text with blanks collapsed, the flagged
     * line's text and the count of identical earlier findings. */
    char fingerprint[17];
    char *fix;                 /* SQL that avoids the hazard, which PostgreSQL
                                  15's grammar parses; NULL when none */
    int not_enforced;          /* an error reported as a warning: its
                                  migration is older than the gate
                                  (lint.enforce_from; fl_lintcheck_demote) */
} fl_finding_t;

typedef struct {
    fl_finding_t *items;
    size_t count;
} fl_finding_list_t;

void fl_finding_list_release(fl_finding_list_t *list);
/*
 * Appends a finding of rule (an id or alias) about a whole file, at line,
 * with a copy of message, at the rule's severity under opts (NULL:
 * defaults), or nothing when the rule is off: for invalid-migration, what
 * the caller found before any SQL could be linted.
 */
void fl_finding_list_add(fl_finding_list_t *out, const char *rule,
                         const char *file, int line, const char *message,
                         const fl_lint_options_t *opts);

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
    /* Added after the contract was fixed; zero keeps the behaviour above: */
    int lint_down;       /* lint down too, as the rollback it is: dropping
                            what up created or added is not flagged */
    const char *down_file; /* the file down is in; NULL: file */
    int up_tx, down_tx;  /* FL_LINT_TX_*, for another tool's migration
                            (opts->layout set and not "flotilla") */
} fl_lint_migration_t;

/*
 * Lints a migration's up section as the pipeline runs it (in one
 * transaction unless no_transaction; lock and statement timeouts given in
 * the header count as set), then the migration-level checks: a missing
 * down section (migration-missing-down) and a down that cannot restore
 * what up destroys without the pipeline's backup (down-needs-backup).
 * With lint_down, down is linted too.  For another tool's migration
 * (opts->layout), up and down run as up_tx and down_tx say and the
 * migration-level checks, which are about flotilla's rollback, are not
 * made.  Appends to out.
 */
int fl_lint_migration(fl_finding_list_t *out, const fl_lint_migration_t *m,
                      const fl_lint_options_t *opts, fl_error_t *err) FL_NODISCARD;

#endif
