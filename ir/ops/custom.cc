#include "ir/ops/custom.h"

#include <fmt/format.h>

#include <cstring>

#include "ir/op_schema.h"

namespace kiln::ir {
namespace {

constexpr char kAttrPrefix[] = "attr:";

// Applies the plugin's shape function to what the graph knows of the inputs.
void InferCustomOp(InferContext& ctx) {
  const std::shared_ptr<const CustomOp> op = CustomOpOf(ctx.attrs());
  std::vector<CustomTensorInfo> inputs;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    CustomTensorInfo info;
    info.dtype = ctx.input_dtype(i);
    info.rank_known = ctx.input_shape(i).rank_known;
    for (Dim d : ctx.input_shape(i).dims) info.dims.push_back(IsStatic(d) ? d : -1);
    inputs.push_back(std::move(info));
  }
  std::vector<CustomTensorInfo> outputs;
  try {
    outputs = op->infer(inputs, CustomAttrsOf(ctx.attrs()));
  } catch (const std::exception& e) {
    ctx.Fail(fmt::format("custom op {}: its shape function failed: {}", ctx.attrs().Str(kCustomOpKeyAttr), e.what()));
  }
  if (static_cast<int>(outputs.size()) < ctx.num_outputs())
    ctx.Fail(fmt::format("custom op {}: its shape function gave {} outputs, the node has {}",
                         ctx.attrs().Str(kCustomOpKeyAttr), outputs.size(), ctx.num_outputs()));
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    const CustomTensorInfo& o = outputs[static_cast<size_t>(i)];
    if (o.dtype == DType::kInvalid) ctx.Fail(fmt::format("custom op: output {} has no dtype", i));
    if (!o.rank_known) {
      ctx.SetOutput(i, o.dtype, SymShape::Unknown());
      continue;
    }
    std::vector<Dim> dims;
    for (int64_t d : o.dims) dims.push_back(d < 0 ? kUnknownDim : d);
    ctx.SetOutput(i, o.dtype, SymShape::Of(std::move(dims)));
  }
}

}  // namespace

AttrMap CustomOpNodeAttrs(const CustomOp& op) {
  AttrMap attrs;
  attrs.Set(kCustomOpKeyAttr, CustomOpKey(op));
  return attrs;
}

std::string CustomOpInputCountError(const CustomOp& op, int n) {
  if (n >= op.min_inputs && (op.max_inputs < 0 || n <= op.max_inputs)) return "";
  return fmt::format("custom op {} takes {} to {} inputs, the node has {}", CustomOpKey(op), op.min_inputs,
                     op.max_inputs < 0 ? std::string("any") : std::to_string(op.max_inputs), n);
}

CustomTensorAttr CustomTensorAttrOf(const Tensor& t, const std::string& name) {
  if (t.dtype() == DType::kString)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("custom op attribute '{}': string tensors are not supported", name));
  return {t.dtype(), t.shape(), std::string(static_cast<const char*>(t.raw_data()), t.byte_size())};
}

void SetCustomAttr(AttrMap& attrs, const std::string& name, const CustomAttrValue& value) {
  const std::string key = kAttrPrefix + name;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, CustomTensorAttr>) {
          if (v.dtype == DType::kString || DTypeSize(v.dtype) == 0)
            throw Error(ErrorCode::kUnimplemented,
                        fmt::format("attribute '{}': tensors of dtype {} are not supported", name, DTypeName(v.dtype)));
          Tensor t(v.dtype, v.dims);
          if (t.byte_size() != v.bytes.size())
            throw Error(ErrorCode::kInvalidArgument,
                        fmt::format("attribute '{}': {} bytes for a {} tensor of shape {}", name, v.bytes.size(),
                                    DTypeName(v.dtype), ShapeToString(v.dims)));
          if (!v.bytes.empty()) std::memcpy(t.raw_data(), v.bytes.data(), v.bytes.size());
          attrs.Set(key, std::move(t));
        } else {
          attrs.Set(key, v);
        }
      },
      value);
}

CustomAttrs CustomAttrsOf(const AttrMap& attrs) {
  CustomAttrs out;
  const std::string prefix = kAttrPrefix;
  for (const auto& [key, value] : attrs.all()) {
    if (!key.starts_with(prefix)) continue;
    const std::string name = key.substr(prefix.size());
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, Tensor>) {
            const Tensor host = v.is_host() ? v : v.Clone();
            CustomTensorAttr t{host.dtype(), host.shape(),
                               std::string(static_cast<const char*>(host.raw_data()), host.byte_size())};
            out[name] = std::move(t);
          } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double> || std::is_same_v<T, bool> ||
                               std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<int64_t>> ||
                               std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>>) {
            out[name] = v;
          }
        },
        value);
  }
  return out;
}

std::shared_ptr<const CustomOp> CustomOpOf(const AttrMap& attrs) {
  const std::string& key = attrs.Str(kCustomOpKeyAttr);
  std::shared_ptr<const CustomOp> op = FindCustomOp(key);
  if (!op)
    throw Error(ErrorCode::kFailedPrecondition,
                fmt::format("custom op {} is not registered in this process: load the plugin that provides it (kiln "
                            "--plugin LIB, kiln::LoadPlugin, kiln.load_plugin)",
                            key));
  return op;
}

void RegisterCustomOps(OpRegistry& r) { r.Add({kCustomOp, 0, -1, InferCustomOp, /*foldable=*/false}); }

}  // namespace kiln::ir
