// Helpers shared by the ONNX array importers (array.cc, array_index.cc, array_reduce.cc):
// small IR building blocks (int64 shape vectors, scalar dims, casts, index fix-ups).
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <vector>

#include "frontend/onnx/importer.h"
#include "ir/ops/array_common.h"

namespace kiln::onnxfe::arr {

using ir::AttrMap;
using ir::ValueId;

inline DType DtypeOf(ImportContext& ctx, ValueId v) { return ctx.graph().value(v).dtype; }

inline ValueId CastTo(ImportContext& ctx, ValueId v, DType to, const std::string& suffix = "cast") {
  if (DtypeOf(ctx, v) == to) return v;
  AttrMap a;
  a.Set("to", to);
  a.Set("truncate", false);
  return ctx.Emit1("Cast", {v}, std::move(a), suffix);
}

inline ValueId I64(ImportContext& ctx, int64_t v, const std::string& suffix = "const") {
  return ctx.ConstInt64({v}, true, suffix);
}

// int64 shape vector of v.
inline ValueId ShapeOf(ImportContext& ctx, ValueId v, const std::string& suffix = "shape") {
  AttrMap a;
  a.Set("out_type", DType::kInt64);
  return ctx.Emit1("Shape", {v}, std::move(a), suffix);
}

// StridedSlice of a 1-D vector: v[begin:end] (end nullopt = to the end); shrink: v[begin] as a scalar.
inline ValueId SliceVec(ImportContext& ctx, ValueId v, int64_t begin, std::optional<int64_t> end, bool shrink = false,
                        const std::string& suffix = "slice") {
  AttrMap a;
  a.Set("begin_mask", int64_t{0});
  a.Set("end_mask", int64_t{end || shrink ? 0 : 1});
  a.Set("ellipsis_mask", int64_t{0});
  a.Set("new_axis_mask", int64_t{0});
  a.Set("shrink_axis_mask", int64_t{shrink ? 1 : 0});
  const int64_t e = shrink ? begin + 1 : end.value_or(0);
  return ctx.Emit1("StridedSlice",
                   {v, ctx.ConstInt64({begin}, false, "begin"), ctx.ConstInt64({e}, false, "end"),
                    ctx.ConstInt64({1}, false, "strides")},
                   std::move(a), suffix);
}

// Dim d of x (negative counts from the end) as an int64 scalar.
inline ValueId DimOf(ImportContext& ctx, ValueId x, int64_t d, const std::string& suffix = "dim") {
  const ir::SymShape s = ctx.graph().value(x).shape;
  if (s.rank_known) {
    const int64_t r = s.rank();
    const int64_t n = d < 0 ? d + r : d;
    if (n >= 0 && n < r && ir::IsStatic(s.dims[static_cast<size_t>(n)]))
      return I64(ctx, s.dims[static_cast<size_t>(n)], suffix);
  }
  return SliceVec(ctx, ShapeOf(ctx, x), d, std::nullopt, /*shrink=*/true, suffix);
}

// Reshape to a scalar (a 1-element tensor; ONNX often gives K, depth, ... as [1]).
inline ValueId ToScalar(ImportContext& ctx, ValueId v, const std::string& suffix = "scalar") {
  const ir::SymShape s = ctx.graph().value(v).shape;
  if (s.rank_known && s.rank() == 0) return v;
  return ctx.Emit1("Reshape", {v, ctx.ConstInt64({}, false, suffix + "_shape")}, {}, suffix);
}

inline ValueId Binary(ImportContext& ctx, const char* op, ValueId a, ValueId b, const std::string& suffix) {
  return ctx.Emit1(op, {a, b}, {}, suffix);
}

// Values of integer input i if known at import time (a constant, or a constant expression
// EvalSymbolic can follow); nullopt otherwise.
inline std::optional<std::vector<int64_t>> KnownInts(ImportContext& ctx, int i) {
  if (ctx.validate_only() || !ctx.has_input(i)) return std::nullopt;
  if (const Tensor* t = ctx.constant_input(i)) {
    if (!IsInteger(t->dtype())) return std::nullopt;
    return ir::array::IntValues(*t);
  }
  if (!IsInteger(ctx.input_dtype(i))) return std::nullopt;
  auto sym = ir::array::EvalSymbolic(ctx.graph(), ctx.input(i));
  if (!sym) return std::nullopt;
  std::vector<int64_t> out;
  for (const auto& e : sym->elems) {
    if (!e.is_const) return std::nullopt;
    out.push_back(e.value);
  }
  return out;
}

// Rank of input i, or -1 when unknown.
inline int64_t RankOf(ImportContext& ctx, int i) {
  const ir::SymShape s = ctx.input_shape(i);
  return s.rank_known ? s.rank() : -1;
}

// Axis in [-rank, rank) -> [0, rank); Invalid when out of range.
inline int64_t NormAxis(ImportContext& ctx, int64_t axis, int64_t rank, const char* what = "axis") {
  if (axis < -rank || axis >= rank) ctx.Invalid(fmt::format("{} {} is out of range [{}, {}) for rank {}", what, axis, -rank, rank, rank));
  return axis < 0 ? axis + rank : axis;
}

// Math ops: floating and integer types only.
inline void CheckReal(ImportContext& ctx, int i = 0) {
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(i);
  if (!IsFloating(t) && !IsInteger(t))
    ctx.Unsupported(fmt::format("input {} has dtype {}; expected a floating-point or integer type", i, DTypeName(t)));
}

inline void CheckIndexDtype(ImportContext& ctx, int i, const char* what) {
  if (ctx.validate_only() || !ctx.has_input(i)) return;
  const DType t = ctx.input_dtype(i);
  if (t != DType::kInt32 && t != DType::kInt64) ctx.Invalid(fmt::format("{} (input {}) must be int32 or int64, got {}", what, i, DTypeName(t)));
}

// ONNX index semantics: negative indices count from the end of a dim. Returns int64 indices
// with `dim` added where idx < 0 (dim: an int64 scalar or a vector broadcasting against idx).
// Constant indices without negatives are returned unchanged.
inline ValueId FixNegativeIndices(ImportContext& ctx, ValueId idx, ValueId dim, const std::string& suffix = "idx") {
  if (const Tensor* t = ctx.graph().ConstantOf(idx)) {
    bool any_negative = false;
    for (int64_t v : ir::array::IntValues(*t)) any_negative |= v < 0;
    if (!any_negative) return idx;
  }
  const ValueId i64 = CastTo(ctx, idx, DType::kInt64, suffix + "_i64");
  const ValueId neg = Binary(ctx, "Less", i64, I64(ctx, 0, suffix + "_zero"), suffix + "_neg");
  const ValueId wrapped = Binary(ctx, "Add", i64, dim, suffix + "_wrapped");
  return ctx.Emit1("Select", {neg, wrapped, i64}, {}, suffix);
}

inline AttrMap SliceMasks(int64_t begin_mask, int64_t end_mask, int64_t shrink = 0) {
  AttrMap a;
  a.Set("begin_mask", begin_mask);
  a.Set("end_mask", end_mask);
  a.Set("ellipsis_mask", int64_t{0});
  a.Set("new_axis_mask", int64_t{0});
  a.Set("shrink_axis_mask", shrink);
  return a;
}

// int64 tensor of shape `shape` (a 1-D int64 value of static length `rank`) holding each
// element's coordinate along dim d.
inline ValueId Iota(ImportContext& ctx, ValueId shape, int64_t d, int64_t rank, const std::string& suffix) {
  const ValueId n = SliceVec(ctx, shape, d, std::nullopt, true, suffix + "_n");
  AttrMap ra;
  const ValueId range = ctx.Emit1("Range", {I64(ctx, 0, suffix + "_start"), n, I64(ctx, 1, suffix + "_delta")}, {},
                                  suffix + "_range");
  std::vector<int64_t> target(static_cast<size_t>(rank), 1);
  target[static_cast<size_t>(d)] = -1;
  const ValueId col = ctx.Emit1("Reshape", {range, ctx.ConstInt64(target, false, suffix + "_target")}, {}, suffix + "_col");
  return ctx.Emit1("BroadcastTo", {col, shape}, {}, suffix);
}

}  // namespace kiln::onnxfe::arr
