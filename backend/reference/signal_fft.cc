// Reference kernels of TensorFlow's FFT family (FFT, RFFT, IRFFT over the innermost 1-3 dims) and
// the complex elementwise ops. Transforms run in complex<double> (fft.h: any length, O(n log n))
// and round once to the output dtype. See docs/ops/signal.md.
#include <fmt/format.h>

#include <cmath>
#include <complex>
#include <limits>
#include <vector>

#include "backend/reference/elementwise_common.h"
#include "backend/reference/fft.h"
#include "backend/reference/kernel.h"
#include "ir/ops/signal_fft_util.h"

namespace kiln::reference {
namespace {

// Calls fn.template operator()<C>() with C = std::complex<float> or std::complex<double>.
template <typename Fn>
void DispatchComplex(const KernelContext& ctx, DType t, Fn&& fn) {
  if (t == DType::kComplex64) return fn.template operator()<std::complex<float>>();
  if (t == DType::kComplex128) return fn.template operator()<std::complex<double>>();
  ctx.Fail(fmt::format("expected a complex64 or complex128 input, got {}", DTypeName(t)));
}
template <typename Fn>
void DispatchReal(const KernelContext& ctx, DType t, Fn&& fn) {
  if (t == DType::kFloat32) return fn.template operator()<float>();
  if (t == DType::kFloat64) return fn.template operator()<double>();
  ctx.Fail(fmt::format("expected a float32 or float64 input, got {}", DTypeName(t)));
}

// The transform of a batch of `rank`-dimensional blocks of shape `dims` (row-major, contiguous):
// each block is transformed along each of its axes in turn.
class BlockTransform {
 public:
  BlockTransform(const KernelContext& ctx, std::vector<int64_t> dims, int sign) : dims_(std::move(dims)) {
    size_ = 1;
    for (int64_t d : dims_) {
      CheckScratch(ctx, d, sizeof(Complex));
      if (d != 0 && size_ > static_cast<int64_t>(MaxTensorBytes() / sizeof(Complex)) / d)
        CheckScratch(ctx, std::numeric_limits<int64_t>::max(), sizeof(Complex));  // the product is past the limit
      size_ *= d;
    }
    CheckScratch(ctx, size_, sizeof(Complex));
    if (size_ == 0) return;
    for (int64_t d : dims_) dfts_.emplace_back(ctx, d, sign);
  }

  int64_t size() const { return size_; }

  // Transforms `block` (size() values) along axes [0, axes).
  void Run(std::vector<Complex>& block, size_t axes) {
    if (size_ == 0) return;
    int64_t inner = size_;
    for (size_t a = 0; a < dims_.size(); ++a) {
      const int64_t n = dims_[a];
      inner /= n;
      if (a >= axes) continue;
      const int64_t outer = size_ / (n * inner);
      line_.resize(static_cast<size_t>(n));
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t base = o * n * inner + i;
          for (int64_t k = 0; k < n; ++k) line_[static_cast<size_t>(k)] = block[static_cast<size_t>(base + k * inner)];
          dfts_[a].Run(line_);
          for (int64_t k = 0; k < n; ++k) block[static_cast<size_t>(base + k * inner)] = line_[static_cast<size_t>(k)];
        }
    }
  }

  // The last axis's one-dimensional transform.
  Dft& last() { return dfts_.back(); }

 private:
  std::vector<int64_t> dims_;
  int64_t size_ = 0;
  std::vector<Dft> dfts_;
  std::vector<Complex> line_;
};

// Copies the block `in` (shape in_dims) into `out` (shape out_dims), cropping each dim (and
// zero-padding, which TensorFlow's kernels never need: CheckInputCovers).
template <typename T>
void CopyCropped(const T* in, const std::vector<int64_t>& in_dims, std::vector<Complex>& out,
                 const std::vector<int64_t>& out_dims) {
  std::fill(out.begin(), out.end(), Complex(0, 0));
  const size_t r = in_dims.size();
  std::vector<int64_t> idx(r, 0);
  int64_t in_size = 1;
  for (int64_t d : in_dims) in_size *= d;
  for (int64_t at = 0; at < in_size; ++at) {
    bool inside = true;
    int64_t o = 0;
    for (size_t a = 0; a < r; ++a) {
      inside = inside && idx[a] < out_dims[a];
      o = o * out_dims[a] + idx[a];
    }
    if (inside) {
      if constexpr (std::is_floating_point_v<T>)
        out[static_cast<size_t>(o)] = Complex(static_cast<double>(in[at]), 0);
      else
        out[static_cast<size_t>(o)] = Complex(static_cast<double>(in[at].real()), static_cast<double>(in[at].imag()));
    }
    for (size_t a = r; a-- > 0;) {
      if (++idx[a] < in_dims[a]) break;
      idx[a] = 0;
    }
  }
}

struct FftGeometry {
  int rank = 1;
  int64_t batch = 1;
  std::vector<int64_t> in_dims;  // the input's innermost `rank` dims
};

FftGeometry Geometry(const KernelContext& ctx, const Tensor& x) {
  FftGeometry g;
  g.rank = static_cast<int>(ctx.attrs().GetOr<int64_t>("rank", 1));
  if (std::string e = ir::signal::CheckFftRank(g.rank, x.rank()); !e.empty()) ctx.Fail(e);
  for (int i = 0; i < x.rank() - g.rank; ++i) g.batch *= x.dim(i);
  for (int i = x.rank() - g.rank; i < x.rank(); ++i) g.in_dims.push_back(x.dim(i));
  return g;
}

// TensorFlow's kernels transform at most the input: each input dim must hold its transform length
// (IRFFT's last: fft_length / 2 + 1 bins); tf.signal's wrappers zero-pad the input first.
void CheckInputCovers(const KernelContext& ctx, const FftGeometry& g, const std::vector<int64_t>& needed,
                      int input_rank) {
  for (size_t i = 0; i < needed.size(); ++i)
    if (g.in_dims[i] < needed[i])
      ctx.Fail(fmt::format("input dim {} must have length of at least {} (from fft_length), got {}",
                           input_rank - g.rank + static_cast<int>(i), needed[i], g.in_dims[i]));
}

std::vector<int64_t> FftLengths(const KernelContext& ctx, int rank) {
  const Tensor& t = ctx.input(1);
  if ((t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64) || t.rank() != 1 || t.dim(0) != rank)
    ctx.Fail(fmt::format("fft_length must be an int32 vector of {} lengths, got {} {}", rank, DTypeName(t.dtype()),
                         ShapeToString(t.shape())));
  std::vector<int64_t> n;
  for (int i = 0; i < rank; ++i) {
    n.push_back(t.IntAt(i));
    if (std::string e = ir::signal::CheckFftLength(n.back()); !e.empty()) ctx.Fail(e);
  }
  return n;
}

template <typename C>
C Round(const Complex& v) {
  using R = typename C::value_type;
  return C(static_cast<R>(v.real()), static_cast<R>(v.imag()));
}

// ---- FFT(x complex) attrs rank, inverse: the complex transform (inverse scaled by 1/N) ----
void FftKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const FftGeometry g = Geometry(ctx, x);
  const bool inverse = ctx.attrs().GetOr<bool>("inverse", false);
  DispatchComplex(ctx, x.dtype(), [&]<typename C>() {
    C* out = ctx.AllocateOutput(0, x.dtype(), x.shape()).template data<C>();
    BlockTransform transform(ctx, g.in_dims, inverse ? 1 : -1);
    const int64_t size = transform.size();
    if (size == 0 || g.batch == 0) return;
    const double scale = inverse ? 1.0 / static_cast<double>(size) : 1.0;
    std::vector<Complex> block(static_cast<size_t>(size));
    const C* in = x.data<C>();
    for (int64_t b = 0; b < g.batch; ++b) {
      CopyCropped(in + b * size, g.in_dims, block, g.in_dims);
      transform.Run(block, g.in_dims.size());
      for (int64_t i = 0; i < size; ++i) out[b * size + i] = Round<C>(block[static_cast<size_t>(i)] * scale);
    }
  });
}
KILN_REFERENCE_KERNEL("FFT", FftKernel);

// ---- RFFT(x real, fft_length): the input cropped / zero-padded to fft_length, its transform's
// first fft_length[-1] / 2 + 1 bins along the last axis ----
void RfftKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const FftGeometry g = Geometry(ctx, x);
  const std::vector<int64_t> n = FftLengths(ctx, g.rank);
  CheckInputCovers(ctx, g, n, x.rank());
  Shape out_shape = x.shape();
  std::vector<int64_t> out_dims = n;
  out_dims.back() = ir::signal::HalfSpectrum(n.back());
  for (int i = 0; i < g.rank; ++i)
    out_shape[static_cast<size_t>(x.rank() - g.rank + i)] = out_dims[static_cast<size_t>(i)];
  DispatchReal(ctx, x.dtype(), [&]<typename R>() {
    using C = std::complex<R>;
    C* out = ctx.AllocateOutput(0, ir::signal::ComplexOf(x.dtype()), out_shape).template data<C>();
    BlockTransform transform(ctx, n, -1);
    const int64_t size = transform.size();
    int64_t in_size = 1, out_size = 1;
    for (int i = 0; i < g.rank; ++i) {
      in_size *= g.in_dims[static_cast<size_t>(i)];
      out_size *= out_dims[static_cast<size_t>(i)];
    }
    if (g.batch == 0 || out_size == 0) return;
    std::vector<Complex> block(static_cast<size_t>(size));
    const R* in = x.data<R>();
    const int64_t last = n.back(), half = out_dims.back();
    for (int64_t b = 0; b < g.batch; ++b) {
      CopyCropped(in + b * in_size, g.in_dims, block, n);
      transform.Run(block, n.size());
      for (int64_t row = 0; row < size / last; ++row)
        for (int64_t k = 0; k < half; ++k)
          out[b * out_size + row * half + k] = Round<C>(block[static_cast<size_t>(row * last + k)]);
    }
  });
}
KILN_REFERENCE_KERNEL("RFFT", RfftKernel);

// ---- IRFFT(x complex, fft_length): the inner axes cropped / zero-padded to fft_length, the last
// to fft_length[-1] / 2 + 1 bins; complex inverse transforms along the other axes, then the real
// inverse along the last (the Hermitian-symmetric full spectrum of those bins: the imaginary parts
// of bin 0 and, for even lengths, bin n / 2 drop out), scaled by 1 / prod(fft_length) ----
void IrfftKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const FftGeometry g = Geometry(ctx, x);
  const std::vector<int64_t> n = FftLengths(ctx, g.rank);
  std::vector<int64_t> needed = n;
  needed.back() = ir::signal::HalfSpectrum(n.back());
  CheckInputCovers(ctx, g, needed, x.rank());
  Shape out_shape = x.shape();
  for (int i = 0; i < g.rank; ++i) out_shape[static_cast<size_t>(x.rank() - g.rank + i)] = n[static_cast<size_t>(i)];
  DispatchComplex(ctx, x.dtype(), [&]<typename C>() {
    using R = typename C::value_type;
    R* out = ctx.AllocateOutput(0, ir::signal::RealOf(x.dtype()), out_shape).template data<R>();
    BlockTransform transform(ctx, n, 1);
    const int64_t size = transform.size();
    int64_t in_size = 1;
    for (int64_t d : g.in_dims) in_size *= d;
    if (g.batch == 0 || size == 0) return;
    std::vector<Complex> block(static_cast<size_t>(size));
    const C* in = x.data<C>();
    const int64_t last = n.back(), half = ir::signal::HalfSpectrum(last);
    const double scale = 1.0 / static_cast<double>(size);
    std::vector<Complex> line(static_cast<size_t>(last));
    // The input cropped / padded to the bins read: fft_length, with the last axis at half.
    std::vector<int64_t> bins = n;
    bins.back() = half;
    std::vector<Complex> half_block(static_cast<size_t>(size / last * half));
    for (int64_t b = 0; b < g.batch; ++b) {
      CopyCropped(in + b * in_size, g.in_dims, half_block, bins);
      for (int64_t row = 0; row < size / last; ++row)
        for (int64_t k = 0; k < last; ++k)
          block[static_cast<size_t>(row * last + k)] =
              k < half ? half_block[static_cast<size_t>(row * half + k)] : Complex(0, 0);
      transform.Run(block, n.size() - 1);
      for (int64_t row = 0; row < size / last; ++row) {
        for (int64_t k = 0; k < last; ++k)
          line[static_cast<size_t>(k)] = k < half ? block[static_cast<size_t>(row * last + k)]
                                                  : std::conj(block[static_cast<size_t>(row * last + last - k)]);
        transform.last().Run(line);
        for (int64_t k = 0; k < last; ++k)
          out[b * size + row * last + k] = static_cast<R>(line[static_cast<size_t>(k)].real() * scale);
      }
    }
  });
}
KILN_REFERENCE_KERNEL("IRFFT", IrfftKernel);

// ---- complex elementwise ----
template <typename Fn>
void ComplexToReal(KernelContext& ctx, Fn&& fn) {
  const Tensor& x = ctx.input(0);
  DispatchComplex(ctx, x.dtype(), [&]<typename C>() {
    using R = typename C::value_type;
    const C* in = x.data<C>();
    R* out = ctx.AllocateOutput(0, ir::signal::RealOf(x.dtype()), x.shape()).template data<R>();
    for (int64_t i = 0; i < x.num_elements(); ++i) out[i] = fn(in[i]);
  });
}

// |x| as hypot: no overflow or underflow of the squares.
void ComplexAbsKernel(KernelContext& ctx) {
  ComplexToReal(ctx, []<typename C>(C v) { return std::hypot(v.real(), v.imag()); });
}
KILN_REFERENCE_KERNEL("ComplexAbs", ComplexAbsKernel);

void RealKernel(KernelContext& ctx) {
  ComplexToReal(ctx, []<typename C>(C v) { return v.real(); });
}
KILN_REFERENCE_KERNEL("Real", RealKernel);

void ImagKernel(KernelContext& ctx) {
  ComplexToReal(ctx, []<typename C>(C v) { return v.imag(); });
}
KILN_REFERENCE_KERNEL("Imag", ImagKernel);

void AngleKernel(KernelContext& ctx) {
  ComplexToReal(ctx, []<typename C>(C v) { return std::atan2(v.imag(), v.real()); });
}
KILN_REFERENCE_KERNEL("Angle", AngleKernel);

void ConjKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  DispatchComplex(ctx, x.dtype(), [&]<typename C>() {
    const C* in = x.data<C>();
    C* out = ctx.AllocateOutput(0, x.dtype(), x.shape()).template data<C>();
    for (int64_t i = 0; i < x.num_elements(); ++i) out[i] = std::conj(in[i]);
  });
}
KILN_REFERENCE_KERNEL("Conj", ConjKernel);

void ComplexKernel(KernelContext& ctx) {
  const Tensor& re = ctx.input(0);
  const Tensor& im = ctx.input(1);
  if (re.dtype() != im.dtype())
    ctx.Fail(
        fmt::format("real and imag must have one dtype, got {} and {}", DTypeName(re.dtype()), DTypeName(im.dtype())));
  const reference::elementwise::BroadcastPlan plan =
      reference::elementwise::BroadcastOrFail(ctx, {re.shape(), im.shape()});
  DispatchReal(ctx, re.dtype(), [&]<typename R>() {
    using C = std::complex<R>;
    C* out = ctx.AllocateOutput(0, ir::signal::ComplexOf(re.dtype()), plan.out_shape).template data<C>();
    const R* a = re.data<R>();
    const R* b = im.data<R>();
    reference::elementwise::ForEachBroadcast<2>(
        plan.out_shape, {&plan.strides[0], &plan.strides[1]},
        [&](int64_t o, const std::array<int64_t, 2>& off) { out[o] = C(a[off[0]], b[off[1]]); });
  });
}
KILN_REFERENCE_KERNEL("Complex", ComplexKernel);

}  // namespace
}  // namespace kiln::reference
