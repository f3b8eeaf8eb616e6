// Reference kernels of the TensorList ops. A list is a dense tensor [num_elements,
// *element_shape]; a list whose element shape TensorListReserve could not know holds no elements
// (its unknown dims are 0) until TensorListSetItem / PushBack gives it the item's shape. Lists
// whose elements differ in shape cannot be held this way and are refused. docs/ops/tensor_list.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <optional>

#include "backend/reference/kernel.h"

namespace kiln::reference {
namespace {

std::string ShapeText(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ",")); }

Shape ElementShape(const Tensor& list) { return Shape(list.shape().begin() + 1, list.shape().end()); }

void RequireList(const KernelContext& ctx, const Tensor& list) {
  if (list.rank() == 0) ctx.Fail("expected a list (a tensor of rank >= 1), got a scalar");
  if (list.dtype() == DType::kString || DTypeSize(list.dtype()) == 0)
    ctx.Fail(fmt::format("lists of {} elements are not supported", DTypeName(list.dtype())));
}

// An element_shape input: nullopt for unknown rank (a scalar -1); -1 dims are unknown.
std::optional<std::vector<int64_t>> Declared(const KernelContext& ctx, const Tensor& t) {
  if (t.rank() == 0) {
    if (t.IntAt(0) != -1) ctx.Fail(fmt::format("a scalar element_shape must be -1 (unknown rank), got {}", t.IntAt(0)));
    return std::nullopt;
  }
  if (t.rank() != 1) ctx.Fail(fmt::format("element_shape must be a scalar or a vector, got rank {}", t.rank()));
  std::vector<int64_t> dims = t.ToInt64Vector();
  for (int64_t d : dims)
    if (d < -1) ctx.Fail(fmt::format("element_shape has dim {}, expected >= -1", d));
  return dims;
}

bool Compatible(const std::optional<std::vector<int64_t>>& declared, const Shape& shape) {
  if (!declared) return true;
  if (declared->size() != shape.size()) return false;
  for (size_t d = 0; d < shape.size(); ++d)
    if ((*declared)[d] != -1 && (*declared)[d] != shape[d]) return false;
  return true;
}

bool FullyDefined(const std::optional<std::vector<int64_t>>& declared) {
  if (!declared) return false;
  for (int64_t d : *declared)
    if (d < 0) return false;
  return true;
}

// A list that has rows but no elements: Reserve's stand-in for elements of a shape not known yet.
bool Uninitialised(const Tensor& list) { return list.num_elements() == 0 && list.dim(0) > 0; }

int64_t Index(const KernelContext& ctx, const Tensor& index) {
  if (index.num_elements() != 1)
    ctx.Fail(fmt::format("index must be a scalar, got shape {}", ShapeText(index.shape())));
  return index.IntAt(0);
}

// The list with room for `length` elements of shape `element` (a copy: list ops are functional).
// Rows it had keep their values when the element shape is unchanged; new rows are zeros.
Tensor Resized(const KernelContext& ctx, const Tensor& list, int64_t length, const Shape& element) {
  const Shape old = ElementShape(list);
  if (old != element && list.num_elements() > 0)
    ctx.Fail(
        fmt::format("the list holds elements of shape {} and the item has shape {}; Kiln holds a list as one "
                    "dense tensor, so all its elements must have one shape",
                    ShapeText(old), ShapeText(element)));
  Shape shape{length};
  shape.insert(shape.end(), element.begin(), element.end());
  Tensor out(list.dtype(), shape);
  if (old == element) {
    const size_t bytes = std::min(list.byte_size(), out.byte_size());
    if (bytes > 0) std::memcpy(out.raw_data(), list.raw_data(), bytes);
  }
  return out;
}

void WriteRow(Tensor& list, int64_t i, const Tensor& item) {
  const size_t row = item.byte_size();
  if (row > 0) std::memcpy(static_cast<char*>(list.raw_data()) + static_cast<size_t>(i) * row, item.raw_data(), row);
}

// TensorListReserve(element_shape, num_elements): num_elements rows of zeros; unknown dims are 0
// until the first item fixes them (an unknown rank gives rows of shape [0]).
void ReserveKernel(KernelContext& ctx) {
  const auto declared = Declared(ctx, ctx.input(0));
  if (ctx.input(1).num_elements() != 1) ctx.Fail("num_elements must be a scalar");
  const int64_t n = ctx.input(1).IntAt(0);
  if (n < 0) ctx.Fail(fmt::format("num_elements is {}, expected >= 0", n));
  Shape shape{n};
  if (!declared)
    shape.push_back(0);
  else
    for (int64_t d : *declared) shape.push_back(d < 0 ? 0 : d);
  const DType dtype = ctx.attrs().Get<DType>("element_dtype");
  if (dtype == DType::kString || DTypeSize(dtype) == 0)
    ctx.Fail(fmt::format("lists of {} elements are not supported", DTypeName(dtype)));
  ctx.AllocateOutput(0, dtype, std::move(shape));
}
KILN_REFERENCE_KERNEL("TensorListReserve", ReserveKernel);

// TensorListGetItem(list, index, element_shape): element `index`; an element never set reads as
// zeros of element_shape when the list's own element shape is not known (TensorFlow's rule).
void GetItemKernel(KernelContext& ctx) {
  const Tensor& list = ctx.input(0);
  RequireList(ctx, list);
  const int64_t i = Index(ctx, ctx.input(1));
  const auto declared = Declared(ctx, ctx.input(2));
  if (i < 0 || i >= list.dim(0))
    ctx.Fail(fmt::format("index {} is out of range for a list of {} elements", i, list.dim(0)));
  const Shape element = ElementShape(list);
  if (Uninitialised(list) && FullyDefined(declared) && Shape(declared->begin(), declared->end()) != element) {
    ctx.AllocateOutput(0, list.dtype(), Shape(declared->begin(), declared->end()));
    return;
  }
  if (!Compatible(declared, element))
    ctx.Fail(fmt::format("the list's elements have shape {}, incompatible with element_shape {}", ShapeText(element),
                         ShapeText(declared ? Shape(declared->begin(), declared->end()) : Shape{})));
  Tensor& out = ctx.AllocateOutput(0, list.dtype(), element);
  const size_t row = out.byte_size();
  if (row > 0)
    std::memcpy(out.raw_data(), static_cast<const char*>(list.raw_data()) + static_cast<size_t>(i) * row, row);
}
KILN_REFERENCE_KERNEL("TensorListGetItem", GetItemKernel);

// TensorListSetItem(list, index, item): a new list with element `index` replaced. With
// resize_if_index_out_of_bounds an index past the end grows the list (tf.TensorArray with
// dynamic_size).
void SetItemKernel(KernelContext& ctx) {
  const Tensor& list = ctx.input(0);
  const Tensor& item = ctx.input(2);
  RequireList(ctx, list);
  const int64_t i = Index(ctx, ctx.input(1));
  const bool resize = ctx.attrs().GetOr<bool>("resize_if_index_out_of_bounds", false);
  int64_t length = list.dim(0);
  if (i < 0 || (i >= length && !resize))
    ctx.Fail(fmt::format("index {} is out of range for a list of {} elements", i, length));
  if (i >= length) length = i + 1;
  Tensor out = Resized(ctx, list, length, item.shape());
  WriteRow(out, i, item);
  ctx.SetOutput(0, std::move(out));
}
KILN_REFERENCE_KERNEL("TensorListSetItem", SetItemKernel);

// TensorListPushBack(list, item): the list with the item appended.
void PushBackKernel(KernelContext& ctx) {
  const Tensor& list = ctx.input(0);
  const Tensor& item = ctx.input(1);
  RequireList(ctx, list);
  Tensor out = Resized(ctx, list, list.dim(0) + 1, item.shape());
  WriteRow(out, list.dim(0), item);
  ctx.SetOutput(0, std::move(out));
}
KILN_REFERENCE_KERNEL("TensorListPushBack", PushBackKernel);

// TensorListStack(list, element_shape) {num_elements}: the list's tensor, after TensorFlow's
// checks; a list never written reads as zeros of a fully defined element_shape.
void StackKernel(KernelContext& ctx) {
  const Tensor& list = ctx.input(0);
  RequireList(ctx, list);
  const auto declared = Declared(ctx, ctx.input(1));
  const int64_t num_elements = ctx.attrs().GetOr<int64_t>("num_elements", -1);
  if (num_elements >= 0 && num_elements != list.dim(0))
    ctx.Fail(fmt::format("the list has {} elements, num_elements says {}", list.dim(0), num_elements));
  const Shape element = ElementShape(list);
  if (Uninitialised(list) && FullyDefined(declared) && Shape(declared->begin(), declared->end()) != element) {
    Shape shape{list.dim(0)};
    shape.insert(shape.end(), declared->begin(), declared->end());
    ctx.AllocateOutput(0, list.dtype(), std::move(shape));
    return;
  }
  // (A list never written with a partly known element_shape reads as its empty tensor: TensorFlow
  // refuses it, but a list of empty elements looks the same here.)
  if (!Uninitialised(list) && !Compatible(declared, element))
    ctx.Fail(fmt::format("the list's elements have shape {}, incompatible with element_shape {}", ShapeText(element),
                         ShapeText(declared ? Shape(declared->begin(), declared->end()) : Shape{})));
  ctx.SetOutput(0, list);
}
KILN_REFERENCE_KERNEL("TensorListStack", StackKernel);

void LengthKernel(KernelContext& ctx) {
  RequireList(ctx, ctx.input(0));
  ctx.SetOutput(0, Tensor::Scalar<int32_t>(DType::kInt32, static_cast<int32_t>(ctx.input(0).dim(0))));
}
KILN_REFERENCE_KERNEL("TensorListLength", LengthKernel);

}  // namespace

}  // namespace kiln::reference
