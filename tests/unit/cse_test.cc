// Common subexpression elimination (ir/passes/cse.cc): repeated small constants and repeated
// nodes merge, and the graph computes the same values; different attributes, large constants and
// nodes with subgraphs stay apart.
#include <gtest/gtest.h>

#include "ir/graph_util.h"
#include "ir/passes/pass.h"
#include "runtime/executor.h"
#include "tests/unit/cpu_test_util.h"

namespace kiln {
namespace {

using cputest::Builder;

size_t Live(const ir::Graph& g, const std::string& op) {
  size_t n = 0;
  for (const ir::Node& node : g.nodes()) n += !node.removed && node.op == op;
  return n;
}

std::shared_ptr<ir::Graph> Cse(const ir::Graph& g) {
  auto out = std::make_shared<ir::Graph>(ir::CloneGraph(g));
  ir::PassPipeline p;
  p.Add(ir::MakeCommonSubexpressionElimination());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(*out);
  return out;
}

Tensor Filled(Shape shape, float v) {
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = v;
  return t;
}

TEST(CommonSubexpressionElimination, PerLayerCopiesOfAMaskBecomeOne) {
  // Three "layers", each with its own copies of the two mask constants and its own Select.
  Builder b;
  const ir::ValueId keep = b.Input("keep", {2, 8}, DType::kBool);
  const ir::ValueId x = b.Input("x", {2, 8});
  ir::ValueId h = x;
  for (int layer = 0; layer < 3; ++layer) {
    const std::string l = std::to_string(layer);
    const ir::ValueId mask = b.Op(
        "Select", "mask" + l, {keep, b.Const("zero" + l, Filled({}, 0.0f)), b.Const("lowest" + l, Filled({}, -1e30f))});
    h = b.Op("Add", "masked" + l, {h, mask});
    h = b.Op("Mul", "scaled" + l, {h, b.Const("half" + l, Filled({}, 0.5f))});
  }
  b.Output("y", h);
  const auto merged = Cse(*b.g);
  ir::Verify(*merged);
  EXPECT_EQ(Live(*merged, "Select"), 1u) << ir::GraphToText(*merged);
  EXPECT_EQ(Live(*merged, "Constant"), 3u) << ir::GraphToText(*merged);
  EXPECT_EQ(Live(*merged, "Add"), 3u);  // different inputs: all kept
  Tensor keep_values(DType::kBool, {2, 8});
  for (int64_t i = 0; i < 16; ++i) keep_values.data<bool>()[i] = i % 3 != 0;
  const std::vector<Tensor> inputs = {keep_values, cputest::RandScaled({2, 8}, 3, 1.0f)};
  const auto want = runtime::ReferenceExecutor(b.g).Run(inputs);
  const auto got = runtime::ReferenceExecutor(merged).Run(inputs);
  ASSERT_EQ(got.size(), 1u);
  for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(got[0].data<float>()[i], want[0].data<float>()[i]);
}

TEST(CommonSubexpressionElimination, DifferentAttributesAndLargeConstantsStayApart) {
  Builder b;
  const ir::ValueId x = b.Input("x", {4, 2048});
  ir::AttrMap last, first;
  last.Set("axis", int64_t{-1});
  first.Set("axis", int64_t{0});
  b.Output("a", b.Op("Softmax", "last", {x}, last));
  b.Output("b", b.Op("Softmax", "first", {x}, first));
  // Two equal 8 KiB weights are not compared (and so not merged).
  b.Output("c", b.Op("Add", "w1", {x, b.Const("big1", Filled({2048}, 1.0f))}));
  b.Output("d", b.Op("Add", "w2", {x, b.Const("big2", Filled({2048}, 1.0f))}));
  // Equal nodes that are both outputs merge; both outputs then name the one value.
  b.Output("e", b.Op("Softmax", "last_again", {x}, last));
  const auto merged = Cse(*b.g);
  EXPECT_EQ(Live(*merged, "Softmax"), 2u);
  EXPECT_EQ(Live(*merged, "Constant"), 2u);
  EXPECT_EQ(merged->outputs()[0], merged->outputs()[4]);
  const auto out = runtime::ReferenceExecutor(merged).Run({cputest::RandScaled({4, 2048}, 5, 1.0f)});
  EXPECT_EQ(out.size(), 5u);
}

}  // namespace
}  // namespace kiln
