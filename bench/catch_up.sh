#!/usr/bin/env bash
# Catch-up after an outage: a 3-node mlr mesh with data directories (--sync batch); n2 is
# killed, the other two take WRITES writes (redis-benchmark SET, pipelined, random keys),
# then n2 restarts from its data directory. Prints how long n2 took to apply everything,
# the catch-up rate in events/s, and the bytes n2 received from its peers per event (on
# every connection: batches its peers ship, and answers to its own pulls).
# Then n2 is killed again and its data directory wiped: once its peers compacted their logs,
# it can only catch up by state transfer; prints the keys/s and bytes per key of that.
# Processes are stopped at the end. Usage: bench/catch_up.sh [WRITES]   (default 1000000)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/apps"
writes=${1:-1000000}
[ -x "$bin/mlr-node" ] || { echo "build first: bash scripts/demo.sh"; exit 2; }
dir=$(mktemp -d -t mlr-catchup.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
base=${MLR_BENCH_PORT_BASE:-7900}
{
  echo "cluster catchup"; echo "topology mesh"
  for i in 0 1 2; do
    echo "node n$i 127.0.0.1:$((base + i)) client=127.0.0.1:$((base + 10 + i)) resp=127.0.0.1:$((base + 20 + i))"
  done
} > "$dir/cluster.txt"
start() {
  "$bin/mlr-node" --id "n$1" --cluster-file "$dir/cluster.txt" --data-dir "$dir/n$1.db" \
    --sync batch --log-level warn >> "$dir/n$1.log" 2>&1 &
  pids[$1]=$!
}
json() { "$bin/mlr" --node "127.0.0.1:$((base + 10 + $1))" status --json; }
field() { { json "$1" 2>/dev/null || true; } | { grep -o "\"$2\":[0-9]*" || echo ":0"; } | head -1 | cut -d: -f2; }
for i in 0 1 2; do start $i; done
for i in 0 1 2; do
  for _ in $(seq 100); do json $i > /dev/null 2>&1 && break; sleep 0.1; done
done
kill -KILL "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
echo "n2 is down; writing $writes at n0 and n1"
half=$((writes / 2))
redis-benchmark -p $((base + 20)) -t set -n $half -r 1000000 -P 64 -c 20 -q > /dev/null &
bench_pid=$!
redis-benchmark -p $((base + 21)) -t set -n $((writes - half)) -r 1000000 -P 64 -c 20 -q > /dev/null
wait "$bench_pid"
# Wait until n0 and n1 agree and have stopped growing.
total=0
for _ in $(seq 600); do
  a=$(field 0 applied_total); b=$(field 1 applied_total)
  [ "$a" = "$b" ] && [ "$a" = "$total" ] && break
  total=$a
  sleep 0.5
done
echo "n0 and n1 hold $total events; restarting n2 from its data directory"
t0=$(date +%s.%N)
start 2
for _ in $(seq 100); do json 2 > /dev/null 2>&1 && break; sleep 0.05; done
before=$(field 2 applied_total)
while [ "$(field 2 applied_total)" -lt "$total" ]; do sleep 0.05; done
t1=$(date +%s.%N)
received() { json 2 | grep -o '"bytes_received":[0-9]*' | cut -d: -f2 | paste -sd+ | bc; }
bytes=$(received)
events=$((total - before))
secs=$(echo "$t1 - $t0" | bc -l)
printf "n2 caught up %d events in %.2f s (including its start-up): %.0f events/s, %.1f bytes received per event\n" \
  "$events" "$secs" "$(echo "$events / $secs" | bc -l)" "$(echo "$bytes / $events" | bc -l)"

# Phase 2: the peers compact their logs (everything is stable now that n2 is back), then
# n2 loses its data directory and catches up by state transfer.
for _ in $(seq 600); do
  [ "$(field 0 log_begin)" -gt 0 ] && [ "$(field 1 log_begin)" -gt 0 ] && break
  sleep 0.2
done
echo "n0 compacted its log up to position $(field 0 log_begin) of $(field 0 log_entries); wiping n2"
kill -KILL "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
rm -rf "$dir/n2.db"
digest() { { json "$1" 2>/dev/null || true; } | grep -o '"state_digest":"[0-9a-f]*"' | head -1; }
want=$(digest 0)
keys=$(field 0 keys)
t0=$(date +%s.%N)
start 2
for _ in $(seq 100); do json 2 > /dev/null 2>&1 && break; sleep 0.05; done
while [ "$(digest 2)" != "$want" ]; do sleep 0.05; done
t1=$(date +%s.%N)
bytes=$(received)
transfers=$(field 2 transfers_received)
secs=$(echo "$t1 - $t0" | bc -l)
printf "wiped n2 caught up %d keys by %d state transfer(s) in %.2f s (including its start-up): %.0f keys/s, %.1f bytes received per key\n" \
  "$keys" "$transfers" "$secs" "$(echo "$keys / $secs" | bc -l)" "$(echo "$bytes / $keys" | bc -l)"
