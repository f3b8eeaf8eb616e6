// ONNX nodes whose (domain, op_type) a plugin registered (include/kiln/custom_op.h) import as one
// IR CustomOp node carrying the node's attributes.
#pragma once

#include "common/custom_ops.h"
#include "frontend/onnx/importer.h"

namespace kiln::onnxfe {

void ImportCustomOp(ImportContext& ctx, const onnx::NodeProto& node, const CustomOp& op);

}  // namespace kiln::onnxfe
