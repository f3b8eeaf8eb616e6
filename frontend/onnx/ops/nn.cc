// ONNX importers of the nn family, part 1: Conv, ConvTranspose, MaxPool, AveragePool,
// GlobalAveragePool, GlobalMaxPool, MaxUnpool (this file); the rest is in nn_math.cc and
// nn_vision.cc. See docs/onnx/nn.md.
//
// ONNX is channels-first (NCHW / NCDHW) with OIHW weights; the IR convolutions take
// data_format NCHW/NCDHW and HWIO / DHWIO filters, so constant weights are transposed at import
// (an IR Transpose when they are not constant). 1-D convolutions run as 2-D ones with H = 1.
#include <onnx/onnx_pb.h>

#include "ir/graph_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "frontend/onnx/ops/nn_common.h"
#include "kiln/half.h"

namespace kiln::onnxfe {
namespace nn {

std::string Join(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ",")); }

ir::ValueId ScalarOf(ImportContext& ctx, DType dtype, double value, const std::string& suffix) {
  if (!IsNumeric(dtype)) ctx.Unsupported(fmt::format("dtype {} is not supported here", DTypeName(dtype)));
  return ctx.Constant(ScalarTensor(dtype, value), suffix);
}

ir::ValueId TransposeOf(ImportContext& ctx, ir::ValueId x, const std::vector<int64_t>& perm, const std::string& suffix) {
  if (const Tensor* c = ctx.graph().ConstantOf(x); c && c->dtype() != DType::kString && c->rank() == static_cast<int>(perm.size()))
    return ctx.Constant(ir::HostTranspose(*c, perm), suffix);
  return ctx.Emit1("Transpose", {x, ctx.ConstInt64(perm, false, suffix + "_perm")}, {}, suffix);
}

int RequireRank(ImportContext& ctx, int i, const std::string& what) {
  const ir::SymShape s = ctx.input_shape(i);
  if (!s.rank_known) ctx.Unsupported(fmt::format("{} (input {}) must have a known rank", what, i));
  return s.rank();
}

std::vector<int64_t> StaticDims(ImportContext& ctx, int i, int first, const std::string& why) {
  const ir::SymShape s = ctx.input_shape(i);
  if (!s.rank_known) ctx.Unsupported(fmt::format("input {} must have a known shape ({})", i, why));
  std::vector<int64_t> out;
  for (int d = first; d < s.rank(); ++d) {
    if (!ir::IsStatic(s.dims[static_cast<size_t>(d)]))
      ctx.Unsupported(fmt::format("dim {} of input {} must be static ({}), got shape {}", d, i, why,
                                  ctx.graph().ShapeToString(s)));
    out.push_back(s.dims[static_cast<size_t>(d)]);
  }
  return out;
}

ir::ValueId Cast(ImportContext& ctx, ir::ValueId x, DType to, const std::string& suffix) {
  if (ctx.graph().value(x).dtype == to) return x;
  return ctx.Emit1("Cast", {x}, Attrs({{"to", to}, {"truncate", false}}), suffix);
}

}  // namespace nn

namespace {

using nn::Attrs;
using nn::Join;

// ---- window attributes shared by Conv, ConvTranspose and the pools ----

struct Window {
  int spatial = -1;  // -1: not known from the attributes (validate-only mode)
  std::string auto_pad;
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: ONNX order [b0, b1, ..., e0, e1, ...]
};

void CheckLen(ImportContext& ctx, Window& w, const std::vector<int64_t>& v, size_t per_dim, const char* name) {
  if (v.empty()) return;
  if (v.size() % per_dim != 0) ctx.Invalid(fmt::format("{} {} must have {} values per spatial dim", name, Join(v), per_dim));
  const int n = static_cast<int>(v.size() / per_dim);
  if (w.spatial >= 0 && w.spatial != n)
    ctx.Invalid(fmt::format("{} {} does not match {} spatial dims", name, Join(v), w.spatial));
  w.spatial = n;
}

// Reads auto_pad, kernel_shape, strides, dilations (when `has_dilations`) and pads.
Window ReadWindow(ImportContext& ctx, bool has_dilations, bool kernel_required) {
  Window w;
  w.auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" && w.auto_pad != "VALID")
    ctx.Invalid(fmt::format("auto_pad '{}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", w.auto_pad));
  if (kernel_required && !ctx.has_attr("kernel_shape")) ctx.Invalid("attribute 'kernel_shape' is required");
  w.kernel = ctx.attr_ints("kernel_shape");
  w.strides = ctx.attr_ints("strides");
  w.dilations = has_dilations ? ctx.attr_ints("dilations") : std::vector<int64_t>{};
  w.pads = ctx.attr_ints("pads");
  CheckLen(ctx, w, w.kernel, 1, "kernel_shape");
  CheckLen(ctx, w, w.strides, 1, "strides");
  CheckLen(ctx, w, w.dilations, 1, "dilations");
  CheckLen(ctx, w, w.pads, 2, "pads");
  for (int64_t k : w.kernel)
    if (k <= 0) ctx.Invalid(fmt::format("kernel_shape {} must be positive", Join(w.kernel)));
  for (int64_t s : w.strides)
    if (s <= 0) ctx.Invalid(fmt::format("strides {} must be positive", Join(w.strides)));
  for (int64_t d : w.dilations)
    if (d <= 0) ctx.Invalid(fmt::format("dilations {} must be positive", Join(w.dilations)));
  for (int64_t p : w.pads)
    if (p < 0) ctx.Unsupported(fmt::format("negative pads {} are not supported", Join(w.pads)));
  for (size_t i = 0; i < w.kernel.size() && i < w.dilations.size(); ++i) {
    int64_t span = 0;
    if (__builtin_mul_overflow(w.kernel[i] - 1, w.dilations[i], &span) || span > (int64_t{1} << 60))
      ctx.Invalid(fmt::format("kernel_shape {} with dilations {} spans more than 2^60 elements", Join(w.kernel), Join(w.dilations)));
  }
  if (w.spatial == 0 || w.spatial > 3)
    ctx.Unsupported(fmt::format("{} spatial dims are not supported (1 to 3)", w.spatial));
  return w;
}

// Fills defaults once the number of spatial dims is known.
void CompleteWindow(ImportContext& ctx, Window& w, int spatial) {
  if (w.spatial >= 0 && w.spatial != spatial)
    ctx.Invalid(fmt::format("the attributes describe {} spatial dims; the input has {}", w.spatial, spatial));
  if (spatial < 1 || spatial > 3) ctx.Unsupported(fmt::format("{} spatial dims are not supported (1 to 3)", spatial));
  w.spatial = spatial;
  const size_t s = static_cast<size_t>(spatial);
  if (w.strides.empty()) w.strides.assign(s, 1);
  if (w.dilations.empty()) w.dilations.assign(s, 1);
  if (w.pads.empty()) w.pads.assign(2 * s, 0);
}

bool AllZero(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == 0; });
}

// ONNX pads [b0, b1, ..., e0, e1, ...] -> IR pads [b0, e0, b1, e1, ...].
std::vector<int64_t> IrPads(const std::vector<int64_t>& begin, const std::vector<int64_t>& end) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < begin.size(); ++i) {
    out.push_back(begin[i]);
    out.push_back(end[i]);
  }
  return out;
}

// SAME_UPPER / SAME_LOWER pads for static sizes: out = ceil(in / stride).
void SamePads(const Window& w, const std::vector<int64_t>& in, const std::vector<int64_t>& kernel, bool upper,
              std::vector<int64_t>* begin, std::vector<int64_t>* end) {
  begin->clear();
  end->clear();
  for (int i = 0; i < w.spatial; ++i) {
    const size_t d = static_cast<size_t>(i);
    const int64_t ek = (kernel[d] - 1) * w.dilations[d] + 1;
    const int64_t out = (in[d] + w.strides[d] - 1) / w.strides[d];
    const int64_t total = std::max<int64_t>((out - 1) * w.strides[d] + ek - in[d], 0);
    const int64_t small = total / 2;
    begin->push_back(upper ? small : total - small);
    end->push_back(upper ? total - small : small);
  }
}

const char* Format(int spatial) { return spatial == 3 ? "NCDHW" : spatial == 2 ? "NCHW" : "NCW"; }

void CheckFloat(ImportContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (!IsFloating(t)) ctx.Unsupported(fmt::format("{} of dtype {} is not supported (expected a floating type)", what, DTypeName(t)));
}

void CheckSameDtype(ImportContext& ctx, int a, int b) {
  if (ctx.input_dtype(a) != ctx.input_dtype(b))
    ctx.Invalid(fmt::format("inputs {} and {} must have the same dtype, got {} and {}", a, b, DTypeName(ctx.input_dtype(a)),
                            DTypeName(ctx.input_dtype(b))));
}

// ExpandDims of x at `axis` (folded for constants).
ir::ValueId ExpandDims(ImportContext& ctx, ir::ValueId x, int64_t axis, const std::string& suffix) {
  if (const Tensor* c = ctx.graph().ConstantOf(x); c && c->dtype() != DType::kString) {
    Shape s = c->shape();
    s.insert(s.begin() + axis, 1);
    return ctx.Constant(c->Clone().Reshaped(s), suffix);
  }
  return ctx.Emit1("ExpandDims", {x, ctx.ConstInt64({axis}, true, suffix + "_axis")}, {}, suffix);
}

// Filter spatial dims (static) of input 1 (the weights), from the weights or kernel_shape.
std::vector<int64_t> KernelDims(ImportContext& ctx, const Window& w, int wrank, int w_index = 1) {
  const ir::SymShape ws = ctx.input_shape(w_index);
  if (ws.rank_known && ws.rank() != wrank)
    ctx.Invalid(fmt::format("weights must have rank {}, got {}", wrank, ctx.graph().ShapeToString(ws)));
  std::vector<int64_t> k;
  for (int i = 0; i < w.spatial; ++i) {
    const ir::Dim d = ws.rank_known ? ws.dims[static_cast<size_t>(2 + i)] : ir::kUnknownDim;
    if (!w.kernel.empty() && ir::IsStatic(d) && d != w.kernel[static_cast<size_t>(i)])
      ctx.Invalid(fmt::format("kernel_shape {} does not match the weights' shape {}", Join(w.kernel), ctx.graph().ShapeToString(ws)));
    k.push_back(ir::IsStatic(d) ? d : w.kernel.empty() ? -1 : w.kernel[static_cast<size_t>(i)]);
  }
  return k;
}

// What Conv and ConvTranspose check past validation: a float X of known rank and weights of
// its dtype; completes `w` for X's spatial dims. Returns X's rank.
int CheckConvInputs(ImportContext& ctx, Window& w) {
  CheckFloat(ctx, 0, "input X");
  CheckSameDtype(ctx, 0, 1);
  const int rank = nn::RequireRank(ctx, 0, "X");
  CompleteWindow(ctx, w, rank - 2);
  return rank;
}

// A Conv or ConvTranspose as the IR convolutions take it: x and the weights (input 1) in the
// IR's layout, and per spatial dim the strides, dilations and pads.
struct IrConv {
  ir::ValueId x, filter;
  int spatial;  // 2 or 3: a 1-D convolution runs as a 2-D one of height 1
  std::vector<int64_t> strides, dilations, pads_begin, pads_end;
};

// For 1-D: x [N,C,L] -> [N,C,1,L] and the weights [M,C/g,K] -> [M,C/g,1,K], with a unit
// stride and dilation and no pads for the added dim. Then the ONNX weights [M, C/g, k...]
// (ConvTranspose: [C_in, C_out, k...]) become the IR's [k..., C/g, M] ([k..., C_out, C_in]).
IrConv ToIrConv(ImportContext& ctx, const Window& w, std::vector<int64_t> pads_begin, std::vector<int64_t> pads_end,
                ir::ValueId x, ir::ValueId filter) {
  IrConv conv{.x = x,
              .filter = filter,
              .spatial = std::max(w.spatial, 2),
              .strides = w.strides,
              .dilations = w.dilations,
              .pads_begin = std::move(pads_begin),
              .pads_end = std::move(pads_end)};
  if (w.spatial == 1) {
    conv.x = ExpandDims(ctx, conv.x, 2, "x_2d");
    conv.filter = ExpandDims(ctx, conv.filter, 2, "w_2d");
    conv.strides.insert(conv.strides.begin(), 1);
    conv.dilations.insert(conv.dilations.begin(), 1);
    conv.pads_begin.insert(conv.pads_begin.begin(), 0);
    conv.pads_end.insert(conv.pads_end.begin(), 0);
  }
  std::vector<int64_t> perm;
  for (int i = 0; i < conv.spatial; ++i) perm.push_back(2 + i);
  perm.push_back(1);
  perm.push_back(0);
  conv.filter = nn::TransposeOf(ctx, conv.filter, perm, "filter");
  return conv;
}

// The IR convolution's attributes; `padding` is VALID, SAME or EXPLICIT (with the pads).
ir::AttrMap IrConvAttrs(const IrConv& conv, const std::string& padding) {
  ir::AttrMap attrs = Attrs({{"data_format", std::string(conv.spatial == 3 ? "NCDHW" : "NCHW")},
                             {"strides", conv.strides},
                             {"dilations", conv.dilations},
                             {"padding", padding}});
  if (padding == "EXPLICIT") attrs.Set("pads", IrPads(conv.pads_begin, conv.pads_end));
  return attrs;
}

// ---- Conv ----

// The convolution of x (ONNX input 0) with `filter` (ONNX input w_index) and an optional bias
// [M], as the attributes of the node describe it; `w` is complete (CompleteWindow).
ir::ValueId ConvOf(ImportContext& ctx, Window& w, ir::ValueId x, ir::ValueId filter, int w_index, ir::ValueId bias) {
  const int64_t group = ctx.attr_int("group", 1);
  if (group < 1) ctx.Invalid(fmt::format("group must be positive, got {}", group));
  const int sp = w.spatial;
  const std::vector<int64_t> kernel = KernelDims(ctx, w, sp + 2, w_index);
  // Channel check (the IR infers groups from C / I; make sure that matches `group`).
  const ir::SymShape xs = ctx.graph().value(x).shape, ws = ctx.graph().value(filter).shape;
  if (ir::IsStatic(xs.dims[1]) && ws.rank_known && ir::IsStatic(ws.dims[1]) && xs.dims[1] != ws.dims[1] * group)
    ctx.Invalid(fmt::format("X has {} channels; weights {} with group {} expect {}", xs.dims[1], ctx.graph().ShapeToString(ws),
                            group, ws.dims[1] * group));
  if (group > 1 && !(ir::IsStatic(xs.dims[1]) && ws.rank_known && ir::IsStatic(ws.dims[1])))
    ctx.Unsupported("a grouped convolution needs static channel counts (X dim 1 and weights dim 1)");

  std::string padding = "VALID";
  std::vector<int64_t> begin(w.pads.begin(), w.pads.begin() + sp), end(w.pads.begin() + sp, w.pads.end());
  if (w.auto_pad == "NOTSET") {
    padding = AllZero(w.pads) ? "VALID" : "EXPLICIT";
  } else if (w.auto_pad == "VALID") {
    std::fill(begin.begin(), begin.end(), 0);
    std::fill(end.begin(), end.end(), 0);
  } else if (w.auto_pad == "SAME_UPPER") {
    padding = "SAME";
  } else {  // SAME_LOWER: the extra pad goes first; needs the sizes
    for (int64_t k : kernel)
      if (k < 0) ctx.Unsupported("auto_pad SAME_LOWER needs a static kernel size");
    SamePads(w, nn::StaticDims(ctx, 0, 2, "auto_pad SAME_LOWER"), kernel, false, &begin, &end);
    padding = "EXPLICIT";
  }
  const IrConv conv = ToIrConv(ctx, w, std::move(begin), std::move(end), x, filter);
  std::vector<ir::ValueId> inputs = {conv.x, conv.filter};
  if (bias != ir::kNoValue) inputs.push_back(bias);
  ir::ValueId y = ctx.Emit1(conv.spatial == 3 ? "Conv3D" : "Conv2D", std::move(inputs), IrConvAttrs(conv, padding),
                            sp == 1 ? "conv2d" : "");
  if (sp == 1) y = ctx.Emit1("Squeeze", {y}, Attrs({{"axes", std::vector<int64_t>{2}}}));
  return y;
}

void ImportConv(ImportContext& ctx) {
  Window w = ReadWindow(ctx, true, false);
  if (ctx.attr_int("group", 1) < 1) ctx.Invalid(fmt::format("group must be positive, got {}", ctx.attr_int("group", 1)));
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3) ctx.Invalid(fmt::format("expected 2 or 3 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  CheckConvInputs(ctx, w);
  ir::ValueId bias = ir::kNoValue;
  if (ctx.has_input(2)) {
    CheckSameDtype(ctx, 0, 2);
    bias = ctx.input(2);
  }
  ctx.SetOutput(0, ConvOf(ctx, w, ctx.input(0), ctx.input(1), 1, bias));
}
KILN_ONNX_IMPORTER("Conv", ImportConv);

// ---- ConvInteger, QLinearConv: integer convolutions, computed exactly in float64 ----

void CheckQuantized(ImportContext& ctx, std::initializer_list<int> inputs) {
  for (int i : inputs) {
    if (!ctx.has_input(i)) continue;
    const DType t = ctx.input_dtype(i);
    if (t != DType::kInt8 && t != DType::kUInt8)
      ctx.Unsupported(fmt::format("input {} has dtype {} (expected int8 or uint8)", i, DTypeName(t)));
  }
}

// x - zero point in int32, then float64 (int8 sums of products are exact there). The weights'
// zero point may be per output channel ([M] -> [M, 1, ..., 1]).
ir::ValueId CenteredF64(ImportContext& ctx, int value, int zero_point, int rank, const std::string& suffix) {
  ir::ValueId v = nn::Cast(ctx, ctx.input(value), DType::kInt32, suffix + "_i32");
  if (ctx.has_input(zero_point)) {
    const ir::ValueId zp = nn::ParamAlongAxis(ctx, nn::Cast(ctx, ctx.input(zero_point), DType::kInt32, suffix + "_zp_i32"), 0,
                                              rank, suffix + "_zero_point");
    v = ctx.Emit1("Sub", {v, zp}, {}, suffix + "_centered");
  }
  return nn::Cast(ctx, v, DType::kFloat64, suffix + "_f64");
}

// ConvInteger: (x - x_zero_point) * (w - w_zero_point) in int32.
void ImportConvInteger(ImportContext& ctx) {
  Window w = ReadWindow(ctx, true, false);
  CheckQuantized(ctx, {0, 1, 2, 3});
  if (ctx.validate_only()) return;
  const int rank = nn::RequireRank(ctx, 0, "x");
  CompleteWindow(ctx, w, rank - 2);
  const ir::ValueId y =
      ConvOf(ctx, w, CenteredF64(ctx, 0, 2, rank, "x"), CenteredF64(ctx, 1, 3, rank, "w"), 1, ir::kNoValue);
  ctx.SetOutput(0, nn::Cast(ctx, y, DType::kInt32, "y"));
}
KILN_ONNX_IMPORTER("ConvInteger", ImportConvInteger);

// QLinearConv: the integer convolution (plus the int32 bias B), times x_scale * w_scale / y_scale
// (float32; w_scale may be per output channel), offset by y_zero_point, rounded and saturated.
void ImportQLinearConv(ImportContext& ctx) {
  Window w = ReadWindow(ctx, true, false);
  CheckQuantized(ctx, {0, 2, 3, 5, 7});
  if (ctx.has_input(8) && ctx.input_dtype(8) != DType::kInt32)
    ctx.Invalid(fmt::format("B has dtype {} (expected int32)", DTypeName(ctx.input_dtype(8))));
  if (ctx.validate_only()) return;
  const int rank = nn::RequireRank(ctx, 0, "x");
  CompleteWindow(ctx, w, rank - 2);
  const ir::ValueId bias = ctx.has_input(8) ? nn::Cast(ctx, ctx.input(8), DType::kFloat64, "bias_f64") : ir::kNoValue;
  const ir::ValueId acc =
      ConvOf(ctx, w, CenteredF64(ctx, 0, 2, rank, "x"), CenteredF64(ctx, 3, 5, rank, "w"), 3, bias);
  // Scales per output channel apply along dim 1 of the NC... result.
  const ir::ValueId w_scale =
      nn::ParamAlongAxis(ctx, nn::Cast(ctx, ctx.input(4), DType::kFloat32, "w_scale_f32"), 1, rank, "w_scale");
  const ir::ValueId multiplier =
      ctx.Emit1("Div",
                {ctx.Emit1("Mul", {nn::Cast(ctx, ctx.input(1), DType::kFloat32, "x_scale_f32"), w_scale}, {}, "xw_scale"),
                 nn::Cast(ctx, ctx.input(6), DType::kFloat32, "y_scale_f32")},
                {}, "multiplier");
  const ir::ValueId scaled = ctx.Emit1("Mul", {acc, nn::Cast(ctx, multiplier, DType::kFloat64, "multiplier_f64")}, {}, "scaled");
  const DType qtype = ctx.has_input(7) ? ctx.input_dtype(7) : ctx.input_dtype(0);
  ctx.SetOutput(0, nn::Saturated(ctx, scaled, ctx.has_input(7) ? ctx.input(7) : ir::kNoValue, qtype,
                                 /*offset_first=*/true, "y"));
}
KILN_ONNX_IMPORTER("QLinearConv", ImportQLinearConv);

// ---- ConvTranspose: IR Conv2DBackpropInput / Conv3DBackpropInput (groups = 1) ----

void ImportConvTranspose(ImportContext& ctx) {
  Window w = ReadWindow(ctx, true, false);
  const int64_t group = ctx.attr_int("group", 1);
  if (group != 1) ctx.Unsupported(fmt::format("group = {} is not supported (only 1)", group));
  const std::vector<int64_t> output_padding = ctx.attr_ints("output_padding");
  const std::vector<int64_t> output_shape = ctx.attr_ints("output_shape");
  CheckLen(ctx, w, output_padding, 1, "output_padding");
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3) ctx.Invalid(fmt::format("expected 2 or 3 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  const int rank = CheckConvInputs(ctx, w);
  const int sp = w.spatial;
  const size_t s = static_cast<size_t>(sp);
  const std::vector<int64_t> kernel = KernelDims(ctx, w, rank);
  for (int64_t k : kernel)
    if (k < 0) ctx.Unsupported("ConvTranspose needs a static kernel size");
  std::vector<int64_t> op = output_padding.empty() ? std::vector<int64_t>(s, 0) : output_padding;
  const std::vector<int64_t> in = nn::StaticDims(ctx, 0, 2, "the output size of ConvTranspose is computed at import");
  std::vector<int64_t> oshape;  // output_shape's spatial part, if given
  if (!output_shape.empty()) {
    if (output_shape.size() == s) oshape = output_shape;
    else if (output_shape.size() == s + 2) oshape.assign(output_shape.begin() + 2, output_shape.end());
    else ctx.Invalid(fmt::format("output_shape {} must have {} (or {}) values", Join(output_shape), s, s + 2));
  }
  std::vector<int64_t> begin(s), end(s), out(s), grow(s, 0);
  for (size_t d = 0; d < s; ++d) {
    if (op[d] < 0 || (op[d] >= w.strides[d] && op[d] >= w.dilations[d]))
      ctx.Invalid(fmt::format("output_padding {} must be smaller than the stride or the dilation", Join(op)));
    const int64_t ek = (kernel[d] - 1) * w.dilations[d] + 1;
    const int64_t full = w.strides[d] * (in[d] - 1) + op[d] + ek;  // output size without padding
    if (!oshape.empty() || w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
      const int64_t target = !oshape.empty() ? oshape[d] : in[d] * w.strides[d];
      const int64_t total = full - target;
      if (total < 0) {
        // A larger output than the full transposed convolution: zeros after it (as ONNX's
        // reference and onnxruntime compute it).
        begin[d] = end[d] = 0;
        grow[d] = -total;
        out[d] = full;
      } else if (ctx.opset() >= 11) {
        // The ONNX spec: SAME_UPPER puts the odd pad at the end, otherwise at the beginning.
        begin[d] = w.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
        end[d] = total - begin[d];
        out[d] = target;
      } else {
        // ConvTranspose-1 (opsets 1-10) splits the other way round: the odd pad at the end,
        // except for SAME_UPPER. Its SAME_* text contradicts itself (the output size matching
        // the input, and SAME_UPPER's extra pad at the end), so only the unambiguous cases.
        if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
          if (total % 2 != 0 || std::any_of(w.strides.begin(), w.strides.end(), [](int64_t v) { return v != 1; }))
            ctx.Unsupported(fmt::format("auto_pad {} at opset {}: ConvTranspose-1 defines SAME ambiguously (an output "
                                        "as large as the input; where the odd pad goes), so only unit strides with "
                                        "even padding are imported; got strides {} and a total padding of {} in "
                                        "spatial dim {}",
                                        w.auto_pad, ctx.opset(), Join(w.strides), total, d));
        }
        begin[d] = total / 2;
        end[d] = total - begin[d];
        out[d] = target;
      }
    } else if (w.auto_pad == "VALID") {
      begin[d] = end[d] = 0;
      out[d] = full;
    } else {
      begin[d] = w.pads[d];
      end[d] = w.pads[s + d];
      out[d] = full - begin[d] - end[d];
    }
    if (out[d] <= 0) ctx.Invalid(fmt::format("the output size would be {}", out[d]));
    // Conv2DBackpropInput requires the forward conv of the result to have X's size exactly.
    const int64_t fwd = (out[d] + begin[d] + end[d] - ek) / w.strides[d] + 1;
    if (fwd != in[d])
      ctx.Unsupported(fmt::format("spatial dim {}: output size {} with pads {}/{} does not invert to the input size {}", d,
                                  out[d], begin[d], end[d], in[d]));
  }
  // The IR filter is [k..., C_out (result channels), C_in (out_backprop channels)].
  const IrConv conv = ToIrConv(ctx, w, std::move(begin), std::move(end), ctx.input(0), ctx.input(1));
  std::vector<int64_t> sizes = out;
  if (sp == 1) sizes.insert(sizes.begin(), 1);
  ir::ValueId y = ctx.Emit1(conv.spatial == 3 ? "Conv3DBackpropInput" : "Conv2DBackpropInput",
                            {ctx.ConstInt64(sizes, false, "sizes"), conv.filter, conv.x}, IrConvAttrs(conv, "EXPLICIT"),
                            sp == 1 ? "conv2d" : "");
  if (sp == 1) y = ctx.Emit1("Squeeze", {y}, Attrs({{"axes", std::vector<int64_t>{2}}}), "squeeze");
  if (!AllZero(grow)) {
    std::vector<int64_t> paddings(4, 0);
    for (size_t d = 0; d < s; ++d) {
      paddings.push_back(0);
      paddings.push_back(grow[d]);
    }
    y = ctx.Emit1("Pad", {y, ctx.Constant(Tensor::FromVector(DType::kInt64, {rank, 2}, paddings), "grow_paddings")}, {}, "grow");
  }
  if (ctx.has_input(2)) {
    CheckSameDtype(ctx, 0, 2);
    ir::ValueId b = ctx.input(2);
    // [M] -> [M, 1, ..., 1] to broadcast over the spatial dims.
    std::vector<int64_t> shape = {-1};
    for (int i = 0; i < sp; ++i) shape.push_back(1);
    if (const Tensor* c = ctx.graph().ConstantOf(b)) {
      Shape sh = {c->num_elements()};
      for (int i = 0; i < sp; ++i) sh.push_back(1);
      b = ctx.Constant(c->Clone().Reshaped(sh), "bias");
    } else {
      b = ctx.Emit1("Reshape", {b, ctx.ConstInt64(shape, false, "bias_shape")}, {}, "bias");
    }
    y = ctx.Emit1("Add", {y, b}, {}, "add_bias");
  }
  ctx.SetOutput(0, y);
}
KILN_ONNX_IMPORTER("ConvTranspose", ImportConvTranspose);

// ---- MaxPool / AveragePool ----

template <bool kMax>
void ImportPool(ImportContext& ctx) {
  Window w = ReadWindow(ctx, kMax, true);
  const int64_t ceil_mode = ctx.attr_int("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) ctx.Invalid(fmt::format("ceil_mode must be 0 or 1, got {}", ceil_mode));
  const int64_t count_include_pad = kMax ? 0 : ctx.attr_int("count_include_pad", 0);
  if (count_include_pad != 0 && count_include_pad != 1)
    ctx.Invalid(fmt::format("count_include_pad must be 0 or 1, got {}", count_include_pad));
  const int64_t storage_order = kMax ? ctx.attr_int("storage_order", 0) : 0;
  if (storage_order != 0 && storage_order != 1)
    ctx.Invalid(fmt::format("storage_order must be 0 (row-major) or 1 (column-major), got {}", storage_order));
  if (ctx.validate_only()) return;
  const DType dt = ctx.input_dtype(0);
  if (kMax ? !(IsFloating(dt) || dt == DType::kInt8 || dt == DType::kUInt8) : !IsFloating(dt))
    ctx.Unsupported(fmt::format("input dtype {} is not supported", DTypeName(dt)));
  const int rank = nn::RequireRank(ctx, 0, "X");
  CompleteWindow(ctx, w, rank - 2);
  const int sp = w.spatial;
  const size_t s = static_cast<size_t>(sp);
  std::vector<int64_t> begin(w.pads.begin(), w.pads.begin() + sp), end(w.pads.begin() + sp, w.pads.end());
  std::string padding;  // "VALID" / "SAME" for the direct forms; "" = explicit pads (begin, end)
  if (w.auto_pad == "VALID") {
    padding = "VALID";
  } else if (w.auto_pad == "SAME_UPPER" && count_include_pad == 0) {
    padding = "SAME";
  } else if (w.auto_pad != "NOTSET") {
    SamePads(w, nn::StaticDims(ctx, 0, 2, "auto_pad " + w.auto_pad + " with these attributes"), w.kernel,
             w.auto_pad == "SAME_UPPER", &begin, &end);
  }
  std::vector<int64_t> extra(s, 0);  // ceil_mode: extra end padding, never counted
  if (padding.empty() && w.auto_pad == "NOTSET" && ceil_mode == 1) {
    const std::vector<int64_t> in = nn::StaticDims(ctx, 0, 2, "ceil_mode = 1");
    for (size_t d = 0; d < s; ++d) {
      const int64_t ek = (w.kernel[d] - 1) * w.dilations[d] + 1;
      const int64_t span = in[d] + begin[d] + end[d] - ek;
      if (span < 0) ctx.Invalid(fmt::format("the kernel {} is larger than the padded input", Join(w.kernel)));
      const int64_t out = (span + w.strides[d] - 1) / w.strides[d] + 1;
      if ((out - 1) * w.strides[d] >= in[d] + begin[d])
        ctx.Unsupported(fmt::format("ceil_mode: the last window of spatial dim {} starts in the end padding (runtimes "
                                    "disagree on whether it exists)",
                                    d));
      extra[d] = std::max<int64_t>((out - 1) * w.strides[d] + ek - (in[d] + begin[d] + end[d]), 0);
    }
  }
  ir::ValueId x = ctx.input(0);
  if (padding.empty() && !kMax && count_include_pad == 1 && !(AllZero(begin) && AllZero(end))) {
    // Zero-pad explicitly so the padding counts in the mean; only the ceil_mode extra stays uncounted.
    std::vector<int64_t> paddings(static_cast<size_t>(4), 0);
    for (size_t d = 0; d < s; ++d) {
      paddings.push_back(begin[d]);
      paddings.push_back(end[d]);
    }
    x = ctx.Emit1("Pad", {x, ctx.Constant(Tensor::FromVector(DType::kInt64, {rank, 2}, paddings), "paddings")}, {}, "pad");
    std::fill(begin.begin(), begin.end(), 0);
    std::fill(end.begin(), end.end(), 0);
  }
  if (padding.empty()) {
    for (size_t d = 0; d < s; ++d) end[d] += extra[d];
    padding = AllZero(begin) && AllZero(end) ? "VALID" : "EXPLICIT";
  }
  ir::AttrMap attrs = Attrs({{"data_format", std::string(Format(sp))},
                             {"ksize", w.kernel},
                             {"strides", w.strides},
                             {"padding", padding}});
  if (padding == "EXPLICIT") attrs.Set("pads", IrPads(begin, end));
  const bool dilated = std::any_of(w.dilations.begin(), w.dilations.end(), [](int64_t d) { return d != 1; });
  if (kMax && (dilated || ctx.has_output(1))) {
    // The IR MaxPool has neither dilations nor indices: MaxPoolWithArgmax has both (indices
    // flat over the whole input, N and C included, as ONNX's Indices).
    attrs.Set("dilations", w.dilations);
    attrs.Set("storage_order", storage_order);
    attrs.Set("include_batch_in_index", true);
    attrs.Set("Targmax", DType::kInt64);
    const std::vector<ir::ValueId> outs = ctx.Emit("MaxPoolWithArgmax", {x}, std::move(attrs), 2);
    ctx.SetOutput(0, outs[0]);
    if (ctx.num_outputs() > 1) ctx.SetOutput(1, outs[1]);
    return;
  }
  ctx.SetOutput(0, ctx.Emit1(kMax ? "MaxPool" : "AvgPool", {x}, std::move(attrs)));
}
KILN_ONNX_IMPORTER("MaxPool", ImportPool<true>);
KILN_ONNX_IMPORTER("AveragePool", ImportPool<false>);

template <bool kMax>
void ImportGlobalPool(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  const DType dt = ctx.input_dtype(0);
  if (!IsFloating(dt)) ctx.Unsupported(fmt::format("input dtype {} is not supported", DTypeName(dt)));
  const int rank = nn::RequireRank(ctx, 0, "X");
  if (rank < 2) ctx.Invalid(fmt::format("X must have rank >= 2, got {}", rank));
  std::vector<int64_t> axes;
  for (int i = 2; i < rank; ++i) axes.push_back(i);
  ctx.SetOutput(0, ctx.Emit1(kMax ? "ReduceMax" : "ReduceMean", {ctx.input(0), ctx.ConstInt64(axes, false, "axes")},
                             Attrs({{"keep_dims", true}})));
}
KILN_ONNX_IMPORTER("GlobalAveragePool", ImportGlobalPool<false>);
KILN_ONNX_IMPORTER("GlobalMaxPool", ImportGlobalPool<true>);

// ---- MaxUnpool ----

// MaxUnpool(X, I[, output_shape]) attrs kernel_shape, strides, pads: zeros of the shape a
// MaxPool with these attributes inverts, (d - 1) * stride + kernel - pads per spatial dim, with
// X's elements written at the flat indices I (the last write wins), as an IR TensorScatter; an
// output_shape appends zeros at the end of each dim up to it, as ONNX's reference and its test
// data define it (onnxruntime indexes the output_shape tensor itself; both agree when
// output_shape is the inferred shape).
void ImportMaxUnpool(ImportContext& ctx) {
  Window w = ReadWindow(ctx, false, true);
  if (w.auto_pad != "NOTSET") ctx.Invalid("MaxUnpool has no auto_pad attribute");
  // Real pooling windows are small; this keeps the shape arithmetic below far from overflow.
  constexpr int64_t kMaxUnpoolWindow = int64_t{1} << 20;
  for (const std::vector<int64_t>* v : {&w.kernel, &w.strides, &w.pads})
    for (int64_t e : *v)
      if (e > kMaxUnpoolWindow)
        ctx.Unsupported(fmt::format("kernel_shape {}, strides {} and pads {} above 2^20 are not supported", Join(w.kernel),
                                    Join(w.strides), Join(w.pads)));
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3) ctx.Invalid(fmt::format("expected 2 or 3 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  CheckFloat(ctx, 0, "input X");
  if (ctx.input_dtype(1) != DType::kInt64) ctx.Invalid(fmt::format("I must be int64, got {}", DTypeName(ctx.input_dtype(1))));
  if (ctx.has_input(2) && ctx.input_dtype(2) != DType::kInt64)
    ctx.Invalid(fmt::format("output_shape must be int64, got {}", DTypeName(ctx.input_dtype(2))));
  const int rank = nn::RequireRank(ctx, 0, "X");
  CompleteWindow(ctx, w, rank - 2);
  const size_t sp = static_cast<size_t>(w.spatial);
  // inferred = shape(X) * [1, 1, strides...] + [0, 0, kernel - stride - pad_begin - pad_end...]
  std::vector<int64_t> mul = {1, 1}, add = {0, 0};
  for (size_t d = 0; d < sp; ++d) {
    mul.push_back(w.strides[d]);
    add.push_back(w.kernel[d] - w.strides[d] - w.pads[d] - w.pads[sp + d]);
  }
  const ir::ValueId x_shape = ctx.Emit1("Shape", {ctx.input(0)}, Attrs({{"out_type", DType::kInt64}}), "x_shape");
  const ir::ValueId inferred = ctx.Emit1(
      "Add", {ctx.Emit1("Mul", {x_shape, ctx.ConstInt64(mul, false, "strides")}, {}, "scaled"), ctx.ConstInt64(add, false, "extent")},
      {}, "inferred_shape");
  const DType t = ctx.input_dtype(0);
  const ir::ValueId zeros = ctx.Emit1("Fill", {inferred, nn::ScalarOf(ctx, t, 0, "zero")}, {}, "zeros");
  const ir::ValueId flat = ctx.Emit1("Reshape", {zeros, ctx.ConstInt64({-1}, false, "flat_shape")}, {}, "flat");
  const ir::ValueId idx = ctx.Emit1("Reshape", {ctx.input(1), ctx.ConstInt64({-1, 1}, false, "index_shape")}, {}, "indices");
  const ir::ValueId values = ctx.Emit1("Reshape", {ctx.input(0), ctx.ConstInt64({-1}, false, "values_shape")}, {}, "values");
  const ir::ValueId scattered =
      ctx.Emit1("TensorScatter", {flat, idx, values}, Attrs({{"reduction", std::string("none")}}), "scattered");
  ir::ValueId y = ctx.Emit1("Reshape", {scattered, inferred}, {}, ctx.has_input(2) ? "unpooled" : "");
  if (ctx.has_input(2)) {
    // Zeros after each dim up to output_shape (a smaller output_shape fails in Pad).
    const ir::ValueId out_shape = ctx.Emit1("Reshape", {ctx.input(2), ctx.ConstInt64({rank}, false, "out_shape_shape")}, {},
                                            "output_shape");
    const ir::ValueId grow = ctx.Emit1("Sub", {out_shape, inferred}, {}, "grow");
    const ir::ValueId none = ctx.ConstInt64(std::vector<int64_t>(static_cast<size_t>(rank), 0), false, "no_pad");
    const ir::ValueId paddings = ctx.Emit1("Pack", {none, grow}, Attrs({{"axis", int64_t{1}}}), "paddings");
    y = ctx.Emit1("Pad", {y, paddings});
  }
  ctx.SetOutput(0, y);
}
KILN_ONNX_IMPORTER("MaxUnpool", ImportMaxUnpool);

}  // namespace

}  // namespace kiln::onnxfe
