// Source ops a frontend imports as one attribute-free IR op of the elementwise table
// (ir/ops/elementwise_ops.h lists each IR op's TensorFlow and ONNX names and the dtypes
// imported for them; each frontend collects its format's names from there).
#pragma once

#include <string_view>
#include <vector>

namespace kiln::frontend {

struct ElementwiseMapping {
  const char* source_op;  // the TF or ONNX op type
  const char* ir_op;
  unsigned types;  // DTypeClass mask of input 0's dtypes imported
  int arity;
};

// The mapping of `source_op`; kInternal when there is none (an importer registered for an op
// it does not map).
const ElementwiseMapping& FindElementwiseMapping(const std::vector<ElementwiseMapping>& mappings,
                                                 std::string_view source_op);

}  // namespace kiln::frontend
