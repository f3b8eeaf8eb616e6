// ONNX RNN / GRU / LSTM importers: the IR node they produce (optional inputs and outputs,
// resolved defaults), what they refuse and why, and whole models run through kiln::LoadModel.
// Numerics: tests/unit/nn_recurrent_test.cc, the conformance runner and docs/onnx/nn.md.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "frontend/onnx/graph_builder.h"
#include "kiln/error.h"
#include "kiln/model.h"
#include "tests/unit/onnx_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln::onnxfe {
namespace {

using onnxtest::SetFloats;
using onnxtest::SetInt;
using onnxtest::SetString;
using onnxtest::SetStrings;

using testutil::ExpectErrorMessage;

constexpr int32_t kF32 = onnx::TensorProto::FLOAT;
constexpr int32_t kI32 = onnx::TensorProto::INT32;

// A one-node model: graph inputs with static shapes, one recurrent node, the named outputs.
class Model {
 public:
  explicit Model(int64_t opset = 14) {
    model_.set_ir_version(8);
    onnx::OperatorSetIdProto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
  }
  Model& Input(const std::string& name, int32_t type, const std::vector<int64_t>& dims) {
    onnx::ValueInfoProto* v = model_.mutable_graph()->add_input();
    v->set_name(name);
    onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(type);
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
    return *this;
  }
  onnx::NodeProto& Node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs) {
    onnx::NodeProto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(op + "_0");
    for (const std::string& i : inputs) n->add_input(i);
    for (const std::string& o : outputs) {
      n->add_output(o);
      if (!o.empty()) model_.mutable_graph()->add_output()->set_name(o);
    }
    return *n;
  }
  std::string Save() {
    const std::string path = (std::filesystem::path(testing::TempDir()) /
                              (std::string(testing::UnitTest::GetInstance()->current_test_info()->name()) + ".onnx"))
                                 .string();
    std::ofstream(path, std::ios::binary) << model_.SerializeAsString();
    return path;
  }
  ir::Graph Import() { return ImportOnnxFile(Save()); }

 private:
  onnx::ModelProto model_;
};

const ir::Node& Only(const ir::Graph& g, const std::string& op) {
  const ir::Node* found = nullptr;
  for (const ir::Node& n : g.nodes())
    if (n.op == op) {
      EXPECT_EQ(found, nullptr) << "two " << op << " nodes";
      found = &n;
    }
  if (!found) throw Error(ErrorCode::kInternal, "no " + op + " node");
  return *found;
}

// LSTM with B omitted but sequence_lens given, only Y_h read, no hidden_size (taken from R).
TEST(OnnxRecurrentImport, OptionalInputsAndOutputs) {
  Model m;
  m.Input("X", kF32, {5, 2, 3}).Input("W", kF32, {1, 16, 3}).Input("R", kF32, {1, 16, 4}).Input("L", kI32, {2});
  m.Node("LSTM", {"X", "W", "R", "", "L"}, {"", "Y_h"});
  const ir::Graph g = m.Import();
  const ir::Node& n = Only(g, "LSTM");
  EXPECT_EQ(n.inputs.size(), 4u);
  EXPECT_EQ(n.outputs.size(), 3u);
  EXPECT_EQ(n.attrs.Int("hidden_size"), 4);
  EXPECT_EQ(n.attrs.Get<std::vector<std::string>>("optional_inputs"), std::vector<std::string>{"sequence_lens"});
  EXPECT_EQ(n.attrs.Get<std::vector<std::string>>("activations"),
            (std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}));
  EXPECT_EQ(n.attrs.Str("direction"), "forward");
  EXPECT_FALSE(n.attrs.Has("clip"));
  ASSERT_EQ(g.outputs().size(), 1u);
  EXPECT_EQ(g.outputs()[0], n.outputs[1]);
  EXPECT_EQ(g.ShapeToString(g.value(n.outputs[1]).shape), "[1,2,4]");
}

// bfloat16 (opset 22) and float16 keep their dtype through the IR op.
TEST(OnnxRecurrentImport, HalfTypes) {
  for (auto [type, opset, dtype] : {std::tuple{onnx::TensorProto::BFLOAT16, 22, DType::kBFloat16},
                                    std::tuple{onnx::TensorProto::FLOAT16, 14, DType::kFloat16}}) {
    Model m(opset);
    m.Input("X", type, {5, 2, 3}).Input("W", type, {1, 12, 3}).Input("R", type, {1, 12, 3});
    SetInt(m.Node("LSTM", {"X", "W", "R"}, {"Y", "", "Y_c"}), "hidden_size", 3);
    const ir::Graph g = m.Import();
    const ir::Node& n = Only(g, "LSTM");
    EXPECT_EQ(g.value(n.outputs[0]).dtype, dtype);
    EXPECT_EQ(g.value(n.outputs[2]).dtype, dtype);
    EXPECT_EQ(g.outputs().size(), 2u);
  }
}

// Bidirectional GRU at opset 7: activation names in any case, their parameters resolved to one
// value per activation (0 for those that take none; the ONNX operator's default where no value
// is given). Both readings of the lists agree here (see the next test).
TEST(OnnxRecurrentImport, ActivationsAndParameters) {
  Model m(7);
  m.Input("X", kF32, {5, 2, 3}).Input("W", kF32, {2, 6, 3}).Input("R", kF32, {2, 6, 2});
  onnx::NodeProto& n = m.Node("GRU", {"X", "W", "R"}, {"Y"});
  SetString(n, "direction", "bidirectional");
  SetInt(n, "hidden_size", 2);
  SetInt(n, "linear_before_reset", 1);
  SetStrings(n, "activations", {"HardSigmoid", "tanh", "hardsigmoid", "Softsign"});
  SetFloats(n, "activation_alpha", {0.25f, 0.25f, 0.25f});
  SetFloats(n, "activation_beta", {0.75f});
  const ir::Graph g = m.Import();
  const ir::Node& gru = Only(g, "GRU");
  EXPECT_EQ(gru.attrs.Get<std::vector<std::string>>("activations"),
            (std::vector<std::string>{"HardSigmoid", "Tanh", "HardSigmoid", "Softsign"}));
  EXPECT_EQ(gru.attrs.Get<std::vector<double>>("activation_alpha"), (std::vector<double>{0.25, 0, 0.25, 0}));
  EXPECT_EQ(gru.attrs.Get<std::vector<double>>("activation_beta"), (std::vector<double>{0.75, 0, 0.5, 0}));
  EXPECT_TRUE(gru.attrs.Bool("linear_before_reset"));
  EXPECT_EQ(g.ShapeToString(g.value(gru.outputs[0]).shape), "[5,2,2,2]");
}

TEST(OnnxRecurrentImport, AmbiguousOrMissingParametersAreUnsupported) {
  auto gru = [](const std::vector<std::string>& acts, const std::vector<float>& alpha, const std::vector<float>& beta) {
    Model m;
    m.Input("X", kF32, {5, 2, 3}).Input("W", kF32, {1, 6, 3}).Input("R", kF32, {1, 6, 2});
    onnx::NodeProto& n = m.Node("GRU", {"X", "W", "R"}, {"Y"});
    SetInt(n, "hidden_size", 2);
    SetStrings(n, "activations", acts);
    if (!alpha.empty()) SetFloats(n, "activation_alpha", alpha);
    if (!beta.empty()) SetFloats(n, "activation_beta", beta);
    return m.Import();
  };
  // Position 1 holds nothing, but LeakyRelu is the first activation that takes alpha.
  ExpectErrorMessage(
      [&] {
        gru({"Sigmoid", "LeakyRelu"}, {0.1f}, {});
      },
      {"GRU_0", "activation_alpha [0.1] is ambiguous for activation 1 (LeakyRelu)"});
  ExpectErrorMessage(
      [&] {
        gru({"Sigmoid", "ScaledTanh"}, {}, {});
      },
      {"activation 1 (ScaledTanh) needs activation_alpha: ONNX defines no default"});
  // Readings that agree are taken: both activations take alpha, in order.
  const ir::Graph g = gru({"LeakyRelu", "Elu"}, {0.2f, 0.7f}, {});
  EXPECT_EQ(Only(g, "GRU").attrs.Get<std::vector<double>>("activation_alpha"), (std::vector<double>{0.2f, 0.7f}));
  // No values at all: the defaults (HardSigmoid 0.2 / 0.5, Elu 1).
  const ir::Graph d = gru({"HardSigmoid", "Elu"}, {}, {});
  EXPECT_EQ(Only(d, "GRU").attrs.Get<std::vector<double>>("activation_alpha"), (std::vector<double>{0.2, 1.0}));
  EXPECT_EQ(Only(d, "GRU").attrs.Get<std::vector<double>>("activation_beta"), (std::vector<double>{0.5, 0.0}));
}

TEST(OnnxRecurrentImport, InvalidNodes) {
  auto rnn = [](int64_t opset, auto&& edit) {
    Model m(opset);
    m.Input("X", kF32, {5, 2, 3}).Input("W", kF32, {1, 4, 3}).Input("R", kF32, {1, 4, 4});
    onnx::NodeProto& n = m.Node("RNN", {"X", "W", "R"}, {"Y"});
    SetInt(n, "hidden_size", 4);
    edit(n);
    return m.Import();
  };
  ExpectErrorMessage([&] { rnn(13, [](onnx::NodeProto& n) { SetInt(n, "layout", 1); }); },
                     {"RNN_0", "attribute 'layout' does not exist before opset 14"});
  ExpectErrorMessage([&] { rnn(14, [](onnx::NodeProto& n) { SetString(n, "direction", "sideways"); }); },
                     {"direction 'sideways'"});
  ExpectErrorMessage([&] { rnn(14, [](onnx::NodeProto& n) {
                             SetStrings(n, "activations", {"Tanh", "Tanh"});
                           }); },
                     {"expected 1 activations (1 per direction, 1 direction(s)), got 2"});
  ExpectErrorMessage([&] { rnn(14, [](onnx::NodeProto& n) { SetStrings(n, "activations", {"Swish"}); }); },
                     {"unknown activation 'Swish'"});
  ExpectErrorMessage([&] { rnn(6, [](onnx::NodeProto&) {}); }, {"RNN at opset 6", "from opset 7 on"});
  // W for 2 gates' worth of rows: the shape function names what it expected.
  ExpectErrorMessage(
      [&] {
        Model m;
        m.Input("X", kF32, {5, 2, 3}).Input("W", kF32, {1, 8, 3}).Input("R", kF32, {1, 4, 4});
        SetInt(m.Node("RNN", {"X", "W", "R"}, {"Y"}), "hidden_size", 4);
        m.Import();
      },
      {"RNN_0", "expected W of shape [1,4,3]", "got [1,8,3]"});
}

// A whole model through kiln::LoadModel: a batch-major bidirectional RNN whose Y is not read.
TEST(OnnxRecurrentImport, RunsThroughLoadModel) {
  Model m;
  m.Input("X", kF32, {2, 3, 1}).Input("W", kF32, {2, 1, 1}).Input("R", kF32, {2, 1, 1}).Input("L", kI32, {2});
  onnx::NodeProto& n = m.Node("RNN", {"X", "W", "R", "", "L"}, {"", "Y_h"});
  SetInt(n, "hidden_size", 1);
  SetInt(n, "layout", 1);
  SetString(n, "direction", "bidirectional");
  auto model = LoadModel(m.Save());
  const Signature& sig = model->signature("serving_default");
  const Tensor x = Tensor::FromVector<float>(DType::kFloat32, {2, 3, 1}, {1, 2, 3, 0.5f, -1, 9});  // [batch, seq, 1]
  const Tensor w = Tensor::FromVector<float>(DType::kFloat32, {2, 1, 1}, {0.5f, -0.25f});
  const Tensor r = Tensor::FromVector<float>(DType::kFloat32, {2, 1, 1}, {0.1f, 0.3f});
  const Tensor lens = Tensor::FromVector<int32_t>(DType::kInt32, {2}, {3, 2});
  const auto out = sig.Run({{"X", x}, {"W", w}, {"R", r}, {"L", lens}});
  const Tensor& yh = out.at("Y_h");
  ASSERT_EQ(ShapeToString(yh.shape()), "[2,2,1]");  // [batch, num_directions, hidden]
  auto fwd = [](std::vector<double> xs) {
    double h = 0;
    for (double v : xs) h = std::tanh(double{0.5f} * v + double{0.1f} * h);
    return h;
  };
  auto rev = [](std::vector<double> xs) {
    double h = 0;
    for (auto it = xs.rbegin(); it != xs.rend(); ++it) h = std::tanh(double{-0.25f} * *it + double{0.3f} * h);
    return h;
  };
  const std::vector<double> want = {fwd({1, 2, 3}), rev({1, 2, 3}), fwd({0.5, -1}), rev({0.5, -1})};
  for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(yh.DoubleAt(i), want[static_cast<size_t>(i)], 1e-6) << i;
}

}  // namespace
}  // namespace kiln::onnxfe
