/*
 * cli.h - the `flotilla` operator tool: command table and exit codes.
 *
 * Every subcommand is a function `int fl_cmd_<name>(int argc, char **argv)`
 * in its own cmd_<name>.c, listed once in the table in cli.c; main.c only
 * dispatches.  argv[0] is the subcommand name, so getopt_long works as in
 * a program of its own.  Each command prints --help, returns one of the
 * exit codes below, and writes results to stdout (--json where a script
 * would read them) and diagnostics to stderr.
 */
#ifndef FL_CLI_H
#define FL_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "common/error.h"

/* Exit codes (flotilla --help, each command's --help, docs/pipeline.md and
 * docs/rollouts.md); distinct so scripts can branch. */
enum {
    FL_EXIT_OK = 0,         /* success */
    FL_EXIT_FAILED = 1,     /* the operation failed (nothing left half-done) */
    FL_EXIT_USAGE = 2,      /* bad command line */
    FL_EXIT_REFUSED = 3,    /* validation refused; nothing changed */
    FL_EXIT_CONNECT = 4,    /* could not connect to the database or peer */
    FL_EXIT_LOCKED = 5,     /* lock not acquired in time */
    FL_EXIT_INTERRUPTED = 6, /* SIGINT or SIGTERM: the running statement was
                                cancelled and what was done is recorded */
    FL_EXIT_HALTED = 7,      /* rollout: halted (the latch is set) */
    FL_EXIT_ROLLED_BACK = 8, /* rollout: rolled back */
    FL_EXIT_RUNNING = 9      /* rollout: not finished yet */
};

typedef int (*fl_cli_fn)(int argc, char **argv);

typedef struct {
    const char *name;
    const char *summary;
    fl_cli_fn run;
} fl_cli_command;

/* The command table, ended by a NULL name. */
extern const fl_cli_command fl_cli_commands[];

/* Runs `flotilla argv...`; returns the exit code. */
int fl_cli_main(int argc, char **argv);

/*
 * Prints err to stderr as "flotilla CMD: error: ...", with DETAIL and
 * HINT lines, and returns code (a FL_EXIT_* value) for `return`.
 */
int fl_cli_report(const char *cmd, const fl_error_t *err, int code);
/*
 * Says on stderr that a call got no reply and is made again (a warning,
 * not an error: the command goes on, and says its failure once, at the
 * end, if there is one).
 */
void fl_cli_retrying(const char *cmd, const fl_error_t *err);

/*
 * A usage error (this and the two below) goes to stderr, and when the
 * command line holds --json also to stdout as {"ok": false, "error":
 * {...}}, as every failure of a command with --json: err as
 * fl_cli_report does; returns FL_EXIT_USAGE.
 */
int fl_cli_usage_report(const char *cmd, const fl_error_t *err);

/*
 * Reports a bad value for option opt (err filled by its parser, cleared
 * here) as "flotilla CMD: error: OPT: MESSAGE"; returns FL_EXIT_USAGE.
 */
int fl_cli_bad_option(const char *cmd, const char *opt, fl_error_t *err);

/*
 * The usage error for the option getopt_long() just refused (argv[optind
 * - 1]): 'option "--db" needs a value' when opts says it takes one and it
 * came without, else 'invalid option "--x"'.  Returns FL_EXIT_USAGE.
 */
int fl_cli_option_error(const char *cmd, const struct option *opts,
                        char **argv);

/* Prints "flotilla CMD: MESSAGE" and a pointer to --help; returns FL_EXIT_USAGE. */
int fl_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The command line of the commands that make a key pair (keygen, cert):
 * -o/--out PREFIX (required), -f/--force, -h/--help, and -n/--name NAME
 * when name is not NULL.  Returns -1 when the command goes on, else the
 * exit code to return (0 after printing usage for --help).
 */
int fl_cli_keypair_args(const char *cmd, const char *usage, int argc,
                        char **argv, const char **prefix, const char **name,
                        int *force);

/*
 * printf to stdout for a person: the formatted text with every character
 * a terminal would act on escaped (common/str.h; newlines and tabs kept),
 * since what commands print quotes databases and bundles.
 */
void fl_cli_out(const char *fmt, ...) FL_PRINTF(1, 2);

/*
 * Counts the rows of a terminal cols wide that fl_cli_out fills from now
 * on (a line longer than cols takes more than one), for a block redrawn
 * in place; fl_cli_out_rows() says how many so far.
 */
void fl_cli_out_rows_reset(int cols);
size_t fl_cli_out_rows(void);

#endif
