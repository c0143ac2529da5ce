#!/usr/bin/env bash
# Benchmark: a fleet rollout against psql loops, in the same run, on the
# same throwaway PostgreSQL 15 (one server, Unix socket).
#
# The workload (issue 12): a three-statement migration (ADD COLUMN with a
# default, CREATE INDEX, UPDATE of every row) on N tenant databases (default
# 200) of 1,000 rows each.  Measured, each from the same starting state:
#   1. a sequential loop of the real `psql -1 -f` binary over the databases;
#   2. `xargs -P P psql -1 -f` at the fleet's total parallelism P (default
#      4: 4 agents of max_parallel 1);
#   3. `flotilla rollout start --watch`: one wave of 100%, the coordinator
#      and 4 agents already running with every tenant discovered, from the
#      command to its exit; twice: first to databases flotilla never
#      touched (each target makes its ledger), then, after a fleet
#      rollback of it (`rollout rollback --watch`, timed too), the same
#      bundle again to databases whose ledgers are in place: what every
#      rollout after a fleet's first costs.
# Between runs the migration is undone (down, then VACUUM FULL), outside the
# timings.  Then, for the rollout, where each target's time goes: every
# pipeline step the targets' logs record (flotilla.migration_logs), summed
# over the targets, and each command's total as its agent reported it,
# against the rollout's wall time; and whose the machine's CPU was during
# the parallel psql run and the rollout with ledgers in place (/proc: the
# machine's, the PostgreSQL backends' as their postmaster reaped them, the
# agents' and the coordinator's own).
#
# Usage: bench/rollout.sh [N [P]]        (builds Release in build-bench/)
# FLOTILLA_BENCH_BIN=DIR runs the flotilla binaries in DIR instead (another
# build, to compare two in runs of the same machine and minutes).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-200}
par=${2:-4}
agents=4
"$root/deploy/install-deps.sh" >/dev/null
if [ -n "${FLOTILLA_BENCH_BIN:-}" ]; then
    bin=$FLOTILLA_BENCH_BIN
else
    cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release \
        -DFLOTILLA_TESTS=OFF >/dev/null
    cmake --build "$root/build-bench" -j2 --target flotilla \
        flotilla-coordinator flotilla-agent >/dev/null
    bin=$root/build-bench/bin
fi

. "$root/deploy/pg-throwaway.sh"
work=$(mktemp -d /tmp/flotilla-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    fl_pg_stop "$work/pg"
    rm -rf "$work"
}
trap cleanup EXIT
fl_pg_start "$work/pg"
# Debian's /usr/bin/psql is a Perl wrapper that costs ~60 ms a start; the
# baseline uses the real binary so that it is not slowed down artificially.
psql() { "$FL_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# CPU time in ticks (USER_HZ, 100 a second): the machine's, busy; a
# process's own (threads included), or its reaped children's.
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
own_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
children_ticks() { awk '{print $16 + $17}' "/proc/$1/stat"; }
cpu_ms() { echo $(( $1 * 10 )); }
secs() { echo "scale=2; $1 / 1000" | bc; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $("$FL_PG_BIN/postgres" -V), Unix socket, fsync $(psql -Atc 'SHOW fsync')"
echo "workload: $n databases x 1,000 rows; ADD COLUMN with a default, CREATE INDEX, UPDATE of every row; parallelism $par"

psql -c "CREATE DATABASE b_tpl"
psql -d b_tpl -c "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO items SELECT g, g, 'row ' || g FROM generate_series(1, 1000) g" \
    -c "VACUUM ANALYZE items"
dbs=()
for i in $(seq 1 "$n"); do
    # Four groups, one per agent: b_a_*, b_b_*, b_c_*, b_d_*.
    g=$(printf "\\x$(printf %x $(( 97 + (i - 1) % agents )))")
    db=$(printf 'b_%s_%03d' "$g" "$i")
    psql -c "CREATE DATABASE $db TEMPLATE b_tpl"
    dbs+=("$db")
done
printf '%s\n' "${dbs[@]}" >"$work/dbs"
cat >"$work/up.sql" <<'SQL'
ALTER TABLE items ADD COLUMN flag int NOT NULL DEFAULT 7;
CREATE INDEX items_flag ON items (flag);
UPDATE items SET v = v + 1;
SQL
undo() {
    local db
    for db in "${dbs[@]}"; do
        psql -d "$db" -c "DROP INDEX IF EXISTS items_flag;
ALTER TABLE items DROP COLUMN IF EXISTS flag;
UPDATE items SET v = v - 1" -c "VACUUM FULL items"
    done
}

# 1. psql, one after the other.
t0=$(now_ms)
for db in "${dbs[@]}"; do
    psql -1 -d "$db" -f "$work/up.sql"
done
seq_ms=$(( $(now_ms) - t0 ))
undo

# 2. psql under xargs -P, the fleet's parallelism.
export FL_PG_BIN
m0=$(machine_ticks)
t0=$(now_ms)
xargs -P "$par" -I{} "$FL_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -1 -d {} \
    -f "$work/up.sql" <"$work/dbs"
xargs_ms=$(( $(now_ms) - t0 ))
xargs_cpu=$(( $(machine_ticks) - m0 ))
undo

# 3. The fleet: keys, a coordinator (its state on the same server), four
# agents of max_parallel par/agents, every tenant discovered first.
mkdir -p "$work/agents" "$work/operators" "$work/trust" "$work/m"
"$bin/flotilla" keygen --out "$work/release" >/dev/null
cp "$work/release.pub" "$work/trust/"
"$bin/flotilla" cert --out "$work/coord" --name coordinator >/dev/null
"$bin/flotilla" cert --out "$work/op" --name operator >/dev/null
cp "$work/op.cert" "$work/operators/"
psql -c "CREATE DATABASE b_control"
dsn="host=$PGHOST port=$PGPORT user=$PGUSER"
cat >"$work/coordinator.yaml" <<EOF
name: bench
agent_endpoint: "tcp://127.0.0.1:!"
control_endpoint: "tcp://127.0.0.1:!"
state_dsn: "$dsn dbname=b_control"
cert: $work/coord.cert_secret
agents_dir: $work/agents
operators_dir: $work/operators
trust: $work/trust
log_file: $work/coordinator.log
log_level: notice
EOF
for a in $(seq 1 $agents); do
    "$bin/flotilla" cert --out "$work/agent$a" --name "agent$a" >/dev/null
    cp "$work/agent$a.cert" "$work/agents/"
done
"$bin/flotilla-coordinator" --config "$work/coordinator.yaml" \
    >"$work/coordinator.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
    grep -q '"control_endpoint"' "$work/coordinator.log" 2>/dev/null && break
    sleep 0.1
done
ep() { sed -n 's/.*"'"$1"'":"\([^"]*\)".*/\1/p' "$work/coordinator.log" | tail -1; }
for a in $(seq 1 $agents); do
    g=$(printf "\\x$(printf %x $(( 96 + a )))")
    cat >"$work/agent$a.yaml" <<EOF
name: agent$a
coordinator:
  endpoint: $(ep agent_endpoint)
  public_cert: $work/coord.cert
cert: $work/agent$a.cert_secret
environment: bench
trust: $work/trust
state_dir: $work/state$a
log_file: $work/agent$a.log
log_level: notice
server: "$dsn dbname=postgres"
max_parallel: $(( par / agents > 0 ? par / agents : 1 ))
discover:
  - databases: "b_${g}_*"
EOF
    "$bin/flotilla-agent" --config "$work/agent$a.yaml" \
        >"$work/agent$a.out" 2>&1 &
    pids+=($!)
done
export FLOTILLA_COORDINATOR=$(ep control_endpoint)
export FLOTILLA_CERT=$work/op.cert_secret
export FLOTILLA_SERVER_CERT=$work/coord.cert
for _ in $(seq 1 600); do
    got=$("$bin/flotilla" targets --json 2>/dev/null |
        grep -c '"reachability": *"reachable"' || true)
    [ "$got" -ge "$n" ] && break
    sleep 0.1
done
[ "$got" -ge "$n" ] || { echo "only $got of $n targets reachable" >&2; exit 1; }
# The migration (the same for bench/rollout.sh and bench/target.sh).
cp "$root/bench/rollout/0001_flag.sql" "$work/m/"
"$bin/flotilla" bundle build "$work/m" --sign "$work/release.key" \
    --environment bench --sequence 1 --out "$work/b.bundle" >/dev/null
# rollout OUT: times a rollout of the bundle to every target into
# $rollout_ms, its id into $rollout_id; every target must apply it.
rollout() {
    local t0 applied
    t0=$(now_ms)
    "$bin/flotilla" rollout start "$work/b.bundle" --selector "" --waves 100% \
        --watch --json >"$work/$1.json"
    rollout_ms=$(( $(now_ms) - t0 ))
    applied=$(grep -o '"applied": *[0-9]*' "$work/$1.json" | head -1 |
        grep -o '[0-9]*$')
    [ "$applied" = "$n" ] || { echo "the rollout applied $applied of $n" >&2; exit 1; }
    rollout_id=$(grep -o '"id": *"[^"]*"' "$work/$1.json" | head -1 |
        sed 's/.*"\([^"]*\)"$/\1/')
}
# 3a. The first rollout to these databases: each target makes its ledger.
rollout first
first_ms=$rollout_ms
# 3b. The fleet rollback of it (every target restored from its backup),
# then the table rewritten as between the psql runs.
t0=$(now_ms)
"$bin/flotilla" rollout rollback "$rollout_id" --watch --json >"$work/rollback.json" || true
rollback_ms=$(( $(now_ms) - t0 ))
grep -q '"rolled_back": *'"$n" "$work/rollback.json" ||
    { echo "the rollback did not roll back $n targets" >&2; exit 1; }
for db in "${dbs[@]}"; do psql -d "$db" -c "VACUUM FULL items"; done
# 3c. The same rollout again, to databases whose ledgers are in place (a
# fleet's every rollout after its first): the steady state.
since=$(psql -Atc "SELECT pg_catalog.clock_timestamp()")
postmaster=$(head -1 "$work/pg/data/postmaster.pid")
m0=$(machine_ticks)
b0=$(children_ticks "$postmaster")
d0=()
for p in "${pids[@]}"; do d0+=("$(own_ticks "$p")"); done
rollout again
fleet_ms=$rollout_ms
fleet_cpu=$(( $(machine_ticks) - m0 ))
backends_cpu=$(( $(children_ticks "$postmaster") - b0 ))
coordinator_cpu=$(( $(own_ticks "${pids[0]}") - d0[0] ))
agents_cpu=0
for k in $(seq 1 $(( ${#pids[@]} - 1 ))); do
    agents_cpu=$(( agents_cpu + $(own_ticks "${pids[$k]}") - d0[k] ))
done

echo
printf '%-34s %8s %8s\n' "run" "seconds" "ratio"
printf '%-34s %8s %8s\n' "psql -1 -f, sequential" "$(secs $seq_ms)" \
    "$(echo "scale=2; $seq_ms / $xargs_ms" | bc)"
printf '%-34s %8s %8s\n' "xargs -P$par psql -1 -f (the floor)" \
    "$(secs $xargs_ms)" "1.00"
printf '%-34s %8s %8s\n' "flotilla rollout, ledgers made" \
    "$(secs $first_ms)" "$(echo "scale=2; $first_ms / $xargs_ms" | bc)"
printf '%-34s %8s %8s\n' "flotilla rollout, ledgers in place" \
    "$(secs $fleet_ms)" "$(echo "scale=2; $fleet_ms / $xargs_ms" | bc)"
printf '%-34s %8s\n' "(flotilla rollout rollback)" "$(secs $rollback_ms)"

# Where the time goes: the steps the targets' logs record, summed.
echo
echo "rollout with ledgers in place, per target (ms, mean over $n targets): the steps in flotilla.migration_logs"
: >"$work/steps"
for db in "${dbs[@]}"; do
    psql -Atd "$db" -F ' ' -c "SELECT step, status, coalesce(duration_ms, 0)
        FROM flotilla.migration_logs WHERE created_at >= '$since'" >>"$work/steps"
done
awk -v n="$n" '{k = $1 " (" $2 ")"; s[k] += $3; c[k]++}
    END {for (k in s) printf "  %-28s %8.1f  (%d rows)\n", k, s[k] / n, c[k]}' \
    "$work/steps" | sort
psql -Atd b_control -c "SELECT '  command total, as agents report: ' ||
    round(avg(duration_ms), 1) || ' ms mean, ' || max(duration_ms) ||
    ' ms max; ' || count(*) || ' commands'
    FROM flotilla_control.commands WHERE action = 'apply'
    AND rollout = '$rollout_id'"
echo "  wall: $fleet_ms ms for $n targets at parallelism $par: $(echo "scale=1; $fleet_ms * $par / $n" | bc) ms of a worker per target (psql: $(echo "scale=1; $xargs_ms * $par / $n" | bc))"

# Whose CPU: both cores are busy in these runs, so the time is the CPU.
echo
echo "CPU (ms in all, and per target), the parallel runs"
printf '  %-50s %8s %8s\n' "xargs -P$par psql -1 -f, every process" \
    "$(cpu_ms $xargs_cpu)" "$(( $(cpu_ms $xargs_cpu) / n ))"
printf '  %-50s %8s %8s\n' "rollout with ledgers in place, every process" \
    "$(cpu_ms $fleet_cpu)" "$(( $(cpu_ms $fleet_cpu) / n ))"
printf '  %-50s %8s %8s\n' "  of which PostgreSQL's backends (all databases)" \
    "$(cpu_ms $backends_cpu)" "$(( $(cpu_ms $backends_cpu) / n ))"
printf '  %-50s %8s %8s\n' "  of which the $agents agents" \
    "$(cpu_ms $agents_cpu)" "$(( $(cpu_ms $agents_cpu) / n ))"
printf '  %-50s %8s %8s\n' "  of which the coordinator" \
    "$(cpu_ms $coordinator_cpu)" "$(( $(cpu_ms $coordinator_cpu) / n ))"
