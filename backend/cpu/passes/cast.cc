// cpu-cast: a Cast to float32 of a tensor of rank 2 or more (an attention mask, an exporter's
// lowering of Select into Casts and products) becomes cpu.Cast, a multi-threaded conversion
// (cast_kernel.cc) instead of the single-threaded reference one. Casts of rank-0/1 values stay IR
// ops: those are shape computations, which the engine folds or evaluates symbolically only as
// IR ops (cpu-select's lesson), and too small to gain anything.
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"

namespace kiln::backend::cpu {
namespace {

bool CastSource(DType d) {
  switch (d) {
    case DType::kBool:
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kInt16:
    case DType::kUInt16:
    case DType::kInt32:
    case DType::kUInt32:
    case DType::kInt64:
    case DType::kUInt64:
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kFloat64:
      return true;
    default:
      return false;
  }
}

class CastPass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-cast"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if (n.op != "Cast" || n.inputs.size() != 1 || n.outputs.size() != 1) return std::nullopt;
    const ir::Value& x = g.value(n.inputs[0]);
    if (g.value(n.outputs[0]).dtype != DType::kFloat32 || !CastSource(x.dtype)) return std::nullopt;
    if (!x.shape.rank_known || x.shape.rank() < 2 || g.ConstantOf(n.inputs[0])) return std::nullopt;
    return NodeRewrite{std::string(kCast), {n.inputs[0]}, {}};
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeCastPass() { return std::make_unique<CastPass>(); }

}  // namespace kiln::backend::cpu
