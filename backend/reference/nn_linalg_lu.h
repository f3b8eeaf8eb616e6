// LU factorization with partial pivoting (P * A = L * U) of one dense row-major matrix in
// double: the single factorization behind MatrixDeterminant, LogMatrixDeterminant,
// MatrixSolve and MatrixInverse, so that all of them pick the same pivots (the largest
// magnitude in the column, the first one on ties, as Eigen's PartialPivLU does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::reference::nn {

struct LuFactors {
  int64_t n = 0;
  std::vector<double> lu;    // n x n: U on and above the diagonal, L (unit diagonal) below
  std::vector<int64_t> row;  // row[i]: the row of A that became row i of P * A
  bool odd_swaps = false;    // P has determinant -1
  bool zero_pivot = false;   // some column had no nonzero pivot: A is exactly singular

  double pivot(int64_t i) const { return lu[static_cast<size_t>(i * n + i)]; }
};

// Factors the n x n matrix a (row-major; transposed first when `transpose`). A column whose
// candidates are all zero is left as it is and sets zero_pivot, as Eigen does.
LuFactors LuFactor(const double* a, int64_t n, bool transpose);

// Overwrites b (n x k, row-major) with the solution X of A * X = b, given A's factors.
void LuSolve(const LuFactors& f, double* b, int64_t k);

}  // namespace kiln::reference::nn
