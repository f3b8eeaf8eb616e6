#include "backend/cuda/cudnn_util.h"

#ifdef KILN_WITH_CUDNN

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/preparation_lock.h"
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

namespace {

// A stream of its own with two events, bound to the handle while it lives: timed runs neither
// wait for nor delay the caller's work.
struct TimingStream {
  explicit TimingStream(cudnnHandle_t h) {
    Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate (cuDNN timing)");
    Check(cudaEventCreate(&start), "cudaEventCreate (cuDNN timing)");
    Check(cudaEventCreate(&stop), "cudaEventCreate (cuDNN timing)");
    const cudnnStatus_t st = cudnnSetStream(h, stream);
    if (st != CUDNN_STATUS_SUCCESS)
      throw Error(ErrorCode::kUnavailable, fmt::format("cuDNN cudnnSetStream: {}", cudnnGetErrorString(st)));
    handle = h;
  }
  ~TimingStream() {
    if (handle) cudnnSetStream(handle, nullptr);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
  }
  TimingStream(const TimingStream&) = delete;
  TimingStream& operator=(const TimingStream&) = delete;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  cudnnHandle_t handle = nullptr;
};

// Times each built plan on zeroed scratch operands: one warm-up run, then kTimedRuns back to back
// between two events (one run of a small kernel is too short for events to rank plans a few
// percent apart), on a stream of its own. Returns the fastest plan's index.
int64_t FastestPlan(cudnn_frontend::graph::Graph& g, cudnnHandle_t handle, const std::string& key,
                    const std::vector<int64_t>& built, const std::function<CudnnVariantPack(CudnnScratch&)>& scratch,
                    const std::string& what) {
  constexpr int kTimedRuns = 10;
  CudnnScratch buffers;
  std::unordered_map<int64_t, void*> pack;  // by uid: no conversion in the timed runs
  for (const auto& [tensor, pointer] : scratch(buffers)) pack.emplace(tensor->get_uid(), pointer);
  int64_t most = 0;
  for (int64_t i : built) {
    int64_t bytes = 0;
    if (g.get_workspace_size_plan_at_index(i, bytes).is_good()) most = std::max(most, bytes);
  }
  void* workspace = buffers.Add(static_cast<size_t>(most));
  TimingStream r(handle);
  std::vector<TacticTiming> timings;
  size_t best = 0;
  for (int64_t i : built) {
    TacticTiming t;
    if (!g.get_plan_name_at_index(i, t.candidate).is_good()) t.candidate = fmt::format("plan {}", i);
    bool ok = g.execute_plan_at_index(handle, pack, workspace, i).is_good();
    Check(cudaEventRecord(r.start, r.stream), "cudaEventRecord (cuDNN tuning)");
    for (int run = 0; run < kTimedRuns && ok; ++run) ok = g.execute_plan_at_index(handle, pack, workspace, i).is_good();
    Check(cudaEventRecord(r.stop, r.stream), "cudaEventRecord (cuDNN tuning)");
    Check(cudaEventSynchronize(r.stop), "cudaEventSynchronize (cuDNN tuning)");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, r.start, r.stop), "cudaEventElapsedTime (cuDNN tuning)");
    if (ok) t.microseconds = 1000.0 * ms / kTimedRuns;
    timings.push_back(std::move(t));
    const TacticTiming& fastest = timings[best];
    if (ok && (fastest.microseconds < 0 || timings.back().microseconds < fastest.microseconds))
      best = timings.size() - 1;
  }
  if (timings[best].microseconds < 0)
    throw Error(ErrorCode::kUnavailable,
                fmt::format("cuDNN: none of the {} plans built for {} ran", built.size(), what));
  LogTacticTimings(key, timings, best);
  return built[best];
}

}  // namespace

void BuildTunedPlan(cudnn_frontend::graph::Graph& g, cudnnHandle_t handle, const std::string& problem,
                    int64_t max_candidates, const std::function<CudnnVariantPack(CudnnScratch&)>& scratch,
                    const std::string& what) {
  TimingCache& cache = ProcessTimingCache();
  const std::string key = fmt::format("cudnn {} frontend {} | {} | {}", cudnnGetVersion(), CUDNN_FRONTEND_VERSION,
                                      TacticDeviceKey(), problem);
  if (const auto choice = cache.Find(key))
    for (int64_t i = 0; i < g.get_execution_plan_count(); ++i) {
      std::string name;
      if (!g.get_plan_name_at_index(i, name).is_good() || name != *choice) continue;
      bool built = false;
      {
        const OutsidePreparationLock compiling;  // other steps' preparations go on meanwhile
        built = g.build_plan_at_index(i).is_good();
      }
      if (built) return;  // building it made it the plan that executes
    }
  // cuDNN's first heuristic choice is often not its fastest plan for the shape at hand.
  const int64_t candidates = std::min<int64_t>(g.get_execution_plan_count(), max_candidates);
  std::vector<int64_t> built;
  // Building a plan can compile a kernel (cuDNN's runtime-fusion engines): the log says how long.
  const auto build_start = std::chrono::steady_clock::now();
  {
    const OutsidePreparationLock compiling;  // other steps' preparations go on meanwhile
    for (int64_t i = 0; i < candidates; ++i)
      if (g.build_plan_at_index(i).is_good()) built.push_back(i);
  }
  // Selects the heuristics' first plan that builds (the choice when there is nothing to time).
  CheckFe(g.build_plans(cudnn_frontend::BuildPlanPolicy_t::HEURISTICS_CHOICE), fmt::format("build_plans ({})", what));
  const std::string logged =
      fmt::format("{} | {} of {} plans built in {:.0f} ms", key, built.size(), candidates,
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - build_start).count());
  if (built.size() > 1) {
    const int64_t fastest = FastestPlan(g, handle, logged, built, scratch, what);
    CheckFe(g.build_plan_at_index(fastest), fmt::format("build_plan_at_index ({})", what));  // makes it execute
  } else {
    LogTacticNote(fmt::format("tactic {} (nothing to time)\n", logged));
  }
  if (std::string chosen; g.get_plan_name(chosen).is_good()) cache.Record(key, chosen);
}

double TimeCudnnGraph(cudnn_frontend::graph::Graph& g, cudnnHandle_t handle, CudnnVariantPack& pack,
                      int64_t workspace_bytes) {
  constexpr int kTimedRuns = 10;
  CudnnScratch buffers;
  void* workspace = buffers.Add(static_cast<size_t>(std::max<int64_t>(workspace_bytes, 0)));
  TimingStream r(handle);
  CheckFe(g.execute(handle, pack, workspace), "execute (timing)");
  Check(cudaEventRecord(r.start, r.stream), "cudaEventRecord (cuDNN timing)");
  for (int run = 0; run < kTimedRuns; ++run) CheckFe(g.execute(handle, pack, workspace), "execute (timing)");
  Check(cudaEventRecord(r.stop, r.stream), "cudaEventRecord (cuDNN timing)");
  Check(cudaEventSynchronize(r.stop), "cudaEventSynchronize (cuDNN timing)");
  float ms = 0;
  Check(cudaEventElapsedTime(&ms, r.start, r.stop), "cudaEventElapsedTime (cuDNN timing)");
  return 1000.0 * ms / kTimedRuns;
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
