// Binary elementwise reference kernels with numpy broadcasting: one kernel per op of the
// elementwise table (ir/ops/elementwise_binary_ops.h, the binary ones of elementwise_special_ops.h), each evaluating
// the op's formula for every dtype it accepts, and Equal / NotEqual (every dtype, optional incompatible-shape result).
#include "backend/reference/elementwise_common.h"
#include "ir/ops/elementwise_ops.h"

namespace kiln::reference::elementwise {
namespace {

void CheckSameDType(const KernelContext& ctx, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    ctx.Fail(fmt::format("inputs must have the same dtype, got {} and {}", DTypeName(a.dtype()), DTypeName(b.dtype())));
}

// Ops with a string form (Add: concatenation).
template <typename Op>
concept HasStringForm = requires(const std::string& s) {
  Op::ApplyString(s, s);
};

// The string form on two string tensors.
template <typename Op>
void StringKernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const BroadcastPlan plan = BroadcastOrFail(ctx, {a.shape(), b.shape()});
  auto& out = ctx.AllocateOutput(0, DType::kString, plan.out_shape).strings();
  const auto& sa = a.strings();
  const auto& sb = b.strings();
  ForEachBroadcast<2>(
      plan.out_shape, {&plan.strides[0], &plan.strides[1]}, [&](int64_t o, const std::array<int64_t, 2>& off) {
        out[static_cast<size_t>(o)] = Op::ApplyString(sa[static_cast<size_t>(off[0])], sb[static_cast<size_t>(off[1])]);
      });
}

template <typename Op>
void BinaryKernel(KernelContext& ctx) {
  constexpr ir::elementwise::OpInfo kOp = Op::kInfo;
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if constexpr (HasStringForm<Op>) {
    if (a.dtype() == DType::kString && b.dtype() == DType::kString) return StringKernel<Op>(ctx);
  }
  CheckSameDType(ctx, a, b);
  const BroadcastPlan plan = BroadcastOrFail(ctx, {a.shape(), b.shape()});
  ir::elementwise::State st;
  st.param = ir::elementwise::ParamOf(kOp, ctx.attrs());
  DispatchMask<kOp.types>(a.dtype(), ctx.node().op, [&]<typename T>() {
    using C = ComputeT<T>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    const std::array<const std::vector<int64_t>*, 2> strides = {&plan.strides[0], &plan.strides[1]};
    if constexpr (ir::elementwise::ReturnsBool(kOp.pattern)) {
      bool* out = ctx.AllocateOutput(0, DType::kBool, plan.out_shape).template data<bool>();
      ForEachBroadcast<2>(plan.out_shape, strides, [&](int64_t o, const std::array<int64_t, 2>& off) {
        out[o] = Op::template Apply<T>(Load(pa[off[0]]), Load(pb[off[1]]), st);
      });
    } else {
      T* out = ctx.AllocateOutput(0, a.dtype(), plan.out_shape).template data<T>();
      ForEachBroadcast<2>(plan.out_shape, strides, [&](int64_t o, const std::array<int64_t, 2>& off) {
        out[o] = Store<T>(static_cast<C>(Op::template Apply<T>(Load(pa[off[0]]), Load(pb[off[1]]), st)));
      });
    }
  });
  if constexpr (kOp.error != nullptr) {
    if (st.error) ctx.Fail(kOp.error);
  }
}

// Equal / NotEqual: every dtype including bool and string. With incompatible_shape_error=false,
// shapes that cannot be broadcast give a scalar false (Equal) / true (NotEqual).
template <bool kNot>
void EqualityKernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  CheckSameDType(ctx, a, b);
  BroadcastPlan plan;
  std::string error;
  if (!MakeBroadcastPlan({a.shape(), b.shape()}, &plan, &error)) {
    if (ctx.attrs().GetOr<bool>("incompatible_shape_error", true)) ctx.Fail(error);
    *ctx.AllocateOutput(0, DType::kBool, {}).data<bool>() = kNot;
    return;
  }
  bool* out = ctx.AllocateOutput(0, DType::kBool, plan.out_shape).data<bool>();
  const std::array<const std::vector<int64_t>*, 2> strides = {&plan.strides[0], &plan.strides[1]};
  if (a.dtype() == DType::kString) {
    const auto& sa = a.strings();
    const auto& sb = b.strings();
    ForEachBroadcast<2>(plan.out_shape, strides, [&](int64_t o, const std::array<int64_t, 2>& off) {
      out[o] = (sa[static_cast<size_t>(off[0])] == sb[static_cast<size_t>(off[1])]) != kNot;
    });
    return;
  }
  DispatchMask<kAll>(a.dtype(), ctx.node().op, [&]<typename T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    ForEachBroadcast<2>(plan.out_shape, strides, [&](int64_t o, const std::array<int64_t, 2>& off) {
      out[o] = (Load(pa[off[0]]) == Load(pb[off[1]])) != kNot;
    });
  });
}
KILN_REFERENCE_KERNEL("Equal", EqualityKernel<false>);
KILN_REFERENCE_KERNEL("NotEqual", EqualityKernel<true>);

}  // namespace

// One kernel per binary op description (ir/ops/elementwise_binary_ops.h).
KILN_STATIC_REGISTRATION(ir::elementwise::BinaryOps::ForEach([]<typename Op>() {
  ReferenceKernelRegistry().Add(Op::kInfo.name, &BinaryKernel<Op>);
}));
KILN_STATIC_REGISTRATION(ir::elementwise::SpecialBinaryOps::ForEach([]<typename Op>() {
  ReferenceKernelRegistry().Add(Op::kInfo.name, &BinaryKernel<Op>);
}));

}  // namespace kiln::reference::elementwise
