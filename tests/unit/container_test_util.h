// Kiln container bytes built and taken apart by hand from the layout documented in
// convert/container.h, so that tests check the documented layout rather than the code under test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/crc32c.h"
#include "kiln/error.h"
#include "tests/unit/test_util.h"

namespace kiln::convert::testing {

inline uint32_t U32At(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(s.at(at + i))) << (8 * i);
  return v;
}
inline uint64_t U64At(std::string_view s, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(s.at(at + i))) << (8 * i);
  return v;
}
inline void AppendU32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void AppendU64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void SetU32At(std::string& s, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) s.at(at + i) = static_cast<char>((v >> (8 * i)) & 0xff);
}

using testutil::ExpectError;

struct RawSection {
  std::string name;
  std::string payload;
};

// A container with any header text (valid JSON or not) and valid checksums.
inline std::string ContainerBytes(std::string_view magic, uint32_t version, std::string_view header,
                                  const std::vector<RawSection>& sections) {
  std::string out(magic);
  AppendU32(out, version);
  AppendU32(out, static_cast<uint32_t>(header.size()));
  out += header;
  AppendU32(out, static_cast<uint32_t>(sections.size()));
  for (const RawSection& s : sections) {
    AppendU32(out, static_cast<uint32_t>(s.name.size()));
    out += s.name;
    AppendU64(out, s.payload.size());
    AppendU32(out, crc32c::Mask(crc32c::Value(s.payload)));
  }
  AppendU32(out, crc32c::Mask(crc32c::Value(out)));
  for (const RawSection& s : sections) out += s.payload;
  return out;
}

// Where the parts of a well-formed container lie.
struct ContainerLayout {
  size_t header_end = 0;   // 16 + H: the section count
  size_t checksum_at = 0;  // the header checksum; the payloads start 4 bytes later
  std::vector<std::string> names;
  std::vector<size_t> entry_starts;  // each section's table entry
  std::vector<size_t> payload_starts, payload_ends;
};

inline ContainerLayout LayoutOf(std::string_view file) {
  ContainerLayout l;
  l.header_end = 16 + U32At(file, 12);
  const uint32_t count = U32At(file, l.header_end);
  size_t at = l.header_end + 4;
  std::vector<uint64_t> sizes;
  for (uint32_t i = 0; i < count; ++i) {
    l.entry_starts.push_back(at);
    const uint32_t name_size = U32At(file, at);
    l.names.emplace_back(file.substr(at + 4, name_size));
    sizes.push_back(U64At(file, at + 4 + name_size));
    at += 4 + name_size + 8 + 4;
  }
  l.checksum_at = at;
  at += 4;
  for (uint64_t size : sizes) {
    l.payload_starts.push_back(at);
    at += size;
    l.payload_ends.push_back(at);
  }
  return l;
}

// Recomputes the header checksum after an edit of the header or section table.
inline void ResealHeader(std::string& file) {
  const size_t at = LayoutOf(file).checksum_at;
  SetU32At(file, at, crc32c::Mask(crc32c::Value(file.data(), at)));
}

// A file under tests/unit/data/ (written by an earlier Kiln; see the README there).
inline std::string ReadTestData(const std::string& name) {
  return testutil::ReadFileBytes(testutil::SourceDir() / "tests" / "unit" / "data" / name);
}

}  // namespace kiln::convert::testing
