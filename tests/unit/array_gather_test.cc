// Array family: Gather (axis, batch_dims), GatherNd, ScatterNd, OneHot, Where, Unique, TopK.
#include "tests/unit/array_test_util.h"

namespace kiln {
namespace {

using namespace array_test;

ir::AttrMap BatchDims(int64_t b) { return Attrs({{"batch_dims", b}}); }

// ---- Gather ----

TEST(ArrayGather, Axis0) {
  auto r = RunOp("Gather", {Iota({3, 2}), Vec({2, 0}), Scalar(0)}, BatchDims(0));
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {4, 5, 0, 1});
  EXPECT_EQ(ShapeOf(*r), "[2,2]");
  r = RunOp("Gather", {I32({3}, {10, 20, 30}), I64({2, 2}, {0, 2, 1, 1}), Scalar(0)}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt32, {2, 2}, {10, 30, 20, 20});
}

TEST(ArrayGather, Axis1AndNegativeAxis) {
  // params[r, c] = 3r + c; gather columns 2, 0.
  auto r = RunOp("Gather", {Iota({2, 3}), Vec({2, 0}), Scalar(1)});
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {2, 0, 5, 3});
  r = RunOp("Gather", {Iota({2, 3}), Vec({2, 0}), Scalar(-1)}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {2, 0, 5, 3});
}

TEST(ArrayGather, BatchDims1Axis1) {
  // out[b, j] = params[b, indices[b, j]]
  auto r = RunOp("Gather", {Iota({2, 3}), I32({2, 2}, {2, 0, 1, 1}), Scalar(1)}, BatchDims(1));
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {2, 0, 4, 4});
  EXPECT_EQ(ShapeOf(*r), "[2,2]");
  // With an inner dim: params [2,3,2], indices [2,1] -> [2,1,2].
  r = RunOp("Gather", {Iota({2, 3, 2}), I32({2, 1}, {2, 0}), Scalar(1)}, BatchDims(1), 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 1, 2}, {4, 5, 6, 7});
  // Negative batch_dims counts from the indices' rank.
  r = RunOp("Gather", {Iota({2, 3}), I32({2, 2}, {2, 0, 1, 1}), Scalar(1)}, BatchDims(-1));
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {2, 0, 4, 4});
  ExpectError([] { RunOp("Gather", {Iota({2, 3}), I32({2, 2}, {2, 0, 1, 1}), Scalar(0)}, BatchDims(1)); },
              "batch_dims (1) must be <= axis (0)");
  ExpectError([] { RunOp("Gather", {Iota({2, 3}), I32({3, 1}, {0, 0, 0}), Scalar(1)}, BatchDims(1), 1, Mode::kUnknown); },
              "params.shape[0] = 2 must equal indices.shape[0] = 3");
}

TEST(ArrayGather, OutOfRange) {
  ExpectError([] { RunOp("Gather", {Iota({3, 2}), Vec({0, 3}), Scalar(0)}); }, "node 'node' (Gather): indices[1] = 3 is not in [0, 3)");
  ExpectError([] { RunOp("Gather", {Iota({3, 2}), I32({2, 2}, {0, 1, -1, 0}), Scalar(0)}); }, "indices[1,0] = -1 is not in [0, 3)");
  ExpectError([] { RunOp("Gather", {Iota({3, 2}), Vec({0}), Scalar(2)}); }, "axis 2 is out of range [-2, 2)");
}

TEST(ArrayGather, Strings) {
  Tensor s(DType::kString, {3});
  s.strings() = {"a", "bb", "ccc"};
  auto r = RunOp("Gather", {s, Vec({2, 2, 0}), Scalar(0)});
  EXPECT_EQ(r->outputs[0].strings(), (std::vector<std::string>{"ccc", "ccc", "a"}));
}

// ---- GatherNd / ScatterNd ----

TEST(ArrayGatherNd, Values) {
  const Tensor params = I32({2, 2}, {1, 2, 3, 4});
  auto r = RunOp("GatherNd", {params, I32({2, 2}, {0, 0, 1, 1})});
  ExpectTensor(r->outputs[0], DType::kInt32, {2}, {1, 4});
  r = RunOp("GatherNd", {params, I32({2, 1}, {1, 0})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt32, {2, 2}, {3, 4, 1, 2});
  ExpectError([&] { RunOp("GatherNd", {params, I32({1, 2}, {2, 0})}); }, "indices[0] = [2,0] does not index into params shape [2,2]");
}

TEST(ArrayScatterNd, Values) {
  auto r = RunOp("ScatterNd", {I32({4, 1}, {4, 3, 1, 7}), I32({4}, {9, 10, 11, 12}), Vec({8})}, {}, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt32, {8}, {0, 11, 0, 10, 9, 0, 0, 12});
  // Duplicates add up.
  r = RunOp("ScatterNd", {I32({2, 1}, {1, 1}), F32({2}, {1.5f, 2}), Vec({3})}, {}, 1, Mode::kConst);
  ExpectTensor(r->outputs[0], DType::kFloat32, {3}, {0, 3.5, 0});
  ExpectError([] { RunOp("ScatterNd", {I32({1, 1}, {8}), I32({1}, {1}), Vec({8})}, {}, 1, Mode::kDynamic); },
              "indices[0] = [8] does not index into output shape [8]");
}

// ---- OneHot ----

TEST(ArrayOneHot, Axes) {
  ir::AttrMap last;
  last.Set("axis", int64_t{-1});
  auto r = RunOp("OneHot", {Vec({0, 2, -1, 1}), Scalar(3), F32({}, {5}), F32({}, {0})}, last);
  ExpectTensor(r->outputs[0], DType::kFloat32, {4, 3}, {5, 0, 0, 0, 0, 5, 0, 0, 0, 0, 5, 0});
  EXPECT_EQ(ShapeOf(*r), "[4,3]");
  ir::AttrMap first;
  first.Set("axis", int64_t{0});
  r = RunOp("OneHot", {Vec({0, 2, -1, 1}), Scalar(3), F32({}, {5}), F32({}, {0})}, first, 1, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kFloat32, {3, 4}, {5, 0, 0, 0, 0, 0, 0, 5, 0, 5, 0, 0});
}

// ---- Where / Unique / TopK ----

TEST(ArrayWhere, Coordinates) {
  auto r = RunOp("Where", {Bool({2, 2}, {true, false, false, true})});
  ExpectTensor(r->outputs[0], DType::kInt64, {2, 2}, {0, 0, 1, 1});
  EXPECT_EQ(ShapeOf(*r), "[?,2]");
  r = RunOp("Where", {F32({4}, {0, 3, 0, -1})});
  ExpectTensor(r->outputs[0], DType::kInt64, {2, 1}, {1, 3});
  r = RunOp("Where", {I32({2, 2}, {0, 0, 0, 0})});
  ExpectTensor(r->outputs[0], DType::kInt64, {0, 2}, {});
}

TEST(ArrayUnique, FirstOccurrenceOrder) {
  ir::AttrMap a;
  a.Set("out_idx", DType::kInt64);
  auto r = RunOp("Unique", {I32({9}, {1, 1, 2, 4, 4, 4, 7, 8, 8})}, a, 2);
  ExpectTensor(r->outputs[0], DType::kInt32, {5}, {1, 2, 4, 7, 8});
  ExpectTensor(r->outputs[1], DType::kInt64, {9}, {0, 0, 1, 2, 2, 2, 3, 4, 4});
  EXPECT_EQ(ShapeOf(*r, 1), "[9]");
}

TEST(ArrayTopK, TiesLowerIndexFirst) {
  auto r = RunOp("TopK", {F32({2, 4}, {1, 3, 3, 2, 5, 5, 5, 5}), Scalar(2)}, {}, 2);
  ExpectTensor(r->outputs[0], DType::kFloat32, {2, 2}, {3, 3, 5, 5});
  ExpectTensor(r->outputs[1], DType::kInt32, {2, 2}, {1, 2, 0, 1});
  r = RunOp("TopK", {I64({4}, {1, 3, 3, 2}), Scalar(4)}, {}, 2, Mode::kDynamic);
  ExpectTensor(r->outputs[0], DType::kInt64, {4}, {3, 3, 2, 1});
  ExpectTensor(r->outputs[1], DType::kInt32, {4}, {1, 2, 3, 0});
  ExpectError([] { RunOp("TopK", {F32({3}, {1, 2, 3}), Scalar(5)}, {}, 2, Mode::kDynamic); },
              "input must have at least k = 5 columns, got shape [3]");
}

}  // namespace
}  // namespace kiln
