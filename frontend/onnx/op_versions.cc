#include "frontend/onnx/op_versions.h"

#include <map>
#include <string>

#include "frontend/onnx/onnx_model.h"

namespace kiln::onnxfe {
namespace {

// Each entry: the version of the op (ONNX's Changelog.md) from which nothing the importer relies
// on changed; comments name what later versions changed. Versions before 6 of the elementwise ops
// carried `consumed_inputs` (an in-place hint with no effect on values); the binary arithmetic
// and comparison ops before 7 had a legacy `broadcast` / `axis` form, so they start at 7.
const std::map<std::string, int64_t, std::less<>>& Table() {
  static const std::map<std::string, int64_t, std::less<>> table = {
      // Elementwise math: versions 6/7 ended the legacy `consumed_inputs` / `broadcast`
      // attributes (numpy broadcasting from 7); later versions added types.
      {"Abs", 6}, {"Neg", 6}, {"Floor", 6}, {"Ceil", 6}, {"Sqrt", 6}, {"Reciprocal", 6}, {"Exp", 6}, {"Log", 6},
      {"Relu", 6}, {"Sigmoid", 6}, {"Tanh", 6}, {"Add", 7}, {"Sub", 7}, {"Mul", 7}, {"Div", 7}, {"Pow", 7},
      {"Sin", 7}, {"Cos", 7}, {"Tan", 7}, {"Asin", 7}, {"Acos", 7}, {"Atan", 7},
      {"Sinh", 9}, {"Cosh", 9}, {"Asinh", 9}, {"Acosh", 9}, {"Atanh", 9},
      {"Erf", 9}, {"Sign", 9}, {"IsNaN", 9}, {"IsInf", 10}, {"Round", 11}, {"Mod", 10}, {"BitShift", 11},
      {"Not", 1}, {"And", 7}, {"Or", 7}, {"Xor", 7}, {"Equal", 7}, {"Greater", 7}, {"Less", 7},
      {"GreaterOrEqual", 12}, {"LessOrEqual", 12},
      // Variadic ops broadcast from 8; 6 and 7 take inputs of one shape, which the broadcasting
      // importer gives the same meaning.
      {"Max", 6}, {"Min", 6}, {"Sum", 6}, {"Mean", 6},
      // Activations with attributes unchanged since version 6 (1 for Softsign / Softplus).
      {"Selu", 6}, {"Elu", 6}, {"LeakyRelu", 6}, {"HardSigmoid", 6}, {"Softsign", 1}, {"Softplus", 1},
      {"PRelu", 7}, {"ThresholdedRelu", 10}, {"Shrink", 9}, {"Celu", 12},
      // Structure: unchanged semantics, later versions added types or defined negative axes and
      // indices (which were invalid before).
      {"Identity", 1}, {"Shape", 1}, {"Size", 1}, {"Transpose", 1}, {"Reshape", 5}, {"Concat", 4}, {"Gather", 1},
      {"Flatten", 1}, {"Tile", 6}, {"Expand", 8}, {"Where", 9}, {"ConstantOfShape", 9}, {"NonZero", 9},
      {"Range", 11}, {"Cast", 6}, {"Squeeze", 1}, {"Unsqueeze", 1}, {"Split", 2},
      {"DepthToSpace", 1}, {"SpaceToDepth", 1}, {"OneHot", 9}, {"Compress", 9}, {"CumSum", 11},
      {"GatherElements", 11}, {"GatherND", 11}, {"ScatterND", 11}, {"ScatterElements", 11}, {"Scatter", 9}, {"Det", 11}, {"EyeLike", 9},
      {"ReverseSequence", 10}, {"Unique", 11}, {"Einsum", 12}, {"Constant", 1},
      // Operands that older versions carried as attributes (Slice-1 starts/ends/axes, TopK-1 k,
      // Pad-2 pads/value, Clip-6 min/max): the importers read the opset and take them as inputs.
      // TopK-11 added largest / sorted (older: their defaults); Slice-10 added steps.
      {"Slice", 1}, {"TopK", 1}, {"Pad", 2}, {"Clip", 6},
      // Reductions: attribute `axes` (read by the importer) until the input form; 11 allowed
      // negative axes (invalid before, so reading them does not change an older model's meaning).
      {"ReduceSum", 1}, {"ReduceMean", 1}, {"ReduceMax", 1}, {"ReduceMin", 1}, {"ReduceProd", 1},
      // These five are unchanged from version 1 (11 defined negative axes, 13 added bfloat16).
      {"ReduceL1", 1}, {"ReduceL2", 1}, {"ReduceLogSum", 1}, {"ReduceLogSumExp", 1}, {"ReduceSumSquare", 1},
      // ArgMax / ArgMin: 11 allowed negative axes, 12 added select_last_index (default: first).
      {"ArgMax", 1}, {"ArgMin", 1},
      // Neural network ops.
      // Conv and the pools: 11 only reworded auto_pad / pads (the same SAME_UPPER / SAME_LOWER
      // split), 12 added int8 MaxPool; 7, 8 and 10 added count_include_pad, Indices with
      // storage_order, ceil_mode and dilations, whose defaults are the older versions' meaning.
      // BatchNormalization-7 and -8 have `spatial` (1: per channel, as from 9 on; 0 is refused).
      {"MatMul", 1}, {"Gemm", 7}, {"Conv", 1}, {"MaxPool", 1}, {"AveragePool", 1},
      {"GlobalAveragePool", 1}, {"GlobalMaxPool", 1}, {"BatchNormalization", 7}, {"InstanceNormalization", 6},
      {"LRN", 1}, {"LpNormalization", 1}, {"MeanVarianceNormalization", 9}, {"MaxUnpool", 9},
      // ConvTranspose-1 splits an odd padding derived from output_shape the other way round from
      // 11 on: the importer reads the opset (and refuses version 1's ambiguous SAME cases).
      {"ConvTranspose", 1},
      // GridSample-20 renamed the modes and allowed N-D input; RoiAlign-16 added
      // coordinate_transformation_mode (10 has no pixel shift): the importers read the opset.
      {"GridSample", 16}, {"RoiAlign", 10},
      // Detection: NonMaxSuppression-10 (11 only allowed boxes given as any diagonal pair of corners, which
      // the kernel normalizes in both).
      {"NonMaxSuppression", 10},
      // Recurrent ops: 7 dropped `output_sequence` (which chose whether Y is produced); 14 added
      // `layout` (batch-major tensors, default off), 22 bfloat16.
      {"RNN", 7}, {"GRU", 7}, {"LSTM", 7},
      // Dropout: 7-11 have no training mode (inference: the identity and an all-true mask); 12
      // added the ratio / training_mode inputs and `seed`, which the importer reads.
      {"Dropout", 7},
      // Before 13 these coerce the input to 2-D at `axis`; the importers read the opset and take
      // the one case that is the same over one axis (the last), refusing the others themselves.
      {"Softmax", 1}, {"LogSoftmax", 1}, {"Hardmax", 1},
      // Losses (introduced in 12; 13 added types).
      {"NegativeLogLikelihoodLoss", 12}, {"SoftmaxCrossEntropyLoss", 12},
      // Quantization (introduced in 10; 13 added `axis` for per-axis parameters, 19 float16 and
      // float8 scales, 21 blocks and 16-bit and 4-bit types: what the importers do not take they refuse).
      {"QuantizeLinear", 10}, {"DequantizeLinear", 10}, {"DynamicQuantizeLinear", 11}, {"MatMulInteger", 10},
      {"ConvInteger", 10}, {"QLinearConv", 10}, {"QLinearMatMul", 10},
      // Ops that first appear after opset 13.
      {"HardSwish", 14}, {"Trilu", 14}, {"HannWindow", 17}, {"HammingWindow", 17}, {"BlackmanWindow", 17}, {"Mish", 18}, {"Gelu", 20},
      // If-11 / Loop-11 let shapes differ between branches and iterations (the importers allow it
      // at every version).
      {"If", 1}, {"Loop", 1},
      // Scan-9 dropped version 8's batch axis and sequence_lens and added per-input axes (the
      // importer reads the opset).
      {"Scan", 8},
      {"DFT", 17}, {"STFT", 17}, {"MelWeightMatrix", 17},  // DFT 20 made axis an input (the importer reads the opset)
      // Resize-10 and Upsample (7, 9; deprecated in 10 without a change) have fixed coordinates;
      // 11 added roi, sizes and the coordinate / nearest modes, 13 made roi and scales optional,
      // 18 added antialias, axes and keep_aspect_ratio_policy, 19 half_pixel_symmetric: the
      // importer reads the opset and the attributes of each.
      {"Resize", 10}, {"Upsample", 7},
      // Text ops: unchanged since they appeared.
      {"StringNormalizer", 10}, {"TfIdfVectorizer", 9},
      // ai.onnx.preview.training (only version 1 exists; the importer checks the domain's opset).
      {"ai.onnx.preview.training.Adagrad", 1}, {"ai.onnx.preview.training.Adam", 1},
      {"ai.onnx.preview.training.Momentum", 1},
  };
  return table;
}

}  // namespace

int64_t OldestExactOpset(std::string_view op_type) {
  const auto& table = Table();
  auto it = table.find(op_type);
  return it == table.end() ? kMinOpset : it->second;
}

}  // namespace kiln::onnxfe
