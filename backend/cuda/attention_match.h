// Scaled dot-product attention in a segment, for the fused attention kernel:
//
//   scores = BatchMatMul(Q', K'^T) [* or / scalar] [+ bias]      (Q', K': Q and K after scalar
//   probs  = Softmax(scores, last axis) [then Select(IsNaN(probs), 0, probs)]   Muls and Transposes)
//   out    = BatchMatMul(probs, V') [then Transpose]
//
// Q, K, V and the output are 4-D, read as [batch, heads, sequence, head dim] through the
// Transposes around them (which therefore move no data: a projection's [b, s, h, d] output is
// read in place), and the scalar factors on Q, K and the scores multiply into one scale. Every
// intermediate must be read only inside the pattern (or by Shape, Size and Rank, which need
// only its shape).
#pragma once

#include <array>
#include <vector>

#include "ir/graph.h"

namespace kiln::backend::cuda {

// A tensor read as [b, h, s, d]: logical dim i is dim `dims[i]` of `value` (stored contiguously).
struct AttentionOperand {
  ir::ValueId value = ir::kNoValue;
  std::array<int, 4> dims = {0, 1, 2, 3};
};

struct AttentionMatch {
  AttentionOperand q, k, v;         // k as [b, h, s_kv, d] (the transposed K of the product)
  ir::ValueId bias = ir::kNoValue;  // added to the scores, broadcasting to [b, h, s_q, s_kv]
  float scale = 1.0f;
  AttentionOperand out;    // the output value, written through `dims` as [b, h, s_q, d_v]
  bool nan_guard = false;  // probs that are NaN (a fully masked row) are read as 0
  // A Reshape between the product and the output Transpose that must leave the shape as it is
  // (PyTorch's exporter writes one); checked per input shapes. kNoValue when there is none.
  ir::ValueId product = ir::kNoValue, reshaped = ir::kNoValue;
  std::vector<ir::NodeId> nodes;  // every node the fused step runs; the last is where it runs
};

// Every attention pattern in `graph` over float16/bfloat16 values, none sharing a node.
std::vector<AttentionMatch> FindAttention(const ir::Graph& graph,
                                          const std::vector<std::vector<ir::NodeId>>& consumers);

}  // namespace kiln::backend::cuda
