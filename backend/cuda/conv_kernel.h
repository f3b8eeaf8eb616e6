// Convolutions on the GPU through cuDNN's graph API (the header-only cuDNN frontend): Conv2D and
// DepthwiseConv2D in NHWC or NCHW with TensorFlow's padding rules, float32/float16/bfloat16, the
// node's bias, a residual tensor added after it and a ReLU fused into the same cuDNN graph.
// Weights are constant: they are reordered once to cuDNN's KRSC layout and kept on the device.
// One cuDNN execution plan per input shape: cuDNN's heuristics propose candidates, and the first
// kTunedCandidates that build are timed on the device (the fastest is kept, and remembered in the
// timing cache, timing_cache.h); FP32 engines exclude TF32, Winograd and FFT (exact FP32 by default).
// Convolutions marked by cuda-int8-conv (int8_conv.h) quantize their input to int8 first and run
// cuDNN's int8 convolution (int32 accumulation) with the per-channel scale, bias, residual and
// ReLU in its float epilogue; a shape cuDNN has no int8 kernel for runs the float plan on the
// dequantized input instead (the same values, up to float summation).
// Built only with cuDNN (KILN_WITH_CUDNN); without it convolutions run natively.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>

#include "backend/cuda/quantize_kernel.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

// Whether this build has cuDNN convolutions.
bool HaveCudnn();
// Why the GPU cannot run this convolution node, or nullopt.
std::optional<std::string> ConvUnsupported(const ir::Graph& graph, const ir::Node& node);
// cuDNN's version ("9.19.0"), or "none".
std::string CudnnVersion();

// What runs after the convolution and its bias, inside the same cuDNN graph:
// y = relu?(conv(x) + bias + residual?), then, for int8 readers, int8(y * inv_scale) (cuDNN's
// conversion rounds to nearest and saturates to [-128, 127]).
struct ConvEpilogue {
  bool residual = false;  // add a tensor of the output's shape and layout
  bool relu = false;
  std::optional<QuantizeParams> int8_output;  // the readers' quantization (divisor 0)
};

// Candidate plans timed per convolution and input shape.
inline constexpr int kTunedCandidates = 8;

class ConvKernel {
 public:
  // input_int8: the input arrives quantized (its producer wrote int8 for this marked
  // convolution); then only int8 plans do, and a shape cuDNN refuses is kUnavailable.
  ConvKernel(const ir::Graph& graph, const ir::Node& node, int device, ConvEpilogue epilogue = {},
             bool input_int8 = false);
  ~ConvKernel();
  // Builds and tunes the plan for these shapes now (the engine does so at build time for its
  // profile); kUnavailable when cuDNN cannot run the fused graph.
  void Prepare(const Shape& x_shape, const Shape& y_shape) const;
  // x: the input activations (device); residual: the tensor added (ConvEpilogue::residual), else
  // null; out: the output.
  void Launch(const Tensor& x, const Tensor* residual, Tensor& out, cudaStream_t stream) const;
  // Plans made so far (one per input shape; timed, or chosen by the timing cache).
  int plans_tuned() const;
  // Marked int8 by cuda-int8-conv; whether every plan built so far runs cuDNN's int8 kernels,
  // and if not, why cuDNN refused one.
  bool marked_int8() const;
  bool runs_int8() const;
  std::string int8_refusal() const;
  bool writes_int8() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cuda
