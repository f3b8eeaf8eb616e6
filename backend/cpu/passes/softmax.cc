// cpu-softmax: float32 Softmax / LogSoftmax of known rank become cpu.Softmax (oneDNN's softmax
// primitives; the reference kernel computes one row at a time in double on one thread).
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class SoftmaxPass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-softmax"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if ((n.op != "Softmax" && n.op != "LogSoftmax") || n.inputs.size() != 1) return std::nullopt;
    const ir::Value& x = g.value(n.inputs[0]);
    if (x.dtype != DType::kFloat32 || !x.shape.rank_known || x.shape.rank() == 0) return std::nullopt;
    const int64_t rank = x.shape.rank();
    int64_t axis = n.attrs.GetOr<int64_t>("axis", -1);
    if (axis < -rank || axis >= rank) return std::nullopt;
    NodeRewrite r{std::string(kSoftmax), {n.inputs[0]}, {}};
    r.attrs.Set("axis", axis < 0 ? axis + rank : axis);
    if (n.op == "LogSoftmax") r.attrs.Set("log", true);
    return r;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeSoftmaxPass() { return std::make_unique<SoftmaxPass>(); }

}  // namespace kiln::backend::cpu
