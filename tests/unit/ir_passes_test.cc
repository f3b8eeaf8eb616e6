// IR graph, verifier and pass tests on small hand-built graphs.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/reference/kernel.h"
#include "ir/op_schema.h"
#include "ir/passes/pass.h"
#include "runtime/executor.h"

namespace kiln {
namespace {

ir::ValueId Add1(ir::Graph& g, const std::string& op, const std::string& name, std::vector<ir::ValueId> in) {
  ir::Node& n = g.AddNode(op, name, std::move(in), 1);
  ir::NodeId id = n.id;
  ir::InferNode(g, id);
  return g.node(id).outputs[0];
}

TEST(IrGraph, TopologicalOrderIsDeterministicAndDetectsCycles) {
  ir::Graph g;
  ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2}));
  ir::ValueId a = Add1(g, "Identity", "a", {x});
  ir::ValueId b = Add1(g, "Identity", "b", {a});
  g.AddOutput("y", b);
  EXPECT_EQ(g.TopologicalOrder(), (std::vector<ir::NodeId>{0, 1}));
  g.node(0).inputs[0] = b;  // a <- b <- a
  EXPECT_THROW(g.TopologicalOrder(), Error);
}

TEST(IrGraph, ShapesWithSymbolsTheGraphDoesNotNamePrintAsUnknown) {
  ir::Graph g;
  const ir::Dim n = g.NewSymbol("n");
  EXPECT_EQ(g.ShapeToString(ir::SymShape::Of({n, 3})), "[n,3]");
  EXPECT_EQ(g.ShapeToString(ir::SymShape::Of({n - 5, 3})), "[?,3]");  // a dim from another graph
}

TEST(IrPasses, IdentityEliminationAndDeadCode) {
  ir::Graph g;
  ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({ir::kUnknownDim, 3}));
  ir::ValueId a = Add1(g, "Identity", "a", {x});
  Add1(g, "Identity", "unused", {a});
  g.AddOutput("y", a);
  ir::PassPipeline p;
  p.Add(ir::MakeIdentityElimination());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);
  EXPECT_EQ(g.NumLiveNodes(), 0u);
  EXPECT_EQ(g.outputs()[0], x);
  ir::Verify(g);
}

TEST(IrPasses, IdentityEliminationIsLinearOnLongChains) {
  // 100k Identities in a chain: the pass rewrites each reader once (it used to rescan the whole
  // graph per Identity, 10^10 steps here).
  ir::Graph g;
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2}));
  ir::ValueId v = x;
  for (int i = 0; i < 100000; ++i) v = Add1(g, "Identity", "i" + std::to_string(i), {v});
  const ir::ValueId y = Add1(g, "Neg", "neg", {v});
  g.AddOutput("y", y);
  g.AddOutput("chain", v);
  ir::PassPipeline p;
  p.Add(ir::MakeIdentityElimination());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g, {.verify_each = false});
  EXPECT_EQ(g.NumLiveNodes(), 1u);
  EXPECT_EQ(g.Producer(g.outputs()[0])->inputs[0], x);
  EXPECT_EQ(g.outputs()[1], x);
  ir::Verify(g);
}

TEST(IrPasses, ConstantFoldingReplacesConstantSubgraphs) {
  ir::Graph g;
  ir::ValueId c = g.AddConstant("c", Tensor::FromVector<float>(DType::kFloat32, {2}, {1.5f, -2.0f}));
  ir::ValueId id = Add1(g, "Identity", "id", {c});
  g.AddOutput("y", id);
  ir::PassPipeline p;
  p.Add(ir::MakeConstantFolding(reference::EvaluateNode));
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);
  ASSERT_EQ(g.NumLiveNodes(), 1u);
  const Tensor* folded = g.ConstantOf(g.outputs()[0]);
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->data<float>()[1], -2.0f);
}

// x: [n, 7, 7, 64] or [n, m, 64]; y = Reshape(x, Pack(Shape(x)[0], -1)) (Keras Flatten).
ir::Graph FlattenGraph(bool two_symbols) {
  ir::Graph g;
  const ir::Dim n = g.NewSymbol("n");
  const ir::SymShape shape =
      two_symbols ? ir::SymShape::Of({n, g.NewSymbol("m"), 64}) : ir::SymShape::Of({n, 7, 7, 64});
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, shape);
  const ir::ValueId s = Add1(g, "Shape", "shape", {x});
  const ir::ValueId zero = g.AddConstant("zero", Tensor::Scalar<int32_t>(DType::kInt32, 0));
  const ir::ValueId batch = Add1(g, "Gather", "batch", {s, zero, zero});
  const ir::ValueId minus_one = g.AddConstant("minus_one", Tensor::Scalar<int32_t>(DType::kInt32, -1));
  const ir::ValueId target = Add1(g, "Pack", "target", {batch, minus_one});
  g.AddOutput("y", Add1(g, "Reshape", "flatten", {x, target}));
  return g;
}

TEST(IrPasses, ReshapeTargetFoldingMakesFlattenConstant) {
  ir::Graph g = FlattenGraph(false);
  auto original = std::make_shared<const ir::Graph>(g.Clone());
  ir::PassPipeline p;
  p.Add(ir::MakeReshapeTargetFolding());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);
  const ir::Node* reshape = g.Producer(g.outputs()[0]);
  ASSERT_NE(reshape, nullptr);
  const Tensor* target = g.ConstantOf(reshape->inputs[1]);
  ASSERT_NE(target, nullptr) << "the target was not folded";
  EXPECT_EQ(target->ToInt64Vector(), (std::vector<int64_t>{-1, 7 * 7 * 64}));
  EXPECT_EQ(g.NumLiveNodes(), 2u);  // the folded target and the Reshape: Shape, Gather, Pack are gone
  ir::Verify(g);
  Tensor x(DType::kFloat32, {3, 7, 7, 64});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = static_cast<float>(i % 97) - 40.0f;
  const auto want = runtime::ReferenceExecutor(original).Run({x});
  const auto got = runtime::ReferenceExecutor(std::make_shared<const ir::Graph>(g.Clone())).Run({x});
  EXPECT_EQ(got[0].shape(), want[0].shape());
  EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0);
}

TEST(IrPasses, ReshapeTargetFoldingLeavesWhatItCannotProve) {
  ir::Graph g = FlattenGraph(true);  // two unknown dims: the target's -1 is not a constant
  ir::PassPipeline p;
  p.Add(ir::MakeReshapeTargetFolding());
  p.Run(g);
  EXPECT_EQ(g.ConstantOf(g.Producer(g.outputs()[0])->inputs[1]), nullptr);
}

TEST(IrVerifier, RejectsReadsOfRemovedNodes) {
  ir::Graph g;
  ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({1}));
  ir::ValueId a = Add1(g, "Identity", "a", {x});
  g.AddOutput("y", a);
  g.node(0).removed = true;
  EXPECT_THROW(ir::Verify(g), Error);
}

// If: then-branch returns its argument, else-branch returns a constant.
TEST(ReferenceExecutor, RunsIfBranches) {
  auto then_g = std::make_shared<ir::Graph>();
  ir::ValueId t_in = then_g->AddInput("v", DType::kFloat32, ir::SymShape::Of({2}));
  then_g->AddOutput("out", t_in);
  auto else_g = std::make_shared<ir::Graph>();
  else_g->AddInput("v", DType::kFloat32, ir::SymShape::Of({2}));
  else_g->AddOutput("out", else_g->AddConstant("k", Tensor::FromVector<float>(DType::kFloat32, {2}, {7.0f, 8.0f})));

  auto g = std::make_shared<ir::Graph>();
  ir::ValueId pred = g->AddInput("pred", DType::kBool, ir::SymShape::Scalar());
  ir::ValueId v = g->AddInput("v", DType::kFloat32, ir::SymShape::Of({2}));
  ir::Node& n = g->AddNode("If", "if", {pred, v}, 1);
  n.attrs.Set("then_branch", then_g);
  n.attrs.Set("else_branch", else_g);
  ir::InferNode(*g, n.id);
  g->AddOutput("y", g->node(0).outputs[0]);
  EXPECT_EQ(g->value(g->outputs()[0]).dtype, DType::kFloat32);

  runtime::ReferenceExecutor exec(g);
  Tensor value = Tensor::FromVector<float>(DType::kFloat32, {2}, {1.0f, 2.0f});
  auto yes = exec.Run({Tensor::Scalar<bool>(DType::kBool, true), value});
  auto no = exec.Run({Tensor::Scalar<bool>(DType::kBool, false), value});
  EXPECT_EQ(yes[0].data<float>()[1], 2.0f);
  EXPECT_EQ(no[0].data<float>()[1], 8.0f);
}

// While(true): stops at the iteration cap with an error naming the loop, instead of hanging.
TEST(ReferenceExecutor, EndlessLoopsStopAtTheIterationCap) {
  auto cond = std::make_shared<ir::Graph>();
  cond->AddInput("v", DType::kFloat32, ir::SymShape::Of({2}));
  cond->AddOutput("c", cond->AddConstant("yes", Tensor::Scalar<bool>(DType::kBool, true)));
  auto body = std::make_shared<ir::Graph>();
  const ir::ValueId b_in = body->AddInput("v", DType::kFloat32, ir::SymShape::Of({2}));
  body->AddOutput("v", b_in);
  auto g = std::make_shared<ir::Graph>();
  const ir::ValueId v = g->AddInput("v", DType::kFloat32, ir::SymShape::Of({2}));
  ir::Node& n = g->AddNode("While", "forever", {v}, 1);
  n.attrs.Set("cond", cond);
  n.attrs.Set("body", body);
  ir::InferNode(*g, n.id);
  g->AddOutput("y", g->node(0).outputs[0]);
  const int64_t saved = reference::MaxLoopIterations();
  reference::SetMaxLoopIterations(1000);
  runtime::ReferenceExecutor exec(g);
  try {
    exec.Run({Tensor::FromVector<float>(DType::kFloat32, {2}, {1.0f, 2.0f})});
    ADD_FAILURE() << "the endless loop returned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("forever"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1000 iterations"), std::string::npos) << e.what();
  }
  reference::SetMaxLoopIterations(saved);
}

TEST(ReferenceExecutor, ReportsMissingKernelsByNodeName) {
  ir::Node node;
  node.name = "mystery";
  node.op = "NoSuchOp";
  try {
    reference::RunReferenceKernel(node, {}, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnimplemented);
    EXPECT_NE(std::string(e.what()).find("mystery"), std::string::npos);
  }
}

// Every IR op has a reference kernel and vice versa.
TEST(Registries, EveryIrOpHasAReferenceKernel) {
  std::vector<std::string> ops = ir::BuiltinOps().Names();
  std::vector<std::string> kernels = reference::ReferenceKernels().Names();
  for (const std::string& op : ops)
    EXPECT_NE(reference::ReferenceKernels().Find(op), nullptr) << "no kernel for IR op " << op;
  for (const std::string& k : kernels) EXPECT_NE(ir::BuiltinOps().Find(k), nullptr) << "kernel for unknown IR op " << k;
}

}  // namespace
}  // namespace kiln
