// kiln::Converter: TF-TRT's convert() / build() / save() / summary() on Kiln's IR.
#include "kiln/converter.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include <fmt/format.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "convert/calibration_table.h"
#include "convert/converted_model.h"
#include "convert/engine_file.h"
#include "convert/kiln_file.h"
#include "convert/profiles.h"
#include "convert/report.h"
#include "convert/segment_rewrite.h"
#include "convert/segmenter.h"
#include "api/converted_model_loader.h"
#include "api/summary.h"
#include "api/model_format.h"
#include "ir/passes/pass.h"
#include "kiln/half.h"
#include "kiln/version.h"
#include "runtime/calibration.h"
#include "runtime/converted_graph.h"
#include "api/import_pipeline.h"
#include "api/signature_io.h"
#include "common/file_checks.h"

namespace kiln {
namespace {

tfproto::TensorInfo TensorInfoOf(const TensorSpec& spec) {
  tfproto::TensorInfo info;
  info.set_name(spec.name);
  info.set_dtype(static_cast<int32_t>(spec.dtype));
  tfproto::TensorShapeProto* shape = info.mutable_tensor_shape();
  if (!spec.rank_known) shape->set_unknown_rank(true);
  for (int64_t d : spec.dims) shape->add_dim()->set_size(d);
  return info;
}

// The SignatureDef a converted SavedModel is saved with: keys are the signature's input and output
// names (the graph's), tensor names are rewritten to the converted graph's on write.
tfproto::SignatureDef SignatureFromSpecs(const std::vector<TensorSpec>& inputs, const std::vector<TensorSpec>& outputs,
                                         const std::string& method_name) {
  tfproto::SignatureDef sig;
  sig.set_method_name(method_name);
  for (const TensorSpec& s : inputs) (*sig.mutable_inputs())[s.name] = TensorInfoOf(s);
  for (const TensorSpec& s : outputs) (*sig.mutable_outputs())[s.name] = TensorInfoOf(s);
  return sig;
}

}  // namespace

struct Converter::Impl {
  std::string dir;
  std::vector<std::string> tags;
  std::string signature_key;
  ConversionParams params;
  Precision precision = Precision::kFP32;
  ProfileStrategy strategy = ProfileStrategy::kRange;

  tfproto::SignatureDef signature;  // what the converted SavedModel's signature says
  std::shared_ptr<const backend::Backend> backend;
  std::shared_ptr<ir::Graph> graph;  // the converted graph
  std::vector<TensorSpec> input_specs, output_specs;
  std::shared_ptr<runtime::ConvertedGraph> runner;
  std::unique_ptr<Signature> converted_signature;  // runs `runner` (Converter::signature)
  std::vector<convert::Rejection> rejections;
  api::ConversionCounts counts;
  bool converted = false;
  bool built = false;
  std::optional<convert::CalibrationTable> calibration;  // INT8 / FP8 with use_calibration
  convert::Quantization int8;                            // what INT8 / FP8 quantized

  // INT8 / FP8 with calibration: the table (read from params.calibration_table, or computed from
  // the batches `fn` yields) becomes quantize-dequantize steps in `graph`.
  void Quantize(ir::Graph& graph, const InputFn& fn);

  // Progress and engine messages: to params.log, or stderr when it is unset.
  runtime::LogFn LogFunction() const {
    if (params.log) return params.log;
    return [](const std::string& message) { std::fprintf(stderr, "%s\n", message.c_str()); };
  }
  void Log(const std::string& message) const { LogFunction()(message); }

  runtime::EngineSettings Settings() const {
    runtime::EngineSettings s;
    s.compile.precision = precision;
    s.compile.max_workspace_bytes = static_cast<size_t>(params.max_workspace_size_bytes);
    s.maximum_cached_engines = static_cast<size_t>(params.maximum_cached_engines);
    s.allow_build_at_runtime = params.allow_build_at_runtime;
    s.use_dynamic_shape = params.use_dynamic_shape;
    return s;
  }

  // The converted model as save() and save_kiln_file() write it; `files` counts its engine files.
  convert::ConvertedModel Assemble(bool save_gpu_specific_engines, size_t& files) const;
  // save() and save_kiln_file(): checks, assembles, writes with `write` and logs (`call` and
  // `unit` name the call and what it counts in messages).
  void Save(const char* call, const std::string& path, bool save_gpu_specific_engines, const char* unit,
            const std::function<std::string(const std::string&, const convert::ConvertedModel&)>& write) const;
  // TensorFlow sources: the signature's TF graph as imported (the per-engine layout of saved_model.pb).
  std::shared_ptr<const TfSourceGraph> tf_source;
};

Converter::Converter(std::string input_saved_model_dir, std::vector<std::string> input_saved_model_tags,
                     std::string input_saved_model_signature_key, ConversionParams params)
    : impl_(std::make_unique<Impl>()) {
  params.Validate();
  impl_->dir = std::move(input_saved_model_dir);
  impl_->tags = input_saved_model_tags.empty() ? std::vector<std::string>{"serve"} : std::move(input_saved_model_tags);
  impl_->signature_key = input_saved_model_signature_key.empty() ? "serving_default" : std::move(input_saved_model_signature_key);
  impl_->precision = ParsePrecision(params.precision_mode);
  impl_->strategy = ParseProfileStrategy(params.dynamic_shape_profile_strategy);
  impl_->params = std::move(params);
  impl_->backend = backend::MakeBackend(impl_->params.device);
}

Converter::~Converter() = default;

namespace {

// A calibration table file: a regular file of at most 64 MiB (a table holds one line per tensor).
std::string ReadCalibrationTableFile(const std::string& path) {
  constexpr uintmax_t kMaxBytes = uintmax_t{64} << 20;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("calibration table '{}' is not a regular file", path));
  return ReadRegularFile(path, kMaxBytes, "calibration table");
}

}  // namespace

void Converter::Impl::Quantize(ir::Graph& graph, const InputFn& fn) {
  const auto start = std::chrono::steady_clock::now();
  if (!params.calibration_table.empty()) {
    calibration = convert::CalibrationTable::FromJson(ReadCalibrationTableFile(params.calibration_table),
                                                      params.calibration_table);
  } else {
    std::vector<std::vector<Tensor>> batches;
    while (std::optional<std::vector<Tensor>> batch = fn()) batches.push_back(std::move(*batch));
    if (batches.empty()) throw Error(ErrorCode::kInvalidArgument, "calibration_input_fn yielded no batches");
    runtime::CalibrationOptions options;
    options.calibrator = params.calibrator.empty()
                             ? (precision == Precision::kFP8 ? convert::Calibrator::kMinMax : convert::Calibrator::kEntropy)
                             : convert::ParseCalibrator(params.calibrator);
    options.percentile = params.calibration_percentile;
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(10);
    options.progress = [this, &last](const std::string& line) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::seconds(2)) return;  // a line every two seconds at most
      last = now;
      Log("kiln: " + line);
    };
    // The FP32 model runs on the CPU backend's engines: oneDNN is orders of magnitude faster
    // than the reference kernels, and host outputs whatever device the INT8 engines are for.
    options.engines = backend::MakeBackend("cpu");
    calibration = runtime::Calibrate(std::make_shared<const ir::Graph>(graph.Clone()), batches, options);
  }
  const bool fp8 = precision == Precision::kFP8;
  int8 = convert::InsertQuantDequant(graph, *calibration, params.keep_precision,
                                     fp8 ? convert::QuantFormat::kFloat8E4M3 : convert::QuantFormat::kInt8);
  ir::Verify(graph);
  Log(fmt::format("kiln: {}: {} activation tensor(s) quantized per tensor and {} weight(s) per {} "
                  "({} calibration{}, {:.2f} s)",
                  PrecisionName(precision), int8.activations, int8.weights, fp8 ? "tensor (E4M3)" : "output channel",
                  calibration->calibrator.empty() ? "given" : calibration->calibrator,
                  params.calibration_table.empty() ? fmt::format(" over {} batch(es)", calibration->batches)
                                                   : fmt::format(" table {}", params.calibration_table),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()));
  if (int8.residual_ranges > 0)
    Log(
        fmt::format("kiln: {}: {} convolution result(s) read only by a residual Add carry their calibrated range "
                    "(a GPU engine may store them in {})",
                    PrecisionName(precision), int8.residual_ranges, fp8 ? "E4M3" : "int8"));
  if (!int8.kept.empty())
    Log(fmt::format("kiln: {}: {} layer(s) kept in floating point (keep_precision): {}", PrecisionName(precision),
                    int8.kept.size(), fmt::join(int8.kept, ", ")));
  // The table's error estimates are for int8 steps.
  if (const std::string worst = convert::WorstQuantizationErrors(*calibration, 5); !worst.empty() && !fp8)
    Log("kiln: INT8 quantization error on the calibration data (relative RMS), worst first:\n" + worst);
}

const Signature& Converter::signature() const {
  if (!impl_->converted) throw Error(ErrorCode::kFailedPrecondition, "signature() needs convert() first");
  return *impl_->converted_signature;
}

std::string Converter::calibration_table_json() const {
  return impl_->calibration ? impl_->calibration->ToJson() : std::string();
}

void Converter::convert(const InputFn& calibration_input_fn) {
  Impl& m = *impl_;
  if (m.converted) throw Error(ErrorCode::kFailedPrecondition, "convert() was already called");
  const bool quantized = m.precision == Precision::kINT8 || m.precision == Precision::kFP8;
  const bool calibrate = quantized && m.params.use_calibration;
  const std::string_view name = PrecisionName(m.precision);
  if (m.precision == Precision::kFP8 && !m.params.use_calibration)
    throw Error(ErrorCode::kInvalidArgument,
                "precision_mode FP8 needs use_calibration=true: Kiln reads no FP8 quantization from models yet, so FP8 "
                "ranges come from calibration (calibration_input_fn, CLI: --calibration-data DIR) or a calibration table");
  if (calibration_input_fn && !calibrate)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("calibration_input_fn was given, but precision_mode is {}{}: calibration is only used "
                            "for INT8 and FP8 with use_calibration=true",
                            name, quantized ? " with use_calibration=false" : ""));
  if (calibrate && !calibration_input_fn && m.params.calibration_table.empty())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("precision_mode {} with use_calibration=true needs calibration data: pass calibration_input_fn "
                            "to convert() (CLI: --calibration-data DIR) or a calibration table (calibration_table, CLI: "
                            "--calibration-table FILE){}",
                            name, m.precision == Precision::kINT8 ? "; or set use_calibration=false for a model that carries "
                                                                    "its own quantization"
                                                                  : ""));
  if (calibrate && calibration_input_fn && !m.params.calibration_table.empty())
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("both calibration_input_fn and calibration_table '{}' were given: use one",
                            m.params.calibration_table));
  const auto start = std::chrono::steady_clock::now();
  frontend::ImportedSignature source = api::OpenSource(m.dir, m.tags)->Import(m.signature_key);
  ir::Graph imported = std::move(source.graph);
  m.tf_source = std::move(source.tf_source);
  api::OptimizeImportedGraph(imported, /*verify=*/true);
  if (calibrate) m.Quantize(imported, calibration_input_fn);
  m.graph = std::make_shared<ir::Graph>(std::move(imported));
  m.input_specs = api::SpecsOf(*m.graph, m.graph->inputs(), m.graph->input_names());
  m.output_specs = api::SpecsOf(*m.graph, m.graph->outputs(), m.graph->output_names());
  m.signature = SignatureFromSpecs(m.input_specs, m.output_specs, source.method_name);

  convert::SegmenterOptions options;
  options.minimum_segment_size = m.params.minimum_segment_size;
  options.denylist = m.params.denylist;
  const backend::Backend& backend = *m.backend;
  options.unsupported = [&backend](const ir::Graph& g, const ir::Node& n) { return backend.Unsupported(g, n); };
  convert::SegmentationResult result = convert::FindSegments(*m.graph, options);
  m.counts = api::CountConversion(*m.graph, result);
  m.rejections = std::move(result.rejections);
  convert::ReplaceSegments(*m.graph, result.segments);
  ir::Verify(*m.graph);
  m.runner = std::make_shared<runtime::ConvertedGraph>(m.graph, m.backend, m.Settings(), m.LogFunction());
  m.converted_signature = api::MakeConvertedSignature(m.signature_key, m.graph, m.runner);
  m.converted = true;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.Log(fmt::format("kiln: converted signature '{}' of {} in {:.2f} s: {} engine node(s), {:.2f}% of ops converted "
                        "[{}/{}]",
                        m.signature_key, m.dir, seconds, m.runner->engine_nodes().size(), m.counts.Percent(),
                        m.counts.converted, m.counts.total));
}

void Converter::build(const InputFn& input_fn) {
  Impl& m = *impl_;
  if (!m.converted) throw Error(ErrorCode::kFailedPrecondition, "build() needs convert() first");
  if (m.built) throw Error(ErrorCode::kFailedPrecondition, "build() was already called (it can be called once)");
  if (!input_fn) throw Error(ErrorCode::kInvalidArgument, "build() needs an input_fn that yields input lists");
  m.built = true;
  std::map<std::string, std::vector<std::vector<Shape>>> shapes;
  int sets = 0;
  while (std::optional<std::vector<Tensor>> inputs = input_fn()) {
    ++sets;
    if (inputs->size() != m.input_specs.size())
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("input_fn set {} has {} tensors; the signature takes {} (in this order: {})", sets,
                              inputs->size(), m.input_specs.size(), api::SpecNames(m.input_specs)));
    std::map<std::string, Tensor> named;
    for (size_t i = 0; i < inputs->size(); ++i) named[m.input_specs[i].name] = (*inputs)[i];
    std::vector<Tensor> ordered = api::BindInputs(m.signature_key, m.input_specs, named);
    // Shape inference tells the engines' input shapes without running the model; a graph whose
    // shapes depend on values runs natively once to record them.
    if (!m.runner->InferEngineShapes(ordered, shapes)) m.runner->RunRecordingShapes(std::move(ordered), shapes);
  }
  if (sets == 0) throw Error(ErrorCode::kInvalidArgument, "build(): input_fn yielded no input sets");

  for (const auto& node : m.runner->engine_nodes()) {
    auto it = shapes.find(node->name());
    if (it == shapes.end()) continue;  // not reached by these inputs (e.g. inside an untaken branch)
    std::vector<backend::Profile> profiles =
        // Implicit batch mode builds the same engines as the ImplicitBatchModeCompatible strategy.
        convert::MakeProfiles(m.params.use_dynamic_shape ? m.strategy : ProfileStrategy::kImplicitBatchModeCompatible,
                              it->second);
    node->Reserve(std::max<size_t>(static_cast<size_t>(m.params.maximum_cached_engines), profiles.size()));
    for (size_t i = 0; i < profiles.size(); ++i) {
      m.Log(fmt::format("kiln: building engine {} ({} nodes), profile {}/{}: {}", node->name(),
                            node->segment().NumLiveNodes(), i + 1, profiles.size(), profiles[i].ToString()));
      node->Build(profiles[i]);
    }
  }
}

namespace {

// Inputs for build_profiles' native runs: random floats, zeros for integers and bools (valid token
// ids and indices), empty strings.
Tensor ProfileInput(DType dtype, const Shape& shape, std::mt19937_64& rng) {
  Tensor t(dtype, shape);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = t.num_elements();
  switch (dtype) {
    case DType::kFloat32: for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = normal(rng); break;
    case DType::kFloat64: for (int64_t i = 0; i < n; ++i) t.data<double>()[i] = normal(rng); break;
    case DType::kFloat16: for (int64_t i = 0; i < n; ++i) t.data<Half>()[i] = Half(normal(rng)); break;
    case DType::kBFloat16: for (int64_t i = 0; i < n; ++i) t.data<BFloat16>()[i] = BFloat16(normal(rng)); break;
    default: break;  // zero-filled
  }
  return t;
}

// kInvalidArgument unless `profile` gives every signature input a valid range the signature accepts.
void CheckShapeProfile(const InputShapeProfile& profile, size_t index, const std::vector<TensorSpec>& specs) {
  auto fail = [&](const std::string& input, const std::string& what) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("build_profiles: profile {}: input '{}': {}", index, input, what));
  };
  for (const auto& [name, range] : profile) {
    const TensorSpec* spec = nullptr;
    for (const TensorSpec& s : specs)
      if (s.name == name) spec = &s;
    if (!spec) fail(name, fmt::format("the signature has no input of that name (its inputs: {})", api::SpecNames(specs)));
    const std::pair<const char*, const Shape*> shapes[] = {{"min", &range.min}, {"opt", &range.opt}, {"max", &range.max}};
    for (const auto& [which, shape] : shapes) {
      if (shape->size() != range.min.size())
        fail(name, fmt::format("min {} and {} {} have different ranks", ShapeToString(range.min), which, ShapeToString(*shape)));
      if (spec->rank_known && shape->size() != spec->dims.size())
        fail(name, fmt::format("{} shape {} has rank {}, the signature's input is {}", which, ShapeToString(*shape), shape->size(),
                               spec->ShapeString()));
      for (size_t d = 0; d < shape->size(); ++d) {
        if ((*shape)[d] < 0) fail(name, fmt::format("{} shape {} has a negative dim", which, ShapeToString(*shape)));
        if (spec->rank_known && spec->dims[d] >= 0 && spec->dims[d] != (*shape)[d])
          fail(name, fmt::format("{} shape {}: dim {} must be {} (the signature's input is {})", which, ShapeToString(*shape), d,
                                 spec->dims[d], spec->ShapeString()));
      }
    }
    for (size_t d = 0; d < range.min.size(); ++d)
      if (range.min[d] > range.opt[d] || range.opt[d] > range.max[d])
        fail(name, fmt::format("dim {} violates min <= opt <= max (min {}, opt {}, max {})", d, ShapeToString(range.min),
                               ShapeToString(range.opt), ShapeToString(range.max)));
  }
  for (const TensorSpec& s : specs)
    if (!profile.count(s.name)) fail(s.name, "no shape range given (every signature input needs one)");
}

// One engine profile from the input shapes an engine node saw in the min, opt and max runs:
// min/max per dim over every run (an engine node may run several times per run, in a loop, and
// not every dim grows with the signature's), opt from the opt run clamped to [min, max].
backend::Profile EngineProfile(const std::string& engine, const std::vector<std::vector<Shape>>* runs[3]) {
  std::optional<std::vector<Shape>> min, max, opt;
  for (int k = 0; k < 3; ++k) {
    if (!runs[k]) continue;
    for (const std::vector<Shape>& record : *runs[k]) {
      if (!min) min = max = record;
      if (record.size() != min->size())
        throw Error(ErrorCode::kInvalidArgument, fmt::format("build_profiles: engine {} saw {} inputs in one run and {} in another",
                                                             engine, min->size(), record.size()));
      for (size_t i = 0; i < record.size(); ++i) {
        if (record[i].size() != (*min)[i].size())
          throw Error(ErrorCode::kInvalidArgument,
                      fmt::format("build_profiles: engine {} input {} changes rank between runs ({} and {}): no single "
                                  "profile covers it",
                                  engine, i, ShapeToString((*min)[i]), ShapeToString(record[i])));
        for (size_t d = 0; d < record[i].size(); ++d) {
          (*min)[i][d] = std::min((*min)[i][d], record[i][d]);
          (*max)[i][d] = std::max((*max)[i][d], record[i][d]);
        }
        if (k == 1) {
          if (!opt) opt = record;
          for (size_t d = 0; d < record[i].size(); ++d) (*opt)[i][d] = std::max((*opt)[i][d], record[i][d]);
        }
      }
    }
  }
  if (!opt) opt = max;
  backend::Profile profile;
  for (size_t i = 0; i < min->size(); ++i) {
    Shape o = (*opt)[i];
    for (size_t d = 0; d < o.size(); ++d) o[d] = std::clamp(o[d], (*min)[i][d], (*max)[i][d]);
    profile.inputs.push_back({(*min)[i], std::move(o), (*max)[i]});
  }
  return profile;
}

}  // namespace

void Converter::build_profiles(const std::vector<InputShapeProfile>& profiles) {
  Impl& m = *impl_;
  if (!m.converted) throw Error(ErrorCode::kFailedPrecondition, "build_profiles() needs convert() first");
  if (m.built)
    throw Error(ErrorCode::kFailedPrecondition, "engines were already built (build() or build_profiles() can be called once)");
  if (!m.params.use_dynamic_shape)
    throw Error(ErrorCode::kFailedPrecondition,
                "build_profiles() builds engines for shape ranges: it needs ConversionParams::use_dynamic_shape = true");
  if (profiles.empty()) throw Error(ErrorCode::kInvalidArgument, "build_profiles() needs at least one profile");
  for (size_t p = 0; p < profiles.size(); ++p) CheckShapeProfile(profiles[p], p, m.input_specs);
  m.built = true;

  std::mt19937_64 rng(0);
  std::map<std::string, std::vector<backend::Profile>> engine_profiles;  // engine name -> profiles to build
  for (size_t p = 0; p < profiles.size(); ++p) {
    std::map<std::string, std::vector<std::vector<Shape>>> seen[3];
    static constexpr const char* kWhich[3] = {"min", "opt", "max"};
    auto shape_of = [&](const std::string& input, int k) -> const Shape& {
      const ShapeRange& range = profiles[p].at(input);
      return k == 0 ? range.min : k == 1 ? range.opt : range.max;
    };
    for (int k = 0; k < 3; ++k) {
      int same = -1;  // an earlier run at the same shapes (fixed shapes: min = opt = max) is reused
      for (int j = 0; j < k && same < 0; ++j) {
        bool equal = true;
        for (const TensorSpec& spec : m.input_specs) equal = equal && shape_of(spec.name, j) == shape_of(spec.name, k);
        if (equal) same = j;
      }
      if (same >= 0) {
        seen[k] = seen[same];
        continue;
      }
      std::map<std::string, Tensor> named;
      std::vector<std::string> described;
      for (const TensorSpec& spec : m.input_specs) {
        const Shape& shape = shape_of(spec.name, k);
        named[spec.name] = ProfileInput(spec.dtype, shape, rng);
        described.push_back(fmt::format("{}:{}", spec.name, ShapeToString(shape)));
      }
      const auto start = std::chrono::steady_clock::now();
      std::vector<Tensor> ordered = api::BindInputs(m.signature_key, m.input_specs, named);
      const bool inferred = m.runner->InferEngineShapes(ordered, seen[k]);
      if (!inferred) m.runner->RunRecordingShapes(std::move(ordered), seen[k]);
      std::string which = kWhich[k];
      for (int j = k + 1; j < 3; ++j) {
        bool equal = true;
        for (const TensorSpec& spec : m.input_specs) equal = equal && shape_of(spec.name, j) == shape_of(spec.name, k);
        if (equal) which += fmt::format(" = {}", kWhich[j]);
      }
      m.Log(fmt::format("kiln: profile {}/{}: {} at the {} shapes ({}) in {:.2f} s", p + 1, profiles.size(),
                            inferred ? "inferred the engines' shapes" : "ran the graph natively", which,
                            fmt::join(described, ", "),
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()));
    }
    for (const auto& node : m.runner->engine_nodes()) {
      const std::vector<std::vector<Shape>>* runs[3] = {};
      for (int k = 0; k < 3; ++k)
        if (auto it = seen[k].find(node->name()); it != seen[k].end()) runs[k] = &it->second;
      if (!runs[0] && !runs[1] && !runs[2]) continue;  // not reached (e.g. inside an untaken branch)
      backend::Profile profile = EngineProfile(node->name(), runs);
      std::vector<backend::Profile>& list = engine_profiles[node->name()];
      bool duplicate = false;
      for (const backend::Profile& q : list) duplicate = duplicate || convert::SameProfile(q, profile);
      if (!duplicate) list.push_back(std::move(profile));
    }
  }
  for (const auto& node : m.runner->engine_nodes()) {
    auto it = engine_profiles.find(node->name());
    if (it == engine_profiles.end()) {
      m.Log(fmt::format("kiln: engine {} was not reached by the profiles' runs; it is built at first use", node->name()));
      continue;
    }
    const std::vector<backend::Profile>& list = it->second;
    node->Reserve(std::max<size_t>(static_cast<size_t>(m.params.maximum_cached_engines), list.size()));
    for (size_t i = 0; i < list.size(); ++i) {
      m.Log(fmt::format("kiln: building engine {} ({} nodes), profile {}/{}: {}", node->name(),
                            node->segment().NumLiveNodes(), i + 1, list.size(), list[i].ToString()));
      node->Build(list[i]);
    }
  }
}

convert::ConvertedModel Converter::Impl::Assemble(bool save_gpu_specific_engines, size_t& files) const {
  const Impl& m = *this;
  convert::ConvertedModel model;
  model.tags = m.tags;
  model.signature_key = m.signature_key;
  model.signature = m.signature;
  model.graph = m.graph->Clone();
  model.tf_source = m.tf_source;
  nlohmann::json conversion = {
      {"kiln_version", KILN_VERSION},
      {"source_dir", m.dir},
      {"signature_key", m.signature_key},
      {"device", m.params.device},
      {"backend_device", m.backend->device()},
      {"precision_mode", std::string(PrecisionName(m.precision))},
      {"max_workspace_size_bytes", m.params.max_workspace_size_bytes},
      {"minimum_segment_size", m.params.minimum_segment_size},
      {"maximum_cached_engines", m.params.maximum_cached_engines},
      {"allow_build_at_runtime", m.params.allow_build_at_runtime},
      {"use_dynamic_shape", m.params.use_dynamic_shape},
      {"dynamic_shape_profile_strategy", std::string(ProfileStrategyName(m.strategy))},
      {"denylist", m.params.denylist},
      {"ops_converted", m.counts.converted},
      {"ops_total", m.counts.total},
  };
  if (m.precision == Precision::kINT8 || m.precision == Precision::kFP8) {
    // What INT8 (or FP8) did to the graph, and the table it used (the graph already holds the
    // quantization, so the table is for reuse: --calibration-table).
    nlohmann::json int8 = {{"use_calibration", m.params.use_calibration},
                           {"activations_quantized", m.int8.activations},
                           {"weights_quantized", m.int8.weights},
                           {"kept_in_float", m.int8.kept}};
    if (m.calibration) int8["calibration_table"] = nlohmann::json::parse(m.calibration->ToJson());
    conversion["int8"] = std::move(int8);
  }
  nlohmann::json rejections = nlohmann::json::array();
  for (const convert::Rejection& r : m.rejections)
    rejections.push_back({{"node", r.node}, {"op", r.op}, {"source_op", r.source_op}, {"reason", r.reason}});
  conversion["rejections"] = std::move(rejections);
  model.conversion_json = conversion.dump(2);
  files = 0;
  if (save_gpu_specific_engines) {
    for (const auto& node : m.runner->engine_nodes()) {
      for (const auto& engine : node->Engines()) {
        convert::EngineHeader header;
        header.kiln_version = KILN_VERSION;
        header.backend = m.backend->name();
        header.device = m.backend->device();
        header.precision = engine->precision();
        header.profile = engine->profile();
        header.engine_name = node->name();
        model.engine_files[node->name()].push_back(convert::WriteEngineFile(header, engine->Serialize()));
        ++files;
      }
    }
  }
  return model;
}

namespace {

// `inner` is `outer` or lies inside it (both as they resolve on disk, symlinks followed).
bool SameOrInside(const std::filesystem::path& inner, const std::filesystem::path& outer) {
  const std::filesystem::path rel = inner.lexically_relative(outer);
  return !rel.empty() && *rel.begin() != "..";
}

// Saving replaces `output` as a whole, so it must be neither the input model, nor inside it,
// nor around it.
void RefuseOverwritingTheInput(const std::string& input, const std::string& output) {
  std::error_code ec_in, ec_out;
  const std::filesystem::path in = std::filesystem::weakly_canonical(input, ec_in);
  const std::filesystem::path out = std::filesystem::weakly_canonical(output, ec_out);
  if (ec_in || ec_out) return;  // the write reports a path it cannot use
  if (SameOrInside(out, in))
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the output '{}' is the input model '{}' or inside it; saving there would overwrite the "
                            "model being converted: choose an output outside it",
                            output, input));
  if (SameOrInside(in, out))
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the output '{}' contains the input model '{}'; saving replaces the output as a whole and "
                            "would delete the input: choose another output",
                            output, input));
}

}  // namespace

void Converter::Impl::Save(const char* call, const std::string& path, bool save_gpu_specific_engines, const char* unit,
                           const std::function<std::string(const std::string&, const convert::ConvertedModel&)>& write) const {
  if (!converted) throw Error(ErrorCode::kFailedPrecondition, fmt::format("{}() needs convert() first", call));
  RefuseOverwritingTheInput(dir, path);
  size_t files = 0;
  const std::string layout = write(path, Assemble(save_gpu_specific_engines, files));
  Log(fmt::format("kiln: saved the converted model to {} ({} {}{})", path, files, unit,
                  save_gpu_specific_engines ? "" : "; device-specific engines not saved"));
  if (!layout.empty()) Log(fmt::format("kiln: TensorFlow layout of saved_model.pb: {}", layout));
}

void Converter::save(const std::string& output_saved_model_dir, bool save_gpu_specific_engines) {
  impl_->Save("save", output_saved_model_dir, save_gpu_specific_engines, "engine file(s)", convert::WriteConvertedModel);
}

void Converter::save_kiln_file(const std::string& path, bool save_gpu_specific_engines) {
  impl_->Save("save_kiln_file", path, save_gpu_specific_engines, "engine(s)",
              [](const std::string& file, const convert::ConvertedModel& model) {
                convert::WriteKilnFile(file, model);
                return std::string();
              });
}

std::string Converter::summary(int line_length, bool detailed) const {
  const Impl& m = *impl_;
  if (!m.converted) throw Error(ErrorCode::kFailedPrecondition, "summary() needs convert() first");
  return api::FormatSummary(*m.runner, m.counts, m.rejections, m.precision, line_length, detailed);
}

std::string Converter::non_conversion_report_csv() const {
  const Impl& m = *impl_;
  if (!m.converted) throw Error(ErrorCode::kFailedPrecondition, "the report needs convert() first");
  convert::NonConversionReport report;
  for (const auto& r : m.rejections) report.Add(r);
  return report.ToCsv();
}

}  // namespace kiln
