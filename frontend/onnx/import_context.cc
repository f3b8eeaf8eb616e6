// ImportContext and the importer table of the ONNX frontend.
#include <onnx/onnx_pb.h>

#include <fmt/format.h>

#include "frontend/onnx/graph_builder.h"
#include "frontend/onnx/importer.h"
#include "ir/op_schema.h"
#include "kiln/error.h"
#include "kiln/half.h"

namespace kiln::onnxfe {

ImportContext::ImportContext(GraphBuilder& builder, const onnx::NodeProto& node, std::string name,
                             std::vector<ir::ValueId> inputs, bool validate_only)
    : builder_(builder), node_(node), name_(std::move(name)), inputs_(std::move(inputs)), validate_only_(validate_only) {
  outputs_.assign(static_cast<size_t>(node.output_size()), ir::kNoValue);
}

const std::string& ImportContext::op() const { return node_.op_type(); }
int64_t ImportContext::opset() const { return builder_.model().opset; }
ir::Graph& ImportContext::graph() { return builder_.current_graph(); }

ir::ValueId ImportContext::input(int i) const {
  if (!has_input(i)) Invalid(fmt::format("input {} is required", i));
  return inputs_[static_cast<size_t>(i)];
}

DType ImportContext::input_dtype(int i) const {
  if (!has_input(i) || validate_only_) return DType::kInvalid;
  return builder_.current_graph().value(inputs_[static_cast<size_t>(i)]).dtype;
}

ir::SymShape ImportContext::input_shape(int i) const {
  if (!has_input(i) || validate_only_) return ir::SymShape::Unknown();
  return builder_.current_graph().value(inputs_[static_cast<size_t>(i)]).shape;
}

const Tensor* ImportContext::constant_input(int i) const {
  if (!has_input(i) || validate_only_) return nullptr;
  return builder_.current_graph().ConstantOf(inputs_[static_cast<size_t>(i)]);
}

std::vector<int64_t> ImportContext::constant_ints(int i, const std::string& what) const {
  const Tensor* t = constant_input(i);
  if (!t) {
    if (validate_only_) return {};
    Unsupported(fmt::format("{} (input {}) must be a constant", what, i));
  }
  std::vector<int64_t> out;
  const int64_t n = t->num_elements();
  switch (t->dtype()) {
    case DType::kInt64: out.assign(t->data<int64_t>(), t->data<int64_t>() + n); break;
    case DType::kInt32: out.assign(t->data<int32_t>(), t->data<int32_t>() + n); break;
    default: Invalid(fmt::format("{} (input {}) must be int32 or int64, got {}", what, i, DTypeName(t->dtype())));
  }
  return out;
}

int ImportContext::num_outputs() const { return node_.output_size(); }
bool ImportContext::has_output(int i) const { return i < node_.output_size() && !node_.output(i).empty(); }

const onnx::AttributeProto* ImportContext::find_attr(const std::string& name) const {
  for (const onnx::AttributeProto& a : node_.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

bool ImportContext::has_attr(const std::string& name) const { return find_attr(name) != nullptr; }

namespace {
const onnx::AttributeProto& Require(const ImportContext& ctx, const std::string& name) {
  const onnx::AttributeProto* a = ctx.find_attr(name);
  if (!a) ctx.Invalid(fmt::format("attribute '{}' is required", name));
  return *a;
}
void CheckType(const ImportContext& ctx, const onnx::AttributeProto& a, onnx::AttributeProto::AttributeType type) {
  // Producers sometimes leave `type` unset (UNDEFINED); accept those when the field is there.
  if (a.type() != onnx::AttributeProto::UNDEFINED && a.type() != type)
    ctx.Invalid(fmt::format("attribute '{}' has type {}, expected {}", a.name(),
                            onnx::AttributeProto::AttributeType_Name(a.type()),
                            onnx::AttributeProto::AttributeType_Name(type)));
}
}  // namespace

int64_t ImportContext::attr_int(const std::string& name) const {
  const onnx::AttributeProto& a = Require(*this, name);
  CheckType(*this, a, onnx::AttributeProto::INT);
  return a.i();
}
int64_t ImportContext::attr_int(const std::string& name, int64_t fallback) const {
  return has_attr(name) ? attr_int(name) : fallback;
}
float ImportContext::attr_float(const std::string& name) const {
  const onnx::AttributeProto& a = Require(*this, name);
  CheckType(*this, a, onnx::AttributeProto::FLOAT);
  return a.f();
}
float ImportContext::attr_float(const std::string& name, float fallback) const {
  return has_attr(name) ? attr_float(name) : fallback;
}
std::string ImportContext::attr_string(const std::string& name) const {
  const onnx::AttributeProto& a = Require(*this, name);
  CheckType(*this, a, onnx::AttributeProto::STRING);
  return a.s();
}
std::string ImportContext::attr_string(const std::string& name, const std::string& fallback) const {
  return has_attr(name) ? attr_string(name) : fallback;
}
std::vector<int64_t> ImportContext::attr_ints(const std::string& name) const {
  const onnx::AttributeProto* a = find_attr(name);
  if (!a) return {};
  CheckType(*this, *a, onnx::AttributeProto::INTS);
  return {a->ints().begin(), a->ints().end()};
}
std::optional<std::vector<int64_t>> ImportContext::attr_ints_opt(const std::string& name) const {
  if (!has_attr(name)) return std::nullopt;
  return attr_ints(name);
}
std::vector<float> ImportContext::attr_floats(const std::string& name) const {
  const onnx::AttributeProto* a = find_attr(name);
  if (!a) return {};
  CheckType(*this, *a, onnx::AttributeProto::FLOATS);
  return {a->floats().begin(), a->floats().end()};
}
std::vector<std::string> ImportContext::attr_strings(const std::string& name) const {
  const onnx::AttributeProto* a = find_attr(name);
  if (!a) return {};
  CheckType(*this, *a, onnx::AttributeProto::STRINGS);
  return {a->strings().begin(), a->strings().end()};
}
Tensor ImportContext::attr_tensor(const std::string& name) const {
  const onnx::AttributeProto& a = Require(*this, name);
  CheckType(*this, a, onnx::AttributeProto::TENSOR);
  try {
    return DecodeOnnxTensor(a.t(), builder_.model().base_dir, fmt::format("attribute '{}'", name));
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnimplemented) Unsupported(e.what());
    Invalid(e.what());
  }
}
const onnx::GraphProto& ImportContext::attr_graph(const std::string& name) const {
  const onnx::AttributeProto& a = Require(*this, name);
  CheckType(*this, a, onnx::AttributeProto::GRAPH);
  return a.g();
}

std::vector<ir::ValueId> ImportContext::Emit(const std::string& ir_op, std::vector<ir::ValueId> inputs, ir::AttrMap attrs,
                                             int num_outputs, const std::string& suffix) {
  if (validate_only_) throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): Emit in validate-only mode", name_, op()));
  ir::Graph& g = graph();
  const std::string base = suffix.empty() ? name_ : name_ + "/" + suffix;
  ir::Node& n = g.AddNode(ir_op, builder_.UniqueNodeName(base), std::move(inputs), num_outputs);
  n.source_op = op();
  n.attrs = std::move(attrs);
  const ir::NodeId id = n.id;
  std::vector<ir::ValueId> outs = n.outputs;
  try {
    ir::InferNode(g, id);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("while importing node '{}' ({}): {}", name_, op(), e.what()));
  }
  return outs;
}

ir::ValueId ImportContext::Constant(Tensor tensor, const std::string& suffix) {
  if (validate_only_) throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): Constant in validate-only mode", name_, op()));
  const std::string base = suffix.empty() ? name_ : name_ + "/" + suffix;
  ir::ValueId v = graph().AddConstant(builder_.UniqueNodeName(base), std::move(tensor));
  graph().node(graph().value(v).producer).source_op = op();
  return v;
}

ir::ValueId ImportContext::ConstInt64(const std::vector<int64_t>& values, bool scalar, const std::string& suffix) {
  if (scalar && values.size() != 1) throw Error(ErrorCode::kInternal, "ConstInt64: a scalar needs one value");
  Shape shape = scalar ? Shape{} : Shape{static_cast<int64_t>(values.size())};
  return Constant(Tensor::FromVector(DType::kInt64, shape, values), suffix);
}

ir::ValueId ImportContext::ConstInt32(const std::vector<int32_t>& values, bool scalar, const std::string& suffix) {
  if (scalar && values.size() != 1) throw Error(ErrorCode::kInternal, "ConstInt32: a scalar needs one value");
  Shape shape = scalar ? Shape{} : Shape{static_cast<int64_t>(values.size())};
  return Constant(Tensor::FromVector(DType::kInt32, shape, values), suffix);
}

void ImportContext::SetOutput(int i, ir::ValueId value) {
  if (i < 0 || i >= static_cast<int>(outputs_.size()))
    throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): output {} out of range", name_, op(), i));
  outputs_[static_cast<size_t>(i)] = value;
}

ImportedSubgraph ImportContext::ImportSubgraph(const onnx::GraphProto& body, const std::vector<SubgraphInput>& explicit_inputs,
                                               const std::vector<std::string>& captured_names) {
  return builder_.ImportSubgraph(body, explicit_inputs, captured_names);
}

std::vector<std::string> ImportContext::FreeNames(const onnx::GraphProto& body) const { return builder_.FreeNames(body); }

void ImportContext::Unsupported(const std::string& reason) const {
  throw UnsupportedError(fmt::format("node '{}' ({}): {}", name_, op(), reason));
}

void ImportContext::Invalid(const std::string& reason) const {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' ({}): {}", name_, op(), reason));
}

// A scalar of `dtype` holding `value` (rounded to nearest for float16/bfloat16/float32,
// truncated toward zero for integers; callers only pass values the dtype holds exactly).
Tensor ScalarTensor(DType dtype, double value) {
  Tensor t(dtype, {});
  switch (dtype) {
    case DType::kFloat32: *t.data<float>() = static_cast<float>(value); break;
    case DType::kFloat64: *t.data<double>() = value; break;
    case DType::kFloat16: *t.data<uint16_t>() = Half::FromFloat(static_cast<float>(value)); break;
    case DType::kBFloat16: *t.data<uint16_t>() = BFloat16::FromFloat(static_cast<float>(value)); break;
    case DType::kInt8: *t.data<int8_t>() = static_cast<int8_t>(value); break;
    case DType::kInt16: *t.data<int16_t>() = static_cast<int16_t>(value); break;
    case DType::kInt32: *t.data<int32_t>() = static_cast<int32_t>(value); break;
    case DType::kInt64: *t.data<int64_t>() = static_cast<int64_t>(value); break;
    case DType::kUInt8: *t.data<uint8_t>() = static_cast<uint8_t>(value); break;
    case DType::kUInt16: *t.data<uint16_t>() = static_cast<uint16_t>(value); break;
    case DType::kUInt32: *t.data<uint32_t>() = static_cast<uint32_t>(value); break;
    case DType::kUInt64: *t.data<uint64_t>() = static_cast<uint64_t>(value); break;
    case DType::kBool: *t.data<bool>() = value != 0; break;
    default: throw Error(ErrorCode::kInternal, fmt::format("ScalarTensor: unexpected dtype {}", DTypeName(dtype)));
  }
  return t;
}

const ImporterTable& OnnxImporters() {
  static const ImporterTable table = BuildRegistry<ImporterTable>(
      {RegisterCoreImporters, RegisterElementwiseImporters, RegisterNnImporters, RegisterArrayImporters});
  return table;
}

}  // namespace kiln::onnxfe
