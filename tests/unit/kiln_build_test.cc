// Converter::build_profiles + save_kiln_file + LoadModel(.kiln) on the bundled demo model
// (models/demo: input `image` [?,28,28,1] float32, output `output_0`), and
// Signature::RunWithBuffers (happy path and every error).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "convert/engine_file.h"
#include "convert/kiln_file.h"
#include "kiln/converter.h"
#include "kiln/device.h"
#include "kiln/model.h"
#include "tests/unit/demo_model_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using demo_test::DemoDir;
using demo_test::ExpectRunStats;
using demo_test::Image;
using demo_test::RunOnce;
using testutil::ExpectError;
using testutil::ExpectErrorMessage;
using testutil::RelativeL2Error;

fs::path TempDir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("kiln_build_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

InputShapeProfile BatchRange(int64_t lo, int64_t opt, int64_t hi) {
  return {{"image", {{lo, 28, 28, 1}, {opt, 28, 28, 1}, {hi, 28, 28, 1}}}};
}

// Builds the demo model for batch 2..6 into `path`.
void BuildKiln(const std::string& path, bool allow_build_at_runtime) {
  ConversionParams params;
  params.use_dynamic_shape = true;
  params.allow_build_at_runtime = allow_build_at_runtime;
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);
  converter.convert();
  converter.build_profiles({BatchRange(2, 4, 6)});
  converter.save_kiln_file(path);
}

TEST(KilnBuild, ProfilesSavedToAKilnFileLoadWithoutRebuilding) {
  const fs::path dir = TempDir("load");
  const std::string path = (dir / "demo.kiln").string();
  BuildKiln(path, /*allow_build_at_runtime=*/true);
  const convert::ConvertedModel file = convert::ReadKilnFile(path);
  ASSERT_EQ(file.engine_files.size(), 1u);
  const convert::EngineFile engine = convert::ReadEngineFile(file.engine_files.begin()->second.at(0), "engine");
  ASSERT_EQ(engine.header.profile.inputs.size(), 1u);
  EXPECT_EQ(engine.header.profile.inputs[0].min, (Shape{2, 28, 28, 1}));
  EXPECT_EQ(engine.header.profile.inputs[0].opt, (Shape{4, 28, 28, 1}));
  EXPECT_EQ(engine.header.profile.inputs[0].max, (Shape{6, 28, 28, 1}));

  auto original = LoadModel(DemoDir());
  std::vector<std::string> logged;
  LoadOptions options;
  options.log = [&](const std::string& m) { logged.push_back(m); };
  auto model = LoadModel(path, options);
  EXPECT_EQ(model->dir(), path);
  EXPECT_EQ(model->signature_keys(), std::vector<std::string>{"serving_default"});
  for (int batch : {2, 5, 6}) {
    const Tensor image = Image(batch, static_cast<uint64_t>(batch));
    EXPECT_LE(RelativeL2Error(RunOnce(*model, image), RunOnce(*original, image)), 1e-5) << "batch " << batch;
  }
  ExpectRunStats(model->signature().stats(),
                 {.engines_built = 0, .engines_loaded = 1, .engine_runs = 3, .native_runs = 0});
  // Outside the range: built at run time (exact profile), still right.
  const Tensor big = Image(9, 9);
  EXPECT_LE(RelativeL2Error(RunOnce(*model, big), RunOnce(*original, big)), 1e-5);
  const RunStats stats = model->signature().stats();
  EXPECT_EQ(stats.engines_built, 1);
  EXPECT_EQ(stats.native_runs, 0);

  // Found by its magic bytes under another name too.
  const std::string renamed = (dir / "demo.bin").string();
  fs::copy_file(path, renamed);
  EXPECT_EQ(LoadModel(renamed)->signature().stats().engines_loaded, 1);
  fs::remove_all(dir);
}

TEST(KilnBuild, OutsideTheRangeRunsNativelyWithoutBuildAtRuntime) {
  const fs::path dir = TempDir("native");
  const std::string path = (dir / "demo.kiln").string();
  BuildKiln(path, /*allow_build_at_runtime=*/false);
  auto original = LoadModel(DemoDir());
  std::vector<std::string> logged;
  LoadOptions options;
  options.log = [&](const std::string& m) { logged.push_back(m); };
  auto model = LoadModel(path, options);
  const Tensor small = Image(1, 1), inside = Image(3, 3);
  EXPECT_LE(RelativeL2Error(RunOnce(*model, small), RunOnce(*original, small)), 1e-5);
  EXPECT_LE(RelativeL2Error(RunOnce(*model, inside), RunOnce(*original, inside)), 1e-5);
  ExpectRunStats(model->signature().stats(),
                 {.engines_built = 0, .engines_loaded = 1, .engine_runs = 1, .native_runs = 1});
  bool said = false;
  for (const auto& m : logged) said = said || m.find("allow_build_at_runtime is false") != std::string::npos;
  EXPECT_TRUE(said);
  fs::remove_all(dir);
}

TEST(KilnBuild, EngineForAnotherDeviceIsReportedAndRebuilt) {
  const fs::path dir = TempDir("device");
  const std::string path = (dir / "demo.kiln").string();
  BuildKiln(path, true);
  convert::ConvertedModel model = convert::ReadKilnFile(path);
  for (auto& [name, files] : model.engine_files)
    for (std::string& bytes : files) {
      convert::EngineFile f = convert::ReadEngineFile(bytes, name);
      f.header.device = "some other cpu";
      bytes = convert::WriteEngineFile(f.header, f.payload);
    }
  convert::WriteKilnFile(path, model);
  std::vector<std::string> logged;
  LoadOptions options;
  options.log = [&](const std::string& m) { logged.push_back(m); };
  auto loaded = LoadModel(path, options);
  bool said = false;
  for (const auto& m : logged)
    said = said || (m.find("was built for device 'some other cpu'") != std::string::npos && m.find(path) != std::string::npos);
  EXPECT_TRUE(said) << (logged.empty() ? "nothing logged" : logged.front());
  auto original = LoadModel(DemoDir());
  const Tensor image = Image(3, 3);
  EXPECT_LE(RelativeL2Error(RunOnce(*loaded, image), RunOnce(*original, image)), 1e-5);
  EXPECT_EQ(loaded->signature().stats().engines_loaded, 0);
  EXPECT_EQ(loaded->signature().stats().engines_built, 1);
  fs::remove_all(dir);
}

TEST(KilnBuild, CorruptKilnFileFailsToLoadWithDataLoss) {
  const fs::path dir = TempDir("corrupt");
  const std::string path = (dir / "demo.kiln").string();
  BuildKiln(path, true);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  ExpectError([&] { LoadModel(path); }, ErrorCode::kDataLoss, {path, "truncated"});
  bytes[bytes.size() - 10] ^= 0x40;  // inside the last section (the engine)
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ExpectError([&] { LoadModel(path); }, ErrorCode::kDataLoss, {path, "checksum", "engine"});
  fs::remove_all(dir);
}

TEST(KilnBuild, SeveralProfilesGiveSeveralEngines) {
  const fs::path dir = TempDir("several");
  const std::string path = (dir / "demo.kiln").string();
  ConversionParams params;
  params.use_dynamic_shape = true;
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);  // maximum_cached_engines = 1
  converter.convert();
  converter.build_profiles({BatchRange(1, 1, 2), BatchRange(4, 6, 8), BatchRange(1, 1, 2)});  // the repeat is dropped
  converter.save_kiln_file(path);
  const convert::ConvertedModel file = convert::ReadKilnFile(path);
  ASSERT_EQ(file.engine_files.size(), 1u);
  EXPECT_EQ(file.engine_files.begin()->second.size(), 2u);
  auto original = LoadModel(DemoDir());
  auto model = LoadModel(path);
  for (int batch : {1, 2, 4, 8}) {
    const Tensor image = Image(batch, 40 + static_cast<uint64_t>(batch));
    EXPECT_LE(RelativeL2Error(RunOnce(*model, image), RunOnce(*original, image)), 1e-5) << "batch " << batch;
  }
  EXPECT_EQ(model->signature().stats().engines_loaded, 2);
  EXPECT_EQ(model->signature().stats().engines_built, 0);
  EXPECT_EQ(model->signature().stats().engine_runs, 4);
  fs::remove_all(dir);
}

TEST(KilnBuild, BuildProfilesErrors) {
  ConversionParams dynamic;
  dynamic.use_dynamic_shape = true;
  {
    Converter c(DemoDir(), {"serve"}, "serving_default", dynamic);
    ExpectError([&] { c.build_profiles({BatchRange(1, 2, 3)}); }, ErrorCode::kFailedPrecondition, {"convert()"});
    c.convert();
    ExpectError([&] { c.build_profiles({}); }, ErrorCode::kInvalidArgument, {"at least one"});
    ExpectError([&] { c.build_profiles({InputShapeProfile{}}); }, ErrorCode::kInvalidArgument, {"'image'", "no shape range"});
    InputShapeProfile extra = BatchRange(1, 2, 3);
    extra["other"] = {{1}, {1}, {1}};
    ExpectError([&] { c.build_profiles({extra}); }, ErrorCode::kInvalidArgument, {"'other'", "no input of that name"});
    ExpectError([&] { c.build_profiles({BatchRange(4, 2, 3)}); }, ErrorCode::kInvalidArgument, {"min <= opt <= max"});
    ExpectError([&] { c.build_profiles({{{"image", {{1, 28, 28}, {1, 28, 28}, {1, 28, 28}}}}}); }, ErrorCode::kInvalidArgument,
                {"'image'", "rank 3"});
    ExpectError([&] { c.build_profiles({{{"image", {{1, 28, 28, 1}, {1, 28, 28, 1}, {1, 29, 28, 1}}}}}); },
                ErrorCode::kInvalidArgument, {"dim 1 must be 28"});
    ExpectError([&] { c.build_profiles({{{"image", {{-1, 28, 28, 1}, {1, 28, 28, 1}, {1, 28, 28, 1}}}}}); },
                ErrorCode::kInvalidArgument, {"negative"});
    c.build_profiles({BatchRange(1, 1, 2)});  // the errors above did not count as the one build
    ExpectError([&] { c.build_profiles({BatchRange(1, 2, 3)}); }, ErrorCode::kFailedPrecondition, {"already"});
  }
  {
    Converter c(DemoDir(), {"serve"}, "serving_default", ConversionParams{});
    c.convert();
    ExpectError([&] { c.build_profiles({BatchRange(1, 2, 3)}); }, ErrorCode::kFailedPrecondition, {"use_dynamic_shape"});
  }
}

// RunWithBuffers

class RunWithBuffersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = LoadModel(DemoDir()).release(); }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  const Signature& sig() const { return model_->signature(); }
  static Model* model_;
};
Model* RunWithBuffersTest::model_ = nullptr;

TEST_F(RunWithBuffersTest, MatchesRunAndWritesTheShape) {
  const Tensor image = Image(3, 5);
  const Tensor expected = sig().Run({{"image", image}}).at("output_0");
  std::vector<float> in(image.data<float>(), image.data<float>() + image.num_elements());
  std::vector<float> out(64, -1.0f);
  const BufferBinding inputs[] = {{"image", DType::kFloat32, {3, 28, 28, 1}, in.data(), in.size() * sizeof(float)}};
  BufferBinding outputs[] = {{"output_0", DType::kFloat32, {}, out.data(), out.size() * sizeof(float)}};
  sig().RunWithBuffers(inputs, outputs);
  EXPECT_EQ(outputs[0].shape, expected.shape());
  for (int64_t i = 0; i < expected.num_elements(); ++i) EXPECT_EQ(out[static_cast<size_t>(i)], expected.data<float>()[i]) << i;
  EXPECT_EQ(out[static_cast<size_t>(expected.num_elements())], -1.0f) << "wrote past the output";
  // The input memory is used, not a copy taken earlier: change it and the result changes.
  for (float& v : in) v = 0.5f;
  sig().RunWithBuffers(inputs, outputs);
  const Tensor halves = sig().Run({{"image", Tensor::FromVector<float>(DType::kFloat32, {3, 28, 28, 1}, in)}}).at("output_0");
  for (int64_t i = 0; i < halves.num_elements(); ++i) EXPECT_EQ(out[static_cast<size_t>(i)], halves.data<float>()[i]);
  // No outputs bound: runs, writes nothing.
  sig().RunWithBuffers(inputs, {});
}

TEST_F(RunWithBuffersTest, WorksOnAKilnFileToo) {
  const fs::path dir = TempDir("buffers");
  const std::string path = (dir / "demo.kiln").string();
  BuildKiln(path, true);
  auto model = LoadModel(path);
  const Tensor image = Image(4, 6);
  const Tensor expected = model->signature().Run({{"image", image}}).at("output_0");
  std::vector<float> out(static_cast<size_t>(expected.num_elements()));
  const BufferBinding inputs[] = {{"image", DType::kFloat32, image.shape(), const_cast<void*>(image.raw_data()), image.byte_size()}};
  BufferBinding outputs[] = {{"output_0", DType::kFloat32, {}, out.data(), out.size() * sizeof(float)}};
  model->signature().RunWithBuffers(inputs, outputs);
  for (int64_t i = 0; i < expected.num_elements(); ++i) EXPECT_EQ(out[static_cast<size_t>(i)], expected.data<float>()[i]);
  EXPECT_EQ(model->signature().stats().engines_built, 0);
  fs::remove_all(dir);
}

TEST_F(RunWithBuffersTest, Errors) {
  std::vector<float> in(2 * 28 * 28, 0.25f), out(64);
  const size_t in_bytes = in.size() * sizeof(float), out_bytes = out.size() * sizeof(float);
  const Shape shape = {2, 28, 28, 1};
  auto run = [&](std::vector<BufferBinding> inputs, std::vector<BufferBinding> outputs) {
    sig().RunWithBuffers(inputs, outputs);
  };
  const BufferBinding good_in{"image", DType::kFloat32, shape, in.data(), in_bytes};
  const BufferBinding good_out{"output_0", DType::kFloat32, {}, out.data(), out_bytes};
  run({good_in}, {good_out});

  ExpectError([&] { run({{"imag", DType::kFloat32, shape, in.data(), in_bytes}}, {good_out}); }, ErrorCode::kInvalidArgument,
              {"input binding 'imag'", "no input of that name", "image"});
  ExpectError([&] { run({}, {good_out}); }, ErrorCode::kInvalidArgument, {"'image'", "missing"});
  ExpectError([&] { run({good_in, good_in}, {good_out}); }, ErrorCode::kInvalidArgument, {"'image'", "more than once"});
  ExpectError([&] { run({{"image", DType::kInt32, shape, in.data(), in_bytes}}, {good_out}); }, ErrorCode::kInvalidArgument,
              {"'image'", "dtype int32", "float32"});
  ExpectError([&] { run({{"image", DType::kFloat32, shape, in.data(), in_bytes - 4}}, {good_out}); }, ErrorCode::kInvalidArgument,
              {"'image'", "size_bytes is 6268", "needs 6272 bytes"});
  ExpectError([&] { run({{"image", DType::kFloat32, shape, nullptr, in_bytes}}, {good_out}); }, ErrorCode::kInvalidArgument,
              {"'image'", "null"});
  ExpectError([&] { run({{"image", DType::kFloat32, {2, 28, 28, 1, 1}, in.data(), in_bytes}}, {good_out}); },
              ErrorCode::kInvalidArgument, {"image"});
  ExpectError([&] { run({{"image", DType::kFloat32, {2, -28, 28, 1}, in.data(), in_bytes}}, {good_out}); },
              ErrorCode::kInvalidArgument, {"'image'", "negative"});
  ExpectError([&] { run({{"image", DType::kFloat32, {1, 28, 28, 1}, reinterpret_cast<char*>(in.data()) + 1, in_bytes - 4}}, {good_out}); },
              ErrorCode::kInvalidArgument, {"'image'", "aligned"});
  // A GPU this machine (or build) does not have: the binding and the device are named. (On a GPU
  // machine device bindings run: CudaIo tests in cuda_io_test.cc.)
  bool have_gpu = true;
  try {
    AllocateTensorOn({DeviceKind::kCuda, 0}, DType::kFloat32, {1});
  } catch (const Error&) {
    have_gpu = false;
  }
  BufferBinding cuda_in = good_in;
  cuda_in.device = {DeviceKind::kCuda, have_gpu ? 64 : 0};
  ExpectErrorMessage([&] { run({cuda_in}, {good_out}); }, {"input binding 'image'", cuda_in.device.ToString()});

  ExpectError([&] { run({good_in}, {{"logits", DType::kFloat32, {}, out.data(), out_bytes}}); }, ErrorCode::kInvalidArgument,
              {"output binding 'logits'", "output_0"});
  ExpectError([&] { run({good_in}, {good_out, good_out}); }, ErrorCode::kInvalidArgument, {"'output_0'", "more than once"});
  ExpectError([&] { run({good_in}, {{"output_0", DType::kFloat16, {}, out.data(), out_bytes}}); }, ErrorCode::kInvalidArgument,
              {"'output_0'", "dtype float16"});
  ExpectError([&] { run({good_in}, {{"output_0", DType::kFloat32, {}, nullptr, out_bytes}}); }, ErrorCode::kInvalidArgument,
              {"'output_0'", "null"});
  BufferBinding cuda_out = good_out;
  cuda_out.device = {DeviceKind::kCuda, 65};
  ExpectErrorMessage([&] { run({good_in}, {cuda_out}); }, {"output binding 'output_0'", "cuda:65"});
  // An output in the input's memory would be overwritten while it is read.
  ExpectError([&] { run({good_in}, {{"output_0", DType::kFloat32, {}, in.data() + 16, out_bytes}}); },
              ErrorCode::kInvalidArgument, {"'output_0'", "overlaps input 'image'"});
  // Too small an output: says how many bytes, writes nothing, and reports the shape.
  std::vector<float> tiny(4, -3.0f);
  BufferBinding small[] = {{"output_0", DType::kFloat32, {}, tiny.data(), tiny.size() * sizeof(float)}};
  const BufferBinding ins[] = {good_in};
  ExpectError([&] { sig().RunWithBuffers(ins, small); }, ErrorCode::kInvalidArgument,
              {"'output_0'", "size_bytes is 16", "needs 80 bytes"});
  EXPECT_EQ(small[0].shape, (Shape{2, 10}));
  for (float v : tiny) EXPECT_EQ(v, -3.0f);
}

}  // namespace
}  // namespace kiln
