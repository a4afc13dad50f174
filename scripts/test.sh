#!/usr/bin/env bash
# Runs the whole test suite on this machine: installs dependencies, builds with warnings as errors,
# starts a fresh private Postgres for the tests, runs every test (ctest), stops Postgres.
#   scripts/test.sh                 everything
#   scripts/test.sh -L pure         only the tests that need nothing (any ctest arguments work)
# Environment: BUILD_DIR (default build), SLUICE_TEST_PG_PORT (default 25431), CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR="${BUILD_DIR:-build}"

scripts/install-deps.sh
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DSLUICE_WERROR=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"

export SLUICE_PG_PORT="${SLUICE_TEST_PG_PORT:-25431}"
export SLUICE_PG_DIR="${TMPDIR:-/tmp}/sluice-test-pg-${SLUICE_PG_PORT}"
deploy/dev-postgres.sh wipe
SLUICE_TEST_PG_URI=$(deploy/dev-postgres.sh start)
export SLUICE_TEST_PG_URI
trap 'cd "$ROOT" && deploy/dev-postgres.sh stop' EXIT

ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
