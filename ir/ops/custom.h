// The IR's CustomOp node: an op of a plugin (include/kiln/custom_op.h), named by its registry key in
// the attribute "custom_op"; the node's own attributes are stored as "attr:<name>".
#pragma once

#include <memory>
#include <string>

#include "common/custom_ops.h"
#include "ir/attr.h"

namespace kiln::ir {

inline constexpr char kCustomOp[] = "CustomOp";
inline constexpr char kCustomOpKeyAttr[] = "custom_op";

// The attributes a CustomOp node for `op` starts with (its key), and the importers' shared checks:
// the message for an input count `op` does not take ("" when it does).
AttrMap CustomOpNodeAttrs(const CustomOp& op);
std::string CustomOpInputCountError(const CustomOp& op, int num_inputs);
// A tensor attribute as plugins see it (raw bytes; kUnimplemented naming `name` for strings).
CustomTensorAttr CustomTensorAttrOf(const Tensor& tensor, const std::string& name);
// Stores a plugin attribute on a CustomOp node. kInvalidArgument for tensor attrs whose bytes do
// not match their dtype and dims.
void SetCustomAttr(AttrMap& attrs, const std::string& name, const CustomAttrValue& value);
// The plugin attributes of a CustomOp node.
CustomAttrs CustomAttrsOf(const AttrMap& attrs);
// The registered op a CustomOp node names; kFailedPrecondition naming it (and how to register it)
// when no plugin registered it in this process.
std::shared_ptr<const CustomOp> CustomOpOf(const AttrMap& attrs);

}  // namespace kiln::ir
