#include "backend/cuda/int8_conv.h"

#include "ir/quant_dequant.h"

namespace kiln::backend::cuda {
namespace {

constexpr const char* kInt8Input = "int8_input";  // inv_scale, divisor, qmin, qmax, scale
constexpr const char* kInt8Filter = "int8_filter";
constexpr const char* kInt8FilterScales = "int8_filter_scales";

class Int8ConvPass final : public ir::Pass {
 public:
  std::string name() const override { return "cuda-int8-conv"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      const ir::Node& n = g.node(static_cast<ir::NodeId>(i));
      if (n.removed || n.op != "Conv2D" || n.inputs.size() < 2 || n.attrs.Has(kInt8Input)) continue;
      const ir::Value& x = g.value(n.inputs[0]);
      const Tensor* f = g.ConstantOf(n.inputs[1]);
      if (x.dtype != DType::kFloat32 || !f || f->dtype() != DType::kFloat32 || f->rank() != 4) continue;
      // One group: the filter's input channels are the input's.
      const std::string format = n.attrs.GetOr<std::string>("data_format", "NHWC");
      if (format != "NHWC" && format != "NCHW") continue;
      const bool channels_last = format == "NHWC";
      if (!x.shape.rank_known || x.shape.rank() != 4) continue;
      const ir::Dim c = x.shape.dims[channels_last ? 3 : 1];
      if (!ir::IsStatic(c) || c != f->dim(2)) continue;
      const std::optional<ir::QuantDequant> q = ir::MatchQuantDequant(g, n.inputs[0]);
      if (!q || ir::StorageFor(q->qmin, q->qmax).is_unsigned) continue;
      const int64_t out_c = f->dim(3);
      std::optional<ir::GridWeights> grid = ir::RecoverInt8Grid(*f, out_c, 1);
      if (!grid) {
        grid = ir::RecoverInt8Grid(*f, 1, f->num_elements());  // one scale for the whole filter
        if (!grid) continue;
        grid->scales.assign(static_cast<size_t>(out_c), grid->scales[0]);
      }
      ir::Node& conv = g.node(n.id);
      const QuantizeParams p = QuantizeParamsOf(*q);
      conv.attrs.Set(kInt8Input, std::vector<double>{p.inv_scale, p.divisor, p.qmin, p.qmax, p.scale});
      conv.attrs.Set(kInt8Filter, std::move(grid->values));
      conv.attrs.Set(kInt8FilterScales, std::vector<double>(grid->scales.begin(), grid->scales.end()));
      conv.inputs[0] = q->source;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<ir::Pass> MakeInt8ConvPass() { return std::make_unique<Int8ConvPass>(); }

std::optional<Int8Conv> ReadInt8Conv(const ir::Node& node) {
  if (!node.attrs.Has(kInt8Input)) return std::nullopt;
  const auto in = node.attrs.Get<std::vector<double>>(kInt8Input);
  const auto scales = node.attrs.Get<std::vector<double>>(kInt8FilterScales);
  if (in.size() != 5) return std::nullopt;
  Int8Conv c;
  c.input = {static_cast<float>(in[0]), static_cast<float>(in[1]), static_cast<float>(in[2]), static_cast<float>(in[3]),
             static_cast<float>(in[4])};
  c.filter = node.attrs.Get<Tensor>(kInt8Filter);
  c.filter_scales.assign(scales.begin(), scales.end());
  return c;
}

}  // namespace kiln::backend::cuda
