/*
 * source.c - opening a migrations directory or a signed bundle (see
 * source.h).
 */
#include "agent/source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/str.h"
#include "lint/facts.h"
#include "proto/bundle.h"
#include "proto/version.h"

int
fl_source_open(fl_source_t *src, const char *path, const char *trust,
               int require_signed, int64_t now_s, fl_error_t *err)
{
    fl_bundle_verify_opts_t vo = FL_BUNDLE_VERIFY_OPTS_INIT;

    vo.now_s = now_s;
    return fl_source_open_opts(src, path, trust, require_signed, &vo, err);
}

/*
 * Finishes opening the verified bundle in src->bundle (named what in
 * errors): a signed bundle is trusted to be what its signer meant, not
 * to be well-formed, so its migrations obey the rules a directory's do.
 * On failure src is closed.
 */
static int
s_checked(fl_source_t *src, const char *what, fl_error_t *err)
{
    src->migs = fl_bundle_migrations(src->bundle);
    src->repeatables = fl_bundle_repeatables(src->bundle);
    src->bundle_id = fl_bundle_id(src->bundle);
    src->signer = fl_bundle_signer(src->bundle);
    for (size_t i = 0; i < src->migs->count + src->repeatables->count; i++) {
        const fl_migration_t *m =
            i < src->migs->count ? &src->migs->items[i]
                                 : &src->repeatables->items[i - src->migs->count];
        if (fl_migration_check(m, err) != 0) {
            fl_error_prefix(err, "bundle \"%s\": ", what);
            if (err)
                err->code = FL_EPROTO;
            fl_source_close(src);
            return FL_EPROTO;
        }
    }
    src->verified = FL_SOURCE_VERIFIED;
    return 0;
}

/* ---- other tools' layouts (proto/layout.h) ---- */

/*
 * Whether a statement of sql cannot run in a transaction block (the
 * linter's facts: CREATE INDEX CONCURRENTLY and friends); *what names the
 * first (new string: its line and its start, on one line).
 */
static int
s_needs_no_tx(const char *sql, int line, char **what)
{
    fl_stmt_list_t stmts = {NULL, 0};
    int found = 0;

    if (sql == NULL ||
        fl_facts_analyze(&stmts, sql, line > 0 ? line - 1 : 0, 150000,
                         NULL) != 0)
        return 0; /* the pipeline reports what does not parse */
    for (size_t i = 0; i < stmts.count && !found; i++) {
        const fl_stmt_t *st = &stmts.items[i];
        char start[61];
        size_t n = 0;

        if (!st->no_transaction)
            continue;
        for (const char *p = st->sql; *p && n < sizeof(start) - 1; p++)
            if (!(n > 0 && start[n - 1] == ' ' && (unsigned char)*p <= ' '))
                start[n++] = (unsigned char)*p <= ' ' ? ' ' : *p;
        start[n] = '\0';
        *what = fl_asprintf("the statement at line %d (%s%s)", st->line,
                            start, st->sql[n] ? "..." : "");
        found = 1;
    }
    fl_stmt_list_release(&stmts);
    return found;
}

/*
 * How a tool's migration runs in Flotilla: in one transaction, or
 * statement by statement (no-transaction).  A file the tool wraps in
 * BEGIN ... COMMIT stays in one (a statement that cannot run there fails,
 * as it does under the tool); one it sends outside a transaction (the
 * implicit transaction of a multi-statement string, Flyway's automatic
 * choice, or none at all) runs statement by statement when a statement of
 * it cannot run in a transaction, and in one otherwise.  *note says why
 * (new string) when it is no-transaction.  The up part decides: a
 * rollback runs a down with such a statement statement by statement
 * anyway (rollback.c).
 */
static int
s_no_transaction(const fl_layout_migration_t *lm, char **note)
{
    const fl_layout_part_t *p = &lm->up;
    char *what = NULL;

    *note = NULL;
    if (p->text == NULL || p->tx == FL_LAYOUT_TX_WRAPPED)
        return 0;
    if (p->tx == FL_LAYOUT_TX_NONE) {
        *note = fl_asprintf("%s runs %s outside a transaction",
                            fl_layout_tool_name(lm->tool), lm->label);
        return 1;
    }
    if (s_needs_no_tx(p->text, p->line, &what)) {
        *note = fl_asprintf("%s cannot run in a transaction, and %s runs "
                            "%s outside one", what,
                            fl_layout_tool_name(lm->tool), lm->label);
        free(what);
        return 1;
    }
    return 0;
}

/* One tool's migration as a Flotilla migration (into out, zeroed). */
static int
s_convert(fl_migration_t *out, const fl_layout_migration_t *lm,
          fl_error_t *err)
{
    const char *what = lm->problem && strstr(lm->problem, "folder") != NULL
                           ? "folder"
                           : "file";

    memset(out, 0, sizeof(*out));
    out->lock_timeout_ms = -1;
    out->statement_timeout_ms = -1;
    out->other_tool = 1;
    if (lm->problem != NULL) {
        FL_ERR(err, FL_EINVAL, "%s migration \"%s\" cannot be read: %s",
               fl_layout_tool_name(lm->tool), lm->label, lm->problem);
        if (lm->problem_path)
            fl_error_set_detail(err, "At %s%s%.0d.", lm->problem_path,
                                lm->problem_line ? ":" : "",
                                lm->problem_line);
        /* A link out of the tree (fl_file_within's words): the tool
         * would follow it; flotilla does not read there. */
        if (strstr(lm->problem, "is a symbolic link") != NULL)
            fl_error_set_hint(err, "Copy the %s into the directory, or "
                                   "link to a %s inside it.", what, what);
        else
            fl_error_set_hint(err, "Fix the file: nothing runs until every "
                                   "migration of the tree can be read.");
        return FL_EINVAL;
    }
    if (!lm->repeatable &&
        fl_version_parse_str(&out->version, lm->version, err) != 0) {
        fl_error_prefix(err, "%s migration \"%s\": ",
                        fl_layout_tool_name(lm->tool), lm->label);
        return FL_EINVAL;
    }
    if (lm->up.text == NULL)
        return FL_ERR(err, FL_EINVAL, "%s migration \"%s\" has no up part",
                      fl_layout_tool_name(lm->tool), lm->label);
    out->name = fl_strdup(lm->name);
    out->file = fl_strdup(lm->label);
    out->up = fl_strdup(lm->up.text);
    out->up_line = lm->up.line;
    if (lm->down.text != NULL) {
        out->down = fl_strdup(lm->down.text);
        out->down_line = lm->down.line;
    }
    out->no_transaction = s_no_transaction(lm, &out->note);
    out->repeatable = lm->repeatable;
    fl_migration_compute_checksum(out);
    return 0;
}

/* ---- pop's groups: several files sharing one name ---- */

/* pop's versions cut into parts end in a six-digit part number after
 * the fourteen-digit stamp (ory's 20210410175418000001). */
#define S_POP_STAMP_DIGITS 14
#define S_POP_PART_DIGITS 6

/* Whether pop versions a and b are parts of one stamp: both of twenty
 * digits, the first fourteen equal.  (Any equal length was taken, so
 * 20210410100000 and 20210410235959 were parts of 20210410.) */
static int
s_same_stamp(const char *a, const char *b)
{
    size_t n = S_POP_STAMP_DIGITS + S_POP_PART_DIGITS;

    return strlen(a) == n && strlen(b) == n && strspn(a, "0123456789") == n &&
           strspn(b, "0123456789") == n &&
           strncmp(a, b, S_POP_STAMP_DIGITS) == 0;
}

/*
 * The end of the group starting at items[i] of ls: pop's consecutive
 * migrations with one name and one stamp (kratos writes
 * 20210410175418000000_network..., ...000001_network..., one change cut
 * into statements) are one migration, so that a rollback can never stop
 * inside one; any other migration is a group of its own.
 */
static size_t
s_group_end(const fl_layout_source_t *ls, size_t i)
{
    size_t j = i + 1;

    if (ls->tool != FL_LAYOUT_POP)
        return j;
    while (j < ls->count && !ls->items[j].repeatable &&
           ls->items[i].version && ls->items[j].version &&
           strcmp(ls->items[j].name, ls->items[i].name) == 0 &&
           s_same_stamp(ls->items[i].version, ls->items[j].version))
        j++;
    return j;
}

/* Appends a part's text to b under a comment line naming its file. */
static void
s_add_part(fl_buf_t *b, size_t k, size_t n, const char *label,
           const char *text)
{
    size_t len = 0;

    FL_ASSERT(text != NULL); /* s_convert refuses a part without it */
    len = strlen(text);

    fl_buf_addf(b, "-- pop file %zu of %zu: %s\n", k + 1, n, label);
    fl_buf_adds(b, text);
    if (len > 0 && text[len - 1] != '\n')
        fl_buf_adds(b, "\n");
}

/*
 * The n migrations at lm, one pop group, as one Flotilla migration (into
 * out, zeroed): the last part's version and file, the parts' ups in order
 * and their downs in reverse (a down only when every part has one),
 * no-transaction when a part is, and a note saying so.  Each part is read
 * as a migration of its own first, so a part the tool would refuse is
 * refused by its name.
 */
static int
s_convert_group(fl_migration_t *out, const fl_layout_migration_t *lm,
                size_t n, fl_error_t *err)
{
    fl_migration_t *part = fl_calloc(n, sizeof(*part));
    fl_buf_t up = FL_BUF_INIT(0), down = FL_BUF_INIT(0);
    fl_buf_t note = FL_BUF_INIT(0), nodown = FL_BUF_INIT(0);
    const char *notx = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    for (size_t k = 0; k < n; k++)
        if ((rc = s_convert(&part[k], &lm[k], err)) != 0)
            goto cleanup;
    out->version = part[n - 1].version;
    out->lock_timeout_ms = -1;
    out->statement_timeout_ms = -1;
    out->other_tool = 1;
    out->name = fl_strdup(part[0].name);
    out->file = fl_strdup(part[n - 1].file);
    out->up_line = 1;
    out->parts = fl_calloc(n, sizeof(char *));
    out->nparts = n;
    fl_buf_addf(&note, "a group of %zu pop files sharing the name \"%s\", "
                "applied and rolled back as one migration:", n, out->name);
    for (size_t k = 0; k < n; k++) {
        out->parts[k] = fl_strdup(part[k].version.text);
        s_add_part(&up, k, n, part[k].file, part[k].up);
        fl_buf_addf(&note, "%s %s", k ? "," : "", part[k].file);
        if (part[k].down == NULL)
            fl_buf_addf(&nodown, "%s%s", nodown.len ? ", " : "",
                        part[k].file);
        if (part[k].no_transaction && notx == NULL)
            notx = part[k].note;
    }
    if (nodown.len == 0) {
        for (size_t k = n; k-- > 0;)
            s_add_part(&down, k, n, strrchr(lm[k].down.path, '/')
                                        ? strrchr(lm[k].down.path, '/') + 1
                                        : lm[k].down.path,
                       part[k].down);
        out->down = fl_buf_detach(&down);
        out->down_line = 1;
    } else {
        fl_buf_addf(&note, "; no down, since %s has none",
                    fl_buf_str(&nodown));
    }
    if (notx != NULL) {
        out->no_transaction = 1;
        fl_buf_addf(&note, "; no transaction for the group: %s", notx);
    }
    out->up = fl_buf_detach(&up);
    out->note = fl_buf_detach(&note);
    fl_migration_compute_checksum(out);
cleanup:
    for (size_t k = 0; k < n; k++)
        fl_migration_release(&part[k]);
    free(part);
    fl_buf_release(&up);
    fl_buf_release(&down);
    fl_buf_release(&note);
    fl_buf_release(&nodown);
    return rc;
}

/*
 * m's up and down are UTF-8 text without NUL, as a Flotilla file's and a
 * bundle's must be.  Before, a LATIN1 file was read and imported, and no
 * command could read the imported directory (found by an audit).
 */
static int
s_utf8(const fl_migration_t *m, int any_names, fl_error_t *err)
{
    const char *const texts[2] = {m->up, m->down};
    const char *const names[2] = {m->file, m->name};

    /*
     * Its file name too: the ledger and JSON hold it as text.  Before, a
     * LATIN1 name ran, then its ledger row failed with "invalid byte
     * sequence for encoding UTF8", the file unnamed (found by an audit).
     */
    for (int i = 0; i < 2 && !any_names; i++) {
        const unsigned char *p = (const unsigned char *)names[i];
        size_t len = p ? strlen(names[i]) : 0;

        for (size_t k = 0, n = 0; k < len; k += n)
            if ((n = fl_str_utf8_decode(p + k, len - k, NULL)) == 0) {
                char *shown = fl_str_escape_controls(m->file, 0);

                FL_ERR(err, FL_EINVAL, "migration file \"%s\": its name is "
                       "not UTF-8 (byte 0x%02x)", shown, p[k]);
                fl_error_set_hint(err, "Rename the file with UTF-8 text "
                                       "(or ASCII): Flotilla records "
                                       "migrations by their names as "
                                       "text.");
                free(shown);
                return FL_EINVAL;
            }
    }

    for (int i = 0; i < 2; i++) {
        const unsigned char *p = (const unsigned char *)texts[i];
        size_t len = p ? strlen(texts[i]) : 0;
        int line = (i == 0 ? m->up_line : m->down_line) > 0
                       ? (i == 0 ? m->up_line : m->down_line)
                       : 1;

        /*
         * A byte-order mark first: PostgreSQL would read it as part of the
         * first statement (Flyway strips it).  Before, the migrations
         * before it ran, then a syntax error "at or near" an invisible
         * character (found by an audit).
         */
        if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
            char *shown = fl_str_escape_controls(m->file, 0);

            FL_ERR(err, FL_EINVAL, "migration \"%s\": its %s starts with "
                   "a UTF-8 byte-order mark, which PostgreSQL would read as "
                   "part of its first statement", shown,
                   i == 0 ? "up" : "down");
            fl_error_set_hint(err, "Save the file as UTF-8 without a "
                                   "byte-order mark (sed -i '1s/^\\xEF\\xBB"
                                   "\\xBF//' FILE).");
            free(shown);
            return FL_EINVAL;
        }
        for (size_t k = 0; k < len;) {
            size_t n = fl_str_utf8_decode(p + k, len - k, NULL);

            if (n == 0) {
                FL_ERR(err, FL_EINVAL, "migration \"%s\", its %s at line "
                       "%d: invalid UTF-8 byte 0x%02x", m->file,
                       i == 0 ? "up" : "down", line, p[k]);
                fl_error_set_hint(err, "Convert the file to UTF-8 (iconv "
                                       "-f LATIN1 -t UTF-8, say): Flotilla "
                                       "reads migrations as UTF-8 text.");
                return FL_EINVAL;
            }
            line += p[k] == '\n';
            k += n;
        }
    }
    return 0;
}

/*
 * One tool's repeatable migration (Flyway's R__) into src->rdir: no
 * version, no down (Flyway has no undo for them), its description as
 * its name.
 */
static int
s_add_repeatable(fl_source_t *src, const fl_layout_migration_t *lm,
                 fl_error_t *err)
{
    fl_migration_list_t *r = &src->rdir;
    fl_migration_t *m = NULL;

    r->items = fl_reallocarray(r->items, r->count + 1, sizeof(*r->items));
    m = &r->items[r->count];
    if (s_convert(m, lm, err) != 0) {
        fl_migration_release(m);
        return FL_EINVAL;
    }
    r->count++;
    if (s_utf8(m, src->any_names, err) != 0)
        return FL_EINVAL;
    for (size_t i = 0; i + 1 < r->count; i++)
        if (strcmp(r->items[i].name, m->name) == 0)
            return FL_ERR(err, FL_EINVAL, "%s repeatable migrations \"%s\" "
                          "and \"%s\" have the same description",
                          fl_layout_tool_name(lm->tool), r->items[i].file,
                          m->file);
    return 0;
}

/*
 * Refuses a and b, consecutive migrations of tool, of one version in
 * Flotilla's order (v): its ledger holds one migration per version.  The
 * tool may tell them apart (dbmate's "01" and "1" are two versions to
 * it, which compares them as text; Flotilla reads versions by the value
 * of their numbers) or not (the same text twice): either way one of them
 * needs a version of its own.  Before, both were refused as an order
 * the tool "sorts as text" and Flotilla the other way.
 */
static int
s_same_version(fl_layout_tool tool, const fl_layout_migration_t *a,
               const fl_layout_migration_t *b, const fl_version_t *v,
               fl_error_t *err)
{
    const char *name = fl_layout_tool_name(tool);

    /*
     * Flyway's baseline migration (B2__) stands for the versioned ones up
     * to its version (V1__, V2__), which it runs instead on an empty
     * database only: both are meant to be there.  Flotilla reads a B file
     * as a versioned migration, so it would run it as well.
     */
    if (tool == FL_LAYOUT_FLYWAY &&
        (a->label[0] == 'B') != (b->label[0] == 'B')) {
        const fl_layout_migration_t *base = a->label[0] == 'B' ? a : b;

        FL_ERR(err, FL_EINVAL, "flyway's baseline migration \"%s\" has the "
               "version of \"%s\", %s: Flotilla would run both",
               base->label, base == a ? b->label : a->label, v->text);
        fl_error_set_detail(err, "Flyway runs a baseline migration (B) "
                            "instead of the versioned migrations up to its "
                            "version, and only on an empty database; "
                            "Flotilla reads it as one more versioned "
                            "migration, and holds one migration per "
                            "version.");
        fl_error_set_hint(err, "Move \"%s\" out of the directory Flotilla "
                          "reads: on a new database flotilla apply runs "
                          "the versioned migrations up to %s, which it "
                          "stands for.", base->label, v->text);
        return FL_EINVAL;
    }
    FL_ERR(err, FL_EINVAL, "%s migrations \"%s\" and \"%s\" have one "
           "version, %s, in Flotilla", name, a->label, b->label, v->text);
    if (strcmp(a->version, b->version) != 0)
        fl_error_set_detail(err, "%s records them as the versions \"%s\" "
                            "and \"%s\", which it tells apart; Flotilla "
                            "reads a version by the value of its numbers "
                            "(docs/migrations.md, \"Versions\"), and its "
                            "ledger holds one migration per version.", name,
                            a->version, b->version);
    else
        fl_error_set_detail(err, "%s records both as version \"%s\", and "
                            "its ledger holds one row per version: it "
                            "cannot record both as run either.", name,
                            a->version);
    fl_error_set_hint(err, "Give one of them a version of its own: rename "
                           "its file, and its row in %s's ledger if %s ran "
                           "it.", name, name);
    return FL_EINVAL;
}

/*
 * Flyway's baseline migration (B3__) stands for the versioned ones up to
 * its version, which Flyway runs instead of them, on an empty database
 * only; Flotilla reads it as one more versioned migration, so with a
 * versioned migration below it Flotilla would run both (one of its own
 * version is s_same_version's).  Before, B3__ beside V1__ and V2__ was
 * read as version 3 and run after them (found by an audit).
 */
static int
s_flyway_baselines(const fl_layout_source_t *ls, fl_error_t *err)
{
    const fl_layout_migration_t *first = NULL;

    /* Flyway runs the newest baseline migration only; Flotilla would run
     * each (found by the review). */
    for (size_t i = 0; i < ls->count; i++) {
        const fl_layout_migration_t *b = &ls->items[i];

        if (b->repeatable || b->version == NULL || b->label[0] != 'B')
            continue;
        if (first == NULL) {
            first = b;
            continue;
        }
        FL_ERR(err, FL_EINVAL, "flyway's baseline migrations \"%s\" and "
               "\"%s\": Flyway runs only the newest, on an empty database, "
               "and Flotilla would run both", first->label, b->label);
        fl_error_set_hint(err, "Move all but the newest baseline migration "
                               "out of the directory Flotilla reads.");
        return FL_EINVAL;
    }
    for (size_t i = 0; i < ls->count; i++) {
        const fl_layout_migration_t *b = &ls->items[i];
        int same = 0;

        if (b->repeatable || b->version == NULL || b->label[0] != 'B')
            continue;
        for (size_t k = 0; k < ls->count; k++)
            same |= k != i && ls->items[k].version != NULL &&
                    ls->items[k].label[0] == 'V' &&
                    fl_layout_version_cmp(FL_LAYOUT_FLYWAY,
                                          ls->items[k].version,
                                          b->version) == 0;
        for (size_t k = 0; !same && k < ls->count; k++) {
            const fl_layout_migration_t *v = &ls->items[k];

            if (v->repeatable || v->version == NULL || v->label[0] != 'V' ||
                fl_layout_version_cmp(FL_LAYOUT_FLYWAY, v->version,
                                      b->version) >= 0)
                continue;
            FL_ERR(err, FL_EINVAL, "flyway's baseline migration \"%s\" "
                   "stands for the versioned migrations up to %s, \"%s\" "
                   "among them: Flotilla would run both", b->label,
                   b->version, v->label);
            fl_error_set_detail(err, "Flyway runs a baseline migration (B) "
                                "instead of the versioned migrations up to "
                                "its version, and only on an empty "
                                "database; Flotilla reads it as one more "
                                "versioned migration.");
            fl_error_set_hint(err, "Move \"%s\" out of the directory "
                              "Flotilla reads: on a new database flotilla "
                              "apply runs the versioned migrations it "
                              "stands for.", b->label);
            return FL_EINVAL;
        }
    }
    return 0;
}

/*
 * Text the tool changes before it runs a file, which Flotilla would run
 * as it is: Flyway's placeholders (${name}, replaced by their values by
 * default) and pop's templates (pop runs its SQL files as Go templates:
 * {{ ... }}).  Before, both were imported and applied as written: an
 * INSERT stored the text "${env}" (found by an audit).
 */
static int
s_tool_rewrites(const fl_layout_migration_t *lm, fl_error_t *err)
{
    const fl_layout_part_t *parts[2] = {&lm->up, &lm->down};
    const char *open = lm->tool == FL_LAYOUT_FLYWAY ? "${"
                       : lm->tool == FL_LAYOUT_POP  ? "{{"
                                                    : NULL;

    for (int i = 0; open != NULL && i < 2; i++) {
        const char *text = parts[i]->text, *at = NULL;
        int line = parts[i]->line > 0 ? parts[i]->line : 1;
        size_t len;

        if (text == NULL || (at = strstr(text, open)) == NULL)
            continue;
        for (const char *p = text; p < at; p++)
            line += *p == '\n';
        len = strcspn(at, lm->tool == FL_LAYOUT_FLYWAY ? "}\n" : "\n");
        if (lm->tool == FL_LAYOUT_FLYWAY) {
            FL_ERR(err, FL_EINVAL, "flyway migration \"%s\" holds the "
                   "placeholder %.*s%s at %s:%d: Flyway replaces it with "
                   "its value when it runs the file, and Flotilla would run "
                   "the text as it is", lm->label, (int)(len < 64 ? len : 64),
                   at, at[len] == '}' ? "}" : "", parts[i]->path, line);
            fl_error_set_hint(err, "Write the value Flyway gives it (its "
                              "flyway.placeholders setting) into the file. "
                              "If Flyway runs the file with "
                              "placeholderReplacement=false, the text is "
                              "meant as it is: write it so that no \"${\" "
                              "appears (in SQL, '$' || '{...}').");
        } else {
            FL_ERR(err, FL_EINVAL, "pop migration \"%s\" holds a template "
                   "action (%.*s) at %s:%d: pop runs its SQL files as Go "
                   "templates, and Flotilla would run the text as it is",
                   lm->label, (int)(len < 64 ? len : 64), at,
                   parts[i]->path, line);
            fl_error_set_hint(err, "Write what the template makes for "
                                   "PostgreSQL into the file.");
        }
        return FL_EINVAL;
    }
    return 0;
}

/* At most this many files are named in src->left_out; the rest counted. */
#define S_LEFT_NAMED 10

typedef struct {
    const char *dir;
    fl_buf_t named;
    size_t n;
} s_left_t;

static void
s_left_add(s_left_t *l, const char *path, const char *why)
{
    size_t dl = strlen(l->dir);
    const char *rel = path;

    if (strncmp(path, l->dir, dl) == 0 && path[dl] == '/')
        for (rel = path + dl; *rel == '/'; rel++)
            ;
    if (l->n < S_LEFT_NAMED)
        fl_buf_addf(&l->named, "%s%s (%s)", l->n ? ", " : "", rel, why);
    l->n++;
}

static const char *
s_item_path(const fl_layout_migration_t *lm)
{
    return lm->up.path ? lm->up.path : lm->down.path ? lm->down.path
                                                     : lm->label;
}

/*
 * What of dir Flotilla leaves out when it reads ls there (a new string,
 * or NULL when nothing): the files the scan skipped (pop's for another
 * database, its .fizz files), those of no tool or of another, and the
 * migrations of the same tool in subdirectories (Flyway reads them;
 * Flotilla reads the directory's own files).  Before, none was said (the
 * list was never filled; found by an audit).
 */
static char *
s_left_out(const fl_layout_t *layout, const fl_layout_source_t *ls,
           const char *dir, fl_layout_tool tool)
{
    s_left_t l = {dir, FL_BUF_INIT(0), 0};
    fl_layout_options_t lo = FL_LAYOUT_OPTIONS_INIT;
    fl_layout_t deep = {NULL, 0, NULL, 0};
    char *out = NULL;

    for (size_t i = 0; i < layout->nskipped; i++)
        s_left_add(&l, layout->skipped[i].path, layout->skipped[i].why);
    for (size_t i = 0; i < layout->count; i++) {
        const fl_layout_source_t *s = &layout->sources[i];
        char *why = NULL;

        if (s == ls)
            continue;
        why = s->tool == FL_LAYOUT_SQL
                  ? fl_asprintf("not a %s migration's name",
                                fl_layout_tool_name(ls->tool))
                  : fl_asprintf("a %s migration",
                                fl_layout_tool_name(s->tool));
        for (size_t k = 0; k < s->count; k++)
            s_left_add(&l, s_item_path(&s->items[k]), why);
        free(why);
    }
    lo.prefer = tool;
    if (fl_layout_scan(&deep, dir, &lo, NULL) == 0)
        for (size_t i = 0; i < deep.count; i++) {
            const fl_layout_source_t *s = &deep.sources[i];

            if (s->tool != ls->tool || strcmp(s->dir, ls->dir) == 0)
                continue;
            for (size_t k = 0; k < s->count; k++)
                s_left_add(&l, s_item_path(&s->items[k]),
                           "in a subdirectory: Flotilla reads the "
                           "directory's own files only");
        }
    fl_layout_release(&deep);
    if (l.n > 0)
        out = fl_asprintf("%zu file%s Flotilla does not read: %s%s", l.n,
                          l.n == 1 ? "" : "s", fl_buf_str(&l.named),
                          l.n > S_LEFT_NAMED ? ", and more" : "");
    fl_buf_release(&l.named);
    return out;
}

/*
 * The migrations of the one source of tool in dir (its own directory, not
 * its subdirectories), in the tool's order, into src->dir.
 */
static int
s_open_layout(fl_source_t *src, const char *dir, fl_layout_tool tool,
              fl_error_t *err)
{
    fl_layout_options_t lo = FL_LAYOUT_OPTIONS_INIT;
    fl_layout_t layout = {NULL, 0, NULL, 0};
    const fl_layout_source_t *ls = NULL;
    const fl_layout_migration_t *prev = NULL;
    fl_migration_list_t *l = &src->dir;
    int rc = 0;

    lo.prefer = tool;
    lo.recursive = 0;
    lo.whole = 1;
    if ((rc = fl_layout_scan(&layout, dir, &lo, err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < layout.count; i++) {
        const fl_layout_source_t *s = &layout.sources[i];

        if (s->tool == FL_LAYOUT_SQL ||
            (tool != FL_LAYOUT_AUTO && s->tool != tool))
            continue;
        if (ls != NULL) {
            rc = FL_ERR(err, FL_EINVAL, "directory \"%s\" holds migrations "
                        "of both %s and %s", dir, fl_layout_tool_name(ls->tool),
                        fl_layout_tool_name(s->tool));
            fl_error_set_hint(err, "Name the tool with --layout TOOL.");
            goto cleanup;
        }
        ls = s;
    }
    if (ls == NULL || ls->count == 0) {
        rc = FL_ERR(err, FL_EINVAL, "directory \"%s\" holds no %s migrations",
                    dir, tool == FL_LAYOUT_AUTO ? "recognised"
                                                : fl_layout_tool_name(tool));
        fl_error_set_hint(err, "docs/adopting.md lists the layouts Flotilla "
                               "reads and their file names.");
        goto cleanup;
    }
    if (ls->tool == FL_LAYOUT_FLYWAY &&
        (rc = s_flyway_baselines(ls, err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < ls->count; i++)
        if ((rc = s_tool_rewrites(&ls->items[i], err)) != 0)
            goto cleanup;
    l->items = fl_calloc(ls->count, sizeof(*l->items));
    for (size_t i = 0, end = 0; i < ls->count; i = end) {
        fl_migration_t *m = &l->items[l->count];

        end = s_group_end(ls, i);
        if (ls->items[i].repeatable) {
            if ((rc = s_add_repeatable(src, &ls->items[i], err)) != 0)
                goto cleanup;
            continue;
        }
        rc = end - i > 1 ? s_convert_group(m, &ls->items[i], end - i, err)
                         : s_convert(m, &ls->items[i], err);
        if (rc == 0)
            rc = s_utf8(m, src->any_names, err);
        if (rc != 0) {
            fl_migration_release(m);
            goto cleanup;
        }
        l->count++;
        if (l->count > 1 &&
            fl_version_cmp(&m->version, &(m - 1)->version) == 0) {
            FL_ASSERT(prev != NULL); /* set with the migration before */
            rc = s_same_version(ls->tool, prev, &ls->items[i], &m->version,
                                err);
            goto cleanup;
        }
        if (l->count > 1 &&
            fl_version_cmp(&m->version, &(m - 1)->version) < 0) {
            rc = FL_ERR(err, FL_EINVAL, "%s runs \"%s\" (version %s) after "
                        "\"%s\" (version %s), which Flotilla orders the other "
                        "way", fl_layout_tool_name(ls->tool), m->file,
                        m->version.text, (m - 1)->file, (m - 1)->version.text);
            fl_error_set_detail(err, "Flotilla orders versions by the value "
                                     "of their numbers (docs/migrations.md, "
                                     "\"Versions\"); %s sorts them as text.",
                                fl_layout_tool_name(ls->tool));
            fl_error_set_hint(err, "Give the versions the same number of "
                                   "digits, as the tool's generator does.");
            goto cleanup;
        }
        prev = &ls->items[end - 1];
    }
    if (l->count == 0) {
        rc = FL_ERR(err, FL_EINVAL, "directory \"%s\" holds only repeatable "
                    "migrations", dir);
        goto cleanup;
    }
    if (src->rdir.count > 1)
        qsort(src->rdir.items, src->rdir.count, sizeof(*src->rdir.items),
              fl_migration_repeatable_cmp);
    src->repeatables = &src->rdir;
    src->tool = ls->tool;
    src->migs = l;
    src->left_out = s_left_out(&layout, ls, dir, tool);
    src->verified = FL_SOURCE_VERIFIED;
cleanup:
    if (rc != 0) {
        fl_migration_list_release(l);
        fl_migration_list_release(&src->rdir);
    }
    fl_layout_release(&layout);
    return rc;
}

/* Whether dir holds another tool's migrations and no flotilla file. */
static int
s_other_tool(const char *dir)
{
    fl_layout_options_t lo = FL_LAYOUT_OPTIONS_INIT;
    fl_layout_t layout = {NULL, 0, NULL, 0};
    int other = 0, own = 0;

    lo.recursive = 0;
    if (fl_layout_scan(&layout, dir, &lo, NULL) != 0)
        return 0; /* fl_migration_dir_load says what is wrong */
    for (size_t i = 0; i < layout.count; i++) {
        fl_layout_tool t = layout.sources[i].tool;

        own |= t == FL_LAYOUT_FLOTILLA;
        other |= t != FL_LAYOUT_FLOTILLA && t != FL_LAYOUT_SQL;
    }
    fl_layout_release(&layout);
    return other && !own;
}

int
fl_source_open_dir(fl_source_t *src, const char *dir, fl_layout_tool tool,
                   fl_error_t *err)
{
    int rc, any_names = src->any_names;

    memset(src, 0, sizeof(*src));
    src->any_names = any_names;
    if (tool == FL_LAYOUT_SQL)
        return FL_ERR(err, FL_EINVAL, "plain SQL files are not migrations "
                      "Flotilla can run");
    if (tool == FL_LAYOUT_FLOTILLA ||
        (tool == FL_LAYOUT_AUTO && !s_other_tool(dir))) {
        if ((rc = fl_migration_dir_load_all(&src->dir, &src->rdir, dir,
                                            err)) != 0)
            return rc;
        src->tool = FL_LAYOUT_FLOTILLA;
        src->migs = &src->dir;
        src->repeatables = &src->rdir;
        src->verified = FL_SOURCE_VERIFIED;
        return 0;
    }
    return s_open_layout(src, dir, tool, err);
}

int
fl_source_open_opts(fl_source_t *src, const char *path, const char *trust,
                    int require_signed, const fl_bundle_verify_opts_t *vo,
                    fl_error_t *err)
{
    struct stat st;
    fl_trust_t *keys = NULL;
    int rc = 0;

    memset(src, 0, sizeof(*src));
    if (stat(path, &st) != 0) {
        rc = FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                    "could not open migration source \"%s\": %s", path,
                    strerror(errno));
        fl_error_set_hint(err, "SOURCE is a migrations directory or a "
                               "signed bundle file; check the path (it is "
                               "read from the current directory when "
                               "relative).");
        return rc;
    }
    if (S_ISDIR(st.st_mode)) {
        if (require_signed) {
            FL_ERR(err, FL_EINVAL, "\"%s\" is a migrations directory, but "
                   "--require-signed accepts only signed bundles", path);
            fl_error_set_hint(err, "Build one with \"flotilla bundle build %s "
                                   "--sign KEY --out FILE\".", path);
            return FL_EINVAL;
        }
        return fl_source_open_dir(src, path, FL_LAYOUT_AUTO, err);
    }
    if (trust == NULL) {
        FL_ERR(err, FL_EINVAL, "bundle \"%s\" cannot be verified without "
               "trusted keys", path);
        fl_error_set_hint(err, "Pass --trust with a .pub file or a directory "
                               "of them.");
        return FL_EINVAL;
    }
    if ((rc = fl_trust_load(&keys, trust, err)) != 0)
        return rc;
    rc = fl_bundle_load_opts(&src->bundle, path, keys, vo, err);
    fl_trust_destroy(&keys);
    if (rc != 0)
        return rc;
    return s_checked(src, path, err);
}

int
fl_source_open_bytes(fl_source_t *src, const unsigned char *data, size_t len,
                     const fl_trust_t *trust, const fl_bundle_verify_opts_t *vo,
                     fl_error_t *err)
{
    int rc;

    memset(src, 0, sizeof(*src));
    if ((rc = fl_bundle_verify_bytes(&src->bundle, data, len, trust, vo,
                                     err)) != 0)
        return rc;
    return s_checked(src, fl_bundle_id(src->bundle), err);
}

int
fl_source_open_transfer(fl_source_t *src, const fl_wire_bundle_t *msg,
                        const fl_trust_t *trust,
                        const fl_bundle_verify_opts_t *vo, fl_error_t *err)
{
    char id[FL_BUNDLE_ID_HEX];
    int rc;

    memset(src, 0, sizeof(*src));
    if ((rc = fl_wire_bundle_verify(id, &src->bundle, msg, trust, vo,
                                    err)) != 0)
        return rc;
    return s_checked(src, id, err);
}

void
fl_source_close(fl_source_t *src)
{
    if (src == NULL)
        return;
    fl_migration_list_release(&src->dir);
    fl_migration_list_release(&src->rdir);
    fl_bundle_destroy(&src->bundle);
    fl_free(&src->left_out);
    src->migs = NULL;
    src->repeatables = NULL;
    src->bundle_id = NULL;
    src->signer = NULL;
    src->verified = 0;
}
