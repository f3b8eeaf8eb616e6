// Reference kernels: reductions (Sum, Mean, Prod, Max, Min, EuclideanNorm, All, Any), ArgMax /
// ArgMin and Cumsum / Cumprod. Floating sums and products accumulate in double; integer ones
// wrap in 64 bits like TensorFlow's (Mean of integers divides with truncation).
#include <cmath>
#include <limits>

#include "backend/reference/array_common.h"

namespace kiln::reference {
namespace {

using array::IsFloatType;
using array::Key;

// The reduced dims of x for an axes tensor (scalar or vector; negative and repeated axes allowed).
std::vector<bool> ReducedDims(const KernelContext& ctx, const Tensor& x) {
  if (ctx.input(1).rank() > 1) ctx.Fail(fmt::format("axes must be a scalar or a vector, got shape {}", ShapeToString(ctx.input(1).shape())));
  std::vector<bool> reduced(static_cast<size_t>(x.rank()), false);
  for (int64_t a : array::IntInput(ctx, 1, "axes"))
    reduced[static_cast<size_t>(array::AxisOrFail(ctx, a, x.rank(), "reduction axis", x.shape()))] = true;
  return reduced;
}

// Calls f(in_flat, out_flat) for every input element; out_flat indexes the reduced tensor.
template <typename F>
void ForEachReduced(const Shape& in, const std::vector<bool>& reduced, F&& f) {
  const int64_t n = NumElements(in);
  if (n == 0) return;
  const size_t r = in.size();
  if (r == 0) {
    f(0, 0);
    return;
  }
  // Output strides over the kept dims, 0 for reduced ones.
  std::vector<int64_t> ostride(r, 0);
  int64_t s = 1;
  for (size_t d = r; d-- > 0;)
    if (!reduced[d]) {
      ostride[d] = s;
      s *= in[d];
    }
  std::vector<int64_t> idx(r, 0);
  int64_t i = 0;
  while (i < n) {
    int64_t base = 0;
    for (size_t d = 0; d + 1 < r; ++d) base += idx[d] * ostride[d];
    for (int64_t j = 0; j < in[r - 1]; ++j, ++i) f(i, base + j * ostride[r - 1]);
    for (size_t d = r - 1; d-- > 0;) {
      if (++idx[d] < in[d]) break;
      idx[d] = 0;
    }
  }
}

enum class Kind { kSum, kMean, kProd, kMax, kMin, kEuclideanNorm, kAll, kAny };

template <Kind kKind>
void Reduce(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const std::vector<bool> reduced = ReducedDims(ctx, x);
  const bool keep = ctx.attrs().GetOr<bool>("keep_dims", false);
  Shape out_shape;
  int64_t count = 1;
  for (int d = 0; d < x.rank(); ++d) {
    if (!reduced[static_cast<size_t>(d)]) out_shape.push_back(x.dim(d));
    else {
      count *= x.dim(d);
      if (keep) out_shape.push_back(1);
    }
  }
  Tensor& out = ctx.AllocateOutput(0, x.dtype(), out_shape);
  const int64_t out_n = out.num_elements();
  if constexpr (kKind == Kind::kAll || kKind == Kind::kAny) {
    if (x.dtype() != DType::kBool) ctx.Fail(fmt::format("input must be bool, got {}", DTypeName(x.dtype())));
    bool* o = out.data<bool>();
    std::fill_n(o, out_n, kKind == Kind::kAll);
    const bool* p = x.data<bool>();
    ForEachReduced(x.shape(), reduced, [&](int64_t i, int64_t j) {
      if constexpr (kKind == Kind::kAll) o[j] = o[j] && p[i];
      else o[j] = o[j] || p[i];
    });
    return;
  } else {
    DispatchNumeric(x.dtype(), ctx.node().op, [&]<typename T>() {
      const T* p = x.data<T>();
      T* o = out.data<T>();
      if constexpr (kKind == Kind::kMax || kKind == Kind::kMin) {
        using K = decltype(Key(T{}));
        std::vector<K> acc(static_cast<size_t>(out_n));
        K init;
        if constexpr (std::numeric_limits<K>::has_infinity)
          init = kKind == Kind::kMax ? -std::numeric_limits<K>::infinity() : std::numeric_limits<K>::infinity();
        else init = kKind == Kind::kMax ? std::numeric_limits<K>::lowest() : std::numeric_limits<K>::max();
        std::fill(acc.begin(), acc.end(), init);
        ForEachReduced(x.shape(), reduced, [&](int64_t i, int64_t j) {
          const K v = Key(p[i]);
          K& a = acc[static_cast<size_t>(j)];
          if (v != v) a = v;  // NaN propagates
          else if (a == a && (kKind == Kind::kMax ? v > a : v < a)) a = v;
        });
        for (int64_t j = 0; j < out_n; ++j) {
          if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) o[j] = T(acc[static_cast<size_t>(j)]);
          else o[j] = acc[static_cast<size_t>(j)];
        }
      } else if constexpr (IsFloatType<T>()) {
        std::vector<double> acc(static_cast<size_t>(out_n), kKind == Kind::kProd ? 1.0 : 0.0);
        ForEachReduced(x.shape(), reduced, [&](int64_t i, int64_t j) {
          const double v = ToDouble(p[i]);
          double& a = acc[static_cast<size_t>(j)];
          if constexpr (kKind == Kind::kProd) a *= v;
          else if constexpr (kKind == Kind::kEuclideanNorm) a += v * v;
          else a += v;
        });
        for (int64_t j = 0; j < out_n; ++j) {
          double a = acc[static_cast<size_t>(j)];
          if constexpr (kKind == Kind::kMean) a /= static_cast<double>(count);
          if constexpr (kKind == Kind::kEuclideanNorm) a = std::sqrt(a);
          o[j] = FromDouble<T>(a);
        }
      } else {
        // Integers: wrap in 64 bits (unsigned arithmetic), like a sum in the element type.
        std::vector<uint64_t> acc(static_cast<size_t>(out_n), kKind == Kind::kProd ? 1u : 0u);
        ForEachReduced(x.shape(), reduced, [&](int64_t i, int64_t j) {
          const uint64_t v = static_cast<uint64_t>(static_cast<int64_t>(p[i]));
          uint64_t& a = acc[static_cast<size_t>(j)];
          if constexpr (kKind == Kind::kProd) a *= v;
          else if constexpr (kKind == Kind::kEuclideanNorm) a += v * v;
          else a += v;
        });
        for (int64_t j = 0; j < out_n; ++j) {
          const uint64_t a = acc[static_cast<size_t>(j)];
          if constexpr (kKind == Kind::kMean) {
            if (count == 0) o[j] = 0;  // TensorFlow divides by zero here; Kiln returns 0
            else if constexpr (std::is_signed_v<T>) o[j] = static_cast<T>(static_cast<int64_t>(a) / count);
            else o[j] = static_cast<T>(a / static_cast<uint64_t>(count));
          } else if constexpr (kKind == Kind::kEuclideanNorm) {
            o[j] = static_cast<T>(std::sqrt(static_cast<double>(static_cast<T>(a))));
          } else {
            o[j] = static_cast<T>(a);
          }
        }
      }
    });
  }
}
KILN_REFERENCE_KERNEL("ReduceSum", Reduce<Kind::kSum>);
KILN_REFERENCE_KERNEL("ReduceMean", Reduce<Kind::kMean>);
KILN_REFERENCE_KERNEL("ReduceProd", Reduce<Kind::kProd>);
KILN_REFERENCE_KERNEL("ReduceMax", Reduce<Kind::kMax>);
KILN_REFERENCE_KERNEL("ReduceMin", Reduce<Kind::kMin>);
KILN_REFERENCE_KERNEL("ReduceEuclideanNorm", Reduce<Kind::kEuclideanNorm>);
KILN_REFERENCE_KERNEL("ReduceAll", Reduce<Kind::kAll>);
KILN_REFERENCE_KERNEL("ReduceAny", Reduce<Kind::kAny>);

template <bool kMax>
void Arg(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 1) ctx.Fail("input must be at least 1-D, got a scalar");
  const int64_t axis = array::AxisOrFail(ctx, array::ScalarInput(ctx, 1, "axis"), x.rank(), "axis", x.shape());
  const int64_t n = x.dim(static_cast<int>(axis));
  if (n == 0) ctx.Fail(fmt::format("reduction axis {} is empty in shape {}", axis, ShapeToString(x.shape())));
  const DType out_type = ctx.attrs().GetOr<DType>("output_type", DType::kInt64);
  Shape out_shape = x.shape();
  out_shape.erase(out_shape.begin() + axis);
  Tensor& out = ctx.AllocateOutput(0, out_type, out_shape);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = static_cast<int>(axis) + 1; d < x.rank(); ++d) inner *= x.dim(d);
  std::vector<int64_t> best(static_cast<size_t>(outer * inner), 0);
  DispatchNumeric(x.dtype(), ctx.node().op, [&]<typename T>() {
    const T* p = x.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t b = 0;
        auto bv = Key(p[o * n * inner + i]);
        for (int64_t k = 1; k < n; ++k) {
          const auto v = Key(p[(o * n + k) * inner + i]);
          if (kMax ? v > bv : v < bv) {
            bv = v;
            b = k;
          }
        }
        best[static_cast<size_t>(o * inner + i)] = b;
      }
  });
  DispatchInteger(out_type, "output_type", [&]<typename I>() {
    for (size_t j = 0; j < best.size(); ++j) out.data<I>()[j] = static_cast<I>(best[j]);
  });
}
KILN_REFERENCE_KERNEL("ArgMax", Arg<true>);
KILN_REFERENCE_KERNEL("ArgMin", Arg<false>);

template <bool kProd>
void Cumulative(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 1) ctx.Fail("input must be at least 1-D, got a scalar");
  const int64_t axis = array::AxisOrFail(ctx, array::ScalarInput(ctx, 1, "axis"), x.rank(), "axis", x.shape());
  const bool exclusive = ctx.attrs().GetOr<bool>("exclusive", false);
  const bool reverse = ctx.attrs().GetOr<bool>("reverse", false);
  Tensor& out = ctx.AllocateOutput(0, x.dtype(), x.shape());
  const int64_t n = x.dim(static_cast<int>(axis));
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = static_cast<int>(axis) + 1; d < x.rank(); ++d) inner *= x.dim(d);
  DispatchNumeric(x.dtype(), ctx.node().op, [&]<typename T>() {
    const T* p = x.data<T>();
    T* o = out.data<T>();
    using Acc = std::conditional_t<IsFloatType<T>(), double, uint64_t>;
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i = 0; i < inner; ++i) {
        Acc acc = kProd ? Acc(1) : Acc(0);
        for (int64_t s = 0; s < n; ++s) {
          const int64_t k = reverse ? n - 1 - s : s;
          const int64_t at = (a * n + k) * inner + i;
          Acc v;
          if constexpr (IsFloatType<T>()) v = ToDouble(p[at]);
          else v = static_cast<uint64_t>(static_cast<int64_t>(p[at]));
          if (!exclusive) acc = kProd ? acc * v : acc + v;
          if constexpr (IsFloatType<T>()) o[at] = FromDouble<T>(acc);
          else o[at] = static_cast<T>(acc);
          if (exclusive) acc = kProd ? acc * v : acc + v;
        }
      }
  });
}
KILN_REFERENCE_KERNEL("Cumsum", Cumulative<false>);
KILN_REFERENCE_KERNEL("Cumprod", Cumulative<true>);

}  // namespace

}  // namespace kiln::reference
