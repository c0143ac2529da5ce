/*
 * layout.c - recognising other tools' migration layouts (see layout.h).
 *
 * One directory at a time: its entries are read and sorted by name, the
 * .sql files read once, and each file named by the first rule that takes
 * it: Flyway's V/U/B/R__ names, the N_name.up.sql family (pop when any
 * file of the directory carries a pop dialect, .autocommit or .fizz, else
 * sqlx or golang-migrate), flotilla's and dbmate's section markers, sqlx's
 * N_name.sql in a Rust project, else plain SQL.  Diesel is recognised from
 * folders: a subdirectory holding up.sql is one migration of the
 * directory.  The name rules are the tools' own (golang-migrate's
 * ^([0-9]+)_(.*)\.(down|up)\.(.*)$, popx's
 * ^(\d+)_([^.]+)(\.[a-z0-9]+)?(\.autocommit)?\.(up|down)\.(sql|fizz)$,
 * sqlx's splitn(2, '_') with an i64 version, dbmate's ^\d.*\.sql$ and
 * ^--\s*migrate:up lines, diesel's version_from_string(), Flyway's
 * prefix, version and "__" separator), written out by hand: no regex
 * engine is needed for these shapes.
 */
#include "proto/layout.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/file.h"

/* Largest file read: far above any migration (lint's limit too). */
#define S_MAX_FILE ((long long)64 * 1024 * 1024)

static const char *const s_tool_names[] = {
    "auto", "sql", "flotilla", "diesel", "golang-migrate", "pop", "sqlx",
    "dbmate", "flyway",
};

#define S_NTOOLS (sizeof(s_tool_names) / sizeof(s_tool_names[0]))

const char *
fl_layout_tool_name(fl_layout_tool tool)
{
    if ((size_t)tool >= S_NTOOLS)
        return "sql";
    return s_tool_names[tool];
}

int
fl_layout_tool_from_name(fl_layout_tool *out, const char *name,
                         fl_error_t *err)
{
    size_t i;

    for (i = 0; i < S_NTOOLS; i++) {
        if (strcmp(s_tool_names[i], name) == 0) {
            *out = (fl_layout_tool)i;
            return 0;
        }
    }
    FL_ERR(err, FL_EINVAL, "unknown migration layout \"%s\"", name);
    fl_error_set_hint(err, "use auto, sql, flotilla, diesel, golang-migrate, "
                           "pop, sqlx, dbmate or flyway");
    return FL_EINVAL;
}

/* ---- versions ---- */

static int
s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Compares two digit strings by value, whatever their length. */
static int
s_cmp_digits(const char *a, size_t alen, const char *b, size_t blen)
{
    int c;

    while (alen > 1 && *a == '0')
        a++, alen--;
    while (blen > 1 && *b == '0')
        b++, blen--;
    if (alen != blen)
        return alen < blen ? -1 : 1;
    c = memcmp(a, b, alen);
    return (c > 0) - (c < 0);
}

/* Flyway: dot-separated numbers, missing parts are zero ("1" == "1.0"). */
static int
s_cmp_flyway(const char *a, const char *b)
{
    while (*a || *b) {
        size_t al = strcspn(a, "."), bl = strcspn(b, ".");
        int c = s_cmp_digits(al ? a : "0", al ? al : 1, bl ? b : "0",
                             bl ? bl : 1);
        if (c != 0)
            return c;
        a += al + (a[al] == '.');
        b += bl + (b[bl] == '.');
    }
    return 0;
}

int
fl_layout_version_cmp(fl_layout_tool tool, const char *a, const char *b)
{
    int c;

    if (!a || !b)
        return (a == NULL) - (b == NULL);
    switch (tool) {
    case FL_LAYOUT_FLOTILLA:
    case FL_LAYOUT_GOLANG_MIGRATE:
    case FL_LAYOUT_SQLX:
        return s_cmp_digits(a, strlen(a), b, strlen(b));
    case FL_LAYOUT_FLYWAY:
        return s_cmp_flyway(a, b);
    default:
        c = strcmp(a, b);
        return (c > 0) - (c < 0);
    }
}

/* ---- files ---- */

static char *
s_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);

    if (strcmp(dir, ".") == 0) /* names relative to the working directory */
        return fl_strdup(name);
    if (n > 0 && dir[n - 1] == '/')
        return fl_asprintf("%s%s", dir, name);
    return fl_asprintf("%s/%s", dir, name);
}

static int
s_exists(const char *dir, const char *name, int want_dir)
{
    char *p = s_join(dir, name);
    struct stat sb;
    int ok = stat(p, &sb) == 0 &&
             (want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
    free(p);
    return ok;
}

/*
 * Reads a whole file of the tree under root (fl_file_within: not through
 * a link out of it, not a FIFO).  On failure returns NULL and sets *why
 * (new string) to the reason.  Lint parses the text as C strings, so a NUL byte is
 * refused rather than silently cutting the file short.
 */
static char *
s_read(const char *root, const char *path, char **why)
{
    FILE *f = NULL;
    char *buf = NULL;
    struct stat sb;
    fl_error_t err = FL_ERROR_INIT;
    size_t n;

    *why = NULL;
    if (fl_file_within(root, path, "file", &err) != 0) {
        *why = fl_strdup(err.message);
        fl_error_clear(&err);
        return NULL;
    }
    f = fopen(path, "rb");
    if (!f) {
        *why = fl_asprintf("could not open \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &sb) != 0) {
        *why = fl_asprintf("could not read \"%s\": %s", path, strerror(errno));
        goto cleanup;
    }
    if ((long long)sb.st_size > S_MAX_FILE) {
        *why = fl_asprintf("file \"%s\" is too large (%lld bytes; the limit "
                           "is %lld)", path, (long long)sb.st_size, S_MAX_FILE);
        goto cleanup;
    }
    buf = fl_malloc((size_t)sb.st_size + 1);
    n = fread(buf, 1, (size_t)sb.st_size, f);
    if (n != (size_t)sb.st_size || ferror(f)) {
        *why = fl_asprintf("could not read \"%s\": %s", path,
                           ferror(f) ? strerror(errno) : "short read");
        fl_free(&buf);
        goto cleanup;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        *why = fl_asprintf("file \"%s\" contains a NUL byte", path);
        fl_free(&buf);
    }
cleanup:
    fclose(f);
    return buf;
}

/* ---- building the result ---- */

typedef struct {
    fl_layout_t *out;
    const fl_layout_options_t *opts;
    int single;   /* the scan of one file or diesel folder: no recursion */
    const char *root; /* the directory scanned: no link may lead out of it */
} s_scan_t;

static fl_layout_source_t *
s_source(fl_layout_t *out, size_t first, const char *dir, fl_layout_tool tool)
{
    fl_layout_source_t *s;
    size_t i;

    for (i = first; i < out->count; i++)
        if (out->sources[i].tool == tool)
            return &out->sources[i];
    out->sources = fl_reallocarray(out->sources, out->count + 1,
                                   sizeof(*out->sources));
    s = &out->sources[out->count++];
    memset(s, 0, sizeof(*s));
    s->dir = fl_strdup(dir);
    s->tool = tool;
    return s;
}

static fl_layout_migration_t *
s_add(fl_layout_source_t *src, const char *version, size_t vlen,
      const char *name, size_t nlen, const char *label)
{
    fl_layout_migration_t *m;

    src->items = fl_reallocarray(src->items, src->count + 1,
                                 sizeof(*src->items));
    m = &src->items[src->count++];
    memset(m, 0, sizeof(*m));
    m->tool = src->tool;
    m->version = version ? fl_strndup(version, vlen) : NULL;
    m->name = fl_strndup(name, nlen);
    m->label = fl_strdup(label);
    return m;
}

static void
s_problem(fl_layout_migration_t *m, const char *path, int line, char *why)
{
    if (m->problem) { /* keep the first: it is usually the cause */
        free(why);
        return;
    }
    m->problem = why;
    m->problem_path = fl_strdup(path);
    m->problem_line = line;
}

/* Sets a part to the file at path, text owned by the caller (copied). */
static void
s_part(fl_layout_migration_t *m, fl_layout_part_t *part, const char *path,
       const char *text, const char *why, int line, fl_layout_tx tx)
{
    part->path = fl_strdup(path);
    part->text = text ? fl_strdup(text) : NULL;
    part->line = line;
    part->tx = tx;
    if (!text)
        s_problem(m, path, 0, fl_strdup(why ? why : "could not read the file"));
}

static void
s_skip(fl_layout_t *out, const char *path, const char *why)
{
    out->skipped = fl_reallocarray(out->skipped, out->nskipped + 1,
                                   sizeof(*out->skipped));
    out->skipped[out->nskipped].path = fl_strdup(path);
    out->skipped[out->nskipped].why = why;
    out->nskipped++;
}

/* ---- one directory's files ---- */

typedef struct {
    char *name;
    char *path;
    const char *root; /* the scan's (s_scan_t.root) */
    char *text;  /* NULL until read, or when unreadable (why says) */
    char *why;
    int read;
    int used;
} s_file_t;

typedef struct {
    s_scan_t *scan;
    const char *dir;
    s_file_t *files;
    size_t nfiles;
    size_t first_source; /* sources of this directory start here */
    int project;         /* 0 unknown yet, else FL_LAYOUT_SQLX / GOLANG_MIGRATE / SQL */
} s_dir_t;

static const char *
s_text(s_file_t *f)
{
    if (!f->read) {
        f->read = 1;
        f->text = s_read(f->root, f->path, &f->why);
    }
    return f->text;
}

static int
s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/*
 * The kind of project around dir: the nearest enclosing directory with
 * Cargo.toml (sqlx, a Rust project) or go.mod (golang-migrate).
 */
static int
s_project(s_dir_t *d)
{
    char real[PATH_MAX];
    char *p;

    if (d->project)
        return d->project;
    d->project = FL_LAYOUT_SQL;
    if (!realpath(d->dir, real))
        return d->project;
    for (;;) {
        if (s_exists(real, "Cargo.toml", 0)) {
            d->project = FL_LAYOUT_SQLX;
            break;
        }
        if (s_exists(real, "go.mod", 0)) {
            d->project = FL_LAYOUT_GOLANG_MIGRATE;
            break;
        }
        p = strrchr(real, '/');
        if (!p || p == real)
            break;
        *p = '\0';
    }
    return d->project;
}

/* The file starts with sqlx's "-- no-transaction" (sqlx: starts_with). */
static int
s_sqlx_no_tx(s_file_t *f)
{
    const char *t = s_text(f);
    return t && strncmp(t, "-- no-transaction", 17) == 0;
}

/* golang-migrate, sqlx and popx name parts: N_name....(up|down).ext */
typedef struct {
    const char *ver;
    size_t vlen;
    const char *name;
    size_t nlen;
    const char *dialect; /* pop: the segment before .up/.down, or NULL */
    size_t dlen;
    int autocommit;
    int down;
    int fizz;
} s_updown_t;

/* Digits then '_': the length of the digits, 0 when it is not so. */
static size_t
s_version_prefix(const char *name)
{
    size_t i = 0;
    while (s_is_digit(name[i]))
        i++;
    return i > 0 && name[i] == '_' ? i : 0;
}

/*
 * popx: ^(\d+)_([^.]+)(\.[a-z0-9]+)?(\.autocommit)?\.(up|down)\.(sql|fizz)$
 * (an ".autocommit" segment is taken for the flag, not a dialect).
 */
static int
s_parse_pop(s_updown_t *u, const char *name)
{
    size_t v = s_version_prefix(name);
    const char *p, *seg[4];
    size_t nseg = 0, i;

    if (!v)
        return 0;
    memset(u, 0, sizeof(*u));
    u->ver = name;
    u->vlen = v;
    u->name = name + v + 1;
    u->nlen = strcspn(u->name, ".");
    if (u->nlen == 0 || u->name[u->nlen] != '.')
        return 0;
    p = u->name + u->nlen + 1;
    while (*p && nseg < 4) {
        seg[nseg++] = p;
        p += strcspn(p, ".");
        if (*p == '.')
            p++;
    }
    if (*p || nseg < 2)
        return 0;
    if (strcmp(seg[nseg - 1], "sql") == 0)
        u->fizz = 0;
    else if (strcmp(seg[nseg - 1], "fizz") == 0)
        u->fizz = 1;
    else
        return 0;
    if (strncmp(seg[nseg - 2], "up.", 3) == 0)
        u->down = 0;
    else if (strncmp(seg[nseg - 2], "down.", 5) == 0)
        u->down = 1;
    else
        return 0;
    for (i = 0; i + 2 < nseg; i++) {
        size_t len = strcspn(seg[i], ".");
        if (len == 10 && strncmp(seg[i], "autocommit", 10) == 0 && i + 3 == nseg) {
            u->autocommit = 1;
        } else if (i == 0 && len > 0) {
            size_t k;
            for (k = 0; k < len; k++)
                if (!((seg[i][k] >= 'a' && seg[i][k] <= 'z') || s_is_digit(seg[i][k])))
                    return 0;
            u->dialect = seg[i];
            u->dlen = len;
        } else {
            return 0;
        }
    }
    return 1;
}

/* golang-migrate: ^([0-9]+)_(.*)\.(down|up)\.(.*)$ with extension sql. */
static int
s_parse_updown(s_updown_t *u, const char *name)
{
    size_t v = s_version_prefix(name), n = strlen(name);
    const char *rest;

    memset(u, 0, sizeof(*u));
    if (!v || !s_ends_with(name, ".sql"))
        return 0;
    rest = name + v + 1;
    u->ver = name;
    u->vlen = v;
    u->name = rest;
    if (n - v - 1 >= 7 && s_ends_with(name, ".up.sql")) {
        u->nlen = (size_t)(name + n - 7 - rest);
    } else if (n - v - 1 >= 9 && s_ends_with(name, ".down.sql")) {
        u->nlen = (size_t)(name + n - 9 - rest);
        u->down = 1;
    } else {
        return 0;
    }
    return 1;
}

static int
s_pop_dialect_is(const s_updown_t *u, const char *d)
{
    return u->dialect && u->dlen == strlen(d) && strncmp(u->dialect, d, u->dlen) == 0;
}

static int
s_pop_is_postgres(const s_updown_t *u)
{
    return s_pop_dialect_is(u, "postgres") || s_pop_dialect_is(u, "postgresql") ||
           s_pop_dialect_is(u, "pg");
}

/* A name only pop uses: a known dialect, .autocommit, or .fizz. */
static int
s_popish(const char *name)
{
    static const char *const dialects[] = {
        "postgres", "postgresql", "pg", "cockroach", "cockroachdb", "crdb",
        "mysql", "mariadb", "sqlite3", "sqlite", NULL,
    };
    s_updown_t u;
    size_t i;

    if (!s_parse_pop(&u, name))
        return 0;
    if (u.autocommit || u.fizz)
        return 1;
    for (i = 0; dialects[i]; i++)
        if (s_pop_dialect_is(&u, dialects[i]))
            return 1;
    return 0;
}

/* A line "--", blanks, word (e.g. "migrate:up"), then a blank or the end:
 * the offset of its start, or -1. */
static long
s_find_marker_line(const char *text, const char *word, const char **after)
{
    const char *line = text;
    size_t wl = strlen(word);

    while (line && *line) {
        const char *p = line;
        if (p[0] == '-' && p[1] == '-') {
            p += 2;
            while (*p == ' ' || *p == '\t')
                p++;
            if (strncmp(p, word, wl) == 0 &&
                (p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\t' ||
                 p[wl] == '\r' || p[wl] == '\n')) {
                if (after)
                    *after = p + wl;
                return line - text;
            }
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

static int
s_line_of(const char *text, size_t offset)
{
    int line = 1;
    size_t i;
    for (i = 0; i < offset && text[i]; i++)
        line += text[i] == '\n';
    return line;
}

/* ---- the tools ---- */

static void
s_flotilla(s_dir_t *d, s_file_t *f)
{
    fl_layout_source_t *src = s_source(d->scan->out, d->first_source, d->dir,
                                       FL_LAYOUT_FLOTILLA);
    size_t v = s_version_prefix(f->name);
    fl_layout_migration_t *m = s_add(src, f->name, v, f->name + v + 1,
                                     strlen(f->name) - v - 5, f->name);
    fl_migration_t *mig = fl_calloc(1, sizeof(*mig));
    fl_error_t err = FL_ERROR_INIT;
    fl_layout_tx tx;

    if (fl_migration_parse(mig, f->name, f->text, strlen(f->text), &err) != 0) {
        s_problem(m, f->path, fl_migration_error_line(&err), err.detail
                                    ? fl_asprintf("%s: %s", err.message, err.detail)
                                    : fl_strdup(err.message));
        fl_migration_release(mig);
        free(mig);
        fl_error_clear(&err);
        m->up.path = fl_strdup(f->path);
        return;
    }
    free(m->version);
    m->version = fl_strdup(mig->version.text);
    tx = mig->no_transaction ? FL_LAYOUT_TX_NONE : FL_LAYOUT_TX_WRAPPED;
    m->up.path = fl_strdup(f->path);
    m->up.text = fl_strdup(mig->up ? mig->up : "");
    m->up.line = mig->up_line;
    m->up.tx = tx;
    if (mig->down) {
        m->down.path = fl_strdup(f->path);
        m->down.text = fl_strdup(mig->down);
        m->down.line = mig->down_line;
        m->down.tx = tx;
    }
    m->flotilla = mig;
}

/*
 * A flotilla repeatable migration: R__name.sql with flotilla's section
 * markers (Flyway's R__ files have none), read as apply reads it
 * (fl_migration_parse_repeatable): no version, no down.
 */
static void
s_flotilla_repeatable(s_dir_t *d, s_file_t *f)
{
    fl_layout_source_t *src = s_source(d->scan->out, d->first_source, d->dir,
                                       FL_LAYOUT_FLOTILLA);
    fl_layout_migration_t *m = s_add(src, NULL, 0, f->name + 3,
                                     strlen(f->name) - 7, f->name);
    fl_migration_t *mig = fl_calloc(1, sizeof(*mig));
    fl_error_t err = FL_ERROR_INIT;

    m->repeatable = 1;
    m->up.path = fl_strdup(f->path);
    if (fl_migration_parse_repeatable(mig, f->name, f->text, strlen(f->text),
                                      &err) != 0) {
        s_problem(m, f->path, fl_migration_error_line(&err), err.detail
                                    ? fl_asprintf("%s: %s", err.message,
                                                  err.detail)
                                    : fl_strdup(err.message));
        free(mig);
        fl_error_clear(&err);
        return;
    }
    m->up.text = fl_strdup(mig->up);
    m->up.line = mig->up_line;
    m->up.tx = mig->no_transaction ? FL_LAYOUT_TX_NONE : FL_LAYOUT_TX_WRAPPED;
    m->flotilla = mig;
}

/* dbmate: "-- migrate:up [opts]" ... "-- migrate:down [opts]". */
static void
s_dbmate(s_dir_t *d, s_file_t *f)
{
    fl_layout_source_t *src = s_source(d->scan->out, d->first_source, d->dir,
                                       FL_LAYOUT_DBMATE);
    const char *t = f->text, *up_opts = NULL, *down_opts = NULL;
    size_t v = strspn(f->name, "0123456789");
    const char *name = f->name[v] == '_' ? f->name + v + 1 : f->name + v;
    fl_layout_migration_t *m = s_add(src, f->name, v, name,
                                     strlen(name) > 4 ? strlen(name) - 4 : 0,
                                     f->name);
    long up = s_find_marker_line(t, "migrate:up", &up_opts);
    long down = s_find_marker_line(t, "migrate:down", &down_opts);
    const char *p;

    m->up.path = fl_strdup(f->path);
    if (up < 0) {
        s_problem(m, f->path, 0, fl_strdup("dbmate requires each migration to "
                                           "define an up block with \"-- "
                                           "migrate:up\""));
        return;
    }
    for (p = t; p < t + up; p = strchr(p, '\n') + 1) {
        const char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r')
            q++;
        if (*q != '\n' && !(q[0] == '-' && q[1] == '-')) {
            s_problem(m, f->path, s_line_of(t, (size_t)(p - t)),
                      fl_strdup("dbmate does not support statements preceding "
                                "the \"-- migrate:up\" block"));
            break;
        }
    }
    if (down >= 0 && down < up) {
        s_problem(m, f->path, s_line_of(t, (size_t)down),
                  fl_strdup("dbmate requires \"-- migrate:up\" to appear "
                            "before \"-- migrate:down\""));
        return;
    }
    if (down < 0)
        s_problem(m, f->path, 0, fl_strdup("dbmate requires each migration to "
                                           "define a down block with \"-- "
                                           "migrate:down\""));
    {
        size_t end = down < 0 ? strlen(t) : (size_t)down;
        const char *eol = strchr(up_opts, '\n');
        size_t optlen = eol ? (size_t)(eol - up_opts) : strlen(up_opts);
        char *opts = fl_strndup(up_opts, optlen);
        m->up.text = fl_strndup(t + up, end - (size_t)up);
        m->up.line = s_line_of(t, (size_t)up);
        m->up.tx = strstr(opts, "transaction:false") ? FL_LAYOUT_TX_IMPLICIT
                                                     : FL_LAYOUT_TX_WRAPPED;
        free(opts);
    }
    if (down >= 0) {
        const char *eol = strchr(down_opts, '\n');
        size_t optlen = eol ? (size_t)(eol - down_opts) : strlen(down_opts);
        char *opts = fl_strndup(down_opts, optlen);
        m->down.path = fl_strdup(f->path);
        m->down.text = fl_strdup(t + down);
        m->down.line = s_line_of(t, (size_t)down);
        m->down.tx = strstr(opts, "transaction:false") ? FL_LAYOUT_TX_IMPLICIT
                                                       : FL_LAYOUT_TX_WRAPPED;
        free(opts);
    }
}

static void
s_plain(s_dir_t *d, s_file_t *f)
{
    fl_layout_source_t *src = s_source(d->scan->out, d->first_source, d->dir,
                                       FL_LAYOUT_SQL);
    fl_layout_migration_t *m = s_add(src, NULL, 0, f->name, strlen(f->name),
                                     f->name);
    s_part(m, &m->up, f->path, f->text, f->why, 1, FL_LAYOUT_TX_NONE);
}

/*
 * The migration of version ver (digits, compared by value) in src, made
 * when missing.
 */
static fl_layout_migration_t *
s_by_version(fl_layout_source_t *src, const s_updown_t *u, const char *label)
{
    size_t i;

    for (i = 0; i < src->count; i++) {
        const char *v = src->items[i].version;
        if (v && s_cmp_digits(v, strlen(v), u->ver, u->vlen) == 0)
            return &src->items[i];
    }
    return s_add(src, u->ver, u->vlen, u->name, u->nlen, label);
}

/* One golang-migrate, sqlx or pop file into its migration's up or down. */
static void
s_updown_file(fl_layout_source_t *src, s_file_t *f, const s_updown_t *u,
              fl_layout_tx tx)
{
    fl_layout_migration_t *m = s_by_version(src, u, f->name);
    fl_layout_part_t *part = u->down ? &m->down : &m->up;

    if (part->path) {
        s_problem(m, f->path, 0,
                  fl_asprintf("two %s files for version %.*s: \"%s\" and \"%s\"",
                              u->down ? "down" : "up", (int)u->vlen, u->ver,
                              part->path, f->path));
        return;
    }
    if (!u->down) { /* the up file names the migration */
        free(m->name);
        free(m->label);
        m->name = fl_strndup(u->name, u->nlen);
        m->label = fl_strdup(f->name);
    }
    s_part(m, part, f->path, f->text, f->why, 1, tx);
}

static void
s_pop(s_dir_t *d)
{
    fl_layout_source_t *src = NULL;
    size_t i, npg = 0;

    /* First the PostgreSQL files, then the dialect-neutral ones where no
     * PostgreSQL file has the version (popx SortAndFilter). */
    for (int pass = 0; pass < 2; pass++) {
        for (i = 0; i < d->nfiles; i++) {
            s_file_t *f = &d->files[i];
            s_updown_t u;
            fl_layout_migration_t *m = NULL;
            size_t k;

            if (f->used || !s_parse_pop(&u, f->name))
                continue;
            if (pass == 0 && !s_pop_is_postgres(&u))
                continue;
            if (pass == 1 && u.dialect) {
                f->used = 1;
                s_skip(d->scan->out, f->path,
                       "pop migration for another database");
                continue;
            }
            f->used = 1;
            if (u.fizz) {
                s_skip(d->scan->out, f->path,
                       "pop fizz migration (not SQL)");
                continue;
            }
            if (!src)
                src = s_source(d->scan->out, d->first_source, d->dir,
                               FL_LAYOUT_POP);
            for (k = 0; pass == 1 && k < npg; k++)
                if (strlen(src->items[k].version) == u.vlen &&
                    strncmp(src->items[k].version, u.ver, u.vlen) == 0)
                    m = &src->items[k];
            if (m) { /* a PostgreSQL file has this version: it wins */
                s_skip(d->scan->out, f->path,
                       "pop migration replaced by its PostgreSQL file");
                continue;
            }
            (void)s_text(f);
            s_updown_file(src, f, &u,
                          u.autocommit ? FL_LAYOUT_TX_IMPLICIT : FL_LAYOUT_TX_WRAPPED);
        }
        npg = src ? src->count : 0;
    }
}

/* Flyway: V1_2__desc.sql, U1_2__desc.sql, B1__desc.sql, R__desc.sql. */
static int
s_parse_flyway(const char *name, char *prefix, char **version,
               const char **desc, size_t *dlen)
{
    const char *sep, *p;
    size_t n = strlen(name);

    if (n < 8 || !s_ends_with(name, ".sql") || !strchr("VUBR", name[0]))
        return 0;
    sep = strstr(name + 1, "__");
    if (!sep || sep + 2 >= name + n - 4)
        return 0;
    *prefix = name[0];
    *desc = sep + 2;
    *dlen = (size_t)(name + n - 4 - *desc);
    if (name[0] == 'R') {
        *version = NULL;
        return sep == name + 1;
    }
    if (sep == name + 1 || !s_is_digit(name[1]))
        return 0;
    for (p = name + 1; p < sep; p++)
        if (!s_is_digit(*p) && *p != '.' && *p != '_')
            return 0;
    *version = fl_strndup(name + 1, (size_t)(sep - name - 1));
    for (p = *version; *p; p++)
        if (*p == '_')
            *(char *)p = '.';
    return 1;
}

/*
 * The value of key in a settings file of lines "key = value" (Java
 * properties, TOML): the last line that sets it, or NULL.  A line whose
 * first non-blank character is one of comments is a comment; the key is
 * the whole first word (not part of a longer one), followed by blanks
 * and '=' or ':'.  Before, a strstr anywhere in the text read a
 * commented-out setting as set (found by an audit).
 */
static const char *
s_setting(const char *text, const char *key, const char *comments)
{
    const char *found = NULL;
    size_t klen = strlen(key);

    for (const char *line = text; line && *line;) {
        const char *p = line;
        const char *next = strchr(line, '\n');

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '\0' && strchr(comments, *p) == NULL &&
            strncmp(p, key, klen) == 0) {
            p += klen;
            if (*p == ' ' || *p == '\t' || *p == '=' || *p == ':') {
                while (*p == ' ' || *p == '\t')
                    p++;
                if (*p == '=' || *p == ':') {
                    p++;
                    while (*p == ' ' || *p == '\t')
                        p++;
                    found = p;
                }
            }
        }
        line = next ? next + 1 : NULL;
    }
    return found;
}

/* V1__x.sql.conf with executeInTransaction=false: outside a transaction. */
static fl_layout_tx
s_flyway_tx(const char *root, const char *path)
{
    char *conf = fl_asprintf("%s.conf", path), *why = NULL, *text;
    fl_layout_tx tx = FL_LAYOUT_TX_AUTO;
    struct stat sb;

    if (stat(conf, &sb) == 0 && (text = s_read(root, conf, &why)) != NULL) {
        const char *k = s_setting(text, "executeInTransaction", "#!");
        if (k) {
            if (strncmp(k, "false", 5) == 0)
                tx = FL_LAYOUT_TX_NONE;
            else if (strncmp(k, "true", 4) == 0)
                tx = FL_LAYOUT_TX_WRAPPED;
        }
        free(text);
    }
    free(why);
    free(conf);
    return tx;
}

static void
s_flyway(s_dir_t *d, s_file_t *f, char prefix, char *version, const char *desc,
         size_t dlen)
{
    fl_layout_source_t *src = s_source(d->scan->out, d->first_source, d->dir,
                                       FL_LAYOUT_FLYWAY);
    fl_layout_migration_t *m = NULL;
    size_t i;

    /* U pairs with the V of its version; V may come after U in name order. */
    for (i = 0; version && i < src->count; i++) {
        fl_layout_migration_t *x = &src->items[i];
        if (x->version && !x->repeatable && x->label[0] != 'B' &&
            s_cmp_flyway(x->version, version) == 0 &&
            (prefix == 'U' || (prefix == 'V' && !x->up.path)))
            m = x;
        else if (x->version && prefix == 'V' && x->label[0] == 'V' &&
                 s_cmp_flyway(x->version, version) == 0)
            s_problem(x, f->path, 0,
                      fl_asprintf("Flyway finds more than one migration with "
                                  "version %s: \"%s\" and \"%s\"", version,
                                  x->up.path, f->path));
    }
    if (!m) {
        m = s_add(src, version, version ? strlen(version) : 0, desc, dlen,
                  f->name);
        m->repeatable = prefix == 'R';
    }
    if (prefix == 'U' && m->down.path) {
        /* Flyway refuses it; before, the later one became the down (found
         * by an audit). */
        s_problem(m, f->path, 0,
                  fl_asprintf("Flyway finds more than one undo migration "
                              "with version %s: \"%s\" and \"%s\"", version,
                              m->down.path, f->path));
    } else if (prefix == 'U') {
        s_part(m, &m->down, f->path, f->text, f->why, 1, s_flyway_tx(f->root, f->path));
    } else {
        free(m->label);
        m->label = fl_strdup(f->name);
        free(m->name);
        m->name = fl_strndup(desc, dlen);
        s_part(m, &m->up, f->path, f->text, f->why, 1, s_flyway_tx(f->root, f->path));
    }
}

/* sqlx: <i64 > 0>_<description>.sql, .up.sql or .down.sql. */
static int
s_sqlx_version(const char *name, size_t *vlen)
{
    size_t v = s_version_prefix(name);
    int64_t x = 0;
    size_t i;

    if (!v || !s_ends_with(name, ".sql") || strlen(name) < v + 6)
        return 0;
    for (i = 0; i < v; i++) {
        if (x > (INT64_MAX - 9) / 10)
            return 0;
        x = x * 10 + (name[i] - '0');
    }
    *vlen = v;
    return x > 0;
}

static void
s_sqlx(s_dir_t *d, s_file_t *f)
{
    fl_layout_source_t *src = s_source(d->scan->out, d->first_source, d->dir,
                                       FL_LAYOUT_SQLX);
    fl_layout_tx tx = s_sqlx_no_tx(f) ? FL_LAYOUT_TX_IMPLICIT : FL_LAYOUT_TX_WRAPPED;
    s_updown_t u;
    size_t v = 0;

    if (!s_parse_updown(&u, f->name)) { /* simple: up only */
        (void)s_sqlx_version(f->name, &v);
        memset(&u, 0, sizeof(u));
        u.ver = f->name;
        u.vlen = v;
        u.name = f->name + v + 1;
        u.nlen = strlen(u.name) - 4;
    }
    s_updown_file(src, f, &u, tx);
}

static int
s_sqlx_context(s_dir_t *d)
{
    size_t i;

    if (d->scan->opts->prefer == FL_LAYOUT_SQLX)
        return 1;
    if (d->scan->opts->prefer != FL_LAYOUT_AUTO)
        return 0;
    for (i = 0; i < d->nfiles; i++)
        if (s_ends_with(d->files[i].name, ".sql") &&
            s_version_prefix(d->files[i].name) && s_sqlx_no_tx(&d->files[i]))
            return 1;
    return s_project(d) == FL_LAYOUT_SQLX;
}

static int
s_has_marker(const char *text, const char *prefix)
{
    static const char *const flotilla[] = {
        "flotilla:up", "flotilla:down", "flotilla:options", "flotilla:validate",
        "flotilla:verify", NULL,
    };
    size_t i;

    if (strcmp(prefix, "flotilla") != 0)
        return s_find_marker_line(text, prefix, NULL) >= 0;
    for (i = 0; flotilla[i]; i++)
        if (s_find_marker_line(text, flotilla[i], NULL) >= 0)
            return 1;
    return 0;
}

static int
s_cmp_name(const void *a, const void *b)
{
    return strcmp(((const s_file_t *)a)->name, ((const s_file_t *)b)->name);
}

static int
s_cmp_migration(const void *a, const void *b, fl_layout_tool tool)
{
    const fl_layout_migration_t *x = a, *y = b;
    int c;

    if (x->repeatable != y->repeatable)
        return x->repeatable - y->repeatable;
    if (tool == FL_LAYOUT_DBMATE || tool == FL_LAYOUT_SQL || x->repeatable)
        return strcmp(x->label, y->label); /* dbmate sorts file names */
    c = fl_layout_version_cmp(tool, x->version, y->version);
    if (c == 0 && tool == FL_LAYOUT_FLYWAY) /* baseline before versioned */
        c = (x->label[0] != 'B') - (y->label[0] != 'B');
    return c ? c : strcmp(x->label, y->label);
}

#define S_CMP(tool)                                                          \
    static int s_cmp_##tool(const void *a, const void *b)                   \
    {                                                                        \
        return s_cmp_migration(a, b, FL_LAYOUT_##tool);                      \
    }
S_CMP(SQL)
S_CMP(FLOTILLA)
S_CMP(DIESEL)
S_CMP(GOLANG_MIGRATE)
S_CMP(POP)
S_CMP(SQLX)
S_CMP(DBMATE)
S_CMP(FLYWAY)
#undef S_CMP

static void
s_sort_source(fl_layout_source_t *src)
{
    static int (*const cmp[])(const void *, const void *) = {
        s_cmp_SQL, s_cmp_SQL, s_cmp_FLOTILLA, s_cmp_DIESEL,
        s_cmp_GOLANG_MIGRATE, s_cmp_POP, s_cmp_SQLX, s_cmp_DBMATE,
        s_cmp_FLYWAY,
    };
    size_t i;

    if (src->count > 1)
        qsort(src->items, src->count, sizeof(*src->items), cmp[src->tool]);
    for (i = 0; i < src->count; i++) {
        fl_layout_migration_t *m = &src->items[i];
        if (!m->up.path && m->down.path)
            s_problem(m, m->down.path, 0,
                      fl_asprintf("down migration \"%s\" has no up migration",
                                  m->down.path));
    }
}

/* Files of one directory, by the first rule that takes each. */
static void
s_files(s_dir_t *d)
{
    const fl_layout_options_t *o = d->scan->opts;
    int pop = 0, sqlx, dbmate = 0;
    size_t i;

    for (i = 0; i < d->nfiles; i++)
        pop |= s_popish(d->files[i].name);
    if (o->prefer == FL_LAYOUT_SQL) {
        for (i = 0; i < d->nfiles; i++)
            if (s_ends_with(d->files[i].name, ".sql")) {
                (void)s_text(&d->files[i]);
                s_plain(d, &d->files[i]);
            }
        return;
    }
    if (pop || o->prefer == FL_LAYOUT_POP)
        s_pop(d);
    sqlx = s_sqlx_context(d);
    /*
     * A dbmate directory (a digit-named file with "-- migrate:up"): to
     * dbmate every .sql file named with digits first is a migration, and
     * one without the marker is refused by s_dbmate as dbmate refuses
     * it (before, it was read as a plain SQL file, left out, and the
     * ones after it ran: found by an audit).
     */
    for (i = 0; i < d->nfiles && !dbmate; i++) {
        s_file_t *f = &d->files[i];
        dbmate = !f->used && s_ends_with(f->name, ".sql") &&
                 s_is_digit(f->name[0]) && s_text(f) != NULL &&
                 s_has_marker(f->text, "migrate:up");
    }
    for (i = 0; i < d->nfiles; i++) {
        s_file_t *f = &d->files[i];
        char prefix = 0, *version = NULL;
        const char *desc = NULL;
        size_t dlen = 0, v = 0;
        s_updown_t u;

        if (f->used || !s_ends_with(f->name, ".sql"))
            continue;
        f->used = 1;
        (void)s_text(f);
        if (fl_migration_is_repeatable_name(f->name) && f->text &&
            s_has_marker(f->text, "flotilla")) {
            s_flotilla_repeatable(d, f);
        } else if (s_parse_flyway(f->name, &prefix, &version, &desc,
                                  &dlen)) {
            s_flyway(d, f, prefix, version, desc, dlen);
            free(version);
        } else if (s_parse_updown(&u, f->name)) {
            if (sqlx) {
                s_sqlx(d, f);
            } else {
                fl_layout_source_t *src = s_source(
                    d->scan->out, d->first_source, d->dir, FL_LAYOUT_GOLANG_MIGRATE);
                s_updown_file(src, f, &u, FL_LAYOUT_TX_IMPLICIT);
            }
        } else if (f->text && s_is_digit(f->name[0]) &&
                   s_version_prefix(f->name) && s_has_marker(f->text, "flotilla")) {
            s_flotilla(d, f);
        } else if (f->text && s_is_digit(f->name[0]) &&
                   (dbmate || s_has_marker(f->text, "migrate:up"))) {
            s_dbmate(d, f);
        } else if (sqlx && s_sqlx_version(f->name, &v)) {
            s_sqlx(d, f);
        } else {
            s_plain(d, f);
        }
    }
}

/* A diesel migration folder: <version>_<name>/up.sql (down.sql, metadata.toml). */
static void
s_diesel(s_dir_t *d, const char *sub)
{
    fl_layout_source_t *src = s_source(d->scan->out, d->first_source, d->dir,
                                       FL_LAYOUT_DIESEL);
    char *folder = s_join(d->dir, sub);
    char *up = s_join(folder, "up.sql"), *down = s_join(folder, "down.sql");
    char *meta = s_join(folder, "metadata.toml");
    size_t vl = strcspn(sub, "_"), i, k = 0;
    char *version = fl_strndup(sub, vl), *why = NULL, *text;
    const char *name = sub[vl] ? sub + vl + 1 : "";
    fl_layout_tx tx = FL_LAYOUT_TX_WRAPPED;
    fl_layout_migration_t *m;
    fl_error_t err = FL_ERROR_INIT;
    struct stat sb;

    for (i = 0; version[i]; i++) /* diesel: version_from_string drops '-' */
        if (version[i] != '-')
            version[k++] = version[i];
    version[k] = '\0';
    m = s_add(src, version, k, name, strlen(name), sub);
    /* A link (diesel follows it) is read only when it stays in the tree:
     * fl_file_within() sees its files' last component alone. */
    if (fl_dir_within(d->scan->root, folder, "diesel migration folder",
                      &err) != 0) {
        s_problem(m, folder, 0, fl_strdup(err.message));
        fl_error_clear(&err);
        goto done;
    }
    if (stat(meta, &sb) == 0 &&
        (text = s_read(d->scan->root, meta, &why)) != NULL) {
        const char *p = s_setting(text, "run_in_transaction", "#");
        if (p) {
            if (strncmp(p, "false", 5) == 0) /* run with batch_execute */
                tx = FL_LAYOUT_TX_IMPLICIT;
        }
        free(text);
    }
    fl_free(&why);
    text = s_read(d->scan->root, up, &why);
    s_part(m, &m->up, up, text, why, 1, tx);
    free(text);
    fl_free(&why);
    if (stat(down, &sb) == 0) {
        text = s_read(d->scan->root, down, &why);
        s_part(m, &m->down, down, text, why, 1, tx);
        free(text);
        fl_free(&why);
    }
done:
    free(version);
    free(meta);
    free(down);
    free(up);
    free(folder);
}

static int
s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * One directory: its diesel folders and files, then (when recursive) its
 * other subdirectories.  only_folder limits it to that one diesel folder
 * (the scan of one diesel migration or of one of its files).
 */
static int
s_walk(s_scan_t *scan, const char *dir, const char *only_folder)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    s_dir_t d;
    char **subdirs = NULL;
    size_t nsub = 0, i;

    if (!dp)
        return -1;
    memset(&d, 0, sizeof(d));
    d.scan = scan;
    d.dir = dir;
    d.first_source = scan->out->count;
    while ((e = readdir(dp)) != NULL) {
        char *path;
        struct stat sb;

        if (e->d_name[0] == '.' || strcmp(e->d_name, "node_modules") == 0)
            continue;
        path = s_join(dir, e->d_name);
        if (lstat(path, &sb) != 0) {
            free(path);
            continue;
        }
        /*
         * A link to a diesel migration folder is one to diesel, which
         * follows it (before, it was left out without a word); it is
         * never walked (no loops), and s_diesel reads it only when it
         * stays in the tree.  Other links to directories are not
         * followed.
         */
        if (S_ISDIR(sb.st_mode) ||
            (S_ISLNK(sb.st_mode) && s_exists(dir, e->d_name, 1) &&
             s_exists(path, "up.sql", 0))) {
            subdirs = fl_reallocarray(subdirs, nsub + 1, sizeof(char *));
            subdirs[nsub++] = fl_strdup(e->d_name);
        } else if (!only_folder &&
                   !(S_ISLNK(sb.st_mode) && stat(path, &sb) == 0 &&
                     S_ISDIR(sb.st_mode))) {
            /*
             * Every other entry is a file of the directory, a regular
             * file or not: a link to nothing or a FIFO named as a
             * migration is then refused when read (s_read), naming it,
             * as its tool lists it and fails to open it.  Before, both
             * were left out without a word, and the history read
             * without them (found by an audit).
             */
            d.files = fl_reallocarray(d.files, d.nfiles + 1, sizeof(*d.files));
            memset(&d.files[d.nfiles], 0, sizeof(*d.files));
            d.files[d.nfiles].name = fl_strdup(e->d_name);
            d.files[d.nfiles].path = path;
            d.files[d.nfiles].root = scan->root;
            path = NULL;
            d.nfiles++;
        }
        free(path);
    }
    closedir(dp);
    if (d.nfiles > 1)
        qsort(d.files, d.nfiles, sizeof(*d.files), s_cmp_name);
    if (nsub > 1)
        qsort(subdirs, nsub, sizeof(char *), s_cmp_str);
    /* Diesel folders first: they belong to this directory's source. */
    for (i = 0; i < nsub; i++) {
        char *sub;
        if (only_folder && strcmp(only_folder, subdirs[i]) != 0)
            continue;
        sub = s_join(dir, subdirs[i]);
        if (s_exists(sub, "up.sql", 0)) {
            s_diesel(&d, subdirs[i]);
            fl_free(&subdirs[i]);
        }
        free(sub);
    }
    s_files(&d);
    for (i = scan->out->count; i-- > d.first_source;)
        s_sort_source(&scan->out->sources[i]);
    for (i = 0; i < d.nfiles; i++) {
        free(d.files[i].name);
        free(d.files[i].path);
        free(d.files[i].text);
        free(d.files[i].why);
    }
    free(d.files);
    for (i = 0; i < nsub; i++) {
        if (subdirs[i] && scan->opts->recursive && !scan->single) {
            char *sub = s_join(dir, subdirs[i]);
            (void)s_walk(scan, sub, NULL); /* an unreadable subdirectory */
            free(sub);                     /* holds nothing to list */
        }
        free(subdirs[i]);
    }
    free(subdirs);
    return 0;
}

static int
s_same_file(const char *path, const struct stat *want)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 && sb.st_dev == want->st_dev &&
           sb.st_ino == want->st_ino;
}

static void
s_part_release(fl_layout_part_t *p)
{
    free(p->path);
    free(p->text);
    memset(p, 0, sizeof(*p));
}

static void
s_migration_release(fl_layout_migration_t *m)
{
    free(m->version);
    free(m->name);
    free(m->label);
    s_part_release(&m->up);
    s_part_release(&m->down);
    if (m->flotilla) {
        fl_migration_release(m->flotilla);
        free(m->flotilla);
    }
    free(m->problem);
    free(m->problem_path);
}

/*
 * After the scan of one file's folder: keeps only the part that is that
 * file (want), the migration's other part dropped (unless whole and want
 * is its up), and what was skipped of it.  A whole diesel folder (want a
 * directory) keeps its migration.
 */
static void
s_keep_only(fl_layout_t *out, const struct stat *want, int whole)
{
    size_t i, k, n;

    for (i = 0; i < out->count; i++) {
        fl_layout_source_t *s = &out->sources[i];
        for (k = n = 0; k < s->count; k++) {
            fl_layout_migration_t *m = &s->items[k];
            int up = s_same_file(m->up.path, want);
            int down = s_same_file(m->down.path, want);
            if (S_ISDIR(want->st_mode) || up || down ||
                s_same_file(m->problem_path, want)) {
                if (!S_ISDIR(want->st_mode) && up && !whole)
                    s_part_release(&m->down);
                else if (!S_ISDIR(want->st_mode) && down)
                    s_part_release(&m->up);
                s->items[n++] = *m;
            } else {
                s_migration_release(m);
            }
        }
        s->count = n;
    }
    for (k = n = 0; k < out->nskipped; k++) {
        if (s_same_file(out->skipped[k].path, want))
            out->skipped[n++] = out->skipped[k];
        else
            free(out->skipped[k].path);
    }
    out->nskipped = n;
}

/* Splits path into its directory ("." when none) and last name (new strings). */
static void
s_split(const char *path, char **parent, char **base)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        *parent = fl_strdup(".");
        *base = fl_strdup(path);
    } else {
        *parent = slash == path ? fl_strdup("/")
                                : fl_strndup(path, (size_t)(slash - path));
        *base = fl_strdup(slash + 1);
    }
}

int
fl_layout_scan(fl_layout_t *out, const char *path,
               const fl_layout_options_t *opts, fl_error_t *err)
{
    static const fl_layout_options_t defaults = FL_LAYOUT_OPTIONS_INIT;
    s_scan_t scan;
    struct stat sb;
    char *dir = NULL, *parent = NULL, *base = NULL, *gp = NULL, *folder = NULL;
    char *rdir = NULL, *rbase = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&scan, 0, sizeof(scan));
    scan.out = out;
    scan.opts = opts ? opts : &defaults;
    if (stat(path, &sb) != 0)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                      "could not read \"%s\": %s", path, strerror(errno));
    dir = fl_strdup(path);
    while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
        dir[strlen(dir) - 1] = '\0';
    if (S_ISDIR(sb.st_mode) && !s_exists(dir, "up.sql", 0)) {
        scan.root = dir;
        rc = s_walk(&scan, dir, NULL);
        goto cleanup;
    }
    /* A diesel migration folder, or a file of one, is read from the
     * folder's parent; any other file from its own directory. */
    scan.single = 1;
    s_split(dir, &parent, &base);
    if (S_ISDIR(sb.st_mode)) {
        scan.root = parent;
        rc = s_walk(&scan, parent, base);
    } else if ((strcmp(base, "up.sql") == 0 || strcmp(base, "down.sql") == 0) &&
               s_exists(parent, "up.sql", 0) && strcmp(parent, "/") != 0) {
        s_split(parent, &gp, &folder);
        scan.root = gp;
        rc = s_walk(&scan, gp, folder);
    } else {
        char real[PATH_MAX];

        /* One file named: a link named so leads where it was asked to. */
        if (realpath(dir, real) != NULL)
            s_split(real, &rdir, &rbase);
        scan.root = rdir ? rdir : parent;
        rc = s_walk(&scan, parent, NULL);
    }
    if (rc == 0)
        s_keep_only(out, &sb, scan.opts->whole);

cleanup:
    free(rbase);
    free(rdir);
    free(folder);
    free(gp);
    free(base);
    free(parent);
    free(dir);
    if (rc != 0)
        return FL_ERR(err, FL_EIO, "could not read \"%s\": %s", path,
                      strerror(errno));
    return 0;
}

size_t
fl_layout_count(const fl_layout_t *layout)
{
    size_t i, n = 0;
    for (i = 0; i < layout->count; i++)
        n += layout->sources[i].count;
    return n;
}


void
fl_layout_release(fl_layout_t *layout)
{
    size_t i, k;

    if (!layout)
        return;
    for (i = 0; i < layout->count; i++) {
        fl_layout_source_t *s = &layout->sources[i];
        for (k = 0; k < s->count; k++)
            s_migration_release(&s->items[k]);
        free(s->items);
        free(s->dir);
    }
    free(layout->sources);
    for (i = 0; i < layout->nskipped; i++)
        free(layout->skipped[i].path);
    free(layout->skipped);
    memset(layout, 0, sizeof(*layout));
}
