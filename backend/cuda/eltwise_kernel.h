// A compiled elementwise program (eltwise_codegen.h) and its launches: broadcast strides are
// worked out per call from the actual shapes, with dims that every input walks the same way
// merged, so the common cases (same shapes, a per-channel operand) index with one or two dims.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/eltwise_codegen.h"
#include "backend/cuda/nvrtc_compiler.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

// The output's dims and each input's element stride along them (0 where it broadcasts).
struct EltwiseWalk {
  std::vector<long long> dims;
  std::vector<std::vector<long long>> strides;  // [input][dim]
};

class EltwiseKernel {
 public:
  // Generates and compiles the program for `arch` (compiled modules are shared between kernels
  // of the same source).
  EltwiseKernel(EltwiseProgram program, GpuArch arch);
  const EltwiseProgram& program() const { return program_; }
  const std::string& source() const { return source_; }
  // Queues the kernel: `inputs` (device tensors, each broadcasting into `out`'s shape), `out`
  // a device tensor of the program's output dtype. kInvalidArgument for shapes that do not
  // broadcast; kUnimplemented beyond kMaxEltwiseRank dims after merging.
  void Launch(std::span<const Tensor> inputs, Tensor& out, cudaStream_t stream) const;
  // One-input programs: out[i_0, ..., i_r] = f(in[j]) where input dim perm[d] is output dim d
  // (Transpose, with the identity program).
  void LaunchPermuted(const Tensor& in, std::span<const int64_t> perm, Tensor& out, cudaStream_t stream) const;
  // One-input programs: out's element k (its index (k_0, ..., k_r) in `sizes`, which has out's
  // element count) is f(in's flat element first + sum_d k_d * steps[d]); steps may be negative
  // (Slice, StridedSlice and Reverse, with the identity program).
  void LaunchStrided(const Tensor& in, int64_t first, std::span<const int64_t> steps, const Shape& sizes, Tensor& out,
                     cudaStream_t stream) const;
  // Whether Launch with these tensors runs the vector loop (EltwiseVectorWidth elements per
  // load and store) rather than one element per load.
  bool UsesVectorLoop(std::span<const Tensor> inputs, const Tensor& out) const;
  // The most local memory (bytes per thread) any of the program's kernels uses; 0 unless the
  // generated code indexes its parameter arrays at run time, which costs every thread copies.
  int64_t LocalMemoryBytes() const;

 private:
  void Run(const EltwiseWalk& walk, std::span<const void* const> inputs, Tensor& out, cudaStream_t stream) const;
  // Whether the vector kernel can walk `walk`: every loaded input's innermost stride 0 or 1,
  // rows and strides in whole vectors, pointers aligned to a vector.
  bool CanVectorize(const EltwiseWalk& walk, std::span<const void* const> inputs, const Tensor& out) const;

  EltwiseProgram program_;
  std::string source_;
  std::shared_ptr<const CudaModule> module_;
  cudaKernel_t kernel32_ = nullptr;
  cudaKernel_t kernel64_ = nullptr;
  cudaKernel_t kernel_vector_ = nullptr;
  int vector_width_ = 1;  // elements per load and store in kernel_vector_
  int multiprocessors_ = 0;  // of the device the kernel was built on (sizes the grid)
};

}  // namespace kiln::backend::cuda
