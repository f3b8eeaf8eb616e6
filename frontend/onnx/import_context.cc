// ImportContext and the importer registry of the ONNX frontend.
#include <onnx/onnx_pb.h>

#include <fmt/format.h>

#include "frontend/onnx/graph_builder.h"
#include "frontend/onnx/importer.h"
#include "kiln/error.h"
#include "kiln/half.h"

namespace kiln::onnxfe {

ImportContext::ImportContext(GraphBuilder& builder, const onnx::NodeProto& node, std::string name,
                             std::vector<ir::ValueId> inputs, bool validate_only)
    : ImportContextBase(builder, std::move(name), node.op_type(), validate_only),
      builder_(builder),
      node_(node),
      inputs_(std::move(inputs)) {
  outputs_.assign(static_cast<size_t>(node.output_size()), ir::kNoValue);
}

int64_t ImportContext::opset() const { return builder_.model().opset; }

ir::ValueId ImportContext::input(int i) const {
  if (!has_input(i)) Invalid(fmt::format("input {} is required", i));
  return inputs_[static_cast<size_t>(i)];
}

std::vector<ir::ValueId> ImportContext::input_values(int first) const {
  std::vector<ir::ValueId> values;
  for (int i = first; i < num_inputs(); ++i) values.push_back(input(i));
  return values;
}

ir::ValueId ImportContext::KnownInput(int i) const {
  if (!has_input(i) || validate_only()) return ir::kNoValue;
  return inputs_[static_cast<size_t>(i)];
}

std::vector<int64_t> ImportContext::constant_ints(int i, const std::string& what) const {
  const Tensor* t = constant_input(i);
  if (!t) {
    if (validate_only()) return {};
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

using AttributeType = onnx::AttributeProto::AttributeType;

void CheckType(const ImportContext& ctx, const onnx::AttributeProto& a, AttributeType type) {
  // Producers sometimes leave `type` unset (UNDEFINED); accept those when the field is there.
  if (a.type() != onnx::AttributeProto::UNDEFINED && a.type() != type)
    ctx.Invalid(fmt::format("attribute '{}' has type {}, expected {}", a.name(),
                            onnx::AttributeProto::AttributeType_Name(a.type()),
                            onnx::AttributeProto::AttributeType_Name(type)));
}

// Attribute `name`, which must be present and of `type`.
const onnx::AttributeProto& Require(const ImportContext& ctx, const std::string& name, AttributeType type) {
  const onnx::AttributeProto* a = ctx.find_attr(name);
  if (!a) ctx.Invalid(fmt::format("attribute '{}' is required", name));
  CheckType(ctx, *a, type);
  return *a;
}

// Attribute `name` when present (checked to be of `type`), else nullptr.
const onnx::AttributeProto* FindOptional(const ImportContext& ctx, const std::string& name, AttributeType type) {
  const onnx::AttributeProto* a = ctx.find_attr(name);
  if (a) CheckType(ctx, *a, type);
  return a;
}

}  // namespace

int64_t ImportContext::attr_int(const std::string& name) const {
  return Require(*this, name, onnx::AttributeProto::INT).i();
}
float ImportContext::attr_float(const std::string& name) const {
  return Require(*this, name, onnx::AttributeProto::FLOAT).f();
}
std::string ImportContext::attr_string(const std::string& name) const {
  return Require(*this, name, onnx::AttributeProto::STRING).s();
}

int64_t ImportContext::attr_int(const std::string& name, int64_t fallback) const {
  return has_attr(name) ? attr_int(name) : fallback;
}
float ImportContext::attr_float(const std::string& name, float fallback) const {
  return has_attr(name) ? attr_float(name) : fallback;
}
std::string ImportContext::attr_string(const std::string& name, const std::string& fallback) const {
  return has_attr(name) ? attr_string(name) : fallback;
}

std::vector<int64_t> ImportContext::attr_ints(const std::string& name) const {
  const onnx::AttributeProto* a = FindOptional(*this, name, onnx::AttributeProto::INTS);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
}
std::optional<std::vector<int64_t>> ImportContext::attr_ints_opt(const std::string& name) const {
  if (!has_attr(name)) return std::nullopt;
  return attr_ints(name);
}
std::vector<float> ImportContext::attr_floats(const std::string& name) const {
  const onnx::AttributeProto* a = FindOptional(*this, name, onnx::AttributeProto::FLOATS);
  return a ? std::vector<float>(a->floats().begin(), a->floats().end()) : std::vector<float>{};
}
std::vector<std::string> ImportContext::attr_strings(const std::string& name) const {
  const onnx::AttributeProto* a = FindOptional(*this, name, onnx::AttributeProto::STRINGS);
  return a ? std::vector<std::string>(a->strings().begin(), a->strings().end()) : std::vector<std::string>{};
}
Tensor ImportContext::attr_tensor(const std::string& name) const {
  const onnx::AttributeProto& a = Require(*this, name, onnx::AttributeProto::TENSOR);
  try {
    return DecodeOnnxTensor(a.t(), builder_.model().base_dir, fmt::format("attribute '{}'", name));
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnimplemented) Unsupported(e.what());
    Invalid(e.what());
  }
}
const onnx::GraphProto& ImportContext::attr_graph(const std::string& name) const {
  return Require(*this, name, onnx::AttributeProto::GRAPH).g();
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

void ImportContext::SetConstantInput(int i, const Tensor& value, const std::string& suffix) {
  if (i < 0) throw Error(ErrorCode::kInternal, "SetConstantInput: negative input index");
  if (static_cast<size_t>(i) >= inputs_.size()) inputs_.resize(static_cast<size_t>(i) + 1, ir::kNoValue);
  if (has_input(i))
    Invalid(fmt::format("input {} is given both as an input and as an attribute of opset {}", i, opset()));
  if (!validate_only()) inputs_[static_cast<size_t>(i)] = Constant(value, suffix);
}

void ImportContext::SetOutput(int i, ir::ValueId value) {
  if (i < 0 || i >= static_cast<int>(outputs_.size()))
    throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): output {} out of range", name(), op(), i));
  outputs_[static_cast<size_t>(i)] = value;
}

ImportedSubgraph ImportContext::ImportSubgraph(const onnx::GraphProto& body, const std::vector<SubgraphInput>& explicit_inputs,
                                               const std::vector<std::string>& captured_names) {
  return builder_.ImportSubgraph(body, explicit_inputs, captured_names);
}

std::vector<std::string> ImportContext::FreeNames(const onnx::GraphProto& body) const { return builder_.FreeNames(body); }

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

ImporterTable& OnnxImporterRegistry() {
  static ImporterTable table;
  return table;
}

}  // namespace kiln::onnxfe
