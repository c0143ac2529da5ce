#!/usr/bin/env bash
# Benchmark: the server time one fleet target costs, on a new connection.
#
# The workload of bench/rollout.sh (a table of 1,000 rows; ADD COLUMN with
# a default, CREATE INDEX, UPDATE of every row), one `flotilla apply` per
# fresh database copied from a template, each a new connection as an
# agent's command is.  Every statement the server runs is logged
# (log_min_duration_statement = 0 on those databases), and the durations
# are summed: in all, the schema snapshot and its census (parse, bind,
# which is where the plan is made, and execute), and the migration's own
# statements.  Against B=DIR, another build's binaries (e.g. the commit
# before), the two alternate run by run, so that the machine's load moves
# both alike; medians of RUNS runs each (default 12).
#
# Usage: bench/target.sh        (builds Release flotilla in build-bench/)
#   B=DIR  compare with the flotilla in DIR    RUNS=N
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-12}
. "$root/bench/lib.sh"
fl_bench_build flotilla
bins=("$root/build-bench/bin")
[ -n "${B:-}" ] && bins+=("$B")

fl_bench_pg
psql() { "$FL_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $("$FL_PG_BIN/postgres" -V), Unix socket, fsync $(psql -Atc 'SHOW fsync')"
psql -c "CREATE DATABASE b_tpl"
psql -d b_tpl -c "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO items SELECT g, g, 'row ' || g FROM generate_series(1, 1000) g" \
    -c "VACUUM ANALYZE items"
mkdir "$work/m"
# The migration (the same for bench/rollout.sh and bench/target.sh).
cp "$root/bench/rollout/0001_flag.sql" "$work/m/"
log="$work/pg/server.log"
: >"$work/times"
for i in $(seq 1 "$runs"); do
    for k in "${!bins[@]}"; do
        psql -c "DROP DATABASE IF EXISTS b_t" -c "CREATE DATABASE b_t TEMPLATE b_tpl" \
            -c "ALTER DATABASE b_t SET log_min_duration_statement = 0"
        start=$(wc -l <"$log")
        (cd "$work" && "${bins[$k]}/flotilla" apply --db "host=$PGHOST port=$PGPORT user=$PGUSER dbname=b_t" \
            --dir m >/dev/null 2>&1)
        tail -n +"$((start + 1))" "$log" | python3 -c '
import re, sys
k = sys.argv[1]
tot = snap = mig = 0.0
for line in sys.stdin:
    m = re.search(r"duration: ([\d.]+) ms\s+(.*)", line)
    if not m:
        continue
    d, what = float(m.group(1)), m.group(2)
    tot += d
    if "flotilla_schema_snapshot" in what or "flotilla_schema_census" in what:
        snap += d
    elif re.match(r"statement: (ALTER TABLE items|CREATE INDEX items_flag|UPDATE items)", what):
        mig += d
print(k, tot, snap, mig)' "$k" >>"$work/times"
    done
done
python3 - "$work/times" "${bins[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("server time of one target, ms, median of %d runs (min-max):" % (len(rows) // (len(sys.argv) - 2)))
for k, b in enumerate(sys.argv[2:]):
    r = [list(map(float, x[1:])) for x in rows if x[0] == str(k)]
    def col(i):
        v = [x[i] for x in r]
        return "%6.1f (%.1f-%.1f)" % (statistics.median(v), min(v), max(v))
    print("  %s" % b)
    print("    all %s   snapshot + census %s   the migration's statements %s" % (col(0), col(1), col(2)))
PY
