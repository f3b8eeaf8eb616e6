// TF importers of the stateless random ops: StatelessRandomGetKeyCounter(Alg), StatelessRandomGetAlg,
// the V2 draws (StatelessRandomUniformV2, NormalV2, TruncatedNormalV2, UniformIntV2,
// UniformFullIntV2, GammaV3) and the forms that take a seed (StatelessRandomUniform, ...,
// StatelessRandomGammaV2). All become
// StatelessRandomGetKeyCounter / StatelessRandom (docs/ops/nn.md, "Stateless random").
#include <fmt/format.h>

#include <string>
#include <vector>

#include "frontend/tf/importer.h"

namespace kiln::tf {

void RegisterRandomImporters(ImporterTable& table);

namespace {

// TensorFlow's algorithm ids: the CPU kernels draw with Philox, which auto-select picks there.
constexpr int32_t kAlgPhilox = 1, kAlgAutoSelect = 3;

enum class Dist { kUniform, kNormal, kTruncatedNormal, kUniformInt, kUniformFullInt, kGamma };

// The IR op's `distribution` attribute.
const char* DistName(Dist d) {
  switch (d) {
    case Dist::kUniform:
      return "uniform";
    case Dist::kNormal:
      return "normal";
    case Dist::kTruncatedNormal:
      return "truncated_normal";
    case Dist::kUniformInt:
      return "uniform_int";
    case Dist::kUniformFullInt:
      return "uniform_full_int";
    case Dist::kGamma:
      return "gamma";
  }
  return "";
}

void CheckInputs(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
}

void CheckTypeIn(ImportContext& ctx, const std::string& attr, const std::vector<DType>& allowed, const char* names) {
  if (!ctx.has_attr(attr)) return;
  const DType t = ctx.attr_type(attr);
  for (DType a : allowed)
    if (t == a) return;
  ctx.Unsupported(fmt::format("{} = {} is not supported ({})", attr, DTypeName(t), names));
}

void CheckSeedType(ImportContext& ctx) { CheckTypeIn(ctx, "Tseed", {DType::kInt32, DType::kInt64}, "int32, int64"); }

// The dtypes TensorFlow's CPU kernels draw for each distribution.
void CheckDrawType(ImportContext& ctx, const std::string& dist) {
  const std::vector<DType> floats{DType::kFloat16, DType::kBFloat16, DType::kFloat32, DType::kFloat64};
  if (dist == "uniform_int")
    CheckTypeIn(ctx, "dtype", {DType::kInt32, DType::kInt64}, "int32, int64");
  else if (dist == "uniform_full_int")
    CheckTypeIn(ctx, "dtype", {DType::kInt32, DType::kInt64, DType::kUInt32, DType::kUInt64},
                "int32, int64, uint32, uint64");
  else if (dist == "gamma")
    CheckTypeIn(ctx, "dtype", {DType::kFloat16, DType::kFloat32, DType::kFloat64}, "half, float, double");
  else
    CheckTypeIn(ctx, "dtype", floats, "half, bfloat16, float, double");
}

// A constant alg other than Philox or auto-select: ThreeFry has no CPU kernel in TensorFlow either.
void CheckConstantAlg(ImportContext& ctx, int i) {
  const Tensor* alg = ctx.constant_input(i);
  if (!alg || alg->num_elements() != 1) return;
  const int64_t id = alg->IntAt(0);
  if (id != kAlgPhilox && id != kAlgAutoSelect)
    ctx.Unsupported(
        fmt::format("algorithm id {} is not supported: TensorFlow's CPU kernels draw with Philox (1) or "
                    "auto-select (3){}",
                    id, id == 2 ? "; ThreeFry (2) runs on XLA only" : ""));
}

ir::ValueId PhiloxAlg(ImportContext& ctx) {
  return ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, kAlgPhilox), "alg");
}

void ImportGetKeyCounter(ImportContext& ctx) {
  CheckInputs(ctx, 1);
  CheckSeedType(ctx);
  if (ctx.validate_only()) return;
  const std::vector<ir::ValueId> kc = ctx.Emit("StatelessRandomGetKeyCounter", {ctx.input(0)}, {}, 2);
  ctx.SetOutput(0, kc[0]);
  ctx.SetOutput(1, kc[1]);
  if (ctx.op() == "StatelessRandomGetKeyCounterAlg") ctx.SetOutput(2, PhiloxAlg(ctx));
}

void ImportGetAlg(ImportContext& ctx) {
  CheckInputs(ctx, 0);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, PhiloxAlg(ctx));
}

// kV1: the op takes a seed instead of key, counter and alg.
template <Dist kDist, bool kV1>
void ImportDraw(ImportContext& ctx) {
  const std::string dist = DistName(kDist);
  // V1: shape, seed [, minval, maxval | alpha]; V2: shape, key, counter, alg [, minval, maxval | alpha].
  const int fixed = kV1 ? 2 : 4;
  const int extra = dist == "uniform_int" ? 2 : dist == "gamma" ? 1 : 0;
  CheckInputs(ctx, fixed + extra);
  CheckDrawType(ctx, dist);
  // The shape's type attribute: T (V1), Tshape (V2), shape_dtype (StatelessRandomGammaV3).
  for (const char* attr : {"T", "Tshape", "shape_dtype"})
    CheckTypeIn(ctx, attr, {DType::kInt32, DType::kInt64}, "int32, int64");
  if (kV1)
    CheckSeedType(ctx);
  else
    CheckConstantAlg(ctx, 3);
  if (ctx.validate_only()) return;
  ir::AttrMap attrs;
  attrs.Set("distribution", dist);
  attrs.Set("dtype", ctx.attr_type("dtype"));
  std::vector<ir::ValueId> inputs{ctx.input(0)};
  if (kV1) {
    const std::vector<ir::ValueId> kc = ctx.Emit("StatelessRandomGetKeyCounter", {ctx.input(1)}, {}, 2, "key_counter");
    inputs.insert(inputs.end(), {kc[0], kc[1], PhiloxAlg(ctx)});
  } else {
    inputs.insert(inputs.end(), {ctx.input(1), ctx.input(2), ctx.input(3)});
  }
  for (int i = 0; i < extra; ++i) inputs.push_back(ctx.input(fixed + i));
  ctx.SetOutput(0, ctx.Emit1("StatelessRandom", std::move(inputs), std::move(attrs)));
}

}  // namespace

void RegisterRandomImporters(ImporterTable& table) {
  const std::vector<TfOutputArg> key_counter{{"key", "", ""}, {"counter", "", ""}};
  const std::vector<TfOutputArg> key_counter_alg{{"key", "", ""}, {"counter", "", ""}, {"alg", "", ""}};
  table.Add({"StatelessRandomGetKeyCounter", ImportGetKeyCounter, key_counter, {{"Tseed", DType::kInt64}}});
  table.Add({"StatelessRandomGetKeyCounterAlg", ImportGetKeyCounter, key_counter_alg, {{"Tseed", DType::kInt64}}});
  table.Add({"StatelessRandomGetAlg", ImportGetAlg, {}, {}});
  const TfAttrDefault f32 = DType::kFloat32, i32 = DType::kInt32, i64 = DType::kInt64, u64 = DType::kUInt64;
  table.Add({"StatelessRandomUniformV2", ImportDraw<Dist::kUniform, false>, {}, {{"dtype", f32}, {"Tshape", i32}}});
  table.Add({"StatelessRandomNormalV2", ImportDraw<Dist::kNormal, false>, {}, {{"dtype", f32}, {"Tshape", i32}}});
  table.Add(
      {"StatelessTruncatedNormalV2", ImportDraw<Dist::kTruncatedNormal, false>, {}, {{"dtype", f32}, {"Tshape", i32}}});
  table.Add({"StatelessRandomUniformIntV2", ImportDraw<Dist::kUniformInt, false>, {}, {{"Tshape", i32}}});
  table.Add({"StatelessRandomGammaV3", ImportDraw<Dist::kGamma, false>, {}, {{"shape_dtype", i32}}});
  table.Add({"StatelessRandomGammaV2", ImportDraw<Dist::kGamma, true>, {}, {{"Tseed", i64}}});
  table.Add({"StatelessRandomUniformFullIntV2",
             ImportDraw<Dist::kUniformFullInt, false>,
             {},
             {{"dtype", u64}, {"Tshape", i32}}});
  const std::vector<std::pair<std::string, TfAttrDefault>> v1{{"dtype", f32}, {"T", i32}, {"Tseed", i64}};
  table.Add({"StatelessRandomUniform", ImportDraw<Dist::kUniform, true>, {}, v1});
  table.Add({"StatelessRandomNormal", ImportDraw<Dist::kNormal, true>, {}, v1});
  table.Add({"StatelessTruncatedNormal", ImportDraw<Dist::kTruncatedNormal, true>, {}, v1});
  table.Add({"StatelessRandomUniformInt", ImportDraw<Dist::kUniformInt, true>, {}, {{"T", i32}, {"Tseed", i64}}});
  table.Add({"StatelessRandomUniformFullInt",
             ImportDraw<Dist::kUniformFullInt, true>,
             {},
             {{"dtype", u64}, {"T", i32}, {"Tseed", i64}}});
}

}  // namespace kiln::tf
