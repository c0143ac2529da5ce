/*
 * lintout.c - `flotilla lint` reports (see lintout.h).
 *
 * JSON and SARIF findings are written straight to the stream, strings
 * through s_jstr(): building a jansson tree of every finding and dumping
 * it was a fifth of a JSON run on a large tree (issue 13), jansson's
 * per-character dump most of that.  The rule table of a SARIF log is still
 * packed with jansson; the tests parse every format's output back with it.
 */
#include "cli/lintout.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/str.h"

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

/*
 * The caret line under excerpt (already escaped for a terminal) at
 * column, counted in characters of the escaped text; tabs are copied so
 * the caret lines up in any tab width.
 */
static void
s_caret_line(FILE *out, const char *excerpt, int column)
{
    int col = 1;
    const char *p;

    fputs("      | ", out);
    for (p = excerpt; *p && col < column; p++) {
        if (((unsigned char)*p & 0xC0) == 0x80)
            continue;
        fputc(*p == '\t' ? '\t' : ' ', out);
        col++;
    }
    fputs("^\n", out);
}

/* The column of the flagged character once the excerpt is escaped: the
 * characters of the escaped text before it, plus one. */
static int
s_escaped_column(const char *excerpt, int column)
{
    const char *p = excerpt;
    int col = 1, n = 1;
    char *prefix, *shown;

    while (*p && col < column) {
        p++;
        while (((unsigned char)*p & 0xC0) == 0x80)
            p++;
        col++;
    }
    prefix = fl_strndup(excerpt, (size_t)(p - excerpt));
    shown = fl_str_escape_controls(prefix, FL_STR_MULTILINE);
    for (p = shown; *p; p++)
        n += ((unsigned char)*p & 0xC0) != 0x80;
    free(shown);
    free(prefix);
    return n;
}

/*
 * Everything a finding says comes from the linted files (names, SQL,
 * identifiers), so it goes through fl_str_escape_controls() before it
 * reaches a terminal.
 */
void
fl_lintout_human(FILE *out, const fl_finding_list_t *list,
                 const fl_lintout_summary_t *sum)
{
    size_t i;

    for (i = 0; i < list->count; i++) {
        const fl_finding_t *f = &list->items[i];
        char *file = fl_str_escape_controls(f->file, 0);
        char *msg = fl_str_escape_controls(f->message, 0);

        fprintf(out, "%s:%d:%d: %s %s: %s%s\n", file, f->line, f->column,
                fl_lint_severity_name(f->severity), f->rule, msg,
                f->not_enforced ? " (an error from lint.enforce_from on)"
                                : "");
        if (f->excerpt && *f->excerpt) {
            char *ex = fl_str_escape_controls(f->excerpt, FL_STR_MULTILINE);
            fprintf(out, "%5d | %s\n", f->line, ex);
            s_caret_line(out, ex, s_escaped_column(f->excerpt, f->excerpt_column));
            free(ex);
        }
        fprintf(out, "  help: %s\n", f->help);
        if (f->fix) {
            char *fix = fl_str_escape_controls(f->fix, FL_STR_MULTILINE);
            const char *p = fix;
            fputs("  fix:\n", out);
            while (*p) {
                size_t n = strcspn(p, "\n");
                fprintf(out, "    %.*s\n", (int)n, p);
                p += n + (p[n] == '\n');
            }
            free(fix);
        }
        free(msg);
        free(file);
    }
    fprintf(out, "%zu error(s), %zu warning(s) in %zu file(s)",
            fl_finding_list_count(list, FL_LINT_ERROR),
            fl_finding_list_count(list, FL_LINT_WARNING), sum->files);
    if (sum->skipped)
        fprintf(out, "; %zu file(s) skipped", sum->skipped);
    if (sum->not_enforced) {
        char *gate = fl_str_escape_controls(sum->gate, 0);
        fprintf(out, "; %zu error(s) before lint.enforce_from %s reported as "
                     "warnings", sum->not_enforced, gate);
        free(gate);
    }
    fputc('\n', out);
}

/* ---- JSON ---- */

/*
 * A JSON string (RFC 8259 section 7): quote, backslash and control
 * characters escaped, valid UTF-8 as it is, and each byte that is not
 * UTF-8 (a file in another encoding) written as the text \xHH, as
 * fl_json_text() does, so the output stays valid JSON.
 */
static void
s_jstr(FILE *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;

    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            size_t n = fl_str_utf8_decode((const unsigned char *)s,
                                          strnlen(s, 4), NULL);
            if (n > 0) {
                s += n - 1;
                continue;
            }
            fwrite(run, 1, (size_t)(s - run), out);
            run = s + 1;
            fputs("\\\\x", out);
            fputc(hex[c >> 4], out);
            fputc(hex[c & 15], out);
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        fwrite(run, 1, (size_t)(s - run), out);
        run = s + 1;
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            fputs("\\u00", out);
            fputc(hex[c >> 4], out);
            fputc(hex[c & 15], out);
            break;
        }
    }
    fwrite(run, 1, (size_t)(s - run), out);
    fputc('"', out);
}

/* Writes o compactly and drops it. */
static void
s_put(FILE *out, json_t *o)
{
    if (o)
        (void)json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                     JSON_ENCODE_ANY); /* errors: ferror(out) */
    json_decref(o);
}

/* ,"key":"value" */
static void
s_jfield(FILE *out, const char *key, const char *value)
{
    fprintf(out, ",\"%s\":", key);
    s_jstr(out, value);
}

void
fl_lintout_json(FILE *out, const fl_finding_list_t *list,
                const fl_lintout_summary_t *sum)
{
    size_t i;

    fputs("{\"findings\": [", out);
    for (i = 0; i < list->count; i++) {
        const fl_finding_t *f = &list->items[i];
        fputs(i ? ",\n  {\"file\":" : "\n  {\"file\":", out);
        s_jstr(out, f->file);
        fprintf(out, ",\"line\":%d,\"column\":%d,\"end_line\":%d,"
                     "\"end_column\":%d,\"severity\":\"%s\",\"rule\":\"%s\"",
                f->line, f->column, f->end_line, f->end_column,
                fl_lint_severity_name(f->severity), f->rule);
        s_jfield(out, "message", f->message);
        s_jfield(out, "help", f->help);
        s_jfield(out, "excerpt", f->excerpt ? f->excerpt : "");
        fprintf(out, ",\"fingerprint\":\"%s\"", f->fingerprint);
        if (f->fix)
            s_jfield(out, "fix", f->fix);
        if (f->not_enforced)
            fputs(",\"not_enforced\":true", out);
        fputc('}', out);
    }
    fprintf(out, "%s],\n \"errors\": %zu, \"warnings\": %zu, \"files\": %zu, "
                 "\"skipped\": %zu, \"not_enforced\": %zu",
            list->count ? "\n " : "", fl_finding_list_count(list, FL_LINT_ERROR),
            fl_finding_list_count(list, FL_LINT_WARNING), sum->files,
            sum->skipped, sum->not_enforced);
    if (sum->gate) {
        fputs(", \"enforce_from\": ", out);
        s_jstr(out, sum->gate);
    }
    fputs("}\n", out);
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
        s_put(out, fl_json_pack("{s:s, s:{s:s}, s:{s:s}, s:{s:s}}", "id",
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
        fprintf(out, "%s{\"ruleId\":\"%s\",\"ruleIndex\":%td,\"level\":\"%s\","
                     "\"message\":{\"text\":",
                i ? ",\n    " : "\n    ", f->rule, r - table,
                fl_lint_severity_name(f->severity));
        s_jstr(out, f->message);
        fputs("},\"locations\":[{\"physicalLocation\":{\"artifactLocation\":"
              "{\"uri\":", out);
        s_jstr(out, uri);
        fprintf(out, "},\"region\":{\"startLine\":%d,\"startColumn\":%d,"
                     "\"endLine\":%d,\"endColumn\":%d}}}],"
                     "\"partialFingerprints\":{\"flotilla/v1\":\"%s\"}",
                f->line, f->column, f->end_line, f->end_column, f->fingerprint);
        if (f->fix) {
            fputs(",\"properties\":{\"fix\":", out);
            s_jstr(out, f->fix);
            fputc('}', out);
        }
        fputc('}', out);
        free(uri);
    }
    fputs("]\n }]\n}\n", out);
}
