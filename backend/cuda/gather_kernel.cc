#include "backend/cuda/gather_kernel.h"

#include <fmt/format.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/eltwise_codegen.h"

namespace kiln::backend::cuda {
namespace {

constexpr const char* kGatherSource = R"(
typedef __KILN_E__ E;
typedef __KILN_I__ I;
// out[o, i, n] = params[o, indices[i], n] in units U: elements, or 16 bytes of a row.
template <typename U>
__device__ __forceinline__ void KilnGather(const U* params, const I* indices, U* out, long long outer, long long dim,
                                           long long count, long long inner) {
  const long long total = outer * count * inner;
  for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < total;
       k += (long long)gridDim.x * blockDim.x) {
    const long long row = k / inner;
    const long long n = k - row * inner;
    const long long o = row / count;
    const long long index = (long long)indices[row - o * count];
    out[k] = index >= 0 && index < dim ? params[(o * dim + index) * inner + n] : U();
  }
}
extern "C" __global__ void kiln_gather(const E* params, const I* indices, E* out, long long outer, long long dim,
                                       long long count, long long inner) {
  KilnGather<E>(params, indices, out, outer, dim, count, inner);
}
extern "C" __global__ void kiln_gather_vec(const uint4* params, const I* indices, uint4* out, long long outer,
                                           long long dim, long long count, long long inner) {
  KilnGather<uint4>(params, indices, out, outer, dim, count, inner);
}
)";

const char* UnsignedOfWidth(size_t bytes) {
  switch (bytes) {
    case 1:
      return "unsigned char";
    case 2:
      return "unsigned short";
    case 4:
      return "unsigned int";
    case 8:
      return "unsigned long long";
    default:
      throw Error(ErrorCode::kInternal, fmt::format("no GPU gather for {}-byte elements", bytes));
  }
}

}  // namespace

std::optional<std::string> GatherUnsupported(const ir::Graph& graph, const ir::Node& node) {
  if (node.attrs.GetOr<int64_t>("batch_dims", 0) != 0) return "GPU Gather takes batch_dims 0";
  const DType index = graph.value(node.inputs[1]).dtype;
  if (index != DType::kInt32 && index != DType::kInt64)
    return fmt::format("GPU Gather takes int32 or int64 indices, not {}", DTypeName(index));
  const DType dtype = graph.value(node.inputs[0]).dtype;
  const size_t width = DTypeSize(dtype);
  if (dtype == DType::kString || (width != 1 && width != 2 && width != 4 && width != 8))
    return fmt::format("GPU Gather cannot copy {} elements", DTypeName(dtype));
  if (!graph.ConstantOf(node.inputs[2])) return "the Gather axis is computed";
  if (!graph.value(node.inputs[0]).shape.rank_known) return "the params rank is unknown";
  return std::nullopt;
}

std::string GatherKernelSource(size_t element_bytes, DType index) {
  std::string body = ReplaceAll(kGatherSource, "__KILN_E__", UnsignedOfWidth(element_bytes));
  body = ReplaceAll(body, "__KILN_I__", index == DType::kInt32 ? "int" : "long long");
  return KernelPrologue() + body;
}

GatherKernel::GatherKernel(const ir::Graph& graph, const ir::Node& node, GpuArch arch) {
  if (auto why = GatherUnsupported(graph, node))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' (Gather): {}", node.name, *why));
  const int64_t rank = graph.value(node.inputs[0]).shape.rank();
  axis_ = graph.ConstantOf(node.inputs[2])->IntAt(0);
  if (axis_ < -rank || axis_ >= rank)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' (Gather): axis {} is out of range for rank {}", node.name, axis_, rank));
  if (axis_ < 0) axis_ += rank;
  module_ = CompiledModule(
      GatherKernelSource(DTypeSize(graph.value(node.inputs[0]).dtype), graph.value(node.inputs[1]).dtype),
      "kiln_gather", arch);
  kernel_ = module_->Kernel("kiln_gather");
  kernel_vec_ = module_->Kernel("kiln_gather_vec");
  element_bytes_ = static_cast<int64_t>(DTypeSize(graph.value(node.inputs[0]).dtype));
}

void GatherKernel::Launch(const Tensor& params, const Tensor& indices, Tensor& out, cudaStream_t stream) const {
  long long outer = 1, inner = 1;
  for (int d = 0; d < params.rank(); ++d) {
    if (d < axis_) outer *= params.dim(d);
    if (d > axis_) inner *= params.dim(d);
  }
  long long dim = params.dim(static_cast<int>(axis_)), count = indices.num_elements();
  const long long total = out.num_elements();
  if (total == 0) return;
  const void* p = params.raw_data();
  const void* i = indices.raw_data();
  void* y = out.raw_data();
  // Rows of whole 16-byte units at 16-byte aligned addresses (embedding rows of 8 float16s and
  // more) are copied 16 bytes per thread and step.
  const long long row_bytes = inner * element_bytes_;
  const bool vector = row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(y) % 16 == 0;
  if (vector) inner = row_bytes / 16;
  const long long units = vector ? total * element_bytes_ / 16 : total;
  void* args[] = {&p, &i, &y, &outer, &dim, &count, &inner};
  Check(cudaLaunchKernel(reinterpret_cast<const void*>(vector ? kernel_vec_ : kernel_), dim3(GridFor(units, 256)),
                         dim3(256), args, 0, stream),
        "cudaLaunchKernel (gather)");
}

}  // namespace kiln::backend::cuda
