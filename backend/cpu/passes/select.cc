// cpu-select: Select of a bool condition between two floating-point tensors, all three of known
// rank, becomes cpu.Select (inputs x, y, cond: the output dtype is input 0's), a multi-threaded
// row kernel (select_kernel.cc) instead of the single-threaded reference one. Integer Selects
// stay: they are shape computations (Reshape targets, clamped ranges), which the engine folds or
// evaluates symbolically only as IR ops.
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class SelectPass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-select"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if (n.op != "Select" || n.inputs.size() != 3 || n.outputs.size() != 1) return std::nullopt;
    const ir::Value& c = g.value(n.inputs[0]);
    const ir::Value& x = g.value(n.inputs[1]);
    const ir::Value& y = g.value(n.inputs[2]);
    const bool floating = x.dtype == DType::kFloat32 || x.dtype == DType::kFloat16 || x.dtype == DType::kBFloat16 ||
                          x.dtype == DType::kFloat64;
    if (c.dtype != DType::kBool || x.dtype != y.dtype || !floating) return std::nullopt;
    for (const ir::Value* v : {&c, &x, &y})
      if (!v->shape.rank_known) return std::nullopt;
    return NodeRewrite{std::string(kSelect), {n.inputs[1], n.inputs[2], n.inputs[0]}, {}};
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeSelectPass() { return std::make_unique<SelectPass>(); }

}  // namespace kiln::backend::cpu
