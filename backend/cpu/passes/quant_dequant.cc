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

class QuantDequantPass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-quant-dequant"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if (n.op != "Mul") return std::nullopt;
    const std::optional<QuantDequant> q = MatchQuantDequant(g, n.outputs[0]);
    if (!q || q->nodes.size() < 3) return std::nullopt;
    NodeRewrite r{std::string(kQuantDequant), {q->source}, {}};
    r.attrs.Set("inv_scale", static_cast<double>(q->inv_scale));
    r.attrs.Set("divisor", static_cast<double>(q->divisor));
    r.attrs.Set("qmin", static_cast<double>(q->qmin));
    r.attrs.Set("qmax", static_cast<double>(q->qmax));
    r.attrs.Set("scale", static_cast<double>(q->scale));
    return r;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeQuantDequantPass() { return std::make_unique<QuantDequantPass>(); }

}  // namespace kiln::backend::cpu
