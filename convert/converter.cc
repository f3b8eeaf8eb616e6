// kiln::Converter: TF-TRT's convert() / build() / save() / summary() on Kiln's IR.
#include "kiln/converter.h"

#include <chrono>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "convert/converted_model.h"
#include "convert/engine_file.h"
#include "convert/profiles.h"
#include "convert/report.h"
#include "convert/segment_rewrite.h"
#include "convert/segmenter.h"
#include "convert/summary.h"
#include "frontend/onnx/graph_builder.h"
#include "frontend/onnx/onnx_model.h"
#include "frontend/tf/graph_builder.h"
#include "frontend/tf/saved_model.h"
#include "ir/passes/pass.h"
#include "kiln/version.h"
#include "runtime/converted_graph.h"
#include "runtime/pipeline.h"
#include "runtime/signature_io.h"

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

// A serving SignatureDef for a model that has none (ONNX): keys are the graph's input and output names.
tfproto::SignatureDef SignatureFromSpecs(const std::vector<TensorSpec>& inputs, const std::vector<TensorSpec>& outputs) {
  tfproto::SignatureDef sig;
  sig.set_method_name("tensorflow/serving/predict");
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

  tf::SavedModelBundle bundle;
  tfproto::SignatureDef signature;  // the source signature (synthesized for ONNX models)
  std::shared_ptr<const backend::Backend> backend;
  std::shared_ptr<ir::Graph> graph;  // the converted graph
  std::vector<TensorSpec> input_specs, output_specs;
  std::unique_ptr<runtime::ConvertedGraph> runner;
  std::vector<convert::Rejection> rejections;
  convert::ConversionCounts counts;
  bool converted = false;
  bool built = false;

  static void Log(const std::string& message) { std::fprintf(stderr, "%s\n", message.c_str()); }

  runtime::EngineSettings Settings() const {
    runtime::EngineSettings s;
    s.compile.precision = precision;
    s.compile.max_workspace_bytes = static_cast<size_t>(params.max_workspace_size_bytes);
    s.maximum_cached_engines = static_cast<size_t>(params.maximum_cached_engines);
    s.allow_build_at_runtime = params.allow_build_at_runtime;
    s.use_dynamic_shape = params.use_dynamic_shape;
    return s;
  }
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

void Converter::convert(const InputFn& calibration_input_fn) {
  Impl& m = *impl_;
  if (m.converted) throw Error(ErrorCode::kFailedPrecondition, "convert() was already called");
  // INT8 is refused by ConversionParams::Validate until calibration lands; the remaining rule:
  if (calibration_input_fn && m.precision != Precision::kINT8)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("calibration_input_fn was given, but precision_mode is {}: "
                                                         "calibration is only used for INT8",
                                                         PrecisionName(m.precision)));
  const auto start = std::chrono::steady_clock::now();
  ir::Graph imported;
  if (onnxfe::IsOnnxFile(m.dir)) {
    // ONNX has no signatures or tags: its one graph is saved as the signature under
    // signature_key ("serving_default" by default), with the ONNX input/output names.
    imported = onnxfe::ImportOnnxFile(m.dir);
  } else {
    m.bundle = tf::LoadSavedModel(m.dir, m.tags);
    m.signature = tf::FindSignature(m.bundle, m.signature_key);
    tf::VariableReader variables(m.dir);
    tf::GraphBuilder builder(m.bundle, variables);
    imported = builder.ImportSignature(m.signature_key);
  }
  runtime::OptimizeImportedGraph(imported, /*verify=*/true);
  m.graph = std::make_shared<ir::Graph>(std::move(imported));
  m.input_specs = runtime::SpecsOf(*m.graph, m.graph->inputs(), m.graph->input_names());
  m.output_specs = runtime::SpecsOf(*m.graph, m.graph->outputs(), m.graph->output_names());
  if (onnxfe::IsOnnxFile(m.dir)) m.signature = SignatureFromSpecs(m.input_specs, m.output_specs);

  convert::SegmenterOptions options;
  options.minimum_segment_size = m.params.minimum_segment_size;
  options.denylist = m.params.denylist;
  const backend::Backend& backend = *m.backend;
  options.unsupported = [&backend](const ir::Graph& g, const ir::Node& n) { return backend.Unsupported(g, n); };
  convert::SegmentationResult result = convert::FindSegments(*m.graph, options);
  m.counts = convert::CountConversion(*m.graph, result);
  m.rejections = std::move(result.rejections);
  convert::ReplaceSegments(*m.graph, result.segments);
  ir::Verify(*m.graph);
  m.runner = std::make_unique<runtime::ConvertedGraph>(m.graph, m.backend, m.Settings(), &Impl::Log);
  m.converted = true;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Impl::Log(fmt::format("kiln: converted signature '{}' of {} in {:.2f} s: {} engine node(s), {:.2f}% of ops converted "
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
                              inputs->size(), m.input_specs.size(), convert::SpecNames(m.input_specs)));
    std::map<std::string, Tensor> named;
    for (size_t i = 0; i < inputs->size(); ++i) named[m.input_specs[i].name] = (*inputs)[i];
    std::vector<Tensor> ordered = runtime::BindInputs(m.signature_key, m.input_specs, named);
    m.runner->RunRecordingShapes(std::move(ordered), shapes);
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
      Impl::Log(fmt::format("kiln: building engine {} ({} nodes), profile {}/{}: {}", node->name(),
                            node->segment().NumLiveNodes(), i + 1, profiles.size(), profiles[i].ToString()));
      node->Build(profiles[i]);
    }
  }
}

void Converter::save(const std::string& output_saved_model_dir, bool save_gpu_specific_engines) {
  Impl& m = *impl_;
  if (!m.converted) throw Error(ErrorCode::kFailedPrecondition, "save() needs convert() first");
  convert::ConvertedModel model;
  model.tags = m.tags;
  model.signature_key = m.signature_key;
  model.signature = m.signature;
  model.graph = m.graph->Clone();
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
  nlohmann::json rejections = nlohmann::json::array();
  for (const convert::Rejection& r : m.rejections)
    rejections.push_back({{"node", r.node}, {"op", r.op}, {"source_op", r.source_op}, {"reason", r.reason}});
  conversion["rejections"] = std::move(rejections);
  model.conversion_json = conversion.dump(2);
  size_t files = 0;
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
  convert::WriteConvertedModel(output_saved_model_dir, model);
  Impl::Log(fmt::format("kiln: saved the converted model to {} ({} engine file(s){})", output_saved_model_dir, files,
                        save_gpu_specific_engines ? "" : "; device-specific engines not saved"));
}

std::string Converter::summary(int line_length, bool detailed) const {
  const Impl& m = *impl_;
  if (!m.converted) throw Error(ErrorCode::kFailedPrecondition, "summary() needs convert() first");
  return convert::FormatSummary(*m.runner, m.counts, m.rejections, m.precision, line_length, detailed);
}

std::string Converter::non_conversion_report_csv() const {
  const Impl& m = *impl_;
  if (!m.converted) throw Error(ErrorCode::kFailedPrecondition, "the report needs convert() first");
  convert::NonConversionReport report;
  for (const auto& r : m.rejections) report.Add(r);
  return report.ToCsv();
}

}  // namespace kiln
