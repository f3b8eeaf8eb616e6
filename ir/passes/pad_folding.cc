// Pad folding: a zero Pad of the spatial dims read by a 2-D convolution becomes the
// convolution's own padding (EXPLICIT pads). Keras' ZeroPadding2D before a VALID convolution
// (MobileNet's strided depthwise blocks, ResNet's stem) and exporters' separate Pad nodes then
// run in the convolution kernel instead of copying the whole activation first.
//
// Folded when the Pad is CONSTANT mode with value 0 (or no value), its paddings are a constant
// that pads no batch or channel dim, and the convolution pads VALID or EXPLICIT (SAME depends on
// the input size, which the Pad changes). Every reader of the Pad must be such a convolution;
// each gets the sum of both paddings. Exact: the convolution reads the same zeros.
#include <algorithm>
#include <array>
#include <optional>

#include "ir/graph_util.h"
#include "ir/op_schema.h"
#include "ir/passes/pass.h"

namespace kiln::ir {
namespace {

bool IsConv2D(const Node& n) { return n.op == "Conv2D" || n.op == "DepthwiseConv2D"; }

// The spatial dims (H, W) of a 2-D convolution's input, by its data_format; nullopt otherwise.
std::optional<std::array<size_t, 2>> SpatialDims(const Node& conv) {
  const std::string format = conv.attrs.GetOr<std::string>("data_format", "NHWC");
  if (format == "NHWC") return std::array<size_t, 2>{1, 2};
  if (format == "NCHW") return std::array<size_t, 2>{2, 3};
  return std::nullopt;
}

// The convolution's pads [top, bottom, left, right], or nullopt when it pads SAME.
std::optional<std::vector<int64_t>> ConvPads(const Node& conv) {
  const std::string padding = conv.attrs.GetOr<std::string>("padding", "VALID");
  if (padding == "VALID") return std::vector<int64_t>(4, 0);
  if (padding != "EXPLICIT") return std::nullopt;
  std::vector<int64_t> pads = conv.attrs.GetOr<std::vector<int64_t>>("pads", {});
  if (pads.size() != 4) return std::nullopt;
  return pads;
}

bool IsZero(const Tensor* t) { return t && t->num_elements() == 1 && t->DoubleAt(0) == 0.0; }

class PadFolding final : public Pass {
 public:
  std::string name() const override { return "pad-folding"; }

  bool Run(Graph& g) override {
    bool changed = false;
    const auto consumers = g.Consumers();
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      const Node& pad = g.node(static_cast<NodeId>(i));
      if (pad.removed || pad.op != "Pad" || pad.inputs.size() < 2) continue;
      if (pad.attrs.GetOr<std::string>("mode", "CONSTANT") != "CONSTANT") continue;
      if (pad.inputs.size() == 3 && !IsZero(g.ConstantOf(pad.inputs[2]))) continue;
      const Tensor* paddings = g.ConstantOf(pad.inputs[1]);
      if (!paddings || paddings->num_elements() != 8) continue;
      const std::vector<int64_t> p = paddings->ToInt64Vector();
      const ValueId padded = pad.outputs[0];
      const std::vector<NodeId>& readers = consumers[static_cast<size_t>(padded)];
      if (readers.empty() || IsGraphOutput(g, padded)) continue;
      // Every reader: a VALID / EXPLICIT 2-D convolution reading the Pad as its input, with the
      // Pad touching only its spatial dims.
      std::vector<std::vector<int64_t>> new_pads;
      for (NodeId r : readers) {
        const Node& conv = g.node(r);
        const auto dims = IsConv2D(conv) && conv.inputs[0] == padded && conv.inputs.size() >= 2 &&
                                  std::count(conv.inputs.begin(), conv.inputs.end(), padded) == 1
                              ? SpatialDims(conv)
                              : std::nullopt;
        const auto pads = dims ? ConvPads(conv) : std::nullopt;
        if (!pads) break;
        bool spatial_only = true;
        for (size_t d = 0; d < 4; ++d) {
          const bool spatial = d == (*dims)[0] || d == (*dims)[1];
          if (p[2 * d] < 0 || p[2 * d + 1] < 0 || (!spatial && (p[2 * d] != 0 || p[2 * d + 1] != 0)))
            spatial_only = false;
        }
        if (!spatial_only) break;
        std::vector<int64_t> sum = *pads;
        for (size_t k = 0; k < 2; ++k) {
          sum[2 * k] += p[2 * (*dims)[k]];
          sum[2 * k + 1] += p[2 * (*dims)[k] + 1];
        }
        new_pads.push_back(std::move(sum));
      }
      if (new_pads.size() != readers.size()) continue;
      const ValueId x = pad.inputs[0];
      for (size_t k = 0; k < readers.size(); ++k) {
        Node& conv = g.node(readers[k]);
        conv.inputs[0] = x;
        conv.attrs.Set("padding", std::string("EXPLICIT"));
        conv.attrs.Set("pads", new_pads[k]);
        InferNode(g, conv.id);
      }
      g.node(static_cast<NodeId>(i)).removed = true;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> MakePadFolding() { return std::make_unique<PadFolding>(); }

}  // namespace kiln::ir
