// nn family IR ops of image colour spaces: RGBToHSV, HSVToRGB, AdjustHue, AdjustSaturation.
// Each works on the innermost axis of 3 channels. See docs/ops/nn.md.
#include <fmt/format.h>

#include "ir/graph_util.h"
#include "ir/op_schema.h"

namespace kiln::ir {

void RegisterNnColorOps(OpRegistry& registry);

namespace {

// The image input: floating, innermost dim 3 where known, at least `min_rank` dims.
void CheckImages(InferContext& ctx, int min_rank) {
  const DType t = ctx.input_dtype(0);
  if (t != DType::kInvalid && !IsFloating(t)) ctx.Fail(fmt::format("expected floating images, got {}", DTypeName(t)));
  const SymShape& x = ctx.input_shape(0);
  if (!x.rank_known) return;
  if (x.rank() < min_rank || (IsStatic(x.dims.back()) && x.dims.back() != 3))
    ctx.Fail(fmt::format("expected images of rank >= {} with 3 channels in the last dim, got {}", min_rank,
                         ctx.graph().ShapeToString(x)));
}

// RGBToHSV / HSVToRGB(images [..., 3]) -> [..., 3].
void InferColorConversion(InferContext& ctx) {
  CheckImages(ctx, 1);
  ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
}

// AdjustHue(images [..., 3] (rank >= 3), delta float32 scalar) and AdjustSaturation(images,
// scale float32 scalar) -> images' shape; float32 or float16 images, as TF's op allows.
void InferColorAdjust(InferContext& ctx) {
  CheckImages(ctx, 3);
  const DType t = ctx.input_dtype(0);
  if (t != DType::kInvalid && t != DType::kFloat32 && t != DType::kFloat16)
    ctx.Fail(fmt::format("expected float32 or float16 images, got {}", DTypeName(t)));
  const DType p = ctx.input_dtype(1);
  if (p != DType::kInvalid && p != DType::kFloat32)
    ctx.Fail(fmt::format("input 1 must be float32, got {}", DTypeName(p)));
  const SymShape& s = ctx.input_shape(1);
  if (s.rank_known && s.rank() != 0)
    ctx.Fail(fmt::format("input 1 must be a scalar, got {}", ctx.graph().ShapeToString(s)));
  ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
}

}  // namespace

void RegisterNnColorOps(OpRegistry& registry) {
  registry.Add({"RGBToHSV", 1, 1, InferColorConversion});
  registry.Add({"HSVToRGB", 1, 1, InferColorConversion});
  registry.Add({"AdjustHue", 2, 2, InferColorAdjust});
  registry.Add({"AdjustSaturation", 2, 2, InferColorAdjust});
}

}  // namespace kiln::ir
