// What the cuDNN-frontend kernels (convolutions, fused attention) share: a cudnn-frontend status
// as a Kiln error, and a cuDNN handle for a device. Only in builds with cuDNN (KILN_WITH_CUDNN).
#pragma once

#ifdef KILN_WITH_CUDNN

#include <cudnn.h>
#include <cudnn_frontend.h>

#include <string>

namespace kiln::backend::cuda {

// kUnavailable "cuDNN <what>: <message>" unless `status` is good.
void CheckFe(cudnn_frontend::error_t status, const std::string& what);
// A new cuDNN handle on `device`; kUnavailable if cuDNN cannot make one.
cudnnHandle_t NewCudnnHandle(int device);

}  // namespace kiln::backend::cuda

#endif
