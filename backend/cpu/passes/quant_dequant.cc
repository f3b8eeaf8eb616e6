// cpu-quant-dequant: a quantize-dequantize chain that is still float after cpu-int8 (its reader
// is no int8 convolution / matrix product: a residual Add, a pooling, a concat, or a CPU without
// int8 dot-product instructions) becomes one cpu.QuantDequant step: one pass over the data on
// oneDNN's threads instead of six to nine elementwise steps (ONNX's uint8 form has two Casts and
// a Clip the elementwise chains do not take). Same values (backend/cpu/int8.h).
#include <array>
#include <string_view>

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

// Ops whose output elements are elements of their first input (or the input itself): a tensor on a
// quantization grid stays on it.
bool MovesElementsOnly(std::string_view op) {
  static constexpr std::array<std::string_view, 10> kOps = {"Identity",    "Reshape", "Transpose",    "Squeeze",
                                                            "ExpandDims",  "Slice",   "StridedSlice", "Gather",
                                                            "BroadcastTo", "Tile"};
  for (std::string_view o : kOps)
    if (o == op) return true;
  return false;
}

// cpu-redundant-quant-dequant: quantized models (ONNX Runtime's QDQ form) quantize-dequantize
// again after Reshapes / Transposes / ... of a tensor quantize-dequantized with the same
// parameters. Those values are already on that grid (q * scale for integers q in [qmin, qmax]:
// dividing by the scale again lands within an ulp of q, which rounds back to q), so the second
// step is the identity and its readers read its input.
class RedundantQuantDequantPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-redundant-quant-dequant"; }
  bool Run(ir::Graph& g) override {
    bool changed = false;
    for (ir::Node& n : g.nodes()) {
      if (n.removed || n.op != kQuantDequant || ir::IsGraphOutput(g, n.outputs[0])) continue;
      // Back through the element moves (at least one) to what they move.
      const ir::Node* first = g.Producer(n.inputs[0]);
      int moves = 0;
      for (; first && !first->inputs.empty() && MovesElementsOnly(first->op); ++moves)
        first = g.Producer(first->inputs[0]);
      if (moves == 0 || !first || first->op != kQuantDequant ||
          QuantDequantAttrValues(*first) != QuantDequantAttrValues(n))
        continue;
      g.ReplaceAllUses(n.outputs[0], n.inputs[0]);
      n.removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeQuantDequantPass() { return std::make_unique<QuantDequantPass>(); }
std::unique_ptr<CountingPass> MakeRedundantQuantDequantPass() { return std::make_unique<RedundantQuantDequantPass>(); }

}  // namespace kiln::backend::cpu
