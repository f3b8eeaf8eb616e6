// Stateless random reference kernels: StatelessRandomGetKeyCounter and StatelessRandom, TensorFlow's
// stateless RNG on its CPU kernels' terms (Philox4x32-10, backend/reference/philox.h): the same
// seed, shape and dtype give TensorFlow's numbers. See docs/ops/nn.md, "Stateless random".
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/reference/array_common.h"
#include "backend/reference/dispatch.h"
#include "backend/reference/kernel.h"
#include "backend/reference/philox.h"

namespace kiln::reference {
namespace {

using philox::Block;
using philox::Philox;

// TensorFlow's algorithm ids (rng_alg.h): auto-select picks Philox on CPU.
constexpr int64_t kAlgPhilox = 1, kAlgThreeFry = 2, kAlgAutoSelect = 3;

// ---- StatelessRandomGetKeyCounter(seed [2] int32/int64) -> key [1] uint64, counter [2] uint64 ----
void GetKeyCounterKernel(KernelContext& ctx) {
  const Tensor& seed = ctx.input(0);
  if (seed.rank() != 1 || seed.shape()[0] != 2)
    ctx.Fail(fmt::format("seed must have shape [2], not {}", ShapeToString(seed.shape())));
  if (seed.dtype() != DType::kInt32 && seed.dtype() != DType::kInt64)
    ctx.Fail(fmt::format("seed must be int32 or int64, got {}", DTypeName(seed.dtype())));
  // Both widen to 64 bits as signed values: an int32 seed of -1 is 0xFFFFFFFFFFFFFFFF.
  const std::vector<int64_t> s = seed.ToInt64Vector();
  philox::Key key;
  Block counter;
  philox::KeyCounterFromSeed(static_cast<uint64_t>(s[0]), static_cast<uint64_t>(s[1]), &key, &counter);
  ctx.AllocateOutput(0, DType::kUInt64, {1}).data<uint64_t>()[0] = philox::Pack(key[0], key[1]);
  uint64_t* c = ctx.AllocateOutput(1, DType::kUInt64, {2}).data<uint64_t>();
  c[0] = philox::Pack(counter[0], counter[1]);
  c[1] = philox::Pack(counter[2], counter[3]);
}
KILN_REFERENCE_KERNEL("StatelessRandomGetKeyCounter", GetKeyCounterKernel);

// Fills out[0, n) group by group: group g is `make(block, group)` of the generator's g-th block,
// `per_block` elements, the last group cut short. This is TensorFlow's order for every
// distribution that uses a fixed number of words per element.
template <typename T, typename Make>
void FillFixed(Philox gen, T* out, int64_t n, int per_block, Make&& make) {
  T group[4];
  for (int64_t offset = 0; offset < n; offset += per_block) {
    make(gen.Next(), group);
    const int64_t take = std::min<int64_t>(per_block, n - offset);
    for (int64_t i = 0; i < take; ++i) out[offset + i] = group[i];
  }
}

// Truncated normal: group g of `per_group` elements starts from the generator skipped by
// g * per_group * 256 / 4 blocks (TensorFlow reserves 256 words per element, so groups do not
// depend on how many draws the others rejected) and keeps Box-Muller values with |v| < 2.
template <typename T, typename Pair>
void FillTruncated(const Philox& base, T* out, int64_t n, int per_group, int words_per_pair, Pair&& pair) {
  const uint64_t skip_per_group = static_cast<uint64_t>(per_group) * 256 / 4;
  T group[4];
  for (int64_t g = 0, offset = 0; offset < n; ++g, offset += per_group) {
    Philox gen = base;
    gen.Skip(static_cast<uint64_t>(g) * skip_per_group);
    philox::SingleSamples words(&gen);
    int count = 0;
    while (count < per_group) {
      uint32_t x[4];
      for (int i = 0; i < words_per_pair; ++i) x[i] = words.Next();
      double v[2];
      pair(x, v);
      for (int i = 0; i < 2 && count < per_group; ++i)
        if (std::fabs(v[i]) < 2.0) group[count++] = FromDouble<T>(v[i]);
    }
    const int64_t take = std::min<int64_t>(per_group, n - offset);
    for (int64_t i = 0; i < take; ++i) out[offset + i] = group[i];
  }
}

void BoxMullerFloatPair(const uint32_t* x, double* v) {
  float f[2];
  philox::BoxMullerFloat(x[0], x[1], &f[0], &f[1]);
  v[0] = f[0];
  v[1] = f[1];
}

template <typename T>
void FillUniform(const Philox& gen, T* out, int64_t n) {
  if constexpr (std::is_same_v<T, double>) {
    FillFixed(gen, out, n, 2, [](const Block& b, T* g) {
      g[0] = philox::UniformDouble(b[0], b[1]);
      g[1] = philox::UniformDouble(b[2], b[3]);
    });
  } else {
    FillFixed(gen, out, n, 4, [](const Block& b, T* g) {
      for (int i = 0; i < 4; ++i) {
        if constexpr (std::is_same_v<T, float>)
          g[i] = philox::UniformFloat(b[i]);
        else if constexpr (std::is_same_v<T, Half>)
          g[i] = Half(philox::UniformHalfAsFloat(b[i]));
        else
          g[i] = BFloat16(philox::UniformBFloat16AsFloat(b[i]));
      }
    });
  }
}

template <typename T>
void FillNormal(const Philox& gen, T* out, int64_t n) {
  if constexpr (std::is_same_v<T, double>) {
    FillFixed(gen, out, n, 2,
              [](const Block& b, T* g) { philox::BoxMullerDouble(b[0], b[1], b[2], b[3], &g[0], &g[1]); });
  } else {
    FillFixed(gen, out, n, 4, [](const Block& b, T* g) {
      for (int i = 0; i < 4; i += 2) {
        float f[2];
        philox::BoxMullerFloat(b[i], b[i + 1], &f[0], &f[1]);
        g[i] = FromDouble<T>(f[0]);
        g[i + 1] = FromDouble<T>(f[1]);
      }
    });
  }
}

template <typename T>
void FillTruncatedNormal(const Philox& gen, T* out, int64_t n) {
  if constexpr (std::is_same_v<T, double>) {
    FillTruncated(gen, out, n, 2, 4,
                  [](const uint32_t* x, double* v) { philox::BoxMullerDouble(x[0], x[1], x[2], x[3], &v[0], &v[1]); });
  } else {
    FillTruncated(gen, out, n, 4, 2, BoxMullerFloatPair);
  }
}

// lo + (word % range) with range = hi - lo taken unsigned; 64-bit types use two words per element.
template <typename T>
void FillUniformInt(const Philox& gen, T* out, int64_t n, T lo, T hi) {
  using U = std::make_unsigned_t<T>;
  const U range = static_cast<U>(static_cast<U>(hi) - static_cast<U>(lo));
  auto add = [lo](U b) { return static_cast<T>(static_cast<U>(lo) + b); };  // wraps like TF's SignedAdd
  if constexpr (sizeof(T) == 8) {
    FillFixed(gen, out, n, 2, [&](const Block& b, T* g) {
      g[0] = add(philox::Pack(b[0], b[1]) % range);
      g[1] = add(philox::Pack(b[2], b[3]) % range);
    });
  } else {
    FillFixed(gen, out, n, 4, [&](const Block& b, T* g) {
      for (int i = 0; i < 4; ++i) g[i] = add(b[i] % range);
    });
  }
}

template <typename T>
void FillUniformFullInt(const Philox& gen, T* out, int64_t n) {
  if constexpr (sizeof(T) == 8) {
    FillFixed(gen, out, n, 2, [](const Block& b, T* g) {
      g[0] = static_cast<T>(philox::Pack(b[0], b[1]));
      g[1] = static_cast<T>(philox::Pack(b[2], b[3]));
    });
  } else {
    FillFixed(gen, out, n, 4, [](const Block& b, T* g) {
      for (int i = 0; i < 4; ++i) g[i] = static_cast<T>(b[i]);
    });
  }
}

// Two doubles per generator block, handed out last first (TensorFlow's RandomSampleBuffer).
class DoublePairs {
 public:
  // `make` turns a block into the pair.
  explicit DoublePairs(void (*make)(const Block&, double*)) : make_(make) {}
  double Next(Philox& gen) {
    if (left_ == 0) {
      make_(gen.Next(), pair_);
      left_ = 2;
    }
    return pair_[--left_];
  }

 private:
  void (*make_)(const Block&, double*);
  double pair_[2] = {0, 0};
  int left_ = 0;
};

void NormalPair(const Block& b, double* d) { philox::BoxMullerDouble(b[0], b[1], b[2], b[3], &d[0], &d[1]); }
void UniformPair(const Block& b, double* d) {
  d[0] = philox::UniformDouble(b[0], b[1]);
  d[1] = philox::UniformDouble(b[2], b[3]);
}

// Gamma(alpha, 1), TensorFlow's StatelessRandomGammaFunctor: output i (alpha alpha[i / per_alpha],
// stored at (i % per_alpha) * num_alphas + i / per_alpha) draws from the generator skipped by
// 256 * i blocks, in double: alpha = 1 is -log1p(-u) of the second uniform of the first block;
// otherwise Marsaglia and Tsang's transformation-rejection from normal and uniform pairs (each
// handed out last first), with d = alpha - 1/3, or alpha + 2/3 and a factor u^(1/alpha) when
// alpha < 1. An alpha with d <= 0 (alpha <= -2/3) or NaN never accepts (TensorFlow's kernel loops
// forever on it): it fails instead.
template <typename T>
void FillGamma(const KernelContext& ctx, const Philox& base, T* out, int64_t num_samples, const T* alpha,
               int64_t num_alphas) {
  const int64_t per_alpha = num_samples / num_alphas;
  for (int64_t i = 0; i < num_samples; ++i) {
    const int64_t a = i / per_alpha;
    const double alpha_d = ToDouble(alpha[a]);
    Philox gen = base;
    gen.Skip(uint64_t{256} * static_cast<uint64_t>(i));
    double res = 0;
    if (alpha_d == 1.0) {
      const Block b = gen.Next();
      res = -std::log1p(-philox::UniformDouble(b[2], b[3]));
    } else {
      const bool below_one = alpha_d < 1.0;
      const double d = alpha_d + (below_one ? 2.0 / 3 : -1.0 / 3);
      if (!(d > 0)) ctx.Fail(fmt::format("alpha {} has no gamma draw (alpha must be > -2/3)", alpha_d));
      const double c = 1.0 / 3 / std::sqrt(d);
      DoublePairs normals(NormalPair), uniforms(UniformPair);
      while (true) {
        const double x = normals.Next(gen);
        double v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        const double u = uniforms.Next(gen);
        if ((u < 1 - 0.0331 * (x * x) * (x * x)) || (std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v)))) {
          res = d * v;
          if (below_one) res *= std::pow(uniforms.Next(gen), 1 / alpha_d);
          break;
        }
      }
    }
    out[(i % per_alpha) * num_alphas + a] = FromDouble<T>(res);
  }
}

template <typename T>
T ScalarOf(const KernelContext& ctx, int i, const char* what, DType dtype) {
  const Tensor& t = ctx.input(i);
  if (t.rank() != 0) ctx.Fail(fmt::format("{} must be 0-D, got shape {}", what, ShapeToString(t.shape())));
  if (t.dtype() != dtype) ctx.Fail(fmt::format("{} must be {}, got {}", what, DTypeName(dtype), DTypeName(t.dtype())));
  return t.data<T>()[0];
}

// ---- StatelessRandom(shape, key [1] uint64, counter [>=2] uint64, alg int32 [, minval, maxval | alpha])
//      attrs distribution, dtype -> [shape] of dtype ----
void StatelessRandomKernel(KernelContext& ctx) {
  const std::string dist = ctx.attrs().Str("distribution");
  const DType dtype = ctx.attrs().Type("dtype");
  const Tensor& alg_t = ctx.input(3);
  if (alg_t.rank() != 0 || alg_t.dtype() != DType::kInt32)
    ctx.Fail(
        fmt::format("alg must be an int32 scalar, got {} {}", DTypeName(alg_t.dtype()), ShapeToString(alg_t.shape())));
  int64_t alg = alg_t.data<int32_t>()[0];
  if (alg == kAlgAutoSelect) alg = kAlgPhilox;
  const Tensor& key_t = ctx.input(1);
  const Tensor& counter_t = ctx.input(2);
  if (key_t.dtype() != DType::kUInt64 || key_t.rank() != 1 || key_t.shape()[0] != 1)
    ctx.Fail(fmt::format("key must be uint64 of shape [1], not {} {}", DTypeName(key_t.dtype()),
                         ShapeToString(key_t.shape())));
  const int64_t counter_size = alg == kAlgThreeFry ? 1 : 2;
  if (counter_t.dtype() != DType::kUInt64 || counter_t.rank() != 1 || counter_t.shape()[0] < counter_size)
    ctx.Fail(fmt::format("counter must be a uint64 vector with length at least {}, got {} {}", counter_size,
                         DTypeName(counter_t.dtype()), ShapeToString(counter_t.shape())));
  const Tensor& shape_t = ctx.input(0);
  if (shape_t.rank() != 1)
    ctx.Fail(fmt::format("shape must be a vector, got shape {}", ShapeToString(shape_t.shape())));
  const Shape shape = array::IntInput(ctx, 0, "shape");
  for (int64_t d : shape)
    if (d < 0) ctx.Fail(fmt::format("shape {} has a negative dim", ShapeToString(shape)));
  Tensor& out = ctx.AllocateOutput(0, dtype, shape);
  const int64_t n = out.num_elements();
  if (n == 0) return;
  if (alg != kAlgPhilox)
    ctx.Fail(
        fmt::format("unsupported algorithm id {}: TensorFlow's CPU kernels draw with Philox (1) or auto-select (3){}",
                    alg, alg == kAlgThreeFry ? "; ThreeFry (2) runs on XLA only" : ""));
  const Philox gen = philox::FromKeyCounter(key_t.data<uint64_t>()[0], counter_t.data<uint64_t>());
  const std::string& op = ctx.node().op;
  if (dist == "uniform_int") {
    DispatchInteger(dtype, op, [&]<typename T>() {
      if constexpr (sizeof(T) < 4) {
        ctx.Fail(fmt::format("dtype {} is not supported (int32, int64)", DTypeName(dtype)));
      } else {
        const T lo = ScalarOf<T>(ctx, 4, "minval", dtype), hi = ScalarOf<T>(ctx, 5, "maxval", dtype);
        if (!(lo < hi)) ctx.Fail(fmt::format("Need minval < maxval, got {} >= {}", lo, hi));
        FillUniformInt<T>(gen, out.data<T>(), n, lo, hi);
      }
    });
  } else if (dist == "gamma") {
    const Tensor& alpha = ctx.input(4);
    // The draws' shape must end with alpha's: one group of draws per alpha.
    const Shape& a = alpha.shape();
    bool ends_with = a.size() <= shape.size();
    for (size_t i = 0; ends_with && i < a.size(); ++i) ends_with = a[i] == shape[shape.size() - a.size() + i];
    if (!ends_with || alpha.dtype() != dtype)
      ctx.Fail(fmt::format("Shape passed in must end with broadcasted shape: shape {}, alpha {} {}",
                           ShapeToString(shape), DTypeName(alpha.dtype()), ShapeToString(a)));
    if (alpha.num_elements() <= 0) ctx.Fail("Input alpha should have non-zero element count, got: 0");
    DispatchFloat(dtype, op, [&]<typename T>() {
      FillGamma<T>(ctx, gen, out.data<T>(), n, alpha.data<T>(), alpha.num_elements());
    });
  } else if (dist == "uniform_full_int") {
    DispatchInteger(dtype, op, [&]<typename T>() {
      if constexpr (sizeof(T) < 4)
        ctx.Fail(fmt::format("dtype {} is not supported (int32, int64, uint32, uint64)", DTypeName(dtype)));
      else
        FillUniformFullInt<T>(gen, out.data<T>(), n);
    });
  } else {
    DispatchFloat(dtype, op, [&]<typename T>() {
      if (dist == "uniform")
        FillUniform<T>(gen, out.data<T>(), n);
      else if (dist == "normal")
        FillNormal<T>(gen, out.data<T>(), n);
      else if (dist == "truncated_normal")
        FillTruncatedNormal<T>(gen, out.data<T>(), n);
      else
        ctx.Fail(fmt::format("unknown distribution '{}'", dist));
    });
  }
}
KILN_REFERENCE_KERNEL("StatelessRandom", StatelessRandomKernel);

}  // namespace

namespace philox {

void BoxMullerFloat(uint32_t x0, uint32_t x1, float* f0, float* f1) {
  float u1 = UniformFloat(x0);
  if (u1 < 1.0e-7f) u1 = 1.0e-7f;
  const float v1 = static_cast<float>(2.0 * M_PI * static_cast<double>(UniformFloat(x1)));
  const float u2 = std::sqrt(-2.0f * std::log(u1));
  sincosf(v1, f0, f1);
  *f0 *= u2;
  *f1 *= u2;
}

void BoxMullerDouble(uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3, double* d0, double* d1) {
  double u1 = UniformDouble(x0, x1);
  if (u1 < 1.0e-7) u1 = 1.0e-7;
  const double v1 = 2 * M_PI * UniformDouble(x2, x3);
  const double u2 = std::sqrt(-2.0 * std::log(u1));
  sincos(v1, d0, d1);
  *d0 *= u2;
  *d1 *= u2;
}

}  // namespace philox
}  // namespace kiln::reference
