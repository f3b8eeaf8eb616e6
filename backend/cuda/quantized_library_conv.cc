#include "backend/cuda/quantized_library_conv.h"

#include <cublasLt.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "backend/cuda/cublaslt_util.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cutlass_quantized_conv.h"
#include "backend/cuda/cutlass_quantized_gemm.h"
#include "backend/cuda/timing_cache.h"
#include "kiln/error.h"

namespace kiln::backend::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;
constexpr int kCandidates = 8;

// cuBLASLt's view of a product: D (m x n, column-major, leading dim m) = op(A) B with A the filter
// stored k x m (transposed: the IMMA kernels' "TN" form) and B the input k x n: m output
// channels, n pixels, k input channels.
struct ProductDims {
  int64_t m = 0, n = 0, k = 0;
};

void MakeDesc(LtOpDesc& desc, const QuantizedConvShape& s) {
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
    Check(cudaMalloc(&p, std::max<size_t>(bytes, 16)), "cudaMalloc (quantized kernel tuning)");
    Check(cudaMemset(p, 0, std::max<size_t>(bytes, 16)), "cudaMemset (quantized kernel tuning)");
  }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// One way to run the convolution, timed against the others.
struct Candidate {
  enum class Kind { kCublasLt, kCutlassProduct, kCutlassConv } kind = Kind::kCublasLt;
  std::string name;  // the tactic log's
  std::string id;    // the timing cache's
  size_t workspace = 0;
  cublasLtMatmulAlgo_t algo{};  // kCublasLt
  int config = -1;              // kCutlassProduct, kCutlassConv
};

// The operands of one run.
struct Operands {
  const void* x = nullptr;
  const void* filter = nullptr;
  const float* alpha = nullptr;
  const float* bias = nullptr;
  const void* residual = nullptr;
  float beta = 0;
  void* y = nullptr;
};

CutlassQuantizedGemmArgs ProductArgs(const QuantizedConvShape& s, const Operands& o) {
  CutlassQuantizedGemmArgs a;
  a.operands = s.operands;
  a.pixels = s.n * s.h * s.w;
  a.channels = s.k;
  a.k = s.c;
  a.x = o.x;
  a.w = o.filter;
  a.alpha = o.alpha;
  a.bias = o.bias;
  a.c = o.residual;
  a.beta = o.beta;
  a.d = o.y;
  a.relu = s.relu;
  return a;
}

CutlassQuantizedConvArgs ConvArgs(const QuantizedConvShape& s, const Operands& o) {
  CutlassQuantizedConvArgs a;
  a.operands = s.operands;
  a.geometry = s;
  a.x = o.x;
  a.filter = o.filter;
  a.alpha = o.alpha;
  a.bias = o.bias;
  a.residual = o.residual;
  a.beta = o.beta;
  a.y = o.y;
  a.relu = s.relu;
  return a;
}

// The configurations of one CUTLASS kernel family that take the problem.
template <typename Args, typename NameFn, typename CanRunFn, typename WorkspaceFn>
void AddCutlassCandidates(std::vector<Candidate>& candidates, Candidate::Kind kind, const Args& args, int device,
                          int configs, NameFn name, CanRunFn can_run, WorkspaceFn workspace_bytes) {
  for (int config = 0; config < configs; ++config) {
    if (!can_run(config, args, device)) continue;
    Candidate c;
    c.kind = kind;
    c.name = c.id = name(args.operands, config);
    c.workspace = workspace_bytes(config, args, device);
    c.config = config;
    candidates.push_back(std::move(c));
  }
}

}  // namespace

std::string QuantizedConvShape::ToString() const {
  return fmt::format(
      "x[{},{},{},{}] w[{},{},{},{}] y[{},{},{},{}] pad[{},{},{},{}] stride[{},{}] dilation[{},{}] "
      "residual{} relu{} bias{} {}->{}+{}",
      n, h, w, c, k, r, s, c, n, p, q, k, pad_top, pad_left, pad_bottom, pad_right, stride_h, stride_w, dilation_h,
      dilation_w, residual, relu, bias, KernelStorageName(operands.input), KernelStorageName(operands.output),
      KernelStorageName(operands.residual));
}

struct QuantizedLibraryConv::Impl {
  int device = 0;
  ProductDims dims;
  cublasLtHandle_t handle = nullptr;
  LtOpDesc desc{&cublasLtMatmulDescDestroy};
  LtLayout a{&cublasLtMatrixLayoutDestroy}, b{&cublasLtMatrixLayoutDestroy}, d{&cublasLtMatrixLayoutDestroy};
  Candidate chosen;
  std::mutex mu;  // the descriptor's bias pointer is set per launch

  // cuBLASLt's candidates; none when it has no algorithm (its int8 kernels take multiples of 4,
  // and cuBLASLt 13 offers nothing for the per-channel scale without a residual).
  std::vector<Candidate> CublasLtCandidates(const QuantizedConvShape& s, const void* scratch_bias,
                                            std::string& refusal) {
    if (dims.m % 4 != 0 || dims.k % 4 != 0) {
      refusal = "cuBLASLt's int8 kernels take multiples of 4";
      return {};
    }
    handle = LtHandle();
    MakeDesc(desc, s);
    MakeLayout(a, dims.k, dims.m);
    MakeLayout(b, dims.k, dims.n);
    MakeLayout(d, dims.m, dims.n);
    if (s.bias)  // the heuristic may depend on the bias pointer's alignment
      Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &scratch_bias,
                                           sizeof(scratch_bias)),
            "set BIAS_POINTER");
    LtPreference pref(&cublasLtMatmulPreferenceDestroy);
    MakePreference(pref, kWorkspaceBytes, 16);  // Launch checks the operands' alignment
    std::vector<cublasLtMatmulHeuristicResult_t> results(kCandidates);
    int found = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
        handle, desc.object, a.object, b.object, d.object, d.object, pref.object, kCandidates, results.data(), &found);
    if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
      refusal = fmt::format("cuBLASLt has no int8 algorithm: {}",
                            status == CUBLAS_STATUS_SUCCESS ? "none found" : cublasLtGetStatusString(status));
      return {};
    }
    std::vector<Candidate> out;
    for (int i = 0; i < found; ++i) {
      Candidate c;
      c.kind = Candidate::Kind::kCublasLt;
      c.name = "cublasLt " + AlgoName(results[i].algo);
      c.id = AlgoHex(results[i].algo);
      c.workspace = results[i].workspaceSize;
      c.algo = results[i].algo;
      out.push_back(std::move(c));
    }
    return out;
  }

  // `repeats` runs of a candidate. Null on success, otherwise why it did not run.
  std::optional<std::string> Run(const Candidate& c, const QuantizedConvShape& s, const Operands& o, void* workspace,
                                 cudaStream_t stream, int repeats = 1) {
    switch (c.kind) {
      case Candidate::Kind::kCutlassProduct:
        if (const char* error =
                CutlassQuantizedGemmRun(c.config, ProductArgs(s, o), workspace, device, stream, repeats))
          return std::string(error);
        return std::nullopt;
      case Candidate::Kind::kCutlassConv:
        if (const char* error = CutlassQuantizedConvRun(c.config, ConvArgs(s, o), workspace, device, stream, repeats))
          return std::string(error);
        return std::nullopt;
      case Candidate::Kind::kCublasLt:
        break;
    }
    if (o.bias)
      Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &o.bias, sizeof(o.bias)),
            "set BIAS_POINTER");
    for (int r = 0; r < repeats; ++r) {
      const cublasStatus_t status = cublasLtMatmul(handle, desc.object, o.alpha, o.filter, a.object, o.x, b.object,
                                                   &o.beta, o.residual ? o.residual : o.y, d.object, o.y, d.object,
                                                   &c.algo, workspace, c.workspace, stream);
      if (status != CUBLAS_STATUS_SUCCESS) return std::string(cublasLtGetStatusString(status));
    }
    return std::nullopt;
  }
};

QuantizedLibraryConv::QuantizedLibraryConv(const QuantizedConvShape& shape)
    : shape_(shape), impl_(std::make_unique<Impl>()) {
  Impl& k = *impl_;
  const QuantizedConvShape& s = shape;
  for (int64_t v : {s.n, s.h, s.w, s.c, s.k, s.r, s.s, s.p, s.q})
    if (v <= 0 || v > INT32_MAX)
      throw Error(ErrorCode::kUnavailable, fmt::format("quantized convolution {}: unsupported sizes", s.ToString()));
  const int64_t x_elems = s.n * s.h * s.w * s.c, y_elems = s.n * s.p * s.q * s.k, w_elems = s.k * s.r * s.s * s.c;
  if (x_elems > INT32_MAX || y_elems > INT32_MAX || w_elems > INT32_MAX)
    throw Error(ErrorCode::kUnavailable, fmt::format("quantized convolution {}: tensors too large", s.ToString()));
  Check(cudaGetDevice(&k.device), "cudaGetDevice");
  k.dims = {s.k, s.n * s.h * s.w, s.c};
  // Scratch operands of the real sizes.
  DeviceBuffer bias(static_cast<size_t>(s.k) * sizeof(float)), alpha(static_cast<size_t>(s.k) * sizeof(float));
  const auto bytes = [&](KernelStorage storage) {
    return static_cast<size_t>(y_elems) * (storage == KernelStorage::kFloat16 ? 2 : 1);
  };
  DeviceBuffer x(static_cast<size_t>(x_elems)), filter(static_cast<size_t>(w_elems)), y(bytes(s.operands.output)),
      residual(s.residual ? bytes(s.operands.residual) : 0);
  Operands scratch;
  scratch.x = x.p;
  scratch.filter = filter.p;
  scratch.alpha = static_cast<const float*>(alpha.p);
  scratch.bias = s.bias ? static_cast<const float*>(bias.p) : nullptr;
  scratch.residual = s.residual ? residual.p : nullptr;
  scratch.beta = s.residual ? 0.5f : 0.0f;
  scratch.y = y.p;

  std::vector<Candidate> candidates;
  const bool int8 = s.operands == QuantizedOperands{KernelStorage::kInt8, KernelStorage::kInt8, KernelStorage::kInt8};
  std::string cublaslt_refusal = int8 ? "not a 1x1 stride-1 unpadded convolution" : "cuBLASLt's are int8 only here";
  if (s.IsProduct()) {
    if (int8) candidates = k.CublasLtCandidates(s, bias.p, cublaslt_refusal);
    AddCutlassCandidates(candidates, Candidate::Kind::kCutlassProduct, ProductArgs(s, scratch), k.device,
                         CutlassQuantizedGemmConfigs(s.operands), CutlassQuantizedGemmConfigName,
                         CutlassQuantizedGemmCanRun, CutlassQuantizedGemmWorkspaceBytes);
  }
  AddCutlassCandidates(candidates, Candidate::Kind::kCutlassConv, ConvArgs(s, scratch), k.device,
                       CutlassQuantizedConvConfigs(s.operands), CutlassQuantizedConvConfigName,
                       CutlassQuantizedConvCanRun, CutlassQuantizedConvWorkspaceBytes);
  if (candidates.empty())
    throw Error(
        ErrorCode::kUnavailable,
        fmt::format("no library quantized kernel for {}: {}; {}", s.ToString(), cublaslt_refusal,
                    CutlassQuantizedConvConfigs(s.operands) > 0 ? "CUTLASS's sm90 kernels do not take it on this device"
                                                                : "this build has no CUTLASS kernels"));
  // Every candidate is timed here (its time is what the convolution compares with cuDNN's plan);
  // the timing cache keeps the one chosen, taken again if it is still offered.
  const std::string key = fmt::format("quantized library conv | {} | {} | {} | ws{} align16", LibrariesKey(),
                                      TacticDeviceKey(), s.ToString(), kWorkspaceBytes);
  size_t most = 0;
  for (const Candidate& c : candidates) most = std::max(most, c.workspace);
  std::optional<DeviceBuffer> workspace;
  if (most > 0) workspace.emplace(most);
  cudaStream_t stream = nullptr;
  Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate (quantized kernel tuning)");
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
    void* ws = workspace ? workspace->p : nullptr;
    if (k.Run(c, s, scratch, ws, stream)) {  // a candidate that cannot run is skipped
      cudaGetLastError();
      continue;
    }
    Check(cudaEventRecord(start, stream), "cudaEventRecord");
    const bool ok = !k.Run(c, s, scratch, ws, stream, kTimedRuns);
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
    throw Error(ErrorCode::kUnavailable,
                fmt::format("none of the {} library quantized kernels for {} ran", candidates.size(), s.ToString()));
  if (!cached) {
    LogTacticTimings(key, timings, *best);
    ProcessTimingCache().Record(key, candidates[*best].id);
  }
  k.chosen = candidates[*best];
  microseconds_ = timings[*best].microseconds;
}

QuantizedLibraryConv::~QuantizedLibraryConv() = default;

std::string QuantizedLibraryConv::LibrariesKey() {
  std::string cutlass;
  for (const QuantizedOperands& o : kLibraryOperands)
    cutlass +=
        fmt::format(" {}->{}+{} products {} convs {}", KernelStorageName(o.input), KernelStorageName(o.output),
                    KernelStorageName(o.residual), CutlassQuantizedGemmConfigs(o), CutlassQuantizedConvConfigs(o));
  return fmt::format("cublasLt {} cutlass{}", cublasLtGetVersion(), cutlass);
}

std::string QuantizedLibraryConv::library() const {
  return impl_->chosen.kind == Candidate::Kind::kCublasLt ? "cublasLt" : "cutlass";
}

std::string QuantizedLibraryConv::kernel() const { return impl_->chosen.name; }

void QuantizedLibraryConv::Launch(const void* x, const void* filter, const float* alpha, const float* bias,
                                  const void* residual, float beta, void* y, cudaStream_t stream) const {
  Impl& k = *impl_;
  if (shape_.residual != (residual != nullptr) || shape_.bias != (bias != nullptr))
    throw Error(ErrorCode::kInternal, "quantized convolution: operands do not match the plan");
  for (const void* p : {x, filter, static_cast<const void*>(alpha), residual, static_cast<const void*>(y),
                        static_cast<const void*>(bias)})
    if (p && Alignment(p) < 16)
      throw Error(ErrorCode::kInternal, "quantized convolution: operands must be 16-byte aligned");
  Operands o;
  o.x = x;
  o.filter = filter;
  o.alpha = alpha;
  o.bias = bias;
  o.residual = residual;
  o.beta = residual ? beta : 0.0f;
  o.y = y;
  std::lock_guard<std::mutex> lock(k.mu);
  void* workspace = nullptr;
  if (k.chosen.workspace > 0)
    Check(cudaMallocAsync(&workspace, k.chosen.workspace, stream), "cudaMallocAsync (quantized kernel workspace)");
  const std::optional<std::string> error = k.Run(k.chosen, shape_, o, workspace, stream);
  if (workspace) cudaFreeAsync(workspace, stream);
  if (error) throw Error(ErrorCode::kInternal, fmt::format("quantized convolution ({}): {}", k.chosen.name, *error));
}

}  // namespace kiln::backend::cuda
