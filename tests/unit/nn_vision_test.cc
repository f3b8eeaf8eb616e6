// Reference kernels and shape functions of GridSample, RoiAlign and MaxPoolWithArgmax on small
// inputs worked out by hand (bilinear interpolation of a linear ramp is exact, Keys' cubic weights
// at t = 0.5 are -3/32, 19/32, 19/32, -3/32), and their errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ir/ops/vision_util.h"
#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using nntest::Attrs;
using nntest::ExpectNear;
using nntest::F32;
using nntest::OneNode;
using nntest::RunOp;
using testutil::ExpectErrorMessage;

ir::AttrMap GridAttrs(const std::string& mode, const std::string& padding, bool align) {
  return Attrs({{"mode", mode}, {"padding_mode", padding}, {"align_corners", align}});
}

// ---- GridSample ----

TEST(GridSample, LinearOneDimAlignCorners) {
  // x = (n + 1) / 2 * (4 - 1): n = -1, 0, 1, -0.5 sample at 0, 1.5, 3, 0.75.
  const auto out = RunOp("GridSample", {F32({1, 1, 4}, {1, 2, 4, 8}), F32({1, 4, 1}, {-1, 0, 1, -0.5f})},
                         GridAttrs("linear", "zeros", true));
  ExpectNear(out[0], {1, 3, 8, 1.75});
}

TEST(GridSample, BilinearPaddingModesAtTheCorner) {
  // [[1, 2], [3, 4]] sampled at its centre (0.5, 0.5) and at the outer corner (-0.5, -0.5)
  // (align_corners = 0): zeros reads a quarter of the corner pixel, border and reflection all of it.
  const Tensor x = F32({1, 1, 2, 2}, {1, 2, 3, 4});
  const Tensor grid = F32({1, 1, 2, 2}, {0, 0, -1, -1});
  ExpectNear(RunOp("GridSample", {x, grid}, GridAttrs("linear", "zeros", false))[0], {2.5, 0.25});
  ExpectNear(RunOp("GridSample", {x, grid}, GridAttrs("linear", "border", false))[0], {2.5, 1});
  ExpectNear(RunOp("GridSample", {x, grid}, GridAttrs("linear", "reflection", false))[0], {2.5, 1});
  // Far outside: zeros gives 0; border the nearest corner; reflection folds back (x = -3.5 and
  // y = 2.5 of [-0.5, 1.5] reflect to 0.5 and 0.5).
  const Tensor far = F32({1, 1, 1, 2}, {-4, 2});
  ExpectNear(RunOp("GridSample", {x, far}, GridAttrs("linear", "zeros", false))[0], {0});
  ExpectNear(RunOp("GridSample", {x, far}, GridAttrs("linear", "border", false))[0], {3});
  ExpectNear(RunOp("GridSample", {x, far}, GridAttrs("linear", "reflection", false))[0], {2.5});
}

TEST(GridSample, TheGridListsTheInnermostDimFirst) {
  // grid (x = 1, y = -1) with align_corners = 1 is column 1 of row 0.
  const auto out = RunOp("GridSample", {F32({1, 1, 2, 2}, {1, 2, 3, 4}), F32({1, 1, 1, 2}, {1, -1})},
                         GridAttrs("nearest", "zeros", true));
  ExpectNear(out[0], {2});
}

TEST(GridSample, NearestRoundsHalfToEven) {
  // H = 1 (every y is row 0); x = 2n + 2: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4.
  const auto out =
      RunOp("GridSample",
            {F32({1, 1, 1, 5}, {10, 20, 30, 40, 50}), F32({1, 1, 4, 2}, {-0.75f, 0, -0.25f, 0, 0.25f, 0, 0.75f, 0})},
            GridAttrs("nearest", "zeros", true));
  ExpectNear(out[0], {10, 30, 30, 50});
}

TEST(GridSample, CubicUsesKeysWeights) {
  // Coordinate 0.5 of [1, 2, 4, 8]: taps -1, 0, 1, 2 with weights -3/32, 19/32, 19/32, -3/32.
  const Tensor x = F32({1, 1, 4}, {1, 2, 4, 8});
  const Tensor grid = F32({1, 1, 1}, {-2.0f / 3});
  ExpectNear(RunOp("GridSample", {x, grid}, GridAttrs("cubic", "border", true))[0], {1.3125});
  ExpectNear(RunOp("GridSample", {x, grid}, GridAttrs("cubic", "zeros", true))[0], {1.40625});
}

TEST(GridSample, ThreeSpatialDimsAndBatches) {
  // The centre of a 2x2x2 ramp (0..7) is its mean; batch 1 adds 10.
  std::vector<float> v;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 8; ++i) v.push_back(static_cast<float>(10 * b + i));
  const auto out = RunOp("GridSample", {F32({2, 1, 2, 2, 2}, v), F32({2, 1, 1, 1, 3}, {0, 0, 0, 1, 1, 1})},
                         GridAttrs("linear", "zeros", false));
  EXPECT_EQ(out[0].shape(), (Shape{2, 1, 1, 1, 1}));
  // Batch 1 samples (1.5, 1.5, 1.5): only the tap at (1, 1, 1) is inside, weight 1/8.
  ExpectNear(out[0], {3.5, 17.0 / 8});
}

TEST(GridSample, IntegerInputsTruncateAndSaturate) {
  // Halfway between 0 and 255 is 127.5: truncated to 127. Cubic overshoots next to a step and
  // saturates.
  const Tensor x = Tensor::FromVector<uint8_t>(DType::kUInt8, {1, 1, 2}, {0, 255});
  const auto out = RunOp("GridSample", {x, F32({1, 1, 1}, {0})}, GridAttrs("linear", "border", true));
  EXPECT_EQ(out[0].dtype(), DType::kUInt8);
  EXPECT_EQ(out[0].data<uint8_t>()[0], 127);
  // At 0.8 and 2.2 of [-128, -128, 127, 127] cubic gives -152.48 and 151.48.
  const Tensor step = Tensor::FromVector<int8_t>(DType::kInt8, {1, 1, 4}, {-128, -128, 127, 127});
  const auto c =
      RunOp("GridSample", {step, F32({1, 2, 1}, {-7.0f / 15, 7.0f / 15})}, GridAttrs("cubic", "border", true));
  EXPECT_EQ(c[0].data<int8_t>()[0], -128);  // undershoots and saturates
  EXPECT_EQ(c[0].data<int8_t>()[1], 127);   // overshoots and saturates
}

TEST(GridSample, NanCoordinatesGiveNan) {
  const auto out = RunOp("GridSample", {F32({1, 1, 2}, {1, 2}), F32({1, 2, 1}, {std::nanf(""), 0})},
                         GridAttrs("linear", "reflection", false));
  EXPECT_TRUE(std::isnan(out[0].data<float>()[0]));
  EXPECT_FLOAT_EQ(out[0].data<float>()[1], 1.5f);
}

TEST(GridSample, HugeAndInfiniteCoordinatesStayInBounds) {
  // Far outside in every padding mode: zeros reads nothing, border the ends, reflection folds
  // 1e30 back inside (the infinities have no reflection: NaN).
  const Tensor x = F32({1, 1, 3}, {1, 2, 4});
  const Tensor grid = F32({1, 3, 1}, {1e30f, -INFINITY, INFINITY});
  for (const char* mode : {"linear", "nearest", "cubic"}) {
    ExpectNear(RunOp("GridSample", {x, grid}, GridAttrs(mode, "zeros", false))[0], {0, 0, 0});
    ExpectNear(RunOp("GridSample", {x, grid}, GridAttrs(mode, "border", false))[0], {4, 1, 4});
    const auto r = RunOp("GridSample", {x, grid}, GridAttrs(mode, "reflection", true));
    const float folded = r[0].data<float>()[0];
    EXPECT_TRUE(folded >= 1 && folded <= 4) << mode << " " << folded;
    EXPECT_TRUE(std::isnan(r[0].data<float>()[1])) << mode;
  }
}

TEST(GridSample, ReflectionFollowsTheSpecExample) {
  // "x = -3.5 reflects by border -1 and becomes 1.5, then reflects by border 1 and becomes 0.5".
  EXPECT_DOUBLE_EQ(ir::vision::GridReflect(-3.5, -1, 1), 0.5);
  EXPECT_DOUBLE_EQ(ir::vision::GridReflect(3.5, -1, 1), -0.5);
  EXPECT_DOUBLE_EQ(ir::vision::GridReflect(0.25, -1, 1), 0.25);
  EXPECT_DOUBLE_EQ(ir::vision::GridReflect(5, 0, 0), 0);  // a one-pixel axis with align_corners
}

TEST(GridSample, Errors) {
  const Tensor x = F32({1, 1, 2, 2}, {1, 2, 3, 4});
  ExpectErrorMessage(
      [&] {
        OneNode("GridSample", {x, F32({1, 1, 1, 2}, {0, 0})}, GridAttrs("bilinear", "zeros", false));
      },
      {"node 'node' (GridSample)", "mode 'bilinear' is not one of linear, nearest, cubic"});
  ExpectErrorMessage(
      [&] {
        OneNode("GridSample", {x, F32({1, 1, 1, 2}, {0, 0})}, GridAttrs("linear", "wrap", false));
      },
      {"padding_mode 'wrap' is not one of zeros, border, reflection"});
  ExpectErrorMessage(
      [&] {
        OneNode("GridSample", {x, F32({1, 1, 1, 3}, {0, 0, 0})}, GridAttrs("linear", "zeros", false));
      },
      {"the last dim of grid must be the number of spatial dims 2"});
  ExpectErrorMessage(
      [&] {
        OneNode("GridSample", {x, F32({2, 1, 1, 2}, {0, 0, 0, 0})}, GridAttrs("linear", "zeros", false));
      },
      {"the batch sizes of X and grid"});
  const Tensor x6 = F32({1, 1, 1, 1, 1, 1, 1, 1}, {1});
  ExpectErrorMessage(
      [&] {
        OneNode("GridSample", {x6, F32({1, 1, 1, 1, 1, 1, 1, 6}, {0, 0, 0, 0, 0, 0})},
                GridAttrs("linear", "zeros", false));
      },
      {"6 spatial dims are not supported (1 to 5)"});
  // An empty input axis has nothing to clamp or reflect to.
  OneNode empty("GridSample", {F32({1, 1, 0, 2}, {}), F32({1, 1, 1, 2}, {0, 0})}, GridAttrs("linear", "border", false));
  ExpectErrorMessage(
      [&] {
        empty.Run({F32({1, 1, 0, 2}, {}), F32({1, 1, 1, 2}, {0, 0})});
      },
      {"has an empty spatial dim"});
}

// ---- RoiAlign ----

ir::AttrMap RoiAttrs(const std::string& mode, const std::string& coord, int64_t oh, int64_t ow, int64_t ratio,
                     double scale = 1.0) {
  return Attrs({{"mode", mode},
                {"coordinate_transformation_mode", coord},
                {"output_height", oh},
                {"output_width", ow},
                {"sampling_ratio", ratio},
                {"spatial_scale", scale}});
}

// Two 4x4 images: v(y, x) = 4y + x, and the same plus 100.
Tensor Ramps() {
  std::vector<float> v;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 16; ++i) v.push_back(static_cast<float>(100 * b + i));
  return F32({2, 1, 4, 4}, v);
}

Tensor Batch(const std::vector<int64_t>& v) {
  return Tensor::FromVector<int64_t>(DType::kInt64, {static_cast<int64_t>(v.size())}, v);
}

TEST(RoiAlign, AveragesBilinearSamples) {
  // Roi [0, 0, 2, 2], 2x2 samples per bin: at 0.5 and 1.5 (output_half_pixel), 0 and 1
  // (half_pixel: shifted by -0.5); bilinear samples of the ramp are exact. Roi 1 reads image 1.
  const Tensor rois = F32({2, 4}, {0, 0, 2, 2, 0, 0, 2, 2});
  const Tensor batch = Batch({0, 1});
  ExpectNear(RunOp("RoiAlign", {Ramps(), rois, batch}, RoiAttrs("avg", "output_half_pixel", 1, 1, 2))[0], {5, 105});
  ExpectNear(RunOp("RoiAlign", {Ramps(), rois, batch}, RoiAttrs("avg", "half_pixel", 1, 1, 2))[0], {2.5, 102.5});
  // Adaptive sampling: ceil(2 / 1) = 2 points per axis, the same.
  ExpectNear(RunOp("RoiAlign", {Ramps(), rois, batch}, RoiAttrs("avg", "output_half_pixel", 1, 1, 0))[0], {5, 105});
  // 2x2 bins of one sample each (at 0.5, 1.5): the ramp at those points.
  ExpectNear(RunOp("RoiAlign", {Ramps(), F32({1, 4}, {0, 0, 2, 2}), Batch({0})},
                   RoiAttrs("avg", "output_half_pixel", 2, 2, 1))[0],
             {2.5, 3.5, 6.5, 7.5});
  // spatial_scale 0.5 maps [0, 0, 4, 4] onto [0, 0, 2, 2].
  ExpectNear(RunOp("RoiAlign", {Ramps(), F32({1, 4}, {0, 0, 4, 4}), Batch({0})},
                   RoiAttrs("avg", "output_half_pixel", 1, 1, 2, 0.5))[0],
             {5});
}

TEST(RoiAlign, MaxTakesTheLargestWeightedCorner) {
  // ONNX's reference and onnxruntime: per sample the largest of w_i * v_i over the four
  // corners, then the max over the samples: the sample at (1.5, 1.5) has corners 5, 6, 9, 10
  // with weights 1/4: 2.5.
  ExpectNear(RunOp("RoiAlign", {Ramps(), F32({1, 4}, {0, 0, 2, 2}), Batch({0})},
                   RoiAttrs("max", "output_half_pixel", 1, 1, 2))[0],
             {2.5});
}

TEST(RoiAlign, SamplesPastTheFeatureMapCountAsZero) {
  // Roi [2, 2, 6, 6]: samples at 3 and 5; 5 > H = 4 is outside (0), 3 is the last row / column.
  ExpectNear(RunOp("RoiAlign", {Ramps(), F32({1, 4}, {2, 2, 6, 6}), Batch({0})},
                   RoiAttrs("avg", "output_half_pixel", 1, 1, 2))[0],
             {15.0 / 4});
  // An inverted roi with half_pixel samples nothing: 0.
  ExpectNear(
      RunOp("RoiAlign", {Ramps(), F32({1, 4}, {2, 2, 1, 1}), Batch({0})}, RoiAttrs("avg", "half_pixel", 1, 1, 0))[0],
      {0});
}

TEST(RoiAlign, Errors) {
  const Tensor rois = F32({1, 4}, {0, 0, 2, 2});
  ExpectErrorMessage(
      [&] {
        OneNode("RoiAlign", {Ramps(), rois, Batch({0})}, RoiAttrs("sum", "half_pixel", 1, 1, 0));
      },
      {"node 'node' (RoiAlign)", "mode 'sum' is not one of avg, max"});
  ExpectErrorMessage(
      [&] {
        OneNode("RoiAlign", {Ramps(), rois, Batch({0})}, RoiAttrs("avg", "asymmetric", 1, 1, 0));
      },
      {"coordinate_transformation_mode 'asymmetric' is not one of half_pixel, output_half_pixel"});
  ExpectErrorMessage(
      [&] {
        OneNode("RoiAlign", {Ramps(), rois, Batch({0})}, RoiAttrs("avg", "half_pixel", 0, 1, 0));
      },
      {"output_height and output_width must be positive"});
  ExpectErrorMessage(
      [&] {
        OneNode("RoiAlign", {Ramps(), rois, Batch({0, 0})}, RoiAttrs("avg", "half_pixel", 1, 1, 0));
      },
      {"the number of rois and of batch_indices"});
  ExpectErrorMessage(
      [&] {
        RunOp("RoiAlign", {Ramps(), rois, Batch({2})}, RoiAttrs("avg", "half_pixel", 1, 1, 0));
      },
      {"batch_indices[0] = 2 is out of range [0, 2)"});
  ExpectErrorMessage(
      [&] {
        RunOp("RoiAlign", {Ramps(), F32({1, 4}, {0, 0, INFINITY, 2}), Batch({0})},
              RoiAttrs("avg", "half_pixel", 1, 1, 0));
      },
      {"roi 0 has a non-finite coordinate"});
  // A roi of 1e30 pixels would need 1e60 sampling points: refused before anything is allocated.
  testutil::ExpectError(
      [&] {
        RunOp("RoiAlign", {Ramps(), F32({1, 4}, {0, 0, 1e30f, 1e30f}), Batch({0})},
              RoiAttrs("avg", "half_pixel", 1, 1, 0));
      },
      ErrorCode::kResourceExhausted, {"roi 0 needs", "sampling points"});
}

// ---- MaxPoolWithArgmax ----

ir::AttrMap ArgmaxAttrs(const std::string& format, std::vector<int64_t> ksize, std::vector<int64_t> strides,
                        std::vector<int64_t> dilations, int64_t storage_order = 0, const std::string& padding = "VALID",
                        std::vector<int64_t> pads = {}) {
  ir::AttrMap a = Attrs({{"data_format", format},
                         {"ksize", ksize},
                         {"strides", strides},
                         {"dilations", dilations},
                         {"padding", padding},
                         {"storage_order", storage_order},
                         {"Targmax", DType::kInt64}});
  if (!pads.empty()) a.Set("pads", pads);
  return a;
}

Tensor Iota(Shape shape, float start = 0) {
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}

TEST(MaxPoolWithArgmax, RowAndColumnMajorIndices) {
  // ONNX's maxpool_with_argmax_2d_precomputed_strides: 5x5 of 1..25, 2x2 windows, stride 2.
  const Tensor x = Iota({1, 1, 5, 5}, 1);
  const auto row = RunOp("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {2, 2}, {2, 2}, {1, 1}, 0), 2);
  ExpectNear(row[0], {7, 9, 17, 19});
  EXPECT_EQ(testutil::Ints(row[1]), (std::vector<int64_t>{6, 8, 16, 18}));
  const auto col = RunOp("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {2, 2}, {2, 2}, {1, 1}, 1), 2);
  EXPECT_EQ(testutil::Ints(col[1]), (std::vector<int64_t>{6, 16, 8, 18}));
}

TEST(MaxPoolWithArgmax, DilationsAndBatchOffsets) {
  // 4x4 of 0..15 (and 16..31 in channel 1), 2x2 windows dilated by 2, stride 1: the window at
  // (i, j) reads (i, j), (i, j + 2), (i + 2, j), (i + 2, j + 2); its max is (i + 2, j + 2).
  const Tensor x = Iota({1, 2, 4, 4});
  const auto out = RunOp("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {2, 2}, {1, 1}, {2, 2}), 2);
  ExpectNear(out[0], {10, 11, 14, 15, 26, 27, 30, 31});
  EXPECT_EQ(testutil::Ints(out[1]), (std::vector<int64_t>{10, 11, 14, 15, 26, 27, 30, 31}));
  // Channels-last (TensorFlow's MaxPoolWithArgmax): ((b * H + y) * W + x) * C + c, or without b.
  const Tensor nhwc = Iota({2, 2, 2, 1});
  const auto tf = RunOp("MaxPoolWithArgmax", {nhwc}, ArgmaxAttrs("NHWC", {2, 2}, {2, 2}, {1, 1}), 2);
  EXPECT_EQ(testutil::Ints(tf[1]), (std::vector<int64_t>{3, 7}));
  ir::AttrMap no_batch = ArgmaxAttrs("NHWC", {2, 2}, {2, 2}, {1, 1});
  no_batch.Set("include_batch_in_index", false);
  EXPECT_EQ(testutil::Ints(RunOp("MaxPoolWithArgmax", {nhwc}, no_batch, 2)[1]), (std::vector<int64_t>{3, 3}));
}

TEST(MaxPoolWithArgmax, FirstMaxWinsAndPaddingNever) {
  // Ties keep the first element; a window wholly in the padding gives -inf and index -1.
  const Tensor x = F32({1, 1, 1, 3}, {5, 5, -1});
  const auto out =
      RunOp("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {1, 2}, {1, 2}, {1, 1}, 0, "EXPLICIT", {0, 0, 0, 3}), 2);
  ASSERT_EQ(out[0].num_elements(), 3);
  EXPECT_EQ(out[0].data<float>()[0], 5);
  EXPECT_EQ(out[0].data<float>()[1], -1);
  EXPECT_EQ(out[0].data<float>()[2], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(testutil::Ints(out[1]), (std::vector<int64_t>{0, 2, -1}));
  // Integers, 1-D.
  const Tensor i8 = Tensor::FromVector<int8_t>(DType::kInt8, {1, 1, 4}, {-3, 7, 7, -128});
  const auto ints = RunOp("MaxPoolWithArgmax", {i8}, ArgmaxAttrs("NCW", {2}, {2}, {1}), 2);
  EXPECT_EQ(ints[0].data<int8_t>()[0], 7);
  EXPECT_EQ(ints[0].data<int8_t>()[1], 7);
  EXPECT_EQ(testutil::Ints(ints[1]), (std::vector<int64_t>{1, 2}));
}

TEST(MaxPoolWithArgmax, Errors) {
  const Tensor x = Iota({1, 1, 4, 4});
  ExpectErrorMessage(
      [&] {
        OneNode("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NHWC", {2, 2}, {1, 1}, {1, 1}, 1), 2);
      },
      {"node 'node' (MaxPoolWithArgmax)", "storage_order 1 (column-major indices) needs a channels-first"});
  ExpectErrorMessage(
      [&] {
        OneNode("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {2, 2}, {1, 1}, {1, 1}, 2), 2);
      },
      {"storage_order must be 0 (row-major) or 1 (column-major), got 2"});
  ExpectErrorMessage(
      [&] {
        OneNode("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {2, 2}, {1, 1}, {0, 1}), 2);
      },
      {"ksize, strides and dilations must be positive"});
  ExpectErrorMessage(
      [&] {
        OneNode("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {int64_t{1} << 40, 2}, {1, 1}, {int64_t{1} << 40, 1}), 2);
      },
      {"is too large"});
  ExpectErrorMessage(
      [&] {
        OneNode("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {2, 2}, {1, 1}, {1, 1}), 1);
      },
      {"expected 2 outputs (output, argmax)"});
  ExpectErrorMessage(
      [&] {
        OneNode("MaxPoolWithArgmax", {x}, ArgmaxAttrs("NCHW", {6, 2}, {1, 1}, {1, 1}), 2);
      },
      {"spatial dim 0", "negative"});
}

}  // namespace
}  // namespace kiln
