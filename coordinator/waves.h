/*
 * waves.h - a rollout's policy and its waves: the policy parsed strictly
 * from text (the request's arguments, or the JSON it is stored as), the
 * wave list parsed, a frozen target set put in order and cut into waves,
 * the failure-budget rule, and which targets a rollback takes.  No I/O
 * and no state: rollout.c uses it when a rollout starts and when it is
 * loaded again; the unit test (tests/unit/coordinator/test_waves.c)
 * checks it on generated fleets.
 */
#ifndef FL_COORDINATOR_WAVES_H
#define FL_COORDINATOR_WAVES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/parse.h"
#include "coordinator/coordinator_internal.h"

/* Waves in a policy. */
#define FL_WAVES_MAX 64
/* The longest bake or target_timeout: 90 days (a date the control
 * database stores, a rollout an operator still watches). */
#define FL_WAVES_MAX_DURATION_MS (90LL * 24 * 3600 * 1000)

/* A policy (docs/rollouts.md lists each key and its default). */
typedef struct {
    char *waves;              /* "1;10%;50%;100%" */
    int shuffle;
    int64_t seed;
    int64_t max_parallel, per_agent, per_server; /* 0: no cap */
    fl_count_pct_t max_failures;                 /* per wave */
    int has_total;
    fl_count_pct_t max_failures_total;
    int unreachable_skip;
    int64_t bake_ms;
    int gate_manual;
    int64_t target_timeout_ms; /* 0: none */
    int on_failure_rollback;
} fl_waves_policy_t;

/* The value of a policy key in ctx, or NULL (the default). */
typedef const char *(*fl_waves_get_fn)(void *ctx, const char *key);

/* One wave of a policy: a count or a percentage, or a selector. */
typedef struct {
    char *text;
    int is_selector;
    fl_count_pct_t cp;
    fl_selector_t sel;
} fl_waves_spec_t;

/*
 * Fills p from get (every key optional): FL_EINVAL naming the key and the
 * value ("policy: ...") when one is invalid.  p is released by the caller
 * in every case.
 */
int fl_waves_policy_parse(fl_waves_policy_t *p, fl_waves_get_fn get,
                          void *ctx, fl_error_t *err) FL_NODISCARD;
void fl_waves_policy_release(fl_waves_policy_t *p);

/* The policy as strings (new JSON): the form it is stored and shown in. */
json_t *fl_waves_policy_json(const fl_waves_policy_t *p);

/* A budget as written: "3" or "5%". */
void fl_waves_budget_text(char *out, size_t n, const fl_count_pct_t *cp);

/*
 * Parses waves separated by ";" (at most FL_WAVES_MAX): a count of at
 * least 1, a percentage, or a label selector (any wave with "=" or "!").
 * *out is new (fl_waves_release), only on success.
 */
int fl_waves_parse(fl_waves_spec_t **out, size_t *n, const char *text,
                   fl_error_t *err) FL_NODISCARD;
void fl_waves_release(fl_waves_spec_t *w, size_t n);

/*
 * Orders the n targets (lent) and cuts them into the waves w: the order
 * is by the first selector wave a target matches, then its labels
 * (sorted, as k=v), then its name; with shuffle, that order shuffled by
 * seed (the same seed, the same order).  Each wave in turn takes, from
 * the targets no wave took yet and in order, those its selector matches,
 * or its count, or its percentage of them (rounded up).  A wave that takes
 * nothing is dropped; targets left after the last wave make one more,
 * "the rest".  Fills out_targets and out_waves (new arrays of n: the
 * targets in order and the index of each one's wave) and *specs (new, the
 * text of each wave kept, *nspecs of them).
 */
void fl_waves_cut(fl_co_target_t *const *targets, size_t n,
                  const fl_waves_spec_t *w, size_t nw, int shuffle,
                  uint64_t seed, fl_co_target_t ***out_targets,
                  int32_t **out_waves, char ***specs, size_t *nspecs);

/*
 * 1 when failures exceed the budget cp over size targets: more than the
 * count, or more than the percentage of size (never when equal).
 */
int fl_waves_exceeded(const fl_count_pct_t *cp, int64_t failures,
                      size_t size);

/* 1 when target t's ledger, as read, has a row of rollout id (with live:
 * one not rolled back). */
int fl_waves_has_row_of(const fl_co_target_t *t, const char *id, int live);

/*
 * 1 when a rollback of rollout id takes the target of its command c
 * (touched): the target's ledger records the rollout, or c was sent and
 * its effect is not in the ledger as reported yet: it is still running,
 * or it ended (applied; failed, refused, cancelled: the migrations of the
 * bundle before the one that failed may have committed) and its agent
 * has not reported the ledger it left since (an agent sends that after
 * the result; before, a rollback started on the result left such a
 * target out).  A command never sent touched nothing, and nor did one
 * that ended ok with the ledger reported since naming no row of the
 * rollout: the bundle was applied already, by an earlier rollout (before,
 * such a target was rolled back too, that rollout's work with it).
 */
int fl_waves_touched(const fl_co_command_t *c, const char *id);

#endif
