// ONNX importers of the optimizer ops of the ai.onnx.preview.training domain (version 1):
// Adagrad, Adam, Momentum. Each is the spec's pseudo code, one elementwise IR op per step, per
// optimized tensor: the learning-rate arithmetic on the scalars R and T in float64, the updates
// in the tensors' dtype (float or double). Registered as "ai.onnx.preview.training.<op>"
// (frontend/onnx/graph_builder.cc). See docs/onnx/training.md.
#include <fmt/format.h>

#include "frontend/onnx/ops/nn_common.h"

namespace kiln::onnxfe::nn {
namespace {

constexpr const char* kDomain = "ai.onnx.preview.training.";

// The shared inputs: R (float / double scalar), T (int64 scalar), then `groups` lists of n
// tensors of one float / double dtype; the outputs are the first `outputs` lists. Returns n.
int CheckOptimizerArity(ImportContext& ctx, int groups, int outputs) {
  const int tensors = ctx.num_inputs() - 2;
  if (tensors < groups || tensors % groups != 0)
    ctx.Invalid(
        fmt::format("expected R, T and {} lists of equally many tensors, got {} inputs", groups, ctx.num_inputs()));
  const int n = tensors / groups;
  if (ctx.num_outputs() != outputs * n)
    ctx.Invalid(
        fmt::format("expected {} outputs ({} per optimized tensor), got {}", outputs * n, outputs, ctx.num_outputs()));
  for (int i = 0; i < ctx.num_inputs(); ++i)
    if (!ctx.has_input(i)) ctx.Invalid(fmt::format("input {} is missing", i));
  return n;
}

// Checks dtypes and scalar shapes; returns the tensors' dtype.
DType CheckOptimizerInputs(ImportContext& ctx) {
  const DType r = ctx.input_dtype(0);
  if (r != DType::kFloat32 && r != DType::kFloat64)
    ctx.Invalid(fmt::format("R has dtype {} (expected float or double)", DTypeName(r)));
  if (ctx.input_dtype(1) != DType::kInt64)
    ctx.Invalid(fmt::format("T has dtype {} (expected int64)", DTypeName(ctx.input_dtype(1))));
  for (int i = 0; i < 2; ++i) {
    const ir::SymShape s = ctx.input_shape(i);
    if (s.rank_known && (s.rank() > 1 || (s.rank() == 1 && s.dims[0] != 1)))
      ctx.Invalid(fmt::format("{} must be a scalar, got shape {}", i == 0 ? "R" : "T", ctx.graph().ShapeToString(s)));
  }
  const DType t = ctx.input_dtype(2);
  if (t != DType::kFloat32 && t != DType::kFloat64)
    ctx.Invalid(fmt::format("the optimized tensors have dtype {} (expected float or double)", DTypeName(t)));
  for (int i = 3; i < ctx.num_inputs(); ++i)
    if (ctx.input_dtype(i) != t)
      ctx.Invalid(
          fmt::format("input {} has dtype {} (expected {}, as every optimized tensor, gradient and "
                      "accumulator)",
                      i, DTypeName(ctx.input_dtype(i)), DTypeName(t)));
  return t;
}

ir::ValueId Scalar(ImportContext& ctx, ir::ValueId v) {
  return ctx.Emit1("Reshape", {v, ctx.ConstInt64({}, false, "scalar_shape")}, {}, "scalar");
}

struct Scalars {
  ir::ValueId r;         // R in float64
  ir::ValueId t;         // T in float64
  ir::ValueId positive;  // T > 0
};

Scalars ReadScalars(ImportContext& ctx) {
  const ir::ValueId t = Scalar(ctx, ctx.input(1));
  return {Cast(ctx, Scalar(ctx, ctx.input(0)), DType::kFloat64, "r_f64"), Cast(ctx, t, DType::kFloat64, "t_f64"),
          ctx.Emit1("Greater", {t, ScalarOf(ctx, DType::kInt64, 0, "zero")}, {}, "t_positive")};
}

ir::ValueId Mul(ImportContext& ctx, ir::ValueId a, ir::ValueId b, const std::string& s) {
  return ctx.Emit1("Mul", {a, b}, {}, s);
}
ir::ValueId Add(ImportContext& ctx, ir::ValueId a, ir::ValueId b, const std::string& s) {
  return ctx.Emit1("Add", {a, b}, {}, s);
}
ir::ValueId Sub(ImportContext& ctx, ir::ValueId a, ir::ValueId b, const std::string& s) {
  return ctx.Emit1("Sub", {a, b}, {}, s);
}
ir::ValueId Div(ImportContext& ctx, ir::ValueId a, ir::ValueId b, const std::string& s) {
  return ctx.Emit1("Div", {a, b}, {}, s);
}

// G_regularized = norm_coefficient * X + G.
ir::ValueId Regularized(ImportContext& ctx, DType t, float norm, ir::ValueId x, ir::ValueId g, const std::string& s) {
  return Add(ctx, Mul(ctx, ScalarOf(ctx, t, norm, s + "_norm"), x, s + "_decay"), g, s + "_g_regularized");
}

// Adagrad(R, T, X..., G..., H...) -> X_new..., H_new...:
//   r = R / (1 + T * decay_factor); G_reg = norm_coefficient * X + G; H_new = H + G_reg * G_reg;
//   X_new = X - r * G_reg / (Sqrt(H_new) + epsilon).
void ImportAdagrad(ImportContext& ctx) {
  const float decay = ctx.attr_float("decay_factor", 0.0f);
  const float epsilon = ctx.attr_float("epsilon", 1e-6f);
  const float norm = ctx.attr_float("norm_coefficient", 0.0f);
  const int n = CheckOptimizerArity(ctx, 3, 2);
  if (ctx.validate_only()) return;
  const DType t = CheckOptimizerInputs(ctx);
  const Scalars sc = ReadScalars(ctx);
  const ir::ValueId denominator =
      Add(ctx, ScalarOf(ctx, DType::kFloat64, 1, "one"),
          Mul(ctx, sc.t, ScalarOf(ctx, DType::kFloat64, decay, "decay"), "t_decay"), "decayed");
  const ir::ValueId r = Cast(ctx, Div(ctx, sc.r, denominator, "r_f64"), t, "r");
  for (int i = 0; i < n; ++i) {
    const std::string s = fmt::format("t{}", i);
    const ir::ValueId x = ctx.input(2 + i), g = ctx.input(2 + n + i), h = ctx.input(2 + 2 * n + i);
    const ir::ValueId g_reg = Regularized(ctx, t, norm, x, g, s);
    const ir::ValueId h_new = Add(ctx, h, Mul(ctx, g_reg, g_reg, s + "_g2"), s + "_h_new");
    const ir::ValueId h_adaptive = Add(ctx, ctx.Emit1("Sqrt", {h_new}, {}, s + "_h_sqrt"),
                                       ScalarOf(ctx, t, epsilon, s + "_epsilon"), s + "_h_adaptive");
    const ir::ValueId step = Div(ctx, Mul(ctx, r, g_reg, s + "_r_g"), h_adaptive, s + "_step");
    ctx.SetOutput(i, Sub(ctx, x, step, s + "_x_new"));
    ctx.SetOutput(n + i, h_new);
  }
}
KILN_ONNX_IMPORTER(std::string(kDomain) + "Adagrad", ImportAdagrad);

// Adam(R, T, X..., G..., V..., H...) -> X_new..., V_new..., H_new...:
//   G_reg = norm_coefficient * X + G; V_new = alpha * V + (1 - alpha) * G_reg;
//   H_new = beta * H + (1 - beta) * (G_reg * G_reg); H_sqrt = Sqrt(H_new) + epsilon;
//   R_adjusted = T > 0 ? R * Sqrt(1 - beta^T) / (1 - alpha^T) : R;
//   X_new = (1 - norm_coefficient_post) * (X - R_adjusted * (V_new / H_sqrt)).
void ImportAdam(ImportContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 0.9f);
  const float beta = ctx.attr_float("beta", 0.999f);
  const float epsilon = ctx.attr_float("epsilon", 1e-6f);
  const float norm = ctx.attr_float("norm_coefficient", 0.0f);
  const float norm_post = ctx.attr_float("norm_coefficient_post", 0.0f);
  const int n = CheckOptimizerArity(ctx, 4, 3);
  if (ctx.validate_only()) return;
  const DType t = CheckOptimizerInputs(ctx);
  const Scalars sc = ReadScalars(ctx);
  const ir::ValueId one = ScalarOf(ctx, DType::kFloat64, 1, "one");
  auto power = [&](float base, const std::string& s) {
    return ctx.Emit1("Pow", {ScalarOf(ctx, DType::kFloat64, base, s + "_base"), sc.t}, {}, s + "_pow_t");
  };
  const ir::ValueId corrected = Div(
      ctx,
      Mul(ctx, sc.r, ctx.Emit1("Sqrt", {Sub(ctx, one, power(beta, "beta"), "beta_rest")}, {}, "beta_sqrt"), "r_beta"),
      Sub(ctx, one, power(alpha, "alpha"), "alpha_rest"), "r_corrected");
  const ir::ValueId r = Cast(ctx, ctx.Emit1("Select", {sc.positive, corrected, sc.r}, {}, "r_f64"), t, "r");
  for (int i = 0; i < n; ++i) {
    const std::string s = fmt::format("t{}", i);
    const ir::ValueId x = ctx.input(2 + i), g = ctx.input(2 + n + i), v = ctx.input(2 + 2 * n + i),
                      h = ctx.input(2 + 3 * n + i);
    const ir::ValueId g_reg = Regularized(ctx, t, norm, x, g, s);
    const ir::ValueId v_new =
        Add(ctx, Mul(ctx, ScalarOf(ctx, t, alpha, s + "_alpha"), v, s + "_v_kept"),
            Mul(ctx, ScalarOf(ctx, t, 1.0 - static_cast<double>(alpha), s + "_alpha_rest"), g_reg, s + "_v_added"),
            s + "_v_new");
    const ir::ValueId h_new = Add(ctx, Mul(ctx, ScalarOf(ctx, t, beta, s + "_beta"), h, s + "_h_kept"),
                                  Mul(ctx, ScalarOf(ctx, t, 1.0 - static_cast<double>(beta), s + "_beta_rest"),
                                      Mul(ctx, g_reg, g_reg, s + "_g2"), s + "_h_added"),
                                  s + "_h_new");
    const ir::ValueId h_sqrt = Add(ctx, ctx.Emit1("Sqrt", {h_new}, {}, s + "_h_root"),
                                   ScalarOf(ctx, t, epsilon, s + "_epsilon"), s + "_h_sqrt");
    ir::ValueId x_new = Sub(ctx, x, Mul(ctx, r, Div(ctx, v_new, h_sqrt, s + "_direction"), s + "_step"), s + "_x_new");
    if (norm_post != 0.0f)
      x_new = Mul(ctx, ScalarOf(ctx, t, 1.0 - static_cast<double>(norm_post), s + "_post"), x_new, s + "_x_final");
    ctx.SetOutput(i, x_new);
    ctx.SetOutput(n + i, v_new);
    ctx.SetOutput(2 * n + i, h_new);
  }
}
KILN_ONNX_IMPORTER(std::string(kDomain) + "Adam", ImportAdam);

// Momentum(R, T, X..., G..., V...) -> X_new..., V_new...:
//   G_reg = norm_coefficient * X + G; V_new = alpha * V + (T > 0 ? beta : 1) * G_reg;
//   standard: X_new = X - R * V_new; nesterov: X_new = X - R * (G_reg + alpha * V_new).
void ImportMomentum(ImportContext& ctx) {
  for (const char* required : {"alpha", "beta", "mode", "norm_coefficient"})
    if (!ctx.has_attr(required)) ctx.Invalid(fmt::format("attribute '{}' is required", required));
  const float alpha = ctx.attr_float("alpha");
  const float beta = ctx.attr_float("beta");
  const float norm = ctx.attr_float("norm_coefficient");
  const std::string mode = ctx.attr_string("mode");
  if (mode != "standard" && mode != "nesterov")
    ctx.Invalid(fmt::format("mode must be \"standard\" or \"nesterov\", got \"{}\"", mode));
  const int n = CheckOptimizerArity(ctx, 3, 2);
  if (ctx.validate_only()) return;
  const DType t = CheckOptimizerInputs(ctx);
  const Scalars sc = ReadScalars(ctx);
  const ir::ValueId r = Cast(ctx, sc.r, t, "r");
  const ir::ValueId beta_adjusted = ctx.Emit1(
      "Select", {sc.positive, ScalarOf(ctx, t, beta, "beta"), ScalarOf(ctx, t, 1, "one")}, {}, "beta_adjusted");
  for (int i = 0; i < n; ++i) {
    const std::string s = fmt::format("t{}", i);
    const ir::ValueId x = ctx.input(2 + i), g = ctx.input(2 + n + i), v = ctx.input(2 + 2 * n + i);
    const ir::ValueId g_reg = Regularized(ctx, t, norm, x, g, s);
    const ir::ValueId a = ScalarOf(ctx, t, alpha, s + "_alpha");
    const ir::ValueId v_new =
        Add(ctx, Mul(ctx, a, v, s + "_v_kept"), Mul(ctx, beta_adjusted, g_reg, s + "_v_added"), s + "_v_new");
    const ir::ValueId direction =
        mode == "standard" ? v_new : Add(ctx, g_reg, Mul(ctx, a, v_new, s + "_ahead"), s + "_nesterov");
    ctx.SetOutput(i, Sub(ctx, x, Mul(ctx, r, direction, s + "_step"), s + "_x_new"));
    ctx.SetOutput(n + i, v_new);
  }
}
KILN_ONNX_IMPORTER(std::string(kDomain) + "Momentum", ImportMomentum);

}  // namespace
}  // namespace kiln::onnxfe::nn
