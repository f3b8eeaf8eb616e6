#include "ir/graph.h"

#include <fmt/format.h>

#include <queue>

namespace kiln::ir {

bool SymShape::IsFullyStatic() const {
  if (!rank_known) return false;
  for (Dim d : dims)
    if (!IsStatic(d)) return false;
  return true;
}

std::optional<Shape> SymShape::ToStatic() const {
  if (!IsFullyStatic()) return std::nullopt;
  return Shape(dims.begin(), dims.end());
}

Graph Graph::Clone() const {
  Graph g;
  g.nodes_ = nodes_;
  g.values_ = values_;
  g.inputs_ = inputs_;
  g.input_names_ = input_names_;
  g.outputs_ = outputs_;
  g.output_names_ = output_names_;
  g.symbols_ = symbols_;
  return g;
}

ValueId Graph::AddInput(const std::string& name, DType dtype, SymShape shape) {
  Value v;
  v.id = static_cast<ValueId>(values_.size());
  v.name = name;
  v.dtype = dtype;
  v.shape = std::move(shape);
  values_.push_back(std::move(v));
  inputs_.push_back(values_.back().id);
  input_names_.push_back(name);
  return values_.back().id;
}

Node& Graph::AddNode(const std::string& op, const std::string& name, std::vector<ValueId> inputs, int num_outputs) {
  for (ValueId in : inputs)
    if (in < 0 || static_cast<size_t>(in) >= values_.size())
      throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): input value {} does not exist", name, op, in));
  Node n;
  n.id = static_cast<NodeId>(nodes_.size());
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  for (int i = 0; i < num_outputs; ++i) {
    Value v;
    v.id = static_cast<ValueId>(values_.size());
    v.name = num_outputs == 1 && i == 0 ? name : fmt::format("{}:{}", name, i);
    v.producer = n.id;
    v.output_index = i;
    values_.push_back(std::move(v));
    n.outputs.push_back(values_.back().id);
  }
  nodes_.push_back(std::move(n));
  return nodes_.back();
}

ValueId Graph::AddConstant(const std::string& name, Tensor tensor) {
  Node& n = AddNode("Constant", name, {}, 1);
  n.source_op = "Const";
  Value& v = value(n.outputs[0]);
  v.dtype = tensor.dtype();
  v.shape = SymShape::Of(Shape(tensor.shape()));
  auto shared = std::make_shared<const Tensor>(std::move(tensor));
  v.constant = shared;
  n.attrs.Set("value", *shared);
  return v.id;
}

void Graph::AddOutput(const std::string& name, ValueId value) {
  outputs_.push_back(value);
  output_names_.push_back(name);
}

const Node* Graph::Producer(ValueId id) const {
  const Value& v = value(id);
  return v.producer == kNoNode ? nullptr : &node(v.producer);
}

std::vector<NodeId> Graph::TopologicalOrder() const {
  // Kahn's algorithm with a min-heap on node id: deterministic and close to import order.
  std::vector<int> pending(nodes_.size(), 0);
  std::vector<std::vector<NodeId>> users(nodes_.size());
  for (const Node& n : nodes_) {
    if (n.removed) continue;
    for (ValueId in : n.inputs) {
      const NodeId p = value(in).producer;
      if (p == kNoNode) continue;
      if (node(p).removed)
        throw Error(ErrorCode::kInternal,
                    fmt::format("node '{}' reads a value of removed node '{}'", n.name, node(p).name));
      ++pending[static_cast<size_t>(n.id)];
      users[static_cast<size_t>(p)].push_back(n.id);
    }
  }
  std::priority_queue<NodeId, std::vector<NodeId>, std::greater<>> ready;
  for (const Node& n : nodes_)
    if (!n.removed && pending[static_cast<size_t>(n.id)] == 0) ready.push(n.id);
  std::vector<NodeId> order;
  while (!ready.empty()) {
    NodeId id = ready.top();
    ready.pop();
    order.push_back(id);
    for (NodeId u : users[static_cast<size_t>(id)])
      if (--pending[static_cast<size_t>(u)] == 0) ready.push(u);
  }
  if (order.size() != NumLiveNodes()) throw Error(ErrorCode::kInvalidArgument, "the graph has a cycle");
  return order;
}

std::vector<std::vector<NodeId>> Graph::Consumers() const {
  std::vector<std::vector<NodeId>> consumers(values_.size());
  for (const Node& n : nodes_) {
    if (n.removed) continue;
    for (ValueId in : n.inputs) {
      auto& list = consumers[static_cast<size_t>(in)];
      if (list.empty() || list.back() != n.id) list.push_back(n.id);
    }
  }
  return consumers;
}

void Graph::ReplaceAllUses(ValueId from, ValueId to) {
  for (Node& n : nodes_)
    for (ValueId& in : n.inputs)
      if (in == from) in = to;
  for (ValueId& out : outputs_)
    if (out == from) out = to;
}

size_t Graph::NumLiveNodes() const {
  size_t n = 0;
  for (const Node& node : nodes_) n += node.removed ? 0 : 1;
  return n;
}

Dim Graph::NewSymbol(const std::string& name) {
  symbols_.push_back(name);
  return kFirstSymbol - static_cast<Dim>(symbols_.size() - 1);
}

const std::string& Graph::SymbolName(Dim symbol) const {
  return symbols_.at(static_cast<size_t>(kFirstSymbol - symbol));
}

std::string Graph::DimToString(Dim d) const {
  if (IsStatic(d)) return std::to_string(d);
  if (d == kUnknownDim) return "?";
  // A symbol this graph does not name (a dim carried over from another graph) prints like an
  // unknown dim: formatting a message must never fail.
  const size_t index = static_cast<size_t>(kFirstSymbol - d);
  return index < symbols_.size() ? symbols_[index] : "?";
}

std::string Graph::ShapeToString(const SymShape& shape) const {
  if (!shape.rank_known) return "<unknown rank>";
  std::string s = "[";
  for (size_t i = 0; i < shape.dims.size(); ++i) {
    if (i) s += ",";
    s += DimToString(shape.dims[i]);
  }
  return s + "]";
}

}  // namespace kiln::ir
