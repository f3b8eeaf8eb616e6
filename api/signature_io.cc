#include "api/signature_io.h"

#include <fmt/format.h>

namespace kiln::api {

std::vector<TensorSpec> SpecsOf(const ir::Graph& graph, const std::vector<ir::ValueId>& values,
                                const std::vector<std::string>& names) {
  std::vector<TensorSpec> specs;
  for (size_t i = 0; i < values.size(); ++i) {
    const ir::Value& v = graph.value(values[i]);
    TensorSpec s;
    s.name = names[i];
    s.dtype = v.dtype;
    s.rank_known = v.shape.rank_known;
    for (ir::Dim d : v.shape.dims) s.dims.push_back(ir::IsStatic(d) ? d : -1);
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
