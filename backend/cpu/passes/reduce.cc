// cpu-reduce: float32 ReduceSum / ReduceMean / ReduceMax / ReduceMin over constant, non-empty axes
// become cpu.Reduce (oneDNN's reduction; the reference kernel walks strided axes one element at
// a time, in double).
#include <algorithm>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class ReducePass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-reduce"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || n.inputs.size() != 2 || n.outputs.size() != 1) continue;
      const std::string kind = n.op == "ReduceSum"    ? "sum"
                               : n.op == "ReduceMean" ? "mean"
                               : n.op == "ReduceMax"  ? "max"
                               : n.op == "ReduceMin"  ? "min"
                                                      : "";
      if (kind.empty()) continue;
      const ir::Value& x = g.value(n.inputs[0]);
      const Tensor* axes_t = g.ConstantOf(n.inputs[1]);
      if (x.dtype != DType::kFloat32 || !x.shape.rank_known || x.shape.rank() == 0 || !axes_t ||
          axes_t->num_elements() == 0)
        continue;
      const int64_t rank = x.shape.rank();
      std::vector<int64_t> axes;
      bool ok = true;
      for (int64_t a : axes_t->ToInt64Vector()) {
        if (a < -rank || a >= rank) ok = false;
        axes.push_back(a < 0 ? a + rank : a);
      }
      std::sort(axes.begin(), axes.end());
      axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
      if (!ok) continue;
      const std::string name = n.name, op = n.op;
      const bool keep = n.attrs.GetOr<bool>("keep_dims", false);
      const ir::ValueId input = n.inputs[0], output = n.outputs[0];
      const ir::NodeId id = n.id;
      ir::Node& r = ir::AddReplacementNode(g, std::string(kReduce), name, {input}, output);
      r.source_op = op;
      r.attrs.Set("kind", kind);
      r.attrs.Set("axes", axes);
      r.attrs.Set("keep_dims", keep);
      g.node(id).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeReducePass() { return std::make_unique<ReducePass>(); }

}  // namespace kiln::backend::cpu
