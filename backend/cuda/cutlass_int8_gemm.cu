// CUTLASS sm90 int8 products for quantized 1x1 convolutions (cutlass_int8_gemm.h). One kernel
// per tile configuration covers every epilogue form: the residual is skipped at run time when
// beta is zero and no C is given, ReLU is a clamp with a run-time lower bound, and a null bias
// reads as zeros.
#include <cutlass/cutlass.h>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/kernel_hardware_info.h>

#include <cstdint>
#include <cute/tensor.hpp>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>

#include "backend/cuda/cutlass_int8_common.cuh"
#include "backend/cuda/cutlass_int8_gemm.h"

namespace kiln::backend::cuda {
namespace {

using namespace cute;
using cutlass_int8::Aligned16;
using cutlass_int8::DeviceIsSm90;
using cutlass_int8::Fusion;

// CUTLASS's GEMM: A = X (pixels x k, k contiguous), B = W (k x channels stored channels-major: k
// contiguous, the only operand order int8 warpgroup MMAs take), C and D pixels x channels.
template <class TileShape, class ClusterShape, class MainloopSchedule, class EpilogueSchedule>
struct Int8GemmKernel {
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, int32_t, float, int8_t, cutlass::layout::RowMajor, 16, int8_t,
      cutlass::layout::RowMajor, 16, EpilogueSchedule, Fusion>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, int8_t, cutlass::layout::RowMajor, 16, int8_t,
      cutlass::layout::ColumnMajor, 16, int32_t, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      MainloopSchedule>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue>;
  using Adapter = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static typename Adapter::Arguments Arguments(const CutlassInt8GemmArgs& a, int device) {
    const int m = static_cast<int>(a.pixels), n = static_cast<int>(a.channels), k = static_cast<int>(a.k);
    using StrideA = typename Kernel::StrideA;
    using StrideB = typename Kernel::StrideB;
    using StrideC = typename Kernel::StrideC;
    using StrideD = typename Kernel::StrideD;
    typename Adapter::Arguments args{
        cutlass::gemm::GemmUniversalMode::kGemm,
        {m, n, k, 1},
        {static_cast<const int8_t*>(a.x), cutlass::make_cute_packed_stride(StrideA{}, cute::make_shape(m, k, 1)),
         static_cast<const int8_t*>(a.w), cutlass::make_cute_packed_stride(StrideB{}, cute::make_shape(n, k, 1))},
        {{},
         static_cast<const int8_t*>(a.c ? a.c : a.d),
         cutlass::make_cute_packed_stride(StrideC{}, cute::make_shape(m, n, 1)),
         static_cast<int8_t*>(a.d),
         cutlass::make_cute_packed_stride(StrideD{}, cute::make_shape(m, n, 1))}};
    cutlass_int8::SetEpilogue(args.epilogue.thread, a.alpha, a.bias, a.c != nullptr, a.beta, a.relu);
    args.hw_info.device_id = device;
    args.hw_info.sm_count = cutlass::KernelHardwareInfo::query_device_multiprocessor_count(device);
    return args;
  }
};

using Cooperative = cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using Pingpong = cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using CooperativeEpilogue = cutlass::epilogue::TmaWarpSpecializedCooperative;
using PingpongEpilogue = cutlass::epilogue::TmaWarpSpecialized;

using Config0 = Int8GemmKernel<Shape<_128, _128, _128>, Shape<_1, _1, _1>, Cooperative, CooperativeEpilogue>;
using Config1 = Int8GemmKernel<Shape<_256, _128, _64>, Shape<_1, _1, _1>, Cooperative, CooperativeEpilogue>;
using Config2 = Int8GemmKernel<Shape<_128, _256, _64>, Shape<_1, _1, _1>, Cooperative, CooperativeEpilogue>;
using Config3 = Int8GemmKernel<Shape<_64, _128, _128>, Shape<_1, _1, _1>, Pingpong, PingpongEpilogue>;

constexpr const char* kNames[] = {
    "cutlass sm90 int8 cooperative 128x128x128",
    "cutlass sm90 int8 cooperative 256x128x64",
    "cutlass sm90 int8 cooperative 128x256x64",
    "cutlass sm90 int8 pingpong 64x128x128",
};
using Family = cutlass_int8::KernelFamily<Config0, Config1, Config2, Config3>;
constexpr int kConfigs = Family::kCount;
static_assert(sizeof(kNames) / sizeof(kNames[0]) == kConfigs);

}  // namespace

int CutlassInt8GemmConfigs() { return kConfigs; }

const char* CutlassInt8GemmConfigName(int config) {
  return config >= 0 && config < kConfigs ? kNames[config] : "cutlass sm90 int8 (unknown configuration)";
}

bool CutlassInt8GemmCanRun(int config, const CutlassInt8GemmArgs& args, int device) {
  if (config < 0 || config >= kConfigs || !DeviceIsSm90(device)) return false;
  if (args.pixels <= 0 || args.channels <= 0 || args.k <= 0 || args.pixels > INT32_MAX || args.channels > INT32_MAX ||
      args.k > INT32_MAX || args.channels % 16 != 0 || args.k % 16 != 0)
    return false;
  for (const void* p : {args.x, args.w, static_cast<const void*>(args.alpha), static_cast<const void*>(args.bias),
                        args.c, static_cast<const void*>(args.d)})
    if (p && !Aligned16(p)) return false;
  return Family::CanImplement(config, args, device);
}

size_t CutlassInt8GemmWorkspaceBytes(int config, const CutlassInt8GemmArgs& args, int device) {
  return Family::Workspace(config, args, device);
}

const char* CutlassInt8GemmRun(int config, const CutlassInt8GemmArgs& args, void* workspace, int device,
                               cudaStream_t stream, int repeats) {
  return Family::Run(config, args, workspace, device, stream, repeats);
}

}  // namespace kiln::backend::cuda
