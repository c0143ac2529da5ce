/*
 * cmd_baseline.c - `flotilla baseline`: records the migrations a database
 * already ran without running them (agent/baseline.c), so that flotilla
 * can take over a database another tool migrated.
 */
#include <stdio.h>
#include <stdlib.h>

#include "agent/pipeline.h"
#include "agent/source.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/dsn.h"
#include "common/json.h"
#include "proto/layout.h"
#include "proto/version.h"

static const char s_usage[] =
    "Usage: flotilla baseline [--db DSN] SOURCE|--dir DIR [--layout TOOL]\n"
    "                         [--to VERSION] [--from TOOL] [--json]\n"
    "\n"
    "Records the migrations of SOURCE that already ran on the database as\n"
    "applied, without running them, so that flotilla apply takes the next\n"
    "one normally.  SOURCE is a bundle, a flotilla migrations directory,\n"
    "or the migrations directory of diesel, golang-migrate, pop, sqlx,\n"
    "dbmate or Flyway (read as that tool reads it, as apply reads it;\n"
    "--dir DIR --layout TOOL names the tool when its files do not).\n"
    "\n"
    "Which migrations ran: with --from, what that tool's own ledger in the\n"
    "database says (its table in --schema, else in the first schema of\n"
    "the connection's default search_path, public when none); without,\n"
    "every migration up to --to (all of them without --to).  pop's files\n"
    "sharing one name are one migration: it ran when each file's row is\n"
    "there.  Without --schema, that default must put first the schema\n"
    "apply runs a database's migrations in (search_path \"$user\", public):\n"
    "another is refused, as the next apply would not find the history's\n"
    "tables there; baseline and apply with --schema SCHEMA instead.\n"
    "\n"
    "Before writing anything it checks that the database looks migrated:\n"
    "the tables and columns the baselined migrations create exist.  It\n"
    "refuses, with the difference and nothing written, when they do not;\n"
    "when the tool's ledger has a version SOURCE lacks, a gap, a dirty or\n"
    "failed migration, some but not all files of a pop group, or a sqlx\n"
    "checksum the file no longer has; and when flotilla's ledger already\n"
    "disagrees.\n"
    "Running it again records nothing new (exit 0, \"already\").\n"
    "\n"
    "  --from TOOL    diesel, golang-migrate, pop, sqlx, dbmate or flyway:\n"
    "                 read that tool's ledger\n"
    "  --to VERSION   baseline up to and including VERSION\n"
    "  --allow-older-release  a bundle older than a release applied on its\n"
    "                 channel (needs --reason); a bundle is refused, as by\n"
    "                 apply, outside its signed scope or older than that\n"
    "\n"
    "Exit status: 0 baselined (or already), 1 failed, 2 usage, 3 refused\n"
    "(nothing written), 4 could not connect, 5 the target is locked.\n";

enum { S_OPT_FROM = 2000 };

typedef struct {
    const char *from;
} s_own_t;

static int
s_own(fl_dbcmd_t *c, int opt, const char *arg, void *own_arg)
{
    s_own_t *o = own_arg;
    fl_layout_tool tool;
    fl_error_t err = FL_ERROR_INIT;

    if (opt != S_OPT_FROM)
        return 0;
    /* One message for any other name: the layouts' hint listed auto, sql
     * and flotilla, which --from refuses (found by an audit). */
    if (fl_layout_tool_from_name(&tool, arg, &err) != 0 ||
        tool == FL_LAYOUT_AUTO || tool == FL_LAYOUT_SQL ||
        tool == FL_LAYOUT_FLOTILLA) {
        fl_error_clear(&err);
        fl_cli_usage_error(c->cmd, "--from %s: flotilla reads the ledgers "
                           "of diesel, golang-migrate, pop, sqlx, dbmate "
                           "and flyway", arg);
        return -FL_EXIT_USAGE;
    }
    o->from = arg;
    return 1;
}

int
fl_cmd_baseline(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_DBCMD_LONGOPTS,
        FL_DBCMD_PIPELINE_LONGOPTS,
        {"to", required_argument, NULL, FL_OPT_TO},
        {"from", required_argument, NULL, S_OPT_FROM},
        {"allow-older-release", no_argument, NULL, FL_OPT_ALLOW_OLDER},
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    s_own_t own = {NULL};
    fl_source_t src = FL_SOURCE_INIT;
    fl_pipeline_t *p = NULL;
    fl_baseline_result_t res = {0, 0, 0, FL_VERSION_INIT, NULL};
    fl_error_t err = FL_ERROR_INIT;
    char *text = NULL;
    const char *verdict = "refused", *path = NULL;
    int first = 0, rc = -1, code;

    fl_dbcmd_init(&c, "baseline");
    text = fl_asprintf("%s\n%s%s", s_usage, fl_dbcmd_pipeline_help,
                       fl_dbcmd_help);
    code = fl_dbcmd_parse_own(&c, argc, argv, opts, text, s_own, &own,
                              &first);
    if (code != 0) {
        code = code < 0 ? FL_EXIT_OK : code;
        goto cleanup;
    }
    path = fl_dbcmd_source_arg(&c, argc, argv, first, &code);
    if (code != 0)
        goto cleanup;
    if (path == NULL || first < argc - (c.dir ? 0 : 1)) {
        code = fl_cli_usage_error(c.cmd, "expected one SOURCE (a bundle or "
                                  "a migrations directory) or --dir DIR");
        goto cleanup;
    }
    if ((code = fl_dbcmd_start(&c)) != 0 ||
        (code = fl_dbcmd_open_source(&c, path, &src)) != 0)
        goto cleanup;
    c.popts.bundle_id = src.bundle_id;
    if (fl_pipeline_open(&p, &c.popts, &err) != 0) {
        code = fl_dbcmd_report(c.cmd, &err, fl_dbcmd_open_exit_code(&err),
                               c.json);
        goto cleanup;
    }
    fl_dbcmd_signals_watch(p);
    rc = fl_pipeline_baseline(p, &src, own.from, &res, &err);
    code = rc == 0 ? FL_EXIT_OK
           : err.code == FL_ENOTFOUND ? FL_EXIT_REFUSED
                                      : fl_dbcmd_exit_code(&err);
    if (rc == 0)
        verdict = res.baselined > 0 ? "baselined"
                  : res.already > 0 ? "already" : "none ran";
    else if (code != FL_EXIT_REFUSED)
        verdict = "failed";
    if (c.json) {
        json_t *o = fl_json_pack("{s:b, s:s, s:i, s:i, s:i, s:s?, s:s?, s:s?}",
                                 "ok", rc == 0, "verdict", verdict,
                                 "baselined", res.baselined,
                                 "already", res.already,
                                 "pending", res.pending,
                                 "through", fl_version_is_set(&res.through)
                                                ? res.through.text
                                                : NULL,
                                 "from", own.from,
                                 "tool_ledger", res.tool_ledger);
        if (rc != 0)
            json_object_set_new(o, "error", fl_dbcmd_error_json(&err));
        fl_dbcmd_print_json(o);
        json_decref(o);
    } else if (rc == 0) {
        char *where = fl_dsn_describe(c.dsn ? c.dsn : "");
        if (res.baselined > 0)
            fl_cli_out("baselined %d migration%s on %s through version %s "
                       "(%d recorded already, %d pending)\n", res.baselined,
                       res.baselined == 1 ? "" : "s", where, res.through.text,
                       res.already, res.pending);
        else if (res.already > 0)
            fl_cli_out("nothing to baseline on %s: %d migration%s through "
                       "version %s recorded already (%d pending)\n", where,
                       res.already, res.already == 1 ? "" : "s",
                       res.through.text, res.pending);
        else
            fl_cli_out("nothing to baseline on %s: none of the source's "
                       "migrations ran (%d pending)\n", where, res.pending);
        free(where);
    }
    if (rc != 0)
        fl_cli_report(c.cmd, &err, code);
cleanup:
    fl_dbcmd_close_pipeline(&p);
    fl_source_close(&src);
    fl_baseline_result_release(&res);
    fl_error_clear(&err);
    fl_dbcmd_stop(&c);
    free(text);
    return code;
}
