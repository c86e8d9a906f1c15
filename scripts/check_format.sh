#!/usr/bin/env bash
# Every C++ file follows .clang-format (clang-format 14, Debian 12's). Fails naming the files
# that do not, with the command that fixes them. Run by ctest as format.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cf="${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format)}"
cd "$root"
bad=()
while IFS= read -r -d '' f; do
  "$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("${f#./}")
done < <(find messages resolvers storage core actors transport gateways topology client node apps \
              bench tests -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) -print0)
if ((${#bad[@]})); then
  echo "not formatted with $cf (${#bad[@]} files):"
  printf '  %s\n' "${bad[@]}"
  echo "fix: $cf -i ${bad[*]}"
  exit 1
fi
echo "format: every C++ file follows .clang-format ($("$cf" --version | grep -o 'version [0-9.]*'))"
