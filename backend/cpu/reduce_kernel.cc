// cpu.Reduce: sum, mean, max or min over constant axes of a plain float32 tensor. Axes that are
// one contiguous run of dims (a channels-last tensor's H and W, a row's last dims) reduce as
// [outer, reduced, inner]: each output row accumulates the reduced rows in order, vectorized
// along inner, outer rows on oneDNN's OpenMP team (oneDNN 2.6's jit reduction takes only the
// innermost dims; other layouts get its reference kernel). Other axes: sums and means on
// oneDNN's reduction primitive (the output described with the reduced dims kept as 1, the same
// memory whether the node keeps them or not); max and min on the reference kernel (NaN
// propagates there, not in oneDNN's). The reference kernel also for empty inputs and what
// oneDNN has no primitive for.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>

#include "backend/cpu/kernels.h"
#include "backend/reference/kernel.h"

namespace kiln::backend::cpu {
namespace {

using memory = dnnl::memory;

class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(const ir::Node& node, std::shared_ptr<const KernelEnv> env)
      : node_(node),
        kind_(node.attrs.Get<std::string>("kind")),
        axes_(node.attrs.Get<std::vector<int64_t>>("axes")),
        keep_dims_(node.attrs.GetOr<bool>("keep_dims", false)),
        env_(std::move(env)) {
    if (kind_ == "sum")
      algorithm_ = dnnl::algorithm::reduction_sum;
    else if (kind_ == "mean")
      algorithm_ = dnnl::algorithm::reduction_mean;
    else if (kind_ == "max")
      algorithm_ = dnnl::algorithm::reduction_max;
    else if (kind_ == "min")
      algorithm_ = dnnl::algorithm::reduction_min;
    else
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): unknown reduction '{}'", node.name, node.op, kind_));
  }

  std::string Describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return DescribeShapeCache(
        cache_, [](const Prim& p) { return p.rows ? std::string("reduce-rows") : "onednn:" + p.impl; },
        "onednn reduction (no primitive yet)");
  }

  void Prepare(const std::vector<Shape>& shapes) override {
    if (NumElements(shapes.at(0)) > 0) Get(shapes[0]);
  }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext& ctx) const override {
    if (out.num_elements() == 0) return;
    std::shared_ptr<const Prim> prim = in[0].num_elements() > 0 ? Get(in[0].shape()) : nullptr;
    if (!prim) {
      ir::Node reference = node_;
      reference.op = "Reduce" + std::string(1, static_cast<char>(std::toupper(kind_[0]))) + kind_.substr(1);
      reference.attrs = ir::AttrMap();
      reference.attrs.Set("keep_dims", keep_dims_);
      const Tensor axes = Tensor::FromVector(DType::kInt64, {static_cast<int64_t>(axes_.size())}, axes_);
      const std::vector<Tensor> args = {in[0], axes};
      Tensor r = std::move(reference::RunReferenceKernel(reference, args, nullptr)[0]);
      std::copy_n(r.data<float>(), r.num_elements(), out.data<float>());
      return;
    }
    if (prim->rows) {
      RunRows(*prim, in[0].data<float>(), out.data<float>());
      return;
    }
    memory src(prim->src_md, env_->engine, const_cast<void*>(in[0].raw_data()));
    memory dst(prim->dst_md, env_->engine, out.raw_data());
    prim->prim.execute(ctx.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    ctx.stream.wait();
  }

 private:
  struct Prim {
    dnnl::reduction prim;
    memory::desc src_md, dst_md;
    std::string impl;
    bool rows = false;  // contiguous axes: [outer, reduced, inner] (RunRows)
    int64_t outer = 1, reduced = 1, inner = 1;
  };

  // Sums over the last dim alone (a decomposed layer norm's mean and variance, [rows, 64]): one
  // sequential double sum per row is latency-bound, so kRows rows are summed side by side, each
  // still in its own order (the reference's values, bit for bit).
  static void SumLastDim(const float* x, float* y, int64_t rows, int64_t reduced, double scale) {
    constexpr int64_t kRows = 8;
    const int64_t groups = (rows + kRows - 1) / kRows;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (rows * reduced >= (int64_t{1} << 15))
#endif
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t first = g * kRows, count = std::min(kRows, rows - first);
      double sums[kRows] = {};
      const float* xg = x + first * reduced;
      if (count == kRows) {
        for (int64_t r = 0; r < reduced; ++r)
          for (int64_t j = 0; j < kRows; ++j) sums[j] += xg[j * reduced + r];
      } else {
        for (int64_t j = 0; j < count; ++j)
          for (int64_t r = 0; r < reduced; ++r) sums[j] += xg[j * reduced + r];
      }
      for (int64_t j = 0; j < count; ++j) y[first + j] = static_cast<float>(sums[j] * scale);
    }
  }

  // As the reference kernel: sums in double; max / min start from -inf / +inf and a NaN wins.
  void RunRows(const Prim& p, const float* x, float* y) const {
    const bool is_max = kind_ == "max", is_min = kind_ == "min";
    const int64_t outer = p.outer, reduced = p.reduced, inner = p.inner;
    const double mean_scale = kind_ == "mean" ? 1.0 / static_cast<double>(reduced) : 1.0;
    if (inner == 1 && !is_max && !is_min) {
      SumLastDim(x, y, outer, reduced, mean_scale);
      return;
    }
#if defined(_OPENMP)
#pragma omp parallel if (outer * reduced * inner >= (int64_t{1} << 15))
#endif
    {
      std::vector<double> acc(static_cast<size_t>(inner));
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
      for (int64_t o = 0; o < outer; ++o) {
        const float* xo = x + o * reduced * inner;
        float* yo = y + o * inner;
        if (is_max || is_min) {
          const float init = is_max ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
          std::fill(yo, yo + inner, init);
          for (int64_t r = 0; r < reduced; ++r) {
            const float* xr = xo + r * inner;
            for (int64_t i = 0; i < inner; ++i) {
              const float v = xr[i], a = yo[i];
              yo[i] = v != v ? v : (a == a && (is_max ? v > a : v < a)) ? v : a;
            }
          }
          continue;
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t r = 0; r < reduced; ++r) {
          const float* xr = xo + r * inner;
          for (int64_t i = 0; i < inner; ++i) acc[static_cast<size_t>(i)] += xr[i];
        }
        for (int64_t i = 0; i < inner; ++i) yo[i] = static_cast<float>(acc[static_cast<size_t>(i)] * mean_scale);
      }
    }
  }

  static memory::desc Plain(const memory::dims& dims) {
    memory::dims strides(dims.size());
    int64_t stride = 1;
    for (size_t d = dims.size(); d-- > 0;) {
      strides[d] = stride;
      stride *= dims[d];
    }
    return memory::desc(dims, memory::data_type::f32, strides);
  }

  std::shared_ptr<const Prim> Get(const Shape& shape) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(shape); it != cache_.end()) return it->second;
    std::shared_ptr<Prim> p;
    if (!shape.empty() && shape.size() <= DNNL_MAX_NDIMS) {
      memory::dims src(shape.begin(), shape.end()), dst = src;
      bool ok = true;
      for (int64_t a : axes_) {
        if (a < 0 || a >= static_cast<int64_t>(shape.size()))
          ok = false;
        else
          dst[static_cast<size_t>(a)] = 1;
      }
      // Contiguous axes: [outer, reduced, inner].
      bool contiguous = ok && !axes_.empty();
      for (size_t k = 1; contiguous && k < axes_.size(); ++k) contiguous = axes_[k] == axes_[k - 1] + 1;
      if (contiguous) {
        p = std::make_shared<Prim>();
        p->rows = true;
        p->impl = "rows";
        for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
          const int64_t n = shape[static_cast<size_t>(d)];
          if (d < axes_.front())
            p->outer *= n;
          else if (d <= axes_.back())
            p->reduced *= n;
          else
            p->inner *= n;
        }
      }
      // oneDNN reduces only where the dims differ: a reduced dim of size 1 is a copy either way.
      // oneDNN's max / min do not propagate NaN as the reference does: those stay there.
      if (!p && ok && src != dst && (kind_ == "sum" || kind_ == "mean")) {
        try {
          p = std::make_shared<Prim>();
          p->src_md = Plain(src);
          p->dst_md = Plain(dst);
          dnnl::reduction::primitive_desc pd(dnnl::reduction::desc(algorithm_, p->src_md, p->dst_md, 0.f, 0.f),
                                             env_->engine);
          p->impl = pd.impl_info_str();
          p->prim = dnnl::reduction(pd);
        } catch (const dnnl::error&) {
          p = nullptr;  // no oneDNN reduction for this shape: the reference kernel
        }
      }
    }
    cache_.emplace(shape, p);
    return p;
  }

  ir::Node node_;
  std::string kind_;
  std::vector<int64_t> axes_;  // normalized, sorted, distinct
  bool keep_dims_;
  dnnl::algorithm algorithm_ = dnnl::algorithm::reduction_sum;
  std::shared_ptr<const KernelEnv> env_;
  mutable std::mutex mu_;
  mutable std::map<Shape, std::shared_ptr<Prim>> cache_;
};

}  // namespace

std::unique_ptr<Kernel> MakeReduceKernel(const ir::Node& node, std::shared_ptr<const KernelEnv> env) {
  return std::make_unique<ReduceKernel>(node, std::move(env));
}

}  // namespace kiln::backend::cpu
