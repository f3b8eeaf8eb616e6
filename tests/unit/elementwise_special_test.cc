// The special-function elementwise ops (ir/ops/elementwise_special_ops.h): reference kernels vs
// known values (TensorFlow's float64 results, which agree with tables of these functions), the
// edge values TensorFlow defines (poles, domain ends, outside-domain NaN), and every float dtype.
#include <cmath>
#include <limits>

#include "ir/ops/special_math.h"
#include "tests/unit/elementwise_test_util.h"

namespace kiln::ew_test {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Double results of the double algorithms: a few ulp.
constexpr double kDoubleTol = 1e-13;

TEST(ElementwiseSpecial, LgammaKnownValuesAndPoles) {
  ExpectNear(
      Doubles(RunOp("Lgamma", {F64({7}, {0.5, 3.0, -2.5, 1e-3, 100.0, 0.0, -1.0})})),
      {0.5723649429247001, 0.6931471805599453, -0.05624371649767407, 6.907178885383853, 359.13420536957545, kInf, kInf},
      kDoubleTol);
}

TEST(ElementwiseSpecial, DigammaKnownValuesAndPoles) {
  ExpectNear(Doubles(RunOp("Digamma", {F64({8}, {1.0, 0.5, -0.5, -2.5, 20.0, 1e-3, 0.0, -1.0})})),
             {-0.5772156649015323, -1.9635100260214227, 0.03648997397857645, 1.1031566406452433, 2.970523992242149,
              -1000.5755719318104, kNaN, kNaN},
             kDoubleTol);
  ExpectNear({ir::special::Digamma(-kInf), ir::special::Digamma(kInf)}, {kNaN, kInf});
}

TEST(ElementwiseSpecial, ErfinvKnownValuesAndDomain) {
  // erfinv(0.999999): TensorFlow's float64 kernel gives 3.458910737260051, whose erfc is off by
  // 1.1e-10 relative (its ndtri((x + 1) / 2) rounds 1 - x away); erfc of this value is within an ulp.
  ExpectNear(Doubles(RunOp("Erfinv", {F64({8}, {0.0, 0.1, -0.5, 0.9, 0.999999, 1.0, -1.0, 1.5})})),
             {0.0, 0.08885599049425778, -0.4769362762044699, 1.1630871536766738, 3.4589107372754988, kInf, -kInf, kNaN},
             kDoubleTol);
  // erf(erfinv(x)) = x across the range, including the far tail and tiny arguments.
  for (double x : {1e-300, 1e-8, 0.3, 0.5, 0.7, 0.99, 1 - 1e-12, -0.999999999}) {
    SCOPED_TRACE(x);
    EXPECT_NEAR(std::erf(ir::special::Erfinv(x)), x, 4e-16 * std::abs(x));
  }
}

TEST(ElementwiseSpecial, NdtriKnownValuesAndDomain) {
  ExpectNear(Doubles(RunOp("Ndtri", {F64({8}, {0.5, 0.975, 1e-10, 0.3, 1e-300, 0.0, 1.0, -0.1})})),
             {0.0, 1.959963984540054, -6.361340902404056, -0.5244005127080409, -37.0470962993612, -kInf, kInf, kNaN},
             kDoubleTol);
  // The tail keeps its relative precision down to the smallest subnormal.
  const double p = 5e-324;
  EXPECT_NEAR(0.5 * std::erfc(-ir::special::Ndtri(1e-200) / std::sqrt(2.0)), 1e-200, 1e-213);
  EXPECT_TRUE(std::isfinite(ir::special::Ndtri(p)));
}

TEST(ElementwiseSpecial, BesselKnownValues) {
  ExpectNear(Doubles(RunOp("BesselI0e", {F64({7}, {0.0, 1.0, -5.0, 30.0, 100.0, kInf, kNaN})})),
             {1.0, 0.46575960759364043, 0.1835408126093283, 0.07314594648223728, 0.03994437929909669, 0, kNaN},
             kDoubleTol);
  ExpectNear(Doubles(RunOp("BesselI1e", {F64({7}, {0.0, 1.0, -5.0, 30.0, 100.0, -kInf, kNaN})})),
             {0.0, 0.20791041534970844, -0.16397226694454242, 0.07191633059864753, 0.039744153025130256, 0, kNaN},
             kDoubleTol);
  // The series (below 25) and the asymptotic expansion (from 25) meet: one step below 25 by the
  // derivatives (I0e' = I1e - I0e, I1e' = I0e - I1e / x - I1e), exact to O(h^2).
  const double h = 1e-6, i0 = ir::special::BesselI0e(25), i1 = ir::special::BesselI1e(25);
  EXPECT_NEAR(ir::special::BesselI0e(25 - h), i0 - h * (i1 - i0), 1e-15);
  EXPECT_NEAR(ir::special::BesselI1e(25 - h), i1 - h * (i0 - i1 / 25 - i1), 1e-15);
}

TEST(ElementwiseSpecial, IncompleteGammaKnownValuesAndEdges) {
  const Tensor a = F64({8}, {0.5, 2.0, 10.0, 1.0, 0.0, 3.0, -1.0, 100.0});
  const Tensor x = F64({8}, {0.5, 3.0, 5.0, 0.0, 1.0, 1e6, 1.0, 99.0});
  ExpectNear(Doubles(RunOp("Igamma", {a, x})),
             {0.682689492137086, 0.8008517265285442, 0.031828057306204756, 0.0, kNaN, 1.0, kNaN, 0.4733043303994228},
             1e-12);
  ExpectNear(Doubles(RunOp("Igammac", {a, x})),
             {0.31731050786291404, 0.1991482734714558, 0.9681719426937953, 1.0, kNaN, 0.0, kNaN, 0.5266956696005771},
             1e-12);
  // Broadcasting: a [2, 1] against x [3].
  const Tensor p = RunOp("Igamma", {F32({2, 1}, {1.0, 2.0}), F32({3}, {0.5, 1.0, 2.0})});
  EXPECT_EQ(p.shape(), (Shape{2, 3}));
  ExpectNear(Doubles(p),
             {1 - std::exp(-0.5), 1 - std::exp(-1.0), 1 - std::exp(-2.0), 1 - 1.5 * std::exp(-0.5),
              1 - 2 * std::exp(-1.0), 1 - 3 * std::exp(-2.0)},
             2e-7);
}

TEST(ElementwiseSpecial, ZetaAndPolygammaKnownValuesAndEdges) {
  ExpectNear(
      Doubles(RunOp("Zeta",
                    {F64({7}, {2.0, 3.0, 1.0, 0.5, 4.0, 2.0, 3.0}), F64({7}, {1.0, 2.5, 1.0, 1.0, -2.0, -1.5, -1.5})})),
      {1.6449340668482266, 0.11810202582086368, kInf, kNaN, kInf, 9.379246644989124, 0.11810202582086413}, kDoubleTol);
  ExpectNear(Doubles(RunOp("Polygamma",
                           {F64({6}, {0.0, 1.0, 2.0, 3.0, 1.5, -1.0}), F64({6}, {1.0, 0.5, 2.0, -1.5, 1.0, 1.0})})),
             {-0.5772156649015323, 4.93480220054468, -0.4041138063191886, 194.59427621918758, kNaN, kNaN}, kDoubleTol);
}

TEST(ElementwiseSpecial, ZetaOfAFarNegativeQIsQuickAndAgreesWithTheSum) {
  // Just past the direct-summation limit the closed form agrees with the sum just before it (the
  // function is smooth there: the pole is at integers), and a hostile q returns at once.
  const double near = ir::special::Zeta(4, -1e6 + 0.25), far = ir::special::Zeta(4, -1e6 - 0.75);
  EXPECT_NEAR(far, near, 1e-12 * std::abs(near));
  EXPECT_TRUE(std::isfinite(ir::special::Zeta(3, -4.0e15 - 0.5)));
}

TEST(ElementwiseSpecial, BetaincClosedFormsEdgesAndShapeRule) {
  // I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b, I_0.5(a, a) = 1/2, on both sides of the mean.
  const Tensor got = RunOp(
      "Betainc", {F64({5}, {2.5, 1, 7, 0.3, 40}), F64({5}, {1, 3, 7, 1, 1}), F64({5}, {0.3, 0.8, 0.5, 0.999, 0.99})});
  ExpectNear(Doubles(got), {std::pow(0.3, 2.5), 1 - std::pow(0.2, 3), 0.5, std::pow(0.999, 0.3), std::pow(0.99, 40)},
             1e-13);
  // Edges as TensorFlow (Eigen): NaN for a <= 0, b <= 0 or x outside [0, 1]; 0 at x = 0 and 1 at
  // x = 1 even for a NaN a; scalars repeat against the shaped inputs.
  ExpectNear(
      Doubles(RunOp("Betainc", {F64({}, {2}), F64({6}, {0, 1, 1, 1, 1, 1}), F64({6}, {0.5, -0.1, 1.5, 0, 1, kNaN})})),
      {kNaN, kNaN, kNaN, 0, 1, kNaN});
  ExpectNear(Doubles(RunOp("Betainc", {F64({2}, {kNaN, kNaN}), F64({}, {2}), F64({2}, {0, 1})})), {0, 1});
  EXPECT_NE(InferError("Betainc", {{DType::kFloat32, S({2})}, {DType::kFloat32, S({3})}, {DType::kFloat32, S({})}})
                .find("must have the same shape or be scalars"),
            std::string::npos);
  EXPECT_NE(KernelError("Betainc", {F32({2}, {1, 1}), F32({3}, {1, 1, 1}), F32({}, {0.5})}).find("same shape"),
            std::string::npos);
}

// Every float dtype: the double result rounded once to the dtype.
TEST(ElementwiseSpecial, EveryFloatDType) {
  const std::vector<double> x = {0.25, 0.5, 0.75};
  for (const char* op : {"Lgamma", "Digamma", "Erfinv", "Ndtri", "BesselI0e", "BesselI1e"}) {
    SCOPED_TRACE(op);
    const std::vector<double> want = Doubles(RunOp(op, {F64({3}, x)}));
    ExpectNear(Doubles(RunOp(op, {F32({3}, x)})), want, 1e-7);
    ExpectNear(Doubles(RunOp(op, {F16({3}, x)})), want, 1e-3);
    ExpectNear(Doubles(RunOp(op, {BF16({3}, x)})), want, 8e-3);
  }
  for (const char* op : {"Igamma", "Igammac", "Zeta", "Polygamma"}) {
    SCOPED_TRACE(op);
    const std::vector<double> a = {2.0, 3.0, 4.0};
    const std::vector<double> want = Doubles(RunOp(op, {F64({3}, a), F64({3}, x)}));
    ExpectNear(Doubles(RunOp(op, {F32({3}, a), F32({3}, x)})), want, 1e-7);
    ExpectNear(Doubles(RunOp(op, {F16({3}, a), F16({3}, x)})), want, 1e-3);
  }
}

}  // namespace
}  // namespace kiln::ew_test
