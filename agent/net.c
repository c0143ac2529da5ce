/*
 * net.c - the catalog picture the before-commit net compares: every user
 * table and sequence with what it takes to tell that the transaction
 * destroyed data in it.
 *
 * A snapshot lists, per relation of the managed schemas (tables,
 * partitioned tables, sequences; not flotilla's own schemas, not
 * temporary ones, not materialized views, whose data is derived): its
 * OID, kind, relfilenode (a TRUNCATE or a rewrite gives it a new one),
 * schema and name, its live columns (attnum, type, typmod, name, whether
 * generated), the rows this transaction inserted, updated and deleted in
 * it so far (pg_stat_get_xact_*: they count work of rolled-back
 * subtransactions too, so the pipeline compares differences between two
 * snapshots of the same run), and for a sequence its position and the
 * column that owns it.
 *
 * One query, run on the pinned session (every name qualified), so it is
 * cheap enough to take twice per migration.  The rows come back sorted by
 * OID and fl__net_find() bisects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"

static const char s_snapshot_sql[] =
    "SELECT c.oid, c.relkind, c.relfilenode, n.nspname, c.relname,"
    " CASE WHEN c.relkind IN ('r', 'p') THEN (SELECT pg_catalog.json_agg("
    "   pg_catalog.json_build_array(a.attnum, a.atttypid::pg_catalog.int8, a.atttypmod,"
    "   a.attname, a.attgenerated <> '') ORDER BY a.attnum)"
    "   FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid"
    "   AND a.attnum > 0 AND NOT a.attisdropped) END,"
    " pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid),"
    " pg_catalog.pg_stat_get_xact_tuples_updated(c.oid),"
    " pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid),"
    " CASE WHEN c.relkind = 'S' AND pg_catalog.has_sequence_privilege(c.oid,"
    "   'SELECT') THEN pg_catalog.pg_sequence_last_value(c.oid) END,"
    " ow.nspname, oc.relname, oa.attname"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_catalog.pg_depend d ON c.relkind = 'S'"
    "  AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "  AND d.objid = c.oid AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')"
    " LEFT JOIN pg_catalog.pg_class oc ON oc.oid = d.refobjid"
    " LEFT JOIN pg_catalog.pg_namespace ow ON ow.oid = oc.relnamespace"
    " LEFT JOIN pg_catalog.pg_attribute oa ON oa.attrelid = d.refobjid"
    "  AND oa.attnum = d.refobjsubid"
    " WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname NOT IN"
    "  ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')"
    "  AND n.nspname !~ '^pg_(toast|temp)'"
    " ORDER BY c.oid";

static uint32_t
s_u32(const char *s)
{
    return s ? (uint32_t)strtoul(s, NULL, 10) : 0;
}

static char *
s_dup(const char *s)
{
    return s ? fl_strdup(s) : NULL;
}

/* Parses the JSON column list of a table into rel->cols. */
static void
s_parse_cols(fl_net_rel_t *rel, const char *text)
{
    json_t *a = NULL;
    size_t i;
    json_t *v = NULL;

    if (text == NULL)
        return;
    a = json_loads(text, 0, NULL);
    if (!json_is_array(a)) {
        json_decref(a);
        return;
    }
    rel->cols = fl_calloc(json_array_size(a) + 1, sizeof(fl_net_col_t));
    json_array_foreach(a, i, v) {
        fl_net_col_t *c = &rel->cols[rel->ncols++];
        c->attnum = (int)json_integer_value(json_array_get(v, 0));
        c->typid = (uint32_t)json_integer_value(json_array_get(v, 1));
        c->typmod = (int)json_integer_value(json_array_get(v, 2));
        c->name = fl_strdup(json_string_value(json_array_get(v, 3))
                                ? json_string_value(json_array_get(v, 3)) : "");
        c->generated = json_is_true(json_array_get(v, 4));
    }
    json_decref(a);
}

int
fl__net_snapshot(fl_pg_t *pg, fl_net_snap_t *out, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = fl_pg_query(pg, &r, s_snapshot_sql, 0, NULL, err);
    if (rc != 0)
        return rc;
    out->rels = fl_calloc(r.nrows ? r.nrows : 1, sizeof(fl_net_rel_t));
    out->n = r.nrows;
    for (size_t i = 0; i < r.nrows; i++) {
        fl_net_rel_t *rel = &out->rels[i];
        const char *kind = fl_pg_value(&r, i, 1);

        rel->oid = s_u32(fl_pg_value(&r, i, 0));
        rel->relkind = kind ? kind[0] : '?';
        rel->relfilenode = s_u32(fl_pg_value(&r, i, 2));
        rel->schema = s_dup(fl_pg_value(&r, i, 3));
        rel->name = s_dup(fl_pg_value(&r, i, 4));
        s_parse_cols(rel, fl_pg_value(&r, i, 5));
        rel->n_ins = strtoll(fl_pg_value(&r, i, 6), NULL, 10);
        rel->n_upd = strtoll(fl_pg_value(&r, i, 7), NULL, 10);
        rel->n_del = strtoll(fl_pg_value(&r, i, 8), NULL, 10);
        rel->seq_last = s_dup(fl_pg_value(&r, i, 9));
        rel->owner_schema = s_dup(fl_pg_value(&r, i, 10));
        rel->owner_table = s_dup(fl_pg_value(&r, i, 11));
        rel->owner_column = s_dup(fl_pg_value(&r, i, 12));
    }
    fl_pg_result_release(&r);
    return 0;
}

void
fl__net_rel_release(fl_net_rel_t *rel)
{
    if (rel == NULL)
        return;
    for (size_t j = 0; j < rel->ncols; j++)
        free(rel->cols[j].name);
    free(rel->cols);
    free(rel->schema);
    free(rel->name);
    free(rel->seq_last);
    free(rel->owner_schema);
    free(rel->owner_table);
    free(rel->owner_column);
    memset(rel, 0, sizeof(*rel));
}

void
fl__net_snap_release(fl_net_snap_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        fl__net_rel_release(&s->rels[i]);
    fl_free(&s->rels);
    s->n = 0;
}

int
fl__net_columns(fl_pg_t *pg, fl_net_rel_t *rel, fl_error_t *err)
{
    char o[16];
    const char *p[1] = {o};
    char *v = NULL;
    int rc;

    snprintf(o, sizeof(o), "%u", rel->oid);
    rc = fl_pg_query_value(pg, &v,
        "SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attnum,"
        " a.atttypid::pg_catalog.int8, a.atttypmod, a.attname, a.attgenerated <> '')"
        " ORDER BY a.attnum) FROM pg_catalog.pg_attribute a"
        " WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0"
        " AND NOT a.attisdropped", 1, p, err);
    if (rc == 0)
        s_parse_cols(rel, v);
    free(v);
    return rc;
}

const fl_net_rel_t *
fl__net_find(const fl_net_snap_t *s, uint32_t oid)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->rels[mid].oid == oid)
            return &s->rels[mid];
        if (s->rels[mid].oid < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const fl_net_col_t *
fl__net_col(const fl_net_rel_t *rel, int attnum)
{
    for (size_t i = 0; rel && i < rel->ncols; i++)
        if (rel->cols[i].attnum == attnum)
            return &rel->cols[i];
    return NULL;
}

int
fl__net_cols_intact(const fl_net_rel_t *before, const fl_net_rel_t *now)
{
    for (size_t i = 0; i < before->ncols; i++) {
        const fl_net_col_t *b = &before->cols[i];
        const fl_net_col_t *c = fl__net_col(now, b->attnum);
        if (b->generated)
            continue;
        if (c == NULL || c->typid != b->typid || c->typmod != b->typmod)
            return 0;
    }
    return 1;
}

