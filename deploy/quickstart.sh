#!/usr/bin/env bash
# Flotilla quickstart.  Installs what is missing, builds, and runs a
# sandbox under ./.flotilla-demo/:
#
#   deploy/quickstart.sh          the fleet demo: three local PostgreSQL
#                                 servers ("shards"), 24 tenant databases, a
#                                 coordinator and one agent per shard; a
#                                 fleet-wide plan, a canary rollout that
#                                 completes, a poisoned canary that halts a
#                                 rollout with 23 tenants untouched, and an
#                                 emergency fleet rollback
#   deploy/quickstart.sh up       the same sandbox fleet without the story,
#                                 left running; writes .flotilla-demo/env
#   deploy/quickstart.sh single   the single-database walk-through: lint ->
#                                 plan -> apply -> an unsafe migration refused
#                                 -> rollback with the dropped data restored
#   deploy/quickstart.sh stop     stops everything and removes the directory
#
# Each command starts from scratch.  FLOTILLA_DEMO_DIR moves the demo
# directory; FLOTILLA_BIN_DIR (or FLOTILLA_BIN, the flotilla binary) uses
# already built binaries instead of building them.  On a terminal the
# rollouts show live progress bars; piped, one line per event.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo=${FLOTILLA_DEMO_DIR:-$root/.flotilla-demo}
# Absolute: the servers' sockets, the env file and the pid checks name it.
demo=$(realpath -m -- "$demo")
mode=${1:-fleet}
# What stops this sandbox, wherever it is run from.
stop_cmd="$root/deploy/quickstart.sh stop"
[ -n "${FLOTILLA_DEMO_DIR:-}" ] &&
    stop_cmd="FLOTILLA_DEMO_DIR=$(printf '%q' "$demo") $stop_cmd"
. "$root/deploy/pg-throwaway.sh"

case "$mode" in
fleet | up | single | stop) ;;
-h | --help)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "quickstart: unknown command \"$mode\" (fleet, up, single, stop)" >&2
    exit 2
    ;;
esac

# The file that says a directory is a quickstart sandbox, which teardown
# may empty: FLOTILLA_DEMO_DIR naming anything else is refused.
marker=.flotilla-quickstart

# A pid a previous run wrote, if it is still one of this sandbox's
# daemons (its command line names the sandbox); a stale pid file (after
# a reboot) may name anyone's process.
ours() { # pid
    local pid=$1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$demo/"
}

# Stops what a previous run started (by the pids it wrote) and removes it.
teardown() {
    local f pid
    [ -e "$demo" ] || return 0
    if [ ! -f "$demo/$marker" ] && [ -n "$(ls -A "$demo" 2>/dev/null)" ]; then
        echo "quickstart: $demo is not a quickstart sandbox (no $marker" \
            "in it): refusing to remove it; choose another FLOTILLA_DEMO_DIR" >&2
        exit 2
    fi
    if [ -d "$demo/pids" ]; then
        for f in "$demo"/pids/*.pid; do
            [ -f "$f" ] || continue
            pid=$(cat "$f")
            ours "$pid" && kill "$pid" 2>/dev/null || true
        done
        for f in "$demo"/pids/*.pid; do
            [ -f "$f" ] || continue
            pid=$(cat "$f")
            for _ in $(seq 1 50); do
                ours "$pid" || break
                sleep 0.1
            done
        done
    fi
    for f in "$demo/pg" "$demo"/shard*; do
        [ -d "$f" ] && fl_pg_stop "$f"
    done
    rm -rf "$demo"
}

if [ "$mode" = stop ]; then
    if [ ! -e "$demo" ]; then
        echo "quickstart: nothing to stop ($demo does not exist)"
        exit 0
    fi
    teardown
    echo "quickstart: stopped and removed $demo"
    exit 0
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
    printf '$'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}
# Runs a command that must exit with want; the story stops otherwise.
run_expect() { # want what command...
    local want=$1 what=$2 rc=0
    shift 2
    run "$@" || rc=$?
    if [ $rc -ne "$want" ]; then
        echo "quickstart: expected $what (exit $want), got $rc" >&2
        exit 1
    fi
}

"$root/deploy/install-deps.sh"
if [ -z "${FLOTILLA_BIN_DIR:-}" ] && [ -n "${FLOTILLA_BIN:-}" ]; then
    FLOTILLA_BIN_DIR=$(dirname "$FLOTILLA_BIN")
fi
if [ -z "${FLOTILLA_BIN_DIR:-}" ]; then
    say "Building Flotilla (Release) in build/"
    cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release \
        -DFLOTILLA_TESTS=OFF >/dev/null
    cmake --build "$root/build" -j"$(nproc)" --target flotilla \
        flotilla-coordinator flotilla-agent >/dev/null
    FLOTILLA_BIN_DIR=$root/build/bin
fi
bin=$FLOTILLA_BIN_DIR
flotilla() { "$bin/flotilla" "$@"; }

# A tenant database (on the server of PGHOST/PGPORT) with rows users, every
# 25th without an email when nulls is 1.
make_tenant() { # name rows nulls
    psql -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $1"
    psql -q -v ON_ERROR_STOP=1 -d "$1" <<SQL
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text,
    active boolean NOT NULL DEFAULT true,
    legacy_note text
);
INSERT INTO users (email, active, legacy_note)
SELECT CASE WHEN $3 = 1 AND g % 25 = 0 THEN NULL
            ELSE 'user' || g || '@$1.test' END,
       g % 3 <> 0, 'note from the old system #' || g
FROM generate_series(1, $2) g;
SQL
}

# Start from scratch each time so the story is always the same.
teardown
mkdir -p "$demo"
chmod 755 "$demo"
: >"$demo/$marker"
# As root the servers run as postgres, which must reach the directory.
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$demo"; then
    echo "quickstart: the postgres user cannot reach $demo (a parent" \
        "directory is closed to it, as /root is): set FLOTILLA_DEMO_DIR to" \
        "a directory under /tmp or /srv" >&2
    rm -rf "$demo"
    exit 1
fi

if [ "$mode" = single ]; then
    mkdir -p "$demo/pg" "$demo/migrations"
    chmod 755 "$demo/pg"
    say "Starting PostgreSQL 15 in $demo/pg"
    fl_pg_start "$demo/pg"
    echo "PostgreSQL listening on socket $PGHOST, port $PGPORT"
    db="dbname=tenant_acme"
    make_tenant tenant_acme 1000 1
    echo "Created database tenant_acme with 1000 users (40 without an email)."
    cp "$root"/deploy/examples/*.sql "$demo/migrations/"
    cd "$demo"

    say "1. lint: the real PostgreSQL parser checks each migration for statements that would stall production"
    run flotilla lint migrations || true

    say "2. plan: a dry run against the live database; locks, backups, checks and a rehearsal inside BEGIN ... ROLLBACK, changing nothing"
    # 0002 builds an index CONCURRENTLY, which cannot run inside the
    # rehearsal's transaction: the plan says NOT PROVEN and exits 3 rather
    # than claim that apply would go ahead.
    rc=0
    run flotilla plan --db "$db" migrations || rc=$?
    if [ $rc -ne 3 ]; then
        echo "quickstart: expected plan to say NOT PROVEN (exit 3), got $rc" >&2
        exit 1
    fi

    say "3. apply: validate -> back up -> execute -> log, each migration exactly once"
    run flotilla apply --db "$db" migrations
    run flotilla status --db "$db" migrations
    psql -d tenant_acme -c "SELECT status, count(*) FROM users GROUP BY status ORDER BY status"

    say "4. an unsafe migration: SET NOT NULL on a column with NULLs is refused before anything changes: live validation counts the NULLs (the lint rule that flags the table scan is allowed, so that it has its say)"
    {
        echo "-- flotilla:options allow=adding-not-nullable-field users is small; the scan is short"
        cat "$root/deploy/examples-unsafe/0004_email_required.sql"
    } >migrations/0004_email_required.sql
    run_expect 3 "the unsafe migration to be refused" \
        flotilla apply --db "$db" migrations
    echo "Refused with exit code 3; the ledger and the table are unchanged:"
    psql -d tenant_acme -Atc "SELECT 'users.email nullable: ' || NOT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email'"
    rm migrations/0004_email_required.sql

    say "5. rollback: down runs newest first, and the dropped column's data comes back from the backup, proven by checksum"
    run flotilla backups list --db "$db"
    run flotilla rollback --db "$db" --last migrations
    psql -d tenant_acme -c "SELECT id, legacy_note FROM users ORDER BY id LIMIT 3"
    run flotilla log --db "$db" --limit 8

    say "Done.  The demo database is still running: PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER psql -d tenant_acme"
    echo "Stop it with: $stop_cmd"
    exit 0
fi

# The fleet: three shards, 24 tenants, keys and certificates, the
# coordinator and one agent per shard.

mkdir -p "$demo/pids" "$demo/certs" "$demo/agents" "$demo/operators" \
    "$demo/trust" "$demo/migrations"
chmod 700 "$demo/certs" "$demo/agents" "$demo/operators" "$demo/trust"
[ "$mode" = fleet ] && say "Starting three PostgreSQL 15 servers (the shards) in $demo"
declare -a shard_host shard_port
for k in 1 2 3; do
    mkdir -p "$demo/shard$k"
    chmod 755 "$demo/shard$k"
    fl_pg_start "$demo/shard$k"
    shard_host[$k]=$PGHOST
    shard_port[$k]=$PGPORT
done
shard_dsn() { echo "host=${shard_host[$1]} port=${shard_port[$1]} user=$PGUSER"; }
on_shard() { PGHOST=${shard_host[$1]} PGPORT=${shard_port[$1]} "${@:2}"; }

tenants() { # shard -> its tenant numbers
    local k=$1
    seq $(( (k - 1) * 8 + 1 )) $(( k * 8 ))
}
if [ "$mode" = fleet ]; then
    echo "Shards listening on sockets in $demo/shard1..3."
    say "Creating 24 tenant databases with sample data, 8 per shard"
fi
for k in 1 2 3; do
    for n in $(tenants $k); do
        t=$(printf 'tenant_%02d' "$n")
        # tenant_01 has 12 users without an email: the second bundle's
        # SET NOT NULL will be refused there by live validation.
        nulls=0
        [ "$n" = 1 ] && nulls=1
        on_shard $k make_tenant "$t" 300 $nulls
    done
done
[ "$mode" = fleet ] && echo "tenant_01..08 on shard 1, tenant_09..16 on shard 2, tenant_17..24 on shard 3; tenant_01 has 12 users without an email."

[ "$mode" = fleet ] && say "Making the release key that signs bundles and the CurveZMQ certificates of the coordinator, the operator and each agent"
flotilla keygen --out "$demo/certs/release" >/dev/null
cp "$demo/certs/release.pub" "$demo/trust/"
flotilla cert --out "$demo/certs/coordinator" --name coordinator >/dev/null
flotilla cert --out "$demo/certs/operator" --name operator >/dev/null
cp "$demo/certs/operator.cert" "$demo/operators/"
for k in 1 2 3; do
    flotilla cert --out "$demo/certs/shard-$k" --name "shard-$k" >/dev/null
    cp "$demo/certs/shard-$k.cert" "$demo/agents/"
done
on_shard 1 psql -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE flotilla_control"

start_daemon() { # name binary config
    "$bin/$2" --config "$3" >"$demo/$1.out" 2>&1 &
    echo $! >"$demo/pids/$1.pid"
}
endpoint_of() { # which endpoint the coordinator's "ready" line names
    sed -n 's/.*"'"$1"'":"\([^"]*\)".*/\1/p' "$demo/coordinator.log" | tail -1
}

cat >"$demo/coordinator.yaml" <<EOF
name: demo-coordinator
agent_endpoint: "tcp://127.0.0.1:!"
control_endpoint: "tcp://127.0.0.1:!"
state_dsn: "$(shard_dsn 1) dbname=flotilla_control"
cert: $demo/certs/coordinator.cert_secret
agents_dir: $demo/agents
operators_dir: $demo/operators
trust: $demo/trust
heartbeat: 250ms
heartbeat_timeout: 3s
log_file: $demo/coordinator.log
log_level: info
EOF
[ "$mode" = fleet ] && say "Starting the coordinator (its state in database flotilla_control on shard 1) and one agent per shard"
start_daemon coordinator flotilla-coordinator "$demo/coordinator.yaml"
for _ in $(seq 1 300); do
    [ -n "$(endpoint_of control_endpoint 2>/dev/null)" ] && break
    kill -0 "$(cat "$demo/pids/coordinator.pid")" 2>/dev/null || {
        cat "$demo/coordinator.out" >&2
        echo "quickstart: the coordinator did not start" >&2
        exit 1
    }
    sleep 0.1
done
agent_ep=$(endpoint_of agent_endpoint)
control_ep=$(endpoint_of control_endpoint)
for k in 1 2 3; do
    cat >"$demo/shard-$k.yaml" <<EOF
name: shard-$k
coordinator:
  endpoint: $agent_ep
  public_cert: $demo/certs/coordinator.cert
cert: $demo/certs/shard-$k.cert_secret
environment: demo
labels: [shard=shard-$k]
trust: $demo/trust
state_dir: $demo/state-shard-$k
log_file: $demo/shard-$k.log
log_level: info
server: "$(shard_dsn $k) dbname=postgres"
max_parallel: 4
discovery_interval: 2s
state_interval: 2s
discover:
  - databases: "tenant_*"
EOF
    start_daemon "shard-$k" flotilla-agent "$demo/shard-$k.yaml"
done

cat >"$demo/env" <<EOF
# source this file, then use flotilla against the demo fleet
export FLOTILLA_COORDINATOR=$control_ep
export FLOTILLA_CERT=$demo/certs/operator.cert_secret
export FLOTILLA_SERVER_CERT=$demo/certs/coordinator.cert
export FLOTILLA_RELEASE_KEY=$demo/certs/release.key
export FLOTILLA_SHARD1="$(shard_dsn 1)"
export FLOTILLA_SHARD2="$(shard_dsn 2)"
export FLOTILLA_SHARD3="$(shard_dsn 3)"
export PATH="$bin:\$PATH"
EOF
. "$demo/env"

# Every tenant reported by its agent.
for _ in $(seq 1 600); do
    n=$(flotilla targets --json 2>/dev/null | grep -o '"reachability": *"reachable"' | wc -l || true)
    [ "$n" -ge 24 ] && break
    sleep 0.1
done
if [ "$n" -lt 24 ]; then
    echo "quickstart: only $n of 24 tenants are reachable; see $demo/*.log" >&2
    exit 1
fi

if [ "$mode" = up ]; then
    cat <<EOF
The sandbox fleet is up: three shards, 24 tenants, a coordinator, three
agents discovering every database named tenant_* on their shard.

  . $demo/env
  flotilla targets
  flotilla bundle build DIR --sign \$FLOTILLA_RELEASE_KEY --environment demo --out my.bundle
  flotilla rollout start my.bundle --selector "" --watch

New tenants: psql "\$FLOTILLA_SHARD1 dbname=postgres" -c "CREATE DATABASE tenant_25"
Stop it with: $stop_cmd
EOF
    exit 0
fi

cd "$demo"
say "1. The fleet: every tenant database, the agent that owns it, its reachability and applied version"
run flotilla targets

say "2. Two signed bundles: the three example migrations, and the same plus SET NOT NULL on users.email"
cp "$root"/deploy/examples/*.sql migrations/
run flotilla bundle build migrations --sign certs/release.key \
    --environment demo --sequence 1 --out first.bundle
mkdir -p migrations2
cp "$root"/deploy/examples/*.sql migrations2/
# The lint rule allowed, so that live validation has its say on each tenant.
{
    echo "-- flotilla:options allow=adding-not-nullable-field users is small; the scan is short"
    cat "$root/deploy/examples-unsafe/0004_email_required.sql"
} >migrations2/0004_email_required.sql
run flotilla bundle build migrations2 --sign certs/release.key \
    --environment demo --sequence 2 --out second.bundle

say "3. A fleet-wide plan of the first bundle: every tenant validates and rehearses in a transaction it rolls back; nothing changes.  Its index migration has no transaction (CREATE INDEX CONCURRENTLY), which no rehearsal can run: the plan says NOT PROVEN, per tenant, and exits 3"
run_expect 3 "the plan to be not proven" \
    flotilla rollout plan first.bundle --selector "" | sed -n '1p;$p'

say "4. A canary rollout of the first bundle: one tenant, then 25% of the rest, then everyone, baking 2 s between waves"
echo '$ flotilla rollout start first.bundle --selector "" --waves "1;25%;100%" --bake 2s --max-parallel-per-agent 4'
first=$(flotilla rollout start first.bundle --selector "" --waves "1;25%;100%" \
    --bake 2s --max-parallel-per-agent 4)
echo "$first"
run flotilla rollout watch "$first"

say "5. The second bundle, planned: tenant_01 has users without an email, counted by live validation"
set +e
run flotilla rollout plan second.bundle --selector "" | grep -v "would apply *$"
set -e

say "6. The second bundle rolled out anyway: its canary is tenant_01; the rollout halts"
echo '$ flotilla rollout start second.bundle --selector "" --waves "1;25%;100%" --bake 2s'
second=$(flotilla rollout start second.bundle --selector "" \
    --waves "1;25%;100%" --bake 2s)
echo "$second"
run_expect 7 "the second rollout to halt" flotilla rollout watch "$second"
echo "Halted with exit code 7: 23 tenants untouched, confirmed from their ledgers."

say "7. An emergency fleet rollback of the first bundle: exactly the tenants whose ledgers record it, newest wave first"
run flotilla rollout rollback "$first" --watch || true

say "8. The final state of every tenant, read from its own ledger"
for k in 1 2 3; do
    for n in $(tenants $k); do
        t=$(printf 'tenant_%02d' "$n")
        on_shard $k psql -At -d "$t" -c "SELECT '$t (shard $k): ' || string_agg(version || ' ' || status, ', ' ORDER BY version_order) FROM flotilla.schema_migrations"
    done
done

say "Done.  The fleet is still running."
cat <<EOF
Look around:   . $demo/env; flotilla targets; flotilla rollout list
               flotilla rollout status $second
Stop it with:  $stop_cmd
EOF
