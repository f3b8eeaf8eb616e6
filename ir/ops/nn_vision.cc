// Vision ops of the nn family: GridSample, RoiAlign, MaxPoolWithArgmax (ONNX's GridSample,
// RoiAlign, and MaxPool with dilations or its Indices output) and ImageProjectiveTransform
// (TensorFlow's ImageProjectiveTransformV2/V3). See docs/ops/nn.md.
#include <fmt/format.h>

#include <string>
#include <utility>

#include "ir/op_schema.h"
#include "ir/ops/array_common.h"
#include "ir/ops/nn_util.h"
#include "ir/ops/vision_util.h"

namespace kiln::ir {

void RegisterVisionOps(OpRegistry& registry);

namespace {

std::string S(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }

Dim DimOr(const SymShape& s, int i) { return s.rank_known ? s.dims[static_cast<size_t>(i)] : kUnknownDim; }

// ---- GridSample(X [N, C, D1..Dr], grid [N, O1..Or, r]) -> Y [N, C, O1..Or] ----
void InferGridSample(InferContext& ctx) {
  vision::GridSampleSpec spec;
  if (const std::string err = vision::ParseGridSampleAttrs(ctx.attrs(), &spec); !err.empty()) ctx.Fail(err);
  const DType xt = ctx.input_dtype(0), gt = ctx.input_dtype(1);
  if (!IsFloating(xt) && !IsInteger(xt) && xt != DType::kBool)
    ctx.Fail(fmt::format("X must be numeric or bool, got {}", DTypeName(xt)));
  if (!IsFloating(gt)) ctx.Fail(fmt::format("grid must be floating point, got {}", DTypeName(gt)));
  const SymShape& x = ctx.input_shape(0);
  const SymShape& g = ctx.input_shape(1);
  int r = -1;
  if (x.rank_known) {
    if (x.rank() < 3) ctx.Fail(fmt::format("X must be [N, C, D1, ...] (rank >= 3), got {}", S(ctx, x)));
    r = x.rank() - 2;
  }
  if (g.rank_known) {
    if (g.rank() < 3 || (r >= 0 && g.rank() != r + 2))
      ctx.Fail(
          fmt::format("grid must be [N, D1_out, ..., Dr_out, r] of X's rank, got {} for X {}", S(ctx, g), S(ctx, x)));
    r = g.rank() - 2;
    if (IsStatic(g.dims.back()) && g.dims.back() != r)
      ctx.Fail(fmt::format("the last dim of grid must be the number of spatial dims {}, got {}", r, S(ctx, g)));
  }
  if (r > vision::kMaxGridSampleDims)
    ctx.Fail(fmt::format("{} spatial dims are not supported (1 to {})", r, vision::kMaxGridSampleDims));
  if (r < 0) return ctx.SetOutput(0, xt, SymShape::Unknown());
  std::vector<Dim> out = {array::MergeDim(ctx, DimOr(x, 0), DimOr(g, 0), "the batch sizes of X and grid"), DimOr(x, 1)};
  for (int i = 1; i <= r; ++i) out.push_back(DimOr(g, i));
  ctx.SetOutput(0, xt, SymShape::Of(std::move(out)));
}

// ---- RoiAlign(X [N, C, H, W], rois [R, 4], batch_indices [R]) -> Y [R, C, oh, ow] ----
void InferRoiAlign(InferContext& ctx) {
  vision::RoiAlignSpec spec;
  if (const std::string err = vision::ParseRoiAlignAttrs(ctx.attrs(), &spec); !err.empty()) ctx.Fail(err);
  const DType xt = ctx.input_dtype(0);
  if (!IsFloating(xt)) ctx.Fail(fmt::format("X must be floating point, got {}", DTypeName(xt)));
  if (ctx.input_dtype(1) != xt)
    ctx.Fail(fmt::format("rois must have X's dtype {}, got {}", DTypeName(xt), DTypeName(ctx.input_dtype(1))));
  const DType bt = ctx.input_dtype(2);
  if (bt != DType::kInt64 && bt != DType::kInt32)
    ctx.Fail(fmt::format("batch_indices must be int64 or int32, got {}", DTypeName(bt)));
  const SymShape& x = ctx.input_shape(0);
  const SymShape& rois = ctx.input_shape(1);
  const SymShape& bi = ctx.input_shape(2);
  if (x.rank_known && x.rank() != 4) ctx.Fail(fmt::format("X must be [N, C, H, W], got {}", S(ctx, x)));
  if (rois.rank_known && (rois.rank() != 2 || (IsStatic(rois.dims[1]) && rois.dims[1] != 4)))
    ctx.Fail(fmt::format("rois must be [num_rois, 4], got {}", S(ctx, rois)));
  if (bi.rank_known && bi.rank() != 1) ctx.Fail(fmt::format("batch_indices must be [num_rois], got {}", S(ctx, bi)));
  const Dim r = array::MergeDim(ctx, DimOr(rois, 0), DimOr(bi, 0), "the number of rois and of batch_indices");
  ctx.SetOutput(0, xt, SymShape::Of({r, DimOr(x, 1), spec.output_height, spec.output_width}));
}

// ---- MaxPoolWithArgmax(input) -> output, argmax ----
void InferMaxPoolWithArgmax(InferContext& ctx) {
  if (ctx.num_outputs() != 2) ctx.Fail(fmt::format("expected 2 outputs (output, argmax), got {}", ctx.num_outputs()));
  const SymShape& x = ctx.input_shape(0);
  const AttrMap& a = ctx.attrs();
  const DType xt = ctx.input_dtype(0);
  if (!IsFloating(xt) && !IsInteger(xt)) ctx.Fail(fmt::format("input must be numeric, got {}", DTypeName(xt)));
  const DType it = a.GetOr<DType>("Targmax", DType::kInt64);
  if (it != DType::kInt32 && it != DType::kInt64)
    ctx.Fail(fmt::format("Targmax must be int32 or int64, got {}", DTypeName(it)));
  const int spatial = x.rank_known ? x.rank() - 2 : static_cast<int>(a.GetOr<std::vector<int64_t>>("ksize", {}).size());
  vision::ArgmaxPoolSpec spec;
  if (const std::string err = vision::ParseArgmaxPoolAttrs(a, spatial, &spec); !err.empty()) ctx.Fail(err);
  const int rank = spatial + 2;
  std::vector<Dim> out(static_cast<size_t>(rank), kUnknownDim);
  if (x.rank_known) {
    nn::Padding padding;
    nn::ParsePadding(spec.padding, &padding);
    const int c = nn::ChannelAxis(spec.channels_last, rank);
    out[0] = x.dims[0];
    out[static_cast<size_t>(c)] = x.dims[static_cast<size_t>(c)];
    for (int i = 0; i < spatial; ++i) {
      const size_t ax = static_cast<size_t>(nn::SpatialAxis(spec.channels_last, i)), d = static_cast<size_t>(i);
      if (!IsStatic(x.dims[ax])) continue;
      nn::WindowDim wd;
      std::string err;
      if (!nn::ComputeWindow(x.dims[ax], spec.ksize[d], spec.strides[d], spec.dilations[d], padding, spec.pads[2 * d],
                             spec.pads[2 * d + 1], &wd, &err))
        ctx.Fail(fmt::format("spatial dim {}: {}", i, err));
      out[ax] = wd.out;
    }
  }
  ctx.SetOutput(0, xt, SymShape::Of(out));
  ctx.SetOutput(1, it, SymShape::Of(out));
}

// ---- ImageProjectiveTransform(images [N,H,W,C], transforms [1|N, 8] float32, output_shape [2] int32,
//      fill_value float32 scalar) attrs interpolation, fill_mode -> [N, out_h, out_w, C] ----
void InferImageProjectiveTransform(InferContext& ctx) {
  const std::string& interp = ctx.attrs().Str("interpolation");
  const std::string& mode = ctx.attrs().Str("fill_mode");
  if (interp != "NEAREST" && interp != "BILINEAR")
    ctx.Fail(fmt::format("interpolation must be NEAREST or BILINEAR, got '{}'", interp));
  if (mode != "REFLECT" && mode != "WRAP" && mode != "CONSTANT" && mode != "NEAREST")
    ctx.Fail(fmt::format("fill_mode must be REFLECT, WRAP, CONSTANT or NEAREST, got '{}'", mode));
  const DType t = ctx.input_dtype(0);
  if (t != DType::kUInt8 && t != DType::kInt32 && t != DType::kInt64 && !IsFloating(t))
    ctx.Fail(fmt::format("images must be uint8, int32, int64 or a float type, got {}", DTypeName(t)));
  for (const auto& [i, what] : {std::pair{1, "transforms"}, std::pair{3, "fill_value"}})
    if (ctx.input_dtype(i) != DType::kFloat32)
      ctx.Fail(fmt::format("{} must be float32, got {}", what, DTypeName(ctx.input_dtype(i))));
  if (ctx.input_dtype(2) != DType::kInt32)
    ctx.Fail(fmt::format("output_shape must be int32, got {}", DTypeName(ctx.input_dtype(2))));
  const SymShape& x = ctx.input_shape(0);
  const SymShape& tr = ctx.input_shape(1);
  const SymShape& os = ctx.input_shape(2);
  const SymShape& fv = ctx.input_shape(3);
  if (x.rank_known && x.rank() != 4) ctx.Fail(fmt::format("images must have rank 4 (NHWC), got {}", S(ctx, x)));
  if (tr.rank_known && (tr.rank() != 2 || (IsStatic(tr.dims[1]) && tr.dims[1] != 8)))
    ctx.Fail(fmt::format("transforms must be [num_images or 1, 8], got {}", S(ctx, tr)));
  if (os.rank_known && (os.rank() != 1 || (IsStatic(os.dims[0]) && os.dims[0] != 2)))
    ctx.Fail(fmt::format("output_shape must have shape [2], got {}", S(ctx, os)));
  if (fv.rank_known && fv.rank() != 0) ctx.Fail(fmt::format("fill_value must be a scalar, got {}", S(ctx, fv)));
  // The output size: constants, or symbols traced through Shape/StridedSlice/Pack (Keras computes
  // it from the input's shape, keeping a dynamic size symbolic).
  Dim out_hw[2] = {kUnknownDim, kUnknownDim};
  if (auto hw = array::ShapeVectorInput(ctx, 2); hw && hw->size() == 2) {
    for (size_t i = 0; i < 2; ++i) {
      const array::SymElem& e = (*hw)[i];
      if (e.is_const && e.value <= 0) ctx.Fail(fmt::format("output dimensions must be positive, got {}", e.value));
      out_hw[i] = e.is_const ? e.value : e.dim;
    }
  }
  ctx.SetOutput(0, t, SymShape::Of({DimOr(x, 0), out_hw[0], out_hw[1], DimOr(x, 3)}));
}

}  // namespace

void RegisterVisionOps(OpRegistry& registry) {
  registry.Add({"ImageProjectiveTransform", 4, 4, InferImageProjectiveTransform});
  registry.Add({"GridSample", 2, 2, InferGridSample});
  registry.Add({"RoiAlign", 3, 3, InferRoiAlign});
  registry.Add({"MaxPoolWithArgmax", 1, 1, InferMaxPoolWithArgmax});
}

}  // namespace kiln::ir
