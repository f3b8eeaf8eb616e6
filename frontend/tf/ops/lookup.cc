// Importers of TF's lookup-table ops on a static table (tf.lookup.StaticHashTable, Keras'
// IntegerLookup / StringLookup): the SavedModel fills the table with constants when it loads
// (frontend/tf/saved_table.cc), so a lookup becomes the IR's TableLookup over those constants and
// the table's size a constant. docs/ops/lookup.md.
#include <fmt/format.h>

#include "frontend/tf/importer.h"

namespace kiln::tf {
namespace {

// The Tin / Tout attrs (key and value dtypes) must be the table's.
void CheckTableDTypes(ImportContext& ctx, const LookupTable& table) {
  const DType tin = ctx.attr_type("Tin");
  const DType tout = ctx.attr_type("Tout");
  if (tin != table.key_dtype || tout != table.value_dtype)
    ctx.Invalid(fmt::format("Tin {} and Tout {} do not match table '{}', which maps {} to {}", DTypeName(tin),
                            DTypeName(tout), table.name, DTypeName(table.key_dtype), DTypeName(table.value_dtype)));
}

// LookupTableFindV2(table_handle, keys, default_value): each key's value; keys not in the table
// take default_value (a scalar, or of the keys' shape, of which a static table reads element 0).
void ImportFind(ImportContext& ctx) {
  if (ctx.num_inputs() != 3) ctx.Invalid(fmt::format("expected 3 inputs, got {}", ctx.num_inputs()));
  const LookupTable& table = ctx.table_input(0);
  CheckTableDTypes(ctx, table);
  const DType keys = ctx.input_dtype(1);
  if (keys != DType::kInvalid && keys != table.key_dtype)
    ctx.Invalid(fmt::format("table '{}' has {} keys but the keys looked up are {}", table.name,
                            DTypeName(table.key_dtype), DTypeName(keys)));
  const DType fallback = ctx.input_dtype(2);
  if (fallback != DType::kInvalid && fallback != table.value_dtype)
    ctx.Invalid(fmt::format("table '{}' has {} values but default_value is {}", table.name,
                            DTypeName(table.value_dtype), DTypeName(fallback)));
  if (ctx.validate_only()) return;
  const ir::ValueId table_keys = ctx.Constant(table.keys, "table_keys");
  const ir::ValueId table_values = ctx.Constant(table.values, "table_values");
  ctx.SetOutput(0, ctx.Emit1("TableLookup", {ctx.input(1), table_keys, table_values, ctx.input(2)}));
}

// LookupTableSizeV2(table_handle): the number of keys (int64), a constant for a static table.
void ImportSize(ImportContext& ctx) {
  if (ctx.num_inputs() != 1) ctx.Invalid(fmt::format("expected 1 input, got {}", ctx.num_inputs()));
  const LookupTable& table = ctx.table_input(0);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Constant(Tensor::Scalar<int64_t>(DType::kInt64, table.keys.num_elements()), ""));
}

}  // namespace

void RegisterLookupImporters(ImporterTable& t) {
  t.Add({"LookupTableFindV2", ImportFind, {}, {}});
  t.Add({"LookupTableSizeV2", ImportSize, {}, {}});
}

}  // namespace kiln::tf
