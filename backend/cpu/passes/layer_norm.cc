// cpu-layer-norm: after the IR's layer-norm fusion (ir/passes/layer_norm_fusion.cc) in the CPU
// pipeline, float32 LayerNorms with constant float32 scale and bias become cpu.LayerNorm (one
// pass per row on oneDNN's threads; the reference kernel works in double on one thread).
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class LayerNormPass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-layer-norm"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if (n.op != "LayerNorm" || g.value(n.inputs[0]).dtype != DType::kFloat32) return std::nullopt;
    for (size_t k = 1; k < n.inputs.size(); ++k) {
      const Tensor* c = g.ConstantOf(n.inputs[k]);
      if (!c || c->dtype() != DType::kFloat32) return std::nullopt;
    }
    return NodeRewrite{std::string(kLayerNorm), n.inputs, n.attrs};
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeLayerNormPass() { return std::make_unique<LayerNormPass>(); }

}  // namespace kiln::backend::cpu
