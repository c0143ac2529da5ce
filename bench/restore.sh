#!/usr/bin/env bash
# Benchmark: what putting back a few rows of a large table costs a
# rollback.
#
# A table of ROWS rows (default 1,000,000) with an integer key, and the
# same with a text key; a migration whose up changes one row (UPDATE
# ... WHERE id = 42: a backup of that row) and whose down does nothing,
# so that the rollback is the restore of that row.  In the same run, on
# the same database, RUNS times (default 5) each, alternately:
#   - `psql -1 -c` of the UPDATE that puts the row back by hand (the
#     floor);
#   - `flotilla rollback --last` (restore, keep, proof), after `flotilla
#     apply` again;
#   - with B=DIR, the same with the flotilla in DIR (a build of the
#     commit before, say).
# Medians, in ms.
#
# Usage: bench/restore.sh      (builds Release flotilla in build-bench/)
#   RUNS=N  ROWS=N  B=DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-5}
rows=${ROWS:-1000000}
. "$root/bench/lib.sh"
fl_bench_build flotilla
bin=$root/build-bench/bin/flotilla
other=${B:+$B/flotilla}

fl_bench_pg
psql() { "$FL_PG_BIN/psql" -X "$@"; }

for kind in int text; do
    psql -q -d postgres -c "CREATE DATABASE rs_$kind"
    psql -q -d "rs_$kind" -c "CREATE TABLE items (id $kind PRIMARY KEY, v int);
        INSERT INTO items SELECT g::text::$kind, g FROM generate_series(1, $rows) g;"
    psql -q -d "rs_$kind" -c "VACUUM ANALYZE items"
    mkdir -p "$work/m_$kind"
    cat > "$work/m_$kind/0001_one.sql" <<EOF
-- flotilla:up
UPDATE items SET v = -v WHERE id = '42';
-- flotilla:down
SELECT 1;
EOF
done

# rollback BIN KIND: applies, then prints the rollback's milliseconds.
rollback() {
    local t0
    "$1" apply --quiet --log-file "" --db "dbname=rs_$2" "$work/m_$2" >/dev/null
    t0=$(date +%s%N)
    "$1" rollback --quiet --log-file "" --last --db "dbname=rs_$2" \
        "$work/m_$2" >/dev/null
    fl_bench_ms "$t0"
}

for kind in int text; do
    : > "$work/psql_$kind"; : > "$work/fl_$kind"; : > "$work/b_$kind"
    for r in $(seq 1 "$runs"); do
        psql -q -d "rs_$kind" -c "UPDATE items SET v = -v WHERE id = '42'"
        t0=$(date +%s%N)
        psql -q -1 -d "rs_$kind" -c "UPDATE items SET v = 42 WHERE id = '42'"
        fl_bench_ms "$t0" >> "$work/psql_$kind"
        rollback "$bin" "$kind" >> "$work/fl_$kind"
        if [ -n "$other" ]; then
            rollback "$other" "$kind" >> "$work/b_$kind"
        fi
    done
    [ "$(psql -d "rs_$kind" -Atc "SELECT v FROM items WHERE id = '42'")" = 42 ] ||
        { echo "rs_$kind: the row did not come back" >&2; exit 1; }
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $("$FL_PG_BIN/postgres" -V), fsync=off (throwaway server)"
echo "one row put back in a table of $rows rows, median of $runs (ms):"
for kind in int text; do
    line="  $kind key: psql -1 UPDATE $(fl_bench_median < "$work/psql_$kind"),"
    line="$line flotilla rollback $(fl_bench_median < "$work/fl_$kind")"
    [ -n "$other" ] && line="$line, $B $(fl_bench_median < "$work/b_$kind")"
    echo "$line"
done
