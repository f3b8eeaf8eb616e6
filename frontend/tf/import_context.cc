#include <fmt/format.h>

#include "common/proto/tf.pb.h"
#include "frontend/tf/graph_builder.h"
#include "frontend/tf/importer.h"

namespace kiln::tf {

ImportContext::ImportContext(GraphBuilder& builder, const tfproto::NodeDef& node, std::vector<TfValue> inputs,
                             bool validate_only)
    : ImportContextBase(builder, node.name(), node.op(), validate_only),
      builder_(builder),
      node_(node),
      inputs_(std::move(inputs)) {}

ir::ValueId ImportContext::input(int i) const {
  if (i < 0 || i >= num_inputs()) Invalid(fmt::format("expected at least {} inputs, got {}", i + 1, num_inputs()));
  const TfValue& v = inputs_[static_cast<size_t>(i)];
  if (v.is_resource())
    Unsupported(fmt::format("input {} is a resource ({} '{}'), not a tensor", i, v.table ? "lookup table" : "variable",
                            v.resource_name));
  return v.value;
}

std::vector<ir::ValueId> ImportContext::input_values(int first) const {
  std::vector<ir::ValueId> values;
  for (int i = first; i < num_inputs(); ++i) values.push_back(input(i));
  return values;
}

ir::ValueId ImportContext::TensorInput(int i) const {
  if (i < 0 || i >= num_inputs()) return ir::kNoValue;
  const TfValue& v = inputs_[static_cast<size_t>(i)];
  return v.is_resource() ? ir::kNoValue : v.value;
}

DType ImportContext::input_dtype(int i) const {
  if (i >= 0 && i < num_inputs() && inputs_[static_cast<size_t>(i)].is_resource()) return DType::kResource;
  return ValueDType(TensorInput(i));
}

const TfValue& ImportContext::resource_input(int i) const {
  if (i < 0 || i >= num_inputs()) Invalid(fmt::format("expected at least {} inputs, got {}", i + 1, num_inputs()));
  const TfValue& v = inputs_[static_cast<size_t>(i)];
  if (!v.resource) Unsupported(fmt::format("input {} is not a variable bound at import time", i));
  return v;
}

const LookupTable& ImportContext::table_input(int i) const {
  if (i < 0 || i >= num_inputs()) Invalid(fmt::format("expected at least {} inputs, got {}", i + 1, num_inputs()));
  const TfValue& v = inputs_[static_cast<size_t>(i)];
  if (!v.table)
    Unsupported(
        fmt::format("input {} is not a lookup table that the SavedModel creates and fills with constants at "
                    "load time",
                    i));
  return *v.table;
}

bool ImportContext::has_attr(const std::string& name) const { return builder_.FindAttr(node_, name) != nullptr; }

const tfproto::AttrValue& ImportContext::attr(const std::string& name) const {
  const tfproto::AttrValue* a = builder_.FindAttr(node_, name);
  if (!a) Invalid(fmt::format("missing attribute '{}'", name));
  return *a;
}

int64_t ImportContext::attr_int(const std::string& name) const { return attr(name).i(); }
float ImportContext::attr_float(const std::string& name) const { return attr(name).f(); }
bool ImportContext::attr_bool(const std::string& name) const { return attr(name).b(); }
std::string ImportContext::attr_string(const std::string& name) const { return attr(name).s(); }

DType ImportContext::attr_type(const std::string& name) const {
  const int t = attr(name).type();
  DType d = DTypeFromTf(t);
  if (d == DType::kInvalid)
    Unsupported(fmt::format("attribute '{}' has dtype {}, which Kiln does not support", name, t));
  return d;
}

std::vector<int64_t> ImportContext::attr_ints(const std::string& name) const {
  const auto& list = attr(name).list().i();
  return {list.begin(), list.end()};
}

std::vector<float> ImportContext::attr_floats(const std::string& name) const {
  const auto& list = attr(name).list().f();
  return {list.begin(), list.end()};
}

std::vector<DType> ImportContext::attr_types(const std::string& name) const {
  std::vector<DType> out;
  for (int t : attr(name).list().type()) {
    DType d = DTypeFromTf(t);
    if (d == DType::kInvalid)
      Unsupported(fmt::format("attribute '{}' lists dtype {}, which Kiln does not support", name, t));
    out.push_back(d);
  }
  return out;
}

Tensor ImportContext::attr_tensor(const std::string& name) const {
  return DecodeTensorProto(attr(name).tensor(),
                           fmt::format("node '{}' ({}) attribute '{}'", node_.name(), node_.op(), name));
}

std::string ImportContext::attr_func(const std::string& name) const { return attr(name).func().name(); }

int64_t ImportContext::attr_int(const std::string& name, int64_t fallback) const {
  return has_attr(name) ? attr_int(name) : fallback;
}
float ImportContext::attr_float(const std::string& name, float fallback) const {
  return has_attr(name) ? attr_float(name) : fallback;
}
bool ImportContext::attr_bool(const std::string& name, bool fallback) const {
  return has_attr(name) ? attr_bool(name) : fallback;
}
std::string ImportContext::attr_string(const std::string& name, const std::string& fallback) const {
  return has_attr(name) ? attr_string(name) : fallback;
}

void ImportContext::SetOutput(int i, ir::ValueId value) {
  TfValue v;
  v.value = value;
  SetOutput(i, v);
}

void ImportContext::SetOutput(int i, TfValue value) {
  if (i < 0) Invalid("negative output index");
  if (static_cast<size_t>(i) >= outputs_.size()) outputs_.resize(static_cast<size_t>(i) + 1);
  outputs_[static_cast<size_t>(i)] = std::move(value);
}

void ImportContext::SetOutputs(const std::vector<ir::ValueId>& values) {
  for (size_t i = 0; i < values.size(); ++i) SetOutput(static_cast<int>(i), values[i]);
}

std::shared_ptr<ir::Graph> ImportContext::ImportFunction(const std::string& function_name,
                                                         const std::vector<FunctionArg>& args) {
  return builder_.ImportFunction(function_name, args);
}

void ImporterTable::Add(TfOpSpec spec) {
  if (!spec.import) throw Error(ErrorCode::kInternal, "TF importer without a function: " + spec.op);
  const std::string op = spec.op;
  specs_.Add(op, std::move(spec));
}

const ImporterTable& TfImporters() {
  static const ImporterTable table =
      BuildRegistry<ImporterTable>({RegisterCoreImporters, RegisterElementwiseImporters, RegisterNnImporters,
                                    RegisterArrayImporters, RegisterTensorListImporters, RegisterLookupImporters,
                                    RegisterSignalImporters});
  return table;
}

}  // namespace kiln::tf
