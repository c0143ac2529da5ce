#!/usr/bin/env bash
# Benchmark: the pipeline's cost against plain psql, in the same run, on the
# same throwaway PostgreSQL 15.
#
#  1. Cost per migration: 50 small migrations (CREATE TABLE with a key and
#     one INSERT each), RUNS times, each time into fresh databases:
#       - one psql session, `psql -1`: the same statements in one
#         transaction (the baseline of issue 10);
#       - one psql session, each migration in a transaction of its own
#         (what flotilla does: one COMMIT per migration);
#       - one `flotilla apply` of the directory.
#     Medians; the ratio, and flotilla's overhead per migration over each
#     baseline.  Target: under 2 ms over `psql -1`.
#  2. Where flotilla's time goes: one more apply with every statement the
#     server runs logged (log_min_duration_statement = 0 on that database
#     only; not timed with the others, logging costs), grouped by what it
#     does: server time and statements per migration.  Statements are not
#     round trips: flotilla sends several in one (libpq's pipeline mode),
#     so the round trips are counted on the client, as the send() calls
#     of one more apply under strace (when strace is installed).
#  3. Backups proportional to the change: on a table of BIG_ROWS rows
#     (default 1,000,000), the same single-row UPDATE by psql -1 and by
#     flotilla apply with a backup of the row (`WHERE id = N`) and with a
#     backup of the whole table (`WHERE id = N AND random() < 2`, which
#     flotilla cannot select again, so it keeps the whole table); and the
#     1,000-row UPDATE of issue 8 against a bare CREATE TABLE AS.  Median
#     of 3.
#  4. A wide schema: 10 of the small migrations of part 1 into a database
#     that already holds WIDE_TABLES tables (default 1,000: each with a
#     bigserial key, 4 more columns, a default and an index), by psql -1
#     and by one `flotilla apply`, and 10 more by a second apply (what a
#     run costs once the ledger and the first snapshot exist).  Median of
#     3, each into a fresh copy of the database.
#
# Usage: bench/apply.sh        (builds Release flotilla in build-bench/)
#   RUNS=N (default 5)   BIG_ROWS=N (default 1000000)
#   WIDE_TABLES=N (default 1000)
#   B=DIR  also time the flotilla in DIR (e.g. a build of the commit
#          before) in parts 1 and 4, run by run alternately with this one
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-5}
big_rows=${BIG_ROWS:-1000000}
wide_tables=${WIDE_TABLES:-1000}
. "$root/bench/lib.sh"
fl_bench_build flotilla
bin=$root/build-bench/bin/flotilla

fl_bench_pg
# Debian's /usr/bin/psql is a Perl wrapper that costs ~60 ms a start; the
# baseline uses the real binary so that it is not slowed down artificially.
psql() { "$FL_PG_BIN/psql" "$@"; }

now_ns() { date +%s%N; }
ms_since() { echo "scale=3; ($(now_ns) - $1) / 1000000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# timed FILE COMMAND...: runs COMMAND, appends its milliseconds to FILE.
timed() {
    local out=$1 t0
    shift
    t0=$(now_ns)
    "$@"
    ms_since "$t0" >> "$out"
}
# fl_apply BIN DB DIR: one quiet `flotilla apply` of DIR to database DB.
fl_apply() { "$1" apply --db "dbname=$2" --log-file "" --quiet "$3" >/dev/null; }
# expect_applied DB N: exits unless DB's ledger has N migrations applied.
expect_applied() {
    local n
    n=$(psql -d "$1" -Atc "SELECT count(*) FROM flotilla.schema_migrations
        WHERE status = 'applied'")
    [ "$n" = "$2" ] || { echo "flotilla applied $n of $2 in $1" >&2; exit 1; }
}

# ---- 1. cost per migration ------------------------------------------------
mkdir -p "$work/m"
: > "$work/one.sql"
: > "$work/each.sql"
for i in $(seq 1 50); do
    v=$(printf '%04d' "$i")
    body="CREATE TABLE t$i (id int PRIMARY KEY, v text);
INSERT INTO t$i VALUES (1, 'x');"
    printf -- '-- flotilla:up\n%s\n-- flotilla:down\nDROP TABLE t%d;\n' "$body" "$i" \
        > "$work/m/${v}_t$i.sql"
    printf '%s\n' "$body" >> "$work/one.sql"
    printf 'BEGIN;\n%s\nCOMMIT;\n' "$body" >> "$work/each.sql"
done
: > "$work/psql1.ms"; : > "$work/psqleach.ms"; : > "$work/fl.ms"; : > "$work/flb.ms"
for r in $(seq 1 "$runs"); do
    psql -qc "CREATE DATABASE b1_$r" -c "CREATE DATABASE be_$r" \
        -c "CREATE DATABASE bf_$r"
    timed "$work/psql1.ms" psql -X -q -1 -v ON_ERROR_STOP=1 -d "b1_$r" \
        -f "$work/one.sql"
    timed "$work/psqleach.ms" psql -X -q -v ON_ERROR_STOP=1 -d "be_$r" \
        -f "$work/each.sql"
    timed "$work/fl.ms" fl_apply "$bin" "bf_$r" "$work/m"
    if [ -n "${B:-}" ]; then
        psql -qc "CREATE DATABASE bb_$r"
        timed "$work/flb.ms" fl_apply "$B/flotilla" "bb_$r" "$work/m"
    fi
    expect_applied "bf_$r" 50
done
m1=$(median < "$work/psql1.ms")
me=$(median < "$work/psqleach.ms")
mf=$(median < "$work/fl.ms")
ratio=$(echo "scale=2; $mf / $m1" | bc)
over1=$(echo "scale=2; ($mf - $m1) / 50" | bc)
overe=$(echo "scale=2; ($mf - $me) / 50" | bc)
other=""
if [ -n "${B:-}" ]; then
    mb=$(median < "$work/flb.ms")
    other="  flotilla apply DIR, $B  ${mb} ms  ($(echo "scale=2; $mb / 50" | bc) ms per migration, $(echo "scale=2; ($mb - $m1) / 50" | bc) ms over psql -1)"
fi
inside=$(psql -d "bf_1" -Atc "SELECT percentile_cont(0.5) WITHIN GROUP
    (ORDER BY duration_ms) FROM flotilla.schema_migrations")

# ---- 2. where the time goes -----------------------------------------------
psql -qc "CREATE DATABASE bprof" \
    -c "ALTER DATABASE bprof SET log_min_duration_statement = 0"
log=$work/pg/server.log
start=$(wc -l < "$log")
t0=$(now_ns)
"$bin" apply --db dbname=bprof --log-file "" --quiet "$work/m" >/dev/null
prof_ms=$(ms_since "$t0")
trips=n/a
if command -v strace >/dev/null; then
    psql -qc "CREATE DATABASE btrips"
    strace -f -qq -e trace=sendto -o "$work/strace.txt" "$bin" apply \
        --db dbname=btrips --log-file "" --quiet "$work/m" >/dev/null
    trips=$(echo "scale=1; $(grep -c 'sendto(' "$work/strace.txt") / 50" | bc)
fi
# One row per message the server answered: "category<TAB>ms"; a statement
# sent with parameters is logged in three parts (parse, bind, execute), all
# counted, one round trip.
tail -n +"$((start + 1))" "$log" | grep 'duration: ' | sed -E \
    's/.*duration: ([0-9.]+) ms +(statement|execute [^:]*|parse [^:]*|bind [^:]*): (.*)/\2\t\1\t\3/' |
    awk -F'\t' '
    {
        what = $1; ms = $2; sql = $3; c = "migration statements"
        if (sql ~ /^INSERT INTO flotilla\.migration_logs/) c = "log rows"
        else if (sql ~ /^INSERT INTO flotilla\.schema_migrations/) c = "ledger row"
        else if (sql ~ /flotilla_schema|schema_fingerprint|pg_temp.flotilla_schema/ || what ~ /flotilla_schema/) c = "schema snapshot, changes, fingerprint"
        else if (what ~ /flotilla_net/) c = "net (catalog snapshots, columns)"
        else if (sql ~ /set_config|current_setting/) c = "session pins (set_config)"
        else if (sql ~ /flotilla\.|pg_advisory|to_regclass/) c = "ledger reads, lock, set-up (once a run)"
        else if (sql ~ /^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET LOCAL|SET SESSION)/) c = "transaction control, timeouts"
        else if (sql ~ /json_array_elements/) c = "name lookups before statements"
        t[c] += ms; total += ms
        if (what !~ /^(parse|bind)/) { n[c]++; trips++ }
    }
    END {
        for (c in t) printf "%012.3f|  %-40s %6.2f ms %5.1f statements\n", t[c], c, t[c] / 50, n[c] / 50
        printf "000000000.000|  %-40s %6.2f ms %5.1f statements\n", "all (server time)", total / 50, trips / 50
    }' | sort -r | cut -d'|' -f2- > "$work/prof.txt"

# ---- 3. backups -----------------------------------------------------------
psql -qc "CREATE DATABASE bbig"
psql -q -d bbig -c "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a,
    g * 2 AS b, now() AS c FROM generate_series(1, $big_rows) g;
    ALTER TABLE big ADD PRIMARY KEY (id);" -c "VACUUM ANALYZE big"
big_size=$(psql -d bbig -Atc "SELECT pg_size_pretty(pg_total_relation_size('big'))")
mkdir -p "$work/mb"
: > "$work/ctas.ms"
for k in 1 2 3; do
    timed "$work/ctas.ms" psql -X -q -d bbig \
        -c "CREATE TABLE big_copy AS SELECT * FROM big"
    psql -X -q -d bbig -c "DROP TABLE big_copy"
done
# One migration at a time, each in its own run of flotilla apply.
v=0
fl_one() {  # fl_one STATEMENT OUTFILE
    v=$((v + 1))
    printf -- '-- flotilla:up\n%s\n-- flotilla:down\nSELECT 1;\n' "$1" \
        > "$work/mb/$(printf '%04d' "$v")_u$v.sql"
    timed "$2" "$bin" apply --db dbname=bbig --log-file "" --quiet \
        --allow-lint-errors "$work/mb" >/dev/null 2>"$work/apply.err"
}
: > "$work/one_psql.ms"; : > "$work/one_rows.ms"; : > "$work/one_whole.ms"
: > "$work/k_psql.ms"; : > "$work/k_fl.ms"
for k in 1 2 3; do
    id=$((k * 1000 + 42))
    timed "$work/one_psql.ms" psql -X -q -1 -d bbig \
        -c "UPDATE big SET b = b + 1 WHERE id = $id;"
    fl_one "UPDATE big SET b = b + 1 WHERE id = $id;" "$work/one_rows.ms"
    fl_one "UPDATE big SET b = b + 1 WHERE id = $id AND random() < 2;" \
        "$work/one_whole.ms"
    lo=$((k * 10000 + 1)); hi=$((k * 10000 + 1000))
    timed "$work/k_psql.ms" psql -X -q -1 -d bbig \
        -c "UPDATE big SET b = b + 1 WHERE id BETWEEN $lo AND $hi;"
    fl_one "UPDATE big SET b = b + 1 WHERE id BETWEEN $lo AND $hi;" "$work/k_fl.ms"
done
kinds=$(psql -d bbig -Atc "SELECT string_agg(row_count::text, ',' ORDER BY id)
    FROM flotilla.backups WHERE source_table = 'big'")
mc=$(median < "$work/ctas.ms")
mop=$(median < "$work/one_psql.ms")
mor=$(median < "$work/one_rows.ms")
mow=$(median < "$work/one_whole.ms")
mkp=$(median < "$work/k_psql.ms")
mkf=$(median < "$work/k_fl.ms")

# ---- 4. a wide schema -----------------------------------------------------
psql -qc "CREATE DATABASE bwide_tpl"
for i in $(seq 1 "$wide_tables"); do
    echo "CREATE TABLE w$i (id bigserial PRIMARY KEY, a int, b text,
        c timestamptz DEFAULT now(), d jsonb); CREATE INDEX ON w$i (a);"
done > "$work/wide.sql"
psql -X -q -1 -v ON_ERROR_STOP=1 -d bwide_tpl -f "$work/wide.sql"
# Part 1's first 10 migrations, then its first 20.
mkdir -p "$work/mw1" "$work/mw2"
for i in $(seq 1 20); do
    f=$(printf '%04d' "$i")_t$i.sql
    cp "$work/m/$f" "$work/mw2/"
    if [ "$i" -le 10 ]; then cp "$work/m/$f" "$work/mw1/"; fi
done
head -n 20 "$work/one.sql" > "$work/wide10.sql"
: > "$work/w_psql.ms"; : > "$work/w_fl1.ms"; : > "$work/w_fl2.ms"
for r in 1 2 3; do
    psql -qc "CREATE DATABASE bwp_$r TEMPLATE bwide_tpl" \
        -c "CREATE DATABASE bwf_$r TEMPLATE bwide_tpl"
    timed "$work/w_psql.ms" psql -X -q -1 -v ON_ERROR_STOP=1 -d "bwp_$r" \
        -f "$work/wide10.sql"
    timed "$work/w_fl1.ms" fl_apply "$bin" "bwf_$r" "$work/mw1"
    timed "$work/w_fl2.ms" fl_apply "$bin" "bwf_$r" "$work/mw2"
    expect_applied "bwf_$r" 20
    if [ -n "${B:-}" ]; then
        psql -qc "CREATE DATABASE bwb_$r TEMPLATE bwide_tpl"
        timed "$work/w_flb1.ms" fl_apply "$B/flotilla" "bwb_$r" "$work/mw1"
        timed "$work/w_flb2.ms" fl_apply "$B/flotilla" "bwb_$r" "$work/mw2"
    fi
done
mwp=$(median < "$work/w_psql.ms")
mw1=$(median < "$work/w_fl1.ms")
mw2=$(median < "$work/w_fl2.ms")
wother=""
if [ -n "${B:-}" ]; then
    wother="  the same two runs by $B  $(median < "$work/w_flb1.ms") ms, $(median < "$work/w_flb2.ms") ms"
fi

cat <<REPORT
machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)
postgres: $("$FL_PG_BIN/postgres" -V), fsync=off (throwaway server)
cost per migration, 50 small migrations (CREATE TABLE + INSERT), median of $runs runs:
  psql -1, one session           ${m1} ms  ($(echo "scale=2; $m1 / 50" | bc) ms per migration)
  psql, one session, BEGIN/COMMIT each  ${me} ms  ($(echo "scale=2; $me / 50" | bc) ms per migration)
  flotilla apply DIR             ${mf} ms  ($(echo "scale=2; $mf / 50" | bc) ms per migration)
  ratio to psql -1               ${ratio}x
  overhead over psql -1          ${over1} ms per migration (target < 2 ms)
  overhead over one COMMIT each  ${overe} ms per migration
${other}
  inside the transaction         ${inside} ms median per migration (ledger duration_ms)
where flotilla's time goes (one more apply, every statement logged: ${prof_ms} ms),
per migration, server time and statements by what they do:
$(cat "$work/prof.txt")
round trips per migration (the client's send() calls / 50, strace): ${trips}
backups, a table of $big_rows rows ($big_size), median of 3:
  CREATE TABLE AS of the table           ${mc} ms
  UPDATE of 1 row by psql -1             ${mop} ms
  the same by flotilla, row backup       ${mor} ms
  the same by flotilla, whole table      ${mow} ms
  UPDATE of 1,000 rows by psql -1        ${mkp} ms
  the same by flotilla, row backup       ${mkf} ms
  rows kept per backup, in order         ${kinds}
a schema of $wide_tables tables, 10 small migrations, median of 3:
  psql -1                                ${mwp} ms
  flotilla apply, the first run          ${mw1} ms  ($(echo "scale=2; ($mw1 - $mwp) / 10" | bc) ms per migration over psql -1)
  flotilla apply, 10 more, a second run  ${mw2} ms  ($(echo "scale=2; ($mw2 - $mwp) / 10" | bc) ms per migration over psql -1)
${wother}
REPORT
