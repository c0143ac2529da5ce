/*
 * cmd_dispatch.c - `flotilla dispatch`: one bundle to the selected
 * targets, unstaged, and every result back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "cli/fleet.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "proto/bundle.h"

static const char s_usage[] =
    "Usage: flotilla dispatch BUNDLE --selector K=V,... [--json]\n"
    "       flotilla dispatch --attach ID [--json]\n"
    "\n"
    "Sends a signed bundle through the coordinator to every target whose\n"
    "labels match the selector, all at once (no waves: that is a rollout),\n"
    "and waits for every result: one line per target as it comes (or JSON\n"
    "at the end).  Each agent verifies the bundle against its own trusted\n"
    "keys and the bundle's scope before anything runs.  Waiting survives a\n"
    "restart of the coordinator; --attach ID waits for a dispatch made\n"
    "earlier.\n"
    "\n"
    "  --selector SEL         the targets: labels, e.g. tier=canary; \"\"\n"
    "                         selects every target\n"
    "  --action ACTION        apply (default), rollback (the bundle's\n"
    "                         migrations, newest first) or plan (dry run)\n"
    "  --to VERSION           apply up to / roll back down to VERSION\n"
    "  --attach ID            wait for the results of dispatch ID\n"
    "\n"
    "Exit status: 0 every target succeeded, 3 some were refused (by\n"
    "validation, the bundle's scope or signature) and none failed, 1 some\n"
    "failed, were cancelled, were unreachable or did not answer in time.\n"
    "\n";

/*
 * Results arrive in order; a restart may repeat some, and a command
 * retried (rollout resume after halt --abort) has a later outcome: each
 * target is printed when its outcome is new or changed, and keeps its
 * latest in the results.
 */
typedef struct {
    char **seen;
    size_t n, cap;
} s_seen_t;

/* The index of target's result in all, or SIZE_MAX (then added: n). */
static size_t
s_seen_add(s_seen_t *s, const char *target)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->seen[i], target) == 0)
            return i;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->seen = fl_reallocarray(s->seen, s->cap, sizeof(char *));
    }
    s->seen[s->n++] = fl_strdup(target);
    return SIZE_MAX;
}

static void
s_print_result(const json_t *r)
{
    const char *status = json_string_value(json_object_get(r, "status"));
    const char *error = json_string_value(json_object_get(r, "error"));
    const char *message = json_string_value(json_object_get(r, "message"));

    const char *version = json_string_value(json_object_get(r, "version"));

    fl_cli_out("%-32s %-9s version %s%s%s%s%s\n",
               json_string_value(json_object_get(r, "target")), status,
               version ? version : "none",
               json_is_true(json_object_get(r, "reconciled"))
                   ? "  (from the ledger)"
                   : "",
               error || message ? "  " : "", error ? error : "",
               !error && message ? message : "");
}

typedef struct {
    const char *selector, *action, *to, *attach;
} s_args_t;

static int
s_option(int opt, const char *arg, void *ctx)
{
    s_args_t *a = ctx;

    switch (opt) {
    case 's': a->selector = arg; return 1;
    case 'a': a->action = arg; return 1;
    case 't': a->to = arg; return 1;
    case 'A': a->attach = arg; return 1;
    default: return 0;
    }
}

/*
 * --json when not every result came in time: the dispatch's id, its
 * counts as last heard (none yet: only the results), the results so far,
 * "complete": false and why.
 */
static void
s_print_partial(const char *id, const json_t *last, json_t *all,
                const char *why)
{
    json_t *o = last ? json_deep_copy(last) : json_object();

    json_object_set_new(o, "id", json_string(id));
    json_object_del(o, "cursor");
    json_object_del(o, "outcomes");
    json_object_set(o, "results", all);
    json_object_set_new(o, "complete", json_false());
    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "error", json_string(why));
    fl_dbcmd_print_json(o);
    json_decref(o);
}

int
fl_cmd_dispatch(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_FLEET_LONGOPTS,
        {"selector", required_argument, NULL, 's'},
        {"action", required_argument, NULL, 'a'},
        {"to", required_argument, NULL, 't'},
        {"attach", required_argument, NULL, 'A'},
        {NULL, 0, NULL, 0},
    };
    fl_fleet_opts_t o;
    fl_fleet_t *f = NULL;
    const char *selector = NULL, *action = "apply", *to = "", *attach = NULL;
    unsigned char *bundle = NULL;
    size_t len = 0;
    json_t *payload = NULL, *all = NULL, *last = NULL;
    char *id = NULL;
    s_seen_t seen = {NULL, 0, 0};
    fl_error_t err = FL_ERROR_INIT;
    s_args_t a = {NULL, "apply", "", NULL};
    int rc, status = 0, code = FL_EXIT_OK;
    int64_t deadline, cursor = 0;
    char life[33] = "";
    int heard; /* the coordinator answered this command */

    fl_fleet_init(&o, "dispatch", 3600000);
    if ((rc = fl_fleet_parse(&o, argc, argv, opts, s_usage, s_option,
                             &a)) >= 0)
        return rc;
    selector = a.selector;
    action = a.action;
    to = a.to;
    attach = a.attach;
    if (attach == NULL && optind != argc - 1)
        return fl_cli_usage_error("dispatch", "expected one BUNDLE");
    if (attach != NULL && optind != argc)
        return fl_cli_usage_error("dispatch", "--attach takes no BUNDLE");
    if (attach == NULL && selector == NULL)
        return fl_cli_usage_error("dispatch", "--selector is required (\"\" "
                                  "selects every target)");
    deadline = fl_clock_ms() + o.timeout_ms;
    heard = attach == NULL; /* after the dispatch call, which it answers */
    all = json_array();
    if (attach == NULL &&
        fl_bundle_read_file(&bundle, &len, argv[optind], &err) != 0) {
        code = fl_dbcmd_report("dispatch", &err, FL_EXIT_FAILED, o.json);
        goto cleanup;
    }
    if ((rc = fl_fleet_open(&f, &o, &err)) != 0) {
        code = fl_fleet_report(&o, rc, &err, 0, NULL);
        goto cleanup;
    }
    if (attach == NULL) {
        fl_codec_kv_t args[3] = {{"selector", (char *)selector},
                                 {"action", (char *)action},
                                 {"to_version", (char *)to}};
        /* Not repeated on a timeout: it may have been created. */
        rc = fl_fleet_call(f, "dispatch", args, 3, bundle, len,
                           o.timeout_ms < 60000 ? o.timeout_ms : 60000,
                           &status, &payload, &err);
        if (rc != 0 || status != 0) {
            code = fl_fleet_report(&o, rc, &err, status, payload);
            goto cleanup;
        }
        id = fl_strdup(json_string_value(json_object_get(payload, "id")));
        if (!o.json)
            fl_cli_out("dispatch %s: %s bundle %s on %lld targets\n", id,
                       action,
                       json_string_value(json_object_get(payload, "bundle")),
                       (long long)json_integer_value(
                           json_object_get(payload, "targets")));
        json_decref(payload);
        payload = NULL;
    } else {
        id = fl_strdup(attach);
    }
    for (;;) {
        char after[24], wait_ms[24];
        fl_codec_kv_t args[4] = {{"id", id}, {"after", after},
                                 {"timeout_ms", wait_ms}, {"life", life}};
        json_t *r = NULL;
        size_t i;
        int64_t left = deadline - fl_clock_ms(), call_ms;

        if (left <= 0 && !heard && err.message != NULL) {
            /* Never heard from the coordinator: that is the failure. */
            code = fl_fleet_report(&o, FL_ETIMEOUT, &err, 0, NULL);
            break;
        }
        fl_error_clear(&err);
        if (left <= 0) {
            FL_ERR(&err, FL_ETIMEOUT, "dispatch %s: not every result came "
                   "within --timeout", id);
            fl_error_set_hint(&err, "The dispatch goes on: flotilla "
                              "dispatch --attach %s waits for the rest.", id);
            /* A script still learns the id and what came. */
            if (o.json)
                s_print_partial(id, last, all, err.message);
            code = fl_cli_report("dispatch", &err, FL_EXIT_FAILED);
            break;
        }
        /* Within --timeout: the coordinator waits at most two thirds of
         * the call for a result, so that its answer comes in time. */
        call_ms = left < 15000 ? left : 15000;
        snprintf(wait_ms, sizeof(wait_ms), "%lld",
                 (long long)(call_ms * 2 / 3));
        snprintf(after, sizeof(after), "%lld", (long long)cursor);
        rc = fl_fleet_call(f, "dispatch.wait", args, *life ? 4 : 3, NULL, 0,
                           call_ms, &status, &payload, &err);
        if (rc == FL_ETIMEOUT) {
            /* The coordinator may be restarting: ask again (err kept for
             * when it never answers). */
            fl_cli_retrying("dispatch", &err);
            continue;
        }
        if (rc != 0 || status != 0) {
            code = fl_fleet_report(&o, rc, &err, status, payload);
            break;
        }
        heard = 1;
        cursor = json_integer_value(json_object_get(payload, "cursor"));
        if (json_is_string(json_object_get(payload, "life")))
            snprintf(life, sizeof(life), "%s",
                     json_string_value(json_object_get(payload, "life")));
        json_array_foreach(json_object_get(payload, "results"), i, r) {
            size_t at = s_seen_add(&seen, json_string_value(json_object_get(
                                              r, "target")));

            if (at == SIZE_MAX) {
                json_array_append(all, r);
            } else if (json_equal(json_array_get(all, at), r)) {
                continue;
            } else {
                json_array_set(all, at, r);
            }
            if (!o.json)
                s_print_result(r);
        }
        /* Each reply's lines as they come, also through a pipe. */
        fflush(stdout);
        json_decref(last);
        last = payload;
        payload = NULL;
        if (strcmp(json_string_value(json_object_get(last, "status")),
                   "done") == 0 &&
            cursor >= json_integer_value(json_object_get(
                          last, json_object_get(last, "outcomes")
                                    ? "outcomes" : "total")))
            break;
    }
    if (last != NULL && code == FL_EXIT_OK) {
        json_int_t failed = json_integer_value(json_object_get(last, "failed"));
        json_int_t refused = json_integer_value(json_object_get(last,
                                                                "refused"));
        json_int_t cancelled = json_integer_value(json_object_get(
            last, "cancelled"));
        /* Not sent: a rollout's unreachable targets (unreachable: skip). */
        json_int_t unreachable = json_integer_value(json_object_get(
            last, "unreachable"));

        code = failed + cancelled + unreachable > 0 ? FL_EXIT_FAILED
               : refused > 0          ? FL_EXIT_REFUSED
                                      : FL_EXIT_OK;
        if (o.json) {
            json_object_del(last, "results");
            json_object_del(last, "cursor");
            json_object_del(last, "outcomes");
            json_object_set(last, "results", all);
            json_object_set_new(last, "complete", json_true());
            /* Whether it exits 0, as "ok" is in every command's JSON. */
            json_object_set_new(last, "ok", json_boolean(code == FL_EXIT_OK));
            fl_dbcmd_print_json(last);
        } else {
            fl_cli_out("dispatch %s: %lld targets, %lld ok, %lld failed, "
                       "%lld refused, %lld cancelled, %lld unreachable\n",
                       id,
                       (long long)json_integer_value(json_object_get(last,
                                                                     "total")),
                       (long long)json_integer_value(json_object_get(
                           last, "succeeded")),
                       (long long)failed, (long long)refused,
                       (long long)cancelled, (long long)unreachable);
        }
    }
cleanup:
    for (size_t i = 0; i < seen.n; i++)
        free(seen.seen[i]);
    free(seen.seen);
    free(id);
    free(bundle);
    json_decref(payload);
    json_decref(last);
    json_decref(all);
    fl_fleet_close(&f);
    fl_error_clear(&err);
    return code;
}
