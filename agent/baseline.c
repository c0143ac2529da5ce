/*
 * baseline.c - `flotilla baseline`: recording the migrations a database
 * already ran (under another tool, or before flotilla) without running
 * them (see fl_pipeline_baseline in pipeline.h).
 *
 * Which migrations ran: those of the source up to opts.to_version, or
 * what the tool's own ledger says (baseline_from).  Each tool's table, in
 * the target's schema (for a whole database: the first schema of the
 * connection's default search_path, as the tool would create it there;
 * public when none exists; refused when it is not the first of the path
 * apply runs migrations with, s_check_search_path), as the tool creates
 * it:
 *
 *   diesel          __diesel_schema_migrations(version, run_on): a row
 *                   per migration, the folder's stamp without its dashes
 *   golang-migrate  schema_migrations(version bigint, dirty boolean): one
 *                   row, the newest version; every version up to it ran.
 *                   dirty: a migration failed halfway, refused
 *   pop             schema_migration(version): a row per migration
 *   sqlx            _sqlx_migrations(version, success, checksum, ...): a
 *                   row per migration; success false is refused, and so
 *                   is a checksum (SHA-384 of the file) that is not the
 *                   source's
 *   dbmate          schema_migrations(version): a row per migration
 *   flyway          flyway_schema_history(installed_rank, version,
 *                   success, type, ...): rows in installed_rank order; a
 *                   BASELINE row stands for every version up to it, an
 *                   UNDO row takes its version back, success false is
 *                   refused; repeatable rows (no version): see
 *                   s_baseline_repeatables
 *
 * Refused, with the difference and nothing written: a version in the
 * tool's ledger the source does not have; a source version below the
 * newest one the tool ran that it did not run (a gap); a flotilla ledger
 * row that disagrees (another checksum, a state other than applied, or a
 * migration flotilla applied below the newest baselined one that the
 * tool's ledger lacks); a table or column the baselined migrations create
 * (lint/shape.h) that the database does not have.  Everything else is
 * written in one transaction, each row applied with baseline_source, and
 * one log row per migration.  Running it again finds every row there and
 * writes nothing.
 *
 * Versions: a tool's ledger version is read with s_version_key into
 * proto/version.h's type (diesel's "00000000000000" is "0") and compared
 * with the source's in that type's order.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "lint/shape.h"
#include "proto/layout.h"
#include "proto/version.h"

/* A tool's ledger is untrusted input: bounded in rows and in bytes. */
#define S_MAX_ROWS 100000
#define S_MAX_VERSION 255
/* How many differences an error lists before "and N more". */
#define S_MAX_LISTED 20

/* One row of a tool's ledger, in the order the tool wrote them. */
typedef struct {
    char *version;
    int ok;        /* success (dirty is not ok) */
    char kind;     /* 'a' applied, 'c' current (golang-migrate: every
                      version up to it), 'b' baseline (Flyway: the same),
                      'u' undone (Flyway) */
    char *checksum; /* sqlx: the SHA-384 of the file it ran, in hex;
                       NULL for the other tools */
} s_tool_row_t;

typedef struct {
    s_tool_row_t *rows;
    size_t count;
    char *where;   /* "public.__diesel_schema_migrations" */
} s_tool_ledger_t;

/* The version a tool's ledger records, as flotilla holds versions. */
static int
s_version_key(const char *text, fl_version_t *out)
{
    return fl_version_parse_str(out, text, NULL) == 0 ? 0 : -1;
}

/* a <= b in the versions' order. */
static int
s_le(const fl_version_t *a, const fl_version_t *b)
{
    return fl_version_cmp(a, b) <= 0;
}

/* The next part of version text *s (a run between dots), without its
 * leading zeros: n digits, 0 for "0" or no part left; *s goes past it. */
static const char *
s_flyway_part(const char **s, size_t *n)
{
    const char *p = *s;
    size_t len = strcspn(p, ".");

    *s = p + len + (p[len] == '.');
    while (len > 0 && *p == '0') {
        p++;
        len--;
    }
    *n = len;
    return p;
}

/*
 * Flyway's order: versions compared part by part as numbers, a missing
 * part counting as 0 (1 = 1.0 = 1.00, 1.01 = 1.1), unlike Flotilla's,
 * where 1 sorts below 1.0.  <0, 0 or >0.
 */
static int
s_flyway_cmp(const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        size_t an, bn;
        const char *ap = s_flyway_part(&a, &an), *bp = s_flyway_part(&b, &bn);
        int c;

        if (an != bn)
            return an < bn ? -1 : 1;
        if ((c = memcmp(ap, bp, an)) != 0)
            return c < 0 ? -1 : 1;
    }
    return 0;
}

static void
s_tool_ledger_release(s_tool_ledger_t *t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->rows[i].version);
        free(t->rows[i].checksum);
    }
    fl_free(&t->rows);
    t->count = 0;
    fl_free(&t->where);
}

/* Each tool's table and the query of its rows ($ is the quoted schema). */
typedef struct {
    fl_layout_tool tool;
    const char *table;
    const char *select; /* version text, ok boolean, kind text, checksum
                           (hex text or NULL) */
    const char *order;
} s_tool_spec_t;

static const s_tool_spec_t s_specs[] = {
    {FL_LAYOUT_DIESEL, "__diesel_schema_migrations",
     "version::pg_catalog.text, true, 'a', NULL", "version"},
    {FL_LAYOUT_GOLANG_MIGRATE, "schema_migrations",
     "version::pg_catalog.text, NOT dirty, 'c', NULL", "version"},
    {FL_LAYOUT_POP, "schema_migration",
     "version::pg_catalog.text, true, 'a', NULL", "version"},
    {FL_LAYOUT_SQLX, "_sqlx_migrations",
     "version::pg_catalog.text, success, 'a',"
     " pg_catalog.encode(checksum, 'hex')", "version"},
    {FL_LAYOUT_DBMATE, "schema_migrations",
     "version::pg_catalog.text, true, 'a', NULL", "version"},
    {FL_LAYOUT_FLYWAY, "flyway_schema_history",
     "version::pg_catalog.text, success, CASE WHEN type IN ('BASELINE')"
     " THEN 'b' WHEN type LIKE 'UNDO%' THEN 'u' ELSE 'a' END, NULL",
     "installed_rank"},
};

static const s_tool_spec_t *
s_spec(fl_layout_tool tool)
{
    for (size_t i = 0; i < sizeof(s_specs) / sizeof(s_specs[0]); i++)
        if (s_specs[i].tool == tool)
            return &s_specs[i];
    return NULL;
}

/*
 * The schema a tool connecting to this database creates its ledger table
 * in when told nothing: the first schema of the connection's default
 * search_path that exists (the role's and database's settings, the DSN's
 * options; "$user" resolved), public when there is none.  Flotilla's own
 * session has its search_path pinned: the default is read in a
 * transaction that sets it back, and only used as a name.  *out is new.
 */
static int
s_default_schema(fl_pipeline_t *p, char **out, fl_error_t *err)
{
    int rc;

    *out = NULL;
    if ((rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0)
        return rc;
    rc = fl_pg_exec(p->pg, "SET LOCAL search_path TO DEFAULT", err);
    if (rc == 0)
        rc = fl_pg_query_value(p->pg, out, "SELECT (pg_catalog."
                               "current_schemas(false))[1]", 0, NULL, err);
    if (rc == 0)
        rc = fl_pg_exec(p->pg, "ROLLBACK", err);
    else
        fl__rollback_quietly(p);
    if (rc == 0 && *out == NULL)
        *out = fl_strdup("public");
    if (rc != 0)
        fl_free(out);
    return rc;
}

/*
 * The first schema of the search_path apply runs a whole database's
 * migrations with (public; never the default, which the
 * database's owner may set: docs/SECURITY.md), as the session recorded
 * it when it was pinned (fl__session_pin: no round trip), the implicit
 * pg_catalog and temporary schema left out; public when there is none.
 * A new string.
 */
static char *
s_run_schema(const fl_pipeline_t *p)
{
    json_t *a = p->session.original_schemas
                    ? json_loads(p->session.original_schemas, 0, NULL)
                    : NULL;
    const char *first = NULL;
    size_t i;
    json_t *v;
    char *out = NULL;

    json_array_foreach(a, i, v) {
        const char *name = json_string_value(v);

        if (name != NULL && strcmp(name, "pg_catalog") != 0 &&
            strncmp(name, "pg_temp", 7) != 0) {
            first = name;
            break;
        }
    }
    out = fl_strdup(first ? first : "public");
    json_decref(a);
    return out;
}

/*
 * Refuses a whole database whose default search_path puts dflt first
 * where apply's puts run: the tool kept its ledger and made its tables
 * in dflt, where apply's migrations do not look.  Before, baseline read
 * the ledger and the tables there and recorded the history, and the
 * next apply did not find them ("table ... does not exist").
 */
static int
s_check_search_path(fl_pipeline_t *p, const char *dflt, fl_error_t *err)
{
    char *run = s_run_schema(p);

    if (strcmp(dflt, run) == 0) {
        free(run);
        return 0;
    }
    FL_ERR(err, FL_EINVAL, "the default search_path of %s puts schema "
           "\"%s\" first, where flotilla apply does not run its migrations",
           p->described, dflt);
    fl_error_set_detail(err, "A tool connecting to it keeps its ledger and "
                        "creates its tables in \"%s\"; flotilla apply runs "
                        "a whole database's migrations with search_path %s "
                        "(\"%s\" first), never the default, so the next "
                        "migration would not find what the history made.",
                        dflt, p->session.original[0], run);
    fl_error_set_hint(err, "Baseline and apply it as the schema target "
                      "\"%s\" (--schema %s): its migrations then run with "
                      "that schema first on search_path, as the tool's "
                      "did.", dflt, dflt);
    free(run);
    return FL_EINVAL;
}

/*
 * Reads the tool's ledger in schema into out.  FL_ENOTFOUND when its
 * table is not there; FL_EINVAL when a row is beyond the bounds.
 */
static int
s_read_tool(fl_pipeline_t *p, const s_tool_spec_t *spec, const char *schema,
            s_tool_ledger_t *out, fl_error_t *err)
{
    const char *tool = fl_layout_tool_name(spec->tool);
    const char *params[2] = {schema, spec->table};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char *found = NULL, *qs = NULL, *qt = NULL;
    int rc;

    out->where = fl_asprintf("%s.%s", schema, spec->table);
    rc = fl_pg_query_value(p->pg, &found,
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c JOIN"
        " pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=)"
        " c.relnamespace WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND"
        " c.relname OPERATOR(pg_catalog.=) $2 AND c.relkind IN ('r', 'p')",
        2, params, err);
    if (rc != 0)
        goto cleanup;
    if (found == NULL || strcmp(found, "1") != 0) {
        rc = FL_ERR(err, FL_ENOTFOUND, "%s's ledger table %s does not exist "
                    "in %s", tool, out->where, p->described);
        fl_error_set_hint(err, "Check --from (the tool that migrated this "
                               "database) and --schema; or baseline by "
                               "version with --to instead of --from.");
        goto cleanup;
    }
    qs = fl_pg_quote_ident(p->pg, schema);
    qt = fl_pg_quote_ident(p->pg, spec->table);
    if (qs == NULL || qt == NULL) {
        rc = FL_ERR(err, FL_EINVAL, "the name %s cannot be quoted",
                    out->where);
        goto cleanup;
    }
    /* The tool's table is read, never trusted: its rows are bounded. */
    {
        char *sql = fl_asprintf("SELECT %s FROM %s.%s ORDER BY %s LIMIT %d",
                                spec->select, qs, qt, spec->order,
                                S_MAX_ROWS + 1);
        rc = fl_pg_query(p->pg, &r, sql, 0, NULL, err);
        free(sql);
    }
    if (rc != 0) {
        fl_error_prefix(err, "could not read %s's ledger %s: ", tool,
                        out->where);
        if (err && err->hint == NULL)
            fl_error_set_hint(err, "Check --from: this table is not laid "
                                   "out as %s lays out its ledger.", tool);
        goto cleanup;
    }
    if (r.nrows > S_MAX_ROWS) {
        rc = FL_ERR(err, FL_EINVAL, "%s's ledger %s has more than %d rows",
                    tool, out->where, S_MAX_ROWS);
        goto cleanup;
    }
    out->rows = fl_calloc(r.nrows ? r.nrows : 1, sizeof(out->rows[0]));
    for (size_t i = 0; i < r.nrows; i++) {
        const char *v = fl_pg_value(&r, i, 0), *ok = fl_pg_value(&r, i, 1);
        const char *kind = fl_pg_value(&r, i, 2);
        const char *sum = fl_pg_value(&r, i, 3);

        /* Flyway's repeatable migrations have no version. */
        if (v == NULL)
            continue;
        if (strlen(v) > S_MAX_VERSION) {
            rc = FL_ERR(err, FL_EINVAL, "%s's ledger %s has a version of "
                        "%zu bytes (at most %d)", tool, out->where, strlen(v),
                        S_MAX_VERSION);
            goto cleanup;
        }
        out->rows[out->count].version = fl_strdup(v);
        out->rows[out->count].ok = ok && strcmp(ok, "t") == 0;
        out->rows[out->count].kind = kind ? kind[0] : 'a';
        /* SHA-384 is 96 hex digits; anything else cannot match. */
        if (sum != NULL)
            out->rows[out->count].checksum = fl_strndup(sum, 128);
        out->count++;
    }
cleanup:
    fl_pg_result_release(&r);
    free(found);
    free(qs);
    free(qt);
    return rc;
}

/* Appends one difference to a bounded list; *n counts them all. */
static void
s_listf(fl_buf_t *b, int *n, const char *fmt, ...) FL_PRINTF(3, 4);

static void
s_listf(fl_buf_t *b, int *n, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if ((*n)++ >= S_MAX_LISTED)
        return;
    va_start(ap, fmt);
    s = fl_vasprintf(fmt, ap);
    va_end(ap);
    fl_buf_addf(b, "%s%s", b->len ? "; " : "", s);
    free(s);
}

static const char *
s_listed(fl_buf_t *b, int n)
{
    if (n > S_MAX_LISTED)
        fl_buf_addf(b, "; and %d more", n - S_MAX_LISTED);
    return fl_buf_str(b);
}

static int
s_find(const fl_migration_list_t *migs, const fl_version_t *v)
{
    for (size_t i = 0; i < migs->count; i++)
        if (fl_version_cmp(&migs->items[i].version, v) == 0)
            return (int)i;
    return -1;
}

/*
 * A version that is a part of a migration of several files (pop's
 * groups): the migration's index, and the part's in *part; -1 when none.
 */
static int
s_find_part(const fl_migration_list_t *migs, const fl_version_t *v,
            size_t *part)
{
    for (size_t i = 0; i < migs->count; i++)
        for (size_t k = 0; k < migs->items[i].nparts; k++)
            if (strcmp(migs->items[i].parts[k], v->text) == 0) {
                *part = k;
                return (int)i;
            }
    return -1;
}

/*
 * A migration of several files ran when the tool's ledger has every one:
 * seen[] holds a flag per part, the migrations' parts one after another.
 * Some but not all is refused, naming the ones missing (Flotilla applies
 * and rolls back the group whole, so it cannot be half applied); above
 * --to it is left for apply, as a gap is.
 */
static int
s_parts_ran(fl_pipeline_t *p, const char *name, const s_tool_ledger_t *t,
            const fl_migration_list_t *migs, const unsigned char *seen,
            int *ran, fl_error_t *err)
{
    fl_buf_t missing = FL_BUF_INIT(0);
    int nmissing = 0, rc = 0;
    size_t off = 0;

    for (size_t i = 0; i < migs->count && rc == 0; i++) {
        const fl_migration_t *m = &migs->items[i];
        size_t n = 0;

        for (size_t k = 0; k < m->nparts; k++)
            n += seen[off + k];
        if (n == m->nparts && n > 0) {
            ran[i] = 1;
        } else if (n > 0 && !ran[i] &&
                   (!fl_version_is_set(&p->opts.to_version) ||
                    s_le(&m->version, &p->opts.to_version))) {
            for (size_t k = 0; k < m->nparts; k++)
                if (!seen[off + k])
                    s_listf(&missing, &nmissing, "%s", m->parts[k]);
            rc = FL_ERR(err, FL_EINVAL, "%s's ledger %s has %zu of the %zu "
                        "files of migration %s (%s), which Flotilla applies "
                        "as one", name, t->where, n, m->nparts,
                        m->version.text, m->file);
            fl_error_set_detail(err, "Not in %s's ledger: %s.", name,
                                s_listed(&missing, nmissing));
            fl_error_set_hint(err, "Run the rest of the group with %s "
                                   "first (flotilla applies a group whole, "
                                   "so it would run again the files %s "
                                   "ran).", name, name);
        }
        off += m->nparts;
    }
    fl_buf_release(&missing);
    return rc;
}

/*
 * Which migrations of migs the tool's ledger says ran, into ran[] (one
 * flag per migration).  Refuses a dirty or failed row, a version the
 * source lacks, a group of files partly run, and a gap.
 */
static int
s_ran_per_tool(fl_pipeline_t *p, fl_layout_tool tool,
               const s_tool_ledger_t *t, const fl_migration_list_t *migs,
               int *ran, fl_error_t *err)
{
    const char *name = fl_layout_tool_name(tool);
    fl_buf_t missing = FL_BUF_INIT(0), gaps = FL_BUF_INIT(0);
    int nmissing = 0, ngaps = 0, rc = 0;
    fl_version_t newest = FL_VERSION_INIT;
    size_t nparts = 0, part = 0;
    unsigned char *seen = NULL;

    for (size_t i = 0; i < migs->count; i++)
        nparts += migs->items[i].nparts;
    seen = fl_calloc(nparts ? nparts : 1, 1);
    for (size_t i = 0; i < t->count; i++) {
        const s_tool_row_t *row = &t->rows[i];
        fl_version_t v = FL_VERSION_INIT;
        int at;

        if (!row->ok) {
            rc = FL_ERR(err, FL_EINVAL, "%s's ledger %s says migration %s "
                        "%s", name, t->where, row->version,
                        row->kind == 'c' ? "is dirty (it failed halfway)"
                                         : "failed");
            fl_error_set_hint(err, "Repair the database and %s's ledger "
                                   "with %s first (what that migration did "
                                   "is not known); then baseline.",
                              name, name);
            goto cleanup;
        }
        /* Flyway's baseline version need not be a migration's own, and
         * covers what Flyway's order puts at or below it. */
        if (row->kind == 'b' && s_version_key(row->version, &v) == 0 &&
            s_find(migs, &v) < 0) {
            for (size_t k = 0; k < migs->count; k++)
                if (s_flyway_cmp(migs->items[k].version.text, v.text) <= 0)
                    ran[k] = 1;
            if (fl_version_cmp(&v, &newest) > 0)
                newest = v;
            continue;
        }
        if (s_version_key(row->version, &v) != 0) {
            s_listf(&missing, &nmissing, "%s", row->version);
            continue;
        }
        /* A file of a group: the group ran when all of them did. */
        if ((at = s_find_part(migs, &v, &part)) >= 0 && row->kind == 'a') {
            size_t off = 0;
            for (int k = 0; k < at; k++)
                off += migs->items[k].nparts;
            seen[off + part] = 1;
            if (fl_version_cmp(&v, &newest) > 0)
                newest = v;
            continue;
        }
        if ((at = s_find(migs, &v)) < 0) {
            s_listf(&missing, &nmissing, "%s", row->version);
            continue;
        }
        if (row->kind == 'u') {
            ran[at] = 0;
            continue;
        }
        ran[at] = 1;
        if (row->kind == 'c' || row->kind == 'b')
            for (size_t k = 0; k < migs->count; k++)
                if (s_le(&migs->items[k].version, &v))
                    ran[k] = 1;
        if (fl_version_cmp(&v, &newest) > 0)
            newest = v;
    }
    if (nmissing) {
        rc = FL_ERR(err, FL_EINVAL, "%d version%s in %s's ledger %s %s not "
                    "in the source", nmissing, nmissing == 1 ? "" : "s", name,
                    t->where, nmissing == 1 ? "is" : "are");
        fl_error_set_detail(err, "Ran but not in the source: %s.",
                            s_listed(&missing, nmissing));
        fl_error_set_hint(err, "Point SOURCE at the migrations this database "
                               "ran (the same checkout the tool ran them "
                               "from); a migration cannot be baselined "
                               "without its text.%s",
                          tool == FL_LAYOUT_POP
                              ? " Flotilla reads no .fizz file: translate "
                                "each one pop ran to SQL (its "
                                "V_name.up.sql and .down.sql) first."
                              : "");
        goto cleanup;
    }
    if ((rc = s_parts_ran(p, name, t, migs, seen, ran, err)) != 0)
        goto cleanup;
    /*
     * The newest version that ran, an undone one not counted: before,
     * Flyway's versions 3 and then 2 undone left 3 the newest, and 2 was
     * refused as a gap below it (found by an audit).
     */
    {
        const fl_version_t none = FL_VERSION_INIT;

        newest = none;
        for (size_t k = 0; k < migs->count; k++)
            if (ran[k] && fl_version_cmp(&migs->items[k].version, &newest) > 0)
                newest = migs->items[k].version;
    }
    /* Above --to nothing is baselined: a gap there is apply's to find. */
    for (size_t k = 0; k < migs->count; k++)
        if (!ran[k] && fl_version_cmp(&migs->items[k].version, &newest) < 0 &&
            (!fl_version_is_set(&p->opts.to_version) ||
             s_le(&migs->items[k].version, &p->opts.to_version)))
            s_listf(&gaps, &ngaps, "%s", migs->items[k].file);
    if (ngaps) {
        rc = FL_ERR(err, FL_EINVAL, "%d migration%s of the source %s not in "
                    "%s's ledger %s, though later ones are (a gap)", ngaps,
                    ngaps == 1 ? "" : "s", ngaps == 1 ? "is" : "are", name,
                    t->where);
        fl_error_set_detail(err, "Not run, below version %s: %s.",
                            newest.text, s_listed(&gaps, ngaps));
        /* Not --to below them: apply would run again what ran after. */
        fl_error_set_hint(err, "Run them with %s first (flotilla applies in "
                               "order, and never runs again what ran).",
                          name);
    }
cleanup:
    fl_buf_release(&missing);
    fl_buf_release(&gaps);
    free(seen);
    return rc;
}

/*
 * sqlx records the SHA-384 of each file it ran and refuses to go on when
 * a file changed since ("previously applied but has been modified"): so
 * does the baseline, for every migration of the source sqlx's ledger has.
 * The hash is the server's (sha384(), PostgreSQL 11 and later: libsodium
 * has no SHA-384), of the migration's up text, which is the file's whole
 * text for a tree read as sqlx's and a bundle built from one.
 */
/* text's bytes in hex (a new string): hashed as bytes on the server,
 * whatever its encoding. */
static char *
s_hex(const char *text)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = strlen(text);
    char *out = fl_malloc(2 * n + 1);

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[(unsigned char)text[i] >> 4];
        out[2 * i + 1] = digits[(unsigned char)text[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

static int
s_check_sqlx_sums(fl_pipeline_t *p, const s_tool_ledger_t *t,
                  const fl_migration_list_t *migs, fl_error_t *err)
{
    json_t *items = json_array();
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_buf_t bad = FL_BUF_INIT(0);
    char *text = NULL, *hex = NULL;
    const char *params[1];
    int nbad = 0, rc = 0;

    for (size_t i = 0; i < t->count; i++) {
        fl_version_t v = FL_VERSION_INIT;
        int at;

        if (t->rows[i].checksum == NULL ||
            s_version_key(t->rows[i].version, &v) != 0 ||
            (at = s_find(migs, &v)) < 0 || migs->items[at].up == NULL)
            continue;
        hex = s_hex(migs->items[at].up);
        json_array_append_new(items, fl_json_pack("[s, s, s]",
                              migs->items[at].file, hex,
                              t->rows[i].checksum));
        fl_free(&hex);
    }
    if (json_array_size(items) == 0)
        goto cleanup;
    text = json_dumps(items, JSON_COMPACT);
    if (text == NULL) {
        rc = FL_ERR(err, FL_EFAIL, "could not encode %zu migrations",
                    json_array_size(items));
        goto cleanup;
    }
    params[0] = text;
    rc = fl_pg_query(p->pg, &r,
        "SELECT x OPERATOR(pg_catalog.->>) 0, x OPERATOR(pg_catalog.->>) 2,"
        " h FROM pg_catalog.json_array_elements($1::pg_catalog.json)"
        " WITH ORDINALITY AS e(x, i), LATERAL (SELECT pg_catalog.encode("
        "pg_catalog.sha384(pg_catalog.decode(x OPERATOR(pg_catalog.->>) 1,"
        " 'hex')), 'hex') AS h) s WHERE h OPERATOR(pg_catalog.<>)"
        " (x OPERATOR(pg_catalog.->>) 2) ORDER BY e.i", 1, params, err);
    if (rc != 0)
        goto cleanup;
    for (size_t i = 0; i < r.nrows; i++)
        s_listf(&bad, &nbad, "%s (sqlx ran %.12s..., the source's is "
                "%.12s...)", fl_pg_value(&r, i, 0), fl_pg_value(&r, i, 1),
                fl_pg_value(&r, i, 2));
    if (nbad) {
        rc = FL_ERR(err, FL_EINVAL, "%d migration%s of the source differ%s "
                    "from what sqlx's ledger %s says ran (its SHA-384)", nbad,
                    nbad == 1 ? "" : "s", nbad == 1 ? "s" : "", t->where);
        fl_error_set_detail(err, "Changed since sqlx ran them: %s.",
                            s_listed(&bad, nbad));
        fl_error_set_hint(err, "sqlx refuses these too (\"previously "
                               "applied but has been modified\"): point "
                               "SOURCE at the checkout the database was "
                               "migrated from, or restore the files.");
    }
cleanup:
    fl_buf_release(&bad);
    fl_pg_result_release(&r);
    json_decref(items);
    free(text);
    return rc;
}

/*
 * The tables and columns the migrations that ran create, each looked up
 * in the database: refused with every one missing and the migration that
 * creates it.  Unqualified names are looked up where the migrations
 * created them: a schema target's own schema (first on their
 * search_path; before, public's tables passed for an empty tenant's,
 * found by an audit), else the connection's default first schema dflt,
 * the user's, public.
 */
static int
s_check_shape(fl_pipeline_t *p, const fl_migration_list_t *migs,
              const int *ran, const char *dflt, fl_error_t *err)
{
    fl_shape_t shape = FL_SHAPE_INIT;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    json_t *items = json_array();
    char *text = NULL;
    const char *params[3];
    fl_buf_t missing = FL_BUF_INIT(0);
    int nmissing = 0, rc = 0;

    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        if (!ran[i] || m->up == NULL)
            continue;
        if ((rc = fl_shape_add(&shape, m->up, m->file, err)) != 0)
            goto cleanup;
    }
    if (shape.count == 0)
        goto cleanup;
    for (size_t i = 0; i < shape.count; i++) {
        const fl_shape_item_t *it = &shape.items[i];
        json_array_append_new(items, fl_json_pack("[s?, s, s?, s]",
                              it->schema, it->table, it->column, it->origin));
    }
    text = json_dumps(items, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (text == NULL) {
        rc = FL_ERR(err, FL_EFAIL, "could not encode %zu expected objects",
                    shape.count);
        goto cleanup;
    }
    params[0] = text;
    params[1] = p->target;
    params[2] = dflt ? dflt : "";
    rc = fl_pg_query(p->pg, &r,
        "SELECT x OPERATOR(pg_catalog.->>) 0, x OPERATOR(pg_catalog.->>) 1,"
        " x OPERATOR(pg_catalog.->>) 2, x OPERATOR(pg_catalog.->>) 3"
        " FROM pg_catalog.json_array_elements($1::pg_catalog.json)"
        " WITH ORDINALITY AS e(x, i) WHERE NOT EXISTS (SELECT FROM"
        " pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid"
        " OPERATOR(pg_catalog.=) c.relnamespace WHERE c.relname"
        " OPERATOR(pg_catalog.=) (x OPERATOR(pg_catalog.->>) 1)"
        " AND c.relkind IN ('r', 'p', 'f') AND CASE WHEN"
        " (x OPERATOR(pg_catalog.->>) 0) IS NULL AND $2 OPERATOR(pg_catalog.<>)"
        " '' THEN n.nspname OPERATOR(pg_catalog.=) $2"
        " WHEN (x OPERATOR(pg_catalog.->>) 0) IS NULL THEN n.nspname"
        " OPERATOR(pg_catalog.=) ANY (ARRAY[NULLIF($3, ''),"
        " CURRENT_USER, 'public']::pg_catalog.name[]) ELSE n.nspname"
        " OPERATOR(pg_catalog.=)"
        " (x OPERATOR(pg_catalog.->>) 0) END AND ((x OPERATOR(pg_catalog.->>) 2)"
        " IS NULL OR EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE"
        " a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname"
        " OPERATOR(pg_catalog.=) (x OPERATOR(pg_catalog.->>) 2) AND a.attnum"
        " OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped))) ORDER BY e.i",
        3, params, err);
    if (rc != 0)
        goto cleanup;
    for (size_t i = 0; i < r.nrows; i++) {
        const char *schema = fl_pg_value(&r, i, 0);
        const char *col = fl_pg_value(&r, i, 2);
        s_listf(&missing, &nmissing, "%s %s%s%s%s%s (from %s)",
                col ? "column" : "table", schema ? schema : "",
                schema ? "." : "", fl_pg_value(&r, i, 1), col ? "." : "",
                col ? col : "", fl_pg_value(&r, i, 3));
    }
    if (nmissing) {
        rc = FL_ERR(err, FL_EINVAL, "%s does not look migrated: %d of the "
                    "%zu tables and columns the baselined migrations create "
                    "%s missing", p->described, nmissing, shape.count,
                    nmissing == 1 ? "is" : "are");
        fl_error_set_detail(err, "Missing: %s.", s_listed(&missing, nmissing));
        fl_error_set_hint(err, "Baseline only what ran here (--to, or --from "
                               "the tool whose ledger says so), against the "
                               "database it ran on (--db, --schema).");
    }
cleanup:
    fl_buf_release(&missing);
    fl_pg_result_release(&r);
    json_decref(items);
    free(text);
    fl_shape_release(&shape);
    return rc;
}

/*
 * Compares what ran with flotilla's ledger: fills write[] with the
 * migrations to record, counts the ones recorded already, and refuses a
 * row that disagrees: another state, or another up checksum (drift, as
 * apply holds it; before, the whole checksum was compared, and a down
 * fixed or changed since, which apply and status accept, was refused).
 */
static int
s_check_ledger(fl_pipeline_t *p, const fl_migration_list_t *migs,
               const int *ran, const fl_ledger_t *ledger, const char *source,
               int *write, fl_baseline_result_t *out, fl_error_t *err)
{
    fl_buf_t bad = FL_BUF_INIT(0);
    int nbad = 0, rc = 0;
    fl_version_t newest = FL_VERSION_INIT;

    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        const fl_ledger_row_t *row = fl_ledger_find(ledger, &m->version);

        if (!ran[i])
            continue;
        newest = m->version;
        if (row == NULL) {
            write[i] = 1;
        } else if (strcmp(row->status, "applied") != 0) {
            s_listf(&bad, &nbad, "%s is %s in flotilla's ledger", m->file,
                    row->status);
        } else if (!fl_ledger_row_matches(row, m)) {
            /* What apply calls drift: a down changed since is not. */
            const char *was = NULL;
            char now[65];

            fl_ledger_drift_sums(row, m, &was, now);
            s_listf(&bad, &nbad, "%s was recorded with checksum %.12s, the "
                    "source's is %.12s", m->file, was, now);
        } else {
            out->already++;
        }
    }
    for (size_t i = 0; i < ledger->count; i++) {
        const fl_ledger_row_t *row = &ledger->items[i];
        int at = s_find(migs, &row->version);

        if (strcmp(row->status, "applied") != 0 ||
            fl_version_cmp(&row->version, &newest) > 0 ||
            (at >= 0 && ran[at]))
            continue;
        s_listf(&bad, &nbad, "%s is applied in flotilla's ledger but did not "
                "run per %s", row->file ? row->file : row->name, source);
    }
    if (nbad) {
        rc = FL_ERR(err, FL_EINVAL, "flotilla's ledger in %s disagrees "
                    "with %s on %d migration%s", p->described, source, nbad,
                    nbad == 1 ? "" : "s");
        fl_error_set_detail(err, "%s.", s_listed(&bad, nbad));
        fl_error_set_hint(err, "Nothing was recorded.  Find out which is "
                               "right (flotilla status, flotilla log) before "
                               "baselining this database.");
    }
    fl_buf_release(&bad);
    return rc;
}

/*
 * Records the migrations write marks as applied, in one transaction; each
 * is said recorded (its event, out->baselined) only once it committed.
 * A COMMIT whose answer was lost with the connection is looked up in the
 * ledger (fl__commit_in_doubt): committed, the rows are said recorded and
 * the error says so too; unknown, the error says that.
 */
static int
s_write(fl_pipeline_t *p, const fl_migration_list_t *migs, const int *write,
        const char *source, const char *why, fl_baseline_result_t *out,
        fl_error_t *err)
{
    const fl_migration_t *last = NULL;
    int rc, n = 0, committed = 0;

    if ((rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0)
        return rc;
    for (size_t i = 0; i < migs->count; i++) {
        const fl_migration_t *m = &migs->items[i];
        fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                                  p->opts.agent, "applied", !m->no_transaction,
                                  0, 0, 0, 0, 0, NULL, NULL, NULL, p->target,
                                  source, 0};
        if (!write[i])
            continue;
        if ((rc = fl_ledger_record(p->pg, &rec, err)) != 0) {
            fl__rollback_quietly(p);
            return rc;
        }
        last = m;
        n++;
    }
    rc = fl_pg_exec(p->pg, "COMMIT", err);
    if (rc != 0 && last != NULL && !fl_pg_is_open(p->pg)) {
        fl_error_t doubt = FL_ERROR_INIT;

        if (fl__commit_in_doubt(p, last, "applied", 0, 0, &committed,
                                &doubt) != 0) {
            fl_error_add_detail(err, "Whether the %d migration%s recorded "
                                "as applied committed could not be learnt "
                                "(the connection was lost when the COMMIT "
                                "was sent): %s", n, n == 1 ? "" : "s",
                                doubt.message);
            fl_error_set_hint(err, "flotilla status reads the ledger: it "
                              "says whether they are recorded.");
        } else if (committed) {
            fl_error_add_detail(err, "The %d migration%s %s recorded as "
                                "applied: the COMMIT ran.", n,
                                n == 1 ? "" : "s", n == 1 ? "is" : "are");
        }
        fl_error_clear(&doubt);
    }
    for (size_t i = 0; (rc == 0 || committed) && i < migs->count; i++) {
        if (!write[i])
            continue;
        fl__event(p, FL_STEP_BASELINE, FL_STEP_OK, &migs->items[i], 0, NULL,
                  "recorded as applied without running it (%s)", why);
        out->baselined++;
    }
    return rc;
}

/*
 * Flyway's repeatable migrations (issue 14): the source's R__ files whose
 * last run in flyway_schema_history (type SQL, no version, by script)
 * succeeded are recorded as run, baselined from flyway, but without a
 * checksum: Flyway's is a CRC32 over the file's lines, which Flotilla
 * would need zlib (not one of its dependencies) to compute, so it cannot
 * show the file ran as it is now, and the next apply runs each once
 * ("needs a run").  One flotilla's ledger has already is left alone; one
 * Flyway never ran is not recorded (it is new).  schema is the tool
 * ledger's.
 */
static int
s_baseline_repeatables(fl_pipeline_t *p, const fl_source_t *src,
                       const char *schema, fl_error_t *err)
{
    const fl_migration_list_t *reps = src->repeatables;
    fl_ledger_repeatables_t mine = {NULL, 0};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char *qs = NULL, *sql = NULL, *written = NULL;
    int rc = 0, n = 0, began = 0;

    if (reps == NULL || reps->count == 0)
        return 0;
    if ((qs = fl_pg_quote_ident(p->pg, schema)) == NULL)
        return FL_ERR(err, FL_EINVAL, "the name %s cannot be quoted", schema);
    written = fl_calloc(reps->count, 1);
    /* The tool's table is read, never trusted: bounded, and only compared
     * with the source's file names. */
    sql = fl_asprintf("SELECT pg_catalog.regexp_replace(script, '^.*/', ''),"
                      " success FROM %s.flyway_schema_history WHERE version"
                      " IS NULL AND type OPERATOR(pg_catalog.=) 'SQL'"
                      " ORDER BY installed_rank LIMIT %d", qs, S_MAX_ROWS);
    if ((rc = fl_pg_query(p->pg, &r, sql, 0, NULL, err)) != 0 ||
        (rc = fl_ledger_load_repeatables(p->pg, p->target, &mine, err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < reps->count; i++) {
        const fl_migration_t *m = &reps->items[i];
        int ran = 0;
        fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                                  p->opts.agent, "applied",
                                  !m->no_transaction, 0, 0, 0, 0, 0, NULL,
                                  NULL, NULL, p->target, "flyway", 1};

        /* Its last row says (a failed run after a good one: not run; a
         * success of NULL, which the tenant's table may hold: not run). */
        for (size_t k = 0; k < r.nrows; k++)
            if (fl_pg_value(&r, k, 0) &&
                strcmp(fl_pg_value(&r, k, 0), m->file) == 0)
                ran = fl_pg_value(&r, k, 1) != NULL &&
                      strcmp(fl_pg_value(&r, k, 1), "t") == 0;
        if (!ran || fl_ledger_find_repeatable(&mine, m->name) != NULL)
            continue;
        if (!began && ((rc = fl_ledger_ensure(p->pg, err)) != 0 ||
                       (rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0))
            goto cleanup;
        began = 1;
        if ((rc = fl_ledger_record(p->pg, &rec, err)) != 0)
            goto cleanup;
        written[i] = 1;
        n++;
    }
    if (began)
        rc = fl_pg_exec(p->pg, "COMMIT", err);
    if (rc != 0 && began && !fl_pg_is_open(p->pg)) {
        /* Recorded without a checksum: no row to look it up by. */
        fl_error_add_detail(err, "Whether the %d repeatable migration%s "
                            "recorded as run committed is not known: the "
                            "connection was lost when the COMMIT was sent.",
                            n, n == 1 ? "" : "s");
        fl_error_set_hint(err, "flotilla status reads the ledger; "
                          "baselining again records what is missing.");
    }
    /* Said once committed (s_write). */
    for (size_t i = 0; rc == 0 && i < reps->count; i++)
        if (written[i])
            fl__event(p, FL_STEP_BASELINE, FL_STEP_OK, &reps->items[i], 0,
                      NULL, "repeatable migration %s recorded as run by "
                      "Flyway; its Flyway checksum is not compared, so the "
                      "next apply runs it once", reps->items[i].file);
cleanup:
    if (rc != 0)
        fl__rollback_quietly(p);
    fl_pg_result_release(&r);
    fl_ledger_repeatables_release(&mine);
    free(sql);
    free(qs);
    free(written);
    return rc;
}

static int
s_baseline(fl_pipeline_t *p, const fl_source_t *src, const char *from,
           fl_baseline_result_t *out, fl_error_t *err)
{
    const fl_migration_list_t *migs = src->migs;
    fl_layout_tool tool = FL_LAYOUT_AUTO;
    const s_tool_spec_t *spec = NULL;
    s_tool_ledger_t t = {NULL, 0, NULL};
    fl_ledger_t ledger = {NULL, 0};
    size_t n = migs->count ? migs->count : 1;
    int *ran = fl_calloc(n, sizeof(int)), *write = fl_calloc(n, sizeof(int));
    char *source = NULL, *why = NULL, *dflt = NULL;
    int64_t t0 = fl__now_ms();
    int rc = 0;

    FL_ASSERT(src->verified == FL_SOURCE_VERIFIED);
    memset(out, 0, sizeof(*out));
    if (src->bundle_id)
        p->opts.bundle_id = src->bundle_id;
    p->dry_run = 0;
    if (from) {
        if ((rc = fl_layout_tool_from_name(&tool, from, err)) != 0)
            goto cleanup;
        if ((spec = s_spec(tool)) == NULL) {
            rc = FL_ERR(err, FL_EINVAL, "--from %s: flotilla reads the "
                        "ledgers of diesel, golang-migrate, pop, sqlx, "
                        "dbmate and flyway", from);
            goto cleanup;
        }
    }
    if ((rc = fl__lock_target(p, err)) != 0)
        goto cleanup;
    /*
     * Read, not made: a baseline refused writes nothing (before, the
     * ledger was made here, before any check: found by an audit).  It
     * is made just before the rows are written.
     */
    if ((rc = fl_ledger_load(p->pg, p->target, &ledger, err)) != 0 ||
        (rc = fl__tenant_casts(p, err)) != 0 ||
        (!*p->target && (rc = s_default_schema(p, &dflt, err)) != 0))
        goto cleanup;
    /*
     * A bundle's scope and release order hold for the rows a baseline
     * writes as for a run: an older release could record as applied
     * what a newer one changed.  Before, a baseline read no release mark.
     */
    {
        char *override = NULL;

        if ((rc = fl__check_release(p, src, &override, err)) != 0)
            goto cleanup;
        if (override != NULL)
            fl__event(p, FL_STEP_BASELINE, FL_STEP_OK, NULL, 0, NULL,
                      "%s; baselined anyway (--allow-older-release, "
                      "reason: %s)", override,
                      p->opts.reason ? p->opts.reason : "none given");
        free(override);
    }
    if (rc == 0 && dflt != NULL)
        rc = s_check_search_path(p, dflt, err);
    if (rc == 0)
        rc = fl__to_in_source(p, migs, err);
    if (spec) {
        if (rc == 0)
            rc = s_read_tool(p, spec, *p->target ? p->target : dflt, &t,
                             err);
        if (rc == 0)
            rc = s_ran_per_tool(p, tool, &t, migs, ran, err);
        if (rc == 0 && tool == FL_LAYOUT_SQLX)
            rc = s_check_sqlx_sums(p, &t, migs, err);
        source = fl_strdup(fl_layout_tool_name(tool));
        why = fl_asprintf("%s's ledger %s has it", source,
                          t.where ? t.where : "");
        out->tool_ledger = t.where ? fl_strdup(t.where) : NULL;
    } else {
        int to = fl_version_is_set(&p->opts.to_version);
        for (size_t i = 0; i < migs->count; i++)
            ran[i] = !to || s_le(&migs->items[i].version, &p->opts.to_version);
        source = fl_strdup("--to");
        why = to ? fl_asprintf("at or below --to %s", p->opts.to_version.text)
                 : fl_strdup("every migration of the source");
    }
    /*
     * With --from, --to bounds what is baselined too; but never below a
     * migration the tool ran: apply would run that one again.
     */
    if (rc == 0 && spec && fl_version_is_set(&p->opts.to_version)) {
        fl_buf_t above = FL_BUF_INIT(0);
        int nabove = 0;

        for (size_t i = 0; i < migs->count; i++)
            if (ran[i] && !s_le(&migs->items[i].version, &p->opts.to_version))
                s_listf(&above, &nabove, "%s", migs->items[i].file);
        if (nabove) {
            rc = FL_ERR(err, FL_EINVAL, "%d migration%s above --to %s ran "
                        "according to %s's ledger %s: flotilla apply would "
                        "run %s again", nabove, nabove == 1 ? "" : "s",
                        p->opts.to_version.text, source, t.where,
                        nabove == 1 ? "it" : "them");
            fl_error_set_detail(err, "Ran, above --to: %s.",
                                s_listed(&above, nabove));
            fl_error_set_hint(err, "Baseline without --to, or with --to at "
                                   "or above the newest migration %s ran.",
                              source);
        }
        fl_buf_release(&above);
    }
    for (size_t i = 0; rc == 0 && spec && i < migs->count; i++)
        if (fl_version_is_set(&p->opts.to_version) &&
            !s_le(&migs->items[i].version, &p->opts.to_version))
            ran[i] = 0;
    if (rc == 0)
        rc = s_check_ledger(p, migs, ran, &ledger,
                            spec ? why : "--to", write, out, err);
    if (rc == 0) {
        int any = 0;
        for (size_t i = 0; i < migs->count; i++)
            any |= write[i];
        /* Recorded already: nothing to check again, nothing to write. */
        if (any)
            rc = s_check_shape(p, migs, ran, dflt, err);
        if (rc == 0 && any && (rc = fl_ledger_ensure(p->pg, err)) == 0)
            rc = s_write(p, migs, write, source, why, out, err);
        /* From the table the versions were read from (it was "public",
         * whatever schema that table was found in). */
        if (rc == 0 && tool == FL_LAYOUT_FLYWAY)
            rc = s_baseline_repeatables(p, src, *p->target ? p->target
                                                           : dflt, err);
    }
    for (size_t i = 0; i < migs->count; i++) {
        if (ran[i] && fl_version_cmp(&migs->items[i].version, &out->through) > 0)
            out->through = migs->items[i].version;
        if (!ran[i] && fl_ledger_find(&ledger, &migs->items[i].version) == NULL)
            out->pending++;
    }
    if (rc != 0)
        fl__event(p, FL_STEP_BASELINE, FL_STEP_REFUSED, NULL,
                  fl__now_ms() - t0, err, "baseline refused");
    else
        fl__event(p, FL_STEP_BASELINE, FL_STEP_OK, NULL, fl__now_ms() - t0,
                  NULL, "%d migration%s baselined, %d recorded already, %d "
                  "pending (%s)", out->baselined,
                  out->baselined == 1 ? "" : "s", out->already, out->pending,
                  why);
cleanup:
    fl__flush_logs(p);
    fl__unlock_target(p);
    fl_ledger_release(&ledger);
    s_tool_ledger_release(&t);
    free(dflt);
    free(source);
    free(why);
    free(ran);
    free(write);
    return rc;
}

int
fl_pipeline_baseline(fl_pipeline_t *p, const fl_source_t *src,
                     const char *from, fl_baseline_result_t *out,
                     fl_error_t *err)
{
    fl_error_t local = FL_ERROR_INIT;
    int rc = s_baseline(p, src, from, out, err ? err : &local);

    fl_error_clear(&local);
    return rc;
}

void
fl_baseline_result_release(fl_baseline_result_t *r)
{
    if (r == NULL)
        return;
    fl_free(&r->tool_ledger);
}
