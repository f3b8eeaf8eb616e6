// Shared helpers of the array-family reference kernels (declared in array_common.h). The kernels
// live in array_shape.cc, array_pad.cc, array_slice.cc, array_gather.cc, array_select.cc and
// array_reduce.cc, each registered next to its definition.
#include "backend/reference/array_common.h"

namespace kiln::reference {

namespace array {

std::vector<int64_t> IntInput(const KernelContext& ctx, int i, const char* what) {
  if (i >= ctx.num_inputs()) ctx.Fail(fmt::format("missing input {} ({})", i, what));
  const Tensor& t = ctx.input(i);
  if (!IsInteger(t.dtype())) ctx.Fail(fmt::format("{} must be an integer tensor, got {}", what, DTypeName(t.dtype())));
  if (!t.is_host()) ctx.Fail(fmt::format("{} must be a host tensor", what));
  return t.ToInt64Vector();
}

int64_t ScalarInput(const KernelContext& ctx, int i, const char* what) {
  const Tensor& t = ctx.input(i);
  if (t.num_elements() != 1 || t.rank() > 1)
    ctx.Fail(fmt::format("{} must be a scalar, got shape {}", what, ShapeToString(t.shape())));
  return IntInput(ctx, i, what)[0];
}

int64_t AxisOrFail(const KernelContext& ctx, int64_t axis, int64_t rank, const char* what, const Shape& shape) {
  auto a = ir::array::NormalizeAxis(axis, rank);
  if (!a) ctx.Fail(fmt::format("{} {} is out of range [{}, {}) for shape {}", what, axis, -rank, rank, ShapeToString(shape)));
  return *a;
}

void MapCopyTensor(const KernelContext& ctx, const Tensor& in, Tensor& out, const std::vector<std::vector<int64_t>>& maps,
                   const Tensor* fill) {
  DispatchMove(in.dtype(), ctx.node().op, [&]<typename T>() {
    T zero{};
    const T* f = fill && fill->defined() ? Elems<T>(*fill) : &zero;
    MapCopy<T>(in.num_elements() ? Elems<T>(in) : nullptr, Elems<T>(out), out.shape(), maps, f);
  });
}

}  // namespace array
}  // namespace kiln::reference
