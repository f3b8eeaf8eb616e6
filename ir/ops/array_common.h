// Shared helpers of the array op family (shape manipulation, slicing, gathers, reductions):
// used by the IR shape functions (ir/ops/array*.cc) and the reference kernels
// (backend/reference/array*.cc), so that both compute shapes with the same code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/op_schema.h"
#include "kiln/tensor.h"

namespace kiln::ir::array {

// Maps axis from [-rank, rank) to [0, rank); nullopt when out of range.
std::optional<int64_t> NormalizeAxis(int64_t axis, int64_t rank);

// "[2,?,B]"-style text of dims (for messages).
std::string DimsToString(const Graph& graph, const std::vector<Dim>& dims);

// ---------------------------------------------------------------------------------------------
// StridedSlice: TensorFlow's ValidateStridedSliceOp, usable both on static shapes (kernels)
// and on symbolic shapes with possibly unknown begin/end/strides (shape inference).

struct StridedSliceMasks {
  int64_t begin_mask = 0, end_mask = 0, ellipsis_mask = 0, new_axis_mask = 0, shrink_axis_mask = 0;
};

// The masks of a StridedSlice node (absent attributes are 0).
StridedSliceMasks StridedSliceMasksOf(const AttrMap& attrs);

struct StridedSliceResult {
  // Per input dimension (dense spec): canonical begin/end/stride. Valid only where known.
  std::vector<int64_t> begin, end, strides;
  std::vector<Dim> processing_shape;  // per input dim: elements taken (kUnknownDim / symbol when unknown)
  std::vector<Dim> final_shape;       // output shape after new axes and shrinks
};

// `spec_len` is the length of begin/end/strides. begin/end/strides may be null when unknown
// (shape inference). Returns an error message, or "" on success.
std::string ComputeStridedSlice(const std::vector<Dim>& input_dims, int64_t spec_len, const std::vector<int64_t>* begin,
                                const std::vector<int64_t>* end, const std::vector<int64_t>* strides,
                                const StridedSliceMasks& masks, StridedSliceResult* out);

// The elements Slice, StridedSlice and Reverse copy out of a static input shape: output
// element (k_0, ..., k_r) of `sizes` is input element (begin_d + k_d * step_d)_d, and the result
// has the shape `out_shape` (the same element count; StridedSlice's shrunk and new axes). One
// definition for the reference kernels and the device kernels. Each returns an error message, or
// "" on success.
struct StridedCopyGeometry {
  std::vector<int64_t> begin, step;
  Shape sizes, out_shape;
};
// Slice(x, begin, size), TensorFlow's rules: begin in [0, dim], size -1 for the rest of the dim.
std::string SliceGeometry(const Shape& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& size,
                          StridedCopyGeometry* out);
std::string StridedSliceGeometry(const Shape& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& end,
                                 const std::vector<int64_t>& strides, const StridedSliceMasks& masks,
                                 StridedCopyGeometry* out);
// Reverse(x, axes): each axis in [-rank, rank), at most once.
std::string ReverseGeometry(const Shape& x, const std::vector<int64_t>& axes, StridedCopyGeometry* out);

// ---------------------------------------------------------------------------------------------
// Reshape: resolves a target shape (with at most one -1) against a static input shape,
// exactly as TensorFlow does (zero-sized dims included). Returns an error message or "".
std::string ResolveReshape(const Shape& input, const std::vector<int64_t>& target, Shape* out);

// Range: the element count of Range(start, limit, delta) on scalar tensors of one dtype,
// computed as TensorFlow does (in the element type). Returns an error message or "".
std::string RangeSize(const Tensor& start, const Tensor& limit, const Tensor& delta, int64_t* size);

// numpy broadcasting of two static shapes; returns an error message or "".
std::string BroadcastStatic(const Shape& a, const Shape& b, Shape* out);

// ---------------------------------------------------------------------------------------------
// Symbolic evaluation of small integer tensors (shape vectors): follows Constant, Shape,
// StridedSlice, Slice, Pack, Concat, Gather, Cast, Identity, ExpandDims, Squeeze, Reshape, ReduceProd
// and Mul/Add/Sub of known values, so that a Reshape target built at run time from
// Shape(x) keeps x's symbolic dims.
struct SymElem {
  bool is_const = false;
  int64_t value = 0;           // when is_const
  Dim dim = kUnknownDim;       // when !is_const: a symbol (< -1) or kUnknownDim
  static SymElem Const(int64_t v) { return {true, v, 0}; }
  static SymElem OfDim(Dim d) { return IsStatic(d) ? Const(d) : SymElem{false, 0, d}; }
  static SymElem Unknown() { return {false, 0, kUnknownDim}; }
  bool operator==(const SymElem& o) const {
    return is_const == o.is_const && (is_const ? value == o.value : (dim == o.dim && dim != kUnknownDim));
  }
};
struct SymVector {
  bool scalar = false;  // a 0-d value (one element)
  std::vector<SymElem> elems;
};
// The symbolic contents of integer value `id` (rank 0 or 1), or nullopt when nothing is known.
std::optional<SymVector> EvalSymbolic(const Graph& graph, ValueId id, int depth = 0);

// Reads a small integer tensor (int32/int64/...) as int64 values.
std::vector<int64_t> IntValues(const Tensor& t);

// ---------------------------------------------------------------------------------------------
// Shape-function helpers.

// Fails unless input i is an integer tensor (TF uses int32/int64) with rank <= max_rank
// when its rank is known. `what` names the input in the message ("shape", "perm", ...).
void RequireIndexInput(const InferContext& ctx, int i, const char* what, int max_rank = 1);
// Constant integer contents of input i, if known.
std::optional<std::vector<int64_t>> ConstInts(const InferContext& ctx, int i);
// Constant scalar (or one-element) integer input i, if known.
std::optional<int64_t> ConstScalar(const InferContext& ctx, int i);
// The element count of a 1-D input when its length is static; nullopt otherwise.
std::optional<int64_t> StaticLength(const InferContext& ctx, int i);
// Target dims of a shape-vector input (Reshape, Fill, BroadcastTo, ScatterNd): constants,
// symbols traced through Shape/StridedSlice/Pack/..., or unknown. nullopt: rank unknown.
std::optional<std::vector<SymElem>> ShapeVectorInput(const InferContext& ctx, int i);
// The most specific dim equal to both a and b (fails the node when both are static and differ).
Dim MergeDim(const InferContext& ctx, Dim a, Dim b, const std::string& what);

}  // namespace kiln::ir::array
