// Tensors: a dtype, a shape and a reference-counted buffer that lives on a device.
// Host tensors are what the public API and the reference kernels use; the buffer
// abstraction carries the device so that CUDA buffers plug in without API changes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/error.h"

namespace kiln {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;
  bool operator==(const Device&) const = default;
  std::string ToString() const;  // "cpu", "cuda:0"
};

// Owns a block of memory on one device. Allocation and release are the device's business.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* data() = 0;
  virtual size_t size() const = 0;
  virtual Device device() const = 0;
  // True when the memory was allocated for this buffer alone; false when it borrows memory that
  // someone else also sees (a caller's array). Only memory a buffer owns may be written in place.
  virtual bool owns_memory() const { return false; }
};

// 64-byte aligned host memory, zero-initialised.
std::shared_ptr<Buffer> AllocateHostBuffer(size_t bytes);

using Shape = std::vector<int64_t>;

// The most bytes one host tensor may take, whatever asks for it (a weight in a model file, a shape
// a model computes at run time): a larger request fails with kResourceExhausted before anything
// is allocated. The default is the machine's physical memory; a service loading models it does not
// trust may set less (the `kiln` CLI reads KILN_MAX_TENSOR_BYTES). 0 restores the default.
size_t MaxTensorBytes();
void SetMaxTensorBytes(size_t bytes);

// The most bytes of tensor data one model may ask for while it is read (weights, constants,
// variables, external data, a converted model's constants, in all): a model asking for more fails
// with kResourceExhausted before the tensor that passes the limit is allocated. The default is
// three quarters of the machine's physical memory (the `kiln` CLI reads KILN_MAX_MODEL_BYTES). 0
// restores the default.
size_t MaxModelBytes();
void SetMaxModelBytes(size_t bytes);

int64_t NumElements(const Shape& shape);  // 1 for a scalar
std::string ShapeToString(const Shape& shape);  // "[2,3]", "[]" for a scalar

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled host tensor. DT_STRING tensors hold std::string elements.
  Tensor(DType dtype, Shape shape);
  // Wraps an existing buffer (host or device); `offset` in bytes.
  Tensor(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset = 0);

  template <typename T>
  static Tensor Scalar(DType dtype, T value) {
    Tensor t(dtype, {});
    *t.data<T>() = value;
    return t;
  }
  template <typename T>
  static Tensor FromVector(DType dtype, Shape shape, const std::vector<T>& values) {
    Tensor t(dtype, std::move(shape));
    if (static_cast<int64_t>(values.size()) != t.num_elements())
      throw Error(ErrorCode::kInternal, "Tensor::FromVector: element count does not match shape");
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
  }

  bool defined() const { return buffer_ != nullptr || dtype_ == DType::kString; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(static_cast<size_t>(i)); }
  int64_t num_elements() const { return NumElements(shape_); }
  size_t byte_size() const;  // num_elements * element size (0 for strings)
  Device device() const;
  bool is_host() const { return device().kind == DeviceKind::kCpu; }

  void* raw_data();
  const void* raw_data() const;
  template <typename T>
  T* data() { return static_cast<T*>(raw_data()); }
  template <typename T>
  const T* data() const { return static_cast<const T*>(raw_data()); }

  // DT_STRING element storage.
  std::vector<std::string>& strings();
  const std::vector<std::string>& strings() const;

  // Same buffer, new shape with the same element count.
  Tensor Reshaped(Shape shape) const;
  // True when this Tensor is the only one holding its buffer and the buffer owns its host memory:
  // no other tensor (a view, a reshape, a constant's attribute, a caller's input) can see a write.
  bool HoldsBufferAlone() const;
  // Bytes of the buffer from this tensor's first byte to the buffer's end (>= byte_size()).
  size_t buffer_room() const;
  // The same buffer seen with a shape of any element count that fits in buffer_room(): a tensor
  // grown into spare capacity or shrunk in place. Throws kInternal when it does not fit.
  Tensor InSameBuffer(Shape shape) const;
  // A zero-filled host tensor whose buffer has room for `capacity_bytes` (at least its own size)
  // so that it can grow in place; the capacity is bounded like the tensor (MaxTensorBytes).
  static Tensor WithCapacity(DType dtype, Shape shape, size_t capacity_bytes);
  // Deep copy into fresh host memory.
  Tensor Clone() const;
  // Reads element i of a numeric host tensor as int64 / double (for shape arithmetic and tests).
  int64_t IntAt(int64_t i) const;
  double DoubleAt(int64_t i) const;
  // All elements of an integer tensor as int64.
  std::vector<int64_t> ToInt64Vector() const;
  std::string DebugString(int max_elements = 8) const;

 private:
  DType dtype_ = DType::kInvalid;
  Shape shape_;
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;
  std::shared_ptr<std::vector<std::string>> strings_;
};

}  // namespace kiln
