/*
 * Unit tests of coordinator/waves.[ch]: a rollout's policy, its waves,
 * the failure-budget rule and which targets a rollback takes.  The wave
 * cutting is checked on generated fleets: seeds 1 to FLOTILLA_GEN_SEEDS
 * (default 300), each a random set of targets with random labels and a
 * random wave list, every seed held to the invariants (a failing seed is
 * printed; FLOTILLA_GEN_SEED=N runs it alone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "coordinator/waves.h"

/* A fleet of generated targets. */
typedef struct {
    fl_co_target_t *t;
    fl_co_target_t **p;
    size_t n;
} s_fleet_t;

static uint64_t
s_rand(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void
s_fleet_make(s_fleet_t *f, uint64_t *rng)
{
    static const char *const tiers[] = {"canary", "main", "big"};
    static const char *const regions[] = {"eu", "us"};

    f->n = (size_t)(s_rand(rng) % 120) + 1;
    f->t = fl_calloc(f->n, sizeof(*f->t));
    f->p = fl_calloc(f->n, sizeof(*f->p));
    for (size_t i = 0; i < f->n; i++) {
        fl_co_target_t *t = &f->t[i];
        size_t nl = (size_t)(s_rand(rng) % 3);

        t->name = fl_asprintf("agent-%u/tenant_%03zu",
                              (unsigned)(s_rand(rng) % 4), i);
        t->labels.keys = fl_calloc(2, sizeof(char *));
        t->labels.values = fl_calloc(2, sizeof(char *));
        if (nl >= 1) {
            t->labels.keys[t->labels.n] = fl_strdup("tier");
            t->labels.values[t->labels.n++] =
                fl_strdup(tiers[s_rand(rng) % 3]);
        }
        if (nl >= 2) {
            t->labels.keys[t->labels.n] = fl_strdup("region");
            t->labels.values[t->labels.n++] =
                fl_strdup(regions[s_rand(rng) % 2]);
        }
        f->p[i] = t;
    }
}

static void
s_fleet_free(s_fleet_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->t[i].name);
        fl_co_labels_release(&f->t[i].labels);
    }
    free(f->t);
    free(f->p);
}

static char *
s_waves_text(uint64_t *rng)
{
    static const char *const pool[] = {"1", "3", "10", "5%", "10%", "25%",
                                       "50%", "100%", "tier=canary",
                                       "region=eu", "tier!=main"};
    size_t n = (size_t)(s_rand(rng) % 5) + 1;
    char buf[256] = "";

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? ";" : "",
                 pool[s_rand(rng) % (sizeof(pool) / sizeof(*pool))]);
    }
    return fl_strdup(buf);
}

/* The canonical labels, as waves.c sorts by them. */
static char *
s_labels(const fl_co_target_t *t)
{
    char *a = NULL, *b = NULL;

    for (size_t i = 0; i < t->labels.n; i++) {
        char *kv = fl_asprintf("%s=%s", t->labels.keys[i],
                               t->labels.values[i]);
        if (a == NULL)
            a = kv;
        else
            b = kv;
    }
    if (a == NULL)
        return fl_strdup("");
    if (b == NULL)
        return a;
    {
        char *out = strcmp(a, b) < 0 ? fl_asprintf("%s,%s", a, b)
                                     : fl_asprintf("%s,%s", b, a);
        free(a);
        free(b);
        return out;
    }
}

/* Every invariant of one cut; fails with the seed. */
static void
s_check_seed(uint64_t seed)
{
    uint64_t rng = seed;
    s_fleet_t f;
    char *text = s_waves_text(&rng);
    int shuffle = (int)(s_rand(&rng) % 2);
    uint64_t shseed = s_rand(&rng);
    fl_waves_spec_t *w = NULL;
    size_t nw = 0, nspecs = 0, nspecs2 = 0;
    fl_co_target_t **out = NULL, **out2 = NULL, **rev = NULL;
    int32_t *wave = NULL, *wave2 = NULL;
    char **specs = NULL, **specs2 = NULL;
    uint8_t *seen = NULL;
    fl_error_t err = FL_ERROR_INIT;
    size_t done = 0, k = 0, spec_i = 0;

    s_fleet_make(&f, &rng);
    if (fl_waves_parse(&w, &nw, text, &err) != 0)
        fail_msg("seed %llu: waves \"%s\" refused: %s",
                 (unsigned long long)seed, text, err.message);
    fl_waves_cut(f.p, f.n, w, nw, shuffle, shseed, &out, &wave, &specs,
                 &nspecs);
    /* A partition: every target exactly once. */
    seen = fl_calloc(f.n, 1);
    for (size_t i = 0; i < f.n; i++) {
        size_t idx = (size_t)(out[i] - f.t);
        if (idx >= f.n || seen[idx])
            fail_msg("seed %llu: target at %zu twice or foreign",
                     (unsigned long long)seed, i);
        seen[idx] = 1;
    }
    /* Waves ascending, each kept wave non-empty, sized by its spec. */
    for (size_t i = 0; i < f.n; i++)
        if (wave[i] < 0 || (size_t)wave[i] >= nspecs ||
            (i > 0 && wave[i] < wave[i - 1]))
            fail_msg("seed %llu (waves \"%s\"): wave %d at %zu out of "
                     "order", (unsigned long long)seed, text, wave[i], i);
    for (size_t s = 0; s < nspecs; s++) {
        size_t size = 0, first = k;
        while (k < f.n && (size_t)wave[k] == s) {
            size++;
            k++;
        }
        if (size == 0)
            fail_msg("seed %llu: wave %zu (%s) is empty",
                     (unsigned long long)seed, s, specs[s]);
        if (strcmp(specs[s], "the rest") == 0) {
            if (s + 1 != nspecs)
                fail_msg("seed %llu: \"the rest\" is not last",
                         (unsigned long long)seed);
            done += size;
            continue;
        }
        /* Find the spec it came from: the next one of that text that
         * would take something. */
        while (spec_i < nw && strcmp(w[spec_i].text, specs[s]) != 0)
            spec_i++;
        if (spec_i == nw)
            fail_msg("seed %llu: wave %zu (%s) matches no spec in \"%s\"",
                     (unsigned long long)seed, s, specs[s], text);
        if (w[spec_i].is_selector) {
            for (size_t i = first; i < k; i++)
                if (!fl_co_labels_match(&out[i]->labels, &w[spec_i].sel))
                    fail_msg("seed %llu: %s in wave \"%s\" does not match "
                             "it", (unsigned long long)seed, out[i]->name,
                             specs[s]);
        } else {
            size_t want = (size_t)fl_count_pct_resolve(&w[spec_i].cp,
                                                       (int64_t)(f.n -
                                                                 done));
            if (size != want)
                fail_msg("seed %llu (waves \"%s\"): wave %zu (%s) has %zu "
                         "targets of %zu left, wanted %zu",
                         (unsigned long long)seed, text, s, specs[s], size,
                         f.n - done, want);
        }
        done += size;
        spec_i++;
    }
    if (done != f.n)
        fail_msg("seed %llu: %zu of %zu in waves", (unsigned long long)seed,
                 done, f.n);
    /* Deterministic: within a wave, ascending by (labels, name) among
     * targets of the same first selector wave. */
    if (!shuffle)
        for (size_t i = 1; i < f.n; i++) {
            char *a = s_labels(out[i - 1]), *b = s_labels(out[i]);
            int sel_a = -1, sel_b = -1;
            for (size_t j = 0; j < nw; j++) {
                if (w[j].is_selector && sel_a < 0 &&
                    fl_co_labels_match(&out[i - 1]->labels, &w[j].sel))
                    sel_a = (int)j;
                if (w[j].is_selector && sel_b < 0 &&
                    fl_co_labels_match(&out[i]->labels, &w[j].sel))
                    sel_b = (int)j;
            }
            if (wave[i] == wave[i - 1] && sel_a == sel_b &&
                (strcmp(a, b) > 0 ||
                 (strcmp(a, b) == 0 &&
                  strcmp(out[i - 1]->name, out[i]->name) > 0)))
                fail_msg("seed %llu: %s before %s in wave %d",
                         (unsigned long long)seed, out[i - 1]->name,
                         out[i]->name, wave[i]);
            free(a);
            free(b);
        }
    /* The same input in another order, the same seed: the same cut. */
    rev = fl_calloc(f.n, sizeof(*rev));
    for (size_t i = 0; i < f.n; i++)
        rev[i] = f.p[f.n - 1 - i];
    fl_waves_cut(rev, f.n, w, nw, shuffle, shseed, &out2, &wave2, &specs2,
                 &nspecs2);
    assert_int_equal(nspecs, nspecs2);
    for (size_t i = 0; i < f.n; i++)
        if (out[i] != out2[i] || wave[i] != wave2[i])
            fail_msg("seed %llu: the cut depends on the input's order at "
                     "%zu", (unsigned long long)seed, i);
    for (size_t s = 0; s < nspecs; s++) {
        free(specs[s]);
        free(specs2[s]);
    }
    free(specs);
    free(specs2);
    free(out);
    free(out2);
    free(wave);
    free(wave2);
    free(rev);
    free(seen);
    fl_waves_release(w, nw);
    free(text);
    s_fleet_free(&f);
}

static void
test_waves_cut_generated_fleets_hold_every_invariant(void **state)
{
    const char *one = getenv("FLOTILLA_GEN_SEED");
    const char *many = getenv("FLOTILLA_GEN_SEEDS");
    long n = many ? strtol(many, NULL, 10) : 300;

    (void)state;
    if (one != NULL) {
        s_check_seed((uint64_t)strtoull(one, NULL, 10));
        return;
    }
    for (long seed = 1; seed <= n; seed++)
        s_check_seed((uint64_t)seed);
}

static void
test_waves_cut_shuffle_seed_decides_the_order(void **state)
{
    uint64_t rng = 42;
    s_fleet_t f;
    fl_waves_spec_t *w = NULL;
    size_t nw = 0, ns = 0;
    fl_co_target_t **a = NULL, **b = NULL, **c = NULL;
    int32_t *wa = NULL, *wb = NULL, *wc = NULL;
    char **sa = NULL, **sb = NULL, **sc = NULL;
    int differs = 0;

    (void)state;
    s_fleet_make(&f, &rng);
    while (f.n < 20) {
        s_fleet_free(&f);
        s_fleet_make(&f, &rng);
    }
    assert_int_equal(fl_waves_parse(&w, &nw, "100%", NULL), 0);
    fl_waves_cut(f.p, f.n, w, nw, 1, 7, &a, &wa, &sa, &ns);
    fl_waves_cut(f.p, f.n, w, nw, 1, 7, &b, &wb, &sb, &ns);
    fl_waves_cut(f.p, f.n, w, nw, 1, 8, &c, &wc, &sc, &ns);
    for (size_t i = 0; i < f.n; i++) {
        assert_ptr_equal(a[i], b[i]);
        differs |= a[i] != c[i];
    }
    assert_true(differs);
    free(sa[0]);
    free(sb[0]);
    free(sc[0]);
    free(sa);
    free(sb);
    free(sc);
    free(a);
    free(b);
    free(c);
    free(wa);
    free(wb);
    free(wc);
    fl_waves_release(w, nw);
    s_fleet_free(&f);
}

static void
test_waves_exceeded_more_than_allowed_never_equal(void **state)
{
    fl_count_pct_t cp;

    (void)state;
    assert_int_equal(fl_parse_count_pct(&cp, "0", NULL), 0);
    assert_false(fl_waves_exceeded(&cp, 0, 10));
    assert_true(fl_waves_exceeded(&cp, 1, 10));
    assert_int_equal(fl_parse_count_pct(&cp, "2", NULL), 0);
    assert_false(fl_waves_exceeded(&cp, 2, 3));
    assert_true(fl_waves_exceeded(&cp, 3, 3));
    /* 10% of 20 allows 2; 5% of 30 allows 1.5. */
    assert_int_equal(fl_parse_count_pct(&cp, "10%", NULL), 0);
    assert_false(fl_waves_exceeded(&cp, 2, 20));
    assert_true(fl_waves_exceeded(&cp, 3, 20));
    assert_int_equal(fl_parse_count_pct(&cp, "5%", NULL), 0);
    assert_false(fl_waves_exceeded(&cp, 1, 30));
    assert_true(fl_waves_exceeded(&cp, 2, 30));
    /* Generated: exceeded exactly when failures are more than allowed. */
    for (int64_t size = 1; size <= 60; size++)
        for (int64_t fails = 0; fails <= size; fails++) {
            assert_int_equal(fl_parse_count_pct(&cp, "25%", NULL), 0);
            assert_int_equal(fl_waves_exceeded(&cp, fails, (size_t)size),
                             fails * 4 > size);
            cp.is_percent = 0;
            cp.count = size / 3;
            assert_int_equal(fl_waves_exceeded(&cp, fails, (size_t)size),
                             fails > size / 3);
        }
}

typedef struct {
    const char *keys[4];
    const char *values[4];
} s_args_t;

static const char *
s_get(void *ctx, const char *key)
{
    const s_args_t *a = ctx;

    for (int i = 0; i < 4 && a->keys[i] != NULL; i++)
        if (strcmp(a->keys[i], key) == 0)
            return a->values[i];
    return NULL;
}

static const char *
s_get_json(void *ctx, const char *key)
{
    return json_string_value(json_object_get(ctx, key));
}

static void
test_waves_policy_parse_defaults_round_trip_and_refusals(void **state)
{
    static const s_args_t bad[] = {
        {{"order", NULL}, {"random", NULL}},
        {{"max_failures", NULL}, {"-1", NULL}},
        {{"max_failures", NULL}, {"120%", NULL}},
        {{"bake", NULL}, {"5", NULL}},
        {{"gate", NULL}, {"auto", NULL}},
        {{"unreachable", NULL}, {"ignore", NULL}},
        {{"on_failure", NULL}, {"retry", NULL}},
        {{"max_parallel", NULL}, {"lots", NULL}},
        {{"max_parallel_per_agent", NULL}, {"-2", NULL}},
        /* Past any date the control database stores (before, the
         * rollout's every later write failed: timestamp out of range). */
        {{"bake", NULL}, {"106751990d", NULL}},
        {{"bake", NULL}, {"91d", NULL}},
        {{"target_timeout", NULL}, {"91d", NULL}},
    };
    s_args_t ok = {{"waves", "bake", "max_failures", "on_failure"},
                   {"tier=canary;10%;100%", "30s", "5%", "rollback"}};
    fl_waves_policy_t p, q;
    json_t *j = NULL;
    fl_waves_spec_t *w = NULL;
    size_t nw = 0;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (fl_waves_policy_parse(&p, s_get, (void *)&bad[i], &err) == 0)
            fail_msg("%s = %s accepted", bad[i].keys[0], bad[i].values[0]);
        /* Which key, said (before: "policy: value -2 is out of range"). */
        if (strncmp(err.message, "policy: ", 8) != 0 ||
            strstr(err.message, bad[i].keys[0]) == NULL)
            fail_msg("%s = %s: the error does not name the key: %s",
                     bad[i].keys[0], bad[i].values[0], err.message);
        fl_error_clear(&err);
        fl_waves_policy_release(&p);
    }
    /* Defaults. */
    {
        s_args_t none = {{NULL}, {NULL}};
        assert_int_equal(fl_waves_policy_parse(&p, s_get, &none, NULL), 0);
        assert_string_equal(p.waves, "1;10%;50%;100%");
        assert_false(p.max_failures.is_percent);
        assert_int_equal(p.max_failures.count, 0);
        assert_false(p.has_total);
        assert_false(p.on_failure_rollback);
        fl_waves_policy_release(&p);
    }
    /* Stored as JSON and read back: the same policy. */
    assert_int_equal(fl_waves_policy_parse(&p, s_get, &ok, NULL), 0);
    j = fl_waves_policy_json(&p);
    json_object_del(j, "seed"); /* an integer; read back by rollout.c */
    json_object_del(j, "max_parallel");
    json_object_del(j, "max_parallel_per_agent");
    json_object_del(j, "max_parallel_per_server");
    assert_int_equal(fl_waves_policy_parse(&q, s_get_json, j, NULL), 0);
    assert_string_equal(q.waves, p.waves);
    assert_int_equal(q.bake_ms, 30000);
    assert_true(q.max_failures.is_percent);
    assert_true(q.on_failure_rollback);
    json_decref(j);
    /* Waves: a selector, a percentage; bad ones refused with a hint. */
    assert_int_equal(fl_waves_parse(&w, &nw, q.waves, NULL), 0);
    assert_int_equal(nw, 3);
    assert_true(w[0].is_selector);
    assert_true(w[1].cp.is_percent);
    fl_waves_release(w, nw);
    assert_int_not_equal(fl_waves_parse(&w, &nw, "0", &err), 0);
    fl_error_clear(&err);
    assert_int_not_equal(fl_waves_parse(&w, &nw, "1;;x", &err), 0);
    fl_error_clear(&err);
    assert_int_not_equal(fl_waves_parse(&w, &nw, "", &err), 0);
    fl_error_clear(&err);
    /* At most FL_WAVES_MAX (64) waves (docs/rollouts.md, "Policy"). */
    {
        char many[4 * (FL_WAVES_MAX + 1)] = "";
        size_t len = 0;

        for (int i = 0; i < FL_WAVES_MAX; i++)
            len += (size_t)snprintf(many + len, sizeof(many) - len, "%s",
                                    i ? ";1" : "1");
        assert_int_equal(fl_waves_parse(&w, &nw, many, NULL), 0);
        assert_int_equal(nw, FL_WAVES_MAX);
        fl_waves_release(w, nw);
        snprintf(many + len, sizeof(many) - len, ";1");
        assert_int_not_equal(fl_waves_parse(&w, &nw, many, &err), 0);
        assert_non_null(strstr(err.message, "more than 64 waves"));
        fl_error_clear(&err);
    }
    fl_waves_policy_release(&p);
    fl_waves_policy_release(&q);
}

/*
 * Which targets a rollback takes (fl_waves_touched), case by case: the
 * ledger as read decides once it was read after the command's outcome;
 * until then, anything sent counts as touched.
 */
static void
test_waves_touched_only_what_the_ledger_or_a_command_shows(void **state)
{
    static const struct {
        const char *what;
        int known, sent, row_of; /* row_of: 0 none, 1 this, 2 this rolled
                                    back, 3 another rollout's */
        uint8_t status, cmd_state;
        int seq_moved;           /* a ledger read since the outcome */
        int want;
        int timed_out;           /* failed for its target_timeout: 1 its
                                    own result not come, 2 come */
    } cases[] = {
        {"held, never sent", 1, 0, 0, FL_CO_PENDING, FL_CO_CMD_HELD, 0, 0, 0},
        {"never sent, unreachable", 1, 0, 0, FL_CO_UNREACHABLE,
         FL_CO_CMD_DONE, 1, 0, 0},
        {"never sent, yet its ledger records the rollout", 1, 0, 1,
         FL_CO_PENDING, FL_CO_CMD_HELD, 0, 1, 0},
        {"never sent, a row of the rollout rolled back", 1, 0, 2,
         FL_CO_PENDING, FL_CO_CMD_HELD, 0, 0, 0},
        {"never sent, a row of another rollout", 1, 0, 3, FL_CO_PENDING,
         FL_CO_CMD_HELD, 0, 0, 0},
        {"queued, maybe on the wire", 1, 1, 0, FL_CO_PENDING,
         FL_CO_CMD_QUEUED, 0, 1, 0},
        {"running", 1, 1, 0, FL_CO_PENDING, FL_CO_CMD_SENT, 0, 1, 0},
        {"applied, ledger not read since", 1, 1, 0, FL_CO_OK,
         FL_CO_CMD_DONE, 0, 1, 0},
        {"applied, ledger read since shows it", 1, 1, 1, FL_CO_OK,
         FL_CO_CMD_DONE, 1, 1, 0},
        /* Found applied already, by an earlier rollout of the bundle. */
        {"applied, ledger read since shows another rollout's row", 1, 1, 3,
         FL_CO_OK, FL_CO_CMD_DONE, 1, 0, 0},
        {"applied, ledger read since without it", 1, 1, 0, FL_CO_OK,
         FL_CO_CMD_DONE, 1, 0, 0},
        {"failed, outcome being written", 1, 1, 0, FL_CO_FAILED,
         FL_CO_CMD_RECORDING, 1, 1, 0},
        {"failed, ledger not read since", 1, 1, 0, FL_CO_FAILED,
         FL_CO_CMD_DONE, 0, 1, 0},
        {"failed, ledger read since shows nothing", 1, 1, 0, FL_CO_FAILED,
         FL_CO_CMD_DONE, 1, 0, 0},
        /* It may still run on its agent, cut off when the cancel went. */
        {"timed out, its result not come, ledger read since shows nothing",
         1, 1, 0, FL_CO_FAILED, FL_CO_CMD_DONE, 1, 1, 1},
        {"timed out, its result come, ledger read since shows nothing", 1,
         1, 0, FL_CO_FAILED, FL_CO_CMD_DONE, 1, 0, 2},
        {"failed, ledger read since shows it partly applied", 1, 1, 1,
         FL_CO_FAILED, FL_CO_CMD_DONE, 1, 1, 0},
        {"refused, ledger read since shows nothing", 1, 1, 0, FL_CO_REFUSED,
         FL_CO_CMD_DONE, 1, 0, 0},
        {"cancelled, ledger not read since", 1, 1, 0, FL_CO_CANCELLED,
         FL_CO_CMD_DONE, 0, 1, 0},
        {"cancelled, ledger read since shows nothing", 1, 1, 0,
         FL_CO_CANCELLED, FL_CO_CMD_DONE, 1, 0, 0},
        {"failed, its ledger could not be read", 0, 1, 0, FL_CO_FAILED,
         FL_CO_CMD_DONE, 1, 1, 0},
        {"never sent, its ledger could not be read", 0, 0, 0, FL_CO_PENDING,
         FL_CO_CMD_HELD, 0, 0, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fl_co_row_t row;
        fl_co_target_t t;
        fl_co_command_t c;
        fl_co_detail_t detail;

        memset(&detail, 0, sizeof(detail));
        memset(&row, 0, sizeof(row));
        memset(&t, 0, sizeof(t));
        memset(&c, 0, sizeof(c));
        row.status = cases[i].row_of == 2 ? FL_CO_ROW_ROLLED_BACK
                                          : FL_CO_ROW_FAILED;
        row.rollout = cases[i].row_of == 3 ? "0123456789abcdef0123456789abcdef"
                                           : "fedcba9876543210fedcba9876543210";
        t.known = cases[i].known;
        t.rows = cases[i].row_of ? &row : NULL;
        t.nrows = cases[i].row_of ? 1 : 0;
        t.state_seq = 7 + (uint32_t)cases[i].seq_moved;
        c.target = &t;
        c.sent_once = (uint8_t)cases[i].sent;
        c.status = cases[i].status;
        c.state = cases[i].cmd_state;
        c.state_seq = 7;
        if (cases[i].timed_out) {
            detail.message = FL_CO_TIMED_OUT;
            detail.detail = cases[i].timed_out == 2
                                ? "after target_timeout its run ended "
                                  "cancelled"
                                : NULL;
            c.detail = &detail;
        }
        if (fl_waves_touched(&c, "fedcba9876543210fedcba9876543210") !=
            cases[i].want)
            fail_msg("%s: touched should be %d", cases[i].what,
                     cases[i].want);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_waves_cut_generated_fleets_hold_every_invariant),
        cmocka_unit_test(test_waves_cut_shuffle_seed_decides_the_order),
        cmocka_unit_test(test_waves_exceeded_more_than_allowed_never_equal),
        cmocka_unit_test(
            test_waves_policy_parse_defaults_round_trip_and_refusals),
        cmocka_unit_test(
            test_waves_touched_only_what_the_ledger_or_a_command_shows),
    };

    return cmocka_run_group_tests_name("waves", tests, NULL, NULL);
}
