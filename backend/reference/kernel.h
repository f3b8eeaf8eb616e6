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

class KernelContext {
 public:
  KernelContext(const ir::Node& node, std::span<const Tensor> inputs, const SubgraphRunner* run_subgraph)
      : node_(node), inputs_(inputs), run_subgraph_(run_subgraph), outputs_(node.outputs.size()) {}

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

  // Throws kInvalidArgument naming the node and op: for run-time shape/value errors
  // (e.g. a Reshape whose element count does not match).
  [[noreturn]] void Fail(const std::string& what) const;

 private:
  const ir::Node& node_;
  std::span<const Tensor> inputs_;
  const SubgraphRunner* run_subgraph_;
  std::vector<Tensor> outputs_;
};

using KernelFn = void (*)(KernelContext&);

class KernelTable {
 public:
  void Add(const std::string& op, KernelFn fn) { kernels_.Add(op, fn); }
  // nullptr when the op has no kernel.
  KernelFn Find(std::string_view op) const {
    const KernelFn* fn = kernels_.Find(op);
    return fn ? *fn : nullptr;
  }
  std::vector<std::string> Names() const { return kernels_.Names(); }

 private:
  NameRegistry<KernelFn> kernels_{"reference kernel"};
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

// The most iterations one While loop may run before it fails (default ten million: far beyond
// any recurrent model's sequence length, and a bound on a loop that never ends).
int64_t MaxLoopIterations();
void SetMaxLoopIterations(int64_t n);

// Runs the reference kernel of one node (throws kUnimplemented if there is none).
std::vector<Tensor> RunReferenceKernel(const ir::Node& node, std::span<const Tensor> inputs,
                                       const SubgraphRunner* run_subgraph);

}  // namespace kiln::reference
