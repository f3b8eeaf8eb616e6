// Vision ops of the nn family: GridSample, RoiAlign and MaxPoolWithArgmax (ONNX's GridSample,
// RoiAlign, and MaxPool with dilations or its Indices output). See docs/ops/nn.md.
#include <fmt/format.h>

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

}  // namespace

void RegisterVisionOps(OpRegistry& registry) {
  registry.Add({"GridSample", 2, 2, InferGridSample});
  registry.Add({"RoiAlign", 3, 3, InferRoiAlign});
  registry.Add({"MaxPoolWithArgmax", 1, 1, InferMaxPoolWithArgmax});
}

}  // namespace kiln::ir
