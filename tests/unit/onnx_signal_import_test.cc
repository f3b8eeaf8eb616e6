// ONNX importers added with the signal, text and training ops: DFT (opsets 17 and 20), STFT,
// MelWeightMatrix, Cast / CastLike with strings, StringNormalizer, TfIdfVectorizer,
// BatchNormalization with training_mode = 1, Dropout in training, and Adagrad / Adam / Momentum of
// ai.onnx.preview.training. Each: the IR it becomes, values on small inputs (reference executor),
// and import errors naming the node, op and expectation. The kernels have their own tests
// (signal_test.cc, text_test.cc, string_cast_test.cc); ONNX's backend tests run in
// tests/onnx_conformance.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "ir/ops/text_util.h"
#include "kiln/error.h"
#include "runtime/executor.h"
#include "tests/unit/onnx_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln::onnxfe {
namespace {

using onnxtest::F32;
using onnxtest::ModelMaker;
using onnxtest::SetFloat;
using onnxtest::SetInt;
using onnxtest::SetInts;
using onnxtest::SetString;
using onnxtest::SetStrings;

using testutil::Doubles;
using testutil::ExpectError;

constexpr int32_t kF32 = onnx::TensorProto::FLOAT;
constexpr int32_t kF64 = onnx::TensorProto::DOUBLE;
constexpr int32_t kI32 = onnx::TensorProto::INT32;
constexpr int32_t kI64 = onnx::TensorProto::INT64;
constexpr int32_t kBool = onnx::TensorProto::BOOL;
constexpr int32_t kString = onnx::TensorProto::STRING;
constexpr const char* kTraining = "ai.onnx.preview.training";

Tensor I64(int64_t v) { return Tensor::Scalar<int64_t>(DType::kInt64, v); }
Tensor Strings(Shape shape, std::vector<std::string> v) {
  Tensor t(DType::kString, std::move(shape));
  t.strings() = std::move(v);
  return t;
}

bool HasOp(const ir::Graph& g, const std::string& op) {
  return std::any_of(g.nodes().begin(), g.nodes().end(), [&](const ir::Node& n) { return !n.removed && n.op == op; });
}

// ---- DFT, STFT, MelWeightMatrix ----

TEST(OnnxSignalImport, DftAxisIsAnAttributeUntilOpset20) {
  const Tensor x = F32({1, 4, 1}, {1, 2, 3, 4});
  {
    ModelMaker m(17);
    m.Input("x", kF32, {1, 4, 1});
    SetInt(m.Node("DFT", {"x"}), "axis", 1);
    const std::shared_ptr<ir::Graph> g = m.Import();
    ASSERT_TRUE(HasOp(*g, "DFT"));
    EXPECT_EQ(Doubles(runtime::ReferenceExecutor(g).Run({x})[0]), (std::vector<double>{10, 0, -2, 2, -2, 0, -2, -2}));
  }
  {
    // Opset 20: axis an input (default -2), dft_length given at run time, onesided.
    ModelMaker m(20);
    m.Input("x", kF32, {1, 4, 1}).Input("n", kI64, {});
    SetInt(m.Node("DFT", {"x", "n"}), "onesided", 1);
    EXPECT_EQ(Doubles(m.Run({x, I64(2)})[0]), (std::vector<double>{3, 0, -1, 0}));
  }
  {
    ModelMaker m(20);
    m.Input("x", kF32, {1, 4, 1}).Int64("axis", 1);
    SetInt(m.Node("DFT", {"x", "", "axis"}), "inverse", 1);
    const Tensor y = m.Run({x})[0];
    EXPECT_EQ(y.shape(), (Shape{1, 4, 2}));
    EXPECT_NEAR(y.data<float>()[0], 2.5, 1e-6);  // the mean
  }
}

TEST(OnnxSignalImport, DftErrors) {
  {
    ModelMaker m(20);
    m.Input("x", kF32, {1, 4, 1});
    SetInt(m.Node("DFT", {"x"}), "axis", 1);
    ExpectError([&] { m.Import(); }, ErrorCode::kInvalidArgument,
                {"node 'DFT_0' (DFT)", "axis is an input from opset 20 on, not an attribute"});
  }
  {
    ModelMaker m(17);
    m.Input("x", kF32, {1, 4, 1});
    SetInt(m.Node("DFT", {"x"}), "onesided", 2);
    ExpectError([&] { m.Import(); }, ErrorCode::kInvalidArgument, {"DFT_0", "onesided must be 0 or 1, got 2"});
  }
  {
    ModelMaker m(17);
    m.Input("x", kI32, {1, 4, 1});
    m.Node("DFT", {"x"});
    ExpectError([&] { m.Import(); }, ErrorCode::kInvalidArgument,
                {"DFT_0", "input has dtype int32 (expected float16, bfloat16, float or double)"});
  }
  {
    ModelMaker m(17);
    m.Input("x", kF32, {1, 4, 3});
    m.Node("DFT", {"x"});
    ExpectError([&] { m.Import(); }, ErrorCode::kInvalidArgument,
                {"DFT", "the last dim must be 1 (real) or 2 (complex)"});
  }
  {
    ModelMaker m(16);
    m.Input("x", kF32, {1, 4, 1});
    m.Node("DFT", {"x"});
    ExpectError([&] { m.Import(); }, ErrorCode::kUnimplemented, {"DFT at opset 16", "from opset 17"});
  }
}

TEST(OnnxSignalImport, StftWithoutAWindowUsesOnes) {
  const Tensor signal = F32({1, 6, 1}, {1, 2, 3, 4, 5, 6});
  {
    ModelMaker m(17);
    m.Input("s", kF32, {1, 6, 1}).Int64("step", 2).Int64("length", 4);
    m.Node("STFT", {"s", "step", "", "length"});
    EXPECT_EQ(Doubles(m.Run({signal})[0]), (std::vector<double>{10, 0, -2, 2, -2, 0, 18, 0, -2, 2, -2, 0}));
  }
  {
    // Neither window nor frame_length: one frame of the whole signal.
    ModelMaker m(17);
    m.Input("s", kF32, {1, 6, 1}).Int64("step", 1);
    SetInt(m.Node("STFT", {"s", "step"}), "onesided", 0);
    const Tensor y = m.Run({signal})[0];
    EXPECT_EQ(y.shape(), (Shape{1, 1, 6, 2}));
    EXPECT_EQ(y.data<float>()[0], 21);
  }
  {
    ModelMaker m(17);
    m.Input("s", kF32, {1, 6, 1}).Input("w", kF64, {4}).Int64("step", 1);
    m.Node("STFT", {"s", "step", "w"});
    ExpectError([&] { m.Import(); }, ErrorCode::kInvalidArgument,
                {"STFT_0", "window has dtype float64 (expected the signal's, float32)"});
  }
}

TEST(OnnxSignalImport, MelWeightMatrix) {
  ModelMaker m(17);
  m.Input("bins", kI32, {}).Input("n", kI32, {}).Input("rate", kI32, {}).Input("lo", kF32, {}).Input("hi", kF32, {});
  SetInt(m.Node("MelWeightMatrix", {"bins", "n", "rate", "lo", "hi"}), "output_datatype", onnx::TensorProto::DOUBLE);
  auto i32 = [](int32_t v) { return Tensor::Scalar<int32_t>(DType::kInt32, v); };
  const Tensor w = m.Run({i32(8), i32(16), i32(8192), F32({}, {0}), F32({}, {4096})})[0];
  EXPECT_EQ(w.dtype(), DType::kFloat64);
  EXPECT_EQ(w.shape(), (Shape{9, 8}));
  ModelMaker bad(17);
  bad.Input("bins", kI32, {}).Input("n", kI32, {}).Input("rate", kI32, {}).Input("lo", kF32, {}).Input("hi", kF32, {});
  SetInt(bad.Node("MelWeightMatrix", {"bins", "n", "rate", "lo", "hi"}), "output_datatype", onnx::TensorProto::STRING);
  ExpectError([&] { bad.Import(); }, ErrorCode::kInvalidArgument,
              {"MelWeightMatrix_0", "output_datatype 8 is not a numeric type"});
}

// ---- strings ----

TEST(OnnxTextImport, CastAndCastLikeWithStrings) {
  {
    ModelMaker m(13);
    m.Input("x", kF32, {3});
    SetInt(m.Node("Cast", {"x"}), "to", onnx::TensorProto::STRING);
    EXPECT_EQ(m.Run({F32({3}, {0.25f, 1e-5f, 3.0f})})[0].strings(), (std::vector<std::string>{"0.25", "1e-05", "3.0"}));
  }
  {
    ModelMaker m(15);
    m.Input("x", kString, {2}).Input("like", kF64, {1});
    m.Node("CastLike", {"x", "like"});
    const Tensor y = m.Run({Strings({2}, {"1.5", "-inf"}), Tensor(DType::kFloat64, {1})})[0];
    EXPECT_EQ(y.dtype(), DType::kFloat64);
    EXPECT_EQ(Doubles(y), (std::vector<double>{1.5, -INFINITY}));
  }
}

TEST(OnnxTextImport, StringNormalizerAndTfIdfVectorizer) {
  {
    ModelMaker m(10);
    m.Input("x", kString, {3});
    onnx::NodeProto& n = m.Node("StringNormalizer", {"x"});
    SetString(n, "case_change_action", "LOWER");
    SetStrings(n, "stopwords", {"the"});
    EXPECT_EQ(m.Run({Strings({3}, {"The", "Cat", "sat"})})[0].strings(), (std::vector<std::string>{"cat", "sat"}));
  }
  {
    ModelMaker m(10);
    m.Input("x", kString, {3});
    SetString(m.Node("StringNormalizer", {"x"}), "case_change_action", "CAPITALIZE");
    ExpectError([&] { m.Import(); }, ErrorCode::kInvalidArgument,
                {"StringNormalizer_0", "case_change_action must be NONE, LOWER or UPPER, got 'CAPITALIZE'"});
  }
  std::string no_turkish;
  if (!ir::text::CaseMapper::Open("tr_TR", &no_turkish)) {  // Turkish casing rules, where not installed
    ModelMaker m(10);
    m.Input("x", kString, {3});
    onnx::NodeProto& n = m.Node("StringNormalizer", {"x"});
    SetString(n, "case_change_action", "UPPER");
    SetString(n, "locale", "tr_TR");
    ExpectError([&] { m.Import(); }, ErrorCode::kUnimplemented,
                {"StringNormalizer", "locale 'tr_TR' is not installed"});
  }
  {
    ModelMaker m(9);
    m.Input("x", kString, {2, 3});
    onnx::NodeProto& n = m.Node("TfIdfVectorizer", {"x"});
    SetString(n, "mode", "TF");
    SetInt(n, "min_gram_length", 1);
    SetInt(n, "max_gram_length", 2);
    SetInt(n, "max_skip_count", 0);
    SetInts(n, "ngram_counts", {0, 2});
    SetInts(n, "ngram_indexes", {0, 1, 2});
    SetStrings(n, "pool_strings", {"a", "b", "a", "b"});
    EXPECT_EQ(Doubles(m.Run({Strings({2, 3}, {"a", "b", "a", "b", "b", "c"})})[0]),
              (std::vector<double>{2, 1, 1, 0, 2, 0}));
  }
  {
    ModelMaker m(9);
    m.Input("x", kI64, {3});
    onnx::NodeProto& n = m.Node("TfIdfVectorizer", {"x"});
    SetString(n, "mode", "TF");
    SetInt(n, "min_gram_length", 1);
    SetInt(n, "max_gram_length", 1);
    SetInts(n, "ngram_counts", {0});
    SetInts(n, "ngram_indexes", {0});
    SetInts(n, "pool_int64s", {4});
    ExpectError([&] { m.Import(); }, ErrorCode::kInvalidArgument,
                {"TfIdfVectorizer_0", "attribute 'max_skip_count' is required"});
  }
}

// ---- training ----

TEST(OnnxTrainingImport, BatchNormalizationTrainingMode) {
  // x [2, 1, 2]: batch mean 2.5, population variance 1.25; running stats with momentum 0.5.
  ModelMaker m(15);
  m.Input("x", kF32, {2, 1, 2})
      .Input("s", kF32, {1})
      .Input("b", kF32, {1})
      .Input("mean", kF32, {1})
      .Input("var", kF32, {1});
  onnx::NodeProto& n =
      m.Node("BatchNormalization", {"x", "s", "b", "mean", "var"}, {"y", "running_mean", "running_var"});
  SetInt(n, "training_mode", 1);
  SetFloat(n, "momentum", 0.5f);
  SetFloat(n, "epsilon", 0.0f);
  const std::vector<Tensor> out =
      m.Run({F32({2, 1, 2}, {1, 2, 3, 4}), F32({1}, {2}), F32({1}, {1}), F32({1}, {0.5f}), F32({1}, {0.75f})});
  const double sd = std::sqrt(1.25);
  std::vector<double> want;
  for (double v : {1, 2, 3, 4}) want.push_back((v - 2.5) / sd * 2 + 1);
  const std::vector<double> y = Doubles(out[0]);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(y[i], want[i], 1e-6);
  EXPECT_EQ(Doubles(out[1]), (std::vector<double>{1.5}));  // 0.5 * 0.5 + 2.5 * 0.5
  EXPECT_EQ(Doubles(out[2]), (std::vector<double>{1.0}));  // 0.75 * 0.5 + 1.25 * 0.5
}

TEST(OnnxTrainingImport, BatchNormalizationErrors) {
  auto model = [](int64_t opset, int64_t training, int outputs) {
    auto m = std::make_unique<ModelMaker>(opset);
    m->Input("x", kF32, {2, 1, 2})
        .Input("s", kF32, {1})
        .Input("b", kF32, {1})
        .Input("mean", kF32, {1})
        .Input("var", kF32, {1});
    std::vector<std::string> outs = {"y", "m", "v", "sm", "sv"};
    outs.resize(static_cast<size_t>(outputs));
    onnx::NodeProto& n = m->Node("BatchNormalization", {"x", "s", "b", "mean", "var"}, outs);
    if (training >= 0) SetInt(n, "training_mode", training);
    return m;
  };
  ExpectError([&] { model(15, 2, 1)->Import(); }, ErrorCode::kInvalidArgument,
              {"BatchNormalization_0", "training_mode must be 0 or 1, got 2"});
  ExpectError([&] { model(15, 0, 3)->Import(); }, ErrorCode::kInvalidArgument,
              {"BatchNormalization_0", "the running_mean / running_var outputs need training_mode = 1"});
  ExpectError([&] { model(9, -1, 5)->Import(); }, ErrorCode::kUnimplemented,
              {"BatchNormalization", "opset 9 training outputs (mean, var, saved_mean, saved_var) are not supported"});
}

TEST(OnnxTrainingImport, DropoutInTraining) {
  // numpy.random.RandomState(0).uniform(size=5) = [0.549, 0.715, 0.603, 0.545, 0.424]: with ratio
  // 0.5 the last element is dropped, the others doubled.
  ModelMaker m(13);
  m.Input("x", kF32, {5}).Input("t", kBool, {});
  onnx::NodeProto& n = m.Node("Dropout", {"x", "", "t"}, {"y", "mask"});
  SetInt(n, "seed", 0);
  const Tensor x = F32({5}, {1, 2, 3, 4, 5});
  std::vector<Tensor> out = m.Run({x, Tensor::Scalar<bool>(DType::kBool, true)});
  EXPECT_EQ(Doubles(out[0]), (std::vector<double>{2, 4, 6, 8, 0}));
  EXPECT_EQ(Doubles(out[1]), (std::vector<double>{1, 1, 1, 1, 0}));
  // The same seed draws the same mask every run; training_mode false is the identity.
  EXPECT_EQ(Doubles(m.Run({x, Tensor::Scalar<bool>(DType::kBool, true)})[0]), (std::vector<double>{2, 4, 6, 8, 0}));
  out = m.Run({x, Tensor::Scalar<bool>(DType::kBool, false)});
  EXPECT_EQ(Doubles(out[0]), (std::vector<double>{1, 2, 3, 4, 5}));
  EXPECT_EQ(Doubles(out[1]), (std::vector<double>{1, 1, 1, 1, 1}));
  // A constant false training_mode stays the identity in the IR.
  ModelMaker inference(13);
  inference.Input("x", kF32, {5}).Bool("t", false);
  inference.Node("Dropout", {"x", "", "t"});
  EXPECT_FALSE(HasOp(*inference.Import(), "Dropout"));
  // ratio outside [0, 1) in training fails at run time.
  ModelMaker bad(13);
  bad.Input("x", kF32, {5}).Input("r", kF32, {}).Input("t", kBool, {});
  bad.Node("Dropout", {"x", "r", "t"});
  ExpectError(
      [&] {
        bad.Run({x, F32({}, {1.0f}), Tensor::Scalar<bool>(DType::kBool, true)});
      },
      ErrorCode::kInvalidArgument, {"Dropout", "ratio must be in [0, 1), got 1"});
}

TEST(OnnxTrainingImport, Optimizers) {
  auto scalars = [](ModelMaker& m) { m.Input("R", kF32, {}).Input("T", kI64, {}); };
  const Tensor r = F32({}, {0.1f}), t0 = I64(0), t1 = I64(1);
  {
    // Adagrad: r = R / (1 + T * decay), G' = norm * X + G, H' = H + G'^2, X' = X - r G' / (sqrt(H') + eps).
    ModelMaker m(1, kTraining, 1);
    scalars(m);
    m.Input("X", kF32, {1}).Input("G", kF32, {1}).Input("H", kF32, {1});
    onnx::NodeProto& n = m.Node("Adagrad", {"R", "T", "X", "G", "H"}, {"X_new", "H_new"});
    n.set_domain(kTraining);
    SetFloat(n, "decay_factor", 1.0f);
    SetFloat(n, "epsilon", 0.0f);
    const std::vector<Tensor> out = m.Run({r, t1, F32({1}, {1}), F32({1}, {3}), F32({1}, {7})});
    EXPECT_NEAR(out[0].data<float>()[0], 1 - 0.05 * 3 / 4, 1e-6);
    EXPECT_EQ(out[1].data<float>()[0], 16);
  }
  {
    // Adam at T = 1: R * sqrt(1 - beta) / (1 - alpha) corrects the learning rate.
    ModelMaker m(1, kTraining, 1);
    scalars(m);
    m.Input("X", kF32, {1}).Input("G", kF32, {1}).Input("V", kF32, {1}).Input("H", kF32, {1});
    onnx::NodeProto& n = m.Node("Adam", {"R", "T", "X", "G", "V", "H"}, {"X_new", "V_new", "H_new"});
    n.set_domain(kTraining);
    SetFloat(n, "alpha", 0.5f);
    SetFloat(n, "beta", 0.75f);
    SetFloat(n, "epsilon", 0.0f);
    SetFloat(n, "norm_coefficient_post", 0.5f);
    const std::vector<Tensor> out = m.Run({r, t1, F32({1}, {1}), F32({1}, {2}), F32({1}, {0}), F32({1}, {0})});
    // V' = 1, H' = 0.25 * 4 = 1, R' = 0.1 * 0.5 / 0.5 = 0.1, X' = (1 - 0.1) * 0.5.
    EXPECT_NEAR(out[0].data<float>()[0], 0.45, 1e-6);
    EXPECT_EQ(out[1].data<float>()[0], 1);
    EXPECT_EQ(out[2].data<float>()[0], 1);
  }
  {
    // Nesterov momentum at T = 0 (beta taken as 1): V' = alpha V + G, X' = X - R (G + alpha V').
    ModelMaker m(1, kTraining, 1);
    scalars(m);
    m.Input("X", kF32, {2}).Input("G", kF32, {2}).Input("V", kF32, {2});
    onnx::NodeProto& n = m.Node("Momentum", {"R", "T", "X", "G", "V"}, {"X_new", "V_new"});
    n.set_domain(kTraining);
    SetFloat(n, "alpha", 0.5f);
    SetFloat(n, "beta", 0.25f);
    SetFloat(n, "norm_coefficient", 0.0f);
    SetString(n, "mode", "nesterov");
    const std::vector<Tensor> out = m.Run({r, t0, F32({2}, {1, 1}), F32({2}, {2, 4}), F32({2}, {2, 0})});
    EXPECT_EQ(Doubles(out[1]), (std::vector<double>{3, 4}));
    const std::vector<double> x = Doubles(out[0]);
    EXPECT_NEAR(x[0], 1 - 0.1 * (2 + 1.5), 1e-6);
    EXPECT_NEAR(x[1], 1 - 0.1 * (4 + 2), 1e-6);
  }
}

TEST(OnnxTrainingImport, OptimizerErrors) {
  auto momentum = [](int64_t training_version, const std::string& mode, bool all_attrs, int tensors) {
    auto m = std::make_unique<ModelMaker>(1, kTraining, training_version);
    m->Input("R", kF32, {}).Input("T", kI64, {});
    std::vector<std::string> ins = {"R", "T"};
    for (int i = 0; i < tensors; ++i) {
      m->Input("t" + std::to_string(i), kF32, {1});
      ins.push_back("t" + std::to_string(i));
    }
    onnx::NodeProto& n = m->Node("Momentum", ins, {"X_new", "V_new"});
    n.set_domain(kTraining);
    SetFloat(n, "alpha", 0.5f);
    SetFloat(n, "beta", 0.5f);
    SetString(n, "mode", mode);
    if (all_attrs) SetFloat(n, "norm_coefficient", 0.0f);
    return m;
  };
  ExpectError([&] { momentum(1, "standard", false, 3)->Import(); }, ErrorCode::kInvalidArgument,
              {"node 'Momentum_0' (Momentum)", "attribute 'norm_coefficient' is required"});
  ExpectError([&] { momentum(1, "heavy-ball", true, 3)->Import(); }, ErrorCode::kInvalidArgument,
              {"mode must be \"standard\" or \"nesterov\", got \"heavy-ball\""});
  ExpectError([&] { momentum(1, "standard", true, 4)->Import(); }, ErrorCode::kInvalidArgument,
              {"expected R, T and 3 lists of equally many tensors, got 6 inputs"});
  ExpectError([&] { momentum(0, "standard", true, 3)->Import(); }, ErrorCode::kUnimplemented,
              {"Momentum needs the model to import version 1 of domain 'ai.onnx.preview.training'"});
  // Other ops of the training domain stay unsupported.
  ModelMaker m(13, kTraining, 1);
  m.Input("x", kF32, {1});
  m.Node("Gradient", {"x"}).set_domain(kTraining);
  ExpectError([&] { m.Import(); }, ErrorCode::kUnimplemented,
              {"op domain 'ai.onnx.preview.training' is not supported", "Adagrad, Adam and Momentum"});
}

}  // namespace
}  // namespace kiln::onnxfe
