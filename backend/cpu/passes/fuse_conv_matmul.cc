// cpu-fuse-conv-matmul: float32 Conv2D / DepthwiseConv2D (constant filter, constant or no
// bias), MatMul (constant or no bias) and BatchMatMul become the backend's fused ops, absorbing
// the chain of ops that follows them as oneDNN post-ops:
//   Relu, Relu6, Sigmoid, Tanh, Elu, LeakyRelu      -> eltwise post-op
//   Clip with scalar constant bounds (lo <= hi)      -> clip
//   y * Sigmoid(y), y * Sigmoid(beta * y) (either operand order) -> swish (alpha beta)
//   Add(y, z) with z of exactly y's shape            -> binary add (z becomes an extra input)
//   Add / Mul / Sub with a scalar constant           -> linear (alpha * y + beta)
// A BatchMatMul of rows [..., m, k] by a constant [k, n] matrix (every transformer's dense layer,
// as PyTorch exports it) becomes cpu.FusedMatMul over all the rows, one GEMM with prepacked
// weights, and then also absorbs
//   Add(y, c) with c a constant [n] (or [1, ..., n])  -> the bias
// A node is absorbed only when the running value has no other reader and is not a graph output.
// Per-channel Add / Mul right after the conv were already folded by cpu-fold-batchnorm.
#include <optional>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"

namespace kiln::backend::cpu {
namespace {

std::optional<PostOpKind> ActivationKind(const std::string& op) {
  if (op == "Relu") return PostOpKind::kRelu;
  if (op == "Relu6") return PostOpKind::kRelu6;
  if (op == "Sigmoid") return PostOpKind::kSigmoid;
  if (op == "Tanh") return PostOpKind::kTanh;
  if (op == "Elu") return PostOpKind::kElu;
  if (op == "LeakyRelu") return PostOpKind::kLeakyRelu;
  if (op == "Gelu") return PostOpKind::kGelu;
  return std::nullopt;
}

bool IsF32(const ir::Graph& g, ir::ValueId v) { return g.value(v).dtype == DType::kFloat32; }

// A BatchMatMul of rows [..., m, k] (not adjoint) by a constant rank-2 matrix: a dense layer.
bool DenseRows(const ir::Graph& g, const ir::Node& n) {
  if (n.op != "BatchMatMul" || n.inputs.size() != 2 || n.attrs.GetOr<bool>("adj_x", false)) return false;
  const Tensor* w = g.ConstantOf(n.inputs[1]);
  const ir::SymShape& a = g.value(n.inputs[0]).shape;
  return w && w->rank() == 2 && !g.ConstantOf(n.inputs[0]) && a.rank_known && a.rank() >= 2;
}

// The fused op a node becomes, or empty when it does not qualify.
std::string_view FusedOpFor(const ir::Graph& g, const ir::Node& n) {
  if (n.outputs.size() != 1 || !IsF32(g, n.outputs[0])) return {};
  for (ir::ValueId in : n.inputs)
    if (!IsF32(g, in)) return {};
  if (n.op == "Conv2D" || n.op == "DepthwiseConv2D") {
    const Tensor* w = g.ConstantOf(n.inputs[1]);
    if (!w || w->rank() != 4) return {};
    if (n.inputs.size() > 2 && !g.ConstantOf(n.inputs[2])) return {};
    if (n.attrs.GetOr<std::string>("data_format", "NHWC").size() != 4) return {};
    return kFusedConv2D;
  }
  if (n.op == "MatMul") {
    if (n.inputs.size() > 2 && !g.ConstantOf(n.inputs[2])) return {};
    return kFusedMatMul;
  }
  if (n.op == "BatchMatMul") return DenseRows(g, n) ? kFusedMatMul : kFusedBatchMatMul;
  return {};
}

// The value of a one-element float constant operand of a binary node, when the other operand
// is not a constant.
std::optional<double> ScalarOperand(const ir::Graph& g, const ir::Node& n) {
  if (n.inputs.size() != 2) return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    const Tensor* c = g.ConstantOf(n.inputs[static_cast<size_t>(side)]);
    if (c && c->num_elements() == 1 && IsFloating(c->dtype()) && !g.ConstantOf(n.inputs[static_cast<size_t>(1 - side)]))
      return c->DoubleAt(0);
  }
  return std::nullopt;
}

// `n` is Mul(y, beta) (a scalar beta, either order) whose only reader is a Sigmoid.
bool ScaledSigmoid(const ir::Graph& g, const std::vector<std::vector<ir::NodeId>>& consumers, const ir::Node& n,
                   ir::ValueId y) {
  if (n.op != "Mul" || n.inputs.size() != 2 || (n.inputs[0] != y && n.inputs[1] != y) || !ScalarOperand(g, n))
    return false;
  const auto& readers = consumers[static_cast<size_t>(n.outputs[0])];
  return readers.size() == 1 && !ir::IsGraphOutput(g, n.outputs[0]) && g.node(readers[0]).op == "Sigmoid";
}

class FuseConvMatMulPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-fuse-conv-matmul"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    ir::NameGen names(g);
    auto consumers = g.Consumers();
    const size_t num_nodes = g.nodes().size();
    for (size_t id = 0; id < num_nodes; ++id) {
      const ir::NodeId nid = static_cast<ir::NodeId>(id);
      if (g.node(nid).removed) continue;
      const std::string_view fused_op = FusedOpFor(g, g.node(nid));
      if (fused_op.empty()) continue;

      // A dense layer (DenseRows) takes a following Add of its bias vector as its bias.
      const bool dense = DenseRows(g, g.node(nid));
      const int64_t dense_width =
          dense ? g.ConstantOf(g.node(nid).inputs[1])->dim(g.node(nid).attrs.GetOr<bool>("adj_y", false) ? 0 : 1) : -1;
      std::optional<ir::ValueId> bias =
          g.node(nid).inputs.size() > 2 ? std::optional(g.node(nid).inputs[2]) : std::nullopt;
      std::optional<ir::ValueId> dense_bias;  // its bias, a constant of any shape holding [n] values
      // Absorb what follows.
      std::vector<PostOp> post_ops;
      std::vector<ir::ValueId> adds;
      std::vector<ir::NodeId> absorbed{nid};
      ir::ValueId cur = g.node(nid).outputs[0];
      while (!ir::IsGraphOutput(g, cur)) {
        const auto& users = consumers[static_cast<size_t>(cur)];
        if (users.size() == 2) {  // y * sigmoid(y), or y * sigmoid(beta * y) (Keras 3's swish)
          const ir::Node* s = &g.node(users[0]);
          const ir::Node* m = &g.node(users[1]);
          // The reader that leads to the Sigmoid: the Sigmoid itself or a Mul by a scalar beta.
          auto leads_to_sigmoid = [&](const ir::Node* n) {
            return n->op == "Sigmoid" || ScaledSigmoid(g, consumers, *n, cur);
          };
          if (!leads_to_sigmoid(s)) std::swap(s, m);
          if (!leads_to_sigmoid(s) || m->op != "Mul" || m->inputs.size() != 2) break;
          double beta = 1.0;
          const ir::Node* scale = nullptr;
          if (s->op != "Sigmoid") {
            scale = s;
            beta = *ScalarOperand(g, *scale);
            s = &g.node(consumers[static_cast<size_t>(scale->outputs[0])][0]);
          }
          if (s->inputs.size() != 1) break;
          const ir::ValueId sv = s->outputs[0];
          const bool pair = (m->inputs[0] == cur && m->inputs[1] == sv) || (m->inputs[1] == cur && m->inputs[0] == sv);
          if (!pair || consumers[static_cast<size_t>(sv)].size() != 1 || ir::IsGraphOutput(g, sv) ||
              !IsF32(g, m->outputs[0]))
            break;
          post_ops.push_back({PostOpKind::kSwish, beta, 0.0});
          if (scale) absorbed.push_back(scale->id);
          absorbed.push_back(s->id);
          absorbed.push_back(m->id);
          cur = m->outputs[0];
          continue;
        }
        if (users.size() != 1) break;
        const ir::Node& u = g.node(users[0]);
        if (u.outputs.size() != 1 || !IsF32(g, u.outputs[0])) break;
        const Tensor* lo =
            u.op == "Clip" && u.inputs.size() == 3 && u.inputs[0] == cur ? g.ConstantOf(u.inputs[1]) : nullptr;
        const Tensor* hi = lo ? g.ConstantOf(u.inputs[2]) : nullptr;
        if (auto act = ActivationKind(u.op); act && u.inputs.size() == 1) {
          post_ops.push_back({*act, *act == PostOpKind::kLeakyRelu ? u.attrs.GetOr<double>("alpha", 0.2) : 0.0, 0.0});
        } else if (lo && hi && lo->num_elements() == 1 && hi->num_elements() == 1 && lo->dtype() == DType::kFloat32 &&
                   hi->dtype() == DType::kFloat32 && lo->DoubleAt(0) <= hi->DoubleAt(0)) {
          post_ops.push_back({PostOpKind::kClip, lo->DoubleAt(0), hi->DoubleAt(0)});
        } else if ((u.op == "Add" || u.op == "Mul" || u.op == "Sub") && u.inputs.size() == 2 &&
                   (u.inputs[0] == cur) != (u.inputs[1] == cur)) {
          const bool y_first = u.inputs[0] == cur;
          const ir::ValueId other = u.inputs[y_first ? 1 : 0];
          const Tensor* c = g.ConstantOf(other);
          const ir::SymShape& cur_shape = g.value(cur).shape;
          if (c && c->num_elements() == 1 && IsFloating(c->dtype()) && cur_shape.rank_known &&
              c->rank() <= cur_shape.rank()) {
            const double v = c->DoubleAt(0);
            if (u.op == "Add")
              post_ops.push_back({PostOpKind::kLinear, 1.0, v});
            else if (u.op == "Mul")
              post_ops.push_back({PostOpKind::kLinear, v, 0.0});
            else
              post_ops.push_back(y_first ? PostOp{PostOpKind::kLinear, 1.0, -v} : PostOp{PostOpKind::kLinear, -1.0, v});
          } else if (dense && !bias && !dense_bias && post_ops.empty() && u.op == "Add" && c &&
                     c->dtype() == DType::kFloat32 && c->rank() >= 1 && c->num_elements() == c->dim(c->rank() - 1) &&
                     c->dim(c->rank() - 1) == dense_width && cur_shape.rank_known && c->rank() <= cur_shape.rank()) {
            dense_bias = other;  // a [n] constant made after the loop (adding nodes moves them)
          } else if (u.op == "Add" && IsF32(g, other) && ir::SameShape(g.value(other).shape, cur_shape)) {
            post_ops.push_back({PostOpKind::kAdd, 0.0, 0.0});
            adds.push_back(other);
          } else {
            break;
          }
        } else {
          break;
        }
        absorbed.push_back(u.id);
        cur = u.outputs[0];
      }

      if (dense_bias) {
        const Tensor& c = *g.ConstantOf(*dense_bias);
        bias = c.rank() == 1 ? *dense_bias
                             : g.AddConstant(names.Make(g.node(nid).name + "/bias"), c.Reshaped({dense_width}));
      }
      // Build the fused node.
      const ir::Node& n = g.node(nid);
      const std::string node_name = n.name;
      const std::string original_op = n.op;
      std::vector<ir::ValueId> inputs{n.inputs[0], n.inputs[1]};
      ir::AttrMap attrs;
      for (const char* key :
           {"data_format", "strides", "dilations", "padding", "pads", "transpose_a", "transpose_b", "adj_x", "adj_y"})
        if (auto it = n.attrs.all().find(key); it != n.attrs.all().end()) attrs.Set(key, it->second);
      if (dense) {  // the BatchMatMul's adjoint of its weights is the product's transpose_b
        ir::AttrMap dense_attrs;
        dense_attrs.Set("transpose_b", n.attrs.GetOr<bool>("adj_y", false));
        attrs = std::move(dense_attrs);
      }
      if (fused_op == kFusedConv2D) {
        const Tensor w = *g.ConstantOf(n.inputs[1]);
        const int64_t channels = original_op == "Conv2D" ? w.dim(3) : w.dim(2) * w.dim(3);
        if (original_op == "DepthwiseConv2D")
          inputs[1] =
              g.AddConstant(names.Make(node_name + "/grouped_filter"), w.Reshaped({w.dim(0), w.dim(1), 1, channels}));
        if (!bias) bias = g.AddConstant(names.Make(node_name + "/zero_bias"), Tensor(DType::kFloat32, {channels}));
      } else if (fused_op == kFusedMatMul) {
        if (!bias) {
          const ir::SymShape& out_shape = g.value(g.node(nid).outputs[0]).shape;
          const Tensor* b = g.ConstantOf(g.node(nid).inputs[1]);
          const bool tb = attrs.GetOr<bool>("transpose_b", false);
          int64_t channels = -1;
          if (b)
            channels = b->dim(tb ? 0 : 1);
          else if (out_shape.rank_known && ir::IsStatic(out_shape.dims[1]))
            channels = out_shape.dims[1];
          if (channels >= 0)
            bias = g.AddConstant(names.Make(node_name + "/zero_bias"), Tensor(DType::kFloat32, {channels}));
        }
        if (!bias) continue;  // unknown output width: leave the MatMul to the reference kernel
      }
      if (bias) inputs.push_back(*bias);
      inputs.insert(inputs.end(), adds.begin(), adds.end());
      WritePostOps(attrs, post_ops);
      std::vector<std::string> sources;
      for (ir::NodeId a : absorbed) sources.push_back(g.node(a).op);
      attrs.Set("source_ops", sources);

      ir::Node& fused = ir::AddReplacementNode(g, std::string(fused_op), node_name, inputs, cur);
      fused.source_op = original_op;
      fused.attrs = std::move(attrs);
      for (ir::NodeId a : absorbed) g.node(a).removed = true;
      consumers = g.Consumers();
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeFuseConvMatMulPass() { return std::make_unique<FuseConvMatMulPass>(); }

}  // namespace kiln::backend::cpu
