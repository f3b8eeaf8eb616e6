// A quantized convolution run by a library kernel other than cuDNN's and chosen by timing:
// cuBLASLt's IMMA products (int8 only) and CUTLASS's sm90 products (cutlass_quantized_gemm.h) for
// 1x1 stride-1 unpadded convolutions, CUTLASS's sm90 implicit-GEMM convolutions
// (cutlass_quantized_conv.h) for any with one group. All share the epilogue of a quantized
// convolution:
//   y[n][p][q][k] = out(relu?(alpha[k] * sum x * w + beta * residual[n][p][q][k] + bias[k]))
// x NHWC and the filter KRSC in int8 or E4M3; residual and y NHWC in the output's storage (int8
// with int8 input; E4M3, or float16 with a float16 residual, with E4M3 input: QuantizedOperands).
// alpha and bias float32 [K] on the device (the per-channel scale and the bias, both over an 8-bit
// output's scale), beta a float on the host (an 8-bit residual's scale over the output's; 1 for a
// float16 one). The conversion to 8 bits rounds to nearest even and saturates (E4M3 at 448).
// Candidates are timed on scratch operands (and the choice remembered in the timing cache,
// timing_cache.h); the convolution compares the winner's time with cuDNN's plan.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "backend/cuda/conv_geometry.h"
#include "backend/cuda/quantized_operands.h"

namespace kiln::backend::cuda {

struct QuantizedConvShape : ConvGeometry {
  QuantizedOperands operands;
  bool residual = false;  // beta * residual is added
  bool relu = false;
  bool bias = false;
  std::string ToString() const;
};

class QuantizedLibraryConv {
 public:
  // kUnavailable when no library has a kernel for the shape on this device.
  explicit QuantizedLibraryConv(const QuantizedConvShape& shape);
  ~QuantizedLibraryConv();
  QuantizedLibraryConv(const QuantizedLibraryConv&) = delete;
  QuantizedLibraryConv& operator=(const QuantizedLibraryConv&) = delete;
  // Microseconds per run of the chosen kernel on scratch operands (as cuDNN plans are timed).
  double microseconds() const { return microseconds_; }
  const QuantizedConvShape& shape() const { return shape_; }
  // The libraries' versions and kernels, for timing cache keys of choices between them and others.
  static std::string LibrariesKey();
  // The chosen kernel's library ("cublasLt" or "cutlass") and its name in the tactic log.
  std::string library() const;
  std::string kernel() const;
  // Device operands, 16-byte aligned; residual only with shape().residual, bias only with
  // shape().bias.
  void Launch(const void* x, const void* filter, const float* alpha, const float* bias, const void* residual,
              float beta, void* y, cudaStream_t stream) const;

 private:
  struct Impl;
  QuantizedConvShape shape_;
  double microseconds_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cuda
