// Identity elimination, dead-code elimination, shape re-inference and Reshape target folding.
#include <fmt/format.h>

#include <optional>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/ops/array_common.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

class IdentityElimination final : public Pass {
 public:
  std::string name() const override { return "identity-elimination"; }
  // Linear in the graph's size: every Identity output forwards to its input, chains resolved
  // with path compression, then each reader is rewritten once (a chain of 100k Identities too).
  bool Run(Graph& graph) override {
    std::vector<ValueId> forward(graph.num_values());
    for (size_t v = 0; v < forward.size(); ++v) forward[v] = static_cast<ValueId>(v);
    bool changed = false;
    for (Node& node : graph.nodes()) {
      if (node.removed || node.op != "Identity") continue;
      forward[static_cast<size_t>(node.outputs[0])] = node.inputs[0];
      node.removed = true;
      changed = true;
    }
    if (!changed) return false;
    auto resolve = [&](ValueId v) {
      ValueId root = v;
      while (forward[static_cast<size_t>(root)] != root) root = forward[static_cast<size_t>(root)];
      while (forward[static_cast<size_t>(v)] != root) {
        const ValueId next = forward[static_cast<size_t>(v)];
        forward[static_cast<size_t>(v)] = root;
        v = next;
      }
      return root;
    };
    for (Node& node : graph.nodes())
      if (!node.removed)
        for (ValueId& in : node.inputs) in = resolve(in);
    for (ValueId& out : graph.mutable_outputs()) out = resolve(out);
    return true;
  }
};

class DeadCodeElimination final : public Pass {
 public:
  std::string name() const override { return "dead-code-elimination"; }
  bool Run(Graph& graph) override {
    std::vector<bool> live(graph.nodes().size(), false);
    std::vector<NodeId> stack;
    for (ValueId out : graph.outputs())
      if (const Node* p = graph.Producer(out)) stack.push_back(p->id);
    while (!stack.empty()) {
      NodeId id = stack.back();
      stack.pop_back();
      if (live[static_cast<size_t>(id)]) continue;
      live[static_cast<size_t>(id)] = true;
      for (ValueId in : graph.node(id).inputs)
        if (const Node* p = graph.Producer(in)) stack.push_back(p->id);
    }
    bool changed = false;
    for (Node& node : graph.nodes()) {
      if (node.removed || live[static_cast<size_t>(node.id)]) continue;
      node.removed = true;
      changed = true;
    }
    return changed;
  }
};

class ShapeInference final : public Pass {
 public:
  std::string name() const override { return "shape-inference"; }
  bool Run(Graph& graph) override {
    for (NodeId id : graph.TopologicalOrder()) InferNode(graph, id);
    return false;
  }
};

// A Reshape whose target is computed from the input's own shape (Keras Flatten: Pack(Shape(x)[0],
// -1); reshape(x, [tf.shape(x)[0], 64, ...])) gets a constant target when that is provably the
// same reshape: the target's one non-constant element is a symbol that is exactly one dim of the
// input, every other input dim is static, and the constant elements (a -1 among them standing
// for what is left) multiply to the product of those static dims. The symbol's slot becomes -1
// and a -1 its value. The shape computation then dies (DCE), and
// engines can run the Reshape as a view instead of cutting the graph at a host computation.
class ReshapeTargetFolding final : public Pass {
 public:
  std::string name() const override { return "reshape-target-folding"; }
  bool Run(Graph& graph) override {
    bool changed = false;
    std::optional<NameGen> names;
    for (NodeId id : graph.TopologicalOrder()) {
      Node& node = graph.node(id);
      if (node.op != "Reshape" || node.inputs.size() != 2 || graph.ConstantOf(node.inputs[1])) continue;
      const SymShape& in = graph.value(node.inputs[0]).shape;
      if (!in.rank_known) continue;
      auto target = array::EvalSymbolic(graph, node.inputs[1]);
      if (!target || target->scalar) continue;
      int symbolic = -1, inferred = -1;  // the symbolic element; a -1 element
      int64_t const_product = 1;
      bool ok = true;
      for (size_t i = 0; i < target->elems.size() && ok; ++i) {
        const array::SymElem& e = target->elems[i];
        if (e.is_const && e.value == -1) {
          ok = inferred < 0;
          inferred = static_cast<int>(i);
        } else if (e.is_const) {
          ok = e.value >= 0;
          const_product *= e.value;
        } else {
          ok = symbolic < 0 && e.dim != kUnknownDim;
          symbolic = static_cast<int>(i);
        }
      }
      if (!ok || symbolic < 0) continue;
      const Dim symbol = target->elems[static_cast<size_t>(symbolic)].dim;
      int64_t static_product = 1;
      int matches = 0;
      for (Dim d : in.dims) {
        if (d == symbol)
          ++matches;
        else if (IsStatic(d))
          static_product *= d;
        else
          ok = false;
      }
      if (!ok || matches != 1) continue;
      // The -1 element (if any) is what the static dims leave after the constant ones.
      int64_t inferred_value = -1;
      if (inferred >= 0) {
        if (const_product == 0 || static_product % const_product != 0) continue;
        inferred_value = static_product / const_product;
        const_product *= inferred_value;
      }
      if (static_product != const_product) continue;
      std::vector<int64_t> values;
      for (size_t i = 0; i < target->elems.size(); ++i) {
        const array::SymElem& e = target->elems[i];
        values.push_back(static_cast<int>(i) == inferred ? inferred_value : e.is_const ? e.value : -1);
      }
      const DType dtype = graph.value(node.inputs[1]).dtype == DType::kInt32 ? DType::kInt32 : DType::kInt64;
      Tensor t(dtype, {static_cast<int64_t>(values.size())});
      for (size_t i = 0; i < values.size(); ++i) {
        if (dtype == DType::kInt32)
          t.data<int32_t>()[i] = static_cast<int32_t>(values[i]);
        else
          t.data<int64_t>()[i] = values[i];
      }
      if (!names) names.emplace(graph);
      const std::string name = names->Make(node.name + "/folded_shape");
      const ValueId folded = graph.AddConstant(name, std::move(t));
      graph.node(id).inputs[1] = folded;  // AddConstant may have moved the node storage
      InferNode(graph, id);
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> MakeReshapeTargetFolding() { return std::make_unique<ReshapeTargetFolding>(); }
std::unique_ptr<Pass> MakeIdentityElimination() { return std::make_unique<IdentityElimination>(); }
std::unique_ptr<Pass> MakeDeadCodeElimination() { return std::make_unique<DeadCodeElimination>(); }
std::unique_ptr<Pass> MakeShapeInference() { return std::make_unique<ShapeInference>(); }

}  // namespace kiln::ir
