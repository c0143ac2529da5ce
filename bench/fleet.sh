#!/usr/bin/env bash
# Benchmark: the coordinator against 100 simulated agents (bench_fleet.c):
# dispatch-to-last-result for 1,000, 10,000 and 100,000 targets, with the
# coordinator's peak RSS and its control-database writes, against the
# transport and durable-write floors measured in the same run, on a
# throwaway PostgreSQL 15 made durable (fsync, synchronous_commit and
# full_page_writes on, unlike the test servers).  Targets: 10,000 in
# under 1 s, 100,000 in under 10 s, growing linearly, under 2 KiB of
# coordinator memory per target.
#
# Usage: bench/fleet.sh [N...]        (builds Release in build-bench/)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bench/lib.sh"
fl_bench_build bench_fleet flotilla-coordinator

FL_PG_DURABLE=1 fl_bench_pg

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $("$FL_PG_BIN/postgres" -V), Unix socket, fsync $("$FL_PG_BIN/psql" -qXAtc 'SHOW fsync'), synchronous_commit $("$FL_PG_BIN/psql" -qXAtc 'SHOW synchronous_commit')"
cat <<'HEAD'
seconds: dispatch request to the last outcome written (dispatch.wait done);
transport, writes: the floors for as many commands (s); ratio: seconds over
their sum; RSS of the coordinator in MiB: idle, with 100 agents connected,
with every target known, peak; B/tgt: (peak - conn) / targets; tx, rows:
control-database transactions and rows written during the dispatch.
HEAD
"$root/build-bench/bin/bench_fleet" "$root/build-bench/bin" "$@"
