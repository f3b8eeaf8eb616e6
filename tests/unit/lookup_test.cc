// TableLookup (a static lookup table: sorted keys, their values, a default): hits and misses for
// integer and string keys, values of every kind, a default of the keys' shape (TensorFlow's
// HashTable takes its first element for every miss), shape inference and the
// errors for tables and defaults that do not fit.
#include "tests/unit/array_test_util.h"

namespace kiln {
namespace {

using namespace array_test;

Tensor Strings(Shape shape, std::vector<std::string> v) {
  Tensor t(DType::kString, std::move(shape));
  t.strings() = std::move(v);
  return t;
}

TEST(TableLookup, FindsIntegerKeysAndGivesTheDefaultForOthers) {
  auto r = RunOp("TableLookup",
                 {I64({2, 3}, {7, 5, 1, 3, 0, 7}), I64({3}, {1, 3, 7}), I64({3}, {10, 30, 70}), I64({}, {-1})});
  ExpectTensor(r->outputs[0], DType::kInt64, {2, 3}, {70, -1, 10, 30, -1, 70});
  EXPECT_EQ(ShapeOf(*r), "[2,3]");
  // int32 keys to float values; keys at both ends of the range.
  r = RunOp("TableLookup", {I32({4}, {INT32_MIN, INT32_MAX, 2, 4}), I32({3}, {INT32_MIN, 2, INT32_MAX}),
                            F32({3}, {0.5f, 2.5f, -1.5f}), F32({}, {9.0f})});
  ExpectTensor(r->outputs[0], DType::kFloat32, {4}, {0.5, -1.5, 2.5, 9.0});
  // uint8 keys (any integer dtype), bool values.
  r = RunOp("TableLookup", {U8({3}, {200, 1, 2}), U8({2}, {1, 200}), Bool({2}, {true, true}), Bool({}, {false})});
  ExpectTensor(r->outputs[0], DType::kBool, {3}, {1, 1, 0});
}

TEST(TableLookup, AnEmptyTableGivesTheDefaultEverywhere) {
  auto r = RunOp("TableLookup", {I64({2}, {4, 5}), I64({0}, {}), F64({0}, {}), F64({}, {2.5})});
  ExpectTensor(r->outputs[0], DType::kFloat64, {2}, {2.5, 2.5});
  r = RunOp("TableLookup", {I64({0, 3}, {}), I64({1}, {4}), F64({1}, {1.0}), F64({}, {2.5})});
  ExpectTensor(r->outputs[0], DType::kFloat64, {0, 3}, {});
}

TEST(TableLookup, ADefaultOfTheKeysShapeGivesItsFirstElement) {
  auto r =
      RunOp("TableLookup", {I64({2, 2}, {1, 5, 6, 1}), I64({1}, {1}), I32({1}, {100}), I32({2, 2}, {-1, -2, -3, -4})});
  ExpectTensor(r->outputs[0], DType::kInt32, {2, 2}, {100, -1, -1, 100});
}

TEST(TableLookup, StringKeysAndValues) {
  auto r = RunOp("TableLookup",
                 {Strings({3}, {"bb", "", "a"}), Strings({3}, {"a", "bb", "c"}), I64({3}, {1, 2, 3}), I64({}, {0})});
  ExpectTensor(r->outputs[0], DType::kInt64, {3}, {2, 0, 1});
  r = RunOp("TableLookup", {I64({3}, {2, 9, 1}), I64({2}, {1, 2}), Strings({2}, {"one", "two"}), Strings({}, {"?"})});
  EXPECT_EQ(r->outputs[0].strings(), (std::vector<std::string>{"two", "?", "one"}));
}

TEST(TableLookup, RefusesTablesAndDefaultsThatDoNotFit) {
  ExpectError(
      [] {
        RunOp("TableLookup", {I64({1}, {1}), I64({2}, {3, 1}), I64({2}, {1, 2}), I64({}, {0})});
      },
      "table_keys must be strictly ascending; entries 0 and 1 are not");
  ExpectError(
      [] {
        RunOp("TableLookup", {I64({1}, {1}), I64({2}, {1, 1}), I64({2}, {1, 2}), I64({}, {0})});
      },
      "strictly ascending");
  ExpectError(
      [] {
        RunOp("TableLookup", {I64({1}, {1}), I64({2}, {1, 2}), I64({3}, {1, 2, 3}), I64({}, {0})});
      },
      "the table has 2 keys and 3 values");
  ExpectError(
      [] {
        RunOp("TableLookup", {I32({1}, {1}), I64({1}, {1}), I64({1}, {1}), I64({}, {0})});
      },
      "the table's keys are int64 but the keys looked up are int32");
  ExpectError(
      [] {
        RunOp("TableLookup", {I64({1}, {1}), I64({1}, {1}), I64({1}, {1}), I32({}, {0})});
      },
      "the table's values are int64 but default_value is int32");
  ExpectError(
      [] {
        RunOp("TableLookup", {F32({1}, {1}), F32({1}, {1}), I64({1}, {1}), I64({}, {0})});
      },
      "table_keys must have");
  ExpectError(
      [] {
        RunOp("TableLookup", {I64({2, 2}, {1, 2, 3, 4}), I64({1}, {1}), I64({1}, {1}), I64({1}, {0})});
      },
      "default_value must be a scalar or have the keys' shape [2,2], got [1]");
  ExpectError(
      [] {
        RunOp("TableLookup", {I64({1}, {1}), I64({1, 1}, {1}), I64({1}, {1}), I64({}, {0})});
      },
      "table_keys must be a vector, got rank 2");
  // The kernel's own checks, for shapes shape inference could not see.
  ExpectError(
      [] {
        RunOp("TableLookup", {I64({3}, {1, 2, 3}), I64({1}, {1}), I64({1}, {1}), I64({2}, {0, 0})}, {}, 1,
              Mode::kUnknown);
      },
      "default_value must be a scalar or have the keys' shape [3], got [2]");
}

}  // namespace
}  // namespace kiln
