// The pass pipeline every imported graph goes through before it runs or is converted.
#pragma once

#include "ir/graph.h"

namespace kiln::runtime {

// Identity elimination, constant folding (with the reference kernels), dead-code elimination;
// the verifier after each pass when `verify`.
void OptimizeImportedGraph(ir::Graph& graph, bool verify);

}  // namespace kiln::runtime
