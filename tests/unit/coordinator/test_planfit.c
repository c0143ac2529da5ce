/*
 * A plan report too large for an agent's result is cut to fit, and the
 * coordinator reads the same verdict from the cut text as from the whole
 * report (the agent used to drop a report over 900 KiB, and the
 * coordinator then counted a plan that would apply as refused).
 * Generative: seeded reports (1 to 24 migrations, verdicts ok, not
 * rehearsed, refused, failed; SQL texts up to 8 KiB; problems up to 2
 * KiB), each fitted into random limits.
 *
 *   FLOTILLA_FIT_SEEDS=N   seeds 1..N (default 150)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/planjson.h"
#include "common/alloc.h"
#include "coordinator/rollout.h"

static uint64_t
s_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int
s_range(uint64_t *s, int lo, int hi)
{
    return lo + (int)(s_next(s) % (uint64_t)(hi - lo + 1));
}

/* A text of n bytes, with a two-byte character here and there. */
static char *
s_text(uint64_t *s, size_t n)
{
    char *t = fl_malloc(n + 1);
    size_t i = 0;

    while (i < n) {
        if (i + 2 <= n && s_range(s, 0, 9) == 0) {
            t[i++] = (char)0xC3; /* é */
            t[i++] = (char)0xA9;
        } else {
            t[i++] = (char)('a' + s_range(s, 0, 25));
        }
    }
    t[n] = '\0';
    return t;
}

/* A report of seed s, shaped as fl_plan_json makes it from a plan. */
static void
s_plan(uint64_t *s, fl_plan_t *p)
{
    static const char *const verdicts[] = {"ok", "ok", "ok", "not rehearsed",
                                           "refused", "failed"};
    int bad = 0, unrehearsed = 0;

    memset(p, 0, sizeof(*p));
    p->target = fl_strdup("host=/tmp port=5432 dbname=tenant_1");
    p->rehearse = 1;
    p->nmigrations = (size_t)s_range(s, 1, 24);
    p->migrations = fl_calloc(p->nmigrations, sizeof(*p->migrations));
    for (size_t i = 0; i < p->nmigrations; i++) {
        fl_plan_migration_t *m = &p->migrations[i];
        char v[24];

        snprintf(v, sizeof(v), "%zu", i + 1);
        assert_int_equal(fl_version_parse_str(&m->version, v, NULL), 0);
        m->name = fl_strdup("m");
        m->file = fl_asprintf("%04zu_m.sql", i + 1);
        m->checksum = fl_strdup("abc");
        m->state = fl_strdup("pending");
        m->pending = 1;
        m->verdict = verdicts[s_range(s, 0, 5)];
        bad += strcmp(m->verdict, "refused") == 0 ||
               strcmp(m->verdict, "failed") == 0;
        unrehearsed += strcmp(m->verdict, "not rehearsed") == 0;
        if (strcmp(m->verdict, "ok") != 0)
            m->problem = s_text(s, (size_t)s_range(s, 1, 2048));
        m->nstmts = (size_t)s_range(s, 1, 4);
        m->stmts = fl_calloc(m->nstmts, sizeof(*m->stmts));
        for (size_t j = 0; j < m->nstmts; j++) {
            m->stmts[j].index = (int)j + 1;
            m->stmts[j].kind = fl_strdup("INSERT");
            m->stmts[j].sql = s_text(s, (size_t)s_range(s, 1, 8192));
            m->stmts[j].rehearsal = fl_strdup("ok");
        }
    }
    p->pending = (int)p->nmigrations;
    p->rehearsed = p->pending - unrehearsed;
    p->ok = bad == 0;
    p->proven = p->ok && unrehearsed == 0;
}

static void
test_a_cut_report_fits_and_keeps_its_verdict(void **state)
{
    long seeds = 150;
    const char *env = getenv("FLOTILLA_FIT_SEEDS");
    int cut = 0;

    (void)state;
    if (env != NULL && *env != '\0')
        seeds = strtol(env, NULL, 10);
    for (long seed = 1; seed <= seeds; seed++) {
        uint64_t s = (uint64_t)seed;
        fl_plan_t plan;
        json_t *report = NULL;
        char *whole = NULL, *text = NULL, *why = NULL, *why_cut = NULL;
        const char *verdict, *verdict_cut;
        size_t max;

        s_plan(&s, &plan);
        report = fl_plan_json(&plan);
        whole = json_dumps(report, JSON_COMPACT);
        assert_non_null(whole);
        max = (size_t)s_range(&s, 2048, (int)strlen(whole) + 512);
        text = fl_plan_json_fit(report, max);
        if (text == NULL)
            fail_msg("seed %ld: no report fits in %zu bytes", seed, max);
        if (strlen(text) > max)
            fail_msg("seed %ld: %zu bytes, over %zu", seed, strlen(text), max);
        if (strlen(whole) <= max && strcmp(text, whole) != 0)
            fail_msg("seed %ld: a report that fits was changed", seed);
        cut += strlen(whole) > max;
        if (strlen(whole) > max && strstr(text, "\"cut\":") == NULL)
            fail_msg("seed %ld: a cut report does not say so", seed);
        verdict = fl_rollout_plan_verdict(whole, &why);
        verdict_cut = fl_rollout_plan_verdict(text, &why_cut);
        if (strcmp(verdict, verdict_cut) != 0)
            fail_msg("seed %ld: verdict \"%s\" became \"%s\" when cut to %zu "
                     "bytes", seed, verdict, verdict_cut, max);
        /* The reason survives, shortened at worst. */
        if ((why == NULL) != (why_cut == NULL) ||
            (why != NULL && strncmp(why, why_cut, 64) != 0))
            fail_msg("seed %ld: why \"%.80s\" became \"%.80s\"", seed,
                     why ? why : "(none)", why_cut ? why_cut : "(none)");
        free(why);
        free(why_cut);
        free(text);
        free(whole);
        json_decref(report);
        fl_plan_release(&plan);
    }
    /* The limits drawn must make most reports cut. */
    assert_true(cut > seeds / 2);
}

/*
 * A target whose schema changed outside flotilla says so in its reason,
 * whatever its verdict: the fleet-wide plan shows which tenants drifted.
 */
static void
test_a_changed_schema_is_named_in_the_reason(void **state)
{
    static const char would_apply[] =
        "{\"ok\": true, \"pending\": 1, \"proven\": true, \"problem\": null,"
        " \"migrations\": [{\"version\": \"6\", \"verdict\": \"ok\"}],"
        " \"schema_state\": {\"recorded_after\": \"apply 5\","
        " \"recorded_at\": \"2026-12-05T00:30:29Z\", \"changed\": %s}}";
    static const char refused[] =
        "{\"ok\": false, \"pending\": 1, \"problem\": null,"
        " \"migrations\": [{\"version\": \"6\", \"verdict\": \"refused\","
        " \"problem\": \"3 rows are NULL\"}],"
        " \"schema_state\": {\"recorded_after\": \"rollback 7\","
        " \"recorded_at\": \"2026-12-05T00:30:29Z\", \"changed\": true}}";
    char *report = NULL, *why = NULL;

    (void)state;
    report = fl_asprintf(would_apply, "true");
    assert_string_equal(fl_rollout_plan_verdict(report, &why), "would apply");
    assert_string_equal(why, "the schema changed outside flotilla since "
                             "apply 5 at 2026-12-05T00:30:29Z");
    free(why);
    free(report);
    report = fl_asprintf(would_apply, "false");
    assert_string_equal(fl_rollout_plan_verdict(report, &why), "would apply");
    assert_null(why);
    free(report);
    /* No state (an older agent's report, nothing recorded yet). */
    assert_string_equal(fl_rollout_plan_verdict(
                            "{\"ok\": true, \"pending\": 0, \"proven\": true,"
                            " \"migrations\": [], \"schema_state\": null}",
                            &why),
                        "already applied");
    assert_null(why);
    /* An agent's report without the texts. */
    assert_string_equal(fl_rollout_plan_verdict(
                            "{\"ok\": true, \"pending\": 0, \"proven\": true,"
                            " \"migrations\": [], \"schema_state\":"
                            " {\"changed\": true, \"recorded_at\": 7}}",
                            &why),
                        "already applied");
    assert_string_equal(why, "the schema changed outside flotilla since ? "
                             "at ?");
    free(why);
    assert_string_equal(fl_rollout_plan_verdict(refused, &why), "would fail");
    assert_string_equal(why, "migration 6: 3 rows are NULL; the schema "
                             "changed outside flotilla since rollback 7 at "
                             "2026-12-05T00:30:29Z");
    free(why);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_cut_report_fits_and_keeps_its_verdict),
        cmocka_unit_test(test_a_changed_schema_is_named_in_the_reason),
    };
    return cmocka_run_group_tests_name("planfit", tests, NULL, NULL);
}
