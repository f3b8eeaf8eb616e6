// ONNX importers of GridSample, RoiAlign, MaxPool (Indices, dilations), MaxUnpool, Unique,
// ScatterND / ScatterElements reductions, MeanVarianceNormalization, and the opset-1 forms of
// ConvTranspose and ReduceLogSum: the IR each becomes, values on small inputs worked out by hand
// (run on the reference executor), and the import errors. ONNX's backend tests for these ops
// run in tests/onnx_conformance; the kernels are tested in nn_vision_test.cc and
// array_scatter_unique_test.cc.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <memory>
#include <string>
#include <tuple>
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
constexpr int32_t kI32 = onnx::TensorProto::INT32;
constexpr int32_t kI64 = onnx::TensorProto::INT64;

void Attr(onnx::NodeProto& n, const std::string& name, int64_t v) { onnxtest::SetInt(n, name, v); }
void Attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) { onnxtest::SetInts(n, name, v); }
void Attr(onnx::NodeProto& n, const std::string& name, const std::string& v) { onnxtest::SetString(n, name, v); }
void Attr(onnx::NodeProto& n, const std::string& name, float v) { onnxtest::SetFloat(n, name, v); }

Tensor I64(Shape shape, const std::vector<int64_t>& v) {
  return Tensor::FromVector<int64_t>(DType::kInt64, std::move(shape), v);
}
Tensor Iota(Shape shape, float start = 0) {
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}
std::vector<double> Values(const Tensor& t) { return testutil::Doubles(t); }

std::vector<Tensor> Execute(const std::shared_ptr<ir::Graph>& g, const std::vector<Tensor>& inputs) {
  return runtime::ReferenceExecutor(g).Run(inputs);
}

// ---- GridSample ----

TEST(OnnxVisionImport, GridSampleModeNamesByOpset) {
  // Opset 16 names bilinear / bicubic, opset 20 linear / cubic; both become the IR's names.
  for (const auto& [opset, mode, ir_mode] :
       std::vector<std::tuple<int64_t, std::string, std::string>>{{16, "bilinear", "linear"},
                                                                  {16, "bicubic", "cubic"},
                                                                  {16, "nearest", "nearest"},
                                                                  {20, "linear", "linear"},
                                                                  {20, "cubic", "cubic"}}) {
    ModelMaker m(opset);
    m.Input("x", kF32, {1, 1, 2, 2}).Input("grid", kF32, {1, 1, 1, 2});
    Attr(m.Node("GridSample", {"x", "grid"}), "mode", mode);
    const auto g = m.Import();
    const ir::Node* n = FindOp(*g, "GridSample");
    ASSERT_NE(n, nullptr) << mode;
    EXPECT_EQ(n->attrs.Str("mode"), ir_mode);
    EXPECT_EQ(n->attrs.Str("padding_mode"), "zeros");
    EXPECT_FALSE(n->attrs.Bool("align_corners"));
  }
  // The default mode is bilinear / linear: the centre of [[1, 2], [3, 4]] is 2.5.
  ModelMaker m(16);
  m.Input("x", kF32, {1, 1, 2, 2}).Input("grid", kF32, {1, 1, 1, 2});
  m.Node("GridSample", {"x", "grid"});
  EXPECT_EQ(Values(Execute(m.Import(), {F32({1, 1, 2, 2}, {1, 2, 3, 4}), F32({1, 1, 1, 2}, {0, 0})})[0]),
            (std::vector<double>{2.5}));
}

TEST(OnnxVisionImport, GridSampleVolumesFromOpset20) {
  ModelMaker m(20);
  m.Input("x", kF32, {1, 1, 2, 2, 2}).Input("grid", kF32, {1, 1, 1, 1, 3});
  Attr(m.Node("GridSample", {"x", "grid"}), "align_corners", int64_t{1});
  // (1, -1, -1) with align_corners: x = 1, y = 0, z = 0: element 1.
  EXPECT_EQ(Values(Execute(m.Import(), {Iota({1, 1, 2, 2, 2}), F32({1, 1, 1, 1, 3}, {1, -1, -1})})[0]),
            (std::vector<double>{1}));
}

TEST(OnnxVisionImport, GridSampleErrors) {
  auto import = [](int64_t opset, const std::string& attr, const std::string& value,
                   std::vector<onnxtest::Dim> xdims = {1, 1, 2, 2}) {
    ModelMaker m(opset);
    std::vector<onnxtest::Dim> gdims = {1};
    for (size_t i = 2; i < xdims.size(); ++i) gdims.push_back(1);
    gdims.push_back(static_cast<int64_t>(xdims.size()) - 2);
    m.Input("x", kF32, xdims).Input("grid", kF32, gdims);
    onnx::NodeProto& n = m.Node("GridSample", {"x", "grid"});
    if (!attr.empty()) Attr(n, attr, value);
    m.Import();
  };
  ExpectErrorMessage([&] { import(16, "mode", "linear"); },
                     {"node 'GridSample_0' (GridSample)", "mode 'linear' is not one of bilinear, nearest, bicubic"});
  ExpectErrorMessage([&] { import(20, "mode", "bilinear"); }, {"mode 'bilinear' is not one of linear, nearest, cubic"});
  ExpectErrorMessage([&] { import(16, "padding_mode", "wrap"); },
                     {"padding_mode 'wrap' is not one of zeros, border, reflection"});
  ExpectErrorMessage([&] { import(16, "", "", {1, 1, 2, 2, 2}); }, {"X must be 4-D (N, C, H, W) before opset 20"});
  ExpectErrorMessage(
      [&] {
        import(20, "", "", {1, 1, 1, 1, 1, 1, 1, 1});
      },
      {"6 spatial dims are not supported (1 to 5)"});
  ModelMaker m(16);
  m.Input("x", kF32, {1, 1, 2, 2}).Input("grid", kF32, {1, 1, 1, 2});
  Attr(m.Node("GridSample", {"x", "grid"}), "align_corners", int64_t{2});
  ExpectErrorMessage([&] { m.Import(); }, {"align_corners must be 0 or 1, got 2"});
}

// ---- RoiAlign ----

TEST(OnnxVisionImport, RoiAlignCoordinatesByOpset) {
  // Opset 10 has no pixel shift (output_half_pixel); 16 defaults to half_pixel. On the ramp
  // 4y + x the roi [0, 0, 2, 2] averages to 5 and 2.5.
  for (const auto& [opset, want] : std::vector<std::pair<int64_t, double>>{{10, 5.0}, {16, 2.5}}) {
    ModelMaker m(opset);
    m.Input("x", kF32, {1, 1, 4, 4}).Input("rois", kF32, {1, 4}).Input("batch", kI64, {1});
    Attr(m.Node("RoiAlign", {"x", "rois", "batch"}), "sampling_ratio", int64_t{2});
    const auto y = Execute(m.Import(), {Iota({1, 1, 4, 4}), F32({1, 4}, {0, 0, 2, 2}), I64({1}, {0})})[0];
    EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 1}));
    EXPECT_NEAR(y.data<float>()[0], want, 1e-6) << opset;
  }
}

TEST(OnnxVisionImport, RoiAlignErrors) {
  auto import = [](int64_t opset, const std::string& attr, const std::string& value, int32_t batch_type = kI64) {
    ModelMaker m(opset);
    m.Input("x", kF32, {1, 1, 4, 4}).Input("rois", kF32, {1, 4}).Input("batch", batch_type, {1});
    onnx::NodeProto& n = m.Node("RoiAlign", {"x", "rois", "batch"});
    if (!attr.empty()) Attr(n, attr, value);
    m.Import();
  };
  ExpectErrorMessage(
      [&] { import(10, "coordinate_transformation_mode", "half_pixel"); },
      {"node 'RoiAlign_0' (RoiAlign)", "coordinate_transformation_mode is an attribute from opset 16 on"});
  ExpectErrorMessage([&] { import(16, "coordinate_transformation_mode", "align_corners"); },
                     {"coordinate_transformation_mode 'align_corners' is not one of half_pixel, output_half_pixel"});
  ExpectErrorMessage([&] { import(16, "mode", "sum"); }, {"mode 'sum' is not one of avg, max"});
  ExpectErrorMessage([&] { import(16, "", "", kI32); }, {"batch_indices must be int64, got int32"});
  ModelMaker m(16);
  m.Input("x", kF32, {1, 1, 4, 4}).Input("rois", kF32, {1, 4}).Input("batch", kI64, {1});
  Attr(m.Node("RoiAlign", {"x", "rois", "batch"}), "output_height", int64_t{0});
  ExpectErrorMessage([&] { m.Import(); }, {"output_height and output_width must be positive"});
  ModelMaker s(16);
  s.Input("x", kF32, {1, 1, 4, 4}).Input("rois", kF32, {1, 4}).Input("batch", kI64, {1});
  Attr(s.Node("RoiAlign", {"x", "rois", "batch"}), "spatial_scale", INFINITY);
  ExpectErrorMessage([&] { s.Import(); }, {"spatial_scale must be finite, got inf"});
}

// ---- MaxPool with Indices and dilations ----

TEST(OnnxVisionImport, MaxPoolIndicesAndDilations) {
  // Indices over the whole input (batch and channel included), row- or column-major.
  for (int64_t order : {0, 1}) {
    ModelMaker m(12);
    m.Input("x", kF32, {2, 1, 2, 2});
    onnx::NodeProto& n = m.Node("MaxPool", {"x"}, {"y", "i"});
    Attr(n, "kernel_shape", std::vector<int64_t>{2, 1});
    Attr(n, "storage_order", order);
    const auto g = m.Import({"y", "i"});
    ASSERT_NE(FindOp(*g, "MaxPoolWithArgmax"), nullptr);
    const auto out = Execute(g, {Iota({2, 1, 2, 2})});
    EXPECT_EQ(Values(out[0]), (std::vector<double>{2, 3, 6, 7}));
    // Row 1 of each image: (1, 0) and (1, 1); column-major (1, 0) is 1, (1, 1) is 3.
    EXPECT_EQ(testutil::Ints(out[1]),
              order == 0 ? (std::vector<int64_t>{2, 3, 6, 7}) : (std::vector<int64_t>{1, 3, 5, 7}));
  }
  // Dilations without the Indices output also use MaxPoolWithArgmax (the IR MaxPool has none).
  ModelMaker m(12);
  m.Input("x", kF32, {1, 1, 4, 4});
  onnx::NodeProto& n = m.Node("MaxPool", {"x"});
  Attr(n, "kernel_shape", std::vector<int64_t>{2, 2});
  Attr(n, "dilations", std::vector<int64_t>{2, 2});
  const auto g = m.Import();
  EXPECT_EQ(FindOp(*g, "MaxPool"), nullptr);
  EXPECT_EQ(Values(Execute(g, {Iota({1, 1, 4, 4})})[0]), (std::vector<double>{10, 11, 14, 15}));
  // Without either, the IR MaxPool as before.
  ModelMaker plain(12);
  plain.Input("x", kF32, {1, 1, 4, 4});
  Attr(plain.Node("MaxPool", {"x"}), "kernel_shape", std::vector<int64_t>{2, 2});
  EXPECT_NE(FindOp(*plain.Import(), "MaxPool"), nullptr);
}

TEST(OnnxVisionImport, MaxPoolDilatedCeilMode) {
  // 6 wide, kernel 2 dilated by 2 (span 3), stride 2, ceil_mode: windows {0, 2}, {2, 4} and
  // {4, 6}, whose second tap is past the end.
  ModelMaker m(12);
  m.Input("x", kF32, {1, 1, 1, 6});
  onnx::NodeProto& n = m.Node("MaxPool", {"x"}, {"y", "i"});
  Attr(n, "kernel_shape", std::vector<int64_t>{1, 2});
  Attr(n, "dilations", std::vector<int64_t>{1, 2});
  Attr(n, "strides", std::vector<int64_t>{1, 2});
  Attr(n, "ceil_mode", int64_t{1});
  const auto out = Execute(m.Import({"y", "i"}), {F32({1, 1, 1, 6}, {3, 1, 4, 1, 5, 9})});
  EXPECT_EQ(Values(out[0]), (std::vector<double>{4, 5, 5}));
  EXPECT_EQ(testutil::Ints(out[1]), (std::vector<int64_t>{2, 4, 4}));
}

TEST(OnnxVisionImport, MaxPoolErrors) {
  ModelMaker m(12);
  m.Input("x", kF32, {1, 1, 4, 4});
  onnx::NodeProto& n = m.Node("MaxPool", {"x"}, {"y", "i"});
  Attr(n, "kernel_shape", std::vector<int64_t>{2, 2});
  Attr(n, "storage_order", int64_t{2});
  ExpectErrorMessage(
      [&] {
        m.Import({"y", "i"});
      },
      {"node 'MaxPool_0' (MaxPool)", "storage_order must be 0 (row-major) or 1 (column-major), got 2"});
  ModelMaker big(12);
  big.Input("x", kF32, {1, 1, 4, 4});
  onnx::NodeProto& b = big.Node("MaxPool", {"x"});
  Attr(b, "kernel_shape", std::vector<int64_t>{int64_t{1} << 40, 2});
  Attr(b, "dilations", std::vector<int64_t>{int64_t{1} << 40, 1});
  ExpectErrorMessage([&] { big.Import(); }, {"spans more than 2^60 elements"});
}

// ---- MaxUnpool ----

TEST(OnnxVisionImport, MaxUnpoolScattersIntoTheInferredShape) {
  // A 2x2 pool of a 4x4 input; indices over the 4x4; output_shape 5x5 appends zeros.
  for (bool with_shape : {false, true}) {
    ModelMaker m(11);
    m.Input("x", kF32, {1, 1, 2, 2}).Input("i", kI64, {1, 1, 2, 2});
    std::vector<std::string> inputs = {"x", "i"};
    if (with_shape) {
      m.Int64s("shape", {4}, {1, 1, 5, 5});
      inputs.push_back("shape");
    }
    onnx::NodeProto& n = m.Node("MaxUnpool", inputs);
    Attr(n, "kernel_shape", std::vector<int64_t>{2, 2});
    Attr(n, "strides", std::vector<int64_t>{2, 2});
    const auto g = m.Import();
    ASSERT_NE(FindOp(*g, "TensorScatter"), nullptr);
    const Tensor y = Execute(g, {F32({1, 1, 2, 2}, {5, 6, 7, 8}), I64({1, 1, 2, 2}, {5, 7, 13, 15})})[0];
    const int64_t w = with_shape ? 5 : 4;
    EXPECT_EQ(y.shape(), (Shape{1, 1, w, w}));
    std::vector<double> want(static_cast<size_t>(w * w), 0);
    want[static_cast<size_t>(1 * w + 1)] = 5;
    want[static_cast<size_t>(1 * w + 3)] = 6;
    want[static_cast<size_t>(3 * w + 1)] = 7;
    want[static_cast<size_t>(3 * w + 3)] = 8;
    EXPECT_EQ(Values(y), want) << with_shape;
  }
}

TEST(OnnxVisionImport, MaxUnpoolErrors) {
  auto model = [](std::vector<int64_t> kernel, std::vector<int64_t> out_shape) {
    auto m = std::make_unique<ModelMaker>(11);
    m->Input("x", kF32, {1, 1, 2, 2}).Input("i", kI64, {1, 1, 2, 2});
    std::vector<std::string> inputs = {"x", "i"};
    if (!out_shape.empty()) {
      m->Int64s("shape", {static_cast<int64_t>(out_shape.size())}, out_shape);
      inputs.push_back("shape");
    }
    onnx::NodeProto& n = m->Node("MaxUnpool", inputs);
    Attr(n, "kernel_shape", kernel);
    Attr(n, "strides", std::vector<int64_t>{2, 2});
    return m->Import();
  };
  ExpectErrorMessage(
      [&] {
        model({int64_t{1} << 30, 2}, {});
      },
      {"node 'MaxUnpool_0' (MaxUnpool)", "above 2^20 are not supported"});
  // An index outside the inferred 4x4 output, and an output_shape smaller than it, fail at run time.
  const auto g = model({2, 2}, {});
  ExpectErrorMessage(
      [&] {
        Execute(g, {F32({1, 1, 2, 2}, {1, 2, 3, 4}), I64({1, 1, 2, 2}, {0, 1, 2, 16})});
      },
      {"does not index into tensor shape [16]"});
  const auto small = model({2, 2}, {1, 1, 3, 3});
  EXPECT_THROW(Execute(small, {F32({1, 1, 2, 2}, {1, 2, 3, 4}), I64({1, 1, 2, 2}, {0, 1, 2, 3})}), Error);
}

// ---- Unique ----

TEST(OnnxVisionImport, UniqueOutputsInOnnxOrder) {
  ModelMaker m(11);
  m.Input("x", kF32, {6});
  Attr(m.Node("Unique", {"x"}, {"y", "indices", "inverse", "counts"}), "sorted", int64_t{0});
  const auto out = Execute(m.Import({"y", "indices", "inverse", "counts"}), {F32({6}, {2, 1, 1, 3, 4, 3})});
  EXPECT_EQ(Values(out[0]), (std::vector<double>{2, 1, 3, 4}));
  EXPECT_EQ(testutil::Ints(out[1]), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(testutil::Ints(out[2]), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(testutil::Ints(out[3]), (std::vector<int64_t>{1, 2, 2, 1}));
  // Only Y declared; a negative axis; sorted by default.
  ModelMaker a(11);
  a.Input("x", kF32, {3, 2});
  Attr(a.Node("Unique", {"x"}), "axis", int64_t{-2});
  EXPECT_EQ(Values(Execute(a.Import(), {F32({3, 2}, {2, 0, 1, 5, 2, 0})})[0]), (std::vector<double>{1, 5, 2, 0}));
}

TEST(OnnxVisionImport, UniqueErrors) {
  ModelMaker m(11);
  m.Input("x", kF32, {6});
  Attr(m.Node("Unique", {"x"}), "sorted", int64_t{2});
  ExpectErrorMessage([&] { m.Import(); }, {"node 'Unique_0' (Unique)", "sorted must be 0 or 1, got 2"});
  ModelMaker a(11);
  a.Input("x", kF32, {6});
  Attr(a.Node("Unique", {"x"}), "axis", int64_t{1});
  ExpectErrorMessage([&] { a.Import(); }, {"axis 1 is out of range [-1, 1) for rank 1"});
}

// ---- ScatterND / ScatterElements reductions ----

TEST(OnnxVisionImport, ScatterReductions) {
  for (const auto& [red, want] : std::vector<std::pair<std::string, std::vector<double>>>{
           {"mul", {1, 40, 3, 4}}, {"min", {1, 2, 3, 4}}, {"max", {1, 10, 3, 4}}}) {
    ModelMaker m(18);
    m.Input("data", kF32, {4}).Input("updates", kF32, {2}).Int64s("indices", {2, 1}, {1, -3});
    Attr(m.Node("ScatterND", {"data", "indices", "updates"}), "reduction", red);
    const auto g = m.Import();
    ASSERT_NE(FindOp(*g, "TensorScatter"), nullptr);
    EXPECT_EQ(Values(Execute(g, {F32({4}, {1, 2, 3, 4}), F32({2}, {10, 2})})[0]), want) << red;
  }
  // ScatterElements shares the reductions: max along axis 1.
  ModelMaker m(18);
  m.Input("data", kF32, {2, 2}).Input("updates", kF32, {2, 1}).Int64s("indices", {2, 1}, {1, 0});
  onnx::NodeProto& n = m.Node("ScatterElements", {"data", "indices", "updates"});
  Attr(n, "reduction", std::string("max"));
  Attr(n, "axis", int64_t{1});
  EXPECT_EQ(Values(Execute(m.Import(), {F32({2, 2}, {1, 2, 3, 4}), F32({2, 1}, {9, 0})})[0]),
            (std::vector<double>{1, 9, 3, 4}));
  ModelMaker bad(18);
  bad.Input("data", kF32, {4}).Input("updates", kF32, {2}).Int64s("indices", {2, 1}, {1, 0});
  Attr(bad.Node("ScatterND", {"data", "indices", "updates"}), "reduction", std::string("sub"));
  ExpectErrorMessage([&] { bad.Import(); },
                     {"node 'ScatterND_0' (ScatterND)", "reduction 'sub' is not one of none, add, mul, min, max"});
}

// ---- MeanVarianceNormalization ----

TEST(OnnxVisionImport, MeanVarianceNormalization) {
  // Over axis 1 of [[1, 3], [2, 2]]: (x - 2) / (1 + 1e-9) and 0 / (0 + 1e-9).
  ModelMaker m(13);
  m.Input("x", kF32, {2, 2});
  Attr(m.Node("MeanVarianceNormalization", {"x"}), "axes", std::vector<int64_t>{-1});
  const std::vector<double> y = Values(Execute(m.Import(), {F32({2, 2}, {1, 3, 2, 2})})[0]);
  EXPECT_NEAR(y[0], -1, 1e-6);
  EXPECT_NEAR(y[1], 1, 1e-6);
  EXPECT_EQ(y[2], 0);
  EXPECT_EQ(y[3], 0);
  ModelMaker bad(9);
  bad.Input("x", kF32, {2, 2});
  bad.Node("MeanVarianceNormalization", {"x"});  // default axes [0, 2, 3] need rank 4
  ExpectErrorMessage([&] { bad.Import(); },
                     {"node 'MeanVarianceNormalization_0' (MeanVarianceNormalization)", "axis 2 is out of range"});
}

// ---- Opset-1 forms: ConvTranspose, ReduceLogSum ----

TEST(OnnxVisionImport, ConvTransposeBeforeOpset11SplitsOddPaddingTheOtherWay) {
  // x [1,1,1,2] = [1, 2], w = [1, 1] (1x2 kernel), stride 1: the full result is [1, 3, 2];
  // output_shape 2 leaves a total padding of 1: at the start from opset 11 ([3, 2]), at the
  // end before it ([1, 3]).
  for (const auto& [opset, want] : std::vector<std::pair<int64_t, std::vector<double>>>{{8, {1, 3}}, {11, {3, 2}}}) {
    ModelMaker m(opset);
    m.Input("x", kF32, {1, 1, 1, 2}).Input("w", kF32, {1, 1, 1, 2});
    onnx::NodeProto& n = m.Node("ConvTranspose", {"x", "w"});
    Attr(n, "output_shape", std::vector<int64_t>{1, 2});
    EXPECT_EQ(Values(Execute(m.Import(), {F32({1, 1, 1, 2}, {1, 2}), F32({1, 1, 1, 2}, {1, 1})})[0]), want) << opset;
  }
  // SAME with strides > 1 meant something else in ConvTranspose-1: refused.
  ModelMaker m(8);
  m.Input("x", kF32, {1, 1, 1, 2}).Input("w", kF32, {1, 1, 1, 2});
  onnx::NodeProto& n = m.Node("ConvTranspose", {"x", "w"});
  Attr(n, "auto_pad", std::string("SAME_UPPER"));
  Attr(n, "strides", std::vector<int64_t>{1, 2});
  ExpectErrorMessage([&] { m.Import(); },
                     {"node 'ConvTranspose_0' (ConvTranspose)", "ConvTranspose-1 defines SAME ambiguously"});
}

TEST(OnnxVisionImport, ReduceLogSumFromOpset1) {
  ModelMaker m(6);
  m.Input("x", kF32, {2, 2});
  onnx::NodeProto& n = m.Node("ReduceLogSum", {"x"});
  Attr(n, "axes", std::vector<int64_t>{1});
  Attr(n, "keepdims", int64_t{0});
  const std::vector<double> y = Values(Execute(m.Import(), {F32({2, 2}, {1, 2, 3, 4})})[0]);
  ASSERT_EQ(y.size(), 2u);
  EXPECT_NEAR(y[0], std::log(3.0), 1e-6);
  EXPECT_NEAR(y[1], std::log(7.0), 1e-6);
}

}  // namespace
}  // namespace kiln::onnxfe
