/*
 * lintcheck.h - the lint gate of the validate step: runs the lint rules
 * on a migration's up section and refuses it when a finding at error
 * level is not allowed by the migration's own allow options.
 */
#ifndef FL_AGENT_LINTCHECK_H
#define FL_AGENT_LINTCHECK_H

#include <jansson.h>

#include "common/error.h"
#include "lint/facts.h"
#include "proto/migration.h"

/*
 * Lints m->up at pg_version.  Appends every finding to report (a JSON
 * array) when not NULL.  Returns FL_EINVAL naming the first error-level
 * finding (file:line:col, rule, message) unless allow_errors is set.
 */
int fl__lint_gate(const fl_migration_t *m, const fl_stmt_list_t *stmts,
                  int pg_version, int allow_errors, json_t *report,
                  fl_error_t *err) FL_NODISCARD;

#endif
