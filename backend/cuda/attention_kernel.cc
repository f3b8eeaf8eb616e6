#include "backend/cuda/attention_kernel.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kiln/error.h"

#ifdef KILN_WITH_CUDNN

#include <cudnn.h>
#include <cudnn_frontend.h>

#include <map>
#include <mutex>
#include <unordered_map>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cudnn_util.h"

namespace kiln::backend::cuda {
namespace {

namespace fe = cudnn_frontend;

// Candidate plans timed per attention shape.
constexpr int64_t kTunedAttentionCandidates = 8;

std::vector<int64_t> ContiguousStrides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * std::max<int64_t>(shape[i], 1);
  return s;
}

// The [b, h, s, d] dims and strides of a stored tensor read through `dims`.
void Logical(const Shape& stored, const std::array<int, 4>& dims, std::vector<int64_t>* d, std::vector<int64_t>* s) {
  if (stored.size() != 4) throw Error(ErrorCode::kInternal, "fused attention: operands must be 4-D");
  const std::vector<int64_t> strides = ContiguousStrides(stored);
  d->clear();
  s->clear();
  for (int i = 0; i < 4; ++i) {
    d->push_back(stored[static_cast<size_t>(dims[static_cast<size_t>(i)])]);
    s->push_back(strides[static_cast<size_t>(dims[static_cast<size_t>(i)])]);
  }
}

}  // namespace

struct AttentionKernel::Impl {
  AttentionMatch match;
  DType dtype = DType::kFloat16;
  std::string name;
  int device = 0;
  cudnnHandle_t handle = nullptr;

  struct Plan {
    std::shared_ptr<fe::graph::Graph> graph;
    std::shared_ptr<fe::graph::Tensor_attributes> q, k, v, bias, o;
    int64_t workspace = 0;
  };
  mutable std::mutex mu;  // plans and the handle
  mutable std::map<std::vector<Shape>, std::unique_ptr<Plan>> plans;

  Plan& PlanFor(const Shape& q, const Shape& k, const Shape& v, const Shape* bias, const Shape& out) const;
};

AttentionKernel::AttentionKernel(const AttentionMatch& match, DType dtype, std::string name, int device)
    : impl_(std::make_unique<Impl>()) {
  impl_->match = match;
  impl_->dtype = dtype;
  impl_->name = std::move(name);
  impl_->device = device;
  if (dtype != DType::kFloat16 && dtype != DType::kBFloat16)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("'{}': fused attention takes float16/bfloat16, not {}", impl_->name, DTypeName(dtype)));
  impl_->handle = NewCudnnHandle(device);
}

AttentionKernel::~AttentionKernel() {
  if (impl_ && impl_->handle) cudnnDestroy(impl_->handle);
}

const AttentionMatch& AttentionKernel::match() const { return impl_->match; }

void AttentionKernel::CheckShapes(const std::vector<std::optional<Shape>>& shapes) const {
  const AttentionMatch& m = impl_->match;
  if (m.reshaped == ir::kNoValue) return;
  const auto& from = shapes[static_cast<size_t>(m.product)];
  const auto& to = shapes[static_cast<size_t>(m.reshaped)];
  if (!from || !to || *from != *to)
    throw Error(ErrorCode::kUnavailable,
                fmt::format("fused attention '{}': the Reshape after the product changes its shape {} to {}",
                            impl_->name, from ? ShapeToString(*from) : "?", to ? ShapeToString(*to) : "?"));
}

AttentionKernel::Impl::Plan& AttentionKernel::Impl::PlanFor(const Shape& q_shape, const Shape& k_shape,
                                                            const Shape& v_shape, const Shape* bias_shape,
                                                            const Shape& out_shape) const {
  std::vector<Shape> key = {q_shape, k_shape, v_shape, out_shape};
  if (bias_shape) key.push_back(*bias_shape);
  auto& slot = plans[key];
  if (slot) return *slot;
  auto plan = std::make_unique<Plan>();
  auto g = std::make_shared<fe::graph::Graph>();
  const fe::DataType_t io = dtype == DType::kFloat16 ? fe::DataType_t::HALF : fe::DataType_t::BFLOAT16;
  g->set_io_data_type(io)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  std::vector<int64_t> d, s;
  auto tensor = [&](const char* label, const Shape& stored, const std::array<int, 4>& dims) {
    Logical(stored, dims, &d, &s);
    return g->tensor(fe::graph::Tensor_attributes().set_name(label).set_dim(d).set_stride(s));
  };
  plan->q = tensor("Q", q_shape, match.q.dims);
  plan->k = tensor("K", k_shape, match.k.dims);
  plan->v = tensor("V", v_shape, match.v.dims);
  auto attrs = fe::graph::SDPA_attributes().set_name("attention").set_generate_stats(false).set_attn_scale(match.scale);
  if (bias_shape) {
    // Right-aligned to [b, h, s_q, s_kv]; dims of 1 broadcast.
    Shape b4(4 - bias_shape->size(), 1);
    b4.insert(b4.end(), bias_shape->begin(), bias_shape->end());
    std::vector<int64_t> scores;
    Logical(q_shape, match.q.dims, &scores, &s);
    std::vector<int64_t> kd;
    Logical(k_shape, match.k.dims, &kd, &s);
    scores[3] = kd[2];
    for (size_t i = 0; i < 4; ++i)
      if (b4[i] != 1 && b4[i] != scores[i])
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("'{}': the attention bias {} does not broadcast into the scores [{}]", name,
                                ShapeToString(*bias_shape), fmt::join(scores, ",")));
    plan->bias = tensor("bias", b4, {0, 1, 2, 3});
    attrs.set_bias(plan->bias);
  }
  auto [o, stats] = g->sdpa(plan->q, plan->k, plan->v, attrs);
  Logical(out_shape, match.out.dims, &d, &s);
  o->set_output(true).set_dim(d).set_stride(s).set_data_type(io);
  plan->o = o;
  const std::string what =
      fmt::format("'{}', Q {} K {} V {}", name, ShapeToString(q_shape), ShapeToString(k_shape), ShapeToString(v_shape));
  CheckFe(g->validate(), "validate (fused attention " + what + ")");
  CheckFe(g->build_operation_graph(handle), "build_operation_graph (fused attention " + what + ")");
  CheckFe(g->create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}),
          "create_execution_plans (fused attention " + what + ")");
  CheckFe(g->check_support(handle), "check_support (fused attention " + what + ")");
  auto count = [](const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  };
  std::string problem = fmt::format("sdpa {} q[{}]/{} k[{}]/{} v[{}]/{} o[{}]/{} scale {:.9g}", DTypeName(dtype),
                                    fmt::join(q_shape, ","), fmt::join(match.q.dims, ""), fmt::join(k_shape, ","),
                                    fmt::join(match.k.dims, ""), fmt::join(v_shape, ","), fmt::join(match.v.dims, ""),
                                    fmt::join(out_shape, ","), fmt::join(match.out.dims, ""), match.scale);
  if (bias_shape) problem += fmt::format(" bias[{}]", fmt::join(*bias_shape, ","));
  const size_t elem = DTypeSize(dtype);
  BuildTunedPlan(
      *g, handle, problem, kTunedAttentionCandidates,
      [&](CudnnScratch& scratch) {
        CudnnVariantPack pack = {{plan->q, scratch.Add(static_cast<size_t>(count(q_shape)) * elem)},
                                 {plan->k, scratch.Add(static_cast<size_t>(count(k_shape)) * elem)},
                                 {plan->v, scratch.Add(static_cast<size_t>(count(v_shape)) * elem)},
                                 {plan->o, scratch.Add(static_cast<size_t>(count(out_shape)) * elem)}};
        if (plan->bias) pack[plan->bias] = scratch.Add(static_cast<size_t>(count(*bias_shape)) * elem);
        return pack;
      },
      "fused attention " + what);
  CheckFe(g->get_workspace_size(plan->workspace), "get_workspace_size");
  plan->graph = g;
  slot = std::move(plan);
  return *slot;
}

void AttentionKernel::Prepare(const Shape& q, const Shape& k, const Shape& v, const Shape* bias,
                              const Shape& out) const {
  DeviceScope scope(impl_->device);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->PlanFor(q, k, v, bias, out);
}

void AttentionKernel::Launch(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* bias, Tensor& out,
                             cudaStream_t stream) const {
  Impl& a = *impl_;
  if ((a.match.bias != ir::kNoValue) != (bias != nullptr))
    throw Error(ErrorCode::kInternal, fmt::format("'{}': the bias input does not match the fused attention", a.name));
  if (out.num_elements() == 0) return;
  std::lock_guard<std::mutex> lock(a.mu);
  const Shape bias_shape = bias ? bias->shape() : Shape{};
  Impl::Plan& plan = a.PlanFor(q.shape(), k.shape(), v.shape(), bias ? &bias_shape : nullptr, out.shape());
  CudnnVariantPack pack = {{plan.q, const_cast<void*>(q.raw_data())},
                           {plan.k, const_cast<void*>(k.raw_data())},
                           {plan.v, const_cast<void*>(v.raw_data())},
                           {plan.o, out.raw_data()}};
  if (plan.bias) pack[plan.bias] = const_cast<void*>(bias->raw_data());
  ExecuteOnStream(a.handle, *plan.graph, pack, plan.workspace, stream, fmt::format("fused attention '{}'", a.name));
}

}  // namespace kiln::backend::cuda

#else  // no cuDNN in this build

namespace kiln::backend::cuda {

struct AttentionKernel::Impl {};
AttentionKernel::AttentionKernel(const AttentionMatch&, DType, std::string name, int) {
  throw Error(ErrorCode::kUnavailable, fmt::format("'{}': this build of Kiln has no cuDNN for fused attention", name));
}
AttentionKernel::~AttentionKernel() = default;
const AttentionMatch& AttentionKernel::match() const {
  static const AttentionMatch none;
  return none;
}
void AttentionKernel::CheckShapes(const std::vector<std::optional<Shape>>&) const {}
void AttentionKernel::Prepare(const Shape&, const Shape&, const Shape&, const Shape*, const Shape&) const {}
void AttentionKernel::Launch(const Tensor&, const Tensor&, const Tensor&, const Tensor*, Tensor&, cudaStream_t) const {}

}  // namespace kiln::backend::cuda

#endif
