// The kernel of CustomOp nodes: the plugin's shape function on the actual input shapes gives the
// outputs, which are allocated here and filled by the plugin's compute function.
#include "ir/ops/custom.h"

#include <fmt/format.h>

#include "backend/reference/kernel.h"

namespace kiln::reference {
namespace {

void CustomOpKernel(KernelContext& ctx) {
  const std::string& key = ctx.attrs().Str(ir::kCustomOpKeyAttr);
  std::shared_ptr<const CustomOp> op;
  try {
    op = ir::CustomOpOf(ctx.attrs());
  } catch (const Error& e) {
    ctx.Fail(e.what());
  }
  const CustomAttrs attrs = ir::CustomAttrsOf(ctx.attrs());
  std::vector<CustomTensorInfo> infos;
  std::vector<CustomTensorView> inputs;
  std::vector<Tensor> host;  // inputs copied to the host where they were not there
  for (const Tensor& in : ctx.inputs()) {
    if (in.dtype() == DType::kString) ctx.Fail(fmt::format("custom op {}: string inputs are not supported", key));
    host.push_back(in.is_host() ? in : in.Clone());
    const Tensor& t = host.back();
    infos.push_back({t.dtype(), t.shape(), true});
    inputs.push_back({t.dtype(), t.shape(), const_cast<void*>(t.raw_data()), t.byte_size()});
  }
  std::vector<CustomTensorInfo> shapes;
  try {
    shapes = op->infer(infos, attrs);
  } catch (const std::exception& e) {
    ctx.Fail(fmt::format("custom op {}: its shape function failed: {}", key, e.what()));
  }
  if (static_cast<int>(shapes.size()) < ctx.num_outputs())
    ctx.Fail(fmt::format("custom op {}: its shape function gave {} outputs, the node has {}", key, shapes.size(),
                         ctx.num_outputs()));
  std::vector<CustomTensorView> outputs;
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    const CustomTensorInfo& s = shapes[static_cast<size_t>(i)];
    if (!s.rank_known || s.dtype == DType::kString || DTypeSize(s.dtype) == 0)
      ctx.Fail(fmt::format("custom op {}: output {} must have a known rank and a numeric dtype at run time", key, i));
    for (int64_t d : s.dims)
      if (d < 0)
        ctx.Fail(fmt::format("custom op {}: output {} has unknown dims {} at run time", key, i, ShapeToString(s.dims)));
    Tensor& out = ctx.AllocateOutput(i, s.dtype, s.dims);  // bounded by MaxTensorBytes
    outputs.push_back({s.dtype, s.dims, out.raw_data(), out.byte_size()});
  }
  try {
    op->compute(inputs, outputs, attrs);
  } catch (const std::exception& e) {
    ctx.Fail(fmt::format("custom op {}: {}", key, e.what()));
  }
}

}  // namespace

KILN_REFERENCE_KERNEL("CustomOp", CustomOpKernel);

}  // namespace kiln::reference
