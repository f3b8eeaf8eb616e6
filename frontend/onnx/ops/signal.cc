// ONNX importers of the signal ops: DFT (opsets 17 and 20), STFT and MelWeightMatrix (17), each
// one IR op (docs/ops/signal.md); and the window functions (opset 17): HannWindow, HammingWindow,
// BlackmanWindow, decomposed as ONNX's function bodies define them, in float32:
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

void CheckFloatInput(ImportContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (!IsFloating(t))
    ctx.Invalid(fmt::format("{} has dtype {} (expected float16, bfloat16, float or double)", what, DTypeName(t)));
}

void CheckIntInput(ImportContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (t != DType::kInt32 && t != DType::kInt64)
    ctx.Invalid(fmt::format("{} has dtype {} (expected int32 or int64)", what, DTypeName(t)));
}

bool BoolAttr(ImportContext& ctx, const char* name, int64_t fallback) {
  const int64_t v = ctx.attr_int(name, fallback);
  if (v != 0 && v != 1) ctx.Invalid(fmt::format("{} must be 0 or 1, got {}", name, v));
  return v == 1;
}

void CheckArity(ImportContext& ctx, int min, int max) {
  if (ctx.num_inputs() < min || ctx.num_inputs() > max)
    ctx.Invalid(fmt::format("expected {} to {} inputs, got {}", min, max, ctx.num_inputs()));
}

// DFT: opsets 17-19 take `axis` as an attribute (default 1), 20 as an optional input (default
// -2). The IR DFT takes (input, axis, dft_length?).
void ImportDft(ImportContext& ctx) {
  const bool inverse = BoolAttr(ctx, "inverse", 0);
  const bool onesided = BoolAttr(ctx, "onesided", 0);
  const bool axis_is_input = ctx.opset() >= 20;
  if (axis_is_input && ctx.has_attr("axis")) ctx.Invalid("axis is an input from opset 20 on, not an attribute");
  const int64_t axis_attr = axis_is_input ? -2 : ctx.attr_int("axis", 1);
  CheckArity(ctx, 1, axis_is_input ? 3 : 2);
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "input");
  std::vector<ir::ValueId> inputs = {ctx.input(0)};
  if (axis_is_input && ctx.has_input(2)) {
    if (ctx.input_dtype(2) != DType::kInt64)
      ctx.Invalid(fmt::format("axis has dtype {} (expected int64)", DTypeName(ctx.input_dtype(2))));
    inputs.push_back(ctx.input(2));
  } else {
    inputs.push_back(ctx.ConstInt64({axis_attr}, true, "axis"));
  }
  if (ctx.has_input(1)) {
    CheckIntInput(ctx, 1, "dft_length");
    inputs.push_back(ctx.input(1));
  }
  ctx.SetOutput(0, ctx.Emit1("DFT", std::move(inputs), Attrs({{"inverse", inverse}, {"onesided", onesided}})));
}
KILN_ONNX_IMPORTER("DFT", ImportDft);

// STFT(signal, frame_step, window?, frame_length?): without a window, a rectangular one of
// frame_length (or, without that too, the signal's length) ones, so the IR STFT always has one.
void ImportStft(ImportContext& ctx) {
  const bool onesided = BoolAttr(ctx, "onesided", 1);
  CheckArity(ctx, 2, 4);
  if (ctx.validate_only()) return;
  CheckFloatInput(ctx, 0, "signal");
  CheckIntInput(ctx, 1, "frame_step");
  const DType t = ctx.input_dtype(0);
  if (ctx.has_input(2) && ctx.input_dtype(2) != t)
    ctx.Invalid(fmt::format("window has dtype {} (expected the signal's, {})", DTypeName(ctx.input_dtype(2)), DTypeName(t)));
  if (ctx.has_input(3)) CheckIntInput(ctx, 3, "frame_length");
  ir::ValueId window;
  if (ctx.has_input(2)) {
    window = ctx.input(2);
  } else {
    ir::ValueId length;
    if (ctx.has_input(3)) {
      length = ctx.Emit1("Reshape", {Cast(ctx, ctx.input(3), DType::kInt64, "frame_length_i64"),
                                     ctx.ConstInt64({1}, false, "one_dim")},
                         {}, "window_length");
    } else {
      const ir::ValueId shape = ctx.Emit1("Shape", {ctx.input(0)}, Attrs({{"out_type", DType::kInt64}}), "signal_shape");
      length = ctx.Emit1("Slice", {shape, ctx.ConstInt64({1}, false, "length_at"), ctx.ConstInt64({1}, false, "one")}, {},
                         "window_length");
    }
    window = ctx.Emit1("Fill", {length, ScalarOf(ctx, t, 1.0, "one_value")}, {}, "window");
  }
  std::vector<ir::ValueId> inputs = {ctx.input(0), ctx.input(1), window};
  if (ctx.has_input(3)) inputs.push_back(ctx.input(3));
  ctx.SetOutput(0, ctx.Emit1("STFT", std::move(inputs), Attrs({{"onesided", onesided}})));
}
KILN_ONNX_IMPORTER("STFT", ImportStft);

void ImportMelWeightMatrix(ImportContext& ctx) {
  const int64_t onnx_type = ctx.attr_int("output_datatype", 1);
  const DType out = DTypeFromOnnx(static_cast<int32_t>(onnx_type));
  if (out == DType::kInvalid || out == DType::kString || out == DType::kBool)
    ctx.Invalid(fmt::format("output_datatype {} is not a numeric type", onnx_type));
  CheckArity(ctx, 5, 5);
  if (ctx.validate_only()) return;
  CheckIntInput(ctx, 0, "num_mel_bins");
  CheckIntInput(ctx, 1, "dft_length");
  CheckIntInput(ctx, 2, "sample_rate");
  CheckFloatInput(ctx, 3, "lower_edge_hertz");
  CheckFloatInput(ctx, 4, "upper_edge_hertz");
  ctx.SetOutput(0, ctx.Emit1("MelWeightMatrix", ctx.input_values(), Attrs({{"output_datatype", out}})));
}
KILN_ONNX_IMPORTER("MelWeightMatrix", ImportMelWeightMatrix);

}  // namespace
}  // namespace kiln::onnxfe::nn
