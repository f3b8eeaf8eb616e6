// Kiln's file readers as fuzz targets. Each target takes the bytes of one file of its format,
// writes them into a fresh temporary directory and reads them the way a user's file is read.
// Any input must end in a result or a kiln::Error: a crash, a hang, a sanitizer report or another
// exception type is a bug. The same functions run in libFuzzer executables (scripts/fuzz.sh) and
// over the regression corpus in the unit tests (tests/fuzz/regression/<target>/).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kiln::fuzz {

struct Target {
  std::string_view name;  // also the corpus directory's name
  void (*run)(std::span<const uint8_t> data);
};

// npy, onnx, saved_model_pb, tensor_bundle_index, kiln_file, engine_file.
const std::vector<Target>& Targets();
const Target* FindTarget(std::string_view name);

// Tighter limits than a user's defaults, so that one input cannot take the fuzzer's memory or
// time: at most 64 MiB per tensor, 10,000 loop iterations.
void SetFuzzingLimits();

}  // namespace kiln::fuzz
