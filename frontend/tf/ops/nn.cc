// TF importers of the nn family: convolutions and pooling (this file); MatMul, BatchMatMul,
// Einsum, FusedBatchNorm*, Softmax, LogSoftmax, LRN, resizes, depth/space ops, ImageProjectiveTransform
// (nn_math.cc); dense linear algebra (nn_linalg.cc); colour spaces (nn_color.cc); the stateless
// random ops (random.cc).
// See docs/ops/nn.md for the IR ops they produce.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "frontend/tf/importer.h"

namespace kiln::tf {

void RegisterNnMathImporters(ImporterTable& table);  // nn_math.cc
void RegisterDetectionImporters(ImporterTable& table);  // detection.cc
void RegisterRandomImporters(ImporterTable& table);     // random.cc
void RegisterNnLinalgImporters(ImporterTable& table);   // nn_linalg.cc
void RegisterNnColorImporters(ImporterTable& table);    // nn_color.cc

namespace {

std::string Join(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ",")); }

void CheckFloatType(ImportContext& ctx, const std::string& attr) {
  if (!ctx.has_attr(attr)) return;
  const DType t = ctx.attr_type(attr);
  if (!IsFloating(t)) ctx.Unsupported(fmt::format("{} = {} is not supported (expected a floating type)", attr, DTypeName(t)));
}

void CheckArity(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
}

// data_format of a `spatial`-D op; returns whether it is channels-last.
bool ReadFormat(ImportContext& ctx, int spatial, std::string* format) {
  *format = ctx.attr_string("data_format", spatial == 3 ? "NDHWC" : "NHWC");
  if (spatial == 2 && (*format == "NHWC" || *format == "NCHW")) return *format == "NHWC";
  if (spatial == 3 && (*format == "NDHWC" || *format == "NCDHW")) return *format == "NDHWC";
  ctx.Unsupported(fmt::format("data_format '{}' is not supported", *format));
}

int SpatialAxis(bool channels_last, int i) { return channels_last ? 1 + i : 2 + i; }
int ChannelAxis(bool channels_last, int rank) { return channels_last ? rank - 1 : 1; }

// The spatial entries of a full-rank TF list attr (strides, dilations, ksize); batch and
// channel entries must be 1.
std::vector<int64_t> SpatialValues(ImportContext& ctx, const std::vector<int64_t>& v, const std::string& name,
                                   bool channels_last, int spatial, bool unsupported_if_not_one) {
  const int rank = spatial + 2;
  if (static_cast<int>(v.size()) != rank) ctx.Invalid(fmt::format("{} must have {} elements, got {}", name, rank, Join(v)));
  if (v[0] != 1 || v[static_cast<size_t>(ChannelAxis(channels_last, rank))] != 1) {
    const std::string msg = fmt::format("{} {} over the batch or channel dimension is not supported", name, Join(v));
    if (unsupported_if_not_one) ctx.Unsupported(msg);
    ctx.Invalid(msg);
  }
  std::vector<int64_t> out;
  for (int i = 0; i < spatial; ++i) {
    const int64_t x = v[static_cast<size_t>(SpatialAxis(channels_last, i))];
    if (x <= 0) ctx.Invalid(fmt::format("{} must be positive, got {}", name, Join(v)));
    out.push_back(x);
  }
  return out;
}

// padding (+ explicit_paddings) -> IR attrs padding / pads.
void ReadPadding(ImportContext& ctx, ir::AttrMap& attrs, bool channels_last, int spatial, bool allow_explicit) {
  const std::string padding = ctx.attr_string("padding");
  if (padding != "SAME" && padding != "VALID" && !(allow_explicit && padding == "EXPLICIT"))
    ctx.Unsupported(fmt::format("padding '{}' is not supported", padding));
  attrs.Set("padding", padding);
  if (padding != "EXPLICIT") return;
  const std::vector<int64_t> p = ctx.attr_ints("explicit_paddings");
  const int rank = spatial + 2;
  if (static_cast<int>(p.size()) != 2 * rank)
    ctx.Invalid(fmt::format("explicit_paddings must have {} elements, got {}", 2 * rank, Join(p)));
  const size_t c = static_cast<size_t>(ChannelAxis(channels_last, rank));
  if (p[0] != 0 || p[1] != 0 || p[2 * c] != 0 || p[2 * c + 1] != 0)
    ctx.Invalid(fmt::format("explicit_paddings {} pad the batch or channel dimension", Join(p)));
  std::vector<int64_t> pads;
  for (int i = 0; i < spatial; ++i) {
    const size_t a = static_cast<size_t>(SpatialAxis(channels_last, i));
    if (p[2 * a] < 0 || p[2 * a + 1] < 0) ctx.Invalid(fmt::format("explicit_paddings must be non-negative, got {}", Join(p)));
    pads.push_back(p[2 * a]);
    pads.push_back(p[2 * a + 1]);
  }
  attrs.Set("pads", pads);
}

ir::AttrMap ConvAttrs(ImportContext& ctx, int spatial, bool allow_explicit) {
  std::string format;
  const bool cl = ReadFormat(ctx, spatial, &format);
  ir::AttrMap attrs;
  attrs.Set("data_format", format);
  attrs.Set("strides", SpatialValues(ctx, ctx.attr_ints("strides"), "strides", cl, spatial, false));
  const std::vector<int64_t> ones(static_cast<size_t>(spatial + 2), 1);
  attrs.Set("dilations", SpatialValues(ctx, ctx.has_attr("dilations") ? ctx.attr_ints("dilations") : ones, "dilations", cl, spatial, false));
  ReadPadding(ctx, attrs, cl, spatial, allow_explicit);
  return attrs;
}

// A convolution whose `arity` TF inputs are, in order, the inputs of IR op `ir_op`, with the
// attributes ConvAttrs reads (explicit padding only in 2-D).
void ImportConvAs(ImportContext& ctx, const char* ir_op, int spatial, int arity) {
  CheckArity(ctx, arity);
  CheckFloatType(ctx, "T");
  ir::AttrMap attrs = ConvAttrs(ctx, spatial, spatial == 2);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(ir_op, ctx.input_values(), std::move(attrs)));
}

template <int kSpatial>
void ImportConv(ImportContext& ctx) {
  ImportConvAs(ctx, kSpatial == 2 ? "Conv2D" : "Conv3D", kSpatial, 2);
}

void ImportDepthwiseConv(ImportContext& ctx) { ImportConvAs(ctx, "DepthwiseConv2D", 2, 2); }

template <int kSpatial>
void ImportConvBackpropInput(ImportContext& ctx) {
  ImportConvAs(ctx, kSpatial == 2 ? "Conv2DBackpropInput" : "Conv3DBackpropInput", kSpatial, 3);
}

// MaxPool, AvgPool, MaxPool3D, AvgPool3D (attrs) and MaxPoolV2 (ksize/strides inputs).
template <bool kMax, int kSpatial>
void ImportPool(ImportContext& ctx) {
  const bool v2 = ctx.op() == "MaxPoolV2";
  CheckArity(ctx, v2 ? 3 : 1);
  if (ctx.has_attr("T")) {
    const DType t = ctx.attr_type("T");
    if (!IsFloating(t) && !(kMax && kSpatial == 2 && IsInteger(t)))
      ctx.Unsupported(fmt::format("T = {} is not supported", DTypeName(t)));
  }
  std::string format;
  if (kSpatial == 2 && ctx.attr_string("data_format", "NHWC") == "NCHW_VECT_C")
    ctx.Unsupported("data_format 'NCHW_VECT_C' is not supported");
  const bool cl = ReadFormat(ctx, kSpatial, &format);
  ir::AttrMap attrs;
  attrs.Set("data_format", format);
  ReadPadding(ctx, attrs, cl, kSpatial, kMax && kSpatial == 2);
  std::vector<ir::ValueId> inputs;
  if (v2) {
    const Tensor* k = ctx.constant_input(1);
    const Tensor* s = ctx.constant_input(2);
    if (k && s) {
      attrs.Set("ksize", SpatialValues(ctx, k->ToInt64Vector(), "ksize", cl, kSpatial, true));
      attrs.Set("strides", SpatialValues(ctx, s->ToInt64Vector(), "strides", cl, kSpatial, true));
    } else if (!ctx.validate_only()) {
      inputs = {ctx.input(1), ctx.input(2)};  // checked at run time
    }
  } else {
    attrs.Set("ksize", SpatialValues(ctx, ctx.attr_ints("ksize"), "ksize", cl, kSpatial, true));
    attrs.Set("strides", SpatialValues(ctx, ctx.attr_ints("strides"), "strides", cl, kSpatial, true));
  }
  if (ctx.validate_only()) return;
  inputs.insert(inputs.begin(), ctx.input(0));
  ctx.SetOutput(0, ctx.Emit1(kMax ? "MaxPool" : "AvgPool", std::move(inputs), std::move(attrs)));
}

}  // namespace

void RegisterNnImporters(ImporterTable& table) {
  RegisterDetectionImporters(table);
  RegisterRandomImporters(table);
  const std::vector<int64_t> ones4{1, 1, 1, 1}, ones5{1, 1, 1, 1, 1}, none;
  const TfAttrDefault nhwc = std::string("NHWC"), ndhwc = std::string("NDHWC");
  table.Add({"Conv2D", ImportConv<2>, {},
             {{"data_format", nhwc}, {"dilations", ones4}, {"explicit_paddings", none}, {"use_cudnn_on_gpu", true}}});
  table.Add({"DepthwiseConv2dNative", ImportDepthwiseConv, {},
             {{"data_format", nhwc}, {"dilations", ones4}, {"explicit_paddings", none}}});
  table.Add({"Conv2DBackpropInput", ImportConvBackpropInput<2>, {},
             {{"data_format", nhwc}, {"dilations", ones4}, {"explicit_paddings", none}, {"use_cudnn_on_gpu", true}}});
  table.Add({"Conv3D", ImportConv<3>, {}, {{"data_format", ndhwc}, {"dilations", ones5}}});
  table.Add({"Conv3DBackpropInputV2", ImportConvBackpropInput<3>, {}, {{"data_format", ndhwc}, {"dilations", ones5}}});
  table.Add({"MaxPool", ImportPool<true, 2>, {}, {{"data_format", nhwc}, {"explicit_paddings", none}}});
  table.Add({"MaxPoolV2", ImportPool<true, 2>, {}, {{"data_format", nhwc}}});
  table.Add({"AvgPool", ImportPool<false, 2>, {}, {{"data_format", nhwc}}});
  table.Add({"MaxPool3D", ImportPool<true, 3>, {}, {{"data_format", ndhwc}}});
  table.Add({"AvgPool3D", ImportPool<false, 3>, {}, {{"data_format", ndhwc}}});
  RegisterNnMathImporters(table);
  RegisterNnLinalgImporters(table);
  RegisterNnColorImporters(table);
}

}  // namespace kiln::tf
