// cpu.LayerNorm: float32 layer normalization, one row (the dims from `axis` on) at a time: mean,
// then the variance of the centred values (two passes over a row that stays in cache, no
// cancellation; both summed in double, as the reference kernel does: float sums of a row offset
// far from zero lose the mean's low bits), then (x - mean) * rsqrt(var + eps) * scale + bias in
// float with the scale and bias expanded to one row once. Rows split over oneDNN's OpenMP team
// when the build has OpenMP.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include "backend/cpu/kernels.h"

namespace kiln::backend::cpu {
namespace {

class LayerNormKernel final : public Kernel {
 public:
  LayerNormKernel(const ir::Graph& graph, const ir::Node& node)
      : name_(node.name),
        axis_(node.attrs.GetOr<int64_t>("axis", -1)),
        epsilon_(node.attrs.GetOr<double>("epsilon", 1e-5)) {
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      const Tensor* c = graph.ConstantOf(node.inputs[i]);
      if (!c || c->dtype() != DType::kFloat32)
        throw Error(ErrorCode::kInternal,
                    fmt::format("node '{}' ({}): input {} must be a float32 constant", node.name, node.op, i));
      (i == 1 ? scale_ : bias_) = *c;
    }
  }

  std::string Describe() const override { return "layer-norm-rows"; }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    const Tensor& x = in[0];
    const int64_t rank = x.rank();
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis >= rank)
      throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}': axis {} is out of range for input {}", name_,
                                                           axis_, ShapeToString(x.shape())));
    int64_t row = 1;
    for (int64_t d = axis; d < rank; ++d) row *= x.dim(static_cast<int>(d));
    if (row == 0 || x.num_elements() == 0) return;
    const int64_t rows = x.num_elements() / row;
    const Shape normalized(x.shape().begin() + axis, x.shape().end());
    const std::shared_ptr<const Rows> expanded = RowsFor(normalized);
    const std::vector<float>& scale = expanded->scale;
    const std::vector<float>& bias = expanded->bias;
    const float* src = x.data<float>();
    float* dst = out.data<float>();
    const float eps = static_cast<float>(epsilon_);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (x.num_elements() >= (int64_t{1} << 14))
#endif
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = src + r * row;
      float* yr = dst + r * row;
      double sum = 0;
      for (int64_t j = 0; j < row; ++j) sum += xr[j];
      const double mean_d = sum / static_cast<double>(row);
      const float mean = static_cast<float>(mean_d);
      double sq = 0;
      for (int64_t j = 0; j < row; ++j) {
        const double d = xr[j] - mean_d;
        sq += d * d;
      }
      const float inv = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(row) + eps));
      for (int64_t j = 0; j < row; ++j)
        yr[j] = (xr[j] - mean) * inv * scale[static_cast<size_t>(j)] + bias[static_cast<size_t>(j)];
    }
  }

 private:
  // A constant that broadcasts into the normalized dims, as one row (`fill` when absent).
  std::vector<float> Expand(const std::optional<Tensor>& t, const Shape& dims, float fill) const {
    const int64_t n = NumElements(dims);
    std::vector<float> out(static_cast<size_t>(n), fill);
    if (!t) return out;
    const Shape& s = t->shape();
    if (s.size() > dims.size())
      throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}': scale/bias {} does not broadcast into {}", name_,
                                                           ShapeToString(s), ShapeToString(dims)));
    const size_t off = dims.size() - s.size();
    for (int64_t e = 0; e < n; ++e) {
      int64_t rem = e, src = 0, stride = 1;
      for (size_t d = dims.size(); d-- > 0;) {
        const int64_t i = rem % dims[d];
        rem /= dims[d];
        if (d >= off) {
          const int64_t sd = s[d - off];
          if (sd != 1 && sd != dims[d])
            throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}': scale/bias {} does not broadcast into {}",
                                                                 name_, ShapeToString(s), ShapeToString(dims)));
          if (sd != 1) src += i * stride;
          stride *= sd;
        }
      }
      out[static_cast<size_t>(e)] = t->data<float>()[src];
    }
    return out;
  }

  // The scale and bias as rows of the normalized dims, made once per normalized shape.
  struct Rows {
    std::vector<float> scale, bias;
  };
  std::shared_ptr<const Rows> RowsFor(const Shape& normalized) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rows_.find(normalized);
    if (it == rows_.end())
      it = rows_
               .emplace(normalized, std::make_shared<const Rows>(
                                        Rows{Expand(scale_, normalized, 1.0f), Expand(bias_, normalized, 0.0f)}))
               .first;
    return it->second;
  }

  std::string name_;
  int64_t axis_;
  double epsilon_;
  std::optional<Tensor> scale_, bias_;
  mutable std::mutex mu_;
  mutable std::map<Shape, std::shared_ptr<const Rows>> rows_;
};

}  // namespace

std::unique_ptr<Kernel> MakeLayerNormKernel(const ir::Graph& graph, const ir::Node& node) {
  return std::make_unique<LayerNormKernel>(graph, node);
}

}  // namespace kiln::backend::cpu
