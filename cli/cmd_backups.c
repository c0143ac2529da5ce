/*
 * cmd_backups.c - `flotilla backups list|prune`: the backups the pipeline
 * took before destructive statements.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/pg.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/parse.h"

static const char s_usage[] =
    "Usage: flotilla backups list [--db DSN] [--json]\n"
    "       flotilla backups prune [--db DSN] --older-than DURATION [--dry-run]\n"
    "\n"
    "list: every backup (source table, where it is, rows, checksum, taken,\n"
    "restored, pruned).\n"
    "prune: drops backup tables taken longer ago than DURATION (e.g. 30d).\n"
    "A rollback of a migration whose backup was pruned refuses to run\n"
    "rather than lose the data.\n";

enum { S_OPT_OLDER = 2000, S_OPT_DRY };

int
fl_cmd_backups(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_DBCMD_LONGOPTS,
        {"older-than", required_argument, NULL, S_OPT_OLDER},
        {"dry-run", no_argument, NULL, S_OPT_DRY},
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    fl_pg_t *pg = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_error_t err = FL_ERROR_INIT;
    const char *verb = NULL;
    int64_t older_ms = -1;
    int dry = 0, opt, code = FL_EXIT_OK;

    fl_dbcmd_init(&c, "backups");
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == FL_OPT_HELP) {
            printf("%s\n%s", s_usage, fl_dbcmd_help);
            return FL_EXIT_OK;
        } else if (opt == S_OPT_OLDER) {
            if (fl_parse_duration(&older_ms, optarg, &err) != 0)
                return fl_cli_bad_option("backups", "--older-than", &err);
        } else if (opt == S_OPT_DRY) {
            dry = 1;
        } else if (opt == '?' || fl_dbcmd_option(&c, opt, optarg) <= 0) {
            return fl_cli_usage_error("backups", "invalid option \"%s\"",
                                      argv[optind - 1]);
        }
    }
    if (optind == argc - 1)
        verb = argv[optind];
    if (verb == NULL || (strcmp(verb, "list") != 0 && strcmp(verb, "prune") != 0))
        return fl_cli_usage_error("backups", "expected list or prune");
    if (strcmp(verb, "prune") == 0 && older_ms < 0)
        return fl_cli_usage_error("backups", "prune needs --older-than DURATION");
    if (fl_pg_open(&pg, c.dsn, "flotilla", &err) != 0) {
        code = fl_cli_report("backups", &err, FL_EXIT_CONNECT);
        goto cleanup;
    }
    {
        char *v = NULL;
        if (fl_pg_query_value(pg, &v, "SELECT to_regclass('flotilla.backups')"
                              " IS NOT NULL", 0, NULL, &err) != 0) {
            code = fl_cli_report("backups", &err, FL_EXIT_FAILED);
            goto cleanup;
        }
        if (strcmp(v, "t") != 0) {
            free(v);
            if (c.json)
                printf("[]\n");
            else
                printf("no backups (no flotilla ledger in %s)\n",
                       fl_pg_describe(pg));
            goto cleanup;
        }
        free(v);
    }
    if (strcmp(verb, "list") == 0) {
        if (fl_pg_query(pg, &r,
                "SELECT id, version, source_schema || '.' || source_table,"
                " location, row_count, checksum,"
                " to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'),"
                " coalesce(to_char(restored_at, 'YYYY-MM-DD HH24:MI:SS'), ''),"
                " coalesce(to_char(pruned_at, 'YYYY-MM-DD HH24:MI:SS'), '')"
                " FROM flotilla.backups ORDER BY id", 0, NULL, &err) != 0) {
            code = fl_cli_report("backups", &err, FL_EXIT_FAILED);
            goto cleanup;
        }
        if (c.json) {
            json_t *a = json_array();
            for (size_t i = 0; i < r.nrows; i++)
                json_array_append_new(a, json_pack(
                    "{s:I, s:I, s:s, s:s, s:I, s:s, s:s, s:s, s:s}",
                    "id", (json_int_t)strtoll(fl_pg_value(&r, i, 0), NULL, 10),
                    "version", (json_int_t)strtoll(fl_pg_value(&r, i, 1), NULL, 10),
                    "table", fl_pg_value(&r, i, 2), "location", fl_pg_value(&r, i, 3),
                    "rows", (json_int_t)strtoll(fl_pg_value(&r, i, 4), NULL, 10),
                    "checksum", fl_pg_value(&r, i, 5),
                    "created_at", fl_pg_value(&r, i, 6),
                    "restored_at", fl_pg_value(&r, i, 7),
                    "pruned_at", fl_pg_value(&r, i, 8)));
            fl_dbcmd_print_json(a);
            json_decref(a);
        } else {
            for (size_t i = 0; i < r.nrows; i++)
                printf("%4s  v%-5s %-30s %-40s %8s rows  %s%s%s%s%s\n",
                       fl_pg_value(&r, i, 0), fl_pg_value(&r, i, 1),
                       fl_pg_value(&r, i, 2), fl_pg_value(&r, i, 3),
                       fl_pg_value(&r, i, 4), fl_pg_value(&r, i, 6),
                       *fl_pg_value(&r, i, 7) ? "  restored " : "",
                       fl_pg_value(&r, i, 7),
                       *fl_pg_value(&r, i, 8) ? "  pruned " : "",
                       fl_pg_value(&r, i, 8));
        }
        goto cleanup;
    }
    {
        char ms[24];
        const char *p[1] = {ms};
        snprintf(ms, sizeof(ms), "%lld", (long long)older_ms);
        if (fl_pg_query(pg, &r,
                "SELECT id, CASE WHEN kind = 'table' THEN location END,"
                " CASE WHEN kind = 'dump' THEN location END"
                " FROM flotilla.backups WHERE pruned_at IS NULL"
                " AND created_at < now() - make_interval(secs => $1::bigint / 1000.0)"
                " ORDER BY id", 1, p, &err) != 0) {
            code = fl_cli_report("backups", &err, FL_EXIT_FAILED);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < r.nrows && !dry; i++) {
        const char *file = fl_pg_value(&r, i, 2);
        /* One transaction per backup: the drop and its mark go together. */
        if (fl_pg_execf(pg, &err, "BEGIN; %s%s%s UPDATE flotilla.backups SET"
                        " pruned_at = now() WHERE id = %s; COMMIT",
                        file ? "" : "DROP TABLE IF EXISTS ",
                        file ? "" : fl_pg_value(&r, i, 1), file ? "" : ";",
                        fl_pg_value(&r, i, 0)) != 0) {
            code = fl_cli_report("backups", &err, FL_EXIT_FAILED);
            goto cleanup;
        }
        /* The mark is committed first: a file left behind is only litter. */
        if (file && unlink(file) != 0 && errno != ENOENT)
            fprintf(stderr, "flotilla backups: warning: could not remove "
                            "\"%s\": %s\n", file, strerror(errno));
    }
    if (c.json)
        printf("{\"pruned\": %zu, \"dry_run\": %s}\n", r.nrows,
               dry ? "true" : "false");
    else
        printf("%s %zu backup%s\n", dry ? "would prune" : "pruned", r.nrows,
               r.nrows == 1 ? "" : "s");
cleanup:
    fl_pg_result_release(&r);
    fl_pg_close(&pg);
    fl_error_clear(&err);
    return code;
}
