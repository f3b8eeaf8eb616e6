// Importers of TF's structural ops: constants, identities, variable reads, no-ops and
// functional control flow (If/StatelessIf, While/StatelessWhile).
#include <fmt/format.h>

#include "common/proto/tf.pb.h"
#include "frontend/tf/importer.h"

namespace kiln::tf {
namespace {

void ImportConst(ImportContext& ctx) {
  Tensor value = ctx.attr_tensor("value");
  if (ctx.has_attr("dtype") && DTypeFromTf(ctx.attr("dtype").type()) != value.dtype())
    ctx.Invalid(fmt::format("attribute dtype {} does not match its value's dtype {}",
                            DTypeName(DTypeFromTf(ctx.attr("dtype").type())), DTypeName(value.dtype())));
  if (value.dtype() == DType::kVariant || value.dtype() == DType::kResource)
    ctx.Unsupported(fmt::format("constants of dtype {} are not supported", DTypeName(value.dtype())));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Constant(std::move(value), ""));
}

// Ops that forward their first input unchanged at inference time.
void ImportPassThrough(ImportContext& ctx) {
  if (ctx.num_inputs() < 1) ctx.Invalid("expected one input");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.raw_input(0));
}

void ImportIdentityN(ImportContext& ctx) {
  if (ctx.validate_only()) return;
  for (int i = 0; i < ctx.num_inputs(); ++i) ctx.SetOutput(i, ctx.raw_input(i));
}

void ImportReadVariable(ImportContext& ctx) {
  const TfValue& var = ctx.resource_input(0);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Constant(*var.resource, ""));
}

void ImportNoOutputs(ImportContext& ctx) {}

std::vector<FunctionArg> BranchArgs(ImportContext& ctx, int first) {
  std::vector<FunctionArg> args;
  for (int i = first; i < ctx.num_inputs(); ++i) {
    FunctionArg a;
    const TfValue& v = ctx.raw_input(i);
    if (v.is_resource()) {
      a.resource = v.resource;
      a.table = v.table;
      a.resource_name = v.resource_name;
    } else {
      a.dtype = ctx.input_dtype(i);
      a.shape = ctx.input_shape(i);
    }
    args.push_back(std::move(a));
  }
  return args;
}

void ImportIf(ImportContext& ctx) {
  const std::string then_name = ctx.attr_func("then_branch");
  const std::string else_name = ctx.attr_func("else_branch");
  if (ctx.num_inputs() < 1) ctx.Invalid("expected a condition input");
  if (ctx.validate_only()) return;
  std::vector<FunctionArg> args = BranchArgs(ctx, 1);
  ir::AttrMap attrs;
  attrs.Set("then_branch", ctx.ImportFunction(then_name, args));
  attrs.Set("else_branch", ctx.ImportFunction(else_name, args));
  std::vector<ir::ValueId> inputs{ctx.input(0)};
  for (int i = 1; i < ctx.num_inputs(); ++i)
    if (!ctx.raw_input(i).is_resource()) inputs.push_back(ctx.input(i));
  const int num_outputs = static_cast<int>(ctx.attr("Tout").list().type_size());
  ctx.SetOutputs(ctx.Emit("If", std::move(inputs), std::move(attrs), num_outputs));
}

void ImportWhile(ImportContext& ctx) {
  const std::string cond_name = ctx.attr_func("cond");
  const std::string body_name = ctx.attr_func("body");
  if (ctx.validate_only()) return;
  // Loop variables that are resources (captured variables) stay bound inside cond and body
  // and pass through the loop unchanged; the rest become the IR loop's variables.
  std::vector<FunctionArg> args = BranchArgs(ctx, 0);
  // Loop-variable shapes may change between iterations: give the subgraphs rank-only shapes.
  for (FunctionArg& a : args)
    for (ir::Dim& d : a.shape.dims) d = ir::kUnknownDim;
  ir::AttrMap attrs;
  attrs.Set("cond", ctx.ImportFunction(cond_name, args));
  attrs.Set("body", ctx.ImportFunction(body_name, args));
  std::vector<ir::ValueId> inputs;
  std::vector<int> tensor_positions;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.raw_input(i).is_resource()) continue;
    inputs.push_back(ctx.input(i));
    tensor_positions.push_back(i);
  }
  std::vector<ir::ValueId> outs =
      ctx.Emit("While", std::move(inputs), std::move(attrs), static_cast<int>(tensor_positions.size()));
  for (int i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.raw_input(i).is_resource()) ctx.SetOutput(i, ctx.raw_input(i));
  for (size_t k = 0; k < tensor_positions.size(); ++k) ctx.SetOutput(tensor_positions[k], outs[k]);
}

}  // namespace

void RegisterCoreImporters(ImporterTable& table) {
  table.Add({"Const", ImportConst});
  for (const char* op : {"Identity", "Snapshot", "StopGradient", "PreventGradient", "EnsureShape", "CheckNumerics",
                         "CheckNumericsV2", "PlaceholderWithDefault", "DebugIdentity", "DebugIdentityV2"})
    table.Add({op, ImportPassThrough});
  table.Add({"IdentityN", ImportIdentityN, {{"output", "", "T"}}});
  table.Add({"ReadVariableOp", ImportReadVariable});
  table.Add({"NoOp", ImportNoOutputs});
  table.Add({"Assert", ImportNoOutputs});
  table.Add({"If", ImportIf, {{"output", "", "Tout"}}});
  table.Add({"StatelessIf", ImportIf, {{"output", "", "Tout"}}});
  table.Add({"While", ImportWhile, {{"output", "", "T"}}});
  table.Add({"StatelessWhile", ImportWhile, {{"output", "", "T"}}});
}

}  // namespace kiln::tf
