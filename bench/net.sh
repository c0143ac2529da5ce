#!/usr/bin/env bash
# Benchmark: what the before-commit net costs each migration (two catalog
# snapshots of the managed relations and their comparison, bench_net.c),
# against one SELECT 1 round trip in the same run, on schemas of 10, 100
# and 1,000 tables, on a throwaway PostgreSQL 15.  Target: < 2 ms per
# migration at 100 tables.
#
# Usage: bench/net.sh        (builds Release in build-bench/)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/deploy/install-deps.sh" >/dev/null
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
    -DFLOTILLA_TESTS=OFF >/dev/null
cmake --build "$root/build-bench" -j"$(nproc)" --target bench_net >/dev/null

. "$root/deploy/pg-throwaway.sh"
work=$(mktemp -d /tmp/flotilla-bench.XXXXXX)
chmod 755 "$work"
trap 'fl_pg_stop "$work/pg"; rm -rf "$work"' EXIT
fl_pg_start "$work/pg"
"$FL_PG_BIN/psql" -qc "CREATE DATABASE bench_net"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "postgres: $("$FL_PG_BIN/postgres" -V), Unix socket"
echo "the net per migration, median of 101:"
"$root/build-bench/bin/bench_net" "dbname=bench_net"
