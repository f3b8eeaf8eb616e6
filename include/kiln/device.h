// Tensors on devices other than the host, for callers that keep inputs and outputs in GPU memory
// (Signature::RunWithBuffers with BufferBinding::device set): allocate there and copy between
// the host and a device without naming a backend. kUnavailable when this build of Kiln has no
// backend for the device's kind; kNotFound for a device index past the device count.
#pragma once

#include "kiln/tensor.h"

namespace kiln {

// Memory for a tensor of `dtype` and `shape` on `device`; the contents are unspecified.
Tensor AllocateTensorOn(Device device, DType dtype, const Shape& shape);

// A copy of `tensor` on `device` (host <-> device, or within one device), complete when this
// returns. DT_STRING tensors cannot leave the host.
Tensor CopyTensorTo(const Tensor& tensor, Device device);

}  // namespace kiln
