// Reference kernels: BatchNorm (inference and training statistics), LayerNorm, Softmax,
// LogSoftmax, LRN.
#include <cmath>
#include <limits>
#include <span>

#include <fmt/format.h>

#include "backend/reference/nn_common.h"

namespace kiln::reference::nn {
namespace {

void BatchNormKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const ir::AttrMap& a = ctx.attrs();
  if (x.rank() < 1) ctx.Fail(fmt::format("expected an input of rank >= 1, got {}", ShapeStr(x.shape())));
  const int64_t axis_attr = a.GetOr<int64_t>("axis", -1);
  const int64_t axis = axis_attr < 0 ? axis_attr + x.rank() : axis_attr;
  if (axis < 0 || axis >= x.rank()) ctx.Fail(fmt::format("axis {} is out of range for input {}", axis_attr, ShapeStr(x.shape())));
  const bool training = a.GetOr<bool>("training", false);
  const double eps = a.GetOr<double>("epsilon", 1e-4);
  const double factor = a.GetOr<double>("exponential_avg_factor", 1.0);
  const int64_t C = x.dim(static_cast<int>(axis));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int i = static_cast<int>(axis) + 1; i < x.rank(); ++i) inner *= x.dim(i);
  const char* names[] = {"x", "scale", "offset", "mean", "variance"};
  // In training with exponential_avg_factor == 1, TF accepts empty mean/variance.
  const bool stats_optional = training && factor == 1.0;
  for (int i = 1; i < 5; ++i) {
    const Tensor& p = ctx.input(i);
    if (stats_optional && i >= 3 && p.num_elements() == 0) continue;
    if (p.rank() != 1 || p.dim(0) != C)
      ctx.Fail(fmt::format("{} must have shape [{}] (the channel dim of x {}), got {}", names[i], C, ShapeStr(x.shape()),
                           ShapeStr(p.shape())));
    if (!IsFloating(p.dtype())) ctx.Fail(fmt::format("{} must be floating, got {}", names[i], DTypeName(p.dtype())));
  }
  if (!IsFloating(x.dtype())) ctx.Fail(fmt::format("x must be floating, got {}", DTypeName(x.dtype())));
  const std::vector<double> xs = LoadAs<double>(x, "BatchNorm");
  const std::vector<double> scale = LoadAs<double>(ctx.input(1), "BatchNorm"), offset = LoadAs<double>(ctx.input(2), "BatchNorm");
  std::vector<double> mean = LoadAs<double>(ctx.input(3), "BatchNorm"), var = LoadAs<double>(ctx.input(4), "BatchNorm");
  const std::vector<double> old_mean = mean, old_var = var;
  const int64_t rest = outer * inner;
  if (training) {
    mean.assign(static_cast<size_t>(C), 0.0);
    var.assign(static_cast<size_t>(C), 0.0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < inner; ++i) mean[static_cast<size_t>(c)] += xs[static_cast<size_t>((o * C + c) * inner + i)];
    for (double& m : mean) m = rest > 0 ? m / static_cast<double>(rest) : std::numeric_limits<double>::quiet_NaN();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < inner; ++i) {
          const double d = xs[static_cast<size_t>((o * C + c) * inner + i)] - mean[static_cast<size_t>(c)];
          var[static_cast<size_t>(c)] += d * d;
        }
    for (double& v : var) v = rest > 0 ? v / static_cast<double>(rest) : std::numeric_limits<double>::quiet_NaN();
  }
  std::vector<double> mul(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const size_t k = static_cast<size_t>(c);
    mul[k] = scale[k] / std::sqrt(var[k] + eps);
  }
  std::vector<double> ys(xs.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const size_t k = static_cast<size_t>(c);
      for (int64_t i = 0; i < inner; ++i) {
        const size_t idx = static_cast<size_t>((o * C + c) * inner + i);
        ys[idx] = (xs[idx] - mean[k]) * mul[k] + offset[k];
      }
    }
  StoreFrom(ys.data(), ctx.AllocateOutput(0, x.dtype(), x.shape()), "BatchNorm");
  // Extra outputs: running mean/variance, then batch mean/variance (biased).
  const DType pdtype = ctx.input(1).dtype();
  std::vector<double> run_mean = mean, run_var = var;
  if (training) {
    const double adjust = static_cast<double>(rest) / static_cast<double>(rest > 1 ? rest - 1 : 1);
    for (int64_t c = 0; c < C; ++c) {
      const size_t k = static_cast<size_t>(c);
      if (factor == 1.0) {
        run_var[k] = var[k] * adjust;
      } else {
        run_mean[k] = (1 - factor) * old_mean[k] + factor * mean[k];
        run_var[k] = (1 - factor) * old_var[k] + factor * adjust * var[k];
      }
    }
  }
  const std::vector<double>* extra[] = {&run_mean, &run_var, &mean, &var};
  for (int i = 1; i < ctx.num_outputs() && i <= 4; ++i)
    StoreFrom(extra[i - 1]->data(), ctx.AllocateOutput(i, pdtype, {C}), "BatchNorm");
}
KILN_REFERENCE_KERNEL("BatchNorm", BatchNormKernel);

// `param` (right-aligned, broadcasting) expanded to one value per element of `dims`.
std::vector<double> ExpandInto(const Tensor& param, std::span<const int64_t> dims, const char* what) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  const std::vector<double> p = LoadAs<double>(param, what);
  std::vector<double> out(static_cast<size_t>(n));
  const int offset = static_cast<int>(dims.size()) - param.rank();
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t rest = flat, index = 0, stride = 1;
    for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
      const int64_t i = rest % dims[static_cast<size_t>(d)];
      rest /= dims[static_cast<size_t>(d)];
      if (d < offset) continue;
      const int64_t pd = param.dim(d - offset);
      index += (pd == 1 ? 0 : i) * stride;
      stride *= pd;
    }
    out[static_cast<size_t>(flat)] = p[static_cast<size_t>(index)];
  }
  return out;
}

// LayerNorm: each slice over dims [axis, rank) normalized with a two-pass mean and variance in
// double, then scaled and shifted.
void LayerNormKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 1) ctx.Fail(fmt::format("expected an input of rank >= 1, got {}", ShapeStr(x.shape())));
  if (!IsFloating(x.dtype())) ctx.Fail(fmt::format("dtype {} is not supported (expected a floating type)", DTypeName(x.dtype())));
  const int64_t axis_attr = ctx.attrs().GetOr<int64_t>("axis", -1);
  const int64_t axis = axis_attr < 0 ? axis_attr + x.rank() : axis_attr;
  if (axis < 0 || axis >= x.rank()) ctx.Fail(fmt::format("axis {} is out of range for input {}", axis_attr, ShapeStr(x.shape())));
  const double eps = ctx.attrs().GetOr<double>("epsilon", 1e-5);
  const std::span<const int64_t> dims(x.shape().data() + axis, x.shape().size() - static_cast<size_t>(axis));
  int64_t outer = 1, n = 1;
  for (int i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int64_t d : dims) n *= d;
  for (int i = 1; i < ctx.num_inputs(); ++i) {
    const Tensor& p = ctx.input(i);
    bool fits = p.rank() <= static_cast<int>(dims.size()) && p.dtype() == x.dtype();
    for (int d = 0; fits && d < p.rank(); ++d) {
      const int64_t want = dims[dims.size() - static_cast<size_t>(p.rank()) + static_cast<size_t>(d)];
      fits = p.dim(d) == 1 || p.dim(d) == want;
    }
    if (!fits)
      ctx.Fail(fmt::format("input {} ({} {}) does not broadcast into the normalized dims of {} {}", i,
                           DTypeName(p.dtype()), ShapeStr(p.shape()), DTypeName(x.dtype()), ShapeStr(x.shape())));
  }
  const std::vector<double> scale = ctx.num_inputs() > 1 ? ExpandInto(ctx.input(1), dims, "LayerNorm") : std::vector<double>();
  const std::vector<double> bias = ctx.num_inputs() > 2 ? ExpandInto(ctx.input(2), dims, "LayerNorm") : std::vector<double>();
  const std::vector<double> xs = LoadAs<double>(x, "LayerNorm");
  std::vector<double> ys(xs.size());
  for (int64_t o = 0; o < outer; ++o) {
    const size_t base = static_cast<size_t>(o * n);
    double mean = 0, var = 0;
    for (int64_t j = 0; j < n; ++j) mean += xs[base + static_cast<size_t>(j)];
    mean /= static_cast<double>(n);
    for (int64_t j = 0; j < n; ++j) {
      const double d = xs[base + static_cast<size_t>(j)] - mean;
      var += d * d;
    }
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
    for (int64_t j = 0; j < n; ++j) {
      const size_t k = base + static_cast<size_t>(j);
      double y = (xs[k] - mean) * inv;
      if (!scale.empty()) y *= scale[static_cast<size_t>(j)];
      if (!bias.empty()) y += bias[static_cast<size_t>(j)];
      ys[k] = y;
    }
  }
  StoreFrom(ys.data(), ctx.AllocateOutput(0, x.dtype(), x.shape()), "LayerNorm");
}
KILN_REFERENCE_KERNEL("LayerNorm", LayerNormKernel);

template <bool kLog>
void SoftmaxKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 1) ctx.Fail(fmt::format("expected an input of rank >= 1, got {}", ShapeStr(x.shape())));
  const int64_t axis_attr = ctx.attrs().GetOr<int64_t>("axis", -1);
  const int64_t axis = axis_attr < 0 ? axis_attr + x.rank() : axis_attr;
  if (axis < 0 || axis >= x.rank()) ctx.Fail(fmt::format("axis {} is out of range for input {}", axis_attr, ShapeStr(x.shape())));
  if (!IsFloating(x.dtype())) ctx.Fail(fmt::format("dtype {} is not supported (expected a floating type)", DTypeName(x.dtype())));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int i = static_cast<int>(axis) + 1; i < x.rank(); ++i) inner *= x.dim(i);
  const int64_t n = x.dim(static_cast<int>(axis));
  const std::vector<double> xs = LoadAs<double>(x, "Softmax");
  std::vector<double> ys(xs.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, xs[static_cast<size_t>(base + j * inner)]);
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(xs[static_cast<size_t>(base + j * inner)] - mx);
      const double log_sum = std::log(sum);
      for (int64_t j = 0; j < n; ++j) {
        const size_t k = static_cast<size_t>(base + j * inner);
        ys[k] = kLog ? (xs[k] - mx) - log_sum : std::exp(xs[k] - mx) / sum;
      }
    }
  StoreFrom(ys.data(), ctx.AllocateOutput(0, x.dtype(), x.shape()), "Softmax");
}
KILN_REFERENCE_KERNEL("Softmax", SoftmaxKernel<false>);
KILN_REFERENCE_KERNEL("LogSoftmax", SoftmaxKernel<true>);

// out = x / (bias + alpha * sum_{|j-d| <= r} x_j^2) ^ beta over the last axis.
void LRNKernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() != 4) ctx.Fail(fmt::format("expected a 4-D input, got {}", ShapeStr(x.shape())));
  if (!IsFloating(x.dtype())) ctx.Fail(fmt::format("dtype {} is not supported (expected a floating type)", DTypeName(x.dtype())));
  const ir::AttrMap& a = ctx.attrs();
  const int64_t r = a.GetOr<int64_t>("depth_radius", 5);
  const double bias = a.GetOr<double>("bias", 1.0), alpha = a.GetOr<double>("alpha", 1.0), beta = a.GetOr<double>("beta", 0.5);
  if (r < 0) ctx.Fail(fmt::format("depth_radius must be non-negative, got {}", r));
  const int64_t D = x.dim(3), rows = x.num_elements() / std::max<int64_t>(D, 1);
  const std::vector<double> xs = LoadAs<double>(x, "LRN");
  std::vector<double> ys(xs.size());
  for (int64_t p = 0; p < rows; ++p) {
    const double* xr = xs.data() + p * D;
    for (int64_t d = 0; d < D; ++d) {
      double sq = 0;
      for (int64_t j = std::max<int64_t>(0, d - r); j <= std::min(D - 1, d + r); ++j) sq += xr[j] * xr[j];
      ys[static_cast<size_t>(p * D + d)] = xr[d] / std::pow(bias + alpha * sq, beta);
    }
  }
  StoreFrom(ys.data(), ctx.AllocateOutput(0, x.dtype(), x.shape()), "LRN");
}
KILN_REFERENCE_KERNEL("LRN", LRNKernel);

}  // namespace

}  // namespace kiln::reference::nn
