/*
 * Unit tests for common/queue: FIFO order and growth, the eventfd being
 * readable exactly while items wait, timeouts, close waking a waiter, and
 * four producer threads against two consumers with nothing lost or
 * doubled (run under ThreadSanitizer by tests/run.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <poll.h>
#include <pthread.h>

#include "common/queue.h"

static int
s_readable(const fl_queue_t *q)
{
    struct pollfd p = {fl_queue_fd(q), POLLIN, 0};

    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void
test_queue_fifo_grows_and_signals_its_fd(void **state)
{
    fl_queue_t *q = fl_queue_new();
    int items[200];

    (void)state;
    assert_false(s_readable(q));
    assert_null(fl_queue_pop(q));
    for (int i = 0; i < 200; i++)
        assert_int_equal(fl_queue_push(q, &items[i]), 0);
    assert_true(s_readable(q));
    assert_int_equal(fl_queue_count(q), 200);
    for (int i = 0; i < 199; i++) {
        assert_ptr_equal(fl_queue_pop(q), &items[i]);
        assert_true(s_readable(q));
    }
    assert_ptr_equal(fl_queue_pop(q), &items[199]);
    assert_false(s_readable(q));
    fl_queue_destroy(&q);
    assert_null(q);
}

static void
test_queue_wait_times_out_and_close_refuses(void **state)
{
    fl_queue_t *q = fl_queue_new();
    int x = 1;

    (void)state;
    assert_null(fl_queue_wait(q, 10));
    assert_int_equal(fl_queue_push(q, &x), 0);
    fl_queue_close(q);
    assert_int_equal(fl_queue_push(q, &x), -1);
    /* What was queued before the close is still handed out. */
    assert_ptr_equal(fl_queue_wait(q, -1), &x);
    assert_null(fl_queue_wait(q, -1));
    fl_queue_destroy(&q);
}

static void *
s_closer(void *arg)
{
    fl_queue_close(arg);
    return NULL;
}

static void
test_queue_close_wakes_a_waiter(void **state)
{
    fl_queue_t *q = fl_queue_new();
    pthread_t t;

    (void)state;
    pthread_create(&t, NULL, s_closer, q);
    assert_null(fl_queue_wait(q, -1));
    pthread_join(t, NULL);
    fl_queue_destroy(&q);
}

enum { S_PRODUCERS = 4, S_PER = 20000 };

typedef struct {
    fl_queue_t *q;
    int *items;
    int seen[S_PRODUCERS * S_PER];
    pthread_mutex_t lock;
} s_shared;

static void *
s_produce(void *arg)
{
    s_shared *s = ((void **)arg)[0];
    int base = *(int *)((void **)arg)[1];

    for (int i = 0; i < S_PER; i++)
        if (fl_queue_push(s->q, &s->items[base + i]) != 0)
            abort();
    return NULL;
}

static void *
s_consume(void *arg)
{
    s_shared *s = arg;
    int *item;

    while ((item = fl_queue_wait(s->q, -1)) != NULL) {
        pthread_mutex_lock(&s->lock);
        s->seen[*item]++;
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

static void
test_queue_many_threads_lose_and_double_nothing(void **state)
{
    s_shared *s = calloc(1, sizeof(*s));
    pthread_t prod[S_PRODUCERS], cons[2];
    int bases[S_PRODUCERS];
    void *args[S_PRODUCERS][2];

    (void)state;
    s->q = fl_queue_new();
    s->items = calloc(S_PRODUCERS * S_PER, sizeof(int));
    pthread_mutex_init(&s->lock, NULL);
    for (int i = 0; i < S_PRODUCERS * S_PER; i++)
        s->items[i] = i;
    for (int c = 0; c < 2; c++)
        pthread_create(&cons[c], NULL, s_consume, s);
    for (int p = 0; p < S_PRODUCERS; p++) {
        bases[p] = p * S_PER;
        args[p][0] = s;
        args[p][1] = &bases[p];
        pthread_create(&prod[p], NULL, s_produce, args[p]);
    }
    for (int p = 0; p < S_PRODUCERS; p++)
        pthread_join(prod[p], NULL);
    fl_queue_close(s->q);
    for (int c = 0; c < 2; c++)
        pthread_join(cons[c], NULL);
    for (int i = 0; i < S_PRODUCERS * S_PER; i++)
        assert_int_equal(s->seen[i], 1);
    fl_queue_destroy(&s->q);
    pthread_mutex_destroy(&s->lock);
    free(s->items);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_fifo_grows_and_signals_its_fd),
        cmocka_unit_test(test_queue_wait_times_out_and_close_refuses),
        cmocka_unit_test(test_queue_close_wakes_a_waiter),
        cmocka_unit_test(test_queue_many_threads_lose_and_double_nothing),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
