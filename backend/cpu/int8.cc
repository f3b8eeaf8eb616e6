#include "backend/cpu/int8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/parallel_blocks.h"

namespace kiln::backend::cpu {
std::pair<int64_t, int64_t> OutputChannelsOf(const ir::Node& fused, const Shape& b) {
  if (fused.op == kFusedConv2D && b.size() == 4) return {b[3], 1};
  if (fused.op != kFusedMatMul || b.size() != 2) return {0, 0};
  if (fused.attrs.GetOr<bool>("transpose_b", false)) return {b[0], b[1]};
  return {b[1], 1};
}

namespace {

// Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer, half to
// even (the default rounding mode), and vectorises where std::nearbyint does not; the clamp keeps
// the magnitude small. Compiled for AVX-512 and AVX2 too, chosen at load time.
__attribute__((target_clones("avx512f", "avx2", "default"))) void QuantizeBlock(const float* src, int8_t* dst,
                                                                                int64_t n, float inv_scale, float qmin,
                                                                                float qmax) {
  constexpr float kMagic = 12582912.0f;
  for (int64_t i = 0; i < n; ++i) {
    float v = src[i] * inv_scale;
    v = v == v ? v : 0.0f;  // NaN has no int8 value
    v = v < qmin ? qmin : v;
    v = v > qmax ? qmax : v;
    v = (v + kMagic) - kMagic;
    dst[i] = static_cast<int8_t>(static_cast<int32_t>(v));
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void QuantizeBlockU8(const float* src, uint8_t* dst,
                                                                                  int64_t n, float inv_scale, float qmin,
                                                                                  float qmax, float zero_point) {
  constexpr float kMagic = 12582912.0f;
  for (int64_t i = 0; i < n; ++i) {
    float v = src[i] * inv_scale;
    v = v == v ? v : 0.0f;
    v = v < qmin ? qmin : v;
    v = v > qmax ? qmax : v;
    v = (v + kMagic) - kMagic + zero_point;
    dst[i] = static_cast<uint8_t>(static_cast<int32_t>(v));
  }
}

// Compiled for AVX-512 and AVX2 too, chosen at load time.
__attribute__((target_clones("avx512f", "avx2", "default"))) void QuantDequantBlock(const float* src, float* dst,
                                                                                    int64_t n,
                                                                                    const QuantDequantParams& p) {
  const QuantDequantParams q = p;  // a local copy: the loop reads no memory the stores may alias
  for (int64_t i = 0; i < n; ++i) dst[i] = QuantDequantValue(src[i], q);
}

}  // namespace

QuantDequantParams QuantDequantParamsOf(const ir::Node& node) {
  QuantDequantParams p;
  p.inv_scale = static_cast<float>(node.attrs.Get<double>("inv_scale"));
  p.divisor = static_cast<float>(node.attrs.Get<double>("divisor"));
  p.qmin = static_cast<float>(node.attrs.Get<double>("qmin"));
  p.qmax = static_cast<float>(node.attrs.Get<double>("qmax"));
  p.scale = static_cast<float>(node.attrs.Get<double>("scale"));
  return p;
}

std::vector<double> QuantDequantAttrValues(const ir::Node& node) {
  const QuantDequantParams p = QuantDequantParamsOf(node);
  return {p.inv_scale, p.divisor, p.qmin, p.qmax, p.scale};
}

QuantDequantParams QuantDequantParamsFromValues(const double* v) {
  return {static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2]), static_cast<float>(v[3]),
          static_cast<float>(v[4])};
}

void QuantDequantF32(const float* src, float* dst, int64_t n, const QuantDequantParams& p) {
  ForBlocks(n, [&](int64_t begin, int64_t count) { QuantDequantBlock(src + begin, dst + begin, count, p); });
}

namespace {

QuantizeParams CheckedQuantizeParams(const QuantizeParams& p, const ir::Node& node) {
  const float zero_point = static_cast<float>(p.zero_point);
  const bool fits = p.is_unsigned ? p.qmin + zero_point >= 0 && p.qmax + zero_point <= 255
                                  : p.qmin >= -128 && p.qmax <= 127 && p.zero_point == 0;
  if (!fits || !(p.qmin <= p.qmax) || !std::isfinite(p.inv_scale))
    throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): quantization x * {:g} to [{:g}, {:g}] + {} does not "
                                                  "fit {}",
                                                  node.name, node.op, p.inv_scale, p.qmin, p.qmax, p.zero_point,
                                                  p.is_unsigned ? "uint8" : "int8"));
  return p;
}

}  // namespace

QuantizeParams QuantizeParamsOf(const ir::Node& node) {
  QuantizeParams p;
  p.inv_scale = static_cast<float>(node.attrs.Get<double>("inv_scale"));
  p.qmin = static_cast<float>(node.attrs.Get<double>("qmin"));
  p.qmax = static_cast<float>(node.attrs.Get<double>("qmax"));
  p.is_unsigned = node.attrs.GetOr<bool>("unsigned", false);
  p.zero_point = static_cast<int>(std::clamp<int64_t>(node.attrs.GetOr<int64_t>("zero_point", 0), -1024, 1024));
  return CheckedQuantizeParams(p, node);
}

std::vector<double> QuantizeAttrValues(const QuantizeParams& p) {
  return {p.inv_scale, p.qmin, p.qmax, p.is_unsigned ? 1.0 : 0.0, static_cast<double>(p.zero_point)};
}

QuantizeParams QuantizeParamsFromValues(const std::vector<double>& v, const ir::Node& node) {
  if (v.size() != kQuantizeValues || !(std::abs(v[4]) <= 1024))
    throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): bad quantization values", node.name, node.op));
  QuantizeParams p;
  p.inv_scale = static_cast<float>(v[0]);
  p.qmin = static_cast<float>(v[1]);
  p.qmax = static_cast<float>(v[2]);
  p.is_unsigned = v[3] != 0;
  p.zero_point = static_cast<int>(v[4]);
  return CheckedQuantizeParams(p, node);
}

void QuantizeRange(const float* src, void* dst, int64_t n, const QuantizeParams& p) {
  if (p.is_unsigned)
    QuantizeBlockU8(src, static_cast<uint8_t*>(dst), n, p.inv_scale, p.qmin, p.qmax, static_cast<float>(p.zero_point));
  else
    QuantizeBlock(src, static_cast<int8_t*>(dst), n, p.inv_scale, p.qmin, p.qmax);
}

void Quantize(const float* src, void* dst, int64_t n, const QuantizeParams& p) {
  ForBlocks(n, [&](int64_t begin, int64_t count) {
    QuantizeRange(src + begin, static_cast<char*>(dst) + begin, count, p);  // one byte an element
  });
}

}  // namespace kiln::backend::cpu
