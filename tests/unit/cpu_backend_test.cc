// CPU engine backend: differential tests against the reference executor on hand-built graphs
// (fused convolutions, BN folding, matmuls, elementwise chains, dynamic profiles), plus
// serialization round trips and concurrent execution.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "backend/cpu/cpu_ops.h"
#include "ir/ops/elementwise_ops.h"
#include "tests/unit/cpu_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using namespace cputest;
using backend::cpu::CpuBackend;
using backend::cpu::CpuEngine;
using testutil::ExpectError;

struct ConvCase {
  std::string name;
  std::string format = "NHWC";
  std::string padding = "SAME";
  int64_t stride = 1, dilation = 1;
  std::string kind = "normal";  // normal, grouped (3 groups), depthwise (multiplier 2)
  std::string act;              // "", Relu, Relu6, Sigmoid, Tanh, Elu, LeakyRelu
  bool bias = true;
  int64_t n = 1, h = 9, w = 11, c = 6, k = 3, o = 9;
  std::vector<int64_t> pads = {};
};

Builder BuildConv(const ConvCase& cc, ir::Dim n_dim, ir::Dim h_dim, ir::Dim w_dim) {
  Builder b;
  const bool nhwc = cc.format == "NHWC";
  const ir::ValueId x = b.Input("x", nhwc ? std::vector<ir::Dim>{n_dim, h_dim, w_dim, cc.c} : std::vector<ir::Dim>{n_dim, cc.c, h_dim, w_dim});
  int64_t out_c = cc.o;
  ir::ValueId y;
  ir::AttrMap attrs = ConvAttrs(cc.format, cc.padding, {cc.stride, cc.stride}, {cc.dilation, cc.dilation}, cc.pads);
  if (cc.kind == "depthwise") {
    out_c = cc.c * 2;
    y = b.Op("DepthwiseConv2D", "conv", {x, b.Const("w", RandF32({cc.k, cc.k, cc.c, 2}, 7))}, attrs);
  } else {
    const int64_t in_per_group = cc.kind == "grouped" ? cc.c / 3 : cc.c;
    y = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({cc.k, cc.k, in_per_group, cc.o}, 7))}, attrs);
  }
  if (cc.bias) {
    const Shape bshape = nhwc ? Shape{out_c} : Shape{out_c, 1, 1};
    y = b.Op("Add", "bias_add", {y, b.Const("b", RandF32(bshape, 8))});
  }
  if (!cc.act.empty()) {
    ir::AttrMap a;
    if (cc.act == "LeakyRelu") a.Set("alpha", 0.1);
    y = b.Op(cc.act, "act", {y}, a);
  }
  b.Output("y", y);
  return b;
}

Shape ConvInputShape(const ConvCase& cc, int64_t n, int64_t h, int64_t w) {
  return cc.format == "NHWC" ? Shape{n, h, w, cc.c} : Shape{n, cc.c, h, w};
}

class CpuConv : public ::testing::TestWithParam<ConvCase> {};

TEST_P(CpuConv, FusedMatchesReference) {
  const ConvCase& cc = GetParam();
  const Builder b = BuildConv(cc, cc.n, cc.h, cc.w);
  const Shape shape = ConvInputShape(cc, cc.n, cc.h, cc.w);
  auto engine = CheckAgainstReference(b, ExactProfile({shape}), {{RandF32(shape, 1)}, {RandF32(shape, 2)}});
  // One fused node, nothing left over.
  EXPECT_EQ(CountOps(*engine, "cpu.FusedConv2D"), 1);
  EXPECT_EQ(CountOps(*engine, "Add"), 0);
  if (!cc.act.empty()) {
    EXPECT_EQ(CountOps(*engine, cc.act), 0);
  }
  EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 0);
  // NCHW runs channels-last: a Transpose (oneDNN reorder) in and one out.
  const auto steps = dynamic_cast<const CpuEngine&>(*engine).steps();
  const bool nchw = cc.format == "NCHW";
  ASSERT_EQ(steps.size(), nchw ? 3u : 1u);
  for (const auto& s : steps) EXPECT_EQ(s.kernel.rfind(s.op == "cpu.Transpose" ? "onednn-reorder:" : "onednn:", 0), 0u) << s.kernel;
  if (nchw) {
    EXPECT_EQ(steps[1].op, "cpu.FusedConv2D");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CpuConv,
    ::testing::Values(ConvCase{"nhwc_same_relu", "NHWC", "SAME", 1, 1, "normal", "Relu"},
                      ConvCase{"nhwc_valid_relu6", "NHWC", "VALID", 1, 1, "normal", "Relu6"},
                      ConvCase{"nhwc_same_stride2", "NHWC", "SAME", 2, 1, "normal", "Relu"},
                      ConvCase{"nhwc_valid_stride2_odd", "NHWC", "VALID", 2, 1, "normal", "", true, 2, 10, 7, 5, 3, 4},
                      ConvCase{"nhwc_same_dilation2", "NHWC", "SAME", 1, 2, "normal", "Relu6"},
                      ConvCase{"nhwc_depthwise", "NHWC", "SAME", 1, 1, "depthwise", "Relu6"},
                      ConvCase{"nhwc_depthwise_stride2", "NHWC", "SAME", 2, 1, "depthwise", "Relu"},
                      ConvCase{"nhwc_grouped", "NHWC", "VALID", 1, 1, "grouped", "Relu"},
                      ConvCase{"nhwc_explicit", "NHWC", "EXPLICIT", 1, 1, "normal", "Relu", true, 1, 9, 11, 6, 3, 9, {1, 2, 0, 1}},
                      ConvCase{"nhwc_1x1", "NHWC", "VALID", 1, 1, "normal", "Sigmoid", true, 2, 5, 5, 8, 1, 16},
                      ConvCase{"nhwc_tanh_nobias", "NHWC", "SAME", 1, 1, "normal", "Tanh", false},
                      ConvCase{"nhwc_elu", "NHWC", "SAME", 1, 1, "normal", "Elu"},
                      ConvCase{"nhwc_leaky", "NHWC", "SAME", 1, 1, "normal", "LeakyRelu"},
                      ConvCase{"nchw_same_relu", "NCHW", "SAME", 1, 1, "normal", "Relu"},
                      ConvCase{"nchw_valid_relu6", "NCHW", "VALID", 1, 1, "normal", "Relu6"},
                      ConvCase{"nchw_same_stride2", "NCHW", "SAME", 2, 1, "normal", "Relu"},
                      ConvCase{"nchw_dilation2", "NCHW", "VALID", 1, 2, "normal", ""},
                      ConvCase{"nchw_depthwise", "NCHW", "SAME", 1, 1, "depthwise", "Relu"},
                      ConvCase{"nchw_grouped_stride2", "NCHW", "SAME", 2, 1, "grouped", "Relu6"}),
    [](const ::testing::TestParamInfo<ConvCase>& info) { return info.param.name; });

TEST(CpuBackend, RandomConvSweep) {
  // Random geometries (odd sizes, kernels larger than the input, strides > kernel, 1 channel,
  // empty outputs) in both layouts, against the reference.
  uint32_t state = 12345;
  auto next = [&](int n) {
    state = state * 1664525u + 1013904223u;
    return static_cast<int64_t>((state >> 8) % static_cast<uint32_t>(n));
  };
  const char* acts[] = {"", "Relu", "Relu6", "Sigmoid", "Tanh"};
  const char* paddings[] = {"SAME", "VALID", "EXPLICIT"};
  int ran = 0;
  for (int trial = 0; trial < 60; ++trial) {
    ConvCase cc;
    cc.name = "random";
    cc.format = next(2) ? "NHWC" : "NCHW";
    cc.padding = paddings[next(3)];
    cc.stride = 1 + next(3);
    cc.dilation = 1 + next(2);
    const int kind = static_cast<int>(next(3));
    cc.kind = kind == 0 ? "normal" : kind == 1 ? "depthwise" : "grouped";
    cc.act = acts[next(5)];
    cc.bias = next(2) != 0;
    cc.n = 1 + next(3);
    cc.h = 1 + next(12);
    cc.w = 1 + next(12);
    cc.c = cc.kind == "grouped" ? 3 * (1 + next(3)) : 1 + next(9);
    cc.k = 1 + next(5);
    cc.o = cc.kind == "grouped" ? 3 * (1 + next(4)) : 1 + next(12);
    if (cc.padding == "EXPLICIT") cc.pads = {next(3), next(3), next(3), next(3)};
    Builder b;
    try {
      b = BuildConv(cc, cc.n, cc.h, cc.w);
    } catch (const Error&) {
      continue;  // negative output size: not a valid graph
    }
    const Shape shape = ConvInputShape(cc, cc.n, cc.h, cc.w);
    SCOPED_TRACE(fmt::format("trial {}: {} {} stride {} dilation {} {} act '{}' input {} k {} o {}", trial, cc.format, cc.padding,
                             cc.stride, cc.dilation, cc.kind, cc.act, ShapeToString(shape), cc.k, cc.o));
    auto engine = CheckAgainstReference(b, ExactProfile({shape}), {{RandF32(shape, static_cast<uint32_t>(trial))}});
    EXPECT_EQ(CountOps(*engine, "cpu.FusedConv2D"), 1);
    ++ran;
  }
  EXPECT_GT(ran, 40);
}

TEST(CpuBackend, BatchNormFoldsIntoConv) {
  for (const std::string format : {"NHWC", "NCHW"}) {
    Builder b;
    const bool nhwc = format == "NHWC";
    const Shape shape = nhwc ? Shape{2, 8, 7, 4} : Shape{2, 4, 8, 7};
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(shape.begin(), shape.end()));
    ir::ValueId y = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({3, 3, 4, 6}, 3))}, ConvAttrs(format, "SAME"));
    std::vector<float> var = nntest::RandomFloats(6, 4);
    for (float& v : var) v = std::abs(v) + 0.5f;
    ir::AttrMap bn;
    bn.Set("epsilon", 1e-3);
    bn.Set("axis", int64_t{nhwc ? -1 : 1});
    y = b.Op("BatchNorm", "bn",
             {y, b.Const("scale", RandF32({6}, 5)), b.Const("offset", RandF32({6}, 6)), b.Const("mean", RandF32({6}, 9)),
              b.Const("var", nntest::F32({6}, var))},
             bn);
    y = b.Op("Relu", "relu", {y});
    b.Output("y", y);
    auto engine = CheckAgainstReference(b, ExactProfile({shape}), {{RandF32(shape, 1)}});
    EXPECT_EQ(CountOps(*engine, "BatchNorm"), 0) << format;
    EXPECT_EQ(CountOps(*engine, "cpu.FusedConv2D"), 1) << format;
    EXPECT_EQ(PassRewrites(*engine, "cpu-fold-batchnorm"), 1) << format;
  }
}

TEST(CpuBackend, MulAddChainFoldsIntoConv) {
  // NCHW conv + Mul([C,1,1]) + Add([1,C,1,1]) + Sub(scalar) (a decomposed BatchNorm) + Relu6.
  Builder b;
  const Shape shape{1, 5, 9, 9};
  const ir::ValueId x = b.Input("x", {1, 5, 9, 9});
  ir::ValueId y = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({3, 3, 5, 7}, 3))}, ConvAttrs("NCHW", "VALID", {2, 2}));
  y = b.Op("Mul", "scale", {b.Const("s", RandF32({7, 1, 1}, 4)), y});
  y = b.Op("Add", "shift", {y, b.Const("t", RandF32({1, 7, 1, 1}, 5))});
  y = b.Op("Sub", "sub", {y, b.Const("u", nntest::F32({}, {0.25f}))});
  y = b.Op("Relu6", "relu6", {y});
  b.Output("y", y);
  auto engine = CheckAgainstReference(b, ExactProfile({shape}), {{RandF32(shape, 1)}});
  EXPECT_EQ(PassRewrites(*engine, "cpu-fold-batchnorm"), 3);
  EXPECT_EQ(CountOps(*engine, "cpu.FusedConv2D"), 1);
  // The conv runs channels-last between a Transpose in and one out, the folded ops inside it.
  EXPECT_EQ(dynamic_cast<const CpuEngine&>(*engine).steps().size(), 3u);
  EXPECT_EQ(CountOps(*engine, "cpu.Transpose"), 2);
}

TEST(CpuBackend, ResidualAddAndSwishFuse) {
  // conv1 -> swish; conv2(x) + conv1 output -> relu (the add becomes a binary post-op).
  for (const std::string format : {"NHWC", "NCHW"}) {
    Builder b;
    const Shape shape = format == "NHWC" ? Shape{1, 7, 7, 8} : Shape{1, 8, 7, 7};
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(shape.begin(), shape.end()));
    ir::ValueId a = b.Op("Conv2D", "conv1", {x, b.Const("w1", RandF32({3, 3, 8, 8}, 3))}, ConvAttrs(format, "SAME"));
    const ir::ValueId s = b.Op("Sigmoid", "sig", {a});
    a = b.Op("Mul", "swish", {a, s});
    ir::ValueId c = b.Op("Conv2D", "conv2", {x, b.Const("w2", RandF32({1, 1, 8, 8}, 4))}, ConvAttrs(format, "VALID"));
    c = b.Op("Add", "residual", {c, a});
    c = b.Op("Relu", "relu", {c});
    b.Output("y", c);
    auto engine = CheckAgainstReference(b, ExactProfile({shape}), {{RandF32(shape, 1)}});
    EXPECT_EQ(CountOps(*engine, "cpu.FusedConv2D"), 2) << format;
    // NCHW: channels-last inside, one Transpose of x (read by both convs) and one of the result.
    EXPECT_EQ(dynamic_cast<const CpuEngine&>(*engine).steps().size(), format == "NHWC" ? 2u : 4u) << format;
    EXPECT_EQ(CountOps(*engine, "cpu.Transpose"), format == "NHWC" ? 0 : 2) << format;
  }
}

// oneDNN 2.x's JIT kernels keep one eltwise injector per algorithm: a second post-op of an
// algorithm already in the chain ran with the first one's parameters (here Mul 3 ran as Mul 0.5).
// Repeated kinds take equivalent algorithms; a third scaling has none left, so that convolution
// runs its reference kernel, still exact.
TEST(CpuBackend, PostOpsOfOneKindKeepTheirOwnParameters) {
  const Shape shape{2, 7, 7, 8};
  auto scalar = [](Builder& b, const std::string& name, float v) {
    return b.Const(name, Tensor::Scalar(DType::kFloat32, v));
  };
  for (const bool third_scaling : {false, true}) {
    Builder b;
    const ir::ValueId x = b.Input("x", {2, 7, 7, 8});
    ir::ValueId y = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({3, 3, 8, 8}, 3))}, ConvAttrs("NHWC", "SAME"));
    ir::AttrMap leaky;
    leaky.Set("alpha", 0.2);
    y = b.Op("LeakyRelu", "leaky", {y}, leaky);                   // relu, alpha 0.2
    y = b.Op("Mul", "half", {y, scalar(b, "c_half", 0.5f)});      // linear
    y = b.Op("Relu6", "relu6", {y});                              // clip
    y = b.Op("Mul", "triple", {y, scalar(b, "c_triple", 3.0f)});  // a second linear
    y = b.Op("Tanh", "tanh1", {y});
    y = b.Op("Clip", "clip", {y, scalar(b, "lo", 0.1f), scalar(b, "hi", 0.9f)});  // a second clip
    y = b.Op("Tanh", "tanh2", {y});                                               // a second tanh
    if (third_scaling) y = b.Op("Mul", "quarter", {y, scalar(b, "c_quarter", 0.25f)});
    y = b.Op("Relu", "relu", {y});  // a second relu, alpha 0
    b.Output("y", y);
    backend::cpu::CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({shape}), {});
    runtime::ReferenceExecutor ref(b.g);
    for (uint32_t seed : {1u, 2u}) {
      const std::vector<Tensor> in{RandF32(shape, seed)};
      ExpectClose(engine->Execute(in)[0], ref.Run(in)[0], 1e-5, "seed " + std::to_string(seed));
    }
    const auto& e = dynamic_cast<const CpuEngine&>(*engine);
    ASSERT_EQ(e.steps().size(), 1u) << e.Summary();
    const std::string kernel = e.steps()[0].kernel;
    EXPECT_EQ(kernel.find("reference-fallback") != std::string::npos, third_scaling) << kernel;
  }
}

TEST(CpuBackend, MatMulBiasTanh) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Builder b;
      const Shape ashape = ta ? Shape{13, 5} : Shape{5, 13};
      const ir::ValueId a = b.Input("a", ta ? std::vector<ir::Dim>{13, 5} : std::vector<ir::Dim>{5, 13});
      ir::AttrMap attrs;
      attrs.Set("transpose_a", ta);
      attrs.Set("transpose_b", tb);
      ir::ValueId y = b.Op("MatMul", "mm", {a, b.Const("w", RandF32(tb ? Shape{11, 13} : Shape{13, 11}, 2))}, attrs);
      y = b.Op("Add", "add_bias", {y, b.Const("bias", RandF32({11}, 3))});
      y = b.Op("Tanh", "tanh", {y});
      b.Output("y", y);
      auto engine = CheckAgainstReference(b, ExactProfile({ashape}), {{RandF32(ashape, 1)}});
      EXPECT_EQ(CountOps(*engine, "cpu.FusedMatMul"), 1) << ta << tb;
      EXPECT_EQ(CountOps(*engine, "Tanh"), 0);
      EXPECT_EQ(CountOps(*engine, "Add"), 0);
    }
}

TEST(CpuBackend, MatMulBatchNormAndRuntimeWeights) {
  // MatMul with constant weights + BatchNorm folds; a second MatMul takes both operands at run time.
  Builder b;
  const ir::ValueId a = b.Input("a", {6, 10});
  const ir::ValueId w = b.Input("w", {10, 4});
  ir::ValueId y = b.Op("MatMul", "mm", {a, b.Const("k", RandF32({10, 4}, 2))});
  ir::AttrMap bn;
  bn.Set("epsilon", 1e-3);
  y = b.Op("BatchNorm", "bn",
           {y, b.Const("scale", RandF32({4}, 5)), b.Const("offset", RandF32({4}, 6)), b.Const("mean", RandF32({4}, 9)),
            b.Const("var", nntest::F32({4}, {0.5f, 1.f, 2.f, 3.f}))},
           bn);
  const ir::ValueId z = b.Op("MatMul", "mm2", {a, w});
  b.Output("y", y);
  b.Output("z", z);
  auto engine = CheckAgainstReference(b, ExactProfile({{6, 10}, {10, 4}}), {{RandF32({6, 10}, 1), RandF32({10, 4}, 3)}});
  EXPECT_EQ(CountOps(*engine, "BatchNorm"), 0);
  EXPECT_EQ(CountOps(*engine, "cpu.FusedMatMul"), 2);
}

TEST(CpuBackend, BatchMatMul) {
  struct Case {
    std::vector<ir::Dim> x, y;
    bool adj_x, adj_y;
  };
  const Case cases[] = {
      {{2, 3, 4, 5}, {2, 3, 5, 6}, false, false},
      {{2, 3, 5, 4}, {2, 3, 6, 5}, true, true},
      {{3, 4, 5}, {5, 7}, false, false},            // rank broadcast
      {{3, 1, 4, 5}, {1, 2, 5, 6}, false, false},   // batch broadcast both ways
      {{2, 7, 3}, {2, 7, 5}, true, false},
  };
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId x = b.Input("x", c.x);
    const ir::ValueId y = b.Input("y", c.y);
    ir::AttrMap attrs;
    attrs.Set("adj_x", c.adj_x);
    attrs.Set("adj_y", c.adj_y);
    const ir::ValueId z = b.Op("BatchMatMul", "bmm", {x, y}, attrs);
    const ir::ValueId s = b.Op("Mul", "scale", {z, b.Const("c", nntest::F32({}, {0.125f}))});
    b.Output("z", s);
    const Shape xs(c.x.begin(), c.x.end()), ys(c.y.begin(), c.y.end());
    auto engine = CheckAgainstReference(b, ExactProfile({xs, ys}), {{RandF32(xs, 1), RandF32(ys, 2)}});
    EXPECT_EQ(CountOps(*engine, "cpu.FusedBatchMatMul"), 1);
    EXPECT_EQ(CountOps(*engine, "Mul"), 0);
  }
}

// A BatchMatMul of rows [..., m, k] by a constant matrix (a transformer's dense layer as PyTorch
// exports it) runs as one cpu.FusedMatMul over all the rows, absorbing the bias Add ([n] or
// [1, 1, n]) and the activation; adj_y is its transpose_b. A bias that is not the first op after
// it, or a BatchMatMul with a constant left operand, stays as it was.
TEST(CpuBackend, DenseLayersOnRowsOfAnyRankRunAsOneMatMulWithBias) {
  for (bool adj_y : {false, true})
    for (int rank : {2, 3, 4}) {
      Builder b;
      std::vector<ir::Dim> dims = rank == 2 ? std::vector<ir::Dim>{9, 16}
                                  : rank == 3 ? std::vector<ir::Dim>{2, 9, 16}
                                              : std::vector<ir::Dim>{2, 3, 5, 16};
      const ir::ValueId x = b.Input("x", dims);
      ir::AttrMap attrs;
      attrs.Set("adj_y", adj_y);
      ir::ValueId y = b.Op("BatchMatMul", "dense", {x, b.Const("w", RandF32(adj_y ? Shape{12, 16} : Shape{16, 12}, 2))},
                           attrs);
      y = b.Op("Add", "bias", {y, b.Const("b", RandF32(rank == 2 ? Shape{12} : Shape{1, 1, 12}, 3))});
      y = b.Op("Relu", "relu", {y});
      b.Output("y", y);
      const Shape xs(dims.begin(), dims.end());
      auto engine = CheckAgainstReference(b, ExactProfile({xs}), {{RandF32(xs, 1)}});
      EXPECT_EQ(CountOps(*engine, "cpu.FusedMatMul"), 1) << adj_y << " rank " << rank;
      EXPECT_EQ(CountOps(*engine, "cpu.FusedBatchMatMul"), 0);
      EXPECT_EQ(CountOps(*engine, "Add"), 0);
      EXPECT_EQ(CountOps(*engine, "Relu"), 0);
    }
  // The bias after another post-op is an ordinary Add (a chain), and the values still match.
  Builder b;
  const ir::ValueId x = b.Input("x", {2, 9, 16});
  ir::ValueId y = b.Op("BatchMatMul", "dense", {x, b.Const("w", RandF32({16, 12}, 2))});
  y = b.Op("Relu", "relu", {y});
  y = b.Op("Add", "late_bias", {y, b.Const("b", RandF32({12}, 3))});
  b.Output("y", y);
  auto engine = CheckAgainstReference(b, ExactProfile({{2, 9, 16}}), {{RandF32({2, 9, 16}, 1)}});
  EXPECT_EQ(CountOps(*engine, "cpu.FusedMatMul"), 1);
}

// A dim the profile fixes (here the second, 6) is static in the engine: the shape computation on
// it folds away, and an Add of a bias of the reshaped width (6 x 4 = 24) provably broadcasts, so
// it joins the ReLU's elementwise chain. The batch, a range, stays symbolic (batches 2 and 3 run).
TEST(CpuBackend, DimsTheProfileFixesAreStaticInTheEngine) {
  Builder b;
  const ir::Dim batch = b.Symbol("batch"), seq = b.Symbol("seq");
  const ir::ValueId x = b.Input("x", {batch, seq, 4});
  const ir::ValueId shape = b.Op("Shape", "shape", {x});
  auto dim = [&](int64_t i, const char* name) {
    return b.Op("Gather", name, {shape, b.Const(std::string(name) + "_i", Tensor::Scalar(DType::kInt32, static_cast<int32_t>(i))),
                                b.Const(std::string(name) + "_axis", Tensor::Scalar(DType::kInt32, 0))});
  };
  const ir::ValueId width = b.Op("Mul", "width", {dim(1, "seq_len"), b.Const("four", Tensor::Scalar(DType::kInt32, 4))});
  const ir::ValueId target = b.Op("Pack", "target", {dim(0, "batch_size"), width});
  ir::ValueId y = b.Op("Reshape", "rows", {x, target});
  y = b.Op("Relu", "relu", {y});
  y = b.Op("Add", "add_bias", {y, b.Const("bias", RandF32({24}, 3))});
  b.Output("y", y);
  backend::Profile fixed;
  fixed.inputs.push_back({{1, 6, 4}, {2, 6, 4}, {3, 6, 4}});
  auto engine = CheckAgainstReference(b, fixed, {{RandF32({2, 6, 4}, 1)}, {RandF32({3, 6, 4}, 2)}});
  EXPECT_EQ(CountOps(*engine, "Shape"), 0);
  EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 1);
  EXPECT_EQ(CountOps(*engine, "Add"), 0);
}

TEST(CpuBackend, ElementwiseChain) {
  // x -> Mul(scalar) -> Add([C]) -> Relu -> Sub(x) -> Sigmoid -> Maximum(const [H,1,C]) -> Square.
  Builder b;
  const Shape shape{2, 5, 3, 7};
  const ir::ValueId x = b.Input("x", {2, 5, 3, 7});
  ir::ValueId y = b.Op("Mul", "mul", {x, b.Const("two", nntest::F32({}, {2.f}))});
  y = b.Op("Add", "add", {b.Const("bias", RandF32({7}, 3)), y});
  y = b.Op("Relu", "relu", {y});
  y = b.Op("Sub", "sub", {y, x});
  y = b.Op("Sigmoid", "sig", {y});
  y = b.Op("Maximum", "max", {y, b.Const("floor", RandF32({5, 1, 7}, 4))});
  y = b.Op("Square", "sq", {y});
  b.Output("y", y);
  auto engine = CheckAgainstReference(b, ExactProfile({shape}), {{RandF32(shape, 1)}}, 1e-6);
  EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 1);
  EXPECT_EQ(dynamic_cast<const CpuEngine&>(*engine).steps().size(), 1u);
  EXPECT_EQ(PassRewrites(*engine, "cpu-fuse-eltwise-chain"), 1);
}

TEST(CpuBackend, ElementwiseChainBroadcasts) {
  // Operands of many broadcast patterns, constant or not, on either side.
  const std::vector<Shape> operand_shapes = {{}, {1}, {5}, {4, 1}, {3, 1, 1}, {1, 3, 1, 5}, {2, 1, 4, 1}, {2, 3, 4, 5}, {1, 1, 1, 1}};
  int i = 0;
  for (const Shape& os : operand_shapes)
    for (bool constant : {true, false}) {
      Builder b;
      const ir::ValueId x = b.Input("x", {2, 3, 4, 5});
      const ir::ValueId o = constant ? b.Const("o", RandF32(os, 3)) : b.Input("o", std::vector<ir::Dim>(os.begin(), os.end()));
      ir::ValueId y = b.Op("Relu", "relu", {x});
      y = b.Op("Sub", "sub", {o, y});
      y = b.Op("Mul", "mul", {y, o});
      y = b.Op("Minimum", "min", {o, y});
      y = b.Op("Tanh", "tanh", {y});
      b.Output("y", y);
      std::vector<Tensor> inputs{RandF32({2, 3, 4, 5}, 1)};
      backend::Profile p = ExactProfile({{2, 3, 4, 5}});
      if (!constant) {
        inputs.push_back(RandF32(os, 3));
        p.inputs.push_back({os, os, os});
      }
      SCOPED_TRACE(fmt::format("case {}: operand {} {}", i++, ShapeToString(os), constant ? "constant" : "input"));
      auto engine = CheckAgainstReference(b, p, {inputs}, 1e-6);
      EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 1);
      EXPECT_EQ(dynamic_cast<const CpuEngine&>(*engine).steps().size(), 1u);
    }
}

// Chains over many rows whose operands vary across rows (a mask per batch, a bias per row split
// into tiles) run the rows in blocks on several threads: bit-identical to the reference.
TEST(CpuBackend, ElementwiseChainsOverManyRowsMatchExactly) {
  struct Case {
    Shape x, operand;
  };
  for (const Case& c :
       {Case{{4, 6, 64, 100}, {4, 1, 1, 100}}, Case{{64, 4, 600}, {64, 1, 600}}, Case{{3, 7, 50, 130}, {3, 7, 1, 1}}}) {
    SCOPED_TRACE(ShapeToString(c.x) + " with " + ShapeToString(c.operand));
    Builder b;
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.x.begin(), c.x.end()));
    const ir::ValueId o = b.Input("o", std::vector<ir::Dim>(c.operand.begin(), c.operand.end()));
    ir::ValueId y = b.Op("Mul", "scale", {x, b.Const("s", Tensor::Scalar(DType::kFloat32, 0.125f))});
    y = b.Op("Add", "mask", {y, o});
    y = b.Op("Tanh", "tanh", {y});
    y = b.Op("Sub", "sub", {o, y});
    b.Output("y", y);
    CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({c.x, c.operand}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 1);
    runtime::ReferenceExecutor ref(b.g);
    const std::vector<Tensor> in{RandF32(c.x, 1), RandF32(c.operand, 2)};
    EXPECT_TRUE(BitwiseEqual(engine->Execute(in).at(0), ref.Run(in).at(0)));
  }
}

// Every fusible op of the elementwise table runs as a chain step, with the reference kernel's
// float32 formula: results are bit-identical.
TEST(CpuBackend, EveryFusibleOpChainsExactly) {
  const Shape shape{3, 4, 5};
  Tensor x = RandF32(shape, 1);
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = std::abs(x.data<float>()[i]) * 2.f + 0.125f;
  Tensor signed_x = RandF32(shape, 2);
  for (const ir::elementwise::OpInfo& op : ir::elementwise::AllOps()) {
    if (!op.fusible) continue;
    SCOPED_TRACE(op.name);
    Builder b;
    const ir::ValueId in = b.Input("x", {3, 4, 5});
    ir::AttrMap attrs;
    if (op.param) attrs.Set(op.param, 0.3);
    std::vector<ir::ValueId> args{in};
    if (ir::elementwise::Arity(op.pattern) == 2) args.push_back(b.Const("o", RandF32({5}, 3)));
    b.Output("y", b.Op(op.name, "op", args, attrs));
    CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({shape}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 1);
    runtime::ReferenceExecutor ref(b.g);
    // Positive inputs keep Log, Sqrt, Pow, ... finite; signed ones reach the other branches.
    for (const Tensor& input : {x, signed_x}) {
      const std::vector<Tensor> inputs{input};
      EXPECT_TRUE(BitwiseEqual(engine->Execute(inputs).at(0), ref.Run(inputs).at(0)));
    }
  }
}

TEST(CpuBackend, EveryFusibleBinaryOpRunsAsBinaryKernelExactly) {
  // Operands that broadcast both ways ([3,1,5] and [4,1] into [3,4,5]): no elementwise chain can
  // take the op, cpu.Binary does, bit-equal to the reference kernel (the same functor).
  Tensor x = RandF32({3, 1, 5}, 1);
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = std::abs(x.data<float>()[i]) * 2.f + 0.125f;
  const Tensor signed_x = RandF32({3, 1, 5}, 2), y = RandF32({4, 1}, 3);
  int ops = 0;
  for (const ir::elementwise::OpInfo& op : ir::elementwise::AllOps()) {
    if (!op.fusible || ir::elementwise::Arity(op.pattern) != 2) continue;
    SCOPED_TRACE(op.name);
    ++ops;
    Builder b;
    ir::AttrMap attrs;
    if (op.param) attrs.Set(op.param, 0.3);
    b.Output("z", b.Op(op.name, "op", {b.Input("x", {3, 1, 5}), b.Input("y", {4, 1})}, attrs));
    CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({{3, 1, 5}, {4, 1}}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.Binary"), 1);
    runtime::ReferenceExecutor ref(b.g);
    for (const Tensor& input : {x, signed_x}) {
      const std::vector<Tensor> inputs{input, y};
      EXPECT_TRUE(BitwiseEqual(engine->Execute(inputs).at(0), ref.Run(inputs).at(0)));
    }
  }
  EXPECT_GE(ops, 5);
  // Shapes that turn out not to broadcast at run time: an error naming the node, no crash.
  {
    Builder b;
    const ir::Dim n = b.Symbol("n"), m = b.Symbol("m");
    b.Output("z", b.Op("Mul", "product", {b.Input("x", {n, 4}), b.Input("y", {m, 4})}));
    backend::Profile profile;
    profile.inputs.push_back({{1, 4}, {2, 4}, {3, 4}});
    profile.inputs.push_back({{1, 4}, {2, 4}, {3, 4}});
    auto engine = CpuBackend().Compile(*b.g, profile, {});
    EXPECT_EQ(CountOps(*engine, "cpu.Binary"), 1);
    const std::vector<Tensor> mismatched = {RandF32({2, 4}, 5), RandF32({3, 4}, 6)};
    ExpectError([&] { engine->Execute(mismatched); }, ErrorCode::kInvalidArgument,
                {"node 'product'", "shapes [2,4] and [3,4] cannot be broadcast"});
    const std::vector<Tensor> fine = {RandF32({3, 4}, 5), RandF32({1, 4}, 6)};
    EXPECT_TRUE(BitwiseEqual(engine->Execute(fine).at(0), runtime::ReferenceExecutor(b.g).Run(fine).at(0)));
  }
  // Float arithmetic on rank-0/1 values (exporters compute shapes in float) stays IR ops.
  Builder b;
  b.Output("z", b.Op("Mul", "scale", {b.Input("x", {4}), b.Input("y", {1})}));
  auto engine = CpuBackend().Compile(*b.g, ExactProfile({{4}, {1}}), {});
  EXPECT_EQ(CountOps(*engine, "cpu.Binary"), 0);
}

TEST(CpuBackend, LogicalOpsOnBoolTensorsRunAsBinaryKernelExactly) {
  // An attention mask's logic: [2,1,1,6] against [2,1,5,1] bool operands into [2,1,5,6].
  const auto bools = [](const Shape& shape, uint32_t seed) {
    std::mt19937 rng(seed);
    Tensor t(DType::kBool, shape);
    for (int64_t i = 0; i < t.num_elements(); ++i) t.data<bool>()[i] = (rng() & 1) != 0;
    return t;
  };
  const Tensor x = bools({2, 1, 1, 6}, 1), y = bools({2, 1, 5, 1}, 2);
  for (const char* op : {"LogicalAnd", "LogicalOr"}) {
    SCOPED_TRACE(op);
    Builder b;
    b.Output("z", b.Op(op, "op", {b.Input("x", {2, 1, 1, 6}, DType::kBool), b.Input("y", {2, 1, 5, 1}, DType::kBool)}));
    auto engine = CpuBackend().Compile(*b.g, ExactProfile({{2, 1, 1, 6}, {2, 1, 5, 1}}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.Binary"), 1);
    const std::vector<Tensor> inputs{x, y};
    const Tensor got = engine->Execute(inputs).at(0);
    EXPECT_EQ(got.dtype(), DType::kBool);
    EXPECT_TRUE(BitwiseEqual(got, runtime::ReferenceExecutor(b.g).Run(inputs).at(0)));
  }
}

TEST(CpuBackend, RandomBatchMatMulSweep) {
  uint32_t state = 777;
  auto next = [&](int n) {
    state = state * 1664525u + 1013904223u;
    return static_cast<int64_t>((state >> 8) % static_cast<uint32_t>(n));
  };
  for (int trial = 0; trial < 30; ++trial) {
    const int rank = 2 + static_cast<int>(next(3));
    const int64_t m = 1 + next(9), k = 1 + next(9), n = 1 + next(9);
    const bool ax = next(2), ay = next(2);
    std::vector<ir::Dim> xs, ys;
    for (int d = 0; d < rank - 2; ++d) {
      const int64_t dim = 1 + next(3);
      const int pick = static_cast<int>(next(3));  // 0: both, 1: x broadcasts, 2: y broadcasts
      xs.push_back(pick == 1 ? 1 : dim);
      ys.push_back(pick == 2 ? 1 : dim);
    }
    if (next(3) == 0 && !ys.empty()) ys.erase(ys.begin());  // rank broadcast
    xs.push_back(ax ? k : m);
    xs.push_back(ax ? m : k);
    ys.push_back(ay ? n : k);
    ys.push_back(ay ? k : n);
    Builder b;
    ir::AttrMap attrs;
    attrs.Set("adj_x", ax);
    attrs.Set("adj_y", ay);
    const ir::ValueId z = b.Op("BatchMatMul", "bmm", {b.Input("x", xs), b.Input("y", ys)}, attrs);
    b.Output("z", b.Op("Relu", "relu", {z}));
    const Shape xsh(xs.begin(), xs.end()), ysh(ys.begin(), ys.end());
    SCOPED_TRACE(fmt::format("trial {}: {} x {} adj {} {}", trial, ShapeToString(xsh), ShapeToString(ysh), ax, ay));
    auto engine = CheckAgainstReference(b, ExactProfile({xsh, ysh}), {{RandF32(xsh, 1), RandF32(ysh, 2)}});
    EXPECT_EQ(CountOps(*engine, "cpu.FusedBatchMatMul"), 1);
  }
}

TEST(CpuBackend, MixedGraphWithReferenceOps) {
  // conv -> Reshape (reference, aliases the arena) -> MatMul -> Softmax, plus the reshaped conv
  // output itself as a graph output (must not be a view of the reused arena).
  Builder b;
  const ir::ValueId x = b.Input("x", {1, 6, 6, 3});
  ir::ValueId c = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({3, 3, 3, 4}, 2))}, ConvAttrs("NHWC", "VALID", {2, 2}));
  c = b.Op("Relu", "relu", {c});
  const ir::ValueId r = b.Op("Reshape", "flat", {c, b.Const("shape", nntest::I32({2}, {1, -1}))});
  ir::ValueId m = b.Op("MatMul", "fc", {r, b.Const("k", RandF32({16, 5}, 3))});
  m = b.Op("Softmax", "softmax", {m});
  b.Output("probs", m);
  b.Output("features", r);
  auto engine = CheckAgainstReference(b, ExactProfile({{1, 6, 6, 3}}), {{RandF32({1, 6, 6, 3}, 1)}, {RandF32({1, 6, 6, 3}, 2)}});
  // Outputs stay valid after later calls reuse the arena.
  auto first = engine->Execute(std::vector<Tensor>{RandF32({1, 6, 6, 3}, 1)});
  const Tensor saved = first[1].Clone();
  engine->Execute(std::vector<Tensor>{RandF32({1, 6, 6, 3}, 5)});
  EXPECT_TRUE(BitwiseEqual(first[1], saved));
}

TEST(CpuBackend, DynamicProfile) {
  // Batch and spatial dims vary in [1-3] x [8-12] x [9-13]; run below the max and at the max.
  const ConvCase cc{"dyn", "NHWC", "SAME", 2, 1, "normal", "Relu"};
  Builder b;
  const ir::Dim n = b.Symbol("batch"), h = b.Symbol("height"), w = b.Symbol("width");
  {
    const ir::ValueId x = b.Input("x", {n, h, w, 6});
    ir::ValueId y = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({3, 3, 6, 9}, 7))}, ConvAttrs("NHWC", "SAME", {2, 2}));
    y = b.Op("Add", "bias", {y, b.Const("b", RandF32({9}, 8))});
    y = b.Op("Relu", "relu", {y});
    ir::ValueId z = b.Op("Conv2D", "conv2", {y, b.Const("w2", RandF32({3, 3, 9, 4}, 9))}, ConvAttrs("NHWC", "SAME"));
    z = b.Op("Mul", "scale", {z, b.Const("s", RandF32({4}, 10))});
    z = b.Op("Tanh", "tanh", {z});
    b.Output("y", z);
  }
  backend::Profile profile;
  profile.inputs.push_back({{1, 8, 9, 6}, {2, 10, 11, 6}, {3, 12, 13, 6}});
  auto engine = CheckAgainstReference(b, profile,
                                      {{RandF32({1, 8, 9, 6}, 1)}, {RandF32({2, 11, 10, 6}, 2)}, {RandF32({3, 12, 13, 6}, 3)},
                                       {RandF32({1, 9, 13, 6}, 4)}});
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  EXPECT_EQ(e.spilled_allocations(), 0);
  EXPECT_GT(e.arena_bytes(), 0u);
  // Outside the profile, and a wrong dtype: kInvalidArgument.
  const std::vector<Tensor> outside_profile = {RandF32({4, 8, 9, 6}, 1)};
  ExpectError([&] { engine->Execute(outside_profile); }, ErrorCode::kInvalidArgument,
              {"outside the engine's profile [1-3,8-12,9-13,6]"});
  const std::vector<Tensor> float64_input = {Tensor(DType::kFloat64, {1, 8, 9, 6})};
  ExpectError([&] { engine->Execute(float64_input); }, ErrorCode::kInvalidArgument,
              {"expected dtype float32, got float64"});
}

// A shape computed through ops symbolic inference cannot follow (an exporter's Casts of a Shape)
// is folded for the profile's max shapes: the values after it get slots in the memory plan
// instead of a fresh allocation per call.
TEST(CpuBackend, ShapeComputationsAreFoldedForTheMemoryPlan) {
  Builder b;
  const ir::Dim n = b.Symbol("batch");
  const ir::ValueId x = b.Input("x", {n, 4, 6});
  const ir::ValueId t = b.Op("Tanh", "tanh", {x});
  ir::AttrMap to_float, to_int;
  to_float.Set("to", DType::kFloat32);
  to_int.Set("to", DType::kInt64);
  const ir::ValueId dims = b.Op("Cast", "dims", {b.Op("Cast", "dims_f", {b.Op("Shape", "shape", {t})}, to_float)}, to_int);
  const ir::ValueId reshaped = b.Op("Reshape", "reshaped", {t, dims});
  const ir::ValueId u = b.Op("Tanh", "tanh2", {reshaped});
  b.Output("y", b.Op("Softmax", "softmax", {u}));
  b.Output("z", b.Op("Sigmoid", "sigmoid", {u}));
  backend::Profile profile;
  profile.inputs.push_back({{1, 4, 6}, {2, 4, 6}, {4, 4, 6}});
  auto engine =
      CheckAgainstReference(b, profile, {{RandF32({1, 4, 6}, 1)}, {RandF32({4, 4, 6}, 2)}, {RandF32({3, 4, 6}, 3)}});
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  // tanh's and tanh2's results (the kernels' own outputs that are not graph outputs); without
  // folding, tanh2's shape is unknown until it runs.
  EXPECT_EQ(e.planned_buffers(), 2u) << e.Summary();
  EXPECT_EQ(e.spilled_allocations(), 0);
}

TEST(CpuBackend, ArenaReusesMemory) {
  // A chain of 6 convs: intermediates die one after another, so the arena holds two.
  // (Weights scaled by ~1/sqrt(fan-in) so activations stay O(1) through the stack.)
  Builder b;
  ir::ValueId y = b.Input("x", {1, 16, 16, 8});
  for (int i = 0; i < 6; ++i) {
    y = b.Op("Conv2D", fmt::format("conv{}", i), {y, b.Const(fmt::format("w{}", i), RandScaled({3, 3, 8, 8}, 10 + i, 0.2f))},
             ConvAttrs("NHWC", "SAME"));
    y = b.Op("Relu", fmt::format("relu{}", i), {y});
  }
  b.Output("y", y);
  auto engine = CheckAgainstReference(b, ExactProfile({{1, 16, 16, 8}}), {{RandF32({1, 16, 16, 8}, 1)}});
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  const size_t one = 16 * 16 * 8 * sizeof(float);
  EXPECT_EQ(e.planned_buffers(), 5u);  // the last conv writes the output
  EXPECT_EQ(e.unshared_bytes(), 5 * one);
  EXPECT_EQ(e.arena_bytes(), 2 * one);
}

TEST(CpuBackend, Bf16RequestOnThisCpu) {
  const ConvCase cc{"bf16", "NHWC", "SAME", 1, 1, "normal", "Relu"};
  const Builder b = BuildConv(cc, 1, 9, 11);
  backend::CompileOptions options;
  options.precision = Precision::kBF16;
  CpuBackend cpu;
  auto engine = cpu.Compile(*b.g, ExactProfile({{1, 9, 11, 6}}), options);
  const auto& host = backend::cpu::HostCpu();
  if (host.native_bf16()) {
    EXPECT_EQ(engine->precision(), Precision::kBF16);
    EXPECT_EQ(engine->precision_note(), "");
  } else {
    EXPECT_EQ(engine->precision(), Precision::kFP32);
    EXPECT_EQ(engine->precision_note(),
              "BF16 requested; this CPU (" + cpu.device() + ") has no native BF16 arithmetic, engine runs FP32");
    // And it computes FP32 results.
    CheckAgainstReference(b, ExactProfile({{1, 9, 11, 6}}), {{RandF32({1, 9, 11, 6}, 1)}}, 1e-5, options);
  }
  options.precision = Precision::kFP16;
  auto fp16 = cpu.Compile(*b.g, ExactProfile({{1, 9, 11, 6}}), options);
  EXPECT_EQ(fp16->precision(), Precision::kFP32);
  EXPECT_NE(fp16->precision_note().find("FP16 requested"), std::string::npos);
}

TEST(CpuBackend, SerializeDeserializeRoundTrip) {
  const ConvCase cc{"ser", "NCHW", "SAME", 2, 1, "depthwise", "Relu6"};
  Builder b = BuildConv(cc, 2, 9, 11);
  const Shape shape{2, 6, 9, 11};
  CpuBackend cpu;
  const auto profile = ExactProfile({shape});
  auto engine = cpu.Compile(*b.g, profile, {});
  EXPECT_EQ(cpu.compiled_count(), 1);
  const std::string payload = engine->Serialize();
  auto loaded = cpu.Deserialize(*b.g, profile, {}, payload);
  EXPECT_EQ(cpu.compiled_count(), 1);
  EXPECT_EQ(cpu.deserialized_count(), 1);
  const Tensor x = RandF32(shape, 3);
  const auto a = engine->Execute(std::vector<Tensor>{x});
  const auto l = loaded->Execute(std::vector<Tensor>{x});
  ASSERT_EQ(a.size(), l.size());
  EXPECT_TRUE(BitwiseEqual(a[0], l[0]));
  // The loaded engine's plan is the optimized one (the passes did not run again).
  EXPECT_EQ(CountOps(*loaded, "cpu.FusedConv2D"), 1);
  EXPECT_EQ(dynamic_cast<const CpuEngine&>(*loaded).pass_stats(), dynamic_cast<const CpuEngine&>(*engine).pass_stats());
  // Serializing the loaded engine gives the same payload.
  EXPECT_EQ(loaded->Serialize(), payload);

  // Another segment (a different activation): kInvalidArgument, not a silently wrong engine.
  ConvCase other = cc;
  other.act = "Relu";
  const Builder b2 = BuildConv(other, 2, 9, 11);
  ExpectError([&] { cpu.Deserialize(*b2.g, profile, {}, payload); }, ErrorCode::kInvalidArgument,
              {"different segment"});
  EXPECT_EQ(cpu.deserialized_count(), 1);
}

TEST(CpuBackend, ConcurrentExecuteMatchesSingleThreaded) {
  Builder b;
  ir::ValueId y = b.Input("x", {2, 12, 12, 8});
  for (int i = 0; i < 3; ++i) {
    y = b.Op("Conv2D", fmt::format("conv{}", i), {y, b.Const(fmt::format("w{}", i), RandF32({3, 3, 8, 8}, 20 + i))},
             ConvAttrs("NHWC", "SAME"));
    y = b.Op("Relu", fmt::format("relu{}", i), {y});
  }
  y = b.Op("Mul", "mul", {y, b.Const("c", RandF32({8}, 3))});
  y = b.Op("Sigmoid", "sig", {y});
  b.Output("y", y);
  CpuBackend cpu;
  auto engine = cpu.Compile(*b.g, ExactProfile({{2, 12, 12, 8}}), {});
  std::vector<Tensor> inputs, expected;
  for (int i = 0; i < 4; ++i) {
    inputs.push_back(RandF32({2, 12, 12, 8}, 100 + i));
    expected.push_back(engine->Execute(std::vector<Tensor>{inputs.back()})[0]);
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int iter = 0; iter < 25; ++iter) {
        const int k = (t + iter) % 4;
        const auto out = engine->Execute(std::vector<Tensor>{inputs[static_cast<size_t>(k)]});
        if (!BitwiseEqual(out[0], expected[static_cast<size_t>(k)])) ++mismatches[static_cast<size_t>(t)];
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[static_cast<size_t>(t)], 0) << "thread " << t;
  const auto& e = dynamic_cast<const CpuEngine&>(*engine);
  EXPECT_GE(e.contexts_created(), 1u);
  EXPECT_LE(e.contexts_created(), 5u);  // one per concurrent call at most
}

TEST(CpuBackend, SingleThreadOption) {
  const ConvCase cc{"threads", "NHWC", "SAME", 1, 1, "normal", "Relu"};
  const Builder b = BuildConv(cc, 1, 9, 11);
  backend::CompileOptions options;
  options.num_threads = 1;
  CheckAgainstReference(b, ExactProfile({{1, 9, 11, 6}}), {{RandF32({1, 9, 11, 6}, 1)}}, 1e-5, options);
}

TEST(CpuBackend, WorkspaceLimit) {
  // A strided 1x1 convolution needs oneDNN workspace (its kernels gather the strided pixels into
  // the scratchpad); how much depends on the kernels this CPU gets: one byte less than that is
  // refused, exactly that is enough.
  const ConvCase cc{"ws", "NHWC", "VALID", 2, 1, "normal", "Relu", true, 1, 16, 16, 64, 1, 64};
  const Builder b = BuildConv(cc, 1, 16, 16);
  const backend::Profile exact = ExactProfile({{1, 16, 16, 64}});
  const size_t need = dynamic_cast<const CpuEngine&>(*CpuBackend().Compile(*b.g, exact, {})).workspace_bytes();
  backend::CompileOptions options;
  options.max_workspace_bytes = need;
  EXPECT_NO_THROW(CpuBackend().Compile(*b.g, exact, options));
  if (need == 0) GTEST_SKIP() << "this CPU's kernels need no workspace for this convolution: no limit to exceed";
  options.max_workspace_bytes = need - 1;
  ExpectError([&] { CpuBackend().Compile(*b.g, exact, options); }, ErrorCode::kInvalidArgument,
              {fmt::format("max_workspace_bytes ({})", need - 1)});
}

TEST(CpuBackend, DoubleAndIntegerGraphsRunReferenceKernels) {
  Builder b;
  const ir::ValueId x = b.Input("x", {3, 4}, DType::kFloat64);
  const ir::ValueId i = b.Input("i", {3, 4}, DType::kInt32);
  const ir::ValueId y = b.Op("Relu", "relu", {b.Op("Add", "add", {x, x})});
  const ir::ValueId j = b.Op("Mul", "imul", {i, i});
  b.Output("y", y);
  b.Output("j", j);
  Tensor xi(DType::kFloat64, {3, 4});
  Tensor ii(DType::kInt32, {3, 4});
  for (int k = 0; k < 12; ++k) {
    xi.data<double>()[k] = k - 6.5;
    ii.data<int32_t>()[k] = k * 1000;
  }
  auto engine = CheckAgainstReference(b, ExactProfile({{3, 4}, {3, 4}}), {{xi, ii}}, 0);
  EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 0);
}

TEST(CpuBackend, TransposesRunAsOneDnnReordersBitExact) {
  // Rank 2 to 5 permutations of float32 and int32 (oneDNN reorders every 4-byte type alike).
  struct Case {
    Shape shape;
    std::vector<int64_t> perm;
    DType dtype;
  };
  const std::vector<Case> cases = {{{7, 5}, {1, 0}, DType::kFloat32},
                                   {{2, 3, 5, 7}, {0, 2, 3, 1}, DType::kFloat32},
                                   {{2, 3, 5, 7}, {0, 3, 1, 2}, DType::kInt32},
                                   {{3, 1, 4, 2, 5}, {4, 2, 0, 3, 1}, DType::kFloat32},
                                   {{2, 9, 4}, {-1, 0, 1}, DType::kFloat32}};
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.shape.begin(), c.shape.end()), c.dtype);
    const ir::ValueId p = b.Const("perm", Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(c.perm.size())}, c.perm));
    // transpose-sinking moves the Transpose below the Neg; either way the engine runs it.
    b.Output("y", b.Op("Neg", "neg", {b.Op("Transpose", "t", {x, p})}));
    Tensor in = RandF32(c.shape, 3);
    if (c.dtype == DType::kInt32) {
      Tensor ints(DType::kInt32, c.shape);
      for (int64_t i = 0; i < ints.num_elements(); ++i) ints.data<int32_t>()[i] = static_cast<int32_t>(i * 7919 % 1000 - 500);
      in = ints;
    }
    backend::cpu::CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({c.shape}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.Transpose"), 1) << ShapeToString(c.shape);
    for (const auto& st : dynamic_cast<const CpuEngine&>(*engine).steps())
      if (st.op == "cpu.Transpose") {
        EXPECT_EQ(st.kernel.rfind("onednn-reorder:", 0), 0u) << st.kernel;
      }
    const std::vector<Tensor> inputs = {in};
    const auto want = runtime::ReferenceExecutor(b.g).Run(inputs);
    const auto got = engine->Execute(inputs);
    ASSERT_EQ(got[0].shape(), want[0].shape());
    EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0) << ShapeToString(c.shape);
  }
}

TEST(CpuBackend, KerasSwishWithBetaFusesIntoConv) {
  // Keras 3 writes swish as y * sigmoid(beta * y); beta 1 and 1.5 both become a swish post-op.
  for (float beta : {1.0f, 1.5f}) {
    Builder b;
    const Shape shape{1, 6, 6, 4};
    const ir::ValueId x = b.Input("x", {1, 6, 6, 4});
    const ir::ValueId y = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({3, 3, 4, 8}, 3))}, ConvAttrs("NHWC", "SAME"));
    const ir::ValueId s = b.Op("Sigmoid", "sig", {b.Op("Mul", "beta", {b.Const("b", nntest::F32({}, {beta})), y})});
    b.Output("z", b.Op("Mul", "swish", {y, s}));
    auto engine = CheckAgainstReference(b, ExactProfile({shape}), {{RandF32(shape, 1)}});
    EXPECT_EQ(dynamic_cast<const CpuEngine&>(*engine).steps().size(), 1u) << beta;
  }
}

TEST(CpuBackend, ChainsWithPerChannelOperandsOnShortRows) {
  // NHWC tensors times / plus per-channel vectors (3 and 40 channels: rows shorter than a tile),
  // a [1,1,1,C] and a [C] operand, a scalar; large enough to split over threads.
  for (int64_t c : {3, 40}) {
    Builder b;
    const Shape shape{2, 64, 64, c};
    const ir::ValueId x = b.Input("x", {2, 64, 64, c});
    ir::ValueId y = b.Op("Mul", "scale", {x, b.Const("s", RandF32({1, 1, 1, c}, 4))});
    y = b.Op("Sub", "shift", {b.Const("t", RandF32({c}, 5)), y});
    y = b.Op("Add", "offset", {y, b.Const("u", nntest::F32({}, {0.5f}))});
    b.Output("y", b.Op("Tanh", "tanh", {y}));
    auto engine = CheckAgainstReference(b, ExactProfile({shape}), {{RandF32(shape, 1)}}, 0.0);
    EXPECT_EQ(CountOps(*engine, "cpu.EltwiseChain"), 1) << c;
  }
}

TEST(CpuBackend, ConstantPadsRunRowByRowBitExact) {
  // float32 with zeros and with -1.5, uint8 with 7, int32 rank 2, float32 rank 5 with pads on
  // every dim (a pad on the last dim only and one on an outer dim only included).
  struct Case {
    Shape shape;
    std::vector<int64_t> pads;
    DType dtype;
    double value;
    bool has_value;
  };
  const std::vector<Case> cases = {{{1, 7, 9, 5}, {0, 0, 1, 2, 3, 0, 0, 0}, DType::kFloat32, 0.0, false},
                                   {{2, 3, 4, 6}, {0, 0, 0, 0, 0, 0, 2, 1}, DType::kFloat32, -1.5, true},
                                   {{2, 5, 5, 3}, {1, 0, 2, 2, 0, 1, 0, 0}, DType::kUInt8, 7.0, true},
                                   {{4, 3}, {2, 1, 0, 3}, DType::kInt32, 0.0, false},
                                   {{2, 1, 3, 2, 4}, {1, 1, 0, 2, 1, 0, 2, 2, 1, 3}, DType::kFloat32, 2.0, true}};
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.shape.begin(), c.shape.end()), c.dtype);
    std::vector<ir::ValueId> in = {
        x, b.Const("pads", Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(c.shape.size()), 2}, c.pads))};
    if (c.has_value) {
      Tensor v(c.dtype, {});
      if (c.dtype == DType::kFloat32) v.data<float>()[0] = static_cast<float>(c.value);
      else if (c.dtype == DType::kUInt8) v.data<uint8_t>()[0] = static_cast<uint8_t>(c.value);
      else v.data<int32_t>()[0] = static_cast<int32_t>(c.value);
      in.push_back(b.Const("value", v));
    }
    b.Output("y", b.Op("Pad", "pad", in));
    Tensor t(c.dtype, c.shape);
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      if (c.dtype == DType::kFloat32) t.data<float>()[i] = static_cast<float>(i) * 0.25f - 3.0f;
      else if (c.dtype == DType::kUInt8) t.data<uint8_t>()[i] = static_cast<uint8_t>(i * 37 % 251);
      else t.data<int32_t>()[i] = static_cast<int32_t>(i * 7 - 20);
    }
    backend::cpu::CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({c.shape}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.Pad"), 1) << ShapeToString(c.shape);
    const std::vector<Tensor> inputs = {t};
    const auto want = runtime::ReferenceExecutor(b.g).Run(inputs);
    const auto got = engine->Execute(inputs);
    ASSERT_EQ(got[0].shape(), want[0].shape());
    EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0) << ShapeToString(c.shape);
  }
}

TEST(CpuBackend, SelectsRunAsRowKernelsBitExact) {
  // cond ? x : y with every broadcasting the row kernel merges or walks: an attention mask over
  // scores and a scalar (one long merged row, split into chunks), a per-head mask, a condition
  // broadcast along the last dim (stride 0 inside rows), a rank-1 x against a rank-3 condition,
  // size-1 dims; float32, float16, bfloat16 and float64. Integer Selects (shape computations,
  // which the engine folds as IR ops) stay on the reference kernel.
  struct Case {
    Shape c, x, y;
    DType dtype;
  };
  const std::vector<Case> cases = {{{4, 4, 64, 64}, {4, 4, 64, 64}, {}, DType::kFloat32},
                                   {{4, 1, 64, 64}, {4, 3, 64, 64}, {1}, DType::kFloat32},
                                   {{5, 7, 1}, {5, 7, 9}, {5, 7, 9}, DType::kFloat64},
                                   {{3, 1, 6}, {6}, {3, 4, 1}, DType::kBFloat16},
                                   {{2, 3, 1, 5}, {2, 1, 4, 5}, {1, 3, 4, 1}, DType::kFloat16},
                                   {{1}, {2, 3}, {2, 1}, DType::kInt64},
                                   {{0, 3}, {0, 3}, {3}, DType::kFloat32}};
  auto fill = [](DType dtype, const Shape& shape, uint32_t seed) {
    Tensor t(dtype, shape);
    auto* bytes = static_cast<uint8_t*>(t.raw_data());
    for (size_t i = 0; i < t.byte_size(); ++i) bytes[i] = static_cast<uint8_t>((i * 131 + seed * 17) % 251);
    return t;
  };
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId cond = b.Input("c", std::vector<ir::Dim>(c.c.begin(), c.c.end()), DType::kBool);
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.x.begin(), c.x.end()), c.dtype);
    const ir::ValueId y = b.Input("y", std::vector<ir::Dim>(c.y.begin(), c.y.end()), c.dtype);
    b.Output("out", b.Op("Select", "select", {cond, x, y}));
    backend::cpu::CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({c.c, c.x, c.y}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.Select"), c.dtype == DType::kInt64 ? 0 : 1) << ShapeToString(c.x);
    Tensor mask(DType::kBool, c.c);
    for (int64_t i = 0; i < mask.num_elements(); ++i) mask.data<bool>()[i] = (i * 7 + i / 5) % 3 != 0;
    const std::vector<Tensor> inputs = {mask, fill(c.dtype, c.x, 1), fill(c.dtype, c.y, 2)};
    const auto want = runtime::ReferenceExecutor(b.g).Run(inputs);
    const auto got = engine->Execute(inputs);
    ASSERT_EQ(got[0].shape(), want[0].shape()) << ShapeToString(c.x);
    ASSERT_EQ(got[0].dtype(), c.dtype);
    if (want[0].byte_size() > 0)  // an empty tensor may have no buffer
      EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0) << ShapeToString(c.x);
  }
}

TEST(CpuBackend, CastsToFloatRunAsCpuKernelsBitExact) {
  // Every source dtype cpu.Cast takes, into float32, bit-equal to the reference Cast (both use
  // the elementwise table's CastValue); a large mask splits into blocks over the OpenMP team.
  // Rank-0/1 Casts (shape computations) stay IR ops.
  struct Case {
    Shape shape;
    DType dtype;
  };
  const std::vector<Case> cases = {{{8, 64, 128}, DType::kBool},    {{3, 5}, DType::kInt64},
                                   {{4, 7, 3}, DType::kInt32},      {{2, 9}, DType::kUInt8},
                                   {{5, 6}, DType::kInt8},          {{3, 4, 5}, DType::kFloat16},
                                   {{6, 7}, DType::kBFloat16},      {{4, 4}, DType::kFloat64},
                                   {{2, 3}, DType::kUInt64},        {{3, 3}, DType::kInt16},
                                   {{0, 3}, DType::kInt32},         {{6}, DType::kInt64}};
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.shape.begin(), c.shape.end()), c.dtype);
    ir::AttrMap to;
    to.Set("to", DType::kFloat32);
    b.Output("out", b.Op("Cast", "cast", {x}, to));
    backend::cpu::CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({c.shape}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.Cast"), c.shape.size() >= 2 ? 1 : 0) << DTypeName(c.dtype);
    Tensor in(c.dtype, c.shape);
    auto* bytes = static_cast<uint8_t*>(in.raw_data());
    for (size_t i = 0; i < in.byte_size(); ++i)
      bytes[i] = c.dtype == DType::kBool ? static_cast<uint8_t>((i * 7 + i / 5) % 3 == 0)
                                         : static_cast<uint8_t>((i * 131 + 17) % 251);
    const auto want = runtime::ReferenceExecutor(b.g).Run({in});
    const auto got = engine->Execute(std::vector<Tensor>{in});
    ASSERT_EQ(got[0].shape(), want[0].shape()) << DTypeName(c.dtype);
    ASSERT_EQ(got[0].dtype(), DType::kFloat32);
    if (want[0].byte_size() > 0) {  // an empty tensor may have no buffer
      EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0) << DTypeName(c.dtype);
    }
  }
}

TEST(CpuBackend, SoftmaxAndLogSoftmaxRunOneDnnPrimitives) {
  // Along the last, a middle and the first axis (negative and positive attrs), rows of 1 to 300;
  // large logits (softmax must subtract the row max). FP32 bound: 1e-5 relative L2 against the
  // reference, which sums in double.
  struct Case {
    Shape shape;
    int64_t axis;
    const char* op;
  };
  const std::vector<Case> cases = {{{2, 4, 16, 300}, -1, "Softmax"}, {{3, 7, 5}, 1, "Softmax"}, {{6, 9}, 0, "LogSoftmax"},
                                   {{4, 1}, -1, "Softmax"},         {{2, 3, 40}, -1, "LogSoftmax"}};
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.shape.begin(), c.shape.end()));
    b.Output("y", b.Op(c.op, "softmax", {b.Op("Mul", "logits", {x, b.Const("k", nntest::F32({}, {40.0f}))})},
                       testutil::Attrs({{"axis", c.axis}})));
    auto engine = CheckAgainstReference(b, ExactProfile({c.shape}), {{RandF32(c.shape, 7)}});
    EXPECT_EQ(CountOps(*engine, "cpu.Softmax"), 1) << c.op << " " << ShapeToString(c.shape);
    for (const auto& st : dynamic_cast<const CpuEngine&>(*engine).steps())
      if (st.op == "cpu.Softmax") {
        EXPECT_EQ(st.kernel.rfind("onednn:", 0), 0u) << st.kernel;
      }
  }
}

// Sums and means over the last dim (a decomposed layer norm's moments) run several rows side by
// side, each in its own order: bit-identical to the reference's double sums, with a remainder
// group and on several threads.
TEST(CpuBackend, RowSumsOverTheLastDimMatchTheReferenceBitForBit) {
  for (const char* op : {"ReduceMean", "ReduceSum"})
    for (const Shape& shape : {Shape{3, 43, 64}, Shape{4, 130, 70}, Shape{5, 3}}) {
      SCOPED_TRACE(std::string(op) + " " + ShapeToString(shape));
      Builder b;
      const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(shape.begin(), shape.end()));
      const ir::ValueId axes = b.Const("axes", Tensor::FromVector<int64_t>(DType::kInt64, {1}, {-1}));
      b.Output("y", b.Op(op, "reduce", {x, axes}, testutil::Attrs({{"keep_dims", true}})));
      backend::cpu::CpuBackend cpu;
      auto engine = cpu.Compile(*b.g, ExactProfile({shape}), {});
      EXPECT_EQ(CountOps(*engine, "cpu.Reduce"), 1);
      const std::vector<Tensor> inputs = {RandF32(shape, 5)};
      EXPECT_TRUE(BitwiseEqual(engine->Execute(inputs).at(0), runtime::ReferenceExecutor(b.g).Run(inputs).at(0)));
    }
}

TEST(CpuBackend, ReductionsMatchTheReference) {
  // Contiguous axes (NHWC's H and W, the last dim, all dims) on the row kernel, other axes on
  // oneDNN's reduction; keep_dims both ways; a NaN in a max / min row propagates as in the
  // reference. Sums are in double like the reference's: FP32 bound 1e-5.
  struct Case {
    const char* op;
    Shape shape;
    std::vector<int64_t> axes;
    bool keep;
  };
  const std::vector<Case> cases = {{"ReduceMean", {2, 9, 7, 16}, {1, 2}, true}, {"ReduceSum", {3, 5, 40}, {-1}, false},
                                   {"ReduceMax", {2, 9, 7, 16}, {1, 2}, false}, {"ReduceMin", {4, 6}, {0, 1}, false},
                                   {"ReduceMean", {2, 3, 4, 5}, {0, 2}, true},  {"ReduceMax", {2, 3, 4, 5}, {1, 3}, false}};
  for (const Case& c : cases) {
    Builder b;
    const ir::ValueId x = b.Input("x", std::vector<ir::Dim>(c.shape.begin(), c.shape.end()));
    const ir::ValueId axes = b.Const("axes", Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(c.axes.size())}, c.axes));
    b.Output("y", b.Op(c.op, "reduce", {x, axes}, testutil::Attrs({{"keep_dims", c.keep}})));
    Tensor in = RandF32(c.shape, 11);
    if (std::string(c.op) == "ReduceMax" || std::string(c.op) == "ReduceMin") in.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
    backend::cpu::CpuBackend cpu;
    auto engine = cpu.Compile(*b.g, ExactProfile({c.shape}), {});
    EXPECT_EQ(CountOps(*engine, "cpu.Reduce"), 1) << c.op;
    const std::vector<Tensor> inputs = {in};
    const auto want = runtime::ReferenceExecutor(b.g).Run(inputs);
    const auto got = engine->Execute(inputs);
    ASSERT_EQ(got[0].shape(), want[0].shape()) << c.op;
    for (int64_t i = 0; i < want[0].num_elements(); ++i) {
      const float g = got[0].data<float>()[i], w = want[0].data<float>()[i];
      if (std::isnan(w)) EXPECT_TRUE(std::isnan(g)) << c.op << " element " << i;
      else EXPECT_LE(std::fabs(g - w), 1e-5 * (1 + std::fabs(w))) << c.op << " element " << i;
    }
  }
}

}  // namespace
}  // namespace kiln
