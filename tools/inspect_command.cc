// kiln inspect: what a SavedModel contains and whether Kiln can import it.
#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include <onnx/onnx_pb.h>

#include "frontend/onnx/graph_builder.h"
#include "frontend/onnx/onnx_model.h"
#include <filesystem>

#include <nlohmann/json.hpp>

#include "api/model_format.h"
#include "convert/engine_file.h"
#include "convert/kiln_file.h"
#include "frontend/tf/bundle_reader.h"
#include "frontend/tf/graph_builder.h"
#include "frontend/tf/saved_model.h"
#include "kiln/model.h"
#include "tools/commands.h"

namespace kiln::cli {
namespace {

std::string ShapeOf(const tfproto::TensorShapeProto& shape) {
  if (shape.unknown_rank()) return "<unknown rank>";
  std::vector<std::string> dims;
  for (const auto& d : shape.dim()) dims.push_back(d.size() < 0 ? "?" : std::to_string(d.size()));
  return fmt::format("[{}]", fmt::join(dims, ","));
}

void PrintTensorInfos(const char* what, const google::protobuf::Map<std::string, tfproto::TensorInfo>& infos) {
  std::vector<std::string> names;
  for (const auto& [name, info] : infos) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const tfproto::TensorInfo& info = infos.at(name);
    fmt::print("    {} {}: {} {}  ({})\n", what, name, DTypeName(DTypeFromTf(info.dtype())), ShapeOf(info.tensor_shape()),
               info.name());
  }
}

std::string OnnxValueType(const onnx::ValueInfoProto& v) {
  if (!v.type().has_tensor_type()) return "<not a tensor>";
  const onnx::TypeProto::Tensor& t = v.type().tensor_type();
  std::string type = onnxfe::OnnxTypeName(t.elem_type());
  if (!t.has_shape()) return type + " <unknown rank>";
  std::vector<std::string> dims;
  for (const auto& d : t.shape().dim())
    dims.push_back(d.has_dim_value() ? std::to_string(d.dim_value()) : d.has_dim_param() ? d.dim_param() : "?");
  return fmt::format("{} [{}]", type, fmt::join(dims, ","));
}

int InspectOnnx(const InspectOptions& options) {
  const onnxfe::OnnxModel model = onnxfe::LoadOnnxModel(options.dir);
  const onnx::ModelProto& proto = *model.proto;
  fmt::print("ONNX model: {}\n", options.dir);
  fmt::print("IR version {}, producer {} {}\n", proto.ir_version(),
             proto.producer_name().empty() ? "(unknown)" : proto.producer_name(), proto.producer_version());
  fmt::print("Opsets:");
  for (const auto& [domain, version] : model.opsets) fmt::print(" {}={}", domain.empty() ? "ai.onnx" : domain, version);
  const onnx::GraphProto& g = proto.graph();
  std::set<std::string> initializers;
  size_t weight_bytes = 0;
  for (const auto& t : g.initializer()) {
    initializers.insert(t.name());
    weight_bytes += t.raw_data().size() + static_cast<size_t>(t.float_data_size()) * 4 +
                    static_cast<size_t>(t.int64_data_size()) * 8;
  }
  fmt::print("\n\nInputs:\n");
  for (const auto& in : g.input())
    if (!initializers.count(in.name())) fmt::print("    input  {}: {}\n", in.name(), OnnxValueType(in));
  fmt::print("Outputs:\n");
  for (const auto& out : g.output()) fmt::print("    output {}: {}\n", out.name(), OnnxValueType(out));
  std::map<std::string, int> histogram;
  for (const auto& node : g.node()) ++histogram[node.domain().empty() ? node.op_type() : node.domain() + "." + node.op_type()];
  std::vector<std::pair<std::string, int>> ops(histogram.begin(), histogram.end());
  std::stable_sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  fmt::print("\nOps ({} nodes, {} op types):\n", g.node_size(), ops.size());
  for (const auto& [op, count] : ops) fmt::print("  {:<32} {}\n", op, count);
  fmt::print("\nInitializers: {} ({:.2f} MB inline; external data not counted)\n", g.initializer_size(),
             static_cast<double>(weight_bytes) / 1e6);
  fmt::print("\nKiln import: ");
  try {
    auto loaded = LoadModel(options.dir);
    fmt::print("OK, {} IR nodes after optimization\n", loaded->signature("serving_default").num_nodes());
  } catch (const onnxfe::UnsupportedOpsError& e) {
    fmt::print("not supported\n  {}\n", e.what());
    return 1;
  }
  return 0;
}

// A .kiln file or converted SavedModel: what it holds (signature, conversion parameters,
// engines) and whether it loads.
int InspectConverted(const InspectOptions& options, const std::vector<std::string>& tags, bool kiln_file) {
  // Both readers verify every checksum.
  const convert::ConvertedModel model =
      kiln_file ? convert::ReadKilnFile(options.dir) : convert::ReadConvertedModel(options.dir);
  if (kiln_file)
    fmt::print(".kiln file: {} ({:.2f} MB, format version {}; checksums OK)\n", options.dir,
               static_cast<double>(std::filesystem::file_size(options.dir)) / 1e6, convert::kKilnFileFormatVersion);
  else
    fmt::print("Converted SavedModel: {} (checksums OK; TensorFlow loads it with Kiln's op library: import kiln.tf)\n",
               options.dir);
  fmt::print("Tags: {{{}}}\n", fmt::join(model.tags, ","));
  fmt::print("\nSignature:\n  {}:\n", model.signature_key);
  PrintTensorInfos("input ", model.signature.inputs());
  PrintTensorInfos("output", model.signature.outputs());
  const nlohmann::json conversion = nlohmann::json::parse(model.conversion_json, nullptr, /*allow_exceptions=*/false);
  if (conversion.is_object()) {
    fmt::print("\nConverted by Kiln {} from {}: precision {}, device {}, {}/{} ops converted, dynamic shapes {}, "
               "build at run time {}\n",
               conversion.value("kiln_version", "?"), conversion.value("source_dir", "?"), conversion.value("precision_mode", "?"),
               conversion.value("device", "?"), conversion.value("ops_converted", 0), conversion.value("ops_total", 0),
               conversion.value("use_dynamic_shape", false) ? "on" : "off",
               conversion.value("allow_build_at_runtime", true) ? "on" : "off");
  }
  fmt::print("\nGraph: {} IR nodes\n", model.graph.NumLiveNodes());
  size_t engines = 0;
  for (const auto& [name, files] : model.engine_files) engines += files.size();
  fmt::print("\nEngines: {}\n", engines);
  for (const auto& [name, files] : model.engine_files)
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string what = fmt::format("{}: engine '{}' #{}", options.dir, name, i);
      try {
        const convert::EngineFile file = convert::ReadEngineFile(files[i], what);
        fmt::print("  {} #{}: {} {} profile {} ({} bytes; {}, Kiln {})\n", name, i, file.header.backend,
                   PrecisionName(file.header.precision), file.header.profile.ToString(), files[i].size(), file.header.device,
                   file.header.kiln_version);
        for (size_t k = 0; k < file.header.profile.inputs.size(); ++k) {
          const auto& r = file.header.profile.inputs[k];
          fmt::print("      input {}: min {} opt {} max {}\n", k, ShapeToString(r.min), ShapeToString(r.opt), ShapeToString(r.max));
        }
      } catch (const Error& e) {
        fmt::print("  {} #{}: cannot be used: {}\n", name, i, e.what());
      }
    }
  LoadOptions load;
  load.tags = tags;
  auto loaded = LoadModel(options.dir, load);
  const Signature& sig = loaded->signature(model.signature_key);
  fmt::print("\nKiln load of signature '{}': OK, {} IR nodes\n", sig.key(), sig.num_nodes());
  return 0;
}

}  // namespace

int Inspect(const InspectOptions& options) {
  const api::DetectedModel detected = api::DetectModel(options.dir);
  if (detected.frontend && detected.frontend->name() == "onnx") return InspectOnnx(options);
  const std::vector<std::string> tags = options.tags.empty() ? std::vector<std::string>{"serve"} : options.tags;
  if (detected.format == api::ModelFormat::kKilnFile) return InspectConverted(options, tags, /*kiln_file=*/true);
  if (detected.format == api::ModelFormat::kConvertedSavedModel) return InspectConverted(options, tags, /*kiln_file=*/false);
  tf::SavedModelBundle bundle = tf::LoadSavedModel(options.dir, tags);
  const tfproto::MetaGraphDef& meta = *bundle.meta_graph;
  fmt::print("SavedModel: {}\n", options.dir);
  fmt::print("MetaGraphs (tag sets):");
  for (const auto& mg : bundle.proto->meta_graphs())
    fmt::print(" {{{}}}", fmt::join(mg.meta_info_def().tags(), ","));
  fmt::print("\nWritten by TensorFlow {}\n", meta.meta_info_def().tensorflow_version().empty() ? "(unknown)" : meta.meta_info_def().tensorflow_version());

  fmt::print("\nSignatures:\n");
  for (const std::string& key : tf::SignatureKeys(bundle)) {
    const tfproto::SignatureDef& sig = meta.signature_def().at(key);
    fmt::print("  {}:\n", key);
    PrintTensorInfos("input ", sig.inputs());
    PrintTensorInfos("output", sig.outputs());
  }

  // Op histogram over the outer graph and every function body.
  std::map<std::string, int> histogram;
  size_t total = 0;
  for (const auto& node : meta.graph_def().node()) ++histogram[node.op()], ++total;
  for (const auto& f : meta.graph_def().library().function())
    for (const auto& node : f.node_def()) ++histogram[node.op()], ++total;
  std::vector<std::pair<std::string, int>> ops(histogram.begin(), histogram.end());
  std::stable_sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  fmt::print("\nOps ({} nodes in the graph and {} functions, {} op types):\n", total,
             meta.graph_def().library().function_size(), ops.size());
  for (const auto& [op, count] : ops) fmt::print("  {:<32} {}\n", op, count);

  tf::VariableReader variables(options.dir);
  size_t count = 0, bytes = 0;
  try {
    tf::BundleReader& reader = variables.bundle();
    for (const std::string& key : reader.Keys()) {
      if (key.empty() || key == "_CHECKPOINTABLE_OBJECT_GRAPH") continue;
      Tensor t = reader.Read(key);
      ++count;
      bytes += t.dtype() == DType::kString ? 0 : t.byte_size();
    }
    fmt::print("\nVariables: {} ({:.2f} MB)\n", count, static_cast<double>(bytes) / 1e6);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    fmt::print("\nVariables: none ({})\n", e.what());
  }

  fmt::print("\nKiln import of signature '{}': ", options.signature_key);
  LoadOptions load;
  load.tags = tags;
  auto model = LoadModel(options.dir, load);
  try {
    const Signature& sig = model->signature(options.signature_key);
    fmt::print("OK, {} IR nodes after optimization\n", sig.num_nodes());
  } catch (const tf::UnsupportedOpsError& e) {
    fmt::print("not supported\n  {}\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace kiln::cli
