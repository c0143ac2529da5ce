/*
 * rollback.c - rolls back one applied migration: its down section (from
 * the verified source), the restore of its backups, the proof of the
 * rows and of the schema, and the ledger row; a down with no-transaction
 * statements statement by statement, recording its progress.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/lintcheck.h"
#include "agent/pipeline_internal.h"
#include "agent/schema.h"
#include "common/alloc.h"
#include "common/log.h"

/*
 * Statement i of m's down, resumed at (first), failed: whether it is a
 * DROP INDEX CONCURRENTLY whose index is gone (42704).  CONCURRENTLY runs
 * outside a transaction, so the server finishes the drop without its
 * client: a run killed after it and before its progress row leaves the
 * index dropped and the row saying otherwise, and the statement counts as
 * done (err cleared, said in an event), as apply counts an index the
 * server finished building (fl__index_left_behind in apply.c).
 */
static int
s_index_already_dropped(fl_pipeline_t *p, const fl_migration_t *m,
                        const fl_stmt_t *st, int first, size_t i,
                        fl_error_t *err)
{
    if (!first || !st->no_transaction || st->kind == NULL ||
        strcmp(st->kind, "DROP INDEX") != 0 ||
        strcmp(err->sqlstate, "42704") != 0)
        return 0;
    fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OK, m, 0, NULL,
              "the index down statement %zu (%s:%d:%d) drops is gone (an "
              "interrupted run dropped it): counted as done", i + 1, m->file,
              st->line, st->column);
    fl_error_clear(err);
    return 1;
}

/* Records the rollback state of version (autocommit, or in the caller's tx). */
static int
s_rollback_state(fl_pipeline_t *p, const fl_version_t *version,
                 const char *status, int down_done, const char *note,
                 fl_error_t *err)
{
    char done[16];
    const char *params[6];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    snprintf(done, sizeof(done), "%d", down_done);
    params[0] = status;
    params[1] = done;
    params[2] = note;
    params[3] = version->text;
    params[4] = p->target;
    params[5] = p->down_sum[0] ? p->down_sum : NULL;
    rc = fl_pg_query(p->pg, &r,
        "UPDATE flotilla.schema_migrations SET status = $1,"
        " down_done = $2::pg_catalog.int4,"
        " rollback_note = COALESCE($3, rollback_note),"
        " rollback_down_checksum = COALESCE($6, rollback_down_checksum),"
        " finished_at = CASE WHEN $1 = 'rolled_back'"
        "  THEN pg_catalog.clock_timestamp() ELSE finished_at END"
        " WHERE version OPERATOR(pg_catalog.=) $4 AND target"
        " OPERATOR(pg_catalog.=) $5", 6, params, err);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * The restore half of a rollback, in the transaction the caller opened
 * after down: backups and sequences back, the ledger row rolled_back.
 */
/* Each object the rollback re-creates is reported as a restore event. */
typedef struct {
    fl_pipeline_t *p;
    const fl_migration_t *m;
} s_note_ctx;

static void
s_recreated(const char *kind, const char *ident, void *arg)
{
    s_note_ctx *c = arg;

    fl__event(c->p, FL_STEP_RESTORE, FL_STEP_OK, c->m, 0, NULL,
              "re-created %s %s, which down did not", kind, ident);
}

/*
 * Puts what the failure left (said) before err's hint, if it has one: the
 * restore's hints say what to do, and only the rollback knows whether its
 * down's statements stayed done or rolled back with it.
 */
static void
s_hint_after(fl_error_t *err, const char *said)
{
    char *was = NULL;

    if (err == NULL || err->hint == NULL)
        return;
    was = fl_strdup(err->hint);
    fl_error_set_hint(err, "%s  %s", said, was);
    free(was);
}

/*
 * The schema half of the proof: objects the migration dropped or changed
 * that down did not bring back are re-created from the recorded
 * definitions (validated, see schema.c); then the schema must equal the
 * snapshot taken before down (gen_before) with the migration's changes
 * undone.  A difference fails the rollback unless accepted, in which case
 * it joins the notes.
 */
static int
s_prove_schema(fl_pipeline_t *p, const fl_ledger_row_t *row,
               const fl_migration_t *m, int gen_before, fl_restore_t *res,
               fl_error_t *err)
{
    fl_schema_diff_list_t diff = FL_SCHEMA_DIFF_LIST_INIT;
    s_note_ctx ctx = {p, m};
    char *text = NULL;
    int n = 0, rc;

    if (!row->schema_recorded) {
        fl__event(p, FL_STEP_RESTORE, FL_STEP_OK, m, 0, NULL,
                  "the schema of %s is not proven: its changes were not "
                  "recorded when it was applied (it was resumed after an "
                  "interruption, or applied by an older flotilla, or "
                  "flotilla crashed right after its COMMIT); compare the "
                  "schema by hand", m->file);
        /* Unproven, but still the schema as this rollback leaves it. */
        if ((rc = fl_schema_snapshot(p->pg, 4, fl__scope(p), err)) == 0) {
            text = fl_asprintf("rollback %s", m->version.text);
            rc = fl_schema_state_record(p->pg, p->target, 4, text, err);
            free(text);
        }
        return rc;
    }
    if ((rc = fl_schema_recreate(p->pg, p->target, &m->version, s_recreated, &ctx, &n,
                                 err)) != 0 ||
        (rc = fl_schema_snapshot(p->pg, 4, fl__scope(p), err)) != 0 ||
        (rc = fl_schema_prove(p->pg, p->target, &m->version,
                              gen_before ? gen_before : 4, 4,
                              row->schema_format, &diff, err)) != 0 ||
        (rc = fl__repeatables_filter_diff(p, m, &diff, err)) != 0)
        goto cleanup;
    if (diff.count == 0)
        goto cleanup;
    text = fl_schema_diff_describe(&diff);
    {
        /*
         * --accept-loss accepts what is missing (a table, a column, and
         * what hung on them); an object that differs, or one that should
         * not be there, still needs --accept-schema-diff.
         */
        size_t missing = 0;
        for (size_t i = 0; i < diff.count; i++)
            missing += diff.items[i].actual == NULL;
        if (p->opts.accept_loss && missing == diff.count) {
            res->notes = fl_reallocarray(res->notes, res->nnotes + 1,
                                         sizeof(char *));
            res->notes[res->nnotes++] = fl_asprintf("accepted loss of "
                                                    "schema objects: %s",
                                                    text);
            goto cleanup;
        }
    }
    if (!p->opts.accept_schema_diff) {
        rc = FL_ERR(err, FL_EFAIL, "the schema after rolling back %s is not "
                    "what it was before it was applied (%zu object%s "
                    "differ%s)", m->file, diff.count,
                    diff.count == 1 ? "" : "s", diff.count == 1 ? "s" : "");
        fl_error_set_detail(err, "%s", text);
        fl_error_set_hint(err, "Make down restore these objects, or roll "
                               "back anyway with --accept-schema-diff "
                               "--reason TEXT.");
        goto cleanup;
    }
    res->notes = fl_reallocarray(res->notes, res->nnotes + 1, sizeof(char *));
    res->notes[res->nnotes++] = fl_asprintf("accepted schema difference: %s",
                                            text);
cleanup:
    /* Snapshot 4 is the schema as this rollback leaves it (schema.h). */
    if (rc == 0) {
        char *after = fl_asprintf("rollback %s", m->version.text);
        rc = fl_schema_state_record(p->pg, p->target, 4, after, err);
        free(after);
    }
    free(text);
    fl_schema_diff_list_release(&diff);
    return rc;
}

/* How the backups of row's migration are restored. */
static fl_restore_opts_t
s_restore_opts(const fl_pipeline_t *p, const fl_ledger_row_t *row,
               int marked)
{
    fl_restore_opts_t ro = {p->opts.accept_loss,
                            p->opts.relocate_backups ? p->opts.backup_dir
                                                     : NULL, p->target,
                            row->applied_snapshot, row->applied_xids, marked};
    return ro;
}

/* The dump files of the backups a committed restore put back. */
static void
s_remove_restored_files(const fl_restore_t *res)
{
    for (size_t i = 0; i < res->nfiles; i++) {
        fl_error_t e = FL_ERROR_INIT;
        if (fl__backup_file_remove(res->files[i], &e) != 0)
            fl_log_warning("pipeline", "could not remove restored backup "
                           "file: %s", e.message);
        fl_error_clear(&e);
    }
}

/*
 * After the rollback of m failed with its connection lost, perhaps as its
 * COMMIT was sent (which wrote status, down_done done): whether it
 * committed, from the ledger (fl__commit_in_doubt).  Returns 1 when the
 * failure is told here: committed (p->committed_anyway; the run still
 * fails, its connection gone) or unknown; 0 when it did not commit.
 */
static int
s_commit_lost(fl_pipeline_t *p, const fl_migration_t *m, const char *status,
              int done, int64_t t0, fl_error_t *err)
{
    fl_error_t why = FL_ERROR_INIT;
    int committed = 0;

    if (fl_pg_is_open(p->pg))
        return 0;
    if (fl__commit_in_doubt(p, m, status, 1, done, &committed,
                            &why) != 0) {
        fl__event(p, FL_STEP_RESTORE, FL_STEP_FAILED, m, fl__now_ms() - t0,
                  err, "%s may or may not be rolled back: the connection "
                  "was lost when its COMMIT was sent", m->file);
        fl_error_set_detail(err, "Whether the rollback of %s committed could "
                            "not be learnt: %s", m->file, why.message);
        fl_error_set_hint(err, "flotilla status reads the ledger: it says "
                          "whether %s is rolled back.", m->file);
        fl_error_clear(&why);
        return 1;
    }
    if (!committed)
        return 0;
    p->committed_anyway = 1;
    fl__event(p, FL_STEP_RESTORE, FL_STEP_FAILED, m, fl__now_ms() - t0, err,
              "%s is rolled back (its COMMIT ran, with its ledger row), but "
              "the connection was lost before flotilla heard so", m->file);
    fl_error_add_detail(err, "%s is rolled back: its COMMIT ran, with its "
                        "ledger row.", m->file);
    return 1;
}

static int
s_restore(fl_pipeline_t *p, const fl_ledger_row_t *row,
          const fl_migration_t *m, int down_done, int gen_before,
          fl_restore_t *res, fl_error_t *err)
{
    fl_restore_opts_t ro = s_restore_opts(p, row, res->marked);
    char *note = NULL;
    int rc;

    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
        (rc = fl__restore_backups(p->pg, &ro, &m->version, res, err)) != 0 ||
        (rc = s_prove_schema(p, row, m, gen_before, res, err)) != 0)
        return rc;
    if (res->nnotes) {
        fl_buf_t b = FL_BUF_INIT(0);
        fl_buf_addf(&b, "%s", p->opts.reason ? p->opts.reason : "");
        for (size_t i = 0; i < res->nnotes; i++)
            fl_buf_addf(&b, "; %s", res->notes[i]);
        note = fl_buf_detach(&b);
    }
    rc = s_rollback_state(p, &m->version, "rolled_back", down_done, note, err);
    free(note);
    return rc;
}


/*
 * A schema target's down, in its transaction before its first statement:
 * the savepoint and the picture fl__outside_check compares with after it
 * (a down stays in its scope, as an up does).
 */
static int
s_outside_begin(fl_pipeline_t *p, char *outside[2], fl_error_t *err)
{
    int rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_run", err);

    return rc != 0 ? rc
                   : fl__net_outside_before(p->pg, p->target, outside, err);
}

/*
 * After the COMMIT of a down's statement run in a transaction of its own:
 * the session's settings, without what it SET LOCAL, are the down's for
 * its next statements; flotilla's pinned again.
 */
static int
s_settle(fl_pipeline_t *p, fl_error_t *err)
{
    fl_pg_step_t step;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    fl__session_settle_step(&p->session, &step, &r);
    rc = fl_pg_batch(p->pg, &step, 1, err);
    if (rc == 0)
        fl__session_settled(&p->session, &r);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * Before down statement index of m runs, in its transaction: the user
 * tables it drops (by name, with a schema, as a partition of a table it
 * drops, or as a dependent of what it drops with CASCADE: an inheritance
 * child), the columns it drops (by name, from a parent's children and a
 * partitioned table's partitions too, or as the columns of a type or
 * domain it drops with CASCADE) and the tables it empties (TRUNCATE,
 * with a parent's children and the tables CASCADE reaches) hold data --
 * rows the application wrote since the migration, most often -- that
 * the rollback keeps: each table's rows (for columns, the rows where one
 * of them differs from its constant DEFAULT, or is not NULL) are copied
 * first (fl__backup_keep); what was kept goes to res->kept, said once
 * the transaction commits.  The copies are
 * never restored: once the rollback commits they are leftovers, listed
 * by `flotilla backups list` and removed by `prune --leftovers`.  A
 * rollback returns the schema to what it was, and keeps what that
 * removed.
 *
 * What the statement reaches is PostgreSQL's to say, not the name's: the
 * statement is rehearsed behind a savepoint, what it dropped read from
 * the catalog (the relations this transaction locked that are gone, the
 * columns whose pg_attribute row it marked dropped, the relations whose
 * storage a TRUNCATE replaced, the schemas it dropped), and rolled back;
 * the copies are made, then the statement runs for real.  Only
 * statements that name something they drop or empty, or cascade, are
 * rehearsed; one whose effects only running it tells (a DO block) is run
 * once and rolled back only when it dropped something (s_probe).
 */

/*
 * Adds what fl__backup_keep kept before down statement index to res;
 * ncols: 0, the table's rows; 1, the column's values; more, values in
 * rows.
 */
static void
s_kept(fl_restore_t *res, const fl_migration_t *m, const fl_stmt_t *st,
       size_t index, const char *what, long long kept, size_t ncols,
       const char *where)
{
    res->kept = fl_reallocarray(res->kept, res->nkept + 1, sizeof(char *));
    res->kept[res->nkept++] = fl_asprintf(
        "down statement %zu (%s:%d:%d %s) %s holding %s%lld %s%s: kept a copy "
        "of the table in %s, never restored (flotilla backups list; prune "
        "--leftovers removes it)", index + 1, m->file, st->line, st->column,
        st->kind ? st->kind : "statement", what,
        ncols > 1 ? "values in " : "", kept, ncols == 1 ? "value" : "row",
        kept == 1 ? "" : "s", where);
}

/*
 * After the rehearsal, before its savepoint is rolled back: what this
 * transaction has dropped or replaced so far ('r': a relation it locked,
 * its relfilenode or NULL when it is gone; 'a': a column whose row it
 * marked dropped; 'n': a schema it locked that is gone).
 */
static const char s_rehearsed_sql[] =
    "SELECT 'r', l.relation, c.relfilenode::pg_catalog.int8"
    " FROM (SELECT DISTINCT l.relation FROM pg_catalog.pg_locks l"
    "  WHERE l.locktype = 'relation' AND l.granted"
    "  AND l.pid = pg_catalog.pg_backend_pid() AND l.relation >= 16384) l"
    " LEFT JOIN pg_catalog.pg_class c ON c.oid = l.relation"
    " UNION ALL SELECT 'a', a.attrelid, a.attnum::pg_catalog.int8"
    " FROM pg_catalog.pg_attribute a"
    " WHERE a.attrelid >= 16384 AND a.attnum > 0 AND a.attisdropped"
    " AND pg_catalog.age(a.xmin) <= 0"
    " UNION ALL SELECT 'n', l.objid, NULL FROM pg_catalog.pg_locks l"
    " WHERE l.locktype = 'object'"
    " AND l.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass"
    " AND l.granted AND l.pid = pg_catalog.pg_backend_pid()"
    " AND NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n"
    "  WHERE n.oid = l.objid)";

/*
 * Once the rehearsal is rolled back: the user tables it dropped ($1),
 * emptied ($2 with their relfilenodes in the rehearsal, $3, when $7) or
 * dropped columns of ($4, $5 attnums: 'c'), and whether their schema went
 * with them ($6), one row a table (columns: one row each), the table's
 * first.  And 'v', the columns whose values lose a field: those of a
 * composite type an attribute of which it dropped (by CASCADE of a
 * domain or type the attribute used, or ALTER TYPE ... DROP ATTRIBUTE),
 * of an array or a domain of it, or of a composite type that holds it.
 * A table already gone before the statement is not found.
 */
static const char s_reached_sql[] =
    FL__TYPES_HOLDING(
    " SELECT c1.reltype FROM ROWS FROM (pg_catalog.unnest($4::pg_catalog.oid[]),"
    "  pg_catalog.unnest($5::pg_catalog.int2[])) x(rel, att)"
    "  JOIN pg_catalog.pg_class c1 ON c1.oid = x.rel AND c1.relkind = 'c'"
    "  JOIN pg_catalog.pg_attribute a1 ON a1.attrelid = x.rel"
    "  AND a1.attnum = x.att AND NOT a1.attisdropped")
    " SELECT c.oid, n.nspname, c.relname, k.what, k.attname,"
    " n.oid = ANY ($6::pg_catalog.oid[])"
    " FROM (SELECT g.rel, 't' AS what, NULL::pg_catalog.name AS attname,"
    "  0::pg_catalog.int2 AS attnum FROM pg_catalog.unnest($1::pg_catalog.oid[]) g(rel)"
    "  UNION ALL SELECT e.rel, 'e', NULL, 0"
    "  FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.oid[]),"
    "  pg_catalog.unnest($3::pg_catalog.int8[])) e(rel, node)"
    "  JOIN pg_catalog.pg_class c0 ON c0.oid = e.rel"
    "  WHERE $7::pg_catalog.bool AND c0.relfilenode::pg_catalog.int8 <> e.node"
    "  UNION ALL SELECT x.rel, 'c', a.attname, a.attnum"
    "  FROM ROWS FROM (pg_catalog.unnest($4::pg_catalog.oid[]),"
    "  pg_catalog.unnest($5::pg_catalog.int2[])) x(rel, att)"
    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = x.rel"
    "  AND a.attnum = x.att AND NOT a.attisdropped"
    "  UNION ALL SELECT f.attrelid, 'v', f.attname, f.attnum"
    FL__COLUMNS_OF_TY ") k"
    " JOIN pg_catalog.pg_class c ON c.oid = k.rel"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND c.relpersistence <> 't'"
    " AND n.nspname NOT IN"
    "  ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')"
    " AND n.nspname !~ '^pg_(toast|temp)'"
    " ORDER BY c.oid, pg_catalog.strpos('tecv', k.what), k.attnum";

/* "names of" or "name" for one: "columns a, b of s.t", "column s.t.a". */
static void
s_columns_said(fl_buf_t *b, const char *const *names, size_t n,
               const char *schema, const char *table)
{
    if (n == 1) {
        fl_buf_addf(b, "column %s.%s.%s", schema, table, names[0]);
        return;
    }
    fl_buf_adds(b, "columns ");
    for (size_t c = 0; c < n; c++)
        fl_buf_addf(b, "%s%s", c ? ", " : "", names[c]);
    fl_buf_addf(b, " of %s.%s", schema, table);
}

/* Whether down statement st drops or empties anything (s_keep). */
static int
s_drops(const fl_stmt_t *st)
{
    if (st->cascades)
        return 1;
    for (size_t d = 0; d < st->ndestroys; d++)
        switch (st->destroys[d].kind) {
        case FL_DESTROY_DROP_TABLE:
        case FL_DESTROY_DROP_COLUMN:
        case FL_DESTROY_TRUNCATE:
        case FL_DESTROY_DROP_SCHEMA:
            return 1;
        default:
            break;
        }
    return 0;
}

/* A row of s_rehearsed_sql: kind ('r', 'a', 'n'), oid, value. */
typedef struct {
    char kind;
    const char *oid;
    const char *v;
} s_seen_t;

/*
 * s_reached_sql over what a rehearsal saw (rows), once it is rolled
 * back: *out gets the user tables to keep, with what happens to each.
 */
static int
s_reached(fl_pipeline_t *p, const s_seen_t *rows, size_t n, int truncate,
          fl_pg_result_t *out, fl_error_t *err)
{
    fl_buf_t list[6];
    const char *params[7];
    int rc;

    for (size_t i = 0; i < 6; i++)
        fl_buf_init(&list[i], 0);
    for (size_t i = 0; i < n; i++) {
        const s_seen_t *x = &rows[i];
        size_t which = x->kind == 'n' ? 5 : x->kind == 'a' ? 3
                       : x->v == NULL ? 0 : 1;

        fl_buf_addf(&list[which], "%s%s", list[which].len ? "," : "{",
                    x->oid);
        if (which == 1 || which == 3)
            fl_buf_addf(&list[which + 1], "%s%s",
                        list[which + 1].len ? "," : "{", x->v);
    }
    for (size_t i = 0; i < 6; i++) {
        fl_buf_adds(&list[i], list[i].len ? "}" : "{}");
        params[i] = fl_buf_str(&list[i]);
    }
    params[6] = truncate ? "true" : "false";
    rc = fl_pg_query(p->pg, out, s_reached_sql, 7, params, err);
    for (size_t i = 0; i < 6; i++)
        fl_buf_release(&list[i]);
    return rc;
}

/*
 * Runs statement index behind a savepoint, then, in one round trip,
 * flotilla's settings again, the n reads (what the statement did, seen
 * before it is undone) and the rollback to the savepoint, which undoes
 * it.  The statement's own error is returned as it is (the savepoint
 * left for the caller's rollback).
 */
static int
s_rehearsal(fl_pipeline_t *p, const fl_migration_t *m,
            const fl_stmt_list_t *stmts, size_t index, fl__stats_t *stats,
            const fl_pg_step_t *reads, size_t n, fl_error_t *err)
{
    fl_pg_result_t left = FL_PG_RESULT_INIT;
    fl_pg_step_t *steps = NULL;
    size_t k = 0, leave = 0;
    int rc;

    if ((rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_keep", err)) != 0 ||
        (rc = fl__run(p, m, stmts, (int)index, 1, 0, stats, err)) != 0)
        return rc;
    steps = fl_calloc(n + 3, sizeof(*steps));
    k = leave = fl__session_leave_step(&p->session, 1, &steps[0], &left);
    for (size_t i = 0; i < n; i++)
        steps[k++] = reads[i];
    steps[k++] = (fl_pg_step_t){NULL, "ROLLBACK TO SAVEPOINT flotilla_keep",
                                0, NULL, NULL};
    steps[k++] = (fl_pg_step_t){NULL, "RELEASE SAVEPOINT flotilla_keep", 0,
                                NULL, NULL};
    rc = fl_pg_batch(p->pg, steps, k, err);
    /* Rolled back with the savepoint: flotilla's settings again. */
    if (rc == 0 && leave)
        fl__session_left(&p->session, &left);
    fl_pg_result_release(&left);
    free(steps);
    return rc;
}

/*
 * Rehearses statement index behind a savepoint and rolls it back; *out
 * gets what s_reached_sql finds it dropped or emptied.
 */
static int
s_rehearse(fl_pipeline_t *p, const fl_migration_t *m,
           const fl_stmt_list_t *stmts, size_t index, fl__stats_t *stats,
           fl_pg_result_t *out, fl_error_t *err)
{
    const fl_stmt_t *st = &stmts->items[index];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc, truncate = 0;

    for (size_t d = 0; d < st->ndestroys; d++)
        truncate |= st->destroys[d].kind == FL_DESTROY_TRUNCATE;
    fl_pg_step_t read = {"flotilla_keep_rehearsed", s_rehearsed_sql, 0, NULL,
                         &r};

    rc = s_rehearsal(p, m, stmts, index, stats, &read, 1, err);
    if (rc != 0) {
        fl_pg_result_release(&r);
        return rc; /* the statement's own error: the caller's to handle */
    }
    {
        s_seen_t *seen = fl_calloc(r.nrows + 1, sizeof(*seen));
        for (size_t i = 0; i < r.nrows; i++)
            seen[i] = (s_seen_t){*fl_pg_value(&r, i, 0), fl_pg_value(&r, i, 1),
                                 fl_pg_value(&r, i, 2)};
        rc = s_reached(p, seen, r.nrows, truncate, out, err);
        free(seen);
    }
    fl_pg_result_release(&r);
    return rc;
}

/* Keeps what r (s_reached_sql's rows) names, before statement index. */
static int
s_keep_reached(fl_pipeline_t *p, const fl_ledger_row_t *row,
               const fl_migration_t *m, const fl_stmt_t *st, size_t index,
               const fl_pg_result_t *rr, fl_restore_t *res, fl_error_t *err)
{
    fl_backup_ctx_t ctx = {m->version, NULL, NULL, 0, p->target};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < rr->nrows;) {
        const char *oid = fl_pg_value(rr, i, 0);
        const char *schema = fl_pg_value(rr, i, 1);
        const char *table = fl_pg_value(rr, i, 2);
        char what = *fl_pg_value(rr, i, 3);
        int schema_gone = strcmp(fl_pg_value(rr, i, 5), "t") == 0;
        /* Columns dropped ('c'), then those losing a field ('v'). */
        const char **cols = NULL;
        size_t ncols = 0, ndropped = 0, j = i;
        long long kept = 0;
        char *where = NULL;
        fl_buf_t said = FL_BUF_INIT(0);

        /* The table's rows: a table dropped or emptied comes first. */
        for (; j < rr->nrows && strcmp(fl_pg_value(rr, j, 0), oid) == 0; j++)
            if (what == 'c' || what == 'v') {
                cols = fl_reallocarray(cols, ncols + 1, sizeof(*cols));
                cols[ncols++] = fl_pg_value(rr, j, 4);
                ndropped += *fl_pg_value(rr, j, 3) == 'c';
            }
        rc = fl__backup_keep(p->pg, &ctx,
                             (uint32_t)strtoul(oid, NULL, 10), cols, ncols,
                             row->applied_xids, &kept, &where, err);
        if (rc == 0 && where) {
            if (what == 't' && schema_gone)
                fl_buf_addf(&said, "drops schema %s with table %s.%s", schema,
                            schema, table);
            else if (what == 't' || what == 'e')
                fl_buf_addf(&said, "%s table %s.%s",
                            what == 'e' ? "empties" : "drops", schema, table);
            if (ndropped > 0) {
                fl_buf_adds(&said, "drops ");
                s_columns_said(&said, cols, ndropped, schema, table);
            }
            if (ncols > ndropped) {
                fl_buf_adds(&said, ndropped ? " and a field of "
                                            : "drops a field of ");
                s_columns_said(&said, cols + ndropped, ncols - ndropped,
                               schema, table);
            }
            s_kept(res, m, st, index, fl_buf_str(&said), kept, ncols,
                   where);
        }
        fl_buf_release(&said);
        free(where);
        free(cols);
        i = j;
    }
    return rc;
}

/*
 * The user tables this transaction holds a writing lock on (ROW
 * EXCLUSIVE or stronger), any a statement changed rows of among them,
 * with the rows it has updated and deleted in each so far (pg_stat_xact,
 * which counts a savepoint's too; -1 when track_counts is off: every
 * such table counts as changed).
 */
static const char s_written_sql[] =
    "SELECT c.oid, n.nspname, c.relname,"
    " CASE WHEN pg_catalog.current_setting('track_counts')::pg_catalog.bool"
    " THEN pg_catalog.pg_stat_get_xact_tuples_updated(c.oid)"
    " OPERATOR(pg_catalog.+) pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid)"
    " ELSE -1 END"
    " FROM (SELECT DISTINCT l.relation FROM pg_catalog.pg_locks l"
    "  WHERE l.locktype = 'relation' AND l.granted"
    "  AND l.pid = pg_catalog.pg_backend_pid() AND l.relation >= 16384"
    "  AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock',"
    "  'ExclusiveLock', 'AccessExclusiveLock')) l"
    " JOIN pg_catalog.pg_class c ON c.oid = l.relation"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND c.relpersistence <> 't'"
    " AND n.nspname NOT IN"
    "  ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')"
    " AND n.nspname !~ '^pg_(toast|temp)'"
    " ORDER BY c.oid";

/* Whether down statement st deletes or changes rows (s_keep_written). */
static int
s_changes_rows(const fl_stmt_t *st)
{
    for (size_t d = 0; d < st->ndestroys; d++)
        if (st->destroys[d].kind == FL_DESTROY_DELETE ||
            st->destroys[d].kind == FL_DESTROY_UPDATE)
            return 1;
    return 0;
}

/*
 * A table a statement changed rows of that holds rows written since the
 * migration: their addresses and xmins are in pg_temp.flotilla_since
 * (rel = oid), made in the rollback's transaction and dropped in it, so
 * that however many there are they stay on the server.
 */
typedef struct {
    char *oid;
    char *qt;          /* qualified name */
    char *name;        /* schema.table, for people */
    const char *params[1];
    char *sql;         /* which of them the rehearsal no longer shows */
    fl_pg_result_t gone;
} s_since_t;

typedef struct {
    s_since_t *t;
    size_t n;
    int made;          /* pg_temp.flotilla_since exists */
} s_since_list_t;

/* Drops l's table, once its rows are kept (a failure's goes with the
 * rollback's transaction). */
static int
s_since_drop(fl_pipeline_t *p, s_since_list_t *l, fl_error_t *err)
{
    if (!l->made)
        return 0;
    l->made = 0;
    return fl_pg_exec(p->pg, "DROP TABLE pg_temp.flotilla_since", err);
}

static void
s_since_release(s_since_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->t[i].oid);
        free(l->t[i].qt);
        free(l->t[i].name);
        free(l->t[i].sql);
        fl_pg_result_release(&l->t[i].gone);
    }
    fl_free(&l->t);
    l->n = 0;
}

/*
 * Whether row i of after (s_written_sql after a statement) is a table
 * the statement changed rows of: its count moved from before's (-1:
 * unknown, so it counts).
 */
static int
s_moved(const fl_pg_result_t *before, const fl_pg_result_t *after, size_t i)
{
    const char *count = fl_pg_value(after, i, 3);

    if (strcmp(count, "-1") == 0)
        return 1;
    for (size_t k = 0; k < before->nrows; k++)
        if (strcmp(fl_pg_value(before, k, 0), fl_pg_value(after, i, 0)) == 0)
            return strcmp(fl_pg_value(before, k, 3), count) != 0;
    return strcmp(count, "0") != 0;
}

/* Row alias t was written by this transaction (the down, a rewrite). */
#define S_OWN_ROW                                                           \
    " t.xmin OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT l.transactionid"      \
    " FROM pg_catalog.pg_locks l WHERE l.locktype OPERATOR(pg_catalog.=)"   \
    " 'transactionid' AND l.granted AND l.pid OPERATOR(pg_catalog.=)"       \
    " pg_catalog.pg_backend_pid())) "

/*
 * Once the statement is undone: the tables it changed rows of (s_moved)
 * that hold rows written since the migration (fl__since_sql), into *out,
 * their rows' addresses and xmins into pg_temp.flotilla_since.  A row
 * this transaction wrote counts as written since (it may carry the
 * application's values), unless the table's rows written since were
 * marked by key before the down (marked, fl__restore_marked_sql): then
 * only those keys do, whatever rewrote them.
 */
static int
s_since(fl_pipeline_t *p, const fl_ledger_row_t *row,
        const fl_pg_result_t *before, const fl_pg_result_t *after,
        int marked, s_since_list_t *out, fl_error_t *err)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < after->nrows; i++) {
        fl_pg_result_t c = FL_PG_RESULT_INIT;
        const char *oid = fl_pg_value(after, i, 0);
        const char *schema = fl_pg_value(after, i, 1);
        const char *table = fl_pg_value(after, i, 2);
        const char *param[3] = {row->applied_snapshot, row->applied_xids, oid};
        char *qt = NULL, *sql = NULL, *since = NULL;

        if (!s_moved(before, after, i))
            continue;
        if (!out->made &&
            (rc = fl_pg_exec(p->pg, "CREATE TEMP TABLE flotilla_since (rel"
                             " pg_catalog.oid, tid pg_catalog.tid, x"
                             " pg_catalog.xid) ON COMMIT DROP", err)) != 0)
            break;
        out->made = 1;
        qt = fl__qualify(p->pg, schema, table);
        since = fl__since_sql("t", "$1", "$2");
        if (marked) {
            char *keys = NULL;
            if ((rc = fl__restore_marked_sql(p->pg, qt, "t", &keys,
                                             err)) != 0) {
                free(since);
                free(qt);
                break;
            }
            if (keys != NULL) {
                char *both = fl_asprintf("((NOT" S_OWN_ROW "AND%s) OR"
                                         " (" S_OWN_ROW "AND %s))", since,
                                         keys);
                free(since);
                since = both;
                free(keys);
            }
        }
        sql = fl_asprintf("WITH i AS (INSERT INTO pg_temp.flotilla_since"
                          " SELECT $3::pg_catalog.oid, t.ctid, t.xmin FROM"
                          " ONLY %s t WHERE %s RETURNING 1)"
                          " SELECT pg_catalog.count(*) FROM i", qt, since);
        free(since);
        rc = fl_pg_query(p->pg, &c, sql, 3, param, err);
        free(sql);
        if (rc == 0 && c.nrows == 1 && strcmp(fl_pg_value(&c, 0, 0), "0")) {
            out->t = fl_reallocarray(out->t, out->n + 1, sizeof(*out->t));
            out->t[out->n++] = (s_since_t){
                fl_strdup(oid), qt, fl_asprintf("%s.%s", schema, table),
                {NULL}, NULL, FL_PG_RESULT_INIT};
            qt = NULL;
        }
        free(qt);
        fl_pg_result_release(&c);
    }
    return rc;
}

/*
 * Statement index rehearsed again: which rows of l (written since) it
 * deletes or changes (no longer there with the same xmin), undone; those
 * are copied (fl__backup_keep_tids) and said in res, in the order it
 * reaches them.
 */
static int
s_keep_gone(fl_pipeline_t *p, const fl_migration_t *m,
            const fl_stmt_list_t *stmts, size_t index, fl__stats_t *stats,
            s_since_list_t *l, fl_restore_t *res, fl_error_t *err)
{
    const fl_stmt_t *st = &stmts->items[index];
    fl_backup_ctx_t ctx = {m->version, NULL, NULL, 0, p->target};
    fl_pg_step_t *reads = fl_calloc(l->n + 1, sizeof(*reads));
    int rc;

    for (size_t i = 0; i < l->n; i++) {
        s_since_t *t = &l->t[i];

        t->params[0] = t->oid;
        t->sql = fl_asprintf(
            "SELECT pg_catalog.array_agg(s.tid)::pg_catalog.text FROM"
            " pg_temp.flotilla_since s WHERE s.rel OPERATOR(pg_catalog.=)"
            " $1::pg_catalog.oid AND NOT EXISTS (SELECT FROM ONLY %s t"
            " WHERE t.ctid OPERATOR(pg_catalog.=) s.tid AND t.xmin"
            " OPERATOR(pg_catalog.=) s.x)", t->qt);
        reads[i] = (fl_pg_step_t){NULL, t->sql, 1, t->params, &t->gone};
    }
    rc = s_rehearsal(p, m, stmts, index, stats, reads, l->n, err);
    free(reads);
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        const s_since_t *t = &l->t[i];
        long long kept = 0;
        char *where = NULL;

        if (t->gone.nrows != 1 || fl_pg_value(&t->gone, 0, 0) == NULL)
            continue;
        rc = fl__backup_keep_tids(p->pg, &ctx,
                                  (uint32_t)strtoul(t->oid, NULL, 10),
                                  fl_pg_value(&t->gone, 0, 0), &kept, &where,
                                  err);
        if (rc == 0 && where) {
            res->kept = fl_reallocarray(res->kept, res->nkept + 1,
                                        sizeof(char *));
            res->kept[res->nkept++] = fl_asprintf(
                "down statement %zu (%s:%d:%d %s) deletes or changes %lld "
                "row%s of %s written since the migration: kept a copy in %s, "
                "never restored (flotilla backups list; prune --leftovers "
                "removes it)", index + 1, m->file, st->line, st->column,
                st->kind ? st->kind : "statement", kept, kept == 1 ? "" : "s",
                t->name, where);
        }
        free(where);
    }
    return rc;
}

/*
 * Down statement index deletes or changes rows (a DELETE, an UPDATE,
 * MERGE, ON CONFLICT DO UPDATE): those of them the application wrote
 * since the migration are kept, wherever the statement reaches (ON
 * DELETE CASCADE, a trigger).  "Since": fl__since_sql, against the snapshot
 * the migration's transaction recorded (row->applied_snapshot).  The
 * statement is rehearsed to learn the tables it changes rows of
 * (s_written_sql before and after); their rows written since are listed
 * (s_since); it is rehearsed again to learn which of those it deletes
 * or changes, and they are copied (s_keep_gone); then the caller runs it
 * for real.  The second rehearsal is skipped when no table it changes
 * holds a row written since (the usual rollback of a migration nobody
 * used).
 */
static int
s_keep_written(fl_pipeline_t *p, const fl_ledger_row_t *row,
               const fl_migration_t *m, const fl_stmt_list_t *stmts,
               size_t index, fl__stats_t *stats, fl_restore_t *res,
               fl_error_t *err)
{
    fl_pg_result_t before = FL_PG_RESULT_INIT, after = FL_PG_RESULT_INIT;
    fl_pg_step_t read = {"flotilla_keep_written", s_written_sql, 0, NULL,
                         &after};
    s_since_list_t l = {NULL, 0, 0};
    int rc;

    rc = fl_pg_query(p->pg, &before, s_written_sql, 0, NULL, err);
    /* The statement's own error: the caller's to handle. */
    if (rc == 0)
        rc = s_rehearsal(p, m, stmts, index, stats, &read, 1, err);
    if (rc == 0)
        rc = s_since(p, row, &before, &after, res->marked, &l, err);
    if (rc == 0 && l.n > 0)
        rc = s_keep_gone(p, m, stmts, index, stats, &l, res, err);
    if (rc == 0)
        rc = s_since_drop(p, &l, err);
    s_since_release(&l);
    fl_pg_result_release(&before);
    fl_pg_result_release(&after);
    return rc;
}

/*
 * A statement whose effects only running it tells (a DO block, a
 * function: st->opaque), run behind a savepoint: when, beyond what the
 * transaction had dropped before it (seen the same way as a rehearsal
 * sees it), it dropped or replaced nothing, and it changed no rows (when
 * the migration's snapshot tells the rows written since it: s_moved), it
 * stays as it ran (*ran 1); otherwise it is rolled back, what it dropped
 * is kept, the rows written since that it deletes or changes are kept
 * (s_since, s_keep_gone: it runs once more), and the caller runs it again
 * (its effects outside the transaction, a sequence it advanced, happen
 * each time).
 */
static int
s_probe(fl_pipeline_t *p, const fl_ledger_row_t *row, const fl_migration_t *m,
        const fl_stmt_list_t *stmts, size_t index, fl__stats_t *stats,
        fl_restore_t *res, int *ran, fl_error_t *err)
{
    fl_pg_result_t before = FL_PG_RESULT_INIT, after = FL_PG_RESULT_INIT,
                   reached = FL_PG_RESULT_INIT, left = FL_PG_RESULT_INIT,
                   wbefore = FL_PG_RESULT_INIT, wafter = FL_PG_RESULT_INIT;
    int rows = row->applied_snapshot != NULL && row->applied_xids != NULL;
    s_since_list_t l = {NULL, 0, 0};
    s_seen_t *fresh = NULL;
    size_t nfresh = 0;
    int rc, moved = 0;

    *ran = 0;
    {
        fl_pg_step_t steps[3] = {
            {"flotilla_keep_rehearsed", s_rehearsed_sql, 0, NULL, &before},
            {NULL, "SAVEPOINT flotilla_keep", 0, NULL, NULL},
            {"flotilla_keep_written", s_written_sql, 0, NULL, &wbefore}};
        rc = fl_pg_batch(p->pg, steps, rows ? 3 : 2, err);
    }
    if (rc == 0)
        rc = fl__run(p, m, stmts, (int)index, 1, 0, stats, err);
    if (rc == 0) {
        fl_pg_step_t steps[3];
        size_t n = fl__session_leave_step(&p->session, 1, &steps[0], &left);
        size_t leave = n;

        steps[n++] = (fl_pg_step_t){"flotilla_keep_rehearsed",
                                    s_rehearsed_sql, 0, NULL, &after};
        if (rows)
            steps[n++] = (fl_pg_step_t){"flotilla_keep_written",
                                        s_written_sql, 0, NULL, &wafter};
        rc = fl_pg_batch(p->pg, steps, n, err);
        if (rc == 0 && leave)
            fl__session_left(&p->session, &left);
    }
    if (rc != 0)
        goto cleanup;
    /* What is new: a relation gone or replaced, a column, a schema. */
    fresh = fl_calloc(after.nrows + 1, sizeof(*fresh));
    for (size_t i = 0; i < after.nrows; i++) {
        s_seen_t x = {*fl_pg_value(&after, i, 0), fl_pg_value(&after, i, 1),
                      fl_pg_value(&after, i, 2)};
        const char *was = NULL; /* x's row before, by kind and oid */
        int known = 0, is_new = 0;

        for (size_t j = 0; j < before.nrows && !known; j++) {
            was = fl_pg_value(&before, j, 2);
            known = *fl_pg_value(&before, j, 0) == x.kind &&
                    strcmp(fl_pg_value(&before, j, 1), x.oid) == 0 &&
                    (x.kind != 'a' || strcmp(was, x.v) == 0);
        }
        if (!known) /* a relation newly locked and still there: nothing */
            is_new = x.kind != 'r' || x.v == NULL;
        else if (x.kind == 'r') /* gone now, or its storage replaced */
            is_new = was == NULL ? x.v != NULL
                                 : x.v == NULL || strcmp(was, x.v) != 0;
        if (is_new)
            fresh[nfresh++] = x;
    }
    for (size_t i = 0; i < wafter.nrows && !moved; i++)
        moved = s_moved(&wbefore, &wafter, i);
    if (nfresh == 0 && !moved) {
        *ran = 1;
        rc = fl_pg_exec(p->pg, "RELEASE SAVEPOINT flotilla_keep", err);
        goto cleanup;
    }
    rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_keep;"
                           " RELEASE SAVEPOINT flotilla_keep", err);
    /* Rolled back with the savepoint: flotilla's settings again. */
    if (rc == 0 && nfresh > 0)
        rc = s_reached(p, fresh, nfresh, 1, &reached, err);
    if (rc == 0 && nfresh > 0)
        rc = s_keep_reached(p, row, m, &stmts->items[index], index, &reached,
                            res, err);
    if (rc == 0 && moved)
        rc = s_since(p, row, &wbefore, &wafter, res->marked, &l, err);
    if (rc == 0 && l.n > 0)
        rc = s_keep_gone(p, m, stmts, index, stats, &l, res, err);
    if (rc == 0)
        rc = s_since_drop(p, &l, err);
cleanup:
    s_since_release(&l);
    free(fresh);
    fl_pg_result_release(&before);
    fl_pg_result_release(&after);
    fl_pg_result_release(&wbefore);
    fl_pg_result_release(&wafter);
    fl_pg_result_release(&reached);
    fl_pg_result_release(&left);
    return rc;
}

/*
 * Before down statement index runs: keeps what it would drop (s_rehearse)
 * or, for an opaque statement, runs it as s_probe does (*ran 1: it ran,
 * and the caller must not run it again); keeps the rows written since the
 * migration that it deletes or changes (s_keep_written).
 */
static int
s_keep(fl_pipeline_t *p, const fl_ledger_row_t *row,
       const fl_migration_t *m, const fl_stmt_list_t *stmts, size_t index,
       fl__stats_t *stats, fl_restore_t *res, int *ran, fl_error_t *err)
{
    const fl_stmt_t *st = &stmts->items[index];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    *ran = 0;
    if (!s_drops(st) && !st->opaque &&
        (!s_changes_rows(st) || row->applied_snapshot == NULL ||
         row->applied_xids == NULL))
        return 0;
    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0)
        return rc;
    if (!s_drops(st) && !st->opaque)
        return s_keep_written(p, row, m, stmts, index, stats, res, err);
    if (st->opaque && !s_drops(st))
        return s_probe(p, row, m, stmts, index, stats, res, ran, err);
    if ((rc = s_rehearse(p, m, stmts, index, stats, &r, err)) == 0)
        rc = s_keep_reached(p, row, m, st, index, &r, res, err);
    fl_pg_result_release(&r);
    return rc;
}

/* Says what res->kept holds (committed), and forgets it; drop: only forgets. */
static void
s_kept_say(fl_pipeline_t *p, const fl_migration_t *m, fl_restore_t *res,
           int say)
{
    if (say)
        p->kept += (int)res->nkept;
    for (size_t i = 0; i < res->nkept; i++) {
        if (say)
            fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OK, m, 0, NULL, "%s",
                      res->kept[i]);
        free(res->kept[i]);
    }
    fl_free(&res->kept);
    res->nkept = 0;
}

/*
 * Whether a statement of down stmts may give rows of a table it did not
 * make this transaction's xmin: an ALTER TABLE (a rewrite, or a column of
 * a domain with a CHECK), an ALTER TYPE (CASCADE rewrites the tables of
 * a composite type), CLUSTER, VACUUM FULL, a statement that rewrites,
 * changes or deletes rows, or one whose effects only running it tells.
 */
static int
s_may_rewrite(const fl_stmt_list_t *stmts)
{
    for (size_t i = 0; i < stmts->count; i++) {
        const fl_stmt_t *st = &stmts->items[i];
        if (st->rewrites || st->opaque || s_changes_rows(st) ||
            (st->kind != NULL && (strcmp(st->kind, "ALTER TABLE") == 0 ||
                                  strcmp(st->kind, "ALTER TYPE") == 0 ||
                                  strcmp(st->kind, "CLUSTER") == 0 ||
                                  strcmp(st->kind, "VACUUM FULL") == 0)))
            return 1;
    }
    return 0;
}

/*
 * One attempt at a transactional down: BEGIN, the schema before it (when
 * the migration's was recorded: *gen_before), every statement without
 * retries of its own, the schema target's checks; on success the
 * transaction stays open for the restore.
 */
static int
s_down_once(fl_pipeline_t *p, const fl_ledger_row_t *row, fl_migration_t *m,
            const fl_stmt_list_t *stmts, fl__stats_t *stats, int *gen_before,
            fl_restore_t *res, fl_error_t *err)
{
    char *outside[2] = {NULL, NULL};
    int rc = fl_pg_exec(p->pg, "BEGIN", err);

    if (rc == 0)
        rc = fl__set_timeouts(p, m, 1, err);
    /* Before the rows the backups name are read or locked (a forged row
     * had them locked first); the restore checks each row again, as the
     * down runs the target's code too. */
    if (rc == 0)
        rc = fl__backups_in_scope(p->pg, p->target, &m->version, err);
    if (rc == 0 && row->schema_recorded) {
        rc = fl_schema_snapshot(p->pg, 3, fl__scope(p), err);
        *gen_before = 3;
    }
    /*
     * Which rows the restore replaces were written since, read before
     * the down can rewrite them (every row's xmin would be this one's);
     * not when no statement of it can (the read scans each table).
     */
    if (rc == 0 && s_may_rewrite(stmts)) {
        fl_restore_opts_t ro = s_restore_opts(p, row, 0);
        rc = fl__restore_mark_since(p->pg, &ro, &m->version, stmts,
                                    &res->marked, err);
    }
    if (rc == 0 && p->target[0])
        rc = s_outside_begin(p, outside, err);
    for (size_t i = 0; i < stmts->count && rc == 0; i++) {
        int ran = 0;
        rc = s_keep(p, row, m, stmts, i, stats, res, &ran, err);
        if (rc == 0 && !ran)
            rc = fl__run(p, m, stmts, (int)i, 1, 0, stats, err);
    }
    if (rc == 0 && p->target[0])
        rc = fl__outside_check(p, m, outside, "flotilla_run", err);
    free(outside[0]);
    free(outside[1]);
    /* Before the restore, which writes flotilla's tables. */
    if (rc == 0 && (rc = fl__session_leave(p->pg, &p->session, err)) == 0)
        rc = fl__own_check(p, m, 0, err);
    return rc;
}

/*
 * Rolls back one migration from its ledger row: a transactional down,
 * the restore and the ledger row in one transaction; a down with
 * no-transaction statements statement by statement, recording progress
 * (status rolling_back, down_done), then the restore in its own
 * transaction.  A rolling_back row resumes after its done statements.
 */
int
fl__rollback_one(fl_pipeline_t *p, const fl_ledger_row_t *row,
                 const char *down, int down_line, fl_error_t *err)
{
    fl_migration_t m;
    fl_stmt_list_t stmts = {NULL, 0};
    fl_restore_t res;
    fl__stats_t stats = {0, 0, 0, NULL};
    int64_t t0 = fl__now_ms();
    int notx = 0, resumed = strcmp(row->status, "rolling_back") == 0;
    int gen_before = 0;
    size_t start = 0, done = 0;
    int rc = 0;

    memset(&m, 0, sizeof(m));
    memset(&res, 0, sizeof(res));
    m.version = row->version;
    m.name = row->name;
    m.file = row->file ? row->file : row->name;
    m.lock_timeout_ms = -1;
    m.statement_timeout_ms = -1;
    /* A cancel that came before it: nothing of its down runs. */
    if (fl__cancelled(p))
        return FL_ERR(err, FL_ECANCELLED, "cancelled before the rollback of "
                      "%s started: nothing of its down ran", m.file);
    fl__event(p, FL_STEP_ROLLBACK, FL_STEP_STARTED, &m, 0, NULL,
              "%s %s", resumed ? "resuming the rollback of" : "rolling back",
              m.file);
    if (down == NULL) {
        rc = FL_ERR(err, FL_EINVAL, "migration %s (%s) has no down section",
                    row->version.text, row->name);
        fl_error_set_hint(err, "Write the inverse in a new migration and "
                               "apply it instead.");
        goto failed;
    }
    if ((rc = fl__parse_section(p, &m, down, down_line, "down", &stmts,
                                err)) != 0)
        goto failed;
    for (size_t i = 0; i < stmts.count; i++)
        notx |= stmts.items[i].no_transaction;
    /* Nothing an earlier down SET holds for this one. */
    if ((rc = fl__session_reset_all(p->pg, &p->session, p->target, err)) != 0)
        goto failed;
    fl__forget_schema(p);
    if (resumed)
        start = done = (size_t)row->down_done;
    /*
     * A schema target: what cannot run in a transaction stays in its
     * scope, checked before any of the down runs (and each unqualified
     * name again where it runs).
     */
    for (size_t i = start; rc == 0 && i < stmts.count; i++)
        rc = fl__reach_check(p, &m, &stmts.items[i], 0, err);
    if (rc != 0)
        goto failed;
    if (notx || resumed) {
        /* CONCURRENTLY and friends: statement by statement, recorded. */
        if ((rc = fl__set_timeouts(p, &m, 0, err)) != 0)
            goto failed;
        /*
         * The picture before down; a resumed rollback has lost it, and
         * proves only the objects the migration changed.
         */
        if (!resumed && row->schema_recorded) {
            if ((rc = fl_schema_snapshot(p->pg, 3, fl__scope(p), err)) != 0)
                goto failed;
            gen_before = 3;
        }
        if (!resumed &&
            (rc = s_rollback_state(p, &m.version, "rolling_back", 0, NULL,
                                   err)) != 0)
            goto failed;
        if (resumed)
            fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OK, &m, 0, NULL,
                      "resuming the rollback of %s at down statement %zu of "
                      "%zu (an earlier run did %zu)", m.file, start + 1,
                      stmts.count, start);
        if (resumed && (rc = fl__replay_settings(p, &m, &stmts, start,
                                                 err)) != 0)
            goto failed;
        for (size_t i = start; i < stmts.count; i++) {
            const fl_stmt_t *st = &stmts.items[i];
            int64_t ts = fl__now_ms();
            /*
             * A statement that can run in a transaction commits with its
             * progress row or not at all (a kill between the two would
             * run it again on resume); CONCURRENTLY and friends cannot.
             */
            int tx = !st->no_transaction;
            /* In a schema target, as an up's: stays in its scope. */
            int check = tx && p->target[0];
            char *outside[2] = {NULL, NULL};

            /*
             * In its own transaction, a lock timeout rolls that back and
             * runs it again (no lock held, not idle in a transaction while
             * it waits); outside one, the statement retries by itself.
             */
            for (int attempt = 0;; attempt++) {
                int64_t ta = fl__now_ms();
                int ran = 0;

                /* What it SETs LOCAL ends with its COMMIT (session.c). */
                p->session.session_level = tx;
                rc = tx ? fl_pg_exec(p->pg, "BEGIN", err)
                        : fl__reach_check(p, &m, st, 1, err);
                /*
                 * Resumed at a CREATE INDEX CONCURRENTLY: what the
                 * interrupted run left, as apply does.  Before, its
                 * INVALID index (or the valid one the server finished)
                 * made every later rollback fail "already exists"
                 * (found by an audit).
                 */
                if (rc == 0 && !tx && resumed && i == start && attempt == 0)
                    rc = fl__index_left_behind(p, &m, st, i,
                                               FL_STEP_ROLLBACK, &ran, err);
                if (rc == 0 && check)
                    rc = s_outside_begin(p, outside, err);
                if (rc == 0 && tx)
                    rc = s_keep(p, row, &m, &stmts, i, &stats, &res, &ran,
                                err);
                if (rc == 0 && !ran)
                    rc = fl__run(p, &m, &stmts, (int)i, tx,
                                 tx ? 0 : p->opts.lock_retries, &stats, err);
                if (rc == 0 || !tx || !fl__lock_conflict(err))
                    break;
                fl_free(&outside[0]);
                fl_free(&outside[1]);
                fl__rollback_quietly(p);
                s_kept_say(p, &m, &res, 0);  /* rolled back with it */
                p->session.in_migration = 0;
                p->session.session_level = 0;
                if (!fl__lock_retry(p, &m, &stmts, (int)i, attempt,
                                    p->opts.lock_retries, ta, 1, &stats, err))
                    break;
            }
            if (rc != 0 && s_index_already_dropped(p, &m, st, resumed &&
                                                   i == start, i, err))
                rc = 0;
            if (rc == 0 && check)
                rc = fl__outside_check(p, &m, outside, "flotilla_run", err);
            free(outside[0]);
            free(outside[1]);
            if (rc == 0)
                rc = fl__session_leave(p->pg, &p->session, err);
            /* Before flotilla writes its own rows in this transaction. */
            if (rc == 0 && tx)
                rc = fl__own_check(p, &m, 0, err);
            if (rc == 0 && !tx)
                rc = fl__session_repin(p->pg, &p->session, err);
            if (rc == 0)
                rc = s_rollback_state(p, &m.version, "rolling_back",
                                      (int)i + 1, NULL, err);
            if (rc == 0 && tx && (rc = fl__lock_check(p, &m, 1, err)) == 0)
                rc = fl_pg_exec(p->pg, "COMMIT", err);
            if (rc != 0 && tx && !fl_pg_is_open(p->pg)) {
                int committed = 0;
                fl_error_t why = FL_ERROR_INIT;

                /* Its COMMIT may have run: done then, as the ledger says. */
                if (fl__commit_in_doubt(p, &m, "rolling_back", 1,
                                        (int)i + 1, &committed, &why) == 0 &&
                    committed)
                    done = i + 1;
                fl_error_clear(&why);
                if (committed && done == stmts.count)
                    goto partial_restore;
                if (committed)
                    goto partial;
            }
            if (rc == 0 && tx)
                rc = s_settle(p, err);
            p->session.session_level = 0;
            if (rc != 0)
                goto partial;
            s_kept_say(p, &m, &res, 1);
            done = i + 1;
            fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OK, &m, fl__now_ms() - ts,
                      NULL, "down statement %zu of %zu (%s:%d:%d %s) done",
                      i + 1, stmts.count, m.file, st->line, st->column,
                      st->kind ? st->kind : "statement");
        }
        /* The restore runs under none of the down's settings. */
        if ((rc = fl__session_reset_all(p->pg, &p->session, p->target, err)) != 0 ||
            (rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0 ||
            (rc = fl__set_timeouts(p, &m, 1, err)) != 0)
            goto partial_restore;
    } else {
        /*
         * After a lock timeout the whole transaction is rolled back and
         * run again, as an up's is: no lock an earlier down statement took
         * is held while it waits, and it is not idle in a transaction.
         */
        for (int attempt = 0;; attempt++) {
            int64_t ta = fl__now_ms();

            rc = s_down_once(p, row, &m, &stmts, &stats, &gen_before, &res,
                             err);
            if (rc == 0)
                break;
            fl__rollback_quietly(p);
            s_kept_say(p, &m, &res, 0);  /* rolled back with it */
            fl__forget_prepared(p, &stmts, 1);
            p->session.in_migration = 0;
            if (!fl__lock_conflict(err) ||
                !fl__lock_retry(p, &m, &stmts, FL__ALL_STATEMENTS, attempt,
                                p->opts.lock_retries, ta, 1, &stats, err))
                goto failed;
        }
    }
    fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OK, &m, fl__now_ms() - t0, NULL,
              "down of %s ran (%zu statement%s)", m.file, stmts.count,
              stmts.count == 1 ? "" : "s");
    rc = s_restore(p, row, &m, (int)stmts.count, gen_before, &res, err);
    if (rc == 0 && (rc = fl__lock_check(p, &m, 1, err)) == 0)
        rc = fl_pg_exec(p->pg, "COMMIT", err);
    if (rc != 0 && s_commit_lost(p, &m, "rolled_back", (int)stmts.count,
                                 t0, err)) {
        if (p->committed_anyway) {
            s_remove_restored_files(&res);
            s_kept_say(p, &m, &res, 1);
        }
        goto cleanup;
    }
    if (rc != 0) {
        fl__rollback_quietly(p);
        if (notx || resumed)
            goto partial_restore;
        fl__event(p, FL_STEP_RESTORE, FL_STEP_FAILED, &m, fl__now_ms() - t0, err,
                  "rollback of %s failed after down ran; its transaction was "
                  "rolled back, so nothing was rolled back", m.file);
        s_hint_after(err, "Nothing was rolled back.");
        goto cleanup;
    }
    p->session.in_migration = 0;
    {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl__session_repin(p->pg, &p->session, &ignore));
        fl_error_clear(&ignore);
    }
    s_remove_restored_files(&res);
    s_kept_say(p, &m, &res, 1);
    for (size_t i = 0; i < res.nnotes; i++)
        fl__event(p, FL_STEP_RESTORE, FL_STEP_OK, &m, 0, NULL, "%s (reason: %s)",
                  res.notes[i], p->opts.reason ? p->opts.reason : "none given");
    if (res.tables || res.sequences)
        fl__event(p, FL_STEP_RESTORE, FL_STEP_OK, &m, fl__now_ms() - t0, NULL,
                  "restored %d backup%s of %s: %lld row%s put back, %lld added "
                  "row%s removed, %d sequence%s set back; proved", res.tables,
                  res.tables == 1 ? "" : "s", m.file, res.rows,
                  res.rows == 1 ? "" : "s", res.removed,
                  res.removed == 1 ? "" : "s", res.sequences,
                  res.sequences == 1 ? "" : "s");
    goto cleanup;
partial:
    fl__rollback_quietly(p);
    {
        const fl_stmt_t *st = &stmts.items[done];
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_FAILED, &m, fl__now_ms() - t0,
                  err, "rollback of %s stopped at down statement %zu of %zu "
                  "(%s:%d:%d %s); down statements 1 to %zu are done (%zu of "
                  "them by an earlier run) and stay done; it is left "
                  "rolling_back and the next rollback resumes at statement "
                  "%zu", m.file, done + 1, stmts.count, m.file, st->line,
                  st->column, st->kind ? st->kind : "statement", done, start,
                  done + 1);
        fl_error_set_detail(err, "%s is partly rolled back: %zu of %zu down "
                            "statements committed; its data is not restored "
                            "yet.", m.file, done, stmts.count);
        fl__say_lost_alone(p, &m, &stmts, done, err);
    }
    goto cleanup;
partial_restore:
    fl__rollback_quietly(p);
    fl__event(p, FL_STEP_RESTORE, FL_STEP_FAILED, &m, fl__now_ms() - t0, err,
              "down of %s ran and committed (%zu statement%s), but restoring "
              "its backups failed; it is left rolling_back: fix the cause and "
              "run rollback again to finish the restore", m.file, stmts.count,
              stmts.count == 1 ? "" : "s");
    /* After what the restore said (the schema's differences, the rows a
     * foreign key misses): before, this replaced it. */
    fl_error_add_detail(err, "The down section of %s has run; its data is "
                        "not restored yet.", m.file);
    /* The down's statements stay done: before, the restore's hint said
     * nothing was rolled back (found by an audit). */
    s_hint_after(err, "The down's statements stay done.");
    goto cleanup;
failed:
    fl__rollback_quietly(p);
    if (resumed)
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_FAILED, &m, fl__now_ms() - t0,
                  err, "the rollback of %s could not resume; the %d down "
                  "statements an earlier run did stay done (rolling_back)",
                  m.file, row->down_done);
    else
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_FAILED, &m, fl__now_ms() - t0,
                  err, "rollback of %s failed; nothing was rolled back",
                  m.file);
cleanup:
    if (rc != 0)
        rc = fl__fault_code(p, err, "rolling back");
    {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl__own_timeouts(p, &ignore));
        fl_error_clear(&ignore);
    }
    /* The next down starts with none of this one's. */
    fl__forget_prepared(p, &stmts, 0);
    fl__restore_release(&res);
    fl__stats_release(&stats);
    fl_stmt_list_release(&stmts);
    fl__flush_logs(p);
    return rc;
}

/*
 * Lints the down of m, changed since m was applied (apply linted the one
 * it was applied with): every error-level finding in the down section's
 * lines refuses the rollback (FL_EINVAL) unless --allow-lint-errors,
 * which says so.
 */
static int
s_lint_down(fl_pipeline_t *p, const fl_migration_t *m, fl_error_t *err)
{
    fl_lint_options_t opts;
    fl_finding_list_t found = {NULL, 0};
    int first = m->down_line, last = m->down_line, rc;

    for (const char *c = m->down; c && *c; c++)
        last += *c == '\n';
    fl_lint_options_init(&opts);
    opts.pg_version = fl_pg_server_version(p->pg);
    opts.lint_down = 1;
    if ((rc = fl_lintcheck_migration(&found, m, NULL, &opts, err)) != 0)
        return rc;
    /* Before lint.enforce_from, as at apply: warnings. */
    if (!fl__lint_enforced(p, m))
        fl_lintcheck_demote(&found, 0);
    for (size_t i = 0; i < found.count && rc == 0; i++) {
        const fl_finding_t *f = &found.items[i];
        if (f->severity != FL_LINT_ERROR || f->line < first || f->line > last)
            continue;
        if (p->opts.allow_lint_errors) {
            fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OVERRIDDEN, m, 0, NULL,
                      "lint error in the changed down let through by "
                      "--allow-lint-errors: %s:%d:%d: %s: %s", f->file,
                      f->line, f->column, f->rule, f->message);
            continue;
        }
        rc = FL_ERR(err, FL_EINVAL, "lint: %s:%d:%d: %s: %s", m->file,
                    f->line, f->column, f->rule, f->message);
        fl_error_set_detail(err, "The down section changed since the "
                                 "migration was applied, so it is linted "
                                 "before it runs; nothing was rolled back.");
        fl_error_set_hint(err, "%s%sIf it is intended, add \"-- "
                          "flotilla:options allow=%s <reason>\" to the "
                          "migration, or pass --allow-lint-errors.",
                          f->help ? f->help : "", f->help ? ".  " : "",
                          f->rule);
    }
    fl_finding_list_release(&found);
    return rc;
}

/*
 * The down section to run for ledger row: from the verified source, whose
 * migration of that version must be the one applied (the same checksum),
 * or, only with --down-from-ledger, the ledger's copy.  *down and *line
 * are lent (from src or r's row i).
 */
int
fl__down_for(fl_pipeline_t *p, const fl_source_t *src,
             const fl_ledger_row_t *row, const fl_pg_result_t *r, size_t i,
             const char **down, int *line, fl_error_t *err)
{
    const fl_migration_t *m = NULL;

    p->down_sum[0] = '\0';
    for (size_t k = 0; src && src->migs && k < src->migs->count; k++)
        if (fl_version_cmp(&src->migs->items[k].version, &row->version) == 0)
            m = &src->migs->items[k];
    if (m && fl_ledger_row_matches(row, m)) {
        unsigned char sum[32];
        int changed;

        if (src->bundle && (row->bundle_id == NULL ||
                            strcmp(row->bundle_id,
                                   fl_bundle_id(src->bundle)) != 0)) {
            /*
             * Not the bundle applied: its down may be another, so its own
             * signed scope must admit this target.  Before, a bundle for
             * another environment with the same up ran its down here
             * (found by an audit).
             */
            int rc = fl_bundle_scope_admits(src->bundle, p->opts.environment,
                                            p->opts.labels, p->opts.nlabels,
                                            err);
            if (rc != 0) {
                fl_error_prefix(err, "bundle %s is not the one that applied "
                                "%s (%s%s): ", fl_bundle_id(src->bundle),
                                m->file, row->bundle_id ? "bundle "
                                : "from a directory", row->bundle_id
                                ? row->bundle_id : "");
                fl_error_set_detail(err, "Its up is the one applied, but its "
                                         "down may not be, so it is held to "
                                         "its own signed scope; nothing was "
                                         "rolled back.");
                fl_error_set_hint(err, "Roll back with the bundle that was "
                                       "applied, or name this target's "
                                       "environment (--environment NAME) "
                                       "and labels (--label KEY=VALUE).");
                if (err)
                    err->code = FL_EINVAL;
                return FL_EINVAL;
            }
        }
        fl_migration_down_checksum(sum, m->down);
        fl_migration_hex(p->down_sum, sum);
        changed = row->down_checksum
                      ? strcmp(row->down_checksum, p->down_sum) != 0
                      : (row->down_sql == NULL) != (m->down == NULL) ||
                            (m->down && strcmp(row->down_sql, m->down) != 0);
        if (changed) {
            int rc = s_lint_down(p, m, err);
            if (rc != 0)
                return rc;
            fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OK, m, 0, NULL,
                      "the down section of %s changed since it was applied "
                      "(down checksum %.12s then, %.12s now): the source's "
                      "runs, linted and parsed", m->file,
                      row->down_checksum ? row->down_checksum : "unrecorded",
                      p->down_sum);
        }
        *down = m->down;
        *line = m->down_line;
        return 0;
    }
    if (p->opts.down_from_ledger) {
        unsigned char sum[32];

        fl_migration_down_checksum(sum, fl_pg_value(r, i, 1));
        fl_migration_hex(p->down_sum, sum);
        /* Recorded (an OK event reaches the ledger's log; STARTED does not). */
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OK, NULL, 0, NULL,
                  "running the ledger's copy of the down section of migration "
                  "%s (%s): --down-from-ledger", row->version.text,
                  row->file ? row->file : row->name);
        *down = fl_pg_value(r, i, 1);
        *line = (int)strtol(fl_pg_value(r, i, 2), NULL, 10);
        return 0;
    }
    if (m) {
        FL_ERR(err, FL_EINVAL, "the source's migration %s is not the one "
               "applied", m->file);
        fl_error_set_detail(err, "Its up section, validate, verify or "
                            "options differ from those the ledger recorded "
                            "(checksum %.12s) when it was applied; only its "
                            "down may change after.", row->up_checksum
                                                        ? row->up_checksum
                                                        : row->checksum);
        fl_error_set_hint(err, "Roll back from the bundle or directory that "
                               "was applied.  If it is lost, "
                               "--down-from-ledger runs the copy of down the "
                               "ledger kept.");
        return FL_EINVAL;
    }
    FL_ERR(err, FL_EINVAL, "migration %s (%s) is not in the source",
           row->version.text, row->file ? row->file : row->name);
    fl_error_set_hint(err, "Roll back from the bundle or directory that was "
                           "applied.  If it is lost, --down-from-ledger runs "
                           "the copy of down the ledger kept.");
    return FL_EINVAL;
}

int
fl__skip_down(fl_pipeline_t *p, const fl_version_t *version,
              const char *reason, fl_error_t *err)
{
    fl_ledger_t ledger = {NULL, 0};
    const fl_ledger_row_t *row = NULL;
    fl_migration_t m;
    char *note = NULL;
    int rc = 0;

    if (reason == NULL || *reason == '\0')
        return FL_ERR(err, FL_EINVAL, "skipping the down of migration %s "
                      "needs a reason", version->text);
    p->dry_run = 0;
    if ((rc = fl__lock_target(p, err)) != 0)
        goto cleanup;
    if ((rc = fl_ledger_ensure_load(p->pg, p->target, &ledger, err)) != 0 ||
        (rc = fl__own_tables(p, err)) != 0)
        goto cleanup;
    row = fl_ledger_find(&ledger, version);
    /*
     * Applied, being rolled back, or applied in part: a no-transaction
     * migration stopped after some statements, whose next one may never
     * succeed (its file may not change, and no rollback reaches it).
     */
    if (row == NULL || !fl_ledger_row_in_effect(row)) {
        rc = FL_ERR(err, FL_ENOTFOUND, "migration %s is not applied in "
                    "database \"%s\"%s%s%s", version->text,
                    fl_pg_describe(p->pg), *p->target ? " (schema \"" : "",
                    p->target, *p->target ? "\")" : "");
        if (row)
            fl_error_set_detail(err, "Its ledger row says %s.", row->status);
        fl_error_set_hint(err, "flotilla status shows what is applied; "
                               "--skip-down takes the version of an applied "
                               "migration, or of one applied in part.");
        goto cleanup;
    }
    /* Newest first, as every rollback: nothing above it may be left. */
    for (size_t i = 0; i < ledger.count; i++) {
        const fl_ledger_row_t *above = &ledger.items[i];
        if (fl_version_cmp(&above->version, version) > 0 &&
            fl_ledger_row_in_effect(above)) {
            rc = FL_ERR(err, FL_EINVAL, "cannot skip the down of "
                        "migration %s: migration %s (%s) above it is "
                        "still %s", version->text, above->version.text,
                        above->file ? above->file : above->name,
                        above->status);
            fl_error_set_hint(err, "Roll back the migrations above it first "
                                   "(flotilla rollback --to %s).",
                              version->text);
            goto cleanup;
        }
    }
    memset(&m, 0, sizeof(m));
    m.version = row->version;
    m.name = row->name;
    m.file = row->file ? row->file : row->name;
    p->down_sum[0] = '\0';
    note = fl_asprintf("down skipped: %s", reason);
    rc = s_rollback_state(p, version, "rolled_back", row->down_done, note,
                          err);
    if (rc != 0 && !fl_pg_is_open(p->pg)) {
        /* One statement, its own transaction: it may have committed. */
        fl_error_t doubt = FL_ERROR_INIT;
        int committed = 0;

        if (fl__commit_in_doubt(p, &m, "rolled_back", 1, row->down_done,
                                &committed, &doubt) != 0)
            fl_error_add_detail(err, "Whether %s is marked rolled back "
                                "could not be learnt (the connection was "
                                "lost when its row was written): %s",
                                m.file, doubt.message);
        else if (committed) {
            fl_log_warning("pipeline", "%s: the connection was lost after "
                           "its row was written; flotilla status shows it "
                           "rolled back", m.file);
            fl_error_clear(err);
            rc = 0;
        }
        fl_error_clear(&doubt);
    }
    if (rc != 0)
        goto cleanup;
    if (!fl_ledger_row_partial(row))
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_SKIPPED, &m, 0, NULL,
                  "down of %s skipped (rollback --skip-down), reason: %s; "
                  "what it changed stays in the database and its backups are "
                  "left over (flotilla backups list)", m.file, reason);
    else
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_SKIPPED, &m, 0, NULL,
                  "%s, applied in part, marked rolled back (rollback "
                  "--skip-down), reason: %s; the %d of its %d statements that "
                  "committed stay in the database", m.file, reason,
                  row->statements_done, row->statements_total);
cleanup:
    fl__flush_logs(p);
    fl__unlock_target(p);
    fl_ledger_release(&ledger);
    free(note);
    return rc;
}
