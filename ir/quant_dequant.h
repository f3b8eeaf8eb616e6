// 8-bit quantization as float graphs write it: quantize-dequantize chains before the operands of
// convolutions and matrix products (Kiln's INT8 and FP8 conversions, ONNX QDQ models,
// TensorFlow's FakeQuant), and constant weights whose values lie on a per-output-channel int8 grid
// or a scaled float8 E4M3 grid. Backends with 8-bit kernels (the CPU's oneDNN primitives, the
// GPU's cuDNN convolutions) recognise these and compute the same values with 8-bit operands.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::ir {

// The 8-bit number format a quantized tensor is stored in.
enum class QuantFormat { kInt8, kFloat8E4M3 };

// A node attribute (double): the calibrated symmetric range of the node's output, which the graph
// does not quantize. Kiln's INT8 and FP8 conversions set it on convolutions whose result only a
// residual Add reads; a backend may store that result in the conversion's 8-bit format (int8 with
// scale amax / 127, E4M3 with scale amax / 448), as TensorRT's implicit quantization stores any
// tensor with a range, and otherwise ignores it.
inline constexpr const char* kCalibratedOutputAmax = "calibrated_output_amax";

// A node attribute (bool) on the dequantizing node of each quantize-dequantize chain that Kiln's
// INT8 / FP8 conversion inserted from calibrated ranges (implicit quantization, as TensorRT's
// calibrated INT8 mode). The chain only says what an 8-bit kernel would compute: a backend whose
// kernel for a reader is not 8-bit may let that reader take the chain's float source instead, as
// TensorRT runs such layers in higher precision. Chains a model brings (ONNX QuantizeLinear /
// DequantizeLinear, TensorFlow's FakeQuant: explicit quantization) carry no such attribute.
inline constexpr const char* kImplicitQuantization = "implicit_quantization";

// A quantize-dequantize chain ending at a value: source -> [Mul by inv_scale | Div by scale] ->
// Round -> clip (Maximum/Minimum/Clip, either order, before or after the Round) -> Mul by scale,
// with integer offsets after the Round (a zero point added before the clip and subtracted after
// it, as ONNX's uint8 QuantizeLinear/DequantizeLinear write it) and lossless Casts to int8 or
// uint8 and back. The dequantized value is q * scale with
//   q = clamp(round(source * inv_scale), qmin, qmax)
// (the zero point moves the clip bounds: uint8 with zero point z gives [-z, 255 - z]). The Mul by
// inv_scale may be missing (an earlier pass moved it into the producer): inv_scale is then 1.
struct QuantDequant {
  ValueId source = kNoValue;      // the float32 value that is quantized
  float inv_scale = 1;            // multiplies source before rounding
  float divisor = 0;              // nonzero: the chain divides by it (inv_scale = 1 / divisor)
  float scale = 0;                // one step, in source * inv_scale's units times scale
  float qmin = -127, qmax = 127;  // integers, qmin <= 0 <= qmax, at most 256 values
  std::vector<NodeId> nodes;      // the chain's nodes, last (the dequantizing Mul) first
  QuantFormat format = QuantFormat::kInt8;
};
std::optional<QuantDequant> MatchQuantDequant(const Graph& graph, ValueId value);

// A float8 quantize-dequantize chain ending at a value, as FP8 precision writes it:
// source -> [Mul by inv_scale | Div by scale] -> RoundFloat8E4M3 -> Mul by scale. The
// dequantized value is e4m3(source * inv_scale) * scale (saturating at +-448); qmin/qmax are
// -448/448.
std::optional<QuantDequant> MatchFloat8QuantDequant(const Graph& graph, ValueId value);

// A constant float32 weight whose every output channel is an integer grid in [-127, 127]: the
// int8 values (same shape and layout) and one scale per channel. The channel of element e is
// (e / inner) % channels. nullopt when some value is off its channel's grid (by more than a
// rounding error) or not finite.
struct GridWeights {
  Tensor values;              // int8
  std::vector<float> scales;  // per channel (0 for an all-zero channel)
};
std::optional<GridWeights> RecoverInt8Grid(const Tensor& weights, int64_t channels, int64_t inner);

// How 8-bit tensors hold a QuantDequant's q: int8 as it is when [qmin, qmax] fits, else uint8 as
// q + zero_point (zero_point = -qmin when qmin < 0; oneDNN subtracts it again).
struct Int8Storage {
  bool is_unsigned = false;
  int zero_point = 0;
};
Int8Storage StorageFor(float qmin, float qmax);

}  // namespace kiln::ir
