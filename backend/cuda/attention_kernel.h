// Fused scaled dot-product attention through cuDNN's SDPA graph (flash attention on Ampere and
// Hopper): softmax(scale * Q K^T + bias) V in one kernel, float16/bfloat16 with float32
// accumulation, Q, K, V and the output read and written in place through strides (a
// [batch, seq, heads, dim] projection needs no transpose). One cuDNN plan per set of input
// shapes: the heuristics' first candidates that build are timed and the fastest kept (and
// remembered in the timing cache). Built only with cuDNN (KILN_WITH_CUDNN).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/attention_match.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

class AttentionKernel {
 public:
  AttentionKernel(const AttentionMatch& match, DType dtype, std::string name, int device);
  ~AttentionKernel();
  const AttentionMatch& match() const;
  // Throws kUnavailable when these value shapes break the match's assumption (a Reshape in the
  // pattern that would change the shape).
  void CheckShapes(const std::vector<std::optional<Shape>>& shapes) const;
  // Builds the plan for these stored shapes now; kUnavailable when cuDNN cannot run it.
  void Prepare(const Shape& q, const Shape& k, const Shape& v, const Shape* bias, const Shape& out) const;
  void Launch(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* bias, Tensor& out,
              cudaStream_t stream) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cuda
