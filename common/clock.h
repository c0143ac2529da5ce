/*
 * clock.h - the monotonic clock in milliseconds, and sleeping.
 *
 * Deadlines, timeouts and heartbeats use the monotonic clock, which a
 * change of the wall clock does not move.  Stateless and thread safe.
 */
#ifndef FL_COMMON_CLOCK_H
#define FL_COMMON_CLOCK_H

#include <stdint.h>

/* Milliseconds on the monotonic clock (an arbitrary origin). */
int64_t fl_clock_ms(void);

/* Sleeps ms milliseconds (0 or less: returns at once). */
void fl_clock_sleep_ms(int64_t ms);

#endif
