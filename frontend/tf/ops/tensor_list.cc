// Importers of TF's TensorList ops (DT_VARIANT lists: tf.TensorArray, tf.while_loop's
// accumulators, Keras recurrent layers). A list becomes the IR value of a dense tensor
// [num_elements, *element_shape] of the element dtype, so a list carried through a While loop is
// an ordinary loop variable. Lists whose elements differ in shape are refused at run time by the
// IR ops (docs/ops/tensor_list.md).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "frontend/tf/importer.h"

namespace kiln::tf {
namespace {

using frontend::Attrs;
using ir::ValueId;

void CheckInputs(ImportContext& ctx, int n) {
  if (ctx.num_inputs() != n) ctx.Invalid(fmt::format("expected {} inputs, got {}", n, ctx.num_inputs()));
}

// element_dtype must be a fixed-size type (the list is one dense tensor), and must be the dtype
// of the list or item input `i` where that is known.
DType CheckElementDType(ImportContext& ctx, int i = -1) {
  const DType t = ctx.attr_type("element_dtype");
  if (t == DType::kString || t == DType::kVariant || t == DType::kResource || DTypeSize(t) == 0)
    ctx.Unsupported(
        fmt::format("lists of {} elements are not supported (Kiln holds a list as one dense tensor)", DTypeName(t)));
  if (i >= 0 && i < ctx.num_inputs()) {
    const DType in = ctx.input_dtype(i);
    if (in != DType::kInvalid && in != t)
      ctx.Invalid(fmt::format("element_dtype is {} but input {} holds {} elements", DTypeName(t), i, DTypeName(in)));
  }
  return t;
}

void CheckShapeType(ImportContext& ctx) {
  if (!ctx.has_attr("shape_type")) return;
  const DType t = ctx.attr_type("shape_type");
  if (t != DType::kInt32 && t != DType::kInt64)
    ctx.Invalid(fmt::format("shape_type must be int32 or int64, got {}", DTypeName(t)));
}

// TensorListReserve(element_shape, num_elements) / EmptyTensorList(element_shape,
// max_num_elements): a list of num_elements unset elements (none for EmptyTensorList).
template <bool kEmpty>
void ImportReserve(ImportContext& ctx) {
  CheckInputs(ctx, 2);
  CheckShapeType(ctx);
  const DType dtype = CheckElementDType(ctx);
  if (ctx.validate_only()) return;
  const ValueId n = kEmpty ? ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, 0), "num_elements") : ctx.input(1);
  ctx.SetOutput(0, ctx.Emit1("TensorListReserve", {ctx.input(0), n}, Attrs({{"element_dtype", dtype}})));
}

// TensorListFromTensor(tensor, element_shape): the tensor is the list (its rows the elements).
void ImportFromTensor(ImportContext& ctx) {
  CheckInputs(ctx, 2);
  CheckShapeType(ctx);
  CheckElementDType(ctx, 0);
  const ir::SymShape shape = ctx.input_shape(0);
  if (shape.rank_known && shape.rank() == 0) ctx.Invalid("expected a tensor of rank >= 1, got a scalar");
  // A constant element_shape must fit the rows (TensorFlow checks the same at run time).
  if (const Tensor* es = ctx.constant_input(1); es && es->rank() == 1 && shape.rank_known) {
    const std::vector<int64_t> want = es->ToInt64Vector();
    bool ok = static_cast<int>(want.size()) == shape.rank() - 1;
    for (size_t d = 0; ok && d < want.size(); ++d)
      ok = want[d] == -1 || !ir::IsStatic(shape.dims[d + 1]) || shape.dims[d + 1] == want[d];
    if (!ok)
      ctx.Invalid(fmt::format("element_shape [{}] does not fit the rows of a tensor of rank {}", fmt::join(want, ","),
                              shape.rank()));
  }
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.raw_input(0));
}

void ImportGetItem(ImportContext& ctx) {
  CheckInputs(ctx, 3);
  CheckElementDType(ctx, 0);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("TensorListGetItem", ctx.input_values()));
}

void ImportSetItem(ImportContext& ctx) {
  CheckInputs(ctx, 3);
  CheckElementDType(ctx, 2);
  const bool resize = ctx.attr_bool("resize_if_index_out_of_bounds");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0,
                ctx.Emit1("TensorListSetItem", ctx.input_values(), Attrs({{"resize_if_index_out_of_bounds", resize}})));
}

void ImportPushBack(ImportContext& ctx) {
  CheckInputs(ctx, 2);
  CheckElementDType(ctx, 1);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("TensorListPushBack", ctx.input_values()));
}

void ImportStack(ImportContext& ctx) {
  CheckInputs(ctx, 2);
  CheckElementDType(ctx, 0);
  const int64_t num_elements = ctx.attr_int("num_elements");
  if (num_elements < -1) ctx.Invalid(fmt::format("num_elements is {}, expected -1 or >= 0", num_elements));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("TensorListStack", ctx.input_values(), Attrs({{"num_elements", num_elements}})));
}

void ImportLength(ImportContext& ctx) {
  CheckInputs(ctx, 1);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("TensorListLength", {ctx.input(0)}));
}

// TensorListGather(list, indices, element_shape): rows `indices` of the list's tensor.
void ImportGather(ImportContext& ctx) {
  CheckInputs(ctx, 3);
  CheckElementDType(ctx, 0);
  if (ctx.validate_only()) return;
  const ValueId axis = ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, 0), "axis");
  ctx.SetOutput(0, ctx.Emit1("Gather", {ctx.input(0), ctx.input(1), axis}, Attrs({{"batch_dims", int64_t{0}}})));
}

ValueId IntAxis(ImportContext& ctx) { return ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, 0), "axis"); }

ValueId I32Vector(ImportContext& ctx, std::vector<int32_t> v, const std::string& suffix) {
  const int64_t n = static_cast<int64_t>(v.size());
  return ctx.Constant(Tensor::FromVector<int32_t>(DType::kInt32, {n}, v), suffix);
}

// Dims [begin, end) of Shape(list) (end 0: to the last), as a 1-D tensor of `dtype`.
ValueId ListDims(ImportContext& ctx, ValueId shape, int32_t begin, int32_t end, const std::string& suffix) {
  return ctx.Emit1("StridedSlice",
                   {shape, I32Vector(ctx, {begin}, suffix + "_begin"), I32Vector(ctx, {end}, suffix + "_end"),
                    I32Vector(ctx, {1}, suffix + "_stride")},
                   Attrs({{"begin_mask", int64_t{0}},
                          {"end_mask", int64_t{end == 0 ? 1 : 0}},
                          {"ellipsis_mask", int64_t{0}},
                          {"new_axis_mask", int64_t{0}},
                          {"shrink_axis_mask", int64_t{0}}}),
                   suffix);
}

// TensorListElementShape(list): the list's dims after the first. (A list whose element shape
// TensorListReserve could not know yet reports 0 for its unknown dims where TensorFlow says -1.)
void ImportElementShape(ImportContext& ctx) {
  CheckInputs(ctx, 1);
  CheckShapeType(ctx);
  const DType t = ctx.attr_type("shape_type");
  if (ctx.validate_only()) return;
  const ValueId shape = ctx.Emit1("Shape", {ctx.input(0)}, Attrs({{"out_type", t}}), "shape");
  ctx.SetOutput(0, ListDims(ctx, shape, 1, 0, "element_shape"));
}

// TensorListConcatV2(list, element_shape, leading_dims) (tf.TensorArray.concat): the elements
// joined along their first dim, and each element's length. Elements share one shape here, so
// this is a Reshape of [n, d0, *rest] to [n * d0, *rest]; lengths are n copies of d0.
void ImportConcat(ImportContext& ctx) {
  CheckInputs(ctx, 3);
  CheckShapeType(ctx);
  CheckElementDType(ctx, 0);
  const ir::SymShape list = ctx.input_shape(0);
  if (list.rank_known && list.rank() < 2)
    ctx.Invalid(fmt::format("concatenation needs elements of rank >= 1, got a list of rank {}", list.rank()));
  if (ctx.validate_only()) return;
  const ValueId shape = ctx.Emit1("Shape", {ctx.input(0)}, Attrs({{"out_type", DType::kInt64}}), "shape");
  const ValueId minus_one = ctx.Constant(Tensor::FromVector<int64_t>(DType::kInt64, {1}, {-1}), "minus_one");
  const ValueId target =
      ctx.Emit1("Concat", {minus_one, ListDims(ctx, shape, 2, 0, "rest"), IntAxis(ctx)}, {}, "target");
  ctx.SetOutput(0, ctx.Emit1("Reshape", {ctx.input(0), target}, {}, "tensor"));
  const ValueId length = ctx.Emit1(
      "Reshape",
      {ListDims(ctx, shape, 1, 2, "d0"), ctx.Constant(Tensor::FromVector<int64_t>(DType::kInt64, {0}, {}), "scalar")},
      {}, "d0_scalar");
  ctx.SetOutput(1, ctx.Emit1("Fill", {ListDims(ctx, shape, 0, 1, "n"), length}, {}, "lengths"));
}

// TensorListSplit(tensor, element_shape, lengths): element i is the next lengths[i] rows.
void ImportSplit(ImportContext& ctx) {
  CheckInputs(ctx, 3);
  CheckShapeType(ctx);
  CheckElementDType(ctx, 0);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("TensorListSplit", ctx.input_values()));
}

// TensorListScatterV2(tensor, indices, element_shape, num_elements) and TensorListScatter
// (without num_elements: the highest index + 1).
template <bool kV2>
void ImportScatter(ImportContext& ctx) {
  CheckInputs(ctx, kV2 ? 4 : 3);
  CheckShapeType(ctx);
  CheckElementDType(ctx, 0);
  if (ctx.validate_only()) return;
  std::vector<ValueId> inputs = ctx.input_values();
  if (!kV2) inputs.push_back(ctx.Constant(Tensor::Scalar<int32_t>(DType::kInt32, -1), "num_elements"));
  ctx.SetOutput(0, ctx.Emit1("TensorListScatter", std::move(inputs)));
}

// TensorListScatterIntoExistingList(list, tensor, indices) (tf.TensorArray.scatter).
void ImportScatterInto(ImportContext& ctx) {
  CheckInputs(ctx, 3);
  CheckElementDType(ctx, 1);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("TensorListScatterIntoExistingList", ctx.input_values()));
}

void ImportResize(ImportContext& ctx) {
  CheckInputs(ctx, 2);
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("TensorListResize", ctx.input_values()));
}

// TensorListPopBack(list, element_shape) -> (list, tensor).
void ImportPopBack(ImportContext& ctx) {
  CheckInputs(ctx, 2);
  CheckElementDType(ctx, 0);
  if (ctx.validate_only()) return;
  ctx.SetOutputs(ctx.Emit("TensorListPopBack", ctx.input_values(), {}, 2));
}

}  // namespace

void RegisterTensorListImporters(ImporterTable& t) {
  t.Add({"TensorListReserve", ImportReserve<false>, {}, {}});
  t.Add({"EmptyTensorList", ImportReserve<true>, {}, {}});
  t.Add({"TensorListFromTensor", ImportFromTensor, {}, {}});
  t.Add({"TensorListGetItem", ImportGetItem, {}, {}});
  t.Add({"TensorListSetItem", ImportSetItem, {}, {{"resize_if_index_out_of_bounds", false}}});
  t.Add({"TensorListPushBack", ImportPushBack, {}, {}});
  t.Add({"TensorListStack", ImportStack, {}, {{"num_elements", int64_t{-1}}}});
  t.Add({"TensorListLength", ImportLength, {}, {}});
  t.Add({"TensorListGather", ImportGather, {}, {}});
  t.Add({"TensorListElementShape", ImportElementShape, {}, {}});
  t.Add({"TensorListConcatV2", ImportConcat, {{"tensor", "", ""}, {"lengths", "", ""}}, {}});
  t.Add({"TensorListSplit", ImportSplit, {}, {}});
  t.Add({"TensorListScatterV2", ImportScatter<true>, {}, {}});
  t.Add({"TensorListScatter", ImportScatter<false>, {}, {}});
  t.Add({"TensorListScatterIntoExistingList", ImportScatterInto, {}, {}});
  t.Add({"TensorListResize", ImportResize, {}, {}});
  t.Add({"TensorListPopBack", ImportPopBack, {{"output_handle", "", ""}, {"tensor", "", ""}}, {}});
}

}  // namespace kiln::tf
