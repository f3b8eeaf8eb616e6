// Matrix products on the GPU through cuBLASLt: MatMul (rank 2, optional transposes, optional
// bias fused as cuBLASLt's bias epilogue) and BatchMatMul (batched, one side's batch may be 1).
// FP32 runs exact FP32 (no TF32); FP16 and BF16 accumulate in FP32; FP64 in FP64. For each shape
// the first kTunedMatMulCandidates of cuBLASLt's heuristic are timed on the device (scratch
// operands) and the fastest is kept, and remembered in the timing cache (timing_cache.h).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cuda {

inline constexpr int kTunedMatMulCandidates = 16;

// Why the GPU cannot run this MatMul/BatchMatMul node, or nullopt.
std::optional<std::string> MatMulUnsupported(const ir::Graph& graph, const ir::Node& node);

class MatMulKernel {
 public:
  // fused_bias: an Add of a per-column vector after the product runs in cuBLASLt's epilogue
  // (the vector is the last input; a MatMul node's own third input is one already).
  // bias_per_batch: a batched product's bias holds one vector per batch ([batch, n]), not one
  // for all.
  MatMulKernel(const ir::Node& node, DType dtype, bool fused_bias = false, bool bias_per_batch = false);
  ~MatMulKernel();
  MatMulKernel(const MatMulKernel&) = delete;
  MatMulKernel& operator=(const MatMulKernel&) = delete;
  // inputs: a, b[, bias] on the device; out: the product's shape.
  void Launch(std::span<const Tensor> inputs, Tensor& out, cudaStream_t stream) const;
  // Chooses (times) the algorithm for these shapes now (the engine does so at build time for its
  // profile's largest shapes; other shapes when first launched).
  void Prepare(const Shape& a, const Shape& b, const Shape& out) const;
  // Shapes whose candidates were chosen so far.
  int plans_tuned() const;

 private:
  struct Problem {
    int64_t m, n, k, batch, stride_a, stride_b;
    auto operator<=>(const Problem&) const = default;
  };
  struct Plan;
  Problem ProblemFor(const Shape& a, const Shape& b, const Shape& out) const;
  int64_t BiasBatchStride(const Problem& p) const { return bias_per_batch_ && p.batch > 1 ? p.n : 0; }
  const Plan& PlanFor(const Problem& p) const;
  // The problem as the timing cache knows it.
  std::string TacticKey(const Problem& p) const;
  // The index of the fastest candidate, timed on scratch operands.
  size_t Fastest(const Problem& p, const Plan& plan, cublasLtMatmulDesc_t desc,
                 const std::vector<cublasLtMatmulHeuristicResult_t>& candidates) const;

  DType dtype_;
  bool transpose_a_ = false, transpose_b_ = false, has_bias_ = false, bias_per_batch_ = false;
  cublasLtHandle_t handle_ = nullptr;
  mutable std::mutex mu_;
  mutable std::map<Problem, std::unique_ptr<Plan>> plans_;
  mutable int plans_tuned_ = 0;
};

}  // namespace kiln::backend::cuda
