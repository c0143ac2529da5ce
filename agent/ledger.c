/*
 * ledger.c - the ledger inside each target database (see ledger.h).
 */
#include "agent/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/schema.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "proto/migration.h"

/* Advisory lock key (two int4): "flotilla" ledger creation. */
#define S_LEDGER_LOCK "pg_catalog.pg_advisory_xact_lock(1718578273, 1)"

/*
 * Runs of the ledger's columns as the steps first made them, shared by
 * the steps (s_ledger_v1, s_ledger_v2) and the new ledger (s_ledger_new).
 */
#define S_SM_HEAD                                                           \
    "  name text NOT NULL,"                                                 \
    "  checksum text NOT NULL,"                                             \
    "  bundle_id text,"                                                     \
    "  rollout_id text NOT NULL DEFAULT '',"
#define S_SM_TAIL                                                           \
    "  transactional boolean NOT NULL,"                                     \
    "  statements_done int NOT NULL DEFAULT 0,"                             \
    "  statements_total int NOT NULL DEFAULT 0,"                            \
    "  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),"          \
    "  finished_at timestamptz,"                                            \
    "  duration_ms bigint,"                                                 \
    "  lock_wait_ms bigint NOT NULL DEFAULT 0,"                             \
    "  retries int NOT NULL DEFAULT 0,"                                     \
    "  applied_by text NOT NULL DEFAULT current_user,"                      \
    "  agent text NOT NULL DEFAULT '',"                                     \
    "  server_version text NOT NULL DEFAULT"                                \
    " current_setting('server_version'),"                                   \
    "  error_sqlstate text,"                                                \
    "  error_message text,"                                                 \
    "  error_detail text,"                                                  \
    "  error_hint text,"                                                    \
    "  error_position text,"                                                \
    "  schema_fingerprint text,"                                            \
    "  file text,"                                                          \
    "  down_sql text,"                                                      \
    "  down_line int NOT NULL DEFAULT 0"
#define S_LOG_COLUMNS                                                       \
    "  migration_name text,"                                                \
    "  step text NOT NULL,"                                                 \
    "  status text NOT NULL,"                                               \
    "  duration_ms bigint,"                                                 \
    "  message text,"                                                       \
    "  bundle_id text,"                                                     \
    "  rollout_id text NOT NULL DEFAULT '',"                                \
    "  created_at timestamptz NOT NULL DEFAULT clock_timestamp()"
#define S_BACKUP_COLUMNS                                                    \
    "  statement_index int NOT NULL,"                                       \
    "  source_schema text NOT NULL,"                                        \
    "  source_table text NOT NULL,"                                         \
    "  kind text NOT NULL CHECK (kind IN ('table', 'dump')),"               \
    "  location text NOT NULL,"                                             \
    "  columns text[] NOT NULL,"                                            \
    "  column_types text[] NOT NULL,"                                       \
    "  dump_sha256 text,"                                                   \
    "  key_columns text[] NOT NULL,"                                        \
    "  row_count bigint NOT NULL,"                                          \
    "  checksum text NOT NULL,"                                             \
    "  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"          \
    "  restored_at timestamptz,"                                            \
    "  pruned_at timestamptz"
#define S_SEQ_BACKUP_COLUMNS                                                \
    "  seq_schema text NOT NULL,"                                           \
    "  seq_name text NOT NULL,"                                             \
    "  owner_schema text,"                                                  \
    "  owner_table text,"                                                   \
    "  owner_column text,"                                                  \
    "  last_value bigint,"                                                  \
    "  after_value bigint,"                                                 \
    "  reason text NOT NULL,"                                               \
    "  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"          \
    "  restored_at timestamptz"

static const char s_ledger_v1[] =
    "CREATE SCHEMA IF NOT EXISTS flotilla;"
    "CREATE TABLE IF NOT EXISTS flotilla.ledger_meta ("
    "  ledger_version int NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS flotilla.schema_migrations ("
    "  version bigint PRIMARY KEY,"
    S_SM_HEAD
    "  status text NOT NULL CHECK (status IN"
    "    ('running', 'applied', 'failed', 'rolled_back')),"
    S_SM_TAIL ");"
    "CREATE TABLE IF NOT EXISTS flotilla.migration_logs ("
    "  id bigserial PRIMARY KEY,"
    "  version bigint,"
    S_LOG_COLUMNS ");"
    "CREATE INDEX IF NOT EXISTS migration_logs_created_at"
    "  ON flotilla.migration_logs (created_at);"
    "CREATE INDEX IF NOT EXISTS migration_logs_status"
    "  ON flotilla.migration_logs (status);"
    "CREATE TABLE IF NOT EXISTS flotilla.backups ("
    "  id bigserial PRIMARY KEY,"
    "  version bigint NOT NULL,"
    "  bundle_id text,"
    S_BACKUP_COLUMNS ");"
    "CREATE SCHEMA IF NOT EXISTS flotilla_backup;";

/*
 * Version 2 (issue 8): the rollback that never loses data silently.
 *   schema_migrations: the rolling_back state (a no-transaction down that
 *     committed some statements), down_done, the note of an accepted loss
 *     or schema difference, whether the schema changes were recorded.
 *   backups: which columns are kept as text (user types, so a backup pins
 *     no type), how the restore matches rows (key, multiset, replace),
 *     how many rows the migration added (their keys in a<id>), when the
 *     backup's tables were released.
 *   sequence_backups: positions of sequences a migration reset, dropped
 *     or advanced (with the position it left, so a rollback moves one back
 *     only when nothing used it since).
 *   ledger_meta.target_id: names this target's backup files.
 *   schema_changes (agent/schema.c): the objects each migration changed,
 *     with their definitions before and after, for the rollback's proof.
 * Every statement is idempotent, so an interrupted upgrade is redone.
 */
static const char s_ledger_v2[] =
    "ALTER TABLE flotilla.ledger_meta ADD COLUMN IF NOT EXISTS target_id uuid"
    "  NOT NULL DEFAULT pg_catalog.gen_random_uuid();"
    "ALTER TABLE flotilla.schema_migrations"
    "  DROP CONSTRAINT IF EXISTS schema_migrations_status_check;"
    "ALTER TABLE flotilla.schema_migrations ADD CONSTRAINT"
    "  schema_migrations_status_check CHECK (status IN"
    "  ('running', 'applied', 'failed', 'rolling_back', 'rolled_back'));"
    "ALTER TABLE flotilla.schema_migrations"
    "  ADD COLUMN IF NOT EXISTS down_done int NOT NULL DEFAULT 0,"
    "  ADD COLUMN IF NOT EXISTS schema_recorded boolean NOT NULL DEFAULT false,"
    "  ADD COLUMN IF NOT EXISTS rollback_note text;"
    "ALTER TABLE flotilla.backups"
    "  ADD COLUMN IF NOT EXISTS text_columns boolean[] NOT NULL DEFAULT '{}',"
    "  ADD COLUMN IF NOT EXISTS match text NOT NULL DEFAULT 'key',"
    "  ADD COLUMN IF NOT EXISTS added_rows bigint NOT NULL DEFAULT 0,"
    "  ADD COLUMN IF NOT EXISTS released_at timestamptz;"
    "CREATE TABLE IF NOT EXISTS flotilla.sequence_backups ("
    "  id bigserial PRIMARY KEY,"
    "  version bigint NOT NULL,"
    S_SEQ_BACKUP_COLUMNS ");";

/*
 * Version 3 (issue 9): the release high-water marks, and no access for
 * PUBLIC (nothing grants it by default; a REVOKE makes a grant someone
 * added go away with the upgrade).
 *   release_marks: per release channel, the highest bundle sequence
 *     applied here and that bundle's id (proto/bundle.h's contract).
 */
static const char s_ledger_v3[] =
    "CREATE TABLE IF NOT EXISTS flotilla.release_marks ("
    "  channel text PRIMARY KEY,"
    "  sequence bigint NOT NULL,"
    "  bundle_id text NOT NULL,"
    "  signer text NOT NULL,"
    "  updated_at timestamptz NOT NULL DEFAULT clock_timestamp());"
    "REVOKE ALL ON SCHEMA flotilla, flotilla_backup FROM PUBLIC;"
    "REVOKE ALL ON ALL TABLES IN SCHEMA flotilla FROM PUBLIC;"
    "REVOKE ALL ON ALL SEQUENCES IN SCHEMA flotilla FROM PUBLIC;"
    "REVOKE ALL ON ALL TABLES IN SCHEMA flotilla_backup FROM PUBLIC;";

/*
 * Version 4 (issue 11): targets.  A target is the whole database or one
 * schema of it (schema-per-tenant); every row of the ledger belongs to
 * one, named by the column target: '' for the whole database, else the
 * schema's name.  Tenants of one database share the ledger's tables and
 * never each other's rows: versions, release marks and schema changes
 * are keyed by target.  The column has no default once filled, so a
 * write that does not name its target fails instead of landing in the
 * database's.
 */
#define S_TARGET_COLUMN(t)                                                  \
    "ALTER TABLE flotilla." t " ADD COLUMN IF NOT EXISTS target text NOT"   \
    " NULL DEFAULT '';"                                                     \
    "ALTER TABLE flotilla." t " ALTER COLUMN target DROP DEFAULT;"
#define S_TARGET_KEY(t, cols)                                               \
    "ALTER TABLE flotilla." t " DROP CONSTRAINT IF EXISTS " t "_pkey;"       \
    "ALTER TABLE flotilla." t " ADD CONSTRAINT " t "_pkey PRIMARY KEY ("    \
    cols ");"

static const char s_ledger_v4[] =
    S_TARGET_COLUMN("schema_migrations")
    S_TARGET_KEY("schema_migrations", "target, version")
    S_TARGET_COLUMN("migration_logs")
    "CREATE INDEX IF NOT EXISTS migration_logs_target"
    "  ON flotilla.migration_logs (target, id);"
    S_TARGET_COLUMN("backups")
    "CREATE INDEX IF NOT EXISTS backups_target_version"
    "  ON flotilla.backups (target, version);"
    S_TARGET_COLUMN("sequence_backups")
    S_TARGET_COLUMN("release_marks")
    S_TARGET_KEY("release_marks", "target, channel")
    S_TARGET_COLUMN("schema_changes")
    S_TARGET_KEY("schema_changes", "target, version, kind, ident");

/*
 * Version 5 (issue 14): versions are text (proto/version.h), so that
 * diesel's 14-digit stamps, pop's 20-digit versions (beyond bigint) and
 * Flyway's 1.2 fit.  Every version column becomes text, the bigint's
 * decimal digits being the text of the same version; a CHECK keeps the
 * canonical form (no leading zeros, digit runs separated by single dots),
 * which makes equal versions equal text, so the keys and every "version =
 * $1" still work.  schema_migrations.version_order orders rows as
 * fl_version_cmp() does (numeric[]: no overflow; "1.9" before "1.10").
 * ALTER COLUMN TYPE of a column that is text already changes nothing, and
 * the rest is dropped first (version_order too: it is derived), so the
 * step can run again.
 */
#define S_VERSION_RE "'^(0|[1-9][0-9]*)([.](0|[1-9][0-9]*))*$'"
#define S_VERSION_TEXT(t, c)                                                \
    "ALTER TABLE flotilla." t " ALTER COLUMN " c " TYPE pg_catalog.text"    \
    " USING " c "::pg_catalog.text;"                                       \
    "ALTER TABLE flotilla." t " DROP CONSTRAINT IF EXISTS " t "_" c         \
    "_form;"                                                               \
    "ALTER TABLE flotilla." t " ADD CONSTRAINT " t "_" c "_form CHECK ("    \
    c " OPERATOR(pg_catalog.~) " S_VERSION_RE ");"

static const char s_ledger_v5[] =
    /* Derived from version, which cannot change type under it. */
    "ALTER TABLE flotilla.schema_migrations DROP COLUMN IF EXISTS"
    "  version_order;"
    S_VERSION_TEXT("schema_migrations", "version")
    "ALTER TABLE flotilla.schema_migrations ADD COLUMN IF NOT EXISTS"
    "  version_order pg_catalog.numeric[] GENERATED ALWAYS AS ("
    FL_VERSION_SQL_ORDER("version") ") STORED;"
    S_VERSION_TEXT("migration_logs", "version")
    S_VERSION_TEXT("backups", "version")
    S_VERSION_TEXT("sequence_backups", "version")
    S_VERSION_TEXT("schema_changes", "version");

/*
 * Version 6 (issue 14): baselines.  `flotilla baseline` records migrations
 * that already ran (under another tool, or before flotilla) without
 * running them: their rows say applied, like any other, so apply, status
 * and rollback treat them alike; baseline_source says what said they had
 * run (the tool whose ledger was read, or "--to"), NULL for a migration
 * flotilla ran.  Idempotent, and self-contained (no other step needs it).
 */
static const char s_ledger_v6[] =
    "ALTER TABLE flotilla.schema_migrations"
    "  ADD COLUMN IF NOT EXISTS baseline_source text;";

/*
 * Version 7 (issue 14): separate up and down checksums, so that a down
 * fixed in the source after its migration was applied is not drift.
 *   schema_migrations.up_checksum: the migration without its down
 *     (fl_migration_up_checksum); NULL on rows written before version 7,
 *     which are compared by their full checksum and down_sql instead
 *     (fl_ledger_row_matches).
 *   schema_migrations.down_checksum: the down it was applied with.
 *   schema_migrations.rollback_down_checksum: the down that ran when it
 *     was rolled back (the source's, or the ledger's copy).
 * Idempotent, like every step: an interrupted upgrade is redone.
 */
static const char s_ledger_v7[] =
    "ALTER TABLE flotilla.schema_migrations"
    "  ADD COLUMN IF NOT EXISTS up_checksum text,"
    "  ADD COLUMN IF NOT EXISTS down_checksum text,"
    "  ADD COLUMN IF NOT EXISTS rollback_down_checksum text;";

/*
 * Version 8 (issue 14): repeatable migrations (R__name.sql, Flyway's
 * R__), which have no version and run again whenever their checksum
 * changes.
 *   repeatable_migrations: one row per repeatable migration and target,
 *     keyed by its name: the checksum it last ran with (NULL: it needs a
 *     run, because a rollback left the versioned migrations it builds on
 *     unapplied, or a baseline could not show it ran as it is now), its
 *     state (running, applied, failed), how many times it ran to the end
 *     here (runs), timings, error, and what said it had run when a
 *     baseline recorded it (baseline_source).
 *   repeatable_objects: the schema objects each repeatable migration's
 *     runs created or changed (kind and ident as agent/schema.h names
 *     them), so that a rollback's proof knows a view a repeatable made
 *     from a missing object of the versioned ones.
 * Self-contained (no other step needs it) and idempotent.
 */
static const char s_ledger_v8[] =
    "CREATE TABLE IF NOT EXISTS flotilla.repeatable_migrations ("
    "  target text NOT NULL,"
    "  name text NOT NULL,"
    "  file text NOT NULL,"
    "  checksum text,"
    "  status text NOT NULL CHECK (status IN ('running', 'applied',"
    "    'failed')),"
    "  runs int NOT NULL DEFAULT 0,"
    "  transactional boolean NOT NULL DEFAULT true,"
    "  statements_done int NOT NULL DEFAULT 0,"
    "  statements_total int NOT NULL DEFAULT 0,"
    "  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    "  finished_at timestamptz,"
    "  duration_ms bigint,"
    "  lock_wait_ms bigint NOT NULL DEFAULT 0,"
    "  retries int NOT NULL DEFAULT 0,"
    "  bundle_id text,"
    "  rollout_id text NOT NULL DEFAULT '',"
    "  applied_by text NOT NULL DEFAULT current_user,"
    "  agent text NOT NULL DEFAULT '',"
    "  error_sqlstate text,"
    "  error_message text,"
    "  error_position text,"
    "  schema_fingerprint text,"
    "  baseline_source text,"
    "  rerun_reason text,"
    "  PRIMARY KEY (target, name));"
    "CREATE TABLE IF NOT EXISTS flotilla.repeatable_objects ("
    "  target text NOT NULL,"
    "  name text NOT NULL,"
    "  kind text NOT NULL,"
    "  ident text NOT NULL,"
    "  PRIMARY KEY (target, kind, ident, name));"
    "REVOKE ALL ON flotilla.repeatable_migrations, flotilla.repeatable_objects"
    "  FROM PUBLIC;";

/*
 * Version 9: what a rollback needs to tell the rows the application
 * wrote since the migration from the migration's own and older ones, to
 * keep those its down deletes or changes (fl__since_sql):
 *   schema_migrations.applied_snapshot: the snapshot of the statement
 *     that recorded the migration applied, in its transaction (for one
 *     without a transaction, of the first record of its run, before its
 *     first statement); a row whose xmin it does not show committed was
 *     written after it, or was in progress then;
 *   schema_migrations.applied_xids: the transaction ids that statement's
 *     transaction held then (its own and its subtransactions', which
 *     wrote the migration's rows: pg_locks); for a migration without a
 *     transaction, those of every record of its progress, each in the
 *     transaction of the statements it records, gathered as it goes.
 * NULL on rows written before version 9 and on a baseline's rows
 * (nothing ran).  Self-contained and idempotent.
 */
static const char s_ledger_v9[] =
    "ALTER TABLE flotilla.schema_migrations"
    "  ADD COLUMN IF NOT EXISTS applied_snapshot pg_catalog.pg_snapshot,"
    "  ADD COLUMN IF NOT EXISTS applied_xids pg_catalog.xid[];";

/*
 * Version 10: which kinds of object a migration's recorded schema changes
 * cover (FL_SCHEMA_FORMAT, agent/schema.h), so that the rollback of a
 * migration recorded before publications, extensions, default privileges
 * and the like were described does not take the down's change of one for
 * a difference.  NULL on older rows: format 1.  And schema_state: the
 * fingerprint of each target's schema as flotilla last left it (agent/
 * schema.h, "The schema as flotilla left it").
 */
static const char s_ledger_v10[] =
    "ALTER TABLE flotilla.schema_migrations"
    "  ADD COLUMN IF NOT EXISTS schema_format int;"
    FL_SCHEMA_STATE_SQL
    "REVOKE ALL ON flotilla.schema_state FROM PUBLIC;";

/*
 * A new ledger in its current shape, in one statement list: what
 * s_ledger_v1 to s_ledger_v7 and fl_schema_ledger_sql leave, column for
 * column in the same order, with the same names of constraints, indexes
 * and sequences, but without the table rewrites and index rebuilds the
 * steps cost on a new database (a target's first migration paid them:
 * docs/BENCHMARKS.md).  Run only where no schema flotilla exists, under
 * the ledger's lock: CREATE SCHEMA without IF NOT EXISTS fails rather
 * than fill a schema someone created meanwhile.  test_ledger.c compares
 * its pg_dump with a ledger made step by step and with the version 4
 * fixture upgraded: a new step is added here too (version 8's tables are
 * made by s_ledger_v8 itself, run after s_ledger_new_end).
 */
#define S_VERSION_FORM(t)                                                   \
    "  CONSTRAINT " t "_version_form CHECK (version OPERATOR(pg_catalog.~) " \
    S_VERSION_RE ")"

static const char s_ledger_new[] =
    "CREATE SCHEMA flotilla;"
    "CREATE TABLE flotilla.ledger_meta ("
    "  ledger_version int NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  target_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid());"
    "CREATE TABLE flotilla.schema_migrations ("
    "  version pg_catalog.text NOT NULL,"
    S_SM_HEAD
    "  status text NOT NULL,"
    S_SM_TAIL ","
    "  down_done int NOT NULL DEFAULT 0,"
    "  schema_recorded boolean NOT NULL DEFAULT false,"
    "  rollback_note text,"
    "  target text NOT NULL,"
    "  version_order pg_catalog.numeric[] GENERATED ALWAYS AS ("
    FL_VERSION_SQL_ORDER("version") ") STORED,"
    "  baseline_source text,"
    "  up_checksum text,"
    "  down_checksum text,"
    "  rollback_down_checksum text,"
    "  CONSTRAINT schema_migrations_status_check CHECK (status IN"
    "    ('running', 'applied', 'failed', 'rolling_back', 'rolled_back')),"
    S_VERSION_FORM("schema_migrations") ","
    "  CONSTRAINT schema_migrations_pkey PRIMARY KEY (target, version));"
    "CREATE TABLE flotilla.migration_logs ("
    "  id bigserial PRIMARY KEY,"
    "  version pg_catalog.text,"
    S_LOG_COLUMNS ","
    "  target text NOT NULL,"
    S_VERSION_FORM("migration_logs") ");"
    "CREATE INDEX migration_logs_created_at"
    "  ON flotilla.migration_logs (created_at);"
    "CREATE INDEX migration_logs_status ON flotilla.migration_logs (status);"
    "CREATE INDEX migration_logs_target"
    "  ON flotilla.migration_logs (target, id);"
    "CREATE TABLE flotilla.backups ("
    "  id bigserial PRIMARY KEY,"
    "  version pg_catalog.text NOT NULL,"
    "  bundle_id text,"
    S_BACKUP_COLUMNS ","
    "  text_columns boolean[] NOT NULL DEFAULT '{}',"
    "  match text NOT NULL DEFAULT 'key',"
    "  added_rows bigint NOT NULL DEFAULT 0,"
    "  released_at timestamptz,"
    "  target text NOT NULL,"
    S_VERSION_FORM("backups") ");"
    "CREATE INDEX backups_target_version"
    "  ON flotilla.backups (target, version);"
    "CREATE TABLE flotilla.sequence_backups ("
    "  id bigserial PRIMARY KEY,"
    "  version pg_catalog.text NOT NULL,"
    S_SEQ_BACKUP_COLUMNS ","
    "  target text NOT NULL,"
    S_VERSION_FORM("sequence_backups") ");"
    "CREATE TABLE flotilla.release_marks ("
    "  channel text NOT NULL,"
    "  sequence bigint NOT NULL,"
    "  bundle_id text NOT NULL,"
    "  signer text NOT NULL,"
    "  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    "  target text NOT NULL,"
    "  CONSTRAINT release_marks_pkey PRIMARY KEY (target, channel));";

/*
 * After s_ledger_new, the schema flotilla_backup and fl_schema_ledger_sql:
 * what versions 3 and 5 add.
 */
static const char s_ledger_new_end[] =
    "ALTER TABLE flotilla.schema_changes ADD" S_VERSION_FORM("schema_changes")
    ";"
    "REVOKE ALL ON SCHEMA flotilla, flotilla_backup FROM PUBLIC;"
    "REVOKE ALL ON ALL TABLES IN SCHEMA flotilla FROM PUBLIC;"
    "REVOKE ALL ON ALL SEQUENCES IN SCHEMA flotilla FROM PUBLIC;"
    "REVOKE ALL ON ALL TABLES IN SCHEMA flotilla_backup FROM PUBLIC;";

/*
 * Who owns the ledger: the schemas flotilla and flotilla_backup, and
 * everything in them (tables, views, functions, types, sequences), must
 * belong to the role flotilla runs as or to a superuser.  A tenant who
 * owns the database can create the schema "flotilla" first, with a
 * trigger on a ledger table or a view in its place: its code would run
 * with flotilla's rights at the first INSERT or SELECT.  Returns the
 * number of objects owned by anyone else (0: trusted), with up to three
 * named in *sample.
 *
 * This check, the damage check and the read of the rows run as statements
 * prepared on the connection (planned once, executed again at each read):
 * an agent's command reads the ledger up to four times on one connection
 * (its state before, the run's ensure and load, its state after), and
 * each unprepared read was parsed and planned again.  PostgreSQL plans a
 * prepared statement again whenever a table or catalog it reads changes,
 * so a ledger damaged or given away between two reads is seen by the
 * second (test_pipeline_lib.c).
 */
#define S_OWNED_OK(col)                                                     \
    "(" col " OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles"  \
    " WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER) OR (SELECT"        \
    " rolsuper FROM pg_catalog.pg_roles r WHERE r.oid"                      \
    " OPERATOR(pg_catalog.=) " col "))"

static const char s_foreign_objects[] =
    "WITH o(what, owner) AS ("
    " SELECT 'schema ' OPERATOR(pg_catalog.||) nspname, nspowner"
    "  FROM pg_catalog.pg_namespace"
    "  WHERE nspname IN ('flotilla', 'flotilla_backup')"
    " UNION ALL SELECT 'relation ' OPERATOR(pg_catalog.||) n.nspname"
    "  OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) c.relname,"
    "  c.relowner FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
    "  ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
    "  WHERE n.nspname IN ('flotilla', 'flotilla_backup')"
    " UNION ALL SELECT 'function ' OPERATOR(pg_catalog.||) n.nspname"
    "  OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) p.proname,"
    "  p.proowner FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n"
    "  ON n.oid OPERATOR(pg_catalog.=) p.pronamespace"
    "  WHERE n.nspname IN ('flotilla', 'flotilla_backup')"
    " UNION ALL SELECT 'type ' OPERATOR(pg_catalog.||) n.nspname"
    "  OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) t.typname,"
    "  t.typowner FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n"
    "  ON n.oid OPERATOR(pg_catalog.=) t.typnamespace"
    "  WHERE n.nspname IN ('flotilla', 'flotilla_backup'))"
    " SELECT pg_catalog.count(*)::pg_catalog.text,"
    " COALESCE(pg_catalog.string_agg(what OPERATOR(pg_catalog.||) ' (owner '"
    " OPERATOR(pg_catalog.||) pg_catalog.pg_get_userbyid(owner)::pg_catalog.text"
    " OPERATOR(pg_catalog.||) ')', ', '), '')"
    " FROM (SELECT * FROM o WHERE NOT " S_OWNED_OK("o.owner")
    " ORDER BY what LIMIT 1000) f";

#define S_LEDGER_VERSION_SQL                                                \
    "SELECT pg_catalog.max(ledger_version) FROM flotilla.ledger_meta"

static int
s_check_owner(fl_pg_t *pg, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query_prepared(pg, &r, "flotilla_ledger_owner",
                                  s_foreign_objects, 0, NULL, err);

    if (rc != 0)
        return rc;
    if (r.nrows == 1 && strcmp(fl_pg_value(&r, 0, 0), "0") != 0) {
        rc = FL_ERR(err, FL_EFAIL, "the ledger in database \"%s\" is not "
                    "owned by the role flotilla runs as, nor by a superuser",
                    fl_pg_describe(pg));
        fl_error_set_detail(err, "%s object%s: %.600s.  Code in them would run "
                            "with flotilla's rights, so flotilla does not "
                            "read or write them.", fl_pg_value(&r, 0, 0),
                            strcmp(fl_pg_value(&r, 0, 0), "1") == 0 ? "" : "s",
                            fl_pg_value(&r, 0, 1));
        fl_error_set_hint(err, "If the ledger is flotilla's, reassign it: "
                               "ALTER SCHEMA flotilla OWNER TO <flotilla "
                               "role> (and its tables).  If someone else "
                               "created it, find out who before anything "
                               "else (docs/SECURITY.md).");
    }
    fl_pg_result_release(&r);
    return rc;
}

/*
 * The ledger's tables and columns, each with the ledger version that
 * brought it ("" for the table itself).  A ledger missing one of those
 * its version has is damaged: re-creating it would make every applied
 * migration look pending (apply would run them again), and reading it
 * gives a raw SQL error, so it is diagnosed by name instead.
 */
static const char s_ledger_columns[] =
    "[[\"ledger_meta\",\"\",1],[\"ledger_meta\",\"ledger_version\",1],"
    "[\"ledger_meta\",\"target_id\",2],"
    "[\"schema_migrations\",\"\",1],[\"schema_migrations\",\"version\",1],"
    "[\"schema_migrations\",\"name\",1],[\"schema_migrations\",\"checksum\",1],"
    "[\"schema_migrations\",\"bundle_id\",1],"
    "[\"schema_migrations\",\"rollout_id\",1],"
    "[\"schema_migrations\",\"status\",1],"
    "[\"schema_migrations\",\"transactional\",1],"
    "[\"schema_migrations\",\"statements_done\",1],"
    "[\"schema_migrations\",\"statements_total\",1],"
    "[\"schema_migrations\",\"started_at\",1],"
    "[\"schema_migrations\",\"finished_at\",1],"
    "[\"schema_migrations\",\"duration_ms\",1],"
    "[\"schema_migrations\",\"lock_wait_ms\",1],"
    "[\"schema_migrations\",\"retries\",1],"
    "[\"schema_migrations\",\"applied_by\",1],"
    "[\"schema_migrations\",\"agent\",1],"
    "[\"schema_migrations\",\"error_sqlstate\",1],"
    "[\"schema_migrations\",\"error_message\",1],"
    "[\"schema_migrations\",\"error_position\",1],"
    "[\"schema_migrations\",\"schema_fingerprint\",1],"
    "[\"schema_migrations\",\"file\",1],[\"schema_migrations\",\"down_sql\",1],"
    "[\"schema_migrations\",\"down_line\",1],"
    "[\"schema_migrations\",\"down_done\",2],"
    "[\"schema_migrations\",\"schema_recorded\",2],"
    "[\"schema_migrations\",\"rollback_note\",2],"
    "[\"schema_migrations\",\"target\",4],"
    "[\"schema_migrations\",\"version_order\",5],"
    "[\"schema_migrations\",\"baseline_source\",6],"
    "[\"schema_migrations\",\"up_checksum\",7],"
    "[\"schema_migrations\",\"down_checksum\",7],"
    "[\"schema_migrations\",\"rollback_down_checksum\",7],"
    "[\"schema_migrations\",\"applied_snapshot\",9],"
    "[\"schema_migrations\",\"applied_xids\",9],"
    "[\"schema_migrations\",\"schema_format\",10],"
    "[\"schema_state\",\"\",10],[\"schema_state\",\"fingerprint\",10],"
    "[\"repeatable_migrations\",\"\",8],"
    "[\"repeatable_migrations\",\"checksum\",8],"
    "[\"repeatable_migrations\",\"status\",8],"
    "[\"repeatable_objects\",\"\",8],"
    "[\"migration_logs\",\"\",1],[\"migration_logs\",\"version\",1],"
    "[\"migration_logs\",\"step\",1],[\"migration_logs\",\"status\",1],"
    "[\"migration_logs\",\"duration_ms\",1],[\"migration_logs\",\"message\",1],"
    "[\"migration_logs\",\"created_at\",1],[\"migration_logs\",\"target\",4],"
    "[\"backups\",\"\",1],[\"backups\",\"version\",1],"
    "[\"backups\",\"source_schema\",1],[\"backups\",\"source_table\",1],"
    "[\"backups\",\"kind\",1],[\"backups\",\"location\",1],"
    "[\"backups\",\"columns\",1],[\"backups\",\"key_columns\",1],"
    "[\"backups\",\"row_count\",1],[\"backups\",\"checksum\",1],"
    "[\"backups\",\"text_columns\",2],[\"backups\",\"match\",2],"
    "[\"backups\",\"target\",4],"
    "[\"sequence_backups\",\"\",2],[\"sequence_backups\",\"target\",4],"
    "[\"schema_changes\",\"\",2],[\"schema_changes\",\"target\",4],"
    "[\"release_marks\",\"\",3],[\"release_marks\",\"target\",4]]";

/*
 * Whether the ledger is whole: FL_EINVAL naming what is missing when
 * ledger_meta is gone while other ledger tables remain, or when a table
 * or column the recorded ledger version has is gone.  No ledger at all
 * (a fresh database) is whole.
 */
static int
s_check_intact(fl_pg_t *pg, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char version[16];
    const char *params[2] = {s_ledger_columns, version};
    fl_buf_t what = FL_BUF_INIT(0);
    char *v = NULL;
    int rc;

    /*
     * The version the ledger says it has; with ledger_meta gone but other
     * ledger tables left, the current one (so all of it is named).
     */
    rc = fl_pg_query_prepared_value(pg, &v, "flotilla_ledger_meta",
        "SELECT CASE WHEN pg_catalog.to_regclass('flotilla.ledger_meta') IS"
        " NOT NULL THEN 'meta' WHEN EXISTS (SELECT FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=)"
        " c.relnamespace WHERE n.nspname OPERATOR(pg_catalog.=) 'flotilla'"
        " AND c.relname IN ('schema_migrations', 'migration_logs', 'backups',"
        " 'sequence_backups', 'schema_changes', 'release_marks',"
        " 'schema_state', 'repeatable_migrations', 'repeatable_objects')) THEN"
        " 'damaged' ELSE 'none' END", 0, NULL, err);
    if (rc != 0 || v == NULL || strcmp(v, "none") == 0) {
        free(v);
        return rc;
    }
    if (strcmp(v, "meta") == 0) {
        free(v);
        v = NULL;
        rc = fl_pg_query_prepared_value(pg, &v, "flotilla_ledger_version",
                                        S_LEDGER_VERSION_SQL, 0, NULL, err);
        if (rc != 0) {
            free(v);
            return rc;
        }
        /* No version recorded: an old ledger, held to version 1. */
        snprintf(version, sizeof(version), "%ld", v ? strtol(v, NULL, 10) : 1L);
    } else {
        snprintf(version, sizeof(version), "%d", FL_LEDGER_VERSION);
    }
    free(v);
    rc = fl_pg_query_prepared(pg, &r, "flotilla_ledger_intact",
        "WITH e AS (SELECT x OPERATOR(pg_catalog.->>) 0 AS rel,"
        "  x OPERATOR(pg_catalog.->>) 1 AS col,"
        "  (x OPERATOR(pg_catalog.->>) 2)::pg_catalog.int4 AS since"
        "  FROM pg_catalog.json_array_elements($1::pg_catalog.json) x),"
        " t AS (SELECT c.oid, c.relname FROM pg_catalog.pg_class c"
        "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=)"
        "  c.relnamespace WHERE n.nspname OPERATOR(pg_catalog.=) 'flotilla'"
        "  AND c.relkind IN ('r', 'p'))"
        " SELECT e.rel, e.col FROM e WHERE e.since OPERATOR(pg_catalog.<=)"
        " $2::pg_catalog.int4 AND NOT EXISTS (SELECT FROM t LEFT JOIN"
        " pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.oid"
        " AND a.attname OPERATOR(pg_catalog.=) e.col AND a.attnum"
        " OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped WHERE t.relname"
        " OPERATOR(pg_catalog.=) e.rel AND (e.col OPERATOR(pg_catalog.=) ''"
        " OR a.attname IS NOT NULL)) ORDER BY e.rel, e.col", 2, params, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0, table = 0; i < r.nrows; i++) {
        const char *rel = fl_pg_value(&r, i, 0), *col = fl_pg_value(&r, i, 1);
        /* A missing table makes its columns missing too: name it once. */
        if (*col == '\0')
            table = i + 1;
        else if (table && strcmp(fl_pg_value(&r, table - 1, 0), rel) == 0)
            continue;
        fl_buf_addf(&what, "%s%s flotilla.%s%s%s", what.len ? ", " : "",
                    *col ? "column" : "table", rel, *col ? "." : "", col);
    }
    if (r.nrows > 0) {
        rc = FL_ERR(err, FL_EINVAL, "the ledger in database \"%s\" is damaged: "
                    "%s %s missing", fl_pg_describe(pg), fl_buf_str(&what),
                    strchr(fl_buf_str(&what), ',') ? "are" : "is");
        fl_error_set_detail(err, "Flotilla does not re-create a damaged "
                                 "ledger: every applied migration would then "
                                 "look pending, and apply would run it again.");
        fl_error_set_hint(err, "Restore the schema \"flotilla\" from a backup "
                               "of this database (pg_dump --schema=flotilla), "
                               "then run flotilla again.");
    }
    fl_buf_release(&what);
    fl_pg_result_release(&r);
    return rc;
}

int
fl_ledger_exists(fl_pg_t *pg, fl_error_t *err)
{
    char *v = NULL;
    int rc = s_check_owner(pg, err);

    if (rc != 0 || (rc = s_check_intact(pg, err)) != 0)
        return rc;
    rc = fl_pg_query_prepared_value(pg, &v, "flotilla_ledger_exists",
                                    "SELECT pg_catalog.to_regclass("
                                    "'flotilla.schema_migrations') IS NOT NULL",
                                    0, NULL, err);
    if (rc != 0)
        return rc;
    rc = v && strcmp(v, "t") == 0;
    free(v);
    return rc;
}

/*
 * Where the ledger stands, from the catalog alone (nothing in the
 * schemas is read): "none" (neither schema flotilla nor flotilla_backup),
 * "backup" (flotilla_backup only), "current" (its tables are there), else
 * "other" (a ledger to upgrade, or damaged).  The catalogs are scanned, not looked
 * up by to_regnamespace(): under the ledger's lock, after a wait, the
 * catalog cache can still answer from before it (a lock on a relation,
 * not an advisory one, makes the backend read the invalidations that
 * another session's CREATE SCHEMA sent), and the scan's first lock on
 * pg_namespace in the transaction does.
 */
#define S_LEDGER_STATE_SQL                                                  \
    "SELECT CASE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n"    \
    " WHERE n.nspname OPERATOR(pg_catalog.=) ANY"                           \
    " ('{flotilla,flotilla_backup}'::pg_catalog.name[])) THEN 'none'"       \
    " WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n"               \
    " WHERE n.nspname OPERATOR(pg_catalog.=) 'flotilla') THEN 'backup'"     \
    " WHEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c"          \
    " JOIN pg_catalog.pg_namespace n"                                       \
    " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"                       \
    " WHERE n.nspname OPERATOR(pg_catalog.=) 'flotilla'"                    \
    " AND c.relname OPERATOR(pg_catalog.=) ANY"                             \
    " ('{ledger_meta,backups}'::pg_catalog.name[]))"                        \
    " OPERATOR(pg_catalog.=) 2 THEN 'current' ELSE 'other' END"

int
fl_ledger_ensure(fl_pg_t *pg, fl_error_t *err)
{
    char *v = NULL;
    int rc = 0, nothing = 0, fresh = 0;

    /*
     * A database flotilla never touched (neither schema there) has nothing
     * to check: straight to the lock and the new ledger, sparing a
     * database's first migration the ownership and damage checks on cold
     * caches.
     */
    if ((rc = fl_pg_query_prepared_value(pg, &v, "flotilla_ledger_state",
                                         S_LEDGER_STATE_SQL, 0, NULL,
                                         err)) != 0)
        return rc;
    if (v != NULL && strcmp(v, "none") == 0)
        goto create;
    /*
     * The usual case: the ledger is there and current.  Two reads instead
     * of a transaction of DDL, on every run.
     */
    if ((rc = s_check_owner(pg, err)) != 0 ||
        (rc = s_check_intact(pg, err)) != 0)
        goto out;
    if (v != NULL && strcmp(v, "current") == 0) {
        free(v);
        v = NULL;
        rc = fl_pg_query_prepared_value(pg, &v, "flotilla_ledger_version",
                                        S_LEDGER_VERSION_SQL, 0, NULL, err);
        if (rc != 0)
            goto out;
        if (v && strtol(v, NULL, 10) == FL_LEDGER_VERSION)
            goto out;
    }
create:
    free(v);
    v = NULL;
    if ((rc = fl_pg_exec(pg, "BEGIN; SELECT " S_LEDGER_LOCK, err)) != 0)
        return rc;
    /*
     * Checked again under the lock: a schema created since is seen.  With
     * neither schema there, nothing can be foreign, and the new ledger
     * creates flotilla_backup without IF NOT EXISTS: one created by another
     * session in the meantime fails the creation instead of being adopted
     * unchecked.
     */
    if ((rc = fl_pg_query_value(pg, &v, S_LEDGER_STATE_SQL, 0, NULL,
                                err)) != 0)
        goto fail;
    nothing = v != NULL && strcmp(v, "none") == 0;
    fresh = nothing || (v != NULL && strcmp(v, "backup") == 0);
    free(v);
    v = NULL;
    if (!nothing && (rc = s_check_owner(pg, err)) != 0)
        goto fail;
    if (fresh) {
        /* No schema flotilla: the new ledger in one round trip. */
        fl_buf_t sql = FL_BUF_INIT(0);

        fl_buf_adds(&sql, s_ledger_new);
        if (nothing)
            fl_buf_adds(&sql, "CREATE SCHEMA flotilla_backup;");
        else
            fl_buf_adds(&sql, "CREATE SCHEMA IF NOT EXISTS flotilla_backup;");
        fl_buf_adds(&sql, fl_schema_ledger_sql);
        fl_buf_adds(&sql, s_ledger_new_end);
        fl_buf_adds(&sql, s_ledger_v8);
        fl_buf_adds(&sql, s_ledger_v9);
        fl_buf_adds(&sql, s_ledger_v10);
        fl_buf_addf(&sql, "INSERT INTO flotilla.ledger_meta (ledger_version)"
                    " VALUES (%d);COMMIT", FL_LEDGER_VERSION);
        rc = fl_pg_exec(pg, fl_buf_str(&sql), err);
        fl_buf_release(&sql);
        if (rc != 0)
            goto fail;
        return 0;
    }
    if ((rc = fl_pg_exec(pg, s_ledger_v1, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v2, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v3, err)) != 0 ||
        (rc = fl_pg_exec(pg, fl_schema_ledger_sql, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v4, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v5, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v6, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v7, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v8, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v9, err)) != 0 ||
        (rc = fl_pg_exec(pg, s_ledger_v10, err)) != 0)
        goto fail;
    rc = fl_pg_query_value(pg, &v,
        "SELECT pg_catalog.max(ledger_version) FROM flotilla.ledger_meta", 0,
        NULL, err);
    if (rc != 0)
        goto fail;
    if (v == NULL || strtol(v, NULL, 10) < FL_LEDGER_VERSION) {
        rc = fl_pg_execf(pg, err, "INSERT INTO flotilla.ledger_meta "
                         "(ledger_version) VALUES (%d)", FL_LEDGER_VERSION);
        if (rc != 0)
            goto fail;
    } else if (strtol(v, NULL, 10) > FL_LEDGER_VERSION) {
        rc = FL_ERR(err, FL_ECONFLICT, "the ledger in database \"%s\" has "
                    "version %s, newer than this Flotilla understands (%d)",
                    fl_pg_describe(pg), v, FL_LEDGER_VERSION);
        fl_error_set_hint(err, "Upgrade flotilla before running it on this "
                               "database.");
        goto fail;
    }
    free(v);
    return fl_pg_exec(pg, "COMMIT", err);
fail:
    free(v);
    {
        fl_error_t ignore = FL_ERROR_INIT;
        /* The first error is the one to report; the rollback's is noise. */
        FL_IGNORE(fl_pg_exec(pg, "ROLLBACK", &ignore));
        fl_error_clear(&ignore);
    }
    fl_error_prefix(err, "could not prepare the ledger: ");
    return rc;
out:
    free(v);
    return rc;
}

/* The rows of target, from a ledger known to exist and be trusted. */
static int
s_read_rows(fl_pg_t *pg, const char *target, fl_ledger_t *out,
            fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[1] = {target};
    int rc = 0;

    rc = fl_pg_query_prepared(pg, &r, "flotilla_ledger_rows",
        "SELECT version, name, checksum, bundle_id, status, transactional,"
        " statements_done, statements_total, " FL_PG_TIME_TEXT("started_at")
        ", " FL_PG_TIME_TEXT("finished_at") ", coalesce(duration_ms, 0),"
        " lock_wait_ms, retries, applied_by, agent,"
        " error_sqlstate, error_message, error_position, file, down_done,"
        " schema_recorded, rollout_id, baseline_source, up_checksum,"
        " down_checksum, down_sql, applied_snapshot::pg_catalog.text,"
        " applied_xids::pg_catalog.text, coalesce(schema_format, 1)"
        " FROM flotilla.schema_migrations WHERE target OPERATOR(pg_catalog.=)"
        " $1 ORDER BY version_order", 1, params, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < r.nrows; i++)
        if (!fl_version_is_canonical(fl_pg_value(&r, i, 0))) {
            rc = FL_ERR(err, FL_EINVAL, "the ledger of target \"%s\" in "
                        "database \"%s\" holds an invalid version \"%.80s\"",
                        target, fl_pg_describe(pg), fl_pg_value(&r, i, 0));
            fl_error_set_hint(err, "Versions are numbers separated by dots "
                                   "without leading zeros; someone edited "
                                   "flotilla.schema_migrations by hand.");
            fl_pg_result_release(&r);
            return rc;
        }
    out->items = fl_calloc(r.nrows ? r.nrows : 1, sizeof(fl_ledger_row_t));
    out->count = r.nrows;
    for (size_t i = 0; i < r.nrows; i++) {
        fl_ledger_row_t *row = &out->items[i];
        FL_IGNORE(fl_version_parse_str(&row->version, fl_pg_value(&r, i, 0),
                                       NULL)); /* checked above */
        row->name = fl_strdup_or_null(fl_pg_value(&r, i, 1));
        row->checksum = fl_strdup_or_null(fl_pg_value(&r, i, 2));
        row->bundle_id = fl_strdup_or_null(fl_pg_value(&r, i, 3));
        row->status = fl_strdup_or_null(fl_pg_value(&r, i, 4));
        row->transactional = strcmp(fl_pg_value(&r, i, 5), "t") == 0;
        row->statements_done = (int)strtol(fl_pg_value(&r, i, 6), NULL, 10);
        row->statements_total = (int)strtol(fl_pg_value(&r, i, 7), NULL, 10);
        row->started_at = fl_strdup_or_null(fl_pg_value(&r, i, 8));
        row->finished_at = fl_strdup_or_null(fl_pg_value(&r, i, 9));
        row->duration_ms = strtoll(fl_pg_value(&r, i, 10), NULL, 10);
        row->lock_wait_ms = strtoll(fl_pg_value(&r, i, 11), NULL, 10);
        row->retries = (int)strtol(fl_pg_value(&r, i, 12), NULL, 10);
        row->applied_by = fl_strdup_or_null(fl_pg_value(&r, i, 13));
        row->agent = fl_strdup_or_null(fl_pg_value(&r, i, 14));
        row->error_sqlstate = fl_strdup_or_null(fl_pg_value(&r, i, 15));
        row->error_message = fl_strdup_or_null(fl_pg_value(&r, i, 16));
        row->error_position = fl_strdup_or_null(fl_pg_value(&r, i, 17));
        row->file = fl_strdup_or_null(fl_pg_value(&r, i, 18));
        row->down_done = (int)strtol(fl_pg_value(&r, i, 19), NULL, 10);
        row->schema_recorded = strcmp(fl_pg_value(&r, i, 20), "t") == 0;
        row->rollout_id = fl_strdup_or_null(fl_pg_value(&r, i, 21));
        row->baseline_source = fl_strdup_or_null(fl_pg_value(&r, i, 22));
        row->up_checksum = fl_strdup_or_null(fl_pg_value(&r, i, 23));
        row->down_checksum = fl_strdup_or_null(fl_pg_value(&r, i, 24));
        row->down_sql = fl_strdup_or_null(fl_pg_value(&r, i, 25));
        row->applied_snapshot = fl_strdup_or_null(fl_pg_value(&r, i, 26));
        row->applied_xids = fl_strdup_or_null(fl_pg_value(&r, i, 27));
        row->schema_format = (int)strtol(fl_pg_value(&r, i, 28), NULL, 10);
    }
    fl_pg_result_release(&r);
    return 0;
}

int
fl_ledger_load(fl_pg_t *pg, const char *target, fl_ledger_t *out,
               fl_error_t *err)
{
    int rc = 0;

    out->items = NULL;
    out->count = 0;
    rc = fl_ledger_exists(pg, err);
    if (rc <= 0)
        return rc;
    return s_read_rows(pg, target, out, err);
}

int
fl_ledger_ensure_load(fl_pg_t *pg, const char *target, fl_ledger_t *out,
                      fl_error_t *err)
{
    int rc = 0;

    out->items = NULL;
    out->count = 0;
    /* What fl_ledger_load checks first, ensure has just checked. */
    if ((rc = fl_ledger_ensure(pg, err)) != 0)
        return rc;
    return s_read_rows(pg, target, out, err);
}

void
fl_ledger_release(fl_ledger_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++) {
        fl_ledger_row_t *row = &l->items[i];
        free(row->name);
        free(row->checksum);
        free(row->bundle_id);
        free(row->status);
        free(row->started_at);
        free(row->finished_at);
        free(row->applied_by);
        free(row->agent);
        free(row->error_sqlstate);
        free(row->error_message);
        free(row->error_position);
        free(row->file);
        free(row->rollout_id);
        free(row->baseline_source);
        free(row->up_checksum);
        free(row->down_checksum);
        free(row->down_sql);
        free(row->applied_snapshot);
        free(row->applied_xids);
    }
    fl_free(&l->items);
    l->count = 0;
}

const fl_ledger_row_t *
fl_ledger_find(const fl_ledger_t *l, const fl_version_t *version)
{
    for (size_t i = 0; i < l->count; i++)
        if (fl_version_cmp(&l->items[i].version, version) == 0)
            return &l->items[i];
    return NULL;
}

void
fl_ledger_drift_sums(const fl_ledger_row_t *row, const fl_migration_t *m,
                     const char **applied, char source[65])
{
    unsigned char sum[32];

    if (row->up_checksum != NULL) {
        fl_migration_up_checksum(sum, m);
        fl_migration_hex(source, sum);
        *applied = row->up_checksum;
    } else {
        memcpy(source, m->checksum_hex, 65);
        *applied = row->checksum;
    }
}

int
fl_ledger_row_matches(const fl_ledger_row_t *row, const fl_migration_t *m)
{
    unsigned char sum[32];
    char hex[65];

    if (row->up_checksum) {
        fl_migration_up_checksum(sum, m);
        fl_migration_hex(hex, sum);
        return strcmp(hex, row->up_checksum) == 0;
    }
    if (strcmp(row->checksum, m->checksum_hex) == 0)
        return 1;
    {
        /* An older row: the source with the down it was applied with. */
        fl_migration_t as_applied = *m;
        as_applied.down = row->down_sql;
        fl_migration_compute_checksum(&as_applied);
        return strcmp(as_applied.checksum_hex, row->checksum) == 0;
    }
}

int
fl_ledger_row_in_effect(const fl_ledger_row_t *row)
{
    if (strcmp(row->status, "applied") == 0 ||
        strcmp(row->status, "rolling_back") == 0)
        return 1;
    return fl_ledger_row_partial(row);
}

int
fl_ledger_row_partial(const fl_ledger_row_t *row)
{
    return !row->transactional && row->statements_done > 0 &&
           (strcmp(row->status, "running") == 0 ||
            strcmp(row->status, "failed") == 0);
}

size_t
fl_ledger_gaps(const fl_ledger_t *ledger, const fl_migration_list_t *migs,
               const char *bundle_id, fl_ledger_gap_t **out)
{
    size_t n = 0;

    *out = NULL;
    for (size_t i = 0; i < ledger->count; i++) {
        const fl_ledger_row_t *row = &ledger->items[i];
        fl_ledger_gap_t *g = NULL;
        int found = 0;

        if (!fl_ledger_row_in_effect(row) || (bundle_id == NULL) != (row->bundle_id == NULL) ||
            (bundle_id && strcmp(bundle_id, row->bundle_id) != 0))
            continue;
        for (size_t j = 0; j < migs->count && !found; j++)
            found = fl_version_cmp(&migs->items[j].version,
                                   &row->version) == 0;
        if (found)
            continue;
        *out = fl_reallocarray(*out, n + 1, sizeof(**out));
        g = &(*out)[n++];
        g->row = row;
        g->renumbered_as = NULL;
        for (size_t j = 0; j < migs->count && g->renumbered_as == NULL; j++) {
            /* The same migration under the ledger's number and name. */
            fl_migration_t m = migs->items[j];
            m.version = row->version;
            m.name = row->name;
            fl_migration_compute_checksum(&m);
            if (fl_ledger_row_matches(row, &m))
                g->renumbered_as = &migs->items[j];
        }
    }
    return n;
}

/*
 * One INSERT for every row of a batch: the rows travel as a JSON array
 * (one round trip, whatever their number), each with the time its step
 * happened, so created_at orders the steps as they ran, not as they were
 * written.
 */
int
fl_ledger_log(fl_pg_t *pg, const fl_ledger_log_t *entries, size_t n,
              fl_error_t *err)
{
    json_t *rows = NULL;
    char *text = NULL;
    const char *params[1];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    if (n == 0)
        return 0;
    rows = json_array();
    for (size_t i = 0; i < n; i++) {
        const fl_ledger_log_t *e = &entries[i];
        json_t *o = json_object();

        json_object_set_new(o, "version",
                            fl_version_is_set(&e->version)
                                ? fl_json_text(e->version.text)
                                : json_null());
        json_object_set_new(o, "name", e->name ? fl_json_text(e->name)
                                               : json_null());
        json_object_set_new(o, "step", fl_json_text(e->step));
        json_object_set_new(o, "status", fl_json_text(e->status));
        json_object_set_new(o, "duration_ms", json_integer(e->duration_ms));
        json_object_set_new(o, "message", e->message ? fl_json_text(e->message)
                                                     : json_null());
        json_object_set_new(o, "bundle_id", e->bundle_id
                                                ? fl_json_text(e->bundle_id)
                                                : json_null());
        json_object_set_new(o, "rollout_id",
                            fl_json_text(e->rollout_id ? e->rollout_id : ""));
        json_object_set_new(o, "target", fl_json_text(e->target ? e->target
                                                                : ""));
        json_object_set_new(o, "time_us", e->time_us ? json_integer(e->time_us)
                                                     : json_null());
        json_array_append_new(rows, o);
    }
    text = json_dumps(rows, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(rows);
    if (text == NULL)
        return FL_ERR(err, FL_EFAIL, "could not encode %zu log rows", n);
    params[0] = text;
    rc = fl_pg_query_prepared(pg, &r, "flotilla_ledger_log",
        "INSERT INTO flotilla.migration_logs (version, migration_name, step,"
        " status, duration_ms, message, bundle_id, rollout_id, target,"
        " created_at) SELECT x.version, x.name, x.step, x.status,"
        " x.duration_ms, x.message, x.bundle_id, x.rollout_id, x.target,"
        " COALESCE(pg_catalog.to_timestamp(x.time_us OPERATOR(pg_catalog./)"
        " 1000000.0), pg_catalog.clock_timestamp())"
        " FROM ROWS FROM (pg_catalog.json_to_recordset($1::pg_catalog.json)"
        " AS (version pg_catalog.text, name pg_catalog.text,"
        " step pg_catalog.text, status pg_catalog.text,"
        " duration_ms pg_catalog.int8, message pg_catalog.text,"
        " bundle_id pg_catalog.text, rollout_id pg_catalog.text,"
        " target pg_catalog.text, time_us pg_catalog.int8))"
        " WITH ORDINALITY AS x(version, name, step, status, duration_ms,"
        " message, bundle_id, rollout_id, target, time_us, i)"
        " ORDER BY x.i", 1, params, err);
    fl_pg_result_release(&r);
    free(text);
    return rc;
}

/* The INSERT of fl_ledger_record: 26 parameters, fl_ledger_record_step's. */
static const char s_record_sql[] =
    "INSERT INTO flotilla.schema_migrations AS s (version, name, checksum,"
    " bundle_id, rollout_id, status, transactional, statements_done,"
    " statements_total, started_at, finished_at, duration_ms, lock_wait_ms,"
    " retries, agent, error_sqlstate, error_message, error_detail,"
    " error_hint, error_position, schema_fingerprint, file, down_sql,"
    " down_line, target, baseline_source, up_checksum, down_checksum,"
    " applied_snapshot, applied_xids)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
    " clock_timestamp() - make_interval(secs => $10::bigint / 1000.0),"
    " CASE WHEN $6 = 'running' THEN NULL ELSE clock_timestamp() END,"
    " $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,"
    " $23, $24, $25, $26,"
    " CASE WHEN $6 IN ('running', 'applied') AND $24::text IS NULL"
    "  THEN pg_catalog.pg_current_snapshot() END,"
    " CASE WHEN $6 IN ('running', 'applied') AND $24::text IS NULL"
    "  THEN ARRAY(SELECT l.transactionid FROM pg_catalog.pg_locks l"
    "  WHERE l.locktype = 'transactionid'"
    "  AND l.pid = pg_catalog.pg_backend_pid()) END)"
    " ON CONFLICT (target, version) DO UPDATE SET"
    " name = EXCLUDED.name, baseline_source = EXCLUDED.baseline_source,"
    " up_checksum = EXCLUDED.up_checksum,"
    " down_checksum = EXCLUDED.down_checksum,"
    " checksum = EXCLUDED.checksum, bundle_id = EXCLUDED.bundle_id,"
    " rollout_id = EXCLUDED.rollout_id, status = EXCLUDED.status,"
    " transactional = EXCLUDED.transactional,"
    " statements_done = EXCLUDED.statements_done,"
    " statements_total = EXCLUDED.statements_total,"
    " started_at = CASE WHEN s.status = 'running' AND EXCLUDED.status <> 'running'"
    "   THEN s.started_at ELSE EXCLUDED.started_at END,"
    " applied_snapshot = CASE WHEN s.status = 'running'"
    "   AND EXCLUDED.status IN ('running', 'applied')"
    "   AND NOT EXCLUDED.transactional"
    "   THEN COALESCE(s.applied_snapshot, EXCLUDED.applied_snapshot)"
    "   ELSE EXCLUDED.applied_snapshot END,"
    " applied_xids = CASE WHEN s.status = 'running'"
    "   AND EXCLUDED.status IN ('running', 'applied')"
    "   AND NOT EXCLUDED.transactional AND s.applied_snapshot IS NOT NULL"
    "   THEN s.applied_xids OPERATOR(pg_catalog.||) EXCLUDED.applied_xids"
    "   ELSE EXCLUDED.applied_xids END,"
    " finished_at = EXCLUDED.finished_at, duration_ms = EXCLUDED.duration_ms,"
    " lock_wait_ms = EXCLUDED.lock_wait_ms, retries = EXCLUDED.retries,"
    " applied_by = current_user, agent = EXCLUDED.agent,"
    " server_version = current_setting('server_version'),"
    " error_sqlstate = EXCLUDED.error_sqlstate,"
    " error_message = EXCLUDED.error_message,"
    " error_detail = EXCLUDED.error_detail, error_hint = EXCLUDED.error_hint,"
    " error_position = EXCLUDED.error_position,"
    " schema_fingerprint = EXCLUDED.schema_fingerprint,"
    " file = EXCLUDED.file, down_sql = EXCLUDED.down_sql,"
    " down_line = EXCLUDED.down_line";

/*
 * The row of a repeatable migration (19 parameters): keyed by target and
 * name; runs counts the runs that reached applied (a baseline's row is
 * not a run); the reason it needs a run is cleared by any write but a
 * baseline's without a checksum, which says so.
 */
static const char s_record_repeatable_sql[] =
    "INSERT INTO flotilla.repeatable_migrations AS s (target, name, file,"
    " checksum, status, transactional, statements_done, statements_total,"
    " started_at, finished_at, duration_ms, lock_wait_ms, retries, bundle_id,"
    " rollout_id, agent, error_sqlstate, error_message, error_position,"
    " baseline_source, schema_fingerprint, runs, rerun_reason)"
    " VALUES ($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.text,"
    " $4::pg_catalog.text, $5::pg_catalog.text, $6::pg_catalog.bool,"
    " $7::pg_catalog.int4, $8::pg_catalog.int4,"
    " pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)"
    " pg_catalog.make_interval(secs => $9::pg_catalog.int8"
    " OPERATOR(pg_catalog./) 1000.0),"
    " CASE WHEN $5::pg_catalog.text OPERATOR(pg_catalog.=) 'running' THEN NULL"
    " ELSE pg_catalog.clock_timestamp() END, $9::pg_catalog.int8,"
    " $10::pg_catalog.int8, $11::pg_catalog.int4, $12::pg_catalog.text,"
    " $13::pg_catalog.text, $14::pg_catalog.text, $15::pg_catalog.text,"
    " $16::pg_catalog.text, $17::pg_catalog.text, $18::pg_catalog.text,"
    " $19::pg_catalog.text,"
    " CASE WHEN $5::pg_catalog.text OPERATOR(pg_catalog.=) 'applied' AND $18"
    " IS NULL THEN 1 ELSE 0 END,"
    " CASE WHEN $4 IS NULL AND $18 IS NOT NULL THEN 'baselined from '"
    " OPERATOR(pg_catalog.||) $18 OPERATOR(pg_catalog.||) ' without a"
    " checksum Flotilla can compare: it runs once' END)"
    " ON CONFLICT (target, name) DO UPDATE SET file = EXCLUDED.file,"
    " checksum = EXCLUDED.checksum, status = EXCLUDED.status,"
    " transactional = EXCLUDED.transactional,"
    " statements_done = EXCLUDED.statements_done,"
    " statements_total = EXCLUDED.statements_total,"
    " started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,"
    " duration_ms = EXCLUDED.duration_ms,"
    " lock_wait_ms = EXCLUDED.lock_wait_ms, retries = EXCLUDED.retries,"
    " bundle_id = EXCLUDED.bundle_id, rollout_id = EXCLUDED.rollout_id,"
    " applied_by = CURRENT_USER, agent = EXCLUDED.agent,"
    " error_sqlstate = EXCLUDED.error_sqlstate,"
    " error_message = EXCLUDED.error_message,"
    " error_position = EXCLUDED.error_position,"
    " baseline_source = EXCLUDED.baseline_source,"
    " schema_fingerprint = EXCLUDED.schema_fingerprint,"
    " runs = s.runs OPERATOR(pg_catalog.+) EXCLUDED.runs,"
    " rerun_reason = EXCLUDED.rerun_reason";

/* The counters of r as text, in out's buffers. */
static void
s_step_counters(fl_ledger_step_t *out, const fl_ledger_record_t *r)
{
    snprintf(out->done, sizeof(out->done), "%d", r->statements_done);
    snprintf(out->total, sizeof(out->total), "%d", r->statements_total);
    snprintf(out->dur, sizeof(out->dur), "%lld", (long long)r->duration_ms);
    snprintf(out->wait, sizeof(out->wait), "%lld", (long long)r->lock_wait_ms);
    snprintf(out->retries, sizeof(out->retries), "%d", r->retries);
}

static void
s_record_repeatable_step(fl_ledger_step_t *out, const fl_ledger_record_t *r)
{
    const fl_migration_t *m = r->m;
    const char **p = out->params;

    s_step_counters(out, r);
    p[0] = r->target;
    p[1] = m->name;
    p[2] = m->file;
    /* A baseline that could not show the file ran as it is: no checksum,
     * so the next apply runs it (fl_ledger_record_t.checksum_unknown). */
    p[3] = r->checksum_unknown ? NULL : m->checksum_hex;
    p[4] = r->status;
    p[5] = r->transactional ? "t" : "f";
    p[6] = out->done;
    p[7] = out->total;
    p[8] = out->dur;
    p[9] = out->wait;
    p[10] = out->retries;
    p[11] = r->bundle_id;
    p[12] = r->rollout_id ? r->rollout_id : "";
    p[13] = r->agent ? r->agent : "";
    p[14] = r->error && r->error->sqlstate[0] ? r->error->sqlstate : NULL;
    p[15] = r->error ? r->error->message : NULL;
    p[16] = r->error_position;
    p[17] = r->baseline_source;
    p[18] = r->fingerprint;
    out->step.name = "flotilla_ledger_record_rep";
    out->step.sql = s_record_repeatable_sql;
    out->step.nparams = 19;
    out->step.params = out->params;
    out->step.out = NULL;
}

void
fl_ledger_record_step(fl_ledger_step_t *out, const fl_ledger_record_t *r)
{
    const fl_migration_t *m = r->m;
    const char **p = out->params;
    unsigned char sum[32];

    if (m->repeatable) {
        s_record_repeatable_step(out, r);
        return;
    }
    s_step_counters(out, r);
    snprintf(out->downline, sizeof(out->downline), "%d", m->down_line);
    p[0] = m->version.text;
    p[1] = m->name;
    p[2] = m->checksum_hex;
    p[3] = r->bundle_id;
    p[4] = r->rollout_id ? r->rollout_id : "";
    p[5] = r->status;
    p[6] = r->transactional ? "t" : "f";
    p[7] = out->done;
    p[8] = out->total;
    p[9] = out->dur;
    p[10] = out->wait;
    p[11] = out->retries;
    p[12] = r->agent ? r->agent : "";
    p[13] = r->error && r->error->sqlstate[0] ? r->error->sqlstate : NULL;
    p[14] = r->error ? r->error->message : NULL;
    p[15] = r->error ? r->error->detail : NULL;
    p[16] = r->error ? r->error->hint : NULL;
    p[17] = r->error_position;
    p[18] = r->fingerprint;
    p[19] = m->file;
    p[20] = m->down;
    p[21] = out->downline;
    p[22] = r->target;
    p[23] = r->baseline_source;
    fl_migration_up_checksum(sum, m);
    fl_migration_hex(out->up_sum, sum);
    fl_migration_down_checksum(sum, m->down);
    fl_migration_hex(out->down_sum, sum);
    p[24] = out->up_sum;
    p[25] = out->down_sum;
    out->step.name = "flotilla_ledger_record";
    out->step.sql = s_record_sql;
    out->step.nparams = 26;
    out->step.params = out->params;
    out->step.out = NULL;
}

int
fl_ledger_record(fl_pg_t *pg, const fl_ledger_record_t *r, fl_error_t *err)
{
    fl_ledger_step_t st;
    fl_pg_result_t res = FL_PG_RESULT_INIT;
    int rc;

    fl_ledger_record_step(&st, r);
    rc = fl_pg_query_prepared(pg, &res, st.step.name, st.step.sql,
                              st.step.nparams, st.params, err);
    fl_pg_result_release(&res);
    return rc;
}

/* ---- repeatable migrations ---- */

int
fl_ledger_load_repeatables(fl_pg_t *pg, const char *target,
                           fl_ledger_repeatables_t *out, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[1] = {target};
    char *v = NULL;
    int rc;

    out->items = NULL;
    out->count = 0;
    if ((rc = fl_ledger_exists(pg, err)) <= 0)
        return rc;
    rc = fl_pg_query_value(pg, &v, "SELECT pg_catalog.to_regclass("
                           "'flotilla.repeatable_migrations') IS NOT NULL",
                           0, NULL, err);
    if (rc != 0 || v == NULL || strcmp(v, "t") != 0) {
        free(v);
        return rc; /* a ledger older than version 8: none recorded */
    }
    free(v);
    rc = fl_pg_query(pg, &r,
        "SELECT name, file, checksum, status, runs, "
        FL_PG_TIME_TEXT("finished_at") ","
        " baseline_source, rerun_reason, error_message"
        " FROM flotilla.repeatable_migrations WHERE target"
        " OPERATOR(pg_catalog.=) $1 ORDER BY name COLLATE \"C\"", 1, params,
        err);
    if (rc != 0)
        return rc;
    if (r.nrows > 0)
        out->items = fl_calloc(r.nrows, sizeof(*out->items));
    for (size_t i = 0; i < r.nrows; i++) {
        fl_ledger_repeatable_t *x = &out->items[i];
        x->name = fl_strdup_or_null(fl_pg_value(&r, i, 0));
        x->file = fl_strdup_or_null(fl_pg_value(&r, i, 1));
        x->checksum = fl_strdup_or_null(fl_pg_value(&r, i, 2));
        x->status = fl_strdup_or_null(fl_pg_value(&r, i, 3));
        x->runs = (int)strtol(fl_pg_value(&r, i, 4), NULL, 10);
        x->finished_at = fl_strdup_or_null(fl_pg_value(&r, i, 5));
        x->baseline_source = fl_strdup_or_null(fl_pg_value(&r, i, 6));
        x->rerun_reason = fl_strdup_or_null(fl_pg_value(&r, i, 7));
        x->error_message = fl_strdup_or_null(fl_pg_value(&r, i, 8));
    }
    out->count = r.nrows;
    fl_pg_result_release(&r);
    return 0;
}

void
fl_ledger_repeatables_release(fl_ledger_repeatables_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++) {
        fl_ledger_repeatable_t *x = &l->items[i];
        free(x->name);
        free(x->file);
        free(x->checksum);
        free(x->status);
        free(x->finished_at);
        free(x->baseline_source);
        free(x->rerun_reason);
        free(x->error_message);
    }
    fl_free(&l->items);
    l->count = 0;
}

const fl_ledger_repeatable_t *
fl_ledger_find_repeatable(const fl_ledger_repeatables_t *l, const char *name)
{
    for (size_t i = 0; l != NULL && i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

const char *
fl_ledger_repeatable_state(const fl_ledger_repeatable_t *row,
                           const fl_migration_t *m)
{
    if (row == NULL)
        return "new";
    if (strcmp(row->status, "applied") != 0) /* static, not the row's */
        return strcmp(row->status, "failed") == 0 ? "failed" : "running";
    if (row->checksum == NULL)
        return "needs a run";
    return strcmp(row->checksum, m->checksum_hex) == 0 ? "up to date"
                                                       : "changed";
}

int
fl_ledger_repeatables_forget(fl_pg_t *pg, const char *target,
                             const char *reason, int *count, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[2] = {target, reason};
    int rc;

    if (count)
        *count = 0;
    rc = fl_pg_query(pg, &r,
        "WITH u AS (UPDATE flotilla.repeatable_migrations SET checksum = NULL,"
        " rerun_reason = $2 WHERE target OPERATOR(pg_catalog.=) $1"
        " AND (checksum IS NOT NULL OR rerun_reason IS NULL) RETURNING 1)"
        " SELECT pg_catalog.count(*) FROM u", 2, params, err);
    if (rc == 0 && count && r.nrows == 1)
        *count = (int)strtol(fl_pg_value(&r, 0, 0), NULL, 10);
    fl_pg_result_release(&r);
    return rc;
}
