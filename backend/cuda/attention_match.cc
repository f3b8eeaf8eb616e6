#include "backend/cuda/attention_match.h"

#include <optional>

#include "backend/cuda/host_values.h"
#include "ir/graph_util.h"

namespace kiln::backend::cuda {
namespace {

bool IsHalfFloat(DType d) { return d == DType::kFloat16 || d == DType::kBFloat16; }

class Matcher {
 public:
  Matcher(const ir::Graph& g, const std::vector<std::vector<ir::NodeId>>& consumers) : g_(g), consumers_(consumers) {}

  std::optional<AttentionMatch> Match(const ir::Node& softmax) const {
    AttentionMatch m;
    const ir::ValueId x = softmax.inputs[0];
    if (Rank(x) != 4 || !IsHalfFloat(g_.value(x).dtype)) return std::nullopt;
    const int64_t axis = softmax.attrs.GetOr<int64_t>("axis", -1);
    if (axis != -1 && axis != 3) return std::nullopt;
    double scale = 1.0;
    // Back from the softmax: [Add bias], [scalar factor], the product.
    ir::ValueId scores = x;
    const ir::Node* p = SoleProducer(scores);
    if (p && p->op == "Add" && p->inputs.size() == 2) {
      const int at = ProductSide(*p);
      if (at < 0) return std::nullopt;
      m.bias = p->inputs[static_cast<size_t>(1 - at)];
      const ir::SymShape& bias = g_.value(m.bias).shape;
      // Whether it broadcasts into the scores is checked per run (dims may be known only then).
      if (!bias.rank_known || bias.rank() > 4 || g_.value(m.bias).dtype != g_.value(x).dtype) return std::nullopt;
      m.nodes.push_back(p->id);
      scores = p->inputs[static_cast<size_t>(at)];
      p = SoleProducer(scores);
    }
    if (p && ScalarFactor(*p, &scale)) {
      m.nodes.push_back(p->id);
      scores = Other(*p);
      p = SoleProducer(scores);
    }
    if (!p || p->op != "BatchMatMul" || p->attrs.GetOr<bool>("adj_x", false)) return std::nullopt;
    m.nodes.push_back(p->id);
    const auto q = Trace(p->inputs[0], /*scales=*/true, &scale, &m.nodes);
    const auto kt = Trace(p->inputs[1], /*scales=*/true, &scale, &m.nodes);
    if (!q || !kt) return std::nullopt;
    m.q = *q;
    m.k = *kt;
    if (!p->attrs.GetOr<bool>("adj_y", false)) std::swap(m.k.dims[2], m.k.dims[3]);  // K^T was given
    m.nodes.push_back(softmax.id);

    // Forward from the softmax: [NaN guard], the product with V, [Transpose].
    ir::ValueId probs = softmax.outputs[0];
    const auto& readers = Readers(probs);
    if (readers.size() == 2) {
      const ir::Node* is_nan = readers[0]->op == "IsNan" ? readers[0] : readers[1];
      const ir::Node* select = readers[0]->op == "IsNan" ? readers[1] : readers[0];
      if (is_nan->op != "IsNan" || select->op != "Select" || Readers(is_nan->outputs[0]).size() != 1 ||
          Readers(is_nan->outputs[0])[0] != select || select->inputs[0] != is_nan->outputs[0] ||
          select->inputs[2] != probs || !IsZero(select->inputs[1]))
        return std::nullopt;
      m.nan_guard = true;
      m.nodes.push_back(is_nan->id);
      m.nodes.push_back(select->id);
      probs = select->outputs[0];
    } else if (readers.size() != 1) {
      return std::nullopt;
    }
    const ir::Node* pv = SoleReader(probs);
    if (!pv || pv->op != "BatchMatMul" || pv->inputs[0] != probs || pv->inputs[1] == probs ||
        pv->attrs.GetOr<bool>("adj_x", false))
      return std::nullopt;
    const auto v = Trace(pv->inputs[1], /*scales=*/false, nullptr, &m.nodes);
    if (!v) return std::nullopt;
    m.v = *v;
    if (pv->attrs.GetOr<bool>("adj_y", false)) std::swap(m.v.dims[2], m.v.dims[3]);
    m.nodes.push_back(pv->id);
    m.out.value = pv->outputs[0];
    if (Rank(m.out.value) != 4) return std::nullopt;
    const ir::Node* t = SoleReader(m.out.value);
    if (t && t->op == "Reshape" && Rank(t->outputs[0]) == 4) {
      const ir::Node* after = SoleReader(t->outputs[0]);
      if (after && after->op == "Transpose") {
        m.product = m.out.value;
        m.reshaped = t->outputs[0];
        m.nodes.push_back(t->id);
        m.out.value = t->outputs[0];
        t = after;
      } else {
        t = nullptr;
      }
    }
    if (t && t->op == "Transpose") {
      if (const auto perm = Perm(*t)) {
        // The Transpose's output dim j is the product's dim perm[j].
        for (int j = 0; j < 4; ++j) m.out.dims[static_cast<size_t>((*perm)[static_cast<size_t>(j)])] = j;
        m.out.value = t->outputs[0];
        m.nodes.push_back(t->id);
      }
    }
    const DType dtype = g_.value(m.q.value).dtype;
    for (ir::ValueId v4 : {m.k.value, m.v.value, m.out.value})
      if (g_.value(v4).dtype != dtype) return std::nullopt;
    if (g_.value(x).dtype != dtype) return std::nullopt;
    m.scale = static_cast<float>(scale);
    return m;
  }

 private:
  int Rank(ir::ValueId v) const {
    const ir::SymShape& s = g_.value(v).shape;
    return s.rank_known ? s.rank() : -1;
  }
  std::vector<const ir::Node*> Readers(ir::ValueId v) const {
    std::vector<const ir::Node*> r;
    if (ir::IsGraphOutput(g_, v)) return {nullptr, nullptr, nullptr};  // read outside: no match
    // Shape, Size and Rank read only the shape, which the engine knows without the value.
    for (ir::NodeId id : consumers_[static_cast<size_t>(v)])
      if (!IsShapeOp(g_.node(id).op)) r.push_back(&g_.node(id));
    return r;
  }
  const ir::Node* SoleReader(ir::ValueId v) const {
    const auto r = Readers(v);
    return r.size() == 1 ? r[0] : nullptr;
  }
  // The producer of `v` when `v` has exactly one reader (the node being matched).
  const ir::Node* SoleProducer(ir::ValueId v) const { return SoleReader(v) ? g_.Producer(v) : nullptr; }
  std::optional<std::vector<int64_t>> Perm(const ir::Node& t) const {
    const Tensor* perm = g_.ConstantOf(t.inputs[1]);
    if (!perm || perm->num_elements() != 4) return std::nullopt;
    std::vector<int64_t> p = perm->ToInt64Vector();
    for (int64_t& d : p) d = d < 0 ? d + 4 : d;
    return p;
  }
  // A one-element float constant of rank <= 4 (multiplying a 4-D tensor keeps its shape).
  bool IsScalarConstant(ir::ValueId v) const {
    const Tensor* c = g_.ConstantOf(v);
    return c && c->num_elements() == 1 && c->rank() <= 4 && IsFloating(c->dtype());
  }
  bool IsZero(ir::ValueId v) const { return IsScalarConstant(v) && g_.ConstantOf(v)->DoubleAt(0) == 0.0; }
  // Mul by, or Div by, a scalar constant: multiplies *scale.
  bool ScalarFactor(const ir::Node& n, double* scale) const {
    if (n.inputs.size() != 2) return false;
    if (n.op == "Mul" && (IsScalarConstant(n.inputs[0]) != IsScalarConstant(n.inputs[1]))) {
      *scale *= g_.ConstantOf(IsScalarConstant(n.inputs[0]) ? n.inputs[0] : n.inputs[1])->DoubleAt(0);
      return true;
    }
    if (n.op == "Div" && IsScalarConstant(n.inputs[1]) && !IsScalarConstant(n.inputs[0])) {
      const double d = g_.ConstantOf(n.inputs[1])->DoubleAt(0);
      if (d == 0.0) return false;
      *scale /= d;
      return true;
    }
    return false;
  }
  ir::ValueId Other(const ir::Node& scalar_op) const {
    return IsScalarConstant(scalar_op.inputs[0]) && scalar_op.op == "Mul" ? scalar_op.inputs[1] : scalar_op.inputs[0];
  }
  // Which input of the Add is the (scaled) product: 0, 1, or -1.
  int ProductSide(const ir::Node& add) const {
    for (int i = 0; i < 2; ++i) {
      const ir::Node* p = SoleProducer(add.inputs[static_cast<size_t>(i)]);
      double unused = 1.0;
      if (p && ScalarFactor(*p, &unused)) p = SoleProducer(Other(*p));
      if (p && p->op == "BatchMatMul") return i;
    }
    return -1;
  }
  // Back from a product's operand through Transposes (and scalar factors when `scales`), each
  // read only by the next: the stored tensor and how its dims map to the operand's.
  std::optional<AttentionOperand> Trace(ir::ValueId v, bool scales, double* scale,
                                        std::vector<ir::NodeId>* nodes) const {
    if (Rank(v) != 4) return std::nullopt;
    AttentionOperand op;
    op.value = v;
    for (const ir::Node* p = SoleProducer(v); p; p = SoleProducer(op.value)) {
      if (p->op == "Transpose") {
        const auto perm = Perm(*p);
        if (!perm) break;
        for (int& d : op.dims) d = static_cast<int>((*perm)[static_cast<size_t>(d)]);
        op.value = p->inputs[0];
      } else if (double factor = 1.0; scales && ScalarFactor(*p, &factor) && Rank(Other(*p)) == 4) {
        *scale *= factor;
        op.value = Other(*p);
      } else {
        break;
      }
      nodes->push_back(p->id);
    }
    return op;
  }

  const ir::Graph& g_;
  const std::vector<std::vector<ir::NodeId>>& consumers_;
};

}  // namespace

std::vector<AttentionMatch> FindAttention(const ir::Graph& graph,
                                          const std::vector<std::vector<ir::NodeId>>& consumers) {
  std::vector<AttentionMatch> found;
  const Matcher matcher(graph, consumers);
  for (ir::NodeId id : graph.TopologicalOrder()) {
    const ir::Node& n = graph.node(id);
    if (n.op != "Softmax") continue;
    if (auto m = matcher.Match(n)) found.push_back(std::move(*m));
  }
  return found;
}

}  // namespace kiln::backend::cuda
