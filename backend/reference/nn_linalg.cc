// Reference kernels of the dense linear-algebra ops on batches of innermost matrices:
// MatrixDeterminant, LogMatrixDeterminant, MatrixSolve, MatrixInverse (all through the one LU
// factorization of nn_linalg_lu.h), MatrixTriangularSolve and Cholesky. Everything is computed
// in double and stored back in the input's floating dtype.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backend/reference/nn_common.h"
#include "backend/reference/nn_linalg_lu.h"

namespace kiln::reference::nn {
namespace {

// The size M of x's square innermost matrices [..., M, M]; fails otherwise.
int64_t SquareSize(KernelContext& ctx, const Tensor& x, const char* what) {
  if (x.rank() < 2 || x.dim(x.rank() - 1) != x.dim(x.rank() - 2))
    ctx.Fail(fmt::format("expected {} of square matrices [..., M, M], got {}", what, ShapeStr(x.shape())));
  if (!IsFloating(x.dtype()))
    ctx.Fail(fmt::format("dtype {} is not supported (expected a floating type)", DTypeName(x.dtype())));
  return x.dim(x.rank() - 1);
}

Shape BatchShape(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 2); }

// Determinant as the signed product of the pivots; an exactly singular matrix gives 0.
void MatrixDeterminantKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t m = SquareSize(ctx, x, "an input");
  const Shape out_shape = BatchShape(x);
  const int64_t count = NumElements(out_shape);
  const std::vector<double> xs = LoadAs<double>(x, "MatrixDeterminant");
  std::vector<double> dets(static_cast<size_t>(count));
  for (int64_t b = 0; b < count; ++b) {
    const LuFactors f = LuFactor(xs.data() + b * m * m, m, false);
    double det = f.odd_swaps ? -1 : 1;
    for (int64_t i = 0; i < m; ++i) det *= f.pivot(i);
    dets[static_cast<size_t>(b)] = f.zero_pivot ? 0.0 : det;
  }
  StoreFrom(dets.data(), ctx.AllocateOutput(0, x.dtype(), out_shape), "MatrixDeterminant");
}
KILN_REFERENCE_KERNEL("MatrixDeterminant", MatrixDeterminantKernel);

// (sign, log|det|) as TensorFlow's SLogDet forms them: the permutation's sign times the signs
// of the pivots, and the sum of the pivots' log magnitudes; a non-finite sum (a zero pivot, or
// a NaN) gives sign 0 and log|det| -inf (+inf when the sum overflowed upwards). An empty
// matrix has determinant 1.
void LogMatrixDeterminantKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t m = SquareSize(ctx, x, "an input");
  const Shape out_shape = BatchShape(x);
  const int64_t count = NumElements(out_shape);
  const std::vector<double> xs = LoadAs<double>(x, "LogMatrixDeterminant");
  std::vector<double> signs(static_cast<size_t>(count)), logs(static_cast<size_t>(count));
  for (int64_t b = 0; b < count; ++b) {
    double sign = 1, log_abs = 0;
    if (m > 0) {
      const LuFactors f = LuFactor(xs.data() + b * m * m, m, false);
      sign = f.odd_swaps ? -1 : 1;
      for (int64_t i = 0; i < m; ++i) {
        const double d = f.pivot(i);
        log_abs += std::log(std::fabs(d));
        sign *= d / std::fabs(d);
      }
    }
    if (!std::isfinite(log_abs)) {
      sign = 0;
      log_abs = log_abs > 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
    }
    signs[static_cast<size_t>(b)] = sign;
    logs[static_cast<size_t>(b)] = log_abs;
  }
  StoreFrom(signs.data(), ctx.AllocateOutput(0, x.dtype(), out_shape), "LogMatrixDeterminant");
  StoreFrom(logs.data(), ctx.AllocateOutput(1, x.dtype(), out_shape), "LogMatrixDeterminant");
}
KILN_REFERENCE_KERNEL("LogMatrixDeterminant", LogMatrixDeterminantKernel);

// Fails the node when a factorization met an exactly zero pivot, as TensorFlow's CPU kernels
// do (they cannot promote more than that: the LU gives no condition estimate).
void RequireInvertible(KernelContext& ctx, const LuFactors& f, int64_t batch) {
  if (f.zero_pivot)
    ctx.Fail(fmt::format("input matrix {} is not invertible (its LU factorization has a zero pivot)", batch));
}

// MatrixSolve(matrix [..., M, M], rhs [..., M, K]; adjoint): X with matrix * X = rhs (or
// matrix^T * X = rhs); the batch dims must be equal (TensorFlow does not broadcast them).
void MatrixSolveKernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& rhs = ctx.input(1);
  const int64_t m = SquareSize(ctx, a, "a matrix");
  if (rhs.rank() != a.rank() || rhs.dim(rhs.rank() - 2) != m || BatchShape(rhs) != BatchShape(a))
    ctx.Fail(fmt::format("expected a right-hand side [..., {}, K] with the matrix's batch dims, got {} for a matrix {}",
                         m, ShapeStr(rhs.shape()), ShapeStr(a.shape())));
  if (rhs.dtype() != a.dtype())
    ctx.Fail(fmt::format("the right-hand side is {}, expected the matrix's dtype {}", DTypeName(rhs.dtype()),
                         DTypeName(a.dtype())));
  const bool adjoint = ctx.attrs().GetOr<bool>("adjoint", false);
  const int64_t k = rhs.dim(rhs.rank() - 1);
  const int64_t count = NumElements(BatchShape(a));
  const std::vector<double> as = LoadAs<double>(a, "MatrixSolve");
  std::vector<double> xs = LoadAs<double>(rhs, "MatrixSolve");
  if (m > 0 && k > 0)
    for (int64_t b = 0; b < count; ++b) {
      const LuFactors f = LuFactor(as.data() + b * m * m, m, adjoint);
      RequireInvertible(ctx, f, b);
      LuSolve(f, xs.data() + b * m * k, k);
    }
  StoreFrom(xs.data(), ctx.AllocateOutput(0, a.dtype(), rhs.shape()), "MatrixSolve");
}
KILN_REFERENCE_KERNEL("MatrixSolve", MatrixSolveKernel);

// MatrixInverse(x [..., M, M]; adjoint): the inverse of each matrix (of its transpose).
void MatrixInverseKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t m = SquareSize(ctx, x, "an input");
  const bool adjoint = ctx.attrs().GetOr<bool>("adjoint", false);
  const int64_t count = NumElements(BatchShape(x));
  const std::vector<double> xs = LoadAs<double>(x, "MatrixInverse");
  std::vector<double> ys(xs.size());
  for (int64_t b = 0; b < count; ++b) {
    const LuFactors f = LuFactor(xs.data() + b * m * m, m, adjoint);
    RequireInvertible(ctx, f, b);
    double* inv = ys.data() + b * m * m;
    for (int64_t i = 0; i < m; ++i) inv[i * m + i] = 1;
    LuSolve(f, inv, m);
  }
  StoreFrom(ys.data(), ctx.AllocateOutput(0, x.dtype(), x.shape()), "MatrixInverse");
}
KILN_REFERENCE_KERNEL("MatrixInverse", MatrixInverseKernel);

// Offsets of one operand's matrices for each batch index of the broadcast batch shape `out`
// (the operand's batch dims right-aligned; a dim of 1 repeats).
std::vector<int64_t> BroadcastMatrixOffsets(const Shape& batch, const Shape& out, int64_t matrix_size) {
  const size_t rank = out.size(), pad = rank - batch.size();
  std::vector<int64_t> strides(rank, 0);
  int64_t s = matrix_size;
  for (size_t d = rank; d-- > pad;) {
    strides[d] = batch[d - pad] == 1 ? 0 : s;
    s *= batch[d - pad];
  }
  const int64_t count = NumElements(out);
  std::vector<int64_t> offsets(static_cast<size_t>(count));
  std::vector<int64_t> index(rank, 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off += index[d] * strides[d];
    offsets[static_cast<size_t>(i)] = off;
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < out[d]) break;
      index[d] = 0;
    }
  }
  return offsets;
}

// MatrixTriangularSolve(matrix [..., M, M], rhs [..., M, K]; lower, adjoint): X with T * X = rhs
// where T is the matrix's lower (or upper) triangle, transposed when `adjoint`; the other
// triangle is never read. Batch dims broadcast. A zero on the diagonal divides by zero, as
// TensorFlow's kernel does (no error).
void MatrixTriangularSolveKernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& rhs = ctx.input(1);
  const int64_t m = SquareSize(ctx, a, "a matrix");
  if (rhs.rank() < 2 || rhs.dim(rhs.rank() - 2) != m)
    ctx.Fail(fmt::format("expected a right-hand side [..., {}, K], got {}", m, ShapeStr(rhs.shape())));
  if (rhs.dtype() != a.dtype())
    ctx.Fail(fmt::format("the right-hand side is {}, expected the matrix's dtype {}", DTypeName(rhs.dtype()),
                         DTypeName(a.dtype())));
  const Shape ba = BatchShape(a), bb = BatchShape(rhs);
  Shape out(std::max(ba.size(), bb.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t da = i < out.size() - ba.size() ? 1 : ba[i - (out.size() - ba.size())];
    const int64_t db = i < out.size() - bb.size() ? 1 : bb[i - (out.size() - bb.size())];
    if (da != db && da != 1 && db != 1)
      ctx.Fail(fmt::format("batch dims of the matrix {} and the right-hand side {} do not broadcast",
                           ShapeStr(a.shape()), ShapeStr(rhs.shape())));
    out[i] = da == 1 ? db : da;
  }
  const int64_t k = rhs.dim(rhs.rank() - 1);
  Shape out_shape = out;
  out_shape.push_back(m);
  out_shape.push_back(k);
  // Allocated first: the tensor checks the broadcast size against the memory budget.
  Tensor& y = ctx.AllocateOutput(0, a.dtype(), out_shape);
  if (y.num_elements() == 0) return;
  const std::vector<int64_t> a_off = BroadcastMatrixOffsets(ba, out, m * m);
  const std::vector<int64_t> b_off = BroadcastMatrixOffsets(bb, out, m * k);
  const bool lower = ctx.attrs().GetOr<bool>("lower", true), adjoint = ctx.attrs().GetOr<bool>("adjoint", false);
  // T = tri(A)^T when adjoint, which is lower exactly when A's triangle is upper.
  const bool forward = lower != adjoint;
  const std::vector<double> as = LoadAs<double>(a, "MatrixTriangularSolve");
  const std::vector<double> bs = LoadAs<double>(rhs, "MatrixTriangularSolve");
  const int64_t count = NumElements(out);
  std::vector<double> xs(static_cast<size_t>(y.num_elements()));
  for (int64_t i = 0; i < count; ++i) {
    const double* t = as.data() + a_off[static_cast<size_t>(i)];
    auto T = [&](int64_t r, int64_t c) { return adjoint ? t[c * m + r] : t[r * m + c]; };
    double* x = xs.data() + i * m * k;
    std::copy(bs.begin() + b_off[static_cast<size_t>(i)], bs.begin() + b_off[static_cast<size_t>(i)] + m * k, x);
    for (int64_t step = 0; step < m; ++step) {
      const int64_t r = forward ? step : m - 1 - step;
      for (int64_t j = 0; j < k; ++j) {
        double sum = x[r * k + j];
        if (forward)
          for (int64_t c = 0; c < r; ++c) sum -= T(r, c) * x[c * k + j];
        else
          for (int64_t c = r + 1; c < m; ++c) sum -= T(r, c) * x[c * k + j];
        x[r * k + j] = sum / T(r, r);
      }
    }
  }
  StoreFrom(xs.data(), y, "MatrixTriangularSolve");
}
KILN_REFERENCE_KERNEL("MatrixTriangularSolve", MatrixTriangularSolveKernel);

// Cholesky(x [..., M, M]): the lower-triangular L with L * L^T = x, reading only x's lower
// triangle (its upper one is ignored, as Eigen's LLT does); L's upper triangle is zero. A
// pivot that is not positive means x is not positive definite: as TensorFlow does, that
// matrix's lower triangle is filled with NaN (no error), so the failure shows at run time
// (TF leaves the upper triangle unset; here it stays zero).
void CholeskyKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t m = SquareSize(ctx, x, "an input");
  const int64_t count = NumElements(BatchShape(x));
  const std::vector<double> xs = LoadAs<double>(x, "Cholesky");
  std::vector<double> ls(xs.size(), 0.0);
  for (int64_t b = 0; b < count; ++b) {
    const double* a = xs.data() + b * m * m;
    double* l = ls.data() + b * m * m;
    bool positive_definite = true;
    for (int64_t j = 0; j < m && positive_definite; ++j) {
      double d = a[j * m + j];
      for (int64_t c = 0; c < j; ++c) d -= l[j * m + c] * l[j * m + c];
      if (!(d > 0) && !std::isnan(d)) {
        positive_definite = false;
        break;
      }
      const double djj = std::sqrt(d);
      l[j * m + j] = djj;
      for (int64_t r = j + 1; r < m; ++r) {
        double s = a[r * m + j];
        for (int64_t c = 0; c < j; ++c) s -= l[r * m + c] * l[j * m + c];
        l[r * m + j] = s / djj;
      }
    }
    if (!positive_definite)
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c <= r; ++c) l[r * m + c] = std::numeric_limits<double>::quiet_NaN();
  }
  StoreFrom(ls.data(), ctx.AllocateOutput(0, x.dtype(), x.shape()), "Cholesky");
}
KILN_REFERENCE_KERNEL("Cholesky", CholeskyKernel);

}  // namespace
}  // namespace kiln::reference::nn
