// Kiln's intermediate representation: a dataflow graph of typed values with symbolic shapes.
//
// A Graph owns Values (SSA: each produced by one node output or a graph input) and Nodes
// (an IR op name, input values, output values, attributes, optional subgraphs for control flow).
// Constants are nodes of op "Constant" whose output Value also carries the tensor, so passes
// and shape inference can read weights without executing anything.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/attr.h"
#include "kiln/dtype.h"
#include "kiln/tensor.h"

namespace kiln::ir {

using ValueId = int32_t;
using NodeId = int32_t;
constexpr ValueId kNoValue = -1;
constexpr NodeId kNoNode = -1;

// One dimension of a symbolic shape: a known size (>= 0), an anonymous unknown (kUnknownDim),
// or a named symbol (<= kFirstSymbol) shared by every dimension known to be equal to it.
using Dim = int64_t;
constexpr Dim kUnknownDim = -1;
constexpr Dim kFirstSymbol = -2;
inline bool IsStatic(Dim d) { return d >= 0; }

struct SymShape {
  bool rank_known = false;
  std::vector<Dim> dims;

  static SymShape Unknown() { return {}; }
  static SymShape Of(std::vector<Dim> dims) { return {true, std::move(dims)}; }
  static SymShape Scalar() { return {true, {}}; }
  int rank() const { return static_cast<int>(dims.size()); }
  bool IsFullyStatic() const;
  std::optional<Shape> ToStatic() const;  // nullopt unless fully static
};

struct Value {
  ValueId id = kNoValue;
  std::string name;  // for messages: "<node name>:<output index>" or the graph input name
  DType dtype = DType::kInvalid;
  SymShape shape;
  NodeId producer = kNoNode;  // kNoNode for a graph input
  int output_index = 0;
  std::shared_ptr<const Tensor> constant;  // set when the value is a known constant
  Device device{};                          // where the value lives when the graph runs (placement)
};

struct Node {
  NodeId id = kNoNode;
  std::string name;       // unique within the graph; derived from the source model's node name
  std::string op;         // IR op name, e.g. "Conv2D", "Add", "Constant"
  std::string source_op;  // the source model's op type (TF or ONNX), for reports
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  AttrMap attrs;
  bool removed = false;  // tombstone left by passes; Graph::Compact() drops these
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  Graph(Graph&&) = default;
  Graph& operator=(Graph&&) = default;
  // A copy of this graph. Subgraphs held in attributes are shared, not copied: they are
  // treated as immutable once built.
  Graph Clone() const;

  // Adds a graph input value.
  ValueId AddInput(const std::string& name, DType dtype, SymShape shape);
  // Adds a node producing `num_outputs` fresh values (dtype/shape filled by shape inference).
  Node& AddNode(const std::string& op, const std::string& name, std::vector<ValueId> inputs,
                int num_outputs = 1);
  // Adds a Constant node for `tensor` and returns its value.
  ValueId AddConstant(const std::string& name, Tensor tensor);
  void AddOutput(const std::string& name, ValueId value);
  // Drops every graph output (values and nodes stay), e.g. to re-declare a subgraph's outputs.
  void ClearOutputs() {
    outputs_.clear();
    output_names_.clear();
  }

  Node& node(NodeId id) { return nodes_.at(static_cast<size_t>(id)); }
  const Node& node(NodeId id) const { return nodes_.at(static_cast<size_t>(id)); }
  Value& value(ValueId id) { return values_.at(static_cast<size_t>(id)); }
  const Value& value(ValueId id) const { return values_.at(static_cast<size_t>(id)); }
  std::vector<Node>& nodes() { return nodes_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  size_t num_values() const { return values_.size(); }

  const std::vector<ValueId>& inputs() const { return inputs_; }
  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<ValueId>& outputs() const { return outputs_; }
  const std::vector<std::string>& output_names() const { return output_names_; }
  std::vector<ValueId>& mutable_outputs() { return outputs_; }

  // Producer node of a value, or nullptr for graph inputs.
  const Node* Producer(ValueId id) const;
  // Known constant tensor of a value, or nullptr.
  const Tensor* ConstantOf(ValueId id) const { return value(id).constant.get(); }

  // Live nodes in a topological order (stable: ties broken by node id).
  std::vector<NodeId> TopologicalOrder() const;
  // For each value, the live nodes that read it.
  std::vector<std::vector<NodeId>> Consumers() const;
  // Replaces every use of `from` (node inputs and graph outputs) by `to`.
  void ReplaceAllUses(ValueId from, ValueId to);
  // Number of live nodes.
  size_t NumLiveNodes() const;

  // Symbol table for named dimensions.
  Dim NewSymbol(const std::string& name);
  const std::string& SymbolName(Dim symbol) const;
  std::string DimToString(Dim d) const;
  std::string ShapeToString(const SymShape& shape) const;

 private:
  std::vector<Node> nodes_;
  std::vector<Value> values_;
  std::vector<ValueId> inputs_;
  std::vector<std::string> input_names_;
  std::vector<ValueId> outputs_;
  std::vector<std::string> output_names_;
  std::vector<std::string> symbols_;
};

}  // namespace kiln::ir
