// The CPU backend's graph optimizations, as ir::Pass subclasses. Each pass counts the rewrites
// it made (for the compile log and the engine's statistics). They run on a clone of the
// segment; the fused nodes they create are the backend's internal ops (backend/cpu/cpu_ops.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph_util.h"
#include "ir/passes/pass.h"
#include "ir/quant_dequant.h"

namespace kiln::backend::cpu {

class CountingPass : public ir::Pass {
 public:
  // Rewrites made by every Run() so far.
  int64_t rewrites() const { return rewrites_; }

 protected:
  int64_t rewrites_ = 0;
};

// What one node becomes in a NodeRewritePass: a node of `op` with these inputs and attributes,
// writing the old node's output.
struct NodeRewrite {
  std::string op;
  std::vector<ir::ValueId> inputs;
  ir::AttrMap attrs;
};

// A pass that replaces single-output nodes one by one with a backend op (keeping their name and
// output value, the old op as source_op): Rewrite says what a node becomes, or nullopt.
class NodeRewritePass : public CountingPass {
 public:
  bool Run(ir::Graph& g) override;

 protected:
  virtual std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const = 0;
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

// cpu-pool: float32 2-D MaxPool / AvgPool (attribute form) become cpu.Pool2D (oneDNN pooling).
std::unique_ptr<CountingPass> MakePoolPass();
// Quantize-dequantize chains left in float -> one cpu.QuantDequant each (quant_dequant.cc).
std::unique_ptr<CountingPass> MakeQuantDequantPass();
// A cpu.QuantDequant of a Reshape / Transpose / Gather / ... of a cpu.QuantDequant with the same
// parameters is the identity: removed (quant_dequant.cc).
std::unique_ptr<CountingPass> MakeRedundantQuantDequantPass();
// float32 ReduceSum / Mean / Max / Min over constant axes -> cpu.Reduce (reduce.cc).
std::unique_ptr<CountingPass> MakeReducePass();
// float32 LayerNorm with constant scale / bias -> cpu.LayerNorm (layer_norm.cc).
std::unique_ptr<CountingPass> MakeLayerNormPass();
// float32 Softmax / LogSoftmax -> cpu.Softmax (softmax.cc).
std::unique_ptr<CountingPass> MakeSoftmaxPass();
// Constant-mode Pads with constant paddings -> cpu.Pad (pad.cc).
std::unique_ptr<CountingPass> MakePadPass();
// Select of a bool condition between floating-point tensors (known ranks) -> cpu.Select (select.cc).
std::unique_ptr<CountingPass> MakeSelectPass();
// Cast to float32 of a tensor of rank >= 2 (not a shape computation) -> cpu.Cast (cast.cc).
std::unique_ptr<CountingPass> MakeCastPass();
// Float32 binary table ops no chain took, one input of rank >= 2 -> cpu.Binary (binary.cc).
std::unique_ptr<CountingPass> MakeBinaryPass();
// Transposes with constant permutations of reorderable dtypes -> cpu.Transpose (transpose.cc).
std::unique_ptr<CountingPass> MakeTransposePass();
// RNN / GRU / LSTM that oneDNN computes exactly -> cpu.RNN / cpu.GRU / cpu.LSTM (recurrent.cc).
std::unique_ptr<CountingPass> MakeRecurrentPass();

// cpu-int8: fused convolutions / matrix products whose operands are quantize-dequantize chains
// or constants on a per-output-channel int8 grid read int8 operands instead (cpu.QuantizeS8 steps
// and int8 constants) and run as int8 oneDNN primitives (see passes/int8_conv_matmul.cc).
std::unique_ptr<CountingPass> MakeInt8Pass();
// A new cpu.QuantizeS8 of `q`'s source with its scale and bounds (int8, or uint8 with a zero
// point: ir::StorageFor); FindQuantizeS8: a live one with the same scale and bounds, or kNoValue.
ir::ValueId AddQuantizeS8(ir::Graph& g, ir::NameGen& names, const ir::QuantDequant& q);
ir::ValueId FindQuantizeS8(const ir::Graph& g, const ir::QuantDequant& q);
// cpu-int8-quantized-add: an Add of two dequantized 8-bit tensors, one of them an int8
// convolution's own quantized result, becomes that convolution's post-ops (and a ReLU after the
// Add too), reading the other tensor's 8-bit form (passes/int8_residual.cc).
std::unique_ptr<CountingPass> MakeInt8QuantizedAddPass();
// cpu-int8-residual: a tensor quantized for int8 layers that int8 channels-last convolutions also
// add as a residual is added in its 8-bit form (passes/int8_residual.cc).
std::unique_ptr<CountingPass> MakeInt8ResidualPass();
// cpu-int8-output: an int8 conv / matmul whose result only a cpu.QuantizeS8 reads writes int8
// itself (attr int8_output) when that quantization cannot differ from oneDNN's conversion; the
// cpu.QuantizeS8 goes.
std::unique_ptr<CountingPass> MakeInt8OutputPass();
// cpu-quantize-before-pad: a cpu.QuantizeS8 of a constant Pad's result quantizes the Pad's input,
// and the Pad pads 8-bit values with the quantized pad value.
std::unique_ptr<CountingPass> MakeQuantizeBeforePadPass();

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
// (reference kernels), dead-code elimination, batch-norm folding, conv/matmul fusion, INT8 (then
// dead-code elimination, so the quantize-dequantize chains it replaced do not become elementwise
// chains), elementwise-chain fusion and a final dead-code elimination, as an ir::PassPipeline that verifies the graph
// after each pass. Returns one entry per pass, in order. `int8_kernels`: run cpu-int8 (CPUs with int8 dot-product
// instructions, CpuFeatures); without it quantize-dequantize chains stay float ops.
std::vector<PassStat> OptimizeForCpu(ir::Graph& graph, bool int8_kernels = true);

}  // namespace kiln::backend::cpu
