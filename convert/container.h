// Kiln's file container, shared by engine files (convert/engine_file.h) and .kiln files
// (convert/kiln_file.h): a magic naming the file kind, a format version, a JSON header and named
// sections, every byte covered by a CRC32C.
//
// Layout (integers little-endian; checksums are CRC32C stored masked, crc32c::Mask):
//   offset 0   8 bytes  magic (one per file kind)
//          8   u32      format version
//         12   u32      header length H
//         16   H bytes  header: UTF-8 JSON object (its keys belong to the file kind)
//     16 + H   u32      section count N
//     20 + H   the section table, N entries, each:
//                u32      name length K
//                K bytes  name (UTF-8, unique within the file)
//                u64      payload length L
//                u32      masked CRC32C of the payload
//          T   u32      masked CRC32C of bytes [0, T): magic through section table
//      T + 4   the payloads, back to back in table order; the file ends right after the last one
//
// Magic and version sit at the same offsets in every version of every Kiln file, so a reader
// tells a file of another version apart without reading anything else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::convert {

// One kind of container file.
struct ContainerFormat {
  std::string_view magic;       // exactly 8 bytes
  uint32_t version = 0;         // the version written, and the only one read
  std::string_view file_noun;   // starts messages: "engine file", ".kiln file"
  std::string_view when_older;  // what to do about a file of an older version, e.g. "rebuild it with `kiln build`"
};

struct ContainerSection {
  std::string name;
  std::string_view payload;  // read: a view into the bytes given to ReadContainer
};

// The file's bytes. kInvalidArgument when the header, a name or the section count does not fit
// its length field, or two sections share a name.
std::string WriteContainer(const ContainerFormat& format, const nlohmann::json& header,
                           const std::vector<ContainerSection>& sections);

struct Container {
  nlohmann::json header;                   // a JSON object
  std::vector<ContainerSection> sections;  // in file order, every checksum verified
  // The section called `name`, or nullptr.
  const ContainerSection* Find(std::string_view name) const;
};

// Parses and verifies a container. Every length is checked against the file's size before it is
// used, and every checksum before anything is returned; never reads out of bounds. Errors start
// with `what` (e.g. the path): kDataLoss for a bad magic, a truncated file (the message names the
// section that is cut or missing), trailing bytes, a header that is not a JSON object, a checksum
// mismatch (the message says "checksum" and names the header or the section) or a repeated
// section name; kInvalidArgument for a file of another format version (newer: upgrade Kiln;
// older: format.when_older).
Container ReadContainer(const ContainerFormat& format, std::string_view bytes, const std::string& what);

// "section 2 'graph'": how messages name a section.
std::string SectionLabel(size_t index, std::string_view name);

// Throws kDataLoss "<what>: <reason>".
[[noreturn]] void ThrowDataLoss(const std::string& what, const std::string& reason);

}  // namespace kiln::convert
