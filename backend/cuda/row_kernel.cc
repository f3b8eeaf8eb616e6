#include "backend/cuda/row_kernel.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/eltwise_codegen.h"

namespace kiln::backend::cuda {
namespace {

// Kernel kinds, as the generated source numbers them.
int KindOf(const std::string& op) {
  static const std::vector<std::string> kinds = {"ReduceSum", "ReduceMean",          "ReduceProd", "ReduceMax",
                                                 "ReduceMin", "ReduceEuclideanNorm", "Softmax",    "LogSoftmax"};
  auto it = std::find(kinds.begin(), kinds.end(), op);
  return it == kinds.end() ? -1 : static_cast<int>(it - kinds.begin());
}

// Body shared by both kernels: T (storage), A (accumulation), kKind; Init/Step/Finish reduce.
constexpr const char* kRowSource = R"(
typedef __KILN_T__ T;
typedef __KILN_A__ A;
constexpr int kKind = __KILN_KIND__;
constexpr bool kSoftmax = kKind >= 6;

__device__ __forceinline__ A Inf() {
  if (sizeof(A) == 8) return A(__longlong_as_double(0x7ff0000000000000LL));
  return A(__int_as_float(0x7f800000));
}
__device__ __forceinline__ A LoadA(const T& v) { return A(ew::Load<T>(v)); }
__device__ __forceinline__ T StoreA(A v) { return ew::Store<T>(static_cast<ew::ComputeT<T>>(v)); }

__device__ __forceinline__ A Init() {
  if (kKind == 2) return A(1);
  if (kKind == 3) return -Inf();
  if (kKind == 4) return Inf();
  return A(0);
}
__device__ __forceinline__ A Combine(A a, A v) {
  switch (kKind) {
    case 2: return a * v;
    case 3: return (v != v || a != a) ? (a != a ? a : v) : (v > a ? v : a);  // NaN propagates
    case 4: return (v != v || a != a) ? (a != a ? a : v) : (v < a ? v : a);
    case 5: return a + v * v;
    default: return a + v;
  }
}
// Merges two partial accumulators (EuclideanNorm's partial sums of squares add).
__device__ __forceinline__ A Merge(A a, A b) {
  switch (kKind) {
    case 2: return a * b;
    case 3:
    case 4: return Combine(a, b);
    default: return a + b;
  }
}
__device__ __forceinline__ A Finish(A a, long long n) {
  if (kKind == 1) return a / A(n);
  if (kKind == 5) return sqrt(a);
  return a;
}
__device__ __forceinline__ A CombineMax(A a, A v) { return (v != v || a != a) ? (a != a ? a : v) : (v > a ? v : a); }

// Reduces `v` across the block (blockDim.x a multiple of 32, at most 1024) with `op`, whose
// identity is `identity` (it fills the lanes of warp 0 beyond the number of warps).
template <typename Op>
__device__ A BlockReduce(A v, Op op, A identity) {
  __shared__ A partial[32];
  for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  v = threadIdx.x < warps ? partial[threadIdx.x] : identity;
  if (warp == 0)
    for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (threadIdx.x == 0) partial[0] = v;
  __syncthreads();
  return partial[0];
}

// inner == 1: one block per row of n contiguous elements.
extern "C" __global__ void kiln_rows(const T* __restrict__ in, T* __restrict__ out, long long outer, long long n) {
  for (long long r = blockIdx.x; r < outer; r += gridDim.x) {
    const T* x = in + r * n;
    if (!kSoftmax) {
      A a = Init();
      for (long long j = threadIdx.x; j < n; j += blockDim.x) a = Combine(a, LoadA(x[j]));
      a = BlockReduce(a, [](A p, A q) { return Merge(p, q); }, Init());
      if (threadIdx.x == 0) out[r] = StoreA(Finish(a, n));
    } else {
      A m = -Inf();
      for (long long j = threadIdx.x; j < n; j += blockDim.x) m = CombineMax(m, LoadA(x[j]));
      m = BlockReduce(m, [](A p, A q) { return CombineMax(p, q); }, -Inf());
      A s = A(0);
      for (long long j = threadIdx.x; j < n; j += blockDim.x) s += exp(LoadA(x[j]) - m);
      s = BlockReduce(s, [](A p, A q) { return p + q; }, A(0));
      T* y = out + r * n;
      if (kKind == 6) {
        for (long long j = threadIdx.x; j < n; j += blockDim.x) y[j] = StoreA(exp(LoadA(x[j]) - m) / s);
      } else {
        const A ls = log(s);
        for (long long j = threadIdx.x; j < n; j += blockDim.x) y[j] = StoreA(LoadA(x[j]) - m - ls);
      }
    }
  }
}

template <typename Op>
__device__ __forceinline__ A WarpReduce(A v, Op op) {
  for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// inner == 1 and n <= 32 * kPerLane: one warp per row. A softmax keeps its row in registers
// between the passes, so the row is read once and written once.
template <int kPerLane>
__device__ __forceinline__ void WarpRows(const T* __restrict__ in, T* __restrict__ out, long long outer, long long n) {
  const int lane = threadIdx.x % 32;
  const long long warps = blockDim.x / 32;
  for (long long r = blockIdx.x * warps + threadIdx.x / 32; r < outer; r += (long long)gridDim.x * warps) {
    const T* x = in + r * n;
    if (!kSoftmax) {
      A a = Init();
      for (long long j = lane; j < n; j += 32) a = Combine(a, LoadA(x[j]));
      a = WarpReduce(a, [](A p, A q) { return Merge(p, q); });
      if (lane == 0) out[r] = StoreA(Finish(a, n));
      continue;
    }
    A v[kPerLane];
    A m = -Inf();
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const long long j = k * 32 + lane;
      v[k] = j < n ? LoadA(x[j]) : -Inf();
      m = CombineMax(m, v[k]);
    }
    m = WarpReduce(m, [](A p, A q) { return CombineMax(p, q); });
    A s = A(0);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      v[k] -= m;
      if (k * 32 + lane < n) s += exp(v[k]);
    }
    s = WarpReduce(s, [](A p, A q) { return p + q; });
    T* y = out + r * n;
    const A ls = log(s);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const long long j = k * 32 + lane;
      if (j < n) y[j] = StoreA(kKind == 6 ? exp(v[k]) / s : v[k] - ls);
    }
  }
}
extern "C" __global__ void kiln_rows_warp4(const T* __restrict__ in, T* __restrict__ out, long long outer, long long n) {
  WarpRows<4>(in, out, outer, n);
}
extern "C" __global__ void kiln_rows_warp32(const T* __restrict__ in, T* __restrict__ out, long long outer, long long n) {
  WarpRows<32>(in, out, outer, n);
}

// inner > 1: one thread per (outer, inner) column, walking n with stride inner.
extern "C" __global__ void kiln_columns(const T* __restrict__ in, T* __restrict__ out, long long outer, long long n,
                                        long long inner) {
  const long long columns = outer * inner;
  for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < columns; c += (long long)gridDim.x * blockDim.x) {
    const long long o = c / inner, i = c - o * inner;
    const T* x = in + o * n * inner + i;
    if (!kSoftmax) {
      A a = Init();
      for (long long j = 0; j < n; ++j) a = Combine(a, LoadA(x[j * inner]));
      out[c] = StoreA(Finish(a, n));
    } else {
      A m = -Inf();
      for (long long j = 0; j < n; ++j) m = CombineMax(m, LoadA(x[j * inner]));
      A s = A(0);
      for (long long j = 0; j < n; ++j) s += exp(LoadA(x[j * inner]) - m);
      T* y = out + o * n * inner + i;
      const A ls = log(s);
      for (long long j = 0; j < n; ++j)
        y[j * inner] = kKind == 6 ? StoreA(exp(LoadA(x[j * inner]) - m) / s) : StoreA(LoadA(x[j * inner]) - m - ls);
    }
  }
}
)";

// The reduced axes of a node, normalized to [0, rank): kInvalidArgument when out of range.
std::vector<int64_t> ReducedAxes(const std::string& op, const std::vector<int64_t>& axes, int rank) {
  std::set<int64_t> set;
  for (int64_t a : axes) {
    const int64_t n = a < 0 ? a + rank : a;
    if (n < 0 || n >= rank)
      throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: axis {} is out of range for rank {}", op, a, rank));
    set.insert(n);
  }
  return {set.begin(), set.end()};
}

std::vector<int64_t> NodeAxes(const ir::Graph& graph, const ir::Node& node) {
  if (node.op == "Softmax" || node.op == "LogSoftmax") return {node.attrs.GetOr<int64_t>("axis", -1)};
  const Tensor* axes = graph.ConstantOf(node.inputs.at(1));
  if (!axes)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}): the axes are not constant", node.name, node.op));
  return axes->ToInt64Vector();
}

}  // namespace

bool IsRowOp(const std::string& op) { return KindOf(op) >= 0; }

std::optional<std::string> RowOpUnsupported(const ir::Graph& graph, const ir::Node& node) {
  const DType dtype = graph.value(node.inputs[0]).dtype;
  if (!IsGpuFloat(dtype)) return fmt::format("GPU reductions take floating-point dtypes, not {}", DTypeName(dtype));
  const ir::SymShape& shape = graph.value(node.inputs[0]).shape;
  if (!shape.rank_known) return "the input rank is unknown";
  if (node.inputs.size() > 1 && !graph.ConstantOf(node.inputs[1])) return "the reduction axes are computed";
  std::vector<int64_t> axes;
  try {
    axes = ReducedAxes(node.op, NodeAxes(graph, node), shape.rank());
  } catch (const Error& e) {
    return e.what();
  }
  if (axes.empty()) return "no reduction axes";
  if (axes.back() - axes.front() + 1 != static_cast<int64_t>(axes.size()))
    return "the reduced axes are not one contiguous range";
  return std::nullopt;
}

std::string RowKernelSource(const std::string& op, DType dtype) {
  if (!IsRowOp(op) || !IsGpuFloat(dtype))
    throw Error(ErrorCode::kInternal, fmt::format("no row kernel for {} on {}", op, DTypeName(dtype)));
  std::string body = ReplaceAll(kRowSource, "__KILN_T__", CudaTypeName(dtype));
  body = ReplaceAll(body, "__KILN_A__", dtype == DType::kFloat64 ? "double" : "float");
  body = ReplaceAll(body, "__KILN_KIND__", std::to_string(KindOf(op)));
  return KernelPrologue() + body;
}

RowKernel::RowKernel(const ir::Graph& graph, const ir::Node& node, GpuArch arch)
    : op_(node.op), axes_(NodeAxes(graph, node)) {
  module_ = CompiledModule(RowKernelSource(op_, graph.value(node.inputs[0]).dtype), "kiln_" + op_, arch);
  rows_ = module_->Kernel("kiln_rows");
  rows_warp4_ = module_->Kernel("kiln_rows_warp4");
  rows_warp32_ = module_->Kernel("kiln_rows_warp32");
  columns_ = module_->Kernel("kiln_columns");
}

void RowKernel::Launch(const Tensor& in, Tensor& out, cudaStream_t stream) const {
  const std::vector<int64_t> axes = ReducedAxes(op_, axes_, in.rank());
  long long outer = 1, n = 1, inner = 1;
  for (int d = 0; d < in.rank(); ++d) {
    if (d < axes.front())
      outer *= in.dim(d);
    else if (d <= axes.back())
      n *= in.dim(d);
    else
      inner *= in.dim(d);
  }
  if (out.num_elements() == 0) return;
  const void* x = in.raw_data();
  void* y = out.raw_data();
  if (inner == 1 && n <= 1024) {
    // A warp per row, eight rows per block.
    void* args[] = {&x, &y, &outer, &n};
    const cudaKernel_t kernel = n <= 128 ? rows_warp4_ : rows_warp32_;
    Check(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(GridFor(outer, 8)), dim3(256), args, 0, stream),
          "cudaLaunchKernel (rows, a warp each)");
  } else if (inner == 1) {
    void* args[] = {&x, &y, &outer, &n};
    const unsigned blocks = GridFor(outer, 1);
    const unsigned threads = 1024;  // rows longer than 1024
    Check(cudaLaunchKernel(reinterpret_cast<const void*>(rows_), dim3(blocks), dim3(threads), args, 0, stream),
          "cudaLaunchKernel (rows)");
  } else {
    void* args[] = {&x, &y, &outer, &n, &inner};
    const long long columns = outer * inner;
    const unsigned blocks = GridFor(columns, 256);
    Check(cudaLaunchKernel(reinterpret_cast<const void*>(columns_), dim3(blocks), dim3(256), args, 0, stream),
          "cudaLaunchKernel (columns)");
  }
}

}  // namespace kiln::backend::cuda
