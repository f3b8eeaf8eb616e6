// The value conversion of the Cast op, shared by the reference kernel and generated GPU kernels:
// every pair of numeric and bool dtypes, as TensorFlow's CPU kernels convert (see FloatToInt),
// with TensorFlow's optional mantissa truncation for narrowing float casts.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ir/ops/elementwise_scalar.h"

namespace kiln::ir::elementwise {

// Float -> integer conversion as TensorFlow's CPU kernels do it on x86-64 (static_cast compiled
// to cvttss2si/cvttsd2si): truncation toward zero; NaN and out-of-range values give the
// "integer indefinite" value (INT_MIN of the 32- or 64-bit conversion), which narrower
// destinations then wrap.
template <typename D>
D FloatToInt(double x) {
  constexpr double k2p63 = 9223372036854775808.0;
  if constexpr (std::is_same_v<D, int64_t>) {
    if (!(x >= -k2p63 && x < k2p63)) return std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(x);
  } else if constexpr (std::is_same_v<D, int32_t>) {
    if (!(x > -2147483649.0 && x < 2147483648.0)) return std::numeric_limits<int32_t>::min();
    return static_cast<int32_t>(x);
  } else if constexpr (sizeof(D) < 4) {
    return static_cast<D>(FloatToInt<int32_t>(x));
  } else if constexpr (std::is_same_v<D, uint32_t>) {
    return static_cast<uint32_t>(FloatToInt<int64_t>(x));
  } else {  // uint64_t
    if (x < k2p63) return static_cast<uint64_t>(FloatToInt<int64_t>(x));
    return static_cast<uint64_t>(FloatToInt<int64_t>(x - k2p63)) ^ 0x8000000000000000ull;
  }
}

// Zeroes the n low mantissa bits of a non-NaN float or double (TensorFlow's Truncate=true casts).
template <typename F>
F ZeroLowBits(F v, int n) {
  using Bits = std::conditional_t<sizeof(F) == 4, uint32_t, uint64_t>;
  if (std::isnan(v)) return v;
  Bits u;
  std::memcpy(&u, &v, sizeof u);
  u &= static_cast<Bits>(static_cast<Bits>(~Bits{0}) << n);
  std::memcpy(&v, &u, sizeof u);
  return v;
}

template <typename D, typename S>
D CastValue(S v, bool truncate) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<D, bool>) {
    if constexpr (kIsHalfLike<S>)
      return static_cast<float>(v) != 0.0f;
    else
      return v != S(0);
  } else if constexpr (std::is_same_v<S, bool>) {
    if constexpr (kIsHalfLike<D>)
      return D(v ? 1.0f : 0.0f);
    else
      return static_cast<D>(v ? 1 : 0);
  } else if constexpr (kIsHalfLike<S>) {
    return CastValue<D, float>(static_cast<float>(v), false);  // widening to float is exact
  } else if constexpr (kIsHalfLike<D>) {
    if constexpr (std::is_same_v<S, float> && std::is_same_v<D, BFloat16>) {
      // Truncation to bfloat16 keeps the float's upper 16 bits. Done on the bits directly: GCC 12
      // at -O2 folds ZeroLowBits followed by BFloat16's rounding into the rounding alone.
      if (truncate && v == v) {
        uint32_t u;
        std::memcpy(&u, &v, sizeof u);
        D out;
        out.bits = static_cast<uint16_t>(u >> 16);
        return out;
      }
    } else if constexpr (std::is_same_v<S, float>) {
      if (truncate) v = ZeroLowBits(v, std::is_same_v<D, Half> ? 13 : 16);
    } else if constexpr (std::is_same_v<S, double> && std::is_same_v<D, Half>) {
      if (truncate) v = ZeroLowBits(v, 42);
    }
    return D(static_cast<float>(v));  // through float, like Eigen's half/bfloat16 constructors
  } else if constexpr (std::is_floating_point_v<D>) {
    if constexpr (std::is_same_v<D, float> && std::is_same_v<S, double>)
      if (truncate) v = ZeroLowBits(v, 29);
    return static_cast<D>(v);
  } else if constexpr (std::is_floating_point_v<S>) {
    return FloatToInt<D>(static_cast<double>(v));
  } else {
    return static_cast<D>(v);  // integer -> integer wraps
  }
}

}  // namespace kiln::ir::elementwise
