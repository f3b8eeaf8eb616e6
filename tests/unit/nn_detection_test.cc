// NonMaxSuppression's reference kernel: a hand-worked selection and its run-time errors.
#include <gtest/gtest.h>

#include "tests/unit/nn_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

std::vector<Tensor> Nms(Tensor boxes, Tensor scores, int64_t max_out, float iou, float threshold) {
  // (The selection's length is data-dependent, so the node's output shape is not static.)
  const std::vector<Tensor> inputs = {
      std::move(boxes), std::move(scores), Tensor::Scalar<int64_t>(DType::kInt64, max_out),
      Tensor::Scalar<float>(DType::kFloat32, iou), Tensor::Scalar<float>(DType::kFloat32, threshold)};
  return nntest::OneNode("NonMaxSuppression", inputs, {}, 1, {}).Run(inputs);
}

TEST(NnDetection, NonMaxSuppressionSelectsGreedily) {
  // Box 1 overlaps box 0 (IoU 0.81 > 0.5) and is suppressed; box 2 is apart; box 3 is below the threshold.
  const Tensor boxes = Tensor::FromVector<float>(DType::kFloat32, {1, 4, 4},
                                                 {0, 0, 10, 10, 1, 1, 10, 10, 20, 20, 30, 30, 40, 40, 50, 50});
  const Tensor scores = Tensor::FromVector<float>(DType::kFloat32, {1, 1, 4}, {0.9f, 0.8f, 0.7f, 0.05f});
  const Tensor out = Nms(boxes, scores, 10, 0.5f, 0.1f)[0];
  ASSERT_EQ(out.shape(), (Shape{2, 3}));
  EXPECT_EQ(out.ToInt64Vector(), (std::vector<int64_t>{0, 0, 0, 0, 0, 2}));
  EXPECT_EQ(Nms(boxes, scores, 1, 0.5f, 0.1f)[0].shape(), (Shape{1, 3}));
}

TEST(NnDetection, NonMaxSuppressionErrors) {
  const Tensor scores = Tensor::FromVector<float>(DType::kFloat32, {1, 1, 2}, {0.5f, 0.4f});
  testutil::ExpectError(
      [&] {
        Nms(Tensor(DType::kFloat32, {1, 2, 3}), scores, 1, 0.5f, 0.f);
      },
      ErrorCode::kInvalidArgument, {"NonMaxSuppression", "boxes must be [batches, boxes, 4]"});
  testutil::ExpectError(
      [&] {
        Nms(Tensor(DType::kFloat32, {1, 3, 4}), scores, 1, 0.5f, 0.f);
      },
      ErrorCode::kInvalidArgument, {"scores must be [batches, classes, boxes]"});
  testutil::ExpectError(
      [&] {
        Nms(Tensor(DType::kFloat32, {1, 2, 4}), scores, 1, 1.5f, 0.f);
      },
      ErrorCode::kInvalidArgument, {"iou_threshold must be in [0, 1]"});
}

}  // namespace
}  // namespace kiln
