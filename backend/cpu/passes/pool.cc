// cpu-pool: float32 MaxPool / AvgPool over 2 spatial dims (NHWC or NCHW, ksize and strides as
// attributes) become cpu.Pool2D, which runs oneDNN's pooling (the reference kernels pool one
// pixel at a time in double on one thread).
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class PoolPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-pool"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || (n.op != "MaxPool" && n.op != "AvgPool") || n.inputs.size() != 1 || n.outputs.size() != 1)
        continue;
      const ir::Value& x = g.value(n.inputs[0]);
      const std::string format = n.attrs.GetOr<std::string>("data_format", "NHWC");
      if (x.dtype != DType::kFloat32 || !x.shape.rank_known || x.shape.rank() != 4 ||
          (format != "NHWC" && format != "NCHW"))
        continue;
      if (n.attrs.GetOr<std::vector<int64_t>>("ksize", {}).size() != 2) continue;
      ir::AttrMap attrs;
      for (const char* key : {"ksize", "strides", "padding", "pads", "data_format"})
        if (auto it = n.attrs.all().find(key); it != n.attrs.all().end()) attrs.Set(key, it->second);
      attrs.Set("kind", std::string(n.op == "MaxPool" ? "max" : "avg"));
      const std::string name = n.name, op = n.op;
      const ir::ValueId input = n.inputs[0], output = n.outputs[0];
      const ir::NodeId id = n.id;
      ir::Node& pool = ir::AddReplacementNode(g, std::string(kPool2D), name, {input}, output);
      pool.source_op = op;
      pool.attrs = std::move(attrs);
      g.node(id).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakePoolPass() { return std::make_unique<PoolPass>(); }

}  // namespace kiln::backend::cpu
