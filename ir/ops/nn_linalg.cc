// nn family IR ops of dense linear algebra on batches of innermost matrices: MatrixDeterminant,
// LogMatrixDeterminant, MatrixSolve, MatrixInverse, MatrixTriangularSolve, Cholesky. Floating
// dtypes only (Kiln holds no complex tensors). See docs/ops/nn.md.
#include <fmt/format.h>

#include <vector>

#include "ir/graph_util.h"
#include "ir/op_schema.h"

namespace kiln::ir {

void RegisterNnLinalgOps(OpRegistry& registry);

namespace {

std::string S(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }

void CheckFloating(InferContext& ctx, int i) {
  const DType t = ctx.input_dtype(i);
  if (t != DType::kInvalid && !IsFloating(t))
    ctx.Fail(fmt::format("input {} must be a floating dtype, got {}", i, DTypeName(t)));
}

void CheckSameDtype(InferContext& ctx) {
  const DType a = ctx.input_dtype(0), b = ctx.input_dtype(1);
  if (a != DType::kInvalid && b != DType::kInvalid && a != b)
    ctx.Fail(fmt::format("the matrix is {} but the right-hand side is {}: they must have the same dtype", DTypeName(a),
                         DTypeName(b)));
}

// Checks that input i is [..., M, M] where known; returns M (or an unknown dim).
Dim CheckSquare(InferContext& ctx, int i) {
  const SymShape& x = ctx.input_shape(i);
  if (!x.rank_known) return kUnknownDim;
  if (x.rank() < 2) ctx.Fail(fmt::format("expected square matrices [..., M, M], got {}", S(ctx, x)));
  const Dim m = x.dims[x.dims.size() - 2], n = x.dims.back();
  if (IsStatic(m) && IsStatic(n) && m != n)
    ctx.Fail(fmt::format("expected square matrices [..., M, M], got {}", S(ctx, x)));
  return IsStatic(m) ? m : n;
}

SymShape BatchDims(const SymShape& x) { return SymShape::Of(std::vector<Dim>(x.dims.begin(), x.dims.end() - 2)); }

// MatrixDeterminant(x) -> [...]; LogMatrixDeterminant(x) -> (sign [...], log_abs_det [...]).
void InferDeterminant(InferContext& ctx) {
  CheckFloating(ctx, 0);
  CheckSquare(ctx, 0);
  const SymShape& x = ctx.input_shape(0);
  const SymShape out = x.rank_known ? BatchDims(x) : SymShape::Unknown();
  for (int i = 0; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, ctx.input_dtype(0), out);
}

// MatrixInverse(x; adjoint) and Cholesky(x): x's shape.
void InferSquareToSquare(InferContext& ctx) {
  CheckFloating(ctx, 0);
  CheckSquare(ctx, 0);
  ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
}

// Checks that rhs is [..., M, K] for the matrix size m (when both are known).
void CheckRhsRows(InferContext& ctx, Dim m) {
  const SymShape& rhs = ctx.input_shape(1);
  if (!rhs.rank_known) return;
  if (rhs.rank() < 2) ctx.Fail(fmt::format("expected a right-hand side [..., M, K], got {}", S(ctx, rhs)));
  const Dim rows = rhs.dims[rhs.dims.size() - 2];
  if (IsStatic(rows) && IsStatic(m) && rows != m)
    ctx.Fail(fmt::format("the right-hand side {} must have {} rows (the matrices' size)", S(ctx, rhs), m));
}

// MatrixSolve(matrix [..., M, M], rhs [..., M, K]; adjoint) -> [..., M, K]: the batch dims are
// equal (not broadcast), so the output has rhs's shape.
void InferMatrixSolve(InferContext& ctx) {
  CheckFloating(ctx, 0);
  CheckSameDtype(ctx);
  const Dim m = CheckSquare(ctx, 0);
  CheckRhsRows(ctx, m);
  const SymShape& a = ctx.input_shape(0);
  const SymShape& rhs = ctx.input_shape(1);
  if (a.rank_known && rhs.rank_known) {
    if (a.rank() != rhs.rank())
      ctx.Fail(fmt::format("the matrix {} and the right-hand side {} must have the same rank", S(ctx, a), S(ctx, rhs)));
    for (size_t d = 0; d + 2 < a.dims.size(); ++d)
      if (IsStatic(a.dims[d]) && IsStatic(rhs.dims[d]) && a.dims[d] != rhs.dims[d])
        ctx.Fail(fmt::format("the matrix {} and the right-hand side {} must have the same batch dims", S(ctx, a),
                             S(ctx, rhs)));
  }
  ctx.SetOutput(0, ctx.input_dtype(0), rhs);
}

// MatrixTriangularSolve(matrix [..., M, M], rhs [..., M, K]; lower, adjoint) -> [..., M, K]
// with the batch dims broadcast.
void InferMatrixTriangularSolve(InferContext& ctx) {
  CheckFloating(ctx, 0);
  CheckSameDtype(ctx);
  const Dim m = CheckSquare(ctx, 0);
  CheckRhsRows(ctx, m);
  const SymShape& a = ctx.input_shape(0);
  const SymShape& rhs = ctx.input_shape(1);
  if (!a.rank_known || !rhs.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  SymShape out = BroadcastShapes(ctx, BatchDims(a), BatchDims(rhs));
  out.dims.push_back(rhs.dims[rhs.dims.size() - 2]);
  out.dims.push_back(rhs.dims.back());
  ctx.SetOutput(0, ctx.input_dtype(0), out);
}

}  // namespace

void RegisterNnLinalgOps(OpRegistry& registry) {
  registry.Add({"MatrixDeterminant", 1, 1, InferDeterminant});
  registry.Add({"LogMatrixDeterminant", 1, 1, InferDeterminant});
  registry.Add({"MatrixSolve", 2, 2, InferMatrixSolve});
  registry.Add({"MatrixInverse", 1, 1, InferSquareToSquare});
  registry.Add({"MatrixTriangularSolve", 2, 2, InferMatrixTriangularSolve});
  registry.Add({"Cholesky", 1, 1, InferSquareToSquare});
}

}  // namespace kiln::ir
