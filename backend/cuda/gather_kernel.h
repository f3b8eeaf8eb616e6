// Gather (batch_dims 0, constant axis) on the GPU: out[o, i, n] = params[o, indices[i], n] for
// params viewed as [outer, axis dim, inner], as a generated kernel that copies elements by their
// byte width, or 16 bytes at a time where rows are whole 16-byte units, so every dtype works;
// int32 or int64 indices. An index outside [0, dim) (the IR's Gather has TensorFlow's
// semantics: importers turn ONNX's negative indices into these) gives zeros, as TensorFlow's GPU
// kernel does, where the reference executor reports an error: a GPU kernel cannot raise one.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>

#include "backend/cuda/nvrtc_compiler.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

std::optional<std::string> GatherUnsupported(const ir::Graph& graph, const ir::Node& node);
// The generated source for elements of `element_bytes` bytes and `index` indices (kiln_gather).
std::string GatherKernelSource(size_t element_bytes, DType index);

class GatherKernel {
 public:
  GatherKernel(const ir::Graph& graph, const ir::Node& node, GpuArch arch);
  void Launch(const Tensor& params, const Tensor& indices, Tensor& out, cudaStream_t stream) const;

 private:
  int64_t axis_ = 0;
  std::shared_ptr<const CudaModule> module_;
  cudaKernel_t kernel_ = nullptr;
  cudaKernel_t kernel_vec_ = nullptr;  // 16 bytes per thread and step (kiln_gather_vec)
  int64_t element_bytes_ = 0;
};

}  // namespace kiln::backend::cuda
