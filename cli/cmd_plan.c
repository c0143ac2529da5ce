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
#include "agent/source.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/json.h"

static const char s_usage[] =
    "Usage: flotilla plan [--db DSN] SOURCE [options]\n"
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
    fl_cli_out("plan for %s (PostgreSQL %d)\n", plan->target,
               plan->server_version);
    if (plan->problem)
        fl_cli_out("  refused: %s\n", plan->problem);
    for (size_t i = 0; i < plan->nmigrations; i++) {
        const fl_plan_migration_t *m = &plan->migrations[i];
        fl_cli_out("\n%s [%s, %s]\n", m->file, m->state,
                   m->no_transaction ? "none (statement by statement)"
                                     : "one transaction");
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
            for (size_t k = 0; k < st->nchecks; k++)
                fl_cli_out("       check %s: %s%s%s\n", st->checks[k].target,
                           st->checks[k].ok ? "ok" : "FAILED",
                           st->checks[k].problem ? ": " : "",
                           st->checks[k].problem ? st->checks[k].problem : "");
            if (st->rehearsal)
                fl_cli_out("       rehearsal: %s\n", st->rehearsal);
            for (size_t k = 0; k < st->nobserved_locks; k++)
                fl_cli_out("       observed: took %s\n", st->observed_locks[k]);
            for (size_t k = 0; k < st->nobserved_rewrites; k++)
                fl_cli_out("       observed: rewrote %s\n",
                           st->observed_rewrites[k]);
        }
        for (size_t j = 0; j < m->nlint; j++)
            fl_cli_out("  lint %s %s at line %d: %s\n", m->lint[j].severity,
                       m->lint[j].rule, m->lint[j].line, m->lint[j].message);
        fl_cli_out("  verdict: %s%s%s\n", m->verdict, m->problem ? ": " : "",
                   m->problem ? m->problem : "");
    }
    for (size_t i = 0; i < plan->nsequences; i++)
        fl_cli_out("\nsequence %s moved by the rehearsal: %s\n",
                   plan->sequences[i].sequence,
                   plan->sequences[i].put_back
                       ? "put back"
                       : "NOT put back (used since)");
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

/* An array of strings, or null when not read. */
static json_t *
s_strings(char *const *items, size_t n, int read)
{
    json_t *a = read ? json_array() : json_null();

    for (size_t i = 0; read && i < n; i++)
        json_array_append_new(a, fl_json_text(items[i]));
    return a;
}

static json_t *
s_stmt_json(const fl_plan_migration_t *m, const fl_plan_stmt_t *st)
{
    json_t *locks = json_array();
    json_t *o = NULL;

    for (size_t k = 0; k < st->nlocks; k++)
        json_array_append_new(locks, fl_json_pack("{s:o, s:s, s:b}",
            "table", fl_json_text(st->locks[k].table),
            "lock", st->locks[k].lock, "writes", st->locks[k].writes));
    o = fl_json_pack("{s:i, s:o, s:i, s:i, s:o, s:o, s:o, s:b, s:b, s:b, s:b,"
                     " s:o, s:o, s:o, s:o}",
                     "index", st->index, "file", fl_json_text(m->file),
                     "line", st->line, "column", st->column,
                     "kind", fl_dbcmd_json_text(st->kind), "sql",
                     fl_json_text(st->sql), "locks", locks,
                     "rewrites", st->rewrites, "scans", st->scans,
                     "destructive", st->destructive,
                     "no_transaction", st->no_transaction,
                     "backup", s_strings(st->backups, st->nbackups, 1),
                     "rehearsal", fl_json_text(st->rehearsal),
                     "observed_locks", s_strings(st->observed_locks,
                         st->nobserved_locks,
                         st->observed && st->observed_locks_read),
                     "observed_rewrites", s_strings(st->observed_rewrites,
                         st->nobserved_rewrites, st->observed));
    if (st->nchecks > 0 || st->rehearsal) {
        json_t *checks = json_array();
        for (size_t k = 0; k < st->nchecks; k++) {
            const fl_plan_check_t *c = &st->checks[k];
            json_array_append_new(checks, fl_json_pack(
                "{s:o, s:o, s:b, s:I, s:o, s:o}", "check",
                fl_json_text(c->check), "target", fl_json_text(c->target),
                "ok", c->ok, "count", (json_int_t)c->count,
                "sample", fl_json_text(c->sample),
                "problem", fl_json_text(c->problem)));
        }
        json_object_set_new(o, "checks", checks);
    }
    return o;
}

/* The report as JSON: the shape `plan --json` has always printed. */
static json_t *
s_plan_json(const fl_plan_t *plan)
{
    json_t *migs = json_array(), *seqs = json_array();

    for (size_t i = 0; i < plan->nmigrations; i++) {
        const fl_plan_migration_t *m = &plan->migrations[i];
        json_t *mo = fl_json_pack("{s:I, s:o, s:o, s:o, s:s, s:o}",
            "version", (json_int_t)m->version, "name", fl_json_text(m->name),
            "file", fl_json_text(m->file), "checksum",
            fl_json_text(m->checksum), "transaction",
            m->no_transaction ? "none (statement by statement)"
                              : "one transaction",
            "state", fl_json_text(m->state));
        if (m->pending) {
            json_t *sts = json_array(), *lint = json_array();
            json_t *validate = json_array();
            for (size_t j = 0; j < m->nstmts; j++)
                json_array_append_new(sts, s_stmt_json(m, &m->stmts[j]));
            for (size_t j = 0; j < m->nlint; j++)
                json_array_append_new(lint, fl_json_pack(
                    "{s:o, s:s, s:o, s:i, s:i, s:o}", "rule",
                    fl_json_text(m->lint[j].rule), "severity",
                    m->lint[j].severity, "message",
                    fl_json_text(m->lint[j].message), "line", m->lint[j].line,
                    "column", m->lint[j].column, "help",
                    fl_json_text(m->lint[j].help)));
            for (size_t j = 0; j < m->nvalidate; j++)
                json_array_append_new(validate, fl_json_pack(
                    "{s:o, s:o, s:b, s:o}", "statement",
                    fl_json_text(m->validate[j].statement), "at",
                    fl_json_text(m->validate[j].at), "ok", m->validate[j].ok,
                    "result", fl_json_text(m->validate[j].result)));
            json_object_set_new(mo, "statements", sts);
            json_object_set_new(mo, "lint", lint);
            json_object_set_new(mo, "validate", validate);
            json_object_set_new(mo, "verdict", json_string(m->verdict));
            json_object_set_new(mo, "problem", fl_json_text(m->problem));
        }
        json_array_append_new(migs, mo);
    }
    for (size_t i = 0; i < plan->nsequences; i++) {
        const fl_plan_sequence_t *q = &plan->sequences[i];
        json_array_append_new(seqs, fl_json_pack("{s:o, s:o, s:o, s:b}",
            "sequence", fl_json_text(q->sequence), "before",
            q->has_before ? json_integer(q->before) : json_null(),
            "after_rehearsal",
            q->has_after ? json_integer(q->after_rehearsal) : json_null(),
            "put_back", q->put_back));
    }
    return fl_json_pack("{s:o, s:i, s:b, s:o, s:o, s:o, s:o, s:o, s:i, s:i,"
                        " s:i, s:b, s:b, s:o}",
        "target", fl_json_text(plan->target),
        "server_version", plan->server_version, "rehearse", plan->rehearse,
        "problem", fl_json_text(plan->problem),
        "detail", fl_json_text(plan->detail),
        "release_override", fl_json_text(plan->release_override),
        "migrations", migs, "sequences", seqs, "pending", plan->pending,
        "rehearsed", plan->rehearsed,
        "not_rehearsed", plan->pending - plan->rehearsed, "ok", plan->ok,
        "proven", plan->proven, "not_rehearsed_because",
        fl_json_text(plan->not_rehearsed_because));
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
        code = fl_cli_report("plan", &err,
                             err.code == FL_ECANCELLED  ? FL_EXIT_INTERRUPTED
                             : err.code == FL_ECONFLICT ? FL_EXIT_LOCKED
                                                        : FL_EXIT_FAILED);
        goto cleanup;
    }
    if (c.json) {
        json_t *report = s_plan_json(&plan);
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
