// Reference kernels of the colour-space ops: RGBToHSV, HSVToRGB, AdjustHue, AdjustSaturation,
// each computing exactly what TensorFlow's CPU kernels compute, operation by operation, so
// that the results round alike: RGBToHSV / HSVToRGB are TF's elementwise Eigen expressions
// (in the element type; half and bfloat16 round after every operation, as Eigen's half types
// do), AdjustHue and AdjustSaturation are TF's own float32 loops, which are not the
// composition of the two conversions.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "backend/reference/nn_common.h"

namespace kiln::reference::nn {
namespace {

// Arithmetic in the element type T: C is the type the operation runs in and Round gives the
// value T would hold after the operation.
template <typename T>
struct Arith {
  using C = T;
  static C Round(C x) { return x; }
  static C Load(T x) { return x; }
  static T Store(C x) { return x; }
};
template <typename H>
struct HalfArith {
  using C = float;
  static C Round(C x) { return static_cast<float>(H(x)); }
  static C Load(H x) { return static_cast<float>(x); }
  static H Store(C x) { return H(x); }
};
template <>
struct Arith<Half> : HalfArith<Half> {};
template <>
struct Arith<BFloat16> : HalfArith<BFloat16> {};

int64_t CheckRgb(KernelContext& ctx, const Tensor& x, int min_rank) {
  if (x.rank() < min_rank || x.dim(x.rank() - 1) != 3)
    ctx.Fail(fmt::format("expected images of rank >= {} with 3 channels in the last dim, got {}", min_rank,
                         ShapeStr(x.shape())));
  return x.num_elements() / 3;
}

// TF's RGBToHSV functor (colorspace_op.h).
template <typename T>
void RgbToHsv(const T* in, T* out, int64_t pixels) {
  using A = Arith<T>;
  using C = typename A::C;
  auto R = A::Round;
  const C sixth = R(C(1) / C(6)), two_sixths = R(C(2) / C(6)), four_sixths = R(C(4) / C(6));
  for (int64_t p = 0; p < pixels; ++p) {
    const C r = A::Load(in[3 * p]), g = A::Load(in[3 * p + 1]), b = A::Load(in[3 * p + 2]);
    const C v = std::max(std::max(r, g), b);
    const C range = R(v - std::min(std::min(r, g), b));
    const C s = v > C(0) ? R(range / v) : C(0);
    const C norm = R(R(C(1) / range) * sixth);
    C h;
    if (r == v)
      h = R(norm * R(g - b));
    else if (g == v)
      h = R(R(norm * R(b - r)) + two_sixths);
    else
      h = R(R(norm * R(r - g)) + four_sixths);
    if (!(range > C(0))) h = C(0);
    if (h < C(0)) h = R(h + C(1));
    out[3 * p] = A::Store(h);
    out[3 * p + 1] = A::Store(s);
    out[3 * p + 2] = A::Store(v);
  }
}

// TF's HSVToRGB functor (colorspace_op.h).
template <typename T>
void HsvToRgb(const T* in, T* out, int64_t pixels) {
  using A = Arith<T>;
  using C = typename A::C;
  auto R = A::Round;
  auto clamp01 = [](C x) { return std::min(std::max(x, C(0)), C(1)); };
  for (int64_t p = 0; p < pixels; ++p) {
    const C h = A::Load(in[3 * p]), s = A::Load(in[3 * p + 1]), v = A::Load(in[3 * p + 2]);
    const C dh = R(h * C(6));
    const C dr = clamp01(R(std::abs(R(dh - C(3))) - C(1)));
    const C dg = clamp01(R(-std::abs(R(dh - C(2))) + C(2)));
    const C db = clamp01(R(-std::abs(R(dh - C(4))) + C(2)));
    const C one_s = R(-s + C(1));
    out[3 * p] = A::Store(R(R(one_s + R(s * dr)) * v));
    out[3 * p + 1] = A::Store(R(R(one_s + R(s * dg)) * v));
    out[3 * p + 2] = A::Store(R(R(one_s + R(s * db)) * v));
  }
}

template <bool kToHsv>
void ColorConversionKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t pixels = CheckRgb(ctx, x, 1);
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), x.shape());
  DispatchFloat(x.dtype(), kToHsv ? "RGBToHSV" : "HSVToRGB", [&]<typename T>() {
    if constexpr (kToHsv)
      RgbToHsv<T>(x.data<T>(), y.data<T>(), pixels);
    else
      HsvToRgb<T>(x.data<T>(), y.data<T>(), pixels);
  });
}
KILN_REFERENCE_KERNEL("RGBToHSV", ColorConversionKernel<true>);
KILN_REFERENCE_KERNEL("HSVToRGB", ColorConversionKernel<false>);

// The channel (0 r, 1 g, 2 b) holding the largest, middle and smallest component in each of
// the six hue sectors: red to yellow, yellow to green, ..., magenta to red.
constexpr int kMaxChannel[6] = {0, 1, 1, 2, 2, 0};
constexpr int kMidChannel[6] = {1, 0, 2, 1, 0, 2};
constexpr int kMinChannel[6] = {2, 2, 0, 0, 1, 1};

// AdjustHue's RGB -> (hue in [0, 6), min, max), TF's rgb_to_hv_range: the sector from the
// order of the components (two equal ones may fall on either side, as there), then the
// position within it.
void RgbToHueRange(const float* rgb, float* h, float* v_min, float* v_max) {
  const float r = rgb[0], g = rgb[1], b = rgb[2];
  int sector;
  if (r < g)
    sector = b < r ? 1 : (b > g ? 3 : 2);
  else
    sector = b < g ? 0 : (b > r ? 4 : 5);
  *v_max = rgb[kMaxChannel[sector]];
  *v_min = rgb[kMinChannel[sector]];
  const float v_mid = rgb[kMidChannel[sector]];
  if (*v_max == *v_min) {
    *h = 0;
    return;
  }
  const float ratio = (v_mid - *v_min) / (*v_max - *v_min);
  const bool increase = (sector & 1) == 0;
  *h = static_cast<float>(sector) + (increase ? ratio : 1 - ratio);
}

// TF's hv_range_to_rgb; h is in [0, 6).
void HueRangeToRgb(float h, float v_min, float v_max, float* rgb) {
  const int sector = static_cast<int>(h);
  float ratio = h - static_cast<float>(sector);
  if ((sector & 1) != 0) ratio = 1 - ratio;
  rgb[kMaxChannel[sector]] = v_max;
  rgb[kMidChannel[sector]] = v_min + ratio * (v_max - v_min);
  rgb[kMinChannel[sector]] = v_min;
}

// Brings a hue into [0, period) by whole periods as TF's loops do, step by step (one or two
// steps for the deltas in [-1, 1] that tf.image allows), so the sums round as TF's do. More
// than 64 periods away the remainder is taken first: TF's loop would take up to millions of
// steps there (rounding differently) and never ends beyond about 2^27, where a step no longer
// moves the float. NaN and infinities give NaN (TF's loop would not end either).
float WrapHue(float h, float period) {
  if (!std::isfinite(h)) return std::numeric_limits<float>::quiet_NaN();
  if (std::fabs(h) > 64 * period) h = std::fmod(h, period);
  while (h < 0) h += period;
  while (h >= period) h -= period;
  return h;
}

void AdjustHuePixel(const float* p, float delta, float* q) {
  float h, v_min, v_max;
  RgbToHueRange(p, &h, &v_min, &v_max);
  h = WrapHue(h + delta * 6, 6);
  if (std::isnan(h)) {
    q[0] = q[1] = q[2] = h;
    return;
  }
  HueRangeToRgb(h, v_min, v_max, q);
}

// AdjustSaturation's rgb_to_hsv: float arithmetic except the hue offsets 2/6 and 4/6, which
// TF writes as double literals, so those sums are formed in double and rounded once.
void RgbToHsvForSaturation(float r, float g, float b, float* h, float* s, float* v) {
  const float vv = std::max(r, std::max(g, b));
  const float range = vv - std::min(r, std::min(g, b));
  *s = vv > 0 ? range / vv : 0;
  const float norm = 1.0f / (6.0f * range);
  float hh;
  if (r == vv)
    hh = norm * (g - b);
  else if (g == vv)
    hh = static_cast<float>(static_cast<double>(norm * (b - r)) + 2.0 / 6.0);
  else
    hh = static_cast<float>(static_cast<double>(norm * (r - g)) + 4.0 / 6.0);
  if (range <= 0.0f) hh = 0;
  if (hh < 0.0f) hh = hh + 1;
  *v = vv;
  *h = hh;
}

// AdjustSaturation's hsv_to_rgb (the sector from int(6h), the ramp from 6h folded into
// (0, 2]). A non-finite hue (from non-finite input) yields NaN, where TF's folding loop would
// not end.
void HsvToRgbForSaturation(float h, float s, float v, float* r, float* g, float* b) {
  const float c = s * v;
  const float m = v - c;
  const float dh = h * 6;
  if (!std::isfinite(dh)) {
    *r = *g = *b = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  const int sector = static_cast<int>(dh);
  float fmodu = dh;
  while (fmodu <= 0) fmodu += 2.0f;
  while (fmodu >= 2.0f) fmodu -= 2.0f;
  const float x = c * (1 - std::abs(fmodu - 1));
  // Chroma on the largest channel, x on the middle one; outside sectors 0..5 (6h = 6 exactly,
  // which the float hue can reach) TF's switch leaves all three at m.
  float rgb[3] = {0, 0, 0};
  if (sector >= 0 && sector < 6) {
    rgb[kMaxChannel[sector]] = c;
    rgb[kMidChannel[sector]] = x;
  }
  *r = rgb[0] + m;
  *g = rgb[1] + m;
  *b = rgb[2] + m;
}

void AdjustSaturationPixel(const float* p, float scale, float* q) {
  float h, s, v;
  RgbToHsvForSaturation(p[0], p[1], p[2], &h, &s, &v);
  s = std::min(1.0f, std::max(0.0f, s * scale));
  HsvToRgbForSaturation(h, s, v, q, q + 1, q + 2);
}

// AdjustHue(images, delta) / AdjustSaturation(images, scale): TF's float32 loops; half images
// are widened to float and the result rounded once, as TF's GPU kernels do for half.
template <bool kHue>
void ColorAdjustKernel(KernelContext& ctx) {
  const char* op = kHue ? "AdjustHue" : "AdjustSaturation";
  const Tensor& x = ctx.input(0);
  const Tensor& param = ctx.input(1);
  const int64_t pixels = CheckRgb(ctx, x, 3);
  if (param.dtype() != DType::kFloat32 || param.rank() != 0)
    ctx.Fail(fmt::format("{} must be a float32 scalar, got {} {}", kHue ? "delta" : "scale", DTypeName(param.dtype()),
                         ShapeStr(param.shape())));
  if (x.dtype() != DType::kFloat32 && x.dtype() != DType::kFloat16)
    ctx.Fail(fmt::format("images must be float32 or float16, got {}", DTypeName(x.dtype())));
  const float value = param.data<float>()[0];
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), x.shape());
  DispatchFloat(x.dtype(), op, [&]<typename T>() {
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t p = 0; p < pixels; ++p) {
      float rgb[3], res[3];
      for (int c = 0; c < 3; ++c) rgb[c] = static_cast<float>(ToDouble(in[3 * p + c]));
      if constexpr (kHue)
        AdjustHuePixel(rgb, value, res);
      else
        AdjustSaturationPixel(rgb, value, res);
      for (int c = 0; c < 3; ++c) out[3 * p + c] = FromDouble<T>(res[c]);
    }
  });
}
KILN_REFERENCE_KERNEL("AdjustHue", ColorAdjustKernel<true>);
KILN_REFERENCE_KERNEL("AdjustSaturation", ColorAdjustKernel<false>);

}  // namespace
}  // namespace kiln::reference::nn
