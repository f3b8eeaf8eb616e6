// The engine file: one serialized engine in Kiln's container (convert/container.h) with magic
// "KILNENG\0" and one section, "payload" (Backend::Engine::Serialize output).
//
// Header JSON: {"backend": "cpu", "device": "...", "engine_name": "...", "kiln_version": "0.1.0",
//   "precision": "FP32", "profile": [{"min": [..], "opt": [..], "max": [..]}, ...]}. Readers ignore
//   keys and sections they do not know (a same-version writer may add some); the format version
//   lives only in the container's binary field.
//
// Format version 1 (before the container) had the same magic and version field; it is refused
// with a message saying to reconvert the model (the loader rebuilds the engine meanwhile).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "kiln/precision.h"

namespace kiln::convert {

inline constexpr uint32_t kEngineFormatVersion = 2;
inline constexpr char kEngineFileMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};
inline constexpr char kEngineFileExtension[] = ".kiln-engine";

struct EngineHeader {
  uint32_t format_version = kEngineFormatVersion;  // written as kEngineFormatVersion whatever it holds
  std::string kiln_version;                        // KILN_VERSION of the writer
  std::string backend;                             // "cpu"
  std::string device;                              // ISA / GPU model the engine was built for
  Precision precision = Precision::kFP32;
  backend::Profile profile;
  std::string engine_name;
};

// The file's bytes.
std::string WriteEngineFile(const EngineHeader& header, std::string_view payload);

struct EngineFile {
  EngineHeader header;
  std::string payload;
};

// Parses and verifies an engine file. kDataLoss naming `what` (e.g. the file path) for a bad
// magic, a truncated or over-long file, a header that does not parse, a missing payload section,
// or a CRC32C mismatch (the message says "checksum" and names the header or the section);
// kInvalidArgument when the file was written by another Kiln format version (newer or older than
// kEngineFormatVersion). Never reads out of bounds.
EngineFile ReadEngineFile(std::string_view bytes, const std::string& what);

}  // namespace kiln::convert
