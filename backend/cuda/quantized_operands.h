// The storage of a quantized convolution's operands as the library kernels take them
// (quantized_library_conv.h, cutlass_quantized_gemm.h, cutlass_quantized_conv.h): the input and
// the filter in one 8-bit format, the output and the residual added to it each in 8 bits or
// float16.
// Plain C++17: nvcc compiles it into the CUTLASS kernels too.
#pragma once

namespace kiln::backend::cuda {

enum class KernelStorage : int { kInt8, kFloat8E4M3, kFloat16 };

struct QuantizedOperands {
  KernelStorage input = KernelStorage::kInt8;     // x and the filter
  KernelStorage output = KernelStorage::kInt8;    // y
  KernelStorage residual = KernelStorage::kInt8;  // the residual, when there is one
  bool operator==(const QuantizedOperands& o) const {
    return input == o.input && output == o.output && residual == o.residual;
  }
};

// The combinations library kernels exist for: int8 throughout; E4M3 writing E4M3 with an E4M3 or a
// float16 residual; E4M3 writing float16 with a float16 residual (a float8 engine keeps its
// residual stream in float16). cutlass_quantized_common.cuh compiles each.
inline constexpr QuantizedOperands kLibraryOperands[] = {
    {KernelStorage::kInt8, KernelStorage::kInt8, KernelStorage::kInt8},
    {KernelStorage::kFloat8E4M3, KernelStorage::kFloat8E4M3, KernelStorage::kFloat8E4M3},
    {KernelStorage::kFloat8E4M3, KernelStorage::kFloat8E4M3, KernelStorage::kFloat16},
    {KernelStorage::kFloat8E4M3, KernelStorage::kFloat16, KernelStorage::kFloat16},
};

inline const char* KernelStorageName(KernelStorage s) {
  switch (s) {
    case KernelStorage::kInt8:
      return "int8";
    case KernelStorage::kFloat8E4M3:
      return "e4m3";
    case KernelStorage::kFloat16:
      return "float16";
  }
  return "?";
}

}  // namespace kiln::backend::cuda
