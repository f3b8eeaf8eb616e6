// ONNX importers of the nn family, part 2: Gemm, MatMul, MatMulInteger, BatchNormalization,
// InstanceNormalization, MeanVarianceNormalization, LayerNormalization, LpNormalization, Softmax, LogSoftmax, Hardmax, LRN,
// Resize, Upsample, DepthToSpace, SpaceToDepth, Einsum. See docs/onnx/nn.md.
#include <onnx/onnx_pb.h>

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "frontend/onnx/ops/nn_common.h"
#include "ir/ops/nn_util.h"
#include "ir/ops/resize_util.h"

namespace kiln::onnxfe::nn {
namespace {

bool IsMatMulType(DType t) {
  return IsFloating(t) || t == DType::kInt32 || t == DType::kInt64 || t == DType::kUInt32 || t == DType::kUInt64;
}

void CheckFloatInput(ImportContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (!IsFloating(t)) ctx.Unsupported(fmt::format("{} of dtype {} is not supported (expected a floating type)", what, DTypeName(t)));
}

ir::ValueId ExpandDimsOf(ImportContext& ctx, ir::ValueId x, int64_t axis, const std::string& suffix) {
  return ctx.Emit1("ExpandDims", {x, ctx.ConstInt64({axis}, true, suffix + "_axis")}, {}, suffix);
}

ir::ValueId Reduce(ImportContext& ctx, const char* op, ir::ValueId x, const std::vector<int64_t>& axes, const std::string& suffix) {
  return ctx.Emit1(op, {x, ctx.ConstInt64(axes, false, suffix + "_axes")}, Attrs({{"keep_dims", true}}), suffix);
}

// [C] -> [C, 1, ..., 1] (`ones` trailing ones): folded for constants, else a Reshape.
ir::ValueId PerChannel(ImportContext& ctx, ir::ValueId v, int ones, const std::string& suffix) {
  if (const Tensor* c = ctx.graph().ConstantOf(v)) {
    Shape sh = {c->num_elements()};
    for (int i = 0; i < ones; ++i) sh.push_back(1);
    return ctx.Constant(c->Clone().Reshaped(sh), suffix);
  }
  std::vector<int64_t> shape = {-1};
  for (int i = 0; i < ones; ++i) shape.push_back(1);
  return ctx.Emit1("Reshape", {v, ctx.ConstInt64(shape, false, suffix + "_shape")}, {}, suffix);
}

int64_t NormAxis(ImportContext& ctx, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) ctx.Invalid(fmt::format("axis {} is out of range for rank {}", axis, rank));
  return axis < 0 ? axis + rank : axis;
}

// ---- matrix products ----

// numpy matmul of a and b (ranks ra, rb >= 1).
ir::ValueId NumpyMatMul(ImportContext& ctx, ir::ValueId a, ir::ValueId b, int ra, int rb) {
  if (ra == 1) a = ExpandDimsOf(ctx, a, 0, "a_2d");
  if (rb == 1) b = ExpandDimsOf(ctx, b, 1, "b_2d");
  const int ea = std::max(ra, 2), eb = std::max(rb, 2);
  ir::ValueId y = (ea == 2 && eb == 2) ? ctx.Emit1("MatMul", {a, b}, {}, ra == 1 || rb == 1 ? "matmul" : "")
                                       : ctx.Emit1("BatchMatMul", {a, b}, {}, ra == 1 || rb == 1 ? "matmul" : "");
  const int ry = std::max(ea, eb);
  std::vector<int64_t> squeeze;
  if (ra == 1) squeeze.push_back(ry - 2);
  if (rb == 1) squeeze.push_back(ry - 1);
  if (!squeeze.empty()) y = ctx.Emit1("Squeeze", {y}, Attrs({{"axes", squeeze}}));
  return y;
}

void ImportMatMul(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(0);
  if (!IsMatMulType(t)) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  if (ctx.input_dtype(1) != t)
    ctx.Invalid(fmt::format("A and B must have the same dtype, got {} and {}", DTypeName(t), DTypeName(ctx.input_dtype(1))));
  const int ra = RequireRank(ctx, 0, "A"), rb = RequireRank(ctx, 1, "B");
  if (ra < 1 || rb < 1) ctx.Invalid("MatMul operands must have rank >= 1");
  ctx.SetOutput(0, NumpyMatMul(ctx, ctx.input(0), ctx.input(1), ra, rb));
}
KILN_ONNX_IMPORTER("MatMul", ImportMatMul);

// MatMulInteger: (A - a_zero_point) @ (B - b_zero_point) in int32.
void ImportMatMulInteger(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  for (int i = 0; i < 4; ++i) {
    if (!ctx.has_input(i)) continue;
    const DType t = ctx.input_dtype(i);
    if (t != DType::kInt8 && t != DType::kUInt8) ctx.Unsupported(fmt::format("input {} has dtype {} (expected int8 or uint8)", i, DTypeName(t)));
  }
  const int ra = RequireRank(ctx, 0, "A"), rb = RequireRank(ctx, 1, "B");
  if (ra < 1 || rb < 1) ctx.Invalid("operands must have rank >= 1");
  ir::ValueId a = Cast(ctx, ctx.input(0), DType::kInt32, "a_i32");
  ir::ValueId b = Cast(ctx, ctx.input(1), DType::kInt32, "b_i32");
  if (ctx.has_input(2)) {
    ir::ValueId zp = Cast(ctx, ctx.input(2), DType::kInt32, "a_zp_i32");
    const ir::SymShape zs = ctx.input_shape(2);
    // A 1-D zero point of A is per row ([M] -> [M, 1]); one element is per tensor.
    if (zs.rank_known && zs.rank() == 1 && ra >= 2) {
      if (!ir::IsStatic(zs.dims[0])) ctx.Unsupported("a_zero_point must have a static shape");
      zp = ctx.Emit1("Reshape", {zp, ctx.ConstInt64({zs.dims[0] == 1 ? 1 : -1, 1}, false, "a_zp_shape")}, {}, "a_zp_rows");
    } else if (!zs.rank_known) {
      ctx.Unsupported("a_zero_point must have a known rank");
    }
    a = ctx.Emit1("Sub", {a, zp}, {}, "a_centered");
  }
  if (ctx.has_input(3)) {
    ir::ValueId zp = Cast(ctx, ctx.input(3), DType::kInt32, "b_zp_i32");
    b = ctx.Emit1("Sub", {b, zp}, {}, "b_centered");
  }
  ctx.SetOutput(0, NumpyMatMul(ctx, a, b, ra, rb));
}
KILN_ONNX_IMPORTER("MatMulInteger", ImportMatMulInteger);

// Det: the determinant of each innermost square matrix.
void ImportDet(ImportContext& ctx) {
  CheckFloatInput(ctx, 0, "X");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("MatrixDeterminant", {ctx.input(0)}));
}
KILN_ONNX_IMPORTER("Det", ImportDet);

void ImportGemm(ImportContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f), beta = ctx.attr_float("beta", 1.0f);
  const int64_t ta = ctx.attr_int("transA", 0), tb = ctx.attr_int("transB", 0);
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3) ctx.Invalid(fmt::format("expected 2 or 3 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(0);
  if (!IsMatMulType(t)) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  if (!IsFloating(t) && (alpha != 1.0f || beta != 1.0f))
    ctx.Unsupported(fmt::format("alpha {} / beta {} other than 1 on integer dtype {} are not supported", alpha, beta, DTypeName(t)));
  if (ctx.input_dtype(1) != t || (ctx.has_input(2) && ctx.input_dtype(2) != t)) ctx.Invalid("A, B and C must have one dtype");
  if (RequireRank(ctx, 0, "A") != 2 || RequireRank(ctx, 1, "B") != 2) ctx.Invalid("A and B must be 2-D");
  ir::ValueId y = ctx.Emit1("MatMul", {ctx.input(0), ctx.input(1)}, Attrs({{"transpose_a", ta != 0}, {"transpose_b", tb != 0}}),
                            "matmul");
  if (alpha != 1.0f) y = ctx.Emit1("Mul", {y, ScalarOf(ctx, t, alpha, "alpha")}, {}, "scale");
  if (ctx.has_input(2) && beta != 0.0f) {
    ir::ValueId c = ctx.input(2);
    if (beta != 1.0f) c = ctx.Emit1("Mul", {c, ScalarOf(ctx, t, beta, "beta")}, {}, "scale_c");
    y = ctx.Emit1("Add", {y, c}, {}, "add_c");
  }
  ctx.SetOutput(0, y);
}
KILN_ONNX_IMPORTER("Gemm", ImportGemm);

// ---- normalizations ----

// The compute dtype for a normalization of `t`: float32 for 16-bit floats.
DType ComputeType(DType t) { return (t == DType::kFloat16 || t == DType::kBFloat16) ? DType::kFloat32 : t; }

// BatchNormalization-14/15 with training_mode = 1: Y normalizes with the batch's statistics over
// every axis but 1 (the population variance), and the optional outputs are the updated running
// statistics, input_mean * momentum + batch_mean * (1 - momentum) (the same for the variance).
void ImportBatchNormTraining(ImportContext& ctx, float epsilon, float momentum, int rank) {
  const DType t = ctx.input_dtype(0);
  const DType ct = ComputeType(t);
  std::vector<int64_t> axes = {0};
  for (int i = 2; i < rank; ++i) axes.push_back(i);
  const ir::ValueId x = Cast(ctx, ctx.input(0), ct, "x_compute");
  const ir::ValueId mean = Reduce(ctx, "ReduceMean", x, axes, "batch_mean");
  const ir::ValueId d = ctx.Emit1("Sub", {x, mean}, {}, "centered");
  const ir::ValueId var = Reduce(ctx, "ReduceMean", ctx.Emit1("Mul", {d, d}, {}, "sq"), axes, "batch_var");
  const ir::ValueId inv = ctx.Emit1("Rsqrt", {ctx.Emit1("Add", {var, ScalarOf(ctx, ct, epsilon, "eps")}, {}, "var_eps")}, {}, "inv_std");
  const ir::ValueId scale = Cast(ctx, PerChannel(ctx, ctx.input(1), rank - 2, "scale_c"), ct, "scale_compute");
  const ir::ValueId bias = Cast(ctx, PerChannel(ctx, ctx.input(2), rank - 2, "bias_c"), ct, "bias_compute");
  ir::ValueId y = ctx.Emit1("Mul", {ctx.Emit1("Mul", {d, inv}, {}, "normalized"), scale}, {}, "scaled");
  y = ctx.Emit1("Add", {y, bias}, {}, ct == t ? "" : "biased");
  ctx.SetOutput(0, Cast(ctx, y, t, "cast"));
  const ir::ValueId flat = ctx.ConstInt64({-1}, false, "flat");
  for (int i = 1; i < 3; ++i) {
    if (!ctx.has_output(i)) continue;
    const std::string what = i == 1 ? "running_mean" : "running_var";
    const DType pt = ctx.input_dtype(2 + i);  // input_mean / input_var
    const DType pct = ComputeType(pt) == DType::kFloat64 || ct == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
    const ir::ValueId batch = Cast(ctx, ctx.Emit1("Reshape", {i == 1 ? mean : var, flat}, {}, what + "_batch"), pct,
                                   what + "_batch_compute");
    const ir::ValueId old = Cast(ctx, ctx.input(2 + i), pct, what + "_input");
    const ir::ValueId updated = ctx.Emit1(
        "Add",
        {ctx.Emit1("Mul", {old, ScalarOf(ctx, pct, momentum, what + "_momentum")}, {}, what + "_kept"),
         ctx.Emit1("Mul", {batch, ScalarOf(ctx, pct, 1.0 - static_cast<double>(momentum), what + "_rest")}, {}, what + "_new")},
        {}, what);
    ctx.SetOutput(i, Cast(ctx, updated, pt, what + "_cast"));
  }
}

void ImportBatchNorm(ImportContext& ctx) {
  const float epsilon = ctx.attr_float("epsilon", 1e-5f);
  const float momentum = ctx.attr_float("momentum", 0.9f);
  const int64_t training = ctx.opset() >= 14 ? ctx.attr_int("training_mode", 0) : 0;
  if (training != 0 && training != 1) ctx.Invalid(fmt::format("training_mode must be 0 or 1, got {}", training));
  if (ctx.opset() < 9 && ctx.attr_int("spatial", 1) != 1)
    ctx.Unsupported(fmt::format("spatial = {} (statistics per element rather than per channel, opsets 7-8) is not "
                                "supported",
                                ctx.attr_int("spatial", 1)));
  for (int i = 1; i < ctx.num_outputs(); ++i) {
    if (!ctx.has_output(i)) continue;
    if (ctx.opset() < 14)
      ctx.Unsupported(fmt::format("opset {} training outputs (mean, var, saved_mean, saved_var) are not supported; "
                                  "from opset 14 training_mode = 1 gives running_mean and running_var",
                                  ctx.opset()));
    if (!training) ctx.Invalid("the running_mean / running_var outputs need training_mode = 1");
    if (i > 2) ctx.Invalid(fmt::format("expected at most 3 outputs, got {}", ctx.num_outputs()));
  }
  if (ctx.num_inputs() != 5) ctx.Invalid(fmt::format("expected 5 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "X");
  for (int i = 1; i < 5; ++i) CheckFloatInput(ctx, i, "a parameter");
  const int rank = RequireRank(ctx, 0, "X");
  if (rank < 2) ctx.Invalid(fmt::format("X must have rank >= 2, got {}", rank));
  if (training) return ImportBatchNormTraining(ctx, epsilon, momentum, rank);
  ctx.SetOutput(0, ctx.Emit1("BatchNorm", {ctx.input(0), ctx.input(1), ctx.input(2), ctx.input(3), ctx.input(4)},
                             Attrs({{"epsilon", static_cast<double>(epsilon)}, {"axis", int64_t{1}}, {"training", false}})));
}
KILN_ONNX_IMPORTER("BatchNormalization", ImportBatchNorm);

void ImportInstanceNorm(ImportContext& ctx) {
  const float epsilon = ctx.attr_float("epsilon", 1e-5f);
  if (ctx.num_inputs() != 3) ctx.Invalid(fmt::format("expected 3 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "input");
  const DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t || ctx.input_dtype(2) != t) ctx.Invalid("input, scale and B must have one dtype");
  const int rank = RequireRank(ctx, 0, "input");
  if (rank < 3) ctx.Invalid(fmt::format("input must have rank >= 3, got {}", rank));
  const DType ct = ComputeType(t);
  std::vector<int64_t> axes;
  for (int i = 2; i < rank; ++i) axes.push_back(i);
  const ir::ValueId x = Cast(ctx, ctx.input(0), ct, "x_f32");
  const ir::ValueId mean = Reduce(ctx, "ReduceMean", x, axes, "mean");
  const ir::ValueId d = ctx.Emit1("Sub", {x, mean}, {}, "centered");
  const ir::ValueId var = Reduce(ctx, "ReduceMean", ctx.Emit1("Mul", {d, d}, {}, "sq"), axes, "var");
  const ir::ValueId inv = ctx.Emit1("Rsqrt", {ctx.Emit1("Add", {var, ScalarOf(ctx, ct, epsilon, "eps")}, {}, "var_eps")}, {}, "inv_std");
  const ir::ValueId scale = Cast(ctx, PerChannel(ctx, ctx.input(1), rank - 2, "scale_c"), ct, "scale_f32");
  const ir::ValueId bias = Cast(ctx, PerChannel(ctx, ctx.input(2), rank - 2, "bias_c"), ct, "bias_f32");
  ir::ValueId y = ctx.Emit1("Mul", {ctx.Emit1("Mul", {d, inv}, {}, "normalized"), scale}, {}, "scaled");
  y = ctx.Emit1("Add", {y, bias}, {}, ct == t ? "" : "biased");
  ctx.SetOutput(0, Cast(ctx, y, t, "cast"));
}
KILN_ONNX_IMPORTER("InstanceNormalization", ImportInstanceNorm);

// MeanVarianceNormalization (opsets 9, 13) attr axes ([0, 2, 3]): ONNX's function body in X's
// type, (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) with the means over `axes`.
void ImportMeanVarianceNorm(ImportContext& ctx) {
  const std::vector<int64_t> axes_attr = ctx.attr_ints_opt("axes").value_or(std::vector<int64_t>{0, 2, 3});
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "X");
  const DType t = ctx.input_dtype(0);
  std::vector<int64_t> axes = axes_attr;
  if (const ir::SymShape s = ctx.input_shape(0); s.rank_known)
    for (int64_t& a : axes) a = NormAxis(ctx, a, s.rank());
  const ir::ValueId x = ctx.input(0);
  const ir::ValueId mean = Reduce(ctx, "ReduceMean", x, axes, "mean");
  const ir::ValueId mean_sq = ctx.Emit1("Mul", {mean, mean}, {}, "mean_squared");
  const ir::ValueId sq_mean = Reduce(ctx, "ReduceMean", ctx.Emit1("Mul", {x, x}, {}, "x_squared"), axes, "squares_mean");
  const ir::ValueId std_dev = ctx.Emit1("Sqrt", {ctx.Emit1("Sub", {sq_mean, mean_sq}, {}, "variance")}, {}, "std");
  const ir::ValueId denom = ctx.Emit1("Add", {std_dev, ScalarOf(ctx, t, 1e-9, "epsilon")}, {}, "std_epsilon");
  ctx.SetOutput(0, ctx.Emit1("Div", {ctx.Emit1("Sub", {x, mean}, {}, "centered"), denom}));
}
KILN_ONNX_IMPORTER("MeanVarianceNormalization", ImportMeanVarianceNorm);

// LayerNormalization (opset 17): the ONNX function body, with a two-pass variance.
void ImportLayerNorm(ImportContext& ctx) {
  const int64_t axis_attr = ctx.attr_int("axis", -1);
  const float epsilon = ctx.attr_float("epsilon", 1e-5f);
  const int64_t stash = ctx.attr_int("stash_type", 1);
  if (stash != onnx::TensorProto::FLOAT && stash != onnx::TensorProto::DOUBLE)
    ctx.Unsupported(fmt::format("stash_type {} is not supported (FLOAT or DOUBLE)", stash));
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3) ctx.Invalid(fmt::format("expected 2 or 3 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "X");
  const DType t = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != t || (ctx.has_input(2) && ctx.input_dtype(2) != t)) ctx.Invalid("X, Scale and B must have one dtype");
  const int rank = RequireRank(ctx, 0, "X");
  const int64_t axis = NormAxis(ctx, axis_attr, rank);
  const DType ct = stash == onnx::TensorProto::FLOAT ? DType::kFloat32 : DType::kFloat64;
  std::vector<int64_t> axes;
  for (int64_t i = axis; i < rank; ++i) axes.push_back(i);
  const ir::ValueId x = Cast(ctx, ctx.input(0), ct, "x_stash");
  const ir::ValueId mean = Reduce(ctx, "ReduceMean", x, axes, "mean");
  const ir::ValueId d = ctx.Emit1("Sub", {x, mean}, {}, "centered");
  const ir::ValueId var = Reduce(ctx, "ReduceMean", ctx.Emit1("Mul", {d, d}, {}, "sq"), axes, "var");
  const ir::ValueId inv = ctx.Emit1("Rsqrt", {ctx.Emit1("Add", {var, ScalarOf(ctx, ct, epsilon, "eps")}, {}, "var_eps")}, {}, "inv_std");
  ir::ValueId y = Cast(ctx, ctx.Emit1("Mul", {d, inv}, {}, "normalized"), t, "normalized_t");
  y = ctx.Emit1("Mul", {y, ctx.input(1)}, {}, "scaled");
  if (ctx.has_input(2)) y = ctx.Emit1("Add", {y, ctx.input(2)}, {}, "biased");
  ctx.SetOutput(0, y);
  if (ctx.has_output(1)) ctx.SetOutput(1, mean);
  if (ctx.has_output(2)) ctx.SetOutput(2, inv);
}
KILN_ONNX_IMPORTER("LayerNormalization", ImportLayerNorm);

void ImportLpNorm(ImportContext& ctx) {
  const int64_t axis_attr = ctx.attr_int("axis", -1);
  const int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) ctx.Invalid(fmt::format("p must be 1 or 2, got {}", p));
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "input");
  const int rank = RequireRank(ctx, 0, "input");
  const int64_t axis = NormAxis(ctx, axis_attr, rank);
  const ir::ValueId x = ctx.input(0);
  const ir::ValueId norm = p == 2 ? Reduce(ctx, "ReduceEuclideanNorm", x, {axis}, "norm")
                                  : Reduce(ctx, "ReduceSum", ctx.Emit1("Abs", {x}, {}, "abs"), {axis}, "norm");
  ctx.SetOutput(0, ctx.Emit1("Div", {x, norm}));
}
KILN_ONNX_IMPORTER("LpNormalization", ImportLpNorm);

// ---- softmax family ----

template <const char* kOp>
void ImportSoftmax(ImportContext& ctx) {
  const bool v13 = ctx.opset() >= 13;
  const int64_t axis_attr = ctx.attr_int("axis", v13 ? -1 : 1);
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "input");
  const int rank = RequireRank(ctx, 0, "input");
  const int64_t axis = NormAxis(ctx, axis_attr, rank);
  // Before opset 13 the input is coerced to 2-D at `axis`: the same as one axis only for the last.
  if (!v13 && axis != rank - 1)
    ctx.Unsupported(fmt::format("opset {} {} over the flattened dims {}.. is not supported", ctx.opset(), ctx.op(), axis));
  ctx.SetOutput(0, ctx.Emit1(kOp, {ctx.input(0)}, Attrs({{"axis", axis}})));
}
constexpr char kSoftmax[] = "Softmax";
constexpr char kLogSoftmax[] = "LogSoftmax";
KILN_ONNX_IMPORTER("Softmax", ImportSoftmax<kSoftmax>);
KILN_ONNX_IMPORTER("LogSoftmax", ImportSoftmax<kLogSoftmax>);

// Hardmax: OneHot(ArgMax(x, axis), dim(axis), 1, 0, axis).
void ImportHardmax(ImportContext& ctx) {
  const bool v13 = ctx.opset() >= 13;
  const int64_t axis_attr = ctx.attr_int("axis", v13 ? -1 : 1);
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "input");
  const DType t = ctx.input_dtype(0);
  const int rank = RequireRank(ctx, 0, "input");
  const int64_t axis = NormAxis(ctx, axis_attr, rank);
  if (!v13 && axis != rank - 1)
    ctx.Unsupported(fmt::format("opset {} Hardmax over the flattened dims {}.. is not supported", ctx.opset(), axis));
  const ir::ValueId x = ctx.input(0);
  const ir::ValueId idx = ctx.Emit1("ArgMax", {x, ctx.ConstInt64({axis}, true, "axis")}, Attrs({{"output_type", DType::kInt64}}), "argmax");
  const ir::Dim dim = ctx.input_shape(0).dims[static_cast<size_t>(axis)];
  ir::ValueId depth;
  if (ir::IsStatic(dim)) {
    depth = ctx.ConstInt32({static_cast<int32_t>(dim)}, true, "depth");
  } else {
    const ir::ValueId shape = ctx.Emit1("Shape", {x}, Attrs({{"out_type", DType::kInt32}}), "shape");
    depth = ctx.Emit1("Gather", {shape, ctx.ConstInt64({axis}, true, "depth_index"), ctx.ConstInt64({0}, true, "gather_axis")}, {},
                      "depth");
  }
  ctx.SetOutput(0, ctx.Emit1("OneHot", {idx, depth, ScalarOf(ctx, t, 1.0, "one"), ScalarOf(ctx, t, 0.0, "zero")},
                             Attrs({{"axis", axis}})));
}
KILN_ONNX_IMPORTER("Hardmax", ImportHardmax);

// LRN: ONNX's window over channels [c - (size-1)/2, c + size/2 (rounded up)], alpha / size.
// An odd size is TF's symmetric window (IR LRN over the last axis of NHWC).
void ImportLRN(ImportContext& ctx) {
  const int64_t size = ctx.attr_int("size");
  const float alpha = ctx.attr_float("alpha", 1e-4f), beta = ctx.attr_float("beta", 0.75f), bias = ctx.attr_float("bias", 1.0f);
  if (size < 1) ctx.Invalid(fmt::format("size must be positive, got {}", size));
  if (size % 2 == 0) ctx.Unsupported(fmt::format("an even size ({}) is not supported (asymmetric window)", size));
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "X");
  const int rank = RequireRank(ctx, 0, "X");
  if (rank != 4) ctx.Unsupported(fmt::format("only 4-D inputs are supported, got rank {}", rank));
  const ir::ValueId nhwc = TransposeOf(ctx, ctx.input(0), {0, 2, 3, 1}, "nhwc");
  const ir::ValueId y = ctx.Emit1("LRN", {nhwc},
                                  Attrs({{"depth_radius", (size - 1) / 2},
                                         {"bias", static_cast<double>(bias)},
                                         {"alpha", static_cast<double>(alpha) / static_cast<double>(size)},
                                         {"beta", static_cast<double>(beta)}}),
                                  "lrn");
  ctx.SetOutput(0, TransposeOf(ctx, y, {0, 3, 1, 2}, "nchw"));
}
KILN_ONNX_IMPORTER("LRN", ImportLRN);

// ---- Resize, Upsample ----

// ONNX's source coordinate (`scale` = out / in or the given scale), in F: float is onnxruntime's
// arithmetic, double the IR op Resize's (ir/ops/resize_util.h, ONNX's reference).
template <typename F>
F OnnxCoord(const std::string& mode, int64_t x, F scale, int64_t in, int64_t out) {
  const F fx = static_cast<F>(x);
  if (mode == "half_pixel") return (fx + F(0.5)) / scale - F(0.5);
  if (mode == "pytorch_half_pixel") return out > 1 ? (fx + F(0.5)) / scale - F(0.5) : F(0);
  if (mode == "tf_half_pixel_for_nn") return (fx + F(0.5)) / scale;
  if (mode == "align_corners") return out == 1 ? F(0) : fx * static_cast<F>(in - 1) / static_cast<F>(out - 1);
  return fx / scale;  // asymmetric
}

template <typename F>
std::vector<int64_t> OnnxNearest(const std::string& mode, const std::string& nearest, int64_t in, int64_t out, F scale) {
  std::vector<int64_t> idx;
  for (int64_t x = 0; x < out; ++x) {
    const F f = OnnxCoord<F>(mode, x, scale, in, out);
    F r;
    if (nearest == "floor") r = std::floor(f);
    else if (nearest == "ceil") r = std::ceil(f);
    else if (nearest == "simple") r = scale < F(1) ? std::ceil(f) : std::floor(f);  // Resize-10, Upsample
    else if (nearest == "round_prefer_ceil") r = std::round(f);
    else r = (f == std::floor(f) + F(0.5)) ? std::floor(f) : std::round(f);  // round_prefer_floor
    idx.push_back(std::clamp<int64_t>(static_cast<int64_t>(r), 0, in - 1));
  }
  return idx;
}

// The IR ResizeNearestNeighbor's indices (backend/reference/nn_image.cc).
std::vector<int64_t> IrNearest(int64_t in, int64_t out, bool align_corners, bool half_pixel) {
  const float scale = (align_corners && out > 1) ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                                                 : static_cast<float>(in) / static_cast<float>(out);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < out; ++i) {
    const float f = half_pixel ? (static_cast<float>(i) + 0.5f) * scale : static_cast<float>(i) * scale;
    int64_t k = std::min(align_corners ? static_cast<int64_t>(std::round(f)) : static_cast<int64_t>(std::floor(f)), in - 1);
    if (half_pixel) k = std::max<int64_t>(0, k);
    idx.push_back(k);
  }
  return idx;
}

// What a Resize / Upsample node asks for, in the terms of the IR op Resize (docs/ops/nn.md).
struct ResizeRequest {
  std::string mode, ctm, nearest, policy;
  ir::nn::ResizeSpec spec;
  int target = -1;  // the node input with the scales or sizes; -1: Upsample-7's `scales` attribute
  bool sizes = false;
  std::vector<float> attr_scales;  // Upsample-7
  int roi = -1;                    // tf_crop_and_resize
};

// Reads and checks the attributes (no inputs: validate-only mode has none).
ResizeRequest ReadResizeAttrs(ImportContext& ctx) {
  ResizeRequest r;
  const bool upsample = ctx.op() == "Upsample";
  // Upsample and Resize-10 have no coordinate_transformation_mode or nearest_mode: their source
  // coordinate is x / scale, and nearest takes its floor (ceil on axes that shrink): "simple".
  const bool legacy = upsample || ctx.opset() < 11;
  r.mode = ctx.attr_string("mode", "nearest");
  r.ctm = legacy ? "asymmetric" : ctx.attr_string("coordinate_transformation_mode", "half_pixel");
  r.nearest = legacy ? "simple" : ctx.attr_string("nearest_mode", "round_prefer_floor");
  r.policy = ctx.attr_string("keep_aspect_ratio_policy", "stretch");
  if (legacy && r.mode != "nearest" && r.mode != "linear")
    ctx.Invalid(fmt::format("mode must be nearest or linear, got '{}'", r.mode));
  if (!ir::nn::ParseResizeMode(r.mode, &r.spec.mode))
    ctx.Invalid(fmt::format("unknown mode '{}' (expected nearest, linear or cubic)", r.mode));
  if (!ir::nn::ParseResizeCoord(r.ctm, &r.spec.coord))
    ctx.Invalid(fmt::format("unknown coordinate_transformation_mode '{}'", r.ctm));
  if ((!legacy && r.nearest == "simple") || !ir::nn::ParseResizeNearest(r.nearest, &r.spec.nearest))
    ctx.Invalid(fmt::format("unknown nearest_mode '{}'", r.nearest));
  if (!ir::nn::ParseResizeAspect(r.policy, &r.spec.aspect))
    ctx.Invalid(
        fmt::format("unknown keep_aspect_ratio_policy '{}' (expected stretch, not_larger or not_smaller)", r.policy));
  r.spec.cubic_coeff_a = ctx.attr_float("cubic_coeff_a", -0.75f);
  if (!std::isfinite(r.spec.cubic_coeff_a))
    ctx.Invalid(fmt::format("cubic_coeff_a must be finite, got {}", r.spec.cubic_coeff_a));
  r.spec.exclude_outside = ctx.attr_int("exclude_outside", 0) != 0;
  r.spec.extrapolation_value = ctx.attr_float("extrapolation_value", 0.0f);
  // Antialiasing filters linear and cubic resizes only; nearest ignores the attribute.
  r.spec.antialias = r.spec.mode != ir::nn::ResizeMode::kNearest && ctx.attr_int("antialias", 0) != 0;
  r.spec.axes = ctx.attr_ints("axes");
  if (upsample && ctx.opset() < 9) {
    r.attr_scales = ctx.attr_floats("scales");
    if (r.attr_scales.empty()) ctx.Invalid("Upsample before opset 9 needs the `scales` attribute");
  }
  return r;
}

// Picks the scales or sizes input (and roi) once the inputs are known.
void ReadResizeInputs(ImportContext& ctx, ResizeRequest& r) {
  auto known_empty = [&](int i) {
    const Tensor* c = ctx.constant_input(i);
    return c && c->num_elements() == 0;
  };
  if (!r.attr_scales.empty()) {
  } else if (ctx.op() == "Upsample" || ctx.opset() < 11) {
    if (!ctx.has_input(1)) ctx.Invalid("scales (input 1) must be given");
    r.target = 1;
  } else {
    // Resize-11+: X, roi, scales, sizes. Exporters give an empty scales next to sizes (opset 11
    // requires scales); a scales input whose emptiness is only known at run time yields to sizes.
    const bool scales = ctx.has_input(2) && !known_empty(2), sizes = ctx.has_input(3) && !known_empty(3);
    if (sizes && scales && ctx.constant_input(2))
      ctx.Invalid("scales (input 2) and sizes (input 3) are both given; only one may be");
    if (!sizes && !scales) ctx.Invalid("one of scales (input 2) and sizes (input 3) must be given, non-empty");
    r.target = sizes ? 3 : 2;
    r.sizes = sizes;
    if (r.spec.coord == ir::nn::ResizeCoord::kTfCropAndResize) {
      if (!ctx.has_input(1) || known_empty(1))
        ctx.Invalid("coordinate_transformation_mode tf_crop_and_resize needs roi (input 1)");
      if (!IsFloating(ctx.input_dtype(1)))
        ctx.Invalid(fmt::format("roi must be floating, got {}", DTypeName(ctx.input_dtype(1))));
      r.roi = 1;
    }
  }
  if (r.target >= 0) {
    const DType t = ctx.input_dtype(r.target);
    if (r.sizes && !IsInteger(t)) ctx.Invalid(fmt::format("sizes must be int64, got {}", DTypeName(t)));
    if (!r.sizes && !IsFloating(t)) ctx.Invalid(fmt::format("scales must be float, got {}", DTypeName(t)));
  }
}

// Constant scales or sizes: the output lengths (-1 where they depend on an unknown input length),
// checked before anything the size of the output is made; `scale_values` (optional) gets the
// scales as float.
std::vector<int64_t> ConstantResizeLengths(ImportContext& ctx, const ResizeRequest& r, const ir::SymShape& shape,
                                           std::vector<float>* scale_values) {
  std::vector<int64_t> in;
  for (ir::Dim d : shape.dims) in.push_back(ir::IsStatic(d) ? d : -1);
  std::vector<int64_t> axes;
  if (std::string e = ir::nn::NormalizeResizeAxes(r.spec.axes, static_cast<int64_t>(in.size()), &axes); !e.empty())
    ctx.Invalid(e);
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  if (r.sizes) {
    sizes = ctx.constant_ints(r.target, "sizes");
  } else if (!r.attr_scales.empty()) {
    scales.assign(r.attr_scales.begin(), r.attr_scales.end());
  } else {
    const Tensor* t = ctx.constant_input(r.target);
    for (int64_t i = 0; i < t->num_elements(); ++i) scales.push_back(t->DoubleAt(i));
  }
  if (scale_values) scale_values->assign(scales.begin(), scales.end());  // float32 (ONNX's) scales: exact
  std::vector<ir::nn::ResizeAxis> lengths;
  if (std::string e = ir::nn::ResizeOutputAxes(in, axes, r.sizes ? nullptr : &scales, r.sizes ? &sizes : nullptr,
                                               r.spec.aspect, &lengths);
      !e.empty())
    ctx.Invalid(e);
  std::vector<int64_t> out;
  uint64_t bytes = std::max<size_t>(DTypeSize(ctx.input_dtype(0)), 1);
  bool empty = false;
  for (const ir::nn::ResizeAxis& a : lengths) {
    out.push_back(a.out);
    empty = empty || a.out == 0;
    if (a.out > 0 && __builtin_mul_overflow(bytes, static_cast<uint64_t>(a.out), &bytes)) bytes = UINT64_MAX;
  }
  if (!empty && bytes > MaxTensorBytes())
    ctx.Invalid(fmt::format("the resized output [{}] would take {} bytes, more than one tensor may ({}; KILN_MAX_TENSOR_BYTES)",
                            Join(out), bytes == UINT64_MAX ? std::string("over 2^64") : std::to_string(bytes),
                            MaxTensorBytes()));
  return out;
}

// The fast path for constant scales or sizes: the IR's NHWC ResizeNearestNeighbor /
// ResizeBilinear (TF's rules) between Transposes, when only H and W change and the IR picks
// exactly ONNX's pixels (nearest: index by index, in float and in double; linear: the same source
// coordinates). These have a static output shape and fit the channels-last layout passes, where
// the Transposes cancel against a convolution's. Returns false, emitting nothing, otherwise.
bool ImportResizeAsNhwc(ImportContext& ctx, const ResizeRequest& r, const ir::SymShape& shape) {
  const bool nearest_mode = r.mode == "nearest";
  const DType t = ctx.input_dtype(0);
  if (r.mode == "cubic" || !r.spec.axes.empty() || r.spec.antialias || !shape.rank_known || shape.rank() != 4)
    return false;
  if (r.ctm == "tf_crop_and_resize" || r.ctm == "half_pixel_symmetric") return false;
  if (r.sizes && r.spec.aspect != ir::nn::ResizeAspect::kStretch) return false;  // the scale is not out / in
  if (nearest_mode ? (t == DType::kString || DTypeSize(t) == 0)
                   : (t != DType::kFloat32 && t != DType::kFloat16 && t != DType::kBFloat16))
    return false;  // ResizeBilinear computes in float: float64 and integers take the IR op Resize
  if (!r.sizes && r.attr_scales.empty() && ctx.input_dtype(r.target) != DType::kFloat32) return false;
  std::vector<float> scales;
  std::vector<int64_t> out = ConstantResizeLengths(ctx, r, shape, &scales);
  // Dims unknown at import (a dynamic batch or channel count) are allowed where the given scale is
  // exactly 1 and that leaves the dim unchanged at every length (checked below); their entries in
  // `in` and `out` are -1.
  std::vector<int64_t> in;
  for (ir::Dim d : shape.dims) in.push_back(ir::IsStatic(d) ? d : -1);
  for (size_t i = 0; i < 4; ++i) {
    if (in[i] < 0 && (r.sizes || scales[i] != 1.0f)) return false;
    if (in[i] < 0) out[i] = -1;
    if (in[i] >= 0 && out[i] <= 0) return false;
    // align_corners divides by the resized length: ONNX's reference uses in * scale, onnxruntime
    // the integer output size; they only agree when in * scale is an integer.
    if (r.ctm == "align_corners" && !r.sizes && in[i] >= 0 &&
        static_cast<double>(out[i]) != static_cast<double>(in[i]) * static_cast<double>(scales[i]))
      return false;
  }
  // ONNX's (onnxruntime's) source coordinates per dim, in float; `scale` = the given one or out/in.
  auto scale_f = [&](size_t d) { return r.sizes ? static_cast<float>(out[d]) / static_cast<float>(in[d]) : scales[d]; };
  auto scale_d = [&](size_t d) {
    return r.sizes ? static_cast<double>(out[d]) / static_cast<double>(in[d]) : static_cast<double>(scales[d]);
  };
  auto onnx_nearest = [&](size_t d, bool* agree) {
    const std::vector<int64_t> f = OnnxNearest<float>(r.ctm, r.nearest, in[d], out[d], scale_f(d));
    *agree = f == OnnxNearest<double>(r.ctm, r.nearest, in[d], out[d], scale_d(d));
    return f;
  };
  std::function<bool(size_t)> identity_dim = [&](size_t d) {
    if (in[d] < 0) {
      // A dim of unknown length with scale 1: each coordinate mode maps output i to i plus a
      // constant, so the dim is unchanged at every length if it is at these.
      for (int64_t n : {1, 2, 3, 7, 64, 1000}) {
        in[d] = out[d] = n;
        const bool same = identity_dim(d);
        in[d] = out[d] = -1;
        if (!same) return false;
      }
      return true;
    }
    if (in[d] != out[d]) return false;
    if (nearest_mode) {
      bool agree = false;
      const std::vector<int64_t> idx = onnx_nearest(d, &agree);
      for (int64_t i = 0; i < out[d]; ++i)
        if (idx[static_cast<size_t>(i)] != i) return false;
      return agree;
    }
    for (int64_t i = 0; i < out[d]; ++i)
      if (OnnxCoord<float>(r.ctm, i, scale_f(d), in[d], out[d]) != static_cast<float>(i)) return false;
    return true;
  };
  if (in[2] < 0 || in[3] < 0 || !identity_dim(0) || !identity_dim(1)) return false;
  bool align_corners = false, half_pixel = false;
  if (!nearest_mode) {
    align_corners = r.ctm == "align_corners";
    half_pixel = r.ctm == "half_pixel" || r.ctm == "pytorch_half_pixel";
    if (r.ctm == "pytorch_half_pixel" && (out[2] == 1 || out[3] == 1)) return false;
    if (r.ctm == "tf_half_pixel_for_nn") return false;
    // The IR scales by in/out; ONNX divides by the given scale: they must agree.
    if (!r.sizes && !align_corners)
      for (size_t d = 2; d < 4; ++d) {
        const double ratio = static_cast<double>(out[d]) / static_cast<double>(in[d]);
        if (std::fabs(ratio - scales[d]) > 1e-7 * ratio) return false;
      }
  } else {
    bool found = false;
    const std::pair<bool, bool> configs[] = {{false, false}, {true, false}, {false, true}};
    for (const auto& [ac, hp] : configs) {
      bool ok = true;
      for (size_t d = 2; d < 4 && ok; ++d) {
        bool agree = false;
        ok = IrNearest(in[d], out[d], ac, hp) == onnx_nearest(d, &agree) && agree;
      }
      if (ok) {
        align_corners = ac;
        half_pixel = hp;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  const ir::ValueId nhwc = TransposeOf(ctx, ctx.input(0), {0, 2, 3, 1}, "nhwc");
  const ir::ValueId size = ctx.ConstInt32({static_cast<int32_t>(out[2]), static_cast<int32_t>(out[3])}, false, "size");
  ir::ValueId y = ctx.Emit1(nearest_mode ? "ResizeNearestNeighbor" : "ResizeBilinear", {nhwc, size},
                            Attrs({{"align_corners", align_corners}, {"half_pixel_centers", half_pixel}}), "resize");
  y = Cast(ctx, y, t, "cast");
  ctx.SetOutput(0, TransposeOf(ctx, y, {0, 3, 1, 2}, "nchw"));
  return true;
}

// Resize (every opset from 10) and Upsample (7, 9; deprecated from 10 with the same meaning).
// Constant scales or sizes take the NHWC fast path where it is exact; everything else becomes
// the IR op Resize, whose kernel reads the scales or sizes and computes the output's lengths at
// run time.
void ImportResize(ImportContext& ctx) {
  ResizeRequest r = ReadResizeAttrs(ctx);
  if (ctx.validate_only()) return;
  ReadResizeInputs(ctx, r);
  const DType t = ctx.input_dtype(0);
  if (r.mode != "nearest" && !IsFloating(t) && !IsInteger(t))
    ctx.Unsupported(fmt::format("{} resize of {} is not supported (it interpolates numbers)", r.mode, DTypeName(t)));
  if (r.spec.coord == ir::nn::ResizeCoord::kTfCropAndResize && t == DType::kString)
    ctx.Unsupported("tf_crop_and_resize of a string tensor is not supported (extrapolation_value is a number)");
  const ir::SymShape shape = ctx.input_shape(0);
  const bool constant_target = !r.attr_scales.empty() || ctx.constant_input(r.target);
  if (constant_target && shape.rank_known) {
    ConstantResizeLengths(ctx, r, shape, nullptr);  // fails early on impossible lengths
    if (ImportResizeAsNhwc(ctx, r, shape)) return;
  }
  ir::ValueId target = r.target >= 0 ? ctx.input(r.target) : ir::kNoValue;
  if (!r.attr_scales.empty()) {
    Tensor s(DType::kFloat32, {static_cast<int64_t>(r.attr_scales.size())});
    std::copy(r.attr_scales.begin(), r.attr_scales.end(), s.data<float>());
    target = ctx.Constant(std::move(s), "scales");
  }
  std::vector<ir::ValueId> inputs = {ctx.input(0), target};
  if (r.roi >= 0) inputs.push_back(ctx.input(r.roi));
  ctx.SetOutput(0, ctx.Emit1("Resize", inputs,
                             Attrs({{"mode", r.mode},
                                    {"coordinate_transformation_mode", r.ctm},
                                    {"nearest_mode", r.nearest},
                                    {"cubic_coeff_a", r.spec.cubic_coeff_a},
                                    {"exclude_outside", r.spec.exclude_outside},
                                    {"extrapolation_value", r.spec.extrapolation_value},
                                    {"antialias", r.spec.antialias},
                                    {"axes", r.spec.axes},
                                    {"keep_aspect_ratio_policy", r.policy}})));
}
KILN_ONNX_IMPORTERS(ImportResize, "Resize", "Upsample");

// ---- depth / space ----

void ImportDepthToSpace(ImportContext& ctx) {
  const int64_t bs = ctx.attr_int("blocksize");
  const std::string mode = ctx.attr_string("mode", "DCR");
  if (bs < 1) ctx.Invalid(fmt::format("blocksize must be positive, got {}", bs));
  if (bs > ir::nn::kMaxBlockSize) ctx.Invalid(fmt::format("blocksize {} is larger than {}", bs, ir::nn::kMaxBlockSize));
  if (mode != "DCR" && mode != "CRD") ctx.Invalid(fmt::format("mode must be DCR or CRD, got '{}'", mode));
  if (ctx.validate_only()) return;
  if (RequireRank(ctx, 0, "input") != 4) ctx.Invalid("input must be 4-D");
  if (ctx.input_dtype(0) == DType::kString) ctx.Unsupported("string tensors are not supported");
  ir::ValueId x = ctx.input(0);
  if (bs == 1) return ctx.SetOutput(0, ctx.Emit1("Identity", {x}));
  if (mode == "CRD") {
    // CRD reads channel c*bs*bs + i*bs + j; permute the channels into DCR order (i*bs + j)*C' + c.
    const ir::Dim c = ctx.input_shape(0).dims[1];
    if (!ir::IsStatic(c)) ctx.Unsupported("mode CRD needs a static channel count");
    if (c % (bs * bs) != 0) ctx.Invalid(fmt::format("channels {} are not divisible by blocksize^2 = {}", c, bs * bs));
    const int64_t co = c / (bs * bs);
    std::vector<int64_t> perm(static_cast<size_t>(c));
    for (int64_t i = 0; i < bs; ++i)
      for (int64_t j = 0; j < bs; ++j)
        for (int64_t k = 0; k < co; ++k) perm[static_cast<size_t>((i * bs + j) * co + k)] = k * bs * bs + i * bs + j;
    x = ctx.Emit1("Gather", {x, ctx.ConstInt64(perm, false, "crd_perm"), ctx.ConstInt64({1}, true, "crd_axis")}, {}, "crd_to_dcr");
  }
  ctx.SetOutput(0, ctx.Emit1("DepthToSpace", {x}, Attrs({{"block_size", bs}, {"data_format", std::string("NCHW")}})));
}
KILN_ONNX_IMPORTER("DepthToSpace", ImportDepthToSpace);

void ImportSpaceToDepth(ImportContext& ctx) {
  const int64_t bs = ctx.attr_int("blocksize");
  if (bs < 1) ctx.Invalid(fmt::format("blocksize must be positive, got {}", bs));
  if (bs > ir::nn::kMaxBlockSize) ctx.Invalid(fmt::format("blocksize {} is larger than {}", bs, ir::nn::kMaxBlockSize));
  if (ctx.validate_only()) return;
  if (RequireRank(ctx, 0, "input") != 4) ctx.Invalid("input must be 4-D");
  if (ctx.input_dtype(0) == DType::kString) ctx.Unsupported("string tensors are not supported");
  if (bs == 1) return ctx.SetOutput(0, ctx.Emit1("Identity", {ctx.input(0)}));
  ctx.SetOutput(0, ctx.Emit1("SpaceToDepth", {ctx.input(0)}, Attrs({{"block_size", bs}, {"data_format", std::string("NCHW")}})));
}
KILN_ONNX_IMPORTER("SpaceToDepth", ImportSpaceToDepth);

// ---- Einsum ----

void ImportEinsum(ImportContext& ctx) {
  std::string eq;
  for (char c : ctx.attr_string("equation"))
    if (c != ' ') eq += c;
  if (ctx.num_inputs() < 1 || ctx.num_inputs() > 2)
    ctx.Unsupported(fmt::format("{} operands are not supported (1 or 2)", ctx.num_inputs()));
  if (eq.find("->") == std::string::npos) {
    // Implicit output: "..." (when used) then the labels that appear once, alphabetically.
    std::map<char, int> count;
    for (char c : eq)
      if (std::isalpha(static_cast<unsigned char>(c))) ++count[c];
    std::string out = eq.find("...") != std::string::npos ? "..." : "";
    std::string letters;
    for (const auto& [c, n] : count)
      if (n == 1) letters += c;
    std::sort(letters.begin(), letters.end(), [](char a, char b) {
      // ONNX/numpy order: uppercase before lowercase (ASCII).
      return a < b;
    });
    eq += "->" + out + letters;
  }
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(0);
  if (!IsFloating(t) && !IsInteger(t)) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  ctx.SetOutput(0, ctx.Emit1("Einsum", ctx.input_values(), Attrs({{"equation", eq}})));
}
KILN_ONNX_IMPORTER("Einsum", ImportEinsum);

}  // namespace

}  // namespace kiln::onnxfe::nn
