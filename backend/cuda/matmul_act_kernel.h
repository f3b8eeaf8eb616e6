// Matrix products with an activation in the epilogue that cuBLASLt lacks: y = act(x W + bias)
// for the exact (erf) GELU, through cuDNN's graph API (matmul, bias add and GELU_FWD in one
// cuDNN graph, runtime-compiled on Hopper), so the [rows, n] product is written once, already
// activated, instead of written, read and written again by a separate elementwise kernel.
// W (and the bias) are constants, uploaded once; x is [..., k] contiguous, read as [1, rows, k].
// Float16 and bfloat16 (float32 accumulation). Plans are timed per shape and remembered in the
// timing cache (cudnn_util.h's BuildTunedPlan). Built only with cuDNN (KILN_WITH_CUDNN).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

// Why `product` (a MatMul, or a BatchMatMul whose weights have no batch, with an optional column bias constant `bias`: the node's own third
// input, or the constant an Add after it adds; kNoValue if none) followed by a Gelu cannot run as
// one cuDNN product, or nullopt.
std::optional<std::string> MatMulGeluUnsupported(const ir::Graph& graph, const ir::Node& product, ir::ValueId bias);

class MatMulGeluKernel {
 public:
  MatMulGeluKernel(const ir::Graph& graph, const ir::Node& product, ir::ValueId bias, int device);
  ~MatMulGeluKernel();
  // Builds and times the plan for x of this shape now; kUnavailable when cuDNN cannot run it.
  void Prepare(const Shape& x) const;
  // x on the device, out of x's shape with the last dim n.
  void Launch(const Tensor& x, Tensor& out, cudaStream_t stream) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cuda
