# Shared by scripts/demo.sh and scripts/test.sh: install missing Debian packages (only
# when something is missing, so it is idempotent and quick the second time), configure
# and build. Source it; do not run it.
set -euo pipefail

MLR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MLR_PACKAGES=(cmake make g++ pkg-config libcaf-dev capnproto libcapnp-dev
              libboost-program-options-dev catch2 librocksdb-dev libhiredis-dev
              libspdlog-dev nlohmann-json3-dev redis-tools python3)

mlr_install() {
  local missing=()
  for p in "${MLR_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "mlr: installing missing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
}

# mlr_build DIR [cmake options...]: configure (once) and build with two jobs.
mlr_build() {
  local dir="$1"
  shift
  cmake -S "$MLR_ROOT" -B "$MLR_ROOT/$dir" "$@" >/dev/null
  cmake --build "$MLR_ROOT/$dir" -j2
}
