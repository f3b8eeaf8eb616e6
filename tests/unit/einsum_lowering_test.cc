// Einsum lowering: two-operand equations of every label kind (batch, kept, contracted, summed
// alone; empty groups; symbolic dims) become Transpose / Reshape / MatMul / BatchMatMul graphs
// that compute what the Einsum reference kernel computes, with symbolic output shapes kept.
#include <fmt/format.h>

#include "ir/passes/pass.h"
#include "tests/unit/cpu_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using cputest::Builder;

struct Case {
  std::string equation;
  std::vector<int64_t> a, b;
};

class EinsumLowering : public ::testing::TestWithParam<Case> {};

TEST_P(EinsumLowering, MatchesTheEinsumKernel) {
  const Case& c = GetParam();
  Builder b;
  // The first dim of each operand is symbolic (a batch a model would leave dynamic).
  const ir::Dim n = b.Symbol("n");
  std::vector<ir::Dim> da(c.a.begin(), c.a.end()), db(c.b.begin(), c.b.end());
  if (!da.empty()) da[0] = n;
  const ir::ValueId x = b.Input("x", da);
  const ir::ValueId y = b.Const("y", cputest::RandScaled(Shape(c.b.begin(), c.b.end()), 5, 1.0f));
  ir::AttrMap attrs;
  attrs.Set("equation", c.equation);
  b.Output("z", b.Op("Einsum", "einsum", {x, y}, attrs));
  const ir::SymShape before = b.g->value(b.g->outputs()[0]).shape;
  auto lowered = std::make_shared<ir::Graph>(b.g->Clone());
  ir::PassPipeline pipeline;
  pipeline.Add(ir::MakeEinsumLowering());
  pipeline.Add(ir::MakeDeadCodeElimination());
  pipeline.Run(*lowered);
  for (const ir::Node& node : lowered->nodes()) EXPECT_TRUE(node.removed || node.op != "Einsum") << c.equation;
  // The same output shape, symbols kept (where the constant operand fixes a dim, e.g. the batch
  // of "ij,ij->i", one side may know it statically and the other by its symbol).
  const ir::SymShape after = lowered->value(lowered->outputs()[0]).shape;
  ASSERT_TRUE(after.rank_known) << c.equation;
  ASSERT_EQ(after.rank(), before.rank()) << c.equation;
  for (int d = 0; d < before.rank(); ++d)
    EXPECT_TRUE(after.dims[static_cast<size_t>(d)] == before.dims[static_cast<size_t>(d)] ||
                ir::IsStatic(before.dims[static_cast<size_t>(d)]) != ir::IsStatic(after.dims[static_cast<size_t>(d)]))
        << c.equation << ": " << lowered->ShapeToString(after) << " vs " << b.g->ShapeToString(before);
  const Tensor in = cputest::RandScaled(Shape(c.a.begin(), c.a.end()), 6, 1.0f);
  const Tensor want = runtime::ReferenceExecutor(b.g).Run({in})[0];
  const Tensor got = runtime::ReferenceExecutor(lowered).Run({in})[0];
  ASSERT_EQ(got.shape(), want.shape()) << c.equation;
  EXPECT_LE(testutil::RelativeL2Error(got, want), 1e-6) << c.equation;
}

INSTANTIATE_TEST_SUITE_P(Equations, EinsumLowering,
                         ::testing::Values(Case{"abc,cd->abd", {2, 5, 8}, {8, 6}},       // Keras EinsumDense
                                           Case{"abc,cde->abde", {2, 5, 8}, {8, 3, 4}},  // query/key/value projections
                                           Case{"abcd,cde->abe", {2, 5, 3, 4}, {3, 4, 8}},       // attention output
                                           Case{"aecd,abcd->acbe", {2, 5, 3, 4}, {2, 6, 3, 4}},  // scores: batch a, c
                                           Case{"acbe,aecd->abcd", {2, 3, 6, 5}, {2, 5, 3, 4}},  // weighted values
                                           Case{"ij,j->i", {4, 6}, {6}},                         // no n
                                           Case{"i,i->", {7}, {7}},  // dot product: no m, no n
                                           Case{"ij,kj->ik", {4, 6}, {5, 6}},
                                           Case{"ij,ij->i", {4, 6}, {4, 6}},       // batch i, contracted j
                                           Case{"ijk,jl->il", {3, 4, 5}, {4, 2}},  // k summed alone
                                           Case{"ij,kl->ijkl", {3, 2}, {4, 5}}),   // outer product: no k
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return "case" + std::to_string(info.index);
                         });

}  // namespace
}  // namespace kiln
