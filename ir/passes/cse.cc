// Common subexpression elimination: small constants with the same dtype, shape and bytes become
// one, then nodes of the same op on the same inputs with equal attributes become one (in
// topological order, so whole repeated chains fold). Exporters repeat work per layer: PyTorch's
// BERT export builds its attention mask's Where once per layer from per-layer copies of the same
// two constants. Nodes of ops that are not foldable (random ones such as Dropout, plugins' ops)
// and nodes carrying subgraphs (If, While) are left alone.
#include <cstring>
#include <map>
#include <string>
#include <variant>

#include "ir/op_schema.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

// Constants up to this size are compared by content (weights are larger and not repeated).
constexpr size_t kMaxFoldedConstantBytes = 4096;

bool SameTensor(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.dtype() == DType::kString) return a.strings() == b.strings();
  return a.byte_size() == b.byte_size() && std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()) == 0;
}

bool SameAttr(const AttrValue& a, const AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (const auto* t = std::get_if<Tensor>(&a)) return SameTensor(*t, std::get<Tensor>(b));
  if (std::holds_alternative<std::shared_ptr<Graph>>(a)) return false;  // never merged
  return std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, Tensor> || std::is_same_v<X, std::shared_ptr<Graph>>) {
          return false;
        } else {
          return x == std::get<X>(b);
        }
      },
      a);
}

bool SameAttrs(const AttrMap& a, const AttrMap& b) {
  if (a.all().size() != b.all().size()) return false;
  for (auto ia = a.all().begin(), ib = b.all().begin(); ia != a.all().end(); ++ia, ++ib)
    if (ia->first != ib->first || !SameAttr(ia->second, ib->second)) return false;
  return true;
}

bool HasSubgraph(const Node& n) {
  for (const auto& [name, value] : n.attrs.all())
    if (std::holds_alternative<std::shared_ptr<Graph>>(value)) return true;
  return false;
}

// The content key of a small constant, or "" for one too large (or a string tensor) to compare.
std::string ConstantKey(const Graph& g, const Node& n) {
  const Tensor* t = g.ConstantOf(n.outputs[0]);
  if (!t || t->dtype() == DType::kString || t->byte_size() > kMaxFoldedConstantBytes) return "";
  std::string key(DTypeName(t->dtype()));
  for (int64_t d : t->shape()) key += "," + std::to_string(d);
  key += ";";
  key.append(static_cast<const char*>(t->raw_data()), t->byte_size());
  return key;
}

class CommonSubexpressionElimination final : public Pass {
 public:
  std::string name() const override { return "common-subexpression-elimination"; }
  // Linear in the graph's size: each node's inputs are redirected once, in topological order,
  // before it is compared (a merged value's readers all come later).
  bool Run(Graph& graph) override {
    bool changed = false;
    std::vector<ValueId> forward(graph.num_values());
    for (size_t v = 0; v < forward.size(); ++v) forward[v] = static_cast<ValueId>(v);
    std::map<std::string, ValueId> constants;
    std::map<std::pair<std::string, std::vector<ValueId>>, std::vector<NodeId>> seen;
    auto merge = [&](NodeId id, const std::vector<ValueId>& keep) {
      const Node& n = graph.node(id);
      for (size_t i = 0; i < n.outputs.size(); ++i) forward[static_cast<size_t>(n.outputs[i])] = keep[i];
      graph.node(id).removed = true;
      changed = true;
    };
    for (NodeId id : graph.TopologicalOrder()) {
      Node& n = graph.node(id);
      for (ValueId& in : n.inputs) in = forward[static_cast<size_t>(in)];
      if (n.op == "Constant") {
        const std::string key = ConstantKey(graph, n);
        if (key.empty()) continue;
        auto [it, fresh] = constants.emplace(key, n.outputs[0]);
        if (!fresh) merge(id, {it->second});
        continue;
      }
      if (HasSubgraph(n) || n.outputs.empty()) continue;
      if (const OpSchema* schema = FindOp(n.op); !schema || !schema->foldable) continue;  // random, plugins
      auto& candidates = seen[{n.op, n.inputs}];
      const Node* same = nullptr;
      for (NodeId c : candidates) {
        const Node& other = graph.node(c);
        if (other.outputs.size() == n.outputs.size() && SameAttrs(other.attrs, n.attrs)) {
          same = &other;
          break;
        }
      }
      if (same)
        merge(id, same->outputs);
      else
        candidates.push_back(id);
    }
    for (ValueId& out : graph.mutable_outputs()) out = forward[static_cast<size_t>(out)];
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> MakeCommonSubexpressionElimination() {
  return std::make_unique<CommonSubexpressionElimination>();
}

}  // namespace kiln::ir
