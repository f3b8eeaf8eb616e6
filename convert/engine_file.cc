// Engine file writing and verified reading (the layout is described in engine_file.h).
#include "convert/engine_file.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "convert/byte_io.h"
#include "common/crc32c.h"

namespace kiln::convert {
namespace {

using nlohmann::json;

constexpr size_t kMagicSize = sizeof(kEngineFileMagic);
constexpr size_t kPrefixSize = kMagicSize + 4 + 4;  // magic, version, header length
constexpr size_t kTrailerSize = 8 + 4 + 4;          // payload size, payload CRC, header CRC


json ProfileToJson(const backend::Profile& profile) {
  json inputs = json::array();
  for (const backend::InputRange& r : profile.inputs) inputs.push_back({{"min", r.min}, {"opt", r.opt}, {"max", r.max}});
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

[[noreturn]] void Corrupt(const std::string& what, const std::string& reason) {
  throw Error(ErrorCode::kDataLoss, fmt::format("{}: {}", what, reason));
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
  // Invalid UTF-8 (say, in a device string) is replaced rather than thrown on.
  const std::string header_bytes = h.dump(2, ' ', false, json::error_handler_t::replace);
  if (header_bytes.size() > UINT32_MAX)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("engine '{}': the engine file header is too large", header.engine_name));
  std::string out;
  out.reserve(kPrefixSize + header_bytes.size() + kTrailerSize + payload.size());
  out.append(kEngineFileMagic, kMagicSize);
  PutU32(out, kEngineFormatVersion);
  PutU32(out, static_cast<uint32_t>(header_bytes.size()));
  out += header_bytes;
  PutU64(out, payload.size());
  PutU32(out, crc32c::Mask(crc32c::Value(payload)));
  PutU32(out, crc32c::Mask(crc32c::Value(out)));
  out.append(payload.data(), payload.size());
  return out;
}

EngineFile ReadEngineFile(std::string_view bytes, const std::string& what) {
  const size_t magic_bytes = std::min(bytes.size(), kMagicSize);
  if (magic_bytes > 0 && std::memcmp(bytes.data(), kEngineFileMagic, magic_bytes) != 0)
    Corrupt(what, "not a Kiln engine file (bad magic)");
  if (bytes.size() < kMagicSize)
    Corrupt(what, fmt::format("engine file is truncated ({} bytes, shorter than its magic)", bytes.size()));
  if (bytes.size() < kPrefixSize)
    Corrupt(what, fmt::format("engine file is truncated ({} bytes, the fixed header needs {})", bytes.size(), kPrefixSize));
  const uint32_t version = GetU32(bytes, kMagicSize);
  if (version > kEngineFormatVersion)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the engine was written by a newer Kiln (engine format version {}; this build reads "
                            "versions up to {}); rebuild the engine or upgrade Kiln",
                            what, version, kEngineFormatVersion));
  if (version == 0) Corrupt(what, "engine file has format version 0");
  const uint64_t header_size = GetU32(bytes, kMagicSize + 4);
  if (bytes.size() - kPrefixSize < header_size + kTrailerSize)
    Corrupt(what, fmt::format("engine file is truncated ({} bytes; its {}-byte header and trailer need {})", bytes.size(),
                              header_size, kPrefixSize + header_size + kTrailerSize));
  const size_t trailer = kPrefixSize + static_cast<size_t>(header_size);
  const uint64_t payload_size = GetU64(bytes, trailer);
  const uint32_t payload_crc = crc32c::Unmask(GetU32(bytes, trailer + 8));
  const uint32_t header_crc = crc32c::Unmask(GetU32(bytes, trailer + 12));
  const size_t payload_at = trailer + kTrailerSize;
  const uint64_t available = bytes.size() - payload_at;
  if (payload_size > available)
    Corrupt(what, fmt::format("engine file is truncated (payload of {} bytes, {} present)", payload_size, available));
  if (payload_size < available)
    Corrupt(what, fmt::format("engine file has {} unexpected bytes after its {}-byte payload", available - payload_size,
                              payload_size));
  if (crc32c::Value(bytes.data(), trailer + 12) != header_crc)
    Corrupt(what, "engine file header checksum mismatch (the header is corrupt)");
  const std::string_view payload = bytes.substr(payload_at);
  if (crc32c::Value(payload) != payload_crc) Corrupt(what, "engine payload checksum mismatch (the payload is corrupt)");

  EngineFile file;
  EngineHeader& h = file.header;
  h.format_version = version;
  try {
    const json j = json::parse(bytes.substr(kPrefixSize, static_cast<size_t>(header_size)));
    h.kiln_version = j.at("kiln_version").get<std::string>();
    h.backend = j.at("backend").get<std::string>();
    h.device = j.at("device").get<std::string>();
    h.precision = ParsePrecision(j.at("precision").get<std::string>());
    h.profile = ProfileFromJson(j);
    h.engine_name = j.at("engine_name").get<std::string>();
  } catch (const json::exception& e) {
    Corrupt(what, fmt::format("engine file header does not parse: {}", e.what()));
  } catch (const Error& e) {
    Corrupt(what, fmt::format("engine file header does not parse: {}", e.what()));
  }
  file.payload.assign(payload.data(), payload.size());
  return file;
}

}  // namespace kiln::convert
