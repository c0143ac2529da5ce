/*
 * pipeline.h - the validate -> backup -> execute -> log pipeline that runs
 * migrations on one target database.
 *
 * One fl_pipeline_t drives one target on its own connection; it keeps no
 * global state, so an agent runs many pipelines on many threads.  Every
 * step is reported through the event callback (and written to the
 * target's flotilla.migration_logs).  fl_pipeline_cancel() may be called
 * from any thread: the running statement is cancelled and the pipeline
 * stops with FL_ECANCELLED: the migration's transaction is rolled back (a
 * no-transaction migration keeps the statements it committed, and its
 * ledger row says how many).
 *
 * Per transactional migration (the default), in one transaction:
 *   validate   lint errors (unless allowed), the migration's own validate
 *              statements, live checks from the statement facts (tables
 *              and columns exist, NULLs before SET NOT NULL, duplicates
 *              before UNIQUE, orphans before a validated FOREIGN KEY,
 *              violations before a validated CHECK); a check that depends
 *              on an earlier statement of the same migration runs just
 *              before its statement
 *   backup     before each destructive statement, each table it destroys
 *              data of is locked and copied to flotilla_backup with row
 *              count and an order-independent checksum (once per table
 *              per migration)
 *   execute    statements one per PQexec under SET LOCAL lock_timeout and
 *              statement_timeout, each behind a savepoint so that a lock
 *              timeout (55P03) is retried with jittered exponential
 *              backoff, reporting the sessions holding the table's locks
 *   verify     the migration's verify statements, then the ledger row and
 *              the schema fingerprint; COMMIT
 * A no-transaction migration runs statement by statement, recording
 * progress in the ledger, and resumes from the first statement not done.
 *
 * Rollback runs `down` (from the verified source, whose migration must be
 * the one applied) newest first, restores backed-up rows and proves them
 * and the schema, in one transaction per migration.
 */
#ifndef FL_AGENT_PIPELINE_H
#define FL_AGENT_PIPELINE_H

#include <stdint.h>

#include "agent/ledger.h"
#include "agent/schema.h"
#include "agent/source.h"
#include "common/error.h"
#include "proto/migration.h"

typedef enum {
    FL_STEP_LOCK,
    FL_STEP_VERIFY,
    FL_STEP_VALIDATE,
    FL_STEP_BACKUP,
    FL_STEP_EXECUTE,
    FL_STEP_VERIFY_AFTER,
    FL_STEP_ROLLBACK,
    FL_STEP_RESTORE,
    FL_STEP_BASELINE          /* recorded as applied without running */
} fl_step;

typedef enum {
    FL_STEP_STARTED,
    FL_STEP_OK,
    FL_STEP_FAILED,
    FL_STEP_SKIPPED,
    FL_STEP_REFUSED,
    FL_STEP_RETRY,
    FL_STEP_OVERRIDDEN        /* a refusal an option let through (said
                                 so: --allow-lint-errors, ...) */
} fl_step_status;

const char *fl_step_name(fl_step step);
const char *fl_step_status_name(fl_step_status status);

typedef struct {
    fl_step step;
    fl_step_status status;
    fl_version_t version;     /* empty when not about one migration */
    const char *name;         /* migration name or NULL */
    int64_t duration_ms;
    const char *message;      /* one line for people */
    const fl_error_t *error;  /* FAILED and REFUSED; NULL otherwise */
    int64_t time_us;          /* when it happened, microseconds since the
                                 epoch (it may be delivered later) */
} fl_pipeline_event_t;

/*
 * The event callback.  It is never called while a migration's transaction
 * is open (its locks held): events that happen inside one are queued and
 * delivered, in order and with the time they happened, when it ends.  It
 * runs on the thread that runs the pipeline; ev and its strings are lent
 * for the call.
 */
typedef void (*fl_pipeline_event_fn)(const fl_pipeline_event_t *ev, void *arg);

typedef struct {
    const char *dsn;          /* libpq string or URI; NULL: PG* variables */
    const char *schema;       /* a schema-per-tenant target: this schema of
                                 the database (first on the migration's
                                 search_path, its own ledger rows, backups
                                 and lock); NULL: the whole database */
    const char *agent;        /* recorded in the ledger; "local" by default */
    const char *rollout_id;   /* "" outside a fleet rollout */
    const char *undo_rollout; /* FL_ROLLBACK_BUNDLE: only the migrations
                                 whose ledger rows this rollout wrote (a
                                 rollout's rollback); NULL: the bundle's */
    const char *bundle_id;    /* NULL for a migrations directory */
    fl_version_t to_version;  /* apply up to and including; empty: all */
    int allow_out_of_order;   /* apply a pending version below an applied one */
    int allow_lint_errors;    /* lint errors become warnings */
    int64_t lock_wait_ms;     /* how long to poll for the target lock */
    int64_t lock_timeout_ms;  /* default SET lock_timeout per migration */
    int64_t statement_timeout_ms; /* default statement_timeout; 0: none */
    int lock_retries;         /* retries after a lock timeout */
    int64_t retry_base_ms;    /* first backoff; doubles, with jitter */
    const char *backup_dir;   /* where dump-file backups go */
    int64_t backup_dump_above; /* tables larger than this (bytes) are backed
                                  up to a file; 0: never */
    fl_pipeline_event_fn on_event;
    void *arg;
    int redact_samples;       /* check refusals show keys, not values */
    const char *search_path;  /* the migration's search_path; NULL:
                                 "$user", public (never the database's
                                 default, which its owner may set) */
    /* Where a bundle may run (its signed scope; proto/bundle.h): */
    const char *environment;  /* this target's environment; NULL: none,
                                 so no bundle is admitted */
    const char *const *labels; /* this target's labels, "key=value" */
    size_t nlabels;
    int allow_older_release;  /* apply a bundle older than (or numbered
                                 as) a release applied on its channel;
                                 needs reason, which the log keeps */
    /* Rollback only: */
    int relocate_backups;     /* backup_dir was given: look for files there */
    int accept_loss;          /* restore what can be; record the rest */
    int accept_schema_diff;   /* roll back even if the schema differs */
    int down_from_ledger;     /* run the ledger's copy of down (no source) */
    const char *reason;       /* why (required with either accept flag,
                                 and with allow_older_release) */
    /* Plan only: */
    int no_rehearse;          /* a plan from the catalog and the text: no
                                 transaction, no statement run */
    /* Apply, plan and rollback: */
    const char *lint_enforce_from; /* lint.enforce_from: lint errors of
                                 migrations before this version are
                                 reported as warnings and refuse nothing;
                                 NULL: every migration is held to them.
                                 A bundle that carries its own (signed)
                                 gate is held to that one instead */
    /* Rollback only: */
    int bundle_known;         /* FL_ROLLBACK_BUNDLE: refused when no
                                 ledger row names the bundle (an
                                 operator's mistyped id); unset, 0 are
                                 rolled back (an agent's target may never
                                 have had it) */
} fl_pipeline_opts_t;

#define FL_PIPELINE_OPTS_INIT                                              \
    {NULL, NULL, "local", "", NULL, NULL, FL_VERSION_INIT, 0, 0, 30000,    \
     2000, 0, 5, 200,                                                      \
     "flotilla-backups", (int64_t)1024 * 1024 * 1024, NULL, NULL, 0, NULL, \
     NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, 0, NULL, 0}

typedef struct fl_pipeline fl_pipeline_t;

/* Connects to the target.  opts is copied; its strings must outlive p. */
/*
 * 0 when schema (a schema target's) exists on pg; FL_ENOTFOUND, saying so
 * with a hint, when it does not; FL_EINVAL when it is longer than a name.
 */
int fl_pipeline_schema_check(fl_pg_t *pg, const char *schema,
                             fl_error_t *err) FL_NODISCARD;

int fl_pipeline_open(fl_pipeline_t **out, const fl_pipeline_opts_t *opts,
                     fl_error_t *err) FL_NODISCARD;
void fl_pipeline_close(fl_pipeline_t **p);

/* Thread safe; idempotent. */
void fl_pipeline_cancel(fl_pipeline_t *p);
/*
 * After a cancel the server did not take: closes the connection under
 * the running statement (fl_pg_abort), which then fails as a connection
 * lost.  May be called from another thread, like fl_pipeline_cancel.
 */
void fl_pipeline_abort(fl_pipeline_t *p);

/*
 * Reads the target's ledger (fl_ledger_load: its rows, none when it has
 * no ledger yet) on the pipeline's own connection, outside any
 * migration's transaction, so that a caller that needs the ledger before
 * and after a run (the agent daemon) opens no other connection for it.
 * On p's thread, between the calls below.  out gets new rows
 * (fl_ledger_release); errors as fl_ledger_load's.
 */
int fl_pipeline_ledger(fl_pipeline_t *p, fl_ledger_t *out,
                       fl_error_t *err) FL_NODISCARD;

/* Outcome counts of an apply. */
typedef struct {
    int applied;
    int skipped;   /* already applied with the same checksum */
    int pending;   /* left pending (after --to or a failure) */
    /* Repeatable migrations (agent/repeatable.c): */
    int repeatables_run;     /* ran in this apply */
    int repeatables_current; /* up to date: not run */
    int repeatables_held;    /* not run: versioned migrations pending */
} fl_apply_result_t;

#define FL_APPLY_RESULT_INIT {0, 0, 0, 0, 0, 0}

/*
 * Applies the pending migrations of src (which fl_source_open verified;
 * anything else is a programmer error) in order, then its repeatable
 * migrations that need a run (agent/repeatable.c).  Errors: FL_EINVAL for
 * validation refusals and drift (nothing changed), FL_ECONFLICT when the
 * target lock is held elsewhere, FL_ETIMEOUT when lock retries ran out,
 * FL_EDB when a statement failed (its migration rolled back),
 * FL_ECANCELLED.  The error names the migration, file:line:col and
 * SQLSTATE.
 */
int fl_pipeline_apply(fl_pipeline_t *p, const fl_source_t *src,
                      fl_apply_result_t *result, fl_error_t *err) FL_NODISCARD;

/* ---- The dry run's report (fl_pipeline_plan) ---- */

typedef struct {
    char *table;              /* as the statement names it */
    const char *lock;         /* fl_lock_level_name: static */
    int writes;
} fl_plan_lock_t;

typedef struct {
    char *check;              /* the kind: "not-null", "unique", ... */
    char *target;             /* what it checked: "t(a)" */
    int ok;
    int64_t count;            /* offending rows; 0 when none counted */
    char *sample;             /* NULL or some offending values */
    char *problem;            /* NULL when ok */
    char *skipped;            /* NULL, or why only the statement can tell
                                 (the check was not run) */
    char *holds;              /* NULL, or why it holds whatever the rows */
} fl_plan_check_t;

typedef struct {
    int index;                /* 1-based */
    int line, column;
    char *kind;               /* "ALTER TABLE", ...; "" when unknown */
    char *sql;
    fl_plan_lock_t *locks;
    size_t nlocks;
    int rewrites, scans, destructive, no_transaction;
    char **backups;           /* tables it destroys data of */
    size_t nbackups;
    fl_plan_check_t *checks;
    size_t nchecks;
    char *rehearsal;          /* "ok", "not rehearsed", the error, or NULL
                                 (the migration stopped before it) */
    int observed;             /* observed_rewrites (and maybe _locks) read */
    int observed_locks_read;  /* 0 past the rehearsal's lock bound */
    char **observed_locks;    /* "public.t AccessExclusiveLock" */
    size_t nobserved_locks;
    char **observed_rewrites; /* tables whose storage it replaced */
    size_t nobserved_rewrites;
} fl_plan_stmt_t;

typedef struct {
    char *rule;
    const char *severity;     /* static */
    char *message;
    int line, column;
    char *help;               /* NULL when none */
    int not_enforced;         /* an error reported as a warning: the
                                 migration is before lint.enforce_from */
} fl_plan_finding_t;

typedef struct {
    char *statement;          /* the migration's validate statement */
    char *at;                 /* file:line:col */
    int ok;
    char *result;             /* its first column, NULL for none */
} fl_plan_validate_t;

typedef struct {
    fl_version_t version;
    char *name, *file, *checksum;
    int no_transaction;
    char *transaction_why;    /* another tool's migration: why it runs
                                 without a transaction; NULL otherwise */
    char *note;               /* another tool's migration made of several
                                 files (pop's groups): which; NULL
                                 otherwise */
    char *state;              /* "pending", a ledger status, "not selected" */
    int pending;              /* planned: the fields below are set */
    const char *verdict;      /* "ok", "refused", "failed", "not rehearsed" */
    char *problem;            /* why, when not ok; NULL otherwise */
    fl_plan_stmt_t *stmts;
    size_t nstmts;
    fl_plan_finding_t *lint;
    size_t nlint;
    fl_plan_validate_t *validate;
    size_t nvalidate;
} fl_plan_migration_t;

typedef struct {
    char *sequence;
    int has_before;           /* 0: it had never been called */
    int64_t before;
    int has_after;
    int64_t after_rehearsal;
    int put_back;             /* 0: used since the rehearsal, left alone */
} fl_plan_sequence_t;

/* A repeatable migration in a plan: listed, not rehearsed. */
typedef struct {
    char *name, *file, *checksum;
    const char *state;        /* fl_ledger_repeatable_state (static) */
    int would_run;            /* apply would run it after the versioned */
    int held;                 /* it needs a run, but versioned migrations
                                 would be left pending (--to): not run */
} fl_plan_repeatable_t;

typedef struct {
    char *target;             /* host, port, database */
    int server_version;
    int rehearse;             /* 0 with opts.no_rehearse */
    char *problem;            /* the source refused (drift, ...), or NULL */
    char *detail;
    char *release_override;   /* an older release let through, or NULL */
    fl_plan_migration_t *migrations; /* every migration of the source */
    size_t nmigrations;
    fl_plan_sequence_t *sequences;   /* moved by the rehearsal */
    size_t nsequences;
    fl_plan_repeatable_t *repeatables; /* the source's, in run order */
    size_t nrepeatables;
    int pending, rehearsed;
    int ok;                   /* nothing refused or failed */
    int proven;               /* ok, and every pending migration rehearsed
                                 (or no rehearsal asked for) */
    const char *not_rehearsed_because; /* static, or NULL */
    fl_schema_state_t schema_state; /* whether the schema is as flotilla
                                 left it (agent/schema.h) */
} fl_plan_t;

#define FL_PLAN_INIT {0}

/* Frees what plan holds; it may be used again after FL_PLAN_INIT. */
void fl_plan_release(fl_plan_t *plan);

/*
 * The dry run: verifies and validates the pending migrations and, unless
 * opts.no_rehearse, rehearses them under the target lock in one
 * transaction that is rolled back, each behind a savepoint of its own
 * released at once, under apply's lock_timeout and statement_timeout (60 s
 * when none is set); sequences the rehearsal moved are put back.  Fills
 * *out (released by fl_plan_release, on error too) with, per migration
 * and statement: transaction group, locks, rewrite/scan, destructive,
 * tables to back up, checks and their results, lint findings, rehearsal
 * result, and a verdict.  Changes nothing in the target, but takes the
 * locks the rehearsed statements take until it ends.  Returns 0 whatever
 * the verdict; out->ok says whether anything is refused or fails,
 * out->proven whether every pending migration was rehearsed (or no
 * rehearsal was asked for).  FL_ECONFLICT when the target lock is held
 * elsewhere.
 */
int fl_pipeline_plan(fl_pipeline_t *p, const fl_source_t *src,
                     fl_plan_t *out, fl_error_t *err) FL_NODISCARD;

typedef enum {
    FL_ROLLBACK_LAST,    /* the newest applied migration */
    FL_ROLLBACK_TO,      /* every applied migration above to_version */
    FL_ROLLBACK_BUNDLE   /* every applied migration of bundle_id (that
                            opts.undo_rollout applied, when set) */
} fl_rollback_mode;

/*
 * Rolls back per mode, newest first, each migration in one transaction:
 * down, restore of its backups, proof of the rows and of the schema,
 * ledger row rolled_back.  down comes from src (verified by
 * fl_source_open): the migration of the same version, whose checksum must
 * equal the one the ledger recorded when it was applied.  Only with
 * opts.down_from_ledger (the source is lost) may src be NULL, or lack the
 * migration, and the ledger's copy of down run; that is said in the log.
 * to_version is for FL_ROLLBACK_TO (NULL otherwise; empty: every applied
 * migration).  *count gets the number rolled back.  Anything that cannot be put back
 * fails that migration's rollback with nothing changed (FL_EFAIL, or
 * FL_EINVAL when the source does not match).
 */
int fl_pipeline_rollback(fl_pipeline_t *p, const fl_source_t *src,
                         fl_rollback_mode mode,
                         const fl_version_t *to_version,
                         const char *bundle_id, int *count,
                         fl_error_t *err) FL_NODISCARD;
/*
 * How many copies the last fl_pipeline_rollback() kept, committed, of
 * data it removed: what a down dropped or emptied, rows the restore
 * replaced that were written since the migration (flotilla_backup,
 * never restored; `flotilla backups list --leftovers`).
 */
int fl_pipeline_kept(const fl_pipeline_t *p);

/* ---- Baselines (agent/baseline.c) ---- */

typedef struct {
    int baselined;     /* migrations this run recorded */
    int already;       /* recorded before, the same migration */
    int pending;       /* left for apply: not run, not recorded */
    fl_version_t through; /* the newest version that ran (empty: none) */
    char *tool_ledger; /* the tool's table read ("public.x"), or NULL */
} fl_baseline_result_t;

/*
 * Records the migrations of src that already ran on the target as
 * applied, without running them (agent/baseline.c says how each tool's
 * ledger is read).  Which ran: with from (a tool's name: diesel,
 * golang-migrate, pop, sqlx, dbmate, flyway), what that tool's ledger in
 * the target's schema (public for a database) says, bounded by
 * opts.to_version when set; without, every migration up to
 * opts.to_version (0: all).  Under the target lock; all rows in one
 * transaction, one log row per migration, each row's baseline_source
 * naming from or "--to".  Idempotent: migrations recorded already with
 * the same checksum are counted in out->already.  Errors, nothing
 * written: FL_EINVAL with the difference (a dirty or failed row in the
 * tool's ledger, a version there the source lacks, a gap, tables or
 * columns the migrations create missing from the database),
 * and when flotilla's ledger disagrees; FL_ENOTFOUND when the tool's table
 * is not there.  out is released with fl_baseline_result_release, on
 * error too.
 */
int fl_pipeline_baseline(fl_pipeline_t *p, const fl_source_t *src,
                         const char *from, fl_baseline_result_t *out,
                         fl_error_t *err) FL_NODISCARD;
void fl_baseline_result_release(fl_baseline_result_t *r);
/*
 * The escape hatch for a migration whose down cannot run (rollback
 * --skip-down): marks version rolled_back without running its down or
 * restoring its backups, with the note "down skipped: REASON" in the
 * ledger row and a skipped rollback event in the log.  What the
 * migration changed stays in the database; its backups stay too, as
 * leftovers (fl_backups_prune_leftovers).  Only for the newest migration
 * in effect (applied, or half rolled back): FL_EINVAL naming a newer
 * one, FL_ENOTFOUND when version is not in effect; reason is required
 * (FL_EINVAL when empty).
 */
int fl_pipeline_skip_down(fl_pipeline_t *p, const fl_version_t *version,
                          const char *reason, fl_error_t *err) FL_NODISCARD;

#endif
