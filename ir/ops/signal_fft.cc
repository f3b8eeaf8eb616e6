// TensorFlow's FFT IR ops (FFT, RFFT, IRFFT over the innermost `rank` dims) and the complex
// elementwise ops (ComplexAbs, Real, Imag, Angle, Conj, Complex). See docs/ops/signal.md.
#include <fmt/format.h>

#include "ir/op_schema.h"
#include "ir/ops/signal_fft_util.h"

namespace kiln::ir {

void RegisterFftOps(OpRegistry& registry);

namespace {

using signal::IsComplex;

std::string S(InferContext& ctx, const SymShape& s) { return ctx.graph().ShapeToString(s); }

void CheckComplexInput(InferContext& ctx, int i, const char* what) {
  const DType t = ctx.input_dtype(i);
  if (!IsComplex(t)) ctx.Fail(fmt::format("{} must be complex64 or complex128, got {}", what, DTypeName(t)));
}

int64_t FftRank(InferContext& ctx) {
  const int64_t rank = ctx.attrs().GetOr<int64_t>("rank", 1);
  const SymShape& x = ctx.input_shape(0);
  if (std::string e = signal::CheckFftRank(rank, x.rank_known ? x.rank() : -1); !e.empty()) ctx.Fail(e);
  return rank;
}

// ---- FFT(x complex) attrs rank, inverse -> x's dtype and shape ----
void InferFft(InferContext& ctx) {
  CheckComplexInput(ctx, 0, "input");
  FftRank(ctx);
  ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
}

// ---- RFFT(x float32/64, fft_length int32 [rank]) / IRFFT(x complex, fft_length) attr rank ----
// The innermost `rank` dims become fft_length (RFFT's last: fft_length[-1] / 2 + 1).
template <bool kInverse>
void InferRealFft(InferContext& ctx) {
  const DType in = ctx.input_dtype(0);
  const DType out = kInverse ? signal::RealOf(in) : signal::ComplexOf(in);
  if (out == DType::kInvalid)
    ctx.Fail(fmt::format("input must be {}, got {}", kInverse ? "complex64 or complex128" : "float32 or float64",
                         DTypeName(in)));
  const int64_t rank = FftRank(ctx);
  const DType lt = ctx.input_dtype(1);
  if (lt != DType::kInt32 && lt != DType::kInt64)
    ctx.Fail(fmt::format("fft_length must be int32 or int64, got {}", DTypeName(lt)));
  const SymShape& ls = ctx.input_shape(1);
  if (ls.rank_known && (ls.rank() != 1 || (IsStatic(ls.dims[0]) && ls.dims[0] != rank)))
    ctx.Fail(fmt::format("fft_length must be a vector of {} lengths, got shape {}", rank, S(ctx, ls)));
  const SymShape& x = ctx.input_shape(0);
  if (!x.rank_known) return ctx.SetOutput(0, out, SymShape::Unknown());
  SymShape shape = x;
  const Tensor* lengths = ctx.constant_input(1);
  for (int64_t i = 0; i < rank; ++i) {
    Dim& d = shape.dims[static_cast<size_t>(x.rank() - rank + i)];
    if (!lengths) {
      d = kUnknownDim;
      continue;
    }
    const int64_t n = lengths->IntAt(i);
    if (std::string e = signal::CheckFftLength(n); !e.empty()) ctx.Fail(e);
    // TensorFlow's kernels transform at most the input (IRFFT's last dim: n / 2 + 1 bins).
    const int64_t needed = (kInverse && i == rank - 1) ? signal::HalfSpectrum(n) : n;
    if (IsStatic(d) && d < needed)
      ctx.Fail(fmt::format("input dim {} must have length of at least {} (from fft_length), got {}",
                           x.rank() - rank + i, needed, d));
    d = (!kInverse && i == rank - 1) ? signal::HalfSpectrum(n) : n;
  }
  ctx.SetOutput(0, out, shape);
}

// ---- ComplexAbs / Real / Imag / Angle (complex -> its real dtype), Conj (complex -> complex) ----
template <bool kToReal>
void InferComplexUnary(InferContext& ctx) {
  CheckComplexInput(ctx, 0, "x");
  ctx.SetOutput(0, kToReal ? signal::RealOf(ctx.input_dtype(0)) : ctx.input_dtype(0), ctx.input_shape(0));
}

// ---- Complex(real, imag): float32/64, same dtype, broadcasting -> complex ----
void InferComplex(InferContext& ctx) {
  const DType t = ctx.input_dtype(0);
  const DType out = signal::ComplexOf(t);
  if (out == DType::kInvalid) ctx.Fail(fmt::format("real must be float32 or float64, got {}", DTypeName(t)));
  if (ctx.input_dtype(1) != t)
    ctx.Fail(fmt::format("imag must have real's dtype {}, got {}", DTypeName(t), DTypeName(ctx.input_dtype(1))));
  ctx.SetOutput(0, out, BroadcastShapes(ctx, ctx.input_shape(0), ctx.input_shape(1)));
}

}  // namespace

void RegisterFftOps(OpRegistry& registry) {
  registry.Add({"FFT", 1, 1, InferFft});
  registry.Add({"RFFT", 2, 2, InferRealFft<false>});
  registry.Add({"IRFFT", 2, 2, InferRealFft<true>});
  for (const char* op : {"ComplexAbs", "Real", "Imag", "Angle"}) registry.Add({op, 1, 1, InferComplexUnary<true>});
  registry.Add({"Conj", 1, 1, InferComplexUnary<false>});
  registry.Add({"Complex", 2, 2, InferComplex});
}

}  // namespace kiln::ir
