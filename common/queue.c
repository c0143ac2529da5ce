/*
 * queue.c - a thread-safe FIFO of pointers with an eventfd (see queue.h).
 *
 * A ring buffer that doubles when full, under one mutex; a condition
 * variable for threads that wait, and an eventfd kept readable exactly
 * while the ring is not empty, so a poll(2) on it never spins: the
 * counter is raised on the push that makes the queue non-empty and
 * drained by the pop that empties it, both under the mutex.
 */
#include "common/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"

struct fl_queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    void **ring;
    size_t cap, head, count;
    int closed;
    int fd;
};

fl_queue_t *
fl_queue_new(void)
{
    fl_queue_t *q = fl_calloc(1, sizeof(*q));
    pthread_condattr_t ca;

    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->nonempty, &ca);
    pthread_condattr_destroy(&ca);
    q->cap = 64;
    q->ring = fl_calloc(q->cap, sizeof(*q->ring));
    q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->fd < 0) {
        /* Like running out of memory: no daemon can work without it. */
        fprintf(stderr, "flotilla: eventfd failed: %s\n", strerror(errno));
        abort();
    }
    return q;
}

void
fl_queue_destroy(fl_queue_t **q)
{
    if (q == NULL || *q == NULL)
        return;
    close((*q)->fd);
    pthread_cond_destroy(&(*q)->nonempty);
    pthread_mutex_destroy(&(*q)->lock);
    free((*q)->ring);
    fl_free(q);
}

static void
s_grow(fl_queue_t *q)
{
    void **ring = NULL;

    FL_ASSERT(q->cap > 0); /* fl_queue_new starts it at 64 */
    ring = fl_calloc(q->cap * 2, sizeof(*ring));

    for (size_t i = 0; i < q->count; i++)
        ring[i] = q->ring[(q->head + i) % q->cap];
    free(q->ring);
    q->ring = ring;
    q->head = 0;
    q->cap *= 2;
}

int
fl_queue_push(fl_queue_t *q, void *item)
{
    uint64_t one = 1;

    FL_ASSERT(item != NULL);
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    if (q->count == q->cap)
        s_grow(q);
    q->ring[(q->head + q->count) % q->cap] = item;
    if (q->count++ == 0)
        /* Cannot fail: the counter is far from its maximum. */
        FL_IGNORE((int)write(q->fd, &one, sizeof(one)));
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

/* Takes the head; the caller holds the lock and count > 0. */
static void *
s_take(fl_queue_t *q)
{
    void *item = q->ring[q->head];
    uint64_t v = 0;

    q->ring[q->head] = NULL;
    q->head = (q->head + 1) % q->cap;
    if (--q->count == 0)
        /* Drains the counter; EAGAIN when already drained is harmless. */
        FL_IGNORE((int)read(q->fd, &v, sizeof(v)));
    return item;
}

void *
fl_queue_pop(fl_queue_t *q)
{
    void *item = NULL;

    pthread_mutex_lock(&q->lock);
    if (q->count > 0)
        item = s_take(q);
    pthread_mutex_unlock(&q->lock);
    return item;
}

void *
fl_queue_wait(fl_queue_t *q, int64_t timeout_ms)
{
    void *item = NULL;
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms >= 0) {
        until.tv_sec += (time_t)(timeout_ms / 1000);
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->closed) {
        if (timeout_ms < 0)
            pthread_cond_wait(&q->nonempty, &q->lock);
        else if (pthread_cond_timedwait(&q->nonempty, &q->lock, &until) ==
                 ETIMEDOUT)
            break;
    }
    if (q->count > 0)
        item = s_take(q);
    pthread_mutex_unlock(&q->lock);
    return item;
}

int
fl_queue_fd(const fl_queue_t *q)
{
    return q->fd;
}

size_t
fl_queue_count(fl_queue_t *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void
fl_queue_close(fl_queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}
