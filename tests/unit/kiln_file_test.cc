// The .kiln file format: round trip, and every truncation and every flipped byte is an error
// naming what is wrong (never a crash, never a silently different model).
#include "convert/kiln_file.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "convert/engine_file.h"
#include "convert/ir_codec.h"
#include "ir/passes/pass.h"
#include "tests/unit/container_test_util.h"
#include "tests/unit/converted_model_test_util.h"

namespace kiln::convert {
namespace {

namespace fs = std::filesystem;

using testing::DeterministicBytes;
using testing::ExpectError;
using testing::ExpectSameResults;
using testing::LayoutOf;
using testing::TensorInfoOf;
using testing::U32At;

// The sample model as a .kiln file carries it: the "probs" output of unknown rank.
ConvertedModel SampleModel() {
  ConvertedModel m = testing::SampleConvertedModel();
  tfproto::TensorInfo probs = TensorInfoOf("StatefulPartitionedCall:1", 1, {});
  probs.mutable_tensor_shape()->set_unknown_rank(true);
  (*m.signature.mutable_outputs())["probs"] = probs;
  return m;
}

TEST(KilnFile, RoundTrip) {
  const ConvertedModel model = SampleModel();
  ir::Verify(model.graph);
  const std::string bytes = EncodeKilnFile(model);
  ASSERT_GE(bytes.size(), 16u);
  EXPECT_EQ(bytes.substr(0, 8), "KILNFILE");
  EXPECT_EQ(U32At(bytes, 8), kKilnFileFormatVersion);
  EXPECT_EQ(EncodeKilnFile(model), bytes) << "encoding is deterministic";
  EXPECT_EQ(LayoutOf(bytes).names,
            (std::vector<std::string>{"graph", "conversion", "engine:model/KilnEngineOp_000#0",
                                      "engine:model/KilnEngineOp_000#1", "engine:plain_engine#0"}));

  const ConvertedModel back = DecodeKilnFile(bytes, "sample.kiln");
  EXPECT_EQ(back.tags, model.tags);
  EXPECT_EQ(back.signature_key, "serving_default");
  EXPECT_EQ(back.conversion_json, model.conversion_json);
  EXPECT_EQ(back.engine_files, model.engine_files);
  EXPECT_EQ(DeterministicBytes(convert::EncodeIrGraph(back.graph)),
            DeterministicBytes(convert::EncodeIrGraph(model.graph)));
  ir::Verify(back.graph);
  // The signature: same keys, dtypes and shapes; tensor names point at the encoded graph.
  const tfproto::GraphDef gd = convert::EncodeIrGraph(back.graph);
  ASSERT_EQ(back.signature.inputs().size(), 2u);
  ASSERT_EQ(back.signature.outputs().size(), 2u);
  EXPECT_EQ(back.signature.inputs().at("x").dtype(), 1);
  EXPECT_EQ(back.signature.inputs().at("x").tensor_shape().dim_size(), 2);
  EXPECT_EQ(back.signature.inputs().at("x").tensor_shape().dim(0).size(), -1);
  EXPECT_EQ(back.signature.inputs().at("x").tensor_shape().dim(1).size(), 3);
  EXPECT_EQ(back.signature.inputs().at("flag").dtype(), 10);
  EXPECT_EQ(back.signature.inputs().at("flag").tensor_shape().dim_size(), 0);
  EXPECT_FALSE(back.signature.inputs().at("flag").tensor_shape().unknown_rank());
  EXPECT_TRUE(back.signature.outputs().at("probs").tensor_shape().unknown_rank());
  EXPECT_EQ(back.signature.inputs().at("x").name(), convert::EncodedInputTensors(gd)[0]);
  EXPECT_EQ(back.signature.outputs().at("probs").name(), convert::EncodedOutputTensors(gd)[1]);

  // The decoded graph runs the same.
  ExpectSameResults(model.graph, back.graph, /*flag=*/true);
}

TEST(KilnFile, NoSignatureAndNoEngines) {
  ConvertedModel model = SampleModel();
  model.signature_key.clear();
  model.signature = {};
  model.engine_files.clear();
  const ConvertedModel back = DecodeKilnFile(EncodeKilnFile(model), "x.kiln");
  EXPECT_TRUE(back.signature_key.empty());
  EXPECT_TRUE(back.engine_files.empty());
  EXPECT_EQ(back.conversion_json, model.conversion_json);
}

TEST(KilnFile, SignatureNamingNoGraphInputIsRefusedOnWrite) {
  ConvertedModel model = SampleModel();
  (*model.signature.mutable_inputs())["nope"] = TensorInfoOf("nope:0", 1, {});
  ExpectError([&] { EncodeKilnFile(model); }, ErrorCode::kInvalidArgument, {"'nope'"});
}

TEST(KilnFile, WriteReadFileAndDetection) {
  const fs::path dir = fs::temp_directory_path() / ("kiln_file_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const ConvertedModel model = SampleModel();
  const std::string path = (dir / "model.kiln").string();
  WriteKilnFile(path, model);
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  EXPECT_TRUE(IsKilnFile(path));
  EXPECT_EQ(ReadKilnFile(path).engine_files, model.engine_files);
  // Detected by its magic under any name; a directory or a missing path is not a .kiln file.
  const std::string other = (dir / "model.bin").string();
  fs::copy_file(path, other);
  EXPECT_TRUE(IsKilnFile(other));
  EXPECT_FALSE(IsKilnFile(dir.string()));
  EXPECT_FALSE(IsKilnFile((dir / "missing").string()));
  {
    std::ofstream out(dir / "not_kiln.txt");
    out << "hello world";
  }
  EXPECT_FALSE(IsKilnFile((dir / "not_kiln.txt").string()));
  // A damaged file with the .kiln extension is still taken as one, so the error says what is wrong.
  {
    std::ofstream out(dir / "damaged.kiln");
    out << "garbage";
  }
  EXPECT_TRUE(IsKilnFile((dir / "damaged.kiln").string()));
  ExpectError([&] { ReadKilnFile((dir / "damaged.kiln").string()); }, ErrorCode::kDataLoss, {"damaged.kiln", "bad magic"});
  ExpectError([&] { ReadKilnFile((dir / "missing.kiln").string()); }, ErrorCode::kNotFound, {"missing.kiln"});
  // Writing over a directory fails cleanly.
  ExpectError([&] { WriteKilnFile(dir.string(), model); }, ErrorCode::kInvalidArgument, {"cannot write"});
  fs::remove_all(dir);
}

TEST(KilnFile, TruncationAnywhereIsDataLoss) {
  const std::string bytes = EncodeKilnFile(SampleModel());
  const testing::ContainerLayout l = LayoutOf(bytes);
  ASSERT_EQ(l.names.size(), 5u);  // graph, conversion, 3 engine files
  EXPECT_EQ(l.payload_ends.back(), bytes.size());
  ExpectError([&] { DecodeKilnFile("", "t.kiln"); }, ErrorCode::kDataLoss, {"t.kiln", "empty"});
  // Every section boundary, the section named.
  for (size_t i = 0; i < l.names.size(); ++i) {
    const std::string label = fmt::format("section {} '{}'", i, l.names[i]);
    ExpectError([&] { DecodeKilnFile(bytes.substr(0, l.payload_starts[i]), "t.kiln"); }, ErrorCode::kDataLoss,
                {"t.kiln", "truncated", label + " is missing"}, fmt::format("cut before section {}", i));
    ExpectError([&] { DecodeKilnFile(bytes.substr(0, l.payload_ends[i] - 1), "t.kiln"); }, ErrorCode::kDataLoss,
                {"t.kiln", "truncated", label + " has"}, fmt::format("cut inside section {}", i));
  }
  ExpectError([&] { DecodeKilnFile(bytes.substr(0, l.header_end), "t.kiln"); }, ErrorCode::kDataLoss, {"truncated"});
  // And every other length (a copy of exactly n bytes, so that sanitizers see a read past it).
  for (size_t n = 1; n < bytes.size(); ++n) {
    const std::string cut = bytes.substr(0, n);
    ExpectError([&] { DecodeKilnFile(cut, "t.kiln"); }, ErrorCode::kDataLoss, {"t.kiln", "truncated"},
                fmt::format("cut at {} of {}", n, bytes.size()));
  }
  // Extra bytes at the end.
  ExpectError([&] { DecodeKilnFile(bytes + "x", "t.kiln"); }, ErrorCode::kDataLoss, {"unexpected bytes"});
}

TEST(KilnFile, EveryFlippedByteIsAnError) {
  const std::string bytes = EncodeKilnFile(SampleModel());
  const testing::ContainerLayout l = LayoutOf(bytes);
  // A flipped payload byte: a checksum error naming the section.
  for (size_t i = 0; i < l.payload_starts.size(); ++i) {
    for (size_t at : {l.payload_starts[i], (l.payload_starts[i] + l.payload_ends[i]) / 2, l.payload_ends[i] - 1}) {
      std::string bad = bytes;
      bad[at] = static_cast<char>(bad[at] ^ 0x20);
      ExpectError([&] { DecodeKilnFile(bad, "f.kiln"); }, ErrorCode::kDataLoss,
                  {"f.kiln", fmt::format(".kiln file section {} '{}' checksum mismatch", i, l.names[i])},
                  fmt::format("byte {}", at));
    }
  }
  // A flipped header or section table byte: the header checksum.
  for (size_t at : {size_t{20}, l.entry_starts[2] + 6, l.checksum_at}) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 1);
    ExpectError([&] { DecodeKilnFile(bad, "f.kiln"); }, ErrorCode::kDataLoss, {"header checksum"},
                fmt::format("byte {}", at));
  }
  // Magic.
  {
    std::string bad = bytes;
    bad[3] = 'X';
    ExpectError([&] { DecodeKilnFile(bad, "f.kiln"); }, ErrorCode::kDataLoss, {"bad magic"});
  }
  // Every byte, every bit: always an error (another version number is kInvalidArgument), never a
  // crash, never a model.
  for (size_t at = 0; at < bytes.size(); ++at) {
    for (int bit : {0, 7}) {
      std::string bad = bytes;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      try {
        DecodeKilnFile(bad, "f.kiln");
        ADD_FAILURE() << "flipping bit " << bit << " of byte " << at << " was not detected";
      } catch (const Error& e) {
        if (at >= 8 && at < 12 && e.code() == ErrorCode::kInvalidArgument) continue;  // the version field
        EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << "byte " << at << ": " << e.what();
      }
    }
  }
}

TEST(KilnFile, NewerAndZeroVersions) {
  const std::string bytes = EncodeKilnFile(SampleModel());
  std::string newer = bytes;
  newer[8] = static_cast<char>(kKilnFileFormatVersion + 1);
  ExpectError([&] { DecodeKilnFile(newer, "n.kiln"); }, ErrorCode::kInvalidArgument,
              {"n.kiln", "newer Kiln", "format version 3"});
  std::string zero = bytes;
  zero[8] = 0;
  ExpectError([&] { DecodeKilnFile(zero, "z.kiln"); }, ErrorCode::kDataLoss, {"version 0"});
}

// A .kiln file written by the format version 1 writer (checked in, see tests/unit/data/README.md).
TEST(KilnFile, Version1FileIsRefusedSayingToRebuild) {
  const std::string old = testing::ReadTestData("sample_v1.kiln");
  ASSERT_GT(old.size(), 16u);
  ASSERT_EQ(old.substr(0, 8), "KILNFILE");
  ASSERT_EQ(U32At(old, 8), 1u);
  ExpectError([&] { DecodeKilnFile(old, "old.kiln"); }, ErrorCode::kInvalidArgument,
              {"old.kiln: the .kiln file was written by an older Kiln (format version 1; this build reads version 2); "
               "rebuild it with `kiln build`"});
  // Also when read from disk, as `kiln run` and LoadModel do.
  const fs::path path = fs::temp_directory_path() / ("kiln_v1_" + std::to_string(::getpid()) + ".kiln");
  std::ofstream(path, std::ios::binary) << old;
  EXPECT_TRUE(IsKilnFile(path.string()));
  ExpectError([&] { ReadKilnFile(path.string()); }, ErrorCode::kInvalidArgument,
              {path.string(), "format version 1", "kiln build"});
  fs::remove(path);
}

TEST(KilnFile, SectionsAreCheckedByKind) {
  const std::string bytes = EncodeKilnFile(SampleModel());
  const testing::ContainerLayout l = LayoutOf(bytes);
  const std::string header = bytes.substr(16, l.header_end - 16);
  std::vector<testing::RawSection> sections;
  for (size_t i = 0; i < l.names.size(); ++i)
    sections.push_back({l.names[i], bytes.substr(l.payload_starts[i], l.payload_ends[i] - l.payload_starts[i])});
  auto file_with = [&](const std::vector<testing::RawSection>& s) {
    return testing::ContainerBytes("KILNFILE", 2, header, s);
  };
  EXPECT_EQ(file_with(sections), bytes);
  // Unknown sections are skipped.
  auto extra = sections;
  extra.push_back({"future", "x"});
  EXPECT_EQ(DecodeKilnFile(file_with(extra), "e.kiln").engine_files, SampleModel().engine_files);
  // No graph / no conversion.
  ExpectError(
      [&] {
        DecodeKilnFile(file_with({sections.begin() + 1, sections.end()}), "g.kiln");
      },
      ErrorCode::kDataLoss, {"g.kiln", "no graph section"});
  auto no_conversion = sections;
  no_conversion.erase(no_conversion.begin() + 1);
  ExpectError([&] { DecodeKilnFile(file_with(no_conversion), "c.kiln"); }, ErrorCode::kDataLoss,
              {"no conversion section"});
  // Engine files out of order, or an engine section without its index.
  auto swapped = sections;
  std::swap(swapped[2], swapped[3]);
  ExpectError([&] { DecodeKilnFile(file_with(swapped), "o.kiln"); }, ErrorCode::kDataLoss,
              {"section 2 'engine:model/KilnEngineOp_000#1'", "out of order"});
  auto unnumbered = sections;
  unnumbered[4].name = "engine:plain_engine";
  ExpectError([&] { DecodeKilnFile(file_with(unnumbered), "u.kiln"); }, ErrorCode::kDataLoss,
              {"section 4 'engine:plain_engine'", "#<index>"});
  // A graph section that is not a GraphDef.
  auto bad_graph = sections;
  bad_graph[0].payload = "\xff\xff\xff";
  ExpectError([&] { DecodeKilnFile(file_with(bad_graph), "p.kiln"); }, ErrorCode::kDataLoss,
              {"graph section", "GraphDef"});
}

}  // namespace
}  // namespace kiln::convert
