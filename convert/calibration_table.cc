#include "convert/calibration_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/ops/elementwise_unary_ops.h"
#include "kiln/error.h"

namespace kiln::convert {

Calibrator ParseCalibrator(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "entropy") return Calibrator::kEntropy;
  if (lower == "minmax") return Calibrator::kMinMax;
  if (lower == "percentile") return Calibrator::kPercentile;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("calibrator '{}' is not one of entropy, minmax, percentile", name));
}

std::string CalibratorName(Calibrator c) {
  switch (c) {
    case Calibrator::kEntropy:
      return "entropy";
    case Calibrator::kMinMax:
      return "minmax";
    case Calibrator::kPercentile:
      return "percentile";
  }
  return "?";
}

std::string CalibrationTable::ToJson() const {
  nlohmann::ordered_json j;
  j["format"] = "kiln-calibration-table";
  j["version"] = 1;
  j["calibrator"] = calibrator;
  if (calibrator == "percentile") j["percentile"] = percentile;
  j["batches"] = batches;
  j["note"] =
      "symmetric int8 per tensor: scale = amax / 127; min/max/elements describe the calibration data; error: "
      "the relative RMS error quantization introduces on it (estimated from histograms)";
  nlohmann::ordered_json t = nlohmann::ordered_json::object();
  for (const auto& [name, r] : tensors) {
    t[name] = {{"amax", r.amax}, {"min", r.min}, {"max", r.max}, {"elements", r.elements}};
    if (r.error >= 0) t[name]["error"] = r.error;
  }
  j["tensors"] = std::move(t);
  return j.dump(1) + "\n";
}

CalibrationTable CalibrationTable::FromJson(const std::string& text, const std::string& source) {
  auto bad = [&](const std::string& what) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("calibration table {}: {}", source, what));
  };
  // Depth-limited: a table is two levels deep; a hostile file must not recurse the parser away.
  int depth = 0;
  nlohmann::json j = nlohmann::json::parse(
      text,
      [&](int d, nlohmann::json::parse_event_t, nlohmann::json&) {
        depth = std::max(depth, d);
        if (d > 8) throw bad("nested deeper than a calibration table is");
        return true;
      },
      /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw bad("not a JSON object");
  if (j.value("format", "") != "kiln-calibration-table") throw bad("\"format\" is not \"kiln-calibration-table\"");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int64_t>() != 1)
    throw bad("only version 1 is understood");
  if (!j.contains("tensors") || !j["tensors"].is_object()) throw bad("no \"tensors\" object");
  CalibrationTable table;
  table.calibrator = j.contains("calibrator") && j["calibrator"].is_string() ? j["calibrator"].get<std::string>() : "";
  if (j.contains("percentile") && j["percentile"].is_number()) table.percentile = j["percentile"].get<double>();
  if (j.contains("batches") && j["batches"].is_number_integer()) table.batches = j["batches"].get<int64_t>();
  for (const auto& [name, r] : j["tensors"].items()) {
    if (!r.is_object() || !r.contains("amax") || !r["amax"].is_number())
      throw bad(fmt::format("tensor '{}' has no numeric \"amax\"", name));
    TensorRange range;
    range.amax = r["amax"].get<double>();
    if (!std::isfinite(range.amax) || range.amax < 0)
      throw bad(fmt::format("tensor '{}': amax {} is not a finite non-negative number", name, range.amax));
    if (r.contains("min") && r["min"].is_number()) range.min = r["min"].get<double>();
    if (r.contains("max") && r["max"].is_number()) range.max = r["max"].get<double>();
    if (r.contains("elements") && r["elements"].is_number_integer()) range.elements = r["elements"].get<int64_t>();
    if (r.contains("error") && r["error"].is_number() && std::isfinite(r["error"].get<double>()))
      range.error = r["error"].get<double>();
    table.tensors[name] = range;
  }
  return table;
}

std::string WorstQuantizationErrors(const CalibrationTable& table, size_t n) {
  std::vector<std::pair<double, const std::string*>> known;
  for (const auto& [name, r] : table.tensors)
    if (r.error >= 0) known.emplace_back(r.error, &name);
  std::stable_sort(known.begin(), known.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out;
  for (size_t i = 0; i < known.size() && i < n; ++i) {
    const TensorRange& r = table.tensors.at(*known[i].second);
    out += fmt::format("  {}: {:.2e} (amax {:.4g}, |x| up to {:.4g})\n", *known[i].second, known[i].first, r.amax,
                       std::max(std::fabs(r.min), std::fabs(r.max)));
  }
  return out;
}

double QuantizationError(const std::vector<int64_t>& histogram, double max_abs, double amax) {
  if (histogram.empty() || !(max_abs > 0)) return 0;
  const double width = max_abs / static_cast<double>(histogram.size());
  const double step = amax / 127.0;
  constexpr int kSamples = 16;  // points per bin (midpoints of equal parts)
  double err = 0, total = 0;
  for (size_t b = 0; b < histogram.size(); ++b) {
    if (histogram[b] == 0) continue;
    double e = 0, t = 0;
    for (int k = 0; k < kSamples; ++k) {
      const double x = (static_cast<double>(b) + (k + 0.5) / kSamples) * width;
      const double q = amax <= 0 ? 0 : x >= amax ? amax : std::nearbyint(x / step) * step;
      e += (x - q) * (x - q);
      t += x * x;
    }
    err += e * static_cast<double>(histogram[b]);
    total += t * static_cast<double>(histogram[b]);
  }
  return total > 0 ? std::sqrt(err / total) : 0;
}

std::vector<ir::ValueId> QuantizableActivations(const ir::Graph& graph) {
  static const std::set<std::string> kOps = {"MatMul", "BatchMatMul", "Conv2D", "DepthwiseConv2D", "Conv3D"};
  std::vector<ir::ValueId> out;
  std::set<ir::ValueId> seen;
  for (ir::NodeId id : graph.TopologicalOrder()) {
    const ir::Node& n = graph.node(id);
    if (!kOps.count(n.op)) continue;
    // Operands 0 and 1 (a bias input of a fused MatMul stays float).
    for (size_t i = 0; i < std::min<size_t>(2, n.inputs.size()); ++i) {
      const ir::ValueId v = n.inputs[i];
      if (graph.ConstantOf(v) || graph.value(v).dtype != DType::kFloat32 || !seen.insert(v).second) continue;
      out.push_back(v);
    }
  }
  return out;
}

std::vector<ir::ValueId> ResidualActivations(const ir::Graph& graph) {
  const auto consumers = graph.Consumers();
  std::vector<ir::ValueId> out;
  for (ir::NodeId id : graph.TopologicalOrder()) {
    const ir::Node& n = graph.node(id);
    if ((n.op != "Conv2D" && n.op != "DepthwiseConv2D") || n.outputs.empty()) continue;
    const ir::ValueId v = n.outputs[0];
    const auto& readers = consumers[static_cast<size_t>(v)];
    if (graph.value(v).dtype != DType::kFloat32 || readers.size() != 1 || ir::IsGraphOutput(graph, v)) continue;
    // A join of two tensors of one shape (not a bias Add of a constant, not a broadcast).
    const ir::Node& add = graph.node(readers[0]);
    if (add.op != "Add" || add.inputs.size() != 2 || add.inputs[0] == add.inputs[1]) continue;
    const ir::ValueId other = add.inputs[0] == v ? add.inputs[1] : add.inputs[0];
    if (!graph.ConstantOf(other) && ir::SameShape(graph.value(other).shape, graph.value(v).shape)) out.push_back(v);
  }
  return out;
}

std::vector<ir::ValueId> CalibratedActivations(const ir::Graph& graph) {
  std::vector<ir::ValueId> out = QuantizableActivations(graph);
  const std::set<ir::ValueId> seen(out.begin(), out.end());
  for (ir::ValueId v : ResidualActivations(graph))
    if (!seen.count(v)) out.push_back(v);
  return out;
}

double PercentileThreshold(const std::vector<int64_t>& histogram, double max_abs, double percentile) {
  int64_t total = 0;
  for (int64_t c : histogram) total += c;
  if (total == 0 || histogram.empty()) return 0;
  const double width = max_abs / static_cast<double>(histogram.size());
  const double wanted = std::clamp(percentile, 0.0, 100.0) / 100.0 * static_cast<double>(total);
  int64_t running = 0;
  for (size_t i = 0; i < histogram.size(); ++i) {
    running += histogram[i];
    if (static_cast<double>(running) >= wanted) return static_cast<double>(i + 1) * width;
  }
  return max_abs;
}

double EntropyThreshold(const std::vector<int64_t>& counts, double max_abs) {
  // The zero bin (ReLU outputs, image background) is set to its neighbour's count, as NVIDIA's
  // pytorch-quantization does: a spike there would make the best 128-level fit the one that
  // spends its levels near zero and clips the informative large values.
  std::vector<int64_t> histogram = counts;
  if (histogram.size() > 1) histogram[0] = histogram[1];
  const int bins = static_cast<int>(histogram.size());
  if (bins <= kInt8Levels) return max_abs;
  int64_t total = 0;
  for (int64_t c : histogram) total += c;
  if (total == 0) return 0;
  const double width = max_abs / bins;
  double best_kl = std::numeric_limits<double>::infinity();
  int best = bins;
  std::vector<double> p, q;
  for (int i = kInt8Levels; i <= bins; ++i) {
    // P: the first i bins, the outliers beyond them clipped into the last; Q: those i bins
    // (without the outliers) merged into 128 levels and spread back over their non-empty bins.
    p.assign(histogram.begin(), histogram.begin() + i);
    for (int k = i; k < bins; ++k)
      p[static_cast<size_t>(i - 1)] += static_cast<double>(histogram[static_cast<size_t>(k)]);
    q.assign(static_cast<size_t>(i), 0.0);
    const double merged = static_cast<double>(i) / kInt8Levels;
    for (int level = 0; level < kInt8Levels; ++level) {
      const int start = static_cast<int>(std::floor(level * merged));
      const int end = level == kInt8Levels - 1 ? i : static_cast<int>(std::floor((level + 1) * merged));
      double sum = 0;
      int nonzero = 0;
      for (int k = start; k < end; ++k) {
        sum += static_cast<double>(histogram[static_cast<size_t>(k)]);
        nonzero += histogram[static_cast<size_t>(k)] != 0;
      }
      if (nonzero == 0) continue;
      for (int k = start; k < end; ++k)
        if (histogram[static_cast<size_t>(k)] != 0) q[static_cast<size_t>(k)] = sum / nonzero;
    }
    double p_sum = 0, q_sum = 0;
    for (int k = 0; k < i; ++k) {
      p_sum += p[static_cast<size_t>(k)];
      q_sum += q[static_cast<size_t>(k)];
    }
    if (p_sum <= 0 || q_sum <= 0) continue;
    double kl = 0;
    for (int k = 0; k < i && std::isfinite(kl); ++k) {
      const double pk = p[static_cast<size_t>(k)] / p_sum, qk = q[static_cast<size_t>(k)] / q_sum;
      if (pk <= 0) continue;
      kl = qk <= 0 ? std::numeric_limits<double>::infinity() : kl + pk * std::log(pk / qk);
    }
    // Ties go to the larger threshold: data of a few discrete values (images of 17 grey levels)
    // fit perfectly at many thresholds, and only the largest of those clips nothing.
    if (kl <= best_kl) {
      best_kl = kl;
      best = i;
    }
  }
  return best * width;
}

namespace {

bool IsQuantizedOp(const std::string& op) {
  return op == "MatMul" || op == "BatchMatMul" || op == "Conv2D" || op == "DepthwiseConv2D" || op == "Conv3D";
}

// The output channels of a constant weight: how many, and the stride between one channel's
// consecutive elements and between channels, in the row-major layout. MatMul [k, n] (or [n, k]
// transposed) and batched [..., k, n]: per column n; Conv2D/Conv3D [..., in, out]: per out;
// DepthwiseConv2D [h, w, c, m]: per (c, m).
struct Channels {
  int64_t count = 1, inner = 1;  // element (c, i) of channel c at (i / inner) * count * inner + c * inner + i % inner
};

Channels ChannelsOf(const ir::Node& n, const Tensor& w) {
  Channels c;
  const int r = w.rank();
  if (r == 0) return c;
  if (n.op == "DepthwiseConv2D" && r == 4) {
    c.count = w.dim(2) * w.dim(3);
    return c;
  }
  const bool transposed = n.attrs.GetOr<bool>(n.op == "BatchMatMul" ? "adj_y" : "transpose_b", false);
  if ((n.op == "MatMul" || n.op == "BatchMatMul") && transposed && r >= 2) {
    c.count = w.dim(r - 2);
    c.inner = w.dim(r - 1);
    return c;
  }
  c.count = w.dim(r - 1);
  return c;
}

// FP8: RoundFloat8E4M3(x / scale) * scale with one scale for the tensor (amax / 448).
Tensor Float8QuantDequantWeights(const Tensor& w) {
  const int64_t total = w.num_elements();
  const float* src = w.data<float>();
  float amax = 0;
  for (int64_t k = 0; k < total; ++k)
    if (std::isfinite(src[k])) amax = std::max(amax, std::fabs(src[k]));
  Tensor out(DType::kFloat32, w.shape());
  float* dst = out.data<float>();
  ir::elementwise::State state;
  const float scale = amax / 448.0f;
  for (int64_t k = 0; k < total; ++k)
    dst[k] = amax == 0 || !std::isfinite(src[k])
                 ? (amax == 0 ? 0.0f : src[k])
                 : ir::elementwise::RoundFloat8E4M3::Apply<float>(src[k] / scale, state) * scale;
  return out;
}

// round(clip(x / scale, -127, 127)) * scale per output channel, in float32.
Tensor QuantDequantWeights(const ir::Node& n, const Tensor& w) {
  const Channels ch = ChannelsOf(n, w);
  const int64_t total = w.num_elements();
  const float* src = w.data<float>();
  std::vector<float> amax(static_cast<size_t>(ch.count), 0.0f);
  auto channel = [&](int64_t k) { return (k / ch.inner) % ch.count; };
  for (int64_t k = 0; k < total; ++k) {
    float& a = amax[static_cast<size_t>(channel(k))];
    if (std::isfinite(src[k])) a = std::max(a, std::fabs(src[k]));
  }
  Tensor out(DType::kFloat32, w.shape());
  float* dst = out.data<float>();
  for (int64_t k = 0; k < total; ++k) {
    const float a = amax[static_cast<size_t>(channel(k))];
    if (a == 0 || !std::isfinite(src[k])) {
      dst[k] = a == 0 ? 0.0f : src[k];
      continue;
    }
    const float scale = a / 127.0f;
    dst[k] = std::nearbyint(std::clamp(src[k] / scale, -127.0f, 127.0f)) * scale;
  }
  return out;
}

}  // namespace

namespace {

bool Matches(const std::string& pattern, const std::string& name) {
  if (!pattern.empty() && pattern.back() == '*')
    return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == name;
}

// The pattern of `keep` that names node `n` (its name, op, source op or a float input), or null.
const std::string* KeptBy(const ir::Graph& graph, const ir::Node& n, const std::vector<std::string>& keep) {
  for (const std::string& p : keep) {
    if (Matches(p, n.name) || Matches(p, n.op) || (!n.source_op.empty() && Matches(p, n.source_op))) return &p;
    for (size_t i = 0; i < 2 && i < n.inputs.size(); ++i)
      if (!graph.ConstantOf(n.inputs[i]) && Matches(p, graph.value(n.inputs[i]).name)) return &p;
  }
  return nullptr;
}

}  // namespace

Quantization InsertQuantDequant(ir::Graph& graph, const CalibrationTable& table, const std::vector<std::string>& keep,
                                QuantFormat format) {
  const bool fp8 = format == QuantFormat::kFloat8E4M3;
  const char* what = fp8 ? "FP8" : "INT8";
  const std::string tag = fp8 ? "/fp8" : "/int8";
  Quantization done;
  std::set<std::string> used;  // patterns of `keep` that matched a layer
  ir::NameGen names(graph);
  std::map<ir::ValueId, ir::ValueId> quantized;  // activation -> its quantize-dequantize
  auto scalar = [&](const std::string& name, float value) {
    return graph.AddConstant(names.Make(name), Tensor::Scalar(DType::kFloat32, value));
  };
  auto op = [&](const char* type, const std::string& name, std::vector<ir::ValueId> inputs) {
    ir::Node& node = graph.AddNode(type, names.Make(name), std::move(inputs), 1);
    const ir::NodeId id = node.id;
    ir::InferNode(graph, id);
    return graph.node(id).outputs[0];
  };
  const std::vector<ir::ValueId> residuals = ResidualActivations(graph);  // before the graph changes
  const std::vector<ir::NodeId> order = graph.TopologicalOrder();
  for (ir::NodeId id : order) {
    if (!IsQuantizedOp(graph.node(id).op)) continue;
    if (const std::string* p = KeptBy(graph, graph.node(id), keep)) {
      used.insert(*p);
      done.kept.push_back(graph.node(id).name);
      continue;
    }
    for (size_t i = 0; i < 2 && i < graph.node(id).inputs.size(); ++i) {
      const ir::ValueId v = graph.node(id).inputs[i];
      if (graph.value(v).dtype != DType::kFloat32) continue;
      if (const Tensor* w = graph.ConstantOf(v)) {
        const ir::Node& n = graph.node(id);
        const ir::ValueId q = graph.AddConstant(names.Make(graph.value(v).name + tag),
                                                fp8 ? Float8QuantDequantWeights(*w) : QuantDequantWeights(n, *w));
        graph.node(id).inputs[i] = q;
        ++done.weights;
        continue;
      }
      auto have = quantized.find(v);
      if (have == quantized.end()) {
        const std::string name = graph.value(v).name;
        auto range = table.tensors.find(name);
        if (range == table.tensors.end())
          throw Error(ErrorCode::kInvalidArgument,
                      fmt::format("{}: the calibration table has no range for tensor '{}' (input {} of node '{}', {})",
                                  what, name, i, graph.node(id).name, graph.node(id).op));
        const double amax = range->second.amax;
        ir::ValueId q = v;
        if (amax > 0 && fp8) {
          const float scale = static_cast<float>(amax / 448.0);
          ir::ValueId t = op("Mul", name + "/fp8/scaled", {v, scalar(name + "/fp8/inv_scale", 1.0f / scale)});
          t = op("RoundFloat8E4M3", name + "/fp8/rounded", {t});
          q = op("Mul", name + "/fp8/dequantized", {t, scalar(name + "/fp8/scale", scale)});
        } else if (amax > 0) {
          const float scale = static_cast<float>(amax / 127.0);
          ir::ValueId t = op("Mul", name + "/int8/scaled", {v, scalar(name + "/int8/inv_scale", 1.0f / scale)});
          t = op("Maximum", name + "/int8/low", {t, scalar(name + "/int8/qmin", -127.0f)});
          t = op("Minimum", name + "/int8/high", {t, scalar(name + "/int8/qmax", 127.0f)});
          t = op("Round", name + "/int8/rounded", {t});
          q = op("Mul", name + "/int8/dequantized", {t, scalar(name + "/int8/scale", scale)});
        }
        if (q != v) graph.node(graph.value(q).producer).attrs.Set(ir::kImplicitQuantization, true);
        have = quantized.emplace(v, q).first;
        ++done.activations;
      }
      graph.node(id).inputs[i] = have->second;
    }
  }
  for (ir::ValueId v : residuals) {
    const auto range = table.tensors.find(graph.value(v).name);
    ir::Node& producer = graph.node(graph.value(v).producer);
    if (range == table.tensors.end() || !(range->second.amax > 0) || !std::isfinite(range->second.amax)) continue;
    if (const std::string* p = KeptBy(graph, producer, keep)) {
      used.insert(*p);
      continue;
    }
    producer.attrs.Set(ir::kCalibratedOutputAmax, range->second.amax);
    ++done.residual_ranges;
  }
  for (const std::string& p : keep)
    if (!used.count(p))
      throw Error(
          ErrorCode::kInvalidArgument,
          fmt::format("{}: keep_precision '{}' matches no quantizable layer (a convolution or matrix product: its node "
                      "name, op type or an input tensor's name)",
                      what, p));
  return done;
}

}  // namespace kiln::convert
