/*
 * repeatable.c - repeatable migrations (issue 14): Flyway's R__name.sql
 * and flotilla's own R__name.sql, a file that defines views, functions
 * and the like and runs again whenever it changes.
 *
 * Semantics (docs/migrations.md, "Repeatable migrations"):
 *
 *   - When: after every pending versioned migration of the run, and only
 *     when the run leaves every versioned migration of the source applied.
 *     `apply --to V` that stops below the source's last version, or a run
 *     in which a versioned migration failed, runs none of them (the event
 *     log says so): they are written against the schema of the whole
 *     source.
 *   - Which: each whose checksum differs from the one its ledger row
 *     (flotilla.repeatable_migrations, keyed by target and name) last
 *     recorded: new (no row), changed, failed or interrupted the last
 *     time, or forgotten (checksum NULL: see rollback below, and baseline).
 *     An unchanged one is skipped.
 *   - Order: Flyway's, by description (the name with '_' read as a
 *     space), fl_migration_repeatable_cmp.
 *   - How: each through the same pipeline as a versioned migration
 *     (fl__apply_migration): lint, live checks, its own transaction with
 *     its ledger row inside it, so that it is applied exactly once per
 *     change, even under kill -9 (the row and the statements commit
 *     together); no-transaction when it cannot run in one (the same
 *     inference as a versioned migration's), then statement by statement,
 *     and an interrupted run starts again from its first statement (a
 *     repeatable migration is written to run again).  It has no down and
 *     takes no backup: one that destroys data (DROP TABLE, DELETE, ...)
 *     is refused before anything runs.
 *   - Failure: the failed one's row says failed, with its error; the
 *     repeatable migrations after it are not run; nothing versioned is
 *     rolled back because of it; apply exits with the pipeline's failure
 *     code.  The next apply runs it again.
 *   - Rollback does not undo repeatable migrations (Flyway has no undo for
 *     them either).  A rollback that rolls back any versioned migration
 *     forgets the checksum of every repeatable migration of the target
 *     first (fl__repeatables_forget), so that the apply that makes the
 *     source whole again re-creates the views and functions a down
 *     dropped.  Forgetting comes before the first down: a crash between
 *     the two leaves them forgotten, which only costs a run.  The
 *     rollback's schema proof accepts an object a repeatable migration
 *     made (flotilla.repeatable_objects: what its runs created or changed)
 *     being missing or different after down, and says so
 *     (fl__repeatables_filter_diff).
 *   - status and plan list them: new, changed, needs a run, failed,
 *     running, up to date (fl_ledger_repeatable_state).
 *
 * Limits: an object is known as a repeatable migration's only once a run
 * of it changed the object's catalog definition; one it re-created
 * exactly as it was (after a baseline, say) is not, and a rollback whose
 * down drops it is refused by the proof until a run changed it
 * (--accept-schema-diff says otherwise).
 */
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline_internal.h"
#include "agent/schema.h"
#include "common/alloc.h"
#include "common/buf.h"

/*
 * A repeatable migration destroys no data: nothing would ever restore a
 * backup of it.  FL_EINVAL naming the first statement that does.
 */
int
fl__repeatable_check(const fl_migration_t *m, const fl_stmt_list_t *stmts,
                     fl_error_t *err)
{
    for (size_t i = 0; i < stmts->count; i++) {
        const fl_stmt_t *st = &stmts->items[i];
        if (!st->destructive)
            continue;
        FL_ERR(err, FL_EINVAL, "%s:%d:%d: repeatable migration %s destroys "
               "data", m->file, st->line, st->column, m->file);
        fl_error_set_detail(err, "A repeatable migration is never rolled "
                                 "back, so Flotilla keeps no backup of what "
                                 "it destroys.");
        fl_error_set_hint(err, "Move the statement into a versioned "
                               "migration, which is backed up and can be "
                               "rolled back.");
        return FL_EINVAL;
    }
    return 0;
}

int
fl__apply_repeatables(fl_pipeline_t *p, const fl_source_t *src,
                      fl_apply_result_t *result, fl_error_t *err)
{
    const fl_migration_list_t *reps = src->repeatables;
    fl_ledger_repeatables_t rows = {NULL, 0};
    int rc = 0;

    if (reps == NULL || reps->count == 0)
        return 0;
    if (result->pending > 0) {
        result->repeatables_held = (int)reps->count;
        fl__event(p, FL_STEP_VERIFY, FL_STEP_SKIPPED, NULL, 0, NULL,
                  "%zu repeatable migration%s not run: %d versioned "
                  "migration%s of the source %s pending%s", reps->count,
                  reps->count == 1 ? "" : "s", result->pending,
                  result->pending == 1 ? "" : "s",
                  result->pending == 1 ? "is" : "are",
                  fl_version_is_set(&p->opts.to_version)
                      ? " (after --to)" : "");
        return 0;
    }
    if ((rc = fl_ledger_load_repeatables(p->pg, p->target, &rows, err)) != 0)
        return rc;
    for (size_t i = 0; i < reps->count; i++) {
        const fl_migration_t *m = &reps->items[i];
        const char *state = fl_ledger_repeatable_state(
            fl_ledger_find_repeatable(&rows, m->name), m);

        if (strcmp(state, "up to date") == 0) {
            result->repeatables_current++;
            continue;
        }
        fl__event(p, FL_STEP_VERIFY, FL_STEP_OK, m, 0, NULL,
                  "repeatable migration %s runs: %s", m->file, state);
        rc = fl__apply_migration(p, m, NULL, err);
        /* Its COMMIT ran before the failure: it ran. */
        if (rc == 0 || p->committed_anyway)
            result->repeatables_run++;
        if (rc != 0)
            break;
    }
    fl_ledger_repeatables_release(&rows);
    return rc;
}

int
fl__repeatables_forget(fl_pipeline_t *p, const fl_version_t *version,
                       fl_error_t *err)
{
    char *why = fl_asprintf("migration %s was rolled back", version->text);
    int n = 0, rc;

    rc = fl_ledger_repeatables_forget(p->pg, p->target, why, &n, err);
    if (rc == 0 && n > 0)
        fl__event(p, FL_STEP_ROLLBACK, FL_STEP_OK, NULL, 0, NULL,
                  "%d repeatable migration%s will run again with the next "
                  "apply that applies every versioned migration (%s)", n,
                  n == 1 ? "" : "s", why);
    free(why);
    return rc;
}

int
fl__repeatables_filter_diff(fl_pipeline_t *p, const fl_migration_t *m,
                            fl_schema_diff_list_t *diff, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[1] = {p->target};
    size_t keep = 0;
    int rc;

    if (diff->count == 0)
        return 0;
    rc = fl_pg_query(p->pg, &r,
        "SELECT kind, ident, pg_catalog.string_agg(name, ', ' ORDER BY name)"
        " FROM flotilla.repeatable_objects WHERE target"
        " OPERATOR(pg_catalog.=) $1 GROUP BY kind, ident", 1, params, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < diff->count; i++) {
        fl_schema_diff_t *d = &diff->items[i];
        const char *owner = NULL;

        for (size_t k = 0; k < r.nrows && owner == NULL && d->expected; k++)
            if (strcmp(fl_pg_value(&r, k, 0), d->kind) == 0 &&
                strcmp(fl_pg_value(&r, k, 1), d->ident) == 0)
                owner = fl_pg_value(&r, k, 2);
        if (owner == NULL) {
            diff->items[keep++] = *d;
            continue;
        }
        fl__event(p, FL_STEP_RESTORE, FL_STEP_OK, m, 0, NULL,
                  "%s %s, made by repeatable migration %s, is %s after the "
                  "down of %s: the next apply that applies every versioned "
                  "migration runs it again", d->kind, d->ident, owner,
                  d->actual ? "different" : "gone", m->file);
        free(d->kind);
        free(d->ident);
        free(d->expected);
        free(d->actual);
    }
    diff->count = keep;
    fl_pg_result_release(&r);
    return 0;
}
