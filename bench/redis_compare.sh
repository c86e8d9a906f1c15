#!/usr/bin/env bash
# mlr next to Redis, measured in the same run on the same machine:
# - a 3-node mlr mesh (mlr-node processes, RESP gateway) and redis-server with two replicas
#   (the same replication fan-out), both from this build and Debian's packages;
# - redis-benchmark -t set,get, then -t incr,sadd,hset (counters, sets, maps), -n 200000
#   -c 50 at -P 1 and -P 16 against the first node of each; requests/s, the ratio mlr / Redis, and the CPU seconds each side's processes used;
# - the replication lag mlr reports at the end, and the time from a write at one mlr node to
#   its visibility at another (mlr-visibility, moderate rate).
# It prints figures and never fails on them. Processes are stopped at the end.
#
# Usage: bench/redis_compare.sh [REQUESTS]   (run scripts/demo.sh or test.sh once to build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/apps"
requests=${1:-200000}
for p in redis-server redis-tools bc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  echo "installing$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing > /dev/null
fi
[ -x "$bin/mlr-node" ] || { echo "build first: bash scripts/demo.sh"; exit 2; }

dir=$(mktemp -d -t mlr-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
base=${MLR_BENCH_PORT_BASE:-7600}

# CPU seconds (user + system) a set of processes has used so far.
cpu_seconds() {
  local ticks=0
  for pid in "$@"; do
    read -r -a f < "/proc/$pid/stat"
    ticks=$((ticks + f[13] + f[14]))
  done
  echo "scale=2; $ticks / $(getconf CLK_TCK)" | bc
}

{
  echo "cluster bench"
  echo "topology mesh"
  for i in 0 1 2; do
    echo "node n$i 127.0.0.1:$((base + i)) client=127.0.0.1:$((base + 10 + i)) resp=127.0.0.1:$((base + 20 + i))"
  done
} > "$dir/cluster.txt"
head -c 32 /dev/urandom | base64 > "$dir/secret"
mlr_pids=()
for i in 0 1 2; do
  "$bin/mlr-node" --id "n$i" --cluster-file "$dir/cluster.txt" --cluster-secret-file "$dir/secret" \
    --log-level warn ${MLR_NODE_FLAGS:-} > "$dir/n$i.log" 2>&1 &
  pids+=($!); mlr_pids+=($!)
done
rport=$((base + 30))
redis_pids=()
redis-server --port $rport --save "" --appendonly no --bind 127.0.0.1 > "$dir/redis0.log" 2>&1 &
pids+=($!); redis_pids+=($!)
for i in 1 2; do
  redis-server --port $((rport + i)) --save "" --appendonly no --bind 127.0.0.1 \
    --replicaof 127.0.0.1 $rport > "$dir/redis$i.log" 2>&1 &
  pids+=($!); redis_pids+=($!)
done
for _ in $(seq 100); do
  ok=1
  for i in 0 1 2; do "$bin/mlr" --node 127.0.0.1:$((base + 10 + i)) status > /dev/null 2>&1 || ok=0; done
  [ "$(redis-cli -p $rport INFO replication | grep -c 'state=online')" = 2 ] || ok=0
  [ $ok = 1 ] && break
  sleep 0.1
done

echo "mlr-node mesh of 3 vs redis-server + 2 replicas; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# bench TESTS OPS: redis-benchmark -t TESTS at -P 1 and -P 16 on both sides, one line per op.
bench() {
  local tests=$1 ops=$2
  echo "redis-benchmark -t $tests -n $requests -c 50"
  printf "%-6s %-5s %14s %14s %8s %10s %10s\n" "op" "-P" "mlr req/s" "redis req/s" "ratio" "mlr cpu s" "redis cpu s"
  for pipeline in 1 16; do
    m0=$(cpu_seconds "${mlr_pids[@]}")
    redis-benchmark -p $((base + 20)) -t "$tests" -n "$requests" -c 50 -P $pipeline -q > "$dir/mlr-P$pipeline.txt" 2>&1
    m1=$(cpu_seconds "${mlr_pids[@]}")
    r0=$(cpu_seconds "${redis_pids[@]}")
    redis-benchmark -p $rport -t "$tests" -n "$requests" -c 50 -P $pipeline -q > "$dir/redis-P$pipeline.txt" 2>&1
    r1=$(cpu_seconds "${redis_pids[@]}")
    for op in $ops; do
      m=$(tr '\r' '\n' < "$dir/mlr-P$pipeline.txt" | grep "^$op: [0-9]" | tail -1 | awk '{print $2}')
      r=$(tr '\r' '\n' < "$dir/redis-P$pipeline.txt" | grep "^$op: [0-9]" | tail -1 | awk '{print $2}')
      if [ -z "$m" ]; then
        echo "$op at -P $pipeline: no figure from mlr:"; tail -3 "$dir/mlr-P$pipeline.txt"; continue
      fi
      printf "%-6s %-5s %14s %14s %8s %10s %10s\n" "$op" "$pipeline" "$m" "$r" \
        "$(echo "scale=2; $m / $r" | bc)" "$(echo "$m1 - $m0" | bc)" "$(echo "$r1 - $r0" | bc)"
    done
  done
  echo "(cpu s: user + system seconds of the three processes of each side, for the ops of one -P together)"
}
bench set,get "SET GET"
echo
bench incr,sadd,hset "INCR SADD HSET"
sleep 1
echo
echo "replication lag mlr reports at the end (n0's view of its peers):"
"$bin/mlr" --node 127.0.0.1:$((base + 10)) status | sed -n '/^peers:/,/^inbound/p'
echo
"$root/build/bench/mlr-visibility" --writer 127.0.0.1:$((base + 10)) --reader 127.0.0.1:$((base + 11)) --count 2000 --rate 1000
