// The ops of converted graphs. Engine: one converted segment; its `segment` attribute holds the
// native subgraph (the fallback, and what a backend compiles), `engine_name` names it
// ("KilnEngineOp_000"). MemcpyFromHost / MemcpyToHost: the copies device placement inserts
// where host and device values meet (`device`: the device side, e.g. "cuda:0").
#include <fmt/format.h>

#include "ir/op_schema.h"

namespace kiln::ir {
namespace {

void InferEngine(InferContext& ctx) {
  const auto& segment = ctx.attrs().Get<std::shared_ptr<Graph>>("segment");
  if (!segment) ctx.Fail("attribute 'segment' holds no graph");
  const Graph& g = *segment;
  if (static_cast<int>(g.inputs().size()) != ctx.num_inputs() || static_cast<int>(g.outputs().size()) != ctx.num_outputs())
    ctx.Fail(fmt::format("the segment takes {} inputs and returns {} outputs; the node has {} and {}", g.inputs().size(),
                         g.outputs().size(), ctx.num_inputs(), ctx.num_outputs()));
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    const Value& param = g.value(g.inputs()[static_cast<size_t>(i)]);
    if (param.dtype != ctx.input_dtype(i))
      ctx.Fail(fmt::format("input {} ('{}') is {} but the segment expects {}", i, param.name, DTypeName(ctx.input_dtype(i)),
                           DTypeName(param.dtype)));
  }
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    const Value& result = g.value(g.outputs()[static_cast<size_t>(i)]);
    // The segment's symbols belong to its own graph: keep its static dims only...
    SymShape shape = result.shape;
    for (Dim& d : shape.dims) d = IsStatic(d) ? d : kUnknownDim;
    // ...and keep what the outer graph already knows (ReplaceSegments copies the outer shapes,
    // symbols included) where the segment does not know better.
    const SymShape& known = ctx.graph().value(ctx.node().outputs[static_cast<size_t>(i)]).shape;
    if (known.rank_known && !shape.rank_known) {
      shape = known;
    } else if (known.rank_known && known.rank() == shape.rank()) {
      for (size_t d = 0; d < shape.dims.size(); ++d)
        if (!IsStatic(shape.dims[d])) shape.dims[d] = known.dims[d];
    }
    ctx.SetOutput(i, result.dtype, std::move(shape));
  }
}

void InferCopy(InferContext& ctx) {
  if (!ctx.attrs().Has("device")) ctx.Fail("attribute 'device' (the device side of the copy) is missing");
  ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
}

}  // namespace

void RegisterEngineOps(OpRegistry& registry) {
  registry.Add({"Engine", 0, -1, InferEngine, false});
  registry.Add({"MemcpyFromHost", 1, 1, InferCopy, false});
  registry.Add({"MemcpyToHost", 1, 1, InferCopy, false});
}

}  // namespace kiln::ir
