// Reference kernel of TableLookup: each key is found by binary search in the table's sorted keys;
// keys not in the table take the default value (its first element: TensorFlow's HashTable reads
// only that one, also from a default of the keys' shape). docs/ops/lookup.md.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backend/reference/dispatch.h"
#include "backend/reference/kernel.h"

namespace kiln::reference {
namespace {

// The row of each of the n `keys` in `table` (-1: not in it). The table must be ascending without
// repeats; that is checked, since a binary search over keys out of order would silently miss.
template <typename K>
std::vector<int64_t> FindRows(const KernelContext& ctx, const K* table, int64_t size, const K* keys, int64_t n) {
  for (int64_t i = 1; i < size; ++i)
    if (!(table[i - 1] < table[i]))
      ctx.Fail(fmt::format("table_keys must be strictly ascending; entries {} and {} are not", i - 1, i));
  std::vector<int64_t> rows(static_cast<size_t>(n), -1);
  for (int64_t i = 0; i < n; ++i) {
    const K* at = std::lower_bound(table, table + size, keys[i]);
    if (at != table + size && *at == keys[i]) rows[static_cast<size_t>(i)] = at - table;
  }
  return rows;
}

void TableLookupKernel(KernelContext& ctx) {
  const Tensor& keys = ctx.input(0);
  const Tensor& table_keys = ctx.input(1);
  const Tensor& table_values = ctx.input(2);
  const Tensor& fallback = ctx.input(3);
  if (table_keys.rank() != 1 || table_values.rank() != 1)
    ctx.Fail(fmt::format("table_keys and table_values must be vectors, got shapes {} and {}",
                         ShapeToString(table_keys.shape()), ShapeToString(table_values.shape())));
  const int64_t size = table_keys.dim(0);
  if (table_values.dim(0) != size)
    ctx.Fail(fmt::format("the table has {} keys and {} values", size, table_values.dim(0)));
  if (keys.dtype() != table_keys.dtype())
    ctx.Fail(fmt::format("the table's keys are {} but the keys looked up are {}", DTypeName(table_keys.dtype()),
                         DTypeName(keys.dtype())));
  if (fallback.dtype() != table_values.dtype())
    ctx.Fail(fmt::format("the table's values are {} but default_value is {}", DTypeName(table_values.dtype()),
                         DTypeName(fallback.dtype())));
  if (fallback.rank() != 0 && fallback.shape() != keys.shape())
    ctx.Fail(fmt::format("default_value must be a scalar or have the keys' shape {}, got {}",
                         ShapeToString(keys.shape()), ShapeToString(fallback.shape())));

  const int64_t n = keys.num_elements();
  std::vector<int64_t> rows;
  if (keys.dtype() == DType::kString) {
    rows = FindRows(ctx, table_keys.strings().data(), size, keys.strings().data(), n);
  } else {
    DispatchInteger(keys.dtype(), "TableLookup keys",
                    [&]<typename K>() { rows = FindRows(ctx, table_keys.data<K>(), size, keys.data<K>(), n); });
  }

  Tensor& out = ctx.AllocateOutput(0, table_values.dtype(), keys.shape());
  if (out.dtype() == DType::kString) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = rows[static_cast<size_t>(i)];
      out.strings()[static_cast<size_t>(i)] =
          row >= 0 ? table_values.strings()[static_cast<size_t>(row)] : fallback.strings()[0];
    }
    return;
  }
  const size_t width = DTypeSize(out.dtype());
  char* dst = static_cast<char*>(out.raw_data());
  const char* values = static_cast<const char*>(table_values.raw_data());
  const char* defaults = static_cast<const char*>(fallback.raw_data());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = rows[static_cast<size_t>(i)];
    const char* from = row >= 0 ? values + static_cast<size_t>(row) * width : defaults;
    std::memcpy(dst + static_cast<size_t>(i) * width, from, width);
  }
}
KILN_REFERENCE_KERNEL("TableLookup", TableLookupKernel);

}  // namespace
}  // namespace kiln::reference
