// GELU fusion: the decomposed exact GELU that exporters write becomes one Gelu node (the
// elementwise table's Gelu, 0.5 * x * (1 + erf(x / sqrt(2)))), so a backend can run it in a
// matrix product's epilogue or as one cheap elementwise op.
//
//   u = Div(x, sqrt(2)) | Mul(x, 1/sqrt(2))      e = Erf(u)      a = Add(e, 1)
//   y = the product of x, a and one half, associated in any order:
//       Mul(Mul(x, a), 0.5)  (PyTorch's export)    Mul(Mul(x, 0.5), a)  (ONNX Gelu, TensorFlow)
//       Mul(Mul(a, 0.5), x)                        and Div(..., 2) for the half.
//   or TensorFlow's tf.nn.gelu: y = 0.5 * x * Erfc(Neg(x) * (1/sqrt(2))), the same product.
//
// Constants are one-element float constants within a few float32 ulps of their exact values;
// every intermediate must have no reader outside the pattern.
#include <cmath>
#include <numbers>
#include <optional>

#include "ir/dtype_class.h"
#include "ir/graph_util.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

class GeluMatcher {
 public:
  GeluMatcher(const Graph& g, const std::vector<std::vector<NodeId>>& consumers) : g_(g), consumers_(consumers) {}

  struct Match {
    ValueId x = kNoValue, result = kNoValue;
    std::vector<NodeId> nodes;  // become dead
  };

  // 0.5 * x * erfc(-x / sqrt(2)), as TensorFlow's tf.nn.gelu (and Keras 3's gelu) write it:
  // Neg(x), then Mul by 1/sqrt(2) or Div by sqrt(2) (or Mul by -1/sqrt(2) without the Neg),
  // Erfc, and the product with x and one half in any association. The same function as the erf
  // form (erfc(-u) = 1 + erf(u)).
  std::optional<Match> FromErfc(const Node& erfc) const {
    Match m;
    const Node* scale = g_.Producer(erfc.inputs[0]);
    if (!scale || !SoleReader(scale->outputs[0]) || scale->inputs.size() != 2) return std::nullopt;
    ValueId u = kNoValue;
    bool negated = false;
    if (scale->op == "Div" && Near(scale->inputs[1], std::numbers::sqrt2)) u = scale->inputs[0];
    else if (scale->op == "Mul" && Near(scale->inputs[1], 1 / std::numbers::sqrt2)) u = scale->inputs[0];
    else if (scale->op == "Mul" && Near(scale->inputs[0], 1 / std::numbers::sqrt2)) u = scale->inputs[1];
    else if (scale->op == "Mul" && Near(scale->inputs[1], -1 / std::numbers::sqrt2)) u = scale->inputs[0], negated = true;
    else if (scale->op == "Mul" && Near(scale->inputs[0], -1 / std::numbers::sqrt2)) u = scale->inputs[1], negated = true;
    else return std::nullopt;
    m.nodes = {scale->id, erfc.id};
    if (negated) {
      m.x = u;
    } else {
      const Node* neg = g_.Producer(u);
      if (!neg || neg->op != "Neg" || neg->inputs.size() != 1 || !SoleReader(u)) return std::nullopt;
      m.x = neg->inputs[0];
      m.nodes.push_back(neg->id);
    }
    const DType dtype = g_.value(m.x).dtype;
    if (!InClass(dtype, kFloat)) return std::nullopt;
    if (!Product(erfc.outputs[0], m)) return std::nullopt;
    const SymShape& in = g_.value(m.x).shape;
    const SymShape& out = g_.value(m.result).shape;
    if (g_.value(m.result).dtype != dtype || !in.rank_known || !out.rank_known || in.dims != out.dims)
      return std::nullopt;
    return m;
  }

  std::optional<Match> FromErf(const Node& erf) const {
    Match m;
    const Node* scale = g_.Producer(erf.inputs[0]);
    if (!scale || !SoleReader(scale->outputs[0])) return std::nullopt;
    if (scale->op == "Div" && Near(scale->inputs[1], std::numbers::sqrt2))
      m.x = scale->inputs[0];
    else if (scale->op == "Mul" && Near(scale->inputs[1], 1 / std::numbers::sqrt2))
      m.x = scale->inputs[0];
    else if (scale->op == "Mul" && Near(scale->inputs[0], 1 / std::numbers::sqrt2))
      m.x = scale->inputs[1];
    else
      return std::nullopt;
    const DType dtype = g_.value(m.x).dtype;
    if (!InClass(dtype, kFloat)) return std::nullopt;
    const Node* add = SoleReader(erf.outputs[0]);
    if (!add || add->op != "Add" || Other(*add, erf.outputs[0]) == kNoValue || !Near(Other(*add, erf.outputs[0]), 1.0))
      return std::nullopt;
    const ValueId a = add->outputs[0];
    m.nodes = {scale->id, erf.id, add->id};
    if (!Product(a, m)) return std::nullopt;
    // y keeps x's dtype and shape (the constants broadcast nothing).
    const SymShape& in = g_.value(m.x).shape;
    const SymShape& out = g_.value(m.result).shape;
    if (g_.value(m.result).dtype != dtype || !in.rank_known || !out.rank_known || in.dims != out.dims)
      return std::nullopt;
    return m;
  }

 private:
  // The product of m.x, `a` and one half, associated in any order; sets m.result and adds its
  // nodes.
  bool Product(ValueId a, Match& m) const {
    const Node* first = SoleReader(a);
    if (!first || !IsMul(*first) || Other(*first, a) == kNoValue) return false;
    m.nodes.push_back(first->id);
    const ValueId partner = Other(*first, a);
    if ((partner == m.x && first->op == "Mul") || IsHalf(*first, a)) {
      // (x * a) or (a * 0.5), then times the missing factor.
      const Node* second = SoleReader(first->outputs[0]);
      if (!second || !IsMul(*second)) return false;
      const ValueId last = Other(*second, first->outputs[0]);
      const bool ok = partner == m.x ? IsHalf(*second, first->outputs[0]) : (last == m.x && second->op == "Mul");
      if (!ok) return false;
      m.nodes.push_back(second->id);
      m.result = second->outputs[0];
    } else {
      // (x * 0.5) * a.
      const Node* half_x = g_.Producer(partner);
      if (!half_x || first->op != "Mul" || !SoleReader(partner) || !IsMul(*half_x) || Other(*half_x, m.x) == kNoValue ||
          !IsHalf(*half_x, m.x))
        return false;
      m.nodes.push_back(half_x->id);
      m.result = first->outputs[0];
    }
    return true;
  }

  const Node* SoleReader(ValueId v) const {
    const auto& r = consumers_[static_cast<size_t>(v)];
    if (r.size() != 1 || IsGraphOutput(g_, v)) return nullptr;
    return &g_.node(r[0]);
  }
  // The input of a two-input node that is not `v`; kNoValue when both or neither are.
  static ValueId Other(const Node& n, ValueId v) {
    if (n.inputs.size() != 2 || (n.inputs[0] == v) == (n.inputs[1] == v)) return kNoValue;
    return n.inputs[0] == v ? n.inputs[1] : n.inputs[0];
  }
  static bool IsMul(const Node& n) { return (n.op == "Mul" || n.op == "Div") && n.inputs.size() == 2; }
  // n multiplies `v` by one half: Mul(v, 0.5), Mul(0.5, v) or Div(v, 2).
  bool IsHalf(const Node& n, ValueId v) const {
    if (n.op == "Mul") return Other(n, v) != kNoValue && Near(Other(n, v), 0.5);
    return n.op == "Div" && n.inputs[0] == v && n.inputs[1] != v && Near(n.inputs[1], 2.0);
  }
  // A one-element float constant within 4 float32 ulps (relative 5e-7) of `value`.
  bool Near(ValueId v, double value) const {
    const Tensor* t = g_.ConstantOf(v);
    if (!t || t->num_elements() != 1 || (t->dtype() != DType::kFloat32 && t->dtype() != DType::kFloat64))
      return false;
    return std::abs(t->DoubleAt(0) - value) <= 5e-7 * std::abs(value);
  }

  const Graph& g_;
  const std::vector<std::vector<NodeId>>& consumers_;
};

class GeluFusion final : public Pass {
 public:
  std::string name() const override { return "gelu-fusion"; }
  bool Run(Graph& graph) override {
    bool changed = false;
    NameGen names(graph);
    auto consumers = graph.Consumers();
    for (NodeId id : graph.TopologicalOrder()) {
      const Node& n = graph.node(id);
      if (n.removed || (n.op != "Erf" && n.op != "Erfc")) continue;
      const GeluMatcher matcher(graph, consumers);
      const auto m = n.op == "Erf" ? matcher.FromErf(n) : matcher.FromErfc(n);
      if (!m) continue;
      const std::string name = names.Make(graph.Producer(m->result)->name + "/gelu");
      AddReplacementNode(graph, "Gelu", name, {m->x}, m->result);
      for (NodeId dead : m->nodes) graph.node(dead).removed = true;
      consumers = graph.Consumers();
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> MakeGeluFusion() { return std::make_unique<GeluFusion>(); }

}  // namespace kiln::ir
