#!/usr/bin/env bash
# Builds Release in build-bench/ and runs the proto benchmark: bundle
# verification (1 MiB of SQL) and wire decoding (100,000 messages), each
# with its baseline.  Results go in docs/BENCHMARKS.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-bench
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLOTILLA_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_proto >/dev/null
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$build/bin/bench_proto"
