/*
 * cmd_import.c - `flotilla import --from TOOL SRC DEST`: another tool's
 * migrations directory written out in Flotilla's own format, one
 * NNNN_name.sql per migration, saying each place it had to judge.
 *
 * The migrations are read as `apply --dir SRC --layout TOOL` reads them
 * (agent/source.h), so an imported directory runs as the tool's did: the
 * same versions, order, sections and transaction rule.  Judged, and said:
 * a name with characters Flotilla's file names do not take (replaced by
 * '_'), a migration made no-transaction (the options line written, with
 * why), one without a down (rollback refuses it), a file the tool wraps in
 * a transaction holding a statement that cannot run in one (it fails as
 * under the tool), pop's files sharing one name made one migration (the
 * group's parts listed), an empty up or down (written as a comment line:
 * a flotilla section is never empty), a down that had to gain a final
 * newline, and what is not imported.  Each section keeps its text byte
 * for byte otherwise, so the checksums stay the tool tree's; the up's
 * always unless it is empty.  Flyway's repeatable migrations (R__)
 * become flotilla's (R__name.sql, no down).  Nothing is overwritten:
 * DEST must hold no .sql file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/source.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/str.h"
#include "lint/facts.h"
#include "proto/layout.h"
#include "proto/migration.h"

static const char s_usage[] =
    "Usage: flotilla import --from TOOL SRC DEST [--json]\n"
    "\n"
    "Writes the migrations of SRC, a diesel, golang-migrate, pop, sqlx,\n"
    "dbmate or Flyway migrations directory, to DEST in Flotilla's format\n"
    "(NNNN_name.sql with -- flotilla:up and -- flotilla:down sections;\n"
    "Flyway's repeatable R__name.sql as R__name.sql, without a down), with\n"
    "the versions, order and transaction rules the tool has (the same\n"
    "reading as flotilla apply --dir SRC --layout TOOL), and says each\n"
    "place it had to judge: names changed, migrations made no-transaction,\n"
    "migrations without a down, what it left out.  DEST is created when\n"
    "missing and must hold no .sql file.\n"
    "\n"
    "  --from TOOL   diesel, golang-migrate, pop, sqlx, dbmate or flyway\n"
    "  --json        print what was written and judged as JSON\n"
    "  --help        this text\n"
    "\n"
    "Exit codes: 0 written, 1 failed (SRC unreadable, DEST not writable or\n"
    "already holding .sql files), 2 usage, 3 refused (a migration SRC\n"
    "holds that Flotilla cannot carry as the tool ran it; nothing\n"
    "written).\n";

enum { S_OPT_FROM = 1000, S_OPT_JSON, S_OPT_HELP };

/* What import decided on its own, for one migration. */
static void
s_judge(json_t *judged, const char *file, const char *fmt, ...)
    FL_PRINTF(3, 4);

static void
s_judge(json_t *judged, const char *file, const char *fmt, ...)
{
    va_list ap;
    char *what = NULL;

    va_start(ap, fmt);
    what = fl_vasprintf(fmt, ap);
    va_end(ap);
    json_array_append_new(judged, fl_json_pack("{s:o, s:o}", "file",
                                               fl_json_text(file), "what",
                                               fl_json_text(what)));
    free(what);
}

/* name with every character a flotilla file name does not take as '_'. */
static char *
s_file_name(const fl_migration_t *m, int *changed)
{
    size_t vlen = strlen(m->version.text);
    int pad = strchr(m->version.text, '.') == NULL && vlen < 4
                  ? (int)(4 - vlen)
                  : 0;
    char *name = fl_strdup(m->name[0] ? m->name : "migration");
    char *file = NULL;

    *changed = m->name[0] == '\0';
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
            *p = '_';
            *changed = 1;
        }
    file = fl_asprintf("%.*s%s_%s.sql", pad, "000", m->version.text, name);
    free(name);
    return file;
}

/*
 * A line of text that a flotilla file would take for a section marker,
 * as the parser reads one ("  --flotilla:down" is one; only
 * "-- flotilla:" at the margin was seen here).
 */
static int
s_has_marker(const char *text)
{
    for (const char *p = text; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, "\n");

        if (fl_migration_marker_line(p, n))
            return 1;
        p += n + (p[n] == '\n');
    }
    return 0;
}

/* The first of src's migrations holding a marker line, or NULL. */
static const fl_migration_t *
s_any_marker(const fl_source_t *src)
{
    for (size_t i = 0; i < src->migs->count; i++) {
        const fl_migration_t *m = &src->migs->items[i];
        if (s_has_marker(m->up) || (m->down && s_has_marker(m->down)))
            return m;
    }
    for (size_t i = 0; src->repeatables && i < src->repeatables->count; i++)
        if (s_has_marker(src->repeatables->items[i].up))
            return &src->repeatables->items[i];
    return NULL;
}

/* Whether text ends without a newline that a section's text could keep
 * only as the file's last section (a blank one is not written as it is). */
static int
s_ends_open(const char *text)
{
    size_t n = text ? strlen(text) : 0;

    return n > 0 && text[n - 1] != '\n' && !fl_migration_text_is_blank(text);
}

/* Whether text holds no statement (blank, or comments only), as
 * PostgreSQL's parser reads it. */
static int
s_no_statement(const char *text)
{
    fl_stmt_list_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    int none = fl_migration_text_is_blank(text) ||
               (fl_facts_analyze(&l, text, 0, 150000, &err) == 0 &&
                l.count == 0);

    fl_stmt_list_release(&l);
    fl_error_clear(&err);
    return none;
}

/*
 * Appends the section name with text to b.  The parser reads a section's
 * text byte for byte up to the next marker line, so a text without a
 * final newline keeps its bytes only as the last section (the caller
 * writes it last; before, every section gained one and an up's checksum
 * changed); one followed by another section gains one.  A blank text is
 * an empty section, which the parser refuses: it is written as a comment
 * line saying so, which runs nothing either (an up with "SELECT;", which
 * does nothing: a Flotilla up without a statement is refused).
 */
static void
s_section(fl_buf_t *b, const char *name, const char *text, int last)
{
    size_t n = strlen(text);

    fl_buf_addf(b, "-- flotilla:%s\n", name);
    if (strcmp(name, "up") == 0 && s_no_statement(text)) {
        /* A Flotilla up holds a statement (an empty one is a scaffold
         * not filled in): one that does nothing, so that the migration
         * applies as under the tool (before, the written file was
         * refused: found by an audit). */
        if (!fl_migration_text_is_blank(text)) {
            fl_buf_adds(b, text);
            if (text[n - 1] != '\n')
                fl_buf_adds(b, "\n");
        }
        fl_buf_adds(b, "-- The up holds no statement in the tool's file: "
                       "SELECT does nothing.\nSELECT;\n");
        return;
    }
    if (fl_migration_text_is_blank(text)) {
        fl_buf_addf(b, "-- The %s is empty in the tool's file: it runs "
                    "nothing.\n", name);
        return;
    }
    fl_buf_adds(b, text);
    if (!last && text[n - 1] != '\n')
        fl_buf_adds(b, "\n");
}

static char *
s_text(const fl_migration_t *m, const char *tool)
{
    fl_buf_t b = FL_BUF_INIT(0);
    /* The up's text is what drift compares: it goes last when only
     * there does it keep its bytes. */
    int down_first = m->down != NULL && s_ends_open(m->up);

    /* Names in a comment line: a newline in one would end it. */
    char *file = fl_str_escape_controls(m->file, 0);
    char *note = m->nparts > 0 ? fl_str_escape_controls(m->note, 0) : NULL;

    fl_buf_addf(&b, "-- Imported from %s's %s by flotilla import.\n", tool,
                file);
    if (note != NULL)
        fl_buf_addf(&b, "-- It is %s.\n", note);
    free(file);
    free(note);
    if (m->no_transaction)
        fl_buf_adds(&b, "-- flotilla:options no-transaction\n");
    if (down_first)
        s_section(&b, "down", m->down, 0);
    s_section(&b, "up", m->up, m->down == NULL || down_first);
    if (m->down != NULL && !down_first)
        s_section(&b, "down", m->down, 1);
    return fl_buf_detach(&b);
}

/*
 * What of m the written file cannot keep, into judged: an empty section
 * (written as a comment) and a down without a final newline that cannot
 * be the file's last section (its up is).  Only the down's checksum then
 * differs from the tool tree's, which is not drift (docs/migrations.md,
 * "Checksums"); an empty up's does too, and that is.
 */
static void
s_judge_sections(json_t *judged, const char *file, const fl_migration_t *m,
                 const char *tool)
{
    if (s_no_statement(m->up))
        s_judge(judged, file, "empty up: written with \"SELECT;\", which does "
                "nothing (a Flotilla up holds a statement); its up checksum "
                "differs from the %s tree's, so baseline with this "
                "directory, not with the tree", tool);
    if (m->down != NULL && fl_migration_text_is_blank(m->down))
        s_judge(judged, file, "empty down: written as a comment line (a "
                "Flotilla section is never empty): a rollback runs nothing, "
                "as under %s; its down checksum differs from the tree's, "
                "which is not drift", tool);
    else if (m->down != NULL && s_ends_open(m->down) && s_ends_open(m->up))
        s_judge(judged, file, "down given a final newline: only the file's "
                "last section, its up, can end without one; its down "
                "checksum differs from the %s tree's, which is not drift",
                tool);
}

/* DEST made when missing; FL_EXIT_* on refusal, with why in *err. */
static int
s_dest(const char *dest, fl_error_t *err)
{
    struct stat st;
    int clash = 0;

    if (mkdir(dest, 0755) != 0 && errno != EEXIST) {
        FL_ERR(err, FL_EIO, "could not create \"%s\": %s", dest,
               strerror(errno));
        return FL_EXIT_FAILED;
    }
    if (stat(dest, &st) != 0 || !S_ISDIR(st.st_mode)) {
        FL_ERR(err, FL_EINVAL, "\"%s\" is not a directory", dest);
        return FL_EXIT_FAILED;
    }
    /* A directory that already holds migrations is not written into. */
    {
        fl_migration_list_t l = {NULL, 0};
        fl_error_t e = FL_ERROR_INIT;

        clash = fl_migration_dir_load(&l, dest, &e) == 0 ||
                (e.message && strstr(e.message, "holds no migration "
                                                "files") == NULL);
        fl_migration_list_release(&l);
        fl_error_clear(&e);
    }
    if (clash) {
        FL_ERR(err, FL_EINVAL, "\"%s\" already holds .sql files", dest);
        fl_error_set_hint(err, "import into a new or empty directory.");
        return FL_EXIT_FAILED;
    }
    return FL_EXIT_OK;
}

static int
s_write(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    size_t n = strlen(text), off = 0;

    if (fd < 0)
        return -1;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;

            close(fd);
            unlink(path); /* a part of a file would make DEST refused */
            errno = e;
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;

        unlink(path);
        errno = e;
        return -1;
    }
    return 0;
}

/* "R__name.sql", name with the characters of s_file_name's. */
static char *
s_repeatable_file_name(const fl_migration_t *m, int *changed)
{
    char *name = fl_strdup(m->name[0] ? m->name : "repeatable");
    char *file = NULL;

    *changed = m->name[0] == '\0';
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
            *p = '_';
            *changed = 1;
        }
    file = fl_asprintf("R__%s.sql", name);
    free(name);
    return file;
}

/*
 * The repeatable migrations of src (Flyway's R__) as R__name.sql files
 * of DEST with flotilla's sections and no down (issue 14); each noted in
 * written, a renamed one in judged.  FL_EXIT_*, with why in *err.
 */
static int
s_import_repeatables(const fl_source_t *src, const char *tool,
                     const char *dest, json_t *written, json_t *judged,
                     fl_error_t *err)
{
    for (size_t i = 0; src->repeatables && i < src->repeatables->count; i++) {
        const fl_migration_t *m = &src->repeatables->items[i];
        int renamed = 0, code = FL_EXIT_OK;
        char *file = s_repeatable_file_name(m, &renamed), *path = NULL;
        char *text = NULL;

        path = fl_asprintf("%s/%s", dest, file);
        if (s_has_marker(m->up)) {
            FL_ERR(err, FL_EINVAL, "%s holds a line starting \"-- "
                   "flotilla:\", which would end its section", m->file);
            code = FL_EXIT_REFUSED;
        } else {
            if (renamed)
                s_judge(judged, file, "named %s: the name \"%s\" has "
                        "characters a Flotilla file name does not take",
                        file, m->name);
            if (m->no_transaction)
                s_judge(judged, file, "no-transaction: %s", m->note);
            s_judge_sections(judged, file, m, tool);
            text = s_text(m, tool);
            if (s_write(path, text) != 0) {
                FL_ERR(err, FL_EIO, "could not write \"%s\": %s", path,
                       strerror(errno));
                code = FL_EXIT_FAILED;
            } else {
                json_array_append_new(written, fl_json_pack(
                    "{s:n, s:o, s:o, s:b, s:b}", "version", "file",
                    fl_json_text(file), "from", fl_json_text(m->file),
                    "no_transaction", m->no_transaction, "repeatable", 1));
            }
        }
        free(text);
        free(path);
        free(file);
        if (code != FL_EXIT_OK)
            return code;
    }
    return FL_EXIT_OK;
}

/*
 * The names src's migrations would be written as: none longer than a
 * file name can be, no two alike.  Checked before anything is written:
 * before, the write that failed left DEST half written, and the next
 * import refused a DEST that held files (found by an audit).
 */
static int
s_names_check(const fl_source_t *src, fl_error_t *err)
{
    size_t nm = src->migs->count;
    size_t n = nm + (src->repeatables ? src->repeatables->count : 0);
    char **names = fl_calloc(n ? n : 1, sizeof(*names));
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        const fl_migration_t *m = i < nm ? &src->migs->items[i]
                                         : &src->repeatables->items[i - nm];
        int changed = 0;
        size_t len;

        names[i] = i < nm ? s_file_name(m, &changed)
                          : s_repeatable_file_name(m, &changed);
        len = strlen(names[i]);
        if (len > NAME_MAX) {
            rc = FL_ERR(err, FL_EINVAL, "%s would be written as \"%.40s"
                        "...\", of %zu bytes, longer than a file name can "
                        "be (%d)", m->file, names[i], len, NAME_MAX);
            fl_error_set_hint(err, "Shorten its name in SRC (and in the "
                                   "tool's ledger, if the tool ran it).");
        }
        for (size_t k = 0; k < i && rc == 0; k++)
            if (strcmp(names[k], names[i]) == 0) {
                const fl_migration_t *o =
                    k < nm ? &src->migs->items[k]
                           : &src->repeatables->items[k - nm];

                rc = FL_ERR(err, FL_EINVAL, "%s and %s would both be "
                            "written as %s", o->file, m->file, names[i]);
                fl_error_set_hint(err, "Rename one of them in SRC: a "
                                       "Flotilla file name takes letters, "
                                       "digits, '_' and '-', and import "
                                       "writes any other character as "
                                       "'_'.");
            }
    }
    /*
     * The repeatables run in the order of their names: renamed, two may
     * swap (R__a.b.sql written R__a_b.sql runs before R__a-c.sql, which
     * the tool runs first).  Before, the written directory ran them in
     * the other order (found by an audit).
     */
    for (size_t i = nm + 1; i < n && rc == 0; i++) {
        fl_migration_t x, y;

        memset(&x, 0, sizeof(x));
        memset(&y, 0, sizeof(y));
        /* "R__NAME.sql": the NAME a directory reads back. */
        x.name = fl_strndup(names[i - 1] + 3, strlen(names[i - 1]) - 7);
        y.name = fl_strndup(names[i] + 3, strlen(names[i]) - 7);
        if (fl_migration_repeatable_cmp(&x, &y) >= 0) {
            rc = FL_ERR(err, FL_EINVAL, "%s and %s, written as %s and %s, "
                        "would run in another order than %s runs them",
                        src->repeatables->items[i - 1 - nm].file,
                        src->repeatables->items[i - nm].file, names[i - 1],
                        names[i], fl_layout_tool_name(src->tool));
            fl_error_set_hint(err, "Rename them in SRC with letters, "
                                   "digits, '_' and '-' only, in the order "
                                   "they are to run.");
        }
        free(x.name);
        free(y.name);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int
fl_cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, S_OPT_FROM},
        {"json", no_argument, NULL, S_OPT_JSON},
        {"help", no_argument, NULL, S_OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    fl_layout_tool tool = FL_LAYOUT_AUTO;
    fl_source_t src = FL_SOURCE_INIT;
    fl_error_t err = FL_ERROR_INIT;
    json_t *written = NULL, *judged = NULL;
    const char *from = NULL, *dest = NULL;
    int json = 0, opt, code = FL_EXIT_OK;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case S_OPT_FROM:
            from = optarg;
            break;
        case S_OPT_JSON:
            json = 1;
            break;
        case S_OPT_HELP:
            printf("%s", s_usage);
            return FL_EXIT_OK;
        default:
            return fl_cli_option_error("import", opts, argv);
        }
    }
    if (from == NULL)
        return fl_cli_usage_error("import", "--from TOOL is required");
    if (fl_layout_tool_from_name(&tool, from, &err) != 0 ||
        tool == FL_LAYOUT_AUTO || tool == FL_LAYOUT_SQL ||
        tool == FL_LAYOUT_FLOTILLA) {
        fl_error_clear(&err);
        return fl_cli_usage_error("import", "--from: \"%s\" is not one of "
                                  "diesel, golang-migrate, pop, sqlx, dbmate, "
                                  "flyway", from);
    }
    if (argc - optind != 2)
        return fl_cli_usage_error("import", "expected SRC and DEST");
    dest = argv[optind + 1];
    src.any_names = 1; /* renamed when written (s_names_check) */
    if (fl_source_open_dir(&src, argv[optind], tool, &err) != 0) {
        /* Refused (3) for what it holds; 1 when it cannot be read. */
        code = err.code == FL_ENOTFOUND || err.code == FL_EIO
                   ? FL_EXIT_FAILED
                   : FL_EXIT_REFUSED;
        goto cleanup;
    }
    /* Every migration checked before anything is written: a refusal
     * leaves DEST as it was. */
    {
        const fl_migration_t *m = s_any_marker(&src);
        if (m != NULL) {
            FL_ERR(&err, FL_EINVAL, "%s holds a line starting \"-- "
                   "flotilla:\", which would end its section", m->file);
            code = FL_EXIT_REFUSED;
            goto cleanup;
        }
    }
    if (s_names_check(&src, &err) != 0) {
        code = FL_EXIT_REFUSED;
        goto cleanup;
    }
    if ((code = s_dest(dest, &err)) != FL_EXIT_OK)
        goto cleanup;
    written = json_array();
    judged = json_array();
    if (src.left_out != NULL)
        s_judge(judged, "", "not imported: %s", src.left_out);
    for (size_t i = 0; i < src.migs->count; i++) {
        const fl_migration_t *m = &src.migs->items[i];
        int renamed = 0;
        char *file = s_file_name(m, &renamed);
        char *path = fl_asprintf("%s/%s", dest, file);
        char *text = NULL;

        if (s_has_marker(m->up) || (m->down && s_has_marker(m->down))) {
            FL_ERR(&err, FL_EINVAL, "%s holds a line starting \"-- "
                   "flotilla:\", which would end its section", m->file);
            code = FL_EXIT_REFUSED;
            free(file);
            free(path);
            goto cleanup;
        }
        if (renamed)
            s_judge(judged, file, "named %s: the name \"%s\" has characters "
                    "a Flotilla file name does not take", file, m->name);
        if (m->nparts > 0)
            s_judge(judged, file, "one migration of %zu files: %s (pop's "
                    "ledger has a row per file: baseline from it with the "
                    "pop tree, --dir SRC --layout pop, not with DEST)",
                    m->nparts, m->note);
        if (m->no_transaction)
            s_judge(judged, file, "no-transaction: %s", m->note);
        if (m->down == NULL)
            s_judge(judged, file, "no down: %s has none, so rollback refuses "
                    "to roll it back", m->file);
        s_judge_sections(judged, file, m, fl_layout_tool_name(tool));
        text = s_text(m, fl_layout_tool_name(tool));
        if (s_write(path, text) != 0) {
            FL_ERR(&err, FL_EIO, "could not write \"%s\": %s", path,
                   strerror(errno));
            code = FL_EXIT_FAILED;
            free(text);
            free(file);
            free(path);
            goto cleanup;
        }
        json_array_append_new(written, fl_json_pack(
            "{s:s, s:o, s:o, s:b}", "version", m->version.text, "file",
            fl_json_text(file), "from", fl_json_text(m->file),
            "no_transaction", m->no_transaction));
        free(text);
        free(file);
        free(path);
    }
    if ((code = s_import_repeatables(&src, fl_layout_tool_name(tool), dest,
                                     written, judged, &err)) != FL_EXIT_OK)
        goto cleanup;
    if (json) {
        json_t *o = fl_json_pack("{s:b, s:s, s:o, s:o, s:O, s:O}", "ok", 1,
                                 "from", fl_layout_tool_name(tool), "source",
                                 fl_json_text(argv[optind]), "dest",
                                 fl_json_text(dest), "written", written,
                                 "judged", judged);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        size_t k;
        json_t *x;

        fl_cli_out("imported %zu %s migration%s from %s to %s\n",
                   json_array_size(written), fl_layout_tool_name(tool),
                   json_array_size(written) == 1 ? "" : "s", argv[optind],
                   dest);
        json_array_foreach(judged, k, x)
            fl_cli_out("  judged: %s%s%s\n",
                       json_string_value(json_object_get(x, "file")),
                       *json_string_value(json_object_get(x, "file")) ? ": "
                                                                       : "",
                       json_string_value(json_object_get(x, "what")));
    }
cleanup:
    if (code != FL_EXIT_OK && written != NULL) {
        /* What was written goes: DEST stays as it was. */
        size_t k;
        json_t *x;

        json_array_foreach(written, k, x) {
            const char *file = json_string_value(json_object_get(x, "file"));
            char *path = NULL;

            if (file == NULL)
                continue;
            path = fl_asprintf("%s/%s", dest, file);
            if (unlink(path) != 0 && errno != ENOENT)
                fprintf(stderr, "flotilla import: could not remove \"%s\":"
                        " %s\n", path, strerror(errno));
            free(path);
        }
    }
    if (code != FL_EXIT_OK)
        code = fl_dbcmd_report("import", &err, code, json);
    json_decref(written);
    json_decref(judged);
    fl_source_close(&src);
    fl_error_clear(&err);
    return code;
}
