// INT8 calibration: the calibrators' thresholds on hand-made histograms, the table's JSON form
// and its refusals, calibration of a small graph, and the quantize-dequantize rewrite against a
// hand computation.
#include "runtime/calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "convert/calibration_table.h"
#include "kiln/error.h"
#include "runtime/executor.h"
#include "tests/unit/cpu_test_util.h"

namespace kiln {
namespace {

using convert::CalibrationTable;
using cputest::Builder;

TEST(Calibration, PercentileThresholdIsWhereTheCumulativeCountReachesIt) {
  // 100 values: 90 in bin 0, 9 in bin 4, 1 in bin 9, bins 0.1 wide.
  std::vector<int64_t> h(10, 0);
  h[0] = 90;
  h[4] = 9;
  h[9] = 1;
  EXPECT_DOUBLE_EQ(convert::PercentileThreshold(h, 1.0, 90), 0.1);
  EXPECT_DOUBLE_EQ(convert::PercentileThreshold(h, 1.0, 99), 0.5);
  EXPECT_DOUBLE_EQ(convert::PercentileThreshold(h, 1.0, 100), 1.0);
  EXPECT_DOUBLE_EQ(convert::PercentileThreshold(std::vector<int64_t>(10, 0), 1.0, 99), 0.0);
}

TEST(Calibration, EntropyThresholdClipsARareTailButNotTheBulk) {
  // A Gaussian-like bulk over the first quarter of the range and a handful of far outliers:
  // the KL-optimal threshold keeps the bulk and clips the tail.
  std::vector<int64_t> h(convert::kCalibrationBins, 0);
  for (int i = 0; i < 512; ++i)
    h[static_cast<size_t>(i)] = static_cast<int64_t>(100000 * std::exp(-0.5 * std::pow(i / 170.0, 2)));
  h[2040] = 3;
  const double t = convert::EntropyThreshold(h, 2048.0);
  EXPECT_GT(t, 300.0);
  EXPECT_LT(t, 1000.0);
  // Values spread evenly over the whole range: nothing to clip.
  const std::vector<int64_t> flat(convert::kCalibrationBins, 50);
  EXPECT_GT(convert::EntropyThreshold(flat, 1.0), 0.9);
  // Seventeen grey levels (k / 16, mostly background zeros): every threshold at a level fits
  // perfectly; the largest, which clips nothing, is the one taken.
  std::vector<int64_t> levels(convert::kCalibrationBins, 0);
  levels[0] = 5000;
  for (int k = 1; k <= 16; ++k) levels[static_cast<size_t>(std::min(k * 128, convert::kCalibrationBins - 1))] = 40 + k;
  EXPECT_DOUBLE_EQ(convert::EntropyThreshold(levels, 1.0), 1.0);
}

TEST(Calibration, TableRoundTripsThroughJsonAndRefusesWhatIsNotOne) {
  CalibrationTable t;
  t.calibrator = "percentile";
  t.percentile = 99.9;
  t.batches = 3;
  t.tensors["dense/x"] = {.amax = 2.5, .min = -1.0, .max = 2.75, .elements = 96};
  const CalibrationTable back = CalibrationTable::FromJson(t.ToJson(), "t.json");
  EXPECT_EQ(back.calibrator, "percentile");
  EXPECT_EQ(back.batches, 3);
  ASSERT_EQ(back.tensors.count("dense/x"), 1u);
  EXPECT_DOUBLE_EQ(back.tensors.at("dense/x").amax, 2.5);
  EXPECT_EQ(back.tensors.at("dense/x").elements, 96);
  auto refused = [](const std::string& text, const std::string& why) {
    try {
      CalibrationTable::FromJson(text, "bad.json");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    }
  };
  refused("{", "not a JSON object");
  refused(R"({"format": "other", "version": 1, "tensors": {}})", "format");
  refused(R"({"format": "kiln-calibration-table", "version": 2, "tensors": {}})", "version 1");
  refused(R"({"format": "kiln-calibration-table", "version": 1, "tensors": {"x": {"amax": -1}}})", "'x'");
  refused(R"({"format": "kiln-calibration-table", "version": 1, "tensors": {"x": {"min": 0}}})", "amax");
  refused(std::string(1000, '[') + std::string(1000, ']'), "nested");
}

// x [n, 4] -> MatMul(w [4, 3]) -> Relu -> MatMul(h, h^T): three quantizable activations (x, h used
// twice by the last product, counted once).
Builder SmallGraph() {
  Builder b;
  const ir::ValueId x = b.Input("x", {b.Symbol("n"), 4});
  const ir::ValueId w = b.Const("w", cputest::RandScaled({4, 3}, 7, 1.0f));
  const ir::ValueId h = b.Op("Relu", "relu", {b.Op("MatMul", "fc", {x, w})});
  ir::AttrMap t;
  t.Set("transpose_b", true);
  b.Output("y", b.Op("MatMul", "gram", {h, h}, t));
  return b;
}

TEST(Calibration, MinMaxCalibrationFindsTheLargestMagnitudeOfEachActivation) {
  const Builder b = SmallGraph();
  EXPECT_EQ(convert::QuantizableActivations(*b.g).size(), 2u);  // x and the Relu's output
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t s = 0; s < 3; ++s) batches.push_back({cputest::RandScaled({5, 4}, 20 + s, 3.0f)});
  double max_abs = 0;
  for (const auto& batch : batches)
    for (int64_t i = 0; i < batch[0].num_elements(); ++i)
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(batch[0].data<float>()[i])));
  runtime::CalibrationOptions options;
  options.calibrator = convert::Calibrator::kMinMax;
  std::vector<std::string> progress;
  options.progress = [&](const std::string& line) { progress.push_back(line); };
  const CalibrationTable table = runtime::Calibrate(b.g, batches, options);
  ASSERT_EQ(table.tensors.size(), 2u);
  EXPECT_DOUBLE_EQ(table.tensors.at("x").amax, max_abs);
  EXPECT_EQ(table.tensors.at("x").elements, 60);
  EXPECT_EQ(table.batches, 3);
  EXPECT_EQ(progress.size(), 6u);  // two passes of three batches
  for (const auto& [name, r] : table.tensors) EXPECT_GT(r.amax, 0) << name;
  // Entropy and percentile thresholds never exceed what was seen.
  for (convert::Calibrator c : {convert::Calibrator::kEntropy, convert::Calibrator::kPercentile}) {
    options.calibrator = c;
    const CalibrationTable other = runtime::Calibrate(b.g, batches, options);
    for (const auto& [name, r] : other.tensors) EXPECT_LE(r.amax, table.tensors.at(name).amax * (1 + 1e-9)) << name;
  }
}

float QuantDequant(float x, float amax) {
  const float scale = amax / 127.0f;
  return std::nearbyint(std::clamp(x * (1.0f / scale), -127.0f, 127.0f)) * scale;
}

TEST(Calibration, QuantDequantRewriteComputesWhatInt8KernelsWould) {
  Builder b;
  const ir::ValueId x = b.Input("x", {2, 3});
  const Tensor w = Tensor::FromVector<float>(DType::kFloat32, {3, 2}, {0.5f, -2.0f, 0.25f, 1.0f, -0.125f, 0.3f});
  b.Output("y", b.Op("MatMul", "fc", {x, b.Const("w", w)}));
  CalibrationTable table;
  table.tensors["x"] = {.amax = 1.0};
  ir::Graph g = b.g->Clone();
  const convert::Quantization q = convert::InsertQuantDequant(g, table);
  EXPECT_EQ(q.activations, 1);
  EXPECT_EQ(q.weights, 1);
  const Tensor input = Tensor::FromVector<float>(DType::kFloat32, {2, 3}, {0.3f, -1.7f, 0.011f, 0.9f, 0.004f, -0.5f});
  const Tensor got = runtime::ReferenceExecutor(std::make_shared<ir::Graph>(std::move(g))).Run({input})[0];
  // By hand: x clipped to [-1, 1] in steps of 1/127; w per column, amax 0.5 and 2.0.
  const float col_amax[2] = {0.5f, 2.0f};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) {
      double want = 0;
      for (int k = 0; k < 3; ++k)
        want += static_cast<double>(QuantDequant(input.data<float>()[r * 3 + k], 1.0f)) *
                QuantDequant(w.data<float>()[k * 2 + c], col_amax[c]);
      EXPECT_NEAR(got.data<float>()[r * 2 + c], want, 1e-6) << r << "," << c;
    }
}

// FP8 E4M3 by hand: |v| / scale rounded to 3 mantissa bits (2^-9 steps below 2^-6), saturating at 448.
float Float8QuantDequant(float v, float amax) {
  const float scale = amax / 448.0f;
  const float a = std::min(std::fabs(v) / scale, 448.0f);
  const int exponent = std::max(static_cast<int>(std::floor(std::log2(a > 0 ? a : 1.0f))), -6);
  const float step = std::ldexp(1.0f, exponent - 3);
  return std::copysign(std::nearbyint(a / step) * step * scale, v);
}

TEST(Calibration, Float8QuantDequantRewriteComputesWhatFp8KernelsWouldOnEveryBackend) {
  Builder b;
  const ir::ValueId x = b.Input("x", {2, 3});
  const Tensor w = Tensor::FromVector<float>(DType::kFloat32, {3, 2}, {0.5f, -2.0f, 0.25f, 1.0f, -0.013f, 0.3f});
  b.Output("y", b.Op("MatMul", "fc", {x, b.Const("w", w)}));
  CalibrationTable table;
  table.tensors["x"] = {.amax = 1.0};
  auto g = std::make_shared<ir::Graph>(b.g->Clone());
  const convert::Quantization q = convert::InsertQuantDequant(*g, table, {}, convert::QuantFormat::kFloat8E4M3);
  EXPECT_EQ(q.activations, 1);
  EXPECT_EQ(q.weights, 1);
  int rounds = 0;
  for (const ir::Node& n : g->nodes()) rounds += !n.removed && n.op == "RoundFloat8E4M3";
  EXPECT_EQ(rounds, 1);  // the activation; the weight is rounded at conversion
  // 1.7 saturates (amax 1), 0.004 and 0.011 land among the subnormals.
  const Tensor input = Tensor::FromVector<float>(DType::kFloat32, {2, 3}, {0.3f, -1.7f, 0.011f, 0.9f, 0.004f, -0.5f});
  const Tensor got = runtime::ReferenceExecutor(g).Run({input})[0];
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) {
      double want = 0;
      for (int k = 0; k < 3; ++k)  // one scale for the whole weight: amax 2.0
        want += static_cast<double>(Float8QuantDequant(input.data<float>()[r * 3 + k], 1.0f)) *
                Float8QuantDequant(w.data<float>()[k * 2 + c], 2.0f);
      EXPECT_NEAR(got.data<float>()[r * 2 + c], want, 1e-6) << r << "," << c;
    }
  // The CPU engine (the rounding inside its fused elementwise chain) computes the same.
  Builder quantized;
  quantized.g = g;
  cputest::CheckAgainstReference(quantized, cputest::ExactProfile({{2, 3}}), {{input}}, 1e-6);
}

TEST(Calibration, AnActivationWithoutARangeIsAnErrorNamingIt) {
  const Builder b = SmallGraph();
  CalibrationTable table;
  table.tensors["x"] = {.amax = 1.0};
  ir::Graph g = b.g->Clone();
  try {
    convert::InsertQuantDequant(g, table);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("gram"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no range for tensor"), std::string::npos) << e.what();
  }
}

TEST(Calibration, QuantizationErrorOfUniformDataIsHalfAStepOverTheRange) {
  // |x| uniform over [0, M]: rounding to steps s = M / 127 leaves an RMS error of s / sqrt(12)
  // against an RMS value of M / sqrt(3), so the relative error is 1 / 254.
  const std::vector<int64_t> uniform(convert::kCalibrationBins, 100);
  EXPECT_NEAR(convert::QuantizationError(uniform, 8.0, 8.0), 1.0 / 254, 1e-4);
  // Clipping the top half away costs far more than the finer steps gain.
  EXPECT_GT(convert::QuantizationError(uniform, 8.0, 4.0), 0.1);
  // A rare tail: clipping it beats spending the int8 steps on it.
  std::vector<int64_t> tail(convert::kCalibrationBins, 0);
  for (int b = 0; b < 64; ++b) tail[static_cast<size_t>(b)] = 10000;
  tail.back() = 1;
  const double max_abs = 64.0, bulk = max_abs * 64 / convert::kCalibrationBins;
  EXPECT_LT(convert::QuantizationError(tail, max_abs, bulk), convert::QuantizationError(tail, max_abs, max_abs));
}

TEST(Calibration, CpuEnginesGiveTheReferenceKernelsRanges) {
  const Builder b = SmallGraph();
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t s = 0; s < 3; ++s) batches.push_back({cputest::RandScaled({5 + s, 4}, 40 + s, 3.0f)});
  for (convert::Calibrator c :
       {convert::Calibrator::kMinMax, convert::Calibrator::kEntropy, convert::Calibrator::kPercentile}) {
    runtime::CalibrationOptions options;
    options.calibrator = c;
    const CalibrationTable reference = runtime::Calibrate(b.g, batches, options);
    std::vector<std::string> progress;
    options.progress = [&](const std::string& line) { progress.push_back(line); };
    options.engines = backend::MakeBackend("cpu");
    const CalibrationTable engines = runtime::Calibrate(b.g, batches, options);
    // The engines ran (they log their build), and the calibration passes are reported as before.
    EXPECT_TRUE(std::any_of(progress.begin(), progress.end(),
                            [](const std::string& l) { return l.find("built engine") != std::string::npos; }))
        << convert::CalibratorName(c);
    ASSERT_EQ(engines.tensors.size(), reference.tensors.size());
    for (const auto& [name, r] : reference.tensors) {
      ASSERT_EQ(engines.tensors.count(name), 1u) << name;
      const convert::TensorRange& e = engines.tensors.at(name);
      EXPECT_EQ(e.elements, r.elements) << name;
      // FP32 engines round differently from the reference kernels (1e-6 relative at most here);
      // a histogram bin is 1/kCalibrationBins of the range, so a threshold moves by a bin at most.
      const double tol = 1e-5 * r.amax + 2.0 * r.max / convert::kCalibrationBins;
      EXPECT_NEAR(e.max, r.max, 1e-5 * std::fabs(r.max)) << name;
      EXPECT_NEAR(e.min, r.min, 1e-5 * std::fabs(r.min) + 1e-12) << name;
      EXPECT_NEAR(e.amax, r.amax, tol) << name << " " << convert::CalibratorName(c);
    }
  }
}

TEST(Calibration, CalibratedTensorsCarryTheirErrorAndTheWorstAreListed) {
  const Builder b = SmallGraph();
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t s = 0; s < 3; ++s) batches.push_back({cputest::RandScaled({5, 4}, 20 + s, 3.0f)});
  runtime::CalibrationOptions options;
  options.calibrator = convert::Calibrator::kMinMax;
  const CalibrationTable table = runtime::Calibrate(b.g, batches, options);
  ASSERT_EQ(table.tensors.size(), 2u);
  for (const auto& [name, r] : table.tensors) {
    EXPECT_GT(r.error, 0) << name;
    EXPECT_LT(r.error, 0.02) << name;  // minmax: rounding only, about 1/254 of a value spread over the range
  }
  const CalibrationTable again = CalibrationTable::FromJson(table.ToJson(), "test");
  EXPECT_DOUBLE_EQ(again.tensors.at("x").error, table.tensors.at("x").error);
  const std::string worst = convert::WorstQuantizationErrors(table, 1);
  EXPECT_EQ(std::count(worst.begin(), worst.end(), '\n'), 1) << worst;
  const std::string first = table.tensors.at("x").error >= table.tensors.at("relu").error ? "x" : "relu";
  EXPECT_EQ(worst.rfind("  " + first + ": ", 0), 0u) << worst;
}

TEST(Calibration, KeptLayersStayFloatAndAnUnmatchedPatternIsAnError) {
  const Builder b = SmallGraph();
  CalibrationTable table;
  table.tensors["x"] = {.amax = 1.0};
  table.tensors["relu"] = {.amax = 2.0};
  auto quantized_inputs = [](const ir::Graph& g, const std::string& node) {
    int n = 0;
    for (const ir::Node& nd : g.nodes())
      if (!nd.removed && nd.name == node)
        for (ir::ValueId v : nd.inputs) n += g.value(v).name.find("/int8") != std::string::npos;
    return n;
  };
  {  // by node name
    ir::Graph g = b.g->Clone();
    const auto q = convert::InsertQuantDequant(g, table, {"gram"});
    EXPECT_EQ(q.kept, std::vector<std::string>{"gram"});
    EXPECT_EQ(quantized_inputs(g, "gram"), 0);
    EXPECT_EQ(quantized_inputs(g, "fc"), 2);
    EXPECT_EQ(q.activations, 1);
  }
  {  // by op type: every MatMul
    ir::Graph g = b.g->Clone();
    const auto q = convert::InsertQuantDequant(g, table, {"MatMul"});
    EXPECT_EQ(q.kept.size(), 2u);
    EXPECT_EQ(q.activations + q.weights, 0);
  }
  {  // by tensor name (its readers) and by prefix
    ir::Graph g = b.g->Clone();
    EXPECT_EQ(convert::InsertQuantDequant(g, table, {"relu"}).kept, std::vector<std::string>{"gram"});
    ir::Graph h = b.g->Clone();
    EXPECT_EQ(convert::InsertQuantDequant(h, table, {"gr*"}).kept, std::vector<std::string>{"gram"});
  }
  ir::Graph g = b.g->Clone();
  try {
    convert::InsertQuantDequant(g, table, {"fc", "grma"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("keep_precision 'grma' matches no quantizable layer"), std::string::npos) << e.what();
  }
}

// x -> conv a (1x1) -> Relu -> conv b (3x3) and x -> conv ds (1x1), joined by an Add (a ResNet
// block with a projection shortcut): b's and ds's results, read only by the Add, are calibrated
// and their convolutions carry the range (int8 only); their readers see the same float values.
TEST(Calibration, ResidualConvolutionResultsCarryTheirCalibratedRange) {
  Builder b;
  const ir::ValueId x = b.Input("x", {1, 6, 6, 8});
  const ir::ValueId a = b.Op("Relu", "a_relu",
                             {b.Op("Conv2D", "a", {x, b.Const("wa", cputest::RandScaled({1, 1, 8, 8}, 3, 0.5f))},
                                   cputest::ConvAttrs("NHWC", "VALID"))});
  const ir::ValueId conv_b =
      b.Op("Conv2D", "b", {a, b.Const("wb", cputest::RandScaled({3, 3, 8, 8}, 4, 0.3f))}, cputest::ConvAttrs("NHWC", "SAME"));
  const ir::ValueId ds =
      b.Op("Conv2D", "ds", {x, b.Const("wd", cputest::RandScaled({1, 1, 8, 8}, 5, 0.5f))}, cputest::ConvAttrs("NHWC", "VALID"));
  b.Output("y", b.Op("Relu", "out", {b.Op("Add", "join", {conv_b, ds})}));
  // A bias Add of a constant is no residual join.
  const ir::ValueId conv_c =
      b.Op("Conv2D", "c", {x, b.Const("wc", cputest::RandScaled({1, 1, 8, 8}, 6, 0.5f))}, cputest::ConvAttrs("NHWC", "VALID"));
  b.Output("biased", b.Op("Add", "bias", {conv_c, b.Const("bc", cputest::RandScaled({8}, 7, 0.1f))}));
  const std::vector<ir::ValueId> residuals = convert::ResidualActivations(*b.g);
  EXPECT_EQ(residuals, (std::vector<ir::ValueId>{conv_b, ds}));
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t s = 0; s < 2; ++s) batches.push_back({cputest::RandScaled({1, 6, 6, 8}, 30 + s, 2.0f)});
  runtime::CalibrationOptions options;
  options.calibrator = convert::Calibrator::kMinMax;
  const CalibrationTable table = runtime::Calibrate(b.g, batches, options);
  ASSERT_EQ(table.tensors.size(), 4u);  // x, a_relu (conv inputs), b, ds (residual branches)
  const auto amax_attr = [](const ir::Graph& g, const std::string& node) {
    for (const ir::Node& n : g.nodes())
      if (!n.removed && n.name == node) return n.attrs.GetOr<double>(ir::kCalibratedOutputAmax, -1.0);
    return -2.0;
  };
  {
    ir::Graph g = b.g->Clone();
    const auto q = convert::InsertQuantDequant(g, table);
    EXPECT_EQ(q.residual_ranges, 2);
    EXPECT_EQ(amax_attr(g, "b"), table.tensors.at(b.g->value(conv_b).name).amax);
    EXPECT_EQ(amax_attr(g, "ds"), table.tensors.at(b.g->value(ds).name).amax);
    EXPECT_EQ(amax_attr(g, "a"), -1.0);  // read by a Relu
    EXPECT_EQ(amax_attr(g, "c"), -1.0);  // read by a bias Add
    // The Add still reads the convolutions' float results.
    for (const ir::Node& n : g.nodes()) {
      if (!n.removed && n.name == "join") {
        EXPECT_EQ(n.inputs, (std::vector<ir::ValueId>{conv_b, ds}));
      }
    }
  }
  {  // a kept convolution gets no range; FP8 conversions give the same ranges (the backend scales
     // them for E4M3)
    ir::Graph g = b.g->Clone();
    const auto q = convert::InsertQuantDequant(g, table, {"ds"});
    EXPECT_EQ(q.residual_ranges, 1);
    EXPECT_EQ(amax_attr(g, "ds"), -1.0);
    ir::Graph f = b.g->Clone();
    EXPECT_EQ(convert::InsertQuantDequant(f, table, {}, convert::QuantFormat::kFloat8E4M3).residual_ranges, 2);
    EXPECT_EQ(amax_attr(f, "b"), table.tensors.at(b.g->value(conv_b).name).amax);
  }
  {  // a table without the branches' ranges (older, or a user's) is still valid
    CalibrationTable older = table;
    older.tensors.erase(b.g->value(conv_b).name);
    older.tensors.erase(b.g->value(ds).name);
    ir::Graph g = b.g->Clone();
    EXPECT_EQ(convert::InsertQuantDequant(g, older).residual_ranges, 0);
  }
}

}  // namespace
}  // namespace kiln
