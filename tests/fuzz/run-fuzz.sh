#!/usr/bin/env bash
# Runs one libFuzzer harness for FLOTILLA_FUZZ_SECONDS (default 20) with
# memory limits, starting from a copy of its seed corpus so the checked-in
# corpus is never modified.  Exit status non-zero on any finding.
#   run-fuzz.sh HARNESS SEED_DIR
# To fuzz longer by hand:
#   FLOTILLA_FUZZ_SECONDS=3600 tests/fuzz/run-fuzz.sh build-test/tests/fuzz/fuzz_bundle tests/fuzz/corpus/bundle
set -euo pipefail
harness=$1
seeds=$2
secs=${FLOTILLA_FUZZ_SECONDS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
if [ -d "$seeds" ]; then
    cp -r "$seeds"/. "$work/corpus/"
fi
"$harness" -max_total_time="$secs" -rss_limit_mb=256 -malloc_limit_mb=64 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" 2>"$work/log" || {
    rc=$?
    tail -60 "$work/log"
    for a in "$work"/artifacts/*; do
        [ -e "$a" ] && { echo "finding: $(basename "$a")"; od -A x -t x1z "$a" | head -20; }
    done
    exit $rc
}
grep -E '^stat::number_of_executed_units|^Done' "$work/log" || tail -3 "$work/log"
