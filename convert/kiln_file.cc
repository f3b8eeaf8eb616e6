// .kiln file writing and verified reading (the layout is described in kiln_file.h).
#include "convert/kiln_file.h"

#include "common/atomic_file.h"
#include "common/model_budget.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <nlohmann/json.hpp>

#include "common/file_checks.h"
#include "convert/container.h"
#include "convert/ir_codec.h"
#include "kiln/version.h"

namespace kiln::convert {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMagicSize = sizeof(kKilnFileMagic);

constexpr ContainerFormat kKilnFileFormat = {
    .magic = std::string_view(kKilnFileMagic, sizeof(kKilnFileMagic)),
    .version = kKilnFileFormatVersion,
    .file_noun = ".kiln file",
    .when_older = "rebuild it with `kiln build`",
};

constexpr char kGraphSection[] = "graph";
constexpr char kConversionSection[] = "conversion";
constexpr std::string_view kEnginePrefix = "engine:";

std::string EngineSectionName(const std::string& engine, size_t index) {
  return fmt::format("{}{}#{}", kEnginePrefix, engine, index);
}

struct EngineSection {
  std::string engine;
  size_t index = 0;
};

// "engine:NAME#I" -> {NAME, I}; nullopt for a section of another kind. kDataLoss for an engine
// section whose name does not end in "#<index>".
std::optional<EngineSection> ParseEngineSectionName(std::string_view name, const std::string& what,
                                                    const std::string& label) {
  if (!name.starts_with(kEnginePrefix)) return std::nullopt;
  const size_t hash = name.rfind('#');
  const std::string_view digits = hash == std::string_view::npos ? std::string_view() : name.substr(hash + 1);
  size_t index = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (hash < kEnginePrefix.size() || digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
    ThrowDataLoss(what, fmt::format(".kiln file {}: an engine section's name must end in #<index>", label));
  return EngineSection{std::string(name.substr(kEnginePrefix.size(), hash - kEnginePrefix.size())), index};
}

// The signature's tensors in graph order: {"name", "dtype", "shape"}.
json TensorInfosToJson(const google::protobuf::Map<std::string, tfproto::TensorInfo>& infos,
                       const std::vector<std::string>& graph_names, const char* kind) {
  for (const auto& [key, info] : infos)
    if (std::find(graph_names.begin(), graph_names.end(), key) == graph_names.end())
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("signature {} '{}' is not an {} of the converted graph (its {}s: {})", kind, key, kind, kind,
                              fmt::join(graph_names, ", ")));
  json out = json::array();
  for (const std::string& name : graph_names) {
    auto it = infos.find(name);
    if (it == infos.end()) continue;
    const tfproto::TensorInfo& info = it->second;
    json shape = nullptr;
    if (!info.tensor_shape().unknown_rank()) {
      shape = json::array();
      for (const auto& d : info.tensor_shape().dim()) shape.push_back(d.size() < 0 ? int64_t{-1} : d.size());
    }
    out.push_back({{"name", name}, {"dtype", std::string(DTypeName(DTypeFromTf(info.dtype())))}, {"shape", shape}});
  }
  return out;
}

void TensorInfosFromJson(const json& list, const std::vector<std::string>& graph_names,
                         const std::vector<std::string>& tensors, google::protobuf::Map<std::string, tfproto::TensorInfo>& infos,
                         const std::string& what, const char* kind) {
  for (const json& entry : list) {
    const std::string name = entry.at("name").get<std::string>();
    auto it = std::find(graph_names.begin(), graph_names.end(), name);
    if (it == graph_names.end())
      ThrowDataLoss(what, fmt::format("the signature {} '{}' is not an {} of the graph", kind, name, kind));
    const DType dtype = DTypeFromName(entry.at("dtype").get<std::string>());
    if (dtype == DType::kInvalid)
      ThrowDataLoss(what, fmt::format("the signature {} '{}' has an unknown dtype '{}'", kind, name,
                                      entry.at("dtype").get<std::string>()));
    tfproto::TensorInfo& info = infos[name];
    info.set_name(tensors[static_cast<size_t>(it - graph_names.begin())]);
    info.set_dtype(static_cast<int>(dtype));
    const json& shape = entry.at("shape");
    if (shape.is_null()) {
      info.mutable_tensor_shape()->set_unknown_rank(true);
    } else {
      for (const json& d : shape) info.mutable_tensor_shape()->add_dim()->set_size(d.get<int64_t>());
    }
  }
}

std::string SerializeGraphDef(const tfproto::GraphDef& graph_def) {
  const size_t size = graph_def.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX))
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("the converted graph is too large for a GraphDef protobuf ({} bytes; the limit is 2 GiB)", size));
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    graph_def.SerializeToCodedStream(&coded);
    if (coded.HadError()) throw Error(ErrorCode::kInternal, "serializing the converted graph failed");
  }
  return bytes;
}

}  // namespace

std::string EncodeKilnFile(const ConvertedModel& model) {
  const tfproto::GraphDef graph_def = convert::EncodeIrGraph(model.graph);
  json signature = {{"key", model.signature_key}, {"inputs", json::array()}, {"outputs", json::array()}};
  if (!model.signature_key.empty()) {
    signature["inputs"] = TensorInfosToJson(model.signature.inputs(), model.graph.input_names(), "input");
    signature["outputs"] = TensorInfosToJson(model.signature.outputs(), model.graph.output_names(), "output");
  }
  const std::string graph_bytes = SerializeGraphDef(graph_def);
  std::vector<ContainerSection> sections = {{kGraphSection, graph_bytes}, {kConversionSection, model.conversion_json}};
  for (const auto& [name, files] : model.engine_files)
    for (size_t i = 0; i < files.size(); ++i) sections.push_back({EngineSectionName(name, i), files[i]});
  const json header = {{"kiln_version", KILN_VERSION}, {"tags", model.tags}, {"signature", signature}};
  return WriteContainer(kKilnFileFormat, header, sections);
}

ConvertedModel DecodeKilnFile(std::string_view bytes, const std::string& what) {
  const Container c = ReadContainer(kKilnFileFormat, bytes, what);
  ConvertedModel model;
  const ContainerSection* graph = c.Find(kGraphSection);
  const ContainerSection* conversion = c.Find(kConversionSection);
  if (!graph) ThrowDataLoss(what, ".kiln file has no graph section");
  if (!conversion) ThrowDataLoss(what, ".kiln file has no conversion section");
  model.conversion_json.assign(conversion->payload.data(), conversion->payload.size());
  for (size_t i = 0; i < c.sections.size(); ++i) {
    const std::string label = SectionLabel(i, c.sections[i].name);
    const auto engine = ParseEngineSectionName(c.sections[i].name, what, label);
    if (!engine) continue;  // graph, conversion, or a kind a same-version writer added: skipped
    std::vector<std::string>& files = model.engine_files[engine->engine];
    if (engine->index != files.size())
      ThrowDataLoss(what, fmt::format(".kiln file {}: engine files of '{}' are out of order (expected #{})", label,
                                      engine->engine, files.size()));
    files.emplace_back(c.sections[i].payload);
  }

  const std::string_view graph_bytes = graph->payload;
  tfproto::GraphDef graph_def;
  {
    google::protobuf::io::ArrayInputStream stream(graph_bytes.data(), static_cast<int>(graph_bytes.size()));
    google::protobuf::io::CodedInputStream coded(&stream);
    coded.SetTotalBytesLimit(INT_MAX);
    if (graph_bytes.size() > static_cast<size_t>(INT_MAX) || !graph_def.ParseFromCodedStream(&coded) ||
        !coded.ConsumedEntireMessage())
      ThrowDataLoss(what, ".kiln file graph section does not parse as a GraphDef");
  }
  try {
    model.graph = convert::DecodeIrGraph(graph_def);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: graph section: {}", what, e.what()));
  }
  try {
    const json& header = c.header;
    for (const json& tag : header.at("tags")) model.tags.push_back(tag.get<std::string>());
    const json& sig = header.at("signature");
    model.signature_key = sig.at("key").get<std::string>();
    if (!model.signature_key.empty()) {
      TensorInfosFromJson(sig.at("inputs"), model.graph.input_names(), convert::EncodedInputTensors(graph_def),
                          *model.signature.mutable_inputs(), what, "input");
      TensorInfosFromJson(sig.at("outputs"), model.graph.output_names(), convert::EncodedOutputTensors(graph_def),
                          *model.signature.mutable_outputs(), what, "output");
    }
  } catch (const json::exception& e) {
    ThrowDataLoss(what, fmt::format(".kiln file header is malformed: {}", e.what()));
  }
  return model;
}

void WriteKilnFile(const std::string& path, const ConvertedModel& model) {
  const std::string bytes = EncodeKilnFile(model);
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  auto fail = [&](const std::string& reason) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: cannot write: {}", path, reason));
  };
  std::error_code ec;
  if (fs::is_directory(target, ec)) fail("it is a directory");
  fs::create_directories(dir, ec);
  if (ec) fail(fmt::format("cannot create the directory '{}': {}", dir.string(), ec.message()));
  WriteFileAtomically(target, {bytes});
}

ConvertedModel ReadKilnFile(const std::string& path) {
  ModelReadScope budget(path);
  RequireRegularFile(path, ".kiln file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{}: cannot open for reading", path));
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(ErrorCode::kDataLoss, fmt::format("{}: cannot tell the file's size", path));
  if (static_cast<uintmax_t>(size) > MaxModelBytes())
    throw Error(ErrorCode::kResourceExhausted,
                fmt::format("{}: {} bytes, more than one model may take ({} bytes; KILN_MAX_MODEL_BYTES)", path, size,
                            MaxModelBytes()));
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  if (in.gcount() != size) throw Error(ErrorCode::kDataLoss, fmt::format("{}: read error", path));
  return DecodeKilnFile(bytes, path);
}

bool IsKilnFile(const std::string& path) {
  try {
    std::error_code ec;
    const fs::path p(path);
    if (!fs::exists(p, ec) || fs::is_directory(p, ec)) return false;
    if (p.extension() == kKilnFileExtension) return true;
    std::ifstream in(p, std::ios::binary);
    char magic[kMagicSize] = {};
    in.read(magic, kMagicSize);
    return in.gcount() == static_cast<std::streamsize>(kMagicSize) && std::memcmp(magic, kKilnFileMagic, kMagicSize) == 0;
  } catch (...) {
    return false;
  }
}

}  // namespace kiln::convert
