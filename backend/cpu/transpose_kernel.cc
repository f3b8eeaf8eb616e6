// cpu.Transpose: a oneDNN reorder from the input viewed through permuted strides to the plain
// output (oneDNN's jit reorders run blocked and in parallel, on oneDNN's threads).
#include <fmt/format.h>

#include <map>
#include <mutex>

#include "backend/cpu/kernels.h"
#include "backend/reference/kernel.h"

namespace kiln::backend::cpu {
namespace {

using memory = dnnl::memory;

memory::data_type DnnlType(DType t) {
  switch (t) {
    case DType::kFloat32:
      return memory::data_type::f32;
    case DType::kBFloat16:
      return memory::data_type::bf16;
    case DType::kFloat16:
      return memory::data_type::f16;
    case DType::kInt8:
      return memory::data_type::s8;
    case DType::kUInt8:
      return memory::data_type::u8;
    case DType::kInt32:
      return memory::data_type::s32;
    default:
      return memory::data_type::undef;
  }
}

class TransposeKernel final : public Kernel {
 public:
  TransposeKernel(const ir::Graph& graph, const ir::Node& node, std::shared_ptr<const KernelEnv> env)
      : node_(node),
        perm_(node.attrs.Get<std::vector<int64_t>>("perm")),
        dtype_(graph.value(node.inputs.at(0)).dtype),
        env_(std::move(env)) {}

  std::string Describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return DescribeShapeCache(
        cache_, [](const Prim& p) { return "onednn-reorder:" + p.impl; }, "onednn reorder (no primitive yet)");
  }

  void Prepare(const std::vector<Shape>& shapes) override {
    if (NumElements(shapes.at(0)) > 0) Get(shapes[0]);
  }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext& ctx) const override {
    if (out.num_elements() == 0) return;
    std::shared_ptr<const Prim> prim = in[0].dtype() == dtype_ ? Get(in[0].shape()) : nullptr;
    if (!prim) {
      ir::Node reference = node_;
      reference.op = "Transpose";
      Tensor perm = Tensor::FromVector(DType::kInt64, {static_cast<int64_t>(perm_.size())}, perm_);
      const std::vector<Tensor> args = {in[0], perm};
      Tensor r = std::move(reference::RunReferenceKernel(reference, args, nullptr)[0]);
      std::memcpy(out.raw_data(), r.raw_data(), r.num_elements() * DTypeSize(r.dtype()));
      return;
    }
    memory src(prim->src_md, env_->engine, const_cast<void*>(in[0].raw_data()));
    memory dst(prim->dst_md, env_->engine, out.raw_data());
    prim->reorder.execute(ctx.stream, src, dst);
    ctx.stream.wait();
  }

 private:
  struct Prim {
    dnnl::reorder reorder;
    memory::desc src_md, dst_md;
    std::string impl;
  };

  std::shared_ptr<const Prim> Get(const Shape& shape) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(shape); it != cache_.end()) return it->second;
    std::shared_ptr<Prim> p;
    const memory::data_type dt = DnnlType(dtype_);
    if (dt != memory::data_type::undef && perm_.size() == shape.size()) {
      // Output dim i is input dim perm[i]: the source view has the output's dims and the input's
      // strides taken in perm order.
      memory::dims in_strides(shape.size()), dims, strides;
      int64_t stride = 1;
      for (size_t d = shape.size(); d-- > 0;) {
        in_strides[d] = stride;
        stride *= shape[d];
      }
      for (int64_t a : perm_) {
        dims.push_back(shape[static_cast<size_t>(a)]);
        strides.push_back(in_strides[static_cast<size_t>(a)]);
      }
      try {
        p = std::make_shared<Prim>();
        p->src_md = memory::desc(dims, dt, strides);
        memory::dims plain(dims.size());
        stride = 1;
        for (size_t d = dims.size(); d-- > 0;) {
          plain[d] = stride;
          stride *= dims[d];
        }
        p->dst_md = memory::desc(dims, dt, plain);
        dnnl::reorder::primitive_desc pd(env_->engine, p->src_md, env_->engine, p->dst_md);
        p->impl = pd.impl_info_str();
        p->reorder = dnnl::reorder(pd);
      } catch (const dnnl::error&) {
        p = nullptr;  // no oneDNN reorder for this view: the reference kernel
      }
    }
    cache_.emplace(shape, p);
    return p;
  }

  ir::Node node_;
  std::vector<int64_t> perm_;
  DType dtype_;  // of the input, as the plan says
  std::shared_ptr<const KernelEnv> env_;
  mutable std::mutex mu_;
  mutable std::map<Shape, std::shared_ptr<Prim>> cache_;
};

}  // namespace

std::unique_ptr<Kernel> MakeTransposeKernel(const ir::Graph& graph, const ir::Node& node,
                                            std::shared_ptr<const KernelEnv> env) {
  return std::make_unique<TransposeKernel>(graph, node, std::move(env));
}

}  // namespace kiln::backend::cpu
