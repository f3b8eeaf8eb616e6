// TF importers of the elementwise family: unary math and activations, broadcasting binary ops,
// comparisons, logical/bitwise ops, BiasAdd, AddN, ClipByValue, Cast, Select/SelectV2,
// ApproximateEqual, QuantizeAndDequantizeV2/V3/V4 and FakeQuantWithMinMax*.
// See docs/ops/elementwise.md for the IR ops they produce.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "frontend/elementwise_mapping.h"
#include "frontend/tf/importer.h"
#include "ir/dtype_class.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::tf {
namespace {

using ir::kAll;
using ir::kBoolT;
using ir::kFloat;
using ir::kInt;
using ir::kNumeric;
using ir::kStringT;

// Checks the dtype attribute `attr` (when present) against what Kiln supports for the op.
void CheckType(ImportContext& ctx, const std::string& attr, unsigned mask) {
  if (!ctx.has_attr(attr)) return;
  const DType dt = ctx.attr_type(attr);
  if (!ir::InClass(dt, mask))
    ctx.Unsupported(fmt::format("{} with {} = {} is not supported", ctx.op(), attr, DTypeName(dt)));
}

void CheckArity(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
}

// ---- one TF op -> one attribute-free IR op ----
using frontend::ElementwiseMapping;

// The TF names of the elementwise table's ops (ir/ops/elementwise_ops.h), and two more. Their
// `types` are the allowed values of attr T (TensorFlow's list minus complex types).
const std::vector<ElementwiseMapping>& Mappings() {
  static const std::vector<ElementwiseMapping> mappings = [] {
    std::vector<ElementwiseMapping> all;
    for (const ir::elementwise::OpInfo& op : ir::elementwise::AllOps())
      for (const ir::elementwise::ForeignOp& tf : op.tf)
        if (tf.name) all.push_back({tf.name, op.name, tf.types, ir::elementwise::Arity(op.pattern)});
    all.push_back({"ClipByValue", "Clip", kNumeric, 3});
    all.push_back({"SelectV2", "Select", kAll | kStringT, 3});
    all.push_back({"Betainc", "Betainc", kFloat, 3});
    return all;
  }();
  return mappings;
}

void ImportMapped(ImportContext& ctx) {
  const ElementwiseMapping& m = frontend::FindElementwiseMapping(Mappings(), ctx.op());
  CheckType(ctx, "T", m.types);
  CheckArity(ctx, m.arity);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(m.ir_op, ctx.input_values()));
}

// ---- ops with attributes or several IR nodes ----
void ImportLeakyRelu(ImportContext& ctx) {
  CheckType(ctx, "T", kFloat);
  CheckArity(ctx, 1);
  const float alpha = ctx.attr_float("alpha", 0.2f);
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("alpha", static_cast<double>(alpha));
  ctx.SetOutput(0, ctx.Emit1("LeakyRelu", {ctx.input(0)}, std::move(attrs)));
}

void ImportEquality(ImportContext& ctx) {
  CheckType(ctx, "T", kAll | kStringT);
  CheckArity(ctx, 2);
  const bool strict = ctx.attr_bool("incompatible_shape_error", true);
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("incompatible_shape_error", strict);
  ctx.SetOutput(0, ctx.Emit1(ctx.op(), {ctx.input(0), ctx.input(1)}, std::move(attrs)));
}

void ImportApproximateEqual(ImportContext& ctx) {
  CheckType(ctx, "T", kNumeric);
  CheckArity(ctx, 2);
  const float tolerance = ctx.attr_float("tolerance", 1e-5f);
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("tolerance", static_cast<double>(tolerance));
  ctx.SetOutput(0, ctx.Emit1("ApproximateEqual", {ctx.input(0), ctx.input(1)}, std::move(attrs)));
}

// Integer truncating division is IR Div; TensorFlow has no CPU kernel for floating TruncateDiv.
void ImportTruncateDiv(ImportContext& ctx) {
  CheckType(ctx, "T", kInt);
  CheckArity(ctx, 2);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Div", {ctx.input(0), ctx.input(1)}));
}

void ImportAddN(ImportContext& ctx) {
  CheckType(ctx, "T", kNumeric);
  if (ctx.num_inputs() < 1) ctx.Invalid("AddN needs at least one input");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("AddN", ctx.input_values()));
}

// Cast: numeric, bool and complex types (ir "Cast" in docs/ops/elementwise.md).
void ImportCast(ImportContext& ctx) {
  for (const char* attr : {"SrcT", "DstT"})
    if (!ctx.has_attr(attr) || (ctx.attr_type(attr) != DType::kComplex64 && ctx.attr_type(attr) != DType::kComplex128))
      CheckType(ctx, attr, kAll);
  CheckArity(ctx, 1);
  const DType dst = ctx.attr_type("DstT");
  const bool truncate = ctx.attr_bool("Truncate", false);
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("to", dst);
  attrs.Set("truncate", truncate);
  ctx.SetOutput(0, ctx.Emit1("Cast", {ctx.input(0)}, std::move(attrs)));
}

// Reshapes a rank-1 value to [-1, 1, ..., 1] of rank `rank`: folded when the value is constant,
// else an IR Reshape (array family) with a constant target shape.
ir::ValueId ReshapeVectorForAxis0(ImportContext& ctx, int input, int rank, const std::string& suffix) {
  std::vector<int64_t> dims(static_cast<size_t>(rank), 1);
  if (const Tensor* c = ctx.constant_input(input)) {
    dims[0] = c->num_elements();
    return ctx.Constant(c->Reshaped(dims), suffix);
  }
  dims[0] = -1;
  const ir::ValueId shape = ctx.Constant(Tensor::FromVector<int64_t>(DType::kInt64, {rank}, dims), suffix + "_shape");
  return ctx.Emit1("Reshape", {ctx.input(input), shape}, {}, suffix);
}

// BiasAdd / BiasAddV1 -> Add. NHWC: the bias broadcasts along the last dim as is. NCHW: the bias
// applies to dim 1, so it is reshaped to [C, 1, ..., 1] (rank of the value - 1 trailing ones).
void ImportBiasAdd(ImportContext& ctx) {
  CheckType(ctx, "T", kNumeric);
  CheckArity(ctx, 2);
  const std::string format = ctx.op() == "BiasAddV1" ? "NHWC" : ctx.attr_string("data_format", "NHWC");
  if (format != "NHWC" && format != "NCHW") ctx.Unsupported(fmt::format("BiasAdd with data_format '{}'", format));
  const ir::SymShape value_shape = ctx.input_shape(0);
  const ir::SymShape bias_shape = ctx.input_shape(1);
  if (value_shape.rank_known && value_shape.rank() < 2)
    ctx.Invalid(fmt::format("input must be at least 2-D, got rank {}", value_shape.rank()));
  if (bias_shape.rank_known && bias_shape.rank() != 1)
    ctx.Invalid(fmt::format("bias must be 1-D, got rank {}", bias_shape.rank()));
  const bool nchw = format == "NCHW";
  if (nchw && !value_shape.rank_known && !ctx.validate_only())
    ctx.Unsupported("BiasAdd with data_format NCHW on an input of unknown rank");
  if (ctx.validate_only()) return;
  ir::ValueId bias = ctx.input(1);
  if (nchw && value_shape.rank() > 2) bias = ReshapeVectorForAxis0(ctx, 1, value_shape.rank() - 1, "bias");
  ctx.SetOutput(0, ctx.Emit1("Add", {ctx.input(0), bias}));
}

// Select (v1): cond has the inputs' shape, is a scalar, or is a vector selecting along dim 0 of
// higher-rank inputs (reshaped to [n, 1, ..., 1] so that IR Select's broadcasting applies).
void ImportSelect(ImportContext& ctx) {
  CheckType(ctx, "T", kAll | kStringT);
  CheckArity(ctx, 3);
  const ir::SymShape cs = ctx.input_shape(0);
  const ir::SymShape xs = ctx.input_shape(1);
  // 0: plain broadcasting select, 1: reshape the condition, -1: cannot tell.
  int plan;
  if (!cs.rank_known) plan = (xs.rank_known && xs.rank() <= 1) ? 0 : -1;
  else if (cs.rank() != 1) plan = 0;
  else if (!xs.rank_known) plan = -1;
  else plan = xs.rank() > 1 ? 1 : 0;
  const bool nothing_known = !cs.rank_known && !xs.rank_known;
  if (plan < 0 && !(ctx.validate_only() && nothing_known))
    ctx.Unsupported("Select with a condition or inputs of unknown rank (a rank-1 condition selects along dim 0)");
  if (ctx.validate_only()) return;
  ir::ValueId cond = ctx.input(0);
  if (plan == 1) cond = ReshapeVectorForAxis0(ctx, 0, xs.rank(), "cond");
  ctx.SetOutput(0, ctx.Emit1("Select", {cond, ctx.input(1), ctx.input(2)}));
}

// QuantizeAndDequantizeV2 / V4 (num_bits attr) and V3 (num_bits input, which must be constant).
void ImportQuantizeAndDequantize(ImportContext& ctx) {
  CheckType(ctx, "T", kFloat);
  const bool v3 = ctx.op() == "QuantizeAndDequantizeV3";
  CheckArity(ctx, v3 ? 4 : 3);
  const bool signed_input = ctx.attr_bool("signed_input", true);
  const bool range_given = ctx.attr_bool("range_given", v3);
  const std::string round_mode = v3 ? "HALF_TO_EVEN" : ctx.attr_string("round_mode", "HALF_TO_EVEN");
  const bool narrow_range = ctx.attr_bool("narrow_range", false);
  const int64_t axis = ctx.attr_int("axis", -1);
  if (round_mode != "HALF_TO_EVEN" && round_mode != "HALF_UP")
    ctx.Invalid(fmt::format("round_mode must be HALF_TO_EVEN or HALF_UP, got '{}'", round_mode));
  if (axis < -1) ctx.Invalid(fmt::format("axis should be at least -1, got {}", axis));
  int64_t num_bits = 8;
  if (v3) {
    const Tensor* nb = ctx.constant_input(3);
    if (!nb && !ctx.validate_only()) ctx.Unsupported("QuantizeAndDequantizeV3 with a non-constant num_bits");
    if (nb) {
      if (nb->num_elements() != 1) ctx.Invalid("num_bits must be a scalar");
      num_bits = nb->IntAt(0);
    }
  } else {
    num_bits = ctx.attr_int("num_bits", 8);
  }
  if (num_bits <= 0 || num_bits >= (signed_input ? 62 : 63))
    ctx.Invalid(fmt::format("num_bits is out of range: {} with signed_input {}", num_bits, signed_input));
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("signed_input", signed_input);
  attrs.Set("num_bits", num_bits);
  attrs.Set("range_given", range_given);
  attrs.Set("round_mode", round_mode);
  attrs.Set("narrow_range", narrow_range);
  attrs.Set("axis", axis);
  ctx.SetOutput(0, ctx.Emit1("QuantizeAndDequantize", {ctx.input(0), ctx.input(1), ctx.input(2)}, std::move(attrs)));
}

// FakeQuantWithMinMaxArgs (min/max attrs), FakeQuantWithMinMaxVars (scalar min/max inputs),
// FakeQuantWithMinMaxVarsPerChannel (min/max vectors over the last dim).
void ImportFakeQuant(ImportContext& ctx) {
  const bool args = ctx.op() == "FakeQuantWithMinMaxArgs";
  CheckArity(ctx, args ? 1 : 3);
  const int64_t num_bits = ctx.attr_int("num_bits", 8);
  const bool narrow_range = ctx.attr_bool("narrow_range", false);
  if (num_bits < 2 || num_bits > 16)
    ctx.Invalid(fmt::format("num_bits must be between 2 and 16, inclusive, got {}", num_bits));
  float min = 0, max = 0;
  if (args) {
    min = ctx.attr_float("min", -6.0f);
    max = ctx.attr_float("max", 6.0f);
    if (!(min < max)) ctx.Invalid(fmt::format("min has to be smaller than max, was: {} >= {}", min, max));
  }
  if (ctx.validate_only()) return;
  ir::ValueId lo, hi;
  if (args) {
    lo = ctx.Constant(Tensor::Scalar<float>(DType::kFloat32, min), "min");
    hi = ctx.Constant(Tensor::Scalar<float>(DType::kFloat32, max), "max");
  } else {
    lo = ctx.input(1);
    hi = ctx.input(2);
  }
  ir::AttrMap attrs;
  attrs.Set("num_bits", num_bits);
  attrs.Set("narrow_range", narrow_range);
  attrs.Set("divide_by_scale", ctx.op() == "FakeQuantWithMinMaxVars");
  ctx.SetOutput(0, ctx.Emit1("FakeQuant", {ctx.input(0), lo, hi}, std::move(attrs)));
}

}  // namespace

void RegisterElementwiseImporters(ImporterTable& table) {
  for (const ElementwiseMapping& m : Mappings()) table.Add(TfOpSpec{m.source_op, &ImportMapped, {}, {}});
  table.Add(TfOpSpec{"LeakyRelu", &ImportLeakyRelu, {}, {{"alpha", 0.2f}}});
  table.Add(TfOpSpec{"Equal", &ImportEquality, {}, {{"incompatible_shape_error", true}}});
  table.Add(TfOpSpec{"NotEqual", &ImportEquality, {}, {{"incompatible_shape_error", true}}});
  table.Add(TfOpSpec{"ApproximateEqual", &ImportApproximateEqual, {}, {{"tolerance", 1e-5f}}});
  table.Add(TfOpSpec{"TruncateDiv", &ImportTruncateDiv, {}, {}});
  table.Add(TfOpSpec{"AddN", &ImportAddN, {}, {}});
  table.Add(TfOpSpec{"Cast", &ImportCast, {}, {{"Truncate", false}}});
  table.Add(TfOpSpec{"BiasAdd", &ImportBiasAdd, {}, {{"data_format", std::string("NHWC")}}});
  table.Add(TfOpSpec{"BiasAddV1", &ImportBiasAdd, {}, {}});
  table.Add(TfOpSpec{"Select", &ImportSelect, {}, {}});
  const std::vector<std::pair<std::string, TfAttrDefault>> qdq_defaults = {
      {"signed_input", true}, {"num_bits", int64_t{8}},      {"range_given", false},
      {"round_mode", std::string("HALF_TO_EVEN")},           {"narrow_range", false},
      {"axis", int64_t{-1}}};
  table.Add(TfOpSpec{"QuantizeAndDequantizeV2", &ImportQuantizeAndDequantize, {}, qdq_defaults});
  table.Add(TfOpSpec{"QuantizeAndDequantizeV4", &ImportQuantizeAndDequantize, {}, qdq_defaults});
  table.Add(TfOpSpec{"QuantizeAndDequantizeV3",
                     &ImportQuantizeAndDequantize,
                     {},
                     {{"signed_input", true}, {"range_given", true}, {"narrow_range", false}, {"axis", int64_t{-1}}}});
  const std::vector<std::pair<std::string, TfAttrDefault>> fq_defaults = {{"num_bits", int64_t{8}},
                                                                          {"narrow_range", false}};
  auto args_defaults = fq_defaults;
  args_defaults.push_back({"min", -6.0f});
  args_defaults.push_back({"max", 6.0f});
  table.Add(TfOpSpec{"FakeQuantWithMinMaxArgs", &ImportFakeQuant, {}, args_defaults});
  table.Add(TfOpSpec{"FakeQuantWithMinMaxVars", &ImportFakeQuant, {}, fq_defaults});
  table.Add(TfOpSpec{"FakeQuantWithMinMaxVarsPerChannel", &ImportFakeQuant, {}, fq_defaults});
}

}  // namespace kiln::tf
