/*
 * backups.h - what `flotilla backups` (and, later, the agent) does with
 * the backups the pipeline took: pruning them.
 *
 * A backup is a table flotilla_backup.b<id> (with a<id>, the rows the
 * migration added, and for files c<id>, the rows it changed) or a file
 * <backup dir>/<database>-<target id>/b<id>.copy whose absolute path is
 * in the ledger.  Restored backups are released by the rollback itself;
 * pruning releases the others, after which a rollback of their
 * migration refuses to run.
 */
#ifndef FL_AGENT_BACKUPS_H
#define FL_AGENT_BACKUPS_H

#include <stddef.h>
#include <stdint.h>

#include "agent/pg.h"
#include "common/error.h"

typedef struct {
    size_t pruned;      /* backups released (tables dropped, files removed) */
    size_t forgotten;   /* of those, how many had their row deleted too
                           (their migration was not in effect) */
    char **problems;    /* "path: why" of files that could not be removed */
    size_t nproblems;
} fl_prune_result_t;

void fl_prune_result_release(fl_prune_result_t *r);

/*
 * Releases every backup taken more than older_ms ago and neither
 * restored nor pruned: drops its tables and removes its file (looked for
 * under relocate_dir when not NULL, as rollback --backup-dir does), one
 * transaction per backup, the mark committed before the file is removed.
 * A file that cannot be removed is listed in r->problems; only a regular
 * file named b<id>.copy is ever removed.  dry_run counts without
 * changing anything.  target: only that target's backups ("" the whole
 * database's, or a schema's name); NULL every target's.  pg comes from
 * fl_pg_open (search_path pinned).
 */
int fl_backups_prune(fl_pg_t *pg, const char *target, int64_t older_ms,
                     const char *relocate_dir, int dry_run,
                     fl_prune_result_t *r, fl_error_t *err) FL_NODISCARD;

/*
 * A condition on the row of flotilla.backups named b: true for a
 * leftover, a backup neither released nor pruned whose migration is not
 * in effect in its target (not applied, being rolled back or running:
 * rolled back, skipped with rollback --skip-down, or failed), so nothing
 * will ever restore it.
 */
extern const char fl_backups_leftover_sql[];

/*
 * Releases every leftover backup of target (NULL: every target's) and
 * deletes its row: nothing refers to it any more.  Files, problems and
 * dry_run as for fl_backups_prune.
 */
int fl_backups_prune_leftovers(fl_pg_t *pg, const char *target,
                               const char *relocate_dir, int dry_run,
                               fl_prune_result_t *r,
                               fl_error_t *err) FL_NODISCARD;

/*
 * Releases the one backup id of target (NULL: whichever target has it).
 * Its row is deleted when its migration is not in effect; otherwise it is
 * marked pruned and kept, so that a rollback of that migration refuses
 * rather than lose the data.  FL_ENOTFOUND when there is no such backup;
 * FL_ECONFLICT when it was already pruned or released and its migration
 * is in effect (nothing left to remove).
 */
int fl_backups_prune_id(fl_pg_t *pg, const char *target, int64_t id,
                        const char *relocate_dir, int dry_run,
                        fl_prune_result_t *r, fl_error_t *err) FL_NODISCARD;

#endif
