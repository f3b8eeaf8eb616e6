// Keras recurrent-loop fusion: the While loops Keras 3 (TensorFlow backend) exports for LSTM,
// GRU (reset_after either way) and SimpleRNN layers become one LSTM / GRU / RNN node (ONNX
// semantics, ir/ops/nn_recurrent.cc), so backends run the recurrence as one op instead of a loop
// of small native nodes.
//
// The loop (after import, identity elimination and constant folding), with xs = the input
// transposed to time-major [T, B, I] and list = TensorListReserve([-1, U], n):
//
//   While(counter = 0, limits..., time = 0, list, h0 [, c0], xs)
//     cond: LogicalAnd(Less(counter, L1), Less(time, L2))   (either order; L = constants or
//           loop-invariant variables), both limits equal T
//     body: x_t = TensorListGetItem(xs, time, _)
//           h' [, c'] = the cell (MatchLstm, MatchGru, MatchSimpleRnn below: Keras' formulas with
//                       its default activations, x_t K + h R + bias as MatMuls and Adds)
//           list' = TensorListSetItem(list, time, h')   (n == T: return_sequences)
//                 | TensorListSetItem(list, 0, h')      (n == 1: the last output only)
//           time' = time + 1, counter' = counter + 1; xs and limits pass through
//
// becomes OP(xs, W, R, B, ExpandDims(h0) [, ExpandDims(c0)]) with W = K^T and R = R^T, gate
// blocks in ONNX's order (LSTM: Keras i, f, c, o -> ONNX i, o, f, c; GRU z, r, h in both), and
// B = [input bias, recurrent bias or zeros]. The loop's list output becomes Squeeze(Y, 1)
// ([T, B, U]) or Y_h ([1, B, U]); h and c become Squeeze(Y_h, 0) and Squeeze(Y_c, 0). Anything
// else in the body or the condition (other activations, masks, extra loop variables, weights of
// other shapes), readers of the counter, time or pass-through
// outputs, or dtypes other than float32 leave the loop as it is.
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

// One recurrent cell found in a loop body: the IR op it becomes, its state variables (body input
// indices) and its weights in ONNX's layout.
struct Cell {
  const char* op = nullptr;  // "LSTM", "GRU", "RNN"
  int h_in = -1, c_in = -1;  // c only for LSTM
  ValueId c_out = kNoValue;
  int64_t units = 0, input_size = 0;
  Tensor w, r, b;  // [1, G*U, I], [1, G*U, U], [1, 2*G*U]
  bool linear_before_reset = false;
  std::set<NodeId> nodes;
};

// W or R [1, G*U, cols] from a Keras matrix [cols, G*U]: transposed, gate blocks reordered so
// that ONNX block k is Keras block gates[k].
Tensor OnnxWeights(const Tensor& keras, int64_t units, const std::vector<int64_t>& gates) {
  const int64_t cols = keras.dim(0), g_count = static_cast<int64_t>(gates.size());
  Tensor w(DType::kFloat32, {1, g_count * units, cols});
  const float* src = keras.data<float>();
  float* dst = w.data<float>();
  for (int64_t k = 0; k < g_count; ++k)
    for (int64_t u = 0; u < units; ++u)
      for (int64_t c = 0; c < cols; ++c)
        dst[(k * units + u) * cols + c] = src[c * g_count * units + gates[static_cast<size_t>(k)] * units + u];
  return w;
}

// B [1, 2*G*U]: the input bias (reordered) then the recurrent bias (zeros when there is none).
Tensor OnnxBias(const Tensor& input_bias, const Tensor* recurrent_bias, int64_t units,
                const std::vector<int64_t>& gates) {
  const int64_t g_count = static_cast<int64_t>(gates.size());
  Tensor b(DType::kFloat32, {1, 2 * g_count * units});
  for (int64_t k = 0; k < g_count; ++k) {
    const size_t bytes = static_cast<size_t>(units) * sizeof(float);
    std::memcpy(b.data<float>() + k * units, input_bias.data<float>() + gates[static_cast<size_t>(k)] * units, bytes);
    if (recurrent_bias)
      std::memcpy(b.data<float>() + (g_count + k) * units,
                  recurrent_bias->data<float>() + gates[static_cast<size_t>(k)] * units, bytes);
  }
  return b;
}

// A sum (Adds in any association) of MatMul(x_t, K), MatMul(h, R) where h is a body input, and a
// bias constant, each at most once; `want` says which must be there.
struct LinearSum {
  const Tensor* kernel = nullptr;
  const Tensor* recurrent = nullptr;
  const Tensor* bias = nullptr;
  int h_in = -1;
};
bool MatchLinearSum(const View& v, ValueId val, ValueId x_t, LinearSum& s, std::set<NodeId>& nodes) {
  if (const Node* add = v.Op(val, "Add", 2)) {
    nodes.insert(add->id);
    return MatchLinearSum(v, add->inputs[0], x_t, s, nodes) && MatchLinearSum(v, add->inputs[1], x_t, s, nodes);
  }
  if (const Node* mm = v.Op(val, "MatMul", 2)) {
    if (mm->attrs.GetOr<bool>("transpose_a", false) || mm->attrs.GetOr<bool>("transpose_b", false)) return false;
    const Tensor* w = v.graph().ConstantOf(mm->inputs[1]);
    if (!w || w->dtype() != DType::kFloat32 || w->rank() != 2) return false;
    nodes.insert(mm->id);
    if (mm->inputs[0] == x_t && !s.kernel) {
      s.kernel = w;
      return true;
    }
    const int h = v.InputIndex(mm->inputs[0]);
    if (h < 0 || s.recurrent) return false;
    s.recurrent = w;
    s.h_in = h;
    return true;
  }
  const Tensor* b = v.graph().ConstantOf(val);
  if (!b || s.bias || b->dtype() != DType::kFloat32 || b->rank() != 1) return false;
  s.bias = b;
  return true;
}

// The gates' Split: outputs 0..n-1 of one Split on the last axis of a rank-2 value.
const Node* GateSplit(const View& v, ValueId first_gate, size_t gates) {
  const Node* split = v.graph().Producer(first_gate);
  if (!split || split->removed || split->op != "Split" || split->inputs.size() != 2 || split->outputs.size() != gates ||
      split->outputs[0] != first_gate)
    return nullptr;
  const auto axis = v.IntConst(split->inputs[1]);
  return axis && (*axis == 1 || *axis == -1) ? split : nullptr;
}

bool SetWeights(Cell& c, const LinearSum& s, const Tensor* recurrent_bias, const std::vector<int64_t>& gates) {
  const int64_t g_count = static_cast<int64_t>(gates.size());
  if (!s.kernel || !s.recurrent || !s.bias || s.kernel->dim(1) % g_count != 0) return false;
  c.units = s.kernel->dim(1) / g_count;
  c.input_size = s.kernel->dim(0);
  const Shape square{c.units, g_count * c.units}, bias{g_count * c.units};
  if (c.units < 1 || s.recurrent->shape() != square || s.bias->shape() != bias) return false;
  if (recurrent_bias && (recurrent_bias->dtype() != DType::kFloat32 || recurrent_bias->shape() != bias)) return false;
  c.w = OnnxWeights(*s.kernel, c.units, gates);
  c.r = OnnxWeights(*s.recurrent, c.units, gates);
  c.b = OnnxBias(*s.bias, recurrent_bias, c.units, gates);
  return true;
}

// LSTM: h' = Mul(Sigmoid(o), Tanh(c')), c' = Add(Mul(Sigmoid(f), c), Mul(Sigmoid(i), Tanh(g))),
// i, f, g, o = Split(x_t K + h R + bias, 4). Keras' gate order i, f, c, o; ONNX's i, o, f, c.
std::optional<Cell> MatchLstm(const View& v, ValueId h_out, ValueId x_t) {
  Cell m;
  m.op = "LSTM";
  auto unary = [&](ValueId val, const char* op) -> std::optional<ValueId> {
    const Node* node = v.Op(val, op, 1);
    if (!node) return std::nullopt;
    m.nodes.insert(node->id);
    return node->inputs[0];
  };
  auto is_op = [&v](const char* op) { return [&v, op](ValueId val) { return v.Op(val, op, 1) != nullptr; }; };
  auto is_state = [&v](ValueId val) { return v.InputIndex(val) >= 0; };
  ValueId sig_o = kNoValue, tanh_c = kNoValue;
  const Node* mul = Commutative(v, h_out, "Mul", is_op("Sigmoid"), &sig_o, &tanh_c);
  if (!mul) return std::nullopt;
  m.nodes.insert(mul->id);
  const auto o = unary(sig_o, "Sigmoid");
  const auto c_new = unary(tanh_c, "Tanh");
  if (!o || !c_new) return std::nullopt;
  m.c_out = *c_new;
  const Node* add = v.Op(*c_new, "Add", 2);
  if (!add) return std::nullopt;
  m.nodes.insert(add->id);
  std::optional<ValueId> i_gate, f_gate, g_gate;
  for (int k = 0; k < 2 && !i_gate; ++k) {
    ValueId sig_f = kNoValue, c_prev = kNoValue, sig_i = kNoValue, tanh_g = kNoValue;
    const Node* fc = Commutative(v, add->inputs[static_cast<size_t>(k)], "Mul", is_state, &c_prev, &sig_f);
    const Node* ig = Commutative(v, add->inputs[static_cast<size_t>(1 - k)], "Mul", is_op("Tanh"), &tanh_g, &sig_i);
    if (!fc || !ig) continue;
    m.nodes.insert({fc->id, ig->id});
    m.c_in = v.InputIndex(c_prev);
    f_gate = unary(sig_f, "Sigmoid");
    g_gate = unary(tanh_g, "Tanh");
    i_gate = unary(sig_i, "Sigmoid");
  }
  if (!i_gate || !f_gate || !g_gate) return std::nullopt;
  const Node* split = GateSplit(v, *i_gate, 4);
  if (!split || split->outputs[1] != *f_gate || split->outputs[2] != *g_gate || split->outputs[3] != *o)
    return std::nullopt;
  m.nodes.insert(split->id);
  LinearSum s;
  if (!MatchLinearSum(v, split->inputs[0], x_t, s, m.nodes) || !SetWeights(m, s, nullptr, {0, 3, 1, 2}))
    return std::nullopt;
  m.h_in = s.h_in;
  if (m.c_in < 0 || m.h_in == m.c_in) return std::nullopt;
  return m;
}

// Columns [gate * U, (gate + 1) * U) of a [?, width] value: StridedSlice(inner, [0, gU], [0, (g+1)U],
// [1, 1]) with dim 0 taken whole (Keras' matrix_inner[:, gU:(g+1)U]).
bool IsColumnBlock(const View& v, ValueId val, ValueId inner, int64_t gate, int64_t units, int64_t width,
                   std::set<NodeId>& nodes) {
  const Node* ss = v.Op(val, "StridedSlice", 4);
  if (!ss || ss->inputs[0] != inner) return false;
  const array::StridedSliceMasks masks = array::StridedSliceMasksOf(ss->attrs);
  if (masks.ellipsis_mask || masks.new_axis_mask || masks.shrink_axis_mask || !(masks.begin_mask & 1) ||
      !(masks.end_mask & 1))
    return false;
  std::vector<std::vector<int64_t>> spec;
  for (size_t k = 1; k < 4; ++k) {
    const Tensor* t = v.graph().ConstantOf(ss->inputs[k]);
    if (!t || t->rank() != 1 || t->num_elements() != 2 || !IsInteger(t->dtype())) return false;
    spec.push_back(t->ToInt64Vector());
  }
  array::StridedSliceResult r;
  if (!array::ComputeStridedSlice({kUnknownDim, width}, 2, &spec[0], &spec[1], &spec[2], masks, &r).empty())
    return false;
  if (r.strides[0] != 1 || r.strides[1] != 1 || r.begin[1] != gate * units || r.end[1] != (gate + 1) * units)
    return false;
  nodes.insert(ss->id);
  return true;
}

// GRU with reset_after (Keras' default; ONNX linear_before_reset = 1), or without (the branch
// below, linear_before_reset = 0):
//   xz, xr, xh = Split(x_t K + b_in, 3), inner = h R + b_rec, rz, rr, rh = its column blocks
//   z = Sigmoid(xz + rz), r = Sigmoid(xr + rr), hh = Tanh(xh + r * rh)
//   h' = z * h + (1 - z) * hh
std::optional<Cell> MatchGru(const View& v, ValueId h_out, ValueId x_t) {
  Cell m;
  m.op = "GRU";
  m.linear_before_reset = true;
  auto is_state = [&v](ValueId val) { return v.InputIndex(val) >= 0; };
  const Node* add = v.Op(h_out, "Add", 2);
  if (!add) return std::nullopt;
  m.nodes.insert(add->id);
  ValueId z = kNoValue, h_prev = kNoValue, one_minus_z = kNoValue, hh = kNoValue;
  const Node* keep = nullptr;
  const Node* take = nullptr;
  for (int k = 0; k < 2 && !keep; ++k) {
    keep = Commutative(v, add->inputs[static_cast<size_t>(k)], "Mul", is_state, &h_prev, &z);
    take = keep ? Commutative(
                      v, add->inputs[static_cast<size_t>(1 - k)], "Mul",
                      [&v](ValueId val) { return v.Op(val, "Sub", 2) != nullptr; }, &one_minus_z, &hh)
                : nullptr;
    if (!take) keep = nullptr;
  }
  if (!keep || !take) return std::nullopt;
  const Node* sub = v.Op(one_minus_z, "Sub", 2);
  const Tensor* one = v.graph().ConstantOf(sub->inputs[0]);
  if (!one || one->num_elements() != 1 || one->dtype() != DType::kFloat32 || one->DoubleAt(0) != 1.0 ||
      sub->inputs[1] != z)
    return std::nullopt;
  const Node* sig_z = v.Op(z, "Sigmoid", 1);
  const Node* tanh_h = v.Op(hh, "Tanh", 1);
  if (!sig_z || !tanh_h) return std::nullopt;
  m.nodes.insert({keep->id, take->id, sub->id, sig_z->id, tanh_h->id});
  // The input side: the Split of x_t K + b_in.
  const Node* z_add = v.Op(sig_z->inputs[0], "Add", 2);
  const Node* h_add = v.Op(tanh_h->inputs[0], "Add", 2);
  if (!z_add || !h_add) return std::nullopt;
  const Node* split = nullptr;
  for (ValueId in : z_add->inputs)
    if (!split) split = GateSplit(v, in, 3);
  if (!split) return std::nullopt;
  LinearSum s_in, s_rec;
  if (!MatchLinearSum(v, split->inputs[0], x_t, s_in, m.nodes) || s_in.recurrent) return std::nullopt;
  const int64_t units = s_in.kernel ? s_in.kernel->dim(1) / 3 : 0;
  if (units < 1) return std::nullopt;
  // rz is the block of `inner` beside xz; inner = h R + b_rec.
  const ValueId rz = z_add->inputs[0] == split->outputs[0] ? z_add->inputs[1] : z_add->inputs[0];
  const Node* rz_node = v.Op(rz, "StridedSlice", 4);
  if (!rz_node) return std::nullopt;
  const ValueId inner = rz_node->inputs[0];
  auto sum_of = [&](const Node* a, ValueId split_out, ValueId* other) {
    for (int k = 0; k < 2; ++k)
      if (a->inputs[static_cast<size_t>(k)] == split_out) {
        *other = a->inputs[static_cast<size_t>(1 - k)];
        return true;
      }
    return false;
  };
  ValueId r_times = kNoValue;
  if (!sum_of(h_add, split->outputs[2], &r_times)) return std::nullopt;
  auto is_sigmoid = [&v](ValueId val) { return v.Op(val, "Sigmoid", 1) != nullptr; };
  if (const Node* rh_mm = v.Op(r_times, "MatMul", 2)) {
    // reset_after=False (ONNX linear_before_reset = 0): inner = h R[:, :2U] (rz, rr its column
    // blocks), hh = Tanh(xh + (r * h) R[:, 2U:]); no recurrent bias.
    m.linear_before_reset = false;
    const Node* inner_mm = v.Op(inner, "MatMul", 2);
    if (!inner_mm) return std::nullopt;
    for (const Node* mm : {rh_mm, inner_mm})
      if (mm->attrs.GetOr<bool>("transpose_a", false) || mm->attrs.GetOr<bool>("transpose_b", false))
        return std::nullopt;
    const Tensor* rh_w = v.F32Const(rh_mm->inputs[1], {units, units});
    const Tensor* rzr_w = v.F32Const(inner_mm->inputs[1], {units, 2 * units});
    const int h_in = v.InputIndex(inner_mm->inputs[0]);
    if (!rh_w || !rzr_w || h_in < 0 || inner_mm->inputs[0] != h_prev) return std::nullopt;
    ValueId sig_r = kNoValue, h_again = kNoValue, rr = kNoValue;
    const Node* r_mul = Commutative(v, rh_mm->inputs[0], "Mul", is_sigmoid, &sig_r, &h_again);
    if (!r_mul || h_again != h_prev) return std::nullopt;
    const Node* sig_r_node = v.Op(sig_r, "Sigmoid", 1);
    const Node* r_add = v.Op(sig_r_node->inputs[0], "Add", 2);
    if (!r_add || !sum_of(r_add, split->outputs[1], &rr) ||
        !IsColumnBlock(v, rz, inner, 0, units, 2 * units, m.nodes) ||
        !IsColumnBlock(v, rr, inner, 1, units, 2 * units, m.nodes))
      return std::nullopt;
    m.nodes.insert({z_add->id, h_add->id, split->id, rh_mm->id, inner_mm->id, r_mul->id, sig_r_node->id, r_add->id});
    // Keras' recurrent kernel [U, 3U] = [R[:, :2U] | R[:, 2U:]].
    Tensor full(DType::kFloat32, {units, 3 * units});
    for (int64_t row = 0; row < units; ++row) {
      std::memcpy(full.data<float>() + row * 3 * units, rzr_w->data<float>() + row * 2 * units,
                  static_cast<size_t>(2 * units) * sizeof(float));
      std::memcpy(full.data<float>() + row * 3 * units + 2 * units, rh_w->data<float>() + row * units,
                  static_cast<size_t>(units) * sizeof(float));
    }
    const LinearSum s{s_in.kernel, &full, s_in.bias, h_in};
    if (!SetWeights(m, s, nullptr, {0, 1, 2})) return std::nullopt;
    m.h_in = h_in;
    return m;
  }
  if (!MatchLinearSum(v, inner, x_t, s_rec, m.nodes) || s_rec.kernel || !s_rec.recurrent || !s_rec.bias)
    return std::nullopt;
  if (!IsColumnBlock(v, rz, inner, 0, units, 3 * units, m.nodes)) return std::nullopt;
  // r = Sigmoid(xr + rr); hh's argument = xh + r * rh.
  ValueId sig_r = kNoValue, rh = kNoValue;
  const Node* r_mul = Commutative(v, r_times, "Mul", is_sigmoid, &sig_r, &rh);
  if (!r_mul || !IsColumnBlock(v, rh, inner, 2, units, 3 * units, m.nodes)) return std::nullopt;
  const Node* sig_r_node = v.Op(sig_r, "Sigmoid", 1);
  const Node* r_add = v.Op(sig_r_node->inputs[0], "Add", 2);
  ValueId rr = kNoValue;
  if (!r_add || !sum_of(r_add, split->outputs[1], &rr) || !IsColumnBlock(v, rr, inner, 1, units, 3 * units, m.nodes))
    return std::nullopt;
  m.nodes.insert({z_add->id, h_add->id, split->id, r_mul->id, sig_r_node->id, r_add->id});
  LinearSum s{s_in.kernel, s_rec.recurrent, s_in.bias, s_rec.h_in};
  if (!SetWeights(m, s, s_rec.bias, {0, 1, 2})) return std::nullopt;
  m.h_in = s_rec.h_in;
  if (v.graph().inputs()[static_cast<size_t>(m.h_in)] != h_prev) return std::nullopt;
  return m;
}

// SimpleRNN: h' = Tanh(x_t K + b + h R).
std::optional<Cell> MatchSimpleRnn(const View& v, ValueId h_out, ValueId x_t) {
  Cell m;
  m.op = "RNN";
  const Node* tanh = v.Op(h_out, "Tanh", 1);
  if (!tanh) return std::nullopt;
  m.nodes.insert(tanh->id);
  LinearSum s;
  if (!MatchLinearSum(v, tanh->inputs[0], x_t, s, m.nodes) || !SetWeights(m, s, nullptr, {0})) return std::nullopt;
  m.h_in = s.h_in;
  return m;
}

std::optional<Cell> MatchCell(const View& v, ValueId h_out, ValueId x_t) {
  if (auto c = MatchLstm(v, h_out, x_t)) return c;
  if (auto c = MatchGru(v, h_out, x_t)) return c;
  return MatchSimpleRnn(v, h_out, x_t);
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
      if (graph.node(id).op == "While" && !graph.node(id).removed) changed |= Fuse(graph, id);
    return changed;
  }

 private:
  static bool Fuse(Graph& g, NodeId loop_id) {
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
    auto cell = MatchCell(bv, set->inputs[2], get->outputs[0]);
    if (!cell) return false;
    if (body.outputs()[static_cast<size_t>(cell->h_in)] != set->inputs[2] ||
        (cell->c_in >= 0 && body.outputs()[static_cast<size_t>(cell->c_in)] != cell->c_out))
      return false;
    // time' = time + 1 and counter' = counter + 1.
    auto increments = [&](int i) {
      ValueId in = kNoValue, one = kNoValue;
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
    // Every node the body's results depend on is part of the pattern (nodes nothing reads are
    // ignored: dead-code elimination runs after this pass).
    std::vector<ValueId> stack(body.outputs().begin(), body.outputs().end());
    std::set<NodeId> needed;
    while (!stack.empty()) {
      const Node* p = body.Producer(stack.back());
      stack.pop_back();
      if (!p || !needed.insert(p->id).second) continue;
      stack.insert(stack.end(), p->inputs.begin(), p->inputs.end());
    }
    for (NodeId id : needed)
      if (body.node(id).op != "Constant" && !matched.count(id)) return false;
    // cond: LogicalAnd(Less(counter, L1), Less(time, L2)), the limits constants or invariants.
    if (cond.outputs().size() != 1) return false;
    const Node* both = cv.Op(cond.outputs()[0], "LogicalAnd", 2);
    if (!both) return false;
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
    const int64_t units = cell->units;
    if (!xs_shape.rank_known || xs_shape.rank() != 3 || xs_shape.dims[2] != cell->input_size ||
        g.value(loop.inputs[static_cast<size_t>(xs)]).dtype != DType::kFloat32)
      return false;
    for (int s : {cell->h_in, cell->c_in}) {
      if (s < 0) continue;
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
    Emit(g, loop_id, xs, list, sequences, *cell);
    return true;
  }

  static void Emit(Graph& g, NodeId loop_id, int xs, int list, bool sequences, const Cell& cell) {
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
    const std::string kind = cell.op;
    const ValueId w = g.AddConstant(names.Make(base + "/" + kind + "_W"), cell.w);
    const ValueId r = g.AddConstant(names.Make(base + "/" + kind + "_R"), cell.r);
    const ValueId b = g.AddConstant(names.Make(base + "/" + kind + "_B"), cell.b);
    std::vector<ValueId> inputs{ins[static_cast<size_t>(xs)], w, r, b};
    std::vector<std::string> optional{"B", "initial_h"};
    inputs.push_back(node("ExpandDims", "initial_h", {ins[static_cast<size_t>(cell.h_in)], axis(0, "h_axis")}, {})[0]);
    if (cell.c_in >= 0) {
      inputs.push_back(
          node("ExpandDims", "initial_c", {ins[static_cast<size_t>(cell.c_in)], axis(0, "c_axis")}, {})[0]);
      optional.push_back("initial_c");
    }
    AttrMap attrs;
    attrs.Set("hidden_size", cell.units);
    attrs.Set("optional_inputs", std::move(optional));
    if (cell.linear_before_reset) attrs.Set("linear_before_reset", true);
    const std::vector<ValueId> y = node(cell.op, kind, std::move(inputs), std::move(attrs), cell.c_in >= 0 ? 3 : 2);
    auto squeeze = [&](ValueId v, int64_t a, const std::string& suffix) {
      AttrMap attrs;
      attrs.Set("axes", std::vector<int64_t>{a});
      return node("Squeeze", suffix, {v}, std::move(attrs))[0];
    };
    const ValueId list_value = sequences ? squeeze(y[0], 1, "sequence") : y[1];
    g.ReplaceAllUses(outs[static_cast<size_t>(list)], list_value);
    g.ReplaceAllUses(outs[static_cast<size_t>(cell.h_in)], squeeze(y[1], 0, "h"));
    if (cell.c_in >= 0) g.ReplaceAllUses(outs[static_cast<size_t>(cell.c_in)], squeeze(y[2], 0, "c"));
    g.node(loop_id).removed = true;
  }
};

}  // namespace

std::unique_ptr<Pass> MakeKerasRnnFusion() { return std::make_unique<KerasRnnFusion>(); }

}  // namespace kiln::ir
