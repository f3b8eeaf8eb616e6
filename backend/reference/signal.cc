// Signal reference kernels: DFT, STFT (through one FFT helper) and MelWeightMatrix, as ONNX
// (opset 17 / 20) and its reference implementation define them. Everything is computed in double
// and rounded once to the output dtype. See docs/ops/signal.md.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <numbers>
#include <vector>

#include "backend/reference/dispatch.h"
#include "backend/reference/fft.h"
#include "backend/reference/kernel.h"
#include "ir/ops/elementwise_cast.h"
#include "ir/ops/signal_util.h"

namespace kiln::reference {
namespace {

using ir::signal::DftMode;

// A scalar int input (int32 / int64, one element).
int64_t ScalarInt(const KernelContext& ctx, int i, const char* what) {
  const Tensor& t = ctx.input(i);
  if (t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64)
    ctx.Fail(fmt::format("{} must be int32 or int64, got {}", what, DTypeName(t.dtype())));
  if (t.num_elements() != 1 || t.rank() > 1)
    ctx.Fail(fmt::format("{} must be a scalar, got shape {}", what, ShapeToString(t.shape())));
  return t.IntAt(0);
}

double ScalarFloat(const KernelContext& ctx, int i, const char* what) {
  const Tensor& t = ctx.input(i);
  if (t.num_elements() != 1 || t.rank() > 1)
    ctx.Fail(fmt::format("{} must be a scalar, got shape {}", what, ShapeToString(t.shape())));
  return t.DoubleAt(0);
}

void Check(const KernelContext& ctx, const std::string& error) {
  if (!error.empty()) ctx.Fail(error);
}

// ---- DFT(input, axis, dft_length?) attrs inverse, onesided ----
void DftKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DftMode mode{ctx.attrs().GetOr<bool>("inverse", false), ctx.attrs().GetOr<bool>("onesided", false)};
  const int rank = x.rank();
  if (rank < 2)
    ctx.Fail(fmt::format("input must have rank >= 2 ([..., signal, 1 or 2]), got {}", ShapeToString(x.shape())));
  const int64_t components = x.dim(rank - 1);
  Check(ctx, ir::signal::CheckDftComponents(components, mode));
  const int64_t axis_value = ScalarInt(ctx, 1, "axis");
  const std::optional<int64_t> axis_opt = ir::signal::DftAxis(axis_value, rank);
  if (!axis_opt)
    ctx.Fail(fmt::format("axis {} is out of range for rank {} (expected [{}, -2] or [0, {}])", axis_value, rank, -rank,
                         rank - 2));
  const int axis = static_cast<int>(*axis_opt);
  const int64_t dim = x.dim(axis);
  const int64_t n = ctx.num_inputs() > 2 ? ScalarInt(ctx, 2, "dft_length") : ir::signal::DefaultDftLength(dim, mode);
  Check(ctx, ir::signal::CheckDftLength(n));
  Shape out_shape = x.shape();
  const int64_t out_len = ir::signal::DftOutputLength(n, mode);
  const int64_t out_components = ir::signal::DftOutputComponents(mode);
  out_shape[static_cast<size_t>(axis)] = out_len;
  out_shape.back() = out_components;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int i = axis + 1; i < rank - 1; ++i) inner *= x.dim(i);
  DispatchFloat(x.dtype(), ctx.node().op, [&]<typename T>() {
    T* out = ctx.AllocateOutput(0, x.dtype(), out_shape).template data<T>();
    if (outer == 0 || inner == 0) return;
    const T* in = x.data<T>();
    Dft dft(ctx, n, mode.inverse ? 1 : -1);
    // Input values read: the first n (IRFFT: the first n / 2 + 1 bins), zeros past the input's end.
    const int64_t take = std::min(dim, mode.irfft() ? n / 2 + 1 : n);
    const double scale = mode.inverse ? 1.0 / static_cast<double>(n) : 1.0;
    std::vector<Complex> line(static_cast<size_t>(n));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        std::fill(line.begin(), line.end(), Complex(0, 0));
        for (int64_t k = 0; k < take; ++k) {
          const int64_t at = ((o * dim + k) * inner + i) * components;
          line[static_cast<size_t>(k)] = Complex(ToDouble(in[at]), components == 2 ? ToDouble(in[at + 1]) : 0.0);
        }
        if (mode.irfft())  // the Hermitian-symmetric full spectrum of a real signal
          for (int64_t k = n / 2 + 1; k < n; ++k)
            line[static_cast<size_t>(k)] = std::conj(line[static_cast<size_t>(n - k)]);
        dft.Run(line);
        for (int64_t k = 0; k < out_len; ++k) {
          const int64_t at = ((o * out_len + k) * inner + i) * out_components;
          out[at] = FromDouble<T>(line[static_cast<size_t>(k)].real() * scale);
          if (out_components == 2) out[at + 1] = FromDouble<T>(line[static_cast<size_t>(k)].imag() * scale);
        }
      }
  });
}
KILN_REFERENCE_KERNEL("DFT", DftKernel);

// ---- STFT(signal [B, L, 1 | 2], frame_step, window [W], frame_length?) attr onesided ----
void StftKernel(KernelContext& ctx) {
  const Tensor& signal = ctx.input(0);
  const Tensor& window = ctx.input(2);
  const bool onesided = ctx.attrs().GetOr<bool>("onesided", true);
  if (signal.rank() != 3 || (signal.dim(2) != 1 && signal.dim(2) != 2))
    ctx.Fail(fmt::format("signal must be [batch, length, 1 or 2], got {}", ShapeToString(signal.shape())));
  if (onesided && signal.dim(2) == 2) ctx.Fail("onesided = 1 takes a real signal (last dim 1), got a complex one");
  if (window.rank() != 1) ctx.Fail(fmt::format("window must be 1-D, got {}", ShapeToString(window.shape())));
  if (window.dtype() != signal.dtype())
    ctx.Fail(fmt::format("window must have the signal's dtype {}, got {}", DTypeName(signal.dtype()),
                         DTypeName(window.dtype())));
  const int64_t step = ScalarInt(ctx, 1, "frame_step");
  const int64_t w = window.dim(0);
  if (ctx.num_inputs() > 3) {
    const int64_t frame_length = ScalarInt(ctx, 3, "frame_length");
    if (frame_length != w)
      ctx.Fail(fmt::format("frame_length {} differs from the window's length {}", frame_length, w));
  }
  int64_t frames = 0;
  Check(ctx, ir::signal::StftFrames(signal.dim(1), w, step, &frames));
  const int64_t batch = signal.dim(0), length = signal.dim(1), components = signal.dim(2);
  const int64_t bins = onesided ? w / 2 + 1 : w;
  DispatchFloat(signal.dtype(), ctx.node().op, [&]<typename T>() {
    T* out = ctx.AllocateOutput(0, signal.dtype(), {batch, frames, bins, 2}).template data<T>();
    if (batch == 0) return;
    const T* in = signal.data<T>();
    const T* win = window.data<T>();
    Dft dft(ctx, w, -1);
    std::vector<Complex> line(static_cast<size_t>(w));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t f = 0; f < frames; ++f) {
        for (int64_t k = 0; k < w; ++k) {
          const int64_t at = (b * length + f * step + k) * components;
          const double wk = ToDouble(win[k]);
          line[static_cast<size_t>(k)] =
              Complex(ToDouble(in[at]) * wk, components == 2 ? ToDouble(in[at + 1]) * wk : 0.0);
        }
        dft.Run(line);
        for (int64_t k = 0; k < bins; ++k) {
          const int64_t at = ((b * frames + f) * bins + k) * 2;
          out[at] = FromDouble<T>(line[static_cast<size_t>(k)].real());
          out[at + 1] = FromDouble<T>(line[static_cast<size_t>(k)].imag());
        }
      }
  });
}
KILN_REFERENCE_KERNEL("STFT", StftKernel);

// ---- MelWeightMatrix(num_mel_bins, dft_length, sample_rate, lower_edge_hertz,
// upper_edge_hertz) attr output_datatype ----
// As ONNX's reference: num_mel_bins + 2 points evenly spaced on the mel scale (mel(f) = 2595
// log10(1 + f / 700)) from mel(lower) in steps of (mel(upper) - mel(lower)) / (num_mel_bins + 2),
// each mapped back to hertz and to the bin floor((dft_length + 1) * f / sample_rate); filter i
// rises from point i to point i + 1 and falls to point i + 2, with peak 1.
void MelWeightMatrixKernel(KernelContext& ctx) {
  const int64_t num_mel_bins = ScalarInt(ctx, 0, "num_mel_bins");
  const int64_t dft_length = ScalarInt(ctx, 1, "dft_length");
  const int64_t sample_rate = ScalarInt(ctx, 2, "sample_rate");
  const double lower = ScalarFloat(ctx, 3, "lower_edge_hertz");
  const double upper = ScalarFloat(ctx, 4, "upper_edge_hertz");
  Check(ctx, ir::signal::CheckMelArguments(num_mel_bins, dft_length, sample_rate));
  const int64_t spectrogram_bins = ir::signal::MelSpectrogramBins(dft_length);
  const DType out_type = ctx.attrs().GetOr<DType>("output_datatype", DType::kFloat32);
  // The output first: it bounds num_mel_bins (and so the point table) by the tensor size limit.
  Tensor& out = ctx.AllocateOutput(0, out_type, {spectrogram_bins, num_mel_bins});
  if (out.num_elements() == 0) return;
  const double ln10 = std::log(10.0);
  const double low_mel = 2595 * std::log1p(lower / 700) / ln10;
  const double high_mel = 2595 * std::log1p(upper / 700) / ln10;
  const double mel_step = (high_mel - low_mel) / static_cast<double>(num_mel_bins + 2);
  std::vector<int64_t> points(static_cast<size_t>(num_mel_bins + 2));
  for (int64_t i = 0; i < num_mel_bins + 2; ++i) {
    const double hertz = 700 * std::expm1((static_cast<double>(i) * mel_step + low_mel) / 2595 * ln10);
    const double bin = std::floor((static_cast<double>(dft_length) + 1) * hertz / static_cast<double>(sample_rate));
    if (!(bin >= 0 && bin < static_cast<double>(spectrogram_bins)))
      ctx.Fail(
          fmt::format("the mel band edge {} ({} Hz) falls on spectrogram bin {}, outside [0, {}): lower_edge_hertz "
                      "{} and upper_edge_hertz {} must lie in [0, sample_rate / 2]",
                      i, hertz, bin, spectrogram_bins, lower, upper));
    points[static_cast<size_t>(i)] = static_cast<int64_t>(bin);
  }
  CheckScratch(ctx, out.num_elements(), sizeof(double));
  std::vector<double> w(static_cast<size_t>(out.num_elements()), 0.0);
  auto at = [&](int64_t row, int64_t col) -> double& { return w[static_cast<size_t>(row * num_mel_bins + col)]; };
  for (int64_t i = 0; i < num_mel_bins; ++i) {
    const int64_t left = points[static_cast<size_t>(i)], center = points[static_cast<size_t>(i + 1)],
                  right = points[static_cast<size_t>(i + 2)];
    if (center == left) {
      at(center, i) = 1;
    } else {
      for (int64_t j = left; j <= center; ++j)
        at(j, i) = static_cast<double>(j - left) / static_cast<double>(center - left);
    }
    for (int64_t j = center; j < right; ++j)
      at(j, i) = static_cast<double>(right - j) / static_cast<double>(right - center);
  }
  DispatchNumeric(out_type, ctx.node().op, [&]<typename D>() {
    D* o = out.data<D>();
    for (size_t k = 0; k < w.size(); ++k) o[k] = ir::elementwise::CastValue<D, double>(w[k], false);
  });
}
KILN_REFERENCE_KERNEL("MelWeightMatrix", MelWeightMatrixKernel);

}  // namespace
}  // namespace kiln::reference
