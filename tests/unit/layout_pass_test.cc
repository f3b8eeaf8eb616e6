// The layout passes (ir/passes/layout.cc) on a channels-first residual block as the ONNX importer
// writes it: after channels-last and transpose-sinking, the only data-moving Transpose left is the
// one at the input, and the reference executor gives bit-identical outputs.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/passes/pass.h"
#include "runtime/executor.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

ir::ValueId Emit(ir::Graph& g, const std::string& op, const std::string& name, std::vector<ir::ValueId> in,
                 ir::AttrMap attrs = {}) {
  ir::Node& n = g.AddNode(op, name, std::move(in), 1);
  n.attrs = std::move(attrs);
  const ir::NodeId id = n.id;
  ir::InferNode(g, id);
  return g.node(id).outputs[0];
}

Tensor Random(DType dtype, Shape shape, uint64_t seed) {
  Tensor t(dtype, std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = normal(rng);
  return t;
}

ir::AttrMap ConvAttrs() {
  return testutil::Attrs({{"data_format", std::string("NCHW")},
                          {"strides", std::vector<int64_t>{1, 1}},
                          {"dilations", std::vector<int64_t>{1, 1}},
                          {"padding", std::string("SAME")}});
}

// x [N,4,6,6] -> conv+bias -> relu -> maxpool? no: conv -> relu -> conv -> add(x) -> relu ->
// mul by a per-channel constant [4,1,1] -> mean over H,W (keep dims) -> reshape [N,4].
ir::Graph ResidualBlock() {
  ir::Graph g;
  const ir::Dim n = g.NewSymbol("batch");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({n, 4, 6, 6}));
  const ir::ValueId w1 = g.AddConstant("w1", Random(DType::kFloat32, {3, 3, 4, 4}, 1));
  const ir::ValueId b1 = g.AddConstant("b1", Random(DType::kFloat32, {4}, 2));
  const ir::ValueId w2 = g.AddConstant("w2", Random(DType::kFloat32, {1, 1, 4, 4}, 3));
  ir::ValueId y = Emit(g, "Conv2D", "conv1", {x, w1, b1}, ConvAttrs());
  y = Emit(g, "Relu", "relu1", {y});
  y = Emit(g, "Conv2D", "conv2", {y, w2}, ConvAttrs());
  y = Emit(g, "Add", "residual", {y, x});
  y = Emit(g, "Relu", "relu2", {y});
  y = Emit(g, "MaxPool", "pool", {y},
           testutil::Attrs({{"data_format", std::string("NCHW")},
                            {"ksize", std::vector<int64_t>{2, 2}},
                            {"strides", std::vector<int64_t>{2, 2}},
                            {"padding", std::string("VALID")}}));
  y = Emit(g, "Mul", "scale", {y, g.AddConstant("s", Random(DType::kFloat32, {4, 1, 1}, 4))});
  y = Emit(g, "ReduceMean", "mean", {y, g.AddConstant("axes", Tensor::FromVector<int64_t>(DType::kInt64, {2}, {2, 3}))},
           testutil::Attrs({{"keep_dims", true}}));
  y = Emit(g, "Reshape", "flatten",
           {y, g.AddConstant("target", Tensor::FromVector<int64_t>(DType::kInt64, {2}, {-1, 4}))});
  g.AddOutput("y", y);
  return g;
}

int Count(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const ir::Node& node : g.nodes()) n += !node.removed && node.op == op ? 1 : 0;
  return n;
}

TEST(LayoutPasses, ChannelsFirstBlockChangesLayoutOnlyAtTheInput) {
  ir::Graph g = ResidualBlock();
  auto original = std::make_shared<const ir::Graph>(g.Clone());
  ir::PassPipeline p;
  p.Add(ir::MakeChannelsLast());
  p.Add(ir::MakeTransposeSinking());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);  // the verifier runs after each pass
  for (const ir::Node& node : g.nodes())
    if (!node.removed && node.attrs.Has("data_format"))
      EXPECT_EQ(node.attrs.Get<std::string>("data_format"), "NHWC") << node.name;
  // The input goes to NHWC once (for conv1 and the residual add alike); the mean's [N,1,1,4] ->
  // [N,4,1,1] moves no data and became a Reshape.
  EXPECT_EQ(Count(g, "Transpose"), 1) << ir::GraphToText(g);
  const Tensor x = Random(DType::kFloat32, {3, 4, 6, 6}, 9);
  const auto want = runtime::ReferenceExecutor(original).Run({x});
  const auto got = runtime::ReferenceExecutor(std::make_shared<const ir::Graph>(g.Clone())).Run({x});
  ASSERT_EQ(got[0].shape(), (Shape{3, 4}));
  EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0);
}

TEST(LayoutPasses, TransposesThatDoNotMeetStay) {
  // A Transpose feeding a MatMul cannot sink; a pair that is not inverse merges into one.
  ir::Graph g;
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2, 3, 5}));
  auto perm = [&](std::vector<int64_t> p) {
    return g.AddConstant("p" + std::to_string(g.nodes().size()), Tensor::FromVector<int64_t>(DType::kInt64, {3}, p));
  };
  ir::ValueId y = Emit(g, "Transpose", "t1", {x, perm({0, 2, 1})});
  y = Emit(g, "Transpose", "t2", {y, perm({1, 0, 2})});
  y = Emit(g, "Neg", "neg", {y});
  y = Emit(g, "BatchMatMul", "mm", {y, g.AddConstant("w", Random(DType::kFloat32, {5, 3, 4}, 5))});
  g.AddOutput("y", y);
  auto original = std::make_shared<const ir::Graph>(g.Clone());
  ir::PassPipeline p;
  p.Add(ir::MakeTransposeSinking());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);
  EXPECT_EQ(Count(g, "Transpose"), 1);  // t1 and t2 merged, then sunk below the Neg
  const Tensor in = Random(DType::kFloat32, {2, 3, 5}, 6);
  const auto want = runtime::ReferenceExecutor(original).Run({in});
  const auto got = runtime::ReferenceExecutor(std::make_shared<const ir::Graph>(g.Clone())).Run({in});
  ASSERT_EQ(got[0].shape(), want[0].shape());
  EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0);
}

}  // namespace
}  // namespace kiln
