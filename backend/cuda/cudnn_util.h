// What the cuDNN-frontend kernels (convolutions, fused attention) share: a cudnn-frontend status
// as a Kiln error, a cuDNN handle for a device, choosing (timing) a graph's execution plan, and
// running a built graph on a stream. Only in builds with cuDNN (KILN_WITH_CUDNN).
#pragma once

#ifdef KILN_WITH_CUDNN

#include <cuda_runtime.h>
#include <cudnn.h>
#include <cudnn_frontend.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::backend::cuda {

// kUnavailable "cuDNN <what>: <message>" unless `status` is good.
void CheckFe(cudnn_frontend::error_t status, const std::string& what);
// A new cuDNN handle on `device`; kUnavailable if cuDNN cannot make one.
cudnnHandle_t NewCudnnHandle(int device);

using CudnnVariantPack = std::unordered_map<std::shared_ptr<cudnn_frontend::graph::Tensor_attributes>, void*>;
// Zero-filled device buffers for timing plans (timing must not meet denormals or NaNs), freed
// with the object.
class CudnnScratch {
 public:
  CudnnScratch() = default;
  ~CudnnScratch();
  CudnnScratch(const CudnnScratch&) = delete;
  CudnnScratch& operator=(const CudnnScratch&) = delete;
  void* Add(size_t bytes);

 private:
  std::vector<void*> buffers_;
};

// Builds the execution plan of `graph` (after check_support) and makes it the one that executes:
// the plan the timing cache (timing_cache.h) names for `problem` on this device and cuDNN
// version, when the heuristics still propose it; else the first `max_candidates` that build,
// timed on the pack `scratch` returns when more than one built (each logged when
// $KILN_TACTIC_LOG is set), and the fastest kept and recorded. `what` names the node in errors.
void BuildTunedPlan(cudnn_frontend::graph::Graph& graph, cudnnHandle_t handle, const std::string& problem,
                    int64_t max_candidates, const std::function<CudnnVariantPack(CudnnScratch&)>& scratch,
                    const std::string& what);

// Microseconds per run of the plan `graph` executes now, on `pack` (scratch operands): one warm-up
// run, then 10 back to back between two events, on a stream of its own.
double TimeCudnnGraph(cudnn_frontend::graph::Graph& graph, cudnnHandle_t handle, CudnnVariantPack& pack,
                      int64_t workspace_bytes);

// Runs a built cuDNN graph on `stream` (the handle is bound to it), with `workspace_bytes` of
// stream-ordered scratch; `what` names the node in errors.
void ExecuteOnStream(cudnnHandle_t handle, const cudnn_frontend::graph::Graph& graph, CudnnVariantPack& pack,
                     int64_t workspace_bytes, cudaStream_t stream, const std::string& what);

}  // namespace kiln::backend::cuda

#endif
