#include "backend/cuda/matmul_kernel.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "backend/cuda/cublaslt_util.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/timing_cache.h"

namespace kiln::backend::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

bool GpuMatMulDType(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat16 || d == DType::kBFloat16 || d == DType::kFloat64;
}

cudaDataType_t DataType(DType d) {
  switch (d) {
    case DType::kFloat32:
      return CUDA_R_32F;
    case DType::kFloat16:
      return CUDA_R_16F;
    case DType::kBFloat16:
      return CUDA_R_16BF;
    case DType::kFloat64:
      return CUDA_R_64F;
    default:
      throw Error(ErrorCode::kInternal, fmt::format("cuBLASLt: no data type for {}", DTypeName(d)));
  }
}

using Layout = LtLayout;
using OpDesc = LtOpDesc;
using Preference = LtPreference;

}  // namespace

std::optional<std::string> MatMulUnsupported(const ir::Graph& graph, const ir::Node& node) {
  const DType dtype = graph.value(node.inputs[0]).dtype;
  if (!GpuMatMulDType(dtype))
    return fmt::format("cuBLASLt matrix products take float32/float16/bfloat16/float64, not {}", DTypeName(dtype));
  if (graph.value(node.outputs[0]).dtype != dtype) return "the product's dtype differs from its operands'";
  if (node.op == "BatchMatMul") {
    const ir::SymShape& x = graph.value(node.inputs[0]).shape;
    const ir::SymShape& y = graph.value(node.inputs[1]).shape;
    if (!x.rank_known || !y.rank_known) return "operand ranks are unknown";
    // One batch layout for cuBLASLt's strided batches: equal batch dims, or one side without batch.
    std::vector<ir::Dim> bx(x.dims.begin(), x.dims.end() - 2), by(y.dims.begin(), y.dims.end() - 2);
    auto all_ones = [](const std::vector<ir::Dim>& b) {
      return std::all_of(b.begin(), b.end(), [](ir::Dim d) { return d == 1; });
    };
    if (!(bx == by || all_ones(bx) || all_ones(by))) return "batch dims that are neither equal nor absent on one side";
  }
  return std::nullopt;
}

struct MatMulKernel::Plan {
  Layout a{&cublasLtMatrixLayoutDestroy}, b{&cublasLtMatrixLayoutDestroy}, d{&cublasLtMatrixLayoutDestroy};
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

MatMulKernel::MatMulKernel(const ir::Node& node, DType dtype, bool fused_bias, bool bias_per_batch)
    : dtype_(dtype), bias_per_batch_(bias_per_batch) {
  if (node.op == "MatMul") {
    transpose_a_ = node.attrs.GetOr<bool>("transpose_a", false);
    transpose_b_ = node.attrs.GetOr<bool>("transpose_b", false);
    has_bias_ = node.inputs.size() > 2;
  } else {
    transpose_a_ = node.attrs.GetOr<bool>("adj_x", false);
    transpose_b_ = node.attrs.GetOr<bool>("adj_y", false);
  }
  has_bias_ = has_bias_ || fused_bias;
  handle_ = LtHandle();
}

MatMulKernel::~MatMulKernel() = default;

namespace {

// bias_batch_stride: elements between the bias vectors of consecutive batches (0: one for all).
void MakeOpDesc(OpDesc& desc, DType dtype, bool transpose_a, bool transpose_b, bool bias, int64_t bias_batch_stride) {
  const bool f64 = dtype == DType::kFloat64;
  Check(cublasLtMatmulDescCreate(&desc.object, f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F,
                                 f64 ? CUDA_R_64F : CUDA_R_32F),
        "cublasLtMatmulDescCreate");
  // Column-major view: D^T (n x m) = op(b) op(a); cuBLASLt's A is our b.
  const cublasOperation_t ta = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "set TRANSA");
  Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "set TRANSB");
  if (bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
          "set EPILOGUE");
    if (bias_batch_stride > 0)
      Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bias_batch_stride,
                                           sizeof(bias_batch_stride)),
            "set BIAS_BATCH_STRIDE");
  }
}

void MakeLayout(Layout& layout, DType dtype, int64_t rows, int64_t cols, int64_t batch, int64_t stride) {
  Check(cublasLtMatrixLayoutCreate(&layout.object, DataType(dtype), static_cast<uint64_t>(rows),
                                   static_cast<uint64_t>(cols), rows),
        "cublasLtMatrixLayoutCreate");
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    Check(cublasLtMatrixLayoutSetAttribute(layout.object, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
          "set BATCH_COUNT");
    Check(cublasLtMatrixLayoutSetAttribute(layout.object, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                           sizeof(stride)),
          "set STRIDED_BATCH_OFFSET");
  }
}

}  // namespace

const MatMulKernel::Plan& MatMulKernel::PlanFor(const Problem& p) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = plans_[p];
  if (slot) return *slot;
  auto plan = std::make_unique<Plan>();
  // Row-major [rows, cols] is column-major [cols, rows] with leading dim cols.
  if (transpose_b_)
    MakeLayout(plan->b, dtype_, p.k, p.n, p.batch, p.stride_b);
  else
    MakeLayout(plan->b, dtype_, p.n, p.k, p.batch, p.stride_b);
  if (transpose_a_)
    MakeLayout(plan->a, dtype_, p.m, p.k, p.batch, p.stride_a);
  else
    MakeLayout(plan->a, dtype_, p.k, p.m, p.batch, p.stride_a);
  MakeLayout(plan->d, dtype_, p.n, p.m, p.batch, p.n * p.m);
  OpDesc desc(&cublasLtMatmulDescDestroy);
  MakeOpDesc(desc, dtype_, transpose_a_, transpose_b_, has_bias_, BiasBatchStride(p));
  Preference pref(&cublasLtMatmulPreferenceDestroy);
  MakePreference(pref, kWorkspaceBytes, 16);  // Launch checks the operands' alignment
  std::vector<cublasLtMatmulHeuristicResult_t> results(kTunedMatMulCandidates);
  int found = 0;
  Check(cublasLtMatmulAlgoGetHeuristic(handle_, desc.object, plan->b.object, plan->a.object, plan->d.object,
                                       plan->d.object, pref.object, kTunedMatMulCandidates, results.data(), &found),
        "cublasLtMatmulAlgoGetHeuristic");
  if (found == 0)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("cuBLASLt has no algorithm for a {} product [{}x{}]x[{}x{}] (batch {})", DTypeName(dtype_),
                            p.m, p.k, p.k, p.n, p.batch));
  results.resize(static_cast<size_t>(found));
  size_t best = 0;
  if (found > 1) {
    // The timing cache names the algorithm by its bytes; it is taken only if the heuristic
    // offers it again.
    TimingCache& cache = ProcessTimingCache();
    const std::string key = TacticKey(p);
    std::optional<size_t> cached;
    if (const auto choice = cache.Find(key))
      for (size_t i = 0; i < results.size() && !cached; ++i)
        if (AlgoHex(results[i].algo) == *choice) cached = i;
    best = cached ? *cached : Fastest(p, *plan, desc.object, results);
    if (!cached) cache.Record(key, AlgoHex(results[best].algo));
  }
  plan->algo = results[best].algo;
  plan->workspace = results[best].workspaceSize;
  ++plans_tuned_;
  slot = std::move(plan);
  return *slot;
}

size_t MatMulKernel::Fastest(const Problem& p, const Plan& plan, cublasLtMatmulDesc_t desc,
                             const std::vector<cublasLtMatmulHeuristicResult_t>& candidates) const {
  // Scratch operands of the problem's sizes (zeros: timing must not meet denormals or NaNs), on a
  // stream of its own; each candidate runs once to warm up, then kTimedRuns times between events.
  struct Scratch {
    void* p = nullptr;
    ~Scratch() {
      if (p) cudaFree(p);
    }
  } a, b, d, bias, workspace;
  const size_t elem = DTypeSize(dtype_);
  const int64_t batch_a = p.stride_a > 0 ? p.batch : 1, batch_b = p.stride_b > 0 ? p.batch : 1;
  auto alloc = [&](Scratch& s, size_t bytes) {
    Check(cudaMalloc(&s.p, std::max<size_t>(bytes, 16)), "cudaMalloc (cuBLASLt tuning)");
    Check(cudaMemset(s.p, 0, std::max<size_t>(bytes, 16)), "cudaMemset (cuBLASLt tuning)");
  };
  alloc(a, static_cast<size_t>(p.m * p.k * batch_a) * elem);
  alloc(b, static_cast<size_t>(p.k * p.n * batch_b) * elem);
  alloc(d, static_cast<size_t>(p.m * p.n * p.batch) * elem);
  size_t most = 0;
  for (const auto& c : candidates) most = std::max(most, c.workspaceSize);
  if (most > 0) alloc(workspace, most);
  if (has_bias_) {
    alloc(bias, static_cast<size_t>(p.n * (bias_per_batch_ ? p.batch : 1)) * elem);
    const void* pointer = bias.p;
    Check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &pointer, sizeof(pointer)),
          "set BIAS_POINTER (tuning)");
  }
  cudaStream_t stream = nullptr;
  Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate (cuBLASLt tuning)");
  cudaEvent_t start = nullptr, stop = nullptr;
  Check(cudaEventCreate(&start), "cudaEventCreate (cuBLASLt tuning)");
  Check(cudaEventCreate(&stop), "cudaEventCreate (cuBLASLt tuning)");
  const float one32 = 1.0f, zero32 = 0.0f;
  const double one64 = 1.0, zero64 = 0.0;
  const bool f64 = dtype_ == DType::kFloat64;
  const void* alpha = f64 ? static_cast<const void*>(&one64) : &one32;
  const void* beta = f64 ? static_cast<const void*>(&zero64) : &zero32;
  constexpr int kTimedRuns = 5;
  size_t best = 0;
  float best_ms = 0;
  bool timed_one = false;
  std::vector<TacticTiming> timings(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    timings[i].candidate = AlgoName(candidates[i].algo);
    auto run = [&] {
      return cublasLtMatmul(handle_, desc, alpha, b.p, plan.b.object, a.p, plan.a.object, beta, d.p, plan.d.object, d.p,
                            plan.d.object, &candidates[i].algo, workspace.p, candidates[i].workspaceSize, stream);
    };
    if (run() != CUBLAS_STATUS_SUCCESS) continue;  // a candidate that cannot run is skipped
    Check(cudaEventRecord(start, stream), "cudaEventRecord (cuBLASLt tuning)");
    bool ok = true;
    for (int r = 0; r < kTimedRuns && ok; ++r) ok = run() == CUBLAS_STATUS_SUCCESS;
    Check(cudaEventRecord(stop, stream), "cudaEventRecord (cuBLASLt tuning)");
    Check(cudaEventSynchronize(stop), "cudaEventSynchronize (cuBLASLt tuning)");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime (cuBLASLt tuning)");
    if (ok) timings[i].microseconds = 1000.0 * ms / kTimedRuns;
    if (ok && (!timed_one || ms < best_ms)) {
      best = i;
      best_ms = ms;
      timed_one = true;
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  LogTacticTimings(TacticKey(p), timings, best);
  return best;
}

std::string MatMulKernel::TacticKey(const Problem& p) const {
  // Everything the heuristic query depends on: the library, the device, the descriptor and the
  // layouts (alignment and workspace preferences are constants of this file).
  return fmt::format("cublasLt {} | {} | {} ta{} tb{} bias{}/{} | m{} n{} k{} batch{} sa{} sb{} | ws{} align16",
                     cublasLtGetVersion(), TacticDeviceKey(), DTypeName(dtype_), transpose_a_, transpose_b_, has_bias_,
                     BiasBatchStride(p), p.m, p.n, p.k, p.batch, p.stride_a, p.stride_b, kWorkspaceBytes);
}

void MatMulKernel::Prepare(const Shape& a, const Shape& b, const Shape& out) const {
  const Problem p = ProblemFor(a, b, out);
  if (p.m * p.n * p.batch > 0) PlanFor(p);
}

int MatMulKernel::plans_tuned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plans_tuned_;
}

MatMulKernel::Problem MatMulKernel::ProblemFor(const Shape& a, const Shape& b, const Shape& out) const {
  const int ra = static_cast<int>(a.size()), rb = static_cast<int>(b.size()), ro = static_cast<int>(out.size());
  auto at = [](const Shape& s, int i) { return s[static_cast<size_t>(i)]; };
  Problem p{};
  p.m = at(out, ro - 2);
  p.n = at(out, ro - 1);
  p.k = transpose_a_ ? at(a, ra - 2) : at(a, ra - 1);
  const int64_t batch_a = NumElements(a) / std::max<int64_t>(1, at(a, ra - 2) * at(a, ra - 1));
  const int64_t batch_b = NumElements(b) / std::max<int64_t>(1, at(b, rb - 2) * at(b, rb - 1));
  p.batch = std::max(batch_a, batch_b);
  p.stride_a = batch_a > 1 ? p.m * p.k : 0;
  p.stride_b = batch_b > 1 ? p.k * p.n : 0;
  if (batch_b == 1 && batch_a > 1 && !transpose_a_) {
    // A shared right operand (a weight): the batches of a stack into one taller product, which
    // runs far better than many short ones ([batch*m, k] x [k, n]; both layouts are contiguous).
    p.m *= batch_a;
    p.batch = 1;
    p.stride_a = 0;
  }
  return p;
}

void MatMulKernel::Launch(std::span<const Tensor> inputs, Tensor& out, cudaStream_t stream) const {
  const Tensor& a = inputs[0];
  const Tensor& b = inputs[1];
  const Problem p = ProblemFor(a.shape(), b.shape(), out.shape());
  if (out.num_elements() == 0) return;
  for (const Tensor* t : {&a, &b, static_cast<const Tensor*>(&out)})
    if (Alignment(t->raw_data()) < 16) throw Error(ErrorCode::kInternal, "cuBLASLt operands must be 16-byte aligned");
  const Plan& plan = PlanFor(p);

  OpDesc desc(&cublasLtMatmulDescDestroy);
  MakeOpDesc(desc, dtype_, transpose_a_, transpose_b_, has_bias_, BiasBatchStride(p));
  if (has_bias_) {
    if (inputs.size() < 3 || inputs[2].num_elements() < p.n * (bias_per_batch_ ? p.batch : 1))
      throw Error(ErrorCode::kInternal, "matrix product: the bias has fewer elements than the epilogue reads");
    const void* bias = inputs[2].raw_data();
    Check(cublasLtMatmulDescSetAttribute(desc.object, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
          "set BIAS_POINTER");
  }
  void* workspace = nullptr;
  if (plan.workspace > 0)
    Check(cudaMallocAsync(&workspace, plan.workspace, stream), "cudaMallocAsync (cuBLASLt workspace)");
  const float alpha32 = 1.0f, beta32 = 0.0f;
  const double alpha64 = 1.0, beta64 = 0.0;
  const bool f64 = dtype_ == DType::kFloat64;
  const void* alpha = f64 ? static_cast<const void*>(&alpha64) : &alpha32;
  const void* beta = f64 ? static_cast<const void*>(&beta64) : &beta32;
  const cublasStatus_t status = cublasLtMatmul(handle_, desc.object, alpha, b.raw_data(), plan.b.object, a.raw_data(),
                                               plan.a.object, beta, out.raw_data(), plan.d.object, out.raw_data(),
                                               plan.d.object, &plan.algo, workspace, plan.workspace, stream);
  if (workspace) cudaFreeAsync(workspace, stream);
  Check(status, "cublasLtMatmul");
}

}  // namespace kiln::backend::cuda
