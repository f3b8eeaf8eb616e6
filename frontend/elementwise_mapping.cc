#include "frontend/elementwise_mapping.h"

#include <string>

#include "kiln/error.h"

namespace kiln::frontend {

const ElementwiseMapping& FindElementwiseMapping(const std::vector<ElementwiseMapping>& mappings,
                                                 std::string_view source_op) {
  for (const ElementwiseMapping& m : mappings)
    if (source_op == m.source_op) return m;
  throw Error(ErrorCode::kInternal, "elementwise importer registered for unknown op " + std::string(source_op));
}

}  // namespace kiln::frontend
