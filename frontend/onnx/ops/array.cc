// ONNX importers of the array family, shape manipulation and generators: Reshape, Flatten,
// Squeeze, Unsqueeze, Transpose, Concat, Split, Expand, Tile, Pad, Shape, Size, Range, EyeLike,
// Trilu. Gathers/slices/scatters are in array_index.cc, reductions in array_reduce.cc.
// docs/onnx/array.md lists the IR ops each becomes.
#include <algorithm>
#include <set>

#include "frontend/onnx/onnx_model.h"
#include "frontend/onnx/ops/array_util.h"

namespace kiln::onnxfe {
namespace {

using namespace arr;

// Reshape(data, shape) attr allowzero (14+). ONNX: 0 copies the input dim unless allowzero=1;
// IR Reshape (TF): 0 is a zero-sized dim. Zeros are replaced by the input's dims: from the
// constant/symbolic target when it is known (keeping symbolic dims), else at run time with
// Select(shape == 0, Shape(x)[:n], shape).
void ImportReshape(ImportContext& ctx) {
  const bool allowzero = ctx.attr_int("allowzero", 0) != 0;
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "shape");
  const ValueId x = ctx.input(0);
  const ValueId shape = CastTo(ctx, ctx.input(1), DType::kInt64, "shape_i64");
  if (allowzero) return ctx.SetOutput(0, ctx.Emit1("Reshape", {x, shape}));
  const ir::SymShape xs = ctx.input_shape(0);
  auto sym = ir::array::EvalSymbolic(ctx.graph(), shape);
  if (sym) {
    bool has_zero = false, safe = true;
    for (size_t i = 0; i < sym->elems.size(); ++i) {
      const auto& e = sym->elems[i];
      if (e.is_const) {
        if (e.value == 0) {
          has_zero = true;
          if (xs.rank_known && static_cast<int64_t>(i) >= xs.rank())
            ctx.Invalid(fmt::format("shape[{}] = 0 copies input dim {}, but the input has rank {}", i, i, xs.rank()));
        }
        continue;
      }
      // A symbolic entry equal to the input's dim i gives the same result whether or not it is 0.
      if (!(xs.rank_known && i < xs.dims.size() && e.dim != ir::kUnknownDim && xs.dims[i] == e.dim)) safe = false;
    }
    if (safe && !has_zero) return ctx.SetOutput(0, ctx.Emit1("Reshape", {x, shape}));
    if (safe && xs.rank_known) {
      // Build the target from constants and the input's own dims.
      std::vector<ValueId> parts;
      std::vector<int64_t> run;
      ValueId xshape = ir::kNoValue;
      auto flush = [&] {
        if (!run.empty()) parts.push_back(ctx.ConstInt64(run, false, "target_part"));
        run.clear();
      };
      for (size_t i = 0; i < sym->elems.size(); ++i) {
        const auto& e = sym->elems[i];
        if (e.is_const && e.value != 0) {
          run.push_back(e.value);
          continue;
        }
        if (ir::IsStatic(xs.dims[i])) {
          run.push_back(xs.dims[i]);
          continue;
        }
        flush();
        if (xshape == ir::kNoValue) xshape = ShapeOf(ctx, x, "input_shape");
        parts.push_back(SliceVec(ctx, xshape, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1, false, "dim"));
      }
      flush();
      ValueId target = parts.size() == 1 ? parts[0] : [&] {
        std::vector<ValueId> in = parts;
        in.push_back(I64(ctx, 0, "axis"));
        return ctx.Emit1("Concat", std::move(in), {}, "target");
      }();
      return ctx.SetOutput(0, ctx.Emit1("Reshape", {x, target}));
    }
  }
  // Run-time replacement of zeros: Select(shape == 0, (Shape(x) ++ zeros)[:len(shape)], shape).
  const ValueId zeros = ctx.Emit1("ZerosLike", {shape}, {}, "pad");
  const ValueId padded = ctx.Emit1("Concat", {ShapeOf(ctx, x, "input_shape"), zeros, I64(ctx, 0, "axis")}, {}, "input_shape_padded");
  const ValueId dims = ctx.Emit1("Slice", {padded, ctx.ConstInt64({0}, false, "begin"), ShapeOf(ctx, shape, "target_len")}, {}, "input_dims");
  const ValueId is_zero = Binary(ctx, "Equal", shape, I64(ctx, 0, "zero"), "is_zero");
  const ValueId target = ctx.Emit1("Select", {is_zero, dims, shape}, {}, "target");
  ctx.SetOutput(0, ctx.Emit1("Reshape", {x, target}));
}
KILN_ONNX_IMPORTER("Reshape", ImportReshape);

// Flatten(x) attr axis (default 1, in [-r, r]) -> Reshape to [prod(d[:axis]), prod(d[axis:])].
void ImportFlatten(ImportContext& ctx) {
  int64_t axis = ctx.attr_int("axis", 1);
  if (ctx.validate_only()) return;
  const ValueId x = ctx.input(0);
  const ir::SymShape xs = ctx.input_shape(0);
  if (xs.rank_known) {
    const int64_t r = xs.rank();
    if (axis < -r || axis > r) ctx.Invalid(fmt::format("axis {} is out of range [{}, {}]", axis, -r, r));
    if (axis < 0) axis += r;
    // A side whose dims are all static is a constant; when the other side is not, it is the
    // Reshape's -1 (unambiguous while the static side is not 0).
    std::optional<int64_t> outer = 1, inner = 1;
    for (int64_t i = 0; i < r; ++i) {
      std::optional<int64_t>& side = i < axis ? outer : inner;
      const ir::Dim d = xs.dims[static_cast<size_t>(i)];
      side = side && ir::IsStatic(d) ? std::optional<int64_t>(*side * d) : std::nullopt;
    }
    if (outer && inner) return ctx.SetOutput(0, ctx.Emit1("Reshape", {x, ctx.ConstInt64({*outer, *inner}, false, "target")}));
    if (outer && *outer > 0) return ctx.SetOutput(0, ctx.Emit1("Reshape", {x, ctx.ConstInt64({*outer, -1}, false, "target")}));
    if (inner && *inner > 0) return ctx.SetOutput(0, ctx.Emit1("Reshape", {x, ctx.ConstInt64({-1, *inner}, false, "target")}));
  }
  const ValueId s = ShapeOf(ctx, x, "input_shape");
  AttrMap keep;
  keep.Set("keep_dims", true);
  ValueId head;
  if (axis == 0) {
    head = ctx.ConstInt64({1}, false, "one");
  } else {
    const ValueId h = SliceVec(ctx, s, 0, axis, false, "outer_dims");
    head = ctx.Emit1("ReduceProd", {h, I64(ctx, 0, "axis0")}, keep, "outer");
  }
  ValueId tail;
  {
    const ValueId t = SliceVec(ctx, s, axis, std::nullopt, false, "inner_dims");
    tail = ctx.Emit1("ReduceProd", {t, I64(ctx, 0, "axis1")}, keep, "inner");
  }
  const ValueId target = ctx.Emit1("Concat", {head, tail, I64(ctx, 0, "axis")}, {}, "target");
  ctx.SetOutput(0, ctx.Emit1("Reshape", {x, target}));
}
KILN_ONNX_IMPORTER("Flatten", ImportFlatten);

// axes: an input from opset 13 (an attribute before).
std::optional<std::vector<int64_t>> AxesArg(ImportContext& ctx, int input, const char* what) {
  if (ctx.has_attr("axes")) return ctx.attr_ints("axes");
  if (!ctx.has_input(input)) return std::nullopt;
  if (ctx.validate_only()) return std::vector<int64_t>{};
  CheckIndexDtype(ctx, input, what);
  return KnownInts(ctx, input);  // nullopt: a run-time input (callers check)
}

// Squeeze with a run-time axes input: Reshape to Shape(x) without the listed dims. (A listed
// dim that is not 1 makes the element count differ, so the Reshape fails as ONNX requires.)
void SqueezeRuntimeAxes(ImportContext& ctx) {
  const int64_t r = RankOf(ctx, 0);
  if (r < 0) ctx.Unsupported("a run-time axes input needs data of known rank");
  const ValueId x = ctx.input(0);
  const ValueId axes = FixNegativeIndices(ctx, CastTo(ctx, ctx.input(1), DType::kInt64, "axes_i64"), I64(ctx, r, "rank"), "axes");
  const ValueId coords = ctx.Emit1("ExpandDims", {axes, I64(ctx, -1, "coords_axis")}, {}, "coords");
  const ValueId ones = ctx.Emit1("Fill", {ShapeOf(ctx, axes, "axes_shape"), ctx.Constant(Tensor::Scalar<bool>(DType::kBool, true), "true")}, {}, "ones");
  const ValueId listed = ctx.Emit1("ScatterNd", {coords, ones, ctx.ConstInt64({r}, false, "rank_vec")}, {}, "listed");
  const ValueId kept = ctx.Emit1("LogicalNot", {listed}, {}, "kept");
  AttrMap sq;
  sq.Set("axes", std::vector<int64_t>{1});
  const ValueId pos = ctx.Emit1("Squeeze", {ctx.Emit1("Where", {kept}, {}, "kept_where")}, std::move(sq), "kept_dims");
  AttrMap g;
  g.Set("batch_dims", int64_t{0});
  const ValueId target = ctx.Emit1("Gather", {ShapeOf(ctx, x, "input_shape"), pos, I64(ctx, 0, "gaxis")}, std::move(g), "target");
  ctx.SetOutput(0, ctx.Emit1("Reshape", {x, target}));
}

void ImportSqueeze(ImportContext& ctx) {
  auto axes = AxesArg(ctx, 1, "axes");
  if (ctx.validate_only()) return;
  if (!axes && ctx.has_input(1)) return SqueezeRuntimeAxes(ctx);
  std::vector<int64_t> norm;
  if (axes) {
    const int64_t r = RankOf(ctx, 0);
    std::set<int64_t> seen;
    for (int64_t a : *axes) {
      if (a < 0 && r < 0) ctx.Unsupported("negative axes need an input of known rank");
      const int64_t n = r >= 0 ? NormAxis(ctx, a, r, "axes entry") : a;
      if (!seen.insert(n).second) ctx.Invalid(fmt::format("axis {} is listed twice", a));
      norm.push_back(n);
    }
    if (norm.empty()) {
      // ONNX: an empty axes input squeezes every size-1 dim, as the IR does for empty axes.
    }
  }
  AttrMap a;
  a.Set("axes", norm);
  ctx.SetOutput(0, ctx.Emit1("Squeeze", {ctx.input(0)}, std::move(a)));
}
KILN_ONNX_IMPORTER("Squeeze", ImportSqueeze);

// Unsqueeze with a run-time axes input (static length n, input of known rank r): Reshape to
// the output shape of rank R = r + n: 1 at the (wrapped) axes, the input dims in order elsewhere.
void UnsqueezeRuntimeAxes(ImportContext& ctx) {
  const int64_t r = RankOf(ctx, 0);
  const ir::SymShape as = ctx.input_shape(1);
  if (r < 0 || !as.rank_known || as.rank() != 1 || !ir::IsStatic(as.dims[0]))
    ctx.Unsupported("a run-time axes input needs data of known rank and axes of static length");
  const int64_t out_rank = r + as.dims[0];
  const ValueId x = ctx.input(0);
  const ValueId axes = FixNegativeIndices(ctx, CastTo(ctx, ctx.input(1), DType::kInt64, "axes_i64"), I64(ctx, out_rank, "out_rank"), "axes");
  const ValueId coords = ctx.Emit1("ExpandDims", {axes, I64(ctx, -1, "coords_axis")}, {}, "coords");
  const ValueId rank_vec = ctx.ConstInt64({out_rank}, false, "rank_vec");
  const ValueId ones = ctx.Emit1("Fill", {ShapeOf(ctx, axes, "axes_shape"), I64(ctx, 1, "one")}, {}, "ones");
  const ValueId new_dims = ctx.Emit1("ScatterNd", {coords, ones, rank_vec}, {}, "new_dims");
  const ValueId is_new = Binary(ctx, "Equal", new_dims, I64(ctx, 1, "one_cmp"), "is_new");
  const ValueId kept = ctx.Emit1("Where", {ctx.Emit1("LogicalNot", {is_new}, {}, "is_old")}, {}, "old_positions");
  const ValueId old_dims = ctx.Emit1("ScatterNd", {kept, ShapeOf(ctx, x, "input_shape"), rank_vec}, {}, "old_dims");
  const ValueId target = Binary(ctx, "Add", new_dims, old_dims, "target");
  ctx.SetOutput(0, ctx.Emit1("Reshape", {x, target}));
}

void ImportUnsqueeze(ImportContext& ctx) {
  auto axes = AxesArg(ctx, 1, "axes");
  if (ctx.validate_only()) return;
  if (!axes && ctx.has_input(1)) return UnsqueezeRuntimeAxes(ctx);
  if (!axes) ctx.Invalid("axes (input 1) is required");
  const int64_t r = RankOf(ctx, 0);
  const int64_t out_rank = r + static_cast<int64_t>(axes->size());
  std::vector<int64_t> norm;
  for (int64_t a : *axes) {
    if (a < 0 && r < 0) ctx.Unsupported("negative axes need an input of known rank");
    norm.push_back(r >= 0 ? NormAxis(ctx, a, out_rank, "axes entry") : a);
  }
  std::sort(norm.begin(), norm.end());
  if (std::adjacent_find(norm.begin(), norm.end()) != norm.end()) ctx.Invalid("axes has duplicate entries");
  ValueId y = ctx.input(0);
  // Inserting in ascending order of output positions places every new dim where it belongs.
  for (size_t i = 0; i < norm.size(); ++i)
    y = ctx.Emit1("ExpandDims", {y, I64(ctx, norm[i], fmt::format("axis_{}", i))}, {}, i + 1 == norm.size() ? "" : fmt::format("expand_{}", i));
  if (norm.empty()) y = ctx.Emit1("Identity", {y});
  ctx.SetOutput(0, y);
}
KILN_ONNX_IMPORTER("Unsqueeze", ImportUnsqueeze);

void ImportTranspose(ImportContext& ctx) {
  auto perm = ctx.attr_ints_opt("perm");
  if (perm) {
    std::vector<int64_t> sorted = *perm;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i)
      if (sorted[i] != static_cast<int64_t>(i)) ctx.Invalid("perm must be a permutation of [0, rank)");
  }
  if (ctx.validate_only()) return;
  ValueId p;
  if (perm) {
    p = ctx.ConstInt64(*perm, false, "perm");
  } else if (RankOf(ctx, 0) >= 0) {
    std::vector<int64_t> rev;
    for (int64_t i = RankOf(ctx, 0) - 1; i >= 0; --i) rev.push_back(i);
    p = ctx.ConstInt64(rev, false, "perm");
  } else {
    // Default perm = reversed dims, at run time: Range(rank - 1, -1, -1).
    const ValueId rank = CastTo(ctx, ctx.Emit1("Rank", {ctx.input(0)}, {}, "rank"), DType::kInt64, "rank_i64");
    const ValueId start = Binary(ctx, "Sub", rank, I64(ctx, 1, "one"), "last");
    p = ctx.Emit1("Range", {start, I64(ctx, -1, "limit"), I64(ctx, -1, "delta")}, {}, "perm");
  }
  ctx.SetOutput(0, ctx.Emit1("Transpose", {ctx.input(0), p}));
}
KILN_ONNX_IMPORTER("Transpose", ImportTranspose);

void ImportConcat(ImportContext& ctx) {
  const int64_t axis = ctx.attr_int("axis");
  if (ctx.num_inputs() < 1) ctx.Invalid("expected at least one input");
  if (ctx.validate_only()) return;
  std::vector<ValueId> in = ctx.input_values();
  in.push_back(I64(ctx, axis, "axis"));
  ctx.SetOutput(0, ctx.Emit1("Concat", std::move(in)));
}
KILN_ONNX_IMPORTER("Concat", ImportConcat);

// Split-18's num_outputs without `split`: chunks of ceil(dim / n), the last one taking the rest
// (ONNX's reference: a dim that leaves the last chunk empty or negative is an invalid model).
// The sizes are constants when the dim is static, else computed from the input's shape.
ValueId NumOutputsSplitSizes(ImportContext& ctx, int64_t axis, int n) {
  const ir::SymShape s = ctx.input_shape(0);
  if (s.rank_known) {
    const int64_t r = s.rank();
    const int64_t a = axis < 0 ? axis + r : axis;
    if (a < 0 || a >= r) ctx.Invalid(fmt::format("axis {} is out of range for rank {}", axis, r));
    const ir::Dim d = s.dims[static_cast<size_t>(a)];
    if (ir::IsStatic(d)) {
      const int64_t chunk = d / n + (d % n != 0 ? 1 : 0);
      std::vector<int64_t> sizes(static_cast<size_t>(n), chunk);
      sizes.back() = d - chunk * (n - 1);
      if (sizes.back() < 0)
        ctx.Invalid(fmt::format("num_outputs {} cannot split dim {} of size {} (chunks of {} leave {} for the last)", n,
                                a, d, chunk, sizes.back()));
      return ctx.ConstInt64(sizes, false, "split");
    }
  }
  const ValueId dim = DimOf(ctx, ctx.input(0), axis, "split_dim");
  const ValueId parts = I64(ctx, n, "num_outputs");
  const ValueId n_minus_1 = I64(ctx, n - 1, "n_minus_1");
  // ceil(d / n) = (d + n - 1) floordiv n; the last size d - (n - 1) * chunk.
  const ValueId chunk = Binary(ctx, "FloorDiv", Binary(ctx, "Add", dim, n_minus_1, "split_dim_up"), parts, "chunk");
  const ValueId last = Binary(ctx, "Sub", dim, Binary(ctx, "Mul", chunk, n_minus_1, "head"), "last");
  std::vector<ValueId> pieces;
  const ValueId axis0 = I64(ctx, 0, "pack_axis");
  const ValueId chunk1 = ctx.Emit1("ExpandDims", {chunk, axis0}, {}, "chunk1");
  for (int i = 0; i + 1 < n; ++i) pieces.push_back(chunk1);
  pieces.push_back(ctx.Emit1("ExpandDims", {last, axis0}, {}, "last1"));
  pieces.push_back(I64(ctx, 0, "concat_axis"));
  return ctx.Emit1("Concat", std::move(pieces), {}, "split");
}

// Split(input[, split]) attr axis; `split` is an attribute before opset 13, an input from 13;
// from opset 18 the attribute num_outputs may stand instead of `split`.
void ImportSplit(ImportContext& ctx) {
  const int64_t axis = ctx.attr_int("axis", 0);
  const int n = ctx.num_outputs();
  if (n < 1) ctx.Invalid("expected at least one output");
  std::optional<int64_t> num_outputs;
  if (ctx.has_attr("num_outputs")) {
    num_outputs = ctx.attr_int("num_outputs", 0);
    if (*num_outputs != n)
      ctx.Invalid(fmt::format("num_outputs is {}, but the node has {} outputs", *num_outputs, n));
    if (ctx.has_input(1)) ctx.Invalid("num_outputs and the split input are both given (at most one may be)");
  }
  auto split_attr = ctx.attr_ints_opt("split");
  if (split_attr) {
    if (static_cast<int>(split_attr->size()) != n)
      ctx.Invalid(fmt::format("split has {} entries, but the node has {} outputs", split_attr->size(), n));
    for (int64_t s : *split_attr)
      if (s < 0) ctx.Invalid(fmt::format("split entries must be >= 0, got {}", s));
  }
  if (ctx.validate_only()) return;
  std::vector<ValueId> in{ctx.input(0), I64(ctx, axis, "axis")};
  if (split_attr) {
    in.push_back(ctx.ConstInt64(*split_attr, false, "split"));
  } else if (num_outputs) {
    in.push_back(NumOutputsSplitSizes(ctx, axis, n));
  } else if (ctx.has_input(1)) {
    CheckIndexDtype(ctx, 1, "split");
    if (auto known = KnownInts(ctx, 1)) {
      if (static_cast<int>(known->size()) != n)
        ctx.Invalid(fmt::format("split has {} entries, but the node has {} outputs", known->size(), n));
      for (int64_t s : *known)
        if (s < 0) ctx.Invalid(fmt::format("split entries must be >= 0, got {}", s));
    } else {
      // A run-time -1 would mean "the rest" to the IR op; ONNX forbids negative sizes, and the
      // IR checks that the sizes add up to the dim, so only an invalid model could differ.
    }
    in.push_back(ctx.input(1));
  }
  std::vector<ValueId> outs = ctx.Emit("Split", std::move(in), {}, n);
  for (int i = 0; i < n; ++i) ctx.SetOutput(i, outs[static_cast<size_t>(i)]);
}
KILN_ONNX_IMPORTER("Split", ImportSplit);

// Expand(input, shape): bidirectional (numpy) broadcast of input and shape. When the target
// surely dominates the input's shape, BroadcastTo(x, shape); else BroadcastTo(x,
// BroadcastArgs(Shape(x), shape)).
void ImportExpand(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "shape");
  const ValueId x = ctx.input(0);
  const ValueId shape = CastTo(ctx, ctx.input(1), DType::kInt64, "shape_i64");
  const ir::SymShape xs = ctx.input_shape(0);
  bool dominates = false;
  if (auto sym = ir::array::EvalSymbolic(ctx.graph(), shape); sym && xs.rank_known &&
                                                                 sym->elems.size() >= xs.dims.size()) {
    dominates = true;
    const size_t off = sym->elems.size() - xs.dims.size();
    for (size_t i = 0; i < xs.dims.size(); ++i) {
      const auto& e = sym->elems[off + i];
      const ir::Dim d = xs.dims[i];
      if (d == 1) continue;  // broadcasts to anything
      if (e.is_const && ir::IsStatic(d) && e.value == d) continue;
      if (!e.is_const && e.dim != ir::kUnknownDim && e.dim == d) continue;
      dominates = false;
    }
  }
  ValueId target = shape;
  if (!dominates) target = ctx.Emit1("BroadcastArgs", {ShapeOf(ctx, x, "input_shape"), shape}, {}, "target");
  ctx.SetOutput(0, ctx.Emit1("BroadcastTo", {x, target}));
}
KILN_ONNX_IMPORTER("Expand", ImportExpand);

void ImportTile(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "repeats");
  ctx.SetOutput(0, ctx.Emit1("Tile", {ctx.input(0), ctx.input(1)}));
}
KILN_ONNX_IMPORTER("Tile", ImportTile);

// Pad(data, pads[, constant_value]) attr mode constant/reflect/edge. ONNX pads are
// [b0, b1, ..., e0, e1, ...]; IR paddings are [[b0, e0], [b1, e1], ...]. edge becomes one
// Gather per padded axis with clamped indices (the IR Pad has no EDGE mode). Pad-2 (opsets 2-10)
// has pads and the constant `value` (float) as attributes.
void ImportPad(ImportContext& ctx) {
  const std::string mode = ctx.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    ctx.Unsupported(fmt::format("mode '{}' is not supported (constant, reflect, edge)", mode));
  if (ctx.has_input(3)) ctx.Unsupported("the axes input (opset 18) is not supported");
  if (ctx.opset() < 11) {
    if (ctx.num_inputs() != 1) ctx.Invalid(fmt::format("Pad-2 has one input, got {}", ctx.num_inputs()));
    if (!ctx.has_attr("pads")) ctx.Invalid("Pad-2 needs the attribute pads");
    const std::vector<int64_t> pads = ctx.attr_ints("pads");
    ctx.SetConstantInput(1, Tensor::FromVector(DType::kInt64, Shape{static_cast<int64_t>(pads.size())}, pads), "pads");
    if (!ctx.validate_only() && mode == "constant")
      ctx.SetConstantInput(2, ScalarTensor(ctx.input_dtype(0), ctx.attr_float("value", 0.0f)), "value");
  } else if (ctx.has_attr("pads")) {
    ctx.Invalid(fmt::format("pads is an input from opset 11 (this model's opset is {}), not an attribute", ctx.opset()));
  }
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "pads");
  const ValueId x = ctx.input(0);
  auto pads = KnownInts(ctx, 1);
  if (pads) {
    if (pads->size() % 2 != 0) ctx.Invalid(fmt::format("pads must have 2 * rank entries, got {}", pads->size()));
    const int64_t r = RankOf(ctx, 0);
    if (r >= 0 && static_cast<int64_t>(pads->size()) != 2 * r)
      ctx.Invalid(fmt::format("pads must have 2 * rank = {} entries, got {}", 2 * r, pads->size()));
    for (int64_t p : *pads)
      if (p < 0 && mode != "edge") ctx.Unsupported("negative pads (cropping) are not supported in modes constant and reflect");
  }
  if (mode == "edge") {
    // One Gather per axis with indices clamp(range(-b, dim + e), 0, dim - 1); run-time pads
    // are read as scalars.
    int64_t r = pads ? static_cast<int64_t>(pads->size()) / 2 : RankOf(ctx, 0);
    if (r < 0) ctx.Unsupported("mode 'edge' with run-time pads needs an input of known rank");
    const ValueId pv = pads ? ir::kNoValue : CastTo(ctx, ctx.input(1), DType::kInt64, "pads_i64");
    ValueId y = x;
    for (int64_t d = 0; d < r; ++d) {
      const std::string sfx = fmt::format("edge_{}", d);
      ValueId b, e;
      if (pads) {
        const int64_t bv = (*pads)[static_cast<size_t>(d)], ev = (*pads)[static_cast<size_t>(d + r)];
        if (bv == 0 && ev == 0) continue;
        b = I64(ctx, bv, sfx + "_b");
        e = I64(ctx, ev, sfx + "_e");
      } else {
        b = SliceVec(ctx, pv, d, std::nullopt, true, sfx + "_b");
        e = SliceVec(ctx, pv, d + r, std::nullopt, true, sfx + "_e");
      }
      const ValueId dim = DimOf(ctx, y, d, sfx + "_dim");
      const ValueId limit = Binary(ctx, "Add", dim, e, sfx + "_limit");
      const ValueId start = ctx.Emit1("Neg", {b}, {}, sfx + "_start");
      const ValueId range = ctx.Emit1("Range", {start, limit, I64(ctx, 1, sfx + "_delta")}, {}, sfx + "_range");
      const ValueId hi = Binary(ctx, "Sub", dim, I64(ctx, 1, sfx + "_one"), sfx + "_hi");
      const ValueId idx = ctx.Emit1("Clip", {range, I64(ctx, 0, sfx + "_lo"), hi}, {}, sfx + "_idx");
      AttrMap a;
      a.Set("batch_dims", int64_t{0});
      y = ctx.Emit1("Gather", {y, idx, I64(ctx, d, sfx + "_axis")}, std::move(a), sfx);
    }
    if (y == x) y = ctx.Emit1("Identity", {x});
    return ctx.SetOutput(0, y);
  }
  ValueId paddings;
  if (pads) {
    const size_t r = pads->size() / 2;
    std::vector<int64_t> p;
    for (size_t d = 0; d < r; ++d) {
      p.push_back((*pads)[d]);
      p.push_back((*pads)[d + r]);
    }
    paddings = ctx.Constant(Tensor::FromVector(DType::kInt64, Shape{static_cast<int64_t>(r), 2}, p), "paddings");
  } else {
    const ValueId p = CastTo(ctx, ctx.input(1), DType::kInt64, "pads_i64");
    const ValueId two_r = ctx.Emit1("Reshape", {p, ctx.ConstInt64({2, -1}, false, "pads_shape")}, {}, "pads_2r");
    paddings = ctx.Emit1("Transpose", {two_r, ctx.ConstInt64({1, 0}, false, "perm")}, {}, "paddings");
  }
  AttrMap a;
  a.Set("mode", std::string(mode == "constant" ? "CONSTANT" : "REFLECT"));
  std::vector<ValueId> in{x, paddings};
  if (mode == "constant" && ctx.has_input(2)) in.push_back(ToScalar(ctx, ctx.input(2), "constant_value"));
  ctx.SetOutput(0, ctx.Emit1("Pad", std::move(in), std::move(a)));
}
KILN_ONNX_IMPORTER("Pad", ImportPad);

// Shape(data) attrs start/end (15+): Shape(x)[start:end] with Python clamping.
void ImportShape(ImportContext& ctx) {
  const bool has_start = ctx.has_attr("start"), has_end = ctx.has_attr("end");
  const int64_t start = ctx.attr_int("start", 0);
  const int64_t end = ctx.attr_int("end", 0);
  if (ctx.validate_only()) return;
  const ValueId s = ShapeOf(ctx, ctx.input(0), has_start || has_end ? "shape" : "");
  if (!has_start && !has_end) return ctx.SetOutput(0, s);
  const int64_t r = RankOf(ctx, 0);
  if (r >= 0) {
    // Static rank: clamp here (exactly ONNX's rule) so the slice is plain.
    auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
    const int64_t b = clamp(start), e = has_end ? clamp(end) : r;
    return ctx.SetOutput(0, SliceVec(ctx, s, b, std::max(b, e), false, ""));
  }
  ctx.SetOutput(0, SliceVec(ctx, s, start, has_end ? std::optional<int64_t>(end) : std::nullopt, false, ""));
}
KILN_ONNX_IMPORTER("Shape", ImportShape);

void ImportSize(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  AttrMap a;
  a.Set("out_type", DType::kInt64);
  ctx.SetOutput(0, ctx.Emit1("Size", {ctx.input(0)}, std::move(a)));
}
KILN_ONNX_IMPORTER("Size", ImportSize);

// Range(start, limit, delta): ONNX gives max(ceil((limit - start) / delta), 0) elements; the IR
// Range (TF) fails on a sign mismatch, so the limit is first moved to start where the range is
// empty: limit' = delta > 0 ? max(limit, start) : min(limit, start).
void ImportRange(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(0);
  if (t != DType::kFloat32 && t != DType::kFloat64 && t != DType::kInt16 && t != DType::kInt32 && t != DType::kInt64)
    ctx.Unsupported(fmt::format("dtype {} is not supported (float, double, int16, int32, int64)", DTypeName(t)));
  const ValueId start = ToScalar(ctx, ctx.input(0), "start"), limit = ToScalar(ctx, ctx.input(1), "limit"),
                delta = ToScalar(ctx, ctx.input(2), "delta");
  const ValueId zero = ctx.Emit1("ZerosLike", {delta}, {}, "zero");
  const ValueId positive = Binary(ctx, "Greater", delta, zero, "positive");
  const ValueId up = Binary(ctx, "Maximum", limit, start, "limit_up");
  const ValueId down = Binary(ctx, "Minimum", limit, start, "limit_down");
  const ValueId lim = ctx.Emit1("Select", {positive, up, down}, {}, "limit_clamped");
  ctx.SetOutput(0, ctx.Emit1("Range", {start, lim, delta}));
}
KILN_ONNX_IMPORTER("Range", ImportRange);

// [N, M] int64 grids of row and column coordinates (for EyeLike, Trilu): col - row.
ValueId ColMinusRow(ImportContext& ctx, ValueId n, ValueId m) {
  const ValueId rows = ctx.Emit1("Range", {I64(ctx, 0, "row_start"), n, I64(ctx, 1, "row_delta")}, {}, "rows");
  const ValueId cols = ctx.Emit1("Range", {I64(ctx, 0, "col_start"), m, I64(ctx, 1, "col_delta")}, {}, "cols");
  const ValueId r2 = ctx.Emit1("Reshape", {rows, ctx.ConstInt64({-1, 1}, false, "rows_shape")}, {}, "rows_2d");
  return Binary(ctx, "Sub", cols, r2, "diagonal");
}

// EyeLike(input) attrs dtype, k: ones where col - row == k.
void ImportEyeLike(ImportContext& ctx) {
  const int64_t k = ctx.attr_int("k", 0);
  std::optional<DType> dtype;
  if (ctx.has_attr("dtype")) {
    const int32_t onnx_type = static_cast<int32_t>(ctx.attr_int("dtype"));
    const DType d = DTypeFromOnnx(onnx_type);
    if (d == DType::kInvalid || d == DType::kString || (!IsNumeric(d)))
      ctx.Unsupported(fmt::format("dtype {} is not supported", OnnxTypeName(onnx_type)));
    dtype = d;
  }
  if (ctx.validate_only()) return;
  const DType out = dtype.value_or(ctx.input_dtype(0));
  if (!IsNumeric(out)) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(out)));
  const int64_t r = RankOf(ctx, 0);
  if (r >= 0 && r != 2) ctx.Invalid(fmt::format("input must be 2-D, got rank {}", r));
  const ValueId x = ctx.input(0);
  const ValueId diag = ColMinusRow(ctx, DimOf(ctx, x, 0, "n"), DimOf(ctx, x, 1, "m"));
  const ValueId eq = Binary(ctx, "Equal", diag, I64(ctx, k, "k"), out == DType::kBool ? "" : "mask");
  ctx.SetOutput(0, out == DType::kBool ? eq : CastTo(ctx, eq, out, ""));
}
KILN_ONNX_IMPORTER("EyeLike", ImportEyeLike);

// Trilu(input[, k]) attr upper: keeps col - row >= k (upper) or <= k (lower), zeros elsewhere.
void ImportTrilu(ImportContext& ctx) {
  const bool upper = ctx.attr_int("upper", 1) != 0;
  if (ctx.validate_only()) return;
  const ValueId x = ctx.input(0);
  const int64_t r = RankOf(ctx, 0);
  if (r >= 0 && r < 2) ctx.Invalid(fmt::format("input must have rank >= 2, got {}", r));
  ValueId k = I64(ctx, 0, "k");
  if (ctx.has_input(1)) {
    CheckIndexDtype(ctx, 1, "k");
    k = CastTo(ctx, ToScalar(ctx, ctx.input(1), "k"), DType::kInt64, "k_i64");
  }
  const ValueId diag = ColMinusRow(ctx, DimOf(ctx, x, -2, "n"), DimOf(ctx, x, -1, "m"));
  const ValueId keep = Binary(ctx, upper ? "GreaterEqual" : "LessEqual", diag, k, "keep");
  const ValueId zeros = ctx.Emit1("ZerosLike", {x}, {}, "zeros");
  ctx.SetOutput(0, ctx.Emit1("Select", {keep, x, zeros}));
}
KILN_ONNX_IMPORTER("Trilu", ImportTrilu);

}  // namespace

}  // namespace kiln::onnxfe
