// Geometry and dtypes of TensorFlow's FFT family (FFT / RFFT / IRFFT over the innermost 1-3 dims)
// and the complex elementwise ops, shared by the IR schemas (ir/ops/signal_fft.cc) and the
// reference kernels (backend/reference/signal_fft.cc). See docs/ops/signal.md.
#pragma once

#include <cstdint>
#include <string>

#include "kiln/dtype.h"

namespace kiln::ir::signal {

inline bool IsComplex(DType t) { return t == DType::kComplex64 || t == DType::kComplex128; }

// complex64 <-> float32, complex128 <-> float64; kInvalid for any other dtype.
inline DType ComplexOf(DType real) {
  return real == DType::kFloat32 ? DType::kComplex64 : real == DType::kFloat64 ? DType::kComplex128 : DType::kInvalid;
}
inline DType RealOf(DType complex) {
  return complex == DType::kComplex64    ? DType::kFloat32
         : complex == DType::kComplex128 ? DType::kFloat64
                                         : DType::kInvalid;
}

// "" when the transform rank (attr `rank`) is 1, 2 or 3 and the input has at least that rank.
inline std::string CheckFftRank(int64_t fft_rank, int64_t input_rank) {
  if (fft_rank < 1 || fft_rank > 3) return "attr rank must be 1, 2 or 3, got " + std::to_string(fft_rank);
  if (input_rank >= 0 && input_rank < fft_rank)
    return "the input must have rank >= " + std::to_string(fft_rank) + ", got rank " + std::to_string(input_rank);
  return "";
}

// "" when a transform length from fft_length is valid: RFFT / IRFFT lengths are >= 0 (0 gives an
// empty result, as TensorFlow does).
inline std::string CheckFftLength(int64_t n) {
  if (n < 0) return "fft_length must not be negative, got " + std::to_string(n);
  return "";
}

// The complex dim RFFT writes / IRFFT reads for the innermost transform length n.
inline int64_t HalfSpectrum(int64_t n) { return n / 2 + 1; }

}  // namespace kiln::ir::signal
