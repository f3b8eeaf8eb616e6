#include "backend/cuda/cuda_device.h"

#include <cuda_profiler_api.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <map>
#include <memory>
#include <mutex>

#include "backend/cuda/cuda_check.h"

namespace kiln::backend::cuda {
namespace {

class CudaStream final : public Stream {
 public:
  explicit CudaStream(int device) : device_(device) {
    DeviceScope scope(device);
    Check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }
  ~CudaStream() override {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
  Device device() const override { return {DeviceKind::kCuda, device_}; }
  void Synchronize() override { Check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }
  void* native_handle() const override { return stream_; }

 private:
  int device_;
  cudaStream_t stream_ = nullptr;
};

// Device memory from the device's stream-ordered pool, taken and given back in the order of one
// stream. The allocator's buffers use the legacy default stream, which orders after work already
// queued on blocking streams, and wait for the allocation; engines' non-blocking streams are
// synchronized by the runtime before their tensors are released. Engines take intermediates on
// their run's stream and release them there, after the work that reads them.
class CudaBuffer final : public Buffer {
 public:
  CudaBuffer(int device, size_t bytes, cudaStream_t stream) : device_(device), size_(bytes), stream_(stream) {
    if (bytes == 0) return;
    DeviceScope scope(device);
    Check(cudaMallocAsync(&data_, bytes, stream), "cudaMallocAsync");
    if (stream == cudaStreamLegacy) Check(cudaStreamSynchronize(cudaStreamLegacy), "cudaStreamSynchronize");
  }
  ~CudaBuffer() override {
    if (!data_) return;
    DeviceScope scope(device_);
    cudaFreeAsync(data_, stream_);
  }
  void* data() override { return data_; }
  size_t size() const override { return size_; }
  Device device() const override { return {DeviceKind::kCuda, device_}; }

 private:
  int device_;
  size_t size_;
  cudaStream_t stream_;
  void* data_ = nullptr;
};

class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(int device) : device_(device) {}
  Device device() const override { return {DeviceKind::kCuda, device_}; }
  std::shared_ptr<Buffer> Allocate(size_t bytes) const override {
    return std::make_shared<CudaBuffer>(device_, bytes, cudaStreamLegacy);
  }

 private:
  int device_;
};

class CudaTransfer final : public DataTransfer {
 public:
  explicit CudaTransfer(int device) : device_(device) {}
  bool CanCopy(Device src, Device dst) const override { return Handles(src) && Handles(dst); }
  void CopyTensor(const Tensor& src, Tensor& dst, Stream& stream) const override {
    CheckCopyable(src, dst);
    if (!CanCopy(src.device(), dst.device()))
      throw Error(ErrorCode::kInvalidArgument, fmt::format("cuda:{} cannot copy from {} to {}", device_,
                                                           src.device().ToString(), dst.device().ToString()));
    if (stream.device() != Device{DeviceKind::kCuda, device_})
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("a cuda:{} copy was queued on a {} stream", device_, stream.device().ToString()));
    if (src.byte_size() == 0) return;
    DeviceScope scope(device_);
    Check(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.byte_size(), cudaMemcpyDefault,
                          static_cast<cudaStream_t>(stream.native_handle())),
          "cudaMemcpyAsync");
  }

 private:
  bool Handles(Device d) const { return d.kind == DeviceKind::kCpu || d == Device{DeviceKind::kCuda, device_}; }
  int device_;
};

class CudaServices final : public DeviceServices {
 public:
  explicit CudaServices(int device) : device_(device), allocator_(device), transfer_(device) {}
  Device device() const override { return {DeviceKind::kCuda, device_}; }
  const Allocator& allocator() const override { return allocator_; }
  const DataTransfer& transfer() const override { return transfer_; }
  std::unique_ptr<Stream> CreateStream() const override { return std::make_unique<CudaStream>(device_); }
  void SetProfilerCapture(bool on) const override {
    DeviceScope scope(device_);
    Check(on ? cudaProfilerStart() : cudaProfilerStop(), on ? "cudaProfilerStart" : "cudaProfilerStop");
  }

 private:
  int device_;
  CudaAllocator allocator_;
  CudaTransfer transfer_;
};

}  // namespace

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

const DeviceServices& Services(int index) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<CudaServices>> services;
  const int count = DeviceCount();
  if (index < 0 || index >= count)
    throw Error(ErrorCode::kNotFound,
                fmt::format("CUDA device {} does not exist ({} CUDA device(s) visible)", index, count));
  std::lock_guard<std::mutex> lock(mutex);
  auto& s = services[index];
  if (!s) s = std::make_unique<CudaServices>(index);
  return *s;
}

std::shared_ptr<Buffer> AllocateOnStream(int device, size_t bytes, void* stream) {
  return std::make_shared<CudaBuffer>(device, bytes, static_cast<cudaStream_t>(stream));
}

}  // namespace kiln::backend::cuda
