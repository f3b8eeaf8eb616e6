// The special-function elementwise IR ops (TensorFlow's tf.math special functions): one struct
// per op holding its description (kInfo) and its formula (Apply), like the ops of
// elementwise_unary_ops.h / elementwise_binary_ops.h. Every dtype computes in double
// (ir/ops/special_math.h) and rounds once, so float32 results are correctly rounded up to the
// double algorithms' few-ulp error. The formulas call host-only math, so this header is not part
// of the GPU kernels' sources: the ops are host_only.
#pragma once

#include "ir/ops/elementwise_op_info.h"
#include "ir/ops/special_math.h"

namespace kiln::ir::elementwise {

template <double (*F)(double), typename C>
C InDouble(C x) {
  return static_cast<C>(F(static_cast<double>(x)));
}
template <double (*F)(double, double), typename C>
C InDouble(C a, C b) {
  return static_cast<C>(F(static_cast<double>(a), static_cast<double>(b)));
}

// ---- unary ----
struct Lgamma {
  static constexpr OpInfo kInfo{.name = "Lgamma",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"Lgamma", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return InDouble<special::Lgamma>(x);
  }
};

struct Digamma {
  static constexpr OpInfo kInfo{.name = "Digamma",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"Digamma", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return InDouble<special::Digamma>(x);
  }
};

struct Erfinv {
  static constexpr OpInfo kInfo{.name = "Erfinv",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"Erfinv", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return InDouble<special::Erfinv>(x);
  }
};

struct Ndtri {
  static constexpr OpInfo kInfo{.name = "Ndtri",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"Ndtri", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return InDouble<special::Ndtri>(x);
  }
};

struct BesselI0e {
  static constexpr OpInfo kInfo{.name = "BesselI0e",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"BesselI0e", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return InDouble<special::BesselI0e>(x);
  }
};

struct BesselI1e {
  static constexpr OpInfo kInfo{.name = "BesselI1e",
                                .pattern = Pattern::kUnary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"BesselI1e", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, State&) {
    return InDouble<special::BesselI1e>(x);
  }
};

// ---- binary (numpy broadcasting, as TensorFlow broadcasts them) ----
// Igamma(a, x): the regularized lower incomplete gamma function P(a, x).
struct Igamma {
  static constexpr OpInfo kInfo{.name = "Igamma",
                                .pattern = Pattern::kBinary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"Igamma", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C x, State&) {
    return InDouble<special::Igamma>(a, x);
  }
};

// Igammac(a, x) = 1 - P(a, x), computed directly where it is small.
struct Igammac {
  static constexpr OpInfo kInfo{.name = "Igammac",
                                .pattern = Pattern::kBinary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"Igammac", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C a, C x, State&) {
    return InDouble<special::Igammac>(a, x);
  }
};

// Zeta(x, q): the Hurwitz zeta function.
struct Zeta {
  static constexpr OpInfo kInfo{.name = "Zeta",
                                .pattern = Pattern::kBinary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"Zeta", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C x, C q, State&) {
    return InDouble<special::Zeta>(x, q);
  }
};

// Polygamma(n, x): the n-th derivative of digamma.
struct Polygamma {
  static constexpr OpInfo kInfo{.name = "Polygamma",
                                .pattern = Pattern::kBinary,
                                .types = kFloat,
                                .fusible = true,
                                .host_only = true,
                                .tf = {ForeignOp{"Polygamma", kFloat}}};
  template <typename T, typename C = ComputeT<T>>
  static C Apply(C n, C x, State&) {
    return InDouble<special::Polygamma>(n, x);
  }
};

using SpecialUnaryOps = OpList<Lgamma, Digamma, Erfinv, Ndtri, BesselI0e, BesselI1e>;
using SpecialBinaryOps = OpList<Igamma, Igammac, Zeta, Polygamma>;

}  // namespace kiln::ir::elementwise
