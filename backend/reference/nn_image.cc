// Reference kernels: ResizeBilinear, ResizeNearestNeighbor (TensorFlow's coordinate rules,
// computed in float exactly as TF's CPU kernels do), DepthToSpace, SpaceToDepth.
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "backend/reference/nn_common.h"
#include "ir/ops/nn_util.h"

namespace kiln::reference::nn {
namespace {

struct ResizeSetup {
  int64_t n, in_h, in_w, c, out_h, out_w;
  float h_scale, w_scale;
  bool align_corners, half_pixel;
};

float ResizeScale(int64_t in, int64_t out, bool align_corners) {
  return (align_corners && out > 1) ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                                    : static_cast<float>(in) / static_cast<float>(out);
}

ResizeSetup SetupResize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& size = ctx.input(1);
  ResizeSetup s;
  s.align_corners = ctx.attrs().GetOr<bool>("align_corners", false);
  s.half_pixel = ctx.attrs().GetOr<bool>("half_pixel_centers", false);
  if (s.align_corners && s.half_pixel) ctx.Fail("if half_pixel_centers is true, align_corners must be false");
  if (x.rank() != 4) ctx.Fail(fmt::format("expected 4-D images (NHWC), got {}", ShapeStr(x.shape())));
  if (!IsInteger(size.dtype()) || size.rank() != 1 || size.num_elements() != 2)
    ctx.Fail(fmt::format("size must be an integer vector of 2 elements, got {} {}", DTypeName(size.dtype()), ShapeStr(size.shape())));
  s.n = x.dim(0);
  s.in_h = x.dim(1);
  s.in_w = x.dim(2);
  s.c = x.dim(3);
  s.out_h = size.IntAt(0);
  s.out_w = size.IntAt(1);
  if (s.in_h <= 0 || s.in_w <= 0) ctx.Fail(fmt::format("input image must be of non-zero size, got {}", ShapeStr(x.shape())));
  if (s.out_h <= 0 || s.out_w <= 0) ctx.Fail(fmt::format("output size must be positive, got [{},{}]", s.out_h, s.out_w));
  s.h_scale = ResizeScale(s.in_h, s.out_h, s.align_corners);
  s.w_scale = ResizeScale(s.in_w, s.out_w, s.align_corners);
  return s;
}

struct Interp {
  int64_t lower, upper;
  float lerp;
};

std::vector<Interp> BilinearWeights(int64_t out, int64_t in, float scale, bool half_pixel) {
  std::vector<Interp> v(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) {
    const float f = half_pixel ? (static_cast<float>(i) + 0.5f) * scale - 0.5f : static_cast<float>(i) * scale;
    const float fl = std::floor(f);
    v[static_cast<size_t>(i)] = {std::max(static_cast<int64_t>(fl), int64_t{0}),
                                 std::min(static_cast<int64_t>(std::ceil(f)), in - 1), f - fl};
  }
  return v;
}

void ResizeBilinearKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const ResizeSetup s = SetupResize(ctx);
  Tensor& y = ctx.AllocateOutput(0, DType::kFloat32, {s.n, s.out_h, s.out_w, s.c});
  if (y.num_elements() == 0) return;
  float* out = y.data<float>();
  DispatchNumeric(x.dtype(), "ResizeBilinear", [&]<typename T>() {
    const T* in = x.data<T>();
    auto load = [&](int64_t i) -> float {
      if constexpr (std::is_integral_v<T>) return static_cast<float>(in[i]);
      else return static_cast<float>(ToDouble(in[i]));
    };
    if (s.out_h == s.in_h && s.out_w == s.in_w) {
      for (int64_t i = 0; i < y.num_elements(); ++i) out[i] = load(i);
      return;
    }
    const std::vector<Interp> ys = BilinearWeights(s.out_h, s.in_h, s.h_scale, s.half_pixel);
    const std::vector<Interp> xs = BilinearWeights(s.out_w, s.in_w, s.w_scale, s.half_pixel);
    for (int64_t b = 0; b < s.n; ++b)
      for (int64_t oy = 0; oy < s.out_h; ++oy) {
        const Interp& yi = ys[static_cast<size_t>(oy)];
        const int64_t top = (b * s.in_h + yi.lower) * s.in_w, bot = (b * s.in_h + yi.upper) * s.in_w;
        for (int64_t ox = 0; ox < s.out_w; ++ox) {
          const Interp& xi = xs[static_cast<size_t>(ox)];
          float* o = out + ((b * s.out_h + oy) * s.out_w + ox) * s.c;
          for (int64_t c = 0; c < s.c; ++c) {
            const float tl = load((top + xi.lower) * s.c + c), tr = load((top + xi.upper) * s.c + c);
            const float bl = load((bot + xi.lower) * s.c + c), br = load((bot + xi.upper) * s.c + c);
            const float t = tl + (tr - tl) * xi.lerp;
            const float btm = bl + (br - bl) * xi.lerp;
            o[c] = t + (btm - t) * yi.lerp;
          }
        }
      }
  });
}
KILN_REFERENCE_KERNEL("ResizeBilinear", ResizeBilinearKernel);

std::vector<int64_t> NearestIndices(int64_t out, int64_t in, float scale, bool align_corners, bool half_pixel) {
  std::vector<int64_t> v(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) {
    const float f = half_pixel ? (static_cast<float>(i) + 0.5f) * scale : static_cast<float>(i) * scale;
    int64_t k = std::min(align_corners ? static_cast<int64_t>(std::round(f)) : static_cast<int64_t>(std::floor(f)), in - 1);
    if (half_pixel) k = std::max<int64_t>(0, k);
    v[static_cast<size_t>(i)] = k;
  }
  return v;
}

void ResizeNearestKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const ResizeSetup s = SetupResize(ctx);
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), {s.n, s.out_h, s.out_w, s.c});
  if (y.num_elements() == 0) return;
  if (DTypeSize(x.dtype()) == 0) ctx.Fail(fmt::format("dtype {} is not supported", DTypeName(x.dtype())));
  const std::vector<int64_t> ys = NearestIndices(s.out_h, s.in_h, s.h_scale, s.align_corners, s.half_pixel);
  const std::vector<int64_t> xs = NearestIndices(s.out_w, s.in_w, s.w_scale, s.align_corners, s.half_pixel);
  const size_t row = static_cast<size_t>(s.c) * DTypeSize(x.dtype());
  const char* in = static_cast<const char*>(x.raw_data());
  char* out = static_cast<char*>(y.raw_data());
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t oy = 0; oy < s.out_h; ++oy)
      for (int64_t ox = 0; ox < s.out_w; ++ox) {
        const int64_t src = (b * s.in_h + ys[static_cast<size_t>(oy)]) * s.in_w + xs[static_cast<size_t>(ox)];
        const int64_t dst = (b * s.out_h + oy) * s.out_w + ox;
        std::memcpy(out + static_cast<size_t>(dst) * row, in + static_cast<size_t>(src) * row, row);
      }
}
KILN_REFERENCE_KERNEL("ResizeNearestNeighbor", ResizeNearestKernel);

// DepthToSpace (kD2S) and SpaceToDepth: with depth index (i*bs + j)*C_small + c.
template <bool kD2S>
void DepthSpaceKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t bs = ctx.attrs().Int("block_size");
  bool channels_last = true;
  const std::string format = ctx.attrs().GetOr<std::string>("data_format", "NHWC");
  if (format == "NCHW") channels_last = false;
  else if (format != "NHWC") ctx.Fail(fmt::format("unsupported data_format '{}'", format));
  if (bs < 2) ctx.Fail(fmt::format("block_size must be at least 2, got {}", bs));
  if (bs > ir::nn::kMaxBlockSize) ctx.Fail(fmt::format("block_size {} is larger than {}", bs, ir::nn::kMaxBlockSize));
  if (x.rank() != 4) ctx.Fail(fmt::format("expected a 4-D input, got {}", ShapeStr(x.shape())));
  const int ca = channels_last ? 3 : 1, ha = channels_last ? 1 : 2, wa = ha + 1;
  const int64_t N = x.dim(0);
  // "big" = the spatial-layout side, "small" = the depth side.
  int64_t H, W, Cs;  // spatial dims on the small side and the small channel count
  if (kD2S) {
    if (x.dim(ca) % (bs * bs) != 0)
      ctx.Fail(fmt::format("input depth {} of {} is not divisible by block_size^2 = {}", x.dim(ca), ShapeStr(x.shape()), bs * bs));
    H = x.dim(ha);
    W = x.dim(wa);
    Cs = x.dim(ca) / (bs * bs);
  } else {
    if (x.dim(ha) % bs != 0 || x.dim(wa) % bs != 0)
      ctx.Fail(fmt::format("spatial dims of {} are not divisible by block_size {}", ShapeStr(x.shape()), bs));
    H = x.dim(ha) / bs;
    W = x.dim(wa) / bs;
    Cs = x.dim(ca);
  }
  Shape out_shape(4);
  out_shape[0] = N;
  int64_t big_c = Cs, big_h = H, big_w = W;  // the depth side's channels, the space side's dims
  if (__builtin_mul_overflow(Cs, bs * bs, &big_c) || __builtin_mul_overflow(H, bs, &big_h) ||
      __builtin_mul_overflow(W, bs, &big_w))
    ctx.Fail(fmt::format("block_size {} makes the output of input {} overflow", bs, ShapeStr(x.shape())));
  out_shape[static_cast<size_t>(ca)] = kD2S ? Cs : big_c;
  out_shape[static_cast<size_t>(ha)] = kD2S ? big_h : H;
  out_shape[static_cast<size_t>(wa)] = kD2S ? big_w : W;
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), out_shape);
  if (y.num_elements() == 0) return;
  const int64_t Cd = Cs * bs * bs, Hs = H * bs, Ws = W * bs;
  // Linear offsets of the depth-side (h, w, d) and space-side (hs, ws, c) elements.
  auto depth_off = [&](int64_t n, int64_t h, int64_t w, int64_t d) {
    return channels_last ? ((n * H + h) * W + w) * Cd + d : ((n * Cd + d) * H + h) * W + w;
  };
  auto space_off = [&](int64_t n, int64_t h, int64_t w, int64_t c) {
    return channels_last ? ((n * Hs + h) * Ws + w) * Cs + c : ((n * Cs + c) * Hs + h) * Ws + w;
  };
  DispatchBySize(x.dtype(), "DepthToSpace", [&]<typename T>() {
    const T* in = static_cast<const T*>(x.raw_data());
    T* out = static_cast<T*>(y.raw_data());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t i = 0; i < bs; ++i)
            for (int64_t j = 0; j < bs; ++j)
              for (int64_t c = 0; c < Cs; ++c) {
                const int64_t d = depth_off(n, h, w, (i * bs + j) * Cs + c), sp = space_off(n, h * bs + i, w * bs + j, c);
                if (kD2S) out[sp] = in[d];
                else out[d] = in[sp];
              }
  });
}
KILN_REFERENCE_KERNEL("DepthToSpace", DepthSpaceKernel<true>);
KILN_REFERENCE_KERNEL("SpaceToDepth", DepthSpaceKernel<false>);

}  // namespace

}  // namespace kiln::reference::nn
