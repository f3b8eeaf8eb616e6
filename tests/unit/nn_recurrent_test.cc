// RNN, GRU and LSTM: reference kernels against values computed by hand from ONNX's equations
// (one hidden unit, so each step is a few scalar formulas), properties that tie the layouts,
// directions and sequence lengths together, the activation formulas, shape inference and the
// error text for bad inputs. onnxruntime comparisons on random models: docs/ops/nn.md.
#include "ir/ops/nn_recurrent.h"

#include <cmath>

#include "backend/reference/dispatch.h"
#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using namespace nntest;
using testutil::ExpectErrorMessage;

double Sig(double x) { return 1 / (1 + std::exp(-x)); }

ir::AttrMap RecAttrs(const std::string& direction, int64_t hidden, std::vector<std::string> optional,
                     std::initializer_list<std::pair<std::string, ir::AttrValue>> more = {}) {
  ir::AttrMap a = Attrs({{"direction", direction}, {"hidden_size", hidden}, {"optional_inputs", optional}});
  for (const auto& [k, v] : more) a.Set(k, v);
  return a;
}

int Outputs(const std::string& op) { return op == "LSTM" ? 3 : 2; }

std::vector<Tensor> RunRec(const std::string& op, const std::vector<Tensor>& inputs, const ir::AttrMap& attrs) {
  return RunOp(op, inputs, attrs, Outputs(op));
}

// [d0, d1, rest] -> [d1, d0, rest]: the layout 0 <-> 1 transposition of X, Y, and the states.
Tensor SwapFirstTwo(const Tensor& t) {
  Shape s = t.shape();
  std::swap(s[0], s[1]);
  Tensor out(t.dtype(), s);
  const int64_t a = t.dim(0), b = t.dim(1), rest = t.num_elements() / std::max<int64_t>(1, a * b);
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t k = 0; k < rest; ++k)
        out.data<float>()[(j * a + i) * rest + k] = t.data<float>()[(i * b + j) * rest + k];
  return out;
}

// Y [seq, nd, batch, H] -> [batch, seq, nd, H]
Tensor YToBatchMajor(const Tensor& y) {
  const int64_t seq = y.dim(0), nd = y.dim(1), batch = y.dim(2), H = y.dim(3);
  Tensor out(y.dtype(), {batch, seq, nd, H});
  for (int64_t t = 0; t < seq; ++t)
    for (int64_t d = 0; d < nd; ++d)
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < H; ++h)
          out.data<float>()[((b * seq + t) * nd + d) * H + h] = y.data<float>()[((t * nd + d) * batch + b) * H + h];
  return out;
}

void ExpectSame(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(ShapeToString(got.shape()), ShapeToString(want.shape())) << what;
  EXPECT_EQ(ToDoubles(got), ToDoubles(want)) << what;
}

TEST(NnRecurrent, RnnForwardByHand) {
  const Tensor x = F32({3, 1, 1}, {0.5f, -1.f, 2.f}), w = F32({1, 1, 1}, {0.8f}), r = F32({1, 1, 1}, {-0.6f});
  const Tensor b = F32({1, 2}, {0.1f, 0.2f});
  auto out = RunRec("RNN", {x, w, r, b}, RecAttrs("forward", 1, {"B"}));
  const double wb = 0.1f + double{0.2f}, wv = 0.8f, rv = -0.6f;
  const double h1 = std::tanh(wv * 0.5 + wb), h2 = std::tanh(wv * -1 + rv * h1 + wb),
               h3 = std::tanh(wv * 2 + rv * h2 + wb);
  ExpectNear(out[0], {h1, h2, h3}, 1e-6);
  ExpectNear(out[1], {h3}, 1e-6);
}

// Reverse direction with sequence_lens [3, 2, 0] and an initial state: each row starts at its
// own last valid step, Y is zero past the row's length, Y_h is the state after step 0 (the
// initial state for a row of length 0).
TEST(NnRecurrent, RnnReverseWithSequenceLens) {
  const Tensor x = F32({3, 3, 1}, {1, 2, 3, -1, -2, -3, 0.5f, 0.25f, 4});  // x[t][b]
  const Tensor w = F32({1, 1, 1}, {0.7f}), r = F32({1, 1, 1}, {0.4f});
  const Tensor b = F32({1, 2}, {0, 0}), lens = I32({3}, {3, 2, 0}), h0 = F32({1, 3, 1}, {0.3f, -0.2f, 0.9f});
  auto out = RunRec("RNN", {x, w, r, b, lens, h0}, RecAttrs("reverse", 1, {"B", "sequence_lens", "initial_h"}));
  const double wv = 0.7f, rv = 0.4f;
  auto step = [&](double xv, double h) { return std::tanh(wv * xv + rv * h); };
  const double a2 = step(0.5f, 0.3f), a1 = step(-1, a2), a0 = step(1, a1);  // row 0: t = 2, 1, 0
  const double b1 = step(-2, -0.2f), b0 = step(2, b1);                      // row 1: t = 1, 0
  // Y [t][d][b]
  ExpectNear(out[0], {a0, b0, 0, a1, b1, 0, a2, 0, 0}, 1e-6);
  ExpectNear(out[1], {a0, b0, 0.9f}, 1e-6);
}

// Bidirectional with non-default activations and their parameters: forward LeakyRelu (alpha
// 0.5), reverse HardSigmoid (alpha 0.2, beta 0.5).
TEST(NnRecurrent, RnnBidirectionalActivations) {
  const Tensor x = F32({2, 1, 1}, {1, -2});
  const Tensor w = F32({2, 1, 1}, {-1, 1}), r = F32({2, 1, 1}, {0.5f, 2});
  auto out = RunRec("RNN", {x, w, r},
                    RecAttrs("bidirectional", 1, {},
                             {{"activations", std::vector<std::string>{"LeakyRelu", "HardSigmoid"}},
                              {"activation_alpha", std::vector<double>{0.5, 0.2}},
                              {"activation_beta", std::vector<double>{0, 0.5}}}));
  auto leaky = [](double v) { return v < 0 ? 0.5 * v : v; };
  auto hard = [](double v) { return std::clamp(0.2 * v + 0.5, 0.0, 1.0); };
  const double f0 = leaky(-1 * 1), f1 = leaky(-1 * -2 + 0.5 * f0);
  const double r1 = hard(1 * -2), r0 = hard(1 * 1 + 2 * r1);
  ExpectNear(out[0], {f0, r0, f1, r1}, 1e-6);  // Y [t][d][b=0]
  ExpectNear(out[1], {f1, r0}, 1e-6);
}

// One hidden unit, two steps from an initial state, both linear_before_reset values (they only
// differ when Rbh and h are non-zero).
TEST(NnRecurrent, GruByHand) {
  const Tensor x = F32({2, 1, 1}, {0.5f, -1.5f});
  const Tensor w = F32({1, 3, 1}, {0.3f, -0.4f, 0.9f}), r = F32({1, 3, 1}, {0.2f, 0.6f, -0.7f});
  const Tensor b = F32({1, 6}, {0.1f, -0.1f, 0.2f, 0.05f, 0.3f, -0.25f}), h0 = F32({1, 1, 1}, {0.4f});
  const double wz = 0.3f, wr = -0.4f, wh = 0.9f, rz = 0.2f, rr = 0.6f, rh = -0.7f;
  const double wbz = 0.1f, wbr = -0.1f, wbh = 0.2f, rbz = 0.05f, rbr = 0.3f, rbh = -0.25f;
  for (bool lbr : {false, true}) {
    auto step = [&](double xv, double h) {
      const double z = Sig(wz * xv + rz * h + wbz + rbz), rg = Sig(wr * xv + rr * h + wbr + rbr);
      const double hh =
          lbr ? std::tanh(wh * xv + rg * (rh * h + rbh) + wbh) : std::tanh(wh * xv + rh * (rg * h) + rbh + wbh);
      return (1 - z) * hh + z * h;
    };
    const double h1 = step(0.5f, 0.4f), h2 = step(-1.5f, static_cast<float>(h1));
    auto out =
        RunRec("GRU", {x, w, r, b, h0}, RecAttrs("forward", 1, {"B", "initial_h"}, {{"linear_before_reset", lbr}}));
    ExpectNear(out[0], {h1, h2}, 1e-6);
    ExpectNear(out[1], {h2}, 1e-6);
  }
}

// One hidden unit with peepholes, an initial cell state, clip (small enough to bind) and
// input_forget; Y_c is the last cell state.
TEST(NnRecurrent, LstmByHand) {
  const Tensor x = F32({2, 1, 1}, {1.0f, -0.5f});
  const Tensor w = F32({1, 4, 1}, {0.5f, -0.3f, 0.8f, 1.2f}), r = F32({1, 4, 1}, {0.1f, 0.2f, -0.4f, 0.6f});  // i o f c
  const Tensor b = F32({1, 8}, {0.1f, 0, 0.2f, 0, 0, 0.1f, 0, -0.3f});
  const Tensor p = F32({1, 3}, {0.3f, -0.6f, 0.9f});  // i o f
  const Tensor h0 = F32({1, 1, 1}, {0.2f}), c0 = F32({1, 1, 1}, {-0.7f});
  const double W[4] = {0.5f, -0.3f, 0.8f, 1.2f}, R[4] = {0.1f, 0.2f, -0.4f, 0.6f};
  const double Bs[4] = {0.1f, 0.1f, 0.2f, -0.3f}, P[3] = {0.3f, -0.6f, 0.9f};
  for (bool input_forget : {false, true})
    for (double clip : {0.0, 0.6}) {
      auto cl = [&](double v) { return clip > 0 ? std::clamp(v, -clip, clip) : v; };
      auto step = [&](double xv, double& h, double& c) {
        auto pre = [&](int g) { return W[g] * xv + R[g] * h + Bs[g]; };
        const double i = Sig(cl(pre(0) + P[0] * c));
        const double f = input_forget ? 1 - i : Sig(cl(pre(2) + P[2] * c));
        const double g = std::tanh(cl(pre(3)));
        c = static_cast<float>(f * c + i * g);
        const double o = Sig(cl(pre(1) + P[1] * c));
        h = static_cast<float>(o * std::tanh(c));
      };
      double h = 0.2f, c = -0.7f;
      step(1.0, h, c);
      const double h1 = h;
      step(-0.5, h, c);
      ir::AttrMap attrs =
          RecAttrs("forward", 1, {"B", "initial_h", "initial_c", "P"}, {{"input_forget", input_forget}});
      if (clip > 0) attrs.Set("clip", clip);
      auto out = RunRec("LSTM", {x, w, r, b, h0, c0, p}, attrs);
      ExpectNear(out[0], {h1, h}, 1e-6);
      ExpectNear(out[1], {h}, 1e-6);
      ExpectNear(out[2], {c}, 1e-6);
    }
}

TEST(NnRecurrent, ActivationFormulas) {
  using ir::nn::Activate;
  using A = ir::nn::Activation;
  EXPECT_EQ(Activate(A::kRelu, 0, 0, -1), 0);
  EXPECT_EQ(Activate(A::kRelu, 0, 0, 2), 2);
  EXPECT_DOUBLE_EQ(Activate(A::kTanh, 0, 0, 0.5), std::tanh(0.5));
  EXPECT_DOUBLE_EQ(Activate(A::kSigmoid, 0, 0, 1), 1 / (1 + std::exp(-1.0)));
  EXPECT_EQ(Activate(A::kSigmoid, 0, 0, -1000), 0);  // no NaN from exp overflow
  EXPECT_EQ(Activate(A::kAffine, 2, 3, 1), 5);
  EXPECT_EQ(Activate(A::kLeakyRelu, 0.1, 0, -2), -0.2);
  EXPECT_EQ(Activate(A::kLeakyRelu, 0.1, 0, 3), 3);
  EXPECT_EQ(Activate(A::kThresholdedRelu, 1, 0, 1), 1);  // x >= alpha
  EXPECT_EQ(Activate(A::kThresholdedRelu, 1, 0, 0.5), 0);
  EXPECT_DOUBLE_EQ(Activate(A::kScaledTanh, 2, 0.5, 1), 2 * std::tanh(0.5));
  EXPECT_DOUBLE_EQ(Activate(A::kHardSigmoid, 0.2, 0.5, 1), 0.7);
  EXPECT_EQ(Activate(A::kHardSigmoid, 0.2, 0.5, 10), 1);
  EXPECT_EQ(Activate(A::kHardSigmoid, 0.2, 0.5, -10), 0);
  EXPECT_DOUBLE_EQ(Activate(A::kElu, 1.5, 0, -1), 1.5 * (std::exp(-1.0) - 1));
  EXPECT_EQ(Activate(A::kElu, 1.5, 0, 2), 2);
  EXPECT_EQ(Activate(A::kSoftsign, 0, 0, 3), 0.75);
  EXPECT_DOUBLE_EQ(Activate(A::kSoftplus, 0, 0, 0), std::log(2.0));
  EXPECT_DOUBLE_EQ(Activate(A::kSoftplus, 0, 0, 1000), 1000);  // no overflow
  EXPECT_TRUE(std::isnan(Activate(A::kRelu, 0, 0, NAN)));
  // Defaults are the ONNX operators'; none for Affine and ScaledTanh.
  EXPECT_EQ(ir::nn::FindActivation("LeakyRelu")->alpha, 0.01);
  EXPECT_EQ(ir::nn::FindActivation("HardSigmoid")->beta, 0.5);
  EXPECT_FALSE(ir::nn::FindActivation("ScaledTanh")->has_default);
  EXPECT_EQ(ir::nn::FindActivation("tanh"), nullptr);
  EXPECT_NE(ir::nn::FindActivation("tanh", /*ignore_case=*/true), nullptr);
}

// layout 1 is layout 0 with the first two dims of X, Y and the states swapped.
TEST(NnRecurrent, BatchMajorLayoutIsATransposition) {
  const int64_t seq = 3, batch = 2, I = 3, H = 2;
  const Tensor x = RandF32({seq, batch, I}, 1), w = RandF32({2, 4 * H, I}, 2), r = RandF32({2, 4 * H, H}, 3);
  const Tensor b = RandF32({2, 8 * H}, 4), lens = I32({batch}, {3, 2}), h0 = RandF32({2, batch, H}, 5);
  const Tensor c0 = RandF32({2, batch, H}, 6), p = RandF32({2, 3 * H}, 7);
  const std::vector<std::string> all = {"B", "sequence_lens", "initial_h", "initial_c", "P"};
  auto t0 = RunRec("LSTM", {x, w, r, b, lens, h0, c0, p}, RecAttrs("bidirectional", H, all));
  auto t1 = RunRec("LSTM", {SwapFirstTwo(x), w, r, b, lens, SwapFirstTwo(h0), SwapFirstTwo(c0), p},
                   RecAttrs("bidirectional", H, all, {{"layout", int64_t{1}}}));
  ExpectSame(t1[0], YToBatchMajor(t0[0]), "Y");
  ExpectSame(t1[1], SwapFirstTwo(t0[1]), "Y_h");
  ExpectSame(t1[2], SwapFirstTwo(t0[2]), "Y_c");
}

// Direction 0 of a bidirectional op is the forward op, direction 1 the reverse op, each with
// its own weights and activations.
TEST(NnRecurrent, BidirectionalIsForwardAndReverse) {
  const int64_t seq = 4, batch = 2, I = 2, H = 3;
  const Tensor x = RandF32({seq, batch, I}, 11), w = RandF32({2, 3 * H, I}, 12), r = RandF32({2, 3 * H, H}, 13);
  const Tensor b = RandF32({2, 6 * H}, 14), h0 = RandF32({2, batch, H}, 15), lens = I32({batch}, {4, 2});
  auto half = [](const Tensor& t, int64_t d) {
    Shape s = t.shape();
    s[0] = 1;
    const int64_t n = t.num_elements() / 2;
    return F32(s, std::vector<float>(t.data<float>() + d * n, t.data<float>() + (d + 1) * n));
  };
  const std::vector<std::string> acts = {"Sigmoid", "Tanh", "HardSigmoid", "Softsign"};
  const std::vector<double> alpha = {0, 0, 0.3, 0}, beta = {0, 0, 0.4, 0};
  auto attrs = [&](const std::string& dir, int64_t first_act) {
    const size_t n = dir == "bidirectional" ? 4 : 2, at = static_cast<size_t>(first_act);
    auto slice = [&](const auto& v) {
      return std::vector(v.begin() + static_cast<std::ptrdiff_t>(at), v.begin() + static_cast<std::ptrdiff_t>(at + n));
    };
    return RecAttrs(dir, H, {"B", "sequence_lens", "initial_h"},
                    {{"activations", slice(acts)},
                     {"activation_alpha", slice(alpha)},
                     {"activation_beta", slice(beta)},
                     {"linear_before_reset", true}});
  };
  auto both = RunRec("GRU", {x, w, r, b, lens, h0}, attrs("bidirectional", 0));
  auto fwd = RunRec("GRU", {x, half(w, 0), half(r, 0), half(b, 0), lens, half(h0, 0)}, attrs("forward", 0));
  auto rev = RunRec("GRU", {x, half(w, 1), half(r, 1), half(b, 1), lens, half(h0, 1)}, attrs("reverse", 2));
  for (int64_t t = 0; t < seq; ++t)
    for (int64_t d = 0; d < 2; ++d)
      for (int64_t i = 0; i < batch * H; ++i)
        EXPECT_EQ(both[0].data<float>()[(t * 2 + d) * batch * H + i],
                  (d ? rev : fwd)[0].data<float>()[t * batch * H + i]);
  for (int64_t i = 0; i < batch * H; ++i) {
    EXPECT_EQ(both[1].data<float>()[i], fwd[1].data<float>()[i]);
    EXPECT_EQ(both[1].data<float>()[batch * H + i], rev[1].data<float>()[i]);
  }
}

// A row of length n gives what a run over its first n steps alone gives; Y is zero after.
TEST(NnRecurrent, SequenceLensMatchTruncatedRuns) {
  const int64_t seq = 4, batch = 3, I = 2, H = 2;
  const Tensor x = RandF32({seq, batch, I}, 21), w = RandF32({2, 4 * H, I}, 22), r = RandF32({2, 4 * H, H}, 23);
  const std::vector<int32_t> lens = {4, 1, 3};
  auto all = RunRec("LSTM", {x, w, r, I32({batch}, lens)}, RecAttrs("bidirectional", H, {"sequence_lens"}));
  for (int64_t bi = 0; bi < batch; ++bi) {
    const int64_t n = lens[static_cast<size_t>(bi)];
    std::vector<float> xs;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t k = 0; k < I; ++k) xs.push_back(x.data<float>()[(t * batch + bi) * I + k]);
    auto one = RunRec("LSTM", {F32({n, 1, I}, xs), w, r}, RecAttrs("bidirectional", H, {}));
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t d = 0; d < 2; ++d)
        for (int64_t j = 0; j < H; ++j) {
          const float got = all[0].data<float>()[((t * 2 + d) * batch + bi) * H + j];
          EXPECT_EQ(got, t < n ? one[0].data<float>()[(t * 2 + d) * H + j] : 0.f)
              << "t " << t << " d " << d << " b " << bi;
        }
    for (int o = 1; o <= 2; ++o)
      for (int64_t d = 0; d < 2; ++d)
        for (int64_t j = 0; j < H; ++j)
          EXPECT_EQ(all[static_cast<size_t>(o)].data<float>()[(d * batch + bi) * H + j],
                    one[static_cast<size_t>(o)].data<float>()[d * H + j]);
  }
}

// float16, bfloat16 and double run in double and round to their own type.
TEST(NnRecurrent, EveryFloatDtype) {
  const Tensor x = RandF32({3, 2, 2}, 31), w = RandF32({1, 3, 2}, 32), r = RandF32({1, 3, 1}, 33);
  auto want = RunRec("GRU", {x, w, r}, RecAttrs("forward", 1, {}));
  for (DType t : {DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
    auto cast = [&](const Tensor& f) {
      Tensor out(t, f.shape());
      reference::DispatchFloat(t, "test", [&]<typename T>() {
        for (int64_t i = 0; i < f.num_elements(); ++i) out.data<T>()[i] = reference::FromDouble<T>(f.data<float>()[i]);
      });
      return out;
    };
    auto got = RunRec("GRU", {cast(x), cast(w), cast(r)}, RecAttrs("forward", 1, {}));
    EXPECT_EQ(got[0].dtype(), t);
    ExpectNear(got[0], ToDoubles(want[0]), t == DType::kFloat64 ? 1e-6 : 3e-2);
  }
}

TEST(NnRecurrent, ShapeInference) {
  ir::Graph g;
  const ir::Dim batch = g.NewSymbol("batch"), seq = g.NewSymbol("seq");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({batch, seq, 5}));
  const ir::ValueId w = g.AddInput("w", DType::kFloat32, ir::SymShape::Of({2, 12, ir::kUnknownDim}));
  const ir::ValueId r = g.AddInput("r", DType::kFloat32, ir::SymShape::Of({2, 12, 3}));
  const ir::ValueId h0 = g.AddInput("h0", DType::kFloat32, ir::SymShape::Unknown());
  ir::Node& n = g.AddNode("LSTM", "lstm", {x, w, r, h0}, 3);
  n.attrs = RecAttrs("bidirectional", 3, {"initial_h"}, {{"layout", int64_t{1}}});
  const ir::NodeId id = n.id;
  ir::InferNode(g, id);
  EXPECT_EQ(g.ShapeToString(g.value(g.node(id).outputs[0]).shape), "[batch,seq,2,3]");
  EXPECT_EQ(g.ShapeToString(g.value(g.node(id).outputs[1]).shape), "[batch,2,3]");
  EXPECT_EQ(g.value(g.node(id).outputs[2]).dtype, DType::kFloat32);
}

TEST(NnRecurrent, ShapeErrorsNameTheExpectation) {
  const Tensor x = RandF32({3, 2, 4}, 1), r = RandF32({1, 3, 1}, 2);
  ExpectErrorMessage(
      [&] {
        OneNode("GRU", {x, RandF32({1, 3, 5}, 3), r}, RecAttrs("forward", 1, {}), 2);
      },
      {"node 'node' (GRU)", "expected W of shape [1,3,4]", "got [1,3,5]"});
  ExpectErrorMessage(
      [&] {
        OneNode("GRU", {x, RandF32({2, 3, 4}, 3), r}, RecAttrs("bidirectional", 1, {}), 2);
      },
      {"expected R of shape [2,3,1]", "2 direction(s)", "got [1,3,1]"});
  ExpectErrorMessage(
      [&] {
        OneNode("GRU", {x, RandF32({1, 3, 4}, 3), r, I32({3}, {1, 1, 1})}, RecAttrs("forward", 1, {"sequence_lens"}),
                2);
      },
      {"expected sequence_lens of shape [2] [batch_size]", "got [3]"});
  ExpectErrorMessage(
      [&] {
        OneNode("RNN", {x, RandF32({1, 1, 4}, 3), r}, RecAttrs("forward", 1, {}), 2);
      },
      {"expected R of shape [1,1,1]"});
  ExpectErrorMessage(
      [&] {
        OneNode("RNN", {x, RandF32({1, 1, 4}, 3), RandF32({1, 1, 1}, 4)}, RecAttrs("forward", 0, {}), 2);
      },
      {"hidden_size must be in [1,"});
  ExpectErrorMessage(
      [&] {
        OneNode("RNN", {x, RandF32({1, 1, 4}, 3), RandF32({1, 1, 1}, 4)}, RecAttrs("forward", 1, {}), 3);
      },
      {"expected 2 outputs"});
  ExpectErrorMessage(
      [&] {
        OneNode("LSTM", {x, x, x, x}, RecAttrs("forward", 1, {"P", "B"}), 3);
      },
      {"optional_inputs [P,B] must be a subsequence of [B,sequence_lens,initial_h,initial_c,P]"});
  ExpectErrorMessage(
      [&] {
        OneNode("RNN", {x, RandF32({1, 1, 4}, 3), RandF32({1, 1, 1}, 4), F32({2}, {1, 1})},
                RecAttrs("forward", 1, {"sequence_lens"}), 2);
      },
      {"sequence_lens must be int32, got float32"});
  ExpectErrorMessage(
      [&] {
        OneNode("RNN", {x, RandF32({1, 1, 4}, 3), RandF32({1, 1, 1}, 4)},
                RecAttrs("forward", 1, {}, {{"activations", std::vector<std::string>{"Gelu"}}}), 2);
      },
      {"unknown activation 'Gelu'"});
}

TEST(NnRecurrent, RunTimeErrors) {
  const Tensor x = RandF32({3, 2, 1}, 1), w = RandF32({1, 1, 1}, 2), r = RandF32({1, 1, 1}, 3);
  OneNode bad_len("RNN", {x, w, r, I32({2}, {1, 4})}, RecAttrs("forward", 1, {"sequence_lens"}), 2);
  ExpectErrorMessage(
      [&] {
        bad_len.Run({x, w, r, I32({2}, {1, 4})});
      },
      {"(RNN)", "sequence_lens[1] = 4 is outside [0, seq_length = 3]"});
  ExpectErrorMessage([&] { bad_len.Run({x, w, r, I32({2}, {-1, 0})}); }, {"sequence_lens[0] = -1"});
  // The shapes the node was built for are checked again against the tensors it runs on.
  ExpectErrorMessage(
      [&] {
        bad_len.Run({x, RandF32({1, 2, 1}, 4), r, I32({2}, {1, 1})});
      },
      {"expected W of shape [1,1,1]", "got [1,2,1]"});
  // A hostile X with no elements but dims whose product with hidden_size overflows: an error
  // naming the node, not a crash.
  const Tensor huge(DType::kFloat32, {int64_t{1} << 31, int64_t{1} << 31, 0});
  OneNode n("RNN", {huge, F32({1, 4, 0}, {}), RandF32({1, 4, 4}, 5)}, RecAttrs("forward", 4, {}), 2);
  ExpectErrorMessage(
      [&] {
        n.Run({huge, F32({1, 4, 0}, {}), RandF32({1, 4, 4}, 5)});
      },
      {"node 'node' (RNN): output 0", "more than 2^63 elements"});
}

}  // namespace
}  // namespace kiln
