#include "convert/placement.h"

#include <map>
#include <set>

#include <fmt/format.h>

#include "ir/op_schema.h"

namespace kiln::convert {
namespace {

constexpr Device kHost{};

// Adds the copy of `value` to `to` (once per value and destination) and returns its value.
class CopyInserter {
 public:
  explicit CopyInserter(ir::Graph& graph) : graph_(graph) {
    for (const ir::Node& n : graph.nodes()) names_.insert(n.name);
  }
  int copies() const { return static_cast<int>(made_.size()); }

  ir::ValueId CopyTo(ir::ValueId value, Device to) {
    const Device from = graph_.value(value).device;
    if (from == to) return value;
    auto [it, fresh] = made_.try_emplace({value, to.ToString()}, ir::kNoValue);
    if (!fresh) return it->second;
    const bool to_host = to == kHost;
    const std::string op = to_host ? "MemcpyToHost" : "MemcpyFromHost";
    std::string name = fmt::format("{}/{}", graph_.value(value).name, op);
    for (int k = 1; names_.count(name); ++k) name = fmt::format("{}/{}_{}", graph_.value(value).name, op, k);
    names_.insert(name);
    ir::Node& node = graph_.AddNode(op, name, {value});
    node.attrs.Set("device", (to_host ? from : to).ToString());
    const ir::NodeId id = node.id;
    ir::InferNode(graph_, id);
    const ir::ValueId out = graph_.node(id).outputs[0];
    graph_.value(out).device = to;
    it->second = out;
    return out;
  }

 private:
  ir::Graph& graph_;
  std::set<std::string> names_;
  std::map<std::pair<ir::ValueId, std::string>, ir::ValueId> made_;
};

}  // namespace

int PlaceOnDevices(ir::Graph& graph, Device engine_device) {
  const std::vector<ir::NodeId> order = graph.TopologicalOrder();
  for (size_t v = 0; v < graph.num_values(); ++v) {
    ir::Value& value = graph.value(static_cast<ir::ValueId>(v));
    const ir::Node* producer = graph.Producer(value.id);
    value.device = producer && producer->op == "Engine" ? engine_device : kHost;
  }
  if (engine_device == kHost) return 0;

  CopyInserter copies(graph);
  for (ir::NodeId id : order) {
    const Device wanted = graph.node(id).op == "Engine" ? engine_device : kHost;
    for (size_t k = 0; k < graph.node(id).inputs.size(); ++k) {
      const ir::ValueId copied = copies.CopyTo(graph.node(id).inputs[k], wanted);
      graph.node(id).inputs[k] = copied;  // AddNode may have moved the node: index again
    }
  }
  for (ir::ValueId& out : graph.mutable_outputs()) out = copies.CopyTo(out, kHost);
  return copies.copies();
}

}  // namespace kiln::convert
