// ONNX importers of the core family: Identity, Constant, ConstantOfShape, Cast, CastLike,
// Dropout (inference), If. Loop is in control_flow.cc.
#include <onnx/onnx_pb.h>

#include <fmt/format.h>

#include "frontend/onnx/importer.h"
#include "frontend/onnx/onnx_model.h"

namespace kiln::onnxfe {
namespace {

void ImportIdentity(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Identity", {ctx.input(0)}));
}
KILN_ONNX_IMPORTER("Identity", ImportIdentity);

// Constant: exactly one of value, value_float(s), value_int(s), value_string(s), sparse_value.
void ImportConstant(ImportContext& ctx) {
  const char* kinds[] = {"value", "value_float", "value_floats", "value_int", "value_ints", "value_string",
                         "value_strings", "sparse_value"};
  std::string kind;
  for (const char* k : kinds)
    if (ctx.has_attr(k)) {
      if (!kind.empty()) ctx.Invalid(fmt::format("has both '{}' and '{}'; exactly one value attribute is allowed", kind, k));
      kind = k;
    }
  if (kind.empty()) ctx.Invalid("has no value attribute");
  if (kind == "sparse_value") ctx.Unsupported("sparse constants are not supported");
  Tensor t;
  if (kind == "value") {
    t = ctx.attr_tensor("value");
  } else if (kind == "value_float") {
    t = Tensor::Scalar<float>(DType::kFloat32, ctx.attr_float("value_float"));
  } else if (kind == "value_floats") {
    std::vector<float> v = ctx.attr_floats("value_floats");
    t = Tensor::FromVector(DType::kFloat32, {static_cast<int64_t>(v.size())}, v);
  } else if (kind == "value_int") {
    t = Tensor::Scalar<int64_t>(DType::kInt64, ctx.attr_int("value_int"));
  } else if (kind == "value_ints") {
    std::vector<int64_t> v = ctx.attr_ints("value_ints");
    t = Tensor::FromVector(DType::kInt64, {static_cast<int64_t>(v.size())}, v);
  } else if (kind == "value_string") {
    t = Tensor(DType::kString, {});
    t.strings()[0] = ctx.attr_string("value_string");
  } else {
    std::vector<std::string> v = ctx.attr_strings("value_strings");
    t = Tensor(DType::kString, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t.strings()[i] = v[i];
  }
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Constant(std::move(t), ""));
}
KILN_ONNX_IMPORTER("Constant", ImportConstant);

// ConstantOfShape(shape) with attr value (a one-element tensor, default float 0).
void ImportConstantOfShape(ImportContext& ctx) {
  Tensor value = ctx.has_attr("value") ? ctx.attr_tensor("value") : Tensor::Scalar<float>(DType::kFloat32, 0.0f);
  if (value.num_elements() != 1) ctx.Invalid(fmt::format("'value' must hold one element, got {}", value.num_elements()));
  if (ctx.validate_only()) return;
  Tensor scalar(value.dtype(), {});
  std::memcpy(scalar.raw_data(), value.raw_data(), DTypeSize(value.dtype()));
  const ir::ValueId v = ctx.Constant(std::move(scalar), "value");
  ir::ValueId dims = ctx.input(0);
  if (ctx.input_dtype(0) != DType::kInt64 && ctx.input_dtype(0) != DType::kInt32)
    ctx.Invalid(fmt::format("input 'input' must be int64, got {}", DTypeName(ctx.input_dtype(0))));
  ctx.SetOutput(0, ctx.Emit1("Fill", {dims, v}));
}
KILN_ONNX_IMPORTER("ConstantOfShape", ImportConstantOfShape);

DType CastTarget(ImportContext& ctx, int32_t onnx_type) {
  const DType to = DTypeFromOnnx(onnx_type);
  if (to == DType::kInvalid) ctx.Unsupported(fmt::format("casting to {} is not supported", OnnxTypeName(onnx_type)));
  return to;
}

// Strings cast both ways as ONNX's reference does (backend/reference/string_cast.h).
void EmitCast(ImportContext& ctx, DType to) {
  ir::AttrMap attrs;
  attrs.Set("to", to);
  attrs.Set("truncate", false);
  ctx.SetOutput(0, ctx.Emit1("Cast", {ctx.input(0)}, std::move(attrs)));
}

void ImportCast(ImportContext& ctx) {
  const DType to = CastTarget(ctx, static_cast<int32_t>(ctx.attr_int("to")));
  if (ctx.attr_int("saturate", 1) != 1) ctx.Unsupported("saturate=0 (float8 casts) is not supported");
  if (ctx.validate_only()) return;
  EmitCast(ctx, to);
}
KILN_ONNX_IMPORTER("Cast", ImportCast);

void ImportCastLike(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  EmitCast(ctx, ctx.input_dtype(1));
}
KILN_ONNX_IMPORTER("CastLike", ImportCastLike);

// Dropout: in inference (opsets 7-11, which have no training mode, and from 12 when
// training_mode is absent or a constant false) the identity, with an all-true mask; otherwise
// the IR Dropout (random; the node's `seed` makes it reproducible; training_mode may be computed).
void ImportDropout(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  const DType t = ctx.input_dtype(0);
  if (!IsFloating(t)) ctx.Invalid(fmt::format("data has dtype {} (expected a floating type)", DTypeName(t)));
  const Tensor* training = ctx.has_input(2) ? ctx.constant_input(2) : nullptr;
  if (ctx.opset() >= 12 && ctx.has_input(2) && !(training && training->num_elements() == 1 && !training->data<bool>()[0])) {
    if (ctx.input_dtype(2) != DType::kBool)
      ctx.Invalid(fmt::format("training_mode has dtype {} (expected bool)", DTypeName(ctx.input_dtype(2))));
    if (ctx.has_input(1) && !IsFloating(ctx.input_dtype(1)))
      ctx.Invalid(fmt::format("ratio has dtype {} (expected a floating type)", DTypeName(ctx.input_dtype(1))));
    const ir::ValueId ratio =
        ctx.has_input(1) ? ctx.input(1) : ctx.Constant(Tensor::Scalar<float>(DType::kFloat32, 0.5f), "ratio");
    ir::AttrMap attrs;
    if (ctx.has_attr("seed")) attrs.Set("seed", ctx.attr_int("seed"));
    const std::vector<ir::ValueId> outs = ctx.Emit("Dropout", {ctx.input(0), ratio, ctx.input(2)}, std::move(attrs), 2);
    ctx.SetOutput(0, outs[0]);
    if (ctx.has_output(1)) ctx.SetOutput(1, outs[1]);
    return;
  }
  ctx.SetOutput(0, ctx.Emit1("Identity", {ctx.input(0)}));
  if (ctx.has_output(1)) {
    const ir::ValueId shape = ctx.Emit1("Shape", {ctx.input(0)}, [] {
      ir::AttrMap a;
      a.Set("out_type", DType::kInt64);
      return a;
    }(), "mask_shape");
    Tensor t = Tensor::Scalar<bool>(DType::kBool, true);
    ctx.SetOutput(1, ctx.Emit1("Fill", {shape, ctx.Constant(std::move(t), "true")}, {}, "mask"));
  }
}
KILN_ONNX_IMPORTER("Dropout", ImportDropout);

// If(cond) with then_branch / else_branch: the IR If takes the outer values both branches read
// as explicit arguments.
void ImportIf(ImportContext& ctx) {
  const onnx::GraphProto& then_g = ctx.attr_graph("then_branch");
  const onnx::GraphProto& else_g = ctx.attr_graph("else_branch");
  if (then_g.output_size() != else_g.output_size() || then_g.output_size() != ctx.num_outputs())
    ctx.Invalid(fmt::format("branches return {} and {} outputs; the node has {}", then_g.output_size(),
                            else_g.output_size(), ctx.num_outputs()));
  if (ctx.validate_only()) return;
  std::vector<std::string> captured = ctx.FreeNames(then_g);
  for (const std::string& n : ctx.FreeNames(else_g))
    if (std::find(captured.begin(), captured.end(), n) == captured.end()) captured.push_back(n);
  ImportedSubgraph then_sub = ctx.ImportSubgraph(then_g, {}, captured);
  ImportedSubgraph else_sub = ctx.ImportSubgraph(else_g, {}, captured);
  if (then_sub.captured != else_sub.captured) ctx.Invalid("branches capture different outer values");
  std::vector<ir::ValueId> inputs = {ctx.input(0)};
  inputs.insert(inputs.end(), then_sub.captured.begin(), then_sub.captured.end());
  ir::AttrMap attrs;
  attrs.Set("then_branch", then_sub.graph);
  attrs.Set("else_branch", else_sub.graph);
  std::vector<ir::ValueId> outs = ctx.Emit("If", std::move(inputs), std::move(attrs), ctx.num_outputs());
  for (int i = 0; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, outs[static_cast<size_t>(i)]);
}
KILN_ONNX_IMPORTER("If", ImportIf);

}  // namespace

}  // namespace kiln::onnxfe
