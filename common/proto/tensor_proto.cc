// Decoding of TensorProto (Const values and tensor attrs): tensor_content or the typed
// repeated field, with TensorFlow's fill rule.
#include <cstring>
#include <limits>
#include <type_traits>

#include <fmt/format.h>

#include "common/model_budget.h"
#include "common/proto/tensor_proto.h"
#include "kiln/half.h"

namespace kiln::tfproto {
namespace {

// Upper bound on the bytes one decoded constant may take; protects against a corrupt shape
// with a single fill value asking for an absurd allocation.
constexpr uint64_t kMaxConstantBytes = uint64_t{1} << 40;

[[noreturn]] void Fail(ErrorCode code, const std::string& what, const std::string& reason) {
  throw Error(code, fmt::format("{}: {}", what, reason));
}

Shape ShapeOf(const TensorProto& proto, const std::string& what) {
  const TensorShapeProto& sp = proto.tensor_shape();
  if (sp.unknown_rank()) Fail(ErrorCode::kDataLoss, what, "TensorProto shape has unknown rank");
  Shape shape;
  shape.reserve(static_cast<size_t>(sp.dim_size()));
  uint64_t n = 1;
  bool zero = false;
  for (const auto& d : sp.dim()) {
    if (d.size() < 0)
      Fail(ErrorCode::kDataLoss, what, fmt::format("TensorProto shape has a negative dimension {}", d.size()));
    shape.push_back(d.size());
    if (d.size() == 0) zero = true;
    else if (!zero) {
      if (n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d.size()))
        Fail(ErrorCode::kDataLoss, what, fmt::format("TensorProto shape {} overflows", ShapeToString(shape)));
      n *= static_cast<uint64_t>(d.size());
    }
  }
  if (!zero && n > kMaxConstantBytes)
    Fail(ErrorCode::kDataLoss, what, fmt::format("TensorProto shape has too many elements ({})", n));
  return shape;
}

// Copies `count` values from `src` (converted to T) into dst[0, n), applying the fill rule.
template <typename T, typename Src>
void FillFrom(T* dst, int64_t n, const Src& src, int64_t count) {
  if (count <= 0) return;  // zeros (the buffer is zero-initialised)
  const int64_t copy = std::min(n, count);
  for (int64_t i = 0; i < copy; ++i) dst[i] = static_cast<T>(src(i));
  for (int64_t i = copy; i < n; ++i) dst[i] = dst[copy - 1];
}

template <typename T, typename Field>
void FillField(Tensor& t, const Field& field) {
  const int64_t count = field.size();
  FillFrom(t.data<T>(), t.num_elements(), [&](int64_t i) { return field.Get(static_cast<int>(i)); }, count);
}

// Complex values come as (re, im) pairs in a flat repeated field.
template <typename F, typename Field>
void FillComplex(Tensor& t, const Field& field, const std::string& what) {
  struct C {
    F re, im;
  };
  if (field.size() % 2 != 0)
    Fail(ErrorCode::kDataLoss, what, fmt::format("complex TensorProto has an odd number ({}) of scalar values", field.size()));
  const int64_t count = field.size() / 2;
  FillFrom(
      reinterpret_cast<C*>(t.raw_data()), t.num_elements(),
      [&](int64_t i) {
        return C{static_cast<F>(field.Get(static_cast<int>(2 * i))), static_cast<F>(field.Get(static_cast<int>(2 * i + 1)))};
      },
      count);
}

}  // namespace

Tensor DecodeTensorProto(const TensorProto& proto, const std::string& what) {
  const DType dtype = DTypeFromTf(proto.dtype());
  if (dtype == DType::kInvalid)
    Fail(ErrorCode::kUnimplemented, what, fmt::format("TensorProto has unsupported dtype {}", proto.dtype()));
  if (dtype == DType::kResource || dtype == DType::kVariant)
    Fail(ErrorCode::kUnimplemented, what,
         fmt::format("TensorProto of dtype {} cannot be decoded as a constant", DTypeName(dtype)));
  Shape shape = ShapeOf(proto, what);
  ChargeModelTensor(dtype, shape, what);
  Tensor t(dtype, shape);
  const int64_t n = t.num_elements();

  if (dtype == DType::kString) {
    if (!proto.tensor_content().empty())
      Fail(ErrorCode::kDataLoss, what, "string TensorProto has tensor_content (strings must use string_val)");
    auto& out = t.strings();
    const int64_t count = proto.string_val_size();
    if (count > 0) {
      const int64_t copy = std::min(n, count);
      for (int64_t i = 0; i < copy; ++i) out[static_cast<size_t>(i)] = proto.string_val(static_cast<int>(i));
      for (int64_t i = copy; i < n; ++i) out[static_cast<size_t>(i)] = out[static_cast<size_t>(copy - 1)];
    }
    return t;
  }

  const size_t elem = DTypeSize(dtype);
  if (!proto.tensor_content().empty()) {
    const std::string& content = proto.tensor_content();
    const uint64_t expected = static_cast<uint64_t>(n) * elem;
    if (content.size() != expected)
      Fail(ErrorCode::kDataLoss, what,
           fmt::format("TensorProto tensor_content has {} bytes, expected {} ({} elements of {} with {} bytes each, shape {})",
                       content.size(), expected, n, DTypeName(dtype), elem, ShapeToString(shape)));
    if (expected > 0) std::memcpy(t.raw_data(), content.data(), expected);
    if (dtype == DType::kBool) {
      auto* b = t.data<uint8_t>();
      for (int64_t i = 0; i < n; ++i) b[i] = b[i] != 0;
    }
    return t;
  }
  if (n == 0) return t;

  switch (dtype) {
    case DType::kFloat32: FillField<float>(t, proto.float_val()); break;
    case DType::kFloat64: FillField<double>(t, proto.double_val()); break;
    case DType::kInt32:
    case DType::kQInt32: FillField<int32_t>(t, proto.int_val()); break;
    case DType::kInt16:
    case DType::kQInt16: FillField<int16_t>(t, proto.int_val()); break;
    case DType::kUInt16:
    case DType::kQUInt16: FillField<uint16_t>(t, proto.int_val()); break;
    case DType::kInt8:
    case DType::kQInt8: FillField<int8_t>(t, proto.int_val()); break;
    case DType::kUInt8:
    case DType::kQUInt8: FillField<uint8_t>(t, proto.int_val()); break;
    case DType::kInt64: FillField<int64_t>(t, proto.int64_val()); break;
    case DType::kUInt32: FillField<uint32_t>(t, proto.uint32_val()); break;
    case DType::kUInt64: FillField<uint64_t>(t, proto.uint64_val()); break;
    case DType::kBool: FillField<uint8_t>(t, proto.bool_val()); break;
    case DType::kFloat16: FillField<uint16_t>(t, proto.half_val()); break;  // raw bits in the low 16
    case DType::kBFloat16:
      // Current writers use half_val; very old files put bfloat16 bits in int_val.
      if (proto.half_val_size() > 0) FillField<uint16_t>(t, proto.half_val());
      else FillField<uint16_t>(t, proto.int_val());
      break;
    case DType::kComplex64: FillComplex<float>(t, proto.scomplex_val(), what); break;
    case DType::kComplex128: FillComplex<double>(t, proto.dcomplex_val(), what); break;
    default:
      Fail(ErrorCode::kUnimplemented, what, fmt::format("TensorProto of dtype {} is not supported", DTypeName(dtype)));
  }
  return t;
}

TensorProto EncodeTensorProto(const Tensor& t, const std::string& what) {
  if (t.dtype() == DType::kInvalid || t.dtype() == DType::kResource || t.dtype() == DType::kVariant)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: a {} tensor cannot be a TensorProto", what, DTypeName(t.dtype())));
  TensorProto proto;
  proto.set_dtype(static_cast<int>(t.dtype()));
  TensorShapeProto* shape = proto.mutable_tensor_shape();
  for (int64_t d : t.shape()) shape->add_dim()->set_size(d);
  if (t.dtype() == DType::kString) {
    for (const std::string& s : t.strings()) proto.add_string_val(s);
    return proto;
  }
  if (t.byte_size() == 0) return proto;
  if (!t.is_host())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: tensor is on {}, not on the host", what, t.device().ToString()));
  proto.set_tensor_content(static_cast<const char*>(t.raw_data()), t.byte_size());
  return proto;
}

}  // namespace kiln::tfproto
