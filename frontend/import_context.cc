#include "frontend/import_context.h"

#include <fmt/format.h>

#include "frontend/import_errors.h"
#include "ir/op_schema.h"
#include "kiln/error.h"

namespace kiln::frontend {

ir::AttrMap Attrs(std::initializer_list<std::pair<const char*, ir::AttrValue>> list) {
  ir::AttrMap attrs;
  for (const auto& [name, value] : list) attrs.Set(name, value);
  return attrs;
}

std::string UniqueNames::Claim(const ir::Graph& graph, const std::string& base) {
  std::set<std::string>& used = used_[&graph];
  std::string name = base.empty() ? "node" : base;
  for (int i = 1; used.count(name); ++i) name = fmt::format("{}_{}", base, i);
  used.insert(name);
  return name;
}

ImportContextBase::ImportContextBase(ImportTarget& target, std::string name, std::string op, bool validate_only)
    : target_(target), name_(std::move(name)), op_(std::move(op)), validate_only_(validate_only) {}

std::string ImportContextBase::NameForEmitting(const char* what, const std::string& suffix) {
  if (validate_only_)
    throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): {} in validate-only mode", name_, op_, what));
  return target_.UniqueNodeName(suffix.empty() ? name_ : name_ + "/" + suffix);
}

std::vector<ir::ValueId> ImportContextBase::Emit(const std::string& ir_op, std::vector<ir::ValueId> inputs,
                                                 ir::AttrMap attrs, int num_outputs, const std::string& suffix) {
  const std::string node_name = NameForEmitting("Emit", suffix);
  ir::Graph& g = graph();
  ir::Node& n = g.AddNode(ir_op, node_name, std::move(inputs), num_outputs);
  n.source_op = op_;
  n.attrs = std::move(attrs);
  const ir::NodeId id = n.id;
  std::vector<ir::ValueId> outs = n.outputs;
  try {
    ir::InferNode(g, id);
  } catch (const Error& e) {
    // Name the source node too: the IR node may be one of several it became.
    throw Error(e.code(), fmt::format("while importing node '{}' ({}): {}", name_, op_, e.what()));
  }
  return outs;
}

ir::ValueId ImportContextBase::Constant(Tensor tensor, const std::string& suffix) {
  const std::string node_name = NameForEmitting("Constant", suffix);
  ir::Graph& g = graph();
  const ir::ValueId v = g.AddConstant(node_name, std::move(tensor));
  g.node(g.value(v).producer).source_op = op_;
  return v;
}

DType ImportContextBase::ValueDType(ir::ValueId v) const {
  return v == ir::kNoValue ? DType::kInvalid : target_.current_graph().value(v).dtype;
}

ir::SymShape ImportContextBase::ValueShape(ir::ValueId v) const {
  return v == ir::kNoValue ? ir::SymShape::Unknown() : target_.current_graph().value(v).shape;
}

const Tensor* ImportContextBase::ValueConstant(ir::ValueId v) const {
  return v == ir::kNoValue ? nullptr : target_.current_graph().ConstantOf(v);
}

void ImportContextBase::Unsupported(const std::string& reason) const {
  throw UnsupportedError(fmt::format("node '{}' ({}): {}", name_, op_, reason));
}

void ImportContextBase::Invalid(const std::string& reason) const {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' ({}): {}", name_, op_, reason));
}

}  // namespace kiln::frontend
