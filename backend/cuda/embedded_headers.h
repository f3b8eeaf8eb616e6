// Source headers embedded in the library for NVRTC: the elementwise op formulas and what they
// include, and the standard-library stand-in (nvrtc_std.h). The list is in CMakeLists.txt.
#pragma once

#include <vector>

namespace kiln::backend::cuda {

struct EmbeddedHeader {
  const char* include_name;  // as #included: "ir/ops/elementwise_unary_ops.h", "kiln/half.h"
  const char* text;
};

const std::vector<EmbeddedHeader>& EmbeddedHeaders();

}  // namespace kiln::backend::cuda
