// What the CUTLASS sm90 quantized kernels (cutlass_quantized_gemm.cu, cutlass_quantized_conv.cu)
// share: the element types of each operand combination, the quantized epilogue and the checks of
// device and operands. Included by nvcc-compiled files only.
#pragma once

#include <cuda_runtime.h>
#include <cutlass/epilogue/thread/activation.h>
#include <cutlass/float8.h>
#include <cutlass/half.h>

#include <cstddef>
#include <cstdint>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/kernel_hardware_info.hpp>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>

#include "backend/cuda/quantized_operands.h"

namespace kiln::backend::cuda::cutlass_quantized {

// The CUTLASS element type of each storage.
template <KernelStorage S>
struct ElementOf;
template <>
struct ElementOf<KernelStorage::kInt8> {
  using type = int8_t;
};
template <>
struct ElementOf<KernelStorage::kFloat8E4M3> {
  using type = cutlass::float_e4m3_t;
};
template <>
struct ElementOf<KernelStorage::kFloat16> {
  using type = cutlass::half_t;
};

// One compiled operand combination: int8 products sum in int32, E4M3 ones in float.
template <KernelStorage In, KernelStorage Out, KernelStorage Res = Out>
struct Operands {
  static constexpr QuantizedOperands kOperands{In, Out, Res};
  using Input = typename ElementOf<In>::type;
  using Output = typename ElementOf<Out>::type;
  using Residual = typename ElementOf<Res>::type;
  using Accumulator = std::conditional_t<In == KernelStorage::kInt8, int32_t, float>;
  // out(clamp(alpha[col] * acc + beta * C + bias[col], lower, upper)): one kernel covers every
  // form (no residual: beta 0 and C not read; ReLU: lower 0; no bias: a null vector reads 0). The
  // conversion to the output rounds to nearest even and saturates (int8, E4M3's satfinite).
  using Fusion = cutlass::epilogue::fusion::PerColLinCombPerColBiasEltAct<cutlass::epilogue::thread::Clamp, Output,
                                                                          float, float, Residual, float>;
};

// The combinations compiled: int8 throughout; E4M3 writing E4M3 (residual E4M3 or float16), or
// float16 with a float16 residual (a float8 engine's residual stream is float16).
using Int8 = Operands<KernelStorage::kInt8, KernelStorage::kInt8>;
using Fp8 = Operands<KernelStorage::kFloat8E4M3, KernelStorage::kFloat8E4M3>;
using Fp8HalfResidual = Operands<KernelStorage::kFloat8E4M3, KernelStorage::kFloat8E4M3, KernelStorage::kFloat16>;
using Fp8ToHalf = Operands<KernelStorage::kFloat8E4M3, KernelStorage::kFloat16>;

template <class FusionArguments>
void SetEpilogue(FusionArguments& fusion, KernelStorage output, const float* alpha, const float* bias, bool residual,
                 float beta, bool relu) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  // E4M3 is clamped explicitly to its largest finite value, as RoundFloat8E4M3 saturates.
  const float largest = output == KernelStorage::kFloat8E4M3 ? 448.0f : kInf;
  fusion.alpha_ptr = alpha;
  fusion.bias_ptr = bias;
  fusion.beta = residual ? beta : 0.0f;
  fusion.activation.lower_bound = relu ? 0.0f : -largest;
  fusion.activation.upper_bound = largest;
}

inline bool DeviceIsSm90(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) return false;
  return major == 9 && minor == 0;
}

inline bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// A family of kernels of one operand combination, one per tile configuration: each Config has
// `Adapter` (CUTLASS's GemmUniversalAdapter or ConvUniversalAdapter), `static constexpr const
// char* kName` and `static Adapter::Arguments Arguments(const Args&, int device)`. Calls reach the
// configuration numbered `config` (checked by the caller).
template <class... Configs>
struct KernelFamily {
  static constexpr int kCount = sizeof...(Configs);

  template <int I = 0, class F>
  static auto Dispatch(int config, F&& f) {
    using Config = std::tuple_element_t<I, std::tuple<Configs...>>;
    if constexpr (I + 1 == kCount) {
      return f(Config{});
    } else {
      if (config == I) return f(Config{});
      return Dispatch<I + 1>(config, f);
    }
  }
  static std::string Name(int config) {
    return Dispatch(config, [](auto c) { return std::string(decltype(c)::kName); });
  }
  template <class Args>
  static bool CanImplement(int config, const Args& args, int device) {
    return Dispatch(config, [&](auto c) {
      using C = decltype(c);
      return C::Adapter::can_implement(C::Arguments(args, device)) == cutlass::Status::kSuccess;
    });
  }
  template <class Args>
  static size_t Workspace(int config, const Args& args, int device) {
    return Dispatch(config, [&](auto c) {
      using C = decltype(c);
      return static_cast<size_t>(C::Adapter::get_workspace_size(C::Arguments(args, device)));
    });
  }
  // Null when launched `repeats` times, otherwise CUTLASS's reason.
  template <class Args>
  static const char* Run(int config, const Args& args, void* workspace, int device, cudaStream_t stream, int repeats) {
    if (config < 0 || config >= kCount) return "no such configuration";
    return Dispatch(config, [&](auto c) -> const char* {
      using C = decltype(c);
      typename C::Adapter op;
      cutlass::Status status = op.initialize(C::Arguments(args, device), workspace, stream);
      if (status != cutlass::Status::kSuccess) return cutlass::cutlassGetStatusString(status);
      for (int r = 0; r < repeats; ++r) {
        status = op.run(stream);
        if (status != cutlass::Status::kSuccess) return cutlass::cutlassGetStatusString(status);
      }
      return nullptr;
    });
  }
};

// Calls f(Family<Operands>{}) with the family of the operand combination (one of
// kLibraryOperands); `none` when it is not compiled.
template <template <class> class Family, class R, class F>
R WithFamily(QuantizedOperands operands, R none, F&& f) {
  if (operands == Int8::kOperands) return f(Family<Int8>{});
  if (operands == Fp8::kOperands) return f(Family<Fp8>{});
  if (operands == Fp8HalfResidual::kOperands) return f(Family<Fp8HalfResidual>{});
  if (operands == Fp8ToHalf::kOperands) return f(Family<Fp8ToHalf>{});
  return none;
}

// What the public functions of each kernel file do with its Family (a template over the operand
// combination): the number of configurations, a configuration's name ("cutlass sm90
// <input>-><output>[ (<residual> residual)] <tile>"), and CUTLASS's checks, workspace and launch.
template <template <class> class Family>
int Configs(QuantizedOperands operands) {
  return WithFamily<Family>(operands, 0, [](auto f) { return decltype(f)::kCount; });
}

template <template <class> class Family>
std::string ConfigName(QuantizedOperands o, int config) {
  std::string name = std::string("cutlass sm90 ") + KernelStorageName(o.input) + "->" + KernelStorageName(o.output);
  if (o.residual != o.output) name += std::string(" (") + KernelStorageName(o.residual) + " residual)";
  if (config < 0 || config >= Configs<Family>(o)) return name + " (unknown configuration)";
  return name + " " + WithFamily<Family>(o, std::string(), [&](auto f) { return decltype(f)::Name(config); });
}

template <template <class> class Family, class Args>
bool CanImplement(int config, const Args& args, int device) {
  return WithFamily<Family>(args.operands, false,
                            [&](auto f) { return decltype(f)::CanImplement(config, args, device); });
}

template <template <class> class Family, class Args>
size_t Workspace(int config, const Args& args, int device) {
  return WithFamily<Family>(args.operands, size_t{0},
                            [&](auto f) { return decltype(f)::Workspace(config, args, device); });
}

template <template <class> class Family, class Args>
const char* Run(int config, const Args& args, void* workspace, int device, cudaStream_t stream, int repeats) {
  return WithFamily<Family>(args.operands, static_cast<const char*>("no kernels for these operand types"),
                            [&](auto f) { return decltype(f)::Run(config, args, workspace, device, stream, repeats); });
}

}  // namespace kiln::backend::cuda::cutlass_quantized
