// Layer normalization on the GPU (generated kernel): LayerNorm nodes, optionally reading the sum
// of two tensors (a residual Add folded in, as a transformer block's "add & norm" does; when the
// two are not of one shape, a broadcasting Add kernel writes the sum first). Rows of
// up to 1024 elements take one warp each and stay in registers, so a row is read once and
// written once (with 16-byte loads and stores when the row is a whole number of a warp's vectors);
// longer rows take a thread block each. Mean and variance are two-pass in float32
// (float64 for float64 tensors) whatever the storage dtype.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "backend/cuda/eltwise_kernel.h"
#include "backend/cuda/nvrtc_compiler.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

// Why the GPU cannot run this LayerNorm node, or nullopt.
std::optional<std::string> LayerNormUnsupported(const ir::Graph& graph, const ir::Node& node);
// The generated source for `dtype` (kernels kiln_layer_norm_warp<K> and kiln_layer_norm_block).
std::string LayerNormKernelSource(DType dtype);

class LayerNormKernel {
 public:
  // `residual`: the node's input is the sum of the two tensors Launch gets as x and residual.
  LayerNormKernel(const ir::Graph& graph, const ir::Node& node, bool residual, int device, GpuArch arch);
  bool residual() const { return residual_; }
  // `residual`, `scale` and `bias` may be null (scale and bias as the node has them); `out` has
  // the shape of x + residual.
  void Launch(const Tensor& x, const Tensor* residual, const Tensor* scale, const Tensor* bias, Tensor& out,
              cudaStream_t stream) const;

 private:
  // x (+ residual, of x's shape) normalized into out.
  void LaunchRows(const Tensor& x, const Tensor* residual, const Tensor* scale, const Tensor* bias, Tensor& out,
                  cudaStream_t stream) const;

  std::string name_;
  int64_t axis_ = -1;
  double epsilon_ = 0;
  bool residual_ = false;
  int device_ = 0;
  std::unique_ptr<EltwiseKernel> add_;  // the residual Add on its own, for inputs of two shapes
  std::shared_ptr<const CudaModule> module_;
  cudaKernel_t warp4_ = nullptr, warp8_ = nullptr, warp16_ = nullptr, warp32_ = nullptr, block_ = nullptr;
  static constexpr int kMaxVectorsPerLane = 8;
  std::array<cudaKernel_t, kMaxVectorsPerLane> vec_{};  // 16-byte vectors, 1..8 per lane
};

}  // namespace kiln::backend::cuda
