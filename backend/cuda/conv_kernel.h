// Convolutions on the GPU through cuDNN's graph API (the header-only cuDNN frontend): Conv2D and
// DepthwiseConv2D in NHWC or NCHW with TensorFlow's padding rules, float32/float16/bfloat16, the
// node's bias, a residual tensor added after it and a ReLU fused into the same cuDNN graph.
// Weights are constant: they are reordered once to cuDNN's KRSC layout and kept on the device.
// One cuDNN execution plan per input shape: cuDNN's heuristics propose candidates, and the first
// kTunedCandidates that build are timed on the device (the fastest is kept, and remembered in the
// timing cache, timing_cache.h); FP32 engines exclude TF32, Winograd and FFT (exact FP32 by default).
// Convolutions marked by cuda-quantized-conv (quantized_conv.h) quantize their input to 8 bits
// first and run cuDNN's int8 convolution (int32 accumulation) or float8 E4M3 convolution (float
// accumulation) with the per-channel scale, bias, residual and ReLU in its float epilogue; a shape
// cuDNN has no 8-bit kernel for runs the float plan on the dequantized input instead (the same
// values, up to float summation). A quantized convolution runs a library kernel instead
// (quantized_library_conv.h: cuBLASLt's int8 or CUTLASS's int8 / E4M3 products for 1x1s, CUTLASS's
// sm90 convolutions) where that was faster when timed.
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
// y = relu?(conv(x) + bias + residual?), then, for 8-bit readers of a quantized convolution, y *
// inv_scale in its 8-bit format (cuDNN's conversion rounds to nearest; int8 saturates to [-128,
// 127], float8 is clamped to [-448, 448] first). A residual stored in 8 bits (its producer wrote
// it so for its 8-bit readers) is added as residual * its scale.
struct ConvEpilogue {
  bool residual = false;                                     // add a tensor of the output's shape and layout
  std::optional<float> residual_scale;                       // the residual is stored in 8 bits: its scale
  ir::QuantFormat residual_format = ir::QuantFormat::kInt8;  // and format
  bool relu = false;
  std::optional<QuantizeParams> quantized_output;          // the readers' quantization (divisor 0)
  ir::QuantFormat output_format = ir::QuantFormat::kInt8;  // and their format
};

// Candidate plans timed per convolution and input shape.
inline constexpr int kTunedCandidates = 8;

class ConvKernel {
 public:
  // input_quantized: the input arrives quantized (its producer wrote 8 bits for this marked
  // convolution); then only quantized plans do, and a shape cuDNN refuses is kUnavailable.
  // choose_by_timing: a marked convolution reading float input times its 8-bit plan against its
  // float plan per shape and keeps the faster (CompileOptions::quantized_by_timing).
  ConvKernel(const ir::Graph& graph, const ir::Node& node, int device, ConvEpilogue epilogue = {},
             bool input_quantized = false, bool choose_by_timing = false);
  ~ConvKernel();
  // Builds and tunes the plan for these shapes now (the engine does so at build time for its
  // profile); kUnavailable when cuDNN cannot run the fused graph.
  void Prepare(const Shape& x_shape, const Shape& y_shape) const;
  // x: the input activations (device); residual: the tensor added (ConvEpilogue::residual), else
  // null; out: the output.
  void Launch(const Tensor& x, const Tensor* residual, Tensor& out, cudaStream_t stream) const;
  // Plans made so far (one per input shape; timed, or chosen by the timing cache).
  int plans_tuned() const;
  // The format cuda-quantized-conv marked it with (nullopt: unmarked); whether every plan built
  // so far runs cuDNN's 8-bit kernels, and if not, why one does not (cuDNN's refusal, or a
  // faster float plan).
  std::optional<ir::QuantFormat> quantized_format() const;
  bool runs_quantized() const;
  std::string quantized_refusal() const;
  bool writes_quantized() const;
  // The library ("cublasLt" or "cutlass") whose quantized kernel every plan built so far runs
  // instead of a cuDNN graph (where that was faster when timed); empty when a plan runs cuDNN's.
  std::string quantized_library() const;
  bool reads_quantized_residual() const;  // ConvEpilogue::residual_scale

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cuda
