// Helpers shared by the array-family reference kernels (backend/reference/array*.cc).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "backend/reference/dispatch.h"
#include "backend/reference/kernel.h"
#include "ir/ops/array_common.h"

namespace kiln::reference::array {

// Data movement for every dtype, strings included: calls fn.template operator()<T>() with an
// element type of the right size (std::string for DT_STRING).
template <typename Fn>
void DispatchMove(DType dtype, const std::string& what, Fn&& fn) {
  if (dtype == DType::kString) {
    fn.template operator()<std::string>();
    return;
  }
  DispatchBySize(dtype, what, fn);
}

template <typename T>
T* Elems(Tensor& t) {
  if constexpr (std::is_same_v<T, std::string>) return t.strings().data();
  else return t.data<T>();
}
template <typename T>
const T* Elems(const Tensor& t) {
  if constexpr (std::is_same_v<T, std::string>) return t.strings().data();
  else return t.data<T>();
}

// Row-major element strides of a shape.
inline std::vector<int64_t> Strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

// Integer contents of input i (shape vectors, axes, indices); fails for non-integer dtypes.
std::vector<int64_t> IntInput(const KernelContext& ctx, int i, const char* what);
// A scalar (or one-element) integer input.
int64_t ScalarInput(const KernelContext& ctx, int i, const char* what);
// Normalises an axis against rank; fails naming `what` when it is out of range.
int64_t AxisOrFail(const KernelContext& ctx, int64_t axis, int64_t rank, const char* what, const Shape& shape);

// Copies through per-dimension index maps: output element (i_0, ..., i_{r-1}) of shape `out_shape`
// is input element sum_d maps[d][i_d] (flat index), or `fill` when any maps[d][i_d] < 0. Covers
// transposes, slices, reverses, tiles, broadcasts and pads.
template <typename T>
void MapCopy(const T* in, T* out, const Shape& out_shape, const std::vector<std::vector<int64_t>>& maps, const T* fill) {
  const int64_t n = NumElements(out_shape);
  if (n == 0) return;
  const size_t r = out_shape.size();
  if (r == 0) {
    out[0] = in[0];
    return;
  }
  std::vector<int64_t> idx(r, 0);
  const std::vector<int64_t>& last = maps[r - 1];
  const int64_t inner = out_shape[r - 1];
  // The innermost map's form, decided once: a contiguous run of the input (a block copy: slices,
  // tiles, broadcasts of a row) or one element repeated (a fill: broadcasts along the last dim),
  // else a gather element by element.
  bool contiguous = last[0] >= 0, repeated = last[0] >= 0;
  for (int64_t j = 1; j < inner && (contiguous || repeated); ++j) {
    contiguous = contiguous && last[static_cast<size_t>(j)] == last[0] + j;
    repeated = repeated && last[static_cast<size_t>(j)] == last[0];
  }
  int64_t o = 0;
  while (o < n) {
    int64_t base = 0;
    bool valid = true;
    for (size_t d = 0; d + 1 < r; ++d) {
      const int64_t m = maps[d][static_cast<size_t>(idx[d])];
      if (m < 0) valid = false;
      base += m;
    }
    if (!valid) {
      std::fill(out + o, out + o + inner, *fill);
      o += inner;
    } else if (contiguous) {
      std::copy(in + base + last[0], in + base + last[0] + inner, out + o);
      o += inner;
    } else if (repeated) {
      std::fill(out + o, out + o + inner, in[base + last[0]]);
      o += inner;
    } else {
      for (int64_t j = 0; j < inner; ++j, ++o) {
        const int64_t m = last[static_cast<size_t>(j)];
        out[o] = m >= 0 ? in[base + m] : *fill;
      }
    }
    for (size_t d = r - 1; d-- > 0;) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Runs MapCopy on tensors of any dtype; `fill` (same dtype, one element) may be undefined when
// no map entry is negative.
void MapCopyTensor(const KernelContext& ctx, const Tensor& in, Tensor& out, const std::vector<std::vector<int64_t>>& maps,
                   const Tensor* fill);

// Floating element types (including Half / BFloat16).
template <typename T>
constexpr bool IsFloatType() {
  return std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
}

// Half / bfloat16-aware ordering key: compares as float for 16-bit floats, natively otherwise.
template <typename T>
inline auto Key(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) return static_cast<float>(v);
  else return v;
}

}  // namespace kiln::reference::array
