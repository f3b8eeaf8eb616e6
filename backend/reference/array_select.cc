// Reference kernels with data-dependent results: Where (coordinates of true elements), Unique
// and TopK.
#include <algorithm>
#include <complex>
#include <numeric>
#include <unordered_map>

#include "backend/reference/array_common.h"

namespace kiln::reference {
namespace {

using array::Key;

void Where(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t n = x.num_elements();
  std::vector<int64_t> hits;
  if (x.dtype() == DType::kComplex64 || x.dtype() == DType::kComplex128) {
    for (int64_t i = 0; i < n; ++i) {
      const bool nz = x.dtype() == DType::kComplex64 ? x.data<std::complex<float>>()[i] != std::complex<float>()
                                                     : x.data<std::complex<double>>()[i] != std::complex<double>();
      if (nz) hits.push_back(i);
    }
  } else {
    DispatchAll(x.dtype(), "Where", [&]<typename T>() {
      const T* p = x.data<T>();
      for (int64_t i = 0; i < n; ++i)
        if (ToDouble(p[i]) != 0) hits.push_back(i);
    });
  }
  const int64_t rank = x.rank();
  Tensor& out = ctx.AllocateOutput(0, DType::kInt64, {static_cast<int64_t>(hits.size()), rank});
  int64_t* o = out.data<int64_t>();
  for (size_t h = 0; h < hits.size(); ++h) {
    int64_t i = hits[h];
    for (int64_t d = rank; d-- > 0;) {
      o[static_cast<int64_t>(h) * rank + d] = i % x.dim(static_cast<int>(d));
      i /= x.dim(static_cast<int>(d));
    }
  }
}
KILN_REFERENCE_KERNEL("Where", Where);

template <typename K, typename T, typename Get>
void UniqueImpl(KernelContext& ctx, const Tensor& x, DType idx_type, Get get) {
  const int64_t n = x.num_elements();
  std::unordered_map<K, int64_t> seen;
  std::vector<int64_t> first;  // flat position of each unique value's first occurrence
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto [it, inserted] = seen.emplace(get(i), static_cast<int64_t>(first.size()));
    if (inserted) first.push_back(i);
    idx[static_cast<size_t>(i)] = it->second;
  }
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), {static_cast<int64_t>(first.size())});
  for (size_t u = 0; u < first.size(); ++u) array::Elems<T>(y)[u] = array::Elems<T>(x)[first[u]];
  Tensor& out_idx = ctx.AllocateOutput(1, idx_type, {n});
  for (int64_t i = 0; i < n; ++i) {
    if (idx_type == DType::kInt32) out_idx.data<int32_t>()[i] = static_cast<int32_t>(idx[static_cast<size_t>(i)]);
    else out_idx.data<int64_t>()[i] = idx[static_cast<size_t>(i)];
  }
}

void Unique(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() != 1) ctx.Fail(fmt::format("x must be 1-D, got shape {}", ShapeToString(x.shape())));
  const DType idx_type = ctx.attrs().GetOr<DType>("out_idx", DType::kInt32);
  if (idx_type != DType::kInt32 && idx_type != DType::kInt64) ctx.Fail("out_idx must be int32 or int64");
  if (x.dtype() == DType::kString) {
    UniqueImpl<std::string, std::string>(ctx, x, idx_type, [&](int64_t i) { return x.strings()[static_cast<size_t>(i)]; });
    return;
  }
  DispatchAll(x.dtype(), "Unique", [&]<typename T>() {
    using K = decltype(Key(T{}));
    UniqueImpl<K, T>(ctx, x, idx_type, [&](int64_t i) { return Key(x.data<T>()[i]); });
  });
}
KILN_REFERENCE_KERNEL("Unique", Unique);

// A strict weak order for sorting descending: NaN sorts before every number.
template <typename K>
bool Greater(K a, K b) {
  if constexpr (std::is_floating_point_v<K>) {
    if (a != a) return b == b;
    if (b != b) return false;
  }
  return a > b;
}

void TopK(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t k = array::ScalarInput(ctx, 1, "k");
  if (x.rank() < 1) ctx.Fail("input must be at least 1-D, got a scalar");
  const int64_t n = x.dim(x.rank() - 1);
  if (k < 0) ctx.Fail(fmt::format("k must be non-negative, got {}", k));
  if (k > n) ctx.Fail(fmt::format("input must have at least k = {} columns, got shape {}", k, ShapeToString(x.shape())));
  const DType idx_type = ctx.attrs().GetOr<DType>("index_type", DType::kInt32);
  Shape out_shape = x.shape();
  out_shape.back() = k;
  Tensor& values = ctx.AllocateOutput(0, x.dtype(), out_shape);
  Tensor& indices = ctx.AllocateOutput(1, idx_type, out_shape);
  const int64_t rows = n == 0 ? 0 : x.num_elements() / n;
  DispatchNumeric(x.dtype(), "TopK", [&]<typename T>() {
    const T* p = x.data<T>();
    T* v = values.data<T>();
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = p + r * n;
      std::iota(order.begin(), order.end(), 0);
      // Larger values first; equal values keep the lower index first.
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return Greater(Key(row[a]), Key(row[b])); });
      for (int64_t j = 0; j < k; ++j) {
        const int64_t src = order[static_cast<size_t>(j)];
        v[r * k + j] = row[src];
        DispatchInteger(idx_type, "TopK index_type", [&]<typename I>() { indices.data<I>()[r * k + j] = static_cast<I>(src); });
      }
    }
  });
}
KILN_REFERENCE_KERNEL("TopK", TopK);

}  // namespace

}  // namespace kiln::reference
