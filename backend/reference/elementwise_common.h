// Shared helpers of the elementwise reference kernels (elementwise*.cc): dtype-class dispatch and
// N-d numpy broadcasting. Compute types and wrap-around arithmetic come from the op table's
// scalar helpers (ir/ops/elementwise_scalar.h).
#pragma once

#include <fmt/format.h>

#include <array>
#include <complex>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/reference/dispatch.h"
#include "backend/reference/kernel.h"
#include "ir/dtype_class.h"
#include "ir/ops/elementwise_scalar.h"
#include "kiln/half.h"

namespace kiln::reference::elementwise {

using ir::kAll;
using ir::kBoolT;
using ir::kComplexT;
using ir::kFloat;
using ir::kInt;
using ir::kNumeric;
using ir::kSigned;
using ir::kUnsigned;
using ir::elementwise::ComputeT;
using ir::elementwise::kIsHalfLike;
using ir::elementwise::kIsInt;
using ir::elementwise::Load;
using ir::elementwise::Store;
using ir::elementwise::WrapAdd;

// Calls fn.template operator()<T>() for dtype if its class is in Mask (only those types are
// instantiated); throws kUnimplemented otherwise.
template <unsigned Mask, typename Fn>
void DispatchMask(DType dtype, const std::string& what, Fn&& fn) {
  switch (dtype) {
#define KILN_EW_CASE(DT, TYPE, CLASS)                                  \
  case DType::DT:                                                      \
    if constexpr ((Mask & (CLASS)) != 0) {                             \
      fn.template operator()<TYPE>();                                  \
      return;                                                          \
    }                                                                  \
    break;
    KILN_EW_CASE(kFloat32, float, kFloat)
    KILN_EW_CASE(kFloat64, double, kFloat)
    KILN_EW_CASE(kFloat16, Half, kFloat)
    KILN_EW_CASE(kBFloat16, BFloat16, kFloat)
    KILN_EW_CASE(kInt8, int8_t, kSigned)
    KILN_EW_CASE(kInt16, int16_t, kSigned)
    KILN_EW_CASE(kInt32, int32_t, kSigned)
    KILN_EW_CASE(kInt64, int64_t, kSigned)
    KILN_EW_CASE(kUInt8, uint8_t, kUnsigned)
    KILN_EW_CASE(kUInt16, uint16_t, kUnsigned)
    KILN_EW_CASE(kUInt32, uint32_t, kUnsigned)
    KILN_EW_CASE(kUInt64, uint64_t, kUnsigned)
    KILN_EW_CASE(kBool, bool, kBoolT)
    KILN_EW_CASE(kComplex64, std::complex<float>, kComplexT)
    KILN_EW_CASE(kComplex128, std::complex<double>, kComplexT)
#undef KILN_EW_CASE
    default:
      break;
  }
  throw Error(ErrorCode::kUnimplemented, fmt::format("{}: dtype {} is not supported", what, DTypeName(dtype)));
}

// ---- broadcasting ----
struct BroadcastPlan {
  Shape out_shape;
  // strides[k][d]: element stride of input k along output dim d (0 where input k broadcasts).
  std::vector<std::vector<int64_t>> strides;
};

// Numpy broadcasting of any number of shapes. Returns false (and a message) when incompatible.
bool MakeBroadcastPlan(const std::vector<Shape>& shapes, BroadcastPlan* plan, std::string* error);
// Same, failing the kernel with the message.
BroadcastPlan BroadcastOrFail(const KernelContext& ctx, const std::vector<Shape>& shapes);

// Calls fn(out_index, offsets) for every output element in row-major order, where offsets[k] is
// the element offset into input k. The loop over the innermost dimension is a tight stride loop.
template <size_t N, typename Fn>
void ForEachBroadcast(const Shape& out_shape, const std::array<const std::vector<int64_t>*, N>& strides, Fn&& fn) {
  const int rank = static_cast<int>(out_shape.size());
  const int64_t total = NumElements(out_shape);
  if (total == 0) return;
  std::array<int64_t, N> base{};
  if (rank == 0) {
    fn(int64_t{0}, base);
    return;
  }
  const int64_t inner = out_shape[static_cast<size_t>(rank - 1)];
  std::array<int64_t, N> inner_stride{};
  for (size_t k = 0; k < N; ++k) inner_stride[k] = (*strides[k])[static_cast<size_t>(rank - 1)];
  std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
  for (int64_t o = 0; o < total; o += inner) {
    std::array<int64_t, N> off = base;
    for (int64_t j = 0; j < inner; ++j) {
      fn(o + j, off);
      for (size_t k = 0; k < N; ++k) off[k] += inner_stride[k];
    }
    for (int d = rank - 2; d >= 0; --d) {
      const size_t du = static_cast<size_t>(d);
      if (++idx[du] < out_shape[du]) {
        for (size_t k = 0; k < N; ++k) base[k] += (*strides[k])[du];
        break;
      }
      idx[du] = 0;
      for (size_t k = 0; k < N; ++k) base[k] -= (out_shape[du] - 1) * (*strides[k])[du];
    }
  }
}

}  // namespace kiln::reference::elementwise
