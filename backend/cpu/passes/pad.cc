// cpu-pad: CONSTANT-mode Pads with constant, non-negative paddings and a constant (or no) pad
// value, of any dtype of 1, 2, 4 or 8 bytes, become cpu.Pad (row copies; pad_kernel.cc).
#include <algorithm>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class PadPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-pad"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || n.op != "Pad" || n.inputs.size() < 2 || n.outputs.size() != 1) continue;
      if (n.attrs.GetOr<std::string>("mode", "CONSTANT") != "CONSTANT") continue;
      const ir::Value& x = g.value(n.inputs[0]);
      const size_t size = DTypeSize(x.dtype);
      if (x.dtype == DType::kString || (size != 1 && size != 2 && size != 4 && size != 8)) continue;
      if (!x.shape.rank_known || x.shape.rank() > 8) continue;
      const Tensor* paddings = g.ConstantOf(n.inputs[1]);
      if (!paddings || paddings->num_elements() != 2 * static_cast<int64_t>(x.shape.rank())) continue;
      const std::vector<int64_t> pads = paddings->ToInt64Vector();
      if (std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0; })) continue;
      std::vector<ir::ValueId> inputs = {n.inputs[0]};
      if (n.inputs.size() == 3) {
        const Tensor* value = g.ConstantOf(n.inputs[2]);
        if (!value || value->num_elements() != 1 || value->dtype() != x.dtype) continue;
        inputs.push_back(n.inputs[2]);
      }
      const std::string name = n.name;
      const ir::ValueId output = n.outputs[0];
      const ir::NodeId id = n.id;
      ir::Node& pad = ir::AddReplacementNode(g, std::string(kPad), name, inputs, output);
      pad.source_op = "Pad";
      pad.attrs.Set("pads", pads);
      g.node(id).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakePadPass() { return std::make_unique<PadPass>(); }

}  // namespace kiln::backend::cpu
