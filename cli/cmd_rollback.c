/*
 * cmd_rollback.c - `flotilla rollback`: down newest first, restore of the
 * backed-up data, proof by checksum.
 */
#include <stdint.h>
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
#include "common/json.h"
#include "common/parse.h"
#include "common/str.h"

static const char s_usage[] =
    "Usage: flotilla rollback [--db DSN] (--last | --to VERSION | --bundle ID)\n"
    "                         [--accept-loss] [--accept-schema-diff]\n"
    "                         [--reason TEXT]\n"
    "                         (SOURCE | --dir DIR [--layout TOOL] | --down-from-ledger)\n"
    "       flotilla rollback [--db DSN] --skip-down VERSION --reason TEXT\n"
    "\n"
    "Rolls back applied migrations newest first, each in one transaction:\n"
    "runs its down section, taken from SOURCE (the bundle or directory that\n"
    "was applied: each migration's checksum must be the one the ledger\n"
    "recorded; a bundle is verified against --trust first), puts\n"
    "back the rows the migration changed or deleted and removes the rows it\n"
    "added to the tables it backed up (with triggers and foreign-key actions\n"
    "off; a plain INSERT into a table nothing backed up stays), sets back the\n"
    "sequences it reset, and proves every row.  Anything that cannot be\n"
    "put back fails the rollback with nothing changed and that migration\n"
    "still applied.  A down with no-transaction statements records its\n"
    "progress (status rolling_back); running rollback again resumes it.\n"
    "A table (or column) that down drops or truncates while it holds data\n"
    "(rows the application wrote since the migration, most often) is\n"
    "copied to flotilla_backup first and kept, never restored; so are the\n"
    "rows written since the migration that the restore replaces: see\n"
    "flotilla backups list.\n"
    "\n"
    "  --last                 the newest applied migration\n"
    "  --to VERSION           every applied migration above VERSION\n"
    "  --bundle ID            every applied migration of bundle ID\n"
    "  --backup-dir DIR       look for backup files in DIR (after moving\n"
    "                         them) instead of where they were written\n"
    "  --accept-loss          restore what can be restored when down does\n"
    "                         not re-create a table, column or sequence the\n"
    "                         backups need; the loss is recorded\n"
    "  --accept-schema-diff   finish even when the schema is not back to what\n"
    "                         it was; the difference is recorded\n"
    "  --reason TEXT          why (required with either accept option;\n"
    "                         recorded in the ledger and the log)\n"
    "  --down-from-ledger     the source is lost: run the copy of down the\n"
    "                         ledger kept when the migration was applied\n"
    "                         (said in the log); flotilla otherwise never\n"
    "                         executes text read back from a database\n"
    "  --skip-down VERSION    the escape hatch for a down that cannot run:\n"
    "                         marks VERSION (the newest applied migration,\n"
    "                         or one applied in part whose next statement\n"
    "                         cannot succeed) rolled back without running\n"
    "                         its down or restoring its backups; what it\n"
    "                         changed stays in the database, its backups\n"
    "                         are left over (backups list).  Needs\n"
    "                         --reason, recorded in the ledger and the log\n";

enum { S_OPT_LAST = 2000, S_OPT_BUNDLE, S_OPT_ACCEPT_LOSS, S_OPT_ACCEPT_DIFF,
       S_OPT_DOWN_FROM_LEDGER, S_OPT_SKIP_DOWN };

typedef struct {
    int last, nmodes;
    const char *bundle;
    fl_version_t skip_down; /* empty: not asked */
} s_opts;

static int
s_own(fl_dbcmd_t *c, int opt, const char *arg, void *own_arg)
{
    s_opts *o = own_arg;
    fl_error_t err = FL_ERROR_INIT;

    switch (opt) {
    case S_OPT_LAST:
        o->last = 1;
        o->nmodes++;
        return 1;
    case S_OPT_BUNDLE:
        if (!fl_str_is_hex(arg, FL_BUNDLE_ID_HEX - 1)) {
            FL_ERR(&err, FL_EINVAL, "\"%s\" is not a bundle id: %d "
                   "hexadecimal digits (flotilla status --json and "
                   "flotilla bundle inspect show them)", arg,
                   FL_BUNDLE_ID_HEX - 1);
            return -fl_cli_bad_option("rollback", "--bundle", &err);
        }
        o->bundle = arg;
        c->popts.bundle_known = 1;
        o->nmodes++;
        return 1;
    case S_OPT_ACCEPT_LOSS:
        c->popts.accept_loss = 1;
        return 1;
    case S_OPT_ACCEPT_DIFF:
        c->popts.accept_schema_diff = 1;
        return 1;
    case S_OPT_DOWN_FROM_LEDGER:
        c->popts.down_from_ledger = 1;
        return 1;
    case S_OPT_SKIP_DOWN:
        if (fl_version_parse_str(&o->skip_down, arg, &err) != 0)
            return -fl_cli_bad_option("rollback", "--skip-down", &err);
        o->nmodes++;
        return 1;
    case FL_OPT_TO:
        /* Unlike apply, 0 makes sense here: roll everything back (no
         * version of flotilla's own is 0; another tool's 0 stays). */
        if (fl_version_parse_str(&c->popts.to_version, arg, &err) != 0)
            return -fl_cli_bad_option("rollback", "--to", &err);
        o->nmodes++;
        return 1;
    default:
        return 0;
    }
}

/* rollback --skip-down VERSION --reason TEXT: no source, no down. */
static int
s_skip_down(fl_dbcmd_t *c, int argc, char **argv, int nmodes,
            const fl_version_t *version)
{
    fl_pipeline_t *p = NULL;
    fl_error_t err = FL_ERROR_INIT;
    int rc, code;

    if (nmodes != 1)
        return fl_cli_usage_error("rollback", "--skip-down goes alone: not "
                                  "with --last, --to or --bundle");
    if (c->popts.reason == NULL || *c->popts.reason == '\0')
        return fl_cli_usage_error("rollback", "--skip-down needs --reason "
                                  "TEXT (recorded in the ledger and the log)");
    if (c->popts.accept_loss || c->popts.accept_schema_diff ||
        c->popts.down_from_ledger)
        return fl_cli_usage_error("rollback", "--skip-down runs no down: "
                                  "--accept-loss, --accept-schema-diff and "
                                  "--down-from-ledger do not apply");
    if (optind < argc)
        return fl_cli_usage_error("rollback", "--skip-down takes no SOURCE "
                                  "(\"%s\"): no down runs", argv[optind]);
    if ((code = fl_dbcmd_start(c)) != 0)
        return code;
    if (fl_pipeline_open(&p, &c->popts, &err) != 0) {
        code = fl_dbcmd_report("rollback", &err,
                               fl_dbcmd_open_exit_code(&err), c->json);
        goto cleanup;
    }
    rc = fl_pipeline_skip_down(p, version, c->popts.reason, &err);
    code = rc == 0 ? FL_EXIT_OK : fl_dbcmd_exit_code(&err);
    if (code == FL_EXIT_REFUSED)
        code = FL_EXIT_FAILED;
    if (c->json) {
        json_t *o = fl_json_pack("{s:b, s:s, s:i}", "ok", rc == 0,
                                 "skipped_down", version->text,
                                 "rolled_back", rc == 0);
        if (rc != 0)
            json_object_set_new(o, "error", fl_dbcmd_error_json(&err));
        fl_dbcmd_print_json(o);
        json_decref(o);
    } else if (rc == 0) {
        fl_cli_out("marked migration %s rolled back without running its "
                   "down; what it changed stays in the database\n",
                   version->text);
    }
    if (rc != 0)
        fl_cli_report("rollback", &err, code);
cleanup:
    fl_dbcmd_close_pipeline(&p);
    fl_error_clear(&err);
    fl_dbcmd_stop(c);
    return code;
}

int
fl_cmd_rollback(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_DBCMD_LONGOPTS,
        FL_DBCMD_PIPELINE_LONGOPTS,
        {"to", required_argument, NULL, FL_OPT_TO},
        {"last", no_argument, NULL, S_OPT_LAST},
        {"bundle", required_argument, NULL, S_OPT_BUNDLE},
        {"accept-loss", no_argument, NULL, S_OPT_ACCEPT_LOSS},
        {"accept-schema-diff", no_argument, NULL, S_OPT_ACCEPT_DIFF},
        {"down-from-ledger", no_argument, NULL, S_OPT_DOWN_FROM_LEDGER},
        {"skip-down", required_argument, NULL, S_OPT_SKIP_DOWN},
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    fl_source_t src = FL_SOURCE_INIT;
    fl_pipeline_t *p = NULL;
    fl_error_t err = FL_ERROR_INIT;
    const char *bundle = NULL, *path = NULL;
    fl_version_t skip_down = FL_VERSION_INIT;
    int last = 0, count = 0, nmodes = 0, rc, code = FL_EXIT_OK;
    char *usage = fl_asprintf("%s\n%s%s", s_usage, fl_dbcmd_pipeline_help,
                              fl_dbcmd_help);

    fl_dbcmd_init(&c, "rollback");
    {
        s_opts o = {0, 0, NULL, FL_VERSION_INIT};
        code = fl_dbcmd_parse_own(&c, argc, argv, opts, usage, s_own, &o,
                                  &optind);
        if (code != 0) {
            free(usage);
            return code < 0 ? FL_EXIT_OK : code;
        }
        last = o.last;
        nmodes = o.nmodes;
        bundle = o.bundle;
        skip_down = o.skip_down;
    }
    free(usage);
    if (fl_version_is_set(&skip_down))
        return s_skip_down(&c, argc, argv, nmodes, &skip_down);
    if (optind < argc - 1)
        return fl_cli_usage_error("rollback", "unexpected argument \"%s\"",
                                  argv[optind + 1]);
    path = fl_dbcmd_source_arg(&c, argc, argv, optind, &code);
    if (code != 0)
        return code;
    if (path == NULL && !c.popts.down_from_ledger)
        return fl_cli_usage_error("rollback", "give the SOURCE that was "
                                  "applied (a bundle or a migrations "
                                  "directory), or --down-from-ledger if it "
                                  "is lost");
    if (nmodes != 1)
        return fl_cli_usage_error("rollback", "give exactly one of --last, "
                                  "--to VERSION, --bundle ID");
    if ((c.popts.accept_loss || c.popts.accept_schema_diff) &&
        (c.popts.reason == NULL || *c.popts.reason == '\0'))
        return fl_cli_usage_error("rollback", "--accept-loss and "
                                  "--accept-schema-diff need --reason TEXT");
    if ((code = fl_dbcmd_start(&c)) != 0)
        return code;
    if (path != NULL && (code = fl_dbcmd_open_source(&c, path, &src)) != 0)
        goto cleanup;
    if (fl_pipeline_open(&p, &c.popts, &err) != 0) {
        code = fl_dbcmd_report("rollback", &err,
                               fl_dbcmd_open_exit_code(&err), c.json);
        goto cleanup;
    }
    fl_dbcmd_signals_watch(p);
    rc = fl_pipeline_rollback(p, path != NULL ? &src : NULL,
                              last ? FL_ROLLBACK_LAST
                                   : bundle ? FL_ROLLBACK_BUNDLE
                                            : FL_ROLLBACK_TO,
                              &c.popts.to_version, bundle, &count, &err);
    code = rc == 0 ? FL_EXIT_OK : fl_dbcmd_exit_code(&err);
    if (code == FL_EXIT_REFUSED)
        code = FL_EXIT_FAILED;
    if (c.json) {
        json_t *o = fl_json_pack("{s:b, s:i, s:i}", "ok", rc == 0,
                                 "rolled_back", count, "kept",
                                 p ? fl_pipeline_kept(p) : 0);
        if (rc != 0)
            json_object_set_new(o, "error", fl_dbcmd_error_json(&err));
        fl_dbcmd_print_json(o);
        json_decref(o);
    } else if (rc == 0) {
        int kept = fl_pipeline_kept(p);
        printf("rolled back %d migration%s", count, count == 1 ? "" : "s");
        if (kept > 0)
            printf("; kept %d cop%s of data it removed, never restored "
                   "(flotilla backups list --leftovers)", kept,
                   kept == 1 ? "y" : "ies");
        printf("\n");
    }
    if (rc != 0)
        fl_cli_report("rollback", &err, code);
cleanup:
    fl_dbcmd_close_pipeline(&p);
    fl_source_close(&src);
    fl_error_clear(&err);
    fl_dbcmd_stop(&c);
    return code;
}
