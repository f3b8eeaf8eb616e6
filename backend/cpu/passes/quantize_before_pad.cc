// cpu-quantize-before-pad: a cpu.QuantizeS8 that is the only reader of a CONSTANT-mode Pad
// (Keras' ZeroPadding2D before a strided depthwise convolution, as ONNX Runtime's QDQ models have
// it) quantizes the Pad's input instead, and the Pad pads the 8-bit values with the quantized pad
// value. Quantization is elementwise, so the result is the same; the Pad moves a quarter of the
// bytes, and the quantize can join the elementwise chain that produced the input (the chain then
// stores the 8-bit values and the float tensor is never written).
#include <cstdint>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/int8.h"
#include "backend/cpu/passes/passes.h"
#include "ir/graph_util.h"
#include "ir/op_schema.h"

namespace kiln::backend::cpu {
namespace {

class QuantizeBeforePadPass final : public CountingPass {
 public:
  std::string name() const override { return "cpu-quantize-before-pad"; }

  bool Run(ir::Graph& g) override {
    bool changed = false;
    const auto consumers = g.Consumers();
    ir::NameGen names(g);
    const size_t num_nodes = g.nodes().size();
    for (size_t i = 0; i < num_nodes; ++i) {
      const ir::Node& q = g.node(static_cast<ir::NodeId>(i));
      if (q.removed || q.op != kQuantizeS8) continue;
      const ir::Node* pad = g.Producer(q.inputs[0]);
      if (!pad || pad->removed || pad->op != "Pad" || pad->inputs.size() < 2 || pad->inputs.size() > 3 ||
          pad->attrs.GetOr<std::string>("mode", "CONSTANT") != "CONSTANT")
        continue;
      const ir::ValueId padded = pad->outputs[0], x = pad->inputs[0];
      if (consumers[static_cast<size_t>(padded)].size() != 1 || ir::IsGraphOutput(g, padded)) continue;
      if (g.value(x).dtype != DType::kFloat32) continue;
      float value = 0.0f;
      if (pad->inputs.size() == 3) {
        const Tensor* v = g.ConstantOf(pad->inputs[2]);
        if (!v || v->num_elements() != 1 || v->dtype() != DType::kFloat32) continue;
        value = v->data<float>()[0];
      }
      const QuantizeParams params = QuantizeParamsOf(q);
      const DType storage = params.is_unsigned ? DType::kUInt8 : DType::kInt8;
      Tensor quantized_value = Tensor::Scalar(storage, 0);
      QuantizeRange(&value, quantized_value.raw_data(), 1, params);

      const ir::NodeId q_id = q.id, pad_id = pad->id;
      const ir::ValueId q_out = q.outputs[0], paddings = pad->inputs[1];
      const ir::AttrMap q_attrs = q.attrs, pad_attrs = pad->attrs;
      const std::string q_name = q.name, pad_name = pad->name;
      const ir::ValueId value_id = g.AddConstant(names.Make(pad_name + "/quantized_value"), std::move(quantized_value));
      ir::Node& early = g.AddNode(std::string(kQuantizeS8), names.Make(q_name + "/before_pad"), {x}, 1);
      early.attrs = q_attrs;
      const ir::NodeId early_id = early.id;
      ir::InferNode(g, early_id);
      ir::Node& narrow =
          g.AddNode("Pad", names.Make(pad_name + "/8bit"), {g.node(early_id).outputs[0], paddings, value_id}, 1);
      narrow.attrs = pad_attrs;
      const ir::NodeId narrow_id = narrow.id;
      ir::InferNode(g, narrow_id);
      g.ReplaceAllUses(q_out, g.node(narrow_id).outputs[0]);
      g.node(q_id).removed = true;
      g.node(pad_id).removed = true;
      ++rewrites_;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<CountingPass> MakeQuantizeBeforePadPass() { return std::make_unique<QuantizeBeforePadPass>(); }

}  // namespace kiln::backend::cpu
