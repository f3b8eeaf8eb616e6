#include "backend/cuda/pool_kernel.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/eltwise_codegen.h"

namespace kiln::backend::cuda {
namespace {

struct PoolGeometry {
  long long n, c, h, w, oh, ow, kh, kw, sh, sw, pad_top, pad_left;
  int channels_last;
};

constexpr const char* kPoolSource = R"(
typedef __KILN_T__ T;
typedef __KILN_A__ A;
constexpr bool kMax = __KILN_MAX__;

struct PoolGeometry {
  long long n, c, h, w, oh, ow, kh, kw, sh, sw, pad_top, pad_left;
  int channels_last;
};

extern "C" __global__ void kiln_pool(const PoolGeometry g, const T* __restrict__ x, T* __restrict__ y) {
  const long long total = g.n * g.c * g.oh * g.ow;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
    long long n, c, oy, ox;
    if (g.channels_last) {
      c = i % g.c; long long r = i / g.c; ox = r % g.ow; r /= g.ow; oy = r % g.oh; n = r / g.oh;
    } else {
      ox = i % g.ow; long long r = i / g.ow; oy = r % g.oh; r /= g.oh; c = r % g.c; n = r / g.c;
    }
    A acc = kMax ? -A(__int_as_float(0x7f800000)) : A(0);
    long long count = 0;
    for (long long ky = 0; ky < g.kh; ++ky) {
      const long long iy = oy * g.sh - g.pad_top + ky;
      if (iy < 0 || iy >= g.h) continue;
      for (long long kx = 0; kx < g.kw; ++kx) {
        const long long ix = ox * g.sw - g.pad_left + kx;
        if (ix < 0 || ix >= g.w) continue;
        const long long at = g.channels_last ? ((n * g.h + iy) * g.w + ix) * g.c + c : ((n * g.c + c) * g.h + iy) * g.w + ix;
        const A v = A(ew::Load<T>(x[at]));
        ++count;
        if (kMax) {
          if (v > acc || v != v) acc = v;  // NaN propagates
        } else {
          acc += v;
        }
      }
    }
    if (!kMax) acc = count > 0 ? acc / A(count) : A(0);
    y[i] = ew::Store<T>(static_cast<ew::ComputeT<T>>(acc));
  }
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

std::string PoolKernelSource(const std::string& op, DType dtype) {
  std::string body = ReplaceAll(kPoolSource, "__KILN_T__", CudaTypeName(dtype));
  body = ReplaceAll(body, "__KILN_A__", dtype == DType::kFloat64 ? "double" : "float");
  body = ReplaceAll(body, "__KILN_MAX__", op == "MaxPool" ? "true" : "false");
  return std::string(KernelPrologue()) + body;
}

PoolKernel::PoolKernel(const ir::Graph& graph, const ir::Node& node, GpuArch arch) : name_(node.name) {
  const std::string format = node.attrs.GetOr<std::string>("data_format", "NHWC");
  ir::nn::ChannelsLast(format, &channels_last_);
  ksize_ = node.attrs.Ints("ksize");
  strides_ = node.attrs.GetOr<std::vector<int64_t>>("strides", {1, 1});
  pads_ = node.attrs.GetOr<std::vector<int64_t>>("pads", {0, 0, 0, 0});
  ir::nn::ParsePadding(node.attrs.GetOr<std::string>("padding", "VALID"), &padding_);
  if (strides_.size() != 2 || pads_.size() != 4)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}): expected 2 strides and 4 pads", node.name, node.op));
  module_ = CompiledModule(PoolKernelSource(node.op, graph.value(node.inputs[0]).dtype), "kiln_" + node.op, arch);
  kernel_ = module_->Kernel("kiln_pool");
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
  const void* xp = x.raw_data();
  void* yp = out.raw_data();
  void* args[] = {&g, &xp, &yp};
  const unsigned blocks = GridFor(total, 256);
  Check(cudaLaunchKernel(reinterpret_cast<const void*>(kernel_), dim3(blocks), dim3(256), args, 0, stream),
        "cudaLaunchKernel (pool)");
}

}  // namespace kiln::backend::cuda
