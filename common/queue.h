/*
 * queue.h - a thread-safe FIFO of pointers that an event loop can poll.
 *
 * The daemons' event loops never block on PostgreSQL: the coordinator's
 * state writes and the agent's pipelines run on their own threads, and
 * the two sides talk through queues.  A thread waiting for work blocks in
 * fl_queue_wait(); an event loop instead polls fl_queue_fd(), an eventfd
 * that is readable while items are queued, next to its sockets, and takes
 * items with fl_queue_pop(), which never blocks.
 *
 * Items are lent pointers: the queue never frees them.  fl_queue_close()
 * wakes every waiter; after it, pushes are refused (their items are
 * returned to the caller to free) and waits return what is left, then
 * NULL.  Every function may be called from any thread.
 */
#ifndef FL_COMMON_QUEUE_H
#define FL_COMMON_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct fl_queue fl_queue_t;

/* A new empty queue, owned by the caller (fl_queue_destroy). */
fl_queue_t *fl_queue_new(void);

/*
 * Frees the queue (not the items still in it: pop them first) and sets
 * *q to NULL; accepts NULL.  No thread may be using it.
 */
void fl_queue_destroy(fl_queue_t **q);

/*
 * Appends item (not NULL).  Returns 0, or -1 when the queue is closed:
 * the item was not taken.
 */
int fl_queue_push(fl_queue_t *q, void *item);

/* Takes the oldest item, or returns NULL at once when there is none. */
void *fl_queue_pop(fl_queue_t *q);

/*
 * Takes the oldest item, waiting up to timeout_ms (negative: for ever)
 * for one; NULL on timeout, or when the queue is closed and empty.
 */
void *fl_queue_wait(fl_queue_t *q, int64_t timeout_ms);

/* A file descriptor readable while the queue holds items (for poll). */
int fl_queue_fd(const fl_queue_t *q);

size_t fl_queue_count(fl_queue_t *q);

/* Refuses further pushes and wakes every waiter. */
void fl_queue_close(fl_queue_t *q);

#endif
