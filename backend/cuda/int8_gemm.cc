#include "backend/cuda/int8_gemm.h"

#include <cublasLt.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "backend/cuda/cublaslt_util.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cutlass_int8_gemm.h"
#include "backend/cuda/timing_cache.h"
#include "kiln/error.h"

namespace kiln::backend::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;
constexpr int kCandidates = 8;

// Column-major, as cuBLASLt sees the row-major operands: D (m x n, leading dim m) = op(A) B with
// A stored k x m (transposed: the IMMA kernels' "TN" form) and B k x n.
void MakeDesc(LtOpDesc& desc, const Int8GemmShape& s) {
  Check(cublasLtMatmulDescCreate(&desc.object, CUBLAS_COMPUTE_32I, CUDA_R_32F), "cublasLtMatmulDescCreate (int8)");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "set TRANSA");
  Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "set TRANSB");
  const cublasLtPointerMode_t mode = s.residual ? CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_HOST
                                                : CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO;
  Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_POINTER_MODE, &mode, sizeof(mode)),
        "set POINTER_MODE");
  const cublasLtEpilogue_t epilogue = s.bias ? (s.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                             : (s.relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
  Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
        "set EPILOGUE");
  if (s.bias) {
    const cudaDataType_t bias_type = CUDA_R_32F;  // IMMA with int8 C: the scale type
    Check(
        cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)),
        "set BIAS_DATA_TYPE");
  }
}

void MakeLayout(LtLayout& layout, int64_t rows, int64_t cols) {
  Check(cublasLtMatrixLayoutCreate(&layout.object, CUDA_R_8I, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols),
                                   rows),
        "cublasLtMatrixLayoutCreate (int8)");
}

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    Check(cudaMalloc(&p, std::max<size_t>(bytes, 16)), "cudaMalloc (int8 product tuning)");
    Check(cudaMemset(p, 0, std::max<size_t>(bytes, 16)), "cudaMemset (int8 product tuning)");
  }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// One way to run the product, timed against the others: a cuBLASLt algorithm or a CUTLASS kernel.
struct Candidate {
  std::string name;  // the tactic log's
  std::string id;    // the timing cache's
  size_t workspace = 0;
  std::optional<cublasLtMatmulAlgo_t> algo;  // cuBLASLt's, or CUTLASS's configuration below
  int cutlass_config = -1;
};

// cuBLASLt's candidates for the shape; none when it has no algorithm (its int8 kernels take
// multiples of 4, and cuBLASLt 13 offers nothing for the per-channel scale without a residual).
std::vector<Candidate> CublasLtCandidates(const Int8GemmShape& s, cublasLtHandle_t handle, const LtOpDesc& desc,
                                          const LtLayout& a, const LtLayout& b, const LtLayout& d,
                                          std::string& refusal) {
  LtPreference pref(&cublasLtMatmulPreferenceDestroy);
  MakePreference(pref, kWorkspaceBytes, 16);  // Launch checks the operands' alignment
  std::vector<cublasLtMatmulHeuristicResult_t> results(kCandidates);
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle, desc.object, a.object, b.object, d.object,
                                                               d.object, pref.object, kCandidates, results.data(), &found);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
    refusal = fmt::format("cuBLASLt has no int8 algorithm (residual {}, relu {}, bias {}): {}", s.residual, s.relu,
                          s.bias, status == CUBLAS_STATUS_SUCCESS ? "none found" : cublasLtGetStatusString(status));
    return {};
  }
  std::vector<Candidate> out;
  for (int i = 0; i < found; ++i) {
    Candidate c;
    c.name = "cublasLt " + AlgoName(results[i].algo);
    c.id = AlgoHex(results[i].algo);
    c.workspace = results[i].workspaceSize;
    c.algo = results[i].algo;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

struct Int8Gemm::Impl {
  int device = 0;
  cublasLtHandle_t handle = nullptr;
  LtOpDesc desc{&cublasLtMatmulDescDestroy};
  LtLayout a{&cublasLtMatrixLayoutDestroy}, b{&cublasLtMatrixLayoutDestroy}, d{&cublasLtMatrixLayoutDestroy};
  Candidate chosen;
  std::mutex mu;  // the descriptor's bias pointer is set per launch

  // One run of a candidate on the given operands (in cuBLASLt's naming: a the filter, b the input).
  // Null on success, otherwise why it did not run.
  std::optional<std::string> Run(const Candidate& c, const Int8GemmShape& s, const void* a_ptr, const void* b_ptr,
                                 const float* alpha, const float* bias, const void* c_ptr, float beta, void* d_ptr,
                                 void* workspace, cudaStream_t stream, int repeats = 1) {
    if (c.cutlass_config >= 0) {
      CutlassInt8GemmArgs args;
      args.pixels = s.n;
      args.channels = s.m;
      args.k = s.k;
      args.x = b_ptr;
      args.w = a_ptr;
      args.alpha = alpha;
      args.bias = bias;
      args.c = c_ptr;
      args.beta = beta;
      args.d = d_ptr;
      args.relu = s.relu;
      if (const char* error = CutlassInt8GemmRun(c.cutlass_config, args, workspace, device, stream, repeats))
        return std::string(error);
      return std::nullopt;
    }
    if (bias)
      Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
            "set BIAS_POINTER");
    for (int r = 0; r < repeats; ++r) {
      const cublasStatus_t status = cublasLtMatmul(handle, desc.object, alpha, a_ptr, a.object, b_ptr, b.object, &beta,
                                                   c_ptr ? c_ptr : d_ptr, d.object, d_ptr, d.object, &*c.algo,
                                                   workspace, c.workspace, stream);
      if (status != CUBLAS_STATUS_SUCCESS) return std::string(cublasLtGetStatusString(status));
    }
    return std::nullopt;
  }
};

Int8Gemm::Int8Gemm(const Int8GemmShape& shape) : shape_(shape), impl_(std::make_unique<Impl>()) {
  Impl& k = *impl_;
  const int64_t m = shape.m, n = shape.n, kk = shape.k;
  if (m <= 0 || n <= 0 || kk <= 0 || n > INT32_MAX || m > INT32_MAX || kk > INT32_MAX)
    throw Error(ErrorCode::kUnavailable, fmt::format("int8 product [{}x{}]x[{}x{}]: unsupported sizes", m, kk, kk, n));
  Check(cudaGetDevice(&k.device), "cudaGetDevice");
  // Scratch operands of the real sizes (the heuristics may depend on the pointers' alignment).
  DeviceBuffer bias(static_cast<size_t>(m) * sizeof(float)), alpha(static_cast<size_t>(m) * sizeof(float));
  DeviceBuffer a(static_cast<size_t>(m * kk)), b(static_cast<size_t>(n * kk)), d(static_cast<size_t>(m * n)),
      residual(shape.residual ? static_cast<size_t>(m * n) : 0);
  std::vector<Candidate> candidates;
  std::string cublaslt_refusal;
  if (m % 4 == 0 && kk % 4 == 0) {
    k.handle = LtHandle();
    MakeDesc(k.desc, shape);
    MakeLayout(k.a, kk, m);
    MakeLayout(k.b, kk, n);
    MakeLayout(k.d, m, n);
    if (shape.bias)
      Check(cublasLtMatmulDescSetAttribute(k.desc.object, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias.p, sizeof(bias.p)),
            "set BIAS_POINTER");
    candidates = CublasLtCandidates(shape, k.handle, k.desc, k.a, k.b, k.d, cublaslt_refusal);
  } else {
    cublaslt_refusal = "cuBLASLt's int8 kernels take multiples of 4";
  }
  CutlassInt8GemmArgs probe;
  probe.pixels = n;
  probe.channels = m;
  probe.k = kk;
  probe.x = b.p;
  probe.w = a.p;
  probe.alpha = static_cast<const float*>(alpha.p);
  probe.bias = shape.bias ? static_cast<const float*>(bias.p) : nullptr;
  probe.c = shape.residual ? residual.p : nullptr;
  probe.beta = shape.residual ? 0.5f : 0.0f;
  probe.d = d.p;
  probe.relu = shape.relu;
  for (int config = 0; config < CutlassInt8GemmConfigs(); ++config) {
    if (!CutlassInt8GemmCanRun(config, probe, k.device)) continue;
    Candidate c;
    c.name = CutlassInt8GemmConfigName(config);
    c.id = c.name;
    c.workspace = CutlassInt8GemmWorkspaceBytes(config, probe, k.device);
    c.cutlass_config = config;
    candidates.push_back(std::move(c));
  }
  if (candidates.empty())
    throw Error(ErrorCode::kUnavailable,
                fmt::format("no int8 kernel for [{}x{}]x[{}x{}]: {}; {}", m, kk, kk, n, cublaslt_refusal,
                            CutlassInt8GemmConfigs() > 0 ? "CUTLASS's sm90 kernels do not take it on this device"
                                                         : "this build has no CUTLASS kernels"));
  // Every candidate is timed here (its time is what the convolution compares with cuDNN's plan);
  // the timing cache keeps the one chosen, taken again if it is still offered.
  const std::string key =
      fmt::format("int8 product | {} | {} | m{} n{} k{} residual{} relu{} bias{} | ws{} align16", LibrariesKey(),
                  TacticDeviceKey(), m, n, kk, shape.residual, shape.relu, shape.bias, kWorkspaceBytes);
  size_t most = 0;
  for (const Candidate& c : candidates) most = std::max(most, c.workspace);
  std::optional<DeviceBuffer> workspace;
  if (most > 0) workspace.emplace(most);
  cudaStream_t stream = nullptr;
  Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate (int8 product tuning)");
  cudaEvent_t start = nullptr, stop = nullptr;
  Check(cudaEventCreate(&start), "cudaEventCreate");
  Check(cudaEventCreate(&stop), "cudaEventCreate");
  std::optional<std::string> cached = ProcessTimingCache().Find(key);
  if (cached && std::none_of(candidates.begin(), candidates.end(), [&](const Candidate& c) { return c.id == *cached; }))
    cached.reset();  // no longer offered: all are timed again
  constexpr int kTimedRuns = 10;
  std::vector<TacticTiming> timings(candidates.size());
  std::optional<size_t> best;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    timings[i].candidate = c.name;
    if (cached && c.id != *cached) continue;
    auto run = [&](int repeats) {
      return k.Run(c, shape, a.p, b.p, static_cast<const float*>(alpha.p), probe.bias, probe.c, probe.beta, d.p,
                   workspace ? workspace->p : nullptr, stream, repeats);
    };
    if (run(1)) {  // a candidate that cannot run is skipped
      cudaGetLastError();
      continue;
    }
    Check(cudaEventRecord(start, stream), "cudaEventRecord");
    const bool ok = !run(kTimedRuns);
    Check(cudaEventRecord(stop, stream), "cudaEventRecord");
    Check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (!ok) continue;
    timings[i].microseconds = 1000.0 * ms / kTimedRuns;
    if (!best || timings[i].microseconds < timings[*best].microseconds) best = i;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  if (!best)
    throw Error(ErrorCode::kUnavailable, fmt::format("none of the {} int8 kernels for [{}x{}]x[{}x{}] ran",
                                                     candidates.size(), m, kk, kk, n));
  if (!cached) {
    LogTacticTimings(key, timings, *best);
    ProcessTimingCache().Record(key, candidates[*best].id);
  }
  k.chosen = candidates[*best];
  microseconds_ = timings[*best].microseconds;
}

Int8Gemm::~Int8Gemm() = default;

std::string Int8Gemm::LibrariesKey() {
  return fmt::format("cublasLt {} cutlass configs {}", cublasLtGetVersion(), CutlassInt8GemmConfigs());
}

std::string Int8Gemm::library() const { return impl_->chosen.cutlass_config >= 0 ? "cutlass" : "cublasLt"; }

std::string Int8Gemm::kernel() const { return impl_->chosen.name; }

void Int8Gemm::Launch(const void* a, const void* b, const float* alpha, const float* bias, const void* c, float beta,
                      void* d, cudaStream_t stream) const {
  Impl& k = *impl_;
  if (shape_.residual != (c != nullptr) || shape_.bias != (bias != nullptr))
    throw Error(ErrorCode::kInternal, "int8 product: operands do not match the plan");
  for (const void* p :
       {a, b, static_cast<const void*>(alpha), c, static_cast<const void*>(d), static_cast<const void*>(bias)})
    if (p && Alignment(p) < 16) throw Error(ErrorCode::kInternal, "int8 product: operands must be 16-byte aligned");
  std::lock_guard<std::mutex> lock(k.mu);
  void* workspace = nullptr;
  if (k.chosen.workspace > 0)
    Check(cudaMallocAsync(&workspace, k.chosen.workspace, stream), "cudaMallocAsync (int8 product workspace)");
  const std::optional<std::string> error = k.Run(k.chosen, shape_, a, b, alpha, bias, c, beta, d, workspace, stream);
  if (workspace) cudaFreeAsync(workspace, stream);
  if (error) throw Error(ErrorCode::kInternal, fmt::format("int8 product ({}): {}", k.chosen.name, *error));
}

}  // namespace kiln::backend::cuda
