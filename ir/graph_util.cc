#include "ir/graph_util.h"

#include "ir/op_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace kiln::ir {

std::vector<std::string> SymbolNames(const Graph& graph) {
  std::vector<std::string> names;
  for (Dim d = kFirstSymbol;; --d) {
    try {
      names.push_back(graph.SymbolName(d));
    } catch (const std::out_of_range&) {
      break;
    }
  }
  return names;
}

Graph CloneGraph(const Graph& graph, std::vector<ValueId>* value_map) {
  Graph out;
  for (const std::string& s : SymbolNames(graph)) out.NewSymbol(s);
  std::vector<ValueId> map(graph.num_values(), kNoValue);
  for (size_t i = 0; i < graph.inputs().size(); ++i) {
    const Value& v = graph.value(graph.inputs()[i]);
    map[static_cast<size_t>(v.id)] = out.AddInput(graph.input_names()[i], v.dtype, v.shape);
  }
  for (NodeId id : graph.TopologicalOrder()) {
    const Node& n = graph.node(id);
    std::vector<ValueId> ins;
    for (ValueId in : n.inputs) {
      const ValueId m = map[static_cast<size_t>(in)];
      if (m == kNoValue)
        throw Error(ErrorCode::kInternal, fmt::format("CloneGraph: node '{}' reads an unknown value", n.name));
      ins.push_back(m);
    }
    Node& c = out.AddNode(n.op, n.name, std::move(ins), static_cast<int>(n.outputs.size()));
    c.source_op = n.source_op;
    c.attrs = n.attrs;
    const std::vector<ValueId> outs = c.outputs;
    for (size_t i = 0; i < outs.size(); ++i) {
      const Value& src = graph.value(n.outputs[i]);
      Value& dst = out.value(outs[i]);
      dst.name = src.name;
      dst.dtype = src.dtype;
      dst.shape = src.shape;
      dst.constant = src.constant;
      map[static_cast<size_t>(src.id)] = dst.id;
    }
  }
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    const ValueId m = map[static_cast<size_t>(graph.outputs()[i])];
    if (m == kNoValue) throw Error(ErrorCode::kInternal, "CloneGraph: a graph output is not produced");
    out.AddOutput(graph.output_names()[i], m);
  }
  if (value_map) *value_map = std::move(map);
  return out;
}

namespace {
bool SameDim(Dim a, Dim b) { return a == b && a != kUnknownDim; }
}  // namespace

bool SameShape(const SymShape& a, const SymShape& b) {
  if (!a.rank_known || !b.rank_known || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.dims.size(); ++i)
    if (!SameDim(a.dims[i], b.dims[i])) return false;
  return true;
}

bool BroadcastsInto(const SymShape& operand, const SymShape& target) {
  if (!operand.rank_known || !target.rank_known || operand.rank() > target.rank()) return false;
  const size_t off = target.dims.size() - operand.dims.size();
  for (size_t i = 0; i < operand.dims.size(); ++i)
    if (operand.dims[i] != 1 && !SameDim(operand.dims[i], target.dims[off + i])) return false;
  return true;
}

bool IsGraphOutput(const Graph& graph, ValueId value) {
  return std::find(graph.outputs().begin(), graph.outputs().end(), value) != graph.outputs().end();
}

Node& AddReplacementNode(Graph& graph, const std::string& op, const std::string& name, std::vector<ValueId> inputs,
                         ValueId replaced) {
  const Value old = graph.value(replaced);  // a copy: AddNode may move the values
  Node& node = graph.AddNode(op, name, std::move(inputs), 1);
  Value& v = graph.value(node.outputs[0]);
  v.dtype = old.dtype;
  v.shape = old.shape;
  v.name = old.name;
  graph.ReplaceAllUses(replaced, v.id);
  return node;
}

NameGen::NameGen(const Graph& graph) {
  for (const Node& n : graph.nodes()) used_.insert(n.name);
}

std::string NameGen::Make(const std::string& base) {
  std::string name = base;
  for (int i = 1; used_.count(name); ++i) name = fmt::format("{}_{}", base, i);
  used_.insert(name);
  return name;
}

Graph SpecializedClone(const Graph& graph, const std::vector<kiln::Shape>& inputs, std::vector<ValueId>* map) {
  Graph g = CloneGraph(graph, map);
  if (inputs.size() != g.inputs().size())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{} input shapes for a graph of {} inputs", inputs.size(), g.inputs().size()));
  for (size_t i = 0; i < inputs.size(); ++i)
    g.value(g.inputs()[i]).shape = SymShape::Of(std::vector<Dim>(inputs[i].begin(), inputs[i].end()));
  for (NodeId id : g.TopologicalOrder())
    if (g.node(id).op != "Constant") InferNode(g, id);
  return g;
}

std::vector<std::optional<kiln::Shape>> StaticShapesOf(const Graph& clone, const std::vector<ValueId>& map) {
  std::vector<std::optional<kiln::Shape>> result(map.size());
  for (size_t v = 0; v < map.size(); ++v)
    if (map[v] != kNoValue) result[v] = clone.value(map[v]).shape.ToStatic();
  return result;
}

std::vector<std::optional<kiln::Shape>> SpecializeShapes(const Graph& graph, const std::vector<kiln::Shape>& inputs) {
  std::vector<ValueId> map;
  const Graph g = SpecializedClone(graph, inputs, &map);
  return StaticShapesOf(g, map);
}

Tensor HostTranspose(const Tensor& t, const std::vector<int64_t>& perm) {
  const int rank = t.rank();
  Shape out_shape(static_cast<size_t>(rank));
  for (int k = 0; k < rank; ++k)
    out_shape[static_cast<size_t>(k)] = t.dim(static_cast<int>(perm[static_cast<size_t>(k)]));
  Tensor out(t.dtype(), out_shape);
  const size_t elem = DTypeSize(t.dtype());
  std::vector<int64_t> in_strides(static_cast<size_t>(rank), 1);
  for (int d = rank - 2; d >= 0; --d)
    in_strides[static_cast<size_t>(d)] = in_strides[static_cast<size_t>(d + 1)] * t.dim(d + 1);
  std::vector<int64_t> index(static_cast<size_t>(rank), 0);
  const auto* src = static_cast<const char*>(t.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  for (int64_t i = 0; i < out.num_elements(); ++i) {
    int64_t from = 0;
    for (int k = 0; k < rank; ++k)
      from += index[static_cast<size_t>(k)] * in_strides[static_cast<size_t>(perm[static_cast<size_t>(k)])];
    std::memcpy(dst + i * static_cast<int64_t>(elem), src + from * static_cast<int64_t>(elem), elem);
    for (int k = rank - 1; k >= 0; --k) {
      if (++index[static_cast<size_t>(k)] < out_shape[static_cast<size_t>(k)]) break;
      index[static_cast<size_t>(k)] = 0;
    }
  }
  return out;
}

}  // namespace kiln::ir
