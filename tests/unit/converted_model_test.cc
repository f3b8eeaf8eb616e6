// Writing and reading a converted SavedModel: layout, signature rewriting, engine files,
// atomicity and errors.
#include "convert/converted_model.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "convert/engine_file.h"
#include "convert/ir_codec.h"
#include "frontend/tf/saved_model.h"
#include "ir/op_schema.h"
#include "ir/passes/pass.h"
#include "kiln/version.h"
#include "runtime/executor.h"
#include "tests/unit/container_test_util.h"

namespace kiln::convert {
namespace {

namespace fs = std::filesystem;

fs::path SourceDir() {
  if (const char* env = std::getenv("KILN_SOURCE_DIR"); env && *env) return env;
  return fs::path(__FILE__).parent_path().parent_path().parent_path();
}

std::string Bytes(const tfproto::GraphDef& gd) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  gd.SerializeToCodedStream(&coded);
  return out;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

using testing::ExpectError;

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
ir::Graph ConvertedGraph() {
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
  // Output keys sorted, as the frontend adds them.
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
  m.signature.set_method_name("tensorflow/serving/predict");
  (*m.signature.mutable_inputs())["x"] = Info("serving_default_x:0", 1, {-1, 3});
  (*m.signature.mutable_inputs())["flag"] = Info("serving_default_flag:0", 10, {});
  (*m.signature.mutable_outputs())["logits"] = Info("StatefulPartitionedCall:0", 1, {-1, 3});
  (*m.signature.mutable_outputs())["probs"] = Info("StatefulPartitionedCall:1", 1, {-1, 3});
  m.graph = ConvertedGraph();
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

std::vector<Tensor> SampleInputs(bool flag) {
  return {Tensor::FromVector<float>(DType::kFloat32, {2, 3}, {1, -2, 3, -4, 5, -6}), Tensor::Scalar<bool>(DType::kBool, flag)};
}

class ConvertedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    tmp_ = fs::temp_directory_path() / ("kiln_converted_model_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  void TearDown() override { fs::remove_all(tmp_); }
  fs::path tmp_;
};

TEST_F(ConvertedModelTest, WriteReadRoundTrip) {
  const fs::path dir = tmp_ / "converted";
  const ConvertedModel model = SampleModel();
  ir::Verify(model.graph);
  WriteConvertedModel(dir.string(), model);

  EXPECT_TRUE(fs::is_regular_file(dir / "saved_model.pb"));
  EXPECT_EQ(ReadAll(dir / "assets/kiln/conversion.json"), model.conversion_json);
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
  EXPECT_EQ(Bytes(convert::EncodeIrGraph(back.graph)), Bytes(convert::EncodeIrGraph(model.graph)));
  ir::Verify(back.graph);
  EXPECT_EQ(back.graph.input_names(), model.graph.input_names());
  EXPECT_EQ(back.graph.output_names(), model.graph.output_names());
  auto original = std::make_shared<ir::Graph>(model.graph.Clone());
  auto decoded = std::make_shared<ir::Graph>(back.graph.Clone());
  runtime::ReferenceExecutor ea(original), eb(decoded);
  for (bool flag : {true, false}) {
    const auto ra = ea.Run(SampleInputs(flag)), rb = eb.Run(SampleInputs(flag));
    ASSERT_EQ(ra.size(), rb.size());
    for (size_t i = 0; i < ra.size(); ++i) {
      ASSERT_EQ(ra[i].shape(), rb[i].shape());
      for (int64_t k = 0; k < ra[i].num_elements(); ++k) EXPECT_EQ(ra[i].data<float>()[k], rb[i].data<float>()[k]);
    }
  }
}

TEST_F(ConvertedModelTest, IsARealSavedModelWhoseSignatureNamesResolve) {
  const fs::path dir = tmp_ / "converted";
  const ConvertedModel model = SampleModel();
  WriteConvertedModel(dir.string(), model);

  const tf::SavedModelBundle bundle = tf::LoadSavedModel(dir.string(), {"gpu", "serve"});
  EXPECT_EQ(bundle.proto->saved_model_schema_version(), 1);
  ASSERT_EQ(bundle.proto->meta_graphs_size(), 1);
  EXPECT_EQ(bundle.meta_graph->meta_info_def().meta_graph_version(), kConvertedMetaGraphVersion);
  EXPECT_TRUE(bundle.meta_graph->meta_info_def().tensorflow_version().empty());
  EXPECT_EQ(tf::SignatureKeys(bundle), (std::vector<std::string>{"serving_default"}));
  const tfproto::SignatureDef& sig = tf::FindSignature(bundle, "serving_default");
  EXPECT_EQ(sig.method_name(), "tensorflow/serving/predict");

  std::map<std::string, const tfproto::NodeDef*> nodes;
  for (const auto& n : bundle.meta_graph->graph_def().node()) nodes[n.name()] = &n;
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
  const std::string first = ReadAll(dir / "saved_model.pb");
  ConvertedModel fewer = SampleModel();
  fewer.engine_files.erase("plain_engine");
  fewer.engine_files["model/KilnEngineOp_000"].pop_back();
  WriteConvertedModel(dir.string(), fewer);
  EXPECT_EQ(ReadAll(dir / "saved_model.pb"), first);
  EXPECT_FALSE(fs::exists(dir / "assets/kiln/engines/plain_engine_0.kiln-engine"));
  EXPECT_FALSE(fs::exists(dir / "assets/kiln/engines/model%2FKilnEngineOp_000_1.kiln-engine"));
  const ConvertedModel back = ReadConvertedModel(dir.string());
  EXPECT_EQ(back.engine_files, fewer.engine_files);
  // A model without engines or a signature.
  ConvertedModel bare;
  bare.tags = {"serve"};
  bare.graph = ConvertedGraph();
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
  const std::string good = ReadAll(first);
  const testing::ContainerLayout l = testing::LayoutOf(good);
  ASSERT_EQ(l.names, std::vector<std::string>{"payload"});

  std::string flipped = good;
  flipped[l.payload_starts[0] + 3] ^= 0x04;
  WriteAll(first, flipped);
  WriteAll(engine_dir / "model%2FKilnEngineOp_000_1.kiln-engine", good.substr(0, l.payload_starts[0]));
  WriteAll(engine_dir / "plain_engine_0.kiln-engine", testing::ReadTestData("sample_v1.kiln-engine"));
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
  const std::string before = ReadAll(dir / "saved_model.pb");
  ConvertedModel bad = SampleModel();
  (*bad.signature.mutable_outputs())["no_such_output"] = Info("x:0", 1, {});
  ExpectError([&] { WriteConvertedModel(dir.string(), bad); }, ErrorCode::kInvalidArgument, {"no_such_output"});
  EXPECT_EQ(ReadAll(dir / "saved_model.pb"), before);
  ConvertedModel bad_input = SampleModel();
  (*bad_input.signature.mutable_inputs())["extra"] = Info("e:0", 1, {});
  ExpectError([&] { WriteConvertedModel((tmp_ / "never").string(), bad_input); }, ErrorCode::kInvalidArgument, {"extra"});
  EXPECT_FALSE(fs::exists(tmp_ / "never" / "saved_model.pb"));
  // An unwritable destination names the path.
  WriteAll(tmp_ / "a_file", "x");
  try {
    WriteConvertedModel((tmp_ / "a_file" / "sub").string(), SampleModel());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a_file"), std::string::npos) << e.what();
  }
}

TEST_F(ConvertedModelTest, RecognisesOnlyConvertedModels) {
  EXPECT_FALSE(IsConvertedModel((tmp_ / "missing").string()));
  ExpectError([&] { ReadConvertedModel((tmp_ / "missing").string()); }, ErrorCode::kNotFound, {"saved_model.pb"});

  const fs::path garbage = tmp_ / "garbage";
  fs::create_directories(garbage);
  WriteAll(garbage / "saved_model.pb", "\xff\xff\xff\xff not a protobuf");
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
  tfproto::SavedModel saved;
  ASSERT_TRUE(saved.ParseFromString(ReadAll(dir / "saved_model.pb")));
  for (auto& n : *saved.mutable_meta_graphs(0)->mutable_graph_def()->mutable_node())
    if (n.name() == "model/cond") n.mutable_attr()->erase("_kiln_output_dtypes");
  WriteAll(dir / "saved_model.pb", saved.SerializeAsString());
  EXPECT_TRUE(IsConvertedModel(dir.string()));
  ExpectError([&] { ReadConvertedModel(dir.string()); }, ErrorCode::kDataLoss, {"saved_model.pb", "model/cond"});

  const fs::path no_json = tmp_ / "no_json";
  WriteConvertedModel(no_json.string(), SampleModel());
  fs::remove(no_json / "assets/kiln/conversion.json");
  ExpectError([&] { ReadConvertedModel(no_json.string()); }, ErrorCode::kNotFound, {"conversion.json"});
}

}  // namespace
}  // namespace kiln::convert
