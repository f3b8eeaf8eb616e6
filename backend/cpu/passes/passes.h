// The CPU backend's graph optimizations, as ir::Pass subclasses. Each pass counts the rewrites
// it made (for the compile log and the engine's statistics). They run on a clone of the
// segment; the fused nodes they create are the backend's internal ops (backend/cpu/cpu_ops.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/passes/pass.h"

namespace kiln::backend::cpu {

class CountingPass : public ir::Pass {
 public:
  // Rewrites made by every Run() so far.
  int64_t rewrites() const { return rewrites_; }

 protected:
  int64_t rewrites_ = 0;
};

// cpu-fold-batchnorm: a BatchNorm (inference), or a Mul / Div / Add / Sub by a per-channel
// constant, that follows a Conv2D / DepthwiseConv2D / MatMul with constant weights folds into the
// weights and the node's bias input. Repeats along chains (BatchNorm, then Mul, then Add, ...).
std::unique_ptr<CountingPass> MakeFoldBatchNormPass();

// cpu-fuse-conv-matmul: Conv2D / DepthwiseConv2D (constant filter), MatMul and BatchMatMul in
// float32 become cpu.FusedConv2D / cpu.FusedMatMul / cpu.FusedBatchMatMul and absorb what follows
// into oneDNN post-ops: activations (Relu, Relu6, Sigmoid, Tanh, Elu, LeakyRelu, x*sigmoid(x)),
// Add of a same-shaped tensor (residual), and Mul / Add / Sub by a scalar constant.
std::unique_ptr<CountingPass> MakeFuseConvMatMulPass();

// cpu-fuse-eltwise-chain: maximal chains of float32 unary ops and binary ops whose other operand
// broadcasts into the running value (constants, the chain's input, other tensors) become one
// cpu.EltwiseChain node that makes one pass over the data.
std::unique_ptr<CountingPass> MakeFuseEltwiseChainPass();

struct PassStat {
  std::string pass;
  int64_t rewrites = 0;
  bool operator==(const PassStat&) const = default;
};

// The whole optimization pipeline on a segment clone: identity elimination, constant folding
// (reference kernels), dead-code elimination, then the three passes above and a final
// dead-code elimination, as an ir::PassPipeline that verifies the graph after each pass.
// Returns one entry per pass, in order.
std::vector<PassStat> OptimizeForCpu(ir::Graph& graph);

}  // namespace kiln::backend::cpu
