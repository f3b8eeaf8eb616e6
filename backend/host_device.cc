// The host's device services.
#include <cstring>

#include <fmt/format.h>

#include "backend/device.h"

namespace kiln::backend {
namespace {

class HostStream final : public Stream {
 public:
  Device device() const override { return {}; }
  void Synchronize() override {}
};

class HostAllocator final : public Allocator {
 public:
  Device device() const override { return {}; }
  std::shared_ptr<Buffer> Allocate(size_t bytes) const override { return AllocateHostBuffer(bytes); }
};

class HostTransfer final : public DataTransfer {
 public:
  bool CanCopy(Device src, Device dst) const override { return src.kind == DeviceKind::kCpu && dst.kind == DeviceKind::kCpu; }
  void CopyTensor(const Tensor& src, Tensor& dst, Stream&) const override {
    CheckCopyable(src, dst);
    if (!CanCopy(src.device(), dst.device()))
      throw Error(ErrorCode::kInternal, fmt::format("the host cannot copy from {} to {}", src.device().ToString(),
                                                    dst.device().ToString()));
    if (src.byte_size() > 0 && src.raw_data() != dst.raw_data()) std::memmove(dst.raw_data(), src.raw_data(), src.byte_size());
  }
};

class Host final : public DeviceServices {
 public:
  Device device() const override { return {}; }
  const Allocator& allocator() const override { return allocator_; }
  const DataTransfer& transfer() const override { return transfer_; }
  std::unique_ptr<Stream> CreateStream() const override { return std::make_unique<HostStream>(); }

 private:
  HostAllocator allocator_;
  HostTransfer transfer_;
};

}  // namespace

Tensor Allocator::AllocateTensor(DType dtype, Shape shape) const {
  if (dtype == DType::kString) {
    if (device().kind != DeviceKind::kCpu)
      throw Error(ErrorCode::kUnimplemented, fmt::format("DT_STRING tensors live on the host only, not {}", device().ToString()));
    return Tensor(dtype, std::move(shape));
  }
  const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
  return Tensor(dtype, std::move(shape), Allocate(bytes));
}

void CheckCopyable(const Tensor& src, const Tensor& dst) {
  if (src.dtype() != dst.dtype() || src.num_elements() != dst.num_elements())
    throw Error(ErrorCode::kInvalidArgument, fmt::format("cannot copy a {} {} tensor into a {} {} tensor", DTypeName(src.dtype()),
                                                         ShapeToString(src.shape()), DTypeName(dst.dtype()),
                                                         ShapeToString(dst.shape())));
  if (src.dtype() == DType::kString)
    throw Error(ErrorCode::kUnimplemented, "DT_STRING tensors are not copied between devices");
}

const DeviceServices& HostServices() {
  static const Host host;
  return host;
}

}  // namespace kiln::backend
