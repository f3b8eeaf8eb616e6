// Records, while GraphBuilder imports a signature, the TensorFlow graph it imported as one flat
// GraphDef (calls inlined under their call node's name, variables read as Const nodes) and which
// TF tensor each IR value the importers set as a node output is (common/proto/tf_source_graph.h).
// A converted SavedModel replaces the nodes each engine covers in this graph by one engine op.
// Control-flow nodes are recorded with their bodies in the graph's library. Whatever the flat graph
// cannot express (variables used other than by ReadVariableOp, name clashes) makes it
// unavailable, with the first reason kept.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/proto/tf_source_graph.h"
#include "frontend/tf/importer.h"
#include "ir/graph.h"

namespace kiln::tf {

class FlatGraphRecorder {
 public:
  FlatGraphRecorder();
  // Keeps the first reason; later nodes are no longer recorded.
  void Unavailable(const std::string& reason);
  bool available() const { return source_->unavailable.empty(); }
  // The source GraphDef's versions (its function bodies were written for them).
  void SetVersions(const tfproto::VersionDef& versions) { *source_->graph.mutable_versions() = versions; }
  // The signature input `value` fed by the outer graph's Placeholder `node` (tensor "node:index").
  void AddInput(const tfproto::NodeDef* node, int index, const ir::Graph& graph, ir::ValueId value);
  // A TF node imported in the top-level IR graph: `prefix` is its call scope ("" or "call/"),
  // `inputs` its data inputs as resolved, `outputs` the values its importer set.
  void AddNode(const std::string& prefix, const tfproto::NodeDef& node, const ir::Graph& graph,
               const std::vector<TfValue>& inputs, const std::vector<TfValue>& outputs);
  // A control-flow body (If branch, While cond / body) Kiln imported as a subgraph: the node that
  // runs it is recorded like any other, so TensorFlow needs the function (and every function it
  // calls) in the flat graph's library; `functions` is the model's library by name.
  void AddFunction(const std::string& name, const std::map<std::string, const tfproto::FunctionDef*>& functions);
  // The signature outputs, in graph order; call once, after the import.
  void SetOutputs(const ir::Graph& graph, const std::vector<ir::ValueId>& outputs);
  std::shared_ptr<const TfSourceGraph> Take();

 private:
  // The TF tensor of an IR value, or "" (recording stops with a reason naming `user`).
  std::string TensorOf(const ir::Graph& graph, ir::ValueId value, const std::string& user);
  bool ClaimName(const std::string& name);

  std::shared_ptr<TfSourceGraph> source_;
  std::set<std::string> names_;
  std::set<std::string> functions_added_;
  // Every recorded output, lists included (TF reads them); source_->tensor_of_value leaves out the
  // TF tensors whose TensorFlow dtype is not their IR value's (TensorList variants are dense IR
  // tensors), which no engine may take or give.
  std::map<std::string, std::string> wiring_;
};

}  // namespace kiln::tf
