// The CUDA backend. Without a GPU: every elementwise op's formula compiles for the GPU through
// NVRTC for every dtype it accepts (the op headers must stay device-compilable). With a GPU:
// every elementwise op, fused chains and matrix products against the reference executor, and
// the engine contract (dynamic shapes, outputs written in place, refusals). GPU tests skip,
// saying so, where no GPU is visible.
#ifdef KILN_WITH_CUDA

#include "backend/cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "backend/cuda/attention_match.h"
#include "backend/cuda/conv_kernel.h"
#include "backend/cuda/cubin_cache.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/eltwise_codegen.h"
#include "backend/cuda/gather_kernel.h"
#include "backend/cuda/host_values.h"
#include "backend/cuda/matmul_act_kernel.h"
#include "backend/cuda/matmul_kernel.h"
#include "backend/cuda/matmul_siblings.h"
#include "backend/cuda/norm_kernel.h"
#include "backend/cuda/nvrtc_compiler.h"
#include "backend/cuda/pool_kernel.h"
#include "backend/cuda/precision_rewrite.h"
#include "backend/cuda/quantized_conv.h"
#include "backend/cuda/row_kernel.h"
#include "backend/cuda/timing_cache.h"
#include "backend/layer_profiler.h"
#include "ir/dtype_class.h"
#include "ir/ops/elementwise_ops.h"
#include "kiln/half.h"
#include "tests/unit/cpu_test_util.h"
#include "tests/unit/cuda_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

// The tests keep tactic choices in memory, never in the user's timing cache file: a choice an
// earlier run cached would skip the timing some tests check (set before any test builds).
[[maybe_unused]] const bool kMemoryOnlyTimingCache = [] { return ::setenv("KILN_TIMING_CACHE", "off", 1) == 0; }();

using backend::cuda::CudaBackend;
using backend::cuda::CudaEngine;
using cputest::Builder;
using cputest::ExactProfile;
using cudatest::RandomTensor;
using cudatest::RelativeL2;
using cudatest::RunOnGpu;
using cudatest::ToDevice;
using cudatest::ToHost;
namespace ew = ir::elementwise;

#define SKIP_WITHOUT_GPU()               \
  if (backend::cuda::DeviceCount() == 0) \
  GTEST_SKIP() << "no CUDA GPU visible on this machine: CUDA backend tests skipped"

const std::vector<DType> kGpuDTypes = {
    DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt8,   DType::kInt16, DType::kInt32,
    DType::kInt64,   DType::kUInt8,   DType::kUInt16,  DType::kUInt32,   DType::kUInt64, DType::kBool};

// Every op of the table that accepts `dtype` and cannot fail per element, applied to the
// program's inputs (0, or 0 and 1) in one program, so one compilation covers them all.
backend::cuda::EltwiseProgram AllOpsProgram(DType dtype) {
  backend::cuda::EltwiseProgram p;
  p.inputs = {dtype, dtype};
  for (const ew::OpInfo& op : ew::AllOps()) {
    if (!ir::InClass(dtype, op.types) || op.error || op.host_only) continue;
    backend::cuda::EltwiseStep s;
    s.op = &op;
    s.args = ew::Arity(op.pattern) == 1 ? std::vector<int>{0} : std::vector<int>{0, 1};
    s.param = op.param_default;
    p.steps.push_back(s);
  }
  return p;
}

TEST(CudaCodegen, EveryElementwiseOpCompilesForEveryDType) {
  int programs = 0, ops = 0;
  for (DType dtype : kGpuDTypes) {
    const auto program = AllOpsProgram(dtype);
    if (program.steps.empty()) continue;
    const std::string source = backend::cuda::GenerateEltwiseSource(program);
    for (backend::cuda::GpuArch arch : {backend::cuda::GpuArch{8, 0}, backend::cuda::GpuArch{9, 0}}) {
      try {
        EXPECT_FALSE(backend::cuda::CompileToCubin(source, "all_ops", arch).empty());
      } catch (const Error& e) {
        ADD_FAILURE() << DTypeName(dtype) << " for " << arch.Name() << ": " << e.what();
      }
    }
    ++programs;
    ops += static_cast<int>(program.steps.size());
  }
  EXPECT_EQ(programs, static_cast<int>(kGpuDTypes.size()));
  EXPECT_GT(ops, 150);  // the table has ~70 ops; most accept several dtypes
}

// The 32-bit kernel's division by a dim, emulated on the host: exact for every x < 2^31.
TEST(CudaCodegen, MagicDivisionIsExact) {
  std::mt19937_64 rng(5);
  std::vector<long long> divisors = {1, 2, 3, 5, 7, 12, 64, 127, 768, 3072, 50257, 65535, 65536, 1000003,
                                     (1LL << 30) + 1, (1LL << 31) - 1};
  for (int i = 0; i < 200; ++i) divisors.push_back(1 + static_cast<long long>(rng() % ((1ULL << 31) - 1)));
  for (long long d : divisors) {
    backend::cuda::EltwiseDims dims;
    dims.SetDim(0, d);
    std::vector<uint32_t> xs = {0, 1, static_cast<uint32_t>(d - 1), static_cast<uint32_t>(d),
                                static_cast<uint32_t>(std::min<long long>(d + 1, (1LL << 31) - 1)), (1U << 31) - 1};
    for (int k = 0; k < 200; ++k) xs.push_back(static_cast<uint32_t>(rng() % (1ULL << 31)));
    for (uint32_t x : xs) {
      const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(x) * dims.magic[0]) >> 32);
      const uint32_t q = static_cast<uint32_t>((static_cast<uint64_t>(hi) + x) >> dims.shift[0]);
      ASSERT_EQ(q, x / static_cast<uint64_t>(d)) << x << " / " << d;
    }
  }
}

TEST(CudaCodegen, CastsBetweenEveryPairOfDTypesCompile) {
  for (DType from : kGpuDTypes) {
    backend::cuda::EltwiseProgram p;
    p.inputs = {from};
    for (DType to : kGpuDTypes) p.steps.push_back({nullptr, {0}, 0, to, to == DType::kFloat16});
    p.steps.push_back({nullptr, {0, 0, 0}, 0});  // Select: not with a non-bool condition
    if (from != DType::kBool) {
      testutil::ExpectError([&] { backend::cuda::GenerateEltwiseSource(p); }, ErrorCode::kInvalidArgument,
                            {"Select needs a bool condition"});
      p.steps.pop_back();
    }
    try {
      EXPECT_FALSE(backend::cuda::CompileToCubin(backend::cuda::GenerateEltwiseSource(p), "casts", {9, 0}).empty());
    } catch (const Error& e) {
      ADD_FAILURE() << "casts from " << DTypeName(from) << ": " << e.what();
    }
  }
}

TEST(CudaCodegen, RowKernelsCompileForEveryFloatDType) {
  int compiled = 0;
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceEuclideanNorm",
                         "Softmax", "LogSoftmax"})
    for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
      try {
        EXPECT_FALSE(backend::cuda::CompileToCubin(backend::cuda::RowKernelSource(op, dtype), op, {9, 0}).empty());
        ++compiled;
      } catch (const Error& e) {
        ADD_FAILURE() << op << " " << DTypeName(dtype) << ": " << e.what();
      }
    }
  EXPECT_EQ(compiled, 32);
}

TEST(CudaCodegen, UniformInputsCompileAndAreLoadedOnce) {
  backend::cuda::EltwiseProgram program;
  program.inputs = {DType::kFloat16, DType::kFloat16, DType::kFloat32};
  program.uniform = {false, true, true};
  program.steps.push_back({.op = ew::FindOp("Mul"), .args = {0, 1}});
  program.steps.push_back({.op = nullptr, .args = {3}, .cast_to = DType::kFloat32});
  program.steps.push_back({.op = ew::FindOp("Add"), .args = {4, 2}});
  const std::string source = backend::cuda::GenerateEltwiseSource(program);
  EXPECT_NE(source.find("u1 = in1[0]"), std::string::npos);
  EXPECT_NE(source.find("u2 = in2[0]"), std::string::npos);
  EXPECT_EQ(source.find("in1[o1]"), std::string::npos);
  EXPECT_NE(source.find("in0[o0]"), std::string::npos);
  EXPECT_FALSE(backend::cuda::CompileToCubin(source, "uniform", {9, 0}).empty());
}

TEST(CudaCodegen, LayerNormKernelsCompileForEveryFloatDType) {
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
    try {
      EXPECT_FALSE(
          backend::cuda::CompileToCubin(backend::cuda::LayerNormKernelSource(dtype), "kiln_layer_norm", {9, 0}).empty());
    } catch (const Error& e) {
      ADD_FAILURE() << DTypeName(dtype) << ": " << e.what();
    }
  }
}

TEST(CudaCodegen, PoolKernelsCompile) {
  for (const char* op : {"MaxPool", "AvgPool"})
    for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
      try {
        EXPECT_FALSE(backend::cuda::CompileToCubin(backend::cuda::PoolKernelSource(op, dtype), op, {9, 0}).empty());
      } catch (const Error& e) {
        ADD_FAILURE() << op << " " << DTypeName(dtype) << ": " << e.what();
      }
    }
  // Max pooling that writes int8 or E4M3 for 8-bit convolutions (a quantized engine); E4M3 with
  // Hopper's conversion instruction and with the formula before Ada.
  for (ir::QuantFormat format : {ir::QuantFormat::kInt8, ir::QuantFormat::kFloat8E4M3})
    for (backend::cuda::GpuArch arch : {backend::cuda::GpuArch{8, 0}, backend::cuda::GpuArch{9, 0}})
      for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16})
        EXPECT_FALSE(backend::cuda::CompileToCubin(backend::cuda::PoolKernelSource("MaxPool", dtype, true, format),
                                                   "MaxPool", arch)
                         .empty())
            << DTypeName(dtype) << " " << backend::cuda::QuantFormatName(format) << " " << arch.Name();
}

TEST(CudaCodegen, RefusesMalformedPrograms) {
  backend::cuda::EltwiseProgram p;
  testutil::ExpectError([&] { backend::cuda::GenerateEltwiseSource(p); }, ErrorCode::kInternal, {"needs inputs"});
  p.inputs = {DType::kFloat32};
  EXPECT_NO_THROW(backend::cuda::GenerateEltwiseSource(p));  // a copy
  p.steps.push_back({ew::FindOp("Add"), {0, 1}, 0});
  testutil::ExpectError([&] { backend::cuda::GenerateEltwiseSource(p); }, ErrorCode::kInternal,
                        {"step 0 reads value 1"});
  p.steps[0] = {ew::FindOp("Exp"), {0}, 0};
  p.inputs = {DType::kInt32};
  testutil::ExpectError([&] { backend::cuda::GenerateEltwiseSource(p); }, ErrorCode::kInvalidArgument,
                        {"Exp does not accept int32"});
}

// A small MLP ending in softmax, float32 in and out.
Builder SmallMlp() {
  Builder b;
  const ir::ValueId x = b.Input("x", {b.Symbol("n"), 32});
  ir::ValueId h = b.Op("MatMul", "fc1",
                       {x, b.Const("w1", cputest::RandScaled({32, 64}, 101, 0.3f)),
                        b.Const("b1", cputest::RandScaled({64}, 102, 0.1f))});
  h = b.Op("Relu", "relu", {h});
  h = b.Op("MatMul", "fc2", {h, b.Const("w2", cputest::RandScaled({64, 10}, 103, 0.3f))});
  ir::AttrMap a;
  a.Set("axis", int64_t{-1});
  b.Output("probs", b.Op("Softmax", "softmax", {h}, a));
  b.Output("logits", h);
  return b;
}

// Batches 1 to 64 of SmallMlp's input, optimized for 8.
backend::Profile SmallMlpProfile() {
  backend::Profile profile;
  profile.inputs.push_back({{1, 32}, {8, 32}, {64, 32}});
  return profile;
}

using testutil::RelativeL2Error;

TEST(CudaPrecision, NarrowingKeepsTheInterfaceAndTheFunction) {
  for (DType low : {DType::kFloat16, DType::kBFloat16}) {
    const Builder b = SmallMlp();
    auto narrowed = std::make_shared<ir::Graph>(b.g->Clone());
    EXPECT_GT(backend::cuda::NarrowFloat32(*narrowed, low), 5);
    ir::Verify(*narrowed);
    // The interface is unchanged; inside, every float value is `low`.
    EXPECT_EQ(narrowed->value(narrowed->inputs()[0]).dtype, DType::kFloat32);
    for (ir::ValueId out : narrowed->outputs()) EXPECT_EQ(narrowed->value(out).dtype, DType::kFloat32);
    for (const ir::Node& n : narrowed->nodes()) {
      if (!n.removed && n.op == "MatMul") {
        EXPECT_EQ(narrowed->value(n.outputs[0]).dtype, low);
      }
    }
    const Tensor x = cputest::RandScaled({8, 32}, 104, 1.0f);
    const auto want = runtime::ReferenceExecutor(b.g).Run({x});
    const auto got = runtime::ReferenceExecutor(narrowed).Run({x});
    // One rounding per stored value: about the storage type's epsilon.
    const double bound = low == DType::kFloat16 ? 5e-3 : 4e-2;
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_LT(RelativeL2Error(got[i], want[i]), bound) << DTypeName(low) << " output " << i;
  }
}

// A float32 graph's "minus infinity" mask, (1 - mask) * -1e9 added to the scores before a
// softmax (Keras attention exported to ONNX): in float16 the constant saturates to -65504, so kept
// positions add 0 (not 0 * -inf = NaN) and masked ones still vanish from the softmax.
TEST(CudaPrecision, Float16SaturatesConstantsBeyondItsRange) {
  Builder b;
  const ir::ValueId x = b.Input("scores", {2, 5});
  const ir::ValueId mask = b.Input("mask", {2, 5});
  const ir::ValueId kept = b.Op("Sub", "kept", {b.Const("one", Tensor::Scalar(DType::kFloat32, 1.0f)), mask});
  const ir::ValueId adder =
      b.Op("Mul", "adder", {kept, b.Const("minus_big", Tensor::Scalar(DType::kFloat32, -1e9f))});
  ir::AttrMap a;
  a.Set("axis", int64_t{-1});
  b.Output("probs", b.Op("Softmax", "softmax", {b.Op("Add", "masked", {x, adder})}, a));
  b.Output("limits", b.Op("Mul", "limits", {x, b.Const("big", Tensor::FromVector<float>(DType::kFloat32, {5},
                                                                                        {1e9f, -7e4f, 3.0f, INFINITY, -INFINITY}))}));
  auto narrowed = std::make_shared<ir::Graph>(b.g->Clone());
  backend::cuda::NarrowFloat32(*narrowed, DType::kFloat16);
  const Tensor scores = cputest::RandScaled({2, 5}, 106, 2.0f);
  const Tensor ones = Tensor::FromVector<float>(DType::kFloat32, {2, 5}, {1, 1, 1, 0, 0, 1, 0, 1, 1, 1});
  const auto want = runtime::ReferenceExecutor(b.g).Run({scores, ones});
  const auto got = runtime::ReferenceExecutor(narrowed).Run({scores, ones});
  const float* p = got[0].data<float>();
  for (int64_t i = 0; i < got[0].num_elements(); ++i) ASSERT_TRUE(std::isfinite(p[i])) << "probability " << i;
  EXPECT_LT(RelativeL2Error(got[0], want[0]), 5e-3);
  // The stored constant: {65504, -65504, 3, inf, -inf}.
  const Tensor* big = nullptr;
  for (const ir::Node& n : narrowed->nodes())
    if (!n.removed && n.name == "big") big = narrowed->ConstantOf(n.outputs[0]);
  ASSERT_TRUE(big && big->dtype() == DType::kFloat16);
  const std::vector<float> stored = {65504.0f, -65504.0f, 3.0f, INFINITY, -INFINITY};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(static_cast<float>(big->data<Half>()[i]), stored[i]) << "element " << i;
}

TEST(CudaPrecision, DivisionsByOneElementConstantsBecomeProducts) {
  Builder b;
  const ir::ValueId x = b.Input("x", {4, 6});
  b.Output("gelu_scaled", b.Op("Div", "by_sqrt2", {x, b.Const("sqrt2", Tensor::Scalar(DType::kFloat32, 1.41421356f))}));
  b.Output("by_zero", b.Op("Div", "by_zero", {x, b.Const("zero", Tensor::Scalar(DType::kFloat32, 0.0f))}));
  b.Output("by_row", b.Op("Div", "by_row", {x, b.Const("row", cputest::RandScaled({6}, 105, 1.0f))}));
  b.Output("by_input", b.Op("Div", "by_input", {x, x}));
  for (DType low : {DType::kFloat16, DType::kBFloat16}) {
    auto narrowed = std::make_shared<ir::Graph>(b.g->Clone());
    backend::cuda::NarrowFloat32(*narrowed, low);
    ir::Verify(*narrowed);
    std::map<std::string, std::string> ops;
    for (const ir::Node& n : narrowed->nodes())
      if (!n.removed && n.name.starts_with("by_")) ops[n.name] = n.op;
    EXPECT_EQ(ops["by_sqrt2"], "Mul") << DTypeName(low);
    EXPECT_EQ(ops["by_zero"], "Div") << DTypeName(low);   // x / 0 keeps its infinities and NaNs
    EXPECT_EQ(ops["by_row"], "Div") << DTypeName(low);    // more than one element
    EXPECT_EQ(ops["by_input"], "Div") << DTypeName(low);  // not a constant
    const Tensor in = cputest::RandScaled({4, 6}, 106, 3.0f);
    const auto want = runtime::ReferenceExecutor(b.g).Run({in});
    const auto got = runtime::ReferenceExecutor(narrowed).Run({in});
    EXPECT_LT(RelativeL2Error(got[0], want[0]), low == DType::kFloat16 ? 1e-3 : 8e-3) << DTypeName(low);
  }
}

TEST(CudaBackend, MachinesWithoutAGpuGetAClearError) {
  if (backend::cuda::DeviceCount() > 0) {
    EXPECT_EQ(backend::MakeBackend("cuda")->name(), "cuda");  // a GPU machine: the backend starts
    return;
  }
  testutil::ExpectError([] { backend::MakeBackend("cuda"); }, ErrorCode::kUnavailable, {"no CUDA GPU is visible"});
}

// x [batch, 8] float and ids [batch] int64, as ONNX exporters write dynamic shapes: y = Reshape(x,
// Concat(ExpandDims(Shape(x)[0]), [2, 4])) + Cast(Range(0, Shape(x)[1] / 2, 1)) broadcast, and
// Gather(table, ids) of a [5, 3] table.
Builder DynamicShapeGraph() {
  Builder b;
  const ir::Dim batch = b.Symbol("batch");
  const ir::ValueId x = b.Input("x", {batch, 8});
  const ir::ValueId ids = b.Input("ids", {batch}, DType::kInt64);
  auto i64 = [&](const std::string& name, std::vector<int64_t> v, bool scalar = false) {
    const Shape shape = scalar ? Shape{} : Shape{static_cast<int64_t>(v.size())};
    return b.Const(name, Tensor::FromVector<int64_t>(DType::kInt64, shape, v));
  };
  const ir::ValueId shape = b.Op("Shape", "shape", {x}, testutil::Attrs({{"out_type", DType::kInt64}}));
  const ir::ValueId n = b.Op("Gather", "n", {shape, i64("zero", {0}, true), i64("axis0", {0}, true)});
  const ir::ValueId n1 = b.Op("ExpandDims", "n1", {n, i64("axis0b", {0}, true)});
  const ir::ValueId target = b.Op("Concat", "target", {n1, i64("rest", {2, 4}), i64("axis0c", {0}, true)});
  const ir::ValueId y = b.Op("Reshape", "y", {x, target});
  const ir::ValueId width = b.Op("Gather", "width", {shape, i64("one", {1}, true), i64("axis0d", {0}, true)});
  const ir::ValueId half = b.Op("FloorDiv", "half", {width, i64("two", {2}, true)});
  const ir::ValueId range = b.Op("Range", "range", {i64("start", {0}, true), half, i64("step", {1}, true)});
  const ir::ValueId positions = b.Op("Cast", "positions", {range}, testutil::Attrs({{"to", DType::kFloat32}}));
  b.Output("y", b.Op("Add", "add", {y, positions}));
  Tensor table(DType::kFloat32, {5, 3});
  for (int64_t i = 0; i < 15; ++i) table.data<float>()[i] = static_cast<float>(i);
  b.Output("rows", b.Op("Gather", "rows", {b.Const("table", table), ids, i64("axis0e", {0}, true)}));
  return b;
}

TEST(CudaHostValues, ShapeArithmeticIsComputedOnTheHostPerInputShapes) {
  Builder b = DynamicShapeGraph();
  const ir::Graph& g = *b.g;
  const std::vector<bool> host = backend::cuda::HostNodes(g);
  auto node = [&](const std::string& name) -> const ir::Node& {
    for (const ir::Node& n : g.nodes())
      if (n.name == name) return n;
    throw std::runtime_error(name);
  };
  for (const char* name : {"shape", "n", "n1", "target", "width", "half", "range"}) {
    EXPECT_TRUE(host[static_cast<size_t>(node(name).id)]) << name;
    EXPECT_TRUE(backend::cuda::HostComputable(g, node(name))) << name;
  }
  for (const char* name : {"y", "positions", "add", "rows"}) {
    EXPECT_FALSE(host[static_cast<size_t>(node(name).id)]) << name;
    EXPECT_FALSE(backend::cuda::HostComputable(g, node(name))) << name;
  }
  const backend::cuda::Specialization s = backend::cuda::Specialize(g, host, {{3, 8}, {3}});
  EXPECT_EQ(s.host_values[static_cast<size_t>(node("target").outputs[0])].ToInt64Vector(), (std::vector<int64_t>{3, 2, 4}));
  EXPECT_EQ(s.host_values[static_cast<size_t>(node("range").outputs[0])].ToInt64Vector(),
            (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(*s.shapes[static_cast<size_t>(g.outputs()[0])], (Shape{3, 2, 4}));
  EXPECT_EQ(*s.shapes[static_cast<size_t>(g.outputs()[1])], (Shape{3, 3}));
  EXPECT_FALSE(s.host_values[static_cast<size_t>(node("y").outputs[0])].defined());
}

TEST(CudaCodegen, GatherKernelsCompile) {
  const backend::cuda::GpuArch arch{9, 0};
  for (size_t bytes : {1, 2, 4, 8})
    for (DType index : {DType::kInt32, DType::kInt64})
      EXPECT_NO_THROW(backend::cuda::CompileToCubin(backend::cuda::GatherKernelSource(bytes, index), "gather", arch))
          << bytes << " " << DTypeName(index);
}

TEST(CudaCubins, CachedRecordedAndCarried) {
  const backend::cuda::GpuArch arch{9, 0};
  const std::string source =
      std::string(backend::cuda::KernelPrologue()) + "extern \"C\" __global__ void kiln_cubin_test(int* x) { *x = 7; }\n";
  const int64_t before = backend::cuda::NvrtcCompileCount();
  std::vector<backend::cuda::CubinEntry> recorded;
  {
    backend::cuda::CubinRecorder recorder;
    const std::string cubin = backend::cuda::CubinFor(source, "cubin_test", arch);
    EXPECT_FALSE(cubin.empty());
    EXPECT_EQ(backend::cuda::CubinFor(source, "cubin_test", arch), cubin);  // cached
    recorded = recorder.Take();
  }
  EXPECT_EQ(backend::cuda::NvrtcCompileCount(), before + 1);
  ASSERT_EQ(recorded.size(), 1u);  // recorded once
  EXPECT_EQ(recorded[0].source, source);

  // An engine file's cubins are used as they are: a primed source compiles nothing.
  const std::string other = source + "// another kernel\n";
  const std::vector<backend::cuda::CubinEntry> carried = {{arch, other, "not really a cubin"}};
  const std::string encoded = backend::cuda::EncodeCubins(carried);
  const auto decoded = backend::cuda::DecodeCubins(encoded);
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_EQ(decoded[0].source, other);
  EXPECT_EQ(decoded[0].arch.Name(), "sm_90");
  backend::cuda::AddCubin(decoded[0]);
  EXPECT_EQ(backend::cuda::CubinFor(other, "carried", arch), "not really a cubin");
  EXPECT_EQ(backend::cuda::NvrtcCompileCount(), before + 1);
  // ... for that architecture only.
  EXPECT_NE(backend::cuda::CubinFor(other, "carried", {8, 0}), "not really a cubin");

  // Every truncation and a trailing byte are data loss.
  for (size_t n = 0; n < encoded.size(); ++n)
    testutil::ExpectError([&] { backend::cuda::DecodeCubins(std::string_view(encoded).substr(0, n)); },
                          ErrorCode::kDataLoss, {"CUDA engine"});
  testutil::ExpectError([&] { backend::cuda::DecodeCubins(encoded + "x"); }, ErrorCode::kDataLoss, {"unexpected bytes"});
  std::string huge = encoded;
  huge[7] = '\x7f';  // a kernel count near 2^63
  testutil::ExpectError([&] { backend::cuda::DecodeCubins(huge); }, ErrorCode::kDataLoss, {"compiled kernels"});
}

// Multi-head self-attention as PyTorch's exporter writes it (scaled_dot_product_attention at
// opset 17): projections [b, s, h*d] viewed as [b, s, h, d], Transposes to [b, h, s, d] (K to
// [b, h, d, s]), both scaled by d^-1/4, an additive mask [b, 1, s, s], the NaN guard, the
// context transposed back to [b, s, h, d]. `score_div`: the older form, scores divided by sqrt(d)
// and K transposed by adj_y.
Builder AttentionGraph(int64_t b, int64_t s, int64_t h, int64_t d, DType dtype, bool score_div = false) {
  Builder g;
  auto transpose = [&](ir::ValueId x, std::vector<int64_t> perm, const std::string& name) {
    return g.Op("Transpose", name, {x, g.Const(name + "_perm", Tensor::FromVector<int64_t>(DType::kInt64, {4}, perm))});
  };
  auto scalar = [&](const std::string& name, float v) {
    Tensor t(dtype, {});
    if (dtype == DType::kFloat16) t.data<Half>()[0] = Half(v);
    else if (dtype == DType::kBFloat16) t.data<BFloat16>()[0] = BFloat16(v);
    else t.data<float>()[0] = v;
    return g.Const(name, t);
  };
  const ir::ValueId q = g.Input("q", {b, s, h, d}, dtype);
  const ir::ValueId k = g.Input("k", {b, s, h, d}, dtype);
  const ir::ValueId v = g.Input("v", {b, s, h, d}, dtype);
  const ir::ValueId mask = g.Input("mask", {b, 1, s, s}, dtype);
  ir::ValueId scores;
  if (score_div) {
    ir::AttrMap adj;
    adj.Set("adj_y", true);
    scores = g.Op("BatchMatMul", "qk", {transpose(q, {0, 2, 1, 3}, "tq"), transpose(k, {0, 2, 1, 3}, "tk")}, adj);
    scores = g.Op("Div", "scaled", {scores, scalar("sqrt_d", std::sqrt(static_cast<float>(d)))});
  } else {
    const float f = std::pow(static_cast<float>(d), -0.25f);
    const ir::ValueId qs = g.Op("Mul", "q_scaled", {transpose(q, {0, 2, 1, 3}, "tq"), scalar("fq", f)});
    const ir::ValueId ks = g.Op("Mul", "k_scaled", {transpose(k, {0, 2, 3, 1}, "tk"), scalar("fk", f)});
    scores = g.Op("BatchMatMul", "qk", {qs, ks});
  }
  ir::AttrMap last;
  last.Set("axis", int64_t{-1});
  const ir::ValueId probs = g.Op("Softmax", "softmax", {g.Op("Add", "masked", {scores, mask})}, last);
  const ir::ValueId guarded = g.Op("Select", "guard", {g.Op("IsNan", "is_nan", {probs}), scalar("zero", 0.0f), probs});
  const ir::ValueId context = g.Op("BatchMatMul", "pv", {guarded, transpose(v, {0, 2, 1, 3}, "tv")});
  g.Output("context", transpose(context, {0, 2, 1, 3}, "to"));
  return g;
}

// Query, key and value projections of x ([10, 16] for MatMul, [2, 5, 16] for BatchMatMul;
// weights [16, 8], biases [8]), a fourth product of another width, and a fifth whose sum is a
// graph output.
Builder SiblingGraph(const std::string& op, DType dtype, bool transposed, bool with_bias) {
  Builder b;
  const ir::ValueId x = b.Input("x", op == "MatMul" ? std::vector<ir::Dim>{10, 16} : std::vector<ir::Dim>{2, 5, 16}, dtype);
  ir::AttrMap attrs;
  if (transposed) attrs.Set(op == "MatMul" ? "transpose_b" : "adj_y", true);
  auto project = [&](const std::string& name, int64_t cols, uint32_t seed) {
    const Shape w = transposed ? Shape{cols, 16} : Shape{16, cols};
    ir::ValueId p = b.Op(op, name, {x, b.Const(name + "_w", cputest::RandScaled(w, seed, 0.5f))}, attrs);
    if (with_bias) p = b.Op("Add", name + "_bias", {p, b.Const(name + "_b", cputest::RandScaled({cols}, seed + 1, 1.0f))});
    return p;
  };
  if (dtype != DType::kFloat32) throw Error(ErrorCode::kInternal, "SiblingGraph: float32 only");
  const ir::ValueId q = project("q", 8, 10), k = project("k", 8, 20), v = project("v", 8, 30);
  const ir::ValueId wide = project("wide", 12, 40), out = project("out", 8, 50);
  b.Output("qk", b.Op("Mul", "qk", {q, k}));
  b.Output("v2", b.Op("Add", "v2", {v, v}));
  b.Output("wide", b.Op("Neg", "neg", {wide}));
  b.Output("out", out);  // a graph output: not grouped
  return b;
}

TEST(CudaSiblings, ProductsOfOneOperandAndOneWeightShapeAreGroupedWithStackedConstants) {
  for (const std::string op : {"MatMul", "BatchMatMul"})
  for (bool transposed : {false, true}) {
    for (bool with_bias : {true, false}) {
      const Builder b = SiblingGraph(op, DType::kFloat32, transposed, with_bias);
      const ir::Graph& g = *b.g;
      const auto consumers = g.Consumers();
      const auto groups = backend::cuda::FindMatMulSiblings(g, consumers, [](ir::NodeId) { return true; });
      ASSERT_EQ(groups.size(), 1u);
      const auto& s = groups[0];
      ASSERT_EQ(s.products.size(), 3u);
      EXPECT_EQ(s.products[0]->name, "q");
      EXPECT_EQ(s.products[2]->name, "v");
      EXPECT_EQ(s.biases.size(), with_bias ? 3u : 0u);
      EXPECT_EQ(s.weights.shape(), transposed ? (Shape{3, 8, 16}) : (Shape{3, 16, 8}));
      for (int i = 0; i < 3; ++i) {
        const Tensor* w = g.ConstantOf(s.products[static_cast<size_t>(i)]->inputs[1]);
        for (int64_t e = 0; e < w->num_elements(); ++e)
          ASSERT_EQ(s.weights.data<float>()[i * w->num_elements() + e], w->data<float>()[e]);
        if (with_bias) {
          const ir::Node* add = s.biases[static_cast<size_t>(i)];
          EXPECT_EQ(s.outputs[static_cast<size_t>(i)], add->outputs[0]);
          const Tensor* bias = g.ConstantOf(add->inputs[1]);
          for (int64_t e = 0; e < 8; ++e) ASSERT_EQ(s.bias.data<float>()[i * 8 + e], bias->data<float>()[e]);
        }
      }
      // What the caller does not accept is left out, and fewer than two is no group.
      const auto without_v = backend::cuda::FindMatMulSiblings(
          g, consumers, [&](ir::NodeId id) { return g.node(id).name != "v" && g.node(id).name != "k"; });
      EXPECT_TRUE(without_v.empty());
    }
  }
}

TEST(CudaAttention, TheExportedPatternsAreFoundWithTheirLayoutsAndScale) {
  for (bool score_div : {false, true}) {
    const Builder b = AttentionGraph(2, 16, 4, 32, DType::kFloat16, score_div);
    const auto found = backend::cuda::FindAttention(*b.g, b.g->Consumers());
    ASSERT_EQ(found.size(), 1u) << "score_div " << score_div;
    const backend::cuda::AttentionMatch& m = found[0];
    EXPECT_EQ(b.g->value(m.q.value).name, "q");
    EXPECT_EQ(b.g->value(m.k.value).name, "k");
    EXPECT_EQ(b.g->value(m.v.value).name, "v");
    EXPECT_EQ(b.g->value(m.bias).name, "mask");
    // [b, s, h, d] read as [b, h, s, d]: dims 0, 2, 1, 3; the output likewise.
    const std::array<int, 4> bshd = {0, 2, 1, 3};
    EXPECT_EQ(m.q.dims, bshd);
    EXPECT_EQ(m.k.dims, bshd);
    EXPECT_EQ(m.v.dims, bshd);
    EXPECT_EQ(m.out.dims, bshd);
    EXPECT_EQ(m.out.value, b.g->outputs()[0]);
    EXPECT_NEAR(m.scale, 1.0 / std::sqrt(32.0), 1e-3);
    EXPECT_TRUE(m.nan_guard);
    EXPECT_EQ(m.nodes.size(), score_div ? 11u : 12u);
  }
  // float32 attention stays unfused (cuDNN's SDPA is float16/bfloat16), as does a pattern whose
  // probabilities are also read elsewhere.
  EXPECT_TRUE(backend::cuda::FindAttention(*AttentionGraph(2, 16, 4, 32, DType::kFloat32).g,
                                           AttentionGraph(2, 16, 4, 32, DType::kFloat32).g->Consumers())
                  .empty());
  Builder shared = AttentionGraph(2, 16, 4, 32, DType::kFloat16);
  for (const ir::Node& n : shared.g->nodes())
    if (n.op == "Softmax") shared.Output("probs", n.outputs[0]);
  EXPECT_TRUE(backend::cuda::FindAttention(*shared.g, shared.g->Consumers()).empty());
}

// ---- on a GPU ----

// Element-wise tolerance by the precision the values are stored in: the GPU computes the same
// formula in the same compute type; libm and CUDA's math differ by an ulp or two.
double Tolerance(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 1e-5;
    case DType::kFloat64:
      return 1e-12;
    case DType::kFloat16:
      return 1e-3;  // one half ulp near 1 (the float results round apart)
    case DType::kBFloat16:
      return 8e-3;  // one bfloat16 ulp near 1
    default:
      return 0;
  }
}

void ExpectMatches(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const double tol = Tolerance(want.dtype());
  int bad = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double g = got.DoubleAt(i), w = want.DoubleAt(i);
    bool ok = std::isnan(w) ? std::isnan(g) : std::isinf(w) ? g == w : std::abs(g - w) <= tol * (1 + std::abs(w));
    if (!ok && ++bad <= 3) ADD_FAILURE() << what << ": element " << i << ": got " << g << ", want " << w;
  }
  EXPECT_EQ(bad, 0) << what;
}

std::unique_ptr<backend::Engine> CheckOnGpu(const Builder& b, const std::vector<Tensor>& inputs,
                                            const std::string& what) {
  std::vector<Shape> shapes;
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  CudaBackend cuda;
  for (const ir::Node& n : b.g->nodes())
    if (n.op != "Constant") {
      auto why = cuda.Unsupported(*b.g, n);
      EXPECT_FALSE(why.has_value()) << what << ": " << *why;
      if (why) return nullptr;
    }
  auto engine = cuda.Compile(*b.g, ExactProfile(shapes), {});
  const auto want = runtime::ReferenceExecutor(b.g).Run(inputs);
  const auto got = RunOnGpu(*engine, inputs);
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) ExpectMatches(got[i], want[i], what);
  return engine;
}

TEST(CudaBackendGpu, EveryElementwiseOpMatchesTheReference) {
  SKIP_WITHOUT_GPU();
  int checked = 0;
  for (const ew::OpInfo& op : ew::AllOps()) {
    if (op.host_only) continue;  // runs natively
    for (DType dtype : kGpuDTypes) {
      if (!ir::InClass(dtype, op.types)) continue;
      if (op.error && !IsFloating(dtype)) continue;  // integer failures run natively
      Builder b;
      const bool binary = ew::Arity(op.pattern) == 2;
      const ir::ValueId x = b.Input("x", {3, 5, 7}, dtype);
      std::vector<ir::ValueId> args = {x};
      std::vector<Tensor> inputs = {RandomTensor(dtype, {3, 5, 7}, 11)};
      if (binary) {
        args.push_back(b.Input("y", {5, 1}, dtype));  // broadcasts along two dims
        inputs.push_back(RandomTensor(dtype, {5, 1}, 12));
      }
      b.Output("z", b.Op(op.name, "op", args));
      CheckOnGpu(b, inputs, fmt::format("{} {}", op.name, DTypeName(dtype)));
      ++checked;
    }
  }
  EXPECT_GT(checked, 150);
}

TEST(CudaBackendGpu, CastsMatchTheReference) {
  SKIP_WITHOUT_GPU();
  for (DType from : kGpuDTypes)
    for (DType to : kGpuDTypes) {
      Builder b;
      const ir::ValueId x = b.Input("x", {4, 33}, from);
      ir::AttrMap a;
      a.Set("to", to);
      b.Output("y", b.Op("Cast", "cast", {x}, a));
      Tensor in = RandomTensor(from, {4, 33}, 91);
      if (from == DType::kFloat32) {  // NaN, infinities and out-of-range values: TensorFlow's x86 conversions
        in.data<float>()[0] = std::nanf("");
        in.data<float>()[1] = INFINITY;
        in.data<float>()[2] = -3e10f;
        in.data<float>()[3] = 300.7f;
      }
      CheckOnGpu(b, {in}, fmt::format("Cast {} -> {}", DTypeName(from), DTypeName(to)));
    }
}

TEST(CudaBackendGpu, SelectBroadcastsThreeWays) {
  SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::kFloat32, DType::kInt64, DType::kFloat16}) {
    Builder b;
    const ir::ValueId cond = b.Input("cond", {5, 1}, DType::kBool);
    const ir::ValueId x = b.Input("x", {3, 5, 7}, dtype);
    const ir::ValueId y = b.Input("y", {7}, dtype);
    const ir::ValueId s = b.Op("Select", "select", {cond, x, y});
    b.Output("z", b.Op("Neg", "neg", {s}));  // fused after the Select
    auto engine = CheckOnGpu(
        b, {RandomTensor(DType::kBool, {5, 1}, 92), RandomTensor(dtype, {3, 5, 7}, 93), RandomTensor(dtype, {7}, 94)},
        fmt::format("Select {}", DTypeName(dtype)));
    ASSERT_TRUE(engine);
    EXPECT_EQ(dynamic_cast<const CudaEngine&>(*engine).steps().size(), 1u);
  }
}

TEST(CudaBackendGpu, ElementwiseChainIsOneKernel) {
  SKIP_WITHOUT_GPU();
  Builder b;
  const ir::ValueId x = b.Input("x", {4, 33, 65});
  ir::ValueId y = b.Op("Mul", "scale", {x, b.Const("s", cputest::RandScaled({65}, 3, 1.0f))});
  y = b.Op("Add", "shift", {y, b.Const("t", cputest::RandScaled({33, 1}, 4, 1.0f))});
  y = b.Op("Sigmoid", "act", {y});
  y = b.Op("Mul", "gate", {y, x});  // x again: one program input read twice
  ir::AttrMap alpha;
  alpha.Set("alpha", 0.2);
  y = b.Op("LeakyRelu", "leaky", {y}, alpha);
  b.Output("y", y);
  auto engine = CheckOnGpu(b, {cputest::RandScaled({4, 33, 65}, 5, 3.0f)}, "chain");
  ASSERT_TRUE(engine);
  const auto steps = dynamic_cast<const CudaEngine&>(*engine).steps();
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].nodes, "scale+shift+act+gate+leaky");
}

TEST(CudaBackendGpu, ScalarConstantsInAChainAreReadOnceAndGiveTheSameValues) {
  SKIP_WITHOUT_GPU();
  // GELU as exported: x * 0.5 * (1 + erf(x / sqrt(2))), three one-element constants; on a
  // flat tensor of an odd size (the unrolled path, with a remainder), on one of whole vectors
  // (the vector loop) and on a broadcast one (the indexed path).
  for (const Shape& shape : {Shape{3, 999, 7}, Shape{3, 1000, 8}, Shape{5, 4, 3}}) {
    for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
      auto scalar = [&](const std::string& name, float v) {
        Tensor t(dtype, {});
        if (dtype == DType::kFloat16) t.data<Half>()[0] = Half(v);
        else t.data<float>()[0] = v;
        return t;
      };
      Builder b;
      const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(shape.begin(), shape.end()), dtype);
      ir::ValueId y = b.Op("Div", "div", {x, b.Const("sqrt2", scalar("sqrt2", 1.4142135f))});
      y = b.Op("Erf", "erf", {y});
      y = b.Op("Add", "one_plus", {y, b.Const("one", scalar("one", 1.0f))});
      y = b.Op("Mul", "times_x", {x, y});
      y = b.Op("Mul", "half", {y, b.Const("half_value", scalar("half", 0.5f))});
      if (shape.size() == 3 && shape[0] == 5)  // a broadcast operand as well: the indexed walk
        y = b.Op("Add", "bias", {y, b.Const("b", RandomTensor(dtype, {4, 1}, 7))});
      b.Output("y", y);
      const std::string what = fmt::format("{} {}", ShapeToString(shape), DTypeName(dtype));
      const Tensor input = RandomTensor(dtype, shape, 8);
      auto engine = CudaBackend().Compile(*b.g, ExactProfile({shape}), {});
      ASSERT_EQ(dynamic_cast<const CudaEngine&>(*engine).steps().size(), 1u) << what;
      const Tensor got = RunOnGpu(*engine, {input})[0];
      const Tensor want = runtime::ReferenceExecutor(b.g).Run({input})[0];
      if (dtype == DType::kFloat32)
        ExpectMatches(got, want, what);
      else  // the reference rounds after every op, the chain once
        EXPECT_LE(RelativeL2(got, want), 1e-3) << what;
    }
  }
}

TEST(CudaBackendGpu, VectorLoopsMatchTheReferenceAndAreTakenOnlyWhereAligned) {
  SKIP_WITHOUT_GPU();
  // Select(cond, x * y, x): one bool and two `dtype` inputs. Each case: the three input shapes
  // broadcasting into out, and the innermost dim after merging: the vector loop runs when it
  // is whole vectors (16 bytes of `dtype`), every innermost stride being 0 or 1 here.
  struct Case {
    Shape cond, x, y, out;
    int64_t row;
  };
  const std::vector<Case> cases = {
      {{6, 64}, {6, 64}, {6, 64}, {6, 64}, 384},       // all contiguous: one dim
      {{6, 64}, {6, 64}, {64}, {6, 64}, 64},           // a bias row: outer stride 0
      {{6, 1}, {6, 64}, {6, 1}, {6, 64}, 64},          // per-row values: innermost stride 0
      {{1}, {2, 3, 32}, {3, 1}, {2, 3, 32}, 32},       // three dims, a scalar condition
      {{1}, {4, 3, 20}, {20}, {4, 3, 20}, 20},         // 20: whole vectors of 4 and 2, not of 8
      {{5, 13}, {5, 13}, {5, 13}, {5, 13}, 65},        // odd: never
  };
  const auto arch = backend::cuda::ArchOf(0);
  auto stream = backend::cuda::Services(0).CreateStream();
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt64, DType::kFloat64}) {
    backend::cuda::EltwiseProgram program;
    program.inputs = {DType::kBool, dtype, dtype};
    program.steps.push_back({.op = ew::FindOp("Mul"), .args = {1, 2}});
    program.steps.push_back({.op = nullptr, .args = {0, 3, 1}});
    const backend::cuda::EltwiseKernel kernel(program, arch);
    // Indexing the parameter arrays at run time would copy them to local memory in every thread.
    EXPECT_EQ(kernel.LocalMemoryBytes(), 0) << DTypeName(dtype);
    for (const Case& c : cases) {
      const std::string what = fmt::format("{} cond {} x {} y {}", DTypeName(dtype), ShapeToString(c.cond),
                                           ShapeToString(c.x), ShapeToString(c.y));
      const std::vector<Tensor> host = {RandomTensor(DType::kBool, c.cond, 61), RandomTensor(dtype, c.x, 62),
                                        RandomTensor(dtype, c.y, 63)};
      std::vector<Tensor> device;
      for (const Tensor& t : host) device.push_back(ToDevice(t));
      Tensor out = backend::cuda::Services(0).allocator().AllocateTensor(dtype, c.out);
      const int64_t vec = 16 / static_cast<int64_t>(DTypeSize(dtype));
      EXPECT_EQ(kernel.UsesVectorLoop(device, out), c.row % vec == 0) << what;
      kernel.Launch(device, out, static_cast<cudaStream_t>(stream->native_handle()));
      stream->Synchronize();
      Builder b;
      const ir::ValueId cond = b.Input("cond", std::vector<ir::Dim>(c.cond.begin(), c.cond.end()), DType::kBool);
      const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.x.begin(), c.x.end()), dtype);
      const ir::ValueId y = b.Input("y", std::vector<ir::Dim>(c.y.begin(), c.y.end()), dtype);
      b.Output("z", b.Op("Select", "select", {cond, b.Op("Mul", "mul", {x, y}), x}));
      ExpectMatches(ToHost(out), runtime::ReferenceExecutor(b.g).Run(host)[0], what);
    }
  }
}

TEST(CudaBackendGpu, ActiveLayerProfilerTimesEveryKernelStep) {
  SKIP_WITHOUT_GPU();
  Builder b;
  const ir::ValueId x = b.Input("x", {64, 256});
  const ir::ValueId w = b.Const("w", cputest::RandScaled({256, 128}, 7, 0.1f));
  const ir::ValueId m = b.Op("MatMul", "proj", {x, w});
  const ir::ValueId r = b.Op("Relu", "act", {m});
  b.Output("y", b.Op("Reshape", "flat", {r, b.Const("shape", Tensor::FromVector<int64_t>(DType::kInt64, {1}, {64 * 128}))}));
  auto engine = CheckOnGpu(b, {cputest::RandScaled({64, 256}, 8, 1.0f)}, "profiled");
  ASSERT_TRUE(engine);
  backend::LayerProfiler profiler;
  backend::SetActiveLayerProfiler(&profiler);
  for (int i = 0; i < 3; ++i) RunOnGpu(*engine, {cputest::RandScaled({64, 256}, 8, 1.0f)});
  backend::SetActiveLayerProfiler(nullptr);
  RunOnGpu(*engine, {cputest::RandScaled({64, 256}, 8, 1.0f)});  // not profiled
  const auto entries = profiler.Entries();
  ASSERT_EQ(entries.size(), 2u);  // the matrix product and the ReLU; the reshape is a view
  EXPECT_EQ(entries[0].layer, "proj");
  EXPECT_EQ(entries[0].kernel, "cublasLt");
  EXPECT_EQ(entries[0].detail, "float32 [64,128]");
  EXPECT_EQ(entries[1].layer, "act");
  for (const auto& e : entries) {
    EXPECT_EQ(e.calls, 3);
    EXPECT_GT(e.total_ms, 0.0);
  }
}

TEST(CudaBackendGpu, BranchesAndSharedValuesStaySeparateKernels) {
  SKIP_WITHOUT_GPU();
  Builder b;
  const ir::ValueId x = b.Input("x", {8, 16});
  const ir::ValueId e = b.Op("Exp", "e", {x});
  const ir::ValueId s = b.Op("Sin", "s", {e});  // e has two readers: it is materialised
  const ir::ValueId c = b.Op("Cos", "c", {e});
  b.Output("sum", b.Op("Add", "sum", {s, c}));
  b.Output("e", e);
  auto engine = CheckOnGpu(b, {cputest::RandScaled({8, 16}, 6, 1.0f)}, "branches");
  ASSERT_TRUE(engine);
  EXPECT_EQ(dynamic_cast<const CudaEngine&>(*engine).steps().size(), 3u);  // e, s+..., c... fused into sum
}

struct MatMulCase {
  std::string name;
  Shape a, b;
  bool ta = false, tb = false, bias = false, batch = false;
  DType dtype = DType::kFloat32;
};

void PrintTo(const MatMulCase& c, std::ostream* os) { *os << c.name; }

class CudaMatMul : public ::testing::TestWithParam<MatMulCase> {};

TEST_P(CudaMatMul, MatchesReference) {
  SKIP_WITHOUT_GPU();
  const MatMulCase& mc = GetParam();
  Builder b;
  const ir::ValueId a = b.Input("a", std::vector<ir::Dim>(mc.a.begin(), mc.a.end()), mc.dtype);
  const ir::ValueId w = b.Const("w", RandomTensor(mc.dtype, mc.b, 21));
  ir::AttrMap attrs;
  std::vector<ir::ValueId> args = {a, w};
  if (mc.batch) {
    attrs.Set("adj_x", mc.ta);
    attrs.Set("adj_y", mc.tb);
  } else {
    attrs.Set("transpose_a", mc.ta);
    attrs.Set("transpose_b", mc.tb);
    if (mc.bias) args.push_back(b.Const("bias", RandomTensor(mc.dtype, {mc.tb ? mc.b[0] : mc.b[1]}, 22)));
  }
  b.Output("y", b.Op(mc.batch ? "BatchMatMul" : "MatMul", "mm", args, attrs));
  auto engine = CheckOnGpu(b, {RandomTensor(mc.dtype, mc.a, 23)}, mc.name);
  ASSERT_TRUE(engine);
  EXPECT_EQ(dynamic_cast<const CudaEngine&>(*engine).steps().at(0).kernel, "cublasLt");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CudaMatMul,
    ::testing::Values(MatMulCase{"plain", {17, 64}, {64, 33}}, MatMulCase{"transpose_a", {64, 17}, {64, 33}, true},
                      MatMulCase{"transpose_b_bias", {17, 64}, {33, 64}, false, true, true},
                      MatMulCase{"bias", {5, 128}, {128, 256}, false, false, true},
                      MatMulCase{"batched", {3, 4, 9, 32}, {3, 4, 32, 8}, false, false, false, true},
                      MatMulCase{"batched_shared_rhs", {6, 9, 32}, {32, 8}, false, false, false, true},
                      MatMulCase{"batched_shared_rhs_adj_y", {2, 3, 9, 32}, {8, 32}, false, true, false, true},
                      MatMulCase{"batched_shared_rhs_adj_x", {6, 32, 9}, {32, 8}, true, false, false, true},
                      MatMulCase{"batched_adj", {6, 32, 9}, {6, 8, 32}, true, true, false, true},
                      MatMulCase{"fp64", {7, 16}, {16, 5}, false, false, false, false, DType::kFloat64}),
    [](const ::testing::TestParamInfo<MatMulCase>& info) { return info.param.name; });

// A bias Add after a matrix product runs in cuBLASLt's epilogue: one step, for plain, folded
// (shared right operand) and truly batched products.
TEST(CudaBackendGpu, BiasAddAfterAProductRunsInTheEpilogue) {
  SKIP_WITHOUT_GPU();
  struct Case {
    std::string op;
    Shape a, b, bias;
  };
  for (const Case& c : {Case{"MatMul", {17, 64}, {64, 33}, {33}}, Case{"BatchMatMul", {2, 3, 9, 32}, {32, 8}, {8}},
                        Case{"BatchMatMul", {4, 9, 32}, {4, 32, 8}, {1, 1, 8}}}) {
    for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
      Builder b;
      const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.a.begin(), c.a.end()), dtype);
      const ir::ValueId p = b.Op(c.op, "mm", {x, b.Const("w", RandomTensor(dtype, c.b, 91))});
      b.Output("y", b.Op("Add", "bias", {p, b.Const("bias_value", RandomTensor(dtype, c.bias, 92))}));
      const std::string what = fmt::format("{} {} {}", c.op, ShapeToString(c.a), DTypeName(dtype));
      const Tensor input = RandomTensor(dtype, c.a, 93);
      std::unique_ptr<backend::Engine> engine;
      if (dtype == DType::kFloat32) {
        engine = CheckOnGpu(b, {input}, what);
      } else {  // one rounding where the reference rounds the product, then the sum
        engine = CudaBackend().Compile(*b.g, ExactProfile({input.shape()}), {});
        EXPECT_LE(RelativeL2(RunOnGpu(*engine, {input})[0], runtime::ReferenceExecutor(b.g).Run({input})[0]), 1e-3)
            << what;
      }
      ASSERT_TRUE(engine) << what;
      const auto steps = dynamic_cast<const CudaEngine&>(*engine).steps();
      ASSERT_EQ(steps.size(), 1u) << what;
      EXPECT_EQ(steps[0].nodes, "mm+bias") << what;
    }
  }
}

TEST(CudaBackendGpu, SiblingProductsRunAsOneBatchedProduct) {
  SKIP_WITHOUT_GPU();
  for (const std::string op : {"MatMul", "BatchMatMul"})
  for (bool transposed : {false, true}) {
    for (bool with_bias : {true, false}) {
      const Builder b = SiblingGraph(op, DType::kFloat32, transposed, with_bias);
      const std::string what = fmt::format("{} transposed {} bias {}", op, transposed, with_bias);
      const Shape x = op == "MatMul" ? Shape{10, 16} : Shape{2, 5, 16};
      auto engine = CheckOnGpu(b, {cputest::RandScaled(x, 60, 1.0f)}, what);
      ASSERT_TRUE(engine) << what;
      int grouped = 0;
      for (const auto& step : dynamic_cast<const CudaEngine&>(*engine).steps())
        if (step.kernel == "cublasLt (3 products)") {
          ++grouped;
          EXPECT_EQ(step.nodes, with_bias ? "q+q_bias+k+k_bias+v+v_bias" : "q+k+v") << what;
        }
      EXPECT_EQ(grouped, 1) << what;
    }
  }
}

TEST(CudaBackendGpu, MatMulCandidatesAreTimedOncePerShapeAndTheChoiceIsCorrect) {
  SKIP_WITHOUT_GPU();
  Builder b;
  const ir::ValueId x = b.Input("x", {64, 128});
  b.Output("y", b.Op("MatMul", "mm", {x, b.Const("w", RandomTensor(DType::kFloat32, {128, 96}, 71))}));
  const ir::Node& node = b.g->node(b.g->Producer(b.g->outputs()[0])->id);
  backend::cuda::MatMulKernel kernel(node, DType::kFloat32);
  kernel.Prepare({64, 128}, {128, 96}, {64, 96});
  kernel.Prepare({64, 128}, {128, 96}, {64, 96});
  EXPECT_EQ(kernel.plans_tuned(), 1);
  const Tensor input = RandomTensor(DType::kFloat32, {64, 128}, 72);
  std::vector<Tensor> operands = {ToDevice(input), ToDevice(*b.g->ConstantOf(node.inputs[1]))};
  Tensor out = backend::cuda::Services(0).allocator().AllocateTensor(DType::kFloat32, {64, 96});
  auto stream = backend::cuda::Services(0).CreateStream();
  kernel.Launch(operands, out, static_cast<cudaStream_t>(stream->native_handle()));
  stream->Synchronize();
  EXPECT_EQ(kernel.plans_tuned(), 1);  // the launch used the prepared plan
  ExpectMatches(ToHost(out), runtime::ReferenceExecutor(b.g).Run({input})[0], "timed MatMul");
}

struct RowCase {
  std::string name, op;
  Shape shape;
  std::vector<int64_t> axes;  // Softmax: {axis}
  bool keep_dims = false;
  DType dtype = DType::kFloat32;
};

void PrintTo(const RowCase& c, std::ostream* os) { *os << c.name; }

class CudaRows : public ::testing::TestWithParam<RowCase> {};

TEST_P(CudaRows, MatchesReference) {
  SKIP_WITHOUT_GPU();
  const RowCase& rc = GetParam();
  Builder b;
  const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(rc.shape.begin(), rc.shape.end()), rc.dtype);
  ir::ValueId y;
  if (rc.op == "Softmax" || rc.op == "LogSoftmax") {
    ir::AttrMap a;
    a.Set("axis", rc.axes.at(0));
    y = b.Op(rc.op, "row", {x}, a);
  } else {
    ir::AttrMap a;
    a.Set("keep_dims", rc.keep_dims);
    const Tensor axes = Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(rc.axes.size())}, rc.axes);
    y = b.Op(rc.op, "row", {x, b.Const("axes", axes)}, a);
  }
  b.Output("y", y);
  auto engine = CheckOnGpu(b, {RandomTensor(rc.dtype, rc.shape, 51)}, rc.name);
  ASSERT_TRUE(engine);
  EXPECT_EQ(dynamic_cast<const CudaEngine&>(*engine).steps().at(0).kernel, "nvrtc row");
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaRows,
                         ::testing::Values(RowCase{"softmax_last", "Softmax", {6, 3, 77}, {-1}},
                                           RowCase{"softmax_long_rows", "Softmax", {4, 5000}, {1}},
                                           RowCase{"softmax_middle", "Softmax", {2, 9, 13}, {1}},
                                           RowCase{"log_softmax", "LogSoftmax", {5, 33}, {-1}},
                                           RowCase{"log_softmax_129", "LogSoftmax", {7, 129}, {-1}},
                                           RowCase{"softmax_1024", "Softmax", {3, 1024}, {-1}},
                                           RowCase{"softmax_1025", "Softmax", {3, 1025}, {-1}},
                                           RowCase{"max_1024_f16", "ReduceMax", {5, 1024}, {1}, false, DType::kFloat16},
                                           RowCase{"softmax_f16", "Softmax", {8, 130}, {-1}, false, DType::kFloat16},
                                           RowCase{"mean_spatial_nhwc", "ReduceMean", {2, 7, 7, 64}, {1, 2}},
                                           RowCase{"mean_last_keep", "ReduceMean", {3, 4, 300}, {-1}, true},
                                           RowCase{"sum_all", "ReduceSum", {5, 6, 7}, {0, 1, 2}},
                                           RowCase{"max_first", "ReduceMax", {9, 5, 4}, {0}},
                                           RowCase{"min_middle", "ReduceMin", {3, 8, 5}, {1}},
                                           RowCase{"prod_last", "ReduceProd", {4, 6}, {1}},
                                           RowCase{"norm_last", "ReduceEuclideanNorm", {4, 50}, {1}},
                                           RowCase{"mean_bf16", "ReduceMean", {16, 256}, {1}, false, DType::kBFloat16},
                                           RowCase{"sum_f64", "ReduceSum", {16, 100}, {1}, false, DType::kFloat64}),
                         [](const ::testing::TestParamInfo<RowCase>& info) { return info.param.name; });

// x (+ r when `residual`), normalized over the last dim in ONNX LayerNormalization's decomposed
// form, scaled and shifted: the engine fuses it into one layer-norm step.
Builder LayerNormGraph(const Shape& shape, DType dtype, bool residual, bool sum_is_output,
                       const Shape& residual_shape = {}) {
  Builder b;
  const std::vector<ir::Dim> dims(shape.begin(), shape.end());
  ir::ValueId x = b.Input("x", dims, dtype);
  if (residual) {
    const Shape& r = residual_shape.empty() ? shape : residual_shape;
    x = b.Op("Add", "residual", {x, b.Input("r", std::vector<ir::Dim>(r.begin(), r.end()), dtype)});
    if (sum_is_output) b.Output("sum", x);
  }
  ir::AttrMap keep;
  keep.Set("keep_dims", true);
  const Tensor last = Tensor::FromVector<int64_t>(DType::kInt64, {1}, {-1});
  const ir::ValueId mean = b.Op("ReduceMean", "mean", {x, b.Const("axes", last)}, keep);
  const ir::ValueId d = b.Op("Sub", "centered", {x, mean});
  const ir::ValueId var = b.Op("ReduceMean", "var", {b.Op("Mul", "sq", {d, d}), b.Const("axes2", last)}, keep);
  Tensor eps = RandomTensor(dtype, {}, 1);
  if (dtype == DType::kFloat16) eps.data<Half>()[0] = Half(1e-5f);
  if (dtype == DType::kFloat32) eps.data<float>()[0] = 1e-5f;
  const ir::ValueId inv = b.Op("Rsqrt", "inv_std", {b.Op("Add", "var_eps", {var, b.Const("eps", eps)})});
  const Shape row = {shape.back()};
  const ir::ValueId scaled =
      b.Op("Mul", "scaled", {b.Op("Mul", "normalized", {d, inv}), b.Const("gamma", RandomTensor(dtype, row, 2))});
  b.Output("y", b.Op("Add", "biased", {scaled, b.Const("beta", RandomTensor(dtype, row, 3))}));
  return b;
}

TEST(CudaBackendGpu, LayerNormsFuseIntoOneStepAndMatchTheReference) {
  SKIP_WITHOUT_GPU();
  // Row lengths for the warp kernels (4, 8, 16 and 32 values per lane) and the block kernel.
  for (const Shape& shape : {Shape{7, 100}, Shape{3, 5, 256}, Shape{2, 9, 768}, Shape{4, 1024}, Shape{3, 3000}})
    for (DType dtype : {DType::kFloat32, DType::kFloat16})
      for (const auto& [residual, sum_is_output] : {std::pair{false, false}, {true, false}, {true, true}}) {
        const std::string what = fmt::format("{} {} residual {} sum read elsewhere {}", ShapeToString(shape),
                                             DTypeName(dtype), residual, sum_is_output);
        const Builder b = LayerNormGraph(shape, dtype, residual, sum_is_output);
        std::vector<Tensor> inputs = {RandomTensor(dtype, shape, 11)};
        if (residual) inputs.push_back(RandomTensor(dtype, shape, 12));
        std::unique_ptr<backend::Engine> engine;
        if (dtype == DType::kFloat32) {
          engine = CheckOnGpu(b, inputs, what);
        } else {
          // The reference rounds each of the nine ops' results to float16; the kernel rounds once.
          std::vector<Shape> shapes;
          for (const Tensor& t : inputs) shapes.push_back(t.shape());
          engine = CudaBackend().Compile(*b.g, ExactProfile(shapes), {});
          const auto got = RunOnGpu(*engine, inputs);
          const auto want = runtime::ReferenceExecutor(b.g).Run(inputs);
          for (size_t i = 0; i < want.size(); ++i) EXPECT_LE(RelativeL2(got[i], want[i]), 2e-3) << what;
        }
        ASSERT_TRUE(engine) << what;
        const auto steps = dynamic_cast<const CudaEngine&>(*engine).steps();
        const bool fused_add = residual && !sum_is_output;
        ASSERT_EQ(steps.size(), residual && sum_is_output ? 2u : 1u) << what;
        EXPECT_EQ(steps.back().kernel, fused_add ? "nvrtc add+layernorm" : "nvrtc layernorm") << what;
      }
  // A residual that broadcasts (a position table added to every sequence) is added first.
  const Builder b = LayerNormGraph({3, 9, 768}, DType::kFloat32, true, false, {1, 9, 768});
  auto engine = CheckOnGpu(b, {RandomTensor(DType::kFloat32, {3, 9, 768}, 13), RandomTensor(DType::kFloat32, {1, 9, 768}, 14)},
                           "broadcast residual");
  ASSERT_TRUE(engine);
  EXPECT_EQ(dynamic_cast<const CudaEngine&>(*engine).steps().back().kernel, "nvrtc add+layernorm");
}

TEST(CudaBackendGpu, AttentionRunsAsOneFusedStepAndMatchesTheReference) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  for (DType dtype : {DType::kFloat16, DType::kBFloat16})
    for (bool score_div : {false, true}) {
      const std::string what = fmt::format("{} score_div {}", DTypeName(dtype), score_div);
      const int64_t b = 2, s = 64, h = 4, d = 64;
      const Builder g = AttentionGraph(b, s, h, d, dtype, score_div);
      // The mask hides the last 10 keys of the second sequence (a padded batch).
      Tensor mask(dtype, {b, 1, s, s});
      for (int64_t i = 0; i < mask.num_elements(); ++i) {
        const int64_t key = i % s, batch = i / (s * s);
        const float value = batch == 1 && key >= s - 10 ? -10000.0f : 0.0f;
        if (dtype == DType::kFloat16) mask.data<Half>()[i] = Half(value);
        else mask.data<BFloat16>()[i] = BFloat16(value);
      }
      const std::vector<Tensor> inputs = {RandomTensor(dtype, {b, s, h, d}, 61), RandomTensor(dtype, {b, s, h, d}, 62),
                                          RandomTensor(dtype, {b, s, h, d}, 63), mask};
      auto engine = CudaBackend().Compile(*g.g, ExactProfile({{b, s, h, d}, {b, s, h, d}, {b, s, h, d}, {b, 1, s, s}}), {});
      const auto steps = dynamic_cast<const CudaEngine&>(*engine).steps();
      ASSERT_EQ(steps.size(), 1u) << what;
      EXPECT_EQ(steps[0].kernel, "cudnn attention") << what;
      const Tensor got = RunOnGpu(*engine, inputs)[0];
      const Tensor want = runtime::ReferenceExecutor(g.g).Run(inputs)[0];
      // The reference rounds the scores and probabilities to the storage type; the fused kernel
      // keeps them in float32, so the bound is that of one rounding of each (relative L2).
      EXPECT_LE(RelativeL2(got, want), dtype == DType::kFloat16 ? 2e-3 : 1.6e-2) << what;
    }
}

struct GpuConvCase {
  std::string name;
  std::string format = "NHWC", padding = "SAME", op = "Conv2D";
  int64_t stride = 1, dilation = 1;
  bool bias = false;
  DType dtype = DType::kFloat32;
  int64_t n = 2, h = 11, w = 9, c = 8, k = 3, o = 16;
};

void PrintTo(const GpuConvCase& c, std::ostream* os) { *os << c.name; }

class CudaConv : public ::testing::TestWithParam<GpuConvCase> {};

TEST_P(CudaConv, MatchesReference) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  const GpuConvCase& cc = GetParam();
  const bool nhwc = cc.format == "NHWC";
  const Shape xs = nhwc ? Shape{cc.n, cc.h, cc.w, cc.c} : Shape{cc.n, cc.c, cc.h, cc.w};
  const bool depthwise = cc.op == "DepthwiseConv2D";
  const Shape fs = depthwise ? Shape{cc.k, cc.k, cc.c, 2} : Shape{cc.k, cc.k, cc.c, cc.o};
  Builder b;
  const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(xs.begin(), xs.end()), cc.dtype);
  ir::AttrMap attrs = nntest::ConvAttrs(cc.format, cc.padding, {cc.stride, cc.stride}, {cc.dilation, cc.dilation}, {});
  std::vector<ir::ValueId> args = {x, b.Const("f", RandomTensor(cc.dtype, fs, 71))};
  if (cc.bias) args.push_back(b.Const("bias", RandomTensor(cc.dtype, {depthwise ? cc.c * 2 : cc.o}, 72)));
  b.Output("y", b.Op(cc.op, "conv", args, attrs));
  auto engine = CheckOnGpu(b, {RandomTensor(cc.dtype, xs, 73)}, cc.name);
  ASSERT_TRUE(engine);
  // NCHW convolutions run NHWC between two transposes (channels-last), NHWC ones alone.
  const auto steps = dynamic_cast<const CudaEngine&>(*engine).steps();
  ASSERT_EQ(steps.size(), nhwc ? 1u : 3u);
  EXPECT_EQ(steps.at(nhwc ? 0 : 1).kernel, "cudnn");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CudaConv,
    ::testing::Values(GpuConvCase{"nhwc_same"},
                      GpuConvCase{"nhwc_valid_stride2_bias", "NHWC", "VALID", "Conv2D", 2, 1, true},
                      GpuConvCase{"nchw_same_bias", "NCHW", "SAME", "Conv2D", 1, 1, true},
                      GpuConvCase{"nhwc_dilation2", "NHWC", "SAME", "Conv2D", 1, 2},
                      GpuConvCase{"nhwc_same_stride2_odd", "NHWC", "SAME", "Conv2D", 2, 1, true, DType::kFloat32, 1, 15,
                                  13, 3, 7, 24},
                      GpuConvCase{"depthwise", "NHWC", "SAME", "DepthwiseConv2D", 1, 1, true},
                      GpuConvCase{"pointwise_1x1", "NHWC", "VALID", "Conv2D", 1, 1, true, DType::kFloat32, 4, 7, 7, 64,
                                  1, 32},
                      GpuConvCase{"nhwc_f16", "NHWC", "SAME", "Conv2D", 1, 1, true, DType::kFloat16}),
    [](const ::testing::TestParamInfo<GpuConvCase>& info) { return info.param.name; });

// A residual block as ResNets have it: the main branch's last convolution, the shortcut (here a
// 1x1 convolution computed after it in topological order), Add, Relu. The Add and the Relu run
// inside the main convolution's cuDNN graph, at the Add's place in the order.
TEST(CudaBackendGpu, ResidualAddAndReluFuseIntoTheConvolution) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
    Builder b;
    const ir::ValueId x = b.Input("x", {2, 10, 12, 16}, dtype);
    ir::AttrMap same = nntest::ConvAttrs("NHWC", "SAME", {1, 1}, {1, 1}, {});
    const ir::ValueId main = b.Op("Conv2D", "main", {x, b.Const("f", RandomTensor(dtype, {3, 3, 16, 24}, 81)),
                                                     b.Const("bias", RandomTensor(dtype, {24}, 82))},
                                  same);
    const ir::ValueId shortcut =
        b.Op("Conv2D", "shortcut", {x, b.Const("f1", RandomTensor(dtype, {1, 1, 16, 24}, 83))}, same);
    const ir::ValueId sum = b.Op("Add", "add", {main, shortcut});
    b.Output("y", b.Op("Relu", "relu", {sum}));
    const Tensor input = RandomTensor(dtype, {2, 10, 12, 16}, 84);
    std::unique_ptr<backend::Engine> engine;
    if (dtype == DType::kFloat32) {
      engine = CheckOnGpu(b, {input}, "residual float32");
    } else {
      // The reference rounds the convolution's output to float16 before the Add (values of a few
      // units: a half ulp is 2e-3), the fused graph rounds once at the end; so the bound is on
      // the whole tensor (relative L2), not per element.
      engine = CudaBackend().Compile(*b.g, ExactProfile({input.shape()}), {});
      const Tensor got = RunOnGpu(*engine, {input})[0];
      const Tensor want = runtime::ReferenceExecutor(b.g).Run({input})[0];
      EXPECT_LE(RelativeL2(got, want), 1e-3) << "residual float16";
    }
    ASSERT_TRUE(engine);
    const auto steps = dynamic_cast<const CudaEngine&>(*engine).steps();
    ASSERT_EQ(steps.size(), 2u);
    EXPECT_EQ(steps[0].nodes, "shortcut");
    EXPECT_EQ(steps[1].nodes, "main+add+relu");
    EXPECT_EQ(steps[1].kernel, "cudnn");
  }
}

// x [n, h, w, c] (float16) -> a SAME 3x3 convolution to `oc` channels -> flattened to
// [n*h*w, oc] -> a product with [oc, cols]: one cuDNN and one cuBLASLt tactic problem.
Builder ConvThenProduct(const Shape& x_shape, int64_t oc, int64_t cols, uint32_t seed) {
  Builder b;
  const DType dtype = DType::kFloat16;
  const ir::ValueId x = b.Input("x", {x_shape[0], x_shape[1], x_shape[2], x_shape[3]}, dtype);
  ir::AttrMap same = nntest::ConvAttrs("NHWC", "SAME", {1, 1}, {1, 1}, {});
  const ir::ValueId conv = b.Op("Conv2D", "conv", {x, b.Const("f", RandomTensor(dtype, {3, 3, x_shape[3], oc}, seed))}, same);
  const int64_t rows = x_shape[0] * x_shape[1] * x_shape[2];
  const ir::ValueId flat = b.Op("Reshape", "flat", {conv, b.Const("shape", Tensor::FromVector<int64_t>(DType::kInt64, {2}, {rows, oc}))});
  b.Output("y", b.Op("MatMul", "mm", {flat, b.Const("w", RandomTensor(dtype, {oc, cols}, seed + 1))}));
  return b;
}

// The second build of one segment for one shape times nothing: every convolution plan and
// matrix product algorithm comes from the timing cache, and the engine computes the same bits.
TEST(CudaBackendGpu, SecondBuildTakesEveryTacticFromTheTimingCache) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  const Builder b = ConvThenProduct({3, 9, 7, 16}, 32, 24, 91);
  const Tensor input = RandomTensor(DType::kFloat16, {3, 9, 7, 16}, 93);
  backend::cuda::TimingCache& cache = backend::cuda::ProcessTimingCache();
  auto first = CudaBackend().Compile(*b.g, ExactProfile({input.shape()}), {});
  const int64_t hits = cache.hits(), misses = cache.misses();
  auto second = CudaBackend().Compile(*b.g, ExactProfile({input.shape()}), {});
  EXPECT_EQ(cache.misses(), misses) << "the second build looked up a tactic it had not recorded";
  // The convolution always asks; the product asks when cuBLASLt offers more than one algorithm.
  EXPECT_GE(cache.hits(), hits + 1);
  EXPECT_LE(cache.hits(), hits + 2);
  const Tensor a = RunOnGpu(*first, {input})[0], c = RunOnGpu(*second, {input})[0];
  ASSERT_EQ(a.byte_size(), c.byte_size());
  EXPECT_EQ(std::memcmp(a.raw_data(), c.raw_data(), a.byte_size()), 0) << "the two builds chose different kernels";
  EXPECT_LE(RelativeL2(a, runtime::ReferenceExecutor(b.g).Run({input})[0]), 2e-3);
}

// With KILN_TACTIC_LOG set, a build that times tactics writes each choice's candidates and times
// to the log, the chosen one marked: for the convolution's cuDNN plans and the product's cuBLASLt
// algorithms (shapes no other test builds, so nothing comes from the timing cache), and where the
// build's time went.
TEST(CudaBackendGpu, TacticLogListsTheTimedCandidatesAndTheChoice) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  const Builder b = ConvThenProduct({5, 11, 13, 32}, 40, 56, 95);
  const std::filesystem::path log = std::filesystem::temp_directory_path() / "kiln_tactic_log_test.txt";
  std::filesystem::remove(log);
  ::setenv("KILN_TACTIC_LOG", log.c_str(), 1);
  auto engine = CudaBackend().Compile(*b.g, ExactProfile({{5, 11, 13, 32}}), {});
  ::unsetenv("KILN_TACTIC_LOG");
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  EXPECT_NE(s.find("tactic cudnn"), std::string::npos) << s;
  EXPECT_NE(s.find("tactic cublasLt"), std::string::npos) << s;
  EXPECT_NE(s.find("  * "), std::string::npos) << "no candidate marked as chosen:\n" << s;
  EXPECT_NE(s.find(" us  "), std::string::npos) << "no timed candidate:\n" << s;
  // Where the build spent its time: cuDNN's plan building, the steps, each library step's choice.
  EXPECT_NE(s.find(" plans built in "), std::string::npos) << s;
  EXPECT_NE(s.find(" steps (kernels compiled or loaded) in "), std::string::npos) << s;
  EXPECT_NE(s.find("engine build: kernels of 2 library steps chosen in "), std::string::npos) << s;
  std::filesystem::remove(log);
}

// A dense layer followed by the exact GELU as PyTorch exports it (x * (1 + erf(x / sqrt(2))) *
// 0.5) runs in FP16/BF16 engines as one cuDNN product with the bias and GELU in its epilogue,
// with weights stored [k, n] or transposed, with and without a bias.
TEST(CudaBackendGpu, ProductsFollowedByGeluRunAsOneCudnnGraph) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  for (Precision precision : {Precision::kFP16, Precision::kBF16})
    for (bool transposed : {false, true})
      for (bool with_bias : {true, false}) {
        const std::string what = fmt::format("{} transposed {} bias {}", PrecisionName(precision), transposed, with_bias);
        Builder b;
        const ir::ValueId x = b.Input("x", {b.Symbol("rows"), 64});
        ir::AttrMap attrs;
        attrs.Set("transpose_b", transposed);
        const Shape w = transposed ? Shape{48, 64} : Shape{64, 48};
        ir::ValueId h = b.Op("MatMul", "dense", {x, b.Const("w", cputest::RandScaled(w, 111, 0.2f))}, attrs);
        if (with_bias) h = b.Op("Add", "dense_bias", {h, b.Const("b", cputest::RandScaled({48}, 112, 0.5f))});
        const ir::ValueId u = b.Op("Div", "u", {h, b.Const("sqrt2", Tensor::Scalar(DType::kFloat32, 1.41421356f))});
        const ir::ValueId a = b.Op("Add", "a", {b.Op("Erf", "erf", {u}), b.Const("one", Tensor::Scalar(DType::kFloat32, 1.0f))});
        b.Output("y", b.Op("Mul", "gelu", {b.Op("Mul", "xa", {h, a}), b.Const("half", Tensor::Scalar(DType::kFloat32, 0.5f))}));
        backend::CompileOptions options;
        options.precision = precision;
        options.cuda_gelu_epilogue = true;
        const Tensor input = cputest::RandScaled({72, 64}, 113, 1.0f);
        {  // cuDNN's own verdict on the fused graph (the engine would fall back without a word)
          ir::Graph narrowed = b.g->Clone();
          backend::cuda::NarrowFloat32(narrowed, precision == Precision::kFP16 ? DType::kFloat16 : DType::kBFloat16);
          const ir::Node* product = nullptr;
          ir::ValueId bias = ir::kNoValue;
          for (const ir::Node& n : narrowed.nodes()) {
            if (!n.removed && n.name == "dense") product = &n;
            if (!n.removed && n.name == "dense_bias") bias = n.inputs[1];
          }
          ASSERT_TRUE(product) << what;
          try {
            backend::cuda::MatMulGeluKernel kernel(narrowed, *product, bias, 0);
            kernel.Prepare({72, 64});
          } catch (const Error& e) {
            ADD_FAILURE() << what << ": " << e.what();
          }
        }
        auto engine = CudaBackend().Compile(*b.g, ExactProfile({input.shape()}), options);
        const auto steps = dynamic_cast<const CudaEngine&>(*engine).steps();
        // The input's cast to 16 bits, the product with its epilogue, the cast back to float32.
        ASSERT_EQ(steps.size(), 3u) << what;
        EXPECT_EQ(steps[1].kernel, "cudnn matmul+gelu") << what;
        EXPECT_EQ(steps[1].nodes, with_bias ? "dense+dense_bias+gelu/gelu" : "dense+gelu/gelu") << what;
        const Tensor got = RunOnGpu(*engine, {input})[0];
        const Tensor want = runtime::ReferenceExecutor(b.g).Run({input})[0];
        // One rounding of the inputs, weights and result to 16 bits (float32 accumulation).
        EXPECT_LE(RelativeL2(got, want), precision == Precision::kFP16 ? 2e-3 : 1.6e-2) << what;
      }
}

// BERT-base's FFN up-projection ([4096, 768] x [768, 3072] + bias, then GELU): cuDNN must take
// the fused graph at that size too, or say why.
TEST(CudaBackendGpu, BertSizedProductWithGeluEpilogueBuilds) {
  SKIP_WITHOUT_GPU();
  if (!backend::cuda::HaveCudnn()) GTEST_FAIL() << "this build has no cuDNN: the GPU suite needs a build with it";
  Builder b;
  const ir::ValueId x = b.Input("x", {4096, 768}, DType::kFloat16);
  const ir::ValueId h = b.Op("MatMul", "dense", {x, b.Const("w", RandomTensor(DType::kFloat16, {768, 3072}, 121))});
  const ir::ValueId bias = b.Const("b", RandomTensor(DType::kFloat16, {3072}, 122));
  b.Output("y", b.Op("Gelu", "gelu", {b.Op("Add", "dense_bias", {h, bias})}));
  const ir::Node* product = nullptr;
  for (const ir::Node& n : b.g->nodes())
    if (n.name == "dense") product = &n;
  ASSERT_TRUE(product);
  try {
    backend::cuda::MatMulGeluKernel kernel(*b.g, *product, bias, 0);
    kernel.Prepare({4096, 768});
  } catch (const Error& e) {
    ADD_FAILURE() << e.what();
  }
}

TEST(CudaBackendGpu, PoolingMatchesReference) {
  SKIP_WITHOUT_GPU();
  struct Case {
    std::string op, format, padding;
    std::vector<int64_t> ksize, strides;
    DType dtype;
  };
  const std::vector<Case> cases = {
      {"MaxPool", "NHWC", "SAME", {3, 3}, {2, 2}, DType::kFloat32},
      {"MaxPool", "NCHW", "VALID", {2, 2}, {2, 2}, DType::kFloat32},
      {"AvgPool", "NHWC", "SAME", {3, 3}, {1, 1}, DType::kFloat32},  // padded taps not counted
      {"AvgPool", "NCHW", "SAME", {2, 3}, {2, 1}, DType::kFloat32},
      {"AvgPool", "NHWC", "VALID", {7, 7}, {1, 1}, DType::kFloat16},
      {"MaxPool", "NHWC", "SAME", {3, 3}, {2, 2}, DType::kBFloat16}};
  // 5 channels: one element per thread; 16: NHWC runs the vector loop (16 bytes of channels per
  // thread), NCHW (pooled as NHWC between transposes) too.
  for (const Case& c : cases)
  for (int64_t channels : {5, 16}) {
    const Shape xs = c.format == "NHWC" ? Shape{2, 9, 7, channels} : Shape{2, channels, 9, 7};
    Builder b;
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(xs.begin(), xs.end()), c.dtype);
    ir::AttrMap a;
    a.Set("ksize", c.ksize);
    a.Set("strides", c.strides);
    a.Set("padding", c.padding);
    a.Set("data_format", c.format);
    b.Output("y", b.Op(c.op, "pool", {x}, a));
    const std::string what =
        fmt::format("{} {} {} {} channels {}", c.op, c.format, c.padding, DTypeName(c.dtype), channels);
    if (c.padding == "VALID" && c.ksize[0] == 7) continue;  // 7x7 VALID needs a 7x7 input: below
    auto engine = CheckOnGpu(b, {RandomTensor(c.dtype, xs, 81)}, what);
    ASSERT_TRUE(engine) << what;
    // NCHW pooling runs NHWC between two transposes (channels-last).
    bool pooled = false;
    for (const auto& step : dynamic_cast<const CudaEngine&>(*engine).steps()) pooled = pooled || step.kernel == "nvrtc pool";
    EXPECT_TRUE(pooled) << what;
    if (c.format == "NHWC") {  // which loop the kernel takes for these tensors
      const backend::cuda::PoolKernel kernel(*b.g, b.g->node(b.g->Producer(b.g->outputs()[0])->id),
                                             backend::cuda::ArchOf(0));
      const Tensor in = ToDevice(RandomTensor(c.dtype, xs, 81));
      const Tensor out = backend::cuda::Services(0).allocator().AllocateTensor(c.dtype, {2, 5, 4, channels});
      EXPECT_EQ(kernel.UsesVectorLoop(in, out), channels == 16) << what;
    }
  }
  Builder b;  // global 7x7 average, as at the end of ResNet
  const ir::ValueId x = b.Input("x", {2, 7, 7, 64}, DType::kFloat16);
  ir::AttrMap a;
  a.Set("ksize", std::vector<int64_t>{7, 7});
  a.Set("strides", std::vector<int64_t>{1, 1});
  a.Set("padding", std::string("VALID"));
  b.Output("y", b.Op("AvgPool", "pool", {x}, a));
  EXPECT_TRUE(CheckOnGpu(b, {RandomTensor(DType::kFloat16, {2, 7, 7, 64}, 82)}, "global average pool"));
}

TEST(CudaBackendGpu, TransposeAndConcat) {
  SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kInt64, DType::kBool}) {
    Builder b;
    const ir::ValueId x = b.Input("x", {2, 3, 4, 5}, dtype);
    const ir::ValueId z = b.Input("z", {2, 3, 1, 5}, dtype);
    const ir::ValueId t =
        b.Op("Transpose", "t", {x, b.Const("perm", Tensor::FromVector<int64_t>(DType::kInt64, {4}, {0, 2, 3, 1}))});
    b.Output("t", t);
    b.Output("c", b.Op("Concat", "c", {x, z, x, b.Const("axis", Tensor::Scalar<int32_t>(DType::kInt32, -2))}));
    auto engine = CheckOnGpu(b, {RandomTensor(dtype, {2, 3, 4, 5}, 61), RandomTensor(dtype, {2, 3, 1, 5}, 62)},
                             fmt::format("transpose/concat {}", DTypeName(dtype)));
    ASSERT_TRUE(engine);
  }
}

// Slices copy on the device with the reference's geometry (ir::array::StridedSliceGeometry):
// every StridedSlice mask, negative strides (backwards walks take the 64-bit kernel), Reverse,
// Slice with size -1, and bounds computed on the host from the input's shape.
TEST(CudaBackendGpu, SlicesMatchTheReference) {
  SKIP_WITHOUT_GPU();
  auto i64 = [](Builder& b, const std::string& name, std::vector<int64_t> v) {
    return b.Const(name, Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(v.size())}, v));
  };
  struct Case {
    const char* name;
    std::vector<int64_t> begin, end, strides;
    ir::array::StridedSliceMasks masks;
  };
  const std::vector<Case> cases = {
      {"rows", {1, 0, 0}, {3, 6, 16}, {1, 1, 1}, {}},
      {"step2", {0, 1, 0}, {4, 6, 16}, {1, 2, 3}, {}},
      {"backwards", {-1, 0, 15}, {0, 6, 0}, {-1, 1, -2}, {.begin_mask = 1, .end_mask = 5}},
      {"shrink", {0, 2, 0}, {4, 3, 16}, {1, 1, 1}, {.shrink_axis_mask = 2}},
      {"ellipsis+newaxis", {0, 0, 8}, {0, 0, 16}, {1, 1, 1}, {.ellipsis_mask = 1, .new_axis_mask = 2}},
      {"last", {0, -1}, {0, 0}, {1, 1}, {.begin_mask = 1, .end_mask = 1, .shrink_axis_mask = 2}},
  };
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kInt64, DType::kBool}) {
    Builder b;
    const ir::ValueId x = b.Input("x", {4, 6, 16}, dtype);
    for (const Case& c : cases) {
      auto attrs = testutil::Attrs({{"begin_mask", c.masks.begin_mask},
                                    {"end_mask", c.masks.end_mask},
                                    {"ellipsis_mask", c.masks.ellipsis_mask},
                                    {"new_axis_mask", c.masks.new_axis_mask},
                                    {"shrink_axis_mask", c.masks.shrink_axis_mask}});
      const std::string n = c.name;
      b.Output(n, b.Op("StridedSlice", n,
                       {x, i64(b, n + "_b", c.begin), i64(b, n + "_e", c.end), i64(b, n + "_s", c.strides)}, attrs));
    }
    b.Output("slice", b.Op("Slice", "slice", {x, i64(b, "sb", {1, 2, 3}), i64(b, "ss", {2, -1, 8})}));
    b.Output("reverse", b.Op("Reverse", "reverse", {x, i64(b, "axes", {0, -1})}));
    auto engine = CheckOnGpu(b, {RandomTensor(dtype, {4, 6, 16}, 71)}, fmt::format("slices {}", DTypeName(dtype)));
    ASSERT_TRUE(engine);
    for (const auto& step : dynamic_cast<const CudaEngine&>(*engine).steps())
      EXPECT_EQ(step.kernel, "nvrtc slice") << step.nodes;
  }
  // Bounds from the input's shape (x[:, : width / 2]): computed on the host per input shapes.
  Builder d;
  const ir::ValueId x = d.Input("x", {d.Symbol("n"), d.Symbol("w")});
  const ir::ValueId shape = d.Op("Shape", "shape", {x}, testutil::Attrs({{"out_type", DType::kInt64}}));
  const ir::ValueId half = d.Op("FloorDiv", "half", {shape, i64(d, "two", {2, 2})});
  const ir::ValueId y = d.Op("StridedSlice", "left", {x, i64(d, "zero", {0, 0}), half, i64(d, "ones", {1, 1})},
                             testutil::Attrs({{"begin_mask", int64_t{1}}, {"end_mask", int64_t{1}}}));
  d.Output("y", y);
  CudaBackend cuda;
  for (const ir::Node& n : d.g->nodes()) {
    if (n.op != "Constant") {
      EXPECT_EQ(cuda.Unsupported(*d.g, n), std::nullopt) << n.name;
    }
  }
  backend::Profile profile;
  profile.inputs.push_back({{1, 2}, {3, 10}, {8, 64}});
  auto engine = cuda.Compile(*d.g, profile, {});
  runtime::ReferenceExecutor ref(d.g);
  for (Shape s : {Shape{3, 10}, Shape{8, 63}, Shape{1, 2}}) {
    const Tensor in = RandomTensor(DType::kFloat32, s, 72);
    ExpectMatches(RunOnGpu(*engine, {in}).at(0), ref.Run({in}).at(0), "x[:, :w/2] at " + ShapeToString(s));
  }
  // Bounds computed from tensor values stay native.
  Builder v;
  const ir::ValueId vx = v.Input("x", {8});
  const ir::ValueId vb = v.Input("b", {1}, DType::kInt64);
  const ir::ValueId vy = v.Op("Slice", "s", {vx, vb, i64(v, "size", {2})});
  v.Output("y", vy);
  auto why = cuda.Unsupported(*v.g, *v.g->Producer(vy));
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("computed from tensor values"), std::string::npos) << *why;
}

TEST(CudaBackendGpu, ViewsAndDynamicShapesAndInPlaceOutputs) {
  SKIP_WITHOUT_GPU();
  Builder b;
  const ir::Dim n = b.Symbol("n");
  const ir::ValueId x = b.Input("x", {n, 6, 4});
  const ir::ValueId r =
      b.Op("Reshape", "flat", {x, b.Const("shape", Tensor::FromVector<int64_t>(DType::kInt64, {2}, {-1, 24}))});
  const ir::ValueId y = b.Op("MatMul", "mm", {r, b.Const("w", cputest::RandScaled({24, 10}, 31, 1.0f))});
  b.Output("y", b.Op("Relu", "relu", {y}));
  b.Output("flat", r);  // a view as an output: copied into the caller's buffer
  CudaBackend cuda;
  backend::Profile profile;
  profile.inputs.push_back({{1, 6, 4}, {4, 6, 4}, {16, 6, 4}});
  auto engine = cuda.Compile(*b.g, profile, {});
  runtime::ReferenceExecutor ref(b.g);
  for (int64_t batch : {1, 5, 16}) {
    const Tensor in = cputest::RandScaled({batch, 6, 4}, static_cast<uint32_t>(40 + batch), 1.0f);
    const auto want = ref.Run({in});
    const auto got = RunOnGpu(*engine, {in});
    ASSERT_EQ(got.size(), 2u);
    ExpectMatches(got[0], want[0], fmt::format("y at batch {}", batch));
    ExpectMatches(got[1], want[1], fmt::format("flat at batch {}", batch));
  }
  testutil::ExpectError(
      [&] {
        engine->OutputShapes(std::vector<Shape>{{17, 6, 4}});
      },
      ErrorCode::kInvalidArgument, {"outside the engine's profile"});
  // Host inputs are refused: engines read device memory.
  const std::vector<Tensor> host_inputs = {cputest::RandScaled({2, 6, 4}, 1, 1.0f)};
  testutil::ExpectError([&] { engine->Execute(host_inputs, backend::cuda::Services(0)); }, ErrorCode::kInvalidArgument,
                        {"input 'x'", "on cuda:0"});
}

TEST(CudaBackendGpu, RepeatedRunsReplayOneCapturedGraph) {
  SKIP_WITHOUT_GPU();
  const Builder b = SmallMlp();
  CudaBackend cuda;
  const backend::Profile profile = SmallMlpProfile();
  backend::CompileOptions with_graphs, without;
  without.cuda_graphs = false;
  auto graphed = cuda.Compile(*b.g, profile, with_graphs);
  auto eager = cuda.Compile(*b.g, profile, without);
  const auto& gpu = backend::cuda::Services(0);
  auto stream = gpu.CreateStream();
  const Tensor in = gpu.allocator().AllocateTensor(DType::kFloat32, {16, 32});
  const std::vector<Shape> out_shapes = graphed->OutputShapes(std::vector<Shape>{{16, 32}});
  Tensor out = gpu.allocator().AllocateTensor(graphed->output_dtypes()[0], out_shapes[0]);
  // Only the first output is compared here; the engine writes all of them.
  std::vector<Tensor> all_outs;
  for (size_t i = 0; i < out_shapes.size(); ++i)
    all_outs.push_back(i == 0 ? out : gpu.allocator().AllocateTensor(graphed->output_dtypes()[i], out_shapes[i]));
  runtime::ReferenceExecutor ref(b.g);
  auto run = [&](const backend::Engine& e, const Tensor& x, int runs) {
    gpu.transfer().CopyTensor(x, const_cast<Tensor&>(in), *stream);
    for (int i = 0; i < runs; ++i) e.Enqueue(std::span<const Tensor>(&in, 1), all_outs, *stream);
    Tensor host(out.dtype(), out.shape());
    gpu.transfer().CopyTensor(out, host, *stream);
    stream->Synchronize();
    return host;
  };
  auto& graphed_engine = dynamic_cast<const CudaEngine&>(*graphed);
  for (uint32_t seed : {1u, 2u, 3u}) {  // new data in the same buffers: the replay reads it
    const Tensor x = cputest::RandScaled({16, 32}, 200 + seed, 1.0f);
    const Tensor want = ref.Run({x})[0];
    const Tensor got = run(*graphed, x, 3);
    ExpectMatches(got, want, fmt::format("graph replay, data {}", seed));
    // The same engine launch by launch (a layer profile disables replay): the same plans, so
    // bit-identical. (Another build may time other cuBLASLt/cuDNN candidates fastest and round
    // differently, so the graph-less engine is compared only with the reference.)
    backend::LayerProfiler launches;
    backend::SetActiveLayerProfiler(&launches);
    const Tensor launch_by_launch = run(*graphed, x, 1);
    backend::SetActiveLayerProfiler(nullptr);
    ASSERT_EQ(got.byte_size(), launch_by_launch.byte_size());
    EXPECT_EQ(std::memcmp(got.raw_data(), launch_by_launch.raw_data(), got.byte_size()), 0)
        << "a replayed graph computes exactly what the launches compute";
    ExpectMatches(run(*eager, x, 1), want, fmt::format("launch by launch, data {}", seed));
  }
  EXPECT_EQ(graphed_engine.graphs_captured(), 1u);
  EXPECT_EQ(dynamic_cast<const CudaEngine&>(*eager).graphs_captured(), 0u);
  // Another batch (another shape, other buffers) is another graph, captured on its second run.
  const Tensor in8 = gpu.allocator().AllocateTensor(DType::kFloat32, {8, 32});
  std::vector<Tensor> outs8;
  for (const Shape& sh : graphed->OutputShapes(std::vector<Shape>{{8, 32}}))
    outs8.push_back(gpu.allocator().AllocateTensor(graphed->output_dtypes()[outs8.size()], sh));
  graphed->Enqueue(std::span<const Tensor>(&in8, 1), outs8, *stream);
  stream->Synchronize();
  EXPECT_EQ(graphed_engine.graphs_captured(), 1u);
  graphed->Enqueue(std::span<const Tensor>(&in8, 1), outs8, *stream);
  stream->Synchronize();
  EXPECT_EQ(graphed_engine.graphs_captured(), 2u);
  // While a layer profile is active, runs are launch by launch (each step timed).
  backend::LayerProfiler profiler;
  backend::SetActiveLayerProfiler(&profiler);
  run(*graphed, cputest::RandScaled({16, 32}, 9, 1.0f), 1);
  backend::SetActiveLayerProfiler(nullptr);
  EXPECT_FALSE(profiler.Entries().empty());
}

TEST(CudaBackendGpu, Fp16AndBf16EnginesNarrowInsideOnly) {
  SKIP_WITHOUT_GPU();
  const Builder b = SmallMlp();
  CudaBackend cuda;
  const backend::Profile profile = SmallMlpProfile();
  const Tensor x = cputest::RandScaled({16, 32}, 105, 1.0f);
  const auto want = runtime::ReferenceExecutor(b.g).Run({x});
  for (Precision p : {Precision::kFP16, Precision::kBF16}) {
    backend::CompileOptions options;
    options.precision = p;
    auto engine = cuda.Compile(*b.g, profile, options);
    EXPECT_EQ(engine->precision(), p);
    EXPECT_EQ(engine->precision_note(), "");
    const auto got = RunOnGpu(*engine, {x});
    ASSERT_EQ(got.size(), 2u);
    const double bound = p == Precision::kFP16 ? 5e-3 : 4e-2;  // docs/testing.md
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(got[i].dtype(), DType::kFloat32);
      EXPECT_LT(RelativeL2Error(got[i], want[i]), bound) << PrecisionName(p) << " output " << i;
    }
  }
}

TEST(CudaBackendGpu, ShapeComputationsAndGathersRunInOneEngine) {
  SKIP_WITHOUT_GPU();
  Builder b = DynamicShapeGraph();
  Tensor ids(DType::kInt64, {3});
  ids.data<int64_t>()[0] = 4;
  ids.data<int64_t>()[1] = 2;
  ids.data<int64_t>()[2] = 0;
  auto engine = CheckOnGpu(b, {RandomTensor(DType::kFloat32, {3, 8}, 5), ids}, "dynamic shapes");
  ASSERT_TRUE(engine);
  for (const auto& step : dynamic_cast<const CudaEngine&>(*engine).steps())
    EXPECT_EQ(step.nodes.find("shape"), std::string::npos) << "Shape ran as a device step: " << step.nodes;
}

// Rows of whole 16-byte units (embedding rows) are copied 16 bytes at a time, others element by
// element; both against the reference, on every axis position and index dtype.
TEST(CudaBackendGpu, GathersOfWholeRowsAndOfSingleElementsMatchTheReference) {
  SKIP_WITHOUT_GPU();
  struct Case {
    DType dtype;
    Shape params;
    int64_t axis;
    DType index;
  };
  const std::vector<Case> cases = {{DType::kFloat16, {50, 768}, 0, DType::kInt64},
                                   {DType::kFloat32, {3, 10, 16}, 1, DType::kInt32},
                                   {DType::kFloat16, {10, 12}, 0, DType::kInt32},
                                   {DType::kBool, {10, 3}, 0, DType::kInt64},
                                   {DType::kInt64, {4, 10}, 1, DType::kInt64}};
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId p = b.Input("p", c.params, c.dtype);
    const ir::ValueId ids = b.Input("ids", {2, 3}, c.index);
    b.Output("y", b.Op("Gather", "g", {p, ids, b.Const("axis", Tensor::Scalar<int64_t>(DType::kInt64, c.axis))}));
    Tensor idx(c.index, {2, 3});
    const int64_t dim = c.params[static_cast<size_t>(c.axis)];
    for (int64_t k = 0; k < 6; ++k) {
      const int64_t v = (k * 7 + 3) % dim;
      if (c.index == DType::kInt32)
        idx.data<int32_t>()[k] = static_cast<int32_t>(v);
      else
        idx.data<int64_t>()[k] = v;
    }
    ASSERT_TRUE(CheckOnGpu(b, {RandomTensor(c.dtype, c.params, 81), idx},
                           fmt::format("gather {} {} axis {}", DTypeName(c.dtype), ShapeToString(c.params), c.axis)));
  }
}

TEST(CudaBackendGpu, SavedEnginesLoadWithoutCompiling) {
  SKIP_WITHOUT_GPU();
  Builder b = DynamicShapeGraph();
  CudaBackend cuda;
  const backend::Profile profile = ExactProfile({{2, 8}, {2}});
  auto engine = cuda.Compile(*b.g, profile, {});
  const std::string payload = engine->Serialize();
  ASSERT_EQ(payload.rfind("kiln-cuda-engine 2\n", 0), 0u);
  // A fresh process has only the file's cubins; here the cache already holds them, so priming it
  // from the payload and loading must compile nothing either way.
  const int64_t before = backend::cuda::NvrtcCompileCount();
  auto loaded = cuda.Deserialize(*b.g, profile, {}, payload);
  EXPECT_EQ(backend::cuda::NvrtcCompileCount(), before);
  const auto decoded = backend::cuda::DecodeCubins(std::string_view(payload).substr(std::string("kiln-cuda-engine 2\n").size()));
  EXPECT_GE(decoded.size(), 2u);  // the fused Cast + Add chain and the gather
  testutil::ExpectError([&] { cuda.Deserialize(*b.g, profile, {}, payload.substr(0, payload.size() - 3)); },
                        ErrorCode::kDataLoss, {"truncated"});
}

TEST(CudaBackendGpu, ClaimsOnlyWhatItRuns) {
  SKIP_WITHOUT_GPU();
  Builder b;
  const ir::ValueId x = b.Input("x", {4, 4}, DType::kInt32);
  const ir::ValueId q = b.Op("FloorDiv", "div", {x, x});
  b.Output("q", q);
  CudaBackend cuda;
  auto why = cuda.Unsupported(*b.g, *b.g->Producer(q));
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("runs natively"), std::string::npos) << *why;
  // The same op on floats cannot fail (IEEE division): it is claimed.
  Builder f;
  const ir::ValueId y = f.Input("y", {4, 4}, DType::kFloat32);
  const ir::ValueId r = f.Op("FloorDiv", "div", {y, y});
  f.Output("r", r);
  EXPECT_EQ(cuda.Unsupported(*f.g, *f.g->Producer(r)), std::nullopt);
  EXPECT_NE(cuda.device().find("sm_"), std::string::npos) << cuda.device();
}

}  // namespace
}  // namespace kiln

#endif  // KILN_WITH_CUDA
