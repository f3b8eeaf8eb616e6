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

void ExecuteOnStream(cudnnHandle_t handle, const cudnn_frontend::graph::Graph& graph, CudnnVariantPack& pack,
                     int64_t workspace_bytes, cudaStream_t stream, const std::string& what) {
  const cudnnStatus_t st = cudnnSetStream(handle, stream);
  if (st != CUDNN_STATUS_SUCCESS)
    throw Error(ErrorCode::kUnavailable, fmt::format("cuDNN cudnnSetStream: {}", cudnnGetErrorString(st)));
  void* workspace = nullptr;
  if (workspace_bytes > 0)
    Check(cudaMallocAsync(&workspace, static_cast<size_t>(workspace_bytes), stream),
          "cudaMallocAsync (cuDNN workspace)");
  const cudnn_frontend::error_t status = graph.execute(handle, pack, workspace);
  if (workspace) cudaFreeAsync(workspace, stream);
  CheckFe(status, "execute (" + what + ")");
}

}  // namespace kiln::backend::cuda

#endif
