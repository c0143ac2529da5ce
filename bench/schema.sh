#!/usr/bin/env bash
# Benchmark: what recording the schema costs each migration (the refresh,
# the changes against the snapshot before and the fingerprint in the
# ledger row, in one round trip: what the pipeline runs after every
# migration, bench_schema.c), against a full snapshot with the changes and
# the fingerprint, one SELECT 1 round trip and the pre-issue-8 snapshot
# statement in the same run, on schemas of 30, 100, 300 and 1,000 tables (serial id primary key,
# 3 columns, 1 index, 1 comment each), on a throwaway PostgreSQL 15.
# Targets: < 3 ms at 30 tables, < 15 ms at 300, growing linearly.
#
# Usage: bench/schema.sh        (builds Release in build-bench/)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"
fl_bench_build bench_schema

fl_bench_pg
"$FL_PG_BIN/psql" -qc "CREATE DATABASE bench_schema"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "postgres: $("$FL_PG_BIN/postgres" -V), Unix socket"
echo "per migration, ms, median of 51 runs; old: the pre-issue-8 snapshot"
echo "statement alone; full: snapshot, record, fingerprint; refresh: the"
echo "pipeline's call; (cpu): the server backend's CPU time:"
"$root/build-bench/bin/bench_schema" "dbname=bench_schema"
