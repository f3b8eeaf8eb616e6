// cpu-binary: a float32 binary op of the elementwise table that no elementwise chain took (its
// operands' shapes were not known to broadcast one into the other when the engine was built),
// on tensors of which one has rank 2 or more, becomes cpu.Binary (binary_kernel.cc: numpy
// broadcasting at run time, multi-threaded) instead of the single-threaded reference kernel.
// Logical ops on bool tensors of rank 2 or more (LogicalAnd, LogicalOr: attention-mask logic) too.
// Runs after cpu-fuse-eltwise-chain. Rank-0/1 float arithmetic stays IR ops: exporters compute
// shapes in float too, and the engine folds those only as IR ops.
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/passes/passes.h"

namespace kiln::backend::cpu {
namespace {

class BinaryPass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-binary"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if (n.inputs.size() != 2 || n.outputs.size() != 1) return std::nullopt;
    const ir::Value& a = g.value(n.inputs[0]);
    const ir::Value& b = g.value(n.inputs[1]);
    if (a.dtype != b.dtype || g.value(n.outputs[0]).dtype != a.dtype || !HasCpuBinaryKernel(n.op, a.dtype))
      return std::nullopt;
    if (!a.shape.rank_known || !b.shape.rank_known || std::max(a.shape.rank(), b.shape.rank()) < 2) return std::nullopt;
    NodeRewrite r{std::string(kBinary), {n.inputs[0], n.inputs[1]}, n.attrs};
    r.attrs.Set("op", n.op);
    return r;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeBinaryPass() { return std::make_unique<BinaryPass>(); }

}  // namespace kiln::backend::cpu
