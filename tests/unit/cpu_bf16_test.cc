// BF16 CPU engines. On a CPU with native BF16 (avx512_bf16 / AMX-BF16) convolutions and matrix
// products run oneDNN primitives on bf16 src / weights: the engine reports BF16, its results
// differ from the FP32 engine's (bf16 arithmetic happened) and stay close to them. Elsewhere a
// BF16 request runs FP32 with a note. Engines for a BF16 CPU are also built here with the
// features of one (CpuEngine takes the CPU features): where oneDNN cannot make bf16 primitives
// (no AVX-512) every step falls back to f32 and the engine says so.
#include <fmt/format.h>

#include <cmath>

#include "backend/cpu/passes/passes.h"
#include "backend/cpu/plan_serialization.h"
#include "ir/graph_util.h"
#include "tests/unit/cpu_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using namespace cputest;
using backend::cpu::CpuBackend;
using backend::cpu::CpuEngine;
using backend::cpu::CpuFeatures;
using backend::cpu::HostCpu;

const Shape kX{1, 16, 16, 8};

// conv 3x3 (NHWC, bias, Relu) -> Reshape [256,16] -> MatMul [16,32] + bias -> output "mm";
// Reshape [8,32,32] -> BatchMatMul(r, r, adj_y) -> output "bmm"; NCHW conv of a second input
// (blocked layouts) -> output "nchw".
Builder BuildConvMatMul() {
  Builder b;
  const ir::ValueId x = b.Input("x", {1, 16, 16, 8});
  ir::ValueId c = b.Op("Conv2D", "conv", {x, b.Const("w", RandScaled({3, 3, 8, 16}, 7, 0.2f))}, ConvAttrs("NHWC", "SAME"));
  c = b.Op("Add", "conv_bias", {c, b.Const("cb", RandScaled({16}, 8, 0.1f))});
  c = b.Op("Relu", "conv_relu", {c});
  const ir::ValueId r = b.Op("Reshape", "rows", {c, b.Const("rows_shape", nntest::I32({2}, {256, 16}))});
  ir::ValueId m = b.Op("MatMul", "fc", {r, b.Const("k", RandScaled({16, 32}, 9, 0.3f))});
  m = b.Op("Add", "fc_bias", {m, b.Const("kb", RandScaled({32}, 10, 0.1f))});
  b.Output("mm", m);
  const ir::ValueId r3 = b.Op("Reshape", "heads", {m, b.Const("heads_shape", nntest::I32({3}, {8, 32, 32}))});
  ir::AttrMap adj;
  adj.Set("adj_y", true);
  b.Output("bmm", b.Op("BatchMatMul", "bmm", {r3, r3}, adj));
  const ir::ValueId z = b.Input("z", {1, 16, 12, 12});
  ir::ValueId n = b.Op("Conv2D", "conv_nchw", {z, b.Const("wn", RandScaled({3, 3, 16, 16}, 11, 0.1f))}, ConvAttrs("NCHW", "SAME"));
  b.Output("nchw", b.Op("Relu", "nchw_relu", {n}));
  return b;
}

std::vector<Tensor> Inputs() { return {RandF32(kX, 1), RandF32({1, 16, 12, 12}, 2)}; }

backend::Profile ProfileOf() { return ExactProfile({kX, {1, 16, 12, 12}}); }

backend::CompileOptions WithPrecision(Precision precision) {
  backend::CompileOptions options;
  options.precision = precision;
  return options;
}

// An engine built for `cpu` (the passes as CpuBackend::Compile runs them).
std::unique_ptr<CpuEngine> EngineFor(const Builder& b, Precision precision, const CpuFeatures& cpu) {
  ir::Graph work = ir::CloneGraph(*b.g);
  auto stats = backend::cpu::OptimizeForCpu(work);
  return std::make_unique<CpuEngine>(std::make_shared<const ir::Graph>(ir::CloneGraph(work)), ProfileOf(),
                                     WithPrecision(precision), std::move(stats), backend::cpu::HashSegment(*b.g), cpu);
}

CpuFeatures FakeSapphireRapids() {
  CpuFeatures spr = HostCpu();
  spr.avx512f = spr.avx512_bf16 = spr.amx_bf16 = true;
  return spr;
}

const char* kOneDnnSteps[] = {"conv", "fc", "bmm", "conv_nchw"};

TEST(CpuBf16, NoNativeBf16RunsFp32WithNote) {
  if (HostCpu().native_bf16()) GTEST_SKIP() << "this CPU has native BF16 (CpuBf16.ComputesInBf16 covers it)";
  const Builder b = BuildConvMatMul();
  CpuBackend cpu;
  auto bf16 = cpu.Compile(*b.g, ProfileOf(), WithPrecision(Precision::kBF16));
  auto fp32 = cpu.Compile(*b.g, ProfileOf(), {});
  EXPECT_EQ(bf16->precision(), Precision::kFP32);
  EXPECT_EQ(bf16->precision_note(), "BF16 requested; this CPU (" + cpu.device() + ") has no native BF16 arithmetic, engine runs FP32");
  EXPECT_TRUE(dynamic_cast<const CpuEngine&>(*bf16).bf16_steps().empty());
  const auto in = Inputs();
  const auto got = bf16->Execute(in), want = fp32->Execute(in);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(BitwiseEqual(got[i], want[i])) << "output " << i;
}

TEST(CpuBf16, ComputesInBf16) {
  if (!HostCpu().native_bf16()) GTEST_SKIP() << "this CPU (" << backend::cpu::DeviceString(HostCpu()) << ") has no native BF16";
  const Builder b = BuildConvMatMul();
  CpuBackend cpu;
  auto bf16 = cpu.Compile(*b.g, ProfileOf(), WithPrecision(Precision::kBF16));
  auto fp32 = cpu.Compile(*b.g, ProfileOf(), {});
  const auto& e = dynamic_cast<const CpuEngine&>(*bf16);
  std::cout << e.Summary();
  // (a) the engine reports BF16, every convolution / matmul step computes bf16.
  EXPECT_EQ(bf16->precision(), Precision::kBF16);
  EXPECT_EQ(bf16->precision_note(), "");
  EXPECT_EQ(e.bf16_steps().size(), std::size(kOneDnnSteps)) << fmt::format("{}", fmt::join(e.bf16_steps(), ", "));
  for (const auto& s : e.steps())
    if (s.op != "Reshape" && s.op != "cpu.Transpose") {  // data movement: the NCHW conv's layout change
      EXPECT_NE(s.kernel.find("[bf16]"), std::string::npos) << s.node << ": " << s.kernel;
    }
  ExpectNoFallback(*bf16);
  // The FP32 engine is the reference executor's result (FP32 unchanged).
  runtime::ReferenceExecutor ref(b.g);
  const auto in = Inputs();
  const auto want = ref.Run(in);
  const auto f = fp32->Execute(in), got = bf16->Execute(in);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < got.size(); ++i) {
    ExpectClose(f[i], want[i], 1e-5, "fp32 output " + std::to_string(i));
    const double err = testutil::RelativeL2Error(got[i], f[i]);
    std::cout << fmt::format("output {}: rel L2 BF16 vs FP32 engine {:.3e}\n", i, err);
    EXPECT_GT(err, 1e-6) << "output " << i << ": bit-identical to FP32 (no bf16 arithmetic happened)";  // (b)
    EXPECT_LT(err, 2e-2) << "output " << i;                                                              // (c)
  }
  // Saved and reloaded (the engine file passes the engine's precision back): the same steps
  // run bf16 and the results are the same bits.
  auto loaded = cpu.Deserialize(*b.g, ProfileOf(), WithPrecision(Precision::kBF16), bf16->Serialize());
  EXPECT_EQ(loaded->precision(), Precision::kBF16);
  EXPECT_EQ(loaded->precision_note(), "");
  EXPECT_EQ(dynamic_cast<const CpuEngine&>(*loaded).bf16_steps(), e.bf16_steps());
  const auto again = loaded->Execute(in);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(BitwiseEqual(again[i], got[i])) << "output " << i;
}

// Without AVX-512 oneDNN 2.6 makes no bf16 convolution / matmul: an engine built for a BF16 CPU
// on such a machine falls back to f32 step by step, reports FP32 and names the steps.
TEST(CpuBf16, EveryStepFallsBackToF32WhereOneDnnHasNoBf16Kernel) {
  if (HostCpu().avx512f) GTEST_SKIP() << "oneDNN may make (emulated) bf16 primitives on AVX-512 CPUs";
  const Builder b = BuildConvMatMul();
  const CpuFeatures spr = FakeSapphireRapids();
  auto engine = EngineFor(b, Precision::kBF16, spr);
  EXPECT_EQ(engine->precision(), Precision::kFP32);
  EXPECT_EQ(engine->precision_note(),
            fmt::format("BF16 requested; oneDNN has no BF16 kernel on this CPU ({}) for the engine's convolutions / matrix products "
                        "(conv, fc, bmm, conv_nchw), engine runs FP32",
                        backend::cpu::DeviceString(spr)));
  EXPECT_TRUE(engine->bf16_steps().empty());
  for (const auto& s : engine->steps())
    if (s.op != "Reshape") {
      EXPECT_NE(s.kernel.find("[f32: "), std::string::npos) << s.node << ": " << s.kernel;
    }
  if (std::getenv("KILN_TEST_VERBOSE")) std::cout << engine->Summary();
  ExpectNoFallback(*engine);
  // f32 primitives: the FP32 engine's bits.
  auto fp32 = CpuBackend().Compile(*b.g, ProfileOf(), {});
  const auto in = Inputs();
  const auto got = engine->Execute(in), want = fp32->Execute(in);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(BitwiseEqual(got[i], want[i])) << "output " << i;
  // Reloaded: the same decisions and note.
  {
    auto plan = backend::cpu::DecodePlan(engine->Serialize());
    CpuEngine loaded(std::make_shared<const ir::Graph>(std::move(plan.graph)), ProfileOf(),
                     WithPrecision(Precision::kBF16), plan.pass_stats, plan.segment_hash, spr);
    EXPECT_EQ(loaded.precision(), engine->precision());
    EXPECT_EQ(loaded.precision_note(), engine->precision_note());
  }
}

// An engine without convolutions / matrix products has nothing that runs BF16.
TEST(CpuBf16, EngineWithoutConvOrMatMulRunsFp32) {
  Builder b;
  const ir::ValueId x = b.Input("x", {4, 8});
  b.Output("y", b.Op("Sigmoid", "sig", {b.Op("Mul", "scale", {x, b.Const("s", RandF32({8}, 3))})}));
  const CpuFeatures cpu = HostCpu().native_bf16() ? HostCpu() : FakeSapphireRapids();
  ir::Graph work = ir::CloneGraph(*b.g);
  auto stats = backend::cpu::OptimizeForCpu(work);
  CpuEngine engine(std::make_shared<const ir::Graph>(ir::CloneGraph(work)), ExactProfile({{4, 8}}),
                   WithPrecision(Precision::kBF16), stats, 0, cpu);
  EXPECT_EQ(engine.precision(), Precision::kFP32);
  EXPECT_EQ(engine.precision_note(),
            "BF16 requested; the engine has no convolution or matrix product (the steps that run BF16), engine runs FP32");
}

}  // namespace
}  // namespace kiln
