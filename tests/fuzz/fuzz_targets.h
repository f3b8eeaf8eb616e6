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

// npy, onnx, saved_model_pb, tensor_bundle_index, kiln_file, engine_file, and kiln_file_resealed
// and engine_file_resealed: the same readers on the input with its container checksums recomputed
// (so that mutations reach what the checksums guard).
const std::vector<Target>& Targets();
const Target* FindTarget(std::string_view name);

// The bytes with every checksum of Kiln's container layout (convert/container.h) recomputed, as
// far as the lengths in the bytes let the layout be followed. Byte-level mutations of a .kiln or
// engine file almost never survive the checksums, so the readers behind them (the header's JSON,
// the IR codec, engine payloads) would go unfuzzed; resealed, every mutation reaches them.
std::vector<uint8_t> ResealContainer(std::span<const uint8_t> data);

// Tighter limits than a user's defaults, so that one input cannot take the fuzzer's memory or
// time: at most 64 MiB per tensor, 10,000 loop iterations.
void SetFuzzingLimits();

}  // namespace kiln::fuzz
