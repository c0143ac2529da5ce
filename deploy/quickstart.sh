#!/usr/bin/env bash
# Flotilla quickstart: installs what is missing, builds, starts a local
# PostgreSQL 15 in ./.flotilla-demo/, creates a sample tenant database and
# walks through the single-database pipeline:
#   lint -> plan -> apply -> an unsafe migration refused -> rollback with
#   the dropped data restored.
#
#   deploy/quickstart.sh         run the demo (again: starts from scratch)
#   deploy/quickstart.sh stop    stop PostgreSQL and remove ./.flotilla-demo/
#
# FLOTILLA_DEMO_DIR moves the demo directory; FLOTILLA_BIN uses an already
# built flotilla instead of building one.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo=${FLOTILLA_DEMO_DIR:-$root/.flotilla-demo}
. "$root/deploy/pg-throwaway.sh"

if [ "${1:-}" = stop ]; then
    fl_pg_stop "$demo/pg"
    rm -rf "$demo"
    echo "quickstart: stopped and removed $demo"
    exit 0
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

"$root/deploy/install-deps.sh"
if [ -z "${FLOTILLA_BIN:-}" ]; then
    say "Building Flotilla (Release) in build/"
    cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release \
        -DFLOTILLA_TESTS=OFF >/dev/null
    cmake --build "$root/build" -j"$(nproc)" >/dev/null
    FLOTILLA_BIN=$root/build/bin/flotilla
fi
flotilla() { "$FLOTILLA_BIN" "$@"; }

# Start from scratch each time so the story is always the same.
if [ -d "$demo" ]; then
    fl_pg_stop "$demo/pg"
    rm -rf "$demo"
fi
mkdir -p "$demo/pg" "$demo/migrations"
chmod 755 "$demo" "$demo/pg"
say "Starting PostgreSQL 15 in $demo/pg"
fl_pg_start "$demo/pg"
echo "PostgreSQL listening on socket $PGHOST, port $PGPORT"
db="dbname=tenant_acme"
psql -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE tenant_acme"
psql -q -v ON_ERROR_STOP=1 -d tenant_acme <<'SQL'
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text,
    active boolean NOT NULL DEFAULT true,
    legacy_note text
);
INSERT INTO users (email, active, legacy_note)
SELECT CASE WHEN g % 25 = 0 THEN NULL ELSE 'user' || g || '@acme.test' END,
       g % 3 <> 0, 'note from the old system #' || g
FROM generate_series(1, 1000) g;
SQL
echo "Created database tenant_acme with 1000 users (40 without an email)."
cp "$root"/deploy/examples/*.sql "$demo/migrations/"
cd "$demo"

if flotilla lint --help >/dev/null 2>&1; then
    say "1. lint: the real PostgreSQL parser checks each migration for statements that would stall production"
    run flotilla lint migrations || true
fi

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

say "4. an unsafe migration: SET NOT NULL on a column with NULLs is refused before anything changes"
cp "$root/deploy/examples-unsafe/0004_email_required.sql" migrations/
set +e
run flotilla apply --db "$db" migrations
rc=$?
set -e
if [ $rc -ne 3 ]; then
    echo "quickstart: expected the unsafe migration to be refused (exit 3), got $rc" >&2
    exit 1
fi
echo "Refused with exit code 3; the ledger and the table are unchanged:"
psql -d tenant_acme -Atc "SELECT 'users.email nullable: ' || NOT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email'"
rm migrations/0004_email_required.sql

say "5. rollback: down runs newest first, and the dropped column's data comes back from the backup, proven by checksum"
run flotilla backups list --db "$db"
run flotilla rollback --db "$db" --last migrations
psql -d tenant_acme -c "SELECT id, legacy_note FROM users ORDER BY id LIMIT 3"
run flotilla log --db "$db" --limit 8

say "Done.  The demo database is still running: PGHOST=$PGHOST PGPORT=$PGPORT psql -d tenant_acme"
echo "Stop it with: deploy/quickstart.sh stop"
