// ONNX importers of the elementwise family: unary math, activations, broadcasting binary ops,
// comparisons, logical and bit-shift ops, the variadic Sum/Mean/Max/Min, Clip and Where.
// Everything maps onto existing IR ops (docs/ops/elementwise.md); the ONNX op -> IR mapping,
// the dtypes and what is reported unsupported are listed in docs/onnx/elementwise.md.
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "frontend/elementwise_mapping.h"
#include "frontend/onnx/importer.h"
#include "ir/dtype_class.h"
#include "ir/ops/elementwise_ops.h"
#include "kiln/half.h"

namespace kiln::onnxfe {
namespace {

using ir::kBoolT;
using ir::kFloat;
using ir::kInt;
using ir::kNumeric;
using ir::kSigned;
using ir::kStringT;
using ir::kUnsigned;

// Input i's dtype must be in `mask` (only called when not validating: dtypes are known).
DType CheckInputType(ImportContext& ctx, int i, unsigned mask) {
  const DType dt = ctx.input_dtype(i);
  if (!ir::InClass(dt, mask))
    ctx.Unsupported(fmt::format("input {} has dtype {}; {} is imported for {} inputs only", i, DTypeName(dt), ctx.op(),
                                ir::DTypeClassList(mask)));
  return dt;
}

// Every present data input has input 0's dtype (ONNX's single type variable T).
void CheckSameTypes(ImportContext& ctx, int first, int last) {
  const DType dt = ctx.input_dtype(first);
  for (int i = first + 1; i <= last; ++i)
    if (ctx.has_input(i) && ctx.input_dtype(i) != dt)
      ctx.Invalid(fmt::format("inputs {} and {} must have the same dtype, got {} and {}", first, i, DTypeName(dt),
                              DTypeName(ctx.input_dtype(i))));
}

void CheckArity(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
  for (int i = 0; i < n; ++i)
    if (!ctx.has_input(i)) ctx.Invalid(fmt::format("input {} is required", i));
}

ir::ValueId Scalar(ImportContext& ctx, DType dtype, double value, const std::string& suffix) {
  return ctx.Constant(ScalarTensor(dtype, value), suffix);
}

// Element 0 of a one-element numeric tensor, as a double.
double FirstAsDouble(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kFloat32: return t.data<float>()[0];
    case DType::kFloat64: return t.data<double>()[0];
    case DType::kFloat16: return Half::ToFloat(t.data<uint16_t>()[0]);
    case DType::kBFloat16: return BFloat16::ToFloat(t.data<uint16_t>()[0]);
    case DType::kInt8: return t.data<int8_t>()[0];
    case DType::kInt16: return t.data<int16_t>()[0];
    case DType::kInt32: return t.data<int32_t>()[0];
    case DType::kInt64: return static_cast<double>(t.data<int64_t>()[0]);
    case DType::kUInt8: return t.data<uint8_t>()[0];
    case DType::kUInt16: return t.data<uint16_t>()[0];
    case DType::kUInt32: return t.data<uint32_t>()[0];
    case DType::kUInt64: return static_cast<double>(t.data<uint64_t>()[0]);
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}

// ---- one ONNX op -> one attribute-free IR op ----
using frontend::ElementwiseMapping;

// The ONNX names of the elementwise table's ops (ir/ops/elementwise_ops.h), and two more.
const std::vector<ElementwiseMapping>& Mappings() {
  static const std::vector<ElementwiseMapping> mappings = [] {
    std::vector<ElementwiseMapping> all;
    for (const ir::elementwise::OpInfo& op : ir::elementwise::AllOps())
      for (const ir::elementwise::ForeignOp& onnx : op.onnx)
        if (onnx.name) all.push_back({onnx.name, op.name, onnx.types, ir::elementwise::Arity(op.pattern)});
    all.push_back({"Equal", "Equal", kNumeric | kBoolT | kStringT, 2});  // string from opset 19
    all.push_back({"Xor", "NotEqual", kBoolT, 2});
    return all;
  }();
  return mappings;
}

void ImportMapped(ImportContext& ctx) {
  const ElementwiseMapping& m = frontend::FindElementwiseMapping(Mappings(), ctx.op());
  CheckArity(ctx, m.arity);
  if (ctx.validate_only()) return;
  CheckInputType(ctx, 0, m.types);
  CheckSameTypes(ctx, 0, m.arity - 1);
  ctx.SetOutput(0, ctx.Emit1(m.ir_op, ctx.input_values()));
}

// ImportMapped is the importer of every op in Mappings().
void RegisterMappedImporters() {
  for (const ElementwiseMapping& m : Mappings()) OnnxImporterRegistry().Add(m.source_op, ImportMapped);
}
KILN_STATIC_REGISTRATION(RegisterMappedImporters());

// ---- activations with attributes ----

ir::AttrMap CastAttrs(DType to) {
  ir::AttrMap attrs;
  attrs.Set("to", to);
  attrs.Set("truncate", false);
  return attrs;
}

ir::ValueId EmitCast(ImportContext& ctx, ir::ValueId x, DType to, const std::string& suffix) {
  return ctx.Emit1("Cast", {x}, CastAttrs(to), suffix);
}

bool IsHalfWidth(DType dt) { return dt == DType::kFloat16 || dt == DType::kBFloat16; }

// Activations composed of several IR ops, or comparing against a float attribute, compute
// float16/bfloat16 inputs in float32 and round once at the end (rounding every step, or the
// attribute, to 16 bits could exceed ONNX's tolerance or flip a comparison). Other dtypes
// compute in their own type.
struct Work {
  DType in;  // the input's dtype (and the output's)
  DType dt;  // the dtype computed in
  ir::ValueId x;
};

Work Widen(ImportContext& ctx, DType in) {
  const DType dt = IsHalfWidth(in) ? DType::kFloat32 : in;
  const ir::ValueId x = dt == in ? ctx.input(0) : EmitCast(ctx, ctx.input(0), dt, "to_f32");
  return {in, dt, x};
}

void Finish(ImportContext& ctx, const Work& w, ir::ValueId y) {
  ctx.SetOutput(0, w.dt == w.in ? y : ctx.Emit1("Cast", {y}, CastAttrs(w.in)));
}

bool ExactIn(DType dt, float v) {
  if (dt == DType::kFloat16) return Half::ToFloat(Half::FromFloat(v)) == v;
  if (dt == DType::kBFloat16) return BFloat16::ToFloat(BFloat16::FromFloat(v)) == v;
  return true;
}

// LeakyRelu(alpha = 0.01): x >= 0 ? x : alpha * x. The IR LeakyRelu rounds alpha to the
// input dtype first, so 16-bit inputs with an alpha they cannot hold run in float32.
void ImportLeakyRelu(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const float alpha = ctx.attr_float("alpha", 0.01f);
  if (ctx.validate_only()) return;
  const DType in = CheckInputType(ctx, 0, kFloat);
  ir::AttrMap attrs;
  attrs.Set("alpha", static_cast<double>(alpha));
  if (ExactIn(in, alpha)) {
    ctx.SetOutput(0, ctx.Emit1("LeakyRelu", {ctx.input(0)}, std::move(attrs)));
    return;
  }
  const Work w = Widen(ctx, in);
  Finish(ctx, w, ctx.Emit1("LeakyRelu", {w.x}, std::move(attrs), "leaky_relu"));
}
KILN_ONNX_IMPORTER("LeakyRelu", ImportLeakyRelu);

// x < 0 ? alpha * (exp(x) - 1) : x, from the IR Elu (alpha 1).
ir::ValueId EmitElu(ImportContext& ctx, const Work& w, float alpha) {
  const ir::ValueId elu = ctx.Emit1("Elu", {w.x}, {}, "elu");
  if (alpha == 1.0f) return elu;
  const ir::ValueId neg = ctx.Emit1("Less", {w.x, Scalar(ctx, w.dt, 0.0, "zero")}, {}, "negative");
  const ir::ValueId scaled = ctx.Emit1("Mul", {elu, Scalar(ctx, w.dt, alpha, "alpha")}, {}, "scaled");
  return ctx.Emit1("Select", {neg, scaled, w.x}, {}, "select");
}

// What Elu and Celu share: one float input and attribute alpha (default 1), with which both
// are the IR Elu. Returns the alpha when the node is left to compose, or nullopt when it is
// done (validated only, or imported as the IR Elu).
std::optional<float> EluAlphaToCompose(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const float alpha = ctx.attr_float("alpha", 1.0f);
  if (ctx.validate_only()) return std::nullopt;
  CheckInputType(ctx, 0, kFloat);
  if (alpha != 1.0f) return alpha;
  ctx.SetOutput(0, ctx.Emit1("Elu", {ctx.input(0)}));
  return std::nullopt;
}

// Elu(alpha = 1): x < 0 ? alpha * (exp(x) - 1) : x. alpha 1 is the IR Elu.
void ImportElu(ImportContext& ctx) {
  const std::optional<float> alpha = EluAlphaToCompose(ctx);
  if (!alpha) return;
  const Work w = Widen(ctx, ctx.input_dtype(0));
  Finish(ctx, w, EmitElu(ctx, w, *alpha));
}
KILN_ONNX_IMPORTER("Elu", ImportElu);

// Selu(alpha = 1.67326..., gamma = 1.05070...): gamma * (x <= 0 ? alpha * (exp(x) - 1) : x).
// The defaults are the IR Selu; other values compose gamma * Elu_alpha(x).
void ImportSelu(ImportContext& ctx) {
  CheckArity(ctx, 1);
  constexpr float kAlpha = 1.67326319217681884765625f;
  constexpr float kGamma = 1.05070102214813232421875f;
  const float alpha = ctx.attr_float("alpha", kAlpha);
  const float gamma = ctx.attr_float("gamma", kGamma);
  if (ctx.validate_only()) return;
  const DType in = CheckInputType(ctx, 0, kFloat);
  if (alpha == kAlpha && gamma == kGamma) {
    ctx.SetOutput(0, ctx.Emit1("Selu", {ctx.input(0)}));
    return;
  }
  const Work w = Widen(ctx, in);
  const ir::ValueId elu = EmitElu(ctx, w, alpha);
  Finish(ctx, w, ctx.Emit1("Mul", {elu, Scalar(ctx, w.dt, gamma, "gamma")}, {}, "selu"));
}
KILN_ONNX_IMPORTER("Selu", ImportSelu);

// Celu(alpha = 1): max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), as the spec writes it
// (alpha 1 is the IR Elu).
void ImportCelu(ImportContext& ctx) {
  const std::optional<float> alpha = EluAlphaToCompose(ctx);
  if (!alpha) return;
  const Work w = Widen(ctx, ctx.input_dtype(0));
  const DType dt = w.dt;
  const ir::ValueId a = Scalar(ctx, dt, *alpha, "alpha");
  const ir::ValueId zero = Scalar(ctx, dt, 0.0, "zero");
  const ir::ValueId e = ctx.Emit1("Exp", {ctx.Emit1("Div", {w.x, a}, {}, "x_over_alpha")}, {}, "exp");
  const ir::ValueId em1 = ctx.Emit1("Sub", {e, Scalar(ctx, dt, 1.0, "one")}, {}, "exp_minus_1");
  const ir::ValueId neg = ctx.Emit1("Minimum", {zero, ctx.Emit1("Mul", {a, em1}, {}, "scaled")}, {}, "neg_part");
  const ir::ValueId pos = ctx.Emit1("Maximum", {zero, w.x}, {}, "pos_part");
  Finish(ctx, w, ctx.Emit1("Add", {pos, neg}, {}, "celu"));
}
KILN_ONNX_IMPORTER("Celu", ImportCelu);

// max(0, min(1, alpha * x + beta)).
ir::ValueId EmitHardSigmoid(ImportContext& ctx, const Work& w, float alpha, float beta) {
  const ir::ValueId ax = ctx.Emit1("Mul", {w.x, Scalar(ctx, w.dt, alpha, "alpha")}, {}, "ax");
  const ir::ValueId axb = ctx.Emit1("Add", {ax, Scalar(ctx, w.dt, beta, "beta")}, {}, "ax_plus_b");
  return ctx.Emit1("Clip", {axb, Scalar(ctx, w.dt, 0.0, "zero"), Scalar(ctx, w.dt, 1.0, "one")}, {}, "clip");
}

// HardSigmoid(alpha = 0.2, beta = 0.5).
void ImportHardSigmoid(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const float alpha = ctx.attr_float("alpha", 0.2f);
  const float beta = ctx.attr_float("beta", 0.5f);
  if (ctx.validate_only()) return;
  const Work w = Widen(ctx, CheckInputType(ctx, 0, kFloat));
  Finish(ctx, w, EmitHardSigmoid(ctx, w, alpha, beta));
}
KILN_ONNX_IMPORTER("HardSigmoid", ImportHardSigmoid);

// HardSwish: x * HardSigmoid(x) with alpha = 1/6, beta = 0.5.
void ImportHardSwish(ImportContext& ctx) {
  CheckArity(ctx, 1);
  if (ctx.validate_only()) return;
  const Work w = Widen(ctx, CheckInputType(ctx, 0, kFloat));
  const ir::ValueId hs = EmitHardSigmoid(ctx, w, 1.0f / 6.0f, 0.5f);
  Finish(ctx, w, ctx.Emit1("Mul", {w.x, hs}, {}, "hard_swish"));
}
KILN_ONNX_IMPORTER("HardSwish", ImportHardSwish);

// ThresholdedRelu(alpha = 1): x > alpha ? x : 0.
void ImportThresholdedRelu(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const float alpha = ctx.attr_float("alpha", 1.0f);
  if (ctx.validate_only()) return;
  const Work w = Widen(ctx, CheckInputType(ctx, 0, kFloat));
  const ir::ValueId above = ctx.Emit1("Greater", {w.x, Scalar(ctx, w.dt, alpha, "alpha")}, {}, "above");
  Finish(ctx, w, ctx.Emit1("Select", {above, w.x, Scalar(ctx, w.dt, 0.0, "zero")}, {}, "select"));
}
KILN_ONNX_IMPORTER("ThresholdedRelu", ImportThresholdedRelu);

// Erf: floats directly. Integer inputs (allowed by ONNX) as ONNX's reference computes them:
// erf in float64, then converted back to the integer type (truncating, so only 0 and +-1).
void ImportErf(ImportContext& ctx) {
  CheckArity(ctx, 1);
  if (ctx.validate_only()) return;
  const DType dt = CheckInputType(ctx, 0, kNumeric);
  if (IsFloating(dt)) {
    ctx.SetOutput(0, ctx.Emit1("Erf", {ctx.input(0)}));
    return;
  }
  const ir::ValueId e = ctx.Emit1("Erf", {EmitCast(ctx, ctx.input(0), DType::kFloat64, "to_f64")}, {}, "erf");
  ctx.SetOutput(0, ctx.Emit1("Cast", {e}, CastAttrs(dt)));
}
KILN_ONNX_IMPORTER("Erf", ImportErf);

// Shrink(lambd = 0.5, bias = 0): x < -lambd ? x + bias : x > lambd ? x - bias : 0.
// Integer inputs (allowed by ONNX) compute in float64 against the float attributes and are
// converted back (truncating), as ONNX's reference does.
void ImportShrink(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const float lambd = ctx.attr_float("lambd", 0.5f);
  const float bias = ctx.attr_float("bias", 0.0f);
  if (ctx.validate_only()) return;
  const DType in = CheckInputType(ctx, 0, kNumeric);
  Work w = Widen(ctx, in);
  if (!IsFloating(in)) w = {in, DType::kFloat64, EmitCast(ctx, ctx.input(0), DType::kFloat64, "to_f64")};
  const DType dt = w.dt;
  const ir::ValueId x = w.x;
  const ir::ValueId b = Scalar(ctx, dt, bias, "bias");
  const ir::ValueId below = ctx.Emit1("Less", {x, Scalar(ctx, dt, -static_cast<double>(lambd), "neg_lambd")}, {}, "below");
  const ir::ValueId above = ctx.Emit1("Greater", {x, Scalar(ctx, dt, lambd, "lambd")}, {}, "above");
  const ir::ValueId hi = ctx.Emit1("Select", {above, ctx.Emit1("Sub", {x, b}, {}, "x_minus_bias"),
                                              Scalar(ctx, dt, 0.0, "zero")}, {}, "upper");
  Finish(ctx, w, ctx.Emit1("Select", {below, ctx.Emit1("Add", {x, b}, {}, "x_plus_bias"), hi}, {}, "select"));
}
KILN_ONNX_IMPORTER("Shrink", ImportShrink);

// Mish (opset 18): x * tanh(softplus(x)).
void ImportMish(ImportContext& ctx) {
  CheckArity(ctx, 1);
  if (ctx.validate_only()) return;
  const Work w = Widen(ctx, CheckInputType(ctx, 0, kFloat));
  const ir::ValueId t = ctx.Emit1("Tanh", {ctx.Emit1("Softplus", {w.x}, {}, "softplus")}, {}, "tanh");
  Finish(ctx, w, ctx.Emit1("Mul", {w.x, t}, {}, "mish"));
}
KILN_ONNX_IMPORTER("Mish", ImportMish);

// Gelu (opset 20), approximate = "none": 0.5 * x * (1 + erf(x / sqrt(2)));
// "tanh": 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))).
void ImportGelu(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const std::string approx = ctx.attr_string("approximate", "none");
  if (approx != "none" && approx != "tanh")
    ctx.Invalid(fmt::format("attribute 'approximate' must be \"none\" or \"tanh\", got \"{}\"", approx));
  if (ctx.validate_only()) return;
  const Work w = Widen(ctx, CheckInputType(ctx, 0, kFloat));
  const DType dt = w.dt;
  const ir::ValueId x = w.x;
  ir::ValueId inner;
  if (approx == "none") {
    const ir::ValueId scaled = ctx.Emit1("Mul", {x, Scalar(ctx, dt, 1.0 / std::numbers::sqrt2, "rsqrt2")}, {}, "x_over_sqrt2");
    inner = ctx.Emit1("Erf", {scaled}, {}, "erf");
  } else {
    const ir::ValueId x3 = ctx.Emit1("Mul", {ctx.Emit1("Square", {x}, {}, "x2"), x}, {}, "x3");
    const ir::ValueId poly = ctx.Emit1("Add", {x, ctx.Emit1("Mul", {x3, Scalar(ctx, dt, 0.044715, "c")}, {}, "cx3")}, {}, "poly");
    const ir::ValueId arg = ctx.Emit1("Mul", {poly, Scalar(ctx, dt, std::sqrt(2.0 / std::numbers::pi), "k")}, {}, "arg");
    inner = ctx.Emit1("Tanh", {arg}, {}, "tanh");
  }
  const ir::ValueId one_plus = ctx.Emit1("Add", {inner, Scalar(ctx, dt, 1.0, "one")}, {}, "one_plus");
  const ir::ValueId half_x = ctx.Emit1("Mul", {x, Scalar(ctx, dt, 0.5, "half")}, {}, "half_x");
  Finish(ctx, w, ctx.Emit1("Mul", {half_x, one_plus}, {}, "gelu"));
}
KILN_ONNX_IMPORTER("Gelu", ImportGelu);

// PRelu(X, slope): slope broadcasts to X; X < 0 ? slope * X : X. (ONNX allows float,
// int32/64, uint32/64; other integer widths compute the same formula.)
void ImportPRelu(ImportContext& ctx) {
  CheckArity(ctx, 2);
  if (ctx.validate_only()) return;
  const DType dt = CheckInputType(ctx, 0, kNumeric);
  CheckSameTypes(ctx, 0, 1);
  const ir::ValueId x = ctx.input(0);
  const ir::ValueId neg = ctx.Emit1("Less", {x, Scalar(ctx, dt, 0.0, "zero")}, {}, "negative");
  const ir::ValueId scaled = ctx.Emit1("Mul", {x, ctx.input(1)}, {}, "scaled");
  ctx.SetOutput(0, ctx.Emit1("Select", {neg, scaled, x}));
}
KILN_ONNX_IMPORTER("PRelu", ImportPRelu);

// IsInf(detect_negative = 1, detect_positive = 1).
void ImportIsInf(ImportContext& ctx) {
  CheckArity(ctx, 1);
  const int64_t neg = ctx.attr_int("detect_negative", 1);
  const int64_t pos = ctx.attr_int("detect_positive", 1);
  if (ctx.validate_only()) return;
  const DType dt = CheckInputType(ctx, 0, kFloat);
  const ir::ValueId x = ctx.input(0);
  if (neg != 0 && pos != 0) {
    ctx.SetOutput(0, ctx.Emit1("IsInf", {x}));
  } else if (neg != 0 || pos != 0) {
    const double inf = std::numeric_limits<double>::infinity();
    ctx.SetOutput(0, ctx.Emit1("Equal", {x, Scalar(ctx, dt, pos != 0 ? inf : -inf, "inf")}));
  } else {  // detects nothing: all false
    ir::AttrMap a;
    a.Set("out_type", DType::kInt64);
    const ir::ValueId shape = ctx.Emit1("Shape", {x}, std::move(a), "shape");
    ctx.SetOutput(0, ctx.Emit1("Fill", {shape, Scalar(ctx, DType::kBool, 0.0, "false")}));
  }
}
KILN_ONNX_IMPORTER("IsInf", ImportIsInf);

// Pow(X: T, Y: T1). Same dtypes: the IR Pow. Otherwise, as ONNX's reference (numpy's type
// promotion, then a cast to T): a floating or mixed pair computes in float64; two integer
// types compute in int64 (wrapping, as the IR Pow does; a negative integer exponent is a
// run-time error there, as in numpy).
void ImportPow(ImportContext& ctx) {
  CheckArity(ctx, 2);
  if (ctx.validate_only()) return;
  const DType t = CheckInputType(ctx, 0, kFloat | kInt);
  const DType t1 = CheckInputType(ctx, 1, kFloat | kInt);
  if (t == t1) {
    ctx.SetOutput(0, ctx.Emit1("Pow", {ctx.input(0), ctx.input(1)}));
    return;
  }
  const DType wide = (IsFloating(t) || IsFloating(t1)) ? DType::kFloat64 : DType::kInt64;
  ir::ValueId x = ctx.input(0);
  ir::ValueId y = ctx.input(1);
  if (t != wide) x = EmitCast(ctx, x, wide, "x_wide");
  if (t1 != wide) y = EmitCast(ctx, y, wide, "y_wide");
  const ir::ValueId p = ctx.Emit1("Pow", {x, y}, {}, "pow");
  ctx.SetOutput(0, t == wide ? p : EmitCast(ctx, p, t, "cast"));
}
KILN_ONNX_IMPORTER("Pow", ImportPow);

// Mod(fmod = 0): fmod 0 is the integer remainder with the divisor's sign (IR FloorMod);
// fmod 1 is C's fmod, the dividend's sign (IR TruncateMod). Floats require fmod 1.
void ImportMod(ImportContext& ctx) {
  CheckArity(ctx, 2);
  const int64_t fmod = ctx.attr_int("fmod", 0);
  if (fmod != 0 && fmod != 1) ctx.Invalid(fmt::format("attribute 'fmod' must be 0 or 1, got {}", fmod));
  if (ctx.validate_only()) return;
  const DType dt = CheckInputType(ctx, 0, kNumeric);
  CheckSameTypes(ctx, 0, 1);
  if (IsFloating(dt) && fmod == 0) ctx.Invalid("fmod must be 1 for floating-point inputs");
  ctx.SetOutput(0, ctx.Emit1(fmod == 1 ? "TruncateMod" : "FloorMod", {ctx.input(0), ctx.input(1)}));
}
KILN_ONNX_IMPORTER("Mod", ImportMod);

// BitShift(direction): unsigned integers; a shift by the bit width or more gives 0 (the IR
// shifts clamp the amount, so those elements are selected to 0).
void ImportBitShift(ImportContext& ctx) {
  CheckArity(ctx, 2);
  const std::string dir = ctx.attr_string("direction");
  if (dir != "LEFT" && dir != "RIGHT")
    ctx.Invalid(fmt::format("attribute 'direction' must be \"LEFT\" or \"RIGHT\", got \"{}\"", dir));
  if (ctx.validate_only()) return;
  const DType dt = CheckInputType(ctx, 0, kUnsigned);
  CheckSameTypes(ctx, 0, 1);
  const ir::ValueId x = ctx.input(0);
  const ir::ValueId y = ctx.input(1);
  const double bits = 8.0 * static_cast<double>(DTypeSize(dt));
  const ir::ValueId shifted = ctx.Emit1(dir == "LEFT" ? "LeftShift" : "RightShift", {x, y}, {}, "shift");
  const ir::ValueId in_range = ctx.Emit1("Less", {y, Scalar(ctx, dt, bits, "bits")}, {}, "in_range");
  ctx.SetOutput(0, ctx.Emit1("Select", {in_range, shifted, Scalar(ctx, dt, 0.0, "zero")}));
}
KILN_ONNX_IMPORTER("BitShift", ImportBitShift);

// Sum / Mean / Max / Min: one or more inputs with numpy broadcasting, folded left to right.
void ImportVariadic(ImportContext& ctx) {
  const std::string& op = ctx.op();
  if (ctx.num_inputs() < 1) ctx.Invalid("needs at least one input");
  for (int i = 0; i < ctx.num_inputs(); ++i)
    if (!ctx.has_input(i)) ctx.Invalid(fmt::format("input {} is required", i));
  if (ctx.validate_only()) return;
  const bool minmax = op == "Max" || op == "Min";
  const DType dt = CheckInputType(ctx, 0, minmax ? kNumeric : kFloat);
  CheckSameTypes(ctx, 0, ctx.num_inputs() - 1);
  const char* ir_op = op == "Max" ? "Maximum" : op == "Min" ? "Minimum" : "Add";
  ir::ValueId acc = ctx.input(0);
  if (ctx.num_inputs() == 1 && op != "Mean") {
    ctx.SetOutput(0, ctx.Emit1("Identity", {acc}));
    return;
  }
  const int n = ctx.num_inputs();
  for (int i = 1; i < n; ++i)
    acc = ctx.Emit1(ir_op, {acc, ctx.input(i)}, {}, i == n - 1 && op != "Mean" ? "" : fmt::format("acc{}", i));
  if (op == "Mean") acc = ctx.Emit1("Div", {acc, Scalar(ctx, dt, n, "count")});
  ctx.SetOutput(0, acc);
}
KILN_ONNX_IMPORTERS(ImportVariadic, "Sum", "Mean", "Max", "Min");

// Clip(input, min?, max?) (opset 11+ form): min(max(x, min), max); an omitted bound is no
// bound. Constant scalar bounds with min <= max are the IR Clip; otherwise Maximum/Minimum
// (which also gives max when min > max, and propagates NaN bounds, like numpy's clip).
// Clip-6 (opsets 6-10) has the bounds as float attributes min and max, and only float types.
void ImportClip(ImportContext& ctx) {
  const bool bound_attrs = ctx.opset() < 11;
  if (bound_attrs && ctx.num_inputs() != 1) ctx.Invalid(fmt::format("Clip-6 has one input, got {}", ctx.num_inputs()));
  if (ctx.num_inputs() < 1 || ctx.num_inputs() > 3) ctx.Invalid(fmt::format("expected 1 to 3 inputs, got {}", ctx.num_inputs()));
  if (ctx.validate_only()) return;
  if (bound_attrs) {
    CheckInputType(ctx, 0, kFloat);
    const DType t = ctx.input_dtype(0);
    if (ctx.has_attr("min")) ctx.SetConstantInput(1, ScalarTensor(t, ctx.attr_float("min")), "min");
    if (ctx.has_attr("max")) ctx.SetConstantInput(2, ScalarTensor(t, ctx.attr_float("max")), "max");
  }
  CheckInputType(ctx, 0, kNumeric);
  CheckSameTypes(ctx, 0, 2);
  ir::ValueId x = ctx.input(0);
  const bool has_lo = ctx.has_input(1), has_hi = ctx.has_input(2);
  if (has_lo && has_hi) {
    const Tensor* lo = ctx.constant_input(1);
    const Tensor* hi = ctx.constant_input(2);
    if (lo && hi && lo->num_elements() == 1 && hi->num_elements() == 1 && lo->rank() == 0 && hi->rank() == 0) {
      const double l = FirstAsDouble(*lo), h = FirstAsDouble(*hi);
      if (l <= h) {  // false for NaN
        ctx.SetOutput(0, ctx.Emit1("Clip", {x, ctx.input(1), ctx.input(2)}));
        return;
      }
    }
  }
  if (!has_lo && !has_hi) {
    ctx.SetOutput(0, ctx.Emit1("Identity", {x}));
    return;
  }
  if (has_lo) x = ctx.Emit1("Maximum", {x, ctx.input(1)}, {}, has_hi ? "lower" : "");
  if (has_hi) x = ctx.Emit1("Minimum", {x, ctx.input(2)});
  ctx.SetOutput(0, x);
}
KILN_ONNX_IMPORTER("Clip", ImportClip);

// Where(condition, X, Y): the IR Select.
void ImportWhere(ImportContext& ctx) {
  CheckArity(ctx, 3);
  if (ctx.validate_only()) return;
  if (ctx.input_dtype(0) != DType::kBool)
    ctx.Invalid(fmt::format("input 0 (condition) must be bool, got {}", DTypeName(ctx.input_dtype(0))));
  CheckInputType(ctx, 1, kNumeric | kBoolT | kStringT);
  CheckSameTypes(ctx, 1, 2);
  ctx.SetOutput(0, ctx.Emit1("Select", {ctx.input(0), ctx.input(1), ctx.input(2)}));
}
KILN_ONNX_IMPORTER("Where", ImportWhere);

}  // namespace

}  // namespace kiln::onnxfe
