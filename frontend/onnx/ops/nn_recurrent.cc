// ONNX importers of the recurrent ops RNN, GRU and LSTM (opset 7 on: 14 added `layout`, 22
// bfloat16). Each maps 1:1 onto the IR op of the same name (ir/ops/nn_recurrent.cc), which
// takes ONNX's tensors and layouts as they are; the importer resolves what ONNX leaves implicit
// (defaults, activation parameters, hidden_size) into explicit IR attributes. See
// docs/onnx/nn.md.
#include "ir/ops/nn_recurrent.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <optional>
#include <string>
#include <vector>

#include "frontend/onnx/ops/nn_common.h"

namespace kiln::onnxfe::nn {
namespace {

using ir::nn::ActivationInfo;
using ir::nn::RecurrentKind;

// The activation list (defaults filled in), in ONNX's spelling.
std::vector<const ActivationInfo*> ReadActivations(ImportContext& ctx, const RecurrentKind& kind, int64_t nd) {
  const size_t want = static_cast<size_t>(nd * kind.activations_per_direction());
  std::vector<std::string> names = ctx.attr_strings("activations");
  if (!ctx.has_attr("activations"))
    for (int64_t d = 0; d < nd; ++d) names.insert(names.end(), kind.activations.begin(), kind.activations.end());
  if (names.size() != want)
    ctx.Invalid(fmt::format("expected {} activations ({} per direction, {} direction(s)), got {}: [{}]", want,
                            kind.activations_per_direction(), nd, names.size(), fmt::join(names, ",")));
  std::vector<const ActivationInfo*> acts;
  for (const std::string& name : names) {
    // Runtimes match names without case (onnxruntime lowercases them); the spec lists one spelling.
    const ActivationInfo* info = ir::nn::FindActivation(name, /*ignore_case=*/true);
    if (!info)
      ctx.Invalid(
          fmt::format("unknown activation '{}' (expected Relu, Tanh, Sigmoid, Affine, LeakyRelu, "
                      "ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign or Softplus)",
                      name));
    acts.push_back(info);
  }
  return acts;
}

// One value per activation of `param` (activation_alpha or activation_beta). The spec says the
// values "are consumed in the order of activation functions": onnxruntime gives the k-th value
// to the k-th activation that takes the parameter, while onnx-mlir gives value i to activation
// i. Kiln takes the values where both readings agree and reports the node unsupported where
// they differ. A parameter that neither reading supplies takes the default of the ONNX operator
// of that name (onnxruntime: the same for LeakyRelu, HardSigmoid and Elu, 0 for the others).
std::vector<double> ResolveParam(ImportContext& ctx, const std::vector<const ActivationInfo*>& acts, bool alpha) {
  const char* param = alpha ? "activation_alpha" : "activation_beta";
  const std::vector<float> given = ctx.attr_floats(param);
  std::vector<double> out;
  size_t consumed = 0;
  for (size_t i = 0; i < acts.size(); ++i) {
    const ActivationInfo& a = *acts[i];
    if (!(alpha ? a.uses_alpha : a.uses_beta)) {
      out.push_back(0.0);  // unused by this activation
      continue;
    }
    const std::optional<float> positional = i < given.size() ? std::optional<float>(given[i]) : std::nullopt;
    const std::optional<float> in_turn = consumed < given.size() ? std::optional<float>(given[consumed]) : std::nullopt;
    ++consumed;
    if (positional != in_turn)
      ctx.Unsupported(
          fmt::format("{} [{}] is ambiguous for activation {} ({}): runtimes read it either by position or "
                      "consumed in turn by the activations that take it, and the two readings differ here",
                      param, fmt::join(given, ","), i, a.name));
    if (positional) {
      out.push_back(*positional);
    } else if (a.has_default) {
      out.push_back(alpha ? a.alpha : a.beta);
    } else {
      ctx.Unsupported(fmt::format("activation {} ({}) needs {}: ONNX defines no default for it", i, a.name, param));
    }
  }
  return out;
}

void ImportRecurrent(ImportContext& ctx) {
  const RecurrentKind& kind = *ir::nn::FindRecurrentKind(ctx.op());
  const int max_inputs = 3 + static_cast<int>(kind.optional_inputs.size());
  if (ctx.num_inputs() < 3 || ctx.num_inputs() > max_inputs)
    ctx.Invalid(fmt::format("expected 3 to {} inputs, got {}", max_inputs, ctx.num_inputs()));
  if (ctx.num_outputs() > kind.num_outputs)
    ctx.Invalid(fmt::format("expected at most {} outputs, got {}", kind.num_outputs, ctx.num_outputs()));
  for (int i = 0; i < 3; ++i)
    if (!ctx.has_input(i)) ctx.Invalid(fmt::format("input {} ({}) is required", i, i == 0 ? "X" : i == 1 ? "W" : "R"));

  // Dtypes (unknown in validate-only mode): T is float16/bfloat16/float/double, sequence_lens int32.
  const DType t = ctx.input_dtype(0);
  if (t != DType::kInvalid && !IsFloating(t))
    ctx.Invalid(fmt::format("X must be float16, bfloat16, float or double, got {}", DTypeName(t)));
  std::vector<std::string> optional;  // the optional inputs present, by name
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    const std::string name = i < 3 ? std::string(1, "XWR"[i]) : kind.optional_inputs[static_cast<size_t>(i - 3)];
    const DType want = name == "sequence_lens" ? DType::kInt32 : t;
    const DType got = ctx.input_dtype(i);
    if (t != DType::kInvalid && got != DType::kInvalid && got != want)
      ctx.Invalid(fmt::format("{} must be {}, got {}", name, DTypeName(want), DTypeName(got)));
    if (i >= 3) optional.push_back(name);
  }

  const std::string direction = ctx.attr_string("direction", "forward");
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
    ctx.Invalid(fmt::format("direction '{}' is not one of forward, reverse, bidirectional", direction));
  const int64_t nd = direction == "bidirectional" ? 2 : 1;
  if (ctx.has_attr("layout") && ctx.opset() < 14)
    ctx.Invalid(
        fmt::format("attribute 'layout' does not exist before opset 14 (the model's opset is {})", ctx.opset()));
  const int64_t layout = ctx.attr_int("layout", 0);
  if (layout != 0 && layout != 1) ctx.Invalid(fmt::format("layout must be 0 or 1, got {}", layout));
  std::optional<float> clip;
  if (ctx.has_attr("clip")) {
    clip = ctx.attr_float("clip");
    if (!(*clip >= 0)) ctx.Invalid(fmt::format("clip must be a non-negative threshold, got {}", *clip));
  }
  const bool linear_before_reset = kind.op == "GRU" && ctx.attr_int("linear_before_reset", 0) != 0;
  const bool input_forget = kind.op == "LSTM" && ctx.attr_int("input_forget", 0) != 0;
  const std::vector<const ActivationInfo*> acts = ReadActivations(ctx, kind, nd);
  const std::vector<double> alpha = ResolveParam(ctx, acts, true), beta = ResolveParam(ctx, acts, false);

  // hidden_size: the attribute, else R's last dim (the ONNX reference reads it from R too).
  int64_t hidden = 0;
  if (ctx.has_attr("hidden_size")) {
    hidden = ctx.attr_int("hidden_size");
    if (hidden < 1 || hidden > ir::nn::kMaxHiddenSize)
      ctx.Invalid(fmt::format("hidden_size must be in [1, {}], got {}", ir::nn::kMaxHiddenSize, hidden));
  } else if (!ctx.validate_only()) {
    const ir::SymShape r = ctx.input_shape(2);
    if (!r.rank_known || r.rank() != 3 || !ir::IsStatic(r.dims[2]))
      ctx.Unsupported(fmt::format("without the hidden_size attribute, R's last dim must be static, got {}",
                                  ctx.graph().ShapeToString(r)));
    hidden = r.dims[2];
  }
  if (ctx.validate_only()) return;

  ir::AttrMap attrs = Attrs({{"direction", direction},
                             {"hidden_size", hidden},
                             {"layout", layout},
                             {"activation_alpha", alpha},
                             {"activation_beta", beta},
                             {"optional_inputs", optional}});
  std::vector<std::string> names;
  for (const ActivationInfo* a : acts) names.push_back(a->name);
  attrs.Set("activations", names);
  if (clip) attrs.Set("clip", static_cast<double>(*clip));
  if (kind.op == "GRU") attrs.Set("linear_before_reset", linear_before_reset);
  if (kind.op == "LSTM") attrs.Set("input_forget", input_forget);
  std::vector<ir::ValueId> inputs;
  for (int i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i)) inputs.push_back(ctx.input(i));
  const std::vector<ir::ValueId> outs = ctx.Emit(std::string(kind.op), inputs, std::move(attrs), kind.num_outputs);
  for (int i = 0; i < ctx.num_outputs(); ++i)
    if (ctx.has_output(i)) ctx.SetOutput(i, outs[static_cast<size_t>(i)]);
}
KILN_ONNX_IMPORTERS(ImportRecurrent, "RNN", "GRU", "LSTM");

}  // namespace
}  // namespace kiln::onnxfe::nn
