// Reference CPU kernels: one naive, obviously-correct implementation per IR op. They are the
// oracle every optimized backend (CPU engines, CUDA) is tested against, and the native
// fallback executor runs them.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/name_registry.h"
#include "ir/graph.h"
#include "kiln/tensor.h"

namespace kiln::reference {

// Runs a subgraph (If/While bodies) on host tensors and returns its outputs.
using SubgraphRunner = std::function<std::vector<Tensor>(const ir::Graph&, std::vector<Tensor>)>;

// The inputs a kernel may take over (ctx.TakeInput / ctx.ForwardInput) instead of reading them:
// a kernel that writes a modified copy of input i as its output (TensorListSetItem writes list
// input 0 into output 0) lists i so that, when the executor no longer needs the value, the write
// happens in the input's buffer. Declared at registration (KILN_REFERENCE_KERNEL_REUSING).
struct InputReuse {
  std::vector<int> inputs;  // the input indices the kernel may take
  bool all = false;         // every input (While / If forward loop-carried and branch values)
  bool Allows(int i) const;
};

class KernelContext {
 public:
  KernelContext(const ir::Node& node, std::span<const Tensor> inputs, const SubgraphRunner* run_subgraph)
      : node_(node), inputs_(inputs), run_subgraph_(run_subgraph), outputs_(node.outputs.size()) {}
  // The executor's offer: `released[i]` says that the executor holds no other reference to input i
  // (its last use, not a graph output, not a graph input, read once by this node), so the kernel
  // may move it out of `inputs` when `reuse` allows.
  KernelContext(const ir::Node& node, std::span<Tensor> inputs, const std::vector<bool>& released,
                const InputReuse& reuse, const SubgraphRunner* run_subgraph)
      : node_(node),
        inputs_(inputs),
        run_subgraph_(run_subgraph),
        outputs_(node.outputs.size()),
        takeable_(inputs),
        released_(&released),
        reuse_(&reuse) {}

  const ir::Node& node() const { return node_; }
  const ir::AttrMap& attrs() const { return node_.attrs; }
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  const Tensor& input(int i) const { return inputs_[static_cast<size_t>(i)]; }
  std::span<const Tensor> inputs() const { return inputs_; }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  void SetOutput(int i, Tensor t) { outputs_.at(static_cast<size_t>(i)) = std::move(t); }
  // Allocates output i as a zeroed host tensor and returns it.
  Tensor& AllocateOutput(int i, DType dtype, Shape shape) {
    outputs_.at(static_cast<size_t>(i)) = Tensor(dtype, std::move(shape));
    return outputs_[static_cast<size_t>(i)];
  }
  std::vector<Tensor>& outputs() { return outputs_; }
  std::vector<Tensor> RunSubgraph(const ir::Graph& graph, std::vector<Tensor> args) const;

  // Input i to write in place: the input itself when nothing else can see its buffer (released by
  // the executor and HoldsBufferAlone), else a copy. input(i) must not be read afterwards. When
  // the executor offers inputs, only for inputs the kernel's registration lists (kInternal
  // otherwise).
  Tensor TakeInput(int i);
  // Whether TakeInput(i) would hand over the input itself rather than a copy.
  bool CanTakeInput(int i) const;
  // Input i to pass on unchanged (a loop variable, a branch argument): the executor's reference
  // when released (so that the receiver may hold the buffer alone), else a shared reference.
  // Never copies data. input(i) must not be read afterwards.
  Tensor ForwardInput(int i);

  // Throws kInvalidArgument naming the node and op: for run-time shape/value errors
  // (e.g. a Reshape whose element count does not match).
  [[noreturn]] void Fail(const std::string& what) const;

 private:
  bool Released(int i) const;  // offered by the executor and listed by the registration
  const ir::Node& node_;
  std::span<const Tensor> inputs_;
  const SubgraphRunner* run_subgraph_;
  std::vector<Tensor> outputs_;
  std::span<Tensor> takeable_;  // empty when the caller offers no inputs
  const std::vector<bool>* released_ = nullptr;
  const InputReuse* reuse_ = nullptr;
};

// How the kernels that write their inputs got them, for tests and profiling (process-wide).
struct InputWriteCounters {
  int64_t taken = 0;         // inputs written in place
  int64_t copied = 0;        // inputs copied because something else could see them
  int64_t bytes_copied = 0;  // bytes those copies and the list kernels' rebuilt lists moved
};
InputWriteCounters ReadInputWriteCounters();
void ResetInputWriteCounters();
// Adds to bytes_copied (a kernel that rebuilds a list into a new tensor says so).
void CountCopiedBytes(size_t bytes);
// Adds to `copied`: a kernel that copies an input it could not take without TakeInput (to copy it
// into a larger tensor at once) says so.
void CountCopiedInput();

using KernelFn = void (*)(KernelContext&);

struct KernelEntry {
  KernelFn fn = nullptr;
  InputReuse reuse;
};

class KernelTable {
 public:
  void Add(const std::string& op, KernelFn fn, InputReuse reuse = {}) {
    kernels_.Add(op, KernelEntry{fn, std::move(reuse)});
  }
  // nullptr when the op has no kernel.
  KernelFn Find(std::string_view op) const {
    const KernelEntry* entry = kernels_.Find(op);
    return entry ? entry->fn : nullptr;
  }
  const KernelEntry* FindEntry(std::string_view op) const { return kernels_.Find(op); }
  std::vector<std::string> Names() const { return kernels_.Names(); }

 private:
  NameRegistry<KernelEntry> kernels_{"reference kernel"};
};

// The table every reference kernel adds itself to, next to its definition
// (KILN_REFERENCE_KERNEL); complete once static initialisation is over.
KernelTable& ReferenceKernelRegistry();

// All reference kernels, read-only.
const KernelTable& ReferenceKernels();

// Registers `fn` as the reference kernel of IR op `op`. Variadic so template kernels with
// several arguments (ConvKernel<2, false>) need no parentheses.
#define KILN_REFERENCE_KERNEL(op, ...) \
  KILN_STATIC_REGISTRATION(::kiln::reference::ReferenceKernelRegistry().Add(op, __VA_ARGS__))
// The same for a kernel that may take over the inputs `reuse` names: a named InputReuse constant
// (a braced list's commas would split the macro's arguments).
#define KILN_REFERENCE_KERNEL_REUSING(op, reuse, ...) \
  KILN_STATIC_REGISTRATION(::kiln::reference::ReferenceKernelRegistry().Add(op, __VA_ARGS__, reuse))

// The most iterations one While loop may run before it fails (default ten million: far beyond
// any recurrent model's sequence length, and a bound on a loop that never ends).
int64_t MaxLoopIterations();
void SetMaxLoopIterations(int64_t n);

// Runs the reference kernel of one node (throws kUnimplemented if there is none).
std::vector<Tensor> RunReferenceKernel(const ir::Node& node, std::span<const Tensor> inputs,
                                       const SubgraphRunner* run_subgraph);
// The reference kernel of a node outside any executor (no subgraphs): how constant folding
// evaluates nodes (ir::MakeConstantFolding).
inline std::vector<Tensor> EvaluateNode(const ir::Node& node, std::span<const Tensor> inputs) {
  return RunReferenceKernel(node, inputs, nullptr);
}
// The same with the executor's offer of the inputs it released (KernelContext).
std::vector<Tensor> RunReferenceKernel(const ir::Node& node, std::span<Tensor> inputs,
                                       const std::vector<bool>& released, const SubgraphRunner* run_subgraph);

}  // namespace kiln::reference
