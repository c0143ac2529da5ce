/*
 * lintout.h - the three output formats of `flotilla lint` (docs/lint.md):
 * human (compiler style, the flagged line with a caret), JSON and SARIF
 * 2.1.0.  Each writes a whole report to a stream; findings are written as
 * they are rendered, one small JSON object at a time, so a report of tens
 * of thousands of findings is never held twice in memory.
 */
#ifndef FL_CLI_LINTOUT_H
#define FL_CLI_LINTOUT_H

#include <stdio.h>

#include "lint/lint.h"

/* What the report says about the run beside the findings. */
typedef struct {
    size_t files;   /* files linted */
    size_t skipped; /* files seen and left alone (other dialects, fizz) */
    const char *gate;    /* lint.enforce_from, or NULL */
    size_t not_enforced; /* errors before the gate reported as warnings */
} fl_lintout_summary_t;

/*
 * The value of enforce_from in the lint configuration file at path (the
 * file `flotilla lint --config` reads) into out (n bytes), "" when the
 * file does not set it; apply, plan and bundle build read the gate from
 * there with --lint-config.  FL_EINVAL naming the file and key.
 */
int fl_lint_conf_enforce_from(char *out, size_t n, const char *path,
                              fl_error_t *err) FL_NODISCARD;

/*
 * "FILE:LINE:COL: SEVERITY RULE: MESSAGE", the flagged line with a caret
 * under the column, the help, the fix when there is one; then the counts.
 */
void fl_lintout_human(FILE *out, const fl_finding_list_t *list,
                      const fl_lintout_summary_t *sum);

/* {"findings": [...], "errors": N, "warnings": N, "files": N}, one
 * finding a line. */
void fl_lintout_json(FILE *out, const fl_finding_list_t *list,
                     const fl_lintout_summary_t *sum);

/* A SARIF 2.1.0 log: every rule (at its severity under opts) and the
 * results with percent-encoded URIs, regions and partialFingerprints. */
void fl_lintout_sarif(FILE *out, const fl_finding_list_t *list,
                      const fl_lint_options_t *opts);

/*
 * A path as a URI reference (new string): a relative path stays relative,
 * an absolute one becomes file:///...; every byte but letters, digits,
 * "-._~" and "/" is percent-encoded, ':' too, so "a.bundle:0001_x.sql"
 * cannot read as a scheme.
 */
char *fl_lintout_uri(const char *path);

#endif
