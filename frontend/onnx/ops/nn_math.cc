// ONNX importers of the nn family, part 2: Gemm, MatMul, MatMulInteger, BatchNormalization,
// InstanceNormalization, LayerNormalization, LpNormalization, Softmax, LogSoftmax, Hardmax, LRN,
// Resize, DepthToSpace, SpaceToDepth, Einsum. See docs/onnx/nn.md.
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

void ImportBatchNorm(ImportContext& ctx) {
  const float epsilon = ctx.attr_float("epsilon", 1e-5f);
  if (ctx.attr_int("training_mode", 0) != 0) ctx.Unsupported("training_mode = 1 is not supported (inference only)");
  if (ctx.num_outputs() > 1)
    for (int i = 1; i < ctx.num_outputs(); ++i)
      if (ctx.has_output(i)) ctx.Unsupported("the running_mean / running_var outputs (training) are not supported");
  if (ctx.num_inputs() != 5) ctx.Invalid(fmt::format("expected 5 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "X");
  for (int i = 1; i < 5; ++i) CheckFloatInput(ctx, i, "a parameter");
  const int rank = RequireRank(ctx, 0, "X");
  if (rank < 2) ctx.Invalid(fmt::format("X must have rank >= 2, got {}", rank));
  ctx.SetOutput(0, ctx.Emit1("BatchNorm", {ctx.input(0), ctx.input(1), ctx.input(2), ctx.input(3), ctx.input(4)},
                             Attrs({{"epsilon", static_cast<double>(epsilon)}, {"axis", int64_t{1}}, {"training", false}})));
}
KILN_ONNX_IMPORTER("BatchNormalization", ImportBatchNorm);

// The compute dtype for a normalization of `t`: float32 for 16-bit floats.
DType ComputeType(DType t) { return (t == DType::kFloat16 || t == DType::kBFloat16) ? DType::kFloat32 : t; }

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

// ---- Resize ----

// ONNX's source coordinate (ORT's formulas; `scale` = out / in or the given scale).
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

void ImportResize(ImportContext& ctx) {
  const std::string mode = ctx.attr_string("mode", "nearest");
  const std::string ctm = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = ctx.attr_string("nearest_mode", "round_prefer_floor");
  if (mode != "nearest" && mode != "linear" && mode != "cubic") ctx.Invalid(fmt::format("unknown mode '{}'", mode));
  if (mode == "cubic") ctx.Unsupported("mode 'cubic' is not supported (the IR has no bicubic resize)");
  static const char* kModes[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
                                 "tf_crop_and_resize", "half_pixel_symmetric"};
  if (std::find(std::begin(kModes), std::end(kModes), ctm) == std::end(kModes))
    ctx.Invalid(fmt::format("unknown coordinate_transformation_mode '{}'", ctm));
  if (ctm == "tf_crop_and_resize" || ctm == "half_pixel_symmetric")
    ctx.Unsupported(fmt::format("coordinate_transformation_mode '{}' is not supported", ctm));
  if (nearest != "round_prefer_floor" && nearest != "round_prefer_ceil" && nearest != "floor" && nearest != "ceil")
    ctx.Invalid(fmt::format("unknown nearest_mode '{}'", nearest));
  if (ctx.attr_int("antialias", 0) != 0) ctx.Unsupported("antialias = 1 is not supported");
  if (ctx.has_attr("axes")) ctx.Unsupported("the 'axes' attribute is not supported");
  if (ctx.attr_string("keep_aspect_ratio_policy", "stretch") != "stretch")
    ctx.Unsupported("keep_aspect_ratio_policy other than 'stretch' is not supported");
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(0);
  if (mode == "linear" && !IsFloating(t)) ctx.Unsupported(fmt::format("linear resize of {} is not supported", DTypeName(t)));
  if (!IsFloating(t) && !IsInteger(t)) ctx.Unsupported(fmt::format("dtype {} is not supported", DTypeName(t)));
  // Dims unknown at import (a dynamic batch or channel count) are allowed where the given scale is
  // exactly 1 and that leaves the dim unchanged at every length (checked below); their entries in
  // `in` and `out` are -1. Every other dim's output length is computed here.
  const ir::SymShape shape = ctx.input_shape(0);
  if (!shape.rank_known) ctx.Unsupported("the input's rank must be known");
  std::vector<int64_t> in;
  for (ir::Dim d : shape.dims) in.push_back(ir::IsStatic(d) ? d : -1);
  const size_t rank = in.size();
  std::vector<int64_t> out;
  std::vector<float> scales;  // given scales (empty with sizes)
  const Tensor* sizes_t = ctx.has_input(3) ? ctx.constant_input(3) : nullptr;
  const Tensor* scales_t = ctx.has_input(2) ? ctx.constant_input(2) : nullptr;
  if (ctx.has_input(3) && !sizes_t) ctx.Unsupported("sizes (input 3) must be a constant");
  if (sizes_t && sizes_t->num_elements() > 0) {
    out = ctx.constant_ints(3, "sizes");
    if (out.size() != rank) ctx.Invalid(fmt::format("sizes {} must have {} values", Join(out), rank));
    for (size_t i = 0; i < rank; ++i)
      if (in[i] < 0)
        ctx.Unsupported(fmt::format("dim {} of the input is unknown at import and `sizes` gives its length: give scales "
                                    "(1 for that dim) instead",
                                    i));
  } else {
    if (ctx.has_input(2) && !scales_t) ctx.Unsupported("scales (input 2) must be a constant");
    if (!scales_t || scales_t->num_elements() == 0) ctx.Invalid("one of scales and sizes must be given");
    if (scales_t->dtype() != DType::kFloat32 || scales_t->num_elements() != static_cast<int64_t>(rank))
      ctx.Invalid(fmt::format("scales must be {} float32 values", rank));
    for (size_t i = 0; i < rank; ++i) {
      const float sc = scales_t->data<float>()[i];
      if (!(sc > 0)) ctx.Invalid(fmt::format("scales must be positive, got {}", sc));
      scales.push_back(sc);
      if (in[i] < 0) {
        if (sc != 1.0f)
          ctx.Unsupported(fmt::format("dim {} of the input is unknown at import, so its scale must be 1, got {}", i, sc));
        out.push_back(-1);
        continue;
      }
      const double length = std::floor(static_cast<double>(in[i]) * static_cast<double>(sc));
      if (!(length < 9.2e18)) ctx.Invalid(fmt::format("scale {} makes dim {} of length {} impossibly long", sc, i, in[i]));
      out.push_back(static_cast<int64_t>(length));
      // align_corners divides by the resized length: ONNX's reference uses in * scale, onnxruntime
      // the integer output size; they only agree when in * scale is an integer.
      if (ctm == "align_corners" && static_cast<double>(out[i]) != static_cast<double>(in[i]) * static_cast<double>(sc))
        ctx.Unsupported(fmt::format("align_corners with scale {} on a dim of {} (a fractional output length) is not supported",
                                    sc, in[i]));
    }
  }
  for (size_t i = 0; i < rank; ++i)
    if (in[i] >= 0 && out[i] <= 0) ctx.Unsupported(fmt::format("an empty output {} is not supported", Join(out)));
  // The importer builds index tables as long as the output's dims: the output must be a tensor
  // Kiln could hold before any of them is made.
  uint64_t bytes = DTypeSize(ctx.input_dtype(0));
  for (size_t i = 0; i < rank; ++i)
    if (out[i] > 0 && __builtin_mul_overflow(bytes, static_cast<uint64_t>(out[i]), &bytes)) bytes = UINT64_MAX;
  if (bytes > MaxTensorBytes())
    ctx.Invalid(fmt::format("the resized output [{}] would take {} bytes, more than one tensor may ({}; KILN_MAX_TENSOR_BYTES)",
                            Join(out), bytes == UINT64_MAX ? std::string("over 2^64") : std::to_string(bytes),
                            MaxTensorBytes()));
  // ONNX's (onnxruntime's) source coordinates per dim, in float; `scale` = the given one or out/in.
  auto scale_f = [&](size_t d) { return scales.empty() ? static_cast<float>(out[d]) / static_cast<float>(in[d]) : scales[d]; };
  auto scale_d = [&](size_t d) {
    return scales.empty() ? static_cast<double>(out[d]) / static_cast<double>(in[d]) : static_cast<double>(scales[d]);
  };
  auto onnx_nearest = [&](size_t d, bool* agree) {
    const std::vector<int64_t> f = OnnxNearest<float>(ctm, nearest, in[d], out[d], scale_f(d));
    *agree = f == OnnxNearest<double>(ctm, nearest, in[d], out[d], scale_d(d));
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
    if (mode == "nearest") {
      bool agree = false;
      const std::vector<int64_t> idx = onnx_nearest(d, &agree);
      for (int64_t i = 0; i < out[d]; ++i)
        if (idx[static_cast<size_t>(i)] != i) return false;
      return agree;
    }
    for (int64_t i = 0; i < out[d]; ++i)
      if (OnnxCoord<float>(ctm, i, scale_f(d), in[d], out[d]) != static_cast<float>(i)) return false;
    return true;
  };

  // 1) The IR resizes (NHWC 2-D): when only H and W change and the IR picks the same pixels.
  for (size_t d = 0; d < rank; ++d)
    if (in[d] < 0 && !identity_dim(d))
      ctx.Unsupported(fmt::format("dim {} of the input is unknown at import and this coordinate_transformation_mode and "
                                  "nearest_mode would change it",
                                  d));
  bool use_ir = rank == 4 && in[2] >= 0 && in[3] >= 0 && identity_dim(0) && identity_dim(1);
  bool align_corners = false, half_pixel = false;
  if (use_ir && mode == "linear") {
    align_corners = ctm == "align_corners";
    half_pixel = ctm == "half_pixel" || ctm == "pytorch_half_pixel";
    if (ctm == "pytorch_half_pixel" && (out[2] == 1 || out[3] == 1)) use_ir = false;
    if (ctm == "tf_half_pixel_for_nn") use_ir = false;
    // The IR scales by in/out; ONNX divides by the given scale: they must agree.
    if (!scales.empty() && !align_corners)
      for (size_t d = 2; d < 4; ++d) {
        const double ratio = static_cast<double>(out[d]) / static_cast<double>(in[d]);
        if (std::fabs(ratio - scales[d]) > 1e-7 * ratio) use_ir = false;
      }
  } else if (use_ir) {
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
    use_ir = found;
  }
  if (use_ir) {
    const ir::ValueId nhwc = TransposeOf(ctx, ctx.input(0), {0, 2, 3, 1}, "nhwc");
    ir::ValueId y = ctx.Emit1(mode == "linear" ? "ResizeBilinear" : "ResizeNearestNeighbor",
                              {nhwc, ctx.ConstInt32({static_cast<int32_t>(out[2]), static_cast<int32_t>(out[3])}, false, "size")},
                              Attrs({{"align_corners", align_corners}, {"half_pixel_centers", half_pixel}}), "resize");
    y = Cast(ctx, y, t, "cast");
    return ctx.SetOutput(0, TransposeOf(ctx, y, {0, 3, 1, 2}, "nchw"));
  }

  // 2) Separable composition, one dim at a time: nearest = Gather of the source indices;
  //    linear = lo + (hi - lo) * w with Gathers of the two neighbours (onnxruntime's clamping).
  ir::ValueId y = ctx.input(0);
  for (size_t d = 0; d < rank; ++d) {
    if (identity_dim(d)) continue;
    const std::string sfx = fmt::format("dim{}", d);
    const ir::ValueId axis = ctx.ConstInt64({static_cast<int64_t>(d)}, true, sfx + "_axis");
    if (mode == "nearest") {
      bool agree = false;
      const std::vector<int64_t> idx = onnx_nearest(d, &agree);
      if (!agree)
        ctx.Unsupported(fmt::format("nearest resize of dim {} ({} -> {}) rounds differently in float and double", d, in[d], out[d]));
      y = ctx.Emit1("Gather", {y, ctx.ConstInt64(idx, false, sfx + "_idx"), axis}, {}, sfx + "_nearest");
      continue;
    }
    std::vector<int64_t> lo, hi;
    std::vector<double> w;
    for (int64_t i = 0; i < out[d]; ++i) {
      float f = OnnxCoord<float>(ctm, i, scale_f(d), in[d], out[d]);
      f = std::clamp(f, 0.0f, static_cast<float>(in[d] - 1));
      const int64_t l = std::min<int64_t>(static_cast<int64_t>(f), in[d] - 1);
      lo.push_back(l);
      hi.push_back(std::min<int64_t>(l + 1, in[d] - 1));
      w.push_back(static_cast<double>(f) - static_cast<double>(l));
    }
    Shape wshape = {out[d]};
    for (size_t k = d + 1; k < rank; ++k) wshape.push_back(1);
    Tensor wt(DType::kFloat64, wshape);
    std::copy(w.begin(), w.end(), wt.data<double>());
    ir::ValueId wv = Cast(ctx, ctx.Constant(std::move(wt), sfx + "_w64"), t, sfx + "_w");
    const ir::ValueId a = ctx.Emit1("Gather", {y, ctx.ConstInt64(lo, false, sfx + "_lo_idx"), axis}, {}, sfx + "_lo");
    const ir::ValueId b = ctx.Emit1("Gather", {y, ctx.ConstInt64(hi, false, sfx + "_hi_idx"), axis}, {}, sfx + "_hi");
    const ir::ValueId diff = ctx.Emit1("Sub", {b, a}, {}, sfx + "_diff");
    y = ctx.Emit1("Add", {a, ctx.Emit1("Mul", {diff, wv}, {}, sfx + "_scaled")}, {}, sfx + "_lerp");
  }
  if (y == ctx.input(0)) y = ctx.Emit1("Identity", {y});
  ctx.SetOutput(0, y);
}
KILN_ONNX_IMPORTER("Resize", ImportResize);

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
