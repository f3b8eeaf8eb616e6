// Symmetric INT8 on the CPU engine: the output channels of fused nodes' weights and quantizing
// float32 tensors (the chains and weight grids themselves are recognised by ir/quant_dequant.h).
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
#include "ir/quant_dequant.h"
#include "kiln/tensor.h"

namespace kiln::backend::cpu {

// The graph-level recognition is shared with other backends (ir/quant_dequant.h).
using ir::GridWeights;
using ir::Int8Storage;
using ir::MatchQuantDequant;
using ir::QuantDequant;
using ir::RecoverInt8Grid;
using ir::StorageFor;

// The output channels of operand b of a fused conv / matmul, as RecoverInt8Grid takes them
// (count, inner stride): the last dim of an HWIO filter (grouped filters too); column n of a
// rank-2 matmul operand ([k, n], or [n, k] with transpose_b). {0, 0} for other nodes and shapes.
std::pair<int64_t, int64_t> OutputChannelsOf(const ir::Node& fused, const Shape& b);

// A cpu.QuantizeS8 node's parameters (attributes inv_scale, qmin, qmax, unsigned, zero_point):
// round_half_even(clamp(x * inv_scale, qmin, qmax)) (+ zero_point) stored as int8, or as uint8
// when is_unsigned.
struct QuantizeParams {
  float inv_scale = 1, qmin = -127, qmax = 127;
  bool is_unsigned = false;
  int zero_point = 0;
};
// Both throw kInternal naming `node` when the bounds plus the zero point leave the storage's range.
QuantizeParams QuantizeParamsOf(const ir::Node& quantize);
// The values in QuantizeParams' order (how a fused chain that quantizes its result stores them), and back.
inline constexpr size_t kQuantizeValues = 5;
std::vector<double> QuantizeAttrValues(const QuantizeParams& p);
QuantizeParams QuantizeParamsFromValues(const std::vector<double>& values, const ir::Node& node);
// n elements into dst (int8_t or uint8_t as p says), on the calling thread.
void QuantizeRange(const float* src, void* dst, int64_t n, const QuantizeParams& p);
// The same, on oneDNN's OpenMP team when large.
void Quantize(const float* src, void* dst, int64_t n, const QuantizeParams& p);

// A whole quantize-dequantize chain in float32 (a cpu.QuantDequant node's attributes):
// round_half_even(clamp(x / divisor, qmin, qmax)) * scale (x * inv_scale when divisor is 0),
// exactly the chain's value; NaN gives 0, as in the int8 kernels.
struct QuantDequantParams {
  float inv_scale = 1, divisor = 0, qmin = -127, qmax = 127, scale = 1;
};
QuantDequantParams QuantDequantParamsOf(const ir::Node& quant_dequant);
// The attribute values in QuantDequantParams' order (how a fused chain stores a step's), and back.
inline constexpr size_t kQuantDequantValues = 5;
std::vector<double> QuantDequantAttrValues(const ir::Node& quant_dequant);
QuantDequantParams QuantDequantParamsFromValues(const double* values);

// One value. Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an
// integer, half to even (the default rounding mode), and vectorises where std::nearbyint does
// not; the clamp keeps the magnitude small.
inline float QuantDequantValue(float x, const QuantDequantParams& p) {
  constexpr float kMagic = 12582912.0f;
  float v = p.divisor != 0 ? x / p.divisor : x * p.inv_scale;
  v = v == v ? v : 0.0f;
  v = v < p.qmin ? p.qmin : v;
  v = v > p.qmax ? p.qmax : v;
  return ((v + kMagic) - kMagic) * p.scale;
}

// dst[i] = QuantDequantValue(src[i], p) for n elements, on oneDNN's OpenMP team when large.
void QuantDequantF32(const float* src, float* dst, int64_t n, const QuantDequantParams& p);

}  // namespace kiln::backend::cpu
