// ONNX model files: parsing, opset checks and TensorProto decoding (incl. external data).
#include "frontend/onnx/onnx_model.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <optional>
#include <charconv>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "common/model_budget.h"
#include "frontend/onnx/op_versions.h"
#include "common/file_checks.h"
#include "kiln/error.h"
#include "kiln/half.h"

namespace kiln::onnxfe {
namespace fs = std::filesystem;

namespace {

std::string ReadWholeFile(const std::string& path, const std::string& what) {
  RequireRegularFile(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{}: cannot open '{}'", what, path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

}  // namespace

bool IsOnnxFile(const std::string& path) {
  std::error_code ec;
  return fs::path(path).extension() == ".onnx" && fs::is_regular_file(path, ec);
}

OnnxModel LoadOnnxModel(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(ErrorCode::kNotFound, fmt::format("ONNX model '{}' does not exist", path));
  if (fs::is_directory(path, ec))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("'{}' is a directory, not an ONNX model file", path));
  const std::string bytes = ReadWholeFile(path, "ONNX model");
  auto proto = std::make_shared<onnx::ModelProto>();
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !proto->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(ErrorCode::kDataLoss,
                fmt::format("'{}' does not parse as an ONNX model (ModelProto): the file is truncated, corrupted or "
                            "not ONNX ({} bytes)",
                            path, bytes.size()));
  if (!proto->has_graph() || proto->ir_version() <= 0)
    throw Error(ErrorCode::kDataLoss,
                fmt::format("'{}' is not an ONNX model: it has no graph or no ir_version", path));

  OnnxModel model;
  model.path = path;
  model.base_dir = fs::absolute(fs::path(path)).parent_path().string();
  for (const onnx::OperatorSetIdProto& op_set : proto->opset_import()) {
    const std::string domain = IsDefaultDomain(op_set.domain()) ? "" : op_set.domain();
    model.opsets[domain] = op_set.version();
  }
  // IR version 3 and older models without opset_import use opset 1.
  model.opset = model.opsets.count("") ? model.opsets.at("") : 1;
  if (model.opset < kOldestOpset)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("ONNX model '{}' uses opset {}; Kiln imports opset {} and newer. Upgrade it first, e.g. "
                            "python -c \"import onnx, onnx.version_converter as vc; "
                            "onnx.save(vc.convert_version(onnx.load('{}'), 17), 'model17.onnx')\"",
                            path, model.opset, kOldestOpset, path));
  model.proto = std::move(proto);
  return model;
}

DType DTypeFromOnnx(int32_t t) {
  switch (t) {
    case onnx::TensorProto::FLOAT: return DType::kFloat32;
    case onnx::TensorProto::UINT8: return DType::kUInt8;
    case onnx::TensorProto::INT8: return DType::kInt8;
    case onnx::TensorProto::UINT16: return DType::kUInt16;
    case onnx::TensorProto::INT16: return DType::kInt16;
    case onnx::TensorProto::INT32: return DType::kInt32;
    case onnx::TensorProto::INT64: return DType::kInt64;
    case onnx::TensorProto::STRING: return DType::kString;
    case onnx::TensorProto::BOOL: return DType::kBool;
    case onnx::TensorProto::FLOAT16: return DType::kFloat16;
    case onnx::TensorProto::DOUBLE: return DType::kFloat64;
    case onnx::TensorProto::UINT32: return DType::kUInt32;
    case onnx::TensorProto::UINT64: return DType::kUInt64;
    case onnx::TensorProto::BFLOAT16: return DType::kBFloat16;
    default: return DType::kInvalid;  // complex and anything newer
  }
}

std::string OnnxTypeName(int32_t t) {
  if (onnx::TensorProto::DataType_IsValid(t)) return onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(t));
  return fmt::format("<data type {}>", t);
}

namespace {

// Copies `count` elements of a typed repeated field into the tensor, converting to its dtype.
template <typename Field>
void CopyTyped(const Field& field, Tensor& t, const std::string& what, const char* field_name) {
  const int64_t n = t.num_elements();
  if (static_cast<int64_t>(field.size()) != n)
    throw Error(ErrorCode::kDataLoss, fmt::format("{}: {} has {} values, but the shape {} needs {}", what, field_name,
                                                  field.size(), ShapeToString(t.shape()), n));
  auto store = [&](auto* out) {
    using T = std::remove_pointer_t<decltype(out)>;
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(field.Get(static_cast<int>(i)));
  };
  switch (t.dtype()) {
    case DType::kFloat32: store(t.data<float>()); break;
    case DType::kFloat64: store(t.data<double>()); break;
    case DType::kInt8: store(t.data<int8_t>()); break;
    case DType::kUInt8: store(t.data<uint8_t>()); break;
    case DType::kInt16: store(t.data<int16_t>()); break;
    case DType::kUInt16: store(t.data<uint16_t>()); break;
    case DType::kInt32: store(t.data<int32_t>()); break;
    case DType::kUInt32: store(t.data<uint32_t>()); break;
    case DType::kInt64: store(t.data<int64_t>()); break;
    case DType::kUInt64: store(t.data<uint64_t>()); break;
    case DType::kBool: store(t.data<bool>()); break;
    // float16 / bfloat16 travel as their bit patterns in int32_data.
    case DType::kFloat16:
    case DType::kBFloat16: store(static_cast<uint16_t*>(t.raw_data())); break;
    default: throw Error(ErrorCode::kInternal, fmt::format("{}: no typed-field decoding for {}", what, DTypeName(t.dtype())));
  }
}

// A whole non-negative decimal number ("12abc", "-5" and "" are not).
std::optional<int64_t> ParseSize(const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || v < 0) return std::nullopt;
  return v;
}

std::string ReadExternalData(const onnx::TensorProto& proto, const std::string& base_dir, const std::string& what) {
  std::string location;
  std::optional<int64_t> offset = 0, length;
  for (const onnx::StringStringEntryProto& kv : proto.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
      continue;
    }
    if (kv.key() != "offset" && kv.key() != "length") continue;
    const std::optional<int64_t> v = ParseSize(kv.value());
    if (!v)
      throw Error(ErrorCode::kDataLoss, fmt::format("{}: external data '{}' is not a non-negative number: '{}'", what,
                                                    kv.key(), kv.value()));
    (kv.key() == "offset" ? offset : length) = v;
  }
  if (location.empty()) throw Error(ErrorCode::kDataLoss, fmt::format("{}: external data without a 'location'", what));
  const fs::path rel(location);
  if (rel.is_absolute() || location.find("..") != std::string::npos)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: external data location '{}' must be a relative path inside the model's directory", what,
                            location));
  const std::string file = (fs::path(base_dir) / rel).string();
  // Symlinks are followed, but what they resolve to must still be a regular file inside the
  // model's directory.
  std::error_code ec;
  const fs::path resolved = fs::canonical(file, ec);
  if (ec) throw Error(ErrorCode::kNotFound, fmt::format("{}: external data file '{}' is missing", what, file));
  const fs::path dir = fs::canonical(base_dir.empty() ? fs::path(".") : fs::path(base_dir), ec);
  const auto rel_to_dir = resolved.lexically_relative(dir);
  if (ec || rel_to_dir.empty() || *rel_to_dir.begin() == "..")
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: external data '{}' resolves to '{}', outside the model's directory", what, location,
                            resolved.string()));
  if (!fs::is_regular_file(resolved, ec))
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: external data '{}' is not a regular file", what, resolved.string()));
  std::ifstream in(resolved, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{}: external data file '{}' cannot be opened", what, file));
  in.seekg(0, std::ios::end);
  const int64_t size = static_cast<int64_t>(in.tellg());
  if (*offset > size || (length && *length > size - *offset))
    throw Error(ErrorCode::kDataLoss,
                fmt::format("{}: external data at offset {} of length {} lies outside '{}' ({} bytes)", what, *offset,
                            length ? std::to_string(*length) : "(to the end)", file, size));
  const int64_t n = length ? *length : size - *offset;
  std::string data(static_cast<size_t>(n), '\0');
  in.seekg(*offset);
  in.read(data.data(), n);
  if (!in) throw Error(ErrorCode::kDataLoss, fmt::format("{}: cannot read external data from '{}'", what, file));
  return data;
}

}  // namespace

Tensor DecodeOnnxTensor(const onnx::TensorProto& proto, const std::string& base_dir, const std::string& what) {
  const DType dtype = DTypeFromOnnx(proto.data_type());
  if (dtype == DType::kInvalid)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("{}: tensors of type {} are not supported", what, OnnxTypeName(proto.data_type())));
  Shape shape;
  for (int64_t d : proto.dims()) {
    if (d < 0) throw Error(ErrorCode::kDataLoss, fmt::format("{}: negative dimension {}", what, d));
    shape.push_back(d);
  }
  if (proto.has_segment()) throw Error(ErrorCode::kUnimplemented, fmt::format("{}: segmented tensors are not supported", what));
  // The data must be there before anything is allocated for it: a few bytes of file may declare
  // gigabytes.
  const int64_t n = NumElements(shape);  // checked: never wraps
  ChargeModelTensor(dtype, shape, what);

  if (dtype == DType::kString) {
    if (proto.string_data_size() != n)
      throw Error(ErrorCode::kDataLoss, fmt::format("{}: string_data has {} values, but the shape {} needs {}", what,
                                                    proto.string_data_size(), ShapeToString(shape), n));
    Tensor t(dtype, shape);
    for (int64_t i = 0; i < n; ++i) t.strings()[static_cast<size_t>(i)] = proto.string_data(static_cast<int>(i));
    return t;
  }

  const bool external = proto.data_location() == onnx::TensorProto::EXTERNAL;
  if (external || proto.has_raw_data()) {
    const std::string external_bytes = external ? ReadExternalData(proto, base_dir, what) : std::string();
    const std::string& raw = external ? external_bytes : proto.raw_data();
    const uint64_t elem = DTypeSize(dtype);
    if (static_cast<uint64_t>(n) != raw.size() / elem || raw.size() % elem != 0)
      throw Error(ErrorCode::kDataLoss, fmt::format("{}: {} holds {} bytes, but {} {} needs {} elements of {} bytes", what,
                                                    external ? "external data" : "raw_data", raw.size(),
                                                    DTypeName(dtype), ShapeToString(shape), n, elem));
    const size_t want = raw.size();
    Tensor t(dtype, shape);
    // ONNX raw data is little-endian, as is every machine Kiln runs on.
    if (want > 0) std::memcpy(t.raw_data(), raw.data(), want);
    if (dtype == DType::kBool)  // normalize to 0/1
      for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = reinterpret_cast<const uint8_t*>(raw.data())[i] != 0;
    return t;
  }

  const int typed_count = dtype == DType::kFloat32   ? proto.float_data_size()
                          : dtype == DType::kFloat64 ? proto.double_data_size()
                          : dtype == DType::kInt64   ? proto.int64_data_size()
                          : dtype == DType::kUInt32 || dtype == DType::kUInt64 ? proto.uint64_data_size()
                                                                               : proto.int32_data_size();
  if (typed_count != n)
    throw Error(ErrorCode::kDataLoss, fmt::format("{}: the tensor holds {} values, but the shape {} needs {}", what,
                                                  typed_count, ShapeToString(shape), n));
  Tensor t(dtype, shape);
  switch (dtype) {
    case DType::kFloat32: CopyTyped(proto.float_data(), t, what, "float_data"); break;
    case DType::kFloat64: CopyTyped(proto.double_data(), t, what, "double_data"); break;
    case DType::kInt64: CopyTyped(proto.int64_data(), t, what, "int64_data"); break;
    case DType::kUInt32:
    case DType::kUInt64: CopyTyped(proto.uint64_data(), t, what, "uint64_data"); break;
    default: CopyTyped(proto.int32_data(), t, what, "int32_data"); break;
  }
  return t;
}

}  // namespace kiln::onnxfe
