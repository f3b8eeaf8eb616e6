// The CUDA device's services: device memory (cudaMallocAsync on the device's default memory
// pool, freed stream-ordered), CUDA streams, and copies with cudaMemcpyAsync. Engines of the
// CUDA backend run on these streams; the runtime copies between host and device with them.
#pragma once

#include <memory>

#include "backend/device.h"

namespace kiln::backend::cuda {

// Number of CUDA devices visible to this process (0 when there is no driver or GPU).
int DeviceCount();

// The services of CUDA device `index`. kNotFound naming the count when it does not exist;
// kUnavailable with the CUDA error when the driver cannot be used.
const DeviceServices& Services(int index = 0);

// `bytes` of device memory taken from the pool in the order of `stream` (a cudaStream_t of
// `device`) and given back in that order when the buffer is released: for values of one run.
std::shared_ptr<Buffer> AllocateOnStream(int device, size_t bytes, void* stream);

}  // namespace kiln::backend::cuda
