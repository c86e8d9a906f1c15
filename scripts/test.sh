#!/usr/bin/env bash
# The README's second command (and CI's): install what is missing, build, and run the
# whole suite through ctest; then build with AddressSanitizer and UndefinedBehaviorSanitizer
# and run the unit and simulation tests again under it.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# The link-cut test puts nodes in network namespaces and cuts a link with iptables.
MLR_PACKAGES+=(iproute2 iptables)
mlr_install
start=$(date +%s)
mlr_build build -DCMAKE_BUILD_TYPE=Release
(cd "$MLR_ROOT/build" && ctest --output-on-failure --timeout 600)
mlr_build build-asan -DCMAKE_BUILD_TYPE=Debug -DMLR_SANITIZE=ON
(cd "$MLR_ROOT/build-asan" &&
   UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$MLR_ROOT/tests/ubsan.supp" \
   ctest --output-on-failure --timeout 600)
echo "mlr: all tests passed in $(( $(date +%s) - start )) s (Release, then ASan+UBSan)"
