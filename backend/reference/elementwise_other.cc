// Select (3-way broadcasting), Cast, Clip and AddN reference kernels.
#include <cmath>
#include <cstring>

#include "backend/reference/elementwise_common.h"

namespace kiln::reference::elementwise {
namespace {

// ---- Select ----
void SelectKernel(KernelContext& ctx) {
  const Tensor& cond = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& y = ctx.input(2);
  if (cond.dtype() != DType::kBool) ctx.Fail(fmt::format("condition must be bool, got {}", DTypeName(cond.dtype())));
  if (x.dtype() != y.dtype())
    ctx.Fail(fmt::format("inputs 1 and 2 must have the same dtype, got {} and {}", DTypeName(x.dtype()), DTypeName(y.dtype())));
  const BroadcastPlan plan = BroadcastOrFail(ctx, {cond.shape(), x.shape(), y.shape()});
  const std::array<const std::vector<int64_t>*, 3> strides = {&plan.strides[0], &plan.strides[1], &plan.strides[2]};
  const bool* c = cond.data<bool>();
  if (x.dtype() == DType::kString) {
    auto& out = ctx.AllocateOutput(0, DType::kString, plan.out_shape).strings();
    const auto& sx = x.strings();
    const auto& sy = y.strings();
    ForEachBroadcast<3>(plan.out_shape, strides, [&](int64_t o, const std::array<int64_t, 3>& off) {
      out[static_cast<size_t>(o)] = c[off[0]] ? sx[static_cast<size_t>(off[1])] : sy[static_cast<size_t>(off[2])];
    });
    return;
  }
  DispatchBySize(x.dtype(), ctx.node().op, [&]<typename T>() {
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    T* out = ctx.AllocateOutput(0, x.dtype(), plan.out_shape).template data<T>();
    ForEachBroadcast<3>(plan.out_shape, strides, [&](int64_t o, const std::array<int64_t, 3>& off) {
      out[o] = c[off[0]] ? px[off[1]] : py[off[2]];
    });
  });
}
KILN_REFERENCE_KERNEL("Select", SelectKernel);

// ---- Cast ----

// Float -> integer conversion as TensorFlow's CPU kernels do it on x86-64 (static_cast compiled
// to cvttss2si/cvttsd2si): truncation toward zero; NaN and out-of-range values give the
// "integer indefinite" value (INT_MIN of the 32- or 64-bit conversion), which narrower
// destinations then wrap.
template <typename D>
D FloatToInt(double x) {
  constexpr double k2p63 = 9223372036854775808.0;
  if constexpr (std::is_same_v<D, int64_t>) {
    if (!(x >= -k2p63 && x < k2p63)) return std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(x);
  } else if constexpr (std::is_same_v<D, int32_t>) {
    if (!(x > -2147483649.0 && x < 2147483648.0)) return std::numeric_limits<int32_t>::min();
    return static_cast<int32_t>(x);
  } else if constexpr (sizeof(D) < 4) {
    return static_cast<D>(FloatToInt<int32_t>(x));
  } else if constexpr (std::is_same_v<D, uint32_t>) {
    return static_cast<uint32_t>(FloatToInt<int64_t>(x));
  } else {  // uint64_t
    if (x < k2p63) return static_cast<uint64_t>(FloatToInt<int64_t>(x));
    return static_cast<uint64_t>(FloatToInt<int64_t>(x - k2p63)) ^ 0x8000000000000000ull;
  }
}

// Zeroes the n low mantissa bits of a non-NaN float or double (TensorFlow's Truncate=true casts).
template <typename F>
F ZeroLowBits(F v, int n) {
  using Bits = std::conditional_t<sizeof(F) == 4, uint32_t, uint64_t>;
  if (std::isnan(v)) return v;
  Bits u;
  std::memcpy(&u, &v, sizeof u);
  u &= ~Bits{0} << n;
  std::memcpy(&v, &u, sizeof u);
  return v;
}

template <typename D, typename S>
D CastValue(S v, bool truncate) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<D, bool>) {
    if constexpr (kIsHalfLike<S>) return static_cast<float>(v) != 0.0f;
    else return v != S(0);
  } else if constexpr (std::is_same_v<S, bool>) {
    if constexpr (kIsHalfLike<D>) return D(v ? 1.0f : 0.0f);
    else return static_cast<D>(v ? 1 : 0);
  } else if constexpr (kIsHalfLike<S>) {
    return CastValue<D, float>(static_cast<float>(v), false);  // widening to float is exact
  } else if constexpr (kIsHalfLike<D>) {
    if constexpr (std::is_same_v<S, float>) {
      if (truncate) v = ZeroLowBits(v, std::is_same_v<D, Half> ? 13 : 16);
    } else if constexpr (std::is_same_v<S, double> && std::is_same_v<D, Half>) {
      if (truncate) v = ZeroLowBits(v, 42);
    }
    return D(static_cast<float>(v));  // through float, like Eigen's half/bfloat16 constructors
  } else if constexpr (std::is_floating_point_v<D>) {
    if constexpr (std::is_same_v<D, float> && std::is_same_v<S, double>)
      if (truncate) v = ZeroLowBits(v, 29);
    return static_cast<D>(v);
  } else if constexpr (std::is_floating_point_v<S>) {
    return FloatToInt<D>(static_cast<double>(v));
  } else {
    return static_cast<D>(v);  // integer -> integer wraps
  }
}

void CastKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DType to = ctx.attrs().Type("to");
  const bool truncate = ctx.attrs().GetOr<bool>("truncate", false);
  const int64_t n = x.num_elements();
  DispatchMask<kAll>(x.dtype(), ctx.node().op, [&]<typename S>() {
    const S* in = x.data<S>();
    DispatchMask<kAll>(to, ctx.node().op, [&]<typename D>() {
      D* out = ctx.AllocateOutput(0, to, x.shape()).template data<D>();
      for (int64_t i = 0; i < n; ++i) out[i] = CastValue<D, S>(in[i], truncate);
    });
  });
}
KILN_REFERENCE_KERNEL("Cast", CastKernel);

// ---- Clip: min(max(x, lo), hi) evaluated as TensorFlow's x.cwiseMin(hi).cwiseMax(lo) ----
void ClipKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& lo = ctx.input(1);
  const Tensor& hi = ctx.input(2);
  if (x.dtype() != lo.dtype() || x.dtype() != hi.dtype())
    ctx.Fail(fmt::format("inputs must have the same dtype, got {}, {} and {}", DTypeName(x.dtype()),
                         DTypeName(lo.dtype()), DTypeName(hi.dtype())));
  const BroadcastPlan plan = BroadcastOrFail(ctx, {x.shape(), lo.shape(), hi.shape()});
  DispatchMask<kNumeric>(x.dtype(), ctx.node().op, [&]<typename T>() {
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    const T* pl = lo.data<T>();
    const T* ph = hi.data<T>();
    T* out = ctx.AllocateOutput(0, x.dtype(), plan.out_shape).template data<T>();
    ForEachBroadcast<3>(plan.out_shape, {&plan.strides[0], &plan.strides[1], &plan.strides[2]},
                        [&](int64_t o, const std::array<int64_t, 3>& off) {
                          const C v = Load(px[off[0]]), l = Load(pl[off[1]]), h = Load(ph[off[2]]);
                          const C m = h < v ? h : v;  // std::min(v, h): NaN v stays NaN
                          out[o] = Store<T>(m < l ? l : m);
                        });
  });
}
KILN_REFERENCE_KERNEL("Clip", ClipKernel);

// ---- AddN: floats accumulate in double, integers wrap ----
void AddNKernel(KernelContext& ctx) {
  const int n = ctx.num_inputs();
  const DType dtype = ctx.input(0).dtype();
  std::vector<Shape> shapes;
  for (int i = 0; i < n; ++i) {
    if (ctx.input(i).dtype() != dtype)
      ctx.Fail(fmt::format("inputs 0 and {} must have the same dtype, got {} and {}", i, DTypeName(dtype),
                           DTypeName(ctx.input(i).dtype())));
    shapes.push_back(ctx.input(i).shape());
  }
  const BroadcastPlan plan = BroadcastOrFail(ctx, shapes);
  DispatchMask<kNumeric>(dtype, ctx.node().op, [&]<typename T>() {
    using C = ComputeT<T>;
    using Acc = std::conditional_t<kIsInt<C>, C, double>;
    std::vector<Acc> acc(static_cast<size_t>(NumElements(plan.out_shape)), Acc(0));
    for (int i = 0; i < n; ++i) {
      const T* p = ctx.input(i).data<T>();
      ForEachBroadcast<1>(plan.out_shape, {&plan.strides[static_cast<size_t>(i)]},
                          [&](int64_t o, const std::array<int64_t, 1>& off) {
                            acc[static_cast<size_t>(o)] = WrapAdd(acc[static_cast<size_t>(o)], static_cast<Acc>(Load(p[off[0]])));
                          });
    }
    T* out = ctx.AllocateOutput(0, dtype, plan.out_shape).template data<T>();
    for (size_t i = 0; i < acc.size(); ++i) out[i] = Store<T>(static_cast<C>(acc[i]));
  });
}
KILN_REFERENCE_KERNEL("AddN", AddNKernel);

}  // namespace

}  // namespace kiln::reference::elementwise
