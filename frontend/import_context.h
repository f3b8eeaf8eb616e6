// What every frontend's op importers share, whatever the source format: a node's name and op,
// the validate-only mode, emitting IR nodes and constants into the graph being built, and the
// errors that name the node. The TF and ONNX ImportContexts derive from ImportContextBase and
// add their own inputs, attributes and subgraphs; their GraphBuilders are ImportTargets.
#pragma once

#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::frontend {

// An IR attribute map written inline: Attrs({{"axis", axis}, {"keep_dims", true}}).
ir::AttrMap Attrs(std::initializer_list<std::pair<const char*, ir::AttrValue>> list);

// The graph a frontend's GraphBuilder is importing into right now (the main graph, or a
// subgraph while one is imported) and node names unique within it.
class ImportTarget {
 public:
  virtual ir::Graph& current_graph() = 0;
  virtual std::string UniqueNodeName(const std::string& base) = 0;

 protected:
  ~ImportTarget() = default;
};

// Node names unique within each graph an import builds: the IR requires them, and one source
// node may become several IR nodes, or share its name with an initializer.
class UniqueNames {
 public:
  // `base` when `graph` has no node of that name yet, else the first free `base_1`, `base_2`,
  // ...; "node" for an empty base.
  std::string Claim(const ir::Graph& graph, const std::string& base);

 private:
  std::map<const ir::Graph*, std::set<std::string>> used_;
};

class ImportContextBase {
 public:
  const std::string& name() const { return name_; }  // the source node's name
  const std::string& op() const { return op_; }      // its op type in the source format
  // Importers check everything and return before emitting, so that "is this node supported?"
  // and "import it" can never disagree.
  bool validate_only() const { return validate_only_; }

  // ---- emitting IR (kInternal in validate-only mode) ----
  // Adds an IR node named after the source node (plus `suffix` when one node becomes several),
  // runs shape inference on it and returns its outputs.
  std::vector<ir::ValueId> Emit(const std::string& ir_op, std::vector<ir::ValueId> inputs, ir::AttrMap attrs = {},
                                int num_outputs = 1, const std::string& suffix = "");
  ir::ValueId Emit1(const std::string& ir_op, std::vector<ir::ValueId> inputs, ir::AttrMap attrs = {},
                    const std::string& suffix = "") {
    return Emit(ir_op, std::move(inputs), std::move(attrs), 1, suffix)[0];
  }
  ir::ValueId Constant(Tensor tensor, const std::string& suffix = "const");
  ir::Graph& graph() { return target_.current_graph(); }

  // Errors naming this node and op.
  [[noreturn]] void Unsupported(const std::string& reason) const;  // UnsupportedError
  [[noreturn]] void Invalid(const std::string& reason) const;      // kInvalidArgument

 protected:
  ImportContextBase(ImportTarget& target, std::string name, std::string op, bool validate_only);
  ~ImportContextBase() = default;

  // What the graph knows of value `v`: kInvalid / unknown / nullptr for ir::kNoValue.
  DType ValueDType(ir::ValueId v) const;
  ir::SymShape ValueShape(ir::ValueId v) const;
  const Tensor* ValueConstant(ir::ValueId v) const;

 private:
  // A unique name for an IR node this node becomes; kInternal in validate-only mode, where
  // `what` (Emit or Constant) must not be called.
  std::string NameForEmitting(const char* what, const std::string& suffix);

  ImportTarget& target_;
  std::string name_;
  std::string op_;
  bool validate_only_;
};

}  // namespace kiln::frontend
