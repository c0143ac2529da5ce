/*
 * cmd_agents.c - `flotilla agents`: the agents the coordinator knows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "cli/fleet.h"

static const char s_usage[] =
    "Usage: flotilla agents [--json] [coordinator options]\n"
    "\n"
    "Lists the agents the coordinator knows: name, state (online, offline,\n"
    "revoked, unknown), how many targets each reports, flotilla version,\n"
    "when it was last heard from, its key and labels.\n"
    "\n";

/* Labels as "k=v,k2=v2". */
static void
s_print_labels(const json_t *labels)
{
    const char *k = NULL;
    json_t *v = NULL;
    int first = 1;

    json_object_foreach((json_t *)labels, k, v) {
        fl_cli_out("%s%s=%s", first ? "" : ",", k, json_string_value(v));
        first = 0;
    }
    if (first)
        fl_cli_out("-");
}

int
fl_cmd_agents(int argc, char **argv)
{
    static const struct option opts[] = {FL_FLEET_LONGOPTS,
                                         {NULL, 0, NULL, 0}};
    fl_fleet_opts_t o;
    fl_fleet_t *f = NULL;
    json_t *payload = NULL, *a = NULL;
    fl_error_t err = FL_ERROR_INIT;
    int rc, status = 0, code = FL_EXIT_OK;
    size_t i;

    fl_fleet_init(&o, "agents", 10000);
    if ((rc = fl_fleet_parse(&o, argc, argv, opts, s_usage, NULL, NULL)) >= 0)
        return rc;
    if (optind < argc)
        return fl_cli_usage_error("agents", "unexpected argument \"%s\"",
                                  argv[optind]);
    rc = fl_fleet_open(&f, &o, &err);
    if (rc == 0)
        rc = fl_fleet_call(f, "agents", NULL, 0, NULL, 0, o.timeout_ms,
                           &status, &payload, &err);
    if (rc != 0 || status != 0) {
        code = fl_fleet_report(&o, rc, &err, status, payload);
        goto cleanup;
    }
    if (o.json) {
        fl_dbcmd_print_json(payload);
        goto cleanup;
    }
    fl_cli_out("%-20s %-8s %7s %-8s %-20s %-12s %s\n", "AGENT", "STATE",
               "TARGETS", "VERSION", "LAST SEEN", "KEY", "LABELS");
    json_array_foreach(payload, i, a) {
        char when[32] = "never";
        time_t t = (time_t)json_integer_value(json_object_get(a, "last_seen"));
        struct tm tm;

        if (t > 0 && gmtime_r(&t, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        fl_cli_out("%-20s %-8s %7lld %-8s %-20s %-12.10s ",
                   json_string_value(json_object_get(a, "name")),
                   json_string_value(json_object_get(a, "state")),
                   (long long)json_integer_value(json_object_get(a, "targets")),
                   json_string_value(json_object_get(a, "version"))
                       ? json_string_value(json_object_get(a, "version"))
                       : "-",
                   when, json_string_value(json_object_get(a, "key")));
        s_print_labels(json_object_get(a, "labels"));
        fl_cli_out("\n");
    }
cleanup:
    json_decref(payload);
    fl_fleet_close(&f);
    fl_error_clear(&err);
    return code;
}
