// 2-D MaxPool and AvgPool on the GPU (generated kernel, one thread per output element, or per
// 16 bytes of an output pixel's channels when channels are last) with
// TensorFlow's padding rules: padding never wins a max, and an average counts only the window's
// taps inside the input. NHWC or NCHW; float32/float16/bfloat16/float64. A MaxPool whose readers
// are 8-bit convolutions may write its result quantized for them (int8 or E4M3 bytes, the
// arithmetic of quantize_kernel.h), so that they read it as it is.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/nvrtc_compiler.h"
#include "backend/cuda/quantize_kernel.h"
#include "ir/graph.h"
#include "ir/ops/nn_util.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

std::optional<std::string> PoolUnsupported(const ir::Graph& graph, const ir::Node& node);
// The generated source for `op` ("MaxPool", "AvgPool") on `dtype` (kernels kiln_pool_i64,
// kiln_pool_i32 and kiln_pool_i32_vec), writing `dtype` or, with `quantized_output`, int8 or
// E4M3 bytes (uint8) as `format` says.
std::string PoolKernelSource(const std::string& op, DType dtype, bool quantized_output = false,
                             ir::QuantFormat format = ir::QuantFormat::kInt8);

class PoolKernel {
 public:
  // quantized_output: the output is int8, q = round_half_even(clamp(y * inv_scale, qmin, qmax)),
  // or E4M3 bytes of y * inv_scale (`quantized_format`) (MaxPool only; divisor 0).
  PoolKernel(const ir::Graph& graph, const ir::Node& node, GpuArch arch,
             std::optional<QuantizeParams> quantized_output = std::nullopt,
             ir::QuantFormat quantized_format = ir::QuantFormat::kInt8);
  bool quantized() const { return quantized_.has_value(); }
  void Launch(const Tensor& x, Tensor& out, cudaStream_t stream) const;
  // Whether Launch runs the vector loop: channels last, a pixel's channels a whole number of
  // 16-byte vectors, aligned tensors (then each thread pools 16 bytes of channels).
  bool UsesVectorLoop(const Tensor& x, const Tensor& out) const;

 private:
  std::string name_;
  std::optional<QuantizeParams> quantized_;
  ir::QuantFormat format_ = ir::QuantFormat::kInt8;
  bool channels_last_ = true;
  std::vector<int64_t> ksize_, strides_, pads_;
  ir::nn::Padding padding_ = ir::nn::Padding::kValid;
  std::shared_ptr<const CudaModule> module_;
  cudaKernel_t kernel64_ = nullptr, kernel32_ = nullptr, kernel_vector_ = nullptr;
};

}  // namespace kiln::backend::cuda
