/*
 * parse.h - parsers for the small value types of configuration and flags.
 *
 * Each parser takes the whole string: leading or trailing garbage, empty
 * input, overflow and negative values are errors that quote the value and
 * say what is accepted.  None keeps state; all are thread safe.
 */
#ifndef FL_COMMON_PARSE_H
#define FL_COMMON_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/*
 * Durations: a non-negative integer and a unit, optionally repeated
 * ("1h30min"): us, ms, s, min, h, d.  A bare number is refused because
 * "5" could mean seconds or milliseconds.  Result in milliseconds (us are
 * rounded up to whole milliseconds only when nonzero).
 */
int fl_parse_duration(int64_t *out_ms, const char *s, fl_error_t *err) FL_NODISCARD;

/* Formats milliseconds in the largest exact unit ("2s", "5min", "30d"). */
void fl_format_duration(char *out, size_t outlen, int64_t ms);

/*
 * Sizes: a non-negative integer with an optional unit: B, kB, KiB, MB,
 * MiB, GB, GiB, TB, TiB (kB = 1000, KiB = 1024, as PostgreSQL writes
 * them).  A bare number is bytes.
 */
int fl_parse_size(int64_t *out_bytes, const char *s, fl_error_t *err) FL_NODISCARD;

/* A count ("3") or a percentage ("10%", "12.5%") of some total. */
typedef struct {
    int is_percent;
    int64_t count;  /* when !is_percent */
    double percent; /* 0 < percent <= 100 when is_percent */
} fl_count_pct_t;

int fl_parse_count_pct(fl_count_pct_t *out, const char *s, fl_error_t *err) FL_NODISCARD;
/*
 * Resolves against a total: a percentage rounds up so that "10%" of 5 is
 * 1, never 0; a count is capped at total.
 */
int64_t fl_count_pct_resolve(const fl_count_pct_t *cp, int64_t total);

/*
 * Label selectors: "tier=canary,region!=eu,ring" (equality, inequality,
 * existence).  Keys: [A-Za-z0-9._/-]{1,63}; values: [A-Za-z0-9._-]{0,63}.
 */
typedef enum {
    FL_SELECTOR_EQ,
    FL_SELECTOR_NE,
    FL_SELECTOR_EXISTS
} fl_selector_op;

typedef struct {
    char *key;
    char *value; /* NULL for FL_SELECTOR_EXISTS */
    fl_selector_op op;
} fl_selector_term_t;

typedef struct {
    fl_selector_term_t *terms;
    size_t nterms;
} fl_selector_t;

/* Fills out (which the caller releases) or leaves it empty on error. */
int fl_selector_parse(fl_selector_t *out, const char *s, fl_error_t *err) FL_NODISCARD;
void fl_selector_release(fl_selector_t *sel);

/*
 * True when the labels (parallel key and value arrays) satisfy every term.
 * An empty selector matches everything.
 */
int fl_selector_matches(const fl_selector_t *sel, const char *const *keys,
                        const char *const *values, size_t nlabels);

/* Strict base-10 integer within [min, max]. */
int fl_parse_int(int64_t *out, const char *s, int64_t min, int64_t max,
                 fl_error_t *err) FL_NODISCARD;

/* "true/false/yes/no/on/off/1/0". */
int fl_parse_bool(int *out, const char *s, fl_error_t *err) FL_NODISCARD;

#endif
