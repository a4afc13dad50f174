#!/bin/sh
# Instructions per row evaluation of rules_bench, counted by callgrind: repeatable to a fraction of a
# percent even when other work shares the cores (wall-clock rows/s are not).
# Usage: bench/rules_bench_callgrind.sh [path/to/rules_bench] [rows, default 200000]
set -eu
bench=${1:-build/bench/rules_bench}
rows=${2:-200000}
out=$(mktemp /tmp/rules_bench.callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT
# Only the --rows loop is instrumented (CALLGRIND_START/STOP_INSTRUMENTATION in the benchmark).
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$bench" --rows "$rows" >/dev/null 2>&1
total=$(awk '/^totals:/ { print $2; exit }' "$out")
awk -v t="$total" -v n="$rows" 'BEGIN { printf "rules_bench: %d rows, %d instructions, %.0f instructions/row (callgrind)\n", n, t, t / n }'
