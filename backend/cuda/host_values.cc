#include "backend/cuda/host_values.h"

#include <fmt/format.h>

#include <memory>

#include "backend/reference/kernel.h"
#include "ir/graph_util.h"
#include "ir/op_schema.h"

namespace kiln::backend::cuda {
namespace {

// Host values stay small: shape vectors, scalars, masks and position ids of a few thousand
// elements. A bigger integer tensor is device work.
constexpr int64_t kMaxHostElements = int64_t{1} << 16;
constexpr int kMaxDepth = 64;

bool SmallIntegerValue(const ir::Graph& g, ir::ValueId v) {
  const ir::Value& value = g.value(v);
  const DType d = value.dtype;
  if (d != DType::kInt32 && d != DType::kInt64 && d != DType::kBool) return false;
  if (!value.shape.rank_known) return false;
  int64_t n = 1;
  for (ir::Dim dim : value.shape.dims) {
    if (!ir::IsStatic(dim)) continue;  // dynamic dims of shape-derived values are small in practice
    n *= dim;
  }
  return n <= kMaxHostElements;
}

bool HasSubgraphs(const ir::Node& n) {
  for (const auto& [name, attr] : n.attrs.all())
    if (std::holds_alternative<std::shared_ptr<ir::Graph>>(attr)) return true;
  return false;
}

bool Computable(const ir::Graph& g, const ir::Node& n, int depth) {
  if (IsShapeOp(n.op)) return true;
  if (depth > kMaxDepth || n.op == "Constant" || HasSubgraphs(n)) return false;
  for (ir::ValueId out : n.outputs)
    if (!SmallIntegerValue(g, out)) return false;
  for (ir::ValueId in : n.inputs) {
    if (g.ConstantOf(in)) continue;
    const ir::Node* p = g.Producer(in);
    if (!p || !Computable(g, *p, depth + 1)) return false;
  }
  return true;
}

// The value of a Shape, Size or Rank node for an input of `shape`, in the node's output dtype.
Tensor ShapeValue(const std::string& op, DType dtype, const Shape& shape) {
  std::vector<int64_t> v;
  Shape out_shape;
  if (op == "Shape") {
    v = shape;
    out_shape = {static_cast<int64_t>(shape.size())};
  } else {
    v = {op == "Size" ? NumElements(shape) : static_cast<int64_t>(shape.size())};
  }
  Tensor t(dtype, out_shape);
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::kInt32)
      t.data<int32_t>()[i] = static_cast<int32_t>(v[i]);
    else
      t.data<int64_t>()[i] = v[i];
  }
  return t;
}

}  // namespace

bool IsShapeOp(const std::string& op) { return op == "Shape" || op == "Size" || op == "Rank"; }

bool HostComputable(const ir::Graph& graph, const ir::Node& node) { return Computable(graph, node, 0); }

std::vector<bool> HostNodes(const ir::Graph& g) {
  std::vector<bool> host(g.nodes().size(), false);
  std::vector<bool> host_value(g.num_values(), false);
  for (ir::NodeId id : g.TopologicalOrder()) {
    const ir::Node& n = g.node(id);
    if (n.op == "Constant") {
      for (ir::ValueId out : n.outputs) host_value[static_cast<size_t>(out)] = true;
      continue;
    }
    bool on_host = IsShapeOp(n.op);
    if (!on_host && !HasSubgraphs(n)) {
      on_host = true;
      for (ir::ValueId out : n.outputs) on_host = on_host && SmallIntegerValue(g, out);
      for (ir::ValueId in : n.inputs) on_host = on_host && host_value[static_cast<size_t>(in)];
    }
    if (!on_host) continue;
    host[static_cast<size_t>(id)] = true;
    for (ir::ValueId out : n.outputs) host_value[static_cast<size_t>(out)] = true;
  }
  return host;
}

Specialization Specialize(const ir::Graph& graph, const std::vector<bool>& host_nodes,
                          const std::vector<Shape>& input_shapes) {
  std::vector<ir::ValueId> map;
  ir::Graph g = ir::CloneGraph(graph, &map);
  if (input_shapes.size() != g.inputs().size())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} input shapes for a graph of {} inputs", input_shapes.size(), g.inputs().size()));
  for (size_t i = 0; i < input_shapes.size(); ++i)
    g.value(g.inputs()[i]).shape =
        ir::SymShape::Of(std::vector<ir::Dim>(input_shapes[i].begin(), input_shapes[i].end()));
  Specialization s;
  s.host_values.resize(graph.num_values());
  for (ir::NodeId id : graph.TopologicalOrder()) {
    const ir::Node& n = graph.node(id);
    if (n.op == "Constant" || n.outputs.empty()) continue;
    const ir::NodeId clone_id = g.value(map[static_cast<size_t>(n.outputs[0])]).producer;
    if (!host_nodes[static_cast<size_t>(id)]) {
      ir::InferNode(g, clone_id);
      continue;
    }
    std::vector<Tensor> outs;
    if (IsShapeOp(n.op)) {
      const auto in = g.value(map[static_cast<size_t>(n.inputs[0])]).shape.ToStatic();
      if (!in)
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("node '{}' ({}): the input's shape is not known before the run", n.name, n.op));
      outs.push_back(ShapeValue(n.op, graph.value(n.outputs[0]).dtype, *in));
    } else {
      std::vector<Tensor> ins;
      for (ir::ValueId v : n.inputs) {
        const Tensor* c = graph.ConstantOf(v);
        ins.push_back(c ? *c : s.host_values[static_cast<size_t>(v)]);
      }
      outs = reference::RunReferenceKernel(n, ins, nullptr);
    }
    for (size_t i = 0; i < n.outputs.size() && i < outs.size(); ++i) {
      ir::Value& cv = g.value(map[static_cast<size_t>(n.outputs[i])]);
      cv.dtype = outs[i].dtype();
      cv.shape = ir::SymShape::Of(std::vector<ir::Dim>(outs[i].shape().begin(), outs[i].shape().end()));
      cv.constant = std::make_shared<const Tensor>(outs[i]);
      s.host_values[static_cast<size_t>(n.outputs[i])] = std::move(outs[i]);
    }
  }
  s.shapes.resize(graph.num_values());
  for (size_t v = 0; v < map.size(); ++v)
    if (map[v] != ir::kNoValue) s.shapes[v] = g.value(map[v]).shape.ToStatic();
  return s;
}

}  // namespace kiln::backend::cuda
