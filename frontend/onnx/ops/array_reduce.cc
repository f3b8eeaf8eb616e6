// ONNX importers of the array family, reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/
// LogSumExp/SumSquare, ArgMax/ArgMin, TopK, CumSum.
#include <algorithm>

#include "frontend/onnx/ops/array_util.h"

namespace kiln::onnxfe {
namespace {

using namespace arr;

// Reduce*(data[, axes]) attrs keepdims (1), noop_with_empty_axes (0), axes (an attribute
// before the input form: ReduceSum from opset 13, the others from 18).
// ONNX reduces every dim when axes is empty or absent (unless noop_with_empty_axes); the IR
// reduces nothing for empty axes, so "all dims" is spelled out.
void ImportReduce(ImportContext& ctx) {
  const std::string& op = ctx.op();
  const bool keep = ctx.attr_int("keepdims", 1) != 0;
  const bool noop = ctx.attr_int("noop_with_empty_axes", 0) != 0;
  const bool axes_input = op == "ReduceSum" ? ctx.opset() >= 13 : ctx.opset() >= 18;
  std::optional<std::vector<int64_t>> axes;  // nullopt: a run-time input
  bool dynamic = false;
  if (ctx.has_attr("axes")) {
    axes = ctx.attr_ints("axes");
  } else if (axes_input && ctx.has_input(1)) {
    if (!ctx.validate_only()) {
      CheckIndexDtype(ctx, 1, "axes");
      axes = KnownInts(ctx, 1);
      dynamic = !axes;
    }
  } else {
    axes = std::vector<int64_t>{};
  }
  if (ctx.validate_only()) return;
  CheckReal(ctx, 0);
  const DType t = ctx.input_dtype(0);
  const bool needs_float = op == "ReduceLogSum" || op == "ReduceLogSumExp";
  if (needs_float && !IsFloating(t)) ctx.Unsupported(fmt::format("dtype {} is not supported (floating-point types only)", DTypeName(t)));
  const ValueId x = ctx.input(0);
  ValueId axes_v;
  if (!dynamic && axes->empty()) {
    if (noop) return ctx.SetOutput(0, ctx.Emit1("Identity", {x}));
    const int64_t r = RankOf(ctx, 0);
    if (r >= 0) {
      std::vector<int64_t> all;
      for (int64_t i = 0; i < r; ++i) all.push_back(i);
      axes_v = ctx.ConstInt64(all, false, "axes");
    } else {
      const ValueId rank = CastTo(ctx, ctx.Emit1("Rank", {x}, {}, "rank"), DType::kInt64, "rank_i64");
      axes_v = ctx.Emit1("Range", {I64(ctx, 0, "axes_start"), rank, I64(ctx, 1, "axes_delta")}, {}, "axes");
    }
  } else if (!dynamic) {
    const int64_t r = RankOf(ctx, 0);
    if (r >= 0)
      for (int64_t a : *axes) NormAxis(ctx, a, r, "axes entry");
    axes_v = ctx.ConstInt64(*axes, false, "axes");
  } else {
    // A run-time axes tensor: the IR agrees with ONNX unless it is empty and noop_with_empty_axes=0.
    const ir::SymShape s = ctx.input_shape(1);
    const bool nonempty = s.rank_known && s.rank() == 1 && ir::IsStatic(s.dims[0]) && s.dims[0] > 0;
    axes_v = CastTo(ctx, ctx.input(1), DType::kInt64, "axes_i64");
    if (!noop && !nonempty) {
      // Empty at run time means every dim: append Range(0, rank)[:n] with n = rank when the
      // axes are empty, else 0 (repeated axes are allowed by the IR reductions).
      const ValueId rank = CastTo(ctx, ctx.Emit1("Rank", {x}, {}, "rank"), DType::kInt64, "rank_i64");
      const ValueId all = ctx.Emit1("Range", {I64(ctx, 0, "all_start"), rank, I64(ctx, 1, "all_delta")}, {}, "all_axes");
      AttrMap sa;
      sa.Set("out_type", DType::kInt64);
      const ValueId count = ctx.Emit1("Size", {axes_v}, std::move(sa), "axes_count");
      const ValueId empty = Binary(ctx, "Equal", count, I64(ctx, 0, "zero"), "axes_empty");
      const ValueId n = ctx.Emit1("Select", {empty, rank, I64(ctx, 0, "none")}, {}, "extra_count");
      const ValueId n1 = ctx.Emit1("Reshape", {n, ctx.ConstInt64({1}, false, "n_shape")}, {}, "extra_count_1d");
      const ValueId extra = ctx.Emit1("Slice", {all, ctx.ConstInt64({0}, false, "extra_begin"), n1}, {}, "extra_axes");
      axes_v = ctx.Emit1("Concat", {axes_v, extra, I64(ctx, 0, "concat_axis")}, {}, "axes");
    }
  }
  AttrMap a;
  a.Set("keep_dims", keep);
  auto reduce = [&](const char* ir_op, ValueId in, bool keep_dims, const std::string& sfx) {
    AttrMap at;
    at.Set("keep_dims", keep_dims);
    return ctx.Emit1(ir_op, {in, axes_v}, std::move(at), sfx);
  };
  if (op == "ReduceSum") return ctx.SetOutput(0, reduce("ReduceSum", x, keep, ""));
  if (op == "ReduceMean") return ctx.SetOutput(0, reduce("ReduceMean", x, keep, ""));
  if (op == "ReduceMax") return ctx.SetOutput(0, reduce("ReduceMax", x, keep, ""));
  if (op == "ReduceMin") return ctx.SetOutput(0, reduce("ReduceMin", x, keep, ""));
  if (op == "ReduceProd") return ctx.SetOutput(0, reduce("ReduceProd", x, keep, ""));
  if (op == "ReduceL2") return ctx.SetOutput(0, reduce("ReduceEuclideanNorm", x, keep, ""));
  if (op == "ReduceL1") return ctx.SetOutput(0, reduce("ReduceSum", ctx.Emit1("Abs", {x}, {}, "abs"), keep, ""));
  if (op == "ReduceSumSquare") return ctx.SetOutput(0, reduce("ReduceSum", ctx.Emit1("Square", {x}, {}, "square"), keep, ""));
  if (op == "ReduceLogSum") return ctx.SetOutput(0, ctx.Emit1("Log", {reduce("ReduceSum", x, keep, "sum")}));
  // ReduceLogSumExp: m + log(sum(exp(x - m))) with m the max (0 where it is not finite).
  const ValueId m = reduce("ReduceMax", x, true, "max");
  const ValueId mz = ctx.Emit1("Select", {ctx.Emit1("IsFinite", {m}, {}, "max_finite"), m, ctx.Emit1("ZerosLike", {m}, {}, "zeros")}, {},
                               "shift");
  const ValueId e = ctx.Emit1("Exp", {Binary(ctx, "Sub", x, mz, "shifted")}, {}, "exp");
  const ValueId s = ctx.Emit1("Log", {reduce("ReduceSum", e, keep, "sum")}, {}, "log");
  const ValueId shift = keep ? mz : reduce("ReduceMax", mz, false, "shift_squeezed");
  ctx.SetOutput(0, Binary(ctx, "Add", s, shift, ""));
}
KILN_ONNX_IMPORTERS(ImportReduce, "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare");

// ArgMax/ArgMin(data) attrs axis (0), keepdims (1), select_last_index (0). The last index is
// found on the input reversed along axis: dim - 1 - argmax(reversed).
void ImportArg(ImportContext& ctx) {
  const int64_t axis = ctx.attr_int("axis", 0);
  const bool keep = ctx.attr_int("keepdims", 1) != 0;
  const bool last = ctx.attr_int("select_last_index", 0) != 0;
  if (ctx.validate_only()) return;
  CheckReal(ctx, 0);
  const int64_t r = RankOf(ctx, 0);
  if (r >= 0) NormAxis(ctx, axis, r);
  ValueId x = ctx.input(0);
  if (last) x = ctx.Emit1("Reverse", {x, ctx.ConstInt64({axis}, false, "reverse_axis")}, {}, "reversed");
  AttrMap a;
  a.Set("output_type", DType::kInt64);
  ValueId y = ctx.Emit1(ctx.op(), {x, I64(ctx, axis, "axis")}, std::move(a), keep || last ? "arg" : "");
  if (last) {
    const ValueId lastidx = Binary(ctx, "Sub", DimOf(ctx, ctx.input(0), axis, "dim"), I64(ctx, 1, "one"), "last");
    y = Binary(ctx, "Sub", lastidx, y, keep ? "arg_last" : "");
  }
  if (keep) y = ctx.Emit1("ExpandDims", {y, I64(ctx, axis, "keep_axis")});
  ctx.SetOutput(0, y);
}
KILN_ONNX_IMPORTERS(ImportArg, "ArgMax", "ArgMin");

// TopK(X, K) attrs axis (-1), largest (1), sorted (1). The IR TopK works on the last dim and
// finds the largest, lower index first on ties (as ONNX): other axes are transposed to the
// end; largest=0 runs on Neg(x) (floats) or ~x (integers: order-reversing and exact), and the
// values are mapped back the same way. TopK-1 (opsets 1-9) has k as an attribute; TopK-1 and
// TopK-10 have neither largest nor sorted (their meaning is the defaults').
void ImportTopK(ImportContext& ctx) {
  if (ctx.opset() < 10) {
    if (ctx.num_inputs() != 1) ctx.Invalid(fmt::format("TopK-1 has one input, got {}", ctx.num_inputs()));
    ctx.SetConstantInput(1, Tensor::FromVector(DType::kInt64, Shape{1}, std::vector<int64_t>{ctx.attr_int("k")}), "k");
  }
  const int64_t axis_attr = ctx.attr_int("axis", -1);
  const bool largest = ctx.attr_int("largest", 1) != 0;
  (void)ctx.attr_int("sorted", 1);  // the IR always sorts, which sorted=0 permits
  if (ctx.validate_only()) return;
  CheckReal(ctx, 0);
  CheckIndexDtype(ctx, 1, "K");
  const int64_t r = RankOf(ctx, 0);
  ValueId x = ctx.input(0);
  const DType t = ctx.input_dtype(0);
  int64_t axis = axis_attr;
  std::vector<int64_t> perm;
  if (r >= 0) {
    if (r == 0) ctx.Invalid("input must have rank >= 1");
    axis = NormAxis(ctx, axis_attr, r);
    if (axis != r - 1) {
      for (int64_t i = 0; i < r; ++i) perm.push_back(i);
      std::swap(perm[static_cast<size_t>(axis)], perm.back());
    }
  } else if (axis_attr != -1) {
    ctx.Unsupported("an axis other than -1 needs an input of known rank");
  }
  const char* flip = IsFloating(t) ? "Neg" : "Invert";
  if (!perm.empty()) x = ctx.Emit1("Transpose", {x, ctx.ConstInt64(perm, false, "perm")}, {}, "transposed");
  if (!largest) x = ctx.Emit1(flip, {x}, {}, "flipped");
  const ValueId k = CastTo(ctx, ToScalar(ctx, ctx.input(1), "k"), DType::kInt64, "k_i64");
  AttrMap a;
  a.Set("sorted", true);
  a.Set("index_type", DType::kInt64);
  std::vector<ValueId> outs = ctx.Emit("TopK", {x, k}, std::move(a), 2, "topk");
  ValueId values = outs[0], indices = outs[1];
  if (!largest) values = ctx.Emit1(flip, {values}, {}, "values_unflipped");
  if (!perm.empty()) {
    values = ctx.Emit1("Transpose", {values, ctx.ConstInt64(perm, false, "perm_values")}, {}, "values");
    indices = ctx.Emit1("Transpose", {indices, ctx.ConstInt64(perm, false, "perm_indices")}, {}, "indices");
  }
  ctx.SetOutput(0, values);
  ctx.SetOutput(1, indices);
}
KILN_ONNX_IMPORTER("TopK", ImportTopK);

// CumSum(x, axis) attrs exclusive, reverse -> IR Cumsum.
void ImportCumSum(ImportContext& ctx) {
  const bool exclusive = ctx.attr_int("exclusive", 0) != 0, reverse = ctx.attr_int("reverse", 0) != 0;
  if (ctx.validate_only()) return;
  CheckReal(ctx, 0);
  CheckIndexDtype(ctx, 1, "axis");
  AttrMap a;
  a.Set("exclusive", exclusive);
  a.Set("reverse", reverse);
  ctx.SetOutput(0, ctx.Emit1("Cumsum", {ctx.input(0), ToScalar(ctx, ctx.input(1), "axis")}, std::move(a)));
}
KILN_ONNX_IMPORTER("CumSum", ImportCumSum);

}  // namespace

}  // namespace kiln::onnxfe
