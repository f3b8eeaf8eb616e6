// Conversion facts and TF-TRT's summary table.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "convert/segmenter.h"
#include "kiln/model.h"
#include "kiln/precision.h"
#include "runtime/converted_graph.h"

namespace kiln::convert {

// Ops converted: effective nodes (not Constant, not Identity) placed in engines, of all
// effective nodes of the optimized graph.
struct ConversionCounts {
  int converted = 0;
  int total = 0;
  double Percent() const { return total == 0 ? 0.0 : 100.0 * converted / total; }
};
ConversionCounts CountConversion(const ir::Graph& graph, const SegmentationResult& result);

std::string SpecNames(const std::vector<TensorSpec>& specs);  // "'a', 'b'"

// TF-TRT's summary: a row per engine (name, device, # nodes, # inputs, # outputs, dtypes,
// shapes), with detailed=true the per-op counts, then the totals, precision fallbacks and the
// non-conversion report.
std::string FormatSummary(const runtime::ConvertedGraph& graph, const ConversionCounts& counts,
                          const std::vector<Rejection>& rejections, Precision requested, int line_length, bool detailed);

}  // namespace kiln::convert
