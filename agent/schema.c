/*
 * schema.c - schema snapshots, recorded changes, re-creation after `down`
 * and the proof of a rollback (see schema.h).
 *
 * Everything known about the catalog is one query, S_ROWS_SQL, which
 * returns (kind, ident, def, target) for every described object of the
 * managed schemas ($1: one schema, or NULL for all).  A snapshot stores
 * its rows with a def, from the same text without the targets
 * (S_SNAP_HEAD, S_SNAP_TAIL); re-creation joins the recorded changes with it, live,
 * for two things a stored row cannot give: the current def and the
 * target, an SQL reference to the object built from catalog names by
 * format('%I') ("COLUMN app.t.c", "ON TABLE app.t", the table of an
 * index).  Rows whose def is NULL (an object without a comment, a column
 * without grants) exist only for their target.
 *
 * Cost: a snapshot runs after every migration, so the query is written
 * for it (see S_CTES_SQL and bench/schema.sh); its statements are
 * prepared once per connection and planned generically, in the variant
 * that describes only the kinds of object the schemas hold (see
 * s_snap_kinds: on a new connection, parsing and planning cost more than
 * running it).  After a migration the pipeline refreshes the generation
 * two migrations old (S_DETECT_SQL: only the relations whose catalog rows
 * changed are described again), records the changes and stores the
 * fingerprint in one transaction and one round trip
 * (fl_schema_record_after), the census having come with the migration's
 * COMMIT; two round trips when it did not.
 *
 * Why the catalog text is trusted and the ledger's is not (DESIGN.md,
 * guarantee 6): re-creation builds comments, grants, owners and sequence
 * ownership from values it parses (a role name, a privilege from a fixed
 * list, a literal) and targets the catalog names, and checks the three
 * kinds of definition it must run as text with the parser, see
 * s_check_stmt().
 *
 * Names: functions, catalogs, casts and collations are written with
 * pg_catalog.; in the statements that run pinned, an operator is spelled
 * OPERATOR(pg_catalog.=) where a parameter meets a catalog name, and
 * plainly between catalog columns, our own columns and constants.  Those
 * resolve to pg_catalog's because the call first pins an empty
 * search_path (s_enter()): with a tenant's "public, pg_catalog", a
 * public.= (text, text) would otherwise run in their place, as the tenant
 * test shows.  The statements that run unpinned (record_changes,
 * fingerprint) spell every operator OPERATOR(pg_catalog.x).
 */
#include "agent/schema.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/keys.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "lint/facts.h"

/* The schemas a snapshot of everything covers; n is the pg_namespace alias. */
#define S_MANAGED(n)                                                        \
    " " n ".nspname NOT IN ('pg_catalog', 'information_schema',"            \
    " 'flotilla', 'flotilla_backup')"                                       \
    " AND NOT pg_catalog.starts_with(" n ".nspname::pg_catalog.text,"      \
    " 'pg_toast') AND NOT pg_catalog.starts_with(" n ".nspname::"          \
    "pg_catalog.text, 'pg_temp') "

/*
 * The sorted "WITH (a=1, b=2)" of an options array, or NULL when empty.
 * The CASE keeps the subquery from running for the usual NULL array.
 */
#define S_OPTIONS(fmt, arr)                                                 \
    " CASE WHEN " arr " IS NOT NULL THEN"                                   \
    " (SELECT pg_catalog.format('" fmt " (%s)', pg_catalog.string_agg(o,"   \
    " ', ' ORDER BY o COLLATE pg_catalog.\"C\")) FROM pg_catalog.unnest("   \
    arr ") o HAVING pg_catalog.count(*) > 0) END "

/* "COLLATE schema.name" of collation oid coll. */
#define S_COLLATE(coll)                                                     \
    " (SELECT pg_catalog.format('COLLATE %I.%I', cn.nspname, co.collname)"  \
    " FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn"      \
    " ON cn.oid = co.collnamespace WHERE co.oid = " coll ") "

/* An extension's member (see ext) in catalog cat with oid id. */
#define S_IN_EXTENSION(cat, id)                                             \
    " EXISTS (SELECT FROM ext WHERE ext.classid = 'pg_catalog." cat "'"     \
    "::pg_catalog.regclass AND ext.objid = " id ") "

/* "(disabled) " and friends: the enabled state of a trigger or rule. */
#define S_ENABLED(col)                                                      \
    " CASE " col " WHEN 'D' THEN '(disabled) ' WHEN 'R' THEN '(replica) '"  \
    " WHEN 'A' THEN '(always) ' END "

/* A regproc column as "name(argtypes)", or "-". */
#define S_PROC(col) " " col "::pg_catalog.oid::pg_catalog.regprocedure "

/*
 * The normalised text of acl arr: one "grantee=PRIV,PRIV*" entry per
 * grantee ('*': with grant option), grantors merged, entries sorted; NULL
 * when it grants nothing.
 */
#define S_ACL_TEXT(arr)                                                     \
    " (SELECT pg_catalog.string_agg(e.entry, ' '"                           \
    "  ORDER BY e.entry COLLATE pg_catalog.\"C\")"                          \
    "  FROM (SELECT pg_catalog.format('%s=%s', CASE WHEN x.grantee = 0"     \
    "   THEN 'PUBLIC' ELSE pg_catalog.quote_ident("                         \
    "   pg_catalog.pg_get_userbyid(x.grantee)) END,"                        \
    "   pg_catalog.string_agg(pg_catalog.concat(x.privilege_type,"          \
    "   CASE WHEN x.grantable THEN '*' END), ','"                           \
    "   ORDER BY x.privilege_type COLLATE pg_catalog.\"C\")) AS entry"      \
    "   FROM (SELECT p.grantee, p.privilege_type,"                          \
    "    pg_catalog.bool_or(p.is_grantable) AS grantable"                   \
    "    FROM pg_catalog.aclexplode(" arr ") p"                             \
    "    GROUP BY p.grantee, p.privilege_type) x"                           \
    "   GROUP BY x.grantee) e) "

/*
 * How the snapshot is driven (measured, bench/schema.sh): from the managed
 * namespaces (ns) and their relations (rel: one scan of pg_class, which
 * has no index on the namespace).  The catalogs with many built-in rows
 * are read through an index for the managed objects only: pg_attribute,
 * pg_index and the indexes' pg_class rows for rel's oids ("x = ANY
 * (ARRAY(SELECT ...))" is one index scan), pg_description over the range
 * of the objects' oids, pg_depend by the referenced object.  Types and
 * functions come from their namespace dependency (nsdep, pg_depend 'n'),
 * which PostgreSQL records for every type and function it did not create
 * itself (built-in ones are pinned and have none): pg_proc and pg_type
 * have no index on the namespace, and pg_proc holds thousands of
 * built-in rows.  The small catalogs (pg_constraint, pg_trigger,
 * pg_policy, pg_rewrite, pg_attrdef, pg_sequence, pg_inherits) are
 * joined to rel as the planner likes.  A scalar subquery runs once a row
 * with the plan made for the session, which may scan its catalog: they
 * are kept for what is rare (options, collations, foreign tables, the
 * kinds of types, aggregates).  A CTE joined to another is one the
 * planner expects about as large as it is, so that it hashes it (inh: one
 * row a table): a nested loop scans a CTE once a row.
 */

/*
 * The managed relations' oids, for an index scan of a catalog whose
 * built-in rows are many.  (Only as an index condition: as a filter, the
 * array is searched once a row.)
 */
#define S_RELS "ANY (ARRAY(SELECT rel.oid FROM rel))"

#define S_CTES_SQL S_CTES_X("", "", "true")

/*
 * The managed relations described (rel, below), RELF a further condition
 * on them (c, their pg_class row).
 */
#define S_REL_SQL                                                           \
    " SELECT c.oid, c.relname, c.relkind, c.relowner, c.relacl,"            \
    "  c.reloptions, c.relpersistence, c.relispartition, c.relpartbound,"   \
    "  c.relam, c.reltablespace, c.relrowsecurity, c.relforcerowsecurity,"  \
    "  c.relreplident, c.relispopulated, ns.nspname,"                       \
    "  pg_catalog.format('%I.%I', ns.nspname, c.relname) AS q,"             \
    "  CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'matview'"         \
    "  WHEN 'S' THEN 'sequence' ELSE 'table' END AS okind"                  \
    " FROM ns JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid"        \
    " WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')"                    \
    " AND NOT" S_IN_EXTENSION("pg_class", "c.oid")

/*
 * S_CTES_X(PRE, RELF, GG): PRE, more CTEs after nsdep (the refresh's
 * change detection, see s_refresh_sql); RELF, a further condition on the
 * relations described; GG, whether the objects that belong to no
 * relation (schemas, types, functions, statistics) are described.
 */
#define S_CTES_HEAD(PRE, RELF)                                              \
    "WITH ext AS MATERIALIZED ("                                            \
    " SELECT e.classid, e.objid, e.xmin FROM pg_catalog.pg_depend e"        \
    " WHERE e.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass"  \
    " AND e.refobjid = ANY (ARRAY(SELECT x.oid"                             \
    "  FROM pg_catalog.pg_extension x)) AND e.deptype = 'e'),"              \
    "ns AS MATERIALIZED ("                                                  \
    " SELECT n.oid, n.nspname, n.nspowner, n.nspacl,"                       \
    "  pg_catalog.format('%I', n.nspname) AS q"                             \
    " FROM pg_catalog.pg_namespace n"                                       \
    " WHERE CASE WHEN $1::pg_catalog.text IS NULL THEN" S_MANAGED("n")      \
    "  ELSE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.text END"       \
    " AND NOT" S_IN_EXTENSION("pg_namespace", "n.oid") "),"                 \
    "nsdep AS MATERIALIZED ("                                               \
    " SELECT d.classid, d.objid FROM pg_catalog.pg_depend d"                \
    " WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass"  \
    " AND d.refobjid = ANY (ARRAY(SELECT ns.oid FROM ns))"                  \
    " AND d.refobjsubid = 0 AND d.deptype = 'n')," PRE                      \
    "rel AS MATERIALIZED (" S_REL_SQL RELF "),"                             \
    /*                                                                      \
     * Each table's parents ("schema.table, ...", a partition's one), one  \
     * row a table: joined to rel, a CTE only as large as rel is expected  \
     * to be hashed rather than scanned once a row.                        \
     */                                                                     \
    "inh AS MATERIALIZED ("                                                 \
    " SELECT rel.oid, pg_catalog.string_agg(CASE WHEN h.inhrelid IS NOT NULL"\
    "  THEN pg_catalog.format('%I.%I', pn.nspname, pc.relname) END, ', '"   \
    "  ORDER BY h.inhseqno) AS parents"                                     \
    " FROM rel LEFT JOIN (pg_catalog.pg_inherits h"                         \
    "  JOIN pg_catalog.pg_class pc ON pc.oid = h.inhparent"                 \
    "  JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace)"        \
    " ON h.inhrelid = rel.oid"                                              \
    " WHERE rel.relkind IN ('r', 'p', 'f') GROUP BY rel.oid),"              \
    "col AS MATERIALIZED ("                                                 \
    " SELECT a.attrelid, a.attnum, a.attname, a.attacl, rel.q,"             \
    "  pg_catalog.format('%s.%I', rel.q, a.attname) AS ident,"              \
    "  pg_catalog.concat_ws(' ',"                                           \
    "  pg_catalog.format_type(a.atttypid, a.atttypmod),"                    \
    "  CASE WHEN a.attcollation <> t.typcollation THEN"                     \
    S_COLLATE("a.attcollation") "END,"                                      \
    "  CASE WHEN a.attnotnull THEN 'NOT NULL' END,"                         \
    "  CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY'"     \
    "  WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END,"               \
    "  CASE WHEN a.attgenerated = 's' THEN pg_catalog.format("              \
    "  'GENERATED ALWAYS AS (%s) STORED',"                                  \
    "  pg_catalog.pg_get_expr(d.adbin, d.adrelid))"                         \
    "  WHEN d.adbin IS NOT NULL THEN pg_catalog.format('DEFAULT %s',"       \
    "  pg_catalog.pg_get_expr(d.adbin, d.adrelid)) END,"                    \
    "  CASE WHEN a.attstorage <> t.typstorage THEN"                         \
    "  CASE a.attstorage WHEN 'p' THEN 'STORAGE PLAIN'"                     \
    "  WHEN 'e' THEN 'STORAGE EXTERNAL' WHEN 'm' THEN 'STORAGE MAIN'"       \
    "  ELSE 'STORAGE EXTENDED' END END,"                                    \
    "  CASE a.attcompression WHEN 'p' THEN 'COMPRESSION pglz'"              \
    "  WHEN 'l' THEN 'COMPRESSION lz4' END,"                                \
    "  CASE WHEN a.attstattarget >= 0 THEN"                                 \
    "  pg_catalog.format('STATISTICS %s', a.attstattarget) END,"            \
    S_OPTIONS("WITH", "a.attoptions") ") AS def"                            \
    " FROM rel JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid"      \
    " JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"                      \
    " LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid"          \
    "  AND d.adnum = a.attnum"                                              \
    " WHERE a.attrelid = " S_RELS " AND rel.relkind <> 'S'"                 \
    " AND a.attnum > 0 AND NOT a.attisdropped),"                            \
    "con AS MATERIALIZED ("                                                 \
    " SELECT k.oid, k.conname, k.conrelid, k.conindid, k.contype, rel.q,"   \
    "  pg_catalog.format('%s.%I', rel.q, k.conname) AS ident,"              \
    "  pg_catalog.concat(CASE WHEN NOT k.conislocal OR k.conparentid <> 0"  \
    "  THEN '(inherited) ' END,"                                            \
    /* Its triggers (PostgreSQL's own) switched off: not enforced. */       \
    "  CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_trigger g"               \
    "  WHERE g.tgconstraint = k.oid AND g.tgenabled IN ('D', 'R'))"       \
    "  THEN '(enforcement off) ' END,"                                      \
    "  pg_catalog.pg_get_constraintdef(k.oid)) AS def"                      \
    " FROM rel JOIN pg_catalog.pg_constraint k ON k.conrelid = rel.oid),"   \
    /* relispartition: attached to a partitioned index (pg_inherits). */    \
    "idx AS MATERIALIZED ("                                                 \
    " SELECT i.indexrelid, i.indrelid, ic.relname, rel.q, rel.nspname,"     \
    "  pg_catalog.format('%s.%I', rel.q, ic.relname) AS ident,"             \
    "  pg_catalog.concat("                                                  \
    "  CASE WHEN (i.indrelid, i.indexrelid) IN (SELECT con.conrelid,"       \
    "   con.conindid FROM con WHERE con.contype IN ('p', 'u', 'x'))"        \
    "   THEN '(constraint) ' END,"                                          \
    "  CASE WHEN ic.relispartition THEN '(partition) ' END,"                \
    "  CASE WHEN NOT i.indisvalid THEN '(invalid) ' END,"                   \
    "  CASE WHEN i.indisclustered THEN '(clustered) ' END,"                 \
    "  CASE WHEN i.indisreplident THEN '(replica identity) ' END,"          \
    "  pg_catalog.pg_get_indexdef(i.indexrelid)) AS def"                    \
    " FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid"          \
    " JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"                 \
    " WHERE i.indrelid = " S_RELS                                           \
    " AND ic.oid = ANY (ARRAY(SELECT x.indexrelid FROM pg_catalog.pg_index x"\
    "  WHERE x.indrelid = " S_RELS "))),"

#define S_CTE_TRG                                                           \
    "trg AS MATERIALIZED ("                                                 \
    " SELECT g.oid, g.tgrelid, g.tgname, rel.q,"                            \
    "  pg_catalog.format('%s.%I', rel.q, g.tgname) AS ident,"               \
    "  pg_catalog.concat(CASE WHEN g.tgparentid <> 0"                       \
    "  THEN '(inherited) ' END," S_ENABLED("g.tgenabled") ","               \
    "  pg_catalog.pg_get_triggerdef(g.oid)) AS def"                         \
    " FROM rel JOIN pg_catalog.pg_trigger g ON g.tgrelid = rel.oid"         \
    " WHERE NOT g.tgisinternal),"

#define S_CTE_POL                                                           \
    "pol AS MATERIALIZED ("                                                 \
    " SELECT p.oid, p.polrelid, p.polname, rel.q,"                          \
    "  pg_catalog.format('%s.%I', rel.q, p.polname) AS ident,"              \
    "  pg_catalog.concat_ws(' ', CASE WHEN p.polpermissive"                 \
    "  THEN 'AS PERMISSIVE' ELSE 'AS RESTRICTIVE' END,"                     \
    "  CASE p.polcmd WHEN 'r' THEN 'FOR SELECT' WHEN 'a' THEN 'FOR INSERT'" \
    "  WHEN 'w' THEN 'FOR UPDATE' WHEN 'd' THEN 'FOR DELETE'"               \
    "  ELSE 'FOR ALL' END,"                                                 \
    "  (SELECT pg_catalog.format('TO %s', pg_catalog.string_agg(r.n, ', '"  \
    "   ORDER BY r.n COLLATE pg_catalog.\"C\"))"                            \
    "   FROM (SELECT CASE WHEN u.u = 0 THEN 'PUBLIC' ELSE"                  \
    "   pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(u.u)) END AS n"   \
    "   FROM pg_catalog.unnest(p.polroles) u(u)) r),"                       \
    "  CASE WHEN p.polqual IS NOT NULL THEN pg_catalog.format('USING (%s)',"\
    "  pg_catalog.pg_get_expr(p.polqual, p.polrelid)) END,"                 \
    "  CASE WHEN p.polwithcheck IS NOT NULL THEN pg_catalog.format("        \
    "  'WITH CHECK (%s)', pg_catalog.pg_get_expr(p.polwithcheck,"           \
    "  p.polrelid)) END) AS def"                                            \
    " FROM rel JOIN pg_catalog.pg_policy p ON p.polrelid = rel.oid),"

#define S_CTE_RUL                                                           \
    "rul AS MATERIALIZED ("                                                 \
    " SELECT w.oid, w.ev_class, w.rulename, rel.q,"                         \
    "  pg_catalog.format('%s.%I', rel.q, w.rulename) AS ident,"             \
    "  pg_catalog.concat(" S_ENABLED("w.ev_enabled") ","                    \
    "  pg_catalog.pg_get_ruledef(w.oid)) AS def"                            \
    " FROM rel JOIN pg_catalog.pg_rewrite w ON w.ev_class = rel.oid"        \
    " WHERE w.rulename <> '_RETURN'),"

#define S_CTE_SEQ                                                           \
    "seq AS MATERIALIZED ("                                                 \
    " SELECT rel.oid, rel.q, d.objid IS NOT NULL AS linked,"                \
    "  pg_catalog.concat_ws(' ',"                                           \
    "  CASE WHEN rel.relpersistence = 'u' THEN 'unlogged' END,"             \
    "  pg_catalog.format('as %s start %s increment %s minvalue %s"          \
    " maxvalue %s cache %s', pg_catalog.format_type(s.seqtypid, NULL),"     \
    "  s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache),"        \
    "  CASE WHEN s.seqcycle THEN 'cycle' ELSE 'no cycle' END,"              \
    "  CASE WHEN d.objid IS NOT NULL THEN pg_catalog.format('%s %I.%I.%I',"  \
    "  CASE WHEN d.deptype = 'i' THEN 'identity of' ELSE 'owned by' END,"   \
    "  dn.nspname, dc.relname, da.attname) END) AS def"                     \
    " FROM rel JOIN pg_catalog.pg_sequence s ON s.seqrelid = rel.oid"       \
    " LEFT JOIN (pg_catalog.pg_depend d"                                    \
    "  JOIN pg_catalog.pg_class dc ON dc.oid = d.refobjid"                  \
    "  JOIN pg_catalog.pg_namespace dn ON dn.oid = dc.relnamespace"         \
    "  JOIN pg_catalog.pg_attribute da ON da.attrelid = d.refobjid"         \
    "  AND da.attnum = d.refobjsubid::pg_catalog.int2)"                     \
    " ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"            \
    "  AND d.objid = rel.oid"                                               \
    "  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"       \
    "  AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')"                   \
    " WHERE rel.relkind = 'S'),"

#define S_CTE_TYP(GG)                                                       \
    "typ AS MATERIALIZED ("                                                 \
    " SELECT t.oid, t.typtype, t.typowner, t.typacl,"                       \
    "  pg_catalog.format('%I.%I', ns.nspname, t.typname) AS q,"             \
    "  CASE t.typtype"                                                      \
    "  WHEN 'e' THEN (SELECT pg_catalog.format('enum (%s)',"                \
    "   pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', '"  \
    "   ORDER BY e.enumsortorder))"                                         \
    "   FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)"               \
    "  WHEN 'd' THEN pg_catalog.concat_ws(' ', 'domain',"                   \
    "   pg_catalog.format_type(t.typbasetype, t.typtypmod),"                \
    "   CASE WHEN t.typcollation <> (SELECT b.typcollation"                 \
    "   FROM pg_catalog.pg_type b WHERE b.oid = t.typbasetype) THEN"        \
    S_COLLATE("t.typcollation") "END,"                                      \
    "   CASE WHEN t.typnotnull THEN 'NOT NULL' END,"                        \
    "   CASE WHEN t.typdefaultbin IS NOT NULL THEN pg_catalog.format("      \
    "   'DEFAULT %s', pg_catalog.pg_get_expr(t.typdefaultbin, 0)) END,"     \
    "   (SELECT pg_catalog.string_agg(pg_catalog.format('CONSTRAINT %I %s',"\
    "    k.conname, pg_catalog.pg_get_constraintdef(k.oid)), ' '"           \
    "    ORDER BY k.conname COLLATE pg_catalog.\"C\")"                      \
    "    FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid))"        \
    "  WHEN 'c' THEN (SELECT pg_catalog.format('composite (%s)',"           \
    "   pg_catalog.string_agg(pg_catalog.concat_ws(' ',"                    \
    "   pg_catalog.quote_ident(a.attname),"                                 \
    "   pg_catalog.format_type(a.atttypid, a.atttypmod),"                   \
    "   CASE WHEN a.attcollation <> at.typcollation THEN"                   \
    S_COLLATE("a.attcollation") "END), ', ' ORDER BY a.attnum))"            \
    "   FROM pg_catalog.pg_attribute a"                                     \
    "   JOIN pg_catalog.pg_type at ON at.oid = a.atttypid"                  \
    "   WHERE a.attrelid = t.typrelid AND a.attnum > 0"                     \
    "   AND NOT a.attisdropped)"                                            \
    "  WHEN 'r' THEN (SELECT pg_catalog.concat_ws(' ', 'range',"            \
    "   pg_catalog.format('subtype %s',"                                    \
    "   pg_catalog.format_type(r.rngsubtype, NULL)),"                       \
    "   (SELECT pg_catalog.format('opclass %I.%I', cn.nspname, oc.opcname)" \
    "    FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_namespace cn"     \
    "    ON cn.oid = oc.opcnamespace WHERE oc.oid = r.rngsubopc),"          \
    "   CASE WHEN r.rngcollation <> 0 THEN" S_COLLATE("r.rngcollation")    \
    "   END,"                                                               \
    "   CASE WHEN r.rngcanonical <> 0 THEN pg_catalog.format("              \
    "   'canonical %s'," S_PROC("r.rngcanonical") ") END,"                  \
    "   CASE WHEN r.rngsubdiff <> 0 THEN pg_catalog.format("                \
    "   'subdiff %s'," S_PROC("r.rngsubdiff") ") END)"                      \
    "   FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid)"               \
    "  ELSE pg_catalog.format('base input %s output %s length %s',"         \
    "   " S_PROC("t.typinput") "," S_PROC("t.typoutput") ", t.typlen)"      \
    "  END AS def"                                                          \
    " FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace"         \
    " WHERE t.oid = ANY (ARRAY(SELECT nsdep.objid FROM nsdep"               \
    "  WHERE nsdep.classid = 'pg_catalog.pg_type'::pg_catalog.regclass))"   \
    " AND t.typtype IN ('b', 'c', 'd', 'e', 'r')"                           \
    " AND (t.typrelid = 0 OR EXISTS (SELECT FROM pg_catalog.pg_class c"     \
    "  WHERE c.oid = t.typrelid AND c.relkind = 'c'))"                      \
    /* An implicit array type: its element's typarray.  (Asked the other    \
     * way round, "some type's typarray is t", it needs a scan of pg_type, \
     * which has no index on typarray.) */                                  \
    " AND NOT EXISTS (SELECT FROM pg_catalog.pg_type a"                     \
    "  WHERE a.oid = t.typelem AND a.typarray = t.oid)"                     \
    " AND NOT" S_IN_EXTENSION("pg_type", "t.oid") " AND " GG "),"

#define S_CTE_FN(GG)                                                        \
    "fn AS MATERIALIZED ("                                                  \
    " SELECT p.oid, p.prokind, p.proowner, p.proacl,"                       \
    "  pg_catalog.format('%I.%I(%s)', ns.nspname, p.proname,"               \
    "  pg_catalog.oidvectortypes(p.proargtypes)) AS ident,"                 \
    "  pg_catalog.format('%I.%I(%s)', ns.nspname, p.proname,"               \
    "  pg_catalog.pg_get_function_identity_arguments(p.oid)) AS sig,"       \
    "  pg_catalog.format('%s sha256:%s', CASE p.prokind"                    \
    "  WHEN 'a' THEN 'aggregate' WHEN 'p' THEN 'procedure'"                 \
    "  WHEN 'w' THEN 'window function' ELSE 'function' END,"                \
    "  pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to("          \
    "  CASE WHEN p.prokind = 'a' THEN (SELECT pg_catalog.concat_ws(' ',"    \
    "   pg_catalog.format_type(p.prorettype, NULL),"                        \
    "   pg_catalog.oidvectortypes(p.proargtypes), g.aggkind,"               \
    "   g.aggnumdirectargs," S_PROC("g.aggtransfn") ","                     \
    "   " S_PROC("g.aggfinalfn") "," S_PROC("g.aggcombinefn") ","           \
    "   " S_PROC("g.aggserialfn") "," S_PROC("g.aggdeserialfn") ","         \
    "   " S_PROC("g.aggmtransfn") "," S_PROC("g.aggminvtransfn") ","        \
    "   " S_PROC("g.aggmfinalfn") ", g.aggfinalextra, g.aggmfinalextra,"    \
    "   g.aggfinalmodify, g.aggmfinalmodify,"                               \
    "   g.aggsortop::pg_catalog.regoperator,"                               \
    "   pg_catalog.format_type(g.aggtranstype, NULL), g.aggtransspace,"     \
    "   pg_catalog.format_type(g.aggmtranstype, NULL), g.aggmtransspace,"   \
    "   pg_catalog.quote_nullable(g.agginitval),"                           \
    "   pg_catalog.quote_nullable(g.aggminitval), p.proparallel)"           \
    "   FROM pg_catalog.pg_aggregate g WHERE g.aggfnoid = p.oid)"           \
    "  ELSE pg_catalog.pg_get_functiondef(p.oid) END, 'UTF8')), 'hex'))"    \
    "  AS def"                                                              \
    " FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace"         \
    " WHERE p.oid = ANY (ARRAY(SELECT nsdep.objid FROM nsdep"               \
    "  WHERE nsdep.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass))"   \
    " AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e"                   \
    "  WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"         \
    "  AND e.objid = p.oid AND e.deptype IN ('e', 'i')) AND " GG "),"

#define S_CTE_STA(GG)                                                       \
    "sta AS MATERIALIZED ("                                                 \
    " SELECT x.oid, x.stxowner,"                                            \
    "  pg_catalog.format('%I.%I', ns.nspname, x.stxname) AS q,"             \
    "  pg_catalog.concat_ws(' ', pg_catalog.pg_get_statisticsobjdef(x.oid),"\
    "  CASE WHEN x.stxstattarget >= 0 THEN"                                 \
    "  pg_catalog.format('STATISTICS %s', x.stxstattarget) END) AS def"     \
    " FROM ns JOIN pg_catalog.pg_statistic_ext x"                           \
    " ON x.stxnamespace = ns.oid"                                           \
    " WHERE NOT" S_IN_EXTENSION("pg_statistic_ext", "x.oid")               \
    " AND " GG "),"

/*
 * Objects that are neither relations, types, functions nor statistics
 * (dbo): a rollback whose down forgot one of them "succeeded" with the
 * difference (a publication left without a table, an extension left
 * installed, default privileges left granted).  Publications, their
 * schemas, extensions, casts and event triggers belong to the database,
 * and are described only for a snapshot of every managed schema ($1
 * NULL); an extension installed in schema $1 is its own.  A table's
 * membership of a publication is one of the table's rows (relid: it is
 * described again with the table).  Collations, conversions, operators,
 * their classes and families and text search configurations and
 * dictionaries are found through their namespace dependency (nsdep), as
 * types are.  Default privileges: those of schema $1 or of a managed
 * schema, and the database-wide ones for a snapshot of everything.  Each
 * def ends with the owner where the object has one, so that a change of
 * owner is a difference.  Not described: comments on these objects,
 * foreign-data wrappers, servers and user mappings (whose options may
 * hold passwords), subscriptions, access methods, languages, transforms.
 */
#define S_DBO_ALL "$1::pg_catalog.text IS NULL"
/* Its kinds, as a text[] literal: those schema format 1 did not have. */
#define S_DBO_KINDS                                                         \
    "{publication,\"publication table\",\"publication schema\","           \
    "extension,cast,\"event trigger\",collation,conversion,operator,"      \
    "\"operator family\",\"operator class\","                              \
    "\"text search configuration\",\"text search dictionary\","            \
    "\"default privileges\",database,\"database setting\"}"
/* The database's oid, and whether its row holds anything described. */
#define S_DBO_DB                                                            \
    " (SELECT d.oid FROM pg_catalog.pg_database d"                          \
    " WHERE d.datname = pg_catalog.current_database()) "
#define S_DBO_DB_SET(d)                                                     \
    " (" S_ACL_TEXT(d ".datacl") "IS DISTINCT FROM"                        \
    S_ACL_TEXT("pg_catalog.acldefault('d', " d ".datdba)")                  \
    " AND " d ".datacl IS NOT NULL OR " d ".datconnlimit <> -1"             \
    " OR NOT " d ".datallowconn OR EXISTS (SELECT"                          \
    " FROM pg_catalog.pg_shdescription c WHERE c.objoid = " d ".oid"        \
    " AND c.classoid = 'pg_catalog.pg_database'::pg_catalog.regclass)) "
#define S_STR(x) #x
#define S_XSTR(x) S_STR(x)
#define S_DBO_OWNER(col)                                                    \
    " pg_catalog.format('owner %I', pg_catalog.pg_get_userbyid(" col ")) "
#define S_DBO_NS(cls)                                                       \
    " ANY (ARRAY(SELECT nsdep.objid FROM nsdep WHERE nsdep.classid ="       \
    " 'pg_catalog." cls "'::pg_catalog.regclass)) "
#define S_CTE_DBO(GG)                                                       \
    "dbo AS MATERIALIZED ("                                                 \
    " SELECT 'publication' AS kind, pg_catalog.quote_ident(p.pubname)"      \
    "  AS ident, pg_catalog.concat_ws(' ',"                                 \
    "  CASE WHEN p.puballtables THEN 'for all tables' END,"                 \
    "  'publish', pg_catalog.concat_ws(', ',"                               \
    "  CASE WHEN p.pubinsert THEN 'insert' END,"                            \
    "  CASE WHEN p.pubupdate THEN 'update' END,"                            \
    "  CASE WHEN p.pubdelete THEN 'delete' END,"                            \
    "  CASE WHEN p.pubtruncate THEN 'truncate' END),"                       \
    "  CASE WHEN p.pubviaroot THEN 'via root' END,"                         \
    S_DBO_OWNER("p.pubowner") ") AS def, 0::pg_catalog.oid AS relid"        \
    " FROM pg_catalog.pg_publication p WHERE " S_DBO_ALL " AND " GG         \
    " UNION ALL"                                                            \
    " SELECT 'publication table', pg_catalog.format('%I %s', p.pubname,"    \
    "  rel.q), pg_catalog.concat_ws(' ', (SELECT pg_catalog.format('(%s)',"  \
    "  pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', '"       \
    "  ORDER BY a.attnum)) FROM pg_catalog.pg_attribute a"                  \
    "  WHERE a.attrelid = pr.prrelid"                                       \
    "  AND a.attnum = ANY (pr.prattrs::pg_catalog.int2[])),"                \
    "  CASE WHEN pr.prqual IS NOT NULL THEN pg_catalog.format('where (%s)',"\
    "  pg_catalog.pg_get_expr(pr.prqual, pr.prrelid)) END), rel.oid"        \
    " FROM rel JOIN pg_catalog.pg_publication_rel pr ON pr.prrelid = rel.oid"\
    " JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid"               \
    " UNION ALL"                                                            \
    " SELECT 'publication schema', pg_catalog.format('%I %s', p.pubname,"   \
    "  ns.q), '', 0::pg_catalog.oid"                                        \
    " FROM ns JOIN pg_catalog.pg_publication_namespace pn"                  \
    " ON pn.pnnspid = ns.oid"                                               \
    " JOIN pg_catalog.pg_publication p ON p.oid = pn.pnpubid WHERE " GG     \
    " UNION ALL"                                                            \
    " SELECT 'extension', pg_catalog.quote_ident(x.extname),"               \
    "  pg_catalog.concat_ws(' ', pg_catalog.format('version %s schema %I',"  \
    "  x.extversion, xn.nspname)," S_DBO_OWNER("x.extowner") "),"           \
    "  0::pg_catalog.oid"                                                   \
    " FROM pg_catalog.pg_extension x"                                       \
    " JOIN pg_catalog.pg_namespace xn ON xn.oid = x.extnamespace"           \
    " WHERE x.oid >= 16384 AND (" S_DBO_ALL " OR x.extnamespace = ANY"      \
    "  (ARRAY(SELECT ns.oid FROM ns))) AND " GG                             \
    " UNION ALL"                                                            \
    " SELECT 'cast', pg_catalog.format('(%s AS %s)',"                       \
    "  pg_catalog.format_type(k.castsource, NULL),"                         \
    "  pg_catalog.format_type(k.casttarget, NULL)),"                        \
    "  pg_catalog.concat_ws(' ', CASE k.castmethod WHEN 'f' THEN"           \
    "  pg_catalog.format('with function %s'," S_PROC("k.castfunc") ")"      \
    "  WHEN 'i' THEN 'with inout' ELSE 'without function' END,"             \
    "  CASE k.castcontext WHEN 'a' THEN 'as assignment'"                    \
    "  WHEN 'i' THEN 'as implicit' END), 0::pg_catalog.oid"                 \
    " FROM pg_catalog.pg_cast k WHERE k.oid >= 16384"                       \
    " AND NOT" S_IN_EXTENSION("pg_cast", "k.oid")                           \
    /* a range type's cast to its multirange is the type's own */           \
    " AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d"                   \
    "  WHERE d.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass"         \
    "  AND d.objid = k.oid AND d.deptype = 'i')"                            \
    " AND " S_DBO_ALL " AND " GG                                            \
    " UNION ALL"                                                            \
    " SELECT 'event trigger', pg_catalog.quote_ident(v.evtname),"           \
    "  pg_catalog.concat_ws(' ', pg_catalog.format('on %s execute %s',"     \
    "  v.evtevent," S_PROC("v.evtfoid") "),"                                \
    "  CASE WHEN v.evttags IS NOT NULL THEN pg_catalog.format('tags %s',"   \
    "  v.evttags) END, CASE v.evtenabled WHEN 'D' THEN 'disabled'"          \
    "  WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END,"                 \
    S_DBO_OWNER("v.evtowner") "), 0::pg_catalog.oid"                        \
    " FROM pg_catalog.pg_event_trigger v"                                   \
    " WHERE NOT" S_IN_EXTENSION("pg_event_trigger", "v.oid")                \
    " AND " S_DBO_ALL " AND " GG                                            \
    " UNION ALL"                                                            \
    " SELECT 'collation', pg_catalog.format('%I.%I', ns.nspname,"           \
    "  co.collname), pg_catalog.concat_ws(' ', CASE co.collprovider"        \
    "  WHEN 'i' THEN 'icu' WHEN 'c' THEN 'libc' ELSE 'default' END,"        \
    "  CASE WHEN co.collcollate IS NOT NULL THEN pg_catalog.format("        \
    "  'collate %L ctype %L', co.collcollate, co.collctype) END,"           \
    /* colliculocale, colllocale from PostgreSQL 17 on: read by name */     \
    "  (SELECT pg_catalog.format('locale %L', l.v) FROM (SELECT"            \
    "  coalesce(pg_catalog.to_jsonb(co) OPERATOR(pg_catalog.->>)"           \
    "  'colliculocale', pg_catalog.to_jsonb(co) OPERATOR(pg_catalog.->>)"   \
    "  'colllocale') AS v) l WHERE l.v IS NOT NULL),"                       \
    "  CASE WHEN NOT co.collisdeterministic THEN 'nondeterministic' END,"   \
    S_DBO_OWNER("co.collowner") "), 0::pg_catalog.oid"                      \
    " FROM pg_catalog.pg_collation co JOIN ns ON ns.oid = co.collnamespace" \
    " WHERE co.oid =" S_DBO_NS("pg_collation")                              \
    " AND NOT" S_IN_EXTENSION("pg_collation", "co.oid") " AND " GG          \
    " UNION ALL"                                                            \
    " SELECT 'conversion', pg_catalog.format('%I.%I', ns.nspname,"          \
    "  cv.conname), pg_catalog.concat_ws(' ', pg_catalog.format("           \
    "  'for %L to %L from %s',"                                             \
    "  pg_catalog.pg_encoding_to_char(cv.conforencoding),"                  \
    "  pg_catalog.pg_encoding_to_char(cv.contoencoding),"                   \
    S_PROC("cv.conproc") "), CASE WHEN cv.condefault THEN 'default' END,"   \
    S_DBO_OWNER("cv.conowner") "), 0::pg_catalog.oid"                       \
    " FROM pg_catalog.pg_conversion cv JOIN ns ON ns.oid = cv.connamespace" \
    " WHERE cv.oid =" S_DBO_NS("pg_conversion")                             \
    " AND NOT" S_IN_EXTENSION("pg_conversion", "cv.oid") " AND " GG         \
    " UNION ALL"                                                            \
    " SELECT 'operator', o.oid::pg_catalog.regoperator::pg_catalog.text,"   \
    "  pg_catalog.concat_ws(' ', pg_catalog.format('function %s returns %s',"\
    S_PROC("o.oprcode") ", pg_catalog.format_type(o.oprresult, NULL)),"     \
    "  CASE WHEN o.oprcom <> 0 THEN pg_catalog.format('commutator %s',"     \
    "  o.oprcom::pg_catalog.regoperator) END,"                              \
    "  CASE WHEN o.oprnegate <> 0 THEN pg_catalog.format('negator %s',"     \
    "  o.oprnegate::pg_catalog.regoperator) END,"                           \
    "  CASE WHEN o.oprrest <> 0 THEN pg_catalog.format('restrict %s',"      \
    S_PROC("o.oprrest") ") END,"                                            \
    "  CASE WHEN o.oprjoin <> 0 THEN pg_catalog.format('join %s',"          \
    S_PROC("o.oprjoin") ") END,"                                            \
    "  CASE WHEN o.oprcanhash THEN 'hashes' END,"                           \
    "  CASE WHEN o.oprcanmerge THEN 'merges' END,"                          \
    S_DBO_OWNER("o.oprowner") "), 0::pg_catalog.oid"                        \
    " FROM pg_catalog.pg_operator o JOIN ns ON ns.oid = o.oprnamespace"     \
    " WHERE o.oid =" S_DBO_NS("pg_operator")                                \
    " AND NOT" S_IN_EXTENSION("pg_operator", "o.oid") " AND " GG            \
    " UNION ALL"                                                            \
    " SELECT 'operator family', pg_catalog.format('%I.%I using %I',"        \
    "  ns.nspname, f.opfname, am.amname), pg_catalog.concat_ws(' ',"        \
    "  (SELECT pg_catalog.string_agg(pg_catalog.format('operator %s %s(%s,"  \
    "  %s)%s', x.amopstrategy, x.amopopr::pg_catalog.regoperator,"          \
    "  pg_catalog.format_type(x.amoplefttype, NULL),"                       \
    "  pg_catalog.format_type(x.amoprighttype, NULL),"                      \
    "  CASE WHEN x.amoppurpose = 'o' THEN pg_catalog.format(' for order by"  \
    " %s', x.amopsortfamily) END), ', ' ORDER BY x.amoplefttype,"           \
    "  x.amoprighttype, x.amopstrategy)"                                    \
    "  FROM pg_catalog.pg_amop x WHERE x.amopfamily = f.oid),"              \
    "  (SELECT pg_catalog.string_agg(pg_catalog.format('function %s (%s,"   \
    "  %s) %s', x.amprocnum, pg_catalog.format_type(x.amproclefttype,"      \
    "  NULL), pg_catalog.format_type(x.amprocrighttype, NULL),"             \
    S_PROC("x.amproc") "), ', ' ORDER BY x.amproclefttype,"                 \
    "  x.amprocrighttype, x.amprocnum)"                                     \
    "  FROM pg_catalog.pg_amproc x WHERE x.amprocfamily = f.oid),"          \
    S_DBO_OWNER("f.opfowner") "), 0::pg_catalog.oid"                        \
    " FROM pg_catalog.pg_opfamily f JOIN ns ON ns.oid = f.opfnamespace"     \
    " JOIN pg_catalog.pg_am am ON am.oid = f.opfmethod"                     \
    " WHERE f.oid =" S_DBO_NS("pg_opfamily")                                \
    " AND NOT" S_IN_EXTENSION("pg_opfamily", "f.oid") " AND " GG            \
    " UNION ALL"                                                            \
    " SELECT 'operator class', pg_catalog.format('%I.%I using %I',"         \
    "  ns.nspname, c.opcname, am.amname), pg_catalog.concat_ws(' ',"        \
    "  CASE WHEN c.opcdefault THEN 'default' END, pg_catalog.format("       \
    "  'for type %s family %I.%I', pg_catalog.format_type(c.opcintype,"     \
    "  NULL), fn.nspname, f.opfname), CASE WHEN c.opckeytype <> 0 THEN"     \
    "  pg_catalog.format('storage %s', pg_catalog.format_type(c.opckeytype,"\
    "  NULL)) END," S_DBO_OWNER("c.opcowner") "), 0::pg_catalog.oid"        \
    " FROM pg_catalog.pg_opclass c JOIN ns ON ns.oid = c.opcnamespace"      \
    " JOIN pg_catalog.pg_am am ON am.oid = c.opcmethod"                     \
    " JOIN pg_catalog.pg_opfamily f ON f.oid = c.opcfamily"                 \
    " JOIN pg_catalog.pg_namespace fn ON fn.oid = f.opfnamespace"           \
    " WHERE c.oid =" S_DBO_NS("pg_opclass")                                 \
    " AND NOT" S_IN_EXTENSION("pg_opclass", "c.oid") " AND " GG             \
    " UNION ALL"                                                            \
    " SELECT 'text search configuration', pg_catalog.format('%I.%I',"       \
    "  ns.nspname, t.cfgname), pg_catalog.concat_ws(' ',"                   \
    "  (SELECT pg_catalog.format('parser %I.%I', pn.nspname, pp.prsname)"   \
    "  FROM pg_catalog.pg_ts_parser pp JOIN pg_catalog.pg_namespace pn"     \
    "  ON pn.oid = pp.prsnamespace WHERE pp.oid = t.cfgparser),"            \
    "  (SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s',"            \
    "  m.maptokentype, m.mapdict::pg_catalog.regdictionary), ', '"          \
    "  ORDER BY m.maptokentype, m.mapseqno)"                                \
    "  FROM pg_catalog.pg_ts_config_map m WHERE m.mapcfg = t.oid),"         \
    S_DBO_OWNER("t.cfgowner") "), 0::pg_catalog.oid"                        \
    " FROM pg_catalog.pg_ts_config t JOIN ns ON ns.oid = t.cfgnamespace"    \
    " WHERE t.oid =" S_DBO_NS("pg_ts_config")                               \
    " AND NOT" S_IN_EXTENSION("pg_ts_config", "t.oid") " AND " GG           \
    " UNION ALL"                                                            \
    " SELECT 'text search dictionary', pg_catalog.format('%I.%I',"          \
    "  ns.nspname, d.dictname), pg_catalog.concat_ws(' ',"                  \
    "  (SELECT pg_catalog.format('template %I.%I', tn.nspname, tt.tmplname)"\
    "  FROM pg_catalog.pg_ts_template tt JOIN pg_catalog.pg_namespace tn"   \
    "  ON tn.oid = tt.tmplnamespace WHERE tt.oid = d.dicttemplate),"        \
    "  pg_catalog.format('options %L', d.dictinitoption),"                  \
    S_DBO_OWNER("d.dictowner") "), 0::pg_catalog.oid"                       \
    " FROM pg_catalog.pg_ts_dict d JOIN ns ON ns.oid = d.dictnamespace"     \
    " WHERE d.oid =" S_DBO_NS("pg_ts_dict")                                 \
    " AND NOT" S_IN_EXTENSION("pg_ts_dict", "d.oid") " AND " GG             \
    " UNION ALL"                                                            \
    " SELECT 'default privileges', pg_catalog.format('for role %I in %s"    \
    " on %s', pg_catalog.pg_get_userbyid(a.defaclrole), CASE WHEN"          \
    "  a.defaclnamespace = 0 THEN '*' ELSE (SELECT ns.q FROM ns"            \
    "  WHERE ns.oid = a.defaclnamespace) END, CASE a.defaclobjtype"         \
    "  WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN"      \
    "  'functions' WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' END),"     \
    "  coalesce(" S_ACL_TEXT("a.defaclacl") ", ''), 0::pg_catalog.oid"      \
    " FROM pg_catalog.pg_default_acl a"                                     \
    " WHERE (CASE WHEN a.defaclnamespace = 0 THEN " S_DBO_ALL               \
    "  ELSE a.defaclnamespace = ANY (ARRAY(SELECT ns.oid FROM ns)) END)"    \
    " AND " GG                                                              \
    " UNION ALL"                                                            \
    " SELECT 'database', pg_catalog.quote_ident(d.datname),"                \
    "  pg_catalog.concat_ws(' ',"                                           \
    "  pg_catalog.format('acl %s'," S_ACL_TEXT("coalesce("                  \
    "  d.datacl, pg_catalog.acldefault('d', d.datdba))") "),"               \
    "  CASE WHEN d.datconnlimit <> -1 THEN pg_catalog.format("              \
    "  'connection limit %s', d.datconnlimit) END,"                         \
    "  CASE WHEN NOT d.datallowconn THEN 'no connections' END,"             \
    "  (SELECT pg_catalog.format('comment %L', c.description)"              \
    "  FROM pg_catalog.pg_shdescription c WHERE c.objoid = d.oid"           \
    "  AND c.classoid = 'pg_catalog.pg_database'::pg_catalog.regclass)),"   \
    "  0::pg_catalog.oid"                                                   \
    " FROM pg_catalog.pg_database d"                                        \
    " WHERE d.datname = pg_catalog.current_database() AND" S_DBO_DB_SET("d")\
    " AND " S_DBO_ALL " AND " GG                                            \
    " UNION ALL"                                                            \
    " SELECT 'database setting', pg_catalog.format('%s %s', CASE"           \
    "  WHEN s.setrole = 0 THEN '*' ELSE pg_catalog.quote_ident("            \
    "  pg_catalog.pg_get_userbyid(s.setrole)) END,"                         \
    "  pg_catalog.split_part(v.c, '=', 1)), pg_catalog.substr(v.c,"         \
    "  pg_catalog.strpos(v.c, '=') + 1), 0::pg_catalog.oid"                 \
    " FROM pg_catalog.pg_db_role_setting s,"                                \
    " pg_catalog.unnest(s.setconfig) v(c)"                                  \
    " WHERE s.setdatabase =" S_DBO_DB "AND " S_DBO_ALL " AND " GG "),"

#define S_CTES_X(PRE, RELF, GG)                                             \
    S_CTES_HEAD(PRE, RELF) S_CTE_TRG S_CTE_POL S_CTE_RUL S_CTE_SEQ          \
    S_CTE_TYP(GG) S_CTE_FN(GG) S_CTE_STA(GG) S_CTE_DBO(GG)

/* T(x) in S_OBJ_SQL and S_SELECT_SQL: the targets, or NULL without. */
#define S_TARGETS(x) x
#define S_NO_TARGETS(x) " NULL"

/*
 * The targets of COMMENT ON and ALTER ... OWNER TO (S_T_), and of GRANT
 * (S_G_; a column's is "(c) ON TABLE app.t").
 */
#define S_T_SCHEMA "pg_catalog.format('SCHEMA %I', ns.nspname)"
#define S_G_SCHEMA "pg_catalog.format('ON SCHEMA %I', ns.nspname)"
#define S_T_REL                                                             \
    "pg_catalog.format('%s %s', CASE rel.relkind WHEN 'S' THEN 'SEQUENCE'"  \
    " WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'"               \
    " WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, rel.q)"
#define S_G_REL                                                             \
    "pg_catalog.format('ON %s %s', CASE WHEN rel.relkind = 'S'"             \
    " THEN 'SEQUENCE' ELSE 'TABLE' END, rel.q)"
#define S_T_TYPE                                                            \
    "pg_catalog.format('%s %s', CASE WHEN typ.typtype = 'd'"                \
    " THEN 'DOMAIN' ELSE 'TYPE' END, typ.q)"
#define S_G_TYPE                                                            \
    "pg_catalog.format('ON %s %s', CASE WHEN typ.typtype = 'd'"             \
    " THEN 'DOMAIN' ELSE 'TYPE' END, typ.q)"
#define S_T_FN                                                              \
    "pg_catalog.format('%s %s', CASE fn.prokind WHEN 'p' THEN 'PROCEDURE'"  \
    " WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, fn.sig)"
#define S_G_FN                                                              \
    "pg_catalog.format('ON %s %s', CASE WHEN fn.prokind = 'p'"              \
    " THEN 'PROCEDURE' ELSE 'FUNCTION' END, fn.sig)"
#define S_T_STA "pg_catalog.format('STATISTICS %s', sta.q)"

/*
 * The objects that can have a comment (obj: kind and ident as comment
 * rows name them, pg_description address, target), the comments (com),
 * the objects that can have grants (acl: with the acl as acldefault()
 * fills it in, and the GRANT target) and their normalised grants
 * (acltext).  CW filters the columns acl lists.
 */
#define S_OBJ_SQL(T, CW, GG)                                                  \
    "obj AS MATERIALIZED ("                                                 \
    " SELECT 'schema' AS okind, ns.q AS oident,"                            \
    "  'pg_catalog.pg_namespace'::pg_catalog.regclass AS classid,"          \
    "  ns.oid AS objid, 0 AS subid, " T(S_T_SCHEMA) " AS target,"           \
    "  0::pg_catalog.oid AS relid FROM ns WHERE " GG                        \
    " UNION ALL"                                                            \
    " SELECT rel.okind, rel.q, 'pg_catalog.pg_class'::pg_catalog.regclass," \
    "  rel.oid, 0, " T(S_T_REL) ", rel.oid FROM rel"                        \
    " UNION ALL"                                                            \
    " SELECT 'column', col.ident, 'pg_catalog.pg_class'::pg_catalog.regclass,"\
    "  col.attrelid, col.attnum,"                                           \
    T("pg_catalog.format('COLUMN %s', col.ident)") ", col.attrelid"         \
    " FROM col"                                                             \
    " UNION ALL"                                                            \
    " SELECT 'constraint', con.ident,"                                      \
    "  'pg_catalog.pg_constraint'::pg_catalog.regclass, con.oid, 0,"        \
    T("pg_catalog.format('CONSTRAINT %I ON %s', con.conname, con.q)")       \
    ", con.conrelid FROM con"                                               \
    " UNION ALL"                                                            \
    " SELECT 'index', idx.ident, 'pg_catalog.pg_class'::pg_catalog.regclass,"\
    "  idx.indexrelid, 0,"                                                  \
    T("pg_catalog.format('INDEX %I.%I', idx.nspname, idx.relname)")         \
    ", idx.indrelid FROM idx"                                               \
    " UNION ALL"                                                            \
    " SELECT 'trigger', trg.ident,"                                         \
    "  'pg_catalog.pg_trigger'::pg_catalog.regclass, trg.oid, 0,"           \
    T("pg_catalog.format('TRIGGER %I ON %s', trg.tgname, trg.q)")           \
    ", trg.tgrelid FROM trg"                                                \
    " UNION ALL"                                                            \
    " SELECT 'policy', pol.ident,"                                          \
    "  'pg_catalog.pg_policy'::pg_catalog.regclass, pol.oid, 0,"            \
    T("pg_catalog.format('POLICY %I ON %s', pol.polname, pol.q)")           \
    ", pol.polrelid FROM pol"                                               \
    " UNION ALL"                                                            \
    " SELECT 'rule', rul.ident,"                                            \
    "  'pg_catalog.pg_rewrite'::pg_catalog.regclass, rul.oid, 0,"           \
    T("pg_catalog.format('RULE %I ON %s', rul.rulename, rul.q)")            \
    ", rul.ev_class FROM rul"                                               \
    " UNION ALL"                                                            \
    " SELECT 'type', typ.q, 'pg_catalog.pg_type'::pg_catalog.regclass,"     \
    "  typ.oid, 0, " T(S_T_TYPE) ", 0::pg_catalog.oid FROM typ"             \
    " UNION ALL"                                                            \
    " SELECT 'function', fn.ident,"                                         \
    "  'pg_catalog.pg_proc'::pg_catalog.regclass, fn.oid, 0, " T(S_T_FN)    \
    ", 0::pg_catalog.oid FROM fn"                                           \
    " UNION ALL"                                                            \
    " SELECT 'statistics', sta.q,"                                          \
    "  'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, sta.oid, 0, "    \
    T(S_T_STA) ", 0::pg_catalog.oid FROM sta),"                             \
    /*                                                                      \
     * pg_description through its index, over the range of the objects'   \
     * oids, which holds every one of them and leaves out the thousands of \
     * built-in rows (initdb's objects have oids below any later one      \
     * gets); the schemas' one by one, as public is initdb's.             \
     */                                                                     \
    "rng AS MATERIALIZED (SELECT pg_catalog.min(obj.objid) AS lo,"          \
    " pg_catalog.max(obj.objid) AS hi FROM obj"                             \
    " WHERE obj.okind <> 'schema'),"                                        \
    "com AS MATERIALIZED ("                                                 \
    " SELECT d.objoid, d.classoid, d.objsubid, d.description"               \
    " FROM pg_catalog.pg_description d"                                     \
    " WHERE d.objoid >= (SELECT rng.lo FROM rng)"                           \
    " AND d.objoid <= (SELECT rng.hi FROM rng)"                             \
    " AND d.classoid <> 'pg_catalog.pg_namespace'::pg_catalog.regclass"     \
    " UNION ALL"                                                            \
    " SELECT d.objoid, d.classoid, d.objsubid, d.description"               \
    " FROM pg_catalog.pg_description d"                                     \
    " WHERE d.objoid = ANY (ARRAY(SELECT ns.oid FROM ns))"                  \
    " AND d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass"      \
    " AND d.objsubid = 0),"                                                 \
    /*                                                                      \
     * A NULL acl is its acldefault(), so that a default written out       \
     * compares equal; a column's NULL acl grants nothing beyond the       \
     * table's and has no text.  Each distinct acl is normalised once      \
     * (most objects share their owner's default); aclitem[] can be hashed \
     * but not sorted, so DISTINCT and the join hash.                      \
     */                                                                     \
    "acl AS MATERIALIZED ("                                                 \
    " SELECT 'schema' AS okind, ns.q AS oident,"                            \
    "  'n'::pg_catalog.\"char\" AS acltype, coalesce(ns.nspacl,"            \
    "  pg_catalog.acldefault('n', ns.nspowner)) AS eff,"                    \
    "  " T(S_G_SCHEMA) " AS gtarget, 0::pg_catalog.oid AS relid"            \
    " FROM ns WHERE " GG                                                    \
    " UNION ALL"                                                            \
    " SELECT rel.okind, rel.q, c.t, coalesce(rel.relacl,"                   \
    "  pg_catalog.acldefault(c.t, rel.relowner)), " T(S_G_REL) ", rel.oid"  \
    " FROM rel, LATERAL (SELECT CASE WHEN rel.relkind = 'S'"                \
    "  THEN 's'::pg_catalog.\"char\" ELSE 'r'::pg_catalog.\"char\" END AS t) c"\
    " UNION ALL"                                                            \
    " SELECT 'column', col.ident, 'c', col.attacl,"                         \
    T("pg_catalog.format('(%I) ON TABLE %s', col.attname, col.q)")          \
    ", col.attrelid FROM col" CW                                            \
    " UNION ALL"                                                            \
    " SELECT 'type', typ.q, 'T', coalesce(typ.typacl,"                      \
    "  pg_catalog.acldefault('T', typ.typowner)), " T(S_G_TYPE)             \
    ", 0::pg_catalog.oid FROM typ"                                          \
    " UNION ALL"                                                            \
    " SELECT 'function', fn.ident, 'f', coalesce(fn.proacl,"                \
    "  pg_catalog.acldefault('f', fn.proowner)), " T(S_G_FN)                \
    ", 0::pg_catalog.oid FROM fn),"                                         \
    "acltext AS MATERIALIZED ("                                             \
    " SELECT u.eff," S_ACL_TEXT("u.eff") "AS def"                           \
    " FROM (SELECT DISTINCT acl.eff FROM acl WHERE acl.eff IS NOT NULL) u)"

/*
 * The rows (kind, ident, def, target).  J joins the comments: "JOIN" when
 * only the objects that have one are wanted, "LEFT JOIN" for a row (and
 * its target) per object; W filters the grants.  A sequence linked to a
 * column (OWNED BY, identity) has no owner row: PostgreSQL keeps its
 * owner the table's.
 */
#define S_SELECT_SQL(T, J, W, GG)                                           \
    " SELECT 'schema' AS kind, ns.q AS ident, '' AS def, NULL AS target,"   \
    " 0::pg_catalog.oid AS relid FROM ns WHERE " GG                         \
    " UNION ALL"                                                            \
    " SELECT 'table', rel.q, pg_catalog.concat_ws(' ',"                     \
    "  CASE rel.relkind WHEN 'p' THEN 'partitioned table'"                  \
    "  WHEN 'f' THEN 'foreign table' ELSE 'table' END,"                     \
    "  CASE WHEN rel.relpersistence = 'u' THEN 'unlogged' END,"             \
    "  CASE WHEN rel.relispartition AND inh.parents IS NOT NULL THEN"       \
    "  pg_catalog.format('partition of %s %s', inh.parents,"                \
    "  pg_catalog.pg_get_expr(rel.relpartbound, rel.oid)) END,"             \
    "  CASE WHEN rel.relkind = 'p' THEN pg_catalog.format('partition by %s',"\
    "  pg_catalog.pg_get_partkeydef(rel.oid)) END,"                         \
    "  CASE WHEN NOT rel.relispartition AND inh.parents IS NOT NULL THEN"   \
    "  pg_catalog.format('inherits (%s)', inh.parents) END,"                \
    "  CASE WHEN am.amname <> 'heap' THEN"                                  \
    "  pg_catalog.format('using %I', am.amname) END,"                       \
    S_OPTIONS("with", "rel.reloptions") ","                                 \
    "  CASE WHEN sp.oid IS NOT NULL THEN"                                   \
    "  pg_catalog.format('tablespace %I', sp.spcname) END,"                 \
    "  CASE WHEN rel.relrowsecurity THEN 'row security' END,"               \
    "  CASE WHEN rel.relforcerowsecurity THEN 'force row security' END,"    \
    "  CASE rel.relreplident WHEN 'n' THEN 'replica identity nothing'"      \
    "  WHEN 'f' THEN 'replica identity full'"                               \
    "  WHEN 'i' THEN 'replica identity index' END,"                         \
    "  CASE WHEN rel.relkind = 'f' THEN"                                    \
    "  (SELECT pg_catalog.concat_ws(' ',"                                   \
    "   pg_catalog.format('server %I', fs.srvname),"                        \
    S_OPTIONS("options", "ft.ftoptions") ")"                                \
    "   FROM pg_catalog.pg_foreign_table ft"                                \
    "   JOIN pg_catalog.pg_foreign_server fs ON fs.oid = ft.ftserver"       \
    "   WHERE ft.ftrelid = rel.oid) END), rel.q, rel.oid"                   \
    " FROM rel JOIN inh ON inh.oid = rel.oid"                               \
    " LEFT JOIN pg_catalog.pg_am am ON am.oid = rel.relam"                  \
    " LEFT JOIN pg_catalog.pg_tablespace sp ON sp.oid = rel.reltablespace"  \
    " WHERE rel.relkind IN ('r', 'p', 'f')"                                 \
    " UNION ALL"                                                            \
    " SELECT rel.okind, rel.q, pg_catalog.concat_ws(' ',"                   \
    S_OPTIONS("with", "rel.reloptions") ","                                 \
    "  CASE WHEN NOT rel.relispopulated THEN '(not populated)' END,"        \
    "  pg_catalog.pg_get_viewdef(rel.oid)), rel.q, rel.oid"                 \
    " FROM rel WHERE rel.relkind IN ('v', 'm')"                             \
    " UNION ALL"                                                            \
    " SELECT 'column', col.ident, col.def, col.q, col.attrelid FROM col"    \
    " UNION ALL"                                                            \
    " SELECT 'constraint', con.ident, con.def, con.q, con.conrelid"         \
    " FROM con"                                                             \
    " UNION ALL"                                                            \
    " SELECT 'index', idx.ident, idx.def, idx.q, idx.indrelid"              \
    " FROM idx"                                                             \
    " UNION ALL"                                                            \
    " SELECT 'trigger', trg.ident, trg.def, trg.q, trg.tgrelid"             \
    " FROM trg"                                                             \
    " UNION ALL"                                                            \
    " SELECT 'sequence', seq.q, seq.def, seq.q, seq.oid FROM seq"           \
    " UNION ALL"                                                            \
    " SELECT 'type', typ.q, typ.def, typ.q, 0::pg_catalog.oid"              \
    " FROM typ"                                                             \
    " UNION ALL"                                                            \
    " SELECT 'function', fn.ident, fn.def, fn.sig, 0::pg_catalog.oid"       \
    " FROM fn"                                                              \
    " UNION ALL"                                                            \
    " SELECT 'policy', pol.ident, pol.def, pol.q, pol.polrelid"             \
    " FROM pol"                                                             \
    " UNION ALL"                                                            \
    " SELECT 'rule', rul.ident, rul.def, rul.q, rul.ev_class"               \
    " FROM rul"                                                             \
    " UNION ALL"                                                            \
    " SELECT 'statistics', sta.q, sta.def, sta.q, 0::pg_catalog.oid"        \
    " FROM sta"                                                             \
    " UNION ALL"                                                            \
    " SELECT dbo.kind, dbo.ident, dbo.def, NULL, dbo.relid FROM dbo"       \
    " UNION ALL"                                                            \
    " SELECT 'comment', pg_catalog.format('%s %s', obj.okind, obj.oident)," \
    "  com.description, obj.target, obj.relid"                              \
    " FROM obj " J " com ON com.objoid = obj.objid"                         \
    " AND com.classoid = obj.classid AND com.objsubid = obj.subid"          \
    " UNION ALL"                                                            \
    " SELECT 'owner', pg_catalog.format('%s %s', o.okind, o.oident),"       \
    "  pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(o.owner)), o.target"\
    "  , o.relid"                                                           \
    " FROM (SELECT 'schema' AS okind, ns.q AS oident, ns.nspowner AS owner," \
    "  " T(S_T_SCHEMA) " AS target, 0::pg_catalog.oid AS relid FROM ns"     \
    "  WHERE " GG                                                           \
    "  UNION ALL SELECT rel.okind, rel.q, rel.relowner, " T(S_T_REL)        \
    "  , rel.oid"                                                           \
    "  FROM rel WHERE rel.relkind <> 'S'"                                   \
    "  OR rel.oid NOT IN (SELECT seq.oid FROM seq WHERE seq.linked)"        \
    "  UNION ALL SELECT 'type', typ.q, typ.typowner, " T(S_T_TYPE)          \
    "  , 0::pg_catalog.oid FROM typ"                                        \
    "  UNION ALL SELECT 'function', fn.ident, fn.proowner, " T(S_T_FN)      \
    "  , 0::pg_catalog.oid FROM fn"                                         \
    "  UNION ALL SELECT 'statistics', sta.q, sta.stxowner, " T(S_T_STA)     \
    "  , 0::pg_catalog.oid FROM sta) o"                                     \
    " UNION ALL"                                                            \
    " SELECT 'acl', pg_catalog.format('%s %s', acl.okind, acl.oident),"     \
    "  CASE WHEN acl.acltype = 'c' THEN nullif(acltext.def, '')"            \
    "  ELSE coalesce(acltext.def, '') END, acl.gtarget, acl.relid"          \
    " FROM acl LEFT JOIN acltext ON acltext.eff = acl.eff" W

/* Every described object with its def and target (re-creation). */
#define S_ROWS_SQL                                                          \
    S_CTES_SQL S_OBJ_SQL(S_TARGETS, "", "true")                             \
    S_SELECT_SQL(S_TARGETS, "LEFT JOIN", "", "true")

/*
 * The snapshots: each row with the relation it belongs to (rel: 0 for a
 * schema, type, function or statistics object and for the "snapshot"
 * row), so that a refresh can replace one relation's rows; per
 * generation, the signature of each relation's catalog rows when it was
 * taken (flotilla_schema_sig; rel 0: everything that belongs to no
 * relation) and the fingerprint.
 */
#define S_TABLE_SQL                                                         \
    "CREATE TEMPORARY TABLE IF NOT EXISTS pg_temp.flotilla_schema_snap ("   \
    " gen pg_catalog.int4 NOT NULL,"                                        \
    " kind pg_catalog.text COLLATE pg_catalog.\"C\" NOT NULL,"              \
    " ident pg_catalog.text COLLATE pg_catalog.\"C\" NOT NULL,"             \
    " def pg_catalog.text NOT NULL, rel pg_catalog.oid NOT NULL,"           \
    " PRIMARY KEY (gen, kind, ident));"                                     \
    "CREATE INDEX IF NOT EXISTS flotilla_schema_snap_rel"                   \
    " ON pg_temp.flotilla_schema_snap (gen, rel);"                          \
    "CREATE TEMPORARY TABLE IF NOT EXISTS pg_temp.flotilla_schema_sig ("    \
    " gen pg_catalog.int4 NOT NULL, rel pg_catalog.oid NOT NULL,"           \
    " sig pg_catalog.text NOT NULL, PRIMARY KEY (gen, rel));"               \
    "CREATE TEMPORARY TABLE IF NOT EXISTS pg_temp.flotilla_schema_gen ("    \
    " gen pg_catalog.int4 PRIMARY KEY, fingerprint pg_catalog.bit(256),"    \
    " pair pg_catalog.int4, differ pg_catalog.oid[])"

/* The sum of the xmin of catalog rows a (see S_DETECT_SQL). */
#define S_XSUM(a)                                                           \
    " pg_catalog.sum(" a ".xmin::pg_catalog.text::pg_catalog.int8) "

/* count(*) and S_XSUM of the rows of catalog cat (alias x) where w. */
#define S_CSUM(cat, w)                                                      \
    " (SELECT pg_catalog.concat_ws(',', pg_catalog.count(*)," S_XSUM("x")   \
    ") FROM pg_catalog." cat " x WHERE " w ") "

/*
 * The managed relations whose signature is computed: all of them, or
 * ($4) those the migrations since generation $2 was taken may have
 * changed, and those $2 does not know.
 */
#define S_CAND "ANY (ARRAY(SELECT cand.oid FROM cand))"

/* Types and functions among nsdep (which also lists relations). */
#define S_NSOBJ                                                             \
    "nsdep.classid IN ('pg_catalog.pg_type'::pg_catalog.regclass,"          \
    " 'pg_catalog.pg_proc'::pg_catalog.regclass)"

/* The oids of the managed types. */
#define S_NSTYPES                                                           \
    "ANY (ARRAY(SELECT nsdep.objid FROM nsdep"                              \
    " WHERE nsdep.classid = 'pg_catalog.pg_type'::pg_catalog.regclass))"

/*
 * The count and xmin sum of the catalog rows dbo describes (made after
 * initdb: an index range scan each), and of the database's row, settings
 * and comment, for signature 0: one aggregate over them all (a change in
 * any changes the count or the sum, as a row written later has a larger
 * xmin than the one it replaces), which cost a refresh a quarter of what
 * one subquery a catalog did.
 */
#define S_DBO_NEW(cat, col)                                                 \
    " SELECT x.xmin FROM pg_catalog." cat " x WHERE x." col " >= 16384"
#define S_DBO_SIGS                                                          \
    " (SELECT pg_catalog.concat_ws(',', pg_catalog.count(*)," S_XSUM("x")   \
    " ) FROM (" S_DBO_NEW("pg_publication", "oid") " UNION ALL"              \
    S_DBO_NEW("pg_publication_namespace", "oid") " UNION ALL"               \
    S_DBO_NEW("pg_extension", "oid") " UNION ALL"                           \
    S_DBO_NEW("pg_cast", "oid") " UNION ALL"                                \
    S_DBO_NEW("pg_event_trigger", "oid") " UNION ALL"                       \
    S_DBO_NEW("pg_default_acl", "oid") " UNION ALL"                         \
    S_DBO_NEW("pg_collation", "oid") " UNION ALL"                           \
    S_DBO_NEW("pg_conversion", "oid") " UNION ALL"                          \
    S_DBO_NEW("pg_operator", "oid") " UNION ALL"                            \
    S_DBO_NEW("pg_opfamily", "oid") " UNION ALL"                            \
    S_DBO_NEW("pg_opclass", "oid") " UNION ALL"                             \
    S_DBO_NEW("pg_amop", "amopfamily") " UNION ALL"                         \
    S_DBO_NEW("pg_amproc", "amprocfamily") " UNION ALL"                     \
    S_DBO_NEW("pg_ts_config", "oid") " UNION ALL"                           \
    S_DBO_NEW("pg_ts_config_map", "mapcfg") " UNION ALL"                    \
    S_DBO_NEW("pg_ts_dict", "oid") " UNION ALL"                             \
    " SELECT x.xmin FROM pg_catalog.pg_database x"                          \
    " WHERE x.datname = pg_catalog.current_database() UNION ALL"            \
    " SELECT x.xmin FROM pg_catalog.pg_db_role_setting x"                   \
    " WHERE x.setdatabase =" S_DBO_DB "UNION ALL"                           \
    " SELECT x.xmin FROM pg_catalog.pg_shdescription x"                     \
    " WHERE x.objoid =" S_DBO_DB ") x),"

/*
 * What changed since generation $2 was taken, for a refresh ($3 false).
 * Every catalog row PostgreSQL writes (inserts, or updates as a new
 * version) carries the writing transaction's id in xmin, and a deleted
 * one is gone: so the count and the sum of the xmin of the catalog rows
 * that belong to a relation change whenever one of them is written or
 * deleted (rows written later have larger ids than the rows they
 * replace).  A relation's signature (sig) is its pg_class row's xmin,
 * owner and acl (which print role names), and the count and xmin sum of
 * its columns (with a hash of their grants), defaults, constraints,
 * indexes (pg_index and pg_class rows), triggers, policies, rules,
 * sequence parameters and ownership, parents and foreign-table options,
 * and of the comments on it and on them.  Signature 0 does the same for
 * what belongs to no relation: the scope, the extensions' members, the
 * managed schemas, types (enum labels, domain constraints, ranges,
 * composite attributes), functions and statistics objects, and their
 * comments.  Reading them costs index lookups by the managed objects'
 * oids, no rendering.
 *
 * Signatures are computed for cand: every relation, or when $4 lists the
 * relations the migrations since $2 may have changed
 * (fl_schema_dirty_sql: those they locked, or whose columns they wrote),
 * those, those $2 does not know, and those whose pg_class row is not the
 * one $2 saw (its xmin, the signature's first word: a GRANT, which takes
 * no lock).  Signature 0 also counts and hashes the roles' names, which
 * the relations' owners and grants print.
 *
 * gd.full: everything is described again, when asked ($3), when the
 * generation has no signature 0 yet, or when signature 0 changed (a
 * renamed type, function, schema or role shows in the text of
 * relations whose own catalog rows did not change).  Otherwise dirty
 * holds the relations whose signature changed (or which appeared, among
 * cand only, the others are taken as they were; or disappeared: gone)
 * and those with an object that depends on one of them (pg_depend: a
 * view, a foreign key, a column default, an owned sequence, a partition,
 * a trigger or a policy, whose text names them).  Sets are compared by
 * hashing, never row by row: gone is an EXCEPT, as a NOT EXISTS the
 * planner (which knows no statistics of the temporary tables) ran a scan
 * of live for each stored row, 27 s of a refresh on 30,000 sequences.
 */
#define S_DETECT_SQL                                                        \
    "live AS MATERIALIZED ("                                                \
    " SELECT c.oid, c.xmin, c.relowner, c.relacl"                           \
    " FROM ns JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid"        \
    " WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')"                    \
    " AND NOT" S_IN_EXTENSION("pg_class", "c.oid") "),"                     \
    "stored AS MATERIALIZED (SELECT s.rel, s.sig"                           \
    " FROM pg_temp.flotilla_schema_sig s"                                   \
    " WHERE s.gen = $2::pg_catalog.int4),"                                  \
    "cand AS MATERIALIZED (SELECT live.oid, live.xmin, live.relowner,"      \
    " live.relacl FROM live WHERE $4::pg_catalog.oid[] IS NULL"             \
    " OR live.oid = ANY ($4::pg_catalog.oid[])"                             \
    " OR NOT EXISTS (SELECT FROM stored WHERE stored.rel = live.oid"        \
    "  AND pg_catalog.split_part(stored.sig, ' ', 1)"                       \
    "  = live.xmin::pg_catalog.text)),"                                     \
    "part AS MATERIALIZED ("                                                \
    " SELECT a.attrelid AS rel, 0::pg_catalog.oid AS obj, a.xmin,"          \
    "  CASE WHEN a.attacl IS NOT NULL THEN pg_catalog.hashtext("            \
    "  a.attacl::pg_catalog.text) ELSE 0 END::pg_catalog.int8 AS h"         \
    " FROM pg_catalog.pg_attribute a"                                       \
    " WHERE a.attrelid = " S_CAND " AND a.attnum > 0"                       \
    " UNION ALL SELECT d.adrelid, d.oid, d.xmin, 0"                         \
    " FROM pg_catalog.pg_attrdef d WHERE d.adrelid = " S_CAND               \
    " UNION ALL SELECT k.conrelid, k.oid, k.xmin, 0"                        \
    " FROM pg_catalog.pg_constraint k WHERE k.conrelid = " S_CAND           \
    " UNION ALL SELECT i.indrelid, i.indexrelid, i.xmin,"                   \
    "  ic.xmin::pg_catalog.text::pg_catalog.int8"                           \
    " FROM pg_catalog.pg_index i"                                           \
    " JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"                 \
    " WHERE i.indrelid = " S_CAND                                           \
    " UNION ALL SELECT g.tgrelid, g.oid, g.xmin, 0"                         \
    " FROM pg_catalog.pg_trigger g WHERE g.tgrelid = " S_CAND               \
    " UNION ALL SELECT p.polrelid, p.oid, p.xmin, 0"                        \
    " FROM pg_catalog.pg_policy p WHERE p.polrelid = " S_CAND               \
    " UNION ALL SELECT w.ev_class, w.oid, w.xmin, 0"                        \
    " FROM pg_catalog.pg_rewrite w WHERE w.ev_class = " S_CAND              \
    " UNION ALL SELECT s.seqrelid, 0, s.xmin, 0"                            \
    " FROM pg_catalog.pg_sequence s WHERE s.seqrelid = " S_CAND             \
    " UNION ALL SELECT h.inhrelid, 0, h.xmin, 0"                            \
    " FROM pg_catalog.pg_inherits h WHERE h.inhrelid = " S_CAND             \
    " UNION ALL SELECT f.ftrelid, 0, f.xmin, 0"                             \
    " FROM pg_catalog.pg_foreign_table f WHERE f.ftrelid = " S_CAND         \
    " UNION ALL SELECT pr.prrelid, 0, pr.xmin, 0"                           \
    " FROM pg_catalog.pg_publication_rel pr WHERE pr.prrelid = " S_CAND     \
    " UNION ALL SELECT d.objid, 0, d.xmin, 0 FROM pg_catalog.pg_depend d"   \
    " WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"         \
    " AND d.objid = " S_CAND " AND d.deptype IN ('a', 'i')),"               \
    "own AS MATERIALIZED ("                                                 \
    " SELECT cand.oid AS rel, cand.oid AS obj FROM cand"                    \
    " UNION ALL SELECT part.rel, part.obj FROM part WHERE part.obj <> 0),"  \
    "cmt AS MATERIALIZED ("                                                 \
    " SELECT own.rel, d.xmin FROM pg_catalog.pg_description d"              \
    " JOIN own ON own.obj = d.objoid"                                       \
    " WHERE d.objoid = ANY (ARRAY(SELECT own.obj FROM own))),"              \
    "sig AS MATERIALIZED ("                                                 \
    " SELECT cand.oid AS rel, pg_catalog.concat_ws(' ', cand.xmin,"         \
    "  pg_catalog.pg_get_userbyid(cand.relowner), cand.relacl, x.n, x.sx,"  \
    "  x.sh) AS sig"                                                        \
    " FROM cand LEFT JOIN (SELECT u.rel, pg_catalog.count(*) AS n,"         \
    S_XSUM("u") "AS sx, pg_catalog.sum(u.h) AS sh"                          \
    "  FROM (SELECT part.rel, part.xmin, part.h FROM part"                  \
    "  UNION ALL SELECT cmt.rel, cmt.xmin, 0 FROM cmt) u"                   \
    "  GROUP BY u.rel) x ON x.rel = cand.oid"                               \
    " UNION ALL"                                                            \
    " SELECT 0, pg_catalog.concat_ws(' ',"                                  \
    "  coalesce(pg_catalog.quote_ident($1::pg_catalog.text), '*'),"         \
    "  (SELECT pg_catalog.concat_ws(',', pg_catalog.count(*),"              \
    "   pg_catalog.sum(pg_catalog.hashtext(r.rolname::pg_catalog.text)"     \
    "   ::pg_catalog.int8)) FROM pg_catalog.pg_roles r),"                   \
    "  (SELECT pg_catalog.concat_ws(',', pg_catalog.count(*)," S_XSUM("x")  \
    "   ) FROM ext x),"                                                     \
    "  (SELECT pg_catalog.concat_ws(',', pg_catalog.count(*)," S_XSUM("x")  \
    "   , pg_catalog.sum(pg_catalog.hashtext(pg_catalog.concat("           \
    "   x.nspname, ' ', pg_catalog.pg_get_userbyid(x.nspowner), ' ',"       \
    "   x.nspacl))::pg_catalog.int8))"                                      \
    "   FROM pg_catalog.pg_namespace x"                                     \
    "   WHERE x.oid = ANY (ARRAY(SELECT ns.oid FROM ns))),"                 \
    "  (SELECT pg_catalog.count(*) FROM nsdep WHERE " S_NSOBJ "),"          \
    "  (SELECT pg_catalog.concat_ws(',', pg_catalog.count(*)," S_XSUM("x")  \
    "   , pg_catalog.sum(pg_catalog.hashtext(pg_catalog.concat("           \
    "   pg_catalog.pg_get_userbyid(x.typowner), ' ', x.typacl))"            \
    "   ::pg_catalog.int8)) FROM pg_catalog.pg_type x"                      \
    "   WHERE x.oid = " S_NSTYPES "),"                                      \
    "  (SELECT pg_catalog.concat_ws(',', pg_catalog.count(*)," S_XSUM("x")  \
    "   , pg_catalog.sum(pg_catalog.hashtext(pg_catalog.concat("           \
    "   pg_catalog.pg_get_userbyid(x.proowner), ' ', x.proacl))"            \
    "   ::pg_catalog.int8)) FROM pg_catalog.pg_proc x"                      \
    "   WHERE x.oid = ANY (ARRAY(SELECT nsdep.objid FROM nsdep"             \
    "   WHERE nsdep.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass))),"\
    S_CSUM("pg_enum", "x.enumtypid = " S_NSTYPES) ","                       \
    S_CSUM("pg_constraint", "x.contypid = " S_NSTYPES) ","                  \
    S_CSUM("pg_range", "x.rngtypid = " S_NSTYPES) ","                       \
    S_CSUM("pg_attribute", "x.attrelid = ANY (ARRAY(SELECT t.typrelid"      \
           " FROM pg_catalog.pg_type t WHERE t.oid = " S_NSTYPES            \
           " AND t.typrelid <> 0))") ","                                    \
    "  (SELECT pg_catalog.concat_ws(',', pg_catalog.count(*)," S_XSUM("x")  \
    "   , pg_catalog.sum(pg_catalog.hashtext(pg_catalog.pg_get_userbyid("  \
    "   x.stxowner)::pg_catalog.text)::pg_catalog.int8))"                   \
    "   FROM pg_catalog.pg_statistic_ext x"                                 \
    "   WHERE x.stxnamespace = ANY (ARRAY(SELECT ns.oid FROM ns))),"        \
    S_DBO_SIGS                                                              \
    S_CSUM("pg_description", "x.objoid = ANY (ARRAY(SELECT ns.oid FROM ns"  \
           " UNION ALL SELECT nsdep.objid FROM nsdep WHERE " S_NSOBJ         \
           " UNION ALL SELECT t.oid FROM pg_catalog.pg_statistic_ext t"     \
           " WHERE t.stxnamespace = ANY (ARRAY(SELECT ns.oid FROM ns))))")  \
    ")),"                                                                   \
    "gd AS MATERIALIZED (SELECT $3::pg_catalog.bool OR NOT EXISTS ("        \
    " SELECT FROM stored JOIN sig ON sig.rel = stored.rel"                  \
    " AND sig.sig = stored.sig WHERE stored.rel = 0) AS full),"             \
    "gone AS MATERIALIZED (SELECT stored.rel FROM stored"                   \
    " WHERE stored.rel <> 0 EXCEPT SELECT live.oid FROM live),"             \
    "chg AS MATERIALIZED (SELECT coalesce(sig.rel, st.rel) AS rel"          \
    " FROM sig FULL JOIN (SELECT stored.rel, stored.sig FROM stored"        \
    "  WHERE stored.rel = 0 OR stored.rel IN (SELECT cand.oid FROM cand)) st" \
    " ON st.rel = sig.rel AND st.sig = sig.sig"                             \
    " WHERE sig.rel IS NULL OR st.rel IS NULL"                              \
    " UNION ALL SELECT gone.rel FROM gone),"                                \
    "dirty AS MATERIALIZED (SELECT chg.rel FROM chg WHERE chg.rel <> 0"     \
    " UNION SELECT r.rel FROM pg_catalog.pg_depend d, LATERAL ("            \
    "  SELECT k.conrelid FROM pg_catalog.pg_constraint k"                   \
    "  WHERE d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass"   \
    "  AND k.oid = d.objid"                                                 \
    "  UNION ALL SELECT w.ev_class FROM pg_catalog.pg_rewrite w"            \
    "  WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"      \
    "  AND w.oid = d.objid"                                                 \
    "  UNION ALL SELECT a.adrelid FROM pg_catalog.pg_attrdef a"             \
    "  WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass"      \
    "  AND a.oid = d.objid"                                                 \
    "  UNION ALL SELECT g.tgrelid FROM pg_catalog.pg_trigger g"             \
    "  WHERE d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass"      \
    "  AND g.oid = d.objid"                                                 \
    "  UNION ALL SELECT p.polrelid FROM pg_catalog.pg_policy p"             \
    "  WHERE d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass"       \
    "  AND p.oid = d.objid"                                                 \
    "  UNION ALL SELECT coalesce((SELECT i.indrelid"                        \
    "  FROM pg_catalog.pg_index i WHERE i.indexrelid = d.objid), d.objid)"  \
    "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass) r(rel)"\
    " WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"      \
    " AND d.refobjid = ANY (ARRAY(SELECT chg.rel FROM chg))"                \
    " AND r.rel IN (SELECT live.oid FROM live)),"

#define S_FULL "(SELECT gd.full FROM gd)"
#define S_DIRTY "ANY (ARRAY(SELECT dirty.rel FROM dirty))"

/*
 * The hash of one snapshot row: SHA-256 of "len:kind len:ident len:def"
 * (lengths in bytes, so that no def can pass for another row) as 256
 * bits.  A generation's fingerprint is the XOR of its rows' hashes: it
 * does not depend on their order, and a refresh updates it with the
 * hashes of the rows it deletes and inserts.
 */
#define S_ROW_HASH(k, i, d)                                                 \
    " ('x' OPERATOR(pg_catalog.||) pg_catalog.encode(pg_catalog.sha256("    \
    " pg_catalog.convert_to(pg_catalog.format('%s:%s %s:%s %s:%s',"         \
    " pg_catalog.octet_length(" k "), " k ", pg_catalog.octet_length(" i    \
    "), " i ", pg_catalog.octet_length(" d "), " d "), 'UTF8')), 'hex'))"   \
    "::pg_catalog.bit(256) "

/* 256 bits as 64 hex digits. */
#define S_HEX64(b, from)                                                    \
    " pg_catalog.lpad(pg_catalog.to_hex(pg_catalog.substring(" b ", " from  \
    ", 64)::pg_catalog.bit(64)::pg_catalog.int8), 16, '0') "
#define S_HEX256(b)                                                         \
    " pg_catalog.concat(" S_HEX64(b, "1") "," S_HEX64(b, "65") ","          \
    S_HEX64(b, "129") "," S_HEX64(b, "193") ") "

/*
 * Pairs.  Recording a migration's changes compares two generations,
 * which on a wide schema costs more than refreshing one (9 of 22 ms
 * after a small migration on 1,000 tables): yet most of their rows are
 * the same, and where they can differ is known.  A generation's row in
 * flotilla_schema_gen may name another as its pair, and then both name
 * each other and hold the same differ: the relations (0: what belongs to
 * none) outside which their rows are the same.  fl_schema_snapshot_twin
 * makes a pair that differs nowhere; a snapshot or refresh of either
 * adds the relations of the rows it wrote (d, both sides); a record
 * compares only the rows of differ when its two generations are a pair,
 * else all, and makes them a pair that differs where it found them to
 * differ, their relation included: a row that moved to another
 * relation differs (undoing any pair either was in).  No other statement
 * writes a generation's rows.  A (kind, ident) is one row of a
 * generation, so rows outside differ that are the same in both cannot
 * meet a row of differ in the comparison: it finds what the whole one
 * would (test_schema.c checks it after generated migrations).
 */

/* Row g's differ with the relations the snapshot wrote (w), or NULL. */
#define S_DIFFER_ADD(g)                                                     \
    " CASE WHEN " g ".pair IS NOT NULL THEN ARRAY(SELECT DISTINCT u"        \
    " FROM pg_catalog.unnest(pg_catalog.array_cat(" g ".differ,"            \
    " (SELECT w.rels FROM w))) u) END "

/*
 * A snapshot into generation $2, in one statement: the rows with a def,
 * and a "snapshot" row holding the scope so that generations of
 * different scopes are never compared.  All of them when $3 is true or
 * the generation was never taken (gd.full); else a refresh: only the
 * relations that changed since $2 was taken are described again (see
 * S_DETECT_SQL), and the rows of the others stay as they are.  Only the
 * rows that differ are written (rewriting every row cost as much as
 * describing them): d holds the new rows that are not in $2 and the
 * rows of $2 that are not among the new ones, among the rows described
 * (old: those of the relations described, or all).  A row matches only
 * with the same relation, so that a table dropped and created again
 * gets rows under its new oid.  The rows of $2 are deleted by their ctid
 * (read in old, in the same statement): a join of d with the table was
 * planned as a hash of every row of $2 (its estimates know no
 * statistics of a temporary table), 7 of the 29 ms of a refresh on a
 * schema of 1,000 tables.  For the same reason rel is read in two
 * branches: all of pg_class when everything is described, the dirty
 * relations' rows by their oid when not (a condition "full OR dirty"
 * scanned the whole catalog either way).  Reading del's count in the INSERT's
 * condition makes the DELETE run to completion first, so that a row
 * whose def changed does not meet its old self in the primary key; the
 * same for the signatures.  In snapshots, only grants can lack a def (a
 * column without any): the filter is on those rows alone, as a filter
 * on the union would be pushed into every branch and evaluate each def
 * twice.  The fingerprint is updated with the hashes of the rows
 * deleted and inserted, and the pair's differ (see "Pairs") with
 * their relations.  Returns the number of rows written and the
 * fingerprint.
 */
#define S_SNAP_HEAD                                                         \
    S_CTES_HEAD(S_DETECT_SQL, " AND " S_FULL " UNION ALL" S_REL_SQL        \
                " AND NOT " S_FULL " AND c.oid = " S_DIRTY)
#define S_SNAP_TAIL                                                         \
    S_OBJ_SQL(S_NO_TARGETS, " WHERE col.attacl IS NOT NULL", S_FULL) ","    \
    "new AS ("                                                              \
    " SELECT r.kind COLLATE pg_catalog.\"C\" AS kind,"                      \
    "  r.ident COLLATE pg_catalog.\"C\" AS ident, r.def, r.relid"           \
    " FROM (" S_SELECT_SQL(S_NO_TARGETS, "JOIN",                            \
                           " WHERE acltext.def IS NOT NULL"                 \
                           " OR acl.acltype <> 'c'", S_FULL) ") r"          \
    " UNION ALL"                                                            \
    " SELECT 'snapshot', '',"                                               \
    " coalesce(pg_catalog.quote_ident($1::pg_catalog.text), '*'),"          \
    " 0::pg_catalog.oid WHERE " S_FULL "),"                                 \
    "old AS ("                                                              \
    " SELECT s.kind, s.ident, s.def, s.rel, s.ctid"                         \
    " FROM pg_temp.flotilla_schema_snap s"                                  \
    " WHERE s.gen = $2::pg_catalog.int4 AND " S_FULL                        \
    " UNION ALL"                                                            \
    " SELECT s.kind, s.ident, s.def, s.rel, s.ctid"                         \
    " FROM pg_temp.flotilla_schema_snap s"                                  \
    " WHERE s.gen = $2::pg_catalog.int4 AND NOT " S_FULL                    \
    " AND s.rel = " S_DIRTY "),"                                            \
    "d AS MATERIALIZED ("                                                   \
    " SELECT old.kind AS okind, old.ident AS oident, old.def AS odef,"      \
    " old.ctid AS octid, old.rel AS orel,"                                  \
    " new.kind, new.ident, new.def, new.relid FROM new"                     \
    " FULL JOIN old ON old.kind = new.kind AND old.ident = new.ident"       \
    " AND old.def = new.def AND old.rel = new.relid"                        \
    " WHERE old.kind IS NULL OR new.kind IS NULL),"                         \
    "del AS (DELETE FROM pg_temp.flotilla_schema_snap s"                    \
    " WHERE s.ctid = ANY (ARRAY(SELECT d.octid FROM d"                      \
    " WHERE d.octid IS NOT NULL)) RETURNING 1),"                            \
    "ins AS (INSERT INTO pg_temp.flotilla_schema_snap"                      \
    " (gen, kind, ident, def, rel)"                                         \
    " SELECT $2::pg_catalog.int4, d.kind, d.ident, d.def, d.relid FROM d"   \
    " WHERE d.kind IS NOT NULL"                                             \
    " AND (SELECT pg_catalog.count(*) FROM del) >= 0 RETURNING 1),"         \
    "sdel AS (DELETE FROM pg_temp.flotilla_schema_sig s"                    \
    " WHERE s.gen = $2::pg_catalog.int4"                                    \
    " AND s.rel = ANY (ARRAY(SELECT chg.rel FROM chg)) RETURNING 1),"       \
    "sins AS (INSERT INTO pg_temp.flotilla_schema_sig (gen, rel, sig)"      \
    " SELECT $2::pg_catalog.int4, sig.rel, sig.sig FROM sig"                \
    " WHERE sig.rel IN (SELECT chg.rel FROM chg)"                           \
    " AND (SELECT pg_catalog.count(*) FROM sdel) >= 0 RETURNING 1),"        \
    "w AS MATERIALIZED (SELECT coalesce(pg_catalog.array_agg(DISTINCT x.rel),"\
    " '{}') AS rels FROM (SELECT d.orel FROM d WHERE d.okind IS NOT NULL"   \
    " UNION ALL SELECT d.relid FROM d WHERE d.kind IS NOT NULL) x(rel)),"   \
    "pw AS (UPDATE pg_temp.flotilla_schema_gen p"                           \
    " SET differ = " S_DIFFER_ADD("p") " WHERE p.pair = $2::pg_catalog.int4" \
    " AND p.gen <> $2::pg_catalog.int4 RETURNING 1),"                       \
    "fp AS (INSERT INTO pg_temp.flotilla_schema_gen AS g (gen, fingerprint)" \
    " SELECT $2::pg_catalog.int4, coalesce(pg_catalog.bit_xor(x.h),"        \
    " B'0'::pg_catalog.bit(256)) FROM ("                                    \
    " SELECT" S_ROW_HASH("d.okind", "d.oident", "d.odef") "AS h FROM d"     \
    " WHERE d.okind IS NOT NULL UNION ALL"                                  \
    " SELECT" S_ROW_HASH("d.kind", "d.ident", "d.def") "FROM d"             \
    " WHERE d.kind IS NOT NULL) x"                                          \
    " ON CONFLICT (gen) DO UPDATE SET fingerprint ="                        \
    " g.fingerprint # EXCLUDED.fingerprint, differ = " S_DIFFER_ADD("g")    \
    " RETURNING g.fingerprint)"                                             \
    " SELECT (SELECT pg_catalog.count(*) FROM ins),"                        \
    " (SELECT" S_HEX256("fp.fingerprint") "FROM fp)"

/*
 * The snapshot's variants.  Parsing and planning the whole statement on a
 * new connection costs more than running it (issue 12: some 25 ms of a
 * fleet target's 90 on the server), and most of it goes to the kinds of
 * object most tenant schemas have none of.  So the snapshot asks first
 * which kinds the managed schemas hold (fl_schema_census_sql: in the
 * snapshot's transaction, or in the migration's, see
 * fl_schema_record_after), and a kind they hold none of is described by
 * an empty CTE of the same columns: the rows are the same as the whole
 * statement's, since the kind has no rows to give.  Each variant is
 * prepared once per connection under its own name.  The census counts
 * more than the snapshot describes (extension members, a function's
 * namespace dependency whatever the function), which costs a larger
 * variant, never a missing row.  A kind created by another session between the census
 * and the snapshot, in the same transaction, is missed as a concurrent
 * change to an object the snapshot already read would be: the target
 * lock is what keeps others' DDL out.
 */
#define S_NONE(name, cols) name " AS MATERIALIZED (SELECT " cols " WHERE false),"
#define S_N_OID(c) "NULL::pg_catalog.oid AS " c
#define S_N_TEXT(c) "NULL::pg_catalog.text AS " c
#define S_N_NAME(c) "NULL::pg_catalog.name AS " c
#define S_N_CHAR(c) "NULL::pg_catalog.\"char\" AS " c
#define S_N_ACL(c) "NULL::pg_catalog.aclitem[] AS " c

static const struct {
    const char *kind; /* as the census names it */
    const char *cte;  /* its description */
    const char *none; /* the same columns, no rows */
} s_snap_kinds[] = {
    {"trigger", S_CTE_TRG,
     S_NONE("trg", S_N_OID("oid") "," S_N_OID("tgrelid") "," S_N_NAME("tgname")
            "," S_N_TEXT("q") "," S_N_TEXT("ident") "," S_N_TEXT("def"))},
    {"policy", S_CTE_POL,
     S_NONE("pol", S_N_OID("oid") "," S_N_OID("polrelid") ","
            S_N_NAME("polname") "," S_N_TEXT("q") "," S_N_TEXT("ident") ","
            S_N_TEXT("def"))},
    {"rule", S_CTE_RUL,
     S_NONE("rul", S_N_OID("oid") "," S_N_OID("ev_class") ","
            S_N_NAME("rulename") "," S_N_TEXT("q") "," S_N_TEXT("ident") ","
            S_N_TEXT("def"))},
    {"sequence", S_CTE_SEQ,
     S_NONE("seq", S_N_OID("oid") "," S_N_TEXT("q") ","
            "NULL::pg_catalog.bool AS linked," S_N_TEXT("def"))},
    {"type", S_CTE_TYP(S_FULL),
     S_NONE("typ", S_N_OID("oid") "," S_N_CHAR("typtype") ","
            S_N_OID("typowner") "," S_N_ACL("typacl") "," S_N_TEXT("q") ","
            S_N_TEXT("def"))},
    {"function", S_CTE_FN(S_FULL),
     S_NONE("fn", S_N_OID("oid") "," S_N_CHAR("prokind") ","
            S_N_OID("proowner") "," S_N_ACL("proacl") "," S_N_TEXT("ident")
            "," S_N_TEXT("sig") "," S_N_TEXT("def"))},
    {"statistics", S_CTE_STA(S_FULL),
     S_NONE("sta", S_N_OID("oid") "," S_N_OID("stxowner") "," S_N_TEXT("q")
            "," S_N_TEXT("def"))},
    {"database object", S_CTE_DBO(S_FULL),
     S_NONE("dbo", S_N_TEXT("kind") "," S_N_TEXT("ident") "," S_N_TEXT("def")
            "," S_N_OID("relid"))},
};

#define S_NKINDS (sizeof(s_snap_kinds) / sizeof(s_snap_kinds[0]))
#define S_ALL_KINDS ((1u << S_NKINDS) - 1)

/*
 * Which kinds the managed schemas (or schema $1) hold, one bit each in
 * s_snap_kinds' order.  Each test is an index scan or a scan of a catalog
 * that holds few rows (pg_trigger, pg_policy, pg_rewrite, pg_sequence,
 * pg_statistic_ext).  Every operator is spelled OPERATOR(pg_catalog.x):
 * the pipeline runs it unpinned, with the migration's COMMIT.
 */
#define S_OP(op) " OPERATOR(pg_catalog." op ") "
#define S_CENSUS_NS S_OP("=") "ANY (ARRAY(SELECT n.oid FROM n))"
#define S_CENSUS_REL(cat, a, col)                                           \
    " EXISTS (SELECT FROM pg_catalog." cat " " a " JOIN pg_catalog.pg_class" \
    " c ON c.oid" S_OP("=") a "." col " WHERE c.relnamespace" S_CENSUS_NS
#define S_CENSUS_DEP(cat)                                                   \
    " EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.refclassid"        \
    S_OP("=") "'pg_catalog.pg_namespace'::pg_catalog.regclass"              \
    " AND d.refobjid" S_CENSUS_NS " AND d.refobjsubid" S_OP("=") "0"        \
    " AND d.deptype" S_OP("=") "'n' AND d.classid" S_OP("=")               \
    "'pg_catalog." cat "'::pg_catalog.regclass)"

/* A row of catalog cat made after initdb, for an EXISTS. */
#define S_CENSUS_NEW(cat)                                                   \
    " SELECT FROM pg_catalog." cat " x WHERE x.oid" S_OP(">=") "16384"

const char fl_schema_census_sql[] =
    "WITH n AS MATERIALIZED (SELECT n.oid FROM pg_catalog.pg_namespace n"
    " WHERE CASE WHEN $1::pg_catalog.text IS NULL THEN n.nspname" S_OP("<>")
    "ALL (ARRAY['pg_catalog', 'information_schema', 'flotilla',"
    " 'flotilla_backup']::pg_catalog.name[])"
    " AND NOT pg_catalog.starts_with(n.nspname::pg_catalog.text, 'pg_toast')"
    " AND NOT pg_catalog.starts_with(n.nspname::pg_catalog.text, 'pg_temp')"
    " ELSE n.nspname" S_OP("=") "$1::pg_catalog.text END)"
    " SELECT (CASE WHEN" S_CENSUS_REL("pg_trigger", "g", "tgrelid")
    " AND NOT g.tgisinternal) THEN 1 ELSE 0 END)"
    S_OP("+") "(CASE WHEN" S_CENSUS_REL("pg_policy", "p", "polrelid")
    ") THEN 2 ELSE 0 END)"
    S_OP("+") "(CASE WHEN" S_CENSUS_REL("pg_rewrite", "w", "ev_class")
    " AND w.rulename" S_OP("<>") "'_RETURN') THEN 4 ELSE 0 END)"
    /* 8: FL_SCHEMA_KIND_SEQUENCE */
    S_OP("+") "(CASE WHEN" S_CENSUS_REL("pg_sequence", "s", "seqrelid")
    ") THEN 8 ELSE 0 END)"
    S_OP("+") "(CASE WHEN" S_CENSUS_DEP("pg_type") " THEN 16 ELSE 0 END)"
    S_OP("+") "(CASE WHEN" S_CENSUS_DEP("pg_proc") " THEN 32 ELSE 0 END)"
    S_OP("+") "(CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_statistic_ext x"
    " WHERE x.stxnamespace" S_CENSUS_NS ") THEN 64 ELSE 0 END)"
    /*
     * 128: the objects of dbo, made after initdb (whose own have lower
     * oids), in any schema: one EXISTS over an index probe of each.
     */
    S_OP("+") "(CASE WHEN EXISTS (" S_CENSUS_NEW("pg_publication")
    " UNION ALL" S_CENSUS_NEW("pg_extension") " UNION ALL"
    S_CENSUS_NEW("pg_cast") " UNION ALL" S_CENSUS_NEW("pg_event_trigger")
    " UNION ALL" S_CENSUS_NEW("pg_default_acl") " UNION ALL"
    S_CENSUS_NEW("pg_collation") " UNION ALL" S_CENSUS_NEW("pg_conversion")
    " UNION ALL" S_CENSUS_NEW("pg_operator") " UNION ALL"
    S_CENSUS_NEW("pg_opfamily") " UNION ALL" S_CENSUS_NEW("pg_opclass")
    " UNION ALL" S_CENSUS_NEW("pg_ts_config") " UNION ALL"
    S_CENSUS_NEW("pg_ts_dict") " UNION ALL"
    " SELECT FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase"
    S_OP("=") "(SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname"
    S_OP("=") "pg_catalog.current_database()) UNION ALL"
    " SELECT FROM pg_catalog.pg_database d WHERE d.datname" S_OP("=")
    "pg_catalog.current_database() AND (d.datacl IS NOT NULL OR"
    " d.datconnlimit" S_OP("<>") "-1 OR NOT d.datallowconn OR EXISTS (SELECT"
    " FROM pg_catalog.pg_shdescription c WHERE c.objoid" S_OP("=") "d.oid"
    " AND c.classoid" S_OP("=")
    "'pg_catalog.pg_database'::pg_catalog.regclass)))"
    " THEN 128 ELSE 0 END)";

int
fl_schema_census_kinds(const fl_pg_result_t *r)
{
    const char *v = r->nrows == 1 ? fl_pg_value(r, 0, 0) : NULL;

    return v != NULL ? (int)(strtoul(v, NULL, 10) & S_ALL_KINDS)
                     : FL_SCHEMA_KINDS_ASK;
}

/* Variant kinds' text, built at first use; lives as long as the process. */
static pthread_mutex_t s_snap_lock = PTHREAD_MUTEX_INITIALIZER;
static char *s_snap_text[S_ALL_KINDS + 1];

/*
 * The snapshot statement describing the kinds in mask, and its prepared
 * statement's name (name: at least 32 bytes).
 */
static const char *
s_snapshot_variant(unsigned mask, char *name, size_t n)
{
    char *text;

    mask &= S_ALL_KINDS;
    snprintf(name, n, "flotilla_schema_snapshot_%02x", mask);
    pthread_mutex_lock(&s_snap_lock);
    if ((text = s_snap_text[mask]) == NULL) {
        fl_buf_t b = FL_BUF_INIT(0);

        fl_buf_adds(&b, S_SNAP_HEAD);
        for (size_t i = 0; i < S_NKINDS; i++)
            fl_buf_adds(&b, mask & (1u << i) ? s_snap_kinds[i].cte
                                             : s_snap_kinds[i].none);
        fl_buf_adds(&b, S_SNAP_TAIL);
        text = s_snap_text[mask] = fl_buf_detach(&b);
    }
    pthread_mutex_unlock(&s_snap_lock);
    return text;
}


/* The scope of generation $1 (fl_schema_prove, pinned). */
static const char s_scope_sql[] =
    "SELECT def FROM pg_temp.flotilla_schema_snap"
    " WHERE gen = $1::pg_catalog.int4 AND kind = 'snapshot' AND ident = ''";

const char fl_schema_ledger_sql[] =
    "CREATE TABLE IF NOT EXISTS flotilla.schema_changes ("
    "  target pg_catalog.text NOT NULL,"
    "  version pg_catalog.text NOT NULL," /* bigint before ledger 5 */
    "  kind pg_catalog.text NOT NULL,"
    "  ident pg_catalog.text NOT NULL,"
    "  before_def pg_catalog.text,"
    "  after_def pg_catalog.text,"
    "  CONSTRAINT schema_changes_pkey PRIMARY KEY (target, version, kind,"
    "  ident));";

/*
 * The statements below render nothing and run without the pinned
 * settings (s_query_snap()), in the caller's session: every operator is
 * spelled OPERATOR(pg_catalog.x), as the caller's search_path may put a
 * tenant's schema first.  IS DISTINCT FROM, IN and CASE x WHEN look up
 * "=" by the search path: they are written out.
 */
static const char s_fingerprint_sql[] =
    "SELECT" S_HEX256("g.fingerprint") "FROM pg_temp.flotilla_schema_gen g"
    " WHERE g.gen OPERATOR(pg_catalog.=) $1::pg_catalog.int4";

/* The "snapshot" row of generation g: its scope. */
#define S_SCOPE_OF(g)                                                       \
    " (SELECT s.def FROM pg_temp.flotilla_schema_snap s"                    \
    "  WHERE s.gen OPERATOR(pg_catalog.=) " g "::pg_catalog.int4"           \
    "  AND s.kind OPERATOR(pg_catalog.=) 'snapshot'"                        \
    "  AND s.ident OPERATOR(pg_catalog.=) '') "

#define S_EQ " OPERATOR(pg_catalog.=) "

/*
 * The described rows of generation g that can differ from the other's: of
 * the relations in pr (the pair's differ), or all when pr has no row.
 */
#define S_ROWS_OF(g)                                                        \
    " (SELECT s.kind, s.ident, s.def, s.rel"                                \
    "  FROM pg_temp.flotilla_schema_snap s"                                 \
    "  WHERE s.gen" S_EQ g "::pg_catalog.int4"                              \
    "  AND s.kind OPERATOR(pg_catalog.<>) 'snapshot'"                       \
    "  AND NOT EXISTS (SELECT FROM pr)"                                     \
    "  UNION ALL SELECT s.kind, s.ident, s.def, s.rel"                      \
    "  FROM pg_temp.flotilla_schema_snap s"                                 \
    "  WHERE s.gen" S_EQ g "::pg_catalog.int4"                              \
    "  AND s.rel" S_EQ "ANY ((SELECT pr.differ FROM pr)::pg_catalog.oid[])" \
    "  AND s.kind OPERATOR(pg_catalog.<>) 'snapshot') "

/*
 * CTEs of a record from generation B to A (see "Pairs"), after ok (both
 * taken, the same scope): pr, the pair's differ when B and A are a pair;
 * dr, the rows that differ (in one only, or with another def or another
 * relation: a table dropped and made again the same is no change to
 * record, but its rows moved); pu, B and A made a pair that differs in
 * dr's relations.  S_CHANGED(dr): dr's rows that are changes.
 */
#define S_ROWS_DIFFER(B, A)                                                 \
    " pr AS MATERIALIZED (SELECT b.differ"                                  \
    "  FROM pg_temp.flotilla_schema_gen b"                                  \
    "  JOIN pg_temp.flotilla_schema_gen a ON a.gen" S_EQ A "::pg_catalog.int4" \
    "  AND a.pair" S_EQ B "::pg_catalog.int4"                               \
    "  WHERE b.gen" S_EQ B "::pg_catalog.int4"                              \
    "  AND b.pair" S_EQ A "::pg_catalog.int4 AND b.differ IS NOT NULL),"    \
    " dr AS MATERIALIZED (SELECT coalesce(b.kind, a.kind) AS kind,"         \
    "  coalesce(b.ident, a.ident) AS ident, b.def AS bdef, a.def AS adef,"  \
    "  b.rel AS brel, a.rel AS arel"                                        \
    "  FROM" S_ROWS_OF(B) "b FULL JOIN" S_ROWS_OF(A) "a"                    \
    "  ON a.kind" S_EQ "b.kind AND a.ident" S_EQ "b.ident"                  \
    "  WHERE (a.kind IS NULL OR b.kind IS NULL"                             \
    "  OR a.def OPERATOR(pg_catalog.<>) b.def"                              \
    "  OR a.rel OPERATOR(pg_catalog.<>) b.rel) AND EXISTS (SELECT FROM ok)),"\
    " pu AS (UPDATE pg_temp.flotilla_schema_gen g"                          \
    "  SET pair = CASE WHEN g.gen" S_EQ B "::pg_catalog.int4"               \
    "  THEN " A "::pg_catalog.int4 WHEN g.gen" S_EQ A "::pg_catalog.int4"   \
    "  THEN " B "::pg_catalog.int4 END,"                                    \
    "  differ = CASE WHEN g.gen" S_EQ B "::pg_catalog.int4"                 \
    "  OR g.gen" S_EQ A "::pg_catalog.int4"                                 \
    "  THEN (SELECT coalesce(pg_catalog.array_agg(DISTINCT x.rel),"         \
    "  '{}') FROM (SELECT dr.brel FROM dr WHERE dr.brel IS NOT NULL"        \
    "  UNION ALL SELECT dr.arel FROM dr WHERE dr.arel IS NOT NULL) x(rel))" \
    "  END"                                                                 \
    "  WHERE (g.gen" S_EQ B "::pg_catalog.int4 OR g.gen" S_EQ A             \
    "::pg_catalog.int4 OR g.pair" S_EQ B "::pg_catalog.int4"              \
    "  OR g.pair" S_EQ A "::pg_catalog.int4) AND EXISTS (SELECT FROM ok)"   \
    "  RETURNING 1),"
#define S_CHANGED(dr)                                                       \
    " (" dr ".bdef IS NULL OR " dr ".adef IS NULL"                          \
    " OR " dr ".bdef OPERATOR(pg_catalog.<>) " dr ".adef) "

/*
 * Version $1's changes (of target $4) from generation $2 to $3, replacing
 * its rows, when
 * both were taken and have the same scope; the scopes of both (NULL: not
 * taken) and the number of rows written.  Reading del's count makes the
 * DELETE run first (see S_SNAP_TAIL).
 */
static const char s_record_sql[] =
    "WITH sc AS MATERIALIZED (SELECT" S_SCOPE_OF("$2") "AS b,"
    S_SCOPE_OF("$3") "AS a),"
    " ok AS MATERIALIZED (SELECT FROM sc"
    "  WHERE sc.b OPERATOR(pg_catalog.=) sc.a),"
    " del AS (DELETE FROM flotilla.schema_changes c"
    "  WHERE c.version OPERATOR(pg_catalog.=) $1::pg_catalog.text"
    "  AND c.target OPERATOR(pg_catalog.=) $4::pg_catalog.text"
    "  AND EXISTS (SELECT FROM ok) RETURNING 1),"
    S_ROWS_DIFFER("$2", "$3")
    " ins AS (INSERT INTO flotilla.schema_changes"
    "  (version, kind, ident, before_def, after_def, target)"
    "  SELECT $1::pg_catalog.text, dr.kind, dr.ident, dr.bdef, dr.adef,"
    "  $4::pg_catalog.text FROM dr WHERE" S_CHANGED("dr")
    "  AND (SELECT pg_catalog.count(*) FROM del) OPERATOR(pg_catalog.>=) 0"
    "  RETURNING 1)"
    " SELECT sc.b, sc.a, (SELECT pg_catalog.count(*) FROM ins) FROM sc";

/*
 * Expected: generation $2 with version $1's changes undone (an object the
 * version created is expected absent).  Actual: generation $3.  Kinds $5
 * are left out (see fl_schema_prove).
 */
static const char s_prove_sql[] =
    "WITH b AS (SELECT kind, ident, def FROM pg_temp.flotilla_schema_snap"
    "  WHERE gen = $2::pg_catalog.int4 AND kind <> 'snapshot'"
    "  AND kind <> ALL ($5::pg_catalog.text[])),"
    " ch AS (SELECT kind, ident, before_def FROM flotilla.schema_changes"
    "  WHERE version = $1"
    "  AND target OPERATOR(pg_catalog.=) $4),"
    " e AS (SELECT coalesce(ch.kind, b.kind) AS kind,"
    "  coalesce(ch.ident, b.ident) AS ident,"
    "  CASE WHEN ch.kind IS NULL THEN b.def ELSE ch.before_def END AS def"
    "  FROM b FULL JOIN ch ON ch.kind = b.kind AND ch.ident = b.ident),"
    " n AS (SELECT kind, ident, def FROM pg_temp.flotilla_schema_snap"
    "  WHERE gen = $3::pg_catalog.int4 AND kind <> 'snapshot'"
    "  AND kind <> ALL ($5::pg_catalog.text[]))"
    " SELECT d.kind, d.ident, d.expected, d.actual FROM ("
    "  SELECT coalesce(e.kind, n.kind) AS kind,"
    "  coalesce(e.ident, n.ident) AS ident, e.def AS expected,"
    "  n.def AS actual"
    "  FROM (SELECT kind, ident, def FROM e WHERE def IS NOT NULL) e"
    "  FULL JOIN n ON n.kind = e.kind AND n.ident = e.ident"
    "  WHERE e.def IS DISTINCT FROM n.def) d"
    " ORDER BY d.kind COLLATE pg_catalog.\"C\","
    " d.ident COLLATE pg_catalog.\"C\"";

/*
 * Version $2's changes of the kinds $3 whose object is not as recorded
 * before the migration, with the object's live def and target (both NULL
 * when it does not exist).  $1 is NULL: every managed schema.
 */
static const char s_candidates_sql[] =
    "SELECT c.kind, c.ident, c.before_def, r.def, r.target"
    " FROM flotilla.schema_changes c LEFT JOIN (" S_ROWS_SQL ") r"
    " ON r.kind = c.kind AND r.ident = c.ident"
    " WHERE c.version = $2 AND c.before_def IS NOT NULL"
    " AND c.target OPERATOR(pg_catalog.=) $4"
    " AND c.kind OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.text[])"
    " AND r.def IS DISTINCT FROM c.before_def"
    " ORDER BY c.kind COLLATE pg_catalog.\"C\","
    " c.ident COLLATE pg_catalog.\"C\"";

/*
 * Whether s_candidates_sql can return a row: a recorded change of kinds
 * $3 with a def before.  Most migrations record none of the kinds a
 * rollback re-creates (an added column or index has no def before), and
 * the candidates' statement, with the whole catalog description in it,
 * costs some 10 ms to parse and plan each time (unnamed; four times a
 * migration rolled back), against 0.05 ms to run.
 */
static const char s_any_candidate_sql[] =
    "SELECT EXISTS (SELECT FROM flotilla.schema_changes c"
    " WHERE c.version = $1 AND c.before_def IS NOT NULL"
    " AND c.target OPERATOR(pg_catalog.=) $2"
    " AND c.kind OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.text[]))";

/* The recorded owners and grants, to parse before anything runs. */
static const char s_recorded_sql[] =
    "SELECT kind, ident, before_def FROM flotilla.schema_changes"
    " WHERE version = $1 AND before_def IS NOT NULL"
    " AND target OPERATOR(pg_catalog.=) $2 AND kind IN ('owner', 'acl')"
    " ORDER BY kind COLLATE pg_catalog.\"C\", ident COLLATE pg_catalog.\"C\"";

/*
 * Table $1.$2 of a managed schema: its name quoted from the catalog, $3
 * quoted as pg_get_*def() quote names, the owner, and whether $3 is one
 * of its columns.
 */
static const char s_table_of_sql[] =
    "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),"
    " pg_catalog.quote_ident($3::pg_catalog.text),"
    " pg_catalog.pg_get_userbyid(c.relowner),"
    " EXISTS (SELECT FROM pg_catalog.pg_attribute a"
    "  WHERE a.attrelid = c.oid"
    "  AND a.attname OPERATOR(pg_catalog.=) $3::pg_catalog.text"
    "  AND a.attnum > 0 AND NOT a.attisdropped)"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.text"
    " AND c.relname OPERATOR(pg_catalog.=) $2::pg_catalog.text"
    " AND c.relkind IN ('r', 'p', 'f', 'm', 'v') AND" S_MANAGED("n");

/*
 * The settings our catalog queries run under (schema.h, "Session"): an
 * empty search_path, so that only pg_catalog resolves names; the output
 * styles pg_dump pins, so that defs do not depend on the session; no
 * JIT, whose compilation took 300 of the 380 ms of a snapshot of 200
 * tables; generic plans, as planning the snapshot statement costs more
 * than running it on a small schema; and no sorts where an index gives
 * the order (a sort cost a microsecond a row).
 */
#define S_NPINS 10

#define S_PINS                                                              \
    " pg_catalog.set_config('search_path', '', true),"                      \
    " pg_catalog.set_config('DateStyle', 'ISO, YMD', true),"                \
    " pg_catalog.set_config('IntervalStyle', 'postgres', true),"            \
    " pg_catalog.set_config('TimeZone', 'UTC', true),"                      \
    " pg_catalog.set_config('extra_float_digits', '1', true),"              \
    " pg_catalog.set_config('quote_all_identifiers', 'off', true),"         \
    " pg_catalog.set_config('standard_conforming_strings', 'on', true),"    \
    " pg_catalog.set_config('jit', 'off', true),"                           \
    " pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true),"\
    " pg_catalog.set_config('enable_sort', 'off', true)"

/*
 * Our own transaction, pinned, in one round trip (transaction-local
 * settings end with it).  With the tables: created when missing, quietly,
 * in a transaction of their own: created in ours, they would invalidate
 * at its COMMIT the plan of the statement that follows, and the next
 * snapshot would plan it again.
 */
static const char s_begin_sql[] = "BEGIN; SELECT" S_PINS;
static const char s_begin_table_sql[] =
    "BEGIN;"
    "SELECT pg_catalog.set_config('client_min_messages', 'warning', true);"
    S_TABLE_SQL "; COMMIT; BEGIN; SELECT" S_PINS;

/*
 * In the caller's transaction: its values, then the pins, and whether the
 * table exists, in one round trip.  The subquery (kept apart by OFFSET 0)
 * produces its row before the outer target list sets anything.
 */
static const char s_pin_save_sql[] =
    "SELECT v.*, pg_catalog.to_regclass('pg_temp.flotilla_schema_snap')"
    " IS NOT NULL," S_PINS
    " FROM (SELECT pg_catalog.current_setting('search_path'),"
    " pg_catalog.current_setting('DateStyle'),"
    " pg_catalog.current_setting('IntervalStyle'),"
    " pg_catalog.current_setting('TimeZone'),"
    " pg_catalog.current_setting('extra_float_digits'),"
    " pg_catalog.current_setting('quote_all_identifiers'),"
    " pg_catalog.current_setting('standard_conforming_strings'),"
    " pg_catalog.current_setting('jit'),"
    " pg_catalog.current_setting('plan_cache_mode'),"
    " pg_catalog.current_setting('enable_sort') OFFSET 0) v";

static const char s_pin_restore_sql[] =
    "SELECT pg_catalog.set_config('search_path', $1, true),"
    " pg_catalog.set_config('DateStyle', $2, true),"
    " pg_catalog.set_config('IntervalStyle', $3, true),"
    " pg_catalog.set_config('TimeZone', $4, true),"
    " pg_catalog.set_config('extra_float_digits', $5, true),"
    " pg_catalog.set_config('quote_all_identifiers', $6, true),"
    " pg_catalog.set_config('standard_conforming_strings', $7, true),"
    " pg_catalog.set_config('jit', $8, true),"
    " pg_catalog.set_config('plan_cache_mode', $9, true),"
    " pg_catalog.set_config('enable_sort', $10, true)";

/*
 * One public call: our own transaction when the caller has none, else the
 * caller's values of the pinned settings.
 */
typedef struct {
    int own_tx;
    int have_table;
    char *saved[S_NPINS];
} s_session_t;

static int s_leave(fl_pg_t *pg, s_session_t *s, int rc, fl_error_t *err);

/* Runs one statement that returns nothing of interest. */
static int
s_exec(fl_pg_t *pg, const char *sql, int nparams, const char *const *params,
       fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query(pg, &r, sql, nparams, params, err);

    fl_pg_result_release(&r);
    return rc;
}

/*
 * Opens a transaction when the caller has none and pins the settings for
 * the rest of the transaction; with table, creates the snapshot table
 * when missing (s->have_table: it exists).  Two round trips at most, one
 * when the caller has a transaction or the table exists.  On failure
 * everything is undone.
 */
static int
s_enter(fl_pg_t *pg, s_session_t *s, int table, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = 0;

    memset(s, 0, sizeof(*s));
    if (!fl_pg_in_transaction(pg)) {
        rc = fl_pg_exec(pg, table ? s_begin_table_sql : s_begin_sql, err);
        /* A failure after BEGIN leaves our transaction to roll back. */
        s->own_tx = fl_pg_in_transaction(pg);
        s->have_table = table;
        return rc == 0 ? 0 : s_leave(pg, s, rc, err);
    }
    rc = fl_pg_query(pg, &r, s_pin_save_sql, 0, NULL, err);
    for (size_t i = 0; rc == 0 && i < S_NPINS; i++) {
        const char *v = fl_pg_value(&r, 0, i);
        s->saved[i] = fl_strdup(v ? v : "");
    }
    if (rc == 0) {
        const char *v = fl_pg_value(&r, 0, S_NPINS);
        s->have_table = v != NULL && strcmp(v, "t") == 0;
    }
    fl_pg_result_release(&r);
    if (rc == 0 && table && !s->have_table) {
        rc = fl_pg_exec(pg, S_TABLE_SQL, err);
        s->have_table = rc == 0;
    }
    return rc == 0 ? 0 : s_leave(pg, s, rc, err);
}

/*
 * Ends our transaction (COMMIT when rc is 0), which ends the pins too, or
 * gives the caller's transaction its values back.  Returns rc, or the
 * first failure of these steps.
 */
static int
s_leave(fl_pg_t *pg, s_session_t *s, int rc, fl_error_t *err)
{
    fl_error_t ignore = FL_ERROR_INIT;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[S_NPINS];

    if (s->own_tx && rc == 0) {
        rc = fl_pg_exec(pg, "COMMIT", err);
    } else if (s->own_tx) {
        /* The first error is the one to report; the rollback's is noise. */
        FL_IGNORE(fl_pg_exec(pg, "ROLLBACK", &ignore));
    } else if (rc == 0 && s->saved[0] != NULL) {
        /*
         * After a failure the caller's transaction is aborted and cannot
         * run this; its ROLLBACK ends our pins then.
         */
        for (size_t i = 0; i < S_NPINS; i++)
            params[i] = s->saved[i];
        rc = fl_pg_query(pg, &r, s_pin_restore_sql, S_NPINS, params, err);
        fl_pg_result_release(&r);
    }
    for (size_t i = 0; i < S_NPINS; i++)
        fl_free(&s->saved[i]);
    fl_error_clear(&ignore);
    return rc;
}

/* True (1) when this session has the snapshot table; negative on error. */
static int
s_have_table(fl_pg_t *pg, fl_error_t *err)
{
    char *v = NULL;
    int rc = fl_pg_query_value(pg, &v,
        "SELECT pg_catalog.to_regclass('pg_temp.flotilla_schema_snap')"
        " IS NOT NULL", 0, NULL, err);

    if (rc != 0)
        return rc;
    rc = v != NULL && strcmp(v, "t") == 0;
    free(v);
    return rc;
}

static int
s_not_taken(int gen, fl_error_t *err)
{
    int rc = FL_ERR(err, FL_ENOTFOUND, "schema snapshot %d was not taken in "
                    "this session", gen);

    fl_error_set_hint(err, "Snapshots live in a temporary table of the "
                           "connection that took them.");
    return rc;
}

/*
 * The scope of generation gen into *scope (new string), FL_ENOTFOUND when
 * it was never taken in this session.
 */
static int
s_scope(fl_pg_t *pg, int gen, char **scope, fl_error_t *err)
{
    char g[16];
    const char *params[1] = {g};
    int rc = s_have_table(pg, err);

    *scope = NULL;
    if (rc < 0)
        return rc;
    snprintf(g, sizeof(g), "%d", gen);
    if (rc == 1)
        rc = fl_pg_query_value(pg, scope, s_scope_sql, 1, params, err);
    else
        rc = FL_ENOTFOUND;
    if (rc == FL_ENOTFOUND || (rc == 0 && *scope == NULL)) {
        fl_free(scope);
        rc = s_not_taken(gen, err);
    }
    return rc;
}

/* The refusal to compare generations a and b of scopes sa and sb. */
static int
s_scopes_differ(int a, const char *sa, int b, const char *sb,
                fl_error_t *err)
{
    int rc = FL_ERR(err, FL_ECONFLICT, "schema snapshots %d and %d cannot be "
                    "compared", a, b);

    fl_error_set_detail(err, "Snapshot %d covers %s, snapshot %d covers %s "
                        "(\"*\": every managed schema).", a, sa, b, sb);
    return rc;
}

/* Checks that generations a and b exist and describe the same schemas. */
static int
s_same_scope(fl_pg_t *pg, int a, int b, fl_error_t *err)
{
    char *sa = NULL, *sb = NULL;
    int rc = s_scope(pg, a, &sa, err);

    if (rc == 0)
        rc = s_scope(pg, b, &sb, err);
    if (rc == 0 && strcmp(sa, sb) != 0)
        rc = s_scopes_differ(a, sa, b, sb, err);
    free(sa);
    free(sb);
    return rc;
}

/*
 * Runs statement name (sql, which reads the snapshot table and needs no
 * pins) in the caller's session: one round trip outside a transaction,
 * where a missing table fails only this statement and is then reported
 * as generation gen not taken; inside one, whose failure would abort the
 * caller's transaction, after asking whether the table exists.
 */
static int
s_query_snap(fl_pg_t *pg, fl_pg_result_t *r, const char *name,
             const char *sql, int nparams, const char *const *params,
             int gen, fl_error_t *err)
{
    fl_error_t e = FL_ERROR_INIT;
    int rc;

    if (fl_pg_in_transaction(pg)) {
        rc = s_have_table(pg, err);
        if (rc == 0)
            return s_not_taken(gen, err);
        if (rc < 0)
            return rc;
        return fl_pg_query_prepared(pg, r, name, sql, nparams, params, err);
    }
    rc = fl_pg_query_prepared(pg, r, name, sql, nparams, params, &e);
    if (rc == FL_EDB && strcmp(e.sqlstate, "42P01") == 0 &&
        s_have_table(pg, NULL) == 0) {
        fl_error_clear(&e);
        return s_not_taken(gen, err);
    }
    if (rc != 0 && err != NULL)
        fl_error_move(err, &e);
    fl_error_clear(&e);
    return rc;
}

/*
 * Generation $2 made the same as generation $1: its rows, signatures and
 * fingerprint replaced by copies (see fl_schema_snapshot_twin), and the
 * two a pair that differs nowhere (see "Pairs").  Run
 * pinned; reading each DELETE's count makes it run before the INSERT
 * that follows it (see S_SNAP_TAIL).
 */
static const char s_twin_sql[] =
    "WITH ds AS (DELETE FROM pg_temp.flotilla_schema_snap s"
    " WHERE s.gen = $2::pg_catalog.int4 RETURNING 1),"
    " ins AS (INSERT INTO pg_temp.flotilla_schema_snap"
    " (gen, kind, ident, def, rel)"
    " SELECT $2::pg_catalog.int4, s.kind, s.ident, s.def, s.rel"
    " FROM pg_temp.flotilla_schema_snap s WHERE s.gen = $1::pg_catalog.int4"
    " AND (SELECT pg_catalog.count(*) FROM ds) >= 0 RETURNING 1),"
    " dg AS (DELETE FROM pg_temp.flotilla_schema_sig s"
    " WHERE s.gen = $2::pg_catalog.int4 RETURNING 1),"
    " ig AS (INSERT INTO pg_temp.flotilla_schema_sig (gen, rel, sig)"
    " SELECT $2::pg_catalog.int4, s.rel, s.sig"
    " FROM pg_temp.flotilla_schema_sig s WHERE s.gen = $1::pg_catalog.int4"
    " AND (SELECT pg_catalog.count(*) FROM dg) >= 0 RETURNING 1),"
    " up AS (UPDATE pg_temp.flotilla_schema_gen g"
    " SET pair = CASE WHEN g.gen = $1::pg_catalog.int4"
    " THEN $2::pg_catalog.int4 END,"
    " differ = CASE WHEN g.gen = $1::pg_catalog.int4"
    " THEN '{}'::pg_catalog.oid[] END"
    " WHERE g.gen <> $2::pg_catalog.int4 AND (g.gen = $1::pg_catalog.int4"
    " OR g.pair = $1::pg_catalog.int4 OR g.pair = $2::pg_catalog.int4)"
    " RETURNING 1)"
    " INSERT INTO pg_temp.flotilla_schema_gen AS g"
    " (gen, fingerprint, pair, differ)"
    " SELECT $2::pg_catalog.int4, f.fingerprint, $1::pg_catalog.int4, '{}'"
    " FROM pg_temp.flotilla_schema_gen f WHERE f.gen = $1::pg_catalog.int4"
    " AND (SELECT pg_catalog.count(*) FROM ins) >= 0"
    " AND (SELECT pg_catalog.count(*) FROM ig) >= 0"
    " ON CONFLICT (gen) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
    " pair = EXCLUDED.pair, differ = EXCLUDED.differ";

/*
 * A snapshot (full) or a refresh into gen; *fp (may be NULL) its
 * fingerprint.  every: describe every kind, without asking the census.
 * twin (not 0): generation twin made the same, in the same transaction.
 */
static int
s_snapshot(fl_pg_t *pg, int gen, const char *only_schema, int full, int every,
           int twin, char **fp, fl_error_t *err)
{
    char g[16], t[16], name[48];
    const char *params[4] = {only_schema, g, full ? "t" : "f", NULL};
    const char *twin_params[2] = {g, t};
    const char *sql = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    unsigned kinds = S_ALL_KINDS;
    s_session_t s;
    int rc;

    FL_ASSERT(pg != NULL);
    if (fp != NULL)
        *fp = NULL;
    snprintf(g, sizeof(g), "%d", gen);
    if ((rc = s_enter(pg, &s, 1, err)) == 0) {
        if (!every) {
            int k;

            rc = fl_pg_query_prepared(pg, &r, "flotilla_schema_census",
                                      fl_schema_census_sql, 1, params, err);
            k = fl_schema_census_kinds(&r);
            kinds = k < 0 ? S_ALL_KINDS : (unsigned)k;
            fl_pg_result_release(&r);
        }
        sql = s_snapshot_variant(kinds, name, sizeof(name));
        if (rc == 0)
            rc = fl_pg_query_prepared(pg, &r, name, sql, 4, params, err);
        if (rc == 0 && fp != NULL && r.nrows == 1 &&
            fl_pg_value(&r, 0, 1) != NULL)
            *fp = fl_strdup(fl_pg_value(&r, 0, 1));
        fl_pg_result_release(&r);
        if (rc == 0 && twin != 0) {
            snprintf(t, sizeof(t), "%d", twin);
            rc = fl_pg_query_prepared(pg, &r, "flotilla_schema_twin",
                                      s_twin_sql, 2, twin_params, err);
            fl_pg_result_release(&r);
        }
        rc = s_leave(pg, &s, rc, err);
    }
    if (rc != 0) {
        if (fp != NULL)
            fl_free(fp);
        fl_error_prefix(err, "could not take schema snapshot %d: ", gen);
    }
    return rc;
}

int
fl_schema_snapshot(fl_pg_t *pg, int gen, const char *only_schema,
                   fl_error_t *err)
{
    return s_snapshot(pg, gen, only_schema, 1, 0, 0, NULL, err);
}

int
fl_schema_snapshot_twin(fl_pg_t *pg, int gen, int twin,
                        const char *only_schema, fl_error_t *err)
{
    FL_ASSERT(twin != 0 && twin != gen);
    return s_snapshot(pg, gen, only_schema, 1, 0, twin, NULL, err);
}

int
fl_schema_snapshot_every_kind(fl_pg_t *pg, int gen, const char *only_schema,
                              fl_error_t *err)
{
    return s_snapshot(pg, gen, only_schema, 1, 1, 0, NULL, err);
}

int
fl_schema_refresh(fl_pg_t *pg, int gen, const char *only_schema, char **fp,
                  fl_error_t *err)
{
    return s_snapshot(pg, gen, only_schema, 0, 0, 0, fp, err);
}

int
fl_schema_fingerprint(fl_pg_t *pg, int gen, char **out, fl_error_t *err)
{
    char g[16];
    const char *params[1] = {g};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    FL_ASSERT(pg != NULL && out != NULL);
    *out = NULL;
    snprintf(g, sizeof(g), "%d", gen);
    rc = s_query_snap(pg, &r, "flotilla_schema_fingerprint",
                      s_fingerprint_sql, 1, params, gen, err);
    if (rc == 0 && r.nrows == 1 && fl_pg_value(&r, 0, 0) != NULL)
        *out = fl_strdup(fl_pg_value(&r, 0, 0));
    else if (rc == 0)
        rc = s_not_taken(gen, err);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * What s_record_sql's row r says: nothing was written unless both
 * generations exist with the same scope; else *count (may be NULL) gets
 * the number of rows written.
 */
static int
s_recorded(const fl_pg_result_t *r, int gen_before, int gen_after,
           int *count, fl_error_t *err)
{
    const char *sb = NULL, *sa = NULL;

    FL_ASSERT(r->nrows == 1);
    sb = fl_pg_value(r, 0, 0);
    sa = fl_pg_value(r, 0, 1);
    if (sb == NULL)
        return s_not_taken(gen_before, err);
    if (sa == NULL)
        return s_not_taken(gen_after, err);
    if (strcmp(sb, sa) != 0)
        return s_scopes_differ(gen_before, sb, gen_after, sa, err);
    if (count != NULL && fl_pg_value(r, 0, 2) != NULL)
        *count = (int)strtol(fl_pg_value(r, 0, 2), NULL, 10);
    return 0;
}

int
fl_schema_record_changes(fl_pg_t *pg, const char *target,
                         const fl_version_t *version,
                         int gen_before, int gen_after, int *count,
                         fl_error_t *err)
{
    char v[FL_VERSION_MAX + 1], b[16], a[16];
    const char *params[4] = {v, b, a, target};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    FL_ASSERT(pg != NULL);
    if (count != NULL)
        *count = 0;
    snprintf(v, sizeof(v), "%s", version->text);
    snprintf(b, sizeof(b), "%d", gen_before);
    snprintf(a, sizeof(a), "%d", gen_after);
    rc = s_query_snap(pg, &r, "flotilla_schema_record", s_record_sql, 4,
                      params, gen_before, err);
    if (rc == 0)
        rc = s_recorded(&r, gen_before, gen_after, count, err);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * Generation GEN's fingerprint upserted as TARGET's schema_state, AFTER
 * what, where COND (SQL expressions; schema.h).
 */
#define S_STATE_UPSERT(GEN, TARGET, AFTER, COND)                            \
    "INSERT INTO flotilla.schema_state AS s"                                \
    " (target, fingerprint, format, after, recorded_at)"                    \
    " SELECT " TARGET "::pg_catalog.text," S_HEX256("g.fingerprint") ","    \
    " " S_XSTR(FL_SCHEMA_FORMAT) ", " AFTER ", pg_catalog.now()"             \
    " FROM pg_temp.flotilla_schema_gen g"                                   \
    " WHERE g.gen OPERATOR(pg_catalog.=) " GEN "::pg_catalog.int4" COND     \
    " ON CONFLICT (target) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"\
    " format = EXCLUDED.format, after = EXCLUDED.after,"                    \
    " recorded_at = EXCLUDED.recorded_at"

/*
 * Version $3's ledger row (of target $4) gets the fingerprint of
 * generation $1, and is marked recorded when generations $2 and $1 have
 * the same scope (its changes were then recorded by s_record_sql in the
 * same transaction); so does the target's schema_state.  Run pinned.
 */
static const char s_ledger_fp_sql[] =
    "WITH st AS (" S_STATE_UPSERT("$1", "$4",
    "'apply ' OPERATOR(pg_catalog.||) $3::pg_catalog.text",
    " AND" S_SCOPE_OF("$1") "OPERATOR(pg_catalog.=)" S_SCOPE_OF("$2"))
    " RETURNING 1)"
    " UPDATE flotilla.schema_migrations m SET schema_fingerprint = (SELECT"
    S_HEX256("g.fingerprint") "FROM pg_temp.flotilla_schema_gen g"
    " WHERE g.gen OPERATOR(pg_catalog.=) $1::pg_catalog.int4),"
    " schema_recorded = true, schema_format = " S_XSTR(FL_SCHEMA_FORMAT)
    " WHERE m.version OPERATOR(pg_catalog.=) $3::pg_catalog.text"
    " AND m.target OPERATOR(pg_catalog.=) $4::pg_catalog.text"
    " AND" S_SCOPE_OF("$1") "OPERATOR(pg_catalog.=)" S_SCOPE_OF("$2");

/*
 * Runs steps (BEGIN, pins, the snapshot into *snap, a record of changes
 * into *rec, ..., COMMIT) in one round trip, rolled back on failure, and
 * says what they did: *fp the fingerprint, *count the rows recorded.
 * Releases snap and rec.
 */
static int
s_record_batch(fl_pg_t *pg, fl_pg_step_t *steps, size_t nsteps, int kinds,
               fl_pg_result_t *snap, fl_pg_result_t *rec, int gen_before,
               int gen_after, char **fp, int *count, fl_error_t *err)
{
    fl_error_t ignore = FL_ERROR_INIT;
    fl_pg_result_t census = FL_PG_RESULT_INIT;
    /* steps: BEGIN, the pins, the snapshot (its first parameter the scope). */
    const fl_pg_step_t enter[] = {
        steps[0], steps[1],
        {"flotilla_schema_census", fl_schema_census_sql, 1, steps[2].params,
         &census},
    };
    char name[48];
    size_t skip = 0;
    int rc = 0;

    FL_ASSERT(pg != NULL && fp != NULL && !fl_pg_in_transaction(pg));
    FL_ASSERT(nsteps > 3 && steps[2].out == snap);
    *fp = NULL;
    if (count != NULL)
        *count = 0;
    /* Without the census's answer, it is asked first: one more round trip. */
    if (kinds < 0) {
        rc = fl_pg_batch(pg, enter, sizeof(enter) / sizeof(enter[0]), err);
        kinds = fl_schema_census_kinds(&census);
        skip = 2;
    }
    if (rc == 0) {
        steps[2].sql = s_snapshot_variant(kinds < 0 ? S_ALL_KINDS
                                                    : (unsigned)kinds,
                                          name, sizeof(name));
        steps[2].name = name;
        rc = fl_pg_batch(pg, steps + skip, nsteps - skip, err);
        steps[2].name = NULL; /* name is ours, and ends with this call */
    }
    fl_pg_result_release(&census);
    if (rc != 0 && fl_pg_in_transaction(pg))
        FL_IGNORE(fl_pg_exec(pg, "ROLLBACK", &ignore));
    /* Without the tables, no generation was ever taken here. */
    if (rc == FL_EDB && err != NULL && strcmp(err->sqlstate, "42P01") == 0) {
        fl_error_clear(err);
        rc = s_not_taken(gen_before, err);
    }
    if (rc == 0) {
        FL_ASSERT(snap->nrows == 1);
        rc = s_recorded(rec, gen_before, gen_after, count, err);
    }
    if (rc == 0)
        *fp = fl_strdup(fl_pg_value(snap, 0, 1));
    fl_pg_result_release(snap);
    fl_pg_result_release(rec);
    fl_error_clear(&ignore);
    return rc;
}

const char fl_schema_dirty_sql[] =
    "SELECT coalesce(pg_catalog.array_agg(DISTINCT coalesce(i.indrelid,"
    " x.oid))::pg_catalog.text, '{}') FROM ("
    " SELECT l.relation FROM pg_catalog.pg_locks l"
    " WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid()"
    " AND l.mode NOT IN ('AccessShareLock', 'RowShareLock',"
    " 'RowExclusiveLock')"
    " UNION ALL SELECT pg_catalog.unnest($1::pg_catalog.oid[])) x(oid)"
    " LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = x.oid";

/* Above this many bytes, a list of relations is "anything". */
#define S_DIRTY_MAX 65536

void
fl_schema_dirty_forget(fl_schema_dirty_t *d)
{
    fl_free(&d->since[0]);
    fl_free(&d->since[1]);
}

void
fl_schema_dirty_taken(fl_schema_dirty_t *d, int gen)
{
    if (gen < 1 || gen > 2)
        return;
    free(d->since[gen - 1]);
    d->since[gen - 1] = fl_strdup("{}");
}

void
fl_schema_dirty_add(fl_schema_dirty_t *d, const char *oids)
{
    size_t n = oids ? strlen(oids) : 0;

    for (int g = 0; g < 2; g++) {
        char *was = d->since[g];
        size_t m = was ? strlen(was) : 0;

        if (was == NULL)
            continue;
        /* "{a,b}" and "{c}" make "{a,b,c}"; "{}" adds nothing. */
        if (oids == NULL || n < 2 || oids[0] != '{' || oids[n - 1] != '}' ||
            m + n > S_DIRTY_MAX) {
            fl_free(&d->since[g]);
            continue;
        }
        if (n == 2)
            continue;
        d->since[g] = fl_asprintf("%.*s%s%s", (int)(m - 1), was,
                                  m > 2 ? "," : "", oids + 1);
        free(was);
    }
}

const char *
fl_schema_dirty_of(const fl_schema_dirty_t *d, int gen)
{
    return gen >= 1 && gen <= 2 ? d->since[gen - 1] : NULL;
}

int
fl_schema_record_after(fl_pg_t *pg, const char *target,
                       const fl_version_t *version, int gen_before,
                       int gen_after, const char *only_schema, int kinds,
                       const char *dirty, char **fp, int *count,
                       fl_error_t *err)
{
    char v[FL_VERSION_MAX + 1], b[16], a[16];
    const char *snap_params[4] = {only_schema, a, "f", dirty};
    const char *rec_params[4] = {v, b, a, target};
    const char *fp_params[4] = {a, b, v, target};
    fl_pg_result_t snap = FL_PG_RESULT_INIT, rec = FL_PG_RESULT_INIT;
    fl_pg_step_t steps[] = {
        {NULL, "BEGIN", 0, NULL, NULL},
        {"flotilla_schema_pins", "SELECT" S_PINS, 0, NULL, NULL},
        {NULL, NULL, 4, snap_params, &snap}, /* its variant: s_record_batch */
        {"flotilla_schema_record", s_record_sql, 4, rec_params, &rec},
        {"flotilla_schema_ledger_fp", s_ledger_fp_sql, 4, fp_params, NULL},
        {NULL, "COMMIT", 0, NULL, NULL},
    };
    int rc;

    snprintf(v, sizeof(v), "%s", version->text);
    snprintf(b, sizeof(b), "%d", gen_before);
    snprintf(a, sizeof(a), "%d", gen_after);
    rc = s_record_batch(pg, steps, sizeof(steps) / sizeof(steps[0]), kinds,
                        &snap, &rec, gen_before, gen_after, fp, count, err);
    if (rc != 0)
        fl_error_prefix(err, "could not record the schema after version "
                        "%s: ", version->text);
    return rc;
}


/*
 * Repeatable migration $1's objects (of target $4): every one whose def
 * differs between generations $2 and $3, added to those its earlier runs
 * made (never removed: a run that re-creates a view as it was changes
 * nothing in the catalog).  The scopes and the rows added, as
 * s_record_sql's.
 */
static const char s_record_repeatable_sql[] =
    "WITH sc AS MATERIALIZED (SELECT" S_SCOPE_OF("$2") "AS b,"
    S_SCOPE_OF("$3") "AS a),"
    " ok AS MATERIALIZED (SELECT FROM sc"
    "  WHERE sc.b OPERATOR(pg_catalog.=) sc.a),"
    S_ROWS_DIFFER("$2", "$3")
    " ins AS (INSERT INTO flotilla.repeatable_objects"
    "  (target, name, kind, ident)"
    "  SELECT $4::pg_catalog.text, $1::pg_catalog.text, dr.kind, dr.ident"
    "  FROM dr WHERE" S_CHANGED("dr") "ON CONFLICT DO NOTHING RETURNING 1)"
    " SELECT sc.b, sc.a, (SELECT pg_catalog.count(*) FROM ins) FROM sc";

static const char s_repeatable_fp_sql[] =
    "WITH st AS (" S_STATE_UPSERT("$1", "$3",
    "'repeatable ' OPERATOR(pg_catalog.||) $2::pg_catalog.text", "")
    " RETURNING 1)"
    " UPDATE flotilla.repeatable_migrations m SET schema_fingerprint = (SELECT"
    S_HEX256("g.fingerprint") "FROM pg_temp.flotilla_schema_gen g"
    " WHERE g.gen OPERATOR(pg_catalog.=) $1::pg_catalog.int4)"
    " WHERE m.name OPERATOR(pg_catalog.=) $2::pg_catalog.text"
    " AND m.target OPERATOR(pg_catalog.=) $3::pg_catalog.text";

int
fl_schema_record_repeatable(fl_pg_t *pg, const char *target, const char *name,
                            int gen_before, int gen_after,
                            const char *only_schema, int kinds,
                            const char *dirty, char **fp, int *count,
                            fl_error_t *err)
{
    char b[16], a[16];
    const char *snap_params[4] = {only_schema, a, "f", dirty};
    const char *rec_params[4] = {name, b, a, target};
    const char *fp_params[3] = {a, name, target};
    fl_pg_result_t snap = FL_PG_RESULT_INIT, rec = FL_PG_RESULT_INIT;
    fl_pg_step_t steps[] = {
        {NULL, "BEGIN", 0, NULL, NULL},
        {"flotilla_schema_pins", "SELECT" S_PINS, 0, NULL, NULL},
        {NULL, NULL, 4, snap_params, &snap}, /* its variant: s_record_batch */
        {"flotilla_schema_record_rep", s_record_repeatable_sql, 4, rec_params,
         &rec},
        {"flotilla_schema_rep_fp", s_repeatable_fp_sql, 3, fp_params, NULL},
        {NULL, "COMMIT", 0, NULL, NULL},
    };
    int rc;

    snprintf(b, sizeof(b), "%d", gen_before);
    snprintf(a, sizeof(a), "%d", gen_after);
    rc = s_record_batch(pg, steps, sizeof(steps) / sizeof(steps[0]), kinds,
                        &snap, &rec, gen_before, gen_after, fp, count, err);
    if (rc != 0)
        fl_error_prefix(err, "could not record the schema after repeatable "
                        "migration \"%s\": ", name);
    return rc;
}


/* ---- re-creation ---- */

/*
 * text on one line (each run of white space one space), cut after max
 * bytes at a character boundary with "..."; a new string.
 */
static char *
s_one_line(const char *text, size_t max)
{
    char *o = fl_malloc(strlen(text) + 4);
    size_t n = 0;
    int space = 0;

    for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            space = n > 0;
            continue;
        }
        if (n >= max && (*s & 0xC0) != 0x80) {
            memcpy(o + n, "...", 3);
            n += 3;
            break;
        }
        if (space)
            o[n++] = ' ';
        space = 0;
        o[n++] = (char)*s;
    }
    o[n] = '\0';
    return o;
}

/*
 * Reads one identifier as format('%I') writes it at *p: "quoted" (a quote
 * doubled inside) or bare lower-case letters, digits and underscores.
 * *out gets it unquoted (a new string); *p moves past it.  FL_EINVAL when
 * there is none.
 */
static int
s_read_ident(const char **p, char **out)
{
    const char *s = *p;
    char *o = NULL;
    size_t n = 0;

    *out = NULL;
    if (*s != '"') {
        while ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
               *s == '_')
            s++;
        if (s == *p)
            return FL_EINVAL;
        *out = fl_strndup(*p, (size_t)(s - *p));
        *p = s;
        return 0;
    }
    o = fl_malloc(strlen(s)); /* the content is shorter than its quoting */
    for (s++; *s != '\0'; s++) {
        if (*s == '"') {
            if (s[1] != '"')
                break;
            s++;
        }
        o[n++] = *s;
    }
    if (*s != '"' || n == 0) {
        free(o);
        return FL_EINVAL;
    }
    o[n] = '\0';
    *out = o;
    *p = s + 1;
    return 0;
}

/* Splits ident into exactly n dot-separated identifiers (new strings). */
static int
s_split_ident(const char *ident, char **parts, size_t n)
{
    const char *p = ident;
    size_t i;

    for (i = 0; i < n; i++)
        parts[i] = NULL;
    for (i = 0; i < n; i++) {
        if (i > 0 && *p++ != '.')
            break;
        if (s_read_ident(&p, &parts[i]) != 0)
            break;
    }
    if (i == n && *p == '\0')
        return 0;
    for (i = 0; i < n; i++)
        fl_free(&parts[i]);
    return FL_EINVAL;
}

static int
s_is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '$' ||
           (unsigned char)c >= 0x80;
}

/*
 * True when def, a constraint definition from the ledger, is one clause:
 * no ',' or ';' outside parentheses, strings and quoted names; balanced
 * parentheses; no comment, dollar quote, escape or Unicode string (none
 * of which pg_get_constraintdef writes under our settings).  Then "ALTER
 * TABLE t ADD CONSTRAINT c <def>" has one subcommand, which the statement
 * facts cannot tell: they do not list subcommands.
 */
static int
s_is_one_clause(const char *def)
{
    int depth = 0;

    for (const char *s = def; *s != '\0'; s++) {
        switch (*s) {
        case '\'':
        case '"': {
            char q = *s;

            if (s > def && (s[-1] == '&' ||
                            ((s[-1] == 'e' || s[-1] == 'E') &&
                             (s - 1 == def || !s_is_word(s[-2])))))
                return 0;
            for (s++;; s++) {
                if (*s == '\0')
                    return 0;
                if (*s == q && s[1] != q)
                    break; /* the closing quote */
                if (*s == q)
                    s++; /* a doubled quote */
            }
            break;
        }
        case '-':
            if (s[1] == '-')
                return 0;
            break;
        case '/':
            if (s[1] == '*')
                return 0;
            break;
        case '$':
        case '\\':
            return 0;
        case '(':
            depth++;
            break;
        case ')':
            if (--depth < 0)
                return 0;
            break;
        case ',':
        case ';':
            if (depth == 0)
                return 0;
            break;
        default:
            break;
        }
    }
    return depth == 0;
}

/* The "(flag) " marks in front of index, trigger and constraint defs. */
enum {
    S_F_CONSTRAINT = 1 << 0, /* index backing a constraint */
    S_F_PARTITION = 1 << 1,  /* index attached to a partitioned index */
    S_F_INVALID = 1 << 2,
    S_F_CLUSTERED = 1 << 3,
    S_F_REPLIDENT = 1 << 4,
    S_F_INHERITED = 1 << 5,  /* constraint or trigger from a parent */
    S_F_DISABLED = 1 << 6,
    S_F_REPLICA = 1 << 7,
    S_F_ALWAYS = 1 << 8
};

static const struct {
    const char *mark;
    unsigned flag;
} s_marks[] = {
    {"(constraint) ", S_F_CONSTRAINT}, {"(partition) ", S_F_PARTITION},
    {"(invalid) ", S_F_INVALID},       {"(clustered) ", S_F_CLUSTERED},
    {"(replica identity) ", S_F_REPLIDENT},
    {"(inherited) ", S_F_INHERITED},   {"(disabled) ", S_F_DISABLED},
    {"(replica) ", S_F_REPLICA},       {"(always) ", S_F_ALWAYS},
};

/* Strips the marks in front of def into *flags; returns the rest (lent). */
static const char *
s_marks_strip(const char *def, unsigned *flags)
{
    size_t i = 0;

    *flags = 0;
    while (i < sizeof(s_marks) / sizeof(s_marks[0])) {
        size_t len = strlen(s_marks[i].mark);
        if (strncmp(def, s_marks[i].mark, len) == 0) {
            *flags |= s_marks[i].flag;
            def += len;
            i = 0;
        } else {
            i++;
        }
    }
    return def;
}

static int
s_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
s_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* State shared by the steps of one fl_schema_recreate(). */
typedef struct {
    fl_pg_t *pg;
    const char *target;  /* the ledger's target: "" or the schema */
    const fl_version_t *version;
    fl_schema_note_fn note;
    void *arg;
    int count;
} s_ctx_t;

/*
 * Refuses change (kind, ident) of the ledger because of why ("its recorded
 * definition is 2 statements"), showing the recorded text in the detail.
 * Both come from the ledger: they are cut to one line each.
 */
static int
s_refuse(const s_ctx_t *c, const char *kind, const char *ident,
         const char *text, const char *why, fl_error_t *err)
{
    char *i = s_one_line(ident, 200);
    char *t = s_one_line(text, 200);

    FL_ERR(err, FL_EINVAL, "could not re-create %s %s of version %s: %s",
           kind, i, c->version->text, why);
    fl_error_set_detail(err, "Recorded: %s", t);
    fl_error_set_hint(err, "Nothing was executed.  The row in "
                           "flotilla.schema_changes is not one Flotilla "
                           "records: check who may write the flotilla "
                           "schema.");
    free(i);
    free(t);
    return FL_EINVAL;
}

/* A table a change names, as the catalog knows it. */
typedef struct {
    char *part[3];  /* schema, table, object name: unquoted, from the ident */
    char *qtable;   /* schema.table quoted from the catalog */
    char *qname;    /* part[2] quoted as pg_get_*def() quote names */
    char *owner;    /* the table's owner */
    int is_column;  /* part[2] is a column of the table */
} s_target_t;

static void
s_target_release(s_target_t *t)
{
    for (size_t i = 0; i < 3; i++)
        fl_free(&t->part[i]);
    fl_free(&t->qtable);
    fl_free(&t->qname);
    fl_free(&t->owner);
}

/*
 * Finds the table of "schema.table.name" (ident, or the column named in
 * a sequence's def) in a managed schema.  0: found; 1: no such table (the
 * change is skipped and the proof reports it); negative: refused or
 * failed.
 */
static int
s_target(const s_ctx_t *c, const char *kind, const char *ident,
         const char *name3, s_target_t *t, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = 0;

    memset(t, 0, sizeof(*t));
    if (s_split_ident(name3, t->part, 3) != 0)
        return s_refuse(c, kind, ident, name3, name3 == ident
                        ? "its identity is not schema.table.name"
                        : "its recorded column is not schema.table.column",
                        err);
    rc = fl_pg_query(c->pg, &r, s_table_of_sql, 3,
                     (const char *const *)t->part, err);
    if (rc == 0 && r.nrows == 0)
        rc = 1;
    if (rc == 0) {
        t->qtable = fl_strdup(fl_pg_value(&r, 0, 0));
        t->qname = fl_strdup(fl_pg_value(&r, 0, 1));
        t->owner = fl_strdup(fl_pg_value(&r, 0, 2));
        t->is_column = strcmp(fl_pg_value(&r, 0, 3), "t") == 0;
    }
    fl_pg_result_release(&r);
    if (rc != 0)
        s_target_release(t);
    return rc;
}

/*
 * Checks stmt, built from a recorded definition, with the parser: one
 * statement of kind want, which parses, runs in a transaction, destroys
 * nothing and works on table t (and on no other when only is set).
 */
static int
s_check_stmt(const s_ctx_t *c, const char *kind, const char *ident,
             const char *def, const char *stmt, const char *want,
             const s_target_t *t, int only, fl_error_t *err)
{
    fl_stmt_list_t l = {NULL, 0};
    const fl_stmt_t *st = NULL;
    char *why = NULL;
    int rc = 0;

    if (fl_facts_analyze(&l, stmt, 0, fl_pg_server_version(c->pg), NULL) != 0)
        why = fl_strdup("its recorded definition does not parse");
    else if (l.count != 1)
        why = fl_asprintf("its recorded definition is %zu statements",
                          l.count);
    else if ((st = &l.items[0])->parse_error)
        why = fl_asprintf("its recorded definition does not parse: %s",
                          st->error);
    else if (strcmp(st->kind, want) != 0)
        why = fl_asprintf("its recorded definition is %s, not %s", st->kind,
                          want);
    else if (st->no_transaction || st->ndestroys > 0)
        why = fl_strdup("its recorded definition is not a plain "
                        "re-creation");
    else if (st->ntables == 0 || st->tables[0].schema == NULL ||
             strcmp(st->tables[0].schema, t->part[0]) != 0 ||
             strcmp(st->tables[0].name, t->part[1]) != 0 ||
             (only && st->ntables != 1))
        why = fl_asprintf("its recorded definition is not on table %s "
                          "alone", t->qtable);
    else if (strcmp(want, "CREATE INDEX") == 0 &&
             (st->index_name == NULL ||
              strcmp(st->index_name, t->part[2]) != 0))
        why = fl_asprintf("its recorded definition does not create index "
                          "%s", t->qname);
    if (why != NULL)
        rc = s_refuse(c, kind, ident, def, why, err);
    free(why);
    fl_stmt_list_release(&l);
    return rc;
}

/*
 * One object to re-create: up to three statements, run in order, the
 * first as role when set.
 */
typedef struct {
    int group; /* execution order, see s_plan_structure() */
    char *kind;
    char *ident;
    char *stmts[3];
    char *role;
    /*
     * A foreign key: stmts[0] made NOT VALID, run when stmts[0] finds
     * rows that break the key, so that fl_keys_check_one() counts and
     * samples them (the table qualified and quoted, the key's name).
     */
    char *key_not_valid;
    char *key_table;
    char *key_name;
} s_step_t;

typedef struct {
    s_step_t *items;
    size_t count;
} s_plan_t;

static s_step_t *
s_plan_add(s_plan_t *p, int group, const char *kind, const char *ident)
{
    s_step_t *st = NULL;

    p->items = fl_reallocarray(p->items, p->count + 1, sizeof(*p->items));
    st = &p->items[p->count++];
    memset(st, 0, sizeof(*st));
    st->group = group;
    st->kind = fl_strdup(kind);
    st->ident = fl_strdup(ident);
    return st;
}

static void
s_plan_release(s_plan_t *p)
{
    for (size_t i = 0; i < p->count; i++) {
        s_step_t *st = &p->items[i];
        free(st->kind);
        free(st->ident);
        for (size_t k = 0; k < 3; k++)
            free(st->stmts[k]);
        free(st->role);
        free(st->key_not_valid);
        free(st->key_table);
        free(st->key_name);
    }
    fl_free(&p->items);
    p->count = 0;
}

/* Execution groups: what a later group needs exists by then. */
enum {
    S_G_KEY,        /* primary keys, unique and exclusion constraints */
    S_G_INDEX,      /* indexes (a foreign key may need a unique one) */
    S_G_CONSTRAINT, /* checks and foreign keys */
    S_G_TRIGGER,
    S_G_SEQUENCE,
    S_G_COUNT
};

/*
 * A constraint that is gone: ALTER TABLE ... ADD CONSTRAINT with the
 * recorded definition, if it is one clause.  Anything but a key or a
 * foreign key (a CHECK, whose expression runs while the constraint is
 * validated) runs as the table's owner, so a tampered expression gets no
 * more rights than the tenant has.  Keys and foreign keys run no user
 * expression as us: PostgreSQL builds indexes and checks references as
 * the owner itself.
 */
static int
s_plan_constraint(const s_ctx_t *c, s_plan_t *plan, const char *ident,
                  const char *before, fl_error_t *err)
{
    s_target_t t;
    s_step_t *st = NULL;
    char *stmt = NULL;
    unsigned flags = 0;
    int key = 0, rc = 0;

    (void)s_marks_strip(before, &flags);
    if (flags != 0)
        return 0; /* inherited: comes back with its parent */
    if ((rc = s_target(c, "constraint", ident, ident, &t, err)) != 0)
        return rc > 0 ? 0 : rc;
    if (!s_is_one_clause(before)) {
        rc = s_refuse(c, "constraint", ident, before,
                      "its recorded definition is not one clause", err);
        goto cleanup;
    }
    stmt = fl_asprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", t.qtable,
                       t.qname, before);
    rc = s_check_stmt(c, "constraint", ident, before, stmt, "ALTER TABLE", &t,
                      0, err);
    if (rc != 0)
        goto cleanup;
    key = s_starts(before, "PRIMARY KEY (") || s_starts(before, "UNIQUE (") ||
          s_starts(before, "EXCLUDE USING ");
    st = s_plan_add(plan, key ? S_G_KEY : S_G_CONSTRAINT, "constraint", ident);
    if (s_starts(before, "FOREIGN KEY (") && !s_ends(before, " NOT VALID")) {
        st->key_not_valid = fl_asprintf("%s NOT VALID", stmt);
        st->key_table = fl_strdup(t.qtable);
        st->key_name = fl_strdup(t.part[2]);
    }
    st->stmts[0] = stmt;
    stmt = NULL;
    if (!key && !s_starts(before, "FOREIGN KEY ("))
        st->role = fl_strdup(t.owner);
cleanup:
    free(stmt);
    s_target_release(&t);
    return rc;
}

/*
 * An index that is gone: the recorded CREATE [UNIQUE] INDEX of that name
 * on that table, then its clustered and replica identity marks.  Indexes
 * of constraints and of partitions come back with their owner.  On a
 * partitioned table pg_get_indexdef writes "ON ONLY", which would leave
 * the index invalid and its partitions without theirs: it goes.
 */
static int
s_plan_index(const s_ctx_t *c, s_plan_t *plan, const char *ident,
             const char *before, fl_error_t *err)
{
    s_target_t t;
    s_step_t *st = NULL;
    char *prefix = NULL, *stmt = NULL;
    unsigned flags = 0;
    const char *def = s_marks_strip(before, &flags);
    int rc = 0;

    if (flags & (S_F_CONSTRAINT | S_F_PARTITION | S_F_INVALID))
        return 0;
    if ((rc = s_target(c, "index", ident, ident, &t, err)) != 0)
        return rc > 0 ? 0 : rc;
    prefix = fl_asprintf("CREATE %sINDEX %s ON ",
                         s_starts(def, "CREATE UNIQUE ") ? "UNIQUE " : "",
                         t.qname);
    if (!s_starts(def, prefix)) {
        rc = s_refuse(c, "index", ident, before,
                      "its recorded definition does not create that index",
                      err);
        goto cleanup;
    }
    if (s_starts(def + strlen(prefix), "ONLY "))
        stmt = fl_asprintf("%s%s", prefix, def + strlen(prefix) + 5);
    else
        stmt = fl_strdup(def);
    rc = s_check_stmt(c, "index", ident, before, stmt, "CREATE INDEX", &t, 1,
                      err);
    if (rc == 0) {
        size_t k = 1;
        st = s_plan_add(plan, S_G_INDEX, "index", ident);
        st->stmts[0] = stmt;
        stmt = NULL;
        if (flags & S_F_CLUSTERED)
            st->stmts[k++] = fl_asprintf("ALTER TABLE %s CLUSTER ON %s",
                                         t.qtable, t.qname);
        if (flags & S_F_REPLIDENT)
            st->stmts[k++] = fl_asprintf("ALTER TABLE %s REPLICA IDENTITY "
                                         "USING INDEX %s", t.qtable, t.qname);
    }
cleanup:
    free(stmt);
    free(prefix);
    s_target_release(&t);
    return rc;
}

/* "ALTER TABLE t DISABLE TRIGGER tr" and friends for a trigger's marks. */
static char *
s_trigger_state(const s_target_t *t, unsigned flags)
{
    const char *how = "ENABLE";

    if (flags & S_F_DISABLED)
        how = "DISABLE";
    else if (flags & S_F_REPLICA)
        how = "ENABLE REPLICA";
    else if (flags & S_F_ALWAYS)
        how = "ENABLE ALWAYS";
    return fl_asprintf("ALTER TABLE %s %s TRIGGER %s", t->qtable, how,
                       t->qname);
}

/*
 * A trigger that is gone: the recorded CREATE TRIGGER of that name on
 * that table, then its enabled state.  A trigger that is there with the
 * same definition gets its state back; one with another definition is
 * left alone.
 */
static int
s_plan_trigger(const s_ctx_t *c, s_plan_t *plan, const char *ident,
               const char *before, const char *current, fl_error_t *err)
{
    s_target_t t;
    s_step_t *st = NULL;
    char *plain = NULL, *constraint = NULL;
    unsigned flags = 0, now = 0;
    const char *stmt = s_marks_strip(before, &flags);
    int rc = 0;

    if (flags & S_F_INHERITED)
        return 0;
    if (current != NULL && strcmp(s_marks_strip(current, &now), stmt) != 0)
        return 0;
    if ((rc = s_target(c, "trigger", ident, ident, &t, err)) != 0)
        return rc > 0 ? 0 : rc;
    if (current != NULL) {
        st = s_plan_add(plan, S_G_TRIGGER, "trigger", ident);
        st->stmts[0] = s_trigger_state(&t, flags);
        s_target_release(&t);
        return 0;
    }
    plain = fl_asprintf("CREATE TRIGGER %s ", t.qname);
    constraint = fl_asprintf("CREATE CONSTRAINT TRIGGER %s ", t.qname);
    if (!s_starts(stmt, plain) && !s_starts(stmt, constraint))
        rc = s_refuse(c, "trigger", ident, before,
                      "its recorded definition does not create that "
                      "trigger", err);
    else
        rc = s_check_stmt(c, "trigger", ident, before, stmt, "CREATE TRIGGER",
                          &t, 1, err);
    if (rc == 0) {
        st = s_plan_add(plan, S_G_TRIGGER, "trigger", ident);
        st->stmts[0] = fl_strdup(stmt);
        if (flags & (S_F_DISABLED | S_F_REPLICA | S_F_ALWAYS))
            st->stmts[1] = s_trigger_state(&t, flags);
    }
    free(plain);
    free(constraint);
    s_target_release(&t);
    return rc;
}

/*
 * What a sequence's def says it belongs to: the column after "owned by "
 * (lent), NULL for none; *identity set for an identity sequence.
 */
static const char *
s_owned_by(const char *def, int *identity)
{
    const char *p = strstr(def, " owned by ");

    *identity = strstr(def, " identity of ") != NULL;
    return p != NULL ? p + strlen(" owned by ") : NULL;
}

/*
 * A sequence whose OWNED BY differs: ALTER SEQUENCE ... OWNED BY the
 * recorded column (found in the catalog) or NONE.  Identity sequences
 * belong to their column and cannot be moved.
 */
static int
s_plan_sequence(const s_ctx_t *c, s_plan_t *plan, const char *ident,
                const char *before, const char *current, const char *target,
                fl_error_t *err)
{
    s_target_t t;
    s_step_t *st = NULL;
    int was_identity = 0, is_identity = 0, rc = 0;
    const char *was = s_owned_by(before, &was_identity);
    const char *is = NULL;

    if (current == NULL || target == NULL)
        return 0; /* the sequence itself is gone */
    is = s_owned_by(current, &is_identity);
    if (was_identity || is_identity ||
        (was != NULL && is != NULL && strcmp(was, is) == 0) ||
        (was == NULL && is == NULL))
        return 0;
    if (was == NULL) {
        st = s_plan_add(plan, S_G_SEQUENCE, "sequence", ident);
        st->stmts[0] = fl_asprintf("ALTER SEQUENCE %s OWNED BY NONE", target);
        return 0;
    }
    if ((rc = s_target(c, "sequence", ident, was, &t, err)) != 0)
        return rc > 0 ? 0 : rc;
    if (t.is_column) {
        st = s_plan_add(plan, S_G_SEQUENCE, "sequence", ident);
        st->stmts[0] = fl_asprintf("ALTER SEQUENCE %s OWNED BY %s.%s", target,
                                   t.qtable, t.qname);
    }
    s_target_release(&t);
    return 0;
}

/* Privileges a normalised acl may name; bit i of a mask is entry i. */
static const char *const s_privileges[] = {
    "SELECT", "INSERT", "UPDATE",  "DELETE",  "TRUNCATE",  "REFERENCES",
    "TRIGGER", "EXECUTE", "USAGE", "CREATE", "CONNECT", "TEMPORARY",
    "MAINTAIN"};
#define S_NPRIVS (sizeof(s_privileges) / sizeof(s_privileges[0]))

typedef struct {
    char *grantee;      /* unquoted; NULL for PUBLIC */
    unsigned privs;     /* privileges held */
    unsigned grantable; /* of those, held with grant option */
} s_grant_t;

typedef struct {
    s_grant_t *items;
    size_t count;
} s_acl_t;

static void
s_acl_release(s_acl_t *a)
{
    for (size_t i = 0; i < a->count; i++)
        free(a->items[i].grantee);
    fl_free(&a->items);
    a->count = 0;
}

/* Reads "PRIV,PRIV*" at *p into g; FL_EINVAL on an unknown privilege. */
static int
s_acl_privileges(const char **p, s_grant_t *g)
{
    const char *s = *p;

    do {
        size_t n = 0, i = 0;

        while (s[n] >= 'A' && s[n] <= 'Z')
            n++;
        for (i = 0; i < S_NPRIVS; i++)
            if (strlen(s_privileges[i]) == n &&
                strncmp(s, s_privileges[i], n) == 0)
                break;
        if (i == S_NPRIVS || (g->privs & (1u << i)))
            return FL_EINVAL;
        g->privs |= 1u << i;
        s += n;
        if (*s == '*') {
            g->grantable |= 1u << i;
            s++;
        }
    } while (*s == ',' && *++s != '\0');
    *p = s;
    return 0;
}

/*
 * Parses a normalised acl, "app=SELECT,UPDATE* PUBLIC=USAGE" (S_SELECT_SQL
 * writes it), into out.  FL_EINVAL when def is not one.
 */
static int
s_acl_parse(const char *def, s_acl_t *out)
{
    const char *p = def;

    memset(out, 0, sizeof(*out));
    while (*p != '\0') {
        s_grant_t *g = NULL;

        if (out->count > 0 && *p++ != ' ')
            goto bad;
        out->items = fl_reallocarray(out->items, out->count + 1,
                                     sizeof(*out->items));
        g = &out->items[out->count++];
        memset(g, 0, sizeof(*g));
        if (s_starts(p, "PUBLIC="))
            p += strlen("PUBLIC");
        else if (s_read_ident(&p, &g->grantee) != 0)
            goto bad;
        if (*p++ != '=' || s_acl_privileges(&p, g) != 0)
            goto bad;
        for (size_t i = 0; i + 1 < out->count; i++) {
            const char *o = out->items[i].grantee;
            if ((o == NULL) == (g->grantee == NULL) &&
                (o == NULL || strcmp(o, g->grantee) == 0))
                goto bad;
        }
    }
    return 0;
bad:
    s_acl_release(out);
    return FL_EINVAL;
}

static const s_grant_t *
s_acl_find(const s_acl_t *a, const char *grantee)
{
    for (size_t i = 0; i < a->count; i++) {
        const char *g = a->items[i].grantee;
        if ((g == NULL && grantee == NULL) ||
            (g != NULL && grantee != NULL && strcmp(g, grantee) == 0))
            return &a->items[i];
    }
    return NULL;
}

/* Runs one generated statement of the change (kind, ident). */
static int
s_run(const s_ctx_t *c, const char *kind, const char *ident, const char *sql,
      fl_error_t *err)
{
    int rc = s_exec(c->pg, sql, 0, NULL, err);

    if (rc != 0)
        fl_error_prefix(err, "could not re-create %s %s: ", kind, ident);
    return rc;
}

/*
 * For one grantee holding g now and o wanted (o may be NULL): the REVOKEs
 * of what g holds beyond o.  Or, when granting, g wanted and o held: the
 * GRANTs of what o lacks.  One statement per privilege, as a column's
 * target ("(c) ON TABLE t") takes one.
 */
static int
s_acl_grantee(const s_ctx_t *c, const char *ident, const char *gtarget,
              const s_grant_t *g, const s_grant_t *o, int granting,
              fl_error_t *err)
{
    unsigned oprivs = o ? o->privs : 0, ogrant = o ? o->grantable : 0;
    char *who = g->grantee ? fl_pg_quote_ident(c->pg, g->grantee)
                           : fl_strdup("PUBLIC");
    int rc = 0;

    for (size_t k = 0; k < S_NPRIVS && rc == 0; k++) {
        unsigned bit = 1u << k;
        const char *priv = s_privileges[k];
        char *sql = NULL;

        if (!(g->privs & bit))
            continue;
        if (granting && (!(oprivs & bit) ||
                         ((g->grantable & bit) && !(ogrant & bit))))
            sql = fl_asprintf("GRANT %s %s TO %s%s", priv, gtarget, who,
                              (g->grantable & bit) ? " WITH GRANT OPTION"
                                                   : "");
        else if (!granting && !(oprivs & bit))
            sql = fl_asprintf("REVOKE %s %s FROM %s", priv, gtarget, who);
        else if (!granting && (g->grantable & bit) && !(ogrant & bit))
            sql = fl_asprintf("REVOKE GRANT OPTION FOR %s %s FROM %s", priv,
                              gtarget, who);
        if (sql != NULL)
            rc = s_run(c, "acl", ident, sql, err);
        free(sql);
    }
    free(who);
    return rc;
}

/* Moves the grants on gtarget from have to want: revokes, then grants. */
static int
s_acl_apply(const s_ctx_t *c, const char *ident, const char *gtarget,
            const s_acl_t *want, const s_acl_t *have, fl_error_t *err)
{
    int rc = 0;

    for (size_t i = 0; i < have->count && rc == 0; i++)
        rc = s_acl_grantee(c, ident, gtarget, &have->items[i],
                           s_acl_find(want, have->items[i].grantee), 0, err);
    for (size_t i = 0; i < want->count && rc == 0; i++)
        rc = s_acl_grantee(c, ident, gtarget, &want->items[i],
                           s_acl_find(have, want->items[i].grantee), 1, err);
    return rc;
}

/* A change of the kinds S_CANDIDATES asks for, as s_each() hands it. */
typedef struct {
    const char *kind;
    const char *ident;
    const char *before;  /* the recorded def before the migration */
    const char *current; /* the live def, NULL when there is none */
    const char *target;  /* the live target, NULL when the object is gone */
} s_change_t;

typedef int (*s_change_fn)(s_ctx_t *c, const s_change_t *ch, void *arg,
                           fl_error_t *err);

/*
 * Calls fn for each change of c->version of the kinds in kinds (an array
 * literal, "{owner}") whose object is not as recorded; stops at the first
 * failure.
 */
static int
s_each(s_ctx_t *c, const char *kinds, s_change_fn fn, void *arg,
       fl_error_t *err)
{
    char v[FL_VERSION_MAX + 1];
    const char *params[4] = {*c->target ? c->target : NULL, v, kinds,
                             c->target};
    const char *any_params[3] = {v, c->target, kinds};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char *any = NULL;
    int rc = 0;

    snprintf(v, sizeof(v), "%s", c->version->text);
    rc = fl_pg_query_value(c->pg, &any, s_any_candidate_sql, 3, any_params,
                           err);
    if (rc == 0 && any != NULL && strcmp(any, "t") == 0)
        rc = fl_pg_query(c->pg, &r, s_candidates_sql, 4, params, err);
    free(any);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        s_change_t ch = {fl_pg_value(&r, i, 0), fl_pg_value(&r, i, 1),
                         fl_pg_value(&r, i, 2), fl_pg_value(&r, i, 3),
                         fl_pg_value(&r, i, 4)};
        rc = fn(c, &ch, arg, err);
    }
    fl_pg_result_release(&r);
    return rc;
}

static void
s_noted(s_ctx_t *c, const char *kind, const char *ident)
{
    c->count++;
    if (c->note != NULL)
        c->note(kind, ident, c->arg);
}

/* Adds the re-creation of an index, constraint, trigger or OWNED BY. */
static int
s_plan_change(s_ctx_t *c, const s_change_t *ch, void *arg, fl_error_t *err)
{
    s_plan_t *plan = arg;

    if (strcmp(ch->kind, "constraint") == 0)
        return ch->current != NULL
                   ? 0 : s_plan_constraint(c, plan, ch->ident, ch->before, err);
    if (strcmp(ch->kind, "index") == 0)
        return ch->current != NULL
                   ? 0 : s_plan_index(c, plan, ch->ident, ch->before, err);
    if (strcmp(ch->kind, "trigger") == 0)
        return s_plan_trigger(c, plan, ch->ident, ch->before, ch->current,
                              err);
    return s_plan_sequence(c, plan, ch->ident, ch->before, ch->current,
                           ch->target, err);
}

/*
 * A foreign key re-created over rows the application changed since the
 * migration may not hold: PostgreSQL's error names one key, no count, and
 * says nothing of what to do.  Behind a savepoint; when its rows break
 * it (23503), the key is made NOT VALID instead and the rows that break
 * it are counted and sampled (keys.h), which refuses the rollback.
 */
static int
s_run_key(const s_ctx_t *c, const s_step_t *st, fl_error_t *err)
{
    int rc = s_exec(c->pg, "SAVEPOINT flotilla_key", 0, NULL, err);

    if (rc == 0)
        rc = s_run(c, st->kind, st->ident, st->stmts[0], err);
    if (rc == 0)
        return s_exec(c->pg, "RELEASE SAVEPOINT flotilla_key", 0, NULL, err);
    if (strcmp(err->sqlstate, "23503") == 0) {
        fl_error_t why = FL_ERROR_INIT;

        if (s_exec(c->pg, "ROLLBACK TO SAVEPOINT flotilla_key", 0, NULL,
                   &why) == 0 &&
            s_run(c, st->kind, st->ident, st->key_not_valid, &why) == 0 &&
            fl_keys_check_one(c->pg, st->key_table, st->key_name, &why) != 0 &&
            why.code == FL_EFAIL) {
            fl_error_move(err, &why); /* the refusal: count and sample */
            return err->code;
        }
        fl_error_clear(&why); /* else PostgreSQL's error, as it was */
    }
    return rc;
}

/* Runs one step; its first statement as st->role when that is set. */
static int
s_step_run(s_ctx_t *c, const s_step_t *st, fl_error_t *err)
{
    char *saved = NULL;
    int rc = 0;

    if (st->role != NULL) {
        const char *params[1] = {st->role};
        rc = fl_pg_query_value(c->pg, &saved,
                               "SELECT pg_catalog.current_setting('role')",
                               0, NULL, err);
        if (rc == 0)
            rc = s_exec(c->pg, "SELECT pg_catalog.set_config('role', $1,"
                        " true)", 1, params, err);
    }
    for (size_t k = 0; k < 3 && rc == 0 && st->stmts[k] != NULL; k++) {
        if (k == 0 && st->key_not_valid != NULL) {
            rc = s_run_key(c, st, err);
            continue;
        }
        rc = s_run(c, st->kind, st->ident, st->stmts[k], err);
        if (k == 0 && rc == 0 && saved != NULL) {
            const char *params[1] = {saved};
            rc = s_exec(c->pg, "SELECT pg_catalog.set_config('role', $1,"
                        " true)", 1, params, err);
        }
    }
    if (rc == 0)
        s_noted(c, st->kind, st->ident);
    free(saved);
    return rc;
}

/* The role a recorded owner def names (a new string), or a refusal. */
static int
s_owner_read(const s_ctx_t *c, const char *ident, const char *def,
             char **role, fl_error_t *err)
{
    const char *p = def;

    if (s_read_ident(&p, role) == 0 && *p == '\0')
        return 0;
    fl_free(role);
    return s_refuse(c, "owner", ident, def,
                    "its recorded owner is not a role name", err);
}

/* The grants a recorded acl def lists, or a refusal. */
static int
s_acl_read(const s_ctx_t *c, const char *ident, const char *def,
           s_acl_t *out, fl_error_t *err)
{
    if (s_acl_parse(def, out) == 0)
        return 0;
    return s_refuse(c, "acl", ident, def,
                    "its recorded grants are not a list of grants", err);
}

static int
s_owner_change(s_ctx_t *c, const s_change_t *ch, void *arg, fl_error_t *err)
{
    char *role = NULL, *q = NULL, *sql = NULL;
    int rc = 0;

    (void)arg;
    if (ch->target == NULL)
        return 0;
    if ((rc = s_owner_read(c, ch->ident, ch->before, &role, err)) != 0)
        return rc;
    q = fl_pg_quote_ident(c->pg, role);
    sql = fl_asprintf("ALTER %s OWNER TO %s", ch->target, q);
    if ((rc = s_run(c, "owner", ch->ident, sql, err)) == 0)
        s_noted(c, "owner", ch->ident);
    free(sql);
    free(q);
    free(role);
    return rc;
}

static int
s_acl_change(s_ctx_t *c, const s_change_t *ch, void *arg, fl_error_t *err)
{
    s_acl_t want, have;
    int rc = 0;

    (void)arg;
    if (ch->target == NULL)
        return 0;
    if ((rc = s_acl_read(c, ch->ident, ch->before, &want, err)) != 0)
        return rc;
    /* The live grants, which S_SELECT_SQL wrote. */
    if (s_acl_parse(ch->current ? ch->current : "", &have) != 0) {
        s_acl_release(&want);
        return FL_ERR(err, FL_EFAIL, "could not read the grants of %s",
                      ch->ident);
    }
    if ((rc = s_acl_apply(c, ch->ident, ch->target, &want, &have, err)) == 0)
        s_noted(c, "acl", ch->ident);
    s_acl_release(&want);
    s_acl_release(&have);
    return rc;
}

static int
s_comment_change(s_ctx_t *c, const s_change_t *ch, void *arg,
                 fl_error_t *err)
{
    char *lit = NULL, *sql = NULL;
    int rc = 0;

    (void)arg;
    if (ch->target == NULL)
        return 0;
    lit = fl_pg_quote_literal(c->pg, ch->before);
    sql = fl_asprintf("COMMENT ON %s IS %s", ch->target, lit);
    if ((rc = s_run(c, "comment", ch->ident, sql, err)) == 0)
        s_noted(c, "comment", ch->ident);
    free(sql);
    free(lit);
    return rc;
}

/*
 * Parses every recorded owner and grant of the version, so that a
 * tampered one is refused before the first statement runs.
 */
static int
s_check_recorded(s_ctx_t *c, fl_error_t *err)
{
    char v[FL_VERSION_MAX + 1];
    const char *params[2] = {v, c->target};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = 0;

    snprintf(v, sizeof(v), "%s", c->version->text);
    rc = fl_pg_query(c->pg, &r, s_recorded_sql, 2, params, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        const char *ident = fl_pg_value(&r, i, 1);
        const char *def = fl_pg_value(&r, i, 2);
        char *role = NULL;
        s_acl_t acl;

        if (strcmp(fl_pg_value(&r, i, 0), "owner") == 0) {
            rc = s_owner_read(c, ident, def, &role, err);
            free(role);
        } else if ((rc = s_acl_read(c, ident, def, &acl, err)) == 0) {
            s_acl_release(&acl);
        }
    }
    fl_pg_result_release(&r);
    return rc;
}

static int
s_recreate(s_ctx_t *c, fl_error_t *err)
{
    s_plan_t plan = {NULL, 0};
    int rc = s_check_recorded(c, err);

    if (rc == 0)
        rc = s_each(c, "{constraint,index,trigger,sequence}", s_plan_change,
                    &plan, err);
    for (int g = 0; g < S_G_COUNT && rc == 0; g++)
        for (size_t i = 0; i < plan.count && rc == 0; i++)
            if (plan.items[i].group == g)
                rc = s_step_run(c, &plan.items[i], err);
    s_plan_release(&plan);
    /* Owners first: changing one rewrites the grants. */
    if (rc == 0)
        rc = s_each(c, "{owner}", s_owner_change, NULL, err);
    if (rc == 0)
        rc = s_each(c, "{acl}", s_acl_change, NULL, err);
    if (rc == 0)
        rc = s_each(c, "{comment}", s_comment_change, NULL, err);
    return rc;
}

int
fl_schema_recreate(fl_pg_t *pg, const char *target,
                   const fl_version_t *version,
                   fl_schema_note_fn note, void *arg, int *count,
                   fl_error_t *err)
{
    s_ctx_t c = {pg, target, version, note, arg, 0};
    s_session_t s;
    int rc;

    FL_ASSERT(pg != NULL);
    if (count != NULL)
        *count = 0;
    if ((rc = s_enter(pg, &s, 0, err)) != 0)
        return rc;
    rc = s_recreate(&c, err);
    rc = s_leave(pg, &s, rc, err);
    if (rc == 0 && count != NULL)
        *count = c.count;
    return rc;
}

/* ---- proof ---- */

int
fl_schema_prove(fl_pg_t *pg, const char *target,
                const fl_version_t *version,
                int gen_before_down, int gen_now, int format,
                fl_schema_diff_list_t *out, fl_error_t *err)
{
    char v[FL_VERSION_MAX + 1], b[16], n[16];
    const char *params[5] = {v, b, n, target,
                             format >= 2 ? "{}" : S_DBO_KINDS};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    s_session_t s;
    int rc;

    FL_ASSERT(pg != NULL && out != NULL);
    out->items = NULL;
    out->count = 0;
    snprintf(v, sizeof(v), "%s", version->text);
    snprintf(b, sizeof(b), "%d", gen_before_down);
    snprintf(n, sizeof(n), "%d", gen_now);
    if ((rc = s_enter(pg, &s, 0, err)) != 0)
        return rc;
    rc = s_same_scope(pg, gen_before_down, gen_now, err);
    if (rc == 0)
        rc = fl_pg_query(pg, &r, s_prove_sql, 5, params, err);
    rc = s_leave(pg, &s, rc, err);
    if (rc == 0 && r.nrows > 0) {
        out->items = fl_calloc(r.nrows, sizeof(*out->items));
        out->count = r.nrows;
        for (size_t i = 0; i < r.nrows; i++) {
            fl_schema_diff_t *d = &out->items[i];
            d->kind = fl_strdup_or_null(fl_pg_value(&r, i, 0));
            d->ident = fl_strdup_or_null(fl_pg_value(&r, i, 1));
            d->expected = fl_strdup_or_null(fl_pg_value(&r, i, 2));
            d->actual = fl_strdup_or_null(fl_pg_value(&r, i, 3));
        }
    }
    fl_pg_result_release(&r);
    return rc;
}

void
fl_schema_diff_list_release(fl_schema_diff_list_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].kind);
        free(l->items[i].ident);
        free(l->items[i].expected);
        free(l->items[i].actual);
    }
    fl_free(&l->items);
    l->count = 0;
}

#define S_DESCRIBE_LINES 50
#define S_DESCRIBE_BYTES 120

char *
fl_schema_diff_describe(const fl_schema_diff_list_t *l)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; l != NULL && i < l->count; i++) {
        const fl_schema_diff_t *d = &l->items[i];
        char *ident = s_one_line(d->ident, 2 * S_DESCRIBE_BYTES);

        if (i == S_DESCRIBE_LINES) {
            fl_buf_addf(&b, "... and %zu more\n", l->count - i);
            free(ident);
            break;
        }
        if (d->expected == NULL) {
            fl_buf_addf(&b, "%s %s: unexpected\n", d->kind, ident);
        } else if (d->actual == NULL) {
            fl_buf_addf(&b, "%s %s: missing\n", d->kind, ident);
        } else {
            char *e = s_one_line(d->expected, S_DESCRIBE_BYTES);
            char *a = s_one_line(d->actual, S_DESCRIBE_BYTES);
            fl_buf_addf(&b, "%s %s: differs: expected %s, found %s\n",
                          d->kind, ident, e, a);
            free(e);
            free(a);
        }
        free(ident);
    }
    if (b.len > 0)
        b.data[--b.len] = '\0'; /* no final newline */
    return fl_buf_detach(&b);
}

/* ---- the schema as flotilla left it (schema.h) ---------------------- */

static const char s_state_record_sql[] =
    S_STATE_UPSERT("$1", "$2", "$3::pg_catalog.text", "");

int
fl_schema_state_record(fl_pg_t *pg, const char *target, int gen,
                       const char *after, fl_error_t *err)
{
    char g[16];
    const char *params[3] = {g, target, after};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    FL_ASSERT(pg != NULL && target != NULL && after != NULL);
    snprintf(g, sizeof(g), "%d", gen);
    rc = s_query_snap(pg, &r, "flotilla_schema_state_record",
                      s_state_record_sql, 3, params, gen, err);
    fl_pg_result_release(&r);
    return rc;
}

static const char s_state_check_sql[] =
    "SELECT s.format, s.fingerprint OPERATOR(pg_catalog.<>) (SELECT"
    S_HEX256("g.fingerprint") "FROM pg_temp.flotilla_schema_gen g"
    " WHERE g.gen OPERATOR(pg_catalog.=) $2::pg_catalog.int4), s.after,"
    " " FL_PG_TIME_TEXT("s.recorded_at")
    " FROM flotilla.schema_state s"
    " WHERE s.target OPERATOR(pg_catalog.=) $1::pg_catalog.text";

int
fl_schema_state_check(fl_pg_t *pg, const char *target, int gen,
                      fl_schema_state_t *out, fl_error_t *err)
{
    char g[16];
    const char *params[2] = {target, g};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    char *have = NULL;

    FL_ASSERT(pg != NULL && target != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    snprintf(g, sizeof(g), "%d", gen);
    /* A ledger older than version 10 has no state to compare with. */
    rc = fl_pg_query_value(pg, &have, "SELECT pg_catalog.to_regclass("
                           "'flotilla.schema_state') IS NOT NULL", 0, NULL,
                           err);
    if (rc != 0 || have == NULL || strcmp(have, "t") != 0) {
        free(have);
        return rc;
    }
    free(have);
    rc = s_query_snap(pg, &r, "flotilla_schema_state_check",
                      s_state_check_sql, 2, params, gen, err);
    if (rc == 0 && r.nrows == 1 && fl_pg_value(&r, 0, 1) != NULL &&
        strtol(fl_pg_value(&r, 0, 0), NULL, 10) == FL_SCHEMA_FORMAT) {
        out->known = 1;
        out->changed = strcmp(fl_pg_value(&r, 0, 1), "t") == 0;
        out->after = fl_strdup_or_null(fl_pg_value(&r, 0, 2));
        out->recorded_at = fl_strdup_or_null(fl_pg_value(&r, 0, 3));
    }
    fl_pg_result_release(&r);
    return rc;
}

char *
fl_schema_state_text(const fl_schema_state_t *st)
{
    if (st == NULL || !st->known || !st->changed)
        return NULL;
    return fl_asprintf("the schema differs from the one flotilla left after "
                       "%s at %s: it was changed outside flotilla since (or "
                       "by a migration without a transaction that failed in "
                       "part)", st->after ? st->after : "?",
                       st->recorded_at ? st->recorded_at : "?");
}

void
fl_schema_state_release(fl_schema_state_t *st)
{
    if (st == NULL)
        return;
    fl_free(&st->after);
    fl_free(&st->recorded_at);
    st->known = st->changed = 0;
}
