/*
 * cmd_rollout.c - `flotilla rollout`: staged rollouts through the
 * coordinator (plan, start, status, list, watch, halt, resume, rollback,
 * baseline).
 * The coordinator runs the rollout (coordinator/rollout.c); this command
 * sends the request, the policy and the bundle, and reads the state back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "cli/fleet.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/map.h"
#include "common/str.h"
#include "proto/bundle.h"

static const char s_usage[] =
    "Usage: flotilla rollout plan BUNDLE [--selector SEL] [caps] [--json]\n"
    "       flotilla rollout start BUNDLE [--policy FILE] [policy flags]\n"
    "                              [--selector SEL] [--watch] [--json]\n"
    "       flotilla rollout status ID [--json]\n"
    "       flotilla rollout list [--json]\n"
    "       flotilla rollout watch ID [--json]\n"
    "       flotilla rollout halt ID [--abort]\n"
    "       flotilla rollout resume ID [--only halt|gate]\n"
    "       flotilla rollout rollback ID [--watch]\n"
    "       flotilla rollout baseline BUNDLE (--from TOOL | --to VERSION)\n"
    "                              [--selector SEL] [caps] [--json]\n"
    "\n"
    "Staged rollouts of a signed bundle to the fleet's targets, run by the\n"
    "coordinator: the targets matching the selector are frozen when the\n"
    "rollout starts, ordered, and cut into waves; wave k+1 starts only\n"
    "after wave k finished within its failure budget and baked.  A budget\n"
    "exceeded (more failures than allowed, not as many) halts the rollout.\n"
    "\n"
    "  plan       a fleet-wide dry run: every target validates and\n"
    "             rehearses (within the caps) and reports what would\n"
    "             happen; nothing changes anywhere\n"
    "  start      starts a rollout and prints its id (--watch: then watches)\n"
    "  status     the rollout's state, waves, accounting and failures\n"
    "  list       every rollout the coordinator knows\n"
    "  watch      live progress until the rollout ends: a progress bar per\n"
    "             wave on a terminal, one line per event otherwise\n"
    "  halt       sets the halt latch: no target gets new work, across\n"
    "             coordinator restarts, until resume; --abort also cancels\n"
    "             the statements in flight (their transactions roll back)\n"
    "  resume     clears the latch (the failures so far are acknowledged)\n"
    "             and sends again the current wave's targets that --abort\n"
    "             cancelled; or opens a manual gate.  Which one is read\n"
    "             from the rollout's state just before; --only says it,\n"
    "             and is refused if the rollout is not so (a second\n"
    "             operator's resume of a halt opens no gate)\n"
    "  rollback   rolls back exactly the targets the rollout touched (their\n"
    "             ledgers record it, or it sent them something whose\n"
    "             effect their last reported ledger cannot show yet),\n"
    "             newest wave first\n"
    "  baseline   adopts flotilla on targets another tool migrated: every\n"
    "             target records, without running them, the bundle's\n"
    "             migrations that TOOL's ledger there says ran (diesel,\n"
    "             golang-migrate, pop, sqlx, dbmate, flyway), or with --to\n"
    "             every migration up to VERSION (both: --to bounds what\n"
    "             --from says), within the caps; each target must look\n"
    "             migrated; a verdict per target: baselined, already, none\n"
    "             ran, refused (with the difference) or unreachable\n"
    "\n"
    "Policy (a YAML file with these keys, or the flags; flags win):\n"
    "  --policy FILE              the policy file\n"
    "  --waves LIST               waves separated by \";\": a count (1), a\n"
    "                             percentage of the targets left (10%),\n"
    "                             100%, or a label selector (tier=canary);\n"
    "                             default \"1;10%;50%;100%\"\n"
    "  --order deterministic|shuffle  (shuffle: with --seed N, recorded)\n"
    "  --seed N\n"
    "  --max-parallel N           targets running at once (0: no cap)\n"
    "  --max-parallel-per-agent N\n"
    "  --max-parallel-per-server N  (the label \"server\", else the agent)\n"
    "  --max-failures N|P%        per wave (default 0)\n"
    "  --max-failures-total N|P%  over the whole rollout\n"
    "  --unreachable fail|skip    unreachable targets count as failures\n"
    "                             unless skip (default fail)\n"
    "  --bake DURATION            after each wave, before the next\n"
    "  --gate none|manual         manual: each wave after the first waits\n"
    "                             for \"flotilla rollout resume\"\n"
    "  --target-timeout DURATION  a target still running this long is\n"
    "                             failed (and counts against the budget)\n"
    "  --on-failure halt|rollback  rollback: every touched target, once\n"
    "  --selector SEL             the targets (labels); \"\" selects all\n"
    "\n"
    "Exit status: 0 completed (plan: every target proven to apply;\n"
    "baseline: every target baselined, already or none ran), 1 failed (a\n"
    "rollback failed; plan, baseline: some targets could not be reached or\n"
    "run), 2 usage, 3 refused (the bundle; plan: some targets would fail,\n"
    "drift or are not proven: a migration without a transaction cannot be\n"
    "rehearsed; baseline: some targets refused, nothing written on them),\n"
    "4 could not reach the coordinator, 7 halted, 8 rolled back, 9 still\n"
    "running (status, or a watch that --timeout ended).  A rollout whose\n"
    "failures stayed within its budget completes: exit 0; its accounting\n"
    "says how many failed.\n"
    "\n"
    "--timeout bounds the whole command; one request waits at most 60s\n"
    "(list 30s, status 15s), whatever it says.\n"
    "\n";

/* --timeout's default: a watch follows a rollout for a day. */
#define S_TIMEOUT_MS (24 * 3600000LL)

#define S_EXIT_HALTED FL_EXIT_HALTED
#define S_EXIT_ROLLED_BACK FL_EXIT_ROLLED_BACK
#define S_EXIT_RUNNING FL_EXIT_RUNNING

/* The policy keys, as the file has them and the coordinator takes them. */
static const char *const s_keys[] = {
    "waves", "order", "seed", "max_parallel", "max_parallel_per_agent",
    "max_parallel_per_server", "max_failures", "max_failures_total",
    "unreachable", "bake", "gate", "target_timeout", "on_failure", NULL};
#define S_NKEYS 13
/* The command-line flag of each key. */
static const char *const s_flag_names[] = {
    "waves", "order", "seed", "max-parallel", "max-parallel-per-agent",
    "max-parallel-per-server", "max-failures", "max-failures-total",
    "unreachable", "bake", "gate", "target-timeout", "on-failure", NULL};

typedef struct {
    fl_conf_strlist_t waves;
    char *v[S_NKEYS]; /* [0] unused: waves is a list */
} s_policy_file_t;

#define S_P(i, name, desc)                                                  \
    {name, FL_CONF_STRING, offsetof(s_policy_file_t, v) + (i) * sizeof(char *), \
     NULL, 0, 0, 0, 0, desc, NULL, 0}

static const fl_conf_option s_policy_table[] = {
    {"waves", FL_CONF_STRLIST, offsetof(s_policy_file_t, waves), NULL, 0, 0,
     0, 0, "waves: counts, percentages of the rest, selectors", NULL, 0},
    S_P(1, "order", "deterministic or shuffle"),
    S_P(2, "seed", "the shuffle's seed"),
    S_P(3, "max_parallel", "targets at once"),
    S_P(4, "max_parallel_per_agent", "targets at once per agent"),
    S_P(5, "max_parallel_per_server", "targets at once per server"),
    S_P(6, "max_failures", "failures allowed per wave"),
    S_P(7, "max_failures_total", "failures allowed in all"),
    S_P(8, "unreachable", "fail or skip"),
    S_P(9, "bake", "time after each wave"),
    S_P(10, "gate", "none or manual"),
    S_P(11, "target_timeout", "time a target may run"),
    S_P(12, "on_failure", "halt or rollback"),
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

typedef struct {
    const char *selector;
    const char *policy;
    const char *flags[S_NKEYS];
    const char *from;   /* baseline: the tool */
    const char *to;     /* baseline: the newest version that ran */
    int watch, abort;
    const char *resume; /* resume --only: "halt", "gate", or NULL */
} s_args_t;

enum {
    S_OPT_SELECTOR = 3000,
    S_OPT_POLICY,
    S_OPT_WATCH,
    S_OPT_ABORT,
    S_OPT_FROM,
    S_OPT_TO,
    S_OPT_ONLY,
    S_OPT_KEY /* + index into s_keys */
};

static int
s_option(int opt, const char *arg, void *ctx)
{
    s_args_t *a = ctx;

    if (opt == S_OPT_SELECTOR)
        a->selector = arg;
    else if (opt == S_OPT_POLICY)
        a->policy = arg;
    else if (opt == S_OPT_WATCH)
        a->watch = 1;
    else if (opt == S_OPT_ABORT)
        a->abort = 1;
    else if (opt == S_OPT_FROM)
        a->from = arg;
    else if (opt == S_OPT_TO)
        a->to = arg;
    else if (opt == S_OPT_ONLY)
        a->resume = arg;
    else if (opt >= S_OPT_KEY && opt < S_OPT_KEY + S_NKEYS)
        a->flags[opt - S_OPT_KEY] = arg;
    else
        return 0;
    return 1;
}

/* A plan or a baseline: it changes nothing, and its verdicts say how it
 * went, not its targets "applied". */
static int
s_is_probe(const json_t *st)
{
    const char *kind = json_string_value(json_object_get(st, "kind"));

    return kind != NULL &&
           (strcmp(kind, "plan") == 0 || strcmp(kind, "baseline") == 0);
}

/* A finished plan's or baseline's exit code, from its verdicts. */
static int
s_probe_exit(const json_t *st)
{
    const json_t *p = json_object_get(st, json_string_value(
                                              json_object_get(st, "kind")));

    return json_object_get(p, "error") || json_object_get(p, "unreachable")
               ? FL_EXIT_FAILED
           : json_object_get(p, "would_fail") ||
                   json_object_get(p, "drift") ||
                   json_object_get(p, "refused") ||
                   json_object_get(p, "not_proven")
               ? FL_EXIT_REFUSED
               : FL_EXIT_OK;
}

static int
s_state_exit(const json_t *st)
{
    const char *status = json_string_value(json_object_get(st, "status"));

    if (status == NULL)
        return FL_EXIT_FAILED;
    if (strcmp(status, "completed") == 0)
        return s_is_probe(st) ? s_probe_exit(st) : FL_EXIT_OK;
    if (strcmp(status, "halted") == 0)
        return S_EXIT_HALTED;
    if (strcmp(status, "rolled_back") == 0)
        return S_EXIT_ROLLED_BACK;
    if (strcmp(status, "rollback_failed") == 0)
        return FL_EXIT_FAILED;
    /* A rollback halted is paused until resume: watching it ends. */
    if (json_is_true(json_object_get(st, "halted")))
        return S_EXIT_HALTED;
    return S_EXIT_RUNNING;
}

static int
s_is_over(const json_t *st)
{
    int code = s_state_exit(st);

    return code != S_EXIT_RUNNING;
}

static long long
s_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static const char *
s_str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/*
 * Where the rollbacks kept copies of data they removed (what a down
 * dropped while it held data, rows a restore replaced): the operator
 * decides what to do with it on each target named.
 */
static void
s_print_kept(const json_t *st)
{
    const json_t *a = json_object_get(st, "accounting");
    const json_t *list = json_object_get(st, "kept"), *k = NULL;
    long long copies = s_int(a, "kept_copies");
    long long targets = s_int(a, "kept_targets");
    size_t i;

    if (copies <= 0)
        return;
    /* Not "written since the migration": the copies may be of what the
     * migration wrote itself (a backfill its down drops), as the single
     * rollback says (before, this blamed the application: an audit). */
    fl_cli_out("  kept %lld cop%s of data the rollbacks removed on ", copies,
               copies == 1 ? "y" : "ies");
    if (targets == 1) {
        fl_cli_out("%s", s_str(json_array_get(list, 0), "target"));
    } else {
        fl_cli_out("%lld targets:", targets);
        json_array_foreach(list, i, k) {
            if (i == 10) {
                fl_cli_out(" ... (--json lists %zu)", json_array_size(list));
                break;
            }
            fl_cli_out("%s %s (%lld)", i ? "," : "", s_str(k, "target"),
                       s_int(k, "copies"));
        }
    }
    fl_cli_out(": never restored; `flotilla backups list --leftovers` on "
               "each target shows them\n");
}

static void
s_print_accounting(const json_t *st)
{
    const json_t *a = json_object_get(st, "accounting");

    fl_cli_out("  planned %lld, dispatched %lld, applied %lld, failed %lld, "
               "unreachable %lld, rolled back %lld, untouched %lld",
               s_int(a, "planned"), s_int(a, "dispatched"),
               s_int(a, "applied"), s_int(a, "failed"),
               s_int(a, "unreachable"), s_int(a, "rolled_back"),
               s_int(a, "untouched"));
    if (s_int(a, "untouched_unconfirmed") > 0)
        fl_cli_out(" (and %lld whose ledgers are not known now)",
                   s_int(a, "untouched_unconfirmed"));
    if (s_int(a, "cancelled") > 0)
        fl_cli_out(", cancelled %lld (statements cancelled and rolled back: "
                   "as they were)", s_int(a, "cancelled"));
    if (s_int(a, "rollback_failed") > 0)
        fl_cli_out(", rollback failed %lld", s_int(a, "rollback_failed"));
    fl_cli_out("\n");
    s_print_kept(st);
}

static void
s_print_failure(const json_t *f)
{
    fl_cli_out("  %s failed: %s (agent %s, wave %lld%s%s): %s: %s\n",
               s_str(f, "phase"), s_str(f, "target"), s_str(f, "agent"),
               s_int(f, "wave"), json_is_string(json_object_get(f, "step"))
                                     ? ", step "
                                     : "",
               s_str(f, "step"), s_str(f, "status"), s_str(f, "reason"));
    if (json_is_string(json_object_get(f, "detail")))
        fl_cli_out("    %s\n", s_str(f, "detail"));
}

static void
s_bar(char *out, size_t n, long long done, long long size)
{
    size_t width = n - 1, fill = size > 0 ? (size_t)(done * (long long)width /
                                                     size)
                                          : width;

    for (size_t i = 0; i < width; i++)
        out[i] = i < fill ? '#' : '.';
    out[width] = '\0';
}

/* The full status, for people. */
static void
s_print_status(const json_t *st)
{
    const json_t *w = NULL;
    size_t i;

    fl_cli_out("rollout %s (%s of bundle %s): %s", s_str(st, "id"),
               s_str(st, "kind"), s_str(st, "bundle"), s_str(st, "status"));
    if (json_is_true(json_object_get(st, "halted")))
        fl_cli_out(" (halt latch set: %s)", s_str(st, "halt_reason"));
    else if (json_is_string(json_object_get(st, "halt_reason")))
        fl_cli_out(" (halted before: %s)", s_str(st, "halt_reason"));
    fl_cli_out("\n");
    json_array_foreach(json_object_get(st, "waves"), i, w) {
        char bar[31];
        s_bar(bar, sizeof(bar), s_int(w, "done"), s_int(w, "size"));
        fl_cli_out("  wave %lld (%s) [%s] %lld/%lld done, %lld applied, "
                   "%lld failures, %lld in flight", s_int(w, "wave"),
                   s_str(w, "spec"), bar, s_int(w, "done"), s_int(w, "size"),
                   s_int(w, "applied"), s_int(w, "failures"),
                   s_int(w, "in_flight"));
        if (s_int(w, "not_dispatched") > 0)
            fl_cli_out(", %lld not dispatched", s_int(w, "not_dispatched"));
        fl_cli_out(": %s\n", s_str(w, "state"));
    }
    if (s_int(st, "bake_remaining_ms") > 0)
        fl_cli_out("  baking: %lld s left\n",
                   (s_int(st, "bake_remaining_ms") + 999) / 1000);
    if ((w = json_object_get(st, "rollback")) != NULL) {
        char bar[31];
        s_bar(bar, sizeof(bar), s_int(w, "done"), s_int(w, "targets"));
        fl_cli_out("  rollback [%s] %lld/%lld touched targets rolled back, "
                   "%lld failed; wave %lld/%lld, newest first\n", bar,
                   s_int(w, "rolled_back"), s_int(w, "targets"),
                   s_int(w, "failed"), s_int(w, "wave"), s_int(w, "waves"));
    }
    s_print_accounting(st);
    json_array_foreach(json_object_get(st, "failures"), i, w)
        s_print_failure(w);
}

/* A plan's or a baseline's counts by verdict, as words (the JSON's keys
 * are in snake_case: "would_apply"). */
static void
s_print_verdicts(const json_t *counts)
{
    const char *k = NULL;
    json_t *v = NULL;

    json_object_foreach((json_t *)counts, k, v) {
        char word[64];
        size_t n = 0;

        for (; k[n] && n + 1 < sizeof(word); n++)
            word[n] = k[n] == '_' ? ' ' : k[n];
        word[n] = '\0';
        fl_cli_out(" %s %lld,", word, (long long)json_integer_value(v));
    }
}

/* A plan's or a baseline's verdicts, per target, then counted. */
static void
s_print_plan(const json_t *st)
{
    const char *kind = s_str(st, "kind");
    const json_t *t = NULL;
    size_t i;

    json_array_foreach(json_object_get(st, "targets"), i, t) {
        fl_cli_out("%-40s %-16s%s%s\n", s_str(t, "target"),
                   s_str(t, "verdict"),
                   json_is_string(json_object_get(t, "reason")) ? "  " : "",
                   s_str(t, "reason"));
    }
    fl_cli_out("%s %s: %lld targets:", kind, s_str(st, "id"),
               s_int(json_object_get(st, "accounting"), "planned"));
    s_print_verdicts(json_object_get(st, kind));
    fl_cli_out(" %s\n", strcmp(kind, "plan") == 0
                            ? "nothing changed"
                            : "nothing ran (baselined: recorded as applied)");
}

/* One call; reports and returns the exit code when it fails. */
static int
s_call(fl_fleet_t *f, const fl_fleet_opts_t *o, const char *command,
       const fl_codec_kv_t *args, size_t nargs, const void *data, size_t len,
       int64_t wait_ms, json_t **payload)
{
    fl_error_t err = FL_ERROR_INIT;
    int status = 0, rc;

    *payload = NULL;
    rc = fl_fleet_call(f, command, args, nargs, data, len, wait_ms, &status,
                       payload, &err);
    if (rc != 0 || status != 0) {
        int code = fl_fleet_report(o, rc, &err, status, *payload);
        json_decref(*payload);
        *payload = NULL;
        fl_error_clear(&err);
        return code;
    }
    return -1;
}

/* Frees the set of failures printed (keys are their own values). */
static void
s_printed_free(fl_map_t **printed)
{
    char *key = NULL;
    size_t pos = 0;

    while ((key = fl_map_next(*printed, &pos)) != NULL)
        free(key);
    fl_map_destroy(printed);
}

/*
 * Follows rollout id until it ends (once: one state): long-polls with the
 * state's version; prints events (plain lines) or redraws (a terminal)
 * unless quiet.  *last gets the final state.  Returns -1, or the exit code
 * of a failure (reported).
 */
static int
s_follow(fl_fleet_t *f, const fl_fleet_opts_t *o, const char *id, int quiet,
         int once, json_t **last)
{
    long long version = -1;
    int tty = !quiet && !o->json && isatty(STDOUT_FILENO);
    int drawn = 0;
    char *prev = NULL;
    fl_map_t *printed = fl_map_new(); /* failures printed: their keys */
    int64_t deadline = fl_clock_ms() + o->timeout_ms;
    fl_error_t lost = FL_ERROR_INIT; /* the last call that got no reply */

    *last = NULL;
    for (;;) {
        char after[24], wait_ms[24];
        fl_codec_kv_t args[3] = {{"id", (char *)id}, {"after", after},
                                 {"timeout_ms", wait_ms}};
        json_t *st = NULL;
        int code, rc, status = 0;
        int64_t left = deadline - fl_clock_ms(), call_ms;

        if (left <= 0 && *last == NULL) {
            /* Never heard from the coordinator: that is the failure, not
             * a rollout still running (exit 4, not 9). */
            free(prev);
            s_printed_free(&printed);
            if (lost.message == NULL) /* --timeout 0: never asked */
                FL_ERR(&lost, FL_ETIMEOUT, "no reply from the coordinator "
                       "at \"%s\" within --timeout", o->endpoint);
                fl_fleet_hint_no_reply(&lost);
            code = fl_fleet_report(o, FL_ETIMEOUT, &lost, 0, NULL);
            fl_error_clear(&lost);
            return code;
        }
        if (left <= 0) {
            fl_error_t err = FL_ERROR_INIT;
            FL_ERR(&err, FL_ETIMEOUT, "rollout %s did not end within "
                   "--timeout", id);
            fl_error_set_hint(&err, "It goes on: flotilla rollout watch %s "
                              "follows it again.", id);
            /* A script still learns which rollout, and where it stands. */
            if (o->json) {
                json_t *j = *last ? json_deep_copy(*last) : json_object();
                json_object_set_new(j, "id", json_string(id));
                json_object_set_new(j, "complete", json_false());
                json_object_set_new(j, "error", json_string(err.message));
                fl_dbcmd_print_json(j);
                json_decref(j);
            }
            free(prev);
            s_printed_free(&printed);
            fl_error_clear(&lost);
            code = fl_cli_report(o->cmd, &err, S_EXIT_RUNNING);
            fl_error_clear(&err);
            return code;
        }
        /* Within --timeout: the coordinator waits at most two thirds of
         * the call for a change, so that its answer comes in time. */
        call_ms = left < 15000 ? left : 15000;
        snprintf(wait_ms, sizeof(wait_ms), "%lld",
                 (long long)(call_ms * 2 / 3));
        snprintf(after, sizeof(after), "%lld", version);
        fl_error_clear(&lost);
        rc = fl_fleet_call(f, "rollout.status", args, 3, NULL, 0, call_ms,
                           &status, &st, &lost);
        if (rc == FL_ETIMEOUT && !once) {
            /* The coordinator may be restarting: ask again, until
             * --timeout. */
            fl_cli_retrying(o->cmd, &lost);
            fl_clock_sleep_ms(200);
            continue;
        }
        if (rc != 0 || status != 0) {
            code = fl_fleet_report(o, rc, &lost, status, st);
            json_decref(st);
            fl_error_clear(&lost);
            free(prev);
            s_printed_free(&printed);
            return code;
        }
        version = s_int(st, "version");
        if (tty) {
            struct winsize ws;

            /* Redraw the block printed last time: the rows it filled. */
            for (int i = 0; i < drawn; i++)
                fputs("\033[1A\033[2K", stdout);
            fl_cli_out_rows_reset(ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0
                                      ? ws.ws_col : 80);
            s_print_status(st);
            drawn = (int)fl_cli_out_rows();
            fflush(stdout);
        } else if (!quiet && !o->json) {
            /* Plain lines: one per change of state, one per failure. */
            const json_t *w = json_array_get(json_object_get(st, "waves"),
                                             (size_t)s_int(st, "wave") - 1);
            const json_t *a = json_object_get(st, "accounting");
            const json_t *rb = json_object_get(st, "rollback");
            char *line = rb != NULL && strncmp(s_str(st, "status"), "roll",
                                               4) == 0
                ? fl_asprintf("rollout %s: %s, rollback wave %lld/%lld "
                              "(newest first): %lld of %lld touched targets "
                              "rolled back, %lld failed",
                              s_str(st, "id"), s_str(st, "status"),
                              s_int(rb, "wave"), s_int(rb, "waves"),
                              s_int(rb, "rolled_back"), s_int(rb, "targets"),
                              s_int(rb, "failed"))
                : s_is_probe(st) /* applies nothing */
                ? fl_asprintf("rollout %s: %s (%s): %lld/%lld targets done",
                              s_str(st, "id"), s_str(st, "status"),
                              s_str(st, "kind"), s_int(w, "done"),
                              s_int(w, "size"))
                : fl_asprintf(
                "rollout %s: %s, wave %lld/%lld (%s) %s: %lld/%lld done, "
                "%lld failures; applied %lld, rolled back %lld",
                s_str(st, "id"), s_str(st, "status"), s_int(st, "wave"),
                s_int(st, "waves_total"), s_str(w, "spec"),
                s_str(w, "state"), s_int(w, "done"), s_int(w, "size"),
                s_int(w, "failures"), s_int(a, "applied"),
                s_int(a, "rolled_back"));
            const json_t *fl = json_object_get(st, "failures");

            if (prev == NULL || strcmp(prev, line) != 0)
                fl_cli_out("%s\n", line);
            free(prev);
            prev = line;
            /* In the targets' order, not as they came: each new one. */
            for (size_t i = 0; i < json_array_size(fl); i++) {
                const json_t *f1 = json_array_get(fl, i);
                char *key = fl_asprintf("%s\n%s\n%s\n%s", s_str(f1, "phase"),
                                        s_str(f1, "target"),
                                        s_str(f1, "status"),
                                        s_str(f1, "reason"));

                if (fl_map_gets(printed, key) == NULL) {
                    fl_map_puts(printed, key, key);
                    s_print_failure(f1);
                } else {
                    free(key);
                }
            }
            fflush(stdout);
        }
        json_decref(*last);
        *last = st;
        if (s_is_over(st) || once)
            break;
    }
    free(prev);
    s_printed_free(&printed);
    if (!o->json && !tty && !quiet && !once)
        s_print_accounting(*last);
    return -1;
}

/* Reads the policy file and flags into request arguments (new values). */
static int
s_policy_args(const s_args_t *a, fl_codec_kv_t *kv, size_t *n,
              const char *cmd)
{
    s_policy_file_t pf;
    fl_error_t err = FL_ERROR_INIT;
    int rc;

    memset(&pf, 0, sizeof(pf));
    if (a->policy != NULL &&
        fl_conf_load_file(s_policy_table, &pf, a->policy, &err) != 0) {
        fl_conf_release(s_policy_table, &pf);
        rc = fl_cli_usage_report(cmd, &err);
        fl_error_clear(&err);
        return rc;
    }
    for (int i = 0; i < S_NKEYS; i++) {
        char *v = NULL;

        if (a->flags[i] != NULL) {
            v = fl_strdup(a->flags[i]);
        } else if (i == 0 && pf.waves.count > 0) {
            fl_buf_t b = FL_BUF_INIT(0);
            fl_buf_adds(&b, "");
            for (size_t k = 0; k < pf.waves.count; k++) {
                if (strchr(pf.waves.items[k], ';') != NULL) {
                    fl_buf_release(&b);
                    fl_conf_release(s_policy_table, &pf);
                    return fl_cli_usage_error(cmd, "%s: a wave may not "
                                              "contain \";\"", a->policy);
                }
                fl_buf_addf(&b, "%s%s", k ? ";" : "", pf.waves.items[k]);
            }
            v = fl_buf_detach(&b);
        } else if (i > 0 && pf.v[i] != NULL) {
            v = fl_strdup(pf.v[i]);
        }
        if (v != NULL) {
            kv[*n].key = (char *)s_keys[i];
            kv[*n].value = v;
            (*n)++;
        }
    }
    fl_conf_release(s_policy_table, &pf);
    return -1;
}

static int
s_start(fl_fleet_t *f, const fl_fleet_opts_t *o, const s_args_t *a,
        const char *kind, const char *bundle_path)
{
    fl_codec_kv_t kv[S_NKEYS + 4];
    size_t n = 0, nown = 0;
    unsigned char *bundle = NULL;
    size_t len = 0;
    json_t *st = NULL, *last = NULL;
    fl_error_t err = FL_ERROR_INIT;
    int code = -1;

    kv[n].key = "kind";
    kv[n++].value = (char *)kind;
    kv[n].key = "selector";
    kv[n++].value = (char *)(a->selector ? a->selector : "");
    if (a->from != NULL) {
        kv[n].key = "from";
        kv[n++].value = (char *)a->from;
    }
    if (a->to != NULL) {
        kv[n].key = "to_version";
        kv[n++].value = (char *)a->to;
    }
    nown = n;
    if ((code = s_policy_args(a, kv, &n, o->cmd)) >= 0)
        goto cleanup;
    if (fl_bundle_read_file(&bundle, &len, bundle_path, &err) != 0) {
        code = fl_dbcmd_report(o->cmd, &err, FL_EXIT_FAILED, o->json);
        goto cleanup;
    }
    /* Not repeated on a timeout: it may have been created. */
    {
        int status = 0;
        int rc = fl_fleet_call(f, "rollout.start", kv, n, bundle, len,
                               o->timeout_ms < 60000 ? o->timeout_ms : 60000,
                               &status, &st, &err);
        /* Only a request that went out may have made one (before, said
         * of a wrong endpoint too: found by an audit). */
        if (rc == FL_ETIMEOUT && fl_fleet_sent(f))
            fl_error_set_hint(&err, "The coordinator may have created the "
                              "rollout all the same: \"flotilla rollout "
                              "list\" shows it. (A second start of a "
                              "bundle whose rollout runs is refused.)");
        if (rc != 0 || status != 0) {
            code = fl_fleet_report(o, rc, &err, status, st);
            goto cleanup;
        }
    }
    if (strcmp(kind, "plan") == 0 || strcmp(kind, "baseline") == 0) {
        char *id = fl_strdup(s_str(st, "id"));
        code = s_follow(f, o, id, 1, 0, &last);
        free(id);
        if (code >= 0)
            goto cleanup;
        if (o->json) {
            fl_dbcmd_print_json(last);
        } else {
            s_print_plan(last);
        }
        code = s_probe_exit(last);
        goto cleanup;
    }
    if (a->watch) {
        char *id = fl_strdup(s_str(st, "id"));
        if (!o->json)
            fl_cli_out("%s\n", id);
        fflush(stdout);
        code = s_follow(f, o, id, 0, 0, &last);
        free(id);
        if (code >= 0)
            goto cleanup;
        if (o->json)
            fl_dbcmd_print_json(last);
        code = s_state_exit(last);
        goto cleanup;
    }
    if (o->json)
        fl_dbcmd_print_json(st);
    else
        fl_cli_out("%s\n", s_str(st, "id"));
    code = FL_EXIT_OK;
cleanup:
    for (size_t i = nown; i < n; i++)
        free(kv[i].value);
    free(bundle);
    json_decref(st);
    json_decref(last);
    fl_error_clear(&err);
    return code;
}

int
fl_cmd_rollout(int argc, char **argv)
{
    static struct option opts[] = {
        FL_FLEET_LONGOPTS,
        {"selector", required_argument, NULL, S_OPT_SELECTOR},
        {"policy", required_argument, NULL, S_OPT_POLICY},
        {"watch", no_argument, NULL, S_OPT_WATCH},
        {"abort", no_argument, NULL, S_OPT_ABORT},
        {"from", required_argument, NULL, S_OPT_FROM},
        {"to", required_argument, NULL, S_OPT_TO},
        {"only", required_argument, NULL, S_OPT_ONLY},
        {"waves", required_argument, NULL, S_OPT_KEY + 0},
        {"order", required_argument, NULL, S_OPT_KEY + 1},
        {"seed", required_argument, NULL, S_OPT_KEY + 2},
        {"max-parallel", required_argument, NULL, S_OPT_KEY + 3},
        {"max-parallel-per-agent", required_argument, NULL, S_OPT_KEY + 4},
        {"max-parallel-per-server", required_argument, NULL, S_OPT_KEY + 5},
        {"max-failures", required_argument, NULL, S_OPT_KEY + 6},
        {"max-failures-total", required_argument, NULL, S_OPT_KEY + 7},
        {"unreachable", required_argument, NULL, S_OPT_KEY + 8},
        {"bake", required_argument, NULL, S_OPT_KEY + 9},
        {"gate", required_argument, NULL, S_OPT_KEY + 10},
        {"target-timeout", required_argument, NULL, S_OPT_KEY + 11},
        {"on-failure", required_argument, NULL, S_OPT_KEY + 12},
        {NULL, 0, NULL, 0},
    };
    fl_fleet_opts_t o;
    fl_fleet_t *f = NULL;
    s_args_t a;
    const char *sub = NULL, *id = NULL;
    int with_bundle; /* plan, start, baseline: BUNDLE, not a rollout ID */
    json_t *st = NULL;
    fl_error_t err = FL_ERROR_INIT;
    char cmd[32];
    int rc, code = FL_EXIT_OK;

    fl_fleet_init(&o, "rollout", S_TIMEOUT_MS);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fl_fleet_print_help(&o, s_usage);
        return argc < 2 ? FL_EXIT_USAGE : FL_EXIT_OK;
    }
    sub = argv[1];
    with_bundle = strcmp(sub, "plan") == 0 || strcmp(sub, "start") == 0 ||
                  strcmp(sub, "baseline") == 0;
    if (strcmp(sub, "plan") != 0 && strcmp(sub, "start") != 0 &&
        strcmp(sub, "baseline") != 0 &&
        strcmp(sub, "status") != 0 && strcmp(sub, "list") != 0 &&
        strcmp(sub, "watch") != 0 && strcmp(sub, "halt") != 0 &&
        strcmp(sub, "resume") != 0 && strcmp(sub, "rollback") != 0)
        return fl_cli_usage_error("rollout", "unknown subcommand \"%s\"",
                                  sub);
    snprintf(cmd, sizeof(cmd), "rollout %s", sub);
    memset(&a, 0, sizeof(a));
    fl_fleet_init(&o, cmd, S_TIMEOUT_MS);
    if ((rc = fl_fleet_parse(&o, argc - 1, argv + 1, opts, s_usage, s_option,
                             &a)) >= 0)
        return rc;
    optind++; /* past the subcommand, back in argv's numbering */
    if (strcmp(sub, "list") == 0) {
        if (optind != argc)
            return fl_cli_usage_error(cmd, "takes no operand");
    } else if (optind != argc - 1) {
        return fl_cli_usage_error(cmd, "expected one %s",
                                  with_bundle ? "BUNDLE" : "rollout ID");
    } else {
        id = argv[optind];
        if (!with_bundle &&
            !fl_str_is_hex(id, 32))
            return fl_cli_usage_error(cmd, "\"%.64s\" is not a rollout id "
                                      "(32 hex digits, as rollout start and "
                                      "rollout list print them)", id);
    }
    if ((a.policy != NULL || a.watch) && strcmp(sub, "start") != 0 &&
        !(a.watch && strcmp(sub, "rollback") == 0))
        return fl_cli_usage_error(cmd, "--policy and --watch go with start "
                                       "(and --watch with rollback)");
    if (a.abort && strcmp(sub, "halt") != 0)
        return fl_cli_usage_error(cmd, "--abort goes with halt");
    if (a.resume != NULL && strcmp(sub, "resume") != 0)
        return fl_cli_usage_error(cmd, "--only goes with resume");
    if (a.resume != NULL && strcmp(a.resume, "halt") != 0 &&
        strcmp(a.resume, "gate") != 0)
        return fl_cli_usage_error(cmd, "--only takes halt or gate, not "
                                       "\"%.32s\"", a.resume);
    if (!with_bundle && a.selector != NULL)
        return fl_cli_usage_error(cmd, "--selector goes with start, plan and "
                                       "baseline");
    for (int i = 0; i < S_NKEYS; i++) {
        /* A plan or a baseline runs everywhere at once, with no budget:
         * its caps and timeout alone apply. */
        int probe_key = i >= 3 && i <= 5 ? 1 : i == 11;

        if (a.flags[i] == NULL || strcmp(sub, "start") == 0 ||
            (with_bundle && probe_key))
            continue;
        return fl_cli_usage_error(cmd, "--%s goes with %s", s_flag_names[i],
                                  probe_key ? "start, plan and baseline"
                                            : "start");
    }
    if ((a.from != NULL || a.to != NULL) != (strcmp(sub, "baseline") == 0))
        return fl_cli_usage_error(cmd, "baseline needs --from TOOL or --to "
                                       "VERSION, and they go with baseline "
                                       "only");
    if (a.to != NULL) {
        fl_version_t v = FL_VERSION_INIT;
        if (fl_version_parse_str(&v, a.to, &err) != 0)
            return fl_cli_bad_option(cmd, "--to", &err);
    }
    if ((rc = fl_fleet_open(&f, &o, &err)) != 0) {
        code = fl_fleet_report(&o, rc, &err, 0, NULL);
        goto cleanup;
    }
    if (with_bundle) {
        code = s_start(f, &o, &a, strcmp(sub, "start") == 0 ? "apply" : sub,
                       id);
    } else if (strcmp(sub, "list") == 0) {
        json_t *r = NULL;
        size_t i;
        if ((code = s_call(f, &o, "rollout.list", NULL, 0, NULL, 0,
                           o.timeout_ms < 30000 ? o.timeout_ms : 30000,
                           &st)) >= 0)
            goto cleanup;
        code = FL_EXIT_OK;
        if (o.json) {
            fl_dbcmd_print_json(st);
            goto cleanup;
        }
        json_array_foreach(st, i, r) {
            const json_t *ac = json_object_get(r, "accounting");

            if (s_is_probe(r)) {
                /* Its verdicts: a plan or baseline applies nothing. */
                fl_cli_out("%s  %-8s %-15s planned %lld:", s_str(r, "id"),
                           s_str(r, "kind"), s_str(r, "status"),
                           s_int(ac, "planned"));
                s_print_verdicts(json_object_get(r, s_str(r, "kind")));
                fl_cli_out("  bundle %s\n", s_str(r, "bundle"));
                continue;
            }
            fl_cli_out("%s  %-5s %-15s wave %lld/%lld  planned %lld, "
                       "applied %lld, failed %lld, rolled back %lld, "
                       "untouched %lld  bundle %s\n",
                       s_str(r, "id"), s_str(r, "kind"), s_str(r, "status"),
                       s_int(r, "wave"), s_int(r, "waves_total"),
                       s_int(ac, "planned"), s_int(ac, "applied"),
                       s_int(ac, "failed"), s_int(ac, "rolled_back"),
                       s_int(ac, "untouched"), s_str(r, "bundle"));
        }
    } else if (strcmp(sub, "status") == 0 || strcmp(sub, "watch") == 0) {
        int once = strcmp(sub, "status") == 0;

        /* status prints the state once, below; watch as it goes. */
        code = s_follow(f, &o, id, once, once, &st);
        if (code >= 0)
            goto cleanup;
        if (o.json)
            fl_dbcmd_print_json(st);
        else if (strcmp(sub, "status") == 0 && s_is_probe(st) &&
                 strcmp(s_str(st, "status"), "completed") == 0)
            s_print_plan(st);
        else if (strcmp(sub, "status") == 0)
            s_print_status(st);
        code = s_state_exit(st);
    } else {
        fl_codec_kv_t kv[3] = {{"id", (char *)id},
                               {"abort", a.abort ? "true" : "false"},
                               {"what", NULL}};
        char full[40];

        /* Resume what the rollout waits on now, as read just before:
         * a second operator's resume of the same halt is then refused
         * rather than taken for the gate's. */
        if (strcmp(sub, "resume") == 0 && a.resume == NULL) {
            if ((code = s_follow(f, &o, id, 1, 1, &st)) >= 0)
                goto cleanup;
            a.resume = json_is_true(json_object_get(st, "halted")) ? "halt"
                       : strcmp(s_str(st, "status"), "waiting") == 0
                           ? "gate"
                           : NULL;
            json_decref(st);
            st = NULL;
        }
        kv[2].value = (char *)a.resume;
        snprintf(full, sizeof(full), "rollout.%s", sub);
        if ((code = s_call(f, &o, full, kv, a.resume ? 3 : 2, NULL, 0,
                           o.timeout_ms < 60000 ? o.timeout_ms : 60000,
                           &st)) >= 0)
            goto cleanup;
        if (strcmp(sub, "rollback") == 0 && a.watch) {
            json_decref(st);
            st = NULL;
            code = s_follow(f, &o, id, 0, 0, &st);
            if (code >= 0)
                goto cleanup;
            if (o.json)
                fl_dbcmd_print_json(st);
            code = s_state_exit(st);
            goto cleanup;
        }
        if (o.json)
            fl_dbcmd_print_json(st);
        else
            fl_cli_out("rollout %s: %s%s\n", s_str(st, "id"),
                       s_str(st, "status"),
                       json_is_true(json_object_get(st, "halted"))
                           ? " (halt latch set)"
                           : "");
        code = FL_EXIT_OK;
    }
cleanup:
    json_decref(st);
    fl_fleet_close(&f);
    fl_error_clear(&err);
    return code;
}
