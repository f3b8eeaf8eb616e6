// Reductions and softmax along one contiguous range of axes, on tensors viewed as
// [outer, n, inner] (n: the reduced extent). ReduceSum/Mean/Prod/Max/Min/EuclideanNorm,
// Softmax and LogSoftmax, for floating-point dtypes; float16/bfloat16 accumulate in float,
// float64 in double, float32 in float. Rows of contiguous elements (inner == 1) take one warp
// each up to 1024 elements (a softmax row stays in registers) and one thread block each beyond;
// otherwise each thread walks one column (coalesced across the inner dim).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <string>

#include "backend/cuda/nvrtc_compiler.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

// Whether `op` is one of the row kernels' ops.
bool IsRowOp(const std::string& op);
// Why the GPU cannot run this reduction/softmax node, or nullopt.
std::optional<std::string> RowOpUnsupported(const ir::Graph& graph, const ir::Node& node);

// The CUDA source of the row kernels for `op` on `dtype` (kernels kiln_rows and kiln_columns).
std::string RowKernelSource(const std::string& op, DType dtype);

class RowKernel {
 public:
  RowKernel(const ir::Graph& graph, const ir::Node& node, GpuArch arch);
  void Launch(const Tensor& in, Tensor& out, cudaStream_t stream) const;

 private:
  std::string op_;
  std::vector<int64_t> axes_;  // as written on the node (may be negative)
  std::shared_ptr<const CudaModule> module_;
  cudaKernel_t rows_ = nullptr, rows_warp4_ = nullptr, rows_warp32_ = nullptr, columns_ = nullptr;
};

}  // namespace kiln::backend::cuda
