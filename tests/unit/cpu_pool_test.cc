// cpu.Pool2D: MaxPool / AvgPool (NHWC and NCHW; VALID, SAME and EXPLICIT padding; strides) run
// oneDNN's pooling in CPU engines and match the reference kernels (max exactly; average to float
// summation order: the reference sums in double).
#include <fmt/format.h>

#include "tests/unit/cpu_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using namespace cputest;

TEST(CpuPool, MaxAndAvgPoolRunOneDnnAndMatchTheReference) {
  Builder b;
  const ir::ValueId x = b.Input("x", {2, 13, 11, 8});
  b.Output("max_same", b.Op("MaxPool", "max_same", {x}, PoolAttrs("NHWC", "SAME", {3, 3}, {2, 2})));
  b.Output("avg_same", b.Op("AvgPool", "avg_same", {x}, PoolAttrs("NHWC", "SAME", {3, 3}, {2, 2})));
  b.Output("avg_valid", b.Op("AvgPool", "avg_valid", {x}, PoolAttrs("NHWC", "VALID", {2, 3}, {1, 2})));
  const ir::ValueId z = b.Input("z", {1, 6, 9, 9});
  b.Output("max_nchw", b.Op("MaxPool", "max_nchw", {z}, PoolAttrs("NCHW", "EXPLICIT", {3, 3}, {2, 2}, {1, 0, 0, 1})));
  b.Output("avg_nchw", b.Op("AvgPool", "avg_nchw", {z}, PoolAttrs("NCHW", "EXPLICIT", {3, 2}, {1, 1}, {1, 1, 0, 1})));
  const std::vector<Shape> shapes = {{2, 13, 11, 8}, {1, 6, 9, 9}};
  auto engine = backend::cpu::CpuBackend().Compile(*b.g, ExactProfile(shapes), {});
  EXPECT_EQ(CountOps(*engine, "cpu.Pool2D"), 5);
  for (const auto& s : dynamic_cast<const backend::cpu::CpuEngine&>(*engine).steps())
    if (s.op == "cpu.Pool2D") {
      EXPECT_EQ(s.kernel.rfind("onednn:", 0), 0u) << s.node << ": " << s.kernel;
    }
  runtime::ReferenceExecutor ref(b.g);
  const std::vector<Tensor> in = {RandF32(shapes[0], 3), RandF32(shapes[1], 4)};
  const auto want = ref.Run(in), got = engine->Execute(in);
  ASSERT_EQ(got.size(), 5u);
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = i == 0 || i == 3 ? 0 : 1e-6;  // max pooling picks an element: exact
    ExpectClose(got[i], want[i], tol, b.g->output_names()[i]);
  }
}

}  // namespace
}  // namespace kiln
