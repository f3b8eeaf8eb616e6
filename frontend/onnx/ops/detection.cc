// ONNX detection ops: NonMaxSuppression (opset 10, 11).
#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <limits>

#include "frontend/onnx/ops/nn_common.h"

namespace kiln::onnxfe::nn {
namespace {

// NonMaxSuppression(boxes, scores[, max_output_boxes_per_class, iou_threshold, score_threshold])
// attr center_point_box. Absent inputs: no boxes per class (0), IoU threshold 0, no score
// threshold (every score passes).
void ImportNonMaxSuppression(ImportContext& ctx) {
  const int64_t center = ctx.attr_int("center_point_box", 0);
  if (center != 0 && center != 1) ctx.Invalid(fmt::format("center_point_box must be 0 or 1, got {}", center));
  for (int i : {0, 1}) {
    const DType t = ctx.input_dtype(i);
    if (t != DType::kInvalid && t != DType::kFloat32)
      ctx.Invalid(fmt::format("input {} must be float32, got {}", i, DTypeName(t)));
  }
  if (ctx.validate_only()) return;
  auto input_or = [&](int i, Tensor fallback, const char* name) {
    return ctx.has_input(i) ? ctx.input(i) : ctx.Constant(std::move(fallback), name);
  };
  const ir::ValueId max_out = input_or(2, Tensor::Scalar<int64_t>(DType::kInt64, 0), "max_output_boxes_per_class");
  const ir::ValueId iou = input_or(3, Tensor::Scalar<float>(DType::kFloat32, 0.f), "iou_threshold");
  const ir::ValueId score =
      input_or(4, Tensor::Scalar<float>(DType::kFloat32, -std::numeric_limits<float>::infinity()), "score_threshold");
  ir::AttrMap a;
  a.Set("center_point_box", center);
  ctx.SetOutput(0, ctx.Emit1("NonMaxSuppression", {ctx.input(0), ctx.input(1), max_out, iou, score}, std::move(a)));
}
KILN_ONNX_IMPORTER("NonMaxSuppression", ImportNonMaxSuppression);

}  // namespace
}  // namespace kiln::onnxfe::nn
