// The layout passes (ir/passes/layout.cc) on a channels-first residual block as the ONNX importer
// writes it: after channels-last and transpose-sinking, the only data-moving Transpose left is the
// one at the input, and the reference executor gives bit-identical outputs.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/passes/pass.h"
#include "runtime/executor.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

ir::ValueId Emit(ir::Graph& g, const std::string& op, const std::string& name, std::vector<ir::ValueId> in,
                 ir::AttrMap attrs = {}) {
  ir::Node& n = g.AddNode(op, name, std::move(in), 1);
  n.attrs = std::move(attrs);
  const ir::NodeId id = n.id;
  ir::InferNode(g, id);
  return g.node(id).outputs[0];
}

Tensor Random(DType dtype, Shape shape, uint64_t seed) {
  Tensor t(dtype, std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = normal(rng);
  return t;
}

ir::AttrMap ConvAttrs() {
  return testutil::Attrs({{"data_format", std::string("NCHW")},
                          {"strides", std::vector<int64_t>{1, 1}},
                          {"dilations", std::vector<int64_t>{1, 1}},
                          {"padding", std::string("SAME")}});
}

// x [N,4,6,6] -> conv+bias -> relu -> maxpool? no: conv -> relu -> conv -> add(x) -> relu ->
// mul by a per-channel constant [4,1,1] -> mean over H,W (keep dims) -> reshape [N,4].
ir::Graph ResidualBlock() {
  ir::Graph g;
  const ir::Dim n = g.NewSymbol("batch");
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({n, 4, 6, 6}));
  const ir::ValueId w1 = g.AddConstant("w1", Random(DType::kFloat32, {3, 3, 4, 4}, 1));
  const ir::ValueId b1 = g.AddConstant("b1", Random(DType::kFloat32, {4}, 2));
  const ir::ValueId w2 = g.AddConstant("w2", Random(DType::kFloat32, {1, 1, 4, 4}, 3));
  ir::ValueId y = Emit(g, "Conv2D", "conv1", {x, w1, b1}, ConvAttrs());
  y = Emit(g, "Relu", "relu1", {y});
  y = Emit(g, "Conv2D", "conv2", {y, w2}, ConvAttrs());
  y = Emit(g, "Add", "residual", {y, x});
  y = Emit(g, "Relu", "relu2", {y});
  y = Emit(g, "MaxPool", "pool", {y},
           testutil::Attrs({{"data_format", std::string("NCHW")},
                            {"ksize", std::vector<int64_t>{2, 2}},
                            {"strides", std::vector<int64_t>{2, 2}},
                            {"padding", std::string("VALID")}}));
  y = Emit(g, "Mul", "scale", {y, g.AddConstant("s", Random(DType::kFloat32, {4, 1, 1}, 4))});
  y = Emit(g, "ReduceMean", "mean", {y, g.AddConstant("axes", Tensor::FromVector<int64_t>(DType::kInt64, {2}, {2, 3}))},
           testutil::Attrs({{"keep_dims", true}}));
  y = Emit(g, "Reshape", "flatten",
           {y, g.AddConstant("target", Tensor::FromVector<int64_t>(DType::kInt64, {2}, {-1, 4}))});
  g.AddOutput("y", y);
  return g;
}

int Count(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const ir::Node& node : g.nodes()) n += !node.removed && node.op == op ? 1 : 0;
  return n;
}

TEST(LayoutPasses, ChannelsFirstBlockChangesLayoutOnlyAtTheInput) {
  ir::Graph g = ResidualBlock();
  auto original = std::make_shared<const ir::Graph>(g.Clone());
  ir::PassPipeline p;
  p.Add(ir::MakeChannelsLast());
  p.Add(ir::MakeTransposeSinking());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);  // the verifier runs after each pass
  for (const ir::Node& node : g.nodes())
    if (!node.removed && node.attrs.Has("data_format"))
      EXPECT_EQ(node.attrs.Get<std::string>("data_format"), "NHWC") << node.name;
  // The input goes to NHWC once (for conv1 and the residual add alike); the mean's [N,1,1,4] ->
  // [N,4,1,1] moves no data and became a Reshape.
  EXPECT_EQ(Count(g, "Transpose"), 1) << ir::GraphToText(g);
  const Tensor x = Random(DType::kFloat32, {3, 4, 6, 6}, 9);
  const auto want = runtime::ReferenceExecutor(original).Run({x});
  const auto got = runtime::ReferenceExecutor(std::make_shared<const ir::Graph>(g.Clone())).Run({x});
  ASSERT_EQ(got[0].shape(), (Shape{3, 4}));
  EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0);
}

TEST(LayoutPasses, TransposesThatDoNotMeetStay) {
  // A Transpose feeding a MatMul cannot sink; a pair that is not inverse merges into one.
  ir::Graph g;
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2, 3, 5}));
  auto perm = [&](std::vector<int64_t> p) {
    return g.AddConstant("p" + std::to_string(g.nodes().size()), Tensor::FromVector<int64_t>(DType::kInt64, {3}, p));
  };
  ir::ValueId y = Emit(g, "Transpose", "t1", {x, perm({0, 2, 1})});
  y = Emit(g, "Transpose", "t2", {y, perm({1, 0, 2})});
  y = Emit(g, "Neg", "neg", {y});
  y = Emit(g, "BatchMatMul", "mm", {y, g.AddConstant("w", Random(DType::kFloat32, {5, 3, 4}, 5))});
  g.AddOutput("y", y);
  auto original = std::make_shared<const ir::Graph>(g.Clone());
  ir::PassPipeline p;
  p.Add(ir::MakeTransposeSinking());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);
  EXPECT_EQ(Count(g, "Transpose"), 1);  // t1 and t2 merged, then sunk below the Neg
  const Tensor in = Random(DType::kFloat32, {2, 3, 5}, 6);
  const auto want = runtime::ReferenceExecutor(original).Run({in});
  const auto got = runtime::ReferenceExecutor(std::make_shared<const ir::Graph>(g.Clone())).Run({in});
  ASSERT_EQ(got[0].shape(), want[0].shape());
  EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0);
}

// A channels-first block with the ops between convolutions that exporters write: a zero Pad
// before a VALID depthwise conv, Clip (ReLU6), x * sigmoid(x) (the Transpose read twice), a
// BatchNorm along axis 1, a channel Concat of two branches and a Softmax over channels.
ir::Graph BranchyBlock() {
  ir::Graph g;
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2, 4, 6, 6}));
  auto conv_attrs = [](const char* padding) {
    return testutil::Attrs({{"data_format", std::string("NCHW")},
                            {"strides", std::vector<int64_t>{1, 1}},
                            {"dilations", std::vector<int64_t>{1, 1}},
                            {"padding", std::string(padding)}});
  };
  ir::ValueId a = Emit(g, "Conv2D", "conv1", {x, g.AddConstant("w1", Random(DType::kFloat32, {1, 1, 4, 4}, 1))}, conv_attrs("VALID"));
  a = Emit(g, "Clip", "relu6", {a, g.AddConstant("lo", Tensor::Scalar(DType::kFloat32, 0.0f)), g.AddConstant("hi", Tensor::Scalar(DType::kFloat32, 6.0f))});
  a = Emit(g, "Pad", "pad",
           {a, g.AddConstant("pads", Tensor::FromVector<int64_t>(DType::kInt64, {4, 2}, {0, 0, 0, 0, 1, 1, 1, 1}))});
  a = Emit(g, "DepthwiseConv2D", "dw", {a, g.AddConstant("wd", Random(DType::kFloat32, {3, 3, 4, 1}, 2))}, conv_attrs("VALID"));
  const ir::ValueId sig = Emit(g, "Sigmoid", "sig", {a});
  a = Emit(g, "Mul", "swish", {a, sig});
  ir::ValueId b = Emit(g, "Conv2D", "conv2", {x, g.AddConstant("w2", Random(DType::kFloat32, {3, 3, 4, 2}, 3))}, conv_attrs("SAME"));
  ir::Node& bn = g.AddNode("BatchNorm", "bn",
                           {b, g.AddConstant("gamma", Random(DType::kFloat32, {2}, 4)), g.AddConstant("beta", Random(DType::kFloat32, {2}, 5)),
                            g.AddConstant("mean", Random(DType::kFloat32, {2}, 6)),
                            g.AddConstant("var", Tensor::FromVector<float>(DType::kFloat32, {2}, {0.5f, 2.0f}))},
                           1);
  bn.attrs = testutil::Attrs({{"axis", int64_t{1}}, {"epsilon", 1e-3}});
  const ir::NodeId bn_id = bn.id;
  ir::InferNode(g, bn_id);
  b = g.node(bn_id).outputs[0];
  ir::ValueId y = Emit(g, "Concat", "concat", {a, b, g.AddConstant("axis", Tensor::FromVector<int64_t>(DType::kInt64, {}, {1}))});
  y = Emit(g, "Softmax", "softmax", {y}, testutil::Attrs({{"axis", int64_t{1}}}));
  g.AddOutput("y", y);
  return g;
}

TEST(LayoutPasses, PadClipSwishBatchNormConcatSoftmaxKeepChannelsLast) {
  ir::Graph g = BranchyBlock();
  auto original = std::make_shared<const ir::Graph>(g.Clone());
  ir::PassPipeline p;
  p.Add(ir::MakeChannelsLast());
  p.Add(ir::MakeTransposeSinking());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);
  // One Transpose of x (read by both branches) and one of the result.
  EXPECT_EQ(Count(g, "Transpose"), 2) << ir::GraphToText(g);
  for (const ir::Node& node : g.nodes()) {
    if (node.removed) continue;
    if (node.op == "Pad") EXPECT_EQ(g.ConstantOf(node.inputs[1])->ToInt64Vector(), (std::vector<int64_t>{0, 0, 1, 1, 1, 1, 0, 0}));
    if (node.op == "BatchNorm" || node.op == "Softmax") EXPECT_EQ(node.attrs.Get<int64_t>("axis"), 3) << node.name;
    if (node.op == "Concat") EXPECT_EQ(g.ConstantOf(node.inputs.back())->ToInt64Vector(), (std::vector<int64_t>{3}));
  }
  const Tensor x = Random(DType::kFloat32, {2, 4, 6, 6}, 9);
  const auto want = runtime::ReferenceExecutor(original).Run({x});
  const auto got = runtime::ReferenceExecutor(std::make_shared<const ir::Graph>(g.Clone())).Run({x});
  ASSERT_EQ(got[0].shape(), (Shape{2, 6, 6, 6}));
  EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0);
}

TEST(LayoutPasses, SqueezeExciteBlockKeepsChannelsLast) {
  // NCHW conv -> swish -> squeeze (ReduceMean over H, W without keep_dims, and a Reshape back to
  // [N, C, 1, 1]) -> 1x1 convs -> sigmoid gate -> excite Mul with the swish output. The swish
  // output's Transpose has two readers (the mean and the excite product): both take it, and no
  // data-moving Transpose is left but the input's and the output's.
  ir::Graph g;
  const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({2, 8, 6, 6}));
  ir::ValueId a = Emit(g, "Conv2D", "conv", {x, g.AddConstant("w", Random(DType::kFloat32, {3, 3, 8, 8}, 1))}, ConvAttrs());
  a = Emit(g, "Mul", "swish", {a, Emit(g, "Sigmoid", "sig", {a})});
  ir::ValueId s = Emit(g, "ReduceMean", "squeeze", {a, g.AddConstant("hw", Tensor::FromVector<int64_t>(DType::kInt64, {2}, {2, 3}))});
  s = Emit(g, "Reshape", "to_nc11", {s, g.AddConstant("nc11", Tensor::FromVector<int64_t>(DType::kInt64, {4}, {-1, 8, 1, 1}))});
  s = Emit(g, "Conv2D", "reduce", {s, g.AddConstant("wr", Random(DType::kFloat32, {1, 1, 8, 4}, 2))}, ConvAttrs());
  s = Emit(g, "Relu", "reduce_relu", {s});
  s = Emit(g, "Conv2D", "expand", {s, g.AddConstant("we", Random(DType::kFloat32, {1, 1, 4, 8}, 3))}, ConvAttrs());
  s = Emit(g, "Sigmoid", "gate", {s});
  g.AddOutput("y", Emit(g, "Mul", "excite", {a, s}));
  auto original = std::make_shared<const ir::Graph>(g.Clone());
  ir::PassPipeline p;
  p.Add(ir::MakeChannelsLast());
  p.Add(ir::MakeTransposeSinking());
  p.Add(ir::MakeDeadCodeElimination());
  p.Run(g);
  int moving = 0;
  for (const ir::Node& node : g.nodes())
    if (!node.removed && node.op == "Transpose" && g.value(node.inputs[0]).shape.dims.size() == 4) {
      const auto& d = g.value(node.inputs[0]).shape.dims;
      moving += (d[1] != 1 && d[2] != 1) || (d[2] != 1 && d[3] != 1) ? 1 : 0;
    }
  EXPECT_EQ(moving, 2) << ir::GraphToText(g);
  const Tensor in = Random(DType::kFloat32, {2, 8, 6, 6}, 9);
  const auto want = runtime::ReferenceExecutor(original).Run({in});
  const auto got = runtime::ReferenceExecutor(std::make_shared<const ir::Graph>(g.Clone())).Run({in});
  ASSERT_EQ(got[0].shape(), want[0].shape());
  EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0);
}

TEST(PadFolding, ZeroSpatialPadsBecomeConvolutionPadding) {
  // NHWC and NCHW; folded into VALID and EXPLICIT convolutions (pads add up); not folded: a
  // nonzero pad value, a pad of the channel dim, a SAME convolution, a Pad also read by a Relu.
  struct Case {
    const char* name;
    const char* format;
    const char* padding;
    std::vector<int64_t> pads;  // [4, 2]
    float value;
    bool extra_reader;
    bool folds;
  };
  const std::vector<Case> cases = {
      {"nhwc_valid", "NHWC", "VALID", {0, 0, 1, 2, 3, 0, 0, 0}, 0.0f, false, true},
      {"nchw_explicit", "NCHW", "EXPLICIT", {0, 0, 0, 0, 1, 1, 2, 0}, 0.0f, false, true},
      {"value_one", "NHWC", "VALID", {0, 0, 1, 1, 1, 1, 0, 0}, 1.0f, false, false},
      {"channel_pad", "NHWC", "VALID", {0, 0, 1, 1, 1, 1, 0, 2}, 0.0f, false, false},
      {"same", "NHWC", "SAME", {0, 0, 1, 1, 1, 1, 0, 0}, 0.0f, false, false},
      {"two_readers", "NHWC", "VALID", {0, 0, 1, 1, 1, 1, 0, 0}, 0.0f, true, false},
  };
  for (const Case& c : cases) {
    const bool nhwc = std::string(c.format) == "NHWC";
    ir::Graph g;
    const Shape xs = nhwc ? Shape{2, 5, 6, 3} : Shape{2, 3, 5, 6};
    const ir::ValueId x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of(std::vector<ir::Dim>(xs.begin(), xs.end())));
    const ir::ValueId padded =
        Emit(g, "Pad", "pad",
             {x, g.AddConstant("pads", Tensor::FromVector<int64_t>(DType::kInt64, {4, 2}, c.pads)), g.AddConstant("v", Tensor::Scalar(DType::kFloat32, c.value))});
    const int64_t out_c = std::string(c.name) == "channel_pad" ? 4 : 2;
    const int64_t in_c = std::string(c.name) == "channel_pad" ? 5 : 3;
    ir::AttrMap attrs = testutil::Attrs({{"data_format", std::string(c.format)},
                                         {"strides", std::vector<int64_t>{1, 2}},
                                         {"dilations", std::vector<int64_t>{1, 1}},
                                         {"padding", std::string(c.padding)}});
    if (std::string(c.padding) == "EXPLICIT") attrs.Set("pads", std::vector<int64_t>{0, 1, 1, 0});
    const ir::ValueId y =
        Emit(g, "Conv2D", "conv", {padded, g.AddConstant("w", Random(DType::kFloat32, {3, 2, in_c, out_c}, 4))}, std::move(attrs));
    g.AddOutput("y", y);
    if (c.extra_reader) g.AddOutput("r", Emit(g, "Relu", "relu", {padded}));
    auto original = std::make_shared<const ir::Graph>(g.Clone());
    ir::PassPipeline p;
    p.Add(ir::MakePadFolding());
    p.Add(ir::MakeDeadCodeElimination());
    p.Run(g);
    EXPECT_EQ(Count(g, "Pad"), c.folds ? 0 : 1) << c.name;
    const Tensor in = Random(DType::kFloat32, xs, 7);
    const auto want = runtime::ReferenceExecutor(original).Run({in});
    const auto got = runtime::ReferenceExecutor(std::make_shared<const ir::Graph>(g.Clone())).Run({in});
    ASSERT_EQ(got[0].shape(), want[0].shape()) << c.name;
    EXPECT_EQ(std::memcmp(got[0].raw_data(), want[0].raw_data(), want[0].byte_size()), 0) << c.name;
  }
}

}  // namespace
}  // namespace kiln
