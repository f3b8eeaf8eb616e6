// The binary elementwise IR ops (numpy broadcasting): one struct per op holding its description
// (kInfo) and its formula (Apply), which the reference kernels and fused loops evaluate.
// Integer arithmetic wraps (two's complement); integer division or modulo by zero sets the
// error flag (the kernel then fails like TensorFlow does). Add, Sub, Mul and Div also take
// complex64 / complex128 (std::complex arithmetic; TensorFlow's complex forms). Adding an op: write its struct here
// and list it in BinaryOps at the end (docs/adding-ops.md).
#pragma once

#include <climits>
#include <cmath>
#include <string>
#include <type_traits>

#include "ir/ops/elementwise_op_info.h"

namespace kiln::ir::elementwise {

inline constexpr const char* kDivByZero = "integer division by zero";

// ---- arithmetic ----
// TensorFlow's Add also concatenates strings (ApplyString); AddV2 does not.
struct Add {
  static constexpr OpInfo kInfo{.name = "Add",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric | kStringT | kComplexT,
                                .fusible = true,
                                .tf = {ForeignOp{"Add", kNumeric | kStringT | kComplexT}, ForeignOp{"AddV2", kNumeric | kComplexT}},
                                .onnx = {ForeignOp{"Add", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return WrapAdd(a, b);
  }
  // A template so that device compilers, which have no std::string, never instantiate it.
  template <typename S>
  static S ApplyString(const S& a, const S& b) {
    return a + b;
  }
};

struct Sub {
  static constexpr OpInfo kInfo{.name = "Sub",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric | kComplexT,
                                .fusible = true,
                                .tf = {ForeignOp{"Sub", kNumeric | kComplexT}},
                                .onnx = {ForeignOp{"Sub", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return WrapSub(a, b);
  }
};

struct Mul {
  static constexpr OpInfo kInfo{.name = "Mul",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric | kComplexT,
                                .fusible = true,
                                .tf = {ForeignOp{"Mul", kNumeric | kComplexT}},
                                .onnx = {ForeignOp{"Mul", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return WrapMul(a, b);
  }
};

// Integer division helpers: b == 0 sets the error; INT_MIN / -1 wraps (TensorFlow computes -a / 1).
template <typename C>
bool IsMinByMinusOne(C a, C b) {
  if constexpr (std::is_signed_v<C>)
    return a == std::numeric_limits<C>::min() && b == C(-1);
  else
    return false;
}

// Float: true division. Integer: truncation toward zero (ONNX's reference does the same).
struct Div {
  static constexpr OpInfo kInfo{.name = "Div",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric | kComplexT,
                                .fusible = true,
                                .error = kDivByZero,
                                .tf = {ForeignOp{"Div", kNumeric | kComplexT}, ForeignOp{"RealDiv", kFloat | kComplexT}},
                                .onnx = {ForeignOp{"Div", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State& s) {
    if constexpr (kIsInt<C>) {
      if (b == 0) return s.error = true, C(0);
      if (IsMinByMinusOne(a, b)) return WrapNeg(a);
      return static_cast<C>(a / b);
    } else {
      return a / b;
    }
  }
};

struct FloorDiv {
  static constexpr OpInfo kInfo{.name = "FloorDiv",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric,
                                .error = kDivByZero,
                                .tf = {ForeignOp{"FloorDiv", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State& s) {
    if constexpr (kIsInt<C>) {
      if (b == 0) return s.error = true, C(0);
      if (IsMinByMinusOne(a, b)) return WrapNeg(a);
      const C z = static_cast<C>(a / b);
      if constexpr (std::is_signed_v<C>)
        if (static_cast<C>(z * b) != a && ((a < 0) != (b < 0))) return static_cast<C>(z - 1);
      return z;
    } else {
      return std::floor(a / b);
    }
  }
};

// Remainder with the sign of the divisor.
struct FloorMod {
  static constexpr OpInfo kInfo{.name = "FloorMod",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric,
                                .error = kDivByZero,
                                .tf = {ForeignOp{"FloorMod", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State& s) {
    C trunc_mod;
    if constexpr (kIsInt<C>) {
      if (b == 0) return s.error = true, C(0);
      if (IsMinByMinusOne(a, b)) return C(0);
      trunc_mod = static_cast<C>(a % b);
    } else {
      trunc_mod = std::fmod(a, b);
    }
    if constexpr (std::is_unsigned_v<C>)
      return trunc_mod;
    else
      return trunc_mod != C(0) && ((b < C(0)) != (trunc_mod < C(0))) ? static_cast<C>(trunc_mod + b) : trunc_mod;
  }
};

// Remainder with the sign of the dividend (C's % and fmod).
struct TruncateMod {
  static constexpr OpInfo kInfo{.name = "TruncateMod",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric,
                                .error = kDivByZero,
                                .tf = {ForeignOp{"TruncateMod", kNumeric}, ForeignOp{"Mod", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State& s) {
    if constexpr (kIsInt<C>) {
      if (b == 0) return s.error = true, C(0);
      if (IsMinByMinusOne(a, b)) return C(0);
      return static_cast<C>(a % b);
    } else {
      return std::fmod(a, b);
    }
  }
};

// ONNX's Pow allows two different dtypes: own importer.
struct Pow {
  static constexpr OpInfo kInfo{.name = "Pow",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric,
                                .fusible = true,
                                .error = "Integers to negative integer powers are not allowed",
                                .tf = {ForeignOp{"Pow", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State& s) {
    if constexpr (kIsInt<C>) {
      if constexpr (std::is_signed_v<C>)
        if (b < 0) return s.error = true, C(0);
      C result = 1;
      C base = a;
      for (auto e = static_cast<std::make_unsigned_t<C>>(b); e != 0; e >>= 1) {
        if (e & 1) result = WrapMul(result, base);
        base = WrapMul(base, base);
      }
      return result;
    } else {
      // Squares and cubes (a GELU's x^3, a variance's d^2) as products: one rounding for the
      // square, as pow's; loops with a constant exponent vectorize instead of calling pow.
      if (b == C(2)) return a * a;
      if (b == C(3)) return a * a * a;
      return std::pow(a, b);
    }
  }
};

// NaN-propagating like TensorFlow's maximum/minimum.
struct Maximum {
  static constexpr OpInfo kInfo{.name = "Maximum",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"Maximum", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    if constexpr (!kIsInt<C>) {
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
    }
    return a < b ? b : a;
  }
};

struct Minimum {
  static constexpr OpInfo kInfo{.name = "Minimum",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"Minimum", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    if constexpr (!kIsInt<C>) {
      if (std::isnan(a)) return a;
      if (std::isnan(b)) return b;
    }
    return b < a ? b : a;
  }
};

struct SquaredDifference {
  static constexpr OpInfo kInfo{.name = "SquaredDifference",
                                .pattern = Pattern::kBinary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"SquaredDifference", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    const C d = WrapSub(a, b);
    return WrapMul(d, d);
  }
};

// ---- float-only ----
struct Atan2 {
  static constexpr OpInfo kInfo{
      .name = "Atan2", .pattern = Pattern::kBinary, .types = kFloat, .tf = {ForeignOp{"Atan2", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C y, C x, State&) {
    return std::atan2(y, x);
  }
};

struct DivNoNan {
  static constexpr OpInfo kInfo{.name = "DivNoNan",
                                .pattern = Pattern::kBinary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"DivNoNan", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return b == C(0) ? C(0) : a / b;
  }
};

struct MulNoNan {
  static constexpr OpInfo kInfo{.name = "MulNoNan",
                                .pattern = Pattern::kBinary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"MulNoNan", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return b == C(0) ? C(0) : a * b;
  }
};

struct Xdivy {
  static constexpr OpInfo kInfo{
      .name = "Xdivy", .pattern = Pattern::kBinary, .types = kFloat, .tf = {ForeignOp{"Xdivy", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return a == C(0) ? C(0) : a / b;
  }
};

struct Xlogy {
  static constexpr OpInfo kInfo{
      .name = "Xlogy", .pattern = Pattern::kBinary, .types = kFloat, .tf = {ForeignOp{"Xlogy", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return a == C(0) ? C(0) : a * std::log(b);
  }
};

// ---- comparisons ----
struct Less {
  static constexpr OpInfo kInfo{.name = "Less",
                                .pattern = Pattern::kCompare,
                                .types = kNumeric,
                                .tf = {ForeignOp{"Less", kNumeric}},
                                .onnx = {ForeignOp{"Less", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C a, C b, State&) {
    return a < b;
  }
};

struct LessEqual {
  static constexpr OpInfo kInfo{.name = "LessEqual",
                                .pattern = Pattern::kCompare,
                                .types = kNumeric,
                                .tf = {ForeignOp{"LessEqual", kNumeric}},
                                .onnx = {ForeignOp{"LessOrEqual", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C a, C b, State&) {
    return a <= b;
  }
};

struct Greater {
  static constexpr OpInfo kInfo{.name = "Greater",
                                .pattern = Pattern::kCompare,
                                .types = kNumeric,
                                .tf = {ForeignOp{"Greater", kNumeric}},
                                .onnx = {ForeignOp{"Greater", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C a, C b, State&) {
    return a > b;
  }
};

struct GreaterEqual {
  static constexpr OpInfo kInfo{.name = "GreaterEqual",
                                .pattern = Pattern::kCompare,
                                .types = kNumeric,
                                .tf = {ForeignOp{"GreaterEqual", kNumeric}},
                                .onnx = {ForeignOp{"GreaterOrEqual", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C a, C b, State&) {
    return a >= b;
  }
};

// |a - b| < tolerance, the tolerance converted to the input dtype like TensorFlow's T(tolerance).
struct ApproximateEqual {
  static constexpr OpInfo kInfo{.name = "ApproximateEqual",
                                .pattern = Pattern::kCompare,
                                .types = kNumeric,
                                .param = "tolerance",
                                .param_default = 1e-5};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C a, C b, State& s) {
    if constexpr (kIsInt<C>) {
      const C d = WrapSub(a, b);
      const double ad = std::is_signed_v<C> ? std::abs(static_cast<double>(d)) : static_cast<double>(d);
      return ad < std::trunc(static_cast<double>(static_cast<float>(s.param)));
    } else {
      const C tol = Load<T>(Store<T>(static_cast<C>(static_cast<float>(s.param))));
      return std::abs(a - b) < tol;
    }
  }
};

// ---- logical and bitwise ----
struct LogicalAnd {
  static constexpr OpInfo kInfo{.name = "LogicalAnd",
                                .pattern = Pattern::kBinary,
                                .types = kBoolT,
                                .tf = {ForeignOp{"LogicalAnd", kBoolT}},
                                .onnx = {ForeignOp{"And", kBoolT}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C a, C b, State&) {
    return a && b;
  }
};

struct LogicalOr {
  static constexpr OpInfo kInfo{.name = "LogicalOr",
                                .pattern = Pattern::kBinary,
                                .types = kBoolT,
                                .tf = {ForeignOp{"LogicalOr", kBoolT}},
                                .onnx = {ForeignOp{"Or", kBoolT}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C a, C b, State&) {
    return a || b;
  }
};

struct BitwiseAnd {
  static constexpr OpInfo kInfo{.name = "BitwiseAnd",
                                .pattern = Pattern::kBinary,
                                .types = kInt,
                                .tf = {ForeignOp{"BitwiseAnd", kInt}},
                                .onnx = {ForeignOp{"BitwiseAnd", kInt}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return static_cast<C>(a & b);
  }
};

struct BitwiseOr {
  static constexpr OpInfo kInfo{.name = "BitwiseOr",
                                .pattern = Pattern::kBinary,
                                .types = kInt,
                                .tf = {ForeignOp{"BitwiseOr", kInt}},
                                .onnx = {ForeignOp{"BitwiseOr", kInt}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return static_cast<C>(a | b);
  }
};

struct BitwiseXor {
  static constexpr OpInfo kInfo{.name = "BitwiseXor",
                                .pattern = Pattern::kBinary,
                                .types = kInt,
                                .tf = {ForeignOp{"BitwiseXor", kInt}},
                                .onnx = {ForeignOp{"BitwiseXor", kInt}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return static_cast<C>(a ^ b);
  }
};

// Shift amounts are clamped to [0, bits - 1] (TensorFlow's UB-free definition).
template <typename C>
C ClampShift(C y) {
  constexpr C kMax = static_cast<C>(sizeof(C) * CHAR_BIT - 1);
  if constexpr (std::is_signed_v<C>)
    if (y < 0) return 0;
  return y > kMax ? kMax : y;
}

struct LeftShift {
  static constexpr OpInfo kInfo{
      .name = "LeftShift", .pattern = Pattern::kBinary, .types = kInt, .tf = {ForeignOp{"LeftShift", kInt}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    using U = WideUnsigned<C>;
    return static_cast<C>(static_cast<U>(static_cast<std::make_unsigned_t<C>>(a)) << ClampShift(b));
  }
};

struct RightShift {
  static constexpr OpInfo kInfo{
      .name = "RightShift", .pattern = Pattern::kBinary, .types = kInt, .tf = {ForeignOp{"RightShift", kInt}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C b, State&) {
    return static_cast<C>(a >> ClampShift(b));
  }  // arithmetic for signed
};

using BinaryOps =
    OpList<Add, Sub, Mul, Div, FloorDiv, FloorMod, TruncateMod, Pow, Maximum, Minimum, SquaredDifference, Atan2,
           DivNoNan, MulNoNan, Xdivy, Xlogy, Less, LessEqual, Greater, GreaterEqual, ApproximateEqual, LogicalAnd,
           LogicalOr, BitwiseAnd, BitwiseOr, BitwiseXor, LeftShift, RightShift>;

}  // namespace kiln::ir::elementwise
