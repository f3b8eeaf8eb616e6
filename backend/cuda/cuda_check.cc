#include "backend/cuda/cuda_check.h"

#include <fmt/format.h>

#include "kiln/error.h"

namespace kiln::backend::cuda {

void Check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  const ErrorCode code = status == cudaErrorMemoryAllocation ? ErrorCode::kResourceExhausted : ErrorCode::kUnavailable;
  throw Error(code, fmt::format("CUDA {}: {} ({})", what, cudaGetErrorString(status), cudaGetErrorName(status)));
}

void Check(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const ErrorCode code = status == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::kResourceExhausted : ErrorCode::kUnavailable;
  throw Error(
      code, fmt::format("cuBLASLt {}: {} ({})", what, cublasLtGetStatusString(status), cublasLtGetStatusName(status)));
}

void Check(nvrtcResult status, const char* what) {
  if (status == NVRTC_SUCCESS) return;
  const ErrorCode code = status == NVRTC_ERROR_OUT_OF_MEMORY ? ErrorCode::kResourceExhausted : ErrorCode::kUnavailable;
  throw Error(code, fmt::format("NVRTC {}: {}", what, nvrtcGetErrorString(status)));
}

DeviceScope::DeviceScope(int device) {
  Check(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ != device) Check(cudaSetDevice(device), "cudaSetDevice");
}

DeviceScope::~DeviceScope() { cudaSetDevice(previous_); }

}  // namespace kiln::backend::cuda
