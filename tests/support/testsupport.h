/*
 * testsupport.h - helpers shared by Flotilla's tests.
 *
 * Scratch databases: every integration test gets its own database on the
 * throwaway PostgreSQL that tests/run.sh starts (its settings arrive in
 * the standard PGHOST/PGPORT/PGUSER variables), created before and dropped
 * after the test.  Log capture: a sink that keeps every event for
 * assertions.  Processes: run a built executable with arguments and
 * collect its exit status and output.
 */
#ifndef FL_TESTSUPPORT_H
#define FL_TESTSUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/log.h"

typedef struct {
    char name[64];     /* database name */
    char *conninfo;    /* "dbname=NAME" plus the environment's settings */
} fl_test_db_t;

/*
 * Creates a fresh database named after prefix; fails the test (cmocka
 * fail_msg) with PostgreSQL's message when it cannot.
 */
void fl_test_db_create(fl_test_db_t *db, const char *prefix);
/* Drops it (WITH (FORCE)) and frees conninfo. */
void fl_test_db_drop(fl_test_db_t *db);
/*
 * Creates role name (NOLOGIN) unless it exists; tests running at once may
 * both try.
 */
void fl_test_create_role(const char *name);
/* Opens a connection to it or fails the test. */
PGconn *fl_test_db_connect(const fl_test_db_t *db);
/* Runs sql, failing the test unless it succeeds. */
void fl_test_exec(PGconn *conn, const char *sql);
/* Runs a query returning one value; returns a new string (NULL for NULL). */
char *fl_test_query_value(PGconn *conn, const char *sql);
/* Fails the test unless sql's single value is expected (NULL never is). */
void fl_test_expect_value(PGconn *conn, const char *sql, const char *expected);
/*
 * A canonical dump of every user schema (all but pg_*, information_schema,
 * flotilla and flotilla_backup): each column by name with type, default
 * and nullability; each constraint, index and view definition; and every
 * row of every table as JSON with keys sorted, rows sorted.  Columns are
 * listed by name, so a column re-added at another position compares
 * equal; nothing else may differ.  Returns a new string.
 */
char *fl_test_canonical_dump(PGconn *conn);
/*
 * The full picture guarantee 3 of DESIGN.md promises a rollback returns
 * to, taken without the product's own catalog SQL: `pg_dump
 * --schema-only` of every schema but flotilla and flotilla_backup
 * (columns with type, default, nullability, identity and generation;
 * constraints, indexes, views, types, functions, triggers with their
 * enabled state, sequence definitions and ownership, comments, table and
 * column grants, owners), normalised (comment, blank and SET lines
 * dropped; the lines of each CREATE TABLE sorted, so columns compare by
 * name), then one line "sequence S last_value=N is_called=B" per
 * sequence, then every row of every table as JSON, keys and rows sorted.
 * The server binaries come from FL_PG_BIN (default
 * /usr/lib/postgresql/15/bin).  Returns a new string.
 */
char *fl_test_canonical_dump_full(PGconn *conn);
/*
 * Removes from a dump, in place, the lines that start with prefix (e.g.
 * "sequence public.s " for a sequence that moves whatever happens).
 */
void fl_test_dump_without(char *dump, const char *prefix);
/*
 * A unified diff of two dumps (labels expected and actual), or NULL when
 * they are equal.  Returns a new string.
 */
char *fl_test_diff(const char *expected, const char *actual);
/*
 * Fails the test when expected and actual differ, printing what (the
 * comparison) and their diff on stderr first.
 */
void fl_test_assert_dumps_equal(const char *what, const char *expected,
                                const char *actual);

/* True when tests/run.sh (or the caller) set up a server: PGHOST is set. */
int fl_test_have_postgres(void);

/*
 * Runs the tests of group name (n of them) that FLOTILLA_TEST_PART=K/N
 * selects: the Kth, the (K+N)th, ... (from 1; all without it), so that
 * a long suite runs as N ctest entries side by side.  cmocka's result.
 */
struct CMUnitTest;
int fl_test_run_part(const char *name, const struct CMUnitTest *tests,
                     size_t n);

/* Captured log events. */
typedef struct {
    char **lines;  /* each event as JSON (fl_log_record_json) */
    size_t count;
} fl_test_log_t;

void fl_test_log_start(fl_test_log_t *cap);
void fl_test_log_stop(fl_test_log_t *cap);
/* True when some captured line contains needle. */
int fl_test_log_contains(const fl_test_log_t *cap, const char *needle);

/* Result of running a process. */
typedef struct {
    int status;      /* exit code, or 128+signal */
    char *out;       /* stdout, NUL-terminated */
    char *err;       /* stderr, NUL-terminated */
} fl_test_proc_t;

/*
 * Runs FLOTILLA_BIN_DIR/name with argv (NULL-terminated, argv[0] ignored),
 * feeding stdin_data (may be NULL) and waiting at most timeout_s seconds
 * (scaled by FLOTILLA_TEST_TIMEOUT_SCALE).  Fails the test if it cannot.
 */
void fl_test_run(fl_test_proc_t *res, const char *name, const char *const *argv,
                 const char *stdin_data, int timeout_s);
/* The same, run in directory cwd (NULL: the current one). */
void fl_test_run_in(fl_test_proc_t *res, const char *cwd, const char *name,
                    const char *const *argv, const char *stdin_data,
                    int timeout_s);
void fl_test_proc_release(fl_test_proc_t *res);
/*
 * Runs FLOTILLA_BIN_DIR/name (argv as for fl_test_run) on a new pseudo
 * terminal, a terminal of cols x 24, stdin and stdout and stderr all on
 * it, waiting at most timeout_s seconds (scaled): res->out gets
 * everything written to the terminal (the pty turns "\n" into "\r\n"),
 * res->err is empty.  For output meant for people at a terminal.
 */
void fl_test_run_pty(fl_test_proc_t *res, const char *name,
                     const char *const *argv, int cols, int timeout_s);
/*
 * A process started in the background, its output going to files, for
 * tests that signal it while it runs.
 */
typedef struct {
    int pid;
    char *out_path;
    char *err_path;
} fl_test_child_t;

/*
 * Starts FLOTILLA_BIN_DIR/name (argv as for fl_test_run) in cwd (NULL:
 * the current one), stdin empty, stdout and stderr to files beside
 * nothing else.  Fails the test if it cannot.
 */
void fl_test_spawn(fl_test_child_t *c, const char *cwd, const char *name,
                   const char *const *argv);
/* Sends sig to it. */
void fl_test_child_signal(const fl_test_child_t *c, int sig);
/*
 * Waits at most timeout_s seconds (scaled) for it to end and collects its
 * status and output into res (as fl_test_run); kills it and fails the
 * test when it does not end.
 */
void fl_test_child_wait(fl_test_child_t *c, fl_test_proc_t *res, int timeout_s);

/*
 * Runs `flotilla CMD --db CONNINFO [--log-file LOG] EXTRA... [SOURCE]` in
 * cwd (NULL: the current directory) for at most 120 s; --log-file only for
 * apply and rollback, and only when log is not NULL.  extra is
 * NULL-terminated and may be NULL, as may source.
 */
void fl_test_flotilla(fl_test_proc_t *res, const char *cwd, const char *conninfo,
                      const char *log, const char *cmd, const char *const *extra,
                      const char *source);


/*
 * A workspace for tests that run the `flotilla` executable: a fresh
 * database with a connection to it, a temporary directory (the command's
 * working directory), a migrations directory "m" inside it and a log file
 * path.  fl_test_ws_close drops and removes all of it.
 */
typedef struct {
    fl_test_db_t db;
    PGconn *conn;
    char *dir;
    char *mdir;
    char *log;
} fl_test_ws_t;

void fl_test_ws_open(fl_test_ws_t *ws, const char *prefix);
void fl_test_ws_close(fl_test_ws_t *ws);
/*
 * cmocka setup and teardown of a workspace (*state, database prefix
 * "ws"), for tests that need nothing else prepared.
 */
int fl_test_ws_setup(void **state);
int fl_test_ws_teardown(void **state);
/*
 * Loads tests/fixtures/ledger/v4.sql, the ledger the release before text
 * versions wrote (0001, 0002 and 0010 applied, 0010's backup taken), into
 * the workspace's database and writes the migrations it records into mdir,
 * 0010's down section being down10 (NULL: "SELECT 1;\n", as applied).
 */
void fl_test_ws_ledger_v4(fl_test_ws_t *ws, const char *down10);
/* Writes file (a name under mdir) with text. */
void fl_test_ws_write(fl_test_ws_t *ws, const char *file, const char *text);
/* Runs flotilla CMD against the workspace; SOURCE is mdir if with_source. */
void fl_test_ws_flotilla(fl_test_ws_t *ws, fl_test_proc_t *res, const char *cmd,
                         const char *const *extra, int with_source);
/* Starts flotilla CMD against the workspace in the background. */
void fl_test_ws_spawn(fl_test_ws_t *ws, fl_test_child_t *c, const char *cmd,
                      const char *const *extra, int with_source);
/*
 * Waits (bounded) until a query of the workspace's database returns "t":
 * for a test that awaits what another process does on the server.
 */
void fl_test_ws_await(fl_test_ws_t *ws, const char *sql, int timeout_s);
/*
 * fl_test_ws_await for a condition a running child must bring about: when
 * the child ends first, or the time runs out, the failure says how it
 * ended and what it printed, and what its sessions were doing.
 */
void fl_test_ws_await_child(fl_test_ws_t *ws, fl_test_child_t *c,
                            const char *sql, int timeout_s);
/*
 * Fails the test unless res exited with status and, when needle is not
 * NULL, said needle on stdout or stderr.
 */
void fl_test_expect(const fl_test_proc_t *res, int status, const char *needle);

/* FLOTILLA_TEST_TIMEOUT_SCALE (default 1): every timeout is multiplied. */
double fl_test_timeout_scale(void);

/*
 * For generative tests: the positive number in environment variable name
 * (dflt when unset or empty; fails the test on anything else), and the
 * next number of a splitmix64 sequence (deterministic on every platform).
 */
long fl_test_env_long(const char *name, long dflt);
uint64_t fl_test_rng_next(uint64_t *state);

/*
 * Runs seed(n, alone, arg) for n = 1 to FLOTILLA_GEN_SEEDS (default
 * dflt), or for FLOTILLA_GEN_SEED alone (alone then 1: the seed prints
 * everything); seed returns nonzero when n failed, after printing why.
 * Fails the test with how many failed.
 */
typedef int (*fl_test_seed_fn)(long n, int alone, void *arg);
void fl_test_gen_seeds(long dflt, fl_test_seed_fn seed, void *arg);

/*
 * For fl_test_ws_await: a `flotilla` session of the workspace's database
 * is running "SELECT pg_sleep(600)" (a test's migration that sleeps), and
 * none is left.
 */
#define FL_TEST_SLEEPING                                                    \
    "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name ="    \
    " 'flotilla' AND datname = current_database() AND state = 'active'"     \
    " AND query = 'SELECT pg_sleep(600)'"
#define FL_TEST_GONE                                                        \
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name ="    \
    " 'flotilla' AND datname = current_database()"
/* The `flotilla` sessions of the workspace's database waiting for a lock
 * (a WHERE clause of pg_stat_activity). */
#define FL_TEST_LOCK_WAITERS                                                \
    " application_name = 'flotilla' AND datname = current_database()"      \
    " AND wait_event_type = 'Lock'"

/* Makes a fresh temporary directory; returns a new path. */
char *fl_test_tmpdir(void);
/* Removes a directory tree (rm -rf). */
void fl_test_rmtree(const char *path);
/* Writes a file (mode 0644) or fails the test. */
void fl_test_write_file(const char *path, const char *content);
/* Path of a file under the source tree; new string. */
char *fl_test_source_path(const char *rel);

#endif
