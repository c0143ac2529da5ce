/*
 * cmd_backups.c - `flotilla backups list|prune`: the backups the pipeline
 * took before destructive statements.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/backups.h"
#include "agent/ledger.h"
#include "agent/pg.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/parse.h"

static const char s_usage[] =
    "Usage: flotilla backups list [--db DSN] [--leftovers] [--json]\n"
    "       flotilla backups prune [--db DSN] (--older-than DURATION | --id N\n"
    "                              | --leftovers) [--dry-run]\n"
    "                              [--backup-dir DIR]\n"
    "\n"
    "list: every backup (source table, where it is, rows to restore, rows\n"
    "the migration added, taken, restored, pruned), leftovers marked; with\n"
    "--leftovers only those.  A leftover is a backup whose migration is no\n"
    "longer applied (rolled back, skipped with rollback --skip-down, or\n"
    "failed) and whose tables or file are still there: nothing will ever\n"
    "restore it.  A copy a rollback kept (of a table or column its down\n"
    "dropped while it held data, or of rows written since the migration\n"
    "that its restore replaced) is marked \"kept by a rollback\" and is a\n"
    "leftover once the rollback commits.\n"
    "prune: releases backups, dropping their tables and removing their\n"
    "files (from DIR with --backup-dir, when the files were moved there):\n"
    "  --older-than DURATION  those taken longer ago than DURATION (e.g.\n"
    "                         30d) that were not restored\n"
    "  --id N                 backup N alone (ids: backups list)\n"
    "  --leftovers            every leftover, with its row in the ledger\n"
    "A backup of a migration still applied keeps its row, marked pruned: a\n"
    "rollback of that migration then refuses to run rather than lose the\n"
    "data.  Any other pruned backup's row is deleted.  A file that cannot\n"
    "be removed is named and the exit status is 1.\n";

enum { S_OPT_OLDER = 2000, S_OPT_DRY, S_OPT_BACKUP_DIR, S_OPT_ID,
       S_OPT_LEFTOVERS };

typedef struct {
    int64_t older_ms;
    int64_t id;
    int leftovers;
    int dry;
    const char *backup_dir;
} s_opts;

static int
s_own(fl_dbcmd_t *c, int opt, const char *arg, void *own_arg)
{
    s_opts *o = own_arg;
    fl_error_t err = FL_ERROR_INIT;

    (void)c;
    switch (opt) {
    case S_OPT_OLDER:
        if (fl_parse_duration(&o->older_ms, arg, &err) != 0)
            return -fl_cli_bad_option("backups", "--older-than", &err);
        return 1;
    case S_OPT_DRY:
        o->dry = 1;
        return 1;
    case S_OPT_BACKUP_DIR:
        o->backup_dir = arg;
        return 1;
    case S_OPT_ID:
        if (fl_parse_int(&o->id, arg, 1, INT64_MAX, &err) != 0)
            return -fl_cli_bad_option("backups", "--id", &err);
        return 1;
    case S_OPT_LEFTOVERS:
        o->leftovers = 1;
        return 1;
    default:
        return 0;
    }
}

int
fl_cmd_backups(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_DBCMD_READ_LONGOPTS,
        {"older-than", required_argument, NULL, S_OPT_OLDER},
        {"dry-run", no_argument, NULL, S_OPT_DRY},
        {"backup-dir", required_argument, NULL, S_OPT_BACKUP_DIR},
        {"id", required_argument, NULL, S_OPT_ID},
        {"leftovers", no_argument, NULL, S_OPT_LEFTOVERS},
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    fl_pg_t *pg = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_error_t err = FL_ERROR_INIT;
    const char *verb = NULL, *backup_dir = NULL;
    int64_t older_ms = -1, id = 0;
    int dry = 0, leftovers = 0, code = FL_EXIT_OK;

    fl_dbcmd_init(&c, "backups");
    {
        s_opts o = {-1, 0, 0, 0, NULL};
        char *usage = fl_asprintf("%s\n%s", s_usage, fl_dbcmd_read_help);
        code = fl_dbcmd_parse_own(&c, argc, argv, opts, usage, s_own, &o,
                                  &optind);
        free(usage);
        if (code != 0)
            return code < 0 ? FL_EXIT_OK : code;
        older_ms = o.older_ms;
        dry = o.dry;
        backup_dir = o.backup_dir;
        id = o.id;
        leftovers = o.leftovers;
    }
    if (optind == argc - 1)
        verb = argv[optind];
    if (verb == NULL || (strcmp(verb, "list") != 0 && strcmp(verb, "prune") != 0))
        return fl_cli_usage_error("backups", "expected list or prune");
    if (strcmp(verb, "prune") == 0 &&
        (older_ms >= 0) + (id > 0) + leftovers != 1)
        return fl_cli_usage_error("backups", "prune needs one of --older-than "
                                  "DURATION, --id N, --leftovers");
    if (strcmp(verb, "list") == 0 && (older_ms >= 0 || id > 0 || dry))
        return fl_cli_usage_error("backups", "list takes no --older-than, "
                                  "--id or --dry-run");
    if (fl_pg_open(&pg, c.dsn, "flotilla", &err) != 0) {
        code = fl_dbcmd_report("backups", &err, FL_EXIT_CONNECT, c.json);
        goto cleanup;
    }
    /* A misspelt schema is not a target without backups (as in status). */
    if (c.popts.schema != NULL &&
        fl_pipeline_schema_check(pg, c.popts.schema, &err) != 0) {
        code = fl_dbcmd_report("backups", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    {
        int exists = fl_ledger_exists(pg, &err);
        if (exists < 0) {
            code = fl_dbcmd_report("backups", &err, FL_EXIT_FAILED, c.json);
            goto cleanup;
        }
        if (exists == 0) {
            if (c.json)
                printf("[]\n");
            else
                fl_cli_out("no backups (no flotilla ledger in %s)\n",
                       fl_pg_describe(pg));
            goto cleanup;
        }
    }
    if (strcmp(verb, "list") == 0) {
        const char *tp[2] = {fl_dbcmd_target(&c), leftovers ? "t" : "f"};
        size_t nleft = 0;
        fl_buf_t sql = FL_BUF_INIT(0);
        int qrc;

        fl_buf_addf(&sql,
            "SELECT id, version, source_schema || '.' || source_table,"
            " location, row_count, added_rows::text,"
            " " FL_PG_TIME_TEXT("created_at") ","
            " coalesce(" FL_PG_TIME_TEXT("restored_at") ", ''),"
            " coalesce(" FL_PG_TIME_TEXT("pruned_at") ", ''),"
            " CASE WHEN %s THEN 't' ELSE 'f' END,"
            " CASE WHEN statement_index = -2 THEN 't' ELSE 'f' END"
            " FROM flotilla.backups b WHERE target = $1"
            " AND (NOT $2::boolean OR %s) ORDER BY id",
            fl_backups_leftover_sql, fl_backups_leftover_sql);
        qrc = fl_pg_query(pg, &r, fl_buf_str(&sql), 2, tp, &err);
        fl_buf_release(&sql);
        if (qrc != 0) {
            code = fl_dbcmd_report("backups", &err, FL_EXIT_FAILED, c.json);
            goto cleanup;
        }
        for (size_t i = 0; i < r.nrows; i++)
            nleft += strcmp(fl_pg_value(&r, i, 9), "t") == 0;
        if (c.json) {
            json_t *a = json_array();
            for (size_t i = 0; i < r.nrows; i++)
                json_array_append_new(a, fl_json_pack(
                    "{s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:o, s:b, s:b}",
                    "id", (json_int_t)strtoll(fl_pg_value(&r, i, 0), NULL, 10),
                    "version", fl_pg_value(&r, i, 1),
                    "table", fl_pg_value(&r, i, 2), "location", fl_pg_value(&r, i, 3),
                    "rows", (json_int_t)strtoll(fl_pg_value(&r, i, 4), NULL, 10),
                    "added_rows",
                    (json_int_t)strtoll(fl_pg_value(&r, i, 5), NULL, 10),
                    "created_at", fl_pg_value(&r, i, 6),
                    "restored_at", fl_dbcmd_json_text(fl_pg_value(&r, i, 7)),
                    "pruned_at", fl_dbcmd_json_text(fl_pg_value(&r, i, 8)),
                    "leftover", strcmp(fl_pg_value(&r, i, 9), "t") == 0,
                    "kept_by_rollback", strcmp(fl_pg_value(&r, i, 10), "t") == 0));
            fl_dbcmd_print_json(a);
            json_decref(a);
        } else {
            for (size_t i = 0; i < r.nrows; i++)
                fl_cli_out("%4s  v%-5s %-30s %-40s %8s rows %6s added  %s%s%s%s%s%s%s\n",
                       fl_pg_value(&r, i, 0), fl_pg_value(&r, i, 1),
                       fl_pg_value(&r, i, 2), fl_pg_value(&r, i, 3),
                       fl_pg_value(&r, i, 4), fl_pg_value(&r, i, 5),
                       fl_pg_value(&r, i, 6),
                       *fl_pg_value(&r, i, 7) ? "  restored " : "",
                       fl_pg_value(&r, i, 7),
                       *fl_pg_value(&r, i, 8) ? "  pruned " : "",
                       fl_pg_value(&r, i, 8),
                       strcmp(fl_pg_value(&r, i, 10), "t") == 0
                           ? "  kept by a rollback"
                           : "",
                       strcmp(fl_pg_value(&r, i, 9), "t") == 0
                           ? "  LEFTOVER" : "");
            if (nleft)
                fl_cli_out("%zu leftover%s (%s no longer applied): "
                           "flotilla backups prune --leftovers removes "
                           "them\n", nleft, nleft == 1 ? "" : "s",
                           nleft == 1 ? "its migration is" : "their "
                           "migrations are");
            else if (leftovers)
                fl_cli_out("no leftovers\n");
        }
        goto cleanup;
    }
    {
        fl_prune_result_t pr;
        int prc = id > 0 ? fl_backups_prune_id(pg, fl_dbcmd_target(&c), id,
                                                backup_dir, dry, &pr, &err)
                  : leftovers
                      ? fl_backups_prune_leftovers(pg, fl_dbcmd_target(&c),
                                                   backup_dir, dry, &pr, &err)
                      : fl_backups_prune(pg, fl_dbcmd_target(&c), older_ms,
                                         backup_dir, dry, &pr, &err);

        for (size_t i = 0; i < pr.nproblems; i++)
            fprintf(stderr, "flotilla backups: warning: could not remove "
                            "backup file %s\n", pr.problems[i]);
        if (prc != 0) {
            code = fl_dbcmd_report("backups", &err, FL_EXIT_FAILED, c.json);
        } else {
            if (c.json) {
                json_t *o = fl_json_pack("{s:I, s:I, s:b, s:I}", "pruned",
                                         (json_int_t)pr.pruned, "forgotten",
                                         (json_int_t)pr.forgotten, "dry_run",
                                         dry, "files_not_removed",
                                         (json_int_t)pr.nproblems);
                fl_dbcmd_print_json(o);
                json_decref(o);
            } else {
                fl_cli_out("%s %zu backup%s%s%s\n",
                           dry ? "would prune" : "pruned", pr.pruned,
                           pr.pruned == 1 ? "" : "s",
                           pr.forgotten ? (dry ? " and delete their rows"
                                               : " and deleted their rows")
                                        : "",
                           pr.nproblems ? " (some files were not removed, "
                                          "see above)" : "");
            }
            if (pr.nproblems)
                code = FL_EXIT_FAILED;
        }
        fl_prune_result_release(&pr);
    }
cleanup:
    fl_pg_result_release(&r);
    fl_pg_close(&pg);
    fl_error_clear(&err);
    return code;
}
