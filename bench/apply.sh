#!/usr/bin/env bash
# Benchmark: the pipeline's cost against plain psql, in the same run, on the
# same throwaway PostgreSQL 15.
#
#  1. Overhead per migration: 50 small migrations (CREATE TABLE + INSERT)
#     applied by a `psql -1 -f` loop (one process per file) and by one
#     `flotilla apply` of the directory; per migration, psql's median
#     against flotilla's total / 50.  Target: under psql's + 5 ms.  Also
#     the strict view, one `flotilla apply --to N` process per migration.
#  2. Backup: an UPDATE of 1,000 rows of a 1,000,000-row table, run by
#     `psql -1` and by `flotilla apply` (which backs the table up before it
#     and reconciles the backup before COMMIT); the difference, against a
#     bare CREATE TABLE AS of the same table.  Median of 3.  Target: < 2x.
#
# Usage: bench/apply.sh        (builds Release flotilla in build-bench/)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/deploy/install-deps.sh" >/dev/null
cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
    -DFLOTILLA_TESTS=OFF >/dev/null
cmake --build "$root/build-bench" -j"$(nproc)" --target flotilla >/dev/null
bin=$root/build-bench/bin/flotilla

. "$root/deploy/pg-throwaway.sh"
work=$(mktemp -d /tmp/flotilla-bench.XXXXXX)
chmod 755 "$work"
trap 'fl_pg_stop "$work/pg"; rm -rf "$work"' EXIT
fl_pg_start "$work/pg"
# Debian's /usr/bin/psql is a Perl wrapper that costs ~60 ms a start; the
# baseline uses the real binary so that it is not slowed down artificially.
psql() { "$FL_PG_BIN/psql" "$@"; }

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

mkdir -p "$work/m" "$work/plain"
for i in $(seq 1 50); do
    v=$(printf '%04d' "$i")
    body="CREATE TABLE t$i (id int PRIMARY KEY, v text);
INSERT INTO t$i VALUES (1, 'x');"
    printf -- '-- flotilla:up\n%s\n-- flotilla:down\nDROP TABLE t%d;\n' "$body" "$i" \
        > "$work/m/${v}_t$i.sql"
    printf '%s\n' "$body" > "$work/plain/$v.sql"
done
psql -qc "CREATE DATABASE b_psql" -c "CREATE DATABASE b_flotilla"

: > "$work/psql.ms"
for i in $(seq 1 50); do
    v=$(printf '%04d' "$i")
    t0=$(now_ns)
    psql -X -q -1 -v ON_ERROR_STOP=1 -d b_psql -f "$work/plain/$v.sql"
    t1=$(now_ns)
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$work/psql.ms"
done
# The way it is used: one `flotilla apply` for the whole directory.
t0=$(now_ns)
"$bin" apply --db dbname=b_flotilla --log-file "" --quiet "$work/m" >/dev/null
t1=$(now_ns)
per=$(echo "scale=3; ($t1 - $t0) / 1000000 / 50" | bc)
mp=$(median < "$work/psql.ms")
over=$(echo "scale=2; $per - $mp" | bc)
applied=$(psql -d b_flotilla -Atc "SELECT count(*) FROM flotilla.schema_migrations WHERE status = 'applied'")
# Inside flotilla: the time from each migration's BEGIN to its COMMIT as
# the ledger records it (validate, lint, execute, fingerprint, ledger row).
inside=$(psql -d b_flotilla -Atc "SELECT percentile_cont(0.5) WITHIN GROUP
    (ORDER BY duration_ms) FROM flotilla.schema_migrations WHERE version <= 50")
# The strict view: one flotilla process per migration, like the psql loop.
psql -qc "CREATE DATABASE b_each"
: > "$work/each.ms"
for i in $(seq 1 50); do
    t0=$(now_ns)
    "$bin" apply --db dbname=b_each --to "$i" --log-file "" --quiet \
        "$work/m" >/dev/null
    t1=$(now_ns)
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$work/each.ms"
done
me=$(median < "$work/each.ms")
over_each=$(echo "scale=2; $me - $mp" | bc)

psql -q -d b_flotilla -c "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a,
    g * 2 AS b, now() AS c FROM generate_series(1, 1000000) g;
    ALTER TABLE big ADD PRIMARY KEY (id);" -c "VACUUM ANALYZE big"
: > "$work/ctas.ms"
for k in 1 2 3; do
    t0=$(now_ns)
    psql -X -q -d b_flotilla -c "CREATE TABLE big_copy AS SELECT * FROM big"
    t1=$(now_ns)
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$work/ctas.ms"
    psql -X -q -d b_flotilla -c "DROP TABLE big_copy"
done
# The same UPDATE of 1,000 of the 1,000,000 rows, by psql in a transaction
# (no backup) and by flotilla (backup before it, reconciled before COMMIT:
# the rows it changed kept, the others dropped).  The difference is what
# the backup costs.
upd="UPDATE big SET b = b + 1 WHERE id BETWEEN 1 AND 1000;"
: > "$work/upd_psql.ms"
for k in 1 2 3; do
    t0=$(now_ns)
    psql -X -q -1 -d b_flotilla -c "$upd"
    t1=$(now_ns)
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$work/upd_psql.ms"
done
: > "$work/upd_fl.ms"
for k in 1 2 3; do
    v=$(printf '%04d' $((50 + k)))
    printf -- '-- flotilla:up\n%s\n-- flotilla:down\nSELECT 1;\n' "$upd" \
        > "$work/m/${v}_touch_big_$k.sql"
    t0=$(now_ns)
    "$bin" apply --db dbname=b_flotilla --log-file "" --quiet "$work/m" >/dev/null
    t1=$(now_ns)
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$work/upd_fl.ms"
done
kept=$(psql -d b_flotilla -Atc "SELECT string_agg(DISTINCT row_count::text, ',')
    FROM flotilla.backups WHERE source_table = 'big'")
mc=$(median < "$work/ctas.ms")
mu=$(median < "$work/upd_psql.ms")
mf=$(median < "$work/upd_fl.ms")
mb=$(echo "scale=3; $mf - $mu" | bc)
ratio=$(echo "scale=2; $mb / $mc" | bc)

cat <<REPORT
machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB
postgres: $("$FL_PG_BIN/postgres" -V), fsync=off (throwaway server)
apply overhead, 50 small migrations (CREATE TABLE + INSERT):
  psql -1 -f loop           median ${mp} ms per migration (one psql each)
  flotilla apply DIR        ${per} ms per migration (one run, ${applied} applied)
  overhead                  ${over} ms per migration (target < 5 ms)
  flotilla apply --to N     median ${me} ms per migration (one run each)
  overhead, one run each    ${over_each} ms per migration
  inside the transaction    ${inside} ms median per migration (ledger duration_ms)
backup of a 1,000,000-row table for an UPDATE of 1,000 rows, median of 3:
  CREATE TABLE AS            ${mc} ms
  the UPDATE by psql -1      ${mu} ms
  the UPDATE by flotilla     ${mf} ms (one process: connect, ledger, backup,
                             net, reconcile; rows kept: ${kept})
  backup = the difference    ${mb} ms
  ratio                      ${ratio}x of CREATE TABLE AS (target < 2x)
REPORT
