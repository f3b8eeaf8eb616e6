// AllocateTensorOn and CopyTensorTo: the device's services, found through the backend registry.
#include <fmt/format.h>

#include "backend/backend.h"
#include "kiln/device.h"

namespace kiln {

Tensor AllocateTensorOn(Device device, DType dtype, const Shape& shape) {
  if (dtype == DType::kString && device.kind != DeviceKind::kCpu)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("a DT_STRING tensor cannot live on {}", device.ToString()));
  return backend::ServicesOf(device).allocator().AllocateTensor(dtype, shape);
}

Tensor CopyTensorTo(const Tensor& tensor, Device device) {
  if (!tensor.defined()) throw Error(ErrorCode::kInvalidArgument, "CopyTensorTo: the tensor is undefined");
  // The copy runs on a stream of whichever side is not the host (the host's for host to host).
  const Device from = tensor.device();
  const backend::DeviceServices& services = backend::ServicesOf(from.kind != DeviceKind::kCpu ? from : device);
  if (!services.transfer().CanCopy(from, device))
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("CopyTensorTo: no copy from {} to {} in this build", from.ToString(), device.ToString()));
  Tensor out = AllocateTensorOn(device, tensor.dtype(), tensor.shape());
  std::unique_ptr<backend::Stream> stream = services.CreateStream();
  services.transfer().CopyTensor(tensor, out, *stream);
  stream->Synchronize();
  return out;
}

}  // namespace kiln
