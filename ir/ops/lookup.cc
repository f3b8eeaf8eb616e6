// The IR op of a static lookup table: TableLookup (TensorFlow's LookupTableFindV2 on a table whose
// contents are constants when the model loads, held as sorted keys and their values). See
// docs/ops/lookup.md.
#include <fmt/format.h>

#include "ir/dtype_class.h"
#include "ir/op_schema.h"

namespace kiln::ir {

void RegisterLookupOps(OpRegistry& registry);

namespace {

// The dtypes a table's keys may have: they are compared, so integers or strings (TensorFlow's
// hash tables take int32, int64 and string keys).
constexpr unsigned kKeyTypes = kInt | kStringT;

void RequireVector(const InferContext& ctx, int i, const char* what) {
  const SymShape& s = ctx.input_shape(i);
  if (s.rank_known && s.rank() != 1) ctx.Fail(fmt::format("{} must be a vector, got rank {}", what, s.rank()));
}

// ---- TableLookup(keys, table_keys, table_values, default_value) ----
void InferTableLookup(InferContext& ctx) {
  const DType key = ctx.input_dtype(1);
  if (!InClass(key, kKeyTypes))
    ctx.Fail(fmt::format("table_keys must have {}, got {}", DTypeClassName(kKeyTypes), DTypeName(key)));
  if (ctx.input_dtype(0) != key)
    ctx.Fail(fmt::format("the table's keys are {} but the keys looked up are {}", DTypeName(key),
                         DTypeName(ctx.input_dtype(0))));
  const DType value = ctx.input_dtype(2);
  if (ctx.input_dtype(3) != value)
    ctx.Fail(fmt::format("the table's values are {} but default_value is {}", DTypeName(value),
                         DTypeName(ctx.input_dtype(3))));
  RequireVector(ctx, 1, "table_keys");
  RequireVector(ctx, 2, "table_values");
  const SymShape& tk = ctx.input_shape(1);
  const SymShape& tv = ctx.input_shape(2);
  if (tk.rank_known && tv.rank_known && IsStatic(tk.dims[0]) && IsStatic(tv.dims[0]) && tk.dims[0] != tv.dims[0])
    ctx.Fail(fmt::format("the table has {} keys and {} values", tk.dims[0], tv.dims[0]));
  const SymShape& keys = ctx.input_shape(0);
  const SymShape& fallback = ctx.input_shape(3);
  if (keys.rank_known && fallback.rank_known && fallback.rank() != 0) {
    bool fits = fallback.rank() == keys.rank();
    for (int d = 0; fits && d < keys.rank(); ++d)
      fits = !IsStatic(keys.dims[d]) || !IsStatic(fallback.dims[d]) || keys.dims[d] == fallback.dims[d];
    if (!fits)
      ctx.Fail(fmt::format("default_value must be a scalar or have the keys' shape {}, got {}",
                           ctx.graph().ShapeToString(keys), ctx.graph().ShapeToString(fallback)));
  }
  ctx.SetOutput(0, value, keys);
}

}  // namespace

void RegisterLookupOps(OpRegistry& registry) { registry.Add({"TableLookup", 4, 4, InferTableLookup, true}); }

}  // namespace kiln::ir
