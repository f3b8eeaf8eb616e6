// The reference backend's one-dimensional discrete Fourier transform of any length (O(n log n)),
// in double: shared by ONNX's DFT / STFT kernels (signal.cc) and TensorFlow's FFT family
// (signal_fft.cc). See docs/ops/signal.md.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

#include "backend/reference/kernel.h"

namespace kiln::reference {

using Complex = std::complex<double>;

// Scratch memory a kernel needs besides its output: bounded like a tensor (kiln::MaxTensorBytes).
inline void CheckScratch(const KernelContext& ctx, int64_t elements, size_t element_bytes) {
  if (elements < 0 || static_cast<uint64_t>(elements) > MaxTensorBytes() / element_bytes)
    throw Error(ErrorCode::kResourceExhausted,
                fmt::format("node '{}' ({}): the transform needs {} scratch elements of {} bytes, more than one tensor "
                            "may take ({} bytes, kiln::MaxTensorBytes)",
                            ctx.node().name, ctx.node().op, elements, element_bytes, MaxTensorBytes()));
}

// An unnormalized discrete Fourier transform of one length n: X[k] = sum_j x[j] e^(sign 2 pi i jk / n).
// Small lengths use the definition with an exact twiddle table, powers of two a radix-2 FFT, other
// lengths Bluestein's algorithm (a chirp convolution done with power-of-two FFTs), so any length
// costs O(n log n).
class Dft {
 public:
  Dft(const KernelContext& ctx, int64_t n, int sign) : n_(n) {
    if (n <= kDirectMax) {
      table_ = Roots(n, sign);  // table_[m] = e^(sign 2 pi i m / n)
    } else if (IsPowerOfTwo(n)) {
      CheckScratch(ctx, n, sizeof(Complex));
      table_ = Roots(n, sign);
    } else {
      if (n > (int64_t{1} << 56)) CheckScratch(ctx, std::numeric_limits<int64_t>::max(), sizeof(Complex));
      int64_t m = 1;
      while (m < 2 * n - 1) m *= 2;
      CheckScratch(ctx, 5 * m, sizeof(Complex));  // chirp, its transform, roots, one work line (x2)
      m_ = m;
      // chirp_[j] = e^(sign pi i j^2 / n); j^2 is reduced mod 2n first so the angle stays exact.
      chirp_.resize(static_cast<size_t>(n));
      const unsigned __int128 two_n = static_cast<unsigned __int128>(2 * n);
      for (int64_t j = 0; j < n; ++j) {
        const auto r =
            static_cast<double>((static_cast<unsigned __int128>(j) * static_cast<unsigned __int128>(j)) % two_n);
        chirp_[static_cast<size_t>(j)] = std::polar(1.0, sign * std::numbers::pi * r / static_cast<double>(n));
      }
      table_ = Roots(m, -1);
      inverse_table_ = Roots(m, 1);
      kernel_.assign(static_cast<size_t>(m), Complex(0, 0));
      kernel_[0] = std::conj(chirp_[0]);
      for (int64_t j = 1; j < n; ++j)
        kernel_[static_cast<size_t>(j)] = kernel_[static_cast<size_t>(m - j)] =
            std::conj(chirp_[static_cast<size_t>(j)]);
      Radix2(kernel_, table_);
      work_.resize(static_cast<size_t>(m));
    }
  }

  // Transforms `x` (n values) in place.
  void Run(std::vector<Complex>& x) {
    if (n_ <= kDirectMax) return Direct(x);
    if (m_ == 0) return Radix2(x, table_);
    std::fill(work_.begin(), work_.end(), Complex(0, 0));
    for (int64_t j = 0; j < n_; ++j)
      work_[static_cast<size_t>(j)] = x[static_cast<size_t>(j)] * chirp_[static_cast<size_t>(j)];
    Radix2(work_, table_);
    for (int64_t j = 0; j < m_; ++j) work_[static_cast<size_t>(j)] *= kernel_[static_cast<size_t>(j)];
    Radix2(work_, inverse_table_);
    const double scale = 1.0 / static_cast<double>(m_);
    for (int64_t k = 0; k < n_; ++k)
      x[static_cast<size_t>(k)] = work_[static_cast<size_t>(k)] * scale * chirp_[static_cast<size_t>(k)];
  }

 private:
  static constexpr int64_t kDirectMax = 64;

  static bool IsPowerOfTwo(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

  // e^(sign 2 pi i m / n) for m < n, from cos / sin of the exact angle each; exact at quarter turns,
  // and conjugate-symmetric (r[n - m] = conj(r[m])), so real input gives exactly real bins where
  // the definition does.
  static std::vector<Complex> Roots(int64_t n, int sign) {
    std::vector<Complex> r(static_cast<size_t>(n));
    for (int64_t m = 0; m <= n / 2; ++m) {
      Complex v;
      if ((4 * m) % n == 0) {
        const int64_t quarter = 4 * m / n;  // 0, 1 or 2
        v = quarter == 0 ? Complex(1, 0) : quarter == 1 ? Complex(0, sign) : Complex(-1, 0);
      } else {
        v = std::polar(1.0, sign * 2 * std::numbers::pi * static_cast<double>(m) / static_cast<double>(n));
      }
      r[static_cast<size_t>(m)] = v;
      if (m > 0) r[static_cast<size_t>(n - m)] = std::conj(v);
    }
    return r;
  }

  void Direct(std::vector<Complex>& x) {
    std::vector<Complex> y(static_cast<size_t>(n_));
    for (int64_t k = 0; k < n_; ++k) {
      Complex s(0, 0);
      for (int64_t j = 0; j < n_; ++j) s += x[static_cast<size_t>(j)] * table_[static_cast<size_t>((j * k) % n_)];
      y[static_cast<size_t>(k)] = s;
    }
    x.swap(y);
  }

  // Iterative radix-2 FFT of a power-of-two length with the roots table of that length.
  static void Radix2(std::vector<Complex>& a, const std::vector<Complex>& roots) {
    const size_t n = a.size();
    for (size_t i = 1, j = 0; i < n; ++i) {
      size_t bit = n >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) std::swap(a[i], a[j]);
    }
    for (size_t len = 2; len <= n; len <<= 1) {
      const size_t stride = n / len;
      for (size_t i = 0; i < n; i += len)
        for (size_t k = 0; k < len / 2; ++k) {
          const Complex u = a[i + k], v = a[i + k + len / 2] * roots[k * stride];
          a[i + k] = u + v;
          a[i + k + len / 2] = u - v;
        }
    }
  }

  int64_t n_;
  int64_t m_ = 0;  // Bluestein's convolution length (0: not Bluestein)
  std::vector<Complex> table_, inverse_table_, chirp_, kernel_, work_;
};

}  // namespace kiln::reference
