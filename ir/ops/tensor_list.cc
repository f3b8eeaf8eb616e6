// Shape functions of the TensorList ops (TensorFlow's DT_VARIANT lists, which tf.while_loop,
// tf.TensorArray and Keras' recurrent layers use). Kiln holds a list whose elements all have one
// shape as a dense tensor [num_elements, *element_shape] of the element dtype; a list whose
// element shape is not known yet (TensorListReserve with -1 dims) is a tensor with no elements
// until its first TensorListSetItem fixes the shape. Semantics: docs/ops/tensor_list.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <limits>

#include "ir/ops/array_common.h"

namespace kiln::ir {
namespace {

using array::ConstInts;
using array::ConstScalar;
using array::RequireIndexInput;

// The element shape a list op's element_shape input declares: nullopt when its rank is unknown
// (TensorFlow's scalar -1, or a run-time value); -1 dims are unknown.
std::optional<std::vector<Dim>> DeclaredElementShape(const InferContext& ctx, int i) {
  const SymShape& s = ctx.input_shape(i);
  if (!s.rank_known || s.rank() == 0) return std::nullopt;
  auto v = ConstInts(ctx, i);
  if (!v) {
    if (s.rank() == 1 && IsStatic(s.dims[0])) return std::vector<Dim>(static_cast<size_t>(s.dims[0]), kUnknownDim);
    return std::nullopt;
  }
  std::vector<Dim> dims;
  for (int64_t d : *v) {
    if (d < -1) ctx.Fail(fmt::format("element_shape has dim {}, expected >= -1", d));
    dims.push_back(d == -1 ? kUnknownDim : d);
  }
  return dims;
}

// The element dims of a list value: its dims after the first (nullopt when its rank is unknown).
std::optional<std::vector<Dim>> ElementDims(const InferContext& ctx, int i) {
  const SymShape& s = ctx.input_shape(i);
  if (!s.rank_known) return std::nullopt;
  if (s.rank() == 0) ctx.Fail("expected a list (a tensor of rank >= 1), got a scalar");
  return std::vector<Dim>(s.dims.begin() + 1, s.dims.end());
}

// Prefers the first dim when it is known.
Dim Refine(Dim known, Dim other) { return known != kUnknownDim ? known : other; }

SymShape ListShape(Dim length, const std::optional<std::vector<Dim>>& element) {
  if (!element) return SymShape::Unknown();
  std::vector<Dim> dims{length};
  dims.insert(dims.end(), element->begin(), element->end());
  return SymShape::Of(std::move(dims));
}

// ---- TensorListReserve(element_shape, num_elements) {element_dtype} ----
void InferReserve(InferContext& ctx) {
  RequireIndexInput(ctx, 0, "element_shape");
  RequireIndexInput(ctx, 1, "num_elements", 0);
  const Dim n = ConstScalar(ctx, 1).value_or(kUnknownDim);
  if (n < -1) ctx.Fail(fmt::format("num_elements is {}, expected >= 0", n));
  ctx.SetOutput(0, ctx.attrs().Get<DType>("element_dtype"), ListShape(n, DeclaredElementShape(ctx, 0)));
}

// ---- TensorListGetItem(list, index, element_shape) ----
void InferGetItem(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "index", 0);
  RequireIndexInput(ctx, 2, "element_shape");
  auto element = ElementDims(ctx, 0);
  auto declared = DeclaredElementShape(ctx, 2);
  if (element && declared && element->size() == declared->size())
    for (size_t d = 0; d < element->size(); ++d) (*element)[d] = Refine((*declared)[d], (*element)[d]);
  if (!element) element = declared;
  ctx.SetOutput(0, ctx.input_dtype(0), element ? SymShape::Of(*element) : SymShape::Unknown());
}

// ---- TensorListSetItem(list, index, item) {resize_if_index_out_of_bounds} ----
void InferSetItem(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "index", 0);
  if (ctx.input_dtype(0) != ctx.input_dtype(2))
    ctx.Fail(fmt::format("the list holds {} elements but the item is {}", DTypeName(ctx.input_dtype(0)),
                         DTypeName(ctx.input_dtype(2))));
  const SymShape& list = ctx.input_shape(0);
  if (list.rank_known && list.rank() == 0) ctx.Fail("expected a list (a tensor of rank >= 1), got a scalar");
  const bool resize = ctx.attrs().GetOr<bool>("resize_if_index_out_of_bounds", false);
  const Dim length = list.rank_known && !resize ? list.dims[0] : kUnknownDim;
  const SymShape& item = ctx.input_shape(2);
  if (!item.rank_known) return ctx.SetOutput(0, ctx.input_dtype(0), SymShape::Unknown());
  // After the write every element has the item's shape (the list's may have been unknown).
  std::vector<Dim> element = item.dims;
  if (list.rank_known && list.rank() == item.rank() + 1)
    for (size_t d = 0; d < element.size(); ++d)
      if (list.dims[d + 1] > 0) element[d] = Refine(element[d], list.dims[d + 1]);
  ctx.SetOutput(0, ctx.input_dtype(0), ListShape(length, element));
}

// ---- TensorListStack(list, element_shape) {num_elements} ----
void InferStack(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "element_shape");
  const SymShape& list = ctx.input_shape(0);
  const int64_t num_elements = ctx.attrs().GetOr<int64_t>("num_elements", -1);
  Dim length = list.rank_known ? list.dims[0] : kUnknownDim;
  if (num_elements >= 0) {
    if (IsStatic(length) && length != num_elements)
      ctx.Fail(fmt::format("the list has {} elements, num_elements says {}", length, num_elements));
    length = num_elements;
  }
  auto element = ElementDims(ctx, 0);
  auto declared = DeclaredElementShape(ctx, 1);
  if (element && declared) {
    if (element->size() != declared->size())
      ctx.Fail(
          fmt::format("the list's elements have rank {}, element_shape rank {}", element->size(), declared->size()));
    for (size_t d = 0; d < element->size(); ++d) (*element)[d] = Refine((*declared)[d], (*element)[d]);
  }
  if (!element) element = declared;
  ctx.SetOutput(0, ctx.input_dtype(0), ListShape(length, element));
}

// ---- TensorListLength(list) -> int32 scalar ----
void InferLength(InferContext& ctx) {
  const SymShape& list = ctx.input_shape(0);
  if (list.rank_known && list.rank() == 0) ctx.Fail("expected a list (a tensor of rank >= 1), got a scalar");
  if (list.rank_known && IsStatic(list.dims[0]))
    return ctx.SetOutputConstant(0, Tensor::Scalar<int32_t>(DType::kInt32, static_cast<int32_t>(list.dims[0])));
  ctx.SetOutput(0, DType::kInt32, SymShape::Scalar());
}

// ---- TensorListPushBack(list, item) ----
void InferPushBack(InferContext& ctx) {
  if (ctx.input_dtype(0) != ctx.input_dtype(1))
    ctx.Fail(fmt::format("the list holds {} elements but the item is {}", DTypeName(ctx.input_dtype(0)),
                         DTypeName(ctx.input_dtype(1))));
  const SymShape& list = ctx.input_shape(0);
  const SymShape& item = ctx.input_shape(1);
  const Dim length = list.rank_known && IsStatic(list.dims[0]) ? list.dims[0] + 1 : kUnknownDim;
  ctx.SetOutput(0, ctx.input_dtype(0), item.rank_known ? ListShape(length, item.dims) : SymShape::Unknown());
}

// The element dims of a list `tensor` input's rows (its dims after the first), refined by a
// declared element shape (input `es`) that must fit them.
std::optional<std::vector<Dim>> RowDims(const InferContext& ctx, int tensor, int es) {
  auto rows = ElementDims(ctx, tensor);
  const auto declared = DeclaredElementShape(ctx, es);
  if (!rows) return declared;
  if (declared) {
    if (declared->size() != rows->size())
      ctx.Fail(
          fmt::format("element_shape has rank {} but the tensor's rows have rank {}", declared->size(), rows->size()));
    for (size_t d = 0; d < rows->size(); ++d) {
      if (IsStatic((*declared)[d]) && IsStatic((*rows)[d]) && (*declared)[d] != (*rows)[d])
        ctx.Fail(fmt::format("element_shape does not fit the tensor's rows (dim {}: {} vs {})", d, (*declared)[d],
                             (*rows)[d]));
      (*rows)[d] = Refine((*rows)[d], (*declared)[d]);
    }
  }
  return rows;
}

// ---- TensorListSplit(tensor, element_shape, lengths) ----
// Elements are runs of `lengths[i]` rows; held densely, so every length must be the same.
void InferSplit(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "element_shape");
  RequireIndexInput(ctx, 2, "lengths");
  const SymShape& tensor = ctx.input_shape(0);
  if (tensor.rank_known && tensor.rank() == 0) ctx.Fail("expected a tensor of rank >= 1, got a scalar");
  Dim n = kUnknownDim, run = kUnknownDim;
  if (auto lengths = ConstInts(ctx, 2)) {
    n = static_cast<Dim>(lengths->size());
    for (int64_t l : *lengths)
      if (l < 0) ctx.Fail(fmt::format("lengths holds {}, expected lengths >= 0", l));
    for (int64_t l : *lengths)
      if (l != lengths->front())
        ctx.Fail(
            fmt::format("lengths [{}] differ; Kiln holds a list as one dense tensor, so its elements must have "
                        "one shape",
                        fmt::join(*lengths, ",")));
    if (!lengths->empty()) run = lengths->front();
    if (n > 0 && tensor.rank_known && IsStatic(tensor.dims[0]) && n * run != tensor.dims[0])
      ctx.Fail(fmt::format("lengths sum to {} but the tensor has {} rows", n * run, tensor.dims[0]));
  } else if (ctx.input_shape(2).rank_known && ctx.input_shape(2).rank() == 1) {
    n = ctx.input_shape(2).dims[0];
  }
  // The declared element shape's first dim is a run's length, which TensorFlow does not check.
  std::optional<std::vector<Dim>> element;
  if (tensor.rank_known) {
    element = std::vector<Dim>(tensor.dims.begin(), tensor.dims.end());
    (*element)[0] = run;
    if (const auto declared = DeclaredElementShape(ctx, 1)) {
      if (declared->size() != element->size())
        ctx.Fail(
            fmt::format("element_shape has rank {} but the tensor has rank {}", declared->size(), element->size()));
      for (size_t d = 1; d < element->size(); ++d)
        if (IsStatic((*declared)[d]) && IsStatic((*element)[d]) && (*declared)[d] != (*element)[d])
          ctx.Fail(fmt::format("element_shape does not fit the tensor (dim {}: {} vs {})", d, (*declared)[d],
                               (*element)[d]));
    }
  }
  ctx.SetOutput(0, ctx.input_dtype(0), ListShape(n, element));
}

// ---- TensorListScatter(tensor, indices, element_shape, num_elements) ----
void InferScatter(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "indices", std::numeric_limits<int>::max());  // any shape: flattened
  RequireIndexInput(ctx, 2, "element_shape");
  RequireIndexInput(ctx, 3, "num_elements", 0);
  const SymShape& tensor = ctx.input_shape(0);
  if (tensor.rank_known && tensor.rank() == 0) ctx.Fail("expected a tensor of rank >= 1, got a scalar");
  const std::optional<int64_t> n = ConstScalar(ctx, 3);
  if (n && *n < -1) ctx.Fail(fmt::format("num_elements is {}, expected >= -1", *n));
  ctx.SetOutput(0, ctx.input_dtype(0), ListShape(n && *n >= 0 ? *n : kUnknownDim, RowDims(ctx, 0, 2)));
}

// ---- TensorListScatterIntoExistingList(list, tensor, indices) ----
void InferScatterInto(InferContext& ctx) {
  RequireIndexInput(ctx, 2, "indices");
  if (ctx.input_dtype(0) != ctx.input_dtype(1))
    ctx.Fail(fmt::format("the list holds {} elements but the tensor is {}", DTypeName(ctx.input_dtype(0)),
                         DTypeName(ctx.input_dtype(1))));
  const SymShape& list = ctx.input_shape(0);
  if (list.rank_known && list.rank() == 0) ctx.Fail("expected a list (a tensor of rank >= 1), got a scalar");
  const SymShape& tensor = ctx.input_shape(1);
  if (tensor.rank_known && tensor.rank() == 0) ctx.Fail("expected a tensor of rank >= 1, got a scalar");
  // An index past the end grows the list. The elements take the rows' shape, except that
  // scattering no rows leaves the list as it was: only the dims both agree on are known.
  auto rows = ElementDims(ctx, 1);
  const auto element = ElementDims(ctx, 0);
  if (rows && element && rows->size() == element->size()) {
    for (size_t d = 0; d < rows->size(); ++d)
      if ((*rows)[d] != (*element)[d]) (*rows)[d] = kUnknownDim;
  } else {
    rows = std::nullopt;
  }
  ctx.SetOutput(0, ctx.input_dtype(0), ListShape(kUnknownDim, rows));
}

// ---- TensorListResize(list, size) ----
void InferResize(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "size", 0);
  const std::optional<int64_t> size = ConstScalar(ctx, 1);
  if (size && *size < 0) ctx.Fail(fmt::format("size is {}, expected >= 0", *size));
  ctx.SetOutput(0, ctx.input_dtype(0), ListShape(size.value_or(kUnknownDim), ElementDims(ctx, 0)));
}

// ---- TensorListPopBack(list, element_shape) -> (list, item) ----
void InferPopBack(InferContext& ctx) {
  RequireIndexInput(ctx, 1, "element_shape");
  const SymShape& list = ctx.input_shape(0);
  if (list.rank_known && IsStatic(list.dims[0]) && list.dims[0] == 0) ctx.Fail("trying to pop from an empty list");
  const Dim length = list.rank_known && IsStatic(list.dims[0]) ? list.dims[0] - 1 : kUnknownDim;
  auto element = ElementDims(ctx, 0);
  ctx.SetOutput(0, ctx.input_dtype(0), ListShape(length, element));
  // The item: the list's element shape; a list never written gives zeros of element_shape.
  auto declared = DeclaredElementShape(ctx, 1);
  if (element && declared && element->size() == declared->size())
    for (size_t d = 0; d < element->size(); ++d) (*element)[d] = Refine((*declared)[d], (*element)[d]);
  if (!element) element = declared;
  ctx.SetOutput(1, ctx.input_dtype(0), element ? SymShape::Of(*element) : SymShape::Unknown());
}

}  // namespace

void RegisterTensorListOps(OpRegistry& registry) {
  // Reserve is not folded: its unknown dims must stay unknown to shape inference (a folded
  // placeholder would read as a static 0).
  registry.Add({"TensorListReserve", 2, 2, InferReserve, false});
  registry.Add({"TensorListGetItem", 3, 3, InferGetItem, true});
  registry.Add({"TensorListSetItem", 3, 3, InferSetItem, true});
  registry.Add({"TensorListStack", 2, 2, InferStack, true});
  registry.Add({"TensorListLength", 1, 1, InferLength, true});
  registry.Add({"TensorListPushBack", 2, 2, InferPushBack, true});
  registry.Add({"TensorListSplit", 3, 3, InferSplit, true});
  registry.Add({"TensorListScatter", 4, 4, InferScatter, true});
  registry.Add({"TensorListScatterIntoExistingList", 3, 3, InferScatterInto, true});
  registry.Add({"TensorListResize", 2, 2, InferResize, true});
  registry.Add({"TensorListPopBack", 2, 2, InferPopBack, true});
}

}  // namespace kiln::ir
