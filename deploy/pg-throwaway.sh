# Sourced by tests/run.sh, deploy/quickstart.sh and the benchmarks: starts
# and stops a private PostgreSQL 15 (its own data directory, a free port,
# its own Unix socket directory).  When run as root the server runs as the
# postgres user, since PostgreSQL refuses to run as root.
#
# Authentication is "trust", so the socket is the only gate: its directory
# and the socket itself are 0700, reachable by the server's owner (and
# root) only, never by another local user.  No TCP listener.
#
#   fl_pg_start DIR    initdb into DIR/data (if new) and start; exports
#                      PGHOST, PGPORT, PGUSER, PGDATABASE for libpq
#   fl_pg_stop DIR     stop the server (fast shutdown); leaves DIR
#
# The server trades durability for speed (fsync, synchronous_commit and
# full_page_writes off) unless FL_PG_DURABLE=1, which benchmarks of
# durable writes set.

FL_PG_BIN=${FL_PG_BIN:-/usr/lib/postgresql/15/bin}

fl_pg__as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

fl_pg__port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

fl_pg_start() {
    local dir=$1 user port tries=0 durable=off
    [ "${FL_PG_DURABLE:-0}" = 1 ] && durable=on
    mkdir -p "$dir"
    chmod 0700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        user=postgres
        chown postgres: "$dir"
    else
        user=$(id -un)
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        fl_pg__as_owner "$FL_PG_BIN/initdb" -D "$dir/data" -U "$user" \
            --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
            echo "pg-throwaway: initdb failed; see $dir/initdb.log" >&2
            cat "$dir/initdb.log" >&2
            return 1
        }
    fi
    while :; do
        port=$(( (RANDOM % 20000) + 30000 ))
        if fl_pg__port_free "$port" && fl_pg__as_owner "$FL_PG_BIN/pg_ctl" \
            -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses='' -c fsync=$durable \
                -c unix_socket_permissions=0700 \
                -c synchronous_commit=$durable -c full_page_writes=$durable \
                -c max_connections=200" start >/dev/null; then
            break
        fi
        tries=$((tries + 1))
        if [ $tries -ge 5 ]; then
            echo "pg-throwaway: could not start PostgreSQL; see $dir/server.log" >&2
            tail -20 "$dir/server.log" >&2 || true
            return 1
        fi
    done
    export PGHOST=$dir PGPORT=$port PGUSER=$user PGDATABASE=postgres
}

fl_pg_stop() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        fl_pg__as_owner "$FL_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop \
            >/dev/null 2>&1 || true
    fi
}
