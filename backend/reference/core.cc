// Reference kernels of the core IR ops.
#include <fmt/format.h>

#include "backend/reference/kernel.h"

namespace kiln::reference {
namespace {

void ConstantKernel(KernelContext& ctx) { ctx.SetOutput(0, ctx.attrs().Get<Tensor>("value")); }
KILN_REFERENCE_KERNEL("Constant", ConstantKernel);

void IdentityKernel(KernelContext& ctx) { ctx.SetOutput(0, ctx.input(0)); }
KILN_REFERENCE_KERNEL("Identity", IdentityKernel);

// Copies between host and device run in the converted-graph executor with the device's
// DataTransfer; on the host alone (every value placed on the host) a copy is the identity.
void HostCopyKernel(KernelContext& ctx) {
  if (!ctx.input(0).is_host()) ctx.Fail(fmt::format("input is on {}; device copies run in the converted-graph executor",
                                                    ctx.input(0).device().ToString()));
  ctx.SetOutput(0, ctx.input(0));
}
KILN_REFERENCE_KERNEL("MemcpyFromHost", HostCopyKernel);
KILN_REFERENCE_KERNEL("MemcpyToHost", HostCopyKernel);

// TensorFlow's predicate rule: a scalar is converted to bool (non-zero / non-empty string);
// a non-scalar is true when it has elements.
bool Truth(const KernelContext& ctx, const Tensor& t) {
  if (t.rank() != 0) return t.num_elements() > 0;
  if (t.dtype() == DType::kString) return !t.strings()[0].empty();
  if (!IsNumeric(t.dtype())) ctx.Fail(fmt::format("cannot use a {} tensor as a predicate", DTypeName(t.dtype())));
  return t.DoubleAt(0) != 0.0;
}

const ir::Graph& Subgraph(const KernelContext& ctx, const char* name) {
  return *ctx.attrs().Get<std::shared_ptr<ir::Graph>>(name);
}

// If and While pass their inputs on to their subgraphs (ForwardInput), so that a value the
// executor released reaches the subgraph held once and a kernel there may write it in place.
const InputReuse kForwardsAllInputs{{}, true};

void IfKernel(KernelContext& ctx) {
  const bool take_then = Truth(ctx, ctx.input(0));
  std::vector<Tensor> args;
  for (int i = 1; i < ctx.num_inputs(); ++i) args.push_back(ctx.ForwardInput(i));
  std::vector<Tensor> outs = ctx.RunSubgraph(Subgraph(ctx, take_then ? "then_branch" : "else_branch"), std::move(args));
  for (int i = 0; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, std::move(outs.at(static_cast<size_t>(i))));
}
KILN_REFERENCE_KERNEL_REUSING("If", kForwardsAllInputs, IfKernel);

// The loop variables move from one iteration's body into the next (nothing else keeps them), so
// a list the body writes at its last use there is written in place: a loop of T steps that sets
// one element each copies T elements, not T lists.
void WhileKernel(KernelContext& ctx) {
  const ir::Graph& cond = Subgraph(ctx, "cond");
  const ir::Graph& body = Subgraph(ctx, "body");
  std::vector<Tensor> vars;
  for (int i = 0; i < ctx.num_inputs(); ++i) vars.push_back(ctx.ForwardInput(i));
  // A loop that never ends (a hostile or broken model) stops with an error instead of hanging.
  const int64_t max_iterations = MaxLoopIterations();
  for (int64_t iteration = 0;; ++iteration) {
    if (iteration == max_iterations)
      ctx.Fail(fmt::format("the loop ran {} iterations without its condition becoming false; Kiln stops loops there",
                           max_iterations));
    // (The condition's result is dropped before the body runs: it may be a loop variable itself.)
    bool go = false;
    {
      std::vector<Tensor> c = ctx.RunSubgraph(cond, vars);
      if (c.size() != 1) ctx.Fail(fmt::format("loop condition returned {} values, expected 1", c.size()));
      go = Truth(ctx, c[0]);
    }
    if (!go) break;
    vars = ctx.RunSubgraph(body, std::move(vars));
    if (static_cast<int>(vars.size()) != ctx.num_outputs())
      ctx.Fail(fmt::format("loop body returned {} values, expected {}", vars.size(), ctx.num_outputs()));
  }
  for (int i = 0; i < ctx.num_outputs(); ++i) ctx.SetOutput(i, std::move(vars[static_cast<size_t>(i)]));
}
KILN_REFERENCE_KERNEL_REUSING("While", kForwardsAllInputs, WhileKernel);

}  // namespace

}  // namespace kiln::reference
