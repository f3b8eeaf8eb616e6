// Convolution kernels and shape functions vs straightforward loops.
#include <algorithm>
#include <limits>

#include "tests/unit/nn_test_util.h"
#include "tests/unit/test_util.h"

namespace kiln {
namespace {

using namespace nntest;

struct Dims2 {
  int64_t out, pad;
};

// TF's SAME/VALID rule, written out independently.
Dims2 Window(int64_t in, int64_t k, int64_t s, int64_t d, bool same) {
  const int64_t eff = (k - 1) * d + 1;
  if (!same) return {(in - eff) / s + 1, 0};
  const int64_t out = (in + s - 1) / s;
  const int64_t total = std::max<int64_t>((out - 1) * s + eff - in, 0);
  return {out, total / 2};
}

// NHWC x [N,H,W,C], HWIO w [KH,KW,I,O], groups = C / I.
std::vector<double> NaiveConv2D(const Tensor& x, const Tensor& w, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                                int64_t pt, int64_t pl, int64_t OH, int64_t OW) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const int64_t KH = w.dim(0), KW = w.dim(1), I = w.dim(2), O = w.dim(3);
  const int64_t groups = C / I, Og = O / groups;
  std::vector<double> out(static_cast<size_t>(N * OH * OW * O), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t o = 0; o < O; ++o) {
          const int64_t g = o / Og;
          double sum = 0;
          for (int64_t kh = 0; kh < KH; ++kh)
            for (int64_t kw = 0; kw < KW; ++kw)
              for (int64_t i = 0; i < I; ++i) {
                const int64_t ih = oh * sh - pt + kh * dh, iw = ow * sw - pl + kw * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                sum += x.DoubleAt(((n * H + ih) * W + iw) * C + g * I + i) * w.DoubleAt(((kh * KW + kw) * I + i) * O + o);
              }
          out[static_cast<size_t>(((n * OH + oh) * OW + ow) * O + o)] = sum;
        }
  return out;
}

ir::AttrMap ConvAttrs(std::vector<int64_t> strides, std::vector<int64_t> dilations, const std::string& padding,
                      const std::string& format = "NHWC", std::vector<int64_t> pads = {}) {
  return nntest::ConvAttrs(format, padding, std::move(strides), std::move(dilations), std::move(pads));
}

TEST(NnConv, HandComputedValid) {
  // 3x3 image 1..9, 2x2 filter of ones: each output is a 2x2 window sum.
  Tensor x = F32({1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = F32({2, 2, 1, 1}, {1, 1, 1, 1});
  auto out = RunOp("Conv2D", {x, w}, ConvAttrs({1, 1}, {1, 1}, "VALID"));
  EXPECT_EQ(ShapeToString(out[0].shape()), "[1,2,2,1]");
  ExpectNear(out[0], {12, 16, 24, 28});
  // SAME with stride 2 on 3x3, 2x2 kernel: out 2x2, total pad 1 -> 0 before, 1 after.
  out = RunOp("Conv2D", {x, w}, ConvAttrs({2, 2}, {1, 1}, "SAME"));
  ExpectNear(out[0], {12, 9, 15, 9});
}

struct ConvCase {
  Shape x, w;
  int64_t sh, sw, dh, dw;
  bool same;
};

TEST(NnConv, MatchesNaiveLoops) {
  const ConvCase cases[] = {
      {{1, 5, 5, 3}, {3, 3, 3, 4}, 1, 1, 1, 1, false},
      {{2, 7, 6, 3}, {3, 3, 3, 5}, 2, 2, 1, 1, true},   // SAME, stride 2, odd sizes
      {{1, 8, 9, 2}, {2, 3, 2, 3}, 2, 3, 1, 1, true},   // even kernel, uneven strides
      {{1, 9, 8, 2}, {3, 2, 2, 3}, 1, 1, 2, 3, true},   // dilation
      {{1, 9, 8, 2}, {3, 3, 2, 3}, 2, 1, 2, 2, false},  // dilation + stride, VALID
      {{1, 6, 6, 8}, {3, 3, 2, 8}, 1, 1, 1, 1, true},   // grouped: 4 groups
      {{1, 5, 7, 6}, {1, 1, 6, 7}, 1, 1, 1, 1, false},  // pointwise fast path
      {{2, 5, 7, 6}, {1, 1, 6, 7}, 2, 2, 1, 1, true},   // strided 1x1
      {{1, 13, 11, 20}, {3, 3, 20, 9}, 1, 1, 1, 1, true},  // several GEMM panels/rows
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    Tensor x = RandF32(c.x, seed++), w = RandF32(c.w, seed++);
    const Dims2 h = Window(c.x[1], c.w[0], c.sh, c.dh, c.same), wd = Window(c.x[2], c.w[1], c.sw, c.dw, c.same);
    auto out = RunOp("Conv2D", {x, w}, ConvAttrs({c.sh, c.sw}, {c.dh, c.dw}, c.same ? "SAME" : "VALID"));
    EXPECT_EQ(ShapeToString(out[0].shape()), ShapeToString({c.x[0], h.out, wd.out, c.w[3]}));
    ExpectNear(out[0], NaiveConv2D(x, w, c.sh, c.sw, c.dh, c.dw, h.pad, wd.pad, h.out, wd.out));
  }
}

TEST(NnConv, ExplicitPaddingAndBias) {
  Tensor x = RandF32({1, 5, 6, 3}, 7), w = RandF32({3, 2, 3, 4}, 8), b = F32({4}, {0.5f, -1.f, 2.f, 0.f});
  // pads [top, bottom, left, right]
  auto out = RunOp("Conv2D", {x, w, b}, ConvAttrs({2, 1}, {1, 1}, "EXPLICIT", "NHWC", {1, 2, 0, 3}));
  const int64_t OH = (5 + 1 + 2 - 3) / 2 + 1, OW = (6 + 0 + 3 - 2) / 1 + 1;
  EXPECT_EQ(ShapeToString(out[0].shape()), ShapeToString({1, OH, OW, 4}));
  std::vector<double> want = NaiveConv2D(x, w, 2, 1, 1, 1, 1, 0, OH, OW);
  for (size_t i = 0; i < want.size(); ++i) want[i] += b.DoubleAt(static_cast<int64_t>(i % 4));
  ExpectNear(out[0], want);
}

TEST(NnConv, HugePaddingFailsFastBeforeAllocating) {
  const Tensor x = RandF32({1, 4, 4, 1}, 1), w = RandF32({3, 3, 1, 1}, 2);
  const int64_t big = int64_t{1} << 40;
  // Both spatial dims 2^41 + 2: the output's pixel count overflows.
  testutil::ExpectError([&] { RunOp("Conv2D", {x, w}, ConvAttrs({1, 1}, {1, 1}, "EXPLICIT", "NHWC", {big, big, big, big})); },
                        ErrorCode::kInvalidArgument, {"Conv2D", "too large"});
  // One dim 2^41 + 2 rows of 4 pixels: the tap table alone would exceed the tensor size limit.
  testutil::ExpectError([&] { RunOp("Conv2D", {x, w}, ConvAttrs({1, 1}, {1, 1}, "EXPLICIT", "NHWC", {big, big, 0, 0})); },
                        ErrorCode::kResourceExhausted, {"Conv2D", "kernel taps", "tensor size limit"});
}

TEST(NnConv, WindowArithmeticThatOverflowsIsRefused) {
  // Values a corrupted file can carry: (3 - 1) * dilation, and SAME's in + stride - 1, wrap int64.
  const Tensor x = RandF32({1, 4, 4, 1}, 1), w = RandF32({3, 3, 1, 1}, 2);
  const int64_t huge = std::numeric_limits<int64_t>::max() / 2 + 1;
  testutil::ExpectError(
      [&] {
        RunOp("Conv2D", {x, w}, ConvAttrs({1, 1}, {huge, 1}, "VALID"));
      },
      ErrorCode::kInvalidArgument, {"Conv2D", "overflows 64 bits", "dilation"});
  testutil::ExpectError(
      [&] {
        RunOp("Conv2D", {x, w}, ConvAttrs({std::numeric_limits<int64_t>::max(), 1}, {1, 1}, "SAME"));
      },
      ErrorCode::kInvalidArgument, {"Conv2D", "overflows 64 bits"});
  testutil::ExpectError(
      [&] {
        RunOp("Conv2D", {x, w}, ConvAttrs({1, 1}, {1, 1}, "EXPLICIT", "NHWC", {huge, huge, 0, 0}));
      },
      ErrorCode::kInvalidArgument, {"Conv2D", "overflows 64 bits"});
}

TEST(NnConv, NchwAgreesWithNhwc) {
  Tensor x = RandF32({2, 7, 5, 4}, 11), w = RandF32({3, 3, 2, 6}, 12);  // grouped too
  auto nhwc = RunOp("Conv2D", {x, w}, ConvAttrs({2, 1}, {1, 2}, "SAME"));
  Tensor xc = Tensor::FromVector<double>(DType::kFloat64, {2, 4, 7, 5}, NHWCtoNCHW(ToDoubles(x), 2, 4, 35));
  Tensor wd = Tensor::FromVector<double>(DType::kFloat64, w.shape(), ToDoubles(w));
  auto nchw = RunOp("Conv2D", {xc, wd}, ConvAttrs({2, 1}, {1, 2}, "SAME", "NCHW"));
  const Shape& s = nhwc[0].shape();
  EXPECT_EQ(ShapeToString(nchw[0].shape()), ShapeToString({s[0], s[3], s[1], s[2]}));
  ExpectNear(nchw[0], NHWCtoNCHW(ToDoubles(nhwc[0]), s[0], s[3], s[1] * s[2]));
}

TEST(NnConv, Depthwise) {
  Tensor x = RandF32({2, 7, 6, 3}, 21), w = RandF32({3, 3, 3, 2}, 22);  // channel multiplier 2
  auto out = RunOp("DepthwiseConv2D", {x, w}, ConvAttrs({2, 2}, {1, 1}, "SAME"));
  const Dims2 h = Window(7, 3, 2, 1, true), wd = Window(6, 3, 2, 1, true);
  ASSERT_EQ(ShapeToString(out[0].shape()), ShapeToString({2, h.out, wd.out, 6}));
  std::vector<double> want;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t oh = 0; oh < h.out; ++oh)
      for (int64_t ow = 0; ow < wd.out; ++ow)
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t m = 0; m < 2; ++m) {
            double s = 0;
            for (int64_t kh = 0; kh < 3; ++kh)
              for (int64_t kw = 0; kw < 3; ++kw) {
                const int64_t ih = oh * 2 - h.pad + kh, iw = ow * 2 - wd.pad + kw;
                if (ih < 0 || ih >= 7 || iw < 0 || iw >= 6) continue;
                s += x.DoubleAt(((n * 7 + ih) * 6 + iw) * 3 + c) * w.DoubleAt(((kh * 3 + kw) * 3 + c) * 2 + m);
              }
            want.push_back(s);
          }
  ExpectNear(out[0], want);
  // Multiplier 1 with dilation, NCHW.
  Tensor w1 = RandF32({2, 2, 3, 1}, 23);
  auto a = RunOp("DepthwiseConv2D", {x, w1}, ConvAttrs({1, 1}, {2, 2}, "VALID"));
  Tensor xc = Tensor::FromVector<double>(DType::kFloat64, {2, 3, 7, 6}, NHWCtoNCHW(ToDoubles(x), 2, 3, 42));
  auto b = RunOp("DepthwiseConv2D", {xc, Tensor::FromVector<double>(DType::kFloat64, w1.shape(), ToDoubles(w1))},
                 ConvAttrs({1, 1}, {2, 2}, "VALID", "NCHW"));
  const Shape& s = a[0].shape();
  ExpectNear(b[0], NHWCtoNCHW(ToDoubles(a[0]), s[0], s[3], s[1] * s[2]));
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(NnConv, BackpropInputIsTheAdjointOfConv) {
  // <conv(x, w), dy> == <x, conv_backprop_input(dy, w)> for every x, dy.
  struct Case {
    Shape x, w;
    int64_t s;
    std::string padding;
  };
  const Case cases[] = {{{1, 7, 7, 3}, {3, 3, 3, 4}, 2, "SAME"},
                        {{2, 8, 5, 2}, {2, 3, 2, 3}, 2, "SAME"},
                        {{1, 9, 9, 2}, {3, 3, 2, 2}, 3, "VALID"},
                        {{1, 6, 6, 2}, {4, 4, 2, 5}, 1, "SAME"}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    Tensor x = RandF32(c.x, seed++), w = RandF32(c.w, seed++);
    auto y = RunOp("Conv2D", {x, w}, ConvAttrs({c.s, c.s}, {1, 1}, c.padding));
    Tensor dy = RandF32(y[0].shape(), seed++);
    Tensor sizes = I32({4}, {static_cast<int32_t>(c.x[0]), static_cast<int32_t>(c.x[1]), static_cast<int32_t>(c.x[2]),
                             static_cast<int32_t>(c.x[3])});
    auto dx = RunOp("Conv2DBackpropInput", {sizes, w, dy}, ConvAttrs({c.s, c.s}, {1, 1}, c.padding), 1, {0});
    ASSERT_EQ(ShapeToString(dx[0].shape()), ShapeToString(c.x));
    const double lhs = Dot(ToDoubles(y[0]), ToDoubles(dy)), rhs = Dot(ToDoubles(x), ToDoubles(dx[0]));
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::abs(lhs))) << c.padding << " stride " << c.s;
  }
}

TEST(NnConv, BackpropInputHandComputed) {
  // Transposed conv of a 2x2 dy with a 2x2 ones filter, stride 2, VALID: each dy value fills a
  // 2x2 block of the 4x4 output.
  Tensor dy = F32({1, 2, 2, 1}, {1, 2, 3, 4});
  Tensor w = F32({2, 2, 1, 1}, {1, 1, 1, 1});
  auto out = RunOp("Conv2DBackpropInput", {I32({4}, {1, 4, 4, 1}), w, dy}, ConvAttrs({2, 2}, {1, 1}, "VALID"), 1, {0});
  ExpectNear(out[0], {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // Spatial-only input_sizes (2 elements) and NCHW.
  auto out2 = RunOp("Conv2DBackpropInput", {I32({2}, {4, 4}), w, dy.Reshaped({1, 1, 2, 2})}, ConvAttrs({2, 2}, {1, 1}, "VALID", "NCHW"), 1, {0});
  ExpectNear(out2[0], {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // A wrong out_backprop size is a run-time error naming the expected shape.
  ir::Graph g;
  auto in0 = g.AddConstant("sizes", I32({4}, {1, 5, 5, 1}));
  auto in1 = g.AddInput("w", DType::kFloat32, ir::SymShape::Of({2, 2, 1, 1}));
  auto in2 = g.AddInput("dy", DType::kFloat32, ir::SymShape::Of({1, 2, 2, 1}));
  ir::Node& n = g.AddNode("Conv2DBackpropInput", "bad", {in0, in1, in2});
  n.attrs = ConvAttrs({1, 1}, {1, 1}, "VALID");
  std::vector<Tensor> ins{I32({4}, {1, 5, 5, 1}), w, dy};
  try {
    reference::RunReferenceKernel(g.node(n.id), ins, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1,4,4,1]"), std::string::npos) << e.what();
  }
}

TEST(NnConv, Conv3DMatchesNaive) {
  Tensor x = RandF32({1, 5, 6, 4, 2}, 31), w = RandF32({2, 3, 2, 2, 3}, 32);
  const int64_t s[3] = {2, 1, 2};
  auto out = RunOp("Conv3D", {x, w}, ConvAttrs({2, 1, 2}, {1, 1, 1}, "SAME", "NDHWC"));
  const int64_t in[3] = {5, 6, 4}, k[3] = {2, 3, 2};
  Dims2 d[3];
  for (int i = 0; i < 3; ++i) d[i] = Window(in[i], k[i], s[i], 1, true);
  ASSERT_EQ(ShapeToString(out[0].shape()), ShapeToString({1, d[0].out, d[1].out, d[2].out, 3}));
  std::vector<double> want;
  for (int64_t a = 0; a < d[0].out; ++a)
    for (int64_t b = 0; b < d[1].out; ++b)
      for (int64_t c = 0; c < d[2].out; ++c)
        for (int64_t o = 0; o < 3; ++o) {
          double sum = 0;
          for (int64_t ka = 0; ka < 2; ++ka)
            for (int64_t kb = 0; kb < 3; ++kb)
              for (int64_t kc = 0; kc < 2; ++kc)
                for (int64_t i = 0; i < 2; ++i) {
                  const int64_t ia = a * 2 - d[0].pad + ka, ib = b - d[1].pad + kb, ic = c * 2 - d[2].pad + kc;
                  if (ia < 0 || ia >= 5 || ib < 0 || ib >= 6 || ic < 0 || ic >= 4) continue;
                  sum += x.DoubleAt(((ia * 6 + ib) * 4 + ic) * 2 + i) * w.DoubleAt((((ka * 3 + kb) * 2 + kc) * 2 + i) * 3 + o);
                }
          want.push_back(sum);
        }
  ExpectNear(out[0], want);
  // Conv3DBackpropInput adjoint check.
  Tensor dy = RandF32(out[0].shape(), 33);
  Tensor sizes = Tensor::FromVector<int64_t>(DType::kInt64, {5}, {1, 5, 6, 4, 2});
  auto dx = RunOp("Conv3DBackpropInput", {sizes, w, dy}, ConvAttrs({2, 1, 2}, {1, 1, 1}, "SAME", "NDHWC"), 1, {0});
  const double lhs = Dot(ToDoubles(out[0]), ToDoubles(dy)), rhs = Dot(ToDoubles(x), ToDoubles(dx[0]));
  EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::abs(lhs)));
}

TEST(NnConv, HalfAndBFloat16) {
  Tensor x = RandF32({1, 4, 4, 2}, 41), w = RandF32({2, 2, 2, 2}, 42);
  auto ref = RunOp("Conv2D", {x, w}, ConvAttrs({1, 1}, {1, 1}, "SAME"));
  for (DType dt : {DType::kFloat16, DType::kBFloat16}) {
    Tensor xh(dt, x.shape()), wh(dt, w.shape());
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      if (dt == DType::kFloat16) xh.data<Half>()[i] = Half(x.data<float>()[i]);
      else xh.data<BFloat16>()[i] = BFloat16(x.data<float>()[i]);
    }
    for (int64_t i = 0; i < w.num_elements(); ++i) {
      if (dt == DType::kFloat16) wh.data<Half>()[i] = Half(w.data<float>()[i]);
      else wh.data<BFloat16>()[i] = BFloat16(w.data<float>()[i]);
    }
    auto out = RunOp("Conv2D", {xh, wh}, ConvAttrs({1, 1}, {1, 1}, "SAME"));
    EXPECT_EQ(out[0].dtype(), dt);
    ExpectNear(out[0], ToDoubles(ref[0]), dt == DType::kFloat16 ? 1e-2 : 5e-2);
  }
}

TEST(NnConv, RuntimeChannelMismatchFails) {
  ir::Graph g;
  auto x = g.AddInput("x", DType::kFloat32, ir::SymShape::Of({1, 4, 4, ir::kUnknownDim}));
  auto w = g.AddInput("w", DType::kFloat32, ir::SymShape::Of({3, 3, 3, 2}));
  ir::Node& n = g.AddNode("Conv2D", "conv", {x, w});
  n.attrs = ConvAttrs({1, 1}, {1, 1}, "SAME");
  ir::InferNode(g, n.id);
  std::vector<Tensor> ins{RandF32({1, 4, 4, 4}, 1), RandF32({3, 3, 3, 2}, 2)};
  try {
    reference::RunReferenceKernel(g.node(n.id), ins, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("channels"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln
