// ONNX importers of the array family, indexing: Slice, Gather, GatherElements, GatherND,
// ScatterND, ScatterElements, OneHot, NonZero, Compress, ReverseSequence, Unique.
// ONNX indices may be negative (counting from the end of the dim): they are wrapped with
// Select(idx < 0, idx + dim, idx) because the IR gathers reject out-of-range indices.
#include <algorithm>
#include <limits>
#include <set>

#include "frontend/onnx/ops/array_util.h"

namespace kiln::onnxfe {
namespace {

using namespace arr;

// Slice with a run-time axes input (input of known rank r): dense begin/end/strides of length r
// scattered at the (wrapped) axes; the other dims take [0, INT64_MAX) with stride 1, which
// StridedSlice clamps to the whole dim.
void SliceRuntimeAxes(ImportContext& ctx) {
  const int64_t r = RankOf(ctx, 0);
  if (r < 0) ctx.Unsupported("a run-time axes input needs data of known rank");
  const ValueId axes = FixNegativeIndices(ctx, CastTo(ctx, ctx.input(3), DType::kInt64, "axes_i64"), I64(ctx, r, "rank"), "axes");
  const ValueId coords = ctx.Emit1("ExpandDims", {axes, I64(ctx, -1, "coords_axis")}, {}, "coords");
  const ValueId shape = ctx.ConstInt64({r}, false, "dense_shape");
  const ValueId ones = ctx.Emit1("Fill", {ShapeOf(ctx, axes, "axes_shape"), ctx.Constant(Tensor::Scalar<bool>(DType::kBool, true), "true")}, {}, "ones");
  const ValueId mask = ctx.Emit1("ScatterNd", {coords, ones, shape}, {}, "sliced");
  auto dense = [&](int input, int64_t fill, const char* name) {
    const ValueId fill_v = ctx.ConstInt64(std::vector<int64_t>(static_cast<size_t>(r), fill), false, std::string(name) + "_fill");
    if (!ctx.has_input(input)) return fill_v;
    const ValueId v = CastTo(ctx, ctx.input(input), DType::kInt64, std::string(name) + "_i64");
    const ValueId scattered = ctx.Emit1("ScatterNd", {coords, v, shape}, {}, std::string(name) + "_scattered");
    return ctx.Emit1("Select", {mask, scattered, fill_v}, {}, name);
  };
  const ValueId b = dense(1, 0, "begin");
  const ValueId e = dense(2, std::numeric_limits<int64_t>::max(), "end");
  const ValueId s = dense(4, 1, "strides");
  ctx.SetOutput(0, ctx.Emit1("StridedSlice", {ctx.input(0), b, e, s}, SliceMasks(0, 0)));
}

// Slice(data, starts, ends[, axes[, steps]]) -> one StridedSlice over dims [0, max axis]
// (begin/end masks on the dims not sliced). starts/ends/steps may be run-time tensors; they
// are scattered into dense vectors with a Gather of constant positions. TF's StridedSlice
// clamps exactly as ONNX specifies (negative indices + dim, then clamp to [0, dim] for
// positive steps and [-1, dim - 1] for negative ones). Slice-1 (opsets 1-9) has starts, ends
// and axes as attributes, and no steps.
void ImportSlice(ImportContext& ctx) {
  if (ctx.opset() < 10) {
    if (ctx.num_inputs() != 1) ctx.Invalid(fmt::format("Slice-1 has one input, got {}", ctx.num_inputs()));
    const char* names[] = {"starts", "ends", "axes"};
    for (int i = 0; i < 3; ++i) {
      if (!ctx.has_attr(names[i])) {
        if (i < 2) ctx.Invalid(fmt::format("Slice-1 needs the attribute {}", names[i]));
        continue;
      }
      const std::vector<int64_t> v = ctx.attr_ints(names[i]);
      ctx.SetConstantInput(i + 1, Tensor::FromVector(DType::kInt64, Shape{static_cast<int64_t>(v.size())}, v), names[i]);
    }
  }
  if (ctx.num_inputs() < 3) ctx.Invalid("expected inputs data, starts, ends[, axes[, steps]]");
  if (ctx.validate_only()) return;
  for (int i = 1; i < 5; ++i) CheckIndexDtype(ctx, i, i == 1 ? "starts" : i == 2 ? "ends" : i == 3 ? "axes" : "steps");
  const ValueId x = ctx.input(0);
  auto starts = KnownInts(ctx, 1), ends = KnownInts(ctx, 2);
  std::optional<std::vector<int64_t>> steps;
  if (ctx.has_input(4)) steps = KnownInts(ctx, 4);
  // Number of sliced axes.
  int64_t k = -1;
  if (starts) k = static_cast<int64_t>(starts->size());
  else if (const ir::SymShape s = ctx.input_shape(1); s.rank_known && s.rank() == 1 && ir::IsStatic(s.dims[0])) k = s.dims[0];
  std::vector<int64_t> axes;
  if (ctx.has_input(3)) {
    auto a = KnownInts(ctx, 3);
    if (!a) return SliceRuntimeAxes(ctx);
    axes = *a;
    if (k >= 0 && static_cast<int64_t>(axes.size()) != k)
      ctx.Invalid(fmt::format("axes has {} entries, starts has {}", axes.size(), k));
    k = static_cast<int64_t>(axes.size());
  } else {
    if (k < 0) ctx.Unsupported("starts (input 1) must have a static length when axes is omitted");
    for (int64_t i = 0; i < k; ++i) axes.push_back(i);
  }
  if (ends && static_cast<int64_t>(ends->size()) != k) ctx.Invalid(fmt::format("ends has {} entries, expected {}", ends->size(), k));
  if (steps && static_cast<int64_t>(steps->size()) != k) ctx.Invalid(fmt::format("steps has {} entries, expected {}", steps->size(), k));
  if (steps)
    for (int64_t s : *steps)
      if (s == 0) ctx.Invalid("steps must not be 0");
  const int64_t r = RankOf(ctx, 0);
  std::set<int64_t> seen;
  for (int64_t& a : axes) {
    if (a < 0) {
      if (r < 0) ctx.Unsupported("negative axes need an input of known rank");
      a = NormAxis(ctx, a, r, "axes entry");
    } else if (r >= 0) {
      NormAxis(ctx, a, r, "axes entry");
    }
    if (!seen.insert(a).second) ctx.Invalid(fmt::format("axis {} is listed twice", a));
  }
  if (k == 0) return ctx.SetOutput(0, ctx.Emit1("Identity", {x}));
  const int64_t m = *std::max_element(axes.begin(), axes.end()) + 1;
  // position p of the dense spec -> index into the k-vectors, or k where the dim is not sliced.
  std::vector<int64_t> where(static_cast<size_t>(m), k);
  for (int64_t j = 0; j < k; ++j) where[static_cast<size_t>(axes[static_cast<size_t>(j)])] = j;
  int64_t mask = 0;
  for (int64_t p = 0; p < m; ++p)
    if (where[static_cast<size_t>(p)] == k) mask |= int64_t{1} << p;
  bool identity_layout = m == k;
  for (int64_t p = 0; p < m && identity_layout; ++p) identity_layout = where[static_cast<size_t>(p)] == p;

  auto dense = [&](const std::optional<std::vector<int64_t>>& known, int input, int64_t fill, const char* name) -> ValueId {
    if (known || (input == 4 && !ctx.has_input(4))) {
      std::vector<int64_t> v(static_cast<size_t>(m), fill);
      for (int64_t p = 0; p < m; ++p) {
        const int64_t j = where[static_cast<size_t>(p)];
        if (j < k) v[static_cast<size_t>(p)] = known ? (*known)[static_cast<size_t>(j)] : 1;
      }
      return ctx.ConstInt64(v, false, name);
    }
    const ValueId v = CastTo(ctx, ctx.input(input), DType::kInt64, std::string(name) + "_i64");
    if (identity_layout) return v;
    const ValueId ext = ctx.Emit1("Concat", {v, ctx.ConstInt64({fill}, false, std::string(name) + "_fill"), I64(ctx, 0, std::string(name) + "_axis")}, {},
                                  std::string(name) + "_ext");
    AttrMap a;
    a.Set("batch_dims", int64_t{0});
    return ctx.Emit1("Gather", {ext, ctx.ConstInt64(where, false, std::string(name) + "_pos"), I64(ctx, 0, std::string(name) + "_gaxis")},
                     std::move(a), name);
  };
  const ValueId b = dense(starts, 1, 0, "begin");
  const ValueId e = dense(ends, 2, 0, "end");
  const ValueId s = dense(steps, 4, 1, "strides");
  ctx.SetOutput(0, ctx.Emit1("StridedSlice", {x, b, e, s}, SliceMasks(mask, mask)));
}
KILN_ONNX_IMPORTER("Slice", ImportSlice);

void ImportGather(ImportContext& ctx) {
  const int64_t axis = ctx.attr_int("axis", 0);
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "indices");
  const ValueId x = ctx.input(0);
  const int64_t r = RankOf(ctx, 0);
  if (r >= 0) NormAxis(ctx, axis, r);
  const ValueId idx = FixNegativeIndices(ctx, ctx.input(1), DimOf(ctx, x, axis, "dim"));
  AttrMap a;
  a.Set("batch_dims", int64_t{0});
  ctx.SetOutput(0, ctx.Emit1("Gather", {x, idx, I64(ctx, axis, "axis")}, std::move(a)));
}
KILN_ONNX_IMPORTER("Gather", ImportGather);

// Full coordinates [..., r] for an element-wise gather/scatter along `axis`: the (wrapped)
// indices on `axis`, each element's own coordinate on the other dims.
ValueId ElementCoords(ImportContext& ctx, ValueId data, ValueId indices, int64_t axis, int64_t r) {
  const ValueId fixed = FixNegativeIndices(ctx, indices, DimOf(ctx, data, axis, "dim"), "wrapped");
  const ValueId idx = CastTo(ctx, fixed, DType::kInt64, "indices_i64");
  const ValueId shape = ShapeOf(ctx, indices, "indices_shape");
  std::vector<ValueId> parts;
  for (int64_t d = 0; d < r; ++d) parts.push_back(d == axis ? idx : Iota(ctx, shape, d, r, fmt::format("iota_{}", d)));
  AttrMap a;
  a.Set("axis", int64_t{-1});
  return ctx.Emit1("Pack", std::move(parts), std::move(a), "coords");
}

// GatherElements(data, indices) attr axis -> GatherNd(data, coords).
void ImportGatherElements(ImportContext& ctx) {
  int64_t axis = ctx.attr_int("axis", 0);
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "indices");
  const int64_t r = RankOf(ctx, 1);
  if (r < 0) ctx.Unsupported("indices of unknown rank");
  if (RankOf(ctx, 0) >= 0 && RankOf(ctx, 0) != r)
    ctx.Invalid(fmt::format("data and indices must have the same rank, got {} and {}", RankOf(ctx, 0), r));
  if (r == 0) ctx.Invalid("data must have rank >= 1");
  axis = NormAxis(ctx, axis, r);
  const ValueId coords = ElementCoords(ctx, ctx.input(0), ctx.input(1), axis, r);
  ctx.SetOutput(0, ctx.Emit1("GatherNd", {ctx.input(0), coords}));
}
KILN_ONNX_IMPORTER("GatherElements", ImportGatherElements);

// ONNX GatherND / ScatterND indices [..., K] (after batch_dims) with negatives wrapped by the
// data dims [b, b + K), and batch coordinates prepended when batch_dims > 0.
ValueId NdCoords(ImportContext& ctx, ValueId data, ValueId indices, int64_t batch_dims) {
  const ir::SymShape is = ctx.graph().value(indices).shape;
  if (is.rank_known && is.rank() < 1) ctx.Invalid("indices must have rank >= 1");
  const ValueId ds = ShapeOf(ctx, data, "data_shape");
  ValueId idx = CastTo(ctx, indices, DType::kInt64, "indices_i64");
  // The data dims [b, b + K) that the index rows address (K = the last dim of indices).
  ValueId index_dims;
  if (is.rank_known && ir::IsStatic(is.dims.back())) {
    if (is.dims.back() == 0) index_dims = ir::kNoValue;
    else index_dims = SliceVec(ctx, ds, batch_dims, batch_dims + is.dims.back(), false, "index_dims");
  } else {
    const ValueId k = SliceVec(ctx, ShapeOf(ctx, indices, "indices_shape_k"), -1, std::nullopt, false, "k");
    index_dims = ctx.Emit1("Slice", {ds, ctx.ConstInt64({batch_dims}, false, "dims_begin"), k}, {}, "index_dims");
  }
  if (index_dims != ir::kNoValue) idx = FixNegativeIndices(ctx, idx, index_dims, "wrapped");
  if (batch_dims == 0) return idx;
  if (!is.rank_known) ctx.Unsupported("batch_dims > 0 needs indices of known rank");
  const int64_t q = is.rank();
  if (batch_dims >= q) ctx.Invalid(fmt::format("batch_dims {} must be less than the rank of indices {}", batch_dims, q));
  const ValueId ishape = ShapeOf(ctx, indices, "indices_shape");
  const ValueId bshape = ctx.Emit1("Concat", {SliceVec(ctx, ishape, 0, q - 1, false, "outer"), ctx.ConstInt64({1}, false, "one"), I64(ctx, 0, "axis")}, {},
                                   "batch_shape");
  std::vector<ValueId> parts;
  for (int64_t j = 0; j < batch_dims; ++j) parts.push_back(Iota(ctx, bshape, j, q, fmt::format("batch_{}", j)));
  parts.push_back(idx);
  parts.push_back(I64(ctx, -1, "concat_axis"));
  return ctx.Emit1("Concat", std::move(parts), {}, "coords");
}

void ImportGatherND(ImportContext& ctx) {
  const int64_t batch_dims = ctx.attr_int("batch_dims", 0);
  if (batch_dims < 0) ctx.Invalid(fmt::format("batch_dims must be >= 0, got {}", batch_dims));
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "indices");
  const ValueId coords = NdCoords(ctx, ctx.input(0), ctx.input(1), batch_dims);
  ctx.SetOutput(0, ctx.Emit1("GatherNd", {ctx.input(0), coords}));
}
KILN_ONNX_IMPORTER("GatherND", ImportGatherND);

std::string Reduction(ImportContext& ctx) {
  const std::string red = ctx.attr_string("reduction", "none");
  if (red != "none" && red != "add" && red != "mul" && red != "min" && red != "max")
    ctx.Invalid(fmt::format("reduction '{}' is not one of none, add, mul, min, max", red));
  return red;
}

// data with the rows at coords ([..., K], int64) replaced (none) or incremented (add) by updates,
// or multiplied, or their min or max taken (mul, min, max: the IR TensorScatter, one index row
// after the other as ONNX's reference).
void EmitScatter(ImportContext& ctx, ValueId data, ValueId coords, ValueId updates, const std::string& red) {
  const DType t = DtypeOf(ctx, data);
  if (red == "mul" || red == "min" || red == "max") {
    if (!IsFloating(t) && !IsInteger(t) && t != DType::kBool) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
    AttrMap a;
    a.Set("reduction", red);
    return ctx.SetOutput(0, ctx.Emit1("TensorScatter", {data, coords, updates}, std::move(a)));
  }
  if (!IsFloating(t) && !IsInteger(t) && !(t == DType::kBool && red == "none"))
    ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  const ValueId shape = ShapeOf(ctx, data, "data_shape");
  const ValueId scattered = ctx.Emit1("ScatterNd", {coords, updates, shape}, {}, "scattered");
  if (red == "add") return ctx.SetOutput(0, Binary(ctx, "Add", data, scattered, ""));
  // none: ONNX requires distinct indices; a boolean mask of the written positions selects them.
  const ValueId ones = ctx.Emit1("Fill", {ShapeOf(ctx, updates, "updates_shape"), ctx.Constant(Tensor::Scalar<bool>(DType::kBool, true), "true")}, {},
                                 "ones");
  const ValueId mask = ctx.Emit1("ScatterNd", {coords, ones, shape}, {}, "written");
  ctx.SetOutput(0, ctx.Emit1("Select", {mask, scattered, data}));
}

void ImportScatterND(ImportContext& ctx) {
  const std::string red = Reduction(ctx);
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "indices");
  const ValueId coords = NdCoords(ctx, ctx.input(0), ctx.input(1), 0);
  EmitScatter(ctx, ctx.input(0), coords, ctx.input(2), red);
}
KILN_ONNX_IMPORTER("ScatterND", ImportScatterND);

void ImportScatterElements(ImportContext& ctx) {
  int64_t axis = ctx.attr_int("axis", 0);
  const std::string red = Reduction(ctx);
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "indices");
  const int64_t r = RankOf(ctx, 1);
  if (r < 1) ctx.Unsupported("indices must have a known rank >= 1");
  axis = NormAxis(ctx, axis, r);
  const ValueId coords = ElementCoords(ctx, ctx.input(0), ctx.input(1), axis, r);
  EmitScatter(ctx, ctx.input(0), coords, ctx.input(2), red);
}
KILN_ONNX_IMPORTER("ScatterElements", ImportScatterElements);
// Scatter (opsets 9 and 10) is ScatterElements under its old name.
KILN_ONNX_IMPORTER("Scatter", ImportScatterElements);

// OneHot(indices, depth, values) attr axis: negative indices wrap by depth (once: indices
// outside [-depth, depth) give all off_value, as the spec says); integral float indices are
// converted to int64, fractional ones match nothing; a float depth is truncated.
void ImportOneHot(ImportContext& ctx) {
  const int64_t axis = ctx.attr_int("axis", -1);
  if (ctx.validate_only()) return;
  for (int i = 0; i < 2; ++i) {
    const DType t = ctx.input_dtype(i);
    if (!IsFloating(t) && !IsInteger(t))
      ctx.Unsupported(fmt::format("input {} has dtype {}; expected a numeric type", i, DTypeName(t)));
  }
  const int64_t r = RankOf(ctx, 0);
  int64_t ir_axis = axis;
  if (axis < -1) {
    if (r < 0) ctx.Unsupported("a negative axis other than -1 needs indices of known rank");
    if (axis < -r - 1) ctx.Invalid(fmt::format("axis {} is out of range [{}, {}]", axis, -r - 1, r));
    ir_axis = axis + r + 1;
  } else if (r >= 0 && axis > r) {
    ctx.Invalid(fmt::format("axis {} is out of range [{}, {}]", axis, -r - 1, r));
  }
  const ValueId depth = CastTo(ctx, ToScalar(ctx, ctx.input(1), "depth"), DType::kInt64, "depth_i64");
  ValueId idx = CastTo(ctx, ctx.input(0), DType::kInt64, "indices_i64");
  if (IsFloating(ctx.input_dtype(0))) {
    // A fractional index matches no position (onnxruntime and the ONNX reference compare
    // values): it becomes `depth`, which is out of range.
    const ValueId f = ctx.input(0);
    const ValueId integral = Binary(ctx, "Equal", ctx.Emit1("Floor", {f}, {}, "floor"), f, "integral");
    idx = ctx.Emit1("Select", {integral, idx, depth}, {}, "indices_checked");
  }
  const ValueId wrapped = FixNegativeIndices(ctx, idx, depth, "wrapped");
  AttrMap g;
  g.Set("batch_dims", int64_t{0});
  const ValueId values = ctx.input(2);
  const ValueId off = ctx.Emit1("Gather", {values, I64(ctx, 0, "off_index"), I64(ctx, 0, "gaxis0")}, g, "off");
  const ValueId on = ctx.Emit1("Gather", {values, I64(ctx, 1, "on_index"), I64(ctx, 0, "gaxis1")}, g, "on");
  AttrMap a;
  a.Set("axis", ir_axis);
  ctx.SetOutput(0, ctx.Emit1("OneHot", {wrapped, depth, on, off}, std::move(a)));
}
KILN_ONNX_IMPORTER("OneHot", ImportOneHot);

// NonZero(x) -> Transpose(Where(x)): ONNX gives [rank, n], the IR [n, rank].
void ImportNonZero(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(0);
  if (!IsNumeric(t)) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  const ValueId w = ctx.Emit1("Where", {ctx.input(0)}, {}, "coords");
  ctx.SetOutput(0, ctx.Emit1("Transpose", {w, ctx.ConstInt64({1, 0}, false, "perm")}));
}
KILN_ONNX_IMPORTER("NonZero", ImportNonZero);

// Compress(input, condition) attr axis: Gather of the positions where condition is true
// (the input flattened when axis is absent).
void ImportCompress(ImportContext& ctx) {
  const std::optional<int64_t> axis = ctx.has_attr("axis") ? std::optional<int64_t>(ctx.attr_int("axis")) : std::nullopt;
  if (ctx.validate_only()) return;
  if (ctx.input_dtype(1) != DType::kBool) ctx.Invalid(fmt::format("condition must be bool, got {}", DTypeName(ctx.input_dtype(1))));
  const int64_t cr = RankOf(ctx, 1);
  if (cr >= 0 && cr != 1) ctx.Invalid(fmt::format("condition must be 1-D, got rank {}", cr));
  ValueId x = ctx.input(0);
  int64_t ax = 0;
  if (axis) {
    ax = *axis;
    if (RankOf(ctx, 0) >= 0) NormAxis(ctx, ax, RankOf(ctx, 0));
  } else {
    x = ctx.Emit1("Reshape", {x, ctx.ConstInt64({-1}, false, "flat_shape")}, {}, "flat");
  }
  const ValueId w = ctx.Emit1("Where", {ctx.input(1)}, {}, "where");
  AttrMap sq;
  sq.Set("axes", std::vector<int64_t>{1});
  const ValueId idx = ctx.Emit1("Squeeze", {w}, std::move(sq), "positions");
  AttrMap a;
  a.Set("batch_dims", int64_t{0});
  ctx.SetOutput(0, ctx.Emit1("Gather", {x, idx, I64(ctx, ax, "axis")}, std::move(a)));
}
KILN_ONNX_IMPORTER("Compress", ImportCompress);

// ReverseSequence(input, sequence_lens) attrs time_axis, batch_axis (0/1):
// out[t, b] = t < len[b] ? x[len[b] - 1 - t, b] : x[t, b], as a GatherNd over the first two dims.
void ImportReverseSequence(ImportContext& ctx) {
  const int64_t time_axis = ctx.attr_int("time_axis", 0), batch_axis = ctx.attr_int("batch_axis", 1);
  if (!((time_axis == 0 && batch_axis == 1) || (time_axis == 1 && batch_axis == 0)))
    ctx.Invalid(fmt::format("time_axis and batch_axis must be 0 and 1 (either way), got {} and {}", time_axis, batch_axis));
  if (ctx.validate_only()) return;
  CheckIndexDtype(ctx, 1, "sequence_lens");
  const ValueId x = ctx.input(0);
  if (RankOf(ctx, 0) >= 0 && RankOf(ctx, 0) < 2) ctx.Invalid("input must have rank >= 2");
  const ValueId lens = CastTo(ctx, ctx.input(1), DType::kInt64, "lens_i64");
  const ValueId xs = ShapeOf(ctx, x, "input_shape");
  const ValueId grid_shape = SliceVec(ctx, xs, 0, 2, false, "grid_shape");
  const ValueId t = Iota(ctx, grid_shape, time_axis, 2, "time");
  const ValueId b = Iota(ctx, grid_shape, batch_axis, 2, "batch");
  // lens along the batch axis of the grid.
  const ValueId len = ctx.Emit1("Reshape", {lens, ctx.ConstInt64(batch_axis == 1 ? std::vector<int64_t>{1, -1} : std::vector<int64_t>{-1, 1}, false, "lens_shape")}, {},
                                "lens_2d");
  const ValueId inside = Binary(ctx, "Less", t, len, "inside");
  const ValueId rev = Binary(ctx, "Sub", Binary(ctx, "Sub", len, I64(ctx, 1, "one"), "last"), t, "reversed");
  const ValueId src = ctx.Emit1("Select", {inside, rev, t}, {}, "source_time");
  AttrMap a;
  a.Set("axis", int64_t{-1});
  const ValueId coords = ctx.Emit1("Pack", {time_axis == 0 ? src : b, time_axis == 0 ? b : src}, std::move(a), "coords");
  ctx.SetOutput(0, ctx.Emit1("GatherNd", {x, coords}));
}
KILN_ONNX_IMPORTER("ReverseSequence", ImportReverseSequence);

// Unique(X) attrs sorted (1), axis (absent: X flattened) -> IR UniqueWithCounts, whose outputs
// y, idx, count, first are ONNX's Y, inverse_indices, counts, indices.
void ImportUnique(ImportContext& ctx) {
  const int64_t sorted = ctx.attr_int("sorted", 1);
  if (sorted != 0 && sorted != 1) ctx.Invalid(fmt::format("sorted must be 0 or 1, got {}", sorted));
  const bool has_axis = ctx.has_attr("axis");
  const int64_t axis = has_axis ? ctx.attr_int("axis") : 0;
  if (ctx.validate_only()) return;
  const int64_t r = RankOf(ctx, 0);
  AttrMap a;
  a.Set("sorted", sorted == 1);
  a.Set("out_idx", DType::kInt64);
  if (has_axis) {
    if (r == 0) ctx.Invalid("axis needs an input of rank >= 1, got a scalar");
    a.Set("axis", r > 0 ? NormAxis(ctx, axis, r) : axis);
  }
  const std::vector<ValueId> outs = ctx.Emit("UniqueWithCounts", {ctx.input(0)}, std::move(a), 4);
  const ValueId onnx_outputs[4] = {outs[0], outs[3], outs[1], outs[2]};
  for (int i = 0; i < ctx.num_outputs() && i < 4; ++i) ctx.SetOutput(i, onnx_outputs[i]);
}
KILN_ONNX_IMPORTER("Unique", ImportUnique);

}  // namespace

}  // namespace kiln::onnxfe
