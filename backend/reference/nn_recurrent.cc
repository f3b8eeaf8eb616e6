// Reference kernels: RNN, GRU, LSTM (ONNX's equations, layouts and sequence_lens rules; see
// docs/ops/nn.md). One batch row and one direction at a time, in double: dot products and
// gate arithmetic run in double, and the carried state (h, and c for LSTM) is rounded to the
// tensor dtype after every step, since that is the value Y holds and the next step reads.
#include "ir/ops/nn_recurrent.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

#include "backend/reference/nn_common.h"

namespace kiln::reference::nn {
namespace {

using ir::nn::Activation;
using ir::nn::RecurrentKind;

struct Act {
  Activation kind;
  double alpha = 0, beta = 0;
  double operator()(double x) const { return ir::nn::Activate(kind, alpha, beta, x); }
};

// The node's attributes. Shape inference checked them when the graph was built; the kernel
// checks again what it relies on, since it must not trust a graph it did not build.
struct Spec {
  const RecurrentKind* kind = nullptr;
  int64_t nd = 1, H = 0;
  bool reverse_only = false, batch_major = false, linear_before_reset = false, input_forget = false;
  std::optional<double> clip;
  std::vector<Act> acts;            // nd * activations_per_direction, forward's first
  std::vector<std::string> inputs;  // the name of each input: X, W, R, then the optional ones present
  int Index(const std::string& name) const {
    const auto it = std::find(inputs.begin(), inputs.end(), name);
    return it == inputs.end() ? -1 : static_cast<int>(it - inputs.begin());
  }
};

Spec ReadSpec(const KernelContext& ctx) {
  const ir::AttrMap& a = ctx.attrs();
  Spec s;
  s.kind = ir::nn::FindRecurrentKind(ctx.node().op);
  const std::string dir = a.GetOr<std::string>("direction", "forward");
  s.nd = dir == "bidirectional" ? 2 : 1;
  s.reverse_only = dir == "reverse";
  if (!a.Has("hidden_size")) ctx.Fail("attribute 'hidden_size' is required");
  s.H = a.Int("hidden_size");
  s.batch_major = a.GetOr<int64_t>("layout", 0) == 1;
  s.linear_before_reset = a.GetOr<bool>("linear_before_reset", false);
  s.input_forget = a.GetOr<bool>("input_forget", false);
  if (a.Has("clip")) {
    s.clip = a.Float("clip");
    if (!(*s.clip >= 0)) ctx.Fail(fmt::format("clip must be a non-negative number, got {}", *s.clip));
  }
  std::vector<std::string> names = a.GetOr<std::vector<std::string>>("activations", {});
  if (names.empty())
    for (int64_t d = 0; d < s.nd; ++d)
      names.insert(names.end(), s.kind->activations.begin(), s.kind->activations.end());
  const auto alpha = a.GetOr<std::vector<double>>("activation_alpha", {});
  const auto beta = a.GetOr<std::vector<double>>("activation_beta", {});
  for (size_t i = 0; i < names.size(); ++i) {
    const ir::nn::ActivationInfo* info = ir::nn::FindActivation(names[i]);
    if (!info) ctx.Fail(fmt::format("unknown activation '{}'", names[i]));
    s.acts.push_back({info->kind, i < alpha.size() ? alpha[i] : info->alpha, i < beta.size() ? beta[i] : info->beta});
  }
  if (s.acts.size() != static_cast<size_t>(s.nd * s.kind->activations_per_direction()))
    ctx.Fail(fmt::format("expected {} activations, got {}", s.nd * s.kind->activations_per_direction(), s.acts.size()));
  if (s.H < 1 || s.H > ir::nn::kMaxHiddenSize)
    ctx.Fail(fmt::format("hidden_size must be in [1, {}], got {}", ir::nn::kMaxHiddenSize, s.H));
  // The inputs present: X, W, R, then `optional_inputs` (a subsequence of the kind's list).
  s.inputs = {"X", "W", "R"};
  const auto optional = a.GetOr<std::vector<std::string>>("optional_inputs", {});
  auto next = s.kind->optional_inputs.begin();
  for (size_t i = 0; i < optional.size(); ++i) {
    next = std::find(next, s.kind->optional_inputs.end(), optional[i]);
    if (next == s.kind->optional_inputs.end())
      ctx.Fail(fmt::format("optional_inputs [{}] must be a subsequence of [{}]", fmt::join(optional, ","),
                           fmt::join(s.kind->optional_inputs, ",")));
    ++next;
    s.inputs.push_back(optional[i]);
  }
  if (ctx.num_inputs() != 3 + static_cast<int>(optional.size()))
    ctx.Fail(fmt::format("expected {} inputs (X, W, R and optional_inputs [{}]), got {}", 3 + optional.size(),
                         fmt::join(optional, ","), ctx.num_inputs()));
  if (ctx.num_outputs() != s.kind->num_outputs)
    ctx.Fail(fmt::format("expected {} outputs, got {}", s.kind->num_outputs, ctx.num_outputs()));
  return s;
}

// Output i, allocated before any loop runs: the allocation checks its size (overflow, memory),
// and a refusal names the node.
Tensor& Allocate(KernelContext& ctx, int i, DType t, const Shape& shape) {
  try {
    return ctx.AllocateOutput(i, t, shape);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("node '{}' ({}): output {}: {}", ctx.node().name, ctx.node().op, i, e.what()));
  }
}

// One direction's weights: W, R and (when present) the biases and peepholes, each starting at
// this direction's block.
struct Weights {
  const double *W, *R, *Wb, *Rb, *P;  // Wb, Rb, P: nullptr when absent (zero)
  size_t H, I;
  // Row r of W times x plus Wb[r]; row r of R times h plus Rb[r].
  double Input(size_t r, const double* x) const {
    double acc = Wb ? Wb[r] : 0.0;
    for (size_t k = 0; k < I; ++k) acc += W[r * I + k] * x[k];
    return acc;
  }
  double Recurrent(size_t r, const double* h) const {
    double acc = Rb ? Rb[r] : 0.0;
    for (size_t k = 0; k < H; ++k) acc += R[r * H + k] * h[k];
    return acc;
  }
  double Gate(size_t r, const double* x, const double* h) const { return Input(r, x) + Recurrent(r, h); }
};

// One time step of one batch row: h (and c) updated in place, rounded by `round`.
void Step(const Spec& s, const Weights& w, const Act* f, const double* x, std::vector<double>& h,
          std::vector<double>& c, double (*round)(double)) {
  const size_t H = w.H;
  auto clip = [&](double v) { return s.clip ? std::clamp(v, -*s.clip, *s.clip) : v; };
  std::vector<double> next(H);
  const std::string_view op = s.kind->op;
  if (op == "RNN") {
    // Ht = f(Xt*(Wi^T) + Ht-1*(Ri^T) + Wbi + Rbi)
    for (size_t j = 0; j < H; ++j) next[j] = f[0](clip(w.Gate(j, x, h.data())));
  } else if (op == "GRU") {
    // Rows z, r, h: zt = f(..z), rt = f(..r), then
    //   ht = g(Xt*(Wh^T) + (rt (.) Ht-1)*(Rh^T) + Rbh + Wbh)          (linear_before_reset = 0)
    //   ht = g(Xt*(Wh^T) + (rt (.) (Ht-1*(Rh^T) + Rbh)) + Wbh)        (linear_before_reset = 1)
    //   Ht = (1 - zt) (.) ht + zt (.) Ht-1
    std::vector<double> z(H), r(H), rh(H);
    for (size_t j = 0; j < H; ++j) {
      z[j] = f[0](clip(w.Gate(j, x, h.data())));
      r[j] = f[0](clip(w.Gate(H + j, x, h.data())));
      rh[j] = r[j] * h[j];
    }
    for (size_t j = 0; j < H; ++j) {
      const size_t row = 2 * H + j;
      const double pre = s.linear_before_reset ? w.Input(row, x) + r[j] * w.Recurrent(row, h.data())
                                               : w.Input(row, x) + w.Recurrent(row, rh.data());
      next[j] = (1 - z[j]) * f[1](clip(pre)) + z[j] * h[j];
    }
  } else {
    // Rows i, o, f, c; peepholes P: i, o, f.
    //   it = f(.. + Pi (.) Ct-1), ft = f(.. + Pf (.) Ct-1) (1 - it with input_forget), ct = g(..),
    //   Ct = ft (.) Ct-1 + it (.) ct, ot = f(.. + Po (.) Ct), Ht = ot (.) h(Ct)
    auto peep = [&](size_t gate, size_t j, const std::vector<double>& cell) {
      return w.P ? w.P[gate * H + j] * cell[j] : 0.0;
    };
    std::vector<double> cell(H);
    for (size_t j = 0; j < H; ++j) {
      const double i = f[0](clip(w.Gate(j, x, h.data()) + peep(0, j, c)));
      const double fg = s.input_forget ? 1 - i : f[0](clip(w.Gate(2 * H + j, x, h.data()) + peep(2, j, c)));
      const double cc = f[1](clip(w.Gate(3 * H + j, x, h.data())));
      cell[j] = round(fg * c[j] + i * cc);
    }
    for (size_t j = 0; j < H; ++j) {
      const double o = f[0](clip(w.Gate(H + j, x, h.data()) + peep(1, j, cell)));
      next[j] = o * f[2](cell[j]);
    }
    c = std::move(cell);
  }
  for (double& v : next) v = round(v);
  h = std::move(next);
}

template <typename T>
double RoundTo(double v) {
  return ToDouble(FromDouble<T>(v));
}

// Writes `values` into t's elements [at, at + size).
template <typename T>
void StoreAt(Tensor& t, int64_t at, const std::vector<double>& values) {
  T* p = t.data<T>() + at;
  for (size_t i = 0; i < values.size(); ++i) p[i] = FromDouble<T>(values[i]);
}

void RecurrentKernel(KernelContext& ctx) {
  const Spec s = ReadSpec(ctx);
  const RecurrentKind& kind = *s.kind;
  const std::string op(kind.op);
  const int64_t H = s.H, G = kind.gates, nd = s.nd;
  const Tensor& X = ctx.input(0);
  const DType t = X.dtype();
  if (!IsFloating(t)) ctx.Fail(fmt::format("X must be a floating type, got {}", DTypeName(t)));
  if (X.rank() != 3) ctx.Fail(fmt::format("expected X of rank 3, got {}", ShapeStr(X.shape())));
  const int64_t seq = X.dim(s.batch_major ? 1 : 0), batch = X.dim(s.batch_major ? 0 : 1), I = X.dim(2);
  const Shape state_shape = s.batch_major ? Shape{batch, nd, H} : Shape{nd, batch, H};
  const std::map<std::string, Shape> want = {
      {"W", {nd, G * H, I}},      {"R", {nd, G * H, H}},      {"B", {nd, 2 * G * H}},    {"P", {nd, 3 * H}},
      {"sequence_lens", {batch}}, {"initial_h", state_shape}, {"initial_c", state_shape}};
  std::map<std::string, std::vector<double>> v;  // every present float input, loaded as double
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    const std::string& name = s.inputs[i];
    const Tensor& in = ctx.input(static_cast<int>(i));
    const DType dt = name == "sequence_lens" ? DType::kInt32 : t;
    if (in.dtype() != dt) ctx.Fail(fmt::format("{} must be {}, got {}", name, DTypeName(dt), DTypeName(in.dtype())));
    if (name != "X" && in.shape() != want.at(name))
      ctx.Fail(fmt::format("expected {} of shape {} (X {}, hidden_size {}, {} direction(s), layout {}), got {}", name,
                           ShapeStr(want.at(name)), ShapeStr(X.shape()), H, nd, s.batch_major ? 1 : 0,
                           ShapeStr(in.shape())));
    if (name != "sequence_lens") v[name] = LoadAs<double>(in, op);
  }
  const Shape y_shape = s.batch_major ? Shape{batch, seq, nd, H} : Shape{seq, nd, batch, H};
  Tensor& y = Allocate(ctx, 0, t, y_shape);
  Tensor& yh = Allocate(ctx, 1, t, state_shape);
  Tensor* yc = kind.num_outputs == 3 ? &Allocate(ctx, 2, t, state_shape) : nullptr;
  std::vector<int64_t> lens(static_cast<size_t>(batch), seq);
  if (const int i = s.Index("sequence_lens"); i >= 0) {
    const int32_t* p = ctx.input(i).data<int32_t>();
    for (int64_t b = 0; b < batch; ++b) {
      if (p[b] < 0 || p[b] > seq)
        ctx.Fail(fmt::format("sequence_lens[{}] = {} is outside [0, seq_length = {}]", b, p[b], seq));
      lens[static_cast<size_t>(b)] = p[b];
    }
  }

  // Element offsets of (time, batch) in X, (time, direction, batch) in Y, (direction, batch) in the states.
  auto x_at = [&](int64_t step, int64_t b) { return (s.batch_major ? b * seq + step : step * batch + b) * I; };
  auto y_at = [&](int64_t step, int64_t d, int64_t b) {
    return (s.batch_major ? (b * seq + step) * nd + d : (step * nd + d) * batch + b) * H;
  };
  auto state_at = [&](int64_t d, int64_t b) { return (s.batch_major ? b * nd + d : d * batch + b) * H; };
  auto opt = [&](const char* name, int64_t offset) { return v.count(name) ? v.at(name).data() + offset : nullptr; };
  double (*round)(double) = nullptr;
  void (*store)(Tensor&, int64_t, const std::vector<double>&) = nullptr;
  DispatchFloat(t, op, [&]<typename T>() {
    round = &RoundTo<T>;
    store = &StoreAt<T>;
  });

  const size_t h_size = static_cast<size_t>(H);
  for (int64_t d = 0; d < nd; ++d) {
    const bool reverse = s.reverse_only || d == 1;
    const Weights w{v.at("W").data() + d * G * H * I,
                    v.at("R").data() + d * G * H * H,
                    opt("B", d * 2 * G * H),
                    opt("B", d * 2 * G * H + G * H),
                    opt("P", d * 3 * H),
                    h_size,
                    static_cast<size_t>(I)};
    const Act* f = s.acts.data() + d * kind.activations_per_direction();
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<double> h(h_size), c(h_size);
      if (const double* h0 = opt("initial_h", state_at(d, b))) h.assign(h0, h0 + H);
      if (const double* c0 = opt("initial_c", state_at(d, b))) c.assign(c0, c0 + H);
      // Steps past the row's length stay zero in Y; the reverse direction starts at the row's
      // last valid step. Y_h / Y_c: the state after the last step run (the initial one for length 0).
      const int64_t len = lens[static_cast<size_t>(b)];
      for (int64_t k = 0; k < len; ++k) {
        const int64_t step = reverse ? len - 1 - k : k;
        Step(s, w, f, v.at("X").data() + x_at(step, b), h, c, round);
        store(y, y_at(step, d, b), h);
      }
      store(yh, state_at(d, b), h);
      if (yc) store(*yc, state_at(d, b), c);
    }
  }
}
KILN_REFERENCE_KERNEL("RNN", RecurrentKernel);
KILN_REFERENCE_KERNEL("GRU", RecurrentKernel);
KILN_REFERENCE_KERNEL("LSTM", RecurrentKernel);

}  // namespace
}  // namespace kiln::reference::nn
