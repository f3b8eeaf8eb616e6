#include "runtime/calibration.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "convert/segment_rewrite.h"
#include "convert/segmenter.h"
#include "kiln/error.h"
#include "runtime/converted_graph.h"
#include "runtime/executor.h"

namespace kiln::runtime {

namespace {

struct Stats {
  double max_abs = 0, min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  int64_t elements = 0;
  std::vector<int64_t> histogram;
};

// Calls visit(i, tensor) with each activation values[i] of one run of the graph on `batch`.
using ActivationVisitor = std::function<void(size_t index, const Tensor& value)>;
using ActivationSource = std::function<void(std::vector<Tensor> batch, const ActivationVisitor& visit)>;

// The reference kernels, node by node: each activation is seen when a node reads it.
ActivationSource ReferenceActivations(std::shared_ptr<const ir::Graph> graph, const std::vector<ir::ValueId>& values) {
  auto executor = std::make_shared<ReferenceExecutor>(graph);
  std::map<ir::ValueId, size_t> slot;
  for (size_t i = 0; i < values.size(); ++i) slot[values[i]] = i;
  return [executor, slot](std::vector<Tensor> batch, const ActivationVisitor& visit) {
    std::set<ir::ValueId> done;  // a value read by several nodes is counted once per batch
    const NodeHook hook = [&](const ir::Node& node, std::span<const Tensor> inputs, std::vector<Tensor>&) {
      for (size_t i = 0; i < node.inputs.size() && i < inputs.size(); ++i) {
        auto it = slot.find(node.inputs[i]);
        if (it != slot.end() && done.insert(node.inputs[i]).second) visit(it->second, inputs[i]);
      }
      return false;  // the reference kernel runs the node
    };
    executor->Run(std::move(batch), &hook);
  };
}

// FP32 engines of `backend`, with the activations as extra graph outputs so the engines keep them.
ActivationSource EngineActivations(const ir::Graph& graph, const std::vector<ir::ValueId>& values,
                                   std::shared_ptr<const backend::Backend> backend, const CalibrationOptions& options) {
  auto g = std::make_shared<ir::Graph>(graph.Clone());
  const size_t first = g->outputs().size();
  for (size_t i = 0; i < values.size(); ++i) g->AddOutput(fmt::format("kiln_calibration_{}", i), values[i]);
  convert::SegmenterOptions segmenter;
  segmenter.unsupported = [&backend](const ir::Graph& sg, const ir::Node& n) { return backend->Unsupported(sg, n); };
  convert::ReplaceSegments(*g, convert::FindSegments(*g, segmenter).segments);
  EngineSettings settings;
  settings.compile.precision = Precision::kFP32;
  LogFn log = [progress = options.progress](const std::string& line) {
    if (progress) progress(line);
  };
  auto runner = std::make_shared<ConvertedGraph>(g, std::move(backend), settings, log);
  return [runner, first, count = values.size()](std::vector<Tensor> batch, const ActivationVisitor& visit) {
    const std::vector<Tensor> outputs = runner->Run(std::move(batch));
    if (outputs.size() != first + count)
      throw Error(ErrorCode::kInternal,
                  fmt::format("calibration run returned {} outputs; expected {}", outputs.size(), first + count));
    for (size_t i = 0; i < count; ++i) visit(i, outputs[first + i]);
  };
}

}  // namespace

convert::CalibrationTable Calibrate(std::shared_ptr<const ir::Graph> graph,
                                    const std::vector<std::vector<Tensor>>& batches,
                                    const CalibrationOptions& options) {
  if (batches.empty()) throw Error(ErrorCode::kInvalidArgument, "calibration needs at least one batch of inputs");
  for (size_t b = 0; b < batches.size(); ++b)
    if (batches[b].size() != graph->inputs().size())
      throw Error(ErrorCode::kInvalidArgument, fmt::format("calibration batch {} has {} inputs; the graph takes {}",
                                                           b + 1, batches[b].size(), graph->inputs().size()));
  const std::vector<ir::ValueId> values = convert::CalibratedActivations(*graph);
  std::vector<Stats> stats(values.size());
  const ActivationSource run = options.engines ? EngineActivations(*graph, values, options.engines, options)
                                               : ReferenceActivations(graph, values);
  for (int pass = 1; pass <= 2; ++pass) {
    for (size_t b = 0; b < batches.size(); ++b) {
      if (options.progress)
        options.progress(fmt::format("calibrating: pass {}/2 (ranges{}), batch {}/{}", pass,
                                     pass == 1 ? "" : ", histograms", b + 1, batches.size()));
      const ActivationVisitor visit = [&](size_t index, const Tensor& t) {
        if (!t.defined() || t.dtype() != DType::kFloat32 || !t.is_host()) return;
        Stats& s = stats[index];
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
      };
      run(batches[b], visit);
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
