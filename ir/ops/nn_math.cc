// nn family IR ops: MatMul, BatchMatMul, Einsum, BatchNorm, Softmax, LogSoftmax, LRN,
// ResizeBilinear, ResizeNearestNeighbor, Resize, DepthToSpace, SpaceToDepth. See docs/ops/nn.md.
#include <fmt/format.h>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/ops/nn_util.h"
#include "ir/ops/resize_util.h"

namespace kiln::ir {

void RegisterNnMathOps(OpRegistry& registry);

namespace {

std::string S(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }

// Merges two dims that must be equal: prefers a static value, then a symbol.
Dim MergeDim(InferContext& ctx, Dim a, Dim b, const std::string& what) {
  if (IsStatic(a) && IsStatic(b) && a != b) ctx.Fail(fmt::format("{}: {} vs {}", what, a, b));
  if (IsStatic(a)) return a;
  if (IsStatic(b)) return b;
  return a != kUnknownDim ? a : b;
}

void CheckSameDtype(InferContext& ctx, int a, int b) {
  const DType da = ctx.input_dtype(a), db = ctx.input_dtype(b);
  if (da != DType::kInvalid && db != DType::kInvalid && da != db)
    ctx.Fail(fmt::format("inputs {} and {} must have the same dtype, got {} and {}", a, b, DTypeName(da), DTypeName(db)));
}

// MatMul: (a, b[, bias]), attrs transpose_a, transpose_b. Rank-2 operands.
void InferMatMul(InferContext& ctx) {
  CheckSameDtype(ctx, 0, 1);
  const SymShape& a = ctx.input_shape(0);
  const SymShape& b = ctx.input_shape(1);
  if ((a.rank_known && a.rank() != 2) || (b.rank_known && b.rank() != 2))
    ctx.Fail(fmt::format("expected rank-2 operands, got {} and {}", S(ctx, a), S(ctx, b)));
  const bool ta = ctx.attrs().GetOr<bool>("transpose_a", false);
  const bool tb = ctx.attrs().GetOr<bool>("transpose_b", false);
  Dim m = kUnknownDim, n = kUnknownDim, ka = kUnknownDim, kb = kUnknownDim;
  if (a.rank_known) { m = a.dims[ta ? 1 : 0]; ka = a.dims[ta ? 0 : 1]; }
  if (b.rank_known) { n = b.dims[tb ? 0 : 1]; kb = b.dims[tb ? 1 : 0]; }
  MergeDim(ctx, ka, kb, fmt::format("inner dimensions of {} and {} (transpose_a={}, transpose_b={}) do not match", S(ctx, a), S(ctx, b), ta, tb));
  if (ctx.num_inputs() > 2) {
    const SymShape& bias = ctx.input_shape(2);
    if (bias.rank_known && (bias.rank() != 1 || (IsStatic(bias.dims[0]) && IsStatic(n) && bias.dims[0] != n)))
      ctx.Fail(fmt::format("expected a bias of shape [{}], got {}", ctx.graph().DimToString(n), S(ctx, bias)));
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of({m, n}));
}

// BatchMatMul: (x, y), attrs adj_x, adj_y, out_dtype (optional). Rank >= 2, batch dims broadcast.
void InferBatchMatMul(InferContext& ctx) {
  const SymShape& x = ctx.input_shape(0);
  const SymShape& y = ctx.input_shape(1);
  const AttrMap& attrs = ctx.attrs();
  const DType out_dtype = attrs.Has("out_dtype") ? attrs.Type("out_dtype") : ctx.input_dtype(0);
  if ((x.rank_known && x.rank() < 2) || (y.rank_known && y.rank() < 2))
    ctx.Fail(fmt::format("expected operands of rank >= 2, got {} and {}", S(ctx, x), S(ctx, y)));
  if (!x.rank_known || !y.rank_known) {
    ctx.SetOutput(0, out_dtype, SymShape::Unknown());
    return;
  }
  const bool ax = attrs.GetOr<bool>("adj_x", false), ay = attrs.GetOr<bool>("adj_y", false);
  const size_t rx = x.dims.size(), ry = y.dims.size();
  const Dim m = x.dims[ax ? rx - 1 : rx - 2], kx = x.dims[ax ? rx - 2 : rx - 1];
  const Dim ky = y.dims[ay ? ry - 1 : ry - 2], n = y.dims[ay ? ry - 2 : ry - 1];
  MergeDim(ctx, kx, ky, fmt::format("inner dimensions of {} and {} (adj_x={}, adj_y={}) do not match", S(ctx, x), S(ctx, y), ax, ay));
  SymShape bx = SymShape::Of(std::vector<Dim>(x.dims.begin(), x.dims.end() - 2));
  SymShape by = SymShape::Of(std::vector<Dim>(y.dims.begin(), y.dims.end() - 2));
  SymShape out = BroadcastShapes(ctx, bx, by);
  out.dims.push_back(m);
  out.dims.push_back(n);
  ctx.SetOutput(0, out_dtype, out);
}

// Einsum: 1 or 2 inputs, attr equation.
void InferEinsum(InferContext& ctx) {
  const std::string& eq = ctx.attrs().Str("equation");
  if (ctx.num_inputs() == 2) CheckSameDtype(ctx, 0, 1);
  std::vector<int> ranks;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.input_shape(i).rank_known) {
      if (nn::EinsumNumInputs(eq) != ctx.num_inputs())
        ctx.Fail(fmt::format("equation '{}' does not have {} inputs", eq, ctx.num_inputs()));
      ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
      return;
    }
    ranks.push_back(ctx.input_shape(i).rank());
  }
  nn::EinsumSpec spec;
  std::string err = nn::ParseEinsum(eq, ranks, &spec);
  if (!err.empty()) ctx.Fail(err);
  std::vector<Dim> size(static_cast<size_t>(spec.num_labels()), kUnknownDim);
  std::vector<bool> seen(size.size(), false);
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const SymShape& s = ctx.input_shape(i);
    for (size_t ax = 0; ax < s.dims.size(); ++ax) {
      const int l = spec.inputs[static_cast<size_t>(i)][ax];
      const size_t L = static_cast<size_t>(l);
      const Dim d = s.dims[ax];
      if (!seen[L]) {
        size[L] = d;
        seen[L] = true;
      } else if (spec.is_bcast(l)) {
        // numpy broadcasting between the inputs' ellipsis dims.
        if (size[L] == 1) size[L] = d;
        else if (d == 1 || d == size[L]) {}
        else if (IsStatic(d) && IsStatic(size[L]))
          ctx.Fail(fmt::format("equation '{}': broadcast dims {} and {} are incompatible", eq, size[L], d));
        else if (IsStatic(d)) size[L] = d;
        else if (!IsStatic(size[L])) size[L] = kUnknownDim;
      } else {
        size[L] = MergeDim(ctx, size[L], d, fmt::format("equation '{}': label '{}' has different sizes", eq, spec.names[L]));
      }
    }
  }
  std::vector<Dim> out;
  for (int l : spec.output) out.push_back(size[static_cast<size_t>(l)]);
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(out));
}

// BatchNorm: (x, scale, offset, mean, variance); attrs epsilon, axis, training,
// exponential_avg_factor. Outputs: y, then optionally running_mean, running_variance,
// batch_mean, batch_variance (each of shape [C]).
void InferBatchNorm(InferContext& ctx) {
  const SymShape& x = ctx.input_shape(0);
  const int64_t axis_attr = ctx.attrs().GetOr<int64_t>("axis", -1);
  Dim c = kUnknownDim;
  if (x.rank_known) {
    const int64_t axis = axis_attr < 0 ? axis_attr + x.rank() : axis_attr;
    if (axis < 0 || axis >= x.rank()) ctx.Fail(fmt::format("axis {} is out of range for an input of shape {}", axis_attr, S(ctx, x)));
    c = x.dims[static_cast<size_t>(axis)];
  }
  const bool training = ctx.attrs().GetOr<bool>("training", false);
  const char* names[] = {"x", "scale", "offset", "mean", "variance"};
  for (int i = 1; i < 5; ++i) {
    const SymShape& p = ctx.input_shape(i);
    if (!p.rank_known) continue;
    // In training mode with exponential_avg_factor == 1, mean/variance may be empty.
    if (training && i >= 3 && p.rank() == 1 && p.dims[0] == 0) continue;
    if (p.rank() != 1) ctx.Fail(fmt::format("expected {} of rank 1, got {}", names[i], S(ctx, p)));
    c = MergeDim(ctx, c, p.dims[0], fmt::format("{} size does not match the channel count", names[i]));
  }
  ctx.SetOutput(0, ctx.input_dtype(0), x);
  const DType pdtype = ctx.input_dtype(1);
  for (int i = 1; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, pdtype, SymShape::Of({c}));
}

// Softmax / LogSoftmax: attr axis (default -1).
void InferSoftmax(InferContext& ctx) {
  const SymShape& x = ctx.input_shape(0);
  if (x.rank_known) {
    const int64_t axis = ctx.attrs().GetOr<int64_t>("axis", -1);
    if (x.rank() == 0 || axis < -x.rank() || axis >= x.rank())
      ctx.Fail(fmt::format("axis {} is out of range for an input of shape {}", axis, S(ctx, x)));
  }
  ctx.SetOutput(0, ctx.input_dtype(0), x);
}

// LayerNorm(x, scale?, bias?): attrs axis (the first normalized dim, default -1) and epsilon.
// Each slice over dims [axis, rank) is normalized to mean 0 and variance 1 (accumulated in at
// least float32), then multiplied by scale and shifted by bias, which broadcast into those dims.
// Passes form it from the decomposed pattern importers emit; it is not a source op.
void InferLayerNorm(InferContext& ctx) {
  const SymShape& x = ctx.input_shape(0);
  const DType t = ctx.input_dtype(0);
  if (!IsFloating(t)) ctx.Fail(fmt::format("expected a floating-point input, got {}", DTypeName(t)));
  for (int i = 1; i < ctx.num_inputs(); ++i)
    if (ctx.input_dtype(i) != t)
      ctx.Fail(fmt::format("input {} is {}, expected the input's dtype {}", i, DTypeName(ctx.input_dtype(i)), DTypeName(t)));
  if (x.rank_known) {
    const int64_t axis = ctx.attrs().GetOr<int64_t>("axis", -1);
    if (x.rank() == 0 || axis < -x.rank() || axis >= x.rank())
      ctx.Fail(fmt::format("axis {} is out of range for an input of shape {}", axis, S(ctx, x)));
    const size_t first = static_cast<size_t>(axis < 0 ? axis + x.rank() : axis);
    const SymShape normalized = SymShape::Of(std::vector<Dim>(x.dims.begin() + static_cast<std::ptrdiff_t>(first), x.dims.end()));
    for (int i = 1; i < ctx.num_inputs(); ++i)
      if (!BroadcastsInto(ctx.input_shape(i), normalized))
        ctx.Fail(fmt::format("input {} of shape {} does not broadcast into the normalized dims {}", i,
                             S(ctx, ctx.input_shape(i)), S(ctx, normalized)));
  }
  ctx.SetOutput(0, t, x);
}

// LRN: 4-D input, normalized over the last axis.
void InferLRN(InferContext& ctx) {
  const SymShape& x = ctx.input_shape(0);
  if (x.rank_known && x.rank() != 4) ctx.Fail(fmt::format("expected a 4-D input, got {}", S(ctx, x)));
  ctx.SetOutput(0, ctx.input_dtype(0), x.rank_known ? x : SymShape::Of({kUnknownDim, kUnknownDim, kUnknownDim, kUnknownDim}));
}

// ResizeBilinear / ResizeNearestNeighbor: (images NHWC, size int32[2]).
template <bool kBilinear>
void InferResize(InferContext& ctx) {
  const SymShape& x = ctx.input_shape(0);
  if (x.rank_known && x.rank() != 4) ctx.Fail(fmt::format("expected 4-D images, got {}", S(ctx, x)));
  if (ctx.attrs().GetOr<bool>("align_corners", false) && ctx.attrs().GetOr<bool>("half_pixel_centers", false))
    ctx.Fail("if half_pixel_centers is true, align_corners must be false");
  std::vector<Dim> out{kUnknownDim, kUnknownDim, kUnknownDim, kUnknownDim};
  if (x.rank_known) {
    out[0] = x.dims[0];
    out[3] = x.dims[3];
  }
  if (const Tensor* size = ctx.constant_input(1)) {
    std::vector<int64_t> v = size->ToInt64Vector();
    if (v.size() != 2 || v[0] <= 0 || v[1] <= 0)
      ctx.Fail(fmt::format("size must be 2 positive values, got [{}]", fmt::join(v, ",")));
    out[1] = v[0];
    out[2] = v[1];
  }
  ctx.SetOutput(0, kBilinear ? DType::kFloat32 : ctx.input_dtype(0), SymShape::Of(out));
}

// Resize (ONNX's Resize / Upsample): (x, scales (floating) or sizes (integer), one value per
// resized axis[, roi]). Lengths the constant scales / sizes and the known input dims give are
// computed (ir/ops/resize_util.h, as the kernel does); the others are unknown.
void InferOnnxResize(InferContext& ctx) {
  nn::ResizeSpec spec;
  if (std::string e = nn::ParseResizeAttrs(ctx.attrs(), &spec); !e.empty()) ctx.Fail(e);
  const DType dtype = ctx.input_dtype(0), target = ctx.input_dtype(1);
  const bool sizes = IsInteger(target);
  if (!sizes && !IsFloating(target))
    ctx.Fail(fmt::format("input 1 must hold floating scales or integer sizes, got {}", DTypeName(target)));
  if (const SymShape& t = ctx.input_shape(1); t.rank_known && t.rank() != 1)
    ctx.Fail(fmt::format("scales / sizes must be a vector, got {}", S(ctx, t)));
  if (ctx.num_inputs() > 2 && !IsFloating(ctx.input_dtype(2)))
    ctx.Fail(fmt::format("roi must be floating, got {}", DTypeName(ctx.input_dtype(2))));
  if (spec.coord == nn::ResizeCoord::kTfCropAndResize && ctx.num_inputs() < 3)
    ctx.Fail("coordinate_transformation_mode tf_crop_and_resize needs roi (input 2)");
  if (spec.mode != nn::ResizeMode::kNearest && !IsFloating(dtype) && !IsInteger(dtype))
    ctx.Fail(fmt::format("linear and cubic resizes need a floating or integer input, got {}", DTypeName(dtype)));
  const SymShape& x = ctx.input_shape(0);
  if (!x.rank_known) return ctx.SetOutput(0, dtype, SymShape::Unknown());
  std::vector<int64_t> axes;
  if (std::string e = nn::NormalizeResizeAxes(spec.axes, x.rank(), &axes); !e.empty()) ctx.Fail(e);
  std::vector<Dim> out = x.dims;  // axes not listed keep their length
  for (int64_t d : axes) out[static_cast<size_t>(d)] = kUnknownDim;
  if (const Tensor* t = ctx.constant_input(1)) {
    std::vector<int64_t> in;
    for (Dim d : x.dims) in.push_back(IsStatic(d) ? d : -1);
    std::vector<double> scale_values;
    std::vector<int64_t> size_values;
    if (sizes) size_values = t->ToInt64Vector();
    else
      for (int64_t i = 0; i < t->num_elements(); ++i) scale_values.push_back(t->DoubleAt(i));
    std::vector<nn::ResizeAxis> lengths;
    if (std::string e = nn::ResizeOutputAxes(in, axes, sizes ? nullptr : &scale_values, sizes ? &size_values : nullptr,
                                             spec.aspect, &lengths);
        !e.empty())
      ctx.Fail(e);
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t d = static_cast<size_t>(axes[i]);
      if (lengths[d].out >= 0) out[d] = lengths[d].out;
      else if (!sizes && scale_values[i] == 1) out[d] = x.dims[d];  // floor(n * 1) = n: keeps a symbol
    }
  }
  if (ctx.num_inputs() > 2 && spec.coord == nn::ResizeCoord::kTfCropAndResize)
    if (const Tensor* roi = ctx.constant_input(2); roi && roi->num_elements() != 2 * static_cast<int64_t>(axes.size()))
      ctx.Fail(fmt::format("roi must hold {} values (starts, then ends, of the resized axes), got {}", 2 * axes.size(),
                           roi->num_elements()));
  ctx.SetOutput(0, dtype, SymShape::Of(out));
}

// DepthToSpace / SpaceToDepth: attrs block_size, data_format ("NHWC"/"NCHW").
template <bool kDepthToSpace>
void InferDepthSpace(InferContext& ctx) {
  const SymShape& x = ctx.input_shape(0);
  const int64_t bs = ctx.attrs().Int("block_size");
  if (bs < 2) ctx.Fail(fmt::format("block_size must be at least 2, got {}", bs));
  // block_size^2 must fit in int64 (and divide or multiply a dim of a tensor that exists).
  if (bs > nn::kMaxBlockSize) ctx.Fail(fmt::format("block_size {} is larger than {}", bs, nn::kMaxBlockSize));
  auto times = [&](Dim d, int64_t k) -> Dim {
    int64_t r = 0;
    if (!IsStatic(d)) return kUnknownDim;
    if (__builtin_mul_overflow(d, k, &r)) ctx.Fail(fmt::format("dim {} times {} overflows", d, k));
    return r;
  };
  bool channels_last = true;
  const std::string format = ctx.attrs().GetOr<std::string>("data_format", "NHWC");
  if (!nn::ChannelsLast(format, &channels_last) || format.size() != 4) ctx.Fail(fmt::format("unsupported data_format '{}'", format));
  if (x.rank_known && x.rank() != 4) ctx.Fail(fmt::format("expected a 4-D input, got {}", S(ctx, x)));
  std::vector<Dim> out{kUnknownDim, kUnknownDim, kUnknownDim, kUnknownDim};
  if (x.rank_known) {
    const size_t c = channels_last ? 3 : 1, h = channels_last ? 1 : 2, w = h + 1;
    out[0] = x.dims[0];
    const Dim dc = x.dims[c], dh = x.dims[h], dw = x.dims[w];
    if (kDepthToSpace) {
      if (IsStatic(dc) && dc % (bs * bs) != 0)
        ctx.Fail(fmt::format("input depth {} is not divisible by block_size^2 = {}", dc, bs * bs));
      out[c] = IsStatic(dc) ? dc / (bs * bs) : kUnknownDim;
      out[h] = times(dh, bs);
      out[w] = times(dw, bs);
    } else {
      if ((IsStatic(dh) && dh % bs != 0) || (IsStatic(dw) && dw % bs != 0))
        ctx.Fail(fmt::format("spatial dims {} must be divisible by block_size {}", S(ctx, x), bs));
      out[c] = times(dc, bs * bs);
      out[h] = IsStatic(dh) ? dh / bs : kUnknownDim;
      out[w] = IsStatic(dw) ? dw / bs : kUnknownDim;
    }
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(out));
}

}  // namespace

void RegisterNnMathOps(OpRegistry& registry) {
  registry.Add({"MatMul", 2, 3, InferMatMul});
  registry.Add({"BatchMatMul", 2, 2, InferBatchMatMul});
  registry.Add({"Einsum", 1, 2, InferEinsum});
  registry.Add({"BatchNorm", 5, 5, InferBatchNorm});
  registry.Add({"Softmax", 1, 1, InferSoftmax});
  registry.Add({"LogSoftmax", 1, 1, InferSoftmax});
  registry.Add({"LayerNorm", 1, 3, InferLayerNorm});
  registry.Add({"LRN", 1, 1, InferLRN});
  registry.Add({"ResizeBilinear", 2, 2, InferResize<true>});
  registry.Add({"ResizeNearestNeighbor", 2, 2, InferResize<false>});
  registry.Add({"Resize", 2, 3, InferOnnxResize});
  registry.Add({"DepthToSpace", 1, 1, InferDepthSpace<true>});
  registry.Add({"SpaceToDepth", 1, 1, InferDepthSpace<false>});
}

}  // namespace kiln::ir
