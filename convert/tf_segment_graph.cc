#include "convert/tf_segment_graph.h"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <set>

#include "common/proto/tensor_proto.h"

namespace kiln::convert {
namespace {

// What an engine op can pass through Kiln's C API (host numbers; no strings).
bool Carriable(DType dtype) {
  return dtype != DType::kInvalid && dtype != DType::kResource && dtype != DType::kVariant && dtype != DType::kString;
}

// "node:i" -> "node"
std::string NodeOf(const std::string& tensor) { return tensor.substr(0, tensor.rfind(':')); }

struct Failure {
  std::string reason;
};

}  // namespace

tfproto::TensorShapeProto TfShapeProto(const ir::Value& v) {
  tfproto::TensorShapeProto shape;
  if (!v.shape.rank_known) {
    shape.set_unknown_rank(true);
    return shape;
  }
  for (ir::Dim d : v.shape.dims) shape.add_dim()->set_size(ir::IsStatic(d) ? d : -1);
  return shape;
}

std::optional<TfSegmentedGraph> SegmentTfGraph(const TfSourceGraph& source, const ir::Graph& converted,
                                               const std::string& model_id, const std::string& signature_key,
                                               std::string& reason) {
  try {
    if (!source.unavailable.empty()) throw Failure{source.unavailable};
    if (source.input_tensors.size() != converted.inputs().size() ||
        source.output_tensors.size() != converted.outputs().size())
      throw Failure{"the converted graph's inputs or outputs are not the imported signature's"};

    // Values an engine produces stand for the segment values they replaced (named as the importer named them).
    std::map<std::string, std::string> engine_value_origin;
    std::vector<const ir::Node*> engines;
    for (const ir::Node& node : converted.nodes()) {
      if (node.removed) continue;
      // Native control flow (If / While) stays TensorFlow's: its node keeps its bodies in the
      // graph's library, which TensorFlow runs as it did before conversion.
      if (node.op != "Engine") continue;
      const auto& segment = *node.attrs.Get<std::shared_ptr<ir::Graph>>("segment");
      for (size_t i = 0; i < node.outputs.size(); ++i)
        engine_value_origin[converted.value(node.outputs[i]).name] = segment.output_names().at(i);
      engines.push_back(&node);
    }
    auto tensor_of = [&](const std::string& value_name) -> std::string {
      auto origin = engine_value_origin.find(value_name);
      const std::string& name = origin == engine_value_origin.end() ? value_name : origin->second;
      auto it = source.tensor_of_value.find(name);
      return it == source.tensor_of_value.end() ? "" : it->second;
    };

    std::set<std::string> names;
    for (const tfproto::NodeDef& n : source.graph.node()) names.insert(n.name());
    auto claim = [&](const std::string& name) {
      if (!names.insert(name).second)
        throw Failure{fmt::format("node name '{}' is taken in the TensorFlow graph", name)};
    };

    TfSegmentedGraph result;
    std::vector<tfproto::NodeDef> added;
    std::map<std::string, std::string> replaced;  // TF tensor an engine computes -> the engine node's output
    for (const ir::Node* engine : engines) {
      const ir::Graph& segment = *engine->attrs.Get<std::shared_ptr<ir::Graph>>("segment");
      tfproto::NodeDef op;
      op.set_name(engine->name);
      claim(op.name());
      op.set_op(kTfEngineOp);
      auto& attrs = *op.mutable_attr();
      attrs["model_id"].set_s(model_id);
      attrs["signature_key"].set_s(signature_key);
      attrs["engine_name"].set_s(engine->attrs.Has("engine_name") ? engine->attrs.Get<std::string>("engine_name")
                                                                  : engine->name);
      for (const char* list : {"Tin", "Tout", "output_shapes"}) attrs[list].mutable_list();
      for (size_t k = 0; k < engine->inputs.size(); ++k) {
        const ir::Value& v = converted.value(engine->inputs[k]);
        if (!Carriable(v.dtype))
          throw Failure{fmt::format("engine '{}' input '{}' has dtype {}", engine->name, v.name, DTypeName(v.dtype))};
        std::string tensor = tensor_of(v.name);
        if (tensor.empty() && v.constant) {
          // A constant Kiln folded (no TF node computes it): handed to the engine as a Const.
          tfproto::NodeDef c;
          c.set_name(fmt::format("{}/const_{}", engine->name, k));
          claim(c.name());
          c.set_op("Const");
          (*c.mutable_attr())["dtype"].set_type(static_cast<int>(v.dtype));
          *(*c.mutable_attr())["value"].mutable_tensor() =
              tfproto::EncodeTensorProto(*v.constant, fmt::format("engine '{}' input '{}'", engine->name, v.name));
          tensor = c.name() + ":0";
          added.push_back(std::move(c));
        }
        if (tensor.empty())
          throw Failure{fmt::format(
              "engine '{}' input '{}' is no TensorFlow tensor (internal to one TF node's decomposition, or made by a "
              "Kiln pass)",
              engine->name, v.name)};
        op.add_input(tensor);
        attrs["Tin"].mutable_list()->add_type(static_cast<int>(v.dtype));
      }
      for (size_t i = 0; i < engine->outputs.size(); ++i) {
        const ir::Value& v = converted.value(engine->outputs[i]);
        const std::string& original = segment.output_names().at(i);
        if (!Carriable(v.dtype))
          throw Failure{
              fmt::format("engine '{}' output '{}' has dtype {}", engine->name, original, DTypeName(v.dtype))};
        auto it = source.tensor_of_value.find(original);
        if (it == source.tensor_of_value.end())
          throw Failure{fmt::format(
              "engine '{}' output '{}' is no TensorFlow tensor (internal to one TF node's decomposition, or made by a "
              "Kiln pass)",
              engine->name, original)};
        if (!replaced.emplace(it->second, fmt::format("{}:{}", engine->name, i)).second)
          throw Failure{fmt::format("two engine outputs are TensorFlow tensor '{}'", it->second)};
        attrs["Tout"].mutable_list()->add_type(static_cast<int>(v.dtype));
        *attrs["output_shapes"].mutable_list()->add_shape() = TfShapeProto(v);
      }
      added.push_back(std::move(op));
    }

    // Every reader of a tensor an engine computes reads the engine instead.
    auto rewire = [&](const std::string& tensor) {
      auto it = replaced.find(tensor);
      return it == replaced.end() ? tensor : it->second;
    };
    std::vector<tfproto::NodeDef> nodes(source.graph.node().begin(), source.graph.node().end());
    for (tfproto::NodeDef& n : added) nodes.push_back(std::move(n));
    for (tfproto::NodeDef& n : nodes)
      for (int i = 0; i < n.input_size(); ++i) n.set_input(i, rewire(n.input(i)));
    for (const std::string& t : source.output_tensors) result.outputs.push_back(rewire(t));
    result.inputs = source.input_tensors;

    // Keep what the outputs need (the nodes engines cover drop out here), and the inputs.
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i].name()] = i;
    std::vector<char> keep(nodes.size(), 0);
    std::vector<size_t> stack;
    auto need = [&](const std::string& tensor) {
      auto it = index.find(NodeOf(tensor));
      if (it == index.end()) throw Failure{fmt::format("tensor '{}' names no node of the TensorFlow graph", tensor)};
      if (!keep[it->second]) {
        keep[it->second] = 1;
        stack.push_back(it->second);
      }
    };
    for (const std::string& t : result.outputs) need(t);
    for (const std::string& t : result.inputs) need(t);
    while (!stack.empty()) {
      const size_t i = stack.back();
      stack.pop_back();
      for (const std::string& in : nodes[i].input()) need(in);
    }
    // A cycle would mean an engine feeds TF nodes that feed it back (the segmenter's cycle check
    // is on the IR; TF nodes kept only for their other outputs could still close one).
    std::map<std::string, int> pending;
    std::map<std::string, std::vector<size_t>> readers;
    std::vector<size_t> ready;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!keep[i]) continue;
      pending[nodes[i].name()] = nodes[i].input_size();
      for (const std::string& in : nodes[i].input()) readers[NodeOf(in)].push_back(i);
      if (nodes[i].input_size() == 0) ready.push_back(i);
    }
    size_t ordered = 0;
    while (!ready.empty()) {
      const size_t i = ready.back();
      ready.pop_back();
      ++ordered;
      for (size_t r : readers[nodes[i].name()])
        if (--pending[nodes[r].name()] == 0) ready.push_back(r);
    }
    if (ordered != pending.size())
      throw Failure{"replacing the engines' nodes would make a cycle in the TensorFlow graph"};

    for (size_t i = 0; i < nodes.size(); ++i)
      if (keep[i])
        if (auto it = nodes[i].attr().find(kUnexpressibleAttr); it != nodes[i].attr().end())
          throw Failure{it->second.s()};

    *result.graph.mutable_versions() = source.graph.versions();
    *result.graph.mutable_library() = source.graph.library();  // bodies of control flow left to TensorFlow
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (!keep[i]) continue;
      if (auto frozen = source.frozen_variables.find(nodes[i].name()); frozen != source.frozen_variables.end())
        *(*nodes[i].mutable_attr())["value"].mutable_tensor() =
            tfproto::EncodeTensorProto(*frozen->second, fmt::format("variable read '{}'", nodes[i].name()));
      result.engines += nodes[i].op() == kTfEngineOp;
      *result.graph.add_node() = std::move(nodes[i]);
    }
    if (result.engines != engines.size())
      throw Failure{"an engine's outputs are read by nothing in the TensorFlow graph"};
    return result;
  } catch (const Failure& f) {
    reason = f.reason;
    return std::nullopt;
  }
}

}  // namespace kiln::convert
