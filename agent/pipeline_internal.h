/*
 * pipeline_internal.h - helpers shared by the pipeline's modules
 * (pipeline.c, backup.c, checks.c): not part of agent/'s API.
 */
#ifndef FL_AGENT_PIPELINE_INTERNAL_H
#define FL_AGENT_PIPELINE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "agent/pg.h"
#include "agent/pipeline.h"
#include "lint/facts.h"

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
 * Otherwise as fl__check_run, with st's CASCADE and redact_samples.  A
 * check that cannot be known before st runs (facts.h, fl_check_col_t) is
 * skipped, and the report says so.
 */
int fl__checks_run(fl_pg_t *pg, const char *file, const fl_stmt_t *st,
                   int redact_samples, json_t *report,
                   fl_error_t *err) FL_NODISCARD;

/* ---- session.c: the pinned session and the migration's settings ---- */

#define FL_SESSION_NSETTINGS 6

typedef struct {
    char *original[FL_SESSION_NSETTINGS];  /* as the connection started */
    char *migration[FL_SESSION_NSETTINGS]; /* as the migration left them */
    char *original_schemas;  /* current_schemas(true) at start, JSON */
    char *schemas;           /* ... as the migration left them */
    int in_migration;        /* MIGRATION state (else PINNED) */
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
 * Pins at session level again, whatever a migration SET: after a
 * transaction ends, when a statement may have SET a session value.
 */
int fl__session_repin(fl_pg_t *pg, fl_session_t *s, fl_error_t *err) FL_NODISCARD;
/* The next migration starts from the connection's original settings. */
void fl__session_reset(fl_session_t *s);
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
} fl_net_touched_t;

/* Takes a snapshot (on the pinned session); out is released by the caller. */
/*
 * scope: "" or NULL every user schema; a schema target's name: that
 * schema and public only (a tenant's migration is not expected to touch
 * another tenant's tables, and the net stays as cheap as one tenant).
 */
int fl__net_snapshot(fl_pg_t *pg, const char *scope, fl_net_snap_t *out,
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
void fl__net_touched_release(fl_net_touched_t *t);
/* True when a column table before already had was dropped since. */
int fl__net_lost_column(const fl_net_touched_t *t, const fl_net_rel_t *before);

/* ---- backup.c: backups, reconcile, restore -------------------------- */

typedef struct {
    int64_t version;
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
} fl_backup_t;

void fl__backup_release(fl_backup_t *b);

/*
 * Backs up table pre->oid (pre: the table at the start of the run, whose
 * names and columns the backup keeps), locking it in lockmode first.
 * FL_ECONFLICT when this run already changed the table (the caller backs
 * it up before the first statement instead).  *describe gets where the
 * backup went (new string).  Must run in the migration's transaction.
 */
int fl__backup_take(fl_pg_t *pg, const fl_backup_ctx_t *ctx,
                    const fl_net_rel_t *pre, const char *lockmode,
                    int stmt_index, fl_backup_t *out, char **describe,
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

/* "<dir>/b<id>.copy"; new string. */
char *fl__backup_file_path(const char *dir, int64_t id);
/* The file of a dump backup, relocated under relocate_dir when given. */
char *fl__backup_locate(const char *recorded, const char *relocate_dir);
/*
 * Opens the file of backup id (NULL: any) at path for reading, only if it
 * is where and what flotilla writes (see backup.c); -1 in *fd otherwise.
 */
int fl__backup_file_open(const char *path, const char *id, int *fd,
                         fl_error_t *err) FL_NODISCARD;
/* Removes a backup file after the same checks. */
int fl__backup_file_remove(const char *path, fl_error_t *err) FL_NODISCARD;

typedef struct {
    int accept_loss;            /* restore what can be, note the rest */
    const char *relocate_dir;   /* rollback --backup-dir; NULL: recorded */
    const char *target;         /* the ledger's target: "" or the schema */
} fl_restore_opts_t;

typedef struct {
    int tables;                 /* backups restored */
    long long rows;             /* rows put back */
    long long removed;          /* rows the migration added, removed */
    int sequences;
    char **notes;               /* accepted losses */
    size_t nnotes;
    char **files;               /* dump files to remove after COMMIT */
    size_t nfiles;
    int replica;                /* session_replication_role is replica */
} fl_restore_t;

/*
 * Restores every backup of version, newest first, proves each, releases
 * it, and sets back its sequences.  Runs in the rollback's transaction,
 * after down, on the pinned session.  res is released by the caller.
 */
int fl__restore_backups(fl_pg_t *pg, const fl_restore_opts_t *o,
                        int64_t version, fl_restore_t *res,
                        fl_error_t *err) FL_NODISCARD;
void fl__restore_release(fl_restore_t *res);

/* A retry's wait: base * 2^attempt times a random factor in [0.5, 1]. */
int64_t fl__pipeline_backoff(fl_pipeline_t *p, int64_t base, int attempt);

#endif
