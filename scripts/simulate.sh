#!/usr/bin/env bash
# Runs the seeded simulation for SEEDS seeds per topology (default 2,500: 10,000 in all) in
# the "mixed" mode: message faults (drop, duplicate, reorder, delay, partitions), crashed
# nodes, per-node clock skew up to 5 s either way, deletes, writes whose causal context was
# read at another node, a resolver that fails (throws, or never answers) at one node, and
# nodes restarted from what their store committed or empty (their disk lost).
# Prints seeds run and failures, and the replay command of the first failure. Not part of
# the test command (which runs 200 seeds per topology). Needs the Release build (build/).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seeds="${1:-2500}"
bin="$root/build/tests/test_simulation"
[ -x "$bin" ] || { echo "simulate.sh: build first (bash scripts/test.sh, or cmake --build build)" >&2; exit 2; }
start=$(date +%s)
run=0
failed=0
first_failure=""
for kind in ring star mesh custom; do
  out="$(MLR_SIM_SEEDS="$seeds" "$bin" "$kind mixed*" 2>&1)"
  if grep -q "seeds passed" <<<"$out"; then
    run=$((run + seeds))
    echo "$kind: $seeds seeds passed"
  else
    failed=$((failed + 1))
    seed="$(grep -o "$kind seed [0-9]*" <<<"$out" | head -1 | awk '{print $3}')"
    run=$((run + ${seed:-0}))
    echo "$kind: failed at seed ${seed:-?}"
    [ -z "$first_failure" ] && first_failure="$(grep -o "replay exactly: .*" <<<"$out" | head -1)"
  fi
done
echo "simulate: $run seeds run, $failed topologies with a failure, $(( $(date +%s) - start )) s"
[ -n "$first_failure" ] && echo "first failure: $first_failure (run from build/)"
[ "$failed" = 0 ]
