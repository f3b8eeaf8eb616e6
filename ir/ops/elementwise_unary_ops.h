// The unary elementwise IR ops: one struct per op holding its description (kInfo) and its
// formula (Apply), which the reference kernels and fused loops evaluate. Float32 math runs in
// float (std:: float overloads), float64 in double, half/bfloat16 in float with one rounding at
// the end. Composite activations follow TensorFlow's formulas. Adding an op: write its struct
// here and list it in UnaryOps at the end (docs/adding-ops.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ir/ops/elementwise_op_info.h"

namespace kiln::ir::elementwise {

// ---- float math ----
// exp, tanh, log and log1p in float32 without a library call, so that loops over them vectorize
// (libm's expf, tanhf, logf, log1pf are scalar calls; tanhf costs ~40 cycles an element).
// Selects, arithmetic and integer bit operations only. NVRTC keeps the GPU's own functions.
//
// exp: Cephes' expf. n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts, the first exact in
// n * C1), a degree-7 polynomial for exp(r) on [-ln2/2, ln2/2], times 2^n written into the
// exponent bits of two factors (2^(n/2) each, so results down to the subnormals come out with one
// rounding). Within 1 ulp of the exact value over all floats (an exhaustive check: 0.99 ulp);
// overflow gives +inf, underflow 0, NaN stays NaN.
inline float ExpFloat32(float x) {
  const float finite = x == x ? x : 0.0f;  // no float-to-int conversion of a NaN
  const float c = finite < -104.0f ? -104.0f : (finite > 89.0f ? 89.0f : finite);
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting rounds to an integer
  const float n = (c * 1.44269504088896341f + kMagic) - kMagic;
  float r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t ni = static_cast<int32_t>(n);  // in [-150, 129]
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const uint32_t b1 = static_cast<uint32_t>(n1 + 127) << 23, b2 = static_cast<uint32_t>(n2 + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, sizeof s1);
  std::memcpy(&s2, &b2, sizeof s2);
  const float value = y * s1 * s2;
  return x == x ? value : x;
}

// tanh: Cephes' tanhf. An odd polynomial below 0.625; 1 - 2 / (exp(2|x|) + 1) above, saturating
// (exp(20) keeps the quotient below half an ulp of 1 beyond 10). Within 1.4 ulp of the exact
// value over all floats (exhaustive check: 1.33 ulp); tanh(-0) is -0, NaN stays NaN.
inline float TanhFloat32(float x) {
  const float a = x < 0.0f ? -x : x;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z + -5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z + -3.33332819422e-1f;
  const float small = x + x * z * p;
  const float e = ExpFloat32(2.0f * (a < 10.0f ? a : 10.0f));
  const float t = 1.0f - 2.0f / (e + 1.0f);
  const float large = x < 0.0f ? -t : t;
  const float value = a < 0.625f ? small : large;
  return x == x && x != 0.0f ? value : x;  // NaN and -0 as they are
}

// log: Cephes' logf. x = m * 2^e with m in [sqrt(1/2), sqrt(2)) read from the bits (subnormals
// scaled by 2^23 first), log(m) = f - f^2/2 + f^3 P(f) with f = m - 1, plus e * ln 2 in two parts.
// Within 1 ulp over all floats (exhaustive check: 0.83 ulp); log(0) = -inf, log(x < 0) = NaN,
// log(inf) = inf.
inline float LogFloat32(float x) {
  const bool subnormal = x < 1.17549435e-38f;
  const float scaled = subnormal ? x * 8388608.0f : x;  // 2^23
  uint32_t bits;
  std::memcpy(&bits, &scaled, sizeof bits);
  const int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xffu) - 126 - (subnormal ? 23 : 0);
  const uint32_t mantissa_bits = (bits & 0x007fffffu) | 0x3f000000u;  // m in [0.5, 1)
  float m;
  std::memcpy(&m, &mantissa_bits, sizeof m);
  const bool low = m < 0.707106781186547524f;
  const float e = static_cast<float>(low ? exponent - 1 : exponent);
  const float f = low ? m + m - 1.0f : m - 1.0f;
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f + -1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f + -1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f + -1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f + -2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  y = y + e * -2.12194440e-4f;
  y = y + z * -0.5f;
  const float value = (f + y) + e * 0.693359375f;
  const float inf = 1.0f / 0.0f;
  // A NaN from its bits: inf - inf would be +NaN where the compiler folds it and -NaN where the
  // CPU computes it, and chains must match the reference kernel bit for bit.
  const uint32_t nan_bits = 0x7fc00000u;
  float nan;
  std::memcpy(&nan, &nan_bits, sizeof nan);
  const float special = x == 0.0f ? -inf : (x < 0.0f ? nan : x);  // -inf, NaN; inf and NaN as they are
  return x > 0.0f && x < inf ? value : special;
}

// log1p: u * log(w) / (w - 1) with w = 1 + u rounded (the quotient corrects log(w) for the
// rounding of w); u itself where w rounds to 1. Within 2.5 ulp over all floats (exhaustive check:
// 2.47 ulp); log1p(-1) = -inf, below -1 NaN, log1p(inf) = inf, log1p(-0) = -0.
inline float Log1pFloat32(float u) {
  const float w = 1.0f + u;
  const float d = w - 1.0f;
  const float corrected = LogFloat32(w) * (u / (d == 0.0f ? 1.0f : d));
  const float inf = 1.0f / 0.0f;
  const float value = d == 0.0f ? u : corrected;
  return u == inf ? u : (u == -1.0f ? -inf : value);
}

// exp, tanh, log and log1p for the compute type: the functions above in float32 on the CPU, the
// library's otherwise (float64, and the GPU's own float32 functions).
template <typename C>
C ExpOf(C x) {
#if !defined(__CUDACC_RTC__)
  if constexpr (std::is_same_v<C, float>) return ExpFloat32(x);
#endif
  return std::exp(x);
}

template <typename C>
C TanhOf(C x) {
#if !defined(__CUDACC_RTC__)
  if constexpr (std::is_same_v<C, float>) return TanhFloat32(x);
#endif
  return std::tanh(x);
}

template <typename C>
C LogOf(C x) {
#if !defined(__CUDACC_RTC__)
  if constexpr (std::is_same_v<C, float>) return LogFloat32(x);
#endif
  return std::log(x);
}

template <typename C>
C Log1pOf(C x) {
#if !defined(__CUDACC_RTC__)
  if constexpr (std::is_same_v<C, float>) return Log1pFloat32(x);
#endif
  return std::log1p(x);
}

struct Exp {
  static constexpr OpInfo kInfo{.name = "Exp",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Exp", kFloat}},
                                .onnx = {ForeignOp{"Exp", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return ExpOf(x);
  }
};

struct Expm1 {
  static constexpr OpInfo kInfo{.name = "Expm1",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Expm1", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::expm1(x);
  }
};

struct Log {
  static constexpr OpInfo kInfo{.name = "Log",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Log", kFloat}},
                                .onnx = {ForeignOp{"Log", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return LogOf(x);
  }
};

struct Log1p {
  static constexpr OpInfo kInfo{.name = "Log1p",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Log1p", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return Log1pOf(x);
  }
};

struct Sqrt {
  static constexpr OpInfo kInfo{.name = "Sqrt",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Sqrt", kFloat}},
                                .onnx = {ForeignOp{"Sqrt", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::sqrt(x);
  }
};

struct Rsqrt {
  static constexpr OpInfo kInfo{.name = "Rsqrt",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Rsqrt", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return C(1) / std::sqrt(x);
  }
};

struct Sin {
  static constexpr OpInfo kInfo{.name = "Sin",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Sin", kFloat}},
                                .onnx = {ForeignOp{"Sin", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::sin(x);
  }
};

struct Cos {
  static constexpr OpInfo kInfo{.name = "Cos",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Cos", kFloat}},
                                .onnx = {ForeignOp{"Cos", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::cos(x);
  }
};

struct Tan {
  static constexpr OpInfo kInfo{.name = "Tan",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Tan", kFloat}},
                                .onnx = {ForeignOp{"Tan", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::tan(x);
  }
};

struct Asin {
  static constexpr OpInfo kInfo{.name = "Asin",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Asin", kFloat}},
                                .onnx = {ForeignOp{"Asin", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::asin(x);
  }
};

struct Acos {
  static constexpr OpInfo kInfo{.name = "Acos",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Acos", kFloat}},
                                .onnx = {ForeignOp{"Acos", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::acos(x);
  }
};

struct Atan {
  static constexpr OpInfo kInfo{.name = "Atan",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Atan", kFloat}},
                                .onnx = {ForeignOp{"Atan", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::atan(x);
  }
};

struct Sinh {
  static constexpr OpInfo kInfo{.name = "Sinh",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Sinh", kFloat}},
                                .onnx = {ForeignOp{"Sinh", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::sinh(x);
  }
};

struct Cosh {
  static constexpr OpInfo kInfo{.name = "Cosh",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Cosh", kFloat}},
                                .onnx = {ForeignOp{"Cosh", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::cosh(x);
  }
};

struct Tanh {
  static constexpr OpInfo kInfo{.name = "Tanh",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Tanh", kFloat}},
                                .onnx = {ForeignOp{"Tanh", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return TanhOf(x);
  }
};

struct Asinh {
  static constexpr OpInfo kInfo{.name = "Asinh",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Asinh", kFloat}},
                                .onnx = {ForeignOp{"Asinh", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::asinh(x);
  }
};

struct Acosh {
  static constexpr OpInfo kInfo{.name = "Acosh",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Acosh", kFloat}},
                                .onnx = {ForeignOp{"Acosh", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::acosh(x);
  }
};

struct Atanh {
  static constexpr OpInfo kInfo{.name = "Atanh",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .tf = {ForeignOp{"Atanh", kFloat}},
                                .onnx = {ForeignOp{"Atanh", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::atanh(x);
  }
};

struct Ceil {
  static constexpr OpInfo kInfo{.name = "Ceil",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Ceil", kFloat}},
                                .onnx = {ForeignOp{"Ceil", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::ceil(x);
  }
};

struct Floor {
  static constexpr OpInfo kInfo{.name = "Floor",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Floor", kFloat}},
                                .onnx = {ForeignOp{"Floor", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::floor(x);
  }
};

// erf in float32 without a library call, so that loops over it vectorize (libm's erff is a
// scalar call: 20-40 cycles per element). Two polynomials fitted to erf (least squares at
// Chebyshev nodes): x * P(x^2) below 1, and a degree-14 polynomial in (|x| - 2.5) / 1.5 on [1, 4];
// 1 beyond. At most 3 ulp (1.9e-7 relative) from the exact
// value over all floats; NaN stays NaN, erf(-0) is -0. Selects and arithmetic only (the CUDA
// kernels compile the same code).
inline float ErfFloat32(float x) {
  const float a = x < 0.0f ? -x : x;
  const float t = x * x;
  float p = -9.673591194e-06f;
  p = p * t + 1.126825373e-04f;
  p = p * t + -8.484396385e-04f;
  p = p * t + 5.221053492e-03f;
  p = p * t + -2.686543763e-02f;
  p = p * t + 1.128378287e-01f;
  p = p * t + -3.761263788e-01f;
  p = p * t + 1.128379226e+00f;
  // 1 beyond 4 (erf(4) is 1 - 1.5e-8); a NaN is put back at the end.
  const float clamped = a < 4.0f ? a : 4.0f;
  const float s = (clamped - 2.5f) * (1.0f / 1.5f);
  float q = 2.598570718e-04f;
  q = q * s + 9.703089745e-05f;
  q = q * s + -2.039517742e-03f;
  q = q * s + 1.536217169e-03f;
  q = q * s + 4.676661920e-03f;
  q = q * s + -1.040347293e-02f;
  q = q * s + 6.630969699e-03f;
  q = q * s + 9.574278258e-03f;
  q = q * s + -3.186589479e-02f;
  q = q * s + 4.639105126e-02f;
  q = q * s + -4.365193471e-02f;
  q = q * s + 2.818722278e-02f;
  q = q * s + -1.225279924e-02f;
  q = q * s + 3.267277032e-03f;
  q = q * s + 9.995930195e-01f;
  // Both values are computed and one selected (a select of computed values vectorizes where
  // floating-point exceptions are not observed: backend/cpu/eltwise_chain.cc).
  const float small = x * p;
  const float saturated = a < 4.0f ? q : 1.0f;
  const float large = x < 0.0f ? -saturated : saturated;
  const float value = a < 1.0f ? small : large;
  return x == x ? value : x;
}

// erf for the compute type: the polynomial in float32, libm's erf in float64.
template <typename C>
C ErfOf(C x) {
  if constexpr (std::is_same_v<C, float>)
    return ErfFloat32(x);
  else
    return std::erf(x);
}

// ONNX's Erf also takes integers (imported through a float64 cast), so it has its own importer.
struct Erf {
  static constexpr OpInfo kInfo{
      .name = "Erf", .pattern = Pattern::kUnary, .types = kFloat, .fusible = true, .tf = {ForeignOp{"Erf", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return ErfOf(x);
  }
};

// The exact GELU (ONNX Gelu's default): x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))). Importers
// write it decomposed; the GELU fusion pass (ir/passes/gelu_fusion.cc) makes this op of it.
struct Gelu {
  static constexpr OpInfo kInfo{.name = "Gelu", .pattern = Pattern::kUnary, .types = kFloat, .fusible = true};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return C(0.5) * x * (C(1) + ErfOf(x * C(0.70710678118654752440)));
  }
};

struct Erfc {
  static constexpr OpInfo kInfo{
      .name = "Erfc", .pattern = Pattern::kUnary, .types = kFloat, .fusible = true, .tf = {ForeignOp{"Erfc", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return std::erfc(x);
  }
};

// ---- activations ----
// Numerically stable logistic: never evaluates exp of a large positive number.
struct Sigmoid {
  static constexpr OpInfo kInfo{.name = "Sigmoid",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Sigmoid", kFloat}},
                                .onnx = {ForeignOp{"Sigmoid", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    const C e = ExpOf(x < C(0) ? x : -x);  // exp(-|x|) <= 1
    return x >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e);
  }
};

// TensorFlow: x < 0 ? exp(x) - 1 : x. (ONNX's Elu has an alpha attribute: own importer.)
struct Elu {
  static constexpr OpInfo kInfo{
      .name = "Elu", .pattern = Pattern::kUnary, .types = kFloat, .fusible = true, .tf = {ForeignOp{"Elu", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return x < C(0) ? ExpOf(x) - C(1) : x;
  }
};

// TensorFlow: x < 0 ? scale * alpha * (exp(x) - 1) : scale * x.
struct Selu {
  static constexpr OpInfo kInfo{
      .name = "Selu", .pattern = Pattern::kUnary, .types = kFloat, .fusible = true, .tf = {ForeignOp{"Selu", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return x < C(0) ? C(1.7580993408473768599402175208123) * (ExpOf(x) - C(1))
                    : C(1.0507009873554804934193349852946) * x;
  }
};

// TensorFlow's stable softplus: with t = log(epsilon) + 2 of the storage type,
// x > -t: x;  x < t: exp(x);  else log1p(exp(x)).
struct Softplus {
  static constexpr OpInfo kInfo{.name = "Softplus",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Softplus", kFloat}},
                                .onnx = {ForeignOp{"Softplus", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    const C threshold = static_cast<C>(std::log(Epsilon<T>()) + 2.0);
    // Every branch's value computed, one selected: the loops over it vectorize.
    const C e = ExpOf(x);
    const C middle = Log1pOf(e);
    return x > -threshold ? x : (x < threshold ? e : middle);
  }
};

struct Softsign {
  static constexpr OpInfo kInfo{.name = "Softsign",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .tf = {ForeignOp{"Softsign", kFloat}},
                                .onnx = {ForeignOp{"Softsign", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return x / (C(1) + std::abs(x));
  }
};

// x > 0 ? x : alpha * x, alpha rounded to the storage type like TensorFlow's static_cast<T>(alpha).
// The frameworks' defaults for alpha differ, so each has its own importer.
struct LeakyRelu {
  static constexpr OpInfo kInfo{.name = "LeakyRelu",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .param = "alpha",
                                .param_default = 0.2};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State& s) {
    const C alpha = Load<T>(Store<T>(static_cast<C>(static_cast<float>(s.param))));
    return x > C(0) ? x : x * alpha;
  }
};

struct Relu {
  static constexpr OpInfo kInfo{.name = "Relu",
                                .pattern = Pattern::kUnary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"Relu", kNumeric}},
                                .onnx = {ForeignOp{"Relu", kFloat | kSigned}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    if constexpr (!kIsInt<C>)
      if (std::isnan(x)) return x;
    return x > C(0) ? x : C(0);
  }
};

struct Relu6 {
  static constexpr OpInfo kInfo{.name = "Relu6",
                                .pattern = Pattern::kUnary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"Relu6", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    if constexpr (!kIsInt<C>)
      if (std::isnan(x)) return x;
    return x > C(0) ? (x < C(6) ? x : C(6)) : C(0);
  }
};

// ---- numeric ----
struct Abs {
  static constexpr OpInfo kInfo{.name = "Abs",
                                .pattern = Pattern::kUnary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"Abs", kFloat | kSigned}},
                                .onnx = {ForeignOp{"Abs", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    if constexpr (std::is_unsigned_v<C>)
      return x;
    else if constexpr (kIsInt<C>)
      return x < 0 ? WrapNeg(x) : x;  // abs(INT_MIN) == INT_MIN
    else
      return std::abs(x);
  }
};

struct Neg {
  static constexpr OpInfo kInfo{.name = "Neg",
                                .pattern = Pattern::kUnary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"Neg", kFloat | kSigned}},
                                .onnx = {ForeignOp{"Neg", kFloat | kSigned}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return WrapNeg(x);
  }
};

struct Reciprocal {
  static constexpr OpInfo kInfo{.name = "Reciprocal",
                                .pattern = Pattern::kUnary,
                                .types = kNumeric,
                                .fusible = true,
                                .error = "integer division by zero",
                                .tf = {ForeignOp{"Reciprocal", kFloat | kSigned}, ForeignOp{"Inv", kFloat | kSigned}},
                                .onnx = {ForeignOp{"Reciprocal", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State& s) {
    if constexpr (kIsInt<C>) {
      if (x == 0) {
        s.error = true;
        return 0;
      }
      if constexpr (std::is_signed_v<C>)
        return x == C(-1) ? C(-1) : C(C(1) / x);
      else
        return C(C(1) / x);
    } else {
      return C(1) / x;
    }
  }
};

struct Square {
  static constexpr OpInfo kInfo{.name = "Square",
                                .pattern = Pattern::kUnary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"Square", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return WrapMul(x, x);
  }
};

struct Sign {
  static constexpr OpInfo kInfo{.name = "Sign",
                                .pattern = Pattern::kUnary,
                                .types = kNumeric,
                                .tf = {ForeignOp{"Sign", kFloat | kSigned}},
                                .onnx = {ForeignOp{"Sign", kNumeric}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    if constexpr (std::is_unsigned_v<C>)
      return x > 0 ? C(1) : C(0);
    else if constexpr (kIsInt<C>)
      return static_cast<C>((x > 0) - (x < 0));
    else
      return std::isnan(x) ? x : static_cast<C>((x > C(0)) - (x < C(0)));
  }
};

// Round half to even (TensorFlow Round and Rint, ONNX Round); identity on integers.
struct Round {
  static constexpr OpInfo kInfo{.name = "Round",
                                .pattern = Pattern::kUnary,
                                .types = kNumeric,
                                .fusible = true,
                                .tf = {ForeignOp{"Round", kFloat | kSigned}, ForeignOp{"Rint", kFloat}},
                                .onnx = {ForeignOp{"Round", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    if constexpr (kIsInt<C>)
      return x;
    else
      return std::nearbyint(x);
  }
};

// The nearest float8 E4M3FN value (FP8 on Hopper's tensor cores: 4 exponent bits, 3 mantissa
// bits, no infinities, largest finite 448), ties to even, saturating beyond ±448 as the hardware's
// satfinite conversion does; NaN stays NaN. The result is a float of the input's type: FP8
// precision's quantize-dequantize steps (convert/calibration_table.h) round through it.
struct RoundFloat8E4M3 {
  static constexpr OpInfo kInfo{
      .name = "RoundFloat8E4M3", .pattern = Pattern::kUnary, .types = kFloat, .fusible = true};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    if (std::isnan(x)) return x;
    const C a = x < C(0) ? -x : x;
    if (a >= C(448)) return x < C(0) ? C(-448) : C(448);
    // E4M3 values near a are 2^(e - 3) apart (e = a's binary exponent), 2^-9 below the smallest
    // normal 2^-6; dividing by that power of two is exact, so rounding the quotient rounds the
    // mantissa. Should float's exponent of a be one too high (a just below a power of two), the
    // quotient rounds to 8 steps, the same power of two.
    const float af = static_cast<float>(a);
    uint32_t bits = 0;
    std::memcpy(&bits, &af, sizeof bits);
    int exponent = static_cast<int>(bits >> 23) - 127;
    if (exponent < -6) exponent = -6;
    const uint32_t step_bits = static_cast<uint32_t>(exponent - 3 + 127) << 23;
    float step = 0;
    std::memcpy(&step, &step_bits, sizeof step);
    const C r = std::nearbyint(a / static_cast<C>(step)) * static_cast<C>(step);
    return x < C(0) ? -r : r;
  }
  // The E4M3FN byte of a value Apply returned (sign, 4 exponent bits biased by 7, 3 mantissa bits;
  // subnormals below 2^-6; NaN as 0x7F): what FP8 kernels read and write.
  static uint8_t Bits(float r) {
    if (std::isnan(r)) return 0x7F;
    uint32_t bits = 0;
    std::memcpy(&bits, &r, sizeof bits);
    const uint8_t sign = (bits >> 31) != 0 ? 0x80 : 0x00;
    const float a = r < 0.0f ? -r : r;
    if (a == 0.0f) return sign;
    bits &= 0x7FFFFFFFu;
    const int exponent = static_cast<int>(bits >> 23) - 127;
    if (exponent < -6) return static_cast<uint8_t>(sign | static_cast<uint8_t>(a * 512.0f));  // multiples of 2^-9
    const uint32_t mantissa = (bits >> 20) & 0x7;
    return static_cast<uint8_t>(sign | static_cast<uint32_t>(exponent + 7) << 3 | mantissa);
  }
};

// ---- integer and bool ----
struct Invert {
  static constexpr OpInfo kInfo{.name = "Invert",
                                .pattern = Pattern::kUnary,
                                .types = kInt,
                                .tf = {ForeignOp{"Invert", kInt}},
                                .onnx = {ForeignOp{"BitwiseNot", kInt}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return static_cast<C>(~x);
  }
};

struct LogicalNot {
  static constexpr OpInfo kInfo{.name = "LogicalNot",
                                .pattern = Pattern::kUnary,
                                .types = kBoolT,
                                .tf = {ForeignOp{"LogicalNot", kBoolT}},
                                .onnx = {ForeignOp{"Not", kBoolT}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C x, State&) {
    return !x;
  }
};

// ---- predicates ----
struct IsNan {
  static constexpr OpInfo kInfo{.name = "IsNan",
                                .pattern = Pattern::kPredicate,
                                .types = kFloat,
                                .tf = {ForeignOp{"IsNan", kFloat}},
                                .onnx = {ForeignOp{"IsNaN", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C x, State&) {
    return std::isnan(x);
  }
};

// ONNX's IsInf has detect_negative/detect_positive attributes: own importer.
struct IsInf {
  static constexpr OpInfo kInfo{
      .name = "IsInf", .pattern = Pattern::kPredicate, .types = kFloat, .tf = {ForeignOp{"IsInf", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C x, State&) {
    return std::isinf(x);
  }
};

struct IsFinite {
  static constexpr OpInfo kInfo{
      .name = "IsFinite", .pattern = Pattern::kPredicate, .types = kFloat, .tf = {ForeignOp{"IsFinite", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static bool Apply(C x, State&) {
    return std::isfinite(x);
  }
};

using UnaryOps = OpList<Exp, Expm1, Log, Log1p, Sqrt, Rsqrt, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Tanh, Asinh,
                        Acosh, Atanh, Ceil, Floor, Erf, Erfc, Gelu, Sigmoid, Elu, Selu, Softplus, Softsign, LeakyRelu, Relu,
                        Relu6, Abs, Neg, Reciprocal, Square, Sign, Round, RoundFloat8E4M3, Invert, LogicalNot, IsNan, IsInf,
                        IsFinite>;

}  // namespace kiln::ir::elementwise
