// Kernels of the CPU engine: oneDNN convolution / matmul primitives for the fused nodes and the
// elementwise-chain kernel. Every other node runs its reference kernel (see cpu_engine.cc).
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <dnnl.hpp>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::backend::cpu {

// Shared by every kernel of one engine.
struct KernelEnv {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  // Build convolution / matmul primitives with bf16 src and weights (f32 bias and dst) where
  // oneDNN has a non-reference kernel for them; the others stay f32. Only set on CPUs with
  // native BF16 (ChoosePrecision). The engine clears it after Prepare when no step got a bf16
  // primitive (the engine then reports FP32), so later shapes stay f32 too.
  bool bf16_math = false;
};

// The compute precision of the primitives a oneDNN kernel has created so far (one per input
// shape it has seen); a shape without a oneDNN implementation (reference fallback) counts as f32.
struct PrimitivePrecision {
  int bf16 = 0;
  int f32 = 0;
  int int8 = 0;
};

// Per-call state: one per concurrent Execute, reused across calls (never allocated per call).
struct ExecContext {
  explicit ExecContext(const dnnl::engine& engine) : stream(engine) {}
  dnnl::stream stream;
  std::shared_ptr<Buffer> arena;    // intermediates (offsets from the memory plan)
  std::shared_ptr<Buffer> scratch;  // oneDNN scratchpad (user mode), grown on demand
  std::vector<Tensor> values;       // per IR value during a call
  std::vector<Tensor> args;         // the inputs of the step being run
  std::vector<Tensor> outs;         // the outputs of the step being run
  void* Scratch(size_t bytes) {
    if (bytes == 0) return nullptr;
    if (!scratch || scratch->size() < bytes) scratch = AllocateHostBuffer(bytes);
    return scratch->data();
  }
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // What runs, for logs and tests: "onednn:jit:avx2", "eltwise-chain", ...
  virtual std::string Describe() const = 0;
  // Creates (and caches) what the kernel needs for these input shapes ahead of the first call.
  virtual void Prepare(const std::vector<Shape>& input_shapes) {}
  // The largest scratchpad any prepared primitive needs.
  virtual size_t scratchpad_bytes() const { return 0; }
  // True when the kernel computes on int8 operands (cpu-int8 rewrote its node), whatever the
  // shapes its primitives are made for.
  virtual bool int8() const { return false; }
  // oneDNN kernels: the precision of the primitives created so far; nullopt for other kernels.
  virtual std::optional<PrimitivePrecision> primitive_precision() const { return std::nullopt; }
  // Computes the node's output into `out` (already shaped and allocated).
  virtual void Run(std::span<const Tensor> inputs, Tensor& out, ExecContext& ctx) const = 0;
  // Computes every output of the node (each already shaped and allocated); what the engine
  // calls. Kernels of ops with several outputs (cpu.LSTM: Y, Y_h, Y_c) override it.
  virtual void RunOutputs(std::span<const Tensor> inputs, std::span<Tensor> outs, ExecContext& ctx) const {
    Run(inputs, outs[0], ctx);
  }
};

// "what" per distinct primitive of a per-shape cache (name(prim); "reference-fallback" for shapes
// without one), or `none` before the first: the Describe() of kernels that make a primitive per
// input shape.
template <typename Cache, typename Name>
std::string DescribeShapeCache(const Cache& cache, const Name& name, std::string_view none) {
  std::vector<std::string> parts;
  for (const auto& [shape, prim] : cache) {
    const std::string d = prim ? name(*prim) : std::string("reference-fallback");
    if (std::find(parts.begin(), parts.end(), d) == parts.end()) parts.push_back(d);
  }
  if (parts.empty()) return std::string(none);
  std::string out = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) out += "," + parts[i];
  return out;
}

// The kernel of a backend-internal node (CpuFusedConv2D / CpuFusedMatMul /
// CpuFusedBatchMatMul / CpuEltwiseChain); kInternal for other ops.
std::unique_ptr<Kernel> MakeKernel(const ir::Graph& graph, const ir::Node& node, std::shared_ptr<const KernelEnv> env);
// cpu.Reduce (reduce_kernel.cc).
std::unique_ptr<Kernel> MakeReduceKernel(const ir::Node& node, std::shared_ptr<const KernelEnv> env);
// cpu.LayerNorm (layer_norm_kernel.cc).
std::unique_ptr<Kernel> MakeLayerNormKernel(const ir::Graph& graph, const ir::Node& node);
// cpu.Softmax (softmax_kernel.cc).
std::unique_ptr<Kernel> MakeSoftmaxKernel(const ir::Node& node, std::shared_ptr<const KernelEnv> env);
// cpu.Pad (pad_kernel.cc).
std::unique_ptr<Kernel> MakePadKernel(const ir::Graph& graph, const ir::Node& node);
// cpu.RNN / cpu.GRU / cpu.LSTM (rnn_kernel.cc).
std::unique_ptr<Kernel> MakeRecurrentKernel(const ir::Graph& graph, const ir::Node& node, std::shared_ptr<const KernelEnv> env);
// cpu.Select (select_kernel.cc).
std::unique_ptr<Kernel> MakeSelectKernel(const ir::Graph& graph, const ir::Node& node);
std::unique_ptr<Kernel> MakeCastKernel(const ir::Graph& graph, const ir::Node& node);
std::unique_ptr<Kernel> MakeBinaryKernel(const ir::Node& node);
// Whether cpu.Binary runs this IR op on operands of this dtype (float32: the fusible binary ops of
// the elementwise table; bool: its logical ops).
bool HasCpuBinaryKernel(const std::string& op, DType dtype);
// cpu.Transpose (transpose_kernel.cc).
std::unique_ptr<Kernel> MakeTransposeKernel(const ir::Graph& graph, const ir::Node& node, std::shared_ptr<const KernelEnv> env);

}  // namespace kiln::backend::cpu
