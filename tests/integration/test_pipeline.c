/*
 * Integration tests of the single-database pipeline through the real
 * `flotilla` executable against the throwaway PostgreSQL of tests/run.sh.
 * Every test makes its own database and inspects it afterwards: the
 * schema and rows (canonical dump), the ledger, and the logs.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/buf.h"
#include "testsupport.h"

typedef struct {
    fl_test_db_t db;
    PGconn *conn;
    char *dir;  /* scratch directory: migrations in dir/m, log in dir */
    char *mdir;
    char *log;
    char *dbarg;
} s_env;

static int
s_setup(void **state)
{
    s_env *e = fl_calloc(1, sizeof(*e));

    fl_test_db_create(&e->db, "pipe");
    e->conn = fl_test_db_connect(&e->db);
    e->dir = fl_test_tmpdir();
    e->mdir = fl_asprintf("%s/m", e->dir);
    e->log = fl_asprintf("%s/migration-execution.log", e->dir);
    e->dbarg = fl_strdup(e->db.conninfo);
    if (mkdir(e->mdir, 0755) != 0)
        fail_msg("mkdir %s", e->mdir);
    fl_test_exec(e->conn,
        "CREATE TABLE users (id int PRIMARY KEY, email text, name text NOT NULL,"
        " legacy text DEFAULT 'none' NOT NULL, n int);"
        "INSERT INTO users SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE"
        " 'u' || g || '@example.com' END, 'name ' || g, 'legacy ' || g, g"
        " FROM generate_series(1, 200) g;"
        "CREATE INDEX users_legacy_idx ON users (legacy);"
        "ALTER TABLE users ADD CONSTRAINT users_legacy_chk CHECK (legacy <> '');"
        "CREATE VIEW user_emails AS SELECT id, email FROM users;");
    *state = e;
    return 0;
}

static int
s_teardown(void **state)
{
    s_env *e = *state;

    PQfinish(e->conn);
    fl_test_db_drop(&e->db);
    fl_test_rmtree(e->dir);
    free(e->dir);
    free(e->mdir);
    free(e->log);
    free(e->dbarg);
    free(e);
    return 0;
}

static void
s_write(s_env *e, const char *file, const char *text)
{
    char *p = fl_asprintf("%s/%s", e->mdir, file);
    fl_test_write_file(p, text);
    free(p);
}

/* Runs flotilla CMD --db ... --log-file ... [args] [SOURCE]. */
static void
s_run(s_env *e, fl_test_proc_t *r, const char *cmd, int with_source, ...)
{
    const char *argv[32];
    int n = 0;
    va_list ap;
    const char *a;

    argv[n++] = "flotilla";
    argv[n++] = cmd;
    argv[n++] = "--db";
    argv[n++] = e->dbarg;
    if (strcmp(cmd, "apply") == 0 || strcmp(cmd, "rollback") == 0) {
        argv[n++] = "--log-file";
        argv[n++] = e->log;
    }
    va_start(ap, with_source);
    while ((a = va_arg(ap, const char *)) != NULL && n < 29)
        argv[n++] = a;
    va_end(ap);
    /* rollback takes its down sections from the source that was applied. */
    if (with_source || strcmp(cmd, "rollback") == 0)
        argv[n++] = e->mdir;
    argv[n] = NULL;
    fl_test_run(r, "flotilla", argv, NULL, 120);
}

static char *
s_value(s_env *e, const char *sql)
{
    return fl_test_query_value(e->conn, sql);
}

static void
s_assert_value(s_env *e, const char *sql, const char *expected)
{
    fl_test_expect_value(e->conn, sql, expected);
}

static void
s_expect(fl_test_proc_t *r, int status, const char *needle)
{
    if (r->status != status || (needle && !strstr(r->out, needle) &&
                                !strstr(r->err, needle)))
        fail_msg("expected exit %d%s%s%s, got %d\nstdout: %s\nstderr: %s",
                 status, needle ? " and \"" : "", needle ? needle : "",
                 needle ? "\"" : "", r->status, r->out, r->err);
}

/* The old framework's patterns. */

static void
test_add_column_is_idempotent_when_it_exists(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    fl_test_exec(e->conn, "ALTER TABLE users ADD COLUMN verified boolean "
                          "NOT NULL DEFAULT false");
    s_write(e, "0001_add_verified.sql",
            "-- flotilla:up\n"
            "ALTER TABLE users ADD COLUMN IF NOT EXISTS verified boolean NOT NULL DEFAULT false;\n"
            "-- flotilla:down\n"
            "ALTER TABLE users DROP COLUMN verified;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations WHERE version = '1'",
                   "applied");
    s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass"
                      " AND attname = 'verified'", "1");
    s_assert_value(e, "SELECT schema_fingerprint ~ '^[0-9a-f]{64}$' FROM"
                      " flotilla.schema_migrations", "t");
    /* Applying again changes nothing and says so. */
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 0 migrations");
    assert_non_null(strstr(r.out, "1 already applied"));
    fl_test_proc_release(&r);
}

static void
test_rename_via_add_copy_drop_and_rollback(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *before = fl_test_canonical_dump(e->conn);
    char *after = NULL;

    s_write(e, "0001_add_full_name.sql",
            "-- flotilla:up\n"
            "ALTER TABLE users ADD COLUMN full_name text;\n"
            "UPDATE users SET full_name = name WHERE name IS NOT NULL;\n"
            "-- flotilla:down\n"
            "ALTER TABLE users DROP COLUMN full_name;\n");
    s_write(e, "0002_drop_name.sql",
            "-- flotilla:options allow=ban-drop-column the app reads full_name since 0001\n"
            "-- flotilla:up\n"
            "ALTER TABLE users DROP COLUMN name;\n"
            "-- flotilla:down\n"
            "ALTER TABLE users ADD COLUMN name text NOT NULL DEFAULT '';\n"
            "ALTER TABLE users ALTER COLUMN name DROP DEFAULT;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 2 migrations");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT full_name FROM users WHERE id = 7", "name 7");
    s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass"
                      " AND attname = 'name' AND NOT attisdropped", "0");
    s_run(e, &r, "rollback", 0, "--to", "0", NULL);
    s_expect(&r, 0, "rolled back 2 migrations");
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void
test_transform_then_set_not_null(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_status.sql",
            "-- flotilla:options allow=adding-not-nullable-field small table, filled above\n"
            "-- flotilla:up\n"
            "ALTER TABLE users ADD COLUMN status varchar(20);\n"
            "UPDATE users SET status = CASE WHEN n % 2 = 0 THEN 'active' ELSE 'inactive' END;\n"
            "ALTER TABLE users ALTER COLUMN status SET NOT NULL;\n"
            "-- flotilla:down\n"
            "ALTER TABLE users DROP COLUMN status;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM users WHERE status = 'active'", "100");
    s_assert_value(e, "SELECT attnotnull::text FROM pg_attribute WHERE attrelid ="
                      " 'users'::regclass AND attname = 'status'", "true");
}

static void
test_validation_refuses_null_emails_with_count_and_changes_nothing(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *before = fl_test_canonical_dump(e->conn);
    char *after = NULL;

    /* The migration's own validate statement. */
    s_write(e, "0001_email_required.sql",
            "-- flotilla:options allow=adding-not-nullable-field small table\n"
            "-- flotilla:validate\n"
            "SELECT count(*) = 0 FROM users WHERE email IS NULL;\n"
            "-- flotilla:up\n"
            "ALTER TABLE users ADD COLUMN touched int;\n"
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
            "-- flotilla:down\n"
            "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;\n"
            "ALTER TABLE users DROP COLUMN touched;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "validate statement at 0001_email_required.sql:3:1 did not hold");
    fl_test_proc_release(&r);
    /* Without it, the built-in NOT NULL check counts the NULLs. */
    s_write(e, "0001_email_required.sql",
            "-- flotilla:options allow=adding-not-nullable-field small table\n"
            "-- flotilla:up\n"
            "ALTER TABLE users ADD COLUMN touched int;\n"
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
            "-- flotilla:down\n"
            "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;\n"
            "ALTER TABLE users DROP COLUMN touched;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "20 rows of \"users\" are NULL in column \"email\"");
    assert_non_null(strstr(r.err, "Sample: ("));
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations WHERE status = 'applied'", "0");
    s_assert_value(e, "SELECT count(*) > 0 FROM flotilla.migration_logs WHERE status = 'refused'", "t");
    free(before);
    free(after);
}

static void
test_drop_column_rollback_restores_schema_and_data(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *before = fl_test_canonical_dump(e->conn);
    char *after = NULL;

    s_write(e, "0001_drop_legacy.sql",
            "-- flotilla:options allow=ban-drop-column no reader left\n"
            "-- flotilla:options allow=require-concurrent-index-creation down"
            " puts back the index up dropped\n"
            "-- flotilla:options allow=constraint-missing-not-valid and the"
            " check\n"
            "-- flotilla:up\n"
            "ALTER TABLE users DROP COLUMN legacy;\n"
            "-- flotilla:down\n"
            "ALTER TABLE users ADD COLUMN legacy text DEFAULT 'none' NOT NULL;\n"
            "CREATE INDEX users_legacy_idx ON users (legacy);\n"
            "ALTER TABLE users ADD CONSTRAINT users_legacy_chk CHECK (legacy <> '');\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass"
                      " AND attname = 'legacy' AND NOT attisdropped", "0");
    s_assert_value(e, "SELECT row_count::text FROM flotilla.backups", "200");
    s_run(e, &r, "rollback", 0, "--last", NULL);
    s_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    s_assert_value(e, "SELECT legacy FROM users WHERE id = 42", "legacy 42");
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations", "rolled_back");
    s_assert_value(e, "SELECT restored_at IS NOT NULL FROM flotilla.backups", "t");
    free(before);
    free(after);
}

static void
test_update_rollback_restores_old_values(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *before = fl_test_canonical_dump(e->conn);
    char *after = NULL;

    s_write(e, "0001_normalize.sql",
            "-- flotilla:up\n"
            "UPDATE users SET email = lower(replace(email, 'u', 'user-')), n = n * 10;\n"
            "-- flotilla:down\n"
            "SELECT 1;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT email || ' ' || n FROM users WHERE id = 3",
                   "user-3@example.com 30");
    s_run(e, &r, "rollback", 0, "--last", NULL);
    s_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* Division by zero unless this session holds no lock on a spare_ sequence. */
#define S_NO_SPARE_LOCK                                                     \
    " 1 / (SELECT (count(*) = 0)::int FROM pg_locks l"                      \
    " JOIN pg_class c ON c.oid = l.relation WHERE l.pid = pg_backend_pid()" \
    " AND c.relname LIKE 'spare%')"

/*
 * The net reads where every sequence stood before a migration, and where
 * the ones it used stand after; reading a position locks the sequence
 * until the end of the transaction.  Read inside the migration's, that
 * was a lock on every sequence of the schema for the whole migration
 * (30,000 sequences: "out of shared memory", the migration refused, and
 * the server's lock table, which every other session shares, full).  A
 * migration holds no lock on a sequence it does not use: checked by the
 * migration itself while it runs, and by a trigger deferred to its
 * COMMIT, after flotilla's last statement; the sequence it used (made
 * after 1,100 others: its position is read in the second transaction of
 * 1,000) is still seen advanced.  The same of plan's rehearsal, which
 * puts back the position of the sequence it used.
 */
static void
test_apply_locks_no_sequence_the_migration_does_not_use(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    fl_test_exec(e->conn,
        "DO $$ BEGIN FOR i IN 1..1100 LOOP"
        " EXECUTE format('CREATE SEQUENCE spare_%s', i); END LOOP; END $$;"
        "CREATE SEQUENCE used; SELECT nextval('used');"
        "CREATE TABLE counted (id bigint DEFAULT nextval('used'));");
    s_write(e, "0001_probe.sql",
            "-- flotilla:up\n"
            "CREATE TABLE probe (id int);\n"
            "CREATE FUNCTION probe_locks() RETURNS trigger LANGUAGE plpgsql"
            " AS $$BEGIN PERFORM" S_NO_SPARE_LOCK "; RETURN NULL; END$$;\n"
            "CREATE CONSTRAINT TRIGGER probe_at_commit AFTER INSERT ON probe"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
            " EXECUTE FUNCTION probe_locks();\n"
            "INSERT INTO probe VALUES (1);\n"
            "SELECT" S_NO_SPARE_LOCK ";\n"
            "INSERT INTO counted DEFAULT VALUES;\n"
            "-- flotilla:down\n"
            "DROP TABLE probe;\nDROP FUNCTION probe_locks();\n"
            "DELETE FROM counted;\n");
    /* The rehearsal the same, and what it drew from used is put back. */
    s_run(e, &r, "plan", 1, "--allow-lint-errors", "--json", NULL);
    s_expect(&r, 0, "\"put_back\": true");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT last_value FROM used", "1");
    s_run(e, &r, "apply", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(seq_name || ' ' || reason || ' '"
                      " || last_value || ' -> ' || after_value, ', ')"
                      " FROM flotilla.sequence_backups",
                   "used advanced 1 -> 2");
}

/*
 * The net skips reading positions when the census at the last COMMIT
 * found no sequence: one made by dynamic SQL in the migration before
 * must still have its position read, and its use recorded.
 */
static void
test_net_reads_a_sequence_the_migration_before_made(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_make.sql", "-- flotilla:up\n"
            "DO $$BEGIN EXECUTE 'CREATE SEQUENCE dyn';"
            " PERFORM nextval('dyn'); END$$;\n"
            "-- flotilla:down\nDROP SEQUENCE dyn;\n");
    s_write(e, "0002_use.sql", "-- flotilla:up\n"
            "SELECT nextval('dyn');\n"
            "-- flotilla:down\nSELECT 1;\n");
    s_run(e, &r, "apply", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 0, "applied 2 migrations");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(version || ' ' || seq_name || ' '"
                      " || reason || ' ' || last_value || ' -> '"
                      " || after_value, ', ') FROM flotilla.sequence_backups",
                   "2 dyn advanced 1 -> 2");
}

static void
test_plan_changes_nothing(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *before = NULL, *after = NULL, *lb = NULL, *la = NULL;
    const char *ledger = "SELECT coalesce(string_agg(s::text, ';' ORDER BY version_order), '')"
                         " FROM flotilla.schema_migrations s";

    s_write(e, "0001_a.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN a int;\n"
                             "-- flotilla:down\nALTER TABLE users DROP COLUMN a;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_write(e, "0002_b.sql",
            "-- flotilla:options allow=ban-drop-column no reader left\n"
            "-- flotilla:up\n"
            "ALTER TABLE users DROP COLUMN legacy;\n"
            "UPDATE users SET n = 0;\n"
            "CREATE TABLE audit (id bigint PRIMARY KEY);\n"
            "-- flotilla:down\nDROP TABLE audit;\n");
    before = fl_test_canonical_dump(e->conn);
    lb = s_value(e, ledger);
    s_assert_value(e, "SELECT count(*) FROM flotilla.migration_logs WHERE version = '2'", "0");
    s_run(e, &r, "plan", 1, NULL);
    s_expect(&r, 0, "OK, apply would go ahead: 1 migration pending");
    assert_non_null(strstr(r.out, "lock ACCESS EXCLUSIVE on users"));
    assert_non_null(strstr(r.out, "backup of users before it runs"));
    assert_non_null(strstr(r.out, "rehearsal: ok"));
    fl_test_proc_release(&r);
    s_run(e, &r, "plan", 1, "--json", NULL);
    s_expect(&r, 0, "\"ok\": true");
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    la = s_value(e, ledger);
    assert_string_equal(before, after);
    assert_string_equal(lb, la);
    s_assert_value(e, "SELECT count(*) FROM flotilla.migration_logs WHERE version = '2'", "0");
    s_assert_value(e, "SELECT count(*) FROM flotilla.backups", "0");
    free(before);
    free(after);
    free(lb);
    free(la);
}

static void
test_create_index_concurrently_and_resume_after_failure(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    /* The expression fails for n = 50 while the index is built. */
    s_write(e, "0001_indexes.sql",
            "-- flotilla:options no-transaction\n"
            "-- flotilla:up\n"
            "CREATE INDEX CONCURRENTLY users_n_idx ON users (n);\n"
            "CREATE INDEX CONCURRENTLY users_inv_idx ON users ((100 / (n - 50)));\n"
            "-- flotilla:down\n"
            "DROP INDEX CONCURRENTLY users_inv_idx;\n"
            "DROP INDEX CONCURRENTLY users_n_idx;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "division by zero");
    assert_non_null(strstr(r.err, "0001_indexes.sql:4:"));
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status || ' ' || statements_done || '/' || statements_total"
                      " FROM flotilla.schema_migrations", "failed 1/2");
    s_assert_value(e, "SELECT indisvalid::text FROM pg_index WHERE indexrelid ="
                      " 'users_inv_idx'::regclass", "false");
    s_assert_value(e, "SELECT indisvalid::text FROM pg_index WHERE indexrelid ="
                      " 'users_n_idx'::regclass", "true");
    fl_test_exec(e->conn, "DELETE FROM users WHERE n = 50");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    assert_non_null(strstr(r.err, "dropped invalid index"));
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT indisvalid::text FROM pg_index WHERE indexrelid ="
                      " 'users_inv_idx'::regclass", "true");
    s_assert_value(e, "SELECT status || ' ' || statements_done || '/' || statements_total"
                      " FROM flotilla.schema_migrations", "applied 2/2");
}

static void
test_lock_timeout_retries_reports_blocker_then_succeeds(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    PGconn *blocker = fl_test_db_connect(&e->db);
    char *pid = fl_test_query_value(blocker, "SELECT pg_backend_pid()");
    char *needle = fl_asprintf("PID %s", pid);

    s_write(e, "0001_add.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN c int;\n"
                               "-- flotilla:down\nALTER TABLE users DROP COLUMN c;\n");
    fl_test_exec(blocker, "BEGIN; SELECT count(*) FROM users");
    s_run(e, &r, "apply", 1, "--lock-timeout", "100ms", "--lock-retries", "2", NULL);
    s_expect(&r, 5, "canceling statement due to lock timeout");
    assert_non_null(strstr(r.err, needle));
    assert_non_null(strstr(r.err, "Gave up after 3 attempts"));
    assert_non_null(strstr(r.err, "attempt 2 of 3"));
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass"
                      " AND attname = 'c'", "0");
    s_assert_value(e, "SELECT status || ' ' || retries FROM flotilla.schema_migrations",
                   "failed 2");
    s_assert_value(e, "SELECT error_sqlstate FROM flotilla.schema_migrations", "55P03");
    fl_test_exec(blocker, "COMMIT");
    s_run(e, &r, "apply", 1, "--lock-timeout", "100ms", NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations", "applied");
    PQfinish(blocker);
    free(pid);
    free(needle);
}

static void s_wait_for(s_env *e, const char *sql, int seconds);
static void s_expect_spawned(const char *out, int st, int status,
                             const char *needle);

/*
 * Starts `flotilla cmd` (apply or rollback) against e in the background
 * with a 100 ms lock timeout and 8 retries, output to out, waits until
 * it waits for a lock (behind the caller's blocker), then reads the
 * table side 40 times over 2 s with a 50 ms lock timeout of its own;
 * returns the child's pid, and in *readable how many reads succeeded.
 * The reads start only once the child is blocked, so that they measure
 * its waits, not its start: a child that held side's lock while it
 * waits to retry fails nearly every read (side is free only while it
 * opens each new attempt), one that does not succeeds in most (side is
 * locked only during each attempt's 100 ms).  The callers ask for 10 of
 * 40, not the 21 they asked before: under load each attempt holds its
 * locks for longer, and one run under load failed the test.
 */
static pid_t
s_spawn_and_read_side(s_env *e, const char *cmd, const char *out,
                      PGconn *reader, int *readable)
{
    pid_t pid = fork();

    if (pid == 0) {
        char *bin = fl_asprintf("%s/flotilla", getenv("FLOTILLA_BIN_DIR"));
        int rb = strcmp(cmd, "rollback") == 0;
        if (freopen(out, "w", stdout) == NULL || freopen(out, "a", stderr) == NULL)
            _exit(126);
        execl(bin, "flotilla", cmd, "--db", e->dbarg, "--log-file", e->log,
              "--lock-timeout", "100ms", "--lock-retries", "8",
              rb ? "--last" : e->mdir, rb ? e->mdir : (char *)NULL,
              (char *)NULL);
        _exit(127);
    }
    *readable = 0;
    for (int i = 0;; i++) {
        PGresult *r = PQexec(reader,
            "SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks l"
            " JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
            " WHERE NOT l.granted AND a.datname = pg_catalog.current_database()");
        int waiting = PQresultStatus(r) == PGRES_TUPLES_OK &&
                      strcmp(PQgetvalue(r, 0, 0), "0") != 0;
        PQclear(r);
        if (waiting)
            break;
        if (i == 600 || waitpid(pid, NULL, WNOHANG) == pid)
            fail_msg("flotilla %s never waited for the blocker's lock", cmd);
        usleep(50000);
    }
    fl_test_exec(reader, "SET lock_timeout = '50ms'");
    for (int i = 0; i < 40; i++) {
        PGresult *r = PQexec(reader, "SELECT count(*) FROM side");
        *readable += PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        usleep(50000);
    }
    return pid;
}

/*
 * While a transactional migration waits to retry a lock timeout it holds
 * no lock: a table an earlier statement altered stays readable.  With
 * prepares, the migration PREPAREs first, and its retry PREPAREs again.
 */
static void
s_lock_retry(s_env *e, int prepares)
{
    PGconn *blocker = fl_test_db_connect(&e->db);
    PGconn *reader = fl_test_db_connect(&e->db);
    char *out = fl_asprintf("%s/r.out", e->dir);
    char *text = fl_asprintf(
        "-- flotilla:up\n%sALTER TABLE side ADD COLUMN x int;\n"
        "ALTER TABLE users ADD COLUMN c int;\n"
        "-- flotilla:down\nALTER TABLE users DROP COLUMN c;\n"
        "ALTER TABLE side DROP COLUMN x;\n",
        prepares ? "PREPARE q AS SELECT 1;\nEXECUTE q;\n" : "");
    int readable = 0, st = 0;
    pid_t pid;

    fl_test_exec(e->conn, "CREATE TABLE side (id int)");
    s_write(e, "0001_two.sql", text);
    free(text);
    fl_test_exec(blocker, "BEGIN; SELECT count(*) FROM users");
    pid = s_spawn_and_read_side(e, "apply", out, reader, &readable);
    assert_true(readable >= 10);
    fl_test_exec(blocker, "COMMIT");
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 0);
    s_assert_value(e, "SELECT status || ' ' || (retries > 0) FROM flotilla.schema_migrations",
                   "applied true");
    PQfinish(blocker);
    PQfinish(reader);
    free(out);
}

static void
test_lock_retry_waits_without_holding_locks(void **state)
{
    s_lock_retry(*state, 0);
}

/*
 * A migration that PREPAREs, run again after a lock timeout, runs its
 * PREPARE again: the statement outlived the rollback of the attempt
 * before, and the retry failed with "already exists".
 */
static void
test_lock_retry_of_a_migration_that_prepares(void **state)
{
    s_lock_retry(*state, 1);
}

/*
 * The same for a rollback: while a transactional down waits to retry a
 * lock timeout it holds no lock, so a table an earlier down statement
 * altered stays readable, and the wait is not idle in a transaction (the
 * database's idle_in_transaction_session_timeout, shorter than the waits,
 * would end the session).  Before, each down statement retried behind a
 * savepoint in the open transaction: the side table was locked for the
 * whole wait and the session was terminated.  A down with a statement
 * that cannot run in a transaction runs each of the others in a
 * transaction of its own, which waits the same way (before, it too was
 * terminated, and the rollback stopped half done).
 */
static void
s_rollback_lock_retry(s_env *e, int notx, int prepares)
{
    PGconn *blocker = fl_test_db_connect(&e->db);
    PGconn *reader = fl_test_db_connect(&e->db);
    char *out = fl_asprintf("%s/r.out", e->dir);
    char *idle = fl_asprintf("ALTER DATABASE %s SET "
                             "idle_in_transaction_session_timeout = '250ms'",
                             e->db.name);
    char *text = fl_asprintf(
        "%s-- flotilla:up\nALTER TABLE side ADD COLUMN x int;\n"
        "ALTER TABLE users ADD COLUMN c int;\n%s"
        "-- flotilla:down\n%sALTER TABLE side DROP COLUMN x;\n%s"
        "ALTER TABLE users DROP COLUMN c;\n",
        notx ? "-- flotilla:options no-transaction\n" : "",
        notx ? "CREATE INDEX CONCURRENTLY side_id ON side (id);\n" : "",
        prepares ? "PREPARE q AS SELECT 1;\nEXECUTE q;\n" : "",
        notx ? "DROP INDEX CONCURRENTLY side_id;\n" : "");
    fl_test_proc_t r;
    int readable = 0, st = 0;
    pid_t pid;

    fl_test_exec(e->conn, "CREATE TABLE side (id int)");
    s_write(e, "0001_two.sql", text);
    s_run(e, &r, "apply", 1, NULL);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_test_exec(e->conn, idle);
    fl_test_exec(blocker, "BEGIN; SELECT count(*) FROM users");
    pid = s_spawn_and_read_side(e, "rollback", out, reader, &readable);
    fl_test_exec(blocker, "COMMIT");
    waitpid(pid, &st, 0);
    s_expect_spawned(out, st, 0, "rolled back");
    assert_true(readable >= 10);
    s_assert_value(e, "SELECT count(*) FROM information_schema.columns WHERE"
                      " (table_name, column_name) IN (('side', 'x'),"
                      " ('users', 'c'))", "0");
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations",
                   "rolled_back");
    PQfinish(blocker);
    PQfinish(reader);
    free(text);
    free(idle);
    free(out);
}

static void
test_rollback_lock_retry_waits_without_holding_locks(void **state)
{
    s_rollback_lock_retry(*state, 0, 0);
}

static void
test_rollback_lock_retry_of_a_no_transaction_down(void **state)
{
    s_rollback_lock_retry(*state, 1, 0);
}

/*
 * A down that PREPAREs, run again after a lock timeout, runs its PREPARE
 * again: the statement it prepared outlived the rollback of the attempt
 * before, and the retry failed with "already exists".
 */
static void
test_rollback_lock_retry_of_a_down_that_prepares(void **state)
{
    s_rollback_lock_retry(*state, 0, 1);
}

/* Starts flotilla apply in the background; returns its pid. */
static pid_t
s_spawn_apply(s_env *e, const char *lock_wait, const char *out)
{
    pid_t pid = fork();

    if (pid == 0) {
        char *bin = fl_asprintf("%s/flotilla", getenv("FLOTILLA_BIN_DIR"));
        if (freopen(out, "w", stdout) == NULL || freopen(out, "a", stderr) == NULL)
            _exit(126);
        execl(bin, "flotilla", "apply", "--db", e->dbarg, "--log-file", e->log,
              "--lock-wait", lock_wait, e->mdir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/*
 * Fails unless the apply s_spawn_apply started, whose wait status is st,
 * exited with status and wrote needle (NULL: anything) to out.
 */
static void
s_expect_spawned(const char *out, int st, int status, const char *needle)
{
    FILE *f = fopen(out, "r");
    char buf[8192];
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    buf[n] = '\0';
    if (f)
        fclose(f);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != status ||
        (needle && strstr(buf, needle) == NULL))
        fail_msg("expected exit %d saying \"%s\", got wait status %d: %s",
                 status, needle ? needle : "", st, buf);
}

static void
s_wait_for(s_env *e, const char *sql, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        char *v = s_value(e, sql);
        int ok = v && strcmp(v, "t") == 0;
        free(v);
        if (ok)
            return;
        usleep(50000);
    }
    fail_msg("timed out waiting for: %s", sql);
}

static void
test_two_applies_at_once_apply_once(void **state)
{
    s_env *e = *state;
    char *o1 = fl_asprintf("%s/a1.out", e->dir), *o2 = fl_asprintf("%s/a2.out", e->dir);
    int st1 = 0, st2 = 0;
    pid_t a, b;

    fl_test_exec(e->conn, "CREATE TABLE counter (k int)");
    s_write(e, "0001_slow.sql",
            "-- flotilla:up\n"
            "INSERT INTO counter VALUES (1);\n"
            "SELECT pg_sleep(1.5);\n"
            "-- flotilla:down\nDELETE FROM counter;\n");
    a = s_spawn_apply(e, "30s", o1);
    s_wait_for(e, "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE"
                  " 'SELECT pg_sleep(1.5)%' AND datname = current_database()",
               30);
    b = s_spawn_apply(e, "30s", o2);
    waitpid(a, &st1, 0);
    waitpid(b, &st2, 0);
    assert_int_equal(WEXITSTATUS(st1), 0);
    assert_int_equal(WEXITSTATUS(st2), 0);
    s_assert_value(e, "SELECT count(*) FROM counter", "1");
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations WHERE status = 'applied'", "1");
    /* With a short wait the second run stops cleanly instead. */
    s_write(e, "0002_slow.sql",
            "-- flotilla:up\n"
            "INSERT INTO counter VALUES (2);\n"
            "SELECT pg_sleep(2);\n"
            "-- flotilla:down\nDELETE FROM counter WHERE k = 2;\n");
    a = s_spawn_apply(e, "30s", o1);
    s_wait_for(e, "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE"
                  " 'SELECT pg_sleep(2)%' AND datname = current_database()",
               30);
    b = s_spawn_apply(e, "200ms", o2);
    waitpid(b, &st2, 0);
    waitpid(a, &st1, 0);
    assert_int_equal(WEXITSTATUS(st1), 0);
    /* The refusal names the session that holds the database. */
    s_expect_spawned(o2, st2, 5, "another flotilla run is migrating it");
    s_expect_spawned(o2, st2, 5, "Held by PID");
    s_assert_value(e, "SELECT count(*) FROM counter", "2");
    free(o1);
    free(o2);
}

static void
test_kill_9_mid_migration_applies_nothing_then_rerun_succeeds(void **state)
{
    s_env *e = *state;
    char *out = fl_asprintf("%s/k.out", e->dir);
    fl_test_proc_t r;
    int st = 0;
    pid_t a;

    s_write(e, "0001_slow.sql",
            "-- flotilla:up\n"
            "CREATE TABLE half_done (id int);\n"
            "ALTER TABLE users ADD COLUMN half int;\n"
            "SELECT pg_sleep(2);\n"
            "-- flotilla:down\nDROP TABLE half_done;\nALTER TABLE users DROP COLUMN half;\n");
    a = s_spawn_apply(e, "30s", out);
    s_wait_for(e, "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE"
                  " 'SELECT pg_sleep(2)%' AND datname = current_database()",
               30);
    kill(a, SIGKILL);
    waitpid(a, &st, 0);
    assert_true(WIFSIGNALED(st));
    /* The server aborts the transaction when it notices the client gone. */
    s_wait_for(e, "SELECT count(*) = 0 FROM pg_stat_activity WHERE"
                  " application_name = 'flotilla' AND datname ="
                  " current_database()", 30);
    s_assert_value(e, "SELECT to_regclass('half_done') IS NULL", "t");
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations", "0");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT to_regclass('half_done') IS NOT NULL", "t");
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations WHERE status = 'applied'", "1");
    free(out);
}

static void
test_drift_is_refused(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_a.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN a int;\n"
                             "-- flotilla:down\nALTER TABLE users DROP COLUMN a;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_write(e, "0001_a.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN a bigint;\n"
                             "-- flotilla:down\nALTER TABLE users DROP COLUMN a;\n");
    s_write(e, "0002_b.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN b int;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "drift: 1 applied migration changed since it was applied");
    assert_non_null(strstr(r.err, "0001_a.sql"));
    {
        /* status names the same two checksums as apply (those of what up
         * runs: a changed down is no drift); it named others before. */
        char applied[13] = "", source[13] = "";
        const char *at = strstr(r.err, "0001_a.sql (applied ");
        char *want = NULL;

        assert_non_null(at);
        assert_int_equal(sscanf(at, "0001_a.sql (applied %12[0-9a-f], source "
                                "%12[0-9a-f]", applied, source), 2);
        fl_test_proc_release(&r);
        s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass"
                          " AND attname = 'b'", "0");
        s_run(e, &r, "status", 1, NULL);
        want = fl_asprintf("DRIFT: 0001_a.sql was applied with checksum %s; "
                           "the source now has %s", applied, source);
        s_expect(&r, 3, want);
        free(want);
    }
    fl_test_proc_release(&r);
}

static void
test_log_and_status_show_the_run(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    FILE *f = NULL;
    char line[4096];
    int lines = 0;

    s_write(e, "0001_a.sql", "-- flotilla:options allow=ban-drop-column no reader left\n"
                             "-- flotilla:up\nALTER TABLE users DROP COLUMN legacy;\n"
                             "-- flotilla:down\nALTER TABLE users ADD COLUMN legacy text;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_run(e, &r, "log", 0, "--json", NULL);
    s_expect(&r, 0, "\"step\": \"backup\"");
    assert_non_null(strstr(r.out, "\"step\": \"execute\""));
    fl_test_proc_release(&r);
    s_run(e, &r, "backups", 0, NULL);
    s_expect(&r, 2, "expected list or prune");
    fl_test_proc_release(&r);
    f = fopen(e->log, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        assert_int_equal(line[0], '{');
        lines++;
    }
    fclose(f);
    assert_true(lines >= 4);
}

static void
test_lint_error_refuses_unless_allowed(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *before = fl_test_canonical_dump(e->conn);
    char *after = NULL;

    s_write(e, "0001_index.sql",
            "-- flotilla:up\n"
            "ALTER TABLE users ADD COLUMN score int;\n"
            "CREATE INDEX users_score_idx ON users (score);\n"
            "-- flotilla:down\nALTER TABLE users DROP COLUMN score;\n");
    s_run(e, &r, "plan", 1, NULL);
    s_expect(&r, 3, "NOT OK, apply would stop");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "lint: 0001_index.sql:3:1: require-concurrent-index-creation");
    assert_non_null(strstr(r.err, "allow=require-concurrent-index-creation"));
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    s_write(e, "0001_index.sql",
            "-- flotilla:options allow=require-concurrent-index-creation the column is new and empty\n"
            "-- flotilla:up\n"
            "ALTER TABLE users ADD COLUMN score int;\n"
            "CREATE INDEX users_score_idx ON users (score);\n"
            "-- flotilla:down\nALTER TABLE users DROP COLUMN score;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT to_regclass('users_score_idx') IS NOT NULL", "t");
    free(before);
    free(after);
}

static void
test_locks_shows_blocker_and_waiter(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    PGconn *holder = fl_test_db_connect(&e->db);
    PGconn *waiter = fl_test_db_connect(&e->db);
    char *hpid = fl_test_query_value(holder, "SELECT pg_backend_pid()");
    char *wpid = fl_test_query_value(waiter, "SELECT pg_backend_pid()");
    char *needle = fl_asprintf("\"blocked_by\": [\n      %s\n    ]", hpid);

    fl_test_exec(holder, "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
    if (!PQsendQuery(waiter, "SELECT count(*) FROM users"))
        fail_msg("send: %s", PQerrorMessage(waiter));
    {
        char *sql = fl_asprintf("SELECT cardinality(pg_blocking_pids(%s)) > 0", wpid);
        s_wait_for(e, sql, 30);
        free(sql);
    }
    s_run(e, &r, "locks", 0, "--json", NULL);
    s_expect(&r, 0, needle);
    fl_test_proc_release(&r);
    s_run(e, &r, "locks", 0, NULL);
    s_expect(&r, 0, "blocker: PID");
    assert_non_null(strstr(r.out, "blocked: PID"));
    assert_non_null(strstr(r.out, "SELECT count(*) FROM users"));
    fl_test_proc_release(&r);
    fl_test_exec(holder, "COMMIT");
    for (PGresult *res; (res = PQgetResult(waiter)) != NULL;)
        PQclear(res);
    PQfinish(holder);
    PQfinish(waiter);
    free(hpid);
    free(wpid);
    free(needle);
}

/*
 * status and log of a schema target that is not there say so (exit 1),
 * as apply does, and take it once it exists.  Before, `status --schema`
 * with a typo said "0 migrations in the ledger" and every migration
 * pending (exit 0): as if nothing had ever been applied.
 */
static void
test_status_and_log_refuse_a_schema_that_is_not_there(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE a (id int);\n"
                             "-- flotilla:down\nDROP TABLE a;\n");
    s_run(e, &r, "status", 1, "--schema", "tenant_nosuch", NULL);
    s_expect(&r, 1, "schema \"tenant_nosuch\" does not exist");
    fl_test_proc_release(&r);
    s_run(e, &r, "log", 0, "--schema", "tenant_nosuch", NULL);
    s_expect(&r, 1, "schema \"tenant_nosuch\" does not exist");
    fl_test_proc_release(&r);
    /* backups too (before, list printed nothing and prune said "pruned
     * 0", exit 0: found by an audit of the docs). */
    s_run(e, &r, "backups", 0, "list", "--schema", "tenant_nosuch", NULL);
    s_expect(&r, 1, "schema \"tenant_nosuch\" does not exist");
    fl_test_proc_release(&r);
    s_run(e, &r, "backups", 0, "prune", "--leftovers", "--schema",
          "tenant_nosuch", NULL);
    s_expect(&r, 1, "schema \"tenant_nosuch\" does not exist");
    fl_test_proc_release(&r);
    fl_test_exec(e->conn, "CREATE SCHEMA tenant_nosuch");
    s_run(e, &r, "apply", 1, "--schema", "tenant_nosuch", NULL);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_run(e, &r, "status", 1, "--schema", "tenant_nosuch", NULL);
    s_expect(&r, 0, "0001");
    fl_test_proc_release(&r);
}

static void
test_new_scaffolds_next_version_and_backups_prune(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    const char *argv_new[] = {"flotilla", "new", e->mdir, "add_flags", NULL};
    const char *argv_bad[] = {"flotilla", "new", e->mdir, "Bad-Name", NULL};
    char *path = fl_asprintf("%s/0008_add_flags.sql", e->mdir);

    s_write(e, "0007_x.sql", "-- flotilla:options allow=ban-drop-column gone\n"
                             "-- flotilla:up\nALTER TABLE users DROP COLUMN legacy;\n"
                             "-- flotilla:down\nALTER TABLE users ADD COLUMN legacy text;\n");
    fl_test_run(&r, "flotilla", argv_new, NULL, 30);
    s_expect(&r, 0, path);
    fl_test_proc_release(&r);
    assert_int_equal(access(path, R_OK), 0);
    fl_test_run(&r, "flotilla", argv_bad, NULL, 30);
    s_expect(&r, 2, "invalid NAME");
    fl_test_proc_release(&r);
    /*
     * The scaffold is a valid migration whose up section is empty: refused,
     * after 0007 was applied in the same run (exit 1: something changed).
     */
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "0008_add_flags.sql: the up section holds no statement");
    s_expect(&r, 1, "1 migration applied before it stays applied");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "0008_add_flags.sql: the up section holds no statement");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations WHERE version = '7'", "applied");
    s_run(e, &r, "backups", 0, "prune", "--older-than", "1h", NULL);
    s_expect(&r, 0, "pruned 0 backups");
    fl_test_proc_release(&r);
    fl_test_exec(e->conn, "UPDATE flotilla.backups SET created_at = now() - interval '40 days'");
    s_run(e, &r, "backups", 0, "prune", "--older-than", "30d", NULL);
    s_expect(&r, 0, "pruned 1 backup");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_tables WHERE schemaname = 'flotilla_backup'", "0");
    /* Rolling back now would lose the data: refused, still applied. */
    s_run(e, &r, "rollback", 0, "--last", NULL);
    s_expect(&r, 1, "was pruned");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations WHERE version = '7'", "applied");
    s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass"
                      " AND attname = 'legacy' AND NOT attisdropped", "0");
    free(path);
}

static void
test_out_of_order_and_statement_timeout(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0002_b.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN b int;\n"
                             "-- flotilla:down\nALTER TABLE users DROP COLUMN b;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_write(e, "0001_a.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN a int;\n"
                             "-- flotilla:down\nALTER TABLE users DROP COLUMN a;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "migration 0001_a.sql is pending but a later version (2) is already applied");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, "--allow-out-of-order", NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    /* A statement timeout fails at once: it is not a lock wait to retry. */
    s_write(e, "0003_slow.sql",
            "-- flotilla:options statement_timeout=100ms\n"
            "-- flotilla:up\nALTER TABLE users ADD COLUMN c int;\nSELECT pg_sleep(2);\n"
            "-- flotilla:down\nALTER TABLE users DROP COLUMN c;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "canceling statement due to statement timeout");
    assert_non_null(strstr(r.err, "0003_slow.sql:4:1"));
    assert_non_null(strstr(r.err, "it is not retried"));
    assert_null(strstr(r.err, "retrying"));
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status || ' ' || retries || ' ' || error_sqlstate ||"
                      " ' ' || error_position FROM flotilla.schema_migrations"
                      " WHERE version = '3'", "failed 0 57014 0003_slow.sql:4:1");
    s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass"
                      " AND attname = 'c'", "0");
    s_run(e, &r, "log", 0, "--failed", NULL);
    s_expect(&r, 0, "0003_slow.sql failed and was rolled back");
    fl_test_proc_release(&r);
}

/*
 * A timeout a migration SETs governs its own statements, not flotilla's
 * bookkeeping after them: a migration whose last statement sets a 1 ms
 * statement_timeout (session level, or LOCAL) failed in its ledger row's
 * INSERT, "failed and was rolled back" although every statement of it
 * had run.  One that sets a timeout before a slow statement still fails
 * by it, and the next migration runs under its own timeouts.
 */
static void
test_a_timeout_a_migration_sets_governs_its_statements_only(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_a.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN a int;\n"
                             "SET statement_timeout = '1ms';\n"
                             "-- flotilla:down\nALTER TABLE users DROP COLUMN a;\n");
    s_write(e, "0002_b.sql", "-- flotilla:up\nALTER TABLE users ADD COLUMN b int;\n"
                             "SET LOCAL statement_timeout = '1ms';\n"
                             "SET lock_timeout = '1ms';\n"
                             "-- flotilla:down\nALTER TABLE users DROP COLUMN b;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 2 migrations");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(version || ' ' || status || ' ' ||"
                      " schema_recorded, ', ' ORDER BY version) FROM"
                      " flotilla.schema_migrations", "1 applied true, 2 applied true");
    s_write(e, "0003_c.sql", "-- flotilla:up\nSET statement_timeout = '200ms';\n"
                             "SELECT pg_sleep(3);\n"
                             "-- flotilla:down\nSELECT 1;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "0003_c.sql:3:1");
    s_expect(&r, 1, "canceling statement due to statement timeout");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations"
                      " WHERE version = '3'", "failed");
    s_run(e, &r, "rollback", 1, "--last", NULL);
    s_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
}

/*
 * In a no-transaction migration a session-level SET holds for the
 * statements after it, as under psql: each statement ran from the
 * connection's original settings, so after `SET search_path = app` a
 * table and two CONCURRENTLY indexes landed in public, on public's
 * table of the same name.  A run resumed after the SETs committed runs
 * them again before it goes on: the statements after the resume point
 * see what they would have seen in one run.  A down resumed the same.
 * A SELECT of set_config() calls alone (pg_dump's way to set
 * search_path) counts as a SET: before, it was not run again, and the
 * resumed statements ran under the connection's settings.
 */
static void
test_a_no_transaction_migration_keeps_its_settings(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    const char *seen = "SELECT string_agg(what || ' ' || sp || ' ' || st,"
                       " ', ' ORDER BY what) FROM public.seen";

    fl_test_exec(e->conn,
        "CREATE SCHEMA app;"
        "CREATE TABLE app.items (id int, v int);"
        "CREATE TABLE public.items (id int, v int);"
        "CREATE TABLE public.seen (what text, sp text, st text);"
        "CREATE TABLE public.gate (id int);");
    s_write(e, "0001_app.sql",
            "-- flotilla:options no-transaction\n"
            "-- flotilla:up\n"
            "SET search_path = app, public;\n"
            /* As pg_dump writes its search_path. */
            "SELECT pg_catalog.set_config('statement_timeout', '1h', false);\n"
            "CREATE TABLE made (id int);\n"
            "CREATE INDEX CONCURRENTLY ix ON items (v);\n"
            "INSERT INTO public.seen SELECT 'first',"
            " current_setting('search_path'),"
            " current_setting('statement_timeout');\n"
            "SELECT 1 / (SELECT count(*)::int FROM public.gate);\n"
            "INSERT INTO public.seen SELECT 'resumed',"
            " current_setting('search_path'),"
            " current_setting('statement_timeout');\n"
            "CREATE INDEX CONCURRENTLY ix2 ON items (id);\n"
            "-- flotilla:down\n"
            "SELECT pg_catalog.set_config('search_path', 'app, public',"
            " false);\n"
            "DROP INDEX CONCURRENTLY ix2;\n"
            "SELECT 1 / (SELECT count(*)::int - 1 FROM public.gate);\n"
            "DROP INDEX CONCURRENTLY ix;\n"
            "DROP TABLE made;\n");
    s_run(e, &r, "apply", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 1, "division by zero");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(schemaname || '.' || tablename || '.'"
                      " || indexname, ',' ORDER BY 1) FROM pg_indexes WHERE"
                      " indexname IN ('ix', 'ix2')", "app.items.ix");
    s_assert_value(e, "SELECT string_agg(relnamespace::regnamespace::text,"
                      " ',') FROM pg_class WHERE relname = 'made'", "app");
    s_assert_value(e, seen, "first app, public 1h");
    fl_test_exec(e->conn, "INSERT INTO public.gate VALUES (1)");
    s_run(e, &r, "apply", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, seen, "first app, public 1h, resumed app, public 1h");
    s_assert_value(e, "SELECT string_agg(schemaname || '.' || tablename || '.'"
                      " || indexname, ',' ORDER BY 1) FROM pg_indexes WHERE"
                      " indexname IN ('ix', 'ix2')",
                   "app.items.ix,app.items.ix2");
    /* Its down, the same way: stopped after its SET, then resumed. */
    s_run(e, &r, "rollback", 1, "--last", NULL);
    s_expect(&r, 1, "division by zero");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(relname, ',' ORDER BY relname) FROM"
                      " pg_class WHERE relname IN ('ix', 'ix2', 'made')",
                   "ix,made");
    fl_test_exec(e->conn, "INSERT INTO public.gate VALUES (2)");
    s_run(e, &r, "rollback", 1, "--last", NULL);
    s_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_class WHERE relname IN"
                      " ('ix', 'ix2', 'made')", "0");
}

/*
 * The application's roles of the role tests (cluster-wide, so made once
 * for every test database): fl_pipe_app, a member of fl_pipe_grp, both
 * allowed to create in public.
 */
static void
s_app_roles(s_env *e)
{
    fl_test_exec(e->conn,
        "DO $$ DECLARE r text; BEGIN"
        " FOREACH r IN ARRAY ARRAY['fl_pipe_app', 'fl_pipe_grp'] LOOP"
        "  BEGIN EXECUTE format('CREATE ROLE %I', r);"
        "  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;"
        " END LOOP; END $$;"
        "SET client_min_messages = warning;"
        "GRANT fl_pipe_grp TO fl_pipe_app;"
        "RESET client_min_messages;"
        "GRANT CREATE, USAGE ON SCHEMA public TO fl_pipe_app, fl_pipe_grp");
}

/*
 * A migration may SET ROLE so that what it creates belongs to the
 * application's role, as under psql: flotilla's own queries (its ledger
 * row, the net, the schema record) still run as the role it connected
 * as, the role holds for the migration's later statements (in one
 * transaction or one by one), and it does not leak into the next
 * migration.  Flotilla wrote its ledger row as the migration's role, so
 * the migration failed with "permission denied for schema flotilla".
 */
static void
test_a_migration_may_set_its_role(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    const char *owners = "SELECT string_agg(relname || ' ' || CASE relowner"
                         " WHEN 'fl_pipe_app'::regrole THEN 'app' ELSE"
                         " 'flotilla' END, ', ' ORDER BY relname) FROM pg_class"
                         " WHERE relname IN ('one', 'two', 'three', 'four')";

    s_app_roles(e);
    s_write(e, "0001_one.sql", "-- flotilla:up\nSET ROLE fl_pipe_app;\n"
                               "CREATE TABLE one (id int);\n"
                               "-- flotilla:down\nDROP TABLE one;\n");
    s_write(e, "0002_two.sql", "-- flotilla:up\nCREATE TABLE two (id int);\n"
                               "-- flotilla:down\nDROP TABLE two;\n");
    s_write(e, "0003_three.sql", "-- flotilla:options no-transaction\n"
                                 "-- flotilla:up\nSET ROLE fl_pipe_app;\n"
                                 "CREATE TABLE three (id int);\n"
                                 "CREATE INDEX CONCURRENTLY three_id"
                                 " ON three (id);\n"
                                 "-- flotilla:down\nDROP TABLE three;\n");
    s_write(e, "0004_four.sql", "-- flotilla:up\nCREATE TABLE four (id int);\n"
                                "-- flotilla:down\nDROP TABLE four;\n");
    s_run(e, &r, "apply", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 0, "applied 4 migrations");
    fl_test_proc_release(&r);
    s_assert_value(e, owners, "four flotilla, one app, three app, two flotilla");
    s_run(e, &r, "rollback", 1, "--to", "0", NULL);
    s_expect(&r, 0, "rolled back 4 migrations");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_class WHERE relname IN"
                      " ('one', 'two', 'three', 'four')", "0");
    fl_test_exec(e->conn, "DROP OWNED BY fl_pipe_app");
}

/*
 * The same with SET SESSION AUTHORIZATION (as pg_dump
 * --use-set-session-authorization writes it): the migration's later
 * statements run as that user, in one transaction or one by one, and
 * flotilla's own queries and the next migration as the user flotilla
 * connected as.  Before, flotilla wrote its ledger row as that user: the
 * migration failed with "permission denied for schema flotilla".
 */
static void
test_a_migration_may_set_its_session_authorization(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    const char *owners = "SELECT string_agg(relname || ' ' || CASE relowner"
                         " WHEN 'fl_pipe_app'::regrole THEN 'app'"
                         " WHEN 'fl_pipe_grp'::regrole THEN 'grp' ELSE"
                         " 'flotilla' END, ', ' ORDER BY relname) FROM pg_class"
                         " WHERE relname LIKE 'sa\\_%' AND relkind = 'r'";

    s_app_roles(e);
    s_write(e, "0001_one.sql", "-- flotilla:up\n"
            "SET SESSION AUTHORIZATION fl_pipe_app;\n"
            "CREATE TABLE sa_one (id int);\n"
            "CREATE TABLE sa_one_b (id int);\n"
            "-- flotilla:down\nDROP TABLE sa_one, sa_one_b;\n");
    s_write(e, "0002_two.sql", "-- flotilla:up\nCREATE TABLE sa_two (id int);\n"
            "-- flotilla:down\nDROP TABLE sa_two;\n");
    s_write(e, "0003_three.sql", "-- flotilla:options no-transaction\n"
            "-- flotilla:up\nSET SESSION AUTHORIZATION fl_pipe_app;\n"
            "CREATE TABLE sa_three (id int);\n"
            "CREATE INDEX CONCURRENTLY sa_three_id ON sa_three (id);\n"
            "-- flotilla:down\nDROP TABLE sa_three;\n");
    s_write(e, "0004_four.sql", "-- flotilla:up\n"
            "SET SESSION AUTHORIZATION fl_pipe_app;\n"
            "SET ROLE fl_pipe_grp;\n"
            "CREATE TABLE sa_four (id int);\n"
            "RESET SESSION AUTHORIZATION;\n"
            "CREATE TABLE sa_five (id int);\n"
            "-- flotilla:down\nDROP TABLE sa_four, sa_five;\n");
    /* Rehearsed but the one without a transaction (NOT PROVEN, exit 3). */
    s_run(e, &r, "plan", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 3, "NOT PROVEN: 1 of 4 pending migrations not rehearsed");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 0, "applied 4 migrations");
    fl_test_proc_release(&r);
    s_assert_value(e, owners, "sa_five flotilla, sa_four grp, sa_one app,"
                              " sa_one_b app, sa_three app, sa_two flotilla");
    s_assert_value(e, "SELECT string_agg(version || ' ' || status, ','"
                      " ORDER BY version) FROM flotilla.schema_migrations",
                   "1 applied,2 applied,3 applied,4 applied");
    s_run(e, &r, "rollback", 1, "--to", "0", NULL);
    s_expect(&r, 0, "rolled back 4 migrations");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_class WHERE relname LIKE"
                      " 'sa\\_%'", "0");
    fl_test_exec(e->conn, "DROP OWNED BY fl_pipe_app, fl_pipe_grp");
}

/*
 * A migration that sets exit_on_error makes its first error end the
 * session: flotilla loses its connection mid-migration.  It fails closed
 * and says so: in a transaction nothing is applied, without one the
 * statements before stay applied and the ledger says how many.
 */
static void
test_exit_on_error_set_by_a_migration_fails_closed(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_eoe.sql", "-- flotilla:up\n"
            "CREATE TABLE eoe_a (id int);\n"
            "SET exit_on_error = on;\n"
            "SELECT 1 / 0;\n"
            "-- flotilla:down\nDROP TABLE eoe_a;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "lost the connection");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT (to_regclass('eoe_a') IS NULL)::text || ' ' ||"
                      " (SELECT count(*) FROM flotilla.schema_migrations)",
                   "true 0");
    s_write(e, "0001_eoe.sql", "-- flotilla:options no-transaction\n"
            "-- flotilla:up\n"
            "CREATE TABLE eoe_a (id int);\n"
            "SET exit_on_error = on;\n"
            "SELECT 1 / 0;\n"
            "-- flotilla:down\nDROP TABLE eoe_a;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "2 of 3 statements committed");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT (to_regclass('eoe_a') IS NOT NULL)::text || ' '"
                      " || status || ' ' || statements_done FROM"
                      " flotilla.schema_migrations", "true running 2");
}

/*
 * A migration that ends with SET default_transaction_read_only = on (the
 * database is to be read-only from then on) left flotilla's bookkeeping
 * after its COMMIT read-only too: the schema record and the log rows were
 * lost ("could not record the schema", "could not write 4 rows", exit 0),
 * and the rollback could not prove the schema.  Flotilla's own
 * transactions start under the connection's value; the migration's
 * statements keep theirs (one in a transaction, then one run alone).
 */
static void
test_a_read_only_default_a_migration_sets_leaves_flotillas_writes_alone(
    void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_ro.sql", "-- flotilla:up\n"
            "CREATE TABLE ro_a (id int PRIMARY KEY);\n"
            "SET default_transaction_read_only = on;\n"
            "-- flotilla:down\nDROP TABLE ro_a;\n");
    s_write(e, "0002_ro.sql", "-- flotilla:options no-transaction\n"
            "-- flotilla:up\n"
            "CREATE TABLE ro_b (id int PRIMARY KEY);\n"
            "SET default_transaction_read_only = on;\n"
            "-- flotilla:down\nDROP TABLE ro_b;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 2 migrations");
    if (strstr(r.err, "could not") || strstr(r.out, "not recorded"))
        fail_msg("flotilla's bookkeeping was lost:\n%s%s", r.out, r.err);
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(DISTINCT version) FROM"
                      " flotilla.migration_logs WHERE step = 'verify-after'",
                   "2");
    s_run(e, &r, "rollback", 1, "--to", "0", NULL);
    s_expect(&r, 0, "rolled back 2 migrations");
    if (strstr(r.err, "not proven"))
        fail_msg("the rollback could not prove the schema:\n%s", r.err);
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT (to_regclass('ro_a') IS NULL AND"
                      " to_regclass('ro_b') IS NULL)::text", "true");
}

/*
 * No setting a migration SETs leaks into the next, not only the ones
 * flotilla pins for its own queries: after one that set
 * session_replication_role = replica (to load rows without triggers),
 * the next ran with foreign keys unchecked and committed a row whose
 * parent does not exist, and plan's rehearsal said OK.  A down's
 * settings do not leak into the next down either.
 */
static void
test_no_setting_of_a_migration_leaks_into_the_next(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *want = fl_test_query_value(e->conn, "SELECT current_setting("
                                     "'work_mem') || ' ' || current_setting("
                                     "'session_replication_role')");

    fl_test_exec(e->conn,
        "CREATE TABLE parent (id int PRIMARY KEY);"
        "CREATE TABLE child (id int, p int REFERENCES parent);"
        "CREATE TABLE seen (what text, v text);"
        "INSERT INTO parent VALUES (1)");
    s_write(e, "0001_load.sql", "-- flotilla:up\n"
            "SET session_replication_role = replica;\n"
            "SET work_mem = '77kB';\n"
            "INSERT INTO child VALUES (1, 1);\n"
            "-- flotilla:down\n"
            "SET session_replication_role = replica;\n"
            "SET work_mem = '77kB';\n"
            "DELETE FROM child WHERE id = 1;\n");
    s_write(e, "0002_seen.sql", "-- flotilla:up\n"
            "INSERT INTO seen SELECT 'up', current_setting('work_mem') || ' '"
            " || current_setting('session_replication_role');\n"
            "-- flotilla:down\n"
            "INSERT INTO seen SELECT 'down', current_setting('work_mem') || ' '"
            " || current_setting('session_replication_role');\n");
    s_write(e, "0003_orphan.sql", "-- flotilla:up\n"
            "INSERT INTO child VALUES (2, 999);\n"
            "-- flotilla:down\nDELETE FROM child WHERE id = 2;\n");
    /* The plan's rehearsal says so too (it said "OK"). */
    s_run(e, &r, "plan", 1, NULL);
    s_expect(&r, 3, "violates foreign key constraint");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "violates foreign key constraint");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(id || ':' || p, ',') FROM child",
                   "1:1");
    {
        char *got = fl_asprintf("up %s", want);
        s_assert_value(e, "SELECT string_agg(what || ' ' || v, ',') FROM seen",
                       got);
        free(got);
    }
    /* Downs, newest first: 0002's runs after 0003's, before 0001's. */
    fl_test_exec(e->conn, "DELETE FROM seen");
    s_write(e, "0003_orphan.sql", "-- flotilla:up\n"
            "SET session_replication_role = replica;\n"
            "INSERT INTO child VALUES (2, 2);\n"
            "-- flotilla:down\n"
            "SET session_replication_role = replica;\n"
            "SET work_mem = '77kB';\n"
            "DELETE FROM child WHERE id = 2;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_run(e, &r, "rollback", 1, "--to", "1", NULL);
    s_expect(&r, 0, "rolled back 2 migrations");
    fl_test_proc_release(&r);
    {
        char *got = fl_asprintf("down %s", want);
        s_assert_value(e, "SELECT string_agg(what || ' ' || v, ',') FROM seen",
                       got);
        free(got);
    }
    free(want);
}

/*
 * What a migration leaves on the session besides its settings: temporary
 * tables and types (the temporary schema comes first in every search
 * path, for relations and types), SQL prepared statements, held cursors
 * and its sequences' currval.  A migration must do what it does when it
 * runs alone: the same whether the one before it ran in the same run or
 * in an earlier one.  Before, 0002 below failed with "relation staging
 * already exists" after 0001 in one run; without its temporary table
 * its INSERT went into 0001's temporary "items" and vanished with the
 * session while the ledger said applied.
 */
/* Temporary objects other than relations, types and routines. */
#define S_TEMP_OBJECTS                                                      \
    "CREATE COLLATION pg_temp.c1 FROM \"C\";\n"                             \
    "CREATE OPERATOR pg_temp.=== (LEFTARG = int, RIGHTARG = int,"           \
    " FUNCTION = int4eq);\n"                                                \
    "CREATE OPERATOR pg_temp.!!! (RIGHTARG = int, FUNCTION = int4abs);\n"   \
    "CREATE TEXT SEARCH CONFIGURATION pg_temp.ts1 (COPY = simple);\n"       \
    "CREATE TEXT SEARCH DICTIONARY pg_temp.d1 (TEMPLATE = simple);\n"       \
    "CREATE CONVERSION pg_temp.cv1 FOR 'LATIN1' TO 'UTF8'"                  \
    " FROM iso8859_1_to_utf8;\n"

static void
test_a_migration_leaves_no_session_state_to_the_next(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    fl_test_exec(e->conn,
        "CREATE TABLE items (id int PRIMARY KEY);"
        "CREATE TYPE mood AS ENUM ('ok', 'bad');"
        "CREATE TABLE seen (what text)");
    s_write(e, "0001_leave.sql", "-- flotilla:up\n"
            "CREATE TEMP TABLE items (id int);\n"
            "CREATE TEMP TABLE staging AS SELECT 1 AS id;\n"
            "CREATE TEMP VIEW staged AS SELECT id FROM staging;\n"
            "CREATE TYPE pg_temp.mood AS ENUM ('x');\n"
            "CREATE TYPE pg_temp.pair AS (a int, b int);\n"
            "CREATE FUNCTION pg_temp.one() RETURNS int LANGUAGE sql"
            " AS 'SELECT 1';\n"
            "PREPARE fetch_one AS SELECT 1;\n"
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1;\n"
            "CREATE SEQUENCE s;\n"
            "SELECT nextval('s');\n"
            "SELECT pg_advisory_lock(777), pg_advisory_lock(777),"
            " pg_advisory_lock_shared(1, 2), pg_advisory_lock(-5);\n"
            /*
             * Flotilla's class, another target's key (it would keep that
             * target's runs waiting), and this target's key again.
             */
            "SELECT pg_advisory_lock(1718578273, hashtext('another_db')"
            " & 2147483647), pg_advisory_lock_shared(1718578273, 5),"
            " pg_advisory_lock(1718578273, hashtext(current_database())"
            " & 2147483647);\n"
            S_TEMP_OBJECTS
            "-- flotilla:down\n"
            "CREATE TEMP TABLE staging AS SELECT 4 AS id;\n"
            "PREPARE fetch_one AS SELECT 4;\n"
            "DROP SEQUENCE s;\n");
    s_write(e, "0002_use.sql", "-- flotilla:up\n"
            "CREATE TEMP TABLE staging AS SELECT 2 AS id;\n"
            "CREATE TYPE pg_temp.pair AS (a int, b int);\n"
            "CREATE FUNCTION pg_temp.one() RETURNS int LANGUAGE sql"
            " AS 'SELECT 1';\n"
            "PREPARE fetch_one AS SELECT 2;\n"
            "DECLARE c CURSOR WITH HOLD FOR SELECT 2;\n"
            "INSERT INTO items VALUES (42);\n"
            S_TEMP_OBJECTS
            /*
             * Its advisory locks, taken twice, shared, a negative key, in
             * flotilla's class: none but the target's own lock.
             */
            "SELECT 1 / (SELECT (count(*) = 0)::int FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            " AND NOT (classid = 1718578273 AND objsubid = 2"
            " AND objid = (hashtext(current_database()) & 2147483647)));\n"
            "CREATE TABLE moods (m mood);\n"
            "INSERT INTO moods VALUES ('ok');\n"
            "-- flotilla:down\n"
            "CREATE TEMP TABLE staging AS SELECT 3 AS id;\n"
            "PREPARE fetch_one AS SELECT 3;\n"
            "DROP TABLE moods;\n"
            "DELETE FROM items WHERE id = 42;\n");
    s_write(e, "0003_currval.sql", "-- flotilla:up\n"
            "INSERT INTO seen SELECT 'currval ' || currval('s');\n"
            "-- flotilla:down\nDELETE FROM seen;\n");
    /* The rehearsal says what apply does. */
    s_run(e, &r, "plan", 1, NULL);
    s_expect(&r, 3, "currval of sequence \"s\" is not yet defined");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "currval of sequence \"s\" is not yet defined");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(version, ',' ORDER BY version)"
                      " FROM flotilla.schema_migrations"
                      " WHERE status = 'applied'", "1,2");
    s_assert_value(e, "SELECT string_agg(id::text, ',') FROM items", "42");
    s_assert_value(e, "SELECT pg_typeof(m)::text || ' ' || m FROM moods",
                   "mood ok");
    s_assert_value(e, "SELECT count(*) FROM seen", "0");
    /* Downs, newest first, in one run: 0001's as if alone. */
    s_write(e, "0003_currval.sql", "-- flotilla:up\nSELECT 1;\n"
            "-- flotilla:down\nSELECT 1;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_run(e, &r, "rollback", 1, "--to", "0", NULL);
    s_expect(&r, 0, "rolled back 3 migrations");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM items", "0");
    s_assert_value(e, "SELECT count(*) FROM pg_class WHERE relname"
                      " IN ('s', 'moods')", "0");
}

static void s_cli(fl_test_proc_t *r, const char *const *argv);

/*
 * Flotilla prepares its statements on the migration's connection; a
 * DEALLOCATE run by a DO block (which the linter cannot see into) removes
 * them, and flotilla's next statement fails.  Before, the run failed
 * with the server's bare "prepared statement ... does not exist"; now the
 * error says what did it, the migration is rolled back and recorded
 * failed, in a transaction and outside one, and the next apply runs.
 */
static void
test_a_migration_that_deallocates_flotillas_statements(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    static const char *const how[] = {"", "-- flotilla:options no-transaction\n"};

    for (size_t i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
        char *file = fl_asprintf("000%zu_gone.sql", i + 1);
        char *text = fl_asprintf("%s-- flotilla:up\n"
                                 "CREATE TABLE gone%zu (id int);\n"
                                 "DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$;\n"
                                 "INSERT INTO gone%zu VALUES (1);\n"
                                 "-- flotilla:down\nDROP TABLE gone%zu;\n",
                                 how[i], i, i, i);
        char *fixed = fl_asprintf("%s-- flotilla:up\n"
                                  "CREATE TABLE IF NOT EXISTS gone%zu (id int);\n"
                                  "INSERT INTO gone%zu VALUES (1);\n"
                                  "-- flotilla:down\nDROP TABLE gone%zu;"
                                  " -- flotilla:allow ban-drop-table made by"
                                  " this up (IF NOT EXISTS: lint cannot"
                                  " tell)\n",
                                  how[i], i, i, i);
        char *exists = fl_asprintf("SELECT to_regclass('gone%zu') IS NULL", i);
        char *status = fl_asprintf("SELECT status FROM flotilla.schema_migrations"
                                   " WHERE version = '%zu'", i + 1);

        s_write(e, file, text);
        s_run(e, &r, "apply", 1, NULL);
        s_expect(&r, 1, "DEALLOCATE or DISCARD");
        fl_test_proc_release(&r);
        s_assert_value(e, status, "failed");
        s_assert_value(e, exists, i == 0 ? "t" : "f");
        if (i == 1) {
            /*
             * Outside a transaction its first statement committed: resumed
             * (its file may not change), it fails the same way, at the
             * statement that does it.
             */
            s_assert_value(e, "SELECT statements_done FROM"
                              " flotilla.schema_migrations WHERE version = '2'",
                           "1");
            s_run(e, &r, "apply", 1, NULL);
            s_expect(&r, 1, "removed them (DEALLOCATE or DISCARD");
            s_expect(&r, 1, "is partly applied: 1 of 3 statements");
            fl_test_proc_release(&r);
            s_assert_value(e, status, "failed");
        } else {
            s_write(e, file, fixed);
            s_run(e, &r, "apply", 1, NULL);
            s_expect(&r, 0, "applied 1 migration");
            fl_test_proc_release(&r);
            s_assert_value(e, status, "applied");
        }
        free(status);
        free(exists);
        free(fixed);
        free(text);
        free(file);
    }
}

/*
 * Writes file with up (a trivial down); plan and apply (lint errors
 * allowed) must both refuse it, exit 3, saying needle.
 */
static void
s_plan_and_apply_refused(s_env *e, const char *file, const char *up,
                         const char *needle)
{
    char *text = fl_asprintf("-- flotilla:up\n%s\n-- flotilla:down\n"
                             "SELECT 1;\n", up);
    fl_test_proc_t r;

    s_write(e, file, text);
    s_run(e, &r, "plan", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 3, needle);
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 3, needle);
    fl_test_proc_release(&r);
    free(text);
}

/*
 * Flotilla's own tables (the ledger, the recorded schema changes, the
 * backups' copies of earlier migrations) live in the target and the
 * migration runs as the role that owns them: a statement, or a tenant's
 * trigger that it fires, could delete a ledger row (the migration would
 * then be applied twice) or forge a backup (the rollback would restore
 * it).  Before, each of these applied; each is now refused by the net
 * before COMMIT, and plan says the same.
 */
static void
test_a_migration_cannot_change_flotillas_own_tables(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *location, *forge;
    const char *cases[9];

    s_write(e, "0001_first.sql", "-- flotilla:up\n"
            "UPDATE users SET name = 'changed' WHERE id = 2;\n"
            "-- flotilla:down\nUPDATE users SET name = 'name 2' WHERE id = 2;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    location = s_value(e, "SELECT location FROM flotilla.backups");
    forge = fl_asprintf("UPDATE %s SET name = 'forged';", location);
    fl_test_exec(e->conn,
        "CREATE FUNCTION public.forget() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN DELETE FROM flotilla.schema_migrations; RETURN NEW; END $$;"
        "CREATE TRIGGER forget BEFORE UPDATE OF n ON users FOR EACH ROW"
        " EXECUTE FUNCTION public.forget()");
    cases[0] = "DELETE FROM flotilla.schema_migrations WHERE version = '1';";
    cases[1] = "UPDATE flotilla.schema_migrations SET checksum = 'x';";
    cases[2] = "DELETE FROM flotilla.schema_changes;";
    cases[3] = "UPDATE users SET n = n + 1 WHERE id = 3;";
    cases[4] = forge;
    /*
     * Tables dropped or moved away: no lock on a table of schema flotilla
     * is left to see (before, the first failed at the ledger's write with
     * "relation does not exist", the second applied and left the ledger
     * without its schema changes).
     */
    cases[5] = "DROP TABLE flotilla.schema_migrations;";
    cases[6] = "DROP TABLE flotilla.schema_changes;";
    cases[7] = "ALTER TABLE flotilla.migration_logs SET SCHEMA public;";
    cases[8] = "DO $$ BEGIN EXECUTE 'ALTER SCHEMA flotilla RENAME TO f2'; END $$;";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *before = fl_test_canonical_dump(e->conn);
        char *after;

        s_plan_and_apply_refused(e, "0002_own.sql", cases[i],
                                 "changed flotilla's own table");
        after = fl_test_canonical_dump(e->conn);
        assert_string_equal(before, after);
        s_assert_value(e, "SELECT string_agg(version || ' ' || status, ',')"
                          " FROM flotilla.schema_migrations", "1 applied");
        free(before);
        free(after);
    }
    /*
     * A no-transaction migration's statement runs in a transaction of its
     * own: the one that deletes the ledger's row is rolled back, what
     * committed before it stays and is reported.
     */
    s_write(e, "0002_own.sql", "-- flotilla:options no-transaction\n"
            "-- flotilla:up\nCREATE TABLE t2 (id int);\n"
            "DELETE FROM flotilla.schema_migrations WHERE version = '1';\n"
            "-- flotilla:down\nDROP TABLE IF EXISTS t2;\n");
    s_run(e, &r, "apply", 1, "--allow-lint-errors", NULL);
    s_expect(&r, 1, "changed flotilla's own table");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(version || ' ' || status || ' ' ||"
                      " statements_done, ',' ORDER BY version)"
                      " FROM flotilla.schema_migrations",
                   "1 applied 1,2 failed 1");
    free(forge);
    free(location);
}

/*
 * A foreign table's rows live on another server (postgres_fdw here, to a
 * second database of the same server): no backup of flotilla's holds
 * them and no rollback can put them back.  Before, a migration that
 * deleted some applied (exit 0, no backup) and its rollback said "rolled
 * back 1 migration" with the rows still gone.  Each write is now refused
 * by the net before COMMIT (the remote transaction is rolled back with
 * it), whatever statement or function makes it, and plan says the same.
 */
static void
test_a_migration_cannot_write_a_foreign_table(void **state)
{
    s_env *e = *state;
    fl_test_db_t remote;
    PGconn *rc = NULL;
    fl_test_proc_t r;
    char *setup = NULL;
    const char *cases[] = {
        "DELETE FROM fitems WHERE id > 5;",
        "UPDATE fitems SET v = 'changed';",
        "INSERT INTO fitems VALUES (11, 'new');",
        "TRUNCATE fitems;",
        ("CREATE TABLE kept (id int);\n"
         "DO $$ BEGIN EXECUTE 'DELETE FROM fitems'; END $$;"),
    };
    const char *rows = "SELECT string_agg(id || v, ',' ORDER BY id) FROM items";
    char *want = NULL;

    fl_test_db_create(&remote, "fdw");
    rc = fl_test_db_connect(&remote);
    fl_test_exec(rc, "CREATE TABLE items (id int PRIMARY KEY, v text);"
                     "INSERT INTO items SELECT g, 'r' || g"
                     " FROM generate_series(1, 10) g");
    want = fl_test_query_value(rc, rows);
    setup = fl_asprintf(
        "CREATE EXTENSION postgres_fdw;"
        "CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw"
        " OPTIONS (host '%s', port '%s', dbname '%s');"
        "CREATE USER MAPPING FOR CURRENT_USER SERVER remote"
        " OPTIONS (user '%s');"
        "CREATE FOREIGN TABLE fitems (id int, v text) SERVER remote"
        " OPTIONS (table_name 'items')", PQhost(rc), PQport(rc),
        remote.name, PQuser(rc));
    fl_test_exec(e->conn, setup);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_plan_and_apply_refused(e, "0001_remote.sql", cases[i],
                                 "wrote to foreign table public.fitems");
        fl_test_expect_value(rc, rows, want);
        s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations", "0");
        s_assert_value(e, "SELECT to_regclass('kept') IS NULL", "t");
    }
    /* Reading one is no write. */
    s_write(e, "0001_remote.sql", "-- flotilla:up\nCREATE TABLE copy AS"
            " SELECT * FROM fitems;\n-- flotilla:down\nDROP TABLE copy;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM copy", "10");
    /* Nor may a down write one (a rollback refuses, exit 1). */
    s_write(e, "0001_remote.sql", "-- flotilla:up\nCREATE TABLE copy AS"
            " SELECT * FROM fitems;\n-- flotilla:down\nDROP TABLE copy;\n"
            "DELETE FROM fitems;\n");
    s_run(e, &r, "rollback", 1, "--last", NULL);
    s_expect(&r, 1, "wrote to foreign table public.fitems");
    fl_test_proc_release(&r);
    fl_test_expect_value(rc, rows, want);
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations", "applied");
    /*
     * Making a foreign table is no write of its rows: applied (before,
     * refused as a write, the lock its creation takes being a writer's);
     * writing to it in the same migration still is.
     */
    s_write(e, "0002_more.sql", "-- flotilla:up\nCREATE FOREIGN TABLE fmore"
            " (id int, v text) SERVER remote OPTIONS (table_name 'items');\n"
            "-- flotilla:down\nDROP FOREIGN TABLE fmore;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_write(e, "0003_more.sql", "-- flotilla:up\nCREATE FOREIGN TABLE fmore2"
            " (id int, v text) SERVER remote OPTIONS (table_name 'items');\n"
            "INSERT INTO fmore2 VALUES (12, 'x');\n"
            "-- flotilla:down\nDROP FOREIGN TABLE fmore2;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "wrote to foreign table public.fmore2");
    fl_test_proc_release(&r);
    fl_test_expect_value(rc, rows, want);
    PQfinish(rc);
    fl_test_db_drop(&remote);
    free(want);
    free(setup);
}

/*
 * Large objects live in pg_largeobject, which no backup of flotilla's
 * holds.  Before, a migration that unlinked one (a cleanup of the files
 * an application stored that way) applied, and its rollback put the row
 * back pointing at nothing, "rolled back".  Unlinking, rewriting or
 * truncating one is now refused before COMMIT, by a statement or by code
 * it runs, and plan says the same; making a new one is allowed.
 */
static void
test_a_migration_cannot_change_large_objects(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    const char *body = "SELECT convert_from(lo_get(body), 'UTF8') FROM docs";
    const char *cases[] = {
        "SELECT lo_unlink(body) FROM docs;",
        "SELECT lo_put(body, 0, 'HELLO') FROM docs;",
        "SELECT lo_truncate(lo_open(body, 131072), 2) FROM docs;",
        "DO $$ BEGIN PERFORM lo_unlink(body) FROM docs; END $$;",
    };

    fl_test_exec(e->conn, "CREATE TABLE docs (id int PRIMARY KEY, body oid);"
                          "INSERT INTO docs VALUES"
                          " (1, lo_from_bytea(0, 'hello world'))");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_plan_and_apply_refused(e, "0001_lo.sql", cases[i],
                                 "changed large objects");
        s_assert_value(e, body, "hello world");
    }
    s_write(e, "0001_lo.sql", "-- flotilla:up\nINSERT INTO docs VALUES"
            " (2, lo_from_bytea(0, 'new'));\n-- flotilla:down\nSELECT 1;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT string_agg(convert_from(lo_get(body), 'UTF8'),"
                      " ',' ORDER BY id) FROM docs", "hello world,new");
}

/*
 * A down runs as the same role as its up, next to the same tables: one
 * that deletes a ledger row (the migration would look never applied, and
 * run again), or forges the backup copy the rollback is about to restore,
 * could do what an up may not.  Before, each of these rolled back with
 * exit 0; each is now refused before COMMIT (exit 1, as rollback's
 * refusals), nothing rolled back, in a transaction and statement by
 * statement.
 */
static void
test_a_down_cannot_change_flotillas_own_tables(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *location, *forge, *copy, *kept;
    const char *cases[5];

    s_write(e, "0001_first.sql", "-- flotilla:up\n"
            "UPDATE users SET name = 'changed' WHERE id = 2;\n"
            "-- flotilla:down\nSELECT 1;\n");
    s_write(e, "0002_second.sql", "-- flotilla:up\n"
            "CREATE TABLE t2 (id int);\n-- flotilla:down\nDROP TABLE t2;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 2 migrations");
    fl_test_proc_release(&r);
    location = s_value(e, "SELECT location FROM flotilla.backups");
    forge = fl_asprintf("UPDATE %s SET name = 'forged';", location);
    copy = fl_asprintf("SELECT concat((SELECT count(*) FROM"
                       " flotilla.schema_changes), ' ', (SELECT"
                       " string_agg(name, ',' ORDER BY id) FROM %s), ' ',"
                       " (SELECT count(*) FROM flotilla.migration_logs"
                       " WHERE message = 'x'))", location);
    kept = s_value(e, copy);
    cases[0] = "DELETE FROM flotilla.schema_migrations WHERE version = '1';";
    cases[1] = "DELETE FROM flotilla.schema_changes;";
    cases[2] = forge;
    cases[3] = "UPDATE flotilla.migration_logs SET message = 'x';";
    cases[4] = "ALTER TABLE flotilla.schema_changes SET SCHEMA public;";
    for (size_t i = 0; i < 2 * sizeof(cases) / sizeof(cases[0]); i++) {
        /*
         * The second round: a down with a no-transaction statement, run
         * statement by statement; its refusal leaves it rolling_back with
         * none of its statements done.
         */
        size_t n = sizeof(cases) / sizeof(cases[0]);
        const char *notx = i >= n ? "CREATE INDEX CONCURRENTLY IF NOT EXISTS"
                                    " users_n ON users (n);\n" : "";
        char *text = fl_asprintf("-- flotilla:up\nCREATE TABLE t2 (id int);\n"
                                 "-- flotilla:down\n%s\n%sDROP TABLE t2;\n",
                                 cases[i % n], notx);
        char *before, *after;

        s_write(e, "0002_second.sql", text);
        before = fl_test_canonical_dump(e->conn);
        s_run(e, &r, "rollback", 1, "--last", "--allow-lint-errors", NULL);
        s_expect(&r, 1, "changed flotilla's own table");
        fl_test_proc_release(&r);
        after = fl_test_canonical_dump(e->conn);
        if (strcmp(before, after) != 0)
            fail_msg("case %zu (%s): the rollback changed the database", i,
                     cases[i % n]);
        s_assert_value(e, copy, kept);
        s_assert_value(e, "SELECT string_agg(version || ' ' || status || ' '"
                          " || coalesce(down_done, 0), ',' ORDER BY version)"
                          " FROM flotilla.schema_migrations",
                       i >= n ? "1 applied 0,2 rolling_back 0"
                              : "1 applied 0,2 applied 0");
        free(before);
        free(after);
        free(text);
    }
    free(kept);
    free(copy);
    free(forge);
    free(location);
}

/*
 * The target's lock is a session-level advisory lock, which the
 * migration's statements could release (pg_advisory_unlock_all(), or
 * pg_advisory_unlock of flotilla's key): another flotilla run could then
 * migrate the same target at once.  Before, such a migration applied; it
 * is now refused before COMMIT, and the lock taken again.
 */
static void
test_a_migration_cannot_release_the_target_lock(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_all.sql", "-- flotilla:up\n"
            "CREATE TABLE t1 (id int);\n"
            "SELECT pg_advisory_unlock_all();\n"
            "-- flotilla:down\nDROP TABLE t1;\n");
    s_run(e, &r, "plan", 1, NULL);
    s_expect(&r, 3, "a statement released flotilla's lock on");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "0001_all.sql: a statement released flotilla's lock on");
    fl_test_proc_release(&r);
    s_write(e, "0001_all.sql", "-- flotilla:up\n"
            "CREATE TABLE t1 (id int);\n"
            "SELECT pg_advisory_unlock(1718578273,"
            " hashtext(current_database()) & 2147483647);\n"
            "-- flotilla:down\nDROP TABLE t1;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "released flotilla's lock on");
    fl_test_proc_release(&r);
    /* From a signed bundle, whose last migration also marks the release. */
    {
        char *key = fl_asprintf("%s/release", e->dir);
        char *keyfile = fl_asprintf("%s/release.key", e->dir);
        char *pub = fl_asprintf("%s/release.pub", e->dir);
        char *bundle = fl_asprintf("%s/release.bundle", e->dir);
        const char *kg[] = {"flotilla", "keygen", "--out", key, NULL};
        const char *build[] = {"flotilla", "bundle", "build", e->mdir,
                               "--sign", keyfile, "--out", bundle,
                               "--environment", "test", NULL};
        const char *apply[] = {"flotilla", "apply", "--db", e->dbarg,
                               "--log-file", e->log, "--trust", pub,
                               "--environment", "test", bundle, NULL};

        s_cli(&r, kg);
        s_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
        s_cli(&r, build);
        s_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
        s_cli(&r, apply);
        s_expect(&r, 3, "a statement released flotilla's lock on");
        fl_test_proc_release(&r);
        free(key);
        free(keyfile);
        free(pub);
        free(bundle);
    }
    s_assert_value(e, "SELECT to_regclass('t1') IS NULL", "t");
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations", "0");
    /* A down that releases it is refused; the migration stays applied. */
    s_write(e, "0001_all.sql", "-- flotilla:up\n"
            "CREATE TABLE t1 (id int);\n"
            "-- flotilla:down\n"
            "DROP TABLE t1;\n"
            "SELECT pg_advisory_unlock_all();\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_run(e, &r, "rollback", 1, "--to", "0", NULL);
    s_expect(&r, 1, "the down of 0001_all.sql released flotilla's lock on");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT to_regclass('t1') IS NOT NULL", "t");
    s_assert_value(e, "SELECT string_agg(version || ' ' || status, ','"
                      " ORDER BY version) FROM flotilla.schema_migrations",
                   "1 applied");
    /* Outside a transaction: what committed before it stays, reported. */
    s_write(e, "0002_notx.sql", "-- flotilla:options no-transaction\n"
            "-- flotilla:up\n"
            "CREATE TABLE t2 (id int);\n"
            "SELECT pg_advisory_unlock_all();\n"
            "-- flotilla:down\nDROP TABLE IF EXISTS t2;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "released flotilla's lock on");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status || ' ' || statements_done"
                      " FROM flotilla.schema_migrations WHERE version = '2'",
                   "failed 1");
}

/*
 * The window the lock check leaves: between the statement that released
 * the target's lock and the check before COMMIT, another session takes
 * it (as another flotilla run would).  The migration is refused, its
 * transaction rolled back, and the run says it could not take the lock
 * again; the other session's lock stays its own, and once it is gone the
 * next apply runs.
 */
static void
test_a_lost_target_lock_taken_by_another_session(void **state)
{
    s_env *e = *state;
    char *out = fl_asprintf("%s/lost.out", e->dir);
    fl_test_proc_t r;
    int st = 0;
    pid_t a;

    s_write(e, "0001_lost.sql", "-- flotilla:up\n"
            "CREATE TABLE t1 (id int);\n"
            "SELECT pg_advisory_unlock_all();\n"
            "SELECT pg_sleep(2);\n"
            "-- flotilla:down\nDROP TABLE t1;\n");
    a = s_spawn_apply(e, "30s", out);
    s_wait_for(e, "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE"
                  " 'SELECT pg_sleep(2)%' AND datname = current_database()",
               30);
    s_assert_value(e, "SELECT pg_try_advisory_lock(1718578273,"
                      " hashtext(current_database()) & 2147483647)", "t");
    waitpid(a, &st, 0);
    s_expect_spawned(out, st, 3, "could not take it again");
    s_assert_value(e, "SELECT to_regclass('t1') IS NULL", "t");
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations"
                      " WHERE status = 'applied'", "0");
    /* Held by the other session still, then released: the next runs. */
    s_assert_value(e, "SELECT count(*) FROM pg_locks WHERE locktype ="
                      " 'advisory' AND classid = 1718578273 AND objsubid = 2"
                      " AND pid = pg_backend_pid()", "1");
    s_run(e, &r, "apply", 1, "--lock-wait", "0s", NULL);
    s_expect(&r, 5, NULL);
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT pg_advisory_unlock(1718578273,"
                      " hashtext(current_database()) & 2147483647)", "t");
    s_write(e, "0001_lost.sql", "-- flotilla:up\n"
            "CREATE TABLE t1 (id int);\n"
            "-- flotilla:down\nDROP TABLE t1;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    free(out);
}

static void
s_cli(fl_test_proc_t *r, const char *const *argv)
{
    fl_test_run(r, "flotilla", argv, NULL, 60);
}

/* "SELECT 1+1+...+1" of n terms, with prefix before it. */
static char *
s_chain(const char *prefix, int n, const char *suffix)
{
    fl_buf_t b = FL_BUF_INIT(0);

    fl_buf_addf(&b, "%sSELECT 1", prefix);
    for (int i = 1; i < n; i++)
        fl_buf_addf(&b, "+1");
    fl_buf_addf(&b, "%s", suffix);
    return fl_buf_detach(&b);
}

/*
 * A statement as deep as PostgreSQL runs applies: a chain of 12,000 "+"
 * with max_stack_depth raised to 7MB (as a superuser may; at its 2MB
 * default PostgreSQL refuses about 4,500) made flotilla apply die of a
 * stack overflow while it analyzed the migration, as it did flotilla
 * lint and an agent given the bundle (its parse tree, 12,000 levels
 * deep, was rendered, unpacked and walked recursively on an 8 MB
 * stack).  One too deep to analyze at all (120,000 terms, past
 * FL_FACTS_MAX_DEPTH) is refused as such, by apply (exit 3, nothing
 * changed) and by lint (exit 1), not a crash.
 */
static void
test_a_deep_statement_applies_or_is_refused_never_a_crash(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *deep = fl_asprintf("%s/deep", e->dir), *p = NULL;
    char *up = s_chain("-- flotilla:up\nSET LOCAL max_stack_depth = '7MB';\n"
                       "CREATE TABLE deep AS ", 12000,
                       " AS n;\n-- flotilla:down\nDROP TABLE deep;\n");
    char *too = s_chain("-- flotilla:up\n", 120000,
                        ";\n-- flotilla:down\nSELECT 1;\n");

    s_write(e, "0001_deep.sql", up);
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT n FROM deep", "12000");
    s_write(e, "0002_too_deep.sql", too);
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 3, "is nested too deeply for flotilla to analyze");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations",
                   "1");
    assert_int_equal(mkdir(deep, 0755), 0);
    p = fl_asprintf("%s/0001_too_deep.sql", deep);
    fl_test_write_file(p, too);
    {
        const char *argv[] = {"flotilla", "lint", deep, NULL};
        s_cli(&r, argv);
        s_expect(&r, 1, "is nested too deeply for flotilla to analyze");
        fl_test_proc_release(&r);
    }
    free(p);
    free(deep);
    free(up);
    free(too);
}

/*
 * The command runs on a thread of its own (cli/main.c: the stack parse
 * trees need) while the main thread, which only waits, blocks every
 * signal: SIGTERM still ends a command that does not catch it, here a
 * lint of 200,000 rows, at once, by the signal (had the command's thread
 * kept the main thread's mask, the signal would wait for ever).
 */
static void
test_sigterm_ends_a_command_on_its_thread(void **state)
{
    s_env *e = *state;
    char *dir = fl_asprintf("%s/big", e->dir), *p = NULL;
    const char *argv[] = {"flotilla", "lint", dir, NULL};
    fl_buf_t b = FL_BUF_INIT(0);
    fl_test_child_t c;
    fl_test_proc_t r;

    fl_buf_addf(&b, "-- flotilla:up\nINSERT INTO big VALUES (0, 'n')");
    for (int i = 1; i < 200000; i++)
        fl_buf_addf(&b, ",\n(%d, 'n')", i);
    fl_buf_addf(&b, ";\n-- flotilla:down\nSELECT 1;\n");
    assert_int_equal(mkdir(dir, 0755), 0);
    p = fl_asprintf("%s/0001_big.sql", dir);
    fl_test_write_file(p, fl_buf_str(&b));
    fl_test_spawn(&c, NULL, "flotilla", argv);
    fl_clock_sleep_ms(300);
    fl_test_child_signal(&c, SIGTERM);
    fl_test_child_wait(&c, &r, 10);
    assert_int_equal(r.status, 128 + SIGTERM);
    fl_test_proc_release(&r);
    fl_buf_release(&b);
    free(p);
    free(dir);
}

/*
 * Whatever command a script runs with --json, a failure reaches it on
 * stdout as one JSON object, {"ok": false, "error": {"message", ...}}
 * (and on stderr as text), as apply, plan, rollback and baseline always
 * did: status, log, locks, backups, import, bundle inspect, lint
 * --format json and the fleet's commands printed nothing on stdout, so
 * `flotilla status --json | jq` read an empty document.  Each is made
 * to fail after its options were read: a database, a file or a
 * coordinator that is not there; and usage errors (exit 2), which were
 * text on stderr alone: a bad rollout id, a bad --timeout, a policy file
 * missing or with a key no policy has, a policy flag given where it does
 * nothing (before, ignored in silence).  With --timeout 1s and
 * no coordinator, each fails within it, exit 4: rollout list waited 30 s,
 * status and dispatch --attach 15 s, and status and watch then exited 9,
 * "did not end within --timeout", as if the rollout were running.
 */
/* How many times needle occurs in text. */
static int
s_occurrences(const char *text, const char *needle)
{
    int n = 0;

    for (const char *at = text; (at = strstr(at, needle)) != NULL;
         at += strlen(needle))
        n++;
    return n;
}

static void
test_every_json_command_says_its_failure_as_json(void **state)
{
    s_env *e = *state;
    char *op = fl_asprintf("%s/op", e->dir), *co = NULL, *opsec = NULL,
         *copub = NULL, *dest = fl_asprintf("%s/imported", e->dir),
         *policy = NULL;
    const char *nodb = "host=/nonexistent-flotilla port=1";
    const char *miss = "/nonexistent-flotilla/x";
    const char *rid = "0123456789abcdef0123456789abcdef";
    fl_test_proc_t r;
    int bad = 0;

    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE a (id int);\n"
                             "-- flotilla:down\nDROP TABLE a;\n");
    co = fl_asprintf("%s/co", e->dir);
    policy = fl_asprintf("%s/policy.yaml", e->dir);
    {
        FILE *pf = fopen(policy, "w");
        assert_non_null(pf);
        fputs("max_parallel: 5\nbogus: 1\n", pf);
        fclose(pf);
    }
    opsec = fl_asprintf("%s.cert_secret", op);
    copub = fl_asprintf("%s.cert", co);
    {
        const char *a[] = {"flotilla", "cert", "--out", op, NULL};
        const char *b[] = {"flotilla", "cert", "--out", co, NULL};
        s_cli(&r, a);
        s_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
        s_cli(&r, b);
        s_expect(&r, 0, NULL);
        fl_test_proc_release(&r);
    }
#define S_FLEET "--coordinator", "tcp://127.0.0.1:1", "--cert", opsec,      \
                "--server-cert", copub, "--timeout", "1s", "--json"
    {
        const char *status[] = {"flotilla", "status", "--json", "--db", nodb,
                                e->mdir, NULL};
        const char *log[] = {"flotilla", "log", "--json", "--db", nodb, NULL};
        const char *locks[] = {"flotilla", "locks", "--json", "--db", nodb,
                               NULL};
        const char *backups[] = {"flotilla", "backups", "list", "--json",
                                 "--db", nodb, NULL};
        const char *import[] = {"flotilla", "import", "--from", "flyway",
                                "--json", miss, dest, NULL};
        const char *inspect[] = {"flotilla", "bundle", "inspect", "--json",
                                 miss, NULL};
        const char *lint[] = {"flotilla", "lint", "--format", "json", miss,
                              NULL};
        const char *agents[] = {"flotilla", "agents", S_FLEET, NULL};
        const char *targets[] = {"flotilla", "targets", S_FLEET, NULL};
        const char *dispatch[] = {"flotilla", "dispatch", "--selector", "",
                                  S_FLEET, miss, NULL};
        const char *attach[] = {"flotilla", "dispatch", "--attach", rid,
                                S_FLEET, NULL};
        const char *rstatus[] = {"flotilla", "rollout", "status", rid,
                                 S_FLEET, NULL};
        const char *rwatch[] = {"flotilla", "rollout", "watch", rid,
                                S_FLEET, NULL};
        /* --timeout 0s: not even one call (the last --timeout wins). */
        const char *rnow[] = {"flotilla", "rollout", "watch", rid, S_FLEET,
                              "--timeout", "0s", NULL};
        const char *rlist[] = {"flotilla", "rollout", "list", S_FLEET, NULL};
        const char *rstart[] = {"flotilla", "rollout", "start", miss,
                                S_FLEET, NULL};
        const char *badid[] = {"flotilla", "rollout", "status", "abc",
                               S_FLEET, NULL};
        const char *badtime[] = {"flotilla", "targets", S_FLEET,
                                 "--timeout", "-5s", NULL};
        const char *nopolicy[] = {"flotilla", "rollout", "start", miss,
                                  "--policy", miss, S_FLEET, NULL};
        const char *badpolicy[] = {"flotilla", "rollout", "start", miss,
                                   "--policy", policy, S_FLEET, NULL};
        /* A policy flag where it does nothing (before: ignored). */
        const char *idle[] = {"flotilla", "rollout", "status", rid,
                              "--waves", "5", S_FLEET, NULL};
        const char *planbake[] = {"flotilla", "rollout", "plan", miss,
                                  "--bake", "1s", S_FLEET, NULL};
        /* A start against an endpoint where nothing answers: the request
         * never went out, and nothing may have been created (before, the
         * error said the coordinator may have created the rollout). */
        const char *rstart2[] = {"flotilla", "rollout", "start", policy,
                                 S_FLEET, NULL};
        /* A bundle (a file) without --trust: usage, not refused. */
        const char *notrust[] = {"flotilla", "plan", "--json", "--db", nodb,
                                 policy, NULL};
        struct {
            const char *const *argv;
            const char *says;
            int exit; /* -1: any failure */
        } runs[] = {
            {badid, "is not a rollout id", 2},
            {badtime, "--timeout", 2},
            {nopolicy, miss, 2},
            {badpolicy, "bogus", 2},
            {idle, "--waves goes with start", 2},
            {planbake, "--bake goes with start", 2},
            {status, "could not connect", 4},
            {log, "could not connect", 4},
            {locks, "could not connect", 4},
            {backups, "could not connect", 4},
            {notrust, "needs --trust PATH", 2},
            {rstart2, "the request was not sent", 4},
            /* Refused (3) is for what a source holds (before, 3). */
            {import, "could not read", 1},
            {inspect, "could not open bundle file", -1},
            {lint, "could not read", -1},
            {agents, "no reply from the coordinator", 4},
            {targets, "no reply from the coordinator", 4},
            {dispatch, "could not open bundle file", -1},
            {attach, "no reply from the coordinator", 4},
            {rstatus, "no reply from the coordinator", 4},
            {rwatch, "no reply from the coordinator", 4},
            {rnow, "no reply from the coordinator", 4},
            {rlist, "no reply from the coordinator", 4},
            {rstart, "could not open bundle file", -1},
        };

        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
            const char *what = runs[i].argv[1];
            json_t *j = NULL;
            const char *msg = NULL;

            /* --timeout 1s: none waits for the coordinator any longer
             * (rollout list waited 30 s, status and attach 15 s). */
            fl_test_run(&r, "flotilla", runs[i].argv, NULL, 12);
            j = json_loads(r.out, 0, NULL);
            msg = json_string_value(json_object_get(
                json_object_get(j, "error"), "message"));
            if (r.status == 0 ||
                (runs[i].exit >= 0 && r.status != runs[i].exit) ||
                !json_is_false(json_object_get(j, "ok")) || msg == NULL ||
                strstr(msg, runs[i].says) == NULL ||
                strstr(r.err, runs[i].says) == NULL ||
                strstr(r.err, "may have created") != NULL ||
                /* One error: a call made again is a warning.  (Some
                 * usage errors are said without "error:".) */
                s_occurrences(r.err, "error:") > 1 ||
                (runs[i].exit != 2 && s_occurrences(r.err, "error:") != 1)) {
                print_message("flotilla %s %s --json: exit %d, wanted "
                              "exit %d and a failure saying \"%s\" as JSON "
                              "on stdout (and once on stderr, as an error)"
                              "\nstdout: %s\n"
                              "stderr: %s\n", what, runs[i].argv[2],
                              r.status, runs[i].exit, runs[i].says, r.out,
                              r.err);
                bad++;
            }
            /* What to check when the coordinator does not answer (before,
             * no hint at all: found by an audit of the docs). */
            if (strstr(runs[i].says, "no reply") != NULL &&
                strstr(r.err, "HINT: Is flotilla-coordinator running") ==
                    NULL) {
                print_message("flotilla %s: no hint when the coordinator "
                              "does not answer\n%s\n", what, r.err);
                bad++;
            }
            json_decref(j);
            fl_test_proc_release(&r);
        }
    }
#undef S_FLEET
    /*
     * Failures after connecting too: a damaged ledger (its table of
     * migrations dropped).  Before, plan --json printed nothing on
     * stdout.
     */
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_test_exec(e->conn, "DROP TABLE flotilla.schema_migrations CASCADE");
    {
        static const char *const cmds[] = {"plan", "apply", "rollback",
                                           "status", "log", "backups"};

        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
            const char *c = cmds[i];
            int src = strcmp(c, "log") != 0 && strcmp(c, "backups") != 0;
            const char *extra = strcmp(c, "rollback") == 0  ? "--last"
                                : strcmp(c, "backups") == 0 ? "list"
                                                            : "--json";
            json_t *j = NULL;
            const json_t *er = NULL;

            if (strcmp(c, "backups") == 0)
                s_run(e, &r, c, 0, extra, "--json", NULL);
            else
                s_run(e, &r, c, src, extra, "--json", NULL);
            j = json_loads(r.out, 0, NULL);
            er = json_object_get(j, "error");
            if (r.status == 0 || !json_is_false(json_object_get(j, "ok")) ||
                strstr(json_string_value(json_object_get(er, "message"))
                           ? json_string_value(json_object_get(er,
                                                               "message"))
                           : "",
                       "is damaged") == NULL ||
                json_object_get(er, "sqlstate") == NULL) {
                print_message("flotilla %s --json on a damaged ledger: exit "
                              "%d, wanted its failure as JSON on stdout "
                              "(message, detail, hint, sqlstate)\n"
                              "stdout: %s\nstderr: %s\n", c, r.status,
                              r.out, r.err);
                bad++;
            }
            json_decref(j);
            fl_test_proc_release(&r);
        }
    }
    if (bad > 0)
        fail_msg("%d commands did not say their failure as JSON", bad);
    free(op);
    free(co);
    free(opsec);
    free(copub);
    free(dest);
    free(policy);
}

/*
 * Expiry stops a bundle from being applied, never from being rolled
 * back: a bundle of 3 s applied, then, expired, refused by apply (exit
 * 3, nothing run) and accepted by rollback, which puts the database back
 * as it was.  Before, rollback refused it as apply does.
 */
static void
test_an_expired_bundle_rolls_back_and_applies_no_more(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *key = fl_asprintf("%s/release", e->dir);
    char *keyfile = fl_asprintf("%s/release.key", e->dir);
    char *pub = fl_asprintf("%s/release.pub", e->dir);
    char *bundle = fl_asprintf("%s/short.bundle", e->dir);
    char *before = fl_test_canonical_dump(e->conn), *after = NULL;
    const char *kg[] = {"flotilla", "keygen", "--out", key, NULL};
    const char *build[] = {"flotilla", "bundle", "build", e->mdir, "--sign",
                           keyfile, "--out", bundle, "--environment", "test",
                           "--expires", "3s", NULL};
    const char *apply[] = {"flotilla", "apply", "--db", e->dbarg,
                           "--log-file", e->log, "--trust", pub,
                           "--environment", "test", bundle, NULL};
    const char *rollback[] = {"flotilla", "rollback", "--db", e->dbarg,
                              "--log-file", e->log, "--trust", pub,
                              "--last", bundle, NULL};
    int64_t built;

    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE short (id int);\n"
                             "-- flotilla:down\nDROP TABLE short;\n");
    s_write(e, "0002_b.sql", "-- flotilla:up\nCREATE TABLE shorter (id int);\n"
                             "-- flotilla:down\nDROP TABLE shorter;\n");
    s_cli(&r, kg);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    built = fl_clock_ms();
    s_cli(&r, build);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    {
        const char *to1[] = {"flotilla", "apply", "--db", e->dbarg,
                             "--log-file", e->log, "--trust", pub,
                             "--environment", "test", "--to", "1", bundle,
                             NULL};
        s_cli(&r, to1);
        s_expect(&r, 0, "applied 1 migration");
        fl_test_proc_release(&r);
    }
    while (fl_clock_ms() - built < 4000)
        fl_clock_sleep_ms(100);
    s_cli(&r, apply);
    s_expect(&r, 3, "expired");
    fl_test_proc_release(&r);
    {
        char *n = s_value(e, "SELECT count(*) FROM pg_class WHERE "
                             "relname = 'shorter'");
        assert_string_equal(n, "0");
        free(n);
    }
    s_cli(&r, rollback);
    s_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(key);
    free(keyfile);
    free(pub);
    free(bundle);
}

/*
 * Rollback may run a down that changed since the migration was applied
 * (the up is the same), so a bundle that is not the one applied is held
 * to its own signed scope: a bundle for another environment, its up the
 * same and its down another, is refused with nothing run, named or not
 * the target's environment; the bundle applied rolls back, and its id is
 * on the rollback's log rows.  Before, the other environment's bundle,
 * expired besides, ran its down here (found by an audit), and the log
 * rows of a rollback carried no bundle id.
 */
static void
test_a_rollback_from_another_bundle_is_held_to_its_scope(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *key = fl_asprintf("%s/release", e->dir);
    char *keyfile = fl_asprintf("%s/release.key", e->dir);
    char *pub = fl_asprintf("%s/release.pub", e->dir);
    char *applied = fl_asprintf("%s/test.bundle", e->dir);
    char *staging = fl_asprintf("%s/staging.bundle", e->dir);
    char *id = NULL, *sql = NULL;
    const char *kg[] = {"flotilla", "keygen", "--out", key, NULL};
    const char *build[] = {"flotilla", "bundle", "build", e->mdir, "--sign",
                           keyfile, "--out", applied, "--environment", "test",
                           NULL};
    const char *build2[] = {"flotilla", "bundle", "build", e->mdir, "--sign",
                            keyfile, "--out", staging, "--environment",
                            "staging", NULL};
    const char *apply[] = {"flotilla", "apply", "--db", e->dbarg,
                           "--log-file", e->log, "--trust", pub,
                           "--environment", "test", applied, NULL};
    const char *back_other[] = {"flotilla", "rollback", "--db", e->dbarg,
                                "--log-file", e->log, "--trust", pub,
                                "--last", staging, NULL};
    const char *back_other_env[] = {"flotilla", "rollback", "--db", e->dbarg,
                                    "--log-file", e->log, "--trust", pub,
                                    "--environment", "test", "--last",
                                    staging, NULL};
    const char *back[] = {"flotilla", "rollback", "--db", e->dbarg,
                          "--log-file", e->log, "--trust", pub, "--last",
                          applied, NULL};

    fl_test_exec(e->conn, "CREATE TABLE marks (n int)");
    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE scoped (id int);\n"
                             "-- flotilla:down\nDROP TABLE scoped;\n");
    s_cli(&r, kg);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_cli(&r, build);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_cli(&r, apply);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    /* The same up, another down, for another environment. */
    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE scoped (id int);\n"
                             "-- flotilla:down\nINSERT INTO marks VALUES (1);\n"
                             "DROP TABLE scoped;\n");
    s_cli(&r, build2);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_cli(&r, back_other);
    /* Exit 1: rollback's refusals are failures (as "not the one applied"). */
    s_expect(&r, 1, "not the one that applied");
    fl_test_proc_release(&r);
    s_cli(&r, back_other_env);
    s_expect(&r, 1, "is for environment \"staging\", not \"test\"");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM marks", "0");
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations",
                   "applied");
    s_cli(&r, back);
    s_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM marks", "0");
    s_assert_value(e, "SELECT to_regclass('scoped') IS NULL", "t");
    id = s_value(e, "SELECT bundle_id FROM flotilla.schema_migrations");
    sql = fl_asprintf("SELECT count(*) > 0 FROM flotilla.migration_logs"
                      " WHERE step = 'rollback' AND bundle_id = '%s'", id);
    s_assert_value(e, sql, "t");
    free(sql);
    free(id);
    free(key);
    free(keyfile);
    free(pub);
    free(applied);
    free(staging);
}

static void
test_signed_bundle_apply_and_rollback_by_bundle(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *key = fl_asprintf("%s/release", e->dir);
    char *keyfile = fl_asprintf("%s/release.key", e->dir);
    char *pub = fl_asprintf("%s/release.pub", e->dir);
    char *other = fl_asprintf("%s/other", e->dir);
    char *otherpub = fl_asprintf("%s/other.pub", e->dir);
    char *bundle = fl_asprintf("%s/release.bundle", e->dir);
    char *tampered = fl_asprintf("%s/tampered.bundle", e->dir);
    char *before = fl_test_canonical_dump(e->conn);
    char *after = NULL, *id = NULL, *sql = NULL;
    const char *kg1[] = {"flotilla", "keygen", "--out", key, NULL};
    const char *kg2[] = {"flotilla", "keygen", "--out", other, NULL};
    const char *build[] = {"flotilla", "bundle", "build", e->mdir, "--sign",
                           keyfile, "--out", bundle, "--environment", "test",
                           NULL};

    s_write(e, "0001_a.sql", "-- flotilla:options allow=ban-drop-column gone\n"
                             "-- flotilla:options allow=require-concurrent-"
                             "index-creation down puts it back\n"
                             "-- flotilla:options allow=constraint-missing-"
                             "not-valid and the check\n"
                             "-- flotilla:up\nALTER TABLE users DROP COLUMN legacy;\n"
                             "-- flotilla:down\nALTER TABLE users ADD COLUMN legacy text DEFAULT 'none' NOT NULL;\n"
                             "CREATE INDEX users_legacy_idx ON users (legacy);\n"
                             "ALTER TABLE users ADD CONSTRAINT users_legacy_chk CHECK (legacy <> '');\n");
    s_cli(&r, kg1);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_cli(&r, kg2);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_cli(&r, build);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    /* A migrations directory is refused when signatures are required. */
    s_run(e, &r, "apply", 1, "--require-signed", NULL);
    s_expect(&r, 3, "--require-signed accepts only signed bundles");
    fl_test_proc_release(&r);
    /* A bundle from an untrusted key, or tampered with, executes nothing. */
    {
        const char *argv[] = {"flotilla", "apply", "--db", e->dbarg, "--log-file",
                              e->log, "--trust", otherpub, bundle, NULL};
        const char *json[] = {"flotilla", "apply", "--db", e->dbarg,
                              "--log-file", e->log, "--trust", otherpub,
                              "--json", bundle, NULL};
        json_t *j = NULL;

        s_cli(&r, argv);
        s_expect(&r, 3, "bundle is signed by unknown key");
        fl_test_proc_release(&r);
        /* With --json, a script reads the refusal on stdout. */
        s_cli(&r, json);
        s_expect(&r, 3, NULL);
        j = json_loads(r.out, 0, NULL);
        assert_true(json_is_false(json_object_get(j, "ok")));
        assert_non_null(strstr(json_string_value(json_object_get(
                                   json_object_get(j, "error"), "message")),
                               "signed by unknown key"));
        json_decref(j);
        fl_test_proc_release(&r);
    }
    {
        FILE *in = fopen(bundle, "rb"), *out = fopen(tampered, "wb");
        int c, i = 0;
        assert_non_null(in);
        assert_non_null(out);
        while ((c = fgetc(in)) != EOF)
            fputc(i++ == 200 ? c ^ 0x01 : c, out);
        fclose(in);
        fclose(out);
        const char *argv[] = {"flotilla", "apply", "--db", e->dbarg, "--log-file",
                              e->log, "--trust", pub, tampered, NULL};
        s_cli(&r, argv);
        s_expect(&r, 3, "bundle");
        fl_test_proc_release(&r);
    }
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    free(after);
    {
        const char *argv[] = {"flotilla", "apply", "--db", e->dbarg, "--log-file",
                              e->log, "--trust", pub, "--require-signed",
                              "--environment", "test", bundle, NULL};
        s_cli(&r, argv);
        s_expect(&r, 0, "applied 1 migration");
        fl_test_proc_release(&r);
    }
    id = s_value(e, "SELECT bundle_id FROM flotilla.schema_migrations");
    assert_non_null(id);
    assert_true(strlen(id) > 8);
    sql = fl_asprintf("SELECT count(*) FROM flotilla.migration_logs WHERE bundle_id = '%s'", id);
    {
        char *n = s_value(e, sql);
        assert_true(strtol(n, NULL, 10) >= 4);
        free(n);
    }
    {
        /* status names each migration's bundle, whole. */
        const char *argv[] = {"flotilla", "status", "--db", e->dbarg, NULL};
        char *want = fl_asprintf("bundle %s", id);

        s_cli(&r, argv);
        s_expect(&r, 0, want);
        fl_test_proc_release(&r);
        free(want);
    }
    /*
     * A bundle id cut short (rollout list shows 16 digits) is no id, and
     * an id no migration of the ledger has rolls nothing back: both are
     * errors.  Before, each said "rolled back 0 migrations", exit 0
     * (found by an audit).
     */
    {
        char shortid[17];
        const char *argv[] = {"flotilla", "rollback", "--db", e->dbarg,
                              "--log-file", e->log, "--trust", pub,
                              "--bundle", shortid, bundle, NULL};

        snprintf(shortid, sizeof(shortid), "%s", id);
        s_cli(&r, argv);
        s_expect(&r, 2, "is not a bundle id");
        fl_test_proc_release(&r);
    }
    {
        const char *argv[] = {"flotilla", "rollback", "--db", e->dbarg,
                              "--log-file", e->log, "--trust", pub,
                              "--bundle", "0123456789abcdef0123456789abcdef",
                              bundle, NULL};
        s_cli(&r, argv);
        s_expect(&r, 1, "no migration of bundle 0123456789abcdef0123456789"
                        "abcdef is in the ledger");
        fl_test_proc_release(&r);
    }
    s_assert_value(e, "SELECT count(*) FROM flotilla.schema_migrations WHERE"
                      " status = 'applied'", "1");
    {
        /* Down comes from the bundle that was applied, verified again. */
        const char *argv[] = {"flotilla", "rollback", "--db", e->dbarg,
                              "--log-file", e->log, "--trust", pub,
                              "--bundle", id, bundle, NULL};
        s_cli(&r, argv);
    }
    s_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(id);
    free(sql);
    free(key);
    free(keyfile);
    free(pub);
    free(other);
    free(otherpub);
    free(bundle);
    free(tampered);
}

/*
 * --to names a migration of the source: apply and plan --to 20 where the
 * source has 1 and 2 are refused (exit 3), nothing applied, as Flyway
 * refuses a target it does not have.  Before, a mistyped --to applied
 * every migration (found by an audit).
 */
static void
test_to_names_a_migration_of_the_source(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE a (id int);\n"
                             "-- flotilla:down\nDROP TABLE a;\n");
    s_write(e, "0002_b.sql", "-- flotilla:up\nCREATE TABLE b (id int);\n"
                             "-- flotilla:down\nDROP TABLE b;\n");
    s_run(e, &r, "plan", 1, "--to", "20", NULL);
    s_expect(&r, 3, "--to 20: the source has no migration of that version");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, "--to", "20", NULL);
    s_expect(&r, 3, "--to 20: the source has no migration of that version");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_tables WHERE tablename IN"
                      " ('a', 'b')", "0");
    s_run(e, &r, "apply", 1, "--to", "1", NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_tables WHERE tablename IN"
                      " ('a', 'b')", "1");
}

static void
test_large_table_backup_goes_to_a_file_and_restores(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *bdir = fl_asprintf("%s/backups", e->dir);
    char *before = fl_test_canonical_dump(e->conn);
    char *after = NULL, *file = NULL;

    s_write(e, "0001_drop_legacy.sql",
            "-- flotilla:options allow=ban-drop-column no reader left\n"
            "-- flotilla:options allow=require-concurrent-index-creation down"
            " puts back the index up dropped\n"
            "-- flotilla:options allow=constraint-missing-not-valid and the"
            " check\n"
            "-- flotilla:up\n"
            "UPDATE users SET n = -n;\n"
            "ALTER TABLE users DROP COLUMN legacy;\n"
            "-- flotilla:down\n"
            "ALTER TABLE users ADD COLUMN legacy text DEFAULT 'none' NOT NULL;\n"
            "CREATE INDEX users_legacy_idx ON users (legacy);\n"
            "ALTER TABLE users ADD CONSTRAINT users_legacy_chk CHECK (legacy <> '');\n");
    /* Every table is "large" above 1 byte. */
    s_run(e, &r, "apply", 1, "--backup-dump-above", "1", "--backup-dir", bdir, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT kind || ' ' || row_count || ' ' || length(dump_sha256)"
                      " FROM flotilla.backups", "dump 200 64");
    s_assert_value(e, "SELECT count(*) FROM pg_tables WHERE schemaname = 'flotilla_backup'", "0");
    file = s_value(e, "SELECT location FROM flotilla.backups");
    assert_non_null(strstr(file, bdir));
    assert_int_equal(access(file, R_OK), 0);
    s_run(e, &r, "rollback", 0, "--last", NULL);
    s_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(before, after);
    free(after);
    /* Apply again, then damage the file: the rollback refuses. */
    s_run(e, &r, "apply", 1, "--backup-dump-above", "1", "--backup-dir", bdir, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    free(file);
    file = s_value(e, "SELECT location FROM flotilla.backups WHERE restored_at IS NULL");
    {
        FILE *f = fopen(file, "r+b");
        assert_non_null(f);
        fseek(f, 40, SEEK_SET);
        fputc(0x5a, f);
        fclose(f);
    }
    s_run(e, &r, "rollback", 0, "--last", NULL);
    s_expect(&r, 1, "has changed since it was written");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations", "applied");
    fl_test_exec(e->conn, "UPDATE flotilla.backups SET created_at = now() - interval '2 days'");
    /* The restored backup was released by the rollback; one is left. */
    s_run(e, &r, "backups", 0, "prune", "--older-than", "1d", NULL);
    s_expect(&r, 0, "pruned 1 backup");
    fl_test_proc_release(&r);
    assert_int_not_equal(access(file, F_OK), 0);
    free(before);
    free(file);
    free(bdir);
}

static void
test_password_never_reaches_output_or_log(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    const char *dsn = "postgresql://admin:hunter2secret@127.0.0.1:1/app";
    const char *argv[] = {"flotilla", "apply", "--db", dsn, "--log-file", e->log,
                          e->mdir, NULL};
    FILE *f = NULL;
    char line[4096];

    s_write(e, "0001_a.sql", "-- flotilla:up\nSELECT 1;\n-- flotilla:down\nSELECT 1;\n");
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    s_expect(&r, 4, "could not connect to database \"app@127.0.0.1:1\"");
    assert_null(strstr(r.out, "hunter2secret"));
    assert_null(strstr(r.err, "hunter2secret"));
    fl_test_proc_release(&r);
    f = fopen(e->log, "r");
    while (f && fgets(line, sizeof(line), f))
        assert_null(strstr(line, "hunter2secret"));
    if (f)
        fclose(f);
}

/* The rehearsal reports what each statement really locked and rewrote. */
static void
test_plan_observes_locks_and_rewrites(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    json_error_t jerr;
    json_t *o = NULL, *sts = NULL;
    char *dump = fl_test_canonical_dump(e->conn), *after = NULL;

    s_write(e, "0001_types.sql",
            "-- flotilla:options allow=changing-column-type users is small\n"
            "-- flotilla:up\n"
            "ALTER TABLE users ADD COLUMN z int;\n"
            "ALTER TABLE users ALTER COLUMN n TYPE bigint;\n"
            "-- flotilla:down\nALTER TABLE users ALTER COLUMN n TYPE int;\n"
            "ALTER TABLE users DROP COLUMN z;\n");
    s_run(e, &r, "plan", 1, "--json", NULL);
    s_expect(&r, 0, NULL);
    o = json_loads(r.out, 0, &jerr);
    assert_non_null(o);
    sts = json_object_get(json_array_get(json_object_get(o, "migrations"), 0),
                          "statements");
    assert_int_equal(json_array_size(sts), 2);
    /* ADD COLUMN: an ACCESS EXCLUSIVE lock, no rewrite. */
    assert_string_equal(json_string_value(json_array_get(json_object_get(
        json_array_get(sts, 0), "observed_locks"), 0)), "public.users AccessExclusiveLock");
    assert_int_equal(json_array_size(json_object_get(json_array_get(sts, 0),
                                                     "observed_rewrites")), 0);
    /* ALTER COLUMN TYPE int -> bigint rewrites the table. */
    assert_string_equal(json_string_value(json_array_get(json_object_get(
        json_array_get(sts, 1), "observed_rewrites"), 0)), "public.users");
    json_decref(o);
    fl_test_proc_release(&r);
    after = fl_test_canonical_dump(e->conn);
    assert_string_equal(dump, after);
    free(dump);
    free(after);
}

static json_t *
s_json(const fl_test_proc_t *r)
{
    json_error_t jerr;
    json_t *o = json_loads(r->out, 0, &jerr);

    if (o == NULL)
        fail_msg("not JSON (%s): %s", jerr.text, r->out);
    return o;
}

/*
 * A COMMIT that fails (a deferred foreign key, checked there) commits
 * nothing, and the run says so.  A migration in a transaction whose
 * COMMIT fails is failed, not applied: its ledger row says failed with
 * no statement done, apply's JSON counts it failed and plan does not
 * call it OK.  A statement of a migration without a transaction whose
 * COMMIT fails is not counted done: the next apply runs it again.
 * Before, the first was reported applied ("its COMMIT ran, with its
 * ledger row") with no row at all, plan said OK, and the second counted
 * the statement done, so the resume skipped it for good (found by an
 * audit).
 */
static void
test_a_commit_that_fails_commits_nothing(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    json_t *o = NULL;
#define S_ROW(v) "SELECT status || ' ' || statements_done FROM"            \
                 " flotilla.schema_migrations WHERE version = '" v "'"

    fl_test_exec(e->conn,
        "CREATE TABLE parent (id int PRIMARY KEY);"
        "INSERT INTO parent VALUES (1);"
        "CREATE TABLE child (pid int REFERENCES parent DEFERRABLE"
        " INITIALLY DEFERRED);");
    s_write(e, "0001_orphan.sql",
            "-- flotilla:up\n"
            "INSERT INTO child VALUES (42);\n"
            "-- flotilla:down\n"
            "DELETE FROM child WHERE pid = 42;\n");
    s_run(e, &r, "plan", 1, NULL);
    if (r.status == 0)
        fail_msg("plan says OK of a COMMIT that fails:\n%s%s", r.out, r.err);
    s_expect(&r, 3, "violates foreign key constraint");
    fl_test_proc_release(&r);
    s_run(e, &r, "apply", 1, "--json", NULL);
    s_expect(&r, 1, "violates foreign key constraint");
    o = s_json(&r);
    assert_int_equal(json_integer_value(json_object_get(o, "applied")), 0);
    if (strstr(r.out, "is applied") != NULL)
        fail_msg("apply says the migration is applied:\n%s", r.out);
    json_decref(o);
    fl_test_proc_release(&r);
    s_assert_value(e, S_ROW("1"), "failed 0");
    s_assert_value(e, "SELECT count(*) FROM child", "0");
    /* Put right, it applies. */
    fl_test_exec(e->conn, "INSERT INTO parent VALUES (42)");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM child WHERE pid = 42", "1");

    /* Without a transaction: its second statement's COMMIT fails. */
    s_write(e, "0002_orphan.sql",
            "-- flotilla:options no-transaction\n"
            "-- flotilla:up\n"
            "INSERT INTO parent VALUES (2);\n"
            "INSERT INTO child VALUES (43);\n"
            "INSERT INTO parent VALUES (3);\n"
            "-- flotilla:down\n"
            "DELETE FROM child WHERE pid = 43;\n"
            "DELETE FROM parent WHERE id IN (2, 3);\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 1, "violates foreign key constraint");
    fl_test_proc_release(&r);
    s_assert_value(e, S_ROW("2"), "failed 1");
    s_assert_value(e, "SELECT string_agg(id::text, ',' ORDER BY id) FROM"
                      " parent", "1,2,42");
    s_assert_value(e, "SELECT count(*) FROM child WHERE pid = 43", "0");
    /* The resume runs statement 2 again, then 3. */
    fl_test_exec(e->conn, "INSERT INTO parent VALUES (43)");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    s_assert_value(e, S_ROW("2"), "applied 3");
    s_assert_value(e, "SELECT count(*) FROM child WHERE pid = 43", "1");
    s_assert_value(e, "SELECT string_agg(id::text, ',' ORDER BY id) FROM"
                      " parent", "1,2,3,42,43");
#undef S_ROW
}

/* The --json outputs scripts read, and a failing down named by file. */
static void
test_json_outputs_and_rollback_failure_position(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    json_t *o = NULL;

    s_write(e, "0001_drop_legacy.sql",
            "-- flotilla:options allow=ban-drop-column gone\n"
            "-- flotilla:up\nALTER TABLE users DROP COLUMN legacy;\n"
            "-- flotilla:down\nALTER TABLE users ADD COLUMN legacy text;\n");
    s_write(e, "0002_bad_down.sql",
            "-- flotilla:options allow=ban-drop-column a down that fails\n"
            "-- flotilla:up\nALTER TABLE users ADD COLUMN z int;\n"
            "-- flotilla:down\nALTER TABLE users DROP COLUMN z;\n"
            "ALTER TABLE no_such_table DROP COLUMN z;\n");
    s_run(e, &r, "apply", 1, "--json", NULL);
    s_expect(&r, 0, NULL);
    o = s_json(&r);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "applied")), 2);
    json_decref(o);
    fl_test_proc_release(&r);
    s_run(e, &r, "status", 0, "--json", NULL);
    s_expect(&r, 0, NULL);
    o = s_json(&r);
    assert_string_equal(json_string_value(json_object_get(json_array_get(
        json_object_get(o, "migrations"), 1), "status")), "applied");
    assert_int_equal(json_array_size(json_object_get(o, "pending")), 0);
    json_decref(o);
    fl_test_proc_release(&r);
    s_run(e, &r, "backups", 0, "list", "--json", NULL);
    s_expect(&r, 0, NULL);
    o = s_json(&r);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(o, 0),
                                                        "rows")), 200);
    json_decref(o);
    fl_test_proc_release(&r);
    /* The down of 0002 fails: reported at its file and line, nothing undone. */
    s_run(e, &r, "rollback", 0, "--last", "--json", NULL);
    s_expect(&r, 1, "0002_bad_down.sql:6:1: relation \"no_such_table\" does not exist");
    o = s_json(&r);
    assert_false(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "rolled_back")), 0);
    json_decref(o);
    fl_test_proc_release(&r);
    s_assert_value(e, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass"
                      " AND attname = 'z' AND NOT attisdropped", "1");
    s_assert_value(e, "SELECT status FROM flotilla.schema_migrations WHERE version = '2'",
                   "applied");
}

/* The schema_state of status --json: after, changed ("t"/"f"), or "null". */
static char *
s_schema_state(s_env *e)
{
    fl_test_proc_t r;
    json_t *o = NULL, *st = NULL;
    char *v = NULL;

    s_run(e, &r, "status", 0, "--json", NULL);
    s_expect(&r, 0, NULL);
    o = s_json(&r);
    st = json_object_get(o, "schema_state");
    if (st == NULL)
        fail_msg("status --json has no schema_state: %s", r.out);
    v = json_is_null(st)
            ? fl_strdup("null")
            : fl_asprintf("%s %s", json_string_value(json_object_get(
                                       st, "recorded_after")),
                          json_is_true(json_object_get(st, "changed"))
                              ? "changed" : "as left");
    json_decref(o);
    fl_test_proc_release(&r);
    return v;
}

static void
s_assert_schema_state(s_env *e, const char *want)
{
    char *got = s_schema_state(e);

    if (strcmp(got, want) != 0)
        fail_msg("schema_state: expected \"%s\", got \"%s\"", want, got);
    free(got);
}

/*
 * A schema changed outside flotilla since it last applied or rolled back
 * something (a DBA's index, a setting given to the database) is said by
 * status, and by apply before it runs anything; what flotilla did itself
 * never is.  Before, nothing compared the fingerprint recorded after
 * each migration with anything: the next apply absorbed the change
 * silently.
 */
static void
test_status_and_apply_say_when_the_schema_changed_outside_flotilla(
    void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *sql = NULL;

    s_assert_schema_state(e, "null"); /* nothing recorded yet */
    s_write(e, "0001_t.sql", "-- flotilla:up\n"
            "CREATE TABLE t (id int PRIMARY KEY, v text);\n"
            "-- flotilla:down\nDROP TABLE t;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_assert_schema_state(e, "apply 1 as left");
    /* A DBA's index. */
    fl_test_exec(e->conn, "CREATE INDEX t_v ON t (v)");
    s_assert_schema_state(e, "apply 1 changed");
    s_run(e, &r, "status", 1, NULL);
    s_expect(&r, 0, "SCHEMA CHANGED: the schema differs from the one "
                    "flotilla left after apply 1");
    fl_test_proc_release(&r);
    /* The next apply says so before it runs anything, then records. */
    s_write(e, "0002_w.sql", "-- flotilla:up\n"
            "ALTER TABLE t ADD COLUMN w int;\n"
            "-- flotilla:down\nALTER TABLE t DROP COLUMN w;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, "differs from the one flotilla left after apply 1");
    fl_test_proc_release(&r);
    s_assert_schema_state(e, "apply 2 as left");
    /* A rollback is flotilla's own change. */
    s_run(e, &r, "rollback", 0, "--last", NULL);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_assert_schema_state(e, "rollback 2 as left");
    /* A setting given to the database, which pg_dump does not show. */
    sql = fl_asprintf("ALTER DATABASE %s SET work_mem = '7MB'", e->db.name);
    fl_test_exec(e->conn, sql);
    s_assert_schema_state(e, "rollback 2 changed");
    free(sql);
    /* A repeatable migration's run is flotilla's own change too. */
    s_write(e, "R__v.sql", "-- flotilla:up\n"
            "CREATE OR REPLACE VIEW v AS SELECT id FROM t;\n");
    s_run(e, &r, "apply", 1, NULL);
    s_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    s_assert_schema_state(e, "repeatable v as left");
    /*
     * So is a rollback that cannot prove the schema (its migration's
     * changes were not recorded): it still records what it left.
     */
    fl_test_exec(e->conn, "UPDATE flotilla.schema_migrations"
                          " SET schema_recorded = false WHERE version = '2'");
    s_run(e, &r, "rollback", 0, "--last", NULL);
    s_expect(&r, 0, "is not proven");
    fl_test_proc_release(&r);
    s_assert_schema_state(e, "rollback 2 as left");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_column_is_idempotent_when_it_exists, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rename_via_add_copy_drop_and_rollback, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_transform_then_set_not_null, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_validation_refuses_null_emails_with_count_and_changes_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_drop_column_rollback_restores_schema_and_data, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_update_rollback_restores_old_values, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_apply_locks_no_sequence_the_migration_does_not_use, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_net_reads_a_sequence_the_migration_before_made, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_plan_changes_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_plan_observes_locks_and_rewrites, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_create_index_concurrently_and_resume_after_failure, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_commit_that_fails_commits_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lock_timeout_retries_reports_blocker_then_succeeds, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lock_retry_waits_without_holding_locks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lock_retry_of_a_migration_that_prepares, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_lock_retry_waits_without_holding_locks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_lock_retry_of_a_down_that_prepares, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_lock_retry_of_a_no_transaction_down, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_two_applies_at_once_apply_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_kill_9_mid_migration_applies_nothing_then_rerun_succeeds, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_drift_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_log_and_status_show_the_run, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lint_error_refuses_unless_allowed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_locks_shows_blocker_and_waiter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_and_statement_timeout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_timeout_a_migration_sets_governs_its_statements_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_no_transaction_migration_keeps_its_settings, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_a_migration_may_set_its_role,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_migration_may_set_its_session_authorization, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_no_setting_of_a_migration_leaks_into_the_next, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_read_only_default_a_migration_sets_leaves_flotillas_writes_alone,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_exit_on_error_set_by_a_migration_fails_closed, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_migration_leaves_no_session_state_to_the_next, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_migration_cannot_release_the_target_lock, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_migration_cannot_change_flotillas_own_tables, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_migration_cannot_write_a_foreign_table, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_migration_cannot_change_large_objects, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_down_cannot_change_flotillas_own_tables, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_migration_that_deallocates_flotillas_statements, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_lost_target_lock_taken_by_another_session, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_signed_bundle_apply_and_rollback_by_bundle, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_rollback_from_another_bundle_is_held_to_its_scope, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_an_expired_bundle_rolls_back_and_applies_no_more, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_every_json_command_says_its_failure_as_json, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_deep_statement_applies_or_is_refused_never_a_crash,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_sigterm_ends_a_command_on_its_thread, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_large_table_backup_goes_to_a_file_and_restores, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_password_never_reaches_output_or_log, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_json_outputs_and_rollback_failure_position, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_status_and_apply_say_when_the_schema_changed_outside_flotilla, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_new_scaffolds_next_version_and_backups_prune, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_status_and_log_refuse_a_schema_that_is_not_there, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_to_names_a_migration_of_the_source, s_setup, s_teardown),
    };
    /* One test or a few while working on them: a cmocka name pattern. */
    if (getenv("FLOTILLA_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("FLOTILLA_TEST_FILTER"));
    return cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
}
