#!/usr/bin/env bash
# The README's first command: install what is missing, build (Release), run the demo.
# Extra arguments go to mlr-demo, e.g. scripts/demo.sh --topology ring --nodes 5.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
mlr_install
mlr_build build -DCMAKE_BUILD_TYPE=Release
"$MLR_ROOT/build/apps/mlr-demo" "$@"
