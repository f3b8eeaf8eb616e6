// NonMaxSuppression: greedy selection per (batch, class), as TensorFlow's NonMaxSuppressionV3 and
// ONNX Runtime do it: candidates with score > score_threshold in order of decreasing score (equal
// scores: lower box index first), each kept unless its IoU with an already kept box of the class
// exceeds iou_threshold (boxes of zero area overlap nothing), at most max_output_per_class per class.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/reference/kernel.h"

namespace kiln::reference {
namespace {

struct Box {
  double y1, x1, y2, x2, area;
};

Box ReadBox(const Tensor& boxes, int64_t offset, bool center_point) {
  double v[4];
  for (int k = 0; k < 4; ++k) v[k] = boxes.DoubleAt(offset + k);
  Box b;
  if (center_point) {  // [x_center, y_center, width, height]
    b.x1 = v[0] - v[2] / 2, b.x2 = v[0] + v[2] / 2;
    b.y1 = v[1] - v[3] / 2, b.y2 = v[1] + v[3] / 2;
  } else {  // [y1, x1, y2, x2], any diagonal pair of corners
    b.y1 = std::min(v[0], v[2]), b.y2 = std::max(v[0], v[2]);
    b.x1 = std::min(v[1], v[3]), b.x2 = std::max(v[1], v[3]);
  }
  b.area = (b.y2 - b.y1) * (b.x2 - b.x1);
  return b;
}

double IoU(const Box& a, const Box& b) {
  if (a.area <= 0 || b.area <= 0) return 0;
  const double h = std::max(0.0, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const double w = std::max(0.0, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const double inter = h * w;
  return inter / (a.area + b.area - inter);
}

void NonMaxSuppressionKernel(KernelContext& ctx) {
  const Tensor& boxes = ctx.input(0);
  const Tensor& scores = ctx.input(1);
  if (boxes.rank() != 3 || boxes.dim(2) != 4)
    ctx.Fail(fmt::format("boxes must be [batches, boxes, 4], got {}", ShapeToString(boxes.shape())));
  if (scores.rank() != 3 || scores.dim(0) != boxes.dim(0) || scores.dim(2) != boxes.dim(1))
    ctx.Fail(fmt::format("scores must be [batches, classes, boxes] = [{}, ?, {}], got {}", boxes.dim(0), boxes.dim(1),
                         ShapeToString(scores.shape())));
  for (int i = 2; i < 5; ++i)
    if (ctx.input(i).num_elements() != 1)
      ctx.Fail(fmt::format("input {} must hold one value, got shape {}", i, ShapeToString(ctx.input(i).shape())));
  const int64_t max_out = std::max<int64_t>(0, ctx.input(2).IntAt(0));
  const double iou_threshold = ctx.input(3).DoubleAt(0);
  const double score_threshold = ctx.input(4).DoubleAt(0);
  if (!(iou_threshold >= 0 && iou_threshold <= 1))
    ctx.Fail(fmt::format("iou_threshold must be in [0, 1], got {}", iou_threshold));
  const bool center = ctx.attrs().GetOr<int64_t>("center_point_box", 0) == 1;
  const int64_t batches = boxes.dim(0), num_boxes = boxes.dim(1), classes = scores.dim(1);

  std::vector<int64_t> selected;  // (batch, class, box) triples
  std::vector<Box> all(static_cast<size_t>(num_boxes));
  std::vector<int64_t> order;
  std::vector<int64_t> kept;
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t i = 0; i < num_boxes; ++i)
      all[static_cast<size_t>(i)] = ReadBox(boxes, (b * num_boxes + i) * 4, center);
    for (int64_t c = 0; c < classes && max_out > 0; ++c) {
      const int64_t base = (b * classes + c) * num_boxes;
      order.clear();
      for (int64_t i = 0; i < num_boxes; ++i)
        if (scores.DoubleAt(base + i) > score_threshold) order.push_back(i);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t x, int64_t y) { return scores.DoubleAt(base + x) > scores.DoubleAt(base + y); });
      kept.clear();
      for (int64_t i : order) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool suppressed = false;
        for (int64_t k : kept)
          if (IoU(all[static_cast<size_t>(i)], all[static_cast<size_t>(k)]) > iou_threshold) {
            suppressed = true;
            break;
          }
        if (suppressed) continue;
        kept.push_back(i);
        selected.insert(selected.end(), {b, c, i});
      }
    }
  }
  Tensor& out = ctx.AllocateOutput(0, DType::kInt64, {static_cast<int64_t>(selected.size() / 3), 3});
  std::copy(selected.begin(), selected.end(), out.data<int64_t>());
}

}  // namespace

KILN_REFERENCE_KERNEL("NonMaxSuppression", NonMaxSuppressionKernel);

}  // namespace kiln::reference
