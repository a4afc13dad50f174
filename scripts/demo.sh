#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs Sluice on a local demo: installs the
# dependencies, builds, starts the private Postgres (port 54329), creates the demo database with
# its schema and sample rows, validates the config, and runs `sluice run` in the foreground
# (Ctrl-C stops it; `deploy/dev-postgres.sh stop` stops Postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$(nproc)" --target sluice

export SLUICE_PG_PORT="${SLUICE_PG_PORT:-54329}"
URI=$(deploy/dev-postgres.sh start)
echo "demo: private Postgres at $URI"
if ! psql "$URI" -qAtc "SELECT 1 FROM pg_database WHERE datname = 'sluice_demo'" | grep -q 1; then
    psql "$URI" -qc "CREATE DATABASE sluice_demo"
fi
DEMO_URI="${URI%/postgres}/sluice_demo"
psql "$DEMO_URI" -q -v ON_ERROR_STOP=1 -f deploy/demo/schema.sql
echo "demo: source database ready: psql '$DEMO_URI'"

build/server/app/sluice check -c deploy/demo/sluice.yaml
PORT="${SLUICE_DEMO_PORT:-8080}"
cat <<EOF
demo: open these in a browser once sluice says "ready":
  two users' clients (WebSocket; ticking, adding and deleting todos uploads the change):
    http://127.0.0.1:$PORT/demo#alice=$(scripts/demo-token.sh alice 12)&bob=$(scripts/demo-token.sh bob 12)
  status page: http://127.0.0.1:$PORT/admin?token=${SLUICE_DEMO_ADMIN_TOKEN:-demo-admin}
demo: then change the source and watch both panels, e.g.
  psql '$DEMO_URI' -c "INSERT INTO todos (id, list_id, description) VALUES ('t9', 'groceries', 'Tea')"
  psql '$DEMO_URI' -c "INSERT INTO list_shares VALUES ('groceries', 'bob')"   # bob now sees Groceries
  psql '$DEMO_URI' -c "DELETE FROM list_shares WHERE list_id = 'groceries'"   # and now he does not
EOF
exec build/server/app/sluice run -c deploy/demo/sluice.yaml
