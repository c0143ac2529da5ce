/*
 * plan.c - the dry run: for each pending migration, what it would lock,
 * rewrite, scan and back up, its lint findings and live checks, and a
 * rehearsal inside a transaction that is rolled back.
 */
#include <stdlib.h>
#include <string.h>

#include "agent/lintcheck.h"
#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/json.h"

/* JSON description of one statement's facts for the plan. */
static json_t *
s_stmt_json(const fl_migration_t *m, const fl_stmt_t *st, size_t index)
{
    json_t *locks = json_array();
    json_t *backups = json_array();
    json_t *o = NULL;

    for (size_t i = 0; i < st->ntables; i++) {
        char *t = fl_asprintf("%s%s%s", st->tables[i].schema
                                            ? st->tables[i].schema : "",
                              st->tables[i].schema ? "." : "",
                              st->tables[i].name);
        json_array_append_new(locks, fl_json_pack("{s:s, s:s, s:b}", "table", t,
            "lock", fl_lock_level_name(st->tables[i].lock),
            "writes", st->tables[i].writes));
        free(t);
    }
    for (size_t i = 0; i < st->ndestroys; i++) {
        if (!st->destroys[i].table)
            continue; /* DROP SCHEMA: no table named in the statement */
        char *t = fl_asprintf("%s%s%s", st->destroys[i].schema
                                            ? st->destroys[i].schema : "",
                              st->destroys[i].schema ? "." : "",
                              st->destroys[i].table);
        json_array_append_new(backups, json_string(t));
        free(t);
    }
    o = fl_json_pack("{s:I, s:s, s:I, s:I, s:s, s:s, s:o, s:b, s:b, s:b, s:b, s:o}",
                  "index", (json_int_t)index + 1, "file", m->file,
                  "line", (json_int_t)st->line, "column", (json_int_t)st->column,
                  "kind", st->kind ? st->kind : "", "sql", st->sql,
                  "locks", locks, "rewrites", st->rewrites, "scans", st->scans,
                  "destructive", st->destructive,
                  "no_transaction", st->no_transaction, "backup", backups);
    return o;
}

/*
 * What the rehearsal connection holds right now: its granted table locks
 * ("table mode" keys) and the relfilenode of every user table, so a
 * statement's real locks and rewrites can be read off the difference.
 */
static int
s_observe(fl_pipeline_t *p, json_t **locks, json_t **nodes, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    *locks = json_object();
    *nodes = json_object();
    rc = fl_pg_query(p->pg, &r,
        "SELECT l.relation::regclass::text || ' ' || l.mode FROM pg_locks l"
        " JOIN pg_class c ON c.oid = l.relation"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation'"
        " AND l.granted AND c.relkind IN ('r', 'p') AND n.nspname NOT IN"
        " ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')",
        0, NULL, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        json_object_set_new(*locks, fl_pg_value(&r, i, 0), json_true());
    fl_pg_result_release(&r);
    if (rc == 0)
        rc = fl_pg_query(p->pg, &r,
            "SELECT c.oid::regclass::text, c.relfilenode::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN"
            " ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')"
            " AND n.nspname NOT LIKE 'pg\\_%'", 0, NULL, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        json_object_set_new(*nodes, fl_pg_value(&r, i, 0),
                            json_string(fl_pg_value(&r, i, 1)));
    fl_pg_result_release(&r);
    return rc;
}

/* Records in so what the statement really locked and rewrote. */
static void
s_observed(json_t *so, json_t *locks0, json_t *nodes0, json_t *locks1,
           json_t *nodes1)
{
    json_t *locks = json_array(), *rewrites = json_array(), *v = NULL;
    const char *key = NULL;

    json_object_foreach(locks1, key, v) {
        if (json_object_get(locks0, key) == NULL)
            json_array_append_new(locks, json_string(key));
    }
    json_object_foreach(nodes1, key, v) {
        json_t *before = json_object_get(nodes0, key);
        if (before && strcmp(json_string_value(before),
                             json_string_value(v)) != 0)
            json_array_append_new(rewrites, json_string(key));
    }
    json_object_set_new(so, "observed_locks", locks);
    json_object_set_new(so, "observed_rewrites", rewrites);
}

/* Plans one migration inside the rehearsal transaction; fills mo. */
static int
s_plan_one(fl_pipeline_t *p, const fl_migration_t *m, int rehearse,
           json_t *mo, fl_error_t *err)
{
    fl_stmt_list_t stmts = {NULL, 0};
    json_t *sts = json_array();
    json_t *lint = json_array();
    json_t *validate = json_array();
    fl_error_t perr = FL_ERROR_INIT;
    fl__stats_t stats = {0, 0, 0, NULL};
    fl_finding_list_t findings = {NULL, 0};
    const char *verdict = "ok";
    char *problem = NULL;
    json_t *locks0 = NULL, *nodes0 = NULL, *locks1 = NULL, *nodes1 = NULL;
    int rc = 0;

    json_object_set_new(mo, "statements", sts);
    json_object_set_new(mo, "lint", lint);
    json_object_set_new(mo, "validate", validate);
    if (fl__validate_text(p, m, &stmts, &findings, &perr) != 0) {
        verdict = "refused";
        problem = fl_strdup(perr.message);
        fl_error_clear(&perr);
    }
    for (size_t i = 0; i < findings.count; i++) {
        const fl_finding_t *f = &findings.items[i];
        json_array_append_new(lint, fl_json_pack(
            "{s:s, s:s, s:s, s:i, s:i, s:s}", "rule", f->rule,
            "severity", fl_lint_severity_name(f->severity),
            "message", f->message, "line", f->line, "column", f->column,
            "help", f->help ? f->help : ""));
    }
    fl_finding_list_release(&findings);
    if (stmts.count == 0)
        goto done;
    for (size_t i = 0; i < stmts.count; i++)
        json_array_append_new(sts, s_stmt_json(m, &stmts.items[i], i));
    if (!rehearse) {
        for (size_t i = 0; i < stmts.count; i++)
            json_object_set_new(json_array_get(sts, i), "rehearsal",
                json_string(m->no_transaction
                    ? "not rehearsed: no-transaction migrations cannot run "
                      "inside the rehearsal transaction"
                    : "not rehearsed: an earlier migration could not be"));
        if (strcmp(verdict, "ok") == 0)
            verdict = "not rehearsed";
        goto done;
    }
    if ((rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_plan", err)) != 0 ||
        (rc = fl__set_timeouts(p, m, 1, err)) != 0)
        goto done;
    if (fl__custom_validate(p, m, validate, &perr) != 0) {
        verdict = "refused";
        free(problem);
        problem = fl_strdup(perr.message);
        fl_error_clear(&perr);
    }
    for (size_t i = 0; i < stmts.count && strcmp(verdict, "refused") != 0; i++) {
        json_t *so = json_array_get(sts, i);
        json_t *checks = json_array();
        int crc;

        json_object_set_new(so, "checks", checks);
        crc = fl__run_checks(p, m, &stmts, i, checks, &perr);
        if (crc != 0) {
            verdict = "refused";
            free(problem);
            problem = fl_strdup(perr.message);
            fl_error_clear(&perr);
            /* A failed check query aborts the transaction: undo to here. */
            if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_plan",
                                 err)) != 0)
                goto done;
            p->session.in_migration = 0;
            break;
        }
        if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
            (rc = s_observe(p, &locks0, &nodes0, err)) != 0)
            goto done;
        if (fl__run(p, m, &stmts, (int)i, 1, 0, &stats, &perr) != 0) {
            json_object_set_new(so, "rehearsal", json_string(perr.message));
            verdict = "failed";
            free(problem);
            problem = fl_strdup(perr.message);
            fl_error_clear(&perr);
            if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_plan",
                                 err)) != 0)
                goto done;
            p->session.in_migration = 0;
            break;
        }
        json_object_set_new(so, "rehearsal", json_string("ok"));
        if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
            (rc = s_observe(p, &locks1, &nodes1, err)) != 0)
            goto done;
        s_observed(so, locks0, nodes0, locks1, nodes1);
        json_decref(locks0);
        json_decref(nodes0);
        json_decref(locks1);
        json_decref(nodes1);
        locks0 = nodes0 = locks1 = nodes1 = NULL;
    }
done:
    {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl__session_leave(p->pg, &p->session, &ignore));
        fl_error_clear(&ignore);
    }
    json_decref(locks0);
    json_decref(nodes0);
    json_decref(locks1);
    json_decref(nodes1);
    json_object_set_new(mo, "verdict", json_string(verdict));
    if (problem)
        json_object_set_new(mo, "problem", json_string(problem));
    free(problem);
    fl__stats_release(&stats);
    fl_error_clear(&perr);
    fl_stmt_list_release(&stmts);
    return rc;
}

int
fl__plan(fl_pipeline_t *p, const fl_source_t *src, json_t **out,
         fl_error_t *err)
{
    const fl_migration_list_t *migs = src->migs;
    fl_ledger_t ledger = {NULL, 0};
    int *pending = fl_calloc(migs->count ? migs->count : 1, sizeof(int));
    json_t *report = json_object();
    json_t *list = json_array();
    fl_error_t verr = FL_ERROR_INIT;
    int ok = 1, rehearse = 1, npending = 0;
    int rc = 0;

    FL_ASSERT(src->verified == FL_SOURCE_VERIFIED);
    *out = NULL;
    p->dry_run = 1;
    json_object_set_new(report, "target", json_string(fl_pg_describe(p->pg)));
    json_object_set_new(report, "server_version",
                        json_integer(fl_pg_server_version(p->pg)));
    json_object_set_new(report, "migrations", list);
    /* Reading the ledger changes nothing; a missing one is an empty one. */
    if ((rc = fl_ledger_load(p->pg, p->target, &ledger, err)) != 0)
        goto cleanup;
    {
        char *override = NULL;
        int refused = fl__check_release(p, src, &override, &verr) != 0;

        if (override)
            json_object_set_new(report, "release_override",
                                fl_json_text(override));
        free(override);
        p->release = NULL;
        if (!refused)
            refused = fl__verify_source(p, migs, &ledger, pending, &verr) != 0;
        ok = !refused;
    }
    if (!ok) {
        rehearse = 0;
        json_object_set_new(report, "problem", fl_json_text(verr.message));
        if (verr.detail)
            json_object_set_new(report, "detail", fl_json_text(verr.detail));
    }
    if ((rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_ledger_row_t *row = fl_ledger_find(&ledger, m->version);
        json_t *mo = fl_json_pack("{s:I, s:s, s:s, s:s, s:s}",
                               "version", (json_int_t)m->version,
                               "name", m->name, "file", m->file,
                               "checksum", m->checksum_hex,
                               "transaction", m->no_transaction
                                   ? "none (statement by statement)"
                                   : "one transaction");
        const char *verdict = NULL;

        json_array_append_new(list, mo);
        if (!pending[i]) {
            json_object_set_new(mo, "state", json_string(row ? row->status
                                                             : "not selected"));
            continue;
        }
        npending++;
        json_object_set_new(mo, "state",
                            json_string(row ? row->status : "pending"));
        fl__session_reset(&p->session);
        rc = s_plan_one(p, m, rehearse && !m->no_transaction, mo, err);
        if (rc != 0)
            goto cleanup;
        verdict = json_string_value(json_object_get(mo, "verdict"));
        if (strcmp(verdict, "ok") != 0 && strcmp(verdict, "not rehearsed") != 0)
            ok = 0;
        /* Later migrations may depend on this one: rehearse no further. */
        if (strcmp(verdict, "ok") != 0)
            rehearse = 0;
    }
    json_object_set_new(report, "pending", json_integer(npending));
    json_object_set_new(report, "ok", json_boolean(ok));
cleanup:
    fl__rollback_quietly(p);
    if (rc == 0) {
        *out = report;
        report = NULL;
    }
    json_decref(report);
    fl_error_clear(&verr);
    fl_ledger_release(&ledger);
    free(pending);
    return rc;
}
