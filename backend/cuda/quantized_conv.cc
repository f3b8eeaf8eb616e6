#include "backend/cuda/quantized_conv.h"

#include <algorithm>
#include <cmath>

#include "ir/ops/elementwise_unary_ops.h"

namespace kiln::backend::cuda {
namespace {

constexpr const char* kQuantFormat = "quant_format";  // "int8" or "fp8"
constexpr const char* kQuantInput = "quant_input";    // inv_scale, divisor, qmin, qmax, scale
constexpr const char* kQuantFilter = "quant_filter";
constexpr const char* kQuantFilterScales = "quant_filter_scales";

// A constant float32 weight that is one scale times float8 E4M3 values (the largest magnitude 448
// steps of the scale, as FP8 precision quantizes weights): the E4M3 bytes (uint8, same shape and
// layout; RoundFloat8E4M3::Bits) and that one scale. nullopt when some value is off the grid (by
// more than a rounding error) or not finite.
std::optional<ir::GridWeights> RecoverFloat8Grid(const Tensor& w) {
  if (w.dtype() != DType::kFloat32) return std::nullopt;
  const int64_t total = w.num_elements();
  const float* src = w.data<float>();
  float amax = 0;
  for (int64_t e = 0; e < total; ++e) {
    if (!std::isfinite(src[e])) return std::nullopt;
    amax = std::max(amax, std::fabs(src[e]));
  }
  ir::GridWeights out;
  const float scale = amax / 448.0f;
  out.scales.assign(1, scale);
  out.values = Tensor(DType::kUInt8, w.shape());
  uint8_t* dst = out.values.data<uint8_t>();
  ir::elementwise::State state;
  for (int64_t e = 0; e < total; ++e) {
    if (scale == 0) {
      dst[e] = 0;
      continue;
    }
    const float k = src[e] / scale;
    const float r = ir::elementwise::RoundFloat8E4M3::Apply<float>(k, state);
    // Off the grid by more than float rounding of k * scale.
    if (std::fabs(k - r) > 1e-5f * std::max(1.0f, std::fabs(r))) return std::nullopt;
    dst[e] = ir::elementwise::RoundFloat8E4M3::Bits(r);
  }
  return out;
}

class QuantizedConvPass final : public ir::Pass {
 public:
  explicit QuantizedConvPass(ir::QuantFormat format) : format_(format) {}
  std::string name() const override { return "cuda-quantized-conv"; }

  bool Run(ir::Graph& g) override {
    const bool fp8 = format_ == ir::QuantFormat::kFloat8E4M3;
    bool changed = false;
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || n.op != "Conv2D" || n.inputs.size() < 2 || n.attrs.Has(kQuantInput)) continue;
      const ir::Value& x = g.value(n.inputs[0]);
      const Tensor* f = g.ConstantOf(n.inputs[1]);
      if (x.dtype != DType::kFloat32 || !f || f->dtype() != DType::kFloat32 || f->rank() != 4) continue;
      // One group: the filter's input channels are the input's.
      const std::string data_format = n.attrs.GetOr<std::string>("data_format", "NHWC");
      if (data_format != "NHWC" && data_format != "NCHW") continue;
      const bool channels_last = data_format == "NHWC";
      if (!x.shape.rank_known || x.shape.rank() != 4) continue;
      const ir::Dim c = x.shape.dims[channels_last ? 3 : 1];
      if (!ir::IsStatic(c) || c != f->dim(2)) continue;
      const int64_t out_c = f->dim(3);
      std::optional<ir::QuantDequant> q;
      std::optional<ir::GridWeights> grid;
      if (fp8) {
        q = ir::MatchFloat8QuantDequant(g, n.inputs[0]);
        if (!q) continue;
        grid = RecoverFloat8Grid(*f);
      } else {
        q = ir::MatchQuantDequant(g, n.inputs[0]);
        if (!q || ir::StorageFor(q->qmin, q->qmax).is_unsigned) continue;
        grid = ir::RecoverInt8Grid(*f, out_c, 1);
        if (!grid) grid = ir::RecoverInt8Grid(*f, 1, f->num_elements());  // one scale for the whole filter
      }
      if (!grid) continue;
      if (grid->scales.size() == 1) grid->scales.assign(static_cast<size_t>(out_c), grid->scales[0]);
      ir::Node& conv = g.node(n.id);
      const QuantizeParams p = QuantizeParamsOf(*q);
      conv.attrs.Set(kQuantFormat, std::string(QuantFormatName(format_)));
      conv.attrs.Set(kQuantInput, std::vector<double>{p.inv_scale, p.divisor, p.qmin, p.qmax, p.scale});
      conv.attrs.Set(kQuantFilter, std::move(grid->values));
      conv.attrs.Set(kQuantFilterScales, std::vector<double>(grid->scales.begin(), grid->scales.end()));
      conv.inputs[0] = q->source;
      changed = true;
    }
    return changed;
  }

 private:
  ir::QuantFormat format_;
};

class ImplicitQuantizationForFloatReadersPass final : public ir::Pass {
 public:
  std::string name() const override { return "cuda-implicit-quantization-float-readers"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed) continue;
      for (ir::ValueId& input : n.inputs) {
        const ir::Node* producer = g.Producer(input);
        if (!producer || !producer->attrs.GetOr<bool>(ir::kImplicitQuantization, false)) continue;
        std::optional<ir::QuantDequant> q = ir::MatchQuantDequant(g, input);
        if (!q) q = ir::MatchFloat8QuantDequant(g, input);
        if (!q) continue;
        input = q->source;
        changed = true;
      }
    }
    return changed;
  }
};

}  // namespace

const char* QuantFormatName(ir::QuantFormat format) { return format == ir::QuantFormat::kInt8 ? "int8" : "fp8"; }

std::unique_ptr<ir::Pass> MakeQuantizedConvPass(ir::QuantFormat format) {
  return std::make_unique<QuantizedConvPass>(format);
}

std::unique_ptr<ir::Pass> MakeImplicitQuantizationForFloatReadersPass() {
  return std::make_unique<ImplicitQuantizationForFloatReadersPass>();
}

std::optional<QuantizedConv> ReadQuantizedConv(const ir::Node& node) {
  if (!node.attrs.Has(kQuantInput)) return std::nullopt;
  const auto in = node.attrs.Get<std::vector<double>>(kQuantInput);
  const auto scales = node.attrs.Get<std::vector<double>>(kQuantFilterScales);
  if (in.size() != 5) return std::nullopt;
  QuantizedConv c;
  c.format = node.attrs.GetOr<std::string>(kQuantFormat, "int8") == "fp8" ? ir::QuantFormat::kFloat8E4M3
                                                                          : ir::QuantFormat::kInt8;
  c.input = {static_cast<float>(in[0]), static_cast<float>(in[1]), static_cast<float>(in[2]), static_cast<float>(in[3]),
             static_cast<float>(in[4])};
  c.filter = node.attrs.Get<Tensor>(kQuantFilter);
  c.filter_scales.assign(scales.begin(), scales.end());
  return c;
}

}  // namespace kiln::backend::cuda
