#!/usr/bin/env bash
# The replication core (core/) is IO-free: no CAF, no sockets, no threads, no clock. Time
# reaches it as `now` arguments and every effect leaves it as a return value. This check
# fails (naming the file and line) if a file there includes a header of one of those, or
# reads a clock. Run by ctest as core_is_io_free.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
banned='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](caf/|sys/socket\.h|netinet/|arpa/|netdb\.h|sys/epoll\.h|poll\.h|unistd\.h|thread>|mutex>|condition_variable>|future>|ctime>|time\.h|sys/time\.h|spdlog/|openssl/|hiredis/|rocksdb/)'
clock='(steady_clock|system_clock|high_resolution_clock)::now|[^_a-z]time\(|gettimeofday|clock_gettime'
found=0
while IFS= read -r -d '' f; do
  rel="${f#"$root"/}"
  if grep -nE "$banned" "$f" | sed "s|^|$rel:|"; then found=1; fi
  if grep -nE "$clock" "$f" | sed "s|^|$rel:|"; then found=1; fi
done < <(find "$root/core" -type f \( -name '*.hpp' -o -name '*.cpp' \) -print0)
# What the core includes through other headers too: with a compiler (CXX, and BUILD for the
# generated Cap'n Proto headers), list every header each core file pulls in.
if [ -n "${CXX:-}" ]; then
  trans='/(caf|spdlog|openssl|hiredis|rocksdb)/|sys/socket\.h|netinet/|arpa/inet\.h|/thread$|/mutex$'
  for f in "$root"/core/*.cpp; do
    sys=$("$CXX" -std=c++17 -I"$root" -I"${BUILD:-$root/build}" -M -MG "$f" | tr ' \\' '\n\n' |
          grep -E "$trans" || true)
    if [ -n "$sys" ]; then
      echo "${f#"$root"/} pulls in, through the headers it includes:"
      echo "$sys" | sed 's/^/  /'
      found=1
    fi
  done
fi
if ((found)); then
  echo "core/ must stay IO-free: the lines above include a CAF, socket, thread, clock, logging or"
  echo "storage-engine header, or read a clock. Move that code to the actor shell (actors/) and"
  echo "pass what the core needs in (time as a 'now' argument)."
  exit 1
fi
echo "core/: $(find "$root/core" -type f \( -name '*.hpp' -o -name '*.cpp' \) | wc -l) files, none includes CAF, sockets, threads or a clock"
