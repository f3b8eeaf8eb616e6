// Engine files that do not match this build or device, and engines that fail to build or
// run: each falls back (rebuild or native segment) with a message, never silently.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "convert/engine_file.h"
#include "ir/op_schema.h"
#include "kiln/converter.h"
#include "kiln/model.h"
#include "runtime/converted_graph.h"
#include "tests/unit/container_test_util.h"
#include "tests/unit/demo_model_test_util.h"

namespace kiln {
namespace {

using demo_test::DemoDir;

// Every test runs the same images.
Tensor Image(int batch) { return demo_test::Image(batch, /*seed=*/3); }

// Converts the demo model with an engine built for batch 2 and returns the saved dir.
std::string ConvertDemo(const std::string& name, bool allow_build_at_runtime) {
  const auto dir = std::filesystem::temp_directory_path() / ("kiln_fallback_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  ConversionParams params;
  params.allow_build_at_runtime = allow_build_at_runtime;
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);
  converter.convert();
  bool done = false;
  converter.build([&]() -> std::optional<std::vector<Tensor>> {
    if (done) return std::nullopt;
    done = true;
    return std::vector<Tensor>{Image(2)};
  });
  converter.save(dir.string());
  return dir.string();
}

std::filesystem::path OnlyEngineFile(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(dir) / "assets" / "kiln" / "engines"))
    files.push_back(e.path());
  EXPECT_EQ(files.size(), 1u);
  return files.at(0);
}

// Rewrites the engine file's header with `edit` applied (payload unchanged, checksums valid).
void EditHeader(const std::filesystem::path& path, const std::function<void(convert::EngineHeader&)>& edit) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  convert::EngineFile file = convert::ReadEngineFile(bytes, path.string());
  edit(file.header);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << convert::WriteEngineFile(file.header, file.payload);
}

struct Loaded {
  std::unique_ptr<Model> model;
  std::shared_ptr<std::vector<std::string>> log = std::make_shared<std::vector<std::string>>();
  std::string AllLog() const {
    std::string s;
    for (const auto& m : *log) s += m + "\n";
    return s;
  }
};

Loaded Load(const std::string& dir) {
  Loaded l;
  LoadOptions options;
  auto log = l.log;
  options.log = [log](const std::string& m) { log->push_back(m); };
  l.model = LoadModel(dir, options);
  return l;
}

TEST(EngineFallback, EngineForAnotherDeviceIsRebuilt) {
  const std::string dir = ConvertDemo("device", true);
  EditHeader(OnlyEngineFile(dir), [](convert::EngineHeader& h) { h.device = "some other cpu"; });
  Loaded l = Load(dir);
  EXPECT_NE(l.AllLog().find("was built for device 'some other cpu'"), std::string::npos) << l.AllLog();
  EXPECT_NE(l.AllLog().find("rebuilt"), std::string::npos) << l.AllLog();
  l.model->signature().Run({{"image", Image(2)}});
  EXPECT_EQ(l.model->signature().stats().engines_loaded, 0);
  EXPECT_EQ(l.model->signature().stats().engines_built, 1);
  std::filesystem::remove_all(dir);
}

TEST(EngineFallback, EngineFromAnotherKilnVersionRunsNativelyWhenBuildingIsOff) {
  const std::string dir = ConvertDemo("version", false);
  EditHeader(OnlyEngineFile(dir), [](convert::EngineHeader& h) { h.kiln_version = "0.0.1"; });
  Loaded l = Load(dir);
  EXPECT_NE(l.AllLog().find("written by Kiln 0.0.1"), std::string::npos) << l.AllLog();
  auto out = l.model->signature().Run({{"image", Image(2)}});
  EXPECT_EQ(out.at("output_0").shape(), (Shape{2, 10}));
  EXPECT_EQ(l.model->signature().stats().engines_built, 0);
  EXPECT_EQ(l.model->signature().stats().native_runs, 1);
  EXPECT_NE(l.AllLog().find("allow_build_at_runtime is false"), std::string::npos) << l.AllLog();
  std::filesystem::remove_all(dir);
}

// An engine file of format version 1 (real old bytes, tests/unit/data/) in place of the saved
// one: the log says which version and why, and the engine is rebuilt.
TEST(EngineFallback, EngineFileOfAnOlderFormatIsRebuilt) {
  const std::string dir = ConvertDemo("format_v1", true);
  const std::filesystem::path engine_file = OnlyEngineFile(dir);
  const std::string old = convert::testing::ReadTestData("sample_v1.kiln-engine");
  ASSERT_FALSE(old.empty());
  std::ofstream(engine_file, std::ios::binary | std::ios::trunc) << old;
  Loaded l = Load(dir);
  const std::string expected = fmt::format(
      "kiln: engine file {} cannot be used: the engine file was written by an older Kiln (format version 1; this build "
      "reads version 2); reconvert the model (`kiln convert` or `kiln build`) to save a current engine file; it will "
      "be "
      "rebuilt at first use\n",
      engine_file.string());
  EXPECT_NE(l.AllLog().find(expected), std::string::npos) << l.AllLog();
  auto out = l.model->signature().Run({{"image", Image(2)}});
  EXPECT_EQ(out.at("output_0").shape(), (Shape{2, 10}));
  EXPECT_EQ(l.model->signature().stats().engines_loaded, 0);
  EXPECT_EQ(l.model->signature().stats().engines_built, 1);
  std::filesystem::remove_all(dir);
}

// A backend whose engines fail: building throws for one profile, running throws for another.
class FailingEngine final : public backend::Engine {
 public:
  explicit FailingEngine(backend::Profile p) : profile_(std::move(p)) {}
  const backend::Profile& profile() const override { return profile_; }
  Precision precision() const override { return Precision::kFP32; }
  std::string precision_note() const override { return ""; }
  std::vector<DType> output_dtypes() const override { return {DType::kFloat32}; }
  std::vector<Shape> OutputShapes(std::span<const Shape> inputs) const override { return {inputs[0]}; }
  void Enqueue(std::span<const Tensor>, std::span<Tensor>, backend::Stream&) const override {
    throw Error(ErrorCode::kInternal, "simulated execution failure");
  }
  std::string Serialize() const override { return ""; }

 private:
  backend::Profile profile_;
};

class FailingBackend final : public backend::Backend {
 public:
  std::string name() const override { return "failing"; }
  std::string device() const override { return "test"; }
  std::optional<std::string> Unsupported(const ir::Graph&, const ir::Node&) const override { return std::nullopt; }
  std::unique_ptr<backend::Engine> Compile(const ir::Graph&, const backend::Profile& profile,
                                           const backend::CompileOptions&) const override {
    if (profile.inputs.at(0).max.at(0) == 1) throw Error(ErrorCode::kUnimplemented, "simulated build failure");
    return std::make_unique<FailingEngine>(profile);
  }
  std::unique_ptr<backend::Engine> Deserialize(const ir::Graph&, const backend::Profile&, const backend::CompileOptions&,
                                               std::string_view) const override {
    throw Error(ErrorCode::kDataLoss, "not used");
  }
};

// segment: y = relu(x) + x, run through one engine node.
std::shared_ptr<ir::Graph> EngineGraph() {
  auto seg = std::make_shared<ir::Graph>();
  ir::ValueId x = seg->AddInput("x", DType::kFloat32, ir::SymShape::Of({ir::kUnknownDim, 3}));
  ir::Node& relu = seg->AddNode("Relu", "relu", {x});
  ir::InferNode(*seg, relu.id);
  ir::Node& add = seg->AddNode("Add", "add", {seg->node(0).outputs[0], x});
  ir::InferNode(*seg, add.id);
  seg->AddOutput("y", seg->node(1).outputs[0]);

  auto g = std::make_shared<ir::Graph>();
  ir::ValueId in = g->AddInput("x", DType::kFloat32, ir::SymShape::Of({ir::kUnknownDim, 3}));
  ir::Node& engine = g->AddNode("Engine", "engine", {in});
  engine.attrs.Set("segment", seg);
  engine.attrs.Set("engine_name", std::string("KilnEngineOp_000"));
  ir::InferNode(*g, engine.id);
  g->AddOutput("y", g->node(0).outputs[0]);
  return g;
}

TEST(EngineFallback, BuildAndRunFailuresFallBackNativelyAndAreLoggedOnce) {
  auto log = std::make_shared<std::vector<std::string>>();
  runtime::ConvertedGraph graph(EngineGraph(), std::make_shared<FailingBackend>(), runtime::EngineSettings{},
                                [log](const std::string& m) { log->push_back(m); });
  Tensor x = Tensor::FromVector<float>(DType::kFloat32, {1, 3}, {-1.0f, 0.5f, 2.0f});
  for (int i = 0; i < 3; ++i) {
    std::vector<Tensor> y = graph.Run({x});  // batch 1: the build fails
    EXPECT_EQ(y[0].data<float>()[0], -1.0f);
    EXPECT_EQ(y[0].data<float>()[2], 4.0f);
  }
  Tensor x2 = Tensor::FromVector<float>(DType::kFloat32, {2, 3}, {1, 2, 3, 4, 5, 6});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(graph.Run({x2})[0].data<float>()[5], 12.0f);  // batch 2: runs fail
  EXPECT_EQ(graph.stats().native_runs, 6);
  int build_msgs = 0, run_msgs = 0;
  for (const std::string& m : *log) {
    build_msgs += m.find("simulated build failure") != std::string::npos;
    run_msgs += m.find("simulated execution failure") != std::string::npos;
  }
  EXPECT_EQ(build_msgs, 1);
  EXPECT_EQ(run_msgs, 1);
}

}  // namespace
}  // namespace kiln
