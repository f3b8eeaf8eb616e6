// Detection ops: NonMaxSuppression.
#include <fmt/format.h>

#include "ir/op_schema.h"

namespace kiln::ir {
namespace {

// ---- NonMaxSuppression(boxes [B,N,4], scores [B,C,N], max_output_per_class, iou_threshold,
// score_threshold) attr center_point_box -> selected [M, 3] int64 (batch, class, box) ----
void InferNonMaxSuppression(InferContext& ctx) {
  const SymShape& boxes = ctx.input_shape(0);
  const SymShape& scores = ctx.input_shape(1);
  if (!IsFloating(ctx.input_dtype(0)) || !IsFloating(ctx.input_dtype(1)))
    ctx.Fail(fmt::format("boxes and scores must be floating point, got {} and {}", DTypeName(ctx.input_dtype(0)),
                         DTypeName(ctx.input_dtype(1))));
  if (boxes.rank_known && (boxes.rank() != 3 || (IsStatic(boxes.dims[2]) && boxes.dims[2] != 4)))
    ctx.Fail(fmt::format("boxes must be [batches, boxes, 4], got {}", ctx.graph().ShapeToString(boxes)));
  if (scores.rank_known && scores.rank() != 3)
    ctx.Fail(fmt::format("scores must be [batches, classes, boxes], got {}", ctx.graph().ShapeToString(scores)));
  const int64_t center = ctx.attrs().GetOr<int64_t>("center_point_box", 0);
  if (center != 0 && center != 1) ctx.Fail(fmt::format("center_point_box must be 0 or 1, got {}", center));
  ctx.SetOutput(0, DType::kInt64, SymShape::Of({kUnknownDim, 3}));
}

}  // namespace

void RegisterDetectionOps(OpRegistry& registry) { registry.Add({"NonMaxSuppression", 5, 5, InferNonMaxSuppression}); }

}  // namespace kiln::ir
