// An int8 matrix product on integer tensor cores (int8 operands, int32 sums) through cuBLASLt's
// IMMA kernels or, on Hopper, CUTLASS's sm90 kernels (cutlass_int8_gemm.h), with the epilogue of a
// quantized convolution writing int8:
//   D[j][i] = int8(round(relu?(alpha[i] * sum_k A[i][k] * B[j][k] + beta * C[j][k] + bias[i])))
// A: int8 [m][k] (a 1x1 convolution's filter, KRSC), B: int8 [n][k] (its input, NHWC pixels),
// C, D: int8 [n][m] (residual and output, NHWC), row-major; alpha and bias float32 [m] on the
// device (the per-channel scale and the bias, both over the output's scale), beta a float on the
// host (the residual's scale over the output's). int8 conversion saturates to [-128, 127].
// The kernel is chosen by timing both libraries' candidates on scratch operands (and remembered in
// the timing cache, timing_cache.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

namespace kiln::backend::cuda {

struct Int8GemmShape {
  int64_t m = 0, n = 0, k = 0;
  bool residual = false;  // C is read (beta * C)
  bool relu = false;
  bool bias = false;
};

class Int8Gemm {
 public:
  // kUnavailable when neither library has a kernel for the shape on this device.
  explicit Int8Gemm(const Int8GemmShape& shape);
  ~Int8Gemm();
  Int8Gemm(const Int8Gemm&) = delete;
  Int8Gemm& operator=(const Int8Gemm&) = delete;
  // Microseconds per run of the chosen algorithm on scratch operands (as cuDNN plans are timed).
  double microseconds() const { return microseconds_; }
  const Int8GemmShape& shape() const { return shape_; }
  // The libraries' versions and kernels, for timing cache keys of choices between them and others.
  static std::string LibrariesKey();
  // The chosen kernel's library ("cublasLt" or "cutlass") and its name in the tactic log.
  std::string library() const;
  std::string kernel() const;
  // Device operands, 16-byte aligned; c only with shape().residual, bias only with shape().bias.
  void Launch(const void* a, const void* b, const float* alpha, const float* bias, const void* c, float beta, void* d,
              cudaStream_t stream) const;

 private:
  struct Impl;
  Int8GemmShape shape_;
  double microseconds_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cuda
