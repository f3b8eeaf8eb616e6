// Device services: where tensors live, how memory is allocated there, how work is ordered
// (streams) and how tensors move between devices (as ONNX Runtime's IDataTransfer). The host
// implementation is always present; a backend whose engines keep their data on another device
// provides that device's services (Backend::device_services).
#pragma once

#include <memory>
#include <span>

#include "kiln/tensor.h"

namespace kiln::backend {

// Work queued on one device runs in queue order. A host stream runs everything at once, so
// Synchronize has nothing to wait for.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual Device device() const = 0;
  // Returns when everything queued so far has finished.
  virtual void Synchronize() = 0;
  // The device API's stream object (cudaStream_t for CUDA); nullptr for the host.
  virtual void* native_handle() const { return nullptr; }
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;
  // `bytes` of memory on device(), 64-byte aligned. kResourceExhausted when the device is out of
  // memory. The contents are unspecified.
  virtual std::shared_ptr<Buffer> Allocate(size_t bytes) const = 0;
  Tensor AllocateTensor(DType dtype, Shape shape) const;
};

// Copies between two devices, one of which is this transfer's device.
class DataTransfer {
 public:
  virtual ~DataTransfer() = default;
  virtual bool CanCopy(Device src, Device dst) const = 0;
  // Queues a copy of `src` into `dst` on `stream`: same dtype, same element count (shapes may
  // differ only by reshaping), no DT_STRING. The copy has happened once the stream is
  // synchronized; `src` must stay alive and unchanged until then.
  virtual void CopyTensor(const Tensor& src, Tensor& dst, Stream& stream) const = 0;
};

// One device's services.
class DeviceServices {
 public:
  virtual ~DeviceServices() = default;
  virtual Device device() const = 0;
  virtual const Allocator& allocator() const = 0;
  // Copies host <-> device() and within device().
  virtual const DataTransfer& transfer() const = 0;
  virtual std::unique_ptr<Stream> CreateStream() const = 0;
  // Starts (true) or stops (false) the part of the program that a profiler of this device
  // captures when told to wait for it (Nsight Compute's --profile-from-start off, Nsight
  // Systems' --capture-range=cudaProfilerApi). Nothing where the device has no such profiler.
  virtual void SetProfilerCapture(bool /*on*/) const {}
};

// The host: 64-byte aligned memory, synchronous streams, memcpy.
const DeviceServices& HostServices();

// kInvalidArgument naming both tensors when dtypes or sizes differ or the dtype is DT_STRING.
void CheckCopyable(const Tensor& src, const Tensor& dst);

}  // namespace kiln::backend
