// INT8 and FP8 on the CUDA backend. Everywhere: cuda-quantized-conv marks the convolutions of a
// calibrated graph whose input is a quantize-dequantize chain and whose filter is on an int8 (or
// scaled E4M3) grid. With a GPU: INT8 and FP8 engines run those convolutions with cuDNN's int8 and
// fp8 kernels and match the reference executor on the quantized graph; a float graph requested as
// INT8 runs FP16 and says why.
#ifdef KILN_WITH_CUDA

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <optional>
#include <random>

#include "backend/cuda/conv_kernel.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/cutlass_quantized_conv.h"
#include "backend/cuda/cutlass_quantized_gemm.h"
#include "backend/cuda/nvrtc_compiler.h"
#include "backend/cuda/quantize_kernel.h"
#include "backend/cuda/quantized_conv.h"
#include "backend/cuda/quantized_library_conv.h"
#include "convert/calibration_table.h"
#include "ir/graph_util.h"
#include "ir/ops/elementwise_unary_ops.h"
#include "ir/passes/pass.h"
#include "kiln/half.h"
#include "kiln/precision.h"
#include "runtime/calibration.h"
#include "runtime/executor.h"
#include "tests/unit/cpu_test_util.h"
#include "tests/unit/cuda_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using namespace cputest;

// x (NHWC) -> conv1 3x3 (bias) -> Relu -> conv2 3x3 (bias) + conv1's activation -> Relu -> out "y";
// x -> depthwise 3x3 -> out "dw" (stays float: no int8 depthwise kernels); z (NCHW, 16 channels)
// -> conv 1x1 -> Relu -> conv 3x3 -> out "nchw" (the first writes int8 for the second); s (3
// channels, an image stem) -> conv 3x3 -> out "stem".
Builder BuildConvNetwork() {
  Builder b;
  const ir::ValueId x = b.Input("x", {2, 12, 12, 16});
  ir::ValueId c1 =
      b.Op("Conv2D", "conv1",
           {x, b.Const("w1", RandScaled({3, 3, 16, 32}, 7, 0.3f)), b.Const("b1", RandScaled({32}, 8, 0.1f))},
           ConvAttrs("NHWC", "SAME"));
  c1 = b.Op("Relu", "relu1", {c1});
  ir::ValueId c2 =
      b.Op("Conv2D", "conv2",
           {c1, b.Const("w2", RandScaled({3, 3, 32, 32}, 9, 0.2f)), b.Const("b2", RandScaled({32}, 10, 0.1f))},
           ConvAttrs("NHWC", "SAME"));
  c2 = b.Op("Add", "residual", {c2, c1});
  b.Output("y", b.Op("Relu", "relu2", {c2}));
  b.Output("dw", b.Op("DepthwiseConv2D", "dw", {x, b.Const("dww", RandScaled({3, 3, 16, 1}, 11, 0.4f))},
                      ConvAttrs("NHWC", "SAME")));
  const ir::ValueId z = b.Input("z", {1, 16, 10, 10});
  const ir::ValueId n =
      b.Op("Conv2D", "conv_nchw", {z, b.Const("wn", RandScaled({1, 1, 16, 32}, 12, 0.3f))}, ConvAttrs("NCHW", "VALID"));
  const ir::ValueId r = b.Op("Relu", "nchw_relu", {n});
  b.Output("nchw", b.Op("Conv2D", "conv_nchw2", {r, b.Const("wn2", RandScaled({3, 3, 32, 16}, 14, 0.2f))},
                        ConvAttrs("NCHW", "SAME")));
  const ir::ValueId s = b.Input("s", {2, 9, 9, 3});
  b.Output("stem",
           b.Op("Conv2D", "stem", {s, b.Const("ws", RandScaled({3, 3, 3, 16}, 13, 0.5f))}, ConvAttrs("NHWC", "SAME")));
  return b;
}

const Shape kX{2, 12, 12, 16}, kZ{1, 16, 10, 10}, kS{2, 9, 9, 3};
std::vector<Tensor> Inputs(uint32_t seed) { return {RandF32(kX, seed), RandF32(kZ, seed + 1), RandF32(kS, seed + 2)}; }

// The network as Kiln's INT8 (or FP8) conversion rewrites it (min-max calibration on 3 batches).
std::shared_ptr<ir::Graph> QuantizedConvNetwork(ir::QuantFormat format = ir::QuantFormat::kInt8) {
  const Builder b = BuildConvNetwork();
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t s = 0; s < 3; ++s) batches.push_back(Inputs(100 + 3 * s));
  runtime::CalibrationOptions options;
  options.calibrator = convert::Calibrator::kMinMax;
  const convert::CalibrationTable table = runtime::Calibrate(b.g, batches, options);
  auto g = std::make_shared<ir::Graph>(ir::CloneGraph(*b.g));
  const convert::Quantization q = convert::InsertQuantDequant(*g, table, {}, format);
  EXPECT_EQ(q.weights, 6);  // conv1, conv2, dw, conv_nchw, conv_nchw2, stem
  return g;
}

std::vector<std::string> MarkedConvolutions(const ir::Graph& g) {
  std::vector<std::string> marked;
  for (const ir::Node& n : g.nodes())
    if (!n.removed && backend::cuda::ReadQuantizedConv(n)) marked.push_back(n.name);
  std::sort(marked.begin(), marked.end());
  return marked;
}

TEST(CudaInt8, PassMarksQuantizedConvolutionsWithTheirGridAndScales) {
  const auto g = QuantizedConvNetwork();
  ir::Graph work = ir::CloneGraph(*g);
  ir::PassPipeline pipeline;
  pipeline.Add(backend::cuda::MakeQuantizedConvPass(ir::QuantFormat::kInt8));
  pipeline.Add(ir::MakeDeadCodeElimination());
  pipeline.Run(work);
  // Grouped (depthwise) convolutions stay float with their quantize-dequantize steps.
  EXPECT_EQ(MarkedConvolutions(work), (std::vector<std::string>{"conv1", "conv2", "conv_nchw", "conv_nchw2", "stem"}));
  for (const ir::Node& n : work.nodes()) {
    const auto int8 = backend::cuda::ReadQuantizedConv(n);
    if (n.removed || !int8) continue;
    EXPECT_EQ(int8->format, ir::QuantFormat::kInt8);
    // The convolution reads the chain's float source; the chain is gone when it was the only reader.
    EXPECT_EQ(work.Producer(n.inputs[0]) ? work.Producer(n.inputs[0])->op : "input",
              n.name == "conv2" || n.name == "conv_nchw2" ? "Relu" : "input")
        << n.name;
    EXPECT_GT(int8->input.inv_scale, 0) << n.name;
    EXPECT_FLOAT_EQ(int8->input.inv_scale * int8->input.scale, 1.0f) << n.name;
    EXPECT_EQ(int8->input.qmin, -127);
    EXPECT_EQ(int8->input.qmax, 127);
    // The float filter is exactly the int8 grid times its channel's scale.
    const Tensor& w = *work.ConstantOf(n.inputs[1]);
    ASSERT_EQ(int8->filter.shape(), w.shape());
    const int64_t channels = w.dim(3);
    ASSERT_EQ(static_cast<int64_t>(int8->filter_scales.size()), channels);
    for (int64_t e = 0; e < w.num_elements(); ++e)
      ASSERT_FLOAT_EQ(w.data<float>()[e],
                      int8->filter.data<int8_t>()[e] * int8->filter_scales[static_cast<size_t>(e % channels)])
          << n.name << " element " << e;
  }
  const auto rounds = std::count_if(work.nodes().begin(), work.nodes().end(),
                                    [](const ir::Node& n) { return !n.removed && n.op == "Round"; });
  EXPECT_EQ(rounds, 1) << "only dw's chain is left";
}

// After the marking, the depthwise convolution (a float16 kernel) reads x itself: the chain
// Kiln's conversion inserted is implicit quantization. The same chain without the attribute (a
// model's own quantize-dequantize, explicit quantization) stays.
TEST(CudaInt8, FloatReadersOfImplicitQuantizationReadItsSource) {
  for (ir::QuantFormat format : {ir::QuantFormat::kInt8, ir::QuantFormat::kFloat8E4M3}) {
    const char* round = format == ir::QuantFormat::kInt8 ? "Round" : "RoundFloat8E4M3";
    for (bool implicit : {true, false}) {
      ir::Graph work = ir::CloneGraph(*QuantizedConvNetwork(format));
      if (!implicit)
        for (ir::Node& n : work.nodes())
          if (n.attrs.Has(ir::kImplicitQuantization)) n.attrs.Set(ir::kImplicitQuantization, false);
      ir::PassPipeline pipeline;
      pipeline.Add(backend::cuda::MakeQuantizedConvPass(format));
      pipeline.Add(backend::cuda::MakeImplicitQuantizationForFloatReadersPass());
      pipeline.Add(ir::MakeDeadCodeElimination());
      pipeline.Run(work);
      const ir::Node* dw = nullptr;
      for (const ir::Node& n : work.nodes())
        if (!n.removed && n.name == "dw") dw = &n;
      ASSERT_NE(dw, nullptr);
      EXPECT_EQ(work.Producer(dw->inputs[0]) == nullptr, implicit) << round << ": dw reads x itself when implicit";
      const auto rounds = std::count_if(work.nodes().begin(), work.nodes().end(),
                                        [&](const ir::Node& n) { return !n.removed && n.op == round; });
      EXPECT_EQ(rounds, implicit ? 0 : 1) << round;
      EXPECT_EQ(MarkedConvolutions(work).size(), 5u) << "the marked convolutions are unchanged";
    }
  }
}

TEST(CudaInt8, FiltersOffTheGridAndUnsignedQuantizationStayFloat) {
  Builder b;
  const ir::ValueId x = b.Input("x", {1, 4, 4, 8});
  // A quantize-dequantize chain with a uint8 zero point of 100 (ONNX's asymmetric QDQ): q in
  // [-100, 155] has no int8 form. (A zero point of 128 would: that is int8 without one.)
  ir::ValueId q = b.Op("Mul", "q", {x, b.Const("inv", Tensor::Scalar(DType::kFloat32, 10.0f))});
  q = b.Op("Round", "round", {q});
  q = b.Op("Add", "zp", {q, b.Const("zpv", Tensor::Scalar(DType::kFloat32, 100.0f))});
  q = b.Op("Maximum", "lo", {q, b.Const("lov", Tensor::Scalar(DType::kFloat32, 0.0f))});
  q = b.Op("Minimum", "hi", {q, b.Const("hiv", Tensor::Scalar(DType::kFloat32, 255.0f))});
  q = b.Op("Sub", "unzp", {q, b.Const("zpv2", Tensor::Scalar(DType::kFloat32, 100.0f))});
  const ir::ValueId dq = b.Op("Mul", "dq", {q, b.Const("scale", Tensor::Scalar(DType::kFloat32, 0.1f))});
  b.Output(
      "a",
      b.Op("Conv2D", "unsigned",
           {dq, b.Const("wa", Tensor::FromVector<float>(DType::kFloat32, {1, 1, 8, 8}, std::vector<float>(64, 0.5f)))},
           ConvAttrs("NHWC", "VALID")));
  // A symmetric chain, but a filter that is no int8 grid (random floats).
  ir::ValueId s = b.Op("Mul", "sq", {x, b.Const("sinv", Tensor::Scalar(DType::kFloat32, 10.0f))});
  s = b.Op("Round", "sround", {s});
  s = b.Op("Clip", "sclip",
           {s, b.Const("smin", Tensor::Scalar(DType::kFloat32, -127.0f)),
            b.Const("smax", Tensor::Scalar(DType::kFloat32, 127.0f))});
  s = b.Op("Mul", "sdq", {s, b.Const("sscale", Tensor::Scalar(DType::kFloat32, 0.1f))});
  b.Output("b", b.Op("Conv2D", "off_grid", {s, b.Const("wb", RandScaled({1, 1, 8, 8}, 5, 0.3f))},
                     ConvAttrs("NHWC", "VALID")));
  ir::Graph work = ir::CloneGraph(*b.g);
  EXPECT_FALSE(backend::cuda::MakeQuantizedConvPass(ir::QuantFormat::kInt8)->Run(work));
  EXPECT_TRUE(MarkedConvolutions(work).empty());
  // Neither chain is a float8 one.
  EXPECT_FALSE(backend::cuda::MakeQuantizedConvPass(ir::QuantFormat::kFloat8E4M3)->Run(work));
}

// An E4M3FN byte's value, decoded independently of RoundFloat8E4M3::Bits.
float DecodeE4M3(uint8_t b) {
  const int exponent = (b >> 3) & 0xF, mantissa = b & 0x7;
  const float magnitude = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -9)
                                        : std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
  return (b & 0x80) ? -magnitude : magnitude;
}

TEST(CudaFp8, PassMarksFloat8ConvolutionsWithTheirBytesAndScale) {
  const auto g = QuantizedConvNetwork(ir::QuantFormat::kFloat8E4M3);
  ir::Graph work = ir::CloneGraph(*g);
  // An INT8 engine's pass finds no int8 chains in an FP8 graph.
  EXPECT_FALSE(backend::cuda::MakeQuantizedConvPass(ir::QuantFormat::kInt8)->Run(work));
  ir::PassPipeline pipeline;
  pipeline.Add(backend::cuda::MakeQuantizedConvPass(ir::QuantFormat::kFloat8E4M3));
  pipeline.Add(ir::MakeDeadCodeElimination());
  pipeline.Run(work);
  EXPECT_EQ(MarkedConvolutions(work), (std::vector<std::string>{"conv1", "conv2", "conv_nchw", "conv_nchw2", "stem"}));
  for (const ir::Node& n : work.nodes()) {
    const auto fp8 = backend::cuda::ReadQuantizedConv(n);
    if (n.removed || !fp8) continue;
    EXPECT_EQ(fp8->format, ir::QuantFormat::kFloat8E4M3) << n.name;
    EXPECT_EQ(fp8->input.qmin, -448);
    EXPECT_EQ(fp8->input.qmax, 448);
    EXPECT_NEAR(fp8->input.inv_scale * fp8->input.scale, 1.0f, 1e-6f) << n.name;
    // The float filter is the E4M3 bytes' values times one scale; the largest magnitude is 448.
    const Tensor& w = *work.ConstantOf(n.inputs[1]);
    ASSERT_EQ(fp8->filter.dtype(), DType::kUInt8);
    ASSERT_EQ(fp8->filter.shape(), w.shape());
    ASSERT_EQ(static_cast<int64_t>(fp8->filter_scales.size()), w.dim(3));
    float largest = 0;
    for (int64_t e = 0; e < w.num_elements(); ++e) {
      const float v = DecodeE4M3(fp8->filter.data<uint8_t>()[e]);
      largest = std::max(largest, std::fabs(v));
      ASSERT_NEAR(w.data<float>()[e], v * fp8->filter_scales[static_cast<size_t>(e % w.dim(3))],
                  1e-6f * std::fabs(w.data<float>()[e]) + 1e-30f)
          << n.name << " element " << e;
    }
    EXPECT_EQ(largest, 448.0f) << n.name;
  }
  const auto rounds = std::count_if(work.nodes().begin(), work.nodes().end(),
                                    [](const ir::Node& n) { return !n.removed && n.op == "RoundFloat8E4M3"; });
  EXPECT_EQ(rounds, 1) << "only dw's chain is left";
}

// The quantize kernels are NVRTC-compiled at engine build time: every variant must compile (no
// GPU needed), or INT8 engines fail to build on the user's machine.
TEST(CudaInt8, QuantizeKernelsCompileForEveryInputDTypeAndMode) {
  for (ir::QuantFormat format : {ir::QuantFormat::kInt8, ir::QuantFormat::kFloat8E4M3})
    for (DType in : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
      for (bool dequantize : {false, true})
        for (backend::cuda::GpuArch arch : {backend::cuda::GpuArch{8, 0}, backend::cuda::GpuArch{9, 0}}) {
          try {
            EXPECT_FALSE(backend::cuda::CompileToCubin(backend::cuda::QuantizeKernelSource(in, format, dequantize),
                                                       "quantize", arch)
                             .empty());
          } catch (const Error& e) {
            ADD_FAILURE() << DTypeName(in) << " " << backend::cuda::QuantFormatName(format)
                          << (dequantize ? " dequantize " : " ") << arch.Name() << ": " << e.what();
          }
        }
  EXPECT_THROW(backend::cuda::QuantizeKernelSource(DType::kInt32, ir::QuantFormat::kInt8, false), Error);
}

#define SKIP_WITHOUT_GPU()                                                \
  if (backend::cuda::DeviceCount() == 0)                                  \
  GTEST_SKIP() << "no CUDA GPU visible on this machine: CUDA INT8 tests " \
                  "skipped"

// by_timing false: every quantized convolution runs 8-bit kernels where cuDNN has them, even
// where its float plan would be faster (what these tests check).
backend::CompileOptions Int8Options(Precision precision = Precision::kINT8, bool by_timing = false) {
  backend::CompileOptions options;
  options.precision = precision;
  options.quantized_by_timing = by_timing;
  return options;
}

// The engine on two input seeds against the reference run of the quantized graph `g`. The engine
// keeps what is not 8-bit in FP16 (as TensorRT's INT8 mode): an input quantized from its float16
// value can land one int8 (E4M3) step from the reference's float32 one, and results are rounded
// to float16 (docs/testing.md).
// `residual_error`: output 0 (y) also carries the rounding of conv2's 8-bit residual, which the
// reference's graph keeps float (at most that rounding's relative RMS size).
// What the engine computes for QuantizedConvNetwork: the depthwise convolution runs a float16
// kernel, so it reads x itself, not x's implicit quantize-dequantize
// (cuda-implicit-quantization-float-readers); the reference graph does too.
std::shared_ptr<ir::Graph> EngineReference(const std::shared_ptr<ir::Graph>& g) {
  auto reference = std::make_shared<ir::Graph>(ir::CloneGraph(*g));
  for (ir::Node& n : reference->nodes()) {
    if (n.removed || n.name != "dw") continue;
    std::optional<ir::QuantDequant> q = ir::MatchQuantDequant(*reference, n.inputs[0]);
    if (!q) q = ir::MatchFloat8QuantDequant(*reference, n.inputs[0]);
    EXPECT_TRUE(q) << "dw does not read a quantize-dequantize chain";
    if (q) n.inputs[0] = q->source;
  }
  return reference;
}

// conv1's E4M3 residual in FP8 engines: a rounding to 3 mantissa bits, at most 2^-4 of each value,
// whose relative RMS over values spread across binades is at most 2^-4 / sqrt(3).
const double kE4M3ResidualError = 0.0625 / std::sqrt(3.0);

// Two E4M3 quantizations in a row (an input, then a result of the float16 convolution reading it):
// the engine rounds the second from a float16 value that differs from the reference's float32 one,
// and where the two straddle an E4M3 rounding boundary the value lands one step (2^-3 of it) away,
// eight times an int8 step's relative size for mid-range values. Twice the single-quantization
// bound.
const double kE4M3StackedError = 2e-2;

void ExpectMatchesTheReference(const backend::Engine& engine, const std::shared_ptr<ir::Graph>& g, const char* what,
                               double residual_error = 0) {
  runtime::ReferenceExecutor ref(EngineReference(g));
  for (uint32_t seed : {1u, 40u}) {
    const auto in = Inputs(seed);
    const auto want = ref.Run(in);
    const auto got = cudatest::RunOnGpu(engine, in);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const double err = cudatest::RelativeL2(got[i], want[i]);
      std::cout << "seed " << seed << " output " << i << ": rel L2 " << what << " GPU engine vs reference " << err
                << "\n";
      EXPECT_LT(err, 1e-2 + (i == 0 ? residual_error : 0.0)) << what << " output " << i;
    }
  }
}

// conv1's activation is read by conv2 (quantized) and by the residual Add conv2's step runs: it
// is written in int8, and conv2 adds it times its scale (TensorRT's INT8 residuals).
void ExpectEightBitResidual(const backend::cuda::CudaEngine& e) {
  bool conv1_out = false, conv2_residual = false;
  for (const auto& s : e.steps()) {
    if (s.nodes.rfind("conv1+", 0) == 0) conv1_out = s.kernel.find("8-bit out") != std::string::npos;
    if (s.nodes.rfind("conv2+", 0) == 0) conv2_residual = s.kernel.find("8-bit residual") != std::string::npos;
  }
  EXPECT_TRUE(conv1_out) << "conv1 does not write 8 bits for conv2 and the residual Add";
  EXPECT_TRUE(conv2_residual) << "conv2 does not read its residual in 8 bits";
}

TEST(CudaInt8Gpu, QuantizedConvolutionsRunInt8CudnnKernelsAndMatchTheReference) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  const auto g = QuantizedConvNetwork();
  auto engine = backend::cuda::CudaBackend().Compile(*g, ExactProfile({kX, kZ, kS}), Int8Options());
  const auto& e = dynamic_cast<const backend::cuda::CudaEngine&>(*engine);
  std::cout << "precision " << PrecisionName(engine->precision()) << "; note: " << engine->precision_note() << "\n";
  for (const auto& s : e.steps()) std::cout << "  " << s.nodes << ": " << s.kernel << "\n";
  EXPECT_EQ(engine->precision(), Precision::kINT8);
  std::vector<std::string> int8 = engine->quantized_layers();
  std::sort(int8.begin(), int8.end());
  // cuDNN's int8 convolutions take channel counts in multiples of 4 at least: the 3-channel stem
  // may run FP16 on its dequantized input (the note says so); the others must run int8.
  for (const char* name : {"conv1", "conv2", "conv_nchw", "conv_nchw2"})
    EXPECT_TRUE(std::count(int8.begin(), int8.end(), name))
        << name << " does not run int8: " << engine->precision_note();
  // conv_nchw's ReLU'd result is read only by conv_nchw2: it is written as int8 (no quantize step).
  bool int8_out = false;
  for (const auto& s : e.steps())
    if (s.nodes.rfind("conv_nchw+", 0) == 0 || s.nodes == "conv_nchw")
      int8_out = s.kernel.find("8-bit out") != std::string::npos;
  EXPECT_TRUE(int8_out) << "conv_nchw does not write int8";
  ExpectEightBitResidual(e);
  ExpectMatchesTheReference(*engine, g, "INT8");
}

TEST(CudaFp8Gpu, QuantizedConvolutionsRunFp8CudnnKernelsAndMatchTheReference) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  const auto g = QuantizedConvNetwork(ir::QuantFormat::kFloat8E4M3);
  auto engine = backend::cuda::CudaBackend().Compile(*g, ExactProfile({kX, kZ, kS}), Int8Options(Precision::kFP8));
  const auto& e = dynamic_cast<const backend::cuda::CudaEngine&>(*engine);
  std::cout << "precision " << PrecisionName(engine->precision()) << "; note: " << engine->precision_note() << "\n";
  for (const auto& s : e.steps()) std::cout << "  " << s.nodes << ": " << s.kernel << "\n";
  const backend::cuda::GpuArch arch = backend::cuda::ArchOf(0);
  if (arch.major < 9 && !(arch.major == 8 && arch.minor >= 9)) {
    // cuDNN's float8 convolutions need Ada or Hopper: elsewhere FP16 on the dequantized inputs.
    EXPECT_EQ(engine->precision(), Precision::kFP16) << engine->precision_note();
  } else {
    EXPECT_EQ(engine->precision(), Precision::kFP8);
    std::vector<std::string> fp8 = engine->quantized_layers();
    for (const char* name : {"conv1", "conv2", "conv_nchw", "conv_nchw2"})
      EXPECT_TRUE(std::count(fp8.begin(), fp8.end(), name))
          << name << " does not run fp8: " << engine->precision_note();
    ExpectEightBitResidual(e);
  }
  ExpectMatchesTheReference(*engine, g, "FP8", kE4M3ResidualError);
}

// By default each quantized convolution keeps the faster of its 8-bit and float plans: whichever
// it is, the values are the same dequantized ones, and a convolution left float says it was
// faster.
TEST(CudaInt8Gpu, QuantizedConvolutionsKeepTheFasterOfTheir8BitAndFloatPlans) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  for (Precision precision : {Precision::kINT8, Precision::kFP8}) {
    const auto g =
        QuantizedConvNetwork(precision == Precision::kINT8 ? ir::QuantFormat::kInt8 : ir::QuantFormat::kFloat8E4M3);
    auto engine = backend::cuda::CudaBackend().Compile(*g, ExactProfile({kX, kZ, kS}), Int8Options(precision, true));
    const auto& e = dynamic_cast<const backend::cuda::CudaEngine&>(*engine);
    std::cout << PrecisionName(precision) << " by timing: precision " << PrecisionName(engine->precision())
              << "; note: " << engine->precision_note() << "\n";
    bool some_float = false;
    for (const auto& s : e.steps())
      if (s.kernel.rfind("cudnn", 0) == 0) {
        std::cout << "  " << s.nodes << ": " << s.kernel << "\n";
        some_float = some_float || s.kernel.find("refused") != std::string::npos;
      }
    // A marked convolution left float is named in the note with the first one's reason.
    if (some_float)
      EXPECT_TRUE(engine->precision_note().find("float plan") != std::string::npos ||
                  engine->precision_note().find("cuDNN has no") != std::string::npos)
          << engine->precision_note();
    runtime::ReferenceExecutor ref(EngineReference(g));
    const auto in = Inputs(3);
    const auto want = ref.Run(in);
    const auto got = cudatest::RunOnGpu(*engine, in);
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_LT(cudatest::RelativeL2(got[i], want[i]),
                1e-2 + (i == 0 && precision == Precision::kFP8 ? kE4M3ResidualError : 0.0))
          << PrecisionName(precision) << " output " << i;
  }
}

// `b`'s one-input graph as Kiln's INT8 (or FP8) conversion rewrites it: min-max calibration on 3
// batches of random inputs of `shape` (seeds from `seed`); the table and what the rewrite did are
// returned through `table` and `quantization`.
std::shared_ptr<ir::Graph> CalibratedInt8(const Builder& b, const Shape& shape, uint32_t seed,
                                          convert::CalibrationTable* table, convert::Quantization* quantization,
                                          ir::QuantFormat format = ir::QuantFormat::kInt8) {
  std::vector<std::vector<Tensor>> batches;
  for (uint32_t k = 0; k < 3; ++k) batches.push_back({RandF32(shape, seed + k)});
  runtime::CalibrationOptions calibration;
  calibration.calibrator = convert::Calibrator::kMinMax;
  *table = runtime::Calibrate(b.g, batches, calibration);
  auto g = std::make_shared<ir::Graph>(ir::CloneGraph(*b.g));
  *quantization = convert::InsertQuantDequant(*g, *table, {}, format);
  return g;
}

// An image stem as ResNet's: s (3 channels) -> conv 3x3 (bias) -> Relu -> MaxPool 3x3/2 -> two
// convolutions (1x1 and 3x3) reading the pooled tensor: the pool quantizes its result for them.
TEST(CudaInt8Gpu, MaxPoolReadBy8BitConvolutionsWrites8Bits) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  Builder b;
  const Shape shape{2, 20, 20, 3};
  const ir::ValueId s = b.Input("s", shape);
  ir::ValueId c =
      b.Op("Conv2D", "stem",
           {s, b.Const("ws", RandScaled({3, 3, 3, 16}, 21, 0.5f)), b.Const("bs", RandScaled({16}, 22, 0.1f))},
           ConvAttrs("NHWC", "SAME"));
  c = b.Op("Relu", "stem_relu", {c});
  ir::AttrMap pool;
  pool.Set("data_format", std::string("NHWC"));
  pool.Set("padding", std::string("SAME"));
  pool.Set("ksize", std::vector<int64_t>{3, 3});
  pool.Set("strides", std::vector<int64_t>{2, 2});
  const ir::ValueId p = b.Op("MaxPool", "pool", {c}, pool);
  b.Output("a", b.Op("Conv2D", "after_a", {p, b.Const("wa", RandScaled({1, 1, 16, 32}, 23, 0.3f))},
                     ConvAttrs("NHWC", "VALID")));
  b.Output("b", b.Op("Conv2D", "after_b", {p, b.Const("wb", RandScaled({3, 3, 16, 16}, 24, 0.2f))},
                     ConvAttrs("NHWC", "SAME")));
  const backend::cuda::GpuArch arch = backend::cuda::ArchOf(0);
  const bool fp8_kernels = arch.major >= 9 || (arch.major == 8 && arch.minor >= 9);
  for (const auto& [precision, by_timing] :
       {std::pair{Precision::kINT8, false}, std::pair{Precision::kINT8, true}, std::pair{Precision::kFP8, false}}) {
    const bool fp8 = precision == Precision::kFP8;
    if (fp8 && !fp8_kernels) {
      std::cout << "FP8 skipped: no float8 convolutions before compute capability 8.9\n";
      continue;
    }
    convert::CalibrationTable table;
    convert::Quantization quantization;
    const auto g = CalibratedInt8(b, shape, 200, &table, &quantization,
                                  fp8 ? ir::QuantFormat::kFloat8E4M3 : ir::QuantFormat::kInt8);
    EXPECT_EQ(quantization.weights, 3);
    auto engine = backend::cuda::CudaBackend().Compile(*g, ExactProfile({shape}), Int8Options(precision, by_timing));
    const auto& e = dynamic_cast<const backend::cuda::CudaEngine&>(*engine);
    std::cout << PrecisionName(precision) << ", by timing " << by_timing << "; note: " << engine->precision_note()
              << "\n";
    const std::string kind = fp8 ? " fp8" : " int8";
    bool pool_8bit = false, readers_8bit = true;
    for (const auto& step : e.steps()) {
      std::cout << "  " << step.nodes << ": " << step.kernel << "\n";
      if (step.nodes == "pool") pool_8bit = step.kernel == "nvrtc pool, 8-bit out";
      if (step.nodes == "after_a" || step.nodes == "after_b")
        readers_8bit = readers_8bit && step.kernel.find(kind) != std::string::npos &&
                       step.kernel.find("refused") == std::string::npos;
    }
    EXPECT_TRUE(pool_8bit) << "the pool does not write 8 bits";
    EXPECT_TRUE(readers_8bit) << "a reader of the pool's 8-bit result does not run" << kind;
    runtime::ReferenceExecutor ref(g);
    for (uint32_t seed : {5u, 6u}) {
      const std::vector<Tensor> in = {RandF32(shape, seed)};
      const auto want = ref.Run(in);
      const auto got = cudatest::RunOnGpu(*engine, in);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        const double err = cudatest::RelativeL2(got[i], want[i]);
        std::cout << "  seed " << seed << " output " << i << ": rel L2 " << err << "\n";
        EXPECT_LT(err, fp8 ? kE4M3StackedError : 1e-2) << "output " << i;
      }
    }
  }
}

// A ResNet block with a projection shortcut: x -> conv a (1x1) -> Relu -> conv b (1x1), x -> conv
// ds (1x1), Add -> Relu -> conv after (3x3). Neither b's nor ds's result has a quantized reader,
// but calibration gave both a range: whichever comes first writes int8 (E4M3 in FP8 engines), and
// the other reads it as its 8-bit residual (both topological orders).
TEST(CudaInt8Gpu, ProjectionShortcutIsAnInt8ResidualFromItsCalibratedRange) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  const Shape shape{2, 10, 10, 16};
  const backend::cuda::GpuArch arch = backend::cuda::ArchOf(0);
  const bool fp8_kernels = arch.major >= 9 || (arch.major == 8 && arch.minor >= 9);
  for (const auto& [precision, shortcut_first] :
       {std::pair{Precision::kINT8, true}, std::pair{Precision::kINT8, false}, std::pair{Precision::kFP8, true},
        std::pair{Precision::kFP8, false}}) {
    const bool fp8 = precision == Precision::kFP8;
    if (fp8 && !fp8_kernels) {
      std::cout << "FP8 skipped: no float8 convolutions before compute capability 8.9\n";
      continue;
    }
    Builder b;
    const ir::ValueId x = b.Input("x", shape);
    auto shortcut = [&] {
      return b.Op("Conv2D", "ds",
                  {x, b.Const("wd", RandScaled({1, 1, 16, 32}, 31, 0.3f)), b.Const("bd", RandScaled({32}, 32, 0.1f))},
                  ConvAttrs("NHWC", "VALID"));
    };
    const ir::ValueId ds_first = shortcut_first ? shortcut() : ir::kNoValue;
    ir::ValueId a =
        b.Op("Conv2D", "a", {x, b.Const("wa", RandScaled({1, 1, 16, 16}, 33, 0.3f))}, ConvAttrs("NHWC", "VALID"));
    a = b.Op("Relu", "a_relu", {a});
    const ir::ValueId conv_b =
        b.Op("Conv2D", "b", {a, b.Const("wb", RandScaled({1, 1, 16, 32}, 34, 0.3f))}, ConvAttrs("NHWC", "VALID"));
    const ir::ValueId ds = shortcut_first ? ds_first : shortcut();
    const ir::ValueId sum = b.Op("Relu", "join_relu", {b.Op("Add", "join", {conv_b, ds})});
    b.Output("y", b.Op("Conv2D", "after", {sum, b.Const("wf", RandScaled({3, 3, 32, 16}, 35, 0.2f))},
                       ConvAttrs("NHWC", "SAME")));
    convert::CalibrationTable table;
    convert::Quantization quantization;
    const auto g = CalibratedInt8(b, shape, 300, &table, &quantization,
                                  fp8 ? ir::QuantFormat::kFloat8E4M3 : ir::QuantFormat::kInt8);
    EXPECT_EQ(quantization.residual_ranges, 2);
    auto engine = backend::cuda::CudaBackend().Compile(*g, ExactProfile({shape}), Int8Options(precision));
    const auto& e = dynamic_cast<const backend::cuda::CudaEngine&>(*engine);
    std::cout << PrecisionName(precision) << ", shortcut first " << shortcut_first
              << "; note: " << engine->precision_note() << "\n";
    const std::string first = shortcut_first ? "ds" : "b", second = shortcut_first ? "b" : "ds";
    bool first_int8_out = false, second_int8_residual = false;
    for (const auto& step : e.steps()) {
      std::cout << "  " << step.nodes << ": " << step.kernel << "\n";
      if (step.nodes == first) first_int8_out = step.kernel.find("8-bit out") != std::string::npos;
      if (step.nodes.rfind(second + "+join", 0) == 0)
        second_int8_residual = step.kernel.find("8-bit residual") != std::string::npos;
    }
    EXPECT_TRUE(first_int8_out) << first << " does not write int8 for the residual Add";
    EXPECT_TRUE(second_int8_residual) << second << " does not absorb the Add reading an 8-bit residual";
    // The reference runs the quantized graph, where the branch stays float: the 8-bit residual
    // adds its rounding to the sum, at most its relative RMS quantization error on the
    // calibration data relative to the output (int8: the table's estimate; E4M3: 2^-4 / sqrt(3),
    // kE4M3ResidualError), on top of the 1e-2 of the other tests.
    const double stored_error =
        fp8 ? kE4M3ResidualError : table.tensors.at(b.g->value(shortcut_first ? ds : conv_b).name).error;
    ASSERT_GE(stored_error, 0);
    const double bound = 1e-2 + stored_error;
    std::cout << "  bound " << bound << " (the 8-bit residual's quantization error " << stored_error << ")\n";
    runtime::ReferenceExecutor ref(g);
    for (uint32_t seed : {7u, 8u}) {
      const std::vector<Tensor> in = {RandF32(shape, seed)};
      const auto want = ref.Run(in);
      const auto got = cudatest::RunOnGpu(*engine, in);
      ASSERT_EQ(got.size(), want.size());
      const double err = cudatest::RelativeL2(got[0], want[0]);
      std::cout << "  seed " << seed << ": rel L2 " << err << "\n";
      EXPECT_LT(err, bound);
    }
  }
}

constexpr backend::cuda::QuantizedOperands kInt8Operands = backend::cuda::kLibraryOperands[0];

// An int8 convolution with a quantized convolution's epilogue against the same arithmetic on the
// host: int32 sums are exact, so each result is the host's up to float rounding of the scaled sum
// (one int8 step where it lands on a rounding tie). `launch` gets device operands: x NHWC, the
// filter KRSC, residual and y NHWC.
using Int8ConvLaunch = std::function<void(const void* x, const void* filter, const float* alpha, const float* bias,
                                          const void* residual, float beta, void* y)>;
void ExpectInt8ConvMatchesTheIntegerArithmetic(const backend::cuda::QuantizedConvShape& s, const Int8ConvLaunch& launch,
                                               const std::string& what) {
  const auto full_range = [](const Shape& dims, uint32_t seed) {  // int8 values over [-128, 127]
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> value(-128, 127);
    Tensor t(DType::kInt8, dims);
    for (int64_t e = 0; e < t.num_elements(); ++e) t.data<int8_t>()[e] = static_cast<int8_t>(value(rng));
    return t;
  };
  const Tensor x = full_range({s.n, s.h, s.w, s.c}, 41), filter = full_range({s.k, s.r, s.s, s.c}, 42);
  const Tensor residual = full_range({s.n, s.p, s.q, s.k}, 43);
  // Sums spread about 74 * 74 * sqrt(r*s*c) (int8 values' deviation squared): scales of up to
  // 8e-3 / sqrt(r*s*c) put most results inside int8.
  const float scale = 8e-3f / std::sqrt(static_cast<float>(s.r * s.s * s.c));
  const Tensor alpha = RandScaled({s.k}, 44, scale), bias = RandScaled({s.k}, 45, 20.0f);
  const float beta = 0.7f;
  const Tensor dx = cudatest::ToDevice(x), dfilter = cudatest::ToDevice(filter), dres = cudatest::ToDevice(residual);
  const Tensor dalpha = cudatest::ToDevice(alpha), dbias = cudatest::ToDevice(bias);
  Tensor dy = backend::cuda::Services(0).allocator().AllocateTensor(DType::kInt8, {s.n, s.p, s.q, s.k});
  ASSERT_EQ(cudaMemset(dy.raw_data(), 0x55, static_cast<size_t>(dy.num_elements())), cudaSuccess);
  launch(dx.raw_data(), dfilter.raw_data(), dalpha.data<float>(), s.bias ? dbias.data<float>() : nullptr,
         s.residual ? dres.raw_data() : nullptr, beta, dy.raw_data());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  const Tensor y = cudatest::ToHost(dy);
  const int8_t* xv = x.data<int8_t>();
  const int8_t* fv = filter.data<int8_t>();
  int64_t exact = 0, off_by_one = 0, clipped = 0, wrong = 0;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t p = 0; p < s.p; ++p)
      for (int64_t q = 0; q < s.q; ++q)
        for (int64_t k = 0; k < s.k; ++k) {
          int64_t acc = 0;
          for (int64_t r = 0; r < s.r; ++r)
            for (int64_t t = 0; t < s.s; ++t) {
              const int64_t ih = p * s.stride_h - s.pad_top + r * s.dilation_h;
              const int64_t iw = q * s.stride_w - s.pad_left + t * s.dilation_w;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;  // zero padding
              for (int64_t c = 0; c < s.c; ++c)
                acc += int64_t{xv[((n * s.h + ih) * s.w + iw) * s.c + c]} * fv[((k * s.r + r) * s.s + t) * s.c + c];
            }
          const int64_t at = ((n * s.p + p) * s.q + q) * s.k + k;
          double v = alpha.data<float>()[k] * static_cast<double>(acc);
          if (s.bias) v += bias.data<float>()[k];
          if (s.residual) v += beta * residual.data<int8_t>()[at];
          if (s.relu) v = std::max(v, 0.0);
          const double want = std::clamp(std::nearbyint(v), -128.0, 127.0);
          clipped += want == -128 || want == 127;
          const double got = y.data<int8_t>()[at];
          if (got == want) {
            ++exact;
          } else if (std::fabs(got - want) == 1 && std::fabs(std::fabs(v - std::trunc(v)) - 0.5) < 1e-3) {
            ++off_by_one;
          } else if (++wrong <= 5) {
            ADD_FAILURE() << what << ": y[" << n << "][" << p << "][" << q << "][" << k << "] = " << got << ", want "
                          << want << " (" << v << ")";
          }
        }
  std::cout << "  " << what << ": " << exact << " exact, " << off_by_one << " one step off at a tie, " << clipped
            << " saturated\n";
  EXPECT_EQ(wrong, 0) << what;
  EXPECT_LT(clipped, y.num_elements() / 4) << what << ": the test's values saturate too often to say much";
}

// A 1x1 stride-1 convolution over [2, 20, 25] pixels (1000) from 64 to 48 channels.
backend::cuda::QuantizedConvShape ProductShape(bool residual, bool relu, bool bias, int64_t c = 64, int64_t k = 48) {
  backend::cuda::QuantizedConvShape s;
  s.n = 2;
  s.h = s.p = 20;
  s.w = s.q = 25;
  s.c = c;
  s.k = k;
  s.residual = residual;
  s.relu = relu;
  s.bias = bias;
  return s;
}

// The library kernel the timing chose for each form (a 1x1 convolution, then a 3x3 one). With
// CUTLASS's kernels on Hopper every form runs; cuBLASLt 13 alone refuses the product without a
// residual (its alpha-vector mode with beta zero).
TEST(CudaInt8Gpu, Int8LibraryConvolutionsMatchTheIntegerArithmetic) {
  SKIP_WITHOUT_GPU();
  backend::cuda::QuantizedConvShape three_by_three = ProductShape(true, true, true, 32, 64);
  three_by_three.r = three_by_three.s = 3;
  three_by_three.pad_top = three_by_three.pad_left = three_by_three.pad_bottom = three_by_three.pad_right = 1;
  int ran = 0;
  for (const backend::cuda::QuantizedConvShape& shape :
       {ProductShape(false, false, true), ProductShape(true, true, true), three_by_three}) {
    std::optional<backend::cuda::QuantizedLibraryConv> conv;
    try {
      conv.emplace(shape);
    } catch (const Error& e) {
      // Refused forms (and GPUs before Turing) leave convolutions on cuDNN's plans.
      std::cout << "no library int8 kernel of this form on this GPU: " << e.what() << "\n";
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
      continue;
    }
    ++ran;
    std::cout << shape.ToString() << ": " << conv->kernel() << ", " << conv->microseconds() << " us\n";
    ExpectInt8ConvMatchesTheIntegerArithmetic(
        shape,
        [&](const void* x, const void* filter, const float* alpha, const float* bias, const void* residual, float beta,
            void* y) { conv->Launch(x, filter, alpha, bias, residual, beta, y, nullptr); },
        conv->kernel());
  }
  const backend::cuda::GpuArch arch = backend::cuda::ArchOf(0);
  if (arch.major >= 9) {
    EXPECT_GT(ran, 0) << "no library int8 kernel ran on this Hopper GPU";
  }
  if (arch.major == 9 && arch.minor == 0 && backend::cuda::CutlassQuantizedConvConfigs(kInt8Operands) > 0) {
    EXPECT_EQ(ran, 3) << "CUTLASS's sm90 kernels take every form";
  }
}

// CUTLASS's sm90 kernels run on compute capability 9.0 only, in builds that have them.
bool SkipWithoutCutlass(int configs) {
  if (configs == 0) {
    std::cout << "this build has no CUTLASS kernels (no CUTLASS headers or nvcc when configured)\n";
    return true;
  }
  const backend::cuda::GpuArch arch = backend::cuda::ArchOf(0);
  if (!(arch.major == 9 && arch.minor == 0)) {
    std::cout << "CUTLASS's sm90 int8 kernels need compute capability 9.0; this GPU is " << arch.major << "."
              << arch.minor << "\n";
    return true;
  }
  return false;
}

// Runs a CUTLASS kernel once with a workspace of the size it asks for.
template <typename Args, typename WorkspaceFn, typename RunFn>
void RunCutlassKernel(const Args& args, WorkspaceFn workspace_bytes, RunFn run, const std::string& what) {
  const size_t bytes = workspace_bytes(args);
  void* workspace = nullptr;
  if (bytes > 0) {
    ASSERT_EQ(cudaMalloc(&workspace, bytes), cudaSuccess);
  }
  const char* error = run(args, workspace);
  EXPECT_EQ(error, nullptr) << what << ": " << error;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  if (workspace) cudaFree(workspace);
}

// CUTLASS product configuration `config` run on a 1x1 shape's device operands (shape.operands).
Int8ConvLaunch CutlassProductLaunch(int config, const backend::cuda::QuantizedConvShape& shape,
                                    const std::string& what) {
  return [=](const void* x, const void* filter, const float* alpha, const float* bias, const void* residual, float beta,
             void* y) {
    backend::cuda::CutlassQuantizedGemmArgs args;
    args.operands = shape.operands;
    args.pixels = shape.n * shape.h * shape.w;
    args.channels = shape.k;
    args.k = shape.c;
    args.x = x;
    args.w = filter;
    args.alpha = alpha;
    args.bias = bias;
    args.c = residual;
    args.beta = beta;
    args.d = y;
    args.relu = shape.relu;
    ASSERT_TRUE(backend::cuda::CutlassQuantizedGemmCanRun(config, args, 0)) << what;
    RunCutlassKernel(
        args, [&](const auto& a) { return backend::cuda::CutlassQuantizedGemmWorkspaceBytes(config, a, 0); },
        [&](const auto& a, void* ws) { return backend::cuda::CutlassQuantizedGemmRun(config, a, ws, 0, nullptr); },
        what);
  };
}

// CUTLASS convolution configuration `config` run on a shape's device operands, or nullopt (said)
// when the configuration refuses the shape.
std::optional<Int8ConvLaunch> CutlassConvLaunch(int config, const backend::cuda::QuantizedConvShape& shape,
                                                const std::string& what) {
  backend::cuda::CutlassQuantizedConvArgs args;
  args.operands = shape.operands;
  args.geometry = shape;
  args.relu = shape.relu;
  if (!backend::cuda::CutlassQuantizedConvCanRun(config, args, 0)) {
    std::cout << "  " << what << ": refused by CUTLASS\n";
    return std::nullopt;
  }
  return [=](const void* x, const void* filter, const float* alpha, const float* bias, const void* residual, float beta,
             void* y) mutable {
    args.x = x;
    args.filter = filter;
    args.alpha = alpha;
    args.bias = bias;
    args.residual = residual;
    args.beta = beta;
    args.y = y;
    RunCutlassKernel(
        args, [&](const auto& a) { return backend::cuda::CutlassQuantizedConvWorkspaceBytes(config, a, 0); },
        [&](const auto& a, void* ws) { return backend::cuda::CutlassQuantizedConvRun(config, a, ws, 0, nullptr); },
        what);
  };
}

// Every CUTLASS sm90 product configuration in every epilogue form (residual, ReLU, bias, each on
// or off), on sizes that leave partial tiles in all three dimensions.
TEST(CudaInt8Gpu, CutlassInt8ProductsMatchTheIntegerArithmetic) {
  SKIP_WITHOUT_GPU();
  const int configs = backend::cuda::CutlassQuantizedGemmConfigs(kInt8Operands);
  if (SkipWithoutCutlass(configs)) GTEST_SKIP() << "no CUTLASS sm90 kernels here (above)";
  for (int config = 0; config < configs; ++config)
    for (int form = 0; form < 8; ++form) {
      const backend::cuda::QuantizedConvShape shape =
          ProductShape(form & 1, form & 2, form & 4, form % 2 ? 64 : 208, 80);
      const std::string what = fmt::format(
          "{} ({})", backend::cuda::CutlassQuantizedGemmConfigName(kInt8Operands, config), shape.ToString());
      ExpectInt8ConvMatchesTheIntegerArithmetic(shape, CutlassProductLaunch(config, shape, what), what);
    }
}

// Convolution windows for the CUTLASS kernel tests: padded, strided and dilated, over [2, 13, 17]
// inputs.
struct Window {
  int64_t r, s, stride, dilation, pad_before, pad_after, channels;
};
constexpr Window kWindows[] = {{3, 3, 1, 1, 1, 1, 144},
                               {3, 3, 2, 1, 0, 1, 64},
                               {1, 1, 2, 1, 0, 0, 256},
                               {3, 1, 1, 2, 2, 2, 64},
                               {1, 1, 1, 1, 0, 0, 256}};

// A window's shape in epilogue form `form` (residual, ReLU, bias: bits 0, 1, 2), 80 output channels.
backend::cuda::QuantizedConvShape WindowShape(const Window& win, int form) {
  backend::cuda::QuantizedConvShape shape = ProductShape(form & 1, form & 2, form & 4, win.channels, 80);
  shape.h = 13;
  shape.w = 17;
  shape.r = win.r;
  shape.s = win.s;
  shape.stride_h = shape.stride_w = win.stride;
  shape.dilation_h = shape.dilation_w = win.dilation;
  shape.pad_top = shape.pad_left = win.pad_before;
  shape.pad_bottom = shape.pad_right = win.pad_after;
  shape.p =
      backend::cuda::ConvGeometry::OutputSize(shape.h, win.r, win.pad_before, win.pad_after, win.stride, win.dilation);
  shape.q =
      backend::cuda::ConvGeometry::OutputSize(shape.w, win.s, win.pad_before, win.pad_after, win.stride, win.dilation);
  return shape;
}

// Every CUTLASS sm90 convolution configuration on padded, strided and dilated windows in each
// epilogue form; a configuration may refuse input channels its K step does not divide, but each
// window runs on some configuration.
TEST(CudaInt8Gpu, CutlassInt8ConvolutionsMatchTheIntegerArithmetic) {
  SKIP_WITHOUT_GPU();
  const int configs = backend::cuda::CutlassQuantizedConvConfigs(kInt8Operands);
  if (SkipWithoutCutlass(configs)) GTEST_SKIP() << "no CUTLASS sm90 kernels here (above)";
  for (size_t wi = 0; wi < std::size(kWindows); ++wi) {
    int ran = 0;
    for (int config = 0; config < configs; ++config) {
      const backend::cuda::QuantizedConvShape shape = WindowShape(kWindows[wi], static_cast<int>(wi) + config);
      const std::string what = fmt::format(
          "{} ({})", backend::cuda::CutlassQuantizedConvConfigName(kInt8Operands, config), shape.ToString());
      const std::optional<Int8ConvLaunch> launch = CutlassConvLaunch(config, shape, what);
      if (!launch) continue;
      ++ran;
      ExpectInt8ConvMatchesTheIntegerArithmetic(shape, *launch, what);
    }
    EXPECT_GT(ran, 0) << "no CUTLASS configuration took window " << wi;
  }
}

// An E4M3 convolution with a quantized convolution's epilogue (shape.operands: E4M3 or float16
// output, E4M3 or float16 residual) against the same arithmetic on the host. Products of E4M3 values are exact
// in float; the kernels' float sums differ from the host's double ones by their rounding, and the
// tensor cores keep fewer bits while they accumulate (CUTLASS's convolutions do not promote the
// sums to float registers between k blocks). So each result must be what the epilogue makes of
// some sum within 4e-3 of the sum of the terms' magnitudes (times alpha) of the exact one: the
// epilogue is monotone, so it lies between its values at the two ends. With E4M3 output nearly all
// are the exact sum's rounding (ties aside).
void ExpectFp8ConvMatchesTheFloatArithmetic(const backend::cuda::QuantizedConvShape& s, const Int8ConvLaunch& launch,
                                            const std::string& what) {
  using backend::cuda::KernelStorage;
  ASSERT_EQ(s.operands.input, KernelStorage::kFloat8E4M3);
  const bool half_out = s.operands.output == KernelStorage::kFloat16;
  const bool half_residual = s.operands.residual == KernelStorage::kFloat16;
  const auto e4m3 = [](const Shape& dims, uint32_t seed, float spread) {  // E4M3 bytes of N(0, spread) values
    std::mt19937 rng(seed);
    std::normal_distribution<float> value(0.0f, spread);
    Tensor t(DType::kUInt8, dims);
    ir::elementwise::State state;
    for (int64_t e = 0; e < t.num_elements(); ++e)
      t.data<uint8_t>()[e] =
          ir::elementwise::RoundFloat8E4M3::Bits(ir::elementwise::RoundFloat8E4M3::Apply<float>(value(rng), state));
    return t;
  };
  const Tensor x = e4m3({s.n, s.h, s.w, s.c}, 51, 2.0f), filter = e4m3({s.k, s.r, s.s, s.c}, 52, 1.5f);
  Tensor residual;
  if (half_residual) {
    const Tensor r = RandScaled({s.n, s.p, s.q, s.k}, 53, 60.0f);
    residual = Tensor(DType::kFloat16, r.shape());
    for (int64_t e = 0; e < r.num_elements(); ++e) residual.data<Half>()[e] = Half(r.data<float>()[e]);
  } else {
    residual = e4m3({s.n, s.p, s.q, s.k}, 53, 40.0f);
  }
  const auto residual_at = [&](int64_t at) {
    return half_residual ? static_cast<float>(residual.data<Half>()[at]) : DecodeE4M3(residual.data<uint8_t>()[at]);
  };
  // Sums spread about 2 * 1.5 * sqrt(r*s*c): alpha puts most results near +-60, inside E4M3's 448.
  const float scale = 20.0f / std::sqrt(static_cast<float>(s.r * s.s * s.c));
  Tensor alpha = RandScaled({s.k}, 54, scale);
  for (int64_t k = 0; k < s.k; ++k) alpha.data<float>()[k] = std::fabs(alpha.data<float>()[k]) + scale / 4;
  const Tensor bias = RandScaled({s.k}, 55, 20.0f);
  const float beta = half_residual ? 1.0f : 0.7f;
  const size_t out_elem = half_out ? 2 : 1;
  const Tensor dx = cudatest::ToDevice(x), dfilter = cudatest::ToDevice(filter), dres = cudatest::ToDevice(residual);
  const Tensor dalpha = cudatest::ToDevice(alpha), dbias = cudatest::ToDevice(bias);
  Tensor dy = backend::cuda::Services(0).allocator().AllocateTensor(half_out ? DType::kFloat16 : DType::kUInt8,
                                                                    {s.n, s.p, s.q, s.k});
  ASSERT_EQ(cudaMemset(dy.raw_data(), 0x55, static_cast<size_t>(dy.num_elements()) * out_elem), cudaSuccess);
  launch(dx.raw_data(), dfilter.raw_data(), dalpha.data<float>(), s.bias ? dbias.data<float>() : nullptr,
         s.residual ? dres.raw_data() : nullptr, beta, dy.raw_data());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  const Tensor y = cudatest::ToHost(dy);
  std::vector<float> xv(static_cast<size_t>(x.num_elements())), fv(static_cast<size_t>(filter.num_elements()));
  for (size_t e = 0; e < xv.size(); ++e) xv[e] = DecodeE4M3(x.data<uint8_t>()[e]);
  for (size_t e = 0; e < fv.size(); ++e) fv[e] = DecodeE4M3(filter.data<uint8_t>()[e]);
  // What the epilogue stores for a sum v (before the conversion's own rounding for E4M3).
  ir::elementwise::State state;
  const auto store = [&](double v) -> double {
    if (s.relu) v = std::max(v, 0.0);
    if (half_out) return static_cast<float>(Half(static_cast<float>(v)));
    return ir::elementwise::RoundFloat8E4M3::Apply<float>(static_cast<float>(std::clamp(v, -448.0, 448.0)), state);
  };
  int64_t exact = 0, within = 0, wrong = 0, saturated = 0;
  double worst = 0;  // the largest |got - exact sum's value| over the tolerance
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t p = 0; p < s.p; ++p)
      for (int64_t q = 0; q < s.q; ++q)
        for (int64_t k = 0; k < s.k; ++k) {
          double acc = 0, magnitude = 0;
          for (int64_t r = 0; r < s.r; ++r)
            for (int64_t t = 0; t < s.s; ++t) {
              const int64_t ih = p * s.stride_h - s.pad_top + r * s.dilation_h;
              const int64_t iw = q * s.stride_w - s.pad_left + t * s.dilation_w;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;  // zero padding
              for (int64_t c = 0; c < s.c; ++c) {
                const double term =
                    static_cast<double>(xv[static_cast<size_t>(((n * s.h + ih) * s.w + iw) * s.c + c)]) *
                    fv[static_cast<size_t>(((k * s.r + r) * s.s + t) * s.c + c)];
                acc += term;
                magnitude += std::fabs(term);
              }
            }
          const int64_t at = ((n * s.p + p) * s.q + q) * s.k + k;
          const double a = alpha.data<float>()[k];
          double v = a * acc;
          if (s.bias) v += bias.data<float>()[k];
          if (s.residual) v += beta * residual_at(at);
          const double tolerance = 4e-3 * a * magnitude;
          const double got = half_out ? static_cast<double>(static_cast<float>(y.data<Half>()[at]))
                                      : DecodeE4M3(y.data<uint8_t>()[at]);
          const double want = store(v);
          saturated += !half_out && std::fabs(want) == 448;
          if (got == want) {
            ++exact;
          } else if (got >= store(v - tolerance) && got <= store(v + tolerance)) {
            ++within;
            worst = std::max(worst, std::fabs(got - want) / std::max(tolerance, 1e-30));
          } else if (++wrong <= 5) {
            ADD_FAILURE() << what << ": y[" << n << "][" << p << "][" << q << "][" << k << "] = " << got << ", want "
                          << want << " (sum " << v << ", tolerance " << tolerance << ")";
          }
        }
  std::cout << "  " << what << ": " << exact << " exact, " << within << " within the accumulation tolerance, "
            << saturated << " saturated\n";
  EXPECT_EQ(wrong, 0) << what;
  if (!half_out)
    EXPECT_LT(within, (exact + within) / 20) << what << ": E4M3 results should be the exact sums' roundings";
  EXPECT_LT(saturated, y.num_elements() / 4) << what << ": the test's values saturate too often to say much";
}

// Every CUTLASS sm90 E4M3 product and convolution configuration, for each float8 operand
// combination (E4M3 out with an E4M3 or float16 residual; float16 out and residual), in every
// epilogue form, on the int8 tests' sizes; then the library convolution (the kernel its timing
// chose) on a 1x1 and a 3x3.
TEST(CudaFp8Gpu, CutlassFp8KernelsMatchTheFloatArithmetic) {
  SKIP_WITHOUT_GPU();
  if (SkipWithoutCutlass(backend::cuda::CutlassQuantizedGemmConfigs(backend::cuda::kLibraryOperands[1])))
    GTEST_SKIP() << "no CUTLASS sm90 kernels here (above)";
  for (const backend::cuda::QuantizedOperands& operands : backend::cuda::kLibraryOperands) {
    if (operands.input != backend::cuda::KernelStorage::kFloat8E4M3) continue;
    const int products = backend::cuda::CutlassQuantizedGemmConfigs(operands);
    ASSERT_GT(products, 0) << backend::cuda::KernelStorageName(operands.output);
    for (int config = 0; config < products; ++config)
      for (int form = 0; form < 8; ++form) {
        backend::cuda::QuantizedConvShape shape = ProductShape(form & 1, form & 2, form & 4, form % 2 ? 64 : 208, 80);
        shape.operands = operands;
        const std::string what =
            fmt::format("{} ({})", backend::cuda::CutlassQuantizedGemmConfigName(operands, config), shape.ToString());
        ExpectFp8ConvMatchesTheFloatArithmetic(shape, CutlassProductLaunch(config, shape, what), what);
      }
    const int convs = backend::cuda::CutlassQuantizedConvConfigs(operands);
    for (size_t wi = 0; wi < std::size(kWindows); ++wi) {
      int ran = 0;
      for (int config = 0; config < convs; ++config) {
        backend::cuda::QuantizedConvShape shape = WindowShape(kWindows[wi], static_cast<int>(wi) + config);
        shape.operands = operands;
        const std::string what =
            fmt::format("{} ({})", backend::cuda::CutlassQuantizedConvConfigName(operands, config), shape.ToString());
        const std::optional<Int8ConvLaunch> launch = CutlassConvLaunch(config, shape, what);
        if (!launch) continue;
        ++ran;
        ExpectFp8ConvMatchesTheFloatArithmetic(shape, *launch, what);
      }
      EXPECT_GT(ran, 0) << "no CUTLASS configuration took window " << wi;
    }
    backend::cuda::QuantizedConvShape three_by_three = ProductShape(true, true, true, 32, 64);
    three_by_three.r = three_by_three.s = 3;
    three_by_three.pad_top = three_by_three.pad_left = three_by_three.pad_bottom = three_by_three.pad_right = 1;
    for (backend::cuda::QuantizedConvShape shape : {ProductShape(false, false, true), three_by_three}) {
      shape.operands = operands;
      const backend::cuda::QuantizedLibraryConv conv(shape);
      EXPECT_EQ(conv.library(), "cutlass");
      std::cout << shape.ToString() << ": " << conv.kernel() << ", " << conv.microseconds() << " us\n";
      ExpectFp8ConvMatchesTheFloatArithmetic(
          shape,
          [&](const void* x, const void* filter, const float* alpha, const float* bias, const void* residual,
              float beta, void* y) { conv.Launch(x, filter, alpha, bias, residual, beta, y, nullptr); },
          conv.kernel());
    }
  }
}

// The quantize kernel's E4M3 bytes (one conversion instruction on Ada and Hopper, the formula
// before them) are RoundFloat8E4M3's on every float16 value, at a scale that lands them on rounding
// ties, subnormals and saturation; float32 inputs of the same values alike.
TEST(CudaFp8Gpu, QuantizeKernelWritesRoundFloat8E4M3BytesForEveryFloat16) {
  SKIP_WITHOUT_GPU();
  Tensor halves(DType::kFloat16, {65536});
  Tensor floats(DType::kFloat32, {65536});
  for (int64_t i = 0; i < 65536; ++i) {
    halves.data<Half>()[i].bits = static_cast<uint16_t>(i);
    floats.data<float>()[i] = static_cast<float>(halves.data<Half>()[i]);
  }
  for (DType dtype : {DType::kFloat16, DType::kFloat32})
    for (float inv_scale : {1.0f, 0.375f, 1024.0f}) {
      const backend::cuda::QuantizeKernel kernel(dtype, ir::QuantFormat::kFloat8E4M3, /*dequantize=*/false,
                                                 backend::cuda::ArchOf(0));
      const Tensor& in = dtype == DType::kFloat16 ? halves : floats;
      const Tensor din = cudatest::ToDevice(in);
      Tensor dout = backend::cuda::Services(0).allocator().AllocateTensor(DType::kUInt8, {65536});
      backend::cuda::QuantizeParams p;
      p.inv_scale = inv_scale;
      p.qmin = -448;
      p.qmax = 448;
      kernel.Launch(din.raw_data(), dout.raw_data(), 65536, p, nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const Tensor out = cudatest::ToHost(dout);
      ir::elementwise::State state;
      int wrong = 0;
      for (int64_t i = 0; i < 65536; ++i) {
        const float v = floats.data<float>()[i] * inv_scale;
        const uint8_t want =
            ir::elementwise::RoundFloat8E4M3::Bits(ir::elementwise::RoundFloat8E4M3::Apply<float>(v, state));
        const uint8_t got = out.data<uint8_t>()[i];
        const bool both_nan = std::isnan(v) && (got & 0x7F) == 0x7F;
        if (got != want && !both_nan && ++wrong <= 5)
          ADD_FAILURE() << DTypeName(dtype) << " x " << inv_scale << ": " << v << " -> byte " << int{got} << ", want "
                        << int{want};
      }
      EXPECT_EQ(wrong, 0) << DTypeName(dtype) << " x " << inv_scale;
    }
}

TEST(CudaInt8Gpu, FloatGraphRequestedAsInt8RunsFp16AndSaysWhy) {
  SKIP_WITHOUT_GPU();
  const Builder b = BuildConvNetwork();
  auto engine = backend::cuda::CudaBackend().Compile(*b.g, ExactProfile({kX, kZ, kS}), Int8Options());
  EXPECT_EQ(engine->precision(), Precision::kFP16);
  EXPECT_TRUE(engine->quantized_layers().empty());
  EXPECT_NE(engine->precision_note().find("no convolution of the engine has a quantized input"), std::string::npos)
      << engine->precision_note();
  // The NCHW input z is converted to float16 and transposed to NHWC in one kernel.
  const auto& e = dynamic_cast<const backend::cuda::CudaEngine&>(*engine);
  bool converted_transposed = false;
  for (const auto& s : e.steps()) {
    std::cout << "  " << s.nodes << ": " << s.kernel << "\n";
    converted_transposed =
        converted_transposed || (s.kernel == "nvrtc transpose (1 ops)" && s.nodes.find("to_low") != std::string::npos);
  }
  EXPECT_TRUE(converted_transposed) << "z's conversion and transpose run as two kernels";
  const auto in = Inputs(2);
  const auto want = runtime::ReferenceExecutor(b.g).Run(in);
  const auto got = cudatest::RunOnGpu(*engine, in);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_LT(cudatest::RelativeL2(got[i], want[i]), 5e-3) << "output " << i;
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
