// Reference kernels: Conv2D, Conv3D, DepthwiseConv2D (im2col + packed GEMM in double, or a
// direct loop for one input channel per group), Conv2DBackpropInput, Conv3DBackpropInput
// (GEMM + col2im scatter in double).
#include <fmt/format.h>

#include "backend/reference/nn_common.h"

namespace kiln::reference::nn {
namespace {

// Rows of the im2col buffer processed per GEMM call (bounded by the buffer size).
int64_t RowBlock(int64_t k) {
  int64_t rb = (int64_t{1} << 18) / std::max<int64_t>(k, 1);
  rb = std::clamp<int64_t>(rb, 4, 512);
  return rb - rb % 4;
}

template <int kSpatial, bool kDepthwise>
void ConvKernel(KernelContext& ctx) {
  constexpr int rank = kSpatial + 2;
  const Tensor& x = ctx.input(0);
  const Tensor& f = ctx.input(1);
  if (x.rank() != rank || f.rank() != rank)
    ctx.Fail(fmt::format("expected input and filter of rank {}, got {} and {}", rank, ShapeStr(x.shape()), ShapeStr(f.shape())));
  if (x.dtype() != f.dtype())
    ctx.Fail(fmt::format("input and filter dtypes differ: {} vs {}", DTypeName(x.dtype()), DTypeName(f.dtype())));
  const WindowAttrs w = ReadWindowAttrs(ctx, kSpatial);
  const int c_axis = w.channels_last ? rank - 1 : 1;
  const int64_t N = x.dim(0), C = x.dim(c_axis);
  std::vector<int64_t> in(kSpatial), kernel(kSpatial);
  for (int d = 0; d < kSpatial; ++d) {
    in[static_cast<size_t>(d)] = x.dim(w.channels_last ? 1 + d : 2 + d);
    kernel[static_cast<size_t>(d)] = f.dim(d);
  }
  const int64_t f_in = f.dim(kSpatial), f_out = f.dim(kSpatial + 1);
  int64_t groups, gI, O;
  if (kDepthwise) {
    // Filter [k..., C, M]: the same memory as a grouped HWIO filter [k..., 1, C*M].
    if (f_in != C)
      ctx.Fail(fmt::format("input {} has {} channels but the depthwise filter {} expects {}", ShapeStr(x.shape()), C,
                           ShapeStr(f.shape()), f_in));
    groups = C;
    gI = 1;
    O = C * f_out;
  } else {
    if (f_in <= 0 || C % f_in != 0)
      ctx.Fail(fmt::format("input {} has {} channels, which is not a multiple of the filter {}'s input channels {}",
                           ShapeStr(x.shape()), C, ShapeStr(f.shape()), f_in));
    groups = C / f_in;
    gI = f_in;
    O = f_out;
    if (O % groups != 0)
      ctx.Fail(fmt::format("filter {} output channels {} are not a multiple of the group count {}", ShapeStr(f.shape()), O, groups));
  }
  const bool has_bias = ctx.num_inputs() > 2;
  if (has_bias && (ctx.input(2).rank() != 1 || ctx.input(2).dim(0) != O))
    ctx.Fail(fmt::format("expected a bias of shape [{}], got {}", O, ShapeStr(ctx.input(2).shape())));
  const WindowGeom g = BuildWindow(ctx, w, in, kernel);

  Shape out_shape(rank);
  out_shape[0] = N;
  out_shape[static_cast<size_t>(c_axis)] = O;
  for (int d = 0; d < kSpatial; ++d) out_shape[static_cast<size_t>(w.channels_last ? 1 + d : 2 + d)] = g.out[static_cast<size_t>(d)];
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), out_shape);
  if (y.num_elements() == 0) return;

  DispatchFloat(x.dtype(), "Conv", [&]<typename T>() {
    std::vector<double> xs = LoadAs<double>(x, "Conv");
    if (!w.channels_last) xs = ChannelsFirstToLast(xs, N, C, g.in_pixels);
    const std::vector<double> ws = LoadAs<double>(f, "Conv");  // [taps, gI, O]
    const int64_t P = g.out_pixels, KP = g.taps_per_pixel, Og = O / groups;
    std::vector<double> out(static_cast<size_t>(N * P * O), 0.0);

    if (gI == 1 && groups > 1) {
      // One input channel per group (depthwise): out[c*Og + m] += x[c] * w[tap, c*Og + m].
      std::vector<double> acc(static_cast<size_t>(O));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t r = 0; r < P; ++r) {
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t t = 0; t < KP; ++t) {
            const int64_t ip = g.taps[static_cast<size_t>(r * KP + t)];
            if (ip < 0) continue;
            const double* xr = xs.data() + (n * g.in_pixels + ip) * C;
            const double* wr = ws.data() + t * O;
            if (Og == 1) {
              for (int64_t c = 0; c < C; ++c) acc[static_cast<size_t>(c)] += xr[c] * wr[c];
            } else {
              for (int64_t c = 0; c < C; ++c)
                for (int64_t m = 0; m < Og; ++m) acc[static_cast<size_t>(c * Og + m)] += xr[c] * wr[c * Og + m];
            }
          }
          std::copy(acc.begin(), acc.end(), out.begin() + (n * P + r) * O);
        }
    } else {
      const int64_t Kd = KP * gI;
      bool pointwise = groups == 1 && KP == 1 && P == g.in_pixels;
      for (size_t d = 0; d < static_cast<size_t>(kSpatial); ++d)
        pointwise = pointwise && g.stride[d] == 1 && g.pad_before[d] == 0;
      const int64_t RB = RowBlock(Kd);
      const int64_t blocks = (P + RB - 1) / RB;
      for (int64_t grp = 0; grp < groups; ++grp) {
        const PackedB<double> pb = PackB(ws.data() + grp * Og, Kd, Og, O, false);
        // Blocks of output rows are independent (each written by one thread, in one order), so
        // the result does not depend on the thread count. Calibration runs whole networks here.
#if defined(_OPENMP)
#pragma omp parallel for collapse(2) schedule(dynamic) if (N * blocks > 1 && N * P * Kd * Og > (int64_t{1} << 20))
#endif
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t b = 0; b < blocks; ++b) {
            const int64_t r0 = b * RB, rows = std::min(RB, P - r0);
            double* on = out.data() + n * P * O + grp * Og;
            if (pointwise) {
              Gemm(rows, xs.data() + (n * g.in_pixels + r0) * C, C, pb, on + r0 * O, O);
              continue;
            }
            thread_local std::vector<double> col;
            col.resize(static_cast<size_t>(RB * Kd));
            for (int64_t rr = 0; rr < rows; ++rr) {
              const int64_t* taps = g.taps.data() + (r0 + rr) * KP;
              double* dst = col.data() + rr * Kd;
              for (int64_t t = 0; t < KP; ++t, dst += gI) {
                if (taps[t] < 0) {
                  std::fill(dst, dst + gI, 0.0);
                } else {
                  const double* src = xs.data() + (n * g.in_pixels + taps[t]) * C + grp * gI;
                  std::copy(src, src + gI, dst);
                }
              }
            }
            Gemm(rows, col.data(), Kd, pb, on + r0 * O, O);
          }
        }
      }
    }
    if (has_bias) {
      const std::vector<double> bias = LoadAs<double>(ctx.input(2), "Conv bias");
      for (int64_t i = 0; i < N * P; ++i)
        for (int64_t o = 0; o < O; ++o) out[static_cast<size_t>(i * O + o)] += bias[static_cast<size_t>(o)];
    }
    if (!w.channels_last) out = ChannelsLastToFirst(out, N, O, P);
    StoreFrom(out.data(), y, "Conv");
  });
}
KILN_REFERENCE_KERNEL("Conv2D", ConvKernel<2, false>);
KILN_REFERENCE_KERNEL("Conv3D", ConvKernel<3, false>);
KILN_REFERENCE_KERNEL("DepthwiseConv2D", ConvKernel<2, true>);

// Gradient of a convolution with respect to its input (transposed convolution).
template <int kSpatial>
void ConvBackpropInputKernel(KernelContext& ctx) {
  constexpr int rank = kSpatial + 2;
  const Tensor& sizes = ctx.input(0);
  const Tensor& f = ctx.input(1);
  const Tensor& dy = ctx.input(2);
  if (f.rank() != rank || dy.rank() != rank)
    ctx.Fail(fmt::format("expected filter and out_backprop of rank {}, got {} and {}", rank, ShapeStr(f.shape()), ShapeStr(dy.shape())));
  if (f.dtype() != dy.dtype())
    ctx.Fail(fmt::format("filter and out_backprop dtypes differ: {} vs {}", DTypeName(f.dtype()), DTypeName(dy.dtype())));
  if (!IsInteger(sizes.dtype()) || sizes.rank() != 1)
    ctx.Fail(fmt::format("input_sizes must be an integer vector, got {} {}", DTypeName(sizes.dtype()), ShapeStr(sizes.shape())));
  const WindowAttrs w = ReadWindowAttrs(ctx, kSpatial);
  const int c_axis = w.channels_last ? rank - 1 : 1;
  auto spatial_axis = [&](int d) { return w.channels_last ? 1 + d : 2 + d; };
  const std::vector<int64_t> sv = sizes.ToInt64Vector();
  Shape x_shape(rank);
  if (static_cast<int>(sv.size()) == rank) {
    x_shape = sv;
  } else if (static_cast<int>(sv.size()) == kSpatial) {
    x_shape[0] = dy.dim(0);
    x_shape[static_cast<size_t>(c_axis)] = f.dim(kSpatial);
    for (int d = 0; d < kSpatial; ++d) x_shape[static_cast<size_t>(spatial_axis(d))] = sv[static_cast<size_t>(d)];
  } else {
    ctx.Fail(fmt::format("input_sizes must have {} or {} elements, got {}", rank, kSpatial, sizes.num_elements()));
  }
  for (int64_t d : x_shape)
    if (d < 0) ctx.Fail(fmt::format("input_sizes must be non-negative, got {}", ShapeStr(x_shape)));
  const int64_t N = x_shape[0], C = x_shape[static_cast<size_t>(c_axis)], O = f.dim(kSpatial + 1);
  std::vector<int64_t> in(kSpatial), kernel(kSpatial);
  for (int d = 0; d < kSpatial; ++d) {
    in[static_cast<size_t>(d)] = x_shape[static_cast<size_t>(spatial_axis(d))];
    kernel[static_cast<size_t>(d)] = f.dim(d);
  }
  if (f.dim(kSpatial) != C)
    ctx.Fail(fmt::format("input_sizes {} has {} channels but the filter {} has {} input channels (grouped transposed "
                         "convolution is not supported)", ShapeStr(x_shape), C, ShapeStr(f.shape()), f.dim(kSpatial)));
  const WindowGeom g = BuildWindow(ctx, w, in, kernel);
  Shape expected(rank);
  expected[0] = N;
  expected[static_cast<size_t>(c_axis)] = O;
  for (int d = 0; d < kSpatial; ++d) expected[static_cast<size_t>(spatial_axis(d))] = g.out[static_cast<size_t>(d)];
  if (expected != dy.shape())
    ctx.Fail(fmt::format("out_backprop must have shape {} for input_sizes {} and filter {}, got {}", ShapeStr(expected),
                         ShapeStr(x_shape), ShapeStr(f.shape()), ShapeStr(dy.shape())));
  Tensor& y = ctx.AllocateOutput(0, dy.dtype(), x_shape);
  if (y.num_elements() == 0) return;

  DispatchFloat(dy.dtype(), "ConvBackpropInput", [&]<typename T>() {
    std::vector<double> dys = LoadAs<double>(dy, "ConvBackpropInput");
    if (!w.channels_last) dys = ChannelsFirstToLast(dys, N, O, g.out_pixels);
    const std::vector<double> ws = LoadAs<double>(f, "ConvBackpropInput");  // [taps, C, O]
    const int64_t P = g.out_pixels, KP = g.taps_per_pixel, Kd = KP * C;
    // colgrad[r, (t, c)] = sum_o dy[r, o] * w[t, c, o]
    const PackedB<double> pb = PackB(ws.data(), O, Kd, O, true);
    std::vector<double> res(static_cast<size_t>(N * g.in_pixels * C), 0.0);
    const int64_t RB = RowBlock(Kd);
    std::vector<double> col(static_cast<size_t>(RB * Kd));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t r0 = 0; r0 < P; r0 += RB) {
        const int64_t rows = std::min(RB, P - r0);
        std::fill(col.begin(), col.begin() + rows * Kd, 0.0);
        Gemm(rows, dys.data() + (n * P + r0) * O, O, pb, col.data(), Kd);
        for (int64_t rr = 0; rr < rows; ++rr) {
          const int64_t* taps = g.taps.data() + (r0 + rr) * KP;
          const double* src = col.data() + rr * Kd;
          for (int64_t t = 0; t < KP; ++t, src += C) {
            if (taps[t] < 0) continue;
            double* dst = res.data() + (n * g.in_pixels + taps[t]) * C;
            for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
          }
        }
      }
    if (!w.channels_last) res = ChannelsLastToFirst(res, N, C, g.in_pixels);
    StoreFrom(res.data(), y, "ConvBackpropInput");
  });
}
KILN_REFERENCE_KERNEL("Conv2DBackpropInput", ConvBackpropInputKernel<2>);
KILN_REFERENCE_KERNEL("Conv3DBackpropInput", ConvBackpropInputKernel<3>);

}  // namespace

}  // namespace kiln::reference::nn
