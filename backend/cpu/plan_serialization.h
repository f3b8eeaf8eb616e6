// The CPU engine payload: a compact binary form of the optimized plan (the graph after the
// CPU passes, weights included) so that Deserialize rebuilds an engine without re-running the
// passes. Layout (little-endian, see docs/cpu-backend.md):
//
//   "KILNCPUP"  u32 version (2)  u64 body_size  body
//   body: u64 segment_hash, str device, u32 n + n * (str pass, i64 rewrites), graph
//
// The payload has no checksum of its own: it travels in an engine file, whose CRC32C covers it.
// Reading is bounds-checked throughout; a truncated or foreign payload is kDataLoss.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cpu/passes/passes.h"
#include "ir/graph.h"

namespace kiln::backend::cpu {

struct DecodedPlan {
  uint64_t segment_hash = 0;
  std::string device;  // the device string of the CPU that built it (informational)
  std::vector<PassStat> pass_stats;
  ir::Graph graph;
};

std::string EncodePlan(const ir::Graph& graph, uint64_t segment_hash, const std::string& device,
                       const std::vector<PassStat>& pass_stats);
DecodedPlan DecodePlan(std::string_view payload);

// A fingerprint of a segment's structure (input dtypes and shapes, ops, wiring, attributes and
// constant values, outputs; names are left out): CRC32C of that structure and its length.
// Deserialize compares it with the payload's.
uint64_t HashSegment(const ir::Graph& segment);

}  // namespace kiln::backend::cpu
