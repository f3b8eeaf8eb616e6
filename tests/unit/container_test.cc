// Kiln's file container: the documented layout, and every truncation, flipped byte or foreign
// version is an error naming the file and what is wrong (never a crash or a read out of bounds).
#include "convert/container.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kiln/error.h"
#include "tests/unit/container_test_util.h"

namespace kiln::convert {
namespace {

using testing::ContainerBytes;
using testing::ExpectError;
using testing::LayoutOf;

constexpr ContainerFormat kFormat = {
    .magic = "TESTFILE", .version = 3, .file_noun = "test file", .when_older = "write it again"};

const std::string kBinary("b\0\x01\xff\x80 binary", 12);

std::string Sample() {
  return WriteContainer(kFormat, {{"answer", 42}, {"name", "x"}},
                        {{"first", "one"}, {"empty", ""}, {"third", kBinary}});
}

TEST(Container, WritesTheDocumentedLayout) {
  const std::string bytes = Sample();
  const std::string header = nlohmann::json({{"answer", 42}, {"name", "x"}}).dump(2);
  EXPECT_EQ(bytes, ContainerBytes("TESTFILE", 3, header, {{"first", "one"}, {"empty", ""}, {"third", kBinary}}));
  EXPECT_EQ(Sample(), bytes) << "deterministic";
}

TEST(Container, RoundTrip) {
  const std::string bytes = Sample();  // the sections view these bytes
  const Container c = ReadContainer(kFormat, bytes, "t.bin");
  EXPECT_EQ(c.header.at("answer"), 42);
  ASSERT_EQ(c.sections.size(), 3u);
  EXPECT_EQ(c.sections[0].name, "first");
  EXPECT_EQ(c.sections[0].payload, "one");
  EXPECT_EQ(c.sections[1].payload, "");
  EXPECT_EQ(c.sections[2].payload, kBinary);
  ASSERT_NE(c.Find("third"), nullptr);
  EXPECT_EQ(c.Find("third")->payload, kBinary);
  EXPECT_EQ(c.Find("fourth"), nullptr);
  // No sections at all.
  EXPECT_TRUE(ReadContainer(kFormat, WriteContainer(kFormat, nlohmann::json::object(), {}), "none").sections.empty());
}

TEST(Container, TruncationIsDataLossNamingTheSection) {
  const std::string bytes = Sample();
  const testing::ContainerLayout l = LayoutOf(bytes);
  ExpectError([&] { ReadContainer(kFormat, "", "t.bin"); }, ErrorCode::kDataLoss, {"t.bin", "truncated", "empty"});
  // At every length, a copy of exactly that many bytes (so a read past the end is caught by
  // sanitizers).
  for (size_t n = 1; n < bytes.size(); ++n) {
    const std::string cut = bytes.substr(0, n);
    ExpectError([&] { ReadContainer(kFormat, cut, "t.bin"); }, ErrorCode::kDataLoss,
                {"t.bin", "test file is truncated"}, fmt::format("cut at {} of {}", n, bytes.size()));
  }
  // Cut at a payload boundary: the section that is cut or missing is named.
  ExpectError([&] { ReadContainer(kFormat, bytes.substr(0, l.payload_starts[0]), "t.bin"); }, ErrorCode::kDataLoss,
              {"section 0 'first' is missing"});
  ExpectError([&] { ReadContainer(kFormat, bytes.substr(0, l.payload_starts[0] + 2), "t.bin"); }, ErrorCode::kDataLoss,
              {"section 0 'first' has 2 of its 3 bytes"});
  ExpectError([&] { ReadContainer(kFormat, bytes.substr(0, l.payload_starts[2]), "t.bin"); }, ErrorCode::kDataLoss,
              {"section 2 'third' is missing"});
  ExpectError([&] { ReadContainer(kFormat, bytes.substr(0, l.payload_ends[2] - 1), "t.bin"); }, ErrorCode::kDataLoss,
              {"section 2 'third' has 11 of its 12 bytes"});
  ExpectError([&] { ReadContainer(kFormat, bytes.substr(0, l.checksum_at), "t.bin"); }, ErrorCode::kDataLoss,
              {"header checksum is missing"});
  ExpectError([&] { ReadContainer(kFormat, bytes.substr(0, l.checksum_at - 2), "t.bin"); }, ErrorCode::kDataLoss,
              {"section table is cut at entry 2 of 3"});
  ExpectError([&] { ReadContainer(kFormat, bytes.substr(0, l.entry_starts[1] + 3), "t.bin"); }, ErrorCode::kDataLoss,
              {"its section table lists 3 sections, more than"});
  ExpectError([&] { ReadContainer(kFormat, bytes + "x", "t.bin"); }, ErrorCode::kDataLoss, {"1 unexpected bytes"});
}

TEST(Container, EveryFlippedByteIsDataLoss) {
  const std::string bytes = Sample();
  const testing::ContainerLayout l = LayoutOf(bytes);
  for (size_t at = 0; at < bytes.size(); ++at) {
    for (int bit : {0, 3, 7}) {
      std::string bad = bytes;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      try {
        ReadContainer(kFormat, bad, "f.bin");
        ADD_FAILURE() << "flipping bit " << bit << " of byte " << at << " was not detected";
      } catch (const Error& e) {
        if (at >= 8 && at < 12 && e.code() == ErrorCode::kInvalidArgument) continue;  // another version
        ASSERT_EQ(e.code(), ErrorCode::kDataLoss) << "byte " << at << ": " << e.what();
        EXPECT_NE(std::string(e.what()).find("f.bin"), std::string::npos) << e.what();
      }
    }
  }
  // In a payload: that section's checksum; in the header or the table: the header checksum.
  for (size_t i = 0; i < l.names.size(); ++i) {
    if (l.payload_starts[i] == l.payload_ends[i]) continue;
    std::string bad = bytes;
    bad[l.payload_ends[i] - 1] ^= 0x20;
    ExpectError([&] { ReadContainer(kFormat, bad, "f.bin"); }, ErrorCode::kDataLoss,
                {"f.bin", fmt::format("section {} '{}' checksum mismatch", i, l.names[i])});
  }
  for (size_t at : {size_t{20}, l.entry_starts[1] + 5, l.checksum_at - 1, l.checksum_at}) {
    std::string bad = bytes;
    bad[at] ^= 0x01;
    ExpectError([&] { ReadContainer(kFormat, bad, "f.bin"); }, ErrorCode::kDataLoss, {"header checksum mismatch"},
                fmt::format("byte {}", at));
  }
  std::string bad = bytes;
  bad[2] = 'X';
  ExpectError([&] { ReadContainer(kFormat, bad, "f.bin"); }, ErrorCode::kDataLoss, {"f.bin", "bad magic", "test file"});
  ExpectError([&] { ReadContainer(kFormat, "TEXT", "f.bin"); }, ErrorCode::kDataLoss, {"bad magic"});
}

TEST(Container, OtherVersionsAreRefusedByNumber) {
  std::string newer = Sample();
  testing::SetU32At(newer, 8, 4);
  ExpectError([&] { ReadContainer(kFormat, newer, "n.bin"); }, ErrorCode::kInvalidArgument,
              {"n.bin", "newer Kiln", "format version 4", "reads version 3"});
  // Nothing after the version is looked at: a file of another version may be laid out otherwise.
  ExpectError([&] { ReadContainer(kFormat, newer.substr(0, 16), "n.bin"); }, ErrorCode::kInvalidArgument,
              {"newer Kiln"});
  std::string older = newer.substr(0, 16) + "whatever an older layout had";
  testing::SetU32At(older, 8, 2);
  ExpectError([&] { ReadContainer(kFormat, older, "o.bin"); }, ErrorCode::kInvalidArgument,
              {"o.bin: the test file was written by an older Kiln (format version 2; this build reads version 3); "
               "write it again"});
  testing::SetU32At(older, 8, 0);
  ExpectError([&] { ReadContainer(kFormat, older, "z.bin"); }, ErrorCode::kDataLoss, {"format version 0"});
}

TEST(Container, HeaderAndTableAreChecked) {
  // A header that is not a JSON object, with valid checksums.
  ExpectError([] { ReadContainer(kFormat, ContainerBytes("TESTFILE", 3, "{not json", {}), "h.bin"); },
              ErrorCode::kDataLoss, {"h.bin", "header does not parse"});
  ExpectError([] { ReadContainer(kFormat, ContainerBytes("TESTFILE", 3, "[1, 2]", {}), "h.bin"); },
              ErrorCode::kDataLoss, {"header is not a JSON object"});
  // Two sections with one name.
  ExpectError(
      [] {
        ReadContainer(kFormat, ContainerBytes("TESTFILE", 3, "{}", {{"a", "1"}, {"a", "2"}}), "d.bin");
      },
      ErrorCode::kDataLoss, {"two sections named 'a'"});
  ExpectError([] { WriteContainer(kFormat, {}, {{"a", "1"}, {"a", "2"}}); }, ErrorCode::kInvalidArgument, {"'a'"});
  // A section count far beyond what the file can hold is refused before anything is allocated.
  std::string huge = ContainerBytes("TESTFILE", 3, "{}", {});
  testing::SetU32At(huge, 18, 0xffffffffu);
  ExpectError([&] { ReadContainer(kFormat, huge, "c.bin"); }, ErrorCode::kDataLoss, {"4294967295 sections"});
  // Lengths at the limit of their fields never wrap around.
  std::string long_name = ContainerBytes("TESTFILE", 3, "{}", {{"a", "1"}});
  testing::SetU32At(long_name, 22, 0xffffffffu);
  ExpectError([&] { ReadContainer(kFormat, long_name, "l.bin"); }, ErrorCode::kDataLoss, {"truncated"});
  std::string long_payload = ContainerBytes("TESTFILE", 3, "{}", {{"a", "1"}});
  for (size_t i = 0; i < 8; ++i) long_payload[27 + i] = '\xff';
  testing::ResealHeader(long_payload);
  ExpectError([&] { ReadContainer(kFormat, long_payload, "p.bin"); }, ErrorCode::kDataLoss,
              {"p.bin", "section 0 'a' has 1 of its 18446744073709551615 bytes"});
  std::string long_header = ContainerBytes("TESTFILE", 3, "{}", {});
  testing::SetU32At(long_header, 12, 0xffffffffu);
  ExpectError([&] { ReadContainer(kFormat, long_header, "hl.bin"); }, ErrorCode::kDataLoss, {"truncated", "header"});
}

}  // namespace
}  // namespace kiln::convert
