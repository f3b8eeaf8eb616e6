#include "backend/cuda/conv_kernel.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/ops/nn_util.h"
#include "kiln/error.h"

#ifdef KILN_WITH_CUDNN

#include <cudnn.h>
#include <cudnn_frontend.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cudnn_util.h"
#include "backend/cuda/quantized_conv.h"
#include "backend/cuda/quantized_library_conv.h"
#include "backend/cuda/timing_cache.h"

namespace kiln::backend::cuda {
namespace {

namespace fe = cudnn_frontend;

std::optional<fe::DataType_t> FeType(DType d) {
  switch (d) {
    case DType::kFloat32:
      return fe::DataType_t::FLOAT;
    case DType::kFloat16:
      return fe::DataType_t::HALF;
    case DType::kBFloat16:
      return fe::DataType_t::BFLOAT16;
    default:
      return std::nullopt;
  }
}

struct ConvAttrs {
  bool channels_last = true;
  std::vector<int64_t> strides{1, 1}, dilations{1, 1}, pads{0, 0, 0, 0};
  ir::nn::Padding padding = ir::nn::Padding::kValid;
};

ConvAttrs ReadAttrs(const ir::Node& node) {
  ConvAttrs a;
  const std::string format = node.attrs.GetOr<std::string>("data_format", "NHWC");
  if (!ir::nn::ChannelsLast(format, &a.channels_last) || format.size() != 4)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}): data_format '{}' is not a 2-D format", node.name, node.op, format));
  a.strides = node.attrs.GetOr<std::vector<int64_t>>("strides", {1, 1});
  a.dilations = node.attrs.GetOr<std::vector<int64_t>>("dilations", {1, 1});
  a.pads = node.attrs.GetOr<std::vector<int64_t>>("pads", {0, 0, 0, 0});
  const std::string padding = node.attrs.GetOr<std::string>("padding", "VALID");
  if (!ir::nn::ParsePadding(padding, &a.padding) || a.strides.size() != 2 || a.dilations.size() != 2 ||
      a.pads.size() != 4)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}): unsupported window attributes", node.name, node.op));
  return a;
}

// Strides of a 4-D tensor given as dims {N, C, H, W}, stored NHWC or NCHW.
std::vector<int64_t> Strides(const std::vector<int64_t>& nchw, bool channels_last) {
  const int64_t c = nchw[1], h = nchw[2], w = nchw[3];
  if (channels_last) return {h * w * c, 1, w * c, c};
  return {c * h * w, h * w, w, 1};
}

KernelStorage StorageOf(ir::QuantFormat format) {
  return format == ir::QuantFormat::kInt8 ? KernelStorage::kInt8 : KernelStorage::kFloat8E4M3;
}

// The operand storage library kernels would run a marked convolution with, or nullopt where they
// have no form for its epilogue (kLibraryOperands).
std::optional<QuantizedOperands> LibraryOperands(const QuantizedConv& quant, const ConvEpilogue& epilogue,
                                                 DType dtype) {
  // An output or a residual not stored in 8 bits is float16 for the library kernels.
  if (!epilogue.quantized_output && dtype != DType::kFloat16) return std::nullopt;
  if (epilogue.residual && !epilogue.residual_scale && dtype != DType::kFloat16) return std::nullopt;
  const KernelStorage input = StorageOf(quant.format);
  const KernelStorage output =
      epilogue.quantized_output ? StorageOf(epilogue.output_format) : KernelStorage::kFloat16;
  const KernelStorage residual = !epilogue.residual         ? output
                                 : epilogue.residual_scale ? StorageOf(epilogue.residual_format)
                                                           : KernelStorage::kFloat16;
  const QuantizedOperands operands{input, output, residual};
  for (const QuantizedOperands& offered : kLibraryOperands)
    if (operands == offered) return operands;
  return std::nullopt;
}

}  // namespace

bool HaveCudnn() { return true; }

std::string CudnnVersion() {
  const size_t v = cudnnGetVersion();
  return fmt::format("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100);
}

std::optional<std::string> ConvUnsupported(const ir::Graph& graph, const ir::Node& node) {
  const DType dtype = graph.value(node.inputs[0]).dtype;
  if (!FeType(dtype)) return fmt::format("cuDNN convolutions take float32/float16/bfloat16, not {}", DTypeName(dtype));
  if (!graph.ConstantOf(node.inputs[1])) return "the filter is not a constant";
  if (node.inputs.size() > 2 && !graph.ConstantOf(node.inputs[2])) return "the bias is not a constant";
  try {
    ReadAttrs(node);
  } catch (const Error& e) {
    return e.what();
  }
  return std::nullopt;
}

struct ConvKernel::Impl {
  int device = 0;
  DType dtype = DType::kFloat32;
  ConvAttrs attrs;
  int64_t out_c = 0, in_c_per_group = 0, kh = 0, kw = 0;
  ConvEpilogue epilogue;
  Tensor filter;  // device, KRSC
  Tensor bias;    // device, [K], or undefined
  std::string name;
  // Marked by cuda-quantized-conv: the input's quantization, the 8-bit filter (device, KRSC), the
  // float32 scale of each output channel's sums (input scale x filter scale), and the kernels
  // that quantize the input to 8 bits (quantized plans) or dequantize it (float plans).
  std::optional<QuantizedConv> quant;
  bool input_quantized = false;
  Tensor filter_q;
  Tensor channel_scales;
  Tensor output_inv_scales;  // device float32 [K], each the 8-bit output's inv_scale
  Tensor residual_scales;    // device float32 [K], each the 8-bit residual's scale
  std::unique_ptr<QuantizeKernel> quantize, fake_quantize;

  bool choose_by_timing = false;  // a float plan replaces a slower 8-bit one
  // A quantized convolution may run a library kernel other than cuDNN's (quantized_library_conv.h:
  // cuBLASLt or CUTLASS) where that is faster than cuDNN's plan: int8 writing int8, E4M3 writing
  // E4M3 or float16. Its per-channel scale and bias over an 8-bit output's scale, and an 8-bit
  // residual's scale over it.
  std::optional<QuantizedOperands> library_operands;  // set where library kernels may run it
  Tensor library_alpha, library_bias;                 // device float32 [K]
  float library_beta = 0;

  struct Plan {
    std::shared_ptr<fe::graph::Graph> graph;
    std::shared_ptr<fe::graph::Tensor_attributes> x, w, s, b, z, zs, q, y;
    int64_t workspace = 0;
    bool quantized = false;
    std::string problem;  // the timing cache's description of it
    size_t x_bytes = 0, y_bytes = 0, z_bytes = 0;
    std::unique_ptr<QuantizedLibraryConv> library;  // runs instead of the cuDNN graph (a quantized plan's faster form)
  };
  mutable int plans_tuned = 0;
  mutable std::string quantized_refusal;  // why cuDNN ran a marked convolution's shape in float
  mutable std::mutex mu;             // plans and the handle (one stream at a time)
  mutable std::map<Shape, std::unique_ptr<Plan>> plans;
  cudnnHandle_t handle = nullptr;

  Plan& PlanFor(const Shape& x_shape, const Shape& y_shape) const;
  // Scratch activations and the real weights, for timing `plan`.
  CudnnVariantPack ScratchPack(const Plan& plan, CudnnScratch& scratch) const;
  // Of a marked convolution's 8-bit plan and its float plan, the faster (the timing cache
  // remembers which); `quantized_plan` is kept or replaced.
  void KeepFaster(std::unique_ptr<Plan>& quantized_plan, const Shape& x_shape, const Shape& y_shape) const;
  // Gives a quantized plan a library kernel (library_operands) when one is faster than the cuDNN
  // graph (the timing cache remembers which).
  void ChooseLibraryKernel(Plan& plan, const Shape& x_shape, const Shape& y_shape) const;
  // The padding before and after of each spatial dimension, as the plans apply it.
  void Padding(const Shape& x_shape, std::vector<int64_t>& pre, std::vector<int64_t>& post) const;
  // Microseconds per run of a plan on scratch operands.
  double TimePlan(const Plan& plan) const;
  // quantized: conv_out is the type of the sums as the epilogue reads them.
  std::unique_ptr<Plan> BuildPlan(const Shape& x_shape, const Shape& y_shape, bool quantized,
                                  fe::DataType_t conv_out) const;
  static fe::DataType_t StorageType(ir::QuantFormat format) {
    return format == ir::QuantFormat::kFloat8E4M3 ? fe::DataType_t::FP8_E4M3 : fe::DataType_t::INT8;
  }
};

ConvKernel::ConvKernel(const ir::Graph& graph, const ir::Node& node, int device, ConvEpilogue epilogue,
                       bool input_quantized, bool choose_by_timing)
    : impl_(std::make_unique<Impl>()) {
  Impl& k = *impl_;
  k.device = device;
  k.epilogue = epilogue;
  k.input_quantized = input_quantized;
  k.choose_by_timing = choose_by_timing;
  k.name = node.name;
  k.dtype = graph.value(node.inputs[0]).dtype;
  k.attrs = ReadAttrs(node);
  const Tensor& f = *graph.ConstantOf(node.inputs[1]);  // HWIO: [R, S, C/groups, K] (depthwise: [R, S, C, M])
  if (f.rank() != 4 || f.dtype() != k.dtype)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("node '{}' ({}): expected a 4-D {} filter", node.name, node.op, DTypeName(k.dtype)));
  const int64_t R = f.dim(0), S = f.dim(1), C = f.dim(2), M = f.dim(3);
  const bool depthwise = node.op == "DepthwiseConv2D";
  k.kh = R;
  k.kw = S;
  k.out_c = depthwise ? C * M : M;
  k.in_c_per_group = depthwise ? 1 : C;
  // KRSC: filter[k][r][s][c].
  auto to_krsc = [&](const Tensor& hwio) {
    const size_t elem = DTypeSize(hwio.dtype());
    Tensor krsc(hwio.dtype(), {k.out_c, R, S, k.in_c_per_group});
    const auto* src = static_cast<const char*>(hwio.raw_data());
    auto* dst = static_cast<char*>(krsc.raw_data());
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t m = 0; m < M; ++m) {
            const int64_t out_k = depthwise ? c * M + m : m;
            const int64_t in_c = depthwise ? 0 : c;
            const int64_t from = ((r * S + s) * C + c) * M + m;
            const int64_t to = ((out_k * R + r) * S + s) * k.in_c_per_group + in_c;
            std::memcpy(dst + to * elem, src + from * elem, elem);
          }
    return krsc;
  };
  const DeviceServices& services = Services(device);
  auto upload = [&](const Tensor& host) {
    Tensor d = services.allocator().AllocateTensor(host.dtype(), host.shape());
    Check(cudaMemcpy(d.raw_data(), host.raw_data(), host.byte_size(), cudaMemcpyHostToDevice), "cudaMemcpy (filter)");
    return d;
  };
  k.filter = upload(to_krsc(f));
  if (node.inputs.size() > 2) k.bias = upload(*graph.ConstantOf(node.inputs[2]));
  k.quant = ReadQuantizedConv(node);
  if (k.quant) {
    const DType stored = StoredDType(k.quant->format);
    if (depthwise || k.quant->filter.shape() != f.shape() || k.quant->filter.dtype() != stored ||
        static_cast<int64_t>(k.quant->filter_scales.size()) != k.out_c)
      throw Error(ErrorCode::kInternal, fmt::format("node '{}': malformed {} attributes", node.name,
                                                    QuantFormatName(k.quant->format)));
    k.filter_q = upload(to_krsc(k.quant->filter));
    Tensor scales(DType::kFloat32, {k.out_c});
    for (int64_t c = 0; c < k.out_c; ++c)
      scales.data<float>()[c] = k.quant->input.scale * k.quant->filter_scales[static_cast<size_t>(c)];
    k.channel_scales = upload(scales);
    const GpuArch arch = ArchOf(device);
    k.quantize = std::make_unique<QuantizeKernel>(k.dtype, k.quant->format, /*dequantize=*/false, arch);
    k.fake_quantize = std::make_unique<QuantizeKernel>(k.dtype, k.quant->format, /*dequantize=*/true, arch);
  }
  if (input_quantized && !k.quant)
    throw Error(ErrorCode::kInternal,
                fmt::format("node '{}': an 8-bit input for a convolution not marked quantized", node.name));
  if (epilogue.quantized_output) {
    if (epilogue.quantized_output->divisor != 0)
      throw Error(ErrorCode::kInternal, fmt::format("node '{}': an 8-bit output quantized by division", node.name));
    k.output_inv_scales = upload(Tensor::FromVector<float>(
        DType::kFloat32, {k.out_c},
        std::vector<float>(static_cast<size_t>(k.out_c), epilogue.quantized_output->inv_scale)));
  }
  if (epilogue.residual_scale) {
    if (!epilogue.residual)
      throw Error(ErrorCode::kInternal, fmt::format("node '{}': a residual scale without a residual", node.name));
    k.residual_scales = upload(Tensor::FromVector<float>(
        DType::kFloat32, {k.out_c}, std::vector<float>(static_cast<size_t>(k.out_c), *epilogue.residual_scale)));
  }
  const bool one_group = !depthwise;  // and the input's channels equal the filter's (checked per shape)
  if (k.quant && one_group && k.attrs.channels_last) {
    if (const auto operands = LibraryOperands(*k.quant, epilogue, k.dtype)) {
      // Over an 8-bit output's scale (a float16 output as it is); a float16 residual unscaled.
      const float inv_out = epilogue.quantized_output ? epilogue.quantized_output->inv_scale : 1.0f;
      std::vector<float> alpha(static_cast<size_t>(k.out_c)), bias(static_cast<size_t>(k.out_c), 0.0f);
      for (int64_t c = 0; c < k.out_c; ++c) {
        alpha[static_cast<size_t>(c)] = k.quant->input.scale * k.quant->filter_scales[static_cast<size_t>(c)] * inv_out;
        if (node.inputs.size() > 2)
          bias[static_cast<size_t>(c)] = static_cast<float>(graph.ConstantOf(node.inputs[2])->DoubleAt(c)) * inv_out;
      }
      k.library_alpha = upload(Tensor::FromVector<float>(DType::kFloat32, {k.out_c}, alpha));
      k.library_bias = upload(Tensor::FromVector<float>(DType::kFloat32, {k.out_c}, bias));
      k.library_beta = (epilogue.residual_scale ? *epilogue.residual_scale : 1.0f) * inv_out;
      k.library_operands = *operands;
    }
  }
  k.handle = NewCudnnHandle(device);
}

ConvKernel::~ConvKernel() {
  if (impl_ && impl_->handle) cudnnDestroy(impl_->handle);
}

ConvKernel::Impl::Plan& ConvKernel::Impl::PlanFor(const Shape& x_shape, const Shape& y_shape) const {
  auto& slot = plans[x_shape];
  if (slot) return *slot;
  if (quant) {
    // cuDNN may read int8's int32 sums into the float epilogue as either type, depending on
    // version; float8 products are summed in float.
    const bool fp8 = quant->format == ir::QuantFormat::kFloat8E4M3;
    for (fe::DataType_t sums : {fp8 ? fe::DataType_t::FLOAT : fe::DataType_t::INT32, fe::DataType_t::FLOAT}) {
      try {
        slot = BuildPlan(x_shape, y_shape, true, sums);
        break;
      } catch (const Error& e) {
        quantized_refusal = fmt::format("cuDNN has no {} kernel for input {}: {}", QuantFormatName(quant->format),
                                        ShapeToString(x_shape), e.what());
      }
      if (fp8) break;
    }
  }
  if (slot && slot->quantized) ChooseLibraryKernel(*slot, x_shape, y_shape);
  if (slot && !input_quantized && choose_by_timing) KeepFaster(slot, x_shape, y_shape);
  if (!slot && input_quantized)
    throw Error(ErrorCode::kUnavailable,
                fmt::format("node '{}': cuDNN has no {} convolution for input {} ({}), and its producer writes {}", name,
                            QuantFormatName(quant->format), ShapeToString(x_shape), quantized_refusal,
                            QuantFormatName(quant->format)));
  if (!slot) slot = BuildPlan(x_shape, y_shape, false, fe::DataType_t::FLOAT);
  ++plans_tuned;
  return *slot;
}

void ConvKernel::Impl::Padding(const Shape& x_shape, std::vector<int64_t>& pre, std::vector<int64_t>& post) const {
  const bool cl = attrs.channels_last;
  const int64_t in[2] = {x_shape[cl ? 1 : 2], x_shape[cl ? 2 : 3]}, kernel[2] = {kh, kw};
  pre.assign(2, 0);
  post.assign(2, 0);
  for (int i = 0; i < 2; ++i) {
    ir::nn::WindowDim wd;
    std::string error;
    if (!ir::nn::ComputeWindow(in[i], kernel[i], attrs.strides[static_cast<size_t>(i)],
                               attrs.dilations[static_cast<size_t>(i)], attrs.padding,
                               attrs.pads[static_cast<size_t>(2 * i)], attrs.pads[static_cast<size_t>(2 * i + 1)], &wd,
                               &error))
      throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}': {}", name, error));
    pre[static_cast<size_t>(i)] = wd.pad_before;
    post[static_cast<size_t>(i)] = wd.pad_after;
  }
}

std::unique_ptr<ConvKernel::Impl::Plan> ConvKernel::Impl::BuildPlan(const Shape& x_shape, const Shape& y_shape, bool quantized,
                                                                  fe::DataType_t conv_out) const {
  const bool cl = attrs.channels_last;
  const int64_t n = x_shape[0], c = x_shape[cl ? 3 : 1], h = x_shape[cl ? 1 : 2], w = x_shape[cl ? 2 : 3];
  const int64_t oh = y_shape[cl ? 1 : 2], ow = y_shape[cl ? 2 : 3];
  std::vector<int64_t> pre, post;
  Padding(x_shape, pre, post);
  auto plan = std::make_unique<Plan>();
  auto g = std::make_shared<fe::graph::Graph>();
  const fe::DataType_t io = *FeType(dtype);
  g->set_io_data_type(io)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  plan->quantized = quantized;
  plan->x = g->tensor(
      fe::graph::Tensor_attributes().set_name("x").set_dim({n, c, h, w}).set_stride(Strides({n, c, h, w}, cl)));
  const std::vector<int64_t> wdims = {out_c, in_c_per_group, kh, kw};
  plan->w = g->tensor(fe::graph::Tensor_attributes().set_name("w").set_dim(wdims).set_stride(Strides(wdims, true)));
  auto conv = fe::graph::Conv_fprop_attributes()
                  .set_pre_padding(pre)
                  .set_post_padding(post)
                  .set_stride(attrs.strides)
                  .set_dilation(attrs.dilations);
  if (quantized) {
    const fe::DataType_t storage = StorageType(quant->format);
    plan->x->set_data_type(storage);
    plan->w->set_data_type(storage);
    conv.set_compute_data_type(storage == fe::DataType_t::INT8 ? fe::DataType_t::INT32 : fe::DataType_t::FLOAT);
  }
  auto y = g->conv_fprop(plan->x, plan->w, conv);
  if (quantized) {
    // The sums times (input scale x the channel's filter scale), in float.
    y->set_data_type(conv_out);
    const std::vector<int64_t> sdims = {1, out_c, 1, 1};
    plan->s = g->tensor(fe::graph::Tensor_attributes()
                            .set_name("s")
                            .set_dim(sdims)
                            .set_stride({out_c, 1, out_c, out_c})
                            .set_data_type(fe::DataType_t::FLOAT));
    y = g->pointwise(y, plan->s, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::MUL));
  }
  if (bias.defined()) {
    const std::vector<int64_t> bdims = {1, out_c, 1, 1};
    plan->b =
        g->tensor(fe::graph::Tensor_attributes().set_name("b").set_dim(bdims).set_stride({out_c, 1, out_c, out_c}));
    y = g->pointwise(y, plan->b, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::ADD));
  }
  if (epilogue.residual) {
    plan->z = g->tensor(fe::graph::Tensor_attributes()
                            .set_name("z")
                            .set_dim({n, out_c, oh, ow})
                            .set_stride(Strides({n, out_c, oh, ow}, cl)));
    std::shared_ptr<fe::graph::Tensor_attributes> z = plan->z;
    if (epilogue.residual_scale) {
      plan->z->set_data_type(StorageType(epilogue.residual_format));
      plan->zs = g->tensor(fe::graph::Tensor_attributes()
                               .set_name("zs")
                               .set_dim({1, out_c, 1, 1})
                               .set_stride({out_c, 1, out_c, out_c})
                               .set_data_type(fe::DataType_t::FLOAT));
      z = g->pointwise(plan->z, plan->zs, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::MUL));
    }
    y = g->pointwise(y, z, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::ADD));
  }
  if (epilogue.relu) y = g->pointwise(y, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::RELU_FWD));
  if (epilogue.quantized_output) {
    plan->q = g->tensor(fe::graph::Tensor_attributes()
                            .set_name("q")
                            .set_dim({1, out_c, 1, 1})
                            .set_stride({out_c, 1, out_c, out_c})
                            .set_data_type(fe::DataType_t::FLOAT));
    y = g->pointwise(y, plan->q, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::MUL));
    if (epilogue.output_format == ir::QuantFormat::kFloat8E4M3) {
      // Saturate as RoundFloat8E4M3 does: E4M3 has no infinities, so a plain conversion of a
      // value beyond 448 would be NaN.
      y = g->pointwise(y, g->tensor(fe::graph::Tensor_attributes(448.0f)),
                       fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::MIN));
      y = g->pointwise(y, g->tensor(fe::graph::Tensor_attributes(-448.0f)),
                       fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::MAX));
    }
  }
  y->set_output(true)
      .set_data_type(epilogue.quantized_output ? StorageType(epilogue.output_format) : io)
      .set_dim({n, out_c, oh, ow})
      .set_stride(Strides({n, out_c, oh, ow}, cl));
  plan->y = y;
  CheckFe(g->validate(), fmt::format("validate (node '{}')", name));
  CheckFe(g->build_operation_graph(handle), fmt::format("build_operation_graph (node '{}')", name));
  CheckFe(g->create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}),
          fmt::format("create_execution_plans (node '{}')", name));
  if (dtype == DType::kFloat32 && !quantized)
    g->deselect_numeric_notes({fe::NumericalNote_t::TENSOR_CORE, fe::NumericalNote_t::DOWN_CONVERT_INPUTS,
                               fe::NumericalNote_t::REDUCED_PRECISION_REDUCTION, fe::NumericalNote_t::FFT,
                               fe::NumericalNote_t::WINOGRAD});
  CheckFe(g->check_support(handle), fmt::format("check_support (node '{}', input {})", name, ShapeToString(x_shape)));
  const std::string problem = fmt::format(
      "conv {}{} {} x{} w[{},{},{},{}] stride{} dilation{} pad{}/{} bias{} residual{}{} relu{}{}", DTypeName(dtype),
      quantized ? fmt::format(" {} sums {}", QuantFormatName(quant->format), static_cast<int>(conv_out)) : "",
      cl ? "NHWC" : "NCHW", fmt::join(std::vector<int64_t>{n, c, h, w}, ","), out_c, in_c_per_group, kh, kw,
      fmt::join(attrs.strides, ","), fmt::join(attrs.dilations, ","), fmt::join(pre, ","), fmt::join(post, ","),
      bias.defined(), epilogue.residual,
      epilogue.residual_scale ? fmt::format(" {}", QuantFormatName(epilogue.residual_format)) : "", epilogue.relu,
      epilogue.quantized_output ? fmt::format(" {} out", QuantFormatName(epilogue.output_format)) : "");
  const size_t elem = DTypeSize(dtype);
  plan->x_bytes = static_cast<size_t>(n * c * h * w) * (quantized ? 1 : elem);
  plan->y_bytes = static_cast<size_t>(n * out_c * oh * ow) * (epilogue.quantized_output ? 1 : elem);
  plan->z_bytes = static_cast<size_t>(n * out_c * oh * ow) * (epilogue.residual_scale ? 1 : elem);
  plan->problem = problem;
  BuildTunedPlan(
      *g, handle, problem, kTunedCandidates, [&](CudnnScratch& scratch) { return ScratchPack(*plan, scratch); },
      fmt::format("node '{}'", name));
  CheckFe(g->get_workspace_size(plan->workspace), "get_workspace_size");
  plan->graph = g;
  return plan;
}

CudnnVariantPack ConvKernel::Impl::ScratchPack(const Plan& plan, CudnnScratch& scratch) const {
  CudnnVariantPack pack = {{plan.x, scratch.Add(plan.x_bytes)},
                           {plan.w, const_cast<void*>(plan.quantized ? filter_q.raw_data() : filter.raw_data())},
                           {plan.y, scratch.Add(plan.y_bytes)}};
  if (plan.s) pack[plan.s] = const_cast<void*>(channel_scales.raw_data());
  if (plan.b) pack[plan.b] = const_cast<void*>(bias.raw_data());
  if (plan.z) pack[plan.z] = scratch.Add(plan.z_bytes);
  if (plan.zs) pack[plan.zs] = const_cast<void*>(residual_scales.raw_data());
  if (plan.q) pack[plan.q] = const_cast<void*>(output_inv_scales.raw_data());
  return pack;
}

double ConvKernel::Impl::TimePlan(const Plan& plan) const {
  if (plan.library) return plan.library->microseconds();
  CudnnScratch scratch;
  CudnnVariantPack pack = ScratchPack(plan, scratch);
  return TimeCudnnGraph(*plan.graph, handle, pack, plan.workspace);
}

void ConvKernel::Impl::ChooseLibraryKernel(Plan& plan, const Shape& x_shape, const Shape& y_shape) const {
  // NHWC (library_operands), one group.
  if (!library_operands || x_shape.size() != 4 || y_shape.size() != 4 || x_shape[3] != in_c_per_group) return;
  TimingCache& cache = ProcessTimingCache();
  const std::string key = fmt::format("cudnn {} | {} | {} | library kernel or cudnn: {}", cudnnGetVersion(),
                                      QuantizedLibraryConv::LibrariesKey(), TacticDeviceKey(), plan.problem);
  const std::optional<std::string> known = cache.Find(key);
  if (known == "cudnn") return;
  QuantizedConvShape shape;
  shape.operands = *library_operands;
  shape.n = x_shape[0];
  shape.h = x_shape[1];
  shape.w = x_shape[2];
  shape.c = x_shape[3];
  shape.k = out_c;
  shape.r = kh;
  shape.s = kw;
  shape.p = y_shape[1];
  shape.q = y_shape[2];
  std::vector<int64_t> pre, post;
  Padding(x_shape, pre, post);
  shape.pad_top = pre[0];
  shape.pad_left = pre[1];
  shape.pad_bottom = post[0];
  shape.pad_right = post[1];
  shape.stride_h = attrs.strides[0];
  shape.stride_w = attrs.strides[1];
  shape.dilation_h = attrs.dilations[0];
  shape.dilation_w = attrs.dilations[1];
  shape.residual = epilogue.residual;
  shape.relu = epilogue.relu;
  shape.bias = bias.defined();
  std::unique_ptr<QuantizedLibraryConv> library;
  try {
    library = std::make_unique<QuantizedLibraryConv>(shape);
  } catch (const Error& e) {
    LogTacticTimings(key + " (" + e.what() + ")", {{"cudnn", -1}}, 0);
    cache.Record(key, "cudnn");
    return;
  }
  if (known != "library") {
    const double cudnn_us = TimePlan(plan), library_us = library->microseconds();
    const bool use_library = library_us < cudnn_us;
    LogTacticTimings(key, {{"cudnn", cudnn_us}, {library->kernel(), library_us}}, use_library ? 1 : 0);
    cache.Record(key, use_library ? "library" : "cudnn");
    if (!use_library) return;
  }
  plan.library = std::move(library);
}

void ConvKernel::Impl::KeepFaster(std::unique_ptr<Plan>& quantized_plan, const Shape& x_shape,
                                  const Shape& y_shape) const {
  // Both read a quantize kernel's output (8-bit, or the dequantized values): the convolutions
  // alone decide. cuDNN's 8-bit kernels are not always the faster: an image stem of 3 channels,
  // or 1x1 convolutions on Hopper, can run several times slower than float16 ones.
  TimingCache& cache = ProcessTimingCache();
  const std::string key =
      fmt::format("cudnn {} | {} | 8-bit or float: {}", cudnnGetVersion(), TacticDeviceKey(), quantized_plan->problem);
  const std::optional<std::string> known = cache.Find(key);
  if (known == "8-bit") return;
  std::unique_ptr<Plan> float_plan;
  try {
    float_plan = BuildPlan(x_shape, y_shape, false, fe::DataType_t::FLOAT);
  } catch (const Error&) {
    return;  // no float plan: the 8-bit one stays
  }
  if (known == "float") {
    quantized_refusal = "its float plan was faster when timed (timing cache)";
    quantized_plan = std::move(float_plan);
    return;
  }
  const double q_us = TimePlan(*quantized_plan), f_us = TimePlan(*float_plan);
  const bool use_float = f_us < q_us;
  LogTacticTimings(key, {{"8-bit", q_us}, {"float", f_us}}, use_float ? 1 : 0);
  cache.Record(key, use_float ? "float" : "8-bit");
  if (!use_float) return;
  quantized_refusal = fmt::format("its float plan is faster ({:.1f} us against {:.1f} us)", f_us, q_us);
  quantized_plan = std::move(float_plan);
}

int ConvKernel::plans_tuned() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->plans_tuned;
}

std::optional<ir::QuantFormat> ConvKernel::quantized_format() const {
  if (!impl_->quant) return std::nullopt;
  return impl_->quant->format;
}

bool ConvKernel::runs_quantized() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->quant || impl_->plans.empty()) return false;
  return std::all_of(impl_->plans.begin(), impl_->plans.end(),
                     [](const auto& p) { return p.second && p.second->quantized; });
}

std::string ConvKernel::quantized_refusal() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->quantized_refusal;
}

std::string ConvKernel::quantized_library() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->plans.empty() || !std::all_of(impl_->plans.begin(), impl_->plans.end(),
                                           [](const auto& p) { return p.second && p.second->library; }))
    return "";
  return impl_->plans.begin()->second->library->library();
}

bool ConvKernel::writes_quantized() const { return impl_->epilogue.quantized_output.has_value(); }
bool ConvKernel::reads_quantized_residual() const { return impl_->epilogue.residual_scale.has_value(); }

void ConvKernel::Prepare(const Shape& x_shape, const Shape& y_shape) const {
  DeviceScope scope(impl_->device);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->PlanFor(x_shape, y_shape);
}

void ConvKernel::Launch(const Tensor& x, const Tensor* residual, Tensor& out, cudaStream_t stream) const {
  Impl& k = *impl_;
  if (k.epilogue.residual != (residual != nullptr))
    throw Error(ErrorCode::kInternal, fmt::format("node '{}': the residual input does not match the plan", k.name));
  if (out.num_elements() == 0) return;
  std::lock_guard<std::mutex> lock(k.mu);
  Impl::Plan& plan = k.PlanFor(x.shape(), out.shape());
  // A marked convolution reads its input quantized: 8-bit for quantized plans, else dequantized.
  const void* input = x.raw_data();
  std::shared_ptr<Buffer> staged;
  if (k.input_quantized) {
    if (x.dtype() != k.quantize->output_dtype() || !plan.quantized)
      throw Error(ErrorCode::kInternal, fmt::format("node '{}': expected an 8-bit input for a quantized plan", k.name));
  } else if (k.quant) {
    const QuantizeKernel& q = plan.quantized ? *k.quantize : *k.fake_quantize;
    staged = AllocateOnStream(k.device, static_cast<size_t>(x.num_elements()) * DTypeSize(q.output_dtype()), stream);
    q.Launch(x.raw_data(), staged->data(), x.num_elements(), k.quant->input, stream);
    input = staged->data();
  }
  if (plan.library) {
    if (residual && residual->shape() != out.shape())
      throw Error(ErrorCode::kInternal, fmt::format("node '{}': the residual {} does not match the output {}", k.name,
                                                    ShapeToString(residual->shape()), ShapeToString(out.shape())));
    plan.library->Launch(input, k.filter_q.raw_data(), k.library_alpha.data<float>(),
                         k.bias.defined() ? k.library_bias.data<float>() : nullptr,
                         residual ? residual->raw_data() : nullptr, k.library_beta, out.raw_data(), stream);
    return;
  }
  CudnnVariantPack pack = {{plan.x, const_cast<void*>(input)},
                           {plan.w, plan.quantized ? k.filter_q.raw_data() : k.filter.raw_data()},
                           {plan.y, out.raw_data()}};
  if (plan.s) pack[plan.s] = k.channel_scales.raw_data();
  if (plan.q) pack[plan.q] = k.output_inv_scales.raw_data();
  if (plan.b) pack[plan.b] = k.bias.raw_data();
  if (plan.z) {
    if (residual->shape() != out.shape())
      throw Error(ErrorCode::kInternal, fmt::format("node '{}': the residual {} does not match the output {}", k.name,
                                                    ShapeToString(residual->shape()), ShapeToString(out.shape())));
    pack[plan.z] = const_cast<void*>(residual->raw_data());
  }
  if (plan.zs) pack[plan.zs] = k.residual_scales.raw_data();
  ExecuteOnStream(k.handle, *plan.graph, pack, plan.workspace, stream, fmt::format("node '{}'", k.name));
}

}  // namespace kiln::backend::cuda

#else  // no cuDNN in this build

namespace kiln::backend::cuda {

bool HaveCudnn() { return false; }
std::string CudnnVersion() { return "none"; }
std::optional<std::string> ConvUnsupported(const ir::Graph&, const ir::Node&) {
  return "this build of Kiln has no cuDNN (scripts/fetch_cudnn_frontend.sh; see docs/cuda-backend.md)";
}
struct ConvKernel::Impl {};
ConvKernel::ConvKernel(const ir::Graph&, const ir::Node& node, int, ConvEpilogue, bool, bool) {
  throw Error(ErrorCode::kUnimplemented, fmt::format("node '{}': this build of Kiln has no cuDNN", node.name));
}
ConvKernel::~ConvKernel() = default;
void ConvKernel::Prepare(const Shape&, const Shape&) const {}
void ConvKernel::Launch(const Tensor&, const Tensor*, Tensor&, cudaStream_t) const {}
int ConvKernel::plans_tuned() const { return 0; }
std::optional<ir::QuantFormat> ConvKernel::quantized_format() const { return std::nullopt; }
bool ConvKernel::runs_quantized() const { return false; }
std::string ConvKernel::quantized_refusal() const { return {}; }
bool ConvKernel::writes_quantized() const { return false; }
std::string ConvKernel::quantized_library() const { return ""; }
bool ConvKernel::reads_quantized_residual() const { return false; }

}  // namespace kiln::backend::cuda

#endif
