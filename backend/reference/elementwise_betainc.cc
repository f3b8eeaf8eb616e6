// Betainc(a, b, x), the regularized incomplete beta function, with TensorFlow's shape rule: the
// non-scalar inputs have one shape and scalars repeat. Computed in double (ir/ops/special_math.h)
// and rounded once to the dtype.
#include <fmt/format.h>

#include "backend/reference/elementwise_common.h"
#include "ir/ops/special_math.h"

namespace kiln::reference::elementwise {
namespace {

void BetaincKernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor& x = ctx.input(2);
  if (a.dtype() != b.dtype() || a.dtype() != x.dtype())
    ctx.Fail(fmt::format("inputs must have the same dtype, got {}, {} and {}", DTypeName(a.dtype()),
                         DTypeName(b.dtype()), DTypeName(x.dtype())));
  const Tensor* shaped = nullptr;
  for (const Tensor* t : {&a, &b, &x}) {
    if (t->rank() == 0) continue;
    if (shaped && shaped->shape() != t->shape())
      ctx.Fail(fmt::format("a, b and x must have the same shape or be scalars, got {}, {} and {}",
                           ShapeToString(a.shape()), ShapeToString(b.shape()), ShapeToString(x.shape())));
    shaped = t;
  }
  const BroadcastPlan plan = BroadcastOrFail(ctx, {a.shape(), b.shape(), x.shape()});
  DispatchMask<ir::kFloat>(a.dtype(), ctx.node().op, [&]<typename T>() {
    using C = ComputeT<T>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    const T* px = x.data<T>();
    T* out = ctx.AllocateOutput(0, a.dtype(), plan.out_shape).template data<T>();
    ForEachBroadcast<3>(plan.out_shape, {&plan.strides[0], &plan.strides[1], &plan.strides[2]},
                        [&](int64_t o, const std::array<int64_t, 3>& off) {
                          const double v = ir::special::Betainc(static_cast<double>(Load(pa[off[0]])),
                                                                static_cast<double>(Load(pb[off[1]])),
                                                                static_cast<double>(Load(px[off[2]])));
                          out[o] = Store<T>(static_cast<C>(v));
                        });
  });
}

}  // namespace

KILN_REFERENCE_KERNEL("Betainc", BetaincKernel);

}  // namespace kiln::reference::elementwise
