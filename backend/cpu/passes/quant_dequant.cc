// cpu-quant-dequant: a quantize-dequantize chain that is still float after cpu-int8 (its reader
// is no int8 convolution / matrix product: a residual Add, a pooling, a concat, or a CPU without
// int8 dot-product instructions) becomes one cpu.QuantDequant step: one pass over the data on
// oneDNN's threads instead of six to nine elementwise steps (ONNX's uint8 form has two Casts and
// a Clip the elementwise chains do not take). Same values (backend/cpu/int8.h).
#include <array>
#include <cmath>
#include <string>
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

// True when `n` leaves a tensor on the grid of `p` on it: it only moves elements, or it is a max
// pooling (the largest of grid values is one of them), or a constant pad whose value is on the grid
// (0 always is: qmin <= 0 <= qmax).
bool KeepsGridValues(const ir::Graph& g, const ir::Node& n, const QuantDequantParams& p) {
  if (MovesElementsOnly(n.op)) return true;
  if (n.op == kPool2D) return n.attrs.GetOr<std::string>("kind", "") == "max";
  if (n.op != "Pad" || n.attrs.GetOr<std::string>("mode", "CONSTANT") != "CONSTANT" || n.inputs.size() < 2)
    return false;
  if (n.inputs.size() < 3) return true;  // pads with 0
  const Tensor* v = g.ConstantOf(n.inputs[2]);
  if (!v || v->num_elements() != 1 || v->dtype() != DType::kFloat32) return false;
  const float value = v->data<float>()[0];
  return QuantDequantValue(value, p) == value;
}

// True when quantize-dequantize `second` returns every value `first` produces unchanged: those
// are k * scale for integers k in first's bounds; with the same scale, bounds at least as wide
// and a quantization by that scale (x / scale, or x * inv_scale with inv_scale * scale within
// 1e-6 of 1), k * scale becomes k within 255 * 1e-6 and rounds back to k. The two steps may be
// written differently (an earlier pass moved one's 1 / scale into its producer).
bool IdentityOnGridOf(const QuantDequantParams& second, const QuantDequantParams& first) {
  const bool by_scale =
      second.divisor != 0 ? second.divisor == second.scale : std::fabs(second.inv_scale * second.scale - 1.0f) <= 1e-6f;
  return first.scale == second.scale && second.qmin <= first.qmin && first.qmax <= second.qmax && by_scale;
}

// cpu-redundant-quant-dequant: quantized models (ONNX Runtime's QDQ form) quantize-dequantize
// again after Reshapes / Transposes / max poolings / zero pads ... of a tensor
// quantize-dequantized with the same parameters. Those values are already on that grid (q * scale
// for integers q in [qmin, qmax]: dividing by the scale again lands within an ulp of q, which
// rounds back to q), so the second step is the identity and its readers read its input.
class RedundantQuantDequantPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-redundant-quant-dequant"; }
  bool Run(ir::Graph& g) override {
    bool changed = false;
    for (ir::Node& n : g.nodes()) {
      if (n.removed || n.op != kQuantDequant || ir::IsGraphOutput(g, n.outputs[0])) continue;
      // Back through the ops that keep grid values (at least one) to their source.
      const QuantDequantParams params = QuantDequantParamsOf(n);
      const ir::Node* first = g.Producer(n.inputs[0]);
      int moves = 0;
      for (; first && !first->inputs.empty() && KeepsGridValues(g, *first, params); ++moves)
        first = g.Producer(first->inputs[0]);
      if (moves == 0 || !first || first->op != kQuantDequant || !IdentityOnGridOf(params, QuantDequantParamsOf(*first)))
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
