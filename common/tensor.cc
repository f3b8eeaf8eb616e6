#include "kiln/tensor.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <complex>
#include <limits>

#include <cstdlib>
#include <cstring>
#include <sstream>

#include <fmt/format.h>

#include "kiln/half.h"

namespace kiln {
namespace {

class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(size_t bytes) : size_(bytes) {
    // aligned_alloc needs a size that is a multiple of the alignment.
    const size_t padded = (bytes + 63) / 64 * 64;
    data_ = padded == 0 ? nullptr : std::aligned_alloc(64, padded);
    if (padded != 0 && data_ == nullptr)
      throw Error(ErrorCode::kInternal, fmt::format("out of host memory allocating {} bytes", bytes));
    if (data_) std::memset(data_, 0, padded);
  }
  ~HostBuffer() override { std::free(data_); }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void* data() override { return data_; }
  size_t size() const override { return size_; }
  Device device() const override { return Device{}; }
  bool owns_memory() const override { return true; }

 private:
  void* data_ = nullptr;
  size_t size_;
};

}  // namespace

std::string Device::ToString() const {
  return kind == DeviceKind::kCpu ? "cpu" : fmt::format("cuda:{}", index);
}

std::shared_ptr<Buffer> AllocateHostBuffer(size_t bytes) { return std::make_shared<HostBuffer>(bytes); }

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw Error(ErrorCode::kInvalidArgument, fmt::format("shape {} has more than 2^63 elements", ShapeToString(shape)));
  return n;
}

namespace {

size_t PhysicalMemoryBytes() {
  static const size_t bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : size_t{1} << 40;
  }();
  return bytes;
}

std::atomic<size_t> g_max_tensor_bytes{0};  // 0: physical memory
std::atomic<size_t> g_max_model_bytes{0};   // 0: three quarters of physical memory

}  // namespace

size_t MaxTensorBytes() {
  const size_t set = g_max_tensor_bytes.load(std::memory_order_relaxed);
  return set > 0 ? set : PhysicalMemoryBytes();
}

void SetMaxTensorBytes(size_t bytes) { g_max_tensor_bytes.store(bytes); }

size_t MaxModelBytes() {
  const size_t set = g_max_model_bytes.load(std::memory_order_relaxed);
  return set > 0 ? set : PhysicalMemoryBytes() / 4 * 3;
}

void SetMaxModelBytes(size_t bytes) { g_max_model_bytes.store(bytes); }

std::string ShapeToString(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ",")); }

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_)
    if (d < 0) throw Error(ErrorCode::kInternal, fmt::format("tensor shape {} has a negative dim", ShapeToString(shape_)));
  if (dtype_ == DType::kString) {
    strings_ = std::make_shared<std::vector<std::string>>(static_cast<size_t>(num_elements()));
    return;
  }
  if (DTypeSize(dtype_) == 0)
    throw Error(ErrorCode::kUnimplemented, fmt::format("cannot allocate a tensor of dtype {}", DTypeName(dtype_)));
  const uint64_t elements = static_cast<uint64_t>(num_elements());  // checked
  if (elements > MaxTensorBytes() / DTypeSize(dtype_))
    throw Error(ErrorCode::kResourceExhausted,
                fmt::format("a {} tensor of shape {} would need {} elements of {} bytes, more than the {} bytes one "
                            "tensor may take (kiln::MaxTensorBytes: physical memory unless set)",
                            DTypeName(dtype_), ShapeToString(shape_), elements, DTypeSize(dtype_), MaxTensorBytes()));
  buffer_ = AllocateHostBuffer(byte_size());
}

Tensor::Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset)
    : dtype_(dtype), shape_(std::move(shape)), buffer_(std::move(buffer)), offset_(offset) {
  for (int64_t d : shape_)
    if (d < 0) throw Error(ErrorCode::kInternal, fmt::format("tensor shape {} has a negative dim", ShapeToString(shape_)));
  const uint64_t elements = static_cast<uint64_t>(num_elements());  // checked
  if (dtype_ != DType::kString && elements > std::numeric_limits<size_t>::max() / std::max<size_t>(1, DTypeSize(dtype_)))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("tensor shape {} is too large", ShapeToString(shape_)));
  if (!buffer_ || offset_ > buffer_->size() || byte_size() > buffer_->size() - offset_)
    throw Error(ErrorCode::kInternal, "Tensor: buffer too small for shape " + ShapeToString(shape_));
}

size_t Tensor::byte_size() const { return static_cast<size_t>(num_elements()) * DTypeSize(dtype_); }

Device Tensor::device() const { return buffer_ ? buffer_->device() : Device{}; }

void* Tensor::raw_data() { return buffer_ ? static_cast<char*>(buffer_->data()) + offset_ : nullptr; }
const void* Tensor::raw_data() const {
  return buffer_ ? static_cast<const char*>(buffer_->data()) + offset_ : nullptr;
}

std::vector<std::string>& Tensor::strings() {
  if (!strings_) throw Error(ErrorCode::kInternal, "Tensor::strings() on a non-string tensor");
  return *strings_;
}
const std::vector<std::string>& Tensor::strings() const {
  if (!strings_) throw Error(ErrorCode::kInternal, "Tensor::strings() on a non-string tensor");
  return *strings_;
}

Tensor Tensor::Reshaped(Shape shape) const {
  if (NumElements(shape) != num_elements())
    throw Error(ErrorCode::kInternal,
                fmt::format("cannot reshape {} to {}", ShapeToString(shape_), ShapeToString(shape)));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

bool Tensor::HoldsBufferAlone() const {
  // use_count() == 1 cannot race: the only way to a new reference is to copy this Tensor.
  return buffer_ != nullptr && buffer_.use_count() == 1 && buffer_->owns_memory() && is_host();
}

size_t Tensor::buffer_room() const { return buffer_ && offset_ <= buffer_->size() ? buffer_->size() - offset_ : 0; }

Tensor Tensor::InSameBuffer(Shape shape) const {
  if (dtype_ == DType::kString) throw Error(ErrorCode::kInternal, "Tensor::InSameBuffer of a string tensor");
  return Tensor(dtype_, std::move(shape), buffer_, offset_);  // the constructor checks the fit
}

Tensor Tensor::WithCapacity(DType dtype, Shape shape, size_t capacity_bytes) {
  uint64_t bytes = 0;
  const bool fits = dtype != DType::kString && DTypeSize(dtype) > 0 && capacity_bytes <= MaxTensorBytes() &&
                    !__builtin_mul_overflow(static_cast<uint64_t>(NumElements(shape)), DTypeSize(dtype), &bytes) &&
                    bytes < capacity_bytes;
  // Without spare room (or beyond the bound) the plain constructor checks and allocates the shape.
  if (!fits) return Tensor(dtype, std::move(shape));
  return Tensor(dtype, std::move(shape), AllocateHostBuffer(capacity_bytes));
}

Tensor Tensor::Clone() const {
  Tensor t(dtype_, shape_);
  if (dtype_ == DType::kString) {
    *t.strings_ = *strings_;
  } else if (byte_size() > 0) {
    if (!is_host()) throw Error(ErrorCode::kInternal, "Tensor::Clone of a device tensor needs a stream copy");
    std::memcpy(t.raw_data(), raw_data(), byte_size());
  }
  return t;
}

double Tensor::DoubleAt(int64_t i) const {
  const void* p = raw_data();
  switch (dtype_) {
    case DType::kFloat32: return static_cast<const float*>(p)[i];
    case DType::kFloat64: return static_cast<const double*>(p)[i];
    case DType::kFloat16: return Half::ToFloat(static_cast<const uint16_t*>(p)[i]);
    case DType::kBFloat16: return BFloat16::ToFloat(static_cast<const uint16_t*>(p)[i]);
    case DType::kInt8: return static_cast<const int8_t*>(p)[i];
    case DType::kUInt8: return static_cast<const uint8_t*>(p)[i];
    case DType::kInt16: return static_cast<const int16_t*>(p)[i];
    case DType::kUInt16: return static_cast<const uint16_t*>(p)[i];
    case DType::kInt32: return static_cast<const int32_t*>(p)[i];
    case DType::kUInt32: return static_cast<const uint32_t*>(p)[i];
    case DType::kInt64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::kUInt64: return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    case DType::kBool: return static_cast<const bool*>(p)[i] ? 1.0 : 0.0;
    default:
      throw Error(ErrorCode::kInternal, fmt::format("DoubleAt on dtype {}", DTypeName(dtype_)));
  }
}

int64_t Tensor::IntAt(int64_t i) const {
  const void* p = raw_data();
  switch (dtype_) {
    case DType::kInt8: return static_cast<const int8_t*>(p)[i];
    case DType::kUInt8: return static_cast<const uint8_t*>(p)[i];
    case DType::kInt16: return static_cast<const int16_t*>(p)[i];
    case DType::kUInt16: return static_cast<const uint16_t*>(p)[i];
    case DType::kInt32: return static_cast<const int32_t*>(p)[i];
    case DType::kUInt32: return static_cast<const uint32_t*>(p)[i];
    case DType::kInt64: return static_cast<const int64_t*>(p)[i];
    case DType::kUInt64: return static_cast<int64_t>(static_cast<const uint64_t*>(p)[i]);
    case DType::kBool: return static_cast<const bool*>(p)[i] ? 1 : 0;
    default: return static_cast<int64_t>(DoubleAt(i));
  }
}

std::vector<int64_t> Tensor::ToInt64Vector() const {
  std::vector<int64_t> out(static_cast<size_t>(num_elements()));
  for (int64_t i = 0; i < num_elements(); ++i) out[static_cast<size_t>(i)] = IntAt(i);
  return out;
}

std::string Tensor::DebugString(int max_elements) const {
  std::ostringstream os;
  os << DTypeName(dtype_) << ShapeToString(shape_) << " {";
  const int64_t n = std::min<int64_t>(num_elements(), max_elements);
  for (int64_t i = 0; i < n; ++i) {
    if (i) os << ", ";
    if (dtype_ == DType::kString) os << '"' << (*strings_)[static_cast<size_t>(i)] << '"';
    else if (dtype_ == DType::kComplex64) os << data<std::complex<float>>()[i];  // (re,im)
    else if (dtype_ == DType::kComplex128) os << data<std::complex<double>>()[i];
    else if (IsFloating(dtype_)) os << DoubleAt(i);
    else os << IntAt(i);
  }
  if (num_elements() > n) os << ", ...";
  os << "}";
  return os.str();
}

}  // namespace kiln
