#include "python/src/tensors.h"

#include <fmt/format.h>

namespace kiln::python {
namespace {

using nb::dlpack::dtype_code;

// Python-owned memory (a numpy array, a framework's tensor) wrapped for Kiln. The reference is
// dropped under the GIL, whichever thread releases the last Kiln reference.
class PythonBuffer final : public Buffer {
 public:
  PythonBuffer(InputArray array, size_t size, Device device) : array_(std::move(array)), size_(size), device_(device) {}
  ~PythonBuffer() override {
    if (!Py_IsInitialized()) return;  // interpreter shut down: nothing left to release
    nb::gil_scoped_acquire gil;
    array_ = InputArray();
  }
  void* data() override { return const_cast<void*>(array_.data()); }
  size_t size() const override { return size_; }
  Device device() const override { return device_; }

 private:
  InputArray array_;
  size_t size_;
  Device device_;
};

// Kiln dtypes and their DLPack codes, one row each, read in both directions.
struct DLPackDType {
  DType dtype;
  dtype_code code;
  uint8_t bits;
};
constexpr DLPackDType kDLPackDTypes[] = {
    {DType::kInt8, dtype_code::Int, 8},
    {DType::kInt16, dtype_code::Int, 16},
    {DType::kInt32, dtype_code::Int, 32},
    {DType::kInt64, dtype_code::Int, 64},
    {DType::kUInt8, dtype_code::UInt, 8},
    {DType::kUInt16, dtype_code::UInt, 16},
    {DType::kUInt32, dtype_code::UInt, 32},
    {DType::kUInt64, dtype_code::UInt, 64},
    {DType::kFloat16, dtype_code::Float, 16},
    {DType::kFloat32, dtype_code::Float, 32},
    {DType::kFloat64, dtype_code::Float, 64},
    {DType::kBFloat16, dtype_code::Bfloat, 16},
    {DType::kBool, dtype_code::Bool, 8},
    {DType::kComplex64, dtype_code::Complex, 64},
    {DType::kComplex128, dtype_code::Complex, 128},
};

DType DTypeOf(nb::dlpack::dtype t, const std::string& name) {
  if (t.lanes != 1)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("input '{}': vector dtypes ({} lanes) are not supported", name, t.lanes));
  for (const DLPackDType& d : kDLPackDTypes)
    if (static_cast<uint8_t>(d.code) == t.code && d.bits == t.bits) return d.dtype;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("input '{}': DLPack dtype code {} with {} bits has no Kiln dtype", name, t.code, t.bits));
}

nb::dlpack::dtype DLPackOf(DType dtype) {
  for (const DLPackDType& d : kDLPackDTypes)
    if (d.dtype == dtype) return nb::dlpack::dtype{static_cast<uint8_t>(d.code), d.bits, 1};
  throw Error(ErrorCode::kUnimplemented,
              fmt::format("a tensor of dtype {} cannot be returned to Python", DTypeName(dtype)));
}

Device DeviceOf(const InputArray& array, const std::string& name) {
  const int type = array.device_type();
  if (type == nb::device::cpu::value || type == nb::device::cuda_host::value || type == nb::device::cuda_managed::value)
    return Device{};
  if (type == nb::device::cuda::value) return Device{DeviceKind::kCuda, array.device_id()};
  throw Error(ErrorCode::kUnavailable,
              fmt::format("input '{}' lives on DLPack device type {}; Kiln reads host and CUDA memory", name, type));
}

}  // namespace

Tensor TensorFromArray(const InputArray& array, const std::string& name, bool bfloat16) {
  DType dtype = DTypeOf(array.dtype(), name);
  if (bfloat16) {
    if (dtype != DType::kUInt16 && dtype != DType::kBFloat16)
      throw Error(ErrorCode::kInternal, fmt::format("input '{}': bfloat16 passed as {}", name, DTypeName(dtype)));
    dtype = DType::kBFloat16;
  }
  Shape shape(array.ndim());
  for (size_t i = 0; i < array.ndim(); ++i) shape[i] = static_cast<int64_t>(array.shape(i));
  // DLPack allows null strides for C order; otherwise each stride must be the C-order one
  // (dims of size 1, and arrays without elements, may carry any strides).
  if (array.stride_ptr() != nullptr && NumElements(shape) > 0) {
    int64_t expected = 1;
    for (size_t i = array.ndim(); i-- > 0;) {
      if (shape[i] != 1 && array.stride(i) != expected)
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("input '{}' is not C-contiguous (shape {}, stride {} in dim {} where {} was expected); "
                                "pass a contiguous array (numpy.ascontiguousarray, torch's .contiguous())",
                                name, ShapeToString(shape), array.stride(i), i, expected));
      expected *= shape[i];
    }
  }
  const Device device = DeviceOf(array, name);
  const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  return Tensor(dtype, std::move(shape), std::make_shared<PythonBuffer>(array, bytes, device));
}

Tensor StringTensor(const std::vector<int64_t>& shape, nb::handle items, const std::string& name) {
  Tensor tensor(DType::kString, shape);
  std::vector<std::string>& strings = tensor.strings();
  const size_t n = nb::len(items);
  if (n != strings.size())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("input '{}': {} strings for shape {}", name, n, ShapeToString(shape)));
  size_t i = 0;
  for (nb::handle item : items) {
    if (!nb::isinstance<nb::bytes>(item))
      throw Error(ErrorCode::kInvalidArgument, fmt::format("input '{}': string element {} is not bytes", name, i));
    nb::bytes b = nb::borrow<nb::bytes>(item);
    strings[i++].assign(b.c_str(), b.size());
  }
  return tensor;
}

Tensor TensorFromObject(nb::handle object, const std::string& name) {
  if (nb::isinstance<nb::tuple>(object)) {
    nb::tuple t = nb::borrow<nb::tuple>(object);
    if (nb::len(t) == 2 && nb::isinstance<nb::str>(t[0]) && nb::cast<std::string>(t[0]) == "bfloat16")
      return TensorFromArray(nb::cast<InputArray>(t[1]), name, /*bfloat16=*/true);
    if (nb::len(t) == 2) return StringTensor(nb::cast<std::vector<int64_t>>(t[0]), t[1], name);
  }
  InputArray array;
  if (!nb::try_cast(object, array, /*convert=*/true))
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("input '{}': a {} is not an array (numpy, or any tensor with __dlpack__)", name,
                            nb::type_name(object.type()).c_str()));
  return TensorFromArray(array, name);
}

nb::object ObjectFromTensor(const Tensor& tensor) {
  if (tensor.dtype() == DType::kString) {
    nb::list items;
    for (const std::string& s : tensor.strings()) items.append(nb::bytes(s.data(), s.size()));
    return nb::make_tuple(nb::cast(tensor.shape()), items);
  }
  std::vector<size_t> shape(tensor.shape().begin(), tensor.shape().end());
  auto* owned = new Tensor(tensor);
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<Tensor*>(p); });
  void* data = owned->raw_data();
  if (tensor.is_host()) {
    nb::dlpack::dtype dtype = DLPackOf(tensor.dtype() == DType::kBFloat16 ? DType::kUInt16 : tensor.dtype());
    return nb::cast(nb::ndarray<nb::numpy>(data, shape.size(), shape.data(), owner, nullptr, dtype));
  }
  const Device device = tensor.device();
  if (device.kind != DeviceKind::kCuda)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("a tensor on {} cannot be returned to Python", device.ToString()));
  // An array-API object (nanobind.nb_ndarray: __dlpack__ and __dlpack_device__), which any
  // framework can import, and more than once; a bare DLPack capsule could be consumed only once.
  return nb::cast(nb::ndarray<nb::array_api>(data, shape.size(), shape.data(), owner, nullptr, DLPackOf(tensor.dtype()),
                                             nb::device::cuda::value, device.index));
}

uintptr_t DataAddress(const InputArray& array) { return reinterpret_cast<uintptr_t>(array.data()); }

}  // namespace kiln::python
