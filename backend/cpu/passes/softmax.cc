// cpu-softmax: float32 Softmax / LogSoftmax of known rank become cpu.Softmax (oneDNN's softmax
// primitives; the reference kernel computes one row at a time in double on one thread).
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class SoftmaxPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-softmax"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || (n.op != "Softmax" && n.op != "LogSoftmax") || n.inputs.size() != 1 || n.outputs.size() != 1)
        continue;
      const ir::Value& x = g.value(n.inputs[0]);
      if (x.dtype != DType::kFloat32 || !x.shape.rank_known || x.shape.rank() == 0) continue;
      const int64_t rank = x.shape.rank();
      int64_t axis = n.attrs.GetOr<int64_t>("axis", -1);
      if (axis < -rank || axis >= rank) continue;
      if (axis < 0) axis += rank;
      const std::string name = n.name, op = n.op;
      const ir::ValueId input = n.inputs[0], output = n.outputs[0];
      const ir::NodeId id = n.id;
      ir::Node& s = ir::AddReplacementNode(g, std::string(kSoftmax), name, {input}, output);
      s.source_op = op;
      s.attrs.Set("axis", axis);
      if (op == "LogSoftmax") s.attrs.Set("log", true);
      g.node(id).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeSoftmaxPass() { return std::make_unique<SoftmaxPass>(); }

}  // namespace kiln::backend::cpu
