// Keras recurrent-loop fusion: the While loop Keras 3 (TensorFlow backend) exports for an LSTM
// layer becomes one LSTM node (ONNX semantics, ir/ops/nn_recurrent.cc), so backends run the
// recurrence as one op instead of a loop of small native nodes.
//
// The loop (after import, identity elimination and constant folding), with xs = the input
// transposed to time-major [T, B, I] and list = TensorListReserve([-1, U], n):
//
//   While(counter = 0, limits..., time = 0, list, h0, c0, xs)
//     cond: LogicalAnd(Less(counter, L1), Less(time, L2))   (either order; L = constants or
//           loop-invariant variables), both limits equal T
//     body: x_t = TensorListGetItem(xs, time, _)
//           z = Add(Add(MatMul(x_t, K), MatMul(h, R)), bias)       K [I, 4U], R [U, 4U], bias [4U]
//           i, f, g, o = Split(z, axis 1 or -1, 4)
//           c' = Add(Mul(Sigmoid(f), c), Mul(Sigmoid(i), Tanh(g)))
//           h' = Mul(Sigmoid(o), Tanh(c'))
//           list' = TensorListSetItem(list, time, h')   (n == T: return_sequences)
//                 | TensorListSetItem(list, 0, h')      (n == 1: the last output only)
//           time' = Add(time, 1), counter' = Add(counter, 1); xs and limits pass through
//
// becomes LSTM(xs, W, R, B, ExpandDims(h0), ExpandDims(c0)) with W = K^T and R = R^T with gate
// blocks reordered from Keras' i, f, c, o to ONNX's i, o, f, c and B = [bias reordered, zeros].
// The loop's list output becomes Squeeze(Y, 1) ([T, B, U]) or Y_h ([1, B, U]); h and c become
// Squeeze(Y_h, 0) and Squeeze(Y_c, 0). Anything else in the body or the condition (other
// activations, masks, extra loop variables, constants of other shapes), readers of the counter,
// time or pass-through outputs, or dtypes other than float32 leave the loop as it is.
#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/ops/array_common.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

// Structural questions about one (sub)graph.
class View {
 public:
  explicit View(const Graph& g) : g_(g) {}
  const Graph& graph() const { return g_; }
  // The producer of v when it is a live node of `op` with `inputs` inputs, else nullptr.
  const Node* Op(ValueId v, const char* op, size_t inputs) const {
    const Node* n = g_.Producer(v);
    if (!n || n->removed || n->op != op || n->inputs.size() != inputs) return nullptr;
    return n;
  }
  // The index of v among the graph inputs, or -1.
  int InputIndex(ValueId v) const {
    const auto& in = g_.inputs();
    auto it = std::find(in.begin(), in.end(), v);
    return it == in.end() ? -1 : static_cast<int>(it - in.begin());
  }
  // A one-element integer constant's value.
  std::optional<int64_t> IntConst(ValueId v) const {
    const Tensor* t = g_.ConstantOf(v);
    if (!t || t->num_elements() != 1 || !IsInteger(t->dtype())) return std::nullopt;
    return t->IntAt(0);
  }
  const Tensor* F32Const(ValueId v, Shape shape) const {
    const Tensor* t = g_.ConstantOf(v);
    if (!t || t->dtype() != DType::kFloat32 || t->shape() != shape) return nullptr;
    return t;
  }

 private:
  const Graph& g_;
};

// Binary op `op` of a and b in either order: sets a/b to the operands matched by `first`.
template <typename Pred>
const Node* Commutative(const View& v, ValueId out, const char* op, Pred first, ValueId* a, ValueId* b) {
  const Node* n = v.Op(out, op, 2);
  if (!n) return nullptr;
  for (int k = 0; k < 2; ++k) {
    if (first(n->inputs[static_cast<size_t>(k)])) {
      *a = n->inputs[static_cast<size_t>(k)];
      *b = n->inputs[static_cast<size_t>(1 - k)];
      return n;
    }
  }
  return nullptr;
}

struct LstmCell {
  int h_in = -1, c_in = -1;  // body inputs of the states
  ValueId c_out = kNoValue;
  const Tensor *kernel = nullptr, *recurrent = nullptr, *bias = nullptr;
  std::set<NodeId> nodes;
};

// Matches h' (a body value) as the Keras LSTM cell above, with x_t the GetItem output.
std::optional<LstmCell> MatchLstmCell(const View& v, ValueId h_out, ValueId x_t) {
  LstmCell m;
  auto producer_of = [&](ValueId val, const char* op, size_t n) {
    const Node* node = v.Op(val, op, n);
    if (node) m.nodes.insert(node->id);
    return node;
  };
  auto unary = [&](ValueId val, const char* op) -> std::optional<ValueId> {
    const Node* node = producer_of(val, op, 1);
    if (!node) return std::nullopt;
    return node->inputs[0];
  };
  auto is_op = [&](const char* op) { return [&v, op](ValueId val) { return v.Op(val, op, 1) != nullptr; }; };
  // h' = Mul(Sigmoid(o), Tanh(c'))
  ValueId sig_o, tanh_c;
  const Node* mul = Commutative(v, h_out, "Mul", is_op("Sigmoid"), &sig_o, &tanh_c);
  if (!mul) return std::nullopt;
  m.nodes.insert(mul->id);
  auto o = unary(sig_o, "Sigmoid");
  auto c_new = unary(tanh_c, "Tanh");
  if (!o || !c_new) return std::nullopt;
  m.c_out = *c_new;
  // c' = Add(Mul(Sigmoid(f), c), Mul(Sigmoid(i), Tanh(g)))
  const Node* add = producer_of(*c_new, "Add", 2);
  if (!add) return std::nullopt;
  std::optional<ValueId> i_gate, f_gate, g_gate;
  for (int k = 0; k < 2 && !(i_gate && f_gate); ++k) {
    const Node* fc = v.Op(add->inputs[static_cast<size_t>(k)], "Mul", 2);
    const Node* ig = v.Op(add->inputs[static_cast<size_t>(1 - k)], "Mul", 2);
    if (!fc || !ig) continue;
    ValueId sig_f, c_prev, sig_i, tanh_g;
    auto state = [&v](ValueId val) { return v.InputIndex(val) >= 0; };
    if (!Commutative(v, fc->outputs[0], "Mul", state, &c_prev, &sig_f)) continue;
    if (!Commutative(v, ig->outputs[0], "Mul", is_op("Tanh"), &tanh_g, &sig_i)) continue;
    m.nodes.insert(fc->id);
    m.nodes.insert(ig->id);
    m.c_in = v.InputIndex(c_prev);
    f_gate = unary(sig_f, "Sigmoid");
    i_gate = unary(sig_i, "Sigmoid");
    g_gate = unary(tanh_g, "Tanh");
  }
  if (!i_gate || !f_gate || !g_gate) return std::nullopt;
  // The four gates are outputs 0..3 of one Split on the last axis.
  const Node* split = v.graph().Producer(*i_gate);
  if (!split || split->removed || split->op != "Split" || split->inputs.size() != 2 || split->outputs.size() != 4)
    return std::nullopt;
  if (split->outputs[0] != *i_gate || split->outputs[1] != *f_gate || split->outputs[2] != *g_gate ||
      split->outputs[3] != *o)
    return std::nullopt;
  const auto axis = v.IntConst(split->inputs[1]);
  if (!axis || (*axis != 1 && *axis != -1)) return std::nullopt;
  m.nodes.insert(split->id);
  // z = Add(Add(MatMul(x_t, K), MatMul(h, R)), bias)
  ValueId sum, bias;
  auto is_add = [&v](ValueId val) { return v.Op(val, "Add", 2) != nullptr; };
  const Node* bias_add = Commutative(v, split->inputs[0], "Add", is_add, &sum, &bias);
  if (!bias_add) return std::nullopt;
  m.nodes.insert(bias_add->id);
  const Node* mm_add = producer_of(sum, "Add", 2);
  if (!mm_add) return std::nullopt;
  const Node* mx = nullptr;
  const Node* mh = nullptr;
  for (int k = 0; k < 2; ++k) {
    const Node* a = v.Op(mm_add->inputs[static_cast<size_t>(k)], "MatMul", 2);
    const Node* b = v.Op(mm_add->inputs[static_cast<size_t>(1 - k)], "MatMul", 2);
    if (a && b && a->inputs[0] == x_t && v.InputIndex(b->inputs[0]) >= 0) mx = a, mh = b;
  }
  if (!mx || !mh) return std::nullopt;
  for (const Node* mm : {mx, mh}) {
    if (mm->attrs.GetOr<bool>("transpose_a", false) || mm->attrs.GetOr<bool>("transpose_b", false)) return std::nullopt;
    m.nodes.insert(mm->id);
  }
  m.h_in = v.InputIndex(mh->inputs[0]);
  const Tensor* k = v.graph().ConstantOf(mx->inputs[1]);
  const Tensor* r = v.graph().ConstantOf(mh->inputs[1]);
  if (!k || !r || k->rank() != 2 || k->dtype() != DType::kFloat32) return std::nullopt;
  const int64_t units = k->dim(1) / 4;
  if (units < 1 || k->dim(1) != 4 * units) return std::nullopt;
  m.kernel = k;
  m.recurrent = v.F32Const(mh->inputs[1], {units, 4 * units});
  m.bias = v.F32Const(bias, {4 * units});
  if (!m.recurrent || !m.bias || m.h_in < 0 || m.c_in < 0 || m.h_in == m.c_in) return std::nullopt;
  return m;
}

// Keras' gate order i, f, c, o as ONNX's i, o, f, c: ONNX block b is Keras block kKerasGate[b].
constexpr int64_t kKerasGate[4] = {0, 3, 1, 2};

// W [1, 4U, cols] from a Keras matrix [cols, 4U]: transposed, gate blocks reordered.
Tensor OnnxWeights(const Tensor& keras, int64_t units) {
  const int64_t cols = keras.dim(0);
  Tensor w(DType::kFloat32, {1, 4 * units, cols});
  const float* src = keras.data<float>();
  float* dst = w.data<float>();
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t u = 0; u < units; ++u)
      for (int64_t c = 0; c < cols; ++c)
        dst[(b * units + u) * cols + c] = src[c * 4 * units + kKerasGate[b] * units + u];
  return w;
}

Tensor OnnxBias(const Tensor& keras, int64_t units) {
  Tensor b(DType::kFloat32, {1, 8 * units});  // the recurrent half stays zero
  for (int64_t g = 0; g < 4; ++g)
    std::memcpy(b.data<float>() + g * units, keras.data<float>() + kKerasGate[g] * units,
                static_cast<size_t>(units) * sizeof(float));
  return b;
}

// Whether value `v` of graph g is known to equal the first dim of xs (symbolically or statically).
bool EqualsDim(const Graph& g, ValueId v, Dim dim) {
  auto sym = array::EvalSymbolic(g, v);
  if (!sym || sym->elems.size() != 1) return false;
  const array::SymElem e = sym->elems[0];
  return e == array::SymElem::OfDim(dim);
}

class KerasRnnFusion final : public Pass {
 public:
  std::string name() const override { return "keras-rnn-fusion"; }
  bool Run(Graph& graph) override {
    bool changed = false;
    for (NodeId id : graph.TopologicalOrder())
      if (graph.node(id).op == "While" && !graph.node(id).removed) changed |= FuseLstm(graph, id);
    return changed;
  }

 private:
  static bool FuseLstm(Graph& g, NodeId loop_id) {
    const Node& loop = g.node(loop_id);
    const auto& cond_ptr = loop.attrs.Get<std::shared_ptr<Graph>>("cond");
    const auto& body_ptr = loop.attrs.Get<std::shared_ptr<Graph>>("body");
    if (!cond_ptr || !body_ptr) return false;
    const Graph& body = *body_ptr;
    const Graph& cond = *cond_ptr;
    const View bv(body), cv(cond);
    const size_t n = loop.inputs.size();
    if (body.inputs().size() != n || body.outputs().size() != n || cond.inputs().size() != n) return false;
    auto passes_through = [&](int i) {
      return i >= 0 && body.outputs()[static_cast<size_t>(i)] == body.inputs()[static_cast<size_t>(i)];
    };
    // The one SetItem, writing the list variable.
    const Node* set = nullptr;
    const Node* get = nullptr;
    for (const Node& node : body.nodes()) {
      if (node.removed) continue;
      if (node.op == "TensorListSetItem") {
        if (set) return false;
        set = &node;
      } else if (node.op == "TensorListGetItem") {
        if (get) return false;
        get = &node;
      }
    }
    if (!set || !get || set->attrs.GetOr<bool>("resize_if_index_out_of_bounds", false)) return false;
    const int list = bv.InputIndex(set->inputs[0]);
    if (list < 0 || body.outputs()[static_cast<size_t>(list)] != set->outputs[0]) return false;
    const int xs = bv.InputIndex(get->inputs[0]);
    const int time = bv.InputIndex(get->inputs[1]);
    if (!passes_through(xs) || time < 0) return false;
    const auto index = bv.IntConst(set->inputs[1]);
    const bool sequences = set->inputs[1] == body.inputs()[static_cast<size_t>(time)];
    if (!sequences && index != 0) return false;
    auto cell = MatchLstmCell(bv, set->inputs[2], get->outputs[0]);
    if (!cell) return false;
    if (body.outputs()[static_cast<size_t>(cell->h_in)] != set->inputs[2] ||
        body.outputs()[static_cast<size_t>(cell->c_in)] != cell->c_out)
      return false;
    // time' = time + 1 and counter' = counter + 1.
    auto increments = [&](int i) {
      ValueId in, one;
      auto is_var = [&](ValueId val) { return val == body.inputs()[static_cast<size_t>(i)]; };
      const Node* add = Commutative(bv, body.outputs()[static_cast<size_t>(i)], "Add", is_var, &in, &one);
      return add && bv.IntConst(one) == 1 ? add : nullptr;
    };
    const Node* time_add = increments(time);
    if (!time_add) return false;
    std::set<NodeId> matched = cell->nodes;
    matched.insert({set->id, get->id, time_add->id});
    int counter = -1;
    for (int i = 0; i < static_cast<int>(n); ++i) {
      if (i == list || i == xs || i == time || i == cell->h_in || i == cell->c_in || passes_through(i)) continue;
      const Node* add = increments(i);
      if (!add || counter >= 0) return false;
      counter = i;
      matched.insert(add->id);
    }
    for (const Node& node : body.nodes())
      if (!node.removed && node.op != "Constant" && !matched.count(node.id)) return false;
    // cond: LogicalAnd(Less(counter, L1), Less(time, L2)), the limits constants or invariants.
    const Node* both = cv.Op(cond.outputs()[0], "LogicalAnd", 2);
    if (!both || cond.outputs().size() != 1) return false;
    const Dim steps = g.value(loop.inputs[static_cast<size_t>(xs)]).shape.rank_known
                          ? g.value(loop.inputs[static_cast<size_t>(xs)]).shape.dims[0]
                          : kUnknownDim;
    std::set<int> bounded;
    for (ValueId less_out : both->inputs) {
      const Node* less = cv.Op(less_out, "Less", 2);
      if (!less) return false;
      const int var = cv.InputIndex(less->inputs[0]);
      if (var != time && var != counter) return false;
      bounded.insert(var);
      const ValueId limit = less->inputs[1];
      if (auto c = cv.IntConst(limit)) {
        if (!IsStatic(steps) || *c != steps) return false;
      } else {
        const int j = cv.InputIndex(limit);
        if (!passes_through(j) || !EqualsDim(g, loop.inputs[static_cast<size_t>(j)], steps)) return false;
      }
    }
    if (!bounded.count(time) || (counter >= 0 && !bounded.count(counter))) return false;
    for (const Node& node : cond.nodes())
      if (!node.removed && node.op != "Constant" && node.op != "Less" && node.op != "LogicalAnd") return false;
    // Outside: counter and time start at 0; the list is a fresh Reserve of T (or 1) elements.
    auto starts_at_zero = [&](int i) { return i < 0 || View(g).IntConst(loop.inputs[static_cast<size_t>(i)]) == 0; };
    if (!starts_at_zero(time) || !starts_at_zero(counter)) return false;
    const Node* reserve = View(g).Op(loop.inputs[static_cast<size_t>(list)], "TensorListReserve", 2);
    if (!reserve) return false;
    if (sequences ? !EqualsDim(g, reserve->inputs[1], steps) : View(g).IntConst(reserve->inputs[1]) != 1) return false;
    const SymShape& xs_shape = g.value(loop.inputs[static_cast<size_t>(xs)]).shape;
    const int64_t units = cell->kernel->dim(1) / 4;
    if (!xs_shape.rank_known || xs_shape.rank() != 3 || xs_shape.dims[2] != cell->kernel->dim(0) ||
        g.value(loop.inputs[static_cast<size_t>(xs)]).dtype != DType::kFloat32)
      return false;
    for (int s : {cell->h_in, cell->c_in}) {
      const Value& v = g.value(loop.inputs[static_cast<size_t>(s)]);
      if (v.dtype != DType::kFloat32 || !v.shape.rank_known || v.shape.rank() != 2 || v.shape.dims[1] != units)
        return false;
    }
    // Only the list and the states may be read after the loop.
    const auto consumers = g.Consumers();
    for (int i = 0; i < static_cast<int>(n); ++i) {
      if (i == list || i == cell->h_in || i == cell->c_in) continue;
      const ValueId out = loop.outputs[static_cast<size_t>(i)];
      if (!consumers[static_cast<size_t>(out)].empty() || IsGraphOutput(g, out)) return false;
    }
    Emit(g, loop_id, xs, list, cell->h_in, cell->c_in, sequences, *cell, units);
    return true;
  }

  static void Emit(Graph& g, NodeId loop_id, int xs, int list, int h_in, int c_in, bool sequences, const LstmCell& cell,
                   int64_t units) {
    // Copies: AddNode may move the loop node.
    const std::vector<ValueId> ins = g.node(loop_id).inputs, outs = g.node(loop_id).outputs;
    const std::string base = g.node(loop_id).name;
    NameGen names(g);
    auto node = [&](const char* op, const std::string& suffix, std::vector<ValueId> inputs, AttrMap attrs,
                    int n_out = 1) {
      Node& nd = g.AddNode(op, names.Make(base + "/" + suffix), std::move(inputs), n_out);
      nd.attrs = std::move(attrs);
      const NodeId id = nd.id;
      InferNode(g, id);
      return g.node(id).outputs;
    };
    auto axis = [&](int64_t a, const std::string& suffix) {
      return g.AddConstant(names.Make(base + "/" + suffix),
                           Tensor::Scalar<int32_t>(DType::kInt32, static_cast<int32_t>(a)));
    };
    const ValueId w = g.AddConstant(names.Make(base + "/lstm_W"), OnnxWeights(*cell.kernel, units));
    const ValueId r = g.AddConstant(names.Make(base + "/lstm_R"), OnnxWeights(*cell.recurrent, units));
    const ValueId b = g.AddConstant(names.Make(base + "/lstm_B"), OnnxBias(*cell.bias, units));
    const ValueId h0 = node("ExpandDims", "initial_h", {ins[static_cast<size_t>(h_in)], axis(0, "h_axis")}, {})[0];
    const ValueId c0 = node("ExpandDims", "initial_c", {ins[static_cast<size_t>(c_in)], axis(0, "c_axis")}, {})[0];
    AttrMap lstm_attrs;
    lstm_attrs.Set("hidden_size", units);
    lstm_attrs.Set("optional_inputs", std::vector<std::string>{"B", "initial_h", "initial_c"});
    const std::vector<ValueId> y =
        node("LSTM", "lstm", {ins[static_cast<size_t>(xs)], w, r, b, h0, c0}, std::move(lstm_attrs), 3);
    auto squeeze = [&](ValueId v, int64_t a, const std::string& suffix) {
      AttrMap attrs;
      attrs.Set("axes", std::vector<int64_t>{a});
      return node("Squeeze", suffix, {v}, std::move(attrs))[0];
    };
    const ValueId list_value = sequences ? squeeze(y[0], 1, "sequence") : y[1];
    g.ReplaceAllUses(outs[static_cast<size_t>(list)], list_value);
    g.ReplaceAllUses(outs[static_cast<size_t>(h_in)], squeeze(y[1], 0, "h"));
    g.ReplaceAllUses(outs[static_cast<size_t>(c_in)], squeeze(y[2], 0, "c"));
    g.node(loop_id).removed = true;
  }
};

}  // namespace

std::unique_ptr<Pass> MakeKerasRnnFusion() { return std::make_unique<KerasRnnFusion>(); }

}  // namespace kiln::ir
