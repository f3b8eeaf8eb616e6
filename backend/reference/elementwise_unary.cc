// Unary elementwise reference kernels: one kernel per op of the elementwise table
// (ir/ops/elementwise_unary_ops.h, the unary ones of elementwise_special_ops.h), each evaluating the op's formula for
// every dtype it accepts.
#include "backend/reference/elementwise_common.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::reference::elementwise {
namespace {

template <typename Op>
void UnaryKernel(KernelContext& ctx) {
  constexpr ir::elementwise::OpInfo kOp = Op::kInfo;
  const Tensor& x = ctx.input(0);
  ir::elementwise::State st;
  st.param = ir::elementwise::ParamOf(kOp, ctx.attrs());
  DispatchMask<kOp.types>(x.dtype(), ctx.node().op, [&]<typename T>() {
    using C = ComputeT<T>;
    const T* in = x.data<T>();
    const int64_t n = x.num_elements();
    if constexpr (ir::elementwise::ReturnsBool(kOp.pattern)) {
      bool* out = ctx.AllocateOutput(0, DType::kBool, x.shape()).template data<bool>();
      for (int64_t i = 0; i < n; ++i) out[i] = Op::template Apply<T>(Load(in[i]), st);
    } else {
      T* out = ctx.AllocateOutput(0, x.dtype(), x.shape()).template data<T>();
      for (int64_t i = 0; i < n; ++i) out[i] = Store<T>(static_cast<C>(Op::template Apply<T>(Load(in[i]), st)));
    }
  });
  if constexpr (kOp.error != nullptr) {
    if (st.error) ctx.Fail(kOp.error);
  }
}

}  // namespace

// One kernel per unary op description (ir/ops/elementwise_unary_ops.h).
KILN_STATIC_REGISTRATION(ir::elementwise::UnaryOps::ForEach([]<typename Op>() {
  ReferenceKernelRegistry().Add(Op::kInfo.name, &UnaryKernel<Op>);
}));
KILN_STATIC_REGISTRATION(ir::elementwise::SpecialUnaryOps::ForEach([]<typename Op>() {
  ReferenceKernelRegistry().Add(Op::kInfo.name, &UnaryKernel<Op>);
}));

}  // namespace kiln::reference::elementwise
