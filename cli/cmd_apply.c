/*
 * cmd_apply.c - `flotilla apply`: the pipeline on one database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "agent/pipeline.h"
#include "agent/source.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/dsn.h"
#include "common/json.h"

static const char s_usage[] =
    "Usage: flotilla apply [--db DSN] (SOURCE | --dir DIR [--layout TOOL]) [options]\n"
    "\n"
    "Applies the pending migrations of SOURCE (a signed bundle, or for\n"
    "development a migrations directory) to one database through the\n"
    "verify -> validate -> backup -> execute -> log pipeline.  Each\n"
    "migration runs in one transaction with its ledger row (unless it is\n"
    "no-transaction), so it is applied exactly once or not at all.\n"
    "\n"
    "  --to VERSION           apply up to and including VERSION\n"
    "  --allow-older-release  apply a bundle older than a release applied\n"
    "                         on its channel (needs --reason; logged)\n"
    "  --reason TEXT          why, kept in the log\n";

int
fl_cmd_apply(int argc, char **argv)
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
    fl_apply_result_t res = FL_APPLY_RESULT_INIT;
    fl_error_t err = FL_ERROR_INIT;
    int rc, code = FL_EXIT_OK;

    fl_dbcmd_init(&c, "apply");
    code = fl_dbcmd_open_pipeline(&c, argc, argv, opts, s_usage, &src, &p);
    if (code != 0) {
        code = code < 0 ? FL_EXIT_OK : code;
        goto cleanup;
    }
    rc = fl_pipeline_apply(p, &src, &res, &err);
    code = rc == 0 ? FL_EXIT_OK : fl_dbcmd_exit_code(&err);
    /*
     * Exit 3 says that nothing changed: a refusal after this run applied
     * earlier migrations, or ran (and committed) repeatable ones, is a
     * stop after changes, exit 1.
     */
    if (code == FL_EXIT_REFUSED && (res.applied > 0 || res.repeatables_run > 0))
        code = FL_EXIT_FAILED;
    if (c.json) {
        json_t *o = fl_json_pack("{s:b, s:i, s:i, s:i, s:{s:i, s:i, s:i}}",
                              "ok", rc == 0,
                              "applied", res.applied, "skipped", res.skipped,
                              "pending", res.pending, "repeatables",
                              "run", res.repeatables_run, "up_to_date",
                              res.repeatables_current, "held",
                              res.repeatables_held);
        if (rc != 0)
            json_object_set_new(o, "error", fl_dbcmd_error_json(&err));
        fl_dbcmd_print_json(o);
        json_decref(o);
    } else if (rc == 0) {
        char *where = fl_dsn_describe(c.dsn ? c.dsn : "");
        printf("applied %d migration%s to %s (%d already applied, %d "
               "pending)", res.applied, res.applied == 1 ? "" : "s", where,
               res.skipped, res.pending);
        if (res.repeatables_run + res.repeatables_current +
                res.repeatables_held > 0)
            printf("; repeatable: %d run, %d up to date%s", res.repeatables_run,
                   res.repeatables_current,
                   res.repeatables_held ? ", not run: versioned migrations "
                                          "pending" : "");
        printf("\n");
        free(where);
    }
    if (rc != 0)
        fl_cli_report("apply", &err, code);
    if (rc != 0 && res.applied > 0 && !c.json)
        fprintf(stderr, "flotilla apply: %d migration%s applied before it "
                "stay%s applied\n", res.applied, res.applied == 1 ? "" : "s",
                res.applied == 1 ? "s" : "");
cleanup:
    fl_dbcmd_close_pipeline(&p);
    fl_source_close(&src);
    fl_error_clear(&err);
    fl_dbcmd_stop(&c);
    return code;
}
