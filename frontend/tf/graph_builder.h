// Imports one signature of a SavedModel into Kiln's IR: resolves the signature's tensors in
// the outer graph, inlines every function call (StatefulPartitionedCall, PartitionedCall,
// direct calls, nested), freezes variables into constants, and runs each node's importer.
// Only the nodes the signature's outputs depend on are imported.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "frontend/import_context.h"
#include "frontend/import_errors.h"
#include "frontend/tf/flat_graph.h"
#include "frontend/tf/importer.h"
#include "frontend/tf/saved_model.h"
#include "ir/graph.h"

namespace kiln::tf {

// One unsupported TF node found while importing.
using frontend::UnsupportedNode;
using frontend::UnsupportedOpsError;

class GraphBuilder : public frontend::ImportTarget {
 public:
  GraphBuilder(const SavedModelBundle& bundle, VariableReader& variables);
  ~GraphBuilder();

  // Imports signature `key` into a fresh IR graph whose inputs and outputs carry the
  // signature's user-facing names (sorted by name, as TensorFlow orders them).
  ir::Graph ImportSignature(const std::string& key);
  // The TF graph ImportSignature imported, flat (frontend/tf/flat_graph.h); call after it.
  std::shared_ptr<const TfSourceGraph> TakeSourceGraph() { return flat_.Take(); }

  // ---- used by ImportContext ----
  struct Scope;
  ir::Graph& current_graph() override;
  std::string UniqueNodeName(const std::string& base) override;
  const tfproto::AttrValue* FindAttr(const tfproto::NodeDef& node, const std::string& name);
  std::shared_ptr<ir::Graph> ImportFunction(const std::string& name, const std::vector<FunctionArg>& args,
                                            std::vector<TfValue>* resource_outputs = nullptr);

 private:
  std::vector<TfValue> ImportScope(Scope& scope, const std::vector<std::string>& wanted);
  // ImportScope with `scope` pushed as the current scope (popped on return or throw).
  std::vector<TfValue> ImportInScope(Scope& scope, const std::vector<std::string>& wanted);
  void ImportNode(Scope& scope, const tfproto::NodeDef& node);
  std::vector<TfValue> ImportCall(Scope& scope, const tfproto::NodeDef& node, const std::string& function_name,
                                  std::vector<TfValue> inputs);
  TfValue Resolve(Scope& scope, const std::string& ref);
  // Whether `node` takes tensor `ref` as a data input.
  static bool GivenRef(const tfproto::NodeDef& node, const std::string& ref);
  // Whether the functions `node` runs (a call, If, While, a library function op), or functions they
  // run, write a variable; `seen` holds the functions already looked at.
  bool RunsVariableWrites(const tfproto::NodeDef& node, std::set<std::string>& seen) const;
  // A node `node` (whose data inputs are `inputs`) is ordered after that is given one of the same
  // variables and runs a function writing variables; "" if none.
  std::string WrittenInsideBefore(const Scope& scope, const tfproto::NodeDef& node,
                                  const std::vector<TfValue>& inputs) const;
  // Ops that may be given a variable: reads, writes, ResourceGather, calls, If and While.
  bool TakesVariables(const std::string& op) const;
  // The name of a variable among `inputs` that a write `node` is ordered after writes; "" if none.
  std::string VariableWrittenBefore(const Scope& scope, const tfproto::NodeDef& node,
                                    const std::vector<TfValue>& inputs) const;
  // Whether control input `control` of `node` is a variable write that `node` (an op that may be
  // given a variable) is ordered after, so must be imported first.
  bool OrderedAfterWrite(const Scope& scope, const tfproto::NodeDef& node, const std::string& control) const;
  // The value the variable of `node` (a read or a write; inputs[0] the variable) holds after the
  // write `node` is ordered after; kNoValue when none (the frozen value). Sets `reason` when the
  // node cannot be imported.
  ir::ValueId LastWrite(const Scope& scope, const tfproto::NodeDef& node, const std::vector<TfValue>& inputs,
                        std::string* reason) const;
  // AssignVariableOp / AssignAddVariableOp / AssignSubVariableOp: records the value the variable
  // holds afterwards; `before` is the value it held (kNoValue: the frozen one).
  void ImportVariableWrite(Scope& scope, const tfproto::NodeDef& node, const std::vector<TfValue>& inputs,
                           ir::ValueId before);
  // Adds an imported node to the flat TF graph (outside control-flow bodies).
  void RecordFlat(const Scope& scope, const tfproto::NodeDef& node, const std::vector<TfValue>& inputs,
                  const std::vector<TfValue>& outputs);
  std::string NodeOfRef(const std::string& ref) const;
  int FlatOutputIndex(const tfproto::NodeDef& node, const std::string& arg, int index);
  void MapCapturedVariables();

  const SavedModelBundle& bundle_;
  VariableReader& variables_;
  std::map<std::string, const tfproto::FunctionDef*> functions_;
  std::map<std::string, const tfproto::OpDef*> op_defs_;  // from stripped_op_list
  std::map<std::string, TfValue> outer_resources_;        // outer VarHandleOp / table name -> variable / table
  std::map<std::string, std::string> outer_unsupported_;  // outer resource name -> why it cannot be bound
  std::map<std::string, std::map<std::string, tfproto::AttrValue>> default_attrs_;
  std::vector<Scope*> scopes_;
  frontend::UniqueNames node_names_;
  std::vector<UnsupportedNode> unsupported_;
  FlatGraphRecorder flat_;
};

}  // namespace kiln::tf
