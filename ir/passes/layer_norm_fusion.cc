// Layer normalization fusion: the decomposed forms importers emit become one LayerNorm node,
// so a backend with a layer-norm kernel reads the row once instead of running nine ops.
//
//   mean = ReduceMean(x, trailing axes, keep_dims)   d = Sub(x, mean)
//   var  = ReduceMean(Mul(d, d) | Pow(d, 2) | SquaredDifference(x, mean), same axes, keep_dims)
//   y    = Mul(d, Rsqrt(Add(var, eps)))  |  Div(d, Sqrt(Add(var, eps)))
//   then optionally Cast back to x's source dtype, Mul by a constant scale, Add a constant bias.
//
// or, as Keras and tf.nn.batch_normalization write it (the scale folded into the inverse):
//   s = Rsqrt(Add(var, eps)) [* scale];  y = x * s + (Neg(mean) * s + bias)  |  x * s + (bias - mean * s)
//
// x may be a Cast of a narrower float (the float32 stash of ONNX's LayerNormalization): the
// LayerNorm then reads the narrow tensor and accumulates in float32 itself. Every intermediate
// must have no reader outside the pattern.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "ir/graph_util.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

struct LayerNormMatch {
  ValueId x = kNoValue;  // what the LayerNorm reads
  int64_t axis = 0;      // first normalized dim
  double epsilon = 0;
  ValueId scale = kNoValue;  // constants, or kNoValue
  ValueId bias = kNoValue;
  ValueId result = kNoValue;  // the value the LayerNorm replaces
  std::vector<NodeId> nodes;  // pattern nodes that become dead
};

class Matcher {
 public:
  Matcher(const Graph& g, const std::vector<std::vector<NodeId>>& consumers) : g_(g), consumers_(consumers) {}

  std::optional<LayerNormMatch> Match(const Node& mean_node) const {
    if (auto m = MatchCentered(mean_node)) return m;
    return MatchFoldedScale(mean_node);
  }

 private:
  // y = (x - mean) * rsqrt(var + eps) [* scale] [+ bias] (ONNX, PyTorch).
  std::optional<LayerNormMatch> MatchCentered(const Node& mean_node) const {
    LayerNormMatch m;
    const ValueId xs = mean_node.inputs[0];
    const SymShape& shape = g_.value(xs).shape;
    const DType dtype = g_.value(xs).dtype;
    if (!Start(mean_node, &m)) return std::nullopt;
    const ValueId mean = mean_node.outputs[0];
    // The mean's readers: Sub(x, mean), and SquaredDifference(x, mean) in TensorFlow's form.
    const Node* sub = nullptr;
    const Node* squared_difference = nullptr;
    for (const Node* r : Readers(mean)) {
      if (r->op == "Sub" && r->inputs[0] == xs && r->inputs[1] == mean && !sub)
        sub = r;
      else if (r->op == "SquaredDifference" && !squared_difference && Operands(*r, xs, mean))
        squared_difference = r;
      else
        return std::nullopt;
    }
    if (!sub) return std::nullopt;
    const ValueId d = sub->outputs[0];
    const Node* square = squared_difference;
    const Node* normalize = nullptr;
    for (const Node* r : Readers(d)) {
      if (!square && ((r->op == "Mul" && r->inputs[0] == d && r->inputs[1] == d) ||
                      (r->op == "Pow" && r->inputs[0] == d && IsScalar(r->inputs[1], 2.0))))
        square = r;
      else if (!normalize && ((r->op == "Mul" && (r->inputs[0] == d) != (r->inputs[1] == d)) ||
                              (r->op == "Div" && r->inputs[0] == d && r->inputs[1] != d)))
        normalize = r;
      else
        return std::nullopt;
    }
    if (!square || !normalize) return std::nullopt;
    const Node* var_node = SoleReader(square->outputs[0]);
    if (!var_node || var_node->op != "ReduceMean" || var_node->inputs[0] != square->outputs[0] ||
        TrailingAxes(*var_node, shape.rank()) != m.axis)
      return std::nullopt;
    const Node* add_eps = SoleReader(var_node->outputs[0]);
    if (!Epsilon(add_eps, var_node->outputs[0], &m)) return std::nullopt;
    const Node* root = SoleReader(add_eps->outputs[0]);
    if (!root) return std::nullopt;
    const ValueId other = normalize->inputs[0] == d ? normalize->inputs[1] : normalize->inputs[0];
    const bool rsqrt_form = root->op == "Rsqrt" && normalize->op == "Mul";
    const bool sqrt_form = root->op == "Sqrt" && normalize->op == "Div";
    if ((!rsqrt_form && !sqrt_form) || other != root->outputs[0] || Readers(root->outputs[0]).size() != 1)
      return std::nullopt;
    for (const Node* n : {&mean_node, sub, square, var_node, add_eps, root, normalize}) m.nodes.push_back(n->id);

    // Optional: a Cast back to the source dtype, then scale and bias.
    ValueId y = normalize->outputs[0];
    m.x = xs;
    if (const Node* cast = g_.Producer(xs); cast && cast->op == "Cast" && IsFloating(g_.value(cast->inputs[0]).dtype)) {
      const DType source = g_.value(cast->inputs[0]).dtype;
      const Node* back = SoleReader(y);
      const bool widening = DTypeSize(source) <= DTypeSize(dtype);
      if (widening && source == dtype) {
        m.x = cast->inputs[0];
      } else if (widening && back && back->op == "Cast" && g_.value(back->outputs[0]).dtype == source) {
        m.x = cast->inputs[0];
        m.nodes.push_back(back->id);
        y = back->outputs[0];
      }
      if (m.x != xs && ReadersOutside(xs, m.nodes)) m.x = xs;  // the Cast has other readers: keep it
    }
    const DType out_dtype = g_.value(y).dtype;
    const int rank = shape.rank();
    std::vector<Dim> normalized(shape.dims.begin() + static_cast<std::ptrdiff_t>(m.axis), shape.dims.end());
    const bool static_rows = std::all_of(normalized.begin(), normalized.end(), [](Dim dim) { return IsStatic(dim); });
    if (const Node* mul = SoleReader(y); static_rows && mul && mul->op == "Mul") {
      const ValueId c = mul->inputs[0] == y ? mul->inputs[1] : mul->inputs[0];
      if (c != y && RowConstant(c, rank, m.axis, out_dtype)) {
        m.scale = c;
        m.nodes.push_back(mul->id);
        y = mul->outputs[0];
      }
    }
    // A bias is taken only after a scale (LayerNorm's inputs are positional).
    if (const Node* add = SoleReader(y); m.scale != kNoValue && add && add->op == "Add") {
      const ValueId c = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
      if (c != y && RowConstant(c, rank, m.axis, out_dtype)) {
        m.bias = c;
        m.nodes.push_back(add->id);
        y = add->outputs[0];
      }
    }
    m.result = y;
    return m;
  }

  // Keras and tf.nn.batch_normalization: s = rsqrt(var + eps) [* scale];
  // y = x * s + (bias - mean * s)  or  x * s + (-mean * s + bias)  (without bias: x * s - mean * s).
  std::optional<LayerNormMatch> MatchFoldedScale(const Node& mean_node) const {
    LayerNormMatch m;
    const ValueId xs = mean_node.inputs[0];
    const SymShape& shape = g_.value(xs).shape;
    const DType dtype = g_.value(xs).dtype;
    if (!Start(mean_node, &m)) return std::nullopt;
    m.x = xs;
    const ValueId mean = mean_node.outputs[0];
    const Node* square = nullptr;
    const Node* mean_user = nullptr;  // Neg(mean), or Mul(mean, s)
    for (const Node* r : Readers(mean)) {
      if (!square && r->op == "SquaredDifference" && Operands(*r, xs, mean))
        square = r;
      else if (!mean_user && (r->op == "Neg" || r->op == "Mul"))
        mean_user = r;
      else
        return std::nullopt;
    }
    if (!square || !mean_user) return std::nullopt;
    const Node* var_node = SoleReader(square->outputs[0]);
    if (!var_node || TrailingAxes(*var_node, shape.rank()) != m.axis || var_node->inputs[0] != square->outputs[0])
      return std::nullopt;
    const Node* add_eps = SoleReader(var_node->outputs[0]);
    if (!Epsilon(add_eps, var_node->outputs[0], &m)) return std::nullopt;
    const Node* rsqrt = SoleReader(add_eps->outputs[0]);
    if (!rsqrt || rsqrt->op != "Rsqrt") return std::nullopt;
    m.nodes = {mean_node.id, square->id, var_node->id, add_eps->id, rsqrt->id};
    ValueId s = rsqrt->outputs[0];
    std::vector<Dim> normalized(shape.dims.begin() + static_cast<std::ptrdiff_t>(m.axis), shape.dims.end());
    const bool static_rows = std::all_of(normalized.begin(), normalized.end(), [](Dim d) { return IsStatic(d); });
    if (const Node* mul = SoleReader(s); mul && mul->op == "Mul") {  // s = rsqrt * scale
      const ValueId c = mul->inputs[0] == s ? mul->inputs[1] : mul->inputs[0];
      if (!static_rows || !RowConstant(c, shape.rank(), m.axis, dtype)) return std::nullopt;
      m.scale = c;
      m.nodes.push_back(mul->id);
      s = mul->outputs[0];
    }
    // s's two readers: x * s and the mean's product with s.
    const auto s_readers = Readers(s);
    if (s_readers.size() != 2) return std::nullopt;
    const Node* x_times_s = nullptr;
    const Node* mean_times_s = nullptr;
    for (const Node* r : s_readers) {
      if (r->op != "Mul") return std::nullopt;
      const ValueId other = r->inputs[0] == s ? r->inputs[1] : r->inputs[0];
      if (other == xs && !x_times_s)
        x_times_s = r;
      else if (other == mean_user->outputs[0] && mean_user->op == "Neg" && !mean_times_s)
        mean_times_s = r;
      else if (r == mean_user && Operands(*r, mean, s) && !mean_times_s)
        mean_times_s = r;
      else
        return std::nullopt;
    }
    if (!x_times_s || !mean_times_s) return std::nullopt;
    const bool negated = mean_user->op == "Neg";
    if (negated) {
      if (SoleReader(mean_user->outputs[0]) != mean_times_s || mean_user->inputs[0] != mean) return std::nullopt;
      m.nodes.push_back(mean_user->id);
    }
    m.nodes.push_back(x_times_s->id);
    m.nodes.push_back(mean_times_s->id);
    // The shift: -mean*s + bias, or bias - mean*s, or (no bias) -mean*s itself / x*s - mean*s.
    ValueId shift = mean_times_s->outputs[0];
    const Node* shift_node = SoleReader(shift);
    if (!shift_node) return std::nullopt;
    if (negated && shift_node->op == "Add" && shift_node->inputs.size() == 2) {
      const ValueId c = shift_node->inputs[0] == shift ? shift_node->inputs[1] : shift_node->inputs[0];
      if (c != x_times_s->outputs[0]) {  // an Add of a bias, not already the final Add
        if (!static_rows || m.scale == kNoValue || !RowConstant(c, shape.rank(), m.axis, dtype)) return std::nullopt;
        m.bias = c;
        m.nodes.push_back(shift_node->id);
        shift = shift_node->outputs[0];
      }
    } else if (!negated && shift_node->op == "Sub" && shift_node->inputs[1] == shift) {
      const ValueId c = shift_node->inputs[0];
      if (!static_rows || m.scale == kNoValue || !RowConstant(c, shape.rank(), m.axis, dtype)) return std::nullopt;
      m.bias = c;
      m.nodes.push_back(shift_node->id);
      shift = shift_node->outputs[0];
    } else if (!negated) {
      // x*s - mean*s without a bias
      const Node* sub = shift_node;
      if (sub->op != "Sub" || sub->inputs[0] != x_times_s->outputs[0] || sub->inputs[1] != shift) return std::nullopt;
      if (SoleReader(x_times_s->outputs[0]) != sub) return std::nullopt;
      m.nodes.push_back(sub->id);
      m.result = sub->outputs[0];
      return m;
    }
    const Node* final_add = SoleReader(shift);
    if (!final_add || final_add->op != "Add" || !Operands(*final_add, x_times_s->outputs[0], shift) ||
        SoleReader(x_times_s->outputs[0]) != final_add)
      return std::nullopt;
    m.nodes.push_back(final_add->id);
    m.result = final_add->outputs[0];
    return m;
  }

 private:
  // A float mean over trailing dims: sets m->axis.
  bool Start(const Node& mean_node, LayerNormMatch* m) const {
    const SymShape& shape = g_.value(mean_node.inputs[0]).shape;
    if (!shape.rank_known || shape.rank() == 0 || !IsFloating(g_.value(mean_node.inputs[0]).dtype)) return false;
    const auto axes = TrailingAxes(mean_node, shape.rank());
    if (axes) m->axis = *axes;
    return axes.has_value();
  }
  // Add(var, eps) with a one-element constant eps: sets m->epsilon.
  bool Epsilon(const Node* add_eps, ValueId var, LayerNormMatch* m) const {
    if (!add_eps || add_eps->op != "Add") return false;
    const ValueId eps = add_eps->inputs[0] == var ? add_eps->inputs[1] : add_eps->inputs[0];
    const Tensor* value = g_.ConstantOf(eps);
    if (!value || value->num_elements() != 1 || eps == var) return false;
    m->epsilon = value->DoubleAt(0);
    return true;
  }
  // The ReduceMean's axes when they are the trailing dims [a, rank) with keep_dims; returns a.
  std::optional<int64_t> TrailingAxes(const Node& n, int rank) const {
    if (n.op != "ReduceMean" || n.inputs.size() != 2 || !n.attrs.GetOr<bool>("keep_dims", false)) return std::nullopt;
    const Tensor* axes = g_.ConstantOf(n.inputs[1]);
    if (!axes) return std::nullopt;
    std::vector<int64_t> a = axes->ToInt64Vector();
    for (int64_t& v : a) {
      if (v < -rank || v >= rank) return std::nullopt;
      if (v < 0) v += rank;
    }
    std::sort(a.begin(), a.end());
    if (a.empty() || a.back() != rank - 1) return std::nullopt;
    for (size_t i = 1; i < a.size(); ++i)
      if (a[i] != a[i - 1] + 1) return std::nullopt;
    return a.front();
  }
  // The readers of `v`; none when it is a graph output (a reader outside any pattern).
  std::vector<const Node*> Readers(ValueId v) const {
    std::vector<const Node*> r;
    if (IsGraphOutput(g_, v)) return r;
    for (NodeId id : consumers_[static_cast<size_t>(v)]) r.push_back(&g_.node(id));
    return r;
  }
  const Node* SoleReader(ValueId v) const {
    const auto& r = consumers_[static_cast<size_t>(v)];
    if (r.size() != 1 || IsGraphOutput(g_, v)) return nullptr;
    return &g_.node(r[0]);
  }
  bool ReadersOutside(ValueId v, const std::vector<NodeId>& pattern) const {
    if (IsGraphOutput(g_, v)) return true;
    for (NodeId id : consumers_[static_cast<size_t>(v)])
      if (std::find(pattern.begin(), pattern.end(), id) == pattern.end()) return true;
    return false;
  }
  static bool Operands(const Node& n, ValueId a, ValueId b) {
    return n.inputs.size() == 2 && ((n.inputs[0] == a && n.inputs[1] == b) || (n.inputs[0] == b && n.inputs[1] == a));
  }
  bool IsScalar(ValueId v, double value) const {
    const Tensor* t = g_.ConstantOf(v);
    return t && t->num_elements() == 1 && t->dtype() != DType::kString && t->DoubleAt(0) == value;
  }
  // A constant of `dtype` whose dims before the normalized ones are all 1 (one value per row
  // element, shared by every row).
  bool RowConstant(ValueId v, int rank, int64_t axis, DType dtype) const {
    const Tensor* t = g_.ConstantOf(v);
    if (!t || t->dtype() != dtype || t->rank() > rank) return false;
    for (int d = 0; d < t->rank(); ++d) {
      const int64_t x_dim = rank - t->rank() + d;
      if (x_dim < axis && t->dim(d) != 1) return false;
    }
    return true;
  }

  const Graph& g_;
  const std::vector<std::vector<NodeId>>& consumers_;
};

// A row constant broadcast to the normalized dims `dims` (all static), so kernels read one value
// per row element.
ValueId RowShaped(Graph& g, NameGen& names, ValueId v, const Shape& dims, const std::string& base) {
  const Tensor& t = *g.ConstantOf(v);
  if (t.shape() == dims) return v;
  Tensor out(t.dtype(), dims);
  const size_t size = DTypeSize(t.dtype());
  const int offset = static_cast<int>(dims.size()) - t.rank();
  const auto* src = static_cast<const char*>(t.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  for (int64_t flat = 0; flat < out.num_elements(); ++flat) {
    int64_t rest = flat, index = 0, stride = 1;
    // Dims of `dims` before the constant's are broadcast; the constant's own leading dims beyond
    // `dims` (offset < 0) are 1s and add nothing to the index.
    for (int d = static_cast<int>(dims.size()) - 1; d >= std::max(offset, 0); --d) {
      const int64_t i = rest % dims[static_cast<size_t>(d)];
      rest /= dims[static_cast<size_t>(d)];
      const int64_t td = t.dim(d - offset);
      index += (td == 1 ? 0 : i) * stride;
      stride *= td;
    }
    std::memcpy(dst + static_cast<size_t>(flat) * size, src + static_cast<size_t>(index) * size, size);
  }
  return g.AddConstant(names.Make(base), std::move(out));
}

class LayerNormFusion final : public Pass {
 public:
  std::string name() const override { return "layer-norm-fusion"; }
  bool Run(Graph& graph) override {
    bool changed = false;
    NameGen names(graph);
    auto consumers = graph.Consumers();
    for (NodeId id : graph.TopologicalOrder()) {
      const Node& n = graph.node(id);
      if (n.removed || n.op != "ReduceMean") continue;
      const std::optional<LayerNormMatch> m = Matcher(graph, consumers).Match(n);
      if (!m) continue;
      const std::string name = names.Make(n.name + "/layer_norm");
      std::vector<ValueId> inputs = {m->x};
      const SymShape& x = graph.value(m->x).shape;
      Shape rows;  // the normalized dims, static when there is a scale
      for (size_t d = static_cast<size_t>(m->axis); d < x.dims.size(); ++d) rows.push_back(x.dims[d]);
      if (m->scale != kNoValue) inputs.push_back(RowShaped(graph, names, m->scale, rows, name + "/scale"));
      if (m->bias != kNoValue) inputs.push_back(RowShaped(graph, names, m->bias, rows, name + "/bias"));
      Node& ln = AddReplacementNode(graph, "LayerNorm", name, inputs, m->result);
      ln.attrs.Set("axis", m->axis);
      ln.attrs.Set("epsilon", m->epsilon);
      for (NodeId dead : m->nodes) graph.node(dead).removed = true;
      consumers = graph.Consumers();
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> MakeLayerNormFusion() { return std::make_unique<LayerNormFusion>(); }

}  // namespace kiln::ir
