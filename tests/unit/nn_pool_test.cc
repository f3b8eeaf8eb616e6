// MaxPool / AvgPool kernels and shape functions.
#include <algorithm>
#include <limits>

#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using namespace nntest;

ir::AttrMap PoolAttrs(std::vector<int64_t> ksize, std::vector<int64_t> strides, const std::string& padding,
                      const std::string& format = "NHWC") {
  return Attrs({{"ksize", ksize}, {"strides", strides}, {"padding", padding}, {"data_format", format}});
}

TEST(NnPool, MaxPoolHandComputed) {
  Tensor x = F32({1, 4, 4, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  auto out = RunOp("MaxPool", {x}, PoolAttrs({2, 2}, {2, 2}, "VALID"));
  ExpectNear(out[0], {6, 8, 14, 16});
}

TEST(NnPool, MaxPoolSamePadsWithMinusInfinity) {
  // All-negative input: padding with zeros would be visible at the edges.
  std::vector<float> v(25);
  for (int i = 0; i < 25; ++i) v[static_cast<size_t>(i)] = -1.0f - static_cast<float>(i);
  Tensor x = F32({1, 5, 5, 1}, v);
  auto out = RunOp("MaxPool", {x}, PoolAttrs({3, 3}, {2, 2}, "SAME"));
  // out 3x3; total pad (3-1)*2+3-5 = 2 -> 1 before, 1 after. Window max = top-left in-bounds element.
  EXPECT_EQ(ShapeToString(out[0].shape()), "[1,3,3,1]");
  ExpectNear(out[0], {-1, -2, -4, -6, -7, -9, -16, -17, -19});
}

TEST(NnPool, AvgPoolSameDividesByValidCount) {
  Tensor x = F32({1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto out = RunOp("AvgPool", {x}, PoolAttrs({3, 3}, {1, 1}, "SAME"));
  ExpectNear(out[0], {3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7});
  // 2x2 stride 2 SAME on 3x3: pad after only; last row/col windows are partial.
  out = RunOp("AvgPool", {x}, PoolAttrs({2, 2}, {2, 2}, "SAME"));
  ExpectNear(out[0], {3, 4.5, 7.5, 9});
}

// Independent NHWC pooling loop.
std::vector<double> NaivePool(const Tensor& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, bool same, bool max,
                              Shape* out_shape) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  auto win = [&](int64_t in, int64_t k, int64_t s, int64_t* pad) {
    if (!same) {
      *pad = 0;
      return (in - k) / s + 1;
    }
    const int64_t out = (in + s - 1) / s;
    *pad = std::max<int64_t>((out - 1) * s + k - in, 0) / 2;
    return out;
  };
  int64_t pt, pl;
  const int64_t OH = win(H, kh, sh, &pt), OW = win(W, kw, sw, &pl);
  *out_shape = {N, OH, OW, C};
  std::vector<double> out;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t c = 0; c < C; ++c) {
          double acc = max ? -std::numeric_limits<double>::infinity() : 0;
          int count = 0;
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t ih = oh * sh - pt + i, iw = ow * sw - pl + j;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const double v = x.DoubleAt(((n * H + ih) * W + iw) * C + c);
              acc = max ? std::max(acc, v) : acc + v;
              ++count;
            }
          out.push_back(max ? acc : acc / count);
        }
  return out;
}

TEST(NnPool, MatchesNaiveAndNchwAgrees) {
  Tensor x = RandF32({2, 7, 6, 3}, 5);
  for (bool max : {true, false})
    for (bool same : {true, false}) {
      Shape s;
      std::vector<double> want = NaivePool(x, 3, 2, 2, 3, same, max, &s);
      auto out = RunOp(max ? "MaxPool" : "AvgPool", {x}, PoolAttrs({3, 2}, {2, 3}, same ? "SAME" : "VALID"));
      ASSERT_EQ(ShapeToString(out[0].shape()), ShapeToString(s));
      ExpectNear(out[0], want);
      Tensor xc = Tensor::FromVector<double>(DType::kFloat64, {2, 3, 7, 6}, NHWCtoNCHW(ToDoubles(x), 2, 3, 42));
      auto outc = RunOp(max ? "MaxPool" : "AvgPool", {xc}, PoolAttrs({3, 2}, {2, 3}, same ? "SAME" : "VALID", "NCHW"));
      ExpectNear(outc[0], NHWCtoNCHW(want, s[0], s[3], s[1] * s[2]));
    }
}

TEST(NnPool, RuntimeKsizeAndStrides) {
  Tensor x = RandF32({1, 6, 5, 2}, 9);
  Tensor k = I32({4}, {1, 2, 2, 1}), s = I32({4}, {1, 2, 1, 1});
  ir::AttrMap a;
  a.Set("padding", std::string("SAME"));
  a.Set("data_format", std::string("NHWC"));
  auto out = RunOp("MaxPool", {x, k, s}, a, 1, {1, 2});
  Shape shape;
  ExpectNear(out[0], NaivePool(x, 2, 2, 2, 1, true, true, &shape));
  EXPECT_EQ(ShapeToString(out[0].shape()), ShapeToString(shape));
  // Non-constant ksize/strides: spatial dims unknown at import, batch/channels kept.
  OneNode n("MaxPool", {x, k, s}, a);
  EXPECT_EQ(n.graph.ShapeToString(n.out().shape), "[1,?,?,2]");
  ExpectNear(n.Run({x, k, s})[0], ToDoubles(out[0]));
}

TEST(NnPool, ExplicitPaddingAndIntegers) {
  Tensor x = Tensor::FromVector<int32_t>(DType::kInt32, {1, 2, 3, 1}, {-5, 3, -7, 2, -1, 4});
  ir::AttrMap a = PoolAttrs({2, 2}, {1, 2}, "EXPLICIT");
  a.Set("pads", std::vector<int64_t>{1, 0, 0, 1});
  auto out = RunOp("MaxPool", {x}, a);
  // Padded rows: [pad], [-5,3,-7,pad], [2,-1,4,pad]; out 2x2 with windows at cols 0-1 and 2-3.
  EXPECT_EQ(out[0].dtype(), DType::kInt32);
  ExpectNear(out[0], {3, -7, 3, 4});
}

TEST(NnPool, Pool3D) {
  Tensor x = RandF32({1, 4, 5, 3, 2}, 13);
  for (bool max : {true, false}) {
    auto out = RunOp(max ? "MaxPool" : "AvgPool", {x}, PoolAttrs({2, 3, 2}, {2, 2, 1}, "SAME", "NDHWC"));
    // out dims: ceil(4/2)=2, ceil(5/2)=3, 3; pads: d 0/0, h 1/1, w 0/1.
    ASSERT_EQ(ShapeToString(out[0].shape()), "[1,2,3,3,2]");
    std::vector<double> want;
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t ch = 0; ch < 2; ++ch) {
            double acc = max ? -1e300 : 0;
            int cnt = 0;
            for (int64_t i = 0; i < 2; ++i)
              for (int64_t j = 0; j < 3; ++j)
                for (int64_t k = 0; k < 2; ++k) {
                  const int64_t ia = a * 2 + i, ib = b * 2 - 1 + j, ic = c + k;
                  if (ia >= 4 || ib < 0 || ib >= 5 || ic >= 3) continue;
                  const double v = x.DoubleAt(((ia * 5 + ib) * 3 + ic) * 2 + ch);
                  acc = max ? std::max(acc, v) : acc + v;
                  ++cnt;
                }
            want.push_back(max ? acc : acc / cnt);
          }
    ExpectNear(out[0], want);
  }
}

TEST(NnPool, SymbolicShapes) {
  ir::Graph g;
  const ir::Dim batch = g.NewSymbol("batch"), h = g.NewSymbol("h");
  auto x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({batch, h, 9, 4}));
  ir::Node& n = g.AddNode("MaxPool", "p", {x});
  n.attrs = PoolAttrs({3, 3}, {2, 2}, "SAME");
  ir::InferNode(g, n.id);
  EXPECT_EQ(g.ShapeToString(g.value(n.outputs[0]).shape), "[batch,?,5,4]");
  ir::Node& m = g.AddNode("AvgPool", "q", {x});
  m.attrs = PoolAttrs({3, 3}, {1, 1}, "SAME");
  ir::InferNode(g, m.id);
  EXPECT_EQ(g.ShapeToString(g.value(m.outputs[0]).shape), "[batch,h,9,4]");
}

}  // namespace
}  // namespace kiln
