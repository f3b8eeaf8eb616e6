// Reference kernels: Slice, StridedSlice (all masks, negative strides) and Reverse.
#include "backend/reference/array_common.h"

namespace kiln::reference {
namespace {

using array::IntInput;

// Copies x[begin_d + k * step_d for k < size_d] for every dim d into a tensor of `out_shape`
// (which has the same element count as `sizes`).
void StridedCopy(KernelContext& ctx, const Tensor& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& step,
                 const Shape& sizes, const Shape& out_shape) {
  const auto strides = array::Strides(x.shape());
  std::vector<std::vector<int64_t>> maps;
  for (size_t d = 0; d < sizes.size(); ++d) {
    std::vector<int64_t> map(static_cast<size_t>(sizes[d]));
    for (int64_t k = 0; k < sizes[d]; ++k) map[static_cast<size_t>(k)] = (begin[d] + k * step[d]) * strides[d];
    maps.push_back(std::move(map));
  }
  Tensor tmp(x.dtype(), sizes);
  array::MapCopyTensor(ctx, x, tmp, maps, nullptr);
  ctx.SetOutput(0, tmp.Reshaped(out_shape));
}

void Slice(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const auto begin = IntInput(ctx, 1, "begin");
  auto size = IntInput(ctx, 2, "size");
  if (ctx.input(1).rank() != 1 || ctx.input(2).rank() != 1 || static_cast<int>(begin.size()) != x.rank() ||
      static_cast<int>(size.size()) != x.rank())
    ctx.Fail(fmt::format("begin {} and size {} must be vectors of {} entries (the rank of input shape {})",
                         ShapeToString(ctx.input(1).shape()), ShapeToString(ctx.input(2).shape()), x.rank(), ShapeToString(x.shape())));
  for (int d = 0; d < x.rank(); ++d) {
    const size_t i = static_cast<size_t>(d);
    const int64_t n = x.dim(d), given = size[i];
    if (begin[i] < 0 || begin[i] > n)
      ctx.Fail(fmt::format("expected begin[{}] in [0, {}], got {} (input shape {})", d, n, begin[i], ShapeToString(x.shape())));
    if (size[i] == -1) size[i] = n - begin[i];
    if (size[i] < 0 || begin[i] + size[i] > n)
      ctx.Fail(fmt::format("expected size[{}] in [0, {}], got {} (begin[{}] = {}, input shape {})", d, n - begin[i], given, d, begin[i],
                           ShapeToString(x.shape())));
  }
  StridedCopy(ctx, x, begin, std::vector<int64_t>(begin.size(), 1), size, size);
}
KILN_REFERENCE_KERNEL("Slice", Slice);

void StridedSlice(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  for (int i = 1; i <= 3; ++i)
    if (ctx.input(i).rank() != 1)
      ctx.Fail(fmt::format("begin, end and strides must be 1-D, got shapes {}, {} and {}", ShapeToString(ctx.input(1).shape()),
                           ShapeToString(ctx.input(2).shape()), ShapeToString(ctx.input(3).shape())));
  const auto begin = IntInput(ctx, 1, "begin"), end = IntInput(ctx, 2, "end"), strides = IntInput(ctx, 3, "strides");
  ir::array::StridedSliceMasks m;
  m.begin_mask = ctx.attrs().GetOr<int64_t>("begin_mask", 0);
  m.end_mask = ctx.attrs().GetOr<int64_t>("end_mask", 0);
  m.ellipsis_mask = ctx.attrs().GetOr<int64_t>("ellipsis_mask", 0);
  m.new_axis_mask = ctx.attrs().GetOr<int64_t>("new_axis_mask", 0);
  m.shrink_axis_mask = ctx.attrs().GetOr<int64_t>("shrink_axis_mask", 0);
  ir::array::StridedSliceResult r;
  std::string err = ir::array::ComputeStridedSlice(std::vector<ir::Dim>(x.shape().begin(), x.shape().end()),
                                                   static_cast<int64_t>(strides.size()), &begin, &end, &strides, m, &r);
  if (!err.empty()) ctx.Fail(fmt::format("{} (input shape {})", err, ShapeToString(x.shape())));
  const Shape sizes(r.processing_shape.begin(), r.processing_shape.end());
  const Shape out_shape(r.final_shape.begin(), r.final_shape.end());
  StridedCopy(ctx, x, r.begin, r.strides, sizes, out_shape);
}
KILN_REFERENCE_KERNEL("StridedSlice", StridedSlice);

void Reverse(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (ctx.input(1).rank() > 1) ctx.Fail(fmt::format("axis must be a vector, got shape {}", ShapeToString(ctx.input(1).shape())));
  std::vector<bool> rev(static_cast<size_t>(x.rank()), false);
  for (int64_t a : IntInput(ctx, 1, "axis")) {
    const int64_t axis = array::AxisOrFail(ctx, a, x.rank(), "axis", x.shape());
    if (rev[static_cast<size_t>(axis)]) ctx.Fail(fmt::format("axis {} is specified more than once", axis));
    rev[static_cast<size_t>(axis)] = true;
  }
  std::vector<int64_t> begin, step;
  for (int d = 0; d < x.rank(); ++d) {
    const bool r = rev[static_cast<size_t>(d)];
    begin.push_back(r ? x.dim(d) - 1 : 0);
    step.push_back(r ? -1 : 1);
  }
  StridedCopy(ctx, x, begin, step, x.shape(), x.shape());
}
KILN_REFERENCE_KERNEL("Reverse", Reverse);

}  // namespace

}  // namespace kiln::reference
