#include "backend/cuda/cudnn_util.h"

#ifdef KILN_WITH_CUDNN

#include <fmt/format.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/timing_cache.h"
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

CudnnScratch::~CudnnScratch() {
  for (void* p : buffers_) cudaFree(p);
}

void* CudnnScratch::Add(size_t bytes) {
  void* p = nullptr;
  Check(cudaMalloc(&p, std::max<size_t>(bytes, 16)), "cudaMalloc (cuDNN tuning)");
  buffers_.push_back(p);
  Check(cudaMemset(p, 0, std::max<size_t>(bytes, 16)), "cudaMemset (cuDNN tuning)");
  return p;
}

void BuildTunedPlan(cudnn_frontend::graph::Graph& g, cudnnHandle_t handle, const std::string& problem,
                    int64_t max_candidates, const std::function<CudnnVariantPack(CudnnScratch&)>& scratch,
                    const std::string& what) {
  TimingCache& cache = ProcessTimingCache();
  const std::string key =
      fmt::format("cudnn {} frontend {} | {} | {}", cudnnGetVersion(), CUDNN_FRONTEND_VERSION, TacticDeviceKey(), problem);
  if (const auto choice = cache.Find(key))
    for (int64_t i = 0; i < g.get_execution_plan_count(); ++i) {
      std::string name;
      if (g.get_plan_name_at_index(i, name).is_good() && name == *choice && g.build_plan_at_index(i).is_good())
        return;  // building it made it the plan that executes
    }
  // cuDNN's first heuristic choice is often not its fastest plan for the shape at hand.
  const int64_t candidates = std::min<int64_t>(g.get_execution_plan_count(), max_candidates);
  int built = 0;
  for (int64_t i = 0; i < candidates; ++i) built += g.build_plan_at_index(i).is_good() ? 1 : 0;
  // Selects the heuristics' first plan that builds (the choice when there is nothing to time).
  CheckFe(g.build_plans(cudnn_frontend::BuildPlanPolicy_t::HEURISTICS_CHOICE), fmt::format("build_plans ({})", what));
  if (built > 1) {
    CudnnScratch buffers;
    CudnnVariantPack pack = scratch(buffers);
    void* workspace = buffers.Add(static_cast<size_t>(g.get_autotune_workspace_size()));
    const cudnnStatus_t st = cudnnSetStream(handle, nullptr);  // autotune synchronizes the device
    if (st != CUDNN_STATUS_SUCCESS)
      throw Error(ErrorCode::kUnavailable, fmt::format("cuDNN cudnnSetStream: {}", cudnnGetErrorString(st)));
    CheckFe(g.autotune(handle, pack, workspace), fmt::format("autotune ({})", what));
  }
  if (std::string chosen; g.get_plan_name(chosen).is_good()) cache.Record(key, chosen);
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
