// ONNX importers of the loss functions, which models exported for evaluation carry:
// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss, decomposed as ONNX defines them.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "frontend/onnx/ops/nn_common.h"

namespace kiln::onnxfe::nn {
namespace {

// NegativeLogLikelihoodLoss of `input` [N, C, d1..dk] (log-probabilities) and the class indices
// `target` [N, d1..dk]: loss[n, d] = -input[n, target[n, d], d] * weight[target[n, d]], 0 where
// the target is ignore_index; reduction none (the losses), sum, or mean (the sum over the summed
// weights of the targets not ignored).
ir::ValueId NllLoss(ImportContext& ctx, ir::ValueId input, int rank, ir::ValueId target, ir::ValueId weight,
                    const std::string& reduction) {
  const DType t = ctx.graph().value(input).dtype;
  const ir::ValueId index = Cast(ctx, target, DType::kInt64, "target_i64");
  ir::ValueId valid = ir::kNoValue;
  ir::ValueId safe = index;  // an ignored target may be any integer: gather class 0 for it
  if (ctx.has_attr("ignore_index")) {
    const ir::ValueId ignore = ctx.ConstInt64({ctx.attr_int("ignore_index", 0)}, true, "ignore_index");
    valid = ctx.Emit1("NotEqual", {index, ignore}, {}, "valid");
    safe = ctx.Emit1("Select", {valid, index, ctx.ConstInt64({0}, true, "zero_index")}, {}, "safe_target");
  }
  // The classes last, then one class per [n, d]: a Gather with every leading dim batched.
  std::vector<int64_t> perm = {0};
  for (int d = 2; d < rank; ++d) perm.push_back(d);
  perm.push_back(1);
  const ir::ValueId last = rank > 2 ? TransposeOf(ctx, input, perm, "classes_last") : input;
  const ir::ValueId picked =
      ctx.Emit1("Gather", {last, safe, ctx.ConstInt64({rank - 1}, true, "class_axis")},
                Attrs({{"batch_dims", int64_t{rank - 1}}}), "picked");
  ir::ValueId loss = ctx.Emit1("Neg", {picked}, {}, "neg");
  ir::ValueId w = ir::kNoValue;  // per-element weight; none: every element counts once
  if (weight != ir::kNoValue)
    w = ctx.Emit1("Gather", {weight, safe, ctx.ConstInt64({0}, true, "weight_axis")}, {}, "target_weight");
  if (valid != ir::kNoValue) {
    const ir::ValueId valid_t = Cast(ctx, valid, t, "valid_f");
    w = w == ir::kNoValue ? valid_t : ctx.Emit1("Mul", {w, valid_t}, {}, "kept_weight");
  }
  if (w != ir::kNoValue) loss = ctx.Emit1("Mul", {loss, w}, {}, "weighted");
  if (reduction == "none") return loss;
  std::vector<int64_t> all;
  for (int d = 0; d < rank - 1; ++d) all.push_back(d);
  auto total = [&](ir::ValueId v, const std::string& suffix) {
    return ctx.Emit1("ReduceSum", {v, ctx.ConstInt64(all, false, suffix + "_axes")}, Attrs({{"keep_dims", false}}),
                     suffix);
  };
  if (reduction == "sum") return total(loss, "sum");
  if (w == ir::kNoValue)
    return ctx.Emit1("ReduceMean", {loss, ctx.ConstInt64(all, false, "mean_axes")}, Attrs({{"keep_dims", false}}),
                     "mean");
  return ctx.Emit1("Div", {total(loss, "loss_sum"), total(w, "weight_sum")}, {}, "mean");
}

std::string Reduction(ImportContext& ctx) {
  const std::string reduction = ctx.attr_string("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean")
    ctx.Invalid(fmt::format("reduction must be none, sum or mean, got '{}'", reduction));
  return reduction;
}

// The known rank of the scores / log-probabilities (at least 2: [N, C, ...]).
int LossRank(ImportContext& ctx) {
  const int rank = RequireRank(ctx, 0, "input");
  if (rank < 2) ctx.Invalid(fmt::format("input must have at least 2 dims [N, C, ...], got rank {}", rank));
  if (!IsFloating(ctx.input_dtype(0)))
    ctx.Unsupported(fmt::format("input of dtype {} is not supported", DTypeName(ctx.input_dtype(0))));
  if (!IsInteger(ctx.input_dtype(1)))
    ctx.Invalid(fmt::format("target must be an integer tensor, got {}", DTypeName(ctx.input_dtype(1))));
  return rank;
}

void ImportNllLoss(ImportContext& ctx) {
  const std::string reduction = Reduction(ctx);
  if (ctx.validate_only()) return;
  const int rank = LossRank(ctx);
  const ir::ValueId weight = ctx.has_input(2) ? ctx.input(2) : ir::kNoValue;
  ctx.SetOutput(0, NllLoss(ctx, ctx.input(0), rank, ctx.input(1), weight, reduction));
}
KILN_ONNX_IMPORTER("NegativeLogLikelihoodLoss", ImportNllLoss);

// SoftmaxCrossEntropyLoss: log_prob = LogSoftmax(scores) over the classes (dim 1), then the
// negative log-likelihood loss of the labels; the optional second output is log_prob.
void ImportSoftmaxCrossEntropyLoss(ImportContext& ctx) {
  const std::string reduction = Reduction(ctx);
  if (ctx.validate_only()) return;
  const int rank = LossRank(ctx);
  const ir::ValueId log_prob = ctx.Emit1("LogSoftmax", {ctx.input(0)}, Attrs({{"axis", int64_t{1}}}), "log_prob");
  const ir::ValueId weight = ctx.has_input(2) ? ctx.input(2) : ir::kNoValue;
  ctx.SetOutput(0, NllLoss(ctx, log_prob, rank, ctx.input(1), weight, reduction));
  if (ctx.num_outputs() > 1) ctx.SetOutput(1, log_prob);
}
KILN_ONNX_IMPORTER("SoftmaxCrossEntropyLoss", ImportSoftmaxCrossEntropyLoss);

}  // namespace
}  // namespace kiln::onnxfe::nn
