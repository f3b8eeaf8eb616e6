// The C API (include/kiln/c_api.h): a model loaded and run through it, and its errors (codes,
// thread-local messages, NULL pointers) on bad paths, names, dtypes and shapes.
#include "kiln/c_api.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "kiln/converter.h"
#include "kiln/error.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

TEST(CApi, LoadsAndRunsTheDemoModel) {
  KilnModel* model = kiln_model_load((testutil::SourceDir() / "models" / "demo").c_str(), nullptr);
  ASSERT_NE(model, nullptr) << kiln_last_error();
  std::vector<float> image(2 * 28 * 28, 0.5f);
  const int64_t dims[] = {2, 28, 28, 1};
  const KilnInput in{"image", KILN_DT_FLOAT, 4, dims, image.data()};
  KilnOutputs* out = nullptr;
  ASSERT_EQ(kiln_run(model, nullptr, &in, 1, &out), 0) << kiln_last_error();
  ASSERT_EQ(kiln_outputs_count(out), 1);
  const int i = kiln_outputs_find(out, "output_0");
  ASSERT_EQ(i, 0);
  EXPECT_EQ(kiln_output_dtype(out, i), KILN_DT_FLOAT);
  ASSERT_EQ(kiln_output_rank(out, i), 2);
  EXPECT_EQ(kiln_output_dims(out, i)[0], 2);
  EXPECT_EQ(kiln_output_dims(out, i)[1], 10);
  EXPECT_EQ(kiln_output_bytes(out, i), 2 * 10 * sizeof(float));
  const float* probs = static_cast<const float*>(kiln_output_data(out, i));
  float sum = 0;
  for (int k = 0; k < 10; ++k) sum += probs[k];
  EXPECT_NEAR(sum, 1.0f, 1e-5);  // a softmax
  EXPECT_EQ(kiln_outputs_find(out, "nope"), -1);
  EXPECT_EQ(kiln_output_data(out, 5), nullptr);
  kiln_outputs_free(out);

  // Errors: the code is 1 + ErrorCode, the message names the input and what was expected.
  const int64_t bad_dims[] = {2, 28, 28, 3};
  const KilnInput wrong_shape{"image", KILN_DT_FLOAT, 4, bad_dims, image.data()};
  EXPECT_EQ(kiln_run(model, nullptr, &wrong_shape, 1, &out), 1 + static_cast<int>(ErrorCode::kInvalidArgument));
  EXPECT_NE(std::string(kiln_last_error()).find("image"), std::string::npos) << kiln_last_error();
  const KilnInput wrong_dtype{"image", KILN_DT_INT32, 4, dims, image.data()};
  EXPECT_NE(kiln_run(model, nullptr, &wrong_dtype, 1, &out), 0);
  EXPECT_NE(std::string(kiln_last_error()).find("int32"), std::string::npos) << kiln_last_error();
  const KilnInput strings{"image", 7 /* DT_STRING */, 4, dims, image.data()};
  EXPECT_NE(kiln_run(model, nullptr, &strings, 1, &out), 0);
  EXPECT_NE(std::string(kiln_last_error()).find("C API does not pass"), std::string::npos) << kiln_last_error();
  EXPECT_EQ(kiln_run(model, "no_such_signature", &in, 1, &out), 1 + static_cast<int>(ErrorCode::kNotFound));
  EXPECT_EQ(kiln_run(model, nullptr, &in, 1, nullptr), 1 + static_cast<int>(ErrorCode::kInvalidArgument));
  kiln_model_free(model);
}

// kiln_run_engine (what TensorFlow's KilnEngineOp calls): one engine of a converted model alone.
TEST(CApi, RunsOneEngineOfAConvertedModel) {
  const std::filesystem::path dir = testutil::FreshTempDir("kiln_c_api_engine") / "converted";
  std::vector<std::string> log;
  ConversionParams params;
  params.log = [&](const std::string& line) { log.push_back(line); };
  Converter converter((testutil::SourceDir() / "models" / "demo").string(), {"serve"}, "serving_default", params);
  converter.convert();
  converter.save(dir.string());
  bool per_engine = false;
  for (const std::string& line : log)
    per_engine = per_engine || line.find("TensorFlow layout of saved_model.pb: per-engine: 1 KilnEngineOp") != std::string::npos;
  EXPECT_TRUE(per_engine) << "the demo model converts to one engine in its own TF graph";

  KilnModel* model = kiln_model_load(dir.c_str(), nullptr);
  ASSERT_NE(model, nullptr) << kiln_last_error();
  std::vector<float> image(3 * 28 * 28);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<float>(i % 17) / 17.0f;
  const int64_t dims[] = {3, 28, 28, 1};
  const KilnInput in{"image", KILN_DT_FLOAT, 4, dims, image.data()};
  KilnOutputs* whole = nullptr;
  ASSERT_EQ(kiln_run(model, nullptr, &in, 1, &whole), 0) << kiln_last_error();
  const KilnInput positional{nullptr, KILN_DT_FLOAT, 4, dims, image.data()};
  KilnOutputs* engine = nullptr;
  ASSERT_EQ(kiln_run_engine(model, nullptr, "KilnEngineOp_000", &positional, 1, &engine), 0) << kiln_last_error();
  ASSERT_EQ(kiln_outputs_count(engine), 1);
  EXPECT_STREQ(kiln_output_name(engine, 0), "0");
  ASSERT_EQ(kiln_output_bytes(engine, 0), kiln_output_bytes(whole, 0));
  const float* a = static_cast<const float*>(kiln_output_data(engine, 0));
  const float* b = static_cast<const float*>(kiln_output_data(whole, 0));
  for (size_t k = 0; k < 3 * 10; ++k) EXPECT_EQ(a[k], b[k]) << k;  // the signature is this one engine
  kiln_outputs_free(engine);
  kiln_outputs_free(whole);

  // Errors name the engine and what it expects.
  EXPECT_EQ(kiln_run_engine(model, nullptr, "nope", &positional, 1, &engine), 1 + static_cast<int>(ErrorCode::kNotFound));
  EXPECT_NE(std::string(kiln_last_error()).find("nope"), std::string::npos) << kiln_last_error();
  EXPECT_EQ(kiln_run_engine(model, nullptr, "KilnEngineOp_000", &positional, 0, &engine),
            1 + static_cast<int>(ErrorCode::kInvalidArgument));
  EXPECT_NE(std::string(kiln_last_error()).find("takes 1 inputs, got 0"), std::string::npos) << kiln_last_error();
  const KilnInput ints{nullptr, KILN_DT_INT32, 4, dims, image.data()};
  EXPECT_EQ(kiln_run_engine(model, nullptr, "KilnEngineOp_000", &ints, 1, &engine),
            1 + static_cast<int>(ErrorCode::kInvalidArgument));
  EXPECT_NE(std::string(kiln_last_error()).find("must be float32, got int32"), std::string::npos) << kiln_last_error();
  EXPECT_EQ(kiln_run_engine(model, nullptr, nullptr, &positional, 1, &engine),
            1 + static_cast<int>(ErrorCode::kInvalidArgument));
  kiln_model_free(model);

  // A model that is not converted has no engines to run.
  KilnModel* source = kiln_model_load((testutil::SourceDir() / "models" / "demo").c_str(), nullptr);
  ASSERT_NE(source, nullptr) << kiln_last_error();
  EXPECT_EQ(kiln_run_engine(source, nullptr, "KilnEngineOp_000", &positional, 1, &engine),
            1 + static_cast<int>(ErrorCode::kInvalidArgument));
  EXPECT_NE(std::string(kiln_last_error()).find("not a converted model's"), std::string::npos) << kiln_last_error();
  kiln_model_free(source);
  std::filesystem::remove_all(dir.parent_path());
}

TEST(CApi, LoadErrors) {
  EXPECT_EQ(kiln_model_load("/nonexistent/model", nullptr), nullptr);
  EXPECT_NE(std::string(kiln_last_error()).find("/nonexistent/model"), std::string::npos) << kiln_last_error();
  EXPECT_EQ(kiln_model_load(nullptr, nullptr), nullptr);
  EXPECT_NE(std::string(kiln_last_error()).find("NULL"), std::string::npos);
  EXPECT_EQ(kiln_model_load((testutil::SourceDir() / "models" / "demo").c_str(), "gpu,train"), nullptr);
  EXPECT_NE(std::string(kiln_last_error()).find("train"), std::string::npos) << kiln_last_error();
  EXPECT_STRNE(kiln_version(), "");
}

}  // namespace
}  // namespace kiln
