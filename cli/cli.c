/*
 * cli.c - the `flotilla` command table and dispatch (see cli.h).
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/str.h"

const fl_cli_command fl_cli_commands[] = {
#define FL_CLI_COMMAND(name, summary) {#name, summary, fl_cmd_##name},
#include "cli/commands.def"
#undef FL_CLI_COMMAND
    {NULL, NULL, NULL},
};

static void
s_print_help(FILE *out)
{
    fprintf(out,
            "flotilla - safe PostgreSQL schema migrations, for one database or a fleet\n"
            "\n"
            "Usage: flotilla COMMAND [OPTIONS] [ARGS]\n"
            "       flotilla COMMAND --help\n"
            "\n"
            "Commands:\n");
    for (const fl_cli_command *c = fl_cli_commands; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out,
            "\n"
            "Exit codes: 0 success, 1 failed, 2 usage, 3 refused by\n"
            "validation, 4 could not connect, 5 lock not acquired, 6\n"
            "interrupted (SIGINT or SIGTERM); rollout: 7 halted, 8 rolled\n"
            "back, 9 still running.\n");
}

int
fl_cli_report(const char *cmd, const fl_error_t *err, int code)
{
    char *text = fl_error_format(err);
    /* Errors quote databases, bundles and files: nothing a terminal acts on. */
    char *shown = fl_str_escape_controls(text, FL_STR_MULTILINE);

    fprintf(stderr, "flotilla %s: %s\n", cmd, shown);
    free(shown);
    free(text);
    return code;
}

void
fl_cli_retrying(const char *cmd, const fl_error_t *err)
{
    char *shown = fl_str_escape_controls(
        err && err->message ? err->message : "no reply", FL_STR_MULTILINE);

    fprintf(stderr, "flotilla %s: warning: %s; asking again until "
                    "--timeout\n", cmd, shown);
    free(shown);
}

/* --json is among the command's arguments (fl_cli_main). */
static int s_json_wanted;

int
fl_cli_usage_report(const char *cmd, const fl_error_t *err)
{
    if (s_json_wanted)
        fl_dbcmd_report(cmd, err, FL_EXIT_USAGE, 1);
    else
        fl_cli_report(cmd, err, FL_EXIT_USAGE);
    return FL_EXIT_USAGE;
}

int
fl_cli_bad_option(const char *cmd, const char *opt, fl_error_t *err)
{
    fl_error_prefix(err, "%s: ", opt);
    fl_cli_usage_report(cmd, err);
    fl_error_clear(err);
    return FL_EXIT_USAGE;
}

/* The text of fmt and ap, with what a terminal acts on escaped. */
static char *s_escaped(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

static char *
s_escaped(const char *fmt, va_list ap)
{
    char *text = fl_vasprintf(fmt, ap);
    char *shown = fl_str_escape_controls(text, FL_STR_MULTILINE);

    free(text);
    return shown;
}

int
fl_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    char *shown = NULL;

    va_start(ap, fmt);
    shown = s_escaped(fmt, ap);
    va_end(ap);
    fprintf(stderr, "flotilla %s: %s\nTry \"flotilla %s --help\".\n", cmd,
            shown, cmd);
    if (s_json_wanted) {
        fl_error_t err = FL_ERROR_INIT;

        FL_ERR(&err, FL_EINVAL, "%s", shown);
        fl_error_set_hint(&err, "Try \"flotilla %s --help\".", cmd);
        fl_dbcmd_print_json_error(&err);
        fl_error_clear(&err);
    }
    free(shown);
    return FL_EXIT_USAGE;
}

int
fl_cli_option_error(const char *cmd, const struct option *opts, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";

    /* A long option named in full, without "=VALUE", that takes one. */
    if (strncmp(arg, "--", 2) == 0 && strchr(arg, '=') == NULL)
        for (const struct option *o = opts; o && o->name; o++)
            if (strcmp(o->name, arg + 2) == 0 &&
                o->has_arg == required_argument)
                return fl_cli_usage_error(cmd, "option \"%s\" needs a value",
                                          arg);
    return fl_cli_usage_error(cmd, "invalid option \"%s\"", arg);
}

int
fl_cli_main(int argc, char **argv)
{
    const char *name = NULL;

    if (argc < 2) {
        s_print_help(stderr);
        return FL_EXIT_USAGE;
    }
    name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        s_print_help(stdout);
        return FL_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("flotilla %s\n", FLOTILLA_VERSION);
        return FL_EXIT_OK;
    }
    /* A script's --json gets its usage errors as JSON too. */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            s_json_wanted = 1;
    for (const fl_cli_command *c = fl_cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "flotilla: unknown command \"%s\"\n"
                    "Try \"flotilla --help\" for the list of commands.\n", name);
    return FL_EXIT_USAGE;
}

int
fl_cli_keypair_args(const char *cmd, const char *usage, int argc, char **argv,
                    const char **prefix, const char **name, int *force)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"name", required_argument, NULL, 'n'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *prefix = NULL;
    *force = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, name ? "o:n:fh" : "o:fh", opts,
                            NULL)) != -1) {
        if (c == 'o')
            *prefix = optarg;
        else if (c == 'n' && name != NULL)
            *name = optarg;
        else if (c == 'f')
            *force = 1;
        else if (c == 'h')
            return fputs(usage, stdout) < 0 ? FL_EXIT_FAILED : FL_EXIT_OK;
        else
            return fl_cli_option_error(cmd, opts, argv);
    }
    if (*prefix == NULL || **prefix == '\0')
        return fl_cli_usage_error(cmd, "--out PREFIX is required");
    if (optind < argc)
        return fl_cli_usage_error(cmd, "unexpected argument \"%s\"",
                                  argv[optind]);
    return -1;
}

/* The rows fl_cli_out has filled (fl_cli_out_rows_reset). */
static struct {
    int cols, col;
    size_t rows;
} s_rows = {80, 0, 0};

static void
s_count_rows(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\n') {
            s_rows.rows++;
            s_rows.col = 0;
        } else if ((*p & 0xC0) != 0x80 && ++s_rows.col > s_rows.cols) {
            /* A character past the edge starts the next row. */
            s_rows.rows++;
            s_rows.col = 1;
        }
    }
}

void
fl_cli_out(const char *fmt, ...)
{
    va_list ap;
    char *shown = NULL;

    va_start(ap, fmt);
    shown = s_escaped(fmt, ap);
    va_end(ap);
    fputs(shown, stdout);
    s_count_rows(shown);
    free(shown);
}

void
fl_cli_out_rows_reset(int cols)
{
    s_rows.cols = cols > 0 ? cols : 80;
    s_rows.rows = 0;
    s_rows.col = 0;
}

size_t
fl_cli_out_rows(void)
{
    return s_rows.rows;
}
