// INT8 CPU engines: graphs rewritten by Kiln's INT8 conversion (quantize-dequantize chains before
// convolutions and matrix products, weights on per-channel int8 grids) run as int8 oneDNN
// primitives and compute what the reference executor computes on the rewritten float graph, up
// to float32 summation order (the int8 primitives accumulate exactly in int32). Plus the pieces:
// the quantize kernel's rounding, grid recovery, and the chain matcher on ONNX's QDQ form. Int8
// results written by producers (cpu-int8-output) are covered by the same comparison.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "backend/cpu/eltwise_chain.h"
#include "backend/cpu/int8.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/passes/passes.h"
#include "backend/cpu/plan_serialization.h"
#include "convert/calibration_table.h"
#include "ir/graph_util.h"
#include "runtime/calibration.h"
#include "tests/unit/cpu_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using namespace cputest;
using backend::cpu::CpuBackend;
using backend::cpu::CpuEngine;
using backend::cpu::CpuFeatures;
using backend::cpu::HostCpu;

#define REQUIRE_INT8_DOT_PRODUCT()                                                                              \
  if (!HostCpu().int8_dot_product)                                                                              \
  GTEST_SKIP()                                                                                                  \
      << "this CPU (" << backend::cpu::DeviceString(HostCpu())                                                  \
      << ") has no int8 dot-product instructions (or ONEDNN_MAX_CPU_ISA excludes them): INT8 engines run FP32 " \
         "here, CpuInt8.WithoutDotProductInstructionsQuantizeDequantizeRunsInFloat covers that"

// NHWC conv (bias, Relu) -> depthwise conv -> Reshape -> MatMul (+bias, Relu) -> MatMul with
// transpose_b -> output "fc"; BatchMatMul of two activations -> output "bmm"; NCHW conv of a
// second input -> output "nchw" (blocked layouts).
Builder BuildNetwork() {
  Builder b;
  const ir::ValueId x = b.Input("x", {2, 12, 12, 8});
  ir::ValueId c =
      b.Op("Conv2D", "conv", {x, b.Const("w", RandScaled({3, 3, 8, 16}, 7, 0.3f))}, ConvAttrs("NHWC", "SAME"));
  c = b.Op("Add", "conv_bias", {c, b.Const("cb", RandScaled({16}, 8, 0.1f))});
  c = b.Op("Relu", "conv_relu", {c});
  ir::AttrMap dw = ConvAttrs("NHWC", "VALID");
  c = b.Op("DepthwiseConv2D", "dw", {c, b.Const("dww", RandScaled({3, 3, 16, 1}, 12, 0.4f))}, dw);
  const ir::ValueId r = b.Op("Reshape", "rows", {c, b.Const("rows_shape", nntest::I32({2}, {200, 16}))});
  ir::ValueId m = b.Op("MatMul", "fc1", {r, b.Const("k1", RandScaled({16, 32}, 9, 0.3f))});
  m = b.Op("Add", "fc1_bias", {m, b.Const("kb1", RandScaled({32}, 10, 0.1f))});
  m = b.Op("Relu", "fc1_relu", {m});
  ir::AttrMap tb;
  tb.Set("transpose_b", true);
  m = b.Op("MatMul", "fc2", {m, b.Const("k2", RandScaled({24, 32}, 13, 0.3f))}, tb);
  b.Output("fc", m);
  const ir::ValueId h = b.Op("Reshape", "heads", {m, b.Const("heads_shape", nntest::I32({3}, {8, 25, 24}))});
  ir::AttrMap adj;
  adj.Set("adj_y", true);
  b.Output("bmm", b.Op("BatchMatMul", "bmm",
                       {h, b.Op("Mul", "h2", {h, b.Const("half", Tensor::Scalar(DType::kFloat32, 0.5f))})}, adj));
  const ir::ValueId z = b.Input("z", {1, 16, 10, 10});
  const ir::ValueId n =
      b.Op("Conv2D", "conv_nchw", {z, b.Const("wn", RandScaled({3, 3, 16, 16}, 11, 0.2f))}, ConvAttrs("NCHW", "SAME"));
  b.Output("nchw", b.Op("Relu", "nchw_relu", {n}));
  return b;
}

const Shape kX{2, 12, 12, 8}, kZ{1, 16, 10, 10};
std::vector<Tensor> Inputs(uint32_t seed) { return {RandF32(kX, seed), RandF32(kZ, seed + 1)}; }
backend::Profile ProfileOf() { return ExactProfile({kX, kZ}); }

// The network rewritten as Kiln's INT8 conversion does (percentile calibration on 4 batches, so
// some values are clipped).
std::shared_ptr<ir::Graph> QuantizedNetwork() {
  const Builder b = BuildNetwork();
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t s = 0; s < 4; ++s) batches.push_back(Inputs(100 + 2 * s));
  runtime::CalibrationOptions options;
  options.calibrator = convert::Calibrator::kPercentile;
  options.percentile = 99.0;
  const convert::CalibrationTable table = runtime::Calibrate(b.g, batches, options);
  auto g = std::make_shared<ir::Graph>(ir::CloneGraph(*b.g));
  const convert::Quantization q = convert::InsertQuantDequant(*g, table);
  EXPECT_EQ(q.weights, 5);      // conv, dw, fc1, fc2, conv_nchw
  EXPECT_EQ(q.activations, 7);  // their inputs and both bmm operands
  return g;
}

backend::CompileOptions Int8Options() {
  backend::CompileOptions options;
  options.precision = Precision::kINT8;
  return options;
}

const char* kInt8Steps[] = {"conv", "dw", "fc1", "fc2", "bmm", "conv_nchw"};

TEST(CpuInt8, QuantizedGraphRunsInt8PrimitivesAndMatchesTheReference) {
  REQUIRE_INT8_DOT_PRODUCT();
  const auto g = QuantizedNetwork();
  CpuBackend cpu;
  auto engine = cpu.Compile(*g, ProfileOf(), Int8Options());
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  if (std::getenv("KILN_TEST_VERBOSE")) std::cout << e.Summary();
  EXPECT_EQ(engine->precision(), Precision::kINT8);
  EXPECT_EQ(engine->precision_note(), "");
  std::vector<std::string> want_steps(std::begin(kInt8Steps), std::end(kInt8Steps));
  std::vector<std::string> got_steps = e.int8_steps();
  std::sort(want_steps.begin(), want_steps.end());
  std::sort(got_steps.begin(), got_steps.end());
  EXPECT_EQ(got_steps, want_steps);
  for (const auto& s : e.steps()) {
    if (s.op.starts_with("cpu.Fused")) {
      EXPECT_NE(s.kernel.find("[int8]"), std::string::npos) << s.node << ": " << s.kernel;
    }
  }
  // No quantize-dequantize chain is left as float ops: the activations are quantized once each.
  // conv and fc1 (ReLU: never negative) write their results as int8 for dw and fc2, the chain
  // computing h * 0.5 stores bmm's second operand as int8; the other four quantized tensors get
  // a cpu.QuantizeS8.
  EXPECT_EQ(CountOps(*engine, "cpu.QuantizeS8"), 4);
  std::vector<std::string> int8_output;
  for (const ir::Node& n : e.graph().nodes())
    if (!n.removed && n.attrs.GetOr<bool>("int8_output", false)) int8_output.push_back(n.name);
  EXPECT_EQ(int8_output, (std::vector<std::string>{"conv", "fc1"}));
  EXPECT_EQ(PassRewrites(*engine, "cpu-int8-output"), 2);
  EXPECT_EQ(CountOps(*engine, "Round"), 0);
  ExpectNoFallback(*engine);

  runtime::ReferenceExecutor ref(g);
  for (uint32_t seed : {1u, 50u}) {
    const auto in = Inputs(seed);
    const auto want = ref.Run(in);
    const auto got = engine->Execute(in);
    ASSERT_EQ(got.size(), 3u);
    for (size_t i = 0; i < got.size(); ++i) {
      // Float32 summation order in the reference against exact int32 accumulation: a value near a
      // rounding boundary of a later quantization may land one int8 step apart, which moves a
      // few elements of the following layers by a fraction of a step (docs/testing.md).
      const double err = testutil::RelativeL2Error(got[i], want[i]);
      std::cout << fmt::format("seed {} output {}: rel L2 INT8 engine vs reference {:.3e}\n", seed, i, err);
      EXPECT_LT(err, 1e-4) << "output " << i;
    }
  }

  // Saved and reloaded: the same steps run int8, the same bits come out.
  auto loaded = cpu.Deserialize(*g, ProfileOf(), Int8Options(), engine->Serialize());
  EXPECT_EQ(loaded->precision(), Precision::kINT8);
  EXPECT_EQ(dynamic_cast<const CpuEngine&>(*loaded).int8_steps(), e.int8_steps());
  const auto in = Inputs(3);
  const auto a = engine->Execute(in), b = loaded->Execute(in);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(BitwiseEqual(a[i], b[i])) << "output " << i;
}

// Convolutions without an activation, or with one that goes below zero (swish), feeding further
// convolutions: their results are quantized on Kiln's symmetric [-127, 127] grid, narrower than
// int8's saturation, so they write int8 with a clip post-op. Percentile calibration at 90% puts
// many values beyond the range on both sides, so a -128 where the reference clamps to -127 would
// show in the comparison.
TEST(CpuInt8, ResultsOnNarrowerGridsWriteInt8ThroughAClip) {
  REQUIRE_INT8_DOT_PRODUCT();
  Builder b;
  const Shape xs{2, 9, 9, 8};
  const ir::ValueId x = b.Input("x", xs);
  ir::ValueId c =
      b.Op("Conv2D", "project", {x, b.Const("w1", RandScaled({1, 1, 8, 16}, 21, 0.4f))}, ConvAttrs("NHWC", "SAME"));
  c = b.Op("Conv2D", "expand", {c, b.Const("w2", RandScaled({3, 3, 16, 24}, 22, 0.3f))}, ConvAttrs("NHWC", "SAME"));
  c = b.Op("Add", "expand_bias", {c, b.Const("b2", RandScaled({24}, 23, 0.2f))});
  c = b.Op("Mul", "swish", {c, b.Op("Sigmoid", "gate", {c})});
  c = b.Op("Conv2D", "last", {c, b.Const("w3", RandScaled({1, 1, 24, 8}, 24, 0.3f))}, ConvAttrs("NHWC", "SAME"));
  b.Output("y", c);
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t s = 0; s < 3; ++s) batches.push_back({RandF32(xs, 40 + s)});
  runtime::CalibrationOptions calibration;
  calibration.calibrator = convert::Calibrator::kPercentile;
  calibration.percentile = 90.0;
  const convert::CalibrationTable table = runtime::Calibrate(b.g, batches, calibration);
  auto g = std::make_shared<ir::Graph>(ir::CloneGraph(*b.g));
  EXPECT_EQ(convert::InsertQuantDequant(*g, table).weights, 3);
  auto engine = CpuBackend().Compile(*g, ExactProfile({xs}), Int8Options());
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  EXPECT_EQ(e.int8_steps(), (std::vector<std::string>{"project", "expand", "last"}));
  EXPECT_EQ(CountOps(*engine, "cpu.QuantizeS8"), 1);  // the input's
  EXPECT_EQ(PassRewrites(*engine, "cpu-int8-output"), 2);
  for (const ir::Node& n : e.graph().nodes()) {
    if (n.removed || !n.attrs.GetOr<bool>("int8_output", false)) continue;
    const std::vector<backend::cpu::PostOp> ops = backend::cpu::ReadPostOps(n);
    ASSERT_FALSE(ops.empty()) << n.name;
    EXPECT_EQ(ops.back().kind, backend::cpu::PostOpKind::kClip) << n.name;
    EXPECT_EQ(ops.back().alpha, -127.0) << n.name;
    EXPECT_EQ(ops.back().beta, 127.0) << n.name;
  }
  runtime::ReferenceExecutor ref(g);
  for (uint32_t seed : {3u, 60u}) {
    const std::vector<Tensor> in{RandF32(xs, seed)};
    const double err = testutil::RelativeL2Error(engine->Execute(in)[0], ref.Run(in)[0]);
    std::cout << fmt::format("seed {}: rel L2 INT8 engine vs reference {:.3e}\n", seed, err);
    EXPECT_LT(err, 1e-4);  // as in QuantizedGraphRunsInt8PrimitivesAndMatchesTheReference
  }
}

// A transformer's dense layer as PyTorch exports it, BatchMatMul of [batch, seq, k] rows by a
// constant matrix then an Add of the bias, quantized by Kiln's conversion, runs as one int8
// cpu.FusedMatMul with the bias.
TEST(CpuInt8, DenseLayersOnRowsRunInt8) {
  REQUIRE_INT8_DOT_PRODUCT();
  Builder b;
  const ir::ValueId x = b.Input("x", {2, 9, 16});
  ir::ValueId y = b.Op("BatchMatMul", "dense", {x, b.Const("w", RandScaled({16, 24}, 9, 0.3f))});
  y = b.Op("Add", "dense_bias", {y, b.Const("wb", RandScaled({24}, 10, 0.1f))});
  b.Output("y", y);
  const Shape xs{2, 9, 16};
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t s = 0; s < 3; ++s) batches.push_back({RandF32(xs, 30 + s)});
  runtime::CalibrationOptions calibration;
  calibration.calibrator = convert::Calibrator::kMinMax;
  const convert::CalibrationTable table = runtime::Calibrate(b.g, batches, calibration);
  auto g = std::make_shared<ir::Graph>(ir::CloneGraph(*b.g));
  EXPECT_EQ(convert::InsertQuantDequant(*g, table).weights, 1);
  auto engine = CpuBackend().Compile(*g, ExactProfile({xs}), Int8Options());
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  EXPECT_EQ(e.int8_steps(), std::vector<std::string>{"dense"});
  EXPECT_EQ(CountOps(*engine, "cpu.FusedMatMul"), 1);
  EXPECT_EQ(CountOps(*engine, "Add"), 0);
  ExpectNoFallback(*engine);
  const auto in = std::vector<Tensor>{RandF32(xs, 5)};
  const double err = testutil::RelativeL2Error(engine->Execute(in)[0], runtime::ReferenceExecutor(g).Run(in)[0]);
  EXPECT_LT(err, 1e-4);  // the bound of QuantizedGraphRunsInt8PrimitivesAndMatchesTheReference
}

TEST(CpuInt8, FloatGraphRequestedAsInt8RunsFp32AndSaysWhy) {
  const Builder b = BuildNetwork();
  auto engine = CpuBackend().Compile(*b.g, ProfileOf(), Int8Options());
  EXPECT_EQ(engine->precision(), Precision::kFP32);
  if (HostCpu().int8_dot_product)
    EXPECT_EQ(engine->precision_note(),
              "INT8 requested; no convolution / matrix product of the engine has quantized operands, engine runs FP32");
  else
    EXPECT_NE(engine->precision_note().find("has no int8 dot-product instructions"), std::string::npos)
        << engine->precision_note();
  EXPECT_TRUE(dynamic_cast<const CpuEngine&>(*engine).int8_steps().empty());
}

TEST(CpuInt8, WeightsOffTheGridKeepTheirNodeInFloat) {
  REQUIRE_INT8_DOT_PRODUCT();
  // The quantized graph with fc1's weights replaced by unquantized ones: fc1 stays float (its
  // activation's quantize-dequantize runs as float ops before it), every other step is int8.
  const auto g = QuantizedNetwork();
  for (ir::Node& n : g->nodes())
    if (n.name == "fc1") n.inputs[1] = g->AddConstant("k1_float", RandScaled({16, 32}, 9, 0.3f));
  auto engine = CpuBackend().Compile(*g, ProfileOf(), Int8Options());
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  EXPECT_EQ(engine->precision(), Precision::kINT8);
  EXPECT_EQ(e.int8_steps().size(), std::size(kInt8Steps) - 1);
  EXPECT_EQ(std::count(e.int8_steps().begin(), e.int8_steps().end(), "fc1"), 0);
  EXPECT_EQ(
      engine->precision_note(),
      "5 convolution / matrix-product steps run INT8, 1 in floating point (operands without quantization ranges or off "
      "the int8 grid): fc1");
  runtime::ReferenceExecutor ref(g);
  const auto in = Inputs(7);
  const auto want = ref.Run(in), got = engine->Execute(in);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_LT(testutil::RelativeL2Error(got[i], want[i]), 1e-4) << "output " << i;
}

// Engines for a CPU without VNNI / AMX (built here with such a CPU's features, as CpuBackend
// would build them there): the quantize-dequantize chains run as float ops, the engine says why.
TEST(CpuInt8, WithoutDotProductInstructionsQuantizeDequantizeRunsInFloat) {
  const auto g = QuantizedNetwork();
  CpuFeatures avx2 = HostCpu();
  avx2.int8_dot_product = false;
  ir::Graph work = ir::CloneGraph(*g);
  auto stats = backend::cpu::OptimizeForCpu(work, avx2.int8_dot_product);
  CpuEngine engine(std::make_shared<const ir::Graph>(std::move(work)), ProfileOf(), Int8Options(), std::move(stats),
                   backend::cpu::HashSegment(*g), avx2);
  EXPECT_EQ(engine.precision(), Precision::kFP32);
  EXPECT_EQ(engine.precision_note(),
            "INT8 requested; this CPU (" + backend::cpu::DeviceString(avx2) +
                ") has no int8 dot-product instructions (VNNI / AMX), where oneDNN's int8 kernels lose "
                "precision: the quantize-dequantize steps run in FP32 kernels (INT8 accuracy, FP32 speed)");
  EXPECT_TRUE(engine.int8_steps().empty());
  EXPECT_EQ(CountOps(engine, "cpu.QuantizeS8"), 0);
  runtime::ReferenceExecutor ref(g);
  const auto in = Inputs(1);
  const auto want = ref.Run(in), got = engine.Execute(in);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_LT(testutil::RelativeL2Error(got[i], want[i]), 1e-5) << "output " << i;
}

TEST(CpuInt8, QuantizeRoundsHalfToEvenClampsAndMapsNanToZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> src = {0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 0.49f, 300.f, -300.f, nan, 126.6f, -127.4f, 3.0f};
  auto params = [](float inv_scale, float qmin, float qmax, bool is_unsigned = false, int zero_point = 0) {
    backend::cpu::QuantizeParams p;
    p.inv_scale = inv_scale;
    p.qmin = qmin;
    p.qmax = qmax;
    p.is_unsigned = is_unsigned;
    p.zero_point = zero_point;
    return p;
  };
  std::vector<int8_t> dst(src.size());
  backend::cpu::Quantize(src.data(), dst.data(), static_cast<int64_t>(src.size()), params(1.0f, -127, 127));
  EXPECT_EQ(dst, (std::vector<int8_t>{0, 2, 2, 0, -2, 0, 127, -127, 0, 127, -127, 3}));
  backend::cpu::Quantize(src.data(), dst.data(), static_cast<int64_t>(src.size()), params(2.0f, -128, 127));
  EXPECT_EQ(dst, (std::vector<int8_t>{1, 3, 5, -1, -5, 1, 127, -128, 0, 127, -128, 6}));
  std::vector<uint8_t> u(src.size());
  backend::cpu::Quantize(src.data(), u.data(), static_cast<int64_t>(src.size()), params(1.0f, -37, 218, true, 37));
  EXPECT_EQ(u, (std::vector<uint8_t>{37, 39, 39, 37, 35, 37, 255, 0, 37, 164, 0, 40}));
  // Long enough for the vectorised loop, with a tail.
  std::vector<float> many(1000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = (static_cast<float>(i) - 500.f) * 0.25f;
  std::vector<int8_t> q(many.size());
  backend::cpu::Quantize(many.data(), q.data(), static_cast<int64_t>(many.size()), params(1.0f, -127, 127));
  for (size_t i = 0; i < many.size(); ++i)
    ASSERT_EQ(q[i], static_cast<int8_t>(std::clamp(std::nearbyint(many[i]), -127.f, 127.f))) << many[i];
}

TEST(CpuInt8, GridRecoveryFindsPerChannelScalesAndRefusesOffGridValues) {
  // [k=3, n=2], per column: column 0 = {-127, 5, 60} * 0.01, column 1 = {2, 127, 0} * 0.5.
  Tensor w(DType::kFloat32, {3, 2});
  const float v[] = {-1.27f, 1.0f, 0.05f, 63.5f, 0.6f, 0.0f};
  std::copy(std::begin(v), std::end(v), w.data<float>());
  auto grid = backend::cpu::RecoverInt8Grid(w, 2, 1);
  ASSERT_TRUE(grid.has_value());
  EXPECT_FLOAT_EQ(grid->scales[0], 0.01f);
  EXPECT_FLOAT_EQ(grid->scales[1], 0.5f);
  const int8_t* q = grid->values.data<int8_t>();
  EXPECT_EQ((std::vector<int8_t>(q, q + 6)), (std::vector<int8_t>{-127, 2, 5, 127, 60, 0}));
  // Scaled per channel (a folded batch norm) it is still a grid; a value between steps is not.
  for (int i = 0; i < 6; i += 2) w.data<float>()[i] *= 3.7f;
  EXPECT_TRUE(backend::cpu::RecoverInt8Grid(w, 2, 1).has_value());
  w.data<float>()[2] = 0.123f;
  EXPECT_FALSE(backend::cpu::RecoverInt8Grid(w, 2, 1).has_value());
  w.data<float>()[2] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(backend::cpu::RecoverInt8Grid(w, 2, 1).has_value());
}

TEST(CpuInt8, MatcherReadsOnnxQuantizeDequantizeLinearChains) {
  // ONNX QuantizeLinear / DequantizeLinear (int8, zero point 0) as Kiln's importer emits them.
  Builder b;
  const ir::ValueId x = b.Input("x", {4, 8});
  auto scalar = [&](const std::string& name, float value) {
    return b.Const(name, Tensor::Scalar(DType::kFloat32, value));
  };
  ir::ValueId t = b.Op("Div", "scaled", {x, scalar("s", 0.05f)});
  t = b.Op("Round", "rounded", {t});
  t = b.Op("Add", "offset", {t, scalar("zp", 0.0f)});
  t = b.Op("Clip", "saturated", {t, scalar("lo", -128.f), scalar("hi", 127.f)});
  ir::AttrMap to_int8, to_float;
  to_int8.Set("to", DType::kInt8);
  to_float.Set("to", DType::kFloat32);
  t = b.Op("Cast", "q", {t}, to_int8);
  t = b.Op("Cast", "q_f32", {t}, to_float);
  t = b.Op("Sub", "centered", {t, scalar("zp_f", 0.0f)});
  t = b.Op("Mul", "dequantized", {t, scalar("s2", 0.05f)});
  const auto m = backend::cpu::MatchQuantDequant(*b.g, t);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->source, x);
  EXPECT_FLOAT_EQ(m->inv_scale, 20.0f);
  EXPECT_FLOAT_EQ(m->scale, 0.05f);
  EXPECT_EQ(m->qmin, -128);
  EXPECT_EQ(m->qmax, 127);
  // Without the rounding it is not a quantization.
  Builder c;
  const ir::ValueId y = c.Input("y", {4, 8});
  ir::ValueId u = c.Op("Maximum", "lo", {y, c.Const("a", Tensor::Scalar(DType::kFloat32, -127.f))});
  u = c.Op("Minimum", "hi", {u, c.Const("b", Tensor::Scalar(DType::kFloat32, 127.f))});
  u = c.Op("Mul", "dq", {u, c.Const("s", Tensor::Scalar(DType::kFloat32, 0.1f))});
  EXPECT_FALSE(backend::cpu::MatchQuantDequant(*c.g, u).has_value());
}

// ONNX's uint8 QuantizeLinear -> DequantizeLinear of `x` with zero point `zp`, as the importer
// writes it: Div, Round, Add zp, Clip [0, 255], Cast uint8, Cast float, Sub zp, Mul.
ir::ValueId OnnxUint8Qdq(Builder& b, ir::ValueId x, float scale, float zp, const std::string& name) {
  auto scalar = [&](const std::string& n, float value) { return b.Const(name + "/" + n, Tensor::Scalar(DType::kFloat32, value)); };
  ir::ValueId t = b.Op("Div", name + "/scaled", {x, scalar("s", scale)});
  t = b.Op("Round", name + "/rounded", {t});
  t = b.Op("Add", name + "/offset", {t, scalar("zp", zp)});
  t = b.Op("Clip", name + "/saturated", {t, scalar("lo", 0.f), scalar("hi", 255.f)});
  ir::AttrMap to_u8, to_float;
  to_u8.Set("to", DType::kUInt8);
  to_float.Set("to", DType::kFloat32);
  t = b.Op("Cast", name + "/q", {t}, to_u8);
  t = b.Op("Cast", name + "/q_f32", {t}, to_float);
  t = b.Op("Sub", name + "/centered", {t, scalar("zp_f", zp)});
  return b.Op("Mul", name + "/dequantized", {t, scalar("s2", scale)});
}

TEST(CpuInt8, MatcherReadsUint8ZeroPointsAsShiftedBounds) {
  for (float zp : {0.0f, 37.0f, 128.0f}) {
    Builder b;
    const ir::ValueId x = b.Input("x", {4, 8});
    const auto m = backend::cpu::MatchQuantDequant(*b.g, OnnxUint8Qdq(b, x, 0.05f, zp, "qdq"));
    ASSERT_TRUE(m.has_value()) << zp;
    EXPECT_EQ(m->source, x);
    EXPECT_EQ(m->qmin, -zp);
    EXPECT_EQ(m->qmax, 255 - zp);
    const backend::cpu::Int8Storage st = backend::cpu::StorageFor(m->qmin, m->qmax);
    // zp 128 fits int8 as it is; zp 0 is plain uint8; others uint8 with the zero point.
    EXPECT_EQ(st.is_unsigned, zp != 128) << zp;
    EXPECT_EQ(st.zero_point, zp == 128 ? 0 : static_cast<int>(zp)) << zp;
  }
  // An offset added before the rounding is not a zero point (round half to even does not commute
  // with it): no match.
  Builder c;
  const ir::ValueId y = c.Input("y", {4, 8});
  ir::ValueId u = c.Op("Div", "scaled", {y, c.Const("s", Tensor::Scalar(DType::kFloat32, 0.05f))});
  u = c.Op("Add", "early", {u, c.Const("zp", Tensor::Scalar(DType::kFloat32, 3.f))});
  u = c.Op("Round", "rounded", {u});
  u = c.Op("Clip", "saturated", {u, c.Const("lo", Tensor::Scalar(DType::kFloat32, 0.f)), c.Const("hi", Tensor::Scalar(DType::kFloat32, 255.f))});
  u = c.Op("Sub", "centered", {u, c.Const("zp2", Tensor::Scalar(DType::kFloat32, 3.f))});
  u = c.Op("Mul", "dq", {u, c.Const("s2", Tensor::Scalar(DType::kFloat32, 0.05f))});
  EXPECT_FALSE(backend::cpu::MatchQuantDequant(*c.g, u).has_value());
}

// ONNX Runtime's QDQ models put a quantize-dequantize pair after most ops (here an exact GELU of
// a biased product, as quantize_static writes it): the pairs become chain steps, so the whole
// GELU is one cpu.EltwiseChain pass over the data, bit-identical to the reference on the float
// graph. Large enough that the chain's rows split over threads, with a bias along the rows.
TEST(CpuInt8, QuantizeDequantizePairsJoinElementwiseChainsExactly) {
  Builder b;
  const Shape xs{8, 64, 384};
  const ir::ValueId x = b.Input("x", {8, 64, 384});
  auto scalar = [&](const std::string& n, float value) { return b.Const(n, Tensor::Scalar(DType::kFloat32, value)); };
  ir::ValueId h = b.Op("Add", "bias", {OnnxUint8Qdq(b, x, 0.04f, 128, "x_q"), b.Const("bias_v", RandF32({384}, 5))});
  h = OnnxUint8Qdq(b, h, 0.05f, 120, "h_q");
  ir::ValueId g = OnnxUint8Qdq(b, b.Op("Div", "div", {h, scalar("sqrt2", 1.4142135f)}), 0.03f, 125, "div_q");
  g = OnnxUint8Qdq(b, b.Op("Erf", "erf", {g}), 0.008f, 127, "erf_q");
  g = OnnxUint8Qdq(b, b.Op("Add", "one", {g, scalar("one_v", 1.0f)}), 0.008f, 0, "one_q");
  g = OnnxUint8Qdq(b, b.Op("Mul", "times_x", {h, g}), 0.06f, 60, "mul_q");
  b.Output("y", b.Op("Mul", "half", {g, scalar("half_v", 0.5f)}));
  CpuBackend cpu;
  auto engine = cpu.Compile(*b.g, ExactProfile({xs}), {});
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  EXPECT_EQ(CountOps(e, "cpu.QuantDequant"), 0) << e.Summary();
  EXPECT_EQ(CountOps(e, "cpu.EltwiseChain"), 2) << e.Summary();  // x -> h (h has two readers), h -> y
  runtime::ReferenceExecutor ref(b.g);
  for (uint32_t seed : {1u, 2u}) {
    const std::vector<Tensor> in{RandF32(xs, seed)};
    EXPECT_TRUE(BitwiseEqual(engine->Execute(in).at(0), ref.Run(in).at(0))) << seed;
  }
}

// A quantize-dequantize after a Reshape and a Transpose of a tensor quantize-dequantized with the
// same parameters is the identity (the values are on that grid): removed, bit-identical to the
// reference. One with another scale stays.
TEST(CpuInt8, RequantizingMovedElementsWithTheSameParametersIsRemoved) {
  for (float second_scale : {0.05f, 0.07f}) {
    SCOPED_TRACE(second_scale);
    Builder b;
    const Shape xs{4, 32, 48};
    const ir::ValueId x = b.Input("x", {4, 32, 48});
    ir::ValueId y = OnnxUint8Qdq(b, b.Op("Relu", "relu", {x}), 0.05f, 3, "first");
    y = b.Op("Reshape", "split", {y, b.Const("heads", nntest::I32({4}, {4, 32, 4, 12}))});
    y = b.Op("Transpose", "perm", {y, b.Const("order", nntest::I32({4}, {0, 2, 1, 3}))});
    y = OnnxUint8Qdq(b, y, second_scale, 3, "second");
    b.Output("y", b.Op("Mul", "twice", {y, b.Const("two", Tensor::Scalar(DType::kFloat32, 2.0f))}));
    CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({xs}), {});
    EXPECT_EQ(PassRewrites(*engine, "cpu-redundant-quant-dequant"), second_scale == 0.05f ? 1 : 0);
    runtime::ReferenceExecutor ref(b.g);
    for (uint32_t seed : {1u, 2u}) {
      const std::vector<Tensor> in{RandF32(xs, seed)};
      EXPECT_TRUE(BitwiseEqual(engine->Execute(in).at(0), ref.Run(in).at(0))) << seed;
    }
  }
}

// Random weights rounded to a symmetric per-output-channel int8 grid (max |w| / 127 per channel),
// as quantize_static's per-channel weights are.
Tensor GridWeights(Shape shape, uint32_t seed, int64_t channels, int64_t inner) {
  Tensor w = RandScaled(std::move(shape), seed, 0.3f);
  std::vector<float> scale(static_cast<size_t>(channels), 0.0f);
  float* v = w.data<float>();
  for (int64_t e = 0; e < w.num_elements(); ++e) {
    float& s = scale[static_cast<size_t>((e / inner) % channels)];
    s = std::max(s, std::fabs(v[e]) / 127.0f);
  }
  for (int64_t e = 0; e < w.num_elements(); ++e) {
    const float s = scale[static_cast<size_t>((e / inner) % channels)];
    v[e] = std::nearbyint(v[e] / s) * s;
  }
  return w;
}

TEST(CpuInt8, Uint8ActivationsWithZeroPointsRunInt8) {
  REQUIRE_INT8_DOT_PRODUCT();
  // ONNX Runtime's QDQ form: uint8 activations with zero points (37 before an NHWC conv, 0 after
  // its Relu before the next, 200 before a MatMul; an NCHW conv reads one through a Transpose),
  // int8 per-channel weights. Every conv / matmul runs int8 (u8 src, oneDNN's src zero point);
  // the Relu'd conv writes uint8 itself. Matches the reference on the float graph.
  const auto grid = GridWeights;
  Builder b;
  const Shape xs{2, 10, 10, 8}, zs{1, 8, 9, 9};
  const ir::ValueId x = b.Input("x", {2, 10, 10, 8});
  ir::ValueId c = b.Op("Conv2D", "conv1", {OnnxUint8Qdq(b, x, 0.03f, 37, "x_q"), b.Const("w1", grid({3, 3, 8, 8}, 3, 8, 1))},
                       ConvAttrs("NHWC", "SAME"));
  c = b.Op("Relu", "relu1", {c});
  c = b.Op("Conv2D", "conv2", {OnnxUint8Qdq(b, c, 0.02f, 0, "r_q"), b.Const("w2", grid({1, 1, 8, 6}, 4, 6, 1))},
           ConvAttrs("NHWC", "VALID"));
  const ir::ValueId rows = b.Op("Reshape", "rows", {c, b.Const("rows_shape", nntest::I32({2}, {200, 6}))});
  b.Output("fc", b.Op("MatMul", "fc", {OnnxUint8Qdq(b, rows, 0.05f, 200, "rows_q"), b.Const("k", grid({6, 5}, 5, 5, 1))}));
  const ir::ValueId z = b.Input("z", {1, 8, 9, 9});
  b.Output("nchw", b.Op("Conv2D", "conv_nchw", {OnnxUint8Qdq(b, z, 0.04f, 90, "z_q"), b.Const("wn", grid({3, 3, 8, 4}, 6, 4, 1))},
                        ConvAttrs("NCHW", "SAME")));
  auto engine = CheckAgainstReference(b, ExactProfile({xs, zs}), {{RandF32(xs, 1), RandF32(zs, 2)}, {RandF32(xs, 3), RandF32(zs, 4)}},
                                      1e-4, Int8Options());
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  EXPECT_EQ(engine->precision(), Precision::kINT8);
  EXPECT_EQ(engine->precision_note(), "") << e.Summary();
  EXPECT_EQ(e.int8_steps().size(), 4u) << e.Summary();
  int unsigned_quantize = 0, unsigned_output = 0;
  for (const auto& st : e.steps()) {
    if (st.op == "cpu.QuantizeS8" && st.kernel.rfind("quantize-u8", 0) == 0) ++unsigned_quantize;
    if (st.op == "cpu.FusedConv2D" && st.node == "conv1") ++unsigned_output;
  }
  EXPECT_EQ(unsigned_quantize, 3) << e.Summary();  // x, rows, z (conv1 writes r's uint8 itself)
  EXPECT_EQ(PassRewrites(*engine, "cpu-int8-output"), 1) << e.Summary();
  EXPECT_EQ(unsigned_output, 1);
}

// An elementwise chain whose result only an int8 product's quantization reads stores the 8-bit
// values itself: int8 (zero point 128) or uint8 with a zero point (37), through each of the
// chain kernel's three walks (one long row with a scalar operand, per-channel operands repeating
// every row, rows with an operand that varies across them). Matches the reference on the float graph.
TEST(CpuInt8, ChainsStoreTheQuantizedValuesTheirOnlyReaderNeeds) {
  REQUIRE_INT8_DOT_PRODUCT();
  struct Walk {
    const char* name;
    Shape x, operand;
  };
  for (const Walk& walk :
       {Walk{"one row", {512, 96}, {}}, Walk{"periodic", {40, 96}, {96}}, Walk{"rows", {40, 96}, {40, 1}}}) {
    for (float zp : {128.0f, 37.0f}) {
      SCOPED_TRACE(fmt::format("{}, zero point {}", walk.name, zp));
      Builder b;
      const ir::ValueId x = b.Input("x", walk.x);
      const Tensor operand = walk.operand.empty() ? Tensor::Scalar(DType::kFloat32, 0.7f) : RandF32(walk.operand, 9);
      ir::ValueId h = b.Op("Mul", "scale", {x, b.Const("operand", operand)});
      h = b.Op("Tanh", "squash", {h});
      Tensor w = RandScaled({96, 8}, 10, 0.3f);  // rounded to a per-tensor int8 grid
      float step = 0;
      for (int64_t e = 0; e < w.num_elements(); ++e) step = std::max(step, std::fabs(w.data<float>()[e]) / 127.0f);
      for (int64_t e = 0; e < w.num_elements(); ++e)
        w.data<float>()[e] = std::nearbyint(w.data<float>()[e] / step) * step;
      b.Output("y", b.Op("MatMul", "fc", {OnnxUint8Qdq(b, h, 0.004f, zp, "h_q"), b.Const("w", w)}));
      auto engine = CheckAgainstReference(b, ExactProfile({walk.x}), {{RandF32(walk.x, 1)}, {RandF32(walk.x, 2)}}, 1e-4,
                                          Int8Options());
      const auto& e = dynamic_cast<const CpuEngine&>(*engine);
      EXPECT_EQ(e.int8_steps(), std::vector<std::string>{"fc"}) << e.Summary();
      EXPECT_EQ(CountOps(*engine, "cpu.QuantizeS8"), 0) << e.Summary();
      int quantizing_chains = 0;
      for (const auto& st : e.steps())
        if (st.op == "cpu.EltwiseChain" &&
            st.kernel.find(zp == 128 ? "quantize-s8" : "quantize-u8") != std::string::npos)
          ++quantizing_chains;
      EXPECT_EQ(quantizing_chains, 1) << e.Summary();
    }
  }
}

// A chain's stored quantization read from a corrupted plan: refused with the node's name, never run.
TEST(CpuInt8, ChainQuantizationsThatDoNotFitAreRefused) {
  ir::Node chain;
  chain.name = "gelu";
  chain.op = "cpu.EltwiseChain";
  chain.inputs = {0};
  chain.attrs.Set("steps", std::vector<std::string>{"Relu"});
  chain.attrs.Set("operands", std::vector<int64_t>{-1});
  chain.attrs.Set("swapped", std::vector<int64_t>{0});
  chain.attrs.Set("alphas", std::vector<double>{0.0});
  chain.attrs.Set("quantize_output", std::vector<double>{0.5, -127, 127, 0, 0});
  EXPECT_TRUE(backend::cpu::ReadChainSpec(chain).quantize_output.has_value());
  chain.attrs.Set("quantize_output", std::vector<double>{0.5, -127, 127, 0});
  testutil::ExpectError([&] { backend::cpu::ReadChainSpec(chain); }, ErrorCode::kInternal,
                        {"gelu", "bad quantization values"});
  chain.attrs.Set("quantize_output", std::vector<double>{0.5, -200, 127, 0, 0});
  testutil::ExpectError([&] { backend::cpu::ReadChainSpec(chain); }, ErrorCode::kInternal,
                        {"gelu", "does not fit int8"});
  chain.attrs.Set("quantize_output", std::vector<double>{0.5, 0, 255, 1, 40});
  testutil::ExpectError([&] { backend::cpu::ReadChainSpec(chain); }, ErrorCode::kInternal,
                        {"gelu", "does not fit uint8"});
}

// A zero padding between an elementwise chain and a quantization read by a strided convolution
// (ONNX Runtime's QDQ MobileNetV2): the quantization moves before the Pad, the chain stores the
// 8-bit values and the Pad pads them with the quantized pad value (the zero point for 0; -10 for
// -0.3 at scale 0.03). Matches the reference on the float graph.
TEST(CpuInt8, QuantizationsMoveBeforeConstantPads) {
  REQUIRE_INT8_DOT_PRODUCT();
  for (float zp : {37.0f, 128.0f}) {
    SCOPED_TRACE(zp);
    Builder b;
    const Shape xs{2, 12, 12, 8};
    const ir::ValueId x = b.Input("x", xs);
    ir::ValueId h = b.Op("Mul", "scale", {x, b.Const("s", RandF32({8}, 4))});
    h = b.Op("Relu", "relu", {h});
    std::vector<ir::ValueId> pad_inputs{h, b.Const("pads", nntest::I32({4, 2}, {0, 0, 0, 1, 0, 1, 0, 0}))};
    if (zp == 128.0f) pad_inputs.push_back(b.Const("pad_value", Tensor::Scalar(DType::kFloat32, -0.3f)));
    h = b.Op("Pad", "pad", pad_inputs);
    Tensor w = RandScaled({3, 3, 8, 6}, 10, 0.3f);  // rounded to a per-tensor int8 grid
    float step = 0;
    for (int64_t e = 0; e < w.num_elements(); ++e) step = std::max(step, std::fabs(w.data<float>()[e]) / 127.0f);
    for (int64_t e = 0; e < w.num_elements(); ++e)
      w.data<float>()[e] = std::nearbyint(w.data<float>()[e] / step) * step;
    b.Output("y", b.Op("Conv2D", "conv", {OnnxUint8Qdq(b, h, 0.03f, zp, "h_q"), b.Const("w", w)},
                       ConvAttrs("NHWC", "VALID", {2, 2})));
    auto engine =
        CheckAgainstReference(b, ExactProfile({xs}), {{RandF32(xs, 1)}, {RandF32(xs, 2)}}, 1e-4, Int8Options());
    const auto& e = dynamic_cast<const CpuEngine&>(*engine);
    EXPECT_EQ(e.int8_steps(), std::vector<std::string>{"conv"}) << e.Summary();
    EXPECT_EQ(PassRewrites(*engine, "cpu-quantize-before-pad"), 1) << e.Summary();
    EXPECT_EQ(CountOps(*engine, "cpu.QuantizeS8"), 0) << e.Summary();
    int pads = 0;
    for (const ir::Node& n : e.graph().nodes())
      if (!n.removed && n.op == "cpu.Pad") {
        ++pads;
        EXPECT_EQ(e.graph().value(n.outputs[0]).dtype, zp == 128.0f ? DType::kInt8 : DType::kUInt8);
      }
    EXPECT_EQ(pads, 1) << e.Summary();
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

ir::AttrMap LeakyAlpha(double alpha) {
  ir::AttrMap a;
  a.Set("alpha", alpha);
  return a;
}

// A ResNet identity block: its input y (a ReLU'd convolution) is quantized for the block's first
// convolution and added after its last. The add reads the 8-bit tensor (cpu-int8-residual), so
// y is stored only in 8 bits: int8 written by the stem convolution itself under Kiln's INT8
// conversion, and uint8 with zero point 37 (a cpu.QuantizeS8 step) under ONNX's QDQ form. The
// engine then computes the graph whose Add reads y's dequantized value, up to float32 summation
// order (the bound of QuantizedGraphRunsInt8PrimitivesAndMatchesTheReference); against the graph
// as written the difference is y's quantization error, which the comparison would show.
TEST(CpuInt8, ResidualsAreAddedFromTheirQuantizedTensor) {
  REQUIRE_INT8_DOT_PRODUCT();
  const Shape xs{2, 9, 9, 8};
  for (const bool onnx_qdq : {false, true}) {
    SCOPED_TRACE(onnx_qdq ? "ONNX uint8 QDQ" : "Kiln INT8 conversion");
    Builder b;
    const ir::ValueId x = b.Input("x", xs);
    auto q = [&](ir::ValueId v, float scale, float zp, const std::string& name) {
      return onnx_qdq ? OnnxUint8Qdq(b, v, scale, zp, name) : v;
    };
    auto weights = [&](const std::string& name, Shape shape, uint32_t seed) {
      const int64_t out = shape.back();
      return b.Const(name,
                     onnx_qdq ? GridWeights(std::move(shape), seed, out, 1) : RandScaled(std::move(shape), seed, 0.3f));
    };
    ir::ValueId y =
        b.Op("Conv2D", "stem", {q(x, 0.03f, 128, "x_q"), weights("w0", {3, 3, 8, 16}, 31)}, ConvAttrs("NHWC", "SAME"));
    y = b.Op("Relu", "stem_relu", {b.Op("Add", "stem_bias", {y, b.Const("b0", RandScaled({16}, 32, 0.2f))})});
    ir::ValueId c =
        b.Op("Conv2D", "c1", {q(y, 0.02f, 37, "y_q"), weights("w1", {1, 1, 16, 8}, 33)}, ConvAttrs("NHWC", "SAME"));
    c = b.Op("Relu", "c1_relu", {c});
    c = b.Op("Conv2D", "c2", {q(c, 0.02f, 0, "c_q"), weights("w2", {3, 3, 8, 16}, 34)}, ConvAttrs("NHWC", "SAME"));
    c = b.Op("Add", "c2_bias", {c, b.Const("b2", RandScaled({16}, 35, 0.2f))});
    // A post-op before the residual (the add's scaling then runs as post-ops around it; a first
    // add folds it into the int8 output scales and the bias).
    if (onnx_qdq) c = b.Op("LeakyRelu", "c2_leaky", {c}, LeakyAlpha(0.1));
    b.Output("out", b.Op("Relu", "out", {b.Op("Add", "residual", {c, y})}));
    auto g = std::make_shared<ir::Graph>(ir::CloneGraph(*b.g));
    if (!onnx_qdq) {
      std::vector<std::vector<Tensor>> batches;
      for (uint32_t s = 0; s < 3; ++s) batches.push_back({RandF32(xs, 70 + s)});
      runtime::CalibrationOptions calibration;
      calibration.calibrator = convert::Calibrator::kPercentile;
      calibration.percentile = 99.0;
      EXPECT_EQ(convert::InsertQuantDequant(*g, runtime::Calibrate(b.g, batches, calibration)).weights, 3);
    }
    // The graph the engine computes: the residual Add reads what c1 reads, y's dequantized value.
    auto quantized_residual = std::make_shared<ir::Graph>(ir::CloneGraph(*g));
    {
      ir::ValueId y_dq = ir::kNoValue;
      ir::NodeId add = -1;
      for (const ir::Node& n : quantized_residual->nodes()) {
        if (n.removed) continue;
        if (n.name == "c1") y_dq = n.inputs[0];
        if (n.name == "residual") add = n.id;
      }
      ASSERT_NE(y_dq, ir::kNoValue);
      ASSERT_GE(add, 0);
      ir::Node& a = quantized_residual->node(add);
      ASSERT_EQ(quantized_residual->value(a.inputs[1]).name, b.g->value(y).name);
      a.inputs[1] = y_dq;
    }
    auto engine = CpuBackend().Compile(*g, ExactProfile({xs}), Int8Options());
    const auto& e = dynamic_cast<const CpuEngine&>(*engine);
    EXPECT_EQ(e.int8_steps(), (std::vector<std::string>{"stem", "c1", "c2"})) << e.Summary();
    EXPECT_EQ(PassRewrites(*engine, "cpu-int8-residual"), 1) << e.Summary();
    ExpectNoFallback(*engine);
    for (const ir::Node& n : e.graph().nodes()) {
      if (n.removed || n.name != "c2") continue;
      ASSERT_EQ(n.inputs.size(), 4u);
      EXPECT_EQ(e.graph().value(n.inputs[3]).dtype, onnx_qdq ? DType::kUInt8 : DType::kInt8);
      const auto ops = backend::cpu::ReadPostOps(n);
      const size_t add = onnx_qdq ? 1 : 0;
      ASSERT_GT(ops.size(), add);
      EXPECT_EQ(ops[add].kind, backend::cpu::PostOpKind::kAdd);
      EXPECT_EQ(ops[add].beta, onnx_qdq ? 37.0 : 0.0);
    }
    // Kiln's symmetric int8 grid lets the stem write y itself; a zero point keeps a quantize step.
    EXPECT_EQ(CountOps(*engine, "cpu.QuantizeS8"), onnx_qdq ? 2 : 1) << e.Summary();
    runtime::ReferenceExecutor ref(quantized_residual), as_written(g);
    for (uint32_t seed : {5u, 80u}) {
      const std::vector<Tensor> in{RandF32(xs, seed)};
      const Tensor got = engine->Execute(in)[0];
      const double err = testutil::RelativeL2Error(got, ref.Run(in)[0]);
      const double quantization = testutil::RelativeL2Error(got, as_written.Run(in)[0]);
      std::cout << fmt::format(
          "seed {}: rel L2 INT8 engine vs quantized-residual reference {:.3e} (vs the graph as written {:.3e})\n", seed,
          err, quantization);
      EXPECT_LT(err, 1e-4);
      EXPECT_GT(quantization, 10 * err);
    }
    auto loaded = CpuBackend().Deserialize(*g, ExactProfile({xs}), Int8Options(), engine->Serialize());
    const std::vector<Tensor> in{RandF32(xs, 9)};
    EXPECT_TRUE(BitwiseEqual(engine->Execute(in)[0], loaded->Execute(in)[0]));
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// ONNX Runtime's QDQ form of a ResNet block's end: Add(dq(q(c2)), dq(q(shortcut))) -> Relu ->
// q/dq -> the next convolution, the shortcut being the block's input (its dq shared with the
// block's first convolution) or a projection convolution's quantized result. The last
// convolution takes the quantize-dequantize of its own result, the 8-bit shortcut and the ReLU as
// post-ops (cpu-int8-quantized-add): no Add, no chain left, and the result written as uint8 for
// the next convolution. Matches the reference on the float graph within the int8 bound.
TEST(CpuInt8, QuantizedResidualAddsBecomeConvolutionPostOps) {
  REQUIRE_INT8_DOT_PRODUCT();
  const Shape xs{2, 9, 9, 8};
  for (const bool projection : {false, true}) {
    SCOPED_TRACE(projection ? "projection shortcut" : "identity shortcut");
    Builder b;
    const ir::ValueId x = b.Input("x", xs);
    auto conv = [&](const std::string& name, ir::ValueId in, Shape w, uint32_t seed) {
      const int64_t out = w.back();
      ir::ValueId c = b.Op("Conv2D", name, {in, b.Const(name + "_w", GridWeights(std::move(w), seed, out, 1))},
                           ConvAttrs("NHWC", "SAME"));
      return b.Op("Add", name + "_bias", {c, b.Const(name + "_b", RandScaled({out}, seed + 100, 0.2f))});
    };
    const ir::ValueId y =
        b.Op("Relu", "stem_relu", {conv("stem", OnnxUint8Qdq(b, x, 0.03f, 128, "x_q"), {3, 3, 8, 16}, 41)});
    const ir::ValueId y_dq = OnnxUint8Qdq(b, y, 0.02f, 0, "y_q");
    ir::ValueId c = b.Op("Relu", "c1_relu", {conv("c1", y_dq, {1, 1, 16, 8}, 42)});
    c = conv("c2", OnnxUint8Qdq(b, c, 0.02f, 0, "c1_q"), {3, 3, 8, 16}, 43);
    const ir::ValueId shortcut =
        projection ? OnnxUint8Qdq(b, conv("proj", y_dq, {1, 1, 16, 16}, 44), 0.04f, 110, "proj_q") : y_dq;
    ir::ValueId s = b.Op("Add", "residual", {OnnxUint8Qdq(b, c, 0.05f, 120, "c2_q"), shortcut});
    s = b.Op("Relu", "out_relu", {s});
    b.Output("out", conv("next", OnnxUint8Qdq(b, s, 0.03f, 0, "out_q"), {1, 1, 16, 4}, 45));
    auto engine =
        CheckAgainstReference(b, ExactProfile({xs}), {{RandF32(xs, 1)}, {RandF32(xs, 2)}}, 1e-4, Int8Options());
    const auto& e = dynamic_cast<const CpuEngine&>(*engine);
    EXPECT_EQ(PassRewrites(*engine, "cpu-int8-quantized-add"), 1) << e.Summary();
    EXPECT_EQ(CountOps(*engine, "Add"), 0) << e.Summary();
    EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 0) << e.Summary();
    int found = 0;
    for (const ir::Node& n : e.graph().nodes()) {
      if (n.removed || n.name != "c2") continue;
      ++found;
      const auto ops = backend::cpu::ReadPostOps(n);
      ASSERT_GE(ops.size(), 6u);
      EXPECT_EQ(ops[2].kind, backend::cpu::PostOpKind::kRound);
      EXPECT_EQ(ops[4].kind, backend::cpu::PostOpKind::kAdd);
      EXPECT_EQ(ops[4].beta, projection ? 110.0 : 0.0);
      EXPECT_EQ(ops[5].kind, backend::cpu::PostOpKind::kRelu);
      EXPECT_TRUE(n.attrs.GetOr<bool>("int8_output", false));  // uint8 for "next"
    }
    EXPECT_EQ(found, 1);
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// ONNX Runtime's QDQ ResNet stem: ReLU -> q/dq -> zero Pad -> q/dq -> MaxPool -> q/dq, all with
// the same parameters. A zero pad and a max pooling keep values on the grid, so the second and
// third quantize-dequantize steps are the identity (cpu-redundant-quant-dequant) and only the
// first runs; a pad value off the grid keeps its step. Matches the reference within the int8
// bound.
TEST(CpuInt8, ZeroPadsAndMaxPoolingsKeepTheGridAndNeedNoSecondQuantization) {
  REQUIRE_INT8_DOT_PRODUCT();
  const Shape xs{2, 10, 10, 8};
  struct Case {
    float pad_value;
    bool relu;  // without it, the stem's division by the first scale moves into the convolution
                // (cpu-fold-batchnorm): the two steps are written differently but share the grid
    float zero_point;
  };
  for (const Case c : {Case{0.0f, true, 0.0f}, Case{0.013f, true, 0.0f}, Case{0.0f, false, 128.0f}}) {
    SCOPED_TRACE(fmt::format("pad value {}, relu {}", c.pad_value, c.relu));
    Builder b;
    const ir::ValueId x = b.Input("x", xs);
    ir::ValueId h = b.Op("Conv2D", "stem",
                         {OnnxUint8Qdq(b, x, 0.03f, 128, "x_q"), b.Const("w1", GridWeights({3, 3, 8, 16}, 51, 16, 1))},
                         ConvAttrs("NHWC", "SAME"));
    if (c.relu) h = b.Op("Relu", "stem_relu", {h});
    h = OnnxUint8Qdq(b, h, 0.02f, c.zero_point, "stem_q");
    std::vector<ir::ValueId> pad_inputs{h, b.Const("pads", nntest::I32({4, 2}, {0, 0, 1, 1, 1, 1, 0, 0}))};
    if (c.pad_value != 0) pad_inputs.push_back(b.Const("pad_value", Tensor::Scalar(DType::kFloat32, c.pad_value)));
    h = OnnxUint8Qdq(b, b.Op("Pad", "pad", pad_inputs), 0.02f, c.zero_point, "pad_q");
    h = b.Op("MaxPool", "pool", {h}, PoolAttrs("NHWC", "VALID", {3, 3}, {2, 2}));
    h = OnnxUint8Qdq(b, h, 0.02f, c.zero_point, "pool_q");
    b.Output("y", b.Op("Conv2D", "next", {h, b.Const("w2", GridWeights({1, 1, 16, 4}, 52, 4, 1))},
                       ConvAttrs("NHWC", "SAME")));
    auto engine =
        CheckAgainstReference(b, ExactProfile({xs}), {{RandF32(xs, 1)}, {RandF32(xs, 2)}}, 1e-4, Int8Options());
    const auto& e = dynamic_cast<const CpuEngine&>(*engine);
    // The pad's step goes with a zero pad; the pooling's quantization is the next convolution's
    // int8 operand either way.
    EXPECT_EQ(PassRewrites(*engine, "cpu-redundant-quant-dequant"), c.pad_value == 0 ? 1 : 0) << e.Summary();
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// An 8-bit residual's scale and zero point come from the plan: a corrupted one (scale 0, NaN,
// negative; a zero point that is not finite) is refused naming the node when its kernel is made.
TEST(CpuInt8, EightBitResidualsWithBadParametersAreRefused) {
  REQUIRE_INT8_DOT_PRODUCT();
  const Shape xs{1, 6, 6, 8};
  Builder b;
  const ir::ValueId x = b.Input("x", xs);
  const ir::ValueId y =
      b.Op("Relu", "stem_relu",
           {b.Op("Conv2D", "stem", {x, b.Const("w0", RandScaled({3, 3, 8, 8}, 81, 0.3f))}, ConvAttrs("NHWC", "SAME"))});
  ir::ValueId c =
      b.Op("Conv2D", "c1", {y, b.Const("w1", RandScaled({1, 1, 8, 8}, 82, 0.3f))}, ConvAttrs("NHWC", "SAME"));
  b.Output("out", b.Op("Relu", "out", {b.Op("Add", "residual", {c, y})}));
  std::vector<std::vector<Tensor>> batches{{RandF32(xs, 83)}, {RandF32(xs, 84)}};
  runtime::CalibrationOptions calibration;
  calibration.calibrator = convert::Calibrator::kMinMax;
  auto g = std::make_shared<ir::Graph>(ir::CloneGraph(*b.g));
  convert::InsertQuantDequant(*g, runtime::Calibrate(b.g, batches, calibration));
  auto engine = CpuBackend().Compile(*g, ExactProfile({xs}), Int8Options());
  ASSERT_EQ(PassRewrites(*engine, "cpu-int8-residual"), 1);
  const ir::Graph& planned = dynamic_cast<const CpuEngine&>(*engine).graph();
  ir::NodeId c1 = -1;
  for (const ir::Node& n : planned.nodes())
    if (!n.removed && n.name == "c1") c1 = n.id;
  ASSERT_GE(c1, 0);
  auto env = std::make_shared<backend::cpu::KernelEnv>();
  EXPECT_NE(backend::cpu::MakeKernel(planned, planned.node(c1), env), nullptr);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (const auto& [scale, zero_point] :
       std::vector<std::pair<double, double>>{{0.0, 0.0}, {nan, 0.0}, {-0.1, 0.0}, {0.1, inf}}) {
    ir::Graph corrupted = ir::CloneGraph(planned);
    ir::Node& node = corrupted.node(c1);
    std::vector<backend::cpu::PostOp> ops = backend::cpu::ReadPostOps(node);
    ASSERT_EQ(ops[0].kind, backend::cpu::PostOpKind::kAdd);
    ops[0].alpha = scale;
    ops[0].beta = zero_point;
    backend::cpu::WritePostOps(node.attrs, ops);
    testutil::ExpectError([&] { backend::cpu::MakeKernel(corrupted, corrupted.node(c1), env); }, ErrorCode::kInternal,
                          {"c1", "8-bit add operand"});
  }
}

}  // namespace
}  // namespace kiln
