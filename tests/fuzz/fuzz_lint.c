/*
 * fuzz_lint.c - libFuzzer harness for the statement facts and the lint
 * rules on arbitrary text: whatever the input, analysis and linting end
 * without a crash, a leak or a finding outside the input, every
 * statement's position lies inside it, and every finding ends after it
 * starts, under every transaction mode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lint/facts.h"
#include "lint/lint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sql = NULL;
    fl_stmt_list_t stmts = {NULL, 0};
    fl_finding_list_t findings = {NULL, 0};
    fl_lint_options_t opts;

    if (size > 64 * 1024 || memchr(data, '\0', size) != NULL)
        return 0; /* the CLI refuses NUL bytes; keep runs short */
    sql = fl_strndup((const char *)data, size);
    if (fl_facts_analyze(&stmts, sql, 0, 150000, NULL) == 0) {
        for (size_t i = 0; i < stmts.count; i++)
            if (stmts.items[i].offset > size ||
                stmts.items[i].length > size - stmts.items[i].offset ||
                stmts.items[i].line < 1 || stmts.items[i].column < 1)
                abort();
    }
    fl_stmt_list_release(&stmts);
    fl_lint_options_init(&opts);
    /* Every way a runner sends a file; the first byte picks one. */
    opts.assume_in_transaction = size ? data[0] % 4 : FL_LINT_TX_NONE;
    if (fl_lint_sql(&findings, sql, "fuzz.sql", 0, &opts, NULL) == 0) {
        for (size_t i = 0; i < findings.count; i++) {
            const fl_finding_t *f = &findings.items[i];
            if (f->rule == NULL || f->line < 1 || f->column < 1 ||
                f->end_line < f->line ||
                (f->end_line == f->line && f->end_column < f->column) ||
                f->excerpt_column < 1 || strlen(f->fingerprint) != 16)
                abort();
        }
    }
    fl_finding_list_release(&findings);
    free(sql);
    return 0;
}
