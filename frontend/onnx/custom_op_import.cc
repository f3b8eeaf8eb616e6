#include "frontend/onnx/custom_op_import.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <cstring>

#include "ir/ops/custom.h"

namespace kiln::onnxfe {

void ImportCustomOp(ImportContext& ctx, const onnx::NodeProto& node, const CustomOp& op) {
  const std::string key = CustomOpKey(op);
  const int n = ctx.num_inputs();
  if (const std::string error = ir::CustomOpInputCountError(op, n); !error.empty()) ctx.Invalid(error);
  for (int i = 0; i < n; ++i)
    if (!ctx.has_input(i) && !ctx.validate_only())
      ctx.Unsupported(
          fmt::format("custom op {}: input {} is omitted (custom ops take every input they are given)", key, i));
  if (ctx.num_outputs() > op.num_outputs)
    ctx.Invalid(fmt::format("custom op {} has at most {} outputs, the node declares {}", key, op.num_outputs,
                            ctx.num_outputs()));
  ir::AttrMap attrs = ir::CustomOpNodeAttrs(op);
  for (const onnx::AttributeProto& a : node.attribute()) {
    const std::string& name = a.name();
    switch (a.type()) {
      case onnx::AttributeProto::INT:
        ir::SetCustomAttr(attrs, name, static_cast<int64_t>(a.i()));
        break;
      case onnx::AttributeProto::FLOAT:
        ir::SetCustomAttr(attrs, name, static_cast<double>(a.f()));
        break;
      case onnx::AttributeProto::STRING:
        ir::SetCustomAttr(attrs, name, a.s());
        break;
      case onnx::AttributeProto::INTS:
        ir::SetCustomAttr(attrs, name, std::vector<int64_t>(a.ints().begin(), a.ints().end()));
        break;
      case onnx::AttributeProto::FLOATS:
        ir::SetCustomAttr(attrs, name, std::vector<double>(a.floats().begin(), a.floats().end()));
        break;
      case onnx::AttributeProto::STRINGS:
        ir::SetCustomAttr(attrs, name, std::vector<std::string>(a.strings().begin(), a.strings().end()));
        break;
      case onnx::AttributeProto::TENSOR: {
        const Tensor t = ctx.attr_tensor(name);
        if (t.dtype() == DType::kString)
          ctx.Unsupported(fmt::format("custom op {}: string tensor attribute '{}'", key, name));
        ir::SetCustomAttr(attrs, name, ir::CustomTensorAttrOf(t, name));
        break;
      }
      default:
        ctx.Unsupported(
            fmt::format("custom op {}: attribute '{}' has a type custom ops do not take (graphs, sparse "
                        "tensors, type protos)",
                        key, name));
    }
  }
  if (ctx.validate_only()) return;
  const std::vector<ir::ValueId> outs =
      ctx.Emit(ir::kCustomOp, ctx.input_values(), std::move(attrs), std::max(ctx.num_outputs(), 1));
  for (int i = 0; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, outs[static_cast<size_t>(i)]);
}

}  // namespace kiln::onnxfe
