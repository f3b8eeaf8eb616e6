// BatchNorm, Softmax, LogSoftmax and LRN kernels.
#include "tests/unit/nn_test_util.h"

namespace kiln {
namespace {

using namespace nntest;

ir::AttrMap BnAttrs(double eps, int64_t axis, bool training = false, double factor = 1.0) {
  return Attrs({{"epsilon", eps}, {"axis", axis}, {"training", training}, {"exponential_avg_factor", factor}});
}

TEST(NnNorm, BatchNormInferenceNhwcAndNchw) {
  const int64_t C = 4;
  Tensor x = RandF32({2, 3, 3, C}, 1);
  Tensor scale = F32({C}, {1.5f, -0.5f, 2.f, 1.f}), offset = F32({C}, {0.1f, 0.2f, -0.3f, 0.f});
  Tensor mean = F32({C}, {0.05f, -0.1f, 0.2f, 0.f}), var = F32({C}, {0.5f, 1.f, 2.f, 0.25f});
  const double eps = 1e-3;
  std::vector<double> want;
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const int64_t c = i % C;
    want.push_back((x.DoubleAt(i) - mean.DoubleAt(c)) / std::sqrt(var.DoubleAt(c) + eps) * scale.DoubleAt(c) + offset.DoubleAt(c));
  }
  auto out = RunOp("BatchNorm", {x, scale, offset, mean, var}, BnAttrs(eps, -1));
  ExpectNear(out[0], want);
  Tensor xc = Tensor::FromVector<double>(DType::kFloat64, {2, C, 3, 3}, NHWCtoNCHW(ToDoubles(x), 2, C, 9));
  Tensor xcf(DType::kFloat32, xc.shape());
  for (int64_t i = 0; i < xc.num_elements(); ++i) xcf.data<float>()[i] = static_cast<float>(xc.DoubleAt(i));
  out = RunOp("BatchNorm", {xcf, scale, offset, mean, var}, BnAttrs(eps, 1));
  ExpectNear(out[0], NHWCtoNCHW(want, 2, C, 9));
}

TEST(NnNorm, BatchNormTrainingStatistics) {
  const int64_t C = 2;
  Tensor x = F32({2, 2, 1, C}, {1, 10, 2, 20, 3, 30, 6, 40});
  Tensor scale = F32({C}, {1, 2}), offset = F32({C}, {0, 1});
  Tensor old_mean = F32({C}, {0.5f, 5}), old_var = F32({C}, {1, 2});
  // channel 0: 1,2,3,6 -> mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3
  // channel 1: 10,20,30,40 -> mean 25, biased var 125, unbiased 500/3
  const double eps = 1e-3;
  auto out = RunOp("BatchNorm", {x, scale, offset, old_mean, old_var}, BnAttrs(eps, -1, true), 5);
  std::vector<double> want;
  const double m[2] = {3, 25}, v[2] = {3.5, 125};
  for (int64_t i = 0; i < 8; ++i) {
    const int64_t c = i % 2;
    want.push_back((x.DoubleAt(i) - m[c]) / std::sqrt(v[c] + eps) * scale.DoubleAt(c) + offset.DoubleAt(c));
  }
  ExpectNear(out[0], want);
  ExpectNear(out[1], {3, 25});
  ExpectNear(out[2], {14.0 / 3, 500.0 / 3});
  ExpectNear(out[3], {3, 25});
  ExpectNear(out[4], {3.5, 125});
  // exponential_avg_factor 0.25: running = 0.75 * old + 0.25 * batch (variance unbiased).
  out = RunOp("BatchNorm", {x, scale, offset, old_mean, old_var}, BnAttrs(eps, -1, true, 0.25), 5);
  ExpectNear(out[1], {0.75 * 0.5 + 0.25 * 3, 0.75 * 5 + 0.25 * 25});
  ExpectNear(out[2], {0.75 * 1 + 0.25 * 14.0 / 3, 0.75 * 2 + 0.25 * 500.0 / 3});
  // Empty mean/variance are allowed in training with factor 1.
  Tensor empty = F32({0}, {});
  auto n = OneNode("BatchNorm", {x, scale, offset, empty, empty}, BnAttrs(eps, -1, true), 3);
  auto res = n.Run({x, scale, offset, empty, empty});
  ExpectNear(res[0], want);
  ExpectNear(res[2], {14.0 / 3, 500.0 / 3});
}

TEST(NnNorm, BatchNormHalfInputFloatParams) {
  Tensor x(DType::kFloat16, {1, 2, 2});
  const float xv[4] = {1, 2, 3, 4};
  for (int i = 0; i < 4; ++i) x.data<Half>()[i] = Half(xv[i]);
  Tensor one = F32({2}, {1, 1}), zero = F32({2}, {0, 0});
  auto out = RunOp("BatchNorm", {x, one, zero, zero, one}, BnAttrs(0, -1));
  EXPECT_EQ(out[0].dtype(), DType::kFloat16);
  ExpectNear(out[0], {1, 2, 3, 4}, 1e-3);
}

TEST(NnNorm, SoftmaxIsStableForLargeValues) {
  Tensor x = F32({2, 3}, {1000, 1001, 1002, -5, 0, 5});
  auto out = RunOp("Softmax", {x}, {});
  auto soft = [](std::vector<double> r) {
    double mx = std::max({r[0], r[1], r[2]}), s = 0;
    for (double& v : r) s += std::exp(v - mx);
    for (double& v : r) v = std::exp(v - mx) / s;
    return r;
  };
  std::vector<double> want = soft({1000, 1001, 1002}), w2 = soft({-5, 0, 5});
  want.insert(want.end(), w2.begin(), w2.end());
  ExpectNear(out[0], want, 1e-6);
  out = RunOp("LogSoftmax", {x}, {});
  std::vector<double> lw;
  for (double v : want) lw.push_back(std::log(v));
  ExpectNear(out[0], lw, 1e-6);
  // axis 0
  ir::AttrMap a;
  a.Set("axis", int64_t{0});
  out = RunOp("Softmax", {x}, a);
  std::vector<double> col;
  for (int j = 0; j < 3; ++j) {
    const double u = x.DoubleAt(j), v = x.DoubleAt(3 + j);
    const double mx = std::max(u, v);
    col.push_back(std::exp(u - mx) / (std::exp(u - mx) + std::exp(v - mx)));
  }
  for (int j = 0; j < 3; ++j) col.push_back(1 - col[static_cast<size_t>(j)]);
  ExpectNear(out[0], col, 1e-6);
}

TEST(NnNorm, LRNHandComputed) {
  Tensor x = F32({1, 1, 1, 4}, {1, 2, 3, 4});
  ir::AttrMap a;
  a.Set("depth_radius", int64_t{1});
  a.Set("bias", 1.0);
  a.Set("alpha", 0.5);
  a.Set("beta", 0.75);
  auto out = RunOp("LRN", {x}, a);
  const double sq[4] = {1 + 4, 1 + 4 + 9, 4 + 9 + 16, 9 + 16};
  std::vector<double> want;
  for (int i = 0; i < 4; ++i) want.push_back((i + 1) / std::pow(1 + 0.5 * sq[i], 0.75));
  ExpectNear(out[0], want);
}

}  // namespace
}  // namespace kiln
