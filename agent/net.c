/*
 * net.c - the catalog picture the before-commit net compares: every user
 * table and sequence with what it takes to tell that the transaction
 * destroyed data in it.
 *
 * A snapshot lists, per relation of the managed schemas (tables,
 * partitioned tables, sequences; not flotilla's own schemas, not
 * temporary ones, not materialized views, whose data is derived): its
 * OID, kind, relfilenode (a TRUNCATE or a rewrite gives it a new one),
 * how many attribute numbers it has used (relnatts: a column added later
 * gets a higher number), schema and name, the rows this transaction
 * inserted, updated and deleted in it so far (pg_stat_get_xact_*: they
 * count the work of rolled-back subtransactions too, so the pipeline
 * compares differences between two snapshots of the same run), and for a
 * sequence its position.
 *
 * It is taken twice per migration, so it is kept to what pg_class and
 * the backend's own counters hold: one prepared query, no per-table
 * subquery.  A sequence's position is read apart: reading it locks the
 * sequence (ROW EXCLUSIVE) until the end of the transaction, so read in
 * the migration's transaction it locked every sequence of the schema for
 * the whole migration, and filled the server's lock table, which every
 * other session shares, on a schema of 30,000 sequences ("out of shared
 * memory").  Before the migration the positions are read outside its
 * transaction, 1,000 sequences a transaction (fl__net_positions); after
 * it, only the relations the transaction holds a lock on are read again
 * (fl__net_after): PostgreSQL locks every relation whose rows, storage,
 * columns or position a statement changes (nextval and setval too, until
 * the end of the transaction), and one no lock is held on is as it was.
 * Columns are looked at through their catalog rows instead: a
 * pg_attribute row this transaction wrote (its xmin is ours, or newer)
 * with an attribute number the table already had is a column the
 * migration dropped, retyped or renamed (fl__net_touched_columns), and
 * the names and types of one table's columns are fetched when a backup
 * needs them (fl__net_columns).  The rows come back sorted by OID and
 * fl__net_find() bisects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"

/* A lock of lock alias l this session holds, in the current database. */
#define S_MINE(l)                                                           \
    " " l ".granted AND " l ".pid = pg_catalog.pg_backend_pid()"            \
    " AND " l ".database = (SELECT d.oid FROM pg_catalog.pg_database d"     \
    "  WHERE d.datname = pg_catalog.current_database()) "

/* The relations (c) of the net, of schema n ($1: the scope, see below). */
#define S_NET_FROM                                                          \
    " FROM pg_catalog.pg_class c"                                           \
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"             \
    " WHERE n.nspname NOT IN"                                               \
    "  ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')" \
    "  AND n.nspname !~ '^pg_(toast|temp)'"                                 \
    "  AND ($1 OPERATOR(pg_catalog.=) '' OR n.nspname OPERATOR(pg_catalog.=)" \
    "   ANY (ARRAY[$1, 'public']::pg_catalog.name[]))"

/* The relation oids this session holds a lock on. */
#define S_LOCKED                                                            \
    "SELECT l.relation FROM pg_catalog.pg_locks l"                          \
    " WHERE l.locktype = 'relation' AND" S_MINE("l")

/* A sequence's position, when the role may read it; locks the sequence. */
#define S_SEQ_POS                                                           \
    " CASE WHEN c.relkind = 'S' AND pg_catalog.has_sequence_privilege(c.oid," \
    "   'SELECT,USAGE') THEN pg_catalog.pg_sequence_last_value(c.oid) END"

/* Before: no position, no lock (fl__net_positions reads them). */
static const char s_snapshot_sql[] =
    "SELECT c.oid, c.relkind, c.relfilenode, c.relnatts, n.nspname,"
    " c.relname,"
    " pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid),"
    " pg_catalog.pg_stat_get_xact_tuples_updated(c.oid),"
    " pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid), NULL"
    S_NET_FROM " AND c.relkind IN ('r', 'p', 'S') ORDER BY c.oid";

/*
 * After: every relation this transaction holds a lock on, with the
 * snapshot's columns when it is one of the net's (NULL: not one, or
 * dropped), positions too.  Each is looked up by its oid, and only those
 * are read: a sequence's position is read under the lock already held.
 */
static const char s_after_sql[] =
    "WITH lk AS MATERIALIZED (" S_LOCKED " GROUP BY l.relation)"
    " SELECT lk.relation, c.relkind, c.relfilenode, c.relnatts, c.nspname,"
    " c.relname,"
    " pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid),"
    " pg_catalog.pg_stat_get_xact_tuples_updated(c.oid),"
    " pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid), " S_SEQ_POS
    " FROM lk LEFT JOIN LATERAL (SELECT c.oid, c.relkind, c.relfilenode,"
    "  c.relnatts, n.nspname, c.relname" S_NET_FROM
    "  AND c.relkind IN ('r', 'p', 'S') AND c.oid = lk.relation) c ON true"
    " ORDER BY lk.relation";

/* How many positions a transaction of fl__net_positions reads. */
#define S_POSITIONS_BATCH 1000
#define S_STR(x) #x
#define S_XSTR(x) S_STR(x)

/* The positions of the next S_POSITIONS_BATCH sequences after oid $2. */
static const char s_positions_sql[] =
    "SELECT s.oid, pg_catalog.pg_sequence_last_value(s.oid)"
    " FROM (SELECT c.oid" S_NET_FROM " AND c.relkind = 'S'"
    "  AND c.oid OPERATOR(pg_catalog.>) $2::pg_catalog.oid"
    "  AND CASE WHEN c.relkind = 'S' THEN" /* it raises on anything else */
    "  pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE') END"
    "  ORDER BY c.oid LIMIT " S_XSTR(S_POSITIONS_BATCH) ") s ORDER BY s.oid";

/*
 * Attributes whose catalog row was written since this transaction began
 * (age <= 0: ours, or committed by someone after we began, which only
 * makes the net more careful).  Columns dropped keep their row, marked.
 * Only those of relations made after initdb (FirstNormalObjectId: a
 * migration cannot change the system catalogs' columns), read through
 * pg_attribute's index: a scan of every row cost 1.6 ms a migration on a
 * schema of 50 tables, against 0.3.
 */
static const char s_touched_sql[] =
    "SELECT a.attrelid, a.attnum, a.attisdropped FROM pg_catalog.pg_attribute a"
    " WHERE a.attrelid >= 16384 AND a.attnum > 0"
    " AND pg_catalog.age(a.xmin) <= 0";

/*
 * The relations (c, in schema n) this session holds a lock on that writes
 * take (ROW EXCLUSIVE or stronger), in the current database.
 */
#define S_WRITE_LOCKS                                                       \
    " FROM pg_catalog.pg_locks l"                                           \
    " JOIN pg_catalog.pg_class c ON c.oid = l.relation"                     \
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"             \
    " WHERE l.locktype = 'relation' AND" S_MINE("l")                        \
    " AND l.mode NOT IN ('AccessShareLock', 'RowShareLock')"

/*
 * Flotilla's own tables the transaction wrote, which no migration may
 * (they live in the target, and the migration runs as their owner): a
 * lock that writes take (ROW EXCLUSIVE or stronger) on a table of schema
 * flotilla, or on a backup copy in flotilla_backup that an earlier
 * transaction made (its pg_class row is not this transaction's).  Taken
 * after the migration's statements and before flotilla writes its ledger
 * row; the backups' own rows (flotilla.backups, sequence_backups) are
 * written by flotilla in the same transaction and are not checked.  A
 * table dropped, renamed or moved out of schema flotilla (by its name,
 * or its schema's) leaves no lock on a table of schema flotilla: $1
 * lists the tables schema flotilla held when the run began
 * (fl__own_tables), and each no longer found there is named too.
 */
const char fl__net_own_sql[] =
    "SELECT (SELECT pg_catalog.string_agg(DISTINCT o.name, ', '"
    " ORDER BY o.name)"
    " FROM (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name"
    S_WRITE_LOCKS
    " AND c.relkind IN ('r', 'p')"
    " AND ((n.nspname = 'flotilla'"
    "  AND c.relname NOT IN ('backups', 'sequence_backups'))"
    "  OR (n.nspname = 'flotilla_backup'"
    "  AND pg_catalog.age(c.xmin) OPERATOR(pg_catalog.>) 0))"
    " UNION ALL SELECT pg_catalog.format('flotilla.%I (dropped, renamed or"
    " moved)', t.t) FROM pg_catalog.unnest($1::pg_catalog.text[]) t(t)"
    " WHERE pg_catalog.to_regclass(pg_catalog.format('flotilla.%I', t.t))"
    " IS NULL) o),"
    " (SELECT pg_catalog.string_agg(DISTINCT f.name, ', ' ORDER BY f.name)"
    " FROM (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name"
    S_WRITE_LOCKS " AND c.relkind = 'f'"
    /* One this transaction made is locked by its making: only a writer's
     * ROW EXCLUSIVE says its rows were written (TRUNCATE of it is not
     * told apart from its making: a limit). */
    " AND (pg_catalog.age(c.xmin) OPERATOR(pg_catalog.>) 0 OR l.mode"
    " OPERATOR(pg_catalog.=) 'RowExclusiveLock')) f),"
    " (SELECT CASE WHEN x.d + x.p > 0 THEN pg_catalog.format("
    " '%s unlinked, %s of their pages rewritten or removed', x.d, x.p) END"
    " FROM (SELECT pg_catalog.pg_stat_get_xact_tuples_deleted("
    " 'pg_catalog.pg_largeobject_metadata'::pg_catalog.regclass) AS d,"
    " pg_catalog.pg_stat_get_xact_tuples_updated("
    " 'pg_catalog.pg_largeobject'::pg_catalog.regclass)"
    " OPERATOR(pg_catalog.+) pg_catalog.pg_stat_get_xact_tuples_deleted("
    " 'pg_catalog.pg_largeobject'::pg_catalog.regclass) AS p) x),"
    /* The counts above and the net's are kept only with track_counts. */
    " NOT pg_catalog.current_setting('track_counts')::pg_catalog.bool";

static uint32_t
s_u32(const char *s)
{
    return s ? (uint32_t)strtoul(s, NULL, 10) : 0;
}

/* The rows of s_snapshot_sql (or s_after_sql: not those of no kind). */
static void
s_snapshot_read(const fl_pg_result_t *rr, fl_net_snap_t *out)
{
    const fl_pg_result_t r = *rr;

    out->rels = fl_calloc(r.nrows ? r.nrows : 1, sizeof(fl_net_rel_t));
    out->n = 0;
    for (size_t i = 0; i < r.nrows; i++) {
        fl_net_rel_t *rel = &out->rels[out->n];
        const char *kind = fl_pg_value(&r, i, 1);

        if (kind == NULL)
            continue;
        out->n++;
        rel->oid = s_u32(fl_pg_value(&r, i, 0));
        rel->relkind = kind[0];
        rel->relfilenode = s_u32(fl_pg_value(&r, i, 2));
        rel->natts = (int)strtol(fl_pg_value(&r, i, 3), NULL, 10);
        rel->schema = fl_strdup_or_null(fl_pg_value(&r, i, 4));
        rel->name = fl_strdup_or_null(fl_pg_value(&r, i, 5));
        rel->n_ins = strtoll(fl_pg_value(&r, i, 6), NULL, 10);
        rel->n_upd = strtoll(fl_pg_value(&r, i, 7), NULL, 10);
        rel->n_del = strtoll(fl_pg_value(&r, i, 8), NULL, 10);
        rel->seq_last = fl_strdup_or_null(fl_pg_value(&r, i, 9));
    }
}

/* Sets the seq_last of snap's sequences from pos (NULL: not in pos). */
static void
s_positions_apply(fl_net_snap_t *snap, const fl_net_positions_t *pos)
{
    size_t j = 0;

    /* Both sorted by oid. */
    for (size_t i = 0; pos != NULL && i < snap->n; i++) {
        fl_net_rel_t *rel = &snap->rels[i];

        if (rel->relkind != 'S')
            continue;
        while (j < pos->n && pos->v[j].oid < rel->oid)
            j++;
        fl_free(&rel->seq_last);
        if (j < pos->n && pos->v[j].oid == rel->oid)
            rel->seq_last = fl_strdup_or_null(pos->v[j].last);
    }
}

int
fl__net_snapshot(fl_pg_t *pg, const char *scope,
                 const fl_net_positions_t *pos, fl_net_snap_t *out,
                 fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[1] = {scope ? scope : ""};
    int rc;

    memset(out, 0, sizeof(*out));
    /* Prepared once per connection: planning it costs more than running it. */
    rc = fl_pg_query_prepared(pg, &r, "flotilla_net_snapshot", s_snapshot_sql,
                              1, params, err);
    if (rc == 0) {
        s_snapshot_read(&r, out);
        s_positions_apply(out, pos);
    }
    fl_pg_result_release(&r);
    return rc;
}

/* The rows of s_touched_sql into out. */
static void
s_touched_read(const fl_pg_result_t *rr, fl_net_touched_t *out)
{
    const fl_pg_result_t r = *rr;

    out->items = fl_calloc(r.nrows + 1, sizeof(*out->items));
    out->n = r.nrows;
    for (size_t i = 0; i < r.nrows; i++) {
        out->items[i].oid = s_u32(fl_pg_value(&r, i, 0));
        out->items[i].attnum = (int)strtol(fl_pg_value(&r, i, 1), NULL, 10);
        out->items[i].dropped = strcmp(fl_pg_value(&r, i, 2), "t") == 0;
    }
}

int
fl__net_begin(fl_pg_t *pg, const char *lt, const char *st, const char *scope,
              const fl_net_positions_t *pos, fl_net_snap_t *out,
              fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *timeouts[2] = {lt, st};
    const char *params[1] = {scope ? scope : ""};
    const fl_pg_step_t steps[4] = {
        {NULL, "BEGIN", 0, NULL, NULL},
        {NULL, "SAVEPOINT flotilla_run", 0, NULL, NULL},
        {"flotilla_net_timeouts",
         "SELECT pg_catalog.set_config('lock_timeout', $1, true),"
         " pg_catalog.set_config('statement_timeout', $2, true)",
         2, timeouts, NULL},
        {"flotilla_net_snapshot", s_snapshot_sql, 1, params, &r},
    };
    int rc;

    memset(out, 0, sizeof(*out));
    rc = fl_pg_batch(pg, steps, 4, err);
    if (rc == 0) {
        s_snapshot_read(&r, out);
        s_positions_apply(out, pos);
    }
    fl_pg_result_release(&r);
    return rc;
}

int
fl__net_touched_columns(fl_pg_t *pg, fl_net_touched_t *out, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = fl_pg_query_prepared(pg, &r, "flotilla_net_touched", s_touched_sql, 0,
                              NULL, err);
    if (rc == 0)
        s_touched_read(&r, out);
    fl_pg_result_release(&r);
    return rc;
}

/* dst: a copy of src's snapshot fields (not its columns). */
static void
s_rel_copy(fl_net_rel_t *dst, const fl_net_rel_t *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->oid = src->oid;
    dst->relkind = src->relkind;
    dst->relfilenode = src->relfilenode;
    dst->natts = src->natts;
    dst->schema = fl_strdup_or_null(src->schema);
    dst->name = fl_strdup_or_null(src->name);
    dst->n_ins = src->n_ins;
    dst->n_upd = src->n_upd;
    dst->n_del = src->n_del;
    dst->seq_last = fl_strdup_or_null(src->seq_last);
}

static int
s_rel_cmp(const void *a, const void *b)
{
    uint32_t x = ((const fl_net_rel_t *)a)->oid;
    uint32_t y = ((const fl_net_rel_t *)b)->oid;

    return x < y ? -1 : x > y;
}

/* True when sorted oids[0..n) holds oid. */
static int
s_oid_in(const uint32_t *oids, size_t n, uint32_t oid)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (oids[mid] == oid)
            return 1;
        if (oids[mid] < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/*
 * post: the rows of s_after_sql (r: every relation locked; those of the
 * net as they are now) and, for every relation of pre no lock is held on,
 * pre's own row.  A relation of pre that is locked and has no row of the
 * net was dropped.
 */
static void
s_after_read(const fl_pg_result_t *r, const fl_net_snap_t *pre,
             fl_net_snap_t *post)
{
    uint32_t *oids = fl_calloc(r->nrows + 1, sizeof(uint32_t));
    fl_net_snap_t now;
    size_t n = 0;

    for (size_t i = 0; i < r->nrows; i++) /* sorted by the statement */
        oids[i] = s_u32(fl_pg_value(r, i, 0));
    s_snapshot_read(r, &now);
    post->rels = fl_calloc(now.n + pre->n + 1, sizeof(fl_net_rel_t));
    for (size_t i = 0; i < now.n; i++)
        post->rels[n++] = now.rels[i]; /* moved */
    for (size_t i = 0; i < pre->n; i++)
        if (!s_oid_in(oids, r->nrows, pre->rels[i].oid))
            s_rel_copy(&post->rels[n++], &pre->rels[i]);
    post->n = n;
    qsort(post->rels, n, sizeof(fl_net_rel_t), s_rel_cmp);
    free(now.rels);
    free(oids);
}

int
fl__net_after(fl_pg_t *pg, fl_session_t *session, const char *scope,
              const char *own_tables, const fl_net_snap_t *pre,
              fl_net_snap_t *post, fl_net_touched_t *touched,
              fl_error_t *err)
{
    fl_pg_result_t r0 = FL_PG_RESULT_INIT, r1 = FL_PG_RESULT_INIT,
                   r2 = FL_PG_RESULT_INIT, r3 = FL_PG_RESULT_INIT;
    const char *params[1] = {scope ? scope : ""};
    const char *own[1] = {own_tables ? own_tables : "{}"};
    fl_pg_step_t steps[4];
    size_t n = fl__session_leave_step(session, fl_pg_in_transaction(pg),
                                      &steps[0], &r0);
    size_t leave = n;
    int rc;

    steps[n++] = (fl_pg_step_t){"flotilla_net_after", s_after_sql, 1,
                                params, &r1};
    steps[n++] = (fl_pg_step_t){"flotilla_net_touched", s_touched_sql, 0,
                                NULL, &r2};
    steps[n++] = (fl_pg_step_t){"flotilla_net_own", fl__net_own_sql, 1, own,
                                &r3};
    memset(post, 0, sizeof(*post));
    memset(touched, 0, sizeof(*touched));
    rc = fl_pg_batch(pg, steps, n, err);
    if (rc == 0) {
        if (leave)
            fl__session_left(session, &r0);
        s_after_read(&r1, pre, post);
        s_touched_read(&r2, touched);
        touched->own = fl_strdup_or_null(r3.nrows == 1 ? fl_pg_value(&r3, 0, 0)
                                                       : NULL);
        touched->foreign = fl_strdup_or_null(r3.nrows == 1
                                             ? fl_pg_value(&r3, 0, 1) : NULL);
        touched->lo = fl_strdup_or_null(r3.nrows == 1 ? fl_pg_value(&r3, 0, 2)
                                                      : NULL);
        touched->blind = r3.nrows == 1 && fl_pg_value(&r3, 0, 3) != NULL &&
                         strcmp(fl_pg_value(&r3, 0, 3), "t") == 0;
    }
    fl_pg_result_release(&r0);
    fl_pg_result_release(&r1);
    fl_pg_result_release(&r2);
    fl_pg_result_release(&r3);
    return rc;
}

int
fl__net_positions(fl_pg_t *pg, const char *scope, fl_net_positions_t *out,
                  fl_error_t *err)
{
    char after[16] = "0";
    const char *params[2] = {scope ? scope : "", after};
    size_t cap = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    for (;;) {
        fl_pg_result_t r = FL_PG_RESULT_INIT;

        rc = fl_pg_query_prepared(pg, &r, "flotilla_net_positions",
                                  s_positions_sql, 2, params, err);
        if (rc == 0 && out->n + r.nrows > cap) {
            cap = (out->n + r.nrows) * 2;
            out->v = fl_realloc(out->v, cap * sizeof(*out->v));
        }
        for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
            out->v[out->n].oid = s_u32(fl_pg_value(&r, i, 0));
            out->v[out->n].last = fl_strdup_or_null(fl_pg_value(&r, i, 1));
            out->n++;
        }
        if (rc == 0 && r.nrows > 0)
            snprintf(after, sizeof(after), "%u", out->v[out->n - 1].oid);
        if (rc != 0 || r.nrows < S_POSITIONS_BATCH) {
            fl_pg_result_release(&r);
            break;
        }
        fl_pg_result_release(&r);
    }
    if (rc != 0) {
        fl__net_positions_release(out);
        fl_error_prefix(err, "could not read the positions of the "
                        "sequences before the migration: ");
    }
    return rc;
}

void
fl__net_positions_release(fl_net_positions_t *pos)
{
    for (size_t i = 0; i < pos->n; i++)
        free(pos->v[i].last);
    fl_free(&pos->v);
    pos->n = 0;
}

void
fl__net_touched_release(fl_net_touched_t *t)
{
    fl_free(&t->items);
    fl_free(&t->own);
    fl_free(&t->foreign);
    fl_free(&t->lo);
    t->n = 0;
}

int
fl__net_lost_column(const fl_net_touched_t *t, const fl_net_rel_t *before)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->items[i].oid == before->oid && t->items[i].dropped &&
            t->items[i].attnum <= before->natts)
            return 1;
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
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    json_t *a = NULL, *v = NULL;
    size_t i;
    int rc;

    snprintf(o, sizeof(o), "%u", rel->oid);
    for (size_t j = 0; j < rel->ncols; j++)
        free(rel->cols[j].name);
    fl_free(&rel->cols);
    rel->ncols = 0;
    rc = fl_pg_query(pg, &r,
        "SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attnum,"
        " a.atttypid::pg_catalog.int8, a.atttypmod, a.attname,"
        " a.attgenerated <> '', pg_catalog.age(a.xmin) <= 0)"
        " ORDER BY a.attnum) FILTER (WHERE NOT a.attisdropped),"
        " pg_catalog.min(a.attnum) FILTER (WHERE a.attisdropped"
        " AND pg_catalog.age(a.xmin) <= 0)"
        " FROM pg_catalog.pg_attribute a"
        " WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0", 1, p, err);
    if (rc == 0 && fl_pg_value(&r, 0, 0))
        a = json_loads(fl_pg_value(&r, 0, 0), 0, NULL);
    rel->dropped_min = rc == 0 && fl_pg_value(&r, 0, 1)
        ? (int)strtol(fl_pg_value(&r, 0, 1), NULL, 10) : 0;
    fl_pg_result_release(&r);
    if (!json_is_array(a)) {
        json_decref(a);
        return rc;
    }
    rel->cols = fl_calloc(json_array_size(a) + 1, sizeof(fl_net_col_t));
    json_array_foreach(a, i, v) {
        fl_net_col_t *c = &rel->cols[rel->ncols++];
        const char *name = json_string_value(json_array_get(v, 3));
        c->attnum = (int)json_integer_value(json_array_get(v, 0));
        c->typid = (uint32_t)json_integer_value(json_array_get(v, 1));
        c->typmod = (int)json_integer_value(json_array_get(v, 2));
        c->name = fl_strdup(name ? name : "");
        c->generated = json_is_true(json_array_get(v, 4));
        c->touched = json_is_true(json_array_get(v, 5));
    }
    json_decref(a);
    return 0;
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

/*
 * Those of S_OBJECT_CLASSES whose objects all depend on something (their
 * schema, function, type or wrapper: a pg_depend row as the dependent);
 * schemas, publications and foreign-data wrappers may not.
 */
#define S_DEPENDING_CLASSES                                                 \
    "'pg_catalog.pg_proc', 'pg_catalog.pg_type', 'pg_catalog.pg_operator'," \
    " 'pg_catalog.pg_opclass', 'pg_catalog.pg_opfamily',"                   \
    " 'pg_catalog.pg_collation', 'pg_catalog.pg_conversion',"               \
    " 'pg_catalog.pg_ts_config', 'pg_catalog.pg_ts_dict',"                  \
    " 'pg_catalog.pg_ts_parser', 'pg_catalog.pg_ts_template',"              \
    " 'pg_catalog.pg_statistic_ext', 'pg_catalog.pg_extension',"            \
    " 'pg_catalog.pg_event_trigger', 'pg_catalog.pg_foreign_server',"       \
    " 'pg_catalog.pg_language', 'pg_catalog.pg_cast'"

/*
 * The catalogs of the objects other than relations whose drop
 * fl__net_outside looks for: those that live in a schema, a schema, and
 * those of the whole database, which are no tenant's.  Each drop takes an
 * ACCESS EXCLUSIVE lock on the object (also one a cascade reaches), which
 * lasts until the transaction ends.
 */
#define S_OBJECT_CLASSES                                                    \
    " ARRAY['pg_catalog.pg_namespace', 'pg_catalog.pg_publication',"        \
    " 'pg_catalog.pg_foreign_data_wrapper', 'pg_catalog.pg_largeobject', "  \
    S_DEPENDING_CLASSES "]::pg_catalog.regclass[]::pg_catalog.oid[] "

/* The highest OID of a catalog, from its OID index. */
#define S_MAX_OID(cat) " (SELECT pg_catalog.max(x.oid) FROM pg_catalog." cat " x)"

/*
 * What a schema target's transaction changed outside its scope (its
 * schema and public, which the snapshots cover): every relation of
 * another schema this backend holds a lock on that writes take
 * (RowExclusiveLock or stronger), with the rows this transaction updated
 * and deleted in it and whether a lock that only a change of structure
 * or storage takes is among them (ALTER, TRUNCATE, CREATE INDEX, a
 * relation created there, REFRESH).  Locks last until the transaction
 * ends, also those a DO block, a function, a trigger or a cascade took;
 * a savepoint rolled back releases its own.  And the relations it
 * dropped (an ACCESS EXCLUSIVE lock on an OID pg_class no longer has)
 * that existed before the migration ($2: no higher OID was in pg_class
 * then) outside the scope ($3: what it held then, with the TOAST tables
 * and their indexes, and this session's temporary relations).  And so the
 * other objects it dropped (S_OBJECT_CLASSES, named by class and OID, the
 * seventh column): a lock on an object its catalog no longer describes,
 * that existed before ($2 is the highest OID of those catalogs too) and
 * was not the scope's ($3 holds its objects' OIDs too).
 */
static const char s_outside_sql[] =
    "SELECT n.nspname, c.relname,"
    " pg_catalog.pg_stat_get_xact_tuples_updated(c.oid),"
    " pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid),"
    " pg_catalog.bool_or(l.mode <> 'RowExclusiveLock'), NULL::pg_catalog.oid,"
    " NULL::pg_catalog.oid"
    S_WRITE_LOCKS
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'flotilla',"
    "  'flotilla_backup', 'public')"
    " AND n.nspname OPERATOR(pg_catalog.<>) $1"
    " AND n.nspname !~ '^pg_(toast|temp)'"
    " GROUP BY n.nspname, c.relname, c.oid"
    " UNION ALL"
    " SELECT DISTINCT NULL, NULL, 0, 0, true, l.relation, NULL::pg_catalog.oid"
    " FROM pg_catalog.pg_locks l"
    " WHERE l.locktype = 'relation' AND" S_MINE("l")
    " AND l.mode = 'AccessExclusiveLock'"
    " AND l.relation OPERATOR(pg_catalog.<=) $2::pg_catalog.oid"
    " AND l.relation OPERATOR(pg_catalog.<>) ALL ($3::pg_catalog.oid[])"
    " AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c"
    "  WHERE c.oid = l.relation)"
    " UNION ALL"
    " SELECT DISTINCT NULL, NULL, 0, 0, true, l.objid, l.classid"
    " FROM pg_catalog.pg_locks l"
    " WHERE l.locktype = 'object' AND" S_MINE("l")
    " AND l.mode = 'AccessExclusiveLock' AND l.objsubid = 0"
    " AND l.objid OPERATOR(pg_catalog.<=) $2::pg_catalog.oid"
    " AND l.objid OPERATOR(pg_catalog.<>) ALL ($3::pg_catalog.oid[])"
    /* Quals are reordered by cost: only those objects' locks are
     * described (an advisory lock's classid is half its key). */
    " AND CASE WHEN l.locktype = 'object' AND l.classid = ANY ("
    S_OBJECT_CLASSES ") THEN pg_catalog.pg_describe_object(l.classid,"
    " l.objid, 0) IS NULL END"
    " ORDER BY 1, 2, 7, 6";

/*
 * What fl__net_outside compares with, before the migration's first
 * statement.  First the highest OID of pg_class and the catalogs of
 * S_OBJECT_CLASSES (an object made later has a higher one, until the OID
 * counter wraps around): of most of them through pg_depend's index on
 * the dependent object, every object of those catalogs depending on
 * something (its schema, its function, its type, its wrapper), which
 * also has the statement planned once a connection (it has no parameter)
 * and cheaply (21 aggregates planned each took 2 ms on a new connection).
 */
static const char s_outside_oids_sql[] =
    "SELECT GREATEST(" S_MAX_OID("pg_class") "," S_MAX_OID("pg_namespace") ","
    S_MAX_OID("pg_publication") "," S_MAX_OID("pg_foreign_data_wrapper") ","
    S_MAX_OID("pg_largeobject_metadata") ","
    " (SELECT pg_catalog.max(m.objid) FROM pg_catalog.unnest(ARRAY["
    S_DEPENDING_CLASSES "]::pg_catalog.regclass[]::pg_catalog.oid[]) c(id),"
    " LATERAL (SELECT d.objid FROM pg_catalog.pg_depend d"
    " WHERE d.classid = c.id ORDER BY d.objid DESC LIMIT 1) m))"
    "::pg_catalog.text";

/*
 * Then, as one array (an OID names one object in all the catalogs until
 * the counter wraps around too), the scope's: the OIDs of its relations
 * of every kind, their TOAST tables and those tables' indexes, this
 * session's temporary relations, the schemas, the objects in them
 * (pg_depend's index on the schema: their dependency on it, but not
 * extensions, which are the database's), the relations' row types, and
 * what is part of those types (an array type, a range's constructors and
 * its cast to its multirange).
 */
static const char s_outside_before_sql[] =
    "WITH ns AS MATERIALIZED (SELECT n.oid FROM pg_catalog.pg_namespace n"
    " WHERE n.nspname OPERATOR(pg_catalog.=) ANY"
    "  (ARRAY[$1, 'public']::pg_catalog.name[])"
    " OR n.oid = pg_catalog.pg_my_temp_schema()),"
    " r AS MATERIALIZED (SELECT c.oid, c.reltoastrelid, c.reltype"
    " FROM pg_catalog.pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)),"
    " o AS MATERIALIZED (SELECT d.objid FROM pg_catalog.pg_depend d"
    " WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass"
    " AND d.refobjid = ANY (ARRAY(SELECT oid FROM ns)) AND d.refobjsubid = 0"
    " AND d.deptype = 'n' AND d.classid <> ALL (ARRAY['pg_catalog.pg_class',"
    " 'pg_catalog.pg_extension']::pg_catalog.regclass[]::pg_catalog.oid[])"
    " UNION ALL SELECT r.reltype FROM r WHERE r.reltype <> 0),"
    " f(oid) AS (SELECT ns.oid FROM ns UNION ALL SELECT o.objid FROM o"
    " UNION ALL SELECT d.objid FROM pg_catalog.pg_depend d"
    "  WHERE d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass"
    "  AND d.refobjid = ANY (ARRAY(SELECT o.objid FROM o)) AND d.deptype = 'i'"
    " UNION ALL SELECT x.oid FROM r,"
    " LATERAL (SELECT r.oid UNION ALL SELECT r.reltoastrelid"
    "  WHERE r.reltoastrelid <> 0 UNION ALL SELECT i.indexrelid"
    "  FROM pg_catalog.pg_index i WHERE r.reltoastrelid <> 0"
    "  AND i.indrelid = r.reltoastrelid) x(oid))"
    " SELECT coalesce(pg_catalog.array_agg(f.oid)::pg_catalog.text, '{}')"
    " FROM f";

int
fl__net_outside_before(fl_pg_t *pg, const char *scope, char *before[2],
                       fl_error_t *err)
{
    const char *params[1] = {scope};
    fl_pg_result_t r0 = FL_PG_RESULT_INIT, r1 = FL_PG_RESULT_INIT;
    fl_pg_step_t steps[2] = {
        {"flotilla_net_outside_oids", s_outside_oids_sql, 0, NULL, &r0},
        {"flotilla_net_outside_before", s_outside_before_sql, 1, params, &r1}};
    int rc = fl_pg_batch(pg, steps, 2, err);

    if (rc == 0) {
        free(before[0]);
        free(before[1]);
        before[0] = fl_strdup(r0.nrows == 1 && fl_pg_value(&r0, 0, 0)
                                  ? fl_pg_value(&r0, 0, 0) : "0");
        before[1] = fl_strdup(r1.nrows == 1 && fl_pg_value(&r1, 0, 0)
                                  ? fl_pg_value(&r1, 0, 0) : "{}");
    }
    fl_pg_result_release(&r0);
    fl_pg_result_release(&r1);
    return rc;
}

/*
 * The names of what the migration dropped that existed before it,
 * outside the scope: relations of OIDs rels, other objects of classes
 * and OIDs objs ("{...}" arrays each, or NULL).  Its work is undone first
 * (to savepoint, taken before its first statement), which brings them
 * back.
 */
static int
s_dropped_names(fl_pg_t *pg, const char *scope, const char *savepoint,
                const char *rels, const char *const objs[2], fl_buf_t *out,
                int *count, fl_error_t *err)
{
    const char *params[2] = {rels, scope};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_execf(pg, err, "ROLLBACK TO SAVEPOINT %s", savepoint);

    if (rc == 0 && rels)
        rc = fl_pg_query(pg, &r,
            "SELECT n.nspname, c.relname, n.nspname = 'pg_toast'"
            " OR c.relkind IN ('i', 'I') AS part"
            " FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.oid = ANY ($1::pg_catalog.oid[])"
            " AND n.nspname OPERATOR(pg_catalog.<>) ALL"
            "  (ARRAY[$2, 'public']::pg_catalog.name[])"
            " ORDER BY 3, 1, 2", 2, params, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        /* An index or TOAST table goes with its table, named first. */
        if (i > 0 && strcmp(fl_pg_value(&r, i, 2), "t") == 0)
            break;
        fl_buf_addf(out, "%s%s.%s: dropped", (*count)++ ? "; " : "",
                    fl_pg_value(&r, i, 0), fl_pg_value(&r, i, 1));
    }
    if (rc == 0 && rels && r.nrows == 0)
        /* Not there before the savepoint: made and dropped by the
         * migration, which cannot be told apart without running it
         * again (the OIDs wrapped around since the newest relation). */
        fl_buf_addf(out, "%srelations this migration dropped (OIDs %s) "
                    "could not be told apart from another schema's",
                    (*count)++ ? "; " : "", rels);
    fl_pg_result_release(&r);
    if (rc == 0 && objs[0]) {
        /*
         * Each is named, whatever its schema: one of the scope's here
         * would be a kind the list before missed, and the migration is
         * undone already.
         */
        rc = fl_pg_query(pg, &r,
            "SELECT pg_catalog.concat(i.type, ' ', i.identity),"
            " i.identity IS NOT NULL"
            " FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]),"
            "  pg_catalog.unnest($2::pg_catalog.oid[])) x(c, o),"
            " LATERAL pg_catalog.pg_identify_object(x.c, x.o, 0) i"
            " ORDER BY 2 DESC, 1", 2, objs, err);
        for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
            if (strcmp(fl_pg_value(&r, i, 1), "t") != 0) {
                fl_buf_addf(out, "%sobjects this migration dropped (OIDs "
                            "%s) could not be told apart from another "
                            "schema's", (*count)++ ? "; " : "", objs[1]);
                break;
            }
            fl_buf_addf(out, "%s%s: dropped", (*count)++ ? "; " : "",
                        fl_pg_value(&r, i, 0));
        }
        fl_pg_result_release(&r);
    }
    return rc;
}

/*
 * A catalog row (alias a) that may be this transaction's: its xmin no
 * older than the transaction's own id (age() counts from it; a
 * subtransaction's is newer), which every old row fails cheaply; the rest
 * are told apart by pg_xact_status below.
 */
#define S_OURS_MAYBE(a)                                                     \
    " pg_catalog.age(" a ".xmin) OPERATOR(pg_catalog.<=) 0 "

/*
 * Catalog rows this transaction wrote (made or changed) for objects
 * outside the scope, which no lock on a relation shows: a GRANT on a
 * table or a schema (not a column's: pg_attribute is too large to read
 * for each migration), a schema or type renamed, an enum's value
 * renamed or added, a function made or replaced, default privileges, a
 * schema made.  A row is this transaction's when it is visible and its
 * xmin is in progress (no other transaction's uncommitted row is visible):
 * xmin, 32 bits, is taken as the transaction id that many after this
 * transaction's own (its subtransactions come after it); an older one is
 * not this transaction's.  Relations locked above ROW EXCLUSIVE are named
 * by the locks already; TOAST, the session's temporary schemas and
 * flotilla's own are left out.
 */
#define S_CATALOG_HEAD                                                      \
    "WITH me AS MATERIALIZED (SELECT pg_catalog.pg_current_xact_id()"       \
    " ::pg_catalog.text::pg_catalog.numeric AS x8),"                        \
    " skip AS MATERIALIZED (SELECT n.oid FROM pg_catalog.pg_namespace n"    \
    "  WHERE n.nspname OPERATOR(pg_catalog.=) ANY (ARRAY[$1, 'public',"     \
    "  'flotilla', 'flotilla_backup', 'pg_toast']::pg_catalog.name[])"      \
    "  OR n.oid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()"      \
    "  OR pg_catalog.starts_with(n.nspname::pg_catalog.text, 'pg_temp_')"  \
    "  OR pg_catalog.starts_with(n.nspname::pg_catalog.text,"              \
    "  'pg_toast_temp_')),"                                                 \
    " cls AS MATERIALIZED (SELECT c.oid, c.relname, c.relnamespace, c.xmin" \
    "  FROM pg_catalog.pg_class c WHERE " S_OURS_MAYBE("c") "),"            \
    " typ AS MATERIALIZED (SELECT t.typname, t.typnamespace, t.typrelid,"   \
    "  t.xmin FROM pg_catalog.pg_type t WHERE " S_OURS_MAYBE("t") "),"      \
    " enm AS MATERIALIZED (SELECT e.enumtypid, e.xmin"                      \
    "  FROM pg_catalog.pg_enum e WHERE " S_OURS_MAYBE("e") "),"             \
    " prc AS MATERIALIZED (SELECT p.proname, p.pronamespace, p.xmin"        \
    "  FROM pg_catalog.pg_proc p WHERE " S_OURS_MAYBE("p") "),"             \
    " w(what, x) AS ("                                                      \
    "  SELECT 'schema ' OPERATOR(pg_catalog.||) n.nspname, n.xmin"          \
    "  FROM pg_catalog.pg_namespace n WHERE n.oid NOT IN (SELECT oid FROM skip)" \
    "  UNION ALL SELECT n.nspname OPERATOR(pg_catalog.||) '.'"              \
    "  OPERATOR(pg_catalog.||) c.relname, c.xmin FROM cls c"                \
    "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=)"      \
    "  c.relnamespace WHERE c.relnamespace NOT IN (SELECT oid FROM skip)"   \
    "  AND NOT EXISTS (SELECT FROM pg_catalog.pg_locks l"                   \
    "   WHERE l.locktype OPERATOR(pg_catalog.=) 'relation'"                 \
    "   AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()"       \
    "   AND l.relation OPERATOR(pg_catalog.=) c.oid"                        \
    "   AND l.mode OPERATOR(pg_catalog.<>) ALL ('{AccessShareLock,"         \
    "RowShareLock,RowExclusiveLock}'::pg_catalog.text[]))"                  \
    "  UNION ALL SELECT 'type ' OPERATOR(pg_catalog.||) n.nspname"          \
    "  OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) t.typname, t.xmin" \
    "  FROM typ t JOIN pg_catalog.pg_namespace n"                           \
    "  ON n.oid OPERATOR(pg_catalog.=) t.typnamespace"                      \
    "  WHERE t.typnamespace NOT IN (SELECT oid FROM skip)"                  \
    "  AND t.typrelid OPERATOR(pg_catalog.=) 0"                             \
    "  UNION ALL SELECT 'type ' OPERATOR(pg_catalog.||) n.nspname"          \
    "  OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) t.typname"       \
    "  OPERATOR(pg_catalog.||) ' (its values)', e.xmin"                     \
    "  FROM enm e JOIN pg_catalog.pg_type t"                                \
    "  ON t.oid OPERATOR(pg_catalog.=) e.enumtypid"                         \
    "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=)"      \
    "  t.typnamespace WHERE t.typnamespace NOT IN (SELECT oid FROM skip)"   \
    "  UNION ALL SELECT 'function ' OPERATOR(pg_catalog.||) n.nspname"      \
    "  OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) p.proname, p.xmin" \
    "  FROM prc p JOIN pg_catalog.pg_namespace n"                           \
    "  ON n.oid OPERATOR(pg_catalog.=) p.pronamespace"                      \
    "  WHERE p.pronamespace NOT IN (SELECT oid FROM skip)"                  \
    "  UNION ALL SELECT 'default privileges in schema '"                    \
    "  OPERATOR(pg_catalog.||) n.nspname, d.xmin"                           \
    "  FROM pg_catalog.pg_default_acl d JOIN pg_catalog.pg_namespace n"     \
    "  ON n.oid OPERATOR(pg_catalog.=) d.defaclnamespace"                   \
    "  WHERE d.defaclnamespace NOT IN (SELECT oid FROM skip)"

/* Objects of the whole database or cluster: none is a tenant's. */
#define S_CATALOG_GLOBAL                                                    \
    "  UNION ALL SELECT 'database ' OPERATOR(pg_catalog.||) d.datname,"     \
    "  d.xmin FROM pg_catalog.pg_database d"                                \
    "  UNION ALL SELECT 'a role''s or database''s settings', s.xmin"        \
    "  FROM pg_catalog.pg_db_role_setting s"                                \
    "  UNION ALL SELECT 'role membership', m.xmin"                          \
    "  FROM pg_catalog.pg_auth_members m"                                   \
    "  UNION ALL SELECT 'event trigger ' OPERATOR(pg_catalog.||) e.evtname," \
    "  e.xmin FROM pg_catalog.pg_event_trigger e"                           \
    "  UNION ALL SELECT 'publication ' OPERATOR(pg_catalog.||) b.pubname,"  \
    "  b.xmin FROM pg_catalog.pg_publication b"                             \
    "  UNION ALL SELECT 'publication of a schema', b.xmin"                  \
    "  FROM pg_catalog.pg_publication_namespace b"                          \
    "  UNION ALL SELECT 'extension ' OPERATOR(pg_catalog.||) x.extname,"    \
    "  x.xmin FROM pg_catalog.pg_extension x"                               \
    "  UNION ALL SELECT 'foreign-data wrapper ' OPERATOR(pg_catalog.||)"    \
    "  f.fdwname, f.xmin FROM pg_catalog.pg_foreign_data_wrapper f"         \
    "  UNION ALL SELECT 'server ' OPERATOR(pg_catalog.||) v.srvname, v.xmin" \
    "  FROM pg_catalog.pg_foreign_server v"                                 \
    "  UNION ALL SELECT 'cast', c.xmin FROM pg_catalog.pg_cast c"           \
    "  UNION ALL SELECT 'language ' OPERATOR(pg_catalog.||) l.lanname,"     \
    "  l.xmin FROM pg_catalog.pg_language l"                                \
    "  UNION ALL SELECT 'tablespace ' OPERATOR(pg_catalog.||) t.spcname,"   \
    "  t.xmin FROM pg_catalog.pg_tablespace t"                              \
    "  UNION ALL SELECT 'default privileges', d.xmin"                       \
    "  FROM pg_catalog.pg_default_acl d"                                    \
    "  WHERE d.defaclnamespace OPERATOR(pg_catalog.=) 0"

#define S_CATALOG_TAIL                                                      \
    "),"                                                                    \
    " d AS (SELECT w.what, (w.x::pg_catalog.text::pg_catalog.int8"          \
    "  OPERATOR(pg_catalog.-) (me.x8 OPERATOR(pg_catalog.%) 4294967296)"    \
    "  ::pg_catalog.int8 OPERATOR(pg_catalog.+) 4294967296)"                \
    "  OPERATOR(pg_catalog.%) 4294967296 AS ahead FROM w, me)"              \
    " SELECT DISTINCT d.what FROM d, me"                                    \
    " WHERE d.ahead OPERATOR(pg_catalog.<) 1073741824"                      \
    " AND pg_catalog.pg_xact_status((me.x8 OPERATOR(pg_catalog.+) d.ahead)" \
    "  ::pg_catalog.text::pg_catalog.xid8) OPERATOR(pg_catalog.=)"          \
    "  'in progress'"                                                       \
    " ORDER BY 1 LIMIT 50"

static const char s_outside_catalog_sql[] =
    S_CATALOG_HEAD S_CATALOG_GLOBAL S_CATALOG_TAIL;
/* The same, with roles: only a superuser may read pg_authid. */
static const char s_outside_catalog_su_sql[] =
    S_CATALOG_HEAD S_CATALOG_GLOBAL
    "  UNION ALL SELECT 'role ' OPERATOR(pg_catalog.||) a.rolname, a.xmin"
    "  FROM pg_catalog.pg_authid a" S_CATALOG_TAIL;

static int
s_catalog_outside(fl_pg_t *pg, const char *scope, fl_buf_t *out, int *count,
                  fl_error_t *err)
{
    const char *params[1] = {scope};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int su = fl_pg_is_superuser(pg);
    int rc = fl_pg_query_prepared(pg, &r, su ? "flotilla_net_outside_catalog_su"
                                          : "flotilla_net_outside_catalog",
                                  su ? s_outside_catalog_su_sql
                                     : s_outside_catalog_sql, 1, params, err);

    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        fl_buf_addf(out, "%s%s: made or changed (its definition, name or "
                    "privileges)", (*count)++ ? "; " : "",
                    fl_pg_value(&r, i, 0));
    fl_pg_result_release(&r);
    return rc;
}

int
fl__net_outside(fl_pg_t *pg, const char *scope, char *const before[2],
                const char *savepoint, fl_buf_t *out, int *count,
                fl_error_t *err)
{
    const char *params[3] = {scope, before[0], before[1]};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_buf_t dropped, classes, objects;
    int rc;

    *count = 0;
    fl_buf_init(&dropped, 0);
    fl_buf_init(&classes, 0);
    fl_buf_init(&objects, 0);
    rc = fl_pg_query_prepared(pg, &r, "flotilla_net_outside", s_outside_sql,
                              3, params, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        long long upd = strtoll(fl_pg_value(&r, i, 2), NULL, 10);
        long long del = strtoll(fl_pg_value(&r, i, 3), NULL, 10);
        int ddl = strcmp(fl_pg_value(&r, i, 4), "t") == 0;
        char what[96];

        if (fl_pg_value(&r, i, 6)) {
            fl_buf_addf(&classes, "%s%s", classes.len ? "," : "{",
                        fl_pg_value(&r, i, 6));
            fl_buf_addf(&objects, "%s%s", objects.len ? "," : "{",
                        fl_pg_value(&r, i, 5));
            continue;
        }
        if (fl_pg_value(&r, i, 5)) {
            fl_buf_addf(&dropped, "%s%s", dropped.len ? "," : "{",
                        fl_pg_value(&r, i, 5));
            continue;
        }
        if (ddl)
            snprintf(what, sizeof(what), "its structure or storage changed "
                     "(ALTER, TRUNCATE, CREATE, DROP of a part)");
        else if (del > 0)
            snprintf(what, sizeof(what), "%lld row%s deleted", del,
                     del == 1 ? "" : "s");
        else if (upd > 0)
            snprintf(what, sizeof(what), "%lld row%s updated", upd,
                     upd == 1 ? "" : "s");
        else
            continue; /* rows added, a sequence drawn: nothing destroyed */
        fl_buf_addf(out, "%s%s.%s: %s", (*count)++ ? "; " : "",
                    fl_pg_value(&r, i, 0), fl_pg_value(&r, i, 1), what);
    }
    fl_pg_result_release(&r);
    /* Before a rollback to the savepoint would take the rows away. */
    if (rc == 0)
        rc = s_catalog_outside(pg, scope, out, count, err);
    if (rc == 0 && (dropped.len || objects.len)) {
        const char *objs[2] = {NULL, NULL};

        if (dropped.len)
            fl_buf_adds(&dropped, "}");
        if (objects.len) {
            fl_buf_adds(&classes, "}");
            fl_buf_adds(&objects, "}");
            objs[0] = fl_buf_str(&classes);
            objs[1] = fl_buf_str(&objects);
        }
        rc = s_dropped_names(pg, scope, savepoint,
                             dropped.len ? fl_buf_str(&dropped) : NULL, objs,
                             out, count, err);
    }
    fl_buf_release(&dropped);
    fl_buf_release(&classes);
    fl_buf_release(&objects);
    return rc;
}
