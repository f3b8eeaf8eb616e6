// cpu-layer-norm: after the IR's layer-norm fusion (ir/passes/layer_norm_fusion.cc) in the CPU
// pipeline, float32 LayerNorms with constant float32 scale and bias become cpu.LayerNorm (one
// pass per row on oneDNN's threads; the reference kernel works in double on one thread).
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class LayerNormPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-layer-norm"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || n.op != "LayerNorm" || n.outputs.size() != 1) continue;
      if (g.value(n.inputs[0]).dtype != DType::kFloat32) continue;
      bool constants = true;
      for (size_t k = 1; k < n.inputs.size(); ++k) {
        const Tensor* c = g.ConstantOf(n.inputs[k]);
        constants = constants && c && c->dtype() == DType::kFloat32;
      }
      if (!constants) continue;
      const std::string name = n.name;
      const std::vector<ir::ValueId> inputs = n.inputs;
      const ir::ValueId output = n.outputs[0];
      const ir::AttrMap attrs = n.attrs;
      const ir::NodeId id = n.id;
      ir::Node& ln = ir::AddReplacementNode(g, std::string(kLayerNorm), name, inputs, output);
      ln.source_op = "LayerNorm";
      ln.attrs = attrs;
      g.node(id).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeLayerNormPass() { return std::make_unique<LayerNormPass>(); }

}  // namespace kiln::backend::cpu
