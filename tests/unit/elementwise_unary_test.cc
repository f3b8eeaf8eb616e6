// Unary elementwise ops: shape inference and reference kernels vs hand-computed values.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <vector>

#include "ir/ops/elementwise_unary_ops.h"
#include "tests/unit/elementwise_test_util.h"

namespace kiln::ew_test {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

TEST(ElementwiseUnary, MathFunctionsFloat32) {
  const std::vector<double> x = {0.25, 0.5, 1.0, 2.0};
  struct Case {
    const char* op;
    double (*fn)(double);
  };
  const Case cases[] = {
      {"Exp", [](double v) { return std::exp(v); }},     {"Expm1", [](double v) { return std::expm1(v); }},
      {"Log", [](double v) { return std::log(v); }},     {"Log1p", [](double v) { return std::log1p(v); }},
      {"Sqrt", [](double v) { return std::sqrt(v); }},   {"Rsqrt", [](double v) { return 1 / std::sqrt(v); }},
      {"Sin", [](double v) { return std::sin(v); }},     {"Cos", [](double v) { return std::cos(v); }},
      {"Tan", [](double v) { return std::tan(v); }},     {"Atan", [](double v) { return std::atan(v); }},
      {"Sinh", [](double v) { return std::sinh(v); }},   {"Cosh", [](double v) { return std::cosh(v); }},
      {"Tanh", [](double v) { return std::tanh(v); }},   {"Asinh", [](double v) { return std::asinh(v); }},
      {"Erf", [](double v) { return std::erf(v); }},     {"Erfc", [](double v) { return std::erfc(v); }},
      {"Softsign", [](double v) { return v / (1 + std::abs(v)); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    std::vector<double> want;
    for (double v : x) want.push_back(static_cast<float>(c.fn(static_cast<float>(v))));
    ExpectNear(Doubles(RunOp(c.op, {F32({4}, x)})), want, 2e-7);
  }
  ExpectNear(Doubles(RunOp("Asin", {F32({3}, {-0.5, 0, 0.5})})), {-0.5235987755982988, 0, 0.5235987755982988}, 2e-7);
  ExpectNear(Doubles(RunOp("Acos", {F32({2}, {0, 1})})), {1.5707963267948966, 0}, 2e-7);
  ExpectNear(Doubles(RunOp("Acosh", {F32({2}, {1, 2})})), {0, 1.3169578969248166}, 2e-7);
  ExpectNear(Doubles(RunOp("Atanh", {F32({2}, {0, 0.5})})), {0, 0.5493061443340549}, 2e-7);
  ExpectNear(Doubles(RunOp("Sqrt", {F32({1}, {-1})})), {kNaN});
  ExpectNear(Doubles(RunOp("Log", {F32({1}, {0})})), {-kInf});
}

// Float32 erf (Erf, Gelu) is a polynomial, so that loops over it vectorize: within 3 ulp of the
// exact value over [-6, 6] (every 2^-12, and powers of two down to 2^-126), special values kept.
TEST(ElementwiseUnary, Float32ErfPolynomialIsWithinThreeUlp) {
  double worst_ulp = 0;
  std::vector<float> xs;
  for (int i = -6 * 4096; i <= 6 * 4096; ++i) xs.push_back(static_cast<float>(i) / 4096.0f);
  for (int e = -126; e <= 2; ++e) {
    xs.push_back(std::ldexp(1.0f, e));
    xs.push_back(std::nextafter(std::ldexp(1.0f, e), 0.0f));
    xs.push_back(-std::ldexp(1.0f, e));
  }
  for (float x : {0.999999f, 1.0f, 1.0000001f, 3.9999998f, 4.0f, 4.0000005f}) xs.push_back(x);
  for (float x : xs) {
    const float want = static_cast<float>(std::erf(static_cast<double>(x)));
    const float got = ir::elementwise::ErfFloat32(x);
    const double ulp = std::abs(static_cast<double>(got) - want) /
                       std::max(std::nextafter(std::abs(want), 2.0f) - std::abs(want), 1e-45f);
    worst_ulp = std::max(worst_ulp, ulp);
    ASSERT_LE(ulp, 3.0) << "erf(" << x << "): " << got << " against " << want;
  }
  std::cout << "float32 erf: at most " << worst_ulp << " ulp over " << xs.size() << " values\n";
  EXPECT_TRUE(std::isnan(ir::elementwise::ErfFloat32(std::nanf(""))));
  EXPECT_EQ(ir::elementwise::ErfFloat32(std::numeric_limits<float>::infinity()), 1.0f);
  EXPECT_EQ(ir::elementwise::ErfFloat32(-std::numeric_limits<float>::infinity()), -1.0f);
  EXPECT_TRUE(std::signbit(ir::elementwise::ErfFloat32(-0.0f)));
  EXPECT_EQ(ir::elementwise::ErfFloat32(0.0f), 0.0f);
}

// Float32 exp, tanh, log and log1p (Exp, Tanh, Sigmoid, Elu, Selu, Log, Log1p, Softplus) are
// polynomials too. An exhaustive check over all floats found at most 0.99 ulp (exp), 1.33 (tanh),
// 2.40 (sigmoid), 0.83 (log), 2.47 (log1p); softplus 2.75 on every 8th float; here every 509th bit pattern (8.4
// million values), the bounds 1, 1.5, 2.5, 1, 2.5 and 3 ulp, and the special values.
TEST(ElementwiseUnary, Float32ExpTanhLogAndTheirCompositesAreWithinTheirUlpBounds) {
  auto ulp_error = [](float got, double exact) {
    if (std::isnan(exact)) return std::isnan(got) ? 0.0 : std::numeric_limits<double>::infinity();
    const float want = static_cast<float>(exact);  // inf beyond the float range
    if (got == want) return 0.0;
    const float up = std::nextafter(std::abs(want), std::numeric_limits<float>::infinity());
    const double ulp = std::isinf(up) ? std::abs(static_cast<double>(want)) * std::ldexp(1.0, -23)
                                      : static_cast<double>(up) - std::abs(static_cast<double>(want));
    return std::abs(static_cast<double>(got) - exact) / ulp;
  };
  ir::elementwise::State state;
  double worst_exp = 0, worst_tanh = 0, worst_sigmoid = 0, worst_log = 0, worst_log1p = 0, worst_softplus = 0;
  const double softplus_threshold = std::log(static_cast<double>(std::numeric_limits<float>::epsilon())) + 2.0;
  for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 509) {
    const uint32_t b = static_cast<uint32_t>(bits);
    float x;
    std::memcpy(&x, &b, sizeof x);
    if (std::isnan(x)) continue;
    const double xd = x;
    const double e = ulp_error(ir::elementwise::ExpFloat32(x), std::exp(xd));
    const double t = ulp_error(ir::elementwise::TanhFloat32(x), std::tanh(xd));
    const double s = ulp_error(ir::elementwise::Sigmoid::Apply<float>(x, state), 1.0 / (1.0 + std::exp(-xd)));
    const double l = ulp_error(ir::elementwise::LogFloat32(x), std::log(xd));
    const double l1 = ulp_error(ir::elementwise::Log1pFloat32(x), std::log1p(xd));
    const float threshold = static_cast<float>(softplus_threshold);
    const double sp = ulp_error(ir::elementwise::Softplus::Apply<float>(x, state),
                                x > -threshold ? xd : (x < threshold ? std::exp(xd) : std::log1p(std::exp(xd))));
    ASSERT_LE(l, 1.0) << "log(" << x << ")";
    ASSERT_LE(l1, 2.5) << "log1p(" << x << ")";
    ASSERT_LE(sp, 3.0) << "softplus(" << x << ")";
    worst_log = std::max(worst_log, l);
    worst_log1p = std::max(worst_log1p, l1);
    worst_softplus = std::max(worst_softplus, sp);
    ASSERT_LE(e, 1.0) << "exp(" << x << ")";
    ASSERT_LE(t, 1.5) << "tanh(" << x << ")";
    ASSERT_LE(s, 2.5) << "sigmoid(" << x << ")";
    worst_exp = std::max(worst_exp, e);
    worst_tanh = std::max(worst_tanh, t);
    worst_sigmoid = std::max(worst_sigmoid, s);
  }
  std::cout << "float32 exp / tanh / sigmoid: at most " << worst_exp << " / " << worst_tanh << " / " << worst_sigmoid
            << " ulp; log / log1p / softplus: " << worst_log << " / " << worst_log1p << " / " << worst_softplus
            << " ulp\n";
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isnan(ir::elementwise::ExpFloat32(std::nanf(""))));
  EXPECT_EQ(ir::elementwise::ExpFloat32(inf), inf);
  EXPECT_EQ(ir::elementwise::ExpFloat32(89.0f), inf);
  EXPECT_EQ(ir::elementwise::ExpFloat32(-inf), 0.0f);
  EXPECT_EQ(ir::elementwise::ExpFloat32(-104.0f), 0.0f);
  EXPECT_EQ(ir::elementwise::ExpFloat32(0.0f), 1.0f);
  EXPECT_GT(ir::elementwise::ExpFloat32(-103.0f), 0.0f);  // a subnormal
  EXPECT_TRUE(std::isnan(ir::elementwise::TanhFloat32(std::nanf(""))));
  EXPECT_EQ(ir::elementwise::TanhFloat32(inf), 1.0f);
  EXPECT_EQ(ir::elementwise::TanhFloat32(-inf), -1.0f);
  EXPECT_TRUE(std::signbit(ir::elementwise::TanhFloat32(-0.0f)));
  EXPECT_EQ(ir::elementwise::Sigmoid::Apply<float>(-inf, state), 0.0f);
  EXPECT_EQ(ir::elementwise::Sigmoid::Apply<float>(inf, state), 1.0f);
  EXPECT_EQ(ir::elementwise::LogFloat32(0.0f), -inf);
  EXPECT_TRUE(std::isnan(ir::elementwise::LogFloat32(-1.0f)));
  EXPECT_EQ(ir::elementwise::LogFloat32(inf), inf);
  EXPECT_EQ(ir::elementwise::LogFloat32(1.0f), 0.0f);
  EXPECT_FLOAT_EQ(ir::elementwise::LogFloat32(1e-40f), static_cast<float>(std::log(1e-40)));  // a subnormal
  EXPECT_EQ(ir::elementwise::Log1pFloat32(-1.0f), -inf);
  EXPECT_TRUE(std::isnan(ir::elementwise::Log1pFloat32(-2.0f)));
  EXPECT_EQ(ir::elementwise::Log1pFloat32(inf), inf);
  EXPECT_TRUE(std::signbit(ir::elementwise::Log1pFloat32(-0.0f)));
  EXPECT_EQ(ir::elementwise::Log1pFloat32(1e-30f), 1e-30f);
  EXPECT_EQ(ir::elementwise::Softplus::Apply<float>(inf, state), inf);
  EXPECT_EQ(ir::elementwise::Softplus::Apply<float>(-inf, state), 0.0f);
}

TEST(ElementwiseUnary, Float64UsesDoublePrecision) {
  const Tensor out = RunOp("Exp", {F64({1}, {1.0})});
  EXPECT_EQ(out.dtype(), DType::kFloat64);
  EXPECT_DOUBLE_EQ(out.data<double>()[0], std::exp(1.0));
}

TEST(ElementwiseUnary, RoundIsHalfToEven) {
  ExpectNear(Doubles(RunOp("Round", {F32({8}, {2.5, -2.5, 3.5, 0.5, -0.5, 1.4, -1.6, 1.5})})),
             {2, -2, 4, 0, -0.0, 1, -2, 2});
  EXPECT_EQ(Ints(RunOp("Round", {I32({2}, {-7, 9})})), (std::vector<int64_t>{-7, 9}));
  ExpectNear(Doubles(RunOp("Ceil", {F32({3}, {-1.5, 1.2, 2})})), {-1, 2, 2});
  ExpectNear(Doubles(RunOp("Floor", {F32({3}, {-1.5, 1.2, 2})})), {-2, 1, 2});
}

// Every finite float8 E4M3FN value from its fields: sign, 4 exponent bits (bias 7), 3 mantissa
// bits; exponent field 0 holds the subnormals m * 2^-9; code 0x7f (and 0xff) is NaN.
std::vector<double> Float8E4M3Values() {
  std::vector<double> out;
  for (int e = 0; e < 16; ++e)
    for (int m = 0; m < 8; ++m) {
      if (e == 15 && m == 7) continue;  // NaN
      out.push_back(e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10));
    }
  return out;  // ascending, 0 to 448
}

TEST(ElementwiseUnary, RoundFloat8E4M3RoundsToTheNearestValueTiesToEvenAndSaturates) {
  const std::vector<double> values = Float8E4M3Values();
  ASSERT_EQ(values.size(), 127u);
  EXPECT_EQ(values.back(), 448.0);
  std::vector<double> x, want;
  for (size_t i = 0; i < values.size(); ++i) {
    for (double sign : {1.0, -1.0}) {
      x.push_back(sign * values[i]);
      want.push_back(sign * values[i]);  // each value is its own rounding
      if (i + 1 == values.size()) continue;
      const double lo = values[i], hi = values[i + 1], mid = (lo + hi) / 2;
      // A tie goes to the even code: codes count up with the values, so the even one is at an
      // even index (index i is code i for the positive values).
      x.push_back(sign * mid);
      want.push_back(sign * (i % 2 == 0 ? lo : hi));
      x.push_back(sign * (mid - (hi - lo) / 8));
      want.push_back(sign * lo);
      x.push_back(sign * (mid + (hi - lo) / 8));
      want.push_back(sign * hi);
    }
  }
  // Saturation (the hardware's satfinite conversion), tiny values, NaN.
  for (double v : {460.0, 464.0, 1e6, kInf}) {
    x.push_back(v);
    want.push_back(448);
    x.push_back(-v);
    want.push_back(-448);
  }
  x.push_back(std::ldexp(1, -11));  // below half the smallest subnormal 2^-9
  want.push_back(0);
  x.push_back(kNaN);
  want.push_back(kNaN);
  // Exact in float32 and float64 (every value and midpoint is), and so through the float math of
  // half inputs for the values half holds.
  ExpectNear(Doubles(RunOp("RoundFloat8E4M3", {F32({static_cast<int64_t>(x.size())}, x)})), want, 0);
  ExpectNear(Doubles(RunOp("RoundFloat8E4M3", {F64({static_cast<int64_t>(x.size())}, x)})), want, 0);
  EXPECT_EQ(Doubles(RunOp("RoundFloat8E4M3", {F16({3}, {0.3, -100.0, 500.0})})), (std::vector<double>{0.3125, -96, 448}));
}

// Float8E4M3Values() lists the values in code order (index i is code i), so the bytes FP8
// kernels read are each value's index, with the sign bit for negatives.
TEST(ElementwiseUnary, RoundFloat8E4M3BitsAreTheE4M3FNCodes) {
  const std::vector<double> values = Float8E4M3Values();
  using ir::elementwise::RoundFloat8E4M3;
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(RoundFloat8E4M3::Bits(static_cast<float>(values[i])), i) << values[i];
    if (i > 0) EXPECT_EQ(RoundFloat8E4M3::Bits(static_cast<float>(-values[i])), 0x80 + i) << -values[i];
  }
  EXPECT_EQ(RoundFloat8E4M3::Bits(-0.0f), 0x80);
  EXPECT_EQ(RoundFloat8E4M3::Bits(std::numeric_limits<float>::quiet_NaN()), 0x7F);
}

TEST(ElementwiseUnary, Activations) {
  ExpectNear(Doubles(RunOp("Relu", {F32({4}, {-1, 0, 2.5, kNaN})})), {0, 0, 2.5, kNaN});
  EXPECT_EQ(Ints(RunOp("Relu", {I8({3}, {-128, 0, 127})})), (std::vector<int64_t>{0, 0, 127}));
  ExpectNear(Doubles(RunOp("Relu6", {F32({5}, {-1, 0, 3, 6, 7.5})})), {0, 0, 3, 6, 6});
  EXPECT_EQ(Ints(RunOp("Relu6", {I32({3}, {-5, 4, 100})})), (std::vector<int64_t>{0, 4, 6}));
  // Elu: x < 0 ? exp(x) - 1 : x
  ExpectNear(Doubles(RunOp("Elu", {F32({3}, {-1, 0, 2})})), {-0.6321205588285577, 0, 2}, 1e-6);
  // Selu with TensorFlow's constants.
  ExpectNear(Doubles(RunOp("Selu", {F32({3}, {-1, 0, 2})})),
             {1.7580993408473768 * (std::exp(-1.0) - 1), 0, 2 * 1.0507009873554805}, 1e-6);
  // Softplus: stable at both ends.
  ExpectNear(Doubles(RunOp("Softplus", {F32({4}, {-100, 0, 1, 100})})),
             {std::exp(-100.0), std::log(2.0), std::log1p(std::exp(1.0)), 100}, 1e-6, 1e-44);  // exp(-100) is a float denormal
  // Sigmoid: stable at both ends.
  ExpectNear(Doubles(RunOp("Sigmoid", {F32({5}, {-100, -1, 0, 1, 100})})),
             {1 / (1 + std::exp(100.0)), 1 / (1 + std::exp(1.0)), 0.5, 1 / (1 + std::exp(-1.0)), 1}, 1e-6, 1e-44);
  EXPECT_GT(RunOp("Sigmoid", {F32({1}, {-100})}).data<float>()[0], 0.0f);
  // LeakyRelu: default alpha 0.2, attr alpha.
  ExpectNear(Doubles(RunOp("LeakyRelu", {F32({3}, {-1, 0, 2})})), {-0.2, 0, 2}, 1e-7);
  ExpectNear(Doubles(RunOp("LeakyRelu", {F32({2}, {-2, 3})}, Attrs({{"alpha", 0.1}}))), {-0.2, 3}, 1e-7);
  ExpectNear(Doubles(RunOp("LeakyRelu", {F32({2}, {-2, 3})}, Attrs({{"alpha", 1.5}}))), {-3, 3}, 1e-7);
}

TEST(ElementwiseUnary, IntegerEdgeCases) {
  const double kMin = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(Ints(RunOp("Abs", {I32({3}, {kMin, -3, 4})})), (std::vector<int64_t>{-2147483648LL, 3, 4}));
  EXPECT_EQ(Ints(RunOp("Neg", {I32({3}, {kMin, -3, 0})})), (std::vector<int64_t>{-2147483648LL, 3, 0}));
  EXPECT_EQ(Ints(RunOp("Square", {I8({3}, {-3, 12, 16})})), (std::vector<int64_t>{9, -112, 0}));  // 144, 256 wrap
  EXPECT_EQ(Ints(RunOp("Sign", {I64({3}, {-9, 0, 5})})), (std::vector<int64_t>{-1, 0, 1}));
  EXPECT_EQ(Ints(RunOp("Reciprocal", {I32({3}, {1, -1, 2})})), (std::vector<int64_t>{1, -1, 0}));
  EXPECT_EQ(Ints(RunOp("Invert", {I8({2}, {5, -1})})), (std::vector<int64_t>{-6, 0}));
  EXPECT_EQ(Ints(RunOp("Invert", {U8({2}, {0, 255})})), (std::vector<int64_t>{255, 0}));
  const std::string err = KernelError("Reciprocal", {I32({2}, {1, 0})});
  EXPECT_NE(err.find("integer division by zero"), std::string::npos) << err;
  EXPECT_NE(err.find("node 'n' (Reciprocal)"), std::string::npos) << err;
}

TEST(ElementwiseUnary, SignAndPredicates) {
  ExpectNear(Doubles(RunOp("Sign", {F32({4}, {-2.5, 0, 3, kNaN})})), {-1, 0, 1, kNaN});
  const Tensor nan = RunOp("IsNan", {F32({3}, {kNaN, 1, kInf})});
  EXPECT_EQ(nan.dtype(), DType::kBool);
  EXPECT_EQ(Ints(nan), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(Ints(RunOp("IsInf", {F32({3}, {kNaN, -kInf, 1})})), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(Ints(RunOp("IsFinite", {F16({3}, {kNaN, kInf, 1})})), (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(Ints(RunOp("LogicalNot", {Bool({2}, {1, 0})})), (std::vector<int64_t>{0, 1}));
}

TEST(ElementwiseUnary, HalfAndBFloat16) {
  const Tensor h = RunOp("Exp", {F16({2}, {0, 1})});
  EXPECT_EQ(h.dtype(), DType::kFloat16);
  EXPECT_EQ(Doubles(h), (std::vector<double>{1.0, 2.71875}));  // e rounded to half
  const Tensor b = RunOp("Tanh", {BF16({2}, {0, 1})});
  EXPECT_EQ(b.dtype(), DType::kBFloat16);
  EXPECT_EQ(Doubles(b), (std::vector<double>{0.0, 0.76171875}));  // tanh(1)=0.7616 rounded to bfloat16
  EXPECT_EQ(Doubles(RunOp("Round", {F16({2}, {2.5, 3.5})})), (std::vector<double>{2, 4}));
  EXPECT_EQ(Doubles(RunOp("LeakyRelu", {BF16({1}, {-1})}, Attrs({{"alpha", 0.3}}))), (std::vector<double>{-0.30078125}));
}

TEST(ElementwiseUnary, EmptyAndScalar) {
  const Tensor e = RunOp("Exp", {F32({0, 3}, {})});
  EXPECT_EQ(e.shape(), (Shape{0, 3}));
  const Tensor s = RunOp("Neg", {F32({}, {2})});
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.data<float>()[0], -2.0f);
}

TEST(ElementwiseUnary, ShapeInferenceKeepsSymbols) {
  ir::Graph g;
  const ir::Dim n = g.NewSymbol("N");
  const ir::Value v = Infer("Sigmoid", {{DType::kFloat32, S({n, 3})}}, {}, &g);
  EXPECT_EQ(v.dtype, DType::kFloat32);
  EXPECT_EQ(v.shape.dims, (std::vector<ir::Dim>{n, 3}));
  const ir::Value b = Infer("IsNan", {{DType::kFloat16, ir::SymShape::Unknown()}});
  EXPECT_EQ(b.dtype, DType::kBool);
  EXPECT_FALSE(b.shape.rank_known);
}

TEST(ElementwiseUnary, DTypeErrors) {
  std::string err = InferError("Exp", {{DType::kInt32, S({2})}});
  EXPECT_NE(err.find("node 'n' (Exp): input 0 ('in0'): expected a floating-point dtype, got int32"), std::string::npos) << err;
  err = InferError("Relu", {{DType::kBool, S({2})}});
  EXPECT_NE(err.find("expected a numeric (floating-point or integer) dtype, got bool"), std::string::npos) << err;
  err = InferError("Invert", {{DType::kFloat32, S({2})}});
  EXPECT_NE(err.find("expected an integer dtype, got float32"), std::string::npos) << err;
  err = InferError("LogicalNot", {{DType::kInt8, S({2})}});
  EXPECT_NE(err.find("expected bool, got int8"), std::string::npos) << err;
  err = KernelError("Exp", {I32({1}, {1})});
  EXPECT_NE(err.find("dtype int32 is not supported"), std::string::npos) << err;
}

}  // namespace
}  // namespace kiln::ew_test
