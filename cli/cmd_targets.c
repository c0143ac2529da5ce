/*
 * cmd_targets.c - `flotilla targets`: every target of the fleet, where it
 * stands and whether it can be reached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "cli/fleet.h"

static const char s_usage[] =
    "Usage: flotilla targets [--selector K=V,...] [--json] [coordinator "
    "options]\n"
    "\n"
    "Lists the targets the agents report (databases, and schemas of\n"
    "schema-per-tenant databases), with their agent, labels, reachability\n"
    "(reachable, unreachable: its agent is offline, error: the agent cannot\n"
    "read its ledger, unknown: not read yet, gone: no longer reported),\n"
    "its kind (database or schema) and environment, the highest applied\n"
    "version (none when nothing is), and drift against the bundle of the\n"
    "newest dispatch (current, N pending, drift at VERSION; no bundle yet\n"
    "before the first dispatch; unknown while its ledger is not read).\n"
    "\n"
    "  --selector SEL         only targets whose labels match, e.g.\n"
    "                         tier=canary,region!=eu\n"
    "\n";

static int
s_cmp(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;

    return strcmp(json_string_value(json_object_get(a, "target")),
                  json_string_value(json_object_get(b, "target")));
}

static int
s_option(int opt, const char *arg, void *ctx)
{
    fl_codec_kv_t *selector = ctx;

    if (opt != 's')
        return 0;
    selector->value = (char *)arg;
    return 1;
}

int
fl_cmd_targets(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_FLEET_LONGOPTS,
        {"selector", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    fl_fleet_opts_t o;
    fl_fleet_t *f = NULL;
    json_t *payload = NULL, **rows = NULL;
    fl_codec_kv_t args[1] = {{"selector", ""}};
    fl_error_t err = FL_ERROR_INIT;
    int rc, status = 0, code = FL_EXIT_OK;
    size_t n = 0;

    fl_fleet_init(&o, "targets", 10000);
    if ((rc = fl_fleet_parse(&o, argc, argv, opts, s_usage, s_option,
                             &args[0])) >= 0)
        return rc;
    if (optind < argc)
        return fl_cli_usage_error("targets", "unexpected argument \"%s\"",
                                  argv[optind]);
    rc = fl_fleet_open(&f, &o, &err);
    if (rc == 0)
        rc = fl_fleet_call(f, "targets", args, 1, NULL, 0, o.timeout_ms,
                           &status, &payload, &err);
    if (rc != 0 || status != 0) {
        code = fl_fleet_report(&o, rc, &err, status, payload);
        goto cleanup;
    }
    n = json_array_size(payload);
    rows = calloc(n + 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++)
        rows[i] = json_array_get(payload, i);
    qsort(rows, n, sizeof(*rows), s_cmp);
    if (o.json) {
        json_t *sorted = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append(sorted, rows[i]);
        fl_dbcmd_print_json(sorted);
        json_decref(sorted);
        goto cleanup;
    }
    fl_cli_out("%-32s %-16s %-8s %-12s %-11s %7s %-12s %s\n", "TARGET",
               "AGENT", "KIND", "ENVIRONMENT", "REACHABLE", "APPLIED",
               "DRIFT", "LABELS");
    for (size_t i = 0; i < n; i++) {
        const json_t *t = rows[i];
        const char *k = NULL;
        json_t *v = NULL;
        int first = 1;

        const char *applied = json_string_value(json_object_get(
            t, "applied_version"));

        /* Not "0": a version 0 is a real one (diesel's first). */
        fl_cli_out("%-32s %-16s %-8s %-12s %-11s %7s %-12s ",
                   json_string_value(json_object_get(t, "target")),
                   json_string_value(json_object_get(t, "agent")),
                   json_string_value(json_object_get(t, "kind")),
                   json_string_value(json_object_get(t, "environment")),
                   json_string_value(json_object_get(t, "reachability")),
                   applied ? applied : "none",
                   json_string_value(json_object_get(t, "drift")));
        json_object_foreach(json_object_get(t, "labels"), k, v) {
            fl_cli_out("%s%s=%s", first ? "" : ",", k, json_string_value(v));
            first = 0;
        }
        if (json_string_value(json_object_get(t, "error")))
            fl_cli_out("  (%s)", json_string_value(json_object_get(t,
                                                                   "error")));
        fl_cli_out("\n");
    }
cleanup:
    free(rows);
    json_decref(payload);
    fl_fleet_close(&f);
    fl_error_clear(&err);
    return code;
}
