// Declarative description of each IR op: arity, whether it may be constant-folded, and its
// shape/dtype inference function. One registration function per op family (ir/ops/*.cc);
// backends add their internal ops under a prefix (RegisterBackendOps).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/name_registry.h"
#include "ir/graph.h"

namespace kiln::ir {

// What a shape function sees: the node, its input values (dtype, symbolic shape, constant
// tensor if known) and the graph (for symbols). It must set every output's dtype and shape.
class InferContext {
 public:
  InferContext(Graph& graph, NodeId node) : graph_(graph), node_id_(node) {}
  Graph& graph() { return graph_; }
  const Node& node() const { return graph_.node(node_id_); }
  const AttrMap& attrs() const { return node().attrs; }
  int num_inputs() const { return static_cast<int>(node().inputs.size()); }
  int num_outputs() const { return static_cast<int>(node().outputs.size()); }
  const Value& input(int i) const { return graph_.value(node().inputs.at(static_cast<size_t>(i))); }
  DType input_dtype(int i) const { return input(i).dtype; }
  const SymShape& input_shape(int i) const { return input(i).shape; }
  const Tensor* constant_input(int i) const { return input(i).constant.get(); }
  void SetOutput(int i, DType dtype, SymShape shape);
  // Marks output i as a known constant (used by shape ops such as Shape when dims are static).
  void SetOutputConstant(int i, Tensor value);
  // Throws kInvalidArgument naming the node, its op and `what`.
  [[noreturn]] void Fail(const std::string& what) const;

 private:
  Graph& graph_;
  NodeId node_id_;
};

using InferFn = void (*)(InferContext&);

struct OpSchema {
  std::string name;
  int min_inputs = 0;
  int max_inputs = 0;        // -1: variadic
  InferFn infer = nullptr;   // required
  bool foldable = true;      // pure function of its inputs: constant folding may evaluate it
};

class OpRegistry {
 public:
  void Add(OpSchema schema);
  const OpSchema* Find(std::string_view name) const { return schemas_.Find(name); }
  std::vector<std::string> Names() const { return schemas_.Names(); }

 private:
  NameRegistry<OpSchema> schemas_{"IR op"};
};

// The built-in IR ops: Kiln's canonical ops, which importers produce. Built once on first use
// and immutable afterwards.
const OpRegistry& BuiltinOps();

// Adds a backend's internal ops (the fused nodes its passes create), named "<prefix>.<Op>",
// e.g. "cpu.FusedConv2D". A backend calls this before it creates or reads graphs with such
// nodes. The first call for a prefix runs `add` on an empty registry, checks that every name
// carries the prefix and publishes the registry; later calls for the prefix do nothing. `add`
// must only add schemas. Thread-safe; lookups never see a partly built registry.
void RegisterBackendOps(std::string_view prefix, void (*add)(OpRegistry& registry));

// The schema of a built-in op or of a registered backend op; nullptr for an unknown op. The
// verifier, shape inference and constant folding look ops up here.
const OpSchema* FindOp(std::string_view name);

// Runs the op's shape function for one node (throws for unknown ops or bad arity).
void InferNode(Graph& graph, NodeId node);

// Op families (one file each under ir/ops/).
void RegisterCoreOps(OpRegistry& registry);         // Constant, Identity, If, While
void RegisterElementwiseOps(OpRegistry& registry);  // unary, binary, comparisons, Select, Cast, ...
void RegisterNnOps(OpRegistry& registry);           // convolutions, pooling, matmul, norm, softmax, ...
void RegisterArrayOps(OpRegistry& registry);        // shape manipulation, gather, slicing, reductions, ...
void RegisterEngineOps(OpRegistry& registry);       // Engine (a converted segment)
void RegisterCustomOps(OpRegistry& registry);       // CustomOp (a plugin's op, ir/ops/custom.h)
void RegisterTensorListOps(OpRegistry& registry);   // TensorList* (TF lists held as dense tensors)

// Broadcasting of two symbolic shapes (numpy rules); fails with the node's name on mismatch.
SymShape BroadcastShapes(const InferContext& ctx, const SymShape& a, const SymShape& b);

}  // namespace kiln::ir
