// Writing and reading a converted SavedModel: layout, signature rewriting, engine files,
// atomicity and errors.
#include "convert/converted_model.h"
#include "convert/tf_wrapper_graph.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <thread>

#include "common/crc32c.h"
#include "convert/engine_file.h"
#include "convert/ir_codec.h"
#include "frontend/tf/saved_model.h"
#include "ir/passes/pass.h"
#include "tests/unit/container_test_util.h"
#include "tests/unit/converted_model_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln::convert {
namespace {

namespace fs = std::filesystem;

using testing::ExpectError;
using testing::ExpectSameResults;
using testing::SampleConvertedGraph;
using testing::TensorInfoOf;
using testutil::ReadFileBytes;
using testutil::SourceDir;
using testutil::WriteFileBytes;

// The sample model as a converted SavedModel carries it: with the signature's method name.
ConvertedModel SampleModel() {
  ConvertedModel m = testing::SampleConvertedModel();
  m.signature.set_method_name("tensorflow/serving/predict");
  return m;
}

class ConvertedModelTest : public ::testing::Test {
 protected:
  void SetUp() override { tmp_ = testutil::FreshTempDir("kiln_converted_model_test"); }
  void TearDown() override { fs::remove_all(tmp_); }
  fs::path tmp_;
};

TEST_F(ConvertedModelTest, WriteReadRoundTrip) {
  const fs::path dir = tmp_ / "converted";
  const ConvertedModel model = SampleModel();
  ir::Verify(model.graph);
  WriteConvertedModel(dir.string(), model);

  EXPECT_TRUE(fs::is_regular_file(dir / "saved_model.pb"));
  EXPECT_EQ(ReadFileBytes(dir / "assets/kiln/conversion.json"), model.conversion_json);
  EXPECT_TRUE(fs::is_regular_file(dir / "assets/kiln/engines/model%2FKilnEngineOp_000_0.kiln-engine"));
  EXPECT_TRUE(fs::is_regular_file(dir / "assets/kiln/engines/model%2FKilnEngineOp_000_1.kiln-engine"));
  EXPECT_TRUE(fs::is_regular_file(dir / "assets/kiln/engines/plain_engine_0.kiln-engine"));
  EXPECT_FALSE(fs::exists(dir / "variables"));
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  EXPECT_TRUE(IsConvertedModel(dir.string()));

  const ConvertedModel back = ReadConvertedModel(dir.string());
  EXPECT_EQ(back.tags, model.tags);
  EXPECT_EQ(back.signature_key, model.signature_key);
  EXPECT_EQ(back.signature.method_name(), "tensorflow/serving/predict");
  EXPECT_EQ(back.conversion_json, model.conversion_json);
  EXPECT_EQ(back.engine_files, model.engine_files);
  for (const auto& [name, files] : back.engine_files)
    for (const auto& bytes : files) EXPECT_EQ(ReadEngineFile(bytes, name).header.engine_name, "model/KilnEngineOp_000");
  // The graph comes back exactly (its encoding is byte-identical), verifies and runs the same.
  EXPECT_EQ(testing::DeterministicBytes(convert::EncodeIrGraph(back.graph)),
            testing::DeterministicBytes(convert::EncodeIrGraph(model.graph)));
  ir::Verify(back.graph);
  EXPECT_EQ(back.graph.input_names(), model.graph.input_names());
  EXPECT_EQ(back.graph.output_names(), model.graph.output_names());
  for (bool flag : {true, false}) ExpectSameResults(model.graph, back.graph, flag);
}

TEST_F(ConvertedModelTest, SavedModelPbIsTensorFlowsViewThroughKilnSignatureOp) {
  const fs::path dir = tmp_ / "converted";
  const ConvertedModel model = SampleModel();
  WriteConvertedModel(dir.string(), model);

  const tf::SavedModelBundle bundle = tf::LoadSavedModel(dir.string(), {"gpu", "serve"});
  EXPECT_EQ(bundle.proto->saved_model_schema_version(), 1);
  ASSERT_EQ(bundle.proto->meta_graphs_size(), 1);
  const tfproto::MetaGraphDef& meta = *bundle.meta_graph;
  EXPECT_EQ(meta.meta_info_def().meta_graph_version(), kTfLoadableMetaGraphVersion);
  EXPECT_EQ(tf::SignatureKeys(bundle), (std::vector<std::string>{"serving_default"}));
  const tfproto::SignatureDef& sig = tf::FindSignature(bundle, "serving_default");
  EXPECT_EQ(sig.method_name(), "tensorflow/serving/predict");
  std::map<std::string, const tfproto::NodeDef*> nodes;
  for (const auto& n : meta.graph_def().node()) nodes[n.name()] = &n;
  ASSERT_TRUE(nodes.count("kiln_signature"));
  const tfproto::NodeDef& op = *nodes.at("kiln_signature");
  EXPECT_EQ(op.op(), kTfSignatureOp);
  EXPECT_EQ(op.attr().at("signature_key").s(), "serving_default");
  // The main op registers the model under the op's model_id with the path TensorFlow's loader
  // gives the asset kiln/conversion.json.
  ASSERT_EQ(meta.asset_file_def_size(), 1);
  EXPECT_EQ(meta.asset_file_def(0).filename(), "kiln/conversion.json");
  ASSERT_EQ(meta.collection_def().at("saved_model_main_op").node_list().value_size(), 1);
  const tfproto::NodeDef& init = *nodes.at(meta.collection_def().at("saved_model_main_op").node_list().value(0));
  EXPECT_EQ(init.op(), kTfRegisterModelOp);
  EXPECT_EQ(init.input(0) + ":0", meta.asset_file_def(0).tensor_info().name());
  EXPECT_EQ(init.attr().at("model_id").s(), op.attr().at("model_id").s());
  EXPECT_EQ(op.attr().at("model_id").s().size(), 16u);
  const auto& input_names = op.attr().at("input_names").list().s();
  ASSERT_EQ(input_names.size(), 2);
  for (int i = 0; i < input_names.size(); ++i) {
    const tfproto::TensorInfo& info = sig.inputs().at(input_names[i]);
    EXPECT_EQ(info.name(), op.input(i) + ":0");
    EXPECT_EQ(nodes.at(op.input(i))->op(), "Placeholder");
    EXPECT_EQ(nodes.at(op.input(i))->attr().at("dtype").type(), info.dtype());
    EXPECT_EQ(info.dtype(), model.signature.inputs().at(input_names[i]).dtype());
    EXPECT_EQ(op.attr().at("Tin").list().type(i), info.dtype());
  }
  const auto& output_names = op.attr().at("output_names").list().s();
  ASSERT_EQ(output_names.size(), 2);
  for (int i = 0; i < output_names.size(); ++i) {
    const tfproto::TensorInfo& info = sig.outputs().at(output_names[i]);
    const tfproto::NodeDef& id = *nodes.at(info.name().substr(0, info.name().rfind(':')));
    EXPECT_EQ(id.op(), "Identity");
    EXPECT_EQ(id.input(0), fmt::format("kiln_signature:{}", i));
    EXPECT_EQ(op.attr().at("Tout").list().type(i), info.dtype());
    EXPECT_EQ(info.dtype(), model.signature.outputs().at(output_names[i]).dtype());
  }
}

TEST_F(ConvertedModelTest, TheConvertedGraphIsAMetaGraphWhoseSignatureNamesResolve) {
  const fs::path dir = tmp_ / "converted";
  const ConvertedModel model = SampleModel();
  WriteConvertedModel(dir.string(), model);
  tfproto::MetaGraphDef meta;
  ASSERT_TRUE(meta.ParseFromString(ReadFileBytes(dir / "assets" / "kiln" / "graph.pb")));
  EXPECT_EQ(meta.meta_info_def().meta_graph_version(), kConvertedMetaGraphVersion);
  EXPECT_TRUE(meta.meta_info_def().tensorflow_version().empty());
  ASSERT_EQ(meta.signature_def_size(), 1);
  const tfproto::SignatureDef& sig = meta.signature_def().at("serving_default");
  EXPECT_EQ(sig.method_name(), "tensorflow/serving/predict");

  std::map<std::string, const tfproto::NodeDef*> nodes;
  for (const auto& n : meta.graph_def().node()) nodes[n.name()] = &n;
  auto resolve = [&](const std::string& tensor) -> std::pair<const tfproto::NodeDef*, int> {
    const size_t colon = tensor.rfind(':');
    EXPECT_NE(colon, std::string::npos) << tensor;
    auto it = nodes.find(tensor.substr(0, colon));
    if (it == nodes.end()) return {nullptr, -1};
    return {it->second, std::stoi(tensor.substr(colon + 1))};
  };
  const ConvertedModel back = ReadConvertedModel(dir.string());
  const ir::Graph& g = back.graph;
  ASSERT_EQ(sig.inputs_size(), 2);
  for (const auto& [key, info] : sig.inputs()) {
    EXPECT_EQ(info.dtype(), model.signature.inputs().at(key).dtype()) << key;
    EXPECT_EQ(info.tensor_shape().dim_size(), model.signature.inputs().at(key).tensor_shape().dim_size()) << key;
    auto [node, index] = resolve(info.name());
    ASSERT_NE(node, nullptr) << key << " -> " << info.name();
    EXPECT_EQ(node->op(), "Placeholder");
    EXPECT_EQ(index, 0);
    EXPECT_EQ(node->attr().at("_kiln_input_name").s(), key);
    EXPECT_EQ(node->attr().at("dtype").type(), info.dtype());
  }
  ASSERT_EQ(sig.outputs_size(), 2);
  for (const auto& [key, info] : sig.outputs()) {
    EXPECT_EQ(info.dtype(), model.signature.outputs().at(key).dtype()) << key;
    auto [node, index] = resolve(info.name());
    ASSERT_NE(node, nullptr) << key << " -> " << info.name();
    // The tensor is the graph output of that name.
    size_t i = 0;
    while (i < g.output_names().size() && g.output_names()[i] != key) ++i;
    ASSERT_LT(i, g.output_names().size()) << key;
    const ir::Node* producer = g.Producer(g.outputs()[i]);
    ASSERT_NE(producer, nullptr);
    EXPECT_EQ(producer->name, node->name());
    EXPECT_EQ(g.value(g.outputs()[i]).output_index, index);
  }
  EXPECT_EQ(back.signature.inputs().at("x").name(), sig.inputs().at("x").name());
  EXPECT_EQ(sig.outputs().at("logits").name(), "model/KilnEngineOp_000:0");
  // The engine node is listed under Kiln's op name.
  EXPECT_EQ(nodes.at("model/KilnEngineOp_000")->op(), "KilnEngineOp");
}

TEST_F(ConvertedModelTest, SavingAgainReplacesEnginesAndIsDeterministic) {
  const fs::path dir = tmp_ / "converted";
  WriteConvertedModel(dir.string(), SampleModel());
  const std::string first = ReadFileBytes(dir / "saved_model.pb");
  ConvertedModel fewer = SampleModel();
  fewer.engine_files.erase("plain_engine");
  fewer.engine_files["model/KilnEngineOp_000"].pop_back();
  WriteConvertedModel(dir.string(), fewer);
  EXPECT_EQ(ReadFileBytes(dir / "saved_model.pb"), first);
  EXPECT_FALSE(fs::exists(dir / "assets/kiln/engines/plain_engine_0.kiln-engine"));
  EXPECT_FALSE(fs::exists(dir / "assets/kiln/engines/model%2FKilnEngineOp_000_1.kiln-engine"));
  const ConvertedModel back = ReadConvertedModel(dir.string());
  EXPECT_EQ(back.engine_files, fewer.engine_files);
  // A model without engines or a signature.
  ConvertedModel bare;
  bare.tags = {"serve"};
  bare.graph = SampleConvertedGraph();
  WriteConvertedModel((tmp_ / "bare").string(), bare);
  const ConvertedModel bare_back = ReadConvertedModel((tmp_ / "bare").string());
  EXPECT_TRUE(bare_back.engine_files.empty());
  EXPECT_TRUE(bare_back.signature_key.empty());
  EXPECT_TRUE(bare_back.conversion_json.empty());
}

// Engine files are read verbatim and checked by the loader: a damaged one, or one of format
// version 1, reads back as it is on disk, and ReadEngineFile says what is wrong with it.
TEST_F(ConvertedModelTest, DamagedAndOldEngineFilesAreReportedByPathAndSection) {
  const fs::path dir = tmp_ / "converted";
  WriteConvertedModel(dir.string(), SampleModel());
  const fs::path engine_dir = dir / "assets/kiln/engines";
  const fs::path first = engine_dir / "model%2FKilnEngineOp_000_0.kiln-engine";
  const std::string good = ReadFileBytes(first);
  const testing::ContainerLayout l = testing::LayoutOf(good);
  ASSERT_EQ(l.names, std::vector<std::string>{"payload"});

  std::string flipped = good;
  flipped[l.payload_starts[0] + 3] ^= 0x04;
  WriteFileBytes(first, flipped);
  WriteFileBytes(engine_dir / "model%2FKilnEngineOp_000_1.kiln-engine", good.substr(0, l.payload_starts[0]));
  WriteFileBytes(engine_dir / "plain_engine_0.kiln-engine", testing::ReadTestData("sample_v1.kiln-engine"));
  const ConvertedModel back = ReadConvertedModel(dir.string());
  const auto& files = back.engine_files.at("model/KilnEngineOp_000");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], flipped);
  ExpectError([&] { ReadEngineFile(files[0], first.string()); }, ErrorCode::kDataLoss,
              {first.string(), "section 0 'payload' checksum mismatch"});
  ExpectError([&] { ReadEngineFile(files[1], "e_1"); }, ErrorCode::kDataLoss,
              {"e_1", "truncated", "section 0 'payload' is missing"});
  ExpectError([&] { ReadEngineFile(back.engine_files.at("plain_engine").at(0), "plain"); }, ErrorCode::kInvalidArgument,
              {"plain", "older Kiln (format version 1", "reconvert the model"});
}

TEST_F(ConvertedModelTest, AFailedSaveLeavesThePreviousSavedModel) {
  const fs::path dir = tmp_ / "converted";
  WriteConvertedModel(dir.string(), SampleModel());
  const std::string before = ReadFileBytes(dir / "saved_model.pb");
  ConvertedModel bad = SampleModel();
  (*bad.signature.mutable_outputs())["no_such_output"] = TensorInfoOf("x:0", 1, {});
  ExpectError([&] { WriteConvertedModel(dir.string(), bad); }, ErrorCode::kInvalidArgument, {"no_such_output"});
  EXPECT_EQ(ReadFileBytes(dir / "saved_model.pb"), before);
  ConvertedModel bad_input = SampleModel();
  (*bad_input.signature.mutable_inputs())["extra"] = TensorInfoOf("e:0", 1, {});
  ExpectError([&] { WriteConvertedModel((tmp_ / "never").string(), bad_input); }, ErrorCode::kInvalidArgument, {"extra"});
  EXPECT_FALSE(fs::exists(tmp_ / "never" / "saved_model.pb"));
  // An unwritable destination names the path.
  WriteFileBytes(tmp_ / "a_file", "x");
  try {
    WriteConvertedModel((tmp_ / "a_file" / "sub").string(), SampleModel());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a_file"), std::string::npos) << e.what();
  }
}

TEST_F(ConvertedModelTest, ConcurrentSavesIntoOneDirectoryLeaveOneWholeModel) {
  // Two models with different settings and different engine files, saved into one directory by
  // two threads at once, again and again: what is left is always exactly one of them.
  ConvertedModel a = SampleModel(), b = SampleModel();
  a.conversion_json = R"({"precision_mode": "FP32", "which": "a"})";
  b.conversion_json = R"({"precision_mode": "FP16", "which": "b"})";
  b.engine_files.erase("plain_engine");
  b.engine_files["model/KilnEngineOp_000"].pop_back();
  const fs::path dir = tmp_ / "shared";
  for (int round = 0; round < 20; ++round) {
    std::thread ta([&] { WriteConvertedModel(dir.string(), a); });
    std::thread tb([&] { WriteConvertedModel(dir.string(), b); });
    ta.join();
    tb.join();
    const ConvertedModel got = ReadConvertedModel(dir.string());  // checksums agree
    const ConvertedModel& want = got.conversion_json == a.conversion_json ? a : b;
    ASSERT_EQ(got.conversion_json, want.conversion_json) << "round " << round;
    ASSERT_EQ(got.engine_files.size(), want.engine_files.size()) << "round " << round;
    for (const auto& [name, files] : want.engine_files) {
      ASSERT_TRUE(got.engine_files.count(name)) << name << ", round " << round;
      EXPECT_EQ(got.engine_files.at(name), files) << name << ", round " << round;
    }
  }
}

TEST_F(ConvertedModelTest, EveryByteOfSavedModelPbIsChecksummed) {
  const fs::path dir = tmp_ / "checked";
  WriteConvertedModel(dir.string(), SampleModel());
  const std::string good = ReadFileBytes(dir / "saved_model.pb");
  EXPECT_NO_THROW(ReadConvertedModel(dir.string()));
  // One changed byte anywhere (a weight, a name, a shape) is data loss, even where the protobuf
  // still parses.
  for (size_t at : {size_t{0}, good.size() / 3, good.size() / 2, good.size() - 1}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    WriteFileBytes(dir / "saved_model.pb", bad);
    ExpectError([&] { ReadConvertedModel(dir.string()); }, ErrorCode::kDataLoss, {"saved_model.pb", "checksum"},
                fmt::format("byte {}", at));
  }
  // Without its checksum file nothing could be verified: refused, naming the missing file (also
  // when the checksum is a symlink loop, which once counted as absent).
  WriteFileBytes(dir / "saved_model.pb", good);
  const fs::path crc = dir / "assets" / "kiln" / "saved_model.pb.crc32c";
  const std::string crc_text = ReadFileBytes(crc);
  fs::remove(crc);
  ExpectError([&] { ReadConvertedModel(dir.string()); }, ErrorCode::kDataLoss, {"saved_model.pb.crc32c", "missing"});
  fs::create_symlink(crc, crc);
  EXPECT_THROW(ReadConvertedModel(dir.string()), Error);
  fs::remove(crc);
  WriteFileBytes(crc, crc_text);
  EXPECT_NO_THROW(ReadConvertedModel(dir.string()));
  // A file far larger than it may be (a sparse 3 GiB conversion.json) is refused from its size,
  // before any of it is read.
  const fs::path json = dir / "assets" / "kiln" / "conversion.json";
  const std::string json_text = ReadFileBytes(json);
  fs::resize_file(json, uintmax_t{3} << 30);
  ExpectError([&] { ReadConvertedModel(dir.string()); }, ErrorCode::kResourceExhausted, {"conversion.json", "bytes"});
  WriteFileBytes(json, json_text);
  EXPECT_NO_THROW(ReadConvertedModel(dir.string()));
}

TEST_F(ConvertedModelTest, ConversionJsonIsChecksummed) {
  // conversion.json decides the device, precision and engine settings a model loads with: an
  // edit that still parses (FP32 -> FP16) must not change how the model runs without a word.
  const fs::path dir = tmp_ / "checked_json";
  WriteConvertedModel(dir.string(), SampleModel());
  const fs::path json = dir / "assets" / "kiln" / "conversion.json";
  const std::string good = ReadFileBytes(json);
  ASSERT_FALSE(good.empty());
  std::string bad = good;
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x01);
  WriteFileBytes(json, bad);
  ExpectError([&] { ReadConvertedModel(dir.string()); }, ErrorCode::kDataLoss, {"conversion.json", "checksum"});
  WriteFileBytes(json, good);
  EXPECT_NO_THROW(ReadConvertedModel(dir.string()));
}

TEST_F(ConvertedModelTest, RecognisesOnlyConvertedModels) {
  EXPECT_FALSE(IsConvertedModel((tmp_ / "missing").string()));
  ExpectError([&] { ReadConvertedModel((tmp_ / "missing").string()); }, ErrorCode::kNotFound, {"saved_model.pb"});

  const fs::path garbage = tmp_ / "garbage";
  fs::create_directories(garbage);
  WriteFileBytes(garbage / "saved_model.pb", "\xff\xff\xff\xff not a protobuf");
  EXPECT_FALSE(IsConvertedModel(garbage.string()));
  ExpectError([&] { ReadConvertedModel(garbage.string()); }, ErrorCode::kDataLoss, {"garbage"});

  const fs::path tiny = SourceDir() / "tests/data/bundle_fixture/tiny_saved_model";
  if (fs::exists(tiny / "saved_model.pb")) {
    EXPECT_FALSE(IsConvertedModel(tiny.string()));
    ExpectError([&] { ReadConvertedModel(tiny.string()); }, ErrorCode::kInvalidArgument, {"not a Kiln-converted model"});
  }

  // A converted model whose graph was damaged: kDataLoss naming the file and the node.
  const fs::path dir = tmp_ / "damaged";
  WriteConvertedModel(dir.string(), SampleModel());
  const fs::path graph_pb = dir / "assets" / "kiln" / "graph.pb";
  tfproto::MetaGraphDef meta;
  ASSERT_TRUE(meta.ParseFromString(ReadFileBytes(graph_pb)));
  for (auto& n : *meta.mutable_graph_def()->mutable_node())
    if (n.name() == "model/cond") n.mutable_attr()->erase("_kiln_output_dtypes");
  WriteFileBytes(graph_pb, meta.SerializeAsString());
  EXPECT_TRUE(IsConvertedModel(dir.string()));
  ExpectError([&] { ReadConvertedModel(dir.string()); }, ErrorCode::kDataLoss, {"graph.pb", "checksum"});
  // With a checksum that matches the damaged graph, the decoder still names the node.
  const std::string damaged = ReadFileBytes(graph_pb);
  WriteFileBytes(dir / "assets" / "kiln" / "graph.pb.crc32c", fmt::format("{:08x}\n", crc32c::Mask(crc32c::Value(damaged))));
  ExpectError([&] { ReadConvertedModel(dir.string()); }, ErrorCode::kDataLoss, {"graph.pb", "model/cond"});
  fs::remove(graph_pb);
  ExpectError([&] { ReadConvertedModel(dir.string()); }, ErrorCode::kNotFound, {"graph.pb"});

  const fs::path no_json = tmp_ / "no_json";
  WriteConvertedModel(no_json.string(), SampleModel());
  fs::remove(no_json / "assets/kiln/conversion.json");
  ExpectError([&] { ReadConvertedModel(no_json.string()); }, ErrorCode::kNotFound, {"conversion.json"});
}

}  // namespace
}  // namespace kiln::convert
