/*
 * waves.c - a rollout's policy and waves (see waves.h).
 */
#include "coordinator/waves.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"

/* Policy. */


/* A duration of a policy: at most FL_WAVES_MAX_DURATION_MS. */
static int
s_duration(int64_t *out, const char *v, fl_error_t *err)
{
    int rc = fl_parse_duration(out, v, err);

    if (rc == 0 && *out > FL_WAVES_MAX_DURATION_MS)
        rc = FL_ERR(err, FL_EINVAL, "%.32s is longer than 90 days", v);
    return rc;
}

int
fl_waves_policy_parse(fl_waves_policy_t *p, fl_waves_get_fn get, void *ctx, fl_error_t *err)
{
    const char *v = NULL, *key = NULL;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    v = get(ctx, "waves");
    p->waves = fl_strdup(v && *v ? v : "1;10%;50%;100%");
    if ((v = get(ctx, "order")) != NULL && strcmp(v, "shuffle") == 0)
        p->shuffle = 1;
    else if (v != NULL && *v && strcmp(v, "deterministic") != 0)
        return FL_ERR(err, FL_EINVAL, "policy: order \"%.32s\" is neither "
                      "deterministic nor shuffle", v);
    if ((v = get(ctx, key = "seed")) != NULL && *v &&
        (rc = fl_parse_int(&p->seed, v, 0, INT64_MAX, err)) != 0)
        goto bad;
    if ((v = get(ctx, key = "max_parallel")) != NULL && *v &&
        (rc = fl_parse_int(&p->max_parallel, v, 0, 1000000, err)) != 0)
        goto bad;
    if ((v = get(ctx, key = "max_parallel_per_agent")) != NULL && *v &&
        (rc = fl_parse_int(&p->per_agent, v, 0, 1000000, err)) != 0)
        goto bad;
    if ((v = get(ctx, key = "max_parallel_per_server")) != NULL && *v &&
        (rc = fl_parse_int(&p->per_server, v, 0, 1000000, err)) != 0)
        goto bad;
    v = get(ctx, key = "max_failures");
    if ((rc = fl_parse_count_pct(&p->max_failures, v && *v ? v : "0",
                                 err)) != 0)
        goto bad;
    if ((v = get(ctx, key = "max_failures_total")) != NULL && *v) {
        p->has_total = 1;
        if ((rc = fl_parse_count_pct(&p->max_failures_total, v, err)) != 0)
            goto bad;
    }
    if ((v = get(ctx, "unreachable")) != NULL && *v) {
        if (strcmp(v, "skip") == 0)
            p->unreachable_skip = 1;
        else if (strcmp(v, "fail") != 0)
            return FL_ERR(err, FL_EINVAL, "policy: unreachable \"%.32s\" is "
                          "neither fail nor skip", v);
    }
    if ((v = get(ctx, key = "bake")) != NULL && *v &&
        (rc = s_duration(&p->bake_ms, v, err)) != 0)
        goto bad;
    if ((v = get(ctx, "gate")) != NULL && *v) {
        if (strcmp(v, "manual") == 0)
            p->gate_manual = 1;
        else if (strcmp(v, "none") != 0)
            return FL_ERR(err, FL_EINVAL, "policy: gate \"%.32s\" is neither "
                          "none nor manual", v);
    }
    if ((v = get(ctx, key = "target_timeout")) != NULL && *v &&
        (rc = s_duration(&p->target_timeout_ms, v, err)) != 0)
        goto bad;
    if ((v = get(ctx, "on_failure")) != NULL && *v) {
        if (strcmp(v, "rollback") == 0)
            p->on_failure_rollback = 1;
        else if (strcmp(v, "halt") != 0)
            return FL_ERR(err, FL_EINVAL, "policy: on_failure \"%.32s\" is "
                          "neither halt nor rollback", v);
    }
    return 0;
bad:
    fl_error_prefix(err, "policy: %s: ", key);
    return rc;
}

void
fl_waves_policy_release(fl_waves_policy_t *p)
{
    free(p->waves);
    p->waves = NULL;
}

void
fl_waves_budget_text(char *out, size_t n, const fl_count_pct_t *cp)
{
    if (cp->is_percent)
        snprintf(out, n, "%g%%", cp->percent);
    else
        snprintf(out, n, "%lld", (long long)cp->count);
}

/* The policy as strings, the form it is stored and shown in. */
json_t *
fl_waves_policy_json(const fl_waves_policy_t *p)
{
    char mf[32], mft[32], bake[32], tt[32];

    fl_waves_budget_text(mf, sizeof(mf), &p->max_failures);
    if (p->has_total)
        fl_waves_budget_text(mft, sizeof(mft), &p->max_failures_total);
    else
        mft[0] = '\0';
    fl_format_duration(bake, sizeof(bake), p->bake_ms);
    fl_format_duration(tt, sizeof(tt), p->target_timeout_ms);
    return fl_json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
        "waves", p->waves, "order", p->shuffle ? "shuffle" : "deterministic",
        "seed", (json_int_t)p->seed, "max_parallel",
        (json_int_t)p->max_parallel, "max_parallel_per_agent",
        (json_int_t)p->per_agent, "max_parallel_per_server",
        (json_int_t)p->per_server, "max_failures", mf, "max_failures_total",
        mft, "unreachable", p->unreachable_skip ? "skip" : "fail", "bake",
        bake, "gate", p->gate_manual ? "manual" : "none", "target_timeout",
        p->target_timeout_ms ? tt : "", "on_failure",
        p->on_failure_rollback ? "rollback" : "halt");
}

/* Waves: parsing and cutting. */


void
fl_waves_release(fl_waves_spec_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(w[i].text);
        fl_selector_release(&w[i].sel);
    }
    free(w);
}

int
fl_waves_parse(fl_waves_spec_t **out, size_t *n, const char *text, fl_error_t *err)
{
    fl_waves_spec_t *w = fl_calloc(FL_WAVES_MAX, sizeof(*w));
    const char *p = text;
    int rc = 0;

    *n = 0;
    while (*p) {
        size_t len = strcspn(p, ";");
        char *one = fl_strndup(p, len);
        fl_waves_spec_t *x = &w[*n];

        if (*n == FL_WAVES_MAX) {
            free(one);
            rc = FL_ERR(err, FL_EINVAL, "policy: more than %d waves",
                        FL_WAVES_MAX);
            break;
        }
        x->text = one;
        (*n)++;
        if (strchr(one, '=') != NULL || strchr(one, '!') != NULL) {
            x->is_selector = 1;
            rc = fl_selector_parse(&x->sel, one, err);
        } else {
            rc = fl_parse_count_pct(&x->cp, one, err);
            if (rc == 0 && !x->cp.is_percent && x->cp.count < 1)
                rc = FL_ERR(err, FL_EINVAL, "a wave of %lld targets",
                            (long long)x->cp.count);
        }
        if (rc != 0) {
            fl_error_prefix(err, "policy: wave %zu: ", *n);
            fl_error_set_hint(err, "A wave is a count (1), a percentage of "
                                   "the targets left (10%%), or a label "
                                   "selector (tier=canary); waves are "
                                   "separated by \";\".");
            break;
        }
        p += len;
        if (*p == ';')
            p++;
    }
    if (rc == 0 && *n == 0)
        rc = FL_ERR(err, FL_EINVAL, "policy: no waves");
    if (rc != 0) {
        fl_waves_release(w, *n);
        *n = 0;
        return rc;
    }
    *out = w;
    return 0;
}

typedef struct {
    fl_co_target_t *t;
    size_t first_sel;         /* the first selector wave it matches */
    char *labels;             /* canonical: sorted k=v, comma-separated */
    uint64_t shuffle_key;
} s_item_t;

static int
s_str_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static char *
s_labels_canonical(const fl_co_labels_t *l)
{
    char **kv = fl_calloc(l->n + 1, sizeof(*kv));
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; i < l->n; i++)
        kv[i] = fl_asprintf("%s=%s", l->keys[i], l->values[i]);
    qsort(kv, l->n, sizeof(*kv), s_str_cmp);
    fl_buf_adds(&b, "");
    for (size_t i = 0; i < l->n; i++) {
        fl_buf_addf(&b, "%s%s", i ? "," : "", kv[i]);
        free(kv[i]);
    }
    free(kv);
    return fl_buf_detach(&b);
}

static int
s_item_cmp(const void *x, const void *y)
{
    const s_item_t *a = x, *b = y;
    int c;

    if (a->first_sel != b->first_sel)
        return a->first_sel < b->first_sel ? -1 : 1;
    if ((c = strcmp(a->labels, b->labels)) != 0)
        return c;
    return strcmp(a->t->name, b->t->name);
}

/* splitmix64: the recorded seed gives the same order again. */
static uint64_t
s_next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * Orders the frozen set and cuts it into waves: out_targets and
 * out_waves (new, n entries), *specs (new, the waves kept: empty ones
 * are dropped, and targets left after the last make one more).
 */
void
fl_waves_cut(fl_co_target_t *const *targets, size_t n,
             const fl_waves_spec_t *w, size_t nw, int shuffle,
             uint64_t seed, fl_co_target_t ***out_targets,
             int32_t **out_waves, char ***specs, size_t *nspecs)
{
    s_item_t *it = fl_calloc(n + 1, sizeof(*it));
    uint8_t *taken = fl_calloc(n + 1, 1);
    size_t done = 0, k = 0;
    uint64_t rng = seed;

    *out_targets = fl_calloc(n + 1, sizeof(**out_targets));
    *out_waves = fl_calloc(n + 1, sizeof(**out_waves));
    *specs = fl_calloc(nw + 2, sizeof(**specs));
    *nspecs = 0;
    for (size_t i = 0; i < n; i++) {
        it[i].t = targets[i];
        it[i].first_sel = nw;
        for (size_t j = 0; j < nw; j++)
            if (w[j].is_selector &&
                fl_co_labels_match(&targets[i]->labels, &w[j].sel)) {
                it[i].first_sel = j;
                break;
            }
        it[i].labels = s_labels_canonical(&targets[i]->labels);
    }
    qsort(it, n, sizeof(*it), s_item_cmp);
    if (shuffle)
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)(s_next_random(&rng) % i);
            s_item_t tmp = it[i - 1];
            it[i - 1] = it[j];
            it[j] = tmp;
        }
    for (size_t j = 0; j < nw && done < n; j++) {
        size_t want = 0, got = 0;

        if (!w[j].is_selector)
            want = (size_t)fl_count_pct_resolve(&w[j].cp,
                                                 (int64_t)(n - done));
        for (size_t i = 0; i < n; i++) {
            if (taken[i])
                continue;
            if (w[j].is_selector
                    ? !fl_co_labels_match(&it[i].t->labels, &w[j].sel)
                    : got >= want)
                continue;
            taken[i] = 1;
            (*out_targets)[k] = it[i].t;
            (*out_waves)[k] = (int32_t)*nspecs;
            k++;
            got++;
        }
        if (got == 0)
            continue;
        done += got;
        (*specs)[(*nspecs)++] = fl_strdup(w[j].text);
    }
    if (done < n) {
        for (size_t i = 0; i < n; i++)
            if (!taken[i]) {
                (*out_targets)[k] = it[i].t;
                (*out_waves)[k] = (int32_t)*nspecs;
                k++;
            }
        (*specs)[(*nspecs)++] = fl_strdup("the rest");
    }
    for (size_t i = 0; i < n; i++)
        free(it[i].labels);
    free(it);
    free(taken);
}


/* More failures than the budget allows ("exceeded, not equalled"). */
int
fl_waves_exceeded(const fl_count_pct_t *cp, int64_t failures, size_t size)
{
    if (failures <= 0)
        return 0;
    if (cp->is_percent)
        return (double)failures * 100.0 > cp->percent * (double)size;
    return failures > cp->count;
}

int
fl_waves_has_row_of(const fl_co_target_t *t, const char *id, int live)
{
    for (size_t i = 0; i < t->nrows; i++)
        if (t->rows[i].rollout != NULL && strcmp(t->rows[i].rollout, id) == 0 &&
            (!live || t->rows[i].status != FL_CO_ROW_ROLLED_BACK))
            return 1;
    return 0;
}

int
fl_waves_touched(const fl_co_command_t *c, const char *id)
{
    const fl_co_target_t *t = c->target;

    if (t->known && fl_waves_has_row_of(t, id, 1))
        return 1;
    if (!c->sent_once)
        return 0;
    if (!t->known || c->status == FL_CO_PENDING ||
        c->state != FL_CO_CMD_DONE)
        return 1;
    /*
     * Failed for its target_timeout, its own result not come yet: it may
     * still run on its agent (cut off when the cancel went) and commit
     * there after a ledger read that showed nothing of it.  Before, such
     * a read made the target untouched, and a rollback left it out while
     * its apply then committed (found by an audit).
     */
    if (c->status == FL_CO_FAILED && c->detail != NULL &&
        c->detail->message != NULL &&
        strcmp(c->detail->message, FL_CO_TIMED_OUT) == 0 &&
        c->detail->detail == NULL)
        return 1;
    return t->state_seq == c->state_seq;
}
