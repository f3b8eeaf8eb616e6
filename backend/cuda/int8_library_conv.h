// A quantized int8 convolution writing int8, run by a library kernel other than cuDNN's and
// chosen by timing: cuBLASLt's IMMA products and CUTLASS's sm90 products (cutlass_int8_gemm.h) for
// 1x1 stride-1 unpadded convolutions, CUTLASS's sm90 implicit-GEMM convolutions
// (cutlass_int8_conv.h) for any with one group. All share the epilogue of a quantized convolution:
//   y[n][p][q][k] = int8(round(relu?(alpha[k] * sum x * w + beta * residual[n][p][q][k] + bias[k])))
// x, residual and y int8 NHWC, the filter int8 KRSC; alpha and bias float32 [K] on the device (the
// per-channel scale and the bias, both over the output's scale), beta a float on the host (the
// residual's scale over the output's). int8 conversion rounds to nearest even and saturates.
// Candidates are timed on scratch operands (and the choice remembered in the timing cache,
// timing_cache.h); the convolution compares the winner's time with cuDNN's plan.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "backend/cuda/conv_geometry.h"

namespace kiln::backend::cuda {

struct Int8ConvShape : ConvGeometry {
  bool residual = false;  // beta * residual is added
  bool relu = false;
  bool bias = false;
  std::string ToString() const;
};

class Int8LibraryConv {
 public:
  // kUnavailable when no library has a kernel for the shape on this device.
  explicit Int8LibraryConv(const Int8ConvShape& shape);
  ~Int8LibraryConv();
  Int8LibraryConv(const Int8LibraryConv&) = delete;
  Int8LibraryConv& operator=(const Int8LibraryConv&) = delete;
  // Microseconds per run of the chosen kernel on scratch operands (as cuDNN plans are timed).
  double microseconds() const { return microseconds_; }
  const Int8ConvShape& shape() const { return shape_; }
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
  Int8ConvShape shape_;
  double microseconds_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cuda
