#include "backend/cuda/matmul_act_kernel.h"

#include <fmt/format.h>

#include "kiln/error.h"

#ifdef KILN_WITH_CUDNN

#include <cudnn.h>
#include <cudnn_frontend.h>

#include <map>
#include <mutex>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cudnn_util.h"

namespace kiln::backend::cuda {
namespace {

namespace fe = cudnn_frontend;

constexpr int64_t kTunedCandidates = 8;

// Whether the right operand (the weights) is stored transposed: MatMul's transpose_b,
// BatchMatMul's adj_y.
bool TransposedB(const ir::Node& product) {
  return product.attrs.GetOr<bool>(product.op == "BatchMatMul" ? "adj_y" : "transpose_b", false);
}

}  // namespace

std::optional<std::string> MatMulGeluUnsupported(const ir::Graph& graph, const ir::Node& product, ir::ValueId bias) {
  const DType dtype = graph.value(product.inputs[0]).dtype;
  if (dtype != DType::kFloat16 && dtype != DType::kBFloat16)
    return fmt::format("the cuDNN product with a GELU epilogue takes float16/bfloat16, not {}", DTypeName(dtype));
  const bool batched = product.op == "BatchMatMul";
  if ((product.op != "MatMul" && !batched) || product.inputs.size() < 2 || product.inputs.size() > 3 ||
      (batched && product.inputs.size() != 2))
    return "not a MatMul or BatchMatMul of two operands (and a bias)";
  if (product.inputs.size() == 3 && bias != product.inputs[2]) return "the MatMul's own bias is not the one given";
  if (product.attrs.GetOr<bool>(batched ? "adj_x" : "transpose_a", false)) return "the left operand is transposed";
  const Tensor* w = graph.ConstantOf(product.inputs[1]);
  if (!w || w->rank() != 2 || w->dtype() != dtype) return "the right operand is not a 2-D constant of the same dtype";
  if (bias != ir::kNoValue) {
    const Tensor* b = graph.ConstantOf(bias);
    const int64_t n = TransposedB(product) ? w->dim(0) : w->dim(1);
    if (!b || b->dtype() != dtype || b->num_elements() != n) return "the bias is not a constant vector of n values";
  }
  return std::nullopt;
}

struct MatMulGeluKernel::Impl {
  int device = 0;
  DType dtype = DType::kFloat16;
  bool transpose_b = false;
  int64_t k = 0, n = 0;
  Tensor weights;  // device, as stored: [k, n], or [n, k] when transposed
  Tensor bias;     // device, [n], or undefined
  std::string name;
  cudnnHandle_t handle = nullptr;

  struct Plan {
    std::shared_ptr<fe::graph::Graph> graph;
    std::shared_ptr<fe::graph::Tensor_attributes> x, w, b, y;
    int64_t workspace = 0;
  };
  mutable std::mutex mu;                                   // plans and the handle
  mutable std::map<int64_t, std::unique_ptr<Plan>> plans;  // by rows

  Plan& PlanFor(int64_t rows) const;
};

MatMulGeluKernel::MatMulGeluKernel(const ir::Graph& graph, const ir::Node& product, ir::ValueId bias, int device)
    : impl_(std::make_unique<Impl>()) {
  if (auto why = MatMulGeluUnsupported(graph, product, bias))
    throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}': {}", product.name, *why));
  Impl& k = *impl_;
  k.device = device;
  k.name = product.name;
  k.dtype = graph.value(product.inputs[0]).dtype;
  k.transpose_b = TransposedB(product);
  const Tensor& w = *graph.ConstantOf(product.inputs[1]);
  k.k = k.transpose_b ? w.dim(1) : w.dim(0);
  k.n = k.transpose_b ? w.dim(0) : w.dim(1);
  const DeviceServices& services = Services(device);
  auto upload = [&](const Tensor& host) {
    Tensor d = services.allocator().AllocateTensor(host.dtype(), host.shape());
    Check(cudaMemcpy(d.raw_data(), host.raw_data(), host.byte_size(), cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
    return d;
  };
  k.weights = upload(w);
  if (bias != ir::kNoValue) k.bias = upload(*graph.ConstantOf(bias));
  k.handle = NewCudnnHandle(device);
}

MatMulGeluKernel::~MatMulGeluKernel() {
  if (impl_ && impl_->handle) cudnnDestroy(impl_->handle);
}

MatMulGeluKernel::Impl::Plan& MatMulGeluKernel::Impl::PlanFor(int64_t rows) const {
  auto& slot = plans[rows];
  if (slot) return *slot;
  auto plan = std::make_unique<Plan>();
  auto g = std::make_shared<fe::graph::Graph>();
  const fe::DataType_t io = dtype == DType::kFloat16 ? fe::DataType_t::HALF : fe::DataType_t::BFLOAT16;
  g->set_io_data_type(io)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  plan->x = g->tensor(fe::graph::Tensor_attributes().set_name("x").set_dim({1, rows, k}).set_stride({rows * k, k, 1}));
  // [k, n] row-major, or the transpose of an [n, k] row-major matrix.
  const std::vector<int64_t> w_stride =
      transpose_b ? std::vector<int64_t>{k * n, 1, k} : std::vector<int64_t>{k * n, n, 1};
  plan->w = g->tensor(fe::graph::Tensor_attributes().set_name("w").set_dim({1, k, n}).set_stride(w_stride));
  auto y = g->matmul(plan->x, plan->w,
                     fe::graph::Matmul_attributes().set_name("product").set_compute_data_type(fe::DataType_t::FLOAT));
  y->set_data_type(fe::DataType_t::FLOAT);
  if (bias.defined()) {
    plan->b = g->tensor(fe::graph::Tensor_attributes().set_name("bias").set_dim({1, 1, n}).set_stride({n, n, 1}));
    y = g->pointwise(y, plan->b, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::ADD));
  }
  y = g->pointwise(y, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::GELU_FWD));
  y->set_output(true).set_data_type(io).set_dim({1, rows, n}).set_stride({rows * n, n, 1});
  plan->y = y;
  const std::string what = fmt::format("node '{}' (product with a GELU epilogue, {} rows)", name, rows);
  CheckFe(g->validate(), "validate (" + what + ")");
  CheckFe(g->build_operation_graph(handle), "build_operation_graph (" + what + ")");
  CheckFe(g->create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}),
          "create_execution_plans (" + what + ")");
  CheckFe(g->check_support(handle), "check_support (" + what + ")");
  const size_t elem = DTypeSize(dtype);
  BuildTunedPlan(
      *g, handle,
      fmt::format("matmul+gelu {} rows{} k{} n{} transpose_b{} bias{}", DTypeName(dtype), rows, k, n, transpose_b,
                  bias.defined()),
      kTunedCandidates,
      [&](CudnnScratch& scratch) {
        CudnnVariantPack pack = {{plan->x, scratch.Add(static_cast<size_t>(rows * k) * elem)},
                                 {plan->w, const_cast<void*>(weights.raw_data())},
                                 {plan->y, scratch.Add(static_cast<size_t>(rows * n) * elem)}};
        if (plan->b) pack[plan->b] = const_cast<void*>(bias.raw_data());
        return pack;
      },
      what);
  CheckFe(g->get_workspace_size(plan->workspace), "get_workspace_size");
  plan->graph = g;
  slot = std::move(plan);
  return *slot;
}

namespace {
int64_t Rows(const Shape& x, int64_t k, const std::string& name) {
  if (x.empty() || x.back() != k)
    throw Error(ErrorCode::kInternal,
                fmt::format("node '{}': the product's input {} does not end in k = {}", name, ShapeToString(x), k));
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < x.size(); ++i) rows *= x[i];
  return rows;
}
}  // namespace

void MatMulGeluKernel::Prepare(const Shape& x) const {
  DeviceScope scope(impl_->device);
  std::lock_guard<std::mutex> lock(impl_->mu);
  const int64_t rows = Rows(x, impl_->k, impl_->name);
  if (rows > 0) impl_->PlanFor(rows);
}

void MatMulGeluKernel::Launch(const Tensor& x, Tensor& out, cudaStream_t stream) const {
  Impl& k = *impl_;
  const int64_t rows = Rows(x.shape(), k.k, k.name);
  if (out.num_elements() != rows * k.n)
    throw Error(ErrorCode::kInternal,
                fmt::format("node '{}': the output {} is not {} x {}", k.name, ShapeToString(out.shape()), rows, k.n));
  if (rows == 0 || k.n == 0) return;
  std::lock_guard<std::mutex> lock(k.mu);
  Impl::Plan& plan = k.PlanFor(rows);
  CudnnVariantPack pack = {
      {plan.x, const_cast<void*>(x.raw_data())}, {plan.w, k.weights.raw_data()}, {plan.y, out.raw_data()}};
  if (plan.b) pack[plan.b] = k.bias.raw_data();
  ExecuteOnStream(k.handle, *plan.graph, pack, plan.workspace, stream, fmt::format("node '{}'", k.name));
}

}  // namespace kiln::backend::cuda

#else  // no cuDNN in this build

namespace kiln::backend::cuda {

std::optional<std::string> MatMulGeluUnsupported(const ir::Graph&, const ir::Node&, ir::ValueId) {
  return "this build of Kiln has no cuDNN";
}
struct MatMulGeluKernel::Impl {};
MatMulGeluKernel::MatMulGeluKernel(const ir::Graph&, const ir::Node& product, ir::ValueId, int) {
  throw Error(ErrorCode::kUnimplemented, fmt::format("node '{}': this build of Kiln has no cuDNN", product.name));
}
MatMulGeluKernel::~MatMulGeluKernel() = default;
void MatMulGeluKernel::Prepare(const Shape&) const {}
void MatMulGeluKernel::Launch(const Tensor&, Tensor&, cudaStream_t) const {}

}  // namespace kiln::backend::cuda

#endif
