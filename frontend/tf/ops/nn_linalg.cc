// TF importers of dense linear algebra: MatrixDeterminant, LogMatrixDeterminant, MatrixSolve,
// MatrixInverse, MatrixTriangularSolve, Cholesky. TF also accepts complex matrices; Kiln holds
// no complex tensors, so those are refused.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "frontend/tf/importer.h"

namespace kiln::tf {

void RegisterNnLinalgImporters(ImporterTable& table);

namespace {

void CheckArity(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
}

void CheckFloatingT(ImportContext& ctx) {
  const DType t = ctx.attr_type("T");
  if (t == DType::kComplex64 || t == DType::kComplex128)
    ctx.Unsupported(fmt::format("T = {} is not supported: Kiln holds no complex tensors", DTypeName(t)));
  if (!IsFloating(t))
    ctx.Unsupported(fmt::format("T = {} is not supported (half, bfloat16, float, double)", DTypeName(t)));
}

// One-input ops: MatrixDeterminant, LogMatrixDeterminant (two outputs), Cholesky, MatrixInverse.
void ImportUnaryLinalg(ImportContext& ctx) {
  CheckArity(ctx, 1);
  CheckFloatingT(ctx);
  ir::AttrMap attrs;
  if (ctx.op() == "MatrixInverse") attrs.Set("adjoint", ctx.attr_bool("adjoint"));
  if (ctx.validate_only()) return;
  const int outputs = ctx.op() == "LogMatrixDeterminant" ? 2 : 1;
  ctx.SetOutputs(ctx.Emit(ctx.op(), {ctx.input(0)}, std::move(attrs), outputs));
}

void ImportMatrixSolve(ImportContext& ctx) {
  CheckArity(ctx, 2);
  CheckFloatingT(ctx);
  ir::AttrMap attrs;
  attrs.Set("adjoint", ctx.attr_bool("adjoint"));
  if (ctx.op() == "MatrixTriangularSolve") attrs.Set("lower", ctx.attr_bool("lower"));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(ctx.op(), {ctx.input(0), ctx.input(1)}, std::move(attrs)));
}

}  // namespace

void RegisterNnLinalgImporters(ImporterTable& table) {
  table.Add({"MatrixDeterminant", ImportUnaryLinalg, {}, {}});
  table.Add({"LogMatrixDeterminant", ImportUnaryLinalg, {{"sign", "", ""}, {"log_abs_determinant", "", ""}}, {}});
  table.Add({"Cholesky", ImportUnaryLinalg, {}, {}});
  table.Add({"MatrixInverse", ImportUnaryLinalg, {}, {{"adjoint", false}}});
  table.Add({"MatrixSolve", ImportMatrixSolve, {}, {{"adjoint", false}}});
  table.Add({"MatrixTriangularSolve", ImportMatrixSolve, {}, {{"lower", true}, {"adjoint", false}}});
}

}  // namespace kiln::tf
