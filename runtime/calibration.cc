#include "runtime/calibration.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "kiln/error.h"
#include "runtime/executor.h"

namespace kiln::runtime {

namespace {

struct Stats {
  double max_abs = 0, min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  int64_t elements = 0;
  std::vector<int64_t> histogram;
};

}  // namespace

convert::CalibrationTable Calibrate(std::shared_ptr<const ir::Graph> graph,
                                    const std::vector<std::vector<Tensor>>& batches,
                                    const CalibrationOptions& options) {
  if (batches.empty()) throw Error(ErrorCode::kInvalidArgument, "calibration needs at least one batch of inputs");
  const std::vector<ir::ValueId> values = convert::QuantizableActivations(*graph);
  std::map<ir::ValueId, size_t> slot;
  for (size_t i = 0; i < values.size(); ++i) slot[values[i]] = i;
  std::vector<Stats> stats(values.size());
  ReferenceExecutor executor(graph);
  for (int pass = 1; pass <= 2; ++pass) {
    for (size_t b = 0; b < batches.size(); ++b) {
      if (batches[b].size() != graph->inputs().size())
        throw Error(ErrorCode::kInvalidArgument, fmt::format("calibration batch {} has {} inputs; the graph takes {}",
                                                             b + 1, batches[b].size(), graph->inputs().size()));
      if (options.progress)
        options.progress(fmt::format("calibrating: pass {}/2 (ranges{}), batch {}/{}", pass,
                                     pass == 1 ? "" : ", histograms", b + 1, batches.size()));
      std::set<ir::ValueId> done;  // a value read by several nodes is counted once per batch
      const NodeHook hook = [&](const ir::Node& node, std::span<const Tensor> inputs, std::vector<Tensor>&) {
        for (size_t i = 0; i < node.inputs.size() && i < inputs.size(); ++i) {
          auto it = slot.find(node.inputs[i]);
          if (it == slot.end() || !done.insert(node.inputs[i]).second) continue;
          const Tensor& t = inputs[i];
          if (!t.defined() || t.dtype() != DType::kFloat32 || !t.is_host()) continue;
          Stats& s = stats[it->second];
          const float* data = t.data<float>();
          const int64_t n = t.num_elements();
          if (pass == 1) {
            for (int64_t k = 0; k < n; ++k) {
              const double x = data[k];
              if (!std::isfinite(x)) continue;
              s.min = std::min(s.min, x);
              s.max = std::max(s.max, x);
              s.max_abs = std::max(s.max_abs, std::fabs(x));
            }
            s.elements += n;
          } else if (s.max_abs > 0) {
            if (s.histogram.empty()) s.histogram.assign(convert::kCalibrationBins, 0);
            const double scale = convert::kCalibrationBins / s.max_abs;
            for (int64_t k = 0; k < n; ++k) {
              const double x = std::fabs(static_cast<double>(data[k]));
              if (!std::isfinite(x)) continue;
              const int64_t bin = std::min<int64_t>(convert::kCalibrationBins - 1, static_cast<int64_t>(x * scale));
              ++s.histogram[static_cast<size_t>(bin)];
            }
          }
        }
        return false;  // the reference kernel runs the node
      };
      std::vector<Tensor> inputs = batches[b];
      executor.Run(std::move(inputs), &hook);
    }
  }
  convert::CalibrationTable table;
  table.calibrator = convert::CalibratorName(options.calibrator);
  table.percentile = options.calibrator == convert::Calibrator::kPercentile ? options.percentile : 0;
  table.batches = static_cast<int64_t>(batches.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const Stats& s = stats[i];
    convert::TensorRange r;
    r.elements = s.elements;
    r.min = s.elements > 0 && std::isfinite(s.min) ? s.min : 0;
    r.max = s.elements > 0 && std::isfinite(s.max) ? s.max : 0;
    switch (options.calibrator) {
      case convert::Calibrator::kMinMax:
        r.amax = s.max_abs;
        break;
      case convert::Calibrator::kPercentile:
        r.amax = s.histogram.empty() ? 0 : convert::PercentileThreshold(s.histogram, s.max_abs, options.percentile);
        break;
      case convert::Calibrator::kEntropy:
        r.amax = s.histogram.empty() ? 0 : convert::EntropyThreshold(s.histogram, s.max_abs);
        break;
    }
    r.error = s.histogram.empty() ? 0 : convert::QuantizationError(s.histogram, s.max_abs, r.amax);
    table.tensors[graph->value(values[i]).name] = r;
  }
  return table;
}

}  // namespace kiln::runtime
