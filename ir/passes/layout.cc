// Layout passes for backends whose convolutions and pooling are fastest channels-last (NHWC),
// as the GPU's tensor-core convolutions and oneDNN's CPU convolutions are:
// - channels-last puts each NCHW Conv2D / DepthwiseConv2D / MaxPool / AvgPool between a Transpose
//   to NHWC and one back, and runs it NHWC;
// - transpose-sinking then moves Transposes down through elementwise ops (Clip, Cast and Select
//   too), reductions, Pad, Concat and ops along one axis (BatchNorm, Softmax), merges adjacent ones and drops those that cancel, and turns a
//   Transpose that only moves size-1 dims into a Reshape. A chain of channels-first layers then changes layout only at its edges.
// Both are exact (they only move data), so outputs are bit-identical.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/ops/elementwise_ops.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

const std::vector<int64_t> kToChannelsLast{0, 2, 3, 1};
const std::vector<int64_t> kToChannelsFirst{0, 3, 1, 2};

bool IsIdentity(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

// The constant permutation of a Transpose node (normalized), or nullopt.
std::optional<std::vector<int64_t>> PermOf(const Graph& g, const Node& n) {
  if (n.removed || n.op != "Transpose" || n.inputs.size() != 2) return std::nullopt;
  const Tensor* p = g.ConstantOf(n.inputs[1]);
  if (!p) return std::nullopt;
  std::vector<int64_t> perm = p->ToInt64Vector();
  const int64_t rank = static_cast<int64_t>(perm.size());
  std::vector<bool> seen(perm.size(), false);
  for (int64_t& a : perm) {
    if (a < 0) a += rank;
    if (a < 0 || a >= rank || seen[static_cast<size_t>(a)]) return std::nullopt;
    seen[static_cast<size_t>(a)] = true;
  }
  return perm;
}

std::vector<int64_t> Inverse(const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  return inv;
}

ValueId AddTranspose(Graph& g, NameGen& names, ValueId x, const std::vector<int64_t>& perm, const std::string& base) {
  const ValueId p = g.AddConstant(names.Make(base + "/perm"),
                                  Tensor::FromVector(DType::kInt64, {static_cast<int64_t>(perm.size())}, perm));
  const NodeId id = g.AddNode("Transpose", names.Make(base), {x, p}).id;
  InferNode(g, id);
  return g.node(id).outputs[0];
}

// Every reader of `from` except node `except` (and the graph outputs) reads `to` instead.
void RedirectUses(Graph& g, ValueId from, ValueId to, NodeId except) {
  for (Node& n : g.nodes())
    if (!n.removed && n.id != except)
      for (ValueId& in : n.inputs)
        if (in == from) in = to;
  for (ValueId& out : g.mutable_outputs())
    if (out == from) out = to;
}

// The node now computes in the layout of its untransposed inputs: re-infer it and give its old
// readers the output transposed by `perm`.
void TransposeOutputAfter(Graph& g, NameGen& names, NodeId id, const std::vector<int64_t>& perm) {
  InferNode(g, id);
  const ValueId y = g.node(id).outputs[0];
  const ValueId back = AddTranspose(g, names, y, perm, g.node(id).name + "/transpose");
  RedirectUses(g, y, back, g.Producer(back)->id);
}

bool IsChannelsFirst2D(const Graph& g, const Node& n) {
  static const std::vector<std::string> kOps = {"Conv2D", "DepthwiseConv2D", "MaxPool", "AvgPool"};
  if (std::find(kOps.begin(), kOps.end(), n.op) == kOps.end()) return false;
  if (n.attrs.GetOr<std::string>("data_format", "NHWC") != "NCHW") return false;
  const SymShape& s = g.value(n.inputs[0]).shape;
  if (!s.rank_known || s.rank() != 4) return false;
  // Window attributes must be spatial only (the layout-free form the importers write).
  for (const char* attr : {"strides", "dilations", "ksize"})
    if (n.attrs.Has(attr) && n.attrs.Ints(attr).size() != 2) return false;
  if (n.attrs.Has("pads") && n.attrs.Ints("pads").size() != 4) return false;
  if ((n.op == "MaxPool" || n.op == "AvgPool") && n.inputs.size() != 1) return false;
  return true;
}

class ChannelsLast final : public Pass {
 public:
  std::string name() const override { return "channels-last"; }
  bool Run(Graph& g) override {
    std::optional<NameGen> names;
    bool changed = false;
    std::map<ValueId, ValueId> channels_last;  // one Transpose per input read by several layers
    for (NodeId id : g.TopologicalOrder()) {
      if (g.node(id).removed || !IsChannelsFirst2D(g, g.node(id))) continue;
      if (!names) names.emplace(g);
      const std::string base = g.node(id).name;
      const ValueId input = g.node(id).inputs[0];
      auto it = channels_last.find(input);
      if (it == channels_last.end())
        it = channels_last.emplace(input, AddTranspose(g, *names, input, kToChannelsLast, base + "/to_nhwc")).first;
      const ValueId x = it->second;
      Node& n = g.node(id);
      n.inputs[0] = x;
      n.attrs.Set("data_format", std::string("NHWC"));
      TransposeOutputAfter(g, *names, id, kToChannelsFirst);
      changed = true;
    }
    return changed;
  }
};

bool SinksThrough(const Node& n) {
  if (n.outputs.size() != 1) return false;
  return n.op == "Cast" || n.op == "Select" || n.op == "Clip" || elementwise::FindOp(n.op) != nullptr;
}

class TransposeSinking final : public Pass {
 public:
  std::string name() const override { return "transpose-sinking"; }
  bool Run(Graph& g) override {
    bool changed_any = false;
    // Each rewrite moves a Transpose strictly later or removes one, so this ends; the bound only
    // guards against a bug turning into a hang.
    for (size_t round = 0; round < 4 * g.nodes().size() + 4; ++round) {
      bool changed = false;
      const auto consumers = g.Consumers();
      for (NodeId id : g.TopologicalOrder()) {
        if (g.node(id).removed) continue;
        if (Merge(g, id) || Sink(g, id, consumers) || SinkReduction(g, id, consumers) || SinkPad(g, id, consumers) ||
            SinkAxisOp(g, id, consumers) || SinkConcat(g, id, consumers) || ToReshape(g, id)) {
          changed = true;
          break;  // the consumer lists are stale: start a new round
        }
      }
      if (!changed) break;
      changed_any = true;
    }
    return changed_any;
  }

 private:
  NameGen& Names(const Graph& g) {
    if (!names_) names_.emplace(g);
    return *names_;
  }

  // Transpose(Transpose(x, p1), p2) = Transpose(x, p1 o p2), or x when that is the identity.
  bool Merge(Graph& g, NodeId id) {
    const auto p2 = PermOf(g, g.node(id));
    if (!p2) return false;
    const Node* inner = g.Producer(g.node(id).inputs[0]);
    if (!inner) return false;
    const auto p1 = PermOf(g, *inner);
    if (!p1 || p1->size() != p2->size()) return false;
    std::vector<int64_t> q(p2->size());
    for (size_t k = 0; k < q.size(); ++k) q[k] = (*p1)[static_cast<size_t>((*p2)[k])];
    const ValueId x = inner->inputs[0];
    if (IsIdentity(q)) {
      RedirectUses(g, g.node(id).outputs[0], x, id);
      g.node(id).removed = true;
      return true;
    }
    const ValueId perm = g.AddConstant(Names(g).Make(g.node(id).name + "/perm"),
                                       Tensor::FromVector(DType::kInt64, {static_cast<int64_t>(q.size())}, q));
    Node& n = g.node(id);
    n.inputs = {x, perm};
    InferNode(g, id);
    return true;
  }

  // `s` (of the perm's rank) keeps the order of its dims not of size 1 under `perm` (a dim not
  // known statically counts as not 1).
  static bool OnlyMovesUnitDims(const SymShape& s, const std::vector<int64_t>& perm) {
    if (!s.rank_known || s.rank() != static_cast<int>(perm.size()) || s.rank() == 0) return false;
    int64_t last = -1;
    for (int64_t a : perm) {
      const Dim d = s.dims[static_cast<size_t>(a)];
      if (IsStatic(d) && d == 1) continue;
      if (a < last) return false;
      last = a;
    }
    return true;
  }

  // Every reader of `v` is an elementwise op or a reduction (and v is no graph output): sinking
  // the Transpose into one reader leaves it to the others, which sink it too (x * sigmoid(x)
  // reads it twice; a squeeze-excite block reads it in a mean and in the excite product).
  static bool OnlySinkableReaders(const Graph& g, ValueId v, const std::vector<std::vector<NodeId>>& consumers) {
    if (IsGraphOutput(g, v)) return false;
    for (NodeId c : consumers[static_cast<size_t>(v)]) {
      const Node& r = g.node(c);
      if (!SinksThrough(r) && r.op.rfind("Reduce", 0) != 0) return false;
    }
    return true;
  }

  // An elementwise op whose inputs are Transposes by one perm (and constants or scalars) runs
  // before the Transpose instead.
  bool Sink(Graph& g, NodeId id, const std::vector<std::vector<NodeId>>& consumers) {
    if (!SinksThrough(g.node(id))) return false;
    const std::vector<ValueId> inputs = g.node(id).inputs;  // node references die with AddConstant
    const SymShape& out_shape = g.value(g.node(id).outputs[0]).shape;
    if (!out_shape.rank_known || out_shape.rank() == 0) return false;
    const int rank = out_shape.rank();
    std::optional<std::vector<int64_t>> perm;
    bool frees_one = false;
    for (ValueId v : inputs) {
      const Node* p = g.Producer(v);
      const auto pp = p ? PermOf(g, *p) : std::nullopt;
      if (!pp) continue;
      if (perm && *perm != *pp) return false;
      perm = pp;
      frees_one = frees_one || (consumers[static_cast<size_t>(v)].size() == 1 && !IsGraphOutput(g, v)) ||
                  OnlySinkableReaders(g, v, consumers);
    }
    if (!perm || !frees_one || static_cast<int>(perm->size()) != rank) return false;
    // Every other input must be a constant, a scalar, or a value that is also transposed by the
    // inverse perm elsewhere (that Transpose's output is the input in the untransposed layout).
    const std::vector<int64_t> inverse = Inverse(*perm);
    auto already_untransposed = [&](ValueId v) -> std::optional<ValueId> {
      for (NodeId c : consumers[static_cast<size_t>(v)])
        if (g.node(c).inputs[0] == v && PermOf(g, g.node(c)) == inverse) return g.node(c).outputs[0];
      return std::nullopt;
    };
    for (ValueId v : inputs) {
      const Node* p = g.Producer(v);
      if (p && PermOf(g, *p)) continue;
      const Tensor* c = g.ConstantOf(v);
      const SymShape& s = g.value(v).shape;
      if (c ? (c->rank() > rank || c->dtype() == DType::kString)
            : !(s.rank_known && s.rank() == 0) && !already_untransposed(v) && !OnlyMovesUnitDims(s, inverse))
        return false;
    }
    std::vector<ValueId> new_inputs;
    for (ValueId v : inputs) {
      const Node* p = g.Producer(v);
      if (p && PermOf(g, *p)) {
        new_inputs.push_back(p->inputs[0]);
      } else if (auto moved = g.ConstantOf(v) ? std::nullopt : already_untransposed(v)) {
        new_inputs.push_back(*moved);
      } else if (const Tensor* c = g.ConstantOf(v); !c && OnlyMovesUnitDims(g.value(v).shape, inverse)) {
        // A per-channel gate [N,C,1,1] and the like: its Transpose moves no data (a Reshape).
        new_inputs.push_back(AddTranspose(g, Names(g), v, inverse, g.value(v).name + "/untransposed"));
      } else if (c) {
        if (c->rank() == 0) {
          new_inputs.push_back(v);
          continue;
        }
        // Broadcast to the full rank (leading 1s), then into the untransposed layout.
        Shape full(static_cast<size_t>(rank - c->rank()), 1);
        full.insert(full.end(), c->shape().begin(), c->shape().end());
        const Tensor moved = HostTranspose(c->Reshaped(full), Inverse(*perm));
        const std::string name = Names(g).Make(g.value(v).name + "/untransposed");
        new_inputs.push_back(g.AddConstant(name, moved));
      } else {
        new_inputs.push_back(v);  // a scalar
      }
    }
    g.node(id).inputs = std::move(new_inputs);
    TransposeOutputAfter(g, Names(g), id, *perm);
    return true;
  }

  // Reduce<Kind>(Transpose(x, p), axes, keep_dims) = Transpose(Reduce(x, p[axes]), p); without
  // keep_dims the Transpose after it permutes the kept dims only (their order in p, renumbered).
  bool SinkReduction(Graph& g, NodeId id, const std::vector<std::vector<NodeId>>& consumers) {
    const Node& n = g.node(id);
    if (n.op.rfind("Reduce", 0) != 0 || n.inputs.size() != 2) return false;
    const bool keep_dims = n.attrs.GetOr<bool>("keep_dims", false);
    const Node* p = g.Producer(n.inputs[0]);
    const auto perm = p ? PermOf(g, *p) : std::nullopt;
    const Tensor* axes = g.ConstantOf(n.inputs[1]);
    if (!perm || !axes || IsGraphOutput(g, n.inputs[0]) ||
        (consumers[static_cast<size_t>(n.inputs[0])].size() != 1 && !OnlySinkableReaders(g, n.inputs[0], consumers)))
      return false;
    const int64_t rank = static_cast<int64_t>(perm->size());
    std::vector<int64_t> moved;
    for (int64_t a : axes->ToInt64Vector()) {
      if (a < -rank || a >= rank) return false;
      moved.push_back((*perm)[static_cast<size_t>(a < 0 ? a + rank : a)]);
    }
    std::sort(moved.begin(), moved.end());
    moved.erase(std::unique(moved.begin(), moved.end()), moved.end());
    std::vector<int64_t> after = *perm;
    if (!keep_dims) {
      // The kept dims of x in ascending order are the reduction's output dims; output dim j of
      // the original is x's dim perm[i_j] for the kept positions i_j.
      std::vector<bool> reduced(static_cast<size_t>(rank), false);
      for (int64_t a : moved) reduced[static_cast<size_t>(a)] = true;
      std::vector<int64_t> rank_of(static_cast<size_t>(rank), -1);
      int64_t next = 0;
      for (int64_t d = 0; d < rank; ++d)
        if (!reduced[static_cast<size_t>(d)]) rank_of[static_cast<size_t>(d)] = next++;
      after.clear();
      for (int64_t d : *perm)
        if (!reduced[static_cast<size_t>(d)]) after.push_back(rank_of[static_cast<size_t>(d)]);
      if (after.empty()) after.push_back(0);  // a scalar result: nothing to permute
    }
    const ValueId x = p->inputs[0];
    const ValueId new_axes =
        g.AddConstant(Names(g).Make(n.name + "/axes"),
                      Tensor::FromVector(DType::kInt64, {static_cast<int64_t>(moved.size())}, moved));
    g.node(id).inputs = {x, new_axes};
    if (!keep_dims && (after.size() <= 1 || IsIdentity(after))) {
      InferNode(g, id);  // the kept dims are already in order: no Transpose after it
      return true;
    }
    TransposeOutputAfter(g, Names(g), id, after);
    return true;
  }

  // Pad(Transpose(x, p), paddings) = Transpose(Pad(x, paddings'), p), where dim p[i] of x gets
  // the paddings of dim i (constant paddings; every mode pads each dim on its own).
  bool SinkPad(Graph& g, NodeId id, const std::vector<std::vector<NodeId>>& consumers) {
    const Node& n = g.node(id);
    if (n.op != "Pad" || n.inputs.size() < 2) return false;
    const Node* p = g.Producer(n.inputs[0]);
    const auto perm = p ? PermOf(g, *p) : std::nullopt;
    const Tensor* paddings = g.ConstantOf(n.inputs[1]);
    if (!perm || !paddings || consumers[static_cast<size_t>(n.inputs[0])].size() != 1 || IsGraphOutput(g, n.inputs[0]))
      return false;
    const std::vector<int64_t> before = paddings->ToInt64Vector();
    if (before.size() != 2 * perm->size()) return false;
    std::vector<int64_t> moved(before.size());
    for (size_t i = 0; i < perm->size(); ++i) {
      const size_t d = static_cast<size_t>((*perm)[i]);
      moved[2 * d] = before[2 * i];
      moved[2 * d + 1] = before[2 * i + 1];
    }
    const ValueId x = p->inputs[0];
    const ValueId new_paddings = g.AddConstant(
        Names(g).Make(g.node(id).name + "/paddings"),
        Tensor::FromVector(DType::kInt64, {static_cast<int64_t>(perm->size()), 2}, moved));
    Node& pad = g.node(id);
    pad.inputs[0] = x;
    pad.inputs[1] = new_paddings;
    TransposeOutputAfter(g, Names(g), id, *perm);
    return true;
  }

  // Op(Transpose(x, p), axis = a) = Transpose(Op(x, axis = p[a]), p) for ops that act along one
  // axis given as an attribute: inference BatchNorm (its other inputs are per-channel vectors),
  // Softmax and LogSoftmax.
  bool SinkAxisOp(Graph& g, NodeId id, const std::vector<std::vector<NodeId>>& consumers) {
    const Node& n = g.node(id);
    const bool batch_norm = n.op == "BatchNorm" && !n.attrs.GetOr<bool>("training", false);
    if ((!batch_norm && n.op != "Softmax" && n.op != "LogSoftmax") || n.outputs.size() != 1) return false;
    const Node* p = g.Producer(n.inputs[0]);
    const auto perm = p ? PermOf(g, *p) : std::nullopt;
    if (!perm || consumers[static_cast<size_t>(n.inputs[0])].size() != 1 || IsGraphOutput(g, n.inputs[0])) return false;
    const int64_t rank = static_cast<int64_t>(perm->size());
    int64_t axis = n.attrs.GetOr<int64_t>("axis", -1);
    if (axis < -rank || axis >= rank) return false;
    if (axis < 0) axis += rank;
    const ValueId x = p->inputs[0];
    Node& op = g.node(id);
    op.inputs[0] = x;
    op.attrs.Set("axis", (*perm)[static_cast<size_t>(axis)]);
    TransposeOutputAfter(g, Names(g), id, *perm);
    return true;
  }

  // Concat(Transpose(a, p), Transpose(b, p), ..., axis) = Transpose(Concat(a, b, ..., p[axis]), p)
  // when every operand is transposed by p and at least one Transpose has no other reader.
  bool SinkConcat(Graph& g, NodeId id, const std::vector<std::vector<NodeId>>& consumers) {
    const Node& n = g.node(id);
    if (n.op != "Concat" || n.inputs.size() < 3) return false;
    const Tensor* axis_t = g.ConstantOf(n.inputs.back());
    if (!axis_t || axis_t->num_elements() != 1) return false;
    std::optional<std::vector<int64_t>> perm;
    std::vector<ValueId> sources;
    bool frees_one = false;
    for (size_t i = 0; i + 1 < n.inputs.size(); ++i) {
      const ValueId v = n.inputs[i];
      const Node* p = g.Producer(v);
      const auto pp = p ? PermOf(g, *p) : std::nullopt;
      if (!pp || (perm && *perm != *pp)) return false;
      perm = pp;
      sources.push_back(p->inputs[0]);
      frees_one = frees_one || (consumers[static_cast<size_t>(v)].size() == 1 && !IsGraphOutput(g, v));
    }
    if (!frees_one) return false;
    const int64_t rank = static_cast<int64_t>(perm->size());
    int64_t axis = axis_t->ToInt64Vector()[0];
    if (axis < -rank || axis >= rank) return false;
    if (axis < 0) axis += rank;
    const ValueId new_axis = g.AddConstant(Names(g).Make(n.name + "/axis"),
                                           Tensor::FromVector(DType::kInt64, {}, std::vector<int64_t>{(*perm)[static_cast<size_t>(axis)]}));
    sources.push_back(new_axis);
    g.node(id).inputs = std::move(sources);
    TransposeOutputAfter(g, Names(g), id, *perm);
    return true;
  }

  // A Transpose that keeps the order of every dim not of size 1 moves no data: a Reshape to a
  // constant target (-1 for the one dim not known statically, when there is one).
  bool ToReshape(Graph& g, NodeId id) {
    const auto perm = PermOf(g, g.node(id));
    if (!perm || IsIdentity(*perm)) return false;
    const SymShape& in = g.value(g.node(id).inputs[0]).shape;
    const SymShape& out = g.value(g.node(id).outputs[0]).shape;
    if (!in.rank_known || !out.rank_known) return false;
    int64_t last = -1, symbolic = 0;
    for (int64_t a : *perm) {
      const Dim d = in.dims[static_cast<size_t>(a)];
      if (IsStatic(d) && d == 1) continue;
      if (a < last) return false;
      last = a;
    }
    std::vector<int64_t> target;
    int64_t known = 1;
    for (Dim d : out.dims) {
      if (IsStatic(d)) {
        target.push_back(d);
        known *= d;
      } else {
        target.push_back(-1);
        ++symbolic;
      }
    }
    if (symbolic > 1 || (symbolic == 1 && known == 0)) return false;
    const ValueId shape =
        g.AddConstant(Names(g).Make(g.node(id).name + "/shape"),
                      Tensor::FromVector(DType::kInt64, {static_cast<int64_t>(target.size())}, target));
    Node& n = g.node(id);
    n.op = "Reshape";
    n.inputs = {n.inputs[0], shape};
    n.attrs = AttrMap();
    InferNode(g, id);
    return true;
  }

  std::optional<NameGen> names_;
};

}  // namespace

std::unique_ptr<Pass> MakeChannelsLast() { return std::make_unique<ChannelsLast>(); }
std::unique_ptr<Pass> MakeTransposeSinking() { return std::make_unique<TransposeSinking>(); }

}  // namespace kiln::ir
