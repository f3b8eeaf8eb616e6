// SavedModel loading, signatures and captured values, against a tiny SavedModel written by
// TensorFlow (tests/data/bundle_fixture/tiny_saved_model, from tests/data/make_bundle_fixture.py).
#include "frontend/tf/saved_model.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/tf_import_test_util.h"

namespace kiln::tf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using testutil::ExpectError;
using testutil::WriteFileBytes;

fs::path FixtureDir() { return tf_test::BundleFixtureDir(); }
fs::path TinyModel() { return FixtureDir() / "tiny_saved_model"; }

json TinyExpected() {
  std::ifstream in(FixtureDir() / "tiny_expected.json");
  if (!in) throw std::runtime_error("missing fixture tiny_expected.json");
  return json::parse(in);
}

// The function a signature calls: its outputs are "StatefulPartitionedCall:k" in the outer
// graph, and that node's `f` attr names the wrapper FunctionDef.
std::string SignatureFunction(const SavedModelBundle& bundle, const std::string& key) {
  const auto& sig = FindSignature(bundle, key);
  const std::string tensor = sig.outputs().begin()->second.name();
  const std::string node = tensor.substr(0, tensor.find(':'));
  for (const auto& n : bundle.meta_graph->graph_def().node())
    if (n.name() == node) return n.attr().at("f").func().name();
  return "";
}

class SavedModelTest : public ::testing::Test {
 protected:
  void SetUp() override { tmp_ = testutil::FreshTempDir("kiln_saved_model_test"); }
  void TearDown() override { fs::remove_all(tmp_); }
  // A writable copy of the tiny model.
  fs::path CopyModel() {
    const fs::path dir = tmp_ / "model";
    fs::copy(TinyModel(), dir, fs::copy_options::recursive);
    return dir;
  }
  // The tiny model as loaded, with `edit` applied to (a copy of) its SavedObjectGraph.
  static SavedModelBundle TinyModelWithObjectGraph(const std::function<void(tfproto::SavedObjectGraph&)>& edit) {
    SavedModelBundle bundle = LoadSavedModel(TinyModel().string(), {"serve"});
    auto proto = std::make_shared<tfproto::SavedModel>(*bundle.proto);
    edit(*proto->mutable_meta_graphs(0)->mutable_object_graph_def());
    bundle.proto = proto;
    bundle.meta_graph = &proto->meta_graphs(0);
    return bundle;
  }
  fs::path tmp_;
};

TEST_F(SavedModelTest, LoadsTinyModel) {
  const SavedModelBundle bundle = LoadSavedModel(TinyModel().string(), {"serve"});
  ASSERT_NE(bundle.meta_graph, nullptr);
  EXPECT_EQ(bundle.tags, (std::vector<std::string>{"serve"}));
  EXPECT_EQ(bundle.dir, TinyModel().string());
  EXPECT_TRUE(bundle.meta_graph->has_object_graph_def());
  EXPECT_EQ(SignatureKeys(bundle), (std::vector<std::string>{"serving_default"}));
  const auto& sig = FindSignature(bundle, kDefaultSignatureKey);
  ASSERT_EQ(sig.inputs().size(), 1u);
  EXPECT_EQ(sig.inputs().at("x").name(), "serving_default_x:0");
  EXPECT_EQ(sig.inputs().at("x").dtype(), 1);
  ASSERT_EQ(sig.outputs().size(), 1u);
  EXPECT_TRUE(sig.outputs().count("y"));
}

TEST_F(SavedModelTest, ResolveCapturesReturnsVariableAndConstant) {
  const json expected = TinyExpected();
  const SavedModelBundle bundle = LoadSavedModel(TinyModel().string(), {"serve"});
  const std::string fn = SignatureFunction(bundle, "serving_default");
  ASSERT_NE(fn, "");
  VariableReader vars(TinyModel().string());
  const std::vector<CapturedValue> caps = ResolveCaptures(bundle, vars, fn);
  ASSERT_EQ(caps.size(), 2u);

  EXPECT_EQ(caps[0].kind, CapturedValue::Kind::kVariable);
  EXPECT_EQ(caps[0].name, "w");
  ASSERT_TRUE(caps[0].value);
  EXPECT_EQ(caps[0].value->dtype(), DType::kFloat32);
  EXPECT_EQ(caps[0].value->shape(), expected["variable"]["shape"].get<Shape>());
  const auto w = expected["variable"]["values"].get<std::vector<float>>();
  EXPECT_EQ(std::vector<float>(caps[0].value->data<float>(), caps[0].value->data<float>() + w.size()), w);

  EXPECT_EQ(caps[1].kind, CapturedValue::Kind::kConstant);
  ASSERT_TRUE(caps[1].value);
  EXPECT_EQ(caps[1].value->shape(), expected["constant"]["shape"].get<Shape>());
  const auto c = expected["constant"]["values"].get<std::vector<float>>();
  EXPECT_EQ(std::vector<float>(caps[1].value->data<float>(), caps[1].value->data<float>() + c.size()), c);

  // Variables are read once and shared.
  const std::vector<CapturedValue> again = ResolveCaptures(bundle, vars, fn);
  EXPECT_EQ(again[0].value.get(), caps[0].value.get());

  // The variable is also reachable by its checkpoint key (TF's tf.Module naming).
  EXPECT_TRUE(vars.bundle().Contains("w/.ATTRIBUTES/VARIABLE_VALUE"));
  // Unknown functions have no captures.
  EXPECT_TRUE(ResolveCaptures(bundle, vars, "no_such_function").empty());
}

TEST_F(SavedModelTest, MissingDirectory) {
  ExpectError([&] { LoadSavedModel((tmp_ / "nope").string(), {"serve"}); }, ErrorCode::kNotFound,
              {"nope", "does not exist"});
}

TEST_F(SavedModelTest, MissingSavedModelPb) {
  fs::create_directories(tmp_ / "empty" / "variables");
  ExpectError([&] { LoadSavedModel((tmp_ / "empty").string(), {"serve"}); }, ErrorCode::kNotFound,
              {"empty", "saved_model.pb", "saved_model.pbtxt"});
}

TEST_F(SavedModelTest, RandomBytesSavedModelPb) {
  const fs::path dir = CopyModel();
  std::mt19937 rng(1);
  std::string junk(4096, '\0');
  for (auto& ch : junk) ch = static_cast<char>(rng());
  WriteFileBytes(dir / "saved_model.pb", junk);
  ExpectError([&] { LoadSavedModel(dir.string(), {"serve"}); }, ErrorCode::kDataLoss, {"saved_model.pb"});
}

TEST_F(SavedModelTest, TruncatedSavedModelPb) {
  const fs::path dir = CopyModel();
  const auto size = fs::file_size(dir / "saved_model.pb");
  fs::resize_file(dir / "saved_model.pb", size / 2);
  ExpectError([&] { LoadSavedModel(dir.string(), {"serve"}); }, ErrorCode::kDataLoss, {"saved_model.pb"});
}

TEST_F(SavedModelTest, UnknownTag) {
  ExpectError([&] { LoadSavedModel(TinyModel().string(), {"gpu"}); }, ErrorCode::kNotFound,
              {"no MetaGraph with tags {gpu}", "the SavedModel has: {serve}"});
  ExpectError([&] { LoadSavedModel(TinyModel().string(), {"serve", "gpu"}); }, ErrorCode::kNotFound,
              {"{serve, gpu}", "{serve}"});
}

TEST_F(SavedModelTest, UnknownSignature) {
  const SavedModelBundle bundle = LoadSavedModel(TinyModel().string(), {"serve"});
  ExpectError([&] { FindSignature(bundle, "foo"); }, ErrorCode::kNotFound,
              {"signature 'foo' not found", "available: serving_default"});
  // The init-op signature is not a callable signature.
  ExpectError([&] { FindSignature(bundle, kInitOpSignatureKey); }, ErrorCode::kNotFound, {"not found"});
}

TEST_F(SavedModelTest, TextFormatWrittenByTensorFlow) {
  // tiny_saved_model.pbtxt is TensorFlow's own text_format output for the same model: it uses
  // enum names (DT_FLOAT) and fields Kiln's schema does not name.
  const SavedModelBundle binary = LoadSavedModel(TinyModel().string(), {"serve"});
  const fs::path dir = CopyModel();
  fs::remove(dir / "saved_model.pb");
  fs::copy_file(FixtureDir() / "tiny_saved_model.pbtxt", dir / "saved_model.pbtxt");
  const SavedModelBundle bundle = LoadSavedModel(dir.string(), {"serve"});
  EXPECT_EQ(SignatureKeys(bundle), SignatureKeys(binary));
  EXPECT_EQ(FindSignature(bundle, "serving_default").inputs().at("x").dtype(), 1);  // DT_FLOAT
  EXPECT_EQ(bundle.meta_graph->graph_def().node_size(), binary.meta_graph->graph_def().node_size());
  EXPECT_EQ(bundle.meta_graph->saver_def().version(), 2);  // "version: V2"
  VariableReader vars(dir.string());
  const auto caps = ResolveCaptures(bundle, vars, SignatureFunction(bundle, "serving_default"));
  ASSERT_EQ(caps.size(), 2u);
  EXPECT_EQ(caps[0].kind, CapturedValue::Kind::kVariable);
  EXPECT_EQ(caps[1].kind, CapturedValue::Kind::kConstant);
  EXPECT_EQ(caps[1].value->dtype(), DType::kFloat32);
  EXPECT_EQ(caps[1].value->num_elements(), 3);
}

TEST_F(SavedModelTest, TextFormatRoundTripAndErrors) {
  const SavedModelBundle binary = LoadSavedModel(TinyModel().string(), {"serve"});
  const fs::path dir = CopyModel();
  fs::remove(dir / "saved_model.pb");
  // Kiln's own text output (unknown fields appear as field numbers).
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(*binary.proto, &text));
  WriteFileBytes(dir / "saved_model.pbtxt", text);
  const SavedModelBundle bundle = LoadSavedModel(dir.string(), {"serve"});
  EXPECT_EQ(SignatureKeys(bundle), SignatureKeys(binary));
  VariableReader vars(dir.string());
  EXPECT_EQ(ResolveCaptures(bundle, vars, SignatureFunction(bundle, "serving_default")).size(), 2u);

  WriteFileBytes(dir / "saved_model.pbtxt", "meta_graphs { this is not text format");
  ExpectError([&] { LoadSavedModel(dir.string(), {"serve"}); }, ErrorCode::kDataLoss, {"saved_model.pbtxt", "line 1"});
  // A DT_ name inside a string stays a string.
  WriteFileBytes(dir / "saved_model.pbtxt",
                 "meta_graphs { meta_info_def { tags: \"DT_FLOAT\" } }  # DT_FLOAT in a comment\n");
  EXPECT_EQ(LoadSavedModel(dir.string(), {"DT_FLOAT"}).tags, (std::vector<std::string>{"DT_FLOAT"}));
  // Nesting 100k deep (known or unknown fields) is an error, not a stack overflow.
  const int depth = 100000;
  std::string deep = "meta_graphs { graph_def { ";
  for (int i = 0; i < depth; ++i) deep += "unknown_field { ";
  deep += std::string(static_cast<size_t>(depth), '}') + " } }";
  WriteFileBytes(dir / "saved_model.pbtxt", deep);
  ExpectError([&] { LoadSavedModel(dir.string(), {"serve"}); }, ErrorCode::kDataLoss, {"saved_model.pbtxt", "too deep"});
}

TEST_F(SavedModelTest, MissingVariablesData) {
  const fs::path dir = CopyModel();
  fs::remove(dir / "variables" / "variables.data-00000-of-00001");
  const SavedModelBundle bundle = LoadSavedModel(dir.string(), {"serve"});
  VariableReader vars(dir.string());
  ExpectError([&] { ResolveCaptures(bundle, vars, SignatureFunction(bundle, "serving_default")); },
              ErrorCode::kNotFound, {"variables.data-00000-of-00001"});
}

TEST_F(SavedModelTest, CorruptVariableData) {
  const fs::path dir = CopyModel();
  // Overwrite the float 1.0f (first element of w) in the data file with 7.0f.
  const fs::path data = dir / "variables" / "variables.data-00000-of-00001";
  std::string bytes = testutil::ReadFileBytes(data);
  const float one = 1.0f, two = 2.0f, seven = 7.0f;
  std::string needle(reinterpret_cast<const char*>(&one), 4);
  needle.append(reinterpret_cast<const char*>(&two), 4);
  const size_t pos = bytes.find(needle);
  ASSERT_NE(pos, std::string::npos);
  bytes.replace(pos, 4, std::string(reinterpret_cast<const char*>(&seven), 4));
  WriteFileBytes(data, bytes);
  const SavedModelBundle bundle = LoadSavedModel(dir.string(), {"serve"});
  VariableReader vars(dir.string());
  ExpectError([&] { ResolveCaptures(bundle, vars, SignatureFunction(bundle, "serving_default")); },
              ErrorCode::kDataLoss, {"w/.ATTRIBUTES/VARIABLE_VALUE", "CRC32C"});
}

TEST_F(SavedModelTest, VariableWithoutCheckpointKey) {
  // Rename the root's child "w" in the SavedObjectGraph so the walk no longer reaches it.
  const SavedModelBundle bundle = TinyModelWithObjectGraph([](tfproto::SavedObjectGraph& graph) {
    for (auto& child : *graph.mutable_nodes(0)->mutable_children())
      if (child.local_name() == "w") child.set_local_name("renamed");
  });
  VariableReader vars(TinyModel().string());
  ExpectError([&] { ResolveCaptures(bundle, vars, SignatureFunction(bundle, "serving_default")); },
              ErrorCode::kNotFound, {"variable 'w'", "checkpoint key"});
}

TEST_F(SavedModelTest, UnsupportedCaptureKinds) {
  // Turn the captured constant into a resource (as a lookup table would be).
  const SavedModelBundle bundle = TinyModelWithObjectGraph([](tfproto::SavedObjectGraph& graph) {
    for (auto& node : *graph.mutable_nodes())
      if (node.has_constant()) node.mutable_resource()->set_device("/cpu:0");
  });
  VariableReader vars(TinyModel().string());
  const auto caps = ResolveCaptures(bundle, vars, SignatureFunction(bundle, "serving_default"));
  ASSERT_EQ(caps.size(), 2u);
  EXPECT_EQ(caps[0].kind, CapturedValue::Kind::kVariable);
  EXPECT_EQ(caps[1].kind, CapturedValue::Kind::kUnsupported);
  EXPECT_EQ(caps[1].value, nullptr);
  EXPECT_NE(caps[1].unsupported_reason.find("resource"), std::string::npos) << caps[1].unsupported_reason;
}

TEST_F(SavedModelTest, BadBoundInput) {
  const std::string fn = SignatureFunction(LoadSavedModel(TinyModel().string(), {"serve"}), "serving_default");
  const SavedModelBundle bundle = TinyModelWithObjectGraph(
      [&](tfproto::SavedObjectGraph& graph) { (*graph.mutable_concrete_functions())[fn].add_bound_inputs(1000); });
  VariableReader vars(TinyModel().string());
  ExpectError([&] { ResolveCaptures(bundle, vars, fn); }, ErrorCode::kDataLoss, {"1000", fn});
}

}  // namespace
}  // namespace kiln::tf
