// INT8 post-training calibration: the FP32 graph runs on the user's calibration batches and
// each quantizable activation (convert/calibration_table.h) gets its range from the chosen
// calibrator. Two passes over the batches (kept in memory): the first finds each tensor's max
// |x|, the second fills a kCalibrationBins-bin histogram of |x| over [0, max].
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "convert/calibration_table.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::runtime {

struct CalibrationOptions {
  convert::Calibrator calibrator = convert::Calibrator::kEntropy;
  double percentile = 99.99;
  std::function<void(const std::string&)> progress;  // a line per batch and pass; may be empty
};

// Runs `graph` (FP32, reference kernels) on every batch (inputs in graph-input order) twice and
// returns the ranges of convert::QuantizableActivations. kInvalidArgument for no batches or a
// batch that does not match the graph's inputs; a tensor whose values are all zero gets amax 0.
convert::CalibrationTable Calibrate(std::shared_ptr<const ir::Graph> graph,
                                    const std::vector<std::vector<Tensor>>& batches, const CalibrationOptions& options);

}  // namespace kiln::runtime
