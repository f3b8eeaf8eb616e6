// cpu-int8: fused convolutions and matrix products whose float32 operands are quantize-dequantize
// chains (activations) or constants on a per-output-channel (or per-tensor) int8 grid (weights) take the int8
// values instead, so oneDNN computes them with int8 primitives (see cpu_ops.h, backend/cpu/int8.h):
//   conv(dq(q(x)), W)         -> cpu.FusedConv2D(cpu.QuantizeS8(x), W_int8)   int8_scale_a, int8_scale_b
//   matmul(dq(q(a)), W)       -> cpu.FusedMatMul(cpu.QuantizeS8(a), W_int8)
//   matmul(dq(q(a)), dq(q(b))) -> cpu.FusedMatMul / cpu.FusedBatchMatMul(QuantizeS8(a), QuantizeS8(b))
// A node changes only when every one of its two operands qualifies; readers of one quantized
// tensor share one cpu.QuantizeS8. An activation read through a Transpose (a channels-first
// convolution run channels-last) is quantized first and transposed as int8. The chains left without readers go to
// dead-code elimination. cpu-int8-output (below) then lets int8 producers write int8 results themselves.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <tuple>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/int8.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"
#include "ir/op_schema.h"

namespace kiln::backend::cpu {
namespace {

// How one operand of a fused node becomes int8.
struct Int8Operand {
  std::optional<QuantDequant> activation;  // quantized at run time
  std::optional<GridWeights> weights;      // a constant on an int8 grid
  // The activation reaches the node through a Transpose (channels-last puts one before every
  // channels-first convolution): its permutation input; the int8 values are transposed instead.
  ir::ValueId transpose_perm = ir::kNoValue;
};

std::optional<Int8Operand> AsInt8(const ir::Graph& g, const ir::Node& n, size_t input) {
  const ir::ValueId v = n.inputs[input];
  if (g.value(v).dtype != DType::kFloat32) return std::nullopt;
  Int8Operand op;
  if (const Tensor* c = g.ConstantOf(v)) {
    if (input != 1 || n.op == kFusedBatchMatMul) return std::nullopt;
    const auto [channels, inner] = OutputChannelsOf(n, c->shape());
    if (channels <= 0) return std::nullopt;
    op.weights = RecoverInt8Grid(*c, channels, inner);
    // Weights quantized per tensor: one grid for all channels.
    if (!op.weights) op.weights = RecoverInt8Grid(*c, 1, c->num_elements());
    if (!op.weights) return std::nullopt;
    return op;
  }
  if (input == 1 && n.op == kFusedConv2D) return std::nullopt;
  op.activation = MatchQuantDequant(g, v);
  if (!op.activation) {
    const ir::Node* t = g.Producer(v);
    if (!t || t->removed || t->op != "Transpose" || t->inputs.size() != 2 || !g.ConstantOf(t->inputs[1]))
      return std::nullopt;
    op.activation = MatchQuantDequant(g, t->inputs[0]);
    if (!op.activation) return std::nullopt;
    op.transpose_perm = t->inputs[1];
  }
  return op;
}

class Int8Pass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-int8"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    ir::NameGen names(g);
    // One cpu.QuantizeS8 per (source, inv_scale, qmin, qmax).
    std::map<std::tuple<ir::ValueId, float, float, float>, ir::ValueId> quantized;
    auto quantize = [&](const QuantDequant& q) {
      const auto key = std::make_tuple(q.source, q.inv_scale, q.qmin, q.qmax);
      if (auto it = quantized.find(key); it != quantized.end()) return it->second;
      const ir::ValueId out = AddQuantizeS8(g, names, q);
      quantized.emplace(key, out);
      return out;
    };
    // The int8 operand of `op`: its quantization, transposed when the float operand was.
    std::map<std::pair<ir::ValueId, ir::ValueId>, ir::ValueId> transposed;
    auto operand = [&](const Int8Operand& op) {
      const ir::ValueId q = quantize(*op.activation);
      if (op.transpose_perm == ir::kNoValue) return q;
      const auto key = std::make_pair(q, op.transpose_perm);
      if (auto it = transposed.find(key); it != transposed.end()) return it->second;
      const ir::NodeId t =
          g.AddNode("Transpose", names.Make(g.value(q).name + "/transpose"), {q, op.transpose_perm}, 1).id;
      ir::InferNode(g, t);
      return transposed.emplace(key, g.node(t).outputs[0]).first->second;
    };
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::NodeId id = static_cast<ir::NodeId>(i);
      const ir::Node& n = g.node(id);
      if (n.removed || (n.op != kFusedConv2D && n.op != kFusedMatMul && n.op != kFusedBatchMatMul)) continue;
      if (n.inputs.size() < 2) continue;
      const auto a = AsInt8(g, n, 0), b = AsInt8(g, n, 1);
      if (!a || !b || !a->activation) continue;
      // oneDNN's int8 weights (operand b) are signed, without a zero point.
      if (b->activation && StorageFor(b->activation->qmin, b->activation->qmax).is_unsigned) continue;
      const ir::ValueId qa = operand(*a);
      ir::ValueId qb;
      std::vector<double> scale_b;
      if (b->activation) {
        qb = operand(*b);
        scale_b.push_back(b->activation->scale);
      } else {
        qb = g.AddConstant(names.Make(g.node(id).name + "/weights_s8"), b->weights->values);
        scale_b.assign(b->weights->scales.begin(), b->weights->scales.end());
      }
      ir::Node& fused = g.node(id);
      fused.inputs[0] = qa;
      fused.inputs[1] = qb;
      fused.attrs.Set("int8_scale_a", static_cast<double>(a->activation->scale));
      if (const int zp = StorageFor(a->activation->qmin, a->activation->qmax).zero_point; zp != 0)
        fused.attrs.Set("int8_zero_point_a", static_cast<int64_t>(zp));
      fused.attrs.Set("int8_scale_b", scale_b);
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

// cpu-int8-output: an int8 conv / matmul whose result only a cpu.QuantizeS8 reads writes the
// 8-bit values itself (oneDNN converts its f32 result to s8 / u8, rounding half to even and
// saturating), so the float tensor is never stored: int8 when the quantization has no zero
// point, uint8 when it is unsigned without one. Bounds narrower than the storage's saturation
// ([-127, 127], Kiln's symmetric grid) become a clip post-op after the scaling: clipping to
// integer bounds before rounding equals clamping after it. The clip is left out where the
// post-ops leave no value below zero and the upper bound is the storage's. Runs after dead-code
// elimination, so the replaced quantize-dequantize chains no longer read results.
class Int8OutputPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-int8-output"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const auto consumers = g.Consumers();
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node* qn = &g.node(static_cast<ir::NodeId>(i));
      if (qn->removed || qn->op != kQuantizeS8) continue;
      const ir::ValueId q_out = qn->outputs[0];
      const ir::ValueId x = qn->inputs[0];
      const ir::Node* p = g.Producer(x);
      if (!p || p->removed || (p->op != kFusedConv2D && p->op != kFusedMatMul)) continue;
      const DType a_type = g.value(p->inputs[0]).dtype;
      if ((a_type != DType::kInt8 && a_type != DType::kUInt8) || p->attrs.GetOr<bool>("int8_output", false)) continue;
      if (consumers[static_cast<size_t>(x)].size() != 1 || ir::IsGraphOutput(g, x)) continue;
      const double inv_scale = qn->attrs.Get<double>("inv_scale"), qmin = qn->attrs.Get<double>("qmin"),
                   qmax = qn->attrs.Get<double>("qmax");
      // int8 saturates to [-128, 127], uint8 (without a zero point) to [0, 255].
      const bool is_unsigned = qn->attrs.GetOr<bool>("unsigned", false);
      const double lowest = is_unsigned ? 0 : -128, highest = is_unsigned ? 255 : 127;
      if (qn->attrs.GetOr<int64_t>("zero_point", 0) != 0 || qmin < lowest || qmax > highest ||
          qmin != std::round(qmin) || qmax != std::round(qmax))
        continue;
      std::vector<PostOp> ops = ReadPostOps(*p);
      if (inv_scale != 1) ops.push_back({PostOpKind::kLinear, inv_scale, 0.0});
      const bool lower_acts = qmin != lowest && !(qmin <= 0 && NeverNegative(ops));
      if (lower_acts || qmax != highest) ops.push_back({PostOpKind::kClip, qmin, qmax});
      ir::Node& producer = g.node(p->id);
      WritePostOps(producer.attrs, ops);
      producer.attrs.Set("int8_output", true);
      if (is_unsigned) producer.attrs.Set("unsigned_output", true);
      g.value(x).dtype = is_unsigned ? DType::kUInt8 : DType::kInt8;
      const ir::NodeId quantize_node = qn->id;
      g.ReplaceAllUses(q_out, x);
      g.node(quantize_node).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }

 private:
  // True when the post-ops' result is >= 0 whatever their input.
  static bool NeverNegative(const std::vector<PostOp>& ops) {
    bool non_negative = false;
    for (const PostOp& op : ops) {
      switch (op.kind) {
        case PostOpKind::kRelu:
        case PostOpKind::kRelu6:
        case PostOpKind::kSigmoid:
          non_negative = true;
          break;
        case PostOpKind::kClip:
          non_negative = op.alpha >= 0;
          break;
        case PostOpKind::kLinear:
          non_negative = non_negative && op.alpha >= 0 && op.beta >= 0;
          break;
        default:
          non_negative = false;
      }
    }
    return non_negative;
  }
};

}  // namespace

ir::ValueId AddQuantizeS8(ir::Graph& g, ir::NameGen& names, const QuantDequant& q) {
  const Int8Storage storage = StorageFor(q.qmin, q.qmax);
  ir::Node& node = g.AddNode(std::string(kQuantizeS8),
                             names.Make(g.value(q.source).name + (storage.is_unsigned ? "/u8" : "/s8")), {q.source}, 1);
  node.attrs.Set("inv_scale", static_cast<double>(q.inv_scale));
  node.attrs.Set("qmin", static_cast<double>(q.qmin));
  node.attrs.Set("qmax", static_cast<double>(q.qmax));
  if (storage.is_unsigned) {
    node.attrs.Set("unsigned", true);
    node.attrs.Set("zero_point", static_cast<int64_t>(storage.zero_point));
  }
  const ir::NodeId id = node.id;
  ir::InferNode(g, id);
  return g.node(id).outputs[0];
}

ir::ValueId FindQuantizeS8(const ir::Graph& g, const QuantDequant& q) {
  for (const ir::Node& n : g.nodes()) {
    if (n.removed || n.op != kQuantizeS8 || n.inputs[0] != q.source) continue;
    if (n.attrs.Get<double>("inv_scale") == static_cast<double>(q.inv_scale) &&
        n.attrs.Get<double>("qmin") == static_cast<double>(q.qmin) &&
        n.attrs.Get<double>("qmax") == static_cast<double>(q.qmax))
      return n.outputs[0];
  }
  return ir::kNoValue;
}

std::unique_ptr<CountingPass> MakeInt8Pass() { return std::make_unique<Int8Pass>(); }
std::unique_ptr<CountingPass> MakeInt8OutputPass() { return std::make_unique<Int8OutputPass>(); }

}  // namespace kiln::backend::cpu
