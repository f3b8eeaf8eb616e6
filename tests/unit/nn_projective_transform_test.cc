// ImageProjectiveTransform (TensorFlow's ImageProjectiveTransformV2/V3) on images small enough to
// work out by hand: a half-pixel shift blends neighbours, and each fill mode maps the coordinates
// past the edge its own way; integer images truncate the blend; errors. tests/python/test_tf_random.py
// compares every mode and dtype with TensorFlow.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using nntest::ExpectNear;
using nntest::F32;
using nntest::I32;
using nntest::RunOp;
using testutil::Attrs;
using testutil::ExpectErrorMessage;

ir::AttrMap Modes(const std::string& interpolation, const std::string& fill_mode) {
  return Attrs({{"interpolation", interpolation}, {"fill_mode", fill_mode}});
}

// One row [1, 2, 4] (N=1, H=1, W=3, C=1) sampled at x + dx, output 1x5.
std::vector<Tensor> Row(float dx, float fill) {
  return {F32({1, 1, 3, 1}, {1, 2, 4}), F32({1, 8}, {1, 0, dx, 0, 1, 0, 0, 0}), I32({2}, {1, 5}),
          Tensor::Scalar<float>(DType::kFloat32, fill)};
}

std::vector<Tensor> Transform(const std::vector<Tensor>& in, const ir::AttrMap& attrs) {
  return RunOp("ImageProjectiveTransform", in, attrs, 1, {2});
}

TEST(ImageProjectiveTransform, BilinearHalfPixelShiftPerFillMode) {
  // x = 0.5, 1.5, 2.5, 3.5, 4.5 in a row of 3 pixels.
  // CONSTANT: pixels past the edge read the fill value -1 (2.5 blends 4 with -1; 3.5 and 4.5 read
  // only fill values).
  ExpectNear(Transform(Row(0.5f, -1), Modes("BILINEAR", "CONSTANT"))[0], {1.5, 3, 1.5, -1, -1});
  // NEAREST: clamped to 2.
  ExpectNear(Transform(Row(0.5f, -1), Modes("BILINEAR", "NEAREST"))[0], {1.5, 3, 4, 4, 4});
  // REFLECT [dcba|abcd|dcba]: 3.5 -> 6 - 3.5 - 1 = 1.5, 4.5 -> 0.5; 2.5 clamps to 2.
  ExpectNear(Transform(Row(0.5f, -1), Modes("BILINEAR", "REFLECT"))[0], {1.5, 3, 4, 3, 1.5});
  // WRAP [abcd|abcd]: x - 3 * trunc(x / 2): 2.5 -> -0.5, 3.5 -> 0.5, 4.5 -> -1.5; then clamped.
  ExpectNear(Transform(Row(0.5f, -1), Modes("BILINEAR", "WRAP"))[0], {1.5, 3, 1, 1.5, 1});
}

TEST(ImageProjectiveTransform, NearestRoundsHalfAwayFromZero) {
  // x = -0.5 rounds to -1 (outside: fill), 0.5 to 1, 1.5 to 2, 2.5 to 3 (outside), 3.5 to 4.
  ExpectNear(Transform(Row(-0.5f, 9), Modes("NEAREST", "CONSTANT"))[0], {9, 2, 4, 9, 9});
}

TEST(ImageProjectiveTransform, PerImageTransformsAndTheProjectiveRow) {
  // Two images; the second's transform divides by k = 0.5 x + 1: x = 0 -> 0, x = 1 -> 2/1.5.
  const Tensor images = F32({2, 1, 3, 1}, {1, 2, 4, 10, 20, 40});
  const Tensor t = F32({2, 8}, {1, 0, 1, 0, 1, 0, 0, 0, /**/ 2, 0, 0, 0, 1, 0, 0.5f, 0});
  const auto out = Transform({images, t, I32({2}, {1, 2}), Tensor::Scalar<float>(DType::kFloat32, 0)},
                             Modes("BILINEAR", "CONSTANT"));
  const double x = 2.0 / 1.5;
  ExpectNear(out[0], {2, 4, 10, 20 + (x - 1) * 20});
}

TEST(ImageProjectiveTransform, IntegerImagesTruncateTheBlend) {
  const Tensor images = Tensor::FromVector<uint8_t>(DType::kUInt8, {1, 1, 3, 1}, {1, 2, 255});
  const auto out = Transform({images, F32({1, 8}, {1, 0, 0.5f, 0, 1, 0, 0, 0}), I32({2}, {1, 3}),
                              Tensor::Scalar<float>(DType::kFloat32, 7.9f)},
                             Modes("BILINEAR", "CONSTANT"));
  ASSERT_EQ(out[0].dtype(), DType::kUInt8);
  const uint8_t* o = out[0].data<uint8_t>();
  EXPECT_EQ(std::vector<int>(o, o + 3), (std::vector<int>{1, 128, 131}));  // 1.5, 128.5, (255 + 7) / 2
}

TEST(ImageProjectiveTransform, ErrorsNameWhatIsWrong) {
  std::vector<Tensor> in = Row(0, 0);
  ExpectErrorMessage([&] { Transform(in, Modes("BICUBIC", "CONSTANT")); }, {"interpolation", "BICUBIC"});
  ExpectErrorMessage([&] { Transform(in, Modes("NEAREST", "MIRROR")); }, {"fill_mode", "MIRROR"});
  in[1] = F32({1, 6}, {1, 0, 0, 0, 1, 0});
  ExpectErrorMessage([&] { Transform(in, Modes("NEAREST", "CONSTANT")); }, {"transforms", "8"});
  in = Row(0, 0);
  in[2] = I32({2}, {0, 5});
  ExpectErrorMessage([&] { Transform(in, Modes("NEAREST", "CONSTANT")); }, {"output dimensions must be positive"});
  in = Row(0, 0);
  in[1] = F32({3, 8}, std::vector<float>(24, 0.f));  // 3 rows for 1 image
  ExpectErrorMessage([&] { Transform(in, Modes("NEAREST", "CONSTANT")); }, {"num_images x 8 or 1 x 8"});
}

}  // namespace
}  // namespace kiln
