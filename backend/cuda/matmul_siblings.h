// Sibling matrix products: MatMuls (or BatchMatMuls with a rank-2 right operand, as ONNX's
// MatMul of activations by a weight imports) that read one left operand and constant right operands of
// one shape, each optionally followed by a bias Add (a transformer's query, key and value
// projections). The CUDA engine runs such a group as one strided-batched cuBLASLt product
// (the left operand shared, the weights and biases stacked), writing the G results one after
// another into one buffer, so each result is stored exactly as its own product would be.
#pragma once

#include <functional>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

struct MatMulSiblings {
  ir::ValueId left = ir::kNoValue;        // the shared left operand [..., k]
  std::vector<const ir::Node*> products;  // the MatMul nodes, in graph order
  std::vector<const ir::Node*> biases;    // their bias Adds, one per product, or none at all
  std::vector<ir::ValueId> outputs;       // each product's value (after its bias)
  Tensor weights;                         // the right operands stacked: [G, rows, cols]
  Tensor bias;                            // the bias vectors stacked: [G, n]; empty without
};

// Whether `bias` is a constant vector along the last dim of `product` (shape [n], or with
// leading dims of 1) of its dtype: what cuBLASLt's bias epilogue adds.
bool IsColumnBias(const ir::Graph& graph, ir::ValueId bias, ir::ValueId product);

// Every group of at least two sibling products among the nodes `eligible` accepts. A product
// qualifies when: its left operand is not a constant and is not transposed; its right operand
// is a rank-2 constant of the left's dtype (float32, float16 or bfloat16); neither it nor its
// bias Add is a graph output; a row of its result is a whole number of 16 bytes (so each
// result in the shared buffer stays aligned). Siblings share the right operand's shape and
// transposition, and either all have a bias Add (the product's only reader) or none has.
std::vector<MatMulSiblings> FindMatMulSiblings(const ir::Graph& graph,
                                               const std::vector<std::vector<ir::NodeId>>& consumers,
                                               const std::function<bool(ir::NodeId)>& eligible);

}  // namespace kiln::backend::cuda
