// cpu-pad: CONSTANT-mode Pads with constant, non-negative paddings and a constant (or no) pad
// value, of any dtype of 1, 2, 4 or 8 bytes, become cpu.Pad (row copies; pad_kernel.cc).
#include <algorithm>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

class PadPass final : public NodeRewritePass {
 public:
  std::string name() const override { return "cpu-pad"; }

 protected:
  std::optional<NodeRewrite> Rewrite(const ir::Graph& g, const ir::Node& n) const override {
    if (n.op != "Pad" || n.inputs.size() < 2 || n.attrs.GetOr<std::string>("mode", "CONSTANT") != "CONSTANT")
      return std::nullopt;
    const ir::Value& x = g.value(n.inputs[0]);
    const size_t size = DTypeSize(x.dtype);
    if (x.dtype == DType::kString || (size != 1 && size != 2 && size != 4 && size != 8)) return std::nullopt;
    if (!x.shape.rank_known || x.shape.rank() > 8) return std::nullopt;
    const Tensor* paddings = g.ConstantOf(n.inputs[1]);
    if (!paddings || paddings->num_elements() != 2 * static_cast<int64_t>(x.shape.rank())) return std::nullopt;
    const std::vector<int64_t> pads = paddings->ToInt64Vector();
    if (std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0; })) return std::nullopt;
    NodeRewrite r{std::string(kPad), {n.inputs[0]}, {}};
    if (n.inputs.size() == 3) {
      const Tensor* value = g.ConstantOf(n.inputs[2]);
      if (!value || value->num_elements() != 1 || value->dtype() != x.dtype) return std::nullopt;
      r.inputs.push_back(n.inputs[2]);
    }
    r.attrs.Set("pads", pads);
    return r;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakePadPass() { return std::make_unique<PadPass>(); }

}  // namespace kiln::backend::cpu
