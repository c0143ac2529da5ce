/*
 * fleetsupport.h - the fleet integration tests' harness: the real
 * flotilla-coordinator and flotilla-agent binaries on loopback, each agent
 * beside one of the throwaway PostgreSQL servers tests/run.sh starts
 * (FLOTILLA_TEST_SHARDS: connection strings separated by ";"), the
 * coordinator's control database on the main server.
 *
 * A fleet lives in a fresh directory: certificates (the coordinator, an
 * operator, each agent), the agents and operators directories, two
 * release keys (one the agents trust, one only the coordinator trusts),
 * configurations, state directories and every log.  The directory is
 * removed when the test passes and kept (and named on stderr) when it
 * fails or FLOTILLA_KEEP_FLEET is set.  Waits poll the CLI or a log every
 * 50 ms up to a deadline scaled by FLOTILLA_TEST_TIMEOUT_SCALE.
 */
#ifndef FL_FLEETSUPPORT_H
#define FL_FLEETSUPPORT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <sys/types.h>

#include "pgproxy.h"
#include "testsupport.h"

#define FL_FLEET_MAX_AGENTS 8
#define FL_FLEET_MAX_DBS 80

typedef struct {
    char *name;
    int shard;          /* index into the fleet's shards */
    char *yaml;
    char *log;          /* the agent's JSON-lines log file */
    char *out;          /* its stdout and stderr */
    char *state;        /* its state directory */
    char *cert;         /* its certificate prefix */
    pid_t pid;          /* 0 when not running */
    int starts;         /* its log's start lines before this start */
} fl_fleet_agent_t;

typedef struct {
    char *prefix;
    char *dir;
    fl_test_db_t ctl;
    char *coord_yaml, *coord_log, *coord_out;
    char *coord_extra;
    pid_t coord_pid;
    char *agent_endpoint, *control_endpoint;
    fl_fleet_agent_t agents[FL_FLEET_MAX_AGENTS];
    int nagents;
    char *shards[3];
    int nshards;
    char *key;          /* release key the agents trust (PREFIX.key) */
    char *evil_key;     /* one only the coordinator trusts */
    struct {
        int shard;
        char name[64];
    } dbs[FL_FLEET_MAX_DBS]; /* created on the shards, dropped at close */
    int ndbs;
    int bundles;        /* built so far: the next one's sequence */
} fl_fleet_t;

/*
 * Makes the fleet's directory, certificates and keys and a control
 * database; coord_extra (may be NULL) is appended to the coordinator's
 * configuration.  Fails the test when the shards are not configured.
 */
void fl_fleet_open(fl_fleet_t *f, const char *prefix,
                   const char *coord_extra);
/*
 * Stops every daemon still running with SIGTERM and fails the test unless
 * each exits with 0 and no daemon's output (of any start) reports a
 * sanitizer error: the end of every test.
 */
void fl_fleet_stop_clean(fl_fleet_t *f);

/* Stops every process, drops the databases, removes the directory. */
void fl_fleet_close(fl_fleet_t *f);

/*
 * Starts the coordinator and waits for its "ready" line; the first start
 * learns its endpoints and pins them in its configuration, so a restart
 * listens where the agents connect.
 */
void fl_fleet_start_coordinator(fl_fleet_t *f);
/* Sends sig to the coordinator; waits for it to exit unless SIGSTOP/CONT. */
void fl_fleet_signal_coordinator(fl_fleet_t *f, int sig);

/*
 * Adds an agent beside shard: its certificate (enrolled when enrolled is
 * set: copied into the agents directory, then the coordinator, if it
 * runs, gets SIGHUP and is waited for) and configuration (yaml_tail
 * appended: targets, discover, ...).  The agent discovers and reads every
 * ledger every 5 s (discovery_interval, state_interval: each unless
 * yaml_tail sets it).  Returns its index.
 */
int fl_fleet_add_agent(fl_fleet_t *f, const char *name, int shard,
                       int enrolled, const char *yaml_tail);
void fl_fleet_start_agent(fl_fleet_t *f, int i);
/* Sends sig to agent i; waits for it to exit unless SIGSTOP/SIGCONT/HUP. */
void fl_fleet_signal_agent(fl_fleet_t *f, int i, int sig);
/*
 * Asks every running agent to discover its targets and read their ledgers
 * now (SIGHUP), unless it did less than a second ago (*asked_ms, 0 at
 * first): the agents of the tests do both every 5 s by themselves, and
 * each ledger read is a new connection.  An agent whose log has no start
 * line yet is skipped: before it handles signals, SIGHUP would end it (it
 * reads every ledger when it starts anyway).
 */
void fl_fleet_rediscover(fl_fleet_t *f, int64_t *asked_ms);

/* Runs `flotilla ARGV...` against the coordinator (at most 60 s, scaled). */
void fl_fleet_cli(fl_fleet_t *f, fl_test_proc_t *res,
                  const char *const *argv);
/* Starts `flotilla ARGV...` in the background, its output to out. */
pid_t fl_fleet_cli_spawn(fl_fleet_t *f, const char *const *argv,
                         const char *out);
/* Starts FLOTILLA_BIN_DIR/bin with argv (argv[0] ignored), output to out. */
pid_t fl_fleet_spawn(const char *bin, const char *const *argv,
                     const char *out);
/* Waits for a process (at most timeout_s, scaled); its exit status. */
int fl_fleet_wait_pid(pid_t pid, int timeout_s);

/* `flotilla CMD --json [--selector SEL]`, parsed (new). */
json_t *fl_fleet_json(fl_fleet_t *f, const char *cmd, const char *selector);

/*
 * Polls `flotilla CMD --json` until pred holds (at most timeout_s,
 * scaled); fails the test with what and the last output otherwise.
 */
typedef int (*fl_fleet_pred_fn)(const json_t *rows, void *arg);
void fl_fleet_wait(fl_fleet_t *f, const char *cmd, fl_fleet_pred_fn pred,
                   void *arg, int timeout_s, const char *what);

/* The row of `flotilla targets --json` (or agents) named name, or NULL. */
const json_t *fl_fleet_row(const json_t *rows, const char *key,
                           const char *name);

/* Polls a log file until it has a line containing needle. */
void fl_fleet_wait_log(const char *path, const char *needle, int timeout_s);
/* Waits until more than `than` lines of path hold needle (a log shared
 * by the tests of a group: the lines before this test's counted first). */
void fl_fleet_wait_log_more(const char *path, const char *needle, int than,
                            int timeout_s);
/* Lines of a file containing needle. */
int fl_fleet_log_count(const char *path, const char *needle);

/* Databases on shards (dropped at close), and connections to them. */
void fl_fleet_createdb(fl_fleet_t *f, int shard, const char *name);
/* The same as a copy of template_db (NULL: the default template). */
void fl_fleet_createdb_from(fl_fleet_t *f, int shard, const char *name,
                            const char *template_db);
void fl_fleet_dropdb(fl_fleet_t *f, int shard, const char *name);
PGconn *fl_fleet_connect(fl_fleet_t *f, int shard, const char *db);
/* A value of a query on a shard database (new string, NULL for NULL). */
char *fl_fleet_query(fl_fleet_t *f, int shard, const char *db,
                     const char *sql);
/*
 * How many of this fleet's migrations run pg_sleep on a shard now: active
 * flotilla sessions in a database whose name starts with f->prefix.  (Other
 * tests share the shards: counted server-wide, their sleepers were taken
 * for ours.)
 */
long fl_fleet_sleepers(fl_fleet_t *f, int shard);

/* How many files agent i's journal holds whose names end in suffix. */
int fl_fleet_journal_files(const fl_fleet_t *f, int i, const char *suffix);
/* A proxy (tests/support/pgproxy.h) to shard's server. */
fl_test_proxy_t *fl_fleet_proxy_to_shard(fl_fleet_t *f, int shard);

/*
 * Builds a bundle (environment "test", the next release sequence) of the
 * migrations directory dir, signed with key (f->key or f->evil_key), at
 * out.
 */
void fl_fleet_bundle(fl_fleet_t *f, const char *key, const char *dir,
                     const char *out);
/* The same, with more `bundle build` options (NULL-terminated, may be NULL). */
void fl_fleet_bundle_with(fl_fleet_t *f, const char *key, const char *dir,
                          const char *out, const char *const *extra);

/*
 * n migrations, 0001_m1.sql to 000n_mn.sql, the i-th making table mi
 * (its down dropping it), as the name and text pairs fl_fleet_bundle's
 * callers write, NULL-terminated (new: fl_fleet_files_free).
 */
char **fl_fleet_table_migrations(int n);
void fl_fleet_files_free(char **files);

/* A path in the fleet's directory (new string). */
char *fl_fleet_path(const fl_fleet_t *f, const char *name);

#endif
