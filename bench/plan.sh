#!/usr/bin/env bash
# Benchmark: the cost of `flotilla plan` against the number of pending
# migrations, with `flotilla apply` of the same migrations as the baseline,
# in the same run, on the same throwaway PostgreSQL 15.
#
# N = 100, 200 and 400 migrations, each a CREATE TABLE with a bigserial key,
# a CREATE INDEX, an INSERT and an ALTER TABLE ADD COLUMN.  For each N, on a
# fresh database: one `flotilla plan` (the rehearsal of all N), then one
# `flotilla apply`.  Reports ms per migration for each, and plan's ms per
# migration at N = 400 over that at N = 100.  Target: linear, that ratio
# under 1.5 (it was quadratic: every statement's observation read every
# user table; the issue measured 51 s of plan for 8 s of apply on 247 real
# migrations).
#
# Usage: bench/plan.sh        (builds Release flotilla in build-bench/)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"
fl_bench_build flotilla
bin=$root/build-bench/bin/flotilla

fl_bench_pg
psql() { "$FL_PG_BIN/psql" "$@"; }
now_ns() { date +%s%N; }

first=""
for n in 100 200 400; do
    mkdir -p "$work/m$n"
    for i in $(seq 1 "$n"); do
        printf -- '-- flotilla:up\nCREATE TABLE t%d (id bigserial PRIMARY KEY, a text NOT NULL, b int);\nCREATE INDEX t%d_b ON t%d (b);\nINSERT INTO t%d (a, b) VALUES ('"'"'x'"'"', 1);\nALTER TABLE t%d ADD COLUMN c int;\n-- flotilla:down\nDROP TABLE t%d;\n' \
            "$i" "$i" "$i" "$i" "$i" "$i" > "$work/m$n/$(printf '%04d' "$i")_t$i.sql"
    done
    psql -qc "CREATE DATABASE b$n"
    t0=$(now_ns)
    "$bin" plan --db "dbname=b$n" "$work/m$n" >/dev/null
    t1=$(now_ns)
    "$bin" apply --db "dbname=b$n" --log-file "" --quiet "$work/m$n" >/dev/null
    t2=$(now_ns)
    plan=$(echo "scale=2; ($t1 - $t0) / 1000000 / $n" | bc)
    apply=$(echo "scale=2; ($t2 - $t1) / 1000000 / $n" | bc)
    printf 'N=%-4d plan %6.2f ms/migration   apply %6.2f ms/migration   plan/apply %.2f\n' \
        "$n" "$plan" "$apply" "$(echo "scale=2; $plan / $apply" | bc)"
    [ -n "$first" ] || first=$plan
    last=$plan
done
ratio=$(echo "scale=2; $last / $first" | bc)
echo "plan ms/migration at N=400 over N=100: $ratio (target < 1.5: linear)"
