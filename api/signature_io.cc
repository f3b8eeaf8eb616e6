#include "api/signature_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace kiln::api {

namespace {

// The smallest table that `v`'s values index, following the values through ops that keep them
// (casts, reshapes, slices; the importers' wrap of negative indices, Select(i < 0, i + n, i)) to
// the indices of Gathers with a constant axis and a static table dim.
int64_t IndexLimit(const ir::Graph& graph, const std::vector<std::vector<ir::NodeId>>& consumers, ir::ValueId v) {
  if (!IsInteger(graph.value(v).dtype) || graph.value(v).producer != ir::kNoNode) return -1;  // integer inputs only
  int64_t limit = -1;
  std::vector<ir::ValueId> todo = {v};
  std::set<ir::ValueId> seen = {v};
  while (!todo.empty()) {
    const ir::ValueId value = todo.back();
    todo.pop_back();
    for (ir::NodeId id : consumers[static_cast<size_t>(value)]) {
      const ir::Node& n = graph.node(id);
      if (n.removed || n.outputs.empty()) continue;
      const bool first = n.inputs.at(0) == value;
      bool keeps = false;
      if (n.op == "Identity" || n.op == "StopGradient") keeps = true;
      if (n.op == "Cast") keeps = IsInteger(graph.value(n.outputs[0]).dtype);
      if (n.op == "Reshape" || n.op == "ExpandDims" || n.op == "Squeeze" || n.op == "Transpose" ||
          n.op == "StridedSlice" || n.op == "Slice")
        keeps = first;
      if (n.op == "Select") keeps = n.inputs.size() == 3 && n.inputs[2] == value;
      if (keeps) {
        if (seen.insert(n.outputs[0]).second) todo.push_back(n.outputs[0]);
        continue;
      }
      if (n.op != "Gather" || n.inputs.size() < 3 || n.inputs[1] != value) continue;
      const Tensor* axis = graph.ConstantOf(n.inputs[2]);
      const ir::SymShape& table = graph.value(n.inputs[0]).shape;
      if (!axis || axis->num_elements() != 1 || !table.rank_known) continue;
      int64_t a = axis->IntAt(0);
      if (a < 0) a += table.rank();
      if (a < 0 || a >= table.rank() || !ir::IsStatic(table.dims[static_cast<size_t>(a)])) continue;
      const int64_t rows = table.dims[static_cast<size_t>(a)];
      limit = limit < 0 ? rows : std::min(limit, rows);
    }
  }
  return limit;
}

}  // namespace

std::vector<TensorSpec> SpecsOf(const ir::Graph& graph, const std::vector<ir::ValueId>& values,
                                const std::vector<std::string>& names) {
  const std::vector<std::vector<ir::NodeId>> consumers = graph.Consumers();
  std::vector<TensorSpec> specs;
  for (size_t i = 0; i < values.size(); ++i) {
    const ir::Value& v = graph.value(values[i]);
    TensorSpec s;
    s.name = names[i];
    s.dtype = v.dtype;
    s.rank_known = v.shape.rank_known;
    for (ir::Dim d : v.shape.dims) s.dims.push_back(ir::IsStatic(d) ? d : -1);
    s.index_limit = IndexLimit(graph, consumers, values[i]);
    specs.push_back(std::move(s));
  }
  return specs;
}

std::vector<Tensor> BindInputs(const std::string& signature_key, const std::vector<TensorSpec>& specs,
                               const std::map<std::string, Tensor>& inputs, Device device) {
  std::vector<std::string> expected;
  for (const TensorSpec& s : specs) expected.push_back(fmt::format("'{}'", s.name));
  for (const auto& [name, tensor] : inputs) {
    bool known = false;
    for (const TensorSpec& s : specs) known = known || s.name == name;
    if (!known)
      throw Error(ErrorCode::kInvalidArgument, fmt::format("signature '{}' has no input named '{}'; its inputs are: {}",
                                                           signature_key, name, fmt::join(expected, ", ")));
  }
  std::vector<Tensor> ordered;
  for (const TensorSpec& s : specs) {
    auto it = inputs.find(s.name);
    if (it == inputs.end())
      throw Error(ErrorCode::kInvalidArgument, fmt::format("signature '{}': input '{}' ({} {}) was not given; its inputs are: {}",
                                                           signature_key, s.name, DTypeName(s.dtype), s.ShapeString(),
                                                           fmt::join(expected, ", ")));
    const Tensor& t = it->second;
    if (t.dtype() != s.dtype)
      throw Error(ErrorCode::kInvalidArgument, fmt::format("input '{}': expected dtype {}, got {}", s.name,
                                                           DTypeName(s.dtype), DTypeName(t.dtype())));
    if (!t.is_host() && t.device() != device)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("input '{}': expected a tensor on the host{}, got one on {}", s.name,
                              device.kind == DeviceKind::kCpu ? "" : " or " + device.ToString(), t.device().ToString()));
    if (s.rank_known) {
      if (t.rank() != static_cast<int>(s.dims.size()))
        throw Error(ErrorCode::kInvalidArgument, fmt::format("input '{}': expected rank {} (shape {}), got rank {} (shape {})",
                                                             s.name, s.dims.size(), s.ShapeString(), t.rank(),
                                                             ShapeToString(t.shape())));
      for (int d = 0; d < t.rank(); ++d)
        if (s.dims[static_cast<size_t>(d)] >= 0 && s.dims[static_cast<size_t>(d)] != t.dim(d))
          throw Error(ErrorCode::kInvalidArgument, fmt::format("input '{}': dimension {} must be {} (shape {}), got {} (shape {})",
                                                               s.name, d, s.dims[static_cast<size_t>(d)], s.ShapeString(),
                                                               t.dim(d), ShapeToString(t.shape())));
    }
    ordered.push_back(t);
  }
  return ordered;
}

std::map<std::string, Tensor> NameOutputs(const std::vector<TensorSpec>& specs, std::vector<Tensor> outputs) {
  std::map<std::string, Tensor> named;
  for (size_t i = 0; i < outputs.size(); ++i) named[specs.at(i).name] = std::move(outputs[i]);
  return named;
}

}  // namespace kiln::api
