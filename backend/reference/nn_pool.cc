// Reference kernels: MaxPool and AvgPool over 1-3 spatial dims (channels-last or -first).
#include <limits>

#include <fmt/format.h>

#include "backend/reference/nn_common.h"

namespace kiln::reference::nn {
namespace {

template <bool kMax>
void PoolKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int rank = x.rank();
  const int S = rank - 2;
  if (S < 1 || S > 3) ctx.Fail(fmt::format("expected an input of rank 3 to 5, got {}", ShapeStr(x.shape())));
  WindowAttrs w = ReadWindowAttrs(ctx, S);
  w.dilations.assign(static_cast<size_t>(S), 1);
  const int c_axis = w.channels_last ? rank - 1 : 1;
  auto spatial_axis = [&](int d) { return w.channels_last ? 1 + d : 2 + d; };
  std::vector<int64_t> ksize;
  if (ctx.num_inputs() == 3) {
    // MaxPoolV2 form: full-rank ksize/strides tensors in the data format's order.
    const std::vector<int64_t> kv = ctx.input(1).ToInt64Vector(), sv = ctx.input(2).ToInt64Vector();
    if (static_cast<int>(kv.size()) != rank || static_cast<int>(sv.size()) != rank)
      ctx.Fail(fmt::format("ksize and strides must have {} elements, got [{}] and [{}]", rank, fmt::join(kv, ","), fmt::join(sv, ",")));
    if (kv[0] != 1 || sv[0] != 1 || kv[static_cast<size_t>(c_axis)] != 1 || sv[static_cast<size_t>(c_axis)] != 1)
      ctx.Fail(fmt::format("pooling over the batch or channel dims is not supported: ksize [{}], strides [{}]",
                           fmt::join(kv, ","), fmt::join(sv, ",")));
    w.strides.clear();
    for (int d = 0; d < S; ++d) {
      ksize.push_back(kv[static_cast<size_t>(spatial_axis(d))]);
      w.strides.push_back(sv[static_cast<size_t>(spatial_axis(d))]);
    }
  } else {
    ksize = ctx.attrs().Ints("ksize");
  }
  if (static_cast<int>(ksize.size()) != S) ctx.Fail(fmt::format("expected {} ksize values, got [{}]", S, fmt::join(ksize, ",")));
  for (int64_t k : ksize)
    if (k <= 0) ctx.Fail(fmt::format("ksize must be positive, got [{}]", fmt::join(ksize, ",")));
  const int64_t N = x.dim(0), C = x.dim(c_axis);
  std::vector<int64_t> in(static_cast<size_t>(S));
  for (int d = 0; d < S; ++d) in[static_cast<size_t>(d)] = x.dim(spatial_axis(d));
  const WindowGeom g = BuildWindow(ctx, w, in, ksize);
  Shape out_shape = x.shape();
  for (int d = 0; d < S; ++d) out_shape[static_cast<size_t>(spatial_axis(d))] = g.out[static_cast<size_t>(d)];
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), out_shape);
  if (y.num_elements() == 0) return;
  const int64_t P = g.out_pixels, KP = g.taps_per_pixel;

  // Identity of max: -inf for floats, the input dtype's lowest value for integers.
  int64_t int_lowest = 0;
  if (IsInteger(x.dtype()))
    DispatchInteger(x.dtype(), "MaxPool", [&]<typename T>() { int_lowest = static_cast<int64_t>(std::numeric_limits<T>::lowest()); });
  auto run = [&]<typename V>(std::vector<V> xs) {
    if (!w.channels_last) xs = ChannelsFirstToLast(xs, N, C, g.in_pixels);
    std::vector<V> out(static_cast<size_t>(N * P * C));
    std::vector<V> acc(static_cast<size_t>(C));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t r = 0; r < P; ++r) {
        if constexpr (kMax) {
          std::fill(acc.begin(), acc.end(), std::numeric_limits<V>::has_infinity ? -std::numeric_limits<V>::infinity()
                                                                                   : static_cast<V>(int_lowest));
        } else {
          std::fill(acc.begin(), acc.end(), V(0));
        }
        int64_t count = 0;
        for (int64_t t = 0; t < KP; ++t) {
          const int64_t ip = g.taps[static_cast<size_t>(r * KP + t)];
          if (ip < 0) continue;
          ++count;
          const V* xr = xs.data() + (n * g.in_pixels + ip) * C;
          for (int64_t c = 0; c < C; ++c) {
            if constexpr (kMax) {
              // NaN propagates like TensorFlow's max reduction.
              if (xr[c] > acc[static_cast<size_t>(c)] || xr[c] != xr[c]) acc[static_cast<size_t>(c)] = xr[c];
            } else {
              acc[static_cast<size_t>(c)] += xr[c];
            }
          }
        }
        V* o = out.data() + (n * P + r) * C;
        for (int64_t c = 0; c < C; ++c) {
          if constexpr (kMax) o[c] = acc[static_cast<size_t>(c)];
          else o[c] = count > 0 ? acc[static_cast<size_t>(c)] / static_cast<V>(count) : V(0);
        }
      }
    if (!w.channels_last) out = ChannelsLastToFirst(out, N, C, P);
    StoreFrom(out.data(), y, "Pool");
  };
  if (IsFloating(x.dtype())) {
    run.template operator()<double>(LoadAs<double>(x, "Pool"));
  } else if (kMax && IsInteger(x.dtype())) {
    run.template operator()<int64_t>(LoadAs<int64_t>(x, "MaxPool"));
  } else {
    ctx.Fail(fmt::format("dtype {} is not supported", DTypeName(x.dtype())));
  }
}
KILN_REFERENCE_KERNEL("MaxPool", PoolKernel<true>);
KILN_REFERENCE_KERNEL("AvgPool", PoolKernel<false>);

}  // namespace

}  // namespace kiln::reference::nn
