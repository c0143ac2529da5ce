/*
 * dbcmd.h - what the single-database commands (apply, plan, rollback,
 * status, log, locks, backups) share: connection and pipeline options,
 * the step printer, and the mapping from errors to exit codes.
 */
#ifndef FL_CLI_DBCMD_H
#define FL_CLI_DBCMD_H

#include <getopt.h>
#include <jansson.h>

#include "agent/pipeline.h"
#include "agent/source.h"
#include "common/error.h"

/* Long options every pipeline command accepts (ids 1000+). */
enum {
    FL_OPT_DB = 1000,
    FL_OPT_JSON,
    FL_OPT_LOG_FILE,
    FL_OPT_LOCK_WAIT,
    FL_OPT_LOCK_TIMEOUT,
    FL_OPT_STATEMENT_TIMEOUT,
    FL_OPT_LOCK_RETRIES,
    FL_OPT_TRUST,
    FL_OPT_REQUIRE_SIGNED,
    FL_OPT_TO,
    FL_OPT_ALLOW_OOO,
    FL_OPT_ALLOW_LINT,
    FL_OPT_QUIET,
    FL_OPT_BACKUP_DIR,
    FL_OPT_BACKUP_DUMP_ABOVE,
    FL_OPT_REDACT_SAMPLES,
    FL_OPT_DB_FILE,
    FL_OPT_ENVIRONMENT,
    FL_OPT_LABEL,
    FL_OPT_MAX_LIFETIME,
    FL_OPT_REASON,
    FL_OPT_ALLOW_OLDER,
    FL_OPT_SCHEMA,
    FL_OPT_NO_REHEARSE,
    FL_OPT_DIR,
    FL_OPT_LAYOUT,
    FL_OPT_LINT_ENFORCE_FROM,
    FL_OPT_LINT_CONFIG,
    FL_OPT_HELP
};

/* At most this many --label options. */
#define FL_DBCMD_MAX_LABELS 64

typedef struct {
    const char *cmd;
    const char *dsn;
    const char *log_file; /* NULL: migration-execution.log; "": none */
    const char *trust;
    int require_signed;
    int json;
    int quiet;
    fl_pipeline_opts_t popts;
    const char *labels[FL_DBCMD_MAX_LABELS]; /* popts.labels */
    int64_t max_lifetime_s;  /* a bundle's longest accepted lifetime */
    const char *dir;         /* --dir: the source, a migrations directory */
    fl_layout_tool layout;   /* --layout: its tool; AUTO: recognised */
    int gate_given;          /* --lint-enforce-from (wins over the file) */
    char gate_conf[68];      /* enforce_from of --lint-config's file */
    int dsn_given;           /* --db or --db-file seen */
} fl_dbcmd_t;

/*
 * The source a command was given: --dir DIR, or its one SOURCE argument
 * (argv[first] when first < argc), or NULL when neither.  Both at once is
 * a usage error (-1 in *code after it is reported).
 */
const char *fl_dbcmd_source_arg(fl_dbcmd_t *c, int argc, char **argv,
                                int first, int *code);

/* The ledger target the options name: --schema, or "" for the database. */
const char *fl_dbcmd_target(const fl_dbcmd_t *c);

/* The shared options of the commands that only read a database (log,
 * locks, backups): no source, no log file. */
#define FL_DBCMD_READ_LONGOPTS                                             \
    {"db", required_argument, NULL, FL_OPT_DB},                            \
    {"db-file", required_argument, NULL, FL_OPT_DB_FILE},                  \
    {"schema", required_argument, NULL, FL_OPT_SCHEMA},                    \
    {"json", no_argument, NULL, FL_OPT_JSON},                              \
    {"quiet", no_argument, NULL, FL_OPT_QUIET},                            \
    {"help", no_argument, NULL, FL_OPT_HELP}

/* getopt_long entries of the shared options, for a command's table. */
#define FL_DBCMD_LONGOPTS                                                  \
    FL_DBCMD_READ_LONGOPTS,                                                \
    {"log-file", required_argument, NULL, FL_OPT_LOG_FILE},                \
    {"dir", required_argument, NULL, FL_OPT_DIR},                          \
    {"layout", required_argument, NULL, FL_OPT_LAYOUT}

/* ... and of the pipeline's options. */
#define FL_DBCMD_PIPELINE_LONGOPTS                                         \
    {"lock-wait", required_argument, NULL, FL_OPT_LOCK_WAIT},              \
    {"lock-timeout", required_argument, NULL, FL_OPT_LOCK_TIMEOUT},        \
    {"statement-timeout", required_argument, NULL, FL_OPT_STATEMENT_TIMEOUT}, \
    {"lock-retries", required_argument, NULL, FL_OPT_LOCK_RETRIES},        \
    {"trust", required_argument, NULL, FL_OPT_TRUST},                      \
    {"require-signed", no_argument, NULL, FL_OPT_REQUIRE_SIGNED},          \
    {"allow-out-of-order", no_argument, NULL, FL_OPT_ALLOW_OOO},           \
    {"allow-lint-errors", no_argument, NULL, FL_OPT_ALLOW_LINT},            \
    {"backup-dir", required_argument, NULL, FL_OPT_BACKUP_DIR},            \
    {"backup-dump-above", required_argument, NULL, FL_OPT_BACKUP_DUMP_ABOVE}, \
    {"redact-samples", no_argument, NULL, FL_OPT_REDACT_SAMPLES},          \
    {"environment", required_argument, NULL, FL_OPT_ENVIRONMENT},          \
    {"label", required_argument, NULL, FL_OPT_LABEL},                      \
    {"max-bundle-lifetime", required_argument, NULL, FL_OPT_MAX_LIFETIME}, \
    {"reason", required_argument, NULL, FL_OPT_REASON},                    \
    {"lint-enforce-from", required_argument, NULL, FL_OPT_LINT_ENFORCE_FROM}, \
    {"lint-config", required_argument, NULL, FL_OPT_LINT_CONFIG}

extern const char fl_dbcmd_pipeline_help[];

/*
 * A command's own options: returns 1 when it took opt (with arg, NULL
 * for a flag), 0 when opt is not its own, or minus an exit code after
 * reporting a bad value.  own_arg is the command's.
 */
typedef int (*fl_dbcmd_own_fn)(fl_dbcmd_t *c, int opt, const char *arg,
                               void *own_arg);

/*
 * Parses argv with opts, the one loop of the single-database commands:
 * shared options go into c, the command's own to own (NULL: it has none),
 * anything else is a usage error.  Returns 0, an exit code, or -1 after
 * printing help (usage is the command's help text).  *first_arg gets
 * optind.
 */
int fl_dbcmd_parse(fl_dbcmd_t *c, int argc, char **argv,
                   const struct option *opts, const char *usage,
                   int *first_arg);
int fl_dbcmd_parse_own(fl_dbcmd_t *c, int argc, char **argv,
                       const struct option *opts, const char *usage,
                       fl_dbcmd_own_fn own, void *own_arg, int *first_arg);


void fl_dbcmd_init(fl_dbcmd_t *c, const char *cmd);

/*
 * Handles one of the shared options; returns 1 when it was one, 0 when
 * not, FL_EXIT_USAGE (negated) on a bad value.
 */
int fl_dbcmd_option(fl_dbcmd_t *c, int opt, const char *arg);

/* Text for --help describing the shared options. */
extern const char fl_dbcmd_help[];
/* The same for FL_DBCMD_READ_LONGOPTS. */
extern const char fl_dbcmd_read_help[];
/* ... and for a command about the whole server: no --schema (locks). */
extern const char fl_dbcmd_server_help[];
/* ... and for status: the read options, a source and --trust. */
extern const char fl_dbcmd_status_help[];

/*
 * Opens the log file, installs the step printer into c->popts and starts
 * the signal thread (fl_dbcmd_signals_start); stop undoes both.
 */
int fl_dbcmd_start(fl_dbcmd_t *c);
void fl_dbcmd_stop(fl_dbcmd_t *c);
/* Closes a pipeline that fl_dbcmd_signals_watch may be watching. */
void fl_dbcmd_close_pipeline(fl_pipeline_t **p);

/*
 * For apply and plan: parses argv (one SOURCE), starts logging, opens the
 * source and the pipeline.  Returns 0, or the exit code after reporting
 * (-1: --help was printed).  The caller closes *src and *p either way.
 */
int fl_dbcmd_open_pipeline(fl_dbcmd_t *c, int argc, char **argv,
                           const struct option *opts, const char *usage,
                           fl_source_t *src, fl_pipeline_t **p);

/*
 * Signals for a command that drives a pipeline (apply, plan, rollback):
 * fl_dbcmd_signals_start blocks SIGINT and SIGTERM and waits for them on
 * a thread of its own; the first one cancels the pipeline given to
 * fl_dbcmd_signals_watch (its running statement is cancelled on the
 * server and the pipeline records what was done before it returns), a
 * second one ends the process at once, by that signal.  Call start before
 * any other thread exists, watch(p) once the pipeline is open and
 * watch(NULL) before closing it, stop at the end.
 */
void fl_dbcmd_signals_start(fl_dbcmd_t *c);
void fl_dbcmd_signals_watch(fl_pipeline_t *p);
void fl_dbcmd_signals_stop(void);
/* The signal received (SIGINT, SIGTERM), or 0. */
int fl_dbcmd_signal_received(void);

/* The exit code for an error from the pipeline. */
int fl_dbcmd_exit_code(const fl_error_t *err);

/* Prints a JSON value to stdout, indented, and frees nothing. */
void fl_dbcmd_print_json(const json_t *value);
/* {"ok": false, "error": {...}} (fl_dbcmd_error_json) on stdout. */
void fl_dbcmd_print_json_error(const fl_error_t *err);
/*
 * Reports err as flotilla CMD's failure (fl_cli_report: text on stderr)
 * and, when json, prints {"ok": false, "error": {message, detail, hint,
 * sqlstate}} on stdout, so that a script reading stdout always gets an
 * object: every command with --json says its failure so.  Returns code.
 */
int fl_dbcmd_report(const char *cmd, const fl_error_t *err, int code,
                    int json);

/*
 * err as the "error" object of a --json output: {message, detail, hint,
 * sqlstate}, null where there is none.  A new reference.
 */
json_t *fl_dbcmd_error_json(const fl_error_t *err);

/*
 * A column value read as text, for --json: a string, or null when the
 * value is NULL or empty (every command says "no value" as null, never
 * ""); a number, or null.  New references.
 */
json_t *fl_dbcmd_json_text(const char *v);
json_t *fl_dbcmd_json_int(const char *v);

/*
 * Opens SOURCE (a bundle, verified with --trust and --max-bundle-lifetime,
 * or a directory unless --require-signed) into src; on failure reports it
 * and returns the exit code (3: refused, 1: could not read).
 */
int fl_dbcmd_open_source(fl_dbcmd_t *c, const char *path, fl_source_t *src);

/* The exit code of a failed fl_pipeline_open: 4 (connect) or 1. */
int fl_dbcmd_open_exit_code(const fl_error_t *err);

#endif
