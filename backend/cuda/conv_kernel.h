// Convolutions on the GPU through cuDNN's graph API (the header-only cuDNN frontend): Conv2D and
// DepthwiseConv2D in NHWC or NCHW with TensorFlow's padding rules, float32/float16/bfloat16, the
// node's bias fused into the same cuDNN graph. Weights are constant: they are reordered once to
// cuDNN's KRSC layout and kept on the device. One cuDNN execution plan per input shape, chosen by
// cuDNN's heuristics; FP32 engines exclude TF32, Winograd and FFT (exact FP32 by default).
// Built only with cuDNN (KILN_WITH_CUDNN); without it convolutions run natively.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

// Whether this build has cuDNN convolutions.
bool HaveCudnn();
// Why the GPU cannot run this convolution node, or nullopt.
std::optional<std::string> ConvUnsupported(const ir::Graph& graph, const ir::Node& node);
// cuDNN's version ("9.19.0"), or "none".
std::string CudnnVersion();

class ConvKernel {
 public:
  // With `relu`, the ReLU that follows the convolution (and its bias) runs in the same cuDNN graph.
  ConvKernel(const ir::Graph& graph, const ir::Node& node, int device, bool relu = false);
  ~ConvKernel();
  // x: the input activations (device); out: the output's shape.
  void Launch(const Tensor& x, Tensor& out, cudaStream_t stream) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cuda
