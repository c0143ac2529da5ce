/*
 * lintcheck.c - the lint gate of the validate step (see lintcheck.h).
 */
#include "agent/lintcheck.h"

int
fl__lint_gate(const fl_migration_t *m, const fl_stmt_list_t *stmts,
              int pg_version, int allow_errors, json_t *report,
              fl_error_t *err)
{
    /* TODO(lead): call the lint rules once lint/lint.h lands (issue 4). */
    (void)m; (void)stmts; (void)pg_version; (void)allow_errors; (void)report;
    (void)err;
    return 0;
}
