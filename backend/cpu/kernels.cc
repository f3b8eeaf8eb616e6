// oneDNN kernels for the fused nodes and the elementwise-chain kernel wrapper.
//
// Each oneDNN kernel keeps a cache of primitives keyed by its non-constant input shapes (a
// dynamic profile sees several); constant weights are reordered once per weights layout (and
// data type: bf16 in BF16 engines) the primitives ask for. Primitives use a user-managed scratchpad (the per-call ExecContext owns
// it), so concurrent calls never share one. When oneDNN has no implementation for a shape (or
// a dim is 0) the kernel falls back to the reference kernel of the original op plus the post-ops.
#include "backend/cpu/kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/eltwise_chain.h"
#include "backend/cpu/int8.h"
#include "backend/reference/kernel.h"

namespace kiln::backend::cpu {
namespace {

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;
constexpr auto kBF16 = memory::data_type::bf16;
constexpr auto kS8 = memory::data_type::s8;

void* Ptr(const Tensor& t) { return const_cast<void*>(t.raw_data()); }

// `md` with elements of type `type` (same dims and layout).
memory::desc WithType(const memory::desc& md, memory::data_type type) {
  dnnl_memory_desc_t d = md.data;
  d.data_type = static_cast<dnnl_data_type_t>(type);
  return memory::desc(d);
}

// `md` with f32 elements: float residual operands are f32 whatever the dst is.
memory::desc AsF32(const memory::desc& md) { return WithType(md, kF32); }

// An 8-bit residual operand (the add post-op's operand is int8 / uint8) adds alpha * (q - beta):
// its scale and zero point (cpu_ops.h).
bool EightBit(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }

Dims Contiguous(const Dims& dims) {
  Dims s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

void ApplyPostOpsReference(const std::vector<PostOp>& post_ops, std::span<const Tensor> adds, Tensor& out) {
  float* d = out.data<float>();
  const int64_t n = out.num_elements();
  size_t next_add = 0;
  for (const PostOp& p : post_ops) {
    if (p.kind == PostOpKind::kAdd) {
      const Tensor& a = adds[next_add++];
      if (a.shape() != out.shape())
        throw Error(ErrorCode::kInternal, fmt::format("fused add: operand shape {} differs from the result's {}",
                                                      ShapeToString(a.shape()), ShapeToString(out.shape())));
      const float scale = static_cast<float>(p.alpha), zero = static_cast<float>(p.beta);
      if (a.dtype() == DType::kInt8) {
        for (int64_t i = 0; i < n; ++i) d[i] += scale * (static_cast<float>(a.data<int8_t>()[i]) - zero);
      } else if (a.dtype() == DType::kUInt8) {
        for (int64_t i = 0; i < n; ++i) d[i] += scale * (static_cast<float>(a.data<uint8_t>()[i]) - zero);
      } else {
        const float* s = a.data<float>();
        for (int64_t i = 0; i < n; ++i) d[i] += s[i];
      }
    } else {
      for (int64_t i = 0; i < n; ++i) d[i] = ApplyPostOp(p, d[i]);
    }
  }
}

// Fails a bf16 primitive descriptor whose src / weights are not really bf16, or whose only
// implementation is oneDNN's reference one (much slower than an f32 JIT kernel): the step then
// runs f32.
template <typename PD>
void RequireBf16(const PD& pd) {
  if (pd.src_desc().data_type() != kBF16 || pd.weights_desc().data_type() != kBF16)
    throw dnnl::error(dnnl_unimplemented, "the primitive's src / weights are not bf16");
  if (std::string_view(pd.impl_info_str()).starts_with("ref")) throw dnnl::error(dnnl_unimplemented, "oneDNN's only bf16 kernel for it is the reference one");
}

// A reference node for the original op (inputs are positional; ids are not used by kernels).
ir::Node ReferenceNode(const ir::Node& fused, const std::string& op, int num_inputs,
                       std::initializer_list<const char*> attrs) {
  ir::Node n;
  n.name = fused.name;
  n.op = op;
  for (int i = 0; i < num_inputs; ++i) n.inputs.push_back(i);
  n.outputs.push_back(0);
  for (const char* key : attrs)
    if (auto it = fused.attrs.all().find(key); it != fused.attrs.all().end()) n.attrs.Set(key, it->second);
  return n;
}

class DnnlKernel : public Kernel {
 public:
  // `original`: the op the node fused (ReferenceNode), run by the reference fallback.
  DnnlKernel(const ir::Graph& graph, const ir::Node& node, std::shared_ptr<const KernelEnv> env, ir::Node original)
      : node_(node), original_(std::move(original)), env_(std::move(env)), post_ops_(ReadPostOps(node)) {
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const Tensor* c = graph.ConstantOf(node.inputs[i]);
      constants_.push_back(c ? std::optional<Tensor>(*c) : std::nullopt);
    }
    first_add_ = FirstAddInput(node);
    const DType a_type = graph.value(node.inputs[0]).dtype;
    int8_ = a_type == DType::kInt8 || a_type == DType::kUInt8;
    unsigned_a_ = a_type == DType::kUInt8;
    zero_point_a_ = static_cast<int32_t>(node.attrs.GetOr<int64_t>("int8_zero_point_a", 0));
    int8_output_ = node.attrs.GetOr<bool>("int8_output", false);
    unsigned_output_ = node.attrs.GetOr<bool>("unsigned_output", false);
    if (int8_output_ && !int8_)
      throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): an int8 result needs int8 operands", node.name, node.op));
    if (int8_) {
      scale_a_ = static_cast<float>(node.attrs.Get<double>("int8_scale_a"));
      for (double s : node.attrs.Get<std::vector<double>>("int8_scale_b")) scale_b_.push_back(static_cast<float>(s));
      if (graph.value(node.inputs[1]).dtype != DType::kInt8 || scale_b_.empty())
        throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): an int8 operand a needs an int8 operand b and its scales", node.name, node.op));
    }
    const size_t num_adds = static_cast<size_t>(std::count_if(post_ops_.begin(), post_ops_.end(), [](const PostOp& p) { return p.kind == PostOpKind::kAdd; }));
    if (node.inputs.size() != static_cast<size_t>(first_add_) + num_adds)
      throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): {} inputs for {} add post-ops", node.name, node.op, node.inputs.size(), num_adds));
    size_t add = 0;
    for (const PostOp& p : post_ops_) {
      if (p.kind != PostOpKind::kAdd) continue;
      const DType t = graph.value(node.inputs[static_cast<size_t>(first_add_) + add++]).dtype;
      const bool eight_bit = EightBit(t);
      if (!eight_bit && t != DType::kFloat32)
        throw Error(ErrorCode::kInternal,
                    fmt::format("node '{}' ({}): an add operand of dtype {}", node.name, node.op, DTypeName(t)));
      if (eight_bit && (!int8_ || !(p.alpha > 0 && std::isfinite(p.alpha) && std::isfinite(p.beta))))
        throw Error(
            ErrorCode::kInternal,
            fmt::format(
                "node '{}' ({}): an 8-bit add operand needs int8 operands and a positive finite scale, got scale {} "
                "(zero point {})",
                node.name, node.op, p.alpha, p.beta));
      add_types_.push_back(t == DType::kInt8 ? kS8 : t == DType::kUInt8 ? memory::data_type::u8 : kF32);
    }
    PlanPostOps();
  }

  // "onednn:<impl>" per distinct implementation of the primitives created so far, and
  // "reference-fallback" when some shape had no oneDNN implementation. In an engine that tries
  // BF16, "[bf16]" marks bf16 primitives and "[f32: why]" the ones that could not be bf16.
  std::string Describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> parts;
    for (const auto& [key, prim] : cache_) {
      std::string d = prim ? "onednn:" + prim->impl : std::string("reference-fallback");
      if (prim && prim->bf16) d += " [bf16]";
      else if (prim && prim->int8) d += " [int8]";
      else if (prim && prim->bf16_tried) d += " [f32: " + prim->bf16_failure + "]";
      if (std::find(parts.begin(), parts.end(), d) == parts.end()) parts.push_back(d);
    }
    return parts.empty() ? std::string("onednn (no primitive yet)") : fmt::format("{}", fmt::join(parts, ","));
  }

  void Prepare(const std::vector<Shape>& shapes) override {
    for (const Shape& s : shapes)
      if (NumElements(s) == 0) return;  // empty tensors never reach oneDNN
    if (NumElements(FindCpuOp(node_.op)->infer(node_, shapes)[0]) == 0) return;
    Get({shapes[0], shapes[1]});
  }

  bool int8() const override { return int8_; }

  size_t scratchpad_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return max_scratch_;
  }

  std::optional<PrimitivePrecision> primitive_precision() const override {
    std::lock_guard<std::mutex> lock(mu_);
    PrimitivePrecision p;
    for (const auto& [key, prim] : cache_) ++(prim && prim->bf16 ? p.bf16 : prim && prim->int8 ? p.int8 : p.f32);
    return p;
  }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext& ctx) const override {
    if (out.num_elements() == 0) return;
    std::shared_ptr<const Prim> prim;
    bool empty_input = false;
    for (const Tensor& t : in) empty_input |= t.num_elements() == 0;
    if (!empty_input) prim = Get({in[0].shape(), in[1].shape()});
    if (!prim) {
      RunFallback(in, out);
      return;
    }
    const dnnl::engine& eng = env_->engine;
    // Scratch layout: [oneDNN scratchpad][src][weights][dst], the last three only when the
    // primitive computes on other tensors than the plain f32 ones: a blocked layout (NCHW
    // convolutions), or bf16 src / weights (BF16 engines), reordered in (and dst out).
    char* scratch = static_cast<char*>(ctx.Scratch(prim->scratch_total));
    const memory src_user(prim->user_src_md, eng, Ptr(in[0]));
    const memory dst_user(prim->user_dst_md, eng, out.raw_data());
    memory src = src_user, dst = dst_user;
    if (prim->reorder_src) {
      src = memory(prim->src_md, eng, scratch + prim->src_offset);
      prim->src_reorder.execute(ctx.stream, const_cast<memory&>(src_user), src);
    }
    memory wei = prim->weights;
    if (prim->runtime_weights) {
      wei = memory(prim->user_wei_md, eng, Ptr(in[1]));
      if (prim->reorder_wei) {
        memory w(prim->wei_md, eng, scratch + prim->wei_offset);
        prim->wei_reorder.execute(ctx.stream, wei, w);
        wei = w;
      }
    }
    if (prim->reorder_dst) dst = memory(prim->dst_md, eng, scratch + prim->dst_offset);
    std::unordered_map<int, memory> args;
    args.emplace(DNNL_ARG_SRC, src);
    args.emplace(DNNL_ARG_WEIGHTS, wei);
    if (prim->bias) args.emplace(DNNL_ARG_BIAS, prim->bias);
    args.emplace(DNNL_ARG_DST, dst);
    for (size_t k = 0; k < add_types_.size(); ++k) {
      const Tensor& a = in[static_cast<size_t>(first_add_) + k];
      if (a.shape() != out.shape())
        throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): add operand of shape {} for a result of shape {}", node_.name,
                                                      node_.op, ShapeToString(a.shape()), ShapeToString(out.shape())));
      memory add(WithType(prim->user_add_md, add_types_[k]), eng, Ptr(a));
      if (prim->reorder_add) {  // f32 operands only (AddReorders)
        memory in_layout(prim->add_md, eng, scratch + prim->add_offsets.at(k));
        prim->add_reorder.execute(ctx.stream, add, in_layout);
        add = in_layout;
      }
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(add_dnnl_index_[k]) | DNNL_ARG_SRC_1, add);
    }
    if (prim->scratch_bytes > 0) args.emplace(DNNL_ARG_SCRATCHPAD, memory(prim->scratch_md, eng, scratch));
    prim->prim.execute(ctx.stream, args);
    if (prim->reorder_dst) prim->dst_reorder.execute(ctx.stream, dst, const_cast<memory&>(dst_user));
    ctx.stream.wait();
  }

 protected:
  struct Prim {
    dnnl::primitive prim;
    memory::desc src_md, wei_md, dst_md, scratch_md;  // what the primitive computes on
    memory::desc user_src_md, user_wei_md, user_dst_md;  // the plain f32 tensors (user_wei_md: runtime weights only)
    bool reorder_src = false, reorder_wei = false, reorder_dst = false;
    dnnl::reorder src_reorder, wei_reorder, dst_reorder;
    size_t src_offset = 0, wei_offset = 0, dst_offset = 0, scratch_total = 0;
    memory weights;  // constant weights in the primitive's layout and data type
    memory bias;
    bool runtime_weights = false;
    // Residual operands of add post-ops in the primitive's dst layout (when it is not the plain
    // one): reordered into scratch, one buffer per add.
    memory::desc add_md, user_add_md;  // user_add_md: the plain f32 operand
    bool reorder_add = false;
    dnnl::reorder add_reorder;
    std::vector<size_t> add_offsets;
    size_t scratch_bytes = 0;
    bool bf16 = false;         // src and weights are bf16
    bool int8 = false;         // src and weights are int8
    bool bf16_tried = false;   // an f32 primitive after a bf16 one could not be made
    std::string bf16_failure;  // why (oneDNN's message)
    std::string impl;          // oneDNN's implementation name, e.g. "jit:avx2"
  };

  // Builds a primitive for (input 0, input 1) shapes, with bf16 src / weights when `bf16`;
  // throws dnnl::error when unsupported. Sets the user_*_md (plain f32 tensors) and the
  // primitive's own descs; Get() adds the reorders between them.
  virtual std::shared_ptr<Prim> Create(const Shape& a, const Shape& b, bool bf16) const = 0;
  // The original op on the reference kernels (without post-ops).
  Tensor RunOriginal(std::span<const Tensor> in) const {
    if (original_.op == "MatMul" && in[0].rank() > 2) {
      // A product of [..., m, k] rows (cpu.FusedMatMul flattens them): the 2-D MatMul, reshaped.
      const Shape& a = in[0].shape();
      std::vector<Tensor> flat(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(original_.inputs.size()));
      flat[0] = in[0].Reshaped({NumElements(a) / a.back(), a.back()});
      Tensor out = std::move(reference::RunReferenceKernel(original_, flat, nullptr)[0]);
      Shape shape(a.begin(), a.end() - 1);
      shape.push_back(out.dim(1));
      return out.Reshaped(shape);
    }
    return std::move(reference::RunReferenceKernel(original_, in.subspan(0, original_.inputs.size()), nullptr)[0]);
  }

  // The primitive desc make_pd(bias) for an f32 bias. A bf16 primitive (bf16 src and weights
  // are required) falls back to `bf16_bias` when oneDNN has none with an f32 bias. *bias_req is
  // the bias desc used.
  template <typename MakePd>
  static auto MakeWithBias(bool bf16, const memory::desc& bias_md, const memory::desc& bf16_bias,
                           memory::desc* bias_req, const MakePd& make_pd) {
    *bias_req = bias_md;
    if (!bf16) return make_pd(bias_md);
    decltype(make_pd(bias_md)) pd;
    try {
      pd = make_pd(bias_md);
    } catch (const dnnl::error&) {
      *bias_req = bf16_bias;
      pd = make_pd(bf16_bias);
    }
    RequireBf16(pd);
    return pd;
  }

  // Stores the primitive of `pd`, its scratchpad size and oneDNN's implementation name in `p`.
  template <typename Primitive, typename PrimitiveDesc>
  static void SetPrimitive(Prim& p, const PrimitiveDesc& pd) {
    p.scratch_md = pd.scratchpad_desc();
    p.scratch_bytes = p.scratch_md.get_size();
    p.prim = Primitive(pd);
    p.impl = pd.impl_info_str();
  }

  // One entry of oneDNN's post-op chain for post_ops_ (PlanPostOps).
  struct DnnlPostOp {
    bool binary = false;  // a binary add of add operand `add`; otherwise an eltwise step
    dnnl::algorithm alg = dnnl::algorithm::eltwise_linear;
    float alpha = 0, beta = 0;
    size_t add = 0;
  };

  // The eltwise algorithms that compute `alg`'s forward values, in order of preference.
  static std::vector<DnnlPostOp> EquivalentSteps(const DnnlPostOp& op) {
    using A = dnnl::algorithm;
    std::vector<DnnlPostOp> steps{op};
    auto with = [&](A alg, float alpha, float beta) { steps.push_back({false, alg, alpha, beta, 0}); };
    switch (op.alg) {
      case A::eltwise_relu:
        if (op.alpha >= 0) with(A::eltwise_relu_use_dst_for_bwd, op.alpha, op.beta);
        break;
      case A::eltwise_clip:
        with(A::eltwise_clip_v2, op.alpha, op.beta);
        with(A::eltwise_clip_v2_use_dst_for_bwd, op.alpha, op.beta);
        break;
      case A::eltwise_linear:
        if (op.beta == 0) with(A::eltwise_pow, op.alpha, 1.f);  // alpha * x^1
        break;
      case A::eltwise_logistic:
        with(A::eltwise_logistic_use_dst_for_bwd, 0.f, 0.f);
        break;
      case A::eltwise_tanh:
        with(A::eltwise_tanh_use_dst_for_bwd, 0.f, 0.f);
        break;
      case A::eltwise_elu:
        if (op.alpha >= 0) with(A::eltwise_elu_use_dst_for_bwd, op.alpha, op.beta);
        break;
      default:
        break;
    }
    return steps;
  }

  // post_ops_ as oneDNN's chain. oneDNN's binary post-op adds an 8-bit operand's integer values
  // unscaled, so its add alpha * (q - beta) first divides the value by alpha and subtracts beta
  // (a linear step; the add then leaves it alpha times too small) and multiplies by alpha after:
  // that multiplication waits across ReLUs (positively homogeneous) and joins the next linear
  // step. Adjacent linear steps become one, and in int8 nodes a leading linear step goes into
  // the output scales and the bias (leading_scale_, leading_shift_).
  // oneDNN 2.x's JIT kernels (Debian 12 ships 2.6) keep one eltwise injector per algorithm, so a
  // second eltwise step of an algorithm already in the chain would silently run with the first
  // one's parameters: such steps take an unused algorithm with the same forward values, and with
  // none left the chain is refused (post_op_refusal_; the node then runs its reference kernel).
  void PlanPostOps() {
    std::vector<DnnlPostOp> plan;
    float owed = 1;  // the chain's value is `owed` times too small
    auto eltwise = [&](dnnl::algorithm alg, float alpha, float beta) {
      if (alg == dnnl::algorithm::eltwise_linear && !plan.empty() && !plan.back().binary &&
          plan.back().alg == dnnl::algorithm::eltwise_linear) {
        plan.back().beta = alpha * plan.back().beta + beta;
        plan.back().alpha *= alpha;
        return;
      }
      plan.push_back({false, alg, alpha, beta, 0});
    };
    auto settle = [&] {
      if (owed != 1) eltwise(dnnl::algorithm::eltwise_linear, owed, 0.f);
      owed = 1;
    };
    size_t add = 0;
    for (const PostOp& p : post_ops_) {
      const float a = static_cast<float>(p.alpha), b = static_cast<float>(p.beta);
      switch (p.kind) {
        case PostOpKind::kRelu:
          eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
          break;
        case PostOpKind::kLeakyRelu:
          if (a < 0) settle();
          eltwise(dnnl::algorithm::eltwise_relu, a, 0.f);
          break;
        case PostOpKind::kLinear:
          eltwise(dnnl::algorithm::eltwise_linear, a * owed, b);
          owed = 1;
          break;
        case PostOpKind::kRelu6:
          settle();
          eltwise(dnnl::algorithm::eltwise_clip, 0.f, 6.f);
          break;
        case PostOpKind::kClip:
          settle();
          eltwise(dnnl::algorithm::eltwise_clip, a, b);
          break;
        case PostOpKind::kSigmoid:
          settle();
          eltwise(dnnl::algorithm::eltwise_logistic, 0.f, 0.f);
          break;
        case PostOpKind::kTanh:
          settle();
          eltwise(dnnl::algorithm::eltwise_tanh, 0.f, 0.f);
          break;
        case PostOpKind::kElu:
          settle();
          eltwise(dnnl::algorithm::eltwise_elu, 1.f, 0.f);
          break;
        case PostOpKind::kSwish:
          settle();
          eltwise(dnnl::algorithm::eltwise_swish, a, 0.f);
          break;
        case PostOpKind::kGelu:
          settle();
          eltwise(dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
          break;
        case PostOpKind::kRound:
          settle();
          eltwise(dnnl::algorithm::eltwise_round, 0.f, 0.f);
          break;
        case PostOpKind::kAdd: {
          const size_t k = add++;
          settle();
          if (add_types_[k] != kF32) {
            eltwise(dnnl::algorithm::eltwise_linear, 1.f / a, -b);
            owed = a;
          }
          plan.push_back({true, dnnl::algorithm::binary_add, 0.f, 0.f, k});
          break;
        }
      }
    }
    settle();
    if (int8_ && !plan.empty() && !plan[0].binary && plan[0].alg == dnnl::algorithm::eltwise_linear &&
        plan[0].alpha > 0 && std::isfinite(plan[0].alpha) && std::isfinite(plan[0].beta) &&
        (plan[0].beta == 0 || node_.op != kFusedBatchMatMul)) {  // batch products have no bias to shift
      // alpha * (acc * scale + bias) + beta = acc * (scale * alpha) + (bias + beta / alpha) * alpha.
      leading_scale_ = plan[0].alpha;
      leading_shift_ = plan[0].beta / plan[0].alpha;
      plan.erase(plan.begin());
    }
    std::vector<dnnl::algorithm> used;
    for (size_t i = 0; i < plan.size(); ++i) {
      if (plan[i].binary) {
        add_dnnl_index_.push_back(static_cast<int>(i));
        continue;
      }
      bool placed = false;
      for (const DnnlPostOp& step : EquivalentSteps(plan[i])) {
        if (std::find(used.begin(), used.end(), step.alg) != used.end()) continue;
        plan[i] = step;
        used.push_back(step.alg);
        placed = true;
        break;
      }
      if (!placed) post_op_refusal_ = "more eltwise post-ops of one kind than oneDNN 2.x's JIT kernels keep apart";
    }
    dnnl_post_ops_ = std::move(plan);
  }

  // `channels`: the output channels the int8 output scales run along (int8 kernels only);
  // `dst_md`: also the layout of the add post-ops' operands; `residuals` false leaves the add
  // post-ops out (to learn the layout oneDNN prefers without them).
  dnnl::primitive_attr MakeAttr(const memory::desc& dst_md, int64_t channels = 0, bool residuals = true) const {
    if (!post_op_refusal_.empty()) throw dnnl::error(dnnl_unimplemented, post_op_refusal_.c_str());
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (int8_) {
      std::vector<float> scales = OutputScales(channels);
      for (float& s : scales) s *= leading_scale_;
      attr.set_output_scales(scales.size() == 1 ? 0 : 1 << 1, scales);
      if (zero_point_a_ != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {zero_point_a_});
    }
    dnnl::post_ops po;
    for (const DnnlPostOp& op : dnnl_post_ops_) {
      if (!op.binary) {
        po.append_eltwise(1.f, op.alg, op.alpha, op.beta);
      } else if (residuals) {
        po.append_binary(op.alg, add_types_[op.add] == kF32 ? dst_md : WithType(dst_md, add_types_[op.add]));
      }
    }
    attr.set_post_ops(po);
    return attr;
  }

  // Constant input `input` in the layout and data type `want`, reordered (converted) from its
  // f32 description `user` once per (input, desc).
  memory ConstantAs(size_t input, const memory::desc& want, const memory::desc& user) const {
    for (const auto& [i, desc, mem] : converted_)
      if (i == input && desc == want) return mem;
    memory src(user, env_->engine, Ptr(Constant(input)));
    memory dst(want, env_->engine);
    dnnl::stream s(env_->engine);
    dnnl::reorder(src, dst).execute(s, src, dst);
    s.wait();
    converted_.emplace_back(input, want, dst);
    return dst;
  }

  // The bias constant (input `input`) as `want` (f32: the constant itself; bf16: converted).
  memory BiasAs(size_t input, const memory::desc& want, const memory::desc& user_f32) const {
    if (want == user_f32) return memory(user_f32, env_->engine, Ptr(Constant(input)));
    return ConstantAs(input, want, user_f32);
  }

  // The reorders between the plain f32 tensors and what the primitive computes on, and where
  // their buffers go in the scratch area (after the oneDNN scratchpad).
  void AddReorders(Prim& p) const {
    auto aligned = [](size_t b) { return (b + 63) / 64 * 64; };
    size_t end = aligned(p.scratch_bytes);
    p.reorder_src = p.src_md != p.user_src_md;
    if (p.reorder_src) {
      p.src_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(env_->engine, p.user_src_md, env_->engine, p.src_md));
      p.src_offset = end;
      end += aligned(p.src_md.get_size());
    }
    p.reorder_wei = p.runtime_weights && p.wei_md != p.user_wei_md;
    if (p.reorder_wei) {
      p.wei_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(env_->engine, p.user_wei_md, env_->engine, p.wei_md));
      p.wei_offset = end;
      end += aligned(p.wei_md.get_size());
    }
    p.reorder_dst = p.dst_md != p.user_dst_md;
    if (p.reorder_dst) {
      p.dst_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(env_->engine, p.dst_md, env_->engine, p.user_dst_md));
      p.dst_offset = end;
      end += aligned(p.dst_md.get_size());
    }
    p.reorder_add = p.add_md && p.add_md != p.user_add_md;
    if (p.reorder_add &&
        std::any_of(add_types_.begin(), add_types_.end(), [](memory::data_type t) { return t != kF32; }))
      throw dnnl::error(dnnl_unimplemented, "8-bit residual operands are read in the result's plain layout only");
    if (p.reorder_add) {
      p.add_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(env_->engine, p.user_add_md, env_->engine, p.add_md));
      for (const PostOp& op : post_ops_) {
        if (op.kind != PostOpKind::kAdd) continue;
        p.add_offsets.push_back(end);
        end += aligned(p.add_md.get_size());
      }
    }
    p.scratch_total = p.reorder_src || p.reorder_wei || p.reorder_dst || p.reorder_add ? end : p.scratch_bytes;
  }

  std::shared_ptr<const Prim> Get(const std::vector<Shape>& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    std::shared_ptr<Prim> p;
    std::string bf16_failure;
    if (int8_) {
      try {
        p = Create(key.at(0), key.at(1), /*bf16=*/false);
        p->int8 = true;
        AddReorders(*p);
      } catch (const dnnl::error&) {
        p = nullptr;  // no int8 implementation: reference fallback on the dequantized operands
      }
      if (p) max_scratch_ = std::max(max_scratch_, p->scratch_total);
      cache_.emplace(key, p);
      return p;
    }
    if (env_->bf16_math) {
      try {
        p = Create(key.at(0), key.at(1), /*bf16=*/true);
        p->bf16 = true;
        AddReorders(*p);
      } catch (const dnnl::error& e) {
        p = nullptr;  // no bf16 primitive for this shape: f32
        bf16_failure = e.what();
        if (bf16_failure.empty()) bf16_failure = "no bf16 kernel";
      }
    }
    if (!p) {
      try {
        p = Create(key.at(0), key.at(1), /*bf16=*/false);
        AddReorders(*p);
        if (env_->bf16_math) {
          p->bf16_tried = true;
          p->bf16_failure = bf16_failure;
        }
      } catch (const dnnl::error&) {
        p = nullptr;  // no oneDNN implementation: reference fallback for this shape
      }
    }
    if (p) max_scratch_ = std::max(max_scratch_, p->scratch_total);
    cache_.emplace(key, p);
    return p;
  }

  void RunFallback(std::span<const Tensor> in, Tensor& out) const {
    Tensor r;
    if (int8_) {
      std::vector<Tensor> f(in.begin(), in.end());
      f[0] = Dequantized(in[0], true, 1, 1);
      const auto [channels, inner] = OutputChannelsOf(node_, in[1].shape());
      f[1] = Dequantized(in[1], false, channels, inner);
      r = RunOriginal(f);
    } else {
      r = RunOriginal(in);
    }
    if (r.shape() != out.shape())
      throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): fallback produced shape {}, expected {}", node_.name, node_.op,
                                                    ShapeToString(r.shape()), ShapeToString(out.shape())));
    if (int8_output_) {  // as oneDNN converts: round half to even, saturate
      ApplyPostOpsReference(post_ops_, in.subspan(static_cast<size_t>(first_add_)), r);
      QuantizeParams saturate;
      saturate.is_unsigned = unsigned_output_;
      saturate.qmin = unsigned_output_ ? 0.0f : -128.0f;
      saturate.qmax = unsigned_output_ ? 255.0f : 127.0f;
      Quantize(r.data<float>(), out.raw_data(), r.num_elements(), saturate);
      return;
    }
    std::copy_n(r.data<float>(), r.num_elements(), out.data<float>());
    ApplyPostOpsReference(post_ops_, in.subspan(static_cast<size_t>(first_add_)), out);
  }

  const Tensor& Constant(size_t i) const {
    if (!constants_.at(i)) throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): input {} must be a constant", node_.name, node_.op, i));
    return *constants_[i];
  }

  // int8: the factor from the int32 accumulator to the float result per output channel,
  // scale_a * scale_b[c] (one value for a per-tensor b). An all-zero channel (scale 0) gets 1, so
  // its result is its bias.
  std::vector<float> OutputScales(int64_t channels) const {
    if (scale_b_.size() == 1) return {scale_a_ * scale_b_[0] == 0 ? 1.0f : scale_a_ * scale_b_[0]};
    if (static_cast<int64_t>(scale_b_.size()) != channels)
      throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): {} weight scales for {} output channels", node_.name, node_.op,
                                                    scale_b_.size(), channels));
    std::vector<float> s;
    for (float b : scale_b_) s.push_back(scale_a_ * b == 0 ? 1.0f : scale_a_ * b);
    return s;
  }

  // int8: oneDNN adds the bias to the int32 accumulator before the output scale, so the bias is
  // given in accumulator units: bias[c] / OutputScales[c]. Called from Create, under mu_.
  memory Int8Bias(size_t input, int64_t channels, const memory::desc& md) const {
    if (!int8_bias_) {
      const Tensor& bias = Constant(input);
      if (bias.num_elements() != channels)
        throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): bias of {} elements for {} output channels", node_.name, node_.op,
                                                      bias.num_elements(), channels));
      const std::vector<float> scales = OutputScales(channels);
      // A leading linear step folded into the output scales (PlanPostOps) shifts the bias.
      int8_bias_ = Tensor(DType::kFloat32, {channels});
      for (int64_t c = 0; c < channels; ++c)
        int8_bias_->data<float>()[c] =
            (bias.data<float>()[c] + leading_shift_) / scales[scales.size() == 1 ? 0 : static_cast<size_t>(c)];
    }
    return memory(md, env_->engine, Ptr(*int8_bias_));
  }

  // The float32 value of an int8 operand (the reference fallback): q * scale, per output channel
  // `channels` (inner stride `inner`) for per-channel scales.
  Tensor Dequantized(const Tensor& q, bool operand_a, int64_t channels, int64_t inner) const {
    Tensor f(DType::kFloat32, q.shape());
    float* d = f.data<float>();
    const float zero = operand_a ? static_cast<float>(zero_point_a_) : 0.0f;
    for (int64_t e = 0; e < q.num_elements(); ++e) {
      const float scale = operand_a ? scale_a_ : scale_b_.size() == 1 ? scale_b_[0] : scale_b_[static_cast<size_t>((e / inner) % channels)];
      const float v = q.dtype() == DType::kUInt8 ? static_cast<float>(q.data<uint8_t>()[e]) : static_cast<float>(q.data<int8_t>()[e]);
      d[e] = (v - zero) * scale;
    }
    return f;
  }

  // oneDNN's data types of int8 operand a and of the result.
  memory::data_type SrcInt8Type() const { return unsigned_a_ ? memory::data_type::u8 : kS8; }
  memory::data_type DstType() const { return !int8_output_ ? kF32 : unsigned_output_ ? memory::data_type::u8 : kS8; }

  ir::Node node_;
  ir::Node original_;
  std::shared_ptr<const KernelEnv> env_;
  std::vector<PostOp> post_ops_;
  std::vector<std::optional<Tensor>> constants_;
  int first_add_ = 0;
  std::vector<memory::data_type> add_types_;  // per add post-op: its operand's type
  std::vector<int> add_dnnl_index_;           // per add post-op: its index in oneDNN's chain
  std::vector<DnnlPostOp> dnnl_post_ops_;     // oneDNN's chain (PlanPostOps)
  std::string post_op_refusal_;               // why oneDNN's kernels cannot run the chain (empty: they can)
  float leading_scale_ = 1, leading_shift_ = 0;  // int8: a leading linear step in the output scales and bias
  bool int8_ = false;         // operands a and b are int8 (see cpu_ops.h)
  bool int8_output_ = false;  // the result is written as int8 (attr int8_output)
  bool unsigned_a_ = false;       // int8: operand a is uint8 (q + zero_point_a_)
  int32_t zero_point_a_ = 0;      // int8: attr int8_zero_point_a
  bool unsigned_output_ = false;  // the 8-bit result is uint8 (attr unsigned_output)
  float scale_a_ = 0;         // int8: one step of a
  std::vector<float> scale_b_;  // int8: one step of b, per output channel or one
  mutable std::optional<Tensor> int8_bias_;  // int8: the bias in accumulator units
  mutable std::mutex mu_;
  mutable std::map<std::vector<Shape>, std::shared_ptr<Prim>> cache_;
  mutable std::vector<std::tuple<size_t, memory::desc, memory>> converted_;  // constants in primitive layouts / types
  mutable size_t max_scratch_ = 0;
};

class ConvKernel final : public DnnlKernel {
 public:
  ConvKernel(const ir::Graph& g, const ir::Node& node, std::shared_ptr<const KernelEnv> env)
      : DnnlKernel(g, node, std::move(env),
                   ReferenceNode(node, "Conv2D", 3, {"data_format", "strides", "dilations", "padding", "pads"})) {
    Constant(1);
    Constant(2);
  }

 protected:
  // NCHW: oneDNN's fast AVX2/AVX-512 convolutions want blocked layouts (nChw8c / nChw16c),
  // so channels-first convolutions first try letting oneDNN pick the activation layout and
  // reorder the plain tensors in and out; they fall back to plain NCHW (im2col + GEMM).
  std::shared_ptr<Prim> Create(const Shape& x, const Shape& f, bool bf16) const override {
    const ConvGeometry g = ComputeConvGeometry(node_, x, f);
    if (!g.channels_last) {
      try {
        return CreateConv(g, /*blocked=*/true, bf16);
      } catch (const dnnl::error&) {
      }
    }
    return CreateConv(g, /*blocked=*/false, bf16);
  }

  // f32: on the plain tensors, or (blocked) on the layouts oneDNN picks for src and dst.
  // bf16: src converted to bf16 in the layout oneDNN picks, bf16 weights, f32 bias (bf16 when
  // oneDNN wants that), f32 dst (plain, or blocked and reordered back).
  std::shared_ptr<Prim> CreateConv(const ConvGeometry& g, bool blocked, bool bf16) const {
    const Tag tag = g.channels_last ? Tag::nhwc : Tag::nchw;
    const memory::data_type dt = int8_ ? SrcInt8Type() : bf16 ? kBF16 : kF32;
    const memory::data_type user_dt = int8_ ? kS8 : kF32;  // of the weights tensor
    const memory::desc src_md({g.n, g.c, g.h, g.w}, int8_ ? SrcInt8Type() : kF32, tag);
    const memory::data_type out_dt = DstType();
    const memory::desc dst_md({g.n, g.oc, g.oh, g.ow}, out_dt, tag);
    const memory::desc add_user({g.n, g.oc, g.oh, g.ow}, kF32, tag);
    // HWIO filter viewed as OIHW (or GOIHW) through strides.
    const int64_t og = g.oc / g.groups;
    Dims wdims, wstrides;
    if (g.groups == 1) {
      wdims = {g.oc, g.ic, g.kh, g.kw};
      wstrides = {1, g.oc, g.kw * g.ic * g.oc, g.ic * g.oc};
    } else {
      wdims = {g.groups, og, g.ic, g.kh, g.kw};
      wstrides = {og, 1, g.oc, g.kw * g.ic * g.oc, g.ic * g.oc};
    }
    const memory::desc wei_user(wdims, user_dt, wstrides);
    const memory::desc wei_any(wdims, int8_ ? kS8 : dt, Tag::any);
    const memory::desc bias_md({g.oc}, kF32, Tag::a);
    memory::desc src_req = blocked || bf16 || int8_ ? memory::desc({g.n, g.c, g.h, g.w}, dt, Tag::any) : src_md;
    memory::desc dst_req = blocked ? memory::desc({g.n, g.oc, g.oh, g.ow}, out_dt, Tag::any) : dst_md;
    memory::desc add_md = add_user;  // the layout of residual operands (add post-ops)
    bool residuals = true;
    auto make_pd = [&](const memory::desc& bias) {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_req, wei_any, bias,
                                        dst_req, {g.stride_h, g.stride_w}, {g.dil_h - 1, g.dil_w - 1}, {g.pad_top, g.pad_left},
                                        {g.pad_bottom, g.pad_right});
      return dnnl::convolution_forward::primitive_desc(d, MakeAttr(add_md, g.oc, residuals), env_->engine);
    };
    memory::desc bias_req;
    const bool has_add = std::any_of(post_ops_.begin(), post_ops_.end(), [](const PostOp& o) { return o.kind == PostOpKind::kAdd; });
    // A plain NCHW residual operand pins the dst to plain NCHW, where oneDNN has only im2col +
    // GEMM with a slow element-wise post-op pass (40x slower than its blocked kernels on a
    // ResNet-50 1x1 convolution): ask first for the layouts oneDNN picks without the residual,
    // and give the src, dst and residual operand those layouts (reordered at run time); with
    // the layouts left open oneDNN would again settle on GEMM.
    const memory::desc open_src = src_req, open_dst = dst_req;
    if (has_add && blocked && !g.channels_last) {
      residuals = false;
      try {
        const auto probe = MakeWithBias(bf16, bias_md, memory::desc({g.oc}, kBF16, Tag::a), &bias_req, make_pd);
        src_req = probe.src_desc();
        dst_req = probe.dst_desc();
        add_md = AsF32(probe.dst_desc());
      } catch (const dnnl::error&) {
      }
      residuals = true;
    }
    decltype(MakeWithBias(bf16, bias_md, bias_md, &bias_req, make_pd)) pd;
    try {
      pd = MakeWithBias(bf16, bias_md, memory::desc({g.oc}, kBF16, Tag::a), &bias_req, make_pd);
    } catch (const dnnl::error&) {
      if (add_md == add_user) throw;
      src_req = open_src;
      dst_req = open_dst;
      add_md = add_user;
      pd = MakeWithBias(bf16, bias_md, memory::desc({g.oc}, kBF16, Tag::a), &bias_req, make_pd);
    }
    // A residual operand in another layout than the dst oneDNN picked leaves only its reference
    // kernel: ask again with the operands in the dst's layout (reordered in at run time).
    if (has_add && AsF32(pd.dst_desc()) != add_user && std::string_view(pd.impl_info_str()).starts_with("ref")) {
      add_md = AsF32(pd.dst_desc());
      try {
        pd = MakeWithBias(bf16, bias_md, memory::desc({g.oc}, kBF16, Tag::a), &bias_req, make_pd);
      } catch (const dnnl::error&) {
        add_md = add_user;
        pd = MakeWithBias(bf16, bias_md, memory::desc({g.oc}, kBF16, Tag::a), &bias_req, make_pd);
      }
    }
    auto p = std::make_shared<Prim>();
    if (has_add) p->add_md = add_md;
    p->user_add_md = add_user;
    p->user_src_md = src_md;
    p->user_dst_md = dst_md;
    p->src_md = pd.src_desc();
    p->dst_md = pd.dst_desc();
    if (!blocked && (p->dst_md != dst_md || (!bf16 && !int8_ && p->src_md != src_md)))
      throw dnnl::error(dnnl_unimplemented, "conv chose a non-plain layout");
    p->weights = ConstantAs(1, pd.weights_desc(), wei_user);
    p->bias = int8_ ? Int8Bias(2, g.oc, bias_md) : BiasAs(2, bias_req, bias_md);
    SetPrimitive<dnnl::convolution_forward>(*p, pd);
    if (blocked && (p->src_md != src_md || p->dst_md != dst_md))
      p->impl += fmt::format(" ({} -> {})", FormatName(p->src_md), FormatName(p->dst_md));
    return p;
  }

  // "nchw" or "nChw8c" style names of 4-D activation layouts (for logs).
  static std::string FormatName(const memory::desc& md) {
    const auto& blk = md.data.format_desc.blocking;
    if (md.data.format_kind != dnnl_blocked) return "any";
    if (blk.inner_nblks == 0) return "nchw";
    if (blk.inner_nblks == 1 && blk.inner_idxs[0] == 1) return fmt::format("nChw{}c", blk.inner_blks[0]);
    return "blocked";
  }
};

class MatMulKernel final : public DnnlKernel {
 public:
  MatMulKernel(const ir::Graph& g, const ir::Node& node, std::shared_ptr<const KernelEnv> env)
      : DnnlKernel(g, node, std::move(env), ReferenceNode(node, "MatMul", 3, {"transpose_a", "transpose_b"})) {
    Constant(2);
    ta_ = node.attrs.GetOr<bool>("transpose_a", false);
    tb_ = node.attrs.GetOr<bool>("transpose_b", false);
  }

 protected:
  // f32: on the plain tensors (transposes are strides). bf16: a (and a non-constant b) are
  // converted to row-major bf16 in scratch, a constant b to bf16 in the primitive's layout once;
  // f32 bias (bf16 when oneDNN wants that) and dst.
  std::shared_ptr<Prim> Create(const Shape& a, const Shape& b, bool bf16) const override {
    const Shape out = FindCpuOp(node_.op)->infer(node_, {a, b})[0];
    // a of rank > 2 (not transposed): its rows [..., k] are the product's m rows.
    const int64_t n = out.back(), k = a[ta_ ? 0 : a.size() - 1], m = NumElements(out) / std::max<int64_t>(n, 1);
    const memory::data_type user_dt = int8_ ? kS8 : kF32;  // of the b tensor
    const memory::desc src_md({m, k}, int8_ ? SrcInt8Type() : kF32, ta_ ? Dims{1, m} : Dims{k, 1});
    const memory::desc wei_user({k, n}, user_dt, tb_ ? Dims{1, k} : Dims{n, 1});
    const bool const_b = constants_[1].has_value();
    const memory::desc src_req = bf16 ? memory::desc({m, k}, kBF16, Tag::ab) : src_md;
    const memory::desc wei_req = const_b ? memory::desc({k, n}, bf16 ? kBF16 : user_dt, Tag::any)
                                         : (bf16 ? memory::desc({k, n}, kBF16, Tag::ab) : wei_user);
    const memory::desc bias_md({1, n}, kF32, Tag::ab);
    const memory::desc dst_md({m, n}, DstType(), Tag::ab);
    const memory::desc add_md({m, n}, kF32, Tag::ab);
    auto make_pd = [&](const memory::desc& bias) {
      dnnl::matmul::desc d(src_req, wei_req, bias, dst_md);
      return dnnl::matmul::primitive_desc(d, MakeAttr(add_md, n), env_->engine);
    };
    memory::desc bias_req;
    const auto pd = MakeWithBias(bf16, bias_md, memory::desc({1, n}, kBF16, Tag::ab), &bias_req, make_pd);
    auto p = std::make_shared<Prim>();
    p->user_add_md = add_md;
    p->user_src_md = src_md;
    p->user_dst_md = dst_md;
    p->src_md = pd.src_desc();
    p->dst_md = pd.dst_desc();
    if (p->src_md != src_req || p->dst_md != dst_md) throw dnnl::error(dnnl_unimplemented, "matmul chose a non-plain layout");
    if (const_b) {
      p->weights = ConstantAs(1, pd.weights_desc(), wei_user);
    } else {
      p->runtime_weights = true;
      p->user_wei_md = wei_user;
      p->wei_md = pd.weights_desc();
      if (p->wei_md != wei_req) throw dnnl::error(dnnl_unimplemented, "matmul chose a non-plain weights layout");
    }
    p->bias = int8_ ? Int8Bias(2, n, bias_md) : BiasAs(2, bias_req, bias_md);
    SetPrimitive<dnnl::matmul>(*p, pd);
    return p;
  }

 private:
  bool ta_ = false, tb_ = false;
};

class BatchMatMulKernel final : public DnnlKernel {
 public:
  BatchMatMulKernel(const ir::Graph& g, const ir::Node& node, std::shared_ptr<const KernelEnv> env)
      : DnnlKernel(g, node, std::move(env), ReferenceNode(node, "BatchMatMul", 2, {"adj_x", "adj_y"})) {
    ax_ = node.attrs.GetOr<bool>("adj_x", false);
    ay_ = node.attrs.GetOr<bool>("adj_y", false);
  }

 protected:
  // Logical [batch..., rows, cols] dims of an operand padded to `rank`, with strides of its
  // row-major storage (the last two swapped when it is transposed).
  static void Operand(const Shape& s, size_t rank, bool adj, Dims* dims, Dims* strides) {
    Dims d(rank - s.size(), 1);
    d.insert(d.end(), s.begin(), s.end());
    Dims st = Contiguous(d);
    if (adj) {
      std::swap(d[rank - 1], d[rank - 2]);
      std::swap(st[rank - 1], st[rank - 2]);
    }
    *dims = d;
    *strides = st;
  }

  // f32: on the plain tensors (adjoints are strides). bf16: both operands converted to
  // row-major bf16 in scratch; f32 dst.
  std::shared_ptr<Prim> Create(const Shape& x, const Shape& y, bool bf16) const override {
    const Shape out = FindCpuOp(node_.op)->infer(node_, {x, y})[0];
    const size_t rank = out.size();
    if (rank > DNNL_MAX_NDIMS) throw dnnl::error(dnnl_unimplemented, "rank too large");
    Dims xd, xs, yd, ys;
    Operand(x, rank, ax_, &xd, &xs);
    Operand(y, rank, ay_, &yd, &ys);
    const Dims od(out.begin(), out.end());
    const memory::data_type user_dt = int8_ ? kS8 : kF32;  // of the y tensor
    const memory::desc src_md(xd, int8_ ? SrcInt8Type() : kF32, xs), wei_md(yd, user_dt, ys), dst_md(od, kF32, Contiguous(od));
    const memory::desc src_req = bf16 ? memory::desc(xd, kBF16, Contiguous(xd)) : src_md;
    const memory::desc wei_req = bf16 ? memory::desc(yd, kBF16, Contiguous(yd)) : wei_md;
    dnnl::matmul::desc d(src_req, wei_req, dst_md);
    dnnl::matmul::primitive_desc pd(d, MakeAttr(dst_md), env_->engine);
    if (bf16) RequireBf16(pd);
    auto p = std::make_shared<Prim>();
    p->user_src_md = src_md;
    p->user_wei_md = wei_md;
    p->user_dst_md = dst_md;
    p->user_add_md = dst_md;
    p->src_md = pd.src_desc();
    p->wei_md = pd.weights_desc();
    p->dst_md = pd.dst_desc();
    if (p->src_md != src_req || p->wei_md != wei_req || p->dst_md != dst_md)
      throw dnnl::error(dnnl_unimplemented, "batch matmul chose a non-plain layout");
    p->runtime_weights = true;
    SetPrimitive<dnnl::matmul>(*p, pd);
    return p;
  }

 private:
  bool ax_ = false, ay_ = false;
};

class ChainKernel final : public Kernel {
 public:
  explicit ChainKernel(const ir::Node& node) : spec_(ReadChainSpec(node)) {}
  std::string Describe() const override {
    if (const auto& q = spec_.quantize_output)
      return fmt::format("eltwise-chain({} steps, then quantize-{}(x * {:g}, [{:g}, {:g}]{}))", spec_.steps.size(),
                         q->is_unsigned ? "u8" : "s8", q->inv_scale, q->qmin, q->qmax,
                         q->zero_point != 0 ? fmt::format(" + {}", q->zero_point) : "");
    return fmt::format("eltwise-chain({} steps)", spec_.steps.size());
  }
  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    RunEltwiseChain(spec_, in, out.raw_data());
  }

 private:
  ChainSpec spec_;
};

// cpu.Pool2D: oneDNN pooling_forward (max, or avg excluding padding) on the plain tensors, one
// primitive per input shape; the reference MaxPool / AvgPool where oneDNN has none.
class Pool2DKernel final : public Kernel {
 public:
  Pool2DKernel(const ir::Node& node, std::shared_ptr<const KernelEnv> env)
      : node_(node),
        max_(node.attrs.GetOr<std::string>("kind", "max") == "max"),
        original_(ReferenceNode(node, max_ ? "MaxPool" : "AvgPool", 1, {"ksize", "strides", "padding", "pads", "data_format"})),
        env_(std::move(env)) {}

  std::string Describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return DescribeShapeCache(cache_, [](const Prim& p) { return "onednn:" + p.impl; }, "onednn pooling (no primitive yet)");
  }


  void Prepare(const std::vector<Shape>& shapes) override {
    if (NumElements(shapes.at(0)) > 0) Get(shapes[0]);
  }

  size_t scratchpad_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return max_scratch_;
  }

  void Run(std::span<const Tensor> in, Tensor& out, ExecContext& ctx) const override {
    if (out.num_elements() == 0) return;
    std::shared_ptr<const Prim> prim = in[0].num_elements() > 0 ? Get(in[0].shape()) : nullptr;
    if (!prim) {
      Tensor r = std::move(reference::RunReferenceKernel(original_, in.subspan(0, 1), nullptr)[0]);
      std::copy_n(r.data<float>(), r.num_elements(), out.data<float>());
      return;
    }
    const dnnl::engine& eng = env_->engine;
    std::unordered_map<int, memory> args;
    args.emplace(DNNL_ARG_SRC, memory(prim->src_md, eng, Ptr(in[0])));
    args.emplace(DNNL_ARG_DST, memory(prim->dst_md, eng, out.raw_data()));
    if (prim->scratch_bytes > 0) args.emplace(DNNL_ARG_SCRATCHPAD, memory(prim->scratch_md, eng, ctx.Scratch(prim->scratch_bytes)));
    prim->prim.execute(ctx.stream, args);
    ctx.stream.wait();
  }

 private:
  struct Prim {
    dnnl::pooling_forward prim;
    memory::desc src_md, dst_md, scratch_md;
    size_t scratch_bytes = 0;
    std::string impl;
  };

  std::shared_ptr<const Prim> Get(const Shape& shape) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(shape); it != cache_.end()) return it->second;
    std::shared_ptr<Prim> p;
    try {
      const ConvGeometry g = ComputePoolGeometry(node_, shape);
      const Tag tag = g.channels_last ? Tag::nhwc : Tag::nchw;
      p = std::make_shared<Prim>();
      p->src_md = memory::desc({g.n, g.c, g.h, g.w}, kF32, tag);
      p->dst_md = memory::desc({g.n, g.c, g.oh, g.ow}, kF32, tag);
      dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference,
                                    max_ ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding,
                                    p->src_md, p->dst_md, {g.stride_h, g.stride_w}, {g.kh, g.kw}, {g.pad_top, g.pad_left},
                                    {g.pad_bottom, g.pad_right});
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::pooling_forward::primitive_desc pd(d, attr, env_->engine);
      p->scratch_md = pd.scratchpad_desc();
      p->scratch_bytes = p->scratch_md.get_size();
      p->impl = pd.impl_info_str();
      p->prim = dnnl::pooling_forward(pd);
      max_scratch_ = std::max(max_scratch_, p->scratch_bytes);
    } catch (const dnnl::error&) {
      p = nullptr;  // no oneDNN pooling for this shape: the reference kernel
    }
    cache_.emplace(shape, p);
    return p;
  }

  ir::Node node_;
  bool max_;
  ir::Node original_;
  std::shared_ptr<const KernelEnv> env_;
  mutable std::mutex mu_;
  mutable std::map<Shape, std::shared_ptr<Prim>> cache_;
  mutable size_t max_scratch_ = 0;
};

// cpu.QuantizeS8: float32 to int8 (backend/cpu/int8.h).
class QuantizeKernel final : public Kernel {
 public:
  explicit QuantizeKernel(const ir::Node& node) : p_(QuantizeParamsOf(node)) {}
  std::string Describe() const override {
    if (p_.is_unsigned)
      return fmt::format("quantize-u8(x * {:g}, [{:g}, {:g}] + {})", p_.inv_scale, p_.qmin, p_.qmax, p_.zero_point);
    return fmt::format("quantize-s8(x * {:g}, [{:g}, {:g}])", p_.inv_scale, p_.qmin, p_.qmax);
  }
  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    Quantize(in[0].data<float>(), out.raw_data(), out.num_elements(), p_);
  }

 private:
  QuantizeParams p_;
};

// cpu.QuantDequant: a float32 quantize-dequantize chain in one pass (backend/cpu/int8.h).
class QuantDequantKernel final : public Kernel {
 public:
  explicit QuantDequantKernel(const ir::Node& node) : p_(QuantDequantParamsOf(node)) {}
  std::string Describe() const override {
    return fmt::format("quant-dequant(x {} {:g}, [{:g}, {:g}]) * {:g}", p_.divisor != 0 ? "/" : "*",
                       p_.divisor != 0 ? p_.divisor : p_.inv_scale, p_.qmin, p_.qmax, p_.scale);
  }
  void Run(std::span<const Tensor> in, Tensor& out, ExecContext&) const override {
    QuantDequantF32(in[0].data<float>(), out.data<float>(), out.num_elements(), p_);
  }

 private:
  QuantDequantParams p_;
};

}  // namespace

std::unique_ptr<Kernel> MakeKernel(const ir::Graph& graph, const ir::Node& node, std::shared_ptr<const KernelEnv> env) {
  if (node.op == kFusedConv2D) return std::make_unique<ConvKernel>(graph, node, std::move(env));
  if (node.op == kFusedMatMul) return std::make_unique<MatMulKernel>(graph, node, std::move(env));
  if (node.op == kFusedBatchMatMul) return std::make_unique<BatchMatMulKernel>(graph, node, std::move(env));
  if (node.op == kEltwiseChain) return std::make_unique<ChainKernel>(node);
  if (node.op == kQuantizeS8) return std::make_unique<QuantizeKernel>(node);
  if (node.op == kPool2D) return std::make_unique<Pool2DKernel>(node, std::move(env));
  if (node.op == kTranspose) return MakeTransposeKernel(graph, node, std::move(env));
  if (node.op == kQuantDequant) return std::make_unique<QuantDequantKernel>(node);
  if (node.op == kPad) return MakePadKernel(graph, node);
  if (node.op == kSelect) return MakeSelectKernel(graph, node);
  if (node.op == kCast) return MakeCastKernel(graph, node);
  if (node.op == kBinary) return MakeBinaryKernel(node);
  if (node.op == kSoftmax) return MakeSoftmaxKernel(node, std::move(env));
  if (node.op == kLayerNorm) return MakeLayerNormKernel(graph, node);
  if (node.op == kReduce) return MakeReduceKernel(node, std::move(env));
  if (node.op == kRnn || node.op == kGru || node.op == kLstm) return MakeRecurrentKernel(graph, node, std::move(env));
  throw Error(ErrorCode::kInternal, fmt::format("node '{}': no CPU kernel for op '{}'", node.name, node.op));
}

}  // namespace kiln::backend::cpu
