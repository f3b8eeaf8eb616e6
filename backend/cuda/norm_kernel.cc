#include "backend/cuda/norm_kernel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/eltwise_codegen.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::backend::cuda {
namespace {

constexpr const char* kLayerNormSource = R"(
typedef __KILN_T__ T;
typedef __KILN_A__ A;

__device__ __forceinline__ A LoadA(const T& v) { return A(ew::Load<T>(v)); }
__device__ __forceinline__ T StoreA(A v) { return ew::Store<T>(static_cast<ew::ComputeT<T>>(v)); }
// Element j of row r: the input, plus the residual when there is one.
__device__ __forceinline__ A Element(const T* __restrict__ x, const T* __restrict__ res, long long at) {
  return res ? LoadA(x[at]) + LoadA(res[at]) : LoadA(x[at]);
}
__device__ __forceinline__ A Affine(A normalized, const T* __restrict__ scale, const T* __restrict__ bias, long long j) {
  if (scale) normalized *= LoadA(scale[j]);
  if (bias) normalized += LoadA(bias[j]);
  return normalized;
}
__device__ __forceinline__ A WarpSum(A v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One warp per row of n <= 32 * kPerLane elements, kept in registers between the passes.
template <int kPerLane>
__device__ __forceinline__ void WarpRows(const T* __restrict__ x, const T* __restrict__ res, const T* __restrict__ scale,
                                         const T* __restrict__ bias, T* __restrict__ y, long long rows, long long n,
                                         A eps) {
  const int lane = threadIdx.x % 32;
  const long long warps = blockDim.x / 32;
  for (long long r = blockIdx.x * warps + threadIdx.x / 32; r < rows; r += (long long)gridDim.x * warps) {
    const long long base = r * n;
    A v[kPerLane];
    A sum = A(0);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const long long j = k * 32 + lane;
      v[k] = j < n ? Element(x, res, base + j) : A(0);
      sum += v[k];
    }
    const A mean = WarpSum(sum) / A(n);
    A sq = A(0);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      v[k] -= mean;
      if (k * 32 + lane < n) sq += v[k] * v[k];
    }
    const A inv = A(1) / sqrt(WarpSum(sq) / A(n) + eps);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const long long j = k * 32 + lane;
      if (j < n) y[base + j] = StoreA(Affine(v[k] * inv, scale, bias, j));
    }
  }
}
#define KILN_WARP_ROWS(K)                                                                                         \
  extern "C" __global__ void kiln_layer_norm_warp##K(const T* __restrict__ x, const T* __restrict__ res,        \
                                                     const T* __restrict__ scale, const T* __restrict__ bias,   \
                                                     T* __restrict__ y, long long rows, long long n, A eps) {   \
    WarpRows<K>(x, res, scale, bias, y, rows, n, eps);                                                          \
  }
KILN_WARP_ROWS(4)
KILN_WARP_ROWS(8)
KILN_WARP_ROWS(16)
KILN_WARP_ROWS(32)

// The same with 16-byte loads and stores: n == 32 * kVecs * kV (kV elements per vector), every
// pointer 16-byte aligned. Lane l reads vectors l, l + 32, ... of the row.
constexpr int kV = 16 / int(sizeof(T));
struct alignas(16) Vec {
  T e[kV];
};
template <int kVecs>
__device__ __forceinline__ void WarpRowsVec(const T* __restrict__ x, const T* __restrict__ res,
                                            const T* __restrict__ scale, const T* __restrict__ bias,
                                            T* __restrict__ y, long long rows, long long n, A eps) {
  const int lane = threadIdx.x % 32;
  const long long warps = blockDim.x / 32;
  for (long long r = blockIdx.x * warps + threadIdx.x / 32; r < rows; r += (long long)gridDim.x * warps) {
    const long long base = r * n;
    A v[kVecs * kV];
    A sum = A(0);
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const long long j0 = (long long)(k * 32 + lane) * kV;
      const Vec a = *reinterpret_cast<const Vec*>(x + base + j0);
      Vec b;
      if (res) b = *reinterpret_cast<const Vec*>(res + base + j0);
#pragma unroll
      for (int e = 0; e < kV; ++e) {
        v[k * kV + e] = res ? LoadA(a.e[e]) + LoadA(b.e[e]) : LoadA(a.e[e]);
        sum += v[k * kV + e];
      }
    }
    const A mean = WarpSum(sum) / A(n);
    A sq = A(0);
#pragma unroll
    for (int i = 0; i < kVecs * kV; ++i) {
      v[i] -= mean;
      sq += v[i] * v[i];
    }
    const A inv = A(1) / sqrt(WarpSum(sq) / A(n) + eps);
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const long long j0 = (long long)(k * 32 + lane) * kV;
      Vec s, t, o;
      if (scale) s = *reinterpret_cast<const Vec*>(scale + j0);
      if (bias) t = *reinterpret_cast<const Vec*>(bias + j0);
#pragma unroll
      for (int e = 0; e < kV; ++e) {
        A value = v[k * kV + e] * inv;
        if (scale) value *= LoadA(s.e[e]);
        if (bias) value += LoadA(t.e[e]);
        o.e[e] = StoreA(value);
      }
      *reinterpret_cast<Vec*>(y + base + j0) = o;
    }
  }
}
#define KILN_WARP_ROWS_VEC(K)                                                                                     \
  extern "C" __global__ void kiln_layer_norm_vec##K(const T* __restrict__ x, const T* __restrict__ res,         \
                                                    const T* __restrict__ scale, const T* __restrict__ bias,    \
                                                    T* __restrict__ y, long long rows, long long n, A eps) {    \
    WarpRowsVec<K>(x, res, scale, bias, y, rows, n, eps);                                                       \
  }
KILN_WARP_ROWS_VEC(1)
KILN_WARP_ROWS_VEC(2)
KILN_WARP_ROWS_VEC(3)
KILN_WARP_ROWS_VEC(4)
KILN_WARP_ROWS_VEC(5)
KILN_WARP_ROWS_VEC(6)
KILN_WARP_ROWS_VEC(7)
KILN_WARP_ROWS_VEC(8)

__device__ A BlockSum(A v) {
  __shared__ A partial[32];
  v = WarpSum(v);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : A(0);
  if (warp == 0) v = WarpSum(v);
  if (threadIdx.x == 0) partial[0] = v;
  __syncthreads();
  return partial[0];
}

// One block per row of any length, three passes over the row in global memory.
extern "C" __global__ void kiln_layer_norm_block(const T* __restrict__ x, const T* __restrict__ res,
                                                 const T* __restrict__ scale, const T* __restrict__ bias,
                                                 T* __restrict__ y, long long rows, long long n, A eps) {
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const long long base = r * n;
    A sum = A(0);
    for (long long j = threadIdx.x; j < n; j += blockDim.x) sum += Element(x, res, base + j);
    const A mean = BlockSum(sum) / A(n);
    A sq = A(0);
    for (long long j = threadIdx.x; j < n; j += blockDim.x) {
      const A d = Element(x, res, base + j) - mean;
      sq += d * d;
    }
    const A inv = A(1) / sqrt(BlockSum(sq) / A(n) + eps);
    for (long long j = threadIdx.x; j < n; j += blockDim.x)
      y[base + j] = StoreA(Affine((Element(x, res, base + j) - mean) * inv, scale, bias, j));
  }
}
)";

int64_t FirstNormalizedDim(const std::string& node, int64_t axis, int rank) {
  if (rank == 0 || axis < -rank || axis >= rank)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' (LayerNorm): axis {} is out of range for rank {}", node, axis, rank));
  return axis < 0 ? axis + rank : axis;
}

}  // namespace

std::optional<std::string> LayerNormUnsupported(const ir::Graph& graph, const ir::Node& node) {
  const DType dtype = graph.value(node.inputs[0]).dtype;
  if (!IsGpuFloat(dtype))
    return fmt::format("GPU layer normalization takes floating-point dtypes, not {}", DTypeName(dtype));
  const ir::SymShape& shape = graph.value(node.inputs[0]).shape;
  if (!shape.rank_known) return "the input rank is unknown";
  // Scale and bias hold one value per row element (the fusion pass broadcasts them so).
  for (size_t i = 1; i < node.inputs.size(); ++i) {
    const ir::SymShape& p = graph.value(node.inputs[i]).shape;
    int64_t first = 0;
    try {
      first = FirstNormalizedDim(node.name, node.attrs.GetOr<int64_t>("axis", -1), shape.rank());
    } catch (const Error& e) {
      return e.what();
    }
    if (!p.rank_known || p.rank() != shape.rank() - first) return "scale and bias must have the normalized dims' shape";
    for (int d = 0; d < p.rank(); ++d)
      if (!ir::IsStatic(p.dims[static_cast<size_t>(d)]) ||
          p.dims[static_cast<size_t>(d)] != shape.dims[static_cast<size_t>(first + d)])
        return "scale and bias must have the normalized dims' shape";
  }
  return std::nullopt;
}

std::string LayerNormKernelSource(DType dtype) {
  if (!IsGpuFloat(dtype))
    throw Error(ErrorCode::kInternal, fmt::format("no layer-norm kernel for {}", DTypeName(dtype)));
  std::string body = ReplaceAll(kLayerNormSource, "__KILN_T__", CudaTypeName(dtype));
  body = ReplaceAll(body, "__KILN_A__", dtype == DType::kFloat64 ? "double" : "float");
  return KernelPrologue() + body;
}

LayerNormKernel::LayerNormKernel(const ir::Graph& graph, const ir::Node& node, bool residual, int device, GpuArch arch)
    : name_(node.name),
      axis_(node.attrs.GetOr<int64_t>("axis", -1)),
      epsilon_(node.attrs.GetOr<double>("epsilon", 1e-5)),
      residual_(residual),
      device_(device) {
  if (auto why = LayerNormUnsupported(graph, node))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' (LayerNorm): {}", node.name, *why));
  const DType dtype = graph.value(node.inputs[0]).dtype;
  module_ = CompiledModule(LayerNormKernelSource(dtype), "kiln_layer_norm", arch);
  warp4_ = module_->Kernel("kiln_layer_norm_warp4");
  warp8_ = module_->Kernel("kiln_layer_norm_warp8");
  warp16_ = module_->Kernel("kiln_layer_norm_warp16");
  warp32_ = module_->Kernel("kiln_layer_norm_warp32");
  block_ = module_->Kernel("kiln_layer_norm_block");
  for (int k = 1; k <= kMaxVectorsPerLane; ++k)
    vec_[static_cast<size_t>(k - 1)] = module_->Kernel(fmt::format("kiln_layer_norm_vec{}", k).c_str());
  if (residual) {
    EltwiseProgram add;
    add.inputs = {dtype, dtype};
    add.steps.push_back(EltwiseStep{.op = ir::elementwise::FindOp("Add"), .args = {0, 1}});
    add_ = std::make_unique<EltwiseKernel>(std::move(add), arch);
  }
}

void LayerNormKernel::Launch(const Tensor& x, const Tensor* residual, const Tensor* scale, const Tensor* bias,
                             Tensor& out, cudaStream_t stream) const {
  if (residual_ != (residual != nullptr))
    throw Error(ErrorCode::kInternal,
                fmt::format("node '{}' (LayerNorm): the residual does not match the plan", name_));
  if (residual && (x.shape() != out.shape() || residual->shape() != out.shape())) {
    // A broadcasting sum: written out first, then normalized.
    Tensor sum(out.dtype(), out.shape(), AllocateOnStream(device_, out.byte_size(), stream));
    const Tensor operands[] = {x, *residual};
    add_->Launch(operands, sum, stream);
    LaunchRows(sum, nullptr, scale, bias, out, stream);
    return;
  }
  LaunchRows(x, residual, scale, bias, out, stream);
}

void LayerNormKernel::LaunchRows(const Tensor& x, const Tensor* residual, const Tensor* scale, const Tensor* bias,
                                 Tensor& out, cudaStream_t stream) const {
  const int64_t first = FirstNormalizedDim(name_, axis_, out.rank());
  long long rows = 1, n = 1;
  for (int d = 0; d < out.rank(); ++d) (d < first ? rows : n) *= out.dim(d);
  for (const Tensor* p : {scale, bias})
    if (p && p->num_elements() != n)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("node '{}' (LayerNorm): scale and bias need {} values (one per row element), got {}",
                              name_, n, p->num_elements()));
  if (out.num_elements() == 0) return;
  const void* xp = x.raw_data();
  const void* rp = residual ? residual->raw_data() : nullptr;
  const void* sp = scale ? scale->raw_data() : nullptr;
  const void* bp = bias ? bias->raw_data() : nullptr;
  void* yp = out.raw_data();
  const bool wide = x.dtype() == DType::kFloat64;
  double eps_double = epsilon_;
  float eps_float = static_cast<float>(epsilon_);
  void* eps = wide ? static_cast<void*>(&eps_double) : static_cast<void*>(&eps_float);
  void* args[] = {&xp, &rp, &sp, &bp, &yp, &rows, &n, eps};
  // 16-byte vectors when every row is a whole number of a warp's vectors and every pointer is
  // aligned for them.
  const long long per_vector = 16 / static_cast<long long>(DTypeSize(x.dtype()));
  const void* pointers[] = {xp, rp, sp, bp, yp};
  const bool aligned = std::all_of(std::begin(pointers), std::end(pointers),
                                   [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; });
  const long long vectors = n / (32 * per_vector);
  if (aligned && n % (32 * per_vector) == 0 && vectors >= 1 && vectors <= kMaxVectorsPerLane) {
    Check(cudaLaunchKernel(reinterpret_cast<const void*>(vec_[static_cast<size_t>(vectors - 1)]),
                           dim3(GridFor(rows, 8)), dim3(256), args, 0, stream),
          "cudaLaunchKernel (layer norm, 16-byte vectors)");
  } else if (n <= 1024) {  // a warp per row, eight rows per block
    const cudaKernel_t kernel = n <= 128 ? warp4_ : n <= 256 ? warp8_ : n <= 512 ? warp16_ : warp32_;
    Check(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(GridFor(rows, 8)), dim3(256), args, 0, stream),
          "cudaLaunchKernel (layer norm, a warp per row)");
  } else {
    Check(cudaLaunchKernel(reinterpret_cast<const void*>(block_), dim3(GridFor(rows, 1)), dim3(512), args, 0, stream),
          "cudaLaunchKernel (layer norm, a block per row)");
  }
}

}  // namespace kiln::backend::cuda
