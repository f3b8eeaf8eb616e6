// Shape functions of the array family, part 2: slicing, reversing, gathers/scatters, one-hot,
// data-dependent selections (Where, Unique) and TopK. Semantics: docs/ops/array.md.
#include <algorithm>

#include <fmt/format.h>

#include "ir/ops/array_common.h"

namespace kiln::ir {
namespace {

using array::ConstInts;
using array::ConstScalar;
using array::NormalizeAxis;
using array::RequireIndexInput;

std::string ShapeStr(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }
SymShape UnknownDims(int rank) { return SymShape::Of(std::vector<Dim>(static_cast<size_t>(rank), kUnknownDim)); }

// ---- Slice(x, begin, size) ----
void InferSlice(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "begin");
  RequireIndexInput(ctx, 2, "size");
  const SymShape& in = ctx.input_shape(0);
  auto begin = ConstInts(ctx, 1);
  auto size = ConstInts(ctx, 2);
  int rank = in.rank_known ? in.rank() : -1;
  if (rank < 0) {
    if (auto n = array::StaticLength(ctx, 1)) rank = static_cast<int>(*n);
    else if (auto m = array::StaticLength(ctx, 2)) rank = static_cast<int>(*m);
  }
  if (rank < 0) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  if ((begin && static_cast<int>(begin->size()) != rank) || (size && static_cast<int>(size->size()) != rank))
    ctx.Fail(fmt::format("begin and size must have {} entries (the input rank), got {} and {}", rank,
                         begin ? begin->size() : rank, size ? size->size() : rank));
  std::vector<Dim> dims(static_cast<size_t>(rank), kUnknownDim);
  if (!size) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
  for (int d = 0; d < rank; ++d) {
    const size_t i = static_cast<size_t>(d);
    const Dim x = in.rank_known ? in.dims[i] : kUnknownDim;
    const int64_t s = (*size)[i];
    if (s < -1) ctx.Fail(fmt::format("size[{}] = {} must be >= -1", d, s));
    if (s >= 0) {
      dims[i] = s;
      if (begin && IsStatic(x) && ((*begin)[i] < 0 || (*begin)[i] + s > x))
        ctx.Fail(fmt::format("expected begin[{}] in [0, {}] and begin[{}] + size[{}] <= {}, got begin {} size {} for input shape {}", d, x,
                             d, d, x, (*begin)[i], s, ShapeStr(ctx, in)));
    } else if (begin) {
      const int64_t b = (*begin)[i];
      if (IsStatic(x)) {
        if (b < 0 || b > x) ctx.Fail(fmt::format("expected begin[{}] in [0, {}], got {} for input shape {}", d, x, b, ShapeStr(ctx, in)));
        dims[i] = x - b;
      } else if (b == 0) {
        dims[i] = x;
      }
    }
  }
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
}

// ---- StridedSlice(x, begin, end, strides) attrs *_mask ----
void InferStridedSlice(InferContext& ctx) {
  for (int i = 1; i <= 3; ++i) RequireIndexInput(ctx, i, i == 1 ? "begin" : i == 2 ? "end" : "strides");
  const SymShape& in = ctx.input_shape(0);
  auto begin = ConstInts(ctx, 1), end = ConstInts(ctx, 2), strides = ConstInts(ctx, 3);
  std::optional<int64_t> len;
  for (int i = 1; i <= 3 && !len; ++i) len = array::StaticLength(ctx, i);
  if (!in.rank_known || !len) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  const array::StridedSliceMasks m = array::StridedSliceMasksOf(ctx.attrs());
  array::StridedSliceResult r;
  std::string err = array::ComputeStridedSlice(in.dims, *len, begin ? &*begin : nullptr, end ? &*end : nullptr,
                                               strides ? &*strides : nullptr, m, &r);
  if (!err.empty()) ctx.Fail(fmt::format("{} (input shape {})", err, ShapeStr(ctx, in)));
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(r.final_shape));
}

// ---- Reverse(x, axes) ----
void InferReverse(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "axis");
  const SymShape& in = ctx.input_shape(0);
  if (auto axes = ConstInts(ctx, 1); axes && in.rank_known) {
    std::vector<bool> seen(static_cast<size_t>(in.rank()), false);
    for (int64_t a : *axes) {
      auto axis = NormalizeAxis(a, in.rank());
      if (!axis) ctx.Fail(fmt::format("axis {} is out of range [{}, {}) for input shape {}", a, -in.rank(), in.rank(), ShapeStr(ctx, in)));
      if (seen[static_cast<size_t>(*axis)]) ctx.Fail(fmt::format("axis {} is specified more than once", *axis));
      seen[static_cast<size_t>(*axis)] = true;
    }
  }
  ctx.SetOutput(0, ctx.input_dtype(0), in);
}

// ---- Gather(params, indices, axis) attr batch_dims ----
void InferGather(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "indices", 64);
  RequireIndexInput(ctx, 2, "axis", 1);
  const SymShape& params = ctx.input_shape(0);
  const SymShape& indices = ctx.input_shape(1);
  const DType dtype = ctx.input_dtype(0);
  if (!params.rank_known || !indices.rank_known) return ctx.SetOutput(0, dtype, SymShape::Unknown());
  if (params.rank() < 1) ctx.Fail("params must be at least 1-D, got a scalar");
  int64_t batch_dims = ctx.attrs().GetOr<int64_t>("batch_dims", 0);
  if (batch_dims < -indices.rank() || batch_dims > indices.rank())
    ctx.Fail(fmt::format("batch_dims {} is out of range [{}, {}]", batch_dims, -indices.rank(), indices.rank()));
  if (batch_dims < 0) batch_dims += indices.rank();
  auto axis_value = ConstScalar(ctx, 2);
  if (!axis_value) return ctx.SetOutput(0, dtype, UnknownDims(params.rank() - 1 + indices.rank() - static_cast<int>(batch_dims)));
  auto axis = NormalizeAxis(*axis_value, params.rank());
  if (!axis) ctx.Fail(fmt::format("axis {} is out of range [{}, {}) for params shape {}", *axis_value, -params.rank(), params.rank(),
                                  ShapeStr(ctx, params)));
  if (batch_dims > 0 && batch_dims >= params.rank())
    ctx.Fail(fmt::format("batch_dims ({}) must be less than the rank of params ({})", batch_dims, params.rank()));
  if (*axis < batch_dims) ctx.Fail(fmt::format("batch_dims ({}) must be <= axis ({})", batch_dims, *axis));
  std::vector<Dim> dims;
  for (int64_t i = 0; i < *axis; ++i) {
    Dim d = params.dims[static_cast<size_t>(i)];
    if (i < batch_dims)
      d = array::MergeDim(ctx, d, indices.dims[static_cast<size_t>(i)],
                          fmt::format("params dim {} ({}) vs indices dim {} ({})", i, ShapeStr(ctx, params), i, ShapeStr(ctx, indices)));
    dims.push_back(d);
  }
  for (int64_t i = batch_dims; i < indices.rank(); ++i) dims.push_back(indices.dims[static_cast<size_t>(i)]);
  for (int64_t i = *axis + 1; i < params.rank(); ++i) dims.push_back(params.dims[static_cast<size_t>(i)]);
  ctx.SetOutput(0, dtype, SymShape::Of(std::move(dims)));
}

// ---- GatherNd(params, indices) ----
void InferGatherNd(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "indices", 64);
  const SymShape& params = ctx.input_shape(0);
  const SymShape& indices = ctx.input_shape(1);
  if (!params.rank_known || !indices.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  if (indices.rank() < 1) ctx.Fail("indices must be at least 1-D");
  const Dim k = indices.dims.back();
  if (!IsStatic(k)) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  if (k > params.rank())
    ctx.Fail(fmt::format("indices {} index {} dims, but params {} has only {}", ShapeStr(ctx, indices), k, ShapeStr(ctx, params), params.rank()));
  std::vector<Dim> dims(indices.dims.begin(), indices.dims.end() - 1);
  dims.insert(dims.end(), params.dims.begin() + k, params.dims.end());
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of(std::move(dims)));
}

// ---- ScatterNd(indices, updates, shape) ----
void InferScatterNd(InferContext& ctx) {
  RequireIndexInput(ctx, 0, "indices", 64);
  RequireIndexInput(ctx, 2, "shape");
  if (ctx.input_dtype(0) != ctx.input_dtype(2)) ctx.Fail("indices and shape must have the same dtype");
  auto target = array::ShapeVectorInput(ctx, 2);
  if (!target) return ctx.SetOutput(0, ctx.input_dtype(1), SymShape::Unknown());
  std::vector<Dim> dims;
  for (const array::SymElem& e : *target) dims.push_back(e.is_const ? e.value : e.dim);
  ctx.SetOutput(0, ctx.input_dtype(1), SymShape::Of(std::move(dims)));
}

// ---- OneHot(indices, depth, on_value, off_value) attr axis ----
void InferOneHot(InferContext& ctx) {
  const DType it = ctx.input_dtype(0);
  if (it != DType::kUInt8 && it != DType::kInt8 && it != DType::kInt32 && it != DType::kInt64)
    ctx.Fail(fmt::format("indices must be uint8, int8, int32 or int64, got {}", DTypeName(it)));
  if (ctx.input_dtype(1) != DType::kInt32 && ctx.input_dtype(1) != DType::kInt64) ctx.Fail("depth must be int32");
  if (ctx.input_dtype(2) != ctx.input_dtype(3))
    ctx.Fail(fmt::format("on_value and off_value must have the same dtype, got {} and {}", DTypeName(ctx.input_dtype(2)),
                         DTypeName(ctx.input_dtype(3))));
  const SymShape& in = ctx.input_shape(0);
  if (!in.rank_known) return ctx.SetOutput(0, ctx.input_dtype(2), SymShape::Unknown());
  const int64_t axis_attr = ctx.attrs().GetOr<int64_t>("axis", -1);
  if (axis_attr < -1 || axis_attr > in.rank()) ctx.Fail(fmt::format("axis {} must be -1 or in [0, {}]", axis_attr, in.rank()));
  const int64_t axis = axis_attr == -1 ? in.rank() : axis_attr;
  Dim depth = kUnknownDim;
  if (auto d = ConstScalar(ctx, 1)) {
    if (*d < 0) ctx.Fail(fmt::format("depth must be non-negative, got {}", *d));
    depth = *d;
  }
  SymShape out = in;
  out.dims.insert(out.dims.begin() + axis, depth);
  ctx.SetOutput(0, ctx.input_dtype(2), out);
}

// ---- Where(condition) -> int64 [num_true, rank] ----
void InferWhere(InferContext& ctx) {
  const SymShape& in = ctx.input_shape(0);
  ctx.SetOutput(0, DType::kInt64, SymShape::Of({kUnknownDim, in.rank_known ? in.rank() : kUnknownDim}));
}

// ---- Unique(x) attr out_idx -> y, idx ----
void InferUnique(InferContext& ctx) {
  const SymShape& in = ctx.input_shape(0);
  if (in.rank_known && in.rank() != 1) ctx.Fail(fmt::format("x must be 1-D, got shape {}", ShapeStr(ctx, in)));
  const DType idx = ctx.attrs().GetOr<DType>("out_idx", DType::kInt32);
  if (idx != DType::kInt32 && idx != DType::kInt64) ctx.Fail(fmt::format("out_idx must be int32 or int64, got {}", DTypeName(idx)));
  if (ctx.num_outputs() != 2) ctx.Fail(fmt::format("expected 2 outputs (y, idx), got {}", ctx.num_outputs()));
  const Dim n = in.rank_known ? in.dims[0] : kUnknownDim;
  ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Of({n == 0 ? 0 : n == 1 ? 1 : kUnknownDim}));
  ctx.SetOutput(1, idx, SymShape::Of({n}));
}

// ---- TopK(x, k) attrs sorted, index_type -> values, indices ----
void InferTopK(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "k", 0);
  const SymShape& in = ctx.input_shape(0);
  const DType idx = ctx.attrs().GetOr<DType>("index_type", DType::kInt32);
  if (idx != DType::kInt16 && idx != DType::kInt32 && idx != DType::kInt64)
    ctx.Fail(fmt::format("index_type must be int16, int32 or int64, got {}", DTypeName(idx)));
  if (ctx.num_outputs() != 2) ctx.Fail(fmt::format("expected 2 outputs (values, indices), got {}", ctx.num_outputs()));
  SymShape out = SymShape::Unknown();
  if (in.rank_known) {
    if (in.rank() < 1) ctx.Fail("input must be at least 1-D, got a scalar");
    out = in;
    Dim k = kUnknownDim;
    if (auto kv = ConstScalar(ctx, 1)) {
      if (*kv < 0) ctx.Fail(fmt::format("k must be non-negative, got {}", *kv));
      if (IsStatic(in.dims.back()) && *kv > in.dims.back())
        ctx.Fail(fmt::format("input must have at least k = {} columns, got shape {}", *kv, ShapeStr(ctx, in)));
      k = *kv;
    }
    out.dims.back() = k;
  }
  ctx.SetOutput(0, ctx.input_dtype(0), out);
  ctx.SetOutput(1, idx, out);
}

}  // namespace

void RegisterArrayIndexOps(OpRegistry& r) {
  r.Add({"Slice", 3, 3, InferSlice});
  r.Add({"StridedSlice", 4, 4, InferStridedSlice});
  r.Add({"Reverse", 2, 2, InferReverse});
  r.Add({"Gather", 3, 3, InferGather});
  r.Add({"GatherNd", 2, 2, InferGatherNd});
  r.Add({"ScatterNd", 3, 3, InferScatterNd});
  r.Add({"OneHot", 4, 4, InferOneHot});
  r.Add({"Where", 1, 1, InferWhere});
  r.Add({"Unique", 1, 1, InferUnique});
  r.Add({"TopK", 2, 2, InferTopK});
}

}  // namespace kiln::ir
