// The converter API on the bundled demo model (models/demo: a small Keras 3 CNN, input
// `image` [?,28,28,1] float32): workflow, errors, engine cache behaviour, threads.
#include "kiln/converter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "kiln/model.h"
#include "tests/unit/demo_model_test_util.h"

namespace kiln {
namespace {

using demo_test::DemoDir;
using demo_test::ExpectRunStats;
using demo_test::Image;
using demo_test::RunOnce;
using testutil::RelativeL2Error;

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("kiln_converter_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

InputFn Batches(std::vector<int> batches) {
  auto next = std::make_shared<size_t>(0);
  return [batches, next]() -> std::optional<std::vector<Tensor>> {
    if (*next == batches.size()) return std::nullopt;
    return std::vector<Tensor>{Image(batches[(*next)++], 7)};
  };
}

TEST(Converter, ConvertBuildSaveLoadRunsWithoutRebuilding) {
  const std::string out = TempDir("build");
  ConversionParams params;
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);
  converter.convert();
  converter.build(Batches({4}));
  converter.save(out);
  const std::string summary = converter.summary();
  EXPECT_NE(summary.find("[*] Total number of engines: 1"), std::string::npos) << summary;
  EXPECT_NE(summary.find("% of OPs Converted: "), std::string::npos) << summary;

  auto original = LoadModel(DemoDir());
  auto converted = LoadModel(out);
  const Tensor image = Image(3, 1);  // batch 3 <= 4: served by the implicit-batch engine
  EXPECT_LE(RelativeL2Error(RunOnce(*converted, image), RunOnce(*original, image)), 1e-5);
  ExpectRunStats(converted->signature().stats(),
                 {.engines_built = 0, .engines_loaded = 1, .engine_runs = 1, .native_runs = 0});
  std::filesystem::remove_all(out);
}

TEST(Converter, WithoutBuildTheFirstInferenceBuildsAndTheCacheEvicts) {
  const std::string out = TempDir("nobuild");
  ConversionParams params;
  params.use_dynamic_shape = true;  // exact profiles: each new shape needs its own engine
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);
  converter.convert();
  converter.save(out);
  auto converted = LoadModel(out);
  RunOnce(*converted, Image(2, 1));
  RunOnce(*converted, Image(2, 2));
  EXPECT_EQ(converted->signature().stats().engines_built, 1);
  RunOnce(*converted, Image(5, 3));  // maximum_cached_engines=1: evicts the batch-2 engine
  RunOnce(*converted, Image(2, 4));  // so batch 2 is built again
  EXPECT_EQ(converted->signature().stats().engines_built, 3);
  EXPECT_EQ(converted->signature().stats().native_runs, 0);
  std::filesystem::remove_all(out);
}

TEST(Converter, ApiErrors) {
  ConversionParams params;
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);
  try {
    converter.build(Batches({1}));
    FAIL() << "build before convert";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  }
  EXPECT_THROW(converter.convert(Batches({1})), Error);  // calibration data without INT8
  converter.convert();
  try {
    converter.build(nullptr);
    FAIL() << "missing input_fn";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  converter.build(Batches({1}));
  try {
    converter.build(Batches({1}));
    FAIL() << "build twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("already"), std::string::npos);
  }
  ConversionParams int8;
  int8.precision_mode = "int8";
  try {
    Converter(DemoDir(), {"serve"}, "serving_default", int8).convert();
    FAIL() << "INT8 with use_calibration needs calibration data";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("calibration_input_fn"), std::string::npos) << e.what();
  }
  {
    // Calibrated on two batches, the demo model converts and runs.
    Converter c(DemoDir(), {"serve"}, "serving_default", int8);
    c.convert(Batches({2, 3}));
    EXPECT_NE(c.calibration_table_json().find("kiln-calibration-table"), std::string::npos);
  }
  ConversionParams static_op;
  static_op.is_dynamic_op = false;
  EXPECT_THROW(Converter(DemoDir(), {"serve"}, "serving_default", static_op), Error);
  EXPECT_THROW(Converter(DemoDir(), {"serve"}, "no_such_signature", params).convert(), Error);
}

TEST(Converter, NeverSavesOverOrAroundTheInputModel) {
  namespace fs = std::filesystem;
  const fs::path root = testutil::FreshTempDir("save_over_input");
  const fs::path input = root / "models" / "demo";
  fs::create_directories(input.parent_path());
  fs::copy(DemoDir(), input, fs::copy_options::recursive);
  auto bytes = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  const std::string pb = bytes(input / "saved_model.pb");
  fs::create_directory_symlink(input, root / "link_to_input");
  Converter converter(input.string(), {"serve"}, "serving_default", ConversionParams{});
  converter.convert();
  for (const fs::path& out : {input, input / "", input / "converted", input.parent_path(), root / "link_to_input",
                              root / "models" / ".." / "models" / "demo"}) {
    testutil::ExpectError([&] { converter.save(out.string()); }, ErrorCode::kInvalidArgument, {"input model"},
                          out.string());
    testutil::ExpectError([&] { converter.save_kiln_file(out.string()); }, ErrorCode::kInvalidArgument,
                          {"input model"}, out.string());
  }
  EXPECT_EQ(bytes(input / "saved_model.pb"), pb);
  EXPECT_FALSE(fs::exists(input / "converted"));
  converter.save((root / "models" / "demo_converted").string());  // a sibling is fine
  EXPECT_TRUE(fs::exists(root / "models" / "demo_converted" / "saved_model.pb"));
}

TEST(Converter, ManyThreadsGetTheSameOutputsAsOne) {
  const std::string out = TempDir("threads");
  ConversionParams params;
  params.maximum_cached_engines = 4;
  Converter converter(DemoDir(), {"serve"}, "serving_default", params);
  converter.convert();
  converter.build(Batches({8}));
  converter.save(out);
  auto model = LoadModel(out);
  constexpr int kThreads = 8;
  std::vector<Tensor> inputs, expected(kThreads), got(kThreads);
  for (int i = 0; i < kThreads; ++i) inputs.push_back(Image(1 + i % 8, 100 + i));
  for (int i = 0; i < kThreads; ++i) expected[i] = RunOnce(*model, inputs[i]);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      for (int r = 0; r < 5; ++r) got[i] = RunOnce(*model, inputs[i]);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_EQ(got[i].shape(), expected[i].shape());
    for (int64_t j = 0; j < got[i].num_elements(); ++j) ASSERT_EQ(got[i].DoubleAt(j), expected[i].DoubleAt(j));
  }
  std::filesystem::remove_all(out);
}

}  // namespace
}  // namespace kiln
