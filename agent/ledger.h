/*
 * ledger.h - the ledger inside each target database (schema "flotilla"):
 * the source of truth for what was applied, backed up and logged there.
 *
 *   flotilla.ledger_meta        the ledger's own schema version
 *   flotilla.schema_migrations  one row per migration version: its state
 *                               (running, applied, failed, rolling_back,
 *                               rolled_back),
 *                               checksum, bundle, timings, retries, error
 *   flotilla.migration_logs     one row per pipeline step
 *   flotilla.backups            one row per table backup
 *
 * Every row belongs to a target: the whole database ("") or one schema
 * of it (schema-per-tenant), named in the column target.
 *
 * Writes happen on the caller's connection and inside the caller's
 * transaction, so a transactional migration and its ledger row commit or
 * roll back together: applied exactly once or not at all.
 */
#ifndef FL_AGENT_LEDGER_H
#define FL_AGENT_LEDGER_H

#include <stdint.h>

#include "agent/pg.h"
#include "common/error.h"
#include "proto/migration.h"

#define FL_LEDGER_VERSION 10

typedef struct {
    fl_version_t version;
    char *name;
    char *checksum;
    char *bundle_id;       /* NULL for a migrations directory */
    char *status;          /* running, applied, failed, rolled_back */
    int transactional;
    int statements_done;
    int statements_total;
    char *started_at;
    char *finished_at;
    int64_t duration_ms;
    int64_t lock_wait_ms;
    int retries;
    char *applied_by;
    char *agent;
    char *error_sqlstate;
    char *error_message;
    char *error_position;
    char *file;            /* the migration's file name */
    int down_done;         /* rolling_back: down statements committed */
    int schema_recorded;   /* its schema changes are in schema_changes */
    int schema_format;     /* the kinds of object they cover
                              (FL_SCHEMA_FORMAT, agent/schema.h); 1 on a
                              row older than ledger v10 */
    char *rollout_id;      /* the fleet rollout that last wrote the row;
                              "" outside one */
    char *baseline_source; /* recorded by `flotilla baseline` without
                              running: what said it had run ("diesel",
                              "--to"); NULL when flotilla ran it */
    char *up_checksum;     /* hex; NULL on a row older than ledger v7 */
    char *down_checksum;   /* hex of the down it was applied with; NULL
                              on a row older than ledger v7 */
    char *down_sql;        /* the down it was applied with; NULL: none */
    char *applied_snapshot; /* pg_snapshot of the record of it applied,
                              in its transaction (without one: of the
                              record of its run's start), as text; NULL
                              before ledger v9, for a baseline's row, or
                              not applied */
    char *applied_xids;    /* xid[] its transaction held then (text) */
} fl_ledger_row_t;

typedef struct {
    fl_ledger_row_t *items; /* ordered by version (proto/version.h) */
    size_t count;
} fl_ledger_t;

/*
 * Creates the schema and tables when missing and upgrades an older
 * ledger.  Serialised by a transaction-level advisory lock so concurrent
 * first runs do not collide.  Must be called outside a transaction.
 */
int fl_ledger_ensure(fl_pg_t *pg, fl_error_t *err) FL_NODISCARD;

/*
 * True (1) when the ledger exists; 0 when not; negative on error, which
 * includes a ledger owned by a role other than flotilla's and not a
 * superuser (see ledger.c): nothing in it is read; and a damaged ledger
 * (a table or column of its version dropped): FL_EINVAL naming them.
 * fl_ledger_ensure and fl_ledger_load refuse a damaged ledger the same
 * way, and never re-create it.
 */
int fl_ledger_exists(fl_pg_t *pg, fl_error_t *err) FL_NODISCARD;

/*
 * Reads the schema_migrations rows of target ("" the whole database, or a
 * schema's name; see ledger.c, version 4) into out (empty if no ledger).
 * A version in the ledger that is not one (version.h) is FL_EINVAL naming
 * it: the ledger was edited by hand.
 */
int fl_ledger_load(fl_pg_t *pg, const char *target, fl_ledger_t *out,
                   fl_error_t *err) FL_NODISCARD;
/*
 * fl_ledger_ensure() then the rows of target, as fl_ledger_load() reads
 * them, without checking again on the same connection what ensure has
 * just checked (owner, damage, existence: three queries fewer on a
 * target's every run).  Outside a transaction, like ensure.
 */
int fl_ledger_ensure_load(fl_pg_t *pg, const char *target, fl_ledger_t *out,
                          fl_error_t *err) FL_NODISCARD;
void fl_ledger_release(fl_ledger_t *l);
/*
 * Whether m (from a source) is the migration row recorded as applied:
 * the same up checksum (the down may have changed since: fixing a down
 * is not drift).  A row older than ledger v7 has no up checksum: m's full
 * checksum, computed with the down the row was applied with (down_sql),
 * must equal the row's.
 */
int fl_ledger_row_matches(const fl_ledger_row_t *row, const fl_migration_t *m);

/*
 * The two checksums drift compares for row and m, as the messages show
 * them: the up section's when the row records one, else the whole
 * migration's.  *applied points into row; source gets the source's.
 */
void fl_ledger_drift_sums(const fl_ledger_row_t *row, const fl_migration_t *m,
                          const char **applied, char source[65]);

/*
 * Whether row holds something of its migration in the target: applied,
 * being rolled back, or a no-transaction migration that committed some
 * statements before it stopped (running or failed).
 */
int fl_ledger_row_in_effect(const fl_ledger_row_t *row);
/* The last of those: applied in part (running or failed after k > 0). */
int fl_ledger_row_partial(const fl_ledger_row_t *row);

/* The row for version, or NULL; lent from l. */
const fl_ledger_row_t *fl_ledger_find(const fl_ledger_t *l,
                                      const fl_version_t *version);

/*
 * A migration the ledger has (applied, being rolled back, or half-applied)
 * that the source lacks: its file disappeared, or it was renumbered
 * (renamed, or both): renumbered_as is then the source's migration whose
 * checksum, computed with the ledger's version and name, is the one
 * applied.  Both lent from their lists.
 */
typedef struct {
    const fl_ledger_row_t *row;
    const fl_migration_t *renumbered_as;
} fl_ledger_gap_t;

/*
 * The gaps between ledger and migs (the source), in version order, into
 * *out (a new array, NULL when none; free it); returns their number.
 * Only rows applied from the same kind of source are compared: from a
 * directory when bundle_id is NULL, else from that bundle (a bundle may
 * carry only the migrations it adds).
 */
size_t fl_ledger_gaps(const fl_ledger_t *ledger, const fl_migration_list_t *migs,
                      const char *bundle_id, fl_ledger_gap_t **out);

/* One migration_logs row. */
typedef struct {
    fl_version_t version;  /* empty when not about one migration */
    const char *name;
    const char *step;      /* verify, validate, backup, execute, verify-after, rollback, restore */
    const char *status;    /* started, ok, failed, skipped, refused */
    int64_t duration_ms;
    const char *message;
    const char *bundle_id;
    const char *rollout_id; /* "" locally */
    const char *target;    /* "" or the schema of a schema target */
    int64_t time_us;       /* when the step happened (µs since the epoch);
                              0: now */
} fl_ledger_log_t;

/*
 * Writes n migration_logs rows in one statement, in the caller's
 * transaction (or autocommit), each with the time its step happened.
 */
int fl_ledger_log(fl_pg_t *pg, const fl_ledger_log_t *entries, size_t n,
                  fl_error_t *err) FL_NODISCARD;

/* The state of one migration to record (insert or update by version). */
typedef struct {
    const fl_migration_t *m;   /* version, name, checksum, file, down */
    const char *bundle_id;
    const char *rollout_id;
    const char *agent;
    const char *status;        /* running, applied, failed, rolled_back */
    int transactional;
    int statements_done;
    int statements_total;
    int64_t duration_ms;
    int64_t lock_wait_ms;
    int retries;
    const fl_error_t *error;   /* failed: what went wrong; else NULL */
    const char *error_position; /* "file:line:col" or NULL */
    const char *fingerprint;   /* schema fingerprint after apply, or NULL */
    const char *target;        /* "" or the schema of a schema target */
    const char *baseline_source; /* baselined, not run: what said it had
                                    run; NULL when it ran */
    int checksum_unknown;      /* a repeatable migration baselined without
                                  proof it ran as it is now: recorded with
                                  no checksum, so it runs next time */
} fl_ledger_record_t;

/*
 * Inserts or updates the schema_migrations row of r->m->version; for a
 * repeatable migration (r->m->repeatable), its repeatable_migrations row
 * by name (ledger version 8; error fields but detail and hint).  The
 * migration's down section is stored with it, for a rollback whose
 * source is lost (--down-from-ledger).  Runs in the caller's transaction.
 */
int fl_ledger_record(fl_pg_t *pg, const fl_ledger_record_t *r,
                     fl_error_t *err) FL_NODISCARD;

/*
 * fl_ledger_record as a step of fl_pg_batch (agent/pg.h), to send with
 * the statements around it in one round trip: out->step, with its
 * parameters in out (and lent from r: both must outlive the batch).
 */
typedef struct {
    fl_pg_step_t step;
    const char *params[26];
    char done[16], total[16], dur[24], wait[24], retries[16], downline[16],
        up_sum[65], down_sum[65];
} fl_ledger_step_t;

void fl_ledger_record_step(fl_ledger_step_t *out, const fl_ledger_record_t *r);

/* ---- Repeatable migrations (ledger version 8) ---- */

/* One repeatable_migrations row. */
typedef struct {
    char *name;
    char *file;
    char *checksum;        /* NULL: it needs a run (rerun_reason says why) */
    char *status;          /* running, applied, failed */
    int runs;              /* runs that reached applied here */
    char *finished_at;
    char *baseline_source; /* recorded by a baseline; NULL when it ran */
    char *rerun_reason;    /* why it needs a run, or NULL */
    char *error_message;   /* failed: what went wrong */
} fl_ledger_repeatable_t;

typedef struct {
    fl_ledger_repeatable_t *items; /* by name */
    size_t count;
} fl_ledger_repeatables_t;

/*
 * Reads target's repeatable_migrations rows into out (empty without a
 * ledger, or with one older than version 8).  Errors as fl_ledger_load.
 */
int fl_ledger_load_repeatables(fl_pg_t *pg, const char *target,
                               fl_ledger_repeatables_t *out,
                               fl_error_t *err) FL_NODISCARD;
void fl_ledger_repeatables_release(fl_ledger_repeatables_t *l);
/* The row named name, or NULL; lent from l. */
const fl_ledger_repeatable_t *
fl_ledger_find_repeatable(const fl_ledger_repeatables_t *l, const char *name);

/*
 * Where repeatable migration m stands against its row (NULL: none):
 * "new" (no row), "changed" (another checksum), "needs a run" (its
 * checksum forgotten: rerun_reason), "failed" or "running" (its last run
 * did not finish), or "up to date".  A static string; every state but
 * "up to date" means apply runs it.
 */
const char *fl_ledger_repeatable_state(const fl_ledger_repeatable_t *row,
                                       const fl_migration_t *m);

/*
 * Forgets the checksum of every repeatable migration of target (in the
 * caller's transaction), reason saying why: the next apply that leaves
 * every versioned migration applied runs them again.  *count (may be
 * NULL) gets the rows changed.
 */
int fl_ledger_repeatables_forget(fl_pg_t *pg, const char *target,
                                 const char *reason, int *count,
                                 fl_error_t *err) FL_NODISCARD;

#endif
