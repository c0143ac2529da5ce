#!/usr/bin/env bash
# Benchmark: what describing a target's schema costs PostgreSQL on a new
# connection, however it is written (issue 12's floor).  One throwaway
# PostgreSQL 15, one tenant database as bench/rollout.sh makes them (a
# table of 1,000 rows, flotilla's ledger in place); N psql sessions of
# each kind, two rounds alternated; the backend CPU of each session, read
# from the postmaster's reaped children (/proc/PID/stat), so that psql's
# and the shell's own time do not count:
#   - bare:      SELECT 1 (the baseline: a connection's start and exit);
#   - tables:    the schema snapshot's temporary tables, made (and
#                dropped at exit);
#   - snapshot:  those and one full description by the snapshot statement,
#                prepared as the pipeline prepares it (its text and
#                parameters taken from the server's log of one
#                `flotilla apply`);
#   - plain:     13 plain catalog queries with the renderers a description
#                needs, instead of the snapshot;
#   - plain x2:  the same twice in one session (the second run is what
#                they cost once the catalog caches are warm);
#   - warm:      the 13 queries 50 times in one session, against 650
#                SELECT 1 in one session (bare650): on a warm connection,
#                as a run of many migrations pays them (N/6 sessions).
#
# Usage: bench/describe.sh [N]     (default 60; builds Release in build-bench/)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-60}
. "$root/bench/lib.sh"
fl_bench_build flotilla
bin=$root/build-bench/bin/flotilla

fl_bench_pg
psql() { "$FL_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $("$FL_PG_BIN/postgres" -V), Unix socket"

# The tenant, with its ledger, and the pipeline's statements in the log.
psql -c "CREATE DATABASE d_t"
psql -d d_t -c "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL,
    note text); INSERT INTO items SELECT g, g, 'row ' || g
    FROM generate_series(1, 1000) g" -c "VACUUM ANALYZE items"
mkdir -p "$work/m"
cp "$root/bench/rollout/0001_flag.sql" "$work/m/"
psql -c "ALTER DATABASE d_t SET log_min_duration_statement = 0"
start=$(wc -l <"$work/pg/server.log")
"$bin" apply --db "dbname=d_t" --log-file "" --quiet "$work/m" >/dev/null
psql -c "ALTER DATABASE d_t RESET log_min_duration_statement"
sleep 0.2
tail -n +"$((start + 1))" "$work/pg/server.log" >"$work/apply.log"
snap=$(grep -m1 'parse flotilla_schema_snapshot_' "$work/apply.log" |
    sed -E 's/.*parse flotilla_schema_snapshot_[0-9a-f]+: //')
[ -n "$snap" ] || { echo "no snapshot statement in the log" >&2; exit 1; }
grep -o 'CREATE TEMPORARY TABLE[^;]*;\|CREATE INDEX IF NOT EXISTS flotilla_schema_snap_rel[^;]*;' \
    "$work/apply.log" | head -4 >"$work/tables.body"
[ "$(wc -l <"$work/tables.body")" = 4 ] ||
    { echo "the snapshot's tables are not in the log" >&2; exit 1; }

echo 'SELECT 1;' >"$work/bare.sql"
{ echo "BEGIN; SET LOCAL client_min_messages = warning;"
  cat "$work/tables.body"; echo "COMMIT;"; } >"$work/tables.sql"
# The first snapshot of a connection: generation 1, everything ($3).
{ cat "$work/tables.sql"
  echo "BEGIN; SET LOCAL search_path = ''; SET LOCAL plan_cache_mode = force_generic_plan;"
  echo "SET LOCAL enable_sort = off; SET LOCAL jit = off;"
  echo "PREPARE s AS $snap;"
  echo "EXECUTE s(NULL, 1, true, NULL);"
  echo "COMMIT;"; } >"$work/snapshot.sql"
cat >"$work/plain.sql" <<'SQL'
SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'public';
SELECT c.oid, c.relname, c.relkind, pg_catalog.pg_get_userbyid(c.relowner), c.relacl, c.xmin, c.reloptions, c.relpersistence FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) 2200 AND c.relkind IN ('r','p','v','m','S','f');
SELECT a.attrelid, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated, a.attcollation, a.attacl, a.xmin FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid WHERE c.relnamespace OPERATOR(pg_catalog.=) 2200 AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
SELECT d.adrelid, d.adnum, pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.adrelid WHERE c.relnamespace OPERATOR(pg_catalog.=) 2200;
SELECT k.conrelid, k.conname, pg_catalog.pg_get_constraintdef(k.oid), k.xmin FROM pg_catalog.pg_constraint k WHERE k.connamespace OPERATOR(pg_catalog.=) 2200;
SELECT i.indrelid, i.indexrelid, pg_catalog.pg_get_indexdef(i.indexrelid), i.xmin FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid WHERE c.relnamespace OPERATOR(pg_catalog.=) 2200;
SELECT g.tgrelid, g.tgname, pg_catalog.pg_get_triggerdef(g.oid) FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid WHERE c.relnamespace OPERATOR(pg_catalog.=) 2200 AND NOT g.tgisinternal;
SELECT d.objoid, d.classoid, d.objsubid, d.description FROM pg_catalog.pg_description d JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objoid WHERE c.relnamespace OPERATOR(pg_catalog.=) 2200;
SELECT d.objid, d.refobjid, d.refobjsubid, d.deptype FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND c.relnamespace OPERATOR(pg_catalog.=) 2200 AND d.deptype IN ('a','i');
SELECT s.seqrelid, s.seqtypid, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.seqrelid WHERE c.relnamespace OPERATOR(pg_catalog.=) 2200;
SELECT p.polrelid, p.polname, p.polcmd, pg_catalog.pg_get_expr(p.polqual, p.polrelid) FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid WHERE c.relnamespace OPERATOR(pg_catalog.=) 2200;
SELECT t.oid, t.typname, t.typtype FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) 2200 AND t.typtype IN ('e','d','c','r');
SELECT p.oid, p.proname, p.xmin FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) 2200;
SQL
cat "$work/plain.sql" "$work/plain.sql" >"$work/plain2.sql"
for _ in $(seq 1 50); do cat "$work/plain.sql"; done >"$work/warm.sql"
for _ in $(seq 1 650); do echo 'SELECT 1;'; done >"$work/bare650.sql"
# Each must run as written before it is timed.
for k in bare tables snapshot plain plain2; do
    psql -d d_t -f "$work/$k.sql" >/dev/null
done

pm=$(head -1 "$work/pg/data/postmaster.pid")
reaped() { awk '{print $16 + $17}' "/proc/$pm/stat"; }
hz=$(getconf CLK_TCK)
declare -A total
for round in 1 2; do
    for k in bare tables snapshot plain plain2 bare650 warm; do
        sessions=$n
        case $k in bare650 | warm) sessions=$(( n / 6 > 0 ? n / 6 : 1 )) ;; esac
        c0=$(reaped)
        for _ in $(seq 1 "$sessions"); do
            psql -d d_t -f "$work/$k.sql" >/dev/null
        done
        c1=$(reaped)
        ms=$(echo "scale=1; ($c1 - $c0) * 1000 / $hz / $sessions" | bc)
        total[$k]="${total[$k]:-} $ms"
    done
done
echo
printf '%-10s %s\n' "session" "backend CPU, ms a session (round 1, round 2)"
for k in bare tables snapshot plain plain2 bare650 warm; do
    printf '%-10s %s\n' "$k" "${total[$k]}"
done
echo "warm: the 13 queries a time on a warm connection = (warm - bare650) / 50"
