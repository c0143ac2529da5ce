/*
 * lintout.c - `flotilla lint` reports (see lintout.h).
 *
 * JSON and SARIF are written with jansson, one finding's object at a time
 * with JSON_COMPACT, around a hand-written frame: building one tree of
 * every finding and dumping it indented was most of the time of a JSON
 * run on large inputs (issue 13).  jansson still does every escape.
 */
#include "cli/lintout.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

char *
fl_lintout_uri(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path), i, k = 0;
    int abs = path[0] == '/';
    char *out = fl_malloc(n * 3 + 8);

    if (abs) {
        memcpy(out, "file://", 7);
        k = 7;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~' || c == '/') {
            out[k++] = (char)c;
        } else {
            out[k++] = '%';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        }
    }
    out[k] = '\0';
    return out;
}

/* ---- human ---- */

static void
s_caret_line(FILE *out, const char *excerpt, int column)
{
    int col = 1;
    const char *p;

    fputs("      | ", out);
    /* Keep the line's tabs so the caret lines up in any tab width. */
    for (p = excerpt; *p && col < column; p++) {
        if (((unsigned char)*p & 0xC0) == 0x80)
            continue;
        fputc(*p == '\t' ? '\t' : ' ', out);
        col++;
    }
    fputs("^\n", out);
}

void
fl_lintout_human(FILE *out, const fl_finding_list_t *list,
                 const fl_lintout_summary_t *sum)
{
    size_t i;

    for (i = 0; i < list->count; i++) {
        const fl_finding_t *f = &list->items[i];
        fprintf(out, "%s:%d:%d: %s %s: %s\n", f->file, f->line, f->column,
                fl_lint_severity_name(f->severity), f->rule, f->message);
        if (f->excerpt && *f->excerpt) {
            fprintf(out, "%5d | %s\n", f->line, f->excerpt);
            s_caret_line(out, f->excerpt, f->excerpt_column);
        }
        fprintf(out, "  help: %s\n", f->help);
        if (f->fix) {
            const char *p = f->fix;
            fputs("  fix:\n", out);
            while (*p) {
                size_t n = strcspn(p, "\n");
                fprintf(out, "    %.*s\n", (int)n, p);
                p += n + (p[n] == '\n');
            }
        }
    }
    fprintf(out, "%zu error(s), %zu warning(s) in %zu file(s)",
            fl_finding_list_count(list, FL_LINT_ERROR),
            fl_finding_list_count(list, FL_LINT_WARNING), sum->files);
    if (sum->skipped)
        fprintf(out, "; %zu file(s) skipped", sum->skipped);
    fputc('\n', out);
}

/* ---- JSON ---- */

/* Writes o compactly and drops it. */
static void
s_put(FILE *out, json_t *o)
{
    if (o)
        (void)json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                     JSON_ENCODE_ANY);
    json_decref(o);
}

void
fl_lintout_json(FILE *out, const fl_finding_list_t *list,
                const fl_lintout_summary_t *sum)
{
    size_t i;

    fputs("{\"findings\": [", out);
    for (i = 0; i < list->count; i++) {
        const fl_finding_t *f = &list->items[i];
        json_t *o = json_pack(
            "{s:s, s:i, s:i, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s*}",
            "file", f->file, "line", f->line, "column", f->column,
            "end_line", f->end_line, "end_column", f->end_column,
            "severity", fl_lint_severity_name(f->severity), "rule", f->rule,
            "message", f->message, "help", f->help, "excerpt",
            f->excerpt ? f->excerpt : "", "fingerprint", f->fingerprint,
            "fix", f->fix);
        fputs(i ? ",\n  " : "\n  ", out);
        s_put(out, o);
    }
    fprintf(out, "%s],\n \"errors\": %zu, \"warnings\": %zu, \"files\": %zu, "
                 "\"skipped\": %zu}\n",
            list->count ? "\n " : "", fl_finding_list_count(list, FL_LINT_ERROR),
            fl_finding_list_count(list, FL_LINT_WARNING), sum->files,
            sum->skipped);
}

/* ---- SARIF ---- */

void
fl_lintout_sarif(FILE *out, const fl_finding_list_t *list,
                 const fl_lint_options_t *opts)
{
    size_t i, nrules;
    const fl_lint_rule_t *table = fl_lint_rules(&nrules);

    fputs("{\"$schema\": \"https://json.schemastore.org/sarif-2.1.0.json\",\n"
          " \"version\": \"2.1.0\",\n \"runs\": [{\n  \"tool\": {\"driver\": ",
          out);
    fprintf(out, "{\"name\": \"flotilla\", \"version\": \"%s\", "
                 "\"informationUri\": \"https://github.com/flotilla/flotilla\","
                 "\n   \"rules\": [", FLOTILLA_VERSION);
    for (i = 0; i < nrules; i++) {
        fl_lint_severity sev = fl_lint_options_severity(opts, &table[i]);
        fputs(i ? ",\n    " : "\n    ", out);
        s_put(out, json_pack("{s:s, s:{s:s}, s:{s:s}, s:{s:s}}", "id",
                             table[i].id, "shortDescription", "text",
                             table[i].id, "help", "text", table[i].help,
                             "defaultConfiguration", "level",
                             sev == FL_LINT_OFF ? "none"
                                                : fl_lint_severity_name(sev)));
    }
    fputs("]}},\n  \"columnKind\": \"unicodeCodePoints\",\n  \"results\": [",
          out);
    for (i = 0; i < list->count; i++) {
        const fl_finding_t *f = &list->items[i];
        const fl_lint_rule_t *r = fl_lint_rule_find(f->rule);
        char *uri = fl_lintout_uri(f->file);
        json_t *res = json_pack(
            "{s:s, s:I, s:s, s:{s:s}, s:[{s:{s:{s:s}, s:{s:i, s:i, s:i, s:i}}}],"
            " s:{s:s}}",
            "ruleId", f->rule, "ruleIndex", (json_int_t)(r - table), "level",
            fl_lint_severity_name(f->severity), "message", "text", f->message,
            "locations", "physicalLocation", "artifactLocation", "uri", uri,
            "region", "startLine", f->line, "startColumn", f->column,
            "endLine", f->end_line, "endColumn", f->end_column,
            "partialFingerprints", "flotilla/v1", f->fingerprint);
        if (res && f->fix)
            (void)json_object_set_new(res, "properties",
                                      json_pack("{s:s}", "fix", f->fix));
        fputs(i ? ",\n    " : "\n    ", out);
        s_put(out, res);
        free(uri);
    }
    fputs("]\n }]\n}\n", out);
}
