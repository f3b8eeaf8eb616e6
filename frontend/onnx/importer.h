// ONNX op importers: each turns one ONNX node into IR nodes. One file per op family under
// frontend/onnx/ops/. As for TensorFlow (frontend/tf/importer.h), every importer has a
// validate-only mode: the same checks, nothing emitted, so "is this node supported?" and
// "import it" can never disagree.
//
// Importers read the model's default-domain opset (ctx.opset()) and implement each version
// the ONNX spec defines from the op's entry in op_versions.h on (kMinOpset, 13, unless listed
// there): e.g. Split's `split` is an attribute before opset 13 and an input from 13.
#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/name_registry.h"
#include "frontend/import_context.h"
#include "frontend/import_errors.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace onnx {
class AttributeProto;
class GraphProto;
class NodeProto;
}  // namespace onnx

namespace kiln::onnxfe {

using UnsupportedError = frontend::UnsupportedError;

class GraphBuilder;  // frontend/onnx/graph_builder.cc

// A subgraph (If branch, Loop body) imported as an IR graph: its IR inputs are the explicit
// inputs first, then one input per outer value it reads (`captured`, in this order).
struct ImportedSubgraph {
  std::shared_ptr<ir::Graph> graph;
  std::vector<ir::ValueId> captured;  // outer-scope values, in the order of the extra inputs
};

// One explicit input of a subgraph (e.g. Loop's iteration number and carried values).
struct SubgraphInput {
  DType dtype = DType::kInvalid;
  ir::SymShape shape;
};

class ImportContext : public frontend::ImportContextBase {
 public:
  // `name` is the node's name, or a generated one when it has none.
  ImportContext(GraphBuilder& builder, const onnx::NodeProto& node, std::string name, std::vector<ir::ValueId> inputs,
                bool validate_only);

  int64_t opset() const;  // default-domain opset of the model

  // ---- inputs; an input given as "" (an omitted optional input) has no value ----
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  bool has_input(int i) const { return i < num_inputs() && inputs_[static_cast<size_t>(i)] != ir::kNoValue; }
  ir::ValueId input(int i) const;  // fails (Invalid) when absent
  std::vector<ir::ValueId> input_values(int first = 0) const;  // input(i) for i = first, ..., num_inputs() - 1
  // dtype / shape / constant of input i: kInvalid / unknown / nullptr when absent and in
  // validate-only mode (nullptr also when not known at import time).
  DType input_dtype(int i) const { return ValueDType(KnownInput(i)); }
  ir::SymShape input_shape(int i) const { return ValueShape(KnownInput(i)); }
  const Tensor* constant_input(int i) const { return ValueConstant(KnownInput(i)); }
  // A constant input read as int64 values (for shapes, axes, pads, ...); Unsupported naming
  // `what` when it is not a constant.
  std::vector<int64_t> constant_ints(int i, const std::string& what) const;
  int num_outputs() const;  // outputs the node declares (including trailing "" ones)
  bool has_output(int i) const;  // declared and named

  // ---- attributes ----
  bool has_attr(const std::string& name) const;
  const onnx::AttributeProto* find_attr(const std::string& name) const;
  int64_t attr_int(const std::string& name) const;  // Invalid when missing
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  float attr_float(const std::string& name, float fallback) const;
  float attr_float(const std::string& name) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  std::string attr_string(const std::string& name) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;  // empty when missing
  std::optional<std::vector<int64_t>> attr_ints_opt(const std::string& name) const;
  std::vector<float> attr_floats(const std::string& name) const;
  std::vector<std::string> attr_strings(const std::string& name) const;
  Tensor attr_tensor(const std::string& name) const;
  const onnx::GraphProto& attr_graph(const std::string& name) const;

  // Older versions of some ops carried operands as attributes that later versions take as inputs
  // (Slice-1's starts/ends/axes, Pad-2's pads and value, Clip-6's min/max, TopK-1's k): their
  // importers place the attribute's value here as constant input i and go on as for the newer
  // version. In validate-only mode nothing is emitted; the input is only counted.
  void SetConstantInput(int i, const Tensor& value, const std::string& suffix);

  // ---- emitting IR (Emit, Emit1, Constant: see frontend/import_context.h) ----
  // A scalar or 1-D int constant.
  ir::ValueId ConstInt64(const std::vector<int64_t>& values, bool scalar = false, const std::string& suffix = "const");
  ir::ValueId ConstInt32(const std::vector<int32_t>& values, bool scalar = false, const std::string& suffix = "const");
  void SetOutput(int i, ir::ValueId value);
  const std::vector<ir::ValueId>& outputs() const { return outputs_; }

  // Imports a subgraph attribute (If/Loop/Scan bodies). Outer values it reads become extra
  // inputs; pass the same `captured_names` for sibling branches so they share one input list
  // (see GraphBuilder::FreeNames).
  ImportedSubgraph ImportSubgraph(const onnx::GraphProto& body, const std::vector<SubgraphInput>& explicit_inputs,
                                  const std::vector<std::string>& captured_names);
  // Outer-scope names read by `body` (and its nested subgraphs) that it does not define.
  std::vector<std::string> FreeNames(const onnx::GraphProto& body) const;

 private:
  // Input i's value when it is present and known (not in validate-only mode), else kNoValue.
  ir::ValueId KnownInput(int i) const;

  GraphBuilder& builder_;
  const onnx::NodeProto& node_;
  std::vector<ir::ValueId> inputs_;
  std::vector<ir::ValueId> outputs_;
};

// A scalar of `dtype` holding `value` (rounded to nearest for float16/bfloat16/float32,
// truncated toward zero for integers); kInternal for a dtype that is not numeric or bool.
Tensor ScalarTensor(DType dtype, double value);

using ImporterFn = void (*)(ImportContext& ctx);

class ImporterTable {
 public:
  void Add(const std::string& op_type, ImporterFn fn) { fns_.Add(op_type, fn); }
  // One importer for several op types (e.g. every Reduce* op).
  void Add(std::initializer_list<const char*> op_types, ImporterFn fn) {
    for (const char* op_type : op_types) Add(op_type, fn);
  }
  // nullptr when the op type has no importer.
  ImporterFn Find(std::string_view op_type) const {
    const ImporterFn* fn = fns_.Find(op_type);
    return fn ? *fn : nullptr;
  }
  std::vector<std::string> Ops() const { return fns_.Names(); }

 private:
  NameRegistry<ImporterFn> fns_{"ONNX importer"};
};

// The table the importers add themselves to while the program initialises (KILN_ONNX_IMPORTER).
ImporterTable& OnnxImporterRegistry();

// All ONNX importers (default domain): OnnxImporterRegistry(), complete once main() runs.
inline const ImporterTable& OnnxImporters() { return OnnxImporterRegistry(); }

// Registers `fn` as the importer of ONNX op type `op`, right after the importer's definition
// (see KILN_STATIC_REGISTRATION); KILN_ONNX_IMPORTERS(fn, "ArgMax", "ArgMin") for several ops.
#define KILN_ONNX_IMPORTER(op, fn) KILN_STATIC_REGISTRATION(::kiln::onnxfe::OnnxImporterRegistry().Add(op, fn))
#define KILN_ONNX_IMPORTERS(fn, ...) \
  KILN_STATIC_REGISTRATION(::kiln::onnxfe::OnnxImporterRegistry().Add({__VA_ARGS__}, fn))

}  // namespace kiln::onnxfe
