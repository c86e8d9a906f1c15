#!/usr/bin/env bash
# The folders are layers and their dependencies point one way (the README draws them):
#
#   messages <- resolvers, storage <- core <- actors <- transport <- gateways <- node <- apps
#                                             actors <- topology <- node;  messages <- client <- node
#
# This check fails, naming the file and line, if a file includes a header of a folder its
# layer may not use, or a header under another folder's detail/ (tests/ may include any).
# Run by ctest as layout_dependencies_point_one_way.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
declare -A allowed=(
  [messages]=""
  [resolvers]="messages"
  [storage]="messages"
  [core]="messages storage"
  [actors]="messages storage resolvers core"
  [transport]="messages storage resolvers core actors"
  [gateways]="messages storage resolvers core actors transport"
  [topology]="messages storage resolvers core actors"
  [client]="messages"
  [node]="messages storage resolvers core actors transport gateways topology client"
  [apps]="messages storage resolvers core actors transport gateways topology client node"
  [bench]="messages storage resolvers core actors transport gateways topology client node"
)
bad=0
for folder in "${!allowed[@]}"; do
  [ -d "$root/$folder" ] || continue
  while IFS= read -r -d '' f; do
    rel="${f#"$root"/}"
    while IFS=: read -r line inc; do
      target="${inc%%/*}"
      [ "$target" = "$folder" ] && continue
      [ -d "$root/$target" ] || continue # a system or generated header
      if [[ " ${allowed[$folder]} " != *" $target "* ]]; then
        echo "$rel:$line: includes $inc, but $folder/ may use only: ${allowed[$folder]:-nothing of mlr}"
        bad=1
      elif [[ "$inc" == */detail/* ]]; then
        echo "$rel:$line: includes $inc, a private header of $target/"
        bad=1
      fi
    done < <(grep -noE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]+"' "$f" |
             sed -E 's/^([0-9]+):.*"([^"]+)"/\1:\2/')
  done < <(find "$root/$folder" -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \) -print0)
done
if ((bad)); then
  echo "Move the code to the layer it belongs to, or make the header public (out of detail/)."
  exit 1
fi
echo "layout: every include points down the layers; no private header is used from outside"
