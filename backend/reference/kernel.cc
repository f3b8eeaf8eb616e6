#include "backend/reference/kernel.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>

namespace kiln::reference {

std::vector<Tensor> KernelContext::RunSubgraph(const ir::Graph& graph, std::vector<Tensor> args) const {
  if (!run_subgraph_) Fail("this context cannot run subgraphs");
  return (*run_subgraph_)(graph, std::move(args));
}

bool InputReuse::Allows(int i) const { return all || std::find(inputs.begin(), inputs.end(), i) != inputs.end(); }

namespace {
std::atomic<int64_t> inputs_taken{0}, inputs_copied{0}, bytes_copied{0};
}  // namespace

InputWriteCounters ReadInputWriteCounters() { return {inputs_taken.load(), inputs_copied.load(), bytes_copied.load()}; }

void ResetInputWriteCounters() {
  inputs_taken = 0;
  inputs_copied = 0;
  bytes_copied = 0;
}

void CountCopiedBytes(size_t bytes) { bytes_copied += static_cast<int64_t>(bytes); }

void CountCopiedInput() { ++inputs_copied; }

bool KernelContext::Released(int i) const {
  if (!reuse_) return false;  // a caller that offers nothing
  if (!reuse_->Allows(i))
    throw Error(ErrorCode::kInternal,
                fmt::format("node '{}' ({}): the kernel takes input {} but its registration does not list it",
                            node_.name, node_.op, i));
  const auto k = static_cast<size_t>(i);
  return k < takeable_.size() && k < released_->size() && (*released_)[k];
}

bool KernelContext::CanTakeInput(int i) const {
  return Released(i) && takeable_[static_cast<size_t>(i)].HoldsBufferAlone();
}

Tensor KernelContext::TakeInput(int i) {
  if (CanTakeInput(i)) {
    ++inputs_taken;
    return std::move(takeable_[static_cast<size_t>(i)]);
  }
  CountCopiedInput();
  CountCopiedBytes(input(i).byte_size());
  return input(i).Clone();
}

Tensor KernelContext::ForwardInput(int i) {
  if (Released(i)) return std::move(takeable_[static_cast<size_t>(i)]);
  return input(i);
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
  static const std::vector<bool> none;
  std::vector<Tensor> own(inputs.begin(), inputs.end());  // shares the buffers; nothing is released
  return RunReferenceKernel(node, own, none, run_subgraph);
}

std::vector<Tensor> RunReferenceKernel(const ir::Node& node, std::span<Tensor> inputs,
                                       const std::vector<bool>& released, const SubgraphRunner* run_subgraph) {
  const KernelEntry* entry = ReferenceKernels().FindEntry(node.op);
  if (!entry)
    throw Error(ErrorCode::kUnimplemented,
                fmt::format("node '{}': IR op '{}' has no reference kernel", node.name, node.op));
  KernelContext ctx(node, inputs, released, entry->reuse, run_subgraph);
  entry->fn(ctx);
  for (int i = 0; i < ctx.num_outputs(); ++i)
    if (!ctx.outputs()[static_cast<size_t>(i)].defined())
      throw Error(ErrorCode::kInternal,
                  fmt::format("node '{}' ({}): kernel left output {} unset", node.name, node.op, i));
  return std::move(ctx.outputs());
}

}  // namespace kiln::reference
