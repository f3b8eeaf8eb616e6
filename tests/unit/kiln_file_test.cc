// The .kiln file format: round trip, and every truncation and every flipped byte is an error
// naming what is wrong (never a crash, never a silently different model).
#include "convert/kiln_file.h"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "convert/engine_file.h"
#include "convert/ir_codec.h"
#include "ir/op_schema.h"
#include "ir/passes/pass.h"
#include "kiln/version.h"
#include "runtime/executor.h"
#include "tests/unit/container_test_util.h"

namespace kiln::convert {
namespace {

namespace fs = std::filesystem;

std::string Bytes(const tfproto::GraphDef& gd) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  gd.SerializeToCodedStream(&coded);
  return out;
}

ir::NodeId AddInferred(ir::Graph& g, const std::string& op, const std::string& name, std::vector<ir::ValueId> in,
                       ir::AttrMap attrs = {}) {
  ir::Node& n = g.AddNode(op, name, std::move(in), 1);
  n.attrs = std::move(attrs);
  const ir::NodeId id = n.id;
  ir::InferNode(g, id);
  return id;
}
ir::ValueId Out(const ir::Graph& g, ir::NodeId id) { return g.node(id).outputs[0]; }

// x:[batch,3] float, flag: bool scalar. logits = Engine(x) (segment: Relu(x * 2)); probs = If(flag,
// logits) (then: logits + 1, else: logits).
ir::Graph SampleGraph() {
  ir::Graph g;
  const ir::Dim batch = g.NewSymbol("x.0");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({batch, 3}));
  const ir::ValueId flag = g.AddInput("flag", DType::kBool, ir::SymShape::Scalar());
  auto segment = std::make_shared<ir::Graph>();
  {
    const ir::Dim b = segment->NewSymbol("x.0");
    const ir::ValueId in = segment->AddInput("x", DType::kFloat32, ir::SymShape::Of({b, 3}));
    const ir::ValueId two = segment->AddConstant("model/two", Tensor::Scalar<float>(DType::kFloat32, 2.0f));
    const ir::NodeId mul = AddInferred(*segment, "Mul", "model/mul", {in, two});
    segment->AddOutput("model/relu", Out(*segment, AddInferred(*segment, "Relu", "model/relu", {Out(*segment, mul)})));
  }
  ir::AttrMap engine_attrs;
  engine_attrs.Set("segment", segment);
  engine_attrs.Set("engine_name", std::string("KilnEngineOp_000"));
  ir::Node& e = g.AddNode("Engine", "model/KilnEngineOp_000", {x}, 1);
  e.attrs = engine_attrs;
  const ir::NodeId engine = e.id;
  g.value(e.outputs[0]).shape = ir::SymShape::Of({batch, 3});
  ir::InferNode(g, engine);
  auto then_g = std::make_shared<ir::Graph>();
  {
    const ir::ValueId a = then_g->AddInput("a", DType::kFloat32, ir::SymShape::Of({batch, 3}));
    const ir::ValueId one = then_g->AddConstant("one", Tensor::Scalar<float>(DType::kFloat32, 1.0f));
    then_g->AddOutput("r", Out(*then_g, AddInferred(*then_g, "Add", "add", {a, one})));
  }
  auto else_g = std::make_shared<ir::Graph>();
  else_g->AddOutput("r", else_g->AddInput("a", DType::kFloat32, ir::SymShape::Of({batch, 3})));
  ir::AttrMap if_attrs;
  if_attrs.Set("then_branch", then_g);
  if_attrs.Set("else_branch", else_g);
  const ir::NodeId cond = AddInferred(g, "If", "model/cond", {flag, Out(g, engine)}, if_attrs);
  g.AddOutput("logits", Out(g, engine));
  g.AddOutput("probs", Out(g, cond));
  return g;
}

tfproto::TensorInfo Info(const std::string& name, int dtype, std::vector<int64_t> dims) {
  tfproto::TensorInfo info;
  info.set_name(name);
  info.set_dtype(dtype);
  for (int64_t d : dims) info.mutable_tensor_shape()->add_dim()->set_size(d);
  return info;
}

ConvertedModel SampleModel() {
  ConvertedModel m;
  m.tags = {"serve", "gpu"};
  m.signature_key = "serving_default";
  (*m.signature.mutable_inputs())["x"] = Info("serving_default_x:0", 1, {-1, 3});
  (*m.signature.mutable_inputs())["flag"] = Info("serving_default_flag:0", 10, {});
  (*m.signature.mutable_outputs())["logits"] = Info("StatefulPartitionedCall:0", 1, {-1, 3});
  tfproto::TensorInfo probs = Info("StatefulPartitionedCall:1", 1, {});
  probs.mutable_tensor_shape()->set_unknown_rank(true);
  (*m.signature.mutable_outputs())["probs"] = probs;
  m.graph = SampleGraph();
  m.conversion_json = R"({"precision_mode": "FP32", "ops_converted": 3})";
  EngineHeader h;
  h.kiln_version = KILN_VERSION;
  h.backend = "cpu";
  h.device = "x86-64 avx2";
  h.profile.inputs.push_back({{1, 3}, {4, 3}, {8, 3}});
  h.engine_name = "model/KilnEngineOp_000";
  m.engine_files["model/KilnEngineOp_000"] = {WriteEngineFile(h, "payload-0"), WriteEngineFile(h, std::string("p\0\1", 3))};
  m.engine_files["plain_engine"] = {WriteEngineFile(h, "other")};
  return m;
}

using testing::ExpectError;
using testing::LayoutOf;
using testing::U32At;

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
  EXPECT_EQ(Bytes(convert::EncodeIrGraph(back.graph)), Bytes(convert::EncodeIrGraph(model.graph)));
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
  auto a = std::make_shared<ir::Graph>(model.graph.Clone());
  auto b = std::make_shared<ir::Graph>(back.graph.Clone());
  runtime::ReferenceExecutor ea(a), eb(b);
  const std::vector<Tensor> in = {Tensor::FromVector<float>(DType::kFloat32, {2, 3}, {1, -2, 3, -4, 5, -6}),
                                  Tensor::Scalar<bool>(DType::kBool, true)};
  const auto ra = ea.Run(in), rb = eb.Run(in);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i)
    for (int64_t k = 0; k < ra[i].num_elements(); ++k) EXPECT_EQ(ra[i].data<float>()[k], rb[i].data<float>()[k]);
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
  (*model.signature.mutable_inputs())["nope"] = Info("nope:0", 1, {});
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
