#include "ir/quant_dequant.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace kiln::ir {
namespace {

// The node producing `v`, or nullptr for graph inputs and constants.
const Node* Producer(const Graph& g, ValueId v) {
  const NodeId p = g.value(v).producer;
  if (p == kNoNode) return nullptr;
  const Node& n = g.node(p);
  return n.removed || n.op == "Constant" ? nullptr : &n;
}

// The one-element float constant among a binary node's inputs and the other input.
struct ScalarOperand {
  double value = 0;
  ValueId other = kNoValue;
  bool constant_first = false;
};
std::optional<ScalarOperand> ScalarAndOther(const Graph& g, const Node& n) {
  if (n.inputs.size() != 2) return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    const Tensor* c = g.ConstantOf(n.inputs[static_cast<size_t>(side)]);
    if (c && c->num_elements() == 1 && IsFloating(c->dtype()))
      return ScalarOperand{c->DoubleAt(0), n.inputs[static_cast<size_t>(1 - side)], side == 0};
  }
  return std::nullopt;
}

bool IsF32(const Graph& g, ValueId v) { return g.value(v).dtype == DType::kFloat32; }

// The dequantizing Mul by a positive scale that produces `value`, recorded in q. Returns its
// other operand (the quantized values), or nullopt.
std::optional<ValueId> TakeDequantizing(const Graph& g, ValueId value, QuantDequant& q) {
  const Node* n = Producer(g, value);
  if (!n || n->op != "Mul" || !IsF32(g, value)) return std::nullopt;
  const auto s = ScalarAndOther(g, *n);
  if (!s || !(s->value > 0) || !std::isfinite(s->value)) return std::nullopt;
  q.scale = static_cast<float>(s->value);
  q.nodes.push_back(n->id);
  return s->other;
}

// The scaling into quantized units before the rounding, when `cur` is one: Mul by inv_scale or
// Div by scale (taken as Mul by 1 / scale), recorded in q. Returns the value scaled.
ValueId TakeScaling(const Graph& g, ValueId cur, QuantDequant& q) {
  const Node* m = Producer(g, cur);
  if (!m || (m->op != "Mul" && m->op != "Div")) return cur;
  const auto f = ScalarAndOther(g, *m);
  if (!f || !(f->value > 0) || !std::isfinite(f->value) || (m->op == "Div" && f->constant_first)) return cur;
  q.inv_scale = static_cast<float>(m->op == "Mul" ? f->value : 1.0 / f->value);
  if (m->op == "Div") q.divisor = static_cast<float>(f->value);
  q.nodes.push_back(m->id);
  return f->other;
}

}  // namespace

std::optional<QuantDequant> MatchQuantDequant(const Graph& g, ValueId value) {
  QuantDequant q;
  const std::optional<ValueId> dequantized = TakeDequantizing(g, value, q);
  if (!dequantized) return std::nullopt;
  ValueId cur = *dequantized;
  const Node* n = nullptr;
  // Backwards over rounding, clipping, lossless 8-bit round trips and integer offsets. `offset` is
  // what the ops after the current point add to its value (zero points), so bounds met there are
  // bounds on q plus the offset.
  bool rounded = false, low = false, high = false;
  double qmin = -1e30, qmax = 1e30, offset = 0;
  std::vector<std::pair<DType, double>> casts;  // 8-bit types cast to, with the offset there
  for (int steps = 0; steps < 10; ++steps) {
    n = Producer(g, cur);
    if (!n) break;
    const std::optional<ScalarOperand> scalar = ScalarAndOther(g, *n);
    if (n->op == "Round" && n->inputs.size() == 1 && !rounded) {
      if (offset != 0) break;  // rounding half to even does not commute with an odd offset
      rounded = true;
    } else if (n->op == "Cast" && n->inputs.size() == 1) {
      const DType in = g.value(n->inputs[0]).dtype, out = g.value(n->outputs[0]).dtype;
      const DType narrow = in == DType::kInt8 || in == DType::kUInt8 ? in : out;
      if (narrow != DType::kInt8 && narrow != DType::kUInt8) break;
      casts.emplace_back(narrow, offset);  // lossless when the clipped values fit: checked below
    } else if ((n->op == "Maximum" || n->op == "Minimum") && scalar) {
      if (n->op == "Maximum") {
        qmin = std::max(qmin, scalar->value + offset);
        low = true;
      } else {
        qmax = std::min(qmax, scalar->value + offset);
        high = true;
      }
      cur = scalar->other;
      q.nodes.push_back(n->id);
      continue;
    } else if (n->op == "Clip" && n->inputs.size() == 3 && g.ConstantOf(n->inputs[1]) && g.ConstantOf(n->inputs[2]) &&
               g.ConstantOf(n->inputs[1])->num_elements() == 1 && g.ConstantOf(n->inputs[2])->num_elements() == 1) {
      qmin = std::max(qmin, g.ConstantOf(n->inputs[1])->DoubleAt(0) + offset);
      qmax = std::min(qmax, g.ConstantOf(n->inputs[2])->DoubleAt(0) + offset);
      low = high = true;
    } else if ((n->op == "Add" || n->op == "Sub") && scalar && !(n->op == "Sub" && scalar->constant_first) &&
               (scalar->value == 0 ||
                (!rounded && scalar->value == std::round(scalar->value) && std::fabs(scalar->value) <= 255))) {
      offset += n->op == "Add" ? scalar->value : -scalar->value;
      cur = scalar->other;
      q.nodes.push_back(n->id);
      continue;
    } else {
      break;
    }
    q.nodes.push_back(n->id);
    cur = n->inputs[0];
  }
  if (!rounded || !low || !high || !IsF32(g, cur)) return std::nullopt;
  if (qmin != std::round(qmin) || qmax != std::round(qmax) || qmin > 0 || qmax < 0 || qmin >= qmax || qmax - qmin > 255)
    return std::nullopt;
  for (const auto& [type, at] : casts) {
    const double lo = type == DType::kInt8 ? -128 : 0, hi = type == DType::kInt8 ? 127 : 255;
    if (qmin - at < lo || qmax - at > hi) return std::nullopt;
  }
  q.qmin = static_cast<float>(qmin);
  q.qmax = static_cast<float>(qmax);
  q.source = TakeScaling(g, cur, q);
  return q;
}

std::optional<QuantDequant> MatchFloat8QuantDequant(const Graph& g, ValueId value) {
  QuantDequant q;
  q.format = QuantFormat::kFloat8E4M3;
  q.qmin = -448;
  q.qmax = 448;
  const std::optional<ValueId> dequantized = TakeDequantizing(g, value, q);
  if (!dequantized) return std::nullopt;
  const Node* round = Producer(g, *dequantized);
  if (!round || round->op != "RoundFloat8E4M3" || round->inputs.size() != 1 || !IsF32(g, round->inputs[0]))
    return std::nullopt;
  q.nodes.push_back(round->id);
  q.source = TakeScaling(g, round->inputs[0], q);
  return q;
}

std::optional<GridWeights> RecoverInt8Grid(const Tensor& w, int64_t channels, int64_t inner) {
  if (w.dtype() != DType::kFloat32 || channels <= 0 || inner <= 0) return std::nullopt;
  const int64_t total = w.num_elements();
  if (total % (channels * inner) != 0) return std::nullopt;
  const float* src = w.data<float>();
  auto channel = [&](int64_t e) { return static_cast<size_t>((e / inner) % channels); };
  GridWeights out;
  out.scales.assign(static_cast<size_t>(channels), 0.0f);
  for (int64_t e = 0; e < total; ++e) {
    if (!std::isfinite(src[e])) return std::nullopt;
    float& a = out.scales[channel(e)];
    a = std::max(a, std::fabs(src[e]));
  }
  for (float& s : out.scales) s /= 127.0f;
  out.values = Tensor(DType::kInt8, w.shape());
  int8_t* dst = out.values.data<int8_t>();
  for (int64_t e = 0; e < total; ++e) {
    const float s = out.scales[channel(e)];
    if (s == 0) {
      dst[e] = 0;
      continue;
    }
    const float k = src[e] / s;
    const float r = std::nearbyint(k);
    // Off the grid by more than float rounding of k * s (and of a folded per-channel factor).
    if (std::fabs(k - r) > 1e-3f * std::max(1.0f, std::fabs(r)) || r < -127 || r > 127) return std::nullopt;
    dst[e] = static_cast<int8_t>(r);
  }
  return out;
}

Int8Storage StorageFor(float qmin, float qmax) {
  if (qmin >= -128 && qmax <= 127) return {};
  if (qmin >= 0) return {true, 0};
  return {true, static_cast<int>(-qmin)};
}

}  // namespace kiln::ir
