// TF importers of the colour-space ops: RGBToHSV, HSVToRGB (half, bfloat16, float, double),
// AdjustHue, AdjustSaturation (half, float images; a float32 scalar delta / scale).
#include <fmt/format.h>

#include <string>

#include "frontend/tf/importer.h"

namespace kiln::tf {

void RegisterNnColorImporters(ImporterTable& table);

namespace {

void CheckArity(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
}

void ImportColorConversion(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const DType t = ctx.attr_type("T");
  if (!IsFloating(t))
    ctx.Unsupported(fmt::format("T = {} is not supported (half, bfloat16, float, double)", DTypeName(t)));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(ctx.op(), {ctx.input(0)}));
}

void ImportColorAdjust(ImportContext& ctx) {
  CheckArity(ctx, 2);
  const DType t = ctx.attr_type("T");
  if (t != DType::kFloat32 && t != DType::kFloat16)
    ctx.Unsupported(fmt::format("T = {} is not supported (half, float)", DTypeName(t)));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(ctx.op(), {ctx.input(0), ctx.input(1)}));
}

}  // namespace

void RegisterNnColorImporters(ImporterTable& table) {
  const TfAttrDefault f32 = DType::kFloat32;
  table.Add({"RGBToHSV", ImportColorConversion, {}, {{"T", f32}}});
  table.Add({"HSVToRGB", ImportColorConversion, {}, {{"T", f32}}});
  table.Add({"AdjustHue", ImportColorAdjust, {}, {{"T", f32}}});
  table.Add({"AdjustSaturation", ImportColorAdjust, {}, {{"T", f32}}});
}

}  // namespace kiln::tf
