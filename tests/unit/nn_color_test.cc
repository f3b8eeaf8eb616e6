// Colour-space kernels (RGBToHSV, HSVToRGB, AdjustHue, AdjustSaturation) on edge colours with
// hand-computed answers: primaries, secondaries, greys, black, hue wrap-around; half inputs;
// shape and dtype errors.
#include <cmath>

#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using namespace nntest;

Tensor Scalar(float v) { return Tensor::Scalar<float>(DType::kFloat32, v); }

TEST(NnColor, RgbToHsvEdgeColours) {
  // red, green, blue, yellow, grey, black, white, (1, 0, 0.5): hue 1 - 0.5 / 6
  Tensor rgb = F32({8, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0.5f, 0.5f, 0.5f, 0, 0, 0, 1, 1, 1, 1, 0, 0.5f});
  auto out = RunOp("RGBToHSV", {rgb}, {});
  ExpectNear(out[0],
             {0, 1, 1, 1.0 / 3, 1, 1, 2.0 / 3, 1, 1, 1.0 / 6, 1, 1, 0, 0, 0.5, 0, 0, 0, 0, 0, 1, 1 - 0.5 / 6, 1, 1},
             1e-7);
}

TEST(NnColor, HsvToRgbEdgeColoursAndRoundTrip) {
  // hue 0 and hue 1 are both red; 1/2 is cyan; saturation 0 is grey.
  Tensor hsv = F32({4, 3}, {0, 1, 1, 1, 1, 1, 0.5f, 1, 0.5f, 0.3f, 0, 0.25f});
  ExpectNear(RunOp("HSVToRGB", {hsv}, {})[0], {1, 0, 0, 1, 0, 0, 0, 0.5, 0.5, 0.25, 0.25, 0.25}, 1e-7);
  std::vector<float> v = RandomFloats(300, 7);
  for (float& x : v) x = std::fabs(x);
  Tensor rgb = F32({10, 10, 3}, v);
  auto back = RunOp("HSVToRGB", {RunOp("RGBToHSV", {rgb}, {})[0]}, {});
  std::vector<double> want(v.begin(), v.end());
  ExpectNear(back[0], want, 1e-6);
}

// Half rounds after every operation: the results are the float ones to within half's
// precision, and bit-identical for exactly representable edge colours.
TEST(NnColor, RgbToHsvHalf) {
  const std::vector<float> v = {1, 0, 0, 0, 0, 1, 0.5f, 0.5f, 0.5f, 0.25f, 0.75f, 0.5f};
  Tensor h(DType::kFloat16, {4, 3});
  for (size_t i = 0; i < v.size(); ++i) h.data<Half>()[i] = Half(v[i]);
  auto out = RunOp("RGBToHSV", {h}, {});
  EXPECT_EQ(out[0].dtype(), DType::kFloat16);
  ExpectNear(out[0], {0, 1, 1, 2.0 / 3, 1, 1, 0, 0, 0.5, 5.0 / 12, 2.0 / 3, 0.75}, 1e-3);
  EXPECT_EQ(out[0].data<Half>()[0].bits, Half(0.0f).bits);
}

// Red turned by a third is green, by minus a third blue; a full turn (delta 1) gives the
// colour back (hue wrap-around); greys have no hue and do not change.
TEST(NnColor, AdjustHueTurnsAndWraps) {
  Tensor x = F32({1, 1, 4, 3}, {1, 0, 0, 1, 0.5f, 0, 0.2f, 0.4f, 0.8f, 0.3f, 0.3f, 0.3f});
  ExpectNear(RunOp("AdjustHue", {x, Scalar(1.0f / 3)}, {})[0], {0, 1, 0, 0, 1, 0.5, 0.8, 0.2, 0.4, 0.3, 0.3, 0.3},
             1e-6);
  ExpectNear(RunOp("AdjustHue", {x, Scalar(-1.0f / 3)}, {})[0], {0, 0, 1, 0.5, 0, 1, 0.4, 0.8, 0.2, 0.3, 0.3, 0.3},
             1e-6);
  ExpectNear(RunOp("AdjustHue", {x, Scalar(1.0f)}, {})[0], ToDoubles(x), 1e-6);
  // (1, 0.5, 0) is hue 30 degrees; +180 degrees is (0, 0.5, 1).
  ExpectNear(RunOp("AdjustHue", {x, Scalar(0.5f)}, {})[0], {0, 1, 1, 0, 0.5, 1, 0.8, 0.6, 0.2, 0.3, 0.3, 0.3}, 1e-6);
}

// Scale 0 gives the grey of the same value; scale 2 doubles the saturation (clipped to 1, so
// (0.2, 0.4, 0.8) keeps its hue and value: (0, 0.8 / 3, 0.8));
// greys stay grey.
TEST(NnColor, AdjustSaturationScales) {
  Tensor x = F32({1, 1, 3, 3}, {1, 0.5f, 0.5f, 0.2f, 0.4f, 0.8f, 0.3f, 0.3f, 0.3f});
  ExpectNear(RunOp("AdjustSaturation", {x, Scalar(0)}, {})[0], {1, 1, 1, 0.8, 0.8, 0.8, 0.3, 0.3, 0.3}, 1e-6);
  ExpectNear(RunOp("AdjustSaturation", {x, Scalar(2)}, {})[0], {1, 0, 0, 0, 0.8 / 3, 0.8, 0.3, 0.3, 0.3}, 1e-6);
  ExpectNear(RunOp("AdjustSaturation", {x, Scalar(1)}, {})[0], ToDoubles(x), 1e-6);
}

TEST(NnColor, ShapeAndDtypeErrors) {
  EXPECT_THROW(RunOp("RGBToHSV", {F32({2, 2}, {1, 2, 3, 4})}, {}), Error);
  EXPECT_THROW(RunOp("AdjustHue", {F32({2, 3}, {1, 2, 3, 4, 5, 6}), Scalar(0.1f)}, {}), Error);  // rank < 3
  EXPECT_THROW(RunOp("AdjustHue", {F32({1, 1, 3}, {1, 2, 3}), F32({1}, {0.1f})}, {}), Error);    // delta not scalar
  EXPECT_THROW(RunOp("RGBToHSV", {I32({1, 3}, {1, 2, 3})}, {}), Error);
  EXPECT_THROW(
      RunOp("AdjustSaturation", {Tensor::FromVector<double>(DType::kFloat64, {1, 1, 3}, {1, 2, 3}), Scalar(2)}, {}),
      Error);
}

}  // namespace
}  // namespace kiln
