// keras-rnn-fusion: a SimpleRNN loop built the way Keras 3 exports it (TensorList GetItem /
// SetItem, counter and time, LogicalAnd of two Less) becomes one RNN node whose outputs equal the
// loop's on the reference executor; the same loop with a Relu cell, or a time limit other than
// the sequence length, stays a While loop.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/op_schema.h"
#include "ir/passes/pass.h"
#include "runtime/executor.h"
#include "tests/unit/array_test_util.h"

namespace kiln {
namespace {

using array_test::Scalar;
using array_test::Vec;
using testutil::Attrs;

constexpr int64_t kSteps = 5, kInput = 3, kUnits = 4;

Tensor Ramp(Shape shape, float scale, float offset) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.num_elements(); ++i)
    t.data<float>()[i] = scale * std::sin(static_cast<float>(i) * 0.7f + offset);
  return t;
}

// Adds a node, infers it and returns its outputs (ids only: AddNode may move nodes).
std::vector<ir::ValueId> Add(ir::Graph& g, const char* op, std::vector<ir::ValueId> in, ir::AttrMap attrs = {},
                             int outs = 1) {
  ir::Node& n = g.AddNode(op, std::string(op) + std::to_string(g.nodes().size()), std::move(in), outs);
  n.attrs = std::move(attrs);
  const ir::NodeId id = n.id;
  ir::InferNode(g, id);
  return g.node(id).outputs;
}

// y = Stack(While(...)): x [B, T, I] transposed to [T, B, I]; the body computes
// h' = act(x_t K + b + h R) and writes it at `time`. `time_limit` is the cond's constant.
std::shared_ptr<ir::Graph> RnnLoopGraph(const char* activation, int64_t time_limit) {
  // Loop variables: counter, max, time, list, h, xs.
  auto vars = [](ir::Graph& g) {
    std::vector<ir::ValueId> v;
    v.push_back(g.AddInput("counter", DType::kInt32, ir::SymShape::Scalar()));
    v.push_back(g.AddInput("max", DType::kInt32, ir::SymShape::Scalar()));
    v.push_back(g.AddInput("time", DType::kInt32, ir::SymShape::Scalar()));
    v.push_back(g.AddInput("list", DType::kFloat32, ir::SymShape::Of({-1, -1, -1})));
    v.push_back(g.AddInput("h", DType::kFloat32, ir::SymShape::Of({-1, -1})));
    v.push_back(g.AddInput("xs", DType::kFloat32, ir::SymShape::Of({-1, -1, -1})));
    return v;
  };
  auto cond = std::make_shared<ir::Graph>();
  {
    const auto v = vars(*cond);
    const ir::ValueId a = Add(*cond, "Less", {v[0], v[1]})[0];
    const ir::ValueId b =
        Add(*cond, "Less", {v[2], cond->AddConstant("limit", Scalar(static_cast<int32_t>(time_limit)))})[0];
    cond->AddOutput("c", Add(*cond, "LogicalAnd", {a, b})[0]);
  }
  auto body = std::make_shared<ir::Graph>();
  {
    ir::Graph& g = *body;
    const auto v = vars(g);
    const ir::ValueId x_t = Add(g, "TensorListGetItem", {v[5], v[2], g.AddConstant("es", Vec({-1, kInput}))})[0];
    const ir::ValueId xk = Add(g, "MatMul", {x_t, g.AddConstant("K", Ramp({kInput, kUnits}, 0.5f, 0.1f))})[0];
    const ir::ValueId xb = Add(g, "Add", {xk, g.AddConstant("b", Ramp({kUnits}, 0.2f, 1.0f))})[0];
    const ir::ValueId hr = Add(g, "MatMul", {v[4], g.AddConstant("R", Ramp({kUnits, kUnits}, 0.4f, 2.0f))})[0];
    const ir::ValueId h = Add(g, activation, {Add(g, "Add", {xb, hr})[0]})[0];
    const ir::ValueId one = g.AddConstant("one", Scalar(1));
    g.AddOutput("counter", Add(g, "Add", {v[0], one})[0]);
    g.AddOutput("max", v[1]);
    g.AddOutput("time", Add(g, "Add", {v[2], one})[0]);
    g.AddOutput("list", Add(g, "TensorListSetItem", {v[3], v[2], h})[0]);
    g.AddOutput("h", h);
    g.AddOutput("xs", v[5]);
  }
  auto g = std::make_shared<ir::Graph>();
  const ir::Dim batch = g->NewSymbol("x.0");
  const ir::ValueId x = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({batch, kSteps, kInput}));
  const ir::ValueId xs = Add(*g, "Transpose", {x, g->AddConstant("perm", Vec({1, 0, 2}))})[0];
  const ir::ValueId steps = g->AddConstant("steps", Scalar(kSteps));
  const ir::ValueId list = Add(*g, "TensorListReserve", {g->AddConstant("es", Vec({-1, kUnits})), steps},
                               Attrs({{"element_dtype", DType::kFloat32}}))[0];
  const ir::ValueId h0 = Add(*g, "ZerosLike",
                             {Add(*g, "MatMul",
                                  {Add(*g, "Reshape", {x, g->AddConstant("flat", Vec({-1, kSteps * kInput}))})[0],
                                   g->AddConstant("z", Tensor(DType::kFloat32, {kSteps * kInput, kUnits}))})[0]})[0];
  ir::AttrMap loop;
  loop.Set("cond", cond);
  loop.Set("body", body);
  const ir::ValueId zero = g->AddConstant("zero", Scalar(0));
  const auto outs = Add(*g, "While", {zero, steps, zero, list, h0, xs}, std::move(loop), 6);
  g->AddOutput("y", Add(*g, "TensorListStack", {outs[3], g->AddConstant("es2", Vec({-1, kUnits}))},
                        Attrs({{"num_elements", int64_t{kSteps}}}))[0]);
  g->AddOutput("h", outs[4]);
  return g;
}

int CountOps(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const ir::Node& node : g.nodes()) n += !node.removed && node.op == op;
  return n;
}

std::shared_ptr<ir::Graph> Fused(const ir::Graph& original) {
  auto g = std::make_shared<ir::Graph>(original.Clone());
  ir::PassPipeline p;
  p.Add(ir::MakeKerasRnnFusion());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(*g);
  return g;
}

TEST(KerasRnnFusion, SimpleRnnLoopBecomesOneRnnNodeWithTheSameResults) {
  const auto loop = RnnLoopGraph("Tanh", kSteps);
  const auto fused = Fused(*loop);
  EXPECT_EQ(CountOps(*fused, "While"), 0);
  EXPECT_EQ(CountOps(*fused, "RNN"), 1);
  for (int64_t b : {1, 3}) {
    const Tensor x = Ramp({b, kSteps, kInput}, 1.0f, 0.3f);
    const auto want = runtime::ReferenceExecutor(loop).Run({x});
    const auto got = runtime::ReferenceExecutor(fused).Run({x});
    for (size_t o = 0; o < want.size(); ++o) {
      ASSERT_EQ(ShapeToString(got[o].shape()), ShapeToString(want[o].shape())) << o;
      for (int64_t i = 0; i < want[o].num_elements(); ++i)
        EXPECT_NEAR(got[o].data<float>()[i], want[o].data<float>()[i], 1e-6) << "output " << o << " element " << i;
    }
  }
}

TEST(KerasRnnFusion, LoopsThatAreNotExactlyTheCellStay) {
  // Another activation than SimpleRNN's tanh.
  EXPECT_EQ(CountOps(*Fused(*RnnLoopGraph("Relu", kSteps)), "While"), 1);
  // The loop stops before the end of the sequence: an RNN over all of xs would be wrong.
  EXPECT_EQ(CountOps(*Fused(*RnnLoopGraph("Tanh", kSteps - 1)), "While"), 1);
}

}  // namespace
}  // namespace kiln
