/*
 * benchutil.h - what the benchmark programs share: a monotonic clock in
 * seconds and the median of a sample (sorts it).
 */
#ifndef FL_BENCH_BENCHUTIL_H
#define FL_BENCH_BENCHUTIL_H

#include <stdlib.h>
#include <time.h>

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

static inline double
fl_bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), fl_bench_cmp);
    return v[n / 2];
}

#endif
