/*
 * targetlock.c - the target's lock: a session-level advisory lock per
 * target (the database, or one schema of it), so that two flotilla runs
 * never migrate the same target at once, while the tenants of one
 * database migrate in parallel.  Taken by polling pg_try_advisory_lock,
 * never by waiting in pg_advisory_lock (see fl__lock_target).
 */
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline_internal.h"

/*
 * Advisory lock keys: (FL__LOCK_CLASS, hash of the target): the database's
 * name, or "<database>/<schema>" for a schema target ($1 the schema, ""
 * for the whole database), so that two schema tenants of one database
 * migrate in parallel.  A schema target also holds the database's key
 * shared, and the whole database holds it exclusively: a run on the
 * whole database (whose migrations may touch every schema) and a run on
 * one of its tenants exclude each other.  Both keys are tried in one
 * statement, which keeps neither when it cannot have both.  The keys'
 * SQL is in pipeline_internal.h: the leftovers between migrations spare
 * them (session.c).
 */
#define S_LOCK_CLASS FL__LOCK_CLASS
#define S_TARGET_KEY FL__TARGET_KEY
#define S_DATABASE_KEY FL__DATABASE_KEY

/* Both keys taken (true), or neither (false). */
#define S_TAKE                                                              \
    "CASE WHEN $1 OPERATOR(pg_catalog.=) '' THEN"                           \
    " pg_catalog.pg_try_advisory_lock(" S_LOCK_CLASS ", " S_DATABASE_KEY ")" \
    " WHEN pg_catalog.pg_try_advisory_lock_shared(" S_LOCK_CLASS ", "       \
    S_DATABASE_KEY ") THEN"                                                 \
    " CASE WHEN pg_catalog.pg_try_advisory_lock(" S_LOCK_CLASS ", "         \
    S_TARGET_KEY ") THEN true"                                              \
    " ELSE NOT pg_catalog.pg_advisory_unlock_shared(" S_LOCK_CLASS ", "     \
    S_DATABASE_KEY ") END"                                                  \
    " ELSE false END"

static const char s_lock_sql[] = "SELECT " S_TAKE;

/*
 * Session-level advisory locks do not follow transactions: a statement
 * of the migration (pg_advisory_unlock_all(), or pg_advisory_unlock of
 * our key, by a function or a DO block as well) releases the lock at
 * once and for good, and another run could take it.  So the lock is
 * looked for in pg_locks before COMMIT, in the COMMIT's round trip; when
 * it is gone the statement takes it again and fails with FL__LOCK_LOST
 * in its message (an invalid integer: there is no RAISE outside
 * PL/pgSQL), which aborts the transaction and skips the COMMIT after it.
 */
#define FL__LOCK_LOST "flotilla: the target lock was released; taken again: "

const char fl__lock_held_sql[] =
    "SELECT CASE WHEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks l"
    " WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted"
    " AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()"
    " AND" FL__OWN_LOCK("l") ")"
    " OPERATOR(pg_catalog.=) CASE WHEN $1 OPERATOR(pg_catalog.=) '' THEN 1"
    " ELSE 2 END THEN 0 ELSE CAST(pg_catalog.concat('" FL__LOCK_LOST "', ("
    S_TAKE ")) AS pg_catalog.int4) END";

int
fl__lock_lost(fl_pipeline_t *p, const fl_migration_t *m, int down,
              fl_error_t *err)
{
    const char *at;
    int again;

    if (err->message == NULL ||
        (at = strstr(err->message, FL__LOCK_LOST)) == NULL)
        return 0;
    again = at[sizeof(FL__LOCK_LOST) - 1] == 't';
    if (!again)
        p->locked = 0;
    if (down)
        FL_ERR(err, FL_EINVAL, "the down of %s released flotilla's lock on "
               "%s", m->file, p->described);
    else
        FL_ERR(err, FL_EINVAL, "a statement released flotilla's lock on "
               "%s; the transaction was rolled back", p->described);
    fl_error_set_detail(err, "A statement released the session's advisory "
                        "locks (pg_advisory_unlock_all(), or "
                        "pg_advisory_unlock of flotilla's key), so another "
                        "flotilla run could have migrated %s at the same "
                        "time.  %s", p->described,
                        again ? "Flotilla took the lock again."
                              : "Flotilla could not take it again: another "
                                "run holds it now.");
    fl_error_set_hint(err, "Release only the advisory locks the migration "
                      "takes, by their keys; pg_advisory_unlock_all() "
                      "releases flotilla's too.");
    return 1;
}

static const char s_unlock_sql[] =
    "SELECT CASE WHEN $1 OPERATOR(pg_catalog.=) '' THEN"
    " pg_catalog.pg_advisory_unlock(" S_LOCK_CLASS ", " S_DATABASE_KEY ")"
    " ELSE pg_catalog.pg_advisory_unlock(" S_LOCK_CLASS ", " S_TARGET_KEY ")"
    " AND pg_catalog.pg_advisory_unlock_shared(" S_LOCK_CLASS ", "
    S_DATABASE_KEY ") END";

void
fl__unlock_target(fl_pipeline_t *p)
{
    fl_error_t ignore = FL_ERROR_INIT;

    if (!p->locked)
        return;
    /* Closing the session releases it anyway; this is only tidiness. */
    {
        const char *params[1] = {p->target};
        char *v = NULL;
        FL_IGNORE(fl_pg_query_value(p->pg, &v, s_unlock_sql, 1, params,
                                    &ignore));
        free(v);
    }
    fl_error_clear(&ignore);
    p->locked = 0;
}

/*
 * Takes the target's session-level advisory lock, polling
 * pg_try_advisory_lock with jittered backoff until lock_wait_ms.  Never
 * the blocking pg_advisory_lock: a session waiting on it would make
 * another session's CREATE INDEX CONCURRENTLY wait for it forever.
 */
int
fl__lock_target(fl_pipeline_t *p, fl_error_t *err)
{
    int64_t start = fl__now_ms();
    int attempt = 0;
    char *v = NULL;
    const char *params[1] = {p->target};
    int rc;

    for (;;) {
        if ((rc = fl_pg_query_value(p->pg, &v, s_lock_sql, 1, params,
                                    err)) != 0)
            return rc;
        if (v && strcmp(v, "t") == 0) {
            free(v);
            p->locked = 1;
            return 0;
        }
        free(v);
        v = NULL;
        if (fl__cancelled(p))
            return FL_ERR(err, FL_ECANCELLED, "cancelled while waiting for "
                          "the lock on %s", p->described);
        if (fl__now_ms() - start >= p->opts.lock_wait_ms)
            break;
        if (attempt == 0)
            fl__event(p, FL_STEP_LOCK, FL_STEP_RETRY, NULL, 0, NULL,
                      "another flotilla run holds %s; waiting up to %lld ms",
                      p->described, (long long)p->opts.lock_wait_ms);
        fl__sleep(p, fl__pipeline_backoff(p, 100, attempt < 4 ? attempt : 4));
        attempt++;
    }
    {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        fl_error_t qerr = FL_ERROR_INIT;
        static const char q[] =
            "SELECT a.pid, COALESCE(a.application_name, ''),"
            " COALESCE(pg_catalog.host(a.client_addr), 'local'),"
            " pg_catalog.to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS'),"
            " COALESCE(a.state, '')"
            " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a"
            " ON a.pid OPERATOR(pg_catalog.=) l.pid"
            " WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted"
            " AND l.classid OPERATOR(pg_catalog.=) " S_LOCK_CLASS
            " AND l.objsubid OPERATOR(pg_catalog.=) 2"
            " AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
            " AND (l.objid OPERATOR(pg_catalog.=) " S_TARGET_KEY
            "::pg_catalog.oid OR (l.objid OPERATOR(pg_catalog.=) "
            S_DATABASE_KEY "::pg_catalog.oid AND ($1 OPERATOR(pg_catalog.=)"
            " '' OR l.mode OPERATOR(pg_catalog.=) 'ExclusiveLock')))"
            " ORDER BY l.objid OPERATOR(pg_catalog.=) " S_TARGET_KEY
            "::pg_catalog.oid DESC LIMIT 1";
        rc = FL_ERR(err, FL_ECONFLICT, "could not lock %s: another flotilla "
                    "run is migrating it%s", p->described,
                    p->target[0] == '\0'
                        ? " or one of its schemas"
                        : " or the whole database");
        if (fl_pg_query(p->pg, &r, q, 1, params, &qerr) == 0 && r.nrows > 0)
            fl_error_set_detail(err, "Held by PID %s (application \"%s\", "
                                "client %s, connected %s, %s); waited %lld ms.",
                                fl_pg_value(&r, 0, 0), fl_pg_value(&r, 0, 1),
                                fl_pg_value(&r, 0, 2), fl_pg_value(&r, 0, 3),
                                fl_pg_value(&r, 0, 4),
                                (long long)p->opts.lock_wait_ms);
        fl_error_set_hint(err, "Wait for the other run to finish, or raise "
                               "--lock-wait.  \"flotilla locks\" shows the "
                               "sessions.");
        fl_pg_result_release(&r);
        fl_error_clear(&qerr);
        return rc;
    }
}

int
fl__lock_check(fl_pipeline_t *p, const fl_migration_t *m, int down,
               fl_error_t *err)
{
    fl_pg_result_t held = FL_PG_RESULT_INIT;
    const char *target[1] = {p->target};
    int rc = fl_pg_query_prepared(p->pg, &held, "flotilla_lock_held",
                                  fl__lock_held_sql, 1, target, err);

    fl_pg_result_release(&held);
    if (rc != 0 && fl__lock_lost(p, m, down, err))
        rc = FL_EINVAL;
    return rc;
}
