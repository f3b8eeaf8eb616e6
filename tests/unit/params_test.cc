// ConversionParams::Validate and precision / profile-strategy parsing.
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/converter.h"
#include "kiln/error.h"
#include "kiln/precision.h"

namespace kiln {
namespace {

// Validate's error message, or "" when the params are valid. Fails the test on a wrong code.
std::string ValidateError(const ConversionParams& params) {
  try {
    params.Validate();
    return "";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Precision, ParsesCaseInsensitively) {
  EXPECT_EQ(ParsePrecision("FP32"), Precision::kFP32);
  EXPECT_EQ(ParsePrecision("fp16"), Precision::kFP16);
  EXPECT_EQ(ParsePrecision("Bf16"), Precision::kBF16);
  EXPECT_EQ(ParsePrecision("int8"), Precision::kINT8);
  for (Precision p : {Precision::kFP32, Precision::kFP16, Precision::kBF16, Precision::kINT8})
    EXPECT_EQ(ParsePrecision(PrecisionName(p)), p);
  EXPECT_EQ(PrecisionName(Precision::kBF16), "BF16");
}

TEST(Precision, ErrorNamesAcceptedValues) {
  try {
    ParsePrecision("fp64");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()), "precision_mode 'fp64' is not one of FP32, FP16, BF16, INT8, FP8");
  }
  EXPECT_THROW(ParsePrecision(""), Error);
  EXPECT_THROW(ParsePrecision("FP32 "), Error);
}

TEST(ProfileStrategy, ParsesCaseInsensitively) {
  EXPECT_EQ(ParseProfileStrategy("Range"), ProfileStrategy::kRange);
  EXPECT_EQ(ParseProfileStrategy("optimal"), ProfileStrategy::kOptimal);
  EXPECT_EQ(ParseProfileStrategy("RANGE+OPTIMAL"), ProfileStrategy::kRangeOptimal);
  EXPECT_EQ(ParseProfileStrategy("implicitbatchmodecompatible"), ProfileStrategy::kImplicitBatchModeCompatible);
  for (ProfileStrategy s : {ProfileStrategy::kRange, ProfileStrategy::kOptimal, ProfileStrategy::kRangeOptimal,
                            ProfileStrategy::kImplicitBatchModeCompatible})
    EXPECT_EQ(ParseProfileStrategy(ProfileStrategyName(s)), s);
  try {
    ParseProfileStrategy("Best");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "dynamic_shape_profile_strategy 'Best' is not one of Range, Optimal, Range+Optimal, "
              "ImplicitBatchModeCompatible");
  }
}

TEST(ConversionParams, DefaultsValidate) {
  EXPECT_NO_THROW(ConversionParams{}.Validate());
}

TEST(ConversionParams, ValidCombinations) {
  for (const char* precision : {"fp32", "FP16", "bf16"}) {
    ConversionParams p;
    p.precision_mode = precision;
    EXPECT_EQ(ValidateError(p), "") << precision;
  }
  for (const char* strategy : {"Range", "optimal", "Range+Optimal", "ImplicitBatchModeCompatible"}) {
    ConversionParams p;
    p.use_dynamic_shape = true;
    p.dynamic_shape_profile_strategy = strategy;
    EXPECT_EQ(ValidateError(p), "") << strategy;
  }
  ConversionParams p;
  p.minimum_segment_size = -1;  // disables conversion
  p.dynamic_shape_profile_strategy = "range";  // the default, in any case, without use_dynamic_shape
  p.maximum_cached_engines = 16;
  p.max_batch_size = 64;
  p.use_calibration = false;
  p.allow_build_at_runtime = false;
  EXPECT_EQ(ValidateError(p), "");
}

struct Case {
  std::string name;
  std::function<void(ConversionParams&)> set;
  std::vector<std::string> expected;  // parts of the message; the first is the field name
};

TEST(ConversionParams, EachInvalidValueNamesTheField) {
  const std::vector<Case> cases = {
      {"unknown precision", [](auto& p) { p.precision_mode = "fp64"; },
       {"precision_mode", "'fp64' is not one of FP32, FP16, BF16, INT8, FP8"}},
      {"unknown calibrator", [](auto& p) { p.calibrator = "kl"; },
       {"calibrator", "'kl' is not one of entropy, minmax, percentile"}},
      {"percentile 0", [](auto& p) { p.precision_mode = "INT8"; p.calibration_percentile = 0; },
       {"calibration_percentile", "(0, 100], got 0"}},
      {"table without INT8", [](auto& p) { p.calibration_table = "t.json"; },
       {"calibration_table", "only used with precision_mode INT8 or FP8 and use_calibration=true"}},
      {"table without calibration", [](auto& p) { p.precision_mode = "INT8"; p.use_calibration = false; p.calibration_table = "t.json"; },
       {"calibration_table", "use_calibration=true"}},
      {"zero workspace", [](auto& p) { p.max_workspace_size_bytes = 0; }, {"max_workspace_size_bytes", "> 0"}},
      {"negative workspace", [](auto& p) { p.max_workspace_size_bytes = -5; },
       {"max_workspace_size_bytes", "got -5"}},
      {"segment size 0", [](auto& p) { p.minimum_segment_size = 0; }, {"minimum_segment_size", "got 0"}},
      {"segment size -2", [](auto& p) { p.minimum_segment_size = -2; }, {"minimum_segment_size", "-1"}},
      {"no cached engines", [](auto& p) { p.maximum_cached_engines = 0; }, {"maximum_cached_engines", ">= 1"}},
      {"negative cached engines", [](auto& p) { p.maximum_cached_engines = -1; },
       {"maximum_cached_engines", "got -1"}},
      {"unknown strategy", [](auto& p) { p.use_dynamic_shape = true; p.dynamic_shape_profile_strategy = "Best"; },
       {"dynamic_shape_profile_strategy", "'Best' is not one of Range, Optimal"}},
      {"strategy without dynamic shape", [](auto& p) { p.dynamic_shape_profile_strategy = "Optimal"; },
       {"dynamic_shape_profile_strategy", "use_dynamic_shape"}},
      {"static op", [](auto& p) { p.is_dynamic_op = false; },
       {"is_dynamic_op", "is_dynamic_op=False is not supported in V2: engines are built at run time or by build()"}},
      {"batch 0", [](auto& p) { p.max_batch_size = 0; }, {"max_batch_size", ">= 1"}},
#ifndef KILN_WITH_CUDA
      {"cuda", [](auto& p) { p.device = "cuda"; }, {"device", "no CUDA engine backend"}},
      {"cuda:0", [](auto& p) { p.device = "cuda:0"; }, {"device", "no CUDA engine backend"}},
#else
      {"cuda:0", [](auto& p) { p.device = "cuda:0"; }, {"device 'cuda:0' is not one of cpu, cuda", "GPU 0"}},
      {"gpu", [](auto& p) { p.device = "gpu"; }, {"device 'gpu' is not one of cpu, cuda"}},
#endif
      {"unknown device", [](auto& p) { p.device = "tpu"; }, {"device", "'tpu' is not one of cpu"}},
  };
  for (const Case& c : cases) {
    ConversionParams p;
    c.set(p);
    std::string message = ValidateError(p);
    ASSERT_FALSE(message.empty()) << c.name << ": expected an error";
    for (const std::string& part : c.expected) EXPECT_TRUE(Contains(message, part)) << c.name << ": " << message;
    EXPECT_EQ(message.rfind(c.expected.front(), 0), 0u) << c.name << ": message should start with the field: "
                                                        << message;
  }
}

TEST(ConversionParams, ReportsEveryProblem) {
  ConversionParams p;
  p.max_workspace_size_bytes = 0;
  p.max_batch_size = 0;
  std::string message = ValidateError(p);
  EXPECT_TRUE(Contains(message, "2 invalid conversion parameters")) << message;
  EXPECT_TRUE(Contains(message, "max_workspace_size_bytes")) << message;
  EXPECT_TRUE(Contains(message, "max_batch_size")) << message;
}

}  // namespace
}  // namespace kiln
