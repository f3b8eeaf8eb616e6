// cpu-reduce: float32 ReduceSum / ReduceMean / ReduceMax / ReduceMin over constant, non-empty axes
// become cpu.Reduce (oneDNN's reduction; the reference kernel walks strided axes one element at
// a time, in double).
#include <algorithm>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class ReducePass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-reduce"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if (n.inputs.size() != 2) return std::nullopt;
    const std::string kind = n.op == "ReduceSum"    ? "sum"
                             : n.op == "ReduceMean" ? "mean"
                             : n.op == "ReduceMax"  ? "max"
                             : n.op == "ReduceMin"  ? "min"
                                                    : "";
    if (kind.empty()) return std::nullopt;
    const ir::Value& x = g.value(n.inputs[0]);
    const Tensor* axes_t = g.ConstantOf(n.inputs[1]);
    if (x.dtype != DType::kFloat32 || !x.shape.rank_known || x.shape.rank() == 0 || !axes_t ||
        axes_t->num_elements() == 0)
      return std::nullopt;
    const int64_t rank = x.shape.rank();
    std::vector<int64_t> axes;
    for (int64_t a : axes_t->ToInt64Vector()) {
      if (a < -rank || a >= rank) return std::nullopt;
      axes.push_back(a < 0 ? a + rank : a);
    }
    std::sort(axes.begin(), axes.end());
    axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
    NodeRewrite r{std::string(kReduce), {n.inputs[0]}, {}};
    r.attrs.Set("kind", kind);
    r.attrs.Set("axes", axes);
    r.attrs.Set("keep_dims", n.attrs.GetOr<bool>("keep_dims", false));
    return r;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeReducePass() { return std::make_unique<ReducePass>(); }

}  // namespace kiln::backend::cpu
