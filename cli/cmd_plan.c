/*
 * cmd_plan.c - `flotilla plan`: the dry run.  Verifies, validates against
 * the live database and rehearses each migration inside a transaction
 * that is rolled back (agent/plan.c); changes nothing.  Renders the
 * report as text or JSON, and maps its verdict to the exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/pipeline.h"
#include "agent/planjson.h"
#include "agent/source.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/json.h"

static const char s_usage[] =
    "Usage: flotilla plan [--db DSN] (SOURCE | --dir DIR [--layout TOOL]) [options]\n"
    "\n"
    "The dry run: for every pending migration of SOURCE, prints each\n"
    "statement with its transaction group, the lock it takes on each table,\n"
    "whether it rewrites or scans the table, what would be backed up, the\n"
    "lint findings, the live validation results and the result of a\n"
    "rehearsal inside BEGIN ... ROLLBACK, then a verdict.  Changes nothing:\n"
    "not the ledger, not the schema, not the data (sequences the rehearsal\n"
    "moved are put back).  The rehearsal holds the target lock and takes\n"
    "the locks its statements take, until the plan ends, under the lock\n"
    "and statement timeouts of apply (statement timeout 60s unless set).\n"
    "Exit 0 when apply would go ahead (every pending migration rehearsed,\n"
    "or --no-rehearse), 3 when it would be refused or fail, or when some\n"
    "migrations could not be rehearsed (after a no-transaction one).\n"
    "Unlike apply, plan writes no log file unless --log-file names one.\n"
    "\n"
    "  --no-rehearse          plan from the catalog and the text only: no\n"
    "                         transaction, no statement run, no live check\n"
    "  --to VERSION           plan up to and including VERSION\n"
    "  --allow-older-release  plan a bundle older than a release applied on\n"
    "                         its channel (needs --reason)\n"
    "  --reason TEXT          why\n";

static void
s_print_text(const fl_plan_t *plan)
{
    char *changed = NULL;

    /* 150018 is 15.18 (before, printed as the number: an audit). */
    fl_cli_out("plan for %s (PostgreSQL %d.%d)\n", plan->target,
               plan->server_version / 10000, plan->server_version % 10000);
    if (plan->problem)
        fl_cli_out("  refused: %s\n", plan->problem);
    for (size_t i = 0; i < plan->nmigrations; i++) {
        const fl_plan_migration_t *m = &plan->migrations[i];
        fl_cli_out("\n%s [%s, %s]\n", m->file, m->state,
                   m->no_transaction ? "none (statement by statement)"
                                     : "one transaction");
        if (m->transaction_why)
            fl_cli_out("  no transaction: %s\n", m->transaction_why);
        else if (m->note)
            fl_cli_out("  note: %s\n", m->note);
        if (!m->pending)
            continue;
        for (size_t j = 0; j < m->nvalidate; j++)
            fl_cli_out("  validate %s: %s\n", m->validate[j].at,
                       m->validate[j].ok ? "ok" : "FAILED");
        for (size_t j = 0; j < m->nstmts; j++) {
            const fl_plan_stmt_t *st = &m->stmts[j];
            fl_cli_out("  %d. line %d: %s\n", st->index, st->line, st->kind);
            for (size_t k = 0; k < st->nlocks; k++)
                fl_cli_out("       lock %s on %s%s\n", st->locks[k].lock,
                           st->locks[k].table,
                           st->locks[k].writes ? " (writes)" : "");
            if (st->rewrites)
                fl_cli_out("       rewrites the table\n");
            if (st->scans)
                fl_cli_out("       scans the table under its lock\n");
            if (st->no_transaction)
                fl_cli_out("       must run outside a transaction\n");
            for (size_t k = 0; k < st->nbackups; k++)
                fl_cli_out("       backup of %s before it runs\n",
                           st->backups[k]);
            for (size_t k = 0; k < st->nchecks; k++) {
                const fl_plan_check_t *c = &st->checks[k];
                const char *why = c->problem ? c->problem
                                  : c->skipped ? c->skipped : c->holds;
                fl_cli_out("       check %s: %s%s%s\n", c->target,
                           c->skipped ? "left to the statement"
                           : c->ok ? "ok" : "FAILED",
                           why ? ": " : "", why ? why : "");
            }
            if (st->rehearsal)
                fl_cli_out("       rehearsal: %s\n", st->rehearsal);
            for (size_t k = 0; k < st->nobserved_locks; k++)
                fl_cli_out("       observed: took %s\n", st->observed_locks[k]);
            for (size_t k = 0; k < st->nobserved_rewrites; k++)
                fl_cli_out("       observed: rewrote %s\n",
                           st->observed_rewrites[k]);
        }
        for (size_t j = 0; j < m->nlint; j++)
            fl_cli_out("  lint %s %s at line %d: %s%s\n", m->lint[j].severity,
                       m->lint[j].rule, m->lint[j].line, m->lint[j].message,
                       m->lint[j].not_enforced
                           ? " (an error from lint.enforce_from on)" : "");
        fl_cli_out("  verdict: %s%s%s\n", m->verdict, m->problem ? ": " : "",
                   m->problem ? m->problem : "");
    }
    for (size_t i = 0; i < plan->nrepeatables; i++) {
        const fl_plan_repeatable_t *x = &plan->repeatables[i];
        fl_cli_out("\nrepeatable %s: %s; %s\n", x->file, x->state,
                   x->would_run ? "apply runs it after the versioned "
                                  "migrations (not rehearsed)"
                   : x->held ? "not run: versioned migrations stay pending"
                             : "not run");
    }
    for (size_t i = 0; i < plan->nsequences; i++)
        fl_cli_out("\nsequence %s moved by the rehearsal: %s\n",
                   plan->sequences[i].sequence,
                   plan->sequences[i].put_back
                       ? "put back"
                       : "NOT put back (used since)");
    if ((changed = fl_schema_state_text(&plan->schema_state)) != NULL)
        fl_cli_out("\nSCHEMA CHANGED: %s\n", changed);
    free(changed);
    if (!plan->ok)
        fl_cli_out("\nNOT OK, apply would stop: %d migration%s pending\n",
                   plan->pending, plan->pending == 1 ? "" : "s");
    else if (!plan->rehearse)
        fl_cli_out("\nOK as far as the catalog and the text tell "
                   "(--no-rehearse, nothing rehearsed): %d migration%s "
                   "pending\n", plan->pending, plan->pending == 1 ? "" : "s");
    else if (!plan->proven)
        fl_cli_out("\nNOT PROVEN: %d of %d pending migration%s not rehearsed "
                   "(%s); the rehearsed ones would go ahead\n",
                   plan->pending - plan->rehearsed, plan->pending,
                   plan->pending == 1 ? "" : "s",
                   plan->not_rehearsed_because
                       ? plan->not_rehearsed_because : "");
    else
        fl_cli_out("\nOK, apply would go ahead: %d migration%s pending\n",
                   plan->pending, plan->pending == 1 ? "" : "s");
}

int
fl_cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {
        FL_DBCMD_LONGOPTS,
        FL_DBCMD_PIPELINE_LONGOPTS,
        {"allow-older-release", no_argument, NULL, FL_OPT_ALLOW_OLDER},
        {"to", required_argument, NULL, FL_OPT_TO},
        {"no-rehearse", no_argument, NULL, FL_OPT_NO_REHEARSE},
        {NULL, 0, NULL, 0},
    };
    fl_dbcmd_t c;
    fl_source_t src = FL_SOURCE_INIT;
    fl_pipeline_t *p = NULL;
    fl_error_t err = FL_ERROR_INIT;
    fl_plan_t plan = FL_PLAN_INIT;
    int code = FL_EXIT_OK;

    fl_dbcmd_init(&c, "plan");
    /* A dry run writes no log file unless asked to, and prints a report. */
    c.log_file = "";
    c.quiet = 1;
    code = fl_dbcmd_open_pipeline(&c, argc, argv, opts, s_usage, &src, &p);
    if (code != 0) {
        code = code < 0 ? FL_EXIT_OK : code;
        goto cleanup;
    }
    if (fl_pipeline_plan(p, &src, &plan, &err) != 0) {
        code = fl_dbcmd_report("plan", &err,
                               err.code == FL_ECANCELLED ? FL_EXIT_INTERRUPTED
                               : err.code == FL_ECONFLICT ? FL_EXIT_LOCKED
                                                          : FL_EXIT_FAILED,
                               c.json);
        goto cleanup;
    }
    /*
     * Cut short by SIGINT or SIGTERM: the rehearsal's cancelled statement
     * is no verdict on the migration (before, exit 3 and "apply would
     * stop": found by an audit).  Interrupted, as apply says.
     */
    if (fl_dbcmd_signal_received()) {
        FL_ERR(&err, FL_ECANCELLED, "interrupted by a signal: the "
               "rehearsal was cancelled and rolled back");
        fl_error_set_hint(&err, "Nothing changed.  Run flotilla plan again "
                                "for its verdict.");
        code = fl_dbcmd_report("plan", &err, FL_EXIT_INTERRUPTED, c.json);
        goto cleanup;
    }
    if (c.json) {
        json_t *report = fl_plan_json(&plan);
        fl_dbcmd_print_json(report);
        json_decref(report);
    } else {
        s_print_text(&plan);
    }
    code = plan.proven ? FL_EXIT_OK : FL_EXIT_REFUSED;
cleanup:
    fl_plan_release(&plan);
    fl_dbcmd_close_pipeline(&p);
    fl_source_close(&src);
    fl_error_clear(&err);
    fl_dbcmd_stop(&c);
    return code;
}
