#include "frontend/tf/custom_op_import.h"

#include <fmt/format.h>

#include "ir/ops/custom.h"

namespace kiln::tf {
namespace {

std::vector<int64_t> Dims(const tfproto::TensorShapeProto& shape) {
  std::vector<int64_t> dims;
  for (const auto& d : shape.dim()) dims.push_back(d.size() < 0 ? -1 : d.size());
  return dims;
}

}  // namespace

void ImportCustomOp(ImportContext& ctx, const tfproto::NodeDef& node, const CustomOp& op) {
  const std::string key = CustomOpKey(op);
  const int n = ctx.num_inputs();
  if (const std::string error = ir::CustomOpInputCountError(op, n); !error.empty()) ctx.Invalid(error);
  ir::AttrMap attrs = ir::CustomOpNodeAttrs(op);
  for (const auto& [name, a] : node.attr()) {
    if (name.starts_with("_")) continue;  // TensorFlow's own annotations (_output_shapes, ...)
    switch (a.value_case()) {
      case tfproto::AttrValue::kI:
        ir::SetCustomAttr(attrs, name, static_cast<int64_t>(a.i()));
        break;
      case tfproto::AttrValue::kF:
        ir::SetCustomAttr(attrs, name, static_cast<double>(a.f()));
        break;
      case tfproto::AttrValue::kB:
        ir::SetCustomAttr(attrs, name, a.b());
        break;
      case tfproto::AttrValue::kS:
        ir::SetCustomAttr(attrs, name, a.s());
        break;
      case tfproto::AttrValue::kType:
        ir::SetCustomAttr(attrs, name, static_cast<int64_t>(a.type()));
        break;
      case tfproto::AttrValue::kShape:
        ir::SetCustomAttr(attrs, name, Dims(a.shape()));
        break;
      case tfproto::AttrValue::kTensor: {
        const Tensor t = ctx.attr_tensor(name);
        if (t.dtype() == DType::kString)
          ctx.Unsupported(fmt::format("custom op {}: string tensor attribute '{}'", key, name));
        ir::SetCustomAttr(attrs, name, ir::CustomTensorAttrOf(t, name));
        break;
      }
      case tfproto::AttrValue::kList: {
        const auto& l = a.list();
        if (l.i_size() > 0)
          ir::SetCustomAttr(attrs, name, std::vector<int64_t>(l.i().begin(), l.i().end()));
        else if (l.f_size() > 0)
          ir::SetCustomAttr(attrs, name, std::vector<double>(l.f().begin(), l.f().end()));
        else if (l.s_size() > 0)
          ir::SetCustomAttr(attrs, name, std::vector<std::string>(l.s().begin(), l.s().end()));
        else if (l.type_size() > 0)
          ir::SetCustomAttr(attrs, name, std::vector<int64_t>(l.type().begin(), l.type().end()));
        else if (l.shape_size() > 0 || l.tensor_size() > 0 || l.func_size() > 0 || l.b_size() > 0)
          ctx.Unsupported(
              fmt::format("custom op {}: list attribute '{}' of shapes, tensors, functions or bools", key, name));
        else
          ir::SetCustomAttr(attrs, name, std::vector<int64_t>{});
        break;
      }
      default:
        ctx.Unsupported(fmt::format("custom op {}: attribute '{}' is a function or placeholder", key, name));
    }
  }
  if (ctx.validate_only()) return;
  ctx.SetOutputs(ctx.Emit(ir::kCustomOp, ctx.input_values(), std::move(attrs), op.num_outputs));
}

}  // namespace kiln::tf
