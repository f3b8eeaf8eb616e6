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
// Round -> clip (Maximum/Minimum/Clip, either order, before or after the Round) -> Mul by scale,
// with integer offsets after the Round (a zero point added before the clip and subtracted after
// it, as ONNX's uint8 QuantizeLinear/DequantizeLinear write it) and lossless Casts to int8 or
// uint8 and back. The dequantized value is q * scale with
//   q = clamp(round(source * inv_scale), qmin, qmax)
// (the zero point moves the clip bounds: uint8 with zero point z gives [-z, 255 - z]). The Mul by
// inv_scale may be missing (an earlier pass moved it into the producer): inv_scale is then 1.
struct QuantDequant {
  ir::ValueId source = ir::kNoValue;  // the float32 value that is quantized
  float inv_scale = 1;                // multiplies source before rounding
  float divisor = 0;                  // nonzero: the chain divides by it (inv_scale = 1 / divisor)
  float scale = 0;                    // one step, in source * inv_scale's units times scale
  float qmin = -127, qmax = 127;      // integers, qmin <= 0 <= qmax, at most 256 values
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

// How 8-bit tensors hold a QuantDequant's q: int8 as it is when [qmin, qmax] fits, else uint8 as
// q + zero_point (zero_point = -qmin when qmin < 0; oneDNN subtracts it again).
struct Int8Storage {
  bool is_unsigned = false;
  int zero_point = 0;
};
Int8Storage StorageFor(float qmin, float qmax);

// dst[i] = round_half_even(clamp(src[i] * inv_scale, qmin, qmax)) as int8, for n elements.
void QuantizeToS8(const float* src, int8_t* dst, int64_t n, float inv_scale, float qmin, float qmax);
// dst[i] = round_half_even(clamp(src[i] * inv_scale, qmin, qmax)) + zero_point as uint8 (the
// sum within [0, 255]).
void QuantizeToU8(const float* src, uint8_t* dst, int64_t n, float inv_scale, float qmin, float qmax, int zero_point);
// A whole quantize-dequantize chain in float32: dst[i] = round_half_even(clamp(src[i] / divisor,
// qmin, qmax)) * scale (src[i] * inv_scale when divisor is 0), exactly the chain's value; NaN
// gives 0, as in the int8 kernels.
void QuantDequantF32(const float* src, float* dst, int64_t n, float inv_scale, float divisor, float qmin, float qmax,
                     float scale);

}  // namespace kiln::backend::cpu
