/*
 * backup.c - backups before destructive statements, restore on rollback,
 * and the schema fingerprint.
 *
 * A backup is a copy of the table in schema flotilla_backup (named
 * "b<id>_<table>"), taken inside the migration's transaction after the
 * table is locked, so it holds exactly the rows the statement is about to
 * destroy and disappears if the migration rolls back.  Its checksum is
 * order-independent: the sum of a 64-bit hash of each row's text, over
 * the columns as they were listed at backup time, so a column that `down`
 * re-creates at another position still compares equal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"

/* Builds "sum of row hashes" over cols of relation alias t. */
static char *
s_checksum_sql(const char *from, const char *cols_t, const char *where)
{
    return fl_asprintf("SELECT count(*), coalesce(sum(hashtextextended("
                       "ROW(%s)::text, 0)::numeric), 0)::text FROM %s t%s%s",
                       cols_t, from, where ? " WHERE " : "", where ? where : "");
}

/* "t.a, t.b" (alias NULL: "a, b"): column col of each row, quoted. */
static char *
s_cols(fl_pg_t *pg, const fl_pg_result_t *cols, size_t col, const char *alias)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; i < cols->nrows; i++) {
        char *q = fl_pg_quote_ident(pg, fl_pg_value(cols, i, col));
        fl_buf_printf(&b, "%s%s%s%s", i ? ", " : "", alias ? alias : "",
                      alias ? "." : "", q);
        free(q);
    }
    return fl_buf_detach(&b);
}

int
fl__backup_table(fl_pg_t *pg, int64_t version, const char *bundle_id,
                 int stmt_index, const char *schema, const char *table,
                 const char *lockmode, char **location, fl_error_t *err)
{
    char *qt = fl__qualify(pg, schema, table);
    fl_pg_result_t rel = FL_PG_RESULT_INIT, cols = FL_PG_RESULT_INIT,
                   sum = FL_PG_RESULT_INIT;
    char *id = NULL, *name = NULL, *qname = NULL, *collist = NULL,
         *collist_t = NULL, *sql = NULL;
    const char *params[1] = {qt};
    int rc = 0;

    *location = NULL;
    rc = fl_pg_query(pg, &rel,
        "SELECT n.nspname, c.relname, c.oid FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass($1)", 1, params, err);
    if (rc != 0)
        goto cleanup;
    if (rel.nrows == 0) {
        rc = FL_ERR(err, FL_ENOTFOUND, "could not back up table %s: it does "
                    "not exist", qt);
        goto cleanup;
    }
    params[0] = fl_pg_value(&rel, 0, 2);
    rc = fl_pg_query(pg, &cols,
        "SELECT attname FROM pg_attribute WHERE attrelid = $1"
        " AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
        " ORDER BY attnum", 1, params, err);
    if (rc != 0)
        goto cleanup;
    if ((rc = fl_pg_execf(pg, err, "LOCK TABLE %s IN %s MODE", qt, lockmode)) != 0)
        goto cleanup;
    rc = fl_pg_query_value(pg, &id,
        "SELECT nextval(pg_get_serial_sequence('flotilla.backups', 'id'))",
        0, NULL, err);
    if (rc != 0)
        goto cleanup;
    name = fl_asprintf("b%s_%.50s", id, fl_pg_value(&rel, 0, 1));
    qname = fl__qualify(pg, "flotilla_backup", name);
    collist = s_cols(pg, &cols, 0, NULL);
    collist_t = s_cols(pg, &cols, 0, "t");
    rc = fl_pg_execf(pg, err, "CREATE TABLE %s AS SELECT %s FROM %s", qname,
                     collist, qt);
    if (rc != 0)
        goto cleanup;
    sql = s_checksum_sql(qname, collist_t, NULL);
    if ((rc = fl_pg_query(pg, &sum, sql, 0, NULL, err)) != 0)
        goto cleanup;
    {
        char ver[24], idx[16];
        const char *p[10];
        fl_pg_result_t ins = FL_PG_RESULT_INIT;

        snprintf(ver, sizeof(ver), "%lld", (long long)version);
        snprintf(idx, sizeof(idx), "%d", stmt_index);
        p[0] = id; p[1] = ver; p[2] = bundle_id; p[3] = idx;
        p[4] = fl_pg_value(&rel, 0, 0); p[5] = fl_pg_value(&rel, 0, 1);
        p[6] = qname; p[7] = fl_pg_value(&rel, 0, 2);
        p[8] = fl_pg_value(&sum, 0, 0); p[9] = fl_pg_value(&sum, 0, 1);
        /* Column and key names are read from the catalog, unquoted. */
        rc = fl_pg_query(pg, &ins,
            "INSERT INTO flotilla.backups (id, version, bundle_id,"
            " statement_index, source_schema, source_table, kind, location,"
            " columns, key_columns, row_count, checksum) VALUES"
            " ($1, $2, $3, $4, $5, $6, 'table', $7,"
            "  ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = $8"
            "   AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
            "   ORDER BY attnum),"
            "  ARRAY(SELECT a.attname::text FROM pg_index i JOIN pg_attribute a"
            "   ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
            "   WHERE i.indrelid = $8 AND i.indisprimary"
            "   ORDER BY array_position(i.indkey::int2[], a.attnum)),"
            "  $9, $10)", 10, p, err);
        fl_pg_result_release(&ins);
    }
    if (rc == 0)
        *location = fl_asprintf("%s (%s rows)", qname, fl_pg_value(&sum, 0, 0));
cleanup:
    if (rc != 0)
        fl_error_prefix(err, "could not back up table %s: ", qt);
    fl_pg_result_release(&rel);
    fl_pg_result_release(&cols);
    fl_pg_result_release(&sum);
    free(id);
    free(name);
    free(qname);
    free(collist);
    free(collist_t);
    free(sql);
    free(qt);
    return rc;
}

/* Restores one backup row; see fl__restore_backups. */
static int
s_restore_one(fl_pg_t *pg, const char *backup_id, fl_error_t *err)
{
    fl_pg_result_t b = FL_PG_RESULT_INIT, cols = FL_PG_RESULT_INIT,
                   keys = FL_PG_RESULT_INIT, sum = FL_PG_RESULT_INIT;
    const char *p[1] = {backup_id};
    char *qt = NULL, *all = NULL, *all_t = NULL, *all_b = NULL, *sql = NULL,
         *where = NULL;
    fl_buf_t set = FL_BUF_INIT(0), on = FL_BUF_INIT(0);
    int rc = 0;

    rc = fl_pg_query(pg, &b,
        "SELECT source_schema, source_table, location, row_count::text, checksum,"
        " pruned_at::text FROM flotilla.backups WHERE id = $1", 1, p, err);
    if (rc != 0)
        goto cleanup;
    if (fl_pg_value(&b, 0, 5) != NULL) {
        rc = FL_ERR(err, FL_EFAIL, "backup %s of table %s.%s was pruned on %s",
                    fl_pg_value(&b, 0, 2), fl_pg_value(&b, 0, 0),
                    fl_pg_value(&b, 0, 1), fl_pg_value(&b, 0, 5));
        fl_error_set_detail(err, "Rolling back would run down without the "
                                 "data it needs; nothing was rolled back.");
        fl_error_set_hint(err, "Restore the data by hand, or write a new "
                               "migration instead of rolling back.");
        goto cleanup;
    }
    qt = fl__qualify(pg, fl_pg_value(&b, 0, 0), fl_pg_value(&b, 0, 1));
    /* Backed-up columns, with whether each exists in the table now. */
    rc = fl_pg_query(pg, &cols,
        "SELECT c, EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
        "   to_regclass(quote_ident(b.source_schema) || '.' ||"
        "   quote_ident(b.source_table)) AND attname = c AND attnum > 0"
        "   AND NOT attisdropped)"
        " FROM flotilla.backups b, unnest(b.columns) WITH ORDINALITY AS u(c, n)"
        " WHERE b.id = $1 ORDER BY n", 1, p, err);
    if (rc == 0)
        rc = fl_pg_query(pg, &keys,
            "SELECT k FROM flotilla.backups b, unnest(b.key_columns)"
            " WITH ORDINALITY AS u(k, n) WHERE b.id = $1 ORDER BY n", 1, p, err);
    if (rc != 0)
        goto cleanup;
    {
        char *v = NULL;
        const char *q[1] = {qt};
        rc = fl_pg_query_value(pg, &v, "SELECT to_regclass($1) IS NOT NULL", 1,
                               q, err);
        if (rc == 0 && (v == NULL || strcmp(v, "t") != 0))
            rc = FL_ERR(err, FL_ENOTFOUND, "table %s does not exist after "
                        "down ran", qt);
        free(v);
        if (rc != 0) {
            fl_error_set_hint(err, "The migration's down section must "
                                   "re-create the table it dropped.");
            goto cleanup;
        }
    }
    for (size_t i = 0; i < cols.nrows; i++) {
        if (strcmp(fl_pg_value(&cols, i, 1), "t") != 0) {
            rc = FL_ERR(err, FL_ENOTFOUND, "column \"%s\" of table %s does not "
                        "exist after down ran", fl_pg_value(&cols, i, 0), qt);
            fl_error_set_hint(err, "The migration's down section must "
                                   "re-create the columns it dropped.");
            goto cleanup;
        }
    }
    all = s_cols(pg, &cols, 0, NULL);
    all_t = s_cols(pg, &cols, 0, "t");
    all_b = s_cols(pg, &cols, 0, "b");
    if (keys.nrows > 0) {
        /* By primary key: put back old values, re-insert missing rows. */
        for (size_t i = 0; i < keys.nrows; i++) {
            char *k = fl_pg_quote_ident(pg, fl_pg_value(&keys, i, 0));
            fl_buf_printf(&on, "%st.%s = b.%s", i ? " AND " : "", k, k);
            free(k);
        }
        for (size_t i = 0; i < cols.nrows; i++) {
            int is_key = 0;
            for (size_t j = 0; j < keys.nrows; j++)
                is_key |= strcmp(fl_pg_value(&cols, i, 0),
                                 fl_pg_value(&keys, j, 0)) == 0;
            if (!is_key) {
                char *c = fl_pg_quote_ident(pg, fl_pg_value(&cols, i, 0));
                fl_buf_printf(&set, "%s%s = b.%s", set.len ? ", " : "", c, c);
                free(c);
            }
        }
        if (set.len) {
            rc = fl_pg_execf(pg, err, "UPDATE %s t SET %s FROM %s b WHERE %s",
                             qt, fl_buf_str(&set), fl_pg_value(&b, 0, 2),
                             fl_buf_str(&on));
            if (rc != 0)
                goto cleanup;
        }
        rc = fl_pg_execf(pg, err, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE"
                         " SELECT %s FROM %s b WHERE NOT EXISTS (SELECT 1 FROM"
                         " %s t WHERE %s)", qt, all, all_b,
                         fl_pg_value(&b, 0, 2), qt, fl_buf_str(&on));
        if (rc != 0)
            goto cleanup;
        where = fl_asprintf("EXISTS (SELECT 1 FROM %s b WHERE %s)",
                            fl_pg_value(&b, 0, 2), fl_buf_str(&on));
    } else {
        /* No key: the table's rows become the backed-up rows. */
        rc = fl_pg_execf(pg, err, "DELETE FROM %s; INSERT INTO %s (%s)"
                         " OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
                         qt, qt, all, all, fl_pg_value(&b, 0, 2));
        if (rc != 0)
            goto cleanup;
    }
    sql = s_checksum_sql(qt, all_t, where);
    if ((rc = fl_pg_query(pg, &sum, sql, 0, NULL, err)) != 0)
        goto cleanup;
    if (strcmp(fl_pg_value(&sum, 0, 0), fl_pg_value(&b, 0, 3)) != 0 ||
        strcmp(fl_pg_value(&sum, 0, 1), fl_pg_value(&b, 0, 4)) != 0) {
        rc = FL_ERR(err, FL_EFAIL, "restored rows of table %s do not match "
                    "the backup", qt);
        fl_error_set_detail(err, "Backup %s holds %s rows with checksum %s; "
                            "the table now has %s rows with checksum %s.",
                            fl_pg_value(&b, 0, 2), fl_pg_value(&b, 0, 3),
                            fl_pg_value(&b, 0, 4), fl_pg_value(&sum, 0, 0),
                            fl_pg_value(&sum, 0, 1));
        fl_error_set_hint(err, "Nothing was rolled back.  Check that down "
                               "re-creates the columns with their types; the "
                               "backup table is kept.");
        goto cleanup;
    }
    rc = fl_pg_execf(pg, err, "UPDATE flotilla.backups SET restored_at ="
                     " clock_timestamp() WHERE id = %s", backup_id);
cleanup:
    fl_buf_release(&set);
    fl_buf_release(&on);
    fl_pg_result_release(&b);
    fl_pg_result_release(&cols);
    fl_pg_result_release(&keys);
    fl_pg_result_release(&sum);
    free(qt);
    free(all);
    free(all_t);
    free(all_b);
    free(sql);
    free(where);
    return rc;
}

int
fl__restore_backups(fl_pg_t *pg, int64_t version, int *restored,
                    fl_error_t *err)
{
    fl_pg_result_t ids = FL_PG_RESULT_INIT;
    char ver[24];
    const char *p[1] = {ver};
    int rc = 0;

    *restored = 0;
    snprintf(ver, sizeof(ver), "%lld", (long long)version);
    /*
     * Newest first: when two statements backed up the same table, the
     * oldest copy is the pre-migration state and must be applied last.
     */
    rc = fl_pg_query(pg, &ids,
        "SELECT id FROM flotilla.backups WHERE version = $1"
        " AND restored_at IS NULL ORDER BY id DESC", 1, p, err);
    for (size_t i = 0; rc == 0 && i < ids.nrows; i++) {
        rc = s_restore_one(pg, fl_pg_value(&ids, i, 0), err);
        if (rc == 0)
            (*restored)++;
    }
    fl_pg_result_release(&ids);
    return rc;
}

/*
 * The catalog description of every user schema (not flotilla's own):
 * columns by name with type, default and nullability; constraints;
 * indexes; views.  Columns are listed by name, not position, so a column
 * re-created by `down` at another position changes nothing.
 */
static const char s_fingerprint_sql[] =
    "WITH s AS (SELECT oid, nspname FROM pg_namespace WHERE nspname NOT IN"
    "  ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')"
    "  AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%')"
    " SELECT encode(sha256(convert_to(coalesce(string_agg(x, E'\\n' ORDER BY x),"
    " ''), 'UTF8')), 'hex') FROM ("
    "  SELECT format('column %I.%I.%I %s notnull=%s default=%s', s.nspname,"
    "   c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
    "   a.attnotnull, pg_get_expr(d.adbin, d.adrelid)) AS x"
    "  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    "  JOIN s ON s.oid = c.relnamespace"
    "  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "  WHERE a.attnum > 0 AND NOT a.attisdropped"
    "   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
    "  UNION ALL"
    "  SELECT format('constraint %I.%I %I %s', s.nspname, c.relname, k.conname,"
    "   pg_get_constraintdef(k.oid))"
    "  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
    "  JOIN s ON s.oid = c.relnamespace"
    "  UNION ALL"
    "  SELECT format('index %s', pg_get_indexdef(i.indexrelid))"
    "  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    "  JOIN s ON s.oid = c.relnamespace"
    "  UNION ALL"
    "  SELECT format('view %I.%I %s', s.nspname, c.relname, pg_get_viewdef(c.oid))"
    "  FROM pg_class c JOIN s ON s.oid = c.relnamespace"
    "  WHERE c.relkind IN ('v', 'm')) f";

int
fl__schema_fingerprint(fl_pg_t *pg, char **out, fl_error_t *err)
{
    return fl_pg_query_value(pg, out, s_fingerprint_sql, 0, NULL, err);
}
