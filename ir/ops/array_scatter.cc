// Shape functions of the array family, part 4: TensorScatter (scatter into a tensor with a
// reduction) and UniqueWithCounts (unique elements or slices, with counts, first occurrences
// and optional sorting). Semantics: docs/ops/array.md.
#include <fmt/format.h>

#include "ir/ops/array_common.h"

namespace kiln::ir {

void RegisterArrayScatterOps(OpRegistry& registry);

namespace {

std::string S(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }

// ---- TensorScatter(tensor, indices [..., K], updates) attr reduction -> tensor's shape ----
void InferTensorScatter(InferContext& ctx) {
  const std::string red = ctx.attrs().GetOr<std::string>("reduction", "none");
  if (red != "none" && red != "add" && red != "mul" && red != "min" && red != "max")
    ctx.Fail(fmt::format("reduction '{}' is not one of none, add, mul, min, max", red));
  const DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(2) != t)
    ctx.Fail(
        fmt::format("updates must have the tensor's dtype {}, got {}", DTypeName(t), DTypeName(ctx.input_dtype(2))));
  if (red == "none" ? t == DType::kInvalid : !(IsFloating(t) || IsInteger(t) || t == DType::kBool))
    ctx.Fail(fmt::format("reduction '{}' needs a numeric or bool tensor, got {}", red, DTypeName(t)));
  const DType it = ctx.input_dtype(1);
  if (it != DType::kInt32 && it != DType::kInt64)
    ctx.Fail(fmt::format("indices must be int32 or int64, got {}", DTypeName(it)));
  const SymShape& data = ctx.input_shape(0);
  const SymShape& idx = ctx.input_shape(1);
  const SymShape& upd = ctx.input_shape(2);
  if (idx.rank_known && idx.rank() < 1) ctx.Fail("indices must have rank >= 1");
  if (data.rank_known && idx.rank_known && IsStatic(idx.dims.back())) {
    const int64_t k = idx.dims.back();
    if (k > data.rank())
      ctx.Fail(fmt::format("index rows of length {} address more dims than the tensor {} has", k, S(ctx, data)));
    // updates = indices.shape[:-1] + tensor.shape[K:]
    std::vector<Dim> want(idx.dims.begin(), idx.dims.end() - 1);
    want.insert(want.end(), data.dims.begin() + k, data.dims.end());
    if (upd.rank_known) {
      if (upd.rank() != static_cast<int>(want.size()))
        ctx.Fail(fmt::format("updates must have shape {} (indices {} and tensor {}), got {}",
                             S(ctx, SymShape::Of(want)), S(ctx, idx), S(ctx, data), S(ctx, upd)));
      for (size_t i = 0; i < want.size(); ++i)
        array::MergeDim(ctx, want[i], upd.dims[i],
                        fmt::format("updates must have shape {}, got {}", S(ctx, SymShape::Of(want)), S(ctx, upd)));
    }
  }
  ctx.SetOutput(0, t, data);
}

// ---- UniqueWithCounts(x) attrs axis (optional), sorted, out_idx -> y, idx, count, first ----
void InferUniqueWithCounts(InferContext& ctx) {
  if (ctx.num_outputs() != 4)
    ctx.Fail(fmt::format("expected 4 outputs (y, idx, count, first_index), got {}", ctx.num_outputs()));
  const DType it = ctx.attrs().GetOr<DType>("out_idx", DType::kInt64);
  if (it != DType::kInt32 && it != DType::kInt64)
    ctx.Fail(fmt::format("out_idx must be int32 or int64, got {}", DTypeName(it)));
  const SymShape& x = ctx.input_shape(0);
  const DType xt = ctx.input_dtype(0);
  Dim n = kUnknownDim;  // the number of elements (slices) looked at
  SymShape y = SymShape::Of({kUnknownDim});
  if (ctx.attrs().Has("axis")) {
    if (!x.rank_known) {
      y = SymShape::Unknown();
    } else {
      const int64_t a = ctx.attrs().Int("axis");
      const auto axis = array::NormalizeAxis(a, x.rank());
      if (!axis) ctx.Fail(fmt::format("axis {} is out of range for input shape {}", a, S(ctx, x)));
      n = x.dims[static_cast<size_t>(*axis)];
      y = x;
      y.dims[static_cast<size_t>(*axis)] = n == 0 || n == 1 ? n : kUnknownDim;
    }
  } else if (x.IsFullyStatic()) {
    n = NumElements(*x.ToStatic());
    y.dims[0] = n == 0 || n == 1 ? n : kUnknownDim;
  }
  const Dim u = n == 0 || n == 1 ? n : kUnknownDim;
  ctx.SetOutput(0, xt, y);
  ctx.SetOutput(1, it, SymShape::Of({n}));
  ctx.SetOutput(2, it, SymShape::Of({u}));
  ctx.SetOutput(3, it, SymShape::Of({u}));
}

}  // namespace

void RegisterArrayScatterOps(OpRegistry& r) {
  r.Add({"TensorScatter", 3, 3, InferTensorScatter});
  r.Add({"UniqueWithCounts", 1, 1, InferUniqueWithCounts});
}

}  // namespace kiln::ir
