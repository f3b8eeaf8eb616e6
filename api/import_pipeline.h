// The pass pipeline every imported graph goes through before it runs or is converted.
#pragma once

#include "ir/graph.h"

namespace kiln::api {

// Identity elimination, Einsum lowering (to MatMul / BatchMatMul), constant folding (with the
// reference kernels), Keras LSTM/GRU/SimpleRNN loop fusion, reshape-target folding, dead-code elimination;
// the verifier after each pass when `verify`.
void OptimizeImportedGraph(ir::Graph& graph, bool verify);

}  // namespace kiln::api
