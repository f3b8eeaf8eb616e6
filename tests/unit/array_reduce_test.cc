// Array family: reductions (keep_dims, negative axes, integer Mean), ArgMax/ArgMin, Cumsum/Cumprod.
#include <cmath>
#include <limits>

#include "tests/unit/array_test_util.h"

namespace kiln {
namespace {

using namespace array_test;

ir::AttrMap Keep(bool keep) { return Attrs({{"keep_dims", keep}}); }

// x = [[0,1,2],[3,4,5]]
TEST(ArrayReduce, SumAxesAndKeepDims) {
  auto r = RunOp("ReduceSum", {Iota({2, 3}), Vec({0})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kFloat32, {3}, {3, 5, 7});
  EXPECT_EQ(ShapeOf(*r), "[3]");
  r = RunOp("ReduceSum", {Iota({2, 3}), Scalar(-1)}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kFloat32, {2}, {3, 12});
  r = RunOp("ReduceSum", {Iota({2, 3}), Vec({-1})}, Keep(true));
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 1}, {3, 12});
  EXPECT_EQ(ShapeOf(*r), "[2,1]");
  r = RunOp("ReduceSum", {Iota({2, 3}), Vec({0, -1})}, Keep(true), 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {1, 1}, {15});
  r = RunOp("ReduceSum", {Iota({2, 3}), Vec({1, 0, 1})}, Keep(false));  // repeated axes are allowed
  ExpectTensor(r->outputs[0], DType::kFloat32, {}, {15});
  r = RunOp("ReduceSum", {Iota({2, 3}), I32({0}, {})}, Keep(false));  // no axes: identity
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 3}, {0, 1, 2, 3, 4, 5});
  ExpectError([] { RunOp("ReduceSum", {Iota({2, 3}), Vec({2})}, Keep(false)); }, "reduction axis 2 is out of range [-2, 2)");
  ExpectError([] { RunOp("ReduceSum", {Iota({2, 3}), Vec({-3})}, Keep(false), 1, Mode::kDynamic); },
              "node 'node' (ReduceSum): reduction axis -3 is out of range [-2, 2) for shape [2,3]");
}

TEST(ArrayReduce, MeanProdMaxMin) {
  auto r = RunOp("ReduceMean", {Iota({2, 3}), Vec({1})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kFloat32, {2}, {1, 4});
  // Integer Mean truncates toward zero.
  r = RunOp("ReduceMean", {I32({3, 2}, {1, 2, 3, 5, -3, -4}), Vec({1})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kInt32, {3}, {1, 4, -3});
  r = RunOp("ReduceProd", {Iota({2, 3}), Vec({0})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kFloat32, {3}, {0, 4, 10});
  r = RunOp("ReduceMax", {I64({2, 3}, {3, -1, 7, 2, 9, -5}), Vec({1})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kInt64, {2}, {7, 9});
  r = RunOp("ReduceMin", {Iota({2, 3}), Vec({0})}, Keep(true));
  ExpectTensor(r->outputs[0], DType::kFloat32, {1, 3}, {0, 1, 2});
  r = RunOp("ReduceEuclideanNorm", {F32({2}, {3, 4}), Vec({0})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kFloat32, {}, {5});
}

TEST(ArrayReduce, EmptyAndPrecision) {
  auto r = RunOp("ReduceSum", {Iota({0, 3}), Vec({0})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kFloat32, {3}, {0, 0, 0});
  r = RunOp("ReduceMax", {Iota({0, 2}), Vec({0})}, Keep(false));
  EXPECT_EQ(r->outputs[0].data<float>()[0], -std::numeric_limits<float>::infinity());
  r = RunOp("ReduceProd", {Iota({2, 0}), Vec({1})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kFloat32, {2}, {1, 1});
  // float32 sums accumulate in double: 1e8 + 1 - 1e8 == 1.
  r = RunOp("ReduceSum", {F32({3}, {1e8f, 1, -1e8f}), Vec({0})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kFloat32, {}, {1});
}

TEST(ArrayReduce, AllAny) {
  const Tensor x = Bool({2, 2}, {true, false, true, true});
  auto r = RunOp("ReduceAll", {x, Vec({1})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kBool, {2}, {0, 1});
  r = RunOp("ReduceAny", {x, Vec({0})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kBool, {2}, {1, 1});
  r = RunOp("ReduceAll", {Bool({0}, {}), Vec({0})}, Keep(false));
  ExpectTensor(r->outputs[0], DType::kBool, {}, {1});
}

TEST(ArrayArgMax, TiesAndOutputType) {
  const Tensor x = F32({2, 3}, {1, 5, 5, 7, 2, 7});
  auto r = RunOp("ArgMax", {x, Scalar(1)});
  ExpectTensor(r->outputs[0], DType::kInt64, {2}, {1, 0});  // ties: lowest index
  ir::AttrMap a;
  a.Set("output_type", DType::kInt32);
  r = RunOp("ArgMax", {x, Scalar(-1)}, a, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt32, {2}, {1, 0});
  r = RunOp("ArgMin", {x, Scalar(0)});
  ExpectTensor(r->outputs[0], DType::kInt64, {3}, {0, 1, 0});
  ExpectError([] { RunOp("ArgMax", {Iota({2, 0}), Scalar(1)}, {}, 1, Mode::kUnknown); }, "reduction axis 1 is empty in shape [2,0]");
}

ir::AttrMap Cum(bool exclusive, bool reverse) {
  ir::AttrMap a;
  a.Set("exclusive", exclusive);
  a.Set("reverse", reverse);
  return a;
}

TEST(ArrayCumulative, ExclusiveReverse) {
  const Tensor x = I32({4}, {1, 2, 3, 4});
  ExpectTensor(RunOp("Cumsum", {x, Scalar(0)}, Cum(false, false))->outputs[0], DType::kInt32, {4}, {1, 3, 6, 10});
  ExpectTensor(RunOp("Cumsum", {x, Scalar(0)}, Cum(true, false))->outputs[0], DType::kInt32, {4}, {0, 1, 3, 6});
  ExpectTensor(RunOp("Cumsum", {x, Scalar(-1)}, Cum(false, true))->outputs[0], DType::kInt32, {4}, {10, 9, 7, 4});
  ExpectTensor(RunOp("Cumsum", {x, Scalar(0)}, Cum(true, true))->outputs[0], DType::kInt32, {4}, {9, 7, 4, 0});
  ExpectTensor(RunOp("Cumprod", {x, Scalar(0)}, Cum(false, false))->outputs[0], DType::kInt32, {4}, {1, 2, 6, 24});
  ExpectTensor(RunOp("Cumprod", {x, Scalar(0)}, Cum(true, false))->outputs[0], DType::kInt32, {4}, {1, 1, 2, 6});
  ExpectTensor(RunOp("Cumprod", {x, Scalar(0)}, Cum(false, true))->outputs[0], DType::kInt32, {4}, {24, 24, 12, 4});
  // Along axis 0 of a matrix.
  ExpectTensor(RunOp("Cumsum", {Iota({2, 3}), Scalar(0)}, Cum(false, false))->outputs[0], DType::kFloat32, {2, 3}, {0, 1, 2, 3, 5, 7});
}

}  // namespace
}  // namespace kiln
