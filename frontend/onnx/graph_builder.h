// Imports an ONNX model's main graph into Kiln's IR: initializers become constants, graph
// inputs that are not initializers become IR inputs (dim_param names become shared symbols),
// each node runs its importer, and subgraphs (If/Loop bodies) become IR subgraphs whose outer
// reads are explicit inputs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "frontend/import_context.h"
#include "frontend/onnx/importer.h"
#include "frontend/onnx/onnx_model.h"
#include "frontend/import_errors.h"
#include "ir/graph.h"

namespace kiln::onnxfe {

using UnsupportedNode = frontend::UnsupportedNode;
using UnsupportedOpsError = frontend::UnsupportedOpsError;

class GraphBuilder : public frontend::ImportTarget {
 public:
  explicit GraphBuilder(const OnnxModel& model);
  ~GraphBuilder();

  // The main graph. Inputs and outputs keep the ONNX names, in the model's order.
  // UnsupportedOpsError listing every op that cannot be imported.
  ir::Graph Import();

  // ---- used by ImportContext ----
  const OnnxModel& model() const { return model_; }
  ir::Graph& current_graph() override;
  std::string UniqueNodeName(const std::string& base) override;
  ImportedSubgraph ImportSubgraph(const onnx::GraphProto& body, const std::vector<SubgraphInput>& explicit_inputs,
                                  const std::vector<std::string>& captured_names);
  std::vector<std::string> FreeNames(const onnx::GraphProto& body) const;

 private:
  struct Scope;
  void ImportGraphBody(Scope& scope, const onnx::GraphProto& graph);
  void ImportNode(Scope& scope, const onnx::NodeProto& node, int index);
  ir::ValueId Lookup(Scope& scope, const std::string& name) const;

  const OnnxModel& model_;
  std::vector<Scope*> scopes_;
  frontend::UniqueNames node_names_;
  std::map<std::string, ir::Dim> symbols_;  // dim_param -> symbol of the main graph
  std::vector<UnsupportedNode> unsupported_;
};

// Loads and imports `path` (LoadOnnxModel + GraphBuilder::Import).
ir::Graph ImportOnnxFile(const std::string& path);

}  // namespace kiln::onnxfe
