// Recurrent IR ops: RNN, GRU, LSTM (one layer, ONNX's semantics and tensor layouts), and the
// kind / activation tables of ir/ops/nn_recurrent.h. See docs/ops/nn.md.
#include "ir/ops/nn_recurrent.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "ir/op_schema.h"

namespace kiln::ir {

void RegisterNnRecurrentOps(OpRegistry& registry);

namespace nn {

const RecurrentKind* FindRecurrentKind(std::string_view op) {
  static const RecurrentKind kinds[] = {
      {"RNN", 1, 2, {"Tanh"}, {"B", "sequence_lens", "initial_h"}},
      {"GRU", 3, 2, {"Sigmoid", "Tanh"}, {"B", "sequence_lens", "initial_h"}},
      {"LSTM", 4, 3, {"Sigmoid", "Tanh", "Tanh"}, {"B", "sequence_lens", "initial_h", "initial_c", "P"}},
  };
  for (const RecurrentKind& k : kinds)
    if (k.op == op) return &k;
  return nullptr;
}

const ActivationInfo* FindActivation(std::string_view name, bool ignore_case) {
  // Defaults are those of the ONNX operators of the same name. Affine and ScaledTanh were
  // experimental operators, removed from ONNX, and the RNN spec gives them none: the importer
  // refuses them without values; the IR's 1 / 0 and 1 / 1 only serve IR graphs built by hand.
  static const ActivationInfo table[] = {
      {Activation::kRelu, "Relu", false, false, true, 0, 0},
      {Activation::kTanh, "Tanh", false, false, true, 0, 0},
      {Activation::kSigmoid, "Sigmoid", false, false, true, 0, 0},
      {Activation::kAffine, "Affine", true, true, false, 1, 0},
      {Activation::kLeakyRelu, "LeakyRelu", true, false, true, 0.01, 0},
      {Activation::kThresholdedRelu, "ThresholdedRelu", true, false, true, 1.0, 0},
      {Activation::kScaledTanh, "ScaledTanh", true, true, false, 1, 1},
      {Activation::kHardSigmoid, "HardSigmoid", true, true, true, 0.2, 0.5},
      {Activation::kElu, "Elu", true, false, true, 1.0, 0},
      {Activation::kSoftsign, "Softsign", false, false, true, 0, 0},
      {Activation::kSoftplus, "Softplus", false, false, true, 0, 0},
  };
  auto same = [&](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      const unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
      if (ignore_case ? std::tolower(x) != std::tolower(y) : x != y) return false;
    }
    return true;
  };
  for (const ActivationInfo& a : table)
    if (same(a.name, name)) return &a;
  return nullptr;
}

// The formulas of the ONNX RNN/GRU/LSTM specification. Comparisons are written so that NaN
// propagates (a NaN input gives a NaN output).
double Activate(Activation kind, double alpha, double beta, double x) {
  switch (kind) {
    case Activation::kRelu:
      return x < 0 ? 0.0 : x;
    case Activation::kTanh:
      return std::tanh(x);
    case Activation::kSigmoid:
      return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
    case Activation::kAffine:
      return alpha * x + beta;
    case Activation::kLeakyRelu:
      return x < 0 ? alpha * x : x;
    case Activation::kThresholdedRelu:
      return x < alpha ? 0.0 : x;  // the spec's "x if x >= alpha else 0"
    case Activation::kScaledTanh:
      return alpha * std::tanh(beta * x);
    case Activation::kHardSigmoid: {
      const double v = alpha * x + beta;
      return v < 0 ? 0.0 : (v > 1 ? 1.0 : v);
    }
    case Activation::kElu:
      return x < 0 ? alpha * (std::exp(x) - 1) : x;
    case Activation::kSoftsign:
      return x / (1 + std::abs(x));
    case Activation::kSoftplus:
      return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));  // no overflow
  }
  return x;
}

}  // namespace nn

namespace {

using nn::RecurrentKind;

std::string S(InferContext& ctx, const std::vector<Dim>& dims) { return ctx.graph().ShapeToString(SymShape::Of(dims)); }

// `a` and `b` name the same dim: a static value wins over a symbol, a symbol over unknown.
Dim Unify(InferContext& ctx, Dim a, Dim b, const std::string& what) {
  if (IsStatic(a) && IsStatic(b) && a != b) ctx.Fail(what);
  if (IsStatic(a)) return a;
  if (IsStatic(b)) return b;
  return a != kUnknownDim ? a : b;
}

// Checks the attributes (the IR's contract: the importer writes them complete) and returns the
// number of directions.
int64_t CheckAttrs(InferContext& ctx, const RecurrentKind& kind) {
  const AttrMap& a = ctx.attrs();
  const std::string dir = a.GetOr<std::string>("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional")
    ctx.Fail(fmt::format("direction '{}' is not one of forward, reverse, bidirectional", dir));
  const int64_t nd = dir == "bidirectional" ? 2 : 1;
  if (!a.Has("hidden_size")) ctx.Fail("attribute 'hidden_size' is required");
  const int64_t hidden = a.Int("hidden_size");
  if (hidden < 1 || hidden > nn::kMaxHiddenSize)
    ctx.Fail(fmt::format("hidden_size must be in [1, {}], got {}", nn::kMaxHiddenSize, hidden));
  const int64_t layout = a.GetOr<int64_t>("layout", 0);
  if (layout != 0 && layout != 1) ctx.Fail(fmt::format("layout must be 0 or 1, got {}", layout));
  const size_t num_acts = static_cast<size_t>(nd * kind.activations_per_direction());
  const auto acts = a.GetOr<std::vector<std::string>>("activations", {});
  if (a.Has("activations") && acts.size() != num_acts)
    ctx.Fail(fmt::format("expected {} activations ({} per direction), got {}", num_acts,
                         kind.activations_per_direction(), acts.size()));
  for (const std::string& name : acts)
    if (!nn::FindActivation(name)) ctx.Fail(fmt::format("unknown activation '{}'", name));
  for (const char* param : {"activation_alpha", "activation_beta"}) {
    const auto values = a.GetOr<std::vector<double>>(param, {});
    if (a.Has(param) && values.size() != num_acts)
      ctx.Fail(fmt::format("expected {} {} values (one per activation), got {}", num_acts, param, values.size()));
  }
  if (a.Has("clip") && !(a.Float("clip") >= 0))
    ctx.Fail(fmt::format("clip must be a non-negative number, got {}", a.Float("clip")));
  const auto optional = a.GetOr<std::vector<std::string>>("optional_inputs", {});
  size_t next = 0;  // the present optional inputs keep ONNX's order
  for (const std::string& name : optional) {
    auto it =
        std::find(kind.optional_inputs.begin() + static_cast<std::ptrdiff_t>(next), kind.optional_inputs.end(), name);
    if (it == kind.optional_inputs.end())
      ctx.Fail(fmt::format("optional_inputs [{}] must be a subsequence of [{}]", fmt::join(optional, ","),
                           fmt::join(kind.optional_inputs, ",")));
    next = static_cast<size_t>(it - kind.optional_inputs.begin()) + 1;
  }
  if (ctx.num_inputs() != 3 + static_cast<int>(optional.size()))
    ctx.Fail(fmt::format("expected {} inputs (X, W, R and optional_inputs [{}]), got {}", 3 + optional.size(),
                         fmt::join(optional, ","), ctx.num_inputs()));
  if (ctx.num_outputs() != kind.num_outputs)
    ctx.Fail(fmt::format("expected {} outputs, got {}", kind.num_outputs, ctx.num_outputs()));
  return nd;
}

// RNN / GRU / LSTM: inputs X, W, R, then the optional inputs the attribute `optional_inputs`
// names; outputs Y, Y_h (, Y_c). Layouts as in ONNX (layout 0: time major, 1: batch major).
void InferRecurrent(InferContext& ctx) {
  const RecurrentKind& kind = *nn::FindRecurrentKind(ctx.node().op);
  const int64_t nd = CheckAttrs(ctx, kind);
  const AttrMap& a = ctx.attrs();
  const int64_t H = a.Int("hidden_size"), G = kind.gates;
  const bool batch_major = a.GetOr<int64_t>("layout", 0) == 1;
  const auto optional = a.GetOr<std::vector<std::string>>("optional_inputs", {});

  const DType t = ctx.input_dtype(0);
  if (!IsFloating(t)) ctx.Fail(fmt::format("X must be a floating type, got {}", DTypeName(t)));
  std::vector<std::pair<std::string, int>> inputs = {{"X", 0}, {"W", 1}, {"R", 2}};
  for (size_t i = 0; i < optional.size(); ++i) inputs.push_back({optional[i], 3 + static_cast<int>(i)});
  for (const auto& [name, i] : inputs) {
    const DType want = name == "sequence_lens" ? DType::kInt32 : t;
    if (ctx.input_dtype(i) != want)
      ctx.Fail(fmt::format("{} must be {}, got {}", name, DTypeName(want), DTypeName(ctx.input_dtype(i))));
  }

  // Dims shared between inputs: seq_length, batch_size, input_size (from X, then the others).
  Dim seq = kUnknownDim, batch = kUnknownDim, input = kUnknownDim;
  const SymShape& x = ctx.input_shape(0);
  if (x.rank_known) {
    if (x.rank() != 3) ctx.Fail(fmt::format("expected X of rank 3, got {}", ctx.graph().ShapeToString(x)));
    seq = x.dims[batch_major ? 1 : 0];
    batch = x.dims[batch_major ? 0 : 1];
    input = x.dims[2];
  }
  for (const auto& [name, i] : inputs) {
    if (i == 0) continue;
    const SymShape& s = ctx.input_shape(i);
    // The expected shape, by reference so that dims unknown so far are learnt.
    Dim nd_dim = nd, gh = G * H, h = H, two_gh = 2 * G * H, three_h = 3 * H;
    std::vector<Dim*> dims = {&nd_dim, &batch, &h};
    const char* layout_text = "[num_directions, batch_size, hidden_size]";
    if (name == "W") {
      dims = {&nd_dim, &gh, &input};
      layout_text = "[num_directions, gates*hidden_size, input_size]";
    } else if (name == "R") {
      dims = {&nd_dim, &gh, &h};
      layout_text = "[num_directions, gates*hidden_size, hidden_size]";
    } else if (name == "B") {
      dims = {&nd_dim, &two_gh};
      layout_text = "[num_directions, 2*gates*hidden_size]";
    } else if (name == "P") {
      dims = {&nd_dim, &three_h};
      layout_text = "[num_directions, 3*hidden_size]";
    } else if (name == "sequence_lens") {
      dims = {&batch};
      layout_text = "[batch_size]";
    } else if (batch_major) {  // initial_h, initial_c
      dims = {&batch, &nd_dim, &h};
      layout_text = "[batch_size, num_directions, hidden_size]";
    }
    if (!s.rank_known) continue;
    std::vector<Dim> want;
    for (Dim* d : dims) want.push_back(*d);
    const std::string what = fmt::format("expected {} of shape {} {} (hidden_size {}, {} direction(s)), got {}", name,
                                         S(ctx, want), layout_text, H, nd, ctx.graph().ShapeToString(s));
    if (s.rank() != static_cast<int>(dims.size())) ctx.Fail(what);
    for (size_t k = 0; k < dims.size(); ++k) *dims[k] = Unify(ctx, *dims[k], s.dims[k], what);
  }

  const SymShape y = batch_major ? SymShape::Of({batch, seq, nd, H}) : SymShape::Of({seq, nd, batch, H});
  const SymShape state = batch_major ? SymShape::Of({batch, nd, H}) : SymShape::Of({nd, batch, H});
  ctx.SetOutput(0, t, y);
  for (int i = 1; i < kind.num_outputs; ++i) ctx.SetOutput(i, t, state);
}

}  // namespace

void RegisterNnRecurrentOps(OpRegistry& registry) {
  registry.Add({"RNN", 3, 6, InferRecurrent});
  registry.Add({"GRU", 3, 6, InferRecurrent});
  registry.Add({"LSTM", 3, 8, InferRecurrent});
}

}  // namespace kiln::ir
