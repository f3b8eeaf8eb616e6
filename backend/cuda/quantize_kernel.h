// Quantizing activations on the GPU for 8-bit kernels. Int8: q = round_half_even(clamp(x *
// inv_scale, qmin, qmax)) (x / divisor when the graph divides), NaN as 0, written as int8 (the same
// arithmetic as the CPU's int8 quantization, backend/cpu/int8.h, and the chain's reference ops).
// Float8: q = RoundFloat8E4M3(x * inv_scale) (saturating at +-448, NaN kept), written as E4M3
// bytes. Or, for a float kernel that reads a quantize-dequantize chain's value, q * scale in x's
// own dtype.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "backend/cuda/nvrtc_compiler.h"
#include "ir/quant_dequant.h"
#include "kiln/dtype.h"

namespace kiln::backend::cuda {

// What the generated kernel reads (layout shared with its source).
struct QuantizeParams {
  float inv_scale = 1, divisor = 0, qmin = -127, qmax = 127, scale = 1;
};
QuantizeParams QuantizeParamsOf(const ir::QuantDequant& q);

// The dtype 8-bit values of `format` are stored as: int8, or E4M3 bytes as uint8.
inline DType StoredDType(ir::QuantFormat format) {
  return format == ir::QuantFormat::kInt8 ? DType::kInt8 : DType::kUInt8;
}

// CUDA source (after KernelPrologue) defining `unsigned char KilnE4M3Byte(float v)`: the E4M3FN
// byte of RoundFloat8E4M3(v) (nearest, ties to even, saturating at +-448, NaN to NaN), for every
// kernel that writes E4M3.
const char* Float8ByteSource();

// The kernels' CUDA source for input dtype `in` (kInvalidArgument for other dtypes); compiling it
// needs no GPU.
std::string QuantizeKernelSource(DType in, ir::QuantFormat format, bool dequantize);

class QuantizeKernel {
 public:
  // `in`: float32, float16 or bfloat16. dequantize: write q * scale as `in`, else q as int8 or
  // as E4M3 bytes (uint8).
  QuantizeKernel(DType in, ir::QuantFormat format, bool dequantize, GpuArch arch);
  DType input_dtype() const { return in_; }
  DType output_dtype() const { return dequantize_ ? in_ : StoredDType(format_); }
  // n elements of x (device) into out (device).
  void Launch(const void* x, void* out, int64_t n, const QuantizeParams& params, cudaStream_t stream) const;

 private:
  DType in_;
  ir::QuantFormat format_;
  bool dequantize_;
  std::shared_ptr<const CudaModule> module_;
  cudaKernel_t scalar_ = nullptr;
  cudaKernel_t vector_ = nullptr;
};

}  // namespace kiln::backend::cuda
