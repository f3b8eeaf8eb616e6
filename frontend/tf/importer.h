// TensorFlow op importers: each turns one TF node into IR nodes. One file per op family
// under frontend/tf/ops/. Every importer has a validate-only mode: it runs the same checks
// (attributes, dtypes, what must be constant) and returns before emitting anything, so
// "is this op supported?" and "import it" can never disagree.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/name_registry.h"
#include "common/proto/tensor_proto.h"
#include "frontend/import_context.h"
#include "frontend/import_errors.h"
#include "frontend/tf/lookup_table.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::tfproto {
class AttrValue;
class NodeDef;
class TensorProto;
}  // namespace kiln::tfproto

namespace kiln::tf {

using frontend::UnsupportedError;

// The value a TF tensor reference resolves to during import: an IR value, or a resource
// (a frozen variable's tensor that only ReadVariableOp-like ops may consume, or a static lookup
// table that the LookupTable* ops read).
struct TfValue {
  ir::ValueId value = ir::kNoValue;
  std::shared_ptr<const Tensor> resource;    // set for DT_RESOURCE inputs bound to a variable
  std::shared_ptr<const LookupTable> table;  // set for DT_RESOURCE inputs bound to a static table
  std::string resource_name;                 // the variable's or table's name, for messages
  bool is_resource() const { return resource != nullptr || table != nullptr; }
};

// A function argument binding for ImportFunction: either a fresh graph input of this
// dtype/shape, or a resource/constant bound into the subgraph.
struct FunctionArg {
  DType dtype = DType::kInvalid;
  ir::SymShape shape;
  std::shared_ptr<const Tensor> resource;    // a variable: consumed by ReadVariableOp inside
  std::shared_ptr<const LookupTable> table;  // a static lookup table: read by LookupTable* ops inside
  std::string resource_name;
};

class GraphBuilder;  // implemented by the frontend (frontend/tf/graph_builder.cc)

class ImportContext : public frontend::ImportContextBase {
 public:
  ImportContext(GraphBuilder& builder, const tfproto::NodeDef& node, std::vector<TfValue> inputs, bool validate_only);

  // ---- inputs (data inputs only; control inputs are dropped) ----
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  // IR value of input i. Fails for resource inputs.
  ir::ValueId input(int i) const;
  std::vector<ir::ValueId> input_values(int first = 0) const;  // input(i) for i = first, ..., num_inputs() - 1
  // dtype / shape / constant of input i when known (kInvalid / unknown / nullptr otherwise;
  // in validate-only mode they may all be unknown).
  DType input_dtype(int i) const;
  ir::SymShape input_shape(int i) const { return ValueShape(TensorInput(i)); }
  const Tensor* constant_input(int i) const { return ValueConstant(TensorInput(i)); }
  // The variable tensor behind resource input i (fails if input i is not a bound variable).
  const TfValue& resource_input(int i) const;
  // The static lookup table behind resource input i (fails if input i is not a bound table).
  const LookupTable& table_input(int i) const;
  const TfValue& raw_input(int i) const { return inputs_.at(static_cast<size_t>(i)); }

  // ---- attributes, with defaults from OpDefs already applied ----
  bool has_attr(const std::string& name) const;
  const tfproto::AttrValue& attr(const std::string& name) const;  // fails when missing
  int64_t attr_int(const std::string& name) const;
  float attr_float(const std::string& name) const;
  bool attr_bool(const std::string& name) const;
  std::string attr_string(const std::string& name) const;
  DType attr_type(const std::string& name) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;
  std::vector<float> attr_floats(const std::string& name) const;
  std::vector<DType> attr_types(const std::string& name) const;
  Tensor attr_tensor(const std::string& name) const;     // decoded TensorProto
  std::string attr_func(const std::string& name) const;  // function name of a func attr
  // With an explicit fallback for attrs that may be absent.
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  float attr_float(const std::string& name, float fallback) const;
  bool attr_bool(const std::string& name, bool fallback) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;

  // ---- emitting IR (Emit, Emit1, Constant: see frontend/import_context.h) ----
  // Sets TF flat output i of this node.
  void SetOutput(int i, ir::ValueId value);
  void SetOutput(int i, TfValue value);
  void SetOutputs(const std::vector<ir::ValueId>& values);
  const std::vector<TfValue>& outputs() const { return outputs_; }

  // Imports a library function as an IR subgraph (for If/While branches). Args bound to a
  // resource are not graph inputs of the subgraph.
  std::shared_ptr<ir::Graph> ImportFunction(const std::string& function_name, const std::vector<FunctionArg>& args);

 private:
  // The IR value of input i, or kNoValue when there is no such input or it is a resource.
  ir::ValueId TensorInput(int i) const;

  GraphBuilder& builder_;
  const tfproto::NodeDef& node_;
  std::vector<TfValue> inputs_;
  std::vector<TfValue> outputs_;
};

using ImporterFn = void (*)(ImportContext& ctx);

// Declarative metadata for one TF op: its importer, its output args (to resolve
// "node:arg:index" references inside functions) and the defaults of attrs that TF strips.
struct TfOutputArg {
  std::string name;
  std::string number_attr;     // the arg has attr(number_attr).i outputs
  std::string type_list_attr;  // the arg has len(attr(type_list_attr).list.type) outputs
};

using TfAttrDefault = std::variant<int64_t, float, bool, std::string, DType, std::vector<int64_t>>;

struct TfOpSpec {
  std::string op;
  ImporterFn import = nullptr;
  std::vector<TfOutputArg> outputs;  // empty: one output
  std::vector<std::pair<std::string, TfAttrDefault>> defaults;
};

class ImporterTable {
 public:
  void Add(TfOpSpec spec);
  const TfOpSpec* Find(std::string_view op) const { return specs_.Find(op); }
  std::vector<std::string> Ops() const { return specs_.Names(); }

 private:
  NameRegistry<TfOpSpec> specs_{"TF importer"};
};

// All TF importers; built once, immutable.
const ImporterTable& TfImporters();

void RegisterCoreImporters(ImporterTable& table);  // Const, Identity, Placeholder, ReadVariableOp, If, While, NoOp ...
void RegisterElementwiseImporters(
    ImporterTable& table);  // unary, binary, comparisons, activations, Cast, Select, AddN, BiasAdd ...
void RegisterNnImporters(
    ImporterTable& table);  // Conv*, pooling, MatMul, BatchMatMul, Einsum, FusedBatchNorm, Softmax ...
void RegisterArrayImporters(
    ImporterTable& table);  // Reshape, Transpose, Concat, slicing, gather, reductions, Shape ...
void RegisterTensorListImporters(ImporterTable& table);  // TensorList* (lists held as dense tensors)
void RegisterLookupImporters(ImporterTable& table);      // LookupTableFindV2, LookupTableSizeV2 (static tables)
void RegisterSignalImporters(ImporterTable& table);      // FFT/RFFT/IRFFT (1-3D), ComplexAbs, Real, Imag, Complex ...

using tfproto::DecodeTensorProto;

}  // namespace kiln::tf
