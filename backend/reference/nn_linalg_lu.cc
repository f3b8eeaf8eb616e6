// LU factorization with partial pivoting; see nn_linalg_lu.h.
#include "backend/reference/nn_linalg_lu.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace kiln::reference::nn {

LuFactors LuFactor(const double* a, int64_t n, bool transpose) {
  LuFactors f;
  f.n = n;
  f.lu.resize(static_cast<size_t>(n * n));
  f.row.resize(static_cast<size_t>(n));
  auto at = [&](int64_t r, int64_t c) -> double& { return f.lu[static_cast<size_t>(r * n + c)]; };
  for (int64_t r = 0; r < n; ++r) {
    f.row[static_cast<size_t>(r)] = r;
    for (int64_t c = 0; c < n; ++c) at(r, c) = transpose ? a[c * n + r] : a[r * n + c];
  }
  for (int64_t c = 0; c < n; ++c) {
    int64_t pivot = c;
    for (int64_t r = c + 1; r < n; ++r)
      if (std::fabs(at(r, c)) > std::fabs(at(pivot, c))) pivot = r;
    if (at(pivot, c) == 0) {
      f.zero_pivot = true;
      continue;
    }
    if (pivot != c) {
      for (int64_t k = 0; k < n; ++k) std::swap(at(c, k), at(pivot, k));
      std::swap(f.row[static_cast<size_t>(c)], f.row[static_cast<size_t>(pivot)]);
      f.odd_swaps = !f.odd_swaps;
    }
    const double d = at(c, c);
    for (int64_t r = c + 1; r < n; ++r) {
      const double l = at(r, c) / d;
      at(r, c) = l;
      for (int64_t k = c + 1; k < n; ++k) at(r, k) -= l * at(c, k);
    }
  }
  return f;
}

void LuSolve(const LuFactors& f, double* b, int64_t k) {
  const int64_t n = f.n;
  std::vector<double> x(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < k; ++j) x[static_cast<size_t>(r * k + j)] = b[f.row[static_cast<size_t>(r)] * k + j];
  // L * Y = P * b (unit diagonal), then U * X = Y.
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < r; ++c) {
      const double l = f.lu[static_cast<size_t>(r * n + c)];
      for (int64_t j = 0; j < k; ++j) x[static_cast<size_t>(r * k + j)] -= l * x[static_cast<size_t>(c * k + j)];
    }
  for (int64_t r = n - 1; r >= 0; --r) {
    for (int64_t c = r + 1; c < n; ++c) {
      const double u = f.lu[static_cast<size_t>(r * n + c)];
      for (int64_t j = 0; j < k; ++j) x[static_cast<size_t>(r * k + j)] -= u * x[static_cast<size_t>(c * k + j)];
    }
    const double d = f.pivot(r);
    for (int64_t j = 0; j < k; ++j) x[static_cast<size_t>(r * k + j)] /= d;
  }
  std::copy(x.begin(), x.end(), b);
}

}  // namespace kiln::reference::nn
