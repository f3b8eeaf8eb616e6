// The .kiln file: one self-contained file holding a converted model (everything a converted
// SavedModel directory holds, see convert/converted_model.h): the converted IR graph (engine
// nodes with their native segments, frozen weights), the signature, conversion.json and every
// engine file.
//
// Stored in Kiln's container (convert/container.h) with magic "KILNFILE".
// Header JSON:
//   {"kiln_version": "0.1.0",                    the writer's KILN_VERSION (informational)
//    "tags": ["serve"],                          the source meta graph's tags
//    "signature": {"key": "serving_default",     "" when the model has no signature
//                  "inputs":  [{"name": "x", "dtype": "float32", "shape": [-1, 28]}, ...],
//                  "outputs": [{"name": "y", "dtype": "float32", "shape": null}, ...]}}
//                                                shape null = unknown rank, -1 = unknown dim;
//                                                names are signature keys (graph input/output names)
// Sections:
//   "graph"            the converted graph: a GraphDef (binary protobuf, deterministic) from
//                      convert::EncodeIrGraph (convert/ir_codec.h); exactly one
//   "conversion"       conversion.json, verbatim (parameters and the non-conversion report); exactly one
//   "engine:NAME#I"    one engine file (convert/engine_file.h, with its own header and checksums),
//                      verbatim: file I (0, 1, ... in file order) of the engine node NAME
//   Readers ignore header keys and sections they do not know; the format version lives only in the
//   container's binary field.
//
// Format version 1 (before the container) had the same magic and version field; it is refused
// with a message saying to rebuild the file with `kiln build`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "convert/converted_model.h"

namespace kiln::convert {

inline constexpr uint32_t kKilnFileFormatVersion = 2;
inline constexpr char kKilnFileMagic[8] = {'K', 'I', 'L', 'N', 'F', 'I', 'L', 'E'};
inline constexpr char kKilnFileExtension[] = ".kiln";

// The file's bytes. kInvalidArgument when a signature input or output names no graph input /
// output, or the graph cannot be encoded.
std::string EncodeKilnFile(const ConvertedModel& model);

// Parses and verifies a .kiln file's bytes; `what` (the path) starts every error message.
// kDataLoss for a bad magic, a truncated file, trailing bytes, a header or section that does not
// parse, or a CRC32C mismatch (the message says "checksum" and names the header or section);
// kInvalidArgument for a file written by another Kiln format version (newer or older than
// kKilnFileFormatVersion). Engine sections are returned verbatim (checked by the loader). Never
// reads out of bounds. The signature is returned with its TensorInfo names pointing at the
// encoded graph's tensors, as ReadConvertedModel does.
ConvertedModel DecodeKilnFile(std::string_view bytes, const std::string& what);

// Writes EncodeKilnFile(model) to a temporary file next to `path` and renames it into place.
void WriteKilnFile(const std::string& path, const ConvertedModel& model);
// Reads and decodes `path` (kNotFound when it cannot be opened).
ConvertedModel ReadKilnFile(const std::string& path);

// True when `path` is not a directory and either starts with the .kiln magic or ends in ".kiln"
// (so a damaged .kiln file is reported as such rather than as a missing SavedModel). Never throws.
bool IsKilnFile(const std::string& path);

}  // namespace kiln::convert
