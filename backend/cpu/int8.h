// Symmetric INT8 on the CPU engine: recognising quantize-dequantize chains in a graph, recovering
// the int8 grid of weights quantized per output channel, and quantizing float32 tensors.
//
// Kiln's INT8 conversion (convert/calibration_table.h) and quantized models express INT8 as
// float32 ops: dequantize(quantize(x)) = round(clip(x * inv_scale, qmin, qmax)) * scale before a
// convolution or matrix product, and weights whose values already lie on a per-output-channel
// grid k * scale_c (k an integer in [-127, 127]). The CPU backend's cpu-int8 pass turns those into
// cpu.QuantizeS8 steps and int8 oneDNN primitives that compute the same values with int32
// accumulation.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cpu {

// A quantize-dequantize chain ending at a value: source -> [Mul by inv_scale | Div by scale] ->
// clip to [qmin, qmax] (Maximum/Minimum/Clip, either order) and Round (either order, a Cast to
// int8 and back allowed after them) -> Mul by scale. The Mul by inv_scale may be missing (an
// earlier pass moved it into the producer): inv_scale is then 1.
struct QuantDequant {
  ir::ValueId source = ir::kNoValue;  // the float32 value that is quantized
  float inv_scale = 1;                // multiplies source before rounding
  float scale = 0;                    // one int8 step, in source * inv_scale's units times scale
  float qmin = -127, qmax = 127;      // integers within [-128, 127]
  std::vector<ir::NodeId> nodes;      // the chain's nodes, last (the dequantizing Mul) first
};
std::optional<QuantDequant> MatchQuantDequant(const ir::Graph& graph, ir::ValueId value);

// A constant float32 weight whose every output channel is an integer grid in [-127, 127]: the
// int8 values (same shape and layout) and one scale per channel. The channel of element e is
// (e / inner) % channels. nullopt when some value is off its channel's grid (by more than a
// rounding error) or not finite.
struct GridWeights {
  Tensor values;              // int8
  std::vector<float> scales;  // per channel (0 for an all-zero channel)
};
std::optional<GridWeights> RecoverInt8Grid(const Tensor& weights, int64_t channels, int64_t inner);

// The output channels of operand b of a fused conv / matmul, as RecoverInt8Grid takes them
// (count, inner stride): the last dim of an HWIO filter (grouped filters too); column n of a
// rank-2 matmul operand ([k, n], or [n, k] with transpose_b). {0, 0} for other nodes and shapes.
std::pair<int64_t, int64_t> OutputChannelsOf(const ir::Node& fused, const Shape& b);

// dst[i] = round_half_even(clamp(src[i] * inv_scale, qmin, qmax)) as int8, for n elements.
void QuantizeToS8(const float* src, int8_t* dst, int64_t n, float inv_scale, float qmin, float qmax);

}  // namespace kiln::backend::cpu
