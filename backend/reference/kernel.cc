#include "backend/reference/kernel.h"

#include <atomic>

#include <fmt/format.h>

namespace kiln::reference {

std::vector<Tensor> KernelContext::RunSubgraph(const ir::Graph& graph, std::vector<Tensor> args) const {
  if (!run_subgraph_) Fail("this context cannot run subgraphs");
  return (*run_subgraph_)(graph, std::move(args));
}

void KernelContext::Fail(const std::string& what) const {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("node '{}' ({}): {}", node_.name, node_.op, what));
}

KernelTable& ReferenceKernelRegistry() {
  static KernelTable table;
  return table;
}

const KernelTable& ReferenceKernels() { return ReferenceKernelRegistry(); }

namespace {
std::atomic<int64_t> max_loop_iterations{10'000'000};
}  // namespace

int64_t MaxLoopIterations() { return max_loop_iterations.load(); }
void SetMaxLoopIterations(int64_t n) { max_loop_iterations = n; }

std::vector<Tensor> RunReferenceKernel(const ir::Node& node, std::span<const Tensor> inputs,
                                       const SubgraphRunner* run_subgraph) {
  KernelFn fn = ReferenceKernels().Find(node.op);
  if (!fn)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("node '{}': IR op '{}' has no reference kernel", node.name, node.op));
  KernelContext ctx(node, inputs, run_subgraph);
  fn(ctx);
  for (int i = 0; i < ctx.num_outputs(); ++i)
    if (!ctx.outputs()[static_cast<size_t>(i)].defined())
      throw Error(ErrorCode::kInternal, fmt::format("node '{}' ({}): kernel left output {} unset", node.name, node.op, i));
  return std::move(ctx.outputs());
}

}  // namespace kiln::reference
