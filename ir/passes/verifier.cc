// Structural verification of an IR graph and a textual dump format.
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "ir/op_schema.h"
#include "ir/passes/pass.h"

namespace kiln::ir {

void Verify(const Graph& graph) {
  auto fail = [](const std::string& what) { throw Error(ErrorCode::kInternal, "IR verifier: " + what); };
  std::set<std::string> names;
  const auto valid_value = [&](ValueId v) { return v >= 0 && static_cast<size_t>(v) < graph.num_values(); };
  for (const Node& node : graph.nodes()) {
    if (node.removed) continue;
    if (!names.insert(node.name).second) fail(fmt::format("two nodes are named '{}'", node.name));
    const OpSchema* schema = FindOp(node.op);
    if (!schema) fail(fmt::format("node '{}' has unknown op '{}'", node.name, node.op));
    const int n = static_cast<int>(node.inputs.size());
    if (n < schema->min_inputs || (schema->max_inputs >= 0 && n > schema->max_inputs))
      fail(fmt::format("node '{}' ({}) has {} inputs", node.name, node.op, n));
    for (ValueId in : node.inputs) {
      if (!valid_value(in)) fail(fmt::format("node '{}' reads value {}, which does not exist", node.name, in));
      const Node* p = graph.Producer(in);
      if (p && p->removed) fail(fmt::format("node '{}' reads '{}' of removed node '{}'", node.name, graph.value(in).name, p->name));
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      const Value& v = graph.value(node.outputs[i]);
      if (v.producer != node.id || v.output_index != static_cast<int>(i))
        fail(fmt::format("value '{}' does not point back to its producer '{}'", v.name, node.name));
      if (v.dtype == DType::kInvalid) fail(fmt::format("output {} of node '{}' ({}) has no dtype", i, node.name, node.op));
    }
  }
  for (ValueId out : graph.outputs()) {
    if (!valid_value(out)) fail(fmt::format("graph output value {} does not exist", out));
    const Node* p = graph.Producer(out);
    if (p && p->removed) fail(fmt::format("graph output '{}' comes from removed node '{}'", graph.value(out).name, p->name));
  }
  graph.TopologicalOrder();  // throws on a cycle
}

std::string GraphToText(const Graph& graph) {
  std::ostringstream os;
  auto value_text = [&](ValueId v) {
    const Value& val = graph.value(v);
    return fmt::format("%{}:{}{}", val.id, DTypeName(val.dtype), graph.ShapeToString(val.shape));
  };
  for (size_t i = 0; i < graph.inputs().size(); ++i)
    os << "input " << graph.input_names()[i] << " = " << value_text(graph.inputs()[i]) << "\n";
  for (NodeId id : graph.TopologicalOrder()) {
    const Node& n = graph.node(id);
    std::vector<std::string> outs, ins;
    for (ValueId v : n.outputs) outs.push_back(value_text(v));
    for (ValueId v : n.inputs) ins.push_back(fmt::format("%{}", v));
    os << fmt::format("{} = {}({})  # {}", fmt::join(outs, ", "), n.op, fmt::join(ins, ", "), n.name) << "\n";
  }
  for (size_t i = 0; i < graph.outputs().size(); ++i)
    os << "output " << graph.output_names()[i] << " = %" << graph.outputs()[i] << "\n";
  return os.str();
}

}  // namespace kiln::ir
