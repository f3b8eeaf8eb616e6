#include "backend/cuda/cuda_backend.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <fmt/format.h>
#include <nvrtc.h>

#include "backend/cuda/conv_kernel.h"
#include "backend/cuda/cubin_cache.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/gather_kernel.h"
#include "backend/cuda/host_values.h"
#include "backend/cuda/matmul_kernel.h"
#include "backend/cuda/nvrtc_compiler.h"
#include "backend/cuda/pool_kernel.h"
#include "backend/cuda/norm_kernel.h"
#include "backend/cuda/row_kernel.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::backend::cuda {
namespace {

// The dtypes generated elementwise kernels load and store.
bool EltwiseDType(DType d) {
  switch (d) {
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64:
    case DType::kUInt8:
    case DType::kUInt16:
    case DType::kUInt32:
    case DType::kUInt64:
    case DType::kBool:
      return true;
    default:
      return false;
  }
}

std::string VersionString(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

std::string DescribeDevice(int index) {
  cudaDeviceProp prop{};
  Check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  int driver = 0, runtime = 0, nvrtc_major = 0, nvrtc_minor = 0;
  Check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  Check(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion");
  Check(nvrtcVersion(&nvrtc_major, &nvrtc_minor), "nvrtcVersion");
  return fmt::format("{} sm_{}{}, driver {}, CUDA runtime {}, cuBLASLt {}, cuDNN {}, NVRTC {}.{}", prop.name,
                     prop.major, prop.minor, VersionString(driver), VersionString(runtime), cublasLtGetVersion(),
                     CudnnVersion(), nvrtc_major, nvrtc_minor);
}

}  // namespace

CudaBackend::CudaBackend() {
  if (DeviceCount() == 0)
    throw Error(ErrorCode::kUnavailable,
                "device 'cuda' was requested but no CUDA GPU is visible on this machine (no driver or no GPU)");
  device_ = DescribeDevice(device_index_);
}

const DeviceServices& CudaBackend::device_services() const { return Services(device_index_); }

std::optional<std::string> CudaBackend::Unsupported(const ir::Graph& graph, const ir::Node& node) const {
  for (const auto* ids : {&node.inputs, &node.outputs})
    for (ir::ValueId v : *ids)
      if (!EltwiseDType(graph.value(v).dtype))
        return fmt::format("dtype {} is not supported by the CUDA backend", DTypeName(graph.value(v).dtype));
  // Shapes and what small integer arithmetic makes of them are computed on the host per input
  // shapes (host_values.h): Reshape targets, Range limits, broadcast shapes.
  if (HostComputable(graph, node)) return std::nullopt;
  if (node.op == "Cast" || node.op == "Select") return std::nullopt;  // every dtype above
  if (const ir::elementwise::OpInfo* info = ir::elementwise::FindOp(node.op)) {
    if (info->host_only) return fmt::format("{} has no GPU formula; it runs natively", node.op);
    // The GPU kernels cannot report a failing element; only integer inputs can fail (division by
    // zero, negative powers), floating-point ones give inf / NaN as IEEE says.
    if (info->error && !IsFloating(graph.value(node.inputs[0]).dtype))
      return fmt::format("{} can fail per element ({}); it runs natively", node.op, info->error);
    return std::nullopt;
  }
  if (node.op == "MatMul" || node.op == "BatchMatMul") return MatMulUnsupported(graph, node);
  if (IsRowOp(node.op)) return RowOpUnsupported(graph, node);
  if (node.op == "LayerNorm") return LayerNormUnsupported(graph, node);
  if (node.op == "Conv2D" || node.op == "DepthwiseConv2D") return ConvUnsupported(graph, node);
  if (node.op == "MaxPool" || node.op == "AvgPool") return PoolUnsupported(graph, node);
  if (IsLayoutOp(node.op)) {
    const ir::ValueId param = node.op == "Transpose" ? node.inputs.at(1) : node.inputs.back();
    if (!graph.ConstantOf(param))
      return fmt::format("{} with a computed {} runs natively", node.op,
                         node.op == "Transpose" ? "permutation" : "axis");
    return std::nullopt;
  }
  // The output shape must follow from the input shapes alone: a constant target shape or axis,
  // or one computed from shapes on the host.
  auto known_before_run = [&](ir::ValueId v) {
    const ir::Node* p = graph.Producer(v);
    return graph.ConstantOf(v) || (p && HostComputable(graph, *p));
  };
  if (IsViewOp(node.op)) {
    if (node.inputs.size() > 1 && !known_before_run(node.inputs[1]))
      return fmt::format("{} with a shape computed from values runs natively", node.op);
    return std::nullopt;
  }
  if (node.op == "Slice" || node.op == "StridedSlice" || node.op == "Reverse") {
    const ir::SymShape& x = graph.value(node.inputs[0]).shape;
    if (!x.rank_known || x.rank() > kMaxEltwiseRank)
      return fmt::format("{} needs an input of known rank up to {}", node.op, kMaxEltwiseRank);
    for (size_t i = 1; i < node.inputs.size(); ++i)
      if (!known_before_run(node.inputs[i]))
        return fmt::format("{} with {} computed from tensor values runs natively", node.op,
                           node.op == "Reverse" ? "axes" : "bounds");
    return std::nullopt;
  }
  if (node.op == "BroadcastTo") {
    if (!known_before_run(node.inputs[1])) return "BroadcastTo with a shape computed from values runs natively";
    return std::nullopt;
  }
  if (node.op == "Gather") return GatherUnsupported(graph, node);
  return fmt::format("the CUDA backend has no kernel for op {}", node.op);
}

std::unique_ptr<Engine> CudaBackend::Compile(const ir::Graph& segment, const Profile& profile,
                                             const CompileOptions& options) const {
  for (const ir::Node& node : segment.nodes()) {
    if (node.removed || node.op == "Constant") continue;
    if (auto why = Unsupported(segment, node))
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("node '{}' ({}) cannot run in a CUDA engine: {}", node.name, node.op, *why));
  }
  return std::make_unique<CudaEngine>(segment, profile, options, device_index_);
}

std::unique_ptr<Engine> CudaBackend::Deserialize(const ir::Graph& segment, const Profile& profile,
                                                 const CompileOptions& options, std::string_view payload) const {
  // Version 2 carries the generated kernels' cubins: they go into the process cache, so building
  // the engine from the segment compiles nothing (cuBLASLt and cuDNN plans are made again).
  // Version 1 carried none: everything compiles.
  if (payload.substr(0, kEnginePayloadMagic.size()) == kEnginePayloadMagic) {
    for (const CubinEntry& e : DecodeCubins(payload.substr(kEnginePayloadMagic.size()))) AddCubin(e);
  } else if (payload != "kiln-cuda-engine 1") {
    throw Error(ErrorCode::kDataLoss,
                "the CUDA engine payload is not one this version of Kiln wrote; rebuild the engine");
  }
  return Compile(segment, profile, options);
}

}  // namespace kiln::backend::cuda

namespace kiln::backend::cuda {
namespace {

const bool registered = [] {
  RegisterBackend("cuda", [] { return std::make_unique<CudaBackend>(); });
  RegisterDeviceServices(DeviceKind::kCuda, [](int index) -> const DeviceServices& { return Services(index); });
  return true;
}();

}  // namespace
}  // namespace kiln::backend::cuda
