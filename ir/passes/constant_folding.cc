// Constant folding: evaluates nodes whose inputs are all constants (and nodes whose outputs
// shape inference already proved constant, such as Shape of a static tensor) and replaces
// their outputs with Constant nodes.
#include <fmt/format.h>

#include "ir/op_schema.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

class ConstantFolding final : public Pass {
 public:
  ConstantFolding(NodeEvaluator evaluate, size_t max_output_bytes)
      : evaluate_(std::move(evaluate)), max_output_bytes_(max_output_bytes) {}
  std::string name() const override { return "constant-folding"; }

  bool Run(Graph& graph) override {
    bool changed = false;
    for (NodeId id : graph.TopologicalOrder()) {
      Node& node = graph.node(id);
      if (node.op == "Constant") continue;
      const OpSchema* schema = FindOp(node.op);
      if (!schema || !schema->foldable) continue;
      std::vector<Tensor> values;
      if (!Evaluate(graph, node, values)) continue;
      // Copies: AddConstant may reallocate the node list and invalidate `node`.
      const std::vector<ValueId> outputs = node.outputs;
      const std::string base = node.name, source_op = node.source_op;
      for (size_t i = 0; i < outputs.size(); ++i) {
        const ValueId c = graph.AddConstant(base + (outputs.size() > 1 ? fmt::format("/folded{}", i) : "/folded"),
                                            std::move(values[i]));
        graph.node(graph.value(c).producer).source_op = source_op;
        graph.ReplaceAllUses(outputs[i], c);
      }
      graph.node(id).removed = true;  // re-fetch: AddConstant may have reallocated the node list
      changed = true;
    }
    return changed;
  }

 private:
  bool Evaluate(const Graph& graph, const Node& node, std::vector<Tensor>& values) const {
    // Outputs already known from shape inference.
    bool all_known = !node.outputs.empty();
    for (ValueId out : node.outputs) all_known = all_known && graph.ConstantOf(out) != nullptr;
    if (all_known) {
      for (ValueId out : node.outputs) values.push_back(*graph.ConstantOf(out));
      return true;
    }
    if (node.inputs.empty()) return false;
    std::vector<Tensor> inputs;
    for (ValueId in : node.inputs) {
      const Tensor* c = graph.ConstantOf(in);
      if (!c) return false;
      inputs.push_back(*c);
    }
    // Skip outputs known to be huge (e.g. a Tile or Fill to a large static shape).
    size_t bytes = 0;
    for (ValueId out : node.outputs) {
      const Value& v = graph.value(out);
      if (auto shape = v.shape.ToStatic()) bytes += static_cast<size_t>(NumElements(*shape)) * DTypeSize(v.dtype);
    }
    if (bytes > max_output_bytes_) return false;
    try {
      values = evaluate_(node, inputs);
    } catch (const Error&) {
      return false;  // leave it to run time, where the error names the inputs that caused it
    }
    return values.size() == node.outputs.size();
  }

  NodeEvaluator evaluate_;
  size_t max_output_bytes_;
};

}  // namespace

std::unique_ptr<Pass> MakeConstantFolding(NodeEvaluator evaluate, size_t max_output_bytes) {
  return std::make_unique<ConstantFolding>(std::move(evaluate), max_output_bytes);
}

}  // namespace kiln::ir
