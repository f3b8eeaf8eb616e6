// What a signature says about its inputs (api::SpecsOf): an integer input that indexes tables
// carries the smallest table's size, so that tools can make valid random values for it.
#include <gtest/gtest.h>

#include "api/signature_io.h"
#include "tests/unit/cpu_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using cputest::Builder;

TEST(SignatureSpecs, IntegerInputsThatIndexTablesCarryTheSmallestTablesSize) {
  Builder b;
  const ir::Dim batch = b.Symbol("batch");
  const ir::ValueId ids = b.Input("ids", {batch, 8}, DType::kInt32);
  const ir::ValueId types = b.Input("types", {batch, 8}, DType::kInt64);
  const ir::ValueId mask = b.Input("mask", {batch, 8}, DType::kInt64);
  const ir::ValueId x = b.Input("x", {batch, 8});
  auto i64 = [&](const std::string& name, int64_t v) {
    return b.Const(name, Tensor::Scalar<int64_t>(DType::kInt64, v));
  };
  // ids index a 30-row table directly and, cast and reshaped, a 12-row one: the smaller counts.
  b.Output("words",
           b.Op("Gather", "words", {b.Const("vocab", Tensor(DType::kFloat32, {30, 4})), ids, i64("axis0", 0)}));
  const ir::ValueId ids64 = b.Op("Cast", "ids64", {ids}, testutil::Attrs({{"to", DType::kInt64}}));
  const ir::ValueId flat =
      b.Op("Reshape", "flat", {ids64, b.Const("shape", Tensor::FromVector<int64_t>(DType::kInt64, {1}, {-1}))});
  b.Output("small",
           b.Op("Gather", "small", {b.Const("table12", Tensor(DType::kFloat32, {12, 2})), flat, i64("axis1", 0)}));
  // types go through the importers' wrap of negative indices into a table of 2 rows along axis 1.
  const ir::ValueId negative = b.Op("Less", "neg", {types, i64("zero", 0)});
  const ir::ValueId wrapped = b.Op("Add", "wrapped", {types, i64("two", 2)});
  const ir::ValueId fixed = b.Op("Select", "fixed", {negative, wrapped, types});
  b.Output("type_rows", b.Op("Gather", "type_rows",
                             {b.Const("type_table", Tensor(DType::kFloat32, {4, 2})), fixed, i64("axis_last", -1)}));
  // The mask is only arithmetic: no limit.
  b.Output("masked",
           b.Op("Mul", "masked", {x, b.Op("Cast", "maskf", {mask}, testutil::Attrs({{"to", DType::kFloat32}}))}));
  const std::vector<TensorSpec> specs = api::SpecsOf(*b.g, b.g->inputs(), b.g->input_names());
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].index_limit, 12);
  EXPECT_EQ(specs[1].index_limit, 2);
  EXPECT_EQ(specs[2].index_limit, -1);
  EXPECT_EQ(specs[3].index_limit, -1);  // a float input
}

}  // namespace
}  // namespace kiln
