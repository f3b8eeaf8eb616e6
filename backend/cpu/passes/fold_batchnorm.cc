// cpu-fold-batchnorm: folds per-channel affine ops that follow a convolution or matmul with
// constant weights into the weights and the bias:
//   BatchNorm (inference): s = scale / sqrt(variance + epsilon), t = offset - mean * s
//   Mul(y, c) / Mul(c, y): s = c, t = 0      Div(y, c): s = 1 / c, t = 0
//   Add(y, c) / Add(c, y): s = 1, t = c      Sub(y, c): s = 1, t = -c
// with c a constant broadcast along the output-channel axis only (a scalar, [C], [C,1,1] for
// NCHW, [1,1,1,C], ...). Then W'[..., o] = W[..., o] * s[o] and b'[o] = b[o] * s[o] + t[o]
// (computed in double, rounded once). The rewritten node keeps its IR op (Conv2D,
// DepthwiseConv2D, MatMul) with the new constants as filter and bias inputs.
#include <cmath>
#include <optional>

#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"
#include "ir/ops/nn_util.h"

namespace kiln::backend::cpu {
namespace {

struct Target {
  int out_rank = 0;
  int channel_axis = 0;
  int64_t channels = 0;
};

std::optional<Target> FoldTarget(const ir::Graph& g, const ir::Node& n) {
  if (n.op != "Conv2D" && n.op != "DepthwiseConv2D" && n.op != "MatMul") return std::nullopt;
  if (n.outputs.size() != 1 || n.inputs.size() < 2) return std::nullopt;
  const ir::Value& out = g.value(n.outputs[0]);
  if (out.dtype != DType::kFloat32 && out.dtype != DType::kFloat64) return std::nullopt;
  const Tensor* w = g.ConstantOf(n.inputs[1]);
  if (!w || w->dtype() != out.dtype) return std::nullopt;
  if (n.inputs.size() > 2) {
    const Tensor* b = g.ConstantOf(n.inputs[2]);
    if (!b || b->dtype() != out.dtype || b->rank() != 1) return std::nullopt;
  }
  Target t;
  if (n.op == "MatMul") {
    if (w->rank() != 2) return std::nullopt;
    t.out_rank = 2;
    t.channel_axis = 1;
    t.channels = w->dim(n.attrs.GetOr<bool>("transpose_b", false) ? 0 : 1);
  } else {
    if (w->rank() != 4) return std::nullopt;
    bool channels_last = true;
    const std::string format = n.attrs.GetOr<std::string>("data_format", "NHWC");
    if (format.size() != 4 || !ir::nn::ChannelsLast(format, &channels_last)) return std::nullopt;
    t.out_rank = 4;
    t.channel_axis = channels_last ? 3 : 1;
    t.channels = n.op == "Conv2D" ? w->dim(3) : w->dim(2) * w->dim(3);
  }
  if (n.inputs.size() > 2 && g.ConstantOf(n.inputs[2])->dim(0) != t.channels) return std::nullopt;
  return t;
}

// The per-channel values of a constant broadcast along the channel axis only.
std::optional<std::vector<double>> PerChannel(const Tensor* c, const Target& t) {
  if (!c || !IsFloating(c->dtype()) || c->rank() > t.out_rank) return std::nullopt;
  int64_t channel_dim = 1;
  for (int j = 0; j < c->rank(); ++j) {
    const int axis = t.out_rank - c->rank() + j;
    const int64_t d = c->dim(j);
    if (axis == t.channel_axis) {
      if (d != 1 && d != t.channels) return std::nullopt;
      channel_dim = d;
    } else if (d != 1) {
      return std::nullopt;
    }
  }
  std::vector<double> v(static_cast<size_t>(t.channels));
  for (int64_t o = 0; o < t.channels; ++o) v[static_cast<size_t>(o)] = c->DoubleAt(channel_dim == 1 ? 0 : o);
  return v;
}

struct Affine {
  std::vector<double> scale, shift;
};

std::optional<Affine> ConsumerAffine(const ir::Graph& g, const std::vector<std::vector<ir::NodeId>>& consumers,
                                     const ir::Node& c, ir::ValueId y, const Target& t) {
  const size_t n = static_cast<size_t>(t.channels);
  if (c.outputs.empty() || g.value(c.outputs[0]).dtype != g.value(y).dtype) return std::nullopt;
  if (c.op == "BatchNorm") {
    if (c.inputs.size() != 5 || c.inputs[0] != y || c.attrs.GetOr<bool>("training", false)) return std::nullopt;
    for (size_t i = 1; i < c.outputs.size(); ++i)
      if (!consumers[static_cast<size_t>(c.outputs[i])].empty() || ir::IsGraphOutput(g, c.outputs[i]))
        return std::nullopt;
    int64_t axis = c.attrs.GetOr<int64_t>("axis", -1);
    if (axis < 0) axis += t.out_rank;
    if (axis != t.channel_axis) return std::nullopt;
    const double eps = c.attrs.GetOr<double>("epsilon", 1e-4);
    const Tensor* p[4];
    for (int i = 0; i < 4; ++i) {
      p[i] = g.ConstantOf(c.inputs[static_cast<size_t>(i + 1)]);
      if (!p[i] || !IsFloating(p[i]->dtype()) || p[i]->num_elements() != t.channels) return std::nullopt;
    }
    Affine a{std::vector<double>(n), std::vector<double>(n)};
    for (size_t o = 0; o < n; ++o) {
      const int64_t i = static_cast<int64_t>(o);
      const double s = p[0]->DoubleAt(i) / std::sqrt(p[3]->DoubleAt(i) + eps);
      a.scale[o] = s;
      a.shift[o] = p[1]->DoubleAt(i) - p[2]->DoubleAt(i) * s;
    }
    return a;
  }
  if (c.inputs.size() != 2 || (c.inputs[0] == y) == (c.inputs[1] == y)) return std::nullopt;
  const bool y_first = c.inputs[0] == y;
  const auto v = PerChannel(g.ConstantOf(c.inputs[y_first ? 1 : 0]), t);
  if (!v) return std::nullopt;
  Affine a{std::vector<double>(n, 1.0), std::vector<double>(n, 0.0)};
  if (c.op == "Mul") {
    a.scale = *v;
  } else if (c.op == "Div" && y_first) {
    for (size_t o = 0; o < n; ++o) a.scale[o] = 1.0 / (*v)[o];
  } else if (c.op == "Add") {
    a.shift = *v;
  } else if (c.op == "Sub" && y_first) {
    for (size_t o = 0; o < n; ++o) a.shift[o] = -(*v)[o];
  } else {
    return std::nullopt;
  }
  return a;
}

Tensor FromDoubles(DType dtype, Shape shape, const std::vector<double>& v) {
  Tensor t(dtype, std::move(shape));
  if (dtype == DType::kFloat32) {
    float* p = t.data<float>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<float>(v[i]);
  } else {
    double* p = t.data<double>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = v[i];
  }
  return t;
}

class FoldBatchNormPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-fold-batchnorm"; }

  bool Run(ir::Graph& g) override {
    auto consumers = g.Consumers();
    ir::NameGen names(g);
    bool changed = false;
    const size_t num_nodes = g.nodes().size();  // nodes added below are constants
    for (size_t id = 0; id < num_nodes; ++id) {
      while (true) {
        const ir::Node& n = g.node(static_cast<ir::NodeId>(id));
        if (n.removed) break;
        const auto target = FoldTarget(g, n);
        if (!target) break;
        const ir::ValueId y = n.outputs[0];
        const auto& users = consumers[static_cast<size_t>(y)];
        if (users.size() != 1 || ir::IsGraphOutput(g, y)) break;
        const ir::Node& c = g.node(users[0]);
        const auto affine = ConsumerAffine(g, consumers, c, y, *target);
        if (!affine) break;
        const ir::NodeId consumer_id = c.id;
        const ir::ValueId consumer_out = c.outputs[0];

        // New weights and bias.
        const Tensor& w = *g.ConstantOf(n.inputs[1]);
        const DType dtype = g.value(y).dtype;
        const int64_t channels = target->channels;
        const bool tb = n.op == "MatMul" && n.attrs.GetOr<bool>("transpose_b", false);
        const int64_t inner = tb ? w.dim(1) : 1;
        std::vector<double> nw(static_cast<size_t>(w.num_elements()));
        for (int64_t e = 0; e < w.num_elements(); ++e) {
          const int64_t o = tb ? e / inner : e % channels;
          nw[static_cast<size_t>(e)] = w.DoubleAt(e) * affine->scale[static_cast<size_t>(o)];
        }
        std::vector<double> nb(static_cast<size_t>(channels));
        const Tensor* b = n.inputs.size() > 2 ? g.ConstantOf(n.inputs[2]) : nullptr;
        for (int64_t o = 0; o < channels; ++o) {
          const size_t i = static_cast<size_t>(o);
          nb[i] = (b ? b->DoubleAt(o) : 0.0) * affine->scale[i] + affine->shift[i];
        }
        const std::string base = n.name;
        Tensor w_tensor = FromDoubles(dtype, w.shape(), nw);
        const ir::ValueId new_w = g.AddConstant(names.Make(base + "/folded_filter"), std::move(w_tensor));
        const ir::ValueId new_b = g.AddConstant(names.Make(base + "/folded_bias"), FromDoubles(dtype, {channels}, nb));
        consumers.resize(g.num_values());
        ir::Node& node = g.node(static_cast<ir::NodeId>(id));  // AddConstant may have moved nodes
        node.inputs[1] = new_w;
        if (node.inputs.size() > 2)
          node.inputs[2] = new_b;
        else
          node.inputs.push_back(new_b);
        g.ReplaceAllUses(consumer_out, y);
        g.node(consumer_id).removed = true;
        consumers[static_cast<size_t>(y)] = consumers[static_cast<size_t>(consumer_out)];
        consumers[static_cast<size_t>(consumer_out)].clear();
        ++rewrites_;
        changed = true;
      }
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeFoldBatchNormPass() { return std::make_unique<FoldBatchNormPass>(); }

}  // namespace kiln::backend::cpu
