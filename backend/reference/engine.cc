// Reference kernel of the Engine op: runs the segment's native subgraph (the fallback).
#include <fmt/format.h>

#include "backend/reference/kernel.h"

namespace kiln::reference {
namespace {

void EngineKernel(KernelContext& ctx) {
  const auto& segment = ctx.attrs().Get<std::shared_ptr<ir::Graph>>("segment");
  if (!segment) ctx.Fail("attribute 'segment' holds no graph");
  std::vector<Tensor> args(ctx.inputs().begin(), ctx.inputs().end());
  std::vector<Tensor> outs = ctx.RunSubgraph(*segment, std::move(args));
  if (static_cast<int>(outs.size()) != ctx.num_outputs())
    ctx.Fail(fmt::format("segment returned {} values, expected {}", outs.size(), ctx.num_outputs()));
  for (int i = 0; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, std::move(outs[static_cast<size_t>(i)]));
}
KILN_REFERENCE_KERNEL("Engine", EngineKernel);

}  // namespace

}  // namespace kiln::reference
