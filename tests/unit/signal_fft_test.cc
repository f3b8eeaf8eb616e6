// TensorFlow's FFT family (FFT, RFFT, IRFFT over the innermost 1-3 dims) and the complex
// elementwise ops: reference kernels against hand-computed transforms and the definition.
#include <cmath>
#include <complex>
#include <numbers>

#include "tests/unit/elementwise_test_util.h"

namespace kiln::ew_test {
namespace {

using C64 = std::complex<float>;
using C128 = std::complex<double>;

template <typename C>
Tensor MakeComplex(Shape shape, const std::vector<C128>& values) {
  Tensor t(std::is_same_v<C, C64> ? DType::kComplex64 : DType::kComplex128, std::move(shape));
  EXPECT_EQ(t.num_elements(), static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) t.data<C>()[i] = C(values[i]);
  return t;
}

template <typename C>
std::vector<C128> ComplexValues(const Tensor& t) {
  std::vector<C128> v;
  for (int64_t i = 0; i < t.num_elements(); ++i) v.emplace_back(t.data<C>()[i]);
  return v;
}

void ExpectComplexNear(const std::vector<C128>& got, const std::vector<C128>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_LE(std::abs(got[i] - want[i]), tol) << "element " << i << ": " << got[i] << " vs " << want[i];
}

// The definition X[k] = sum_j x[j] e^(sign 2 pi i jk / n).
std::vector<C128> Definition(const std::vector<C128>& x, int sign) {
  const size_t n = x.size();
  std::vector<C128> y(n);
  for (size_t k = 0; k < n; ++k)
    for (size_t j = 0; j < n; ++j)
      y[k] += x[j] *
              std::polar(1.0, sign * 2 * std::numbers::pi * static_cast<double>((j * k) % n) / static_cast<double>(n));
  return y;
}

std::vector<C128> Signal(size_t n) {
  std::vector<C128> x;
  for (size_t j = 0; j < n; ++j)
    x.emplace_back(std::sin(0.7 * static_cast<double>(j)) + 0.1 * static_cast<double>(j),
                   std::cos(1.3 * static_cast<double>(j)));
  return x;
}

TEST(SignalFft, RfftKnownValuesCropsToFftLength) {
  const Tensor y = RunOp("RFFT", {F32({5}, {1, 2, 3, 4, 5}), I32({1}, {4})}, Attrs({{"rank", int64_t{1}}}));
  EXPECT_EQ(y.dtype(), DType::kComplex64);
  EXPECT_EQ(y.shape(), (Shape{3}));
  ExpectComplexNear(ComplexValues<C64>(y), {{10, 0}, {-2, 2}, {-2, 0}}, 1e-6);
}

TEST(SignalFft, IrfftReadsHalfTheBinsAndDropsImaginaryDcAndNyquist) {
  // Bins past n/2 + 1 are cropped; the imaginary parts of bin 0 and bin n/2 do not matter.
  const Tensor x = MakeComplex<C128>({4}, {{10, 5}, {-2, 2}, {-2, 7}, {99, 99}});
  const Tensor y = RunOp("IRFFT", {x, I32({1}, {4})}, Attrs({{"rank", int64_t{1}}}));
  EXPECT_EQ(y.dtype(), DType::kFloat64);
  ExpectNear(Doubles(y), {1, 2, 3, 4}, 1e-15, 1e-15);
}

TEST(SignalFft, FftMatchesTheDefinitionAtEveryKindOfLength) {
  // The direct table (<= 64), radix 2, Bluestein (odd and even non-powers of two).
  for (int64_t n : {1, 7, 64, 65, 100, 128, 243}) {
    SCOPED_TRACE(n);
    const std::vector<C128> x = Signal(static_cast<size_t>(n));
    std::vector<C128> two = x;  // two rows: x and 2x
    for (const C128& v : x) two.push_back(2.0 * v);
    const Shape shape{2, n};
    const std::vector<C128> y =
        ComplexValues<C128>(RunOp("FFT", {MakeComplex<C128>(shape, two)}, Attrs({{"rank", int64_t{1}}})));
    std::vector<C128> want = Definition(x, -1);
    for (const C128& v : Definition(x, -1)) want.push_back(2.0 * v);
    // FFT error grows like log n * eps * ||x||: 1e-12 n absolute is far above it and far below a wrong bin.
    ExpectComplexNear(y, want, 1e-12 * static_cast<double>(n));
    // IFFT(FFT(x)) = x (IFFT scales by 1/n).
    const std::vector<C128> back = ComplexValues<C128>(
        RunOp("FFT", {MakeComplex<C128>(shape, y)}, Attrs({{"rank", int64_t{1}}, {"inverse", true}})));
    ExpectComplexNear(back, two, 1e-12);
  }
}

TEST(SignalFft, TwoAndThreeDimensionalTransformsAreSeparable) {
  // FFT2D of a 2 x 3 block: the definition along each axis.
  const std::vector<C128> x = Signal(6);
  std::vector<C128> want(6);
  for (size_t k0 = 0; k0 < 2; ++k0)
    for (size_t k1 = 0; k1 < 3; ++k1)
      for (size_t j0 = 0; j0 < 2; ++j0)
        for (size_t j1 = 0; j1 < 3; ++j1)
          want[k0 * 3 + k1] +=
              x[j0 * 3 + j1] *
              std::polar(1.0,
                         -2 * std::numbers::pi * (static_cast<double>(j0 * k0) / 2 + static_cast<double>(j1 * k1) / 3));
  ExpectComplexNear(ComplexValues<C128>(RunOp("FFT", {MakeComplex<C128>({2, 3}, x)}, Attrs({{"rank", int64_t{2}}}))),
                    want, 1e-13);
  // FFT3D over a leading dim of 1 is the same.
  ExpectComplexNear(ComplexValues<C128>(RunOp("FFT", {MakeComplex<C128>({1, 2, 3}, x)}, Attrs({{"rank", int64_t{3}}}))),
                    want, 1e-13);
  // RFFT2D of the real parts: the first 3 / 2 + 1 = 2 columns of the full transform of them.
  std::vector<double> re;
  for (const C128& v : x) re.push_back(v.real());
  std::vector<C128> real_x(re.begin(), re.end());
  const Tensor full = RunOp("FFT", {MakeComplex<C128>({2, 3}, real_x)}, Attrs({{"rank", int64_t{2}}}));
  const std::vector<C128> f = ComplexValues<C128>(full);
  const Tensor half = RunOp("RFFT", {F64({2, 3}, re), I32({2}, {2, 3})}, Attrs({{"rank", int64_t{2}}}));
  EXPECT_EQ(half.shape(), (Shape{2, 2}));
  ExpectComplexNear(ComplexValues<C128>(half), {f[0], f[1], f[3], f[4]}, 1e-13);
  // IRFFT2D inverts it.
  const Tensor back = RunOp("IRFFT", {half, I32({2}, {2, 3})}, Attrs({{"rank", int64_t{2}}}));
  ExpectNear(Doubles(back), re, 1e-13, 1e-13);
}

TEST(SignalFft, ErrorsNameTheProblem) {
  // TensorFlow's kernels never zero-pad: the input must cover fft_length (tf.signal pads first).
  EXPECT_NE(KernelError("RFFT", {F32({3}, {1, 2, 3}), I32({1}, {4})}, Attrs({{"rank", int64_t{1}}}))
                .find("input dim 0 must have length of at least 4 (from fft_length), got 3"),
            std::string::npos);
  EXPECT_NE(KernelError("IRFFT", {MakeComplex<C64>({2}, {1, 2}), I32({1}, {4})}, Attrs({{"rank", int64_t{1}}}))
                .find("at least 3"),
            std::string::npos);
  EXPECT_NE(KernelError("FFT", {MakeComplex<C64>({2}, {1, 2})}, Attrs({{"rank", int64_t{2}}})).find("rank >= 2"),
            std::string::npos);
  EXPECT_NE(InferError("RFFT", {{DType::kInt32, S({4})}, {DType::kInt32, S({1})}}, Attrs({{"rank", int64_t{1}}}))
                .find("float32 or float64"),
            std::string::npos);
}

TEST(SignalFft, ComplexElementwiseOps) {
  const Tensor z = MakeComplex<C128>({3}, {{3, 4}, {-1, 0}, {3e200, 4e200}});
  ExpectNear(Doubles(RunOp("ComplexAbs", {z})), {5, 1, 5e200}, 1e-15);  // hypot: no overflow
  ExpectNear(Doubles(RunOp("Real", {z})), {3, -1, 3e200});
  ExpectNear(Doubles(RunOp("Imag", {z})), {4, 0, 4e200});
  ExpectNear(Doubles(RunOp("Angle", {z})), {std::atan2(4.0, 3.0), std::numbers::pi, std::atan2(4.0, 3.0)}, 1e-15);
  ExpectComplexNear(ComplexValues<C128>(RunOp("Conj", {z})), {{3, -4}, {-1, -0.0}, {3e200, -4e200}}, 0);
  // Complex broadcasts: real [2, 1] with imag [3].
  const Tensor c = RunOp("Complex", {F32({2, 1}, {1, 2}), F32({3}, {5, 6, 7})});
  EXPECT_EQ(c.dtype(), DType::kComplex64);
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  ExpectComplexNear(ComplexValues<C64>(c), {{1, 5}, {1, 6}, {1, 7}, {2, 5}, {2, 6}, {2, 7}}, 0);
}

TEST(SignalFft, CastToAndFromComplex) {
  // Real -> complex: (v, 0); complex -> real: the real part; complex64 <-> complex128: both parts.
  const Tensor c = RunOp("Cast", {I32({2}, {-3, 16777217})}, Attrs({{"to", DType::kComplex64}}));
  EXPECT_EQ(c.dtype(), DType::kComplex64);
  // int32 -> float rounds once (16777217 -> 16777216), as TensorFlow's static_cast.
  ExpectComplexNear(ComplexValues<C64>(c), {{-3, 0}, {16777216, 0}}, 0);
  const Tensor z = MakeComplex<C128>({2}, {{1.5, -2}, {-7.25, 3}});
  ExpectNear(Doubles(RunOp("Cast", {z}, Attrs({{"to", DType::kFloat32}}))), {1.5, -7.25});
  ExpectNear(Doubles(RunOp("Cast", {z}, Attrs({{"to", DType::kInt32}}))), {1, -7});
  ExpectComplexNear(ComplexValues<C64>(RunOp("Cast", {z}, Attrs({{"to", DType::kComplex64}}))), {{1.5, -2}, {-7.25, 3}},
                    0);
  EXPECT_NE(InferError("Cast", {{DType::kComplex64, S({2})}}, Attrs({{"to", DType::kString}})).find("no string form"),
            std::string::npos);
}

TEST(SignalFft, ComplexArithmetic) {
  const Tensor a = MakeComplex<C64>({2, 2}, {{1, 2}, {0, 1}, {-3, 0.5}, {2, -2}});
  const Tensor b = MakeComplex<C64>({2}, {{3, -1}, {0, 2}});  // broadcasts along dim 0
  ExpectComplexNear(ComplexValues<C64>(RunOp("Mul", {a, b})), {{5, 5}, {-2, 0}, {-8.5, 4.5}, {4, 4}}, 1e-6);
  ExpectComplexNear(ComplexValues<C64>(RunOp("Add", {a, b})), {{4, 1}, {0, 3}, {0, -0.5}, {2, 0}}, 0);
  ExpectComplexNear(ComplexValues<C64>(RunOp("Sub", {a, b})), {{-2, 3}, {0, -1}, {-6, 1.5}, {2, -4}}, 0);
  ExpectComplexNear(ComplexValues<C64>(RunOp("Div", {a, b})), {{0.1, 0.7}, {0.5, 0}, {-0.95, -0.15}, {-1, -1}}, 1e-6);
  // Ops without a complex form name the dtype classes they take.
  EXPECT_NE(InferError("Maximum", {{DType::kComplex64, S({2})}, {DType::kComplex64, S({2})}}).find("complex64"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln::ew_test
