#!/usr/bin/env bash
# mlr's text next to Yjs, Loro and Automerge, measured in the same run on the same machine:
# the automerge-paper trace (259,778 edits) edit by edit, each result checked against its
# endContent.
# - mlr-text-bench: the CRDT alone (local, and applied by id at a second document), and a
#   text key replicated across 3 replicas in one process (every edit a write at the first,
#   its log shipped in encoded batches to the other two) until all three hold endContent;
# - Yjs 13.6 (local, and each update applied at a second document), Loro 1.17 (local, one
#   commit at the end) and Automerge 3.5 (one change per edit), from npm, installed into a
#   scratch directory that is removed at the end.
# Prints edits/s, encoded bytes, peak RSS and the memory a live document holds, and the
# ratios; never fails on figures.
#
# Usage: bench/text_compare.sh [ROUNDS]   (run scripts/demo.sh or test.sh once to build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bench="$root/build/bench/mlr-text-bench"
rounds=${1:-3}
[ -x "$bench" ] || { echo "build first: bash scripts/demo.sh"; exit 2; }
command -v node > /dev/null && command -v npm > /dev/null || {
  echo "node and npm are needed (Debian: apt-get install nodejs npm)"
  exit 2
}
dir=$(mktemp -d -t mlr-text-peers.XXXXXX)
trap 'rm -rf "$dir"' EXIT

echo "== mlr (this build) =="
"$bench" --rounds "$rounds" | tee "$dir/mlr.txt"

echo
echo "== peers (npm, into $dir) =="
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error \
  yjs@13.6 loro-crdt@1.17 @automerge/automerge@3.5 > "$dir/npm.log" 2>&1) || {
  echo "npm install failed:"
  cat "$dir/npm.log"
  exit 1
}
cp "$root/bench/text_peers.mjs" "$dir/"
trace="$root/tests/data/editing-traces/automerge-paper.json.gz"
printf "%-12s %12s %14s %6s %10s %14s\n" "peer" "edits/s" "encoded bytes" "ok" "RSS MB" \
  "document MB"
node "$dir/text_peers.mjs" "$trace" "$rounds" > "$dir/peers.txt"
while read -r name rate bytes ok rss; do
  doc=$(node --expose-gc "$dir/text_peers.mjs" "$trace" held "$name" < /dev/null | awk '{print $2}')
  printf "%-12s %12s %14s %6s %10s %14s\n" "$name" "$rate" "$bytes" "$ok" "$rss" "$doc"
done < "$dir/peers.txt"
echo "(document MB: what one live document holds, built alone in a fresh node process)"

# Medians of mlr's rounds: the CRDT's local edits/s, and the replicated edits/s.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
local_rate=$(awk '/^round +local/ {on=1; next} on && /^[0-9]/ {print $2} /^document/ {on=0}' \
  "$dir/mlr.txt" | median)
repl_rate=$(awk '/^round +edits/ {on=1; next} on && /^[0-9]/ {print $2}' "$dir/mlr.txt" | median)
echo
echo "== ratios (mlr / peer, edits/s) =="
while read -r name rate bytes ok rss; do
  awk -v n="$name" -v l="$local_rate" -v r="$repl_rate" -v p="$rate" \
    'BEGIN {printf "%-12s crdt local %6.2f   replicated at 3 replicas %6.2f\n", n, l / p, r / p}'
done < "$dir/peers.txt"
