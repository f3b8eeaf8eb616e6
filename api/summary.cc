#include "api/summary.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "convert/profiles.h"
#include "convert/report.h"

namespace kiln::api {

using convert::NonConversionReport;
namespace {

bool IsEffective(const ir::Node& node) { return node.op != "Constant" && node.op != "Identity"; }

std::string DTypes(const ir::Graph& g, const std::vector<ir::ValueId>& values) {
  std::vector<std::string> names;
  for (ir::ValueId v : values) names.push_back(fmt::format("'{}'", DTypeName(g.value(v).dtype)));
  return fmt::format("[{}]", fmt::join(names, ", "));
}

std::string Shapes(const ir::Graph& g, const std::vector<ir::ValueId>& values) {
  std::vector<std::string> shapes;
  for (ir::ValueId v : values) {
    const ir::SymShape& s = g.value(v).shape;
    if (!s.rank_known) {
      shapes.push_back("None");
      continue;
    }
    std::vector<std::string> dims;
    for (ir::Dim d : s.dims) dims.push_back(ir::IsStatic(d) ? std::to_string(d) : "-1");
    shapes.push_back(fmt::format("[{}]", fmt::join(dims, ", ")));
  }
  return fmt::format("[{}]", fmt::join(shapes, ", "));
}

std::string Cell(const std::string& text, size_t width) {
  if (text.size() + 1 > width) return text.substr(0, width > 4 ? width - 4 : 0) + "... ";
  return text + std::string(width - text.size(), ' ');
}

}  // namespace

ConversionCounts CountConversion(const ir::Graph& graph, const SegmentationResult& result) {
  ConversionCounts counts;
  for (const ir::Node& node : graph.nodes())
    if (!node.removed && IsEffective(node)) ++counts.total;
  for (const Segment& s : result.segments) counts.converted += s.effective_nodes;
  return counts;
}

std::string SpecNames(const std::vector<TensorSpec>& specs) {
  std::vector<std::string> names;
  for (const TensorSpec& s : specs) names.push_back(fmt::format("'{}'", s.name));
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string FormatSummary(const runtime::ConvertedGraph& graph, const ConversionCounts& counts,
                          const std::vector<Rejection>& rejections, Precision requested, int line_length, bool detailed) {
  const size_t width = static_cast<size_t>(std::max(line_length, 80));
  const std::vector<std::pair<std::string, double>> columns = {
      {"Engine name", 0.14}, {"Device", 0.08}, {"# Nodes", 0.06}, {"# Inputs", 0.06}, {"# Outputs", 0.06},
      {"Input DTypes", 0.14}, {"Output DTypes", 0.14}, {"Input Shapes", 0.16}, {"Output Shapes", 0.16}};
  std::vector<size_t> widths;
  for (const auto& [name, share] : columns) widths.push_back(std::max<size_t>(name.size() + 2, static_cast<size_t>(width * share)));
  std::string out;
  auto row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) line += Cell(cells[i], widths[i]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  const std::string rule(width, '=');
  std::vector<std::string> header;
  for (const auto& [name, share] : columns) header.push_back(name);
  row(header);
  out += rule + "\n";

  const ir::Graph& g = graph.graph();
  std::vector<std::string> fell_back, partly;
  for (const auto& node_runtime : graph.engine_nodes()) {
    const ir::Graph& seg = node_runtime->segment();
    int effective = 0;
    std::map<std::string, int> ops;
    for (const ir::Node& n : seg.nodes()) {
      if (n.removed || !IsEffective(n)) continue;
      ++effective;
      ++ops[n.source_op.empty() ? n.op : n.source_op];
    }
    const ir::Node* outer = nullptr;
    for (const ir::Node& n : g.nodes())
      if (!n.removed && n.op == "Engine" && n.attrs.Str("engine_name") == node_runtime->name()) outer = &n;
    row({node_runtime->name(), graph.backend().name(), std::to_string(effective),
         std::to_string(outer ? outer->inputs.size() : seg.inputs().size()),
         std::to_string(outer ? outer->outputs.size() : seg.outputs().size()), DTypes(seg, seg.inputs()),
         DTypes(seg, seg.outputs()), Shapes(outer ? g : seg, outer ? outer->inputs : seg.inputs()),
         Shapes(outer ? g : seg, outer ? outer->outputs : seg.outputs())});
    if (detailed) {
      std::vector<std::pair<std::string, int>> sorted(ops.begin(), ops.end());
      std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
      for (const auto& [op, count] : sorted) out += fmt::format("  - {}: {}x\n", op, count);
      for (const auto& engine : node_runtime->Engines()) {
        out += fmt::format("  engine for profile {} ({}{})\n", engine->profile().ToString(),
                           PrecisionName(engine->precision()),
                           engine->precision() != requested || !engine->precision_note().empty() ? ", " + engine->precision_note() : "");
        if (const auto layers = engine->quantized_layers(); !layers.empty())
          out += fmt::format("    {} layers ({}): {}\n", PrecisionName(engine->precision()), layers.size(),
                             fmt::join(layers, ", "));
      }
    }
    for (const auto& engine : node_runtime->Engines()) {
      if (engine->precision() != requested) fell_back.push_back(node_runtime->name());
      else if (!engine->precision_note().empty()) partly.push_back(node_runtime->name());  // e.g. some BF16 steps run FP32
    }
  }
  out += rule + "\n";
  out += fmt::format("[*] Total number of engines: {}\n", graph.engine_nodes().size());
  out += fmt::format("[*] % of OPs Converted: {:.2f}% [{}/{}]\n", counts.Percent(), counts.converted, counts.total);
  if (!fell_back.empty()) {
    std::sort(fell_back.begin(), fell_back.end());
    fell_back.erase(std::unique(fell_back.begin(), fell_back.end()), fell_back.end());
    out += fmt::format("[*] Precision {} was not honoured by {} engine(s), which run at a higher precision: {}\n",
                       PrecisionName(requested), fell_back.size(), fmt::join(fell_back, ", "));
  }
  if (!partly.empty()) {
    std::sort(partly.begin(), partly.end());
    partly.erase(std::unique(partly.begin(), partly.end()), partly.end());
    out += fmt::format("[*] Precision {} was honoured only in part by {} engine(s), some of whose steps run at a higher precision "
                       "(the detailed summary names the steps): {}\n",
                       PrecisionName(requested), partly.size(), fmt::join(partly, ", "));
  }
  if (!rejections.empty()) {
    NonConversionReport report;
    for (const Rejection& r : rejections) report.Add(r);
    out += "\nOps not converted (run natively):\n" + report.ToText();
  }
  return out;
}

}  // namespace kiln::api
