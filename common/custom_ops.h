// The process's custom op registry (include/kiln/custom_op.h): importers look ops up here, the IR's
// CustomOp node names its op by key.
#pragma once

#include <memory>
#include <string>

#include "kiln/custom_op.h"

namespace kiln {

// "tf:<op_type>" or "onnx:<domain>:<op_type>" (the default ONNX domain as "").
std::string CustomOpKey(const CustomOp& op);
std::string TfCustomOpKey(const std::string& op_type);
std::string OnnxCustomOpKey(const std::string& domain, const std::string& op_type);

// The op registered under `key`, or null. Registered ops are never removed.
std::shared_ptr<const CustomOp> FindCustomOp(const std::string& key);

}  // namespace kiln
