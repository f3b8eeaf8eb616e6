// What the CUTLASS sm90 int8 kernels (cutlass_int8_gemm.cu, cutlass_int8_conv.cu) share: the
// quantized epilogue and the checks of device and operands. Included by nvcc-compiled files only.
#pragma once

#include <cuda_runtime.h>
#include <cutlass/epilogue/thread/activation.h>

#include <cstddef>
#include <cstdint>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/kernel_hardware_info.hpp>
#include <limits>
#include <tuple>

namespace kiln::backend::cuda::cutlass_int8 {

// int8(round(clamp(alpha[col] * acc + beta * C + bias[col], lower, upper))): one kernel covers
// every form (no residual: beta 0 and C not read; ReLU: lower 0; no bias: a null vector reads 0).
using Fusion = cutlass::epilogue::fusion::PerColLinCombPerColBiasEltAct<cutlass::epilogue::thread::Clamp, int8_t, float,
                                                                        float, int8_t, float>;

template <class FusionArguments>
void SetEpilogue(FusionArguments& fusion, const float* alpha, const float* bias, bool residual, float beta, bool relu) {
  fusion.alpha_ptr = alpha;
  fusion.bias_ptr = bias;
  fusion.beta = residual ? beta : 0.0f;
  fusion.activation.lower_bound = relu ? 0.0f : -std::numeric_limits<float>::infinity();
  fusion.activation.upper_bound = std::numeric_limits<float>::infinity();
}

inline bool DeviceIsSm90(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) return false;
  return major == 9 && minor == 0;
}

inline bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// A family of kernels, one per tile configuration: each Config has `Adapter` (CUTLASS's
// GemmUniversalAdapter or ConvUniversalAdapter) and `static Adapter::Arguments Arguments(const
// Args&, int device)`. Calls reach the configuration numbered `config` (checked by the caller).
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

}  // namespace kiln::backend::cuda::cutlass_int8
