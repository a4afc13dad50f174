#!/usr/bin/env bash
# Runs every benchmark of the project against a private Postgres and prints one table of the
# figures that have a target, each beside its target, after each benchmark's own output.
#   scripts/bench.sh                  everything (about 12 minutes on 2 cores)
#   ROWS=200000 scripts/bench.sh      smaller replication runs
# Environment: BUILD_DIR (default build), SLUICE_BENCH_PG_PORT (default 54329), ROWS (1000000).
# Logs: $BUILD_DIR/bench-logs/<benchmark>.txt. Figures depend on the machine's load: run it on an
# otherwise idle machine (each benchmark also prints CPU per unit of work where that helps).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
ROWS="${ROWS:-1000000}"
BENCHES=(rules_bench wire_encode_bench streams_bench replication_bench upload_bench serving_bench)

scripts/install-deps.sh >/dev/null
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
cmake -S . -B "$BUILD_DIR" -G Ninja >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target sluice "${BENCHES[@]}"

export SLUICE_PG_PORT="${SLUICE_BENCH_PG_PORT:-54329}"
export SLUICE_PG_DIR="${TMPDIR:-/tmp}/sluice-bench-pg-${SLUICE_PG_PORT}"
SLUICE_BENCH_PG_URI=$(deploy/dev-postgres.sh start)
export SLUICE_BENCH_PG_URI

LOGS="$BUILD_DIR/bench-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
PSQL="${SLUICE_PG_BIN:-/usr/lib/postgresql/15/bin}/psql"
# Before each benchmark: drop the databases the previous one left (autovacuum would otherwise keep
# working on their million-row tables during the next measurement) and wait, up to a minute, until
# no autovacuum worker runs.
settle() {
    local db
    for db in $("$PSQL" "$SLUICE_BENCH_PG_URI" -qAt -c \
        "SELECT datname FROM pg_database WHERE datname LIKE 'bench\_%' OR datname LIKE 'sluice\_bench\_%'"); do
        "$PSQL" "$SLUICE_BENCH_PG_URI" -q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$db'" \
            -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    done
    "$PSQL" "$SLUICE_BENCH_PG_URI" -q -c CHECKPOINT
    for _ in $(seq 60); do
        [ "$("$PSQL" "$SLUICE_BENCH_PG_URI" -qAt -c \
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && return
        sleep 1
    done
}
run() {
    local name=$1
    shift
    settle
    echo
    echo "=== $name: $*"
    if ! "$@" 2>&1 | tee "$LOGS/$name.txt"; then
        echo "$name: FAILED (see $LOGS/$name.txt)" | tee -a "$LOGS/$name.txt"
    fi
}

run rules "$BUILD_DIR/bench/rules_bench"
run wire "$BUILD_DIR/bench/wire_encode_bench"
run streams "$BUILD_DIR/bench/streams_bench"
run replication "$BUILD_DIR/bench/replication_bench" --rows "$ROWS"
# Peak RSS is the process's own: the one-transaction phase runs in a process of its own.
run replication_bigtxn "$BUILD_DIR/bench/replication_bench" --rows "$ROWS" --phase bigtxn
run uploads "$BUILD_DIR/bench/upload_bench"
run serving "$BUILD_DIR/bench/serving_bench"

echo
echo "=== every figure with a target, and the Sync Streams comparisons (load average now: $(cut -d' ' -f1 /proc/loadavg))"
for log in "$LOGS"/*.txt; do
    name=$(basename "$log" .txt)
    grep -E 'MET|MISSED| ok$|target|FAILED|under 20 |active subscriptions' "$log" | grep -vE '^benchmark +result' |
        sed "s/^/$(printf '%-12s' "$name") /" || true
done
