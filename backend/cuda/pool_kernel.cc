#include "backend/cuda/pool_kernel.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/eltwise_codegen.h"
#include "backend/cuda/quantize_kernel.h"
#include "backend/cuda/quantized_conv.h"

namespace kiln::backend::cuda {
namespace {

struct PoolGeometry {
  long long n, c, h, w, oh, ow, kh, kw, sh, sw, pad_top, pad_left;
  int channels_last;
};

// One thread per output vector: V channels of one output pixel (V = 16 bytes of T, channels
// last) or one element (V = 1). Index is the type of element offsets: 32-bit where the tensors
// allow, since a 64-bit division per coordinate would dominate the kernel.
constexpr const char* kPoolSource = R"(
typedef __KILN_T__ T;
typedef __KILN_A__ A;
typedef __KILN_O__ O;
constexpr bool kMax = __KILN_MAX__;
constexpr bool kQuantized = __KILN_QUANTIZED__;
constexpr bool kFloat8 = __KILN_FLOAT8__;
struct PoolQuant { float inv_scale, qmin, qmax; };

struct PoolGeometry {
  long long n, c, h, w, oh, ow, kh, kw, sh, sw, pad_top, pad_left;
  int channels_last;
};

template <typename E, int V>
struct alignas(sizeof(E) * V) PoolVec {
  E v[V];
};

// The result as the output stores it: T, or int8 as quantize_kernel.h quantizes (NaN as 0). A
// template so that `if constexpr` discards the branch the output type cannot take.
template <typename Out>
__device__ __forceinline__ Out StoreResult(A r, const PoolQuant& q) {
  if constexpr (kQuantized && kFloat8) {
    return static_cast<Out>(KilnE4M3Byte(float(r) * q.inv_scale));
  } else if constexpr (kQuantized) {
    float v = float(r) * q.inv_scale;
    v = v == v ? v : 0.0f;
    return static_cast<Out>(static_cast<int>(rintf(fminf(fmaxf(v, q.qmin), q.qmax))));
  } else {
    return ew::Store<T>(static_cast<ew::ComputeT<T>>(r));
  }
}

template <typename Index, int V>
__device__ __forceinline__ void Pool(const PoolGeometry& g, const PoolQuant& q, const T* __restrict__ x,
                                     O* __restrict__ y) {
  const Index c = Index(g.c) / V, h = Index(g.h), w = Index(g.w), oh = Index(g.oh), ow = Index(g.ow);
  const Index total = Index(g.n) * oh * ow * c;
  const Index step = Index(gridDim.x) * Index(blockDim.x);
  for (Index i = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x); i < total; i += step) {
    Index n, cv, oy, ox;
    if (g.channels_last) {
      cv = i % c; Index r = i / c; ox = r % ow; r /= ow; oy = r % oh; n = r / oh;
    } else {
      ox = i % ow; Index r = i / ow; oy = r % oh; r /= oh; cv = r % c; n = r / c;
    }
    A acc[V];
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = kMax ? -A(__int_as_float(0x7f800000)) : A(0);
    int count = 0;
    const long long y0 = (long long)oy * g.sh - g.pad_top, x0 = (long long)ox * g.sw - g.pad_left;
    for (long long ky = 0; ky < g.kh; ++ky) {
      const long long iy = y0 + ky;
      if (iy < 0 || iy >= g.h) continue;
      for (long long kx = 0; kx < g.kw; ++kx) {
        const long long ix = x0 + kx;
        if (ix < 0 || ix >= g.w) continue;
        const Index at = g.channels_last ? ((n * h + Index(iy)) * w + Index(ix)) * (c * V) + cv * V
                                         : ((n * c + cv) * h + Index(iy)) * w + Index(ix);
        const PoolVec<T, V> in = *reinterpret_cast<const PoolVec<T, V>*>(x + at);
        ++count;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const A v = A(ew::Load<T>(in.v[j]));
          if (kMax) {
            if (v > acc[j] || v != v) acc[j] = v;  // NaN propagates
          } else {
            acc[j] += v;
          }
        }
      }
    }
    PoolVec<O, V> out;
#pragma unroll
    for (int j = 0; j < V; ++j) out.v[j] = StoreResult<O>(kMax ? acc[j] : count > 0 ? acc[j] / A(count) : A(0), q);
    *reinterpret_cast<PoolVec<O, V>*>(y + (g.channels_last ? i * V : i)) = out;
  }
}

extern "C" __global__ void kiln_pool_i64(const PoolGeometry g, const PoolQuant q, const T* __restrict__ x,
                                         O* __restrict__ y) {
  Pool<long long, 1>(g, q, x, y);
}
extern "C" __global__ void kiln_pool_i32(const PoolGeometry g, const PoolQuant q, const T* __restrict__ x,
                                         O* __restrict__ y) {
  Pool<unsigned int, 1>(g, q, x, y);
}
extern "C" __global__ void kiln_pool_i32_vec(const PoolGeometry g, const PoolQuant q, const T* __restrict__ x,
                                             O* __restrict__ y) {
  Pool<unsigned int, 16 / sizeof(T)>(g, q, x, y);
}
)";

}  // namespace

std::optional<std::string> PoolUnsupported(const ir::Graph& graph, const ir::Node& node) {
  const DType dtype = graph.value(node.inputs[0]).dtype;
  if (!IsGpuFloat(dtype)) return fmt::format("GPU pooling takes floating-point dtypes, not {}", DTypeName(dtype));
  if (node.inputs.size() != 1) return "pooling with ksize/strides as inputs runs natively";
  const ir::SymShape& s = graph.value(node.inputs[0]).shape;
  if (!s.rank_known || s.rank() != 4) return "GPU pooling is 2-D (rank-4 inputs)";
  const std::string format = node.attrs.GetOr<std::string>("data_format", "NHWC");
  bool channels_last = true;
  if (!ir::nn::ChannelsLast(format, &channels_last) || format.size() != 4)
    return fmt::format("data_format '{}'", format);
  ir::nn::Padding padding;
  if (!ir::nn::ParsePadding(node.attrs.GetOr<std::string>("padding", "VALID"), &padding)) return "unknown padding";
  if (!node.attrs.Has("ksize") || node.attrs.Ints("ksize").size() != 2) return "ksize must have 2 values";
  return std::nullopt;
}

std::string PoolKernelSource(const std::string& op, DType dtype, bool quantized_output, ir::QuantFormat format) {
  const bool fp8 = quantized_output && format == ir::QuantFormat::kFloat8E4M3;
  std::string body = ReplaceAll(kPoolSource, "__KILN_T__", CudaTypeName(dtype));
  body = ReplaceAll(body, "__KILN_A__", dtype == DType::kFloat64 ? "double" : "float");
  body = ReplaceAll(body, "__KILN_O__", fp8 ? "uint8_t" : quantized_output ? "int8_t" : "T");
  body = ReplaceAll(body, "__KILN_MAX__", op == "MaxPool" ? "true" : "false");
  body = ReplaceAll(body, "__KILN_QUANTIZED__", quantized_output ? "true" : "false");
  body = ReplaceAll(body, "__KILN_FLOAT8__", fp8 ? "true" : "false");
  return std::string(KernelPrologue()) + Float8ByteSource() + body;
}

PoolKernel::PoolKernel(const ir::Graph& graph, const ir::Node& node, GpuArch arch,
                       std::optional<QuantizeParams> quantized_output, ir::QuantFormat quantized_format)
    : name_(node.name), quantized_(quantized_output), format_(quantized_format) {
  if (quantized_ && (node.op != "MaxPool" || quantized_->divisor != 0))
    throw Error(ErrorCode::kInternal,
                fmt::format("node '{}' ({}): an 8-bit output for a pool other than a MaxPool, or quantized by division",
                            node.name, node.op));
  const std::string format = node.attrs.GetOr<std::string>("data_format", "NHWC");
  ir::nn::ChannelsLast(format, &channels_last_);
  ksize_ = node.attrs.Ints("ksize");
  strides_ = node.attrs.GetOr<std::vector<int64_t>>("strides", {1, 1});
  pads_ = node.attrs.GetOr<std::vector<int64_t>>("pads", {0, 0, 0, 0});
  ir::nn::ParsePadding(node.attrs.GetOr<std::string>("padding", "VALID"), &padding_);
  if (strides_.size() != 2 || pads_.size() != 4)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}): expected 2 strides and 4 pads", node.name, node.op));
  module_ = CompiledModule(
      PoolKernelSource(node.op, graph.value(node.inputs[0]).dtype, quantized_.has_value(), format_),
      quantized_ ? fmt::format("kiln_{}_{}_out", node.op, QuantFormatName(format_)) : "kiln_" + node.op, arch);
  kernel64_ = module_->Kernel("kiln_pool_i64");
  kernel32_ = module_->Kernel("kiln_pool_i32");
  kernel_vector_ = module_->Kernel("kiln_pool_i32_vec");
}

void PoolKernel::Launch(const Tensor& x, Tensor& out, cudaStream_t stream) const {
  const long long total = out.num_elements();
  if (total == 0) return;
  PoolGeometry g{};
  g.channels_last = channels_last_ ? 1 : 0;
  g.n = x.dim(0);
  g.c = x.dim(channels_last_ ? 3 : 1);
  g.h = x.dim(channels_last_ ? 1 : 2);
  g.w = x.dim(channels_last_ ? 2 : 3);
  g.oh = out.dim(channels_last_ ? 1 : 2);
  g.ow = out.dim(channels_last_ ? 2 : 3);
  g.kh = ksize_[0];
  g.kw = ksize_[1];
  g.sh = strides_[0];
  g.sw = strides_[1];
  const long long in[2] = {g.h, g.w};
  long long* pad[2] = {&g.pad_top, &g.pad_left};
  for (int i = 0; i < 2; ++i) {
    ir::nn::WindowDim wd;
    std::string error;
    if (!ir::nn::ComputeWindow(in[i], ksize_[static_cast<size_t>(i)], strides_[static_cast<size_t>(i)], 1, padding_,
                               pads_[static_cast<size_t>(2 * i)], pads_[static_cast<size_t>(2 * i + 1)], &wd, &error))
      throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}': {}", name_, error));
    *pad[i] = wd.pad_before;
  }
  if (out.dtype() != (quantized_ ? StoredDType(format_) : x.dtype()))
    throw Error(ErrorCode::kInternal, fmt::format("node '{}': pooling {} into {}", name_, DTypeName(x.dtype()),
                                                  DTypeName(out.dtype())));
  struct PoolQuant {
    float inv_scale, qmin, qmax;
  } q{1, -128, 127};
  if (quantized_) q = {quantized_->inv_scale, quantized_->qmin, quantized_->qmax};
  const void* xp = x.raw_data();
  void* yp = out.raw_data();
  void* args[] = {&g, &q, &xp, &yp};
  cudaKernel_t kernel = nullptr;
  long long items = total;
  if (UsesVectorLoop(x, out)) {
    kernel = kernel_vector_;
    items = total / static_cast<long long>(16 / DTypeSize(x.dtype()));
  } else {
    // 32-bit offsets while every offset and the grid-stride index (at most 2^29 threads, GridFor)
    // stay below 2^31.
    const bool small = std::max<long long>(x.num_elements(), total) < (1LL << 30);
    kernel = small ? kernel32_ : kernel64_;
  }
  const unsigned blocks = GridFor(items, 256);
  Check(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(blocks), dim3(256), args, 0, stream),
        "cudaLaunchKernel (pool)");
}

bool PoolKernel::UsesVectorLoop(const Tensor& x, const Tensor& out) const {
  // The output vector holds as many elements (int8: 16 / sizeof(T) bytes, aligned with them).
  const size_t bytes = DTypeSize(x.dtype());
  if (!channels_last_ || x.rank() != 4 || (static_cast<size_t>(x.dim(3)) * bytes) % 16 != 0) return false;
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return aligned(x.raw_data()) && aligned(out.raw_data()) &&
         std::max<long long>(x.num_elements(), out.num_elements()) < (1LL << 30);
}

}  // namespace kiln::backend::cuda
