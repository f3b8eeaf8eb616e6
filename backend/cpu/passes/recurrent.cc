// cpu-recurrent: RNN / GRU / LSTM that oneDNN computes exactly (RecurrentUnsupported) become
// cpu.RNN / cpu.GRU / cpu.LSTM. Only the op is renamed: the inputs (weights stay in ONNX's
// layout; the kernel repacks them once), the outputs Y, Y_h[, Y_c] and the attributes are the IR
// op's, so the reference kernel can still run the node for shapes oneDNN refuses.
#include "backend/cpu/recurrent.h"

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"

namespace kiln::backend::cpu {
namespace {

class RecurrentPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-recurrent"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed) continue;
      std::string_view op;
      if (n.op == "RNN")
        op = kRnn;
      else if (n.op == "GRU")
        op = kGru;
      else if (n.op == "LSTM")
        op = kLstm;
      else
        continue;
      if (RecurrentUnsupported(g, n)) continue;
      n.source_op = n.op;
      n.op = std::string(op);
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeRecurrentPass() { return std::make_unique<RecurrentPass>(); }

}  // namespace kiln::backend::cpu
