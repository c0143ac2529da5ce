#!/usr/bin/env bash
# Benchmark: what keeping the rows a down deletes costs a rollback.
#
# A table of ROWS rows (default 100,000); a migration whose up inserts
# 1,000 rows and whose down deletes them.  Each run copies a fresh
# database from a template, applies the migration, optionally lets "the
# application" edit 100 of the inserted rows, then times, in the same
# run:
#   - `psql -1 -c` of the down's DELETE alone (the floor: what the down
#     costs without flotilla), on a copy in the same state;
#   - `flotilla rollback --last` (down, rehearsals, keep, restore, proof);
#   - with B=DIR, the same with the flotilla in DIR (a build of the
#     commit before, say), alternately.
# Medians of RUNS (default 7) for each case: nothing written since the
# migration; 100 of its rows edited since (kept by the rollback); and
# ROWS rows of the application's inserted since, which the down does not
# delete (the rollback lists them all as written since, and keeps none).
#
# Usage: bench/rollback-rows.sh      (builds Release flotilla in build-bench/)
#   RUNS=N  ROWS=N  B=DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-7}
rows=${ROWS:-100000}
. "$root/bench/lib.sh"
fl_bench_build flotilla
bin=$root/build-bench/bin/flotilla
other=${B:+$B/flotilla}

fl_bench_pg
psql() { "$FL_PG_BIN/psql" -X "$@"; }
now_ns() { date +%s%N; }

mkdir -p "$work/m"
cat > "$work/m/0001_seed.sql" <<'EOF'
-- flotilla:up
INSERT INTO items SELECT g, g FROM generate_series(1000001, 1001000) g;
-- flotilla:down
DELETE FROM items WHERE id > 1000000;
EOF
psql -q -d postgres -c "CREATE DATABASE rr_template"
psql -q -d rr_template -c "CREATE TABLE items (id int PRIMARY KEY, v int);
    INSERT INTO items SELECT g, g FROM generate_series(1, $rows) g;"
psql -q -d rr_template -c "VACUUM ANALYZE items"

# fresh DB: a new copy of the template.
fresh() {
    psql -q -d postgres -c "DROP DATABASE IF EXISTS $1" \
        -c "CREATE DATABASE $1 TEMPLATE rr_template" 2>/dev/null
}
# ready BIN DB EDITS: the migration applied by BIN, EDITS rows edited since.
ready() {
    fresh "$2"
    "$1" apply --quiet --log-file "" --db "dbname=$2" "$work/m" >/dev/null
    if [ "$3" = 1 ]; then
        psql -q -d "$2" -c "UPDATE items SET v = v + 1
            WHERE id BETWEEN 1000001 AND 1000100"
    elif [ "$3" = 2 ]; then
        psql -q -d "$2" -c "INSERT INTO items SELECT -g, g
            FROM generate_series(1, $rows) g"
    fi
}
# ms COMMAND...: runs it, prints its milliseconds.
ms() {
    local t0
    t0=$(now_ns)
    "$@" >/dev/null
    echo $(( ($(now_ns) - t0) / 1000000 ))
}

for edits in 0 1 2; do
    : > "$work/psql" ; : > "$work/this" ; : > "$work/other"
    for _ in $(seq 1 "$runs"); do
        ready "$bin" rr "$edits"
        ms psql -q -1 -d rr -c "DELETE FROM items WHERE id > 1000000" >> "$work/psql"
        ready "$bin" rr "$edits"
        ms "$bin" rollback --quiet --log-file "" --last --db "dbname=rr" \
            "$work/m" >> "$work/this"
        if [ "$(psql -At -d rr -c "SELECT count(*) FROM flotilla.backups
                WHERE statement_index = -2")" != "$(( edits % 2 ))" ]; then
            echo "the rollback kept the wrong number of copies" >&2
            exit 1
        fi
        if [ -n "$other" ]; then
            ready "$other" rr "$edits"
            ms "$other" rollback --quiet --log-file "" --last \
                --db "dbname=rr" "$work/m" >> "$work/other"
        fi
    done
    case $edits in
        0) what="nothing written since the migration" ;;
        1) what="100 of its rows edited since the migration" ;;
        *) what="$rows rows inserted since the migration, not deleted" ;;
    esac
    printf '%s\n' "$what"
    printf '  %-40s %6s ms\n' "psql -1 of the down's DELETE" "$(fl_bench_median < "$work/psql")"
    printf '  %-40s %6s ms\n' "flotilla rollback --last" "$(fl_bench_median < "$work/this")"
    [ -n "$other" ] &&
        printf '  %-40s %6s ms\n' "flotilla rollback --last (B)" "$(fl_bench_median < "$work/other")"
done
