// cpu.Softmax: oneDNN's softmax_forward / logsoftmax_forward along one axis of a plain float32
// tensor (vectorized, on oneDNN's threads), a primitive per input shape; the reference kernel
// where oneDNN has none.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "backend/cpu/kernels.h"
#include "backend/reference/kernel.h"

namespace kiln::backend::cpu {
namespace {

using memory = dnnl::memory;

class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(const ir::Node& node, std::shared_ptr<const KernelEnv> env)
      : node_(node),
        axis_(node.attrs.Get<int64_t>("axis")),
        log_(node.attrs.GetOr<bool>("log", false)),
        env_(std::move(env)) {}

  std::string Describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return DescribeShapeCache(
        cache_, [](const Prim& p) { return "onednn:" + p.impl; }, "onednn softmax (no primitive yet)");
  }

  void Prepare(const std::vector<Shape>& shapes) override {
    if (NumElements(shapes.at(0)) > 0) Get(shapes[0]);
  }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext& ctx) const override {
    if (out.num_elements() == 0) return;
    std::shared_ptr<const Prim> prim = Get(in[0].shape());
    if (!prim) {
      ir::Node reference = node_;
      reference.op = log_ ? "LogSoftmax" : "Softmax";
      reference.attrs = ir::AttrMap();
      reference.attrs.Set("axis", axis_);
      Tensor r = std::move(reference::RunReferenceKernel(reference, in.subspan(0, 1), nullptr)[0]);
      std::copy_n(r.data<float>(), r.num_elements(), out.data<float>());
      return;
    }
    memory src(prim->md, env_->engine, const_cast<void*>(in[0].raw_data()));
    memory dst(prim->md, env_->engine, out.raw_data());
    prim->prim.execute(ctx.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    ctx.stream.wait();
  }

 private:
  struct Prim {
    dnnl::primitive prim;
    memory::desc md;
    std::string impl;
  };

  std::shared_ptr<const Prim> Get(const Shape& shape) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(shape); it != cache_.end()) return it->second;
    std::shared_ptr<Prim> p;
    if (!shape.empty() && shape.size() <= DNNL_MAX_NDIMS && axis_ >= 0 && axis_ < static_cast<int64_t>(shape.size())) {
      try {
        p = std::make_shared<Prim>();
        memory::dims dims(shape.begin(), shape.end()), strides(shape.size());
        int64_t stride = 1;
        for (size_t d = shape.size(); d-- > 0;) {
          strides[d] = stride;
          stride *= shape[d];
        }
        p->md = memory::desc(dims, memory::data_type::f32, strides);
        const int axis = static_cast<int>(axis_);
        if (log_) {
          dnnl::logsoftmax_forward::primitive_desc pd(
              dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, p->md, axis), env_->engine);
          p->impl = pd.impl_info_str();
          p->prim = dnnl::logsoftmax_forward(pd);
        } else {
          dnnl::softmax_forward::primitive_desc pd(
              dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, p->md, axis), env_->engine);
          p->impl = pd.impl_info_str();
          p->prim = dnnl::softmax_forward(pd);
        }
      } catch (const dnnl::error&) {
        p = nullptr;  // no oneDNN softmax for this shape: the reference kernel
      }
    }
    cache_.emplace(shape, p);
    return p;
  }

  ir::Node node_;
  int64_t axis_;  // normalized, 0 <= axis < rank
  bool log_;
  std::shared_ptr<const KernelEnv> env_;
  mutable std::mutex mu_;
  mutable std::map<Shape, std::shared_ptr<Prim>> cache_;
};

}  // namespace

std::unique_ptr<Kernel> MakeSoftmaxKernel(const ir::Node& node, std::shared_ptr<const KernelEnv> env) {
  return std::make_unique<SoftmaxKernel>(node, std::move(env));
}

}  // namespace kiln::backend::cpu
