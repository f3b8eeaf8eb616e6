// Container writing and verified reading (the layout is described in container.h).
#include "convert/container.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "common/crc32c.h"
#include "convert/byte_io.h"
#include "kiln/error.h"

namespace kiln::convert {
namespace {

using nlohmann::json;

constexpr size_t kMagicSize = 8;
constexpr size_t kPrefixSize = kMagicSize + 4 + 4;  // magic, version, header length
constexpr size_t kCountSize = 4;
constexpr size_t kChecksumSize = 4;
constexpr size_t kMinEntrySize = 4 + 8 + 4;  // name length, payload length, payload CRC (empty name)

// Reads the fields of a container front to back. Every read is preceded by a check that the
// bytes are there, phrased for the message of a file that ends early.
class FieldReader {
 public:
  FieldReader(std::string_view bytes, const ContainerFormat& format, const std::string& what)
      : bytes_(bytes), format_(format), what_(what) {}

  size_t at() const { return at_; }
  size_t left() const { return bytes_.size() - at_; }
  void Skip(size_t n) {
    Need(n, "");
    at_ += n;
  }

  // Fails with "<file> is truncated (<needed_for>)" unless `n` more bytes are present.
  void Need(uint64_t n, const std::string& needed_for) const {
    if (n > left())
      ThrowDataLoss(what_,
                    fmt::format("the {} is truncated ({} bytes; {})", format_.file_noun, bytes_.size(), needed_for));
  }
  uint32_t U32(const std::string& needed_for) {
    Need(4, needed_for);
    const uint32_t v = GetU32(bytes_, at_);
    at_ += 4;
    return v;
  }
  uint64_t U64(const std::string& needed_for) {
    Need(8, needed_for);
    const uint64_t v = GetU64(bytes_, at_);
    at_ += 8;
    return v;
  }
  std::string_view Bytes(uint64_t n, const std::string& needed_for) {
    Need(n, needed_for);
    const std::string_view v = bytes_.substr(at_, static_cast<size_t>(n));
    at_ += static_cast<size_t>(n);
    return v;
  }

 private:
  std::string_view bytes_;
  const ContainerFormat& format_;
  const std::string& what_;
  size_t at_ = 0;
};

void CheckMagicAndVersion(const ContainerFormat& format, std::string_view bytes, const std::string& what) {
  if (bytes.empty()) ThrowDataLoss(what, fmt::format("the {} is truncated (it is empty)", format.file_noun));
  // A file shorter than the magic is still told apart from a file of another kind.
  if (std::memcmp(bytes.data(), format.magic.data(), std::min(bytes.size(), kMagicSize)) != 0)
    ThrowDataLoss(what, fmt::format("bad magic (not a Kiln {})", format.file_noun));
  if (bytes.size() < kPrefixSize)
    ThrowDataLoss(what, fmt::format("the {} is truncated ({} bytes; its fixed header needs {})", format.file_noun,
                                    bytes.size(), kPrefixSize));
  const uint32_t version = GetU32(bytes, kMagicSize);
  if (version == 0) ThrowDataLoss(what, fmt::format("the {} has format version 0", format.file_noun));
  if (version > format.version)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the {} was written by a newer Kiln (format version {}; this build reads version {}); "
                            "rebuild it with this Kiln or upgrade Kiln",
                            what, format.file_noun, version, format.version));
  if (version < format.version)
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("{}: the {} was written by an older Kiln (format version {}; this build reads version {}); {}",
                    what, format.file_noun, version, format.version, format.when_older));
}

}  // namespace

void ThrowDataLoss(const std::string& what, const std::string& reason) {
  throw Error(ErrorCode::kDataLoss, fmt::format("{}: {}", what, reason));
}

std::string SectionLabel(size_t index, std::string_view name) { return fmt::format("section {} '{}'", index, name); }

const ContainerSection* Container::Find(std::string_view name) const {
  for (const ContainerSection& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

std::string WriteContainer(const ContainerFormat& format, const json& header,
                           const std::vector<ContainerSection>& sections) {
  // Invalid UTF-8 (say, in a device string) is replaced rather than thrown on.
  const std::string header_bytes = header.dump(2, ' ', false, json::error_handler_t::replace);
  auto too_large = [&](const std::string& part) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the {}'s {} is too large for its length field", format.file_noun, part));
  };
  if (header_bytes.size() > UINT32_MAX) too_large("header");
  if (sections.size() > UINT32_MAX) too_large("section table");
  std::set<std::string_view> names;
  size_t total = kPrefixSize + header_bytes.size() + kCountSize + kChecksumSize;
  for (const ContainerSection& s : sections) {
    if (s.name.size() > UINT32_MAX) too_large(fmt::format("section name '{}...'", s.name.substr(0, 32)));
    if (!names.insert(s.name).second)
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("the {} would hold two sections named '{}'", format.file_noun, s.name));
    total += kMinEntrySize + s.name.size() + s.payload.size();
  }

  std::string out;
  out.reserve(total);
  out.append(format.magic.data(), kMagicSize);
  PutU32(out, format.version);
  PutU32(out, static_cast<uint32_t>(header_bytes.size()));
  out += header_bytes;
  PutU32(out, static_cast<uint32_t>(sections.size()));
  for (const ContainerSection& s : sections) {
    PutU32(out, static_cast<uint32_t>(s.name.size()));
    out += s.name;
    PutU64(out, s.payload.size());
    PutU32(out, crc32c::Mask(crc32c::Value(s.payload)));
  }
  PutU32(out, crc32c::Mask(crc32c::Value(out)));
  for (const ContainerSection& s : sections) out.append(s.payload.data(), s.payload.size());
  return out;
}

Container ReadContainer(const ContainerFormat& format, std::string_view bytes, const std::string& what) {
  CheckMagicAndVersion(format, bytes, what);
  FieldReader r(bytes, format, what);
  r.Skip(kMagicSize + 4);  // checked above, as is the header length's presence
  const uint32_t header_size = r.U32("");
  const std::string_view header_text = r.Bytes(header_size, fmt::format("its {}-byte header is cut", header_size));

  // The section table. Entries are at least kMinEntrySize bytes, so a count that cannot fit is
  // caught before anything is allocated for it.
  const uint32_t count = r.U32("the section count is missing");
  if (count > r.left() / kMinEntrySize)
    ThrowDataLoss(what,
                  fmt::format("the {} is truncated or corrupt: its section table lists {} sections, more than its {} "
                              "bytes can hold",
                              format.file_noun, count, bytes.size()));
  struct Entry {
    std::string name;
    uint64_t size;
    uint32_t crc;
  };
  std::vector<Entry> entries(count);
  for (uint32_t i = 0; i < count; ++i) {
    const std::string cut = fmt::format("the section table is cut at entry {} of {}", i, count);
    const uint32_t name_size = r.U32(cut);
    entries[i].name = std::string(r.Bytes(name_size, cut));
    entries[i].size = r.U64(cut);
    entries[i].crc = crc32c::Unmask(r.U32(cut));
  }
  const size_t checked_end = r.at();
  const uint32_t header_crc = crc32c::Unmask(r.U32("the header checksum is missing"));
  if (crc32c::Value(bytes.data(), checked_end) != header_crc)
    ThrowDataLoss(
        what, fmt::format("{} header checksum mismatch (the header or section table is corrupt)", format.file_noun));

  // Lengths first (a file cut short names the section it loses), then checksums.
  Container c;
  std::set<std::string_view> names;
  for (uint32_t i = 0; i < count; ++i) {
    const Entry& e = entries[i];
    if (!names.insert(e.name).second)
      ThrowDataLoss(what, fmt::format("the {} has two sections named '{}'", format.file_noun, e.name));
    if (r.left() == 0 && e.size > 0)
      ThrowDataLoss(what, fmt::format("the {} is truncated: {} is missing", format.file_noun, SectionLabel(i, e.name)));
    if (e.size > r.left())
      ThrowDataLoss(what, fmt::format("the {} is truncated: {} has {} of its {} bytes", format.file_noun,
                                      SectionLabel(i, e.name), r.left(), e.size));
    c.sections.push_back({e.name, r.Bytes(e.size, "")});
  }
  if (r.left() != 0)
    ThrowDataLoss(what,
                  fmt::format("the {} has {} unexpected bytes after its last section", format.file_noun, r.left()));
  for (uint32_t i = 0; i < count; ++i)
    if (crc32c::Value(c.sections[i].payload) != entries[i].crc)
      ThrowDataLoss(what, fmt::format("{} {} checksum mismatch (the section is corrupt)", format.file_noun,
                                      SectionLabel(i, c.sections[i].name)));

  try {
    c.header = json::parse(header_text);
  } catch (const json::exception& e) {
    ThrowDataLoss(what, fmt::format("{} header does not parse: {}", format.file_noun, e.what()));
  }
  if (!c.header.is_object()) ThrowDataLoss(what, fmt::format("{} header is not a JSON object", format.file_noun));
  return c;
}

}  // namespace kiln::convert
