// ONNX importers of the quantization ops, decomposed into core IR ops exactly as ONNX defines
// them (its reference implementation's order of rounding, offset and saturation), so that every
// backend runs them with the kernels it already has: QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear and QLinearMatMul. ConvInteger and QLinearConv are in nn.cc, next to Conv;
// MatMulInteger is in nn_math.cc. See docs/onnx/nn.md.
#include <fmt/format.h>

#include <string>
#include <utility>
#include <vector>

#include "frontend/onnx/onnx_model.h"
#include "frontend/onnx/ops/nn_common.h"

namespace kiln::onnxfe::nn {

bool IsQuantizedType(DType t) {
  return t == DType::kInt8 || t == DType::kUInt8 || t == DType::kInt16 || t == DType::kUInt16;
}

std::pair<double, double> QuantizedRange(DType t) {
  switch (t) {
    case DType::kInt8:
      return {-128, 127};
    case DType::kUInt8:
      return {0, 255};
    case DType::kInt16:
      return {-32768, 32767};
    case DType::kUInt16:
      return {0, 65535};
    default:
      return {0, 0};
  }
}

ir::ValueId ParamAlongAxis(ImportContext& ctx, ir::ValueId v, int64_t axis, int rank, const std::string& what) {
  const ir::SymShape s = ctx.graph().value(v).shape;
  if (!s.rank_known) ctx.Unsupported(fmt::format("{} must have a known rank", what));
  if (s.rank() == 0) return v;
  if (s.rank() > 1)
    ctx.Unsupported(fmt::format("{} of rank {}: blocked quantization is not supported (per tensor or per axis only)",
                                what, s.rank()));
  if (s.dims[0] == 1) return v;  // one element: broadcasts as it is
  if (axis < -rank || axis >= rank)
    ctx.Invalid(fmt::format("axis {} is out of range for an input of rank {}", axis, rank));
  const int64_t a = axis < 0 ? axis + rank : axis;
  std::vector<int64_t> shape = {-1};
  for (int64_t d = a + 1; d < rank; ++d) shape.push_back(1);
  if (shape.size() == 1) return v;  // along the last axis: [C] already broadcasts there
  return ctx.Emit1("Reshape", {v, ctx.ConstInt64(shape, false, what + "_shape")}, {}, what + "_along_axis");
}

ir::ValueId Saturated(ImportContext& ctx, ir::ValueId value, ir::ValueId zero_point, DType qtype, bool offset_first,
                      const std::string& suffix) {
  const DType t = ctx.graph().value(value).dtype;
  ir::ValueId zp = zero_point == ir::kNoValue ? ir::kNoValue : Cast(ctx, zero_point, t, suffix + "_zp");
  ir::ValueId v = value;
  if (offset_first && zp != ir::kNoValue) v = ctx.Emit1("Add", {v, zp}, {}, suffix + "_offset");
  v = ctx.Emit1("Round", {v}, {}, suffix + "_rounded");
  if (!offset_first && zp != ir::kNoValue) v = ctx.Emit1("Add", {v, zp}, {}, suffix + "_offset");
  const auto [lo, hi] = QuantizedRange(qtype);
  v = ctx.Emit1("Clip", {v, ScalarOf(ctx, t, lo, suffix + "_qmin"), ScalarOf(ctx, t, hi, suffix + "_qmax")}, {},
                suffix + "_saturated");
  return Cast(ctx, v, qtype, suffix);
}

namespace {

void CheckFloatScale(ImportContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (t != DType::kFloat32 && t != DType::kFloat16 && t != DType::kBFloat16)
    ctx.Unsupported(fmt::format("{} of dtype {} (expected float32, float16 or bfloat16)", what, DTypeName(t)));
}

void RefuseBlocks(ImportContext& ctx) {
  if (ctx.attr_int("block_size", 0) != 0)
    ctx.Unsupported(fmt::format("block_size {}: blocked quantization is not supported", ctx.attr_int("block_size", 0)));
}

// QuantizeLinear: y = saturate(round(x / y_scale) + y_zero_point), rounding half to even, in
// float32 (float16 and bfloat16 inputs are widened first). The quantized type is the zero
// point's, else output_dtype's (opset 21), else uint8.
void ImportQuantizeLinear(ImportContext& ctx) {
  RefuseBlocks(ctx);
  DType qtype = DType::kUInt8;
  if (ctx.has_input(2)) {
    qtype = ctx.input_dtype(2);
  } else if (const int64_t out = ctx.attr_int("output_dtype", 0); out != 0) {
    qtype = DTypeFromOnnx(static_cast<int32_t>(out));
  }
  if (!IsQuantizedType(qtype))
    ctx.Unsupported(fmt::format("quantizing to {} is not supported (int8, uint8, int16, uint16)", DTypeName(qtype)));
  if (ctx.has_input(2) && ctx.has_attr("output_dtype") && ctx.attr_int("output_dtype", 0) != 0 &&
      DTypeFromOnnx(static_cast<int32_t>(ctx.attr_int("output_dtype", 0))) != qtype)
    ctx.Invalid("output_dtype differs from the zero point's dtype");
  const DType xt = ctx.input_dtype(0);
  if (xt != DType::kFloat32 && xt != DType::kFloat16 && xt != DType::kBFloat16 && xt != DType::kInt32)
    ctx.Unsupported(fmt::format("x of dtype {} (expected float32, float16, bfloat16 or int32)", DTypeName(xt)));
  CheckFloatScale(ctx, 1, "y_scale");
  if (ctx.validate_only()) return;
  const int rank = RequireRank(ctx, 0, "x");
  const int64_t axis = ctx.attr_int("axis", 1);
  const ir::ValueId x = Cast(ctx, ctx.input(0), DType::kFloat32, "x_f32");
  const ir::ValueId scale =
      ParamAlongAxis(ctx, Cast(ctx, ctx.input(1), DType::kFloat32, "scale_f32"), axis, rank, "y_scale");
  ir::ValueId zp = ir::kNoValue;
  if (ctx.has_input(2)) zp = ParamAlongAxis(ctx, ctx.input(2), axis, rank, "y_zero_point");
  const ir::ValueId scaled = ctx.Emit1("Div", {x, scale}, {}, "scaled");
  ctx.SetOutput(0, Saturated(ctx, scaled, zp, qtype, /*offset_first=*/false, "quantized"));
}
KILN_ONNX_IMPORTER("QuantizeLinear", ImportQuantizeLinear);

// DequantizeLinear: y = (x - x_zero_point) * x_scale, in float32, stored in the scale's dtype.
void ImportDequantizeLinear(ImportContext& ctx) {
  RefuseBlocks(ctx);
  const DType xt = ctx.input_dtype(0);
  if (!IsQuantizedType(xt) && xt != DType::kInt32)
    ctx.Unsupported(fmt::format("x of dtype {} (expected int8, uint8, int16, uint16 or int32)", DTypeName(xt)));
  if (ctx.has_input(2) && ctx.input_dtype(2) != xt)
    ctx.Invalid(fmt::format("x_zero_point has dtype {}, x {}", DTypeName(ctx.input_dtype(2)), DTypeName(xt)));
  CheckFloatScale(ctx, 1, "x_scale");
  if (ctx.validate_only()) return;
  const int rank = RequireRank(ctx, 0, "x");
  const int64_t axis = ctx.attr_int("axis", 1);
  ir::ValueId x = Cast(ctx, ctx.input(0), DType::kFloat32, "x_f32");
  if (ctx.has_input(2)) {
    const ir::ValueId zp =
        ParamAlongAxis(ctx, Cast(ctx, ctx.input(2), DType::kFloat32, "zp_f32"), axis, rank, "x_zero_point");
    x = ctx.Emit1("Sub", {x, zp}, {}, "centered");
  }
  const ir::ValueId scale =
      ParamAlongAxis(ctx, Cast(ctx, ctx.input(1), DType::kFloat32, "scale_f32"), axis, rank, "x_scale");
  const ir::ValueId y = ctx.Emit1("Mul", {x, scale}, {}, "dequantized");
  ctx.SetOutput(0, Cast(ctx, y, ctx.input_dtype(1), "dequantized_out"));
}
KILN_ONNX_IMPORTER("DequantizeLinear", ImportDequantizeLinear);

// DynamicQuantizeLinear: uint8 quantization of x over [min(x, 0), max(x, 0)]:
//   y_scale = (max - min) / 255 (1 / 255 when max == min), y_zero_point = round(saturate(-min / y_scale)),
//   y = saturate(round(x / y_scale) + y_zero_point).
void ImportDynamicQuantizeLinear(ImportContext& ctx) {
  if (ctx.input_dtype(0) != DType::kFloat32)
    ctx.Unsupported(fmt::format("x of dtype {} (expected float32)", DTypeName(ctx.input_dtype(0))));
  if (ctx.validate_only()) return;
  const int rank = RequireRank(ctx, 0, "x");
  std::vector<int64_t> all;
  for (int d = 0; d < rank; ++d) all.push_back(d);
  const ir::ValueId x = ctx.input(0);
  auto reduce = [&](const char* op, const std::string& suffix) {
    return ctx.Emit1(op, {x, ctx.ConstInt64(all, false, suffix + "_axes")}, Attrs({{"keep_dims", false}}), suffix);
  };
  const ir::ValueId zero = ScalarOf(ctx, DType::kFloat32, 0.0, "zero");
  const ir::ValueId hi = ctx.Emit1("Maximum", {reduce("ReduceMax", "x_max"), zero}, {}, "hi");
  const ir::ValueId lo = ctx.Emit1("Minimum", {reduce("ReduceMin", "x_min"), zero}, {}, "lo");
  ir::ValueId range = ctx.Emit1("Sub", {hi, lo}, {}, "range");
  const ir::ValueId empty = ctx.Emit1("Equal", {range, zero}, {}, "empty_range");
  range = ctx.Emit1("Select", {empty, ScalarOf(ctx, DType::kFloat32, 1.0, "unit"), range}, {}, "nonzero_range");
  const ir::ValueId scale = ctx.Emit1("Div", {range, ScalarOf(ctx, DType::kFloat32, 255.0, "levels")}, {}, "y_scale");
  ir::ValueId zp = ctx.Emit1("Neg", {ctx.Emit1("Div", {lo, scale}, {}, "lo_scaled")}, {}, "zp_float");
  zp = ctx.Emit1("Clip",
                 {zp, ScalarOf(ctx, DType::kFloat32, 0.0, "zp_min"), ScalarOf(ctx, DType::kFloat32, 255.0, "zp_max")},
                 {}, "zp_saturated");
  zp = ctx.Emit1("Round", {zp}, {}, "zp_rounded");
  const ir::ValueId scaled = ctx.Emit1("Div", {x, scale}, {}, "scaled");
  ctx.SetOutput(0, Saturated(ctx, scaled, zp, DType::kUInt8, /*offset_first=*/false, "y"));
  ctx.SetOutput(1, scale);
  ctx.SetOutput(2, Cast(ctx, zp, DType::kUInt8, "y_zero_point"));
}
KILN_ONNX_IMPORTER("DynamicQuantizeLinear", ImportDynamicQuantizeLinear);

// QLinearMatMul: the int32 product (a - a_zero_point) @ (b - b_zero_point), times
// a_scale * b_scale / y_scale (computed in float32), offset by y_zero_point, rounded and
// saturated, in float64 (as ONNX's reference). Per-row (a) and per-column (b) parameters are
// 1-D.
void ImportQLinearMatMul(ImportContext& ctx) {
  for (int i : {0, 2, 3, 5, 7}) {
    if (!ctx.has_input(i)) continue;
    const DType t = ctx.input_dtype(i);
    if (t != DType::kInt8 && t != DType::kUInt8)
      ctx.Unsupported(fmt::format("input {} has dtype {} (expected int8 or uint8)", i, DTypeName(t)));
  }
  for (int i : {1, 4, 6}) CheckFloatScale(ctx, i, "a scale");
  if (ctx.validate_only()) return;
  const int ra = RequireRank(ctx, 0, "a"), rb = RequireRank(ctx, 3, "b");
  if (ra < 2 || rb < 2) ctx.Unsupported("QLinearMatMul operands of rank < 2 are not supported");
  // Per row of a: [M] -> [M, 1]; per column of b: [N] broadcasts along the last dim as it is.
  auto per_row = [&](ir::ValueId v, const std::string& suffix) {
    const ir::SymShape s = ctx.graph().value(v).shape;
    if (s.rank_known && s.rank() == 1 && s.dims[0] != 1)
      return ctx.Emit1("Reshape", {v, ctx.ConstInt64({-1, 1}, false, suffix + "_shape")}, {}, suffix);
    return v;
  };
  ir::ValueId a = Cast(ctx, ctx.input(0), DType::kInt32, "a_i32");
  ir::ValueId b = Cast(ctx, ctx.input(3), DType::kInt32, "b_i32");
  if (ctx.has_input(2)) a = ctx.Emit1("Sub", {a, per_row(Cast(ctx, ctx.input(2), DType::kInt32, "a_zp_i32"), "a_zp_rows")}, {}, "a_centered");
  if (ctx.has_input(5)) b = ctx.Emit1("Sub", {b, Cast(ctx, ctx.input(5), DType::kInt32, "b_zp_i32")}, {}, "b_centered");
  const ir::ValueId product = ctx.Emit1(ra == 2 && rb == 2 ? "MatMul" : "BatchMatMul", {a, b}, {}, "product");
  const ir::ValueId a_scale = per_row(Cast(ctx, ctx.input(1), DType::kFloat32, "a_scale_f32"), "a_scale_rows");
  const ir::ValueId b_scale = Cast(ctx, ctx.input(4), DType::kFloat32, "b_scale_f32");
  const ir::ValueId multiplier =
      ctx.Emit1("Div", {ctx.Emit1("Mul", {a_scale, b_scale}, {}, "ab_scale"), Cast(ctx, ctx.input(6), DType::kFloat32, "y_scale_f32")},
                {}, "multiplier");
  const ir::ValueId scaled = ctx.Emit1(
      "Mul", {Cast(ctx, product, DType::kFloat64, "product_f64"), Cast(ctx, multiplier, DType::kFloat64, "multiplier_f64")},
      {}, "scaled");
  const DType qtype = ctx.has_input(7) ? ctx.input_dtype(7) : ctx.input_dtype(0);
  ctx.SetOutput(0, Saturated(ctx, scaled, ctx.has_input(7) ? ctx.input(7) : ir::kNoValue, qtype,
                             /*offset_first=*/true, "y"));
}
KILN_ONNX_IMPORTER("QLinearMatMul", ImportQLinearMatMul);

}  // namespace
}  // namespace kiln::onnxfe::nn
