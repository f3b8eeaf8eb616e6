// INT8 calibration tables and the quantization they describe. A table gives each tensor that
// INT8 kernels read (the float activation inputs of matrix products and convolutions) a
// symmetric range [-amax, amax] (scale = amax / 127), chosen by one of TensorRT's calibrators
// from the FP32 model's values on calibration data (runtime/calibration.h):
//   entropy     the threshold whose 128-level quantization of the |x| histogram loses the least
//               information (KL divergence), TensorRT's default;
//   minmax      amax = max |x| seen;
//   percentile  amax = the given percentile of |x| (99.99 by default).
// The table is saved with the converted model as human-readable JSON (assets/kiln/
// calibration.json) and reused for other shapes and devices; users may supply or edit one.
// InsertQuantDequant applies a table to a graph: each quantized activation goes through
// quantize-dequantize (round(clip(x / scale, -127, 127)) * scale) before its readers, and each
// constant weight of those ops is quantized per output channel, so that float kernels compute
// exactly what INT8 kernels with int32 accumulation compute (up to float32 summation order).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/quant_dequant.h"

namespace kiln::convert {

inline constexpr int kCalibrationBins = 2048;
inline constexpr int kInt8Levels = 128;  // symmetric int8: 0..127 on each side

enum class Calibrator { kEntropy, kMinMax, kPercentile };
// "entropy", "minmax", "percentile" (case-insensitive); kInvalidArgument otherwise.
Calibrator ParseCalibrator(const std::string& name);
std::string CalibratorName(Calibrator c);

struct TensorRange {
  double amax = 0;          // the symmetric range chosen: scale = amax / 127
  double min = 0, max = 0;  // what the calibration data held
  int64_t elements = 0;     // values seen
  // The error quantizing with this range introduces on the calibration data, relative RMS:
  // sqrt(sum (x - qdq(x))^2 / sum x^2), estimated from the |x| histogram (QuantizationError);
  // negative when unknown (a table given by the user, or no data).
  double error = -1;
};

struct CalibrationTable {
  std::string calibrator;  // CalibratorName
  double percentile = 0;   // for the percentile calibrator
  int64_t batches = 0;
  std::map<std::string, TensorRange> tensors;  // by IR value name

  // {"format": "kiln-calibration-table", "version": 1, "calibrator": ..., "tensors": {NAME: {...}}}
  std::string ToJson() const;
  // kInvalidArgument naming `source` and what is wrong (not JSON, wrong format or version, a
  // tensor without a finite non-negative amax).
  static CalibrationTable FromJson(const std::string& text, const std::string& source);
};

// Up to `n` lines "  TENSOR: 3.1e-02 (amax A, |x| up to M)" for the tensors with the largest
// known error, largest first; "" when no tensor has one.
std::string WorstQuantizationErrors(const CalibrationTable& table, size_t n);

// The values INT8 kernels would read: float32 non-constant operands of MatMul, BatchMatMul,
// Conv2D, DepthwiseConv2D and Conv3D (constant weights are quantized per output channel from
// their own values instead).
std::vector<ir::ValueId> QuantizableActivations(const ir::Graph& graph);
// The float32 results of convolutions that only one Add reads, whose other operand is a tensor of
// the same shape (the branches of a residual join; not a bias Add of a constant):
// their ranges are calibrated too, and InsertQuantDequant gives each such convolution its
// output's range as ir::kCalibratedOutputAmax, so that a backend may store the result in the
// conversion's 8-bit format for the Add; the graph's values stay float. A table without them
// (older, or a user's) is valid.
std::vector<ir::ValueId> ResidualActivations(const ir::Graph& graph);
// What calibration records: QuantizableActivations, then ResidualActivations.
std::vector<ir::ValueId> CalibratedActivations(const ir::Graph& graph);

// The amax each calibrator picks from a histogram of |x| over [0, max_abs] (bins of equal width).
double EntropyThreshold(const std::vector<int64_t>& histogram, double max_abs);
double PercentileThreshold(const std::vector<int64_t>& histogram, double max_abs, double percentile);
// The relative RMS error of symmetric int8 quantization with range `amax` over the values a
// histogram of |x| over [0, max_abs] describes, taking each bin's values as uniform within it
// (rounding to the nearest step amax / 127 below amax, clipping to amax above).
double QuantizationError(const std::vector<int64_t>& histogram, double max_abs, double amax);

struct Quantization {
  int activations = 0;  // tensors quantized per tensor
  int residual_ranges = 0;  // convolutions given their output's range (ResidualActivations)
  int weights = 0;      // constant weights quantized (int8: per output channel; FP8: per tensor)
  std::vector<std::string> kept;  // layers left in floating point by `keep` (node names)
};
// Rewrites `graph` as described above, except the layers `keep` names (ConversionParams::
// keep_precision: node names, op types or source op types, or the name of a quantizable input
// tensor; exact, or a prefix when ending in '*'). kInvalidArgument naming the tensor and its
// reader when the table has no range for a quantizable activation, and naming the pattern when
// one of `keep` matches no quantizable layer. `format`: the 8-bit format quantized tensors take.
using ir::QuantFormat;
Quantization InsertQuantDequant(ir::Graph& graph, const CalibrationTable& table, const std::vector<std::string>& keep = {},
                                QuantFormat format = QuantFormat::kInt8);

}  // namespace kiln::convert
