/*
 * store.h - the coordinator's durable state: the control database
 * (PostgreSQL, schema flotilla_control), written from its own thread.
 *
 * Tables (docs/fleet.md): agents, targets, bundles, dispatches, commands
 * (one per target of a dispatch, with its outcome), rollouts, events;
 * meta holds the schema version, which the coordinator creates and
 * upgrades, and writer the count of the writer's transactions.
 *
 * Before the event loop starts, the coordinator opens the store
 * (connects, takes the store's advisory lock so that two coordinators
 * never share a control database, creates or upgrades the schema) and
 * loads its state with fl_store_query().  Then fl_store_start() hands the
 * connection to the writer thread and every write becomes a job: the
 * loop fills a job (a statement with parameters, or rows for one of the
 * bulk tables in COPY text format), submits it, and gets it back through
 * fl_store_finished() once it is committed, with its done callback run
 * on the loop's thread.  The writer commits everything queued at the
 * time in one transaction (up to batch_rows rows), so that a dispatch of
 * 100,000 targets is a handful of transactions, not 100,000.
 *
 * Failures: a lost connection (or a serialization failure) retries the
 * whole batch after reconnecting, with backoff, for ever: nothing is
 * acknowledged or sent before it is written, so waiting is safe.  A
 * batch whose COMMIT went unanswered may have committed: each batch's
 * transaction sets the writer's count (flotilla_control.writer) to its
 * own number, and the retry, once its new session holds the lock (so
 * the old session, and its transaction, are over), reads the count
 * first and does not write again what committed.  A lock timeout, a
 * cancelled statement or a read-only server is retried the same way.
 * Any other error means the database refuses the write for good: the
 * batch's jobs and every later one fail (their callbacks get the error)
 * and fl_store_broken() says why, for the coordinator to stop, so that
 * the database always holds a prefix, in order, of what it was told
 * (never a dispatch without its commands) and a restart loads that.
 * Each coordinator writes its own token beside the count when it opens
 * the store, and each transaction checks it: one whose session was
 * ended while another coordinator took the database over finds out at
 * its next write, and stops the same way rather than write over it.
 */
#ifndef FL_COORDINATOR_STORE_H
#define FL_COORDINATOR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

#define FL_STORE_SCHEMA_VERSION 9

typedef struct fl_store fl_store_t;

typedef enum {
    FL_STORE_SQL = 0,   /* sql with text params */
    FL_STORE_TARGETS,   /* rows: name, agent_key, kind, environment,
                           labels (json), ledger (json), known, error,
                           reported */
    FL_STORE_COMMANDS,  /* rows: id, dispatch_id, rollout, target,
                           agent_key, action, released, wave,
                           position */
    FL_STORE_RESULTS,   /* rows: id, status, version, duration_ms, message,
                           error, detail, hint, sqlstate, reconciled, seq */
    FL_STORE_EVENTS,    /* rows: kind, agent_key, target, dispatch_id,
                           step, status, message */
    FL_STORE_KINDS
} fl_store_kind;

typedef struct fl_store_job fl_store_job_t;

/* Runs on the loop's thread once the job is committed (rc 0) or failed. */
typedef void (*fl_store_done_fn)(fl_store_job_t *job, int rc,
                                 const fl_error_t *err, void *arg);

struct fl_store_job {
    fl_store_kind kind;
    char *sql;                /* FL_STORE_SQL */
    char **params;            /* nparams text parameters; NULL = SQL NULL */
    int nparams;
    fl_buf_t rows;            /* bulk kinds: COPY text, one line per row */
    size_t nrows;
    fl_store_done_fn done;    /* may be NULL */
    void *arg;
    void (*release)(void *arg); /* frees arg when the job is freed; may
                                   be NULL */
    /* Filled by the store. */
    int rc;
    fl_error_t err;
};

/*
 * Connects to dsn, takes the control database's lock, creates or
 * upgrades the schema.  *out is new.  FL_EDB with PostgreSQL's message,
 * FL_ECONFLICT when another coordinator holds the lock.  dsn is never
 * logged or shown but redacted.
 */
int fl_store_open(fl_store_t **out, const char *dsn, int64_t batch_rows,
                  fl_error_t *err) FL_NODISCARD;

/* A query result: rows of text values (NULL for SQL NULL). */
typedef struct {
    size_t nrows, ncols;
    char **values;
} fl_store_rows_t;

/*
 * Runs a query on the store's connection and fills out (released with
 * fl_store_rows_release).  Only before fl_store_start(): afterwards the
 * connection belongs to the writer thread.
 */
int fl_store_query(fl_store_t *st, fl_store_rows_t *out, const char *sql,
                   int nparams, const char *const *params,
                   fl_error_t *err) FL_NODISCARD;
const char *fl_store_value(const fl_store_rows_t *r, size_t row, size_t col);
void fl_store_rows_release(fl_store_rows_t *r);

/* Starts the writer thread. */
int fl_store_start(fl_store_t *st, fl_error_t *err) FL_NODISCARD;

/* A new job of kind, for the caller to fill and submit. */
fl_store_job_t *fl_store_job_new(fl_store_kind kind);
/* Frees a job (after its callback); accepts NULL. */
void fl_store_job_free(fl_store_job_t **job);
/* Sets sql and copies n text parameters (NULL entries are SQL NULL). */
void fl_store_job_sql(fl_store_job_t *job, const char *sql, int n,
                      const char *const *params);
/*
 * Appends one field of a bulk row in COPY text format (escaping
 * backslash, tab, newline and carriage return; NULL is \N); last ends the
 * row.  The caller cleans text from peers first (invalid UTF-8).
 */
void fl_store_field(fl_store_job_t *job, const char *value, int last);
void fl_store_field_int(fl_store_job_t *job, int64_t value, int last);

/*
 * Queues a job (taking ownership) for the writer thread.  Loop thread
 * only.  After fl_store_stop() has begun the job is failed at once.
 */
void fl_store_submit(fl_store_t *st, fl_store_job_t *job);

/* Readable while finished jobs wait for the loop (for poll). */
int fl_store_fd(const fl_store_t *st);

/*
 * Takes one finished job, or NULL: the caller runs its callback through
 * fl_store_complete(), which also frees it.
 */
fl_store_job_t *fl_store_finished(fl_store_t *st);
void fl_store_complete(fl_store_job_t *job);

/*
 * NULL, or why the store writes nothing more (a write the database
 * refused for good, or another coordinator's takeover): the coordinator
 * must stop.  Loop thread; set by the writer thread once.
 */
const char *fl_store_broken(fl_store_t *st);

/* Jobs submitted and not yet finished. */
size_t fl_store_backlog(fl_store_t *st);

/* Transactions committed, rows written, batches retried. */
void fl_store_stats(fl_store_t *st, uint64_t *transactions, uint64_t *rows,
                    uint64_t *retries);

/*
 * Writes what is queued (waiting at most wait_ms for the database), stops
 * the thread, closes the connection and frees the store; jobs never
 * finished are freed without their callbacks.  Accepts NULL.
 */
void fl_store_stop(fl_store_t **st, int64_t wait_ms);

#endif
