#!/usr/bin/env bash
# The README's second command (and CI's): install what is missing, build, and run the
# whole suite through ctest; then build with AddressSanitizer and UndefinedBehaviorSanitizer
# and run the suite again under it; then the libFuzzer targets, briefly.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# The link-cut test puts nodes in network namespaces and cuts a link with iptables; the
# fuzz targets are built with clang's libFuzzer; the format check runs clang-format.
MLR_PACKAGES+=(iproute2 iptables clang libclang-rt-14-dev clang-format)
mlr_install
start=$(date +%s)
mlr_build build -DCMAKE_BUILD_TYPE=Release
(cd "$MLR_ROOT/build" && ctest -j2 --output-on-failure --timeout 600)
mlr_build build-asan -DCMAKE_BUILD_TYPE=Debug -DMLR_SANITIZE=ON
(cd "$MLR_ROOT/build-asan" &&
   UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$MLR_ROOT/tests/ubsan.supp" \
   ctest -j2 --output-on-failure --timeout 600)
# Every decoder and parser that reads from a peer or a client, under libFuzzer, a few
# seconds each over the corpus in tests/fuzz/corpus (scripts/fuzz.sh runs them longer).
mlr_build build-fuzz -DMLR_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd "$MLR_ROOT/build-fuzz" && ctest --output-on-failure --timeout 120)
echo "mlr: all tests passed in $(( $(date +%s) - start )) s (Release, ASan+UBSan, fuzz)"
