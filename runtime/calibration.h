// INT8 post-training calibration: the FP32 graph runs on the user's calibration batches and
// each quantizable activation (convert/calibration_table.h) gets its range from the chosen
// calibrator. Two passes over the batches (kept in memory): the first finds each tensor's max
// |x|, the second fills a kCalibrationBins-bin histogram of |x| over [0, max].
// The graph runs either on the reference kernels (node by node, each activation seen and freed
// as it is made) or, much faster, through FP32 engines of a backend whose outputs are on the
// host (the CPU backend): the activations are then extra outputs of the engines, so one batch's
// activations are in memory together.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "convert/calibration_table.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::runtime {

struct CalibrationOptions {
  convert::Calibrator calibrator = convert::Calibrator::kEntropy;
  double percentile = 99.99;
  std::function<void(const std::string&)> progress;  // a line per batch and pass; may be empty
  // Runs the graph through FP32 engines of this backend (its outputs must be host tensors);
  // null: the reference kernels.
  std::shared_ptr<const backend::Backend> engines;
};

// Runs `graph` (FP32) on every batch (inputs in graph-input order) twice and
// returns the ranges of convert::QuantizableActivations. kInvalidArgument for no batches or a
// batch that does not match the graph's inputs; a tensor whose values are all zero gets amax 0.
convert::CalibrationTable Calibrate(std::shared_ptr<const ir::Graph> graph,
                                    const std::vector<std::vector<Tensor>>& batches, const CalibrationOptions& options);

}  // namespace kiln::runtime
