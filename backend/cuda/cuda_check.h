// Turning CUDA, cuBLASLt and NVRTC status codes into kiln::Error, and the per-thread current
// device. Out-of-memory becomes kResourceExhausted; every other failure kUnavailable (the device
// or library cannot do it), with the call and the library's own message.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <nvrtc.h>

namespace kiln::backend::cuda {

void Check(cudaError_t status, const char* what);
void Check(cublasStatus_t status, const char* what);
void Check(nvrtcResult status, const char* what);

// Makes `device` current for the calling thread while alive (CUDA's current device is per thread).
class DeviceScope {
 public:
  explicit DeviceScope(int device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace kiln::backend::cuda
