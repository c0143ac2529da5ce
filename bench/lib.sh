# bench/lib.sh - what every benchmark does before it measures: sourced
# (after setting root to the repository), not run.
#
#   fl_bench_build TARGET...   installs what is missing, then builds the
#                              targets in build-bench/ (Release, no tests)
#   fl_bench_pg                a throwaway PostgreSQL in $work/pg, $work a
#                              new directory; both go at exit.  Prefix
#                              FL_PG_DURABLE=1 for a server with fsync on
#                              (deploy/pg-throwaway.sh)
#   fl_bench_ms T0             milliseconds since T0 (a `date +%s%N`)
#   fl_bench_median            the median of the numbers on stdin

fl_bench_build() {
    "$root/deploy/install-deps.sh" >/dev/null
    cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
        -DFLOTILLA_TESTS=OFF >/dev/null
    cmake --build "$root/build-bench" -j"$(nproc)" --target "$@" >/dev/null
}

fl_bench_pg() {
    # shellcheck source=../deploy/pg-throwaway.sh
    . "$root/deploy/pg-throwaway.sh"
    work=$(mktemp -d /tmp/flotilla-bench.XXXXXX)
    chmod 755 "$work"
    trap 'fl_pg_stop "$work/pg"; rm -rf "$work"' EXIT
    fl_pg_start "$work/pg"
}

fl_bench_ms() { echo "scale=1; ($(date +%s%N) - $1) / 1000000" | bc; }

fl_bench_median() {
    sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
