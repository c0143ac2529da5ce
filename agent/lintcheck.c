/*
 * lintcheck.c - the lint gate of the validate step (see lintcheck.h).
 *
 * The migration is linted as the pipeline will run it: inside one
 * transaction unless it is no-transaction, with lock_timeout always set
 * (the pipeline sets it), and with the migration's own allow options as
 * file-level suppressions.  Error-level findings refuse the migration.
 */
#include "agent/lintcheck.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "lint/lint.h"

int
fl_lintcheck_migration(fl_finding_list_t *out, const fl_migration_t *m,
                       const char *file, const fl_lint_options_t *opts,
                       fl_error_t *err)
{
    fl_lint_options_t o;
    fl_lint_migration_t lm;
    fl_buf_t header = FL_BUF_INIT(0);
    int rc;

    if (opts)
        o = *opts;
    else
        fl_lint_options_init(&o);
    o.lock_timeout_set = 1;
    o.statement_timeout_set |= m->statement_timeout_ms > 0;
    /* The allow options as the linter reads them from a file's header. */
    for (size_t i = 0; i < m->nallows; i++)
        fl_buf_addf(&header, "-- flotilla:options allow=%s %s\n",
                            m->allows[i].rule, m->allows[i].reason);
    memset(&lm, 0, sizeof(lm));
    lm.file = file ? file : m->file;
    lm.header = header.len ? fl_buf_str(&header) : NULL;
    lm.up = m->up;
    lm.up_line = m->up_line;
    lm.down = m->down;
    lm.down_line = m->down_line;
    lm.no_transaction = m->no_transaction;
    rc = fl_lint_migration(out, &lm, &o, err);
    fl_buf_release(&header);
    if (rc == 0 && m->repeatable) {
        /* A repeatable migration has no down by design (it is never
         * rolled back): migration-missing-down does not apply. */
        fl_finding_list_t drop = {NULL, 0};
        size_t keep = 0;

        drop.items = fl_calloc(out->count ? out->count : 1,
                               sizeof(*drop.items));
        for (size_t i = 0; i < out->count; i++) {
            if (strcmp(out->items[i].rule, "migration-missing-down") == 0)
                drop.items[drop.count++] = out->items[i];
            else
                out->items[keep++] = out->items[i];
        }
        out->count = keep;
        fl_finding_list_release(&drop);
    }
    return rc;
}

int
fl__lint_gate(const fl_migration_t *m, int pg_version, int allow_errors,
              fl_finding_list_t *out, fl_error_t *err)
{
    fl_lint_options_t opts;
    fl_finding_list_t findings = {NULL, 0};
    const fl_finding_t *first = NULL;
    int rc = 0;

    fl_lint_options_init(&opts);
    opts.pg_version = pg_version;
    /* down is linted now, not first when a rollback needs it. */
    opts.lint_down = 1;
    if ((rc = fl_lintcheck_migration(&findings, m, NULL, &opts, err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < findings.count && first == NULL; i++)
        if (findings.items[i].severity == FL_LINT_ERROR)
            first = &findings.items[i];
    if (first && !allow_errors) {
        rc = FL_ERR(err, FL_EINVAL, "lint: %s:%d:%d: %s: %s", m->file,
                    first->line, first->column, first->rule, first->message);
        fl_error_set_hint(err, "%s%sIf it is intended here, add \"-- "
                          "flotilla:options allow=%s <reason>\" to the "
                          "migration, or pass --allow-lint-errors.",
                          first->help ? first->help : "",
                          first->help ? ".  " : "", first->rule);
    }
cleanup:
    if (out && (rc == 0 || first)) {
        *out = findings;
        findings.items = NULL;
        findings.count = 0;
    }
    fl_finding_list_release(&findings);
    return rc;
}

size_t
fl_lintcheck_demote(fl_finding_list_t *l, size_t from)
{
    size_t n = 0;

    for (size_t i = from; i < l->count; i++) {
        if (l->items[i].severity != FL_LINT_ERROR)
            continue;
        l->items[i].severity = FL_LINT_WARNING;
        l->items[i].not_enforced = 1;
        n++;
    }
    return n;
}
