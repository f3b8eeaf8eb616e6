// Reference kernel of ImageProjectiveTransform: TensorFlow's ImageProjectiveTransformV2/V3
// (tensorflow/core/kernels/image/image_ops.h), with its float32 arithmetic step for step so the
// results are TensorFlow's bit for bit. See docs/ops/nn.md, "Image ops".
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "backend/reference/dispatch.h"
#include "backend/reference/kernel.h"

namespace kiln::reference {
namespace {

enum class FillMode { kReflect, kWrap, kConstant, kNearest };

// float -> int64 as a C++ cast truncates; NaN and values beyond int64 (undefined behaviour in
// TensorFlow's cast) give 0 and the nearest bound.
int64_t Trunc64(float v) {
  if (std::isnan(v)) return 0;
  if (v >= 9.2e18f) return std::numeric_limits<int64_t>::max() / 4;
  if (v <= -9.2e18f) return std::numeric_limits<int64_t>::min() / 4;
  return static_cast<int64_t>(v);
}

// a * b as float, where TensorFlow multiplies two int64s; NaN (so the pixel takes the fill
// value) where that product would overflow.
float MulAsFloat(int64_t a, int64_t b) {
  int64_t p = 0;
  if (__builtin_mul_overflow(a, b, &p)) return std::numeric_limits<float>::quiet_NaN();
  return static_cast<float>(p);
}

float Clamp(float v, int64_t len) { return std::min(std::max(v, 0.0f), static_cast<float>(len - 1)); }

// Maps an input coordinate that may lie outside [0, len - 1] back inside (scipy.ndimage's
// modes, as TensorFlow's MapCoordinate).
float MapCoordinate(float in, int64_t len, FillMode mode) {
  switch (mode) {
    case FillMode::kConstant:
      return in;
    case FillMode::kNearest:
      return Clamp(in, len);
    case FillMode::kReflect:  // [abcd] -> [dcba|abcd|dcba]
      if (in < 0) {
        if (len <= 1) {
          in = 0;
        } else {
          const int64_t sz2 = 2 * len;
          if (in < static_cast<float>(sz2)) in = MulAsFloat(sz2, Trunc64(-in / static_cast<float>(sz2))) + in;
          in = in < static_cast<float>(-len) ? in + static_cast<float>(sz2) : -in - 1.0f;
        }
      } else if (in > static_cast<float>(len - 1)) {
        if (len <= 1) {
          in = 0;
        } else {
          const int64_t sz2 = 2 * len;
          in -= MulAsFloat(sz2, Trunc64(in / static_cast<float>(sz2)));
          if (in >= static_cast<float>(len)) in = static_cast<float>(sz2) - in - 1.0f;
        }
      }
      return Clamp(in, len);
    case FillMode::kWrap:  // [abcd] -> [abcd|abcd|abcd]
      if (in < 0) {
        if (len <= 1)
          in = 0;
        else
          in += MulAsFloat(len, Trunc64(-in / static_cast<float>(len - 1)) + 1);
      } else if (in > static_cast<float>(len - 1)) {
        if (len <= 1)
          in = 0;
        else
          in -= MulAsFloat(len, Trunc64(in / static_cast<float>(len - 1)));
      }
      return Clamp(in, len);
  }
  return in;
}

template <typename T>
float ToF(T v) {
  return static_cast<float>(v);
}

// float -> T as TensorFlow's T(float): round to nearest for the float types, truncation for the
// integers (through int64, so out-of-range values wrap instead of being undefined; NaN gives 0).
template <typename T>
T FromF(float v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
    return T(v);
  else if constexpr (std::is_floating_point_v<T>)
    return static_cast<T>(v);
  else
    return static_cast<T>(static_cast<uint64_t>(Trunc64(v)));
}

template <typename T>
void Transform(KernelContext& ctx, const Tensor& images, const float* transforms, int64_t num_transforms, int64_t out_h,
               int64_t out_w, float fill_value_f, bool bilinear, FillMode mode) {
  const Shape& s = images.shape();
  const int64_t n = s[0], h = s[1], w = s[2], c = s[3];
  const T* in = images.data<T>();
  T* out = ctx.AllocateOutput(0, images.dtype(), {n, out_h, out_w, c}).template data<T>();
  const T fill = FromF<T>(fill_value_f);
  auto read = [&](int64_t b, int64_t y, int64_t x, int64_t ch) -> T {
    return (0 <= y && y < h && 0 <= x && x < w) ? in[((b * h + y) * w + x) * c + ch] : fill;
  };
  for (int64_t b = 0; b < n; ++b) {
    const float* t = transforms + (num_transforms == 1 ? 0 : 8 * b);
    for (int64_t oy = 0; oy < out_h; ++oy)
      for (int64_t ox = 0; ox < out_w; ++ox) {
        T* o = out + ((b * out_h + oy) * out_w + ox) * c;
        const float fx = static_cast<float>(ox), fy = static_cast<float>(oy);
        const float projection = t[6] * fx + t[7] * fy + 1.0f;
        if (projection == 0) {  // a point at infinity: outside the image
          std::fill(o, o + c, fill);
          continue;
        }
        const float x = MapCoordinate((t[0] * fx + t[1] * fy + t[2]) / projection, w, mode);
        const float y = MapCoordinate((t[3] * fx + t[4] * fy + t[5]) / projection, h, mode);
        // Coordinates outside the image (only CONSTANT leaves them there) read the fill value for
        // each pixel they touch; bilinear blends it with the pixels inside. A NaN coordinate (a
        // NaN transform) has no pixel: the fill value.
        if (std::isnan(x) || std::isnan(y)) {
          std::fill(o, o + c, fill);
          continue;
        }
        if (!bilinear) {
          const int64_t iy = Trunc64(std::round(y)), ix = Trunc64(std::round(x));
          for (int64_t ch = 0; ch < c; ++ch) o[ch] = read(b, iy, ix, ch);
          continue;
        }
        const float y0 = std::floor(y), x0 = std::floor(x);
        const float y1 = y0 + 1, x1 = x0 + 1;
        const int64_t iy0 = Trunc64(y0), ix0 = Trunc64(x0), iy1 = Trunc64(y1), ix1 = Trunc64(x1);
        for (int64_t ch = 0; ch < c; ++ch) {
          const float top = (x1 - x) * ToF(read(b, iy0, ix0, ch)) + (x - x0) * ToF(read(b, iy0, ix1, ch));
          const float bottom = (x1 - x) * ToF(read(b, iy1, ix0, ch)) + (x - x0) * ToF(read(b, iy1, ix1, ch));
          o[ch] = FromF<T>((y1 - y) * top + (y - y0) * bottom);
        }
      }
  }
}

// ---- ImageProjectiveTransform(images [N,H,W,C], transforms [1|N, 8], output_shape [2] int32,
//      fill_value float32 scalar) attrs interpolation, fill_mode -> [N, out_h, out_w, C] ----
// Output pixel (x, y) of image b samples the input at ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k),
// k = c0 x + c1 y + 1, from that image's row of transforms [a0 a1 a2 b0 b1 b2 c0 c1].
void ImageProjectiveTransformKernel(KernelContext& ctx) {
  const Tensor& images = ctx.input(0);
  const Tensor& transforms = ctx.input(1);
  const Tensor& output_shape = ctx.input(2);
  const Tensor& fill_value = ctx.input(3);
  if (images.rank() != 4)
    ctx.Fail(fmt::format("Input images must have rank 4, got shape {}", ShapeToString(images.shape())));
  if (transforms.dtype() != DType::kFloat32 || transforms.rank() != 2 || transforms.shape()[1] != 8 ||
      (transforms.shape()[0] != images.shape()[0] && transforms.shape()[0] != 1))
    ctx.Fail(fmt::format("Input transform should be num_images x 8 or 1 x 8, got {} {}", DTypeName(transforms.dtype()),
                         ShapeToString(transforms.shape())));
  if (output_shape.dtype() != DType::kInt32 || output_shape.rank() != 1 || output_shape.num_elements() != 2)
    ctx.Fail(fmt::format("output shape must be an int32 vector of two elements, got {} {}",
                         DTypeName(output_shape.dtype()), ShapeToString(output_shape.shape())));
  const int64_t out_h = output_shape.data<int32_t>()[0], out_w = output_shape.data<int32_t>()[1];
  if (out_h <= 0 || out_w <= 0) ctx.Fail(fmt::format("output dimensions must be positive, got {}x{}", out_h, out_w));
  if (fill_value.dtype() != DType::kFloat32 || fill_value.rank() != 0)
    ctx.Fail(fmt::format("fill_value must be a float32 scalar, got {} {}", DTypeName(fill_value.dtype()),
                         ShapeToString(fill_value.shape())));
  const std::string& interp = ctx.attrs().Str("interpolation");
  const std::string& mode_s = ctx.attrs().Str("fill_mode");
  const FillMode mode = mode_s == "REFLECT"   ? FillMode::kReflect
                        : mode_s == "WRAP"    ? FillMode::kWrap
                        : mode_s == "NEAREST" ? FillMode::kNearest
                                              : FillMode::kConstant;
  const float fv = fill_value.data<float>()[0];
  const bool bilinear = interp == "BILINEAR";
  const float* t = transforms.data<float>();
  const int64_t nt = transforms.shape()[0];
  const DType dt = images.dtype();
  if (dt == DType::kUInt8) return Transform<uint8_t>(ctx, images, t, nt, out_h, out_w, fv, bilinear, mode);
  if (dt == DType::kInt32) return Transform<int32_t>(ctx, images, t, nt, out_h, out_w, fv, bilinear, mode);
  if (dt == DType::kInt64) return Transform<int64_t>(ctx, images, t, nt, out_h, out_w, fv, bilinear, mode);
  DispatchFloat(dt, ctx.node().op,
                [&]<typename T>() { Transform<T>(ctx, images, t, nt, out_h, out_w, fv, bilinear, mode); });
}
KILN_REFERENCE_KERNEL("ImageProjectiveTransform", ImageProjectiveTransformKernel);

}  // namespace
}  // namespace kiln::reference
