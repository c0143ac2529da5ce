/*
 * cmd_status.c - `flotilla status`: what the ledger says is applied, what
 * is pending from a source, and drift.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/ledger.h"
#include "agent/pg.h"
#include "agent/pipeline.h"
#include "agent/planjson.h"
#include "agent/schema.h"
#include "agent/source.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/json.h"

static const char s_usage[] =
    "Usage: flotilla status [--db DSN] [SOURCE | --dir DIR [--layout TOOL]]\n"
    "                       [--trust PATH] [--json]\n"
    "\n"
    "Lists every migration the database's ledger knows (version, name,\n"
    "checksum, bundle, status, when, by whom, duration) and, given SOURCE,\n"
    "the migrations still pending, any drift (an applied migration whose\n"
    "checksum differs from the source), and any applied migration the\n"
    "source lacks (MISSING: its file is gone; RENUMBERED: a file of the\n"
    "source has its content under another number).  Repeatable migrations\n"
    "(R__name.sql) are listed with where they stand: new, changed, needs a\n"
    "run, failed, up to date.  Then whether the schema is as flotilla left\n"
    "it after its last apply, repeatable run or rollback (SCHEMA CHANGED:\n"
    "someone changed it outside flotilla since; \"schema_state\" with\n"
    "--json, null when nothing was recorded yet).  Exit 3 when there is\n"
    "drift or a migration missing; a changed schema alone does not change\n"
    "the exit code.\n";

/*
 * The repeatable migrations (issue 14): with a source, each of its own
 * with where it stands (fl_ledger_repeatable_state: new, changed, needs a
 * run, failed, running, up to date), then the ledger's rows the source
 * lacks ("not in the source"); without one, the ledger's rows.  Added to
 * out as "repeatables"; printed unless json.
 */
static int
s_repeatables(json_t *out, fl_pg_t *pg, const char *target,
              const fl_source_t *src, int json, fl_error_t *err)
{
    fl_ledger_repeatables_t rows = {NULL, 0};
    const fl_migration_list_t *reps = src->repeatables;
    json_t *arr = json_array();
    size_t i;
    json_t *x;
    int rc;

    if ((rc = fl_ledger_load_repeatables(pg, target, &rows, err)) != 0) {
        json_decref(arr);
        return rc;
    }
    for (i = 0; reps && i < reps->count; i++) {
        const fl_migration_t *m = &reps->items[i];
        const fl_ledger_repeatable_t *r = fl_ledger_find_repeatable(&rows,
                                                                    m->name);
        json_array_append_new(arr, fl_json_pack(
            "{s:o, s:o, s:s, s:i, s:o, s:o, s:o}", "name",
            fl_json_text(m->name), "file", fl_json_text(m->file), "state",
            fl_ledger_repeatable_state(r, m), "runs", r ? r->runs : 0,
            "finished_at", fl_json_text(r ? r->finished_at : NULL),
            "why", fl_json_text(r ? (r->rerun_reason ? r->rerun_reason
                                                     : r->error_message)
                                  : NULL),
            "baselined_from", fl_json_text(r ? r->baseline_source : NULL)));
    }
    for (i = 0; i < rows.count; i++) {
        const fl_ledger_repeatable_t *r = &rows.items[i];
        int in_source = 0;
        for (size_t k = 0; reps && k < reps->count && !in_source; k++)
            in_source = strcmp(reps->items[k].name, r->name) == 0;
        if (in_source)
            continue;
        json_array_append_new(arr, fl_json_pack(
            "{s:o, s:o, s:s, s:i, s:o, s:o, s:o}", "name",
            fl_json_text(r->name), "file", fl_json_text(r->file), "state",
            src->repeatables ? "not in the source" : r->status, "runs",
            r->runs, "finished_at", fl_json_text(r->finished_at), "why",
            fl_json_text(r->rerun_reason ? r->rerun_reason
                                         : r->error_message),
            "baselined_from", fl_json_text(r->baseline_source)));
    }
    fl_ledger_repeatables_release(&rows);
    if (!json && json_array_size(arr) > 0) {
        fl_cli_out("%zu repeatable migration%s:\n", json_array_size(arr),
                   json_array_size(arr) == 1 ? "" : "s");
        json_array_foreach(arr, i, x) {
            const char *why = json_string_value(json_object_get(x, "why"));
            fl_cli_out("  %-30s %-17s ran %d time%s%s%s\n",
                       json_string_value(json_object_get(x, "file")),
                       json_string_value(json_object_get(x, "state")),
                       (int)json_integer_value(json_object_get(x, "runs")),
                       json_integer_value(json_object_get(x, "runs")) == 1
                           ? "" : "s",
                       why ? "  " : "", why ? why : "");
        }
    }
    json_object_set_new(out, "repeatables", arr);
    return 0;
}

/*
 * Whether the schema is as flotilla left it (agent/schema.h): a snapshot
 * of the target compared with the state recorded after the last apply,
 * repeatable run or rollback.  Into out as "schema_state" (null when
 * nothing can be said), and a line of text.  A snapshot that cannot be
 * taken (no TEMPORARY privilege) is a warning: the rest of status stands.
 */
static void
s_schema_state(json_t *out, fl_pg_t *pg, const fl_dbcmd_t *c)
{
    fl_schema_state_t st = FL_SCHEMA_STATE_INIT;
    fl_error_t err = FL_ERROR_INIT;
    char *text = NULL;

    if (fl_schema_snapshot(pg, 1, c->popts.schema, &err) != 0 ||
        fl_schema_state_check(pg, fl_dbcmd_target(c), 1, &st, &err) != 0) {
        fprintf(stderr, "flotilla status: warning: could not compare the "
                "schema with the one flotilla left: %s\n", err.message);
        json_object_set_new(out, "schema_state", json_null());
        goto cleanup;
    }
    if (!st.known) {
        json_object_set_new(out, "schema_state", json_null());
        goto cleanup;
    }
    json_object_set_new(out, "schema_state", fl_schema_state_json(&st));
    if (c->json)
        goto cleanup;
    if ((text = fl_schema_state_text(&st)) != NULL)
        fl_cli_out("SCHEMA CHANGED: %s\n", text);
    else
        fl_cli_out("schema: as flotilla left it after %s at %s\n", st.after,
                   st.recorded_at);
cleanup:
    free(text);
    fl_schema_state_release(&st);
    fl_error_clear(&err);
}

int
fl_cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        /* No --log-file: it writes none (accepted and ignored before). */
        FL_DBCMD_READ_LONGOPTS,
        {"dir", required_argument, NULL, FL_OPT_DIR},
        {"layout", required_argument, NULL, FL_OPT_LAYOUT},
        {"trust", required_argument, NULL, FL_OPT_TRUST},
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    fl_source_t src = FL_SOURCE_INIT;
    fl_pg_t *pg = NULL;
    fl_ledger_t ledger = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    json_t *out = NULL, *applied = NULL, *pending = NULL, *drift = NULL;
    json_t *missing = NULL;
    const char *path = NULL;
    int first = 0, rc, code = FL_EXIT_OK;

    fl_dbcmd_init(&c, "status");
    {
        /* Every option it takes (its help listed none). */
        char *usage = fl_asprintf("%s\n%s", s_usage, fl_dbcmd_status_help);
        rc = fl_dbcmd_parse(&c, argc, argv, opts, usage, &first);
        free(usage);
    }
    if (rc != 0)
        return rc < 0 ? FL_EXIT_OK : rc;
    if (first < argc - 1)
        return fl_cli_usage_error("status", "expected at most one SOURCE");
    path = fl_dbcmd_source_arg(&c, argc, argv, first, &rc);
    if (rc != 0)
        return rc;
    if (path != NULL && c.dir != NULL &&
        fl_source_open_dir(&src, c.dir, c.layout, &err) != 0) {
        code = fl_dbcmd_report("status", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    if (path != NULL && c.dir == NULL &&
        fl_source_open(&src, path, c.trust, 0, (int64_t)time(NULL),
                       &err) != 0) {
        code = fl_dbcmd_report("status", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    if (fl_pg_open(&pg, c.dsn, "flotilla", &err) != 0) {
        code = fl_dbcmd_report("status", &err, FL_EXIT_CONNECT, c.json);
        goto cleanup;
    }
    /* A schema that is not there is no target with nothing applied. */
    if (c.popts.schema != NULL &&
        fl_pipeline_schema_check(pg, c.popts.schema, &err) != 0) {
        code = fl_dbcmd_report("status", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    if (fl_ledger_load(pg, fl_dbcmd_target(&c), &ledger, &err) != 0) {
        code = fl_dbcmd_report("status", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    out = json_object();
    applied = json_array();
    pending = json_array();
    drift = json_array();
    json_object_set_new(out, "database", json_string(fl_pg_describe(pg)));
    json_object_set_new(out, "schema", c.popts.schema
                                           ? json_string(c.popts.schema)
                                           : json_null());
    json_object_set_new(out, "migrations", applied);
    for (size_t i = 0; i < ledger.count; i++) {
        const fl_ledger_row_t *r = &ledger.items[i];
        json_array_append_new(applied, fl_json_pack(
            "{s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:I, s:I, s:i, s:s?,"
            " s:s?}",
            "version", r->version.text, "name", r->name,
            "checksum", r->checksum, "bundle", r->bundle_id,
            "status", r->status, "started_at", r->started_at,
            "finished_at", r->finished_at, "applied_by", r->applied_by,
            "duration_ms", (json_int_t)r->duration_ms,
            "lock_wait_ms", (json_int_t)r->lock_wait_ms,
            "retries", r->retries, "error", r->error_message,
            "baselined_from", r->baseline_source));
    }
    if (src.migs) {
        fl_ledger_gap_t *gaps = NULL;
        size_t ngaps = fl_ledger_gaps(&ledger, src.migs, src.bundle_id, &gaps);

        missing = json_array();
        for (size_t i = 0; i < ngaps; i++) {
            const fl_ledger_row_t *r = gaps[i].row;
            const fl_migration_t *m = gaps[i].renumbered_as;
            json_array_append_new(missing, fl_json_pack(
                "{s:s, s:o, s:s, s:o}", "version", r->version.text,
                "file", fl_json_text(r->file ? r->file : r->name),
                "status", r->status,
                "renumbered_as", fl_json_text(m ? m->file : NULL)));
        }
        free(gaps);
        json_object_set_new(out, "missing", missing);
        json_object_set_new(out, "pending", pending);
        json_object_set_new(out, "drift", drift);
        for (size_t i = 0; i < src.migs->count; i++) {
            const fl_migration_t *m = &src.migs->items[i];
            const fl_ledger_row_t *r = fl_ledger_find(&ledger, &m->version);
            if (r && strcmp(r->status, "applied") == 0) {
                const char *was = NULL;
                char now[65];

                if (fl_ledger_row_matches(r, m))
                    continue;
                /* What drift compares: the up sections' checksums. */
                fl_ledger_drift_sums(r, m, &was, now);
                json_array_append_new(drift, fl_json_pack(
                    "{s:s, s:s, s:s, s:s}", "version", m->version.text,
                    "file", m->file, "applied_checksum", was,
                    "source_checksum", now));
            } else if (r && strcmp(r->status, "rolling_back") == 0) {
                continue; /* listed as such above: apply refuses it */
            } else {
                json_array_append_new(pending, fl_json_pack("{s:s, s:s}",
                    "version", m->version.text, "file", m->file));
            }
        }
    } else {
        json_decref(pending);
        json_decref(drift);
        drift = pending = NULL;
    }
    if (!c.json) {
        size_t i;
        json_t *x;
        fl_cli_out("%s: %zu migration%s in the ledger\n", fl_pg_describe(pg),
               ledger.count, ledger.count == 1 ? "" : "s");
        for (i = 0; i < ledger.count; i++) {
            const fl_ledger_row_t *r = &ledger.items[i];
            /* Short numbers as flotilla names its files: 0003. */
            size_t vlen = strlen(r->version.text);
            int pad = vlen < 4 && strchr(r->version.text, '.') == NULL
                          ? (int)(4 - vlen)
                          : 0;

            /* Its bundle's whole id, which rollback --bundle takes
             * (before, the text said none: found by an audit). */
            fl_cli_out("  %.*s%s %-30s %-11s %.12s  %s  %s  %lld ms%s%s%s%s"
                       "%s%s\n",
                   pad, "000", r->version.text, r->name, r->status, r->checksum,
                   r->finished_at ? r->finished_at : r->started_at,
                   r->applied_by, (long long)r->duration_ms,
                   r->bundle_id ? "  bundle " : "",
                   r->bundle_id ? r->bundle_id : "",
                   r->error_message ? "  error: " : "",
                   r->error_message ? r->error_message : "",
                   r->baseline_source ? "  baselined, not run: " : "",
                   r->baseline_source ? r->baseline_source : "");
        }
        if (pending) {
            fl_cli_out("%zu pending:\n", json_array_size(pending));
            json_array_foreach(pending, i, x)
                fl_cli_out("  %s\n", json_string_value(json_object_get(x, "file")));
            json_array_foreach(drift, i, x)
                fl_cli_out("DRIFT: %s was applied with checksum %.12s; the source "
                       "now has %.12s\n",
                       json_string_value(json_object_get(x, "file")),
                       json_string_value(json_object_get(x, "applied_checksum")),
                       json_string_value(json_object_get(x, "source_checksum")));
            json_array_foreach(missing, i, x) {
                const char *as = json_string_value(json_object_get(x,
                                                   "renumbered_as"));
                if (as)
                    fl_cli_out("RENUMBERED: %s is %s (version %s, %s) "
                               "under a new number\n", as,
                               json_string_value(json_object_get(x, "file")),
                               json_string_value(json_object_get(x,
                                                                 "version")),
                               json_string_value(json_object_get(x,
                                                                 "status")));
                else
                    fl_cli_out("MISSING: %s (version %s, %s) is not in the "
                               "source\n",
                               json_string_value(json_object_get(x, "file")),
                               json_string_value(json_object_get(x,
                                                                 "version")),
                               json_string_value(json_object_get(x,
                                                                 "status")));
            }
        }
    }
    s_schema_state(out, pg, &c);
    if (s_repeatables(out, pg, fl_dbcmd_target(&c), &src, c.json,
                      &err) != 0) {
        code = fl_dbcmd_report("status", &err, FL_EXIT_FAILED, c.json);
        goto cleanup;
    }
    if (c.json)
        fl_dbcmd_print_json(out);
    if ((drift && json_array_size(drift) > 0) ||
        (missing && json_array_size(missing) > 0))
        code = FL_EXIT_REFUSED;
cleanup:
    json_decref(out);
    fl_ledger_release(&ledger);
    fl_pg_close(&pg);
    fl_source_close(&src);
    fl_error_clear(&err);
    return code;
}
