#!/usr/bin/env bash
# Runs deploy/quickstart.sh end to end with the binaries under test (the
# sanitizer build), in a scratch directory: the single-database
# walk-through, then the fleet demo, whose claims are checked from the
# databases themselves (23 tenants untouched by the halted rollout, the
# fleet rollback complete on all 24), then its stop command.  Fails if a
# demo fails, a claim does not hold, or a directory is left behind.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
demo=$(mktemp -d /tmp/flotilla-quickstart.XXXXXX)
export FLOTILLA_DEMO_DIR=$demo
export FLOTILLA_BIN_DIR=${FLOTILLA_BIN_DIR:?}
# The demo starts its own servers; do not let it see the test server.
unset PGHOST PGPORT PGUSER PGDATABASE
trap '"$root/deploy/quickstart.sh" stop >/dev/null 2>&1 || true' EXIT
fail() { echo "run-quickstart: $*" >&2; exit 1; }

# A directory that is not a sandbox is never removed (before, whatever
# FLOTILLA_DEMO_DIR named was), and a stale pid file naming another
# process kills nothing (before, it was killed).
other=$(mktemp -d /tmp/flotilla-notdemo.XXXXXX)
echo keep >"$other/notes"
if FLOTILLA_DEMO_DIR=$other "$root/deploy/quickstart.sh" stop >/dev/null 2>&1; then
    fail "stop accepted a directory that is not a sandbox"
fi
[ -f "$other/notes" ] || fail "stop removed a directory that is not a sandbox"
mkdir -p "$other/sandbox/pids"
: >"$other/sandbox/.flotilla-quickstart"
sleep 300 &
bystander=$!
echo "$bystander" >"$other/sandbox/pids/coordinator.pid"
FLOTILLA_DEMO_DIR=$other/sandbox "$root/deploy/quickstart.sh" stop >/dev/null
kill -0 "$bystander" 2>/dev/null || fail "stop killed a process not its own"
kill "$bystander"
rm -rf "$other"

"$root/deploy/quickstart.sh" single > "$demo.log" 2>&1 || { cat "$demo.log"; exit 1; }
grep -q "rolled back 1 migration" "$demo.log" || fail "single: no rollback"
grep -q "note from the old system #1" "$demo.log" || fail "single: data not restored"
grep -q "Refused with exit code 3" "$demo.log" || fail "single: not refused"
grep -q '40 rows of "users" are NULL' "$demo.log" ||
    fail "single: not refused by live validation counting the NULLs"

start=$(date +%s)
"$root/deploy/quickstart.sh" > "$demo.log" 2>&1 || { cat "$demo.log"; exit 1; }
echo "run-quickstart: the fleet demo ran in $(( $(date +%s) - start )) s (sanitizer build)"
. "$demo/env"
q() { # shard database sql
    local v="FLOTILLA_SHARD$1"
    psql "${!v} dbname=$2" -X -At -v ON_ERROR_STOP=1 -c "$3"
}
ids=$(q 1 flotilla_control "SELECT string_agg(id, ' ' ORDER BY created_at) FROM flotilla_control.rollouts WHERE kind = 'apply'")
read -r first second <<<"$ids"
[ -n "$second" ] || fail "two rollouts expected, found: $ids"
[ "$(q 1 flotilla_control "SELECT status FROM flotilla_control.rollouts WHERE id = '$second'")" = halted ] ||
    fail "the second rollout is not halted"
[ "$(q 1 flotilla_control "SELECT status FROM flotilla_control.rollouts WHERE id = '$first'")" = rolled_back ] ||
    fail "the first rollout is not rolled back"
# The halted rollout sent one command, to its canary, and nothing else.
[ "$(q 1 flotilla_control "SELECT string_agg(target, ',') FROM flotilla_control.commands WHERE dispatch_id = '$second' AND released")" = shard-1/tenant_01 ] ||
    fail "the second rollout released more than its canary"
untouched=0
for k in 1 2 3; do
    for n in $(seq $(( (k - 1) * 8 + 1 )) $(( k * 8 ))); do
        t=$(printf 'tenant_%02d' "$n")
        rows=$(q $k $t "SELECT (SELECT count(*) FROM flotilla.schema_migrations WHERE rollout_id = '$second') + (SELECT count(*) FROM flotilla.migration_logs WHERE rollout_id = '$second')")
        nullable=$(q $k $t "SELECT NOT attnotnull FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'email'")
        [ "$nullable" = t ] || fail "$t: users.email is NOT NULL"
        if [ "$t" != tenant_01 ] && [ "$rows" = 0 ]; then
            untouched=$((untouched + 1))
        fi
        # The fleet rollback: every migration of the first bundle rolled
        # back, the dropped column and its data back, the added one gone.
        [ "$(q $k $t "SELECT string_agg(version || ':' || status, ',' ORDER BY version_order) FROM flotilla.schema_migrations WHERE version_order <= '{3}'")" = "1:rolled_back,2:rolled_back,3:rolled_back" ] ||
            fail "$t: the first bundle is not rolled back"
        [ "$(q $k $t "SELECT count(legacy_note) FROM public.users")" = 300 ] ||
            fail "$t: legacy_note is not restored"
        [ "$(q $k $t "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.users'::regclass AND attname = 'status' AND NOT attisdropped")" = 0 ] ||
            fail "$t: the status column is still there"
    done
done
[ "$untouched" = 23 ] || fail "$untouched tenants untouched by the halted rollout, 23 expected"
grep -q "untouched 23" "$demo.log" || fail "the demo did not say 23 untouched"
"$root/deploy/quickstart.sh" stop
test ! -e "$demo"
rm -f "$demo.log"
echo "quickstart ran end to end: 23 tenants untouched, the fleet rollback complete"
