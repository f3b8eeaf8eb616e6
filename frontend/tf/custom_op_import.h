// TensorFlow nodes whose op type a plugin registered (include/kiln/custom_op.h) import as one IR
// CustomOp node carrying the node's attributes (TensorFlow's internal "_"-prefixed ones excluded).
#pragma once

#include "common/custom_ops.h"
#include "frontend/tf/importer.h"

namespace kiln::tf {

void ImportCustomOp(ImportContext& ctx, const tfproto::NodeDef& node, const CustomOp& op);

}  // namespace kiln::tf
