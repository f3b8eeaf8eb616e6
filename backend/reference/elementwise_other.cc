// Select (3-way broadcasting), Cast (strings and complex included), Clip and AddN reference kernels.
#include <cmath>
#include <complex>
#include <cstring>

#include "backend/reference/elementwise_common.h"
#include "backend/reference/string_cast.h"
#include "ir/ops/elementwise_cast.h"

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

// To and from strings (ONNX): the text of each number, the number each text holds
// (backend/reference/string_cast.h).
void CastStringKernel(KernelContext& ctx, const Tensor& x, DType to) {
  const int64_t n = x.num_elements();
  Tensor& out = ctx.AllocateOutput(0, to, x.shape());
  if (x.dtype() == DType::kString && to == DType::kString) {
    out.strings() = x.strings();
  } else if (to == DType::kString) {
    for (int64_t i = 0; i < n; ++i) out.strings()[static_cast<size_t>(i)] = FormatElement(x, i);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const std::string& text = x.strings()[static_cast<size_t>(i)];
      if (std::string error = ParseElement(text, out, i); !error.empty())
        ctx.Fail(fmt::format("cannot cast element {} to {}: '{}' {}", i, DTypeName(to),
                             text.size() > 40 ? text.substr(0, 40) + "..." : text, error));
    }
  }
}

bool IsComplexDType(DType t) { return t == DType::kComplex64 || t == DType::kComplex128; }

// Calls fn.template operator()<C>() with the std::complex type of a complex dtype.
template <typename Fn>
void DispatchComplexDType(DType t, Fn&& fn) {
  if (t == DType::kComplex64)
    fn.template operator()<std::complex<float>>();
  else
    fn.template operator()<std::complex<double>>();
}

// To or from complex64 / complex128, as TensorFlow casts: a real value becomes (v, 0), converted
// once to the destination's part type; a complex value keeps its real part when cast to a real
// type (the imaginary part is dropped), both parts when cast to the other complex type.
void CastComplexKernel(KernelContext& ctx, const Tensor& x, DType to) {
  const bool truncate = ctx.attrs().GetOr<bool>("truncate", false);
  const int64_t n = x.num_elements();
  Tensor& out = ctx.AllocateOutput(0, to, x.shape());
  if (!IsComplexDType(x.dtype())) {
    DispatchMask<kAll>(x.dtype(), ctx.node().op, [&]<typename S>() {
      const S* in = x.data<S>();
      DispatchComplexDType(to, [&]<typename D>() {
        using R = typename D::value_type;
        D* o = out.data<D>();
        for (int64_t i = 0; i < n; ++i) o[i] = D(ir::elementwise::CastValue<R, S>(in[i], truncate), R(0));
      });
    });
    return;
  }
  DispatchComplexDType(x.dtype(), [&]<typename S>() {
    using SR = typename S::value_type;
    const S* in = x.data<S>();
    if (IsComplexDType(to)) {
      DispatchComplexDType(to, [&]<typename D>() {
        using R = typename D::value_type;
        D* o = out.data<D>();
        for (int64_t i = 0; i < n; ++i) o[i] = D(static_cast<R>(in[i].real()), static_cast<R>(in[i].imag()));
      });
      return;
    }
    DispatchMask<kAll>(to, ctx.node().op, [&]<typename D>() {
      D* o = out.template data<D>();
      for (int64_t i = 0; i < n; ++i) o[i] = ir::elementwise::CastValue<D, SR>(in[i].real(), truncate);
    });
  });
}

void CastKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const DType to = ctx.attrs().Type("to");
  if (x.dtype() == DType::kString || to == DType::kString) return CastStringKernel(ctx, x, to);
  if (IsComplexDType(x.dtype()) || IsComplexDType(to)) return CastComplexKernel(ctx, x, to);
  const bool truncate = ctx.attrs().GetOr<bool>("truncate", false);
  const int64_t n = x.num_elements();
  DispatchMask<kAll>(x.dtype(), ctx.node().op, [&]<typename S>() {
    const S* in = x.data<S>();
    DispatchMask<kAll>(to, ctx.node().op, [&]<typename D>() {
      D* out = ctx.AllocateOutput(0, to, x.shape()).template data<D>();
      for (int64_t i = 0; i < n; ++i) out[i] = ir::elementwise::CastValue<D, S>(in[i], truncate);
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
