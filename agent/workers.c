/*
 * workers.c - the agent daemon's thread pool (see workers.h).
 */
#include "agent/workers.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "common/queue.h"
#include "common/thread.h"

typedef struct s_node {
    void *job;
    struct s_node *next;
} s_node;

typedef struct {
    s_node *head, *tail;
    size_t count;
} s_lane;

struct fl_workers {
    pthread_mutex_t lock;
    pthread_cond_t work;      /* a job or the stop */
    pthread_cond_t conn;      /* a connection slot */
    s_lane lanes[2];          /* 0 urgent, 1 background */
    int stopping;
    int conns;                /* slots free */
    pthread_t *threads;
    int nthreads;
    fl_workers_fn run;
    void *ctx;
    fl_queue_t *done;
};

static void
s_push(s_lane *l, void *job)
{
    s_node *n = fl_calloc(1, sizeof(*n));

    n->job = job;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
    l->count++;
}

static void *
s_pop(s_lane *l)
{
    s_node *n = l->head;
    void *job = NULL;

    if (n == NULL)
        return NULL;
    l->head = n->next;
    if (l->head == NULL)
        l->tail = NULL;
    l->count--;
    job = n->job;
    free(n);
    return job;
}

static void *
s_worker(void *arg)
{
    fl_workers_t *w = arg;

    for (;;) {
        void *job = NULL;

        pthread_mutex_lock(&w->lock);
        while (!w->stopping && w->lanes[0].count == 0 &&
               w->lanes[1].count == 0)
            pthread_cond_wait(&w->work, &w->lock);
        if (!w->stopping) {
            job = s_pop(&w->lanes[0]);
            if (job == NULL)
                job = s_pop(&w->lanes[1]);
        }
        pthread_mutex_unlock(&w->lock);
        if (job == NULL)
            break;
        w->run(job, w->ctx);
    }
    return NULL;
}

fl_workers_t *
fl_workers_start(int nthreads, int nconns, fl_workers_fn run, void *ctx)
{
    fl_workers_t *w = fl_calloc(1, sizeof(*w));

    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->conn, NULL);
    w->conns = nconns > 0 ? nconns : 1;
    w->run = run;
    w->ctx = ctx;
    w->done = fl_queue_new();
    w->nthreads = nthreads > 0 ? nthreads : 1;
    w->threads = fl_calloc((size_t)w->nthreads, sizeof(*w->threads));
    for (int i = 0; i < w->nthreads; i++)
        if (fl_thread_create_deep(&w->threads[i], s_worker, w) != 0)
            abort(); /* no thread: like out of memory */
    return w;
}

void
fl_workers_submit(fl_workers_t *w, void *job, int urgent)
{
    pthread_mutex_lock(&w->lock);
    s_push(&w->lanes[urgent ? 0 : 1], job);
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
}

size_t
fl_workers_backlog(fl_workers_t *w)
{
    size_t n;

    pthread_mutex_lock(&w->lock);
    n = w->lanes[1].count;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void
fl_workers_post(fl_workers_t *w, void *item)
{
    /* The done queue is closed only after every worker has ended. */
    if (fl_queue_push(w->done, item) != 0)
        abort();
}

int
fl_workers_fd(const fl_workers_t *w)
{
    return fl_queue_fd(w->done);
}

void *
fl_workers_done(fl_workers_t *w)
{
    return fl_queue_pop(w->done);
}

void
fl_workers_conn_acquire(fl_workers_t *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->conns == 0)
        pthread_cond_wait(&w->conn, &w->lock);
    w->conns--;
    pthread_mutex_unlock(&w->lock);
}

void
fl_workers_conn_release(fl_workers_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->conns++;
    pthread_cond_signal(&w->conn);
    pthread_mutex_unlock(&w->lock);
}

void
fl_workers_stop(fl_workers_t **wp, void (*drop)(void *item))
{
    fl_workers_t *w = NULL;
    void *item = NULL;

    if (wp == NULL || *wp == NULL)
        return;
    w = *wp;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    for (int l = 0; l < 2; l++)
        while ((item = s_pop(&w->lanes[l])) != NULL)
            if (drop != NULL)
                drop(item);
    fl_queue_close(w->done);
    while ((item = fl_queue_pop(w->done)) != NULL)
        if (drop != NULL)
            drop(item);
    fl_queue_destroy(&w->done);
    pthread_cond_destroy(&w->conn);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->lock);
    free(w->threads);
    fl_free(wp);
}
