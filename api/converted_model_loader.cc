// Loading a converted model (a converted SavedModel directory or a .kiln file; both are read into
// a convert::ConvertedModel and loaded by the same code): the converted graph, its engine files (checked: format,
// Kiln version, backend, device, checksum) and a ConvertedGraph to run it. An engine file that
// cannot be used is reported once with the reason; its engine is rebuilt at first use when
// allow_build_at_runtime is set, otherwise the segment runs natively.
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "convert/calibration_table.h"
#include "convert/converted_model.h"
#include "convert/engine_file.h"
#include "convert/kiln_file.h"
#include "kiln/model.h"
#include "kiln/version.h"
#include "runtime/converted_graph.h"
#include "api/converted_model_loader.h"
#include "api/signature_io.h"
#include "api/summary.h"

namespace kiln::api {
namespace {

using runtime::ConvertedGraph;
using runtime::EngineNodeRuntime;
using runtime::LogFn;
using runtime::EngineSettings;
using runtime::EngineStats;

class ConvertedSignature final : public Signature {
 public:
  ConvertedSignature(std::string key, std::shared_ptr<ir::Graph> graph, std::shared_ptr<ConvertedGraph> runner)
      : key_(std::move(key)), graph_(std::move(graph)), runner_(std::move(runner)) {
    inputs_ = SpecsOf(*graph_, graph_->inputs(), graph_->input_names());
    outputs_ = SpecsOf(*graph_, graph_->outputs(), graph_->output_names());
  }
  const std::string& key() const override { return key_; }
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  size_t num_nodes() const override { return graph_->NumLiveNodes(); }
  RunStats stats() const override {
    const EngineStats& s = runner_->stats();
    return {s.engines_built.load(), s.engines_loaded.load(), s.engine_runs.load(), s.native_runs.load()};
  }
  std::map<std::string, Tensor> Run(const std::map<std::string, Tensor>& inputs) const override { return RunInto(inputs, {}); }

 protected:
  std::map<std::string, Tensor> RunInto(const std::map<std::string, Tensor>& inputs,
                                        const std::map<std::string, std::shared_ptr<Buffer>>& output_buffers) const override {
    std::vector<std::shared_ptr<Buffer>> buffers;
    if (!output_buffers.empty())
      for (const TensorSpec& spec : outputs_) {
        auto it = output_buffers.find(spec.name);
        buffers.push_back(it == output_buffers.end() ? nullptr : it->second);
      }
    return NameOutputs(outputs_, runner_->Run(BindInputs(key_, inputs_, inputs, input_device()), buffers));
  }
  Device input_device() const override { return runner_->backend().device_services().device(); }

 public:
  const ConvertedGraph& runner() const { return *runner_; }

 private:
  std::string key_;
  std::shared_ptr<ir::Graph> graph_;
  std::shared_ptr<ConvertedGraph> runner_;
  std::vector<TensorSpec> inputs_, outputs_;
};

class ConvertedModelImpl final : public Model {
 public:
  ConvertedModelImpl(std::string dir, std::string key, std::unique_ptr<Signature> signature)
      : dir_(std::move(dir)), key_(std::move(key)), signature_(std::move(signature)) {}
  const std::string& dir() const override { return dir_; }
  std::vector<std::string> signature_keys() const override { return {key_}; }
  const Signature& signature(const std::string& key) const override {
    if (key != key_)
      throw Error(ErrorCode::kNotFound, fmt::format("converted model '{}': signature '{}' not found; available: {}", dir_,
                                                    key, key_));
    return *signature_;
  }

 private:
  std::string dir_, key_;
  std::unique_ptr<Signature> signature_;
};

template <typename T>
T JsonOr(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  return it == j.end() ? fallback : it->get<T>();
}

}  // namespace

std::unique_ptr<Signature> MakeConvertedSignature(std::string key, std::shared_ptr<ir::Graph> graph,
                                                  std::shared_ptr<runtime::ConvertedGraph> runner) {
  return std::make_unique<ConvertedSignature>(std::move(key), std::move(graph), std::move(runner));
}

std::vector<Tensor> RunConvertedEngine(const Signature& signature, const std::string& engine, std::vector<Tensor> inputs) {
  const auto* converted = dynamic_cast<const ConvertedSignature*>(&signature);
  if (!converted)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("signature '{}' is not a converted model's: it has no engine '{}' to run", signature.key(),
                            engine));
  return converted->runner().RunEngine(engine, std::move(inputs));
}

struct LoadedParts {
  std::string key;
  std::shared_ptr<ir::Graph> graph;
  std::unique_ptr<ConvertedGraph> runner;
  nlohmann::json conversion;
  std::string tf_layout;  // how TensorFlow runs saved_model.pb (convert::TfLayoutLine)
};

// `dir` names the source in messages: a converted SavedModel directory or a .kiln file.
LoadedParts LoadParts(convert::ConvertedModel model, const std::string& dir, const LoadOptions& options) {
  const bool kiln_file = convert::IsKilnFile(dir);
  std::set<std::string> want(options.tags.begin(), options.tags.end()), have(model.tags.begin(), model.tags.end());
  if (want != have)
    throw Error(ErrorCode::kNotFound, fmt::format("{}: no MetaGraph with tags {{{}}}; the converted model has: {{{}}}",
                                                  kiln_file ? dir : dir + "/saved_model.pb", fmt::join(options.tags, ","),
                                                  fmt::join(model.tags, ",")));
  LogFn log = options.log ? options.log : LogFn([](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); });
  nlohmann::json conversion;
  try {
    conversion = nlohmann::json::parse(model.conversion_json);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kDataLoss, fmt::format("{}{} does not parse: {}", dir,
                                                  kiln_file ? ": conversion section" : "/assets/kiln/conversion.json", e.what()));
  }
  EngineSettings settings;
  settings.compile.precision = ParsePrecision(JsonOr<std::string>(conversion, "precision_mode", "FP32"));
  settings.compile.max_workspace_bytes = JsonOr<size_t>(conversion, "max_workspace_size_bytes", size_t{1} << 30);
  settings.maximum_cached_engines = JsonOr<size_t>(conversion, "maximum_cached_engines", 1);
  settings.allow_build_at_runtime = JsonOr<bool>(conversion, "allow_build_at_runtime", true);
  settings.use_dynamic_shape = JsonOr<bool>(conversion, "use_dynamic_shape", false);
  settings.compile.cuda_graphs = options.cuda_graphs;
  std::shared_ptr<const backend::Backend> backend = backend::MakeBackend(JsonOr<std::string>(conversion, "device", "cpu"));

  auto graph = std::make_shared<ir::Graph>(std::move(model.graph));
  auto runner = std::make_unique<ConvertedGraph>(graph, backend, settings, log);
  const std::string fallback = settings.allow_build_at_runtime ? "it will be rebuilt at first use"
                                                               : "its segment will run natively (allow_build_at_runtime is false)";
  for (const auto& [engine_name, files] : model.engine_files) {
    EngineNodeRuntime* node = nullptr;
    for (const auto& n : runner->engine_nodes())
      if (n->name() == engine_name) node = n.get();
    if (!node) {
      log(fmt::format("kiln: {}: engine files for '{}', which is not an engine node of the graph; ignored", dir, engine_name));
      continue;
    }
    node->Reserve(std::max(settings.maximum_cached_engines, files.size()));
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string what = kiln_file ? fmt::format("{}: engine '{}' #{}", dir, engine_name, i)
                                         : fmt::format("{}/assets/kiln/engines/{}_{}.kiln-engine", dir, engine_name, i);
      try {
        convert::EngineFile file = convert::ReadEngineFile(files[i], what);
        const convert::EngineHeader& h = file.header;
        std::string mismatch;
        if (h.kiln_version != KILN_VERSION)
          mismatch = fmt::format("was written by Kiln {}, this is Kiln {}", h.kiln_version, KILN_VERSION);
        else if (h.backend != backend->name())
          mismatch = fmt::format("is for backend '{}', this model runs on '{}'", h.backend, backend->name());
        else if (h.device != backend->device())
          mismatch = fmt::format("was built for device '{}', this machine is '{}'", h.device, backend->device());
        if (!mismatch.empty()) {
          log(fmt::format("kiln: engine file {} {}; {}", what, mismatch, fallback));
          continue;
        }
        backend::CompileOptions compile = settings.compile;
        // The conversion's requested precision: the engine derives again what it runs at (the
        // header's precision) and the note saying why that differs.
        compile.precision = settings.compile.precision;
        compile.progress = [&](const std::string& step) { log(fmt::format("kiln: loading engine file {}: {}", what, step)); };
        auto engine = backend->Deserialize(node->segment(), h.profile, compile, file.payload);
        if (engine->precision() != h.precision)
          log(fmt::format("kiln: engine file {} was saved running {}; loaded here it runs {}", what, PrecisionName(h.precision),
                          PrecisionName(engine->precision())));
        node->AddLoadedEngine(std::move(engine));
      } catch (const Error& e) {
        // Errors from reading the file start with `what`, which the line already names.
        std::string_view reason = e.what();
        if (reason.starts_with(what + ": ")) reason.remove_prefix(what.size() + 2);
        log(fmt::format("kiln: engine file {} cannot be used: {}; {}", what, reason, fallback));
      }
    }
  }
  return {model.signature_key, graph, std::move(runner), std::move(conversion), {}};
}

LoadedParts LoadParts(const std::string& dir, const LoadOptions& options) {
  convert::ConvertedModel model = ReadConvertedModelOrKilnFile(dir);
  std::string tf_layout = model.tf_layout;
  LoadedParts parts = LoadParts(std::move(model), dir, options);
  parts.tf_layout = std::move(tf_layout);
  return parts;
}

convert::ConvertedModel ReadConvertedModelOrKilnFile(const std::string& path) {
  return convert::IsKilnFile(path) ? convert::ReadKilnFile(path) : convert::ReadConvertedModel(path);
}

std::unique_ptr<Model> LoadConvertedModel(convert::ConvertedModel model, const std::string& source, const LoadOptions& options) {
  LoadedParts parts = LoadParts(std::move(model), source, options);
  auto signature = MakeConvertedSignature(parts.key, parts.graph, std::move(parts.runner));
  return std::make_unique<ConvertedModelImpl>(source, parts.key, std::move(signature));
}

std::unique_ptr<Model> LoadConvertedModel(const std::string& dir, const LoadOptions& options) {
  LoadedParts parts = LoadParts(dir, options);
  auto signature = MakeConvertedSignature(parts.key, parts.graph, std::move(parts.runner));
  return std::make_unique<ConvertedModelImpl>(dir, parts.key, std::move(signature));
}

std::string ConvertedModelSummary(const std::string& dir, const LoadOptions& options, int line_length, bool detailed) {
  LoadedParts parts = LoadParts(dir, options);
  api::ConversionCounts counts;
  counts.converted = JsonOr<int>(parts.conversion, "ops_converted", 0);
  counts.total = JsonOr<int>(parts.conversion, "ops_total", 0);
  std::vector<convert::Rejection> rejections;
  if (auto it = parts.conversion.find("rejections"); it != parts.conversion.end())
    for (const auto& r : *it)
      rejections.push_back({r.value("node", ""), r.value("op", ""), r.value("source_op", ""), r.value("reason", "")});
  const Precision requested = ParsePrecision(JsonOr<std::string>(parts.conversion, "precision_mode", "FP32"));
  std::string summary = api::FormatSummary(*parts.runner, counts, rejections, requested, line_length, detailed);
  if (!parts.tf_layout.empty()) summary += fmt::format("[*] TensorFlow layout of saved_model.pb: {}\n", parts.tf_layout);
  // What INT8 did to the graph (conversion.json's "int8" section).
  if (auto it = parts.conversion.find("int8"); it != parts.conversion.end() && it->is_object()) {
    const nlohmann::json& int8 = *it;
    std::string calibration = "the model's own quantization";
    if (auto t = int8.find("calibration_table"); t != int8.end() && t->is_object())
      calibration = fmt::format("{} calibration over {} batch(es)", t->value("calibrator", std::string("?")),
                                t->value("batches", int64_t{0}));
    if (requested == Precision::kFP8) {
      summary += fmt::format(
          "[*] FP8: {} activation tensor(s) and {} weight(s) quantized to E4M3 per tensor ({}); each engine's precision "
          "says whether the device has FP8 kernels (else the quantize-dequantize steps run in its float kernels)\n",
          int8.value("activations_quantized", 0), int8.value("weights_quantized", 0), calibration);
    } else {
      summary += fmt::format(
          "[*] INT8: {} activation tensor(s) quantized per tensor, {} weight(s) per output channel ({}); engines "
          "run the quantized convolutions and matrix products with int8 kernels where the device has them (each "
          "engine's precision says; the detailed summary lists its INT8 layers)\n",
          int8.value("activations_quantized", 0), int8.value("weights_quantized", 0), calibration);
    }
    if (auto k = int8.find("kept_in_float"); k != int8.end() && k->is_array() && !k->empty()) {
      std::vector<std::string> kept;
      for (const auto& name : *k)
        if (name.is_string()) kept.push_back(name.get<std::string>());
      summary += fmt::format("[*] INT8: {} layer(s) kept in floating point (keep_precision): {}\n", kept.size(), fmt::join(kept, ", "));
    }
    if (auto t = int8.find("calibration_table"); t != int8.end() && t->is_object() && requested != Precision::kFP8) {
      try {
        const convert::CalibrationTable table = convert::CalibrationTable::FromJson(t->dump(), "conversion.json");
        if (const std::string worst = convert::WorstQuantizationErrors(table, 10); !worst.empty())
          summary += "[*] INT8 quantization error on the calibration data (relative RMS; the layers reading a tensor can be kept "
                     "in floating point with --keep-precision TENSOR), worst first:\n" + worst;
      } catch (const Error&) {
        summary += "[*] INT8: the calibration table in conversion.json is not readable\n";
      }
    }
  }
  return summary;
}

}  // namespace kiln::api
