/*
 * Exactly once under kill -9, attacked at random moments (DESIGN.md,
 * guarantee 1, and issue 10's no-transaction progress).  Each seed makes a
 * random history: transactional migrations that create and fill a table,
 * no-transaction ones whose statements each commit on their own (some
 * with CREATE INDEX CONCURRENTLY), and migrations that update a row (a
 * backup is taken first).  `flotilla apply` is started and killed with
 * SIGKILL after a random delay, several times, then left to finish; then
 * `flotilla rollback` the same way.  The kills land anywhere: in a
 * statement, between a statement and its progress row, between the
 * ledger row and COMMIT sent in one batch, in the backup, in the
 * bookkeeping after COMMIT, in the next process's start.
 *
 * Every statement of up and down writes a row naming itself into fx,
 * which no migration creates, so a statement run twice or never shows as
 * a count other than one.  After the apply finishes: the ledger says
 * every migration applied, each up statement's row is there exactly once,
 * the counter was bumped once per updating migration.  After the rollback
 * finishes: nothing applied, each up and each down statement's row is
 * there exactly once (a rollback does not take back rows an INSERT added
 * to a table the migration did not back up: fx is such a table), the
 * counter is back at 0 (its row was backed up and is put back), no table
 * or index of the history is left.  A failing seed is printed with its history, its delays and every
 * run's output.
 *
 *   FLOTILLA_KILL_SEEDS=N   seeds 1..N (default 6)
 *   FLOTILLA_KILL_SEED=N    only seed N
 *
 * The same with SIGTERM, which flotilla catches (cancel, record, exit 6):
 * each run so stopped must also say so and record what it did
 * (FLOTILLA_TERM_SEEDS, FLOTILLA_TERM_SEED).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "testsupport.h"

#define K_MAX_MIGRATIONS 7
#define K_KILLS 4              /* kills per phase at most */

enum { K_CREATE, K_NOTX, K_UPDATE };

typedef struct {
    uint64_t rng;
    int n;                      /* migrations */
    int kind[K_MAX_MIGRATIONS];
    int ups[K_MAX_MIGRATIONS];  /* up statements writing fx */
    int downs[K_MAX_MIGRATIONS];
    int cic[K_MAX_MIGRATIONS];  /* a no-transaction one builds an index */
    fl_buf_t log;               /* what happened, printed on failure */
} k_seed_t;

static int
k_range(k_seed_t *s, int lo, int hi)
{
    return lo + (int)(fl_test_rng_next(&s->rng) % (uint64_t)(hi - lo + 1));
}

static long
k_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Writes migration i (1-based version i) of the seed into the workspace. */
static void
k_write(fl_test_ws_t *ws, k_seed_t *s, int i)
{
    int k = i + 1;
    fl_buf_t b = FL_BUF_INIT(0);
    char file[64];

    if (s->kind[i] == K_NOTX)
        fl_buf_adds(&b, "-- flotilla:options no-transaction\n");
    fl_buf_adds(&b, "-- flotilla:up\n");
    switch (s->kind[i]) {
    case K_CREATE:
        fl_buf_addf(&b, "INSERT INTO fx (phase, k, s) VALUES ('up', %d, 1);\n"
                        "CREATE TABLE t_%d (id int PRIMARY KEY, v text);\n"
                        "INSERT INTO t_%d SELECT g, 'x' FROM"
                        " generate_series(1, %d) g;\n"
                        "INSERT INTO fx (phase, k, s) VALUES ('up', %d, 2);\n",
                    k, k, k, k_range(s, 1, 20000), k);
        s->ups[i] = 2;
        break;
    case K_NOTX:
        s->ups[i] = k_range(s, 2, 4);
        s->cic[i] = k_range(s, 0, 1);
        for (int j = 1; j <= s->ups[i]; j++) {
            fl_buf_addf(&b, "INSERT INTO fx (phase, k, s) VALUES ('up', %d,"
                            " %d);\n", k, j);
            if (s->cic[i] && j == 1)
                fl_buf_addf(&b, "CREATE INDEX CONCURRENTLY i_%d ON fx (s)"
                                " WHERE k = %d;\n", k, k);
        }
        break;
    default:
        fl_buf_addf(&b, "UPDATE ctr SET n = n + 1 WHERE id = 1;\n"
                        "INSERT INTO fx (phase, k, s) VALUES ('up', %d, 1);\n",
                    k);
        s->ups[i] = 1;
        break;
    }
    fl_buf_adds(&b, "-- flotilla:down\n");
    s->downs[i] = 1;
    fl_buf_addf(&b, "INSERT INTO fx (phase, k, s) VALUES ('down', %d, 1);\n",
                k);
    if (s->kind[i] == K_CREATE)
        fl_buf_addf(&b, "DROP TABLE t_%d;\n", k);
    if (s->kind[i] == K_NOTX && s->cic[i])
        fl_buf_addf(&b, "DROP INDEX CONCURRENTLY i_%d;\n", k);
    snprintf(file, sizeof(file), "%04d_m%d.sql", k, k);
    fl_test_ws_write(ws, file, fl_buf_str(&b));
    fl_buf_addf(&s->log, "--- %s\n%s", file, fl_buf_str(&b));
    fl_buf_release(&b);
}

/*
 * Runs cmd (apply, or rollback of everything) stopped with sig (SIGKILL
 * or SIGTERM) after random delays below max_ms, at most K_KILLS times,
 * then once to its end.  Returns the last run's exit status.  A run
 * stopped by SIGTERM must end as flotilla says it does (docs/pipeline.md,
 * "Signals"): finished (0), interrupted with what it did recorded (6), or
 * ended by the signal itself when it came before flotilla caught signals;
 * and never without recording what it did (why gets the breach).
 */
static int
k_phase(fl_test_ws_t *ws, k_seed_t *s, const char *cmd, long max_ms, int sig,
        fl_buf_t *why)
{
    const char *const to0[] = {"--to", "0", NULL};
    const char *const *extra = strcmp(cmd, "rollback") == 0 ? to0 : NULL;
    fl_test_proc_t r;
    int status;

    for (int a = 0; a < K_KILLS; a++) {
        fl_test_child_t c;
        long delay = k_range(s, 0, (int)max_ms);

        fl_test_ws_spawn(ws, &c, cmd, extra, 1);
        usleep((useconds_t)delay * 1000);
        fl_test_child_signal(&c, sig);
        fl_test_child_wait(&c, &r, 120);
        fl_buf_addf(&s->log, "--- %s sent %s after %ld ms: exit %d\n%s%s",
                    cmd, sig == SIGKILL ? "SIGKILL" : "SIGTERM", delay,
                    r.status, r.out, r.err);
        status = r.status;
        if (sig == SIGTERM && status != 0 && status != 6 &&
            status != 128 + SIGTERM)
            fl_buf_addf(why, "  %s after SIGTERM exited %d (0, 6 or %d "
                        "expected)\n", cmd, status, 128 + SIGTERM);
        if (sig == SIGTERM && strstr(r.err, "could not record") != NULL)
            fl_buf_addf(why, "  %s after SIGTERM did not record what it "
                        "did\n", cmd);
        fl_test_proc_release(&r);
        if (status == 0)
            break; /* it finished before the kill */
    }
    /* The last run waits for the killed ones' sessions to end. */
    fl_test_ws_await(ws, FL_TEST_GONE, 120);
    fl_test_ws_flotilla(ws, &r, cmd, extra, 1);
    fl_buf_addf(&s->log, "--- %s to the end: exit %d\n%s%s", cmd, r.status,
                r.out, r.err);
    status = r.status;
    fl_test_proc_release(&r);
    return status;
}

/* The value of a one-value query. */
static char *
k_value(fl_test_ws_t *ws, const char *sql)
{
    return fl_test_query_value(ws->conn, sql);
}

/* Adds to why (a check of the seed failed) when got differs from want. */
static void
k_check(fl_test_ws_t *ws, fl_buf_t *why, const char *what, const char *sql,
        const char *want)
{
    char *got = k_value(ws, sql);

    if (got == NULL || strcmp(got, want) != 0)
        fl_buf_addf(why, "  %s: %s, expected %s\n", what,
                    got ? got : "(null)", want);
    free(got);
}

/* The fx rows whose count is not one, as text ("" when none). */
#define K_NOT_ONCE                                                          \
    "SELECT coalesce(string_agg(format('%s %s.%s x%s', phase, k, s, c),"    \
    " ', ' ORDER BY phase, k, s), '') FROM (SELECT phase, k, s, count(*) c" \
    " FROM fx GROUP BY 1, 2, 3) x WHERE c <> 1"

/*
 * One seed, its runs stopped with sig; returns 0 when every invariant
 * held, else prints and fails.
 */
static int
k_seed(long seed, long apply_ms, long rollback_ms, int sig)
{
    k_seed_t s;
    fl_test_ws_t ws;
    fl_buf_t why = FL_BUF_INIT(0);
    int ups = 0, updates = 0, creates = 0, status;
    char want[32], *sql = NULL;

    memset(&s, 0, sizeof(s));
    s.rng = (uint64_t)seed * 7919u + 1;
    fl_buf_init(&s.log, 0);
    s.n = k_range(&s, 3, K_MAX_MIGRATIONS);
    fl_test_ws_open(&ws, "kill");
    fl_test_exec(ws.conn,
                 "CREATE TABLE fx (id bigserial PRIMARY KEY, phase text NOT"
                 " NULL, k int NOT NULL, s int NOT NULL);"
                 "CREATE TABLE ctr (id int PRIMARY KEY, n int NOT NULL);"
                 "INSERT INTO ctr VALUES (1, 0)");
    for (int i = 0; i < s.n; i++) {
        s.kind[i] = k_range(&s, 0, 2);
        k_write(&ws, &s, i);
        ups += s.ups[i];
        updates += s.kind[i] == K_UPDATE;
        creates += s.kind[i] == K_CREATE;
    }

    status = k_phase(&ws, &s, "apply", apply_ms * s.n / 4, sig, &why);
    if (status != 0)
        fl_buf_addf(&why, "  apply to the end exited %d\n", status);
    snprintf(want, sizeof(want), "%d", s.n);
    k_check(&ws, &why, "applied migrations", "SELECT count(*) FROM"
            " flotilla.schema_migrations WHERE status = 'applied'", want);
    k_check(&ws, &why, "fx rows not written exactly once", K_NOT_ONCE, "");
    snprintf(want, sizeof(want), "%d", ups);
    k_check(&ws, &why, "up rows", "SELECT count(*) FROM fx", want);
    snprintf(want, sizeof(want), "%d", updates);
    k_check(&ws, &why, "counter", "SELECT n FROM ctr", want);
    snprintf(want, sizeof(want), "%d", creates);
    k_check(&ws, &why, "tables", "SELECT count(*) FROM pg_class WHERE relname"
            " ~ '^t_[0-9]+$' AND relkind = 'r'", want);
    k_check(&ws, &why, "invalid indexes", "SELECT count(*) FROM pg_index"
            " WHERE NOT indisvalid", "0");

    if (why.len == 0) {
        status = k_phase(&ws, &s, "rollback", rollback_ms * s.n / 4, sig,
                         &why);
        if (status != 0)
            fl_buf_addf(&why, "  rollback to the end exited %d\n", status);
        k_check(&ws, &why, "applied after rollback", "SELECT count(*) FROM"
                " flotilla.schema_migrations WHERE status = 'applied'", "0");
        k_check(&ws, &why, "fx rows not written exactly once", K_NOT_ONCE, "");
        snprintf(want, sizeof(want), "%d", ups);
        k_check(&ws, &why, "up rows", "SELECT count(*) FROM fx WHERE"
                " phase = 'up'", want);
        snprintf(want, sizeof(want), "%d", s.n);
        k_check(&ws, &why, "down rows", "SELECT count(*) FROM fx WHERE"
                " phase = 'down'", want);
        k_check(&ws, &why, "counter after rollback", "SELECT n FROM ctr", "0");
        sql = fl_asprintf("SELECT count(*) FROM pg_class WHERE relname ~"
                          " '^(t|i)_[0-9]+$'");
        k_check(&ws, &why, "tables and indexes left", sql, "0");
        free(sql);
    }
    if (why.len > 0)
        fprintf(stderr, "=== %s seed %ld FAILED (FLOTILLA_%s_SEED=%ld runs it"
                        " alone):\n%s%s", sig == SIGKILL ? "SIGKILL" :
                "SIGTERM", seed, sig == SIGKILL ? "KILL" : "TERM", seed,
                fl_buf_str(&why), fl_buf_str(&s.log));
    else
        fprintf(stderr, "=== %s seed %ld: %d migrations, passed\n",
                sig == SIGKILL ? "SIGKILL" : "SIGTERM", seed, s.n);
    status = why.len > 0;
    fl_buf_release(&why);
    fl_buf_release(&s.log);
    fl_test_ws_close(&ws);
    return status;
}

/*
 * How long an uninterrupted apply and rollback of four migrations take
 * here (the kills' delays are drawn below these, scaled to each seed).
 */
static void
k_calibrate(long *apply_ms, long *rollback_ms)
{
    k_seed_t s;
    fl_test_ws_t ws;
    fl_test_proc_t r;
    const char *const to0[] = {"--to", "0", NULL};
    long t0;

    memset(&s, 0, sizeof(s));
    s.rng = 1;
    fl_buf_init(&s.log, 0);
    fl_test_ws_open(&ws, "killcal");
    fl_test_exec(ws.conn,
                 "CREATE TABLE fx (id bigserial PRIMARY KEY, phase text NOT"
                 " NULL, k int NOT NULL, s int NOT NULL);"
                 "CREATE TABLE ctr (id int PRIMARY KEY, n int NOT NULL);"
                 "INSERT INTO ctr VALUES (1, 0)");
    for (int i = 0; i < 4; i++) {
        s.kind[i] = i % 3;
        k_write(&ws, &s, i);
    }
    t0 = k_now_ms();
    fl_test_ws_flotilla(&ws, &r, "apply", NULL, 1);
    *apply_ms = k_now_ms() - t0;
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    t0 = k_now_ms();
    fl_test_ws_flotilla(&ws, &r, "rollback", to0, 1);
    *rollback_ms = k_now_ms() - t0;
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    fl_buf_release(&s.log);
    fl_test_ws_close(&ws);
    fprintf(stderr, "=== calibration: apply %ld ms, rollback %ld ms\n",
            *apply_ms, *rollback_ms);
}

/* The seeds of FLOTILLA_<name>_SEEDS (default nseeds), or <name>_SEED's. */
static void
k_seeds(const char *name, long nseeds, int sig)
{
    char *one = fl_asprintf("FLOTILLA_%s_SEED", name);
    char *all = fl_asprintf("FLOTILLA_%s_SEEDS", name);
    long only = fl_test_env_long(one, 0);
    long n = fl_test_env_long(all, nseeds);
    long first = only ? only : 1, last = only ? only : n;
    long apply_ms = 0, rollback_ms = 0;
    int failed = 0;

    k_calibrate(&apply_ms, &rollback_ms);
    for (long seed = first; seed <= last; seed++)
        failed += k_seed(seed, apply_ms, rollback_ms, sig);
    free(one);
    free(all);
    if (failed > 0)
        fail_msg("%d of %ld seeds failed (listed above)", failed,
                 last - first + 1);
}

static void
test_kill_9_at_random_moments_runs_every_statement_once(void **state)
{
    (void)state;
    k_seeds("KILL", 6, SIGKILL);
}

/*
 * The same histories and invariants with SIGTERM, which flotilla catches:
 * each run stopped so must also end as it says (k_phase), its statement
 * cancelled and what it did recorded, and the runs after it go on from
 * there (FLOTILLA_TERM_SEEDS, default 6; FLOTILLA_TERM_SEED).
 */
static void
test_sigterm_at_random_moments_records_and_runs_every_statement_once(
    void **state)
{
    (void)state;
    k_seeds("TERM", 6, SIGTERM);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_9_at_random_moments_runs_every_statement_once),
        cmocka_unit_test(test_sigterm_at_random_moments_records_and_runs_every_statement_once),
    };
    return cmocka_run_group_tests_name("kill9", tests, NULL, NULL);
}
