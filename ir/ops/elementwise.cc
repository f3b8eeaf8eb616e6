// Elementwise IR ops: unary math and activations, broadcasting binary arithmetic, comparisons,
// logical and bitwise ops, Select, Cast, Clip, AddN, ApproximateEqual and fake quantization.
// See docs/ops/elementwise.md for each op's semantics.
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "ir/dtype_class.h"
#include "ir/op_schema.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::ir {
namespace {

void CheckDType(InferContext& ctx, int i, unsigned mask) {
  const DType dt = ctx.input_dtype(i);
  if (!InClass(dt, mask))
    ctx.Fail(
        fmt::format("input {} ('{}'): expected {}, got {}", i, ctx.input(i).name, DTypeClassName(mask), DTypeName(dt)));
}

void CheckSameDType(InferContext& ctx, int a, int b) {
  if (ctx.input_dtype(a) != ctx.input_dtype(b))
    ctx.Fail(fmt::format("inputs {} and {} must have the same dtype, got {} and {}", a, b,
                         DTypeName(ctx.input_dtype(a)), DTypeName(ctx.input_dtype(b))));
}

// The ops of the elementwise table (ir/ops/elementwise_ops.h): dtype class and shape by pattern.
void InferTableOp(InferContext& ctx) {
  const elementwise::OpInfo& op = *elementwise::FindOp(ctx.node().op);
  if (elementwise::Arity(op.pattern) == 2) CheckSameDType(ctx, 0, 1);
  CheckDType(ctx, 0, op.types);
  const DType out = elementwise::ReturnsBool(op.pattern) ? DType::kBool : ctx.input_dtype(0);
  if (elementwise::Arity(op.pattern) == 1)
    ctx.SetOutput(0, out, ctx.input_shape(0));
  else
    ctx.SetOutput(0, out, BroadcastShapes(ctx, ctx.input_shape(0), ctx.input_shape(1)));
}

// Whether two shapes are guaranteed to broadcast (every dim pair equal or one of them 1).
bool SurelyBroadcastable(const SymShape& a, const SymShape& b) {
  const size_t ra = a.dims.size(), rb = b.dims.size();
  for (size_t i = 0; i < std::min(ra, rb); ++i) {
    const Dim da = a.dims[ra - 1 - i], db = b.dims[rb - 1 - i];
    if (da == db && da != kUnknownDim) continue;
    if (da == 1 || db == 1) continue;
    return false;
  }
  return true;
}

bool SurelyIncompatible(const SymShape& a, const SymShape& b) {
  const size_t ra = a.dims.size(), rb = b.dims.size();
  for (size_t i = 0; i < std::min(ra, rb); ++i) {
    const Dim da = a.dims[ra - 1 - i], db = b.dims[rb - 1 - i];
    if (IsStatic(da) && IsStatic(db) && da != db && da != 1 && db != 1) return true;
  }
  return false;
}

// Equal / NotEqual: attr incompatible_shape_error (default true). When false, shapes that
// cannot be broadcast give a scalar (false for Equal, true for NotEqual) instead of an error.
void InferEquality(InferContext& ctx) {
  CheckSameDType(ctx, 0, 1);
  CheckDType(ctx, 0, kAll | kStringT);
  const SymShape& a = ctx.input_shape(0);
  const SymShape& b = ctx.input_shape(1);
  if (ctx.attrs().GetOr<bool>("incompatible_shape_error", true)) {
    ctx.SetOutput(0, DType::kBool, BroadcastShapes(ctx, a, b));
    return;
  }
  if (!a.rank_known || !b.rank_known) {
    ctx.SetOutput(0, DType::kBool, SymShape::Unknown());
    return;
  }
  if (SurelyIncompatible(a, b)) ctx.SetOutput(0, DType::kBool, SymShape::Scalar());
  else if (SurelyBroadcastable(a, b)) ctx.SetOutput(0, DType::kBool, BroadcastShapes(ctx, a, b));
  else ctx.SetOutput(0, DType::kBool, SymShape::Unknown());
}

// ---- others ----
void InferSelect(InferContext& ctx) {
  if (ctx.input_dtype(0) != DType::kBool)
    ctx.Fail(fmt::format("condition ('{}') must be bool, got {}", ctx.input(0).name, DTypeName(ctx.input_dtype(0))));
  CheckSameDType(ctx, 1, 2);
  CheckDType(ctx, 1, kAll | kStringT);
  SymShape s = BroadcastShapes(ctx, ctx.input_shape(1), ctx.input_shape(2));
  ctx.SetOutput(0, ctx.input_dtype(1), BroadcastShapes(ctx, ctx.input_shape(0), s));
}

// Complex types cast to and from every numeric and bool dtype (not strings).
bool IsComplexCast(DType t) { return t == DType::kComplex64 || t == DType::kComplex128; }

void InferCast(InferContext& ctx) {
  const DType from = ctx.input_dtype(0);
  const DType to = ctx.attrs().Type("to");
  if (!IsComplexCast(from)) CheckDType(ctx, 0, kAll | kStringT);
  if (!InClass(to, kAll | kStringT) && !IsComplexCast(to))
    ctx.Fail(fmt::format("cannot cast to {}: expected a numeric, complex, bool or string dtype", DTypeName(to)));
  if ((IsComplexCast(from) && to == DType::kString) || (IsComplexCast(to) && from == DType::kString))
    ctx.Fail(fmt::format("cannot cast {} to {}: complex values have no string form", DTypeName(from), DTypeName(to)));
  ctx.SetOutput(0, to, ctx.input_shape(0));
}

// Whether two known-rank shapes can be equal (static dims equal, symbolic dims left to run time).
bool MaySameShape(const SymShape& a, const SymShape& b) {
  if (a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    const Dim x = a.dims[static_cast<size_t>(i)], y = b.dims[static_cast<size_t>(i)];
    if (IsStatic(x) && IsStatic(y) && x != y) return false;
  }
  return true;
}

// Betainc(a, b, x): TensorFlow's rule: the non-scalar inputs have one shape, scalars repeat.
void InferBetainc(InferContext& ctx) {
  CheckSameDType(ctx, 0, 1);
  CheckSameDType(ctx, 0, 2);
  CheckDType(ctx, 0, kFloat);
  SymShape out = SymShape::Scalar();
  int from = -1;
  for (int i = 0; i < 3; ++i) {
    const SymShape& s = ctx.input_shape(i);
    if (s.rank_known && s.rank() == 0) continue;
    if (from >= 0 && s.rank_known && out.rank_known && !MaySameShape(s, out))
      ctx.Fail(fmt::format("inputs {} and {} must have the same shape or be scalars, got {} and {}", from, i,
                           ctx.graph().ShapeToString(out), ctx.graph().ShapeToString(s)));
    if (from < 0 || !out.rank_known) out = s;
    from = from < 0 ? i : from;
  }
  ctx.SetOutput(0, ctx.input_dtype(0), out);
}

void InferClip(InferContext& ctx) {
  CheckSameDType(ctx, 0, 1);
  CheckSameDType(ctx, 0, 2);
  CheckDType(ctx, 0, kNumeric);
  SymShape s = BroadcastShapes(ctx, ctx.input_shape(0), ctx.input_shape(1));
  ctx.SetOutput(0, ctx.input_dtype(0), BroadcastShapes(ctx, s, ctx.input_shape(2)));
}

void InferAddN(InferContext& ctx) {
  for (int i = 1; i < ctx.num_inputs(); ++i) CheckSameDType(ctx, 0, i);
  CheckDType(ctx, 0, kNumeric);
  SymShape s = ctx.input_shape(0);
  for (int i = 1; i < ctx.num_inputs(); ++i) s = BroadcastShapes(ctx, s, ctx.input_shape(i));
  ctx.SetOutput(0, ctx.input_dtype(0), s);
}

void CheckRangeInput(InferContext& ctx, int i, int want_rank, const char* what) {
  const SymShape& s = ctx.input_shape(i);
  if (s.rank_known && s.rank() != want_rank)
    ctx.Fail(fmt::format("{} must be {}, got shape {}", what, want_rank == 0 ? "a scalar" : "a vector",
                         ctx.graph().ShapeToString(s)));
}

void InferQuantizeAndDequantize(InferContext& ctx) {
  CheckDType(ctx, 0, kFloat);
  CheckSameDType(ctx, 0, 1);
  CheckSameDType(ctx, 0, 2);
  const int64_t num_bits = ctx.attrs().GetOr<int64_t>("num_bits", 8);
  const bool signed_input = ctx.attrs().GetOr<bool>("signed_input", true);
  if (num_bits <= 0 || num_bits >= (signed_input ? 62 : 63))
    ctx.Fail(fmt::format("num_bits is out of range: {} with signed_input {}", num_bits, signed_input));
  const std::string mode = ctx.attrs().GetOr<std::string>("round_mode", "HALF_TO_EVEN");
  if (mode != "HALF_TO_EVEN" && mode != "HALF_UP")
    ctx.Fail(fmt::format("round_mode must be HALF_TO_EVEN or HALF_UP, got '{}'", mode));
  const int64_t axis = ctx.attrs().GetOr<int64_t>("axis", -1);
  const SymShape& x = ctx.input_shape(0);
  if (axis < -1) ctx.Fail(fmt::format("axis must be -1 or a dimension, got {}", axis));
  if (axis >= 0 && x.rank_known && axis >= x.rank())
    ctx.Fail(fmt::format("axis {} is out of range for an input of rank {}", axis, x.rank()));
  const int want = axis == -1 ? 0 : 1;
  CheckRangeInput(ctx, 1, want, "input_min");
  CheckRangeInput(ctx, 2, want, "input_max");
  ctx.SetOutput(0, ctx.input_dtype(0), x);
}

void InferFakeQuant(InferContext& ctx) {
  for (int i = 0; i < 3; ++i)
    if (ctx.input_dtype(i) != DType::kFloat32)
      ctx.Fail(fmt::format("input {} ('{}') must be float32, got {}", i, ctx.input(i).name, DTypeName(ctx.input_dtype(i))));
  const int64_t num_bits = ctx.attrs().GetOr<int64_t>("num_bits", 8);
  if (num_bits < 2 || num_bits > 16) ctx.Fail(fmt::format("num_bits must be between 2 and 16, inclusive, got {}", num_bits));
  const SymShape& mn = ctx.input_shape(1);
  const SymShape& mx = ctx.input_shape(2);
  if (mn.rank_known && mn.rank() > 1) ctx.Fail(fmt::format("min must be a scalar or a vector, got shape {}", ctx.graph().ShapeToString(mn)));
  if (mx.rank_known && mx.rank() > 1) ctx.Fail(fmt::format("max must be a scalar or a vector, got shape {}", ctx.graph().ShapeToString(mx)));
  if (mn.rank_known && mx.rank_known && mn.rank() != mx.rank())
    ctx.Fail(fmt::format("min and max must have the same rank, got shapes {} and {}", ctx.graph().ShapeToString(mn),
                         ctx.graph().ShapeToString(mx)));
  const SymShape& x = ctx.input_shape(0);
  if (mn.rank_known && mn.rank() == 1 && x.rank_known) {
    if (x.rank() == 0) ctx.Fail("per-channel min/max need an input of rank >= 1");
    const Dim c = x.dims.back(), d = mn.dims[0];
    if (IsStatic(c) && IsStatic(d) && c != d)
      ctx.Fail(fmt::format("per-channel min has {} elements but the input's last dimension is {}", d, c));
  }
  ctx.SetOutput(0, DType::kFloat32, x);
}

void AddOp(OpRegistry& r, const char* name, int min_in, int max_in, InferFn fn) {
  r.Add(OpSchema{name, min_in, max_in, fn, true});
}

}  // namespace

void RegisterElementwiseOps(OpRegistry& registry) {
  for (const elementwise::OpInfo& op : elementwise::AllOps()) {
    const int arity = elementwise::Arity(op.pattern);
    AddOp(registry, op.name, arity, arity, &InferTableOp);
  }
  AddOp(registry, "Equal", 2, 2, &InferEquality);
  AddOp(registry, "NotEqual", 2, 2, &InferEquality);

  AddOp(registry, "Select", 3, 3, &InferSelect);
  AddOp(registry, "Cast", 1, 1, &InferCast);
  AddOp(registry, "Clip", 3, 3, &InferClip);
  AddOp(registry, "Betainc", 3, 3, &InferBetainc);
  AddOp(registry, "AddN", 1, -1, &InferAddN);
  AddOp(registry, "QuantizeAndDequantize", 3, 3, &InferQuantizeAndDequantize);
  AddOp(registry, "FakeQuant", 3, 3, &InferFakeQuant);
}

}  // namespace kiln::ir
