/*
 * workers.h - the agent daemon's threads: a pool that runs pipelines,
 * ledger reads, discovery and bundle verification, so that the daemon's
 * event loop never waits on PostgreSQL.
 *
 * Two lanes: urgent work (commands, bundle verification) is taken before
 * background work (gathering ledger state, discovery), so that a fleet of
 * thousands of tenants being read after a reconnect does not delay a
 * dispatch.  A connection semaphore bounds the connections the workers
 * hold at once to the PostgreSQL server (max_connections), whatever the
 * number of threads: hundreds of tenant databases share one server.
 *
 * Jobs are opaque pointers: run(job, ctx) executes on a worker thread and
 * fl_workers_post() hands finished jobs (or anything else) back to the
 * loop, which polls fl_workers_fd() and takes them with
 * fl_workers_done().  Every function is thread safe.
 */
#ifndef FL_AGENT_WORKERS_H
#define FL_AGENT_WORKERS_H

#include <stddef.h>

typedef struct fl_workers fl_workers_t;

/* Runs one job on a worker thread; posts what it produces itself. */
typedef void (*fl_workers_fn)(void *job, void *ctx);

/*
 * Starts nthreads workers running run(job, ctx) and a semaphore of
 * nconns connections.  Returns a new pool (fl_workers_stop).
 */
fl_workers_t *fl_workers_start(int nthreads, int nconns, fl_workers_fn run,
                               void *ctx);

/* Queues a job: urgent ones go before every background one. */
void fl_workers_submit(fl_workers_t *w, void *job, int urgent);

/* Background jobs queued and not yet started. */
size_t fl_workers_backlog(fl_workers_t *w);

/* Hands item to the loop (from any thread). */
void fl_workers_post(fl_workers_t *w, void *item);

/* Readable while posted items wait; takes one, or NULL. */
int fl_workers_fd(const fl_workers_t *w);
void *fl_workers_done(fl_workers_t *w);

/* Takes and gives back one connection slot (workers only). */
void fl_workers_conn_acquire(fl_workers_t *w);
void fl_workers_conn_release(fl_workers_t *w);

/*
 * Stops taking jobs, waits for the running ones to end and joins the
 * threads; then calls drop(item) for every job never started and every
 * posted item not taken, and frees the pool.  Accepts NULL.
 */
void fl_workers_stop(fl_workers_t **w, void (*drop)(void *item));

#endif
