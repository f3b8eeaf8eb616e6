// The signal ops' reference kernels and shape functions (DFT, STFT, MelWeightMatrix): hand-worked
// transforms, every FFT path (direct, radix-2, Bluestein) against the definition, and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>

#include "tests/unit/nn_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using nntest::F32;
using nntest::RunOp;
using testutil::Attrs;
using testutil::Doubles;
using testutil::ExpectError;

Tensor I64(int64_t v) { return Tensor::Scalar<int64_t>(DType::kInt64, v); }
Tensor F64(Shape shape, const std::vector<double>& v) {
  return Tensor::FromVector<double>(DType::kFloat64, std::move(shape), v);
}

ir::AttrMap DftAttrs(bool inverse, bool onesided) { return Attrs({{"inverse", inverse}, {"onesided", onesided}}); }

// DFT(x, axis[, dft_length]) with constant axis and length.
Tensor Dft(const Tensor& x, int64_t axis, bool inverse, bool onesided, std::optional<int64_t> length = std::nullopt) {
  std::vector<Tensor> inputs = {x, I64(axis)};
  if (length) inputs.push_back(I64(*length));
  return RunOp("DFT", inputs, DftAttrs(inverse, onesided), 1, {1, 2})[0];
}

// The definition, in long double: X[k] = sum_j x[j] e^(-+2 pi i jk / n), x zero-padded or cut to n.
std::vector<std::complex<long double>> Definition(const std::vector<std::complex<long double>>& x, int64_t n,
                                                  int sign) {
  std::vector<std::complex<long double>> out(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < std::min<int64_t>(n, static_cast<int64_t>(x.size())); ++j) {
      const long double angle = sign * 2 * std::numbers::pi_v<long double> * static_cast<long double>((j * k) % n) / n;
      out[static_cast<size_t>(k)] += x[static_cast<size_t>(j)] * std::polar(1.0L, angle);
    }
  return out;
}

TEST(SignalDft, HandWorkedTransforms) {
  const Tensor x = F32({1, 4, 1}, {1, 2, 3, 4});
  // [10, -2+2i, -2, -2-2i]
  EXPECT_EQ(Doubles(Dft(x, 1, false, false)), (std::vector<double>{10, 0, -2, 2, -2, 0, -2, -2}));
  // Inverse of that: the signal back (1/n scaling), as complex values.
  const Tensor spectrum = F32({1, 4, 2}, {10, 0, -2, 2, -2, 0, -2, -2});
  nntest::ExpectNear(Dft(spectrum, 1, true, false), {1, 0, 2, 0, 3, 0, 4, 0});
  // RFFT: the first n/2 + 1 bins of a real signal.
  EXPECT_EQ(Doubles(Dft(x, -2, false, true)), (std::vector<double>{10, 0, -2, 2, -2, 0}));
  // IRFFT: one-sided bins back to a real signal of 2 * (3 - 1) samples.
  const Tensor half = Dft(x, 1, false, true);
  const Tensor back = Dft(half, 1, true, true);
  EXPECT_EQ(back.shape(), (Shape{1, 4, 1}));
  nntest::ExpectNear(back, {1, 2, 3, 4});
  // dft_length cuts the signal ([1, 2]) or pads it with zeros.
  EXPECT_EQ(Doubles(Dft(x, 1, false, false, 2)), (std::vector<double>{3, 0, -1, 0}));
  const Tensor padded = Dft(x, 1, false, false, 6);
  EXPECT_EQ(padded.shape(), (Shape{1, 6, 2}));
  const auto want = Definition({1, 2, 3, 4}, 6, -1);
  std::vector<double> flat;
  for (const auto& c : want) flat.insert(flat.end(), {static_cast<double>(c.real()), static_cast<double>(c.imag())});
  nntest::ExpectNear(padded, flat);
}

TEST(SignalDft, EveryLengthMatchesTheDefinition) {
  // Direct (<= 64), radix-2 (128, 256) and Bluestein (65, 100, 130) lengths, forward and inverse,
  // complex float64 input along a middle axis of [2, n, 3, 2].
  for (int64_t n : {5, 37, 64, 65, 100, 128, 130, 256}) {
    for (bool inverse : {false, true}) {
      const Shape shape = {2, n, 3, 2};
      const std::vector<float> v =
          nntest::RandomFloats(static_cast<size_t>(NumElements(shape)), static_cast<uint32_t>(n));
      const Tensor x = F64(shape, std::vector<double>(v.begin(), v.end()));
      const Tensor y = Dft(x, 1, inverse, false);
      ASSERT_EQ(y.shape(), shape);
      double worst = 0;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t c = 0; c < 3; ++c) {
          std::vector<std::complex<long double>> line;
          for (int64_t j = 0; j < n; ++j) {
            const int64_t at = ((b * n + j) * 3 + c) * 2;
            line.emplace_back(x.data<double>()[at], x.data<double>()[at + 1]);
          }
          const auto want = Definition(line, n, inverse ? 1 : -1);
          for (int64_t k = 0; k < n; ++k) {
            const int64_t at = ((b * n + k) * 3 + c) * 2;
            const long double scale = inverse ? 1.0L / n : 1.0L;
            worst =
                std::max<double>(worst, std::abs(y.data<double>()[at] - want[static_cast<size_t>(k)].real() * scale));
            worst = std::max<double>(worst,
                                     std::abs(y.data<double>()[at + 1] - want[static_cast<size_t>(k)].imag() * scale));
          }
        }
      EXPECT_LT(worst, 1e-11) << "n = " << n << (inverse ? " inverse" : "");
    }
  }
}

TEST(SignalDft, HalfPrecisionComputesInDouble) {
  Tensor x(DType::kFloat16, {1, 3, 1});
  for (int i = 0; i < 3; ++i) x.data<Half>()[i] = Half(static_cast<float>(i + 1));
  // [6, -1.5+0.866i, -1.5-0.866i]
  nntest::ExpectNear(Dft(x, 1, false, false), {6, 0, -1.5, 0.8660254, -1.5, -0.8660254}, 1e-3);
}

TEST(SignalDft, ShapeInference) {
  // A computed dft_length leaves the axis dim unknown; a computed axis every dim but the last.
  nntest::OneNode computed_length("DFT", {F32({2, 8, 1}, std::vector<float>(16)), I64(1), I64(4)},
                                  DftAttrs(false, false), 1, {1});
  EXPECT_EQ(computed_length.graph.ShapeToString(computed_length.out().shape), "[2,?,2]");
  nntest::OneNode computed_axis("DFT", {F32({2, 8, 1}, std::vector<float>(16)), I64(1)}, DftAttrs(false, true), 1, {});
  EXPECT_EQ(computed_axis.graph.ShapeToString(computed_axis.out().shape), "[?,?,2]");
  nntest::OneNode rfft("DFT", {F32({2, 9, 1}, std::vector<float>(18)), I64(-2)}, DftAttrs(false, true), 1, {1});
  EXPECT_EQ(rfft.graph.ShapeToString(rfft.out().shape), "[2,5,2]");
}

TEST(SignalDft, Errors) {
  const Tensor x = F32({1, 4, 1}, {1, 2, 3, 4});
  ExpectError(
      [&] {
        Dft(F32({1, 2, 3}, std::vector<float>(6)), 1, false, false);
      },
      ErrorCode::kInvalidArgument, {"DFT", "the last dim must be 1 (real) or 2 (complex), got 3"});
  ExpectError([&] { Dft(x, -1, false, false); }, ErrorCode::kInvalidArgument,
              {"axis -1 is out of range for rank 3", "[-3, -2] or [0, 1]"});
  ExpectError([&] { Dft(x, 2, false, false); }, ErrorCode::kInvalidArgument, {"axis 2 is out of range"});
  ExpectError(
      [&] {
        Dft(F32({1, 2, 2}, std::vector<float>(4)), 1, false, true);
      },
      ErrorCode::kInvalidArgument, {"(RFFT) takes a real input"});
  ExpectError([&] { Dft(x, 1, true, true); }, ErrorCode::kInvalidArgument, {"(IRFFT) takes a complex input"});
  ExpectError([&] { Dft(x, 1, false, false, 0); }, ErrorCode::kInvalidArgument, {"dft_length", "at least 1, got 0"});
  // IRFFT of one bin: a default length of 0.
  ExpectError([&] { Dft(F32({1, 1, 2}, {1, 0}), 1, true, true); }, ErrorCode::kInvalidArgument, {"at least 1, got 0"});
  // Checked at run time too, when the inputs are not constants.
  ExpectError(
      [&] {
        RunOp("DFT", {x, I64(5)}, DftAttrs(false, false), 1, {});
      },
      ErrorCode::kInvalidArgument, {"node", "DFT", "axis 5 is out of range"});
  ExpectError(
      [&] {
        RunOp("DFT", {x, I64(1), I64(-3)}, DftAttrs(false, false), 1, {1});
      },
      ErrorCode::kInvalidArgument, {"at least 1, got -3"});
  ExpectError(
      [&] {
        RunOp("DFT", {Tensor(DType::kInt32, {1, 4, 1}), I64(1)}, DftAttrs(false, false), 1, {1});
      },
      ErrorCode::kInvalidArgument, {"input must be float16, bfloat16, float32 or float64, got int32"});
}

TEST(SignalDft, ScratchIsBoundedLikeATensor) {
  // RFFT of length 1000: 501 output bins (4 KB) but Bluestein's scratch of 5 x 2048 complex values.
  SetMaxTensorBytes(8192);
  ExpectError(
      [] {
        Dft(F32({1, 1, 1}, {1}), 1, false, true, 1000);
      },
      ErrorCode::kResourceExhausted, {"DFT", "scratch", "more than one tensor may take"});
  // A huge dft_length fails on its output before anything is allocated.
  ExpectError([] { Dft(F32({1, 1, 1}, {1}), 1, false, false, int64_t{1} << 60); }, ErrorCode::kResourceExhausted, {});
  SetMaxTensorBytes(0);
}

// ---- STFT ----

Tensor Stft(const Tensor& signal, int64_t step, const Tensor& window, bool onesided,
            std::optional<int64_t> length = {}) {
  std::vector<Tensor> inputs = {signal, I64(step), window};
  if (length) inputs.push_back(I64(*length));
  return RunOp("STFT", inputs, Attrs({{"onesided", onesided}}), 1, {1, 3})[0];
}

TEST(SignalStft, HandWorkedFrames) {
  const Tensor signal = F32({1, 6, 1}, {1, 2, 3, 4, 5, 6});
  // Frames [1, 2, 3, 4] and [3, 4, 5, 6]: bins [10, -2+2i, -2] and [18, -2+2i, -2].
  EXPECT_EQ(Doubles(Stft(signal, 2, F32({4}, {1, 1, 1, 1}), true)),
            (std::vector<double>{10, 0, -2, 2, -2, 0, 18, 0, -2, 2, -2, 0}));
  // Window [0, 1, 1, 0] on the first frame: [0, 2, 3, 0] -> [5, -3-2i, 1, -3+2i].
  const Tensor full = Stft(signal, 2, F32({4}, {0, 1, 1, 0}), false, 4);
  EXPECT_EQ(full.shape(), (Shape{1, 2, 4, 2}));
  nntest::ExpectNear(full.Reshaped({16}), {5, 0, -3, -2, 1, 0, -3, 2, 9, 0, -5, -4, 1, 0, -5, 4});
  // A complex signal (onesided = 0): frame [1+1i, 2], window [1, 1] -> [3+1i, -1+1i].
  EXPECT_EQ(Doubles(Stft(F32({1, 2, 2}, {1, 1, 2, 0}), 1, F32({2}, {1, 1}), false)),
            (std::vector<double>{3, 1, -1, 1}));
}

TEST(SignalStft, Errors) {
  const Tensor signal = F32({1, 6, 1}, {1, 2, 3, 4, 5, 6});
  const Tensor window = F32({4}, {1, 1, 1, 1});
  ExpectError([&] { Stft(signal, 0, window, true); }, ErrorCode::kInvalidArgument,
              {"STFT", "frame_step must be at least 1"});
  ExpectError([&] { Stft(signal, 1, window, true, 3); }, ErrorCode::kInvalidArgument,
              {"frame_length 3 differs from the window's length 4"});
  ExpectError(
      [&] {
        Stft(F32({1, 3, 1}, {1, 2, 3}), 1, window, true);
      },
      ErrorCode::kInvalidArgument, {"the signal (3 samples) is shorter than one frame (4)"});
  ExpectError(
      [&] {
        Stft(F32({1, 4, 2}, std::vector<float>(8)), 1, window, true);
      },
      ErrorCode::kInvalidArgument, {"onesided = 1 takes a real signal"});
  ExpectError(
      [&] {
        Stft(F32({6, 1}, std::vector<float>(6)), 1, window, true);
      },
      ErrorCode::kInvalidArgument, {"signal must be [batch, length, 1 or 2]"});
  ExpectError(
      [&] {
        RunOp("STFT", {signal, I64(1), Tensor(DType::kFloat64, {4})}, Attrs({}), 1, {1});
      },
      ErrorCode::kInvalidArgument, {"window must have the signal's dtype float32, got float64"});
  // At run time (frame_step not a constant).
  ExpectError(
      [&] {
        RunOp("STFT", {signal, I64(-2), window}, Attrs({}), 1, {});
      },
      ErrorCode::kInvalidArgument, {"node", "frame_step must be at least 1, got -2"});
}

// ---- MelWeightMatrix ----

std::vector<Tensor> MelInputs(int64_t bins, int64_t length, int64_t rate, float lower, float upper) {
  return {I64(bins), Tensor::Scalar<int32_t>(DType::kInt32, static_cast<int32_t>(length)), I64(rate),
          Tensor::Scalar<float>(DType::kFloat32, lower), Tensor::Scalar<float>(DType::kFloat32, upper)};
}

TEST(SignalMelWeightMatrix, OnnxExample) {
  // ONNX's example: 8 bands over 9 bins of a 16-point DFT at 8192 Hz, 0 to 4096 Hz.
  for (DType out : {DType::kFloat32, DType::kInt32}) {
    const Tensor w = RunOp("MelWeightMatrix", MelInputs(8, 16, 8192, 0, 4096), Attrs({{"output_datatype", out}}), 1,
                           {0, 1, 2, 3, 4})[0];
    ASSERT_EQ(w.shape(), (Shape{9, 8}));
    EXPECT_EQ(w.dtype(), out);
    std::vector<double> want(72, 0.0);
    for (auto [row, col] :
         std::vector<std::pair<int, int>>{{0, 0}, {0, 1}, {1, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 6}, {5, 7}})
      want[static_cast<size_t>(row * 8 + col)] = 1;
    EXPECT_EQ(Doubles(w), want);
  }
  // Triangles wider than one bin: rising and falling edges (1/2 steps), peak 1.
  const Tensor w = RunOp("MelWeightMatrix", MelInputs(1, 16, 160, 0, 80), Attrs({}), 1, {0, 1, 2, 3, 4})[0];
  ASSERT_EQ(w.shape(), (Shape{9, 1}));
  double peak = 0;
  for (double v : Doubles(w)) peak = std::max(peak, v);
  EXPECT_EQ(peak, 1.0);
}

TEST(SignalMelWeightMatrix, Errors) {
  const ir::AttrMap attrs = Attrs({});
  ExpectError(
      [&] {
        RunOp("MelWeightMatrix", MelInputs(-1, 16, 8192, 0, 4096), attrs, 1, {0, 1, 2, 3, 4});
      },
      ErrorCode::kInvalidArgument, {"MelWeightMatrix", "num_mel_bins must not be negative"});
  ExpectError(
      [&] {
        RunOp("MelWeightMatrix", MelInputs(8, 16, 0, 0, 4096), attrs, 1, {0, 1, 2, 3, 4});
      },
      ErrorCode::kInvalidArgument, {"sample_rate must be at least 1"});
  // Band edges past the Nyquist frequency fall outside the spectrogram (checked at run time).
  ExpectError([&] { RunOp("MelWeightMatrix", MelInputs(8, 16, 8192, 0, 20000), attrs, 1, {}); },
              ErrorCode::kInvalidArgument, {"node", "falls on spectrogram bin", "outside [0, 9)"});
  ExpectError([&] { RunOp("MelWeightMatrix", MelInputs(8, 16, 8192, -5000, 4096), attrs, 1, {}); },
              ErrorCode::kInvalidArgument, {"outside [0, 9)"});
  ExpectError(
      [&] {
        RunOp("MelWeightMatrix", MelInputs(8, 16, 8192, 0, 4096), Attrs({{"output_datatype", DType::kBool}}), 1, {});
      },
      ErrorCode::kInvalidArgument, {"output_datatype must be a numeric dtype, got bool"});
}

}  // namespace
}  // namespace kiln
