/*
 * bench_schema.c - what the schema record costs a migration
 * (bench/schema.sh).
 *
 * After each migration the pipeline (agent/apply.c, s_schema_after)
 * refreshes a schema snapshot, records the objects the migration changed
 * against the snapshot before it, and stores the fingerprint in the
 * ledger row, outside the migration's transaction, in one call
 * (fl_schema_record_after: one transaction, one round trip).  This runs
 * that call ("refresh") and, in the same run, what the pipeline ran
 * before the refresh existed ("full": a full snapshot, the record, the
 * fingerprint read, three calls and five round trips; the ledger row's
 * UPDATE, one more, is left out), alternating generations 1 and 2 as
 * the pipeline does,
 * on schemas of 30 to 1,000 tables (each: serial id primary key, 3
 * columns, 1 index, 1 comment), and reports the median of RUNS.  Each
 * run is one "migration" that changes a table's comment (untimed), so
 * that every snapshot has a change to write and record, as after a real
 * migration.
 *
 * Baselines in the same run, on the same connection: one `SELECT 1`
 * round trip, and the snapshot statement of the module before issue 8
 * (bench_schema_old.h) run the way that module ran it: prepared, planned
 * generically, in a transaction with its settings pinned, after the
 * DELETE of its generation; only that statement is timed.
 *
 * Targets: under 3 ms at 30 tables and under 15 ms at 300, growing with
 * the tables, not with the catalogs' built-in rows; for the refresh, not
 * growing with the tables a migration did not change.
 *
 * Also the backend's CPU time for both (its /proc entry, when the server
 * runs on this machine; -1 otherwise), which moves less than the wall
 * clock when the machine is shared.
 *
 * Usage: bench_schema [DSN [TABLES...]]   (default: the PG* environment;
 * 30, 100, 300 and 1,000 tables).  DSN must name a scratch database: the
 * bench writes flotilla.schema_changes (version 1) and drops and
 * re-creates the schema bench_schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/ledger.h"
#include "agent/pg.h"
#include "agent/schema.h"
#include "common/alloc.h"

#include "bench/benchutil.h"
#include "bench_schema_old.h"

#define RUNS 51

/* CPU time the backend has used (ms), or -1 when /proc does not say. */
static double
s_backend_cpu(int pid)
{
    char path[64];
    unsigned long long ns = 0;
    FILE *f = NULL;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fscanf(f, "%llu", &ns);
    fclose(f);
    return n == 1 ? (double)ns / 1e6 : -1;
}

/* The backend's CPU ms since c0 (an s_backend_cpu() value), or -1. */
static double
s_cpu_since(fl_pg_t *pg, double c0)
{
    double c1 = s_backend_cpu(fl_pg_backend_pid(pg));

    return c0 < 0 || c1 < 0 ? -1 : c1 - c0;
}

static void
s_die(const char *what, fl_error_t *err)
{
    fprintf(stderr, "bench_schema: %s: %s\n", what,
            err->message ? err->message : "?");
    exit(1);
}

static void
s_query(fl_pg_t *pg, const char *what, const char *sql, int n,
        const char *const *params)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_pg_result_t r = FL_PG_RESULT_INIT;

    if (fl_pg_query(pg, &r, sql, n, params, &err) != 0)
        s_die(what, &err);
    fl_pg_result_release(&r);
}

/*
 * The old snapshot statement as the old module ran it; returns its ms,
 * and the backend's CPU ms in *cpu.
 */
static double
s_old_snapshot(fl_pg_t *pg, double *cpu)
{
    static const char *const params[2] = {NULL, "1"};
    fl_error_t err = FL_ERROR_INIT;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    double t0, t1, c0;

    if (fl_pg_exec(pg, "BEGIN", &err) != 0)
        s_die("begin", &err);
    s_query(pg, "pin", s_old_pin_sql, 0, NULL);
    s_query(pg, "table", s_old_table_sql, 0, NULL);
    s_query(pg, "delete", "DELETE FROM pg_temp.bench_schema_old", 0, NULL);
    c0 = s_backend_cpu(fl_pg_backend_pid(pg));
    t0 = fl_bench_now();
    if (fl_pg_query_prepared(pg, &r, "bench_schema_old_snapshot",
                             s_old_snapshot_sql, 2, params, &err) != 0)
        s_die("old snapshot", &err);
    t1 = fl_bench_now();
    *cpu = s_cpu_since(pg, c0);
    fl_pg_result_release(&r);
    if (fl_pg_exec(pg, "COMMIT", &err) != 0)
        s_die("commit", &err);
    return (t1 - t0) * 1000.0;
}

/*
 * A "migration" as the pipeline runs it: in a transaction, the relations
 * it may have changed read before COMMIT (fl_schema_dirty_sql) and added
 * to d.  Untimed.
 */
static void
s_migrate(fl_pg_t *pg, fl_schema_dirty_t *d, const char *what, int r)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_pg_result_t res = FL_PG_RESULT_INIT;

    if (fl_pg_exec(pg, "BEGIN", &err) != 0 ||
        fl_pg_commandf(pg, &err, "COMMENT ON TABLE bench_schema.t1"
                       " IS '%s %d'", what, r) != 0 ||
        fl_pg_query(pg, &res, fl_schema_dirty_sql, 1,
                    (const char *const[]){"{}"}, &err) != 0)
        s_die("migration", &err);
    fl_schema_dirty_add(d, fl_pg_value(&res, 0, 0));
    fl_pg_result_release(&res);
    if (fl_pg_exec(pg, "COMMIT", &err) != 0)
        s_die("commit", &err);
}

/*
 * One more migration (s_migrate), then the pipeline's record of it into
 * generation after, from before: with the relations it may have changed
 * (dirty) or every relation's signature; its wall time into *ms, the
 * backend's CPU time into *cpu.  Returns the changes recorded.
 */
static int
s_record(fl_pg_t *pg, fl_schema_dirty_t *d, int before, int after, int dirty,
         const char *what, int r, double *ms, double *cpu)
{
    fl_error_t err = FL_ERROR_INIT;
    char *v = NULL;
    int n = 0;
    double c0, t0;

    s_migrate(pg, d, what, r);
    c0 = s_backend_cpu(fl_pg_backend_pid(pg));
    t0 = fl_bench_now();
    if (fl_schema_record_after(pg, "", &(const fl_version_t){{"1"}}, before,
                               after, NULL, FL_SCHEMA_KINDS_ASK,
                               dirty ? fl_schema_dirty_of(d, after) : NULL,
                               &v, &n, &err) != 0)
        s_die("record after", &err);
    *ms = (fl_bench_now() - t0) * 1000.0;
    *cpu = s_cpu_since(pg, c0);
    fl_schema_dirty_taken(d, after);
    free(v);
    return n;
}

int
main(int argc, char **argv)
{
    static const int defaults[] = {30, 100, 300, 1000};
    int sizes[16];
    size_t nsizes = 0;
    fl_pg_t *pg = NULL;
    fl_error_t err = FL_ERROR_INIT;
    double base[RUNS], old[RUNS], snap[RUNS], rec[RUNS], fp[RUNS],
        all[RUNS], oldcpu[RUNS], allcpu[RUNS], ref[RUNS], refcpu[RUNS],
        refall[RUNS], refallcpu[RUNS];
    int before = 1;
    fl_schema_dirty_t dirty = FL_SCHEMA_DIRTY_INIT;

    for (int i = 2; i < argc && nsizes < 16; i++) {
        char *end = NULL;
        long n = strtol(argv[i], &end, 10);

        if (*end != '\0' || n < 1 || n > 100000) {
            fprintf(stderr, "bench_schema: not a number of tables: %s\n",
                    argv[i]);
            return 2;
        }
        sizes[nsizes++] = (int)n;
    }
    if (nsizes == 0) {
        memcpy(sizes, defaults, sizeof(defaults));
        nsizes = sizeof(defaults) / sizeof(defaults[0]);
    }
    if (fl_pg_open(&pg, argc > 1 ? argv[1] : NULL, "bench_schema", &err) != 0)
        s_die("connect", &err);
    if (fl_ledger_ensure(pg, &err) != 0)
        s_die("ledger", &err);
    printf("%-6s %-6s %-8s %-8s %-8s | %-8s %-8s %-8s %-9s %-8s | %-8s "
           "%-8s | %-8s %-8s\n", "tables", "rows", "SELECT 1", "old", "(cpu)",
           "snapshot", "record", "fingerpr", "full", "(cpu)", "refresh",
           "(cpu)", "ref-all", "(cpu)");
    for (size_t s = 0; s < nsizes; s++) {
        char *rows = NULL;
        int wrong = 0;

        if (fl_pg_exec(pg, "DROP SCHEMA IF EXISTS bench_schema CASCADE;"
                           "CREATE SCHEMA bench_schema", &err) != 0 ||
            fl_pg_commandf(pg, &err, "DO $$ BEGIN FOR i IN 1..%d LOOP"
                           " EXECUTE pg_catalog.format('CREATE TABLE"
                           " bench_schema.t%%1$s (id serial PRIMARY KEY,"
                           " a text, b int); CREATE INDEX t%%1$s_b ON"
                           " bench_schema.t%%1$s (b); COMMENT ON TABLE"
                           " bench_schema.t%%1$s IS %%2$L', i, 'table ' || i);"
                           " END LOOP; END $$", sizes[s]) != 0 ||
            fl_pg_exec(pg, "ANALYZE", &err) != 0)
            s_die("schema", &err);
        /* The run's first snapshot, which the pipeline takes once. */
        if (fl_schema_snapshot(pg, before, NULL, &err) != 0)
            s_die("snapshot", &err);
        fl_schema_dirty_forget(&dirty);
        fl_schema_dirty_taken(&dirty, before);
        for (int r = 0; r < RUNS; r++) {
            int after = before == 1 ? 2 : 1, n = 0;
            double t0, t1, t2, t3, t4, c0;
            char *v = NULL;

            s_migrate(pg, &dirty, "migration", r);
            t0 = fl_bench_now();
            if (fl_pg_query_value(pg, &v, "SELECT 1", 0, NULL, &err) != 0)
                s_die("select 1", &err);
            c0 = s_backend_cpu(fl_pg_backend_pid(pg));
            t1 = fl_bench_now();
            if (fl_schema_snapshot(pg, after, NULL, &err) != 0)
                s_die("snapshot", &err);
            fl_schema_dirty_taken(&dirty, after);
            t2 = fl_bench_now();
            if (fl_schema_record_changes(pg, "", &(const fl_version_t){{"1"}},
                                         before, after, &n,
                                         &err) != 0)
                s_die("record", &err);
            t3 = fl_bench_now();
            free(v);
            v = NULL;
            if (fl_schema_fingerprint(pg, after, &v, &err) != 0)
                s_die("fingerprint", &err);
            t4 = fl_bench_now();
            allcpu[r] = s_cpu_since(pg, c0);
            free(v);
            v = NULL;
            wrong += n != 1;
            /*
             * The same migration again, recorded the pipeline's way: the
             * signatures of the relations it may have changed only; and
             * once more with every relation's (as before issue 10's
             * dirty relations, and as after a no-transaction migration).
             */
            wrong += s_record(pg, &dirty, after, before, 1, "again", r, &ref[r],
                              &refcpu[r]) != 1;
            wrong += s_record(pg, &dirty, after, before, 0, "and again", r,
                              &refall[r], &refallcpu[r]) != 1;
            base[r] = (t1 - t0) * 1000.0;
            snap[r] = (t2 - t1) * 1000.0;
            rec[r] = (t3 - t2) * 1000.0;
            fp[r] = (t4 - t3) * 1000.0;
            all[r] = (t4 - t1) * 1000.0;
            old[r] = s_old_snapshot(pg, &oldcpu[r]);
        }
        if (fl_pg_query_value(pg, &rows, "SELECT pg_catalog.count(*) FROM"
                              " pg_temp.flotilla_schema_snap WHERE gen = 1",
                              0, NULL, &err) != 0)
            s_die("count", &err);
        printf("%-6d %-6s %-8.3f %-8.3f %-8.3f | %-8.3f %-8.3f %-8.3f %-9.3f "
               "%-8.3f | %-8.3f %-8.3f | %-8.3f %-8.3f%s\n", sizes[s],
               rows ? rows : "?",
               fl_bench_median(base, RUNS), fl_bench_median(old, RUNS),
               fl_bench_median(oldcpu, RUNS), fl_bench_median(snap, RUNS),
               fl_bench_median(rec, RUNS), fl_bench_median(fp, RUNS),
               fl_bench_median(all, RUNS), fl_bench_median(allcpu, RUNS),
               fl_bench_median(ref, RUNS), fl_bench_median(refcpu, RUNS),
               fl_bench_median(refall, RUNS), fl_bench_median(refallcpu, RUNS),
               wrong ? "  (not one change recorded: a bug)" : "");
        free(rows);
    }
    fl_schema_dirty_forget(&dirty);
    if (fl_pg_exec(pg, "DROP SCHEMA bench_schema CASCADE", &err) != 0)
        s_die("cleanup", &err);
    fl_pg_close(&pg);
    return 0;
}
