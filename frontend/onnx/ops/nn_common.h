// Helpers shared by the ONNX nn-family importers (nn.cc: convolutions and pooling; nn_math.cc:
// matrix products, normalizations, softmax, LRN, resizes, depth/space, Einsum).
#pragma once

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "frontend/onnx/importer.h"

namespace kiln::onnxfe::nn {

std::string Join(const std::vector<int64_t>& v);

// An AttrMap from {name, value} pairs (frontend/import_context.h).
using frontend::Attrs;

// A scalar constant of `dtype` (float or integer) holding `value`.
ir::ValueId ScalarOf(ImportContext& ctx, DType dtype, double value, const std::string& suffix);

// Transpose of `x`: folded into a new constant when x is a constant, else an IR Transpose.
ir::ValueId TransposeOf(ImportContext& ctx, ir::ValueId x, const std::vector<int64_t>& perm, const std::string& suffix);

// The known rank of input i, or Unsupported naming `what`.
int RequireRank(ImportContext& ctx, int i, const std::string& what);

// Static dims of input i from `first` on, or Unsupported naming `why`.
std::vector<int64_t> StaticDims(ImportContext& ctx, int i, int first, const std::string& why);

ir::ValueId Cast(ImportContext& ctx, ir::ValueId x, DType to, const std::string& suffix);

// ---- quantization (quantize.cc) ----

// int8, uint8, int16, uint16: the types the quantization ops produce and read.
bool IsQuantizedType(DType t);
// The quantized type's [min, max].
std::pair<double, double> QuantizedRange(DType t);
// A quantization parameter (scale or zero point) for an input of rank `rank`: one element
// broadcasts as it is; a 1-D parameter of C elements applies along `axis` (reshaped to
// [C, 1, ..., 1]). Higher ranks (blocked quantization) are Unsupported, naming `what`.
ir::ValueId ParamAlongAxis(ImportContext& ctx, ir::ValueId v, int64_t axis, int rank, const std::string& what);
// `value` (float32 or float64) rounded half to even, offset by the zero point (if any; before
// rounding when offset_first, as QLinearMatMul and QLinearConv do, else after), saturated to
// qtype's range and cast to qtype.
ir::ValueId Saturated(ImportContext& ctx, ir::ValueId value, ir::ValueId zero_point, DType qtype, bool offset_first,
                      const std::string& suffix);

}  // namespace kiln::onnxfe::nn
