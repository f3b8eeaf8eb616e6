// Reference kernels of the TensorList ops. A list is a dense tensor [num_elements,
// *element_shape]; a list whose element shape TensorListReserve could not know holds no elements
// (its unknown dims are 0) until TensorListSetItem / PushBack gives it the item's shape. Lists
// whose elements differ in shape cannot be held this way and are refused. docs/ops/tensor_list.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
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

// The kernels that write a list (SetItem, PushBack, ScatterIntoExistingList, Resize, PopBack)
// may take over their list input: when the executor no longer needs it and no other tensor shares
// its buffer they write it in place, so a loop that sets one element per step copies one element
// per step, not the whole list.
const InputReuse kReusesList{{0}};

void FailOnOtherElementShape(const KernelContext& ctx, const Shape& held, const Shape& element) {
  ctx.Fail(
      fmt::format("the list holds elements of shape {} and the item has shape {}; Kiln holds a list as one "
                  "dense tensor, so all its elements must have one shape",
                  ShapeText(held), ShapeText(element)));
}

// A new list of `length` elements of shape `element` holding the rows `source` has (when its
// element shape is the same); rows past them are zeros. A list that grows gets room for twice its
// length, so that a list grown one element at a time is copied O(log n) times.
Tensor Rebuilt(const Tensor& source, int64_t length, const Shape& element) {
  Shape shape{length};
  shape.insert(shape.end(), element.begin(), element.end());
  const int64_t row_elements = NumElements(element);  // checked
  uint64_t capacity = 0;
  if (length > source.dim(0) &&
      (__builtin_mul_overflow(static_cast<uint64_t>(row_elements), DTypeSize(source.dtype()), &capacity) ||
       __builtin_mul_overflow(capacity, 2 * static_cast<uint64_t>(length), &capacity)))
    capacity = 0;  // (no spare room; the shape itself is checked by the tensor)
  Tensor out = Tensor::WithCapacity(source.dtype(), std::move(shape), static_cast<size_t>(capacity));
  if (ElementShape(source) == element) {
    const size_t bytes = std::min(source.byte_size(), out.byte_size());
    if (bytes > 0) std::memcpy(out.raw_data(), source.raw_data(), bytes);
    CountCopiedBytes(bytes);
  }
  return out;
}

// List input 0 as a list of `length` elements of shape `element` for the kernel to write: the
// input itself when the kernel can take it (shrunk in place, or grown into its buffer's spare
// room), else a copy (Rebuilt). Rows it had keep their values when the element shape is
// unchanged; new rows are zeros. input(0) must not be read afterwards.
Tensor WritableList(KernelContext& ctx, int64_t length, const Shape& element) {
  const Shape held = ElementShape(ctx.input(0));
  if (held != element && ctx.input(0).num_elements() > 0) FailOnOtherElementShape(ctx, held, element);
  if (held != element) return Rebuilt(ctx.input(0), length, element);  // (no elements to copy)
  if (!ctx.CanTakeInput(0)) {
    CountCopiedInput();
    return Rebuilt(ctx.input(0), length, element);
  }
  Tensor list = ctx.TakeInput(0);
  const int64_t had = list.dim(0);
  Shape shape{length};
  shape.insert(shape.end(), element.begin(), element.end());
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(NumElements(shape)), DTypeSize(list.dtype()), &bytes) ||
      bytes > list.buffer_room())
    return Rebuilt(list, length, element);
  Tensor out = list.InSameBuffer(std::move(shape));
  // Spare room may hold rows an earlier shrink left behind: rows new to the list read as zeros.
  if (length > had) {
    const size_t row = out.byte_size() / static_cast<size_t>(length);
    std::memset(static_cast<char*>(out.raw_data()) + static_cast<size_t>(had) * row, 0,
                static_cast<size_t>(length - had) * row);
  }
  return out;
}

void WriteRow(Tensor& list, int64_t i, const Tensor& item) {
  const size_t row = item.byte_size();
  if (row > 0) std::memcpy(static_cast<char*>(list.raw_data()) + static_cast<size_t>(i) * row, item.raw_data(), row);
  CountCopiedBytes(row);
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
  Tensor out = WritableList(ctx, length, item.shape());
  WriteRow(out, i, item);
  ctx.SetOutput(0, std::move(out));
}
KILN_REFERENCE_KERNEL_REUSING("TensorListSetItem", kReusesList, SetItemKernel);

// TensorListPushBack(list, item): the list with the item appended (in the list's spare room when
// it is written in place: appends are amortised O(1) elements copied).
void PushBackKernel(KernelContext& ctx) {
  const Tensor& item = ctx.input(1);
  RequireList(ctx, ctx.input(0));
  const int64_t n = ctx.input(0).dim(0);
  Tensor out = WritableList(ctx, n + 1, item.shape());
  WriteRow(out, n, item);
  ctx.SetOutput(0, std::move(out));
}
KILN_REFERENCE_KERNEL_REUSING("TensorListPushBack", kReusesList, PushBackKernel);

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

// The rows of a tensor that becomes a list's elements: rank >= 1, and fitting a declared
// element shape (TensorFlow's check).
void RequireRows(const KernelContext& ctx, const Tensor& tensor, const std::optional<std::vector<int64_t>>& declared) {
  if (tensor.rank() == 0)
    ctx.Fail(fmt::format("expected a tensor of rank >= 1, got shape {}", ShapeText(tensor.shape())));
  if (tensor.dtype() == DType::kString || DTypeSize(tensor.dtype()) == 0)
    ctx.Fail(fmt::format("lists of {} elements are not supported", DTypeName(tensor.dtype())));
  if (!Compatible(declared, ElementShape(tensor)))
    ctx.Fail(fmt::format("element_shape {} does not fit the tensor's rows of shape {}",
                         ShapeText(Shape(declared->begin(), declared->end())), ShapeText(ElementShape(tensor))));
}

// Writes row k of `tensor` to element indices[k] of `list`, whose elements have the rows' shape
// (later rows win on repeated indices).
void ScatterRows(const KernelContext& ctx, Tensor& list, const Tensor& tensor, const Tensor& indices) {
  const size_t bytes = static_cast<size_t>(NumElements(ElementShape(tensor))) * DTypeSize(list.dtype());
  for (int64_t k = 0; k < indices.num_elements(); ++k) {
    const int64_t i = indices.IntAt(k);
    if (i < 0 || i >= list.dim(0))
      ctx.Fail(fmt::format("index {} is out of range for a list of {} elements", i, list.dim(0)));
    if (bytes > 0)
      std::memcpy(static_cast<char*>(list.raw_data()) + static_cast<size_t>(i) * bytes,
                  static_cast<const char*>(tensor.raw_data()) + static_cast<size_t>(k) * bytes, bytes);
    CountCopiedBytes(bytes);
  }
}

void RequireIndicesPerRow(const KernelContext& ctx, const Tensor& tensor, const Tensor& indices) {
  if (indices.num_elements() != tensor.dim(0))
    ctx.Fail(
        fmt::format("{} indices for a tensor of {} rows (one index per row)", indices.num_elements(), tensor.dim(0)));
  for (int64_t k = 0; k < indices.num_elements(); ++k)
    if (indices.IntAt(k) < 0) ctx.Fail(fmt::format("indices must not be negative, got {}", indices.IntAt(k)));
}

int64_t HighestIndex(const Tensor& indices) {
  int64_t highest = -1;
  for (int64_t k = 0; k < indices.num_elements(); ++k) highest = std::max(highest, indices.IntAt(k));
  return highest;
}

// TensorListSplit(tensor, element_shape, lengths): element i is the next lengths[i] rows of the
// tensor; the lengths must add up to its rows. Held densely, so the lengths must be equal.
void SplitKernel(KernelContext& ctx) {
  const Tensor& tensor = ctx.input(0);
  const auto declared = Declared(ctx, ctx.input(1));
  const Tensor& lengths = ctx.input(2);
  if (tensor.rank() == 0)
    ctx.Fail(fmt::format("expected a tensor of rank >= 1, got shape {}", ShapeText(tensor.shape())));
  if (lengths.rank() != 1) ctx.Fail(fmt::format("lengths must be a vector, got shape {}", ShapeText(lengths.shape())));
  // TensorFlow checks the element shape's dims after the first only (the first is a run's length).
  if (declared) {
    bool fits = declared->size() == static_cast<size_t>(tensor.rank());
    for (size_t d = 1; fits && d < declared->size(); ++d)
      fits = (*declared)[d] == -1 || (*declared)[d] == tensor.dim(static_cast<int>(d));
    if (!fits)
      ctx.Fail(fmt::format("element_shape {} does not fit the tensor of shape {}",
                           ShapeText(Shape(declared->begin(), declared->end())), ShapeText(tensor.shape())));
  }
  const int64_t n = lengths.num_elements();
  int64_t used = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t l = lengths.IntAt(i);
    if (l < 0) ctx.Fail(fmt::format("lengths[{}] is {}, expected >= 0", i, l));
    if (l > tensor.dim(0) - used)
      ctx.Fail(fmt::format("lengths[{}] = {} takes rows past the tensor's {}", i, l, tensor.dim(0)));
    used += l;
    if (l != lengths.IntAt(0))
      ctx.Fail(
          fmt::format("lengths[{}] is {} but lengths[0] is {}; Kiln holds a list as one dense tensor, so its "
                      "elements must have one shape",
                      i, l, lengths.IntAt(0)));
  }
  if (used != tensor.dim(0))
    ctx.Fail(fmt::format("lengths add up to {} but the tensor has {} rows", used, tensor.dim(0)));
  Shape shape{n, n > 0 ? lengths.IntAt(0) : 0};
  shape.insert(shape.end(), tensor.shape().begin() + 1, tensor.shape().end());
  ctx.SetOutput(0, tensor.Reshaped(std::move(shape)));
}
KILN_REFERENCE_KERNEL("TensorListSplit", SplitKernel);

// TensorListScatter(tensor, indices, element_shape, num_elements): a new list of num_elements
// elements (-1: the highest index + 1) whose element indices[k] is row k of the tensor; elements
// no index names are unset (zeros).
void ScatterKernel(KernelContext& ctx) {
  const Tensor& tensor = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const auto declared = Declared(ctx, ctx.input(2));
  if (ctx.input(3).num_elements() != 1) ctx.Fail("num_elements must be a scalar");
  const int64_t num_elements = ctx.input(3).IntAt(0);
  if (num_elements < -1) ctx.Fail(fmt::format("num_elements is {}, expected >= -1", num_elements));
  RequireRows(ctx, tensor, declared);
  RequireIndicesPerRow(ctx, tensor, indices);
  const int64_t length = num_elements == -1 ? HighestIndex(indices) + 1 : num_elements;
  Shape shape{length};
  const Shape element = ElementShape(tensor);
  shape.insert(shape.end(), element.begin(), element.end());
  Tensor& out = ctx.AllocateOutput(0, tensor.dtype(), std::move(shape));
  ScatterRows(ctx, out, tensor, indices);
}
KILN_REFERENCE_KERNEL("TensorListScatter", ScatterKernel);

// TensorListScatterIntoExistingList(list, tensor, indices): the list with element indices[k] set
// to row k of the tensor, grown when an index is past its end.
void ScatterIntoKernel(KernelContext& ctx) {
  const Tensor& list = ctx.input(0);
  const Tensor& tensor = ctx.input(1);
  const Tensor& indices = ctx.input(2);
  RequireList(ctx, list);
  if (indices.rank() != 1) ctx.Fail(fmt::format("indices must be a vector, got shape {}", ShapeText(indices.shape())));
  RequireRows(ctx, tensor, std::nullopt);
  RequireIndicesPerRow(ctx, tensor, indices);
  if (indices.num_elements() == 0) return ctx.SetOutput(0, list);
  Tensor out = WritableList(ctx, std::max(list.dim(0), HighestIndex(indices) + 1), ElementShape(tensor));
  ScatterRows(ctx, out, tensor, indices);
  ctx.SetOutput(0, std::move(out));
}
KILN_REFERENCE_KERNEL_REUSING("TensorListScatterIntoExistingList", kReusesList, ScatterIntoKernel);

// TensorListResize(list, size): the first `size` elements, then unset ones (zeros).
void ResizeKernel(KernelContext& ctx) {
  const Tensor& list = ctx.input(0);
  RequireList(ctx, list);
  if (ctx.input(1).num_elements() != 1) ctx.Fail("size must be a scalar");
  const int64_t size = ctx.input(1).IntAt(0);
  if (size < 0) ctx.Fail(fmt::format("size is {}, expected >= 0", size));
  ctx.SetOutput(0, WritableList(ctx, size, ElementShape(list)));
}
KILN_REFERENCE_KERNEL_REUSING("TensorListResize", kReusesList, ResizeKernel);

// TensorListPopBack(list, element_shape): the list without its last element, and that element;
// an element never written reads as zeros of element_shape, which must then be fully defined
// (TensorFlow checks element_shape only then).
void PopBackKernel(KernelContext& ctx) {
  const Tensor& list = ctx.input(0);
  RequireList(ctx, list);
  const auto declared = Declared(ctx, ctx.input(1));
  const int64_t n = list.dim(0);
  if (n == 0) ctx.Fail("trying to pop from an empty list");
  const Shape element = ElementShape(list);
  // The element first: the list may then be shrunk in place.
  if (Uninitialised(list)) {
    if (!FullyDefined(declared))
      ctx.Fail(
          fmt::format("the last element was never written and element_shape {} is not fully defined, so its "
                      "shape is unknown",
                      declared ? ShapeText(Shape(declared->begin(), declared->end())) : std::string("(unknown rank)")));
    ctx.AllocateOutput(1, list.dtype(), Shape(declared->begin(), declared->end()));
  } else {
    Tensor& item = ctx.AllocateOutput(1, list.dtype(), element);
    const size_t row = item.byte_size();
    if (row > 0)
      std::memcpy(item.raw_data(), static_cast<const char*>(list.raw_data()) + static_cast<size_t>(n - 1) * row, row);
  }
  ctx.SetOutput(0, WritableList(ctx, n - 1, element));
}
KILN_REFERENCE_KERNEL_REUSING("TensorListPopBack", kReusesList, PopBackKernel);

}  // namespace

}  // namespace kiln::reference
