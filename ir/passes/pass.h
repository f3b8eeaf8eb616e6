// The IR pass pipeline: each pass rewrites a graph in place and reports whether it changed
// anything. The verifier can run after every pass, and graphs can be dumped between passes.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  // Returns true when the graph changed.
  virtual bool Run(Graph& graph) = 0;
};

struct PipelineOptions {
  bool verify_each = true;                           // run Verify() after every pass
  std::function<void(const std::string&)> log;        // per-pass one-line reports (optional)
  std::function<void(const std::string& pass, const Graph&)> dump;  // IR dumps between passes (optional)
};

class PassPipeline {
 public:
  void Add(std::unique_ptr<Pass> pass) { passes_.push_back(std::move(pass)); }
  // Runs every pass once, in order, on the graph and (recursively) on its subgraphs.
  void Run(Graph& graph, const PipelineOptions& options = {}) const;

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
};

// Evaluates one node on host tensors (the reference kernels); used by constant folding.
using NodeEvaluator = std::function<std::vector<Tensor>(const Node&, std::span<const Tensor>)>;

std::unique_ptr<Pass> MakeIdentityElimination();
std::unique_ptr<Pass> MakeConstantFolding(NodeEvaluator evaluate, size_t max_output_bytes = size_t{256} << 20);
std::unique_ptr<Pass> MakeDeadCodeElimination();
std::unique_ptr<Pass> MakeShapeInference();
// Constant targets for Reshapes computed from the input's own shape (see simplify.cc).
std::unique_ptr<Pass> MakeReshapeTargetFolding();
// SpecializeShapes (graph_util.h) with the graph's shape computations (Shape, Gather, Concat, ...
// of dims the inputs fix) folded as well, shape-sized values only, until nothing folds: an
// exporter's Reshape to a target computed through ops symbolic inference cannot follow then gets
// a static shape too (CPU engines plan their arena with it).
std::vector<std::optional<kiln::Shape>> SpecializeShapesFolding(const Graph& graph,
                                                                const std::vector<kiln::Shape>& inputs,
                                                                const NodeEvaluator& evaluate);

// Layout passes (layout.cc) for backends that prefer channels-last: NCHW Conv2D,
// DepthwiseConv2D, MaxPool and AvgPool run NHWC between Transposes; then Transposes sink through
// elementwise ops and keep_dims reductions, merge, cancel, or become Reshapes when they move no data.
std::unique_ptr<Pass> MakeChannelsLast();
std::unique_ptr<Pass> MakeTransposeSinking();

// A zero Pad of the spatial dims that only 2-D convolutions read becomes their EXPLICIT padding
// (pad_folding.cc).
std::unique_ptr<Pass> MakePadFolding();

// Small equal constants, then equal nodes (same op, inputs and attributes), become one (cse.cc).
std::unique_ptr<Pass> MakeCommonSubexpressionElimination();

// Decomposed layer normalizations (ReduceMean, Sub, squared mean, Rsqrt or Sqrt, then scale and
// bias) become LayerNorm nodes, for backends with a layer-norm kernel (layer_norm_fusion.cc).
std::unique_ptr<Pass> MakeLayerNormFusion();

// Decomposed exact GELUs (x * 0.5 * (1 + erf(x / sqrt(2))), in the orders exporters write) become
// Gelu nodes (gelu_fusion.cc).
std::unique_ptr<Pass> MakeGeluFusion();

// Two-operand Einsums become Transposes, Reshapes and one MatMul / BatchMatMul (einsum_lowering.cc).
std::unique_ptr<Pass> MakeEinsumLowering();

// The While loops Keras 3 exports for LSTM, GRU and SimpleRNN layers (TensorList-based, default
// activations, no mask) become one LSTM / GRU / RNN node (keras_rnn_fusion.cc).
std::unique_ptr<Pass> MakeKerasRnnFusion();
// Structural checks; throws kInternal describing the first problem found.
void Verify(const Graph& graph);

// Human-readable listing of a graph (one line per node) for dumps and debugging.
std::string GraphToText(const Graph& graph);

}  // namespace kiln::ir
