/*
 * pipeline_internal.h - what the pipeline's modules share, not part of
 * agent/'s API: the pipeline object itself (pipeline.c owns it), and the
 * entry points each module offers the others.
 *
 *   pipeline.c    public API, the state machine, events and the log
 *                 queue, the verify step, orchestration
 *   targetlock.c  the target's session advisory lock
 *   runner.c      one statement under timeouts, with lock-timeout
 *                 retries and blocker reports; validate/verify sections
 *   apply.c       one migration: validation, backups, the net, execute,
 *                 ledger row, COMMIT
 *   plan.c        the dry run
 *   rollback.c    one migration rolled back: down, restore, proof
 *   checks.c, backup.c, net.c, session.c: see agent/README.md
 */
#ifndef FL_AGENT_PIPELINE_INTERNAL_H
#define FL_AGENT_PIPELINE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "agent/ledger.h"
#include "agent/pg.h"
#include "agent/source.h"
#include "agent/pipeline.h"
#include "agent/schema.h"
#include "lint/facts.h"
#include "lint/lint.h"

/* Milliseconds on a monotonic clock. */
int64_t fl__now_ms(void);

/* "schema.table" quoted for SQL, schema optional; new string. */
char *fl__qualify(fl_pg_t *pg, const char *schema, const char *table);

/* How a live check runs. */
typedef struct {
    int cascades;        /* the statement has CASCADE (a DEPENDENTS check
                            then lets foreign keys go, which the rollback
                            re-creates) */
    int redact_samples;  /* samples show the key only */
    const int *cancel;   /* read atomically before each query that reads
                            a table's rows: nonzero stops the check with
                            FL_ECANCELLED; NULL: never */
} fl_check_opts_t;

/*
 * Runs one live check (facts.h) on the connection, in the migration's
 * settings (the names in it are the migration's); every function and
 * operator of flotilla's own is qualified.  Returns 0 when it holds;
 * FL_EINVAL with a message naming check, table, count and a sample (the
 * key and the check's columns of up to three rows, or the key alone when
 * redacted) when it does not; another code when the query failed.  When
 * report is not NULL a JSON object describing the check and its result is
 * appended.
 */
int fl__check_run(fl_pg_t *pg, const fl_check_t *check,
                  const fl_check_opts_t *o, json_t *report,
                  fl_error_t *err) FL_NODISCARD;

/* A label for a check: "NOT NULL on public.users(email)"; new string. */
char *fl__check_describe(const fl_check_t *check);

/*
 * Runs the live checks of statement st in order, stopping at the first
 * that does not hold, on the connection in the migration's settings, just
 * before st runs (after every statement before it).  A refusal (FL_EINVAL)
 * starts with where st is, "file:line:col: " (file NULL: no position).
 * Otherwise as fl__check_run, with st's CASCADE, redact_samples and
 * cancel (lent, read from the thread that runs the checks while another
 * may set it; NULL: never cancelled).  A check that cannot be known
 * before st runs (facts.h, fl_check_col_t) is skipped, and the report
 * says so.
 */
int fl__checks_run(fl_pg_t *pg, const char *file, const fl_stmt_t *st,
                   int redact_samples, const int *cancel, json_t *report,
                   fl_error_t *err) FL_NODISCARD;

/* ---- session.c: the pinned session and the migration's settings ---- */

#define FL_SESSION_NSETTINGS 14

typedef struct {
    char *original[FL_SESSION_NSETTINGS];  /* as the connection started */
    char *migration[FL_SESSION_NSETTINGS]; /* as the migration left them */
    const char *pins[FL_SESSION_NSETTINGS];  /* flotilla's own (lent) */
    char *original_schemas;  /* current_schemas(true) at start, JSON */
    char *schemas;           /* ... as the migration left them */
    int in_migration;        /* MIGRATION state (else PINNED) */
    int entered;             /* MIGRATION state since fl__session_reset_all */
    int session_level;       /* enter at session level in a transaction: a
                                no-transaction migration's statement, see
                                fl__session_settle_step */
    /*
     * Timeouts, apart from the settings above: flotilla's own for the
     * migration under way (fl__timeout_values), the migration's as its
     * statements left them (NULL: not read yet), and those of flotilla's
     * queries between migrations (fl__own_timeouts; run_st is the
     * statement_timeout the connection started with).  "" leaves one as
     * it is.
     */
    char own_lt[24], own_st[24];
    char *mig_lt, *mig_st;
    char run_lt[24];
    char *run_st;
    const char *repin[FL_SESSION_NSETTINGS + 3]; /* fl__session_repin_step's
                                                   parameters */
} fl_session_t;

/*
 * Records the connection's original settings, with search_path as the one
 * the migration's statements run under, then pins the session (session
 * level).  Call once after connecting, outside a transaction.
 */
int fl__session_pin(fl_pg_t *pg, fl_session_t *s, const char *search_path,
                    fl_error_t *err) FL_NODISCARD;
/* MIGRATION state: the migration's settings (no-op when already there). */
int fl__session_enter(fl_pg_t *pg, fl_session_t *s, fl_error_t *err) FL_NODISCARD;
/* PINNED state, remembering the migration's settings (no-op when there). */
int fl__session_leave(fl_pg_t *pg, fl_session_t *s, fl_error_t *err) FL_NODISCARD;
/*
 * After the COMMIT of a no-transaction migration's statement run with
 * session_level: reads the session's settings (what the statement SET
 * LOCAL is gone) and pins the session again, as one step of a batch
 * (res gets the row); fl__session_settled() keeps them as the
 * migration's.
 */
void fl__session_settle_step(fl_session_t *s, fl_pg_step_t *out,
                             fl_pg_result_t *res);
void fl__session_settled(fl_session_t *s, const fl_pg_result_t *res);
/*
 * Pins at session level again, whatever a migration SET: after a
 * transaction ends, when a statement may have SET a session value.
 */
int fl__session_repin(fl_pg_t *pg, fl_session_t *s, fl_error_t *err) FL_NODISCARD;
/*
 * fl__session_repin as a step of fl_pg_batch, to send after a COMMIT in
 * its round trip (*out lends static text; s->in_migration is cleared now:
 * a failed batch leaves the pins to the next fl__session_repin).
 */
void fl__session_repin_step(fl_session_t *s, fl_pg_step_t *out);
/*
 * fl__session_leave as a step of fl_pg_batch (local: in a transaction):
 * returns 0 when there is nothing to do, else 1 with *out written (its
 * result into *res, which the caller releases); after the batch succeeded,
 * fl__session_left() keeps what it read.
 */
size_t fl__session_leave_step(fl_session_t *s, int local, fl_pg_step_t *out,
                              fl_pg_result_t *res);
void fl__session_left(fl_session_t *s, const fl_pg_result_t *res);
/* The next migration starts from the connection's original settings. */
void fl__session_reset(fl_session_t *s);
/*
 * On the server too, when a migration's statements ran since the last
 * time: RESET ALL (every setting they may have SET, not only the ones
 * pinned, goes back to the connection's), the pins again, DISCARD
 * SEQUENCES, and what else they left on the session removed (held
 * cursors, channels, SQL prepared statements, temporary relations, types
 * and routines, advisory locks but the lock of target: session.c,
 * s_leftovers_sql), in one round trip and a second when something is
 * left; then fl__session_reset.
 */
int fl__session_reset_all(fl_pg_t *pg, fl_session_t *s,
                          const char *target, fl_error_t *err) FL_NODISCARD;
/*
 * The migration's settings as its statements have left them so far, to
 * go back to when its work is undone behind a savepoint taken now (the
 * server puts its own values back then): fl__session_restore() consumes
 * it, fl__session_mark_release() drops it.
 */
typedef struct {
    char *migration[FL_SESSION_NSETTINGS];
    char *schemas, *mig_lt, *mig_st;
} fl_session_mark_t;
void fl__session_mark(const fl_session_t *s, fl_session_mark_t *out);
void fl__session_restore(fl_session_t *s, fl_session_mark_t *mark);
void fl__session_mark_release(fl_session_mark_t *mark);
void fl__session_release(fl_session_t *s);
/* The migration's effective schemas, a JSON array (lent). */
const char *fl__session_schemas(const fl_session_t *s);

/* ---- net.c: the catalog picture of the before-commit net -------------- */

typedef struct {
    int attnum;
    uint32_t typid;
    int typmod;
    char *name;
    int generated;
    int touched;           /* its catalog row was written since we began */
} fl_net_col_t;

typedef struct {
    uint32_t oid;
    char relkind;          /* 'r', 'p' or 'S' */
    uint32_t relfilenode;
    int natts;             /* attribute numbers used so far (relnatts) */
    char *schema, *name;
    int64_t n_ins, n_upd, n_del;  /* this transaction's, so far */
    char *seq_last;        /* sequences: position, NULL if never called */
    /* Only from fl__net_columns / fl__backup_take's reads: */
    fl_net_col_t *cols;    /* live columns, by attnum */
    size_t ncols;
    int dropped_min;       /* lowest attnum dropped since we began, or 0 */
    int64_t size;          /* bytes */
} fl_net_rel_t;

typedef struct {
    fl_net_rel_t *rels;    /* sorted by oid */
    size_t n;
} fl_net_snap_t;

/* Attributes whose catalog rows were written since the transaction began. */
typedef struct {
    struct {
        uint32_t oid;
        int attnum;
        int dropped;
    } *items;
    size_t n;
    char *own; /* flotilla's own tables the transaction wrote, or NULL */
    char *foreign; /* the foreign tables it wrote, or NULL */
    char *lo;      /* what it did to large objects, or NULL */
    int blind;     /* track_counts is off: the net counts nothing */
} fl_net_touched_t;

/*
 * Flotilla's own tables the transaction wrote, dropped or moved (net.c),
 * one text or NULL; the foreign tables it wrote, the same; what it did
 * to large objects (unlinked, pages rewritten or removed), or NULL; $1:
 * fl_pipeline.own_tables.
 */
extern const char fl__net_own_sql[];
/*
 * Reads the tables of schema flotilla into p->own_tables, at the start of
 * each run: after the ledger is made or read, before any migration's
 * statement.
 */
int fl__own_tables(fl_pipeline_t *p, fl_error_t *err) FL_NODISCARD;
/*
 * FL_EINVAL when a cast's function is owned by a role neither a
 * superuser nor the one flotilla runs as: PostgreSQL would run it with
 * flotilla's rights wherever flotilla converts a value (its backups,
 * proofs, checks and baseline's reads keep values as text).  Casts are
 * not found through search_path, so nothing else keeps them out.
 */
int fl__tenant_casts(fl_pipeline_t *p, fl_error_t *err) FL_NODISCARD;
/* FL_EINVAL: m wrote them (own, as fl__net_own_sql names them). */
int fl__own_refusal(const fl_migration_t *m, const char *own,
                    fl_error_t *err);
/* FL_EINVAL: m wrote foreign tables (as fl__net_own_sql names them). */
int fl__foreign_refusal(const fl_migration_t *m, const char *foreign,
                        fl_error_t *err);
/* FL_EINVAL: m changed large objects (lo, as fl__net_own_sql says it). */
int fl__lo_refusal(const fl_migration_t *m, const char *lo, fl_error_t *err);
/* FL_EINVAL: m ran with track_counts off, where the net sees nothing. */
int fl__blind_refusal(const fl_migration_t *m, fl_error_t *err);
/*
 * fl__net_own_sql, then the refusal of what it names (fl__own_refusal,
 * fl__foreign_refusal, fl__lo_refusal, and with blind fl__blind_refusal,
 * as apply's net refuses: plan's rehearsal; a down, which counts every
 * table it writes as changed when track_counts is off, passes 0): for
 * what has no net of its own.
 */
int fl__own_check(fl_pipeline_t *p, const fl_migration_t *m, int blind,
                  fl_error_t *err) FL_NODISCARD;

/* The positions of the sequences of a scope (fl__net_positions). */
typedef struct {
    struct {
        uint32_t oid;
        char *last; /* NULL: never called */
    } *v;           /* sorted by oid */
    size_t n;
} fl_net_positions_t;

/*
 * Takes a snapshot (on the pinned session); out is released by the caller.
 * It reads no sequence's position, and so locks nothing: a sequence's
 * seq_last is its position in pos (fl__net_positions, read before the
 * transaction), NULL when pos is NULL or does not have it.
 */
/*
 * scope: "" or NULL every user schema; a schema target's name: that
 * schema and public only (a tenant's migration is not expected to touch
 * another tenant's tables, and the net stays as cheap as one tenant).
 */
int fl__net_snapshot(fl_pg_t *pg, const char *scope,
                     const fl_net_positions_t *pos, fl_net_snap_t *out,
                     fl_error_t *err) FL_NODISCARD;
void fl__net_snap_release(fl_net_snap_t *s);
void fl__net_rel_release(fl_net_rel_t *rel);
/* Fills rel->cols (names, types, touched) and dropped_min for rel->oid. */
int fl__net_columns(fl_pg_t *pg, fl_net_rel_t *rel, fl_error_t *err) FL_NODISCARD;
/* The relation with oid, or NULL; lent from s. */
const fl_net_rel_t *fl__net_find(const fl_net_snap_t *s, uint32_t oid);
const fl_net_col_t *fl__net_col(const fl_net_rel_t *rel, int attnum);
int fl__net_touched_columns(fl_pg_t *pg, fl_net_touched_t *out,
                            fl_error_t *err) FL_NODISCARD;
/*
 * fl__session_leave, the net's snapshot and fl__net_touched_columns in
 * one round trip (the net after the statements); the caller releases
 * both.  post: the relations this transaction holds a lock on, read
 * again, and pre's row of every other (nothing changed what no lock is
 * held on); a relation of pre that is locked and gone was dropped.
 */
int fl__net_after(fl_pg_t *pg, fl_session_t *session, const char *scope,
                  const char *own_tables, const fl_net_snap_t *pre,
                  fl_net_snap_t *post, fl_net_touched_t *touched,
                  fl_error_t *err) FL_NODISCARD;


/*
 * The position of every sequence of scope the role may read, for the net
 * before a migration: to be called outside a transaction, where each
 * batch of 1,000 sequences is read in a transaction of its own (reading
 * a position locks the sequence until the transaction ends).  Released
 * with fl__net_positions_release.
 */
int fl__net_positions(fl_pg_t *pg, const char *scope,
                      fl_net_positions_t *out, fl_error_t *err) FL_NODISCARD;
void fl__net_positions_release(fl_net_positions_t *pos);
/*
 * For a schema target (scope): the relations outside its schema and
 * public that this transaction changed in a way that can destroy data
 * (rows updated or deleted, structure or storage changed, dropped), the
 * other objects outside them it dropped, and the catalog rows it wrote
 * outside them, described in out ("schema.table: what; ..."), *count of
 * them.  Rows added and sequences drawn are not counted.  When it dropped
 * one, the transaction is rolled back to savepoint (taken before the
 * migration's first statement) to name it.
 */
int fl__net_outside(fl_pg_t *pg, const char *scope, char *const before[2],
                    const char *savepoint, fl_buf_t *out, int *count,
                    fl_error_t *err) FL_NODISCARD;
/* No schema snapshot shows the target as it is now: the next takes one. */
void fl__forget_schema(fl_pipeline_t *p);

/*
 * Whether the transaction that last wrote the ledger row of migration m
 * committed (its repeatable_migrations row for a repeatable one; with
 * m's checksum), when the connection was lost as its COMMIT was sent and
 * no answer came: the server may have committed it, or not.  The old
 * session is ended first (pg_terminate_backend on a new connection, if
 * its PID is still one of flotilla's sessions on this database; then
 * waited for: a session that received COMMIT commits whatever becomes of
 * its client, and until it has ended its transaction is neither), then
 * the row is read: committed when it says what the transaction wrote,
 * status and statements_done (down: down_done) done (rows only move
 * forward, and the target's lock kept every other writer out).  Returns
 * 0 with *committed set, or why it could not learn it.
 */
int fl__commit_in_doubt(fl_pipeline_t *p, const fl_migration_t *m,
                        const char *status, int down, int done,
                        int *committed, fl_error_t *err) FL_NODISCARD;
/*
 * When the connection was lost while statement i of stmts ran on its own
 * (outside any transaction: CREATE INDEX CONCURRENTLY and friends), the
 * server may have finished it or not, and no row says which: appends so
 * to err's detail (the next run checks: an index left built, or already
 * dropped, counts as done).  Nothing otherwise.
 */
void fl__say_lost_alone(fl_pipeline_t *p, const fl_migration_t *m,
                        const fl_stmt_list_t *stmts, size_t i,
                        fl_error_t *err);
/*
 * For a schema target, after m's statements (or its down's) and before
 * COMMIT: FL_EINVAL, naming them, when they changed relations outside its
 * scope (fl__net_outside; before: fl__net_outside_before's, taken after
 * savepoint and before the first statement).
 */
int fl__outside_check(fl_pipeline_t *p, const fl_migration_t *m,
                      char *const before[2], const char *savepoint,
                      fl_error_t *err) FL_NODISCARD;
/*
 * FL_EINVAL (err set) when row says m ran in part (running or failed
 * with statements done) with another checksum: apply refuses it, and
 * plan says so; else 0.
 */
int fl__partial_changed(const fl_migration_t *m, const fl_ledger_row_t *row,
                        fl_error_t *err);

/*
 * Before statement st (i of m; step: whose it is, the up's execute or a
 * down's rollback), a CREATE INDEX CONCURRENTLY: what an interrupted run
 * left under the name it creates.  An INVALID index is dropped (built
 * again); a valid one on the same table defined the same is the one an
 * interrupted run built (*done = 1: the statement counts as done); one
 * defined otherwise fails, named.
 */
int fl__index_left_behind(fl_pipeline_t *p, const fl_migration_t *m,
                          const fl_stmt_t *st, size_t i, fl_step step,
                          int *done, fl_error_t *err);

/*
 * For a schema target, before st when it cannot run in a transaction
 * (nothing is seen after it, nor undone): FL_EINVAL when what it names
 * (fl_stmt_t.reach) is outside the scope (its schema, public, pg_temp).
 * A name with a schema is judged by it; resolve: one without is looked up
 * under the migration's settings (the session enters them), else passes.
 */
int fl__reach_check(fl_pipeline_t *p, const fl_migration_t *m,
                    const fl_stmt_t *st, int resolve,
                    fl_error_t *err) FL_NODISCARD;
/*
 * A run of m resumed at statement start (of stmts, an up or a down, which
 * an earlier run committed one by one): the SETs and RESETs before it
 * run again, in one transaction under the migration's settings, so that
 * the statements after it see what one run would have given them (a SET
 * LOCAL ends with that transaction as it ended with its own; a setting
 * changed another way, set_config() or a function's SET, is not run
 * again).  Leaves the session pinned.
 */
int fl__replay_settings(fl_pipeline_t *p, const fl_migration_t *m,
                        const fl_stmt_list_t *stmts, size_t start,
                        fl_error_t *err) FL_NODISCARD;
/*
 * Before a schema target's first statement: what fl__net_outside needs
 * to tell a relation or other object the migration dropped outside the
 * scope (before: the highest OID of pg_class and the other objects'
 * catalogs, and the OIDs of the scope's relations and objects as an
 * array; the caller frees both).
 */
int fl__net_outside_before(fl_pg_t *pg, const char *scope, char *before[2],
                           fl_error_t *err) FL_NODISCARD;
/*
 * The start of a run in one round trip: BEGIN, SAVEPOINT flotilla_run,
 * the transaction's lock and statement timeouts (lt, st: ms) and
 * fl__net_snapshot into *out (which the caller releases).
 */
int fl__net_begin(fl_pg_t *pg, const char *lt, const char *st,
                  const char *scope, const fl_net_positions_t *pos,
                  fl_net_snap_t *out, fl_error_t *err) FL_NODISCARD;
void fl__net_touched_release(fl_net_touched_t *t);
/* True when a column table before already had was dropped since. */
int fl__net_lost_column(const fl_net_touched_t *t, const fl_net_rel_t *before);

/* ---- backup.c: backups, reconcile, restore -------------------------- */

typedef struct {
    fl_version_t version;
    const char *bundle_id;
    const char *dump_dir;   /* absolute, this target's; NULL: no files */
    int64_t dump_above;     /* bytes; 0: never a file */
    const char *target;     /* the ledger's target: "" or the schema */
} fl_backup_ctx_t;

/* A backup taken in the current run of a migration. */
typedef struct {
    int64_t id;
    uint32_t oid;           /* the table */
    int stmt_index;
    int dump;               /* a file (path) rather than a table */
    char *path;             /* dump: the final path; written as .partial */
    int *attnums;           /* backed-up columns */
    char **names;           /* ... their names (before the migration) */
    uint32_t *typids;       /* ... and types */
    int *typmods;
    size_t ncols;
    int *key_attnums;       /* the key; nkeys = 0: none (a multiset) */
    size_t nkeys;
    /*
     * Only the rows the statement's WHERE clause selected (never a file),
     * to be proven the rows it changed (fl__backup_rows_prove): nrows of
     * them; after the proof, how many of their keys are gone (absent) and
     * how many now hold a row this transaction wrote (ours).
     */
    int rows;
    int64_t nrows, absent, ours;
    int proven;
    /*
     * Values of the table may have changed where no counter of it shows
     * (a field of a column's type dropped): not reconciled; the restore
     * puts back every row and nothing else (match 'replace').
     */
    int replace;
} fl_backup_t;

/*
 * Which rows fl__backup_take keeps: where NULL, the whole table; else
 * only those the predicate where selects, the table called alias (NULL:
 * its own name) as the statement calls it, evaluated in the migration's
 * settings (session) just before the statement, under its lock.  A table
 * without a key, whose rows could not be matched, is kept whole; so is
 * one that has inheritance children.  every: the statement has no WHERE
 * clause (where is "true"): its backup of rows holds every row, copied on
 * flotilla's own settings (nothing of the migration's is evaluated), and
 * a table above the size for files goes to a file at once.  why_whole
 * (set by the callee, a static string) says why when rows were asked for
 * and the whole table was kept.
 */
typedef struct {
    const char *where;
    const char *alias;
    fl_session_t *session;
    int every;
    const char *why_whole;
} fl_backup_rows_t;

void fl__backup_release(fl_backup_t *b);

/*
 * The statement_index of a copy a rollback keeps of what its down drops
 * (fl__backup_keep): never restored, a leftover once the rollback
 * commits.
 */
#define FL_BACKUP_KEPT (-2)

/*
 * The statement_index of a backup taken for an earlier application of
 * its migration, marked when a later application of the same version
 * backs up its first table: never restored (it holds the rows from
 * before that earlier application), a leftover.
 */
#define FL_BACKUP_SUPERSEDED (-3)

/*
 * Before a rollback's down drops table oid (ncolumns 0) or its columns,
 * in the rollback's transaction: copies its own rows (those where one of
 * the columns differs from its constant DEFAULT, or without one is not
 * NULL), every column, but those the migration's transaction wrote
 * (own_xids, a xid[] from its ledger row; NULL: not known), to
 * flotilla_backup.b<id>, recorded with statement_index FL_BACKUP_KEPT.
 * *kept gets how many, *describe where they went (NULL when there were
 * none: nothing is kept).
 */
int fl__backup_keep(fl_pg_t *pg, const fl_backup_ctx_t *ctx, uint32_t oid,
                    const char *const *columns, size_t ncolumns,
                    const char *own_xids, long long *kept, char **describe,
                    fl_error_t *err) FL_NODISCARD;

/*
 * The same for the rows of table oid at tids (a tid[] as PostgreSQL
 * writes it), locking it in ROW EXCLUSIVE mode: rows a down's DELETE or
 * UPDATE is about to delete or change.
 */
int fl__backup_keep_tids(fl_pg_t *pg, const fl_backup_ctx_t *ctx,
                         uint32_t oid, const char *tids, long long *kept,
                         char **describe, fl_error_t *err) FL_NODISCARD;

/*
 * Backs up table pre->oid (pre: the table at the start of the run, whose
 * names and columns the backup keeps), locking it in lockmode first.
 * FL_ECONFLICT when this run already changed the table (the caller backs
 * it up before the first statement instead).  *describe gets where the
 * backup went (new string).  Must run in the migration's transaction.
 */
int fl__backup_take(fl_pg_t *pg, const fl_backup_ctx_t *ctx,
                    const fl_net_rel_t *pre, const char *lockmode,
                    int stmt_index, fl_backup_rows_t *rows, fl_backup_t *out,
                    char **describe, fl_error_t *err) FL_NODISCARD;

/*
 * The proof of a backup of rows (b->rows), before COMMIT: the rows the
 * migration changed in the table are exactly the backed-up ones.  Holds
 * when the table is still there with its storage and its backed-up
 * columns untouched, the server's count of rows this transaction updated
 * or deleted in it since pre (the run's start) equals b->nrows, and each
 * backed-up key is either gone or holds a row this transaction wrote.
 * Sets b->proven, b->absent and b->ours; when it does not hold, *why (new
 * string) says why and the caller backs the whole table up instead.
 */
int fl__backup_rows_prove(fl_pg_t *pg, fl_backup_t *b, const fl_net_rel_t *pre,
                          const fl_net_rel_t *now,
                          const fl_net_touched_t *touched, char **why,
                          fl_error_t *err) FL_NODISCARD;

/*
 * Before COMMIT: drops the rows the migration left unchanged from the
 * backup and records the keys (or row hashes) of the rows it added.
 * now is the table at the end (NULL when it was dropped).
 */
int fl__backup_reconcile(fl_pg_t *pg, const fl_backup_t *b,
                         const fl_net_rel_t *pre, const fl_net_rel_t *now,
                         fl_error_t *err) FL_NODISCARD;

/*
 * Records the position of sequence seq (as it was before) for rollback;
 * after is where the migration left it when it only advanced it (NULL
 * when it reset, restarted or dropped it).
 */
int fl__backup_sequence(fl_pg_t *pg, const fl_backup_ctx_t *ctx,
                        const fl_net_rel_t *seq,
                        const char *after, const char *reason,
                        fl_error_t *err) FL_NODISCARD;

/*
 * Records the rows this transaction inserted into table now, which no
 * backup covers, so that a rollback removes them (see backup.c).
 */
int fl__backup_track_inserts(fl_pg_t *pg, const fl_backup_ctx_t *ctx,
                             const fl_net_rel_t *pre, const fl_net_rel_t *now,
                             char **describe, fl_error_t *err) FL_NODISCARD;

/* Makes dir and its parents (mode 0700) when missing. */
int fl__backup_mkdirs(const char *dir, fl_error_t *err) FL_NODISCARD;
/* "<dir>/b<id>.copy"; new string. */
char *fl__backup_file_path(const char *dir, int64_t id);
/* The file of a dump backup, relocated under relocate_dir when given. */
char *fl__backup_locate(const char *recorded, const char *relocate_dir);
/*
 * Opens the file of backup id (NULL: any) at path for reading, only if it
 * is where and what flotilla writes (see backup.c), in a directory no
 * other user owns or can write (fl_perm_check); -1 in *fd otherwise.
 */
int fl__backup_file_open(const char *path, const char *id, int *fd,
                         fl_error_t *err) FL_NODISCARD;
/* Removes a backup file after the same checks. */
int fl__backup_file_remove(const char *path, fl_error_t *err) FL_NODISCARD;

typedef struct {
    int accept_loss;            /* restore what can be, note the rest */
    const char *relocate_dir;   /* rollback --backup-dir; NULL: recorded */
    const char *target;         /* the ledger's target: "" or the schema */
    const char *snapshot;       /* the migration's applied_snapshot and */
    const char *xids;           /* applied_xids (ledger.c); NULL: unknown */
    int marked;                 /* fl__restore_mark_since marked rows */
} fl_restore_opts_t;

/*
 * SQL (a new string) that holds when row alias a was written since the
 * migration whose applied_snapshot and applied_xids (ledger.c, version
 * 9) the SQL expressions snap and xids give: its xmin is not one of the
 * migration's transaction ids and was not committed in that snapshot (at
 * or after its xmax, by age(): a cheap test of each row, every live xid
 * is within 2^31 of the current one; or in progress then).  A row this
 * transaction wrote (age 0 or below: a down's earlier statement, a
 * rewrite) counts as written since: it may carry the application's
 * values, and which cannot be told.
 */
char *fl__since_sql(const char *a, const char *snap, const char *xids);

/*
 * The same with the snapshot and ids as literals (checked to be what
 * PostgreSQL writes for them), or NULL when either is NULL or is not.
 */
char *fl__since_sql_of(const char *a, const char *snapshot,
                       const char *xids);

typedef struct {
    int tables;                 /* backups restored */
    long long rows;             /* rows put back */
    long long removed;          /* rows the migration added, removed */
    int sequences;
    char **notes;               /* accepted losses */
    size_t nnotes;
    char **kept;                /* rows written since the migration that
                                   the restore replaced, and where they
                                   were kept (s_keep_since, backup.c) */
    size_t nkept;
    char **rels;                /* the tables restored (quoted, qualified),
                                   whose foreign keys are checked at the
                                   end (s_check_keys, backup.c) */
    size_t nrels;
    char **files;               /* dump files to remove after COMMIT */
    size_t nfiles;
    int replica;                /* session_replication_role is replica */
    char **marks;               /* statements that give back the marks of
                                   the triggers and rules s_quiet turned
                                   off (backup.c), run before it ends */
    size_t nmarks;
    int marked;                 /* rows written since marked before the
                                   down, in its transaction (rollback.c) */
} fl_restore_t;

/*
 * Before a down that runs in the same transaction as the restore: for
 * each backup of version (o's target) with a key (match "key" or
 * "replace") whose table and key columns exist now, locks the table
 * EXCLUSIVE (the application writes no row of it until the rollback
 * ends; ACCESS EXCLUSIVE when a statement of down takes that on it, or
 * may) and reads the keys of its rows written since the migration
 * (fl__since_sql) into pg_temp.flotilla_since_keys (dropped at COMMIT),
 * with the key columns' types; *marked when any.  The keeps (the
 * restore's, a down statement's) then take only those rows for the
 * application's where the down rewrote the table (every row's xmin the
 * rollback's).  Nothing when the ledger row predates version 9.
 */
/*
 * FL_EINVAL when a backup row of version for schema target names a
 * schema other than target and public (the ledger's rows changed by code
 * flotilla ran); 0 for a whole database.  Checked before a rollback's
 * down reads or locks anything those rows name.
 */
int fl__backups_in_scope(fl_pg_t *pg, const char *target,
                         const fl_version_t *version,
                         fl_error_t *err) FL_NODISCARD;

int fl__restore_mark_since(fl_pg_t *pg, const fl_restore_opts_t *o,
                           const fl_version_t *version,
                           const fl_stmt_list_t *down, int *marked,
                           fl_error_t *err) FL_NODISCARD;
/*
 * When the rows of table qt written since the migration were marked
 * (fl__restore_mark_since, in this transaction) and its key's types are
 * the ones marked: in *out, SQL over row alias a that holds for the rows
 * under those keys (a new string); else NULL.
 */
int fl__restore_marked_sql(fl_pg_t *pg, const char *qt, const char *a,
                           char **out, fl_error_t *err) FL_NODISCARD;
/*
 * Restores every backup of version, newest first, proves each, releases
 * it, and sets back its sequences.  Runs in the rollback's transaction,
 * after down, on the pinned session.  res is released by the caller.
 */
int fl__restore_backups(fl_pg_t *pg, const fl_restore_opts_t *o,
                        const fl_version_t *version, fl_restore_t *res,
                        fl_error_t *err) FL_NODISCARD;
void fl__restore_release(fl_restore_t *res);

/* A retry's wait: base * 2^attempt times a random factor in [0.5, 1]. */
int64_t fl__pipeline_backoff(fl_pipeline_t *p, int64_t base, int attempt);

/* ---- the pipeline object (pipeline.c) ------------------------------- */

/* A log row waiting to be written once no transaction is open. */
typedef struct {
    fl_ledger_log_t e;
    char *name;
    char *message;
} fl__queued_log;

/* An event waiting for the migration's transaction to end. */
typedef struct {
    fl_pipeline_event_t ev;
    char *name;
    char *message;
    fl_error_t error;      /* ev.error points here when set */
} fl__queued_event;

struct fl_pipeline {
    fl_pipeline_opts_t opts;
    fl_pg_t *pg;
    int kept;          /* copies the last rollback kept (fl_pipeline_kept) */
    int committed_anyway; /* the last migration's apply or rollback
                             failed after its COMMIT ran: it is applied
                             (fl__apply_migration), or rolled back */
    int cancelled;     /* atomic */
    int locked;        /* the target's advisory lock is held */
    int dry_run;       /* plan: write nothing */
    fl__queued_log *logs;
    size_t nlogs;
    fl__queued_event *events; /* not delivered yet: a transaction is open */
    size_t nevents;
    fl_session_t session; /* pinned, or the migration's settings */
    char *dump_dir;    /* this target's backup file directory, absolute */
    int dump_lock;     /* open on dump_dir, held shared (flock) while
                          the pipeline may write there; -1: not yet */
    int dump_dir_made; /* this pipeline created dump_dir */
    char *backup_dir_made; /* the backup directory (absolute) when this
                          pipeline created it, else NULL */
    char **partial;    /* dump files written as .partial, to rename */
    size_t npartial;   /* after COMMIT */
    int state_checked; /* the run's first snapshot was compared with the
                          schema as flotilla left it (schema.h) */
    int schema_gen;    /* the schema snapshot that shows the target as it
                          is now (1 or 2), or 0: none taken yet */
    fl_schema_dirty_t dirty; /* what changed since each generation, for
                          its refresh; reset with schema_gen (fl__forget_schema) */
    int schema_kinds;  /* the census (fl_schema_census_sql) run with the
                          last unit's COMMIT, or FL_SCHEMA_KINDS_ASK */
    int kinds_committed; /* the same, kept for the next unit's net (the
                          record after the COMMIT takes schema_kinds) */
    const char *target; /* ledger rows' target: "" or opts.schema */
    char *search_path;  /* the migration's, when built for a schema target */
    char *described;    /* 'database "x"' or 'schema "s" of database "x"' */
    const fl_bundle_t *release; /* the bundle being applied, whose release
                                   each migration's commit records; NULL
                                   for a directory */
    const char *signed_gate; /* the lint gate signed into the bundle being
                                applied or planned (lent from it); NULL
                                for a directory or a bundle without one */
    char *own_tables;   /* the tables of schema flotilla when the run
                           began, a text[] literal (fl__own_tables) */
    char down_sum[65];  /* rollback: the checksum of the down that runs
                           (fl__down_for), recorded with the rollback's
                           state; "" when none is known */
};

/* Per-migration execution counters, written to the ledger. */
typedef struct {
    int64_t lock_wait_ms;
    int retries;
    int done;
    char *error_position;
} fl__stats_t;

/* True once fl_pipeline_cancel was called (any thread). */
int fl__cancelled(fl_pipeline_t *p);

/*
 * Reports an event: delivered through opts.on_event at once when no
 * transaction is open, else queued until one is not (fl__deliver_events),
 * so that the callback never runs while a migration holds its locks.
 * Unless this is a dry run or a STARTED event, its log row is queued too
 * (fl__flush_logs), with the time it happened.  m may be NULL (not about
 * one migration); error may be NULL.
 */
void fl__event(fl_pipeline_t *p, fl_step step, fl_step_status status,
               const fl_migration_t *m, int64_t duration_ms,
               const fl_error_t *error, const char *fmt, ...) FL_PRINTF(7, 8);

/* Delivers the queued events, unless a transaction is still open. */
void fl__deliver_events(fl_pipeline_t *p);

/*
 * Outside a transaction: writes the queued log rows (one statement) and
 * delivers the queued events.  Inside one: does nothing.
 */
void fl__flush_logs(fl_pipeline_t *p);

/* Sleeps ms milliseconds in slices, returning early when cancelled. */
void fl__sleep(fl_pipeline_t *p, int64_t ms);

/* ROLLBACK if a transaction is open, ignoring errors (failure paths). */
void fl__rollback_quietly(fl_pipeline_t *p);

/*
 * Deallocates what was PREPAREd by SQL while stmts (an up or a down) ran:
 * before they run again after a rollback (again: always, a trigger may
 * have), and when they are done (only if a statement of stmts may have).
 */
void fl__forget_prepared(fl_pipeline_t *p, const fl_stmt_list_t *stmts,
                         int again);

/* The schema snapshots' scope: NULL (every managed schema) or the target. */
const char *fl__scope(const fl_pipeline_t *p);

/* FL_EINVAL unless opts.to_version, when set, is a version of migs. */
int fl__to_in_source(const fl_pipeline_t *p, const fl_migration_list_t *migs,
                     fl_error_t *err) FL_NODISCARD;

/*
 * The verify step (pipeline.c): drift and out-of-order versions over the
 * whole source; pending[i] is set for each migration still to run.
 */
int fl__verify_source(fl_pipeline_t *p, const fl_migration_list_t *migs,
                      const fl_ledger_t *ledger, int *pending,
                      fl_error_t *err) FL_NODISCARD;

/*
 * Whether the bundle of src may run here (scope, release channel); a
 * release refusal overridden by opts.allow_older_release becomes a note
 * in *override (new string).  Sets p->release.
 */
int fl__check_release(fl_pipeline_t *p, const fl_source_t *src,
                      char **override, fl_error_t *err) FL_NODISCARD;

/* ---- targetlock.c ---------------------------------------------------- */

/*
 * Takes the target's session advisory lock, polling up to
 * opts.lock_wait_ms; FL_ECONFLICT naming the holder when it is not free,
 * FL_ECANCELLED when cancelled.
 */
int fl__lock_target(fl_pipeline_t *p, fl_error_t *err) FL_NODISCARD;
/*
 * The class (first key) of flotilla's advisory locks, as SQL: the
 * target's (two keys, objsubid 2 in pg_locks) and the ledger's.
 */
#define FL__LOCK_CLASS "1718578273"
/*
 * The second keys, as SQL: the target's ($1 the schema, "" for the whole
 * database: the database's name, or "<database>/<schema>") and its
 * database's.
 */
#define FL__TARGET_KEY                                                      \
    "(pg_catalog.hashtext(CASE WHEN $1 OPERATOR(pg_catalog.=) '' THEN"      \
    " pg_catalog.current_database()::pg_catalog.text ELSE"                  \
    " pg_catalog.current_database() OPERATOR(pg_catalog.||) '/'"            \
    " OPERATOR(pg_catalog.||) $1 END) OPERATOR(pg_catalog.&) 2147483647)"
#define FL__DATABASE_KEY                                                    \
    "(pg_catalog.hashtext(pg_catalog.current_database()::pg_catalog.text)"  \
    " OPERATOR(pg_catalog.&) 2147483647)"
/*
 * A row l of pg_locks (advisory, this session's) that is the target's
 * lock ($1 as above): the database's key, exclusive for the whole
 * database and shared for one of its schemas, and a schema's own key.
 */
#define FL__OWN_LOCK(l)                                                     \
    " " l ".classid OPERATOR(pg_catalog.=) " FL__LOCK_CLASS                 \
    " AND " l ".objsubid OPERATOR(pg_catalog.=) 2"                          \
    " AND ((" l ".objid OPERATOR(pg_catalog.=) " FL__DATABASE_KEY           \
    "::pg_catalog.oid AND " l ".mode OPERATOR(pg_catalog.=) CASE WHEN $1"   \
    " OPERATOR(pg_catalog.=) '' THEN 'ExclusiveLock' ELSE 'ShareLock' END)" \
    " OR ($1 OPERATOR(pg_catalog.<>) '' AND " l ".objid"                    \
    " OPERATOR(pg_catalog.=) " FL__TARGET_KEY "::pg_catalog.oid"            \
    " AND " l ".mode OPERATOR(pg_catalog.=) 'ExclusiveLock')) "
/*
 * The types whose values hold a value of a composite type that start
 * (a query of type oids) names: those types, arrays and domains of them,
 * and composite types with an attribute of one, to any depth, as the
 * recursive query ty(t).  A field dropped from one of the start types
 * changes every value of a column of one of these (the column is not
 * dropped, no row is written, the table is not rewritten).  Run with
 * flotilla's session pins.
 */
#define FL__TYPES_HOLDING(start)                                            \
    "WITH RECURSIVE ty(t) AS (" start                                       \
    " UNION SELECT h.t FROM ty, LATERAL ("                                  \
    "  SELECT y.typarray FROM pg_catalog.pg_type y"                         \
    "  WHERE y.oid = ty.t AND y.typarray <> 0"                              \
    "  UNION ALL SELECT d.oid FROM pg_catalog.pg_type d"                    \
    "  WHERE d.typbasetype = ty.t"                                          \
    "  UNION ALL SELECT c2.reltype FROM pg_catalog.pg_attribute a2"         \
    "  JOIN pg_catalog.pg_class c2 ON c2.oid = a2.attrelid"                 \
    "  WHERE a2.atttypid = ty.t AND c2.relkind = 'c' AND a2.attnum > 0"     \
    "  AND NOT a2.attisdropped) h(t))"
/* The live columns (f) of a type ty holds; guarded: no scan when none. */
#define FL__COLUMNS_OF_TY                                                   \
    " FROM pg_catalog.pg_attribute f WHERE EXISTS (SELECT FROM ty)"         \
    " AND f.atttypid IN (SELECT ty.t FROM ty) AND f.attnum > 0"             \
    " AND NOT f.attisdropped"

/* Releases it if held (closing the session would too). */
void fl__unlock_target(fl_pipeline_t *p);
/*
 * One statement ($1: the target) that returns 0 while the session holds
 * the target's lock; when a statement of the migration released it, it
 * takes it again and fails, so that a COMMIT after it in the same round
 * trip does not run.  fl__lock_lost() then says so in err (FL_EINVAL) and
 * returns 1; it returns 0 for any other error.
 */
extern const char fl__lock_held_sql[];
int fl__lock_lost(fl_pipeline_t *p, const fl_migration_t *m, int down,
                  fl_error_t *err);
/* The same statement alone: 0, FL_EINVAL when it was released. */
int fl__lock_check(fl_pipeline_t *p, const fl_migration_t *m, int down,
                   fl_error_t *err) FL_NODISCARD;

/* ---- runner.c -------------------------------------------------------- */

/*
 * What an error means for the pipeline, read from its code and SQLSTATE
 * (never from whether a caller passed an error object): only OTHER can be
 * a refusal, and only when validation raised it.
 */
typedef enum {
    FL__FAULT_OTHER,       /* a verdict or an SQL error of the migration */
    FL__FAULT_LOCK,        /* lock_timeout (55P03): retried */
    FL__FAULT_CANCEL,      /* fl_pipeline_cancel (57014 after a cancel) */
    FL__FAULT_TIMEOUT,     /* statement_timeout (57014 otherwise) */
    FL__FAULT_CONNECTION,  /* the connection or the server went away */
    FL__FAULT_SERVER       /* the server ran out of something (53, 58, XX) */
} fl__fault;

fl__fault fl__classify(fl_pipeline_t *p, const fl_error_t *err);

/*
 * Sets err->code for what the fault means to a caller (FL_ECANCELLED,
 * FL_ETIMEOUT after lock retries, FL_EDB), prefixing a lost connection
 * with what was going on when it was lost (doing); returns the code.
 */
int fl__fault_code(fl_pipeline_t *p, fl_error_t *err, const char *doing);

/* fl__blockers' index for every statement's tables. */
#define FL__ALL_STATEMENTS (-1)

void fl__stats_release(fl__stats_t *s);

/*
 * Runs statement index of stmts in the migration's settings.  Outside a
 * transaction (in_tx 0) it retries a lock timeout up to retries times;
 * inside one, retries must be 0: the caller rolls the whole transaction
 * back and runs it again, so that no lock is held and no transaction is
 * idle while it waits.  Errors are prefixed with file:line:col, which
 * also goes to stats->error_position.
 */
int fl__run(fl_pipeline_t *p, const fl_migration_t *m,
            const fl_stmt_list_t *stmts, int index, int in_tx, int retries,
            fl__stats_t *stats, fl_error_t *err) FL_NODISCARD;

/*
 * Whether err is a lock conflict a transaction run again may not meet: a
 * lock timeout (55P03) or a deadlock PostgreSQL broke by failing our
 * statement (40P01).  Both leave nothing of the transaction; a statement
 * run outside one retries lock timeouts only (a deadlocked CREATE INDEX
 * CONCURRENTLY leaves an invalid index behind).
 */
int fl__lock_conflict(const fl_error_t *err);
/*
 * After a lock conflict (err, fl__lock_conflict) at attempt (0-based)
 * that began at t0, already undone: while retries remain and nobody
 * cancelled, reports the retry with the sessions that block statement
 * index (or every statement), waits the jittered backoff (counted in
 * stats) and returns 1; else makes err FL_ETIMEOUT naming them and
 * returns 0.
 */
int fl__lock_retry(fl_pipeline_t *p, const fl_migration_t *m,
                   const fl_stmt_list_t *stmts, int index, int attempt,
                   int retries, int64_t t0, int rolled_back,
                   fl__stats_t *stats, fl_error_t *err);

/* A report of the sessions holding locks on a statement's tables (new). */
char *fl__blockers(fl_pipeline_t *p, const fl_stmt_list_t *stmts, int index);

/*
 * Resolves names (schema may be NULL) to OIDs as the migration's next
 * statement would; oids[i] = 0 for a name that does not exist.
 */
/*
 * For the plan: what apply backs up before statement st for what it
 * destroys (new strings, into *out): each table as the statement names
 * it, and for a composite type it names (ALTER TYPE ... DROP ATTRIBUTE,
 * DROP TYPE ... CASCADE), the tables of columns of that type (qualified),
 * which apply backs up whole.  Resolved as the migration's next statement
 * would resolve them.
 */
int fl__type_backups(fl_pipeline_t *p, const fl_stmt_t *st, char ***out,
                     size_t *n, fl_error_t *err) FL_NODISCARD;

int fl__resolve(fl_pipeline_t *p, const char *const *schemas,
                const char *const *names, size_t n, uint32_t *oids,
                char *relkinds, fl_error_t *err) FL_NODISCARD;

/* The lock_timeout of flotilla's own queries when none was given. */
#define FL__DEFAULT_LOCK_TIMEOUT_MS 2000

/*
 * The session's timeouts for flotilla's own queries (ledger, snapshots,
 * backups): never an unbounded wait for a lock (opts.lock_timeout_ms), and
 * the statement_timeout the connection started with.
 */
int fl__own_timeouts(fl_pipeline_t *p, fl_error_t *err) FL_NODISCARD;

/* SET [LOCAL] lock_timeout and statement_timeout for m. */
int fl__set_timeouts(fl_pipeline_t *p, const fl_migration_t *m, int local,
                     fl_error_t *err) FL_NODISCARD;
/*
 * The same with the commands in before ("BEGIN; " and the like, trusted
 * text) first, in one round trip.
 */
/* The migration's lock and statement timeouts (ms) as text. */
void fl__timeout_values(fl_pipeline_t *p, const fl_migration_t *m,
                        char lt[24], char st[24]);
int fl__begin_with_timeouts(fl_pipeline_t *p, const fl_migration_t *m,
                            const char *before, int local,
                            fl_error_t *err) FL_NODISCARD;
/* The SET commands of fl__set_timeouts, written into buf. */
const char *fl__timeouts_sql(fl_pipeline_t *p, const fl_migration_t *m,
                             int local, char *buf, size_t size);

/*
 * Parses a section of m (text, starting at line; what names it: "up",
 * "down", ...) into out, refusing (FL_EINVAL, file:line:col) text the
 * grammar rejects and statements that start or end a transaction.
 */
int fl__parse_section(fl_pipeline_t *p, const fl_migration_t *m,
                      const char *text, int line, const char *what,
                      fl_stmt_list_t *out, fl_error_t *err) FL_NODISCARD;

/* Parses m's up section, refusing text the grammar rejects. */
int fl__statements(fl_pipeline_t *p, const fl_migration_t *m,
                   fl_stmt_list_t *out, fl_error_t *err) FL_NODISCARD;

/*
 * m's validate statements: each must return one row whose first column
 * is true (FL_EINVAL otherwise).  Results go to report when not NULL.
 */
int fl__custom_validate(fl_pipeline_t *p, const fl_migration_t *m,
                        json_t *report, fl_error_t *err) FL_NODISCARD;

/* m's verify statements, in its settings. */
int fl__verify_statements(fl_pipeline_t *p, const fl_migration_t *m,
                          fl_error_t *err) FL_NODISCARD;

/* ---- checks.c: where the checks run ---------------------------------- */

/*
 * The live checks of statement i of migration m, in the migration's
 * settings, at the statement's place: inside the migration's transaction
 * (or, for a no-transaction statement, its session) after every
 * statement before it ran, just before it runs.  apply and plan both
 * call it there, so they refuse the same things.  As fl__checks_run,
 * with m's file for the position and opts.redact_samples.
 */
int fl__run_checks(fl_pipeline_t *p, const fl_migration_t *m,
                   const fl_stmt_list_t *stmts, size_t i, json_t *report,
                   fl_error_t *err) FL_NODISCARD;

/*
 * The lint gate's first version (lint.enforce_from): the bundle's own,
 * signed, when the source is a bundle that carries one, else
 * opts.lint_enforce_from; NULL when every migration is held to lint.
 */
const char *fl__lint_gate_version(const fl_pipeline_t *p);
/* Whether m's lint errors refuse it: no gate, or m at or after it. */
int fl__lint_enforced(const fl_pipeline_t *p, const fl_migration_t *m);

/* ---- apply.c ----------------------------------------------------------- */

/*
 * The validation of a migration's text, the same for apply and plan:
 * its up section parsed into stmts, its down section parsed, both
 * linted (findings, when not NULL, gets every finding; the caller
 * releases both, whatever the result), its options sound.  Error-level findings refuse it
 * unless opts.allow_lint_errors, and then each is reported (an
 * OVERRIDDEN event).  FL_EINVAL when refused, with file:line:col.
 */
int fl__validate_text(fl_pipeline_t *p, const fl_migration_t *m,
                      fl_stmt_list_t *stmts, fl_finding_list_t *findings,
                      fl_error_t *err) FL_NODISCARD;

/*
 * Applies one pending migration (row: its ledger row, or NULL) and
 * writes its log rows.  FL_EINVAL: refused, nothing changed.
 */
int fl__apply_migration(fl_pipeline_t *p, const fl_migration_t *m,
                        const fl_ledger_row_t *row,
                        fl_error_t *err) FL_NODISCARD;

/*
 * Removes the backup directories this pipeline made and left empty (a
 * run that wrote no backup file leaves none), closes the lock on the
 * target's and forgets it; at close, or when its claim failed.
 */
void fl__dump_dir_release(fl_pipeline_t *p);

/* ---- repeatable.c (its semantics are written at its top) ------------- */

/* FL_EINVAL when a repeatable migration's statements destroy data. */
int fl__repeatable_check(const fl_migration_t *m, const fl_stmt_list_t *stmts,
                         fl_error_t *err) FL_NODISCARD;
/*
 * After the versioned migrations of an apply (result: their counts): the
 * repeatable migrations of src that need a run, in order, unless a
 * versioned one is left pending; stops at the first that fails.
 */
int fl__apply_repeatables(fl_pipeline_t *p, const fl_source_t *src,
                          fl_apply_result_t *result,
                          fl_error_t *err) FL_NODISCARD;
/*
 * Before a rollback's first down (version: the first rolled back): every
 * repeatable migration of the target needs a run again.
 */
int fl__repeatables_forget(fl_pipeline_t *p, const fl_version_t *version,
                           fl_error_t *err) FL_NODISCARD;
/*
 * The rollback proof of m: drops from diff the objects a repeatable
 * migration made (missing or different: its next run re-creates them),
 * each said in an event.
 */
int fl__repeatables_filter_diff(fl_pipeline_t *p, const fl_migration_t *m,
                                fl_schema_diff_list_t *diff,
                                fl_error_t *err) FL_NODISCARD;

/* ---- plan.c ------------------------------------------------------------ */

/* The dry run behind fl_pipeline_plan. */
int fl__plan(fl_pipeline_t *p, const fl_source_t *src, fl_plan_t *plan,
             fl_error_t *err) FL_NODISCARD;

/* ---- rollback.c -------------------------------------------------------- */

/*
 * The down section to run for row: from src when its migration is the
 * one applied (the same up checksum: its down may have been fixed since,
 * and is then linted here, before it runs), else (only with
 * opts.down_from_ledger) the ledger's copy in row i of r.  *down is
 * lent; p->down_sum gets its checksum.
 */
int fl__down_for(fl_pipeline_t *p, const fl_source_t *src,
                 const fl_ledger_row_t *row, const fl_pg_result_t *r,
                 size_t i, const char **down, int *line,
                 fl_error_t *err) FL_NODISCARD;

/* Rolls back the migration of row with down; writes its log rows. */
int fl__rollback_one(fl_pipeline_t *p, const fl_ledger_row_t *row,
                     const char *down, int down_line,
                     fl_error_t *err) FL_NODISCARD;

/* fl_pipeline_skip_down (see pipeline.h); takes and releases the lock. */
int fl__skip_down(fl_pipeline_t *p, const fl_version_t *version,
                  const char *reason,
                  fl_error_t *err) FL_NODISCARD;

#endif
