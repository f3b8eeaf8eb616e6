// Reference kernels: Slice, StridedSlice (all masks, negative strides) and Reverse.
#include "backend/reference/array_common.h"

namespace kiln::reference {
namespace {

using array::IntInput;

// Copies what `g` selects out of x.
void StridedCopy(KernelContext& ctx, const Tensor& x, const ir::array::StridedCopyGeometry& g) {
  const auto strides = array::Strides(x.shape());
  std::vector<std::vector<int64_t>> maps;
  for (size_t d = 0; d < g.sizes.size(); ++d) {
    std::vector<int64_t> map(static_cast<size_t>(g.sizes[d]));
    for (int64_t k = 0; k < g.sizes[d]; ++k) map[static_cast<size_t>(k)] = (g.begin[d] + k * g.step[d]) * strides[d];
    maps.push_back(std::move(map));
  }
  Tensor tmp(x.dtype(), g.sizes);
  array::MapCopyTensor(ctx, x, tmp, maps, nullptr);
  ctx.SetOutput(0, tmp.Reshaped(g.out_shape));
}

void Slice(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (ctx.input(1).rank() != 1 || ctx.input(2).rank() != 1)
    ctx.Fail(fmt::format("begin {} and size {} must be vectors of {} entries (the rank of input shape {})",
                         ShapeToString(ctx.input(1).shape()), ShapeToString(ctx.input(2).shape()), x.rank(), ShapeToString(x.shape())));
  ir::array::StridedCopyGeometry g;
  const std::string err = ir::array::SliceGeometry(x.shape(), IntInput(ctx, 1, "begin"), IntInput(ctx, 2, "size"), &g);
  if (!err.empty()) ctx.Fail(err);
  StridedCopy(ctx, x, g);
}
KILN_REFERENCE_KERNEL("Slice", Slice);

void StridedSlice(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  for (int i = 1; i <= 3; ++i)
    if (ctx.input(i).rank() != 1)
      ctx.Fail(fmt::format("begin, end and strides must be 1-D, got shapes {}, {} and {}", ShapeToString(ctx.input(1).shape()),
                           ShapeToString(ctx.input(2).shape()), ShapeToString(ctx.input(3).shape())));
  ir::array::StridedCopyGeometry g;
  const std::string err = ir::array::StridedSliceGeometry(x.shape(), IntInput(ctx, 1, "begin"), IntInput(ctx, 2, "end"),
                                                          IntInput(ctx, 3, "strides"), ir::array::StridedSliceMasksOf(ctx.attrs()), &g);
  if (!err.empty()) ctx.Fail(err);
  StridedCopy(ctx, x, g);
}
KILN_REFERENCE_KERNEL("StridedSlice", StridedSlice);

void Reverse(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (ctx.input(1).rank() > 1) ctx.Fail(fmt::format("axis must be a vector, got shape {}", ShapeToString(ctx.input(1).shape())));
  ir::array::StridedCopyGeometry g;
  const std::string err = ir::array::ReverseGeometry(x.shape(), IntInput(ctx, 1, "axis"), &g);
  if (!err.empty()) ctx.Fail(err);
  StridedCopy(ctx, x, g);
}
KILN_REFERENCE_KERNEL("Reverse", Reverse);

}  // namespace

}  // namespace kiln::reference
