#include "backend/cpu/cpu_ops.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "backend/cpu/int8.h"
#include "common/name_registry.h"
#include "ir/op_schema.h"
#include "ir/ops/elementwise_unary_ops.h"
#include "ir/ops/nn_util.h"

namespace kiln::backend::cpu {
namespace {

[[noreturn]] void Fail(const ir::Node& node, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' ({}): {}", node.name, node.op, what));
}

std::vector<Shape> InferFusedConv(const ir::Node& node, const std::vector<Shape>& in) {
  return {ComputeConvGeometry(node, in.at(0), in.at(1)).OutputShape()};
}

std::vector<Shape> InferFusedMatMul(const ir::Node& node, const std::vector<Shape>& in) {
  const Shape& a = in.at(0);
  const Shape& b = in.at(1);
  const bool ta = node.attrs.GetOr<bool>("transpose_a", false), tb = node.attrs.GetOr<bool>("transpose_b", false);
  // a: [m, k] (or [k, m] transposed), or rows [..., k] of any rank (not transposed).
  if (a.size() < 2 || b.size() != 2 || (ta && a.size() != 2))
    Fail(node, fmt::format("expected operands [m, k] or [..., k] and [k, n], got {} and {}", ShapeToString(a),
                           ShapeToString(b)));
  const int64_t ka = a[ta ? 0 : a.size() - 1], kb = b[tb ? 1 : 0], n = b[tb ? 0 : 1];
  if (ka != kb) Fail(node, fmt::format("inner dimensions of {} and {} do not match", ShapeToString(a), ShapeToString(b)));
  if (ta) return {{a[1], n}};
  Shape out(a.begin(), a.end() - 1);
  out.push_back(n);
  return {out};
}

std::vector<Shape> InferFusedBatchMatMul(const ir::Node& node, const std::vector<Shape>& in) {
  const Shape& x = in.at(0);
  const Shape& y = in.at(1);
  if (x.size() < 2 || y.size() < 2) Fail(node, fmt::format("expected operands of rank >= 2, got {} and {}", ShapeToString(x), ShapeToString(y)));
  const bool ax = node.attrs.GetOr<bool>("adj_x", false), ay = node.attrs.GetOr<bool>("adj_y", false);
  const size_t rx = x.size(), ry = y.size();
  const int64_t m = x[ax ? rx - 1 : rx - 2], kx = x[ax ? rx - 2 : rx - 1];
  const int64_t ky = y[ay ? ry - 1 : ry - 2], n = y[ay ? ry - 2 : ry - 1];
  if (kx != ky) Fail(node, fmt::format("inner dimensions of {} and {} do not match", ShapeToString(x), ShapeToString(y)));
  const size_t batch = std::max(rx, ry) - 2;
  Shape out(batch + 2);
  for (size_t i = 0; i < batch; ++i) {
    const int64_t dx = i + rx - 2 >= batch ? x[i + rx - 2 - batch] : 1;
    const int64_t dy = i + ry - 2 >= batch ? y[i + ry - 2 - batch] : 1;
    if (dx != dy && dx != 1 && dy != 1)
      Fail(node, fmt::format("batch dimensions of {} and {} cannot be broadcast", ShapeToString(x), ShapeToString(y)));
    out[i] = dx == 1 ? dy : dx;
  }
  out[batch] = m;
  out[batch + 1] = n;
  return {out};
}

std::vector<Shape> InferEltwiseChain(const ir::Node& node, const std::vector<Shape>& in) {
  const Shape& x = in.at(0);
  for (size_t i = 1; i < in.size(); ++i) {
    const Shape& o = in[i];
    bool ok = o.size() <= x.size();
    for (size_t d = 0; ok && d < o.size(); ++d) {
      const int64_t od = o[o.size() - 1 - d], xd = x[x.size() - 1 - d];
      ok = od == 1 || od == xd;
    }
    if (!ok) Fail(node, fmt::format("operand {} of shape {} does not broadcast to {}", i, ShapeToString(o), ShapeToString(x)));
  }
  return {x};
}

std::vector<Shape> InferSameShape(const ir::Node&, const std::vector<Shape>& in) { return {in.at(0)}; }

// Numpy broadcasting of every input (cpu.Select's x, y and cond; cpu.Binary's a and b).
std::vector<Shape> InferBroadcast(const ir::Node& node, const std::vector<Shape>& in) {
  size_t rank = 0;
  for (const Shape& s : in) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const Shape& s : in)
    for (size_t d = 0; d < s.size(); ++d) {
      int64_t& o = out[rank - s.size() + d];
      if (s[d] == o || s[d] == 1) continue;
      if (o != 1) {
        std::vector<std::string> shapes;
        for (const Shape& t : in) shapes.push_back(ShapeToString(t));
        const std::string last = shapes.back();
        shapes.pop_back();
        Fail(node, fmt::format("shapes {} and {} do not broadcast", fmt::join(shapes, ", "), last));
      }
      o = s[d];
    }
  return {out};
}

// The same on symbolic shapes: the last input's broadcast with that of the ones before it.
void InferBroadcastSymbolic(ir::InferContext& ctx) {
  ir::SymShape out = ctx.input_shape(0);
  for (int i = 1; i < ctx.num_inputs(); ++i)
    out = i == 1 ? ir::BroadcastShapes(ctx, out, ctx.input_shape(1)) : ir::BroadcastShapes(ctx, ctx.input_shape(i), out);
  ctx.SetOutput(0, ctx.input_dtype(0), out);
}

std::vector<Shape> InferTranspose(const ir::Node& node, const std::vector<Shape>& in) {
  const Shape& x = in.at(0);
  const auto perm = node.attrs.Get<std::vector<int64_t>>("perm");
  if (perm.size() != x.size()) Fail(node, fmt::format("perm has {} entries for an input of rank {}", perm.size(), x.size()));
  Shape out;
  std::vector<bool> seen(x.size(), false);
  for (int64_t a : perm) {
    if (a < 0 || a >= static_cast<int64_t>(x.size()) || seen[static_cast<size_t>(a)]) Fail(node, "perm is not a permutation");
    seen[static_cast<size_t>(a)] = true;
    out.push_back(x[static_cast<size_t>(a)]);
  }
  return {out};
}

std::vector<Shape> InferPad(const ir::Node& node, const std::vector<Shape>& in) {
  const Shape& x = in.at(0);
  const auto pads = node.attrs.Get<std::vector<int64_t>>("pads");
  if (pads.size() != 2 * x.size()) Fail(node, fmt::format("{} pads for an input of rank {}", pads.size(), x.size()));
  Shape out;
  for (size_t d = 0; d < x.size(); ++d) {
    int64_t m = 0;
    if (pads[2 * d] < 0 || pads[2 * d + 1] < 0 || __builtin_add_overflow(x[d], pads[2 * d], &m) ||
        __builtin_add_overflow(m, pads[2 * d + 1], &m))
      Fail(node, fmt::format("pads [{}, {}] of dim {} are negative or too large", pads[2 * d], pads[2 * d + 1], d));
    out.push_back(m);
  }
  return {out};
}

std::vector<Shape> InferReduce(const ir::Node& node, const std::vector<Shape>& in) {
  const Shape& x = in.at(0);
  const auto axes = node.attrs.Get<std::vector<int64_t>>("axes");
  const bool keep = node.attrs.GetOr<bool>("keep_dims", false);
  std::vector<bool> reduced(x.size(), false);
  for (int64_t a : axes) {
    if (a < 0 || a >= static_cast<int64_t>(x.size())) Fail(node, fmt::format("axis {} is out of range for rank {}", a, x.size()));
    reduced[static_cast<size_t>(a)] = true;
  }
  Shape out;
  for (size_t d = 0; d < x.size(); ++d) {
    if (!reduced[d]) out.push_back(x[d]);
    else if (keep) out.push_back(1);
  }
  return {out};
}

// cpu.RNN / cpu.GRU / cpu.LSTM: the IR op's output layout (ir/ops/nn_recurrent.cc) for X
// [seq, batch, input] (layout 0) or [batch, seq, input] (layout 1): Y, Y_h, and Y_c for LSTM.
std::vector<ir::Dim> RecurrentY(const ir::Node& node, ir::Dim seq, ir::Dim batch) {
  const int64_t nd = node.attrs.GetOr<std::string>("direction", "forward") == "bidirectional" ? 2 : 1;
  const int64_t h = node.attrs.Get<int64_t>("hidden_size");
  if (node.attrs.GetOr<int64_t>("layout", 0) == 1) return {batch, seq, nd, h};
  return {seq, nd, batch, h};
}

std::vector<ir::Dim> RecurrentState(const ir::Node& node, ir::Dim batch) {
  const int64_t nd = node.attrs.GetOr<std::string>("direction", "forward") == "bidirectional" ? 2 : 1;
  const int64_t h = node.attrs.Get<int64_t>("hidden_size");
  if (node.attrs.GetOr<int64_t>("layout", 0) == 1) return {batch, nd, h};
  return {nd, batch, h};
}

size_t RecurrentOutputs(const ir::Node& node) { return node.op == kLstm ? 3 : 2; }

std::vector<Shape> InferRecurrent(const ir::Node& node, const std::vector<Shape>& in) {
  const Shape& x = in.at(0);
  if (x.size() != 3) Fail(node, fmt::format("expected X of rank 3, got {}", ShapeToString(x)));
  const bool batch_major = node.attrs.GetOr<int64_t>("layout", 0) == 1;
  const int64_t seq = x[batch_major ? 1 : 0], batch = x[batch_major ? 0 : 1];
  const std::vector<ir::Dim> y = RecurrentY(node, seq, batch), state = RecurrentState(node, batch);
  std::vector<Shape> out = {Shape(y.begin(), y.end())};
  for (size_t i = 1; i < RecurrentOutputs(node); ++i) out.push_back(Shape(state.begin(), state.end()));
  return out;
}

// Keeps X's symbolic seq / batch dims (a dynamic batch stays a symbol downstream).
void InferRecurrentSymbolic(ir::InferContext& ctx) {
  const ir::Node& node = ctx.node();
  const DType t = ctx.input_dtype(0);
  const ir::SymShape& x = ctx.input_shape(0);
  if (static_cast<size_t>(ctx.num_outputs()) != RecurrentOutputs(node))
    ctx.Fail(fmt::format("expected {} outputs, got {}", RecurrentOutputs(node), ctx.num_outputs()));
  if (!x.rank_known) {
    for (int i = 0; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, t, ir::SymShape::Unknown());
    return;
  }
  if (x.rank() != 3) ctx.Fail(fmt::format("expected X of rank 3, got {}", ctx.graph().ShapeToString(x)));
  const bool batch_major = node.attrs.GetOr<int64_t>("layout", 0) == 1;
  const ir::Dim seq = x.dims[batch_major ? 1 : 0], batch = x.dims[batch_major ? 0 : 1];
  ctx.SetOutput(0, t, ir::SymShape::Of(RecurrentY(node, seq, batch)));
  for (int i = 1; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, t, ir::SymShape::Of(RecurrentState(node, batch)));
}

std::vector<Shape> InferPool2D(const ir::Node& node, const std::vector<Shape>& in) {
  return {ComputePoolGeometry(node, in.at(0)).OutputShape()};
}

const NameRegistry<CpuOpDef>& Table() {
  static const NameRegistry<CpuOpDef> table = [] {
    NameRegistry<CpuOpDef> t("CPU backend op");
    auto add = [&](CpuOpDef def) {
      const std::string name = def.name;
      t.Add(name, std::move(def));
    };
    add({std::string(kFusedConv2D), 3, -1, InferFusedConv, false, DType::kFloat32});
    add({std::string(kFusedMatMul), 3, -1, InferFusedMatMul, false, DType::kFloat32});
    add({std::string(kFusedBatchMatMul), 2, -1, InferFusedBatchMatMul, false, DType::kFloat32});
    add({std::string(kEltwiseChain), 1, -1, InferEltwiseChain, /*keeps_input_shape=*/true});
    add({std::string(kQuantizeS8), 1, 1, InferSameShape, /*keeps_input_shape=*/true, DType::kInt8});
    add({std::string(kPool2D), 1, 1, InferPool2D});
    add({std::string(kTranspose), 1, 1, InferTranspose});
    add({std::string(kSelect), 3, 3, InferBroadcast, false, DType::kInvalid, false, InferBroadcastSymbolic});
    add({std::string(kCast), 1, 1, InferSameShape, /*keeps_input_shape=*/true, DType::kFloat32});
    add({std::string(kBinary), 2, 2, InferBroadcast, false, DType::kInvalid, false, InferBroadcastSymbolic});
    add({std::string(kPad), 1, 2, InferPad});
    add({std::string(kSoftmax), 1, 1, InferSameShape, /*keeps_input_shape=*/true});
    add({std::string(kLayerNorm), 1, 3, InferSameShape, /*keeps_input_shape=*/true});
    add({std::string(kReduce), 1, 1, InferReduce});
    add({std::string(kQuantDequant), 1, 1, InferSameShape, /*keeps_input_shape=*/true});
    // Inputs as the IR ops: X, W, R and up to 3 (RNN, GRU) or 5 (LSTM) optional inputs.
    for (std::string_view op : {kRnn, kGru, kLstm})
      add({std::string(op), 3, op == kLstm ? 8 : 6, InferRecurrent, false, DType::kInvalid, /*multi_output=*/true,
           InferRecurrentSymbolic});
    return t;
  }();
  return table;
}

// The IR shape function of every op above: its concrete shape function when all input shapes
// are static; otherwise input 0's shape for ops that keep it, else unknown shapes.
void InferCpuOp(ir::InferContext& ctx) {
  const CpuOpDef& def = *FindCpuOp(ctx.node().op);
  if (def.infer_symbolic) {
    def.infer_symbolic(ctx);
    return;
  }
  DType dtype = def.output_dtype == DType::kInvalid ? ctx.input_dtype(0) : def.output_dtype;
  if (ctx.node().attrs.GetOr<bool>("int8_output", false))
    dtype = ctx.node().attrs.GetOr<bool>("unsigned_output", false) ? DType::kUInt8 : DType::kInt8;
  if (ctx.node().op == kQuantizeS8 && ctx.node().attrs.GetOr<bool>("unsigned", false)) dtype = DType::kUInt8;
  if (ctx.node().op == kEltwiseChain && ctx.node().attrs.Has("quantize_output")) {
    const QuantizeParams q =
        QuantizeParamsFromValues(ctx.node().attrs.Get<std::vector<double>>("quantize_output"), ctx.node());
    dtype = q.is_unsigned ? DType::kUInt8 : DType::kInt8;
  }
  std::vector<Shape> shapes;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    std::optional<Shape> s = ctx.input_shape(i).ToStatic();
    if (!s) break;
    shapes.push_back(std::move(*s));
  }
  if (static_cast<int>(shapes.size()) == ctx.num_inputs()) {
    const std::vector<Shape> outs = def.infer(ctx.node(), shapes);
    for (int i = 0; i < ctx.num_outputs(); ++i) {
      const Shape& o = outs.at(static_cast<size_t>(i));
      ctx.SetOutput(i, dtype, ir::SymShape::Of(std::vector<ir::Dim>(o.begin(), o.end())));
    }
    return;
  }
  for (int i = 0; i < ctx.num_outputs(); ++i)
    ctx.SetOutput(i, dtype, def.keeps_input_shape ? ctx.input_shape(0) : ir::SymShape::Unknown());
}

void AddCpuOps(ir::OpRegistry& registry) {
  for (const std::string& name : Table().Names()) {
    const CpuOpDef& def = *Table().Find(name);
    registry.Add(ir::OpSchema{name, def.min_inputs, def.max_inputs, &InferCpuOp, /*foldable=*/false});
  }
}

constexpr std::pair<PostOpKind, std::string_view> kPostOpNames[] = {
    {PostOpKind::kRelu, "relu"},   {PostOpKind::kLeakyRelu, "leaky_relu"},
    {PostOpKind::kRelu6, "relu6"}, {PostOpKind::kSigmoid, "sigmoid"},
    {PostOpKind::kTanh, "tanh"},   {PostOpKind::kElu, "elu"},
    {PostOpKind::kSwish, "swish"}, {PostOpKind::kLinear, "linear"},
    {PostOpKind::kAdd, "add"},     {PostOpKind::kClip, "clip"},
    {PostOpKind::kGelu, "gelu"},   {PostOpKind::kRound, "round"},
};

}  // namespace

std::string_view PostOpName(PostOpKind kind) {
  for (const auto& [k, name] : kPostOpNames)
    if (k == kind) return name;
  return "?";
}

std::optional<PostOpKind> PostOpFromName(std::string_view name) {
  for (const auto& [k, n] : kPostOpNames)
    if (n == name) return k;
  return std::nullopt;
}

std::vector<PostOp> ReadPostOps(const ir::Node& node) {
  const auto names = node.attrs.GetOr<std::vector<std::string>>("post_ops", {});
  const auto alpha = node.attrs.GetOr<std::vector<double>>("post_op_alpha", {});
  const auto beta = node.attrs.GetOr<std::vector<double>>("post_op_beta", {});
  if (alpha.size() != names.size() || beta.size() != names.size())
    throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): post-op attributes have different lengths", node.name, node.op));
  std::vector<PostOp> ops;
  for (size_t i = 0; i < names.size(); ++i) {
    auto kind = PostOpFromName(names[i]);
    if (!kind) throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): unknown post-op '{}'", node.name, node.op, names[i]));
    ops.push_back({*kind, alpha[i], beta[i]});
  }
  return ops;
}

void WritePostOps(ir::AttrMap& attrs, const std::vector<PostOp>& post_ops) {
  std::vector<std::string> names;
  std::vector<double> alpha, beta;
  for (const PostOp& p : post_ops) {
    names.emplace_back(PostOpName(p.kind));
    alpha.push_back(p.alpha);
    beta.push_back(p.beta);
  }
  attrs.Set("post_ops", names);
  attrs.Set("post_op_alpha", alpha);
  attrs.Set("post_op_beta", beta);
}

float ApplyPostOp(const PostOp& op, float x) {
  namespace ew = ir::elementwise;
  ew::State st;
  switch (op.kind) {
    case PostOpKind::kRelu:
      return ew::Relu::Apply<float>(x, st);
    case PostOpKind::kLeakyRelu:
      st.param = op.alpha;
      return ew::LeakyRelu::Apply<float>(x, st);
    case PostOpKind::kRelu6:
      return ew::Relu6::Apply<float>(x, st);
    case PostOpKind::kSigmoid:
      return ew::Sigmoid::Apply<float>(x, st);
    case PostOpKind::kTanh:
      return ew::Tanh::Apply<float>(x, st);
    case PostOpKind::kElu:
      return ew::Elu::Apply<float>(x, st);
    case PostOpKind::kSwish:
      return x * ew::Sigmoid::Apply<float>(static_cast<float>(op.alpha) * x, st);
    case PostOpKind::kGelu:
      return ew::Gelu::Apply<float>(x, st);
    case PostOpKind::kRound:
      return ew::Round::Apply<float>(x, st);
    case PostOpKind::kLinear: return static_cast<float>(op.alpha) * x + static_cast<float>(op.beta);
    case PostOpKind::kClip: {  // as the Clip reference kernel: min with the upper bound first
      const float lo = static_cast<float>(op.alpha), hi = static_cast<float>(op.beta);
      const float m = hi < x ? hi : x;
      return m < lo ? lo : m;
    }
    case PostOpKind::kAdd: break;
  }
  throw Error(ErrorCode::kInternal, "ApplyPostOp: the add post-op is not elementwise");
}

int FirstAddInput(const ir::Node& node) { return node.op == kFusedBatchMatMul ? 2 : 3; }

const CpuOpDef* FindCpuOp(std::string_view name) { return Table().Find(name); }

void RegisterCpuOps() { ir::RegisterBackendOps("cpu", &AddCpuOps); }

Shape ConvGeometry::OutputShape() const { return channels_last ? Shape{n, oh, ow, oc} : Shape{n, oc, oh, ow}; }

namespace {
void SetWindow(const ir::Node& node, ConvGeometry* g);
}  // namespace

ConvGeometry ComputeConvGeometry(const ir::Node& node, const Shape& input, const Shape& filter) {
  ConvGeometry g;
  const std::string format = node.attrs.GetOr<std::string>("data_format", "NHWC");
  if (!ir::nn::ChannelsLast(format, &g.channels_last) || format.size() != 4)
    Fail(node, fmt::format("unsupported data_format '{}'", format));
  if (input.size() != 4 || filter.size() != 4)
    Fail(node, fmt::format("expected rank-4 input and filter, got {} and {}", ShapeToString(input), ShapeToString(filter)));
  g.n = input[0];
  g.c = g.channels_last ? input[3] : input[1];
  g.h = g.channels_last ? input[1] : input[2];
  g.w = g.channels_last ? input[2] : input[3];
  g.kh = filter[0];
  g.kw = filter[1];
  g.ic = filter[2];
  g.oc = filter[3];
  if (g.ic <= 0 || g.c % g.ic != 0)
    Fail(node, fmt::format("input channels ({}) must be a multiple of the filter's input channels ({})", g.c, g.ic));
  g.groups = g.c / g.ic;
  if (g.groups == 0 || g.oc % g.groups != 0)
    Fail(node, fmt::format("filter output channels ({}) must be a multiple of the group count ({})", g.oc, g.groups));
  SetWindow(node, &g);
  return g;
}

ConvGeometry ComputePoolGeometry(const ir::Node& node, const Shape& input) {
  ConvGeometry g;
  const std::string format = node.attrs.GetOr<std::string>("data_format", "NHWC");
  if (format != "NHWC" && format != "NCHW") Fail(node, fmt::format("unsupported data_format '{}'", format));
  g.channels_last = format == "NHWC";
  if (input.size() != 4) Fail(node, fmt::format("expected a 4-D input, got {}", ShapeToString(input)));
  g.n = input[0];
  g.c = g.oc = g.ic = g.channels_last ? input[3] : input[1];
  g.h = g.channels_last ? input[1] : input[2];
  g.w = g.channels_last ? input[2] : input[3];
  const auto ksize = node.attrs.GetOr<std::vector<int64_t>>("ksize", {});
  if (ksize.size() != 2 || ksize[0] <= 0 || ksize[1] <= 0) Fail(node, "expected 2 positive ksize values");
  g.kh = ksize[0];
  g.kw = ksize[1];
  SetWindow(node, &g);
  return g;
}

namespace {

// Output size and padding of a 2-D window op from its strides / dilations / padding / pads.
void SetWindow(const ir::Node& node, ConvGeometry* out) {
  ConvGeometry& g = *out;
  const auto strides = node.attrs.GetOr<std::vector<int64_t>>("strides", {1, 1});
  const auto dilations = node.attrs.GetOr<std::vector<int64_t>>("dilations", {1, 1});
  const auto pads = node.attrs.GetOr<std::vector<int64_t>>("pads", {});
  if (strides.size() != 2 || dilations.size() != 2) Fail(node, "expected 2 strides and 2 dilations");
  ir::nn::Padding padding;
  if (!ir::nn::ParsePadding(node.attrs.GetOr<std::string>("padding", "VALID"), &padding)) Fail(node, "unknown padding");
  if (padding == ir::nn::Padding::kExplicit && pads.size() != 4) Fail(node, "EXPLICIT padding needs 4 pads");
  auto pad = [&](size_t i) { return padding == ir::nn::Padding::kExplicit ? pads[i] : 0; };
  ir::nn::WindowDim wh, ww;
  std::string err;
  if (!ir::nn::ComputeWindow(g.h, g.kh, strides[0], dilations[0], padding, pad(0), pad(1), &wh, &err)) Fail(node, err);
  if (!ir::nn::ComputeWindow(g.w, g.kw, strides[1], dilations[1], padding, pad(2), pad(3), &ww, &err)) Fail(node, err);
  g.oh = wh.out;
  g.ow = ww.out;
  g.pad_top = wh.pad_before;
  g.pad_bottom = wh.pad_after;
  g.pad_left = ww.pad_before;
  g.pad_right = ww.pad_after;
  g.stride_h = strides[0];
  g.stride_w = strides[1];
  g.dil_h = dilations[0];
  g.dil_w = dilations[1];
}

}  // namespace

}  // namespace kiln::backend::cpu
