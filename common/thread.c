/*
 * thread.c - threads with the stack that SQL's parse trees need (see
 * thread.h).
 */
#include "common/thread.h"

int
fl_thread_create_deep(pthread_t *t, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    int rc;

    if (pthread_attr_init(&attr) != 0)
        return pthread_create(t, NULL, fn, arg);
    rc = pthread_attr_setstacksize(&attr, FL_THREAD_DEEP_STACK);
    if (rc == 0)
        rc = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        rc = pthread_create(t, NULL, fn, arg);
    return rc;
}
