// cpu-fuse-eltwise-chain: maximal chains of float32 elementwise ops (the fusible ops of the
// elementwise table, ir/ops/elementwise_ops.h, and the cpu.QuantDequant steps of quantized
// models) become one cpu.EltwiseChain node. A chain starts
// at an elementwise node and follows the running value while it has exactly one reader (and is
// not a graph output) that is again a chain op. Binary steps take their other operand from
// outside the chain (a constant, the chain's input, or another tensor) provided it broadcasts
// into the running value without enlarging it; the chain's output has the shape of its input.
// The kernel (backend/cpu/eltwise_chain.cc) applies every step to a cache-sized tile before
// moving on, so the data is read and written once. A cpu.QuantizeS8 that is the only reader of a
// chain's result joins it: the chain stores the int8 values, and the float result is never written.
#include <algorithm>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/int8.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::backend::cpu {
namespace {

bool IsFloat32Value(const ir::Graph& g, ir::ValueId v) { return g.value(v).dtype == DType::kFloat32; }

// The elementwise-table description of a node the chain kernel can run, or nullptr.
const ir::elementwise::OpInfo* FusibleOp(const ir::Node& n) {
  const ir::elementwise::OpInfo* op = ir::elementwise::FindOp(n.op);
  return op && op->fusible ? op : nullptr;
}

struct Step {
  ir::NodeId node;
  ir::ValueId operand = ir::kNoValue;  // binary steps
  bool swapped = false;                // operand is the left-hand side
};

// Can `n` be a chain step whose running input is `main`? Fills `step` when it can.
bool AsStep(const ir::Graph& g, const ir::Node& n, ir::ValueId main, Step* step) {
  if (n.outputs.size() != 1 || !IsFloat32Value(g, n.outputs[0])) return false;
  for (ir::ValueId in : n.inputs)
    if (!IsFloat32Value(g, in)) return false;
  step->node = n.id;
  if (n.op == kQuantDequant) return n.inputs.size() == 1 && n.inputs[0] == main;
  const ir::elementwise::OpInfo* op = FusibleOp(n);
  if (!op) return false;
  if (op->pattern == ir::elementwise::Pattern::kUnary) return n.inputs.size() == 1 && n.inputs[0] == main;
  if (n.inputs.size() != 2) return false;
  const int side = n.inputs[0] == main ? 0 : n.inputs[1] == main ? 1 : -1;
  if (side < 0) return false;
  const ir::ValueId other = n.inputs[static_cast<size_t>(1 - side)];
  if (!ir::BroadcastsInto(g.value(other).shape, g.value(main).shape)) return false;
  step->operand = other;
  step->swapped = side == 1;
  return true;
}

class FuseEltwiseChainPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-fuse-eltwise-chain"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    auto consumers = g.Consumers();
    for (ir::NodeId head : g.TopologicalOrder()) {
      if (g.node(head).removed) continue;
      const ir::Node& h = g.node(head);
      if (h.inputs.empty()) continue;
      // The chain's input: the only input of a unary op, else a non-constant input the other
      // operand broadcasts into.
      Step first;
      ir::ValueId input = ir::kNoValue;
      std::vector<ir::ValueId> candidates(h.inputs.begin(), h.inputs.end());
      std::stable_sort(candidates.begin(), candidates.end(),
                       [&](ir::ValueId a, ir::ValueId b) { return !g.ConstantOf(a) && g.ConstantOf(b); });
      for (ir::ValueId c : candidates)
        if (!g.ConstantOf(c) && AsStep(g, h, c, &first)) {
          input = c;
          break;
        }
      if (input == ir::kNoValue) continue;
      std::vector<Step> steps{first};
      ir::ValueId cur = h.outputs[0];
      while (!ir::IsGraphOutput(g, cur) && consumers[static_cast<size_t>(cur)].size() == 1) {
        Step s;
        if (!AsStep(g, g.node(consumers[static_cast<size_t>(cur)][0]), cur, &s)) break;
        if (s.operand == cur) break;  // x op x inside the chain: the intermediate is not kept
        steps.push_back(s);
        cur = g.node(s.node).outputs[0];
      }

      // Node inputs: the chain input, then each distinct outside operand.
      std::vector<ir::ValueId> inputs{input};
      std::vector<std::string> ops;
      std::vector<int64_t> operands, swapped;
      std::vector<double> alphas, quant;
      for (const Step& s : steps) {
        const ir::Node& n = g.node(s.node);
        ops.push_back(n.op);
        if (n.op == kQuantDequant) {
          alphas.push_back(0);
          const std::vector<double> values = QuantDequantAttrValues(n);
          quant.insert(quant.end(), values.begin(), values.end());
        } else {
          alphas.push_back(ir::elementwise::ParamOf(*FusibleOp(n), n.attrs));
        }
        swapped.push_back(s.swapped ? 1 : 0);
        if (s.operand == ir::kNoValue) {
          operands.push_back(-1);
          continue;
        }
        auto it = std::find(inputs.begin(), inputs.end(), s.operand);
        if (it == inputs.end()) it = inputs.insert(inputs.end(), s.operand);
        operands.push_back(it - inputs.begin());
      }
      const std::string name = g.node(head).name;
      ir::Node& chain = ir::AddReplacementNode(g, std::string(kEltwiseChain), name, inputs, cur);
      chain.source_op = ops.size() == 1 ? ops[0] : "elementwise chain";
      chain.attrs.Set("steps", ops);
      chain.attrs.Set("operands", operands);
      chain.attrs.Set("swapped", swapped);
      chain.attrs.Set("alphas", alphas);
      if (!quant.empty()) chain.attrs.Set("quant_dequant", quant);
      for (const Step& s : steps) g.node(s.node).removed = true;
      if (!ir::IsGraphOutput(g, cur) && consumers[static_cast<size_t>(cur)].size() == 1) {
        ir::Node& q = g.node(consumers[static_cast<size_t>(cur)][0]);
        if (q.op == kQuantizeS8 && !ir::IsGraphOutput(g, q.outputs[0])) {
          const QuantizeParams params = QuantizeParamsOf(q);
          chain.attrs.Set("quantize_output", QuantizeAttrValues(params));
          const ir::ValueId result = chain.outputs[0];
          g.value(result).dtype = params.is_unsigned ? DType::kUInt8 : DType::kInt8;
          g.ReplaceAllUses(q.outputs[0], result);
          q.removed = true;
        }
      }
      consumers = g.Consumers();
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeFuseEltwiseChainPass() { return std::make_unique<FuseEltwiseChainPass>(); }

}  // namespace kiln::backend::cpu
