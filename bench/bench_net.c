/*
 * bench_net.c - what the before-commit net costs a migration (bench/net.sh).
 *
 * Per migration the net takes two catalog snapshots of the managed
 * relations (agent/net.c: one when the run starts, one before COMMIT),
 * reads the column catalog rows written since the transaction began, and
 * compares in memory.  This measures exactly that, with the real
 * functions on a real PostgreSQL, inside a transaction as the pipeline
 * runs it, for schemas of 10, 100 and 1,000 tables (each with a serial
 * sequence, so 2 relations a table), against the baseline of one
 * `SELECT 1` round trip on the same connection.  Median of 101 runs each.
 * Target: under 2 ms per migration on a schema of 100 tables.
 *
 * Usage: bench_net [DSN]   (default: the PG* environment)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/pg.h"
#include "agent/pipeline_internal.h"
#include "bench/benchutil.h"
#include "common/alloc.h"

#define RUNS 101


static void
s_die(const char *what, fl_error_t *err)
{
    fprintf(stderr, "bench_net: %s: %s\n", what,
            err->message ? err->message : "?");
    exit(1);
}

/* The comparison the net makes, over every relation of the snapshot. */
static int
s_compare(const fl_net_snap_t *pre, const fl_net_snap_t *post,
          const fl_net_touched_t *touched)
{
    int changed = 0;

    for (size_t i = 0; i < pre->n; i++) {
        const fl_net_rel_t *b = &pre->rels[i];
        const fl_net_rel_t *a = fl__net_find(post, b->oid);
        changed += a == NULL || a->relfilenode != b->relfilenode ||
                   a->n_upd != b->n_upd || a->n_del != b->n_del ||
                   fl__net_lost_column(touched, b);
    }
    return changed;
}

int
main(int argc, char **argv)
{
    static const int sizes[] = {10, 100, 1000};
    fl_pg_t *pg = NULL;
    fl_error_t err = FL_ERROR_INIT;
    fl_session_t session;
    double base[RUNS], net[RUNS];

    if (fl_pg_open(&pg, argc > 1 ? argv[1] : NULL, "bench_net", &err) != 0)
        s_die("connect", &err);
    if (fl__session_pin(pg, &session, "public", &err) != 0)
        s_die("pin", &err);
    printf("%-8s %-10s %-14s %-14s\n", "tables", "relations", "SELECT 1 (ms)",
           "net (ms)");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        fl_net_snap_t pre = {NULL, 0}, post = {NULL, 0};
        fl_net_touched_t touched = {NULL, 0, NULL, NULL, NULL, 0};
        int changed = 0;

        if (fl_pg_exec(pg, "DROP SCHEMA IF EXISTS bench_net CASCADE;"
                           "CREATE SCHEMA bench_net", &err) != 0 ||
            fl_pg_commandf(pg, &err, "DO $$ BEGIN FOR i IN 1..%d LOOP EXECUTE"
                           " pg_catalog.format('CREATE TABLE bench_net.t%%s"
                           " (id serial PRIMARY KEY, a text, b int)', i);"
                           " END LOOP; END $$", sizes[s]) != 0)
            s_die("schema", &err);
        for (int r = 0; r < RUNS; r++) {
            double t0, t1, t2;
            char *v = NULL;

            if (fl_pg_exec(pg, "BEGIN", &err) != 0)
                s_die("begin", &err);
            t0 = fl_bench_now();
            if (fl_pg_query_value(pg, &v, "SELECT 1", 0, NULL, &err) != 0)
                s_die("select 1", &err);
            t1 = fl_bench_now();
            if (fl__net_snapshot(pg, NULL, NULL, &pre, &err) != 0 ||
                fl__net_snapshot(pg, NULL, NULL, &post, &err) != 0 ||
                fl__net_touched_columns(pg, &touched, &err) != 0)
                s_die("snapshot", &err);
            changed += s_compare(&pre, &post, &touched);
            fl__net_touched_release(&touched);
            t2 = fl_bench_now();
            base[r] = (t1 - t0) * 1000.0;
            net[r] = (t2 - t1) * 1000.0;
            fl__net_snap_release(&pre);
            fl__net_snap_release(&post);
            free(v);
            if (fl_pg_exec(pg, "COMMIT", &err) != 0)
                s_die("commit", &err);
        }
        printf("%-8d %-10d %-14.3f %-14.3f%s\n", sizes[s], 2 * sizes[s],
               fl_bench_median(base, RUNS), fl_bench_median(net, RUNS),
               changed ? "  (a relation seemed changed: a bug)" : "");
    }
    if (fl_pg_exec(pg, "DROP SCHEMA bench_net CASCADE", &err) != 0)
        s_die("cleanup", &err);
    fl__session_release(&session);
    fl_pg_close(&pg);
    return 0;
}
