// Random IR ops: Dropout (ONNX's, training mode included). Not foldable: without a seed each run
// draws anew. See docs/ops/nn.md, "Dropout".
#include <fmt/format.h>

#include "ir/op_schema.h"

namespace kiln::ir {

void RegisterRandomOps(OpRegistry& registry);

namespace {

// A scalar input (rank 0, or one element).
void CheckScalar(InferContext& ctx, int i, const char* what) {
  const SymShape& s = ctx.input_shape(i);
  if (s.rank_known && (s.rank() > 1 || (s.rank() == 1 && IsStatic(s.dims[0]) && s.dims[0] != 1)))
    ctx.Fail(fmt::format("{} must be a scalar, got shape {}", what, ctx.graph().ShapeToString(s)));
}

// ---- Dropout(x, ratio, training_mode) attr seed? -> (y, mask) ----
void InferDropout(InferContext& ctx) {
  if (!IsFloating(ctx.input_dtype(0)))
    ctx.Fail(fmt::format("x must be a floating-point tensor, got {}", DTypeName(ctx.input_dtype(0))));
  if (!IsFloating(ctx.input_dtype(1)))
    ctx.Fail(fmt::format("ratio must be a floating-point scalar, got {}", DTypeName(ctx.input_dtype(1))));
  if (ctx.input_dtype(2) != DType::kBool)
    ctx.Fail(fmt::format("training_mode must be a bool scalar, got {}", DTypeName(ctx.input_dtype(2))));
  CheckScalar(ctx, 1, "ratio");
  CheckScalar(ctx, 2, "training_mode");
  if (const Tensor* r = ctx.constant_input(1); r && r->num_elements() == 1) {
    const double ratio = r->DoubleAt(0);
    if (!(ratio >= 0 && ratio < 1)) ctx.Fail(fmt::format("ratio must be in [0, 1), got {}", ratio));
  }
  ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
  if (ctx.num_outputs() > 1) ctx.SetOutput(1, DType::kBool, ctx.input_shape(0));
}

}  // namespace

void RegisterRandomOps(OpRegistry& registry) { registry.Add({"Dropout", 3, 3, InferDropout, /*foldable=*/false}); }

}  // namespace kiln::ir
