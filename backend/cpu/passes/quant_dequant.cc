// cpu-quant-dequant: a quantize-dequantize chain that is still float after cpu-int8 (its reader
// is no int8 convolution / matrix product: a residual Add, a pooling, a concat, or a CPU without
// int8 dot-product instructions) becomes one cpu.QuantDequant step: one pass over the data on
// oneDNN's threads instead of six to nine elementwise steps (ONNX's uint8 form has two Casts and
// a Clip the elementwise chains do not take). Same values (backend/cpu/int8.h).
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/int8.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class QuantDequantPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-quant-dequant"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || n.op != "Mul" || n.outputs.size() != 1) continue;
      const std::optional<QuantDequant> q = MatchQuantDequant(g, n.outputs[0]);
      if (!q || q->nodes.size() < 3) continue;
      const std::string name = n.name;
      const ir::ValueId output = n.outputs[0];
      const ir::NodeId id = n.id;
      ir::Node& fused = ir::AddReplacementNode(g, std::string(kQuantDequant), name, {q->source}, output);
      fused.source_op = "Mul";
      fused.attrs.Set("inv_scale", static_cast<double>(q->inv_scale));
      fused.attrs.Set("divisor", static_cast<double>(q->divisor));
      fused.attrs.Set("qmin", static_cast<double>(q->qmin));
      fused.attrs.Set("qmax", static_cast<double>(q->qmax));
      fused.attrs.Set("scale", static_cast<double>(q->scale));
      g.node(id).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeQuantDequantPass() { return std::make_unique<QuantDequantPass>(); }

}  // namespace kiln::backend::cpu
