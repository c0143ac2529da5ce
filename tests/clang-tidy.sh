#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy at the top: the clang static analyzer and the
# bugprone checks) over Flotilla's own sources, using the compile commands
# of a build tree.  Any finding fails.
#   tests/clang-tidy.sh BUILD_DIR
#
# The analyzer follows each loop FLOTILLA_TIDY_MAX_LOOP times (default 2;
# clang's own default is 4).  Measured on the nine slowest files, 2 costs
# 37 s of CPU against 92 s for 4 (coordinator/dispatch.c alone 10.5 s
# against 22.8 s), and CI's 2 cores run this beside the sanitizer runs.
# Fewer iterations are not a strict subset: at 3b4a217, 2 found a NULL
# passed to strcmp in agent/apply.c that 4 did not report (it spends its
# node budget on loop iterations first).  FLOTILLA_TIDY_MAX_LOOP=4 runs
# clang's default.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?usage: tests/clang-tidy.sh BUILD_DIR}
runner=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
if [ -z "$runner" ]; then
    echo "clang-tidy.sh: run-clang-tidy not found; install clang-tidy" >&2
    exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
max_loop=${FLOTILLA_TIDY_MAX_LOOP:-2}
case $max_loop in
    ''|*[!0-9]*) echo "clang-tidy.sh: FLOTILLA_TIDY_MAX_LOOP must be a number" >&2
                 exit 2 ;;
esac
if ! "$runner" -p "$build" -j"$(nproc)" -quiet \
        -extra-arg=-Xclang -extra-arg=-analyzer-max-loop \
        -extra-arg=-Xclang -extra-arg="$max_loop" \
        "$root/(common|proto|lint|agent|coordinator|cli)/" >"$log" 2>&1; then
    grep -E 'warning:|error:' "$log" | sed 's/\x1b\[[0-9;]*m//g' | sort -u
    echo "clang-tidy.sh: findings above" >&2
    exit 1
fi
echo "clang-tidy: no findings in $(grep -c '"file"' "$build/compile_commands.json") compile commands"
