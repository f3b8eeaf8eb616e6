// Reference kernel of the IR op Resize (ONNX's Resize and Upsample; docs/ops/nn.md): any rank;
// nearest, linear and cubic; every coordinate transformation; antialiasing; tf_crop_and_resize's
// roi and extrapolation; output lengths from scales or sizes read at run time. Linear and cubic
// follow ONNX's reference implementation (onnx/reference/ops/op_resize.py): one axis at a time,
// in the order of `axes`, in double, integers rounded half to even and saturated at the end.
// Nearest copies the chosen elements, so every dtype (strings too) keeps its values exactly.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/reference/nn_common.h"
#include "ir/ops/resize_util.h"

namespace kiln::reference::nn {
namespace {

using ir::nn::ResizeAxis;
using ir::nn::ResizeCoord;
using ir::nn::ResizeMode;
using ir::nn::ResizeNearest;
using ir::nn::ResizeSpec;

// Every axis's lengths, scale and roi, from the node's inputs; `axes` gets the resized axes.
std::vector<ResizeAxis> ReadAxes(const KernelContext& ctx, const ResizeSpec& spec, std::vector<int64_t>* axes) {
  const Tensor& x = ctx.input(0);
  const Tensor& target = ctx.input(1);
  if (std::string e = ir::nn::NormalizeResizeAxes(spec.axes, x.rank(), axes); !e.empty()) ctx.Fail(e);
  const bool by_sizes = IsInteger(target.dtype());
  if ((!by_sizes && !IsFloating(target.dtype())) || target.rank() != 1)
    ctx.Fail(fmt::format("input 1 must be a vector of floating scales or integer sizes, got {} {}",
                         DTypeName(target.dtype()), ShapeStr(target.shape())));
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  if (by_sizes)
    sizes = target.ToInt64Vector();
  else
    for (int64_t i = 0; i < target.num_elements(); ++i) scales.push_back(target.DoubleAt(i));
  std::vector<ResizeAxis> a;
  if (std::string e = ir::nn::ResizeOutputAxes(x.shape(), *axes, by_sizes ? nullptr : &scales,
                                               by_sizes ? &sizes : nullptr, spec.aspect, &a);
      !e.empty())
    ctx.Fail(e);
  if (spec.coord == ResizeCoord::kTfCropAndResize) {
    const size_t n = axes->size();
    if (ctx.num_inputs() < 3) ctx.Fail("coordinate_transformation_mode tf_crop_and_resize needs roi (input 2)");
    const Tensor& roi = ctx.input(2);
    if (!IsFloating(roi.dtype()) || roi.num_elements() != static_cast<int64_t>(2 * n))
      ctx.Fail(
          fmt::format("roi must hold {} floating values (the starts, then the ends, of the resized axes), got {} {}",
                      2 * n, DTypeName(roi.dtype()), ShapeStr(roi.shape())));
    for (size_t i = 0; i < n; ++i) {
      ResizeAxis& r = a[static_cast<size_t>((*axes)[i])];
      r.roi_start = roi.DoubleAt(static_cast<int64_t>(i));
      r.roi_end = roi.DoubleAt(static_cast<int64_t>(n + i));
    }
  }
  return a;
}

// tf_crop_and_resize reads outside the input: the output takes extrapolation_value.
bool Extrapolated(const ResizeSpec& spec, const ResizeAxis& a, double x) {
  return spec.coord == ResizeCoord::kTfCropAndResize && !(x >= 0 && x <= static_cast<double>(a.in - 1));
}

// Floor of x, except that an integer x gives x - 1 with ratio 1: ONNX's reference takes the
// neighbours of a point from below, so the point itself is the last of the lower ones.
void Split(double x, int64_t* base, double* ratio) {
  const double f = std::floor(x);
  *base = static_cast<int64_t>(f) - (x == f ? 1 : 0);
  *ratio = x == f ? 1.0 : x - f;
}

// A source coordinate far outside the input only ever reads the edge; limiting it keeps the
// integer conversions defined (a tiny scale or a wide roi can give 1e30).
double Limit(double x, const ResizeAxis& a, int64_t margin) {
  return std::clamp(x, -static_cast<double>(margin), static_cast<double>(a.in + margin));
}

// Nearest: the source index of every output index along one axis, -1 where extrapolated.
std::vector<int64_t> NearestIndices(const ResizeSpec& spec, const ResizeAxis& a) {
  std::vector<int64_t> idx(static_cast<size_t>(a.out));
  for (int64_t o = 0; o < a.out; ++o) {
    const double x = ir::nn::ResizeSourceCoord(spec.coord, a, o);
    if (Extrapolated(spec, a, x)) {
      idx[static_cast<size_t>(o)] = -1;
      continue;
    }
    int64_t base = 0;
    double ratio = 0;
    Split(Limit(x, a, 2), &base, &ratio);
    bool up = true;  // ratio 1 (an integer x): base + 1 is x itself
    if (ratio != 1) {
      switch (spec.nearest) {
        case ResizeNearest::kRoundPreferFloor:
          up = ratio > 0.5;
          break;
        case ResizeNearest::kRoundPreferCeil:
          up = ratio >= 0.5;
          break;
        case ResizeNearest::kFloor:
          up = false;
          break;
        case ResizeNearest::kCeil:
          up = true;
          break;
        case ResizeNearest::kSimple:
          up = a.scale < 1;
          break;
      }
    }
    idx[static_cast<size_t>(o)] = std::clamp<int64_t>(base + (up ? 1 : 0), 0, a.in - 1);
  }
  return idx;
}

// Linear / cubic along one axis: output o reads `n` taps, input index[o*n + k] (clamped into
// [0, in)) with weight[o*n + k], unless extrapolate[o].
struct Taps {
  int64_t n = 0;
  std::vector<int64_t> index;
  std::vector<double> weight;
  std::vector<char> extrapolate;
};

// The coefficient functions of ONNX's reference, operation for operation.
void CubicCoeffs(double r, double A, double* c) {
  c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
  c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
  c[2] = ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1;
  c[3] = ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A;
}

double CubicKernel(double x, double A) {
  x = std::fabs(x);
  const double x2 = x * x, x3 = x * x2;
  if (x <= 1) return (A + 2) * x3 - (A + 3) * x2 + 1;
  if (x < 2) return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A;
  return 0;
}

// A per-axis table of `out` * `taps` entries of `bytes` each must fit where one tensor would: with
// 1-byte elements the tables of a long axis can outgrow the output itself.
void CheckTableSize(const KernelContext& ctx, int64_t out, int64_t taps, size_t bytes) {
  uint64_t entries = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(out), static_cast<uint64_t>(taps), &entries) ||
      entries > MaxTensorBytes() / bytes)
    throw Error(
        ErrorCode::kResourceExhausted,
        fmt::format("node '{}' ({}): {} outputs of {} taps each need more than the {} bytes one tensor may take",
                    ctx.node().name, ctx.node().op, out, taps, MaxTensorBytes()));
}

Taps BuildTaps(const KernelContext& ctx, const ResizeSpec& spec, const ResizeAxis& a) {
  const bool cubic = spec.mode == ResizeMode::kCubic;
  // Taps start at base + start. Antialiasing stretches the filter by 1 / scale when shrinking
  // (scale >= 0.5 / in here since out >= 1, so the filter spans at most about 4 * in taps).
  const double s = std::min(a.scale, 1.0);
  int64_t start = cubic ? -1 : 0;
  if (spec.antialias) {
    const double first = std::floor((cubic ? -2.0 : -1.0) / s) + 1;
    if (!(first >= -4.0 * static_cast<double>(a.in) - 8))
      ctx.Fail(fmt::format("scale {} on an axis of length {} needs an antialiasing filter wider than the axis", a.scale,
                           a.in));
    start = static_cast<int64_t>(first);
  }
  Taps t;
  t.n = 2 - 2 * start;
  CheckTableSize(ctx, a.out, t.n, sizeof(int64_t) + sizeof(double));
  t.index.resize(static_cast<size_t>(a.out * t.n));
  t.weight.resize(static_cast<size_t>(a.out * t.n));
  t.extrapolate.assign(static_cast<size_t>(a.out), 0);
  const double A = spec.cubic_coeff_a;
  for (int64_t o = 0; o < a.out; ++o) {
    int64_t* index = t.index.data() + o * t.n;
    double* w = t.weight.data() + o * t.n;
    const double x = ir::nn::ResizeSourceCoord(spec.coord, a, o);
    if (Extrapolated(spec, a, x)) {
      t.extrapolate[static_cast<size_t>(o)] = 1;
      continue;  // index 0, weight 0
    }
    int64_t base = 0;
    double r = 0;
    Split(Limit(x, a, t.n + 2), &base, &r);
    if (!spec.antialias && cubic) {
      CubicCoeffs(r, A, w);
    } else if (!spec.antialias) {
      w[0] = 1 - r;
      w[1] = r;
    } else {
      double sum = 0;
      for (int64_t k = 0; k < t.n; ++k) {
        const double d = (static_cast<double>(start + k) - r) * s;
        w[k] = cubic ? CubicKernel(d, A) : std::clamp(1 - std::fabs(d), 0.0, 1.0);
        sum += w[k];
      }
      for (int64_t k = 0; k < t.n; ++k) w[k] /= sum;
    }
    if (spec.exclude_outside) {
      double sum = 0;
      for (int64_t k = 0; k < t.n; ++k) {
        const int64_t i = base + start + k;
        if (i < 0 || i >= a.in) w[k] = 0;
        sum += w[k];
      }
      if (sum != 0)
        for (int64_t k = 0; k < t.n; ++k) w[k] /= sum;
    }
    for (int64_t k = 0; k < t.n; ++k) index[k] = std::clamp<int64_t>(base + start + k, 0, a.in - 1);
  }
  return t;
}

// x's value in T: integers rounded half to even (numpy's round) and saturated, as ONNX's
// reference casts its double results; floating types rounded to nearest.
template <typename T>
T Narrow(double v) {
  if constexpr (std::is_integral_v<T>) {
    v = std::nearbyint(v);
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return FromDouble<T>(v);
  }
}

// extrapolation_value as one element of `dtype`.
std::vector<char> FillElement(DType dtype, double v) {
  std::vector<char> bytes(DTypeSize(dtype), 0);
  if (dtype == DType::kBool) {
    bytes[0] = v != 0;
  } else if (dtype == DType::kComplex64) {
    const float f = static_cast<float>(v);
    std::memcpy(bytes.data(), &f, sizeof f);
  } else if (dtype == DType::kComplex128) {
    std::memcpy(bytes.data(), &v, sizeof v);
  } else if (IsFloating(dtype) || IsInteger(dtype)) {
    DispatchNumeric(dtype, "Resize", [&]<typename T>() {
      const T e = Narrow<T>(v);
      std::memcpy(bytes.data(), &e, sizeof e);
    });
  }
  return bytes;
}

// Calls fn(output index, source index or -1) for every output element in order; offsets[d][o] is
// the source index along axis d of output index o times the axis's stride, -1 when extrapolated.
template <typename Fn>
void ForEachSource(const std::vector<std::vector<int64_t>>& offsets, Fn&& fn) {
  const size_t r = offsets.size();
  if (r == 0) return fn(int64_t{0}, int64_t{0});
  std::vector<size_t> pos(r, 0);
  const std::vector<int64_t>& last = offsets[r - 1];
  int64_t dst = 0;
  while (true) {
    int64_t base = 0;
    bool outside = false;
    for (size_t d = 0; d + 1 < r; ++d) {
      const int64_t off = offsets[d][pos[d]];
      outside = outside || off < 0;
      base += off;
    }
    for (int64_t off : last) fn(dst++, outside || off < 0 ? int64_t{-1} : base + off);
    size_t d = r - 1;
    while (d > 0) {
      --d;
      if (++pos[d] < offsets[d].size()) break;
      pos[d] = 0;
      if (d == 0) return;
    }
    if (r == 1) return;
  }
}

void NearestResize(const KernelContext& ctx, const ResizeSpec& spec, const std::vector<ResizeAxis>& ax, const Tensor& x,
                   Tensor& y) {
  const size_t r = ax.size();
  std::vector<int64_t> stride(r, 1);
  for (size_t d = r; d-- > 1;) stride[d - 1] = stride[d] * x.dim(static_cast<int>(d));
  std::vector<std::vector<int64_t>> offsets(r);
  for (size_t d = 0; d < r; ++d) {
    CheckTableSize(ctx, ax[d].out, 1, sizeof(int64_t));
    std::vector<int64_t> idx;
    if (ir::nn::ResizeAxisIsIdentity(spec.coord, ax[d])) {
      for (int64_t o = 0; o < ax[d].out; ++o) idx.push_back(o);
    } else {
      idx = NearestIndices(spec, ax[d]);
    }
    for (int64_t& i : idx)
      if (i >= 0) i *= stride[d];
    offsets[d] = std::move(idx);
  }
  if (x.dtype() == DType::kString) {
    const std::vector<std::string>& in = x.strings();
    std::vector<std::string>& out = y.strings();
    ForEachSource(offsets, [&](int64_t o, int64_t i) {
      if (i >= 0) out[static_cast<size_t>(o)] = in[static_cast<size_t>(i)];  // else stays ""
    });
    return;
  }
  const std::vector<char> fill = FillElement(x.dtype(), spec.extrapolation_value);
  DispatchBySize(x.dtype(), "Resize", [&]<typename T>() {
    const T* in = static_cast<const T*>(x.raw_data());
    T* out = static_cast<T*>(y.raw_data());
    T e;
    std::memcpy(&e, fill.data(), sizeof e);
    ForEachSource(offsets, [&](int64_t o, int64_t i) { out[o] = i >= 0 ? in[i] : e; });
  });
}

// One linear / cubic pass along axis d of `src` (dims `shape`) into `dst` (axis d of length
// a.out): each output is the weighted sum of its taps, in double, stored as Out.
template <typename In, typename Out>
void ResizeAlongAxis(const In* src, const Shape& shape, size_t d, const ResizeAxis& a, const Taps& t,
                     double extrapolation, Out* dst) {
  int64_t outer = 1, inner = 1;
  for (size_t k = 0; k < d; ++k) outer *= shape[k];
  for (size_t k = d + 1; k < shape.size(); ++k) inner *= shape[k];
  std::vector<double> acc(static_cast<size_t>(inner));
  for (int64_t b = 0; b < outer; ++b) {
    const In* sb = src + b * a.in * inner;
    for (int64_t o = 0; o < a.out; ++o) {
      Out* row = dst + (b * a.out + o) * inner;
      const int64_t* index = t.index.data() + o * t.n;
      const double* w = t.weight.data() + o * t.n;
      if (t.extrapolate[static_cast<size_t>(o)]) {
        std::fill(row, row + inner, Narrow<Out>(extrapolation));
      } else if (inner == 1) {  // the last axis: one sum per output
        double sum = 0;
        for (int64_t k = 0; k < t.n; ++k) sum += w[k] * ToDouble(sb[index[k]]);
        *row = Narrow<Out>(sum);
      } else {  // whole rows at a time
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t k = 0; k < t.n; ++k) {
          const In* s = sb + index[k] * inner;
          for (int64_t i = 0; i < inner; ++i) acc[static_cast<size_t>(i)] += w[k] * ToDouble(s[i]);
        }
        for (int64_t i = 0; i < inner; ++i) row[i] = Narrow<Out>(acc[static_cast<size_t>(i)]);
      }
    }
  }
}

// Linear / cubic: the resized axes one at a time, in the order of `axes`, through double
// intermediates; the first pass reads x and the last writes y directly.
void InterpolatingResize(const KernelContext& ctx, const ResizeSpec& spec, const std::vector<ResizeAxis>& ax,
                         const std::vector<int64_t>& axes, const Tensor& x, Tensor& y) {
  if (!IsFloating(x.dtype()) && !IsInteger(x.dtype()))
    ctx.Fail(fmt::format("linear and cubic resizes need a floating or integer input, got {}", DTypeName(x.dtype())));
  std::vector<size_t> todo;
  for (int64_t d : axes)
    if (!ir::nn::ResizeAxisIsIdentity(spec.coord, ax[static_cast<size_t>(d)])) todo.push_back(static_cast<size_t>(d));
  if (todo.empty()) {
    std::memcpy(y.raw_data(), x.raw_data(), x.byte_size());
    return;
  }
  DispatchNumeric(x.dtype(), "Resize", [&]<typename T>() {
    Shape shape = x.shape();
    Tensor cur;
    for (size_t step = 0; step < todo.size(); ++step) {
      const size_t d = todo[step];
      const ResizeAxis& a = ax[d];
      const Taps t = BuildTaps(ctx, spec, a);
      const bool first = step == 0, last = step + 1 == todo.size();
      Shape next_shape = shape;
      next_shape[d] = a.out;
      Tensor next = last ? Tensor() : Tensor(DType::kFloat64, next_shape);  // checked against MaxTensorBytes
      const double e = spec.extrapolation_value;
      if (first && last)
        ResizeAlongAxis(x.data<T>(), shape, d, a, t, e, y.data<T>());
      else if (first)
        ResizeAlongAxis(x.data<T>(), shape, d, a, t, e, next.data<double>());
      else if (last)
        ResizeAlongAxis(cur.data<double>(), shape, d, a, t, e, y.data<T>());
      else
        ResizeAlongAxis(cur.data<double>(), shape, d, a, t, e, next.data<double>());
      cur = std::move(next);
      shape = std::move(next_shape);
    }
  });
}

void ResizeKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ResizeSpec spec;
  if (std::string e = ir::nn::ParseResizeAttrs(ctx.attrs(), &spec); !e.empty()) ctx.Fail(e);
  std::vector<int64_t> axes;
  const std::vector<ResizeAxis> ax = ReadAxes(ctx, spec, &axes);
  Shape out_shape;
  bool empty = false;
  for (const ResizeAxis& a : ax) {
    out_shape.push_back(a.out);
    empty = empty || a.out == 0;
  }
  if (empty) {
    ctx.AllocateOutput(0, x.dtype(), out_shape);  // no elements: any lengths fit
    return;
  }
  if (x.dtype() == DType::kString) {
    // Tensor checks the bytes of fixed-size dtypes only.
    uint64_t n = 1;
    for (int64_t d : out_shape)
      if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) n = UINT64_MAX;
    if (n > MaxTensorBytes() / sizeof(std::string))
      throw Error(ErrorCode::kResourceExhausted,
                  fmt::format("node '{}' ({}): a string output of shape {} is larger than one tensor may be ({} bytes)",
                              ctx.node().name, ctx.node().op, ShapeStr(out_shape), MaxTensorBytes()));
  }
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), out_shape);
  if (spec.mode == ResizeMode::kNearest)
    NearestResize(ctx, spec, ax, x, y);
  else
    InterpolatingResize(ctx, spec, ax, axes, x, y);
}
KILN_REFERENCE_KERNEL("Resize", ResizeKernel);

}  // namespace
}  // namespace kiln::reference::nn
