// Reference kernels and shape functions of TensorScatter (scatter with a reduction) and
// UniqueWithCounts (ONNX's Unique), on hand-computed cases (ONNX's documented examples among
// them), and their errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/unit/array_test_util.h"

namespace kiln {
namespace {

using array_test::Bool;
using array_test::F32;
using array_test::I32;
using array_test::I64;
using array_test::Mode;
using array_test::RunOp;
using testutil::Attrs;
using testutil::Doubles;
using testutil::ExpectErrorMessage;
using testutil::Ints;

ir::AttrMap Red(const std::string& r) { return Attrs({{"reduction", r}}); }

// ---- TensorScatter ----

TEST(TensorScatter, ReductionsApplyRowAfterRow) {
  const Tensor data = F32({4}, {1, 2, 3, 4});
  const Tensor idx = I64({3, 1}, {1, 1, 3});
  EXPECT_EQ(Doubles(RunOp("TensorScatter", {data, idx, F32({3}, {10, 2, 5})}, Red("mul"))->outputs[0]),
            (std::vector<double>{1, 40, 3, 20}));
  EXPECT_EQ(Doubles(RunOp("TensorScatter", {data, idx, F32({3}, {0, -1, 9})}, Red("min"))->outputs[0]),
            (std::vector<double>{1, -1, 3, 4}));
  EXPECT_EQ(Doubles(RunOp("TensorScatter", {data, idx, F32({3}, {0, 7, 9})}, Red("max"))->outputs[0]),
            (std::vector<double>{1, 7, 3, 9}));
  EXPECT_EQ(Doubles(RunOp("TensorScatter", {data, idx, F32({3}, {1, 1, 1})}, Red("add"))->outputs[0]),
            (std::vector<double>{1, 4, 3, 5}));
  // none: the last write wins.
  EXPECT_EQ(Doubles(RunOp("TensorScatter", {data, idx, F32({3}, {7, 8, 9})}, Red("none"))->outputs[0]),
            (std::vector<double>{1, 8, 3, 9}));
}

TEST(TensorScatter, SlicesIntegersBoolsStringsAndNan) {
  // Rows of a [2, 3] tensor, int32 indices, int32 values that wrap when multiplied.
  const auto rows = RunOp(
      "TensorScatter", {I32({2, 3}, {1, 2, 3, 65536, 5, 6}), I32({1, 1}, {1}), I32({1, 3}, {65536, 2, 3})}, Red("mul"));
  EXPECT_EQ(Ints(rows->outputs[0]), (std::vector<int64_t>{1, 2, 3, 0, 10, 18}));
  // uint16 products are formed without int overflow: 300 * 300 = 90000 = 24464 mod 65536.
  const Tensor u16 = array_test::Make<uint16_t>(DType::kUInt16, {1}, {300});
  const auto wrapped = RunOp("TensorScatter", {u16, I64({1, 1}, {0}), u16}, Red("mul"));
  EXPECT_EQ(wrapped->outputs[0].data<uint16_t>()[0], 24464);
  // bool: max is or, min is and.
  const Tensor b = Bool({2}, {false, true});
  EXPECT_EQ(Ints(RunOp("TensorScatter", {b, I64({2, 1}, {0, 1}), Bool({2}, {true, false})}, Red("max"))->outputs[0]),
            (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(Ints(RunOp("TensorScatter", {b, I64({2, 1}, {0, 1}), Bool({2}, {true, false})}, Red("min"))->outputs[0]),
            (std::vector<int64_t>{0, 0}));
  // NaN propagates through min and max (as numpy's minimum / maximum).
  const auto nan = RunOp("TensorScatter", {F32({2}, {NAN, 1}), I64({2, 1}, {0, 1}), F32({2}, {5, NAN})}, Red("max"));
  EXPECT_TRUE(std::isnan(nan->outputs[0].data<float>()[0]));
  EXPECT_TRUE(std::isnan(nan->outputs[0].data<float>()[1]));
  // Strings with reduction none.
  Tensor s(DType::kString, {2});
  s.strings() = {"a", "b"};
  Tensor u(DType::kString, {1});
  u.strings() = {"z"};
  const auto str = RunOp("TensorScatter", {s, I64({1, 1}, {1}), u}, Red("none"));
  EXPECT_EQ(str->outputs[0].strings(), (std::vector<std::string>{"a", "z"}));
}

TEST(TensorScatter, Errors) {
  const Tensor data = F32({4}, {1, 2, 3, 4});
  ExpectErrorMessage(
      [&] {
        RunOp("TensorScatter", {data, I64({1, 1}, {4}), F32({1}, {0})}, Red("mul"));
      },
      {"node 'node' (TensorScatter)", "indices[0] = [4] does not index into tensor shape [4]"});
  ExpectErrorMessage(
      [&] {
        RunOp("TensorScatter", {data, I64({1, 1}, {-1}), F32({1}, {0})}, Red("mul"));
      },
      {"does not index into tensor shape [4]"});
  ExpectErrorMessage(
      [&] {
        RunOp("TensorScatter", {data, I64({2, 1}, {0, 1}), F32({3}, {0, 0, 0})}, Red("mul"));
      },
      {"updates must have shape [2]"});
  ExpectErrorMessage(
      [&] {
        RunOp("TensorScatter", {data, I64({1, 1}, {0}), F32({1}, {0})}, Red("sub"));
      },
      {"reduction 'sub' is not one of none, add, mul, min, max"});
  ExpectErrorMessage(
      [&] {
        RunOp("TensorScatter", {data, I64({1, 2}, {0, 0}), F32({1}, {0})}, Red("add"));
      },
      {"address more dims than the tensor"});
  ExpectErrorMessage(
      [&] {
        RunOp("TensorScatter", {data, I64({1, 1}, {0}), I64({1}, {0})}, Red("add"));
      },
      {"updates must have the tensor's dtype float32"});
  // Shapes known only at run time: the kernel checks them itself.
  ExpectErrorMessage(
      [&] {
        RunOp("TensorScatter", {data, I64({2, 1}, {0, 1}), F32({3}, {0, 0, 0})}, Red("max"), 1, Mode::kUnknown);
      },
      {"updates shape [3] must be [2]"});
}

// ---- UniqueWithCounts ----

struct Unique {
  std::vector<double> y;
  Shape y_shape;
  std::vector<int64_t> idx, count, first;
};

Unique RunUnique(const Tensor& x, ir::AttrMap attrs, Mode mode = Mode::kConst) {
  const auto r = RunOp("UniqueWithCounts", {x}, std::move(attrs), 4, mode);
  return {x.dtype() == DType::kString ? std::vector<double>{} : Doubles(r->outputs[0]), r->outputs[0].shape(),
          Ints(r->outputs[1]), Ints(r->outputs[2]), Ints(r->outputs[3])};
}

TEST(UniqueWithCounts, OnnxExamples) {
  // ONNX's Unique examples 1 to 3.
  Unique u = RunUnique(F32({6}, {2, 1, 1, 3, 4, 3}), Attrs({{"sorted", false}}));
  EXPECT_EQ(u.y, (std::vector<double>{2, 1, 3, 4}));
  EXPECT_EQ(u.first, (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(u.idx, (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(u.count, (std::vector<int64_t>{1, 2, 2, 1}));
  u = RunUnique(F32({2, 2}, {1, 3, 2, 3}), Attrs({{"sorted", true}}));
  EXPECT_EQ(u.y, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(u.first, (std::vector<int64_t>{0, 2, 1}));
  EXPECT_EQ(u.idx, (std::vector<int64_t>{0, 2, 1, 2}));
  EXPECT_EQ(u.count, (std::vector<int64_t>{1, 1, 2}));
  u = RunUnique(F32({3, 3}, {1, 0, 0, 1, 0, 0, 2, 3, 4}), Attrs({{"sorted", true}, {"axis", int64_t{0}}}));
  EXPECT_EQ(u.y_shape, (Shape{2, 3}));
  EXPECT_EQ(u.y, (std::vector<double>{1, 0, 0, 2, 3, 4}));
  EXPECT_EQ(u.first, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(u.idx, (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(u.count, (std::vector<int64_t>{2, 1}));
}

TEST(UniqueWithCounts, SlicesAlongAMiddleAxisSortLexicographically) {
  // [2, 4, 2]: slices x[:, i, :] are [1,1,1,1], [0,1,0,1], [2,1,2,1], [0,1,0,1].
  const Tensor x = F32({2, 4, 2}, {1, 1, 0, 1, 2, 1, 0, 1, 1, 1, 0, 1, 2, 1, 0, 1});
  Unique u = RunUnique(x, Attrs({{"sorted", true}, {"axis", int64_t{-2}}}));
  EXPECT_EQ(u.y_shape, (Shape{2, 3, 2}));
  EXPECT_EQ(u.y, (std::vector<double>{0, 1, 1, 1, 2, 1, 0, 1, 1, 1, 2, 1}));
  EXPECT_EQ(u.first, (std::vector<int64_t>{1, 0, 2}));
  EXPECT_EQ(u.idx, (std::vector<int64_t>{1, 0, 2, 0}));
  EXPECT_EQ(u.count, (std::vector<int64_t>{2, 1, 1}));
  // Unsorted: order of first occurrence.
  u = RunUnique(x, Attrs({{"sorted", false}, {"axis", int64_t{1}}}));
  EXPECT_EQ(u.first, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(u.idx, (std::vector<int64_t>{0, 1, 2, 1}));
}

TEST(UniqueWithCounts, NanZeroesStringsAndIndexTypes) {
  // NaNs form one value sorted last; 0 and -0 are one value (the first occurrence kept).
  Unique u = RunUnique(F32({5}, {NAN, -0.0f, 1, 0, NAN}), Attrs({{"sorted", true}}));
  ASSERT_EQ(u.y.size(), 3u);
  EXPECT_TRUE(std::signbit(u.y[0]));
  EXPECT_EQ(u.y[1], 1);
  EXPECT_TRUE(std::isnan(u.y[2]));
  EXPECT_EQ(u.count, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(u.first, (std::vector<int64_t>{1, 2, 0}));
  Tensor s(DType::kString, {4});
  s.strings() = {"b", "a", "b", "ab"};
  const auto r = RunOp("UniqueWithCounts", {s}, Attrs({{"sorted", true}, {"out_idx", DType::kInt32}}), 4);
  EXPECT_EQ(r->outputs[0].strings(), (std::vector<std::string>{"a", "ab", "b"}));
  EXPECT_EQ(r->outputs[1].dtype(), DType::kInt32);
  EXPECT_EQ(Ints(r->outputs[1]), (std::vector<int64_t>{2, 0, 2, 1}));
  // An empty input has no unique values.
  u = RunUnique(F32({0}, {}), Attrs({{"sorted", true}}));
  EXPECT_TRUE(u.y.empty());
  EXPECT_TRUE(u.count.empty());
}

TEST(UniqueWithCounts, ShapesAndErrors) {
  const auto r = RunOp("UniqueWithCounts", {F32({3, 5}, std::vector<float>(15, 1))}, Attrs({{"axis", int64_t{1}}}), 4,
                       Mode::kConst, /*run=*/false);
  EXPECT_EQ(r->graph.ShapeToString(r->out(0).shape), "[3,?]");
  EXPECT_EQ(r->graph.ShapeToString(r->out(1).shape), "[5]");
  ExpectErrorMessage(
      [&] {
        RunOp("UniqueWithCounts", {F32({3}, {1, 2, 3})}, Attrs({{"axis", int64_t{1}}}), 4);
      },
      {"node 'node' (UniqueWithCounts)", "axis 1 is out of range"});
  ExpectErrorMessage(
      [&] {
        RunOp("UniqueWithCounts", {F32({3}, {1, 2, 3})}, {}, 2);
      },
      {"expected 4 outputs (y, idx, count, first_index), got 2"});
  ExpectErrorMessage(
      [&] {
        RunOp("UniqueWithCounts", {F32({3}, {1, 2, 3})}, Attrs({{"out_idx", DType::kFloat32}}), 4);
      },
      {"out_idx must be int32 or int64"});
  ExpectErrorMessage(
      [&] {
        RunOp("UniqueWithCounts", {F32({3}, {1, 2, 3})}, Attrs({{"axis", int64_t{2}}}), 4, Mode::kUnknown);
      },
      {"axis 2 is out of range"});
}

}  // namespace
}  // namespace kiln
