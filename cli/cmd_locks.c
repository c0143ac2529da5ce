/*
 * cmd_locks.c - `flotilla locks`: who blocks whom, as a tree, so an
 * operator sees what a stuck migration waits for (the old framework's
 * "Migration stuck" runbook as a command).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pg.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/json.h"

static const char s_usage[] =
    "Usage: flotilla locks [--db DSN] [--json]\n"
    "\n"
    "Shows the sessions that block others and the sessions they block, as\n"
    "a tree: PID, application, state, transaction age, wait event and\n"
    "query, over every database of the server.  Terminate a blocker only\n"
    "if it is safe:\n"
    "  SELECT pg_terminate_backend(PID);\n";

/* Sessions that block or are blocked, with whom they wait for. */
static const char s_sql[] =
    "WITH s AS (SELECT pid, pg_blocking_pids(pid) AS blocked_by,"
    "  coalesce(application_name, '') AS app, coalesce(state, '') AS state,"
    "  coalesce(to_char(now() - xact_start, 'HH24:MI:SS'), '') AS age,"
    "  coalesce(wait_event_type || ':' || wait_event, '') AS wait,"
    "  left(regexp_replace(coalesce(query, ''), '\\s+', ' ', 'g'), 200) AS query"
    "  FROM pg_stat_activity WHERE backend_type = 'client backend'"
    "  AND pid <> pg_backend_pid())"
    " SELECT pid, array_to_string(blocked_by, ','), app, state, age, wait, query"
    " FROM s WHERE cardinality(blocked_by) > 0"
    "  OR pid IN (SELECT unnest(blocked_by) FROM s) ORDER BY pid";

static int
s_blocked_by(const fl_pg_result_t *r, size_t row, const char *pid)
{
    const char *list = fl_pg_value(r, row, 1);
    size_t n = strlen(pid);

    for (const char *p = list; p && *p;) {
        if (strncmp(p, pid, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return 0;
}

static void
s_print(const fl_pg_result_t *r, size_t row, int depth, int *seen)
{
    const char *pid = fl_pg_value(r, row, 0);

    if (seen[row] || depth > 16)
        return;
    seen[row] = 1;
    fl_cli_out("%*s%s PID %s  app=\"%s\" state=%s age=%s wait=%s\n%*s    %s\n",
           depth * 4, "", depth ? "└─ blocked:" : "blocker:", pid,
           fl_pg_value(r, row, 2), fl_pg_value(r, row, 3),
           fl_pg_value(r, row, 4), fl_pg_value(r, row, 5), depth * 4, "",
           fl_pg_value(r, row, 6));
    for (size_t i = 0; i < r->nrows; i++)
        if (s_blocked_by(r, i, pid))
            s_print(r, i, depth + 1, seen);
}

/* Column col of row i, or NULL when it is empty. */
static const char *
s_or_null(const fl_pg_result_t *r, size_t i, size_t col)
{
    const char *v = fl_pg_value(r, i, col);

    return v != NULL && *v != '\0' ? v : NULL;
}

int
fl_cmd_locks(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_DBCMD_READ_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    fl_pg_t *pg = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_error_t err = FL_ERROR_INIT;
    int first = 0, rc, code = FL_EXIT_OK;

    fl_dbcmd_init(&c, "locks");
    {
        char *usage = fl_asprintf("%s\n%s", s_usage, fl_dbcmd_server_help);
        rc = fl_dbcmd_parse(&c, argc, argv, opts, usage, &first);
        free(usage);
    }
    if (rc != 0)
        return rc < 0 ? FL_EXIT_OK : rc;
    if (first != argc)
        return fl_cli_usage_error("locks", "unexpected argument \"%s\"",
                                  argv[first]);
    /* Accepted and ignored before: the sessions are the server's. */
    if (c.popts.schema != NULL)
        return fl_cli_usage_error("locks", "--schema does not apply: locks "
                                  "shows every session of the server");
    if (fl_pg_open(&pg, c.dsn, "flotilla", &err) != 0) {
        code = fl_dbcmd_report("locks", &err, FL_EXIT_CONNECT, c.json);
        goto cleanup;
    }
    if (fl_pg_query(pg, &r, s_sql, 0, NULL, &err) != 0) {
        code = fl_dbcmd_report("locks", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    if (c.json) {
        json_t *a = json_array();
        for (size_t i = 0; i < r.nrows; i++) {
            json_t *by = json_array();
            const char *list = fl_pg_value(&r, i, 1);
            for (const char *p = list; p && *p;) {
                json_array_append_new(by, json_integer(strtol(p, NULL, 10)));
                p = strchr(p, ',');
                if (p)
                    p++;
            }
            /* An empty value (no application name, ...) is null. */
            json_array_append_new(a, fl_json_pack(
                "{s:i, s:o, s:s?, s:s?, s:s?, s:s?, s:s?}",
                "pid", (int)strtol(fl_pg_value(&r, i, 0), NULL, 10),
                "blocked_by", by, "application", s_or_null(&r, i, 2),
                "state", s_or_null(&r, i, 3), "age", s_or_null(&r, i, 4),
                "wait", s_or_null(&r, i, 5), "query", s_or_null(&r, i, 6)));
        }
        fl_dbcmd_print_json(a);
        json_decref(a);
    } else if (r.nrows == 0) {
        fl_cli_out("no session is blocked\n");
    } else {
        int *seen = calloc(r.nrows, sizeof(int));
        /* Roots: sessions that block others and wait for nobody. */
        for (size_t i = 0; i < r.nrows; i++)
            if (*fl_pg_value(&r, i, 1) == '\0')
                s_print(&r, i, 0, seen);
        for (size_t i = 0; i < r.nrows; i++) /* cycles (deadlock in progress) */
            s_print(&r, i, 0, seen);
        free(seen);
    }
cleanup:
    fl_pg_result_release(&r);
    fl_pg_close(&pg);
    fl_error_clear(&err);
    return code;
}
