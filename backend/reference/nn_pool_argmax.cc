// Reference kernel: MaxPoolWithArgmax over 1-3 spatial dims (channels-first or -last), with
// dilations: the max of each window's in-bounds elements and where it is, as a flat index into
// the input (ONNX MaxPool's Indices, TensorFlow's MaxPoolWithArgmax).
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "backend/reference/nn_common.h"
#include "ir/ops/vision_util.h"

namespace kiln::reference::nn {
namespace {

void MaxPoolWithArgmaxKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int rank = x.rank();
  const int S = rank - 2;
  ir::vision::ArgmaxPoolSpec spec;
  if (const std::string err = ir::vision::ParseArgmaxPoolAttrs(ctx.attrs(), S, &spec); !err.empty()) ctx.Fail(err);
  const DType it = ctx.attrs().GetOr<DType>("Targmax", DType::kInt64);
  WindowAttrs w;
  w.channels_last = spec.channels_last;
  w.strides = spec.strides;
  w.dilations = spec.dilations;
  w.padding = spec.padding;
  w.pads = spec.pads;
  const int c_axis = w.channels_last ? rank - 1 : 1;
  auto spatial_axis = [&](int d) { return w.channels_last ? 1 + d : 2 + d; };
  const int64_t N = x.dim(0), C = x.dim(c_axis);
  std::vector<int64_t> in(static_cast<size_t>(S));
  for (int d = 0; d < S; ++d) in[static_cast<size_t>(d)] = x.dim(spatial_axis(d));
  const WindowGeom g = BuildWindow(ctx, w, in, spec.ksize);
  Shape out_shape = x.shape();
  for (int d = 0; d < S; ++d) out_shape[static_cast<size_t>(spatial_axis(d))] = g.out[static_cast<size_t>(d)];
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), out_shape);
  Tensor& arg = ctx.AllocateOutput(1, it, out_shape);
  if (y.num_elements() == 0) return;
  if (it == DType::kInt32 && x.num_elements() > std::numeric_limits<int32_t>::max())
    ctx.Fail(fmt::format("the input {} has more elements than int32 argmax values can address", ShapeStr(x.shape())));
  const int64_t P = g.out_pixels, KP = g.taps_per_pixel, IP = g.in_pixels;

  // Row-major pixel index -> the flat index the argmax reports for it.
  auto spatial_index = [&](int64_t ip) {
    if (spec.storage_order == 0) return ip;
    int64_t col = 0, scale = 1;  // column-major: the first spatial dim varies fastest
    std::vector<int64_t> coord(static_cast<size_t>(S));
    for (int d = S - 1; d >= 0; --d) {
      coord[static_cast<size_t>(d)] = ip % in[static_cast<size_t>(d)];
      ip /= in[static_cast<size_t>(d)];
    }
    for (int d = 0; d < S; ++d) {
      col += coord[static_cast<size_t>(d)] * scale;
      scale *= in[static_cast<size_t>(d)];
    }
    return col;
  };
  std::vector<int64_t> index(static_cast<size_t>(y.num_elements()));
  // Floating types compare in double; integers in their own type (uint64 does not fit int64).
  auto run = [&]<typename V>(const V* xs, V lowest, auto store) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < P; ++r) {
          V best = lowest;
          int64_t best_ip = -1;
          for (int64_t t = 0; t < KP; ++t) {
            const int64_t ip = g.taps[static_cast<size_t>(r * KP + t)];
            if (ip < 0) continue;
            const V v = xs[w.channels_last ? (n * IP + ip) * C + c : (n * C + c) * IP + ip];
            // The first largest element wins; a NaN wins over numbers (as the IR MaxPool).
            bool better = best_ip < 0 || v > best;
            if constexpr (std::is_floating_point_v<V>) better = better || (std::isnan(v) && !std::isnan(best));
            if (better) {
              best = v;
              best_ip = ip;
            }
          }
          const int64_t o = w.channels_last ? (n * P + r) * C + c : (n * C + c) * P + r;
          store(o, best);
          if (best_ip < 0) {
            index[static_cast<size_t>(o)] = -1;  // the window lies entirely in the padding
          } else if (w.channels_last) {
            index[static_cast<size_t>(o)] = ((spec.include_batch_in_index ? n * IP : 0) + best_ip) * C + c;
          } else {
            index[static_cast<size_t>(o)] =
                ((spec.include_batch_in_index ? n * C : 0) + c) * IP + spatial_index(best_ip);
          }
        }
  };
  if (IsFloating(x.dtype())) {
    const std::vector<double> xs = LoadAs<double>(x, "MaxPoolWithArgmax");
    std::vector<double> out(static_cast<size_t>(y.num_elements()));
    run(xs.data(), -std::numeric_limits<double>::infinity(),
        [&](int64_t o, double v) { out[static_cast<size_t>(o)] = v; });
    StoreFrom(out.data(), y, "MaxPoolWithArgmax");
  } else {
    DispatchInteger(x.dtype(), "MaxPoolWithArgmax", [&]<typename T>() {
      T* out = y.data<T>();
      run(x.data<T>(), std::numeric_limits<T>::lowest(), [&](int64_t o, T v) { out[o] = v; });
    });
  }
  StoreFrom(index.data(), arg, "MaxPoolWithArgmax");
}
KILN_REFERENCE_KERNEL("MaxPoolWithArgmax", MaxPoolWithArgmaxKernel);

}  // namespace
}  // namespace kiln::reference::nn
