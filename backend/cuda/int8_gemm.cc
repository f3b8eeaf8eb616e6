#include "backend/cuda/int8_gemm.h"

#include <cublasLt.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "backend/cuda/cublaslt_util.h"
#include "backend/cuda/cuda_check.h"
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

}  // namespace

struct Int8Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  LtOpDesc desc{&cublasLtMatmulDescDestroy};
  LtLayout a{&cublasLtMatrixLayoutDestroy}, b{&cublasLtMatrixLayoutDestroy}, d{&cublasLtMatrixLayoutDestroy};
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  std::mutex mu;  // the descriptor's bias pointer is set per launch
};

Int8Gemm::Int8Gemm(const Int8GemmShape& shape) : shape_(shape), impl_(std::make_unique<Impl>()) {
  Impl& k = *impl_;
  const int64_t m = shape.m, n = shape.n, kk = shape.k;
  if (m <= 0 || n <= 0 || kk <= 0 || m % 4 != 0 || kk % 4 != 0 || n > INT32_MAX)
    throw Error(ErrorCode::kUnavailable,
                fmt::format("int8 product [{}x{}]x[{}x{}]: cuBLASLt's int8 kernels take multiples of 4", m, kk, kk, n));
  k.handle = LtHandle();
  MakeDesc(k.desc, shape);
  MakeLayout(k.a, kk, m);
  MakeLayout(k.b, kk, n);
  MakeLayout(k.d, m, n);
  LtPreference pref(&cublasLtMatmulPreferenceDestroy);
  MakePreference(pref, kWorkspaceBytes, 16);  // Launch checks the operands' alignment
  // The heuristic may depend on the bias pointer's alignment: a scratch one of the real size.
  DeviceBuffer bias(static_cast<size_t>(m) * sizeof(float)), alpha(static_cast<size_t>(m) * sizeof(float));
  if (shape.bias)
    Check(cublasLtMatmulDescSetAttribute(k.desc.object, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias.p, sizeof(bias.p)),
          "set BIAS_POINTER");
  std::vector<cublasLtMatmulHeuristicResult_t> results(kCandidates);
  int found = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(k.handle, k.desc.object, k.a.object, k.b.object, k.d.object, k.d.object,
                                     pref.object, kCandidates, results.data(), &found);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0)
    throw Error(ErrorCode::kUnavailable,
                fmt::format("cuBLASLt has no int8 algorithm for [{}x{}]x[{}x{}] (residual {}, relu {}, bias {}): {}", m,
                            kk, kk, n, shape.residual, shape.relu, shape.bias,
                            status == CUBLAS_STATUS_SUCCESS ? "none found" : cublasLtGetStatusString(status)));
  results.resize(static_cast<size_t>(found));
  // Every candidate is timed here (its time is what the convolution compares with cuDNN's plan);
  // the timing cache keeps the one chosen, taken again if the heuristic still offers it.
  const std::string key =
      fmt::format("cublasLt {} | {} | int8 m{} n{} k{} residual{} relu{} bias{} | ws{} align16", cublasLtGetVersion(),
                  TacticDeviceKey(), m, n, kk, shape.residual, shape.relu, shape.bias, kWorkspaceBytes);
  DeviceBuffer a(static_cast<size_t>(m * kk)), b(static_cast<size_t>(n * kk)), d(static_cast<size_t>(m * n));
  size_t most = 0;
  for (const auto& c : results) most = std::max(most, c.workspaceSize);
  std::optional<DeviceBuffer> workspace;
  if (most > 0) workspace.emplace(most);
  cudaStream_t stream = nullptr;
  Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate (int8 product tuning)");
  cudaEvent_t start = nullptr, stop = nullptr;
  Check(cudaEventCreate(&start), "cudaEventCreate");
  Check(cudaEventCreate(&stop), "cudaEventCreate");
  std::optional<std::string> cached = ProcessTimingCache().Find(key);
  if (cached && std::none_of(results.begin(), results.end(), [&](const auto& r) { return AlgoHex(r.algo) == *cached; }))
    cached.reset();  // the heuristic no longer offers it: all are timed again
  constexpr int kTimedRuns = 10;
  const float beta = 0.5f;
  std::vector<TacticTiming> timings(results.size());
  std::optional<size_t> best;
  for (size_t i = 0; i < results.size(); ++i) {
    timings[i].candidate = AlgoName(results[i].algo);
    if (cached && AlgoHex(results[i].algo) != *cached) continue;
    auto run = [&] {
      return cublasLtMatmul(k.handle, k.desc.object, alpha.p, a.p, k.a.object, b.p, k.b.object, &beta, d.p, k.d.object,
                            d.p, k.d.object, &results[i].algo, workspace ? workspace->p : nullptr,
                            results[i].workspaceSize, stream);
    };
    if (run() != CUBLAS_STATUS_SUCCESS) continue;  // a candidate that cannot run is skipped
    Check(cudaEventRecord(start, stream), "cudaEventRecord");
    bool ok = true;
    for (int r = 0; r < kTimedRuns && ok; ++r) ok = run() == CUBLAS_STATUS_SUCCESS;
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
    throw Error(ErrorCode::kUnavailable, fmt::format("none of cuBLASLt's {} int8 algorithms for [{}x{}]x[{}x{}] ran",
                                                     results.size(), m, kk, kk, n));
  if (!cached) {
    LogTacticTimings(key, timings, *best);
    ProcessTimingCache().Record(key, AlgoHex(results[*best].algo));
  }
  k.algo = results[*best].algo;
  k.workspace = results[*best].workspaceSize;
  microseconds_ = timings[*best].microseconds;
}

Int8Gemm::~Int8Gemm() = default;

void Int8Gemm::Launch(const void* a, const void* b, const float* alpha, const float* bias, const void* c, float beta,
                      void* d, cudaStream_t stream) const {
  Impl& k = *impl_;
  if (shape_.residual != (c != nullptr) || shape_.bias != (bias != nullptr))
    throw Error(ErrorCode::kInternal, "int8 product: operands do not match the plan");
  for (const void* p :
       {a, b, static_cast<const void*>(alpha), c, static_cast<const void*>(d), static_cast<const void*>(bias)})
    if (p && Alignment(p) < 16) throw Error(ErrorCode::kInternal, "int8 product: operands must be 16-byte aligned");
  std::lock_guard<std::mutex> lock(k.mu);
  if (bias)
    Check(cublasLtMatmulDescSetAttribute(k.desc.object, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
          "set BIAS_POINTER");
  void* workspace = nullptr;
  if (k.workspace > 0) Check(cudaMallocAsync(&workspace, k.workspace, stream), "cudaMallocAsync (cuBLASLt workspace)");
  const cublasStatus_t status =
      cublasLtMatmul(k.handle, k.desc.object, alpha, a, k.a.object, b, k.b.object, &beta, c ? c : d, k.d.object, d,
                     k.d.object, &k.algo, workspace, k.workspace, stream);
  if (workspace) cudaFreeAsync(workspace, stream);
  Check(status, "cublasLtMatmul (int8)");
}

}  // namespace kiln::backend::cuda
