#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy at the top: the clang static analyzer and the
# bugprone checks) over Flotilla's own sources, using the compile commands
# of a build tree.  Any finding fails.
#   tests/clang-tidy.sh BUILD_DIR
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
if ! "$runner" -p "$build" -j"$(nproc)" -quiet \
        "$root/(common|proto|lint|agent|coordinator|cli)/" >"$log" 2>&1; then
    grep -E 'warning:|error:' "$log" | sed 's/\x1b\[[0-9;]*m//g' | sort -u
    echo "clang-tidy.sh: findings above" >&2
    exit 1
fi
echo "clang-tidy: no findings in $(grep -c '"file"' "$build/compile_commands.json") compile commands"
