// Random IR ops: Dropout (ONNX's, training mode included; not foldable: without a seed each run
// draws anew) and TensorFlow's stateless RNG, StatelessRandomGetKeyCounter and StatelessRandom
// (pure functions of seed, key and counter, so foldable). See docs/ops/nn.md, "Dropout" and
// "Stateless random".
#include <fmt/format.h>

#include <string>

#include "ir/op_schema.h"
#include "ir/ops/array_common.h"

namespace kiln::ir {

void RegisterRandomOps(OpRegistry& registry);

namespace {

// A scalar input (rank 0, or one element).
void CheckScalar(InferContext& ctx, int i, const char* what) {
  const SymShape& s = ctx.input_shape(i);
  if (s.rank_known && (s.rank() > 1 || (s.rank() == 1 && IsStatic(s.dims[0]) && s.dims[0] != 1)))
    ctx.Fail(fmt::format("{} must be a scalar, got shape {}", what, ctx.graph().ShapeToString(s)));
}

// ---- Dropout(x, ratio, training_mode) attr seed? -> (y, mask) ----
void InferDropout(InferContext& ctx) {
  if (!IsFloating(ctx.input_dtype(0)))
    ctx.Fail(fmt::format("x must be a floating-point tensor, got {}", DTypeName(ctx.input_dtype(0))));
  if (!IsFloating(ctx.input_dtype(1)))
    ctx.Fail(fmt::format("ratio must be a floating-point scalar, got {}", DTypeName(ctx.input_dtype(1))));
  if (ctx.input_dtype(2) != DType::kBool)
    ctx.Fail(fmt::format("training_mode must be a bool scalar, got {}", DTypeName(ctx.input_dtype(2))));
  CheckScalar(ctx, 1, "ratio");
  CheckScalar(ctx, 2, "training_mode");
  if (const Tensor* r = ctx.constant_input(1); r && r->num_elements() == 1) {
    const double ratio = r->DoubleAt(0);
    if (!(ratio >= 0 && ratio < 1)) ctx.Fail(fmt::format("ratio must be in [0, 1), got {}", ratio));
  }
  ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
  if (ctx.num_outputs() > 1) ctx.SetOutput(1, DType::kBool, ctx.input_shape(0));
}

// A vector input of `dtype` with a static length `n` when `exact`, at least `n` otherwise.
void CheckVector(InferContext& ctx, int i, const char* what, DType dtype, int64_t n, bool exact) {
  if (ctx.input_dtype(i) != dtype)
    ctx.Fail(fmt::format("{} must be {}, got {}", what, DTypeName(dtype), DTypeName(ctx.input_dtype(i))));
  const SymShape& s = ctx.input_shape(i);
  if (!s.rank_known) return;
  const bool bad_len = IsStatic(s.dims[0]) && (exact ? s.dims[0] != n : s.dims[0] < n);
  if (s.rank() != 1 || bad_len)
    ctx.Fail(
        fmt::format("{} must have shape [{}{}], got {}", what, exact ? "" : ">= ", n, ctx.graph().ShapeToString(s)));
}

// ---- StatelessRandomGetKeyCounter(seed [2] int32/int64) -> key [1] uint64, counter [2] uint64 ----
void InferGetKeyCounter(InferContext& ctx) {
  const DType t = ctx.input_dtype(0);
  if (t != DType::kInt32 && t != DType::kInt64)
    ctx.Fail(fmt::format("seed must be int32 or int64, got {}", DTypeName(t)));
  CheckVector(ctx, 0, "seed", t, 2, true);
  if (ctx.num_outputs() != 2) ctx.Fail(fmt::format("expected 2 outputs (key, counter), got {}", ctx.num_outputs()));
  ctx.SetOutput(0, DType::kUInt64, SymShape::Of({1}));
  ctx.SetOutput(1, DType::kUInt64, SymShape::Of({2}));
}

// The element types each distribution draws (TensorFlow's kernel registrations).
bool DistributionAllows(const std::string& dist, DType t) {
  if (dist == "uniform" || dist == "normal" || dist == "truncated_normal") return IsFloating(t);
  if (dist == "gamma") return t == DType::kFloat16 || t == DType::kFloat32 || t == DType::kFloat64;
  if (dist == "uniform_int") return t == DType::kInt32 || t == DType::kInt64;
  if (dist == "uniform_full_int")
    return t == DType::kInt32 || t == DType::kInt64 || t == DType::kUInt32 || t == DType::kUInt64;
  return false;
}

// ---- StatelessRandom(shape, key, counter, alg [, minval, maxval | alpha]) attrs distribution, dtype ----
void InferStatelessRandom(InferContext& ctx) {
  const std::string& dist = ctx.attrs().Str("distribution");
  const DType t = ctx.attrs().Type("dtype");
  if (dist != "uniform" && dist != "normal" && dist != "truncated_normal" && dist != "uniform_int" &&
      dist != "uniform_full_int" && dist != "gamma")
    ctx.Fail(fmt::format(
        "distribution must be uniform, normal, truncated_normal, uniform_int, uniform_full_int or gamma, got '{}'",
        dist));
  if (!DistributionAllows(dist, t)) ctx.Fail(fmt::format("distribution {} does not draw {}", dist, DTypeName(t)));
  const int want_inputs = dist == "uniform_int" ? 6 : dist == "gamma" ? 5 : 4;
  if (ctx.num_inputs() != want_inputs)
    ctx.Fail(fmt::format("distribution {} takes {} inputs, got {}", dist, want_inputs, ctx.num_inputs()));
  array::RequireIndexInput(ctx, 0, "shape");
  CheckVector(ctx, 1, "key", DType::kUInt64, 1, true);
  CheckVector(ctx, 2, "counter", DType::kUInt64, 1, false);
  if (ctx.input_dtype(3) != DType::kInt32)
    ctx.Fail(fmt::format("alg must be int32, got {}", DTypeName(ctx.input_dtype(3))));
  CheckScalar(ctx, 3, "alg");
  if (const Tensor* alg = ctx.constant_input(3); alg && alg->num_elements() == 1) {
    const int64_t id = alg->IntAt(0);
    if (id != 1 && id != 3)
      ctx.Fail(
          fmt::format("unsupported algorithm id {}: TensorFlow's CPU kernels draw with Philox (1) or auto-select (3){}",
                      id, id == 2 ? "; ThreeFry (2) runs on XLA only" : ""));
  }
  for (int i = 4; i < ctx.num_inputs(); ++i) {
    const char* what = dist == "gamma" ? "alpha" : i == 4 ? "minval" : "maxval";
    if (ctx.input_dtype(i) != t)
      ctx.Fail(fmt::format("{} must be {}, got {}", what, DTypeName(t), DTypeName(ctx.input_dtype(i))));
    if (dist != "gamma") CheckScalar(ctx, i, what);
  }
  auto target = array::ShapeVectorInput(ctx, 0);
  if (!target) return ctx.SetOutput(0, t, SymShape::Unknown());
  std::vector<Dim> dims;
  for (const array::SymElem& e : *target) {
    if (e.is_const && e.value < 0) ctx.Fail(fmt::format("shape has a negative size {}", e.value));
    dims.push_back(e.is_const ? e.value : e.dim);
  }
  ctx.SetOutput(0, t, SymShape::Of(std::move(dims)));
}

}  // namespace

void RegisterRandomOps(OpRegistry& registry) {
  registry.Add({"Dropout", 3, 3, InferDropout, /*foldable=*/false});
  registry.Add({"StatelessRandomGetKeyCounter", 1, 1, InferGetKeyCounter});
  registry.Add({"StatelessRandom", 4, 6, InferStatelessRandom});
}

}  // namespace kiln::ir
