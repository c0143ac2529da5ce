#!/usr/bin/env bash
# Benchmark: what a schema target's checks cost each migration, and how
# that grows with the catalog.  A schema target (--schema) runs, before
# each migration's COMMIT, the lock-based check (its picture before the
# first statement, flotilla_net_outside_before, and after,
# flotilla_net_outside) and the catalog check
# (flotilla_net_outside_catalog[_su]).  In the same run, on one throwaway
# PostgreSQL 15: a database of 4 schemas of 25 tables (the baseline) and
# one of NS schemas of 25 tables (default 400: about 40,000 relations);
# six one-table migrations applied to each with --schema s1 (the ledger
# made before, by a warm-up on s2), every statement logged and its
# server time summed (parse, bind, execute).
#
# Usage: bench/outside.sh [NS]        (builds Release in build-bench/)
#   B=DIR  also time the flotilla in DIR (e.g. a build of the commit
#          before a change) the same way, with --schema s3, in the same run
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ns=${1:-400}
. "$root/bench/lib.sh"
fl_bench_build flotilla
bin=$root/build-bench/bin

fl_bench_pg
psql() { "$FL_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
log="$work/pg/server.log"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $("$FL_PG_BIN/postgres" -V), Unix socket, fsync $(psql -Atc 'SHOW fsync')"

# make DB N: database DB of N schemas of 25 tables, its statements logged.
make() {
    psql -c "CREATE DATABASE $1"
    # One transaction a schema: every table in one would run out of locks.
    psql -d "$1" -c "DO \$\$ BEGIN FOR s IN 1..$2 LOOP
        EXECUTE format('CREATE SCHEMA s%s', s);
        FOR t IN 1..25 LOOP
            EXECUTE format('CREATE TABLE s%s.t%s (id int PRIMARY KEY,'
                           ' v text, n int)', s, t);
        END LOOP;
        COMMIT;
    END LOOP; END \$\$" -c "VACUUM ANALYZE"
    echo "$1: $(psql -d "$1" -Atc "SELECT (SELECT count(*) FROM pg_class)
        || ' pg_class rows, ' || (SELECT count(*) FROM pg_type)
        || ' pg_type, ' || (SELECT count(*) FROM pg_proc) || ' pg_proc'")"
    psql -c "ALTER DATABASE $1 SET log_min_duration_statement = 0"
}

# run DB NAME SCHEMA: six migrations of tables SCHEMA.NAME1..6 applied to
# DB with --schema SCHEMA; their server time a migration.
run() {
    local db=$1 name=$2 s=$3 dir="$work/$1_$2" start
    mkdir "$dir"
    for i in 1 2 3 4 5 6; do
        printf -- '-- flotilla:up\nCREATE TABLE %s.%s%d (id int);\n-- flotilla:down\nDROP TABLE %s.%s%d;\n' \
            "$s" "$name" "$i" "$s" "$name" "$i" >"$dir/000${i}_$name.sql"
    done
    start=$(wc -l <"$log")
    (cd "$work" && "$bin/flotilla" apply \
        --db "host=$PGHOST port=$PGPORT user=$PGUSER dbname=$db" \
        --schema "$s" --dir "$dir" >/dev/null 2>&1)
    tail -n +"$((start + 1))" "$log" | python3 -c '
import re, sys
total = 0.0
checks = {}
for line in sys.stdin:
    d = re.search(r"duration: ([\d.]+) ms", line)
    m = re.search(r"duration: ([\d.]+) ms\s+(?:parse|bind|execute) (flotilla_net_outside\w*)", line)
    if d:
        total += float(d.group(1))
    if m:
        checks[m.group(2)] = checks.get(m.group(2), 0.0) + float(m.group(1))
print("%-10s %8.1f ms, all server time" % (sys.argv[1], total / 6))
for k in sorted(checks):
    print("  %-34s %8.1f ms" % (k, checks[k] / 6))' "$db"
}

make b_small 4
make b_big "$ns"
echo "six one-table migrations with --schema s1, server time a migration:"
for db in b_small b_big; do
    run "$db" warm_up s2 >/dev/null
    run "$db" new s1
done
if [ -n "${B:-}" ]; then
    echo "the same with $B/flotilla, --schema s3:"
    for db in b_small b_big; do
        bin=$B run "$db" old s3
    done
fi
