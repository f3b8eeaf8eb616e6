// The CPU backend's internal ops: fused nodes produced by its passes. RegisterCpuOps adds them
// to the IR op registry under the prefix "cpu." (so the IR verifier checks the rewritten
// graphs); only the CPU engine runs them. The engine payload stores them like any other node.
//
//   cpu.FusedConv2D     inputs (x, filter HWIO [KH,KW,C/groups,O], bias [O], add_0, ...)
//                       attrs data_format, strides, dilations, padding, pads (as Conv2D),
//                       post-op attrs (below). DepthwiseConv2D is rewritten to this op with its
//                       filter viewed as [KH,KW,1,C*M] (groups = C).
//   cpu.FusedMatMul     inputs (a, b, bias [N], add_0, ...); attrs transpose_a, transpose_b,
//                       post-op attrs. `b` may be a constant (weights reordered once) or not.
//                       `a` is [m, k], or (not transposed) rows [..., k] of any rank: one GEMM
//                       over all of them, the result [..., n].
//   cpu.FusedBatchMatMul inputs (x, y, add_0, ...); attrs adj_x, adj_y, post-op attrs.
//   cpu.Pool2D          input x (float32, rank 4); attrs kind ("max" or "avg": the mean of the
//                       window's elements inside the input, padding excluded), ksize, strides
//                       (2 each), padding, pads, data_format (as MaxPool / AvgPool).
//   cpu.QuantizeS8      input x (float32); attrs inv_scale, qmin, qmax (doubles). Output int8 of x's
//                       shape: round_half_even(clamp(x * inv_scale, qmin, qmax)) (backend/cpu/int8.h).
//   cpu.EltwiseChain    inputs (x, operand_1, ...); attrs steps (op names), operands (input
//                       index per step, -1 for unary steps), swapped (1 when the operand is the
//                       left-hand side), alphas (LeakyRelu's alpha per step). Output: x's shape.
//
// INT8 (the cpu-int8 pass): the conv / matmul ops may take int8 operands instead of float32 ones:
// `x` / `a` from a cpu.QuantizeS8 with attr int8_scale_a (double: one int8 step of the operand;
// a uint8 `x` / `a` holds q + int8_zero_point_a, attr int64, default 0),
// and `filter` / `b` as int8 (constant, with attr int8_scale_b: doubles, one per output channel
// or one) or, for matrix products, from a cpu.QuantizeS8 (int8_scale_b of one element). Their
// result is float32, exactly the float op on the dequantized operands with int32 accumulation, or,
// with attr int8_output, int8 (uint8 with attr unsigned_output): the result after the post-ops
// rounded half to even and saturated. cpu.QuantizeS8 writes int8, or with attr unsigned uint8
// q + zero_point (attr int64).
//
// Post-ops (applied in order to the conv/matmul result, after the bias): attr post_ops (names:
// relu, leaky_relu, relu6, sigmoid, tanh, elu, swish, linear, add, clip, gelu, round), post_op_alpha and
// post_op_beta (doubles, one per post-op). `linear` is alpha*x + beta; `leaky_relu` uses alpha;
// `add` adds the next extra input (same shape as the result): its values when float32; when int8
// or uint8 (an 8-bit residual, cpu-int8-residual) alpha * (q - beta), its scale and zero point;
// `clip` is min(max(x, alpha), beta) (Clip with constant bounds, alpha <= beta); `round` rounds
// half to even.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::ir {
class InferContext;
}  // namespace kiln::ir

namespace kiln::backend::cpu {

inline constexpr std::string_view kFusedConv2D = "cpu.FusedConv2D";
inline constexpr std::string_view kFusedMatMul = "cpu.FusedMatMul";
inline constexpr std::string_view kFusedBatchMatMul = "cpu.FusedBatchMatMul";
inline constexpr std::string_view kEltwiseChain = "cpu.EltwiseChain";
inline constexpr std::string_view kQuantizeS8 = "cpu.QuantizeS8";
inline constexpr std::string_view kPool2D = "cpu.Pool2D";
// A float32 quantize-dequantize chain in one step: round(clamp(x * inv_scale | x / divisor,
// qmin, qmax)) * scale (attrs inv_scale, divisor (0: none), qmin, qmax, scale; backend/cpu/int8.h).
inline constexpr std::string_view kQuantDequant = "cpu.QuantDequant";
// float32 reduction (attr kind: sum, mean, max, min) over attr axes (normalized, sorted), attr
// keep_dims; oneDNN's primitive.
inline constexpr std::string_view kReduce = "cpu.Reduce";
// Layer normalization over the dims from attr axis on (attr epsilon; constant scale and bias
// inputs, both optional), float32.
inline constexpr std::string_view kLayerNorm = "cpu.LayerNorm";
// Softmax (attr log: LogSoftmax) along attr axis (0 <= axis < rank), oneDNN's primitive.
inline constexpr std::string_view kSoftmax = "cpu.Softmax";
// Constant padding (attr pads: before / after per dim; optional input 1: the pad value).
inline constexpr std::string_view kPad = "cpu.Pad";
// cond ? x : y with numpy broadcasting; inputs x, y, cond (bool); dtypes of 1, 2, 4 or 8 bytes.
inline constexpr std::string_view kSelect = "cpu.Select";
inline constexpr std::string_view kCast = "cpu.Cast";  // to float32
inline constexpr std::string_view kBinary = "cpu.Binary";  // attr "op": the elementwise op
// Transpose with a constant permutation (attr perm), run as a oneDNN reorder.
inline constexpr std::string_view kTranspose = "cpu.Transpose";
// RNN / GRU / LSTM that oneDNN's RNN primitives compute exactly (backend/cpu/recurrent.h): the
// IR op's inputs, outputs (Y, Y_h[, Y_c]) and attributes unchanged, only the op renamed.
inline constexpr std::string_view kRnn = "cpu.RNN";
inline constexpr std::string_view kGru = "cpu.GRU";
inline constexpr std::string_view kLstm = "cpu.LSTM";

// Adds the ops above to the IR op registry (ir::RegisterBackendOps); idempotent and
// thread-safe. Called before the backend creates or decodes graphs that hold them.
void RegisterCpuOps();

enum class PostOpKind { kRelu, kLeakyRelu, kRelu6, kSigmoid, kTanh, kElu, kSwish, kLinear, kAdd, kClip, kGelu, kRound };

struct PostOp {
  PostOpKind kind = PostOpKind::kRelu;
  double alpha = 0;
  double beta = 0;
};

std::string_view PostOpName(PostOpKind kind);
std::optional<PostOpKind> PostOpFromName(std::string_view name);
std::vector<PostOp> ReadPostOps(const ir::Node& node);
void WritePostOps(ir::AttrMap& attrs, const std::vector<PostOp>& post_ops);
// The elementwise post-ops on one float, with the reference kernels' float32 formulas (kAdd is
// not elementwise: callers add the operand themselves).
float ApplyPostOp(const PostOp& op, float x);
// Index of the first extra (add) input of a fused node.
int FirstAddInput(const ir::Node& node);

struct CpuOpDef {
  std::string name;
  int min_inputs = 0;
  int max_inputs = -1;  // -1: variadic
  // Output shapes for concrete input shapes; throws kInvalidArgument naming the node.
  std::vector<Shape> (*infer)(const ir::Node& node, const std::vector<Shape>& inputs) = nullptr;
  // The output has input 0's shape (used for symbolic shapes, which `infer` cannot take).
  bool keeps_input_shape = false;
  // The output dtype; kInvalid: input 0's.
  DType output_dtype = DType::kInvalid;
  // The op writes several outputs (`infer` returns one shape each; the recurrent ops).
  bool multi_output = false;
  // Symbolic shape function, used instead of the above when set (keeps symbolic dims through
  // ops whose outputs downstream shapes depend on).
  void (*infer_symbolic)(ir::InferContext& ctx) = nullptr;
};

// The backend's own op table; nullptr for ops that are not internal.
const CpuOpDef* FindCpuOp(std::string_view name);

// Fused-conv geometry for concrete shapes (shared by shape inference and the kernels).
struct ConvGeometry {
  bool channels_last = true;
  int64_t n = 0, c = 0, h = 0, w = 0;   // input
  int64_t kh = 0, kw = 0, ic = 0, oc = 0;  // filter HWIO
  int64_t groups = 1;
  int64_t oh = 0, ow = 0;
  int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  Shape OutputShape() const;
};
ConvGeometry ComputeConvGeometry(const ir::Node& node, const Shape& input, const Shape& filter);
// cpu.Pool2D geometry (kh, kw from ksize; oc = c; no dilation, one group).
ConvGeometry ComputePoolGeometry(const ir::Node& node, const Shape& input);

}  // namespace kiln::backend::cpu
