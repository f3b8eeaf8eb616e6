// Shared window helpers of the nn-family reference kernels. The kernels live in nn_conv.cc,
// nn_pool.cc, nn_matmul.cc, nn_einsum.cc, nn_norm.cc and nn_image.cc.
#include <fmt/format.h>

#include "backend/reference/kernel.h"
#include "backend/reference/nn_common.h"
#include "ir/ops/nn_util.h"

namespace kiln::reference {

namespace nn {

std::string ShapeStr(const Shape& s) { return ShapeToString(s); }

WindowAttrs ReadWindowAttrs(const KernelContext& ctx, int spatial) {
  const ir::AttrMap& a = ctx.attrs();
  WindowAttrs w;
  const std::string format = a.GetOr<std::string>("data_format", spatial == 3 ? "NDHWC" : "NHWC");
  if (!ir::nn::ChannelsLast(format, &w.channels_last) || static_cast<int>(format.size()) != spatial + 2)
    ctx.Fail(fmt::format("unsupported data_format '{}' for {} spatial dims", format, spatial));
  const std::vector<int64_t> ones(static_cast<size_t>(spatial), 1);
  w.strides = a.GetOr<std::vector<int64_t>>("strides", ones);
  w.dilations = a.GetOr<std::vector<int64_t>>("dilations", ones);
  w.padding = a.GetOr<std::string>("padding", "VALID");
  w.pads = a.GetOr<std::vector<int64_t>>("pads", std::vector<int64_t>(static_cast<size_t>(2 * spatial), 0));
  if (static_cast<int>(w.strides.size()) != spatial || static_cast<int>(w.dilations.size()) != spatial)
    ctx.Fail(fmt::format("expected {} strides and dilations, got [{}] and [{}]", spatial, fmt::join(w.strides, ","),
                         fmt::join(w.dilations, ",")));
  return w;
}

WindowGeom BuildWindow(const KernelContext& ctx, const WindowAttrs& w, const std::vector<int64_t>& in,
                       const std::vector<int64_t>& kernel) {
  const size_t S = in.size();
  ir::nn::Padding padding;
  if (!ir::nn::ParsePadding(w.padding, &padding)) ctx.Fail(fmt::format("unknown padding '{}'", w.padding));
  if (padding == ir::nn::Padding::kExplicit && w.pads.size() != 2 * S)
    ctx.Fail(fmt::format("EXPLICIT padding needs {} pads, got [{}]", 2 * S, fmt::join(w.pads, ",")));
  WindowGeom g;
  g.in = in;
  g.kernel = kernel;
  g.stride = w.strides;
  g.dilation = w.dilations;
  g.out.resize(S);
  g.pad_before.resize(S);
  for (size_t d = 0; d < S; ++d) {
    ir::nn::WindowDim wd;
    std::string err;
    const int64_t pb = padding == ir::nn::Padding::kExplicit ? w.pads[2 * d] : 0;
    const int64_t pe = padding == ir::nn::Padding::kExplicit ? w.pads[2 * d + 1] : 0;
    if (!ir::nn::ComputeWindow(in[d], kernel[d], w.strides[d], w.dilations[d], padding, pb, pe, &wd, &err))
      ctx.Fail(fmt::format("spatial dim {}: {}", d, err));
    g.out[d] = wd.out;
    g.pad_before[d] = wd.pad_before;
    g.in_pixels *= in[d];
    if (__builtin_mul_overflow(g.out_pixels, wd.out, &g.out_pixels) ||
        __builtin_mul_overflow(g.taps_per_pixel, kernel[d], &g.taps_per_pixel))
      ctx.Fail(fmt::format("spatial dim {}: the output ({} pixels) is too large", d, wd.out));
  }
  if (g.out_pixels == 0) return g;  // nothing to compute (and no tables to build)
  // The tap table holds an index per output pixel and kernel tap: bounded like a tensor of that
  // size before anything is allocated (pads of 2^40 ask for 2^82 of them).
  int64_t taps = 0;
  if (__builtin_mul_overflow(g.out_pixels, g.taps_per_pixel, &taps) ||
      static_cast<uint64_t>(taps) > MaxTensorBytes() / sizeof(int64_t))
    throw Error(ErrorCode::kResourceExhausted,
                fmt::format("node '{}' ({}): the window's {} output pixels x {} kernel taps exceed the tensor size "
                            "limit of {} bytes",
                            ctx.node().name, ctx.node().op, g.out_pixels, g.taps_per_pixel, MaxTensorBytes()));
  // Per-dim tables (flattened): input coordinate for (output coordinate, kernel coordinate), or -1.
  std::vector<int64_t> table, table_off(S);
  for (size_t d = 0; d < S; ++d) {
    table_off[d] = static_cast<int64_t>(table.size());
    for (int64_t o = 0; o < g.out[d]; ++o)
      for (int64_t k = 0; k < kernel[d]; ++k) {
        const int64_t i = o * g.stride[d] - g.pad_before[d] + k * g.dilation[d];
        table.push_back((i >= 0 && i < in[d]) ? i : -1);
      }
  }
  g.taps.resize(static_cast<size_t>(g.out_pixels * g.taps_per_pixel));
  if (S > 8) ctx.Fail(fmt::format("at most 8 spatial dims are supported, got {}", S));
  int64_t oc[8] = {}, kc[8] = {};
  size_t idx = 0;
  for (int64_t r = 0; r < g.out_pixels; ++r) {
    std::fill(kc, kc + 8, 0);
    for (int64_t t = 0; t < g.taps_per_pixel; ++t) {
      int64_t pix = 0;
      for (size_t d = 0; d < S; ++d) {
        const int64_t i = table[static_cast<size_t>(table_off[d] + oc[d] * kernel[d] + kc[d])];
        if (i < 0) {
          pix = -1;
          break;
        }
        pix = pix * in[d] + i;
      }
      g.taps[idx++] = pix;
      for (size_t d = S; d-- > 0;) {
        if (++kc[d] < kernel[d]) break;
        kc[d] = 0;
      }
    }
    for (size_t d = S; d-- > 0;) {
      if (++oc[d] < g.out[d]) break;
      oc[d] = 0;
    }
  }
  return g;
}

}  // namespace nn

}  // namespace kiln::reference
