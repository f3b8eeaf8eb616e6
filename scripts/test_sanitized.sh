#!/usr/bin/env bash
# Builds the C++ unit tests with AddressSanitizer and UndefinedBehaviorSanitizer (CPU only, in
# build-sanitize/) and runs them: any memory error, leak or undefined behaviour fails the run.
# CI runs it after the normal tests (scripts/test.sh); safe to re-run (incremental).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-sanitize"
"$root/scripts/install_deps.sh"
# -O1: a sanitized build's usual trade between compile time, run time and useful stacks.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" -DKILN_SANITIZE=ON \
  -DKILN_WITH_CUDA=OFF > "$build.cmake.log" 2>&1 || { cat "$build.cmake.log"; exit 1; }
rm -f "$build.cmake.log"
cmake --build "$build" -j "$(nproc)" --target kiln_unit_tests
echo "== C++ unit tests under ASan + UBSan"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$build"
KILN_SOURCE_DIR="$root" ./kiln_unit_tests --gtest_brief=1 "$@"
