// The .kiln file: one self-contained file holding a converted model (everything a converted
// SavedModel directory holds, see convert/converted_model.h): the converted IR graph (engine
// nodes with their native segments, frozen weights), the signature, conversion.json and every
// engine file.
//
// Layout (integers little-endian):
//   offset 0   8 bytes  magic "KILNFILE"
//          8   u32      format version (kKilnFileFormatVersion)
//         12   u32      header length H
//         16   H bytes  header: UTF-8 JSON object, see below
//     16 + H   u32      masked CRC32C (crc32c::Mask) of bytes [0, 16 + H): magic, version, header
//                       length and header
//     20 + H   sections, back to back, in the order the header's "sections" lists them. Each:
//                u64      payload length L (must equal the header's "size" for it)
//                u32      masked CRC32C of the payload
//                L bytes  payload
//              The file ends right after the last section (trailing bytes are an error).
// Header JSON:
//   {"kiln_version": "0.1.0",                    the writer's KILN_VERSION (informational)
//    "tags": ["serve"],                          the source meta graph's tags
//    "signature": {"key": "serving_default",     "" when the model has no signature
//                  "inputs":  [{"name": "x", "dtype": "float32", "shape": [-1, 28]}, ...],
//                  "outputs": [{"name": "y", "dtype": "float32", "shape": null}, ...]},
//                                                shape null = unknown rank, -1 = unknown dim;
//                                                names are signature keys (graph input/output names)
//    "sections": [{"kind": "graph", "size": N},
//                 {"kind": "conversion", "size": N},
//                 {"kind": "engine", "engine": "<engine node name>", "index": i, "size": N}, ...]}
//   Section kinds (exactly one "graph" and one "conversion"; any number of "engine"):
//     graph       the converted graph: a GraphDef (binary protobuf, deterministic) from
//                 convert::EncodeIrGraph (convert/ir_codec.h)
//     conversion  conversion.json, verbatim (parameters and the non-conversion report)
//     engine      one engine file (convert/engine_file.h: its own versioned, checksummed header),
//                 verbatim; "index" orders the engine files of one engine node (0, 1, ...)
//   Readers ignore header keys they do not know; the format version lives only in the binary field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "convert/converted_model.h"

namespace kiln::convert {

inline constexpr uint32_t kKilnFileFormatVersion = 1;
inline constexpr char kKilnFileMagic[8] = {'K', 'I', 'L', 'N', 'F', 'I', 'L', 'E'};
inline constexpr char kKilnFileExtension[] = ".kiln";

// The file's bytes. kInvalidArgument when a signature input or output names no graph input /
// output, or the graph cannot be encoded.
std::string EncodeKilnFile(const ConvertedModel& model);

// Parses and verifies a .kiln file's bytes; `what` (the path) starts every error message.
// kDataLoss for a bad magic, a truncated file, trailing bytes, a header or section that does not
// parse, or a CRC32C mismatch (the message says "checksum" and names the header or section);
// kInvalidArgument for a file written by a newer Kiln (format version above
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
