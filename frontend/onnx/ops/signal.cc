// ONNX importers of the window functions (opset 17): HannWindow, HammingWindow, BlackmanWindow,
// decomposed as ONNX's function bodies define them, in float32:
//   w[n] = a0 - a1 * cos(tau * n / L) + a2 * cos(2 * tau * n / L),  n = 0 .. size - 1,
// L = size when `periodic` (the default), size - 1 when symmetric; the result cast to
// `output_datatype` (default float). See docs/onnx/nn.md.
#include <fmt/format.h>

#include "frontend/onnx/onnx_model.h"
#include "frontend/onnx/ops/nn_common.h"

namespace kiln::onnxfe::nn {
namespace {

struct WindowCoefficients {
  float a0, a1, a2;
};

void ImportWindow(ImportContext& ctx, WindowCoefficients c) {
  const DType size_type = ctx.input_dtype(0);
  if (size_type != DType::kInt32 && size_type != DType::kInt64)
    ctx.Invalid(fmt::format("size has dtype {} (expected int32 or int64)", DTypeName(size_type)));
  const DType out = DTypeFromOnnx(static_cast<int32_t>(ctx.attr_int("output_datatype", 1)));
  if (out == DType::kInvalid || out == DType::kString || out == DType::kBool)
    ctx.Unsupported(fmt::format("output_datatype {} is not supported", ctx.attr_int("output_datatype", 1)));
  const int64_t periodic = ctx.attr_int("periodic", 1);
  if (ctx.validate_only()) return;
  const ir::SymShape s = ctx.input_shape(0);
  if (s.rank_known && !(s.rank() == 0 || (s.rank() == 1 && s.dims[0] == 1)))
    ctx.Invalid(fmt::format("size must be a scalar, got shape {}", ctx.graph().ShapeToString(s)));
  ir::ValueId size = Cast(ctx, ctx.input(0), DType::kFloat32, "size_f32");
  if (s.rank_known && s.rank() == 1)
    size = ctx.Emit1("Reshape", {size, ctx.ConstInt64({}, false, "scalar_shape")}, {}, "size_scalar");
  const ir::ValueId length =
      periodic ? size : ctx.Emit1("Sub", {size, ScalarOf(ctx, DType::kFloat32, 1.0, "one")}, {}, "length");
  const ir::ValueId step = ctx.Emit1("Div", {ScalarOf(ctx, DType::kFloat32, 6.2831855, "tau"), length}, {}, "step");
  const ir::ValueId n = ctx.Emit1(
      "Range", {ScalarOf(ctx, DType::kFloat32, 0.0, "start"), size, ScalarOf(ctx, DType::kFloat32, 1.0, "delta")}, {},
      "n");
  const ir::ValueId angle = ctx.Emit1("Mul", {n, step}, {}, "angle");
  ir::ValueId w = ctx.Emit1(
      "Sub",
      {ScalarOf(ctx, DType::kFloat32, c.a0, "a0"),
       ctx.Emit1("Mul", {ScalarOf(ctx, DType::kFloat32, c.a1, "a1"), ctx.Emit1("Cos", {angle}, {}, "cos1")}, {}, "term1")},
      {}, "w1");
  if (c.a2 != 0) {
    const ir::ValueId twice = ctx.Emit1("Mul", {angle, ScalarOf(ctx, DType::kFloat32, 2.0, "two")}, {}, "angle2");
    w = ctx.Emit1(
        "Add",
        {w, ctx.Emit1("Mul", {ScalarOf(ctx, DType::kFloat32, c.a2, "a2"), ctx.Emit1("Cos", {twice}, {}, "cos2")}, {},
                      "term2")},
        {}, "w2");
  }
  ctx.SetOutput(0, Cast(ctx, w, out, "window"));
}

void ImportHannWindow(ImportContext& ctx) { ImportWindow(ctx, {0.5f, 0.5f, 0.0f}); }
void ImportHammingWindow(ImportContext& ctx) { ImportWindow(ctx, {25.0f / 46.0f, 21.0f / 46.0f, 0.0f}); }
void ImportBlackmanWindow(ImportContext& ctx) { ImportWindow(ctx, {0.42f, 0.5f, 0.08f}); }
KILN_ONNX_IMPORTER("HannWindow", ImportHannWindow);
KILN_ONNX_IMPORTER("HammingWindow", ImportHammingWindow);
KILN_ONNX_IMPORTER("BlackmanWindow", ImportBlackmanWindow);

}  // namespace
}  // namespace kiln::onnxfe::nn
