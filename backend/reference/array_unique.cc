// Reference kernel: UniqueWithCounts (ONNX's Unique, TensorFlow's UniqueWithCounts): the unique
// elements of the flattened input, or the unique slices along `axis`, in order of first
// occurrence or sorted ascending (slices lexicographically, as numpy.unique), with the index of
// each element's (slice's) unique value, the counts and the first occurrences.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "backend/reference/array_common.h"

namespace kiln::reference {
namespace {

using array::Elems;

// A total order on elements: numbers by value with NaN after everything and equal to NaN (0.0
// and -0.0 are equal), bools false < true, strings bytewise.
template <typename T>
int CompareElems(const T& a, const T& b) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16> || std::is_floating_point_v<T>) {
    const double x = ToDouble(a), y = ToDouble(b);
    const bool xn = std::isnan(x), yn = std::isnan(y);
    if (xn || yn) return xn == yn ? 0 : (xn ? 1 : -1);
    return x < y ? -1 : (y < x ? 1 : 0);
  } else {
    return a < b ? -1 : (b < a ? 1 : 0);
  }
}

void UniqueWithCounts(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const ir::AttrMap& attrs = ctx.attrs();
  const bool sorted = attrs.GetOr<bool>("sorted", false);
  const DType it = attrs.GetOr<DType>("out_idx", DType::kInt64);
  if (it != DType::kInt32 && it != DType::kInt64)
    ctx.Fail(fmt::format("out_idx must be int32 or int64, got {}", DTypeName(it)));
  // Slice i is x[o, i, j] for every outer o and inner j (row-major in (o, j)).
  int64_t outer = 1, n = x.num_elements(), inner = 1, axis = -1;
  if (attrs.Has("axis")) {
    if (x.rank() < 1) ctx.Fail("axis needs an input of rank >= 1, got a scalar");
    axis = array::AxisOrFail(ctx, attrs.Int("axis"), x.rank(), "axis", x.shape());
    n = x.dim(static_cast<int>(axis));
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<int>(d));
    for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(static_cast<int>(d));
  }
  if (it == DType::kInt32 && n > std::numeric_limits<int32_t>::max())
    ctx.Fail(fmt::format("{} elements cannot be indexed by int32 (out_idx)", n));
  const int64_t row = n * inner;  // stride of o
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int64_t> group_of(static_cast<size_t>(n));  // position in `order` order -> group
  std::vector<int64_t> first, count;                      // per group
  auto run = [&]<typename T>() {
    const T* p = Elems<T>(x);
    auto cmp = [&](int64_t a, int64_t b) {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j)
          if (const int c = CompareElems<T>(p[o * row + a * inner + j], p[o * row + b * inner + j]); c != 0) return c;
      return 0;
    };
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
    for (int64_t k = 0; k < n; ++k) {
      const int64_t i = order[static_cast<size_t>(k)];
      if (k == 0 || cmp(order[static_cast<size_t>(k - 1)], i) != 0) {
        first.push_back(i);  // the stable sort keeps the first occurrence first
        count.push_back(0);
      }
      ++count.back();
      group_of[static_cast<size_t>(k)] = static_cast<int64_t>(first.size()) - 1;
    }
  };
  if (x.dtype() == DType::kString)
    run.template operator()<std::string>();
  else if (x.dtype() == DType::kBool)
    run.template operator()<bool>();
  else
    DispatchNumeric(x.dtype(), "UniqueWithCounts", run);
  const int64_t groups = static_cast<int64_t>(first.size());
  // Output position of each group: sorted order, or order of first occurrence.
  std::vector<int64_t> pos(static_cast<size_t>(groups));
  std::iota(pos.begin(), pos.end(), 0);
  if (!sorted) {
    std::vector<int64_t> by_first(static_cast<size_t>(groups));
    std::iota(by_first.begin(), by_first.end(), 0);
    std::sort(by_first.begin(), by_first.end(),
              [&](int64_t a, int64_t b) { return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)]; });
    for (int64_t g = 0; g < groups; ++g) pos[static_cast<size_t>(by_first[static_cast<size_t>(g)])] = g;
  }
  std::vector<int64_t> out_first(static_cast<size_t>(groups)), out_count(static_cast<size_t>(groups)),
      inverse(static_cast<size_t>(n));
  for (int64_t g = 0; g < groups; ++g) {
    out_first[static_cast<size_t>(pos[static_cast<size_t>(g)])] = first[static_cast<size_t>(g)];
    out_count[static_cast<size_t>(pos[static_cast<size_t>(g)])] = count[static_cast<size_t>(g)];
  }
  for (int64_t k = 0; k < n; ++k)
    inverse[static_cast<size_t>(order[static_cast<size_t>(k)])] =
        pos[static_cast<size_t>(group_of[static_cast<size_t>(k)])];

  Shape y_shape = {groups};
  if (axis >= 0) {
    y_shape = x.shape();
    y_shape[static_cast<size_t>(axis)] = groups;
  }
  Tensor& y = ctx.AllocateOutput(0, x.dtype(), y_shape);
  array::DispatchMove(x.dtype(), "UniqueWithCounts", [&]<typename T>() {
    const T* src = Elems<T>(x);
    T* dst = Elems<T>(y);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t g = 0; g < groups; ++g)
        std::copy_n(src + o * row + out_first[static_cast<size_t>(g)] * inner, inner, dst + (o * groups + g) * inner);
  });
  auto store = [&](int i, const std::vector<int64_t>& v) {
    Tensor& t = ctx.AllocateOutput(i, it, {static_cast<int64_t>(v.size())});
    for (size_t k = 0; k < v.size(); ++k) {
      if (it == DType::kInt32)
        t.data<int32_t>()[k] = static_cast<int32_t>(v[k]);
      else
        t.data<int64_t>()[k] = v[k];
    }
  };
  store(1, inverse);
  store(2, out_count);
  store(3, out_first);
}
KILN_REFERENCE_KERNEL("UniqueWithCounts", UniqueWithCounts);

}  // namespace
}  // namespace kiln::reference
