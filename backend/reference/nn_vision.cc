// Reference kernels: GridSample (N-D, linear / nearest / cubic, zeros / border / reflection
// padding) and RoiAlign (avg / max, half_pixel / output_half_pixel), as ONNX's operator
// documentation and reference implementation define them (onnx/reference/ops/op_grid_sample.py,
// op_roi_align.py); computed in double. Attribute parsing is shared with the shape functions
// (ir/ops/vision_util.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "backend/reference/nn_common.h"
#include "ir/ops/vision_util.h"

namespace kiln::reference::nn {
namespace {

using ir::vision::GridMode;
using ir::vision::GridPadding;

// Every element of a numeric or bool tensor as double.
std::vector<double> LoadValues(const Tensor& t, const char* what) {
  if (t.dtype() != DType::kBool) return LoadAs<double>(t, what);
  std::vector<double> out(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = t.data<bool>()[i] ? 1 : 0;
  return out;
}

// Stores doubles into a numeric or bool tensor: floats rounded to the type, integers truncated
// toward zero and saturated (NaN gives 0), bools true for anything but 0.
void StoreValues(const std::vector<double>& v, Tensor& t, const char* what) {
  if (t.dtype() == DType::kBool) {
    for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i] != 0;
    return;
  }
  DispatchNumeric(t.dtype(), what, [&]<typename T>() {
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) {
      if constexpr (std::is_integral_v<T>) {
        const double x = std::trunc(v[i]);
        if (!(x == x))
          p[i] = T(0);
        else if (x <= static_cast<double>(std::numeric_limits<T>::lowest()))
          p[i] = std::numeric_limits<T>::lowest();
        else if (x >= static_cast<double>(std::numeric_limits<T>::max()))
          p[i] = std::numeric_limits<T>::max();
        else
          p[i] = static_cast<T>(x);
      } else {
        p[i] = FromDouble<T>(v[i]);
      }
    }
  });
}

// Keys' cubic convolution weights (a = -0.75) of the taps at -1, 0, 1, 2 around a point t in [0, 1).
void CubicWeights(double t, double w[4]) {
  constexpr double a = -0.75;
  auto near = [](double x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };       // |x| <= 1
  auto far = [](double x) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; };  // 1 < |x| < 2
  w[0] = far(t + 1);
  w[1] = near(t);
  w[2] = near(1 - t);
  w[3] = far(2 - t);
}

// One axis of one sampling point: up to 4 (input index, weight) taps; index -1 reads 0.
struct AxisTaps {
  int n = 0;
  int64_t index[4];
  double weight[4];
};

void GridSampleKernel(KernelContext& ctx) {
  ir::vision::GridSampleSpec spec;
  if (const std::string err = ir::vision::ParseGridSampleAttrs(ctx.attrs(), &spec); !err.empty()) ctx.Fail(err);
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  const int r = x.rank() - 2;
  if (r < 1 || r > ir::vision::kMaxGridSampleDims)
    ctx.Fail(fmt::format("X must be [N, C, D1, ...] with 1 to {} spatial dims, got {}", ir::vision::kMaxGridSampleDims,
                         ShapeStr(x.shape())));
  if (grid.rank() != r + 2 || grid.dim(0) != x.dim(0) || grid.dim(r + 1) != r)
    ctx.Fail(fmt::format("grid must be [{}, D1_out, ..., D{}_out, {}] for X {}, got {}", x.dim(0), r, r,
                         ShapeStr(x.shape()), ShapeStr(grid.shape())));
  const int64_t N = x.dim(0), C = x.dim(1);
  Shape out_shape = {N, C};
  for (int i = 1; i <= r; ++i) out_shape.push_back(grid.dim(i));
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), out_shape);
  if (y.num_elements() == 0) return;
  std::vector<int64_t> in(static_cast<size_t>(r));
  int64_t in_pixels = 1, out_pixels = 1;
  bool empty_input = false;
  for (int i = 0; i < r; ++i) {
    in[static_cast<size_t>(i)] = x.dim(2 + i);
    in_pixels *= x.dim(2 + i);
    out_pixels *= grid.dim(1 + i);
    empty_input = empty_input || x.dim(2 + i) == 0;
  }
  if (empty_input && spec.padding != GridPadding::kZeros)
    ctx.Fail(fmt::format("X {} has an empty spatial dim: padding_mode border or reflection has no element to read",
                         ShapeStr(x.shape())));
  const std::vector<double> xs = empty_input ? std::vector<double>{} : LoadValues(x, "GridSample");
  const std::vector<double> gs = LoadAs<double>(grid, "GridSample");
  std::vector<double> ys(static_cast<size_t>(y.num_elements()), 0.0);
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  // The input index an integer tap position reads, or -1 (zeros padding outside the input).
  auto source = [&](int64_t i, int64_t d, double lo, double hi) -> int64_t {
    if (i >= 0 && i < d) return i;
    if (spec.padding == GridPadding::kZeros) return -1;
    if (spec.padding == GridPadding::kBorder) return i < 0 ? 0 : d - 1;
    const double reflected = ir::vision::GridReflect(static_cast<double>(i), lo, hi);
    return std::clamp<int64_t>(static_cast<int64_t>(reflected), 0, d - 1);
  };

  std::vector<AxisTaps> taps(static_cast<size_t>(r));
  std::vector<int64_t> offsets, next_off;
  std::vector<double> weights, next_w;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < out_pixels; ++p) {
      const double* g = gs.data() + (n * out_pixels + p) * r;
      bool nan_point = false;
      for (int i = 0; i < r && !nan_point; ++i) {
        const int64_t d = in[static_cast<size_t>(i)];
        const double lo = spec.align_corners ? 0.0 : -0.5;
        const double hi = spec.align_corners ? static_cast<double>(d) - 1 : static_cast<double>(d) - 0.5;
        // The grid lists coordinates innermost dim first.
        double c = ir::vision::GridDenormalize(g[r - 1 - i], d, spec.align_corners);
        if (spec.mode == GridMode::kNearest) c = std::nearbyint(c);  // half to even
        if (c < lo || c > hi) {
          if (spec.padding == GridPadding::kBorder)
            c = std::clamp(c, 0.0, static_cast<double>(d) - 1);
          else if (spec.padding == GridPadding::kReflection)
            c = ir::vision::GridReflect(c, lo, hi);
          else
            c = std::clamp(c, -8.0, static_cast<double>(d) + 8);  // every tap outside: reads 0
        }
        if (std::isnan(c)) {
          nan_point = true;
          break;
        }
        AxisTaps& t = taps[static_cast<size_t>(i)];
        if (spec.mode == GridMode::kNearest) {
          t.n = 1;
          t.index[0] = source(static_cast<int64_t>(c), d, lo, hi);
          t.weight[0] = 1;
          continue;
        }
        const double f = std::floor(c);
        const int64_t x0 = static_cast<int64_t>(f);
        const double frac = c - f;
        if (spec.mode == GridMode::kLinear) {
          t.n = 2;
          t.index[0] = source(x0, d, lo, hi);
          t.index[1] = source(x0 + 1, d, lo, hi);
          t.weight[0] = 1 - frac;
          t.weight[1] = frac;
        } else {
          t.n = 4;
          CubicWeights(frac, t.weight);
          for (int k = 0; k < 4; ++k) t.index[k] = source(x0 - 1 + k, d, lo, hi);
        }
      }
      double* out = ys.data() + n * C * out_pixels + p;
      if (nan_point) {
        for (int64_t c = 0; c < C; ++c) out[c * out_pixels] = kNaN;
        continue;
      }
      // The tensor product of the axes' taps: (offset in a channel's plane, weight).
      offsets.assign(1, 0);
      weights.assign(1, 1.0);
      for (int i = 0; i < r; ++i) {
        const AxisTaps& t = taps[static_cast<size_t>(i)];
        next_off.clear();
        next_w.clear();
        for (size_t j = 0; j < offsets.size(); ++j)
          for (int k = 0; k < t.n; ++k) {
            const bool outside = offsets[j] < 0 || t.index[k] < 0;
            next_off.push_back(outside ? -1 : offsets[j] * in[static_cast<size_t>(i)] + t.index[k]);
            next_w.push_back(weights[j] * t.weight[k]);
          }
        offsets.swap(next_off);
        weights.swap(next_w);
      }
      for (int64_t c = 0; c < C; ++c) {
        const double* plane = xs.data() + (n * C + c) * in_pixels;
        double acc = 0;
        for (size_t j = 0; j < offsets.size(); ++j)
          if (offsets[j] >= 0) acc += weights[j] * plane[offsets[j]];
        out[c * out_pixels] = acc;
      }
    }
  StoreValues(ys, y, "GridSample");
}
KILN_REFERENCE_KERNEL("GridSample", GridSampleKernel);

// ---- RoiAlign ----

// One sampling point of a bin: the four pixels it interpolates and their bilinear weights.
struct Sample {
  int64_t pos[4] = {0, 0, 0, 0};
  double w[4] = {0, 0, 0, 0};
};

void RoiAlignKernel(KernelContext& ctx) {
  ir::vision::RoiAlignSpec spec;
  if (const std::string err = ir::vision::ParseRoiAlignAttrs(ctx.attrs(), &spec); !err.empty()) ctx.Fail(err);
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  const Tensor& batch = ctx.input(2);
  if (x.rank() != 4) ctx.Fail(fmt::format("X must be [N, C, H, W], got {}", ShapeStr(x.shape())));
  if (rois.rank() != 2 || rois.dim(1) != 4)
    ctx.Fail(fmt::format("rois must be [num_rois, 4], got {}", ShapeStr(rois.shape())));
  if (batch.rank() != 1 || batch.dim(0) != rois.dim(0))
    ctx.Fail(fmt::format("batch_indices must be [{}] (one per roi), got {}", rois.dim(0), ShapeStr(batch.shape())));
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), R = rois.dim(0);
  const int64_t oh = spec.output_height, ow = spec.output_width;
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), {R, C, oh, ow});
  if (y.num_elements() == 0) return;
  const std::vector<double> xs = LoadAs<double>(x, "RoiAlign");
  const std::vector<double> rs = LoadAs<double>(rois, "RoiAlign");
  std::vector<double> ys(static_cast<size_t>(y.num_elements()), 0.0);
  const double offset = spec.half_pixel ? 0.5 : 0.0;
  const int64_t bins = oh * ow;  // fits: y's element count does
  std::vector<Sample> samples;
  for (int64_t roi = 0; roi < R; ++roi) {
    const int64_t b = batch.IntAt(roi);
    if (b < 0 || b >= N) ctx.Fail(fmt::format("batch_indices[{}] = {} is out of range [0, {})", roi, b, N));
    const double* box = rs.data() + roi * 4;
    for (int k = 0; k < 4; ++k)
      if (!std::isfinite(box[k]))
        ctx.Fail(
            fmt::format("roi {} has a non-finite coordinate: [{}, {}, {}, {}]", roi, box[0], box[1], box[2], box[3]));
    const double start_w = box[0] * spec.spatial_scale - offset, start_h = box[1] * spec.spatial_scale - offset;
    const double end_w = box[2] * spec.spatial_scale - offset, end_h = box[3] * spec.spatial_scale - offset;
    double roi_w = end_w - start_w, roi_h = end_h - start_h;
    if (!spec.half_pixel) {  // malformed rois become 1 x 1
      roi_w = std::max(roi_w, 1.0);
      roi_h = std::max(roi_h, 1.0);
    }
    const double bin_h = roi_h / static_cast<double>(oh), bin_w = roi_w / static_cast<double>(ow);
    const double grid_hd = spec.sampling_ratio > 0 ? static_cast<double>(spec.sampling_ratio) : std::ceil(bin_h);
    const double grid_wd = spec.sampling_ratio > 0 ? static_cast<double>(spec.sampling_ratio) : std::ceil(bin_w);
    // A grid of no points (an empty or inverted roi) pools nothing: 0, as ONNX's reference.
    if (!std::isfinite(bin_h) || !std::isfinite(bin_w) || !(grid_hd >= 1) || !(grid_wd >= 1)) continue;
    // The sampling table holds one entry per bin and grid point: bounded like a tensor before
    // it is built (a roi of 1e30 pixels would ask for 1e60).
    const double table = static_cast<double>(bins) * grid_hd * grid_wd;
    if (!(table <= static_cast<double>(MaxTensorBytes() / sizeof(Sample))))
      throw Error(ErrorCode::kResourceExhausted,
                  fmt::format("node '{}' ({}): roi {} needs {} x {} sampling points in each of {} bins, more than the "
                              "tensor size limit of {} bytes allows",
                              ctx.node().name, ctx.node().op, roi, grid_hd, grid_wd, bins, MaxTensorBytes()));
    const int64_t gh = static_cast<int64_t>(grid_hd), gw = static_cast<int64_t>(grid_wd);
    samples.assign(static_cast<size_t>(bins * gh * gw), Sample{});
    size_t si = 0;
    for (int64_t ph = 0; ph < oh; ++ph)
      for (int64_t pw = 0; pw < ow; ++pw)
        for (int64_t iy = 0; iy < gh; ++iy) {
          const double yy = start_h + static_cast<double>(ph) * bin_h +
                            (static_cast<double>(iy) + 0.5) * bin_h / static_cast<double>(gh);
          for (int64_t ix = 0; ix < gw; ++ix, ++si) {
            double xx = start_w + static_cast<double>(pw) * bin_w +
                        (static_cast<double>(ix) + 0.5) * bin_w / static_cast<double>(gw);
            double yv = yy;
            // Outside the feature map (or an empty one): weight 0.
            if (yv < -1.0 || yv > static_cast<double>(H) || xx < -1.0 || xx > static_cast<double>(W) || H == 0 ||
                W == 0)
              continue;
            yv = std::max(yv, 0.0);
            xx = std::max(xx, 0.0);
            int64_t y_low = static_cast<int64_t>(yv), x_low = static_cast<int64_t>(xx), y_high, x_high;
            if (y_low >= H - 1) {
              y_high = y_low = H - 1;
              yv = static_cast<double>(y_low);
            } else {
              y_high = y_low + 1;
            }
            if (x_low >= W - 1) {
              x_high = x_low = W - 1;
              xx = static_cast<double>(x_low);
            } else {
              x_high = x_low + 1;
            }
            const double ly = yv - static_cast<double>(y_low), lx = xx - static_cast<double>(x_low);
            const double hy = 1 - ly, hx = 1 - lx;
            Sample& s = samples[si];
            s.pos[0] = y_low * W + x_low;
            s.pos[1] = y_low * W + x_high;
            s.pos[2] = y_high * W + x_low;
            s.pos[3] = y_high * W + x_high;
            s.w[0] = hy * hx;
            s.w[1] = hy * lx;
            s.w[2] = ly * hx;
            s.w[3] = ly * lx;
          }
        }
    const int64_t per_bin = gh * gw;
    for (int64_t c = 0; c < C; ++c) {
      const double* plane = H == 0 || W == 0 ? nullptr : xs.data() + (b * C + c) * H * W;
      double* out = ys.data() + (roi * C + c) * bins;
      for (int64_t bin = 0; bin < bins; ++bin) {
        const Sample* s = samples.data() + bin * per_bin;
        double v = 0;
        for (int64_t k = 0; k < per_bin; ++k) {
          double term[4];
          for (int q = 0; q < 4; ++q) term[q] = plane ? s[k].w[q] * plane[s[k].pos[q]] : 0.0;
          if (spec.max) {
            // The largest weighted corner of each point, as ONNX's reference and onnxruntime.
            const double m = std::max({term[0], term[1], term[2], term[3]}, [](double a, double b) { return a < b; });
            v = k == 0 ? m : std::max(v, m);
          } else {
            v += term[0] + term[1] + term[2] + term[3];
          }
        }
        out[bin] = spec.max ? v : v / static_cast<double>(per_bin);
      }
    }
  }
  StoreFrom(ys.data(), y, "RoiAlign");
}
KILN_REFERENCE_KERNEL("RoiAlign", RoiAlignKernel);

}  // namespace
}  // namespace kiln::reference::nn
