// ConversionParams::Validate: one rule per invalid value or combination, checked in field order.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.h"
#include "convert/calibration_table.h"
#include "kiln/converter.h"
#include "kiln/error.h"
#include "kiln/precision.h"

namespace kiln {
namespace {

using Problem = std::optional<std::string>;  // why the params are invalid; nullopt when fine

// Runs a parser and turns its kInvalidArgument into a problem (the parsers' messages already name
// the field and the accepted values).
template <typename Parse>
Problem ParseProblem(Parse parse) {
  try {
    parse();
    return std::nullopt;
  } catch (const Error& e) {
    return e.what();
  }
}

Problem CheckPrecision(const ConversionParams& p) {
  if (auto problem = ParseProblem([&] { ParsePrecision(p.precision_mode); })) return problem;
  return std::nullopt;
}

Problem CheckCalibration(const ConversionParams& p) {
  if (!p.calibrator.empty())
    if (auto problem = ParseProblem([&] { convert::ParseCalibrator(p.calibrator); })) return problem;
  if (!(p.calibration_percentile > 0 && p.calibration_percentile <= 100))
    return fmt::format("calibration_percentile must be in (0, 100], got {}", p.calibration_percentile);
  bool quantized = false;
  try {
    const Precision precision = ParsePrecision(p.precision_mode);
    quantized = precision == Precision::kINT8 || precision == Precision::kFP8;
  } catch (const Error&) {  // CheckPrecision reports it
  }
  if (!p.calibration_table.empty() && !(quantized && p.use_calibration))
    return fmt::format("calibration_table '{}' is only used with precision_mode INT8 or FP8 and use_calibration=true",
                       p.calibration_table);
  if (!p.keep_precision.empty() && !(quantized && p.use_calibration))
    return fmt::format("keep_precision ({}) is only used with precision_mode INT8 or FP8 and use_calibration=true",
                       fmt::join(p.keep_precision, ", "));
  for (const std::string& k : p.keep_precision)
    if (k.empty() || k == "*") return fmt::format("keep_precision '{}' would match every layer or none: name layers, op types or tensors", k);
  return std::nullopt;
}

Problem CheckWorkspace(const ConversionParams& p) {
  if (p.max_workspace_size_bytes > 0) return std::nullopt;
  return fmt::format("max_workspace_size_bytes must be > 0, got {}", p.max_workspace_size_bytes);
}

Problem CheckMinimumSegmentSize(const ConversionParams& p) {
  if (p.minimum_segment_size >= 1 || p.minimum_segment_size == -1) return std::nullopt;
  return fmt::format("minimum_segment_size must be >= 1 (or -1 to disable conversion), got {}",
                     p.minimum_segment_size);
}

Problem CheckMaximumCachedEngines(const ConversionParams& p) {
  if (p.maximum_cached_engines >= 1) return std::nullopt;
  return fmt::format("maximum_cached_engines must be >= 1, got {}", p.maximum_cached_engines);
}

Problem CheckProfileStrategy(const ConversionParams& p) {
  if (auto problem = ParseProblem([&] { ParseProfileStrategy(p.dynamic_shape_profile_strategy); }))
    return problem;
  // TF-TRT silently ignores the strategy in implicit-batch mode; we reject so users notice.
  if (!p.use_dynamic_shape && ParseProfileStrategy(p.dynamic_shape_profile_strategy) != ProfileStrategy::kRange)
    return fmt::format("dynamic_shape_profile_strategy '{}' has no effect without use_dynamic_shape=true "
                       "(implicit-batch engines serve batch 1..N of the build shape); set use_dynamic_shape "
                       "or leave the strategy at Range",
                       p.dynamic_shape_profile_strategy);
  return std::nullopt;
}

Problem CheckDynamicOp(const ConversionParams& p) {
  if (p.is_dynamic_op) return std::nullopt;
  return "is_dynamic_op=False is not supported in V2: engines are built at run time or by build()";
}

Problem CheckMaxBatchSize(const ConversionParams& p) {
  if (p.max_batch_size >= 1) return std::nullopt;
  return fmt::format("max_batch_size must be >= 1, got {}", p.max_batch_size);
}

Problem CheckDevice(const ConversionParams& p) {
  const std::vector<std::string> names = backend::BackendNames();
  if (std::find(names.begin(), names.end(), p.device) != names.end()) return std::nullopt;
  std::string lower = p.device;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool have_cuda = std::find(names.begin(), names.end(), "cuda") != names.end();
  if ((lower.starts_with("cuda") || lower.starts_with("gpu")) && !have_cuda)
    return fmt::format("device '{}': this build of Kiln has no CUDA engine backend; use one of {}", p.device,
                       fmt::join(names, ", "));
  if (lower.starts_with("cuda") || lower.starts_with("gpu"))
    return fmt::format("device '{}' is not one of {} (engines run on GPU 0 of those CUDA_VISIBLE_DEVICES shows)", p.device,
                       fmt::join(names, ", "));
  return fmt::format("device '{}' is not one of {}", p.device, fmt::join(names, ", "));
}

// In ConversionParams field order, so the first problem reported is the first field at fault.
constexpr Problem (*kRules[])(const ConversionParams&) = {
    CheckPrecision,       CheckWorkspace, CheckMinimumSegmentSize, CheckMaximumCachedEngines,
    CheckProfileStrategy, CheckDynamicOp, CheckMaxBatchSize,       CheckDevice,
    CheckCalibration,
};

}  // namespace

void ConversionParams::Validate() const {
  std::vector<std::string> problems;
  for (auto rule : kRules)
    if (Problem problem = rule(*this)) problems.push_back(std::move(*problem));
  if (problems.empty()) return;
  if (problems.size() == 1) throw Error(ErrorCode::kInvalidArgument, problems.front());
  std::string message = fmt::format("{} invalid conversion parameters:", problems.size());
  for (const std::string& problem : problems) message += "\n  - " + problem;
  throw Error(ErrorCode::kInvalidArgument, message);
}

}  // namespace kiln
