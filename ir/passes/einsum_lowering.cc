// Einsum lowering: a two-operand Einsum becomes Transposes, Reshapes and one MatMul or
// BatchMatMul, so every backend runs it on its matrix-product kernels (and INT8 quantizes it):
//
//   labels: batch (both operands and the output), m (first operand and output), n (second operand
//   and output), k (both operands, summed), and labels of one operand only that the output drops
//   (summed first with ReduceSum).
//   A' = Transpose(A) to [batch, m, k], B' = Transpose(B) to [batch, k, n]
//   C  = MatMul / BatchMatMul(Reshape(A', [batch, M, K]), Reshape(B', [batch, K, N]))
//   out = Transpose(Reshape(C, [batch, m, n])) to the output's label order
//
// Reshape targets come from the operands' shapes: constants where the dims are static, Shape /
// Gather / ReduceProd / Concat otherwise (shape inference keeps symbolic dims through them).
// Steps that would do nothing (identity transposes, reshapes to the same dims) are left out.
// Not lowered: one-operand equations, ellipses, a label repeated within one term (diagonals),
// operands of unknown rank.
#include <fmt/format.h>

#include <numeric>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/ops/nn_util.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

class Lowering {
 public:
  Lowering(Graph& g, NameGen& names, const std::string& base) : g_(g), names_(names), base_(base) {}

  ValueId Op(const std::string& op, std::vector<ValueId> inputs, AttrMap attrs = {}) {
    Node& n = g_.AddNode(op, names_.Make(base_ + "/" + op), std::move(inputs), 1);
    n.attrs = std::move(attrs);
    const NodeId id = n.id;
    InferNode(g_, id);
    return g_.node(id).outputs[0];
  }

  ValueId Int64s(const std::vector<int64_t>& v) {
    return g_.AddConstant(names_.Make(base_ + "/const"),
                          Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(v.size())}, v));
  }

  ValueId Transpose(ValueId x, const std::vector<int64_t>& perm) {
    std::vector<int64_t> identity(perm.size());
    std::iota(identity.begin(), identity.end(), 0);
    return perm == identity ? x : Op("Transpose", {x, Int64s(perm)});
  }

  // A 1-D int64 value: for each group of x's axes, one element, the product of their sizes (1
  // for an empty group).
  ValueId GroupSizes(ValueId x, const std::vector<std::vector<int64_t>>& groups) {
    const SymShape& s = g_.value(x).shape;
    bool all_static = true;
    std::vector<int64_t> sizes;
    for (const auto& group : groups) {
      int64_t p = 1;
      for (int64_t a : group) {
        const Dim d = s.dims[static_cast<size_t>(a)];
        if (!IsStatic(d))
          all_static = false;
        else
          p *= d;
      }
      sizes.push_back(p);
    }
    if (all_static) return Int64s(sizes);
    AttrMap shape_attrs;
    shape_attrs.Set("out_type", DType::kInt64);
    const ValueId shape = Op("Shape", {x}, shape_attrs);
    std::vector<ValueId> parts;
    for (const auto& group : groups) {
      if (group.empty()) {
        parts.push_back(Int64s({1}));
        continue;
      }
      const ValueId dims =
          Op("Gather", {shape, Int64s(group),
                        g_.AddConstant(names_.Make(base_ + "/axis"), Tensor::Scalar(DType::kInt64, int64_t{0}))});
      if (group.size() == 1) {
        parts.push_back(dims);
        continue;
      }
      AttrMap keep;
      keep.Set("keep_dims", true);
      parts.push_back(Op("ReduceProd", {dims, Int64s({0})}, keep));
    }
    if (parts.size() == 1) return parts[0];
    parts.push_back(g_.AddConstant(names_.Make(base_ + "/axis"), Tensor::Scalar(DType::kInt64, int64_t{0})));
    return Op("Concat", parts);
  }

  // x reshaped so that each group of its axes becomes one dim (no-op when every group is one axis).
  ValueId Merge(ValueId x, const std::vector<std::vector<int64_t>>& groups) {
    bool trivial = true;
    for (const auto& group : groups) trivial = trivial && group.size() == 1;
    return trivial ? x : Op("Reshape", {x, GroupSizes(x, groups)});
  }

 private:
  Graph& g_;
  NameGen& names_;
  std::string base_;
};

class EinsumLowering final : public Pass {
 public:
  std::string name() const override { return "einsum-lowering"; }

  bool Run(Graph& g) override {
    bool changed = false;
    NameGen names(g);
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const NodeId id = static_cast<NodeId>(i);
      if (g.node(id).removed || g.node(id).op != "Einsum" || g.node(id).inputs.size() != 2) continue;
      changed |= Lower(g, names, id);
    }
    return changed;
  }

 private:
  static bool Lower(Graph& g, NameGen& names, NodeId id) {
    const Node& n = g.node(id);
    const ValueId a = n.inputs[0], b = n.inputs[1], out = n.outputs[0];
    const SymShape sa = g.value(a).shape, sb = g.value(b).shape;  // copies: adding nodes moves values
    const std::string node_name = n.name;  // `n` dangles once nodes are added
    if (!sa.rank_known || !sb.rank_known || g.value(a).dtype != g.value(b).dtype) return false;
    nn::EinsumSpec spec;
    if (!nn::ParseEinsum(n.attrs.Str("equation"), {sa.rank(), sb.rank()}, &spec).empty() || spec.num_bcast > 0)
      return false;
    auto repeats = [](const std::vector<int>& labels) {
      std::vector<int> sorted = labels;
      std::sort(sorted.begin(), sorted.end());
      return std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end();
    };
    if (repeats(spec.inputs[0]) || repeats(spec.inputs[1]) || repeats(spec.output)) return false;
    auto has = [](const std::vector<int>& labels, int l) {
      return std::find(labels.begin(), labels.end(), l) != labels.end();
    };
    auto axis = [](const std::vector<int>& labels, int l) {
      return static_cast<int64_t>(std::find(labels.begin(), labels.end(), l) - labels.begin());
    };
    Lowering low(g, names, node_name);
    // Labels of one operand that the output drops: summed away first.
    std::vector<int> la = spec.inputs[0], lb = spec.inputs[1];
    ValueId x = a, y = b;
    auto sum_alone = [&](ValueId v, std::vector<int>& labels, const std::vector<int>& other) {
      std::vector<int64_t> axes;
      std::vector<int> kept;
      for (size_t d = 0; d < labels.size(); ++d) {
        if (!has(other, labels[d]) && !has(spec.output, labels[d]))
          axes.push_back(static_cast<int64_t>(d));
        else
          kept.push_back(labels[d]);
      }
      if (axes.empty()) return v;
      labels = kept;
      AttrMap keep;
      keep.Set("keep_dims", false);
      return low.Op("ReduceSum", {v, low.Int64s(axes)}, keep);
    };
    x = sum_alone(x, la, lb);
    y = sum_alone(y, lb, la);
    std::vector<int> batch, m, nn, k;
    for (int l : spec.output) {
      if (has(la, l) && has(lb, l))
        batch.push_back(l);
      else if (has(la, l))
        m.push_back(l);
      else
        nn.push_back(l);
    }
    for (int l : la)
      if (has(lb, l) && !has(spec.output, l)) k.push_back(l);
    // Transposes to [batch, m, k] and [batch, k, n].
    auto order = [&](const std::vector<int>& labels, std::initializer_list<const std::vector<int>*> groups,
                     std::vector<std::vector<int64_t>>* merged) {
      std::vector<int64_t> perm;
      for (const auto* group : groups) {
        std::vector<int64_t> axes;
        for (int l : *group) {
          axes.push_back(static_cast<int64_t>(perm.size()));
          perm.push_back(axis(labels, l));
        }
        merged->push_back(axes);
      }
      return perm;
    };
    std::vector<std::vector<int64_t>> ga, gb;
    x = low.Transpose(x, order(la, {&batch, &m, &k}, &ga));
    y = low.Transpose(y, order(lb, {&batch, &k, &nn}, &gb));
    // [batch..., M, K] and [batch..., K, N]: batch axes stay, m / k / n merge into one axis each.
    std::vector<std::vector<int64_t>> a_groups, b_groups;
    for (int64_t d : ga[0]) a_groups.push_back({d});
    a_groups.push_back(ga[1]);
    a_groups.push_back(ga[2]);
    for (int64_t d : gb[0]) b_groups.push_back({d});
    b_groups.push_back(gb[1]);
    b_groups.push_back(gb[2]);
    // The output dims before its transpose: [batch..., m..., n...], read from A' and B'.
    const ValueId a_t = x, b_t = y;
    x = low.Merge(x, a_groups);
    y = low.Merge(y, b_groups);
    const ValueId c = batch.empty() ? low.Op("MatMul", {x, y}) : low.Op("BatchMatMul", {x, y});
    std::vector<int> c_labels = batch;
    c_labels.insert(c_labels.end(), m.begin(), m.end());
    c_labels.insert(c_labels.end(), nn.begin(), nn.end());
    ValueId r = c;
    if (m.size() != 1 || nn.size() != 1) {
      // Split M and N back into the m and n dims.
      const ValueId a_dims = low.GroupSizes(a_t, [&] {
        std::vector<std::vector<int64_t>> g1;
        for (int64_t d : ga[0]) g1.push_back({d});
        for (int64_t d : ga[1]) g1.push_back({d});
        return g1;
      }());
      std::vector<std::vector<int64_t>> n_axes;
      for (int64_t d : gb[2]) n_axes.push_back({d});
      ValueId target = a_dims;
      if (!n_axes.empty()) {
        const ValueId n_dims = low.GroupSizes(b_t, n_axes);
        target = low.Op(
            "Concat",
            {a_dims, n_dims, g.AddConstant(names.Make(node_name + "/axis"), Tensor::Scalar(DType::kInt64, int64_t{0}))});
      }
      r = low.Op("Reshape", {c, target});
    }
    std::vector<int64_t> perm;
    for (int l : spec.output) perm.push_back(axis(c_labels, l));
    r = low.Transpose(r, perm);
    const DType want = g.value(out).dtype;
    if (g.value(r).dtype != want) return false;  // cannot happen for well-typed Einsums; leave it
    g.ReplaceAllUses(out, r);
    g.value(r).name = g.value(out).name;
    g.node(id).removed = true;
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> MakeEinsumLowering() { return std::make_unique<EinsumLowering>(); }

}  // namespace kiln::ir
