#!/usr/bin/env bash
# The one test command: installs what is missing, builds twice with clang
# (ASan+UBSan with the libFuzzer harnesses, and ThreadSanitizer), starts a
# throwaway PostgreSQL 15, runs the unit tests and the tests of threaded
# code (ctest label "threads": the daemons, signals) under TSan, with the
# static checks beside it, then every test (unit, integration, fuzz) but
# those labelled tsan_only under ASan+UBSan, and always stops PostgreSQL
# and removes its directory.  Exit status is non-zero if any run fails; the
# ASan run's ctest summary is printed last.
#
# Environment: FLOTILLA_BUILD_DIR (default build-test; the TSan build goes
# to the same path with -tsan), FLOTILLA_TEST_LABEL (a ctest -L regex for
# both runs, e.g. unit), FLOTILLA_TSAN_LABEL (the TSan run's; default
# label unit, then label threads), FLOTILLA_TEST_JOBS (tests run side by
# side, default the number of cores), FLOTILLA_FUZZ_SECONDS (default 12),
# FLOTILLA_TSAN=0 skips the TSan run, FLOTILLA_KEEP=1 keeps the
# PostgreSQL directory for inspection.
# Besides the main server it starts three more (FLOTILLA_TEST_SHARDS, the
# connection strings separated by ";") for the fleet tests.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FLOTILLA_BUILD_DIR:-$root/build-test}

"$root/deploy/install-deps.sh"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang -DFLOTILLA_SANITIZE=ON -DFLOTILLA_FUZZ=ON \
    >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
build_tree() {
    echo "tests/run.sh: building in $1"
    cmake --build "$1" -j"$(nproc)" >"$1.build.log" 2>&1 || {
        grep -E 'error|warning' "$1.build.log" | head -50
        tail -30 "$1.build.log"
        echo "tests/run.sh: build failed; full log in $1.build.log" >&2
        exit 1
    }
}
build_tree "$build"
tsan=${FLOTILLA_TSAN:-1}
if [ "$tsan" = 1 ]; then
    cmake -S "$root" -B "$build-tsan" -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_C_COMPILER=clang -DFLOTILLA_TSAN=ON \
        >"$build-tsan.configure.log" 2>&1 || { cat "$build-tsan.configure.log"; exit 1; }
    build_tree "$build-tsan"
fi

. "$root/deploy/pg-throwaway.sh"
pgdir=$(mktemp -d /tmp/flotilla-pg.XXXXXX)
chmod 755 "$pgdir"
cleanup() {
    if [ -n "${static_pid:-}" ]; then kill "$static_pid" 2>/dev/null || true; fi
    for i in 1 2 3; do fl_pg_stop "$pgdir/shard$i"; done
    fl_pg_stop "$pgdir"
    if [ "${FLOTILLA_KEEP:-0}" = 1 ]; then
        echo "tests/run.sh: kept $pgdir" >&2
    else
        rm -rf "$pgdir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Three more servers, the shards of the fleet tests (tests/integration/
# test_fleet.c): each agent there sits beside a server of its own.
shards=""
for i in 1 2 3; do
    fl_pg_start "$pgdir/shard$i"
    shards="$shards${shards:+;}host=$PGHOST port=$PGPORT user=$PGUSER"
done
export FLOTILLA_TEST_SHARDS=$shards
fl_pg_start "$pgdir"
echo "tests/run.sh: PostgreSQL $("$FL_PG_BIN/postgres" -V | awk '{print $3}') on $PGHOST port $PGPORT, and three shards for the fleet tests"

export FLOTILLA_FUZZ_SECONDS=${FLOTILLA_FUZZ_SECONDS:-12}
# Leaks fail the run; third-party suppressions live in tests/lsan.supp.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Data races fail the run; libzmq's and CZMQ's are suppressed in
# tests/tsan.supp (uninstrumented third-party code).
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$root/tests/tsan.supp:halt_on_error=1:second_deadlock_stack=1}

jobs=${FLOTILLA_TEST_JOBS:-$(nproc)}
# The ASan run's tests mostly wait (on PostgreSQL, on daemons, on the
# network): at one test per core the whole run used a third of the
# machine's CPU (user and system time over wall time), so it runs one
# more test at once than there are cores.  Two more gained nothing on
# the 2-core machine (529 s at 3, 525 s at 4: each test took 30% longer,
# PostgreSQL's CPU, not counted above, being the limit).
asan_jobs=${FLOTILLA_TEST_JOBS:-$(($(nproc) + 1))}
set +e
# The static checks (clang-tidy: about 5 minutes of CPU) run beside the
# sanitizer runs, at a lower priority (nice 10), so that the tests, whose
# timeouts are shorter, come first; at the lowest (19) they starved
# themselves.  Their own timeout (1800 s, tests/CMakeLists.txt) is the
# whole run's length; what is left of them when the ASan run ends gets
# both cores.
# With FLOTILLA_TEST_LABEL they run, if the label selects them, in the ASan
# run.
static_pid=
if [ -z "${FLOTILLA_TEST_LABEL:-}" ]; then
    nice -n 10 ctest --test-dir "$build" --output-on-failure -L static \
        >"$build/ctest-static.log" 2>&1 &
    static_pid=$!
fi
trc=0
if [ "$tsan" = 1 ]; then
    echo "tests/run.sh: unit tests and tests of threaded code under ThreadSanitizer"
    # By default the unit tests first, then the threaded integration tests:
    # beside rollout-stops' daemons a CPU-bound unit test was starved past
    # its 120 s timeout (planfit: 6 s alone, over 120 s beside them).
    tsan_labels=${FLOTILLA_TEST_LABEL:-${FLOTILLA_TSAN_LABEL:-}}
    if [ -z "$tsan_labels" ]; then
        ctest --test-dir "$build-tsan" --output-on-failure -j"$jobs" \
            -L unit -LE 'fuzz|static' >"$build-tsan/ctest.log" 2>&1
        trc=$?
        ctest --test-dir "$build-tsan" --output-on-failure -j"$jobs" \
            -L threads -LE 'unit|fuzz|static' >>"$build-tsan/ctest.log" 2>&1
        [ $? -ne 0 ] && trc=1
    else
        ctest --test-dir "$build-tsan" --output-on-failure -j"$jobs" \
            -L "$tsan_labels" -LE 'fuzz|static' >"$build-tsan/ctest.log" 2>&1
        trc=$?
    fi
    if [ $trc -ne 0 ]; then
        cat "$build-tsan/ctest.log"
    else
        grep -E 'tests passed' "$build-tsan/ctest.log" | sed 's/^/tsan: /'
    fi
fi
echo "tests/run.sh: every test under AddressSanitizer and UndefinedBehaviorSanitizer"
# A test labelled tsan_only ran in the TSan run (when there was one).
asan_skip=static
[ "$tsan" = 1 ] && asan_skip="static|tsan_only"
if [ -n "$static_pid" ]; then
    ctest --test-dir "$build" --output-on-failure -j"$asan_jobs" \
        -LE "$asan_skip" \
        >"$build/ctest.log" 2>&1
else
    ctest --test-dir "$build" --output-on-failure -j"$asan_jobs" \
        ${FLOTILLA_TEST_LABEL:+-L "$FLOTILLA_TEST_LABEL"} >"$build/ctest.log" 2>&1
fi
rc=$?
src=0
if [ -n "$static_pid" ]; then
    wait "$static_pid"
    src=$?
    if [ $src -ne 0 ]; then
        cat "$build/ctest-static.log"
    else
        grep -E 'tests passed' "$build/ctest-static.log" | sed 's/^/static: /'
    fi
fi
set -e
# The summary is the last thing printed, so CI and people read it first.
cat "$build/ctest.log"
if [ $trc -ne 0 ]; then
    echo "tests/run.sh: the ThreadSanitizer run failed (see above)" >&2
    exit $trc
fi
if [ $src -ne 0 ]; then
    echo "tests/run.sh: the static checks failed (see above)" >&2
    exit $src
fi
exit $rc
