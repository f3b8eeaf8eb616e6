// What the cuDNN-frontend kernels (convolutions, fused attention) share: a cudnn-frontend status
// as a Kiln error, a cuDNN handle for a device, and running a built graph on a stream. Only in
// builds with cuDNN (KILN_WITH_CUDNN).
#pragma once

#ifdef KILN_WITH_CUDNN

#include <cuda_runtime.h>
#include <cudnn.h>
#include <cudnn_frontend.h>

#include <memory>
#include <string>
#include <unordered_map>

namespace kiln::backend::cuda {

// kUnavailable "cuDNN <what>: <message>" unless `status` is good.
void CheckFe(cudnn_frontend::error_t status, const std::string& what);
// A new cuDNN handle on `device`; kUnavailable if cuDNN cannot make one.
cudnnHandle_t NewCudnnHandle(int device);

using CudnnVariantPack = std::unordered_map<std::shared_ptr<cudnn_frontend::graph::Tensor_attributes>, void*>;
// Runs a built cuDNN graph on `stream` (the handle is bound to it), with `workspace_bytes` of
// stream-ordered scratch; `what` names the node in errors.
void ExecuteOnStream(cudnnHandle_t handle, const cudnn_frontend::graph::Graph& graph, CudnnVariantPack& pack,
                     int64_t workspace_bytes, cudaStream_t stream, const std::string& what);

}  // namespace kiln::backend::cuda

#endif
