// ONNX importers of vision ops: GridSample (opsets 16 and 20) and RoiAlign (opsets 10 and 16),
// each one IR op of the same name (docs/ops/nn.md). See docs/onnx/nn.md.
#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <cmath>

#include "frontend/onnx/ops/nn_common.h"
#include "ir/ops/vision_util.h"

namespace kiln::onnxfe::nn {
namespace {

using ir::vision::kMaxGridSampleDims;

// GridSample(X, grid) attrs mode, padding_mode, align_corners. Opsets 16-19 name the modes
// bilinear / nearest / bicubic and take 4-D X only; opset 20 renamed them linear / nearest /
// cubic and allows any number of spatial dims.
void ImportGridSample(ImportContext& ctx) {
  const bool v20 = ctx.opset() >= 20;
  const std::string mode = ctx.attr_string("mode", v20 ? "linear" : "bilinear");
  std::string ir_mode;
  if (v20) {
    if (mode != "linear" && mode != "nearest" && mode != "cubic")
      ctx.Invalid(fmt::format("mode '{}' is not one of linear, nearest, cubic (the names from opset 20 on)", mode));
    ir_mode = mode;
  } else {
    if (mode == "bilinear")
      ir_mode = "linear";
    else if (mode == "bicubic")
      ir_mode = "cubic";
    else if (mode == "nearest")
      ir_mode = "nearest";
    else
      ctx.Invalid(fmt::format("mode '{}' is not one of bilinear, nearest, bicubic (the names before opset 20)", mode));
  }
  const std::string padding = ctx.attr_string("padding_mode", "zeros");
  if (padding != "zeros" && padding != "border" && padding != "reflection")
    ctx.Invalid(fmt::format("padding_mode '{}' is not one of zeros, border, reflection", padding));
  const int64_t align = ctx.attr_int("align_corners", 0);
  if (align != 0 && align != 1) ctx.Invalid(fmt::format("align_corners must be 0 or 1, got {}", align));
  if (ctx.validate_only()) return;
  const DType xt = ctx.input_dtype(0), gt = ctx.input_dtype(1);
  if (xt == DType::kString) ctx.Unsupported("X of dtype string is not supported (GridSample interpolates numbers)");
  if (!IsFloating(gt)) ctx.Invalid(fmt::format("grid must be float16, float or double, got {}", DTypeName(gt)));
  const ir::SymShape xs = ctx.input_shape(0);
  if (xs.rank_known) {
    if (!v20 && xs.rank() != 4)
      ctx.Invalid(fmt::format("X must be 4-D (N, C, H, W) before opset 20, got {}", ctx.graph().ShapeToString(xs)));
    if (xs.rank() < 3) ctx.Invalid(fmt::format("X must be (N, C, D1, ...), got {}", ctx.graph().ShapeToString(xs)));
    if (xs.rank() - 2 > kMaxGridSampleDims)
      ctx.Unsupported(fmt::format("{} spatial dims are not supported (1 to {})", xs.rank() - 2, kMaxGridSampleDims));
  }
  ctx.SetOutput(0, ctx.Emit1("GridSample", {ctx.input(0), ctx.input(1)},
                             Attrs({{"mode", ir_mode}, {"padding_mode", padding}, {"align_corners", align == 1}})));
}
KILN_ONNX_IMPORTER("GridSample", ImportGridSample);

// RoiAlign(X, rois, batch_indices) attrs mode, output_height, output_width, sampling_ratio,
// spatial_scale and (from opset 16) coordinate_transformation_mode; opset 10 has no pixel shift
// (output_half_pixel, the converter's choice for 15 -> 16).
void ImportRoiAlign(ImportContext& ctx) {
  const bool v16 = ctx.opset() >= 16;
  if (!v16 && ctx.has_attr("coordinate_transformation_mode"))
    ctx.Invalid(fmt::format("coordinate_transformation_mode is an attribute from opset 16 on (the model is opset {})",
                            ctx.opset()));
  const std::string coord = ctx.attr_string("coordinate_transformation_mode", v16 ? "half_pixel" : "output_half_pixel");
  if (coord != "half_pixel" && coord != "output_half_pixel")
    ctx.Invalid(fmt::format("coordinate_transformation_mode '{}' is not one of half_pixel, output_half_pixel", coord));
  const std::string mode = ctx.attr_string("mode", "avg");
  if (mode != "avg" && mode != "max") ctx.Invalid(fmt::format("mode '{}' is not one of avg, max", mode));
  const int64_t oh = ctx.attr_int("output_height", 1), ow = ctx.attr_int("output_width", 1);
  if (oh < 1 || ow < 1)
    ctx.Invalid(fmt::format("output_height and output_width must be positive, got {} and {}", oh, ow));
  const int64_t ratio = ctx.attr_int("sampling_ratio", 0);
  if (ratio < 0) ctx.Invalid(fmt::format("sampling_ratio must be >= 0 (0: adaptive), got {}", ratio));
  const float scale = ctx.attr_float("spatial_scale", 1.0f);
  if (!std::isfinite(scale)) ctx.Invalid(fmt::format("spatial_scale must be finite, got {}", scale));
  if (ctx.num_inputs() != 3)
    ctx.Invalid(fmt::format("expected 3 inputs (X, rois, batch_indices), got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  const DType xt = ctx.input_dtype(0);
  if (!IsFloating(xt)) ctx.Invalid(fmt::format("X must be a floating type, got {}", DTypeName(xt)));
  if (ctx.input_dtype(1) != xt)
    ctx.Invalid(fmt::format("rois must have X's dtype {}, got {}", DTypeName(xt), DTypeName(ctx.input_dtype(1))));
  if (ctx.input_dtype(2) != DType::kInt64)
    ctx.Invalid(fmt::format("batch_indices must be int64, got {}", DTypeName(ctx.input_dtype(2))));
  ctx.SetOutput(0, ctx.Emit1("RoiAlign", {ctx.input(0), ctx.input(1), ctx.input(2)},
                             Attrs({{"mode", mode},
                                    {"coordinate_transformation_mode", coord},
                                    {"output_height", oh},
                                    {"output_width", ow},
                                    {"sampling_ratio", ratio},
                                    {"spatial_scale", static_cast<double>(scale)}})));
}
KILN_ONNX_IMPORTER("RoiAlign", ImportRoiAlign);

}  // namespace
}  // namespace kiln::onnxfe::nn
