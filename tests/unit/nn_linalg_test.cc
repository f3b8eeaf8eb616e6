// Dense linear-algebra kernels (MatrixDeterminant, LogMatrixDeterminant, MatrixSolve,
// MatrixInverse, MatrixTriangularSolve, Cholesky) on hand-made matrices with exact answers,
// their shape functions and their errors.
#include <cmath>
#include <limits>

#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using namespace nntest;

Tensor F64(Shape shape, const std::vector<double>& v) {
  return Tensor::FromVector<double>(DType::kFloat64, std::move(shape), v);
}

// Determinants of a batch: one needing a row exchange (the sign flips), a singular one, and
// the identity; float64 keeps them exact.
TEST(NnLinalg, MatrixDeterminantPivotsAndBatches) {
  Tensor x = F64({3, 3, 3}, {0, 1, 2, 1, 0, 3, 4, -3, 8,  // det -2 (column 0 needs a pivot)
                             1, 2, 3, 2, 4, 6, 1, 1,  1,  // rows 1 and 2 dependent: 0
                             1, 0, 0, 0, 1, 0, 0, 0,  1});
  auto out = RunOp("MatrixDeterminant", {x}, {});
  ASSERT_EQ(out[0].shape(), (Shape{3}));
  EXPECT_DOUBLE_EQ(out[0].data<double>()[0], -2.0);
  EXPECT_DOUBLE_EQ(out[0].data<double>()[1], 0.0);
  EXPECT_DOUBLE_EQ(out[0].data<double>()[2], 1.0);
  Tensor f = F32({2, 2}, {1, 2, 3, 4});
  EXPECT_FLOAT_EQ(RunOp("MatrixDeterminant", {f}, {})[0].data<float>()[0], -2.0f);
  EXPECT_THROW(RunOp("MatrixDeterminant", {F32({2, 3}, {1, 2, 3, 4, 5, 6})}, {}), Error);
}

// sign and log|det| of the same batch, plus an empty matrix (determinant 1): a singular
// matrix gives sign 0 and -inf, as TensorFlow's SLogDet does.
TEST(NnLinalg, LogMatrixDeterminantSignsAndSingular) {
  Tensor x = F64({3, 3, 3}, {0, 1, 2, 1, 0, 3, 4, -3, 8, 1, 2, 3, 2, 4, 6, 1, 1, 1, 2, 0, 0, 0, 3, 0, 0, 0, 0.5});
  auto out = RunOp("LogMatrixDeterminant", {x}, {}, 2);
  ExpectNear(out[0], {-1, 0, 1}, 0);
  EXPECT_NEAR(out[1].data<double>()[0], std::log(2.0), 1e-15);
  EXPECT_EQ(out[1].data<double>()[1], -std::numeric_limits<double>::infinity());
  EXPECT_NEAR(out[1].data<double>()[2], std::log(3.0), 1e-15);
  auto empty = RunOp("LogMatrixDeterminant", {F32({2, 0, 0}, {})}, {}, 2);
  ExpectNear(empty[0], {1, 1}, 0);
  ExpectNear(empty[1], {0, 0}, 0);
}

// A batch of two systems with integer solutions: B = A * X, then MatrixSolve recovers X; with
// adjoint the same B is solved against A^T (checked by multiplying back).
TEST(NnLinalg, MatrixSolveBatchedAndAdjoint) {
  const std::vector<double> a = {0, 2, 1, 1, 1, 0, 3, 0, 1,  // column 0 needs a row exchange
                                 4, 1, 0, 1, 3, 1, 0, 1, 2};
  const std::vector<double> x = {1, -2, 0, 3, 2, 1, -1, 0, 5, 4, 2, -3};  // [2, 3, 2]
  std::vector<double> b(12, 0.0), bt(12, 0.0);
  for (int n = 0; n < 2; ++n)
    for (int r = 0; r < 3; ++r)
      for (int j = 0; j < 2; ++j)
        for (int c = 0; c < 3; ++c) b[n * 6 + r * 2 + j] += a[n * 9 + r * 3 + c] * x[n * 6 + c * 2 + j];
  auto out = RunOp("MatrixSolve", {F64({2, 3, 3}, a), F64({2, 3, 2}, b)}, {});
  ExpectNear(out[0], x, 1e-14);
  auto adj = RunOp("MatrixSolve", {F64({2, 3, 3}, a), F64({2, 3, 2}, b)}, Attrs({{"adjoint", true}}));
  const std::vector<double> y = ToDoubles(adj[0]);
  for (int n = 0; n < 2; ++n)
    for (int r = 0; r < 3; ++r)
      for (int j = 0; j < 2; ++j) {
        double s = 0;
        for (int c = 0; c < 3; ++c) s += a[n * 9 + c * 3 + r] * y[n * 6 + c * 2 + j];
        EXPECT_NEAR(s, b[n * 6 + r * 2 + j], 1e-12) << n << " " << r << " " << j;
      }
}

// An exactly singular matrix fails the node at run time, naming it, as TF raises "Input
// matrix is not invertible"; mismatched shapes fail shape inference.
TEST(NnLinalg, MatrixSolveAndInverseRefuseSingular) {
  Tensor singular = F32({2, 2}, {1, 2, 2, 4});
  try {
    RunOp("MatrixSolve", {singular, F32({2, 1}, {1, 1})}, {});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not invertible"), std::string::npos) << e.what();
  }
  EXPECT_THROW(RunOp("MatrixInverse", {singular}, {}), Error);
  EXPECT_THROW(RunOp("MatrixSolve", {F32({2, 2}, {1, 0, 0, 1}), F32({3, 1}, {1, 1, 1})}, {}), Error);
  EXPECT_THROW(RunOp("MatrixSolve", {F32({2, 2, 2}, {1, 0, 0, 1, 1, 0, 0, 1}), F32({1, 2, 1}, {1, 1})}, {}), Error);
  EXPECT_THROW(RunOp("MatrixSolve", {I32({1, 1}, {1}), I32({1, 1}, {1})}, {}), Error);
}

// A * inverse = I for a batch; adjoint gives the inverse's transpose.
TEST(NnLinalg, MatrixInverseBatchedAndAdjoint) {
  const std::vector<double> a = {0, 2, 1, 1, 1, 0, 3, 0, 1, 4, 1, 0, 1, 3, 1, 0, 1, 2};
  auto inv = ToDoubles(RunOp("MatrixInverse", {F64({2, 3, 3}, a)}, {})[0]);
  auto inv_t = ToDoubles(RunOp("MatrixInverse", {F64({2, 3, 3}, a)}, Attrs({{"adjoint", true}}))[0]);
  for (int n = 0; n < 2; ++n)
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        double s = 0;
        for (int k = 0; k < 3; ++k) s += a[n * 9 + r * 3 + k] * inv[n * 9 + k * 3 + c];
        EXPECT_NEAR(s, r == c ? 1.0 : 0.0, 1e-14);
        EXPECT_DOUBLE_EQ(inv_t[n * 9 + r * 3 + c], inv[n * 9 + c * 3 + r]);
      }
  EXPECT_EQ(RunOp("MatrixInverse", {F32({0, 0}, {})}, {})[0].num_elements(), 0);
}

// Lower and upper solves read only their triangle (the other holds 99s), with and without
// adjoint; the matrix's batch of 2 broadcasts against an unbatched right-hand side.
TEST(NnLinalg, MatrixTriangularSolveTrianglesAndBroadcast) {
  const std::vector<double> lower = {2, 99, 99, 1, 1, 99, -1, 3, 4};  // tri: [[2,0,0],[1,1,0],[-1,3,4]]
  const std::vector<double> b = {2, 4, 3, 5, 10, 6};                  // [3, 2]
  // Forward substitution by hand: x0 = b0 / 2, x1 = b1 - x0, x2 = (b2 + x0 - 3 x1) / 4.
  std::vector<double> want(6);
  for (int j = 0; j < 2; ++j) {
    const double x0 = b[j] / 2, x1 = b[2 + j] - x0, x2 = (b[4 + j] + x0 - 3 * x1) / 4;
    want[j] = x0, want[2 + j] = x1, want[4 + j] = x2;
  }
  ExpectNear(RunOp("MatrixTriangularSolve", {F64({3, 3}, lower), F64({3, 2}, b)}, {})[0], want, 1e-15);
  // The same triangle stored as an upper one and solved with adjoint is the same system.
  const std::vector<double> upper = {2, 1, -1, 99, 1, 3, 99, 99, 4};
  ExpectNear(RunOp("MatrixTriangularSolve", {F64({3, 3}, upper), F64({3, 2}, b)},
                   Attrs({{"lower", false}, {"adjoint", true}}))[0],
             want, 1e-15);
  // Upper without adjoint: back substitution on [[2,1,-1],[0,1,3],[0,0,4]].
  std::vector<double> up(6);
  for (int j = 0; j < 2; ++j) {
    const double x2 = b[4 + j] / 4, x1 = b[2 + j] - 3 * x2, x0 = (b[j] - x1 + x2) / 2;
    up[j] = x0, up[2 + j] = x1, up[4 + j] = x2;
  }
  std::vector<double> batched = upper;
  batched.insert(batched.end(), upper.begin(), upper.end());
  auto out = RunOp("MatrixTriangularSolve", {F64({2, 3, 3}, batched), F64({3, 2}, b)}, Attrs({{"lower", false}}));
  ASSERT_EQ(out[0].shape(), (Shape{2, 3, 2}));
  std::vector<double> up2 = up;
  up2.insert(up2.end(), up.begin(), up.end());
  ExpectNear(out[0], up2, 1e-15);
  EXPECT_THROW(
      RunOp("MatrixTriangularSolve", {F64({2, 3, 3}, batched), F64({3, 3, 2}, std::vector<double>(18, 1))}, {}), Error);
}

// The classic 3x3 example with an integer factor; the upper triangle (99s) is never read. A
// matrix that is not positive definite gets a lower triangle of NaN (TensorFlow's answer, no
// error); the other matrices of the batch are unaffected.
TEST(NnLinalg, CholeskyLowerTriangleAndNotPositiveDefinite) {
  auto out = RunOp("Cholesky", {F64({1, 3, 3}, {4, 99, 99, 12, 37, 99, -16, -43, 98})}, {});
  ExpectNear(out[0], {2, 0, 0, 6, 1, 0, -8, 5, 3}, 1e-15);
  auto bad = RunOp("Cholesky", {F32({2, 2, 2}, {1, 2, 2, 1, 4, 0, 2, 9})}, {});
  const float* l = bad[0].data<float>();
  EXPECT_TRUE(std::isnan(l[0]) && std::isnan(l[2]) && std::isnan(l[3])) << l[0] << " " << l[2] << " " << l[3];
  EXPECT_EQ(l[1], 0.0f);
  EXPECT_EQ(l[4], 2.0f);
  EXPECT_EQ(l[5], 0.0f);
  EXPECT_EQ(l[6], 1.0f);
  EXPECT_NEAR(l[7], std::sqrt(8.0f), 1e-6);
}

}  // namespace
}  // namespace kiln
