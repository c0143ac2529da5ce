/*
 * bench_internal.h - what the benchmarks of this directory share: the
 * monotonic clock and the median of a run's samples.
 */
#ifndef FL_BENCH_INTERNAL_H
#define FL_BENCH_INTERNAL_H

#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double
fl_bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int
fl_bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n-1] (n > 0); sorts v in place. */
static inline double
fl_bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), fl_bench_cmp);
    return v[n / 2];
}

#endif
