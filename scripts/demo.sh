#!/usr/bin/env bash
# The README's first command: install what is missing, build (Release), then start a local
# cluster of three mlr-node processes (a mesh on loopback), write at one node and read the
# write back at the others, through the mlr CLI and through redis-cli. The processes are
# stopped when the script ends, however it ends.
#
# Ports: 7400-7402 (peers), 7410-7412 (mlr clients), 7420-7422 (Redis clients); set
# MLR_DEMO_PORT_BASE to move them. `scripts/demo.sh --in-process [mlr-demo flags]` runs the
# in-process demo (mlr-demo) instead.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
mlr_install
mlr_build build -DCMAKE_BUILD_TYPE=Release
bin="$MLR_ROOT/build/apps"

if [ "${1:-}" = "--in-process" ]; then
  shift
  exec "$bin/mlr-demo" "$@"
fi

base=${MLR_DEMO_PORT_BASE:-7400}
dir=$(mktemp -d -t mlr-demo.XXXXXX)
pids=()
stop_cluster() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_cluster EXIT

head -c 32 /dev/urandom | base64 > "$dir/secret"
{
  echo "cluster demo"
  echo "topology mesh"
  for i in 0 1 2; do
    echo "node n$i 127.0.0.1:$((base + i)) client=127.0.0.1:$((base + 10 + i)) resp=127.0.0.1:$((base + 20 + i))"
  done
} > "$dir/cluster.txt"
echo "== starting 3 mlr-node processes (cluster file $dir/cluster.txt, logs in $dir)"
for i in 0 1 2; do
  "$bin/mlr-node" --id "n$i" --cluster-file "$dir/cluster.txt" \
    --cluster-secret-file "$dir/secret" > "$dir/n$i.log" 2>&1 &
  pids+=($!)
done
mlr() { "$bin/mlr" "$@"; }
for i in 0 1 2; do
  for _ in $(seq 50); do
    mlr --node "127.0.0.1:$((base + 10 + i))" status > /dev/null 2>&1 && break
    sleep 0.1
  done
  mlr --node "127.0.0.1:$((base + 10 + i))" status > /dev/null ||
    { echo "node n$i did not start; its log:"; cat "$dir/n$i.log"; exit 1; }
done
# Wait until every node sees both peers up.
for i in 0 1 2; do
  for _ in $(seq 100); do
    [ "$(mlr --node "127.0.0.1:$((base + 10 + i))" status --json | grep -o '"up":true' | wc -l)" = 2 ] && break
    sleep 0.1
  done
done
# Reads at another node: replication is asynchronous, so give it a moment.
read_at() {
  for _ in $(seq 50); do
    mlr --node "$1" get "$2" 2>/dev/null && return 0
    sleep 0.05
  done
  mlr --node "$1" get "$2"
}

echo
echo "== mlr put at n0, get at n1 and n2"
echo "\$ mlr --node 127.0.0.1:$((base + 10)) put greeting 'hello from n0'"
mlr --node "127.0.0.1:$((base + 10))" put greeting "hello from n0"
for i in 1 2; do
  echo "\$ mlr --node 127.0.0.1:$((base + 10 + i)) get greeting"
  read_at "127.0.0.1:$((base + 10 + i))" greeting
done

echo
echo "== redis-cli SET at n2, GET at n0"
echo "\$ redis-cli -p $((base + 22)) SET city Lisbon"
redis-cli -p $((base + 22)) SET city Lisbon
for _ in $(seq 50); do
  [ "$(redis-cli -p $((base + 20)) GET city)" = Lisbon ] && break
  sleep 0.05
done
echo "\$ redis-cli -p $((base + 20)) GET city"
redis-cli -p $((base + 20)) GET city

echo
sleep 0.5 # one heartbeat round, so the lag figures are fresh
echo "== status of n1"
mlr --node "127.0.0.1:$((base + 11))" status
echo
echo "== stopping the cluster (SIGTERM: links are flushed, then closed)"
