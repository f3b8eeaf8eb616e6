// TF importers of the nn family: MatMul, BatchMatMul(V2/V3), Einsum, FusedBatchNorm(V2/V3),
// Softmax, LogSoftmax, LRN, ResizeBilinear, ResizeNearestNeighbor, DepthToSpace, SpaceToDepth,
// ImageProjectiveTransformV2/V3.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "frontend/tf/importer.h"
#include "ir/ops/nn_util.h"

namespace kiln::tf {

void RegisterNnMathImporters(ImporterTable& table);

namespace {

void CheckArity(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
}

// attr must be floating, or (when `ints`) an integer type as well.
void CheckType(ImportContext& ctx, const std::string& attr, bool ints) {
  if (!ctx.has_attr(attr)) return;
  const DType t = ctx.attr_type(attr);
  if (IsFloating(t) || (ints && IsInteger(t))) return;
  ctx.Unsupported(fmt::format("{} = {} is not supported", attr, DTypeName(t)));
}

void ImportMatMul(ImportContext& ctx) {
  CheckArity(ctx, 2);
  CheckType(ctx, "T", true);
  ir::AttrMap attrs;
  attrs.Set("transpose_a", ctx.attr_bool("transpose_a", false));
  attrs.Set("transpose_b", ctx.attr_bool("transpose_b", false));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("MatMul", {ctx.input(0), ctx.input(1)}, std::move(attrs)));
}

void ImportBatchMatMul(ImportContext& ctx) {
  CheckArity(ctx, 2);
  ir::AttrMap attrs;
  if (ctx.op() == "BatchMatMulV3") {
    CheckType(ctx, "Ta", true);
    CheckType(ctx, "Tb", true);
    CheckType(ctx, "Tout", true);
    const DType ta = ctx.attr_type("Ta"), tb = ctx.attr_type("Tb"), tout = ctx.attr_type("Tout");
    if (IsInteger(tout) && (IsFloating(ta) || IsFloating(tb)))
      ctx.Unsupported(fmt::format("floating inputs ({}, {}) with an integer Tout {}", DTypeName(ta), DTypeName(tb), DTypeName(tout)));
    attrs.Set("out_dtype", tout);
  } else {
    CheckType(ctx, "T", true);
  }
  attrs.Set("adj_x", ctx.attr_bool("adj_x", false));
  attrs.Set("adj_y", ctx.attr_bool("adj_y", false));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("BatchMatMul", {ctx.input(0), ctx.input(1)}, std::move(attrs)));
}

void ImportEinsum(ImportContext& ctx) {
  CheckType(ctx, "T", true);
  const std::string eq = ctx.attr_string("equation");
  const int n = ir::nn::EinsumNumInputs(eq);
  if (n != 1 && n != 2) ctx.Unsupported(fmt::format("einsum equation '{}' must have 1 or 2 inputs and an explicit '->'", eq));
  CheckArity(ctx, n);
  // Validate the equation now when the ranks are known (the IR shape function does it too).
  std::vector<int> ranks;
  for (int i = 0; i < n; ++i)
    if (ctx.input_shape(i).rank_known) ranks.push_back(ctx.input_shape(i).rank());
  if (static_cast<int>(ranks.size()) == n) {
    ir::nn::EinsumSpec spec;
    const std::string err = ir::nn::ParseEinsum(eq, ranks, &spec);
    if (!err.empty()) ctx.Invalid(err);
  }
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("equation", eq);
  std::vector<ir::ValueId> inputs;
  for (int i = 0; i < n; ++i) inputs.push_back(ctx.input(i));
  ctx.SetOutput(0, ctx.Emit1("Einsum", std::move(inputs), std::move(attrs)));
}

// FusedBatchNorm / V2 / V3. Outputs: y, batch_mean, batch_variance, reserve_space_1,
// reserve_space_2 (, reserve_space_3 for V3).
void ImportFusedBatchNorm(ImportContext& ctx) {
  CheckArity(ctx, 5);
  CheckType(ctx, "T", false);
  CheckType(ctx, "U", false);
  const std::string format = ctx.attr_string("data_format", "NHWC");
  int64_t axis;
  if (format == "NHWC" || format == "NDHWC") axis = -1;
  else if (format == "NCHW" || format == "NCDHW") axis = 1;
  else ctx.Unsupported(fmt::format("data_format '{}' is not supported", format));
  const ir::SymShape xs = ctx.input_shape(0);
  if (xs.rank_known && xs.rank() != static_cast<int>(format.size()))
    ctx.Invalid(fmt::format("x must be {}-D for data_format '{}', got {}", format.size(), format, ctx.graph().ShapeToString(xs)));
  const bool training = ctx.attr_bool("is_training", true);
  const double factor = ctx.attr_float("exponential_avg_factor", 1.0f);
  if (ctx.has_attr("activation_mode") && ctx.attr_string("activation_mode") != "Identity")
    ctx.Unsupported(fmt::format("activation_mode '{}' is not supported", ctx.attr_string("activation_mode")));
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("epsilon", static_cast<double>(ctx.attr_float("epsilon", 1e-4f)));
  attrs.Set("axis", axis);
  attrs.Set("training", training);
  attrs.Set("exponential_avg_factor", factor);
  std::vector<ir::ValueId> inputs;
  for (int i = 0; i < 5; ++i) inputs.push_back(ctx.input(i));
  const bool v3 = ctx.op() == "FusedBatchNormV3";
  const DType u = ctx.has_attr("U") ? ctx.attr_type("U") : DType::kFloat32;
  if (!training) {
    ctx.SetOutput(0, ctx.Emit1("BatchNorm", inputs, std::move(attrs)));
    for (int i = 1; i < 5; ++i) ctx.SetOutput(i, inputs[static_cast<size_t>(i % 2 == 1 ? 3 : 4)]);
  } else {
    std::vector<ir::ValueId> outs = ctx.Emit("BatchNorm", inputs, std::move(attrs), 5);
    ctx.SetOutputs(outs);
  }
  if (v3) ctx.SetOutput(5, ctx.Constant(Tensor(u, {}), "reserve_space_3"));
}

template <bool kLog>
void ImportSoftmax(ImportContext& ctx) {
  CheckArity(ctx, 1);
  CheckType(ctx, "T", false);
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("axis", int64_t{-1});
  ctx.SetOutput(0, ctx.Emit1(kLog ? "LogSoftmax" : "Softmax", {ctx.input(0)}, std::move(attrs)));
}

void ImportLRN(ImportContext& ctx) {
  CheckArity(ctx, 1);
  CheckType(ctx, "T", false);
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("depth_radius", ctx.attr_int("depth_radius", 5));
  attrs.Set("bias", static_cast<double>(ctx.attr_float("bias", 1.0f)));
  attrs.Set("alpha", static_cast<double>(ctx.attr_float("alpha", 1.0f)));
  attrs.Set("beta", static_cast<double>(ctx.attr_float("beta", 0.5f)));
  ctx.SetOutput(0, ctx.Emit1("LRN", {ctx.input(0)}, std::move(attrs)));
}

template <bool kBilinear>
void ImportResize(ImportContext& ctx) {
  CheckArity(ctx, 2);
  CheckType(ctx, "T", true);
  const bool align = ctx.attr_bool("align_corners", false), half = ctx.attr_bool("half_pixel_centers", false);
  if (align && half) ctx.Invalid("if half_pixel_centers is true, align_corners must be false");
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("align_corners", align);
  attrs.Set("half_pixel_centers", half);
  ctx.SetOutput(0, ctx.Emit1(kBilinear ? "ResizeBilinear" : "ResizeNearestNeighbor", {ctx.input(0), ctx.input(1)}, std::move(attrs)));
}

template <bool kD2S>
void ImportDepthSpace(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const std::string format = ctx.attr_string("data_format", "NHWC");
  if (format != "NHWC" && format != "NCHW") ctx.Unsupported(fmt::format("data_format '{}' is not supported", format));
  const int64_t bs = ctx.attr_int("block_size");
  if (bs < 2) ctx.Invalid(fmt::format("block_size must be at least 2, got {}", bs));
  if (bs > ir::nn::kMaxBlockSize) ctx.Invalid(fmt::format("block_size {} is larger than {}", bs, ir::nn::kMaxBlockSize));
  if (ctx.has_attr("T")) {
    const DType t = ctx.attr_type("T");
    if (DTypeSize(t) == 0) ctx.Unsupported(fmt::format("T = {} is not supported", DTypeName(t)));
  }
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("block_size", bs);
  attrs.Set("data_format", format);
  ctx.SetOutput(0, ctx.Emit1(kD2S ? "DepthToSpace" : "SpaceToDepth", {ctx.input(0)}, std::move(attrs)));
}

// ImageProjectiveTransformV2(images, transforms, output_shape) and V3 (+ fill_value): V2 fills
// with 0. TF's kernels take uint8, int32, int64 and the float types.
void ImportImageProjectiveTransform(ImportContext& ctx) {
  const bool v3 = ctx.op() == "ImageProjectiveTransformV3";
  CheckArity(ctx, v3 ? 4 : 3);
  const DType t = ctx.attr_type("dtype");
  if (t != DType::kUInt8 && t != DType::kInt32 && t != DType::kInt64 && !IsFloating(t))
    ctx.Unsupported(
        fmt::format("dtype = {} is not supported (uint8, int32, int64, half, bfloat16, float, double)", DTypeName(t)));
  const std::string interp = ctx.attr_string("interpolation");
  const std::string mode = ctx.attr_string("fill_mode", "CONSTANT");
  if (interp != "NEAREST" && interp != "BILINEAR")
    ctx.Invalid(fmt::format("interpolation must be NEAREST or BILINEAR, got '{}'", interp));
  if (mode != "REFLECT" && mode != "WRAP" && mode != "CONSTANT" && mode != "NEAREST")
    ctx.Invalid(fmt::format("fill_mode must be REFLECT, WRAP, CONSTANT or NEAREST, got '{}'", mode));
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("interpolation", interp);
  attrs.Set("fill_mode", mode);
  const ir::ValueId fill = v3 ? ctx.input(3) : ctx.Constant(Tensor::Scalar<float>(DType::kFloat32, 0.0f), "fill_value");
  ctx.SetOutput(
      0, ctx.Emit1("ImageProjectiveTransform", {ctx.input(0), ctx.input(1), ctx.input(2), fill}, std::move(attrs)));
}

}  // namespace

void RegisterNnMathImporters(ImporterTable& table) {
  for (const char* op : {"ImageProjectiveTransformV2", "ImageProjectiveTransformV3"})
    table.Add({op, ImportImageProjectiveTransform, {}, {{"fill_mode", std::string("CONSTANT")}}});
  table.Add({"MatMul", ImportMatMul, {}, {{"transpose_a", false}, {"transpose_b", false}}});
  for (const char* op : {"BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"})
    table.Add({op, ImportBatchMatMul, {}, {{"adj_x", false}, {"adj_y", false}}});
  table.Add({"Einsum", ImportEinsum, {}, {}});
  const std::vector<TfOutputArg> bn_outputs{{"y", "", ""}, {"batch_mean", "", ""}, {"batch_variance", "", ""},
                                            {"reserve_space_1", "", ""}, {"reserve_space_2", "", ""}};
  std::vector<TfOutputArg> bn3_outputs = bn_outputs;
  bn3_outputs.push_back({"reserve_space_3", "", ""});
  const std::vector<std::pair<std::string, TfAttrDefault>> bn_defaults{
      {"epsilon", 1e-4f}, {"data_format", std::string("NHWC")}, {"is_training", true}, {"exponential_avg_factor", 1.0f}};
  table.Add({"FusedBatchNorm", ImportFusedBatchNorm, bn_outputs, bn_defaults});
  table.Add({"FusedBatchNormV2", ImportFusedBatchNorm, bn_outputs, bn_defaults});
  table.Add({"FusedBatchNormV3", ImportFusedBatchNorm, bn3_outputs, bn_defaults});
  table.Add({"Softmax", ImportSoftmax<false>, {}, {}});
  table.Add({"LogSoftmax", ImportSoftmax<true>, {}, {}});
  table.Add({"LRN", ImportLRN, {}, {{"depth_radius", int64_t{5}}, {"bias", 1.0f}, {"alpha", 1.0f}, {"beta", 0.5f}}});
  table.Add({"ResizeBilinear", ImportResize<true>, {}, {{"align_corners", false}, {"half_pixel_centers", false}}});
  table.Add({"ResizeNearestNeighbor", ImportResize<false>, {}, {{"align_corners", false}, {"half_pixel_centers", false}}});
  table.Add({"DepthToSpace", ImportDepthSpace<true>, {}, {{"data_format", std::string("NHWC")}}});
  table.Add({"SpaceToDepth", ImportDepthSpace<false>, {}, {{"data_format", std::string("NHWC")}}});
}

}  // namespace kiln::tf
