#!/usr/bin/env bash
# Benchmark: `flotilla lint` against squawk-cli on the same files, in the
# same run, in every output mode, on two inputs:
#
#   corpus     a real-world-shaped tree written by bench/lint-corpus.py:
#              about 1,750 .sql files in the layouts of diesel,
#              golang-migrate, pop (kratos), sqlx, dbmate, Flyway and plain
#              SQL; flotilla reads the tree, squawk gets the same files by
#              name (it has no notion of layouts)
#   synthetic  one file of 10,000 mixed statements
#
# Output modes compared: flotilla human/json/sarif against squawk
# tty/json/gcc (squawk has no SARIF; gcc is its other machine format).
# Builds a Release flotilla in build-bench/ when missing and installs
# squawk-cli into bench/.squawk with npm when missing (its Linux binary
# comes in the optional dependency @squawk-cli/linux-x64).  Both tools use
# every CPU (flotilla lints files on --jobs threads, one per CPU).
#
# Environment: FLOTILLA_BENCH_STATEMENTS (default 10000),
# FLOTILLA_BENCH_SCALE (corpus size, default 1), FLOTILLA_BENCH_RUNS
# (hyperfine runs, default 10).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-bench
n=${FLOTILLA_BENCH_STATEMENTS:-10000}
scale=${FLOTILLA_BENCH_SCALE:-1}
runs=${FLOTILLA_BENCH_RUNS:-10}
work=$(mktemp -d /tmp/flotilla-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ ! -x "$build/bin/flotilla" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLOTILLA_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target flotilla >/dev/null

squawk=$root/bench/.squawk/node_modules/.bin/squawk
if [ ! -x "$squawk" ]; then
    npm install --silent --prefix "$root/bench/.squawk" squawk-cli >/dev/null
fi

# The synthetic file: ten statement shapes in rotation, DDL that the rules
# inspect, DML, and strings and comments that a regex splitter gets wrong.
sql=$work/mixed.sql
awk -v n="$n" 'BEGIN {
    for (i = 0; i < n; i++) {
        k = i % 10
        if (k == 0) printf "CREATE TABLE t%d (id bigint PRIMARY KEY, name varchar(40), at timestamp);\n", i
        else if (k == 1) printf "ALTER TABLE users ADD COLUMN c%d text DEFAULT %s;\n", i, (i % 20 == 1 ? "gen_random_uuid()::text" : "'\''x'\''")
        else if (k == 2) printf "CREATE INDEX idx_%d ON users (email, created_at);\n", i
        else if (k == 3) printf "UPDATE users SET name = '\''a;b'\'' /* ; */ WHERE id = %d;\n", i
        else if (k == 4) printf "ALTER TABLE orders ADD CONSTRAINT fk_%d FOREIGN KEY (user_id) REFERENCES users (id);\n", i
        else if (k == 5) printf "-- comment with CREATE INDEX; inside\nSELECT o.id, u.email FROM orders o JOIN users u ON u.id = o.user_id WHERE o.total > %d;\n", i
        else if (k == 6) printf "ALTER TABLE users ALTER COLUMN c%d SET NOT NULL;\n", i - 5
        else if (k == 7) printf "INSERT INTO audit (id, payload) VALUES (%d, '\''{\"k\": \"v\"}'\'');\n", i
        else if (k == 8) printf "ALTER TABLE users RENAME COLUMN c%d TO d%d;\n", i - 7, i
        else printf "DELETE FROM sessions WHERE expires_at < now() - interval '\''%d days'\'';\n", i % 90
    }
}' >"$sql"

corpus=$work/corpus
python3 "$root/bench/lint-corpus.py" "$corpus" "$scale" >/dev/null
find "$corpus" -name '*.sql' | sort >"$work/files"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "corpus: $(wc -l <"$work/files") files, $(du -sb "$corpus" | cut -f1) bytes; synthetic: $n statements, $(wc -c <"$sql") bytes"
echo "flotilla: $("$build/bin/flotilla" version)"
echo "squawk: $("$squawk" --version 2>&1 | head -1)"
echo "flotilla finds $("$build/bin/flotilla" lint --format json "$corpus" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["findings"]), "findings in", d["files"], "files")') in the corpus"

# Both tools exit nonzero when they find something; that is expected here.
# $(cat ...) is expanded by hyperfine's shell at each run, so the cost of
# listing the files is squawk's (as it would be in CI).
hyperfine --style basic --warmup 2 --runs "$runs" -i --export-json "$work/h.json" \
    -n "corpus flotilla human" "$build/bin/flotilla lint $corpus" \
    -n "corpus squawk tty" "$squawk \$(cat $work/files)" \
    -n "corpus flotilla json" "$build/bin/flotilla lint --format json $corpus" \
    -n "corpus squawk json" "$squawk --reporter json \$(cat $work/files)" \
    -n "corpus flotilla sarif" "$build/bin/flotilla lint --format sarif $corpus" \
    -n "corpus squawk gcc" "$squawk --reporter gcc \$(cat $work/files)" \
    -n "synthetic flotilla human" "$build/bin/flotilla lint $sql" \
    -n "synthetic squawk tty" "$squawk $sql" \
    -n "synthetic flotilla json" "$build/bin/flotilla lint --format json $sql" \
    -n "synthetic squawk json" "$squawk --reporter json $sql" \
    -n "synthetic flotilla sarif" "$build/bin/flotilla lint --format sarif $sql" \
    -n "synthetic squawk gcc" "$squawk --reporter gcc $sql" >/dev/null 2>&1

python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
# Wall time is what CI waits for; CPU time (user + system, all threads) is
# steadier on a shared machine and says how much of it each tool burns.
print("| input | flotilla mode | wall | CPU | squawk mode | wall | CPU | wall ratio |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for inp in ("corpus", "synthetic"):
    for fm, sm in (("human", "tty"), ("json", "json"), ("sarif", "gcc")):
        f, s = r[f"{inp} flotilla {fm}"], r[f"{inp} squawk {sm}"]
        cpu = lambda x: (x["user"] + x["system"]) * 1000
        print(f"| {inp} | {fm} | {f['mean']*1000:.0f} ± {f['stddev']*1000:.0f} ms | {cpu(f):.0f} ms "
              f"| {sm} | {s['mean']*1000:.0f} ± {s['stddev']*1000:.0f} ms | {cpu(s):.0f} ms "
              f"| {s['mean']/f['mean']:.2f}x {'flotilla faster' if f['mean'] < s['mean'] else 'SQUAWK FASTER'} |")
PY
