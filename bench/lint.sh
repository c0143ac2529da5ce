#!/usr/bin/env bash
# Benchmark: `flotilla lint` against squawk-cli on the same generated file
# of 10,000 mixed statements, in the same run.  Builds a Release flotilla in
# build-bench/ when missing and installs squawk-cli into bench/.squawk with
# npm when missing (its Linux binary comes in the optional dependency
# @squawk-cli/linux-x64).  Prints both timings and the ratio.
#
# Environment: FLOTILLA_BENCH_STATEMENTS (default 10000), FLOTILLA_BENCH_RUNS
# (hyperfine runs, default 10).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-bench
n=${FLOTILLA_BENCH_STATEMENTS:-10000}
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

# Ten statement shapes in rotation: DDL that the rules inspect, DML, and
# statements with strings and comments that a regex splitter gets wrong.
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

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "input: $sql ($n statements, $(wc -c <"$sql") bytes)"
echo "flotilla: $("$build/bin/flotilla" version)"
echo "squawk: $("$squawk" --version 2>&1 | head -1)"

# Both tools exit nonzero when they find something; that is expected here.
hyperfine --style basic --warmup 2 --runs "$runs" -i --export-json "$work/h.json" \
    -n flotilla "$build/bin/flotilla lint --format json $sql" \
    -n squawk "$squawk --reporter json $sql" >/dev/null

python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
f, s = r["flotilla"], r["squawk"]
print(f"flotilla lint: mean {f['mean']*1000:.1f} ms (min {f['min']*1000:.1f}, stddev {f['stddev']*1000:.1f})")
print(f"squawk:        mean {s['mean']*1000:.1f} ms (min {s['min']*1000:.1f}, stddev {s['stddev']*1000:.1f})")
print(f"ratio squawk/flotilla: {s['mean']/f['mean']:.2f}x ({'flotilla faster' if f['mean'] < s['mean'] else 'squawk faster'})")
PY
