#!/usr/bin/env bash
# Fuzzes Kiln's file readers with libFuzzer under AddressSanitizer and UBSan.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
# Builds build-fuzz/ with clang (-DKILN_FUZZ=ON, CPU backend only), seeds each target's corpus
# from the test models and the regression corpus, runs each target for the given time, and copies
# any crashing, leaking or hanging input into tests/fuzz/regression/<target>/, where the unit
# tests (FuzzRegression.*) run it from then on. Exits 1 when a target found something.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(npy onnx saved_model_pb tensor_bundle_index kiln_file engine_file kiln_file_resealed engine_file_resealed)

"$root/scripts/install_deps.sh"
build="$root/build-fuzz"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DKILN_FUZZ=ON \
  -DKILN_BUILD_TESTS=OFF -DKILN_WITH_CUDA=OFF > "$build.cmake.log" 2>&1 || { cat "$build.cmake.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target $(printf 'kiln_fuzz_%s ' "${targets[@]}")

# Seeds: files of each format that Kiln reads correctly, and every input that once went wrong.
seeds="$build/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
seed() {  # target, files...
  local t=$1; shift
  mkdir -p "$seeds/$t"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$seeds/$t/$(echo "$f" | tr / _)"; done
  [ -d "$root/tests/fuzz/regression/$t" ] && cp "$root/tests/fuzz/regression/$t"/* "$seeds/$t/" 2>/dev/null || true
}
seed npy $(find "$root/tests" "$root/models" -name '*.npy' -size -64k 2>/dev/null | head -50)
seed onnx $(find "$root/tests" "$root/models" "$root/build/test_models" -name '*.onnx' -size -2M 2>/dev/null | head -50)
seed saved_model_pb $(find "$root/models" "$root/build/test_models" -name saved_model.pb -size -2M 2>/dev/null | head -20)
seed tensor_bundle_index $(find "$root/models" "$root/build/test_models" -name 'variables.index' 2>/dev/null | head -20)
seed kiln_file $(find "$root/tests" "$root/build/test_models" -name '*.kiln' -size -4M 2>/dev/null | head -10)
seed engine_file $(find "$root/build/test_models" -name '*.kiln-engine' -size -1M 2>/dev/null | head -20)
seed kiln_file_resealed $(find "$root/tests" "$root/build/test_models" -name '*.kiln' -size -4M 2>/dev/null | head -10)
seed engine_file_resealed $(find "$root/build/test_models" -name '*.kiln-engine' -size -1M 2>/dev/null | head -20)

found=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  echo "== kiln_fuzz_$t: ${seconds} s"
  # -rss_limit_mb: a reader that allocates what a file claims (not what it carries) shows up here.
  if ! "$build/fuzz/kiln_fuzz_$t" "$corpus" "$seeds/$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
       -artifact_prefix="$artifacts/" -print_final_stats=1 2>&1 | tail -n 25; then
    found=1
  fi
  if compgen -G "$artifacts/*" > /dev/null; then
    found=1
    mkdir -p "$root/tests/fuzz/regression/$t"
    cp "$artifacts"/* "$root/tests/fuzz/regression/$t/"
    echo "kiln_fuzz_$t: inputs copied to tests/fuzz/regression/$t/"
  fi
done
exit $found
