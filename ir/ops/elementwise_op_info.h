// The description every elementwise IR op carries (OpInfo) and the list type the op tables are
// built from. Each op is a struct with `static constexpr OpInfo kInfo` and a formula
//   template <typename T, typename C = ComputeT<T>> static R Apply(C x, [C y,] State& state)
// where T is the storage type (float, Half, int8_t, bool, ...) and C the type it computes in.
// See ir/ops/elementwise_unary_ops.h and elementwise_binary_ops.h; docs/adding-ops.md.
#pragma once

#include <array>
#include <cstdint>

#include "ir/dtype_class.h"
#include "ir/ops/elementwise_scalar.h"

namespace kiln::ir::elementwise {

enum class Pattern : uint8_t {
  kUnary,      // y = f(x): x's dtype and shape
  kPredicate,  // y = f(x): bool, x's shape
  kBinary,     // z = f(x, y): numpy broadcasting, x's dtype (x and y have the same dtype)
  kCompare,    // z = f(x, y): numpy broadcasting, bool
};

inline constexpr int Arity(Pattern p) { return p == Pattern::kUnary || p == Pattern::kPredicate ? 1 : 2; }
inline constexpr bool ReturnsBool(Pattern p) { return p == Pattern::kPredicate || p == Pattern::kCompare; }

// A TF or ONNX op that imports as exactly this IR op (same inputs, no attributes), and the
// input dtypes imported for it: the framework's type constraint intersected with the IR op's.
struct ForeignOp {
  const char* name = nullptr;  // nullptr: no entry
  unsigned types = 0;
};

struct OpInfo {
  const char* name = nullptr;
  Pattern pattern = Pattern::kUnary;
  unsigned types = 0;  // DTypeClass mask of the inputs
  // The float32 formula may run inside fused elementwise loops (e.g. the CPU eltwise chain).
  bool fusible = false;
  // The run-time error when Apply sets state.error, or nullptr for ops that cannot fail.
  const char* error = nullptr;
  // The double attribute Apply reads as state.param (and its default), or nullptr.
  const char* param = nullptr;
  double param_default = 0;
  // The formula calls host-only math (ir/ops/elementwise_special_ops.h is not compiled for the
  // GPU), so GPU backends leave the op to the native fallback.
  bool host_only = false;
  std::array<ForeignOp, 2> tf{};
  std::array<ForeignOp, 2> onnx{};
};

// Fused loops compute in float32 and keep the running value's dtype and shape.
constexpr bool ValidFusible(const OpInfo& op) {
  return !op.fusible || ((op.pattern == Pattern::kUnary || op.pattern == Pattern::kBinary) && (op.types & kFloat) != 0);
}

// A compile-time list of op structs: ForEach calls fn.template operator()<Op>() for each.
template <typename... Ops>
struct OpList {
  static_assert((ValidFusible(Ops::kInfo) && ...),
                "a fusible op must be unary or binary and accept floating-point inputs");

  template <typename Fn>
  static void ForEach(Fn&& fn) {
    (fn.template operator()<Ops>(), ...);
  }
  static constexpr std::array<OpInfo, sizeof...(Ops)> kInfos = {Ops::kInfo...};
};

}  // namespace kiln::ir::elementwise
