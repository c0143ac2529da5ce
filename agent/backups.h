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
    size_t pruned;      /* backups released and marked pruned */
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

#endif
