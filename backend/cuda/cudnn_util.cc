#include "backend/cuda/cudnn_util.h"

#ifdef KILN_WITH_CUDNN

#include <fmt/format.h>

#include "backend/cuda/cuda_check.h"
#include "kiln/error.h"

namespace kiln::backend::cuda {

void CheckFe(cudnn_frontend::error_t status, const std::string& what) {
  if (status.is_good()) return;
  throw Error(ErrorCode::kUnavailable, fmt::format("cuDNN {}: {}", what, status.get_message()));
}

cudnnHandle_t NewCudnnHandle(int device) {
  DeviceScope scope(device);
  cudnnHandle_t handle = nullptr;
  const cudnnStatus_t status = cudnnCreate(&handle);
  if (status != CUDNN_STATUS_SUCCESS)
    throw Error(ErrorCode::kUnavailable, fmt::format("cuDNN cudnnCreate: {}", cudnnGetErrorString(status)));
  return handle;
}

}  // namespace kiln::backend::cuda

#endif
