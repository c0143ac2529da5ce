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
. "$root/bench/lib.sh"
fl_bench_build bench_net

fl_bench_pg
"$FL_PG_BIN/psql" -qc "CREATE DATABASE bench_net"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "postgres: $("$FL_PG_BIN/postgres" -V), Unix socket"
echo "the net per migration, median of 101:"
"$root/build-bench/bin/bench_net" "dbname=bench_net"
