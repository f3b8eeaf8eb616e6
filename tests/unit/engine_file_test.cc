// The engine file format: round trip, and corruption of every kind is kDataLoss (or
// kInvalidArgument for a newer format), never a crash or an out-of-bounds read.
#include "convert/engine_file.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kiln/version.h"
#include "tests/unit/container_test_util.h"

namespace kiln::convert {
namespace {

EngineHeader SampleHeader() {
  EngineHeader h;
  h.kiln_version = KILN_VERSION;
  h.backend = "cpu";
  h.device = "x86-64 avx2 fma";
  h.precision = Precision::kFP16;
  h.profile.inputs.push_back({{4, 128}, {8, 128}, {8, 384}});
  h.profile.inputs.push_back({{1}, {1}, {1}});
  h.engine_name = "KilnEngineOp_000";
  return h;
}

std::string SamplePayload() {
  std::string p;
  for (int i = 0; i < 300; ++i) p.push_back(static_cast<char>(i * 7));  // binary, NULs included
  return p;
}

void ExpectSameHeader(const EngineHeader& a, const EngineHeader& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.kiln_version, b.kiln_version);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.precision, b.precision);
  ASSERT_EQ(a.profile.inputs.size(), b.profile.inputs.size());
  for (size_t i = 0; i < a.profile.inputs.size(); ++i) {
    EXPECT_EQ(a.profile.inputs[i].min, b.profile.inputs[i].min);
    EXPECT_EQ(a.profile.inputs[i].opt, b.profile.inputs[i].opt);
    EXPECT_EQ(a.profile.inputs[i].max, b.profile.inputs[i].max);
  }
  EXPECT_EQ(a.engine_name, b.engine_name);
}

using testing::ExpectError;
using testing::SetU32At;

// A file with the given header bytes and valid checksums (to test header parsing itself).
std::string FileWithHeader(const std::string& header, const std::string& payload) {
  return testing::ContainerBytes(std::string_view(kEngineFileMagic, 8), kEngineFormatVersion, header,
                                 {{"payload", payload}});
}

TEST(EngineFile, RoundTrip) {
  const EngineHeader h = SampleHeader();
  const std::string payload = SamplePayload();
  const std::string bytes = WriteEngineFile(h, payload);
  EXPECT_EQ(bytes.substr(0, 8), std::string("KILNENG\0", 8));
  const EngineFile f = ReadEngineFile(bytes, "engine.kiln-engine");
  ExpectSameHeader(f.header, h);
  EXPECT_EQ(f.header.format_version, kEngineFormatVersion);
  EXPECT_EQ(f.payload, payload);
  EXPECT_EQ(WriteEngineFile(h, payload), bytes);  // deterministic

  // Empty payload and empty profile.
  EngineHeader empty;
  const EngineFile g = ReadEngineFile(WriteEngineFile(empty, ""), "empty");
  ExpectSameHeader(g.header, empty);
  EXPECT_TRUE(g.payload.empty());
}

TEST(EngineFile, IsAContainerWithOnePayloadSection) {
  const std::string bytes = WriteEngineFile(SampleHeader(), SamplePayload());
  const testing::ContainerLayout l = testing::LayoutOf(bytes);
  EXPECT_EQ(testing::U32At(bytes, 8), 2u);
  EXPECT_EQ(l.names, std::vector<std::string>{"payload"});
  EXPECT_EQ(bytes.substr(l.payload_starts.at(0)), SamplePayload());
  const auto j = nlohmann::json::parse(bytes.substr(16, l.header_end - 16));
  EXPECT_EQ(j.at("backend"), "cpu");
  EXPECT_EQ(j.at("precision"), "FP16");
  EXPECT_EQ(j.at("profile").size(), 2u);
}

TEST(EngineFile, TruncationAtEveryOffsetIsDataLoss) {
  const std::string bytes = WriteEngineFile(SampleHeader(), SamplePayload());
  const testing::ContainerLayout l = testing::LayoutOf(bytes);
  ExpectError([&] { ReadEngineFile(bytes.substr(0, l.payload_starts[0]), "cut"); }, ErrorCode::kDataLoss,
              {"cut", "engine file is truncated", "section 0 'payload' is missing"});
  ExpectError([&] { ReadEngineFile(bytes.substr(0, l.payload_starts[0] + 100), "cut"); }, ErrorCode::kDataLoss,
              {"cut", "section 0 'payload' has 100 of its 300 bytes"});
  for (size_t n = 0; n < bytes.size(); ++n) {
    // A copy of exactly n bytes, so that a read past the end is caught by sanitizers.
    const std::string cut = bytes.substr(0, n);
    try {
      ReadEngineFile(cut, "cut.kiln-engine");
      ADD_FAILURE() << "truncation to " << n << " bytes was accepted";
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::kDataLoss) << n << ": " << e.what();
      ASSERT_NE(std::string(e.what()).find("cut.kiln-engine"), std::string::npos) << e.what();
    }
  }
  ExpectError([&] { ReadEngineFile(bytes + "x", "long"); }, ErrorCode::kDataLoss, {"long", "unexpected bytes"});
}

TEST(EngineFile, FlippedPayloadByteIsAChecksumError) {
  std::string bytes = WriteEngineFile(SampleHeader(), SamplePayload());
  bytes[bytes.size() - 10] ^= 0x20;
  ExpectError([&] { ReadEngineFile(bytes, "/models/m/assets/kiln/engines/e_0.kiln-engine"); }, ErrorCode::kDataLoss,
              {"e_0.kiln-engine", "section 0 'payload' checksum mismatch"});
  // In the header: the header checksum.
  bytes = WriteEngineFile(SampleHeader(), SamplePayload());
  bytes[30] ^= 0x20;
  ExpectError([&] { ReadEngineFile(bytes, "e.kiln-engine"); }, ErrorCode::kDataLoss,
              {"e.kiln-engine", "header checksum mismatch"});
}

TEST(EngineFile, EveryFlippedByteIsDetected) {
  const std::string bytes = WriteEngineFile(SampleHeader(), SamplePayload());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
      std::string b = bytes;
      b[i] = static_cast<char>(static_cast<uint8_t>(b[i]) ^ mask);
      try {
        ReadEngineFile(b, "flip");
        ADD_FAILURE() << "a flip of byte " << i << " was accepted";
      } catch (const Error& e) {
        // Only the version field can read as another version; everything else is corruption.
        if (i >= 8 && i < 12 && e.code() == ErrorCode::kInvalidArgument) continue;
        ASSERT_EQ(e.code(), ErrorCode::kDataLoss) << i << ": " << e.what();
      }
    }
  }
}

TEST(EngineFile, BadMagic) {
  std::string bytes = WriteEngineFile(SampleHeader(), SamplePayload());
  bytes[0] = 'X';
  ExpectError([&] { ReadEngineFile(bytes, "m.bin"); }, ErrorCode::kDataLoss, {"m.bin", "magic"});
  ExpectError([&] { ReadEngineFile("PK\x03\x04 not an engine at all", "zip"); }, ErrorCode::kDataLoss, {"magic"});
  ExpectError([&] { ReadEngineFile("", "empty"); }, ErrorCode::kDataLoss, {"empty", "truncated"});
}

TEST(EngineFile, NewerFormatVersionIsRejected) {
  std::string bytes = WriteEngineFile(SampleHeader(), SamplePayload());
  SetU32At(bytes, 8, kEngineFormatVersion + 1);
  ExpectError([&] { ReadEngineFile(bytes, "new.kiln-engine"); }, ErrorCode::kInvalidArgument, {"new.kiln-engine", "newer Kiln"});
  // Whatever follows the version in a newer format is not looked at.
  std::string tiny = bytes.substr(0, 12);
  ExpectError([&] { ReadEngineFile(tiny, "tiny"); }, ErrorCode::kDataLoss, {"truncated"});
  tiny.append(4, '\xff');
  ExpectError([&] { ReadEngineFile(tiny, "tiny"); }, ErrorCode::kInvalidArgument, {"newer Kiln"});
  SetU32At(bytes, 8, 0);
  ExpectError([&] { ReadEngineFile(bytes, "zero"); }, ErrorCode::kDataLoss, {"version 0"});
}

// An engine file written by the format version 1 writer (checked in, see tests/unit/data/README.md).
TEST(EngineFile, Version1FileIsRefusedSayingToRebuild) {
  const std::string old = testing::ReadTestData("sample_v1.kiln-engine");
  ASSERT_GT(old.size(), 16u);
  ASSERT_EQ(old.substr(0, 8), std::string(kEngineFileMagic, 8));
  ASSERT_EQ(testing::U32At(old, 8), 1u);
  ExpectError(
      [&] { ReadEngineFile(old, "old.kiln-engine"); }, ErrorCode::kInvalidArgument,
      {"old.kiln-engine: the engine file was written by an older Kiln (format version 1; this build reads version 2); "
       "reconvert the model (`kiln convert` or `kiln build`) to save a current engine file"});
}

TEST(EngineFile, MissingPayloadSectionIsDataLoss) {
  const nlohmann::json ok = {{"kiln_version", "0.1.0"},
                             {"backend", "cpu"},
                             {"device", "d"},
                             {"precision", "FP32"},
                             {"profile", nlohmann::json::array()},
                             {"engine_name", "e"}};
  const std::string magic(kEngineFileMagic, 8);
  ExpectError([&] { ReadEngineFile(testing::ContainerBytes(magic, kEngineFormatVersion, ok.dump(), {}), "np"); },
              ErrorCode::kDataLoss, {"np", "no 'payload' section"});
  // Sections it does not know are ignored.
  const std::string extra =
      testing::ContainerBytes(magic, kEngineFormatVersion, ok.dump(), {{"future", "x"}, {"payload", "p"}});
  EXPECT_EQ(ReadEngineFile(extra, "extra").payload, "p");
}

TEST(EngineFile, HeaderThatDoesNotParseIsDataLoss) {
  ExpectError([] { ReadEngineFile(FileWithHeader("{not json", "p"), "h1"); }, ErrorCode::kDataLoss, {"h1", "header"});
  ExpectError([] { ReadEngineFile(FileWithHeader("[1,2]", "p"), "h2"); }, ErrorCode::kDataLoss, {"h2", "header"});
  const nlohmann::json ok = {{"kiln_version", "0.1.0"}, {"backend", "cpu"},     {"device", "d"},
                             {"precision", "FP32"},     {"profile", nlohmann::json::array()}, {"engine_name", "e"}};
  EXPECT_EQ(ReadEngineFile(FileWithHeader(ok.dump(), "p"), "ok").header.engine_name, "e");
  nlohmann::json bad_precision = ok;
  bad_precision["precision"] = "FP64";
  ExpectError([&] { ReadEngineFile(FileWithHeader(bad_precision.dump(), "p"), "h3"); }, ErrorCode::kDataLoss, {"h3"});
  nlohmann::json bad_profile = ok;
  bad_profile["profile"] = {{{"min", {1}}, {"opt", "x"}, {"max", {1}}}};
  ExpectError([&] { ReadEngineFile(FileWithHeader(bad_profile.dump(), "p"), "h4"); }, ErrorCode::kDataLoss, {"h4"});
  nlohmann::json missing = ok;
  missing.erase("device");
  ExpectError([&] { ReadEngineFile(FileWithHeader(missing.dump(), "p"), "h5"); }, ErrorCode::kDataLoss,
              {"h5", "key 'device' not found"});
  // The JSON library's own exception tag is not part of Kiln's message.
  try {
    ReadEngineFile(FileWithHeader(missing.dump(), "p"), "h5");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("json.exception"), std::string::npos) << e.what();
  }
  // Unknown keys are ignored.
  nlohmann::json extra = ok;
  extra["future_field"] = 3;
  EXPECT_EQ(ReadEngineFile(FileWithHeader(extra.dump(), "p"), "ok").payload, "p");
}

}  // namespace
}  // namespace kiln::convert
