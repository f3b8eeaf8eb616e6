// Scalar building blocks of the elementwise op formulas (ir/ops/elementwise_*_ops.h): the
// compute type of each storage type (half and bfloat16 compute in float), machine epsilon, and
// wrap-around integer arithmetic. Every kernel that evaluates an elementwise op (the reference
// kernels, fused CPU loops) goes through these, so they all round the same way.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

#include "kiln/half.h"

namespace kiln::ir::elementwise {

// ---- compute types: half and bfloat16 compute in float ----
template <typename T>
inline constexpr bool kIsHalfLike = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <typename T>
using ComputeT = std::conditional_t<kIsHalfLike<T>, float, T>;

template <typename T>
inline ComputeT<T> Load(T v) {
  if constexpr (kIsHalfLike<T>)
    return static_cast<float>(v);
  else
    return v;
}
template <typename T>
inline T Store(ComputeT<T> v) {
  if constexpr (kIsHalfLike<T>)
    return T(v);
  else
    return v;
}

template <typename C>
inline constexpr bool kIsInt = std::is_integral_v<C> && !std::is_same_v<C, bool>;

// Machine epsilon of a storage type (half/bfloat16 included).
template <typename T>
constexpr double Epsilon() {
  if constexpr (std::is_same_v<T, Half>)
    return 0.0009765625;  // 2^-10
  else if constexpr (std::is_same_v<T, BFloat16>)
    return 0.0078125;  // 2^-7
  else
    return static_cast<double>(std::numeric_limits<T>::epsilon());
}

// ---- wrap-around integer arithmetic (two's complement, no UB) ----
template <typename C>
using WideUnsigned = std::conditional_t<(sizeof(C) < 4), uint32_t, std::make_unsigned_t<C>>;

template <typename C>
inline C WrapAdd(C a, C b) {
  if constexpr (kIsInt<C>)
    return static_cast<C>(static_cast<WideUnsigned<C>>(a) + static_cast<WideUnsigned<C>>(b));
  else
    return a + b;
}
template <typename C>
inline C WrapSub(C a, C b) {
  if constexpr (kIsInt<C>)
    return static_cast<C>(static_cast<WideUnsigned<C>>(a) - static_cast<WideUnsigned<C>>(b));
  else
    return a - b;
}
template <typename C>
inline C WrapMul(C a, C b) {
  if constexpr (kIsInt<C>)
    return static_cast<C>(static_cast<WideUnsigned<C>>(a) * static_cast<WideUnsigned<C>>(b));
  else
    return a * b;
}
template <typename C>
inline C WrapNeg(C a) {
  if constexpr (kIsInt<C>)
    return static_cast<C>(WideUnsigned<C>(0) - static_cast<WideUnsigned<C>>(a));
  else
    return -a;
}

// What an op's formula sees besides its operands: the value of its scalar attribute (OpInfo::
// param) and a flag it sets for inputs it cannot evaluate (integer division by zero, ...).
struct State {
  double param = 0;
  bool error = false;
};

}  // namespace kiln::ir::elementwise
