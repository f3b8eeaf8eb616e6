// ONNX Resize (opsets 10 to 19) and Upsample (7, 9): which IR each case becomes, values on small
// inputs worked out by hand (run on the reference executor), and the import errors. The kernel
// itself is tested in nn_resize_test.cc; ONNX's backend tests run in tests/onnx_conformance.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "kiln/error.h"
#include "runtime/executor.h"
#include "tests/unit/onnx_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln::onnxfe {
namespace {

using onnxtest::F32;
using onnxtest::FindOp;
using onnxtest::ModelMaker;

using testutil::ExpectErrorMessage;

constexpr int32_t kF32 = onnx::TensorProto::FLOAT;

template <typename T>
void SetAttr(onnx::NodeProto& n, const std::string& name, const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    onnxtest::SetString(n, name, value);
  } else if constexpr (std::is_same_v<T, std::vector<float>>) {
    onnxtest::SetFloats(n, name, value);
  } else {
    onnxtest::SetInt(n, name, value);
  }
}

std::vector<float> Floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}

// [n, c, h, w] with values 0, 1, 2, ... and each pixel repeated 2x2: a 2x nearest upsample.
std::vector<float> Doubled(int64_t nc, int64_t h, int64_t w) {
  std::vector<float> y;
  for (int64_t p = 0; p < nc; ++p)
    for (int64_t i = 0; i < 2 * h; ++i)
      for (int64_t j = 0; j < 2 * w; ++j) y.push_back(static_cast<float>((p * h + i / 2) * w + j / 2));
  return y;
}
Tensor Ramp(Shape shape) {
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

TEST(OnnxResizeImport, SizesFromTheInputShapeWithADynamicBatch) {
  // What PyTorch exports for F.interpolate(x, size=...): sizes = Concat(Shape(x)[:2], [H', W']).
  for (int64_t opset : {11, 13, 18}) {
    ModelMaker m(opset);
    m.Input("x", kF32, {std::string("n"), 2, 2, 3}).Int64s("starts", {0}).Int64s("ends", {2}).Int64s("hw", {4, 6});
    m.Floats("no_scales", {});
    m.Node("Shape", {"x"}, {"shape"});
    m.Node("Slice", {"shape", "starts", "ends"}, {"nc"});
    SetAttr(m.Node("Concat", {"nc", "hw"}, {"sizes"}), "axis", int64_t{0});
    onnx::NodeProto& r = m.Node("Resize", {"x", "", opset < 13 ? "no_scales" : "", "sizes"});
    SetAttr(r, "mode", std::string("nearest"));
    SetAttr(r, "coordinate_transformation_mode", std::string("asymmetric"));
    SetAttr(r, "nearest_mode", std::string("floor"));
    const std::shared_ptr<ir::Graph> g = m.Import();
    ASSERT_NE(FindOp(*g, "Resize"), nullptr) << opset;
    runtime::ReferenceExecutor exec(g);
    for (int64_t n : {1, 3}) {
      const Tensor y = exec.Run({Ramp({n, 2, 2, 3})})[0];
      EXPECT_EQ(y.shape(), (Shape{n, 2, 4, 6}));
      EXPECT_EQ(Floats(y), Doubled(n * 2, 2, 3)) << "opset " << opset << " batch " << n;
    }
  }
}

TEST(OnnxResizeImport, ConstantScalesKeepTheNhwcFastPath) {
  ModelMaker m(13);
  m.Input("x", kF32, {std::string("n"), 2, 2, 3}).Floats("scales", {1, 1, 2, 2});
  onnx::NodeProto& r = m.Node("Resize", {"x", "", "scales"});
  SetAttr(r, "coordinate_transformation_mode", std::string("asymmetric"));
  SetAttr(r, "nearest_mode", std::string("floor"));
  const std::shared_ptr<ir::Graph> g = m.Import();
  EXPECT_NE(FindOp(*g, "ResizeNearestNeighbor"), nullptr);
  EXPECT_EQ(FindOp(*g, "Resize"), nullptr);
  EXPECT_EQ(Floats(runtime::ReferenceExecutor(g).Run({Ramp({2, 2, 2, 3})})[0]), Doubled(4, 2, 3));
}

TEST(OnnxResizeImport, CubicAndConstantsTheFastPathCannotTakeUseTheIrOp) {
  ModelMaker m(13);
  m.Input("x", kF32, {1, 1, 1, 4}).Floats("scales", {1, 1, 1, 2});
  onnx::NodeProto& r = m.Node("Resize", {"x", "", "scales"});
  SetAttr(r, "mode", std::string("cubic"));
  SetAttr(r, "coordinate_transformation_mode", std::string("asymmetric"));
  const std::shared_ptr<ir::Graph> g = m.Import();
  const ir::Node* n = FindOp(*g, "Resize");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(g->ShapeToString(g->value(n->outputs[0]).shape), "[1,1,1,8]");  // static: constant scales
  // Cubic (a = -.75) over [1, 2, 4, 8] at coords 0, .5, ..., 3.5 (nn_resize_test.cc).
  EXPECT_EQ(Floats(runtime::ReferenceExecutor(g).Run({F32({1, 1, 1, 4}, {1, 2, 4, 8})})[0]),
            (std::vector<float>{1, 1.3125f, 2, 2.71875f, 4, 6.1875f, 8, 8.375f}));
}

TEST(OnnxResizeImport, Resize10AndUpsampleUseAsymmetricCoordinates) {
  // Resize-10, scales given at run time: ONNX's opset-10 test downsample_nearest, [1,1,2,4] by .6
  // -> [1,1,1,2] = [1, 3] (coords 0 and 1.67, ceil when shrinking).
  {
    ModelMaker m(10);
    m.Input("x", kF32, {1, 1, 2, 4}).Input("scales", kF32, {4});
    m.Node("Resize", {"x", "scales"});
    const std::shared_ptr<ir::Graph> g = m.Import();
    const ir::Node* n = FindOp(*g, "Resize");
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->attrs.Str("coordinate_transformation_mode"), "asymmetric");
    EXPECT_EQ(n->attrs.Str("nearest_mode"), "simple");
    const Tensor y = runtime::ReferenceExecutor(g).Run(
        {F32({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), F32({4}, {1, 1, 0.6f, 0.6f})})[0];
    EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 2}));
    EXPECT_EQ(Floats(y), (std::vector<float>{1, 3}));
  }
  // Upsample-7 (scales attribute): static, so the NHWC fast path; x1.5 along W: coords 0, .67,
  // 1.33, 2, 2.67, 3.33 floor to 0 0 1 2 2 3.
  {
    ModelMaker m(7);
    m.Input("x", kF32, {1, 1, 1, 4});
    SetAttr(m.Node("Upsample", {"x"}), "scales", std::vector<float>{1, 1, 2, 1.5f});
    const std::shared_ptr<ir::Graph> g = m.Import();
    EXPECT_NE(FindOp(*g, "ResizeNearestNeighbor"), nullptr);
    EXPECT_EQ(Floats(runtime::ReferenceExecutor(g).Run({F32({1, 1, 1, 4}, {1, 2, 3, 4})})[0]),
              (std::vector<float>{1, 1, 2, 3, 3, 4, 1, 1, 2, 3, 3, 4}));
  }
  // Upsample-9 linear, scales at run time: coords 0, .5, 1, 1.5 -> 1, 1.5, 2, 2.
  {
    ModelMaker m(9);
    m.Input("x", kF32, {1, 1, 1, 2}).Input("scales", kF32, {4});
    SetAttr(m.Node("Upsample", {"x", "scales"}), "mode", std::string("linear"));
    const std::shared_ptr<ir::Graph> g = m.Import();
    ASSERT_NE(FindOp(*g, "Resize"), nullptr);
    EXPECT_EQ(Floats(runtime::ReferenceExecutor(g).Run({F32({1, 1, 1, 2}, {1, 2}), F32({4}, {1, 1, 1, 2})})[0]),
              (std::vector<float>{1, 1.5f, 2, 2}));
  }
}

TEST(OnnxResizeImport, Opset18AttributesReachTheIrOp) {
  ModelMaker m(18);
  m.Input("x", kF32, {std::string("n"), 3, 4, 6}).Int64s("sizes", {3, 3});
  onnx::NodeProto& r = m.Node("Resize", {"x", "", "", "sizes"});
  SetAttr(r, "mode", std::string("linear"));
  SetAttr(r, "antialias", int64_t{1});
  SetAttr(r, "keep_aspect_ratio_policy", std::string("not_larger"));
  onnx::AttributeProto* axes = r.add_attribute();
  axes->set_name("axes");
  axes->set_type(onnx::AttributeProto::INTS);
  axes->add_ints(-2);
  axes->add_ints(-1);
  const std::shared_ptr<ir::Graph> g = m.Import();
  const ir::Node* n = FindOp(*g, "Resize");
  ASSERT_NE(n, nullptr);
  EXPECT_TRUE(n->attrs.Bool("antialias"));
  EXPECT_EQ(n->attrs.Ints("axes"), (std::vector<int64_t>{-2, -1}));
  // not_larger: scale min(3/4, 3/6) = .5 on H and W; the batch stays symbolic.
  EXPECT_EQ(g->ShapeToString(g->value(n->outputs[0]).shape), "[n,3,2,3]");
}

TEST(OnnxResizeImport, Errors) {
  auto resize = [](int64_t opset, const std::vector<std::string>& inputs, const std::string& attr = "",
                   const std::string& value = "", int32_t type = kF32) {
    ModelMaker m(opset);
    m.Input("x", type, {1, 1, 2, 2}).Floats("scales", {1, 1, 2, 2}).Int64s("sizes", {1, 1, 4, 4}).Floats("empty", {});
    onnx::NodeProto& n = m.Node("Resize", inputs);
    if (!attr.empty()) SetAttr(n, attr, value);
    m.Import();
  };
  ExpectErrorMessage(
      [&] {
        resize(13, {"x", "", "scales", "sizes"});
      },
      {"node 'Resize_0' (Resize)", "scales (input 2) and sizes (input 3) are both given"});
  ExpectErrorMessage(
      [&] {
        resize(13, {"x", "", "empty"});
      },
      {"one of scales (input 2) and sizes (input 3) must be given"});
  ExpectErrorMessage(
      [&] {
        resize(13, {"x", "", "scales"}, "coordinate_transformation_mode", "corners");
      },
      {"unknown coordinate_transformation_mode 'corners'"});
  ExpectErrorMessage(
      [&] {
        resize(13, {"x", "", "scales"}, "coordinate_transformation_mode", "tf_crop_and_resize");
      },
      {"tf_crop_and_resize needs roi (input 1)"});
  ExpectErrorMessage(
      [&] {
        resize(10, {"x", "scales"}, "mode", "cubic");
      },
      {"mode must be nearest or linear, got 'cubic'"});
  ExpectErrorMessage(
      [&] {
        resize(13, {"x", "", "scales"}, "nearest_mode", "simple");
      },
      {"unknown nearest_mode 'simple'"});
  ExpectErrorMessage(
      [&] {
        resize(13, {"x", "", "scales"}, "mode", "linear", onnx::TensorProto::BOOL);
      },
      {"linear resize of bool is not supported"});
  ExpectErrorMessage(
      [&] {
        resize(13, {"x", "", "", "sizes"}, "keep_aspect_ratio_policy", "fit");
      },
      {"unknown keep_aspect_ratio_policy 'fit'"});
  // Sizes no tensor could hold fail at import.
  ModelMaker big(13);
  big.Input("x", kF32, {1, 1, 2, 2}).Int64s("sizes", {1, 1, int64_t{1} << 40, int64_t{1} << 40});
  big.Node("Resize", {"x", "", "", "sizes"});
  ExpectErrorMessage([&] { big.Import(); }, {"the resized output", "more than one tensor may"});
  // Upsample before 7 was experimental.
  ModelMaker old(6);
  old.Input("x", kF32, {1, 1, 2, 2});
  old.Node("Upsample", {"x"});
  ExpectErrorMessage([&] { old.Import(); }, {"Upsample at opset 6"});
}

}  // namespace
}  // namespace kiln::onnxfe
