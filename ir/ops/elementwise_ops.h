// The table of elementwise IR ops described by OpInfo (ir/ops/elementwise_op_info.h): every
// unary and binary op with a formula. The IR schemas, the reference kernels, the CPU eltwise
// chain and the TF/ONNX importers are all built from it. Elementwise ops with their own rules
// (Equal/NotEqual, Select, Cast, Clip, AddN, fake quantization) are registered by hand in
// ir/ops/elementwise.cc.
#pragma once

#include <span>
#include <string_view>

#include "ir/attr.h"
#include "ir/ops/elementwise_binary_ops.h"
#include "ir/ops/elementwise_special_ops.h"
#include "ir/ops/elementwise_unary_ops.h"

namespace kiln::ir::elementwise {

// Calls fn.template operator()<Op>() for every op struct of the table.
template <typename Fn>
void ForEachOp(Fn&& fn) {
  UnaryOps::ForEach(fn);
  BinaryOps::ForEach(fn);
  SpecialUnaryOps::ForEach(fn);
  SpecialBinaryOps::ForEach(fn);
}

// Every op's description: unary ops, binary ops, then the special functions, each group in list
// order.
std::span<const OpInfo> AllOps();

// The description of an IR op, or nullptr when it is not in the table.
const OpInfo* FindOp(std::string_view name);

// The value of the op's scalar attribute on a node (OpInfo::param; its default when the node
// does not set it); 0 for ops without one.
double ParamOf(const OpInfo& op, const AttrMap& attrs);

}  // namespace kiln::ir::elementwise
