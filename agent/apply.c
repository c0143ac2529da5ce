/*
 * apply.c - applies one migration: validation, the backups taken just
 * before each destructive statement, the statements, the before-commit
 * net, the reconciliation of the backups, the ledger row and COMMIT, and
 * after it the schema snapshot.  A transactional migration is one unit
 * of work (one transaction); a no-transaction migration is one unit per
 * statement that can run in a transaction, and the others run alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/lintcheck.h"
#include "agent/pipeline_internal.h"
#include "agent/schema.h"
#include "lint/compare.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/perm.h"

/* Records the failed state of m after its transaction was rolled back. */
static void
s_record_failure(fl_pipeline_t *p, const fl_migration_t *m, int tx, int total,
                 int64_t t0, fl__stats_t *stats, const fl_error_t *error)
{
    fl_error_t lerr = FL_ERROR_INIT;
    fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                              p->opts.agent, "failed", tx, stats->done, total,
                              fl__now_ms() - t0, stats->lock_wait_ms,
                              stats->retries, error, stats->error_position,
                              NULL, p->target, NULL, 0};

    fl__rollback_quietly(p);
    if (fl_ledger_record(p->pg, &rec, &lerr) != 0) {
        fl_log_warning("pipeline", "could not record the failure of %s in the "
                       "ledger: %s", m->file, lerr.message);
        fl_error_clear(&lerr);
    }
}

/*
 * After m committed: a snapshot of the schema, the objects m changed
 * (against the snapshot before it) recorded for its rollback's proof,
 * and the fingerprint, in one transaction and one round trip
 * (fl_schema_record_after).  The snapshot is a refresh of the generation
 * two migrations old (after a run's first migration, of the twin of the
 * snapshot before it, see s_schema_before): only the relations whose
 * catalog rows changed since are described again (schema.h, "Refresh").
 * Taken outside the migration's transaction on purpose: on a schema with
 * thousands of tables the catalog scan takes long enough to matter, and
 * inside the transaction it would hold the migration's locks that much
 * longer.  The snapshot is the next migration's "before", so each
 * migration costs one.  A failure here is reported and leaves the schema
 * unrecorded (the rollback then says it cannot prove the schema): the
 * migration itself is applied.  Returns the fingerprint (new string) or
 * NULL.
 */
static char *
s_schema_after(fl_pipeline_t *p, const fl_migration_t *m, int before,
               int *changes)
{
    fl_error_t err = FL_ERROR_INIT;
    char *fp = NULL;
    int after = before == 1 ? 2 : 1;
    int rc = 0, kinds = p->schema_kinds;
    /* Lent: nothing below changes p->dirty before the record is made. */
    const char *dirty = fl_schema_dirty_of(&p->dirty, after);

    *changes = 0;
    /* Until it is recorded, no generation shows the target. */
    p->schema_gen = 0;
    p->schema_kinds = FL_SCHEMA_KINDS_ASK;
    if (before == 0)
        rc = FL_ERR(&err, FL_ENOTFOUND, "no snapshot before the migration");
    /*
     * A signal's cancel that stops this record stopped flotilla's own
     * bookkeeping after a COMMIT, not a migration: it is made again (its
     * transaction rolled back first), and the pipeline stops before the
     * next migration.  Three attempts: one request can arrive twice.
     */
    for (int attempt = 1; rc == 0; attempt++) {
        if (m->repeatable)
            rc = fl_schema_record_repeatable(p->pg, p->target, m->name,
                                             before, after, fl__scope(p),
                                             kinds, dirty, &fp, changes,
                                             &err);
        else
            rc = fl_schema_record_after(p->pg, p->target, &m->version,
                                        before, after, fl__scope(p), kinds,
                                        dirty, &fp, changes, &err);
        if (rc == 0 || attempt == 3 || !fl__cancelled(p) ||
            strcmp(err.sqlstate, "57014") != 0)
            break;
        fl_error_clear(&err);
        fl_pg_cancel_settled(p->pg);
        fl__rollback_quietly(p);
        fl_free(&fp);
        *changes = 0;
        rc = 0;
    }
    if (rc == 0) {
        /* The other generation keeps what changed since it was taken. */
        p->schema_gen = after;
        fl_schema_dirty_taken(&p->dirty, after);
        return fp;
    }
    fl__forget_schema(p);
    fl_log_warning("pipeline", "could not record the schema after %s: %s",
                   m->file, err.message);
    fl_error_clear(&err);
    free(fp);
    return NULL;
}

void
fl__forget_schema(fl_pipeline_t *p)
{
    p->schema_gen = 0;
    fl_schema_dirty_forget(&p->dirty);
}

/* ---- the net: what one run of a migration destroyed ----------------- */

/* A set of OIDs (small: the tables one migration touches). */
typedef struct {
    uint32_t *v;
    size_t n;
} s_oids;

static int
s_oids_has(const s_oids *s, uint32_t oid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == oid)
            return 1;
    return 0;
}

static void
s_oids_add(s_oids *s, uint32_t oid)
{
    if (s_oids_has(s, oid))
        return;
    s->v = fl_reallocarray(s->v, s->n + 1, sizeof(uint32_t));
    s->v[s->n++] = oid;
}

static void
s_oids_release(s_oids *s)
{
    fl_free(&s->v);
    s->n = 0;
}

/*
 * One migration (or, for a no-transaction migration, one statement) as a
 * unit of work: its statements, counters, and what the net knows.
 */
typedef struct {
    const fl_migration_t *m;
    fl_stmt_list_t stmts;
    fl__stats_t stats;
    int64_t t0;
    int64_t step0;          /* when its current step began: a step's own
                             * duration (each was counted from t0, and
                             * log --slowest put verify-after first) */
    fl_net_snap_t pre;      /* the managed relations at the start of the run */
    fl_net_positions_t seqpos; /* the sequences' positions before the unit */
    fl_backup_t *backups;   /* taken in this run */
    size_t nbackups;
    s_oids backed;          /* their tables */
    s_oids forced;          /* back up before the first statement (kept
                               across runs: the net found them) */
    s_oids replaced;        /* of those, the tables whose values changed
                               where no counter shows (kept across runs):
                               restored whole (fl_backup_t.replace) */
    s_oids explained;       /* rewritten by a statement that says so */
    s_oids named;           /* written by a statement that names them */
    s_oids backed_before;   /* no-transaction: the tables earlier units
                               of this run backed up (kept across units) */
    fl_net_snap_t first;    /* the first run's snapshot: sequences as they
                               were before the migration */
    fl_buf_t uncovered;     /* "table: reason; ..." found by the net */
    int nuncovered;
    int restarts;
    char *outside[2];       /* a schema target's fl__net_outside_before */
    char *touched;          /* relations whose columns the run wrote, as
                               an array (the net's): fl_schema_dirty_sql */
    int own;                /* the net refused it: it wrote flotilla's own
                               tables (fl__net_own_sql) */
    fl_session_mark_t mark; /* the migration's settings at the savepoint */
} s_unit;

static void
s_unit_reset_run(s_unit *u)
{
    fl__net_snap_release(&u->pre);
    for (size_t i = 0; i < u->nbackups; i++)
        fl__backup_release(&u->backups[i]);
    fl_free(&u->backups);
    u->nbackups = 0;
    s_oids_release(&u->backed);
    s_oids_release(&u->explained);
    s_oids_release(&u->named);
    fl_buf_reset(&u->uncovered);
    u->nuncovered = 0;
}

static void
s_unit_release(s_unit *u)
{
    s_unit_reset_run(u);
    s_oids_release(&u->forced);
    s_oids_release(&u->replaced);
    s_oids_release(&u->backed_before);
    fl__net_snap_release(&u->first);
    fl__net_positions_release(&u->seqpos);
    fl_buf_release(&u->uncovered);
    fl__stats_release(&u->stats);
    fl_stmt_list_release(&u->stmts);
    fl_free(&u->outside[0]);
    fl_free(&u->outside[1]);
    fl_free(&u->touched);
    fl__session_mark_release(&u->mark);
}

/*
 * Before a run is undone: its snapshot becomes the unit's first, unless
 * an earlier run's is already kept.  Sequences ignore savepoints and
 * rollbacks, so only the first snapshot knows where they stood before
 * the migration.
 */
static void
s_keep_first(s_unit *u)
{
    if (u->first.rels != NULL || u->pre.rels == NULL)
        return;
    u->first = u->pre;
    u->pre.rels = NULL;
    u->pre.n = 0;
}

/*
 * The snapshot of the target before migration m, when the run has none
 * yet: generation 1, and generation 2 its twin, which the refresh after
 * m brings up to date by describing only what m changed (see
 * s_schema_after).
 */
static int
s_schema_before(fl_pipeline_t *p, s_unit *u, int *gen, fl_error_t *err)
{
    int rc;

    if (p->schema_gen != 0) {
        *gen = p->schema_gen;
        return 0;
    }
    /* It takes a lock on each table: retried like a statement. */
    for (int attempt = 0;; attempt++) {
        int64_t t0 = fl__now_ms();

        if ((rc = fl_schema_snapshot_twin(p->pg, 1, 2, fl__scope(p),
                                          err)) == 0)
            break;
        if (fl__classify(p, err) != FL__FAULT_LOCK ||
            !fl__lock_retry(p, u->m, &u->stmts, FL__ALL_STATEMENTS, attempt,
                            p->opts.lock_retries, t0, 0, &u->stats, err))
            return rc;
    }
    *gen = p->schema_gen = 1;
    fl_schema_dirty_taken(&p->dirty, 1);
    fl_schema_dirty_taken(&p->dirty, 2);
    if (!p->state_checked) {
        /*
         * The run's first snapshot, before anything ran: a schema that is
         * not as flotilla left it was changed by someone else.  Said, not
         * refused (the migrations may not touch what changed).
         */
        fl_schema_state_t st = FL_SCHEMA_STATE_INIT;
        fl_error_t serr = FL_ERROR_INIT;
        char *text = NULL;

        p->state_checked = 1;
        if (fl_schema_state_check(p->pg, p->target, 1, &st, &serr) != 0)
            fl_log_warning("pipeline", "could not compare the schema with "
                           "the one flotilla left: %s", serr.message);
        else if ((text = fl_schema_state_text(&st)) != NULL)
            fl_log_warning("pipeline", "%s: %s; flotilla status says the "
                           "same", fl_pg_describe(p->pg), text);
        free(text);
        fl_schema_state_release(&st);
        fl_error_clear(&serr);
    }
    return 0;
}

/*
 * Makes this target's directory when missing (noting that this pipeline
 * made it), checks it, opens it into p->dump_lock and locks it: exclusive
 * when no other pipeline holds it (*alone set), else shared.  A pipeline
 * removes a directory it made and left empty (fl__dump_dir_release) under
 * the exclusive lock; one that opened it just before finds, once it holds
 * its lock, that the path names another directory or none, and makes it
 * again.
 */
static int
s_dump_dir_lock(fl_pipeline_t *p, int *alone, fl_error_t *err)
{
    struct stat held, now;
    int rc = 0;

    for (int tries = 0; tries < 3; tries++) {
        if (mkdir(p->dump_dir, 0700) == 0)
            p->dump_dir_made = 1;
        else if (errno == ENOENT) {
            /* The backup directory went too: made again, with this. */
            rc = fl__backup_mkdirs(p->dump_dir, err);
            p->dump_dir_made = rc == 0;
        } else if (errno != EEXIST)
            rc = FL_ERR(err, FL_EIO, "could not create backup directory "
                        "\"%s\": %s", p->dump_dir, strerror(errno));
        /*
         * Whoever else owns or can write the directory, or the backup
         * directory above it (unless sticky, as /tmp), could remove or
         * swap the files: refused before anything there is touched.
         */
        if (rc == 0)
            rc = fl_perm_check(NULL, p->dump_dir, "backup directory",
                               geteuid(), err);
        if (rc != 0)
            return rc;
        p->dump_lock = open(p->dump_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                         O_CLOEXEC);
        if (p->dump_lock < 0 && errno == ENOENT)
            continue;
        if (p->dump_lock < 0)
            return FL_ERR(err, FL_EIO, "could not open \"%s\": %s",
                          p->dump_dir, strerror(errno));
        *alone = flock(p->dump_lock, LOCK_EX | LOCK_NB) == 0;
        if (!*alone && flock(p->dump_lock, LOCK_SH) != 0)
            return FL_ERR(err, FL_EIO, "could not lock \"%s\": %s",
                          p->dump_dir, strerror(errno));
        if (fstat(p->dump_lock, &held) == 0 &&
            lstat(p->dump_dir, &now) == 0 && held.st_dev == now.st_dev &&
            held.st_ino == now.st_ino)
            return 0;
        close(p->dump_lock);
        p->dump_lock = -1;
    }
    rc = FL_ERR(err, FL_EIO, "could not claim backup directory \"%s\": it "
                "was removed each time it was opened", p->dump_dir);
    fl_error_set_hint(err, "Another process removes it; run again when it "
                           "is done.");
    return rc;
}

/*
 * Claims this target's backup file directory for the pipeline (a shared
 * flock on the directory, held until fl_pipeline_close) and, when no other
 * pipeline holds it, sweeps what a killed attempt left: a
 * b<id>.copy.partial whose backup the ledger has committed (the process
 * died between COMMIT and the rename) gets its name; any other
 * b<id>.copy.partial was written by a transaction that never committed
 * and is removed.  Only regular files of that exact name are touched.
 */
static int
s_dump_dir_claim(fl_pipeline_t *p, const fl_migration_t *m, fl_error_t *err)
{
    DIR *d = NULL;
    struct dirent *e = NULL;
    int alone = 0;
    int rc = s_dump_dir_lock(p, &alone, err);

    if (rc != 0)
        return rc;
    if (alone && (d = opendir(p->dump_dir)) != NULL) {
        while (rc == 0 && (e = readdir(d)) != NULL) {
            const char *n = e->d_name;
            size_t digits = n[0] == 'b' ? strspn(n + 1, "0123456789") : 0;
            struct stat st;
            char *path = NULL, *final = NULL, *loc = NULL, id[24];
            const char *params[1] = {id};
            if (digits == 0 || digits > 18 ||
                strcmp(n + 1 + digits, ".copy.partial") != 0 ||
                fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISREG(st.st_mode))
                continue;
            snprintf(id, sizeof(id), "%.*s", (int)digits, n + 1);
            path = fl_asprintf("%s/%s", p->dump_dir, n);
            final = fl_asprintf("%s/b%s.copy", p->dump_dir, id);
            rc = fl_pg_query_value(p->pg, &loc, "SELECT location FROM"
                                   " flotilla.backups WHERE id"
                                   " OPERATOR(pg_catalog.=) $1::pg_catalog.int8",
                                   1, params, err);
            if (rc == FL_ENOTFOUND) {
                fl_error_clear(err);
                rc = 0;
            }
            if (rc == 0 && loc && strcmp(loc, final) == 0) {
                if (rename(path, final) == 0)
                    fl__event(p, FL_STEP_BACKUP, FL_STEP_OK, m, 0, NULL,
                              "backup file %s named %s: its migration "
                              "committed, the process ended before the "
                              "rename", path, final);
            } else if (rc == 0 && unlink(path) == 0) {
                fl__event(p, FL_STEP_BACKUP, FL_STEP_OK, m, 0, NULL,
                          "removed %s, left by an attempt that never "
                          "committed", path);
            }
            free(path);
            free(final);
            free(loc);
        }
    }
    if (rc == 0 && alone && flock(p->dump_lock, LOCK_SH) != 0)
        rc = FL_ERR(err, FL_EIO, "could not lock \"%s\": %s", p->dump_dir,
                    strerror(errno));
    if (d)
        closedir(d);
    return rc;
}

/* This target's directory for backup files (absolute), made on demand. */
static int
s_dump_dir(fl_pipeline_t *p, const fl_migration_t *m, const char **out,
           fl_error_t *err)
{
    char *id = NULL, *db = NULL, *abs = NULL;
    int made = 0;
    int rc = 0;

    *out = NULL;
    if (p->dump_dir) {
        *out = p->dump_dir;
        return 0;
    }
    if (p->opts.backup_dir == NULL || p->opts.backup_dump_above <= 0)
        return 0;
    rc = fl_pg_query_value(p->pg, &id, "SELECT target_id::pg_catalog.text FROM"
                           " flotilla.ledger_meta ORDER BY created_at,"
                           " ledger_version LIMIT 1", 0, NULL, err);
    if (rc == 0)
        rc = fl_pg_query_value(p->pg, &db, "SELECT pg_catalog.current_database()",
                               0, NULL, err);
    if (rc != 0)
        goto cleanup;
    /*
     * Another pipeline that made it removes it when empty
     * (fl__dump_dir_release), perhaps between these two calls: made again.
     */
    for (int tries = 0; abs == NULL; tries++) {
        made = mkdir(p->opts.backup_dir, 0700) == 0;
        if (!made && errno != EEXIST) {
            rc = FL_ERR(err, FL_EIO, "could not create backup directory "
                        "\"%s\": %s", p->opts.backup_dir, strerror(errno));
            goto cleanup;
        }
        abs = realpath(p->opts.backup_dir, NULL);
        if (abs == NULL && (errno != ENOENT || tries == 2)) {
            rc = FL_ERR(err, FL_EIO, "could not resolve backup directory "
                        "\"%s\": %s", p->opts.backup_dir, strerror(errno));
            goto cleanup;
        }
    }
    if (made)
        p->backup_dir_made = fl_strdup(abs);
    /*
     * One directory per target: "<database>-<first 12 of its ledger's
     * target id>", so two databases of the same name on two servers, or
     * hundreds of an agent's tenants, never share a file name.
     */
    /* A schema target's: "<database>__<schema>-<target id>". */
    if (*p->target != '\0') {
        char *both = fl_asprintf("%.40s__%.40s", db, p->target);
        free(db);
        db = both;
    }
    for (char *c = db; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            *c = '_';
    p->dump_dir = fl_asprintf("%s/%.82s-%.12s", abs, db, id ? id : "");
    if ((rc = s_dump_dir_claim(p, m, err)) != 0) {
        fl__dump_dir_release(p);
        goto cleanup;
    }
    *out = p->dump_dir;
cleanup:
    free(abs);
    free(id);
    free(db);
    return rc;
}

/*
 * A run that wrote no backup file leaves no directory behind: the
 * target's directory and the backup directory, each only if this
 * pipeline made it (one that was there stays), are removed when empty.
 * rmdir removes nothing else, so no file is lost, and a .partial a
 * killed attempt left keeps the directory for the next claim's sweep.
 * The target's directory goes only under the exclusive lock, when no
 * other pipeline has claimed it (one that opened it meanwhile makes it
 * again: s_dump_dir_lock).  Then closes the lock and forgets the
 * directory.
 */
void
fl__dump_dir_release(fl_pipeline_t *p)
{
    if (p->dump_dir != NULL && p->dump_dir_made &&
        (p->dump_lock < 0 || flock(p->dump_lock, LOCK_EX | LOCK_NB) == 0))
        (void)rmdir(p->dump_dir); /* fails, as it should, if not empty */
    if (p->backup_dir_made != NULL)
        (void)rmdir(p->backup_dir_made); /* likewise */
    if (p->dump_lock >= 0)
        close(p->dump_lock);
    p->dump_lock = -1;
    p->dump_dir_made = 0;
    fl_free(&p->backup_dir_made);
    fl_free(&p->dump_dir);
}

/*
 * The tables a statement destroying data in roots reaches through the
 * catalog: referencing tables whose foreign keys act (CASCADE, SET NULL,
 * SET DEFAULT) on delete (DELETE, MERGE) or on update (UPDATE, upserts),
 * every referencing table for TRUNCATE ... CASCADE, recursively; and for
 * partitioned tables, their leaf partitions.  Adds to out.
 */
static int
s_reach(fl_pipeline_t *p, const s_oids *roots, int on_delete, int on_update,
        int truncate, s_oids *out, fl_error_t *err)
{
    fl_buf_t arr = FL_BUF_INIT(0);
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char flags[8];
    const char *params[2];
    int rc;

    fl_buf_adds(&arr, "{");
    for (size_t i = 0; i < roots->n; i++)
        fl_buf_addf(&arr, "%s%u", i ? "," : "", roots->v[i]);
    fl_buf_adds(&arr, "}");
    snprintf(flags, sizeof(flags), "%d%d%d", on_delete, on_update, truncate);
    params[0] = fl_buf_str(&arr);
    params[1] = flags;
    rc = fl_pg_query(p->pg, &r,
        "WITH RECURSIVE reach(oid) AS ("
        "  SELECT pg_catalog.unnest($1::pg_catalog.oid[])"
        "  UNION SELECT k.conrelid FROM pg_catalog.pg_constraint k"
        "  JOIN reach ON k.confrelid OPERATOR(pg_catalog.=) reach.oid"
        "  WHERE k.contype = 'f' AND ("
        "   (pg_catalog.substr($2, 1, 1) = '1' AND k.confdeltype IN ('c', 'n', 'd'))"
        "   OR (pg_catalog.substr($2, 2, 1) = '1' AND k.confupdtype IN ('c', 'n', 'd'))"
        "   OR pg_catalog.substr($2, 3, 1) = '1'))"
        " SELECT DISTINCT t.relid FROM reach, LATERAL ("
        "  SELECT reach.oid AS relid UNION ALL"
        "  SELECT pt.relid FROM pg_catalog.pg_partition_tree(reach.oid) pt"
        "  WHERE pt.isleaf) t",
        2, params, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        s_oids_add(out, (uint32_t)strtoul(fl_pg_value(&r, i, 0), NULL, 10));
    fl_pg_result_release(&r);
    fl_buf_release(&arr);
    return rc;
}

/* Adds the tables of the schemas named in names (a JSON array) to out. */
static int
s_schema_tables(fl_pipeline_t *p, json_t *names, s_oids *out, fl_error_t *err)
{
    char *text = json_dumps(names, JSON_COMPACT);
    const char *params[1] = {text};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query(p->pg, &r,
        "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.relkind IN"
        " ('r', 'p') AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.=) ANY"
        " (ARRAY(SELECT pg_catalog.json_array_elements_text($1::pg_catalog.json)))",
        1, params, err);

    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        s_oids_add(out, (uint32_t)strtoul(fl_pg_value(&r, i, 0), NULL, 10));
    fl_pg_result_release(&r);
    free(text);
    return rc;
}

static int
s_destroys_rows(fl_destroy_kind k)
{
    return k == FL_DESTROY_UPDATE || k == FL_DESTROY_DELETE;
}

/*
 * Takes the backup of table oid if it pre-existed and has none yet: of
 * the rows st's WHERE clause selects when st is given (the statement
 * that changes them), else of the whole table, with why_whole (NULL when
 * no one asked for rows) said in the event.
 */
static int
s_backup_one(fl_pipeline_t *p, s_unit *u, uint32_t oid, const char *lockmode,
             int stmt_index, const fl_stmt_t *st, const char *why_whole,
             fl_error_t *err)
{
    const fl_net_rel_t *pre = fl__net_find(&u->pre, oid);
    fl_backup_ctx_t ctx = {u->m->version, p->opts.bundle_id, NULL,
                           p->opts.backup_dump_above, p->target};
    fl_backup_rows_t rows = {st ? st->row_where : NULL,
                             st ? st->row_alias : NULL, &p->session,
                             st ? st->row_every : 0, NULL};
    fl_backup_t b;
    char *where = NULL;
    int64_t t0 = fl__now_ms();
    fl_error_t lerr = FL_ERROR_INIT;
    int rc;

    /* Created by this migration, not a table, or already kept. */
    if (pre == NULL || pre->relkind != 'r' || s_oids_has(&u->backed, oid))
        return 0;
    if ((rc = s_dump_dir(p, u->m, &ctx.dump_dir, err)) != 0)
        return rc;
    rc = fl__backup_take(p->pg, &ctx, pre, lockmode, stmt_index, &rows, &b,
                         &where, &lerr);
    if (rows.why_whole)
        why_whole = rows.why_whole;
    if (rc == FL_ECONFLICT) {
        /*
         * This run already changed the table: it is backed up before the
         * first statement of the next run instead (the net restarts).
         */
        fl_buf_addf(&u->uncovered, "%s%s.%s: %s", u->nuncovered++ ?
                            "; " : "", pre->schema, pre->name,
                            "changed by an earlier statement of the same "
                            "migration before the one that destroys its data");
        s_oids_add(&u->forced, oid);
        fl_error_clear(&lerr);
        return 0;
    }
    if (rc != 0) {
        fl_error_move(err, &lerr);
        return rc;
    }
    b.replace = s_oids_has(&u->replaced, oid);
    u->backups = fl_reallocarray(u->backups, u->nbackups + 1, sizeof(b));
    u->backups[u->nbackups++] = b;
    s_oids_add(&u->backed, oid);
    if (b.dump) {
        p->partial = fl_reallocarray(p->partial, p->npartial + 1,
                                     sizeof(char *));
        p->partial[p->npartial++] = fl_strdup(b.path);
    }
    if (why_whole)
        fl__event(p, FL_STEP_BACKUP, FL_STEP_OK, u->m, fl__now_ms() - t0, NULL,
                  "backed up %s.%s to %s (the whole table: %s)", pre->schema,
                  pre->name, where, why_whole);
    else
        fl__event(p, FL_STEP_BACKUP, FL_STEP_OK, u->m, fl__now_ms() - t0, NULL,
                  "backed up %s.%s to %s", pre->schema, pre->name, where);
    free(where);
    return 0;
}

/*
 * Whether statement k of u may back up only the rows it changes (see
 * fl_stmt_t.row_where): one UPDATE or DELETE of its own table, seen
 * through, in the first run of the unit, and no later statement of the
 * migration destroys that table in another way.  NULL when it may, else
 * why not (a static string or st->row_why).
 */
static const char *
s_why_whole(const s_unit *u, size_t k)
{
    const fl_stmt_t *st = &u->stmts.items[k];

    if (st->ndestroys == 0 || !s_destroys_rows(st->destroys[0].kind))
        return "";
    if (st->row_where == NULL)
        return st->row_why ? st->row_why : "it is not a plain UPDATE or "
                                           "DELETE (a MERGE, an upsert, a "
                                           "data-modifying WITH)";
    if (st->ndestroys > 1)
        return "the statement changes more than one table";
    /* A run again backs up what the first missed whole, before its first
     * statement (u->forced): the others as the first run did. */
    if (st->opaque)
        return "the statement runs code flotilla cannot see into";
    if (st->destroys[0].table == NULL)
        return "the table it changes is not named in the statement";
    for (size_t j = k + 1; j < u->stmts.count; j++)
        for (size_t d = 0; d < u->stmts.items[j].ndestroys; d++)
            if (u->stmts.items[j].destroys[d].table &&
                strcmp(u->stmts.items[j].destroys[d].table,
                       st->destroys[0].table) == 0)
                return "a later statement of the migration changes it too";
    return NULL;
}

/*
 * The tables of the net with a column whose values lost a field: a
 * field of a composite type this transaction dropped (its domain or type
 * dropped with CASCADE, ALTER TYPE ... DROP ATTRIBUTE), the column of
 * that type, an array of it or a type that holds it.  Nothing else shows
 * it: no column of the table is dropped, no row written, nothing
 * rewritten.  Asked only when the transaction dropped an attribute of a
 * relation the net does not hold (a composite type's).
 */
static const char s_field_loss_sql[] =
    FL__TYPES_HOLDING(
    " SELECT c.reltype FROM pg_catalog.pg_class c"
    " WHERE c.oid = ANY ($1::pg_catalog.oid[]) AND c.relkind = 'c'")
    " SELECT DISTINCT f.attrelid" FL__COLUMNS_OF_TY;

/* "{1,2}": the OIDs of set as a SQL oid[] value, into out. */
static void
s_oids_text(const s_oids *set, fl_buf_t *out)
{
    fl_buf_adds(out, "{");
    for (size_t i = 0; i < set->n; i++)
        fl_buf_addf(out, "%s%u", i ? "," : "", set->v[i]);
    fl_buf_adds(out, "}");
}

/*
 * The tables (and composite types) with a column of one of the composite
 * types whose pg_class OIDs are types, of an array or a domain of one,
 * or of a type that holds one (s_field_loss_sql), added to out.
 */
static int
s_tables_of_types(fl_pipeline_t *p, const s_oids *types, s_oids *out,
                  fl_error_t *err)
{
    fl_buf_t text = FL_BUF_INIT(0);
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[1];
    int rc;

    if (types->n == 0)
        return 0;
    s_oids_text(types, &text);
    params[0] = fl_buf_str(&text);
    rc = fl_pg_query(p->pg, &r, s_field_loss_sql, 1, params, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        s_oids_add(out, (uint32_t)strtoul(fl_pg_value(&r, i, 0), NULL, 10));
    fl_pg_result_release(&r);
    fl_buf_release(&text);
    return rc;
}

/*
 * The tables whose columns the statement changes through a composite
 * type it names (ALTER TYPE ... DROP ATTRIBUTE, DROP TYPE ... CASCADE):
 * those of columns of that type, of an array or a domain of it, or of a
 * type that holds it (s_tables_of_types), into whole, restored whole
 * (u->replaced, as the net would have them).  Without them the
 * statement names no table, and only the net finds them, after it: the
 * migration then runs again.
 */
static int
s_type_tables(fl_pipeline_t *p, s_unit *u, const uint32_t *oids,
              const char *kinds, const int *why, size_t n, s_oids *whole,
              fl_error_t *err)
{
    s_oids types = {NULL, 0}, tables = {NULL, 0};
    int rc;

    for (size_t i = 0; i < n; i++)
        if (oids[i] != 0 && why[i] == 0 && kinds[i] == 'c')
            s_oids_add(&types, oids[i]);
    rc = s_tables_of_types(p, &types, &tables, err);
    for (size_t i = 0; rc == 0 && i < tables.n; i++) {
        s_oids_add(whole, tables.v[i]);
        /* Its values change where no counter shows: restored whole. */
        s_oids_add(&u->replaced, tables.v[i]);
    }
    s_oids_release(&types);
    s_oids_release(&tables);
    return rc;
}

int
fl__type_backups(fl_pipeline_t *p, const fl_stmt_t *st, char ***out,
                 size_t *n, fl_error_t *err)
{
    size_t cap = st->ndestroys + 1, m = 0;
    const char **schemas = fl_calloc(cap, sizeof(char *));
    const char **names = fl_calloc(cap, sizeof(char *));
    uint32_t *oids = fl_calloc(cap, sizeof(uint32_t));
    char *kinds = fl_calloc(cap, 1);
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    s_oids types = {NULL, 0}, tables = {NULL, 0};
    fl_buf_t text = FL_BUF_INIT(0);
    const char *params[1];
    int rc = 0;

    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < st->ndestroys; i++)
        if (st->destroys[i].table != NULL) {
            schemas[m] = st->destroys[i].schema;
            names[m++] = st->destroys[i].table;
        }
    if (m > 0)
        rc = fl__resolve(p, schemas, names, m, oids, kinds, err);
    /* A table as the statement names it; a composite type: the tables
     * s_type_tables finds for it. */
    for (size_t i = 0; rc == 0 && i < m; i++) {
        if (oids[i] != 0 && kinds[i] == 'c') {
            s_oids_add(&types, oids[i]);
            continue;
        }
        *out = fl_reallocarray(*out, *n + 1, sizeof(char *));
        (*out)[(*n)++] = schemas[i] ? fl_asprintf("%s.%s", schemas[i],
                                                  names[i])
                                    : fl_strdup(names[i]);
    }
    if (rc == 0)
        rc = s_tables_of_types(p, &types, &tables, err);
    if (rc == 0 && tables.n > 0) {
        /* Their names in one query; a composite type's column is not a
         * table and has none. */
        s_oids_text(&tables, &text);
        params[0] = fl_buf_str(&text);
        rc = fl_pg_query(p->pg, &r, "SELECT pg_catalog.format('%I.%I',"
                         " n.nspname, c.relname) FROM pg_catalog.pg_class c"
                         " JOIN pg_catalog.pg_namespace n ON n.oid"
                         " OPERATOR(pg_catalog.=) c.relnamespace WHERE c.oid"
                         " OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])"
                         " AND c.relkind IN ('r', 'p')", 1, params, err);
        for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
            *out = fl_reallocarray(*out, *n + 1, sizeof(char *));
            (*out)[(*n)++] = fl_strdup(fl_pg_value(&r, i, 0));
        }
        fl_pg_result_release(&r);
    }
    s_oids_release(&types);
    s_oids_release(&tables);
    fl_buf_release(&text);
    free(schemas);
    free(names);
    free(oids);
    free(kinds);
    return rc;
}

/*
 * Before statement k runs: resolves the tables it destroys data in (under
 * the search_path the migration has set by now), follows the catalog to
 * the tables that reaches, and backs up every one that existed before the
 * migration.  A table the statement writes and a later statement destroys
 * is backed up now, before this write.  Tables a statement rewrites on
 * purpose (and says so) are noted, so the net does not take the rewrite
 * for a TRUNCATE.  Runs on the pinned session.
 */
static int
s_prepare_statement(fl_pipeline_t *p, s_unit *u, size_t k, fl_error_t *err)
{
    const fl_stmt_t *st = &u->stmts.items[k];
    size_t cap = st->ndestroys + st->ntables + 1, n = 0;
    const char **schemas = fl_calloc(cap, sizeof(char *));
    const char **names = fl_calloc(cap, sizeof(char *));
    /* 0 destroys, 1 writes and a later one destroys, 2 rewrites, 3 writes */
    int *why = fl_calloc(cap, sizeof(int));
    uint32_t *oids = NULL;
    char *kinds = NULL;
    s_oids rows = {NULL, 0}, whole = {NULL, 0}, reach = {NULL, 0};
    json_t *dropped_schemas = json_array();
    int on_delete = 0, on_update = 0, truncate = 0;
    int rc = 0;

    for (size_t i = 0; i < st->ndestroys; i++) {
        const fl_destroy_t *d = &st->destroys[i];
        if (d->kind == FL_DESTROY_DROP_SCHEMA && d->schema) {
            json_array_append_new(dropped_schemas, json_string(d->schema));
            continue;
        }
        if (d->table == NULL)
            continue;
        schemas[n] = d->schema;
        names[n] = d->table;
        why[n++] = 0;
        on_delete |= d->kind == FL_DESTROY_DELETE;
        on_update |= d->kind == FL_DESTROY_UPDATE;
        truncate |= d->kind == FL_DESTROY_TRUNCATE && st->cascades;
    }
    for (size_t i = 0; i < st->ntables; i++) {
        const fl_table_ref_t *t = &st->tables[i];
        int later = 0;
        /*
         * A table this migration created has nothing to back up and no
         * rows to tell apart: not looked up (a name that still meant an
         * older table would only have its new rows recorded as added).
         */
        if (!t->writes || t->created || t->fresh)
            continue;
        schemas[n] = t->schema;
        names[n] = t->name;
        if (st->rewrites) {
            why[n++] = 2;
            continue;
        }
        /* Written now, destroyed later (by the same name): keep it now. */
        for (size_t j = k + 1; j < u->stmts.count && !later; j++)
            for (size_t d = 0; d < u->stmts.items[j].ndestroys && !later; d++)
                later = u->stmts.items[j].destroys[d].table &&
                        strcmp(u->stmts.items[j].destroys[d].table,
                               t->name) == 0;
        why[n++] = later ? 1 : 3;
    }
    if (n == 0 && json_array_size(dropped_schemas) == 0)
        goto cleanup;
    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0)
        goto cleanup;
    oids = fl_calloc(n + 1, sizeof(uint32_t));
    kinds = fl_calloc(n + 1, 1);
    if (n && (rc = fl__resolve(p, schemas, names, n, oids, kinds, err)) != 0)
        goto cleanup;
    if (json_array_size(dropped_schemas) &&
        (rc = s_schema_tables(p, dropped_schemas, &whole, err)) != 0)
        goto cleanup;
    if ((rc = s_type_tables(p, u, oids, kinds, why, n, &whole, err)) != 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (oids[i] == 0)
            continue; /* DROP ... IF EXISTS of nothing; a check reports it */
        if (why[i] != 0)
            s_oids_add(&u->named, oids[i]);
        if (why[i] == 2) {
            s_oids_add(&u->explained, oids[i]);
        } else if (why[i] == 3) {
            continue;
        } else if (kinds[i] == 'r' || kinds[i] == 'p') {
            int rowlevel = why[i] == 1;
            for (size_t d = 0; why[i] == 0 && d < st->ndestroys; d++)
                if (st->destroys[d].table &&
                    strcmp(st->destroys[d].table, names[i]) == 0)
                    rowlevel |= s_destroys_rows(st->destroys[d].kind);
            s_oids_add(rowlevel ? &rows : &whole, oids[i]);
        }
    }
    if (rows.n + whole.n == 0)
        goto cleanup;
    {
        s_oids roots = {NULL, 0};
        for (size_t i = 0; i < rows.n; i++)
            s_oids_add(&roots, rows.v[i]);
        for (size_t i = 0; i < whole.n; i++)
            s_oids_add(&roots, whole.v[i]);
        rc = s_reach(p, &roots, on_delete || truncate, on_update, truncate,
                     &reach, err);
        s_oids_release(&roots);
        if (rc != 0)
            goto cleanup;
    }
    /*
     * DML needs only writers kept out (EXCLUSIVE); DDL takes ACCESS
     * EXCLUSIVE anyway, so the backup takes it first.
     */
    {
        /*
         * The statement's own table, when it is an UPDATE or DELETE of
         * rows a predicate selects: only those rows (proven before
         * COMMIT, s_net), unless s_why_whole says otherwise.  Tables its
         * foreign keys reach are kept whole.
         */
        const char *whole_why = s_why_whole(u, k);
        uint32_t own = 0;
        if (whole_why == NULL || *whole_why != '\0')
            own = oids[0];
        else
            whole_why = NULL;
        if (own && kinds[0] == 'p')
            fl__event(p, FL_STEP_BACKUP, FL_STEP_STARTED, u->m, 0, NULL,
                      "statement %zu changes the partitioned table %s: its "
                      "partitions are backed up whole (an UPDATE may move "
                      "rows between them)", k + 1, names[0]);
        if (kinds[0] != 'r')
            own = 0;
        for (size_t i = 0; rc == 0 && i < reach.n; i++) {
            int mine = own != 0 && reach.v[i] == own;
            rc = s_backup_one(p, u, reach.v[i],
                              s_oids_has(&whole, reach.v[i])
                                  ? "ACCESS EXCLUSIVE" : "EXCLUSIVE",
                              (int)k, mine && whole_why == NULL ? st : NULL,
                              mine ? whole_why : NULL, err);
        }
    }
cleanup:
    json_decref(dropped_schemas);
    s_oids_release(&rows);
    s_oids_release(&whole);
    s_oids_release(&reach);
    free(schemas);
    free(names);
    free(why);
    free(oids);
    free(kinds);
    return rc;
}

static int
s_field_loss(fl_pipeline_t *p, const fl_net_touched_t *t,
             const fl_net_snap_t *pre, s_oids *out, fl_error_t *err)
{
    s_oids types = {NULL, 0};
    int rc;

    for (size_t i = 0; i < t->n; i++)
        if (t->items[i].dropped && fl__net_find(pre, t->items[i].oid) == NULL)
            s_oids_add(&types, t->items[i].oid);
    rc = s_tables_of_types(p, &types, out, err);
    s_oids_release(&types);
    return rc;
}

/*
 * track_counts off (the server's, the database's, the role's, or a SET of
 * the migration's): the row counts of the transaction that tell the net
 * which tables a statement changed stay 0.  Before, a trigger's deletes
 * in another table went unseen, unbacked up, and the rollback "proved"
 * with the rows gone (found by an audit).  Limit: a migration that turns
 * it off and back on within itself (superuser only) is not seen.
 */
int
fl__blind_refusal(const fl_migration_t *m, fl_error_t *err)
{
    int rc = FL_ERR(err, FL_EINVAL, "%s ran with track_counts off: flotilla "
                    "cannot tell which tables its statements changed",
                    m->file);

    fl_error_set_detail(err, "Flotilla learns from the transaction's row "
                        "counts (pg_stat_get_xact_tuples_*) which tables "
                        "lost rows, to back them up; PostgreSQL keeps them "
                        "only with track_counts on.  What the migration did "
                        "was rolled back before COMMIT.");
    fl_error_set_hint(err, "Turn track_counts on (its default) for the "
                           "database or the server, or remove the SET that "
                           "turns it off.");
    return rc;
}

/*
 * The net, after the last statement and before COMMIT: compares the
 * managed relations with the snapshot taken when the run started.  A
 * table that existed before is destroyed when it is gone, its storage
 * was replaced (TRUNCATE, or a rewrite no statement announced), this
 * transaction updated or deleted rows in it, or a column it had was
 * dropped (a type change that keeps the data needs no rewrite, one that
 * does not is a rewrite); if no backup of this run covers it, it is listed in
 * u->uncovered and added to u->forced.  Sequences that were dropped,
 * restarted or moved back have their old position recorded (no restart
 * is needed for them).
 */
static int
s_net(fl_pipeline_t *p, s_unit *u, fl_net_snap_t *post, fl_error_t *err)
{
    fl_net_touched_t touched = {NULL, 0, NULL, NULL, NULL, 0};
    fl_backup_ctx_t sctx = {u->m->version, p->opts.bundle_id, NULL, 0,
                            p->target};
    s_oids lost = {NULL, 0};
    int rc;

    if ((rc = fl__net_after(p->pg, &p->session, p->target, p->own_tables,
                            &u->pre, post, &touched, err)) != 0)
        goto cleanup;
    if (touched.own || touched.foreign || touched.lo || touched.blind) {
        u->own = 1;
        rc = touched.own       ? fl__own_refusal(u->m, touched.own, err)
             : touched.foreign ? fl__foreign_refusal(u->m, touched.foreign, err)
             : touched.lo      ? fl__lo_refusal(u->m, touched.lo, err)
                               : fl__blind_refusal(u->m, err);
        goto cleanup;
    }
    if ((rc = s_field_loss(p, &touched, &u->pre, &lost, err)) != 0)
        goto cleanup;
    {
        fl_buf_t b = FL_BUF_INIT(0);

        for (size_t i = 0; i < touched.n; i++)
            fl_buf_addf(&b, "%s%u", i ? "," : "{", touched.items[i].oid);
        fl_buf_adds(&b, touched.n ? "}" : "{}");
        free(u->touched);
        u->touched = fl_buf_detach(&b);
    }
    for (size_t i = 0; i < u->pre.n; i++) {
        const fl_net_rel_t *b = &u->pre.rels[i];
        const fl_net_rel_t *a = fl__net_find(post, b->oid);
        char reason[160] = "";

        if (b->relkind == 'S') {
            /* Against the first run: sequences ignore savepoints. */
            const fl_net_rel_t *f = fl__net_find(&u->first, b->oid);
            const char *why = NULL, *after = NULL;
            long long was = 0, is = 0;
            if (f == NULL)
                f = b;
            was = f->seq_last ? strtoll(f->seq_last, NULL, 10) : 0;
            is = a && a->seq_last ? strtoll(a->seq_last, NULL, 10) : 0;
            /*
             * Where the migration left it (after) tells, at rollback,
             * whether anyone used it since: a restart can move it forward
             * too (setval, then an ALTER SEQUENCE that gives it new
             * storage).
             */
            if (a == NULL)
                why = "dropped";
            else if (a->relfilenode != f->relfilenode)
                why = "restarted";
            else if (f->seq_last && (a->seq_last == NULL || is < was))
                why = "moved back";
            else if (a->seq_last && (f->seq_last == NULL || is > was))
                why = "advanced";
            if (a != NULL)
                after = a->seq_last;
            /* A repeatable migration is never rolled back: no position
             * is kept for it. */
            if (why && (f->seq_last || after) && !u->m->repeatable &&
                (rc = fl__backup_sequence(p->pg, &sctx, f, after, why,
                                          err)) != 0)
                goto cleanup;
            continue;
        }
        if (b->relkind != 'r')
            continue;
        if (a == NULL)
            snprintf(reason, sizeof(reason), "dropped");
        else if (a->relfilenode != b->relfilenode &&
                 !s_oids_has(&u->explained, b->oid))
            snprintf(reason, sizeof(reason), "its storage was replaced "
                     "(TRUNCATE or a rewrite)");
        else if (a->n_del > b->n_del)
            snprintf(reason, sizeof(reason), "%lld rows deleted",
                     (long long)(a->n_del - b->n_del));
        else if (a->n_upd > b->n_upd)
            snprintf(reason, sizeof(reason), "%lld rows updated",
                     (long long)(a->n_upd - b->n_upd));
        else if (fl__net_lost_column(&touched, b))
            snprintf(reason, sizeof(reason), "a column dropped");
        else if (s_oids_has(&lost, b->oid))
            snprintf(reason, sizeof(reason), "a field of a column's type "
                     "dropped");
        if (reason[0] == '\0')
            continue;
        if (s_oids_has(&lost, b->oid) && !s_oids_has(&u->replaced, b->oid))
            /*
             * Backed up or not (a backup taken after the field went lacks
             * it), run again with the whole table backed up first and
             * restored whole.
             */
            s_oids_add(&u->replaced, b->oid);
        else if (s_oids_has(&u->backed, b->oid))
            continue;
        fl_buf_addf(&u->uncovered, "%s%s.%s: %s",
                            u->nuncovered++ ? "; " : "", b->schema, b->name,
                            reason);
        s_oids_add(&u->forced, b->oid);
    }
    /*
     * A backup of rows covers its table only once proven to hold exactly
     * the rows the migration changed there; if not (a volatile subquery,
     * a trigger that changed other rows of the table, a later statement),
     * the whole table is backed up in the run again.
     */
    for (size_t i = 0; i < u->nbackups; i++) {
        fl_backup_t *bk = &u->backups[i];
        const fl_net_rel_t *b = fl__net_find(&u->pre, bk->oid);
        char *why = NULL;
        if (!bk->rows || b == NULL)
            continue;
        rc = fl__backup_rows_prove(p->pg, bk, b, fl__net_find(post, bk->oid),
                                   &touched, &why, err);
        if (rc != 0)
            goto cleanup;
        if (why == NULL)
            continue;
        fl_buf_addf(&u->uncovered, "%s%s.%s: the backup of the rows its "
                    "WHERE clause selected does not cover the change (%s)",
                    u->nuncovered++ ? "; " : "", b->schema, b->name, why);
        s_oids_add(&u->forced, b->oid);
        free(why);
    }
    rc = 0;
cleanup:
    s_oids_release(&lost);
    fl__net_touched_release(&touched);
    return rc;
}

int
fl__own_refusal(const fl_migration_t *m, const char *own, fl_error_t *err)
{
    int rc = FL_ERR(err, FL_EINVAL, "%s changed flotilla's own table%s %s",
                    m->file, strchr(own, ',') ? "s" : "", own);

    fl_error_set_detail(err, "Flotilla keeps its ledger, the schema changes "
                        "it recorded and the backups of earlier migrations "
                        "in the target; a migration that changes them (by a "
                        "statement, or a function or trigger it runs) could "
                        "have a migration applied twice, or a rollback "
                        "restore what it wrote.");
    fl_error_set_hint(err, "Remove what writes schema flotilla or "
                      "flotilla_backup (the statement, or the trigger or "
                      "function it runs).");
    return rc;
}

int
fl__foreign_refusal(const fl_migration_t *m, const char *foreign,
                    fl_error_t *err)
{
    int rc = FL_ERR(err, FL_EINVAL, "%s wrote to foreign table%s %s", m->file,
                    strchr(foreign, ',') ? "s" : "", foreign);

    fl_error_set_detail(err, "A foreign table's rows live on another server "
                        "(postgres_fdw or another foreign-data wrapper): "
                        "Flotilla can neither back them up nor put them back, "
                        "so no rollback could undo the migration.  What "
                        "wrote them was rolled back before COMMIT, the remote "
                        "change with it.");
    fl_error_set_hint(err, "Change the remote rows on the server that holds "
                      "them, outside the migration; a migration may read a "
                      "foreign table.");
    return rc;
}

int
fl__lo_refusal(const fl_migration_t *m, const char *lo, fl_error_t *err)
{
    int rc = FL_ERR(err, FL_EINVAL, "%s changed large objects (%s)", m->file,
                    lo);

    fl_error_set_detail(err, "Large objects (lo_unlink, lowrite, lo_put, "
                        "lo_truncate: the pg_largeobject catalog) are not "
                        "backed up by Flotilla, so no rollback could put them "
                        "back.  What changed them was rolled back before "
                        "COMMIT.");
    fl_error_set_hint(err, "Copy what must be kept into a table first "
                      "(lo_get() into a bytea column, in an earlier "
                      "migration), or change the large objects outside the "
                      "migration; making new ones is allowed.");
    return rc;
}

int
fl__own_tables(fl_pipeline_t *p, fl_error_t *err)
{
    /* Read again by every run: a ledger made or upgraded since counts. */
    fl_free(&p->own_tables);
    return fl_pg_query_value(p->pg, &p->own_tables,
        "SELECT coalesce(pg_catalog.array_agg(c.relname ORDER BY c.relname),"
        " '{}')::pg_catalog.text FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'flotilla' AND c.relkind IN ('r', 'p')",
        0, NULL, err);
}

int
fl__tenant_casts(fl_pipeline_t *p, fl_error_t *err)
{
    char *v = NULL;
    int rc = fl_pg_query_value(p->pg, &v,
        "SELECT pg_catalog.string_agg(pg_catalog.format('%s AS %s"
        " (function %s, owned by %s)', c.castsource::pg_catalog.regtype,"
        " c.casttarget::pg_catalog.regtype,"
        " c.castfunc::pg_catalog.regprocedure, r.rolname), '; ')"
        " FROM pg_catalog.pg_cast c"
        " JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) c.castfunc"
        " JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=)"
        " f.proowner"
        " WHERE c.castmethod OPERATOR(pg_catalog.=) 'f' AND NOT r.rolsuper"
        " AND r.rolname OPERATOR(pg_catalog.<>) CURRENT_USER", 0, NULL, err);

    if (rc != 0 || v == NULL) {
        free(v);
        return rc;
    }
    /* Before, the backup and the proof ran such a cast as the superuser
     * flotilla connects as (found by an audit). */
    rc = FL_ERR(err, FL_EINVAL, "the database holds casts whose function "
                "a role other than a superuser or flotilla's own owns: %s", v);
    fl_error_set_detail(err, "Flotilla converts values to text in its "
                             "backups, proofs and checks; PostgreSQL would "
                             "run such a cast there with flotilla's rights, "
                             "so the function's owner could act as flotilla's "
                             "role.  Nothing ran.");
    fl_error_set_hint(err, "Drop the cast, or have a superuser read its "
                           "function and take it over (ALTER FUNCTION ... "
                           "OWNER TO a superuser); or run flotilla as that "
                           "owner.");
    free(v);
    return rc;
}

int
fl__own_check(fl_pipeline_t *p, const fl_migration_t *m, int blind,
              fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[1] = {p->own_tables ? p->own_tables : "{}"};
    int rc = fl_pg_query(p->pg, &r, fl__net_own_sql, 1, params, err);

    if (rc == 0 && r.nrows == 1 && fl_pg_value(&r, 0, 0) != NULL)
        rc = fl__own_refusal(m, fl_pg_value(&r, 0, 0), err);
    else if (rc == 0 && blind && r.nrows == 1 && fl_pg_value(&r, 0, 3) &&
             strcmp(fl_pg_value(&r, 0, 3), "t") == 0)
        rc = fl__blind_refusal(m, err);
    else if (rc == 0 && r.nrows == 1 && fl_pg_value(&r, 0, 1) != NULL)
        rc = fl__foreign_refusal(m, fl_pg_value(&r, 0, 1), err);
    else if (rc == 0 && r.nrows == 1 && fl_pg_value(&r, 0, 2) != NULL)
        rc = fl__lo_refusal(m, fl_pg_value(&r, 0, 2), err);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * A schema target's migration (or down) changes its schema and public,
 * which its net watches and its backups cover, and nothing of another
 * schema (a tenant's migration reaching another tenant's tables, by a
 * name, a DO block, a function, a trigger or a cascade): refused, before
 * COMMIT.
 */
int
fl__outside_check(fl_pipeline_t *p, const fl_migration_t *m,
                  char *const before[2], const char *savepoint,
                  fl_error_t *err)
{
    fl_buf_t what;
    int n = 0, rc;

    fl_buf_init(&what, 0);
    rc = fl__net_outside(p->pg, p->target, before, savepoint, &what, &n, err);
    if (rc == 0 && n > 0) {
        rc = FL_ERR(err, FL_EINVAL, "%s changed %d object%s outside its "
                    "target schema \"%s\"", m->file, n, n == 1 ? "" : "s",
                    p->target);
        fl_error_set_detail(err, "%s.", fl_buf_str(&what));
        fl_error_set_hint(err, "A schema target's migration may change its "
                          "own schema and public only: no backup or rollback "
                          "of this target covers another schema.  Apply a "
                          "change that spans schemas to the whole database "
                          "(without --schema).");
    }
    fl_buf_release(&what);
    return rc;
}

/* The schema of a schema target's scope: its own, public, pg_temp. */
static int
s_in_scope(const fl_pipeline_t *p, const char *schema)
{
    return strcmp(schema, p->target) == 0 || strcmp(schema, "public") == 0 ||
           strcmp(schema, "pg_temp") == 0;
}

/*
 * The schema an unqualified relation name resolves to under the
 * session's settings now (the migration's: every name below is
 * qualified), "" for this session's temporary schema; *out NULL when no
 * relation has that name.
 */
static int
s_resolve_schema(fl_pg_t *pg, const char *name, char **out, fl_error_t *err)
{
    const char *params[1] = {name};

    /* One row always: NULL when nothing has the name (a scalar subquery;
     * without it the query returned no row and the check failed). */
    return fl_pg_query_value(pg, out,
        "SELECT (SELECT CASE WHEN n.oid OPERATOR(pg_catalog.=)"
        " pg_catalog.pg_my_temp_schema() THEN '' ELSE n.nspname::pg_catalog.text"
        " END FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
        " WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
        "pg_catalog.quote_ident($1::pg_catalog.text)))", 1, params, err);
}

int
fl__reach_check(fl_pipeline_t *p, const fl_migration_t *m,
                const fl_stmt_t *st, int resolve, fl_error_t *err)
{
    fl_buf_t what;
    int n = 0, rc = 0, pinned = !p->session.in_migration;

    if (!p->target[0] || !st->no_transaction)
        return 0;
    fl_buf_init(&what, 0);
    if (st->reach_all) {
        fl_buf_addf(&what, "%s reaches every schema", st->kind ? st->kind
                                                               : "it");
        n++;
    }
    for (size_t i = 0; rc == 0 && i < st->nreach; i++) {
        const fl_check_rel_t *r = &st->reach[i];
        char *schema = NULL;

        if (r->schema == NULL && r->name != NULL && resolve &&
            (rc = fl__session_enter(p->pg, &p->session, err)) == 0 &&
            (rc = s_resolve_schema(p->pg, r->name, &schema, err)) != 0)
            fl_error_prefix(err, "%s:%d: could not tell which schema %s is "
                            "in: ", m->file, st->line, r->name);
        if (rc == 0 && r->name == NULL && r->schema != NULL &&
            !s_in_scope(p, r->schema))
            fl_buf_addf(&what, "%sthe schema %s", n++ ? "; " : "", r->schema);
        else if (rc == 0 && r->schema != NULL && !s_in_scope(p, r->schema))
            fl_buf_addf(&what, "%s%s.%s", n++ ? "; " : "", r->schema, r->name);
        else if (rc == 0 && schema != NULL && *schema != '\0' &&
                 !s_in_scope(p, schema))
            fl_buf_addf(&what, "%s%s, which is %s.%s where it runs",
                        n++ ? "; " : "", r->name, schema, r->name);
        free(schema);
    }
    /* Back to the state it was called in. */
    if (rc == 0 && pinned)
        rc = fl__session_leave(p->pg, &p->session, err);
    if (rc == 0 && n > 0) {
        rc = FL_ERR(err, FL_EINVAL, "%s:%d: %s reaches outside its target "
                    "schema \"%s\", and cannot run in a transaction",
                    m->file, st->line, st->kind ? st->kind : "a statement",
                    p->target);
        fl_error_set_detail(err, "%s.  A statement that runs outside a "
                            "transaction cannot be undone or checked after "
                            "it ran, so it is refused before.",
                            fl_buf_str(&what));
        fl_error_set_hint(err, "A schema target's migration may change its "
                          "own schema and public only.  Name the tables of "
                          "this schema, or apply a change that spans "
                          "schemas to the whole database (without "
                          "--schema).");
    }
    fl_buf_release(&what);
    return rc;
}

/*
 * Before COMMIT: each backup learns which rows the migration changed, and
 * rows inserted into tables no statement names (a trigger's, a DO
 * block's) are recorded so that a rollback removes them.
 */
static int
s_reconcile(fl_pipeline_t *p, s_unit *u, const fl_net_snap_t *post,
            fl_error_t *err)
{
    fl_backup_ctx_t ctx = {u->m->version, p->opts.bundle_id, NULL, 0,
                           p->target};

    for (size_t i = 0; i < u->nbackups; i++) {
        const fl_backup_t *b = &u->backups[i];
        int rc = fl__backup_reconcile(p->pg, b, fl__net_find(&u->pre, b->oid),
                                      fl__net_find(post, b->oid), err);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < u->pre.n; i++) {
        const fl_net_rel_t *b = &u->pre.rels[i];
        const fl_net_rel_t *a = fl__net_find(post, b->oid);
        char *what = NULL;
        int rc;
        /*
         * A table an earlier unit of a no-transaction migration backed up
         * is tracked even when named: its backup counted added rows only
         * in its own transaction (before, a later INSERT's row stayed
         * after the rollback: found by an audit).
         */
        if (b->relkind != 'r' || a == NULL || a->n_ins == b->n_ins ||
            s_oids_has(&u->backed, b->oid) ||
            (s_oids_has(&u->named, b->oid) &&
             !s_oids_has(&u->backed_before, b->oid)) ||
            u->m->repeatable) /* never rolled back: rows it adds stay */
            continue;
        rc = fl__backup_track_inserts(p->pg, &ctx, b, a, &what, err);
        if (rc != 0)
            return rc;
        fl__event(p, FL_STEP_BACKUP, FL_STEP_OK, u->m, 0, NULL, "%s.%s: %s",
                  b->schema, b->name, what);
        free(what);
    }
    return 0;
}

/* After COMMIT: the dump files of the committed backups get their names. */
static void
s_publish_files(fl_pipeline_t *p, int committed)
{
    for (size_t i = 0; i < p->npartial; i++) {
        char *part = fl_asprintf("%s.partial", p->partial[i]);
        if (committed ? rename(part, p->partial[i]) != 0 : unlink(part) != 0)
            fl_log_warning("pipeline", "could not %s backup file \"%s\": %s",
                           committed ? "publish" : "remove", part,
                           strerror(errno));
        free(part);
        free(p->partial[i]);
    }
    fl_free(&p->partial);
    p->npartial = 0;
}

/* Why one attempt of a unit stopped. */
typedef enum {
    S_OK,
    S_REFUSED,  /* validation: nothing of this unit changed */
    S_FAILED,   /* a statement, a backup or the ledger failed */
    S_COMMITTED, /* COMMIT ran, with the ledger row, and flotilla's own
                    query after it failed (the pins, which a signal's
                    cancel can reach; the connection lost after COMMIT
                    was sent, see fl__commit_in_doubt): the unit's work
                    stays */
    S_IN_DOUBT  /* the connection was lost when COMMIT was sent, and
                   whether it ran could not be learnt */
} s_outcome;

/*
 * After a unit's COMMIT failed with the connection lost: settles
 * *committed from the ledger (fl__commit_in_doubt), or, when that cannot
 * be learnt, says so in err and sets *outcome to S_IN_DOUBT.
 */
static void
s_settle_commit(fl_pipeline_t *p, const fl_ledger_record_t *rec,
                int *committed, s_outcome *outcome, fl_error_t *err)
{
    fl_error_t why = FL_ERROR_INIT;

    if (fl_pg_is_open(p->pg))
        return;
    if (fl__commit_in_doubt(p, rec->m, rec->status, 0,
                            rec->statements_done, committed, &why) != 0) {
        *outcome = S_IN_DOUBT;
        fl_error_set_detail(err, "The connection was lost when the COMMIT "
                            "of %s was sent, and whether it committed could "
                            "not be learnt: %s", rec->m->file, why.message);
        fl_error_set_hint(err, "flotilla status reads the ledger: it says "
                          "whether %s is applied.", rec->m->file);
    }
    fl_error_clear(&why);
}

/*
 * Raises the high-water mark of the release being applied: the highest
 * sequence applied on its channel, with that bundle's id and signer.  An
 * older release applied by override leaves the mark where it is.
 */
static int
s_mark_release(fl_pipeline_t *p, fl_error_t *err)
{
    char seq[24];
    const char *params[5];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    snprintf(seq, sizeof(seq), "%lld",
             (long long)fl_bundle_sequence(p->release));
    params[0] = fl_bundle_channel(p->release);
    params[1] = seq;
    params[2] = fl_bundle_id(p->release);
    params[3] = fl_bundle_signer(p->release);
    params[4] = p->target;
    rc = fl_pg_query(p->pg, &r,
        "INSERT INTO flotilla.release_marks (channel, sequence, bundle_id,"
        " signer, target) VALUES ($1, $2::pg_catalog.int8, $3, $4, $5)"
        " ON CONFLICT (target, channel) DO UPDATE SET sequence ="
        " EXCLUDED.sequence,"
        " bundle_id = EXCLUDED.bundle_id, signer = EXCLUDED.signer,"
        " updated_at = pg_catalog.clock_timestamp()"
        " WHERE release_marks.sequence OPERATOR(pg_catalog.<) EXCLUDED.sequence",
        5, params, err);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * One attempt at statements [from, to) of u in one transaction, from
 * BEGIN to COMMIT: validation (first unit only), the net's snapshot, a
 * savepoint, then per statement its backups, checks and the statement;
 * the verify statements (last unit only); the net; at most one restart
 * behind the savepoint with the tables the net found backed up first;
 * reconciliation of the backups; the ledger row (applied, or for a
 * no-transaction migration its progress); COMMIT.
 */
static int
s_unit_once(fl_pipeline_t *p, s_unit *u, size_t from, size_t to, int notx,
            s_outcome *outcome, int *stage, fl_error_t *err)
{
    const fl_migration_t *m = u->m;
    fl_net_snap_t post = {NULL, 0};
    int rc, committed = 0;

    /*
     * The managed schemas held no sequence at the last unit's COMMIT
     * (the census, whole-database targets: a schema target's net also
     * reads public): no position to read before this one.
     */
    int no_sequence = p->target[0] == '\0' &&
                      p->kinds_committed != FL_SCHEMA_KINDS_ASK &&
                      !(p->kinds_committed & FL_SCHEMA_KIND_SEQUENCE);

    /* Known again only if this unit's COMMIT brings the census with it. */
    p->schema_kinds = p->kinds_committed = FL_SCHEMA_KINDS_ASK;
    /* What a no-transaction statement SETs LOCAL ends with its COMMIT. */
    p->session.session_level = notx;

    /*
     * BEGIN, the timeouts and, when no validate statement runs before the
     * net's snapshot, the savepoint a restart goes back to: one round
     * trip.
     */
    int early_savepoint = notx || m->validate == NULL;

    *outcome = S_FAILED;
    *stage = FL_STEP_VALIDATE;
    /* Before BEGIN: reading a position locks the sequence (net.c). */
    fl__net_positions_release(&u->seqpos);
    if (!no_sequence &&
        (rc = fl__net_positions(p->pg, p->target, &u->seqpos, err)) != 0)
        return rc;
    if (m->validate == NULL && !p->session.in_migration) {
        /*
         * Nothing to run between BEGIN and the net's snapshot: BEGIN,
         * the savepoint, the timeouts and the snapshot in one round trip.
         */
        char lt[24], st[24];

        fl__timeout_values(p, m, lt, st);
        if ((rc = fl__net_begin(p->pg, lt, st, p->target, &u->seqpos,
                                &u->pre, err)) != 0)
            return rc;
        early_savepoint = -1;
    } else if ((rc = fl__begin_with_timeouts(p, m, early_savepoint
                                                 ? "BEGIN; SAVEPOINT "
                                                   "flotilla_run; "
                                                 : "BEGIN; ", 1, err)) != 0) {
        return rc;
    }
    if (!notx) {
        *outcome = S_REFUSED;
        if ((rc = fl__custom_validate(p, m, NULL, err)) != 0)
            return rc;
        *outcome = S_FAILED;
        fl__event(p, FL_STEP_VALIDATE, FL_STEP_OK, m, fl__now_ms() - u->t0, NULL,
                  "%zu statement%s parsed and linted%s; live checks run before "
                  "each statement", u->stmts.count,
                  u->stmts.count == 1 ? "" : "s",
                  m->validate ? ", validate statements hold" : "");
        u->step0 = fl__now_ms();
        fl__event(p, FL_STEP_EXECUTE, FL_STEP_STARTED, m, 0, NULL,
                  "executing %s", m->file);
    }
    if (early_savepoint >= 0 &&
        ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
         (rc = fl__net_snapshot(p->pg, p->target, &u->seqpos, &u->pre,
                                err)) != 0 ||
         (!early_savepoint &&
          (rc = fl_pg_exec(p->pg, "SAVEPOINT flotilla_run", err)) != 0)))
        return rc;
    if (p->target[0] &&
        (rc = fl__net_outside_before(p->pg, p->target, u->outside, err)) != 0)
        return rc;
    /* What a restart goes back to, as the savepoint does on the server. */
    fl__session_mark_release(&u->mark);
    fl__session_mark(&p->session, &u->mark);

    for (;;) {
        *stage = FL_STEP_BACKUP;
        for (size_t i = 0; i < u->forced.n; i++)
            if ((rc = s_backup_one(p, u, u->forced.v[i], "EXCLUSIVE", -1,
                                   NULL, NULL, err)) != 0)
                return rc;
        for (size_t i = from; i < to; i++) {
            *stage = FL_STEP_BACKUP;
            if ((rc = s_prepare_statement(p, u, i, err)) != 0)
                return rc;
            *stage = FL_STEP_VALIDATE;
            *outcome = S_REFUSED;
            if ((rc = fl__run_checks(p, u->m, &u->stmts, i, NULL, err)) != 0)
                return rc;
            *outcome = S_FAILED;
            *stage = FL_STEP_EXECUTE;
            if ((rc = fl__run(p, m, &u->stmts, (int)i, 1, 0, &u->stats,
                              err)) != 0)
                return rc;
            u->stats.done = (int)i + 1;
        }
        /*
         * Deferred constraints and constraint triggers fire now, under
         * the migration's settings, not at COMMIT after the net and the
         * proof: what they changed was never seen, so never backed up or
         * put back, and their unqualified names failed under flotilla's
         * pinned path (found by an audit).
         */
        if (to == u->stmts.count &&
            ((rc = fl__session_enter(p->pg, &p->session, err)) != 0 ||
             (rc = fl_pg_exec(p->pg, "SET CONSTRAINTS ALL IMMEDIATE",
                              err)) != 0))
            return rc;
        *stage = FL_STEP_VERIFY_AFTER;
        if (to == u->stmts.count && (rc = fl__verify_statements(p, m, err)) != 0)
            return rc;
        fl__net_snap_release(&post);
        u->own = 0;
        if ((rc = s_net(p, u, &post, err)) != 0) {
            if (u->own)
                *outcome = S_REFUSED;
            goto cleanup;
        }
        if (p->target[0] && (rc = fl__outside_check(p, m, u->outside,
                                                    "flotilla_run", err)) != 0) {
            *outcome = rc == FL_EINVAL ? S_REFUSED : S_FAILED;
            goto cleanup;
        }
        if (u->nuncovered == 0)
            break;
        if (m->repeatable) {
            *outcome = S_REFUSED;
            rc = FL_ERR(err, FL_EINVAL, "repeatable migration %s destroyed "
                        "data", m->file);
            fl_error_set_detail(err, "%s.  A repeatable migration is never "
                                "rolled back, so Flotilla keeps no backup of "
                                "what it destroys.",
                                fl_buf_str(&u->uncovered));
            fl_error_set_hint(err, "Move what destroys data into a "
                                   "versioned migration.");
            goto cleanup;
        }
        if (u->restarts > 0) {
            *outcome = S_REFUSED;
            rc = FL_ERR(err, FL_EINVAL, "%s destroyed data that no backup "
                        "covers, even when run again with those tables "
                        "backed up first", m->file);
            fl_error_set_detail(err, "%s.", fl_buf_str(&u->uncovered));
            fl_error_set_hint(err, "The statements that reach these tables "
                              "(a DO block, a function, a trigger) destroyed "
                              "different data on each run.  Write them out "
                              "as plain statements, or split the migration.");
            goto cleanup;
        }
        /*
         * The net caught what the analyser could not see (a trigger, a DO
         * block, a cascade through the catalog): undo the run, and run it
         * again with those tables backed up before the first statement.
         */
        fl__event(p, FL_STEP_BACKUP, FL_STEP_RETRY, m, 0, NULL,
                  "%s destroyed data in tables no backup covered (%s); running "
                  "it again with them backed up first", m->file,
                  fl_buf_str(&u->uncovered));
        u->restarts++;
        /* What it found is known; the next run takes its own. */
        fl__net_snap_release(&post);
        if ((rc = fl_pg_exec(p->pg, "ROLLBACK TO SAVEPOINT flotilla_run",
                             err)) != 0)
            goto cleanup;
        if (!notx)
            fl__forget_prepared(p, &u->stmts, 1);
        p->session.in_migration = 0;
        fl__session_restore(&p->session, &u->mark);
        fl__session_mark(&p->session, &u->mark);
        s_publish_files(p, 0);
        u->stats.done = (int)from;
        {
            s_oids forced = u->forced;
            u->forced.v = NULL;
            u->forced.n = 0;
            s_keep_first(u);
            s_unit_reset_run(u);
            u->forced = forced;
        }
        if ((rc = fl__net_snapshot(p->pg, p->target, &u->seqpos, &u->pre,
                                   err)) != 0)
            goto cleanup;
    }
    *stage = FL_STEP_BACKUP;
    if ((rc = s_reconcile(p, u, &post, err)) != 0)
        goto cleanup;
    *stage = FL_STEP_VERIFY_AFTER;
    {
        int last = to == u->stmts.count;
        fl_ledger_record_t rec = {m, p->opts.bundle_id, p->opts.rollout_id,
                                  p->opts.agent,
                                  notx && !last ? "running" : "applied",
                                  !notx, u->stats.done,
                                  (int)u->stmts.count, fl__now_ms() - u->t0,
                                  u->stats.lock_wait_ms, u->stats.retries,
                                  NULL, NULL, NULL, p->target, NULL, 0};
        fl_ledger_step_t row;
        fl_pg_step_t steps[7] = {{NULL, "COMMIT", 0, NULL, NULL}};
        fl_pg_result_t census = FL_PG_RESULT_INIT, dirty = FL_PG_RESULT_INIT,
                       settled = FL_PG_RESULT_INIT;
        const char *scope[1] = {fl__scope(p)};
        const char *touched[1] = {u->touched ? u->touched : "{}"};
        const char *target[1] = {p->target};

        /*
         * The ledger row, the schema's census (which kinds of object the
         * snapshot after it must describe, see fl_schema_record_after),
         * the relations it may have changed (whose signatures that
         * snapshot computes: fl_schema_dirty_sql), COMMIT and the pins
         * again (a statement may have SET a session value) in one round
         * trip; the release's mark commits with the migration that
         * applies it.  Before COMMIT, the target's lock must still be
         * held (fl__lock_held_sql, planned once as the census).  A
         * failure leaves the transaction open (aborted) for the caller's
         * rollback.
         */
        if (last && p->release &&
            (rc = fl__lock_check(p, m, 0, err)) == FL_EINVAL)
            *outcome = S_REFUSED;
        if (rc == 0 && last && p->release &&
            (rc = fl_ledger_record(p->pg, &rec, err)) == 0)
            rc = s_mark_release(p, err);
        if (rc == 0 && last && p->release)
            rc = fl_pg_query_prepared(p->pg, &dirty, "flotilla_schema_dirty",
                                      fl_schema_dirty_sql, 1, touched, err);
        if (rc == 0 && last && p->release) {
            rc = fl_pg_exec(p->pg, "COMMIT", err);
            committed = rc == 0;
            if (rc != 0)
                s_settle_commit(p, &rec, &committed, outcome, err);
            if (committed)
                fl_schema_dirty_add(&p->dirty, dirty.nrows == 1
                                    ? fl_pg_value(&dirty, 0, 0) : NULL);
            if (rc == 0)
                rc = fl__session_repin(p->pg, &p->session, err);
        } else if (rc == 0) {
            fl_ledger_record_step(&row, &rec);
            steps[0] = row.step;
            /*
             * Its plan made once a connection, as the snapshot's is: under
             * the search_path it was made with (the snapshot's pin), or
             * PostgreSQL 15 analyzes and plans the census again.
             */
            steps[1] = (fl_pg_step_t){"flotilla_generic_plans",
                                      "SELECT pg_catalog.set_config("
                                      "'plan_cache_mode', 'force_generic_plan',"
                                      " true), pg_catalog.set_config("
                                      "'search_path', '', true)", 0, NULL,
                                      NULL};
            steps[2] = (fl_pg_step_t){"flotilla_lock_held", fl__lock_held_sql,
                                      1, target, NULL};
            steps[3] = (fl_pg_step_t){"flotilla_schema_census",
                                      fl_schema_census_sql, 1, scope, &census};
            steps[4] = (fl_pg_step_t){"flotilla_schema_dirty",
                                      fl_schema_dirty_sql, 1, touched, &dirty};
            steps[5] = (fl_pg_step_t){NULL, "COMMIT", 0, NULL, NULL};
            if (notx)
                fl__session_settle_step(&p->session, &steps[6], &settled);
            else
                fl__session_repin_step(&p->session, &steps[6]);
            rc = fl_pg_batch(p->pg, steps, 7, err);
            if (rc == 0 && notx)
                fl__session_settled(&p->session, &settled);
            fl_pg_result_release(&settled);
            /*
             * Committed when COMMIT ran, even if the pins then failed; a
             * lost connection does not say whether it ran.  A COMMIT that
             * failed itself (a deferred constraint) ended the transaction
             * too (a failure at steps[5], the COMMIT, or before it),
             * committing nothing: before, that was taken for
             * committed, a migration reported applied with no ledger row
             * and a no-transaction statement counted done, which the
             * resume then skipped (found by an audit).
             */
            committed = rc == 0 || (fl_pg_is_open(p->pg) &&
                                    !fl_pg_in_transaction(p->pg) &&
                                    fl_pg_batch_failed(p->pg) > 5);
            if (rc != 0 && !committed)
                s_settle_commit(p, &rec, &committed, outcome, err);
            if (rc == 0)
                p->schema_kinds = p->kinds_committed =
                    fl_schema_census_kinds(&census);
            if (committed)
                fl_schema_dirty_add(&p->dirty, rc == 0 && dirty.nrows == 1
                                    ? fl_pg_value(&dirty, 0, 0) : NULL);
            fl_pg_result_release(&census);
        }
        fl_pg_result_release(&dirty);
    }
    if (committed) {
        *outcome = rc == 0 ? S_OK : S_COMMITTED;
        s_publish_files(p, 1);
    } else if (rc != 0 && fl__lock_lost(p, m, 0, err)) {
        *outcome = S_REFUSED;
    }
cleanup:
    fl__net_snap_release(&post);
    return rc;
}

/*
 * Runs statements [from, to) of u as one unit, retrying its whole
 * transaction after a lock timeout (no lock is held while it waits).
 */
static int
s_run_unit(fl_pipeline_t *p, s_unit *u, size_t from, size_t to, int notx,
           s_outcome *outcome, int *stage, fl_error_t *err)
{
    /* What the net learnt is about this unit's statements only. */
    s_oids_release(&u->forced);
    fl__net_snap_release(&u->first);
    u->restarts = 0;
    for (int attempt = 0;; attempt++) {
        int64_t ta = fl__now_ms();
        int rc = s_unit_once(p, u, from, to, notx, outcome, stage, err);
        int lock = rc != 0 && fl__lock_conflict(err);

        p->session.in_migration = 0;
        p->session.session_level = 0;
        s_keep_first(u);
        /* Committed: what it backed up, for the units after it. */
        for (size_t i = 0; rc == 0 && notx && i < u->backed.n; i++)
            s_oids_add(&u->backed_before, u->backed.v[i]);
        s_unit_reset_run(u);
        if (rc == 0)
            return 0;
        if (*outcome == S_COMMITTED)
            return rc; /* the unit is done: nothing to roll back or retry */
        fl__rollback_quietly(p);
        if (!notx)
            fl__forget_prepared(p, &u->stmts, 1);
        s_publish_files(p, 0);
        u->stats.done = (int)from;
        if (lock && fl__lock_retry(p, u->m, &u->stmts, FL__ALL_STATEMENTS,
                                   attempt, p->opts.lock_retries, ta, 1,
                                   &u->stats, err)) {
            u->restarts = 0;
            continue;
        }
        return rc;
    }
}

/* Two lint gates (checked versions) in the version order. */
static int
s_gate_cmp(const char *a, const char *b)
{
    fl_version_t va = FL_VERSION_INIT, vb = FL_VERSION_INIT;
    fl_error_t ignore = FL_ERROR_INIT;

    /* Checked on entry; an operator's may be as the tool names its files
     * (diesel's 2019-02-26-002946). */
    FL_IGNORE(fl_version_parse_tool(&va, a, &ignore));
    FL_IGNORE(fl_version_parse_tool(&vb, b, &ignore));
    fl_error_clear(&ignore);
    return fl_version_cmp(&va, &vb);
}

int
fl__validate_text(fl_pipeline_t *p, const fl_migration_t *m,
                  fl_stmt_list_t *stmts, fl_finding_list_t *findings,
                  fl_error_t *err)
{
    fl_stmt_list_t down = {NULL, 0};
    fl_finding_list_t found = {NULL, 0};
    int enforced, rc;

    if (m->lock_timeout_ms == 0) {
        rc = FL_ERR(err, FL_EINVAL, "%s: lock_timeout=0 would let every "
                    "statement wait for its locks forever (PostgreSQL's 0 "
                    "means no timeout)", m->file);
        fl_error_set_hint(err, "Give a duration above 0, such as "
                               "lock_timeout=2s.");
        return rc;
    }
    if ((rc = fl__statements(p, m, stmts, err)) != 0)
        return rc;
    if (m->down && (rc = fl__parse_section(p, m, m->down, m->down_line,
                                           "down", &down, err)) != 0)
        goto done;
    fl_stmt_list_release(&down);
    if (p->signed_gate && p->opts.lint_enforce_from &&
        s_gate_cmp(p->signed_gate, p->opts.lint_enforce_from) != 0) {
        rc = FL_ERR(err, FL_EINVAL, "the bundle's signed lint.enforce_from "
                    "is %s; the one given here is %s", p->signed_gate,
                    p->opts.lint_enforce_from);
        fl_error_set_hint(err, "A bundle is held to the gate it was signed "
                               "with: drop --lint-enforce-from, or build a "
                               "bundle with the gate wanted.");
        goto done;
    }
    enforced = fl__lint_enforced(p, m);
    if ((rc = fl__lint_gate(m, fl_pg_server_version(p->pg),
                            p->opts.allow_lint_errors || !enforced, &found,
                            err)) != 0)
        goto done;
    /*
     * Before the gate (lint.enforce_from), errors are warnings; what
     * --allow-lint-errors let through is said, finding by finding.
     */
    if (!enforced && fl_lintcheck_demote(&found, 0) > 0) {
        for (size_t i = 0; i < found.count; i++) {
            const fl_finding_t *f = &found.items[i];
            if (f->not_enforced)
                fl__event(p, FL_STEP_VALIDATE, FL_STEP_OVERRIDDEN, m, 0, NULL,
                          "lint error reported as a warning: %s is older "
                          "than lint.enforce_from %s: %s:%d:%d: %s: %s",
                          m->file, fl__lint_gate_version(p), f->file,
                          f->line, f->column, f->rule, f->message);
        }
    }
    for (size_t i = 0; i < found.count; i++) {
        const fl_finding_t *f = &found.items[i];
        if (f->severity == FL_LINT_ERROR)
            fl__event(p, FL_STEP_VALIDATE, FL_STEP_OVERRIDDEN, m, 0, NULL,
                      "lint error let through by --allow-lint-errors: "
                      "%s:%d:%d: %s: %s", f->file, f->line, f->column,
                      f->rule, f->message);
    }
done:
    if (findings) {
        *findings = found;
        found.items = NULL;
        found.count = 0;
    }
    fl_finding_list_release(&found);
    return rc;
}

/*
 * One migration being applied: what each of its steps reads and writes,
 * so that every way out goes through one finish (s_finish).
 */
typedef struct {
    const fl_migration_t *m;
    s_unit u;              /* its statements, counters and the net */
    size_t start;          /* statements an earlier run committed */
    int before;            /* the schema snapshot before it */
    s_outcome outcome;     /* why it stopped, when it did */
    int stage;             /* the step it was in (an fl_step) */
    int adopted;           /* a statement counted as done an index an
                              interrupted run built (fl__index_left_behind) */
    int resumed_at;        /* no-transaction: the statement an earlier run
                              of it reached (its ledger row), else -1 */
} s_mig;

/*
 * The static part of validation, and where a no-transaction migration an
 * earlier run left half-done resumes (only with the same content).
 */
int
fl__partial_changed(const fl_migration_t *m, const fl_ledger_row_t *row,
                    fl_error_t *err)
{
    /*
     * Another file: refused with nothing run and its row as it was (before,
     * the failure row written for it took the new checksum, and the next
     * apply resumed the changed file midway and called it applied).
     */
    if (row == NULL || !fl_ledger_row_partial(row) ||
        fl_ledger_row_matches(row, m))
        return 0;
    FL_ERR(err, FL_EINVAL, "%s was partly applied (%d of %d statements) "
           "with different content", m->file, row->statements_done,
           row->statements_total);
    fl_error_set_hint(err, "Restore the migration file as it was, let it "
                           "finish, and change it in a new migration.  "
                           "When its statement %d can never succeed: "
                           "flotilla rollback --skip-down %s --reason "
                           "TEXT marks it rolled back (its committed "
                           "statements stay), and the changed file then "
                           "runs from its start.",
                      row->statements_done + 1, row->version.text);
    return FL_EINVAL;
}

/*
 * A resumed no-transaction migration: the tables its earlier runs backed
 * up (the backups the ledger holds for it, not yet restored) are tracked
 * as its earlier units' are (s_reconcile).  Before, a row the resumed run
 * inserted into one stayed after a rollback that said proved.
 */
static int
s_backed_earlier(fl_pipeline_t *p, s_mig *x, fl_error_t *err)
{
    const char *params[2] = {x->m->version.text, p->target};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query(p->pg, &r,
        "SELECT DISTINCT c.oid FROM flotilla.backups b"
        " JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=)"
        " b.source_schema JOIN pg_catalog.pg_class c ON c.relnamespace"
        " OPERATOR(pg_catalog.=) n.oid AND c.relname OPERATOR(pg_catalog.=)"
        " b.source_table WHERE b.version::pg_catalog.text"
        " OPERATOR(pg_catalog.=) $1 AND b.target OPERATOR(pg_catalog.=) $2"
        " AND b.restored_at IS NULL",
        2, params, err);

    for (size_t i = 0; rc == 0 && i < r.nrows; i++)
        s_oids_add(&x->u.backed_before,
                   (uint32_t)strtoul(fl_pg_value(&r, i, 0), NULL, 10));
    fl_pg_result_release(&r);
    return rc;
}

static int
s_mig_validate(fl_pipeline_t *p, s_mig *x, const fl_ledger_row_t *row,
               fl_error_t *err)
{
    const fl_migration_t *m = x->m;
    int rc;

    x->outcome = S_REFUSED;
    if ((rc = fl__validate_text(p, m, &x->u.stmts, NULL, err)) != 0)
        return rc;
    if (m->repeatable)
        return fl__repeatable_check(m, &x->u.stmts, err);
    /* A run of it reached that statement, maybe into it (s_mig_alone). */
    if (row != NULL && !row->transactional &&
        (strcmp(row->status, "running") == 0 ||
         strcmp(row->status, "failed") == 0))
        x->resumed_at = row->statements_done;
    /*
     * The ledger says whether it ran in part, not the file: one changed to
     * run in a transaction would otherwise run again from its start.
     */
    if (row == NULL || !fl_ledger_row_partial(row))
        return 0;
    if ((rc = fl__partial_changed(m, row, err)) != 0)
        return rc;
    /* Its committed statements stay whatever happens next. */
    x->start = (size_t)row->statements_done;
    x->u.stats.done = row->statements_done;
    x->u.stats.retries = row->retries;
    x->u.stats.lock_wait_ms = row->lock_wait_ms;
    if ((rc = s_backed_earlier(p, x, err)) != 0)
        x->outcome = S_FAILED; /* its earlier statements committed */
    return rc;
}

/* A transactional migration: one unit, its ledger row inside it. */
static int
s_mig_transactional(fl_pipeline_t *p, s_mig *x, fl_error_t *err)
{
    int rc = s_run_unit(p, &x->u, 0, x->u.stmts.count, 0, &x->outcome,
                        &x->stage, err);

    if (rc == 0) {
        fl__event(p, FL_STEP_EXECUTE, FL_STEP_OK, x->m,
                  fl__now_ms() - x->u.step0, NULL, "%zu statement%s executed",
                  x->u.stmts.count, x->u.stmts.count == 1 ? "" : "s");
        x->u.step0 = fl__now_ms();
    }
    return rc;
}

/* Records that statement i of x is done (autocommit). */
static int
s_mig_record(fl_pipeline_t *p, s_mig *x, size_t done, fl_error_t *err)
{
    fl_ledger_record_t rec = {x->m, p->opts.bundle_id, p->opts.rollout_id,
                              p->opts.agent, "running", 0, (int)done,
                              (int)x->u.stmts.count, 0, 0, 0, NULL, NULL,
                              NULL, p->target, NULL, 0};

    x->u.stats.done = (int)done;
    rec.duration_ms = fl__now_ms() - x->u.t0;
    rec.lock_wait_ms = x->u.stats.lock_wait_ms;
    rec.retries = x->u.stats.retries;
    rec.status = done == x->u.stmts.count ? "applied" : "running";
    return fl_ledger_record(p->pg, &rec, err);
}

/* Statement i of a no-transaction migration is done: its progress row. */
static int
s_mig_progress(fl_pipeline_t *p, s_mig *x, size_t i, fl_error_t *err)
{
    return s_mig_record(p, x, i + 1, err);
}

/*
 * Before statement st (i of m, an up's or a down's: step), a CREATE
 * INDEX CONCURRENTLY, runs: what an interrupted run left under the name
 * it creates.  An INVALID index (the
 * build failed) is dropped and built again; a valid one on the same table
 * with the same definition is the one the statement built before its
 * client died (the server finishes the build without it), so the
 * statement counts as done (*done = 1); one defined otherwise is named
 * and the migration fails, rather than keep an index it did not ask for.
 */
int
fl__index_left_behind(fl_pipeline_t *p, const fl_migration_t *m,
                      const fl_stmt_t *st, size_t i, fl_step step, int *done,
                      fl_error_t *err)
{
    const char *schemas[2] = {st->index_schema, NULL};
    const char *names[2] = {st->index_name, NULL};
    uint32_t oids[2] = {0, 0};
    char kinds[2] = {0, 0};
    size_t n = 1;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char oid[16];
    const char *params[1] = {oid};
    int same = 0, rc;

    *done = 0;
    if (st->index_name == NULL || !st->no_transaction)
        return 0;
    if (st->ntables > 0) {
        schemas[1] = st->tables[0].schema;
        names[1] = st->tables[0].name;
        n = 2;
    }
    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
        (rc = fl__resolve(p, schemas, names, n, oids, kinds, err)) != 0)
        return rc;
    if (oids[0] == 0 || kinds[0] != 'i')
        return 0;
    snprintf(oid, sizeof(oid), "%u", oids[0]);
    rc = fl_pg_query(p->pg, &r,
        "SELECT i.indisvalid, i.indrelid::pg_catalog.int8,"
        " pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
        " OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname),"
        " pg_catalog.pg_get_indexdef(i.indexrelid)"
        " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid"
        " OPERATOR(pg_catalog.=) i.indexrelid JOIN pg_catalog.pg_namespace n"
        " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
        " WHERE i.indexrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid",
        1, params, err);
    if (rc != 0 || r.nrows != 1)
        goto cleanup;
    if (strcmp(fl_pg_value(&r, 0, 0), "t") != 0) {
        rc = fl_pg_execf(p->pg, err, "DROP INDEX CONCURRENTLY IF EXISTS %s",
                         fl_pg_value(&r, 0, 2));
        if (rc == 0)
            fl__event(p, step, FL_STEP_OK, m, 0, NULL,
                      "dropped invalid index %s left by an interrupted CREATE "
                      "INDEX CONCURRENTLY; building it again",
                      fl_pg_value(&r, 0, 2));
        goto cleanup;
    }
    if ((rc = fl_compare_index_definitions(st->sql, fl_pg_value(&r, 0, 3),
                                           &same, err)) != 0)
        goto cleanup;
    if (same && n == 2 &&
        strtoul(fl_pg_value(&r, 0, 1), NULL, 10) == oids[1]) {
        *done = 1;
        fl__event(p, step, FL_STEP_OK, m, 0, NULL,
                  "index %s exists, valid and defined as statement %zu of %s "
                  "defines it (an interrupted run built it): counted as done",
                  fl_pg_value(&r, 0, 2), i + 1, m->file);
        goto cleanup;
    }
    rc = FL_ERR(err, FL_EFAIL, "%s:%d:%d: index %s already exists, defined "
                "otherwise than this statement defines it", m->file,
                st->line, st->column, fl_pg_value(&r, 0, 2));
    fl_error_set_detail(err, "It is: %s.  The statement: %s.",
                        fl_pg_value(&r, 0, 3), st->sql);
    fl_error_set_hint(err, "If the index should be the statement's, drop it "
                           "(DROP INDEX CONCURRENTLY %s) and apply again; "
                           "otherwise give the statement's index another "
                           "name.", fl_pg_value(&r, 0, 2));
cleanup:
    fl_pg_result_release(&r);
    return rc;
}

/*
 * Before statement i of x, resumed at it: a DETACH PARTITION ...
 * CONCURRENTLY an interrupted run left "pending detach" (the partition's
 * rows already gone from its parent, every new DETACH of it refused) is
 * finished with FINALIZE, and the statement counts as done (*done = 1).
 * Before, every later apply failed "already pending detach" (found by an
 * audit).  Anything else: nothing (*done = 0).
 */
static int
s_detach_left_behind(fl_pipeline_t *p, s_mig *x, size_t i, int *done,
                     fl_error_t *err)
{
    const fl_stmt_t *st = &x->u.stmts.items[i];
    const char **schemas = NULL, **names = NULL;
    uint32_t *oids = NULL;
    char *kinds = NULL;
    fl_buf_t list = FL_BUF_INIT(0);
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[1];
    int rc = 0;

    *done = 0;
    if (st->kind == NULL || strcmp(st->kind, "ALTER TABLE") != 0 ||
        st->ntables < 2)
        return 0;
    schemas = fl_calloc(st->ntables, sizeof(*schemas));
    names = fl_calloc(st->ntables, sizeof(*names));
    oids = fl_calloc(st->ntables, sizeof(*oids));
    kinds = fl_calloc(st->ntables, 1);
    for (size_t k = 0; k < st->ntables; k++) {
        schemas[k] = st->tables[k].schema;
        names[k] = st->tables[k].name;
    }
    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
        (rc = fl__resolve(p, schemas, names, st->ntables, oids, kinds,
                          err)) != 0)
        goto cleanup;
    fl_buf_addf(&list, "{");
    for (size_t k = 0; k < st->ntables; k++)
        fl_buf_addf(&list, "%s%u", k ? "," : "", oids[k]);
    fl_buf_addf(&list, "}");
    params[0] = fl_buf_str(&list);
    rc = fl_pg_query(p->pg, &r,
        "SELECT i.inhparent::pg_catalog.regclass::pg_catalog.text,"
        " i.inhrelid::pg_catalog.regclass::pg_catalog.text"
        " FROM pg_catalog.pg_inherits i WHERE i.inhdetachpending"
        " AND i.inhparent OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])"
        " AND i.inhrelid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])",
        1, params, err);
    if (rc != 0 || r.nrows != 1)
        goto cleanup;
    rc = fl_pg_execf(p->pg, err, "ALTER TABLE %s DETACH PARTITION %s FINALIZE",
                     fl_pg_value(&r, 0, 0), fl_pg_value(&r, 0, 1));
    if (rc == 0) {
        *done = 1;
        fl__event(p, FL_STEP_EXECUTE, FL_STEP_OK, x->m, 0, NULL,
                  "partition %s was left pending detach from %s by an "
                  "interrupted run of statement %zu of %s: finished "
                  "(DETACH PARTITION ... FINALIZE), counted as done",
                  fl_pg_value(&r, 0, 1), fl_pg_value(&r, 0, 0), i + 1,
                  x->m->file);
    }
cleanup:
    fl_pg_result_release(&r);
    fl_buf_release(&list);
    free(kinds);
    free(oids);
    free(names);
    free(schemas);
    return rc;
}

/*
 * A statement that cannot run in a transaction (CREATE INDEX
 * CONCURRENTLY and friends): its checks, what an interrupted run left
 * behind, the statement on its own, then its progress row.
 */
static int
s_mig_alone(fl_pipeline_t *p, s_mig *x, size_t i, fl_error_t *err)
{
    int done = 0, rc;

    x->stage = FL_STEP_VALIDATE;
    x->outcome = S_REFUSED;
    if ((rc = fl__run_checks(p, x->m, &x->u.stmts, i, NULL, err)) != 0 ||
        (rc = fl__reach_check(p, x->m, &x->u.stmts.items[i], 1, err)) != 0)
        return rc;
    x->outcome = S_FAILED;
    x->stage = FL_STEP_EXECUTE;
    /*
     * What an interrupted run left is looked for only where a run of this
     * migration got to (its ledger row): an index of the name there
     * before it ever ran is not its own, and the statement fails on it as
     * psql would (before, it counted as done and the down dropped it:
     * found by an audit).  So before an index is built, the row says a
     * run got here.
     */
    if (x->resumed_at == (int)i &&
        (rc = fl__index_left_behind(p, x->m, &x->u.stmts.items[i], i,
                                    FL_STEP_EXECUTE, &done, err)) != 0)
        return rc;
    x->adopted |= done;
    if (!done && x->resumed_at == (int)i &&
        (rc = s_detach_left_behind(p, x, i, &done, err)) != 0)
        return rc;
    if (!done && x->resumed_at != (int)i &&
        ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
         (rc = s_mig_record(p, x, i, err)) != 0 ||
         (rc = fl__session_repin(p->pg, &p->session, err)) != 0))
        return rc;
    if (!done &&
        (rc = fl__run(p, x->m, &x->u.stmts, (int)i, 0, p->opts.lock_retries,
                      &x->u.stats, err)) != 0)
        return rc;
    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0 ||
        (rc = s_mig_progress(p, x, i, err)) != 0)
        return rc;
    return fl__session_repin(p->pg, &p->session, err);
}

int
fl__replay_settings(fl_pipeline_t *p, const fl_migration_t *m,
                    const fl_stmt_list_t *stmts, size_t start,
                    fl_error_t *err)
{
    int rc = 0, open = 0;

    for (size_t i = 0; rc == 0 && i < start && i < stmts->count; i++) {
        const fl_stmt_t *st = &stmts->items[i];

        if (st->kind == NULL || (strcmp(st->kind, "SET") != 0 &&
                                 strcmp(st->kind, "RESET") != 0 &&
                                 !st->sets_config))
            continue;
        if (!open) {
            if ((rc = fl__session_enter(p->pg, &p->session, err)) != 0 ||
                (rc = fl_pg_exec(p->pg, "BEGIN", err)) != 0)
                break;
            open = 1;
        }
        rc = fl_pg_exec(p->pg, st->sql, err);
        if (rc != 0)
            fl_error_prefix(err, "%s:%d: running its setting again before "
                            "resuming: ", m->file, st->line);
    }
    if (open && rc == 0)
        rc = fl_pg_exec(p->pg, "COMMIT", err);
    if (open && rc != 0)
        fl__rollback_quietly(p);
    if (rc == 0)
        rc = fl__session_leave(p->pg, &p->session, err);
    return rc;
}

/*
 * A no-transaction migration, statement by statement from where an
 * earlier run stopped: each statement that can run in a transaction as a
 * unit with its progress row, the others on their own.
 */
static int
s_mig_statements(fl_pipeline_t *p, s_mig *x, fl_error_t *err)
{
    const fl_migration_t *m = x->m;
    int rc;

    x->outcome = S_FAILED;
    if ((rc = fl__set_timeouts(p, m, 0, err)) != 0)
        return rc;
    x->outcome = S_REFUSED;
    if ((rc = fl__custom_validate(p, m, NULL, err)) != 0)
        return rc;
    /* What names another schema is refused before anything runs. */
    for (size_t i = x->start; i < x->u.stmts.count; i++)
        if ((rc = fl__reach_check(p, m, &x->u.stmts.items[i], 0, err)) != 0)
            return rc;
    x->outcome = S_FAILED;
    if ((rc = fl__session_leave(p->pg, &p->session, err)) != 0)
        return rc;
    fl__event(p, FL_STEP_VALIDATE, FL_STEP_OK, m, fl__now_ms() - x->u.t0, NULL,
              "%zu statement%s parsed and linted%s; live checks run before "
              "each statement%s", x->u.stmts.count,
              x->u.stmts.count == 1 ? "" : "s",
              m->validate ? ", validate statements hold" : "",
              x->start ? " (resuming)" : "");
    x->u.step0 = fl__now_ms();
    if (x->start)
        fl__event(p, FL_STEP_EXECUTE, FL_STEP_STARTED, m, 0, NULL,
                  "resuming %s at statement %zu of %zu", m->file, x->start + 1,
                  x->u.stmts.count);
    if (x->start && (rc = fl__replay_settings(p, m, &x->u.stmts, x->start,
                                              err)) != 0)
        return rc;
    for (size_t i = x->start; i < x->u.stmts.count; i++) {
        const fl_stmt_t *st = &x->u.stmts.items[i];
        int64_t ts = fl__now_ms();

        rc = st->no_transaction
                 ? s_mig_alone(p, x, i, err)
                 : s_run_unit(p, &x->u, i, i + 1, 1, &x->outcome, &x->stage,
                              err);
        if (rc != 0)
            return rc;
        fl__event(p, FL_STEP_EXECUTE, FL_STEP_OK, m, fl__now_ms() - ts, NULL,
                  "statement %zu of %zu done (%s:%d)", i + 1, x->u.stmts.count,
                  m->file, st->line);
    }
    x->stage = FL_STEP_VERIFY_AFTER;
    x->u.step0 = fl__now_ms();
    if ((rc = fl__verify_statements(p, m, err)) != 0)
        return rc;
    return fl__session_leave(p->pg, &p->session, err);
}

/*
 * The one way out of a migration.  Applied: the schema after it, and the
 * event that says so.  Refused (a verdict of validation, and nothing of
 * the migration committed, by this run or an earlier one): the
 * transaction rolled back, FL_EINVAL.  Anything else failed: its ledger
 * row says failed with the statements that stay applied, and the code
 * says why (fl__fault_code).
 */
static int
s_finish(fl_pipeline_t *p, s_mig *x, int rc, fl_error_t *err)
{
    const fl_migration_t *m = x->m;
    int64_t took = fl__now_ms() - x->u.step0;
    int changes = 0, applied;

    if (rc == 0 && (x->start > 0 || x->adopted)) {
        /*
         * Resumed: the snapshot before it was taken by this run, after the
         * earlier one committed statements 1 to start; the changes it
         * would record miss what those made, and the rollback's proof
         * would then find them "missing" once down drops them.  So none
         * are recorded (schema_recorded stays false: the rollback says it
         * cannot prove the schema), and the next migration takes a
         * snapshot of its own.  The same when a statement counted an
         * index an interrupted run built as done (adopted): the snapshot
         * before it already held that index, which its down drops (an
         * earlier run cut off before it could write the statement's
         * progress row left no row at all, so nothing says it resumed).
         */
        fl__forget_schema(p);
        p->schema_kinds = FL_SCHEMA_KINDS_ASK;
        if (x->start > 0)
            fl__event(p, FL_STEP_VERIFY_AFTER, FL_STEP_OK, m, took, NULL,
                      "applied %s; its schema changes are not recorded: an "
                      "earlier run committed statements 1 to %zu before "
                      "this run's snapshot, so rolling it back will not "
                      "prove the schema", m->file, x->start);
        else
            fl__event(p, FL_STEP_VERIFY_AFTER, FL_STEP_OK, m, took, NULL,
                      "applied %s; its schema changes are not recorded: an "
                      "index it builds was there before this run's "
                      "snapshot (an interrupted run built it), so rolling "
                      "it back will not prove the schema", m->file);
        return 0;
    }
    if (rc == 0) {
        char *fp = s_schema_after(p, m, x->before, &changes);
        fl__event(p, FL_STEP_VERIFY_AFTER, FL_STEP_OK, m,
                  fl__now_ms() - x->u.step0, NULL,
                  "applied %s; %d schema object%s changed; schema fingerprint "
                  "%.16s", m->file, changes, changes == 1 ? "" : "s",
                  fp ? fp : "(not recorded)");
        free(fp);
        return 0;
    }
    /*
     * Only a verdict of validation is a refusal: a lost connection, a
     * cancel, a timeout or a server error while validating is a failure
     * (the code says which), and so is a refusal once statements of a
     * no-transaction migration committed: something changed.
     */
    if (x->outcome == S_REFUSED && fl__classify(p, err) == FL__FAULT_OTHER &&
        x->u.stats.done == 0) {
        fl__rollback_quietly(p);
        fl__event(p, FL_STEP_VALIDATE, FL_STEP_REFUSED, m, took, err,
                  "refused %s", m->file);
        if (rc == FL_EDB)
            fl_error_prefix(err, "%s: ", m->file);
        if (rc == FL_EINVAL || rc == FL_EDB)
            err->code = rc = FL_EINVAL;
        return rc;
    }
    fl__rollback_quietly(p);
    /*
     * A transactional migration whose COMMIT ran (S_COMMITTED) is applied
     * and its row says so: a failure row would make the next run apply it
     * again.  None is written, and the run stops with the schema
     * unrecorded.  So is a no-transaction one whose last statement's
     * COMMIT ran (with the row that says applied); one that stopped
     * before records its failure as usual: its done count has the
     * statement that committed.
     */
    applied = x->outcome == S_COMMITTED &&
              (!m->no_transaction ||
               x->u.stats.done == (int)x->u.stmts.count);
    p->committed_anyway = applied;
    if (!applied && fl_pg_is_open(p->pg))
        s_record_failure(p, m, !m->no_transaction, (int)x->u.stmts.count,
                         x->u.t0, &x->u.stats, err);
    if (applied) {
        fl__forget_schema(p);
        fl__event(p, FL_STEP_VERIFY_AFTER, FL_STEP_FAILED, m, took, err,
                  "%s is applied (its COMMIT ran, with its ledger row), but "
                  "flotilla's own query after the COMMIT failed: its schema "
                  "is not recorded, so its rollback cannot prove it",
                  m->file);
        /* The error itself says so: an agent's result carries it. */
        fl_error_add_detail(err, "%s is applied: its COMMIT ran, with its "
                            "ledger row.", m->file);
    } else if (x->outcome == S_IN_DOUBT) {
        fl__forget_schema(p);
        fl__event(p, (fl_step)x->stage, FL_STEP_FAILED, m, took, err,
                  "%s may or may not be applied: the connection was lost "
                  "when its COMMIT was sent", m->file);
        fl_error_add_detail(err, "%s may or may not be applied: the "
                            "connection was lost when its COMMIT was sent.",
                            m->file);
    } else if (m->no_transaction) {
        /* Statements may have committed: the snapshot is out of date. */
        fl__forget_schema(p);
        fl__event(p, (fl_step)x->stage, FL_STEP_FAILED, m, took, err,
                  "%s failed after %d of %zu statements (%zu of them by an "
                  "earlier run), which stay applied; the next apply resumes "
                  "at statement %d", m->file, x->u.stats.done,
                  x->u.stmts.count, x->start, x->u.stats.done + 1);
        /* After what the failure itself said, if anything. */
        if (x->u.stats.done > 0)
            fl_error_add_detail(err, "%s is partly applied: %d of %zu "
                                "statements committed.", m->file,
                                x->u.stats.done, x->u.stmts.count);
        fl__say_lost_alone(p, m, &x->u.stmts, (size_t)x->u.stats.done,
                           err);
    } else {
        fl__event(p, (fl_step)x->stage, FL_STEP_FAILED, m, took, err,
                  "%s failed and was rolled back", m->file);
    }
    rc = fl__fault_code(p, err, x->stage == FL_STEP_VALIDATE ? "validating"
                                                              : "applying");
    if (rc == FL_EINVAL)
        err->code = rc = FL_EFAIL;
    return rc;
}

int
fl__apply_migration(fl_pipeline_t *p, const fl_migration_t *m,
                    const fl_ledger_row_t *row, fl_error_t *err)
{
    s_mig x;
    int rc;

    /* A cancel that came before it: none of it runs, and no ledger row
     * says it began. */
    if (fl__cancelled(p))
        return FL_ERR(err, FL_ECANCELLED, "cancelled before migration %s "
                      "started: nothing of it ran", m->file);
    /*
     * From the connection's original settings; within the migration, a
     * statement's SET holds for the statements after it, one transaction
     * or many.
     */
    if ((rc = fl__session_reset_all(p->pg, &p->session, p->target, err)) != 0)
        return rc;
    p->committed_anyway = 0;
    memset(&x, 0, sizeof(x));
    x.resumed_at = -1;
    x.m = m;
    x.u.m = m;
    x.u.t0 = x.u.step0 = fl__now_ms();
    x.stage = FL_STEP_VALIDATE;
    fl_buf_init(&x.u.uncovered, 0);
    fl__event(p, FL_STEP_VALIDATE, FL_STEP_STARTED, m, 0, NULL, "validating %s",
              m->file);
    rc = s_mig_validate(p, &x, row, err);
    if (rc == 0) {
        x.outcome = S_FAILED;
        rc = s_schema_before(p, &x.u, &x.before, err);
    }
    /*
     * Statements outside a transaction leave no locks to read after:
     * every relation may have changed since any generation (after the
     * snapshot before it, which may have just been taken).
     */
    if (m->no_transaction)
        fl_schema_dirty_add(&p->dirty, NULL);
    if (rc == 0)
        rc = m->no_transaction ? s_mig_statements(p, &x, err)
                               : s_mig_transactional(p, &x, err);
    rc = s_finish(p, &x, rc, err);
    /* The next migration starts with none of this one's. */
    fl__forget_prepared(p, &x.u.stmts, 0);
    if (m->no_transaction) {
        fl_error_t ignore = FL_ERROR_INIT;
        /* Back to flotilla's own timeouts for what follows. */
        FL_IGNORE(fl__own_timeouts(p, &ignore));
        fl_error_clear(&ignore);
    }
    s_unit_release(&x.u);
    fl__flush_logs(p);
    return rc;
}
