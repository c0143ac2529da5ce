/*
 * Integration tests of the pipeline library itself, as the agent daemon
 * will drive it: events through the callback, and cancellation from
 * another thread leaving nothing applied.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/pipeline.h"
#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "testsupport.h"

/*
 * Retry jitter comes from a random source, not a seed both pipelines of a
 * process share (time ^ pid made them retry in step, as a herd).
 */
static void
test_pipelines_of_one_process_do_not_retry_in_step(void **state)
{
    fl_test_db_t db;
    fl_pipeline_opts_t opts = FL_PIPELINE_OPTS_INIT;
    fl_pipeline_t *a = NULL, *b = NULL;
    fl_error_t err = FL_ERROR_INIT;
    int same = 0;

    (void)state;
    fl_test_db_create(&db, "jit");
    opts.dsn = db.conninfo;
    assert_int_equal(fl_pipeline_open(&a, &opts, &err), 0);
    assert_int_equal(fl_pipeline_open(&b, &opts, &err), 0);
    for (int i = 0; i < 32; i++) {
        int64_t x = fl__pipeline_backoff(a, 1000, 3);
        int64_t y = fl__pipeline_backoff(b, 1000, 3);
        assert_true(x >= 4000 && x <= 8000);
        assert_true(y >= 4000 && y <= 8000);
        same += x == y;
    }
    /* Two independent draws in 4,001 values agree rarely, not 32 times. */
    assert_true(same < 4);
    fl_pipeline_close(&a);
    fl_pipeline_close(&b);
    fl_test_db_drop(&db);
}

typedef struct {
    fl_buf_t events; /* "step:status version\n" per event */
    pthread_mutex_t lock;
} s_events;

static void
s_on_event(const fl_pipeline_event_t *ev, void *arg)
{
    s_events *e = arg;

    pthread_mutex_lock(&e->lock);
    fl_buf_addf(&e->events, "%s:%s %lld\n", fl_step_name(ev->step),
                        fl_step_status_name(ev->status), (long long)ev->version);
    pthread_mutex_unlock(&e->lock);
}

static void
s_write(const char *dir, const char *file, const char *text)
{
    char *path = fl_asprintf("%s/%s", dir, file);

    fl_test_write_file(path, text);
    free(path);
}

/* The pipeline takes only what fl_source_open verified. */
static void
s_open(fl_source_t *src, const char *dir)
{
    fl_error_t err = FL_ERROR_INIT;

    if (fl_source_open(src, dir, NULL, 0, 0, &err) != 0)
        fail_msg("%s: %s", dir, err.message);
}

static void
test_events_follow_the_steps_in_order(void **state)
{
    fl_test_db_t db;
    fl_pipeline_opts_t opts = FL_PIPELINE_OPTS_INIT;
    fl_pipeline_t *p = NULL;
    fl_source_t src = FL_SOURCE_INIT;
    fl_apply_result_t res;
    fl_error_t err = FL_ERROR_INIT;
    s_events ev = {FL_BUF_INIT(0), PTHREAD_MUTEX_INITIALIZER};
    const char *got = NULL;
    char *dir = fl_test_tmpdir();

    (void)state;
    fl_test_db_create(&db, "lib");
    s_write(dir, "0001_t.sql", "-- flotilla:up\nCREATE TABLE t (id int);\n"
                               "INSERT INTO t VALUES (1);\n"
                               "-- flotilla:down\nDROP TABLE t;\n");
    s_write(dir, "0002_u.sql", "-- flotilla:up\nDELETE FROM t;\n"
                               "-- flotilla:down\nSELECT 1;\n");
    s_open(&src, dir);
    opts.dsn = db.conninfo;
    opts.on_event = s_on_event;
    opts.arg = &ev;
    assert_int_equal(fl_pipeline_open(&p, &opts, &err), 0);
    assert_int_equal(fl_pipeline_apply(p, &src, &res, &err), 0);
    assert_int_equal(res.applied, 2);
    fl_pipeline_close(&p);
    assert_null(p);
    got = fl_buf_str(&ev.events);
    assert_string_equal(got,
        "verify:ok 0\n"
        "validate:started 1\nvalidate:ok 1\nexecute:started 1\nexecute:ok 1\n"
        "verify-after:ok 1\n"
        "validate:started 2\nvalidate:ok 2\nexecute:started 2\nbackup:ok 2\n"
        "execute:ok 2\nverify-after:ok 2\n");
    fl_buf_release(&ev.events);
    fl_source_close(&src);
    fl_test_rmtree(dir);
    free(dir);
    fl_test_db_drop(&db);
}

typedef struct {
    fl_pipeline_t *p;
    const fl_source_t *src;
    int rc;
    fl_error_t err;
} s_job;

static void *
s_apply_thread(void *arg)
{
    s_job *j = arg;
    fl_apply_result_t res;

    j->rc = fl_pipeline_apply(j->p, j->src, &res, &j->err);
    return NULL;
}

static void
test_cancel_from_another_thread_leaves_nothing_applied(void **state)
{
    fl_test_db_t db;
    fl_pipeline_opts_t opts = FL_PIPELINE_OPTS_INIT;
    fl_source_t src = FL_SOURCE_INIT;
    s_job job;
    pthread_t th;
    PGconn *conn = NULL;
    char *v = NULL;
    char *dir = fl_test_tmpdir();
    int seen = 0;

    (void)state;
    memset(&job, 0, sizeof(job));
    fl_test_db_create(&db, "cancel");
    conn = fl_test_db_connect(&db);
    s_write(dir, "0001_slow.sql", "-- flotilla:up\nCREATE TABLE slow (id int);\n"
                                  "SELECT pg_sleep(30);\n"
                                  "-- flotilla:down\nDROP TABLE slow;\n");
    s_open(&src, dir);
    opts.dsn = db.conninfo;
    assert_int_equal(fl_pipeline_open(&job.p, &opts, &job.err), 0);
    job.src = &src;
    pthread_create(&th, NULL, s_apply_thread, &job);
    for (int i = 0; i < 600 && !seen; i++) {
        v = fl_test_query_value(conn, "SELECT count(*) FROM pg_stat_activity"
                                      " WHERE query LIKE 'SELECT pg_sleep(30)%'");
        seen = strcmp(v, "1") == 0;
        free(v);
        usleep(50000);
    }
    assert_true(seen);
    fl_pipeline_cancel(job.p);
    pthread_join(th, NULL);
    assert_int_equal(job.rc, FL_ECANCELLED);
    assert_non_null(strstr(job.err.message, "0001_slow.sql:3:1"));
    fl_pipeline_close(&job.p);
    v = fl_test_query_value(conn, "SELECT to_regclass('slow') IS NULL");
    assert_string_equal(v, "t");
    free(v);
    v = fl_test_query_value(conn, "SELECT status FROM flotilla.schema_migrations");
    assert_string_equal(v, "failed");
    free(v);
    fl_error_clear(&job.err);
    PQfinish(conn);
    fl_source_close(&src);
    fl_test_rmtree(dir);
    free(dir);
    fl_test_db_drop(&db);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_follow_the_steps_in_order),
        cmocka_unit_test(test_pipelines_of_one_process_do_not_retry_in_step),
        cmocka_unit_test(test_cancel_from_another_thread_leaves_nothing_applied),
    };
    return cmocka_run_group_tests_name("pipeline_lib", tests, NULL, NULL);
}
