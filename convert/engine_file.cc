// Engine file writing and verified reading (the layout is described in engine_file.h).
#include "convert/engine_file.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <string_view>

#include "convert/container.h"

namespace kiln::convert {
namespace {

using nlohmann::json;

constexpr char kPayloadSection[] = "payload";

constexpr ContainerFormat kEngineFileFormat = {
    .magic = std::string_view(kEngineFileMagic, sizeof(kEngineFileMagic)),
    .version = kEngineFormatVersion,
    .file_noun = "engine file",
    .when_older = "reconvert the model (`kiln convert` or `kiln build`) to save a current engine file",
};

json ProfileToJson(const backend::Profile& profile) {
  json inputs = json::array();
  for (const backend::InputRange& r : profile.inputs)
    inputs.push_back({{"min", r.min}, {"opt", r.opt}, {"max", r.max}});
  return inputs;
}

backend::Profile ProfileFromJson(const json& j) {
  backend::Profile profile;
  for (const json& r : j.at("profile")) {
    backend::InputRange range;
    range.min = r.at("min").get<Shape>();
    range.opt = r.at("opt").get<Shape>();
    range.max = r.at("max").get<Shape>();
    profile.inputs.push_back(std::move(range));
  }
  return profile;
}

EngineHeader HeaderFromJson(const json& j) {
  EngineHeader h;
  h.kiln_version = j.at("kiln_version").get<std::string>();
  h.backend = j.at("backend").get<std::string>();
  h.device = j.at("device").get<std::string>();
  h.precision = ParsePrecision(j.at("precision").get<std::string>());
  h.profile = ProfileFromJson(j);
  h.engine_name = j.at("engine_name").get<std::string>();
  return h;
}

}  // namespace

std::string WriteEngineFile(const EngineHeader& header, std::string_view payload) {
  const json h = {
      {"kiln_version", header.kiln_version},
      {"backend", header.backend},
      {"device", header.device},
      {"precision", std::string(PrecisionName(header.precision))},
      {"profile", ProfileToJson(header.profile)},
      {"engine_name", header.engine_name},
  };
  return WriteContainer(kEngineFileFormat, h, {{kPayloadSection, payload}});
}

EngineFile ReadEngineFile(std::string_view bytes, const std::string& what) {
  const Container c = ReadContainer(kEngineFileFormat, bytes, what);
  const ContainerSection* payload = c.Find(kPayloadSection);
  if (!payload) ThrowDataLoss(what, fmt::format("the engine file has no '{}' section", kPayloadSection));
  EngineFile file;
  try {
    file.header = HeaderFromJson(c.header);
  } catch (const json::exception& e) {
    // The library's message without its "[json.exception.type.N] " prefix: "key 'device' not found".
    std::string_view message = e.what();
    if (message.starts_with("[json.exception.") && message.find("] ") != std::string_view::npos)
      message.remove_prefix(message.find("] ") + 2);
    ThrowDataLoss(what, fmt::format("engine file header does not parse: {}", message));
  } catch (const Error& e) {
    ThrowDataLoss(what, fmt::format("engine file header does not parse: {}", e.what()));
  }
  file.payload.assign(payload->payload.data(), payload->payload.size());
  return file;
}

}  // namespace kiln::convert
