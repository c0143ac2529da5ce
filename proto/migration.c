/*
 * migration.c - parsing NNNN_name.sql migration files (see migration.h and
 * docs/migrations.md).
 *
 * A file is read line by line.  A marker line is "--", optional blanks,
 * "flotilla:" and a section name; the text of a section runs from the line
 * after its marker to the line before the next marker, byte for byte, so
 * that the agent can map statement positions back to file lines.  Option
 * lines must come before the first section: inside a section they would
 * split its text.
 */
#include "proto/migration.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/hash.h"
#include "common/parse.h"
#include "common/str.h"
#include "proto/proto_internal.h"

/* Largest migration file accepted: far above any hand-written migration. */
#define S_MAX_FILE ((size_t)16 * 1024 * 1024)

static const char s_options_hint[] =
    "Options are no-transaction, lock_timeout=DURATION, "
    "statement_timeout=DURATION and allow=RULE REASON.";

/* Sets err to "REASON in file "FILE" line LINE" with FL_EINVAL. */
static int
s_fail(fl_error_t *err, const char *file, int line, const char *fmt, ...)
    FL_PRINTF(4, 5);

int
fl_migration_error_line(const fl_error_t *err)
{
    const char *p = err && err->message ? err->message : NULL, *at = NULL;

    /* s_fail's "... in file \"NAME\" line N", the last such. */
    while (p != NULL && (p = strstr(p, "\" line ")) != NULL)
        at = p++;
    return at ? (int)strtol(at + strlen("\" line "), NULL, 10) : 0;
}

static int
s_fail(fl_error_t *err, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    char *reason = NULL;

    va_start(ap, fmt);
    reason = fl_vasprintf(fmt, ap);
    va_end(ap);
    FL_ERR(err, FL_EINVAL, "%s in file \"%s\" line %d", reason, file, line);
    free(reason);
    return FL_EINVAL;
}

/*
 * Splits "NNNN_name.sql" into a version (digits, or numbers separated by
 * dots as Flyway's 1.2; at most FL_VERSION_MAX characters; 0 too, as
 * diesel's 00000000000000 imported) and a name of letters, digits, '_'
 * and '-'.
 */
static int
s_parse_file_name(const char *file, fl_version_t *version, char **name,
                  fl_error_t *err)
{
    size_t len = strlen(file);
    size_t i = 0;
    fl_version_t v = FL_VERSION_INIT;
    const char *why = NULL;

    while (i < len && ((file[i] >= '0' && file[i] <= '9') || file[i] == '.'))
        i++;
    if (i == 0 || i >= len || file[i] != '_' || file[0] == '.') {
        why = "it does not start with a version number and '_'";
        goto bad;
    }
    if (i > FL_VERSION_MAX) {
        why = "the version is longer than 64 characters";
        goto bad;
    }
    if (fl_version_parse(&v, file, i, NULL) != 0) {
        why = "its version is not numbers separated by single dots";
        goto bad;
    }
    if (len < i + 6 || strcmp(file + len - 4, ".sql") != 0) {
        why = "it has no name between '_' and \".sql\"";
        goto bad;
    }
    for (size_t k = i + 1; k < len - 4; k++) {
        char c = file[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            why = "the name may hold only letters, digits, '_' and '-'";
            goto bad;
        }
    }
    *version = v;
    *name = fl_strndup(file + i + 1, len - 4 - (i + 1));
    return 0;
bad:
    FL_ERR(err, FL_EINVAL, "invalid migration file name \"%s\"", file);
    fl_error_set_detail(err, "The name is refused because %s.", why);
    fl_error_set_hint(err, "Name migration files NNNN_name.sql, for example "
                           "0001_create_users.sql.");
    return FL_EINVAL;
}

static int
s_check_utf8(const char *file, const char *text, size_t len, fl_error_t *err)
{
    const unsigned char *p = (const unsigned char *)text;
    int line = 1;

    for (size_t i = 0; i < len;) {
        /* NUL is valid UTF-8 but has no place in a text file. */
        size_t n = p[i] == 0 ? 0 : fl_str_utf8_decode(p + i, len - i, NULL);

        if (n == 0) {
            s_fail(err, file, line, "invalid UTF-8 byte 0x%02x", p[i]);
            fl_error_set_hint(err, "Migration files must be UTF-8 text "
                                   "without NUL bytes.");
            return FL_EINVAL;
        }
        if (p[i] == '\n')
            line++;
        i += n;
    }
    return 0;
}

static int
s_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int
s_all_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s_is_blank(p[i]) && p[i] != '\n')
            return 0;
    return 1;
}

static int
s_parse_timeout(int64_t *out, const char *opt, const char *value,
                const char *file, int line, fl_error_t *err)
{
    fl_error_t perr = FL_ERROR_INIT;

    if (*out != -1)
        return s_fail(err, file, line, "option \"%s\" is given twice", opt);
    if (fl_parse_duration(out, value, &perr) != 0) {
        s_fail(err, file, line, "invalid value for option \"%s\"", opt);
        fl_error_set_detail(err, "%s", perr.message);
        fl_error_set_hint(err, "Write a duration such as 500ms, 2s or 5min.");
        fl_error_clear(&perr);
        return FL_EINVAL;
    }
    /* Else PostgreSQL refuses it at apply, after the migrations before. */
    if (*out > FL_MIGRATION_MAX_TIMEOUT_MS) {
        s_fail(err, file, line, "option \"%s\" is more than PostgreSQL's "
               "limit of %d ms (about 24.8 days)", opt,
               FL_MIGRATION_MAX_TIMEOUT_MS);
        fl_error_set_hint(err, "Give a shorter duration, or 0 for none.");
        return FL_EINVAL;
    }
    return 0;
}

/* Whether the n bytes at w are an option with its value ("key=..."). */
static int
s_option_word(const char *w, size_t n)
{
    static const char *const keys[] = {"lock_timeout=", "statement_timeout=",
                                       "allow="};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (n > strlen(keys[i]) && strncmp(w, keys[i], strlen(keys[i])) == 0)
            return 1;
    return 0;
}

static int
s_parse_allow(fl_migration_t *m, char *tok, char *rest, const char *file,
              int line, fl_error_t *err)
{
    const char *rule = tok + strlen("allow=");
    size_t rlen = strlen(rest);

    if (*rule == '\0')
        return s_fail(err, file, line, "option \"allow\" names no rule");
    while (rlen > 0 && s_is_blank(rest[rlen - 1]))
        rest[--rlen] = '\0';
    if (rlen == 0) {
        s_fail(err, file, line, "option \"allow=%s\" has no reason", rule);
        fl_error_set_hint(err, "Write why the rule may be broken after it: "
                               "allow=%s REASON.", rule);
        return FL_EINVAL;
    }
    /* An allow ends its line: an option written after it would be read
     * as its reason, and lost without a word (found by an audit). */
    for (const char *w = rest; *w;) {
        size_t n = 0;

        while (*w && s_is_blank(*w))
            w++;
        while (w[n] && !s_is_blank(w[n]))
            n++;
        if (s_option_word(w, n)) {
            s_fail(err, file, line, "the reason of option \"allow=%s\" holds "
                   "\"%.*s\", another option", rule, (int)n, w);
            fl_error_set_hint(err, "An allow ends its line: put the other "
                                   "option before it, or on a -- "
                                   "flotilla:options line of its own.");
            return FL_EINVAL;
        }
        w += n;
    }
    m->allows = fl_reallocarray(m->allows, m->nallows + 1, sizeof(*m->allows));
    m->allows[m->nallows].rule = fl_strdup(rule);
    m->allows[m->nallows].reason = fl_strdup(rest);
    m->nallows++;
    return 0;
}

/* Parses the options on one "-- flotilla:options" line (rest is writable). */
static int
s_parse_options(fl_migration_t *m, char *rest, const char *file, int line,
                fl_error_t *err)
{
    char *p = rest;

    for (;;) {
        char *tok;

        while (*p && s_is_blank(*p))
            p++;
        if (*p == '\0')
            return 0;
        tok = p;
        while (*p && !s_is_blank(*p))
            p++;
        if (*p)
            *p++ = '\0';
        if (strcmp(tok, "no-transaction") == 0) {
            if (m->no_transaction)
                return s_fail(err, file, line, "option \"no-transaction\" "
                                               "is given twice");
            m->no_transaction = 1;
        } else if (strncmp(tok, "lock_timeout=", 13) == 0) {
            if (s_parse_timeout(&m->lock_timeout_ms, "lock_timeout", tok + 13,
                                file, line, err) != 0)
                return FL_EINVAL;
        } else if (strncmp(tok, "statement_timeout=", 18) == 0) {
            if (s_parse_timeout(&m->statement_timeout_ms, "statement_timeout",
                                tok + 18, file, line, err) != 0)
                return FL_EINVAL;
        } else if (strncmp(tok, "allow=", 6) == 0) {
            /* The reason is the rest of the line. */
            return s_parse_allow(m, tok, p, file, line, err);
        } else {
            s_fail(err, file, line, "unknown option \"%s\"", tok);
            fl_error_set_hint(err, "%s", s_options_hint);
            return FL_EINVAL;
        }
    }
}

enum { S_NONE = -1, S_UP, S_DOWN, S_VALIDATE, S_VERIFY, S_NSECTIONS };

static const char *const s_section_names[S_NSECTIONS] = {"up", "down",
                                                         "validate", "verify"};

static char **
s_section_text(fl_migration_t *m, int s)
{
    char **texts[S_NSECTIONS] = {&m->up, &m->down, &m->validate, &m->verify};
    return texts[s];
}

static int *
s_section_line(fl_migration_t *m, int s)
{
    int *lines[S_NSECTIONS] = {&m->up_line, &m->down_line, &m->validate_line,
                               &m->verify_line};
    return lines[s];
}

/*
 * If the line [p, p+n) is a marker, returns 1 and points *name (length
 * *namelen) at the section name and *rest at what follows it.
 */
static int
s_marker(const char *p, size_t n, const char **name, size_t *namelen,
         const char **rest, size_t *restlen)
{
    size_t i = 0;
    size_t start;

    while (i < n && s_is_blank(p[i]))
        i++;
    if (n - i < 2 || p[i] != '-' || p[i + 1] != '-')
        return 0;
    i += 2;
    while (i < n && s_is_blank(p[i]))
        i++;
    if (n - i < 9 || memcmp(p + i, "flotilla:", 9) != 0)
        return 0;
    i += 9;
    start = i;
    while (i < n && !s_is_blank(p[i]))
        i++;
    *name = p + start;
    *namelen = i - start;
    *rest = p + i;
    *restlen = n - i;
    return 1;
}

int
fl_migration_text_is_blank(const char *text)
{
    return s_all_blank(text, strlen(text));
}

int
fl_migration_marker_line(const char *line, size_t n)
{
    const char *name = NULL, *rest = NULL;
    size_t namelen = 0, restlen = 0;

    return s_marker(line, n, &name, &namelen, &rest, &restlen);
}

/* Ends section cur (if any) at byte end of the text. */
static int
s_close_section(fl_migration_t *m, int cur, int marker_line, const char *text,
                size_t start, size_t end, const char *file, fl_error_t *err)
{
    if (cur == S_NONE)
        return 0;
    if (s_all_blank(text + start, end - start)) {
        s_fail(err, file, marker_line, "section \"%s\" is empty",
               s_section_names[cur]);
        fl_error_set_hint(err, "Put SQL after the marker, or remove it.");
        return FL_EINVAL;
    }
    *s_section_text(m, cur) = fl_strndup(text + start, end - start);
    return 0;
}

/* Handles one marker line; updates the current section. */
static int
s_handle_marker(fl_migration_t *m, int *cur, int *cur_marker,
                size_t *cur_start, const char *name, size_t namelen,
                const char *rest, size_t restlen, const char *text,
                size_t line_start, size_t next, int line, const char *file,
                fl_error_t *err)
{
    int s;
    int rc = 0;

    if (namelen == 7 && memcmp(name, "options", 7) == 0) {
        char *opts = NULL;

        if (*cur != S_NONE)
            return s_fail(err, file, line, "options must come before the "
                                           "first section");
        opts = fl_strndup(rest, restlen);
        rc = s_parse_options(m, opts, file, line, err);
        free(opts);
        return rc;
    }
    for (s = 0; s < S_NSECTIONS; s++)
        if (strlen(s_section_names[s]) == namelen &&
            memcmp(s_section_names[s], name, namelen) == 0)
            break;
    if (s == S_NSECTIONS) {
        s_fail(err, file, line, "unknown section \"%.*s\"", (int)namelen, name);
        fl_error_set_hint(err, "Sections are up, down, validate and verify; "
                               "options go on a line \"-- flotilla:options\".");
        return FL_EINVAL;
    }
    if (!s_all_blank(rest, restlen))
        return s_fail(err, file, line, "unexpected text after section "
                                       "marker \"%s\"", s_section_names[s]);
    if (*s_section_line(m, s) != 0)
        return s_fail(err, file, line, "section \"%s\" appears twice "
                                       "(first at line %d)",
                      s_section_names[s], *s_section_line(m, s) - 1);
    if (s_close_section(m, *cur, *cur_marker, text, *cur_start, line_start,
                        file, err) != 0)
        return FL_EINVAL;
    *cur = s;
    *cur_marker = line;
    *cur_start = next;
    *s_section_line(m, s) = line + 1;
    return 0;
}

static int
s_parse_lines(fl_migration_t *m, const char *file, const char *text,
              size_t len, fl_error_t *err)
{
    int cur = S_NONE;
    int cur_marker = 0;
    size_t cur_start = 0;
    size_t pos = 0;
    int line = 1;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t next = nl ? end + 1 : len;
        const char *name = NULL;
        const char *rest = NULL;
        size_t namelen = 0;
        size_t restlen = 0;

        if (s_marker(text + pos, end - pos, &name, &namelen, &rest,
                     &restlen)) {
            if (s_handle_marker(m, &cur, &cur_marker, &cur_start, name,
                                namelen, rest, restlen, text, pos, next,
                                line, file, err) != 0)
                return FL_EINVAL;
        } else if (cur == S_NONE && !s_all_blank(text + pos, end - pos)) {
            size_t i = pos;

            while (i < end && s_is_blank(text[i]))
                i++;
            if (end - i < 2 || text[i] != '-' || text[i + 1] != '-') {
                s_fail(err, file, line, "SQL text before the first section "
                                        "marker");
                fl_error_set_hint(err, "Put a line \"-- flotilla:up\" before "
                                       "the SQL that applies the migration.");
                return FL_EINVAL;
            }
        }
        pos = next;
        line++;
    }
    if (s_close_section(m, cur, cur_marker, text, cur_start, len, file,
                        err) != 0)
        return FL_EINVAL;
    if (m->up == NULL) {
        s_fail(err, file, line > 1 ? line - 1 : 1, "no \"up\" section");
        fl_error_set_detail(err, "The file ends without a line "
                                 "\"-- flotilla:up\".");
        fl_error_set_hint(err, "Every migration needs an up section.");
        return FL_EINVAL;
    }
    return 0;
}

/* An empty migration: no timeouts of its own. */
static void
s_init(fl_migration_t *out)
{
    memset(out, 0, sizeof(*out));
    out->lock_timeout_ms = -1;
    out->statement_timeout_ms = -1;
}

/* The file's name and its sections, once its name was read. */
static int
s_parse_text(fl_migration_t *out, const char *file_name, const char *text,
             size_t len, fl_error_t *err)
{
    int rc;

    out->file = fl_strdup(file_name);
    if ((rc = s_check_utf8(file_name, text, len, err)) != 0)
        return rc;
    return s_parse_lines(out, file_name, text, len, err);
}

int
fl_migration_parse(fl_migration_t *out, const char *file_name,
                   const char *text, size_t len, fl_error_t *err)
{
    int rc = 0;

    s_init(out);
    if ((rc = s_parse_file_name(file_name, &out->version, &out->name, err)) ||
        (rc = s_parse_text(out, file_name, text, len, err)) != 0)
        goto cleanup;
    fl_migration_compute_checksum(out);
cleanup:
    if (rc != 0)
        fl_migration_release(out);
    return rc;
}

int
fl_migration_is_repeatable_name(const char *file_name)
{
    size_t n = strlen(file_name);

    return n > 7 && strncmp(file_name, "R__", 3) == 0 &&
           strcmp(file_name + n - 4, ".sql") == 0;
}

/* "R__name.sql": the name, letters, digits, '_' and '-' (new string). */
static int
s_parse_repeatable_name(const char *file, char **name, fl_error_t *err)
{
    size_t len = strlen(file);

    if (!fl_migration_is_repeatable_name(file)) {
        FL_ERR(err, FL_EINVAL, "invalid repeatable migration file name "
               "\"%s\"", file);
        fl_error_set_hint(err, "Name repeatable migrations R__name.sql, for "
                               "example R__views.sql.");
        return FL_EINVAL;
    }
    for (size_t k = 3; k < len - 4; k++) {
        char c = file[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            FL_ERR(err, FL_EINVAL, "invalid repeatable migration file name "
                   "\"%s\"", file);
            fl_error_set_detail(err, "The name may hold only letters, "
                                     "digits, '_' and '-'.");
            return FL_EINVAL;
        }
    }
    *name = fl_strndup(file + 3, len - 7);
    return 0;
}

int
fl_migration_parse_repeatable(fl_migration_t *out, const char *file_name,
                              const char *text, size_t len, fl_error_t *err)
{
    int rc = 0;

    s_init(out);
    out->repeatable = 1;
    if ((rc = s_parse_repeatable_name(file_name, &out->name, err)) != 0 ||
        (rc = s_parse_text(out, file_name, text, len, err)) != 0)
        goto cleanup;
    if (out->down != NULL) {
        rc = s_fail(err, file_name, out->down_line - 1, "a repeatable "
                    "migration has no down section");
        fl_error_set_detail(err, "Repeatable migrations are never rolled "
                                 "back: each run re-creates what it "
                                 "defines.");
        fl_error_set_hint(err, "Remove the down section; write the file so "
                               "that it can run again (CREATE OR REPLACE, "
                               "DROP ... IF EXISTS).");
        goto cleanup;
    }
    out->repeatable = 1;
    fl_migration_compute_checksum(out);
cleanup:
    if (rc != 0)
        fl_migration_release(out);
    return rc;
}

int
fl_migration_repeatable_cmp(const void *a, const void *b)
{
    const unsigned char *x = (const unsigned char *)((const fl_migration_t *)a)->name;
    const unsigned char *y = (const unsigned char *)((const fl_migration_t *)b)->name;

    /* Flyway: description.compareTo(), its description the name with
     * '_' as ' '. */
    for (;; x++, y++) {
        unsigned cx = *x == '_' ? ' ' : *x, cy = *y == '_' ? ' ' : *y;
        if (cx != cy || cx == 0)
            return (cx > cy) - (cx < cy);
    }
}

/*
 * Whether file is named as flotilla names its files: digits, '_', a name
 * without dots, ".sql" (golang-migrate's 1_a.up.sql and pop's files have
 * dots in the name: another tool's).
 */
static int
s_flotilla_name(const char *file)
{
    size_t digits = strspn(file, "0123456789."), n = strlen(file);

    return digits > 0 && file[digits] == '_' && n > 4 &&
           strcmp(file + n - 4, ".sql") == 0 &&
           memchr(file + digits, '.', n - 4 - digits) == NULL;
}

/* A label a tool gave its migration: short, printable, no path tricks. */
static int
s_safe_label(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 255 || strstr(s, "..") != NULL || strchr(s, '/'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int
s_check_other_tool(const fl_migration_t *m, fl_error_t *err)
{
    if (!fl_version_is_set(&m->version) || !s_safe_label(m->file) ||
        !s_safe_label(m->name)) {
        FL_ERR(err, FL_EINVAL, "migration %s has an invalid file name or "
               "name", m->version.text);
        fl_error_set_detail(err, "Another tool's migration is named by at "
                                 "most 255 bytes without control "
                                 "characters, '/' or \"..\".");
        return FL_EINVAL;
    }
    return 0;
}

/*
 * A repeatable migration from a bundle: no version, no down, an up, a
 * name and file name that are safe labels (its name is its key in the
 * ledger; R__name.sql or another tool's file name), every text valid
 * UTF-8.
 */
static int
s_check_repeatable(const fl_migration_t *m, fl_error_t *err)
{
    const char *const texts[] = {m->up, m->validate, m->verify, m->note};
    int rc = 0;

    if (m->nparts > 0)
        return FL_ERR(err, FL_EINVAL, "repeatable migration \"%s\" has "
                      "parts", m->file ? m->file : "");
    if (m->file == NULL || m->name == NULL || !s_safe_label(m->file) ||
        !s_safe_label(m->name)) {
        FL_ERR(err, FL_EINVAL, "a repeatable migration has an invalid file "
               "name or name");
        fl_error_set_detail(err, "It is named by at most 255 bytes without "
                                 "control characters, '/' or \"..\".");
        return FL_EINVAL;
    }
    if (fl_version_is_set(&m->version) || m->down != NULL || m->up == NULL)
        return FL_ERR(err, FL_EINVAL, "repeatable migration \"%s\" has %s",
                      m->file, m->down ? "a down section"
                               : m->up ? "a version" : "no up section");
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i] && (rc = s_check_utf8(m->file, texts[i],
                                           strlen(texts[i]), err)) != 0)
            return rc;
    for (size_t i = 0; i < m->nallows; i++)
        if ((rc = s_check_utf8(m->file, m->allows[i].reason,
                               strlen(m->allows[i].reason), err)) != 0)
            return rc;
    return 0;
}

/*
 * A migration's parts (another tool's files grouped into it): versions,
 * strictly increasing, the last one the migration's own.
 */
static int
s_check_parts(const fl_migration_t *m, fl_error_t *err)
{
    if (m->nparts == 0)
        return 0;
    if (m->nparts > FL_MIGRATION_MAX_PARTS)
        return FL_ERR(err, FL_EINVAL, "migration %s is a group of %zu files "
                      "(at most %d)", m->version.text, m->nparts,
                      FL_MIGRATION_MAX_PARTS);
    for (size_t i = 0; i < m->nparts; i++) {
        const char *v = m->parts[i];

        if (v == NULL || !fl_version_is_canonical(v) ||
            (i > 0 && fl_version_cmp_text(m->parts[i - 1], v) >= 0) ||
            (i + 1 == m->nparts && strcmp(v, m->version.text) != 0)) {
            FL_ERR(err, FL_EINVAL, "migration %s has an invalid part %zu "
                   "\"%s\"", m->version.text, i + 1, v ? v : "");
            fl_error_set_detail(err, "A group's parts are versions in "
                                     "increasing order, the last one the "
                                     "migration's own.");
            return FL_EINVAL;
        }
    }
    return 0;
}

/* A decoded timeout: unset (-1), or one PostgreSQL can set. */
static int
s_check_timeout(const fl_migration_t *m, const char *opt, int64_t ms,
                fl_error_t *err)
{
    if (ms >= -1 && ms <= FL_MIGRATION_MAX_TIMEOUT_MS)
        return 0;
    return FL_ERR(err, FL_EINVAL, "migration %s has a %s of %lld ms, which "
                  "PostgreSQL cannot set (0 to %d, or unset)",
                  m->file ? m->file : m->version.text, opt, (long long)ms,
                  FL_MIGRATION_MAX_TIMEOUT_MS);
}

int
fl_migration_check(const fl_migration_t *m, fl_error_t *err)
{
    const char *const texts[] = {m->name, m->file, m->up, m->down,
                                 m->validate, m->verify, m->note};
    /* Where each text is, for the error: the name may be what is bad. */
    static const char *const fields[] = {"name", "file name", "up",
                                         "down", "validate", "verify",
                                         "note"};
    char label[FL_VERSION_MAX + 32];
    char *name = NULL;
    fl_version_t version = FL_VERSION_INIT;
    int rc;

    if ((rc = s_check_timeout(m, "lock_timeout", m->lock_timeout_ms,
                              err)) != 0 ||
        (rc = s_check_timeout(m, "statement_timeout",
                              m->statement_timeout_ms, err)) != 0)
        return rc;
    if (m->repeatable)
        return s_check_repeatable(m, err);
    /* Named by its version: its file name may be the invalid text. */
    if (!fl_version_is_canonical(m->version.text))
        return FL_ERR(err, FL_EINVAL, "migration \"%s\" has an invalid "
                      "version \"%s\"", m->file ? m->file : "",
                      m->version.text);
    if ((rc = s_check_parts(m, err)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        snprintf(label, sizeof(label), "migration %s %s", m->version.text,
                 fields[i]);
        if (texts[i] && (rc = s_check_utf8(label, texts[i], strlen(texts[i]),
                                           err)) != 0)
            return rc;
    }
    snprintf(label, sizeof(label), "migration %s", m->version.text);
    for (size_t i = 0; i < m->nallows; i++)
        if ((rc = s_check_utf8(label, m->allows[i].reason,
                               strlen(m->allows[i].reason), err)) != 0)
            return rc;
    if (m->file == NULL || m->name == NULL)
        return FL_ERR(err, FL_EINVAL, "migration %s has no file name",
                      m->version.text);
    if (!s_flotilla_name(m->file))
        return s_check_other_tool(m, err);
    if ((rc = s_parse_file_name(m->file, &version, &name, err)) != 0)
        return rc;
    if (fl_version_cmp(&version, &m->version) != 0 ||
        strcmp(name, m->name) != 0) {
        rc = FL_ERR(err, FL_EINVAL, "migration %s (%s) does not match its "
                    "file name \"%s\"", m->version.text, m->name,
                    m->file);
    }
    free(name);
    return rc;
}

/*
 * The canonical encoding hashed into the checksum: a domain string, then
 * each field as a one-byte tag, an 8-byte big-endian length and the bytes.
 * Absent sections are hashed as a tag with length UINT64_MAX, so an
 * absent section differs from an empty one.  Field order is fixed here
 * and must never change: ledgers store these checksums.
 */
static void
s_hash_field(fl_hash_t *h, unsigned char tag, const void *p, uint64_t n)
{
    unsigned char hdr[9];

    hdr[0] = tag;
    for (int i = 0; i < 8; i++)
        hdr[1 + i] = (unsigned char)(n >> (56 - 8 * i));
    fl_hash_update(h, hdr, sizeof(hdr));
    if (p != NULL && n > 0 && n != UINT64_MAX)
        fl_hash_update(h, p, n);
}

static void
s_hash_str(fl_hash_t *h, unsigned char tag, const char *s)
{
    s_hash_field(h, tag, s, s ? strlen(s) : UINT64_MAX);
}

/*
 * Every field but down (include_down 0), or every field (1), hashed under
 * domain.  The full checksum (domain v1, down included) is the one ledgers
 * and bundles have always stored; the up checksum leaves down out, so a
 * down fixed after its migration was applied is not drift.
 */
static void
s_hash_migration(const fl_migration_t *m, const char *domain,
                 int include_down, unsigned char out[32])
{
    fl_hash_t *h = fl_hash_sha256_new();
    uint64_t v64 = 0;

    s_hash_field(h, 'D', domain, strlen(domain));
    /* A version that fits in 64 bits is hashed by value, as it was before
     * versions were text, so that ledgers' checksums stay valid; any
     * other by its text, under its own tag. */
    if (fl_version_to_u64(&m->version, &v64))
        s_hash_field(h, 'V', NULL, v64);
    else
        s_hash_str(h, 'W', m->version.text);
    s_hash_str(h, 'N', m->name);
    s_hash_str(h, 'u', m->up);
    if (include_down)
        s_hash_str(h, 'd', m->down);
    s_hash_str(h, 'a', m->validate);
    s_hash_str(h, 'v', m->verify);
    s_hash_field(h, 'T', NULL, (uint64_t)(m->no_transaction != 0));
    s_hash_field(h, 'L', NULL, (uint64_t)m->lock_timeout_ms);
    s_hash_field(h, 'S', NULL, (uint64_t)m->statement_timeout_ms);
    s_hash_field(h, 'A', NULL, (uint64_t)m->nallows);
    for (size_t i = 0; i < m->nallows; i++) {
        s_hash_str(h, 'r', m->allows[i].rule);
        s_hash_str(h, 'R', m->allows[i].reason);
    }
    fl_hash_final(h, out);
    fl_hash_destroy(&h);
}

void
fl_migration_compute_checksum(fl_migration_t *m)
{
    fl_proto_sodium_init();
    s_hash_migration(m, m->repeatable ? "flotilla-repeatable-v1"
                                      : "flotilla-migration-v1", 1,
                     m->checksum);
    fl_migration_hex(m->checksum_hex, m->checksum);
}

void
fl_migration_up_checksum(unsigned char out[32], const fl_migration_t *m)
{
    fl_proto_sodium_init();
    s_hash_migration(m, "flotilla-migration-up-v1", 0, out);
}

void
fl_migration_down_checksum(unsigned char out[32], const char *down)
{
    static const char domain[] = "flotilla-migration-down-v1";
    fl_hash_t *h = NULL;

    fl_proto_sodium_init();
    h = fl_hash_sha256_new();
    s_hash_field(h, 'D', domain, sizeof(domain) - 1);
    s_hash_str(h, 'd', down);
    fl_hash_final(h, out);
    fl_hash_destroy(&h);
}

void
fl_migration_hex(char out[65], const unsigned char sum[32])
{
    fl_proto_sodium_init();
    sodium_bin2hex(out, 65, sum, 32);
}

int
fl_migration_is_applied_as(const fl_migration_t *m,
                           const unsigned char sum[32])
{
    unsigned char up[32];

    if (memcmp(sum, m->checksum, 32) == 0)
        return 1;
    fl_migration_up_checksum(up, m);
    return memcmp(sum, up, 32) == 0;
}

void
fl_migration_release(fl_migration_t *m)
{
    if (m == NULL)
        return;
    free(m->name);
    free(m->file);
    free(m->up);
    free(m->down);
    free(m->validate);
    free(m->verify);
    free(m->note);
    for (size_t i = 0; i < m->nparts; i++)
        free(m->parts[i]);
    free(m->parts);
    for (size_t i = 0; i < m->nallows; i++) {
        free(m->allows[i].rule);
        free(m->allows[i].reason);
    }
    free(m->allows);
    memset(m, 0, sizeof(*m));
}

void
fl_migration_list_release(fl_migration_list_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        fl_migration_release(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Reads the file at path (at most S_MAX_FILE bytes) into a new buffer. */
static int
s_read_file(char **out, size_t *outlen, const char *path, fl_error_t *err)
{
    FILE *f = NULL;
    struct stat st;
    char *data = NULL;
    int rc = 0;

    f = fopen(path, "rb");
    if (f == NULL)
        return FL_ERR(err, FL_EIO, "could not open migration file \"%s\": %s",
                      path, strerror(errno));
    if (fstat(fileno(f), &st) != 0) {
        rc = FL_ERR(err, FL_EIO, "could not stat migration file \"%s\": %s",
                    path, strerror(errno));
        goto cleanup;
    }
    if ((size_t)st.st_size > S_MAX_FILE) {
        rc = FL_ERR(err, FL_EINVAL, "migration file \"%s\" is too large", path);
        fl_error_set_detail(err, "It has %lld bytes; at most %zu are accepted.",
                            (long long)st.st_size, S_MAX_FILE);
        goto cleanup;
    }
    data = fl_malloc((size_t)st.st_size + 1);
    if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        rc = FL_ERR(err, FL_EIO, "could not read migration file \"%s\"", path);
        goto cleanup;
    }
    data[st.st_size] = '\0';
    *outlen = (size_t)st.st_size;
    *out = data;
    data = NULL;
cleanup:
    free(data);
    fclose(f);
    return rc;
}

static int
s_cmp_version(const void *a, const void *b)
{
    const fl_migration_t *x = a;
    const fl_migration_t *y = b;

    return fl_version_cmp(&x->version, &y->version);
}

int
fl_migration_dir_load(fl_migration_list_t *out, const char *dir,
                      fl_error_t *err)
{
    return fl_migration_dir_load_all(out, NULL, dir, err);
}

int
fl_migration_dir_load_all(fl_migration_list_t *out,
                          fl_migration_list_t *repeatables, const char *dir,
                          fl_error_t *err)
{
    DIR *d = NULL;
    struct dirent *e;
    fl_migration_list_t l = {NULL, 0}, r = {NULL, 0};
    char *path = NULL;
    char *text = NULL;
    int rc = 0;

    d = opendir(dir);
    if (d == NULL)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                      "could not open migrations directory \"%s\": %s", dir,
                      strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        size_t len = 0;

        if (e->d_name[0] == '.' || n < 4 ||
            strcmp(e->d_name + n - 4, ".sql") != 0)
            continue;
        path = fl_asprintf("%s/%s", dir, e->d_name);
        if (fl_migration_is_repeatable_name(e->d_name) && !repeatables) {
            rc = FL_ERR(err, FL_EINVAL, "\"%s\" is a repeatable migration, "
                        "which this command does not take", path);
            fl_error_set_hint(err, "Move it out of the directory for this "
                                   "command, or use a release of flotilla "
                                   "whose command takes repeatable "
                                   "migrations.");
            goto cleanup;
        }
        if ((rc = fl_file_within(dir, path, "migration file", err)) != 0 ||
            (rc = s_read_file(&text, &len, path, err)) != 0)
            goto cleanup;
        if (fl_migration_is_repeatable_name(e->d_name)) {
            r.items = fl_reallocarray(r.items, r.count + 1, sizeof(*r.items));
            if ((rc = fl_migration_parse_repeatable(&r.items[r.count],
                                                    e->d_name, text, len,
                                                    err)) != 0)
                goto cleanup;
            r.count++;
            fl_free(&text);
            fl_free(&path);
            continue;
        }
        l.items = fl_reallocarray(l.items, l.count + 1, sizeof(*l.items));
        if ((rc = fl_migration_parse(&l.items[l.count], e->d_name, text, len,
                                     err)) != 0)
            goto cleanup;
        l.count++;
        fl_free(&text);
        fl_free(&path);
    }
    if (l.count == 0) {
        rc = FL_ERR(err, FL_EINVAL, "migrations directory \"%s\" holds no "
                                    "%smigration files", dir,
                    r.count ? "versioned " : "");
        fl_error_set_hint(err, "Migration files are named NNNN_name.sql, for "
                               "example 0001_create_users.sql.");
        goto cleanup;
    }
    qsort(l.items, l.count, sizeof(*l.items), s_cmp_version);
    for (size_t i = 1; i < l.count; i++)
        if (fl_version_cmp(&l.items[i].version,
                           &l.items[i - 1].version) == 0) {
            rc = FL_ERR(err, FL_EINVAL, "duplicate migration version %s in "
                                        "directory \"%s\"",
                        l.items[i].version.text, dir);
            fl_error_set_detail(err, "Files \"%s\" and \"%s\" have the same "
                                     "version.", l.items[i - 1].file,
                                l.items[i].file);
            fl_error_set_hint(err, "Give every migration its own number.");
            goto cleanup;
        }
    if (r.count > 1)
        qsort(r.items, r.count, sizeof(*r.items), fl_migration_repeatable_cmp);
    *out = l;
    l.items = NULL;
    l.count = 0;
    if (repeatables) {
        *repeatables = r;
        r.items = NULL;
        r.count = 0;
    }
cleanup:
    free(text);
    free(path);
    fl_migration_list_release(&l);
    fl_migration_list_release(&r);
    if (d)
        closedir(d);
    return rc;
}
