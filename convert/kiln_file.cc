// .kiln file writing and verified reading (the layout is described in kiln_file.h).
#include "convert/kiln_file.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <nlohmann/json.hpp>

#include "convert/byte_io.h"
#include "common/crc32c.h"
#include "convert/ir_codec.h"
#include "kiln/version.h"

namespace kiln::convert {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMagicSize = sizeof(kKilnFileMagic);
constexpr size_t kPrefixSize = kMagicSize + 4 + 4;  // magic, version, header length
constexpr size_t kHeaderCrcSize = 4;
constexpr size_t kSectionPrefixSize = 8 + 4;  // payload length, payload CRC


[[noreturn]] void Corrupt(const std::string& what, const std::string& reason) {
  throw Error(ErrorCode::kDataLoss, fmt::format("{}: {}", what, reason));
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
      Corrupt(what, fmt::format("the signature {} '{}' is not an {} of the graph", kind, name, kind));
    const DType dtype = DTypeFromName(entry.at("dtype").get<std::string>());
    if (dtype == DType::kInvalid)
      Corrupt(what, fmt::format("the signature {} '{}' has an unknown dtype '{}'", kind, name, entry.at("dtype").get<std::string>()));
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

void AppendSection(std::string& out, std::string_view payload) {
  PutU64(out, payload.size());
  PutU32(out, crc32c::Mask(crc32c::Value(payload)));
  out.append(payload.data(), payload.size());
}

std::string SectionName(const json& section, size_t i) {
  const std::string kind = section.value("kind", std::string("?"));
  if (kind == "engine")
    return fmt::format("section {} (engine '{}' #{})", i, section.value("engine", std::string("?")), section.value("index", -1));
  return fmt::format("section {} ({})", i, kind);
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

  std::vector<std::string_view> payloads = {graph_bytes, model.conversion_json};
  json sections = json::array();
  sections.push_back({{"kind", "graph"}, {"size", graph_bytes.size()}});
  sections.push_back({{"kind", "conversion"}, {"size", model.conversion_json.size()}});
  for (const auto& [name, files] : model.engine_files)
    for (size_t i = 0; i < files.size(); ++i) {
      sections.push_back({{"kind", "engine"}, {"engine", name}, {"index", i}, {"size", files[i].size()}});
      payloads.push_back(files[i]);
    }
  const json header = {{"kiln_version", KILN_VERSION}, {"tags", model.tags}, {"signature", signature}, {"sections", sections}};
  const std::string header_bytes = header.dump(2, ' ', false, json::error_handler_t::replace);
  if (header_bytes.size() > UINT32_MAX) throw Error(ErrorCode::kInvalidArgument, "the .kiln file header is too large");

  size_t total = kPrefixSize + header_bytes.size() + kHeaderCrcSize;
  for (std::string_view p : payloads) total += kSectionPrefixSize + p.size();
  std::string out;
  out.reserve(total);
  out.append(kKilnFileMagic, kMagicSize);
  PutU32(out, kKilnFileFormatVersion);
  PutU32(out, static_cast<uint32_t>(header_bytes.size()));
  out += header_bytes;
  PutU32(out, crc32c::Mask(crc32c::Value(out)));
  for (std::string_view p : payloads) AppendSection(out, p);
  return out;
}

ConvertedModel DecodeKilnFile(std::string_view bytes, const std::string& what) {
  const size_t magic_bytes = std::min(bytes.size(), kMagicSize);
  if (bytes.empty()) Corrupt(what, "the .kiln file is empty");
  if (std::memcmp(bytes.data(), kKilnFileMagic, magic_bytes) != 0) Corrupt(what, "not a .kiln file (bad magic)");
  if (bytes.size() < kPrefixSize)
    Corrupt(what, fmt::format(".kiln file is truncated ({} bytes; the fixed header needs {})", bytes.size(), kPrefixSize));
  const uint32_t version = GetU32(bytes, kMagicSize);
  if (version > kKilnFileFormatVersion)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the .kiln file was written by a newer Kiln (format version {}; this build reads versions up "
                            "to {}); rebuild it with this Kiln or upgrade Kiln",
                            what, version, kKilnFileFormatVersion));
  if (version == 0) Corrupt(what, ".kiln file has format version 0");
  const uint64_t header_size = GetU32(bytes, kMagicSize + 4);
  if (bytes.size() - kPrefixSize < header_size + kHeaderCrcSize)
    Corrupt(what, fmt::format(".kiln file is truncated ({} bytes; its {}-byte header needs {})", bytes.size(), header_size,
                              kPrefixSize + header_size + kHeaderCrcSize));
  const size_t header_end = kPrefixSize + static_cast<size_t>(header_size);
  if (crc32c::Value(bytes.data(), header_end) != crc32c::Unmask(GetU32(bytes, header_end)))
    Corrupt(what, ".kiln file header checksum mismatch (the header is corrupt)");

  json header;
  try {
    header = json::parse(bytes.substr(kPrefixSize, static_cast<size_t>(header_size)));
    if (!header.is_object() || !header.at("sections").is_array()) Corrupt(what, ".kiln file header is not a valid header object");
  } catch (const json::exception& e) {
    Corrupt(what, fmt::format(".kiln file header does not parse: {}", e.what()));
  }

  ConvertedModel model;
  std::string_view graph_bytes;
  bool have_graph = false, have_conversion = false;
  size_t at = header_end + kHeaderCrcSize;
  try {
    const json& sections = header.at("sections");
    for (size_t i = 0; i < sections.size(); ++i) {
      const json& section = sections[i];
      const std::string name = SectionName(section, i);
      const uint64_t listed = section.at("size").get<uint64_t>();
      const size_t left = bytes.size() - at;
      if (left < kSectionPrefixSize)
        Corrupt(what, fmt::format(".kiln file is truncated: {} is missing ({} bytes left, its length and checksum need {})",
                                  name, left, kSectionPrefixSize));
      const uint64_t size = GetU64(bytes, at);
      if (size != listed)
        Corrupt(what, fmt::format(".kiln file is corrupt: {} is {} bytes long but the header lists {}", name, size, listed));
      const uint32_t crc = crc32c::Unmask(GetU32(bytes, at + 8));
      at += kSectionPrefixSize;
      if (size > bytes.size() - at)
        Corrupt(what, fmt::format(".kiln file is truncated: {} has {} of its {} bytes", name, bytes.size() - at, size));
      const std::string_view payload = bytes.substr(at, static_cast<size_t>(size));
      at += static_cast<size_t>(size);
      if (crc32c::Value(payload) != crc) Corrupt(what, fmt::format(".kiln file {} checksum mismatch (the section is corrupt)", name));
      const std::string kind = section.at("kind").get<std::string>();
      if (kind == "graph") {
        if (have_graph) Corrupt(what, fmt::format(".kiln file has a second graph section ({})", name));
        graph_bytes = payload;
        have_graph = true;
      } else if (kind == "conversion") {
        if (have_conversion) Corrupt(what, fmt::format(".kiln file has a second conversion section ({})", name));
        model.conversion_json.assign(payload.data(), payload.size());
        have_conversion = true;
      } else if (kind == "engine") {
        const std::string engine = section.at("engine").get<std::string>();
        const size_t index = section.at("index").get<size_t>();
        std::vector<std::string>& files = model.engine_files[engine];
        if (index != files.size())
          Corrupt(what, fmt::format(".kiln file {}: engine files of '{}' are out of order (expected index {})", name, engine,
                                    files.size()));
        files.emplace_back(payload.data(), payload.size());
      }  // other kinds: written by a same-version writer that knows more; skipped
    }
  } catch (const json::exception& e) {
    Corrupt(what, fmt::format(".kiln file header is malformed: {}", e.what()));
  }
  if (at != bytes.size())
    Corrupt(what, fmt::format(".kiln file has {} unexpected bytes after its last section", bytes.size() - at));
  if (!have_graph) Corrupt(what, ".kiln file has no graph section");
  if (!have_conversion) Corrupt(what, ".kiln file has no conversion section");

  tfproto::GraphDef graph_def;
  {
    google::protobuf::io::ArrayInputStream stream(graph_bytes.data(), static_cast<int>(graph_bytes.size()));
    google::protobuf::io::CodedInputStream coded(&stream);
    coded.SetTotalBytesLimit(INT_MAX);
    if (graph_bytes.size() > static_cast<size_t>(INT_MAX) || !graph_def.ParseFromCodedStream(&coded) ||
        !coded.ConsumedEntireMessage())
      Corrupt(what, ".kiln file graph section does not parse as a GraphDef");
  }
  try {
    model.graph = convert::DecodeIrGraph(graph_def);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{}: graph section: {}", what, e.what()));
  }
  try {
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
    Corrupt(what, fmt::format(".kiln file header is malformed: {}", e.what()));
  }
  return model;
}

void WriteKilnFile(const std::string& path, const ConvertedModel& model) {
  const std::string bytes = EncodeKilnFile(model);
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const fs::path tmp = dir / fmt::format(".{}.tmp-{}", target.filename().string(), ::getpid());
  auto fail = [&](const std::string& reason) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: cannot write: {}", path, reason));
  };
  std::error_code ec;
  if (fs::is_directory(target, ec)) fail("it is a directory");
  fs::create_directories(dir, ec);
  if (ec) fail(fmt::format("cannot create the directory '{}': {}", dir.string(), ec.message()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(fmt::format("cannot create '{}'", tmp.string()));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) fail(fmt::format("writing '{}' failed (disk full?)", tmp.string()));
  }
  fs::rename(tmp, target, ec);
  if (ec) fail(ec.message());
}

ConvertedModel ReadKilnFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{}: cannot open for reading", path));
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(ErrorCode::kDataLoss, fmt::format("{}: cannot tell the file's size", path));
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
