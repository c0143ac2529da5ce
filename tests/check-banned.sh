#!/usr/bin/env bash
# Rejects the functions STYLE.md bans in Flotilla's own C sources:
# unbounded string copies and formatting, and atoi-style parsing that
# cannot report errors.  Use fl_asprintf/fl_buf, snprintf, fl_strdup, and
# fl_parse_int/strtol with end checks instead.  Exit 1 naming each use.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
banned='strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|atof|strtok'
# "snprintf"/"vsnprintf" and "fl_asprintf" are fine: match whole names only.
hits=$(grep -rnE "(^|[^A-Za-z0-9_])($banned)[[:space:]]*\(" \
    --include='*.c' --include='*.h' \
    common proto lint agent coordinator cli tests bench 2>/dev/null || true)
if [ -n "$hits" ]; then
    echo "banned functions in use:"
    echo "$hits"
    exit 1
fi
echo "no banned function in use"
