/*
 * store.c - the control database and its writer thread (see store.h).
 *
 * How the event loop never blocks on PostgreSQL: every write goes
 * through this module's own thread and its own connection; the loop only
 * appends jobs to a queue (fl_queue_push never blocks) and takes finished
 * ones when the queue's eventfd, which it polls next to its sockets, says
 * some are back.  Reads happen once, before the loop starts; afterwards
 * the loop answers operators from memory.  Why a thread rather than
 * libpq's non-blocking API on the loop: a batch is a transaction of
 * several statements and COPY streams, which as a non-blocking state
 * machine would interleave with every socket event of the loop and turn
 * each step (BEGIN, COPY data that does not fit the socket buffer, the
 * INSERT ... SELECT, COMMIT, a reconnect with backoff) into a resumable
 * state; on its own thread the same batch is straight-line code that may
 * block for as long as PostgreSQL takes, and retrying after a lost
 * connection is a loop, while the event loop keeps heartbeating and
 * taking results.  The cost is one thread and one connection.
 */
#include "coordinator/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/dsn.h"
#include "common/log.h"
#include "common/queue.h"
#include "coordinator/coordinator_internal.h"

/* Advisory lock of a control database: (class, "fctl"). */
#define S_LOCK "pg_catalog.pg_try_advisory_lock(1718578273, 1718899820)"

struct fl_store {
    PGconn *conn;
    char *dsn;
    int64_t batch_rows;
    fl_queue_t *in, *out;
    pthread_t thread;
    int started;
    int writing;           /* set before the writer thread starts */
    int stopping;          /* atomic */
    int64_t stop_deadline; /* monotonic ms, set before stopping */
    int64_t batches;       /* committed, as flotilla_control.writer says */
    char owner[33];        /* this store's token in flotilla_control.writer */
    int fenced;            /* writer thread: the writer row is not ours */
    int pid;               /* the server process of the session holding
                              the store's lock, as last connected */
    char *broken;          /* set once by the writer thread (atomic) */
    uint64_t transactions, rows, retries; /* atomic */
    size_t backlog;        /* atomic */
};

/*
 * The commands table takes a row per target of a dispatch (one COPY) and
 * an UPDATE per outcome (in batches), so it is shaped for bulk writes,
 * measured by bench/fleet.sh: no foreign key to its dispatch (the RI
 * trigger fires per row and made the COPY of 100,000 commands 3.7 times
 * slower; the coordinator writes a dispatch's row in a transaction no
 * later than its commands' and never deletes either), and no index on
 * status, with free room on each page (fillfactor), so that recording an
 * outcome is a HOT update that touches no index.  A restart reads a
 * dispatch's commands through the UNIQUE (dispatch_id, target) index.
 */
static const char s_schema_v1[] =
    "CREATE SCHEMA IF NOT EXISTS flotilla_control;"
    "CREATE TABLE IF NOT EXISTS flotilla_control.meta ("
    "  version int NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS flotilla_control.agents ("
    "  key text PRIMARY KEY,"
    "  name text NOT NULL,"
    "  claimed_name text,"
    "  version text,"
    "  labels jsonb NOT NULL DEFAULT '{}',"
    "  status text NOT NULL DEFAULT 'offline'"
    "    CHECK (status IN ('online', 'offline', 'revoked')),"
    "  first_seen timestamptz NOT NULL DEFAULT now(),"
    "  last_seen timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS flotilla_control.targets ("
    "  name text PRIMARY KEY,"
    "  agent_key text NOT NULL,"
    "  kind text,"
    "  environment text,"
    "  labels jsonb NOT NULL DEFAULT '{}',"
    "  ledger jsonb NOT NULL DEFAULT '[]',"
    "  known boolean NOT NULL DEFAULT false,"
    "  error text,"
    "  reported boolean NOT NULL DEFAULT true,"
    "  updated_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS flotilla_control.bundles ("
    "  id text PRIMARY KEY,"
    "  bytes bytea NOT NULL,"
    "  signer text NOT NULL,"
    "  channel text NOT NULL,"
    "  sequence bigint NOT NULL,"
    "  environment text NOT NULL,"
    "  selector text NOT NULL,"
    "  created timestamptz NOT NULL,"
    "  expires timestamptz NOT NULL,"
    "  received_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS flotilla_control.dispatches ("
    "  id text PRIMARY KEY,"
    "  bundle_id text NOT NULL REFERENCES flotilla_control.bundles,"
    "  action text NOT NULL CHECK (action IN ('apply', 'rollback', 'plan')),"
    "  to_version bigint NOT NULL DEFAULT 0,"
    "  selector text NOT NULL DEFAULT '',"
    "  operator text NOT NULL,"
    "  status text NOT NULL DEFAULT 'running'"
    "    CHECK (status IN ('running', 'done')),"
    "  ntargets int NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  finished_at timestamptz);"
    "CREATE TABLE IF NOT EXISTS flotilla_control.commands ("
    "  id text PRIMARY KEY,"
    "  dispatch_id text NOT NULL,"
    "  rollout text NOT NULL,"
    "  target text NOT NULL,"
    "  agent_key text NOT NULL,"
    "  action text NOT NULL,"
    "  status text NOT NULL DEFAULT 'pending' CHECK (status IN"
    "    ('pending', 'ok', 'failed', 'refused', 'cancelled')),"
    "  version bigint,"
    "  duration_ms bigint,"
    "  message text,"
    "  error text,"
    "  detail text,"
    "  hint text,"
    "  sqlstate text,"
    "  reconciled boolean NOT NULL DEFAULT false,"
    "  seq bigint,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  finished_at timestamptz,"
    "  UNIQUE (dispatch_id, target))"
    "  WITH (fillfactor = 50);"
    "CREATE TABLE IF NOT EXISTS flotilla_control.events ("
    "  id bigserial PRIMARY KEY,"
    "  at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    "  kind text NOT NULL,"
    "  agent_key text,"
    "  target text,"
    "  dispatch_id text,"
    "  step text,"
    "  status text,"
    "  message text);"
    "CREATE INDEX IF NOT EXISTS events_dispatch"
    "  ON flotilla_control.events (dispatch_id);"
    "REVOKE ALL ON SCHEMA flotilla_control FROM PUBLIC;";

/*
 * Version 2: rollouts (rollout.c).  A rollout's frozen target set is the
 * commands of its forward dispatch (dispatch id = rollout id), each with
 * its wave and whether the decision to send it is written (released); a
 * command not released is never sent.  An unreachable target's outcome is
 * its own status.  Idempotent, like version 1.
 */
static const char s_schema_v2[] =
    "ALTER TABLE flotilla_control.commands"
    "  ADD COLUMN IF NOT EXISTS released boolean NOT NULL DEFAULT true,"
    "  ADD COLUMN IF NOT EXISTS wave int,"
    "  ADD COLUMN IF NOT EXISTS position int;"
    "ALTER TABLE flotilla_control.commands"
    "  DROP CONSTRAINT IF EXISTS commands_status_check;"
    "ALTER TABLE flotilla_control.commands ADD CONSTRAINT commands_status_check"
    "  CHECK (status IN ('pending', 'ok', 'failed', 'refused', 'cancelled',"
    "  'unreachable'));"
    "ALTER TABLE flotilla_control.dispatches"
    "  ADD COLUMN IF NOT EXISTS rollout_id text;"
    "CREATE TABLE IF NOT EXISTS flotilla_control.rollouts ("
    "  id text PRIMARY KEY,"
    "  kind text NOT NULL CHECK (kind IN ('apply', 'plan')),"
    "  bundle_id text NOT NULL REFERENCES flotilla_control.bundles,"
    "  selector text NOT NULL DEFAULT '',"
    "  operator text NOT NULL,"
    "  policy jsonb NOT NULL,"
    "  seed bigint NOT NULL DEFAULT 0,"
    "  waves jsonb NOT NULL,"
    "  status text NOT NULL,"
    "  halted boolean NOT NULL DEFAULT false,"
    "  halt_reason text,"
    "  wave int NOT NULL DEFAULT 0,"
    "  wave_state text NOT NULL DEFAULT 'dispatching',"
    "  bake_until timestamptz,"
    "  failures_acked int NOT NULL DEFAULT 0,"
    "  wave_failures_acked int NOT NULL DEFAULT 0,"
    "  rollback_id text,"
    "  auto_rolled_back boolean NOT NULL DEFAULT false,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  updated_at timestamptz NOT NULL DEFAULT now(),"
    "  finished_at timestamptz);";

/*
 * Version 3 (issue 14): migration versions are text (proto/version.h):
 * a dispatch's to_version ('' for all, which 0 was) and a command's
 * version afterwards ('' for none).  Re-running it changes nothing: text
 * columns stay text and '' stays ''.
 */
static const char s_schema_v3[] =
    "ALTER TABLE flotilla_control.dispatches"
    "  ALTER COLUMN to_version DROP DEFAULT,"
    "  ALTER COLUMN to_version TYPE text USING CASE WHEN to_version::text"
    "    = '0' THEN '' ELSE to_version::text END,"
    "  ALTER COLUMN to_version SET DEFAULT '';"
    "ALTER TABLE flotilla_control.commands"
    "  ALTER COLUMN version TYPE text USING CASE WHEN version::text = '0'"
    "    THEN '' ELSE version::text END;";

/*
 * Version 4 (issue 14): baselines.  A rollout of kind baseline records on
 * each target what already ran (flotilla rollout baseline); its dispatch
 * says which tool's ledger to read.  Idempotent, like the others.
 */
static const char s_schema_v4[] =
    "ALTER TABLE flotilla_control.dispatches"
    "  ADD COLUMN IF NOT EXISTS baseline_from text;"
    "ALTER TABLE flotilla_control.dispatches"
    "  DROP CONSTRAINT IF EXISTS dispatches_action_check;"
    "ALTER TABLE flotilla_control.dispatches ADD CONSTRAINT"
    "  dispatches_action_check CHECK (action IN ('apply', 'rollback', 'plan',"
    "  'baseline'));"
    "ALTER TABLE flotilla_control.rollouts"
    "  DROP CONSTRAINT IF EXISTS rollouts_kind_check;"
    "ALTER TABLE flotilla_control.rollouts ADD CONSTRAINT rollouts_kind_check"
    "  CHECK (kind IN ('apply', 'plan', 'baseline'));";

/*
 * Version 5 (issue 12): retries.  `rollout resume` sends again a target
 * whose run halt --abort cancelled: its command row becomes pending again
 * with attempt + 1 and a new id (fl_dispatch_retry), and the agent, told
 * the attempt, runs the pipeline rather than answering from the failed
 * ledger row the cancel left.  Idempotent, like the others.
 */
static const char s_schema_v5[] =
    "ALTER TABLE flotilla_control.commands"
    "  ADD COLUMN IF NOT EXISTS attempt int NOT NULL DEFAULT 0;";

/*
 * Version 6: how many copies of the application's data a rollback kept
 * on its target (fl_wire_result_t.kept), for the rollout's accounting.
 * Idempotent, like the others.
 */
static const char s_schema_v6[] =
    "ALTER TABLE flotilla_control.commands"
    "  ADD COLUMN IF NOT EXISTS kept int NOT NULL DEFAULT 0;";

/*
 * Version 7: the writer's count of committed transactions.  Each
 * transaction of the writer sets it to its own number, so that one whose
 * COMMIT was sent and never answered (the connection lost on the way
 * back) can be looked up rather than written again: a second write of a
 * transaction that did commit fails on its keys (the operator is told
 * that a rollout it started could not be recorded, while a restart
 * finds and runs it) or doubles its events.  Idempotent, like the
 * others.
 */
static const char s_schema_v7[] =
    "CREATE TABLE IF NOT EXISTS flotilla_control.writer ("
    "  one boolean PRIMARY KEY DEFAULT true CHECK (one),"
    "  batches bigint NOT NULL);"
    "INSERT INTO flotilla_control.writer (batches) VALUES (0)"
    "  ON CONFLICT DO NOTHING;";

/*
 * Version 8: whose the writer's count is.  A coordinator writes its own
 * token there when it opens the store, and every transaction of its
 * writer updates the count only where the token is still its own: a
 * coordinator whose session was ended while it lived on, and which
 * another coordinator then took the control database from, finds that
 * out at its next write instead of writing its stale state over the
 * other's (s_write).  Idempotent, like the others.
 */
static const char s_schema_v8[] =
    "ALTER TABLE flotilla_control.writer"
    "  ADD COLUMN IF NOT EXISTS owner text;";

/*
 * Version 9: whether a rollout's halt came with --abort.  The runs an
 * agent offline at the halt holds are cancelled when it comes back (its
 * hello says it holds them), after a coordinator restart too, until a
 * resume.  Idempotent, like the others.
 */
static const char s_schema_v9[] =
    "ALTER TABLE flotilla_control.rollouts"
    "  ADD COLUMN IF NOT EXISTS aborted boolean NOT NULL DEFAULT false;";

/*
 * Per connection: settings that let no database-wide default fail the
 * writer's transactions for good (a statement_timeout shorter than a
 * COPY of a large dispatch would fail it at every retry), a lock wait
 * that ends, so that the writer logs what it waits for and retries, and
 * the staging tables of the bulk upserts and updates.
 */
static const char s_session[] =
    "SET search_path = pg_catalog, pg_temp;"
    "SET statement_timeout = 0;"
    "SET idle_in_transaction_session_timeout = 0;"
    "SET lock_timeout = '10s';"
    "CREATE TEMP TABLE IF NOT EXISTS t_targets (name text, agent_key text,"
    "  kind text, environment text, labels jsonb, ledger jsonb,"
    "  known boolean, error text, reported boolean, ord bigserial)"
    "  ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS t_results (id text, status text,"
    "  version text, duration_ms bigint, message text, error text,"
    "  detail text, hint text, sqlstate text, reconciled boolean,"
    "  seq bigint, kept int, ord bigserial) ON COMMIT DELETE ROWS;";

/* Per bulk kind: where its COPY goes and what runs after it. */
static const struct {
    const char *copy;
    const char *after;
} s_bulk[FL_STORE_KINDS] = {
    [FL_STORE_TARGETS] = {
        "COPY pg_temp.t_targets (name, agent_key, kind, environment, labels,"
        " ledger, known, error, reported) FROM STDIN",
        "INSERT INTO flotilla_control.targets AS t (name, agent_key, kind,"
        " environment, labels, ledger, known, error, reported, updated_at)"
        " SELECT DISTINCT ON (name) name, agent_key, kind, environment,"
        " labels, ledger, known, error, reported, now()"
        " FROM pg_temp.t_targets ORDER BY name, ord DESC"
        " ON CONFLICT (name) DO UPDATE SET agent_key = EXCLUDED.agent_key,"
        " kind = EXCLUDED.kind, environment = EXCLUDED.environment,"
        " labels = EXCLUDED.labels, ledger = EXCLUDED.ledger,"
        " known = EXCLUDED.known, error = EXCLUDED.error,"
        " reported = EXCLUDED.reported, updated_at = EXCLUDED.updated_at"},
    [FL_STORE_COMMANDS] = {
        "COPY flotilla_control.commands (id, dispatch_id, rollout, target,"
        " agent_key, action, released, wave, position) FROM STDIN",
        NULL},
    [FL_STORE_RESULTS] = {
        "COPY pg_temp.t_results (id, status, version, duration_ms, message,"
        " error, detail, hint, sqlstate, reconciled, seq, kept) FROM STDIN",
        "UPDATE flotilla_control.commands c SET status = r.status,"
        " version = r.version, duration_ms = r.duration_ms,"
        " message = r.message, error = r.error, detail = r.detail,"
        " hint = r.hint, sqlstate = r.sqlstate, reconciled = r.reconciled,"
        " seq = r.seq, kept = r.kept, finished_at = now()"
        " FROM (SELECT DISTINCT ON (id) * FROM pg_temp.t_results"
        " ORDER BY id, ord DESC) r WHERE c.id = r.id"},
    [FL_STORE_EVENTS] = {
        "COPY flotilla_control.events (kind, agent_key, target, dispatch_id,"
        " step, status, message) FROM STDIN",
        NULL},
};

/* libpq's "already exists, skipping" and the like: debug only. */
static void
s_notice(void *arg, const char *message)
{
    (void)arg;
    fl_log_debug("store", "%.*s", (int)strcspn(message, "\n"), message);
}

/* Fills err from a failed result (or the connection) as FL_EDB. */
static int
s_pg_error(PGconn *conn, const PGresult *res, const char *what,
           fl_error_t *err)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                          : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL)
                             : NULL;
    const char *conn_msg = PQerrorMessage(conn);

    if (msg == NULL)
        FL_ERR(err, FL_EDB, "control database: %s: %.*s", what,
               (int)strcspn(conn_msg, "\n"), conn_msg);
    else
        FL_ERR(err, FL_EDB, "control database: %s: %s", what, msg);
    if (detail != NULL)
        fl_error_set_detail(err, "%s", detail);
    if (state != NULL)
        fl_error_set_sqlstate(err, state);
    return FL_EDB;
}

/* Runs one statement; 0 or FL_EDB. */
static int
s_exec(PGconn *conn, const char *sql, int n, const char *const *params,
       const char *what, fl_error_t *err)
{
    PGresult *res = n > 0 ? PQexecParams(conn, sql, n, NULL, params, NULL,
                                         NULL, 0)
                          : PQexec(conn, sql);
    ExecStatusType t = PQresultStatus(res);
    int rc = 0;

    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK)
        rc = s_pg_error(conn, res, what, err);
    PQclear(res);
    return rc;
}

/*
 * The server process of the session holding the store's lock, or 0
 * (none, or it could not be read).  In this database: advisory locks are
 * per database, and other coordinators' control databases on the same
 * server hold locks of the same key.  Before, their holders were read
 * too, none was taken for the other coordinator, and a coordinator whose
 * control database another had taken over waited without end.
 */
static int
s_holder(fl_store_t *st)
{
    PGresult *res = PQexec(st->conn, "SELECT l.pid FROM pg_catalog.pg_locks"
                                     " l JOIN pg_catalog.pg_database d ON"
                                     " d.oid = l.database WHERE d.datname ="
                                     " pg_catalog.current_database() AND"
                                     " l.locktype = 'advisory' AND"
                                     " l.classid = 1718578273 AND l.objid ="
                                     " 1718899820 AND l.objsubid = 2 AND"
                                     " l.granted");
    int pid = 0;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        pid = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return pid;
}

/* Connects, checks the lock and prepares the session. */
static int
s_connect(fl_store_t *st, fl_error_t *err)
{
    char *who = NULL;
    PGresult *res = NULL;
    int rc = 0, holder = 0;

    if (st->conn != NULL)
        PQfinish(st->conn);
    st->conn = PQconnectdb(st->dsn);
    if (PQstatus(st->conn) != CONNECTION_OK) {
        who = fl_dsn_describe(st->dsn);
        rc = FL_ERR(err, FL_EDB, "could not connect to the control database "
                    "\"%s\": %.*s", who,
                    (int)strcspn(PQerrorMessage(st->conn), "\n"),
                    PQerrorMessage(st->conn));
        goto cleanup;
    }
    PQsetNoticeProcessor(st->conn, s_notice, NULL);
    res = PQexec(st->conn, "SELECT " S_LOCK);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = s_pg_error(st->conn, res, "taking its lock", err);
        goto cleanup;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0 && st->writing &&
        (holder = s_holder(st)) > 0 && holder != st->pid) {
        /* Another session than its lost one: another coordinator. */
        st->fenced = 1;
        rc = FL_ERR(err, FL_ECONFLICT, "another coordinator holds the "
                    "control database's lock (its session's server process "
                    "is %d, this coordinator's lost one was %d): what this "
                    "one holds in memory is no longer what the database "
                    "holds", holder, st->pid);
        goto cleanup;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0 && st->writing) {
        /* Reconnecting: its own session, not ended yet. */
        who = fl_dsn_describe(st->dsn);
        rc = FL_ERR(err, FL_ECONFLICT, "the lock of the control database "
                    "\"%s\" is still held by this coordinator's lost "
                    "session (or another coordinator): waiting for it to "
                    "end", who);
        goto cleanup;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        who = fl_dsn_describe(st->dsn);
        rc = FL_ERR(err, FL_ECONFLICT, "another coordinator is using the "
                    "control database \"%s\"", who);
        fl_error_set_hint(err, "Run one coordinator per control database; "
                               "stop the other one first.");
        goto cleanup;
    }
    st->pid = PQbackendPID(st->conn);
    rc = s_exec(st->conn, s_session, 0, NULL, "preparing the session", err);
    /*
     * A session whose coordinator died (kill -9) while its statement
     * waited for a lock would hold the store's lock until the statement
     * ended, and a restarted coordinator would be refused for "another
     * coordinator" all that time: PostgreSQL 14 on checks the client is
     * still there every second of a running statement.
     */
    if (rc == 0 && PQserverVersion(st->conn) >= 140000)
        rc = s_exec(st->conn, "SET client_connection_check_interval = 1000",
                    0, NULL, "preparing the session", err);
cleanup:
    PQclear(res);
    free(who);
    if (rc != 0) {
        PQfinish(st->conn);
        st->conn = NULL;
    }
    return rc;
}

/*
 * The writer's count of committed transactions, as the database says,
 * and whether the row is still this store's (*ours; ours may be NULL).
 */
static int
s_batches(fl_store_t *st, int64_t *out, int *ours, fl_error_t *err)
{
    PGresult *res = PQexec(st->conn, "SELECT batches, owner FROM "
                                     "flotilla_control.writer");
    int rc = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = s_pg_error(st->conn, PQresultStatus(res) == PGRES_TUPLES_OK
                                      ? NULL : res,
                        "reading the writer's count", err);
    } else {
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (ours != NULL)
            *ours = strcmp(PQgetvalue(res, 0, 1), st->owner) == 0;
    }
    PQclear(res);
    return rc;
}

/* The writer row is another coordinator's now: this one must stop. */
static int
s_fence(fl_store_t *st, fl_error_t *err)
{
    st->fenced = 1;
    fl_error_clear(err);
    return FL_ERR(err, FL_ECONFLICT, "another coordinator has written to "
                  "the control database since this one opened it (this "
                  "coordinator's session was ended and the other took its "
                  "lock): what this one holds in memory is no longer what "
                  "the database holds");
}

static int
s_upgrade(fl_store_t *st, fl_error_t *err)
{
    PGresult *res = NULL;
    int rc = 0;
    long version = 0;

    if ((rc = s_exec(st->conn, "BEGIN; SELECT pg_catalog.pg_advisory_xact_lock"
                     "(1718578273, 1718899821)", 0, NULL,
                     "locking the schema", err)) != 0 ||
        (rc = s_exec(st->conn, s_schema_v1, 0, NULL, "creating the schema",
                     err)) != 0)
        goto cleanup;
    res = PQexec(st->conn, "SELECT COALESCE(max(version), 0) FROM "
                           "flotilla_control.meta");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = s_pg_error(st->conn, res, "reading the schema version", err);
        goto cleanup;
    }
    version = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    if (version > FL_STORE_SCHEMA_VERSION) {
        rc = FL_ERR(err, FL_ECONFLICT, "the control database has schema "
                    "version %ld, newer than this coordinator understands "
                    "(%d)", version, FL_STORE_SCHEMA_VERSION);
        fl_error_set_hint(err, "Run the newer coordinator.");
        goto cleanup;
    }
    if (version < 2 &&
        (rc = s_exec(st->conn, s_schema_v2, 0, NULL, "upgrading the schema "
                     "to version 2 (rollouts)", err)) != 0)
        goto cleanup;
    if (version < 3 &&
        (rc = s_exec(st->conn, s_schema_v3, 0, NULL, "upgrading the schema "
                     "to version 3 (versions as text)", err)) != 0)
        goto cleanup;
    if (version < 4 &&
        (rc = s_exec(st->conn, s_schema_v4, 0, NULL, "upgrading the schema "
                     "to version 4 (baselines)", err)) != 0)
        goto cleanup;
    if (version < 5 &&
        (rc = s_exec(st->conn, s_schema_v5, 0, NULL, "upgrading the schema "
                     "to version 5 (retries)", err)) != 0)
        goto cleanup;
    if (version < 6 &&
        (rc = s_exec(st->conn, s_schema_v6, 0, NULL, "upgrading the schema "
                     "to version 6 (kept copies)", err)) != 0)
        goto cleanup;
    if (version < 7 &&
        (rc = s_exec(st->conn, s_schema_v7, 0, NULL, "upgrading the schema "
                     "to version 7 (the writer's count)", err)) != 0)
        goto cleanup;
    if (version < 8 &&
        (rc = s_exec(st->conn, s_schema_v8, 0, NULL, "upgrading the schema "
                     "to version 8 (the writer's owner)", err)) != 0)
        goto cleanup;
    if (version < 9 &&
        (rc = s_exec(st->conn, s_schema_v9, 0, NULL, "upgrading the schema "
                     "to version 9 (aborted halts)", err)) != 0)
        goto cleanup;
    if (version < FL_STORE_SCHEMA_VERSION &&
        (rc = s_exec(st->conn, "INSERT INTO flotilla_control.meta (version) "
                     "VALUES (9)", 0, NULL, "recording the schema version",
                     err)) != 0)
        goto cleanup;
    {
        const char *p[1] = {st->owner};
        if ((rc = s_exec(st->conn, "UPDATE flotilla_control.writer SET "
                         "owner = $1", 1, p, "taking the writer's count",
                         err)) != 0)
            goto cleanup;
    }
    if ((rc = s_batches(st, &st->batches, NULL, err)) != 0)
        goto cleanup;
    rc = s_exec(st->conn, "COMMIT", 0, NULL, "creating the schema", err);
cleanup:
    PQclear(res);
    if (rc != 0)
        FL_IGNORE(s_exec(st->conn, "ROLLBACK", 0, NULL, "", NULL));
    return rc;
}

int
fl_store_open(fl_store_t **out, const char *dsn, int64_t batch_rows,
              fl_error_t *err)
{
    fl_store_t *st = fl_calloc(1, sizeof(*st));
    int rc = 0;

    *out = NULL;
    st->dsn = fl_strdup(dsn);
    st->batch_rows = batch_rows > 0 ? batch_rows : 20000;
    fl_co_new_id(st->owner); /* 128 random bits, as hex */
    st->in = fl_queue_new();
    st->out = fl_queue_new();
    if ((rc = s_connect(st, err)) != 0 || (rc = s_upgrade(st, err)) != 0) {
        fl_store_stop(&st, 0);
        return rc;
    }
    *out = st;
    return 0;
}

int
fl_store_query(fl_store_t *st, fl_store_rows_t *out, const char *sql,
               int nparams, const char *const *params, fl_error_t *err)
{
    PGresult *res = NULL;
    size_t n = 0;

    FL_ASSERT(!st->started);
    memset(out, 0, sizeof(*out));
    res = PQexecParams(st->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int rc = s_pg_error(st->conn, res, "loading the state", err);
        PQclear(res);
        return rc;
    }
    out->nrows = (size_t)PQntuples(res);
    out->ncols = (size_t)PQnfields(res);
    out->values = fl_calloc(out->nrows * out->ncols + 1, sizeof(char *));
    for (size_t r = 0; r < out->nrows; r++)
        for (size_t c = 0; c < out->ncols; c++, n++)
            if (!PQgetisnull(res, (int)r, (int)c))
                out->values[n] = fl_strdup(PQgetvalue(res, (int)r, (int)c));
    PQclear(res);
    return 0;
}

const char *
fl_store_value(const fl_store_rows_t *r, size_t row, size_t col)
{
    return r->values[row * r->ncols + col];
}

void
fl_store_rows_release(fl_store_rows_t *r)
{
    if (r == NULL || r->values == NULL)
        return;
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->values[i]);
    fl_free(&r->values);
    r->nrows = r->ncols = 0;
}

fl_store_job_t *
fl_store_job_new(fl_store_kind kind)
{
    fl_store_job_t *job = fl_calloc(1, sizeof(*job));

    job->kind = kind;
    fl_buf_init(&job->rows, 0);
    return job;
}

void
fl_store_job_free(fl_store_job_t **job)
{
    if (job == NULL || *job == NULL)
        return;
    if ((*job)->release != NULL)
        (*job)->release((*job)->arg);
    free((*job)->sql);
    for (int i = 0; i < (*job)->nparams; i++)
        free((*job)->params[i]);
    free((*job)->params);
    fl_buf_release(&(*job)->rows);
    fl_error_clear(&(*job)->err);
    fl_free(job);
}

void
fl_store_job_sql(fl_store_job_t *job, const char *sql, int n,
                 const char *const *params)
{
    job->sql = fl_strdup(sql);
    job->nparams = n;
    job->params = fl_calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++)
        job->params[i] = params[i] ? fl_strdup(params[i]) : NULL;
    job->nrows = 1;
}

/* Rows are text the coordinator builds: past the buffer's limit is a bug. */
static void
s_add(fl_store_job_t *job, const char *p, size_t n)
{
    FL_ASSERT(n == 0 || fl_buf_append(&job->rows, p, n) == 0);
}

void
fl_store_field(fl_store_job_t *job, const char *value, int last)
{
    const char *p = value, *run = value;

    if (value == NULL) {
        s_add(job, "\\N", 2);
    } else {
        for (; *p; p++) {
            const char *esc = *p == '\\' ? "\\\\"
                              : *p == '\t' ? "\\t"
                              : *p == '\n' ? "\\n"
                              : *p == '\r' ? "\\r"
                                           : NULL;
            if (esc != NULL) {
                s_add(job, run, (size_t)(p - run));
                s_add(job, esc, 2);
                run = p + 1;
            }
        }
        s_add(job, run, (size_t)(p - run));
    }
    s_add(job, last ? "\n" : "\t", 1);
    if (last)
        job->nrows++;
}

void
fl_store_field_int(fl_store_job_t *job, int64_t value, int last)
{
    char text[24];

    snprintf(text, sizeof(text), "%lld", (long long)value);
    fl_store_field(job, text, last);
}

/* Streams the rows of every job of kind into its COPY, then its "after". */
static int
s_exec_bulk(PGconn *conn, fl_store_kind kind, fl_store_job_t **jobs,
            size_t n, fl_error_t *err)
{
    PGresult *res = NULL;
    int any = 0, rc = 0;

    for (size_t i = 0; i < n && !any; i++)
        any = jobs[i]->kind == kind && jobs[i]->rows.len > 0;
    if (!any)
        return 0;
    res = PQexec(conn, s_bulk[kind].copy);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = s_pg_error(conn, res, "starting a COPY", err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->kind == kind && jobs[i]->rows.len > 0 &&
            PQputCopyData(conn, jobs[i]->rows.data,
                          (int)jobs[i]->rows.len) != 1)
            break;
    if (PQputCopyEnd(conn, NULL) != 1)
        return s_pg_error(conn, NULL, "ending a COPY", err);
    while ((res = PQgetResult(conn)) != NULL) {
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = s_pg_error(conn, res, "writing rows", err);
        PQclear(res);
    }
    if (rc == 0 && s_bulk[kind].after != NULL)
        rc = s_exec(conn, s_bulk[kind].after, 0, NULL, "applying rows", err);
    return rc;
}

/* The bulk jobs among jobs[0..n), each kind in one COPY, kinds in order. */
static int
s_exec_bulks(PGconn *conn, fl_store_job_t **jobs, size_t n, fl_error_t *err)
{
    int rc = 0;

    for (int k = FL_STORE_TARGETS; rc == 0 && k < FL_STORE_KINDS; k++)
        rc = s_exec_bulk(conn, (fl_store_kind)k, jobs, n, err);
    return rc;
}

/*
 * Writes jobs in one transaction, in the order they were submitted: the
 * bulk rows submitted before a statement are written before it (each
 * kind's in one COPY).  A statement ran before every bulk of its batch
 * once: the release of a rollout's first commands, submitted just after
 * the COPY of those commands, updated no row, and a coordinator
 * restarted later took the commands it had sent for never sent.
 */
static int
s_exec_batch(fl_store_t *st, fl_store_job_t **jobs, size_t n,
             fl_error_t *err)
{
    char begin[192];
    PGresult *res = NULL;
    size_t from = 0;
    int rc = 0;

    /* One round trip; the owner is hex. */
    snprintf(begin, sizeof(begin), "BEGIN; UPDATE flotilla_control.writer "
             "SET batches = %lld WHERE batches = %lld AND owner = '%s'",
             (long long)st->batches + 1, (long long)st->batches, st->owner);
    res = PQexec(st->conn, begin);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = s_pg_error(st->conn, res, "BEGIN", err);
    else if (strcmp(PQcmdTuples(res), "1") != 0)
        rc = s_fence(st, err);
    PQclear(res);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (jobs[i]->kind != FL_STORE_SQL)
            continue;
        rc = s_exec_bulks(st->conn, jobs + from, i - from, err);
        if (rc == 0)
            rc = s_exec(st->conn, jobs[i]->sql, jobs[i]->nparams,
                        (const char *const *)jobs[i]->params,
                        "writing state", err);
        from = i + 1;
    }
    if (rc == 0)
        rc = s_exec_bulks(st->conn, jobs + from, n - from, err);
    if (rc == 0)
        rc = s_exec(st->conn, "COMMIT", 0, NULL, "COMMIT", err);
    if (rc == 0)
        st->batches++;
    if (rc != 0 && PQstatus(st->conn) == CONNECTION_OK)
        FL_IGNORE(s_exec(st->conn, "ROLLBACK", 0, NULL, "", NULL));
    return rc;
}

/*
 * Worth retrying as it is: the connection is gone, the server is going
 * down, out of resources or failing I/O (classes 08, 57P, 53, 58), the
 * transaction lost a serialization race or a deadlock (40001, 40P01),
 * waited too long for a lock (55P03), was cancelled (57014: an
 * administrator's pg_cancel_backend) or found the server read-only (25006:
 * a standby the connection string now reaches after a failover).  None of
 * these says the write is wrong; any other error does, and stops the
 * coordinator (s_run_batch).
 */
static int
s_transient(const fl_store_t *st, const fl_error_t *err)
{
    const char *s = err->sqlstate;

    if (st->fenced)
        return 0;
    return st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK ||
           s[0] == '\0' || strncmp(s, "08", 2) == 0 ||
           strncmp(s, "57P", 3) == 0 || strncmp(s, "53", 2) == 0 ||
           strncmp(s, "58", 2) == 0 || strcmp(s, "40001") == 0 ||
           strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0 ||
           strcmp(s, "57014") == 0 || strcmp(s, "25006") == 0;
}

static int
s_give_up(fl_store_t *st)
{
    return __atomic_load_n(&st->stopping, __ATOMIC_SEQ_CST) &&
           fl_clock_ms() > st->stop_deadline;
}

/*
 * Writes jobs in one transaction, reconnecting and retrying while the
 * control database is away (or until a stopping coordinator's deadline:
 * FL_ETIMEOUT); 0, or the error of a write the database refuses.  A
 * retry first asks whether the transaction it repeats did commit: the
 * new session holds the store's lock only once the old one has ended,
 * so the old transaction is over, and its number in the writer's count
 * says whether it committed.
 */
static int
s_write(fl_store_t *st, fl_store_job_t **jobs, size_t n, fl_error_t *err)
{
    int64_t backoff = 100;
    size_t rows = 0;
    char *said = NULL; /* the last reason logged */

    for (size_t i = 0; i < n; i++)
        rows += jobs[i]->nrows;
    for (int attempt = 0;; attempt++) {
        int64_t batches = 0;
        int rc = 0, fresh = 0, ours = 0;

        fl_error_clear(err);
        if (st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK) {
            rc = s_connect(st, err);
            fresh = 1;
        }
        if (rc == 0 && fresh &&
            (rc = s_batches(st, &batches, &ours, err)) == 0 &&
            (!ours || (batches != st->batches &&
                       batches != st->batches + 1)))
            rc = s_fence(st, err);
        if (rc == 0 && fresh && attempt > 0 && batches == st->batches + 1) {
            st->batches++;
            fl_log_notice("store", "the control database is reachable "
                          "again; the %zu rows whose COMMIT had no answer "
                          "were written", rows);
        } else if (rc == 0) {
            rc = s_exec_batch(st, jobs, n, err);
            if (rc == 0 && attempt > 0)
                fl_log_notice("store", "the control database is writable "
                              "again; %zu rows written", rows);
        }
        if (rc == 0) {
            __atomic_add_fetch(&st->transactions, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&st->rows, rows, __ATOMIC_RELAXED);
            free(said);
            return 0;
        }
        if (st->fenced || (!s_transient(st, err) && rc != FL_ECONFLICT)) {
            free(said);
            return rc;
        }
        __atomic_add_fetch(&st->retries, 1, __ATOMIC_RELAXED);
        /* Each new reason is said (a reconnect refused for the lock after
         * a lost connection said nothing for a minute and more). */
        if (attempt % 20 == 0 || said == NULL ||
            strcmp(said, err->message) != 0) {
            fl_log_warning("store", "could not write %zu rows to the control "
                           "database, retrying: %s", rows, err->message);
            free(said);
            said = fl_strdup(err->message);
        }
        if (s_give_up(st)) {
            char *why = fl_strdup(err->message);
            fl_error_clear(err);
            FL_ERR(err, FL_ETIMEOUT, "stopped before the control database "
                   "could be written: %s", why);
            free(why);
            free(said);
            return FL_ETIMEOUT;
        }
        fl_clock_sleep_ms(backoff);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

/*
 * Writes a batch, or fails each of its jobs.  A write the database
 * refuses for good (not worth retrying, s_transient) breaks the store:
 * the loop has moved on as if every job it submitted will be written
 * (a halt is in force, commands are released, results acknowledged), so
 * writing the jobs after the refused one, or each alone as this once
 * did, would leave the database holding some of a change and not the
 * rest (a dispatch without its commands, a wave released without its
 * halt), which a restarted coordinator would take for the truth.  So
 * every job from there on fails, and the coordinator stops
 * (fl_store_broken): the database holds a prefix of what it was told,
 * in order, and a restart loads exactly that.
 */
static void
s_run_batch(fl_store_t *st, fl_store_job_t **jobs, size_t n)
{
    fl_error_t err = FL_ERROR_INIT;
    const char *broken = __atomic_load_n(&st->broken, __ATOMIC_ACQUIRE);
    int rc = 0;

    if (broken != NULL)
        rc = FL_ERR(&err, FL_EDB, "%s", broken);
    else
        rc = s_write(st, jobs, n, &err);
    if (rc != 0 && rc != FL_ETIMEOUT && broken == NULL) {
        char *why = st->fenced ? fl_strdup(err.message)
                               : fl_asprintf("the control database refused "
                                             "a write: %s", err.message);
        fl_log_error("store", "%s", why);
        __atomic_store_n(&st->broken, why, __ATOMIC_RELEASE);
    }
    for (size_t i = 0; rc != 0 && i < n; i++) {
        jobs[i]->rc = rc;
        FL_ERR(&jobs[i]->err, rc, "%s", err.message);
    }
    fl_error_clear(&err);
}

static void *
s_writer(void *arg)
{
    fl_store_t *st = arg;
    fl_store_job_t **batch = NULL;
    size_t cap = 0;

    for (;;) {
        fl_store_job_t *job = fl_queue_wait(st->in, -1);
        size_t n = 0;
        int64_t rows = 0;

        if (job == NULL)
            break;
        do {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                batch = fl_reallocarray(batch, cap, sizeof(*batch));
            }
            batch[n++] = job;
            rows += (int64_t)job->nrows;
        } while (rows < st->batch_rows && (job = fl_queue_pop(st->in)) != NULL);
        s_run_batch(st, batch, n);
        for (size_t i = 0; i < n; i++) {
            __atomic_sub_fetch(&st->backlog, 1, __ATOMIC_SEQ_CST);
            /* The out queue is closed only after this thread ends. */
            FL_ASSERT(fl_queue_push(st->out, batch[i]) == 0);
        }
    }
    free(batch);
    return NULL;
}

int
fl_store_start(fl_store_t *st, fl_error_t *err)
{
    st->writing = 1;
    if (pthread_create(&st->thread, NULL, s_writer, st) != 0)
        return FL_ERR(err, FL_EFAIL, "could not start the store's thread");
    st->started = 1;
    return 0;
}

void
fl_store_submit(fl_store_t *st, fl_store_job_t *job)
{
    __atomic_add_fetch(&st->backlog, 1, __ATOMIC_SEQ_CST);
    if (fl_queue_push(st->in, job) != 0) {
        __atomic_sub_fetch(&st->backlog, 1, __ATOMIC_SEQ_CST);
        job->rc = FL_ECANCELLED;
        FL_ERR(&job->err, FL_ECANCELLED, "the coordinator is stopping");
        FL_ASSERT(fl_queue_push(st->out, job) == 0);
    }
}

int
fl_store_fd(const fl_store_t *st)
{
    return fl_queue_fd(st->out);
}

fl_store_job_t *
fl_store_finished(fl_store_t *st)
{
    return fl_queue_pop(st->out);
}

void
fl_store_complete(fl_store_job_t *job)
{
    if (job->done != NULL)
        job->done(job, job->rc, fl_error_is_set(&job->err) ? &job->err : NULL,
                  job->arg);
    fl_store_job_free(&job);
}

const char *
fl_store_broken(fl_store_t *st)
{
    return __atomic_load_n(&st->broken, __ATOMIC_ACQUIRE);
}

size_t
fl_store_backlog(fl_store_t *st)
{
    return __atomic_load_n(&st->backlog, __ATOMIC_SEQ_CST);
}

void
fl_store_stats(fl_store_t *st, uint64_t *transactions, uint64_t *rows,
               uint64_t *retries)
{
    *transactions = __atomic_load_n(&st->transactions, __ATOMIC_RELAXED);
    *rows = __atomic_load_n(&st->rows, __ATOMIC_RELAXED);
    *retries = __atomic_load_n(&st->retries, __ATOMIC_RELAXED);
}

void
fl_store_stop(fl_store_t **stp, int64_t wait_ms)
{
    fl_store_t *st = NULL;
    fl_store_job_t *job = NULL;

    if (stp == NULL || *stp == NULL)
        return;
    st = *stp;
    st->stop_deadline = fl_clock_ms() + wait_ms;
    __atomic_store_n(&st->stopping, 1, __ATOMIC_SEQ_CST);
    fl_queue_close(st->in);
    if (st->started)
        pthread_join(st->thread, NULL);
    while ((job = fl_queue_pop(st->in)) != NULL)
        fl_store_job_free(&job);
    while ((job = fl_queue_pop(st->out)) != NULL)
        fl_store_job_free(&job);
    if (st->conn != NULL)
        PQfinish(st->conn);
    fl_queue_destroy(&st->in);
    fl_queue_destroy(&st->out);
    free(st->broken);
    free(st->dsn);
    fl_free(stp);
}
