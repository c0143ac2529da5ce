/*
 * cmd_log.c - `flotilla log`: the target's flotilla.migration_logs, as the
 * old framework's logs were queried: recent runs, failed runs, slowest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ledger.h"
#include "agent/pg.h"
#include "agent/pipeline.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/parse.h"

static const char s_usage[] =
    "Usage: flotilla log [--db DSN] [--limit N] [--failed] [--slowest] [--json]\n"
    "\n"
    "Shows the pipeline steps recorded in the database (newest first).\n"
    "  --limit N              at most N rows (default 50)\n"
    "  --failed               only failed and refused steps\n"
    "  --slowest              the slowest steps first\n";

enum { S_OPT_LIMIT = 2000, S_OPT_FAILED, S_OPT_SLOWEST };

typedef struct {
    int64_t limit;
    int failed, slowest;
} s_opts;

static int
s_own(fl_dbcmd_t *c, int opt, const char *arg, void *own_arg)
{
    s_opts *o = own_arg;
    fl_error_t err = FL_ERROR_INIT;

    (void)c;
    switch (opt) {
    case S_OPT_LIMIT:
        if (fl_parse_int(&o->limit, arg, 1, 1000000, &err) != 0)
            return -fl_cli_bad_option("log", "--limit", &err);
        return 1;
    case S_OPT_FAILED:
        o->failed = 1;
        return 1;
    case S_OPT_SLOWEST:
        o->slowest = 1;
        return 1;
    default:
        return 0;
    }
}

int
fl_cmd_log(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_DBCMD_READ_LONGOPTS,
        {"limit", required_argument, NULL, S_OPT_LIMIT},
        {"failed", no_argument, NULL, S_OPT_FAILED},
        {"slowest", no_argument, NULL, S_OPT_SLOWEST},
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    fl_pg_t *pg = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_error_t err = FL_ERROR_INIT;
    const char *tp[1] = {NULL};
    int64_t limit = 50;
    int failed = 0, slowest = 0, code = FL_EXIT_OK;
    char *sql = NULL;
    char *v = NULL;

    fl_dbcmd_init(&c, "log");
    {
        s_opts o = {50, 0, 0};
        char *usage = fl_asprintf("%s%s", s_usage, fl_dbcmd_read_help);
        int first = 0;
        code = fl_dbcmd_parse_own(&c, argc, argv, opts, usage, s_own, &o,
                                  &first);
        free(usage);
        if (code != 0)
            return code < 0 ? FL_EXIT_OK : code;
        limit = o.limit;
        failed = o.failed;
        slowest = o.slowest;
        optind = first;
    }
    if (optind != argc)
        return fl_cli_usage_error("log", "unexpected argument \"%s\"",
                                  argv[optind]);
    if (fl_pg_open(&pg, c.dsn, "flotilla", &err) != 0) {
        code = fl_dbcmd_report("log", &err, FL_EXIT_CONNECT, c.json);
        goto cleanup;
    }
    if (c.popts.schema != NULL &&
        fl_pipeline_schema_check(pg, c.popts.schema, &err) != 0) {
        code = fl_dbcmd_report("log", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    {
        int exists = fl_ledger_exists(pg, &err);
        if (exists < 0) {
            code = fl_dbcmd_report("log", &err, FL_EXIT_FAILED, c.json);
            goto cleanup;
        }
        if (exists == 0) {
            FL_ERR(&err, FL_ENOTFOUND, "database \"%s\" has no flotilla "
                   "ledger", fl_pg_describe(pg));
            fl_error_set_hint(&err, "Nothing was ever applied here with "
                                    "flotilla.");
            code = fl_dbcmd_report("log", &err, FL_EXIT_FAILED, c.json);
            goto cleanup;
        }
    }
    tp[0] = fl_dbcmd_target(&c);
    sql = fl_asprintf(
        "SELECT id, " FL_PG_TIME_TEXT("created_at") ","
        " coalesce(version::text, ''), coalesce(migration_name, ''), step,"
        " status, coalesce(duration_ms, 0), coalesce(message, ''),"
        " coalesce(bundle_id, ''), rollout_id FROM flotilla.migration_logs"
        " WHERE target = $1%s ORDER BY %s LIMIT %lld",
        failed ? " AND status IN ('failed', 'refused')" : "",
        slowest ? "duration_ms DESC NULLS LAST, id DESC" : "id DESC",
        (long long)limit);
    if (fl_pg_query(pg, &r, sql, 1, tp, &err) != 0) {
        code = fl_dbcmd_report("log", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    if (c.json) {
        json_t *a = json_array();
        for (size_t i = 0; i < r.nrows; i++)
            json_array_append_new(a, fl_json_pack(
                "{s:I, s:s, s:o, s:o, s:s, s:s, s:I, s:o, s:o, s:o}",
                "id", (json_int_t)strtoll(fl_pg_value(&r, i, 0), NULL, 10),
                "created_at", fl_pg_value(&r, i, 1),
                "version", fl_dbcmd_json_text(fl_pg_value(&r, i, 2)),
                "migration", fl_dbcmd_json_text(fl_pg_value(&r, i, 3)),
                "step", fl_pg_value(&r, i, 4), "status", fl_pg_value(&r, i, 5),
                "duration_ms", (json_int_t)strtoll(fl_pg_value(&r, i, 6), NULL, 10),
                "message", fl_dbcmd_json_text(fl_pg_value(&r, i, 7)),
                "bundle", fl_dbcmd_json_text(fl_pg_value(&r, i, 8)),
                "rollout", fl_dbcmd_json_text(fl_pg_value(&r, i, 9))));
        fl_dbcmd_print_json(a);
        json_decref(a);
    } else {
        for (size_t i = 0; i < r.nrows; i++)
            fl_cli_out("%s  %-5s %-12s %-8s %6s ms  %s\n", fl_pg_value(&r, i, 1),
                   fl_pg_value(&r, i, 2), fl_pg_value(&r, i, 4),
                   fl_pg_value(&r, i, 5), fl_pg_value(&r, i, 6),
                   fl_pg_value(&r, i, 7));
    }
cleanup:
    free(v);
    free(sql);
    fl_pg_result_release(&r);
    fl_pg_close(&pg);
    fl_error_clear(&err);
    return code;
}
