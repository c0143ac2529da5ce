/*
 * checks.c - live-data checks run before a statement changes anything
 * (see fl__check_run in pipeline_internal.h).
 *
 * Each check counts the rows that would make the statement fail or do
 * harm, and shows up to three of them, so that the refusal says what to
 * fix: NULLs before SET NOT NULL, duplicate groups before a unique index,
 * orphans before a validated foreign key, violations before a validated
 * CHECK, and dependent views and foreign keys before a DROP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"

#define S_SAMPLE_ROWS 3
#define S_SAMPLE_CHARS 200

int64_t
fl__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
fl__qualify(fl_pg_t *pg, const char *schema, const char *table)
{
    char *t = fl_pg_quote_ident(pg, table);
    char *s = NULL;
    char *out = NULL;

    if (schema == NULL)
        return t;
    s = fl_pg_quote_ident(pg, schema);
    out = fl_asprintf("%s.%s", s, t);
    free(s);
    free(t);
    return out;
}

static const char *
s_kind_name(fl_check_kind kind)
{
    switch (kind) {
    case FL_CHECK_TABLE_EXISTS:  return "table-exists";
    case FL_CHECK_COLUMN_EXISTS: return "column-exists";
    case FL_CHECK_NOT_NULL:      return "not-null";
    case FL_CHECK_UNIQUE:        return "unique";
    case FL_CHECK_FOREIGN_KEY:   return "foreign-key";
    case FL_CHECK_CHECK:         return "check";
    case FL_CHECK_DEPENDENTS:    return "dependents";
    }
    return "?";
}

char *
fl__check_describe(const fl_check_t *c)
{
    fl_buf_t b = FL_BUF_INIT(0);

    fl_buf_addf(&b, "%s on %s%s%s", s_kind_name(c->kind),
                  c->schema ? c->schema : "", c->schema ? "." : "", c->table);
    if (c->ncolumns) {
        fl_buf_addf(&b, "(");
        for (size_t i = 0; i < c->ncolumns; i++)
            fl_buf_addf(&b, "%s%s", i ? ", " : "", c->columns[i]);
        fl_buf_addf(&b, ")");
    }
    if (c->kind == FL_CHECK_FOREIGN_KEY)
        fl_buf_addf(&b, " -> %s%s%s", c->ref_schema ? c->ref_schema : "",
                      c->ref_schema ? "." : "", c->ref_table);
    if (c->kind == FL_CHECK_CHECK && c->expr)
        fl_buf_addf(&b, " (%s)", c->expr);
    return fl_buf_detach(&b);
}

/* "a, b" of quoted identifiers, each prefixed with alias if given. */
static char *
s_column_list(fl_pg_t *pg, char *const *cols, size_t n, const char *alias)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; i < n; i++) {
        char *q = fl_pg_quote_ident(pg, cols[i]);
        fl_buf_addf(&b, "%s%s%s%s", i ? ", " : "", alias ? alias : "",
                      alias ? "." : "", q);
        free(q);
    }
    return fl_buf_detach(&b);
}

/*
 * Runs a count query and, when the count is nonzero, a sample query;
 * fills *count and a new "; "-joined sample string.
 */
static int
s_count_and_sample(fl_pg_t *pg, const char *count_sql, const char *sample_sql,
                   long long *count, char **sample, fl_error_t *err)
{
    char *v = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_buf_t b = FL_BUF_INIT(0);
    int rc = fl_pg_query_value(pg, &v, count_sql, 0, NULL, err);

    *sample = NULL;
    if (rc != 0)
        return rc;
    *count = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    if (*count == 0 || sample_sql == NULL)
        return 0;
    if ((rc = fl_pg_query(pg, &r, sample_sql, 0, NULL, err)) != 0)
        return rc;
    for (size_t i = 0; i < r.nrows; i++) {
        const char *s = fl_pg_value(&r, i, 0);
        fl_buf_addf(&b, "%s%.*s", i ? "; " : "", S_SAMPLE_CHARS, s ? s : "NULL");
    }
    fl_pg_result_release(&r);
    *sample = fl_buf_detach(&b);
    return 0;
}

static int s_primary_key(fl_pg_t *pg, const char *qualified,
                         fl_pg_result_t *out, fl_error_t *err);

/*
 * The sample query of a check: the rows matching where (owned, freed),
 * shown as their key and the check's columns only (a whole row may hold
 * what should not reach a log or a coordinator), or as the key alone
 * when samples are redacted.  NULL when there is nothing to show.
 */
static char *
s_sample_sql(fl_pg_t *pg, const char *qt, const fl_check_t *c,
             const fl_check_opts_t *o, char *where)
{
    fl_pg_result_t pk = FL_PG_RESULT_INIT;
    fl_error_t ignore = FL_ERROR_INIT;
    fl_buf_t b = FL_BUF_INIT(0);
    char *sql = NULL;
    size_t n = 0;

    /* The key, when the table has one (a failed lookup: no key shown). */
    if (s_primary_key(pg, qt, &pk, &ignore) == 0)
        for (size_t i = 0; i < pk.nrows; i++) {
            char *q = fl_pg_quote_ident(pg, fl_pg_value(&pk, i, 0));
            fl_buf_addf(&b, "%st.%s", n++ ? ", " : "", q);
            free(q);
        }
    for (size_t i = 0; !o->redact_samples && i < c->ncolumns; i++) {
        int in_key = 0;
        char *q = NULL;
        for (size_t k = 0; k < pk.nrows; k++)
            in_key |= strcmp(fl_pg_value(&pk, k, 0), c->columns[i]) == 0;
        if (in_key)
            continue;
        q = fl_pg_quote_ident(pg, c->columns[i]);
        fl_buf_addf(&b, "%st.%s", n++ ? ", " : "", q);
        free(q);
    }
    if (n > 0)
        sql = fl_asprintf("SELECT ROW(%s)::pg_catalog.text FROM %s t WHERE %s"
                          " LIMIT %d", fl_buf_str(&b), qt, where,
                          S_SAMPLE_ROWS);
    fl_buf_release(&b);
    fl_pg_result_release(&pk);
    fl_error_clear(&ignore);
    free(where);
    return sql;
}

static int
s_exists(fl_pg_t *pg, const char *qualified, const char *column, int *exists,
         fl_error_t *err)
{
    const char *params[2] = {qualified, column};
    char *v = NULL;
    int rc = fl_pg_query_value(pg, &v, column ?
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute WHERE attrelid"
        " OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)"
        " AND attname OPERATOR(pg_catalog.=) $2::pg_catalog.name"
        " AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped" :
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_class WHERE oid"
        " OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)",
        column ? 2 : 1, params, err);

    if (rc == 0)
        *exists = v && strcmp(v, "0") != 0;
    free(v);
    return rc;
}

/* Primary key columns of a table, for a foreign key naming none. */
static int
s_primary_key(fl_pg_t *pg, const char *qualified, fl_pg_result_t *out,
              fl_error_t *err)
{
    const char *params[1] = {qualified};

    return fl_pg_query(pg, out,
        "SELECT a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a"
        " ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum"
        " OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])"
        " WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
        "$1::pg_catalog.text) AND i.indisprimary"
        " ORDER BY pg_catalog.array_position(i.indkey::pg_catalog.int2[],"
        " a.attnum)", 1, params, err);
}

int
fl__check_run(fl_pg_t *pg, const fl_check_t *c, const fl_check_opts_t *o,
              json_t *report, fl_error_t *err)
{
    int cascades = o->cascades;
    char *qt = fl__qualify(pg, c->schema, c->table);
    char *label = fl__check_describe(c);
    char *cols = s_column_list(pg, c->columns, c->ncolumns, NULL);
    char *count_sql = NULL, *sample_sql = NULL, *sample = NULL;
    char *why = NULL;
    const char *hint = NULL;
    long long count = 0;
    int exists = 0;
    int rc = 0;

    switch (c->kind) {
    case FL_CHECK_TABLE_EXISTS:
        if ((rc = s_exists(pg, qt, NULL, &exists, err)) != 0)
            goto cleanup;
        if (!exists) {
            why = fl_asprintf("table %s does not exist", qt);
            hint = "Check the table name and the search_path, or the order of "
                   "the migrations.";
        }
        break;
    case FL_CHECK_COLUMN_EXISTS:
        for (size_t i = 0; i < c->ncolumns && !why; i++) {
            if ((rc = s_exists(pg, qt, c->columns[i], &exists, err)) != 0)
                goto cleanup;
            if (!exists)
                why = fl_asprintf("column \"%s\" of table %s does not exist",
                                  c->columns[i], qt);
        }
        hint = "Check the column name, or the order of the migrations.";
        break;
    case FL_CHECK_NOT_NULL:
        count_sql = fl_asprintf("SELECT pg_catalog.count(*) FROM %s WHERE %s IS"
                                " NULL", qt, cols);
        sample_sql = s_sample_sql(pg, qt, c, o, fl_asprintf("%s IS NULL", cols));
        if ((rc = s_count_and_sample(pg, count_sql, sample_sql, &count, &sample, err)) != 0)
            goto cleanup;
        if (count) {
            why = fl_asprintf("%lld row%s of %s %s NULL in column %s", count,
                              count == 1 ? "" : "s", qt, count == 1 ? "is" : "are", cols);
            hint = "Fill the NULLs first (an UPDATE in this migration before "
                   "SET NOT NULL, or an earlier migration).";
        }
        break;
    case FL_CHECK_UNIQUE: {
        fl_buf_t nn = FL_BUF_INIT(0);
        char *where = NULL;
        for (size_t i = 0; i < c->ncolumns; i++) {
            char *q = fl_pg_quote_ident(pg, c->columns[i]);
            fl_buf_addf(&nn, "%s%s IS NOT NULL", i ? " AND " : "", q);
            free(q);
        }
        where = fl_buf_detach(&nn);
        count_sql = fl_asprintf("SELECT pg_catalog.count(*) FROM (SELECT 1 FROM"
                                " %s WHERE %s GROUP BY %s HAVING"
                                " pg_catalog.count(*) OPERATOR(pg_catalog.>) 1)"
                                " d", qt, *where ? where : "true", cols);
        /* The duplicated values are the offending columns themselves. */
        sample_sql = o->redact_samples ? NULL : fl_asprintf(
            "SELECT ROW(%s)::pg_catalog.text OPERATOR(pg_catalog.||) ' x'"
            " OPERATOR(pg_catalog.||) pg_catalog.count(*)::pg_catalog.text"
            " FROM %s WHERE %s GROUP BY %s HAVING pg_catalog.count(*)"
            " OPERATOR(pg_catalog.>) 1 LIMIT %d", cols, qt,
            *where ? where : "true", cols, S_SAMPLE_ROWS);
        free(where);
        if ((rc = s_count_and_sample(pg, count_sql, sample_sql, &count, &sample, err)) != 0)
            goto cleanup;
        if (count) {
            why = fl_asprintf("%lld duplicate group%s in %s(%s)", count,
                              count == 1 ? "" : "s", qt, cols);
            hint = "Remove or merge the duplicates before adding the unique "
                   "index or constraint.";
        }
        break;
    }
    case FL_CHECK_FOREIGN_KEY: {
        char *rt = fl__qualify(pg, c->ref_schema, c->ref_table);
        fl_pg_result_t pk = FL_PG_RESULT_INIT;
        char **refcols = c->ref_columns;
        size_t nref = c->nref_columns;
        fl_buf_t cond = FL_BUF_INIT(0), nn = FL_BUF_INIT(0);
        char *conds = NULL, *nns = NULL;

        if (nref == 0) {
            if ((rc = s_primary_key(pg, rt, &pk, err)) != 0) {
                free(rt);
                goto cleanup;
            }
            refcols = pk.values;
            nref = pk.nrows;
        }
        if (nref != c->ncolumns) {
            why = fl_asprintf("foreign key from %s(%s) names %zu column%s but "
                              "%s has %zu key column%s", qt, cols, c->ncolumns,
                              c->ncolumns == 1 ? "" : "s", rt, nref,
                              nref == 1 ? "" : "s");
        } else {
            for (size_t i = 0; i < nref; i++) {
                char *a = fl_pg_quote_ident(pg, c->columns[i]);
                char *b = fl_pg_quote_ident(pg, refcols[i]);
                fl_buf_addf(&cond, "%sr.%s = t.%s", i ? " AND " : "", b, a);
                fl_buf_addf(&nn, "%st.%s IS NOT NULL", i ? " AND " : "", a);
                free(a);
                free(b);
            }
            conds = fl_buf_detach(&cond);
            nns = fl_buf_detach(&nn);
            count_sql = fl_asprintf("SELECT pg_catalog.count(*) FROM %s t WHERE"
                                    " %s AND NOT EXISTS (SELECT 1 FROM %s r"
                                    " WHERE %s)", qt, nns, rt, conds);
            sample_sql = s_sample_sql(pg, qt, c, o, fl_asprintf(
                "%s AND NOT EXISTS (SELECT 1 FROM %s r WHERE %s)", nns, rt,
                conds));
            rc = s_count_and_sample(pg, count_sql, sample_sql, &count, &sample, err);
            if (rc == 0 && count) {
                why = fl_asprintf("%lld row%s of %s reference%s no row of %s",
                                  count, count == 1 ? "" : "s", qt,
                                  count == 1 ? "s" : "", rt);
                hint = "Delete or fix the orphan rows first, or add the "
                       "constraint NOT VALID and validate it later.";
            }
        }
        free(conds);
        free(nns);
        fl_buf_release(&cond);
        fl_buf_release(&nn);
        fl_pg_result_release(&pk);
        free(rt);
        if (rc != 0)
            goto cleanup;
        break;
    }
    case FL_CHECK_CHECK:
        count_sql = fl_asprintf("SELECT pg_catalog.count(*) FROM %s WHERE NOT"
                                " (%s)", qt, c->expr ? c->expr : "true");
        sample_sql = s_sample_sql(pg, qt, c, o, fl_asprintf(
            "NOT (%s)", c->expr ? c->expr : "true"));
        if ((rc = s_count_and_sample(pg, count_sql, sample_sql, &count, &sample, err)) != 0)
            goto cleanup;
        if (count) {
            why = fl_asprintf("%lld row%s of %s violate%s CHECK (%s)", count,
                              count == 1 ? "" : "s", qt, count == 1 ? "s" : "",
                              c->expr ? c->expr : "");
            hint = "Fix the rows first, or add the constraint NOT VALID and "
                   "validate it later.";
        }
        break;
    case FL_CHECK_DEPENDENTS: {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        /*
         * With CASCADE the foreign keys go with the table; they are
         * recorded as changes of the migration and re-created by its
         * rollback.  Views are not, so they still refuse it.
         */
        const char *params[3] = {qt, c->ncolumns ? c->columns[0] : NULL,
                                 cascades ? "true" : "false"};
        fl_buf_t b = FL_BUF_INIT(0);

        if ((rc = s_exists(pg, qt, NULL, &exists, err)) != 0)
            goto cleanup;
        if (!exists)
            break; /* the statement itself will say so (or IF EXISTS skips) */
        rc = fl_pg_query(pg, &r,
            "SELECT DISTINCT 'view ' OPERATOR(pg_catalog.||)"
            " v.oid::pg_catalog.regclass::pg_catalog.text"
            " FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite w"
            " ON w.oid OPERATOR(pg_catalog.=) d.objid"
            " JOIN pg_catalog.pg_class v ON v.oid OPERATOR(pg_catalog.=) w.ev_class"
            " WHERE d.classid OPERATOR(pg_catalog.=)"
            "   'pg_catalog.pg_rewrite'::pg_catalog.regclass"
            "   AND d.refobjid OPERATOR(pg_catalog.=)"
            "   pg_catalog.to_regclass($1::pg_catalog.text)"
            "   AND v.oid OPERATOR(pg_catalog.<>) d.refobjid"
            "   AND ($2::pg_catalog.text IS NULL OR d.refobjsubid"
            "   OPERATOR(pg_catalog.=) (SELECT attnum FROM pg_catalog.pg_attribute"
            "   WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
            "   $1::pg_catalog.text) AND attname OPERATOR(pg_catalog.=)"
            "   $2::pg_catalog.name))"
            " UNION ALL"
            " SELECT 'foreign key ' OPERATOR(pg_catalog.||)"
            "   pg_catalog.quote_ident(conname) OPERATOR(pg_catalog.||) ' on '"
            "   OPERATOR(pg_catalog.||)"
            "   conrelid::pg_catalog.regclass::pg_catalog.text"
            " FROM pg_catalog.pg_constraint"
            " WHERE contype OPERATOR(pg_catalog.=) 'f' AND confrelid"
            "   OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)"
            "   AND NOT $3::pg_catalog.bool"
            "   AND conrelid OPERATOR(pg_catalog.<>) confrelid"
            "   AND ($2::pg_catalog.text IS NULL OR (SELECT attnum FROM"
            "   pg_catalog.pg_attribute WHERE attrelid OPERATOR(pg_catalog.=)"
            "   pg_catalog.to_regclass($1::pg_catalog.text) AND attname"
            "   OPERATOR(pg_catalog.=) $2::pg_catalog.name)"
            "   OPERATOR(pg_catalog.=) ANY (confkey))"
            " ORDER BY 1", 3, params, err);
        if (rc != 0)
            goto cleanup;
        count = (long long)r.nrows;
        for (size_t i = 0; i < r.nrows; i++)
            fl_buf_addf(&b, "%s%s", i ? "; " : "", fl_pg_value(&r, i, 0));
        sample = count ? fl_buf_detach(&b) : NULL;
        fl_buf_release(&b);
        fl_pg_result_release(&r);
        if (count) {
            why = fl_asprintf("%lld object%s depend%s on %s%s%s", count,
                              count == 1 ? "" : "s", count == 1 ? "s" : "", qt,
                              c->ncolumns ? " column " : "",
                              c->ncolumns ? c->columns[0] : "");
            hint = "Drop or change the dependent objects explicitly in this "
                   "migration first, so that its down can re-create them.";
        }
        break;
    }
    }
    if (report) {
        json_t *jo = fl_json_pack("{s:s, s:s, s:b}", "check", s_kind_name(c->kind),
                              "target", label, "ok", why == NULL);
        if (count)
            json_object_set_new(jo, "count", json_integer(count));
        if (sample)
            json_object_set_new(jo, "sample", json_string(sample));
        if (why)
            json_object_set_new(jo, "problem", json_string(why));
        json_array_append_new(report, jo);
    }
    if (why) {
        rc = FL_ERR(err, FL_EINVAL, "check %s failed: %s", label, why);
        if (sample)
            fl_error_set_detail(err, "%s: %s",
                                c->kind == FL_CHECK_DEPENDENTS ? "Dependents"
                                                               : "Sample", sample);
        if (hint)
            fl_error_set_hint(err, "%s", hint);
    }
cleanup:
    free(why);
    free(sample);
    free(count_sql);
    free(sample_sql);
    free(cols);
    free(label);
    free(qt);
    return rc;
}
