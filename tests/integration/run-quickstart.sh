#!/usr/bin/env bash
# Runs deploy/quickstart.sh end to end with the flotilla under test (the
# sanitizer build), in a scratch directory, then its stop command.  Fails if
# the demo fails or leaves its directory behind.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
demo=$(mktemp -d /tmp/flotilla-quickstart.XXXXXX)
export FLOTILLA_DEMO_DIR=$demo
export FLOTILLA_BIN=${FLOTILLA_BIN_DIR:?}/flotilla
# The demo starts its own server; do not let it see the test server.
unset PGHOST PGPORT PGUSER PGDATABASE
trap '"$root/deploy/quickstart.sh" stop >/dev/null 2>&1 || true' EXIT
"$root/deploy/quickstart.sh" > "$demo.log" 2>&1 || { cat "$demo.log"; exit 1; }
grep -q "rolled back 1 migration" "$demo.log"
grep -q "note from the old system #1" "$demo.log"
grep -q "Refused with exit code 3" "$demo.log"
"$root/deploy/quickstart.sh" stop
test ! -e "$demo"
rm -f "$demo.log"
echo "quickstart ran end to end"
