#!/usr/bin/env bash
# A private, throwaway PostgreSQL 15 cluster for the demo and the tests: its own data directory and
# port, loopback only, wal_level=logical, enough slots and WAL senders. Idempotent; survives a stale
# postmaster.pid after a crash; runs the server as the `postgres` user when called as root.
#
#   deploy/dev-postgres.sh start|stop|wipe|status|uri
#
# Environment (all optional):
#   SLUICE_PG_PORT       port (default 54329)
#   SLUICE_PG_DIR        data directory (default ${TMPDIR:-/tmp}/sluice-pg-<port>)
#   SLUICE_PG_WAL_LEVEL  wal_level (default logical; tests start a second cluster with replica)
#   SLUICE_PG_SLOTS      max_replication_slots and max_wal_senders (default 20)
#   SLUICE_PG_DURABLE    1 keeps fsync on (for tests that kill Postgres); default off, for speed
#   SLUICE_PG_EXTRA_CONF more postgresql.conf lines, e.g. "max_slot_wal_keep_size = 1MB"
#
# Authentication: trust on 127.0.0.1, except roles in group sluice_password_users, which must give
# a password (tests of bad-password handling use that).
set -euo pipefail

PORT="${SLUICE_PG_PORT:-54329}"
DIR="${SLUICE_PG_DIR:-${TMPDIR:-/tmp}/sluice-pg-${PORT}}"
WAL_LEVEL="${SLUICE_PG_WAL_LEVEL:-logical}"
SLOTS="${SLUICE_PG_SLOTS:-20}"
DURABLE="${SLUICE_PG_DURABLE:-0}"
BIN="${SLUICE_PG_BIN:-/usr/lib/postgresql/15/bin}"
LOG="${DIR}.log"

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

uri() { echo "postgresql://postgres@127.0.0.1:${PORT}/postgres"; }

running() {
    [ -f "$DIR/postmaster.pid" ] || return 1
    local pid
    pid=$(head -1 "$DIR/postmaster.pid")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # A killed postmaster can linger as a zombie when nothing reaps it: that is not running.
    local state
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo X)
    [ "$state" != "Z" ] && [ "$state" != "X" ] && grep -q postgres "/proc/$pid/comm" 2>/dev/null
}

init_cluster() {
    [ -f "$DIR/PG_VERSION" ] && return 0
    mkdir -p "$DIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$DIR"
        touch "$LOG" && chown postgres:postgres "$LOG"
    fi
    chmod 700 "$DIR"
    as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat > "$DIR/pg_hba.conf" <<HBA
# dev-postgres.sh: loopback only
local   all          all                                 trust
host    all          +sluice_password_users  127.0.0.1/32  scram-sha-256
host    replication  +sluice_password_users  127.0.0.1/32  scram-sha-256
host    all          all                     127.0.0.1/32  trust
host    replication  all                     127.0.0.1/32  trust
HBA
}

write_settings() {
    local fsync=off
    [ "$DURABLE" = "1" ] && fsync=on
    cat > "$DIR/postgresql.auto.conf" <<CONF
# Written by deploy/dev-postgres.sh on every start.
listen_addresses = '127.0.0.1'
port = ${PORT}
unix_socket_directories = '${DIR}'
wal_level = ${WAL_LEVEL}
max_wal_senders = ${SLOTS}
max_replication_slots = ${SLOTS}
max_connections = 200
fsync = ${fsync}
synchronous_commit = ${fsync}
full_page_writes = ${fsync}
log_min_messages = warning
${SLUICE_PG_EXTRA_CONF:-}
CONF
}

start() {
    if running; then
        uri
        return 0
    fi
    init_cluster
    if [ -f "$DIR/postmaster.pid" ]; then
        echo "dev-postgres: removing stale postmaster.pid" >&2
        rm -f "$DIR/postmaster.pid"
    fi
    write_settings
    if ! as_pg "$BIN/pg_ctl" -D "$DIR" -l "$LOG" -w -t 60 start >/dev/null; then
        echo "dev-postgres: start failed; last lines of $LOG:" >&2
        tail -20 "$LOG" >&2
        return 1
    fi
    as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -qAt -c \
        "DO \$\$ BEGIN CREATE ROLE sluice_password_users NOLOGIN; EXCEPTION WHEN duplicate_object THEN END \$\$" \
        >/dev/null
    uri
}

stop() {
    if running; then
        as_pg "$BIN/pg_ctl" -D "$DIR" -m fast -w stop >/dev/null
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    wipe) stop; rm -rf "$DIR" "$LOG" ;;
    status) if running; then echo "running: $(uri) (data: $DIR)"; else echo "stopped (data: $DIR)"; exit 3; fi ;;
    uri) uri ;;
    *) echo "usage: $0 start|stop|wipe|status|uri" >&2; exit 2 ;;
esac
