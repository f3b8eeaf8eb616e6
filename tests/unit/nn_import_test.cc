// nn TF importers end to end on a hand-written SavedModel (text format): stripped attribute
// defaults, padding/strides/format mapping, FusedBatchNormV3 outputs, MaxPoolV2 with constant
// ksize, BatchMatMulV3 / Einsum, resizes, linear algebra and colour ops; the IR graph is
// evaluated with the reference kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "tests/unit/nn_test_util.h"
#include "tests/unit/tf_import_test_util.h"

namespace kiln {
namespace {

using namespace nntest;

std::string ConstNode(const std::string& name, const Shape& shape, const std::vector<float>& v) {
  std::string dims, vals;
  for (int64_t d : shape) dims += "dim { size: " + std::to_string(d) + " } ";
  for (float f : v) vals += "float_val: " + std::to_string(f) + " ";
  return "node { name: \"" + name + "\" op: \"Const\" attr { key: \"dtype\" value { type: 1 } } attr { key: \"value\" value { tensor { dtype: 1 tensor_shape { " +
         dims + "} " + vals + "} } } }\n";
}
std::string IntConstNode(const std::string& name, const std::vector<int>& v) {
  std::string vals;
  for (int i : v) vals += "int_val: " + std::to_string(i) + " ";
  return "node { name: \"" + name + "\" op: \"Const\" attr { key: \"dtype\" value { type: 3 } } attr { key: \"value\" value { tensor { dtype: 3 tensor_shape { dim { size: " +
         std::to_string(v.size()) + " } } " + vals + "} } } }\n";
}

class NnImport : public tf_test::SavedModelTextImport {
 protected:
  // x: [1,4,4,2] float32.
  ir::Graph Import(const std::string& nodes, const std::vector<std::string>& outputs) {
    std::string outs;
    for (const std::string& t : outputs)
      outs += "outputs { key: \"" + t.substr(0, t.find(':')) + (t.find(":0") == std::string::npos ? t.substr(t.find(':') + 1) : "") +
              "\" value { name: \"" + t + "\" dtype: 1 } }\n";
    const std::string text = R"pb(
saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" }
  graph_def {
    node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: 1 } } }
)pb" + nodes + R"pb(
  }
  signature_def {
    key: "serving_default"
    value {
      inputs { key: "x" value { name: "x:0" dtype: 1 tensor_shape { dim { size: 1 } dim { size: 4 } dim { size: 4 } dim { size: 2 } } } }
      )pb" + outs + R"pb(
      method_name: "tensorflow/serving/predict"
    }
  }
}
)pb";
    return ImportSavedModelText(text);
  }

  static const ir::Node* Find(const ir::Graph& g, const std::string& op) {
    for (const ir::Node& n : g.nodes())
      if (!n.removed && n.op == op) return &n;
    return nullptr;
  }
};

const char* kT = R"(attr { key: "T" value { type: 1 } })";

TEST_F(NnImport, ConvPoolAndBatchNorm) {
  const std::string nodes =
      ConstNode("w", {2, 2, 2, 3}, RandomFloats(24, 1)) + ConstNode("dw", {3, 3, 2, 2}, RandomFloats(36, 2)) +
      ConstNode("scale", {3}, {1, 2, 3}) + ConstNode("offset", {3}, {0.5, 0, -0.5}) + ConstNode("mean", {3}, {0.1f, 0.2f, 0.3f}) +
      ConstNode("var", {3}, {1, 2, 0.5}) + ConstNode("empty", {0}, {}) + IntConstNode("ksize", {1, 3, 3, 1}) +
      IntConstNode("pstrides", {1, 2, 2, 1}) + std::string(R"pb(
      node { name: "conv" op: "Conv2D" input: "x" input: "w" )pb") + kT + R"pb(
             attr { key: "strides" value { list { i: 1 i: 2 i: 2 i: 1 } } } attr { key: "padding" value { s: "SAME" } } }
      node { name: "convx" op: "Conv2D" input: "x" input: "w" )pb" + kT + R"pb(
             attr { key: "strides" value { list { i: 1 i: 1 i: 1 i: 1 } } } attr { key: "padding" value { s: "EXPLICIT" } }
             attr { key: "explicit_paddings" value { list { i: 0 i: 0 i: 1 i: 0 i: 0 i: 2 i: 0 i: 0 } } } }
      node { name: "dwc" op: "DepthwiseConv2dNative" input: "x" input: "dw" )pb" + kT + R"pb(
             attr { key: "strides" value { list { i: 1 i: 1 i: 1 i: 1 } } } attr { key: "padding" value { s: "VALID" } }
             attr { key: "dilations" value { list { i: 1 i: 1 i: 1 i: 1 } } } }
      node { name: "bn" op: "FusedBatchNormV3" input: "conv" input: "scale" input: "offset" input: "mean" input: "var" )pb" + kT + R"pb(
             attr { key: "U" value { type: 1 } } attr { key: "epsilon" value { f: 0.001 } } attr { key: "is_training" value { b: false } } }
      node { name: "bnt" op: "FusedBatchNormV3" input: "conv" input: "scale" input: "offset" input: "empty" input: "empty" )pb" + kT + R"pb(
             attr { key: "U" value { type: 1 } } }
      node { name: "mp" op: "MaxPoolV2" input: "x" input: "ksize" input: "pstrides" )pb" + kT + R"pb(
             attr { key: "padding" value { s: "SAME" } } }
      node { name: "ap" op: "AvgPool" input: "x" )pb" + kT + R"pb(
             attr { key: "ksize" value { list { i: 1 i: 3 i: 3 i: 1 } } } attr { key: "strides" value { list { i: 1 i: 2 i: 2 i: 1 } } }
             attr { key: "padding" value { s: "SAME" } } }
      node { name: "sm" op: "Softmax" input: "x" )pb" + kT + R"pb( }
  )pb";
  const ir::Graph g = Import(nodes, {"conv:0", "convx:0", "dwc:0", "bn:0", "bn:1", "bn:2", "bnt:0", "bnt:1", "bnt:3", "bnt:4", "mp:0", "ap:0", "sm:0"});
  const Tensor x = RandF32({1, 4, 4, 2}, 7);
  std::map<std::string, Tensor> out = Evaluate(g, x);
  const Tensor w = F32({2, 2, 2, 3}, RandomFloats(24, 1));
  ir::AttrMap a;
  a.Set("strides", std::vector<int64_t>{2, 2});
  a.Set("padding", std::string("SAME"));
  const Tensor conv = RunOp("Conv2D", {x, w}, a)[0];
  ExpectNear(out.at("conv"), ToDoubles(conv), 1e-6);
  EXPECT_EQ(ShapeToString(out.at("conv").shape()), "[1,2,2,3]");
  // EXPLICIT with a 2x2 kernel: H padded 1+0 -> 4, W padded 0+2 -> 5
  EXPECT_EQ(ShapeToString(out.at("convx").shape()), "[1,4,5,3]");
  ir::AttrMap ax;
  ax.Set("padding", std::string("EXPLICIT"));
  ax.Set("pads", std::vector<int64_t>{1, 0, 0, 2});
  ExpectNear(out.at("convx"), ToDoubles(RunOp("Conv2D", {x, w}, ax)[0]), 1e-6);
  EXPECT_EQ(ShapeToString(out.at("dwc").shape()), "[1,2,2,4]");
  // Inference batch norm and its pass-through outputs.
  std::vector<double> want;
  const double sc[3] = {1, 2, 3}, of[3] = {0.5, 0, -0.5}, mn[3] = {0.1, 0.2, 0.3}, vr[3] = {1, 2, 0.5};
  for (int64_t i = 0; i < conv.num_elements(); ++i) {
    const int64_t c = i % 3;
    want.push_back((conv.DoubleAt(i) - static_cast<float>(mn[c])) / std::sqrt(vr[c] + 0.001f) * sc[c] + of[c]);
  }
  ExpectNear(out.at("bn"), want, 1e-5);
  ExpectNear(out.at("bn1"), {0.1, 0.2, 0.3}, 1e-7);
  ExpectNear(out.at("bn2"), {1, 2, 0.5}, 1e-7);
  // is_training defaults to true: batch statistics over N, H, W.
  std::vector<double> m(3, 0), v(3, 0);
  for (int64_t i = 0; i < 12; ++i) m[static_cast<size_t>(i % 3)] += conv.DoubleAt(i) / 4;
  for (int64_t i = 0; i < 12; ++i) v[static_cast<size_t>(i % 3)] += std::pow(conv.DoubleAt(i) - m[static_cast<size_t>(i % 3)], 2) / 4;
  ExpectNear(out.at("bnt1"), m, 1e-5);
  ExpectNear(out.at("bnt3"), m, 1e-5);
  ExpectNear(out.at("bnt4"), v, 1e-5);
  want.clear();
  for (int64_t i = 0; i < 12; ++i) {
    const size_t c = static_cast<size_t>(i % 3);
    want.push_back((conv.DoubleAt(i) - m[c]) / std::sqrt(v[c] + 1e-4f) * sc[c] + of[c]);
  }
  ExpectNear(out.at("bnt"), want, 1e-5);
  // MaxPoolV2 with constant ksize/strides became an attribute MaxPool.
  const ir::Node* mp = Find(g, "MaxPool");
  ASSERT_NE(mp, nullptr);
  EXPECT_EQ(mp->inputs.size(), 1u);
  EXPECT_EQ(ShapeToString(out.at("mp").shape()), "[1,2,2,2]");
  EXPECT_EQ(ShapeToString(out.at("ap").shape()), "[1,2,2,2]");
  ExpectNear(out.at("sm"), ToDoubles(RunOp("Softmax", {x}, {})[0]), 1e-7);
}

TEST_F(NnImport, MatMulsEinsumAndResize) {
  const std::string nodes = ConstNode("w2", {2, 5}, RandomFloats(10, 3)) + IntConstNode("size", {7, 3}) + std::string(R"pb(
      node { name: "bmm" op: "BatchMatMulV2" input: "x" input: "w2" )pb") + kT + R"pb( }
      node { name: "bmm3" op: "BatchMatMulV3" input: "x" input: "w2" attr { key: "Ta" value { type: 1 } }
             attr { key: "Tb" value { type: 1 } } attr { key: "Tout" value { type: 1 } } }
      node { name: "ein" op: "Einsum" input: "x" input: "w2" )pb" + kT + R"pb(
             attr { key: "equation" value { s: "abcd,de->abce" } } attr { key: "N" value { i: 2 } } }
      node { name: "rb" op: "ResizeBilinear" input: "x" input: "size" )pb" + kT + R"pb(
             attr { key: "half_pixel_centers" value { b: true } } }
      node { name: "rn" op: "ResizeNearestNeighbor" input: "x" input: "size" )pb" + kT + R"pb( }
      node { name: "s2d" op: "SpaceToDepth" input: "x" )pb" + kT + R"pb( attr { key: "block_size" value { i: 2 } } }
  )pb";
  const ir::Graph g = Import(nodes, {"bmm:0", "bmm3:0", "ein:0", "rb:0", "rn:0", "s2d:0"});
  const Tensor x = RandF32({1, 4, 4, 2}, 9);
  std::map<std::string, Tensor> out = Evaluate(g, x);
  EXPECT_EQ(ShapeToString(out.at("bmm").shape()), "[1,4,4,5]");
  ExpectNear(out.at("bmm3"), ToDoubles(out.at("bmm")), 0);
  ExpectNear(out.at("ein"), ToDoubles(out.at("bmm")), 1e-7);
  EXPECT_EQ(ShapeToString(out.at("rb").shape()), "[1,7,3,2]");
  ir::AttrMap hp;
  hp.Set("half_pixel_centers", true);
  ExpectNear(out.at("rb"), ToDoubles(RunOp("ResizeBilinear", {x, I32({2}, {7, 3})}, hp, 1, {1})[0]), 0);
  EXPECT_EQ(ShapeToString(out.at("rn").shape()), "[1,7,3,2]");
  EXPECT_EQ(ShapeToString(out.at("s2d").shape()), "[1,2,2,8]");
}

// The linear-algebra and colour importers: attributes (adjoint, lower) and LogMatrixDeterminant's
// two outputs reach the IR; complex matrices are refused with the reason.
TEST_F(NnImport, LinalgAndColourOps) {
  const std::string nodes = ConstNode("m", {2, 2}, {2, 1, 1, 3}) + ConstNode("rhs", {2, 1}, {1, 2}) +
                            ConstNode("rgb", {1, 1, 3}, {1, 0.5f, 0}) + ConstNode("delta", {}, {0.5f}) +
                            std::string(R"pb(
      node { name: "inv" op: "MatrixInverse" input: "m" )pb") + kT + R"pb( attr { key: "adjoint" value { b: true } } }
      node { name: "sld" op: "LogMatrixDeterminant" input: "m" )pb" + kT + R"pb( }
      node { name: "sol" op: "MatrixSolve" input: "m" input: "rhs" )pb" + kT + R"pb( }
      node { name: "tri" op: "MatrixTriangularSolve" input: "m" input: "rhs" )pb" + kT + R"pb(
             attr { key: "lower" value { b: false } } }
      node { name: "hue" op: "AdjustHue" input: "rgb" input: "delta" )pb" + kT + R"pb( }
      node { name: "hsv" op: "RGBToHSV" input: "rgb" }
  )pb";
  const ir::Graph g = Import(nodes, {"inv:0", "sld:0", "sld:1", "sol:0", "tri:0", "hue:0", "hsv:0"});
  std::map<std::string, Tensor> out = Evaluate(g, RandF32({1, 4, 4, 2}, 1));
  ExpectNear(out.at("inv"), {0.6, -0.2, -0.2, 0.4}, 1e-7);
  ExpectNear(out.at("sld"), {1}, 0);
  ExpectNear(out.at("sld1"), {std::log(5.0)}, 1e-7);
  ExpectNear(out.at("sol"), {0.2, 0.6}, 1e-7);
  ExpectNear(out.at("tri"), {1.0 / 6, 2.0 / 3}, 1e-7);  // [[2, 1], [0, 3]] x = [1, 2]
  ExpectNear(out.at("hue"), {0, 0.5, 1}, 1e-7);
  ExpectNear(out.at("hsv"), {1.0 / 12, 1, 1}, 1e-7);
  const std::string complex = R"pb(
      node { name: "c" op: "MatrixSolve" input: "x" input: "x" attr { key: "T" value { type: 8 } } }
  )pb";
  try {
    Import(complex, {"c:0"});
    ADD_FAILURE() << "expected an unsupported-op error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("complex"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln
