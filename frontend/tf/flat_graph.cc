#include "frontend/tf/flat_graph.h"

#include <fmt/format.h>

#include <set>

namespace kiln::tf {

FlatGraphRecorder::FlatGraphRecorder() : source_(std::make_shared<TfSourceGraph>()) {}

void FlatGraphRecorder::Unavailable(const std::string& reason) {
  if (source_->unavailable.empty()) source_->unavailable = reason;
}

bool FlatGraphRecorder::ClaimName(const std::string& name) {
  if (names_.insert(name).second) return true;
  Unavailable(fmt::format("two TensorFlow nodes become '{}' once function calls are inlined", name));
  return false;
}

std::string FlatGraphRecorder::TensorOf(const ir::Graph& graph, ir::ValueId value, const std::string& user) {
  auto it = wiring_.find(graph.value(value).name);
  if (it != wiring_.end()) return it->second;
  Unavailable(fmt::format("the input '{}' of node '{}' is no TensorFlow tensor", graph.value(value).name, user));
  return "";
}

void FlatGraphRecorder::AddInput(const tfproto::NodeDef* node, int index, const ir::Graph& graph, ir::ValueId value) {
  if (!available()) return;
  if (!node || node->op() != "Placeholder")
    return Unavailable(
        fmt::format("signature input '{}' is not a Placeholder of the outer graph", graph.value(value).name));
  if (names_.count(node->name()) == 0) {
    if (!ClaimName(node->name())) return;
    tfproto::NodeDef* copy = source_->graph.add_node();
    *copy = *node;
    copy->clear_device();
    copy->clear_input();
  }
  const std::string tensor = fmt::format("{}:{}", node->name(), index);
  source_->tensor_of_value.try_emplace(graph.value(value).name, tensor);
  wiring_.try_emplace(graph.value(value).name, tensor);
  source_->input_tensors.push_back(tensor);
}

void FlatGraphRecorder::AddNode(const std::string& prefix, const tfproto::NodeDef& node, const ir::Graph& graph,
                                const std::vector<TfValue>& inputs, const std::vector<TfValue>& outputs) {
  if (!available()) return;
  const std::string name = prefix + node.name();
  bool reads_resource = false, all_resources = !outputs.empty();
  for (const TfValue& in : inputs) reads_resource = reads_resource || in.is_resource();
  for (const TfValue& out : outputs) all_resources = all_resources && out.is_resource();
  if (all_resources) return;  // passes a variable along (Identity of a handle): nothing to compute
  tfproto::NodeDef flat;
  flat.set_name(name);
  if (reads_resource) {
    // Variables are frozen: a read becomes the variable's value, as it did in the IR.
    if (node.op() != "ReadVariableOp" || inputs.size() != 1 || outputs.size() != 1 || !inputs[0].resource) {
      // Fine inside an engine (the engine computes it from the frozen value); the node is marked,
      // and the per-engine layout is refused only if TensorFlow would still have to run it.
      flat.set_op(node.op());
      bool reads_table = false;
      for (const TfValue& in : inputs) reads_table = reads_table || in.table != nullptr;
      (*flat.mutable_attr())[kUnexpressibleAttr].set_s(
          reads_table ? fmt::format("node '{}' ({}) reads a lookup table and is not inside an engine; TensorFlow's "
                                    "graph of a converted model (tables held as constants) cannot express it",
                                    name, node.op())
                      : fmt::format("node '{}' ({}) uses a variable other than by ReadVariableOp and is not inside "
                                    "an engine; TensorFlow's graph of a converted model (variables frozen) cannot "
                                    "express it",
                                    name, node.op()));
      for (const TfValue& in : inputs) {
        if (in.is_resource() || in.value == ir::kNoValue) continue;
        const std::string tensor = TensorOf(graph, in.value, name);
        if (tensor.empty()) return;
        flat.add_input(tensor);
      }
    } else {
      flat.set_op("Const");
      (*flat.mutable_attr())["dtype"].set_type(static_cast<int>(inputs[0].resource->dtype()));
      source_->frozen_variables[name] = inputs[0].resource;
    }
  } else {
    flat.set_op(node.op());
    for (const auto& [key, value] : node.attr())
      if (key.empty() || key[0] != '_') (*flat.mutable_attr())[key] = value;  // "_..." are runtime hints
    for (const TfValue& in : inputs) {
      if (in.value == ir::kNoValue)
        return Unavailable(fmt::format("node '{}' ({}) has an input Kiln did not import", name, node.op()));
      const std::string tensor = TensorOf(graph, in.value, name);
      if (tensor.empty()) return;
      flat.add_input(tensor);
    }
  }
  if (!ClaimName(name)) return;
  *source_->graph.add_node() = std::move(flat);
  // TensorList ops give DT_VARIANT lists (dense tensors in the IR), except these, which give tensors.
  static const std::set<std::string> kListReaders = {"TensorListGetItem", "TensorListStack", "TensorListGather",
                                                     "TensorListElementShape", "TensorListLength"};
  const bool gives_lists = (node.op().rfind("TensorList", 0) == 0 || node.op().rfind("EmptyTensorList", 0) == 0) &&
                           !kListReaders.count(node.op());
  // Control-flow nodes pass lists along too: their output types say which outputs are variants.
  const tfproto::AttrValue* types = nullptr;
  for (const char* key : {"T", "Tout"}) {
    auto it = node.attr().find(key);
    if (it != node.attr().end() && it->second.has_list()) types = &it->second;
  }
  constexpr int kDtVariant = 21;  // TensorFlow's DT_VARIANT
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].is_resource() || outputs[i].value == ir::kNoValue) continue;
    const std::string& value = graph.value(outputs[i].value).name;
    const std::string tensor = fmt::format("{}:{}", name, i);
    if (!wiring_.try_emplace(value, tensor).second) continue;
    const bool variant = types && static_cast<int>(i) < types->list().type_size() &&
                         types->list().type(static_cast<int>(i)) == kDtVariant;
    const bool popped_item = node.op() == "TensorListPopBack" && i == 1;  // (list, tensor)
    if ((!gives_lists || popped_item) && !variant) source_->tensor_of_value.try_emplace(value, tensor);
  }
}

void FlatGraphRecorder::AddFunction(const std::string& name,
                                    const std::map<std::string, const tfproto::FunctionDef*>& functions) {
  // Worklist over the functions `name` reaches: ops that are functions (calls by name) and func
  // attributes (PartitionedCall's f, If's branches, While's cond and body), nested ones included.
  std::vector<std::string> pending{name};
  while (!pending.empty() && available()) {
    const std::string next = pending.back();
    pending.pop_back();
    auto it = functions.find(next);
    if (it == functions.end() || !functions_added_.insert(next).second) continue;
    *source_->graph.mutable_library()->add_function() = *it->second;
    for (const tfproto::NodeDef& n : it->second->node_def()) {
      if (functions.count(n.op())) pending.push_back(n.op());
      for (const auto& [key, value] : n.attr()) {
        if (value.has_func()) pending.push_back(value.func().name());
        if (value.has_list())
          for (const tfproto::NameAttrList& f : value.list().func()) pending.push_back(f.name());
      }
    }
  }
}

void FlatGraphRecorder::SetOutputs(const ir::Graph& graph, const std::vector<ir::ValueId>& outputs) {
  for (ir::ValueId v : outputs) {
    if (!available()) return;
    source_->output_tensors.push_back(TensorOf(graph, v, "the signature's outputs"));
  }
}

std::shared_ptr<const TfSourceGraph> FlatGraphRecorder::Take() {
  if (!available()) {
    source_->graph.Clear();
    source_->tensor_of_value.clear();
    source_->frozen_variables.clear();
  }
  return source_;
}

}  // namespace kiln::tf
