// CUTLASS sm90 8-bit products for quantized 1x1 convolutions (cutlass_quantized_gemm.h). One
// kernel per operand combination and tile configuration covers every epilogue form: the residual
// is skipped at run time when beta is zero and no C is given, ReLU is a clamp with a run-time lower
// bound, and a null bias reads as zeros.
#include <cutlass/cutlass.h>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/kernel_hardware_info.h>

#include <cstdint>
#include <cute/tensor.hpp>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>

#include "backend/cuda/cutlass_quantized_common.cuh"
#include "backend/cuda/cutlass_quantized_gemm.h"

namespace kiln::backend::cuda {
namespace {

using namespace cute;
using cutlass_quantized::Aligned16;
using cutlass_quantized::DeviceIsSm90;

// CUTLASS's GEMM: A = X (pixels x k, k contiguous), B = W (k x channels stored channels-major: k
// contiguous, the only operand order 8-bit warpgroup MMAs take), C and D pixels x channels. E4M3
// products use CUTLASS's accurate schedules (the float sums are promoted out of the tensor cores
// every few k blocks), not its fast-accumulation ones.
template <class Ops, class TileShape, class MainloopSchedule, class EpilogueSchedule>
struct GemmKernel {
  using In = typename Ops::Input;
  using Out = typename Ops::Output;
  using Res = typename Ops::Residual;
  static constexpr int kOutAlign = 16 / sizeof(Out), kResAlign = 16 / sizeof(Res);
  using ClusterShape = Shape<_1, _1, _1>;
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, typename Ops::Accumulator, float, Res, cutlass::layout::RowMajor,
      kResAlign, Out, cutlass::layout::RowMajor, kOutAlign, EpilogueSchedule, typename Ops::Fusion>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, In, cutlass::layout::RowMajor, 16, In,
      cutlass::layout::ColumnMajor, 16, typename Ops::Accumulator, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      MainloopSchedule>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Adapter = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static typename Adapter::Arguments Arguments(const CutlassQuantizedGemmArgs& a, int device) {
    const int m = static_cast<int>(a.pixels), n = static_cast<int>(a.channels), k = static_cast<int>(a.k);
    using StrideA = typename Kernel::StrideA;
    using StrideB = typename Kernel::StrideB;
    using StrideC = typename Kernel::StrideC;
    using StrideD = typename Kernel::StrideD;
    typename Adapter::Arguments args{
        cutlass::gemm::GemmUniversalMode::kGemm,
        {m, n, k, 1},
        {static_cast<const In*>(a.x), cutlass::make_cute_packed_stride(StrideA{}, cute::make_shape(m, k, 1)),
         static_cast<const In*>(a.w), cutlass::make_cute_packed_stride(StrideB{}, cute::make_shape(n, k, 1))},
        {{},
         static_cast<const Res*>(a.c ? a.c : a.d),
         cutlass::make_cute_packed_stride(StrideC{}, cute::make_shape(m, n, 1)),
         static_cast<Out*>(a.d),
         cutlass::make_cute_packed_stride(StrideD{}, cute::make_shape(m, n, 1))}};
    cutlass_quantized::SetEpilogue(args.epilogue.thread, a.operands.output, a.alpha, a.bias, a.c != nullptr, a.beta,
                                   a.relu);
    args.hw_info.device_id = device;
    args.hw_info.sm_count = cutlass::KernelHardwareInfo::query_device_multiprocessor_count(device);
    return args;
  }
};

using Cooperative = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using Pingpong = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using CooperativeEpilogue = cutlass::epilogue::TmaWarpSpecializedCooperative;
using PingpongEpilogue = cutlass::epilogue::TmaWarpSpecialized;

template <class Ops>
struct Config0 : GemmKernel<Ops, Shape<_128, _128, _128>, Cooperative, CooperativeEpilogue> {
  static constexpr const char* kName = "cooperative 128x128x128";
};
template <class Ops>
struct Config1 : GemmKernel<Ops, Shape<_256, _128, _64>, Cooperative, CooperativeEpilogue> {
  static constexpr const char* kName = "cooperative 256x128x64";
};
template <class Ops>
struct Config2 : GemmKernel<Ops, Shape<_128, _256, _64>, Cooperative, CooperativeEpilogue> {
  static constexpr const char* kName = "cooperative 128x256x64";
};
template <class Ops>
struct Config3 : GemmKernel<Ops, Shape<_64, _128, _128>, Pingpong, PingpongEpilogue> {
  static constexpr const char* kName = "pingpong 64x128x128";
};
template <class Ops>
using Family = cutlass_quantized::KernelFamily<Config0<Ops>, Config1<Ops>, Config2<Ops>, Config3<Ops>>;

}  // namespace

int CutlassQuantizedGemmConfigs(QuantizedOperands operands) { return cutlass_quantized::Configs<Family>(operands); }

std::string CutlassQuantizedGemmConfigName(QuantizedOperands operands, int config) {
  return cutlass_quantized::ConfigName<Family>(operands, config);
}

bool CutlassQuantizedGemmCanRun(int config, const CutlassQuantizedGemmArgs& args, int device) {
  if (config < 0 || config >= CutlassQuantizedGemmConfigs(args.operands) || !DeviceIsSm90(device)) return false;
  if (args.pixels <= 0 || args.channels <= 0 || args.k <= 0 || args.pixels > INT32_MAX || args.channels > INT32_MAX ||
      args.k > INT32_MAX || args.channels % 16 != 0 || args.k % 16 != 0)
    return false;
  for (const void* p : {args.x, args.w, static_cast<const void*>(args.alpha), static_cast<const void*>(args.bias),
                        args.c, static_cast<const void*>(args.d)})
    if (p && !Aligned16(p)) return false;
  return cutlass_quantized::CanImplement<Family>(config, args, device);
}

size_t CutlassQuantizedGemmWorkspaceBytes(int config, const CutlassQuantizedGemmArgs& args, int device) {
  return cutlass_quantized::Workspace<Family>(config, args, device);
}

const char* CutlassQuantizedGemmRun(int config, const CutlassQuantizedGemmArgs& args, void* workspace, int device,
                                    cudaStream_t stream, int repeats) {
  return cutlass_quantized::Run<Family>(config, args, workspace, device, stream, repeats);
}

}  // namespace kiln::backend::cuda
