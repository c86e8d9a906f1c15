#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz) for RUNS executions each (default 1,250,000:
# 10 million in all), two at a time, starting from the corpus in the repository (new
# inputs go to a scratch directory), and prints executions, crashes and sanitizer reports
# per target and in all. `--update-corpus` merges what the runs found into the repository's
# corpus (minimised with -merge=1). Needs the fuzz build: the README's second command
# makes it (build-fuzz), or: cmake -S . -B build-fuzz -DMLR_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
#   -DCMAKE_C_COMPILER=clang && cmake --build build-fuzz -j2
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs=1250000
update=0
for a in "$@"; do
  case "$a" in
    --update-corpus) update=1 ;;
    [0-9]*) runs="$a" ;;
    *) echo "usage: scripts/fuzz.sh [RUNS] [--update-corpus]" >&2; exit 2 ;;
  esac
done
bin="$root/build-fuzz/tests/fuzz"
[ -x "$bin/fuzz_batch" ] || { echo "fuzz.sh: build the fuzz targets first (see the header)" >&2; exit 2; }
scratch="$(mktemp -d /tmp/mlr-fuzz-XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
targets=(fuzz_batch fuzz_ack fuzz_pull fuzz_hello fuzz_frames fuzz_context fuzz_resp fuzz_topology)
run_one() {
  local t="$1"
  mkdir -p "$scratch/$t"
  "$bin/$t" -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$scratch/$t-" "$scratch/$t" "$root/tests/fuzz/corpus/$t" \
    > "$scratch/$t.log" 2>&1 || true
}
start=$(date +%s)
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run_one "${targets[i]}" &
  [ $((i + 1)) -lt ${#targets[@]} ] && run_one "${targets[i + 1]}" &
  wait
done
total=0
bad=0
printf "%-15s %12s %8s %10s\n" target executions crashes sanitizer
for t in "${targets[@]}"; do
  n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$scratch/$t.log" | awk '{print $2}' | tail -1)
  n=${n:-0}
  crashes=$(ls "$scratch" | grep -c "^$t-crash\|^$t-leak\|^$t-timeout\|^$t-oom" || true)
  san=$(grep -c "ERROR: AddressSanitizer\|runtime error:\|ERROR: libFuzzer" "$scratch/$t.log" || true)
  printf "%-15s %12s %8s %10s\n" "$t" "$n" "$crashes" "$san"
  total=$((total + n))
  bad=$((bad + crashes + san))
  if [ "$crashes" != 0 ] || [ "$san" != 0 ]; then
    grep -m5 "ERROR\|runtime error\|SUMMARY" "$scratch/$t.log" || true
    cp "$scratch/$t"-* "$root/" 2>/dev/null || true
  fi
  if [ "$update" = 1 ]; then
    mkdir -p "$scratch/merged-$t"
    "$bin/$t" -merge=1 "$scratch/merged-$t" "$root/tests/fuzz/corpus/$t" "$scratch/$t" > /dev/null 2>&1
    rm -rf "$root/tests/fuzz/corpus/$t"
    mv "$scratch/merged-$t" "$root/tests/fuzz/corpus/$t"
  fi
done
echo "fuzz: $total executions in all, $bad crashes or sanitizer reports, $(( $(date +%s) - start )) s"
[ "$bad" = 0 ]
