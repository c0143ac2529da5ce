/*
 * lintcheck.h - the lint gate of the validate step: runs the lint rules
 * on a migration's up section and refuses it when a finding at error
 * level is not allowed by the migration's own allow options.
 */
#ifndef FL_AGENT_LINTCHECK_H
#define FL_AGENT_LINTCHECK_H

#include "common/error.h"
#include "lint/lint.h"
#include "proto/migration.h"

/*
 * Lints a migration as the pipeline runs it and appends the findings to
 * out: up inside one transaction unless no-transaction, lock_timeout
 * counted as set (the pipeline always sets one), the migration's allow
 * options as file-level suppressions, and the migration-level checks on
 * down.  file is the name findings carry (NULL: m->file).  opts may be
 * NULL (defaults at PostgreSQL 15).
 */
int fl_lintcheck_migration(fl_finding_list_t *out, const fl_migration_t *m,
                           const char *file, const fl_lint_options_t *opts,
                           fl_error_t *err) FL_NODISCARD;

/*
 * Lints m's up and down sections at pg_version.  Returns FL_EINVAL naming
 * the first error-level finding (file:line:col, rule, message) unless
 * allow_errors is set.  Fills *out (when not NULL and the lint ran;
 * released by the caller) with every finding, those allow_errors let
 * through among them.
 */
int fl__lint_gate(const fl_migration_t *m, int pg_version, int allow_errors,
                  fl_finding_list_t *out, fl_error_t *err) FL_NODISCARD;

/*
 * The lint gate that starts at a version (lint.enforce_from): lint errors
 * of migrations before it are history that already ran, reported as
 * warnings (still shown, and counted) that refuse nothing.  Turns every
 * error-level finding of l from index from on into a warning marked
 * not_enforced; returns how many.
 */
size_t fl_lintcheck_demote(fl_finding_list_t *l, size_t from);

#endif
