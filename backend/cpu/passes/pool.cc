// cpu-pool: float32 MaxPool / AvgPool over 2 spatial dims (NHWC or NCHW, ksize and strides as
// attributes) become cpu.Pool2D, which runs oneDNN's pooling (the reference kernels pool one
// pixel at a time in double on one thread).
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class PoolPass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-pool"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if ((n.op != "MaxPool" && n.op != "AvgPool") || n.inputs.size() != 1) return std::nullopt;
    const ir::Value& x = g.value(n.inputs[0]);
    const std::string format = n.attrs.GetOr<std::string>("data_format", "NHWC");
    if (x.dtype != DType::kFloat32 || !x.shape.rank_known || x.shape.rank() != 4 ||
        (format != "NHWC" && format != "NCHW"))
      return std::nullopt;
    if (n.attrs.GetOr<std::vector<int64_t>>("ksize", {}).size() != 2) return std::nullopt;
    NodeRewrite r{std::string(kPool2D), {n.inputs[0]}, {}};
    for (const char* key : {"ksize", "strides", "padding", "pads", "data_format"})
      if (auto it = n.attrs.all().find(key); it != n.attrs.all().end()) r.attrs.Set(key, it->second);
    r.attrs.Set("kind", std::string(n.op == "MaxPool" ? "max" : "avg"));
    return r;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakePoolPass() { return std::make_unique<PoolPass>(); }

}  // namespace kiln::backend::cpu
