/*
 * keys.c - the foreign keys a rollback must leave holding (keys.h): the
 * query that finds, for each key, the rows breaking it, and the refusal
 * that counts and samples them.
 */
#include <stdlib.h>
#include <string.h>

#include "agent/keys.h"
#include "common/alloc.h"
#include "common/buf.h"

/*
 * The validated foreign keys with a restored table on either side (not
 * the copies PostgreSQL makes on partitions), each as the query parts
 * that count the rows breaking it: referencing table and its ONLY, the
 * referencing columns, their NOT NULL test, the referenced table and its
 * ONLY, the condition comparing them with the key's own equality
 * operators (conpfeqop), as PostgreSQL's own check of a foreign key does,
 * and the referencing columns' names, for the message.
 * $1: the restored tables, a JSON array of qualified names; or, when $2
 * is not NULL, the one key named $3 on table $2 (validated or not), with
 * every row read.
 */
static const char s_keys_sql[] =
    "WITH r AS (SELECT ARRAY(SELECT pg_catalog.to_regclass(x)::pg_catalog.oid"
    " FROM pg_catalog.json_array_elements_text($1::pg_catalog.json) x)"
    " AS oids)"
    " SELECT k.conname, pg_catalog.format('%I.%I', cn.nspname, c.relname),"
    " CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'r' THEN 'ONLY ' ELSE '' END,"
    " (SELECT pg_catalog.string_agg(pg_catalog.format('c.%I', a.attname),"
    "  ', ' ORDER BY x.n) FROM pg_catalog.unnest(k.conkey)"
    "  WITH ORDINALITY x(att, n) JOIN pg_catalog.pg_attribute a"
    "  ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid"
    "  AND a.attnum OPERATOR(pg_catalog.=) x.att),"
    " (SELECT pg_catalog.string_agg(pg_catalog.format('c.%I IS NOT NULL',"
    "  a.attname), ' AND ' ORDER BY x.n) FROM pg_catalog.unnest(k.conkey)"
    "  WITH ORDINALITY x(att, n) JOIN pg_catalog.pg_attribute a"
    "  ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid"
    "  AND a.attnum OPERATOR(pg_catalog.=) x.att),"
    " pg_catalog.format('%I.%I', pn.nspname, p.relname),"
    " CASE WHEN p.relkind OPERATOR(pg_catalog.=) 'r' THEN 'ONLY ' ELSE '' END,"
    " (SELECT pg_catalog.string_agg(pg_catalog.format("
    "  'p.%I OPERATOR(%I.%s) c.%I', pa.attname, opn.nspname, op.oprname,"
    "  ca.attname), ' AND ' ORDER BY x.n)"
    "  FROM ROWS FROM (pg_catalog.unnest(k.confkey),"
    "  pg_catalog.unnest(k.conkey), pg_catalog.unnest(k.conpfeqop))"
    "  WITH ORDINALITY x(pk, fk, op, n)"
    "  JOIN pg_catalog.pg_attribute pa ON pa.attrelid OPERATOR(pg_catalog.=)"
    "  k.confrelid AND pa.attnum OPERATOR(pg_catalog.=) x.pk"
    "  JOIN pg_catalog.pg_attribute ca ON ca.attrelid OPERATOR(pg_catalog.=)"
    "  k.conrelid AND ca.attnum OPERATOR(pg_catalog.=) x.fk"
    "  JOIN pg_catalog.pg_operator op ON op.oid OPERATOR(pg_catalog.=) x.op"
    "  JOIN pg_catalog.pg_namespace opn"
    "  ON opn.oid OPERATOR(pg_catalog.=) op.oprnamespace),"
    " (SELECT pg_catalog.string_agg(pg_catalog.format('%I', a.attname),"
    "  ', ' ORDER BY x.n) FROM pg_catalog.unnest(k.conkey)"
    "  WITH ORDINALITY x(att, n) JOIN pg_catalog.pg_attribute a"
    "  ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid"
    "  AND a.attnum OPERATOR(pg_catalog.=) x.att),"
    " ($2::pg_catalog.text IS NOT NULL"
    "  OR k.confrelid OPERATOR(pg_catalog.=) ANY (r.oids))"
    " FROM r, pg_catalog.pg_constraint k"
    " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) k.conrelid"
    " JOIN pg_catalog.pg_namespace cn"
    " ON cn.oid OPERATOR(pg_catalog.=) c.relnamespace"
    " JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) k.confrelid"
    " JOIN pg_catalog.pg_namespace pn"
    " ON pn.oid OPERATOR(pg_catalog.=) p.relnamespace"
    " WHERE k.contype OPERATOR(pg_catalog.=) 'f'"
    " AND k.conparentid OPERATOR(pg_catalog.=) 0"
    " AND CASE WHEN $2::pg_catalog.text IS NULL THEN k.convalidated"
    "  AND (k.conrelid OPERATOR(pg_catalog.=) ANY (r.oids)"
    "  OR k.confrelid OPERATOR(pg_catalog.=) ANY (r.oids))"
    " ELSE k.conrelid OPERATOR(pg_catalog.=)"
    "  pg_catalog.to_regclass($2::pg_catalog.text)::pg_catalog.oid"
    "  AND k.conname OPERATOR(pg_catalog.=) $3::pg_catalog.name END"
    " ORDER BY k.conrelid, k.conname";

/*
 * After the restore of a migration's backups (with foreign keys off, as
 * pg_restore --disable-triggers): each validated foreign key with a
 * restored table on either side must hold.  A row put back may refer to
 * a row deleted since the migration, and a row the migration added and
 * the restore removed may be referred to by one written since; PostgreSQL
 * checks neither while session_replication_role is replica, and the
 * rollback would commit a database that breaks its own constraint.  It
 * fails instead, with the count and a sample, nothing rolled back.  Rows
 * with a NULL in the key are not checked (MATCH SIMPLE).
 */
static int
s_check(fl_pg_t *pg, const char *tables, const char *table, const char *name,
        fl_error_t *err)
{
    const char *p[3] = {tables, table, name};
    fl_pg_result_t r = FL_PG_RESULT_INIT, smp = FL_PG_RESULT_INIT;
    int rc = 0;

    rc = fl_pg_query(pg, &r, s_keys_sql, 3, p, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        const char *con = fl_pg_value(&r, i, 0), *child = fl_pg_value(&r, i, 1),
                   *conly = fl_pg_value(&r, i, 2), *cols = fl_pg_value(&r, i, 3),
                   *nn = fl_pg_value(&r, i, 4), *parent = fl_pg_value(&r, i, 5),
                   *ponly = fl_pg_value(&r, i, 6), *cond = fl_pg_value(&r, i, 7),
                   *shown = fl_pg_value(&r, i, 8),
                   *both = fl_pg_value(&r, i, 9), *ours = "";
        char *q = NULL;

        if (!con || !child || !cols || !nn || !parent || !cond || !shown ||
            !both)
            continue;
        /*
         * Its referenced table not restored, only the rows this
         * transaction wrote (those put back) can break it.
         */
        if (strcmp(both, "t") != 0)
            ours = " AND pg_catalog.age(c.xmin) <= 0";
        q = fl_asprintf("SELECT ROW(%s)::pg_catalog.text FROM %s%s c WHERE %s%s"
                        " AND NOT EXISTS (SELECT 1 FROM %s%s p WHERE %s)"
                        " LIMIT 4", cols, conly, child, nn, ours, ponly,
                        parent, cond);
        fl_pg_result_release(&smp);
        {
            char *sendable = fl_pg_sendable_text_sql(pg, q);
            rc = fl_pg_query(pg, &smp, sendable, 0, NULL, err);
            free(sendable);
        }
        free(q);
        if (rc == 0 && smp.nrows > 0) {
            fl_buf_t s = FL_BUF_INIT(0);
            char *n = NULL;
            q = fl_asprintf("SELECT pg_catalog.count(*) FROM %s%s c WHERE %s%s"
                            " AND NOT EXISTS (SELECT 1 FROM %s%s p WHERE %s)",
                            conly, child, nn, ours, ponly, parent, cond);
            rc = fl_pg_query_value(pg, &n, q, 0, NULL, err);
            free(q);
            for (size_t k = 0; k < smp.nrows && k < 3; k++)
                fl_buf_addf(&s, "%s%s", k ? "; " : "",
                            fl_pg_value(&smp, k, 0));
            if (rc == 0) {
                rc = FL_ERR(err, FL_EFAIL, "the restore leaves %s row%s of %s "
                            "referring to no row of %s (foreign key %s)",
                            n ? n : "?", n && strcmp(n, "1") == 0 ? "" : "s",
                            child, parent, con);
                fl_error_set_detail(err, "Sample (%s): %s.  The rows they "
                                    "refer to were deleted or changed after "
                                    "the migration, or were rows it added, "
                                    "which the restore removes; the restore "
                                    "runs no foreign-key action.", shown,
                                    fl_buf_str(&s));
                fl_error_set_hint(err, "Put the rows referred to back, or "
                                  "change the referring rows, then roll back "
                                  "again.");
            }
            free(n);
            fl_buf_release(&s);
        }
    }
    fl_pg_result_release(&smp);
    fl_pg_result_release(&r);
    return rc;
}

int
fl_keys_check_restored(fl_pg_t *pg, const char *tables, fl_error_t *err)
{
    return s_check(pg, tables, NULL, NULL, err);
}

int
fl_keys_check_one(fl_pg_t *pg, const char *table, const char *name,
                  fl_error_t *err)
{
    return s_check(pg, "[]", table, name, err);
}

