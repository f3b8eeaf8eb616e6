// TensorFlow's NonMaxSuppressionV2..V5 on the IR's NonMaxSuppression (ONNX's batched form): boxes
// [N, 4] become [1, N, 4], scores [N] become [1, 1, N], and the box column of the [M, 3] result is
// the selection, in TensorFlow's order (decreasing score).
#include <fmt/format.h>

#include <limits>

#include "frontend/tf/importer.h"

namespace kiln::tf {
namespace {

using frontend::Attrs;
using ir::ValueId;

ValueId I64Vector(ImportContext& ctx, std::vector<int64_t> v, const std::string& name) {
  Tensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return ctx.Constant(t, name);
}

ValueId CastTo(ImportContext& ctx, ValueId v, DType to, const std::string& name) {
  return ctx.Emit1("Cast", {v}, Attrs({{"to", to}, {"truncate", false}}), name);
}

// `v` ([M]) padded with zeros (or `fill`) to `size` elements (TF's pad_to_max_output_size).
ValueId PadTo(ImportContext& ctx, ValueId v, ValueId size, DType dtype, const std::string& name) {
  const ValueId size_1d = ctx.Emit1("Reshape", {size, I64Vector(ctx, {1}, name + "_size_shape")}, {}, name + "_size");
  const ValueId zero = ctx.Constant(
      dtype == DType::kInt32 ? Tensor::Scalar<int32_t>(dtype, 0) : Tensor::Scalar<float>(dtype, 0.f), name + "_zero");
  const ValueId zeros = ctx.Emit1("Fill", {size_1d, zero}, {}, name + "_zeros");
  const ValueId joined =
      ctx.Emit1("Concat", {v, zeros, ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, 0), name + "_axis")}, {},
                name + "_joined");
  return ctx.Emit1("Slice", {joined, I64Vector(ctx, {0}, name + "_begin"), size_1d}, {}, name);
}

void ImportNms(ImportContext& ctx) {
  const std::string& op = ctx.op();
  const int version = op.back() - '0';  // NonMaxSuppressionV2 .. V5
  const int inputs = version == 2 ? 4 : version == 5 ? 6 : 5;
  if (ctx.num_inputs() != inputs) ctx.Invalid(fmt::format("expected {} inputs, got {}", inputs, ctx.num_inputs()));
  if (version == 5) {
    const Tensor* sigma = ctx.constant_input(5);
    if (!ctx.validate_only() && (!sigma || sigma->DoubleAt(0) != 0.0))
      ctx.Unsupported("soft NMS (soft_nms_sigma other than a constant 0) is not supported");
  }
  if (ctx.validate_only()) return;
  const ValueId boxes = ctx.Emit1("ExpandDims",
                                  {CastTo(ctx, ctx.input(0), DType::kFloat32, "boxes_f32"),
                                   ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, 0), "batch_axis")},
                                  {}, "boxes_batched");
  const ValueId scores_f32 = CastTo(ctx, ctx.input(1), DType::kFloat32, "scores_f32");
  const ValueId scores =
      ctx.Emit1("Reshape", {scores_f32, I64Vector(ctx, {1, 1, -1}, "scores_shape")}, {}, "scores_batched");
  const ValueId max_out = CastTo(ctx, ctx.input(2), DType::kInt64, "max_output_size");
  const ValueId iou = CastTo(ctx, ctx.input(3), DType::kFloat32, "iou_threshold");
  const ValueId score_threshold =
      version == 2 ? ctx.Constant(Tensor::Scalar<float>(DType::kFloat32, -std::numeric_limits<float>::infinity()),
                                  "no_threshold")
                   : CastTo(ctx, ctx.input(4), DType::kFloat32, "score_threshold");
  const ValueId triples = ctx.Emit1("NonMaxSuppression", {boxes, scores, max_out, iou, score_threshold},
                                    Attrs({{"center_point_box", int64_t{0}}}), "selected_triples");
  const ValueId column = ctx.Emit1("StridedSlice",
                                   {triples, I64Vector(ctx, {0, 2}, "col_begin"), I64Vector(ctx, {0, 3}, "col_end"),
                                    I64Vector(ctx, {1, 1}, "col_strides")},
                                   Attrs({{"begin_mask", int64_t{1}},
                                          {"end_mask", int64_t{1}},
                                          {"ellipsis_mask", int64_t{0}},
                                          {"new_axis_mask", int64_t{0}},
                                          {"shrink_axis_mask", int64_t{2}}}),
                                   "box_column");
  ValueId selected = CastTo(ctx, column, DType::kInt32, "selected");
  if (version <= 3) {
    ctx.SetOutput(0, selected);
    return;
  }
  const ValueId valid =
      CastTo(ctx, ctx.Emit1("Size", {selected}, Attrs({{"out_type", DType::kInt64}}), "count"), DType::kInt32, "valid");
  const bool pad = ctx.attr_bool("pad_to_max_output_size", false);
  ValueId selected_scores;
  if (version == 5)
    selected_scores =
        ctx.Emit1("Gather", {scores_f32, selected, ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, 0), "g_axis")},
                  Attrs({{"batch_dims", int64_t{0}}}), "selected_scores_f32");
  if (pad) {
    const ValueId size = CastTo(ctx, ctx.input(2), DType::kInt32, "pad_size");
    selected = PadTo(ctx, selected, size, DType::kInt32, "selected_padded");
    if (version == 5) selected_scores = PadTo(ctx, selected_scores, size, DType::kFloat32, "scores_padded");
  }
  ctx.SetOutput(0, selected);
  if (version == 4) {
    ctx.SetOutput(1, valid);
  } else {
    ctx.SetOutput(1, CastTo(ctx, selected_scores, ctx.input_dtype(1), "selected_scores"));
    ctx.SetOutput(2, valid);
  }
}

}  // namespace

void RegisterDetectionImporters(ImporterTable& t) {
  t.Add(TfOpSpec{"NonMaxSuppressionV2", ImportNms, {}, {}});
  t.Add(TfOpSpec{"NonMaxSuppressionV3", ImportNms, {}, {}});
  t.Add(TfOpSpec{"NonMaxSuppressionV4",
                 ImportNms,
                 {{"selected_indices", "", ""}, {"valid_outputs", "", ""}},
                 {{"pad_to_max_output_size", false}}});
  t.Add(TfOpSpec{"NonMaxSuppressionV5",
                 ImportNms,
                 {{"selected_indices", "", ""}, {"selected_scores", "", ""}, {"valid_outputs", "", ""}},
                 {{"pad_to_max_output_size", false}}});
}

}  // namespace kiln::tf
