/*
 * cmd_plan.c - `flotilla plan`: the dry run.  Verifies, validates against
 * the live database and rehearses each migration inside a transaction
 * that is rolled back; changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/pipeline.h"
#include "agent/source.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"

static const char s_usage[] =
    "Usage: flotilla plan [--db DSN] SOURCE [options]\n"
    "\n"
    "The dry run: for every pending migration of SOURCE, prints each\n"
    "statement with its transaction group, the lock it takes on each table,\n"
    "whether it rewrites or scans the table, what would be backed up, the\n"
    "lint findings, the live validation results and the result of a\n"
    "rehearsal inside BEGIN ... ROLLBACK, then a verdict.  Changes nothing:\n"
    "not the ledger, not the schema, not the data.  Exit 0 when apply would\n"
    "go ahead, 3 when it would be refused or fail.\n"
    "\n"
    "  --to VERSION           plan up to and including VERSION\n"
    "  --allow-older-release  plan a bundle older than a release applied on\n"
    "                         its channel (needs --reason)\n"
    "  --reason TEXT          why\n";

static void
s_print_text(const json_t *report)
{
    json_t *migs = json_object_get(report, "migrations");
    size_t i, j, k;
    json_t *m, *st, *x;

    fl_cli_out("plan for %s (PostgreSQL %lld)\n",
           json_string_value(json_object_get(report, "target")),
           (long long)json_integer_value(json_object_get(report, "server_version")));
    if (json_object_get(report, "problem"))
        fl_cli_out("  refused: %s\n",
               json_string_value(json_object_get(report, "problem")));
    json_array_foreach(migs, i, m) {
        const char *state = json_string_value(json_object_get(m, "state"));
        fl_cli_out("\n%s [%s, %s]\n", json_string_value(json_object_get(m, "file")),
               state, json_string_value(json_object_get(m, "transaction")));
        if (!json_object_get(m, "verdict"))
            continue;
        json_array_foreach(json_object_get(m, "validate"), j, x)
            fl_cli_out("  validate %s: %s\n",
                   json_string_value(json_object_get(x, "at")),
                   json_is_true(json_object_get(x, "ok")) ? "ok" : "FAILED");
        json_array_foreach(json_object_get(m, "statements"), j, st) {
            json_t *locks = json_object_get(st, "locks");
            fl_cli_out("  %lld. line %lld: %s\n",
                   (long long)json_integer_value(json_object_get(st, "index")),
                   (long long)json_integer_value(json_object_get(st, "line")),
                   json_string_value(json_object_get(st, "kind")));
            json_array_foreach(locks, k, x)
                fl_cli_out("       lock %s on %s%s\n",
                       json_string_value(json_object_get(x, "lock")),
                       json_string_value(json_object_get(x, "table")),
                       json_is_true(json_object_get(x, "writes")) ? " (writes)" : "");
            if (json_is_true(json_object_get(st, "rewrites")))
                fl_cli_out("       rewrites the table\n");
            if (json_is_true(json_object_get(st, "scans")))
                fl_cli_out("       scans the table under its lock\n");
            if (json_is_true(json_object_get(st, "no_transaction")))
                fl_cli_out("       must run outside a transaction\n");
            json_array_foreach(json_object_get(st, "backup"), k, x)
                fl_cli_out("       backup of %s before it runs\n", json_string_value(x));
            json_array_foreach(json_object_get(st, "checks"), k, x)
                fl_cli_out("       check %s: %s%s%s\n",
                       json_string_value(json_object_get(x, "target")),
                       json_is_true(json_object_get(x, "ok")) ? "ok" : "FAILED",
                       json_object_get(x, "problem") ? ": " : "",
                       json_object_get(x, "problem")
                           ? json_string_value(json_object_get(x, "problem")) : "");
            if (json_object_get(st, "rehearsal"))
                fl_cli_out("       rehearsal: %s\n",
                       json_string_value(json_object_get(st, "rehearsal")));
            json_array_foreach(json_object_get(st, "observed_locks"), k, x)
                fl_cli_out("       observed: took %s\n", json_string_value(x));
            json_array_foreach(json_object_get(st, "observed_rewrites"), k, x)
                fl_cli_out("       observed: rewrote %s\n", json_string_value(x));
        }
        json_array_foreach(json_object_get(m, "lint"), j, x)
            fl_cli_out("  lint %s %s at line %lld: %s\n",
                   json_string_value(json_object_get(x, "severity")),
                   json_string_value(json_object_get(x, "rule")),
                   (long long)json_integer_value(json_object_get(x, "line")),
                   json_string_value(json_object_get(x, "message")));
        fl_cli_out("  verdict: %s%s%s\n",
               json_string_value(json_object_get(m, "verdict")),
               json_object_get(m, "problem") ? ": " : "",
               json_object_get(m, "problem")
                   ? json_string_value(json_object_get(m, "problem")) : "");
    }
    fl_cli_out("\n%s: %lld migration%s pending\n",
           json_is_true(json_object_get(report, "ok")) ? "OK, apply would go ahead"
                                                       : "NOT OK, apply would stop",
           (long long)json_integer_value(json_object_get(report, "pending")),
           json_integer_value(json_object_get(report, "pending")) == 1 ? "" : "s");
}

int
fl_cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_DBCMD_LONGOPTS,
        FL_DBCMD_PIPELINE_LONGOPTS,
        {"allow-older-release", no_argument, NULL, FL_OPT_ALLOW_OLDER},
        {"to", required_argument, NULL, FL_OPT_TO},
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    fl_source_t src = FL_SOURCE_INIT;
    fl_pipeline_t *p = NULL;
    fl_error_t err = FL_ERROR_INIT;
    json_t *report = NULL;
    int code = FL_EXIT_OK;

    fl_dbcmd_init(&c, "plan");
    /* A dry run writes no log file unless asked to, and prints a report. */
    c.log_file = "";
    c.quiet = 1;
    code = fl_dbcmd_open_pipeline(&c, argc, argv, opts, s_usage, &src, &p);
    if (code != 0) {
        code = code < 0 ? FL_EXIT_OK : code;
        goto cleanup;
    }
    if (fl_pipeline_plan(p, &src, &report, &err) != 0) {
        code = fl_cli_report("plan", &err, err.code == FL_ECANCELLED
                                               ? FL_EXIT_INTERRUPTED
                                               : FL_EXIT_FAILED);
        goto cleanup;
    }
    if (c.json)
        fl_dbcmd_print_json(report);
    else
        s_print_text(report);
    code = json_is_true(json_object_get(report, "ok")) ? FL_EXIT_OK
                                                       : FL_EXIT_REFUSED;
cleanup:
    json_decref(report);
    fl_dbcmd_close_pipeline(&p);
    fl_source_close(&src);
    fl_error_clear(&err);
    fl_dbcmd_stop(&c);
    return code;
}
