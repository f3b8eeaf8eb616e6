// CUTLASS sm90 implicit-GEMM int8 convolutions (cutlass_quantized_conv.h): one kernel per tile
// configuration covers every epilogue form (cutlass_quantized_common.cuh). CUTLASS's sm90
// convolutions are not persistent: one CTA per output tile.
#include <cutlass/cutlass.h>
#include <cutlass/kernel_hardware_info.h>

#include <cstdint>
#include <cute/tensor.hpp>
#include <cutlass/conv/collective/collective_builder.hpp>
#include <cutlass/conv/convnd_problem_shape.hpp>
#include <cutlass/conv/device/conv_universal_adapter.hpp>
#include <cutlass/conv/kernel/conv_universal.hpp>
#include <cutlass/epilogue/collective/collective_builder.hpp>

#include "backend/cuda/cutlass_quantized_common.cuh"
#include "backend/cuda/cutlass_quantized_conv.h"

namespace kiln::backend::cuda {
namespace {

using namespace cute;
using cutlass_quantized::Aligned16;
using cutlass_quantized::DeviceIsSm90;

// The implicit GEMM: M = output pixels (n, p, q), N = output channels, K = (c, s, r).
template <class Ops, class TileShape>
struct ConvKernel {
  using In = typename Ops::Input;
  using Out = typename Ops::Output;
  using Res = typename Ops::Residual;
  static constexpr int kOutAlign = 16 / sizeof(Out), kResAlign = 16 / sizeof(Res);
  using ClusterShape = Shape<_1, _1, _1>;
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, typename Ops::Accumulator, float, Res,
      cutlass::layout::TensorNHWC, kResAlign, Out, cutlass::layout::TensorNHWC, kOutAlign,
      cutlass::epilogue::TmaWarpSpecialized, typename Ops::Fusion>::CollectiveOp;
  using Mainloop = typename cutlass::conv::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, cutlass::conv::Operator::kFprop, In,
      cutlass::layout::TensorNHWC, 16, In, cutlass::layout::TensorNHWC, 16, typename Ops::Accumulator, TileShape,
      ClusterShape,
      cutlass::conv::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      cutlass::conv::KernelImplicitTmaWarpSpecializedSm90>::CollectiveOp;
  using ProblemShape = cutlass::conv::ConvProblemShape<cutlass::conv::Operator::kFprop, Mainloop::NumSpatialDimensions>;
  using Kernel = cutlass::conv::kernel::ConvUniversal<ProblemShape, Mainloop, Epilogue>;
  using Adapter = cutlass::conv::device::ConvUniversalAdapter<Kernel>;

  static typename Adapter::Arguments Arguments(const CutlassQuantizedConvArgs& args, int device) {
    const ConvGeometry& a = args.geometry;
    const auto i = [](int64_t v) { return static_cast<int>(v); };
    ProblemShape problem(cutlass::conv::Mode::kCrossCorrelation, {i(a.n), i(a.h), i(a.w), i(a.c)},
                         {i(a.k), i(a.r), i(a.s), i(a.c)}, {i(a.pad_top), i(a.pad_left)},
                         {i(a.pad_bottom), i(a.pad_right)}, {i(a.stride_h), i(a.stride_w)},
                         {i(a.dilation_h), i(a.dilation_w)}, 1);
    // C and D are the GEMM's M x N view of the NHWC output: each M mode's stride is the output's.
    typename Kernel::StrideC stride_c{};
    typename Kernel::StrideD stride_d{};
    cute::for_each(cute::make_seq<cute::rank<0>(typename Kernel::StrideC{})>{}, [&](auto m) {
      cute::get<0, m>(stride_c) = problem.stride_C[ProblemShape::RankT - 2 - m];
      cute::get<0, m>(stride_d) = problem.stride_C[ProblemShape::RankT - 2 - m];
    });
    typename Adapter::Arguments out{};
    out.problem_shape = problem;
    out.mainloop.ptr_A = static_cast<const In*>(args.x);
    out.mainloop.ptr_B = static_cast<const In*>(args.filter);
    out.epilogue.ptr_C = static_cast<const Res*>(args.residual ? args.residual : args.y);
    out.epilogue.dC = stride_c;
    out.epilogue.ptr_D = static_cast<Out*>(args.y);
    out.epilogue.dD = stride_d;
    cutlass_quantized::SetEpilogue(out.epilogue.thread, args.operands.output, args.alpha, args.bias,
                                   args.residual != nullptr, args.beta, args.relu);
    out.hw_info.device_id = device;
    out.hw_info.sm_count = cutlass::KernelHardwareInfo::query_device_multiprocessor_count(device);
    return out;
  }
};

template <class Ops>
struct Config0 : ConvKernel<Ops, Shape<_128, _64, Shape<_64>>> {
  static constexpr const char* kName = "conv 128x64x64";
};
template <class Ops>
struct Config1 : ConvKernel<Ops, Shape<_128, _128, Shape<_64>>> {
  static constexpr const char* kName = "conv 128x128x64";
};
template <class Ops>
struct Config2 : ConvKernel<Ops, Shape<_128, _128, Shape<_128>>> {
  static constexpr const char* kName = "conv 128x128x128";
};
template <class Ops>
struct Config3 : ConvKernel<Ops, Shape<_64, _256, Shape<_64>>> {
  static constexpr const char* kName = "conv 64x256x64";
};
template <class Ops>
using Family = cutlass_quantized::KernelFamily<Config0<Ops>, Config1<Ops>, Config2<Ops>, Config3<Ops>>;

}  // namespace

int CutlassQuantizedConvConfigs(QuantizedOperands operands) { return cutlass_quantized::Configs<Family>(operands); }

std::string CutlassQuantizedConvConfigName(QuantizedOperands operands, int config) {
  return cutlass_quantized::ConfigName<Family>(operands, config);
}

bool CutlassQuantizedConvCanRun(int config, const CutlassQuantizedConvArgs& args, int device) {
  if (config < 0 || config >= CutlassQuantizedConvConfigs(args.operands) || !DeviceIsSm90(device)) return false;
  const ConvGeometry& a = args.geometry;
  for (int64_t v : {a.n, a.h, a.w, a.c, a.k, a.r, a.s, a.p, a.q, a.stride_h, a.stride_w, a.dilation_h, a.dilation_w})
    if (v <= 0 || v > INT32_MAX) return false;
  for (int64_t v : {a.pad_top, a.pad_left, a.pad_bottom, a.pad_right})
    if (v < 0 || v > INT32_MAX) return false;
  // Element counts the kernels index with 32-bit ints somewhere stay below 2^31.
  if (a.n * a.h * a.w * a.c > INT32_MAX || a.n * a.p * a.q * a.k > INT32_MAX || a.k * a.r * a.s * a.c > INT32_MAX)
    return false;
  if (a.c % 16 != 0 || a.k % 16 != 0) return false;
  if (!a.OutputAgrees()) return false;
  for (const void* p : {args.x, args.filter, static_cast<const void*>(args.alpha), static_cast<const void*>(args.bias),
                        args.residual, static_cast<const void*>(args.y)})
    if (p && !Aligned16(p)) return false;
  return cutlass_quantized::CanImplement<Family>(config, args, device);
}

size_t CutlassQuantizedConvWorkspaceBytes(int config, const CutlassQuantizedConvArgs& args, int device) {
  return cutlass_quantized::Workspace<Family>(config, args, device);
}

const char* CutlassQuantizedConvRun(int config, const CutlassQuantizedConvArgs& args, void* workspace, int device,
                                    cudaStream_t stream, int repeats) {
  return cutlass_quantized::Run<Family>(config, args, workspace, device, stream, repeats);
}

}  // namespace kiln::backend::cuda
