// What the CUTLASS sm90 int8 kernels (cutlass_int8_gemm.cu, cutlass_int8_conv.cu) share: the
// quantized epilogue and the checks of device and operands. Included by nvcc-compiled files only.
#pragma once

#include <cuda_runtime.h>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/kernel_hardware_info.hpp>
#include <cutlass/epilogue/thread/activation.h>

#include <cstdint>
#include <limits>

namespace kiln::backend::cuda::cutlass_int8 {

// int8(round(clamp(alpha[col] * acc + beta * C + bias[col], lower, upper))): one kernel covers
// every form (no residual: beta 0 and C not read; ReLU: lower 0; no bias: a null vector reads 0).
using Fusion = cutlass::epilogue::fusion::PerColLinCombPerColBiasEltAct<cutlass::epilogue::thread::Clamp, int8_t,
                                                                        float, float, int8_t, float>;

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

}  // namespace kiln::backend::cuda::cutlass_int8
